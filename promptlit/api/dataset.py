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
from promptlit.lib.utils import MAX_NESTING, example_id, too_deep
from promptlit.lib.validation import (
    DataError,
    Problem,
    describe_value,
    nesting_problem,
    validate_example,
)

logger = logging.getLogger(__name__)

JsonDict = types.JsonDict
Spec = types.Spec
OnError = Literal["raise", "skip"]

# Label-inference thresholds (see module docstring).
MAX_CATEGORY_VOCAB = 10
MAX_CATEGORY_CHARS = 40


##
# Spec inference


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def _kind(value: Any) -> str:
    """The coarse kind of a JSON value used for inference (looks one level into lists only)."""
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
        if items and all(_is_number(x) for x in items):
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
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[typing.IO[str]]:
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

    source: str | None

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

        Raises:
          TypeError: for a value JSON cannot hold.
          ValueError: for a value nested more than `MAX_NESTING` levels deep (the loaders would
            reject it).
        """
        path = Path(path)
        lines = []
        for i, ex in enumerate(self.examples):
            deep = [k for k, v in ex.items() if too_deep(v)]
            if deep:
                raise ValueError(
                    f"cannot save example #{i}: field '{deep[0]}' is nested too deeply (more "
                    f"than {MAX_NESTING} levels of lists / objects); flatten it first")
            lines.append(json.dumps(ex, ensure_ascii=False, default=_jsonable))
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
    id -> example. Row n and `ids[n]` always correspond one to one: an example whose id repeats
    an earlier one's (an identical example, or an `id_fn` / given id collision) keeps its row and
    gets the id `<id>-2` (`-3`, ...), `meta["duplicate_of"]` = the repeated id, and a warning in
    `.problems`. (The file loaders already keep identical lines once.)

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
        self.problems += _make_ids_unique(self._indexed_examples, self.source)
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
        out.problems = list(self.problems) + out.problems
        return out


def _same_content(a: Any, b: Any) -> bool:
    """Whether two examples are identical, private (`_`) keys included."""
    try:
        return json.dumps(a, sort_keys=True, default=_jsonable) == json.dumps(
            b, sort_keys=True, default=_jsonable)
    except (TypeError, ValueError, RecursionError):
        return a is b


def _make_ids_unique(entries: list[JsonDict], source: str | None) -> list[Problem]:
    """Renames repeated ids in place (`<id>-2`, ...); returns a warning per renamed entry."""
    first: dict[Any, int] = {}
    taken = {ie["id"] for ie in entries}
    problems = []
    for n, ie in enumerate(entries):
        ident = ie["id"]
        if ident not in first:
            first[ident] = n
            continue
        j = first[ident]
        k = 2
        while f"{ident}-{k}" in taken:
            k += 1
        new = f"{ident}-{k}"
        taken.add(new)
        first[new] = n
        ie["id"] = new
        ie["meta"]["duplicate_of"] = ident
        same = _same_content(ie["data"], entries[j]["data"])
        problems.append(Problem(
            f"repeats example #{j} ({'an identical example' if same else 'other content'} with "
            f"the same id); it keeps its row with the id '{str(ident)[:12]}...-{k}'",
            source=source, index=n, example_id=str(ident), severity="warning",
            fix="remove the duplicate" if same else "give every example a unique id"))
    return problems


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


_ID_FIELDS = ("id", "_id")
_ROW_KEY = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            default=repr).encode


def _dedupe(rows: list[tuple[int, JsonDict]], source: str
            ) -> tuple[list[tuple[int, JsonDict]], list[Problem]]:
    """Keeps the first of identical lines (a warning for each repeat) and reports an explicit
    `id` / `_id` that repeats with other content (an error; that line is not kept)."""
    seen: dict[str, int] = {}  # canonical row (private keys too) -> line
    ids: dict[tuple[str, Any], int] = {}  # (field, value) -> line
    kept: list[tuple[int, JsonDict]] = []
    problems: list[Problem] = []
    for line, obj in rows:
        key = _ROW_KEY(obj)
        if key in seen:
            problems.append(Problem(
                f"repeats line {seen[key]} (an identical example); kept once", source=source,
                line=line, severity="warning",
                fix=f"delete line {line}, or change it if it was meant to differ"))
            continue
        clash = next(((f, obj[f]) for f in _ID_FIELDS
                      if isinstance(obj.get(f), (str, int)) and (f, obj[f]) in ids), None)
        if clash is not None:
            problems.append(Problem(
                f"id {clash[1]!r} is already the id of line {ids[clash]}, which has other "
                "content", source=source, line=line, field=clash[0],
                fix=f"give every example a unique '{clash[0]}', or delete one of the two lines"))
            continue
        seen[key] = line
        for f in _ID_FIELDS:
            if isinstance(obj.get(f), (str, int)):
                ids[(f, obj[f])] = line
        kept.append((line, obj))
    return kept, problems


def _no_examples(source: str, why: str, fix: str, errors: Sequence[Problem] = ()) -> DataError:
    return DataError([Problem(f"has no examples: {why}", source=source, fix=fix), *errors])


def _finish(rows: list[tuple[int, Any]], parse_problems: list[Problem], *, source: str,
            spec: Mapping[str, types.LitType] | None, on_error: OnError,
            required_fields: Sequence[str], description: str,
            dataset_cls: type[Dataset] = Dataset, empty: tuple[str, str] | None = None
            ) -> Dataset:
    """Infers/applies the spec, checks each row, keeps identical rows once, then raises or skips
    bad rows. `empty` is (why, fix) for a file without any row or problem."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not rows and not parse_problems:
        raise _no_examples(source, *(empty or ("the file is empty", "add examples to it")))
    full_spec = _with_required(infer_spec([obj for _, obj in rows], spec), required_fields)
    problems = list(parse_problems)
    checked: list[tuple[int, JsonDict]] = []
    for line, obj in rows:
        row_problems = validate_example(obj, full_spec, source=source, line=line)
        errors = [p for p in row_problems if p.severity == "error"]
        problems += row_problems
        if not errors:
            checked.append((line, obj))
    kept, duplicate_problems = _dedupe(checked, source)
    problems += duplicate_problems
    problems.sort(key=lambda p: (p.line or 0))
    errors = [p for p in problems if p.severity == "error"]
    if errors and on_error == "raise":
        raise DataError(errors)
    for p in problems:
        if p.severity == "warning":
            logger.warning("%s", p)
    bad_lines = sorted({p.line for p in errors if p.line is not None})
    if not kept:
        raise _no_examples(source, f"all {len(bad_lines)} line(s) were skipped as bad",
                           "fix the lines listed here", errors)
    if errors:
        logger.warning("Skipped %d bad line(s) of %s (lines %s). First problem: %s",
                       len(bad_lines), source, ", ".join(map(str, bad_lines[:20])), errors[0])
    good = [obj for _, obj in kept]
    if len(good) < len(rows):
        # Re-infer from the kept rows only, so fields seen only in skipped lines do not linger.
        full_spec = _with_required(infer_spec(good, spec), required_fields)
    ds = dataset_cls(good, spec=full_spec,
                     description=description or f"{Path(source).name} ({len(good)} examples)",
                     source=source)
    ds.problems = problems + ds.problems  # + id warnings of an IndexedDataset
    return ds


def read_spec_file(path: str | os.PathLike[str]) -> Spec | None:
    """The spec saved beside a data file (`<path>.spec`, see `Dataset.save`), or None if there is
    no such file.

    Raises:
      DataError: naming the `.spec` file (and line, field) when it cannot be read: not UTF-8, not
        valid JSON, not an object of field -> type, or an unknown / malformed type.
    """
    sp = spec_path(path)
    if not sp.is_file():
        return None
    source = os.fspath(sp)
    fix = f"fix it, or delete {sp} to infer the spec from the data"
    try:
        raw = json.loads(sp.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(Problem(f"cannot read the spec file: not valid UTF-8 (byte {e.start + 1})",
                                source=source, fix=fix)) from None
    except json.JSONDecodeError as e:
        raise DataError(Problem(f"cannot read the spec file: not valid JSON: {e.msg} "
                                f"(column {e.colno})", source=source, line=e.lineno,
                                fix=fix)) from None
    except RecursionError:
        raise DataError(nesting_problem(source=source)) from None
    except OSError as e:
        raise DataError(Problem(f"cannot read the spec file: {e.strerror or e}", source=source,
                                fix=fix)) from None
    if not isinstance(raw, dict):
        raise DataError(Problem(
            f"cannot read the spec file: expected a JSON object of field name -> type, got "
            f"{describe_value(raw)}", source=source, fix=fix))
    spec: Spec = {}
    problems = []
    for key, value in raw.items():
        if not isinstance(value, dict):
            problems.append(Problem(
                "cannot read the spec file: expected a type such as "
                f'{{"__name__": "TextSegment"}}, got {describe_value(value)}',
                source=source, field=key, fix=fix))
            continue
        try:
            spec[key] = types.LitType.from_json(value)
        except (ValueError, KeyError, TypeError, NameError, AttributeError) as e:
            reason = e.args[0] if isinstance(e, KeyError) and e.args else e
            problems.append(Problem(f"cannot read the spec file: {reason}", source=source,
                                    field=key, fix=fix))
    if problems:
        raise DataError(problems)
    return spec


def load_jsonl(path: str | os.PathLike[str], spec: Mapping[str, types.LitType] | None = None, *,
               on_error: OnError = "raise", required_fields: Sequence[str] = (),
               description: str = "", dataset_cls: type[Dataset] = Dataset,
               prepare: Callable[[JsonDict, int], list[Problem]] | None = None) -> Dataset:
    """Loads a JSON Lines file: one JSON object (one example) per line.

    Blank lines are ignored. Every other line must be a JSON object whose fields match the spec
    (given, read from `<path>.spec` if that file exists, or inferred). Problems found:
    malformed JSON, a line that is not an object, a missing or null required field (from the
    spec or `required_fields`), a value of the wrong type, a value nested more than
    `MAX_NESTING` levels deep, an explicit `id` / `_id` that repeats with other content,
    invalid UTF-8. Each is reported once, as `file:line: field 'x': what. Fix: how.`
    A line identical to an earlier one is kept once (a warning, not an error). A file without
    any example (empty, or every line skipped as bad) is an error.

    Args:
      path: the .jsonl file.
      spec: explicit field types (override inference for those fields).
      on_error: "raise" raises `DataError` listing all problems (nothing is returned);
        "skip" drops the bad lines, logs a warning and keeps the problems in `dataset.problems`.
      required_fields: fields every example must have (e.g. `("prompt",)` for LM prompts).
      description: the dataset description (default: file name and size).
      dataset_cls: the class to build (`Dataset` or `IndexedDataset`).
      prepare: called as `prepare(obj, line)` on each parsed object before it is checked; it may
        complete the object in place (e.g. derive a field) and returns the line's problems (a
        line with an error is bad, like any other).

    Raises:
      DataError: with `on_error="raise"` when any line is bad, or when the file is unreadable.
    """
    source = _path_name(path)
    path = Path(path)
    if spec is None:
        spec = read_spec_file(path)
    rows: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    lines = _read_lines(path, source)
    for line, text, problem in lines:
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
        except RecursionError:
            problems.append(nesting_problem(source=source, line=line))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(
                f"expected a JSON object, got {describe_value(obj)}", source=source, line=line,
                fix='write one object per line, e.g. {"prompt": "Hello"}'))
            continue
        if prepare is not None:
            found = prepare(obj, line)
            problems += found
            if any(p.severity == "error" for p in found):
                continue
        rows.append((line, obj))
    empty = "the file is empty" if lines == [(1, "", None)] else "the file has only blank lines"
    return _finish(rows, problems, source=source, spec=spec, on_error=on_error,
                   required_fields=required_fields, description=description,
                   dataset_cls=dataset_cls,
                   empty=(empty, 'write one JSON object per line, e.g. {"prompt": "Hello"}'))


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
        except (json.JSONDecodeError, RecursionError):
            return text
    return text


def _infer_csv_column(cells: list[str]) -> types.LitType | None:
    """A type to convert a CSV column with (None: keep strings)."""
    if cells and all(_parse_number(c.strip()) is not None for c in cells):
        return types.Scalar()
    if cells and all(c.strip().lower() in {"true", "false"} for c in cells):
        return types.Boolean()
    return None


class _LineFeed:
    """Feeds `texts[pos:]` to a csv reader line by line; `pos` is the next line to read."""

    def __init__(self, texts: Sequence[str], pos: int) -> None:
        self.texts, self.pos = texts, pos

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.texts):
            raise StopIteration
        self.pos += 1
        return self.texts[self.pos - 1] + "\n"


def _open_quote_line(texts: Sequence[str], start: int, stop: int, sep: str) -> int:
    """Index of the line whose quote opened the value a strict csv reader stopped in (a quote
    never closed, or closed and followed by text), scanning the record from line `start`."""
    opened, state = start, "start"
    for i in range(start, stop):
        for ch in texts[i] + "\n":
            if state == "start":
                if ch == '"':
                    state, opened = "quoted", i
                elif ch not in (sep, "\n"):
                    state = "field"
            elif state == "field":
                if ch in (sep, "\n"):
                    state = "start"
            elif state == "quoted":
                if ch == '"':
                    state = "closing"
            elif ch == '"':  # state == "closing": a doubled quote inside the value
                state = "quoted"
            elif ch in (sep, "\n"):
                state = "start"
            else:
                return opened
    return opened


def _csv_records(texts: Sequence[str], sep: str, source: str
                 ) -> Iterator[tuple[int, list[str] | None, Problem | None]]:
    """(first line, cells, None) per CSV record, or (line, None, problem) for a broken one.

    Records are read strictly. A quoted value that spans lines and then breaks (never closed, or
    text after its closing quote) would swallow the lines after it: it is reported at the line of
    its opening quote, and reading resumes on the next line, so the following rows survive. A
    one-line record with sloppy quoting (`"a" ,b`) is read leniently, as before.
    """
    pos = 0
    while pos < len(texts):
        feed = _LineFeed(texts, pos)
        reader = csv.reader(feed, delimiter=sep, strict=True)
        start = pos
        try:
            while True:
                start = feed.pos
                try:
                    record = next(reader)
                except StopIteration:
                    return
                yield start + 1, record, None
        except csv.Error as e:
            if feed.pos - start <= 1:
                try:
                    yield start + 1, next(csv.reader([texts[start] + "\n"], delimiter=sep)), None
                except (csv.Error, StopIteration) as e2:
                    yield start + 1, None, Problem(
                        f"malformed CSV: {e2}", source=source, line=start + 1,
                        fix="quote values that contain the separator, quotes or line breaks")
                pos = start + 1
                continue
            opened = _open_quote_line(texts, start, feed.pos, sep)
            last = max((i for i in range(opened, feed.pos) if texts[i].strip()), default=opened)
            swallowed = (f", so it swallows line(s) {opened + 2}-{last + 1}" if last > opened
                         else "")
            yield opened + 1, None, Problem(
                f"a quoted value opened on this line is not closed properly (CSV: {e})"
                + swallowed, source=source, line=opened + 1,
                fix='close the quote; a quote inside a quoted value is written twice ("")')
            pos = opened + 1


def load_csv(path: str | os.PathLike[str], sep: str | None = None,
             spec: Mapping[str, types.LitType] | None = None, *, on_error: OnError = "raise",
             required_fields: Sequence[str] = (), description: str = "",
             dataset_cls: type[Dataset] = Dataset) -> Dataset:
    """Loads a CSV (or TSV) file with a header row: one example per row.

    Empty cells are absent fields. Without a spec, a column whose cells are all numbers becomes
    numbers (`Scalar`), all "true"/"false" becomes bools; other columns stay strings (then the
    usual inference picks TextSegment or CategoryLabel). With a spec, cells are converted to the
    spec's types. Rows with the wrong number of cells, a quote that is never closed (reported at
    the line of the opening quote; the rows after it are still read) and values that do not fit
    the spec are reported with `file:line` like `load_jsonl` (line = where the row starts).
    A file without a header or without rows is an error.

    Args:
      path: the file. sep: the delimiter; default "\\t" for .tsv/.tab files, else ",".
      spec, on_error, required_fields, description, dataset_cls: as for `load_jsonl`.
    """
    source = _path_name(path)
    path = Path(path)
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    if spec is None:
        spec = read_spec_file(path)
    lines = _read_lines(path, source)
    problems = [p for _, _, p in lines if p is not None]
    if problems:
        if on_error == "raise":
            raise DataError(problems)
    texts = [t if t is not None else "" for _, t, _ in lines]
    header: list[str] | None = None
    header_line = 1
    raw_rows: list[tuple[int, list[str]]] = []
    for line, record, problem in _csv_records(texts, sep, source):
        if problem is not None:
            if header is None:
                raise DataError(dataclasses.replace(
                    problem, message=f"the header row is unreadable: {problem.message}"))
            problems.append(problem)
            continue
        assert record is not None
        if not any(c.strip() for c in record):
            continue
        if header is None:
            header, header_line = [c.strip() for c in record], line
            continue
        raw_rows.append((line, record))
    if header is None:
        empty = "the file is empty" if lines == [(1, "", None)] else "the file has only blank lines"
        return _finish([], problems, source=source, spec=spec, on_error=on_error,
                       required_fields=required_fields, description=description,
                       dataset_cls=dataset_cls,
                       empty=(empty, "write a header row, then one row per example"))
    dupes = [h for h, n in collections.Counter(header).items() if n > 1]
    if dupes or "" in header:
        what = f"duplicate column names {dupes}" if dupes else "an empty column name"
        raise DataError(Problem(f"the header row has {what}", source=source, line=header_line,
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
                   dataset_cls=dataset_cls,
                   empty=(f"the file has only a header row ({sep.join(header)})",
                          "add one row per example below the header row"))


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
