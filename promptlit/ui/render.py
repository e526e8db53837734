"""Pure functions from salience scores to HTML: heatmaps, clickable responses, rankings, legends.

Nothing here calls a model or touches Gradio: every function takes plain data (a
`promptlit.salience.result.SequenceSalience`, a list of ``Segment(text, start, end, score)``,
floats) and returns an HTML string, so the views are unit-testable and reusable in notebooks.

Colour conventions:

* unsigned methods (``grad_l2``) use a **sequential** purple scale: white = 0, purple = the view's
  largest score;
* signed methods (``grad_dot_input``, ``integrated_gradients``) use a **diverging** scale: blue =
  positive (pushes towards the selected response span), white = 0, red = negative.

Colour is normalised per view (`promptlit.salience.result.normalize_for_display`) and then
multiplied by the intensity factor (the UI's slider), clipped to 1. The exact (unnormalised)
score of every segment is on hover (the ``title`` attribute) and in the ranked table.

Chat-template tokens (``<start_of_turn>``, role words, control tokens: `TemplateSegment`) are
drawn greyed (class ``pl-template``) and, by default, neither coloured nor part of the colour
range; with ``include_template=True`` they are coloured and ranged like the user's text (still
marked ``pl-template``). Their exact score is on hover either way.

Example:
    >>> from promptlit.salience.aggregation import Segment
    >>> html = heatmap_html("a<b c", [Segment("a<b", 0, 3, 2.0), Segment("c", 4, 5, 1.0)],
    ...                     signed=False)
    >>> "a&lt;b" in html and 'title="score 2' in html
    True
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CSS",
    "Markdown",
    "NEGATIVE_RGB",
    "POSITIVE_RGB",
    "SEQUENTIAL_RGB",
    "colour_for",
    "as_markdown",
    "escape_markdown",
    "escape_text",
    "heatmap_html",
    "legend_html",
    "matrix_html",
    "md",
    "normalize",
    "plain_text_html",
    "rank_segments",
    "ranked_table_html",
    "salience_view_html",
    "templated_text_html",
    "text_colour_for",
]

SEQUENTIAL_RGB: tuple[int, int, int] = (106, 61, 154)
"""Unsigned scores: white -> this purple."""
POSITIVE_RGB: tuple[int, int, int] = (33, 102, 172)
"""Signed scores > 0: white -> this blue."""
NEGATIVE_RGB: tuple[int, int, int] = (178, 24, 43)
"""Signed scores < 0: white -> this red."""

CSS = """
.pl-text { white-space: pre-wrap; font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  font-size: 0.92em; line-height: 1.7; word-break: break-word; }
.pl-seg { border-radius: 3px; }
.pl-resp { cursor: pointer; border-bottom: 1px dotted #888; border-radius: 3px; }
.pl-resp:hover { outline: 1px solid #444; }
.pl-resp.pl-selected { outline: 2px solid #f59e0b; background-color: rgba(245,158,11,0.35)
  !important; color: #111 !important; }
.pl-role { font-size: 0.8em; font-weight: 600; color: #666; margin: 6px 0 2px 0;
  font-family: sans-serif; }
.pl-ranked { border-collapse: collapse; font-size: 0.9em; width: 100%; }
.pl-ranked td, .pl-ranked th { border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: left;
  vertical-align: top; }
.pl-ranked td.pl-num { text-align: right; font-family: ui-monospace, monospace; }
.pl-legend { display: flex; align-items: center; gap: 6px; font-size: 0.85em;
  font-family: sans-serif; }
.pl-legend .pl-bar { width: 160px; height: 12px; border: 1px solid #ccc; }
.pl-matrix { display: grid; gap: 1px; font-size: 0.75em; overflow: auto; max-height: 480px; }
.pl-matrix div { padding: 1px 3px; white-space: pre; overflow: hidden; text-overflow: ellipsis;
  max-width: 9em; }
.pl-matrix .pl-mhead { font-weight: 600; writing-mode: vertical-rl; max-height: 9em; }
.pl-empty { color: #888; font-style: italic; font-family: sans-serif; }
.pl-template { color: #9ca3af !important; font-size: 0.9em; }
.pl-template:not(.pl-template-included) { background-color: transparent !important; }
.pl-template.pl-template-included { outline: 1px dashed #9ca3af; }
.pl-seglabel { font-weight: 600; font-family: sans-serif; margin-right: 0.5em; }
"""
"""Stylesheet for the classes used below (the app passes it to the page)."""


def escape_text(text: str) -> str:
    """HTML-escapes ``text`` for element content and attributes.

    Besides ``& < > " '`` this also escapes ``$ { } `` ` `` so that Gradio's HTML templates
    (JS template strings / Handlebars) never interpret user text. Newlines are kept: the
    containers use ``white-space: pre-wrap``.
    """
    out = _html.escape(text, quote=True)
    return (out.replace("$", "&#36;").replace("{", "&#123;").replace("}", "&#125;")
            .replace("`", "&#96;"))


_MD_SPECIAL = frozenset("\\`*_[]()!|~$#@")
_HTML_SPECIAL = frozenset("&<>")
_AUTOLINK = re.compile(r"(?<=:)//|(?<=\bwww)\.", re.IGNORECASE)
_LINE_START = re.compile(r"^(\s*)([-+>]|\d+(?=[.)]))")


def escape_markdown(text: Any) -> str:
    """``text`` as inert Markdown: it renders as exactly these characters, never as formatting,
    links, images, autolinks, lists, maths or HTML.

    ``& < >`` become HTML entities; the characters a Markdown parser acts on inside a line
    (emphasis, code, links and images, tables, strike-through, ``$`` maths, headings) are
    backslash-escaped (a CommonMark escape renders as the character itself); ``://`` and
    ``www.`` get an escaped slash / dot so no bare URL is auto-linked; a leading list or quote
    marker is escaped too. Newlines become spaces: interpolated values are one-liners in status
    and info lines.

        >>> print(escape_markdown("[x](https://e.vil) <b>"))
        \\[x\\]\\(https:\\/\\/e.vil\\) &lt;b&gt;
    """
    flat = " ".join(str(text).split())
    out = []
    for ch in flat:
        if ch in _HTML_SPECIAL:
            out.append(_html.escape(ch, quote=False))
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    escaped = "".join(out)
    escaped = _AUTOLINK.sub(lambda m: "".join("\\" + c for c in m.group(0)), escaped)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2) if not m.group(2).isdigit()
                           else m.group(1) + m.group(2) + "\\", escaped, count=1)


class Markdown(str):
    """Markdown the app wrote itself (trusted), as opposed to a plain ``str``, which a
    `promptlit.ui.modules.base.SafeMarkdown` component shows as inert text.

    Build it with `md`, which escapes every interpolated value, so text from a URL, a dataset
    or a user can never add a link, an image, a form or any HTML to the page.
    """

    __slots__ = ()

    def __add__(self, other: str) -> Markdown:
        return Markdown(str.__add__(self, other if isinstance(other, Markdown)
                                    else escape_markdown(other)))


def md(template: str, *args: Any, **kwargs: Any) -> Markdown:
    """``template.format(*args, **kwargs)`` with every argument passed through
    `escape_markdown` (arguments that are already `Markdown`, and numbers, which may use format
    specs like ``{:.2f}``, are kept as they are).

        >>> print(md("**{}** examples in {name}", 3, name="<img src=x>"))
        **3** examples in &lt;img src=x&gt;
    """

    def safe(v: Any) -> Any:  # numbers carry no markup and keep their format specs
        if isinstance(v, Markdown) or (isinstance(v, int | float | np.number)
                                       and not isinstance(v, bool)):
            return v
        return escape_markdown(v)

    return Markdown(template.format(*(safe(a) for a in args),
                                    **{k: safe(v) for k, v in kwargs.items()}))


def as_markdown(value: Any) -> Markdown:
    """``value`` for a Markdown component: `Markdown` unchanged, anything else escaped."""
    if isinstance(value, Markdown):
        return value
    return Markdown(escape_markdown("" if value is None else value))


def normalize(scores: Sequence[float] | np.ndarray, signed: bool) -> np.ndarray:
    """Scores of one view -> ``<float>[K]`` in [-1, 1] (signed) or [0, 1] (unsigned), for colour.

    Uses `promptlit.salience.result.normalize_for_display` (max-|score| scaling; NaN counts as 0).
    """
    from promptlit.salience.result import normalize_for_display

    return normalize_for_display(np.asarray(scores, dtype=np.float64), signed)


def colour_for(value: float, signed: bool, intensity: float = 1.0) -> str:
    """The CSS background for one normalised score ``value`` (in [-1, 1] or [0, 1]).

    ``intensity`` multiplies the opacity (the UI's colour-intensity slider); the result is
    clipped to 1. Unsigned methods ignore negative values (they are shown as white).
    """
    v = float(np.nan_to_num(value)) * float(intensity)
    if signed:
        rgb = POSITIVE_RGB if v >= 0 else NEGATIVE_RGB
        alpha = min(abs(v), 1.0)
    else:
        rgb = SEQUENTIAL_RGB
        alpha = min(max(v, 0.0), 1.0)
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.3f})"


def text_colour_for(value: float, signed: bool, intensity: float = 1.0) -> str:
    """Black or white text, whichever reads better on `colour_for`'s background."""
    v = abs(float(np.nan_to_num(value)) * float(intensity))
    if not signed and value < 0:
        v = 0.0
    return "#fff" if v > 0.6 else "inherit"


def _fmt(score: float) -> str:
    return f"{score:.4g}"


def _seg_span(text: str, score: float, colour: float, signed: bool, intensity: float,
              cls: str = "pl-seg", extra: str = "") -> str:
    style = (f"background-color:{colour_for(colour, signed, intensity)};"
             f"color:{text_colour_for(colour, signed, intensity)}")
    return (f'<span class="{cls}" style="{style}" title="score {_fmt(score)}"{extra}>'
            f"{escape_text(text)}</span>")


def _label(segment: Any) -> str:
    """A custom segment's label ("example 1", "block 2"); "" for built-in granularities."""
    return str(getattr(segment, "label", "") or "")


def _is_template(segment: Any) -> bool:
    from promptlit.lib.segmentation import TemplateSegment

    return isinstance(segment, TemplateSegment)


def templated_text_html(text: str, template_spans: Sequence[tuple[int, int]], *,
                        label: str | None = None) -> str:
    """``text`` escaped in a pre-wrap block, its chat-template spans greyed (``pl-template``).

    Args:
      text: a prompt as the model reads it (`promptlit.models.chat.Rendered.text`).
      template_spans: sorted, disjoint char ``[start, end)`` spans of template text.
      label: an optional heading (e.g. "PROMPT").
    """
    head = f'<div class="pl-role">{escape_text(label)}</div>' if label else ""
    return f'{head}<div class="pl-text">{_templated_inner(text, template_spans)}</div>'


def _templated_inner(text: str, template_spans: Sequence[tuple[int, int]]) -> str:
    parts, pos = [], 0
    for s, e in template_spans:
        s, e = max(int(s), pos), min(int(e), len(text))
        if e <= s:
            continue
        parts.append(escape_text(text[pos:s]))
        parts.append(f'<span class="pl-template" title="chat template">'
                     f"{escape_text(text[s:e])}</span>")
        pos = e
    parts.append(escape_text(text[pos:]))
    return "".join(parts)


def _template_spans(sal: Any, stop: int) -> list[tuple[int, int]]:
    """Char spans of ``sal``'s template tokens that end by ``stop``, adjacent ones merged (for
    uncoloured views)."""
    mask = np.asarray(getattr(sal, "template_mask", ()), dtype=bool)
    spans: list[tuple[int, int]] = []
    if not mask.any():
        return spans
    for (s, e), m in zip(np.asarray(sal.offsets).tolist(), mask, strict=True):
        if m and e > s and e <= stop:
            if spans and spans[-1][1] == s:
                spans[-1] = (spans[-1][0], int(e))
            else:
                spans.append((int(s), int(e)))
    return spans


def plain_text_html(text: str, *, label: str | None = None) -> str:
    """``text`` escaped in a pre-wrap block (the prompt before any salience is computed)."""
    head = f'<div class="pl-role">{escape_text(label)}</div>' if label else ""
    return f'{head}<div class="pl-text">{escape_text(text)}</div>'


def heatmap_html(text: str, segments: Sequence[Any], *, signed: bool, intensity: float = 1.0,
                 start: int = 0, end: int | None = None) -> str:
    """``text[start:end]`` with each segment's background coloured by its score.

    Args:
      text: the full text the segments index (e.g. ``SequenceSalience.text``).
      segments: ``Segment(text, start, end, score)`` (or 4-tuples) in text order, char
        positions into ``text``; characters in no segment are shown uncoloured.
      signed: diverging (True) or sequential (False) colours.
      intensity: colour-intensity factor (> 1 makes faint scores visible).
      start, end: the character range to draw.

    Returns:
      ``<span>``s (no wrapper), each with ``title="score <exact sum>"``.
    """
    end = len(text) if end is None else end
    segs = [tuple(s) for s in segments]
    colours = normalize([s[3] for s in segs], signed) if segs else np.zeros(0)
    parts: list[str] = []
    pos = start
    for (_, s, e, score), c in zip(segs, colours, strict=True):
        s, e = max(int(s), start), min(int(e), end)
        if e <= s:
            continue
        if s > pos:
            parts.append(escape_text(text[pos:s]))
        s = max(s, pos)
        parts.append(_seg_span(text[s:e], float(score), float(c), signed, intensity))
        pos = e
    if pos < end:
        parts.append(escape_text(text[pos:end]))
    return "".join(parts)


def _response_tokens_html(sal: Any, token_scores: np.ndarray | None, signed: bool,
                          intensity: float, selected: tuple[int, int] | None) -> str:
    """Response tokens as clickable spans ``<span class="pl-resp" data-index="t">``.

    ``token_scores`` are the (already normalised) colours of the ``T`` response tokens, or None.
    """
    text, p = sal.text, sal.num_prompt_tokens
    offsets = np.asarray(sal.offsets)[p:]
    parts: list[str] = []
    pos = sal.prompt_length
    sel_start, sel_stop = selected if selected else (-1, -1)
    for t, (s, e) in enumerate(offsets.tolist()):
        s, e = max(int(s), pos), int(e)
        piece = text[s:e] if e > s else sal.tokens[p + t]
        if s > pos:
            parts.append(escape_text(text[pos:s]))
        cls = "pl-resp pl-selected" if sel_start <= t < sel_stop else "pl-resp"
        extra = f' data-index="{t}"'
        if token_scores is None:
            parts.append(f'<span class="{cls}"{extra} title="response token {t}">'
                         f"{escape_text(piece)}</span>")
        else:
            raw = float(token_scores[t])
            parts.append(_seg_span(piece, raw, float(token_scores[t]), signed, intensity,
                                   cls=cls, extra=extra))
        pos = max(pos, e)
    if pos < len(text):
        parts.append(escape_text(text[pos:]))
    return "".join(parts)


def salience_view_html(sal: Any, span: Any | None = None, *, granularity: Any = "words",
                       intensity: float = 1.0, selected: tuple[int, int] | None = None,
                       include_template: bool = False) -> str:
    """The prompt as a heatmap at ``granularity`` plus the response as clickable tokens.

    Args:
      sal: a `SequenceSalience` (text, offsets, prompt/response split).
      span: a `SpanSalience` for the selected response span, or None (no colours yet).
      granularity: how prompt scores are summed ("tokens", "words", "sentences", ...).
      intensity: colour-intensity factor.
      selected: the selected response-token span ``[start, stop)`` to outline.
      include_template: colour chat-template tokens and let them set the colour range (by
        default they are greyed and left out of it).

    The response tokens carry ``data-index`` (0 = first response token) so a click handler can
    select them; earlier response tokens are coloured by their salience for the selection too.
    """
    if span is None:
        prompt = _templated_inner(sal.prompt_text, _template_spans(sal, sal.prompt_length))
        response = _response_tokens_html(sal, None, False, intensity, selected)
    else:
        segs = span.aggregate(granularity, side="prompt")
        resp_segs = span.aggregate("tokens", side="response")
        all_scores = [s.score for s in segs] + [s.score for s in resp_segs]
        counted = np.array([include_template or not _is_template(s) for s in segs]
                           + [True] * len(resp_segs), dtype=bool)
        colours = np.zeros(len(all_scores))
        colours[counted] = normalize(np.asarray(all_scores, dtype=np.float64)[counted],
                                     span.signed)
        # One normalisation for both sides, so prompt and response colours are comparable.
        seg_colours, resp_colours = colours[: len(segs)], colours[len(segs):]
        prompt = _heatmap_prenormalized(sal.text, segs, seg_colours, span.signed, intensity,
                                        0, sal.prompt_length, include_template=include_template)
        token_colours = np.zeros(sal.num_response_tokens)
        token_colours[: len(resp_colours)] = resp_colours[: sal.num_response_tokens]
        raw = np.asarray(span.scores)[sal.num_prompt_tokens:]
        response = _response_tokens_coloured(sal, raw, token_colours, span.signed, intensity,
                                              selected)
    return ('<div class="pl-view">'
            '<div class="pl-role">PROMPT</div>'
            f'<div class="pl-text pl-prompt">{prompt}</div>'
            '<div class="pl-role">RESPONSE (click a token; shift-click to extend)</div>'
            f'<div class="pl-text pl-response">{response}</div></div>')


def _heatmap_prenormalized(text: str, segs: Sequence[Any], colours: np.ndarray, signed: bool,
                           intensity: float, start: int, end: int, *,
                           include_template: bool = False) -> str:
    parts: list[str] = []
    pos = start
    for seg, c in zip(segs, colours, strict=True):
        _, s, e, score = tuple(seg)
        s, e = max(int(s), pos), min(int(e), end)
        if e <= s:
            continue
        if s > pos:
            parts.append(escape_text(text[pos:s]))
        if _is_template(seg):
            cls = "pl-seg pl-template" + (" pl-template-included" if include_template else "")
            parts.append(_seg_span(text[s:e], float(score), float(c), signed, intensity,
                                   cls=cls, extra=' data-template="true"').replace(
                'title="score', 'title="chat template · score', 1))
        else:
            parts.append(_seg_span(text[s:e], float(score), float(c), signed, intensity))
        pos = e
    if pos < end:
        parts.append(escape_text(text[pos:end]))
    return "".join(parts)


def _response_tokens_coloured(sal: Any, raw: np.ndarray, colours: np.ndarray, signed: bool,
                              intensity: float, selected: tuple[int, int] | None) -> str:
    text, p = sal.text, sal.num_prompt_tokens
    offsets = np.asarray(sal.offsets)[p:]
    parts: list[str] = []
    pos = sal.prompt_length
    sel_start, sel_stop = selected if selected else (-1, -1)
    for t, (s, e) in enumerate(offsets.tolist()):
        s, e = max(int(s), pos), int(e)
        piece = text[s:e] if e > s else sal.tokens[p + t]
        if s > pos:
            parts.append(escape_text(text[pos:s]))
        cls = "pl-resp pl-selected" if sel_start <= t < sel_stop else "pl-resp"
        parts.append(_seg_span(piece, float(raw[t]), float(colours[t]), signed, intensity,
                               cls=cls, extra=f' data-index="{t}"'))
        pos = max(pos, e)
    if pos < len(text):
        parts.append(escape_text(text[pos:]))
    return "".join(parts)


def rank_segments(segments: Sequence[Any], signed: bool, k: int | None = 10, *,
                  include_template: bool = False) -> list[Any]:
    """The ``k`` most salient segments, highest first (by ``|score|`` if signed, else score).

    Ties keep text order (a stable sort), so the ranking is deterministic. Chat-template
    segments (`TemplateSegment`) are ranked only with ``include_template``.
    """
    segs = [s for s in segments if str(tuple(s)[0]).strip()
            and (include_template or not _is_template(s))]
    key = (lambda s: -abs(float(tuple(s)[3]))) if signed else (lambda s: -float(tuple(s)[3]))
    ranked = sorted(segs, key=key)
    return ranked if k is None else ranked[: max(int(k), 0)]


def _one_line(text: str, limit: int = 90) -> str:
    flat = text.replace("\n", " ⏎ ").strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def ranked_table_html(segments: Sequence[Any], *, signed: bool, k: int = 10,
                      intensity: float = 1.0, granularity: Any = "segments",
                      attrs: Mapping[str, Any] | None = None,
                      include_template: bool = False) -> str:
    """An HTML table of the ``k`` most salient segments: rank, segment, exact score, chars.

    Rows carry ``data-rank`` and the score cell is coloured like the heatmap. ``attrs`` become
    ``data-*`` attributes of the table (e.g. ``{"method": "grad_l2", "span": "3:7"}``), so a
    reader (or a browser test) can tell which request a table answers, not only that it changed.
    Chat-template segments are ranked only with ``include_template`` (`rank_segments`).
    Custom segments (`LabelledSegment`) show their label before their text (``data-label``).
    """
    ranked = rank_segments(segments, signed, k, include_template=include_template)
    if not ranked:
        return '<div class="pl-empty">No salience yet: select a response span.</div>'
    colours = normalize([tuple(s)[3] for s in segments], signed)
    by_pos = {(tuple(s)[1], tuple(s)[2]): c for s, c in zip(segments, colours, strict=True)}
    rows = []
    for rank, seg in enumerate(ranked, 1):
        text, s, e, score = tuple(seg)
        c = by_pos.get((s, e), 0.0)
        style = (f"background-color:{colour_for(c, signed, intensity)};"
                 f"color:{text_colour_for(c, signed, intensity)}")
        label = _label(seg)
        shown = (f'<span class="pl-seglabel">{escape_text(label)}</span>'
                 f"{escape_text(_one_line(text, 60))}" if label else
                 escape_text(_one_line(text)))
        data_label = f' data-label="{escape_text(label)}"' if label else ""
        rows.append(f'<tr data-rank="{rank}"><td class="pl-num">{rank}</td>'
                    f'<td class="pl-segtext" title="{escape_text(text)}"{data_label}>'
                    f"{shown}</td>"
                    f'<td class="pl-num" style="{style}">{_fmt(float(score))}</td>'
                    f'<td class="pl-num">{int(s)}–{int(e)}</td></tr>')
    data = "".join(f' data-{escape_text(str(key))}="{escape_text(str(value))}"'
                   for key, value in (attrs or {}).items())
    return (f'<table class="pl-ranked"{data}><thead><tr><th>#</th>'
            f"<th>{escape_text(str(granularity))}</th>"
            '<th>score</th><th>chars</th></tr></thead><tbody>' + "".join(rows)
            + "</tbody></table>")


def legend_html(method: str, signed: bool, *, intensity: float = 1.0) -> str:
    """A colour bar with what its ends mean for ``method``."""
    if signed:
        neg = colour_for(-1, True, 1)
        pos = colour_for(1, True, 1)
        bar = f"linear-gradient(to right, {neg}, rgba(255,255,255,1), {pos})"
        ends = ("negative", "0", "positive")
    else:
        bar = f"linear-gradient(to right, rgba(255,255,255,1), {colour_for(1, False, 1)})"
        ends = ("0", "", "max")
    kind = "diverging (signed)" if signed else "sequential (unsigned)"
    return (f'<div class="pl-legend" data-signed="{str(signed).lower()}">'
            f"<b>{escape_text(method)}</b> {kind}: <span>{ends[0]}</span>"
            f'<span class="pl-bar" style="background:{bar}"></span><span>{ends[2]}</span>'
            f"<span>· intensity ×{intensity:g} · hover a segment for its exact score</span></div>")


def matrix_html(sal: Any, method: str, *, granularity: Any = "words", intensity: float = 1.0,
                max_columns: int = 120, max_rows: int = 64,
                include_template: bool = False) -> str:
    """The target×source matrix as a CSS grid: one row per response token, one column per prompt
    segment at ``granularity``; each cell is that token's salience summed over the segment.

    Large views are truncated to ``max_rows`` × ``max_columns`` (said in a note). Returns a
    placeholder when ``method`` has no full matrix (e.g. Integrated Gradients per span).
    Chat-template segments are columns only with ``include_template``; custom segments
    (`LabelledSegment`) are headed by their labels.
    """
    if method not in getattr(sal, "matrices", {}):
        return (f'<div class="pl-empty">No full matrix for {escape_text(method)} (it is '
                "computed per selected span); pick Grad L2 or Grad·Input.</div>")
    t_total = sal.num_response_tokens
    rows = min(t_total, max_rows)
    if rows == 0:
        return '<div class="pl-empty">The response is empty.</div>'
    per_row = [[seg for seg in sal.for_span(t, t + 1, method).aggregate(granularity,
                                                                        side="prompt")
                if include_template or not _is_template(seg)] for t in range(rows)]
    cols = per_row[0][:max_columns]
    values = np.array([[seg.score for seg in r[: len(cols)]] for r in per_row])
    signed = bool(sal.signed.get(method, False))
    colours = normalize(values.ravel(), signed).reshape(values.shape)
    cells = ['<div class="pl-mcorner"></div>']
    names = [_label(c) or c.text for c in cols]
    cells += [f'<div class="pl-mhead" title="{escape_text(c.text)}">'
              f"{escape_text(_one_line(name, 24))}</div>" for c, name in zip(cols, names,
                                                                                  strict=True)]
    resp = sal.response_tokens
    for t in range(rows):
        cells.append(f'<div class="pl-mrow" title="response token {t}">'
                     f"{escape_text(_one_line(resp[t], 16))}</div>")
        for j in range(len(cols)):
            c = colours[t, j]
            cells.append(f'<div style="background-color:{colour_for(c, signed, intensity)}" '
                         f'title="{escape_text(_one_line(resp[t], 20))} ← '
                         f'{escape_text(_one_line(names[j], 30))}: {_fmt(values[t, j])}">'
                         "&nbsp;</div>")
    note = ""
    if rows < t_total or len(per_row[0]) > len(cols):
        note = (f'<div class="pl-empty">Showing {rows} of {t_total} response tokens and '
                f"{len(cols)} of {len(per_row[0])} prompt {escape_text(str(granularity))}.</div>")
    style = f"grid-template-columns: 8em repeat({len(cols)}, minmax(1.2em, 1fr));"
    return f'{note}<div class="pl-matrix" style="{style}">{"".join(cells)}</div>'


# ----------------------------------------------------------------------------- contrast, attention
# (issue 14: "why A rather than B?", the attention view, and the top alternatives per token)

CONTRAST_CSS = """
.pl-contrast-lists { display: flex; gap: 12px; }
.pl-contrast-lists > div { flex: 1; min-width: 0; }
.pl-side-a { color: #21539c; } .pl-side-b { color: #9b1c2c; }
.pl-alt-panel { margin-top: 6px; font-family: sans-serif; font-size: 0.9em; }
.pl-alt-panel button.pl-why-not { font-size: 0.85em; padding: 0 6px; margin-left: 6px;
  cursor: pointer; border: 1px solid #999; border-radius: 4px; background: #f8f8f8; }
.pl-tok { cursor: pointer; border-radius: 3px; }
.pl-tok.pl-tok-open { outline: 2px solid #f59e0b; }
"""
"""Styles for the contrast lists, the attention view and the alternatives panel (part of `CSS`)."""
CSS += CONTRAST_CSS


def _ranked_rows(ranked: Sequence[Any], colours: Mapping[tuple[int, int], float], signed: bool,
                 intensity: float) -> str:
    rows = []
    for rank, seg in enumerate(ranked, 1):
        text, s, e, score = tuple(seg)
        c = colours.get((s, e), 0.0)
        style = (f"background-color:{colour_for(c, signed, intensity)};"
                 f"color:{text_colour_for(c, signed, intensity)}")
        label = _label(seg)
        shown = (f'<span class="pl-seglabel">{escape_text(label)}</span>'
                 f"{escape_text(_one_line(text, 60))}" if label else
                 escape_text(_one_line(text)))
        rows.append(f'<tr data-rank="{rank}"><td class="pl-num">{rank}</td>'
                    f'<td class="pl-segtext" title="{escape_text(text)}">{shown}</td>'
                    f'<td class="pl-num" style="{style}">{_fmt(float(score))}</td>'
                    f'<td class="pl-num">{int(s)}–{int(e)}</td></tr>')
    return "".join(rows)


def contrast_ranked_html(segments: Sequence[Any], *, signed: bool, a_text: str, b_text: str,
                         k: int = 10, intensity: float = 1.0, granularity: Any = "segments",
                         attrs: Mapping[str, Any] | None = None,
                         include_template: bool = False) -> str:
    """Ranked lists of a contrast "why A rather than B?": which segments push toward A, which B.

    For a signed method (Grad·Input, IG of ``log p(A) - log p(B)``) two tables: the ``k`` most
    positive segments (toward A, ``data-side="a"``) and the ``k`` most negative (toward B,
    ``data-side="b"``), each with the exact scores. For an unsigned one (Grad L2: the norm of
    the gradient of the difference) one table of the strongest segments and a note that it has
    no direction. Tables are ``table.pl-ranked`` with ``attrs`` as ``data-*`` attributes (plus
    ``data-side``); all text is escaped.
    """
    segs = [s for s in segments if str(tuple(s)[0]).strip()
            and (include_template or not _is_template(s))]
    data = "".join(f' data-{escape_text(str(key))}="{escape_text(str(value))}"'
                   for key, value in (attrs or {}).items())
    head = (f"<thead><tr><th>#</th><th>{escape_text(str(granularity))}</th><th>score</th>"
            "<th>chars</th></tr></thead>")
    a_q, b_q = escape_text(_one_line(a_text, 60)), escape_text(_one_line(b_text, 60))
    if not segs:
        return '<div class="pl-empty">No salience yet: select a response span.</div>'
    colours_all = normalize([tuple(s)[3] for s in segs], signed)
    by_pos = {(tuple(s)[1], tuple(s)[2]): c for s, c in zip(segs, colours_all, strict=True)}
    if not signed:
        ranked = sorted(segs, key=lambda s: -float(tuple(s)[3]))[: max(int(k), 0)]
        return ('<div class="pl-contrast-lists"><div>'
                f'<div class="pl-role">HOW STRONGLY EACH SEGMENT DECIDES BETWEEN “{a_q}” AND '
                f"“{b_q}” (Grad L2 has no direction: pick Grad·Input or Integrated Gradients to "
                "see which way)</div>"
                f'<table class="pl-ranked"{data} data-side="both">{head}<tbody>'
                f"{_ranked_rows(ranked, by_pos, signed, intensity)}</tbody></table>"
                "</div></div>")
    toward_a = sorted([s for s in segs if float(tuple(s)[3]) > 0],
                      key=lambda s: -float(tuple(s)[3]))[: max(int(k), 0)]
    toward_b = sorted([s for s in segs if float(tuple(s)[3]) < 0],
                      key=lambda s: float(tuple(s)[3]))[: max(int(k), 0)]
    parts = []
    for side, title, ranked in (("a", f"PUSH TOWARD A: “{a_q}”", toward_a),
                                ("b", f"PUSH TOWARD B: “{b_q}”", toward_b)):
        body = (_ranked_rows(ranked, by_pos, signed, intensity) if ranked else
                '<tr><td colspan="4" class="pl-empty">none</td></tr>')
        parts.append(f'<div><div class="pl-role pl-side-{side}">{title}</div>'
                     f'<table class="pl-ranked"{data} data-side="{side}">{head}<tbody>{body}'
                     "</tbody></table></div>")
    return f'<div class="pl-contrast-lists">{"".join(parts)}</div>'


def attention_view_html(span: Any, *, granularity: Any = "words", intensity: float = 1.0,
                        include_template: bool = False, label: str = "ATTENTION") -> str:
    """The prompt and response coloured by a span's attention shares (unsigned, purple).

    Args:
      span: a `SpanSalience` of method "attention" (`AttentionMaps.for_span`): per token, the
        share of the span's attention (mean row; shares sum to 1).
      granularity: how the prompt's shares are summed (like salience).
      intensity: colour-intensity factor.
      include_template: colour chat-template tokens and let them set the colour range.
      label: the heading (which layer / head).

    Unlike `salience_view_html` the response tokens are not clickable (no ``data-index``).
    """
    sal = span.parent
    segs = span.aggregate(granularity, side="prompt")
    resp = np.asarray(span.scores, dtype=np.float64)[sal.num_prompt_tokens:]
    counted = np.array([include_template or not _is_template(s) for s in segs], dtype=bool)
    scores = np.array([s.score for s in segs] + resp.tolist(), dtype=np.float64)
    mask = np.concatenate([counted, np.ones(resp.size, dtype=bool)])
    colours = np.zeros(scores.size)
    colours[mask] = normalize(scores[mask], False)
    prompt = _heatmap_prenormalized(sal.text, segs, colours[: len(segs)], False, intensity, 0,
                                    sal.prompt_length, include_template=include_template)
    text, p = sal.text, sal.num_prompt_tokens
    parts: list[str] = []
    pos = sal.prompt_length
    sel = range(int(span.start), int(span.stop))
    for t, (s, e) in enumerate(np.asarray(sal.offsets)[p:].tolist()):
        s, e = max(int(s), pos), int(e)
        if e <= s:
            continue
        if s > pos:
            parts.append(escape_text(text[pos:s]))
        cls = "pl-seg pl-att-selected" if t in sel else "pl-seg"
        parts.append(_seg_span(text[s:e], float(resp[t]), float(colours[len(segs) + t]), False,
                               intensity, cls=cls))
        pos = e
    if pos < len(text):
        parts.append(escape_text(text[pos:]))
    bos = float(np.asarray(span.scores)[0]) if p and sal.offsets[0][1] <= sal.offsets[0][0] \
        else 0.0
    note = (f'<div class="pl-empty">{bos:.0%} of the attention goes to the start token (no '
            "text; not drawn).</div>" if bos >= 0.005 else "")
    return ('<div class="pl-view pl-attention">'
            f'<div class="pl-role">{escape_text(label)} · PROMPT</div>'
            f'<div class="pl-text pl-prompt">{prompt}</div>'
            '<div class="pl-role">RESPONSE (the selected span is outlined in the salience '
            "view)</div>"
            f'<div class="pl-text pl-response">{"".join(parts)}</div>{note}</div>')


def token_alternatives_html(tokens: Sequence[str], logprobs: Sequence[float],
                            alternatives: Sequence[Sequence[Any]] | None, *,
                            open_index: int | None = None) -> str:
    """Response tokens coloured by probability, with the model's top alternatives.

    Each token (``span.pl-tok[data-index]``) shows ``log p`` and its alternatives on hover; a
    click opens (``open_index``) a panel that lists the alternatives with their probabilities
    and an "explain why not this one" button per alternative (``button.pl-why-not`` with
    ``data-index`` and ``data-alt``, the alternative's rank). All text is escaped.

    Args:
      tokens: ``T`` display tokens. logprobs: ``<float>[T]``.
      alternatives: per token ``[(token, probability), ...]`` best first (a prediction's
        ``response_top_tokens``), or None when the model gives none.
      open_index: the token whose panel is open, or None.
    """
    import math

    if len(tokens) != len(logprobs):
        return '<div class="pl-empty">This model gives no per-token log-probabilities.</div>'
    alts = list(alternatives) if alternatives is not None and len(alternatives) == len(tokens) \
        else None
    parts = []
    for t, (tok, lp) in enumerate(zip(tokens, logprobs, strict=True)):
        p = math.exp(min(float(lp), 0.0))
        title = f"log p = {float(lp):.3f} (p = {p:.3f})"
        if alts is not None:
            title += "\nalternatives: " + ", ".join(
                f"“{_one_line(str(a), 20)}” {float(q):.1%}" for a, q in alts[t])
        cls = "pl-seg pl-tok" + (" pl-tok-open" if open_index == t else "")
        colour = colour_for(1 - p, True, 1.0).replace(
            f"{POSITIVE_RGB[0]},{POSITIVE_RGB[1]},{POSITIVE_RGB[2]}", "214,96,77")
        parts.append(f'<span class="{cls}" data-index="{t}" style="background-color:{colour}" '
                     f'title="{escape_text(title)}">{escape_text(str(tok))}</span>')
    how = "hover for log p and the alternatives; click a token to compare" if alts is not None \
        else "hover for log p"
    out = (f'<div class="pl-role">RESPONSE TOKENS (darker = less likely; {how})</div>'
           f'<div class="pl-text">{"".join(parts)}</div>')
    if alts is not None and open_index is not None and 0 <= open_index < len(tokens):
        rows = []
        for rank, (alt, q) in enumerate(alts[open_index]):
            same = str(alt) == str(tokens[open_index])
            special = re.fullmatch(r"<[^<>\s]+>", str(alt)) is not None  # <eos>, <pad>: no text
            button = ("<i>(written)</i>" if same else "<i>(special token)</i>" if special else
                      f'<button class="pl-why-not" data-index="{open_index}" data-alt="{rank}">'
                      "explain why not this one</button>")
            rows.append(f'<tr data-alt="{rank}"><td class="pl-num">{rank + 1}</td>'
                        f'<td class="pl-segtext">“{escape_text(str(alt))}”</td>'
                        f'<td class="pl-num">{float(q):.2%}</td><td>{button}</td></tr>')
        out += (f'<div class="pl-alt-panel" data-index="{open_index}"><div class="pl-role">'
                f"ALTERNATIVES AT TOKEN {open_index} (“{escape_text(str(tokens[open_index]))}”)"
                '</div><table class="pl-ranked pl-alternatives"><thead><tr><th>#</th>'
                "<th>token</th><th>p</th><th></th></tr></thead><tbody>" + "".join(rows)
                + "</tbody></table></div>")
    return out
