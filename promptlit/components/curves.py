"""ROC and precision-recall curve points per class of a classifier.

As LIT's `CurvesInterpreter` (`lit_nlp.components.curves`): for a target class, the examples whose
label is that class are positives and the class's score ranks them; points come from
`sklearn.metrics.roc_curve` and `sklearn.metrics.precision_recall_curve`. Point order follows
LIT: ``roc_data`` is ``[(false positive rate, true positive rate), ...]`` and ``pr_data`` is
``[(precision, recall), ...]`` (plot recall on x). Each curve also carries its thresholds and its
area (ROC AUC, average precision) so a UI can label it without recomputing.

Example:
    >>> c = binary_curves([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> c["roc_auc"], c["roc_data"][-1]
    (0.75, (1.0, 1.0))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as sk_metrics

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components.metrics import MISSING_LABEL, as_class_scores, label_indices
from promptlit.lib.utils import find_spec_keys

__all__ = ["PR_DATA", "ROC_DATA", "TARGET_LABEL_KEY", "TARGET_PREDICTION_KEY",
           "CurvesInterpreter", "binary_curves", "class_curves"]

TARGET_PREDICTION_KEY = "Prediction field"
"""Config key (LIT's): the MulticlassPreds field to use when the model has several."""
TARGET_LABEL_KEY = "Label"
"""Config key (LIT's): the class whose curves are returned as ``roc_data`` / ``pr_data``."""
ROC_DATA = "roc_data"
PR_DATA = "pr_data"


def binary_curves(is_positive: Sequence[Any] | np.ndarray, scores: Sequence[float] | np.ndarray
                  ) -> JsonDict:
    """ROC and PR curves of `<float>[num_examples]` scores against `<bool>[num_examples]` truth.

    Returns:
        ``roc_data`` [(fpr, tpr)], ``roc_thresholds``, ``pr_data`` [(precision, recall)],
        ``pr_thresholds`` (one fewer than PR points, as sklearn), and ``roc_auc`` /
        ``average_precision`` (None when only one class is present, where they are undefined).
        NaNs (e.g. ROC with no positive) are replaced by 0, as LIT does.

    Raises:
        ValueError: different lengths or no example.
    """
    truth = np.asarray(is_positive, dtype=bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if truth.shape != s.shape or truth.size == 0:
        raise ValueError(f"binary_curves: {truth.size} labels and {s.size} scores; pass one "
                         "of each per example (at least one).")
    both = 0 < truth.sum() < truth.size
    with warnings.catch_warnings():  # sklearn warns when a class is absent; we report None
        warnings.simplefilter("ignore")
        fpr, tpr, roc_t = sk_metrics.roc_curve(truth, s)
        precision, recall, pr_t = sk_metrics.precision_recall_curve(truth, s)
    return {
        ROC_DATA: [(float(x), float(y)) for x, y in zip(np.nan_to_num(fpr), np.nan_to_num(tpr),
                                                        strict=True)],
        "roc_thresholds": roc_t.tolist(),
        PR_DATA: [(float(x), float(y)) for x, y in zip(np.nan_to_num(precision),
                                                       np.nan_to_num(recall), strict=True)],
        "pr_thresholds": pr_t.tolist(),
        "roc_auc": float(sk_metrics.roc_auc_score(truth, s)) if both else None,
        "average_precision": float(sk_metrics.average_precision_score(truth, s)) if both else None,
    }


def class_curves(labels: Sequence[Any], scores: Sequence[Any] | np.ndarray,
                 pred_spec: types.MulticlassPreds) -> dict[str, JsonDict]:
    """One-vs-rest `binary_curves` for every class: ``{class name: curves}``.

    Args:
        labels: the true class name of each example; missing / unknown labels are left out.
        scores: `<float>[num_examples, num_labels]` class scores.
        pred_spec: the MulticlassPreds spec (vocab).
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} predictions; pass one each.")
    probs = as_class_scores(scores, pred_spec)
    y = label_indices(labels, pred_spec.vocab)
    keep = y != MISSING_LABEL
    if not keep.any():
        return {}
    return {name: binary_curves(y[keep] == i, probs[keep, i])
            for i, name in enumerate(pred_spec.vocab)}


class CurvesInterpreter(Interpreter):
    """ROC and PR curves of a classifier: for the configured class and for every class.

    Config: ``"Label"`` (the class for ``roc_data`` / ``pr_data``; default: the positive class of
    a binary field with null_idx, else the first class, as LIT), ``"Prediction field"`` (needed
    when the model has several MulticlassPreds fields with a parent).

    Returns ``{"roc_data", "pr_data", "pred_key", "label", "per_class": {class: curves}}``.
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when a MulticlassPreds field has a parent in the dataset."""
        return bool(self._keys(model, dataset))

    @staticmethod
    def _keys(model: Any, dataset: Any) -> list[str]:
        out, data_spec = model.output_spec(), dataset.spec()
        return [k for k in find_spec_keys(out, types.MulticlassPreds) if out[k].parent in data_spec]

    def config_spec(self) -> Spec:
        """The target class (and field)."""
        return {TARGET_LABEL_KEY: types.CategoryLabel(required=False),
                TARGET_PREDICTION_KEY: types.SingleFieldMatcher(
                    spec="output", types=["MulticlassPreds"], required=False)}

    def meta_spec(self) -> Spec:
        """The two curves."""
        return {ROC_DATA: types.CurveDataPoints(), PR_DATA: types.CurveDataPoints()}

    def run(self, inputs: Sequence[JsonDict], model: Any, dataset: Any,
            model_outputs: Sequence[JsonDict] | None = None,
            config: JsonDict | None = None) -> JsonDict:
        """Curves of the chosen field (see the class docstring).

        Raises:
            ValueError: no compatible field, an ambiguous field, or an unknown class.
        """
        config = dict(config or {})
        keys = self._keys(model, dataset)
        key = config.get(TARGET_PREDICTION_KEY)
        if key is None:
            if len(keys) != 1:
                raise ValueError(f"Set config '{TARGET_PREDICTION_KEY}' to one of {keys}; the "
                                 "model has " + ("no" if not keys else "several") +
                                 " MulticlassPreds fields with a dataset parent.")
            key = keys[0]
        elif key not in keys:
            raise ValueError(f"config '{TARGET_PREDICTION_KEY}'={key!r} is not a MulticlassPreds "
                             f"field with a dataset parent; choose one of {keys}.")
        spec = model.output_spec()[key]
        label = config.get(TARGET_LABEL_KEY)
        if label is None:
            label = (spec.vocab[1 - spec.null_idx]
                     if len(spec.vocab) == 2 and spec.null_idx is not None else spec.vocab[0])
        if label not in spec.vocab:
            raise ValueError(f"config '{TARGET_LABEL_KEY}'={label!r} is not a class of '{key}'; "
                             f"classes: {spec.vocab}.")
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        per_class = class_curves([ex.get(spec.parent) for ex in inputs],
                                 [o[key] for o in model_outputs], spec)
        target = per_class.get(label, {ROC_DATA: [], PR_DATA: []})
        return {ROC_DATA: target[ROC_DATA], PR_DATA: target[PR_DATA], "pred_key": key,
                "label": label, "per_class": per_class}
