"""Tests for promptlit.lib.segmentation: spans at every granularity, edge-case text."""

import numpy as np
import pytest

from promptlit.lib.segmentation import (
    SEGMENT_GRANULARITIES,
    owner_bounds,
    segment_index_of,
    segment_spans,
)


def texts(text: str, granularity: str) -> list[str]:
    return [text[s:e] for s, e in segment_spans(text, granularity)]


def test_words_keep_punctuation_attached():
    assert texts("Hello, world.  How   are\tyou?", "words") == [
        "Hello,", "world.", "How", "are", "you?",
    ]  # fmt: skip
    assert segment_spans("ab  cd", "words") == [(0, 2), (4, 6)]


def test_sentences_basic_abbreviations_and_quotes():
    text = 'Dr. Smith said "go." Then, e.g. now, he left! Did he? Yes… J. R. R. Tolkien wrote it.'
    assert texts(text, "sentences") == [
        'Dr. Smith said "go."',
        "Then, e.g. now, he left!",
        "Did he?",
        "Yes…",
        "J. R. R. Tolkien wrote it.",
    ]


def test_sentences_decimal_numbers_do_not_split():
    assert texts("Pi is 3.14 roughly. Ok.", "sentences") == ["Pi is 3.14 roughly.", "Ok."]


def test_sentences_structure_lines():
    text = (
        "# Title\n"
        "Intro text that\nwraps lines:\n"
        "- item one\n"
        "- item two. Still two\n"
        "1. first\n"
        "Context: some words\n"
        "Question: why?\n"
        "Answer:"
    )
    assert texts(text, "sentences") == [
        "# Title",
        "Intro text that\nwraps lines:",
        "- item one",
        "- item two.",
        "Still two",
        "1. first",
        "Context: some words",
        "Question: why?",
        "Answer:",
    ]


def test_sentences_never_cross_blank_lines():
    assert texts("no period here\n\nnext para", "sentences") == ["no period here", "next para"]


def test_lines_blank_lines_trailing_spaces_and_crlf():
    text = "first line  \r\n\r\n   indented\r\nlast \t"
    assert texts(text, "lines") == ["first line", "indented", "last"]
    spans = segment_spans(text, "lines")
    assert spans == [(0, 10), (19, 27), (29, 33)]


def test_lines_other_line_breaks():
    assert texts("a\rb\u2028c\nd", "lines") == ["a", "b", "c", "d"]


def test_paragraphs_multiple_blank_lines_with_spaces():
    text = "p1 line1\np1 line2\n\n  \n\t\np2\r\n\r\np3 😀"
    assert texts(text, "paragraphs") == ["p1 line1\np1 line2", "p2", "p3 😀"]


def test_unicode_offsets_are_code_points():
    text = "café 😀 naïve.\nÉté!"
    assert texts(text, "words") == ["café", "😀", "naïve.", "Été!"]
    assert segment_spans(text, "words")[1] == (5, 6)  # the emoji is one code point
    assert texts(text, "sentences") == ["café 😀 naïve.", "Été!"]


@pytest.mark.parametrize("granularity", SEGMENT_GRANULARITIES)
@pytest.mark.parametrize("text", ["", "   ", "\n\n", " \r\n\t"])
def test_empty_or_whitespace_text_has_no_segments(text, granularity):
    assert segment_spans(text, granularity) == []


@pytest.mark.parametrize("granularity", SEGMENT_GRANULARITIES)
def test_spans_sorted_disjoint_and_stripped(granularity):
    text = "  Lead.  Two words!\n\n- item\r\n# H\nTail text.  "
    spans = segment_spans(text, granularity)
    assert spans
    for (s, e), nxt in zip(spans, spans[1:] + [(len(text), len(text))], strict=True):
        assert 0 <= s < e <= nxt[0]
        assert not text[s].isspace() and not text[e - 1].isspace()
    # Outside the spans there is only whitespace.
    covered = np.zeros(len(text), bool)
    for s, e in spans:
        covered[s:e] = True
    assert all(c.isspace() for c, cov in zip(text, covered, strict=True) if not cov)


def test_owner_bounds_tile_the_text_whitespace_goes_to_preceding():
    text = "  ab  cd \n"
    spans = segment_spans(text, "words")
    bounds = owner_bounds(spans, len(text))
    assert bounds.tolist() == [[0, 6], [6, 10]]
    idx = segment_index_of(np.arange(len(text)), spans)
    assert idx.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_unknown_granularity():
    with pytest.raises(ValueError, match="Unknown granularity 'chapters'"):
        segment_spans("x", "chapters")
