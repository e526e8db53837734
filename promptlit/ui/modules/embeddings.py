"""Embeddings projector: a 2-D map of the dataset in a model's embedding space.

Pick a projector (PCA or UMAP: registered interpreters whose meta_spec is an `Embeddings`), an
`Embeddings` output field of the model (e.g. "cls_emb") and a field to colour by (a dataset
field or the model's prediction). "Project" fits the projector once on the whole dataset
through the Workbench's cached ``interpret`` (`promptlit.components.projection` keeps the
fitted projector, so examples added in this session are placed into the same space without a
refit). Click a point to select it; drag a box (or, in lasso mode, draw around points) to select
many; shift adds to the selection. Hover a point for its text; scroll to zoom, double-click to
reset (a Plotly chart, see `promptlit.ui.plots`; the zoom stays while the selection changes).
The selection is the session's: every module follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np

from promptlit.api import types
from promptlit.lib.utils import find_spec_keys
from promptlit.ui import plots, render
from promptlit.ui.modules import base, interp_common
from promptlit.ui.modules.scalars import caption, text_field
from promptlit.ui.state import SessionState

NAME = "embeddings"
LABELS = {"pca": "PCA", "umap": "UMAP"}
DEFAULTS = {"method": None, "field": None, "color": None, "mode": "box", "shown": False}
DRAGMODES = {"box": "select", "lasso": "lasso"}


def embedding_fields(wb: Any, model: str) -> list[str]:
    """The model's `Embeddings` output fields."""
    return find_spec_keys(wb.models[model].output_spec(), types.Embeddings)


def colour_fields(wb: Any, model: str, dataset: str) -> list[tuple[str, str]]:
    """(label, value) choices to colour points by: the model's predictions, then the dataset's
    label / scalar / boolean fields. Values are "pred:<output field>" or "data:<field>"."""
    out: list[tuple[str, str]] = []
    for key, t in wb.models[model].output_spec().items():
        if isinstance(t, types.MulticlassPreds):
            out.append((f"predicted class ({key})", f"pred:{key}"))
        elif isinstance(t, types.RegressionScore):
            out.append((f"predicted score ({key})", f"pred:{key}"))
    for key, t in wb.datasets[dataset].spec().items():
        if isinstance(t, types.CategoryLabel | types.Scalar | types.Boolean):
            out.append((key, f"data:{key}"))
    return out


def projection_config(model: str, field: str) -> dict[str, Any]:
    """The projector config: 2-D, seed 0, keyed by the model's workbench name."""
    return {"field_name": field, "model_name": model, "proj_kw": {"n_components": 2, "seed": 0}}


def project(wb: Any, state: SessionState, model: str, method: str, field: str,
            progress: Any = None) -> tuple[list[str], np.ndarray]:
    """The session's examples (dataset + added) projected to 2-D.

    Returns:
      (example ids ``<str>[n]``, coordinates ``<float>[n, 2]``), in `base.dataset_rows` order.
    """
    rows = base.dataset_rows(wb, state)
    if not rows:
        raise ValueError(f"dataset {state.dataset!r} has no examples to project")
    out = wb.interpret(method, model, state.dataset, [ex for _, ex, _ in rows],
                       projection_config(model, field), progress=progress)
    z = np.asarray([np.asarray(o["z"], dtype=np.float64).reshape(-1)[:2] for o in out])
    return [i for i, _, _ in rows], z


def colour_values(wb: Any, state: SessionState, model: str, key: str | None) -> list[Any]:
    """The value each example is coloured by (None: no colour field)."""
    rows = base.dataset_rows(wb, state)
    if not key:
        return [None] * len(rows)
    kind, _, field = key.partition(":")
    if kind == "pred":
        spec = wb.models[model].output_spec()[field]
        outs = wb.predict(model, state.dataset, [ex for _, ex, _ in rows])
        if isinstance(spec, types.MulticlassPreds):
            return [spec.vocab[int(np.argmax(o[field]))] if spec.vocab else
                    int(np.argmax(o[field])) for o in outs]
        return [float(np.asarray(o[field]).reshape(-1)[0]) for o in outs]
    return [ex.get(field) for _, ex, _ in rows]


def render_module(wb: Any, state: SessionState, *, run: bool = False, progress: Any = None
                  ) -> dict[str, Any]:
    """Everything the module draws: info, plot HTML, and the choices of its three pickers."""
    v = interp_common.view(state, NAME, **DEFAULTS)
    model = interp_common.pick_model(wb, state, interp_common.projectors)
    empty = {"info": "No loaded model has an Embeddings output for this dataset.",
             "plot": plots.empty("No model with embeddings."), "methods": [], "fields": [],
             "colours": []}
    if model is None:
        return empty
    methods = interp_common.projectors(wb, model, state.dataset)
    fields = embedding_fields(wb, model)
    cols = colour_fields(wb, model, state.dataset)
    v["method"] = v["method"] if v["method"] in methods else methods[0]
    v["field"] = v["field"] if v["field"] in fields else fields[0]
    if v["color"] not in [c for _, c in cols]:
        v["color"] = cols[0][1] if cols else None
    out = {"methods": [(LABELS.get(m, m), m) for m in methods], "fields": fields,
           "colours": cols}
    if run:
        v["shown"] = True
    if not v["shown"]:
        out["info"] = render.md("**{}** · press **Project** to fit {} on the {} embeddings "
                                "({}).", model, LABELS.get(v["method"], ""), state.dataset,
                                v["field"])
        out["plot"] = plots.empty("No projection yet: press Project.")
        return out
    ids, z = project(wb, state, model, v["method"], v["field"], progress=progress)
    values = colour_values(wb, state, model, v["color"])
    rows = base.dataset_rows(wb, state)
    colour_label = next((lab for lab, c in cols if c == v["color"]), "")
    points, key_text = [], text_field(wb, state.dataset)
    for n, ((i, ex, _), val, (x, y)) in enumerate(zip(rows, values, z[:, :2].tolist(),
                                                      strict=True)):
        text = caption(ex, key_text)
        points.append({"id": i, "x": x, "y": y,
                       "hover": [f"#{n}" + (f" {text}" if text else ""),
                                 *([f"{colour_label}: {val}"] if val is not None else [])]})
    method = LABELS.get(v["method"], v["method"])
    out["plot"] = plots.scatter(
        points, x_title=f"{method} 1", y_title=f"{method} 2",
        title=f"{method} of {v['field']} ({len(ids)} examples)",
        colour_values=values if v["color"] else None, colour_title=colour_label,
        selected=state.selected_ids, primary=state.primary_id,
        dragmode=DRAGMODES.get(v["mode"], "select"), height=460, axes=False,
        view=f"embeddings:{model}:{v['method']}:{v['field']}:{len(ids)}")
    out["info"] = render.md("**{}** · {} of {} · {} points coloured by {} · {} selected "
                            "(click a point, drag a {}; shift adds)", model,
                            LABELS.get(v["method"], v["method"]), v["field"], len(ids),
                            colour_label or "nothing", len(state.selected_ids),
                            "lasso" if v["mode"] == "lasso" else "box")
    return out


def select_ids(state: SessionState, ids: Sequence[str], known: Sequence[str], *,
               add: bool = False) -> list[str]:
    """Applies a click / box / lasso selection to the session; returns the new selection."""
    chosen, _, _ = plots.picked({"ids": list(ids)}, known)
    return plots.select(state, chosen, add=add)


def build(ctx: base.Context) -> base.Module:
    """Draws the projector and wires its pickers, "Project" and point selection."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-embeddings") as container:
        info = base.markdown("", elem_id="pl-emb-info")
        with gr.Row():
            method = gr.Radio([], label="Projection", scale=1, elem_id="pl-emb-method")
            field = gr.Dropdown([], label="Embedding field", scale=1, elem_id="pl-emb-field")
            colour = gr.Dropdown([], label="Colour by", scale=1, elem_id="pl-emb-colour")
            mode = gr.Radio([("Box", "box"), ("Lasso", "lasso")], value="box",
                            label="Drag to select", scale=1, elem_id="pl-emb-mode")
        project_btn = gr.Button("Project", variant="primary", elem_id="pl-emb-project")
        with plots.plot_host("pl-emb-plot") as host:
            plot = gr.Plot(plots.empty("No projection yet: press Project."), show_label=False,
                           elem_id="pl-emb-chart")

    outputs = [info, plot, method, field, colour]

    def draw(state: SessionState, run: bool = False, progress: Any = None) -> list[Any]:
        r = render_module(wb, state, run=run, progress=progress)
        v = interp_common.view(state, NAME, **DEFAULTS)
        return [r["info"], r["plot"],
                gr.update(choices=r["methods"], value=v["method"] if r["methods"] else None),
                gr.update(choices=r["fields"], value=v["field"] if r["fields"] else None),
                gr.update(choices=r["colours"], value=v["color"] if r["colours"] else None)]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]

        def settings(state: SessionState, m: str | None, f: str | None, c: str | None,
                     md: str | None) -> dict[str, Any]:
            v = interp_common.view(state, NAME, **DEFAULTS)
            v.update({k: val for k, val in (("method", m), ("field", f), ("color", c),
                                            ("mode", md)) if val})
            return v

        @base.guard(len(outs))
        def on_project(state: SessionState, m: str, f: str, c: str, md: str,
                       progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            v = settings(state, m, f, c, md)
            updates = draw(state, run=True, progress=base.progress_adapter(progress))
            return (state, *updates, base.ok(f"projected {state.dataset} with "
                                             f"{LABELS.get(v['method'], v['method'])}"))

        inputs = [ctx.state, method, field, colour, mode]
        project_btn.click(on_project, inputs, outs, api_visibility="private",
                          concurrency_id="model", concurrency_limit=1)

        @base.guard(len(outs))
        def on_setting(state: SessionState, m: str, f: str, c: str, md: str) -> Any:
            settings(state, m, f, c, md)
            return (state, *draw(state), "")

        for comp in (method, field, colour, mode):
            comp.input(on_setting, inputs, outs, api_visibility="private", concurrency_id="model",
                       concurrency_limit=1)

        all_outs = [ctx.state, *ctx.refresh_outputs(), ctx.footer]

        @base.guard(len(all_outs))
        def on_pick(state: SessionState, evt: gr.EventData) -> Any:
            known = [i for i, _, _ in base.dataset_rows(wb, state)]
            ids, add, _ = plots.picked(getattr(evt, "_data", None), known)
            chosen = plots.select(state, ids, add=add)
            n = base.index_of(wb, state, state.primary_id)
            msg = (f"selected example #{n} in the projector" if len(chosen) == 1 else
                   f"selected {len(chosen)} examples in the projector (#{n} shown)")
            return (state, *ctx.refresh(state), base.ok(msg))

        host.click(on_pick, [ctx.state], all_outs, api_visibility="private",
                   concurrency_id="model", concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
