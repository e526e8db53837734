"""Embeddings projector: a 2-D map of the dataset in a model's embedding space.

Pick a projector (PCA or UMAP: registered interpreters whose meta_spec is an `Embeddings`), an
`Embeddings` output field of the model (e.g. "cls_emb") and a field to colour by (a dataset
field or the model's prediction). "Project" fits the projector once on the whole dataset
through the Workbench's cached ``interpret`` (`promptlit.components.projection` keeps the
fitted projector, so examples added in this session are placed into the same space without a
refit). Click a point to select it; drag a box (or, in lasso mode, draw around points) to select
many; shift adds to the selection. The selection is the session's: every module follows it.
"""

from __future__ import annotations

import colorsys
import json
from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np

from promptlit.api import types
from promptlit.lib.utils import find_spec_keys
from promptlit.ui import render
from promptlit.ui.modules import base, interp_common
from promptlit.ui.state import SessionState

NAME = "embeddings"
LABELS = {"pca": "PCA", "umap": "UMAP"}
DEFAULTS = {"method": None, "field": None, "color": None, "mode": "box", "shown": False}
WIDTH, HEIGHT, MARGIN = 720, 440, 24
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]

# Click a point: select it (shift: add). Drag on the background: box (or lasso) selection.
# Hit-testing uses the points' on-screen positions, so it is right whatever the SVG's scale.
SELECT_JS = """
let drag = null;
const overlay = () => element.querySelector('svg.pl-scatter-overlay');
const wrap = () => element.querySelector('.pl-scatter-wrap');
function local(e) { const r = wrap().getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
function inside(poly, x, y) {
  let hit = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if (((yi > y) !== (yj > y)) && (x < (xj - xi) * (y - yi) / (yj - yi) + xi)) hit = !hit;
  }
  return hit;
}
element.addEventListener('click', (e) => {
  const dot = e.target.closest('circle[data-id]');
  if (!dot || !element.contains(dot)) return;
  trigger('click', {ids: [dot.dataset.id], add: !!e.shiftKey});
});
element.addEventListener('mousedown', (e) => {
  if (!wrap() || !wrap().contains(e.target) || e.target.closest('circle[data-id]')) return;
  e.preventDefault();
  drag = {mode: wrap().dataset.mode || 'box', pts: [local(e)], shift: !!e.shiftKey};
});
element.addEventListener('mousemove', (e) => {
  if (!drag) return;
  const p = local(e);
  if (drag.mode === 'lasso') drag.pts.push(p); else drag.pts = [drag.pts[0], p];
  const o = overlay();
  if (!o) return;
  let pts = drag.pts;
  if (drag.mode !== 'lasso') {
    const [[x0, y0], [x1, y1]] = pts;
    pts = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
  }
  o.innerHTML = '<polygon points="' + pts.map(q => q.join(',')).join(' ') +
    '" fill="rgba(33,102,172,0.12)" stroke="#2166ac" stroke-dasharray="4 3"></polygon>';
});
window.addEventListener('mouseup', (e) => {
  if (!drag) return;
  const d = drag; drag = null;
  if (overlay()) overlay().innerHTML = '';
  let poly = d.pts;
  if (d.mode !== 'lasso') {
    if (poly.length < 2) return;
    const [[x0, y0], [x1, y1]] = poly;
    if (Math.abs(x1 - x0) < 4 && Math.abs(y1 - y0) < 4) return;
    poly = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
  } else if (poly.length < 3) return;
  const r = wrap().getBoundingClientRect();
  const ids = [];
  element.querySelectorAll('circle[data-id]').forEach((c) => {
    const b = c.getBoundingClientRect();
    if (inside(poly, b.left + b.width / 2 - r.left, b.top + b.height / 2 - r.top)) ids.push(c.dataset.id);
  });
  if (ids.length) trigger('click', {ids: ids, add: d.shift});
});
"""


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


def _numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                 for v in present) and len(set(present)) > 10


def _ramp(t: float) -> str:
    """A blue -> yellow ramp (viridis-like) for t in [0, 1]."""
    h = 0.66 - 0.5 * float(np.clip(t, 0, 1))
    r, g, b = colorsys.hls_to_rgb(h, 0.45 + 0.1 * t, 0.7)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def colours(values: Sequence[Any]) -> tuple[list[str], str]:
    """(a CSS colour per value, legend HTML): a ramp for many numbers, a palette otherwise."""
    if all(v is None for v in values):
        return ["#4c78a8"] * len(values), ""
    if _numeric(values):
        arr = np.asarray([np.nan if v is None else float(v) for v in values])
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        span = hi - lo if hi > lo else 1.0
        cols = ["#bbbbbb" if np.isnan(x) else _ramp((x - lo) / span) for x in arr]
        legend = (f'<span>{lo:.4g}</span><span class="pl-bar" style="display:inline-block;'
                  f'width:120px;height:10px;background:linear-gradient(to right,{_ramp(0)},'
                  f'{_ramp(0.5)},{_ramp(1)})"></span><span>{hi:.4g}</span>')
        return cols, legend
    cats = sorted({str(v) for v in values}, key=lambda s: (s == "None", s))
    index = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cats)}
    legend = " ".join(f'<span style="white-space:nowrap"><span style="display:inline-block;'
                      f'width:10px;height:10px;border-radius:5px;background:{index[c]}">'
                      f"</span> {render.escape_text(c)}</span>" for c in cats[:20])
    return [index[str(v)] for v in values], legend


def scatter_html(ids: Sequence[str], z: np.ndarray, cols: Sequence[str],
                 tips: Sequence[str], *, selected: Sequence[str] = (),
                 primary: str | None = None, mode: str = "box", legend: str = "",
                 attrs: dict[str, Any] | None = None) -> str:
    """An SVG scatter of ``z`` (``<float>[n, 2]``): one ``circle[data-id]`` per example.

    Selected points are outlined and drawn on top; the primary one is larger. ``attrs`` become
    ``data-*`` attributes of the wrapper (what the plot shows, for readers and tests).
    """
    z = np.asarray(z, dtype=np.float64).reshape(len(ids), -1)
    lo, hi = z[:, :2].min(axis=0), z[:, :2].max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    xy = (z[:, :2] - lo) / span
    px = MARGIN + xy[:, 0] * (WIDTH - 2 * MARGIN)
    py = HEIGHT - MARGIN - xy[:, 1] * (HEIGHT - 2 * MARGIN)
    sel = set(selected)
    order = sorted(range(len(ids)), key=lambda i: (ids[i] in sel, ids[i] == primary))
    dots = []
    for i in order:
        i_sel, i_pri = ids[i] in sel, ids[i] == primary
        r = 7 if i_pri else (5 if i_sel else 3.5)
        stroke = ' stroke="#000" stroke-width="2"' if i_sel else ' stroke="#fff" stroke-width="0.5"'
        cls = "pl-dot pl-dot-selected" if i_sel else "pl-dot"
        dots.append(f'<circle class="{cls}" data-id="{render.escape_text(ids[i])}" '
                    f'cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="{r}" fill="{cols[i]}"{stroke} '
                    f'style="cursor:pointer"><title>{render.escape_text(tips[i])}</title>'
                    "</circle>")
    data = "".join(f' data-{k}="{render.escape_text(str(v))}"' for k, v in (attrs or {}).items())
    return (f'<div class="pl-legend">{legend}</div>'
            f'<div class="pl-scatter-wrap" data-mode="{render.escape_text(mode)}"{data} '
            f'style="position:relative;width:{WIDTH}px;max-width:100%;user-select:none">'
            f'<svg class="pl-scatter" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" style="border:1px solid #ddd;background:#fff;display:block">'
            + "".join(dots) +
            '</svg><svg class="pl-scatter-overlay" style="position:absolute;left:0;top:0;'
            'width:100%;height:100%;pointer-events:none"></svg></div>')


def render_module(wb: Any, state: SessionState, *, run: bool = False, progress: Any = None
                  ) -> dict[str, Any]:
    """Everything the module draws: info, plot HTML, and the choices of its three pickers."""
    v = interp_common.view(state, NAME, **DEFAULTS)
    model = interp_common.pick_model(wb, state, interp_common.projectors)
    empty = {"info": "No loaded model has an Embeddings output for this dataset.", "plot": "",
             "methods": [], "fields": [], "colours": []}
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
        out["plot"] = '<div class="pl-empty">No projection yet.</div>'
        return out
    ids, z = project(wb, state, model, v["method"], v["field"], progress=progress)
    values = colour_values(wb, state, model, v["color"])
    point_colours, legend = colours(values)
    rows = base.dataset_rows(wb, state)
    text_keys = [k for k, t in wb.datasets[state.dataset].spec().items()
                 if isinstance(t, types.TextSegment)]
    tips = []
    for n, ((_, ex, _), val) in enumerate(zip(rows, values, strict=True)):
        text = base.short(ex.get(text_keys[0], ""), 80) if text_keys else ""
        tips.append(f"#{n} {text}" + (f" · {val}" if val is not None else ""))
    colour_label = next((lab for lab, c in cols if c == v["color"]), "")
    out["plot"] = scatter_html(ids, z, point_colours, tips, selected=state.selected_ids,
                               primary=state.primary_id, mode=v["mode"], legend=legend,
                               attrs={"method": v["method"], "field": v["field"],
                                      "color": v["color"] or "", "points": len(ids)})
    out["info"] = render.md("**{}** · {} of {} · {} points coloured by {} · {} selected "
                            "(click a point, drag a {}; shift adds)", model,
                            LABELS.get(v["method"], v["method"]), v["field"], len(ids),
                            colour_label or "nothing", len(state.selected_ids),
                            "lasso" if v["mode"] == "lasso" else "box")
    return out


def select_ids(state: SessionState, ids: Sequence[str], known: Sequence[str], *,
               add: bool = False) -> list[str]:
    """Applies a click / box / lasso selection to the session; returns the new selection."""
    ids = [i for i in dict.fromkeys(ids) if i in set(known)]
    if not ids:
        raise ValueError("no examples in that selection")
    if len(ids) == 1:
        state.select_example(ids[0], add=add)
        return list(state.selected_ids)
    state.select_examples([*state.selected_ids, *ids] if add else ids)
    return list(state.selected_ids)


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
        plot = gr.HTML('<div class="pl-empty">No projection yet.</div>',
                       elem_id="pl-emb-plot", js_on_load=SELECT_JS)

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
            data = getattr(evt, "_data", None) or {}
            ids = data.get("ids") or []
            if isinstance(ids, str):
                ids = json.loads(ids)
            known = [i for i, _, _ in base.dataset_rows(wb, state)]
            chosen = select_ids(state, [str(i) for i in ids], known, add=bool(data.get("add")))
            n = base.index_of(wb, state, state.primary_id)
            msg = (f"selected example #{n} in the projector" if len(chosen) == 1 else
                   f"selected {len(chosen)} examples in the projector (#{n} shown)")
            return (state, *ctx.refresh(state), base.ok(msg))

        plot.click(on_pick, [ctx.state], all_outs, api_visibility="private", concurrency_id="model",
                   concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
