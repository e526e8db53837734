"""Slice editor: save the selection as a named slice, or slice by a field's values.

Slices are per session (in `SessionState.slices`, name -> example ids) and appear as a filter in
the data table.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import gradio as gr

from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.state import SessionState

NAME = "slice_editor"
MAX_VALUE_SLICES = 50


def slices_by_field(rows: list[tuple[str, dict, bool]], field: str) -> dict[str, list[str]]:
    """``{"field=value": [ids...]}`` for each distinct value of ``field`` (first 50 values)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for i, ex, _ in rows:
        if field in ex:
            groups[f"{field}={base.short(ex[field], 40)}"].append(i)
    if not groups:
        raise ValueError(f"no example has the field {field!r}")
    if len(groups) > MAX_VALUE_SLICES:
        raise ValueError(f"{field!r} has {len(groups)} distinct values (more than "
                         f"{MAX_VALUE_SLICES}); slice by a field with fewer values")
    return dict(groups)


def slices_markdown(state: SessionState) -> str:
    """The session's slices as a list: name and size."""
    if not state.slices:
        return render.Markdown("*No slices yet.*")
    return render.Markdown("\n".join(render.md("- **{}** ({} examples)", name, len(ids))
                                      for name, ids in state.slices.items()))


def build(ctx: base.Context) -> base.Module:
    """Draws the slice editor and wires its buttons."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-slice-editor") as container:
        with gr.Row():
            name = gr.Textbox(label="Slice name", scale=3, elem_id="pl-slice-name")
            save_btn = gr.Button("Save selection as slice", scale=2, elem_id="pl-slice-save")
        with gr.Row():
            field = gr.Dropdown(label="Slice by field", choices=[], scale=3)
            by_field_btn = gr.Button("Make one slice per value", scale=2)
        with gr.Row():
            pick = gr.Dropdown(label="Select the examples of slice", choices=[], scale=3)
            delete_btn = gr.Button("Delete slice", scale=1)
        listing = base.markdown("*No slices yet.*", elem_id="pl-slice-list")

    outputs = [listing, field, pick]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return [slices_markdown(state),
                gr.update(choices=base.spec_fields(wb, state.dataset)),
                gr.update(choices=list(state.slices), value=None)]

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()
        outs = [ctx.state, *refresh_outs, ctx.footer]

        @base.guard(len(outs))
        def on_save(state: SessionState, n: str) -> Any:
            n = (n or "").strip()
            if not n:
                raise ValueError("write a slice name first")
            if not state.selected_ids:
                raise ValueError("no examples selected: select rows in the data table first")
            state.slices[n] = list(state.selected_ids)
            return (state, *ctx.refresh(state),
                    base.ok(f"saved slice {n!r} ({len(state.selected_ids)} examples)"))

        save_btn.click(on_save, [ctx.state, name], outs, api_visibility="private")

        @base.guard(len(outs))
        def on_by_field(state: SessionState, f: str) -> Any:
            if not f:
                raise ValueError("choose a field to slice by")
            new = slices_by_field(base.dataset_rows(wb, state), f)
            state.slices.update(new)
            return (state, *ctx.refresh(state), base.ok(f"made {len(new)} slices by {f!r}"))

        by_field_btn.click(on_by_field, [ctx.state, field], outs, api_visibility="private")

        @base.guard(len(outs))
        def on_pick(state: SessionState, n: str) -> Any:
            if not n:
                return (state, *[gr.skip()] * len(refresh_outs), "")
            ids = state.slices.get(n, [])
            if not ids:
                raise ValueError(f"slice {n!r} is empty or gone")
            state.select_examples(ids)
            return (state, *ctx.refresh(state), base.ok(f"selected slice {n!r}"))

        pick.input(on_pick, [ctx.state, pick], outs, api_visibility="private")

        @base.guard(len(outs))
        def on_delete(state: SessionState, n: str) -> Any:
            if not n or n not in state.slices:
                raise ValueError("choose a slice to delete in “Select the examples of slice”")
            del state.slices[n]
            return (state, *ctx.refresh(state), base.ok(f"deleted slice {n!r}"))

        delete_btn.click(on_delete, [ctx.state, pick], outs, api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
