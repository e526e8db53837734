"""Ablation flip: the smallest sets of words whose removal flips a classifier's (or regressor's) decision.

LIT's "Ablation Flip". The decision is the predicted class of a MulticlassPreds output, or for a
RegressionScore whether `score > regression_threshold`. The search, with every candidate text
sent to the model in one `predict` call per size:

1. leave-one-out: remove each word of the selected text fields on its own (one batch); words
   whose removal flips the decision are results of size 1, and every word is scored by how much
   its removal moves the prediction towards a flip (the drop in the predicted class's probability,
   or the move of the score towards the threshold);
2. sizes 2..`max_ablations`: combinations of the `MAX_CANDIDATES` most important remaining words,
   most important first, skipping supersets of sets already found to flip (results are minimal).

Returns up to `num_examples` flipped examples, smallest ablations first: copies of the input
with the words removed (whitespace collapsed), other fields kept, model-only inputs such as
token embeddings dropped. Every returned example was re-run through the model and verified to
flip.

Example:
    >>> sorted(AblationFlip().config_spec())  # doctest: +NORMALIZE_WHITESPACE
    ['max_ablations', 'num_examples', 'prediction_key', 'regression_threshold', 'text_fields']
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Generator
from promptlit.api.types import JsonDict, Spec
from promptlit.components import _classifier_common as common

__all__ = ["MAX_CANDIDATES", "AblationFlip"]

MAX_CANDIDATES = 10
"""Words considered for multi-word ablations (by leave-one-out importance): at most
sum_k C(10, k) predictions for k = 2..max_ablations (1013 for max_ablations = 10)."""

Unit = tuple[str, tuple[int, int]]  # (text field, character span of a word)


class AblationFlip(Generator):
    """Removes the fewest words that flip the prediction; re-runs the model to verify each flip."""

    _name = "ablation_flip"

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """A MulticlassPreds/RegressionScore output and a TextSegment input the dataset has."""
        _, out_spec = common.specs(model)
        return bool(common.prediction_keys(out_spec)) and bool(common.text_fields(model, dataset))

    def config_spec(self) -> Spec:
        """prediction_key, text_fields, max_ablations, num_examples, regression_threshold."""
        return {
            "prediction_key": common.prediction_key_config("flip"),
            "text_fields": types.MultiFieldMatcher(spec="input", types=["TextSegment"],
                                                   select_all=True,
                                                   description="Text fields to ablate."),
            "max_ablations": types.Integer(min_val=1, max_val=10, default=5,
                                           description="Most words removed at once."),
            "num_examples": types.Integer(min_val=1, max_val=1000, default=10,
                                          description="Most flipped examples returned."),
            "regression_threshold": common.regression_threshold_config(),
        }

    def generate(self, example: JsonDict, model: Any, dataset: Any,
                 config: JsonDict | None = None) -> list[JsonDict]:
        """Flipped ablations of `example`, smallest first ([] if none within max_ablations).

        Raises:
            ValueError: the model has no prediction field, or bad config values.
        """
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        _, out_spec = common.specs(model)
        pred_key = common.pick_prediction_key(out_spec, cfg.get("prediction_key"), self.name)
        pred_spec = out_spec[pred_key]
        max_ablations, num_examples = int(cfg["max_ablations"]), int(cfg["num_examples"])
        if max_ablations < 1 or num_examples < 1:
            raise ValueError(f"{self.name}: max_ablations and num_examples must be >= 1; got "
                             f"{max_ablations} and {num_examples}.")
        threshold = float(cfg["regression_threshold"])
        fields = common.text_fields(model, dataset, cfg.get("text_fields"))
        base = common.strip_model_only_fields(example, model)
        units: list[Unit] = [(f, span) for f in fields if isinstance(example.get(f), str)
                             for span in common.word_spans(example[f])]
        if not units:
            return []

        original = next(iter(model.predict([base])))[pred_key]
        decision = common.decision(original, pred_spec, threshold)

        def flip_progress(pred: Any) -> float:
            """How far a prediction moved towards flipping (higher is closer)."""
            if isinstance(pred_spec, types.MulticlassPreds):
                return float(np.asarray(original)[decision] - np.asarray(pred)[decision])
            sign = 1.0 if decision else -1.0
            return sign * (float(original) - float(pred))

        def ablate(idxs: Sequence[int]) -> JsonDict:
            new = dict(base)
            for f in {units[i][0] for i in idxs}:
                new[f] = common.remove_spans(example[f], [units[i][1] for i in idxs
                                                          if units[i][0] == f])
            return new

        def run(candidates: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], JsonDict,
                                                                    Any]]:
            batch = [ablate(c) for c in candidates]
            preds = [o[pred_key] for o in model.predict(batch)] if batch else []
            return list(zip(candidates, batch, preds, strict=True))

        flips: list[tuple[tuple[int, ...], JsonDict]] = []
        loo = run([(i,) for i in range(len(units))])
        importance = {}
        for idxs, new, pred in loo:
            if common.decision(pred, pred_spec, threshold) != decision:
                flips.append((idxs, new))
            else:
                importance[idxs[0]] = flip_progress(pred)
        ranked = sorted(importance, key=lambda i: -importance[i])[:MAX_CANDIDATES]
        for size in range(2, max_ablations + 1):
            if len(flips) >= num_examples or size > len(ranked):
                break
            found = [set(f) for f, _ in flips]
            combos = [c for c in itertools.combinations(sorted(ranked), size)
                      if not any(s <= set(c) for s in found)]
            combos.sort(key=lambda c: -sum(importance[i] for i in c))
            for idxs, new, pred in run(combos):
                if common.decision(pred, pred_spec, threshold) != decision:
                    flips.append((idxs, new))
        return [new for _, new in flips[:num_examples]]
