"""Compare two versions of a prompt: aligned segments with both salience scores (`pl.compare`).

Prompt debugging is often "I changed this; what changed in what the model looked at?". Two
salience results (two prompts, each explained for its own response, or both for the same text)
are split at one granularity, their segments aligned with `difflib` (on the segments' text,
whitespace-normalised), and put side by side in a table:

* ``equal``: the same text in both prompts (its salience may still differ: that is the point);
* ``changed``: text replaced by other text (paired in order within a replaced run);
* ``deleted``: only in A; ``inserted``: only in B.

Scores are the segments' exact sums (`promptlit.salience.result.SpanSalience.aggregate`); with
``normalize=True`` each side's scores are divided by its total ``|score|`` (over the prompt's
non-template segments), so prompts explained for responses of different lengths compare as
shares. ``delta = score_b - score_a``, a missing side counting as 0. `changed_most` ranks the
rows by ``|delta|``.

`compare_responses` aligns the two responses token by token the same way and gives each token
pair its log-probabilities and, for equal tokens, the change ``logprob_b - logprob_a``.
`compare_examples` does the whole comparison for two examples through a `Workbench` (cached
predictions and salience), for the UI and the ``promptlit compare`` command.

Example:
    >>> import numpy as np
    >>> from promptlit.salience.result import SequenceSalience
    >>> def sal(prompt, scores):
    ...     words = prompt.split(" ")
    ...     offs, pos = [], 0
    ...     for w in words + ["ok"]:
    ...         offs.append((pos, pos + len(w))); pos += len(w) + 1
    ...     text = prompt + " ok"
    ...     return SequenceSalience(text=text, prompt_length=len(prompt), tokens=words + ["ok"],
    ...                             offsets=np.array(offs), num_prompt_tokens=len(words),
    ...                             matrices={"grad_l2": np.array([scores + [0.0]])})
    >>> table = compare(sal("Say yes now", [1.0, 2.0, 3.0]), sal("Say no now", [1.0, 5.0, 1.0]),
    ...                 granularity="words")
    >>> table[["op", "text_a", "text_b", "score_a", "score_b", "delta"]].values.tolist()
    [['equal', 'Say', 'Say', 1.0, 1.0, 0.0], ['changed', 'yes', 'no', 2.0, 5.0, 3.0], ['equal', 'now', 'now', 3.0, 1.0, -2.0]]
    >>> changed_most(table, 1)["text_b"].tolist()
    ['no']
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from promptlit.lib.segmentation import Granularity, TemplateSegment, resolve_granularity

__all__ = [
    "OPS",
    "missing",
    "SEGMENT_COLUMNS",
    "TOKEN_COLUMNS",
    "PromptComparison",
    "align",
    "changed_most",
    "compare",
    "compare_examples",
    "compare_responses",
]

OPS: tuple[str, ...] = ("equal", "changed", "deleted", "inserted")
"""The alignment operations, as in the table's ``op`` column."""

SEGMENT_COLUMNS: tuple[str, ...] = (
    "op", "label_a", "text_a", "start_a", "end_a", "score_a",
    "label_b", "text_b", "start_b", "end_b", "score_b", "delta")  # fmt: skip
"""Columns of `compare`'s table."""

TOKEN_COLUMNS: tuple[str, ...] = ("op", "index_a", "token_a", "logprob_a", "index_b", "token_b",
                                  "logprob_b", "delta")
"""Columns of `compare_responses`'s table."""

TARGETS: tuple[str, ...] = ("response", "target", "same")
"""What `compare_examples` explains: each example's own response, each its own reference
target, or the same text for both (A's response)."""

ProgressFn = Callable[[float, str], None]


def missing(value: Any) -> bool:
    """Whether a table cell is empty: a side without a segment or token (None or NaN; pandas'
    string columns hold NaN)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _key(text: str) -> str:
    return " ".join(str(text).split())


def align(keys_a: Sequence[str], keys_b: Sequence[str]) -> list[tuple[str, int | None, int | None]]:
    """Aligns two sequences: ``[(op, index_a, index_b), ...]`` in order.

    `difflib.SequenceMatcher` (no junk heuristic) finds the equal runs; a replaced run pairs its
    items in order (``changed``) and leaves the longer side's rest ``deleted`` / ``inserted``.

    Example:
        >>> align(["a", "b", "c"], ["a", "x", "y", "c"])
        [('equal', 0, 0), ('changed', 1, 1), ('inserted', None, 2), ('equal', 2, 3)]
    """
    matcher = difflib.SequenceMatcher(None, list(keys_a), list(keys_b), autojunk=False)
    out: list[tuple[str, int | None, int | None]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [("equal", i, j) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
        elif tag == "delete":
            out += [("deleted", i, None) for i in range(i1, i2)]
        elif tag == "insert":
            out += [("inserted", None, j) for j in range(j1, j2)]
        else:
            n = min(i2 - i1, j2 - j1)
            out += [("changed", i1 + k, j1 + k) for k in range(n)]
            out += [("deleted", i, None) for i in range(i1 + n, i2)]
            out += [("inserted", None, j) for j in range(j1 + n, j2)]
    return out


def _check_result(sal: Any, name: str) -> None:
    if not (hasattr(sal, "for_span") or (hasattr(sal, "aggregate") and hasattr(sal, "parent"))):
        raise TypeError(f"compare: {name} must be a SequenceSalience or SpanSalience (e.g. "
                        f"lm.salience(prompt, response)), got {type(sal).__name__}")


def _span_of(sal: Any, method: str | None) -> Any:
    """A `SpanSalience`: ``sal`` itself, or a `SequenceSalience`'s whole response."""
    if hasattr(sal, "aggregate") and hasattr(sal, "parent"):
        if method is not None and sal.method != method:
            raise ValueError(f"compare: method={method!r}, but this SpanSalience holds "
                             f"{sal.method!r} scores; pass method=None or a matching span")
        return sal
    t = sal.num_response_tokens
    if t < 1:
        raise ValueError("compare: a response is empty; there is nothing to explain")
    return sal.for_span(0, t, method)


def _common_method(sal_a: Any, sal_b: Any) -> str | None:
    if hasattr(sal_a, "parent") or hasattr(sal_b, "parent"):
        return None
    both = [m for m in sal_a.methods if m in sal_b.methods]
    if not both:
        raise ValueError(f"compare: the two results share no salience method (A has "
                         f"{sal_a.methods}, B has {sal_b.methods}); compute both with one")
    return both[0]


def _segments(span: Any, granularity: Granularity, include_template: bool) -> list[Any]:
    segs = span.aggregate(granularity, side="prompt")
    return [s for s in segs if include_template or not isinstance(s, TemplateSegment)]


def _scale(segments: Sequence[Any], normalize: bool) -> float:
    if not normalize:
        return 1.0
    total = float(sum(abs(s.score) for s in segments))
    return 1.0 / total if total > 0 else 0.0


def compare(sal_a: Any, sal_b: Any, granularity: Granularity | tuple[Granularity, Granularity]
            = "sentences", *, method: str | None = None, normalize: bool = False,
            include_template: bool = False) -> pd.DataFrame:
    """Aligns the prompts of two salience results segment by segment, with both scores.

    Args:
        sal_a, sal_b: `SequenceSalience` (explained over its whole response) or `SpanSalience`
            (a chosen response span) results for the two prompts.
        granularity: "tokens" … "paragraphs", "turns", "few-shot", or a
            `promptlit.lib.segmentation.Segmentation`; a pair ``(for_a, for_b)`` when each
            prompt has its own (e.g. each example's own labelled ``segments``).
        method: the salience method (default: the first both results have).
        normalize: divide each side's scores by its total ``|score|`` (shares of the prompt's
            salience), to compare responses of different lengths.
        include_template: keep chat-template segments (left out by default, like rankings).

    Returns:
        A `pandas.DataFrame` with `SEGMENT_COLUMNS`, one row per aligned pair in prompt order:
        ``op`` (`OPS`), for each side ``label`` (a custom segment's label, else ""), ``text``,
        char ``start`` / ``end`` (in that result's text) and ``score`` (None / NaN where the
        side has no segment), and ``delta = score_b - score_a`` (a missing score counts as 0).
        ``table.attrs`` records the method, granularity, signedness, normalisation and both
        explained texts.

    Raises:
        ValueError: no common method, an empty response, a granularity that does not apply.
    """
    _check_result(sal_a, "sal_a")
    _check_result(sal_b, "sal_b")
    method = method or _common_method(sal_a, sal_b)
    span_a, span_b = _span_of(sal_a, method), _span_of(sal_b, method)
    g_a, g_b = granularity if isinstance(granularity, tuple) else (granularity, granularity)
    segs_a = _segments(span_a, resolve_granularity(g_a), include_template)
    segs_b = _segments(span_b, resolve_granularity(g_b), include_template)
    scale_a, scale_b = _scale(segs_a, normalize), _scale(segs_b, normalize)
    rows = []
    for op, i, j in align([_key(s.text) for s in segs_a], [_key(s.text) for s in segs_b]):
        a = segs_a[i] if i is not None else None
        b = segs_b[j] if j is not None else None
        score_a = a.score * scale_a if a is not None else math.nan
        score_b = b.score * scale_b if b is not None else math.nan
        rows.append({
            "op": op,
            "label_a": getattr(a, "label", "") if a is not None else None,
            "text_a": a.text if a is not None else None,
            "start_a": a.start if a is not None else None,
            "end_a": a.end if a is not None else None,
            "score_a": score_a,
            "label_b": getattr(b, "label", "") if b is not None else None,
            "text_b": b.text if b is not None else None,
            "start_b": b.start if b is not None else None,
            "end_b": b.end if b is not None else None,
            "score_b": score_b,
            "delta": (0.0 if b is None else score_b) - (0.0 if a is None else score_a),
        })
    table = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    for col in ("start_a", "end_a", "start_b", "end_b"):
        table[col] = table[col].astype("Int64")
    table["score_a"] = table["score_a"].astype(float)
    table["score_b"] = table["score_b"].astype(float)
    table["delta"] = table["delta"].astype(float)
    table.attrs.update({
        "method_a": span_a.method, "method_b": span_b.method,
        "granularity": str(g_a) if str(g_a) == str(g_b) else f"{g_a} | {g_b}",
        "signed": bool(span_a.signed or span_b.signed), "normalize": bool(normalize),
        "target_a": span_a.target_text, "target_b": span_b.target_text,
    })
    return table


def changed_most(table: pd.DataFrame, k: int | None = 10) -> pd.DataFrame:
    """The rows of a `compare` table whose salience changed most: by ``|delta|``, largest first
    (ties keep prompt order); rows with ``delta == 0`` are left out."""
    moved = table[table["delta"].abs() > 0]
    order = np.argsort(-moved["delta"].abs().to_numpy(), kind="stable")
    ranked = moved.iloc[order]
    return ranked if k is None else ranked.head(max(int(k), 0))


def compare_responses(tokens_a: Sequence[str], logprobs_a: Sequence[float] | None,
                      tokens_b: Sequence[str], logprobs_b: Sequence[float] | None
                      ) -> pd.DataFrame:
    """Aligns two responses token by token, with each token's log-probability.

    Args:
        tokens_a, tokens_b: the responses' display tokens (``T_a`` and ``T_b``).
        logprobs_a, logprobs_b: ``<float>[T_a]`` / ``<float>[T_b]`` log p(token | prompt,
            earlier tokens), or None when unknown.

    Returns:
        A `pandas.DataFrame` with `TOKEN_COLUMNS`: ``op`` (`OPS`, by `align` on the token
        strings), each side's token ``index`` / ``token`` / ``logprob`` (None / NaN where
        missing) and ``delta = logprob_b - logprob_a`` for ``equal`` tokens (NaN otherwise:
        the probabilities of different tokens do not compare).

    Raises:
        ValueError: log-probabilities of another length than the tokens.
    """
    for name, toks, lps in (("a", tokens_a, logprobs_a), ("b", tokens_b, logprobs_b)):
        if lps is not None and len(lps) != len(toks):
            raise ValueError(f"compare_responses: {len(lps)} log-probs for {len(toks)} tokens "
                             f"of response {name}; pass one per token")
    rows = []
    for op, i, j in align([str(t) for t in tokens_a], [str(t) for t in tokens_b]):
        lp_a = float(logprobs_a[i]) if i is not None and logprobs_a is not None else math.nan
        lp_b = float(logprobs_b[j]) if j is not None and logprobs_b is not None else math.nan
        rows.append({"op": op, "index_a": i, "token_a": tokens_a[i] if i is not None else None,
                     "logprob_a": lp_a, "index_b": j,
                     "token_b": tokens_b[j] if j is not None else None, "logprob_b": lp_b,
                     "delta": lp_b - lp_a if op == "equal" else math.nan})
    table = pd.DataFrame(rows, columns=list(TOKEN_COLUMNS))
    for col in ("index_a", "index_b"):
        table[col] = table[col].astype("Int64")
    for col in ("logprob_a", "logprob_b", "delta"):
        table[col] = table[col].astype(float)
    return table


@dataclasses.dataclass(frozen=True)
class PromptComparison:
    """Everything `compare_examples` found (the UI and the CLI draw it).

    Attributes:
        sal_a, sal_b: the two `SequenceSalience` results (cached, shared: never change them).
        segments: `compare`'s table. responses: `compare_responses`'s table.
        text_a, text_b: the texts explained (the same one with ``target="same"``).
        target: what was explained (`TARGETS`). method: the salience method.
        granularity: the granularity name (or description) used.
    """

    sal_a: Any
    sal_b: Any
    segments: pd.DataFrame
    responses: pd.DataFrame
    text_a: str
    text_b: str
    target: str
    method: str
    granularity: str


def _model_of(workbench: Any, model: str) -> Any:
    m = workbench.models[model]
    return m.unwrap() if callable(getattr(m, "unwrap", None)) else m


def _logprobs_of_text(workbench: Any, model: str, example: Mapping[str, Any], text: str
                      ) -> list[float] | None:
    """``<float>[T]`` log-probabilities of ``text``'s tokens as a continuation of
    ``example``'s prompt, when the model can score a given text (`KerasCausalLM.log_probs`)."""
    inner = _model_of(workbench, model)
    scorer = getattr(inner, "log_probs", None)
    if not callable(scorer):
        return None
    prompt_of = getattr(inner, "prompt_of", None)
    prompt = prompt_of(example) if callable(prompt_of) else example.get("prompt", "")
    kwargs = {"chat_template": example["chat_template"]} if example.get("chat_template") else {}
    return [float(x) for x in np.asarray(scorer(prompt, text, **kwargs)).reshape(-1)]


def _fits(logprobs: Sequence[float] | None, tokens: Sequence[str]) -> list[float] | None:
    return list(logprobs) if logprobs and len(logprobs) == len(tokens) else None


def compare_examples(workbench: Any, model: str, dataset: str, example_a: Mapping[str, Any],
                     example_b: Mapping[str, Any], *,
                     granularity: Granularity = "sentences", target: str = "response",
                     method: str = "grad_l2", normalize: bool = False,
                     separator: str | None = None, include_template: bool = False,
                     progress: ProgressFn | None = None) -> PromptComparison:
    """Explains two examples with one model and compares them (`compare`, `compare_responses`).

    Predictions and salience come from the Workbench (cached), so comparing again, or with
    another granularity, costs no model call.

    Args:
        workbench: the `promptlit.workbench.Workbench`.
        model: a language model's name (it has ``salience``). dataset: the examples' dataset.
        example_a, example_b: the two examples (e.g. a few-shot prompt and its fixed version,
            or an example and its edit).
        granularity: a name from `promptlit.lib.segmentation.ALL_GRANULARITIES` ("segments"
            uses each example's own labelled segments; "blocks" needs ``separator``) or a
            `Segmentation`.
        target: "response" (each explained for its own generated response), "target" (each for
            its own reference ``target``) or "same" (both for A's response: how the edit moved
            what the model looks at for the same text).
        method: "grad_l2" or "grad_dot_input" (the methods with a full matrix).
        normalize: compare shares of each prompt's total salience (`compare`).
        separator: the separator regex for ``granularity="blocks"``.
        include_template: keep chat-template segments in the table.
        progress: ``progress(fraction, message)``; it may raise to stop between pieces.

    Raises:
        ValueError: an unknown target or method, an empty response, a granularity that does not
            apply to an example (each with how to fix it).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if method not in ("grad_l2", "grad_dot_input"):
        raise ValueError(f"method must be 'grad_l2' or 'grad_dot_input' (the methods with a "
                         f"full matrix), got {method!r}")
    g_a = resolve_granularity(granularity, example=example_a, separator=separator)
    g_b = resolve_granularity(granularity, example=example_b, separator=separator)

    def report(lo: float, hi: float) -> ProgressFn | None:
        if progress is None:
            return None
        return lambda f, msg: progress(lo + (hi - lo) * min(max(float(f), 0.0), 1.0), msg)

    preds = workbench.predict(model, dataset, [example_a, example_b], progress=report(0.0, 0.4))
    if target == "same":
        text_a = text_b = str(preds[0].get("response", ""))
        if not text_a:
            raise ValueError("A's response is empty: there is no text to explain for both")
        sal_a = workbench.salience(model, dict(example_a), response=text_a, methods=(method,),
                                   progress=report(0.4, 0.7))
        sal_b = workbench.salience(model, dict(example_b), response=text_b, methods=(method,),
                                   progress=report(0.7, 1.0))
    else:
        sal_a = workbench.salience(model, dict(example_a), target=target, methods=(method,),
                                   progress=report(0.4, 0.7))
        sal_b = workbench.salience(model, dict(example_b), target=target, methods=(method,),
                                   progress=report(0.7, 1.0))
        text_a, text_b = sal_a.response_text, sal_b.response_text
    table = compare(sal_a, sal_b, (g_a, g_b), method=method, normalize=normalize,
                    include_template=include_template)
    key = "response" if target != "target" else "target"
    tokens_a = list(preds[0].get(f"{key}_tokens") or sal_a.response_tokens)
    tokens_b = list(preds[1].get(f"{key}_tokens") or sal_b.response_tokens)
    lps_a = _fits(preds[0].get(f"{key}_logprobs"), tokens_a)
    lps_b = _fits(preds[1].get(f"{key}_logprobs"), tokens_b)
    if target == "same":  # B's log-probs of A's response: scored for this comparison
        tokens_b = tokens_a
        lps_b = _fits(_logprobs_of_text(workbench, model, example_b, text_b), tokens_b)
        if lps_b is None:  # another tokenisation than the generation's: score both the same way
            tokens_a = tokens_b = list(sal_a.response_tokens)
            lps_a = _fits(_logprobs_of_text(workbench, model, example_a, text_a), tokens_a)
            lps_b = _fits(_logprobs_of_text(workbench, model, example_b, text_b), tokens_b)
    responses = compare_responses(tokens_a, lps_a, tokens_b, lps_b)
    return PromptComparison(sal_a=sal_a, sal_b=sal_b, segments=table, responses=responses,
                            text_a=text_a, text_b=text_b, target=target, method=method,
                            granularity=table.attrs["granularity"])
