"""WordReplacer: exact outputs for substitutions, whole words, casing, combinations, the cap."""

from __future__ import annotations

import pytest

from promptlit.api import types
from promptlit.components.generators.word_replacer import WordReplacer, parse_substitutions
from promptlit.lib import validation


class Data:
    def __init__(self, spec):
        self._spec = spec

    def spec(self):
        return dict(self._spec)


DATA = Data({"text": types.TextSegment(), "label": types.CategoryLabel(vocab=["pos", "neg"])})
EX = {"text": "Great acting and a good plot, GOOD goodness!", "label": "pos"}


def texts(out):
    return [ex["text"] for ex in out]


def test_all_combinations_fewest_substitutions_first_with_case_matched():
    out = WordReplacer().generate(EX, None, DATA, {"subs": "great -> terrible, good -> bad"})
    assert texts(out) == [
        "Terrible acting and a good plot, GOOD goodness!",
        "Great acting and a bad plot, GOOD goodness!",
        "Great acting and a good plot, BAD goodness!",
        "Terrible acting and a bad plot, GOOD goodness!",
        "Terrible acting and a good plot, BAD goodness!",
        "Great acting and a bad plot, BAD goodness!",
        "Terrible acting and a bad plot, BAD goodness!",
    ]
    assert all(ex["label"] == "pos" for ex in out)
    assert all(not validation.validate_example(ex, DATA.spec()) for ex in out)


def test_case_options_alternatives_and_multiword_sources():
    wr = WordReplacer()
    exact = wr.generate(EX, None, DATA, {"subs": "good -> bad", "ignore_casing": False})
    assert texts(exact) == ["Great acting and a bad plot, GOOD goodness!"]
    as_given = wr.generate(EX, None, DATA, {"subs": "great -> terrible", "match_case": False})
    assert texts(as_given) == ["terrible acting and a good plot, GOOD goodness!"]
    alts = wr.generate({"text": "a good plot"}, None, DATA, {"subs": "good -> bad | dull"})
    assert texts(alts) == ["a bad plot", "a dull plot"]
    multi = wr.generate({"text": "not bad at all, not badly"}, None, DATA,
                        {"subs": "not bad -> good, bad -> fine"})
    assert texts(multi) == ["good at all, not badly"]  # leftmost-longest match, whole words
    assert wr.generate({"text": "goodness"}, None, DATA, {"subs": "good -> bad"}) == []


def test_cap_fields_and_model_only_inputs():
    wr = WordReplacer()
    many = {"text": "good " * 10}
    assert len(wr.generate(many, None, DATA, {"subs": "good -> bad"})) == 100  # 2^10 - 1 capped
    out = wr.generate(many, None, DATA, {"subs": "good -> bad", "max_outputs": 3})
    assert texts(out) == ["bad" + " good" * 9 + " ", "good bad" + " good" * 8 + " ",
                          "good good bad" + " good" * 7 + " "]
    two = Data({"a": types.TextSegment(), "b": types.TextSegment()})
    ex = {"a": "good", "b": "good"}
    assert wr.generate(ex, None, two, {"subs": "good -> bad"}) == [
        {"a": "bad", "b": "good"}, {"a": "good", "b": "bad"}, {"a": "bad", "b": "bad"}]
    assert wr.generate(ex, None, two, {"subs": "good -> bad", "text_fields": ["b"]}) == [
        {"a": "good", "b": "bad"}]


def test_parse_errors_are_clear():
    assert parse_substitutions(" a -> b , c -> d | e ,") == {"a": ["b"], "c": ["d", "e"]}
    with pytest.raises(ValueError, match="'great terrible' has no '->'"):
        parse_substitutions("great terrible")
    with pytest.raises(ValueError, match="nothing before '->'"):
        parse_substitutions(" -> x")
    assert WordReplacer().generate(EX, None, DATA, {"subs": ""}) == []
