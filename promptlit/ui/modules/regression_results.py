"""Regression results for the selected examples: predicted score, target and error.

Rows come from the regression component (`Workbench.interpret("regression")`): ``error =
score - target`` and its square; blank when the example has no target. The primary example
comes first; with two models picked, both are listed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "regression_results"
COLUMNS = ["#", "model", "field", "score", "target", "error", "squared_error"]
MAX_ROWS = 200


def results(wb: Any, state: SessionState) -> tuple[pd.DataFrame, str]:
    """Rows for the selected examples (primary first, at most 200) and a summary line."""
    names, why = P.models_for(wb, state, P.REGRESSION)
    if not names:
        return pd.DataFrame(columns=COLUMNS), why
    selected = base.selected_examples(wb, state)
    selected.sort(key=lambda pair: pair[0] != state.primary_id)
    selected = selected[:MAX_ROWS]
    if not selected:
        return pd.DataFrame(columns=COLUMNS), "Select an example in the data table."
    rows, lines = [], []
    for m in names:
        spec = wb.models[m].output_spec()
        outs = wb.interpret("regression", m, state.dataset, [ex for _, ex in selected])
        errs = []
        for (i, ex), out in zip(selected, outs, strict=True):
            for key, res in out.items():
                parent = spec[key].parent
                rows.append({"#": base.index_of(wb, state, i), "model": m, "field": key,
                             "score": round(res.score, 4),
                             "target": ex.get(parent) if parent else None,
                             "error": None if res.error is None else round(res.error, 4),
                             "squared_error": None if res.squared_error is None
                             else round(res.squared_error, 4)})
                if res.error is not None:
                    errs.append(abs(res.error))
        first = outs[0]
        main = next(iter(first.values()), None)
        if main is not None:
            lines.append(render.md("**{}**: score **{:.4g}**{}", m, main.score,
                                   (f", error {main.error:+.4g}" if main.error is not None
                                    else "")
                                   + (f" · mean |error| over {len(errs)} selected: "
                                      f"{sum(errs) / len(errs):.4g}" if len(errs) > 1 else "")))
    if why:
        lines.append(render.as_markdown(why))
    return pd.DataFrame(rows, columns=COLUMNS), render.Markdown("  \n".join(lines))


def build(ctx: base.Context) -> base.Module:
    """Draws the summary line and the per-example table."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-regression-results") as container:
        summary = base.markdown("", elem_id="pl-reg-summary")
        table = gr.Dataframe(interactive=False, elem_id="pl-reg-table", max_height=360,
                             label="Score, target and error of the selected examples")

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        frame, text = results(wb, state)
        return [text, frame]

    return ctx.register(base.Module(NAME, container, [summary, table], refresh))
