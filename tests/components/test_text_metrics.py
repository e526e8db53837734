"""Tests for promptlit.components.text_metrics: against sacreBLEU and rouge-score on a few dozen
pairs (empty and non-ASCII text included), and against hand-computed values."""

import doctest
import math

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from promptlit.api import types
from promptlit.components import text_metrics
from promptlit.components.text_metrics import (
    GenerationMetrics,
    bleu_tokenize,
    corpus_bleu,
    exact_match,
    perplexity,
    rouge_l,
    rouge_tokenize,
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
    with pytest.raises(ValueError, match="Unknown BLEU tokenizer"):
        sentence_bleu("a", "a", tokenize="magic")
    with pytest.raises(ValueError, match="Unknown ROUGE tokenizer"):
        rouge_l("a", "a", tokenizer="magic")


# Prediction / reference pairs the libraries score: ordinary text, punctuation and numbers,
# case, whitespace, empty strings, and non-ASCII text (accents, CJK, Cyrillic, Greek, emoji).
PAIRS = [
    ("the cat sat on the mat", "the cat is on the mat"),
    ("the cat is on the mat", "the cat is on the mat"),
    ("The cat sat on the mat.", "the cat sat on the mat"),
    ("a quick brown fox jumps over the lazy dog", "the quick brown fox jumped over the lazy dogs"),
    ("It is raining cats and dogs!", "It's raining cats and dogs."),
    ("Pi is 3.14, not 3,14; 1,000 is a thousand.", "Pi is 3.14; 1,000 is one thousand."),
    ("Recommendation: Avoid.", "Recommendation: You have to try it."),
    ("Recommendation: You have to try it.", "Recommendation: You have to try it."),
    ("running runners ran quickly", "the runner runs quick"),
    ("generously generated generations", "generous generation generates"),
    ("  spaced   out\ttext\n", "spaced out text"),
    ("UPPER case Words", "upper CASE words"),
    ("one", "one"),
    ("one", "two"),
    ("one two", "two one"),
    ("x y z w v", "x y z w v u t"),
    ("", "a reference"),
    ("a prediction", ""),
    ("", ""),
    ("   ", "a"),
    ("Café au lait, s'il vous plaît.", "Un café au lait, s'il vous plaît."),
    ("naïve façade déjà vu", "naive facade deja vu"),
    ("Straße und Grüße", "Strasse und Gruesse"),
    ("北京欢迎你", "北京欢迎你"),
    ("北京 欢迎 你", "北京 欢迎 您"),
    ("我爱自然语言处理。", "我喜欢自然语言处理。"),
    ("東京は日本の首都です", "東京は日本の首都"),
    ("Привет, мир!", "Привет мир"),
    ("Καλημέρα κόσμε", "καλημέρα κόσμε"),
    ("I ❤️ NLP 🚀", "I ❤️ NLP"),
    ("«Bonjour» — dit-il…", "Bonjour, dit-il."),
    ("Emoji only 😀😀", "😀😀"),
    ("tab\tseparated\tvalues", "tab separated values"),
    ("line one\nline two\n\nline three", "line one line two line three"),
    ("a a a a a a a", "a"),
    ("the the the", "the cat the"),
]

MULTI_REFS = [
    ("the cat sat on the mat", ["the cat is on the mat", "a cat sat on a mat today"]),
    ("Paris", ["Rome", "paris", "Paris, France"]),
    ("北京欢迎你", ["欢迎", "北京欢迎你"]),
    ("", ["x", ""]),
]


def test_pairs_cover_empty_and_unicode():
    assert len(PAIRS) >= 30
    assert any(not p for p, _ in PAIRS) and any(not r for _, r in PAIRS)
    assert sum(not (p + r).isascii() for p, r in PAIRS) >= 10


@pytest.mark.parametrize("smoothing", ["exp", "floor", "add-k", "none"])
@pytest.mark.parametrize("lowercase", [False, True])
def test_sentence_bleu_is_sacrebleu(smoothing, lowercase):
    for pred, ref in PAIRS:
        want = sacrebleu.sentence_bleu(pred, [ref], smooth_method=smoothing,
                                       lowercase=lowercase).score
        got = sentence_bleu(pred, ref, smoothing=smoothing, lowercase=lowercase)
        assert got == pytest.approx(want, abs=1e-9), (pred, ref)
    for pred, refs in MULTI_REFS:
        want = sacrebleu.sentence_bleu(pred, refs, smooth_method=smoothing,
                                       lowercase=lowercase).score
        got = sentence_bleu(pred, refs, smoothing=smoothing, lowercase=lowercase)
        assert got == pytest.approx(want, abs=1e-9), (pred, refs)


def test_sentence_bleu_other_tokenizers_are_sacrebleu():
    for tokenize in ("intl", "char", "zh", "none"):
        for pred, ref in PAIRS:
            want = sacrebleu.sentence_bleu(pred, [ref], tokenize=tokenize).score
            assert sentence_bleu(pred, ref, tokenize=tokenize) == pytest.approx(want, abs=1e-9)
    # 13a keeps an unspaced Chinese sentence whole; "zh" splits it into characters.
    assert sentence_bleu("我爱自然语言处理。", "我喜欢自然语言处理。") == 0.0
    assert sentence_bleu("我爱自然语言处理。", "我喜欢自然语言处理。", tokenize="zh") > 40


def test_corpus_bleu_is_sacrebleu():
    preds = [p for p, _ in PAIRS]
    refs = [r for _, r in PAIRS]
    want = sacrebleu.corpus_bleu(preds, [refs]).score
    assert corpus_bleu(preds, refs) == pytest.approx(want, abs=1e-9)
    for lowercase in (False, True):
        want = sacrebleu.corpus_bleu(preds, [refs], lowercase=lowercase,
                                     use_effective_order=True, smooth_method="floor").score
        got = corpus_bleu(preds, refs, lowercase=lowercase, effective_order=True,
                          smoothing="floor")
        assert got == pytest.approx(want, abs=1e-9)
    # Several references, their number varying per example: sacreBLEU's reference streams,
    # padded with None where an example has fewer.
    preds = [p for p, _ in MULTI_REFS] + ["the cat is on the mat"]
    refs = [r for _, r in MULTI_REFS] + [["the cat is on the mat"]]
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(3)]
    want = sacrebleu.corpus_bleu(preds, streams).score
    assert want > 0
    assert corpus_bleu(preds, refs) == pytest.approx(want, abs=1e-9)
    assert corpus_bleu([], []) == 0.0


def test_bleu_tokenize_is_13a():
    assert bleu_tokenize("Hello, world! Pi=3.14; 1,000 cats.") == [
        "Hello", ",", "world", "!", "Pi", "=", "3.14", ";", "1,000", "cats", ".",
    ]  # fmt: skip
    assert bleu_tokenize("Café OK", lowercase=True) == ["café", "ok"]
    # Non-ASCII letters and punctuation are kept as written; only ASCII punctuation splits.
    assert bleu_tokenize("«Ça» 北京。") == ["«Ça»", "北京。"]
    assert bleu_tokenize("«Ça» 北京。", tokenize="intl") == ["«", "Ça", "»", "北京", "。"]
    assert bleu_tokenize("") == []


@pytest.mark.parametrize("use_stemmer", [True, False])
def test_rouge_l_is_rouge_score(use_stemmer):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    for pred, ref in PAIRS:
        want = scorer.score(ref, pred)["rougeL"].fmeasure
        got = rouge_l(pred, ref, use_stemmer=use_stemmer)
        assert got == pytest.approx(want, abs=1e-12), (pred, ref)
    for pred, refs in MULTI_REFS:
        want = scorer.score_multi(refs, pred)["rougeL"].fmeasure
        assert rouge_l(pred, refs, use_stemmer=use_stemmer) == pytest.approx(want, abs=1e-12)


def test_rouge_l_hand_computed_and_stemming():
    assert rouge_l(HYP, REF) == pytest.approx(5 / 6)  # LCS "the cat on the mat"
    # pred "a b c d", ref "a c e": LCS 2, P = 1/2, R = 2/3, F = 4/7.
    assert rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)
    assert rouge_l("A, b!", "a b") == pytest.approx(1.0)  # lower-cased, punctuation dropped
    assert rouge_l("x", "y") == 0.0 and rouge_l("", "y") == 0.0 and rouge_l("", "") == 0.0
    assert rouge_l("a b c d", ["z", "a c e", "a b c d"]) == pytest.approx(1.0)
    # Stemming (on by default, as in LIT): "runs" and "running" are both "run".
    assert rouge_l("he runs", "he running") == pytest.approx(1.0)
    assert rouge_l("he runs", "he running", use_stemmer=False) == pytest.approx(0.5)


def test_rouge_tokenizers_and_non_ascii():
    # rouge-score's own tokenizer: lower-case, ASCII letters and digits only; everything else
    # (accented letters included) separates tokens and is dropped.
    assert rouge_tokenize("Café au lait") == ["caf", "au", "lait"]
    assert rouge_tokenize("naïve Straße") == ["na", "ve", "stra", "e"]
    assert rouge_tokenize("北京欢迎你 Привет 😀") == []
    assert rouge_tokenize("Running dogs", use_stemmer=True) == ["run", "dog"]
    assert rouge_l("北京欢迎你", "北京欢迎你") == 0.0  # no tokens at all: 0, as rouge-score says
    assert rouge_l("Привет мир", "Пока мир") == 0.0
    # The "unicode" tokenizer keeps every script's letters and digits (case-folded).
    assert rouge_tokenize("Café au lait", tokenizer="unicode") == ["café", "au", "lait"]
    assert rouge_tokenize("naïve STRASSE_2", tokenizer="unicode") == ["naïve", "strasse", "2"]
    assert rouge_tokenize("北京欢迎你 Привет, мир! 😀", tokenizer="unicode") == [
        "北京欢迎你", "привет", "мир"]
    assert rouge_tokenize("Running dogs", use_stemmer=True, tokenizer="unicode") == ["run", "dog"]
    assert rouge_l("北京欢迎你", "北京欢迎你", tokenizer="unicode") == 1.0
    assert rouge_l("Привет мир", "Пока мир", tokenizer="unicode") == pytest.approx(0.5)
    # On ASCII text the two tokenizers agree, so the scores do too.
    ascii_pairs = [(p, r) for p, r in PAIRS if (p + r).isascii()]
    assert len(ascii_pairs) >= 20
    for pred, ref in ascii_pairs:
        assert rouge_l(pred, ref, tokenizer="unicode") == pytest.approx(rouge_l(pred, ref))


def test_doctests():
    assert doctest.testmod(text_metrics, raise_on_error=True).attempted >= 5


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
    assert set(metric.config_spec()) == {"ignore_case", "use_stemmer", "rouge_tokenizer"}


def test_generation_metrics_rouge_config():
    metric = GenerationMetrics()
    labels, preds = ["he running", "北京欢迎你"], ["he runs", "北京欢迎你"]
    spec = (types.TextSegment(), types.GeneratedText())
    assert metric.compute(labels, preds, *spec)["rouge_l"] == pytest.approx((1.0 + 0.0) / 2)
    out = metric.compute(labels, preds, *spec, config={"use_stemmer": False,
                                                       "rouge_tokenizer": "unicode"})
    assert out["rouge_l"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [labels]).score)


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
