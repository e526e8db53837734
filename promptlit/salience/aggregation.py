"""Sum per-token salience into words, sentences, lines and paragraphs, exactly.

Token scores are attached to the original text through character offsets (``offsets[i] =
[start, end)`` of token ``i``, Python string indices). A segment's score is the **sum** of the
scores of the tokens assigned to it, so summing the segments of a range gives exactly the sum of
its tokens at every granularity (up to float rounding).

Assignment rule (one rule, every granularity):

* A token is assigned to the segment that owns its **anchor**: the first non-whitespace character
  of ``text[start:end]``. So a SentencePiece/GPT-2 token with a leading space (" world") belongs to
  the word it starts, and a token straddling a boundary ("ld. The") belongs to the segment of its
  first visible character ("world.").
* A whitespace-only token ("\\n", "  ") is anchored at its first character; whitespace between two
  segments is owned by the preceding segment, and whitespace before the first segment by the first
  (`promptlit.lib.segmentation.owner_bounds`). So a newline token counts towards the line it ends.
* A token with an empty span (``start == end``, or a negative offset; e.g. ``<bos>``) has no
  characters and is **not** part of any word, sentence, line or paragraph. It still appears at the
  "tokens" granularity (anchored at its ``start``).
* With ``char_range=(a, b)`` only tokens anchored in ``[a, b)`` count, and the segmentation is that
  of ``text[a:b]`` alone (a prompt's last sentence does not run into the response).
* Chat templates: with ``template_mask`` (``<bool>[N]``, True for chat-template tokens such as
  ``<start_of_turn>``, role words and control tokens), template tokens are segments of their own
  (`TemplateSegment`): each template token at "tokens", each run of consecutive template tokens
  (e.g. ``<end_of_turn>\\n<start_of_turn>model\\n``) at every other granularity, even when
  they have no characters (``<bos>``). The text between template tokens is segmented run by run:
  a sentence never runs from one message into the template or the next message, and at "turns"
  each message is one segment. Scores still sum exactly (template segments included).

* Custom segments (`promptlit.lib.segmentation.Segmentation`: blocks split at a separator
  regex, an example's labelled ``segments`` or template fields, few-shot blocks): pass the
  object (or "few-shot") as the granularity. Tokens are assigned by the same anchor rule, text
  between labelled spans is a segment of its own (label ""), and the segments are
  `LabelledSegment` objects carrying their label; scores sum exactly as for the built-in ones.

Display helpers `clean_token` / `clean_tokens` turn tokenizer pieces into the characters they
stand for (SentencePiece "▁", byte-fallback "<0x0A>", GPT-2 byte-level "Ġ"/"Ċ").

Example:
    >>> import numpy as np
    >>> text = "Hello world."
    >>> offsets = np.array([[0, 5], [5, 9], [9, 12]])          # "Hello", " wor", "ld."
    >>> [(s.text, s.score) for s in aggregate(np.array([1.0, 2.0, 4.0]), offsets, text, "words")]
    [('Hello', 1.0), ('world.', 6.0)]
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from promptlit.lib.segmentation import (
    ALL_GRANULARITIES,
    GRANULARITIES,
    Granularity,
    LabelledSegment,
    Segment,
    Segmentation,
    TemplateSegment,
    resolve_granularity,
    segment_index_of,
    segment_spans,
)

__all__ = [
    "ALL_GRANULARITIES",
    "GRANULARITIES",
    "Granularity",
    "LabelledSegment",
    "Segment",
    "Segmentation",
    "TemplateSegment",
    "aggregate",
    "assign_tokens",
    "clean_token",
    "clean_tokens",
    "token_anchors",
    "tokens_in_char_span",
    "tokens_in_segment",
]

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPM_SPACE = "\u2581"  # "▁"


@lru_cache(maxsize=1)
def _gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: printable stand-in character -> byte value."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _is_byte_level_piece(token: str) -> bool:
    """Whether a piece uses GPT-2's remapped byte characters (U+0100..U+0143, e.g. "Ġ", "Ċ")."""
    return any(0x100 <= ord(c) <= 0x143 for c in token)


def _token_bytes(token: str, byte_level: bool) -> bytes:
    """The bytes a tokenizer piece stands for."""
    if byte_level:
        table = _gpt2_byte_decoder()
        if token and all(c in table for c in token):
            return bytes(table[c] for c in token)
        return token.encode("utf-8")  # special tokens etc.
    out = bytearray()
    pos = 0
    for m in _BYTE_TOKEN.finditer(token):
        out += token[pos : m.start()].replace(_SPM_SPACE, " ").encode("utf-8")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += token[pos:].replace(_SPM_SPACE, " ").encode("utf-8")
    return bytes(out)


def clean_token(token: str) -> str:
    """The text a single tokenizer piece stands for, for display.

    * SentencePiece: "▁" -> " "; byte-fallback pieces "<0x0A>" -> "\\n" (several byte pieces in one
      string are decoded together: "<0xC3><0xA9>" -> "é").
    * GPT-2 byte-level BPE (pieces using "Ġ", "Ċ", ... ): decoded byte by byte, "Ġ" -> " ",
      "Ċ" -> "\\n", "ĉ" -> "\\t".
    * Anything that does not decode to valid UTF-8 on its own (half of a multi-byte character)
      is returned unchanged; use `clean_tokens` on the whole sequence to join such pieces.
    """
    byte_level = _is_byte_level_piece(token) and _SPM_SPACE not in token
    raw = _token_bytes(token, byte_level)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return token


def clean_tokens(tokens: Sequence[str], *, byte_level: bool | None = None) -> list[str]:
    """Display text for a whole token sequence, joining multi-byte characters split over pieces.

    Args:
        tokens: ``N`` tokenizer pieces, in order.
        byte_level: True for GPT-2 style byte-level BPE pieces, False for SentencePiece (with byte
            fallback); None detects it (byte-level if some piece uses "Ġ"/"Ċ"-style characters and
            none uses "▁").

    Returns:
        ``N`` strings. A character whose bytes span several pieces (``<0xF0><0x9F><0x98><0x80>`` =
        "😀") is shown on the piece that completes it; the earlier pieces show "". Bytes that never
        form valid UTF-8 show as "\\ufffd".
    """
    if byte_level is None:
        byte_level = any(_is_byte_level_piece(t) for t in tokens) and not any(
            _SPM_SPACE in t for t in tokens
        )
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = [decoder.decode(_token_bytes(t, byte_level)) for t in tokens]
    tail = decoder.decode(b"", final=True)
    if tail and out:
        out[-1] += tail
    return out


def _as_offsets(offsets: np.ndarray, text_length: int) -> np.ndarray:
    offsets = np.asarray(offsets)
    if offsets.ndim != 2 or offsets.shape[1] != 2:
        raise ValueError(
            f"offsets must have shape [num_tokens, 2] (char [start, end) per token); got "
            f"{offsets.shape}."
        )
    return offsets.astype(np.int64)


def token_anchors(offsets: np.ndarray, text: str) -> np.ndarray:
    """Each token's anchor character: ``<int>[N]``; -1 for tokens with an empty span.

    Args:
        offsets: ``<int>[N, 2]`` char ``[start, end)`` of each token in ``text``.
        text: the text the offsets index.

    Returns:
        The position of the first non-whitespace character of ``text[start:end]`` (``start`` for
        whitespace-only tokens), or -1 where ``start < 0`` or ``end <= start`` (special tokens).
    """
    offsets = _as_offsets(offsets, len(text))
    anchors = np.full(len(offsets), -1, dtype=np.int64)
    for i, (start, end) in enumerate(offsets):
        start, end = max(int(start), 0), min(int(end), len(text))
        if offsets[i, 0] < 0 or end <= start:
            continue
        anchor = start
        while anchor < end and text[anchor].isspace():
            anchor += 1
        anchors[i] = anchor if anchor < end else start
    return anchors


def _resolve_range(char_range: tuple[int, int] | None, text_length: int) -> tuple[int, int]:
    if char_range is None:
        return 0, text_length
    a, b = int(char_range[0]), int(char_range[1])
    if not 0 <= a <= b <= text_length:
        raise ValueError(
            f"char_range {char_range} is outside the text (length {text_length}); expected "
            "0 <= start <= end <= len(text)."
        )
    return a, b


def _check_mask(template_mask: np.ndarray | Sequence[bool] | None, n: int) -> np.ndarray | None:
    """``template_mask`` as ``<bool>[n]``, or None when it marks nothing."""
    if template_mask is None:
        return None
    mask = np.asarray(template_mask, dtype=bool).reshape(-1)
    if mask.size == 0:
        return None
    if mask.shape != (n,):
        raise ValueError(f"template_mask must have shape [num_tokens] = [{n}] (one flag per "
                         f"token); got {mask.shape}.")
    return mask if mask.any() else None


def _granularity(granularity: Granularity) -> Granularity:
    """A built-in name unchanged, a `Segmentation` unchanged, "few-shot" as its object; else a
    clear error (a "blocks" or "segments" name needs its separator / example:
    `promptlit.lib.segmentation.resolve_granularity`)."""
    if isinstance(granularity, Segmentation) or granularity in GRANULARITIES:
        return granularity
    if granularity in ALL_GRANULARITIES:
        return resolve_granularity(granularity)
    raise ValueError(f"Unknown granularity {granularity!r}; expected one of {GRANULARITIES} "
                     "or a promptlit.lib.segmentation.Segmentation.")


def _content_spans(text: str, a: int, b: int, granularity: Granularity
                   ) -> tuple[list[tuple[int, int]], list[str] | None]:
    """Segments of ``text[a:b]`` as spans relative to ``a``, and their labels (None for a
    built-in granularity)."""
    if isinstance(granularity, Segmentation):
        labelled = granularity.labelled_spans(text, a, b)
        return [(s - a, e - a) for s, e, _ in labelled], [label for _, _, label in labelled]
    return segment_spans(text[a:b], granularity), None


def _template_positions(offsets: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Where each token sits for range tests: its anchor, or its start when it has no text."""
    return np.where(anchors >= 0, anchors, offsets[:, 0])


def _assign_with_template(
    offsets: np.ndarray,
    text: str,
    granularity: Granularity,
    char_range: tuple[int, int] | None,
    template_mask: np.ndarray,
) -> tuple[list[tuple[int, int]], np.ndarray, list[bool], list[str] | None]:
    """`assign_tokens` with template tokens as segments of their own (see the module docstring).

    Returns ``(spans, segment_of, is_template, labels)``: segments in text order, ``<int>[N]``
    token -> segment (-1 outside the range), per segment whether it is a template token, and
    the segments' labels for a custom granularity (None otherwise; template segments: "").
    """
    a, b = _resolve_range(char_range, len(text))
    anchors = token_anchors(offsets, text)
    pos = _template_positions(offsets, anchors)
    in_range = (pos >= a) & (pos < b)
    if b == len(text):
        in_range |= (anchors < 0) & (pos == b) & (pos >= a)
    if granularity == "tokens":  # every in-range token is a segment; the mask says which kind
        idx = np.flatnonzero(in_range)
        segment_of = np.full(len(offsets), -1, dtype=np.int64)
        segment_of[idx] = np.arange(len(idx))
        spans = [(max(int(s), 0), max(int(e), max(int(s), 0)))
                 for s, e in np.clip(offsets[idx], 0, len(text))]
        return spans, segment_of, [bool(template_mask[i]) for i in idx], None
    # (sort key, span, is_template, member tokens, label) for every segment
    pieces: list[tuple[tuple[int, int, int], tuple[int, int], bool, np.ndarray, str]] = []
    run: list[int] = []
    lo = a

    def close_run(hi: int) -> None:
        hi = max(min(hi, b), lo)
        idx = np.asarray(run, dtype=np.int64)
        sub = offsets[idx] if len(idx) else np.zeros((0, 2), np.int64)
        spans, seg_of, labels = _assign_plain(sub, text, granularity, (lo, hi))
        for k, span in enumerate(spans):
            members = idx[seg_of == k]
            first = int(members[0]) if len(members) else -1
            pieces.append(((span[0], 1, first), span, False, members,
                           labels[k] if labels is not None else ""))

    block: list[int] = []  # consecutive template tokens: one segment

    def close_block() -> None:
        if block:
            spans = np.clip(offsets[block], 0, len(text))
            s, e = int(spans[:, 0].min()), int(spans[:, 1].max())
            pieces.append(((s, 0 if e == s else 1, block[0]), (s, max(e, s)), True,
                           np.asarray(block, np.int64), ""))
            block.clear()

    for i in np.flatnonzero(in_range):
        if not template_mask[i]:
            close_block()
            run.append(int(i))
            continue
        s, e = (int(x) for x in np.clip(offsets[i], 0, len(text)))
        if run:
            close_run(s)
            run = []
        lo = max(lo, e)
        block.append(int(i))
    close_block()
    if run:
        close_run(b)
    pieces.sort(key=lambda piece: piece[0])
    segment_of = np.full(len(offsets), -1, dtype=np.int64)
    for k, (_, _, _, members, _) in enumerate(pieces):
        segment_of[members] = k
    labels = [p[4] for p in pieces] if isinstance(granularity, Segmentation) else None
    return [p[1] for p in pieces], segment_of, [p[2] for p in pieces], labels


def assign_tokens(
    offsets: np.ndarray,
    text: str,
    granularity: Granularity,
    *,
    char_range: tuple[int, int] | None = None,
    template_mask: np.ndarray | Sequence[bool] | None = None,
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Segment ``text`` (or ``text[char_range]``) and say which segment each token belongs to.

    Args:
        offsets: ``<int>[N, 2]`` char ``[start, end)`` of each token in ``text``.
        text: the full text the offsets index.
        granularity: one of `GRANULARITIES` ("tokens" gives every in-range token its own
            segment), "few-shot", or a `Segmentation` (custom segments).
        char_range: optional ``(start, end)`` restricting both the text and the tokens.
        template_mask: optional ``<bool>[N]``, True for chat-template tokens: each is a segment
            of its own and the text between them is segmented run by run (module docstring).

    Returns:
        ``(spans, segment_of)``: the segments' absolute char spans ``[(start, end), ...]`` and
        ``<int>[N]`` the index into ``spans`` of each token's segment, -1 for tokens outside the
        range (or with an empty span, except at "tokens" granularity or for template tokens).
    """
    spans, segment_of, _, _ = _assign(offsets, text, granularity, char_range, template_mask)
    return spans, segment_of


def _assign(offsets: np.ndarray, text: str, granularity: Granularity,
            char_range: tuple[int, int] | None,
            template_mask: np.ndarray | Sequence[bool] | None
            ) -> tuple[list[tuple[int, int]], np.ndarray, list[bool] | None, list[str] | None]:
    """`assign_tokens` plus, per segment, whether it is a template token (None: no template)
    and its label (None: a built-in granularity)."""
    mask = _check_mask(template_mask, len(np.asarray(offsets).reshape(-1, 2)))
    granularity = _granularity(granularity)
    if mask is not None:
        return _assign_with_template(_as_offsets(offsets, len(text)), text, granularity,
                                     char_range, mask)
    spans, segment_of, labels = _assign_plain(offsets, text, granularity, char_range)
    return spans, segment_of, None, labels


def _assign_plain(offsets: np.ndarray, text: str, granularity: Granularity,
                  char_range: tuple[int, int] | None
                  ) -> tuple[list[tuple[int, int]], np.ndarray, list[str] | None]:
    """`assign_tokens` without a template mask, plus the segments' labels (custom granularity)."""
    offsets = _as_offsets(offsets, len(text))
    a, b = _resolve_range(char_range, len(text))
    anchors = token_anchors(offsets, text)
    if granularity == "tokens":
        # Empty-span tokens sit at their start; one at the very end of the text (<eos>) is kept.
        pos = np.where(anchors >= 0, anchors, offsets[:, 0])
        in_range = (pos >= a) & (pos < b)
        if b == len(text):
            in_range |= (anchors < 0) & (pos == b) & (pos >= a)
        segment_of = np.full(len(offsets), -1, dtype=np.int64)
        idx = np.flatnonzero(in_range)
        segment_of[idx] = np.arange(len(idx))
        spans = [
            (max(int(s), 0), max(int(e), max(int(s), 0)))
            for s, e in np.clip(offsets[idx], 0, len(text))
        ]
        return spans, segment_of, None
    in_range = (anchors >= a) & (anchors < b)
    rel_spans, labels = _content_spans(text, a, b, granularity)
    if not rel_spans and in_range.any():
        # Whitespace-only range with tokens in it: one segment so that no score is lost.
        rel_spans = [(0, b - a)]
        labels = [""] if labels is not None else None
    spans = [(s + a, e + a) for s, e in rel_spans]
    segment_of = np.full(len(offsets), -1, dtype=np.int64)
    segment_of[in_range] = segment_index_of(anchors[in_range] - a, rel_spans)
    return spans, segment_of, labels


def aggregate(
    scores: np.ndarray,
    offsets: np.ndarray,
    text: str,
    granularity: Granularity,
    *,
    char_range: tuple[int, int] | None = None,
    tokens: Sequence[str] | None = None,
    template_mask: np.ndarray | Sequence[bool] | None = None,
) -> list[Segment]:
    """Sum token scores into segments of the text.

    Args:
        scores: ``<float>[N]`` one score per token.
        offsets: ``<int>[N, 2]`` char ``[start, end)`` of each token in ``text``.
        text: the text the offsets index.
        granularity: "tokens", "words", "sentences", "lines", "paragraphs", "turns",
            "few-shot", or a `Segmentation` (custom segments: a separator regex, an example's
            labelled segments; see `promptlit.lib.segmentation.resolve_granularity`).
        char_range: optional ``(start, end)``: only this part of the text and the tokens anchored
            in it (e.g. ``(0, prompt_length)`` for the prompt).
        tokens: optional ``N`` display strings used as the text of "tokens" segments (default:
            ``text[start:end]`` of each token).
        template_mask: optional ``<bool>[N]``, True for chat-template tokens: they become
            `TemplateSegment` objects (one per token at "tokens", one per run of consecutive template
            tokens otherwise; text: their characters, or the display token when there are none),
            and the text between them is segmented run by run.

    Returns:
        Segments in text order, ``Segment(text, start, end, score)`` with ``score`` the sum of the
        scores of the tokens assigned to it (0.0 for a segment no token is anchored in); for a
        custom granularity `LabelledSegment` objects, which also carry their ``label``. At every
        granularity the segment scores sum to the scores of the in-range tokens with a non-empty
        span (plus, at "tokens", the empty-span ones, and always the template tokens).
    """
    scores = np.asarray(scores, dtype=np.float64)
    offsets = _as_offsets(offsets, len(text))
    if scores.shape != (len(offsets),):
        raise ValueError(
            f"scores must have shape [num_tokens] = [{len(offsets)}] to match offsets; got "
            f"{scores.shape}."
        )
    if tokens is not None and len(tokens) != len(offsets):
        raise ValueError(f"got {len(tokens)} display tokens for {len(offsets)} offsets.")
    spans, segment_of, is_template, labels = _assign(offsets, text, granularity, char_range,
                                                     template_mask)
    totals = np.zeros(len(spans), dtype=np.float64)
    inside = segment_of >= 0
    np.add.at(totals, segment_of[inside], scores[inside])
    first = {int(k): int(i) for i, k in reversed(list(enumerate(segment_of))) if k >= 0}
    out: list[Segment] = []
    for k, (s, e) in enumerate(spans):
        i = first.get(k)
        if is_template is not None and is_template[k]:
            shown = text[s:e] if e > s or tokens is None or i is None else tokens[i]
            out.append(TemplateSegment(shown, s, e, float(totals[k])))
        elif granularity == "tokens" and tokens is not None and i is not None:
            out.append(Segment(tokens[i], s, e, float(totals[k])))
        elif labels is not None:
            out.append(LabelledSegment(text[s:e], s, e, float(totals[k]), labels[k]))
        else:
            out.append(Segment(text[s:e], s, e, float(totals[k])))
    return out


def tokens_in_segment(
    offsets: np.ndarray,
    text: str,
    granularity: Granularity,
    segment: int | Segment | tuple[int, int],
    *,
    char_range: tuple[int, int] | None = None,
    template_mask: np.ndarray | Sequence[bool] | None = None,
) -> np.ndarray:
    """Indices of the tokens assigned to one segment (selecting a word = selecting its tokens).

    Args:
        offsets: ``<int>[N, 2]`` char ``[start, end)`` of each token in ``text``.
        text: the text the offsets index.
        granularity: the granularity the segment comes from.
        segment: its index in `aggregate`'s output, a `Segment`, or its ``(start, end)`` span.
        char_range: the same ``char_range`` used for `aggregate`.
        template_mask: the same ``template_mask`` used for `aggregate`.

    Returns:
        ``<int>[k]`` sorted token indices (possibly empty: a word whose characters all sit in a
        token anchored in the previous word).

    Raises:
        ValueError: the span is not a segment at this granularity.
    """
    spans, segment_of = assign_tokens(offsets, text, granularity, char_range=char_range,
                                      template_mask=template_mask)
    if isinstance(segment, int | np.integer):
        index = int(segment)
        if not 0 <= index < len(spans):
            raise ValueError(
                f"segment index {index} out of range: {granularity!r} has {len(spans)} segments."
            )
    else:
        span = (
            (int(segment[1]), int(segment[2]))
            if isinstance(segment, Segment)
            else (
                int(segment[0]),
                int(segment[1]),
            )
        )
        try:
            index = spans.index(span)
        except ValueError:
            raise ValueError(
                f"{span} is not a {granularity!r} segment of this text; pass a segment returned "
                "by aggregate() with the same granularity and char_range, or use "
                "tokens_in_char_span()."
            ) from None
    return np.flatnonzero(segment_of == index)


def tokens_in_char_span(offsets: np.ndarray, text: str, start: int, end: int) -> np.ndarray:
    """Indices ``<int>[k]`` of the tokens whose anchor character lies in ``[start, end)``."""
    anchors = token_anchors(offsets, text)
    return np.flatnonzero((anchors >= start) & (anchors < end))
