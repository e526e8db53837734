"""`pl.compare` and friends (issue 14, part 2): two prompts' salience aligned segment by segment,
responses aligned token by token; numbers checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import promptlit as pl
from promptlit.comparison import (
    SEGMENT_COLUMNS,
    align,
    changed_most,
    compare,
    compare_examples,
    compare_responses,
)
from promptlit.lib.segmentation import FewShotSegmentation, LabelledSpans
from promptlit.salience.result import SequenceSalience


def sal(prompt: str, scores: list[float], response: str = " ok",
        method: str = "grad_l2") -> SequenceSalience:
    """Space-separated word tokens; one response token whose row holds ``scores``."""
    words = prompt.split(" ")
    offsets, pos = [], 0
    for w in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    offsets.append((len(prompt), len(prompt) + len(response)))
    matrix = np.array([[*scores, 0.0]])
    return SequenceSalience(text=prompt + response, prompt_length=len(prompt),
                            tokens=[*words, response], offsets=np.array(offsets),
                            num_prompt_tokens=len(words), matrices={method: matrix})


A = sal("Rate it. Q: x A: good Q: y A:", [1.0, 1.0, 2.0, 0.5, 0.5, 3.0, 1.0, 0.5, 1.0])
B = sal("Rate it. Q: x A: bad Q: y A:", [2.0, 2.0, 1.0, 0.5, 0.5, 9.0, 1.0, 0.5, 1.0])


def test_compare_words_aligns_and_scores_by_hand():
    table = compare(A, B, granularity="words")
    assert list(table.columns) == list(SEGMENT_COLUMNS)
    changed = table[table["op"] != "equal"]
    assert changed[["op", "text_a", "text_b", "score_a", "score_b", "delta"]].values.tolist() == [
        ["changed", "good", "bad", 3.0, 9.0, 6.0]]
    first = table.iloc[0]
    assert (first["text_a"], first["score_a"], first["score_b"], first["delta"]) == (
        "Rate", 1.0, 2.0, 1.0)
    assert table["score_a"].sum() == pytest.approx(10.5)
    assert table.attrs["method_a"] == "grad_l2" and table.attrs["granularity"] == "words"
    assert changed_most(table, 2)["text_a"].tolist() == ["good", "Rate"]  # |6| then |1| (first)
    assert pl.compare is compare


def test_compare_normalize_gives_shares_of_each_prompt():
    table = compare(A, B, granularity="words", normalize=True)
    assert table["score_a"].sum() == pytest.approx(1.0)
    assert table["score_b"].sum() == pytest.approx(1.0)
    good = table[table["op"] == "changed"].iloc[0]
    assert good["score_a"] == pytest.approx(3.0 / 10.5)
    assert good["score_b"] == pytest.approx(9.0 / 17.5)


def test_inserted_and_deleted_segments_count_as_zero_on_the_missing_side():
    longer = sal("Rate it. Q: x A: good. Really. Q: y A:",
                 [1.0, 1.0, 2.0, 0.5, 0.5, 3.0, 4.0, 1.0, 0.5, 1.0])
    table = compare(A, longer, granularity="words")
    ops = table["op"].tolist()
    assert ops.count("inserted") + ops.count("changed") >= 1
    ins = table[table["op"] == "inserted"]
    assert ins["text_a"].isna().all() and ins["score_a"].isna().all()
    assert (ins["delta"] == ins["score_b"]).all()
    back = compare(longer, A, granularity="words")
    dele = back[back["op"] == "deleted"]
    assert (dele["delta"] == -dele["score_a"]).all()


def test_labelled_granularities_per_side():
    seg = FewShotSegmentation()
    a = sal("Say. Q: a A: 1 Q: b A:", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    # FewShot on one line sees no labelled lines: the whole prompt is one "prompt" segment
    table = compare(a, a, granularity=seg)
    assert table["label_a"].tolist() == ["prompt"] and table["delta"].tolist() == [0.0]
    own_a = LabelledSpans([(0, 4, "intro")], source_text=a.prompt_text)
    own_b = LabelledSpans([(5, 14, "shot")], source_text=a.prompt_text)
    both = compare(a, a, granularity=(own_a, own_b))
    assert both.attrs["granularity"] == "segments"
    assert both["label_a"].tolist()[0] == "intro"


def test_span_salience_and_method_checks():
    span_a, span_b = A.for_span(0, 1), B.for_span(0, 1)
    assert compare(span_a, span_b, "words")["delta"].tolist() == compare(A, B, "words")[
        "delta"].tolist()
    with pytest.raises(ValueError, match="holds 'grad_l2' scores"):
        compare(span_a, span_b, "words", method="grad_dot_input")
    other = sal("x y", [1.0, 1.0], method="grad_dot_input")
    with pytest.raises(ValueError, match="share no salience method"):
        compare(A, other)
    with pytest.raises(TypeError, match="sal_a must be a SequenceSalience or SpanSalience"):
        compare("nope", A)


def test_align_pairs_replaced_runs_in_order():
    assert align(["a", "b", "c", "d"], ["a", "x", "d"]) == [
        ("equal", 0, 0), ("changed", 1, 1), ("deleted", 2, None), ("equal", 3, 2)]


def test_compare_responses_logprob_change_for_shared_tokens():
    table = compare_responses([" It", " was", " good"], [-0.5, -1.0, -2.0],
                              [" It", " was", " bad", "!"], [-0.25, -3.0, -0.5, -4.0])
    assert table["op"].tolist() == ["equal", "equal", "changed", "inserted"]
    assert table["delta"].tolist()[:2] == [0.25, -2.0]
    assert math.isnan(table["delta"].iloc[2])
    assert table["token_b"].tolist() == [" It", " was", " bad", "!"]
    assert pd.isna(table["index_a"].iloc[3]) and table["index_b"].iloc[3] == 3
    with pytest.raises(ValueError, match="2 log-probs for 3 tokens of response a"):
        compare_responses(["a", "b", "c"], [0.0, 0.0], ["a"], None)


def test_compare_examples_through_a_workbench():
    from tests.ui.fakes import make_workbench

    wb = make_workbench()
    exs = wb.datasets["toy"].examples
    result = compare_examples(wb, "fake", "toy", exs[0], exs[1], granularity="lines")
    assert result.text_a == " :noitadnemmoceR ok." and result.text_b == " :rewsnA ok."
    assert result.segments["op"].tolist().count("equal") == 0
    assert result.responses["op"].tolist()[-1] == "equal"  # the shared " ok."
    assert result.responses["delta"].iloc[-1] == pytest.approx(-0.2 - -0.2)
    again = compare_examples(wb, "fake", "toy", exs[0], exs[1], granularity="words")
    assert again.sal_a is result.sal_a  # cached: no new salience
    same = compare_examples(wb, "fake", "toy", exs[0], exs[1], target="same")
    assert same.text_a == same.text_b == result.text_a
    with pytest.raises(ValueError, match="target must be one of"):
        compare_examples(wb, "fake", "toy", exs[0], exs[1], target="other")
    with pytest.raises(ValueError, match="splits the prompt at a separator"):
        compare_examples(wb, "fake", "toy", exs[0], exs[1], granularity="blocks")
    with pytest.raises(ValueError, match="defines no segments"):
        compare_examples(wb, "fake", "toy", exs[0], exs[1], granularity="segments")
