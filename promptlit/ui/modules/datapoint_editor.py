"""Datapoint editor: edit the selected example (or write a new one), add it to this session's
dataset, and save the session's examples to JSONL.

Added examples live in the session state only (other browser sessions never see them); they are
checked against the dataset's spec first, so a bad edit is reported in the footer and nothing is
added. Saving goes through `Workbench.save_examples` and is refused in demo mode.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from promptlit.lib.utils import example_id
from promptlit.lib.validation import validate_example
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


def save_session(wb: Any, state: SessionState, path: str, *, demo_mode: bool) -> str:
    """Writes this session's added examples to JSONL at ``path``; returns the path written."""
    if demo_mode:
        raise PermissionError("saving is disabled in demo mode (the server was started with "
                              "--demo-mode)")
    rows = state.session_examples()
    if not rows:
        raise ValueError("no examples added in this session yet: add one with "
                         "“Add as new example” first")
    if not (path or "").strip():
        raise ValueError("write a file path ending in .jsonl to save to")
    return str(wb.save_examples(state.dataset, path.strip(), rows))


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
        with gr.Row(visible=not ctx.demo_mode):
            path = gr.Textbox(label="Save session examples to (JSONL)",
                              value="session_examples.jsonl", scale=3, elem_id="pl-save-path")
            save_btn = gr.Button("Save", scale=1, elem_id="pl-save")
        if ctx.demo_mode:
            base.markdown("*Demo mode: saving is disabled.*")

    outputs = [prompt, target, other]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        ex = base.primary_example(wb, state)
        if ex is None:
            return ["", "", ""]
        rest = {k: v for k, v in ex.items() if k not in TEXT_FIELDS and not str(k).startswith("_")}
        return [str(ex.get("prompt", "")), str(ex.get("target", "") or ""),
                json.dumps(rest, ensure_ascii=False) if rest else ""]

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()

        @base.guard(2 + len(refresh_outs))
        def on_add(state: SessionState, p: str, t: str, o: str) -> Any:
            ex = build_example(p, t, o, base.primary_example(wb, state))
            add_to_session(wb, state, ex)
            n = base.index_of(wb, state, state.primary_id)
            return (state, *ctx.refresh(state),
                    base.ok(f"added example #{n} to this session's {state.dataset}; press "
                            "“Generate & explain” to see its salience"))

        add_btn.click(on_add, [ctx.state, prompt, target, other],
                      [ctx.state, *refresh_outs, ctx.footer], api_name=False)

        @base.guard(len(outputs) + 1)
        def on_reset(state: SessionState) -> Any:
            return (*refresh(wb, state), "")

        reset_btn.click(on_reset, [ctx.state], [*outputs, ctx.footer], api_name=False)
        blank_btn.click(lambda: ("", "", "", "Write a prompt, then “Add as new example”."),
                        None, [*outputs, ctx.footer], api_name=False)

        @base.guard(1)
        def on_save(state: SessionState, p: str) -> str:
            written = save_session(wb, state, p, demo_mode=ctx.demo_mode)
            return base.ok(f"saved {len(state.session_examples())} example(s) to {written}")

        save_btn.click(on_save, [ctx.state, path], [ctx.footer], api_name=False)

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
