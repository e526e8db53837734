"""Interactive charts for the UI: Plotly figures drawn by Gradio's ``gr.Plot``.

Why Plotly (and not ``gr.ScatterPlot`` / ``gr.LinePlot``): Gradio's native plots select an
x-interval only, report no point ids and have no lasso; Plotly has box and lasso selection of
points (with their ids), hover read-outs, wheel / box zoom and pan, and Gradio already ships
Plotly.js for ``gr.Plot``, so promptlit needs no plotting package: it writes the figure JSON
itself (`figure`).

``gr.Plot`` has no selection event, so a selectable chart sits inside a `plot_host` (a
``gr.HTML`` whose children are the plots): its script (`BRIDGE_JS`) listens to Plotly's
``plotly_click`` and ``plotly_selected`` on every chart inside it and triggers the host's
``click`` event with ``{"ids": [...], "add": shift, "how": "click"|"box"|"lasso"}``; the
example ids ride on each point as ``customdata[0]``. It also keeps the user's zoom (and drag
mode) when a chart is redrawn with the same axes (same ``layout.meta.view``), e.g. after a
selection.

Text is text: Plotly renders a subset of HTML in titles, legend names, tick labels and hover
labels (``<b>``, ``<br>``, ``<a href>``...), so every string that reaches a figure goes through
`text`, which escapes ``&``, ``<`` and ``>`` (Plotly decodes those entities back to the
characters, so the label reads exactly as typed). Hover labels join escaped lines with ``<br>``.

Example:
    >>> fig = scatter([{"id": "a", "x": 0.2, "y": 1.0, "hover": ["<b>x</b>"]}],
    ...               x_title="score", y_title="label")
    >>> spec = json.loads(fig.plot)
    >>> spec["data"][0]["customdata"][0][0], spec["data"][0]["customdata"][0][1]
    ('a', '&lt;b&gt;x&lt;/b&gt;')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
"""Category colours (Tableau 10); further categories share `OTHER_COLOUR`."""

OTHER_COLOUR = "#999999"
MISSING_COLOUR = "#cccccc"
HIGHLIGHT = "#d62728"
WEBGL_ABOVE = 5000
"""Scatter plots with more points than this draw with WebGL (``scattergl``)."""

CONFIG = {"displaylogo": False, "scrollZoom": True, "doubleClick": "reset",
          "modeBarButtonsToRemove": ["autoScale2d", "toImage"]}
FONT = {"size": 12}

# Plotly selections and clicks -> the host's `click` event (see the module docstring).
BRIDGE_JS = r"""
const views = {};
const hooked = new WeakMap();
let shift = false;
element.addEventListener('mousedown', (e) => { shift = !!e.shiftKey; }, true);
const plotId = (gd) => { const b = gd.parentElement && gd.parentElement.closest('[id]'); return b ? b.id : ''; };
const idsOf = (points) => [...new Set((points || []).filter((p) => p.customdata && p.customdata[0] != null)
  .map((p) => String(p.customdata[0])))];
function restore(gd) {
  const saved = views[plotId(gd)], meta = (gd.layout && gd.layout.meta) || {};
  if (!saved || saved.view !== meta.view || !window.Plotly || !gd._fullLayout) return;
  const update = Object.assign({}, saved.ranges);
  if (saved.drag && saved.pyDrag === (gd.layout && gd.layout.dragmode)) update.dragmode = saved.drag;
  if (Object.keys(update).length) window.Plotly.relayout(gd, update);
}
function hook(gd) {
  if (!gd.on || hooked.get(gd) === gd._ev) return;
  hooked.set(gd, gd._ev);
  const id = plotId(gd), meta = (gd.layout && gd.layout.meta) || {}, pyDrag = gd.layout && gd.layout.dragmode;
  gd.on('plotly_click', (d) => {
    const ids = idsOf(d && d.points ? d.points.slice(0, 1) : []);
    if (ids.length) trigger('click', {ids: ids, add: !!(d.event && d.event.shiftKey), how: 'click', plot: id});
  });
  gd.on('plotly_selected', (d) => {
    const ids = idsOf(d && d.points);
    if (ids.length) trigger('click', {ids: ids, add: shift, how: d.lassoPoints ? 'lasso' : 'box', plot: id});
  });
  gd.on('plotly_relayout', (ev) => {
    if (!ev) return;
    let v = views[id];
    if (!v || v.view !== meta.view) v = views[id] = {view: meta.view, ranges: {}, drag: null, pyDrag: pyDrag};
    for (const [k, val] of Object.entries(ev)) {
      if (/^[xy]axis\d*\.range(\[[01]\])?$/.test(k)) v.ranges[k] = val;
      else if (/^[xy]axis\d*\.autorange$/.test(k)) {
        const axis = k.split('.')[0] + '.';
        for (const r of Object.keys(v.ranges)) if (r.startsWith(axis)) delete v.ranges[r];
      } else if (k === 'dragmode') v.drag = val;
    }
  });
  let once = false;
  const again = () => { if (!once) { once = true; restore(gd); } };
  gd.on('plotly_afterplot', again);
  setTimeout(again, 100);
}
const scan = () => element.querySelectorAll('.js-plotly-plot').forEach(hook);
new MutationObserver(scan).observe(element, {childList: true, subtree: true});
scan();
"""


def text(value: Any) -> str:
    """``value`` as inert text for a Plotly label (escapes ``&``, ``<``, ``>``)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def hover(lines: Sequence[Any]) -> str:
    """Hover-label text: each line escaped, joined by line breaks."""
    return "<br>".join(text(line) for line in lines)


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become null; numpy scalars plain Python."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    return value


def figure(data: Sequence[Mapping[str, Any]], layout: Mapping[str, Any]) -> PlotData:
    """A ``gr.Plot`` value: Plotly traces and layout as JSON (no plotting package needed)."""
    base = {"hovermode": "closest", "font": FONT, "height": 360,
            "margin": {"l": 64, "r": 16, "t": 40, "b": 56}, "plot_bgcolor": "#fafafa",
            "legend": {"font": {"size": 11}}}
    spec = {"data": _clean(list(data)), "layout": _clean({**base, **layout}), "config": CONFIG}
    return PlotData(type="plotly", plot=json.dumps(spec, allow_nan=False))


def spec_of(value: Any) -> dict[str, Any]:
    """The figure dict of a `figure` value (for tests and readers)."""
    return json.loads(value.plot)


def empty(message: str, *, height: int = 200) -> PlotData:
    """A blank chart that says ``message``."""
    return figure([], {"height": height, "xaxis": {"visible": False},
                       "yaxis": {"visible": False}, "plot_bgcolor": "#ffffff",
                       "annotations": [{"text": text(message), "showarrow": False,
                                        "xref": "paper", "yref": "paper", "x": 0.5,
                                        "y": 0.5}]})


def plot_host(elem_id: str) -> gr.HTML:
    """A ``gr.HTML`` to hold selectable ``gr.Plot`` children (``with plot_host(...):``); its
    ``click`` event carries ``{"ids", "add", "how", "plot"}`` (see `BRIDGE_JS`)."""
    return gr.HTML("", html_template="@children", js_on_load=BRIDGE_JS, elem_id=elem_id,
                   padding=False, container=False)


def is_numeric(values: Sequence[Any]) -> bool:
    """Whether values are numbers (not bools) with more than 10 distinct ones (a colour scale);
    None counts as missing."""
    present = [v for v in values if v is not None]
    return (bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                  and math.isfinite(float(v)) for v in present)
            and len({float(v) for v in present}) > 10)


def categories(values: Sequence[Any]) -> tuple[list[str], dict[str, str]]:
    """(each value's category name, ``{category: colour}``): the first 10 categories in order
    of appearance get `PALETTE`; the rest share one "other" category."""
    names = [("(none)" if v is None else str(v)) for v in values]
    order = list(dict.fromkeys(names))
    kept = order[:len(PALETTE)]
    colours = {c: PALETTE[i] for i, c in enumerate(kept)}
    if len(order) > len(kept):
        other = f"other ({len(order) - len(kept)} more)"
        colours[other] = OTHER_COLOUR
        names = [n if n in colours else other for n in names]
    return names, colours


def scatter(points: Sequence[Mapping[str, Any]], *, x_title: str, y_title: str,
            title: str = "", colour_values: Sequence[Any] | None = None, colour_title: str = "",
            selected: Sequence[str] = (), primary: str | None = None,
            y_categories: Sequence[str] | None = None,
            x_range: tuple[float, float] | None = None,
            vlines: Sequence[tuple[float, str]] = (), diagonal: bool = False,
            dragmode: str = "select", view: str = "", height: int = 380,
            axes: bool = True) -> PlotData:
    """A scatter plot whose points carry their example id (click, box or lasso selects).

    Args:
      points: ``{"id", "x", "y", "hover": [lines]}``; with ``y_categories``, ``y`` is the
        category's index (jittered by the caller if wanted).
      x_title, y_title, title, colour_title: axis, chart and colour-legend titles.
      colour_values: a value per point to colour by: numbers (many distinct) get a colour
        scale, anything else a colour per category (`categories`); None: one colour.
      selected: example ids drawn emphasised (the others faded); ``primary`` larger.
      y_categories: names of a categorical y axis, bottom to top.
      x_range: fixed x limits (default: the data's).
      vlines: vertical lines ``(x, label)``, e.g. a decision threshold.
      diagonal: draw y = x (predictions against targets).
      dragmode: "select" (box), "lasso", "zoom" or "pan" to start with.
      view: names what the axes show; the user's zoom survives redraws with the same ``view``.
      axes: show axis ticks and titles (off for a projection, whose axes mean nothing).
    """
    sel = set(selected)
    order = sorted(range(len(points)), key=lambda i: (points[i]["id"] in sel,
                                                      points[i]["id"] == primary))
    values = list(colour_values) if colour_values is not None else None
    groups: list[tuple[str, list[int], dict[str, Any]]] = []
    if values is not None and is_numeric(values):
        nums = [i for i in order if values[i] is not None]
        missing = [i for i in order if values[i] is None]
        present = [float(values[i]) for i in nums]
        groups.append(("", nums, {"color": present, "colorscale": "Viridis", "showscale": True,
                                  "cmin": min(present), "cmax": max(present),
                                  "colorbar": {"title": {"text": text(colour_title)},
                                               "thickness": 12}}))
        if missing:
            groups.append(("(none)", missing, {"color": MISSING_COLOUR}))
    elif values is not None:
        names, colours = categories(values)
        for name, colour in colours.items():
            members = [i for i in order if names[i] == name]
            if members:
                groups.append((name, members, {"color": colour}))
    else:
        groups.append(("", order, {"color": PALETTE[0]}))
    kind = "scattergl" if len(points) > WEBGL_ABOVE else "scatter"
    data = []
    for name, members, marker in groups:
        is_sel = [points[i]["id"] in sel for i in members]
        data.append({
            "type": kind, "mode": "markers", "name": text(name), "showlegend": bool(name),
            "x": [points[i]["x"] for i in members], "y": [points[i]["y"] for i in members],
            "customdata": [[str(points[i]["id"]), hover(points[i].get("hover", ()))]
                           for i in members],
            "hovertemplate": "%{customdata[1]}<extra></extra>",
            "marker": {**marker, "opacity": 0.85,
                       "size": [11 if points[i]["id"] == primary else 8 if s else 6
                                for i, s in zip(members, is_sel, strict=True)],
                       "line": {"width": [2 if s else 0.5 for s in is_sel],
                                "color": ["#111111" if s else "#ffffff" for s in is_sel]}},
            "selectedpoints": [k for k, s in enumerate(is_sel) if s] if sel else None,
            "selected": {"marker": {"opacity": 1}},
            "unselected": {"marker": {"opacity": 0.35}},
        })
    xaxis: dict[str, Any] = {"title": {"text": text(x_title)}, "zeroline": False}
    yaxis: dict[str, Any] = {"title": {"text": text(y_title)}, "zeroline": False}
    if x_range is not None:
        xaxis["range"] = list(x_range)
    if y_categories:
        yaxis.update(tickmode="array", tickvals=list(range(len(y_categories))),
                     ticktext=[text(c) for c in y_categories],
                     range=[-0.5, len(y_categories) - 0.5])
    if not axes:
        for axis in (xaxis, yaxis):
            axis.update(showticklabels=False, showgrid=False)
    shapes, notes = [], []
    for x, label in vlines:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                       "y0": 0, "y1": 1, "line": {"color": HIGHLIGHT, "width": 1.5}})
        notes.append({"x": x, "y": 1, "xref": "x", "yref": "paper", "text": text(label),
                      "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                      "font": {"color": HIGHLIGHT, "size": 11}})
    if diagonal and points:
        xs = [float(p["x"]) for p in points] + [float(p["y"]) for p in points]
        lo, hi = min(xs), max(xs)
        shapes.append({"type": "line", "x0": lo, "y0": lo, "x1": hi, "y1": hi,
                       "line": {"color": "#999999", "dash": "dash", "width": 1}})
    return figure(data, {
        "title": {"text": text(title), "x": 0.01}, "xaxis": xaxis, "yaxis": yaxis,
        "dragmode": dragmode, "shapes": shapes, "annotations": notes, "height": height,
        "meta": {"view": view}, "showlegend": any(d["showlegend"] for d in data),
        "legend": {"title": {"text": text(colour_title)}, "font": {"size": 11}},
    })


def curves(series: Sequence[Mapping[str, Any]], *, x_title: str, y_title: str,
           title: str = "", marks: Sequence[Mapping[str, Any]] = (), diagonal: bool = False,
           view: str = "", height: int = 340) -> PlotData:
    """Line curves on [0, 1] x [0, 1] (ROC, precision-recall) with hover read-outs.

    Args:
      series: ``{"name", "points": [(x, y)], "colour", "dashed"?, "hover"?: [lines per point]}``.
      marks: points to circle, ``{"x", "y", "colour", "title"}`` (e.g. the current threshold).
      diagonal: draw the chance line y = x.
    """
    data: list[dict[str, Any]] = []
    for s in series:
        pts = list(s["points"])
        tips = s.get("hover") or [[f"{x_title} {x:.3f}", f"{y_title} {y:.3f}"] for x, y in pts]
        data.append({"type": "scatter", "mode": "lines", "name": text(s["name"]),
                     "x": [x for x, _ in pts], "y": [y for _, y in pts],
                     "line": {"color": s["colour"], "width": 2,
                              "dash": "dash" if s.get("dashed") else "solid"},
                     "customdata": [[None, hover([s["name"], *tip])] for tip in tips],
                     "hovertemplate": "%{customdata[1]}<extra></extra>"})
    for m in marks:
        data.append({"type": "scatter", "mode": "markers", "name": text(m["title"]),
                     "showlegend": False, "x": [m["x"]], "y": [m["y"]],
                     "marker": {"size": 12, "color": "rgba(0,0,0,0)",
                                "line": {"color": m["colour"], "width": 2}},
                     "customdata": [[None, hover([m["title"]])]],
                     "hovertemplate": "%{customdata[1]}<extra></extra>"})
    shapes = ([{"type": "line", "x0": 0, "y0": 0, "x1": 1, "y1": 1,
                "line": {"color": "#bbbbbb", "dash": "dot", "width": 1}}] if diagonal else [])
    return figure(data, {
        "title": {"text": text(title), "x": 0.01}, "height": height, "dragmode": "zoom",
        "xaxis": {"title": {"text": text(x_title)}, "range": [-0.02, 1.02]},
        "yaxis": {"title": {"text": text(y_title)}, "range": [-0.02, 1.02]},
        "shapes": shapes, "meta": {"view": view},
        "legend": {"orientation": "h", "y": -0.25, "font": {"size": 11}},
    })


def lines(series: Sequence[Mapping[str, Any]], *, x_title: str, y_title: str,
          title: str = "", categorical: bool = False, vlines: Sequence[tuple[Any, str]] = (),
          view: str = "", height: int = 340) -> PlotData:
    """One line (numbers on x) or one group of bars (categories on x) per series.

    Args:
      series: ``{"name", "x": [...], "y": [...]}``.
      categorical: bars over category names instead of lines over numbers.
      vlines: vertical lines ``(x, label)`` (e.g. the selected example's own value).
    """
    data = []
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        xs = [text(x) for x in s["x"]] if categorical else list(s["x"])
        hovers = [hover([s["name"], f"{x_title} = {x}", f"{y_title} = {y:.4g}"])
                  for x, y in zip(s["x"], s["y"], strict=True)]
        trace: dict[str, Any] = {"type": "bar" if categorical else "scatter",
                                 "name": text(s["name"]), "x": xs, "y": list(s["y"]),
                                 "customdata": [[None, h] for h in hovers],
                                 "hovertemplate": "%{customdata[1]}<extra></extra>"}
        if categorical:
            trace["marker"] = {"color": colour}
        else:
            trace.update(mode="lines+markers", line={"color": colour, "width": 2},
                         marker={"size": 6})
        data.append(trace)
    shapes, notes = [], []
    for x, label in vlines:
        x = text(x) if categorical else x
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                       "y0": 0, "y1": 1, "line": {"color": HIGHLIGHT, "width": 1.5,
                                                  "dash": "dot"}})
        notes.append({"x": x, "y": 1, "xref": "x", "yref": "paper", "text": text(label),
                      "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                      "font": {"color": HIGHLIGHT, "size": 11}})
    return figure(data, {
        "title": {"text": text(title), "x": 0.01}, "height": height, "dragmode": "zoom",
        "barmode": "group", "xaxis": {"title": {"text": text(x_title)},
                                      **({"type": "category"} if categorical else {})},
        "yaxis": {"title": {"text": text(y_title)}}, "shapes": shapes, "annotations": notes,
        "meta": {"view": view}, "legend": {"orientation": "h", "y": -0.25},
    })


def picked(data: Mapping[str, Any] | None, known: Sequence[str]) -> tuple[list[str], bool, str]:
    """The example ids a `plot_host` event picked, checked: ``(ids, add, how)``.

    Only ids of ``known`` examples count (in their order of appearance, once each); a request
    naming more ids than there are examples is refused before any work.

    Raises:
      ValueError: no known example in the pick, or more ids than examples.
    """
    data = data or {}
    raw = data.get("ids") or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise ValueError("a plot selection must be a list of example ids")
    if len(raw) > len(known):
        raise ValueError(f"a plot selection named {len(raw)} examples; the dataset has "
                         f"{len(known)}")
    allowed = set(known)
    ids = [i for i in dict.fromkeys(str(x) for x in raw) if i in allowed]
    if not ids:
        raise ValueError("no examples in that selection (the plot may be out of date: redraw "
                         "it)")
    how = str(data.get("how") or "click")
    return ids, bool(data.get("add")), how if how in ("click", "box", "lasso") else "click"


def select(state: Any, ids: Sequence[str], *, add: bool = False) -> list[str]:
    """Applies picked ``ids`` to the session's selection (shift: ``add``); returns it.

    One id selects that example (or, with ``add``, adds it); several replace the selection
    (or join it), the first becoming the primary example unless one was selected already.
    """
    if len(ids) == 1:
        state.select_example(ids[0], add=add)
    else:
        state.select_examples([*state.selected_ids, *ids] if add else list(ids))
    return list(state.selected_ids)
