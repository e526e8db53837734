"""Scrambler: seeded, deterministic, a permutation of the words, only the chosen fields."""

from __future__ import annotations

import numpy as np

from promptlit.api import types
from promptlit.components.generators.scrambler import Scrambler, scramble_words
from promptlit.lib import validation


class Data:
    def spec(self):
        return {"a": types.TextSegment(), "b": types.TextSegment(), "label": types.Scalar()}


EX = {"a": "the quick brown fox jumps over the lazy dog", "b": "one two three", "label": 0.5}


def test_deterministic_with_seed_and_a_permutation_of_the_words():
    gen = Scrambler()
    first = gen.generate(EX, None, Data(), {"seed": 7, "num_examples": 3})
    again = gen.generate(dict(EX), None, Data(), {"seed": 7, "num_examples": 3})
    assert first == again and len(first) == 3
    other = gen.generate(EX, None, Data(), {"seed": 8, "num_examples": 3})
    assert other != first
    for ex in first:
        assert sorted(ex["a"].split()) == sorted(EX["a"].split()) and ex["a"] != EX["a"]
        assert sorted(ex["b"].split()) == sorted(EX["b"].split()) and ex["b"] != EX["b"]
        assert ex["label"] == 0.5
        assert not validation.validate_example(ex, Data().spec())
    assert len({ex["a"] + "|" + ex["b"] for ex in first}) == 3  # distinct


def test_only_chosen_fields_and_unscramblable_text():
    out = Scrambler().generate(EX, None, Data(), {"text_fields": ["b"], "seed": 1})
    assert out[0]["a"] == EX["a"] and out[0]["b"] != EX["b"]
    assert Scrambler().generate({"a": "same same", "b": "x"}, None, Data()) == []
    # Only 2 orders of two distinct words exist: one scrambled example, however many asked.
    assert Scrambler().generate({"a": "x y", "b": ""}, None, Data(),
                                {"num_examples": 5}) == [{"a": "y x", "b": ""}]
    assert scramble_words("a b", np.random.default_rng(0)) == "b a"
