"""Datapoint editor: edit the selected example (or write a new one), add it to this session's
dataset, and take the session's examples home.

Added examples live in the session state only (other browser sessions never see them); they are
checked against the dataset's spec first, so a bad edit is reported in the footer and nothing is
added. Every field of the spec is offered: prompt and target have their own boxes, the others
are listed in the "other fields" box (filled with their defaults for a new example).

Taking examples home: **Download** (a JSONL file in the browser) always works. Saving on the
server writes only into the save folder the server's operator chose (`promptlit serve
--save-dir`), under a plain file name (`promptlit.lib.paths.file_in`: no paths, no links), and
overwrites an existing file only when the same session presses Save twice for it. It is off
without a save folder and always in demo mode.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.lib import paths
from promptlit.lib.utils import example_id
from promptlit.lib.validation import validate_example
from promptlit.ui.limits import LimitError, RequestLimits
from promptlit.ui.modules import base
from promptlit.ui.state import SessionState

NAME = "datapoint_editor"
TEXT_FIELDS = ("prompt", "target")


def build_example(prompt: str, target: str, other_json: str, base_example: dict | None
                  ) -> dict[str, Any]:
    """The edited example: the base example's other fields, updated by the JSON, prompt, target.

    Raises:
      ValueError: the "other fields" box is not a JSON object, or the prompt is empty.
    """
    ex: dict[str, Any] = {k: v for k, v in (base_example or {}).items()
                          if k not in TEXT_FIELDS and not str(k).startswith("_")}
    other_json = (other_json or "").strip()
    if other_json:
        try:
            other = json.loads(other_json)
        except json.JSONDecodeError as e:
            raise ValueError(f"other fields: not valid JSON ({e.msg} at line {e.lineno} "
                             f"column {e.colno}); write an object like {{\"source\": \"mine\"}}"
                             ) from None
        if not isinstance(other, dict):
            raise ValueError("other fields: expected a JSON object like {\"source\": \"mine\"}")
        ex = dict(other)
    if not (prompt or "").strip():
        raise ValueError("the prompt is empty; write a prompt before adding the example")
    ex["prompt"] = prompt
    if target:
        ex["target"] = target
    return ex


def add_to_session(wb: Any, state: SessionState, ex: dict[str, Any]) -> str:
    """Validates ``ex`` against the dataset spec, adds it to the session and selects it.

    Returns its id. Raises `ValueError` listing the spec problems.
    """
    if not state.dataset or state.dataset not in wb.datasets:
        raise ValueError("no dataset loaded to add the example to")
    spec = wb.datasets[state.dataset].spec()
    problems = [p for p in validate_example(ex, spec, source="edited example")
                if getattr(p, "severity", "error") == "error"]
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    new_id = example_id(ex)
    added = state.added.setdefault(state.dataset, [])
    if new_id not in {example_id(e) for e in added} and base.find_example(wb, state,
                                                                         new_id) is None:
        added.append(ex)
    state.select_example(new_id)
    return new_id


def add_edited(wb: Any, state: SessionState, limits: RequestLimits, prompt: str, target: str,
               other_json: str, base_example: dict | None) -> str:
    """`build_example` + `add_to_session` for text a browser or API caller sent, within
    ``limits`` (text sizes, examples per session). Returns the new example's id."""
    for what, text in (("prompt", prompt), ("target", target), ("other fields", other_json)):
        limits.check_prompt(text or "", where=what)
    if len(state.session_examples()) >= limits.max_session_examples:
        raise LimitError(f"this session already added {limits.max_session_examples} examples "
                         "(the server's limit); save or download them and start a new session")
    return add_to_session(wb, state, build_example(prompt, target, other_json, base_example))


def other_fields(wb: Any, dataset: str) -> dict[str, Any]:
    """The spec's fields besides prompt and target, each with its default (what a new example
    starts from, so the editor offers every field)."""
    if dataset not in wb.datasets:
        return {}
    out: dict[str, Any] = {}
    for name, lit_type in wb.datasets[dataset].spec().items():
        if name in TEXT_FIELDS or name.startswith("_"):
            continue
        default = getattr(lit_type, "default", None)
        if default is None and isinstance(lit_type, types.CategoryLabel):
            default = ""
        out[name] = default
    return out


def fields_label(wb: Any, dataset: str) -> str:
    """The "other fields" box's label: the fields it holds, their types, which are required."""
    if dataset not in wb.datasets:
        return "other fields (JSON)"
    spec = wb.datasets[dataset].spec()
    parts = [f"{n}: {type(t).__name__}{'' if getattr(t, 'required', True) else ', optional'}"
             for n, t in spec.items() if n not in TEXT_FIELDS and not n.startswith("_")]
    return f"other fields (JSON) — {'; '.join(parts)}" if parts else "other fields (JSON)"


def save_session(wb: Any, state: SessionState, name: str, *, save_dir: str | Path | None,
                 demo_mode: bool, overwrite: bool = False) -> Path:
    """Writes this session's added examples to JSONL (and its ``.spec``) as file ``name`` in
    ``save_dir``; returns the path written.

    Raises:
      PermissionError: demo mode, or no save folder (saving on the server is off).
      promptlit.lib.paths.UnsafePathError: ``name`` is not a plain file name, or a link.
      FileExistsError: the file exists and ``overwrite`` is False.
      ValueError: no examples added in this session.
    """
    if demo_mode:
        raise PermissionError("saving is disabled in demo mode (the server was started with "
                              "--demo-mode); use “Download” to take the examples home")
    if save_dir is None:
        raise PermissionError("saving on the server is off (the server was started without a "
                              "save folder: `promptlit serve --save-dir DIR` allows it); use "
                              "“Download” to take the examples home")
    rows = state.session_examples()
    if not rows:
        raise ValueError("no examples added in this session yet: add one with "
                         "“Add as new example” first")
    path = paths.file_in(save_dir, name)
    if not overwrite and (path.exists() or Path(f"{path}.spec").exists()):
        raise FileExistsError(f"{path.name} already exists in the save folder; press Save "
                              "again to overwrite it, or pick another name")
    return Path(wb.save_examples(state.dataset, path, rows))


_DOWNLOADS: Path | None = None


def download_file(wb: Any, state: SessionState) -> str | None:
    """A JSONL file of this session's added examples for the browser to download (None when
    there are none). Written to a private temporary folder under a name derived from the
    content, so asking again for the same examples writes nothing new."""
    global _DOWNLOADS
    rows = state.session_examples()
    if not rows or state.dataset not in wb.datasets:
        return None
    data = Dataset([dict(r) for r in rows], spec=wb.datasets[state.dataset].spec())
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    try:
        stem = paths.safe_file_name(f"{state.dataset}-session", suffix="")
    except paths.UnsafePathError:
        stem = "session"
    if _DOWNLOADS is None:
        _DOWNLOADS = Path(tempfile.mkdtemp(prefix="promptlit-downloads-"))
    folder = _DOWNLOADS / digest[:16]
    path = folder / f"{stem}-examples.jsonl"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        data.save(path)
    return str(path)


def build(ctx: base.Context) -> base.Module:
    """Draws the editor and wires add / reset / save."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-datapoint-editor") as container:
        prompt = gr.Textbox(label="prompt", lines=10, max_lines=30, elem_id="pl-edit-prompt")
        target = gr.Textbox(label="target", lines=2, max_lines=10, elem_id="pl-edit-target")
        other = gr.Textbox(label="other fields (JSON)", lines=1, elem_id="pl-edit-other")
        with gr.Row():
            add_btn = gr.Button("Add as new example", variant="primary", elem_id="pl-add")
            reset_btn = gr.Button("Reset to selected", elem_id="pl-reset")
            blank_btn = gr.Button("Blank (write a new one)", elem_id="pl-blank")
        with gr.Row():
            download = gr.DownloadButton("Download session examples (JSONL)", value=None,
                                         visible=False, elem_id="pl-download")
        can_save = ctx.save_dir is not None and not ctx.demo_mode
        with gr.Row(visible=can_save):
            path = gr.Textbox(label="Save session examples on the server as (a file name in "
                                    "its save folder)", value="session_examples.jsonl",
                              scale=3, max_length=paths.MAX_NAME_LENGTH,
                              elem_id="pl-save-path")
            save_btn = gr.Button("Save", scale=1, elem_id="pl-save")
        if ctx.demo_mode:
            base.markdown("*Demo mode: saving on the server is disabled; use Download.*")
        elif not can_save:
            base.markdown("*Saving on the server is off (start it with `--save-dir DIR` to "
                          "allow it); use Download.*")

    outputs = [prompt, target, other, download]

    def download_update(state: SessionState) -> Any:
        file = download_file(wb, state)
        return gr.update(value=file, visible=file is not None)

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        ex = base.primary_example(wb, state)
        label = fields_label(wb, state.dataset)
        if ex is None:
            return ["", "", gr.update(value="", label=label), download_update(state)]
        rest = {**other_fields(wb, state.dataset),
                **{k: v for k, v in ex.items() if k not in TEXT_FIELDS
                   and not str(k).startswith("_")}}
        return [str(ex.get("prompt", "")), str(ex.get("target", "") or ""),
                gr.update(value=json.dumps(rest, ensure_ascii=False) if rest else "",
                          label=label), download_update(state)]

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()

        @base.guard(2 + len(refresh_outs))
        def on_add(state: SessionState, p: str, t: str, o: str) -> Any:
            add_edited(wb, state, ctx.limits, p, t, o, base.primary_example(wb, state))
            n = base.index_of(wb, state, state.primary_id)
            return (state, *ctx.refresh(state),
                    base.ok(f"added example #{n} to this session's {state.dataset}; press "
                            "“Generate & explain” to see its salience"))

        add_btn.click(on_add, [ctx.state, prompt, target, other],
                      [ctx.state, *refresh_outs, ctx.footer], api_visibility="private")

        @base.guard(len(outputs) + 1)
        def on_reset(state: SessionState) -> Any:
            return (*refresh(wb, state), "")

        reset_btn.click(on_reset, [ctx.state], [*outputs, ctx.footer], api_visibility="private",
                        concurrency_limit=None)

        @base.guard(len(outputs) - 1 + 1)
        def on_blank(state: SessionState) -> Any:
            rest = other_fields(wb, state.dataset)
            return ("", "", json.dumps(rest, ensure_ascii=False) if rest else "",
                    "Write a prompt (and the other fields), then “Add as new example”.")

        blank_btn.click(on_blank, [ctx.state], [prompt, target, other, ctx.footer],
                        api_visibility="private", concurrency_limit=None)

        @base.guard(2)
        def on_save(state: SessionState, name: str) -> Any:
            pending = state.views.setdefault(NAME, {})
            target_name = paths.safe_file_name(name)
            try:
                written = save_session(wb, state, name, save_dir=ctx.save_dir,
                                       demo_mode=ctx.demo_mode,
                                       overwrite=pending.get("confirm") == target_name)
            except FileExistsError:
                pending["confirm"] = target_name  # the same session's next press overwrites
                raise
            pending.pop("confirm", None)
            return state, base.ok(f"saved {len(state.session_examples())} example(s) as "
                                  f"{written.name} in the server's save folder")

        if can_save:
            save_btn.click(on_save, [ctx.state, path], [ctx.state, ctx.footer],
                           api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
