"""Scalars: every example's prediction against its label, as a clickable scatter plot.

Classifiers: x is the score of one class (default: the positive class of a binary classifier,
else the first), y the true label (points spread a little vertically so they do not hide each
other); the session's threshold is drawn as a red line. Regression models: x is the target,
y the prediction, with the y = x line. Points are coloured by any dataset field. Clicking a
point selects its example; shift-click adds it to the selection. Selected points are outlined.
With two models picked, both plots are shown.
"""

from __future__ import annotations

import hashlib
from typing import Any

import gradio as gr

from promptlit.ui import plots
from promptlit.ui.modules import base
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState

NAME = "scalars"
NO_COLOUR = "(none)"

# Delegated click handler: a click on a point sends its example id (and shift) to Python.
CLICK_JS = """
element.addEventListener('click', (e) => {
  const pt = e.target.closest('[data-id]');
  if (!pt || !element.contains(pt)) return;
  e.preventDefault();
  trigger('click', {id: pt.dataset.id, shift: !!e.shiftKey});
});
"""


def _jitter(ex_id: str) -> float:
    """A stable offset in [-0.3, 0.3] from the example id."""
    return (int(hashlib.sha1(ex_id.encode()).hexdigest()[:6], 16) / 0xFFFFFF - 0.5) * 0.6


def plot_model(wb: Any, state: SessionState, model: str, colour_field: str,
               class_name: str = "") -> str:
    """The scatter plot (SVG) of ``model``'s first prediction field over every example."""
    pairs = P.rows(wb, state)
    if not pairs:
        return '<div class="pl-empty">The dataset is empty.</div>'
    spec = wb.models[model].output_spec()
    outs = wb.predict(model, state.dataset, [ex for _, ex in pairs])
    values = [ex.get(colour_field) for _, ex in pairs] if colour_field != NO_COLOUR else []
    colours, legend = plots.colours_for(values) if values else ([], [])
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
        for n, ((i, ex), out) in enumerate(zip(pairs, outs, strict=True)):
            label = ex.get(field.parent) if field.parent else None
            row = cats.index(label) if label in field.vocab else len(cats) - 1
            score = float(out[key][j])
            points.append({"id": i, "x": score, "y": row + _jitter(i),
                           "colour": colours[n] if colours else plots.PALETTE[row % 10],
                           "title": f"#{n} · {target} score {score:.3f} · label {label}"})
        if all(ex.get(field.parent) is None for _, ex in pairs):
            cats = cats[-1:]
            for p in points:
                p["y"] = _jitter(p["id"])
        t = P.threshold_of(wb, state, model)
        vlines = [(t if t is not None else P.DEFAULT_THRESHOLD,
                   f"threshold {t if t is not None else P.DEFAULT_THRESHOLD:.2f}")] \
            if binary and target == P.positive_class(field) else []
        return plots.scatter_svg(points, x_label=f"score of {target} ({key})",
                                 y_label=f"label ({field.parent})", title=model,
                                 x_range=(0.0, 1.0), y_categories=cats,
                                 selected=state.selected_ids, legend=legend, vlines=vlines)
    reg_keys = P.fields(wb, model, state.dataset, P.REGRESSION)
    if not reg_keys:
        return f'<div class="pl-empty">{model} has no classification or regression output.</div>'
    key = reg_keys[0]
    parent = spec[key].parent
    labelled = [(n, i, ex, out) for n, ((i, ex), out) in enumerate(zip(pairs, outs, strict=True))]
    has_target = parent is not None and any(ex.get(parent) is not None for _, ex in pairs)
    for n, i, ex, out in labelled:
        score = float(out[key])
        x = float(ex[parent]) if has_target and ex.get(parent) is not None else float(n)
        points.append({"id": i, "x": x, "y": score,
                       "colour": colours[n] if colours else plots.PALETTE[0],
                       "title": f"#{n} · score {score:.4g}"
                                + (f" · target {ex.get(parent)}" if has_target else "")})
    return plots.scatter_svg(points, x_label=f"target ({parent})" if has_target else "example",
                             y_label=f"prediction ({key})", title=model,
                             selected=state.selected_ids, legend=legend, diagonal=has_target)


def draw(wb: Any, state: SessionState) -> tuple[str, list[str], str, list[str], str]:
    """(plots HTML, colour choices, colour, class choices, note)."""
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
        return f'<div class="pl-empty">{why}</div>', [NO_COLOUR, *fields], colour, [], why
    cls = state.settings.get("scalars.class", "")
    html = "".join(f'<div class="pl-scatter" data-model="{m}">'
                   f"{plot_model(wb, state, m, colour, cls)}</div>" for m in names[:2])
    return html, [NO_COLOUR, *fields], colour, classes, why


def build(ctx: base.Context) -> base.Module:
    """Draws the colour / class pickers and the clickable plots."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-scalars") as container:
        with gr.Row():
            colour = gr.Dropdown(label="Colour by", choices=[NO_COLOUR], value=NO_COLOUR,
                                 scale=1, elem_id="pl-scalars-colour")
            cls = gr.Dropdown(label="Score of class (classifiers)", choices=[], scale=1,
                              elem_id="pl-scalars-class")
        note = base.markdown("Click a point to select its example; shift-click adds it.",
                           elem_id="pl-scalars-note")
        view = gr.HTML("", elem_id="pl-scalars-plot", js_on_load=CLICK_JS)

    outputs = [colour, cls, note, view]

    def redraw(state: SessionState) -> list[Any]:
        html, colours, chosen, classes, why = draw(wb, state)
        current = state.settings.get("scalars.class", "")
        return [gr.update(choices=colours, value=chosen),
                gr.update(choices=classes, value=current if current in classes else None),
                why or "Click a point to select its example; shift-click adds it.", html]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return redraw(state)

    def wire(ctx: base.Context) -> None:
        refresh_outs = ctx.refresh_outputs()
        outs = [ctx.state, *refresh_outs, ctx.footer]

        @base.guard(len(outs))
        def on_click(state: SessionState, evt: gr.EventData) -> Any:
            data = getattr(evt, "_data", None) or {}
            ex_id = data.get("id")
            if not ex_id:
                return (state, *[gr.skip()] * len(refresh_outs), "")
            if base.find_example(wb, state, ex_id) is None:
                raise ValueError("that point's example is no longer in the dataset")
            state.select_example(str(ex_id), add=bool(data.get("shift")))
            n = base.index_of(wb, state, state.primary_id)
            return (state, *ctx.refresh(state),
                    base.ok(f"selected example #{n}" if not data.get("shift") else
                            f"{len(state.selected_ids)} examples selected"))

        view.click(on_click, [ctx.state], outs, api_visibility="private")

        @base.guard(2 + len(outputs))
        def on_setting(state: SessionState, c: str, k: str) -> Any:
            state.settings.update({"scalars.color": c or NO_COLOUR, "scalars.class": k or ""})
            return (state, *redraw(state), "")

        for comp in (colour, cls):
            comp.input(on_setting, [ctx.state, colour, cls], [ctx.state, *outputs, ctx.footer],
                       api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
