"""Per-example classification results: predicted class, scores, correct or not.

As LIT's `ClassificationInterpreter` (`lit_nlp.components.classification_results`): for every
`MulticlassPreds` output field, each example gets a `dtypes.ClassificationResult(scores,
predicted_class, correct)`; ``correct`` is None when the example has no label in the field named
by the spec's `parent`. The decision rule is `promptlit.components.metrics.predicted_indices`
(argmax; binary threshold; LIT margin), so results agree with `MulticlassMetrics`.

Config (all optional), either flat (applies to every field) or per field ``{pred_key: {...}}``:

* ``threshold``: binary fields: the positive class wins when its score is ``>= threshold``;
* ``margin``: LIT's margin added to the null class's log-score;
* ``group_field`` + ``group_thresholds``: a per-group threshold (as the `Thresholder` computes
  for fairness constraints): examples whose ``example[group_field]`` is a key of
  ``group_thresholds`` use that threshold, the others use ``threshold`` (or the spec's).

Example:
    >>> from promptlit.api import types
    >>> spec = types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0)
    >>> [r.predicted_class for r in classification_results([[0.7, 0.3], [0.4, 0.6]], spec)]
    ['neg', 'pos']
    >>> classification_results([[0.7, 0.3]], spec, labels=["pos"], threshold=0.25)[0].correct
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from promptlit.api import dtypes, types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components.metrics import (
    applicable_config,
    as_class_scores,
    predicted_indices,
    resolve_threshold,
)
from promptlit.lib.utils import find_spec_keys

__all__ = ["ClassificationInterpreter", "ClassificationResults", "classification_results"]


def classification_results(
    scores: Sequence[Any] | np.ndarray,
    pred_spec: types.MulticlassPreds,
    labels: Sequence[Any] | None = None,
    *,
    threshold: float | Sequence[float | None] | None = None,
    margin: float | None = None,
) -> list[dtypes.ClassificationResult]:
    """One `ClassificationResult` per row of `<float>[num_examples, num_labels]` scores.

    Args:
        scores: class scores, one row per example.
        pred_spec: the MulticlassPreds spec (vocab, null_idx, threshold).
        labels: the true class of each example (None entries: unknown, ``correct=None``).
        threshold: binary only: one threshold, or one per example (None entries: the spec's
            threshold, else argmax). Defaults to `pred_spec.threshold`.
        margin: LIT's margin, used when no threshold applies.
    """
    probs = as_class_scores(scores, pred_spec)
    if labels is not None and len(labels) != len(probs):
        raise ValueError(f"{len(labels)} labels but {len(probs)} predictions; pass one each.")
    spec_threshold = resolve_threshold(pred_spec, None)
    per_example = (list(threshold) if isinstance(threshold, Sequence | np.ndarray)
                   else [threshold] * len(probs))
    if len(per_example) != len(probs):
        raise ValueError(f"{len(per_example)} thresholds for {len(probs)} examples.")
    per_example = [spec_threshold if t is None else t for t in per_example]
    checked = {t: resolve_threshold(pred_spec, {"threshold": t}) for t in set(per_example)
               if t is not None}
    idx = np.empty(len(probs), dtype=np.int64)
    for t in set(per_example):
        rows = np.asarray([i for i, x in enumerate(per_example) if x == t], dtype=np.int64)
        if t is None:
            idx[rows] = predicted_indices(probs[rows], pred_spec, margin=margin)
        else:
            idx[rows] = predicted_indices(probs[rows], pred_spec, threshold=checked[t])
    vocab = list(pred_spec.vocab)
    results = []
    for i, row in enumerate(probs):
        label = None if labels is None else labels[i]
        predicted = vocab[int(idx[i])]
        results.append(dtypes.ClassificationResult(
            scores=row, predicted_class=predicted,
            correct=None if label is None else bool(predicted == label)))
    return results


def _field_config(config: JsonDict | None, pred_key: str) -> JsonDict:
    """The config for one field: `config[pred_key]` if it is a dict there, else `config`."""
    config = dict(config or {})
    nested = config.get(pred_key)
    return dict(nested) if isinstance(nested, Mapping) else config


def _thresholds_for(inputs: Sequence[JsonDict], config: JsonDict) -> list[float | None] | None:
    """Per-example thresholds from ``group_field`` / ``group_thresholds`` (None without them)."""
    group_field = config.get("group_field")
    groups = config.get("group_thresholds")
    if not group_field and not groups:
        return None
    if not group_field or not isinstance(groups, Mapping):
        raise ValueError("config needs both 'group_field' (a dataset field) and "
                         "'group_thresholds' ({group value: threshold}) to use group thresholds.")
    default = config.get("threshold")
    return [groups.get(str(ex.get(group_field)), groups.get(ex.get(group_field), default))
            for ex in inputs]


class ClassificationInterpreter(Interpreter):
    """Predicted class, scores and correctness for every example and `MulticlassPreds` field.

    `run` returns, per input, ``{pred_key: dtypes.ClassificationResult}``. Config: see the
    module docstring (threshold, margin, per-group thresholds).
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model outputs a MulticlassPreds field."""
        del dataset
        return bool(find_spec_keys(model.output_spec(), types.MulticlassPreds))

    def config_spec(self) -> Spec:
        """A binary threshold."""
        return {"threshold": types.Scalar(min_val=0, max_val=1, step=0.01, default=0.5,
                                          required=False)}

    def meta_spec(self) -> Spec:
        """Nothing fixed: one result per MulticlassPreds field, keyed by the field name."""
        return {}

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[dict[str, dtypes.ClassificationResult]]:
        """`[{pred_key: ClassificationResult}]`, one dict per input, in order."""
        del dataset
        out_spec = model.output_spec()
        keys = find_spec_keys(out_spec, types.MulticlassPreds)
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        if len(model_outputs) != len(inputs):
            raise ValueError(f"{len(model_outputs)} model outputs for {len(inputs)} inputs.")
        results: list[dict[str, dtypes.ClassificationResult]] = [{} for _ in inputs]
        for key in keys:
            spec = out_spec[key]
            field_config = applicable_config(spec, _field_config(config, key))
            thresholds = _thresholds_for(inputs, field_config)
            if thresholds is None:
                thresholds = [resolve_threshold(spec, field_config)] * len(inputs)
            parent = spec.parent
            labels = [ex.get(parent) if parent else None for ex in inputs]
            scores = [out[key] for out in model_outputs]
            for i, res in enumerate(classification_results(
                    scores, spec, labels, threshold=thresholds,
                    margin=field_config.get("margin"))):
                results[i][key] = res
        return results


ClassificationResults = ClassificationInterpreter
"""Alias: the interpreter under the name of its output."""
