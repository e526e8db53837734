"""Sequence salience results: the full target×source matrix and the views the UI asks for.

A `SequenceSalience` holds, for one prompt + response, the salience of every input token (prompt
then response, ``N`` tokens) for every response token (``T = N - num_prompt_tokens``), per method.
Picking a response span and a granularity is then pure numpy: `SequenceSalience.for_span` sums the
selected rows into a `SpanSalience`, whose `SpanSalience.aggregate` sums tokens into words,
sentences, lines or paragraphs (rules in `promptlit.salience.aggregation`).

Results are **immutable values**: they live in caches shared by every session, so nothing in
them can be changed in place (arrays are read-only, mappings are read-only views, attributes are
frozen). Adding a span's scores returns a new object (`SequenceSalience.with_span_scores`), and
the settings that produced a method's numbers (IG steps, baseline) travel in the metadata
(`SequenceSalience.settings_for`), so scores made with other settings are never mixed in.

Scores are **sums**, exact at every level: a span's salience is the sum of its tokens' rows, a
segment's score the sum of its tokens' scores. Colour is a separate, per-view concern:
`normalize_for_display` rescales the scores of one view to [-1, 1] (signed methods) or [0, 1]
(unsigned) for the heatmap only; never feed normalised values back into sums.

Example:
    >>> import numpy as np
    >>> sal = SequenceSalience(
    ...     text="Say hi. Hi!", prompt_length=7, tokens=["Say", " hi", ".", " Hi", "!"],
    ...     offsets=np.array([[0, 3], [3, 6], [6, 7], [7, 10], [10, 11]]), num_prompt_tokens=3,
    ...     matrices={"grad_l2": np.array([[1.0, 2.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 3.0, 0.0]])})
    >>> span = sal.for_span(0, 2)
    >>> span.scores.tolist()
    [1.0, 3.0, 0.5, 3.0, 0.0]
    >>> [(s.text, s.score) for s in span.aggregate("words")]
    [('Say', 1.0), ('hi.', 3.5)]
"""

from __future__ import annotations

import base64
import dataclasses
import types
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from promptlit.lib.serialize import json_safe
from promptlit.salience.aggregation import (
    GRANULARITIES,
    Granularity,
    Segment,
    TemplateSegment,
    aggregate,
    assign_tokens,
)

__all__ = [
    "DEFAULT_SIGNED",
    "GRANULARITIES",
    "Segment",
    "SequenceSalience",
    "SpanNotComputedError",
    "SpanSalience",
    "TargetSegment",
    "TemplateSegment",
    "normalize_for_display",
]

JSON_VERSION = 1

DEFAULT_SIGNED: dict[str, bool] = {
    "grad_l2": False,
    "grad_norm": False,
    "grad_dot_input": True,
    "integrated_gradients": True,
    "ig": True,
    "attention": False,
}
"""Whether a method's scores are signed, for methods whose `signed` entry is not given."""

SIDES = ("prompt", "response", "all")


class TargetSegment(NamedTuple):
    """A piece of the response to select as a target: text, chars and response-token range.

    ``token_start``/``token_stop`` are response-token indices (0 = first response token), ready
    for ``SequenceSalience.for_span(token_start, token_stop)``.
    """

    text: str
    start: int
    end: int
    token_start: int
    token_stop: int


class SpanNotComputedError(KeyError):
    """Salience for this (method, span) has not been computed: there is no matrix for the method.

    Methods such as Integrated Gradients are computed per span by a kernel
    (`promptlit.salience.kernels.span_salience`, or ``model.salience(..., span=(a, b))``); a result
    holding them is made with `SequenceSalience.with_span_scores`.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def normalize_for_display(scores: np.ndarray, signed: bool) -> np.ndarray:
    """Rescale one view's scores for colour: ``<float>[K]`` in [-1, 1] (signed) or [0, 1].

    Signed scores are divided by their largest absolute value (0 stays 0, so white = no effect);
    unsigned scores are clipped at 0 and divided by their maximum. All-zero input gives zeros; NaN
    and infinities count as 0. This is for colour only: the sums shown as numbers stay exact.

    Args:
        scores: ``<float>[K]`` segment or token scores of one view.
        signed: whether the method is signed.
    """
    x = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if not signed:
        x = np.clip(x, 0.0, None)
    scale = np.max(np.abs(x)) if x.size else 0.0
    return x / scale if scale > 0 else np.zeros_like(x)


def _encode_array(x: np.ndarray) -> dict[str, Any]:
    x = np.ascontiguousarray(x)
    return {
        "__ndarray__": base64.b64encode(x.tobytes()).decode("ascii"),
        "dtype": x.dtype.str,
        "shape": list(x.shape),
    }


def _decode_array(d: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(d, Mapping) and "__ndarray__" in d:
        x = np.frombuffer(base64.b64decode(d["__ndarray__"]), dtype=np.dtype(d["dtype"]))
        x = x.reshape(d["shape"]).copy()
    else:
        x = np.asarray(d)
    return x.astype(dtype) if dtype is not None else x


def _readonly(x: Any, dtype: Any = None) -> np.ndarray:
    """A read-only array nobody else can write to: ``x`` itself when it is already a read-only
    array owning its data (of ``dtype``), else a read-only copy."""
    if (isinstance(x, np.ndarray) and not x.flags.writeable and x.base is None
            and (dtype is None or x.dtype == np.dtype(dtype))):
        return x
    out = np.array(x, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


def _freeze(value: Any) -> Any:
    """A deep read-only copy of JSON-like ``value``: mappings become read-only views, lists and
    tuples tuples, arrays read-only arrays, numpy scalars Python scalars."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, np.ndarray):
        return _readonly(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _mask_from_indices(indices: Sequence[int], n: int) -> np.ndarray:
    """``<bool>[n]`` with the given token indices set (the JSON form of a template mask)."""
    mask = np.zeros(n, dtype=bool)
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"SequenceSalience JSON: template_mask indices must be token indices "
                         f"0..{n - 1}; got {idx.min()}..{idx.max()}.")
    mask[idx] = True
    return mask


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceSalience:
    """Salience of every input token for every response token of one prompt + response.

    An immutable value (it is shared through caches): the constructor copies what it is given
    into read-only arrays and read-only mappings, and attributes cannot be reassigned. Derive a
    new result with `with_span_scores` (or `dataclasses.replace`).

    Attributes:
        text: prompt + response, the exact characters the offsets index.
        prompt_length: number of characters of ``text`` that belong to the prompt.
        tokens: ``N`` display tokens, a tuple (cleaned, see
            `promptlit.salience.aggregation.clean_tokens`).
        offsets: ``<int>[N, 2]`` char ``[start, end)`` of each token in ``text`` (read-only).
        num_prompt_tokens: tokens ``[0, num_prompt_tokens)`` are the prompt.
        matrices: method -> ``<float>[T, N]``, row ``t`` = salience of all ``N`` input tokens for
            response token ``t`` (``T = N - num_prompt_tokens``); read-only.
        signed: method -> whether its scores are signed (missing entries come from
            `DEFAULT_SIGNED`, else from the data: signed if any score is negative).
        span_scores: ``(method, start, stop)`` -> ``<float>[N]`` salience of the response-token
            span ``[start, stop)`` computed directly (e.g. Integrated Gradients per span).
        metadata: free JSON-safe facts (model name, ...), frozen (lists become tuples). Its
            ``"settings"`` entry maps a method to the settings its numbers were computed with
            (e.g. ``{"integrated_gradients": {"ig_steps": 16, "ig_baseline": "zero"}}``).
        template_mask: ``<bool>[N]``, True for chat-template tokens (``<start_of_turn>``, role
            words, control tokens; see `promptlit.models.chat`); read-only, all False when not
            given. Their salience is computed like any token's; the views make each one a
            `TemplateSegment` and leave them out of rankings and colour ranges by default.
    """

    text: str
    prompt_length: int
    tokens: Sequence[str]
    offsets: np.ndarray
    num_prompt_tokens: int
    matrices: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    signed: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    span_scores: Mapping[tuple[str, int, int], np.ndarray] = dataclasses.field(
        default_factory=dict)
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    template_mask: np.ndarray = dataclasses.field(default=())  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        set_("tokens", tuple(str(t) for t in self.tokens))
        set_("offsets", _readonly(np.asarray(self.offsets, dtype=np.int64).reshape(-1, 2)))
        set_("prompt_length", int(self.prompt_length))
        set_("num_prompt_tokens", int(self.num_prompt_tokens))
        n = len(self.offsets)
        if len(self.tokens) != n:
            raise ValueError(
                f"SequenceSalience: {len(self.tokens)} tokens but {n} offsets; each token needs "
                "one [char_start, char_end] pair."
            )
        if not 0 <= self.prompt_length <= len(self.text):
            raise ValueError(
                f"SequenceSalience: prompt_length={self.prompt_length} must be within the text "
                f"(0..{len(self.text)})."
            )
        if not 0 <= self.num_prompt_tokens <= n:
            raise ValueError(
                f"SequenceSalience: num_prompt_tokens={self.num_prompt_tokens} must be within "
                f"0..{n} (the number of tokens)."
            )
        if n and (self.offsets.min() < -1 or self.offsets.max() > len(self.text)):
            raise ValueError(
                f"SequenceSalience: offsets must lie within the text (0..{len(self.text)}); got "
                f"range {self.offsets.min()}..{self.offsets.max()}."
            )
        t = n - self.num_prompt_tokens
        matrices = {}
        for method, matrix in self.matrices.items():
            matrix = _readonly(matrix)
            if matrix.shape != (t, n):
                raise ValueError(
                    f"SequenceSalience: matrices[{method!r}] has shape {matrix.shape}; expected "
                    f"[num_response_tokens, num_tokens] = [{t}, {n}]."
                )
            matrices[str(method)] = matrix
        set_("matrices", types.MappingProxyType(matrices))
        span_scores = {}
        for key, scores in self.span_scores.items():
            method, start, stop = key
            self._check_span(int(start), int(stop))
            span_scores[(str(method), int(start), int(stop))] = self._check_scores(method, scores)
        set_("span_scores", types.MappingProxyType(span_scores))
        signed = {str(k): bool(v) for k, v in self.signed.items()}
        for method in self.methods:
            if method not in signed:
                signed[method] = DEFAULT_SIGNED.get(method, self._any_negative(method))
        set_("signed", types.MappingProxyType(signed))
        set_("metadata", _freeze(self.metadata))
        mask = np.asarray(self.template_mask, dtype=bool).reshape(-1)
        if mask.size == 0:
            mask = np.zeros(n, dtype=bool)
        if mask.shape != (n,):
            raise ValueError(
                f"SequenceSalience: template_mask has {mask.size} entries; expected one per "
                f"token ({n})."
            )
        set_("template_mask", _readonly(mask))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles (the SQLite cache, copies) through `to_json`: exact, and frozen again on load."""
        return (type(self).from_json, (self.to_json(),))

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        """Loads pickles of the earlier, mutable class (attribute dicts) as frozen values."""
        object.__setattr__(self, "template_mask", ())  # absent from older pickles
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    # ----------------------------------------------------------------------------- properties
    @property
    def prompt_text(self) -> str:
        """The prompt: ``text[:prompt_length]``."""
        return self.text[: self.prompt_length]

    @property
    def response_text(self) -> str:
        """The response: ``text[prompt_length:]``."""
        return self.text[self.prompt_length :]

    @property
    def has_template(self) -> bool:
        """Whether some tokens are chat-template tokens (`template_mask`)."""
        return bool(self.template_mask.any())

    @property
    def num_tokens(self) -> int:
        """``N``, prompt and response tokens."""
        return len(self.tokens)

    @property
    def num_response_tokens(self) -> int:
        """``T``, the response (target) tokens."""
        return self.num_tokens - self.num_prompt_tokens

    @property
    def response_tokens(self) -> list[str]:
        """The ``T`` display tokens of the response (a new list)."""
        return list(self.tokens[self.num_prompt_tokens :])

    @property
    def contrast(self) -> Mapping[str, Any] | None:
        """The alternative B these scores contrast the span A with ("why A rather than B?"), or
        None for plain salience: ``metadata["contrast"]`` with ``text``, ``start``, ``stop`` (the
        span A), B's ``tokens``, ``log_prob`` (of A) and ``log_prob_contrast`` (of B); see
        `promptlit.salience.contrast`. A contrastive result has span scores only."""
        value = self.metadata.get("contrast")
        return value if isinstance(value, Mapping) else None

    @property
    def methods(self) -> list[str]:
        """Methods available: those with a matrix first, then span-only ones (e.g. IG)."""
        out = list(self.matrices)
        for method, _, _ in self.span_scores:
            if method not in out:
                out.append(method)
        return out

    @property
    def matrix(self) -> np.ndarray:
        """``<float>[T, N]`` the matrix of the first method that has one."""
        if not self.matrices:
            raise SpanNotComputedError(
                "This SequenceSalience has no full matrix (only per-span scores for "
                f"{self.methods}); compute one with salience_matrix(...)."
            )
        return next(iter(self.matrices.values()))

    # ------------------------------------------------------------------------------- helpers
    def _any_negative(self, method: str) -> bool:
        if method in self.matrices:
            return bool((self.matrices[method] < 0).any())
        return any(bool((v < 0).any()) for (m, _, _), v in self.span_scores.items() if m == method)

    def _check_span(self, start: int, stop: int) -> None:
        t = self.num_response_tokens
        if not 0 <= start < stop <= t:
            raise IndexError(
                f"Response-token span [{start}, {stop}) is invalid: need 0 <= start < stop <= "
                f"{t} (the response has {t} tokens; indices are relative to the response, "
                "stop exclusive)."
            )

    def _check_scores(self, method: str, scores: Any) -> np.ndarray:
        scores = _readonly(scores)
        if scores.shape != (self.num_tokens,):
            raise ValueError(
                f"span scores for {method!r} have shape {scores.shape}; expected [num_tokens] = "
                f"[{self.num_tokens}]."
            )
        return scores

    def settings_for(self, method: str) -> Mapping[str, Any]:
        """The settings ``method``'s numbers were computed with (e.g. ``{"ig_steps": 16,
        "ig_baseline": "zero"}``), from ``metadata["settings"]``; empty when none are recorded."""
        return self.metadata.get("settings", {}).get(method, types.MappingProxyType({}))

    def with_span_scores(self, method: str, start: int, stop: int, scores: Any, *,
                         signed: bool | None = None,
                         settings: Mapping[str, Any] | None = None) -> SequenceSalience:  # fmt: skip
        """A new result: this one plus directly computed salience of response span ``[start, stop)``.

        This result is not changed (it may be shared through a cache).

        Args:
            method: the method (e.g. "integrated_gradients").
            start, stop: the response-token span (stop exclusive).
            scores: ``<float>[N]`` salience of every token for the span (copied, read-only).
            signed: whether the method is signed (default: this result's entry, else
                `DEFAULT_SIGNED`, else signed if any score is negative).
            settings: what the scores were computed with (e.g. ``{"ig_steps": 16}``), recorded
                in ``metadata["settings"][method]``.

        Raises:
            IndexError: bad span. ValueError: scores of the wrong shape, or ``settings`` that
                contradict the ones this result's ``method`` numbers were computed with (one
                result holds one setting per method; keep other settings in separate results).
        """
        start, stop = int(start), int(stop)
        self._check_span(start, stop)
        scores = self._check_scores(method, scores)
        metadata = dict(self.metadata)
        if settings:
            have = dict(self.settings_for(method))
            clash = {k: (v, have[k]) for k, v in settings.items() if k in have and have[k] != v}
            if clash:
                got = ", ".join(f"{k}={new!r}" for k, (new, _) in clash.items())
                held = ", ".join(f"{k}={old!r}" for k, (_, old) in clash.items())
                raise ValueError(
                    f"with_span_scores: these {method!r} scores were computed with {got}, but "
                    f"this result's {method!r} numbers were computed with {held}. One result "
                    "holds one setting per method: keep these in separate results (e.g. ask "
                    "Workbench.salience with those settings; its cache keys hold them)."
                )
            all_settings = {k: dict(v) for k, v in self.metadata.get("settings", {}).items()}
            all_settings[method] = {**have, **settings}
            metadata["settings"] = all_settings
        sign = dict(self.signed)
        if signed is not None:
            sign[method] = bool(signed)
        return dataclasses.replace(
            self,
            span_scores={**self.span_scores, (str(method), start, stop): scores},
            signed=sign,
            metadata=metadata,
        )

    # -------------------------------------------------------------------------------- views
    def for_span(self, start: int, stop: int, method: str | None = None) -> SpanSalience:
        """Salience of every input token for the response tokens ``[start, stop)``.

        Args:
            start: first response token (0 = the first token of the response).
            stop: one past the last response token.
            method: a method from `methods`; default the first.

        Returns:
            A `SpanSalience` whose ``scores <float>[N]`` are the sum of the matrix rows
            ``start..stop-1``, or the stored ``span_scores`` for methods without a matrix.

        Raises:
            IndexError: bad span. KeyError: unknown method. SpanNotComputedError (a KeyError):
            the method has no matrix and this span was not computed yet.
        """
        if isinstance(start, bool) or isinstance(stop, bool):
            raise TypeError("for_span(start, stop): indices must be ints, not bools.")
        start, stop = int(start), int(stop)
        self._check_span(start, stop)
        methods = self.methods
        if method is None:
            if not methods:
                raise KeyError("This SequenceSalience holds no salience methods at all.")
            method = methods[0]
        if method in self.matrices:
            scores = self.matrices[method][start:stop].sum(axis=0, dtype=np.float64)
        elif (method, start, stop) in self.span_scores:
            scores = self.span_scores[(method, start, stop)]
        elif method in methods:
            computed = sorted((a, b) for m, a, b in self.span_scores if m == method)
            raise SpanNotComputedError(
                f"{method!r} salience for response span [{start}, {stop}) has not been computed "
                f"(it has no full matrix; computed spans: {computed}). Compute it with "
                "model.salience(..., span=(start, stop)) (or kernels.span_salience and "
                f"with_span_scores), or use one of the matrix methods {list(self.matrices)}."
            )
        else:
            raise SpanNotComputedError(
                f"Unknown salience method {method!r}; this result has {methods}."
            )
        return SpanSalience(
            parent=self,
            method=method,
            start=start,
            stop=stop,
            scores=scores,
            signed=self.signed[method],
        )

    def response_segments(self, granularity: Granularity) -> list[TargetSegment]:
        """The response split at ``granularity``, each piece with its response-token range.

        Segments to which no token is assigned (possible only for tokens straddling words) are
        left out. Token ranges are ``[min, max + 1)`` of the assigned tokens, which is exactly the
        assigned set for tokenizers with increasing offsets.
        """
        p = self.num_prompt_tokens
        offsets = self.offsets[p:]
        spans, segment_of = assign_tokens(
            offsets, self.text, granularity, char_range=(self.prompt_length, len(self.text)),
            template_mask=self.template_mask[p:],
        )
        out = []
        tokens = self.response_tokens
        for index, (s, e) in enumerate(spans):
            members = np.flatnonzero(segment_of == index)
            if not len(members):
                continue
            text = tokens[members[0]] if granularity == "tokens" else self.text[s:e]
            out.append(TargetSegment(text, s, e, int(members[0]), int(members[-1]) + 1))
        return out

    # ---------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (arrays as base64 with dtype and shape: exact and compact)."""
        return {
            "__name__": "SequenceSalience",
            "version": JSON_VERSION,
            "text": self.text,
            "prompt_length": int(self.prompt_length),
            "tokens": list(self.tokens),
            "offsets": _encode_array(self.offsets),
            "num_prompt_tokens": int(self.num_prompt_tokens),
            "matrices": {m: _encode_array(x) for m, x in self.matrices.items()},
            "signed": dict(self.signed),
            "span_scores": [
                {"method": m, "start": int(a), "stop": int(b), "scores": _encode_array(x)}
                for (m, a, b), x in self.span_scores.items()
            ],
            "metadata": json_safe(self.metadata),
            **({"template_mask": np.flatnonzero(self.template_mask).tolist()}
               if self.has_template else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SequenceSalience:
        """Inverse of `to_json` (arrays may also be plain nested lists)."""
        version = d.get("version", JSON_VERSION)
        if version > JSON_VERSION:
            raise ValueError(
                f"SequenceSalience JSON version {version} is newer than this promptlit "
                f"({JSON_VERSION}); upgrade promptlit or clear the cache."
            )
        return cls(
            text=d["text"],
            prompt_length=int(d["prompt_length"]),
            tokens=list(d["tokens"]),
            offsets=_decode_array(d["offsets"], np.int64).reshape(-1, 2),
            num_prompt_tokens=int(d["num_prompt_tokens"]),
            matrices={m: _decode_array(x) for m, x in d.get("matrices", {}).items()},
            signed=dict(d.get("signed", {})),
            span_scores={
                (e["method"], int(e["start"]), int(e["stop"])): _decode_array(e["scores"])
                for e in d.get("span_scores", [])
            },
            metadata=dict(d.get("metadata", {})),
            template_mask=_mask_from_indices(d.get("template_mask", ()),
                                             len(d["tokens"])),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class SpanSalience:
    """Salience of all ``N`` input tokens for one response span ``[start, stop)`` and one method.

    Immutable, like its parent: ``scores`` is a read-only float64 array.

    Attributes:
        parent: the `SequenceSalience` it came from (text, tokens, offsets, settings).
        method: the salience method.
        start, stop: the response-token span (relative to the response, stop exclusive).
        scores: ``<float>[N]`` per input token (prompt then response).
        signed: whether the method's scores are signed.
    """

    parent: SequenceSalience
    method: str
    start: int
    stop: int
    scores: np.ndarray
    signed: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", _readonly(self.scores, np.float64))

    @property
    def settings(self) -> Mapping[str, Any]:
        """What the scores were computed with (e.g. ``{"ig_steps": 16, "ig_baseline": "zero"}``),
        ``parent.settings_for(method)``."""
        return self.parent.settings_for(self.method)

    @property
    def target_chars(self) -> tuple[int, int]:
        """Char ``[start, end)`` in ``parent.text`` of the selected response tokens."""
        offs = self.parent.offsets[self.parent.num_prompt_tokens + self.start :][
            : self.stop - self.start
        ]
        valid = offs[offs[:, 1] > offs[:, 0]]
        if not len(valid):
            return (self.parent.prompt_length, self.parent.prompt_length)
        return int(valid[:, 0].min()), int(valid[:, 1].max())

    @property
    def target_text(self) -> str:
        """The selected part of the response."""
        s, e = self.target_chars
        return self.parent.text[s:e]

    def aggregate(self, granularity: Granularity, side: str = "prompt") -> list[Segment]:
        """Sum the token scores into segments.

        Args:
            granularity: "tokens", "words", "sentences", "lines", "paragraphs", "turns",
                "few-shot", or a `promptlit.lib.segmentation.Segmentation` (custom segments:
                `LabelledSegment` objects carrying their labels).
            side: "prompt" (the prompt tokens only), "response", or "all" (the prompt's segments
                followed by the response's; each side is segmented on its own).

        Returns:
            ``Segment(text, start, end, score)`` in text order; positions index ``parent.text``.
            Chat-template tokens (``parent.template_mask``) are `TemplateSegment` objects of their
            own, with their scores (drop them with ``[s for s in segs if not
            isinstance(s, TemplateSegment)]``).
        """
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}; got {side!r}.")
        p = self.parent
        out: list[Segment] = []
        k = p.num_prompt_tokens
        if side in ("prompt", "all"):
            out += aggregate(
                self.scores[:k], p.offsets[:k], p.text, granularity,
                char_range=(0, p.prompt_length), tokens=p.tokens[:k],
                template_mask=p.template_mask[:k],
            )  # fmt: skip
        if side in ("response", "all"):
            out += aggregate(
                self.scores[k:], p.offsets[k:], p.text, granularity,
                char_range=(p.prompt_length, len(p.text)), tokens=p.tokens[k:],
                template_mask=p.template_mask[k:],
            )  # fmt: skip
        return out

    def top(self, k: int, granularity: Granularity = "words", side: str = "prompt", *,
            include_template: bool = False) -> list[Segment]:
        """The ``k`` most salient segments, highest first: by ``|score|`` if signed else score.

        Chat-template segments are left out unless ``include_template``.
        """
        segments = self.aggregate(granularity, side)
        if not include_template:
            segments = [s for s in segments if not isinstance(s, TemplateSegment)]
        key = (lambda s: -abs(s.score)) if self.signed else (lambda s: -s.score)
        return sorted(segments, key=key)[: max(int(k), 0)]

    def display_scores(self, granularity: Granularity, side: str = "prompt", *,
                       include_template: bool = False) -> list[tuple[Segment, float]]:
        """Segments paired with their colour value (`normalize_for_display` over this view).

        Chat-template segments do not set the colour range and get colour 0.0 unless
        ``include_template`` (their exact scores stay on the segments).
        """
        segments = self.aggregate(granularity, side)
        counted = np.array([include_template or not isinstance(s, TemplateSegment)
                            for s in segments], dtype=bool)
        scores = np.array([s.score for s in segments], dtype=np.float64)
        colours = np.zeros(len(segments))
        colours[counted] = normalize_for_display(scores[counted], self.signed)
        return list(zip(segments, colours.tolist(), strict=True))
