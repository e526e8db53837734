"""Driving promptlit's Plotly charts (``gr.Plot``, see promptlit/ui/plots.py) in a real browser.

A chart is found by its ``gr.Plot`` elem_id (e.g. ``pl-scalars-a``); what it shows is read from
Plotly's own graph div (``gd.data``, ``gd.layout``), and mouse positions come from Plotly's axis
conversions, so the tests drag and click exactly where the points are.
"""

from __future__ import annotations

import math
from typing import Any

GD = "document.querySelector('#' + id + ' .js-plotly-plot')"


def wait_chart(page: Any, plot_id: str, points: int | None = None, timeout: int = 300_000
               ) -> None:
    """Waits until chart ``plot_id`` is drawn (with ``points`` points in all, when given)."""
    page.wait_for_function(
        f"([id, n]) => {{ const gd = {GD}; if (!gd || !gd._fullLayout || !gd.data) return false;"
        " const total = gd.data.reduce((s, t) => s + ((t.customdata || []).length), 0);"
        " return n === null ? true : total === n; }",
        arg=[plot_id, points], timeout=timeout)


def chart(page: Any, plot_id: str) -> dict[str, Any]:
    """What the chart shows: its traces (name, type, x, y, ids, selected ids) and layout bits."""
    return page.evaluate(
        f"""id => {{ const gd = {GD}; return {{
          traces: gd.data.map(t => ({{name: t.name, type: t.type, x: t.x, y: t.y,
            ids: (t.customdata || []).map(c => c[0]),
            hover: (t.customdata || []).map(c => c[1]),
            selected: t.selectedpoints ? Array.from(t.selectedpoints).map(k => t.customdata[k][0])
                                       : null}})),
          dragmode: gd.layout.dragmode, title: (gd.layout.title || {{}}).text,
          xrange: gd._fullLayout.xaxis.range.slice(), yrange: gd._fullLayout.yaxis.range.slice(),
          shapes: (gd.layout.shapes || []).map(s => ({{x0: s.x0, x1: s.x1}})),
          annotations: (gd.layout.annotations || []).map(a => a.text)}}; }}""", plot_id)


def selected_ids(page: Any, plot_id: str) -> list[str]:
    """The example ids the chart draws as selected."""
    return [i for t in chart(page, plot_id)["traces"] for i in (t["selected"] or [])]


def to_page(page: Any, plot_id: str, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of data point (x, y) of the chart."""
    return tuple(page.evaluate(
        f"""([id, x, y]) => {{ const gd = {GD}, r = gd.getBoundingClientRect(), L = gd._fullLayout;
          return [r.left + L.xaxis._offset + L.xaxis.l2p(x), r.top + L.yaxis._offset + L.yaxis.l2p(y)]; }}""",
        [plot_id, x, y]))


def plot_area(page: Any, plot_id: str) -> dict[str, float]:
    """The page box of the chart's plotting area (where drags select)."""
    return page.locator(f"#{plot_id} .nsewdrag").first.bounding_box()


def points(page: Any, plot_id: str) -> list[tuple[str, float, float]]:
    """Every point as ``(id, x, y)`` in data coordinates."""
    return [(i, x, y) for t in chart(page, plot_id)["traces"]
            for i, x, y in zip(t["ids"], t["x"], t["y"], strict=True) if i is not None]


def drag(page: Any, path: list[tuple[float, float]], *, shift: bool = False) -> None:
    """Presses the mouse at the first page point, moves through the others, releases."""
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(*path[0])
    page.mouse.down()
    for p in path[1:]:
        page.mouse.move(*p, steps=4)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def box_drag(page: Any, plot_id: str, fx0: float, fy0: float, fx1: float, fy1: float, *,
             shift: bool = False) -> tuple[float, float, float, float]:
    """Drags a box between fractions of the plotting area (0, 0 = top left); returns it in page
    coordinates ``(left, top, right, bottom)``."""
    box = plot_area(page, plot_id)
    a = (box["x"] + fx0 * box["width"], box["y"] + fy0 * box["height"])
    b = (box["x"] + fx1 * box["width"], box["y"] + fy1 * box["height"])
    drag(page, [a, ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), b], shift=shift)
    return min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])


def on_page(page: Any, plot_id: str) -> list[tuple[str, float, float]]:
    """Every point as ``(id, page x, page y)``."""
    return [(str(p[0]), float(p[1]), float(p[2])) for p in page.evaluate(
        f"""id => {{ const gd = {GD}, r = gd.getBoundingClientRect(), L = gd._fullLayout;
          return gd.data.flatMap(t => (t.customdata || []).map((c, k) =>
            [c[0], r.left + L.xaxis._offset + L.xaxis.l2p(t.x[k]),
             r.top + L.yaxis._offset + L.yaxis.l2p(t.y[k])]).filter(p => p[0] !== null)); }}""",
        plot_id)]


def in_box(page: Any, plot_id: str, box: tuple[float, float, float, float],
           pad: float = 0.0) -> set[str]:
    """Ids of the points within a page box grown by ``pad`` pixels (shrunk if negative)."""
    left, top, right, bottom = box
    return {i for i, x, y in on_page(page, plot_id)
            if left - pad <= x <= right + pad and top - pad <= y <= bottom + pad}


def circle(cx: float, cy: float, r: float, n: int = 16) -> list[tuple[float, float]]:
    """A closed polygon around a page point (for a lasso)."""
    return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n))
            for k in range(n + 1)]


def isolated_point(page: Any, plot_id: str) -> tuple[str, float, float]:
    """The point farthest from its nearest neighbour on screen: ``(id, page x, page y)`` (a
    click there hits that point and no other)."""
    placed = on_page(page, plot_id)
    box = plot_area(page, plot_id)
    inside = [p for p in placed if box["x"] + 10 < p[1] < box["x"] + box["width"] - 10
              and box["y"] + 10 < p[2] < box["y"] + box["height"] - 10]

    def gap(p: tuple[str, float, float]) -> float:
        return min((math.dist(p[1:], q[1:]) for q in placed if q is not p), default=1e9)

    return max(inside, key=gap)


def hover_text(page: Any, plot_id: str, px: float, py: float) -> str:
    """Moves the mouse to a page point; returns the chart's hover label text."""
    page.mouse.move(px, py)
    page.wait_for_function(
        "id => document.querySelector('#' + id + ' .hoverlayer .hovertext') !== null",
        arg=plot_id, timeout=10_000)
    return page.evaluate(
        "id => [...document.querySelectorAll('#' + id + ' .hoverlayer .hovertext')]"
        ".map(e => e.textContent).join(' | ')", plot_id)
