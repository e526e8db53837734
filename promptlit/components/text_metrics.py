"""Text-generation metrics: exact match, BLEU, ROUGE-L, perplexity; and a Metrics component.

BLEU comes from `sacreBLEU <https://github.com/mjpost/sacrebleu>`_ and ROUGE-L from Google's
`rouge-score <https://pypi.org/project/rouge-score/>`_, the libraries LIT itself uses, so the
numbers are the ones those libraries (and papers that report them) give. Exact match and
perplexity are small numpy functions. `GenerationMetrics` wires them into the LIT-style
`promptlit.api.components.Metrics` interface (generated text scored against a reference).

Scales follow LIT / sacreBLEU: BLEU is in [0, 100]; ROUGE-L and exact match are in [0, 1].

Tokenization, which decides what counts as a match:

* **BLEU** uses sacreBLEU's standard ``"13a"`` tokenizer (the mteval-v13a rules): ASCII
  punctuation is split off words, numbers like ``3.14`` and ``1,000`` stay whole, and every
  other character, letters of any script included, is kept as written. Text in a script without
  spaces (Chinese, Japanese, Thai) is therefore one token per run between spaces; pass
  ``tokenize="zh"`` (Chinese), ``"char"`` (one token per character) or ``"intl"`` (Unicode
  punctuation and symbols split off) for such text.
* **ROUGE-L** uses rouge-score's tokenizer (``tokenizer="rouge"``, the default): lower-case,
  then every character other than ASCII ``a-z`` and ``0-9`` is a separator and dropped. Accented
  and non-Latin letters are dropped with it: "Café" is the token "caf", and a text with no ASCII
  letters or digits has no tokens and scores 0. ``tokenizer="unicode"`` keeps every script's
  letters and digits (runs of them are the tokens, after `str.casefold`). Stemming (rouge-score's
  Porter stemmer, on words of more than 3 characters) is on by default, as in LIT;
  ``use_stemmer=False`` turns it off.

Example:
    >>> round(sentence_bleu("the cat sat on the mat", ["the cat is on the mat"]), 2)
    37.99
    >>> round(rouge_l("the cat sat on the mat", "the cat is on the mat"), 4)
    0.8333
    >>> rouge_tokenize("Café au lait")                      # rouge-score drops non-ASCII letters
    ['caf', 'au', 'lait']
    >>> rouge_tokenize("Café au lait", tokenizer="unicode")
    ['café', 'au', 'lait']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from nltk.stem import porter
from rouge_score import rouge_scorer
from rouge_score import tokenizers as rouge_tokenizers
from sacrebleu.metrics import BLEU

from promptlit.api import types
from promptlit.api.components import SimpleMetrics
from promptlit.api.types import JsonDict, Spec

__all__ = [
    "BLEU_TOKENIZERS",
    "ROUGE_TOKENIZERS",
    "SMOOTHING_METHODS",
    "GenerationMetrics",
    "UnicodeRougeTokenizer",
    "bleu_tokenize",
    "corpus_bleu",
    "exact_match",
    "perplexity",
    "rouge_l",
    "rouge_tokenize",
    "sentence_bleu",
]

#: sacreBLEU's smoothing methods for n-gram orders without a match (its names).
SMOOTHING_METHODS: tuple[str, ...] = tuple(BLEU.SMOOTH_DEFAULTS)
#: sacreBLEU tokenizers that need nothing beyond sacreBLEU itself ("13a" is the standard one;
#: "ja-mecab", "ko-mecab" and the "spm" family need extra packages and are not offered here).
BLEU_TOKENIZERS: tuple[str, ...] = ("13a", "intl", "char", "zh", "none")
#: ROUGE tokenizers: "rouge" is rouge-score's own (ASCII letters and digits only), "unicode"
#: keeps the letters and digits of every script (`UnicodeRougeTokenizer`).
ROUGE_TOKENIZERS: tuple[str, ...] = ("rouge", "unicode")

_SPACE = re.compile(r"\s+")
_UNICODE_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "_" separates


def _normalize(text: str, *, ignore_case: bool, normalize_whitespace: bool) -> str:
    if normalize_whitespace:
        text = _SPACE.sub(" ", text).strip()
    return text.casefold() if ignore_case else text


def _as_list(references: str | Sequence[str]) -> list[str]:
    """One reference or several, as a non-empty list (no reference at all: one empty one)."""
    refs = [references] if isinstance(references, str) else [str(r) for r in references]
    return refs or [""]


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
@functools.lru_cache(maxsize=64)
def _bleu(
    *,
    max_order: int,
    smoothing: str,
    smooth_value: float | None,
    lowercase: bool,
    effective_order: bool,
    tokenize: str,
) -> BLEU:
    """A sacreBLEU `BLEU` scorer for these settings (made once; scoring does not change it)."""
    if smoothing not in SMOOTHING_METHODS:
        raise ValueError(f"Unknown smoothing {smoothing!r}; expected one of {SMOOTHING_METHODS}.")
    if tokenize not in BLEU_TOKENIZERS:
        raise ValueError(f"Unknown BLEU tokenizer {tokenize!r}; expected one of {BLEU_TOKENIZERS}.")
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}.")
    return BLEU(
        lowercase=lowercase,
        tokenize=tokenize,
        smooth_method=smoothing,
        smooth_value=smooth_value,
        max_ngram_order=max_order,
        effective_order=effective_order,
    )


def bleu_tokenize(text: str, *, lowercase: bool = False, tokenize: str = "13a") -> list[str]:
    """The tokens BLEU compares: sacreBLEU's tokenizer ``tokenize`` (default "13a") applied to
    ``text`` (lower-cased first with ``lowercase``), as sacreBLEU does before counting n-grams.

    Example:
        >>> bleu_tokenize("Hello, world! Pi=3.14")
        ['Hello', ',', 'world', '!', 'Pi', '=', '3.14']
    """
    scorer = _bleu(max_order=4, smoothing="exp", smooth_value=None, lowercase=lowercase,
                   effective_order=False, tokenize=tokenize)
    if lowercase:
        text = text.lower()
    return scorer.tokenizer(text.rstrip()).split()  # what sacreBLEU does to every segment


def corpus_bleu(
    predictions: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    max_order: int = 4,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    effective_order: bool = False,
    tokenize: str = "13a",
) -> float:
    """Corpus BLEU in [0, 100] (sacreBLEU's ``corpus_bleu``): n-gram matches and lengths summed
    over all pairs, then combined.

    BLEU = BP · exp(mean_n log p_n), ``p_n`` the clipped n-gram precision (n = 1..max_order) and
    BP = min(1, exp(1 - r / c)) with c the total hypothesis length and r the total closest
    reference length. An order without any match makes corpus BLEU 0 unless smoothed.

    Args:
        predictions: ``M`` generated texts.
        references: ``M`` references, each a string or a list of alternative strings (their
            number may differ from one prediction to the next).
        max_order: longest n-gram (4 = BLEU-4).
        smoothing: sacreBLEU's smoothing for an order without matches: "exp" (default, its
            standard), "floor" (``smooth_value``, default 0.1, as the match count), "add-k"
            (``smooth_value``, default 1, added to matches and totals for n > 1), "none".
        smooth_value: the constant for "floor" / "add-k".
        lowercase: compare case-insensitively.
        effective_order: only use the orders the hypotheses are long enough for.
        tokenize: a sacreBLEU tokenizer name (`BLEU_TOKENIZERS`; "13a" is the standard).

    Raises:
        ValueError: different numbers of predictions and references, unknown smoothing or
            tokenizer.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"corpus_bleu: {len(predictions)} predictions but {len(references)} references; "
            "pass one reference (or list of references) per prediction."
        )
    scorer = _bleu(max_order=max_order, smoothing=smoothing, smooth_value=smooth_value,
                   lowercase=lowercase, effective_order=effective_order, tokenize=tokenize)
    if not predictions:
        return 0.0
    per_example = [_as_list(r) for r in references]
    # sacreBLEU takes reference *streams* (the k-th reference of every example); examples with
    # fewer references are padded with None, which it skips.
    width = max(len(r) for r in per_example)
    streams = [[r[k] if k < len(r) else None for r in per_example] for k in range(width)]
    # (sacreBLEU documents None entries but annotates the streams as plain strings.)
    return float(scorer.corpus_score([str(p) for p in predictions],
                                     cast(Sequence[Sequence[str]], streams)).score)


def sentence_bleu(
    prediction: str,
    references: str | Sequence[str],
    *,
    max_order: int = 4,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    tokenize: str = "13a",
) -> float:
    """BLEU in [0, 100] of one prediction (sacreBLEU's ``sentence_bleu``: smoothing and effective
    order, so a short hypothesis is scored on the orders it has).

    See `corpus_bleu` for the formula and options.
    """
    scorer = _bleu(max_order=max_order, smoothing=smoothing, smooth_value=smooth_value,
                   lowercase=lowercase, effective_order=True, tokenize=tokenize)
    return float(scorer.sentence_score(str(prediction), _as_list(references)).score)


# ---------------------------------------------------------------------------------- ROUGE-L
class UnicodeRougeTokenizer(rouge_tokenizers.Tokenizer):
    """rouge-score's tokenization for every script: case-folded runs of letters and digits.

    Like rouge-score's default tokenizer, everything that is not a letter or a digit separates
    tokens and is dropped, and the Porter stemmer (``use_stemmer``) shortens words of more than
    3 characters; unlike it, letters and digits outside ASCII are kept ("café", "北京欢迎你").
    A script written without spaces gives one token per run of letters.
    """

    def __init__(self, use_stemmer: bool = False) -> None:
        self._stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = _UNICODE_WORD.findall(text.casefold())
        if self._stemmer is not None:
            tokens = [self._stemmer.stem(t) if len(t) > 3 else t for t in tokens]
        return tokens


@functools.lru_cache(maxsize=8)
def _rouge_tokenizer(use_stemmer: bool, tokenizer: str) -> rouge_tokenizers.Tokenizer:
    """The ROUGE tokenizer called ``tokenizer`` (`ROUGE_TOKENIZERS`), made once per setting."""
    if tokenizer == "rouge":
        return rouge_tokenizers.DefaultTokenizer(use_stemmer)
    if tokenizer == "unicode":
        return UnicodeRougeTokenizer(use_stemmer)
    raise ValueError(f"Unknown ROUGE tokenizer {tokenizer!r}; expected one of "
                     f"{ROUGE_TOKENIZERS}.")


@functools.lru_cache(maxsize=8)
def _rouge_scorer(use_stemmer: bool, tokenizer: str) -> rouge_scorer.RougeScorer:
    """A rouge-score ROUGE-L scorer (made once per setting)."""
    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_rouge_tokenizer(use_stemmer, tokenizer))


def rouge_tokenize(text: str, *, use_stemmer: bool = False, tokenizer: str = "rouge"
                   ) -> list[str]:
    """The tokens ROUGE-L compares (see the module docstring for what each tokenizer keeps)."""
    return list(_rouge_tokenizer(bool(use_stemmer), tokenizer).tokenize(text))


def rouge_l(
    prediction: str,
    reference: str | Sequence[str],
    *,
    use_stemmer: bool = True,
    tokenizer: str = "rouge",
) -> float:
    """ROUGE-L F-measure in [0, 1] (rouge-score's ``rougeL``): from the longest common
    subsequence of tokens, P = LCS / len(prediction), R = LCS / len(reference), F = 2PR / (P + R).

    With several references the best F is returned (rouge-score's ``score_multi``). An empty
    prediction or reference (no tokens after tokenization) scores 0.

    Args:
        prediction: generated text.
        reference: one reference or several.
        use_stemmer: Porter-stem words of more than 3 characters (default True, as LIT does).
        tokenizer: "rouge" (rouge-score's: ASCII letters and digits only) or "unicode".
    """
    scorer = _rouge_scorer(bool(use_stemmer), tokenizer)
    refs = _as_list(reference)
    return float(scorer.score_multi(refs, str(prediction))["rougeL"].fmeasure)


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
    whose ``parent`` names a dataset field of type TextSegment or ReferenceTexts. BLEU is
    sacreBLEU's corpus BLEU (13a tokenizer, "exp" smoothing); ROUGE-L the mean of rouge-score's
    per-example F-measure (best over an example's references).

    Config (all optional): ``ignore_case`` (bool, default False) for exact match and BLEU;
    ``use_stemmer`` (bool, default True) and ``rouge_tokenizer`` ("rouge" or "unicode", default
    "rouge") for ROUGE-L.
    """

    def is_field_compatible(
        self, pred_spec: types.LitType, parent_spec: types.LitType | None
    ) -> bool:
        return isinstance(pred_spec, types.GeneratedText | types.GeneratedTextCandidates) and (
            isinstance(parent_spec, types.TextSegment | types.ReferenceTexts)
        )

    def config_spec(self) -> Spec:
        return {
            "ignore_case": types.Boolean(default=False, required=False),
            "use_stemmer": types.Boolean(
                default=True, required=False,
                description="ROUGE-L: Porter-stem words longer than 3 characters."),
            "rouge_tokenizer": types.CategoryLabel(
                vocab=list(ROUGE_TOKENIZERS), default="rouge", required=False,
                description="ROUGE-L: 'rouge' keeps ASCII letters and digits only (rouge-score's "
                            "tokenizer); 'unicode' keeps the letters of every script."),
        }

    def meta_spec(self) -> Spec:
        best = types.MetricBestValue.HIGHEST
        return {
            "bleu": types.MetricResult(best_value=best,
                                       description="Corpus BLEU-4 (sacreBLEU), 0-100."),
            "rouge_l": types.MetricResult(best_value=best,
                                          description="Mean ROUGE-L F (rouge-score), 0-1."),
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
        cfg = config or {}
        ignore_case = bool(cfg.get("ignore_case", False))
        use_stemmer = bool(cfg.get("use_stemmer", True))
        rouge_tok = str(cfg.get("rouge_tokenizer") or "rouge")
        texts = [_as_text(p) for p in preds]
        refs = [_as_references(label) for label in labels]
        pairs = list(zip(texts, refs, strict=True))
        return {
            "bleu": corpus_bleu(texts, refs, lowercase=ignore_case),
            "rouge_l": float(np.mean([
                rouge_l(t, r, use_stemmer=use_stemmer, tokenizer=rouge_tok) for t, r in pairs])),
            "exact_match": float(np.mean([
                exact_match(t, r, ignore_case=ignore_case) for t, r in pairs])),
        }
