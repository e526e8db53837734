"""Best decision thresholds for binary classifiers: by cost, per group, and under fairness constraints.

As LIT's `Thresholder` (`lit_nlp.components.thresholder`, after the What-If Tool): thresholds
0.00, 0.01, ..., 1.00 are tried on the positive-class score of a binary `MulticlassPreds`
(positive = the non-null class) and each one's cost is ``FP * cost_ratio + FN`` (so
``cost_ratio`` is the cost of a false positive relative to a false negative, as LIT computes
it). The lowest cost wins; ties go to the lowest threshold.

With groups (the values of a categorical dataset field, or named slices of examples) the result
has, for every group:

* ``"Single"``: the one threshold that is best for all examples together;
* ``"Individual"``: the best threshold for the group's own examples;
* ``"Demographic parity"`` / ``"Equal opportunity"`` / ``"Equal accuracy"``: one threshold per group
  such that the groups have (as near as the grid allows) the same positive-prediction rate
  ``(TP + FP) / N``, the same true-positive rate ``TP / (TP + FN)``, or the same accuracy. As LIT:
  for each threshold of the first group, every other group takes the threshold whose measure is
  closest to the first group's; of these combinations the one with the lowest total cost wins.

A group where a measure is undefined at every threshold (no positive example, for equal
opportunity) keeps its individual threshold for that measure. Decisions use
``score >= threshold`` (the rule of `promptlit.components.metrics.predicted_indices`).

Example:
    >>> import numpy as np
    >>> best = find_thresholds(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.35, 0.4, 0.8]))
    >>> best
    {'': {'Single': 0.36}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components.metrics import (
    as_class_scores,
    label_indices,
    positive_index,
    resolve_slices,
)
from promptlit.lib.utils import find_spec_keys, indexed

__all__ = [
    "FAIRNESS_MEASURES",
    "THRESHOLDS",
    "Thresholder",
    "binary_counts",
    "find_thresholds",
    "threshold_costs",
]

THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)
"""The thresholds tried: `<float>[101]` = 0.00, 0.01, ..., 1.00 (as LIT)."""


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


FAIRNESS_MEASURES: dict[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = {
    "Demographic parity": lambda c: _ratio(c["TP"] + c["FP"], c["TP"] + c["FP"] + c["TN"] + c["FN"]),
    "Equal opportunity": lambda c: _ratio(c["TP"], c["TP"] + c["FN"]),
    "Equal accuracy": lambda c: _ratio(c["TP"] + c["TN"], c["TP"] + c["FP"] + c["TN"] + c["FN"]),
}
"""Measure name -> function of confusion counts (`<int>[num_thresholds]` each) to equalise."""


def binary_counts(
    is_positive: np.ndarray, scores: np.ndarray, thresholds: np.ndarray = THRESHOLDS
) -> dict[str, np.ndarray]:
    """Confusion counts at each threshold: ``{"TP", "FP", "TN", "FN"}`` -> `<int>[num_thresholds]`.

    Args:
        is_positive: `<bool>[num_examples]`, the true class is the positive one.
        scores: `<float>[num_examples]`, the positive-class score; predicted positive iff
            ``score >= threshold``.
        thresholds: `<float>[num_thresholds]`.
    """
    truth = np.asarray(is_positive, dtype=bool)[:, None]
    predicted = np.asarray(scores, dtype=np.float64)[:, None] >= np.asarray(thresholds)[None, :]
    return {"TP": (predicted & truth).sum(0), "FP": (predicted & ~truth).sum(0),
            "TN": (~predicted & ~truth).sum(0), "FN": (~predicted & truth).sum(0)}


def threshold_costs(counts: Mapping[str, np.ndarray], cost_ratio: float = 1.0) -> np.ndarray:
    """`<float>[num_thresholds]` cost ``FP * cost_ratio + FN`` at each threshold."""
    return counts["FP"] * float(cost_ratio) + counts["FN"]


def find_thresholds(
    is_positive: np.ndarray,
    scores: np.ndarray,
    groups: Sequence[Any] | None = None,
    *,
    cost_ratio: float = 1.0,
    thresholds: np.ndarray = THRESHOLDS,
) -> dict[str, dict[str, float]]:
    """Best thresholds overall, per group and under each fairness measure (module docstring).

    Args:
        is_positive: `<bool>[num_examples]`, the true class is the positive one.
        scores: `<float>[num_examples]`, the positive-class score.
        groups: the group of each example (None entries belong to no group), or None.
        cost_ratio: cost of a false positive relative to a false negative (LIT), >= 0.
        thresholds: the thresholds to try, ascending.

    Returns:
        ``{group: {"Single": t, "Individual": t, <measure>: t, ...}}``; with fewer than two
        groups, ``{"": {"Single": t}}`` (or ``{group: {"Single": t}}`` for one group), as LIT.

    Raises:
        ValueError: mismatched lengths, no example, or a negative cost ratio.
    """
    truth = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 1:
        raise ValueError(f"find_thresholds: {truth.shape} labels vs {scores.shape} scores; pass "
                         "one label and one positive-class score per example.")
    if groups is not None and len(groups) != len(truth):
        raise ValueError(f"find_thresholds: {len(groups)} group values for {len(truth)} examples.")
    if len(truth) == 0:
        raise ValueError("find_thresholds needs at least one labelled example.")
    if not cost_ratio >= 0:
        raise ValueError(f"cost_ratio must be >= 0; got {cost_ratio!r}.")
    thresholds = np.asarray(thresholds, dtype=np.float64)

    def best(mask: np.ndarray) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        counts = binary_counts(truth[mask], scores[mask], thresholds)
        costs = threshold_costs(counts, cost_ratio)
        return float(thresholds[int(np.argmin(costs))]), costs, counts

    single, _, _ = best(np.ones(len(truth), dtype=bool))
    names = list(dict.fromkeys(str(g) for g in groups if g is not None)) if groups else []
    if len(names) < 2:
        return {names[0] if names else "": {"Single": single}}
    assert groups is not None  # names come from the groups

    group_of = np.asarray(["" if g is None else str(g) for g in groups], dtype=object)
    result: dict[str, dict[str, float]] = {}
    costs: dict[str, np.ndarray] = {}
    counts: dict[str, dict[str, np.ndarray]] = {}
    for name in names:
        individual, costs[name], counts[name] = best(np.asarray(group_of == name) & np.asarray(
            [g is not None for g in groups]))
        result[name] = {"Single": single, "Individual": individual}

    first, others = names[0], names[1:]
    for measure, fn in FAIRNESS_MEASURES.items():
        values = {name: fn(counts[name]) for name in names}
        if np.all(np.isnan(values[first])):
            for name in names:
                result[name][measure] = result[name]["Individual"]
            continue
        best_total, best_choice = np.inf, None
        for i, target in enumerate(values[first]):
            if np.isnan(target):
                continue
            total, choice = costs[first][i], [i]
            for name in others:
                if np.all(np.isnan(values[name])):
                    j = int(np.argmin(costs[name]))
                else:
                    j = int(np.nanargmin(np.where(np.isnan(values[name]), np.inf,
                                                  np.abs(values[name] - target))))
                total += costs[name][j]
                choice.append(j)
            if total < best_total:
                best_total, best_choice = total, choice
        assert best_choice is not None
        for name, j in zip(names, best_choice, strict=True):
            result[name][measure] = float(thresholds[j])
    return result


class Thresholder(Interpreter):
    """Best thresholds for each binary `MulticlassPreds` field, overall, per group, and fair.

    Config (all optional): ``cost_ratio`` (default 1; cost of a false positive relative to a
    false negative), and the groups: ``group_field`` (a dataset field; each value is a group) or
    ``slices`` (``{name: example ids or positions}``). Examples whose label is missing or not in
    the vocabulary are left out.

    `run` returns, as LIT, ``[{"pred_key": ..., "thresholds": {group: {name: threshold}}}]``.
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model has a binary MulticlassPreds scored against a dataset field."""
        return bool(self._pred_keys(model, dataset))

    @staticmethod
    def _pred_keys(model: Any, dataset: Any) -> list[str]:
        out, data_spec = model.output_spec(), dataset.spec()
        return [k for k in find_spec_keys(out, types.MulticlassPreds)
                if len(out[k].vocab) == 2 and out[k].parent in data_spec]

    def config_spec(self) -> Spec:
        """Cost ratio and the field whose values are the groups."""
        return {
            "cost_ratio": types.Scalar(min_val=0, max_val=20, step=0.1, default=1,
                                       required=False,
                                       description="Cost of a false positive / a false negative."),
            "group_field": types.SingleFieldMatcher(spec="dataset", types=["CategoryLabel"],
                                                    required=False),
        }

    def run(self, inputs: Sequence[JsonDict], model: Any, dataset: Any,
            model_outputs: Sequence[JsonDict] | None = None,
            config: JsonDict | None = None) -> list[JsonDict]:
        """See the class docstring; slices may name ids (``_id`` or the content hash)."""
        return self.run_with_metadata(indexed(inputs), model, dataset, model_outputs, config)

    def run_with_metadata(self, indexed_inputs: Sequence[JsonDict], model: Any, dataset: Any,
                          model_outputs: Sequence[JsonDict] | None = None,
                          config: JsonDict | None = None) -> list[JsonDict]:
        """As `run`, on indexed inputs `{"id", "data", ...}`."""
        config = dict(config or {})
        inputs = [ie["data"] for ie in indexed_inputs]
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        groups = self._groups(indexed_inputs, dataset, config)
        out_spec = model.output_spec()
        results = []
        for key in self._pred_keys(model, dataset):
            spec = out_spec[key]
            pos = positive_index(spec)
            scores = as_class_scores([o[key] for o in model_outputs], spec, key)[:, pos]
            y = label_indices([ex.get(spec.parent) for ex in inputs], spec.vocab)
            keep = y >= 0
            if not keep.any():
                results.append({"pred_key": key, "thresholds": {}})
                continue
            kept_groups = None if groups is None else [g for g, k in zip(groups, keep,
                                                                         strict=True) if k]
            thresholds = find_thresholds(y[keep] == pos, scores[keep], kept_groups,
                                         cost_ratio=float(config.get("cost_ratio", 1.0)))
            results.append({"pred_key": key, "thresholds": thresholds})
        return results

    @staticmethod
    def _groups(indexed_inputs: Sequence[JsonDict], dataset: Any, config: JsonDict
                ) -> list[Any] | None:
        group_field, slices = config.get("group_field"), config.get("slices")
        if group_field and slices:
            raise ValueError("Give either config 'group_field' or 'slices', not both.")
        if group_field:
            if group_field not in dataset.spec():
                raise KeyError(f"config 'group_field'={group_field!r} is not a dataset field; "
                               f"fields: {sorted(dataset.spec())}.")
            return [ie["data"].get(group_field) for ie in indexed_inputs]
        if slices:
            positions = resolve_slices([ie["id"] for ie in indexed_inputs], slices)
            groups: list[Any] = [None] * len(indexed_inputs)
            for name, members in positions.items():
                for i in members:
                    if groups[i] is not None:
                        raise ValueError(f"Example {indexed_inputs[i]['id']!r} is in slices "
                                         f"{groups[i]!r} and {name!r}; groups must not overlap.")
                    groups[i] = name
            return groups
        return None
