"""Curves: ROC and precision-recall curves per class, from the curves component.

`Workbench.interpret("curves")` gives one-vs-rest curves for every class over all examples
with a label (`promptlit.components.curves`), with their areas. Pick one class or all; with
two models picked, the second model's curves are dashed. For a binary classifier the current
threshold's operating point is circled on the positive class's curves. Hover a curve for its
numbers and the score threshold of that point; drag to zoom, double-click to reset (Plotly
charts, see `promptlit.ui.plots`).
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


def _hover(curve: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """Hover lines for each ROC and PR point: the rates and the score threshold there."""
    roc_t = list(curve.get("roc_thresholds") or [])
    pr_t = list(curve.get("pr_thresholds") or [])

    def at(ts: list[Any], k: int) -> str:
        t = float(ts[k]) if k < len(ts) else np.inf
        return f"threshold {t:.3f}" if np.isfinite(t) else "threshold above every score"

    roc = [[f"FPR {fpr:.3f}, TPR {tpr:.3f}", at(roc_t, k)]
           for k, (fpr, tpr) in enumerate(curve["roc_data"])]
    pr = [[f"recall {r:.3f}, precision {p:.3f}", at(pr_t, k)]
          for k, (p, r) in enumerate(curve["pr_data"])]
    return roc, pr


def draw(wb: Any, state: SessionState) -> tuple[Any, Any, list[str], str, str]:
    """(ROC chart, PR chart, class choices, chosen class, note)."""
    names, why = P.models_for(wb, state, P.CLASSIFICATION, labelled=True)
    if not names:
        return plots.empty(why), plots.empty(why), [ALL_CLASSES], ALL_CLASSES, why
    chosen = state.settings.get("curves.class", ALL_CLASSES)
    roc, pr, marks_roc, marks_pr, classes = [], [], [], [], [ALL_CLASSES]
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
            hover_roc, hover_pr = _hover(curve)
            roc.append({"name": f"{name} (ROC AUC {auc:.3f})" if auc is not None
                        else f"{name} (one class only)", "points": curve["roc_data"],
                        "colour": colour, "dashed": n == 1, "hover": hover_roc})
            pr.append({"name": f"{name} (AP {ap:.3f})" if ap is not None
                       else f"{name} (one class only)",
                       "points": [(r, p) for p, r in curve["pr_data"]], "colour": colour,
                       "dashed": n == 1, "hover": hover_pr})
            if binary and cls == P.positive_class(spec):
                t = P.threshold_of(wb, state, m)
                t = P.DEFAULT_THRESHOLD if t is None else t
                op = _operating_point(curve, t)
                if op is not None:
                    fpr, tpr, precision, recall = op
                    marks_roc.append({"x": fpr, "y": tpr, "colour": plots.HIGHLIGHT,
                                      "title": f"threshold {t:.2f}: FPR {fpr:.3f}, TPR {tpr:.3f}"})
                    marks_pr.append({"x": recall, "y": precision, "colour": plots.HIGHLIGHT,
                                     "title": f"threshold {t:.2f}: precision {precision:.3f}, "
                                              f"recall {recall:.3f}"})
    if chosen not in classes:
        chosen = ALL_CLASSES
    view = f"curves:{','.join(names[:2])}:{chosen}"
    return (plots.curves(roc, x_title="false positive rate", y_title="true positive rate",
                         title="ROC", marks=marks_roc, diagonal=True, view=view + ":roc"),
            plots.curves(pr, x_title="recall", y_title="precision", title="Precision-recall",
                         marks=marks_pr, view=view + ":pr"),
            classes, chosen, why)


def build(ctx: base.Context) -> base.Module:
    """Draws the class picker and the ROC / PR charts."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-curves") as container:
        cls = gr.Dropdown(label="Class", choices=[ALL_CLASSES], value=ALL_CLASSES,
                          elem_id="pl-curves-class")
        note = base.markdown("", elem_id="pl-curves-note")
        with gr.Row(elem_id="pl-curves-plot"):
            roc = gr.Plot(plots.empty("No curves yet."), show_label=False, min_width=320,
                          elem_id="pl-curves-roc")
            pr = gr.Plot(plots.empty("No curves yet."), show_label=False, min_width=320,
                         elem_id="pl-curves-pr")

    outputs = [cls, note, roc, pr]

    def redraw(state: SessionState) -> list[Any]:
        roc_fig, pr_fig, classes, chosen, why = draw(wb, state)
        return [gr.update(choices=classes, value=chosen), why, roc_fig, pr_fig]

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
