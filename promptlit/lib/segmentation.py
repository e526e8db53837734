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

import importlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

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


# -- custom segments -------------------------------------------------------------------------
# Besides the built-in granularities, segments the user defines: blocks split at a separator
# regex, the labelled segments an example carries (or the fields of its template), and few-shot
# blocks found automatically. Each is a `Segmentation` object; `promptlit.salience.aggregation`
# accepts one wherever it accepts a granularity name and sums token scores into its labelled
# segments exactly as for the built-in ones.

CUSTOM_GRANULARITIES: tuple[str, ...] = ("blocks", "few-shot", "segments")
"""User-defined granularities: "blocks" (split at a separator regex), "few-shot" (repeated
labelled blocks found automatically) and "segments" (the labelled segments an example carries,
or its template's fields). See `resolve_granularity`."""

ALL_GRANULARITIES: tuple[str, ...] = (*GRANULARITIES, *CUSTOM_GRANULARITIES)
"""Every granularity name the UI offers: the built-in ones, then the custom ones."""

MAX_SEPARATOR_CHARS = 200
"""Longest separator pattern accepted (a typed regex is bounded; see `SeparatorSegmentation`)."""

SEPARATOR_TIMEOUT_S = 0.5
"""Most seconds one separator search may take before it is stopped as too slow."""

MAX_CUSTOM_SEGMENTS = 2000
"""Most labelled segments one example may carry (`segments`, template fields)."""

MAX_LABEL_CHARS = 200
"""Longest label a labelled segment may have."""


class LabelledSegment(Segment):
    """A `Segment` of a user-defined granularity, with its label ("example 1", "block 2", a
    template field's name; "" for text no label covers).

    It unpacks and compares like a `Segment` (the label is an attribute, not a fifth field);
    `display_name` is the label, or the text when there is none.
    """

    label: str = ""

    def __new__(cls, text: str, start: int, end: int, score: float, label: str = ""
                ) -> LabelledSegment:
        self = super().__new__(cls, text, start, end, score)
        self.label = str(label)
        return self

    def _replace(self, **kwargs: Any) -> LabelledSegment:
        label = kwargs.pop("label", self.label)
        values = {**self._asdict(), **kwargs}
        return type(self)(values["text"], values["start"], values["end"], values["score"], label)

    def __repr__(self) -> str:
        return (f"LabelledSegment(text={self.text!r}, start={self.start}, end={self.end}, "
                f"score={self.score!r}, label={self.label!r})")

    @property
    def display_name(self) -> str:
        """The label, or the text when the segment has none."""
        return self.label or self.text


def segment_name(segment: Any) -> str:
    """What to call a segment in a ranked list or a matrix header: a `LabelledSegment`'s
    label, else its text."""
    label = getattr(segment, "label", "")
    return str(label) if label else str(tuple(segment)[0])


class Segmentation:
    """A user-defined granularity: splits text into labelled segments.

    Subclasses implement `_labelled` (labelled content spans in a range, possibly with gaps);
    `labelled_spans` clips and strips them, checks them and fills the gaps with unlabelled
    segments, so that like every granularity the segments tile the text and every token's
    score lands in exactly one of them.

    Attributes:
        name: the granularity's name ("blocks", "few-shot", "segments").
    """

    name: str = "custom"

    def _labelled(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        raise NotImplementedError

    def labelled_spans(self, text: str, start: int = 0, end: int | None = None
                       ) -> list[tuple[int, int, str]]:
        """Labelled content spans ``[(start, end, label), ...]`` of ``text[start:end]``.

        Positions index ``text`` (absolute). Spans are sorted, disjoint, non-empty and carry no
        leading or trailing whitespace; text between labelled spans that is not whitespace is a
        segment of its own with the label "".

        Raises:
            ValueError: the segmentation cannot apply to this text (a clear reason).
        """
        end = len(text) if end is None else end
        out: list[tuple[int, int, str]] = []
        pos = start

        def gap(hi: int) -> None:
            for s, e in _whole(text[pos:hi]):
                out.append((s + pos, e + pos, ""))

        for s, e, label in sorted(self._labelled(text, start, end)):
            s, e = max(s, start, pos), min(e, end)
            stripped = _strip_span(text, s, e) if e > s else None
            if stripped is None:
                continue
            if stripped[0] > pos:
                gap(stripped[0])
            out.append((stripped[0], stripped[1], label))
            pos = stripped[1]
        if pos < end:
            gap(end)
        return out

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Content spans of the whole text, like `segment_spans` (labels dropped)."""
        return [(s, e) for s, e, _ in self.labelled_spans(text)]

    def __str__(self) -> str:
        return self.name


class SeparatorSegmentation(Segmentation):
    """Blocks of text split at a separator regex: each match starts a new block.

    The pattern is matched with ``MULTILINE`` (so ``^## `` matches at every line start) and
    bounded: at most `MAX_SEPARATOR_CHARS` characters, and each search is stopped after
    `SEPARATOR_TIMEOUT_S` seconds (the ``regex`` package's timeout; a pattern prone to
    catastrophic backtracking, like ``(a+)+$``, fails with a clear error instead of hanging the
    server). Blocks are labelled "block 1", "block 2", ... in text order; the separator's text
    belongs to the block it starts.

    Example:
        >>> seg = SeparatorSegmentation(r"^## ")
        >>> text = "Intro\\n## A\\nfoo\\n## B\\nbar"
        >>> [(text[s:e], label) for s, e, label in seg.labelled_spans(text)]
        [('Intro', 'block 1'), ('## A\\nfoo', 'block 2'), ('## B\\nbar', 'block 3')]

    Raises:
        ValueError: an empty, too long or invalid pattern (the message says which and where).
    """

    name = "blocks"

    def __init__(self, pattern: str, *, label: str = "block",
                 timeout: float = SEPARATOR_TIMEOUT_S) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("separator: the pattern is empty; type a regular expression that "
                             "starts each block, e.g. ^## (a line starting with '## ')")
        if len(pattern) > MAX_SEPARATOR_CHARS:
            raise ValueError(f"separator: the pattern has {len(pattern)} characters; at most "
                             f"{MAX_SEPARATOR_CHARS} are accepted. Shorten it")
        self.pattern, self.label, self.timeout = pattern, label, float(timeout)
        self._regex = _compile_separator(pattern)

    def _labelled(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        cuts = [start]
        for s in _separator_starts(self._regex, self.pattern, text, start, end, self.timeout):
            if s > cuts[-1]:
                cuts.append(s)
        cuts.append(end)
        pieces = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False)
                  if _strip_span(text, a, b) is not None]
        return [(a, b, f"{self.label} {k}") for k, (a, b) in enumerate(pieces, 1)]

    def __repr__(self) -> str:
        return f"SeparatorSegmentation({self.pattern!r})"

    def __str__(self) -> str:
        return f"blocks /{self.pattern}/"


def _compile_separator(pattern: str) -> Any:
    """``pattern`` compiled (``regex`` package when present, else ``re``), MULTILINE."""
    try:
        regex: Any = importlib.import_module("regex")  # a timeout per search (re has none)

        try:
            return regex.compile(pattern, regex.MULTILINE | regex.VERSION0)
        except regex.error as e:
            pos = f" at position {e.pos}" if getattr(e, "pos", None) is not None else ""
            raise ValueError(f"separator {pattern!r} is not a valid regular expression: "
                             f"{e.msg if hasattr(e, 'msg') else e}{pos}. Fix it, or escape "
                             r"special characters with \ (e.g. \#\# or \*\*\*)") from None
    except ImportError:  # pragma: no cover - regex comes with keras-hub
        pass
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as e:
        pos = f" at position {e.pos}" if e.pos is not None else ""
        raise ValueError(f"separator {pattern!r} is not a valid regular expression: {e.msg}"
                         f"{pos}. Fix it, or escape special characters with \\ "
                         r"(e.g. \#\# or \*\*\*)") from None


def _separator_starts(compiled: Any, pattern: str, text: str, start: int, end: int,
                      timeout: float) -> list[int]:
    """Start positions of the separator's matches in ``text[start:end]``, within ``timeout``."""
    if isinstance(compiled, re.Pattern):  # pragma: no cover - no `regex` package
        if end - start > 100_000:  # `re` cannot be stopped: keep it to bounded texts
            raise ValueError("separator: the text is too long to split safely without the "
                             "regex package (pip install regex)")
        return [m.start() for m in compiled.finditer(text, start, end)]
    try:
        return [m.start() for m in compiled.finditer(text, start, end, timeout=timeout)]
    except TimeoutError:
        raise ValueError(f"separator {pattern!r} took longer than {timeout:g} s on a "
                         f"{end - start:,}-character text (likely catastrophic backtracking); "
                         "simplify it, e.g. avoid nested repeats such as (a+)+ or (.*)*"
                         ) from None


class LabelledSpans(Segmentation):
    """Segments given by character offsets and labels (an example's ``segments``, a template's
    fields).

    Args:
        spans: ``(start, end, label)`` triples or ``{"label", "start", "end"}`` objects (with
            an optional ``"text"``: the characters the segment had when it was defined);
            half-open character offsets into ``source_text`` (or into the text segmented).
        source_text: the text the offsets index (an example's prompt). A segment whose
            ``text`` no longer sits at its offsets (the prompt was edited, e.g. in the Datapoint
            Editor) moves to where that text now occurs, when it occurs exactly once; else it is
            left out (`dropped` names it) and its characters are unlabelled. When the segmented
            text differs from ``source_text`` (the model reads the prompt wrapped in a chat
            template), the offsets are shifted to where ``source_text`` sits in it.
        name: the granularity's name.

    Raises:
        ValueError: a malformed span (not a label and two whole numbers, ``start >= end``,
            negative, beyond ``source_text``), spans that overlap, or too many of them.
    """

    name = "segments"

    def __init__(self, spans: Sequence[Any], *, source_text: str | None = None,
                 name: str = "segments") -> None:
        self.name = name
        self.source_text = source_text
        self.dropped: list[str] = []
        checked = _check_segments(spans, None, "segments")
        if source_text is None:
            self.items = [(s, e, label) for s, e, label, _ in checked]
            return
        kept: list[tuple[int, int, str]] = []
        for s, e, label, text in checked:
            if text is not None and source_text[s:e] != text:
                at = source_text.find(text) if text else -1
                if at < 0 or source_text.find(text, at + 1) >= 0:
                    self.dropped.append(label)
                    continue
                s, e = at, at + len(text)
            elif e > len(source_text):
                raise ValueError(f"segments: {label!r} ends at {e}, beyond the prompt "
                                 f"({len(source_text)} characters); offsets index the prompt, "
                                 "end exclusive")
            kept.append((s, e, label))
        kept.sort()
        self.items = []
        for item in kept:  # a moved segment that now overlaps another is left out
            if self.items and item[0] < self.items[-1][1]:
                self.dropped.append(item[2])
                continue
            self.items.append(item)

    def _labelled(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        shift = 0
        if self.source_text is not None and not text.startswith(self.source_text):
            shift = text.find(self.source_text)
            if shift < 0 or text.find(self.source_text, shift + 1) >= 0:
                raise ValueError(
                    "the example's segments index its prompt, but the text explained is not "
                    "that prompt (a chat template rewrote it, or the prompt changed); update "
                    "the example's 'segments' (or pick another granularity)")
        out = []
        for s, e, label in self.items:
            s, e = s + shift, e + shift
            if e > start and s < end:
                out.append((s, e, label))
        return out

    def __repr__(self) -> str:
        return f"LabelledSpans({len(self.items)} segments)"


def check_segments(spans: Any, *, text_length: int | None = None,
                   where: str = "segments") -> list[tuple[int, int, str]]:
    """Checks labelled spans and returns them as sorted ``(start, end, label)`` triples.

    Args:
        spans: a list of ``{"label": str, "start": int, "end": int}`` objects (optionally with
            ``"text"``, the segment's characters) or ``(start, end, label)`` triples.
        text_length: the length of the text they index (None: not checked).
        where: the field name for messages (``segments[2].end`` ...).

    Raises:
        ValueError: naming the entry and field that is wrong, and how to fix it.
    """
    return [(s, e, label) for s, e, label, _ in _check_segments(spans, text_length, where)]


def _check_segments(spans: Any, text_length: int | None, where: str
                    ) -> list[tuple[int, int, str, str | None]]:
    """`check_segments`, keeping each segment's ``text`` (None when not given)."""
    if not isinstance(spans, Sequence) or isinstance(spans, str | bytes):
        raise ValueError(f"{where}: expected a list of {{\"label\": ..., \"start\": ..., \"end\": "
                         f"...}} objects, got {type(spans).__name__}")
    if len(spans) > MAX_CUSTOM_SEGMENTS:
        raise ValueError(f"{where}: {len(spans)} segments; at most {MAX_CUSTOM_SEGMENTS} are "
                         "accepted. Merge some")
    out: list[tuple[int, int, str, str | None]] = []
    for i, item in enumerate(spans):
        here = f"{where}[{i}]"
        text: Any = None
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - {"label", "start", "end", "text"})
            if unknown:
                raise ValueError(f"{here}: unknown key(s) {unknown}; a segment has 'label', "
                                 "'start', 'end' (and optionally 'text')")
            missing = [k for k in ("label", "start", "end") if k not in item]
            if missing:
                raise ValueError(f"{here}: missing {missing}; write "
                                 '{"label": "example 1", "start": 0, "end": 120}')
            label, start, end, text = item["label"], item["start"], item["end"], item.get("text")
            if text is not None and not isinstance(text, str):
                raise ValueError(f"{here}.text: must be a string (the segment's characters), "
                                 f"got {type(text).__name__}")
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 3:
            start, end, label = item
        else:
            raise ValueError(f"{here}: expected an object "
                             '{"label": "example 1", "start": 0, "end": 120}, got '
                             f"{type(item).__name__}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{here}.label: must be a non-empty string (what the segment is "
                             "called in rankings), got " + repr(label)[:60])
        if len(label) > MAX_LABEL_CHARS:
            raise ValueError(f"{here}.label: {len(label)} characters; at most "
                             f"{MAX_LABEL_CHARS}. Shorten it")
        for key, value in (("start", start), ("end", end)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{here}.{key}: must be a whole number (a character offset), "
                                 f"got {value!r}")
        start, end = int(start), int(end)
        if start < 0 or end <= start:
            raise ValueError(f"{here}: start={start}, end={end}; need 0 <= start < end "
                             "(half-open character offsets, like text[start:end])")
        if text_length is not None and end > text_length:
            raise ValueError(f"{here}.end: {end} is beyond the prompt ({text_length} "
                             "characters); offsets index the prompt, end exclusive")
        if text is not None and len(text) != end - start:
            raise ValueError(f"{here}.text: {len(text)} characters, but [start, end) spans "
                             f"{end - start}; 'text' must be exactly prompt[start:end]")
        out.append((start, end, label.strip(), text))
    out.sort(key=lambda x: (x[0], x[1]))
    for (s1, e1, l1, _), (s2, _, l2, _) in zip(out, out[1:], strict=False):
        if s2 < e1:
            raise ValueError(f"{where}: {l1!r} [{s1}, {e1}) and {l2!r} [{s2}, ...) overlap; "
                             "segments must not overlap (end is exclusive)")
    return out


# Few-shot blocks: a line opening with "Label:" whose label repeats.
_FEWSHOT_LABEL = re.compile(r"[ \t]*([A-Z][\w'/ -]{0,39}):(?=\s|$)")


class FewShotSegmentation(Segmentation):
    """Few-shot blocks found automatically: the prompt repeats one labelled structure.

    Lines that open with a capitalised label and a colon ("Taste-likes: ...", "Problem: ...")
    are read as fields. The first label that occurs at least ``min_repeats`` times opens a
    block at each of its occurrences; a block runs to the next one (the last to the end). Text
    before the first block is the "instruction". Blocks are "example 1", "example 2", ...; the
    last block is the "query" when it lacks a label of the first block or ends in an empty
    field ("Analysis:") for the model to fill. Without a repeated label the whole text is one
    segment, "prompt".

    Example:
        >>> text = "Rate it.\\n\\nQ: a\\nA: yes\\n\\nQ: b\\nA: no\\n\\nQ: c\\nA:"
        >>> [(label, text[s:e]) for s, e, label in FewShotSegmentation().labelled_spans(text)]
        [('instruction', 'Rate it.'), ('example 1', 'Q: a\\nA: yes'), ('example 2', 'Q: b\\nA: no'), ('query', 'Q: c\\nA:')]
    """

    name = "few-shot"

    def __init__(self, min_repeats: int = 2) -> None:
        if int(min_repeats) < 2:
            raise ValueError(f"min_repeats must be >= 2 (a structure repeats), got {min_repeats}")
        self.min_repeats = int(min_repeats)

    def fields(self, text: str, start: int = 0, end: int | None = None
               ) -> list[tuple[int, str, bool]]:
        """``(line_start, label, empty)`` of each labelled line in the range (``empty``: nothing
        after the colon)."""
        end = len(text) if end is None else end
        out = []
        for ls, le, _ in _line_spans(text[start:end]):
            m = _FEWSHOT_LABEL.match(text, start + ls, start + le)
            if m:
                out.append((start + ls, m.group(1).strip(), not text[m.end():start + le].strip()))
        return out

    def _labelled(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        fields = self.fields(text, start, end)
        counts: dict[str, int] = {}
        for _, label, _ in fields:
            counts[label] = counts.get(label, 0) + 1
        opener = next((label for _, label, _ in fields if counts[label] >= self.min_repeats),
                      None)
        if opener is None:
            return [(start, end, "prompt")]
        starts = [pos for pos, label, _ in fields if label == opener]
        bounds = list(zip(starts, [*starts[1:], end], strict=True))
        structure = {label for pos, label, _ in fields if bounds[0][0] <= pos < bounds[0][1]}
        out = [(start, starts[0], "instruction")] if starts[0] > start else []
        for k, (a, b) in enumerate(bounds, 1):
            inside = [(label, empty) for pos, label, empty in fields if a <= pos < b]
            is_last = k == len(bounds)
            query = is_last and len(bounds) > 1 and (
                not structure <= {label for label, _ in inside} or inside[-1][1])
            out.append((a, b, "query" if query else f"example {k}"))
        return out

    def __repr__(self) -> str:
        return "FewShotSegmentation()"


Granularity = str | Segmentation
"""A granularity: a name (`ALL_GRANULARITIES`) or a `Segmentation` object."""


def render_template(template: str, fields: Mapping[str, Any]) -> tuple[str, list[tuple[int, int, str]]]:
    """Renders a prompt template and says where each field went.

    ``{name}`` is replaced by ``fields[name]`` (a string); ``{{`` and ``}}`` are literal braces.
    Every placement of a field is a labelled segment, labelled with the field's name.

    Example:
        >>> render_template("Q: {question}\\nA:", {"question": "Why?"})
        ('Q: Why?\\nA:', [(3, 7, 'question')])

    Raises:
        ValueError: unbalanced braces, a placeholder with a format spec, conversion, index or
            attribute (only plain ``{name}``), a field the template uses but ``fields`` lacks, or
            a field value that is not a string.
    """
    import string

    if not isinstance(template, str):
        raise ValueError(f"template: must be a string, got {type(template).__name__}")
    if not isinstance(fields, Mapping):
        raise ValueError(f"fields: must be an object of field name -> text, got "
                         f"{type(fields).__name__}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"template: {e}; write fields as {{name}} and literal braces as "
                         "{{ and }}") from None
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        pos += len(literal)
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ValueError(f"template: placeholder {{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}} is not a plain field name; write "
                             "{name} (letters, digits, _)")
        if name not in fields:
            raise ValueError(f"template: uses field {name!r}, which 'fields' lacks (it has "
                             f"{sorted(fields)}); add it to 'fields'")
        value = fields[name]
        if not isinstance(value, str):
            raise ValueError(f"fields.{name}: must be a string, got {type(value).__name__}")
        out.append(value)
        if value:
            spans.append((pos, pos + len(value), name))
        pos += len(value)
    return "".join(out), spans


def example_segmentation(example: Mapping[str, Any]) -> LabelledSpans:
    """The labelled segments an example defines: its ``segments``, else its ``template``'s
    fields (see `render_template`), as offsets into its ``prompt``.

    A prompt edited since (in the Datapoint Editor) keeps the labels of the segments whose text
    it still holds, once (`LabelledSpans`); a template's fields are found by their values.

    Raises:
        ValueError: the example defines none, or they are malformed.
    """
    prompt = example.get("prompt")
    if not isinstance(prompt, str):
        raise ValueError("custom segments index the example's prompt, and it has none")
    if example.get("segments") is not None:
        return LabelledSpans(example["segments"], source_text=prompt)
    if example.get("template") is not None:
        rendered, spans = render_template(example["template"], example.get("fields") or {})
        return LabelledSpans([{"label": label, "start": s, "end": e, "text": rendered[s:e]}
                              for s, e, label in spans], source_text=prompt)
    raise ValueError("this example defines no segments: give it a 'segments' list "
                     '([{"label": "example 1", "start": 0, "end": 120}, ...]) or a \'template\' '
                     "with 'fields'; or pick 'few-shot' or 'blocks'")


def has_custom_segments(example: Mapping[str, Any] | None) -> bool:
    """Whether an example carries ``segments`` or a ``template`` (the "segments" granularity)."""
    return bool(example) and (example.get("segments") is not None  # type: ignore[union-attr]
                              or example.get("template") is not None)  # type: ignore[union-attr]


def resolve_granularity(granularity: Granularity, *, example: Mapping[str, Any] | None = None,
                        separator: str | None = None) -> Granularity:
    """A granularity name made ready for aggregation: built-in names unchanged, custom ones as
    `Segmentation` objects.

    Args:
        granularity: a name from `ALL_GRANULARITIES` or a `Segmentation`.
        example: the example explained (for "segments": its ``segments`` or template fields).
        separator: the separator regex (for "blocks").

    Raises:
        ValueError: an unknown name, "blocks" without a separator, "segments" for an example
            that defines none (each with how to fix it).
    """
    if isinstance(granularity, Segmentation):
        return granularity
    if granularity in GRANULARITIES:
        return granularity
    if granularity == "few-shot":
        return FewShotSegmentation()
    if granularity == "blocks":
        if not separator:
            raise ValueError("the 'blocks' granularity splits the prompt at a separator: type "
                             "a regular expression in the separator box (e.g. ^## ) or pass "
                             "--segment-sep")
        return SeparatorSegmentation(separator)
    if granularity == "segments":
        if example is None:
            raise ValueError("the 'segments' granularity needs the example that defines them")
        return example_segmentation(example)
    raise ValueError(f"Unknown granularity {granularity!r}; expected one of {ALL_GRANULARITIES}.")
