"""Metrics: every compatible metric per model and per slice, and paired metrics for two models.

The numbers are `Workbench.metrics_table`'s (the `promptlit.components.metrics` components
over cached predictions). Slices are "all" (every example, the session's added ones too),
"selection" (the selected examples) and the session's named slices. Binary classifiers use the
threshold set in the threshold module (`SessionState.thresholds`).

Two views: one metric as a models × slices table, and every metric per (model, slice) row,
sortable by any column. With two models picked, paired metrics compare them on all examples.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from promptlit.components.metrics import metrics_pivot
from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "metrics"
ALL, SELECTION = "all", "selection"
ID_COLUMNS = ["model", "slice", "field", "num_examples"]
PREFERRED = ["accuracy", "mse"]


def slices_of(state: SessionState) -> dict[str, list[str]]:
    """The slices to score besides "all": the selection (when any) and the session's slices."""
    out: dict[str, list[str]] = {}
    if state.selected_ids:
        out[SELECTION] = list(state.selected_ids)
    out.update({name: list(ids) for name, ids in state.slices.items() if ids})
    return out


def compute(wb: Any, state: SessionState) -> tuple[pd.DataFrame, list[str], str]:
    """The tidy metrics table of the models to show, and those models and a note."""
    names, note = P.models_for(wb, state, "any")
    if not names:
        return pd.DataFrame(), [], note
    pairs = P.rows(wb, state)
    known = {i for i, _ in pairs}
    slices = {n: [i for i in ids if i in known] for n, ids in slices_of(state).items()}
    table = wb.metrics_table(state.dataset, names, examples=P.indexed(pairs),
                             slices={n: ids for n, ids in slices.items() if ids},
                             configs={m: P.decision_config(wb, state, m) for m in names},
                             all_slice=ALL)
    return table, names, note


def wide(table: pd.DataFrame, sort: str = "", descending: bool = True) -> pd.DataFrame:
    """One row per (model, slice, field), one column per metric, optionally sorted."""
    if table.empty:
        return pd.DataFrame(columns=ID_COLUMNS)
    frame = table.pivot_table(index=["model", "slice", "pred_key", "num_examples"],
                              columns="metric", values="value", aggfunc="first", sort=False)
    frame = frame.reset_index().rename(columns={"pred_key": "field"})
    frame.columns.name = None
    metric_cols = [c for c in frame.columns if c not in ID_COLUMNS]
    main = [c for c in metric_cols if "/" not in c]
    frame = frame[ID_COLUMNS + main + [c for c in metric_cols if "/" in c]]
    if sort and sort in frame.columns:
        frame = frame.sort_values(sort, ascending=not descending, kind="stable",
                                  na_position="last")
    return frame.round(4)


def pivot(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` as models × slices (`promptlit.components.metrics.metrics_pivot`)."""
    if table.empty or metric not in set(table["metric"]):
        return pd.DataFrame(columns=["model"])
    frame = metrics_pivot(table, metric).round(4)
    frame.columns.name = None
    return frame.reset_index()


def metric_names(table: pd.DataFrame) -> list[str]:
    """Overall metrics first (accuracy, mse, ...), per-class ones (``f1/<class>``) after."""
    if table.empty:
        return []
    names = list(dict.fromkeys(table["metric"]))
    return [n for n in names if "/" not in n] + [n for n in names if "/" in n]


def paired_markdown(wb: Any, state: SessionState, names: list[str]) -> str:
    """Paired metrics of the two picked models on all examples (empty unless comparing)."""
    if len(names) < 2:
        return ""
    a, b = names[:2]
    pairs = P.rows(wb, state)
    cfg_a, cfg_b = P.decision_config(wb, state, a), P.decision_config(wb, state, b)
    result = wb.paired_metrics(a, b, state.dataset, [ex for _, ex in pairs],
                               config=cfg_a if cfg_a == cfg_b else None)
    if not result:
        return render.md("*{} and {} share no prediction field to compare.*", a, b)
    lines = [render.md("**Paired metrics: {} vs {}** (all {} examples)", a, b, len(pairs)), "",
             "| field | metric | value |", "|---|---|---|"]
    for key, values in result.items():
        lines += [render.md("| {} | {} | {:.4g} |", key, m, v) for m, v in values.items()]
    return render.Markdown("\n".join(lines))


def build(ctx: base.Context) -> base.Module:
    """Draws the metrics module: metric picker, models × slices table, all-metrics table."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-metrics-module") as container:
        note = base.markdown("", elem_id="pl-metrics-note")
        with gr.Row():
            metric = gr.Dropdown(label="Metric (models × slices)", choices=[], scale=2,
                                 elem_id="pl-metric-pick")
            sort = gr.Dropdown(label="Sort rows by", choices=[""], value="", scale=2,
                               elem_id="pl-metrics-sort")
            descending = gr.Checkbox(label="Descending", value=True, scale=1)
        grid = gr.Dataframe(interactive=False, elem_id="pl-metrics-pivot",
                            label="One metric: models × slices")
        detail = gr.Dataframe(interactive=False, elem_id="pl-metrics-table", max_height=360,
                              label="All metrics per model and slice")
        paired = base.markdown("", elem_id="pl-metrics-paired")

    outputs = [note, metric, grid, sort, detail, paired]

    def draw(state: SessionState) -> list[Any]:
        table, names, why = compute(wb, state)
        choices = metric_names(table)
        chosen = state.settings.get("metrics.metric")
        if chosen not in choices:
            chosen = next((m for m in PREFERRED if m in choices), choices[0] if choices else None)
        sort_by = state.settings.get("metrics.sort", "")
        frame = wide(table, sort_by, state.settings.get("metrics.descending", True))
        thresholds = [f"{m}: threshold {P.threshold_of(wb, state, m):.2f}" for m in names
                      if P.threshold_of(wb, state, m) is not None]
        text = why or (f"Models: {', '.join(names)} · dataset {state.dataset} · "
                       f"{len(P.rows(wb, state))} examples"
                       + (f" · {'; '.join(thresholds)}" if thresholds else ""))
        return [text, gr.update(choices=choices, value=chosen),
                pivot(table, chosen) if chosen else pd.DataFrame(),
                gr.update(choices=["", *[c for c in frame.columns]], value=sort_by), frame,
                paired_markdown(wb, state, names)]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]

        @base.guard(len(outs))
        def on_view(state: SessionState, m: str, s: str, desc: bool) -> Any:
            state.settings.update({"metrics.metric": m, "metrics.sort": s or "",
                                   "metrics.descending": bool(desc)})
            return (state, *draw(state), "")

        for comp in (metric, sort, descending):
            comp.input(on_view, [ctx.state, metric, sort, descending], outs,
                       api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
