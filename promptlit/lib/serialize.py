"""JSON serialization that round-trips numpy arrays, tuples, LitTypes and dtypes.

`to_json(obj)` walks the object once and tags what plain JSON cannot represent:

* `np.ndarray` (and anything with `__array__`, e.g. JAX arrays) ->
  `{"__class__": "np.ndarray", "dtype": "float32", "shape": [2, 3], "__value__": [[...], ...]}`
* numpy scalars -> plain Python numbers (`np.float32(0.5)` -> `0.5`; the value survives, the
  numpy scalar type does not)
* tuples -> `{"__class__": "tuple", "__value__": [...]}` (e.g. `(text, score)` candidates)
* `LitType` -> `LitType.to_json()`; `DataTuple` -> `DataTuple.to_json()` (nested values encoded)

`from_json(s)` reverses the tagging, so `from_json(to_json(x))` equals `x` for all of the above.
Values nested more than `MAX_DEPTH` levels deep raise a `ValueError` (never a `RecursionError`).

Example:
    >>> import numpy as np
    >>> x = {"scores": np.arange(3, dtype=np.float32), "pair": ("a", 1.5)}
    >>> y = from_json(to_json(x))
    >>> y["scores"].dtype, y["pair"]
    (dtype('float32'), ('a', 1.5))
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from promptlit.api import dtypes, types
from promptlit.lib.utils import MAX_NESTING

MAX_DEPTH = 2 * MAX_NESTING
"""How deeply `encode` / `decode` nest (room for the tags around values `MAX_NESTING` deep)."""


def _too_deep(what: str) -> ValueError:
    return ValueError(
        f"Cannot {what} a value nested too deeply (more than {MAX_DEPTH} levels of lists / "
        f"objects); flatten it (datasets allow at most {MAX_NESTING} levels)."
    )


def encode(obj: Any) -> Any:
    """Returns a JSON-compatible structure for `obj` (tagged dicts for non-JSON values).

    Raises:
      TypeError: for values JSON cannot hold (e.g. arbitrary objects, non-string dict keys).
      ValueError: for values nested more than `MAX_DEPTH` levels deep.
    """
    return _encode(obj, 0)


def _encode(obj: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _too_deep("serialize")
    depth += 1
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, enum.Enum):
            return obj.value
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) or (hasattr(obj, "__array__") and not isinstance(obj, Mapping)):
        arr = np.asarray(obj)
        return {
            "__class__": "np.ndarray",
            "dtype": arr.dtype.name if arr.dtype.kind not in "OU" else arr.dtype.kind,
            "shape": list(arr.shape),
            "__value__": _encode(arr.tolist(), depth),
        }
    if isinstance(obj, types.LitType):
        return _encode(obj.to_json(), depth)
    if isinstance(obj, dtypes.DataTuple):
        return _encode(obj.to_json(), depth)
    if isinstance(obj, enum.Enum):
        return _encode(obj.value, depth)
    if isinstance(obj, tuple):
        return {"__class__": "tuple", "__value__": [_encode(v, depth) for v in obj]}
    if isinstance(obj, (list, set, frozenset)):
        return [_encode(v, depth) for v in obj]
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"Cannot serialize dict key {k!r} ({type(k).__name__}): JSON keys must be "
                    "strings. Convert the keys with str() first."
                )
            out[k] = _encode(v, depth)
        return out
    raise TypeError(
        f"Cannot serialize {type(obj).__module__}.{type(obj).__qualname__} to JSON; "
        "supported: JSON values, numpy arrays/scalars, tuples, LitTypes and dtypes."
    )


def decode(obj: Any) -> Any:
    """Inverse of `encode`: rebuilds arrays, tuples, LitTypes and dtypes from tagged dicts.

    Raises:
      ValueError: for values nested more than `MAX_DEPTH` levels deep.
    """
    return _decode(obj, 0)


def _decode(obj: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _too_deep("deserialize")
    depth += 1
    if isinstance(obj, list):
        return [_decode(v, depth) for v in obj]
    if not isinstance(obj, dict):
        return obj
    tag = obj.get("__class__")
    if tag == "np.ndarray":
        dtype = obj.get("dtype")
        dtype = {"O": object, "U": str}.get(str(dtype), dtype)
        arr = np.asarray(_decode(obj["__value__"], depth), dtype=dtype)
        return arr.reshape(obj["shape"]) if "shape" in obj else arr
    if tag == "tuple":
        return tuple([_decode(v, depth) for v in obj["__value__"]])
    if tag == "LitType":
        return types.LitType.from_json({k: _decode(v, depth) for k, v in obj.items()})
    if tag == "DataTuple":
        return dtypes.DataTuple.from_json({k: _decode(v, depth) for k, v in obj.items()})
    return {k: _decode(v, depth) for k, v in obj.items()}


def json_safe(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers, mappings into
    dicts with string keys and tuples into lists, recursively: what `json.dumps` accepts."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def to_json(obj: Any, *, indent: int | None = None) -> str:
    """Serializes `obj` to a JSON string (see module docstring for what is supported)."""
    encoded = encode(obj)
    try:
        return json.dumps(encoded, indent=indent, ensure_ascii=False)
    except RecursionError:
        raise _too_deep("serialize") from None


def from_json(s: str | bytes) -> Any:
    """Parses a string produced by `to_json` back into Python / numpy objects."""
    try:
        parsed = json.loads(s)
    except RecursionError:
        raise _too_deep("deserialize") from None
    return decode(parsed)
