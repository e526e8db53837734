"""Spec utilities: find fields by type, stable example ids, batching, model/dataset compatibility.

Example:
    >>> from promptlit.api import types
    >>> spec = {"prompt": types.TextSegment(), "response": types.GeneratedText(parent="target"),
    ...         "n": types.Integer()}
    >>> find_spec_keys(spec, types.TextSegment)        # subclasses count: GeneratedText is one
    ['prompt', 'response']
    >>> find_keys_by_parent(spec, "target")
    ['response']
    >>> [len(b) for b in batch_iterator(range(5), 2)]
    [2, 2, 1]
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from promptlit.api import types

TypeSpec = type[types.LitType] | str | tuple[type[types.LitType] | str, ...]


def _resolve_types(lit_types: TypeSpec) -> tuple[type[types.LitType], ...]:
    items = lit_types if isinstance(lit_types, tuple) else (lit_types,)
    return tuple(types.get_type_by_name(t) if isinstance(t, str) else t for t in items)


def find_spec_keys(spec: Mapping[str, types.LitType], lit_types: TypeSpec) -> list[str]:
    """Names of the fields of `spec` whose type is one of `lit_types` or a subclass of one.

    Args:
        spec: field name -> LitType.
        lit_types: a LitType class, a type name ("TextSegment"), or a tuple of those.
    """
    wanted = _resolve_types(lit_types)
    return [key for key, t in spec.items() if isinstance(t, wanted)]


def spec_contains(spec: Mapping[str, types.LitType], lit_types: TypeSpec) -> bool:
    """Whether any field of `spec` is one of `lit_types` (or a subclass)."""
    return bool(find_spec_keys(spec, lit_types))


def find_keys_by_parent(spec: Mapping[str, types.LitType], parent_key: str) -> list[str]:
    """Names of the fields of `spec` whose `parent=` is `parent_key`."""
    return [key for key, t in spec.items() if getattr(t, "parent", None) == parent_key]


def _canonical_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"Cannot hash a value of type {type(obj).__name__} in an example.")


MAX_NESTING = 100
"""How deeply lists / objects may nest in an example value (`[[1]]` is 2 levels).

Loaders and `promptlit.lib.validation` report deeper values as problems: hashing, serializing
and showing them would need ever deeper recursion."""

_CONTAINERS = (list, tuple, dict, set, frozenset)


def nesting_depth(value: Any, limit: int | None = None) -> int:
    """How many levels of lists / tuples / dicts / sets `value` has (0 for a scalar), without
    recursion. Stops early and returns `limit + 1` once the depth exceeds `limit`.

    >>> nesting_depth("a"), nesting_depth([1, [2, {"k": []}]]), nesting_depth([[[[]]]], limit=2)
    (0, 4, 3)
    """
    if not isinstance(value, _CONTAINERS):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if limit is not None and deepest > limit:
                return limit + 1
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, _CONTAINERS))
    return deepest


def too_deep(value: Any) -> bool:
    """Whether `value` nests more than `MAX_NESTING` levels of lists / objects."""
    return nesting_depth(value, MAX_NESTING) > MAX_NESTING


_ENCODE_STR = json.JSONEncoder(ensure_ascii=False).encode


def _float_json(x: float) -> str:
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return float.__repr__(x)


def _key_json(k: Any) -> str:
    # json.dumps converts these key types to strings; other keys raise TypeError there too.
    if isinstance(k, str):
        return k
    if k is True or k is False or k is None:
        return {True: "true", False: "false", None: "null"}[k]
    if isinstance(k, float):
        return _float_json(k)
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _canonical_json_iterative(example: Mapping[str, Any]) -> str:
    """`canonical_json` without recursion (same output), for values nested too deeply for it."""
    public = {k: v for k, v in example.items() if not str(k).startswith("_")}
    out: list[str] = []
    stack: list[Any] = [public]  # values to write, or ("raw", text) markers
    raw = object()
    while stack:
        item = stack.pop()
        if isinstance(item, tuple) and len(item) == 2 and item[0] is raw:
            out.append(item[1])
            continue
        if isinstance(item, str):
            out.append(_ENCODE_STR(item))
        elif item is None or item is True or item is False:
            out.append({None: "null", True: "true", False: "false"}[item])
        elif isinstance(item, int):
            out.append(int.__repr__(item))
        elif isinstance(item, float):
            out.append(_float_json(item))
        elif isinstance(item, (list, tuple, dict)):
            if isinstance(item, dict):
                pairs = sorted(((_key_json(k), v) for k, v in item.items()), key=lambda kv: kv[0])
                parts: list[Any] = [(raw, "{")]
                for i, (k, v) in enumerate(pairs):
                    parts += [(raw, ("," if i else "") + _ENCODE_STR(k) + ":"), v]
                parts.append((raw, "}"))
            else:
                parts = [(raw, "[")]
                for i, v in enumerate(item):
                    parts += [(raw, ","), v] if i else [v]
                parts.append((raw, "]"))
            stack.extend(reversed(parts))
        else:
            stack.append(_canonical_default(item))
    return "".join(out)


def canonical_json(example: Mapping[str, Any]) -> str:
    """Sorted-key compact JSON of the example without its private (`_`-prefixed) keys.

    Values nested too deeply for `json.dumps` are encoded without recursion (same format).
    """
    public = {k: v for k, v in example.items() if not str(k).startswith("_")}
    try:
        return json.dumps(
            public,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=_canonical_default,
        )
    except RecursionError:
        return _canonical_json_iterative(example)


def example_id(example: Mapping[str, Any]) -> str:
    """A stable content hash of an example: sha1 hex of `canonical_json(example)`.

    Keys starting with "_" (ids, metadata) are ignored, key order does not matter, and numpy
    arrays / scalars hash like the equivalent lists / Python numbers.

    >>> example_id({"b": 1, "a": "x"}) == example_id({"a": "x", "b": 1, "_id": "ignored"})
    True
    """
    return hashlib.sha1(canonical_json(example).encode("utf-8")).hexdigest()


def indexed(examples: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """LIT's indexed form `[{"id", "data", "meta"}]` of plain examples: the id is the example's
    own ``_id`` or its content hash (`example_id`), the meta its ``_meta`` (else {}).

    >>> indexed([{"text": "a", "_id": "x1"}])
    [{'id': 'x1', 'data': {'text': 'a', '_id': 'x1'}, 'meta': {}}]
    """
    return [{"id": ex.get("_id") or example_id(ex), "data": ex, "meta": ex.get("_meta") or {}}
            for ex in examples]


def batch_iterator[T](items: Iterable[T], max_batch: int) -> Iterator[list[T]]:
    """Yields consecutive lists of at most `max_batch` items (the last one may be shorter)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}.")
    it = iter(items)
    while batch := list(itertools.islice(it, max_batch)):
        yield batch


def describe_incompatibility(
    input_spec: Mapping[str, types.LitType], dataset_spec: Mapping[str, types.LitType]
) -> list[str]:
    """Human-readable reasons why a model with `input_spec` cannot read a dataset with `dataset_spec`.

    As in LIT's `Model.is_compatible_with_dataset`: every required model input must be a dataset
    field, and every model input present in the dataset must have a compatible type (the dataset
    field's type is the model's type or a subclass of it). An empty list means compatible.
    """
    reasons = []
    available = ", ".join(f"{k} ({t.type_name})" for k, t in dataset_spec.items()) or "none"
    for key, expected in input_spec.items():
        if key not in dataset_spec:
            if expected.required:
                reasons.append(
                    f"the model requires input field '{key}' ({expected.type_name}) but the dataset "
                    f"has no such field (dataset fields: {available}). Fix: add '{key}' to the "
                    f"dataset, or rename a field with Dataset.remap({{'old': '{key}'}})."
                )
            continue
        actual = dataset_spec[key]
        if not actual.is_compatible(expected):
            reasons.append(
                f"field '{key}': the model expects {expected.type_name} but the dataset provides "
                f"{actual.type_name}, which is not a {expected.type_name}. Fix: declare '{key}' as "
                f"{expected.type_name} (or a subclass) in the dataset spec."
            )
    return reasons


def compatible(
    input_spec: Mapping[str, types.LitType], dataset_spec: Mapping[str, types.LitType]
) -> bool:
    """Whether a model with `input_spec` can run on a dataset with `dataset_spec`."""
    return not describe_incompatibility(input_spec, dataset_spec)
