"""Salience summed into custom segments (issue 14, part 3): exactly like the built-in
granularities (sum over tokens, the same anchor rule), with labels, through `aggregate` and
`SequenceSalience` / `SpanSalience`, with and without a chat template."""

from __future__ import annotations

import numpy as np
import pytest

from promptlit.lib.segmentation import (
    FewShotSegmentation,
    LabelledSegment,
    LabelledSpans,
    SeparatorSegmentation,
    TemplateSegment,
)
from promptlit.salience.aggregation import aggregate, assign_tokens, tokens_in_segment
from promptlit.salience.result import SequenceSalience
from promptlit.ui import render

# Word-level tokens of a small few-shot prompt (leading spaces/newlines inside the token, like
# SentencePiece), then the response.
PIECES = ["<bos>", "Rate", " it.", "\n\n", "Q:", " a", "\nA:", " yes", "\n\n", "Q:", " b",
          "\nA:", " no", "\n\n", "Q:", " c", "\nA:", " maybe"]
P = 17  # prompt tokens ("<bos>" .. "\nA:")


def build() -> tuple[str, int, np.ndarray]:
    text, offsets = "", []
    for i, piece in enumerate(PIECES):
        if i == 0:
            offsets.append((0, 0))  # <bos>: no characters
            continue
        offsets.append((len(text), len(text) + len(piece)))
        text += piece
    prompt_length = offsets[P - 1][1]
    return text, prompt_length, np.array(offsets)


TEXT, PROMPT_LEN, OFFSETS = build()
SCORES = np.arange(1.0, len(PIECES) + 1)  # token i scores i + 1


def test_few_shot_sums_tokens_into_labelled_blocks():
    segs = aggregate(SCORES[:P], OFFSETS[:P], TEXT, "few-shot", char_range=(0, PROMPT_LEN))
    assert all(isinstance(s, LabelledSegment) for s in segs)
    assert [(s.label, s.text, s.score) for s in segs] == [
        ("instruction", "Rate it.", 2.0 + 3 + 4),          # "\n\n" (token 3) ends it
        ("example 1", "Q: a\nA: yes", 5.0 + 6 + 7 + 8 + 9),
        ("example 2", "Q: b\nA: no", 10.0 + 11 + 12 + 13 + 14),
        ("query", "Q: c\nA:", 15.0 + 16 + 17),
    ]
    # exact: every token with characters lands in exactly one segment (<bos> in none)
    assert sum(s.score for s in segs) == pytest.approx(SCORES[1:P].sum())
    # the same object form and the string form agree
    assert aggregate(SCORES[:P], OFFSETS[:P], TEXT, FewShotSegmentation(),
                     char_range=(0, PROMPT_LEN)) == segs


def test_separator_and_labelled_spans_match_sums_by_hand():
    blocks = aggregate(SCORES[:P], OFFSETS[:P], TEXT, SeparatorSegmentation("^Q:"),
                       char_range=(0, PROMPT_LEN))
    assert [(s.label, s.score) for s in blocks] == [
        ("block 1", 9.0), ("block 2", 35.0), ("block 3", 60.0), ("block 4", 48.0)]
    q_b = TEXT.index("Q: b")
    spans = LabelledSpans([{"label": "second", "start": q_b, "end": q_b + 4}],
                          source_text=TEXT[:PROMPT_LEN])
    segs = aggregate(SCORES[:P], OFFSETS[:P], TEXT, spans, char_range=(0, PROMPT_LEN))
    assert [(s.label, s.text, s.score) for s in segs] == [
        ("", "Rate it.\n\nQ: a\nA: yes", 2.0 + 3 + 4 + 5 + 6 + 7 + 8 + 9),
        ("second", "Q: b", 10.0 + 11),
        ("", "A: no\n\nQ: c\nA:", 12.0 + 13 + 14 + 15 + 16 + 17),
    ]
    spans_, segment_of = assign_tokens(OFFSETS[:P], TEXT, spans, char_range=(0, PROMPT_LEN))
    assert spans_[1] == (q_b, q_b + 4)
    assert tokens_in_segment(OFFSETS[:P], TEXT, spans, 1,
                             char_range=(0, PROMPT_LEN)).tolist() == [9, 10]
    assert segment_of[0] == -1  # <bos>


def test_strings_that_need_configuration_say_so():
    with pytest.raises(ValueError, match="splits the prompt at a separator"):
        aggregate(SCORES, OFFSETS, TEXT, "blocks")
    with pytest.raises(ValueError, match="needs the example"):
        aggregate(SCORES, OFFSETS, TEXT, "segments")
    with pytest.raises(ValueError, match="Unknown granularity 'chapters'"):
        aggregate(SCORES, OFFSETS, TEXT, "chapters")


@pytest.fixture()
def sal() -> SequenceSalience:
    rng = np.random.default_rng(0)
    matrix = rng.uniform(size=(len(PIECES) - P, len(PIECES)))
    return SequenceSalience(text=TEXT, prompt_length=PROMPT_LEN, tokens=PIECES, offsets=OFFSETS,
                            num_prompt_tokens=P, matrices={"grad_l2": matrix})


def test_span_salience_ranks_and_the_matrix_groups_by_labels(sal):
    span = sal.for_span(0, 1)
    segs = span.aggregate("few-shot")
    assert [s.label for s in segs] == ["instruction", "example 1", "example 2", "query"]
    assert segs[1].score == pytest.approx(span.scores[4:9].sum())
    assert span.top(1, FewShotSegmentation())[0].label == max(segs, key=lambda s: s.score).label
    table = render.ranked_table_html(segs, signed=False, granularity="few-shot")
    assert 'data-label="example 1"' in table and '<span class="pl-seglabel">query</span>' in table
    matrix = render.matrix_html(sal, "grad_l2", granularity=FewShotSegmentation())
    heads = [h.split(">", 1)[1].split("<", 1)[0] for h in matrix.split('class="pl-mhead"')[1:]]
    assert heads == ["instruction", "example 1", "example 2", "query"]
    # the response side: one unlabelled segment (no structure there)
    assert [(s.label, s.text) for s in span.aggregate("few-shot", side="response")] == [
        ("prompt", "maybe")]


def test_labels_survive_a_chat_template():
    """Template tokens stay their own segments; the user's text between them gets the labels."""
    user = "Q: a\nA: yes\n\nQ: b\nA:"
    pieces = ["<start_of_turn>user\n", "Q:", " a", "\nA:", " yes", "\n\n", "Q:", " b", "\nA:",
              "<end_of_turn>\n"]
    text, offsets = "", []
    for piece in pieces:
        offsets.append((len(text), len(text) + len(piece)))
        text += piece
    mask = np.array([True] + [False] * 8 + [True])
    scores = np.arange(1.0, 11.0)
    segs = aggregate(scores, np.array(offsets), text, LabelledSpans(
        [{"label": "shot", "start": 0, "end": 11}], source_text=user), template_mask=mask)
    assert [(type(s).__name__, getattr(s, "label", None), s.score) for s in segs] == [
        ("TemplateSegment", None, 1.0),
        ("LabelledSegment", "shot", 2.0 + 3 + 4 + 5 + 6),
        ("LabelledSegment", "", 7.0 + 8 + 9),
        ("TemplateSegment", None, 10.0),
    ]
    assert isinstance(segs[0], TemplateSegment)
    assert sum(s.score for s in segs) == pytest.approx(scores.sum())
