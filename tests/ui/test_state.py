"""Tests for promptlit.ui.state: selection logic and URL query parameters."""

import pytest

from promptlit.ui.state import SessionState, from_query, link, to_query


def test_select_token_and_shift_extend_in_both_directions():
    s = SessionState()
    assert s.select_token(4) == (4, 5)
    assert s.select_token(7, extend=True) == (4, 8)
    assert s.select_token(2, extend=True) == (2, 5)  # anchor stays at 4
    assert s.select_token(3) == (3, 4)
    with pytest.raises(ValueError, match=">= 0"):
        s.select_token(-1)


def test_set_span_validates():
    s = SessionState()
    assert s.set_span(2, 5) == (2, 5)
    with pytest.raises(ValueError, match="start < stop"):
        s.set_span(3, 3)


def test_select_example_single_and_multi():
    s = SessionState()
    s.select_example("a")
    s.span = (0, 1)
    s.select_example("b", add=True)
    assert s.selected_ids == ["a", "b"] and s.primary_id == "b" and s.span is None
    s.select_example("a", add=True)  # toggles a non-primary id off
    assert s.selected_ids == ["b"] and s.primary_id == "b"
    s.select_example("c")
    assert s.selected_ids == ["c"]


def test_select_examples_keeps_the_primary_when_it_is_selected():
    s = SessionState()
    s.select_example("b")
    s.span = (0, 2)
    s.select_examples(["a", "b", "a", "c"])
    assert s.selected_ids == ["a", "b", "c"] and s.primary_id == "b" and s.span == (0, 2)
    s.select_examples(["c", "d"])  # the primary is not among them: the first takes its place
    assert s.selected_ids == ["c", "d"] and s.primary_id == "c" and s.span is None
    with pytest.raises(ValueError, match="no example ids"):
        s.select_examples([])
    assert s.selected_ids == ["c", "d"]


def test_sessions_do_not_share_mutable_fields():
    a, b = SessionState(), SessionState()
    a.slices["x"] = ["1"]
    a.added.setdefault("d", []).append({"prompt": "p"})
    assert b.slices == {} and b.added == {}


def test_query_round_trip_and_link():
    s = SessionState(dataset="sample_prompts", model="tiny", layout="lm", granularity="lines")
    q = to_query(s, example_index=3)
    assert q == {"dataset": "sample_prompts", "model": "tiny", "example": "3", "layout": "lm",
                 "granularity": "lines"}
    assert from_query(q) == {"dataset": "sample_prompts", "model": "tiny", "example": 3,
                             "layout": "lm", "granularity": "lines"}
    assert link("http://h:1/?old=1", s, example_index=3) == (
        "http://h:1/?dataset=sample_prompts&model=tiny&example=3&layout=lm&granularity=lines")


def test_from_query_restores_few_shot_blocks():
    assert from_query({"granularity": "few-shot"}) == {"granularity": "few-shot"}
    assert from_query({"granularity": "blocks"}) == {}


def test_from_query_ignores_unknown_and_bad_values():
    out = from_query({"example": "abc123", "granularity": "letters", "other": "x",
                      "model": ["m1", "m2"], "dataset": " "})
    assert out == {"example": "abc123", "model": "m1"}
