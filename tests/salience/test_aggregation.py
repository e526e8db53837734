"""Tests for promptlit.salience.aggregation: exact sums, the anchor rule, token cleaning."""

import numpy as np
import pytest

from promptlit.salience.aggregation import (
    GRANULARITIES,
    Segment,
    aggregate,
    assign_tokens,
    clean_token,
    clean_tokens,
    token_anchors,
    tokens_in_char_span,
    tokens_in_segment,
)


def offsets_of(pieces: list[str]) -> tuple[str, np.ndarray]:
    """Concatenate pieces into a text and give each piece's [start, end) in it."""
    offsets, pos = [], 0
    for p in pieces:
        offsets.append([pos, pos + len(p)])
        pos += len(p)
    return "".join(pieces), np.array(offsets, dtype=np.int64).reshape(-1, 2)


TEXT = (
    "# Task\r\nTranslate the text, e.g. “café” → French.  \r\n\r\n"
    "- keep names 😀 as-is\n- be brief!\n\n\n   Text: Hello wörld. Bye.\t\n"
)


def random_pieces(text: str, rng: np.random.Generator) -> list[str]:
    cuts = sorted(set(rng.integers(1, len(text), size=len(text) // 3).tolist()))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_sums_preserved_for_random_tokenizations(seed, granularity):
    rng = np.random.default_rng(seed)
    text, offsets = offsets_of(random_pieces(TEXT, rng))
    scores = rng.normal(size=len(offsets))
    segments = aggregate(scores, offsets, text, granularity)
    assert sum(s.score for s in segments) == pytest.approx(scores.sum(), abs=1e-12)
    for s in segments:
        assert s.text == text[s.start : s.end]
    # Each token is in exactly one segment.
    _, segment_of = assign_tokens(offsets, text, granularity)
    assert (segment_of >= 0).all()


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_sums_preserved_with_char_range(granularity):
    rng = np.random.default_rng(7)
    text, offsets = offsets_of(random_pieces(TEXT, rng))
    scores = rng.uniform(size=len(offsets))
    split = TEXT.index("- keep")
    anchors = token_anchors(offsets, text)
    first = aggregate(scores, offsets, text, granularity, char_range=(0, split))
    second = aggregate(scores, offsets, text, granularity, char_range=(split, len(text)))
    assert sum(s.score for s in first) == pytest.approx(scores[anchors < split].sum())
    assert sum(s.score for s in second) == pytest.approx(scores[anchors >= split].sum())
    assert all(s.end <= split for s in first) and all(s.start >= split for s in second)


def test_straddling_token_goes_to_segment_of_first_non_space_char():
    #        "Hello" " wor" "ld." " The"  "y ran" — "y ran" straddles "They" / "ran"
    text, offsets = offsets_of(["Hello", " wor", "ld.", " The", "y ran", "."])
    scores = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    words = aggregate(scores, offsets, text, "words")
    assert [(s.text, s.score) for s in words] == [
        ("Hello", 1.0), ("world.", 6.0), ("They", 24.0), ("ran.", 32.0),
    ]  # fmt: skip
    sentences = aggregate(scores, offsets, text, "sentences")
    assert [(s.text, s.score) for s in sentences] == [("Hello world.", 7.0), ("They ran.", 56.0)]
    assert tokens_in_segment(offsets, text, "words", 1).tolist() == [1, 2]
    assert tokens_in_segment(offsets, text, "words", words[2]).tolist() == [3, 4]
    assert tokens_in_segment(offsets, text, "words", (13, 17)).tolist() == [3, 4]
    assert tokens_in_segment(offsets, text, "words", words[3]).tolist() == [5]
    with pytest.raises(ValueError, match="is not a 'words' segment"):
        tokens_in_segment(offsets, text, "words", (0, 3))
    assert tokens_in_char_span(offsets, text, 6, 12).tolist() == [1, 2]


def test_whitespace_tokens_belong_to_preceding_segment():
    text, offsets = offsets_of(["  ", "Hi", "\n", "\n", "there", " ", "\n"])
    scores = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    lines = aggregate(scores, offsets, text, "lines")
    # Leading whitespace -> first line; the blank line's "\n" -> the line before it.
    assert [(s.text, s.score) for s in lines] == [("Hi", 15.0), ("there", 112.0)]
    paragraphs = aggregate(scores, offsets, text, "paragraphs")
    assert [(s.text, s.score) for s in paragraphs] == [("Hi", 15.0), ("there", 112.0)]


def test_crlf_trailing_spaces_and_unicode():
    text, offsets = offsets_of(["Caf", "é", " 😀", " ok", "  \r\n", "\r\n", "Naïve", " end", "  "])
    scores = np.arange(1.0, 10.0)
    lines = aggregate(scores, offsets, text, "lines")
    assert [(s.text, s.score) for s in lines] == [("Café 😀 ok", 21.0), ("Naïve end", 24.0)]
    words = aggregate(scores, offsets, text, "words")
    assert [s.text for s in words] == ["Café", "😀", "ok", "Naïve", "end"]
    assert [s.score for s in words] == [3.0, 3.0, 4.0 + 5 + 6, 7.0, 8.0 + 9]  # "\r\n"s -> "ok"


def test_byte_fallback_tokens_map_to_their_characters():
    # SentencePiece byte fallback: "😀" is four byte tokens, all sharing the emoji's offsets.
    pieces = ["▁Hi", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "<0x0A>", "▁ok"]
    text = "Hi 😀\nok"
    offsets = np.array([[0, 2], [2, 3], [3, 4], [3, 4], [3, 4], [3, 4], [4, 5], [5, 7]])
    scores = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
    words = aggregate(scores, offsets, text, "words")
    # The lone "▁" (whitespace only) goes to "Hi"; the "\n" byte to the emoji before it.
    assert [(s.text, s.score) for s in words] == [("Hi", 3.0), ("😀", 124.0), ("ok", 128.0)]
    tokens = aggregate(scores, offsets, text, "tokens", tokens=clean_tokens(pieces))
    assert [s.text for s in tokens] == [" Hi", " ", "", "", "", "😀", "\n", " ok"]
    assert [s.score for s in tokens] == scores.tolist()


def test_empty_span_tokens_only_at_token_granularity():
    text = "Hi there"
    offsets = np.array([[0, 0], [0, 2], [2, 8], [8, 8]])  # <bos> Hi " there" <eos>
    scores = np.array([100.0, 1.0, 2.0, 50.0])
    words = aggregate(scores, offsets, text, "words")
    assert [(s.text, s.score) for s in words] == [("Hi", 1.0), ("there", 2.0)]
    tokens = aggregate(scores, offsets, text, "tokens", tokens=["<bos>", "Hi", " there", "<eos>"])
    assert [(s.text, s.start, s.end, s.score) for s in tokens] == [
        ("<bos>", 0, 0, 100.0), ("Hi", 0, 2, 1.0), (" there", 2, 8, 2.0), ("<eos>", 8, 8, 50.0),
    ]  # fmt: skip
    # Token granularity with a range: the prompt gets <bos>, the rest gets <eos>.
    left = aggregate(scores, offsets, text, "tokens", char_range=(0, 2))
    right = aggregate(scores, offsets, text, "tokens", char_range=(2, 8))
    assert [s.score for s in left] == [100.0, 1.0] and [s.score for s in right] == [2.0, 50.0]


def test_whitespace_only_range_keeps_its_tokens():
    text, offsets = offsets_of([" ", "\n"])
    segs = aggregate(np.array([1.0, 2.0]), offsets, text, "sentences")
    assert segs == [Segment(" \n", 0, 2, 3.0)]


def test_token_anchors():
    text, offsets = offsets_of(["a", "  b", "   ", "c"])
    offsets = np.vstack([offsets, [[-1, -1]]])
    assert token_anchors(offsets, text).tolist() == [0, 3, 4, 7, -1]


def test_segment_iterable_as_tuple():
    text, s, e, score = Segment("hi", 0, 2, 1.5)
    assert (text, s, e, score) == ("hi", 0, 2, 1.5)


def test_bad_inputs():
    text, offsets = offsets_of(["a", "b"])
    with pytest.raises(ValueError, match=r"scores must have shape \[num_tokens\] = \[2\]"):
        aggregate(np.zeros(3), offsets, text, "words")
    with pytest.raises(ValueError, match=r"shape \[num_tokens, 2\]"):
        aggregate(np.zeros(2), np.zeros((2, 3)), text, "words")
    with pytest.raises(ValueError, match="char_range"):
        aggregate(np.zeros(2), offsets, text, "words", char_range=(1, 5))
    with pytest.raises(ValueError, match="Unknown granularity"):
        aggregate(np.zeros(2), offsets, text, "chars")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("▁Hello", " Hello"),
        ("<0x0A>", "\n"),
        ("<0x09>", "\t"),
        ("<0xC3><0xA9>", "é"),
        ("<0xE2>", "<0xE2>"),  # half a character on its own stays visible
        ("ĠHello", " Hello"),
        ("Ċ", "\n"),
        ("ĊĊ", "\n\n"),
        ("Ġcaf\u00c3\u00a9", " café"),
        ("hello", "hello"),
        ("<bos>", "<bos>"),
        ("", ""),
    ],
)
def test_clean_token(token, expected):
    assert clean_token(token) == expected


def test_clean_tokens_gpt2_byte_level_joins_split_characters():
    # "😀" = F0 9F 98 80 -> byte-level chars "ð", "Ł", "ĺ", "Ģ" split over two pieces.
    assert clean_tokens(["I", "Ġlike", "Ġð", "ŁĺĢ", "Ċ", "<|endoftext|>"]) == [
        "I", " like", " ", "😀", "\n", "<|endoftext|>",
    ]  # fmt: skip


def test_clean_tokens_sentencepiece_and_invalid_bytes():
    assert clean_tokens(["▁a", "<0xFF>", "▁b"]) == [" a", "\ufffd", " b"]
    assert clean_tokens(["▁a", "<0xE2>", "<0x82>"]) == [" a", "", "\ufffd"]
    assert clean_tokens([]) == []
