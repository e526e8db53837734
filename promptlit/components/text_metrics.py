"""Text-generation metrics: exact match, BLEU, ROUGE-L, perplexity; and a Metrics component.

Pure functions with no dependencies beyond numpy, so they can be tested against hand-computed
values and used from a notebook directly. `GenerationMetrics` wires them into the LIT-style
`promptlit.api.components.Metrics` interface (generated text scored against a reference).

Scales follow LIT / sacreBLEU: BLEU is in [0, 100]; ROUGE-L, exact match are in [0, 1].

Example:
    >>> round(sentence_bleu("the cat sat on the mat", ["the cat is on the mat"]), 2)
    37.99
    >>> round(rouge_l("the cat sat on the mat", "the cat is on the mat"), 4)
    0.8333
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import SimpleMetrics
from promptlit.api.types import JsonDict, Spec

__all__ = [
    "SMOOTHING_METHODS",
    "GenerationMetrics",
    "bleu_tokenize",
    "corpus_bleu",
    "exact_match",
    "lcs_length",
    "perplexity",
    "rouge_l",
    "rouge_tokenize",
    "sentence_bleu",
]

SMOOTHING_METHODS = ("exp", "floor", "add-k", "none")

_BLEU_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


def _normalize(text: str, *, ignore_case: bool, normalize_whitespace: bool) -> str:
    if normalize_whitespace:
        text = _SPACE.sub(" ", text).strip()
    return text.casefold() if ignore_case else text


def exact_match(
    prediction: str,
    reference: str | Sequence[str],
    *,
    ignore_case: bool = False,
    normalize_whitespace: bool = True,
) -> float:
    """1.0 if the prediction equals the reference (any of several references), else 0.0.

    Args:
        prediction: generated text.
        reference: one reference or several.
        ignore_case: compare case-insensitively (`str.casefold`).
        normalize_whitespace: collapse runs of whitespace to one space and strip both ends, so
            "a  b\\n" matches "a b".
    """
    refs = [reference] if isinstance(reference, str) else list(reference)
    pred = _normalize(
        prediction, ignore_case=ignore_case, normalize_whitespace=normalize_whitespace
    )
    return float(
        any(
            pred
            == _normalize(r, ignore_case=ignore_case, normalize_whitespace=normalize_whitespace)
            for r in refs
        )
    )


# ------------------------------------------------------------------------------------- BLEU
def bleu_tokenize(text: str, *, lowercase: bool = False) -> list[str]:
    """Tokens for BLEU: runs of word characters, numbers like "3.14"/"1,000", single punctuation.

    Close to sacreBLEU's "13a" tokenizer for ordinary text (punctuation split off words).
    """
    if lowercase:
        text = text.lower()
    return _BLEU_TOKEN.findall(text)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _bleu_stats(
    hyp: Sequence[str], refs: Sequence[Sequence[str]], max_order: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Clipped n-gram matches ``<int>[max_order]``, totals ``<int>[max_order]``, hyp/ref length."""
    matches = np.zeros(max_order, dtype=np.int64)
    totals = np.zeros(max_order, dtype=np.int64)
    for n in range(1, max_order + 1):
        hyp_counts = _ngrams(hyp, n)
        max_ref: Counter = Counter()
        for ref in refs:
            for gram, count in _ngrams(ref, n).items():
                max_ref[gram] = max(max_ref[gram], count)
        matches[n - 1] = sum(min(c, max_ref[g]) for g, c in hyp_counts.items())
        totals[n - 1] = max(len(hyp) - n + 1, 0)
    # Closest reference length; ties go to the shorter reference (as in sacreBLEU / mteval).
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1] if refs else 0
    return matches, totals, len(hyp), ref_len


def _bleu_from_stats(
    matches: np.ndarray,
    totals: np.ndarray,
    hyp_len: int,
    ref_len: int,
    *,
    smoothing: str,
    smooth_value: float | None,
    effective_order: bool,
) -> float:
    if smoothing not in SMOOTHING_METHODS:
        raise ValueError(f"Unknown smoothing {smoothing!r}; expected one of {SMOOTHING_METHODS}.")
    if hyp_len == 0:
        return 0.0
    max_order = len(matches)
    matches = matches.astype(np.float64)
    totals = totals.astype(np.float64)
    precisions = np.zeros(max_order)
    order = max_order
    exp_denominator = 1.0
    for n in range(1, max_order + 1):
        if smoothing == "add-k" and n > 1:
            k = 1.0 if smooth_value is None else smooth_value
            matches[n - 1] += k
            totals[n - 1] += k
        if totals[n - 1] == 0:
            break
        if effective_order:
            order = n
        if matches[n - 1] == 0:
            if smoothing == "exp":
                exp_denominator *= 2
                precisions[n - 1] = 1.0 / (exp_denominator * totals[n - 1])
            elif smoothing == "floor":
                floor = 0.1 if smooth_value is None else smooth_value
                precisions[n - 1] = floor / totals[n - 1]
        else:
            precisions[n - 1] = matches[n - 1] / totals[n - 1]
    if np.any(precisions[:order] == 0):
        return 0.0
    brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return 100.0 * brevity * math.exp(float(np.mean(np.log(precisions[:order]))))


def corpus_bleu(
    predictions: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    max_order: int = 4,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    effective_order: bool = False,
) -> float:
    """Corpus BLEU in [0, 100]: n-gram matches and lengths summed over all pairs, then combined.

    BLEU = BP · exp(mean_n log p_n), ``p_n`` the clipped n-gram precision (n = 1..max_order) and
    BP = min(1, exp(1 - r / c)) with c the hypothesis length and r the closest reference length.

    Args:
        predictions: ``M`` generated texts.
        references: ``M`` references, each a string or a list of alternative strings.
        max_order: longest n-gram (4 = BLEU-4).
        smoothing: what to do with an n-gram order without matches (as in sacreBLEU):
            "exp" (default; the k-th such order gets precision 1 / (2^k · total)),
            "floor" (matches := smooth_value, default 0.1), "add-k" (add smooth_value, default 1,
            to matches and totals for n > 1), "none" (BLEU is 0).
        smooth_value: the constant for "floor" / "add-k".
        lowercase: compare case-insensitively.
        effective_order: only use the orders the hypothesis is long enough for (sentence BLEU).

    Raises:
        ValueError: different numbers of predictions and references, or unknown smoothing.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"corpus_bleu: {len(predictions)} predictions but {len(references)} references; "
            "pass one reference (or list of references) per prediction."
        )
    matches = np.zeros(max_order, dtype=np.int64)
    totals = np.zeros(max_order, dtype=np.int64)
    hyp_len = ref_len = 0
    for pred, ref in zip(predictions, references, strict=True):
        refs = [ref] if isinstance(ref, str) else list(ref)
        m, t, h, r = _bleu_stats(
            bleu_tokenize(pred, lowercase=lowercase),
            [bleu_tokenize(x, lowercase=lowercase) for x in refs],
            max_order,
        )
        matches += m
        totals += t
        hyp_len += h
        ref_len += r
    return _bleu_from_stats(
        matches,
        totals,
        hyp_len,
        ref_len,
        smoothing=smoothing,
        smooth_value=smooth_value,
        effective_order=effective_order,
    )


def sentence_bleu(
    prediction: str,
    references: str | Sequence[str],
    *,
    max_order: int = 4,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
) -> float:
    """BLEU in [0, 100] of one prediction, with smoothing and effective order (like sacreBLEU).

    See `corpus_bleu` for the formula and options.
    """
    refs = [references] if isinstance(references, str) else list(references)
    return corpus_bleu(
        [prediction],
        [refs],
        max_order=max_order,
        smoothing=smoothing,
        smooth_value=smooth_value,
        lowercase=lowercase,
        effective_order=True,
    )


# ---------------------------------------------------------------------------------- ROUGE-L
def rouge_tokenize(text: str) -> list[str]:
    """Lower-cased runs of word characters (Unicode-aware; punctuation dropped)."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence of two sequences (O(len(a)·len(b)) time)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str | Sequence[str], *, beta: float = 1.0) -> float:
    """ROUGE-L F-measure in [0, 1] from the longest common subsequence of tokens.

    P = LCS / len(prediction), R = LCS / len(reference), F = (1 + β²)·P·R / (R + β²·P)
    (β = 1: the harmonic mean). With several references the best F is returned. Tokens come from
    `rouge_tokenize`; an empty prediction or reference scores 0.
    """
    refs = [reference] if isinstance(reference, str) else list(reference)
    pred = rouge_tokenize(prediction)
    best = 0.0
    for ref in refs:
        ref_tokens = rouge_tokenize(ref)
        lcs = lcs_length(pred, ref_tokens)
        if lcs == 0:
            continue
        p, r = lcs / len(pred), lcs / len(ref_tokens)
        best = max(best, (1 + beta**2) * p * r / (r + beta**2 * p))
    return best


# ------------------------------------------------------------------------------- perplexity
def perplexity(logprobs: Sequence[float] | np.ndarray, mask: np.ndarray | None = None) -> float:
    """exp(-mean log-probability) of the scored tokens: ``logprobs <float>[num_tokens]``.

    Args:
        logprobs: natural-log probabilities ``log p(token_i | tokens_<i)``.
        mask: optional ``<bool>[num_tokens]`` of the tokens to include (e.g. the response only;
            ``sequence_log_probs``' entry 0 is 0.0 and should be left out).

    Raises:
        ValueError: no token to score, or a log-probability above 0.
    """
    lp = np.asarray(logprobs, dtype=np.float64).reshape(-1)
    if mask is not None:
        lp = lp[np.asarray(mask, dtype=bool).reshape(-1)]
    if lp.size == 0:
        raise ValueError("perplexity needs at least one log-probability; got none.")
    if np.any(lp > 1e-6):
        raise ValueError(
            f"perplexity expects log-probabilities (<= 0); got max {lp.max():.4g}. Pass "
            "log-softmax values, not logits or probabilities."
        )
    return float(np.exp(-lp.mean()))


# ------------------------------------------------------------------------------- component
def _as_text(value: Any) -> str:
    """A prediction's text: a string, or the top candidate of ``[(text, score), ...]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and value:
        first = value[0]
        return first if isinstance(first, str) else str(first[0])
    return ""


def _as_references(value: Any) -> list[str]:
    """A label's reference texts: a string, a list of strings or ``[(text, weight), ...]``."""
    if isinstance(value, str):
        return [value]
    return [v if isinstance(v, str) else str(v[0]) for v in value]


class GenerationMetrics(SimpleMetrics):
    """BLEU, ROUGE-L and exact match of generated text against reference text(s).

    Scores model output fields of type GeneratedText / GeneratedTextCandidates (top candidate)
    whose ``parent`` names a dataset field of type TextSegment or ReferenceTexts.

    Config (all optional): ``ignore_case`` (bool, default False) for exact match and BLEU.
    """

    def is_field_compatible(
        self, pred_spec: types.LitType, parent_spec: types.LitType | None
    ) -> bool:
        return isinstance(pred_spec, types.GeneratedText | types.GeneratedTextCandidates) and (
            isinstance(parent_spec, types.TextSegment | types.ReferenceTexts)
        )

    def config_spec(self) -> Spec:
        return {"ignore_case": types.Boolean(default=False, required=False)}

    def meta_spec(self) -> Spec:
        best = types.MetricBestValue.HIGHEST
        return {
            "bleu": types.MetricResult(best_value=best, description="Corpus BLEU-4, 0-100."),
            "rouge_l": types.MetricResult(best_value=best, description="Mean ROUGE-L F, 0-1."),
            "exact_match": types.MetricResult(best_value=best, description="Fraction exact."),
        }

    def compute(
        self,
        labels: Sequence[Any],
        preds: Sequence[Any],
        label_spec: types.LitType,
        pred_spec: types.LitType,
        config: JsonDict | None = None,
    ) -> dict[str, float]:
        """Metric name -> value over all (reference, prediction) pairs; {} when there are none."""
        del label_spec, pred_spec
        if len(labels) != len(preds):
            raise ValueError(f"{len(labels)} labels but {len(preds)} predictions.")
        if not labels:
            return {}
        ignore_case = bool((config or {}).get("ignore_case", False))
        texts = [_as_text(p) for p in preds]
        refs = [_as_references(label) for label in labels]
        return {
            "bleu": corpus_bleu(texts, refs, lowercase=ignore_case),
            "rouge_l": float(np.mean([rouge_l(t, r) for t, r in zip(texts, refs, strict=True)])),
            "exact_match": float(
                np.mean(
                    [
                        exact_match(t, r, ignore_case=ignore_case)
                        for t, r in zip(texts, refs, strict=True)
                    ]
                )
            ),
        }
