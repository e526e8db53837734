"""Scalars: every example's prediction against its label, as an interactive scatter plot.

Classifiers: x is the score of one class (default: the positive class of a binary classifier,
else the first), y the true label (points spread a little vertically so they do not hide each
other); the session's threshold is drawn as a red line. Regression models: x is the target,
y the prediction, with the y = x line. Points are coloured by any dataset field. Click a point
to select its example (shift-click adds it); drag a box, or a lasso (toolbar), to select many
(shift adds); hover for the numbers; scroll or drag (zoom tool) to zoom, double-click to reset.
The selection is the session's: every module follows it, and the plots show it. With two
models picked, both plots are shown. Plotly charts (see `promptlit.ui.plots`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import gradio as gr

from promptlit.api import types
from promptlit.ui import plots
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "scalars"
NO_COLOUR = "(none)"
HELP = ("Click a point to select its example (shift-click adds it); drag a box or a lasso "
        "(toolbar) to select many; scroll to zoom, double-click to reset.")


def _jitter(ex_id: str) -> float:
    """A stable offset in [-0.3, 0.3] from the example id."""
    return (int(hashlib.sha1(ex_id.encode()).hexdigest()[:6], 16) / 0xFFFFFF - 0.5) * 0.6


def text_field(wb: Any, dataset: str) -> str | None:
    """The dataset's first text field (what a hover label quotes), or None."""
    try:
        spec = wb.datasets[dataset].spec()
    except Exception:  # noqa: BLE001 - no spec: no caption
        return None
    return next((k for k, t in spec.items() if isinstance(t, types.TextSegment)), None)


def caption(ex: dict[str, Any], key: str | None, limit: int = 80) -> str:
    """Field ``key`` of the example on one line, at most ``limit`` characters ("" if none)."""
    return base.short(ex.get(key, ""), limit) if key else ""


def plot_model(wb: Any, state: SessionState, model: str, colour_field: str,
               class_name: str = "") -> Any:
    """The scatter plot (a `plots.figure`) of ``model``'s first prediction field."""
    pairs = P.rows(wb, state)
    if not pairs:
        return plots.empty("The dataset is empty.")
    spec = wb.models[model].output_spec()
    outs = wb.predict(model, state.dataset, [ex for _, ex in pairs])
    colour_values = ([ex.get(colour_field) for _, ex in pairs] if colour_field != NO_COLOUR
                     else None)

    key_text = text_field(wb, state.dataset)

    def tip(n: int, ex: dict[str, Any], *lines: str) -> list[str]:
        text = caption(ex, key_text)
        extra = ([f"{colour_field}: {ex.get(colour_field)}"] if colour_values is not None
                 else [])
        return [f"#{n}" + (f" {text}" if text else ""), *lines, *extra]

    cls_keys = P.fields(wb, model, state.dataset, P.CLASSIFICATION)
    points: list[dict[str, Any]] = []
    if cls_keys:
        key = cls_keys[0]
        field = spec[key]
        binary = key in P.fields(wb, model, state.dataset, "binary")
        target = class_name if class_name in field.vocab else (
            P.positive_class(field) if binary else field.vocab[0])
        j = list(field.vocab).index(target)
        unlabelled = any(ex.get(field.parent) not in field.vocab for _, ex in pairs)
        cats = list(field.vocab) + (["(no label)"] if unlabelled else [])
        none_labelled = all(ex.get(field.parent) is None for _, ex in pairs)
        if none_labelled:
            cats = cats[-1:]
        for n, ((i, ex), out) in enumerate(zip(pairs, outs, strict=True)):
            label = ex.get(field.parent) if field.parent else None
            row = 0 if none_labelled else (cats.index(label) if label in field.vocab
                                           else len(cats) - 1)
            score = float(out[key][j])
            points.append({"id": i, "x": score, "y": row + _jitter(i),
                           "hover": tip(n, ex, f"{target} score {score:.3f}",
                                        f"label {label}")})
        if colour_values is None:  # colour by the label
            colour_values = [cats[round(p["y"])] for p in points]
            colour_title = f"label ({field.parent})"
        else:
            colour_title = colour_field
        t = P.threshold_of(wb, state, model)
        t = P.DEFAULT_THRESHOLD if t is None else t
        vlines = [(t, f"threshold {t:.2f}")] if binary and target == P.positive_class(field) \
            else []
        return plots.scatter(points, x_title=f"score of {target} ({key})",
                             y_title=f"label ({field.parent})", title=model,
                             colour_values=colour_values, colour_title=colour_title,
                             selected=state.selected_ids, primary=state.primary_id,
                             y_categories=cats, x_range=(-0.02, 1.02), vlines=vlines,
                             view=f"scalars:{model}:{key}:{target}")
    reg_keys = P.fields(wb, model, state.dataset, P.REGRESSION)
    if not reg_keys:
        return plots.empty(f"{model} has no classification or regression output.")
    key = reg_keys[0]
    parent = spec[key].parent
    has_target = parent is not None and any(ex.get(parent) is not None for _, ex in pairs)
    for n, ((i, ex), out) in enumerate(zip(pairs, outs, strict=True)):
        score = float(out[key])
        x = float(ex[parent]) if has_target and ex.get(parent) is not None else float(n)
        points.append({"id": i, "x": x, "y": score,
                       "hover": tip(n, ex, f"prediction {score:.4g}",
                                    *([f"target {ex.get(parent)}"] if has_target else []))})
    return plots.scatter(points, x_title=f"target ({parent})" if has_target else "example",
                         y_title=f"prediction ({key})", title=model,
                         colour_values=colour_values, colour_title=colour_field,
                         selected=state.selected_ids, primary=state.primary_id,
                         diagonal=has_target, view=f"scalars:{model}:{key}")


def draw(wb: Any, state: SessionState) -> tuple[list[Any], list[str], str, list[str], str]:
    """(figures of up to two models, colour choices, colour, class choices, note)."""
    names, why = P.models_for(wb, state, "plot")
    fields = base.spec_fields(wb, state.dataset)
    colour = state.settings.get("scalars.color")
    if colour not in (NO_COLOUR, *fields):
        colour = NO_COLOUR
    classes: list[str] = []
    for m in names:
        for k in P.fields(wb, m, state.dataset, P.CLASSIFICATION)[:1]:
            classes += [c for c in wb.models[m].output_spec()[k].vocab if c not in classes]
    if not names:
        return [plots.empty(why)], [NO_COLOUR, *fields], colour, [], why
    cls = state.settings.get("scalars.class", "")
    figures = [plot_model(wb, state, m, colour, cls) for m in names[:2]]
    return figures, [NO_COLOUR, *fields], colour, classes, why


def build(ctx: base.Context) -> base.Module:
    """Draws the colour / class pickers and the interactive plots."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-scalars") as container:
        with gr.Row():
            colour = gr.Dropdown(label="Colour by", choices=[NO_COLOUR], value=NO_COLOUR,
                                 scale=1, elem_id="pl-scalars-colour")
            cls = gr.Dropdown(label="Score of class (classifiers)", choices=[], scale=1,
                              elem_id="pl-scalars-class")
        note = base.markdown(HELP, elem_id="pl-scalars-note")
        with plots.plot_host("pl-scalars-plot") as host:
            plot_a = gr.Plot(plots.empty("No plot yet."), show_label=False,
                             elem_id="pl-scalars-a")
            plot_b = gr.Plot(None, show_label=False, visible=False, elem_id="pl-scalars-b")

    outputs = [colour, cls, note, plot_a, plot_b]

    def redraw(state: SessionState) -> list[Any]:
        figures, colours, chosen, classes, why = draw(wb, state)
        current = state.settings.get("scalars.class", "")
        second = figures[1] if len(figures) > 1 else None
        return [gr.update(choices=colours, value=chosen),
                gr.update(choices=classes, value=current if current in classes else None),
                why or HELP, figures[0], gr.update(value=second, visible=second is not None)]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return redraw(state)

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()
        outs = [ctx.state, *refresh_outs, ctx.footer]

        @base.guard(len(outs))
        def on_pick(state: SessionState, evt: gr.EventData) -> Any:
            known = [i for i, _, _ in base.dataset_rows(wb, state)]
            ids, add, _ = plots.picked(getattr(evt, "_data", None), known)
            chosen = plots.select(state, ids, add=add)
            n = base.index_of(wb, state, state.primary_id)
            msg = (f"selected example #{n}" if len(chosen) == 1
                   else f"{len(chosen)} examples selected (#{n} shown)")
            return (state, *ctx.refresh(state), base.ok(msg))

        host.click(on_pick, [ctx.state], outs, api_visibility="private")

        @base.guard(2 + len(outputs))
        def on_setting(state: SessionState, c: str, k: str) -> Any:
            state.settings.update({"scalars.color": c or NO_COLOUR, "scalars.class": k or ""})
            return (state, *redraw(state), "")

        for comp in (colour, cls):
            comp.input(on_setting, [ctx.state, colour, cls], [ctx.state, *outputs, ctx.footer],
                       api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
