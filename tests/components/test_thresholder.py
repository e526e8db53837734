"""Thresholder: single / individual thresholds and fairness constraints, checked by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.dataset import IndexedDataset
from promptlit.api.model import BatchedModel
from promptlit.components.thresholder import (
    THRESHOLDS,
    Thresholder,
    binary_counts,
    find_thresholds,
)


def _brute_cost(truth, scores, t, cost_ratio):
    fp = sum(1 for y, s in zip(truth, scores, strict=True) if s >= t and not y)
    fn = sum(1 for y, s in zip(truth, scores, strict=True) if s < t and y)
    return fp * cost_ratio + fn


def _brute_best(truth, scores, cost_ratio):
    costs = [_brute_cost(truth, scores, t, cost_ratio) for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmin(costs))]), costs  # argmin: first (lowest) on ties


def _data(seed=0, n=120):
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.4
    groups = np.where(rng.random(n) < 0.5, "a", "b")
    shift = np.where(groups == "a", 0.15, -0.1)
    scores = np.clip(0.35 + 0.3 * truth + shift + rng.normal(0, 0.15, n), 0, 1)
    return truth, scores, list(groups)


def test_counts_match_loops():
    truth, scores, _ = _data()
    c = binary_counts(truth, scores)
    for k in (0, 37, 50, 100):
        t = THRESHOLDS[k]
        assert c["TP"][k] == sum(1 for y, s in zip(truth, scores, strict=True) if y and s >= t)
        assert c["FP"][k] + c["TN"][k] == (~truth).sum()


@pytest.mark.parametrize("cost_ratio", [1.0, 0.25, 4.0])
def test_single_and_individual_thresholds_are_brute_force_optima(cost_ratio):
    truth, scores, groups = _data()
    got = find_thresholds(truth, scores, groups, cost_ratio=cost_ratio)
    single, _ = _brute_best(truth, scores, cost_ratio)
    for g in ("a", "b"):
        assert got[g]["Single"] == single
        mask = np.array(groups) == g
        assert got[g]["Individual"] == _brute_best(truth[mask], scores[mask], cost_ratio)[0]
    # Costlier false positives push the threshold up.
    assert find_thresholds(truth, scores, cost_ratio=4.0)[""]["Single"] >= find_thresholds(
        truth, scores, cost_ratio=0.25)[""]["Single"]


def test_fairness_thresholds_by_brute_force():
    truth, scores, groups = _data(1)
    g = np.array(groups)
    got = find_thresholds(truth, scores, groups)
    ta, sa = truth[g == "a"], scores[g == "a"]
    tb, sb = truth[g == "b"], scores[g == "b"]

    def rate_pos(t_, s_, t):
        return np.mean(s_ >= t)

    def tpr(t_, s_, t):
        return np.mean(s_[t_] >= t)

    for measure, fn in [("Demographic parity", rate_pos), ("Equal opportunity", tpr)]:
        # Brute force: for each threshold of group a, b takes the closest-measure threshold
        # (first on ties); the pair with the lowest total cost wins (first on ties).
        best = None
        for t_a in THRESHOLDS:
            target = fn(ta, sa, t_a)
            dists = [abs(fn(tb, sb, t) - target) for t in THRESHOLDS]
            t_b = THRESHOLDS[int(np.argmin(dists))]
            total = _brute_cost(ta, sa, t_a, 1.0) + _brute_cost(tb, sb, t_b, 1.0)
            if best is None or total < best[0]:
                best = (total, float(t_a), float(t_b))
        assert (got["a"][measure], got["b"][measure]) == (best[1], best[2]), measure
        # The constraint holds approximately.
        assert abs(fn(ta, sa, best[1]) - fn(tb, sb, best[2])) < 0.05
    # Group a scores higher, so parity needs a higher threshold for it.
    assert got["a"]["Demographic parity"] > got["b"]["Demographic parity"]


def test_no_groups_one_group_and_errors():
    truth, scores, _ = _data()
    assert set(find_thresholds(truth, scores)) == {""}
    assert set(find_thresholds(truth, scores, ["x"] * len(truth))["x"]) == {"Single"}
    with pytest.raises(ValueError, match="one label and one"):
        find_thresholds(truth, scores[:-1])
    with pytest.raises(ValueError, match="cost_ratio"):
        find_thresholds(truth, scores, cost_ratio=-1)
    # A group with no positive example: equal opportunity falls back to its individual threshold.
    got = find_thresholds(np.array([1, 0, 0, 0], bool), np.array([0.9, 0.2, 0.3, 0.6]),
                          ["a", "a", "b", "b"])
    assert got["b"]["Equal opportunity"] == got["b"]["Individual"] == 0.61


class Fake(BatchedModel):
    def input_spec(self):
        return {"s": types.Scalar()}

    def output_spec(self):
        return {"probas": types.MulticlassPreds(vocab=["no", "yes"], null_idx=0, parent="label"),
                "multi": types.MulticlassPreds(vocab=["a", "b", "c"], parent="label")}

    def predict_minibatch(self, inputs, **kw):
        return [{"probas": [1 - ex["s"], ex["s"]], "multi": [0.3, 0.3, 0.4]} for ex in inputs]


def test_interpreter_groups_by_field_and_slices():
    truth, scores, groups = _data(2, 60)
    examples = [{"s": float(s), "label": "yes" if y else "no", "g": g}
                for y, s, g in zip(truth, scores, groups, strict=True)]
    examples.append({"s": 0.5, "label": None, "g": "a"})  # unlabelled: ignored
    ds = IndexedDataset(examples, {"s": types.Scalar(), "label": types.CategoryLabel(
        vocab=["no", "yes"], required=False), "g": types.CategoryLabel(vocab=["a", "b"])})
    th = Thresholder()
    assert th.is_compatible(Fake(), ds)
    out = th.run(examples, Fake(), ds, config={"group_field": "g", "cost_ratio": 2})
    assert [r["pred_key"] for r in out] == ["probas"]  # 3-class field skipped
    assert out[0]["thresholds"] == find_thresholds(truth, scores, groups, cost_ratio=2)
    slices = {"first": list(range(30)), "rest": [ds.ids[i] for i in range(30, 60)]}
    out = th.run_with_metadata(ds.indexed_examples, Fake(), ds, config={"slices": slices})
    sl = ["first"] * 30 + ["rest"] * 30
    assert out[0]["thresholds"] == find_thresholds(truth, scores, sl)
    with pytest.raises(KeyError, match="not a dataset field"):
        th.run(examples, Fake(), ds, config={"group_field": "zz"})
