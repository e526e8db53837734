"""Chat-template tokens in aggregation and in `SequenceSalience` (issue 11, part 1), pure numpy.

A hand-made Gemma-style prompt: ``<bos>`` (no characters), ``<start_of_turn>``, ``user``, ``\\n``
(template), ``Hi there.`` (the user's text, 3 tokens), ``<end_of_turn>``, ``\\n``,
``<start_of_turn>``, ``model``, ``\\n`` (template), then the response `` Hello`` ``!``.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from promptlit.salience.aggregation import (
    Segment,
    TemplateSegment,
    aggregate,
    assign_tokens,
    tokens_in_segment,
)
from promptlit.salience.result import SequenceSalience

PROMPT = "<start_of_turn>user\nHi there.<end_of_turn>\n<start_of_turn>model\n"
TEXT = PROMPT + " Hello!"
PIECES = ["", "<start_of_turn>", "user", "\n", "Hi", " there", ".", "<end_of_turn>", "\n",
          "<start_of_turn>", "model", "\n", " Hello", "!"]
TOKENS = ["<bos>", *PIECES[1:]]
TEMPLATE = np.array([True, True, True, True, False, False, False, True, True, True, True, True,
                     False, False])
P = 12  # prompt tokens


def _offsets() -> np.ndarray:
    out, pos = [], 0
    for piece in PIECES:
        out.append((pos, pos + len(piece)))
        pos += len(piece)
    assert pos == len(TEXT)
    return np.array(out)


OFFSETS = _offsets()
SCORES = np.arange(1.0, 15.0)  # token i scores i + 1


def test_template_tokens_are_their_own_segments_at_every_granularity() -> None:
    kw = dict(char_range=(0, len(PROMPT)), tokens=TOKENS[:P], template_mask=TEMPLATE[:P])
    words = aggregate(SCORES[:P], OFFSETS[:P], TEXT, "words", **kw)
    assert [(type(s).__name__, s.text, s.score) for s in words] == [
        ("TemplateSegment", "<start_of_turn>user\n", 1.0 + 2 + 3 + 4),
        ("Segment", "Hi", 5.0),
        ("Segment", "there.", 6.0 + 7),
        ("TemplateSegment", "<end_of_turn>\n<start_of_turn>model\n", 8.0 + 9 + 10 + 11 + 12),
    ]
    tokens = aggregate(SCORES[:P], OFFSETS[:P], TEXT, "tokens", **kw)
    assert [s.text for s in tokens] == TOKENS[:P]
    assert [isinstance(s, TemplateSegment) for s in tokens] == TEMPLATE[:P].tolist()
    assert tokens[0] == TemplateSegment("<bos>", 0, 0, 1.0)
    for g in ("sentences", "lines", "paragraphs", "turns"):
        segs = aggregate(SCORES[:P], OFFSETS[:P], TEXT, g, **kw)
        assert [s.text for s in segs if not isinstance(s, TemplateSegment)] == ["Hi there."], g
        assert sum(s.score for s in segs) == pytest.approx(SCORES[:P].sum())


def test_without_a_mask_nothing_changes() -> None:
    kw = dict(char_range=(0, len(PROMPT)), tokens=TOKENS[:P])
    for g in ("tokens", "words", "lines"):
        plain = aggregate(SCORES[:P], OFFSETS[:P], TEXT, g, **kw)
        unmasked = aggregate(SCORES[:P], OFFSETS[:P], TEXT, g, template_mask=np.zeros(P, bool),
                             **kw)
        assert plain == unmasked
        assert not any(isinstance(s, TemplateSegment) for s in plain)
    # "turns" without a template: the whole text is one turn
    assert [s.text for s in aggregate(SCORES, OFFSETS, TEXT, "turns")] == [TEXT.strip()]


def test_template_segment_is_a_segment() -> None:
    seg = TemplateSegment("<bos>", 0, 0, 2.5)
    text, start, end, score = seg
    assert (text, start, end, score) == ("<bos>", 0, 0, 2.5)
    assert isinstance(seg, Segment) and seg == Segment("<bos>", 0, 0, 2.5)
    assert isinstance(seg._replace(score=1.0), TemplateSegment)


def test_tokens_in_segment_and_assign_tokens_follow_the_mask() -> None:
    spans, segment_of = assign_tokens(OFFSETS[:P], TEXT, "turns", char_range=(0, len(PROMPT)),
                                      template_mask=TEMPLATE[:P])
    assert [TEXT[s:e] for s, e in spans] == ["<start_of_turn>user\n", "Hi there.",
                                             "<end_of_turn>\n<start_of_turn>model\n"]
    assert segment_of.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert tokens_in_segment(OFFSETS[:P], TEXT, "turns", 1, char_range=(0, len(PROMPT)),
                             template_mask=TEMPLATE[:P]).tolist() == [4, 5, 6]
    with pytest.raises(ValueError, match=r"template_mask must have shape \[num_tokens\] = \[12\]"):
        assign_tokens(OFFSETS[:P], TEXT, "words", template_mask=TEMPLATE)


@pytest.fixture()
def sal() -> SequenceSalience:
    rng = np.random.default_rng(0)
    matrix = rng.uniform(size=(len(TOKENS) - P, len(TOKENS)))
    matrix[:, 0] = 50.0  # the start token takes a huge share, as real models' <bos> does
    return SequenceSalience(text=TEXT, prompt_length=len(PROMPT), tokens=TOKENS, offsets=OFFSETS,
                            num_prompt_tokens=P, matrices={"grad_l2": matrix},
                            template_mask=TEMPLATE, metadata={"chat_template": "gemma"})


def test_rankings_and_colours_leave_template_out_unless_asked(sal) -> None:
    span = sal.for_span(0, 2)
    assert sal.has_template and sal.template_mask.tolist() == TEMPLATE.tolist()
    assert not sal.template_mask.flags.writeable
    top = span.top(5, "words")
    assert sorted(s.text for s in top) == ["Hi", "there."]  # only the user's words
    assert top[0].score >= top[1].score
    assert span.top(1, "words", include_template=True)[0].text == "<start_of_turn>user\n"
    shown = dict((s.text, c) for s, c in span.display_scores("words"))
    assert shown["<start_of_turn>user\n"] == 0.0 and max(shown.values()) == 1.0
    with_template = dict((s.text, c) for s, c in span.display_scores("words",
                                                                    include_template=True))
    assert with_template["<start_of_turn>user\n"] == 1.0 and with_template["Hi"] < 0.1
    # the template's salience is there, exactly
    assert span.aggregate("words")[0].score == pytest.approx(float(span.scores[:4].sum()))


def test_json_and_pickle_keep_the_mask(sal) -> None:
    d = sal.to_json()
    assert d["template_mask"] == np.flatnonzero(TEMPLATE).tolist()
    for back in (SequenceSalience.from_json(d), pickle.loads(pickle.dumps(sal))):
        assert back.template_mask.tolist() == TEMPLATE.tolist()
        assert back.to_json() == d
    derived = sal.with_span_scores("integrated_gradients", 0, 1, np.ones(len(TOKENS)))
    assert derived.template_mask.tolist() == TEMPLATE.tolist()


def test_results_without_a_template_are_unchanged(sal) -> None:
    plain = dataclasses.replace(sal, template_mask=())
    assert not plain.has_template and "template_mask" not in plain.to_json()
    assert SequenceSalience.from_json(plain.to_json()).template_mask.tolist() == [False] * 14
    # a pickle of the earlier class (an attribute dict without the mask) still loads
    state = {k: v for k, v in vars(plain).items() if k != "template_mask"}
    old = SequenceSalience.__new__(SequenceSalience)
    old.__setstate__(state)
    assert old.template_mask.tolist() == [False] * 14
    with pytest.raises(ValueError, match="template_mask has 3 entries; expected one per token"):
        SequenceSalience(text=TEXT, prompt_length=len(PROMPT), tokens=TOKENS, offsets=OFFSETS,
                         num_prompt_tokens=P, template_mask=[True, False, True])
    bad = sal.to_json() | {"template_mask": [99]}
    with pytest.raises(ValueError, match="template_mask indices must be token indices 0..13"):
        SequenceSalience.from_json(bad)
