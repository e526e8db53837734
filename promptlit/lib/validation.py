"""Validation of examples and model outputs against their specs, with precise, fixable messages.

Every problem says *what* was wrong, *where* (file:line, example id, field) and *how to fix it*:

    sample_prompts.jsonl:12: field 'prompt': expected TextSegment (a string), got int 3.
    Fix: write the value as a JSON string, e.g. "text".

* `validate_value(lit_type, value) -> str | None` checks one value against one LitType (dispatch on
  the type's class hierarchy; `register_validator` adds or overrides a type's check).
* `validate_example` checks one example against a spec (required fields, value types).
* `validate_dataset(dataset, mode)` / `validate_model(model, dataset, mode)` check the first
  example, a seeded ~5% sample, or all of them. They return `Problem`s; loaders raise `DataError`.

Models and datasets are duck-typed: a dataset has `.spec()` and `.examples`; a model has
`.input_spec()`, `.output_spec()` and `.predict(inputs)`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import random
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from promptlit.api import dtypes, types
from promptlit.lib import utils

Mode = Literal["first", "sample", "all"]
MODES: tuple[str, ...] = ("first", "sample", "all")
SAMPLE_FRACTION = 0.05

_SHORT_REPR = reprlib.Repr(maxlevel=8, maxlist=3, maxdict=3, maxstring=40, maxother=40)


@dataclasses.dataclass
class Problem:
    """One thing wrong with the data or a model output, and where it is.

    `str(problem)` reads like a compiler error:
    `"sample.jsonl:12: field 'prompt': expected TextSegment (a string), got int 3. Fix: ..."`.
    """

    message: str
    source: str | None = None  # file name or dataset name
    line: int | None = None  # 1-based line in `source`
    example_id: str | None = None
    field: str | None = None
    fix: str | None = None  # how to fix it, one sentence
    index: int | None = None  # position of the example in the dataset
    severity: Literal["error", "warning"] = "error"

    @property
    def location(self) -> str:
        """`file:line`, `file`, `line N` and/or `example #i (id ...)`, whichever are known."""
        parts = []
        if self.source and self.line is not None:
            parts.append(f"{self.source}:{self.line}")
        elif self.source:
            parts.append(self.source)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.line is None and (self.index is not None or self.example_id):
            ex = "example"
            if self.index is not None:
                ex += f" #{self.index}"
            if self.example_id:
                ex += f" (id {self.example_id[:12]})"
            parts.append(ex)
        return " ".join(parts)

    def __str__(self) -> str:
        text = self.message.rstrip(".") + "."
        if self.field is not None:
            text = f"field '{self.field}': {text}"
        if self.severity == "warning":
            text = f"warning: {text}"
        if self.location:
            text = f"{self.location}: {text}"
        if self.fix:
            text += f" Fix: {self.fix.rstrip('.')}."
        return text


class DataError(Exception):
    """Bad input data; `.problems` lists every problem found (each with its location).

    Accepts a list of problems, one problem, or a message plus location keywords:
    `DataError("not valid JSON", source="data.jsonl", line=3, fix="...")`.
    """

    MAX_LISTED = 20

    def __init__(self, problems: Sequence[Problem] | Problem | str, **location: Any) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, **location)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._format())

    def _format(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"  - {p}" for p in self.problems[: self.MAX_LISTED]]
        if len(self.problems) > self.MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - self.MAX_LISTED} more")
        return "\n".join(lines)


##
# Value checks, one per type

Validator = Callable[[types.LitType, Any], str | None]


@dataclasses.dataclass(frozen=True)
class _Rule:
    check: Validator  # returns None if fine, else what is wrong beyond the expected form
    expected: str  # "a string", shown after the type name
    fix: str  # how to write a valid value


_RULES: dict[type[types.LitType], _Rule] = {}


def register_validator(
    lit_type: type[types.LitType], *, expected: str, fix: str
) -> Callable[[Validator], Validator]:
    """Decorator registering `check(lit_type, value) -> str | None` for a type and its subclasses.

    `expected` describes valid values ("a string"), `fix` says how to write one. The check returns
    None when the value is fine, "" when it simply has the wrong form, or a specific complaint.
    """

    def decorator(check: Validator) -> Validator:
        _RULES[lit_type] = _Rule(check, expected, fix)
        return check

    return decorator


def _rule_for(lit_type: types.LitType) -> _Rule | None:
    for cls in type(lit_type).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def describe_value(value: Any, max_chars: int = 60) -> str:
    """`int 3`, `str 'abc'`, `ndarray float32[2, 3]`: the type and a short repr of a value."""
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype}{list(value.shape)}"
    if utils.nesting_depth(value, limit=8) > 8:
        text = _SHORT_REPR.repr(value)  # repr() of deep values recurses
    else:
        text = repr(value)
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return f"{type(value).__name__} {text}"


def describe_expected(lit_type: types.LitType) -> str:
    """`TextSegment (a string)`: the type's name and the form of a valid value."""
    rule = _rule_for(lit_type)
    return f"{lit_type.type_name} ({rule.expected})" if rule else lit_type.type_name


def fix_hint(lit_type: types.LitType) -> str | None:
    """How to write a valid value of `lit_type`, or None if any value is accepted."""
    rule = _rule_for(lit_type)
    return rule.fix if rule else None


def validate_value(lit_type: types.LitType, value: Any) -> str | None:
    """None if `value` is a valid value of `lit_type`, else a message "expected X, got Y".

    >>> validate_value(types.TextSegment(), 3)
    'expected TextSegment (a string), got int 3'
    >>> validate_value(types.CategoryLabel(vocab=["yes", "no"]), "maybe")
    "expected CategoryLabel (a string), got str 'maybe': not one of ['yes', 'no']"
    """
    rule = _rule_for(lit_type)
    if rule is None:
        return None
    complaint = rule.check(lit_type, value)
    if complaint is None:
        return None
    message = f"expected {describe_expected(lit_type)}, got {describe_value(value)}"
    return f"{message}: {complaint}" if complaint else message


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_, complex))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_str_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)


def _numeric_array(v: Any) -> np.ndarray | None:
    """`v` as a numeric ndarray (lists allowed, ragged/non-numeric not), else None."""
    if isinstance(v, (str, bytes, Mapping)) or v is None:
        return None
    try:
        arr = np.asarray(v)
    except (ValueError, TypeError):
        return None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        return None
    return arr


def _check_ndim(value: Any, ndims: tuple[int, ...]) -> str | None:
    arr = _numeric_array(value)
    if arr is None:
        return ""
    if arr.ndim not in ndims:
        return f"has {arr.ndim} dimension(s), needs {' or '.join(map(str, ndims))}"
    return None


def _candidate_error(item: Any) -> bool:
    return not (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[0], str)
        and (item[1] is None or _is_number(item[1]))
    )


@register_validator(
    types.String, expected="a string", fix='write the value as a JSON string, e.g. "text"'
)
def _check_string(t: types.LitType, v: Any) -> str | None:
    return None if isinstance(v, str) else ""


@register_validator(
    types.CategoryLabel, expected="a string", fix="use one of the labels in the spec's vocab"
)
def _check_category(t: types.LitType, v: Any) -> str | None:
    if not isinstance(v, str):
        return ""
    vocab = getattr(t, "vocab", None)
    if vocab and v not in vocab:
        return f"not one of {list(vocab)}"
    return None


@register_validator(
    types.ImageBytes,
    expected='a "data:image/..." URL string',
    fix="encode the image as a base64 data URL",
)
def _check_image(t: types.LitType, v: Any) -> str | None:
    by_type: dict[type[types.LitType], tuple[str, ...]] = {
        types.JPEGBytes: ("data:image/jpeg", "data:image/jpg"),
        types.PNGBytes: ("data:image/png",),
    }
    prefixes = by_type.get(type(t), ("data:image",))
    if not isinstance(v, str):
        return ""
    return None if v.startswith(prefixes) else f"does not start with {prefixes[0]!r}"


@register_validator(types.Boolean, expected="true or false", fix="write true or false (JSON)")
def _check_bool(t: types.LitType, v: Any) -> str | None:
    return None if isinstance(v, (bool, np.bool_)) else ""


@register_validator(
    types.Scalar, expected="a number", fix="write a number without quotes, e.g. 0.5"
)
def _check_scalar(t: types.LitType, v: Any) -> str | None:
    return None if _is_number(v) else ""


@register_validator(
    types.Integer, expected="an integer", fix="write a whole number without quotes, e.g. 3"
)
def _check_integer(t: types.LitType, v: Any) -> str | None:
    return None if _is_int(v) else ""


@register_validator(
    types.MetricResult, expected="a number", fix="return a float from Metrics.compute"
)
def _check_metric(t: types.LitType, v: Any) -> str | None:
    return None if _is_number(v) else ""


@register_validator(
    types._StringList,
    expected="a list of strings",
    fix='write a JSON list of strings, e.g. ["a", "b"]',
)
def _check_string_list(t: types.LitType, v: Any) -> str | None:
    if not _is_str_list(v):
        return ""
    vocab = getattr(t, "vocab", None)
    if vocab:
        outside = [x for x in v if x not in vocab]
        if outside:
            return f"{outside} not in vocab {list(vocab)}"
    return None


@register_validator(
    types._StringCandidateList,
    expected="a list of [text, score] pairs",
    fix='write a list of pairs, e.g. [["text", 0.9], ["other", null]]',
)
def _check_candidates(t: types.LitType, v: Any) -> str | None:
    if not isinstance(v, (list, tuple)):
        return ""
    bad = [item for item in v if _candidate_error(item)]
    return f"bad item {describe_value(bad[0]).partition(' ')[2]}" if bad else None


@register_validator(
    types.TokenTopKPreds,
    expected="a list (one per token) of [token, prob] lists, best first",
    fix="return, per token, the top-k (token, probability) pairs in descending order",
)
def _check_topk(t: types.LitType, v: Any) -> str | None:
    if not isinstance(v, (list, tuple)):
        return ""
    for i, cands in enumerate(v):
        if not isinstance(cands, (list, tuple)) or any(_candidate_error(c) for c in cands):
            return f"entry {i} is not a list of (token, score) pairs"
        scores = [c[1] for c in cands if c[1] is not None]
        if any(a < b for a, b in zip(scores, scores[1:], strict=False)):
            return f"entry {i} is not sorted by descending score"
    return None


@register_validator(
    types._FloatList,
    expected="a list of numbers",
    fix="write a JSON list of numbers, e.g. [0.1, 0.2]",
)
def _check_float_list(t: types.LitType, v: Any) -> str | None:
    return _check_ndim(v, (1,))


@register_validator(
    types.ReferenceScores, expected="a list of numbers", fix="write one number per reference text"
)
def _check_reference_scores(t: types.LitType, v: Any) -> str | None:
    return _check_ndim(v, (1,))


@register_validator(
    types.TokenOffsets,
    expected="a list of [start, end] character offsets",
    fix="give each token its [start, end) character span, e.g. [[0, 5], [5, 9]]",
)
def _check_offsets(t: types.LitType, v: Any) -> str | None:
    arr = _numeric_array(v)
    if arr is None:
        return ""
    if arr.size == 0:
        return None
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
        return "needs <int>[num_tokens, 2]"
    if (arr[:, 0] < 0).any() or (arr[:, 1] < arr[:, 0]).any():
        return "needs 0 <= start <= end for every token"
    return None


@register_validator(
    types.SubwordOffsets, expected="a list of integers", fix="write a JSON list of integers"
)
def _check_subword_offsets(t: types.LitType, v: Any) -> str | None:
    return None if isinstance(v, (list, tuple)) and all(_is_int(x) for x in v) else ""


def _is_struct(v: Any, cls: type, keys: tuple[str, ...]) -> bool:
    return isinstance(v, cls) or (isinstance(v, Mapping) and all(k in v for k in keys))


@register_validator(
    types.SpanLabels,
    expected="a list of SpanLabel",
    fix="return dtypes.SpanLabel(start=, end=, label=) objects",
)
def _check_spans(t: types.LitType, v: Any) -> str | None:
    ok = isinstance(v, (list, tuple)) and all(
        _is_struct(x, dtypes.SpanLabel, ("start", "end")) for x in v
    )
    return None if ok else ""


@register_validator(
    types.EdgeLabels,
    expected="a list of EdgeLabel",
    fix="return dtypes.EdgeLabel(span1=, span2=, label=) objects",
)
def _check_edges(t: types.LitType, v: Any) -> str | None:
    ok = isinstance(v, (list, tuple)) and all(
        _is_struct(x, dtypes.EdgeLabel, ("span1", "span2", "label")) for x in v
    )
    return None if ok else ""


@register_validator(
    types.MultiSegmentAnnotations,
    expected="a list of AnnotationCluster",
    fix="return dtypes.AnnotationCluster(label=, spans=[...]) objects",
)
def _check_annotations(t: types.LitType, v: Any) -> str | None:
    ok = isinstance(v, (list, tuple)) and all(
        _is_struct(x, dtypes.AnnotationCluster, ("label", "spans")) for x in v
    )
    return None if ok else ""


_TENSOR_NDIMS: dict[type[types.LitType], tuple[int, ...]] = {
    types.MulticlassPreds: (1,),
    types.Embeddings: (1,),
    types.Gradients: (1,),
    types.TokenEmbeddings: (2,),
    types.TokenGradients: (2,),
    types.ImageGradients: (2, 3),
    types.AttentionHeads: (3,),
}


@register_validator(
    types._Tensor,
    expected="an array of numbers",
    fix="return a numpy array (or list) of floats with the documented shape",
)
def _check_tensor(t: types.LitType, v: Any) -> str | None:
    ndims = next((n for cls, n in _TENSOR_NDIMS.items() if isinstance(t, cls)), None)
    if ndims is None:
        return None if _numeric_array(v) is not None else ""
    complaint = _check_ndim(v, ndims)
    if complaint is None and isinstance(t, types.MulticlassPreds):
        n = np.asarray(v).shape[0]
        if n != len(t.vocab):
            return f"has {n} scores for {len(t.vocab)} classes {list(t.vocab)}"
    return complaint


@register_validator(
    types.TokenSalience,
    expected="a dtypes.TokenSalience",
    fix="return dtypes.TokenSalience(tokens=[...], salience=[...]) with one score per token",
)
def _check_token_salience(t: types.LitType, v: Any) -> str | None:
    if not _is_struct(v, dtypes.TokenSalience, ("tokens", "salience")):
        return ""
    tokens, salience = _get(v, "tokens"), _get(v, "salience")
    if len(tokens) != len(salience):
        return f"{len(tokens)} tokens but {len(salience)} salience scores"
    return None


@register_validator(
    types.FeatureSalience,
    expected="a dtypes.FeatureSalience",
    fix="return dtypes.FeatureSalience(salience={feature: score})",
)
def _check_feature_salience(t: types.LitType, v: Any) -> str | None:
    return None if _is_struct(v, dtypes.FeatureSalience, ("salience",)) else ""


@register_validator(
    types.SequenceSalience,
    expected="a SequenceSalienceMap (or an object with tokens and matrices)",
    fix="return dtypes.SequenceSalienceMap(tokens_in=, tokens_out=, salience=)",
)
def _check_sequence_salience(t: types.LitType, v: Any) -> str | None:
    if _is_struct(v, dtypes.SequenceSalienceMap, ("tokens_in", "tokens_out", "salience")):
        return None
    # promptlit's richer salience result (promptlit.salience.result.SequenceSalience).
    return None if hasattr(v, "tokens") and hasattr(v, "matrices") else ""


@register_validator(
    types.ImageSalience,
    expected='a "data:image/..." URL string',
    fix="encode the map as a data URL",
)
def _check_image_salience(t: types.LitType, v: Any) -> str | None:
    return None if isinstance(v, str) and v.startswith("data:image") else ""


@register_validator(
    types.CurveDataPoints, expected="a list of [x, y] points", fix="write [[x0, y0], [x1, y1], ...]"
)
def _check_curve(t: types.LitType, v: Any) -> str | None:
    ok = isinstance(v, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(x) for x in p) for p in v
    )
    return None if ok else ""


@register_validator(
    types.FieldMatcher, expected="a field name or a list of field names", fix="name spec fields"
)
def _check_field_matcher(t: types.LitType, v: Any) -> str | None:
    if isinstance(t, types.SingleFieldMatcher):
        return None if isinstance(v, str) else ""
    if isinstance(t, types.MultiFieldMatcher):
        return None if _is_str_list(v) else ""
    return None if isinstance(v, str) or _is_str_list(v) else ""


def _get(v: Any, key: str) -> Any:
    return v[key] if isinstance(v, Mapping) else getattr(v, key)


def range_warning(lit_type: types.LitType, value: Any) -> str | None:
    """A warning if a Scalar/Integer value lies outside [min_val, max_val] (not an error)."""
    if not isinstance(lit_type, types.Scalar) or not _is_number(value):
        return None
    if isinstance(lit_type, types.RegressionScore):
        return None  # predictions are not bound by the label's nominal range
    if math.isnan(float(value)) or not lit_type.min_val <= value <= lit_type.max_val:
        return (
            f"value {value} is outside the range [{lit_type.min_val}, {lit_type.max_val}] "
            "declared in the spec"
        )
    return None


##
# Examples and datasets


def validate_example(
    example: Mapping[str, Any],
    spec: Mapping[str, types.LitType],
    *,
    example_id: str | None = None,
    index: int | None = None,
    source: str | None = None,
    line: int | None = None,
) -> list[Problem]:
    """Problems of one example: missing or null required fields, values of the wrong type,
    values nested too deeply (more than `utils.MAX_NESTING` levels), range warnings.

    Fields not in the spec, private (`_`-prefixed) keys included, are only checked for nesting;
    optional fields may be absent or None.
    """
    where: dict[str, Any] = {"example_id": example_id, "index": index, "source": source,
                             "line": line}
    if not isinstance(example, Mapping):
        return [
            Problem(
                f"expected an example (a JSON object), got {describe_value(example)}",
                fix="write one JSON object per example",
                **where,
            )
        ]
    problems = []
    for key, lit_type in spec.items():
        value = example.get(key)
        if value is None:
            if lit_type.required and key in example:
                hint = fix_hint(lit_type)
                problems.append(
                    Problem(
                        f"required field is null (expected {describe_expected(lit_type)})",
                        field=key,
                        fix="replace null with a value"
                        + (f" ({hint})" if hint else "")
                        + f", or declare '{key}' required=False",
                        **where,
                    )
                )
            elif lit_type.required:
                present = ", ".join(sorted(k for k in example if not str(k).startswith("_")))
                problems.append(
                    Problem(
                        f"required field is missing (expected {describe_expected(lit_type)}; "
                        f"the example has: {present or 'no fields'})",
                        field=key,
                        fix=f"add '{key}' to the example, or declare it required=False",
                        **where,
                    )
                )
            continue
        if utils.too_deep(value):
            problems.append(nesting_problem(field=key, **where))
            continue
        message = validate_value(lit_type, value)
        if message:
            problems.append(Problem(message, field=key, fix=fix_hint(lit_type), **where))
            continue
        warning = range_warning(lit_type, value)
        if warning:
            problems.append(Problem(warning, field=key, severity="warning", **where))
    for key, value in example.items():
        if key not in spec and utils.too_deep(value):
            problems.append(nesting_problem(field=str(key), **where))
    return problems


def nesting_problem(**location: Any) -> Problem:
    """The problem of a value (or a whole line, without `field`) nested too deeply."""
    return Problem(
        f"nested too deeply (more than {utils.MAX_NESTING} levels of lists / objects)",
        fix=f"flatten the value: promptlit reads at most {utils.MAX_NESTING} nested levels",
        **location,
    )


def select_indices(num_examples: int, mode: str = "first", seed: int = 0) -> list[int]:
    """Which examples a validation `mode` checks, in increasing order.

    "first": [0]; "sample": a seeded random SAMPLE_FRACTION (5%, at least 1); "all": every index.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown validation mode {mode!r}; use one of {list(MODES)}.")
    if num_examples <= 0:
        return []
    if mode == "first":
        return [0]
    if mode == "all":
        return list(range(num_examples))
    k = max(1, math.ceil(SAMPLE_FRACTION * num_examples))
    return sorted(random.Random(seed).sample(range(num_examples), k))


def _examples_spec_ids(
    dataset: Any,
) -> tuple[list[Any], Mapping[str, types.LitType], list[str] | None, str | None]:
    """(examples, spec, ids or None, source name) from a Dataset or an (examples, spec) pair."""
    if isinstance(dataset, tuple) and len(dataset) == 2:
        examples, spec = dataset
        return list(examples), spec, None, None
    spec = dataset.spec()
    examples = list(dataset.examples)
    ids = None
    indexed = getattr(dataset, "indexed_examples", None)
    if indexed is not None:
        try:
            ids = [str(ie["id"]) for ie in indexed]
        except (KeyError, TypeError):
            ids = None
        if ids is not None and len(ids) != len(examples):
            ids = None
    source = getattr(dataset, "source", None) or getattr(dataset, "name", None)
    return examples, spec, ids, source if isinstance(source, str) else None


def _spec_problems(spec: Any, what: str) -> list[Problem]:
    if not isinstance(spec, Mapping):
        return [
            Problem(
                f"{what} spec must be a dict of field name -> LitType, got {describe_value(spec)}"
            )
        ]
    return [
        Problem(
            f"{what} spec entry is {describe_value(t)}, not a LitType",
            field=key,
            fix="use an instance such as types.TextSegment()",
        )
        for key, t in spec.items()
        if not isinstance(t, types.LitType)
    ]


def validate_dataset(dataset: Any, mode: str = "first", seed: int = 0) -> list[Problem]:
    """Checks a dataset's examples against its spec; returns the problems found.

    Args:
        dataset: a Dataset (`.spec()`, `.examples`) or a pair `(examples, spec)`.
        mode: "first" (example 0 only), "sample" (a seeded 5%, at least 1) or "all".
        seed: seed of the "sample" draw (same seed, same examples).
    """
    examples, spec, ids, source = _examples_spec_ids(dataset)
    problems = _spec_problems(spec, "dataset")
    if problems:
        return problems
    for i in select_indices(len(examples), mode, seed):
        ex = examples[i]
        ex_id = ids[i] if ids else (utils.example_id(ex) if isinstance(ex, Mapping) else None)
        problems += validate_example(ex, spec, example_id=ex_id, index=i, source=source)
    return problems


##
# Models

# Types whose value has one entry per token of the Tokens field named by `align`.
ALIGNED_TYPES: tuple[type[types.LitType], ...] = (
    types.TokenScores,
    types.SequenceTags,
    types.TokenOffsets,
    types.TokenTopKPreds,
    types.TokenEmbeddings,
    types.TokenGradients,
)


def validate_output_spec(
    output_spec: Mapping[str, types.LitType], input_spec: Mapping[str, types.LitType]
) -> list[Problem]:
    """Spec-level problems: field references (`parent=`, `align=`, ...) that name no field."""
    problems = _spec_problems(output_spec, "output")
    if problems:
        return problems
    for key, t in output_spec.items():
        for attr in sorted(types.FIELD_REF_ATTRIBUTES):
            ref = getattr(t, attr, None)
            if not isinstance(ref, str) or ref in output_spec or ref in input_spec:
                continue
            if attr == "parent":
                continue  # parents usually name dataset fields (labels) unknown to the model
            problems.append(
                Problem(
                    f"{t.type_name}({attr}={ref!r}) refers to a field that is in neither the "
                    "output spec nor the input spec",
                    field=key,
                    fix=f"add '{ref}' to the output spec or correct {attr}=",
                )
            )
    return problems


def _aligned_length_problem(
    t: types.LitType, value: Any, output: Mapping[str, Any], example: Mapping[str, Any]
) -> str | None:
    align = getattr(t, "align", None)
    if not isinstance(t, ALIGNED_TYPES) or not isinstance(align, str):
        return None
    tokens = output.get(align, example.get(align))
    if tokens is None:
        return None
    n_values = len(value) if not isinstance(value, np.ndarray) else value.shape[0]
    if n_values != len(tokens):
        return (
            f"has {n_values} entries but the aligned field '{align}' has {len(tokens)} tokens; "
            f"{t.type_name}(align='{align}') needs exactly one entry per token"
        )
    return None


def validate_model(model: Any, dataset: Any, mode: str = "first", seed: int = 0) -> list[Problem]:
    """Runs `model.predict` on the examples `mode` selects and checks outputs against its spec.

    Reports: dataset/model incompatibility (then stops), broken field references in the output
    spec, `predict` raising or returning the wrong number of outputs, missing output fields,
    values of the wrong type, and aligned fields (`align=` Tokens) of the wrong length.
    """
    examples, dataset_spec, ids, source = _examples_spec_ids(dataset)
    input_spec, output_spec = model.input_spec(), model.output_spec()
    problems = [
        Problem(reason, source=source)
        for reason in utils.describe_incompatibility(input_spec, dataset_spec)
    ]
    if problems:
        return problems
    problems += validate_output_spec(output_spec, input_spec)
    indices = select_indices(len(examples), mode, seed)
    if not indices:
        return problems
    inputs = [examples[i] for i in indices]
    ex_ids = [ids[i] if ids else utils.example_id(examples[i]) for i in indices]
    model_name = type(model).__name__
    try:
        outputs = list(model.predict(inputs))
    except Exception as e:  # any model failure is reported, not raised
        return problems + [
            Problem(
                f"{model_name}.predict raised {type(e).__name__}: {e}",
                example_id=ex_ids[0],
                index=indices[0],
                source=source,
                fix="run the model on this example directly to see the traceback",
            )
        ]
    if len(outputs) != len(inputs):
        return problems + [
            Problem(
                f"{model_name}.predict returned {len(outputs)} outputs for {len(inputs)} inputs",
                source=source,
                fix="return exactly one output dict per input, in order",
            )
        ]
    for i, ex_id, ex, out in zip(indices, ex_ids, inputs, outputs, strict=True):
        where: dict[str, Any] = {"example_id": ex_id, "index": i, "source": source}
        if not isinstance(out, Mapping):
            problems.append(
                Problem(
                    f"model output is {describe_value(out)}, not a dict",
                    fix="return a dict of field name -> value",
                    **where,
                )
            )
            continue
        for key, t in output_spec.items():
            value = out.get(key)
            if value is None:
                if t.required:
                    problems.append(
                        Problem(
                            f"model output is missing (expected {describe_expected(t)})",
                            field=key,
                            fix=f"return '{key}' from predict, or declare it required=False",
                            **where,
                        )
                    )
                continue
            message = validate_value(t, value)
            if message:
                problems.append(Problem(message, field=key, fix=fix_hint(t), **where))
                continue
            message = _aligned_length_problem(t, value, out, ex)
            if message:
                fix = f"return one entry per token of '{getattr(t, 'align', '')}'"
                problems.append(Problem(message, field=key, fix=fix, **where))
    return problems
