"""Curves: ROC and precision-recall curves per class, from the curves component.

`Workbench.interpret("curves")` gives one-vs-rest curves for every class over all examples
with a label (`promptlit.components.curves`), with their areas. Pick one class or all; with
two models picked, the second model's curves are dashed. For a binary classifier the current
threshold's operating point is circled on the positive class's curves.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from promptlit.ui import plots
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "curves"
ALL_CLASSES = "(all classes)"


def curves_of(wb: Any, state: SessionState, model: str) -> tuple[str, dict[str, Any]]:
    """(prediction field, ``{class: curves}``) of ``model`` over every example."""
    key = P.fields(wb, model, state.dataset, P.CLASSIFICATION, labelled=True)[0]
    pairs = P.rows(wb, state)
    out = wb.interpret("curves", model, state.dataset, [ex for _, ex in pairs],
                       {"Prediction field": key})
    return key, out["per_class"]


def _operating_point(curve: dict[str, Any], threshold: float) -> tuple[float, float, float,
                                                                          float] | None:
    """(fpr, tpr, precision, recall) where scores >= ``threshold`` are called positive."""
    roc_t = np.asarray(curve["roc_thresholds"], dtype=float)
    roc = curve["roc_data"]
    if not len(roc_t):
        return None
    i = int(np.nonzero(roc_t >= threshold)[0][-1]) if np.any(roc_t >= threshold) else 0
    fpr, tpr = roc[i]
    pr_t = np.asarray(curve["pr_thresholds"], dtype=float)
    j = int(np.nonzero(pr_t >= threshold)[0][0]) if np.any(pr_t >= threshold) else len(pr_t)
    precision, recall = curve["pr_data"][min(j, len(curve["pr_data"]) - 1)]
    return fpr, tpr, precision, recall


def draw(wb: Any, state: SessionState) -> tuple[str, list[str], str, str]:
    """(ROC + PR charts HTML, class choices, chosen class, note)."""
    names, why = P.models_for(wb, state, P.CLASSIFICATION, labelled=True)
    if not names:
        return f'<div class="pl-empty">{why}</div>', [ALL_CLASSES], ALL_CLASSES, why
    chosen = state.settings.get("curves.class", ALL_CLASSES)
    roc, pr, legend, marks_roc, marks_pr, classes = [], [], [], [], [], [ALL_CLASSES]
    for n, m in enumerate(names[:2]):
        key, per_class = curves_of(wb, state, m)
        spec = wb.models[m].output_spec()[key]
        classes += [c for c in per_class if c not in classes]
        binary = key in P.fields(wb, m, state.dataset, "binary")
        for c_i, (cls, curve) in enumerate(per_class.items()):
            if chosen != ALL_CLASSES and cls != chosen:
                continue
            if chosen == ALL_CLASSES and binary and cls != P.positive_class(spec):
                continue  # the negative class's curves mirror the positive one's
            colour = plots.PALETTE[c_i % len(plots.PALETTE)]
            name = f"{m}: {cls}" if len(names) > 1 else cls
            auc, ap = curve.get("roc_auc"), curve.get("average_precision")
            roc.append({"name": name, "points": curve["roc_data"], "colour": colour,
                        "dashed": n == 1})
            pr.append({"name": name, "points": [(r, p) for p, r in curve["pr_data"]],
                       "colour": colour, "dashed": n == 1})
            legend.append((f"{name} (ROC AUC {auc:.3f}, AP {ap:.3f})" if auc is not None
                           else f"{name} (one class only)", colour, n == 1))
            if binary and cls == P.positive_class(spec):
                t = P.threshold_of(wb, state, m)
                t = P.DEFAULT_THRESHOLD if t is None else t
                op = _operating_point(curve, t)
                if op is not None:
                    fpr, tpr, precision, recall = op
                    marks_roc.append({"x": fpr, "y": tpr, "colour": "#d62728",
                                      "title": f"threshold {t:.2f}: FPR {fpr:.3f}, TPR {tpr:.3f}"})
                    marks_pr.append({"x": recall, "y": precision, "colour": "#d62728",
                                     "title": f"threshold {t:.2f}: precision {precision:.3f}, "
                                              f"recall {recall:.3f}"})
    if chosen not in classes:
        chosen = ALL_CLASSES
    cell = '<div style="flex:1 1 340px;max-width:460px">'
    html = ('<div style="display:flex;flex-wrap:wrap;gap:8px">'
            + cell + plots.curves_svg(roc, x_label="false positive rate",
                                      y_label="true positive rate", title="ROC",
                                      marks=marks_roc, diagonal=True) + "</div>"
            + cell + plots.curves_svg(pr, x_label="recall", y_label="precision",
                                      title="Precision-recall", marks=marks_pr) + "</div>"
            + "</div>" + plots.legend_html(legend))
    return html, classes, chosen, why


def build(ctx: base.Context) -> base.Module:
    """Draws the class picker and the ROC / PR charts."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-curves") as container:
        cls = gr.Dropdown(label="Class", choices=[ALL_CLASSES], value=ALL_CLASSES,
                          elem_id="pl-curves-class")
        note = base.markdown("", elem_id="pl-curves-note")
        view = gr.HTML("", elem_id="pl-curves-plot", js_on_load=None)

    outputs = [cls, note, view]

    def redraw(state: SessionState) -> list[Any]:
        html, classes, chosen, why = draw(wb, state)
        return [gr.update(choices=classes, value=chosen), why, html]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return redraw(state)

    def wire(ctx: base.Context) -> None:
        @base.guard(2 + len(outputs))
        def on_class(state: SessionState, c: str) -> Any:
            state.settings["curves.class"] = c or ALL_CLASSES
            return (state, *redraw(state), "")

        cls.input(on_class, [ctx.state, cls], [ctx.state, *outputs, ctx.footer],
                  api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
