"""LIT-compatible datasets: a list of example dicts plus the spec that describes their fields.

`Dataset` holds plain examples (`{"prompt": "...", "target": "..."}`) and a spec
(`{"prompt": TextSegment(), ...}`); `IndexedDataset` adds stable content-hash ids. Loaders read
JSONL and CSV/TSV files, infer a spec when none is given, and report every bad line with its
`file:line`, the field and how to fix it.

Example:
    >>> from promptlit.api import types
    >>> ds = Dataset([{"prompt": "Hi", "n": 1}, {"prompt": "Yo", "n": 2}])
    >>> sorted((k, t.type_name) for k, t in ds.spec().items())
    [('n', 'Scalar'), ('prompt', 'TextSegment')]
    >>> len(ds.slice[:1]), ds.remap({"prompt": "text"}).examples[0]
    (1, {'text': 'Hi', 'n': 1})

Spec inference (`infer_spec`), per field, from the values that are present and not null:

* strings -> `TextSegment`, unless the field looks like a label: at most 10 distinct values,
  fewer distinct values than half the values present, all short (<= 40 chars, one line) ->
  `CategoryLabel(vocab=sorted values)`;
* numbers -> `Scalar(min_val=min, max_val=max)` (ints too, as in LIT); bools -> `Boolean`;
* lists of strings -> `Tokens`; lists of numbers -> `Embeddings`;
* anything else (objects, mixed lists) gets no spec entry (the value is kept but not typed).

A field absent or null in some example is `required=False`. When a field's values have several
kinds, the most common kind wins and the other examples are reported as wrong-type problems.
An explicit `spec` overrides inference for the fields it names; other fields are still inferred.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import inspect
import io
import json
import logging
import os
import random
import tempfile
import types as pytypes
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from promptlit.api import types
from promptlit.lib.utils import example_id
from promptlit.lib.validation import DataError, Problem, describe_value, validate_example

logger = logging.getLogger(__name__)

JsonDict = types.JsonDict
Spec = types.Spec
OnError = Literal["raise", "skip"]

# Label-inference thresholds (see module docstring).
MAX_CATEGORY_VOCAB = 10
MAX_CATEGORY_CHARS = 40


##
# Spec inference


def _kind(value: Any) -> str:
    """The coarse kind of a JSON value used for inference."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if items and all(isinstance(x, str) for x in items):
            return "str_list"
        if items and all(_kind(x) == "number" for x in items):
            return "num_list"
        return "list"
    return "other"


def _infer_field(values: list[Any], num_examples: int, required: bool) -> types.LitType | None:
    kinds = collections.Counter(_kind(v) for v in values)
    if not kinds:
        return None
    kind = kinds.most_common(1)[0][0]
    same = [v for v in values if _kind(v) == kind]
    if kind == "str":
        distinct = set(same)
        short = all(len(v) <= MAX_CATEGORY_CHARS and "\n" not in v for v in distinct)
        if short and len(distinct) <= MAX_CATEGORY_VOCAB and len(distinct) < len(same) / 2:
            return types.CategoryLabel(vocab=sorted(distinct), required=required)
        return types.TextSegment(required=required)
    if kind == "number":
        lo, hi = float(min(same)), float(max(same))
        if all(float(v).is_integer() for v in same):
            lo, hi = int(lo), int(hi)
        return types.Scalar(min_val=lo, max_val=hi if hi > lo else lo + 1, required=required)
    if kind == "bool":
        return types.Boolean(required=required)
    if kind == "str_list":
        return types.Tokens(required=required)
    if kind == "num_list":
        return types.Embeddings(required=required)
    return None


def infer_spec(examples: Sequence[Mapping[str, Any]], spec: Mapping[str, types.LitType] | None = None
               ) -> Spec:
    """Infers a spec from example values (rules in the module docstring).

    Args:
      examples: the examples (non-dict entries are ignored).
      spec: explicit types that override inference for the fields they name.

    Returns:
      field -> LitType, explicit fields first (in their order), then inferred ones in order of
      first appearance. Private (`_`-prefixed) keys are never part of a spec.
    """
    explicit = dict(spec or {})
    rows = [ex for ex in examples if isinstance(ex, Mapping)]
    keys: dict[str, None] = {}
    for ex in rows:
        for k in ex:
            if isinstance(k, str) and not k.startswith("_") and k not in explicit:
                keys.setdefault(k)
    out: Spec = dict(explicit)
    for key in keys:
        values = [ex[key] for ex in rows if ex.get(key) is not None]
        required = len(values) == len(rows)
        inferred = _infer_field(values, len(rows), required)
        if inferred is not None:
            out[key] = inferred
    return out


_PY_TO_LIT: dict[Any, type[types.LitType]] = {
    str: types.String,
    bool: types.Boolean,
    int: types.Integer,
    float: types.Scalar,
}


def infer_spec_for_func(func: Callable[..., Any]) -> Spec:
    """The spec of a function's parameters, for "load a model/dataset" forms (as in LIT).

    Each parameter other than `self`, `*args` and `**kwargs` needs a `str`, `int`, `float` or
    `bool` annotation (optionally `| None`); a parameter with a default is `required=False` and
    carries that default.

    Raises:
      TypeError: if a parameter has no annotation or one that cannot be expressed as a LitType.
    """
    try:
        hints = typing.get_type_hints(func)
    except Exception as e:  # unresolvable forward references, e.g. TYPE_CHECKING-only names
        raise TypeError(f"cannot resolve the annotations of {func.__qualname__}: {e}") from e
    spec: Spec = {}
    for name, param in inspect.signature(func).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(name)
        if hint is None:
            raise TypeError(f"parameter {name!r} of {func.__qualname__} has no type annotation")
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, pytypes.UnionType):
            non_none = [a for a in args if a is not type(None)]
            hint = non_none[0] if len(non_none) == 1 else hint
        cls = _PY_TO_LIT.get(hint)
        if cls is None:
            raise TypeError(f"parameter {name!r} of {func.__qualname__} has unsupported type {hint!r}")
        has_default = param.default is not inspect.Parameter.empty
        kwargs: dict[str, Any] = {"required": not has_default}
        if has_default and param.default is not None:
            kwargs["default"] = param.default
        spec[name] = cls(**kwargs)
    return spec


##
# Datasets


def _jsonable(obj: Any) -> Any:
    """`json.dumps` default: numpy arrays/scalars to lists/numbers (datasets stay plain JSON)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"cannot write a {type(obj).__name__} value to JSON")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[io.TextIOBase]:
    """Opens a temporary file next to `path`; on success it atomically replaces `path`.

    If the body raises, `path` is left untouched and the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def spec_path(path: str | os.PathLike[str]) -> Path:
    """Where `Dataset.save(path)` writes the spec: `<path>.spec` (LIT's convention)."""
    return Path(f"{os.fspath(path)}.spec")


class _SliceWrapper:
    """Makes `dataset.slice[start:stop:step]` return a new dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def __getitem__(self, item: slice) -> Dataset:
        if not isinstance(item, slice):
            raise TypeError(f"use dataset.slice[start:stop:step], not dataset.slice[{item!r}]")
        return self._dataset._derive(self._dataset.examples[item])


class Dataset:
    """A list of examples (dicts) and the spec describing their fields.

    Args:
      examples: the examples; kept as given (no copy of each dict).
      spec: field -> LitType. When None it is inferred from the examples (`infer_spec`).
      description: a human-readable description.
      base: another dataset to copy examples, spec and description from (LIT's `base=`);
        explicit arguments win.
      source: where the examples came from (a file path), used in problem messages.

    Subclasses may instead override `spec()` and set `self._examples` (LIT style).
    """

    def __init__(self, examples: list[JsonDict] | None = None, spec: Spec | None = None,
                 description: str = "", *, base: Dataset | None = None,
                 source: str | None = None) -> None:
        if base is not None:
            examples = base.examples if examples is None else examples
            spec = base.spec() if spec is None else spec
            description = description or base.description()
            source = source or base.source
        self._examples: list[JsonDict] = list(examples) if examples is not None else []
        self._spec: Spec = dict(spec) if spec is not None else infer_spec(self._examples)
        self._description = description
        self.source = source
        self.problems: list[Problem] = list(base.problems) if base is not None else []

    # -- LIT API -------------------------------------------------------------------------------
    def spec(self) -> Spec:
        """Field name -> LitType of the examples."""
        return self._spec

    @property
    def examples(self) -> list[JsonDict]:
        """The examples (plain dicts)."""
        return self._examples

    def description(self) -> str:
        """A human-readable description (defaults to the class docstring's first line)."""
        if self._description:
            return self._description
        doc = inspect.getdoc(self) or ""
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def init_spec(cls) -> Spec | None:
        """The spec of this class's constructor arguments (None if they are not simple types)."""
        try:
            return infer_spec_for_func(cls.__init__)
        except TypeError as e:
            logger.debug("No init_spec for %s: %s", cls.__name__, e)
            return None

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[JsonDict]:
        return iter(self.examples)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}: {t.type_name}" for k, t in self.spec().items())
        return f"{type(self).__name__}({len(self)} examples; {fields})"

    # -- derived datasets ----------------------------------------------------------------------
    def _derive(self, examples: list[JsonDict], spec: Spec | None = None) -> Dataset:
        """A dataset of the same kind with other examples (used by slice/sample/remap)."""
        return Dataset(examples, spec=self.spec() if spec is None else spec,
                       description=self.description(), source=self.source)

    @property
    def slice(self) -> _SliceWrapper:
        """`dataset.slice[start:stop:step]` -> a new dataset of those examples."""
        return _SliceWrapper(self)

    def sample(self, n: int, seed: int = 42) -> Dataset:
        """A new dataset of `n` examples drawn without replacement (all of them if n >= len)."""
        if n < 0:
            raise ValueError(f"sample size must be >= 0, got {n}")
        examples = list(self.examples)
        if n < len(examples):
            examples = random.Random(seed).sample(examples, n)
        return self._derive(examples)

    def shuffle(self, seed: int = 42) -> Dataset:
        """A new dataset with the examples in a seeded random order."""
        examples = list(self.examples)
        random.Random(seed).shuffle(examples)
        return self._derive(examples)

    def filter(self, predicate: Callable[[JsonDict], bool]) -> Dataset:
        """A new dataset of the examples for which `predicate(example)` is true."""
        return self._derive([ex for ex in self.examples if predicate(ex)])

    def remap(self, field_map: Mapping[str, str]) -> Dataset:
        """A new dataset with fields renamed (`{"old": "new"}`), in the spec and every example.

        Field references in the spec (`parent=`, `align=`) are renamed too.
        """
        unknown = [k for k in field_map if k not in self.spec()]
        if unknown:
            raise KeyError(
                f"remap: field(s) {unknown} are not in the dataset spec "
                f"(fields: {list(self.spec())}). Fix: use existing field names as keys."
            )
        spec = types.remap_spec(self.spec(), field_map)
        examples = [{field_map.get(k, k): v for k, v in ex.items()} for ex in self.examples]
        return self._derive(examples, spec=spec)

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the examples as JSONL and the spec to `<path>.spec`, each atomically.

        numpy values are written as plain lists/numbers. Returns the path written.
        """
        path = Path(path)
        lines = [json.dumps(ex, ensure_ascii=False, default=_jsonable) for ex in self.examples]
        spec_json = json.dumps(types.spec_to_json(self.spec()), indent=2, default=_jsonable)
        with atomic_write(spec_path(path)) as f:
            f.write(spec_json + "\n")
        with atomic_write(path) as f:
            f.write("".join(line + "\n" for line in lines))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> Dataset:
        """Loads a file written by `save` (or any JSONL / CSV / TSV file) as a Dataset."""
        return load_file(path, **kwargs)


class IndexedDataset(Dataset):
    """A dataset whose examples have stable ids (content hashes), as LIT's IndexedDataset.

    `.examples` stays the list of plain dicts; `.indexed_examples` is
    `[{"id": ..., "data": example, "meta": {...}}]` in the same order, and `.index` maps
    id -> example. Identical examples share an id.

    Args:
      examples, spec, description, base, source: as for `Dataset` (`base` may be any Dataset).
      id_fn: example -> id (default `promptlit.lib.utils.example_id`, a sha1 of the content).
      indexed_examples: precomputed `{"id", "data", "meta"}` entries (then `examples` is ignored).
    """

    def __init__(self, examples: list[JsonDict] | None = None, spec: Spec | None = None,
                 description: str = "", *, base: Dataset | None = None, source: str | None = None,
                 id_fn: Callable[[JsonDict], str] | None = None,
                 indexed_examples: list[JsonDict] | None = None) -> None:
        if indexed_examples is not None:
            examples = [ie["data"] for ie in indexed_examples]
        super().__init__(examples, spec, description, base=base, source=source)
        self.id_fn = id_fn or example_id
        if indexed_examples is None:
            indexed_examples = [{"id": self.id_fn(ex), "data": ex, "meta": {}}
                                for ex in self._examples]
        self._indexed_examples = [dict(ie, meta=dict(ie.get("meta") or {}))
                                  for ie in indexed_examples]
        self._index = {ie["id"]: ie["data"] for ie in self._indexed_examples}

    @property
    def indexed_examples(self) -> list[JsonDict]:
        """`[{"id": str, "data": example, "meta": dict}]`, one per example, in order."""
        return self._indexed_examples

    @property
    def index(self) -> dict[str, JsonDict]:
        """id -> example."""
        return self._index

    @property
    def ids(self) -> list[str]:
        """The id of each example, in order."""
        return [ie["id"] for ie in self._indexed_examples]

    def id_of(self, example: JsonDict) -> str:
        """The id this dataset gives `example` (whether or not it is in the dataset)."""
        return self.id_fn(example)

    def _derive(self, examples: list[JsonDict], spec: Spec | None = None) -> IndexedDataset:
        return IndexedDataset(examples, spec=self.spec() if spec is None else spec,
                              description=self.description(), source=self.source, id_fn=self.id_fn)

    def add(self, examples: Iterable[JsonDict], meta: JsonDict | None = None) -> IndexedDataset:
        """A new IndexedDataset with `examples` appended (this one is not changed)."""
        new = [{"id": self.id_fn(ex), "data": ex, "meta": dict(meta or {})} for ex in examples]
        out = IndexedDataset(spec=self.spec(), description=self.description(), source=self.source,
                             id_fn=self.id_fn, indexed_examples=self._indexed_examples + new)
        out.problems = list(self.problems)
        return out


##
# Loaders


def _path_name(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


def _read_lines(path: Path, source: str) -> list[tuple[int, str | None, Problem | None]]:
    """(line number, text or None, decode problem or None) per line of a UTF-8 file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(Problem("file not found", source=source,
                                fix="check the path (relative paths start at the current "
                                    f"directory, {os.getcwd()})")) from None
    except IsADirectoryError:
        raise DataError(Problem("is a directory, not a file", source=source,
                                fix="give the path of a .jsonl, .csv or .tsv file")) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    out: list[tuple[int, str | None, Problem | None]] = []
    for i, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            out.append((i, chunk.decode("utf-8").rstrip("\r"), None))
        except UnicodeDecodeError as e:
            out.append((i, None, Problem(
                f"not valid UTF-8 (byte {e.start + 1})", source=source, line=i,
                fix="save the file with UTF-8 encoding")))
    return out


def _with_required(spec: Spec, required_fields: Sequence[str]) -> Spec:
    """Marks `required_fields` required (adding them as TextSegment if the spec lacks them)."""
    for field in required_fields:
        if field in spec:
            spec[field] = dataclasses.replace(spec[field], required=True)
        else:
            spec[field] = types.TextSegment()
    return spec


def _finish(rows: list[tuple[int, Any]], parse_problems: list[Problem], *, source: str,
            spec: Mapping[str, types.LitType] | None, on_error: OnError,
            required_fields: Sequence[str], description: str,
            dataset_cls: type[Dataset] = Dataset) -> Dataset:
    """Infers/applies the spec, checks each row, then raises or skips bad rows."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    full_spec = _with_required(infer_spec([obj for _, obj in rows], spec), required_fields)
    problems = list(parse_problems)
    good: list[JsonDict] = []
    for line, obj in rows:
        row_problems = validate_example(obj, full_spec, source=source, line=line)
        errors = [p for p in row_problems if p.severity == "error"]
        problems += row_problems
        if not errors:
            good.append(obj)
    problems.sort(key=lambda p: (p.line or 0))
    errors = [p for p in problems if p.severity == "error"]
    if errors and on_error == "raise":
        raise DataError(errors)
    for p in problems:
        if p.severity == "warning":
            logger.warning("%s", p)
    if errors:
        bad_lines = sorted({p.line for p in errors if p.line is not None})
        logger.warning("Skipped %d bad line(s) of %s (lines %s). First problem: %s",
                       len(bad_lines), source, ", ".join(map(str, bad_lines[:20])), errors[0])
    if len(good) < len(rows):
        # Re-infer from the kept rows only, so fields seen only in skipped lines do not linger.
        full_spec = _with_required(infer_spec(good, spec), required_fields)
    ds = dataset_cls(good, spec=full_spec,
                     description=description or f"{Path(source).name} ({len(good)} examples)",
                     source=source)
    ds.problems = problems
    return ds


def _sidecar_spec(path: Path, source: str) -> Spec | None:
    sp = spec_path(path)
    if not sp.is_file():
        return None
    try:
        return types.spec_from_json(json.loads(sp.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, NameError) as e:
        raise DataError(Problem(f"cannot read the spec file: {e}", source=os.fspath(sp),
                                fix=f"delete {sp} to infer the spec, or fix its JSON")) from e


def load_jsonl(path: str | os.PathLike[str], spec: Mapping[str, types.LitType] | None = None, *,
               on_error: OnError = "raise", required_fields: Sequence[str] = (),
               description: str = "", dataset_cls: type[Dataset] = Dataset) -> Dataset:
    """Loads a JSON Lines file: one JSON object (one example) per line.

    Blank lines are ignored. Every other line must be a JSON object whose fields match the spec
    (given, read from `<path>.spec` if that file exists, or inferred). Problems found:
    malformed JSON, a line that is not an object, a missing required field (from the spec or
    `required_fields`), a value of the wrong type, invalid UTF-8. Each is reported once, as
    `file:line: field 'x': what. Fix: how.`

    Args:
      path: the .jsonl file.
      spec: explicit field types (override inference for those fields).
      on_error: "raise" raises `DataError` listing all problems (nothing is returned);
        "skip" drops the bad lines, logs a warning and keeps the problems in `dataset.problems`.
      required_fields: fields every example must have (e.g. `("prompt",)` for LM prompts).
      description: the dataset description (default: file name and size).
      dataset_cls: the class to build (`Dataset` or `IndexedDataset`).

    Raises:
      DataError: with `on_error="raise"` when any line is bad, or when the file is unreadable.
    """
    source = _path_name(path)
    path = Path(path)
    if spec is None:
        spec = _sidecar_spec(path, source)
    rows: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    for line, text, problem in _read_lines(path, source):
        if problem is not None:
            problems.append(problem)
            continue
        assert text is not None
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(Problem(
                f"not valid JSON: {e.msg} (column {e.colno})", source=source, line=line,
                fix="each line must be one complete JSON object, e.g. "
                    '{"prompt": "Hello"}; check quotes, commas and brackets'))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(
                f"expected a JSON object, got {describe_value(obj)}", source=source, line=line,
                fix='write one object per line, e.g. {"prompt": "Hello"}'))
            continue
        rows.append((line, obj))
    return _finish(rows, problems, source=source, spec=spec, on_error=on_error,
                   required_fields=required_fields, description=description,
                   dataset_cls=dataset_cls)


_TRUE = {"true", "yes", "1", "t", "y"}
_FALSE = {"false", "no", "0", "f", "n"}


def _parse_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _convert_cell(text: str, lit_type: types.LitType | None) -> Any:
    """Converts one CSV cell to the spec's type (unconvertible text is kept, then reported)."""
    if isinstance(lit_type, types.Boolean):
        low = text.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else text
    if isinstance(lit_type, types.Integer):
        number = _parse_number(text.strip())
        return int(number) if isinstance(number, int) else text
    if isinstance(lit_type, types.Scalar):
        number = _parse_number(text.strip())
        return number if number is not None else text
    if isinstance(lit_type, types.ListLitType) or isinstance(lit_type, types.Embeddings):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _infer_csv_column(cells: list[str]) -> types.LitType | None:
    """A type to convert a CSV column with (None: keep strings)."""
    if cells and all(_parse_number(c.strip()) is not None for c in cells):
        return types.Scalar()
    if cells and all(c.strip().lower() in {"true", "false"} for c in cells):
        return types.Boolean()
    return None


def load_csv(path: str | os.PathLike[str], sep: str | None = None,
             spec: Mapping[str, types.LitType] | None = None, *, on_error: OnError = "raise",
             required_fields: Sequence[str] = (), description: str = "",
             dataset_cls: type[Dataset] = Dataset) -> Dataset:
    """Loads a CSV (or TSV) file with a header row: one example per row.

    Empty cells are absent fields. Without a spec, a column whose cells are all numbers becomes
    numbers (`Scalar`), all "true"/"false" becomes bools; other columns stay strings (then the
    usual inference picks TextSegment or CategoryLabel). With a spec, cells are converted to the
    spec's types. Rows with the wrong number of cells and values that do not fit the spec are
    reported with `file:line` like `load_jsonl` (line = where the row starts).

    Args:
      path: the file. sep: the delimiter; default "\\t" for .tsv/.tab files, else ",".
      spec, on_error, required_fields, description, dataset_cls: as for `load_jsonl`.
    """
    source = _path_name(path)
    path = Path(path)
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    if spec is None:
        spec = _sidecar_spec(path, source)
    lines = _read_lines(path, source)
    problems = [p for _, _, p in lines if p is not None]
    if problems:
        if on_error == "raise":
            raise DataError(problems)
    text = "\n".join(t if t is not None else "" for _, t, _ in lines)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    raw_rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if header is None:
                if not any(c.strip() for c in record):
                    continue
                header = [c.strip() for c in record]
                continue
            if not any(c.strip() for c in record):
                continue
            raw_rows.append((line, record))
    except csv.Error as e:
        problems.append(Problem(f"malformed CSV: {e}", source=source, line=reader.line_num,
                                fix="close every quoted value with a matching quote"))
    if header is None:
        return _finish([], problems, source=source, spec=spec, on_error=on_error,
                       required_fields=required_fields, description=description,
                       dataset_cls=dataset_cls)
    dupes = [h for h, n in collections.Counter(header).items() if n > 1]
    if dupes or "" in header:
        what = f"duplicate column names {dupes}" if dupes else "an empty column name"
        raise DataError(Problem(f"the header row has {what}", source=source, line=1,
                                fix="give every column a unique, non-empty name"))
    spec = dict(spec or {})
    good_rows: list[tuple[int, list[str]]] = []
    for line, record in raw_rows:
        if len(record) != len(header):
            problems.append(Problem(
                f"has {len(record)} cells but the header has {len(header)} columns",
                source=source, line=line,
                fix=f"quote values that contain the separator {sep!r}, and give every row "
                    f"{len(header)} cells"))
        else:
            good_rows.append((line, record))
    column_types: dict[str, types.LitType | None] = {}
    for j, name in enumerate(header):
        if name in spec:
            column_types[name] = spec[name]
        else:
            column_types[name] = _infer_csv_column([r[j] for _, r in good_rows if r[j] != ""])
    rows: list[tuple[int, Any]] = []
    for line, record in good_rows:
        rows.append((line, {name: _convert_cell(cell, column_types[name])
                            for name, cell in zip(header, record, strict=True) if cell != ""}))
    return _finish(rows, problems, source=source, spec=spec or None, on_error=on_error,
                   required_fields=required_fields, description=description,
                   dataset_cls=dataset_cls)


def load_file(path: str | os.PathLike[str], **kwargs: Any) -> Dataset:
    """Loads a .jsonl/.json lines file or a .csv/.tsv file, by extension.

    Keyword arguments go to `load_jsonl` / `load_csv`.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv", ".tab"):
        return load_csv(path, **kwargs)
    if suffix in (".jsonl", ".json", ".ndjson", ""):
        return load_jsonl(path, **kwargs)
    raise DataError(Problem(f"unsupported file type {suffix!r}", source=_path_name(path),
                            fix="use a .jsonl (one JSON object per line), .csv or .tsv file"))
