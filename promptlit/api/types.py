"""LIT-compatible type system: every field of a model's or dataset's spec is a `LitType`.

Types are small keyword-only dataclasses that describe the *semantics* of a value (a prompt, a
generated response, per-token scores, a class label, ...), while the values themselves stay plain
Python / numpy data. Specs drive everything: components declare what they need by type, and
compatibility between models, datasets and UI modules is computed from the specs, never hard-wired.

Names and semantics follow LIT (`lit_nlp.api.types`), with a few additions for prompt debugging
(`TokenScores` is LIT's; `TokenOffsets` is new). Field references (`parent=`, `align=`,
`align_in=`, `align_out=`, `grad_for=`) name other fields of the same or the companion spec.

Example:
    >>> spec = {"prompt": TextSegment(), "target": TextSegment(required=False)}
    >>> out = {"response": GeneratedText(parent="target"),
    ...        "response_tokens": Tokens(parent="response"),
    ...        "response_logprobs": TokenScores(align="response_tokens")}
    >>> LitType.from_json(out["response"].to_json()) == out["response"]
    True
    >>> GeneratedText().is_compatible(TextSegment())   # a GeneratedText can feed a TextSegment input
    True
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

JsonDict = dict[str, Any]
"""A JSON-like dict: one example, one model output, or one serialized object."""

ScoredTextCandidates = list[tuple[str, float | None]]
"""A list of `(text, score)` pairs, best first."""

# Attributes that name another field (used by `remap_spec` and by validation).
FIELD_REF_ATTRIBUTES = frozenset({"parent", "align", "align_in", "align_out", "grad_for"})

# Keys that LIT writes into a type's JSON but that promptlit does not model; ignored on load.
_LIT_ONLY_KEYS = frozenset({"__class__", "annotated", "show_in_data_table"})

_REGISTRY: dict[str, type[LitType]] = {}


class MetricBestValue(enum.StrEnum):
    """How to pick the best value of a metric (for highlighting in tables)."""

    HIGHEST = "highest"
    LOWEST = "lowest"
    NONE = "none"
    ZERO = "zero"


##
# Base class


@dataclasses.dataclass(kw_only=True)
class LitType:
    """Base class of all types: one field of a spec."""

    required: bool = True  # for model inputs: the model cannot run without this field
    description: str = ""  # shown as help text in the UI
    default: Any = None  # value used for new examples / config forms

    internal: ClassVar[bool] = False  # True for `_`-prefixed base types, not for specs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Registers every subclass by name, so `LitType.from_json` can rebuild user types too."""
        super().__init_subclass__(**kwargs)
        cls.internal = cls.__name__.startswith("_")
        previous = _REGISTRY.get(cls.__name__)
        if previous is not None and previous.__module__ == __name__ and cls.__module__ != __name__:
            raise ValueError(
                f"A LitType named {cls.__name__!r} already exists in promptlit.api.types; "
                f"{cls.__module__}.{cls.__qualname__} would shadow it in JSON. "
                "Give the new type a different class name."
            )
        _REGISTRY[cls.__name__] = cls

    def __post_init__(self) -> None:
        # Tuples become lists so that a type equals its own JSON round-trip.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                setattr(self, f.name, list(value))

    @property
    def type_name(self) -> str:
        """The LIT name of this type, e.g. "TextSegment"."""
        return type(self).__name__

    def is_compatible(self, other: LitType, *, strict: bool = False) -> bool:
        """Whether a value of this type can be used where `other` is expected.

        As in LIT: true when this type is `other`'s type or a subclass of it (a `GeneratedText`
        field can feed a `TextSegment` input). Attributes such as `vocab` or `parent` are ignored
        (type-level compatibility) unless `strict=True`, which also requires all attributes except
        `required`, `description` and `default` to be equal.
        """
        if not isinstance(other, LitType) or not isinstance(self, type(other)):
            return False
        if not strict:
            return True
        ignore = {"required", "description", "default"}
        mine = {k: v for k, v in _fields(self).items() if k not in ignore}
        theirs = {k: v for k, v in _fields(other).items() if k not in ignore}
        return {k: mine.get(k) for k in theirs} == theirs

    def to_json(self) -> JsonDict:
        """A JSON-serializable dict: `{"__class__": "LitType", "__name__": ..., **fields}`."""
        d: JsonDict = {"__class__": "LitType", "__name__": self.type_name}
        for name, value in _fields(self).items():
            d[name] = _jsonable(value)
        return d

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> LitType:
        """Rebuilds the exact type from `to_json()` output (also accepts LIT's JSON)."""
        if "__name__" not in d:
            raise KeyError(
                f"A '__name__' key is required to parse a LitType from JSON; got {dict(d)!r}."
            )
        type_name = d["__name__"]
        if not isinstance(type_name, str):
            raise TypeError(f"'__name__' must be a string, got {type(type_name).__name__}.")
        cls = get_type_by_name(type_name)
        kwargs = {k: v for k, v in d.items() if k != "__name__" and k not in _LIT_ONLY_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(
                f"{type_name} has no field(s) {unknown}; known fields: {sorted(known)}."
            )
        return cls(**kwargs)


Spec = dict[str, LitType]
"""A schema: field name -> LitType."""


def _fields(t: LitType) -> dict[str, Any]:
    return {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    return value


def get_type_by_name(name: str) -> type[LitType]:
    """The registered LitType class called `name` (LIT aliases such as "BooleanLitType" too)."""
    cls = _REGISTRY.get(name) or _REGISTRY.get(_LIT_ALIASES.get(name, ""))
    if cls is None:
        known = ", ".join(sorted(k for k, v in _REGISTRY.items() if not v.internal))
        raise NameError(f"{name!r} is not a known LitType. Known types: {known}.")
    return cls


def all_types(include_internal: bool = False) -> dict[str, type[LitType]]:
    """Every registered LitType class by name (built-in and user-defined)."""
    return {k: v for k, v in _REGISTRY.items() if include_internal or not v.internal}


def spec_to_json(spec: Mapping[str, LitType]) -> JsonDict:
    """Serializes a spec: field name -> `LitType.to_json()`."""
    return {key: t.to_json() for key, t in spec.items()}


def spec_from_json(d: Mapping[str, Any]) -> Spec:
    """Inverse of `spec_to_json`."""
    return {key: LitType.from_json(v) for key, v in d.items()}


def remap_spec(spec: Mapping[str, LitType], keymap: Mapping[str, str]) -> Spec:
    """Renames fields of a spec, also renaming field references (`parent=`, `align=`, ...)."""
    ret: Spec = {}
    for key, t in spec.items():
        changes: dict[str, Any] = {
            name: keymap.get(value, value)
            for name, value in _fields(t).items()
            if name in FIELD_REF_ATTRIBUTES and isinstance(value, str)
        }
        ret[keymap.get(key, key)] = dataclasses.replace(t, **changes)
    return ret


##
# Text and strings


@dataclasses.dataclass(kw_only=True)
class String(LitType):
    """User-editable string with special formatting; never edited automatically."""

    default: str = ""


@dataclasses.dataclass(kw_only=True)
class TextSegment(String):
    """Untokenized text, a single string (e.g. a prompt)."""


@dataclasses.dataclass(kw_only=True)
class GeneratedText(TextSegment):
    """Text generated by a model; `parent` names a TextSegment reference to compare against."""

    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class URL(TextSegment):
    """A TextSegment that is a URL."""


@dataclasses.dataclass(kw_only=True)
class GeneratedURL(URL):
    """A URL generated as part of a prediction; `align` names a field of the model output."""

    align: str | None = None


@dataclasses.dataclass(kw_only=True)
class SearchQuery(TextSegment):
    """A TextSegment that is a search query."""


@dataclasses.dataclass(kw_only=True)
class CategoryLabel(String):
    """A class label, a single string; `vocab` (if given) lists the allowed values."""

    vocab: list[str] | None = None


##
# Images


@dataclasses.dataclass(kw_only=True)
class ImageBytes(LitType):
    """An image as a base64 data URL string ("data:image/...")."""


@dataclasses.dataclass(kw_only=True)
class JPEGBytes(ImageBytes):
    """An ImageBytes in JPEG format ("data:image/jpeg...")."""


@dataclasses.dataclass(kw_only=True)
class PNGBytes(ImageBytes):
    """An ImageBytes in PNG format ("data:image/png...")."""


##
# Lists


@dataclasses.dataclass(kw_only=True)
class ListLitType(LitType):
    """Base of list-valued types."""


@dataclasses.dataclass(kw_only=True)
class _StringCandidateList(ListLitType):
    """A list of `(text, score)` pairs, best first; score may be None."""


@dataclasses.dataclass(kw_only=True)
class GeneratedTextCandidates(_StringCandidateList):
    """Several generated candidates `[(text, score), ...]`; `parent` names a reference text."""

    parent: str | None = None

    @staticmethod
    def top_text(value: Sequence[Sequence[Any]]) -> str:
        """The text of the best candidate ("" for an empty list)."""
        return value[0][0] if len(value) else ""


@dataclasses.dataclass(kw_only=True)
class ReferenceTexts(_StringCandidateList):
    """Several reference texts `[(text, weight), ...]` for one input."""


@dataclasses.dataclass(kw_only=True)
class TopTokens(_StringCandidateList):
    """Several tokens with weights `[(token, weight), ...]`."""


@dataclasses.dataclass(kw_only=True)
class SparseMultilabelPreds(_StringCandidateList):
    """Multi-label predictions `[(label, score), ...]`; `parent` names a SparseMultilabel."""

    vocab: list[str] | None = None
    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class _StringList(ListLitType):
    """A list of strings."""

    default: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(kw_only=True)
class Tokens(_StringList):
    """Tokenized text `<str>[num_tokens]`; `parent` names the TextSegment it tokenizes."""

    parent: str | None = None
    mask_token: str | None = None  # token used to mask an input token, e.g. "[MASK]"
    token_prefix: str | None = "##"  # continuation prefix used by the tokenizer


@dataclasses.dataclass(kw_only=True)
class SequenceTags(_StringList):
    """One string tag per token of the Tokens field named by `align`."""

    align: str


@dataclasses.dataclass(kw_only=True)
class SparseMultilabel(_StringList):
    """A set of labels as a list of strings; `vocab` (if given) lists the allowed labels."""

    vocab: list[str] | None = None
    separator: str = ","  # for display


@dataclasses.dataclass(kw_only=True)
class TokenTopKPreds(ListLitType):
    """Per-token top-k predictions `[[(token, prob), ...] per token]`, aligned to `align`."""

    align: str | None = None  # name of a Tokens field in the model output
    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class _FloatList(ListLitType):
    """A variable-length list of floats `<float>[n]` (not a tensor)."""

    default: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(kw_only=True)
class TokenScores(_FloatList):
    """One float per token `<float>[num_tokens]` of the Tokens field named by `align`."""

    align: str


@dataclasses.dataclass(kw_only=True)
class ReferenceScores(ListLitType):
    """Scores `<float>[num_refs]` of reference texts; `parent` names a TextSegment/ReferenceTexts."""

    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class TokenOffsets(ListLitType):
    """Character spans `<int>[num_tokens, 2]` ([start, end)) of `align`'s tokens in `parent`'s text."""

    align: str
    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class SubwordOffsets(ListLitType):
    """`offsets[i]` = index of the first wordpiece (in `align_out`) of input token i (in `align_in`)."""

    align_in: str
    align_out: str


@dataclasses.dataclass(kw_only=True)
class SpanLabels(ListLitType):
    """Labelled spans `list[dtypes.SpanLabel]` over the Tokens field named by `align`."""

    align: str
    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class EdgeLabels(ListLitType):
    """Labelled edges between span pairs `list[dtypes.EdgeLabel]` over the Tokens `align`."""

    align: str


@dataclasses.dataclass(kw_only=True)
class MultiSegmentAnnotations(ListLitType):
    """In-line annotations `list[dtypes.AnnotationCluster]` that may cover several segments."""

    exclusive: bool = False  # treat as a list of alternative candidates
    background: bool = False  # de-emphasize in visualizations


##
# Numbers


@dataclasses.dataclass(kw_only=True)
class Scalar(LitType):
    """A single number (float or int), nominally in [min_val, max_val]."""

    min_val: float = 0
    max_val: float = 1
    default: float = 0
    step: float = 0.01


@dataclasses.dataclass(kw_only=True)
class RegressionScore(Scalar):
    """A regression prediction (float); `parent` names the Scalar label field."""

    parent: str | None = None


@dataclasses.dataclass(kw_only=True)
class Integer(Scalar):
    """A single int in [min_val, max_val]."""

    min_val: int = -32768
    max_val: int = 32767
    default: int = 0
    step: int = 1


@dataclasses.dataclass(kw_only=True)
class Boolean(LitType):
    """A single bool."""

    default: bool = False


@dataclasses.dataclass(kw_only=True)
class MetricResult(LitType):
    """A number returned by a Metrics component; `best_value` says which direction is better."""

    default: float = 0
    best_value: MetricBestValue = MetricBestValue.NONE

    def __post_init__(self) -> None:
        super().__post_init__()
        self.best_value = MetricBestValue(self.best_value)


##
# Tensors (model internals)


@dataclasses.dataclass(kw_only=True)
class _Tensor(LitType):
    """A numeric tensor, as a list of numbers or an np.ndarray."""


@dataclasses.dataclass(kw_only=True)
class MulticlassPreds(_Tensor):
    """Class probabilities `<float>[num_labels]`; `parent` names the CategoryLabel field."""

    vocab: list[str]
    null_idx: int | None = None  # index of the negative / "null" class
    parent: str | None = None
    autosort: bool | None = False
    threshold: float | None = None  # binary decision threshold

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.vocab)


@dataclasses.dataclass(kw_only=True)
class Embeddings(_Tensor):
    """A fixed-length embedding or activation vector `<float>[emb_dim]`."""


@dataclasses.dataclass(kw_only=True)
class TokenEmbeddings(_Tensor):
    """Per-token embeddings `<float>[num_tokens, emb_dim]`, aligned to the Tokens `align`."""

    align: str | None = None


@dataclasses.dataclass(kw_only=True)
class _GradientsBase(_Tensor):
    """Shared attributes of gradients."""

    align: str | None = None  # name of a Tokens (or ImageBytes) field
    grad_for: str | None = None  # name of the Embeddings / TokenEmbeddings field differentiated
    grad_target_field_key: str | None = None  # input field that selects the target class


@dataclasses.dataclass(kw_only=True)
class Gradients(_GradientsBase):
    """Gradients w.r.t. a fixed-length embedding `<float>[emb_dim]`."""


@dataclasses.dataclass(kw_only=True)
class TokenGradients(_GradientsBase):
    """Per-token gradients `<float>[num_tokens, emb_dim]`."""


@dataclasses.dataclass(kw_only=True)
class ImageGradients(_GradientsBase):
    """Per-pixel gradients `<float>[height, width(, channels)]`."""


@dataclasses.dataclass(kw_only=True)
class AttentionHeads(_Tensor):
    """Attention weights `<float>[num_heads, num_tokens_out, num_tokens_in]`."""

    align_in: str
    align_out: str


##
# Salience (interpreter outputs)


@dataclasses.dataclass(kw_only=True)
class Salience(LitType):
    """Metadata about a salience map returned by an interpreter."""

    autorun: bool = False  # compute automatically when an example is selected
    signed: bool = False  # values may be negative (use a diverging colour map)


@dataclasses.dataclass(kw_only=True)
class TokenSalience(Salience):
    """A token salience map, values are `dtypes.TokenSalience`."""


@dataclasses.dataclass(kw_only=True)
class FeatureSalience(Salience):
    """A feature salience map, values are `dtypes.FeatureSalience`."""


@dataclasses.dataclass(kw_only=True)
class ImageSalience(Salience):
    """An image salience map, values are base64 data-URL images."""


@dataclasses.dataclass(kw_only=True)
class SequenceSalience(Salience):
    """A target x source salience map, values are `dtypes.SequenceSalienceMap` (or richer)."""


##
# Other outputs


@dataclasses.dataclass(kw_only=True)
class CurveDataPoints(LitType):
    """Points of a curve as `[(x, y), ...]`."""


@dataclasses.dataclass(kw_only=True)
class InfluentialExamples(LitType):
    """Influential training examples per input, `list[list[JsonDict]]`."""


##
# Config-form helpers


@dataclasses.dataclass(kw_only=True)
class FieldMatcher(LitType):
    """Config field whose choices are the names of fields of `spec` with one of `types`."""

    spec: str  # "dataset", "input" or "output"
    types: str | list[str]  # LitType name(s) to match
    vocab: list[str] | None = None  # matched names, filled in when the form is built


@dataclasses.dataclass(kw_only=True)
class SingleFieldMatcher(FieldMatcher):
    """A FieldMatcher choosing one field (a dropdown)."""

    default: str | None = None


@dataclasses.dataclass(kw_only=True)
class MultiFieldMatcher(FieldMatcher):
    """A FieldMatcher choosing several fields (checkboxes)."""

    default: list[str] = dataclasses.field(default_factory=list)
    select_all: bool = False  # select every match by default


# LIT's Python names for types whose TypeScript names collide with language features.
BooleanLitType = Boolean
StringLitType = String
URLLitType = URL
_LIT_ALIASES = {"BooleanLitType": "Boolean", "StringLitType": "String", "URLLitType": "URL"}
