"""Threshold: the decision threshold of each picked binary classifier, chosen by hand, for a
cost ratio, or per group under a fairness constraint.

A binary classifier here is a `MulticlassPreds` with two classes and a `null_idx`: it predicts
its positive class when that class's score is >= the threshold. The slider's value is kept in
`SessionState.thresholds` and every module follows it (metrics, confusion matrix,
classification results, scalars, curves).

* "Optimise for cost ratio" asks the thresholder component (`Workbench.interpret("thresholder")`)
  for the threshold with the lowest ``false positives × ratio + false negatives`` over all
  labelled examples and sets it.
* "Per-group thresholds" groups the examples by a category field and lists, for the chosen
  measure (the single best threshold, each group's own best, demographic parity, equal
  opportunity or equal accuracy), each group's threshold with that group's metrics at it
  (`Workbench.metrics_table`). "Apply" sets the slider to one group's threshold.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from promptlit.components.metrics import metrics_pivot
from promptlit.components.thresholder import FAIRNESS_MEASURES
from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "threshold"
MEASURES = ["Single", "Individual", *FAIRNESS_MEASURES]
NO_GROUP = "(no groups)"
GROUP_COLUMNS = ["group", "threshold", "num_labelled", "accuracy", "precision", "recall",
                 "positive_rate"]


def binary_models(wb: Any, state: SessionState) -> list[str]:
    """The picked models (at most two) with a binary field; a stand-in when none is."""
    names, _ = P.models_for(wb, state, "binary")
    return names[:2]


def set_threshold(state: SessionState, model: str, value: float) -> float:
    """Sets ``model``'s threshold (checked to be in [0, 1]); returns it."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"a threshold must be between 0 and 1, got {value}")
    state.thresholds[model] = round(value, 4)
    return state.thresholds[model]


def optimise(wb: Any, state: SessionState, model: str, cost_ratio: float) -> float:
    """The cost-optimal threshold of ``model`` (thresholder component) over all examples."""
    if cost_ratio is None or float(cost_ratio) < 0:
        raise ValueError("the cost ratio must be a number >= 0 (the cost of a false positive "
                         "relative to a false negative)")
    pairs = P.rows(wb, state)
    out = wb.interpret("thresholder", model, state.dataset, [ex for _, ex in pairs],
                       {"cost_ratio": float(cost_ratio)})
    key = P.fields(wb, model, state.dataset, "binary")[0]
    found = next(r["thresholds"] for r in out if r["pred_key"] == key)
    if not found:
        raise ValueError(f"{model}: no example has a label, so no threshold can be optimised")
    return float(next(iter(found.values()))["Single"])


def group_thresholds(wb: Any, state: SessionState, model: str, group_field: str,
                     measure: str, cost_ratio: float) -> pd.DataFrame:
    """Per-group thresholds for ``measure`` and each group's metrics at its threshold."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    pairs = P.rows(wb, state)
    if not group_field or group_field == NO_GROUP:
        raise ValueError("choose a category field to group the examples by")
    out = wb.interpret("thresholder", model, state.dataset, [ex for _, ex in pairs],
                       {"cost_ratio": float(cost_ratio), "group_field": group_field})
    key = P.fields(wb, model, state.dataset, "binary")[0]
    found = next(r["thresholds"] for r in out if r["pred_key"] == key)
    if len(found) < 2:
        raise ValueError(f"{group_field!r} has fewer than two groups among the labelled "
                         "examples; pick another field")
    spec = wb.models[model].output_spec()[key]
    rows = []
    for group, by_measure in found.items():
        t = float(by_measure[measure])
        ids = [i for i, ex in pairs if str(ex.get(group_field)) == group]
        table = wb.metrics_table(state.dataset, [model], examples=P.indexed(pairs),
                                 slices={group: ids}, configs={model: {"threshold": t}},
                                 all_slice=None)
        table = table[table["pred_key"] == key]

        def value(metric: str, table: pd.DataFrame = table, group: str = group) -> Any:
            try:
                return round(float(metrics_pivot(table, metric).loc[model, group]), 4)
            except KeyError:
                return None

        labelled = sum(1 for i, ex in pairs if str(ex.get(group_field)) == group
                        and ex.get(spec.parent) is not None)
        predicted = wb.predict(model, state.dataset,
                               [ex for _, ex in pairs if str(ex.get(group_field)) == group])
        pos = 1 - int(spec.null_idx)
        rate = (sum(float(o[key][pos]) >= t for o in predicted) / len(predicted)
                if predicted else None)
        rows.append({"group": group, "threshold": t, "num_labelled": labelled,
                     "accuracy": value("accuracy"), "precision": value("precision"),
                     "recall": value("recall"),
                     "positive_rate": None if rate is None else round(rate, 4)})
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def counts_line(wb: Any, state: SessionState, model: str) -> str:
    """TP / FP / TN / FN and the cost at the model's current threshold (all labelled examples)."""
    key = P.fields(wb, model, state.dataset, "binary")[0]
    spec = wb.models[model].output_spec()[key]
    pairs = P.rows(wb, state)
    outs = wb.predict(model, state.dataset, [ex for _, ex in pairs])
    t = P.threshold_of(wb, state, model)
    t = P.DEFAULT_THRESHOLD if t is None else t
    pos_i, pos = 1 - int(spec.null_idx), P.positive_class(spec)
    tp = fp = tn = fn = 0
    for (_, ex), o in zip(pairs, outs, strict=True):
        label = ex.get(spec.parent)
        if label not in spec.vocab:
            continue
        said = float(o[key][pos_i]) >= t
        truth = label == pos
        tp, fp = tp + (said and truth), fp + (said and not truth)
        tn, fn = tn + (not said and not truth), fn + (not said and truth)
    return render.md("**{}** · positive class **{}** · threshold {:.2f}: TP {} · FP {} · TN {} · "
                     "FN {}", model, pos, t, tp, fp, tn, fn)


def build(ctx: base.Context) -> base.Module:
    """Draws the threshold sliders, the cost-ratio optimiser and the per-group table."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-threshold") as container:
        note = base.markdown("", elem_id="pl-threshold-note")
        slider_a = gr.Slider(0, 1, value=P.DEFAULT_THRESHOLD, step=0.01, label="Threshold",
                             elem_id="pl-threshold-a")
        slider_b = gr.Slider(0, 1, value=P.DEFAULT_THRESHOLD, step=0.01, label="Threshold",
                             visible=False, elem_id="pl-threshold-b")
        counts = base.markdown("", elem_id="pl-threshold-counts")
        with gr.Row():
            cost = gr.Number(label="Cost ratio (false positive / false negative)", value=1.0,
                             minimum=0, scale=2, elem_id="pl-cost-ratio")
            optimise_btn = gr.Button("Optimise for cost ratio", scale=1,
                                     elem_id="pl-optimise")
        with gr.Accordion("Per-group thresholds (fairness)", open=False):
            with gr.Row():
                group = gr.Dropdown(label="Group by", choices=[NO_GROUP], value=NO_GROUP,
                                    scale=1, elem_id="pl-group-field")
                measure = gr.Dropdown(label="Constraint", choices=MEASURES,
                                      value="Demographic parity", scale=1,
                                      elem_id="pl-fairness")
                groups_btn = gr.Button("Compute per-group thresholds", scale=1,
                                       elem_id="pl-group-thresholds")
            groups_table = gr.Dataframe(interactive=False, elem_id="pl-group-table",
                                        label="Each group's threshold and metrics at it")
            with gr.Row():
                apply_group = gr.Dropdown(label="Apply the threshold of group", choices=[],
                                          scale=2)
                apply_btn = gr.Button("Apply", scale=1)

    outputs = [note, slider_a, slider_b, counts, group]

    def draw(state: SessionState) -> list[Any]:
        names, why = P.models_for(wb, state, "binary")
        names = names[:2]
        spec = wb.datasets[state.dataset].spec() if state.dataset in wb.datasets else {}
        cats = [k for k, t in spec.items() if type(t).__name__ == "CategoryLabel"]
        if not names:
            return [why, gr.update(visible=False), gr.update(visible=False), "",
                    gr.update(choices=[NO_GROUP, *cats])]
        ups = []
        for m in names:
            t = P.threshold_of(wb, state, m)
            key = P.fields(wb, m, state.dataset, "binary")[0]
            pos = P.positive_class(wb.models[m].output_spec()[key])
            ups.append(gr.update(visible=True, value=P.DEFAULT_THRESHOLD if t is None else t,
                                 label=f"{m}: predict “{pos}” when its score ≥"))
        if len(ups) < 2:
            ups.append(gr.update(visible=False))
        return [why or "Drag to change the decision threshold; every module follows.", *ups,
                "  \n".join(counts_line(wb, state, m) for m in names),
                gr.update(choices=[NO_GROUP, *cats])]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()
        outs = [ctx.state, *refresh_outs, ctx.footer]

        def on_slide(which: int) -> Any:
            @base.guard(len(outs))
            def handler(state: SessionState, value: float) -> Any:
                names = binary_models(wb, state)
                if len(names) <= which:
                    raise ValueError("no binary classifier is shown there")
                t = set_threshold(state, names[which], value)
                return (state, *ctx.refresh(state), base.ok(f"{names[which]}: threshold {t:.2f}"))

            return handler

        slider_a.release(on_slide(0), [ctx.state, slider_a], outs, api_visibility="private")
        slider_b.release(on_slide(1), [ctx.state, slider_b], outs, api_visibility="private")

        @base.guard(len(outs))
        def on_optimise(state: SessionState, ratio: float) -> Any:
            names = binary_models(wb, state)
            if not names:
                raise ValueError("no binary classifier with a null class runs on this dataset")
            done = []
            for m in names:
                t = set_threshold(state, m, optimise(wb, state, m, ratio))
                done.append(f"{m} → {t:.2f}")
            return (state, *ctx.refresh(state),
                    base.ok(f"cost ratio {float(ratio):g}: threshold {', '.join(done)}"))

        optimise_btn.click(on_optimise, [ctx.state, cost], outs, api_visibility="private")

        @base.guard(4)
        def on_groups(state: SessionState, field: str, m: str, ratio: float) -> Any:
            names = binary_models(wb, state)
            if not names:
                raise ValueError("no binary classifier with a null class runs on this dataset")
            table = group_thresholds(wb, state, names[0], field, m, ratio)
            return (table, gr.update(choices=[str(g) for g in table["group"]], value=None),
                    state, base.ok(f"{names[0]}: {m} thresholds for {len(table)} groups of "
                                   f"{field}"))

        groups_btn.click(on_groups, [ctx.state, group, measure, cost],
                         [groups_table, apply_group, ctx.state, ctx.footer],
                         api_visibility="private")

        @base.guard(len(outs))
        def on_apply(state: SessionState, table: Any, g: str) -> Any:
            names = binary_models(wb, state)
            frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
            if not names or frame.empty or not g:
                raise ValueError("compute per-group thresholds, then choose a group")
            hit = frame[frame["group"].astype(str) == str(g)]
            if hit.empty:
                raise ValueError(f"no group {g!r} in the table; compute it again")
            t = set_threshold(state, names[0], float(hit["threshold"].iloc[0]))
            return (state, *ctx.refresh(state),
                    base.ok(f"{names[0]}: threshold {t:.2f} (group {g})"))

        apply_btn.click(on_apply, [ctx.state, groups_table, apply_group], outs,
                        api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
