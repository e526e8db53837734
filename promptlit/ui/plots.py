"""Small SVG charts for the UI: a clickable scatter plot and line curves (no plotting library).

Points carry ``data-id`` (the example id), so a page script can turn a click into a selection;
the selected points get a dark outline. Colours: categories take `PALETTE` in order, numbers a
light-to-dark blue scale (`colour_scale`).

Example:
    >>> svg = scatter_svg([{"id": "a", "x": 0.2, "y": 1.0}], x_label="score", y_label="label")
    >>> 'data-id="a"' in svg and svg.startswith("<svg")
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from promptlit.ui.render import escape_text

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
"""Category colours (Tableau 10)."""

_W, _H = 640, 360
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 16, 28, 44


def _esc(text: Any) -> str:
    return escape_text(str(text)).replace('"', "&quot;")


def colour_scale(value: float, lo: float, hi: float) -> str:
    """A blue from light (``lo``) to dark (``hi``) for a number."""
    t = 0.5 if hi <= lo else min(max((float(value) - lo) / (hi - lo), 0.0), 1.0)
    r, g, b = (round(a + (z - a) * t) for a, z in ((198, 8), (219, 48), (239, 107)))
    return f"rgb({r},{g},{b})"


def colours_for(values: Sequence[Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """A colour per value, and the legend ``[(label, colour)]``.

    Numbers (not bools) get `colour_scale` with a min / max legend; anything else is a category
    (at most 10 colours; further categories share grey).
    """
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)
               and math.isfinite(float(v))]
    if values and len(numeric) == len(values) and len({float(v) for v in numeric}) > 10:
        lo, hi = min(numeric), max(numeric)
        return ([colour_scale(v, lo, hi) for v in numeric],
                [(f"{lo:.4g}", colour_scale(lo, lo, hi)), (f"{hi:.4g}", colour_scale(hi, lo, hi))])
    cats = list(dict.fromkeys(str(v) for v in values))
    table = {c: PALETTE[i] if i < len(PALETTE) else "#999999" for i, c in enumerate(cats)}
    return [table[str(v)] for v in values], list(table.items())[:len(PALETTE) + 1]


def _scale(v: float, lo: float, hi: float, a: float, b: float) -> float:
    if hi <= lo:
        return (a + b) / 2
    return a + (float(v) - lo) / (hi - lo) * (b - a)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / (n - 1)
    return [lo + i * step for i in range(n)]


def _frame(x_range: tuple[float, float], y_range: tuple[float, float], x_label: str,
           y_label: str, title: str, y_categories: Sequence[str] | None, width: int,
           height: int) -> list[str]:
    x0, x1, y0, y1 = _PAD_L, width - _PAD_R, height - _PAD_B, _PAD_T
    parts = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#fafafa" '
             'stroke="#ccc"/>']
    for t in _ticks(*x_range):
        px = _scale(t, *x_range, x0, x1)
        parts.append(f'<line x1="{px:.1f}" y1="{y0}" x2="{px:.1f}" y2="{y0 + 4}" stroke="#888"/>'
                     f'<text x="{px:.1f}" y="{y0 + 16}" font-size="11" text-anchor="middle">'
                     f'{t:.3g}</text>')
    if y_categories:
        for i, c in enumerate(y_categories):
            py = _scale(i, -0.5, len(y_categories) - 0.5, y0, y1)
            parts.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" font-size="11" text-anchor="end">'
                         f'{_esc(c)[:10]}</text>')
    else:
        for t in _ticks(*y_range):
            py = _scale(t, *y_range, y0, y1)
            parts.append(f'<line x1="{x0 - 4}" y1="{py:.1f}" x2="{x0}" y2="{py:.1f}" '
                         f'stroke="#888"/><text x="{x0 - 6}" y="{py + 4:.1f}" font-size="11" '
                         f'text-anchor="end">{t:.3g}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{height - 8}" font-size="12" '
                 f'text-anchor="middle">{_esc(x_label)}</text>')
    parts.append(f'<text x="14" y="{(y0 + y1) / 2:.0f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(y0 + y1) / 2:.0f})">{_esc(y_label)}</text>')
    if title:
        parts.append(f'<text x="{x0}" y="18" font-size="13" font-weight="bold">'
                     f'{_esc(title)}</text>')
    return parts


def _legend(items: Sequence[tuple[str, str]], width: int) -> str:
    out, x = [], width - _PAD_R
    for label, colour in reversed(list(items)):
        text = _esc(label)[:20]
        x -= 14 + 6 * len(text) + 10
        out.append(f'<circle cx="{x + 5}" cy="14" r="5" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="18" font-size="11">{text}</text>')
    return "".join(out)


def legend_html(items: Sequence[tuple[str, str, bool]]) -> str:
    """An HTML legend for `curves_svg`: ``[(label, colour, dashed)]``."""
    return '<div class="pl-legend">' + "".join(
        f'<span style="margin-right:12px;white-space:nowrap"><span style="display:inline-block;'
        f'width:18px;border-top:3px {"dashed" if dashed else "solid"} {colour};'
        f'vertical-align:middle;margin-right:4px"></span>{_esc(label)}</span>'
        for label, colour, dashed in items) + "</div>"


def scatter_svg(points: Sequence[Mapping[str, Any]], *, x_label: str, y_label: str,
                title: str = "", x_range: tuple[float, float] | None = None,
                y_range: tuple[float, float] | None = None,
                y_categories: Sequence[str] | None = None, selected: Sequence[str] = (),
                legend: Sequence[tuple[str, str]] = (), vlines: Sequence[tuple[float, str]] = (),
                diagonal: bool = False, width: int = _W, height: int = _H) -> str:
    """A scatter plot whose points are ``<circle data-id=...>`` (click to select).

    Args:
      points: ``{"id", "x", "y", "colour"?, "title"?}``; with ``y_categories``, ``y`` is the
        category's index (jittered by the caller if wanted).
      x_label, y_label, title: axis titles and chart title.
      x_range, y_range: axis limits (default: the data's).
      y_categories: names of a categorical y axis, bottom to top.
      selected: ids drawn outlined (and on top).
      legend: ``[(label, colour)]`` shown top right.
      vlines: vertical lines ``(x, label)``, e.g. a decision threshold.
      diagonal: draw y = x (predictions vs labels).
    """
    xs = [float(p["x"]) for p in points] or [0.0, 1.0]
    ys = [float(p["y"]) for p in points] or [0.0, 1.0]
    if x_range is None:
        x_range = (min(xs), max(xs)) if max(xs) > min(xs) else (min(xs) - 1, max(xs) + 1)
    if y_range is None:
        y_range = ((-0.5, len(y_categories) - 0.5) if y_categories else
                   ((min(ys), max(ys)) if max(ys) > min(ys) else (min(ys) - 1, max(ys) + 1)))
    x0, x1, y0, y1 = _PAD_L, width - _PAD_R, height - _PAD_B, _PAD_T
    parts = [f'<svg class="pl-plot" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">']
    parts += _frame(x_range, y_range, x_label, y_label, title,
                    y_categories if y_categories else None, width, height)
    if diagonal:
        lo, hi = max(x_range[0], y_range[0]), min(x_range[1], y_range[1])
        if hi > lo:
            parts.append(f'<line x1="{_scale(lo, *x_range, x0, x1):.1f}" '
                         f'y1="{_scale(lo, *y_range, y0, y1):.1f}" '
                         f'x2="{_scale(hi, *x_range, x0, x1):.1f}" '
                         f'y2="{_scale(hi, *y_range, y0, y1):.1f}" stroke="#999" '
                         'stroke-dasharray="4 3"/>')
    for x, label in vlines:
        px = _scale(x, *x_range, x0, x1)
        parts.append(f'<line class="pl-vline" x1="{px:.1f}" y1="{y1}" x2="{px:.1f}" y2="{y0}" '
                     f'stroke="#d62728" stroke-width="1.5"/><text x="{px + 3:.1f}" '
                     f'y="{y1 + 12}" font-size="11" fill="#d62728">{_esc(label)}</text>')
    sel = set(selected)
    ordered = sorted(points, key=lambda p: p["id"] in sel)
    for p in ordered:
        px, py = _scale(p["x"], *x_range, x0, x1), _scale(p["y"], *y_range, y0, y1)
        is_sel = p["id"] in sel
        stroke = ' stroke="#111" stroke-width="2"' if is_sel else ' stroke="white" stroke-width="0.5"'
        tip = f"<title>{_esc(p['title'])}</title>" if p.get("title") else ""
        parts.append(f'<circle class="pl-pt{" pl-pt-sel" if is_sel else ""}" '
                     f'data-id="{_esc(p["id"])}" cx="{px:.1f}" cy="{py:.1f}" '
                     f'r="{5 if is_sel else 3.5}" fill="{p.get("colour", PALETTE[0])}" '
                     f'fill-opacity="0.8"{stroke} style="cursor:pointer">{tip}</circle>')
    if legend:
        parts.append(_legend(legend, width))
    parts.append("</svg>")
    return "".join(parts)


def curves_svg(series: Sequence[Mapping[str, Any]], *, x_label: str, y_label: str,
               title: str = "", marks: Sequence[Mapping[str, Any]] = (), diagonal: bool = False,
               width: int = 420, height: int = 320) -> str:
    """Line curves on [0, 1] × [0, 1], e.g. ROC or precision-recall.

    Args:
      series: ``{"name", "points": [(x, y)], "colour", "dashed"?}``.
      marks: points to circle, ``{"x", "y", "colour", "title"}`` (e.g. the current threshold).
      diagonal: draw the chance line y = x.
    """
    x0, x1, y0, y1 = _PAD_L, width - _PAD_R, height - _PAD_B, _PAD_T
    parts = [f'<svg class="pl-plot" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">']
    parts += _frame((0.0, 1.0), (0.0, 1.0), x_label, y_label, title, None, width, height)
    if diagonal:
        parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#bbb" '
                     'stroke-dasharray="3 3"/>')
    for s in series:
        pts = " ".join(f"{_scale(x, 0, 1, x0, x1):.1f},{_scale(y, 0, 1, y0, y1):.1f}"
                       for x, y in s["points"])
        dash = ' stroke-dasharray="6 4"' if s.get("dashed") else ""
        parts.append(f'<polyline class="pl-curve" data-name="{_esc(s["name"])}" points="{pts}" '
                     f'fill="none" stroke="{s["colour"]}" stroke-width="2"{dash}>'
                     f'<title>{_esc(s["name"])}</title></polyline>')
    for m in marks:
        parts.append(f'<circle cx="{_scale(m["x"], 0, 1, x0, x1):.1f}" '
                     f'cy="{_scale(m["y"], 0, 1, y0, y1):.1f}" r="5" fill="none" '
                     f'stroke="{m["colour"]}" stroke-width="2"><title>{_esc(m["title"])}</title>'
                     '</circle>')
    parts.append("</svg>")
    return "".join(parts)
