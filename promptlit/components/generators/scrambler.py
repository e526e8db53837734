"""Scrambler: counterfactuals with the words of chosen text fields shuffled (seeded).

LIT's "Scrambler": does the model care about word order? Each output example has the
whitespace-separated words of every selected text field randomly permuted and re-joined with
single spaces; other fields are copied (model-only inputs such as token embeddings are dropped).
The permutation is drawn from a generator seeded by `(seed, example content, k)`, so the same
example, seed and config always give the same outputs. A text with fewer than two distinct
words cannot be scrambled; the generator avoids returning the original order when another exists,
and never returns the same example twice. The model is not called.

Example:
    >>> from promptlit.api import types
    >>> class Data:
    ...     def spec(self): return {"text": types.TextSegment()}
    >>> out = Scrambler().generate({"text": "a b c d"}, None, Data(), {"seed": 1})
    >>> sorted(out[0]["text"].split()) == ["a", "b", "c", "d"]
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Generator
from promptlit.api.types import JsonDict, Spec
from promptlit.components import _classifier_common as common
from promptlit.lib import utils

__all__ = ["Scrambler", "scramble_words"]

_MAX_TRIES = 20


def scramble_words(text: str, rng: np.random.Generator) -> str:
    """The words of `text` in a random order `rng` draws (not the original order if avoidable)."""
    words = text.split()
    if len(set(words)) < 2:
        return text  # nothing to scramble
    for _ in range(_MAX_TRIES):
        shuffled = [words[i] for i in rng.permutation(len(words))]
        if shuffled != words:
            return " ".join(shuffled)
    return " ".join(words[1:] + words[:1])  # a rotation is never the identity here


class Scrambler(Generator):
    """Shuffles the words of the selected text fields: `num_examples` seeded permutations."""

    _name = "scrambler"

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model reads a TextSegment field that the dataset has."""
        return bool(common.text_fields(model, dataset))

    def config_spec(self) -> Spec:
        """text_fields, num_examples, seed."""
        return {
            "text_fields": types.MultiFieldMatcher(spec="input", types=["TextSegment"],
                                                   select_all=True,
                                                   description="Text fields to scramble."),
            "num_examples": types.Integer(min_val=1, max_val=1000, default=1,
                                          description="Scrambled copies per input."),
            "seed": types.Integer(min_val=0, max_val=2**31 - 1, default=0,
                                  description="Random seed."),
        }

    def generate(self, example: JsonDict, model: Any, dataset: Any,
                 config: JsonDict | None = None) -> list[JsonDict]:
        """Up to `num_examples` distinct scrambled copies of `example` ([] if none differ).

        Raises:
            ValueError: unknown text fields or num_examples < 1.
        """
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        num = int(cfg["num_examples"])
        if num < 1:
            raise ValueError(f"scrambler: num_examples must be >= 1, got {num}.")
        fields = common.text_fields(model, dataset, cfg.get("text_fields"))
        base = common.strip_model_only_fields(example, model)
        content = int(utils.example_id(base)[:12], 16)
        seen = {utils.example_id(base)}
        results = []
        for k in range(num * 3):  # a few spare draws for duplicates
            rng = np.random.default_rng([int(cfg["seed"]), content, k])
            new = dict(base)
            for field in fields:
                if isinstance(example.get(field), str):
                    new[field] = scramble_words(example[field], rng)
            key = utils.example_id(new)
            if key not in seen:
                seen.add(key)
                results.append(new)
                if len(results) == num:
                    break
        return results
