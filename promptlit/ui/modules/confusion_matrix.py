"""Confusion matrix: true labels (or any category field) × predicted classes, clickable.

Counts come from the confusion-matrix component (`Workbench.interpret("confusion_matrix")`,
which keeps each cell's example ids) over every example, with the session's threshold for
binary classifiers. Clicking a count selects exactly that cell's examples: the data table
then lists them (as "(cell: …)" in its slice filter) and the other modules follow the new
selection. With two models picked, both matrices are shown side by side.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from promptlit.components.confusion_matrix import ConfusionMatrix
from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "confusion_matrix"
LABEL_ROWS = "(the label)"
CORNER = "label ↓ · predicted →"


def matrix(wb: Any, state: SessionState, model: str, row_field: str = "") -> ConfusionMatrix:
    """The confusion matrix of ``model``'s first labelled classification field (all examples)."""
    keys = P.fields(wb, model, state.dataset, P.CLASSIFICATION, labelled=True)
    if not keys:
        raise ValueError(f"model {model} has no classification output with labels in "
                         f"{state.dataset}")
    config = dict(P.decision_config(wb, state, model))
    if row_field and row_field != LABEL_ROWS:
        config["row_field"] = row_field
    pairs = P.rows(wb, state)
    result = wb.interpret("confusion_matrix", model, state.dataset, [ex for _, ex in pairs],
                          config)
    return result[keys[0]]


def frame(cm: ConfusionMatrix) -> pd.DataFrame:
    """The counts with the row labels as the first column (for a clickable table)."""
    df = pd.DataFrame(cm.counts, columns=list(cm.col_labels))
    df.insert(0, CORNER, list(cm.row_labels))
    return df


def cell_ids(cm: ConfusionMatrix, row: int, col: int) -> tuple[list[str], str]:
    """The ids in table cell (``row``, ``col``) (column 0 holds the row labels) and a label."""
    if col < 1 or not 0 <= row < len(cm.row_labels) or col > len(cm.col_labels):
        raise ValueError("click a count (not a row label) to select its examples")
    r, c = cm.row_labels[row], cm.col_labels[col - 1]
    return cm.cell_ids(r, c), f"{r} → {c}"


def select_cell(wb: Any, state: SessionState, model: str, row: int, col: int,
                row_field: str = "") -> str:
    """Selects the examples of one cell (and makes the data table list them); returns a
    footer message."""
    cm = matrix(wb, state, model, row_field)
    ids, label = cell_ids(cm, row, col)
    if not ids:
        raise ValueError(f"the cell {label} of {model} is empty: nothing to select")
    state.select_examples(ids)
    name = f"(cell: {model} {cm.row_name}={label})"
    state.table_query.update(pinned={"label": name, "ids": list(ids)}, slice=name, page=1,
                             search="", value="")
    return base.ok(f"selected {len(ids)} examples: {model}, {cm.row_name} {label}")


def build(ctx: base.Context) -> base.Module:
    """Draws one or two clickable confusion matrices and a row-field picker."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-confusion-module") as container:
        with gr.Row():
            rows_dd = gr.Dropdown(label="Rows", choices=[LABEL_ROWS], value=LABEL_ROWS,
                                  scale=1, elem_id="pl-cm-rows")
            note = base.markdown("", elem_id="pl-cm-note")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=280):
                title_a = base.markdown("", elem_id="pl-cm-title-a")
                table_a = gr.Dataframe(interactive=False, elem_id="pl-cm-a",
                                       label="Click a count to select those examples")
            with gr.Column(min_width=280, visible=False) as col_b:
                title_b = base.markdown("", elem_id="pl-cm-title-b")
                table_b = gr.Dataframe(interactive=False, elem_id="pl-cm-b",
                                       label="Click a count to select those examples")

    outputs = [rows_dd, note, title_a, table_a, col_b, title_b, table_b]

    def draw(state: SessionState) -> list[Any]:
        names, why = P.models_for(wb, state, P.CLASSIFICATION, labelled=True)
        spec = wb.datasets[state.dataset].spec() if state.dataset in wb.datasets else {}
        cats = [k for k, t in spec.items() if type(t).__name__ == "CategoryLabel"]
        row_field = state.settings.get("confusion.rows", LABEL_ROWS)
        if row_field not in cats:
            row_field = LABEL_ROWS
        rows_up = gr.update(choices=[LABEL_ROWS, *cats], value=row_field)
        if not names:
            return [rows_up, why, "", pd.DataFrame(), gr.update(visible=False), "",
                    pd.DataFrame()]
        out: list[Any] = []
        for m in names[:2]:
            cm = matrix(wb, state, m, row_field)
            t = P.threshold_of(wb, state, m)
            total = int(cm.counts.sum())
            correct = sum(int(cm.counts[i, cm.col_labels.index(r)])
                          for i, r in enumerate(cm.row_labels) if r in cm.col_labels)
            out.append(render.md("**{}** · {}", m, f"{total} examples"
                                 + (f" · {correct} on the diagonal" if row_field == LABEL_ROWS
                                    else "")
                                 + (f" · threshold {t:.2f}" if t is not None else "")))
            out.append(frame(cm))
        if len(names) < 2:
            out += ["", pd.DataFrame()]
        return [rows_up, why, out[0], out[1], gr.update(visible=len(names) > 1), out[2],
                out[3]]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()
        outs = [ctx.state, *refresh_outs, ctx.footer]

        def on_cell(which: int) -> Any:
            @base.guard(len(outs))
            def handler(state: SessionState, evt: gr.SelectData) -> Any:
                names, _ = P.models_for(wb, state, P.CLASSIFICATION, labelled=True)
                if len(names) <= which:
                    raise ValueError("no model is shown there")
                idx = evt.index if isinstance(evt.index, list | tuple) else [evt.index, 0]
                msg = select_cell(wb, state, names[which], int(idx[0]), int(idx[1]),
                                  state.settings.get("confusion.rows", LABEL_ROWS))
                return (state, *ctx.refresh(state), msg)

            return handler

        table_a.select(on_cell(0), [ctx.state], outs, api_visibility="private")
        table_b.select(on_cell(1), [ctx.state], outs, api_visibility="private")

        @base.guard(2 + len(outputs))
        def on_rows(state: SessionState, field: str) -> Any:
            state.settings["confusion.rows"] = field or LABEL_ROWS
            return (state, *draw(state), "")

        rows_dd.input(on_rows, [ctx.state, rows_dd], [ctx.state, *outputs, ctx.footer],
                      api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
