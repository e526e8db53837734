"""Split text into words, sentences, lines and paragraphs as character spans.

Salience is computed per token, but people read prompts in words, sentences, lines and paragraphs.
This module turns a text into *character spans* of the original string, so that token scores can be
summed into those units exactly (see `promptlit.salience.aggregation`).

Conventions (the same for every granularity, so that results are predictable):

* Offsets are Python string indices (Unicode code points), half-open ``[start, end)``, exactly as
  ``text[start:end]`` slices them. Emoji, accented letters and other non-ASCII characters are thus
  one or more code points; nothing here counts bytes.
* A segment's span covers its *content*: it never starts or ends with whitespace, and no segment is
  empty or whitespace-only. Whitespace *between* two segments (spaces, ``\\n``, ``\\r\\n``, blank
  lines) belongs to no span; for scoring it is owned by the **preceding** segment, and whitespace
  before the first segment is owned by the first segment (`owner_bounds` gives these extended
  spans, which tile the text without gaps).
* Spans are sorted and do not overlap.
* A text that is empty or whitespace-only has no segments.

Granularities:

``"words"``
    Maximal runs of non-whitespace characters (`str.isspace`), so punctuation stays attached:
    ``"Hello, world."`` is ``["Hello,", "world."]``.
``"sentences"``
    A sentence ends after ``.``, ``!``, ``?`` or ``…`` (plus any closing quotes/brackets right after
    it) when whitespace or the end of the text follows, unless the word ending there is a known
    abbreviation (`ABBREVIATIONS`, e.g. "e.g.", "Dr.") or a single letter initial ("J."). A sentence
    also ends at a line break after a heading (starts with ``#``), a list item
    (``-``, ``*``, ``+``, ``•``, ``1.``, ``1)``, ``a)``) or ends with ``:``; before a line that is
    a heading, a list item or starts with a "Label:" (a capitalised label of up to 40 characters
    followed by ``:``, e.g. "Question: ..."); and always at a blank line. Hard-wrapped prose lines
    continue the sentence, and a list enumerator ("1.") never ends a sentence.
``"lines"``
    Split at line breaks (``\\n``, ``\\r\\n``, ``\\r``, ``\\u2028``, ``\\u2029``); each non-blank line
    is one segment with its leading indentation and trailing whitespace (including ``\\r``)
    excluded. Blank lines produce no segment (their characters are owned by the line before).
``"paragraphs"``
    Blocks of lines separated by one or more blank (empty or whitespace-only) lines.
``"turns"``
    The whole text as one segment (stripped). A conversation's turns are the texts *between* its
    chat-template tokens, which only the token level knows: `promptlit.salience.aggregation`
    segments each such run on its own, so at "turns" each message of a chat prompt is one
    segment, and a prompt without a template is one turn.

Example:
    >>> text = "Hi there.  How are you?\\n\\nFine."
    >>> [text[s:e] for s, e in segment_spans(text, "sentences")]
    ['Hi there.', 'How are you?', 'Fine.']
    >>> [text[s:e] for s, e in segment_spans(text, "paragraphs")]
    ['Hi there.  How are you?', 'Fine.']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

SEGMENT_GRANULARITIES: tuple[str, ...] = ("words", "sentences", "lines", "paragraphs", "turns")
"""Granularities `segment_spans` understands ("tokens" is handled by the aggregation module)."""

GRANULARITIES: tuple[str, ...] = ("tokens", *SEGMENT_GRANULARITIES)
"""Every granularity the UI offers, finest first."""

ABBREVIATIONS: frozenset[str] = frozenset(
    {
        "e.g.", "i.e.", "etc.", "vs.", "cf.", "al.", "approx.", "ca.", "viz.",
        "mr.", "mrs.", "ms.", "dr.", "prof.", "sr.", "jr.", "st.", "mt.",
        "no.", "nos.", "fig.", "figs.", "eq.", "vol.", "pp.", "p.", "ch.", "sec.",
        "jan.", "feb.", "mar.", "apr.", "jun.", "jul.", "aug.", "sep.", "sept.", "oct.",
        "nov.", "dec.", "u.s.", "u.k.", "a.m.", "p.m.",
    }
)  # fmt: skip
"""Lower-cased words ending in "." that do not end a sentence when followed by a space.

"etc." is included: it ends a sentence only at a line break/paragraph or the end of the text.
"""


class Segment(NamedTuple):
    """A scored piece of text: iterable as ``(text, char_start, char_end, score)``.

    ``text == full_text[start:end]``; ``score`` is the exact sum of the scores of the tokens
    assigned to the segment (see `promptlit.salience.aggregation`).
    """

    text: str
    start: int
    end: int
    score: float


class TemplateSegment(Segment):
    """A chat-template token as a segment of its own (``<start_of_turn>``, a role word, ...).

    The same four fields as `Segment` (it unpacks and compares the same); only its class says
    that the text is the chat format's, not the user's. ``text`` is the token's display text
    (e.g. ``"<bos>"`` for a start token that has no characters, ``start == end``).
    """

    __slots__ = ()


_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029]")
_NON_SPACE = re.compile(r"\S+")
_BLANK_LINES = re.compile(r"(?:[^\S\n\r\u2028\u2029]*(?:\r\n|[\n\r\u2028\u2029])){2,}")
# Sentence-final punctuation, any closing quotes/brackets, then whitespace or the end of the text.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]}]*(?=\s|$)")
_LIST_ITEM = re.compile(
    r"^\s*(?:[-*+•‣◦–]\s|\d{1,3}[.)]\s|[a-zA-Z][.)]\s|\(\d{1,3}\)\s|\([a-zA-Z]\)\s)"
)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_ENUMERATOR = re.compile(r"\s*(?:\d{1,3}|[a-zA-Z])\.$")
_LABEL = re.compile(r"^\s*[A-Z][\w'/ -]{0,39}:(?:\s|$)")


def _check_granularity(granularity: str) -> None:
    if granularity not in SEGMENT_GRANULARITIES:
        raise ValueError(
            f"Unknown granularity {granularity!r}; expected one of {SEGMENT_GRANULARITIES} "
            "('tokens' is handled by promptlit.salience.aggregation.aggregate)."
        )


def _strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink ``[start, end)`` to exclude leading/trailing whitespace; None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _line_spans(text: str) -> list[tuple[int, int, int]]:
    """Every line as ``(start, content_end, next_start)``, blank lines included.

    ``content_end`` excludes the line break; ``next_start`` is where the next line begins.
    """
    lines = []
    pos = 0
    for m in _LINE_BREAK.finditer(text):
        lines.append((pos, m.start(), m.end()))
        pos = m.end()
    lines.append((pos, len(text), len(text)))
    return lines


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _NON_SPACE.finditer(text)]


def _lines(text: str) -> list[tuple[int, int]]:
    spans = []
    for start, end, _ in _line_spans(text):
        stripped = _strip_span(text, start, end)
        if stripped is not None:
            spans.append(stripped)
    return spans


def _whole(text: str) -> list[tuple[int, int]]:
    stripped = _strip_span(text, 0, len(text))
    return [stripped] if stripped is not None else []


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    for m in _BLANK_LINES.finditer(text):
        stripped = _strip_span(text, pos, m.start())
        if stripped is not None:
            spans.append(stripped)
        pos = m.end()
    stripped = _strip_span(text, pos, len(text))
    if stripped is not None:
        spans.append(stripped)
    return spans


def _is_structural(line: str) -> bool:
    """True for a heading or a list item: lines that are a sentence of their own."""
    return bool(_LIST_ITEM.match(line) or _HEADING.match(line))


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the word ending at ``end`` (just after its final ".") is an abbreviation."""
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:end].lstrip("\"'“‘«([{").lower()
    if word in ABBREVIATIONS:
        return True
    # A single letter initial such as "J." in "J. R. R. Tolkien".
    return len(word) == 2 and word[0].isalpha() and word[1] == "."


def _sentence_breaks_in_line(text: str, start: int, end: int) -> list[int]:
    """Character positions (exclusive ends) where a sentence ends inside ``text[start:end]``."""
    breaks = []
    for m in _SENTENCE_END.finditer(text, start, end):
        punct = text[m.start() : m.end()].rstrip("\"'”’»)]}")
        if punct == "." and _is_abbreviation(text, m.start() + 1):
            continue
        if punct == "." and _ENUMERATOR.match(text, start, m.start() + 1):
            continue  # "1." opening a list item
        breaks.append(m.end())
    return breaks


def _sentences(text: str) -> list[tuple[int, int]]:
    lines = _line_spans(text)
    breaks: list[int] = []
    for i, (start, end, _) in enumerate(lines):
        line = text[start:end]
        breaks.extend(_sentence_breaks_in_line(text, start, end))
        if not line.strip():
            breaks.append(start)  # a blank line always separates sentences
            continue
        next_line = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""
        if (
            _is_structural(line)
            or line.rstrip().endswith(":")
            or _is_structural(next_line)
            or _LABEL.match(next_line)
            or not next_line.strip()
        ):
            breaks.append(end)
    spans = []
    pos = 0
    for b in sorted(set(breaks)) + [len(text)]:
        if b <= pos:
            continue
        stripped = _strip_span(text, pos, b)
        if stripped is not None:
            spans.append(stripped)
        pos = b
    return spans


def segment_spans(text: str, granularity: str) -> list[tuple[int, int]]:
    """Character spans ``[(start, end), ...]`` of ``text`` at one granularity.

    Args:
        text: the text to split (any Unicode; ``\\r\\n`` line endings are fine).
        granularity: one of "words", "sentences", "lines", "paragraphs", "turns" (see the module
            docstring for the exact rules).

    Returns:
        Sorted, non-overlapping, non-empty spans whose content has no leading or trailing
        whitespace. ``[text[s:e] for s, e in spans]`` are the segments.

    Raises:
        ValueError: unknown granularity.
    """
    _check_granularity(granularity)
    if granularity == "words":
        return _word_spans(text)
    if granularity == "lines":
        return _lines(text)
    if granularity == "paragraphs":
        return _paragraphs(text)
    if granularity == "turns":
        return _whole(text)
    return _sentences(text)


def owner_bounds(spans: Sequence[tuple[int, int]], text_length: int) -> np.ndarray:
    """Extend content spans so they tile ``[0, text_length)``: ``<int>[num_spans, 2]``.

    Whitespace between two spans goes to the preceding span; whitespace before the first span goes
    to the first. Segment ``i`` owns characters ``[bounds[i, 0], bounds[i, 1])``.
    """
    n = len(spans)
    bounds = np.zeros((n, 2), dtype=np.int64)
    for i, (start, _) in enumerate(spans):
        bounds[i, 0] = 0 if i == 0 else start
        bounds[i, 1] = spans[i + 1][0] if i + 1 < n else text_length
    return bounds


def segment_index_of(positions: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """The segment owning each character position: ``<int>[P]``; -1 when there is no segment.

    Args:
        positions: ``<int>[P]`` character positions (clipped into the text by the caller).
        spans: content spans as returned by `segment_spans`, positions relative to the same text.

    Returns:
        For each position, the index of the segment whose owned range (`owner_bounds`) contains
        it: the segment it is in, else the last segment starting at or before it, else segment 0.
    """
    positions = np.asarray(positions, dtype=np.int64)
    if not spans:
        return np.full(positions.shape, -1, dtype=np.int64)
    starts = np.asarray([s for s, _ in spans], dtype=np.int64)
    idx = np.searchsorted(starts, positions, side="right") - 1
    return np.maximum(idx, 0)
