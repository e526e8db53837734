"""HTML for comparing two prompt versions (the "Compare prompts" module), pure functions.

Input is the plain data of `promptlit.comparison`: the aligned-segment table of `compare` and
the token table of `compare_responses` (pandas). Every piece of text (prompts, labels, tokens)
goes through `promptlit.ui.render.escape_text`; numbers are formatted here.

* `side_by_side_html`: one row per aligned pair, A left and B right, each segment coloured by its
  salience (one colour scale for both sides, so they compare), rows marked by their ``op``:
  ``=`` equal, ``~`` changed, ``−`` deleted (only in A), ``+`` inserted (only in B).
* `changed_html`: the segments whose salience changed most, ``Δ = B − A``.
* `responses_html`: the two responses' token diff: deleted tokens struck through, inserted ones
  underlined, equal tokens coloured by their log-probability change (blue: B makes the token
  more likely, red: less likely; full colour at `LOGPROB_SCALE` nats).

Example:
    >>> import pandas as pd
    >>> from promptlit.comparison import compare_responses
    >>> html = responses_html(compare_responses(["a", "<b>"], [-1.0, -2.0], ["a", "c"],
    ...                                         [-0.5, -1.0]))
    >>> "&lt;b&gt;" in html and 'data-op="changed"' in html and "Δ +0.5" in html
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptlit.comparison import missing
from promptlit.ui.render import colour_for, escape_text, normalize, text_colour_for

__all__ = ["CSS", "LOGPROB_SCALE", "MAX_ROWS", "changed_html", "responses_html",
           "side_by_side_html"]

LOGPROB_SCALE = 2.0
"""A log-probability change of this many nats (either way) gets the full colour."""

MAX_ROWS = 400
"""Most aligned rows drawn side by side (the rest are counted in a note)."""

OP_MARK = {"equal": "=", "changed": "~", "deleted": "−", "inserted": "+"}

CSS = """
.pl-cmp { border-collapse: collapse; width: 100%; font-size: 0.88em; table-layout: fixed; }
.pl-cmp td, .pl-cmp th { border-bottom: 1px solid #eee; padding: 2px 6px; vertical-align: top; }
.pl-cmp th { text-align: left; font-family: sans-serif; color: #555; }
.pl-cmp td.pl-cmp-op { width: 1.6em; text-align: center; font-weight: 700; color: #666; }
.pl-cmp td.pl-cmp-cell { white-space: pre-wrap; word-break: break-word;
  font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.pl-cmp td.pl-cmp-num { width: 5.5em; text-align: right; font-family: ui-monospace, monospace; }
.pl-cmp tr.pl-cmp-changed td.pl-cmp-op { color: #b45309; background: #fef3c7; }
.pl-cmp tr.pl-cmp-deleted td.pl-cmp-op { color: #b91c1c; background: #fee2e2; }
.pl-cmp tr.pl-cmp-inserted td.pl-cmp-op { color: #15803d; background: #dcfce7; }
.pl-cmp tr.pl-cmp-deleted td.pl-cmp-b, .pl-cmp tr.pl-cmp-inserted td.pl-cmp-a {
  background: repeating-linear-gradient(45deg, #fafafa, #fafafa 4px, #f0f0f0 4px, #f0f0f0 8px); }
.pl-cmp-resp { white-space: pre-wrap; font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  font-size: 0.92em; line-height: 1.8; }
.pl-cmp-resp del { color: #b91c1c; background: #fee2e2; }
.pl-cmp-resp ins { color: #15803d; background: #dcfce7; text-decoration: underline; }
"""
"""Stylesheet for the classes above (the app adds it to the page)."""


def _num(x: Any) -> str:
    return "" if missing(x) else f"{float(x):.4g}"


def _text(x: Any) -> str:
    return "" if missing(x) else str(x)


def _cell(label: Any, text: Any, score: float, colour: float, signed: bool,
          intensity: float, side: str) -> str:
    if missing(text):
        return f'<td class="pl-cmp-cell pl-cmp-{side}"></td>'
    style = (f"background-color:{colour_for(colour, signed, intensity)};"
             f"color:{text_colour_for(colour, signed, intensity)}")
    head = (f'<span class="pl-seglabel">{escape_text(_text(label))}</span>'
            if _text(label) else "")
    return (f'<td class="pl-cmp-cell pl-cmp-{side}" title="score {_num(score)}">{head}'
            f'<span class="pl-seg" style="{style}">{escape_text(str(text))}</span></td>')


def side_by_side_html(table: Any, *, name_a: str = "A", name_b: str = "B",
                      intensity: float = 1.0, max_rows: int = MAX_ROWS) -> str:
    """The aligned segments of a `promptlit.comparison.compare` table, A and B side by side.

    Args:
      table: `compare`'s DataFrame (``table.attrs["signed"]`` picks the colour map).
      name_a, name_b: what to call the two prompts in the header.
      intensity: colour-intensity factor.
      max_rows: most rows drawn.

    Returns:
      ``<table class="pl-cmp">`` with one ``<tr data-op=...>`` per aligned pair (and
      ``data-label-a`` / ``data-label-b`` for labelled segments); each side's segment is coloured
      on one scale shared by A and B, its exact score in the row and on hover.
    """
    if table is None or not len(table):
        return '<div class="pl-empty">No segments to compare.</div>'
    signed = bool(table.attrs.get("signed", False))
    scores = np.concatenate([table["score_a"].to_numpy(float), table["score_b"].to_numpy(float)])
    colours = normalize(np.nan_to_num(scores), signed)
    n = len(table)
    col_a, col_b = colours[:n], colours[n:]
    rows = []
    for k, row in enumerate(table.head(max_rows).itertuples(index=False)):
        labels = "".join(f' data-label-{side}="{escape_text(_text(label))}"'
                         for side, label in (("a", row.label_a), ("b", row.label_b))
                         if _text(label))
        rows.append(
            f'<tr class="pl-cmp-{row.op}" data-op="{row.op}"{labels}>'
            f'<td class="pl-cmp-op" title="{row.op}">{OP_MARK[row.op]}</td>'
            + _cell(row.label_a, row.text_a, row.score_a, float(col_a[k]), signed, intensity, "a")
            + f'<td class="pl-cmp-num">{_num(row.score_a)}</td>'
            + _cell(row.label_b, row.text_b, row.score_b, float(col_b[k]), signed, intensity, "b")
            + f'<td class="pl-cmp-num">{_num(row.score_b)}</td></tr>')
    note = (f'<div class="pl-empty">Showing {max_rows} of {n} aligned segments.</div>'
            if n > max_rows else "")
    attrs = " ".join(f'data-{k}="{escape_text(str(table.attrs.get(k, "")))}"'
                     for k in ("granularity", "method_a", "normalize"))
    cols = ('<colgroup><col style="width:2em"><col><col style="width:5.5em"><col>'
            '<col style="width:5.5em"></colgroup>')
    return (f'<table class="pl-cmp" {attrs}>{cols}<thead><tr><th></th>'
            f"<th>{escape_text(name_a)}</th><th>score</th><th>{escape_text(name_b)}</th>"
            "<th>score</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + note)


def _one_line(text: Any, limit: int = 70) -> str:
    if missing(text):
        return ""
    flat = str(text).replace("\n", " ⏎ ").strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def changed_html(ranked: Any, *, intensity: float = 1.0) -> str:
    """A ranked table of `promptlit.comparison.changed_most` rows: op, segment in A → in B,
    both scores and ``Δ = B − A`` (coloured on a diverging scale: blue up, red down)."""
    if ranked is None or not len(ranked):
        return '<div class="pl-empty">No segment changed its salience.</div>'
    deltas = ranked["delta"].to_numpy(float)
    colours = normalize(deltas, True)
    rows = []
    for rank, (row, c) in enumerate(zip(ranked.itertuples(index=False), colours, strict=True),
                                    1):
        a = f"{_text(row.label_a)}: " if _text(row.label_a) else ""
        b = f"{_text(row.label_b)}: " if _text(row.label_b) else ""
        text_a, text_b = _text(row.text_a), _text(row.text_b)
        what = (_one_line(a + text_a) if row.op in ("equal", "deleted") else
                _one_line(b + text_b) if row.op == "inserted" else
                f"{_one_line(a + text_a, 40)} → {_one_line(b + text_b, 40)}")
        style = (f"background-color:{colour_for(float(c), True, intensity)};"
                 f"color:{text_colour_for(float(c), True, intensity)}")
        rows.append(f'<tr data-rank="{rank}" data-op="{row.op}"><td class="pl-num">{rank}</td>'
                    f"<td>{OP_MARK[row.op]}</td>"
                    f'<td class="pl-segtext" title="{escape_text(text_b if row.op == "inserted" else text_a)}">'
                    f"{escape_text(what)}</td>"
                    f'<td class="pl-num">{_num(row.score_a)}</td>'
                    f'<td class="pl-num">{_num(row.score_b)}</td>'
                    f'<td class="pl-num" style="{style}">{float(row.delta):+.4g}</td></tr>')
    return ('<table class="pl-ranked pl-cmp-changed-table"><thead><tr><th>#</th><th></th>'
            "<th>segment (A → B)</th><th>A</th><th>B</th><th>Δ</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _token_span(row: Any, intensity: float) -> str:
    if row.op == "equal":
        delta = 0.0 if missing(row.delta) else float(row.delta)
        c = max(-1.0, min(1.0, delta / LOGPROB_SCALE))
        style = (f"background-color:{colour_for(c, True, intensity)};"
                 f"color:{text_colour_for(c, True, intensity)}")
        title = (f"log p: A {_num(row.logprob_a)} → B {_num(row.logprob_b)} (Δ {delta:+.3g})"
                 if not missing(row.delta) else "log p unknown")
        return (f'<span class="pl-seg" data-op="equal" style="{style}" '
                f'title="{escape_text(title)}">{escape_text(_text(row.token_b))}</span>')
    out = ""
    if not missing(row.token_a):
        out += (f'<del data-op="{"deleted" if row.op == "deleted" else "changed"}" '
                f'title="only in A · log p {_num(row.logprob_a)}">'
                f"{escape_text(_text(row.token_a))}</del>")
    if not missing(row.token_b):
        out += (f'<ins data-op="{"inserted" if row.op == "inserted" else "changed"}" '
                f'title="only in B · log p {_num(row.logprob_b)}">'
                f"{escape_text(_text(row.token_b))}</ins>")
    return out


def responses_html(responses: Any, *, text_a: str | None = None, text_b: str | None = None,
                   intensity: float = 1.0) -> str:
    """The two responses as one token diff (`promptlit.comparison.compare_responses`' table).

    Equal tokens are coloured by ``Δ log p = B − A`` (diverging, full colour at
    `LOGPROB_SCALE` nats), tokens only in A are ``<del>``, only in B ``<ins>``; each token's
    log-probabilities are on hover. ``text_a`` / ``text_b``, when given, are shown first.
    """
    if responses is None or not len(responses):
        return '<div class="pl-empty">No responses to compare.</div>'
    deltas = responses["delta"].to_numpy(float)
    known = deltas[~np.isnan(deltas)]
    summary = (f" · mean Δ log p over {len(known)} shared tokens: {known.mean():+.3g} nats"
               if len(known) else "")
    head = ""
    for name, text in (("A", text_a), ("B", text_b)):
        if text is not None:
            head += (f'<div class="pl-role">RESPONSE {name}</div>'
                     f'<div class="pl-text">{escape_text(text)}</div>')
    body = "".join(_token_span(row, intensity) for row in responses.itertuples(index=False))
    return (head + f'<div class="pl-role">A → B, token by token (struck: only in A; '
            f"underlined: only in B; colour: Δ log p, blue = likelier in B){summary}</div>"
            f'<div class="pl-cmp-resp" data-shared="{len(known)}">{body}</div>')
