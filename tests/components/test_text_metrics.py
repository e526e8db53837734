"""Tests for promptlit.components.text_metrics against hand-computed values."""

import math

import numpy as np
import pytest

from promptlit.api import types
from promptlit.components.text_metrics import (
    GenerationMetrics,
    bleu_tokenize,
    corpus_bleu,
    exact_match,
    lcs_length,
    perplexity,
    rouge_l,
    sentence_bleu,
)

HYP = "the cat sat on the mat"
REF = "the cat is on the mat"


def test_exact_match_options():
    assert exact_match("Paris", "Paris") == 1.0
    assert exact_match(" Paris\n", "Paris") == 1.0
    assert exact_match("a  b", "a b") == 1.0
    assert exact_match("a  b", "a b", normalize_whitespace=False) == 0.0
    assert exact_match("paris", "Paris") == 0.0
    assert exact_match("paris", "Paris", ignore_case=True) == 1.0
    assert exact_match("Rome", ["Paris", "Rome"]) == 1.0


def test_bleu_tokenize():
    assert bleu_tokenize("Hello, world! Pi=3.14; 1,000 cats.") == [
        "Hello", ",", "world", "!", "Pi", "=", "3.14", ";", "1,000", "cats", ".",
    ]  # fmt: skip
    assert bleu_tokenize("Café OK", lowercase=True) == ["café", "ok"]


def test_sentence_bleu_hand_computed():
    # p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3 -> "exp" smoothing: 1 / (2 * 3); BP = 1 (6 vs 6).
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert expected == pytest.approx(37.9918, abs=1e-4)
    assert sentence_bleu(HYP, REF) == pytest.approx(expected, rel=1e-12)
    assert sentence_bleu(HYP, REF, smoothing="none") == 0.0
    # floor: p4 = 0.1 / 3
    assert sentence_bleu(HYP, REF, smoothing="floor") == pytest.approx(
        100 * (5 / 6 * 3 / 5 * 1 / 4 * 0.1 / 3) ** 0.25
    )
    # add-k (k = 1 for n > 1): p2 = 4/6, p3 = 2/5, p4 = 1/4
    assert sentence_bleu(HYP, REF, smoothing="add-k") == pytest.approx(
        100 * (5 / 6 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25
    )
    assert sentence_bleu(REF, REF) == pytest.approx(100.0)


def test_brevity_penalty_and_effective_order():
    # "the cat" vs a 6-token ref: p1 = p2 = 1, orders 3-4 unavailable; BP = exp(1 - 6/2).
    assert sentence_bleu("the cat", HYP) == pytest.approx(100 * math.exp(-2))
    # Corpus BLEU has no effective order: missing orders make it 0 (as sacreBLEU does).
    assert corpus_bleu(["the cat"], [HYP]) == 0.0
    assert sentence_bleu("", REF) == 0.0


def test_corpus_bleu_sums_statistics():
    # pair 1: matches 5/6, 3/5, 1/4, 0/3; pair 2 (identical, 4 tokens): 4/4, 3/3, 2/2, 1/1.
    got = corpus_bleu([HYP, "a b c d"], [REF, "a b c d"])
    assert got == pytest.approx(100 * (9 / 10 * 6 / 8 * 3 / 6 * 1 / 4) ** 0.25)
    assert got != pytest.approx(np.mean([sentence_bleu(HYP, REF), 100.0]))


def test_bleu_multiple_references_clip_by_max_and_closest_length():
    # Matches clipped by the max count over refs; closest ref length = 6 (BP 1).
    refs = ["the cat is on the mat", "a cat sat on a mat today"]
    # 1-grams: the 2, cat, sat, on, mat -> 6/6; 2-grams: the cat, cat sat, sat on, on the, the mat
    # -> 5/5; 3-grams: the cat sat? no; cat sat on, sat on the? no; on the mat -> 2/4; 4-grams 0/3.
    expected = 100 * (6 / 6 * 5 / 5 * 2 / 4 * 1 / 6) ** 0.25
    assert sentence_bleu(HYP, refs) == pytest.approx(expected)


def test_bleu_errors():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="Unknown smoothing"):
        sentence_bleu("a", "a", smoothing="magic")


def test_lcs_and_rouge_l_hand_computed():
    assert lcs_length("abcd", "ace") == 2
    assert lcs_length([], ["a"]) == 0
    assert rouge_l(HYP, REF) == pytest.approx(5 / 6)  # LCS "the cat on the mat"
    # pred "a b c d", ref "a c e": LCS 2, P = 1/2, R = 2/3, F = 4/7.
    assert rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)
    assert rouge_l("A, b!", "a b") == pytest.approx(1.0)  # lower-cased, punctuation dropped
    assert rouge_l("x", "y") == 0.0 and rouge_l("", "y") == 0.0
    assert rouge_l("a b c d", ["z", "a c e", "a b c d"]) == pytest.approx(1.0)
    # beta weights recall: F = (1 + 4) P R / (R + 4 P) with P = 1/2, R = 2/3.
    assert rouge_l("a b c d", "a c e", beta=2.0) == pytest.approx(5 * 0.5 * (2 / 3) / (2 / 3 + 2))


def test_perplexity():
    assert perplexity([math.log(0.5)] * 4) == pytest.approx(2.0)
    lp = np.log([1.0, 0.25, 0.5])  # entry 0 would be the "no prediction" 0.0
    assert perplexity(lp, mask=np.array([False, True, True])) == pytest.approx(
        math.exp(-(math.log(0.25) + math.log(0.5)) / 2)
    )
    with pytest.raises(ValueError, match="at least one"):
        perplexity([])
    with pytest.raises(ValueError, match="log-probabilities"):
        perplexity([0.5, 2.0])


class _Model:
    def input_spec(self):
        return {"prompt": types.TextSegment()}

    def output_spec(self):
        return {
            "response": types.GeneratedText(parent="target"),
            "other": types.GeneratedText(parent="missing"),
        }

    def predict(self, inputs):
        return [{"response": r} for r in (HYP, "Paris", "nope")][: len(list(inputs))]


class _Dataset:
    def spec(self):
        return {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}


def test_generation_metrics_component():
    metric = GenerationMetrics()
    model, data = _Model(), _Dataset()
    assert metric.is_compatible(model, data)
    assert metric.field_pairs(model, data) == {"response": "target"}
    examples = [
        {"prompt": "p1", "target": REF},
        {"prompt": "p2", "target": " paris "},
        {"prompt": "p3", "target": None},  # unlabelled: skipped
    ]
    [result] = metric.run(examples, model, data, config={"ignore_case": True})
    assert (result["pred_key"], result["label_key"]) == ("response", "target")
    m = result["metrics"]
    assert m["exact_match"] == pytest.approx(0.5)
    assert m["rouge_l"] == pytest.approx((5 / 6 + 1.0) / 2)
    assert m["bleu"] == pytest.approx(corpus_bleu([HYP, "Paris"], [REF, " paris "], lowercase=True))
    assert set(metric.meta_spec()) == {"bleu", "rouge_l", "exact_match"}


def test_generation_metrics_candidates_and_reference_texts():
    metric = GenerationMetrics()
    assert metric.is_field_compatible(types.GeneratedTextCandidates(), types.ReferenceTexts())
    assert not metric.is_field_compatible(types.GeneratedText(), types.Scalar())
    out = metric.compute(
        [[("Paris", 1.0), ("paris, France", 0.5)]],
        [[("Paris", -0.1), ("Rome", -2.0)]],
        types.ReferenceTexts(),
        types.GeneratedTextCandidates(),
    )
    assert out["exact_match"] == 1.0 and out["rouge_l"] == 1.0
    assert metric.compute([], [], types.TextSegment(), types.GeneratedText()) == {}
