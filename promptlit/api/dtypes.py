"""Structured values carried by some LitTypes (spans, edges, salience maps, per-example results).

As in LIT (`lit_nlp.api.dtypes`), each is a small frozen dataclass ("data tuple") whose
`to_json()` is `{"__class__": "DataTuple", "__name__": <class name>, **fields}`; nested data tuples
are serialized recursively, numpy arrays are left as arrays (`promptlit.lib.serialize` encodes
them). `DataTuple.from_json(d)` rebuilds the exact class.

Example:
    >>> s = TokenSalience(tokens=["a", "b"], salience=[0.25, 0.75])
    >>> DataTuple.from_json(s.to_json()) == s
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

JsonDict = dict[str, Any]

_REGISTRY: dict[str, type[DataTuple]] = {}


def _equal(a: Any, b: Any) -> bool:
    """Structural equality that also works for numpy arrays nested in lists/dicts."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except (TypeError, ValueError):
            return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclasses.dataclass(frozen=True, eq=False)
class DataTuple:
    """Base class of structured values; JSON round-trips through `to_json` / `from_json`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _equal(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
        )

    __hash__ = None  # type: ignore[assignment]  # values may hold lists / arrays

    def to_json(self) -> JsonDict:
        """`{"__class__": "DataTuple", "__name__": ..., **fields}`; nested tuples serialized."""
        d: JsonDict = {"__class__": "DataTuple", "__name__": type(self).__name__}
        for f in dataclasses.fields(self):
            d[f.name] = _to_json_value(getattr(self, f.name))
        return d

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> DataTuple:
        """Rebuilds the data tuple named by `d["__name__"]`."""
        name = d.get("__name__")
        cls = _REGISTRY.get(name) if isinstance(name, str) else None
        if cls is None:
            raise NameError(f"{name!r} is not a known DataTuple; known: {sorted(_REGISTRY)}.")
        kwargs = {
            k: _from_json_value(v) for k, v in d.items() if k not in ("__name__", "__class__")
        }
        return cls(**kwargs)


def _to_json_value(v: Any) -> Any:
    if isinstance(v, DataTuple):
        return v.to_json()
    if isinstance(v, list):
        return [_to_json_value(x) for x in v]
    return v


def _from_json_value(v: Any) -> Any:
    if isinstance(v, Mapping) and v.get("__class__") == "DataTuple":
        return DataTuple.from_json(v)
    if isinstance(v, list):
        return [_from_json_value(x) for x in v]
    return v


@dataclasses.dataclass(frozen=True, eq=False)
class SpanLabel(DataTuple):
    """A labelled span `[start, end)`; `align` optionally names the segment it indexes."""

    start: int
    end: int
    label: str | None = None
    align: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class EdgeLabel(DataTuple):
    """A labelled edge between two spans `(start, end)`; `span2` may be None for unary edges."""

    span1: tuple[int, int]
    span2: tuple[int, int] | None
    label: str | int | float

    def __post_init__(self) -> None:
        object.__setattr__(self, "span1", tuple(self.span1))
        if self.span2 is not None:
            object.__setattr__(self, "span2", tuple(self.span2))


@dataclasses.dataclass(frozen=True, eq=False)
class AnnotationCluster(DataTuple):
    """A label with an optional score, attached to one or more spans (possibly across segments)."""

    label: str
    spans: list[SpanLabel]
    score: float | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class TokenSalience(DataTuple):
    """Per-token salience: `tokens <str>[num_tokens]`, `salience <float>[num_tokens]`."""

    tokens: Sequence[str]
    salience: Sequence[float] | np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureSalience(DataTuple):
    """Per-feature salience: `salience` maps feature (field) name -> score."""

    salience: dict[str, float]


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceSalienceMap(DataTuple):
    """Target x source salience, as in LIT.

    `salience` is `<float>[num_tokens_out, num_tokens_in + num_tokens_out]`: row t scores every
    input token and every output token for output token t (causal LMs give zero to later ones).
    """

    tokens_in: Sequence[str]
    tokens_out: Sequence[str]
    salience: np.ndarray | Sequence[Sequence[float]]


@dataclasses.dataclass(frozen=True, eq=False)
class RegressionResult(DataTuple):
    """A regression prediction with its error against the label (None without a label)."""

    score: float
    error: float | None = None
    squared_error: float | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class ClassificationResult(DataTuple):
    """Class scores `<float>[num_labels]`, the predicted class and whether it is correct."""

    scores: Sequence[float] | np.ndarray
    predicted_class: str
    correct: bool | None = None
