"""Tests for promptlit.salience.result: span sums, views, JSON round trip, errors."""

import copy
import dataclasses
import json
import pickle

import numpy as np
import pytest

from promptlit.salience.result import (
    Segment,
    SequenceSalience,
    SpanNotComputedError,
    TargetSegment,
    normalize_for_display,
)

PROMPT = "Name a fruit.\nBe brief."
RESPONSE = " Apple. It is red."
PIECES = ["Name", " a", " fruit", ".", "\n", "Be", " brief", ".", " Apple", ".", " It", " is",
          " red", "."]  # fmt: skip
NUM_PROMPT_TOKENS = 8


def make(seed: int = 0, dtype=np.float32) -> SequenceSalience:
    text = PROMPT + RESPONSE
    assert "".join(PIECES) == text
    offsets, pos = [], 0
    for p in PIECES:
        offsets.append([pos, pos + len(p)])
        pos += len(p)
    n = len(PIECES)
    t = n - NUM_PROMPT_TOKENS
    rng = np.random.default_rng(seed)
    return SequenceSalience(
        text=text,
        prompt_length=len(PROMPT),
        tokens=PIECES,
        offsets=np.array(offsets),
        num_prompt_tokens=NUM_PROMPT_TOKENS,
        matrices={
            "grad_l2": rng.uniform(size=(t, n)).astype(dtype),
            "grad_dot_input": rng.normal(size=(t, n)).astype(dtype),
        },
        metadata={"model": "tiny", "ig_steps": np.int64(16)},
    )


def test_properties():
    sal = make()
    assert sal.prompt_text == PROMPT and sal.response_text == RESPONSE
    assert sal.num_tokens == 14 and sal.num_response_tokens == 6
    assert sal.methods == ["grad_l2", "grad_dot_input"]
    assert sal.signed == {"grad_l2": False, "grad_dot_input": True}
    assert sal.matrix is sal.matrices["grad_l2"]
    assert sal.response_tokens == [" Apple", ".", " It", " is", " red", "."]


def test_for_span_is_sum_of_rows_and_linear():
    sal = make()
    m = sal.matrices["grad_dot_input"].astype(np.float64)
    span = sal.for_span(1, 4, "grad_dot_input")
    np.testing.assert_allclose(span.scores, m[1] + m[2] + m[3])
    # Linearity: [0, 6) = [0, 2) + [2, 6).
    whole = sal.for_span(0, 6, "grad_dot_input").scores
    parts = (
        sal.for_span(0, 2, "grad_dot_input").scores + sal.for_span(2, 6, "grad_dot_input").scores
    )
    np.testing.assert_allclose(whole, parts, rtol=1e-12)
    assert span.signed is True and span.method == "grad_dot_input"
    assert (span.start, span.stop) == (1, 4)
    # Default method = the first.
    np.testing.assert_allclose(sal.for_span(2, 3).scores, sal.matrices["grad_l2"][2])


def test_for_span_target_text():
    span = make().for_span(2, 5)
    assert span.target_text == " It is red"
    assert span.target_chars == (len(PROMPT) + 7, len(PROMPT) + 17)


@pytest.mark.parametrize(("start", "stop"), [(-1, 2), (3, 3), (4, 2), (0, 7)])
def test_for_span_bad_ranges(start, stop):
    with pytest.raises(IndexError, match=r"need 0 <= start < stop <= 6"):
        make().for_span(start, stop)


def test_aggregate_prompt_all_response_and_sums():
    sal = make()
    span = sal.for_span(0, 3, "grad_l2")
    words = span.aggregate("words")
    assert [s.text for s in words] == ["Name", "a", "fruit.", "Be", "brief."]
    s = span.scores
    assert [w.score for w in words] == pytest.approx(
        [s[0], s[1], s[2] + s[3] + s[4], s[5], s[6] + s[7]]
    )
    for g in ("tokens", "words", "sentences", "lines", "paragraphs"):
        prompt = span.aggregate(g, side="prompt")
        assert sum(x.score for x in prompt) == pytest.approx(s[:NUM_PROMPT_TOKENS].sum())
        everything = span.aggregate(g, side="all")
        assert sum(x.score for x in everything) == pytest.approx(s.sum())
        response = span.aggregate(g, side="response")
        assert everything == prompt + response
    sentences = span.aggregate("sentences", side="all")
    assert [x.text for x in sentences] == ["Name a fruit.", "Be brief.", "Apple.", "It is red."]
    # The prompt's last sentence and the response's first are never merged.
    assert sentences[1].end == len(PROMPT) and sentences[2].start == len(PROMPT) + 1
    with pytest.raises(ValueError, match="side must be one of"):
        span.aggregate("words", side="target")


def test_top_by_abs_for_signed_and_by_value_for_unsigned():
    sal = make()
    m = np.zeros((6, 14))
    m[0, :8] = [0.1, -5.0, 0.2, 0.0, 0.0, 3.0, 1.0, 0.0]  # Name a fruit . \n Be brief .
    sal = SequenceSalience(sal.text, sal.prompt_length, sal.tokens, sal.offsets, 8,
                           matrices={"gdi": m, "l2": np.abs(m) * np.sign(m + 4.0)},
                           signed={"gdi": True, "l2": False})  # fmt: skip
    top = sal.for_span(0, 1, "gdi").top(2, "words")
    assert [(x.text, x.score) for x in top] == [("a", -5.0), ("Be", 3.0)]
    top = sal.for_span(0, 1, "l2").top(2, "words")
    assert [(x.text, x.score) for x in top] == [("Be", 3.0), ("brief.", 1.0)]
    assert sal.for_span(0, 1, "gdi").top(0, "words") == []


def test_response_segments_map_to_token_ranges():
    sal = make()
    words = sal.response_segments("words")
    assert words == [
        TargetSegment("Apple.", 24, 30, 0, 2),
        TargetSegment("It", 31, 33, 2, 3),
        TargetSegment("is", 34, 36, 3, 4),
        TargetSegment("red.", 37, 41, 4, 6),
    ]
    assert [(x.text, x.token_start, x.token_stop) for x in sal.response_segments("sentences")] == [
        ("Apple.", 0, 2), ("It is red.", 2, 6),
    ]  # fmt: skip
    toks = sal.response_segments("tokens")
    assert [(x.text, x.token_start, x.token_stop) for x in toks][:2] == [
        (" Apple", 0, 1),
        (".", 1, 2),
    ]
    for seg in words:  # selecting a word selects exactly its tokens
        assert sal.text[seg.start : seg.end] == seg.text
        span = sal.for_span(seg.token_start, seg.token_stop)
        assert span.target_text.strip() == seg.text


def test_span_scores_for_methods_without_matrix():
    sal = make()
    ig = np.linspace(-1, 1, 14)
    with_ig = sal.with_span_scores("integrated_gradients", 1, 3, ig,
                                   settings={"ig_steps": 8, "ig_baseline": "zero"})
    assert with_ig is not sal
    assert with_ig.methods == ["grad_l2", "grad_dot_input", "integrated_gradients"]
    assert with_ig.signed["integrated_gradients"] is True
    assert with_ig.settings_for("integrated_gradients") == {"ig_steps": 8, "ig_baseline": "zero"}
    span = with_ig.for_span(1, 3, "integrated_gradients")
    np.testing.assert_allclose(span.scores, ig)
    assert span.settings == {"ig_steps": 8, "ig_baseline": "zero"}
    # The original is a value: unchanged.
    assert sal.methods == ["grad_l2", "grad_dot_input"] and dict(sal.span_scores) == {}
    assert sal.settings_for("integrated_gradients") == {}
    with pytest.raises(SpanNotComputedError, match="Unknown salience method"):
        sal.for_span(1, 3, "integrated_gradients")
    with pytest.raises(
        SpanNotComputedError, match=r"has not been computed.*computed spans: \[\(1, 3\)\]"
    ):
        with_ig.for_span(0, 3, "integrated_gradients")
    with pytest.raises(KeyError, match="Unknown salience method 'lime'"):
        with_ig.for_span(0, 3, "lime")
    with pytest.raises(ValueError, match=r"expected \[num_tokens\] = \[14\]"):
        with_ig.with_span_scores("integrated_gradients", 0, 1, np.zeros(3))
    # Scores of other settings never join a result's: they would be indistinguishable.
    with pytest.raises(ValueError, match=r"ig_steps.*64.*8.*separate results"):
        with_ig.with_span_scores("integrated_gradients", 0, 1, ig, settings={"ig_steps": 64})
    more = with_ig.with_span_scores("integrated_gradients", 0, 1, -ig, settings={"ig_steps": 8})
    assert sorted(k[1:] for k in more.span_scores) == [(0, 1), (1, 3)]
    assert sorted(k[1:] for k in with_ig.span_scores) == [(1, 3)]


def test_results_are_immutable_values():
    """Cached results are shared across sessions: nothing in them can be changed in place."""
    grad = np.ones((6, 14))
    offsets = make().offsets.copy()
    sal = SequenceSalience(PROMPT + RESPONSE, len(PROMPT), PIECES, offsets, 8,
                           matrices={"grad_l2": grad}, metadata={"methods": ["grad_l2"]})
    grad[0, 0] = 99.0  # the caller's arrays are copied, not kept
    offsets[0, 0] = 3
    assert sal.matrices["grad_l2"][0, 0] == 1.0 and sal.offsets[0, 0] == 0
    for arr in (sal.matrices["grad_l2"], sal.offsets, sal.for_span(0, 2).scores):
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 7
    with pytest.raises(TypeError):
        sal.matrices["grad_dot_input"] = grad  # type: ignore[index]
    with pytest.raises(TypeError):
        sal.signed["grad_l2"] = True  # type: ignore[index]
    with pytest.raises(TypeError):
        sal.span_scores[("integrated_gradients", 0, 1)] = np.zeros(14)  # type: ignore[index]
    with pytest.raises(TypeError):
        sal.metadata["model"] = "other"  # type: ignore[index]
    with pytest.raises(AttributeError):
        sal.metadata["methods"].append("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sal.text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        sal.tokens[0] = "x"  # type: ignore[index]
    assert not hasattr(sal, "add_span_scores")
    # Pickling (the SQLite cache) and copying give equal, equally frozen values.
    for back in (pickle.loads(pickle.dumps(sal)), copy.deepcopy(sal)):
        np.testing.assert_array_equal(back.matrices["grad_l2"], sal.matrices["grad_l2"])
        assert back.tokens == sal.tokens and back.metadata == {"methods": ("grad_l2",)}
        assert not back.matrices["grad_l2"].flags.writeable
        with pytest.raises(TypeError):
            back.matrices["x"] = grad  # type: ignore[index]


def test_pickles_of_the_earlier_mutable_class_load_frozen():
    """SQLite caches written before results were frozen held plain attribute dicts."""
    old_state = {"text": PROMPT + RESPONSE, "prompt_length": len(PROMPT), "tokens": list(PIECES),
                 "offsets": make().offsets.copy(), "num_prompt_tokens": 8,
                 "matrices": {"grad_l2": np.ones((6, 14))}, "signed": {},
                 "span_scores": {("integrated_gradients", 0, 2): np.arange(14.0)},
                 "metadata": {"ig_steps": 16}}

    class OldPickle:
        def __reduce_ex__(self, protocol):
            return (object.__new__, (SequenceSalience,), old_state)

    back = pickle.loads(pickle.dumps(OldPickle(), protocol=2))
    assert isinstance(back, SequenceSalience) and back.tokens == tuple(PIECES)
    assert back.signed == {"grad_l2": False, "integrated_gradients": True}
    assert back.for_span(0, 2, "integrated_gradients").scores.tolist() == list(range(14))
    assert not back.matrices["grad_l2"].flags.writeable
    with pytest.raises(TypeError):
        back.span_scores[("integrated_gradients", 0, 1)] = np.zeros(14)  # type: ignore[index]


def test_span_only_result_has_no_matrix():
    base = make()
    sal = SequenceSalience(base.text, base.prompt_length, base.tokens, base.offsets, 8,
                           span_scores={("integrated_gradients", 0, 6): np.ones(14)})  # fmt: skip
    assert sal.methods == ["integrated_gradients"]
    assert sal.for_span(0, 6).scores.sum() == 14.0
    with pytest.raises(SpanNotComputedError, match="no full matrix"):
        _ = sal.matrix


def test_json_round_trip_is_exact():
    sal = make(seed=3).with_span_scores(
        "integrated_gradients", 0, 2, np.arange(14, dtype=np.float32) - 3.5,
        settings={"ig_steps": 16, "ig_baseline": 0})
    d = json.loads(json.dumps(sal.to_json()))
    back = SequenceSalience.from_json(d)
    assert back.text == sal.text and back.tokens == sal.tokens
    assert back.prompt_length == sal.prompt_length
    assert back.num_prompt_tokens == sal.num_prompt_tokens
    np.testing.assert_array_equal(back.offsets, sal.offsets)
    assert back.matrices.keys() == sal.matrices.keys()
    for m in sal.matrices:
        assert back.matrices[m].dtype == np.float32
        np.testing.assert_array_equal(back.matrices[m], sal.matrices[m])
    np.testing.assert_array_equal(
        back.span_scores[("integrated_gradients", 0, 2)],
        sal.span_scores[("integrated_gradients", 0, 2)],
    )
    assert back.signed == sal.signed
    assert back.metadata == {"model": "tiny", "ig_steps": 16, "settings": {
        "integrated_gradients": {"ig_steps": 16, "ig_baseline": 0}}}
    assert back.settings_for("integrated_gradients") == {"ig_steps": 16, "ig_baseline": 0}


def test_from_json_accepts_plain_lists_and_rejects_future_versions():
    sal = make()
    d = sal.to_json()
    d["offsets"] = sal.offsets.tolist()
    d["matrices"] = {m: x.tolist() for m, x in sal.matrices.items()}
    back = SequenceSalience.from_json(d)
    np.testing.assert_allclose(back.matrices["grad_l2"], sal.matrices["grad_l2"])
    with pytest.raises(ValueError, match="newer than this promptlit"):
        SequenceSalience.from_json({**d, "version": 99})


def test_validation_messages():
    sal = make()
    with pytest.raises(
        ValueError, match=r"matrices\['grad_l2'\] has shape \(5, 14\); expected .*\[6, 14\]"
    ):
        SequenceSalience(sal.text, sal.prompt_length, sal.tokens, sal.offsets, 8,
                         matrices={"grad_l2": np.zeros((5, 14))})  # fmt: skip
    with pytest.raises(ValueError, match="13 tokens but 14 offsets"):
        SequenceSalience(sal.text, sal.prompt_length, sal.tokens[:-1], sal.offsets, 8)
    with pytest.raises(ValueError, match="num_prompt_tokens=20"):
        SequenceSalience(sal.text, sal.prompt_length, sal.tokens, sal.offsets, 20)
    with pytest.raises(ValueError, match="prompt_length=99"):
        SequenceSalience(sal.text, 99, sal.tokens, sal.offsets, 8)


def test_normalize_for_display():
    np.testing.assert_allclose(
        normalize_for_display(np.array([-2.0, 1.0, 0.0]), True), [-1, 0.5, 0]
    )
    np.testing.assert_allclose(
        normalize_for_display(np.array([-2.0, 1.0, 4.0]), False), [0, 0.25, 1]
    )
    np.testing.assert_allclose(normalize_for_display(np.zeros(3), True), [0, 0, 0])
    np.testing.assert_allclose(normalize_for_display(np.array([np.nan, 2.0]), False), [0, 1])
    assert normalize_for_display(np.array([]), True).shape == (0,)


def test_display_scores_pairs_exact_sums_with_colours():
    span = make().for_span(0, 6, "grad_dot_input")
    pairs = span.display_scores("sentences")
    assert all(isinstance(seg, Segment) for seg, _ in pairs)
    colours = [c for _, c in pairs]
    assert max(abs(c) for c in colours) == pytest.approx(1.0)
    assert [seg for seg, _ in pairs] == span.aggregate("sentences")
