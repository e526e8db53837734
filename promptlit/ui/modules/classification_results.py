"""Classification results for the selected example: every class's score, the predicted class,
and whether it is right.

The rows come from the classification component (`Workbench.interpret("classification")`)
with the session's threshold for binary classifiers (set in the threshold module), so they
agree with the metrics and the confusion matrix. With two models picked, both are listed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "classification_results"
COLUMNS = ["model", "field", "class", "score", "predicted", "label"]


def results(wb: Any, state: SessionState) -> tuple[pd.DataFrame, str]:
    """Rows (model, field, class, score, predicted, label) for the primary example, and a
    one-line verdict per model and field."""
    ex = base.primary_example(wb, state)
    names, why = P.models_for(wb, state, P.CLASSIFICATION)
    if not names:
        return pd.DataFrame(columns=COLUMNS), why
    if ex is None:
        return pd.DataFrame(columns=COLUMNS), "Select an example in the data table."
    rows, verdicts = [], []
    for m in names:
        spec = wb.models[m].output_spec()
        config = P.decision_config(wb, state, m)
        out = wb.interpret("classification", m, state.dataset, [ex], config)[0]
        for key, res in out.items():
            label = ex.get(spec[key].parent) if spec[key].parent else None
            for cls, score in zip(spec[key].vocab, res.scores, strict=True):
                rows.append({"model": m, "field": key, "class": cls,
                             "score": round(float(score), 4),
                             "predicted": "✓" if cls == res.predicted_class else "",
                             "label": "✓" if label is not None and cls == label else ""})
            rule = (f"threshold {config['threshold']:.2f} on "
                    f"{P.positive_class(spec[key])}" if "threshold" in config
                    and key in P.fields(wb, m, state.dataset, "binary") else "highest score")
            verdict = ("no label" if res.correct is None else
                       "✓ correct" if res.correct else f"✗ wrong (label {label})")
            verdicts.append(render.md("**{}** · {}: predicted **{}** ({}) · {}", m, key,
                                      res.predicted_class, rule, verdict))
    if why:
        verdicts.append(render.as_markdown(why))
    return pd.DataFrame(rows, columns=COLUMNS), render.Markdown("  \n".join(verdicts))


def build(ctx: base.Context) -> base.Module:
    """Draws the per-class scores table and the verdict line."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-classification-results") as container:
        verdict = base.markdown("", elem_id="pl-cls-verdict")
        table = gr.Dataframe(interactive=False, elem_id="pl-cls-table",
                             label="Class scores of the selected example")

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        frame, text = results(wb, state)
        return [text, frame]

    return ctx.register(base.Module(NAME, container, [verdict, table], refresh))
