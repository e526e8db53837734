"""Named datasets (`pl.data`): the ones the project ships and your own files.

A dataset is named either by a built-in name or as `name:path`:

* `sample_prompts` -> `<repo>/datasets/sample_prompts.jsonl` (every `.jsonl`, `.csv` and `.tsv`
  file in the repository's `datasets/` folder is a built-in, named by its stem);
* `mine:/path/to/file.jsonl` (or `.csv` / `.tsv`) -> that file, shown as "mine".

Files where any example has a `prompt` field (or a CSV/TSV header has a `prompt` column) are
*prompt datasets* for language models: `prompt` is a required `TextSegment` in *every* row (a
row without one, or with a null or non-string one, is a problem at its `file:line`), `target` an
optional `TextSegment` (the reference continuation), and other fields are inferred (e.g.
`source` becomes a `CategoryLabel`). A `<file>.spec` beside the file (written by
`Dataset.save`) gives the fields' types; an explicit `spec=` overrides it field by field.

Chat examples (JSONL): a row may carry a conversation instead of a prompt,
``{"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]}``
(roles system / user / assistant, ending with the user's turn). Language models with chat support
(`promptlit.models.KerasCausalLM`) read the conversation and wrap it in their chat template; the
row's `prompt` is filled with its plain transcript ("User: ...\n\nAssistant:", what a model
without a template reads), so every prompt view still has text to show (a prompt edited away
from the transcript, e.g. in the datapoint editor, is what models then read). A row may also
say which template its prompt takes, ``"chat_template": "none"`` (e.g. a prompt already
formatted by hand), ``"auto"`` (the model's own) or a built-in name;
``load_path(..., chat_template=...)`` sets that for every row of a file that does not say. Bad
conversations and template names are problems at their `file:line`.

Custom segments (JSONL): a row may say how its prompt divides into labelled parts, for salience
summed by label (the "segments" granularity, `promptlit.lib.segmentation`):
``"segments": [{"label": "example 1", "start": 0, "end": 120}, ...]`` (half-open character
offsets into the prompt, non-overlapping), or a ``"template"`` with ``"fields"``
(``{"template": "Likes: {likes}\nDish: {dish}", "fields": {"likes": "fish", "dish": "soup"}}``):
the prompt is rendered from it (`promptlit.lib.segmentation.render_template`) and each field is a
segment labelled with its name. Malformed segments, offsets beyond the prompt, overlaps, missing
fields and a prompt that contradicts its template are problems at their `file:line`. Loaded
segments keep their characters (``"text"``), so a prompt edited later (in the Datapoint Editor)
keeps the labels of the parts it did not change.

Example:
    >>> import promptlit as pl
    >>> data = pl.data.load("sample_prompts")
    >>> data.spec()["prompt"].type_name
    'TextSegment'
    >>> parse_dataset_specs("sample_prompts,mine:/tmp/x.jsonl")
    {'sample_prompts': 'sample_prompts', 'mine': '/tmp/x.jsonl'}
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import promptlit
from promptlit.api import types
from promptlit.api.dataset import (
    Dataset,
    IndexedDataset,
    OnError,
    load_file,
    read_spec_file,
    spec_path,
)
from promptlit.lib.validation import DataError, Problem

#: Folder of the datasets the project ships (`<repo>/datasets`).
DATASETS_DIR = Path(promptlit.__file__).resolve().parent.parent / "datasets"

_SUFFIXES = (".jsonl", ".csv", ".tsv")
_REGISTERED: dict[str, str] = {}


def prompt_spec() -> types.Spec:
    """The spec of a prompt dataset's known fields: `prompt` (required) and `target` (optional)."""
    return {
        "prompt": types.TextSegment(description="The text the model continues."),
        "target": types.TextSegment(required=False,
                                    description="A reference continuation, if any."),
    }


def register(name: str, path: str | os.PathLike[str]) -> None:
    """Makes `load(name)` load the file at `path` (for plugins and tests)."""
    if ":" in name or "," in name or not name:
        raise ValueError(f"dataset name {name!r} must be non-empty without ':' or ','")
    _REGISTERED[name] = os.fspath(path)


def known_datasets() -> dict[str, str]:
    """Built-in and registered dataset names -> file paths, sorted by name."""
    found: dict[str, str] = {}
    if DATASETS_DIR.is_dir():
        for p in sorted(DATASETS_DIR.iterdir()):
            if p.suffix.lower() in _SUFFIXES and p.is_file():
                found.setdefault(p.stem, str(p))
    found.update(_REGISTERED)
    return dict(sorted(found.items()))


def parse_dataset_specs(specs: str) -> dict[str, str]:
    """Parses "a,b:path,..." into {name: name-or-path}, in order.

    Each item is a known name or `name:path` (only the first ':' splits, so Windows-style or
    URL-like paths keep theirs). A bare path (containing '/' or ending in .jsonl/.csv/.tsv) is
    named after its file stem.

    Raises:
      ValueError: for an empty item, an empty name or path, or a name given twice.
    """
    out: dict[str, str] = {}
    for raw in specs.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"empty dataset in {specs!r}; write NAME or NAME:PATH, comma-separated")
        name, sep, path = item.partition(":")
        if not sep:
            if "/" in item or item.lower().endswith(_SUFFIXES):
                name, path = Path(item).stem, item
            else:
                name, path = item, item
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise ValueError(f"bad dataset {item!r}: write NAME or NAME:PATH (e.g. mine:data.jsonl)")
        if name in out:
            raise ValueError(f"dataset name {name!r} is given twice in {specs!r}; names must be unique")
        out[name] = path
    return out


def _unknown_name_error(name: str) -> DataError:
    known = ", ".join(known_datasets()) or "(none found in " + str(DATASETS_DIR) + ")"
    return DataError(Problem(
        f"unknown dataset {name!r}; known datasets: {known}",
        fix=f"use one of those names, or load your own file as NAME:PATH, e.g. "
            f"'{name}:/path/to/{name}.jsonl' (.jsonl, .csv or .tsv)"))


def _is_prompt_file(path: Path) -> bool:
    """Whether any readable example (for CSV/TSV: the header) has a `prompt` (or, in JSONL, a
    `messages` or `template`) field.

    Any row counts, not just the first: a file is prompt data as a whole, so that every row is
    then checked for its prompt. Unreadable lines are left to the loader to report.
    """
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            if path.suffix.lower() in (".csv", ".tsv", ".tab"):
                sep = "," if path.suffix.lower() == ".csv" else "\t"
                for line in f:
                    if line.strip():
                        try:
                            header = next(csv.reader([line], delimiter=sep))
                        except (csv.Error, StopIteration):
                            return False
                        return "prompt" in [c.strip() for c in header]
                return False
            for line in f:
                # Only lines that can hold a "prompt" key (maybe \u-escaped) are parsed.
                if ("prompt" not in line and "messages" not in line and "template" not in line
                        and "\\" not in line):
                    continue
                try:
                    obj = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(obj, dict) and ("prompt" in obj or "messages" in obj
                                              or "template" in obj):
                    return True
    except OSError:
        return False
    return False


def _check_prompt_type(spec: types.Spec, sidecar: types.Spec | None, path: Path) -> None:
    """A prompt dataset's `prompt` must be text; say where a spec declares otherwise."""
    declared = spec["prompt"]
    if isinstance(declared, types.String):
        return
    from_file = sidecar is not None and sidecar.get("prompt") is declared
    raise DataError(Problem(
        f"declared as {declared.type_name}, but a prompt dataset's prompt must be text "
        "(a TextSegment)", field="prompt",
        source=str(spec_path(path)) if from_file else str(path),
        fix=('declare it {"__name__": "TextSegment"} in the spec file' if from_file
             else "pass spec={'prompt': types.TextSegment()}") + ", or rename the field"))


def _chat_fields(source: str, default_template: str | None
                 ) -> Callable[[dict[str, Any], int], list[Problem]]:
    """The JSONL row hook of prompt files: checks `messages` and `chat_template`, fills the
    `prompt` of a conversation with its transcript, and applies a file-wide template choice."""
    from promptlit.models import chat

    def prepare(obj: dict[str, Any], line: int) -> list[Problem]:
        problems = []
        if obj.get("template") is not None:
            problems += _segment_fields(obj, line, source)  # renders the prompt
            if any(p.severity == "error" for p in problems):
                return problems
        if obj.get("messages") is not None:
            try:
                messages = chat.check_messages(obj["messages"], where="messages")
            except chat.ChatTemplateError as e:
                return [Problem(str(e), source=source, line=line, field="messages")]
            text = chat.transcript(messages)
            if obj.get("prompt") is None:
                obj["prompt"] = text
            elif obj["prompt"] != text:
                problems.append(Problem(
                    "this row has both 'messages' and a 'prompt' that is not their transcript; "
                    "models read the 'prompt'", source=source, line=line, field="prompt",
                    severity="warning", fix="drop the 'prompt' to use the conversation, or "
                                            "drop 'messages'"))
        if obj.get("template") is None and (obj.get("segments") is not None
                                            or obj.get("fields") is not None):
            problems += _segment_fields(obj, line, source)  # offsets into the (filled) prompt
        if default_template is not None and "chat_template" not in obj:
            obj["chat_template"] = default_template
        if "chat_template" in obj:
            try:
                obj["chat_template"] = chat.check_example_template(obj["chat_template"],
                                                                   where="chat_template")
            except chat.ChatTemplateError as e:
                problems.append(Problem(str(e), source=source, line=line,
                                        field="chat_template"))
        return problems

    return prepare


def _segment_fields(obj: dict[str, Any], line: int, source: str) -> list[Problem]:
    """Checks a row's custom segments (``segments``, or ``template`` + ``fields``): renders the
    prompt of a template row, normalises ``segments`` (sorted ``{"label", "start", "end"}``)."""
    from promptlit.lib import segmentation

    def problem(e: ValueError, default_field: str, fix: str, severity: Any = "error"
                ) -> Problem:
        text = str(e)
        field, sep, rest = text.partition(": ")
        if not sep or " " in field:
            field, rest = default_field, text
        return Problem(rest, source=source, line=line, field=field, fix=fix, severity=severity)

    template, segments = obj.get("template"), obj.get("segments")
    found: list[Problem] = []
    if template is None:
        if obj.get("fields") is not None:
            found.append(Problem("'fields' fill a 'template', and this row has none",
                                 source=source, line=line, field="fields", severity="warning",
                                 fix="add a 'template' with {name} placeholders, or drop "
                                     "'fields'"))
    else:
        if segments is not None:
            return [Problem("this row has both 'segments' and a 'template'", source=source,
                            line=line, field="segments",
                            fix="keep one: the template's fields are its segments")]
        if obj.get("messages") is not None:
            return [Problem("a 'template' renders a plain prompt, but this row is a "
                            "conversation ('messages')", source=source, line=line,
                            field="template", fix="drop 'template' or 'messages'")]
        try:
            rendered, _ = segmentation.render_template(template, obj.get("fields") or {})
        except ValueError as e:
            return [problem(e, "template", "write fields as {name}, give every field a text "
                                           "in 'fields', and write literal braces as {{ }}")]
        if obj.get("prompt") is None:
            obj["prompt"] = rendered
        elif obj["prompt"] != rendered:
            return [Problem("the 'prompt' is not the 'template' filled with its 'fields'",
                            source=source, line=line, field="prompt",
                            fix="drop the 'prompt' (it is rendered from the template), or "
                                "drop 'template' and 'fields'")]
        return []
    if segments is None:
        return found
    prompt = obj.get("prompt")
    try:
        checked = segmentation.check_segments(
            segments, text_length=len(prompt) if isinstance(prompt, str) else None)
    except ValueError as e:
        return [*found, problem(e, "segments", 'each segment is {"label": "...", "start": N, "end": M}: '
                                       "character offsets into the prompt, end exclusive, "
                                       "not overlapping")]
    if isinstance(prompt, str):
        for i, item in enumerate(segments):
            text = item.get("text") if isinstance(item, dict) else None
            if text is not None and prompt[item["start"]:item["end"]] != text:
                return [*found, Problem(
                    f"its text {text[:40]!r} is not prompt[{item['start']}:{item['end']}] "
                    f"({prompt[item['start']:item['end']][:40]!r})", source=source, line=line,
                    field=f"segments[{i}].text",
                    fix="fix the offsets, or drop 'text' (it is filled in from the prompt)")]
    # Each segment keeps its characters: an edit of the prompt (Datapoint Editor) moves the
    # labels with their text (promptlit.lib.segmentation.LabelledSpans).
    obj["segments"] = [{"label": label, "start": s, "end": e,
                        **({"text": prompt[s:e]} if isinstance(prompt, str) else {})}
                       for s, e, label in checked]
    return found


def load_path(path: str | os.PathLike[str], *, name: str | None = None,
              on_error: OnError = "raise", max_examples: int | None = None,
              indexed: bool = False, chat_template: str | None = None,
              **kwargs: Any) -> Dataset:
    """Loads one file (.jsonl / .csv / .tsv); prompt files get the prompt spec.

    A directory written by ``promptlit explain`` (it holds a ``manifest.json``) loads as its
    examples with the stored results attached (`promptlit.bulk.load_results`): a `Workbench`
    serves their responses and salience without computing them.

    Args:
      path: the file.
      name: shown in the description.
      on_error: "raise" or "skip" bad lines (see `promptlit.api.dataset.load_jsonl`).
      max_examples: keep only the first N examples.
      indexed: return an `IndexedDataset`.
      chat_template: the chat template every row of a prompt file takes unless it says
        otherwise (its `chat_template` field): "none" (prompts already formatted, or meant
        for a base model), "auto" or a built-in name (`promptlit.models.chat`).
      **kwargs: more arguments for the loader (`spec=`, `required_fields=`, `sep=`).

    Raises:
      DataError: for a missing or empty file, a malformed `<path>.spec`, or bad lines with
        `on_error="raise"` (see `promptlit.api.dataset.load_jsonl` for what is checked; chat
        rows also for their `messages` and `chat_template`, see the module docstring).
      ValueError: a `chat_template` argument that is not a template a dataset may choose.
    """
    path = Path(path).expanduser()
    from promptlit import bulk

    if bulk.is_results_dir(path):  # the output of `promptlit explain`, with its stored results
        return bulk.load_results(path, name=name, max_examples=max_examples)
    if chat_template is not None:
        from promptlit.models import chat

        chat_template = chat.check_example_template(chat_template, where="chat_template")
    sidecar = read_spec_file(path)  # DataError naming the .spec file if it is malformed
    spec = {**(sidecar or {}), **(kwargs.pop("spec", None) or {})}
    if _is_prompt_file(path):
        spec = {**prompt_spec(), **spec}
        _check_prompt_type(spec, sidecar, path)
        kwargs["required_fields"] = tuple(
            dict.fromkeys(("prompt", *kwargs.get("required_fields", ()))))
        if path.suffix.lower() in (".jsonl", ".json", ".ndjson", ""):
            kwargs["prepare"] = _chat_fields(os.fspath(path), chat_template)
    kwargs["spec"] = spec or None
    description = kwargs.pop("description", "") or (f"{name}: " if name else "") + path.name
    declared = set(spec)
    ds = load_file(path, on_error=on_error, description=description,
                   dataset_cls=IndexedDataset if indexed else Dataset, **kwargs)
    if _is_prompt_file(path):
        # Fields beyond the prompt spec that were only inferred from the rows (e.g. a
        # "source" every shipped row happens to have) describe the data; they are not needed
        # to run a model, so a new example (typed in the editor or sent to /add_example) may
        # leave them out. A .spec file or spec= keeps full control.
        ds._spec = {k: t if k in declared or not t.required else dataclasses.replace(
            t, required=False) for k, t in ds.spec().items()}
    if max_examples is not None and len(ds) > max_examples:
        problems = ds.problems
        ds = ds.slice[:max_examples]
        ds.problems = problems
    return ds


def load(name_or_spec: str, *, on_error: OnError = "raise", max_examples: int | None = None,
         indexed: bool = False, **kwargs: Any) -> Dataset:
    """Loads a dataset by built-in name (`"sample_prompts"`) or as `"name:path"` / a path.

    Args:
      name_or_spec: a known name (see `known_datasets()`), `name:path`, or a file path.
      on_error, max_examples, indexed, **kwargs: see `load_path`.

    Raises:
      DataError: for an unknown name (the message lists the known ones and the `name:path`
        syntax), a missing file, or bad lines with `on_error="raise"`.
    """
    ((name, target),) = parse_dataset_specs(name_or_spec).items()
    return load_path(resolve(name, target), name=name, on_error=on_error, max_examples=max_examples,
                     indexed=indexed, **kwargs)


def resolve(name: str, target: str) -> str:
    """The file behind a parsed `name` -> `target` (a known name or a path).

    Raises:
      DataError: if `target` is neither a known name nor something that looks like a path.
    """
    known = known_datasets()
    if target in known and not Path(target).is_file():
        return known[target]
    if target != name or "/" in target or target.lower().endswith(_SUFFIXES):
        return target
    raise _unknown_name_error(name)


def load_many(specs: str, **kwargs: Any) -> dict[str, Dataset]:
    """Loads "a,b:path,..." into {name: Dataset}; all-or-nothing (the first error is raised)."""
    return {name: load_path(resolve(name, target), name=name, **kwargs)
            for name, target in parse_dataset_specs(specs).items()}
