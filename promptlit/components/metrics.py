"""Classification, regression and multi-label metrics, paired metrics and a models × slices table.

The metric components follow LIT (`lit_nlp.components.metrics`): each one scores the output
fields of a model against the dataset fields named by their `parent=`, and is compatible by spec:

* `MulticlassMetrics`: `MulticlassPreds` (parent `CategoryLabel`): accuracy; with `null_idx`, LIT's
  precision / recall / F1 of the non-null classes (micro-averaged over them); per-class precision,
  recall, F1; macro F1; AUC (binary: of the positive class; more classes: one-vs-rest, macro) and
  average precision (AUC-PR) for binary problems.
* `MulticlassPairedMetrics`: for generated counterfactuals (`meta["parentId"]` names the example
  they came from): how often the prediction swapped and the mean Jensen-Shannon divergence.
* `RegressionMetrics`: `RegressionScore` (parent `Scalar`): MSE, Pearson's r, Spearman's rho.
* `MultilabelMetrics`: `SparseMultilabelPreds` (parent `SparseMultilabel`): exact match and
  per-example (``average="samples"``) precision / recall / F1.

`paired_model_metrics` compares two models' predictions on the same examples and
`compute_metrics_table` computes every compatible metric per model and per slice as a tidy
`pandas.DataFrame` (one row per value), ready for a models × slices table (`metrics_pivot`).

Decision rule for class predictions (`predicted_indices`, shared with the classification
interpreters): argmax of the scores; for a binary `MulticlassPreds` with `null_idx`, a threshold
``t`` (config ``"threshold"``, else `MulticlassPreds.threshold`) predicts the positive class when
its score is ``>= t``; a LIT margin ``m`` (config ``"margin"``) adds ``m`` to the log-score of the
null class before the argmax (for two normalised classes, margin ``log(t / (1 - t))`` is the same
as threshold ``t`` up to ties).

Metrics that are undefined on the given data (AUC with one class present, a correlation of
constant values) are left out of the result instead of being NaN, so results are valid JSON.

Example:
    >>> from promptlit.api import types
    >>> spec = types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0, parent="label")
    >>> m = MulticlassMetrics().compute(["pos", "neg", "pos"], [[0.2, 0.8], [0.6, 0.4], [0.7, 0.3]],
    ...                                 types.CategoryLabel(), spec)
    >>> round(m["accuracy"], 4), m["precision"], m["recall"], m["auc"]
    (0.6667, 1.0, 0.5, 0.5)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from scipy.spatial import distance as scipy_distance
from sklearn import metrics as sk_metrics

from promptlit.api import types
from promptlit.api.components import ClassificationMetrics, Metrics, SimpleMetrics
from promptlit.api.types import JsonDict, Spec
from promptlit.lib.utils import indexed as utils_indexed

__all__ = [
    "MulticlassMetrics",
    "MulticlassPairedMetrics",
    "MultilabelMetrics",
    "RegressionMetrics",
    "applicable_config",
    "as_class_scores",
    "classify",
    "compute_metrics_table",
    "default_metrics",
    "indexed_examples",
    "label_indices",
    "margin_to_threshold",
    "metrics_pivot",
    "multiclass_metrics",
    "multilabel_metrics",
    "paired_model_metrics",
    "positive_index",
    "predicted_indices",
    "regression_metrics",
    "resolve_slices",
    "resolve_threshold",
    "threshold_to_margin",
]

MISSING_LABEL = -1
"""Index `label_indices` gives a label that is not in the vocabulary."""


# ------------------------------------------------------------------------------ helpers
def as_class_scores(
    preds: Sequence[Any] | np.ndarray, pred_spec: types.MulticlassPreds, field: str = "preds"
) -> np.ndarray:
    """Stacks per-example class scores into `<float>[num_examples, num_labels]`, validated.

    Args:
        preds: one `<float>[num_labels]` score vector per example.
        pred_spec: the MulticlassPreds spec whose `vocab` gives `num_labels`.
        field: the field name, for error messages.

    Raises:
        ValueError: a score vector of the wrong length or a non-numeric / non-finite score.
    """
    num_labels = len(pred_spec.vocab)
    if num_labels == 0:
        raise ValueError(f"Field '{field}': MulticlassPreds.vocab is empty; list the classes.")
    if len(preds) == 0:
        return np.zeros((0, num_labels))
    try:
        scores = np.asarray([np.asarray(p, dtype=np.float64).reshape(-1) for p in preds])
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"Field '{field}': expected one list of {num_labels} numbers per example "
            f"(scores for {pred_spec.vocab}); got {type(preds[0]).__name__} values ({e})."
        ) from e
    if scores.ndim != 2 or scores.shape[1] != num_labels:
        raise ValueError(
            f"Field '{field}': expected {num_labels} scores per example (one per class of "
            f"{pred_spec.vocab}); got shape {scores.shape if scores.ndim == 2 else 'ragged'}."
        )
    if not np.all(np.isfinite(scores)):
        bad = int(np.argwhere(~np.isfinite(scores))[0, 0])
        raise ValueError(f"Field '{field}': example {bad} has a non-finite score {preds[bad]}.")
    return scores


def label_indices(labels: Sequence[Any], vocab: Sequence[str]) -> np.ndarray:
    """`<int>[num_examples]` index of each label in `vocab`; `MISSING_LABEL` (-1) if absent/None."""
    position = {v: i for i, v in enumerate(vocab)}
    return np.asarray([position.get(lab, MISSING_LABEL) if lab is not None else MISSING_LABEL
                       for lab in labels], dtype=np.int64)


def positive_index(pred_spec: types.MulticlassPreds) -> int:
    """The positive class of a binary MulticlassPreds: the non-null class (index 1 if no null_idx).

    Raises:
        ValueError: the spec does not have exactly two classes.
    """
    if len(pred_spec.vocab) != 2:
        raise ValueError(
            f"A positive class is only defined for binary MulticlassPreds; this one has "
            f"{len(pred_spec.vocab)} classes {pred_spec.vocab}."
        )
    return 1 if pred_spec.null_idx is None else 1 - int(pred_spec.null_idx)


def threshold_to_margin(threshold: float) -> float:
    """LIT's conversion of a binary threshold to a margin: `log(t / (1 - t))`, clipped to ±5."""
    if threshold <= 0:
        return -5.0
    if threshold >= 1:
        return 5.0
    return math.log(threshold / (1 - threshold))


def margin_to_threshold(margin: float) -> float:
    """Inverse of `threshold_to_margin`: the sigmoid of the margin."""
    return 1.0 / (1.0 + math.exp(-margin))


def resolve_threshold(pred_spec: types.MulticlassPreds, config: JsonDict | None) -> float | None:
    """The binary decision threshold to use: config ``"threshold"``, else the spec's, else None.

    Raises:
        ValueError: a threshold is configured for a spec that is not binary with a null_idx, or
            it is not a number in [0, 1].
    """
    threshold = (config or {}).get("threshold")
    if threshold is None:
        threshold = pred_spec.threshold
        if threshold is None or len(pred_spec.vocab) != 2 or pred_spec.null_idx is None:
            return None
    if len(pred_spec.vocab) != 2 or pred_spec.null_idx is None:
        raise ValueError(
            f"config 'threshold'={threshold!r} needs a binary MulticlassPreds with null_idx set "
            f"(the negative class); got vocab {pred_spec.vocab} and null_idx {pred_spec.null_idx}."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
        0.0 <= float(threshold) <= 1.0
    ):
        raise ValueError(f"config 'threshold' must be a number in [0, 1]; got {threshold!r}.")
    return float(threshold)


def applicable_config(pred_spec: types.MulticlassPreds, config: JsonDict | None) -> JsonDict:
    """`config` without the decision options that do not apply to this field.

    Components get one flat config for every field of a model: a ``"threshold"`` (and per-group
    thresholds) only apply to a binary MulticlassPreds with `null_idx`, a ``"margin"`` only to
    one with `null_idx`;
    other fields ignore them (argmax) instead of failing. The plain functions
    (`multiclass_metrics`, `predicted_indices`) stay strict and raise.
    """
    out = dict(config or {})
    if pred_spec.null_idx is None:
        out.pop("margin", None)
    if pred_spec.null_idx is None or len(pred_spec.vocab) != 2:
        for key in ("threshold", "group_field", "group_thresholds"):
            out.pop(key, None)
    return out


def predicted_indices(
    scores: np.ndarray,
    pred_spec: types.MulticlassPreds,
    *,
    threshold: float | None = None,
    margin: float | Sequence[float] | None = None,
) -> np.ndarray:
    """`<int>[num_examples]` predicted class index of each row of `<float>[num_examples, num_labels]`.

    Args:
        scores: class scores (probabilities), one row per example.
        pred_spec: the MulticlassPreds spec (its `null_idx` is used by threshold and margin).
        threshold: binary only: predict the positive class when its score is ``>= threshold``.
        margin: LIT's margin (one value, or one per example): added to the log-score of the
            null class before the argmax. Ignored when `threshold` is given.

    Raises:
        ValueError: `threshold` or `margin` without a `null_idx`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if threshold is not None:
        pos = positive_index(pred_spec)
        if pred_spec.null_idx is None:
            raise ValueError("A threshold needs MulticlassPreds.null_idx (the negative class).")
        return np.where(scores[:, pos] >= threshold, pos, int(pred_spec.null_idx))
    if margin is not None:
        if pred_spec.null_idx is None:
            raise ValueError("A margin needs MulticlassPreds.null_idx (the class it is added to).")
        margins = np.broadcast_to(np.asarray(margin, dtype=np.float64), (len(scores),))
        with np.errstate(divide="ignore"):
            logits = np.log(scores)
        logits[:, int(pred_spec.null_idx)] += margins
        return np.argmax(logits, axis=1)
    return np.argmax(scores, axis=1)


def classify(scores: np.ndarray, pred_spec: types.MulticlassPreds, config: JsonDict | None = None
             ) -> np.ndarray:
    """`<int>[num_examples]` predicted indices, with ``threshold`` / ``margin`` from `config`.

    The threshold is `resolve_threshold(pred_spec, config)` (config, else the spec's); a
    ``"margin"`` in `config` is used only when no threshold applies. See `predicted_indices`.
    """
    threshold = resolve_threshold(pred_spec, config)
    margin = (config or {}).get("margin") if threshold is None else None
    return predicted_indices(scores, pred_spec, threshold=threshold, margin=margin)


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """Drops undefined (NaN / None) values and converts numpy scalars to float."""
    return {k: float(v) for k, v in metrics.items()
            if v is not None and not (isinstance(v, float | np.floating) and np.isnan(v))}


# ------------------------------------------------------------------------------ multiclass
def multiclass_metrics(
    labels: Sequence[Any],
    scores: Sequence[Any] | np.ndarray,
    pred_spec: types.MulticlassPreds,
    config: JsonDict | None = None,
) -> dict[str, float]:
    """Accuracy, precision / recall / F1 (overall, per class, macro), AUC of class predictions.

    Args:
        labels: the true class name of each example; names not in `pred_spec.vocab` (or None)
            count as missing labels and are left out (``num_missing_labels``).
        scores: `<float>[num_examples, num_labels]` class scores.
        pred_spec: the MulticlassPreds spec (vocab, null_idx, threshold).
        config: optional ``"threshold"`` (binary) or ``"margin"`` (see module docstring).

    Returns:
        ``accuracy``; with `null_idx`, ``precision`` / ``recall`` / ``f1`` micro-averaged over the
        non-null classes (as LIT); ``precision/<class>``, ``recall/<class>``, ``f1/<class>`` for
        each class that is a label or a prediction; ``macro_f1`` (their mean, as
        ``sklearn.metrics.f1_score(average="macro")``); ``auc`` (binary: of the positive class,
        with ``aucpr`` its average precision; 3+ classes: the mean of the defined one-vs-rest
        ``auc/<class>``); ``num_missing_labels`` when some labels are missing. {} if no example.
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} predictions; pass one each.")
    vocab = list(pred_spec.vocab)
    probs = as_class_scores(scores, pred_spec)
    y_all = label_indices(labels, vocab)
    pred_all = classify(probs, pred_spec, config)
    keep = y_all != MISSING_LABEL
    y, y_pred, probs = y_all[keep], pred_all[keep], probs[keep]
    ret: dict[str, float] = {}
    num_missing = int((~keep).sum())
    if len(y) == 0:
        return {"num_missing_labels": float(num_missing)} if num_missing else {}

    ret["accuracy"] = sk_metrics.accuracy_score(y, y_pred)
    if pred_spec.null_idx is not None and len(vocab) > 1:
        non_null = [i for i in range(len(vocab)) if i != pred_spec.null_idx]
        p, r, f, _ = sk_metrics.precision_recall_fscore_support(
            y, y_pred, labels=non_null, average="micro", zero_division=0)
        ret.update(precision=p, recall=r, f1=f)

    present = sorted(set(y.tolist()) | set(y_pred.tolist()))
    p, r, f, _ = sk_metrics.precision_recall_fscore_support(
        y, y_pred, labels=present, average=None, zero_division=0)
    for i, cls in enumerate(present):
        ret[f"precision/{vocab[cls]}"] = p[i]
        ret[f"recall/{vocab[cls]}"] = r[i]
        ret[f"f1/{vocab[cls]}"] = f[i]
    ret["macro_f1"] = float(np.mean(f))

    if len(vocab) == 2:
        pos = positive_index(pred_spec)
        truth = y == pos
        if 0 < truth.sum() < len(truth):
            ret["auc"] = sk_metrics.roc_auc_score(truth, probs[:, pos])
            ret["aucpr"] = sk_metrics.average_precision_score(truth, probs[:, pos])
    elif len(vocab) > 2:
        aucs = []
        for cls, name in enumerate(vocab):
            truth = y == cls
            if 0 < truth.sum() < len(truth):
                aucs.append(sk_metrics.roc_auc_score(truth, probs[:, cls]))
                ret[f"auc/{name}"] = aucs[-1]
        if aucs:
            ret["auc"] = float(np.mean(aucs))
    if num_missing:
        ret["num_missing_labels"] = num_missing
    return _finite(ret)


_HIGHEST = types.MetricBestValue.HIGHEST


class MulticlassMetrics(ClassificationMetrics):
    """Accuracy, precision, recall, F1 and AUC of a classifier against its `CategoryLabel`.

    Compatible with `MulticlassPreds` output fields whose `parent` is a `CategoryLabel` dataset
    field. Config (optional): ``threshold`` (binary, in [0, 1]) or ``margin`` (LIT's); without
    them `MulticlassPreds.threshold` or the argmax decides. See `multiclass_metrics`.
    """

    def config_spec(self) -> Spec:
        """A threshold for binary classifiers."""
        return {"threshold": types.Scalar(min_val=0, max_val=1, step=0.01, default=0.5,
                                          required=False,
                                          description="Binary: positive when its score >= this.")}

    def meta_spec(self) -> Spec:
        """The metric names (per-class ones are `<metric>/<class>`)."""
        return {
            "accuracy": types.MetricResult(best_value=_HIGHEST, description="Fraction correct."),
            "precision": types.MetricResult(
                best_value=_HIGHEST, description="Precision of the non-null classes (null_idx)."),
            "recall": types.MetricResult(
                best_value=_HIGHEST, description="Recall of the non-null classes (null_idx)."),
            "f1": types.MetricResult(
                best_value=_HIGHEST, description="F1 of the non-null classes (null_idx)."),
            "macro_f1": types.MetricResult(best_value=_HIGHEST,
                                           description="Mean per-class F1."),
            "auc": types.MetricResult(
                best_value=_HIGHEST, description="ROC AUC (binary; one-vs-rest macro for 3+)."),
            "aucpr": types.MetricResult(best_value=_HIGHEST,
                                        description="Average precision (binary)."),
            "num_missing_labels": types.MetricResult(
                best_value=types.MetricBestValue.ZERO,
                description="Examples whose label is not in the vocabulary."),
        }

    def compute(
        self,
        labels: Sequence[Any],
        preds: Sequence[Any],
        label_spec: types.LitType,
        pred_spec: types.LitType,
        config: JsonDict | None = None,
    ) -> dict[str, float]:
        """Metric name -> value; see `multiclass_metrics`.

        Raises:
            TypeError: `pred_spec` is not a MulticlassPreds.
        """
        del label_spec
        if not isinstance(pred_spec, types.MulticlassPreds):
            raise TypeError(f"pred_spec must be a MulticlassPreds, got {type(pred_spec).__name__}.")
        if not labels:
            return {}
        return multiclass_metrics(labels, preds, pred_spec, applicable_config(pred_spec, config))

    def compute_labels(
        self, labels: list[str], predicted: list[str], pred_spec: types.MulticlassPreds
    ) -> dict[str, float]:
        """Accuracy and precision / recall / F1 from class names alone (no AUC without scores)."""
        vocab = list(pred_spec.vocab)
        idx = label_indices(predicted, vocab)
        if np.any(idx == MISSING_LABEL):
            bad = predicted[int(np.argmax(idx == MISSING_LABEL))]
            raise ValueError(f"Predicted class {bad!r} is not in the vocabulary {vocab}.")
        one_hot = np.eye(len(vocab))[idx]
        out = multiclass_metrics(labels, one_hot, dataclasses.replace(pred_spec, threshold=None))
        return {k: v for k, v in out.items() if not k.startswith("auc")}


# ------------------------------------------------------------------------------ paired
class MulticlassPairedMetrics(SimpleMetrics):
    """How predictions change between counterfactual pairs: swap rate and mean JS divergence.

    As LIT: an example whose metadata has ``"parentId"`` is paired with that parent when both are
    in the scored set. ``swap_rate`` is the fraction of pairs whose predicted class differs,
    ``mean_jsd`` the mean squared Jensen-Shannon distance between their score vectors,
    ``num_pairs`` the number of pairs. {} when there is no pair. Config as `MulticlassMetrics`.
    """

    def is_field_compatible(self, pred_spec: types.LitType,
                            parent_spec: types.LitType | None) -> bool:
        """MulticlassPreds against a CategoryLabel."""
        return isinstance(pred_spec, types.MulticlassPreds) and isinstance(
            parent_spec, types.CategoryLabel)

    def meta_spec(self) -> Spec:
        """num_pairs, swap_rate, mean_jsd."""
        zero = types.MetricBestValue.ZERO
        return {
            "num_pairs": types.MetricResult(description="Counterfactual pairs found."),
            "swap_rate": types.MetricResult(best_value=zero,
                                            description="Fraction of pairs whose class differs."),
            "mean_jsd": types.MetricResult(best_value=zero,
                                           description="Mean Jensen-Shannon divergence."),
        }

    @staticmethod
    def find_pairs(indices: Sequence[str | None], metas: Sequence[JsonDict]
                   ) -> list[tuple[int, int]]:
        """(parent position, child position) for every child whose parent is in `indices`."""
        position = {ex_id: i for i, ex_id in enumerate(indices)}
        pairs = []
        for i, meta in enumerate(metas):
            parent = (meta or {}).get("parentId")
            if parent is not None and parent in position:
                pairs.append((position[parent], i))
        return pairs

    def compute(self, labels: Sequence[Any], preds: Sequence[Any], label_spec: types.LitType,
                pred_spec: types.LitType, config: JsonDict | None = None) -> dict[str, float]:
        """Without ids and metadata there are no pairs: always {}."""
        del labels, preds, label_spec, pred_spec, config
        return {}

    def compute_with_metadata(
        self,
        labels: Sequence[Any],
        preds: Sequence[Any],
        label_spec: types.LitType,
        pred_spec: types.LitType,
        indices: Sequence[str | None],
        metas: Sequence[JsonDict],
        config: JsonDict | None = None,
    ) -> dict[str, float]:
        """num_pairs, swap_rate, mean_jsd over the pairs found in (`indices`, `metas`)."""
        del labels, label_spec
        if not isinstance(pred_spec, types.MulticlassPreds):
            raise TypeError(f"pred_spec must be a MulticlassPreds, got {type(pred_spec).__name__}.")
        pairs = self.find_pairs(indices, metas)
        if not pairs:
            return {}
        scores = as_class_scores(preds, pred_spec)
        pred_idx = classify(scores, pred_spec, applicable_config(pred_spec, config))
        swapped = [pred_idx[i] != pred_idx[j] for i, j in pairs]
        jsd = [scipy_distance.jensenshannon(scores[i], scores[j]) ** 2 for i, j in pairs]
        return _finite({"num_pairs": len(pairs), "swap_rate": float(np.mean(swapped)),
                        "mean_jsd": float(np.mean(jsd))})


def paired_model_metrics(
    preds_a: Sequence[Any],
    preds_b: Sequence[Any],
    pred_spec: types.LitType,
    config: JsonDict | None = None,
) -> dict[str, float]:
    """Compares two models' predictions on the same examples (model A vs model B).

    Args:
        preds_a: model A's predictions of one field, one per example.
        preds_b: model B's predictions of the same field, aligned with `preds_a`.
        pred_spec: the field's spec: MulticlassPreds (`<float>[num_labels]` each) or
            RegressionScore (a float each).
        config: threshold / margin for class decisions (see `MulticlassMetrics`).

    Returns:
        ``num_examples``; ``mean_abs_diff`` (mean |a - b|; for classes, over examples and
        classes); MulticlassPreds also ``swap_rate`` (fraction whose predicted class differs)
        and ``mean_jsd`` (mean Jensen-Shannon divergence); RegressionScore also
        ``max_abs_diff``. {} when there is no example.

    Raises:
        ValueError: different numbers of predictions; TypeError: an unsupported spec.
    """
    if len(preds_a) != len(preds_b):
        raise ValueError(f"paired_model_metrics: {len(preds_a)} predictions from model A but "
                         f"{len(preds_b)} from model B; pass predictions on the same examples.")
    if len(preds_a) == 0:
        return {}
    if isinstance(pred_spec, types.MulticlassPreds):
        a = as_class_scores(preds_a, pred_spec, "model A")
        b = as_class_scores(preds_b, pred_spec, "model B")
        jsd = [scipy_distance.jensenshannon(x, y) ** 2 for x, y in zip(a, b, strict=True)]
        return _finite({
            "num_examples": len(a),
            "swap_rate": float(np.mean(classify(a, pred_spec, config)
                                       != classify(b, pred_spec, config))),
            "mean_abs_diff": float(np.mean(np.abs(a - b))),
            "mean_jsd": float(np.mean(jsd)),
        })
    if isinstance(pred_spec, types.RegressionScore):
        a, b = _as_floats(preds_a, "model A"), _as_floats(preds_b, "model B")
        diff = np.abs(a - b)
        return {"num_examples": float(len(a)), "mean_abs_diff": float(diff.mean()),
                "max_abs_diff": float(diff.max())}
    raise TypeError("paired_model_metrics supports MulticlassPreds and RegressionScore fields; "
                    f"got {type(pred_spec).__name__}.")


# ------------------------------------------------------------------------------ regression
def _as_floats(values: Sequence[Any], field: str) -> np.ndarray:
    """`<float>[n]` from numbers, with a clear error otherwise."""
    try:
        out = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Field '{field}': expected one number per example ({e}).") from e
    if out.shape[0] != len(values):
        raise ValueError(f"Field '{field}': expected one number per example, got nested values.")
    return out


def regression_metrics(labels: Sequence[float], preds: Sequence[float]) -> dict[str, float]:
    """MSE, Pearson's r and Spearman's rho of predictions `<float>[n]` against labels `<float>[n]`.

    Correlations are left out when undefined (fewer than 2 examples or constant values).
    {} when there is no example.
    """
    if len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels but {len(preds)} predictions; pass one each.")
    if len(labels) == 0:
        return {}
    y, p = _as_floats(labels, "labels"), _as_floats(preds, "preds")
    ret: dict[str, float] = {"mse": sk_metrics.mean_squared_error(y, p)}
    if len(y) >= 2 and np.ptp(y) > 0 and np.ptp(p) > 0:
        ret["pearsonr"] = scipy_stats.pearsonr(y, p)[0]
        ret["spearmanr"] = scipy_stats.spearmanr(y, p)[0]
    return _finite(ret)


class RegressionMetrics(SimpleMetrics):
    """MSE, Pearson's r and Spearman's rho of a `RegressionScore` against its `Scalar` label."""

    def is_field_compatible(self, pred_spec: types.LitType,
                            parent_spec: types.LitType | None) -> bool:
        """RegressionScore against a Scalar."""
        return isinstance(pred_spec, types.RegressionScore) and isinstance(
            parent_spec, types.Scalar)

    def meta_spec(self) -> Spec:
        """mse, pearsonr, spearmanr."""
        return {
            "mse": types.MetricResult(best_value=types.MetricBestValue.ZERO,
                                      description="Mean squared error."),
            "pearsonr": types.MetricResult(best_value=_HIGHEST,
                                           description="Pearson's r (linear correlation)."),
            "spearmanr": types.MetricResult(best_value=_HIGHEST,
                                            description="Spearman's rho (rank correlation)."),
        }

    def compute(self, labels: Sequence[Any], preds: Sequence[Any], label_spec: types.LitType,
                pred_spec: types.LitType, config: JsonDict | None = None) -> dict[str, float]:
        """See `regression_metrics`.

        Raises:
            TypeError: `label_spec` is not a Scalar or `pred_spec` not a RegressionScore.
        """
        del config
        if not isinstance(label_spec, types.Scalar):
            raise TypeError(f"label_spec must be a Scalar, got {type(label_spec).__name__}.")
        if not isinstance(pred_spec, types.RegressionScore):
            raise TypeError(
                f"pred_spec must be a RegressionScore, got {type(pred_spec).__name__}.")
        return regression_metrics(labels, preds)


# ------------------------------------------------------------------------------ multilabel
def multilabel_metrics(
    labels: Sequence[Sequence[str]],
    preds: Sequence[Sequence[Sequence[Any]]],
    vocab: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Exact match and per-example precision / recall / F1 of multi-label predictions.

    Args:
        labels: the true label set of each example (a list of strings).
        preds: each example's `[(label, score), ...]`; labels scoring above `threshold` are
            predicted (LIT: ``score > 0.5``).
        vocab: all labels; default: the labels seen in `labels` and `preds`.
        threshold: the decision threshold.

    Returns:
        ``exactmatch`` (fraction of examples whose predicted set equals the true set) and
        ``precision`` / ``recall`` / ``f1`` averaged over examples (sklearn ``average="samples"``,
        0 where undefined). {} when there is no example.
    """
    if len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels but {len(preds)} predictions; pass one each.")
    if not labels:
        return {}
    predicted: list[set[str]] = []
    for i, p in enumerate(preds):
        try:
            predicted.append({str(lab) for lab, s in p if s is not None and s > threshold})
        except (TypeError, ValueError) as e:
            raise ValueError(f"Prediction {i}: expected [(label, score), ...]; got {p!r}.") from e
    truth = [set(lab) if not isinstance(lab, str) else {lab} for lab in labels]
    classes = list(vocab) if vocab else sorted(set().union(*truth, *predicted))
    index = {c: j for j, c in enumerate(classes)}
    unknown = sorted((set().union(*truth, *predicted)) - set(index))
    if unknown:
        raise ValueError(f"Labels {unknown} are not in the vocabulary {classes}.")
    y = np.zeros((len(truth), len(classes)), dtype=int)
    y_hat = np.zeros_like(y)
    for i, (true_set, predicted_set) in enumerate(zip(truth, predicted, strict=True)):
        y[i, [index[c] for c in true_set]] = 1
        y_hat[i, [index[c] for c in predicted_set]] = 1
    return _finite({
        "exactmatch": sk_metrics.accuracy_score(y, y_hat),
        "precision": sk_metrics.precision_score(y, y_hat, average="samples", zero_division=0),
        "recall": sk_metrics.recall_score(y, y_hat, average="samples", zero_division=0),
        "f1": sk_metrics.f1_score(y, y_hat, average="samples", zero_division=0),
    })


class MultilabelMetrics(SimpleMetrics):
    """Exact match, precision, recall, F1 of `SparseMultilabelPreds` against `SparseMultilabel`.

    Config (optional): ``threshold`` (default 0.5): a label is predicted when its score is above.
    """

    def is_field_compatible(self, pred_spec: types.LitType,
                            parent_spec: types.LitType | None) -> bool:
        """SparseMultilabelPreds against a SparseMultilabel."""
        return isinstance(pred_spec, types.SparseMultilabelPreds) and isinstance(
            parent_spec, types.SparseMultilabel)

    def config_spec(self) -> Spec:
        """The score threshold."""
        return {"threshold": types.Scalar(min_val=0, max_val=1, default=0.5, required=False)}

    def meta_spec(self) -> Spec:
        """exactmatch, precision, recall, f1."""
        return {name: types.MetricResult(best_value=_HIGHEST, description=desc) for name, desc in [
            ("exactmatch", "Fraction of examples whose predicted label set is exactly right."),
            ("precision", "Mean per-example precision."),
            ("recall", "Mean per-example recall."),
            ("f1", "Mean per-example F1."),
        ]}

    def compute(self, labels: Sequence[Any], preds: Sequence[Any], label_spec: types.LitType,
                pred_spec: types.LitType, config: JsonDict | None = None) -> dict[str, float]:
        """See `multilabel_metrics`; the vocabulary is the pred spec's, else the label spec's."""
        if not isinstance(label_spec, types.SparseMultilabel):
            raise TypeError(
                f"label_spec must be a SparseMultilabel, got {type(label_spec).__name__}.")
        if not isinstance(pred_spec, types.SparseMultilabelPreds):
            raise TypeError(
                f"pred_spec must be a SparseMultilabelPreds, got {type(pred_spec).__name__}.")
        vocab = pred_spec.vocab or label_spec.vocab
        threshold = float((config or {}).get("threshold", 0.5))
        return multilabel_metrics(labels, preds, vocab, threshold)


# ------------------------------------------------------------------------------ table
def default_metrics() -> dict[str, Metrics]:
    """The metric components `compute_metrics_table` runs by default, by name: every built-in
    metric of `promptlit.components.defaults` (each applies only where its spec matches)."""
    from promptlit.components.defaults import default_components

    return default_components()["metrics"]


def indexed_examples(dataset: Any) -> list[JsonDict]:
    """`[{"id", "data", "meta"}]` of a dataset (its own ids if indexed, else `_id` / content hash)."""
    indexed = getattr(dataset, "indexed_examples", None)
    if indexed is not None:
        return [{"id": ie["id"], "data": ie["data"], "meta": ie.get("meta") or {}}
                for ie in indexed]
    return utils_indexed(dataset.examples)


def resolve_slices(
    ids: Sequence[str], slices: Mapping[str, Sequence[str | int]]
) -> dict[str, list[int]]:
    """Slice name -> positions into `ids`, from example ids (str) or positions (int).

    Raises:
        KeyError: an id that is not in `ids`; IndexError: a position out of range.
    """
    position = {ex_id: i for i, ex_id in enumerate(ids)}
    out: dict[str, list[int]] = {}
    for name, members in slices.items():
        resolved = []
        for m in members:
            if isinstance(m, bool) or not isinstance(m, str | int | np.integer):
                raise TypeError(f"Slice '{name}': members must be example ids (str) or "
                                f"positions (int); got {type(m).__name__} {m!r}.")
            if isinstance(m, str):
                if m not in position:
                    raise KeyError(f"Slice '{name}': example id {m!r} is not in the dataset.")
                resolved.append(position[m])
            else:
                if not 0 <= int(m) < len(ids):
                    raise IndexError(f"Slice '{name}': position {m} is out of range for "
                                     f"{len(ids)} examples.")
                resolved.append(int(m))
        out[name] = resolved
    return out


def compute_metrics_table(
    models: Mapping[str, Any],
    dataset: Any,
    *,
    slices: Mapping[str, Sequence[str | int]] | None = None,
    metrics: Mapping[str, Metrics] | None = None,
    model_outputs: Mapping[str, Sequence[JsonDict]] | None = None,
    config: JsonDict | None = None,
    all_slice: str | None = "all",
) -> pd.DataFrame:
    """Every compatible metric, per model and per slice, as a tidy table (one row per value).

    Each model predicts the whole dataset once (or its outputs are taken from `model_outputs`);
    every slice then scores its subset, so a slice costs no model call.

    Args:
        models: model name -> model.
        dataset: the dataset (a `Dataset`; an `IndexedDataset`'s ids and metadata are used).
        slices: slice name -> example ids (str) or positions (int) in the dataset.
        metrics: component name -> Metrics component (default `default_metrics()`).
        model_outputs: model name -> precomputed outputs, one per dataset example, in order.
        config: passed to every component (e.g. ``{"threshold": 0.3}``).
        all_slice: name of an extra slice holding the whole dataset (None: no such slice).

    Returns:
        A DataFrame with columns ``model, slice, num_examples, component, pred_key, label_key,
        metric, value``; see `metrics_pivot` for a models × slices view.
    """
    metrics = default_metrics() if metrics is None else dict(metrics)
    indexed = indexed_examples(dataset)
    all_slices: dict[str, list[int]] = {}
    if all_slice is not None:
        all_slices[all_slice] = list(range(len(indexed)))
    all_slices.update(resolve_slices([ie["id"] for ie in indexed], slices or {}))
    rows: list[dict[str, Any]] = []
    for model_name, model in models.items():
        compatible = {n: c for n, c in metrics.items() if c.is_compatible(model, dataset)}
        if not compatible:
            continue
        if model_outputs is not None and model_name in model_outputs:
            outputs = list(model_outputs[model_name])
            if len(outputs) != len(indexed):
                raise ValueError(f"model_outputs['{model_name}'] has {len(outputs)} outputs for "
                                 f"{len(indexed)} dataset examples; pass one per example.")
        else:
            outputs = list(model.predict([ie["data"] for ie in indexed]))
        for slice_name, positions in all_slices.items():
            sub_inputs = [indexed[i] for i in positions]
            sub_outputs = [outputs[i] for i in positions]
            for comp_name, comp in compatible.items():
                if not sub_inputs:
                    continue
                results = comp.run_with_metadata(sub_inputs, model, dataset, sub_outputs, config)
                for res in results:
                    for metric, value in res["metrics"].items():
                        rows.append({"model": model_name, "slice": slice_name,
                                     "num_examples": len(positions), "component": comp_name,
                                     "pred_key": res["pred_key"], "label_key": res["label_key"],
                                     "metric": metric, "value": float(value)})
    columns = ["model", "slice", "num_examples", "component", "pred_key", "label_key", "metric",
               "value"]
    return pd.DataFrame(rows, columns=columns)


def metrics_pivot(table: pd.DataFrame, metric: str, pred_key: str | None = None) -> pd.DataFrame:
    """A models × slices DataFrame of one metric from `compute_metrics_table`'s output.

    Args:
        table: the tidy table.
        metric: the metric name (e.g. ``"accuracy"``).
        pred_key: which prediction field, when models have several (default: any, first wins).

    Raises:
        KeyError: the table has no row for `metric` (the message lists the metrics it has).
    """
    rows = table[table["metric"] == metric]
    if pred_key is not None:
        rows = rows[rows["pred_key"] == pred_key]
    if rows.empty:
        raise KeyError(f"No '{metric}' in the metrics table; it has {sorted(set(table['metric']))}.")
    slice_order = list(dict.fromkeys(rows["slice"]))
    model_order = list(dict.fromkeys(rows["model"]))
    wide = rows.pivot_table(index="model", columns="slice", values="value", aggfunc="first")
    return wide.reindex(index=model_order, columns=slice_order)
