"""Metrics against scikit-learn / scipy on the same arrays; the models × slices table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance
from sklearn import metrics as skm

from promptlit.api import types
from promptlit.api.dataset import Dataset, IndexedDataset
from promptlit.api.model import BatchedModel
from promptlit.components.metrics import (
    MulticlassMetrics,
    MulticlassPairedMetrics,
    MultilabelMetrics,
    RegressionMetrics,
    compute_metrics_table,
    metrics_pivot,
    multiclass_metrics,
    paired_model_metrics,
    predicted_indices,
    regression_metrics,
    threshold_to_margin,
)

RNG = np.random.default_rng(0)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    probs = _softmax(rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y])
    return y, probs


def test_multiclass_matches_sklearn_with_null_idx():
    vocab = ["none", "a", "b"]
    y, probs = _data(60, 3, 1)
    spec = types.MulticlassPreds(vocab=vocab, null_idx=0, parent="label")
    got = multiclass_metrics([vocab[i] for i in y], probs, spec)
    y_pred = probs.argmax(1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    p, r, f, _ = skm.precision_recall_fscore_support(y, y_pred, labels=[1, 2], average="micro")
    assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f))
    p, r, f, _ = skm.precision_recall_fscore_support(y, y_pred, labels=[0, 1, 2])
    for i, name in enumerate(vocab):
        assert got[f"precision/{name}"] == pytest.approx(p[i])
        assert got[f"recall/{name}"] == pytest.approx(r[i])
        assert got[f"f1/{name}"] == pytest.approx(f[i])
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, y_pred, average="macro"))
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"))
    for i, name in enumerate(vocab):
        assert got[f"auc/{name}"] == pytest.approx(skm.roc_auc_score(y == i, probs[:, i]))
    assert "num_missing_labels" not in got


def test_multiclass_without_null_idx_has_no_lit_prf():
    vocab = ["x", "y", "z"]
    y, probs = _data(30, 3, 2)
    got = multiclass_metrics([vocab[i] for i in y], probs, types.MulticlassPreds(vocab=vocab))
    assert "precision" not in got and "f1" not in got
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, probs.argmax(1)))


def test_binary_auc_threshold_and_margin():
    vocab = ["neg", "pos"]
    y, probs = _data(80, 2, 3)
    labels = [vocab[i] for i in y]
    spec = types.MulticlassPreds(vocab=vocab, null_idx=0, parent="label")
    got = multiclass_metrics(labels, probs, spec)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, probs[:, 1]))
    assert got["aucpr"] == pytest.approx(skm.average_precision_score(y, probs[:, 1]))
    # Threshold from config, then from the spec: positive iff score >= t.
    for t in (0.2, 0.7):
        y_pred = (probs[:, 1] >= t).astype(int)
        p, r, f, _ = skm.precision_recall_fscore_support(y, y_pred, average="binary")
        for m in (multiclass_metrics(labels, probs, spec, {"threshold": t}),
                  multiclass_metrics(labels, probs, types.MulticlassPreds(
                      vocab=vocab, null_idx=0, threshold=t))):
            assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
            assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p, r, f))
            assert m["auc"] == got["auc"]  # AUC does not depend on the threshold
    # LIT margin = log(t / (1 - t)) agrees with the threshold (no ties in random scores).
    np.testing.assert_array_equal(
        predicted_indices(probs, spec, margin=threshold_to_margin(0.7)),
        predicted_indices(probs, spec, threshold=0.7))
    # null_idx = 1: the positive class is index 0.
    spec1 = types.MulticlassPreds(vocab=vocab, null_idx=1)
    m = multiclass_metrics(labels, probs, spec1)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y == 0, probs[:, 0]))
    assert m["precision"] == pytest.approx(
        skm.precision_score(y, probs.argmax(1), pos_label=0))


def test_missing_labels_and_edge_cases():
    spec = types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0)
    got = multiclass_metrics(["pos", "other", None, "neg"],
                             [[0.1, 0.9], [0.5, 0.5], [0.5, 0.5], [0.8, 0.2]], spec)
    assert got["num_missing_labels"] == 2 and got["accuracy"] == 1.0
    only_pos = multiclass_metrics(["pos", "pos"], [[0.1, 0.9], [0.6, 0.4]], spec)
    assert "auc" not in only_pos  # undefined with one class: left out, not NaN
    assert multiclass_metrics([], [], spec) == {}
    with pytest.raises(ValueError, match="expected 2 scores per example"):
        multiclass_metrics(["pos"], [[0.1, 0.2, 0.7]], spec)
    with pytest.raises(ValueError, match="null_idx"):
        multiclass_metrics(["a"], [[1.0, 0, 0]], types.MulticlassPreds(vocab=list("abc")),
                           {"threshold": 0.5})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        multiclass_metrics(["pos"], [[0.1, 0.9]], spec, {"threshold": 2})


def test_metrics_component_compatibility_and_labels_only():
    m = MulticlassMetrics()
    spec = types.MulticlassPreds(vocab=["a", "b"], parent="label")
    assert m.is_field_compatible(spec, types.CategoryLabel())
    assert not m.is_field_compatible(spec, types.Scalar())
    assert not m.is_field_compatible(types.RegressionScore(), types.CategoryLabel())
    got = m.compute_labels(["a", "b", "b"], ["a", "a", "b"], spec)
    assert got["accuracy"] == pytest.approx(2 / 3) and "auc" not in got
    with pytest.raises(TypeError, match="MulticlassPreds"):
        m.compute(["a"], [1.0], types.CategoryLabel(), types.RegressionScore())


def test_regression_matches_sklearn_and_scipy():
    y = RNG.normal(size=40)
    p = y + RNG.normal(scale=0.5, size=40)
    got = regression_metrics(list(y), list(p))
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, p))
    assert got["pearsonr"] == pytest.approx(stats.pearsonr(y, p)[0])
    assert got["spearmanr"] == pytest.approx(stats.spearmanr(y, p)[0])
    one = regression_metrics([1.0], [2.0])
    assert one == {"mse": 1.0}  # correlations undefined for one point
    comp = RegressionMetrics()
    assert comp.is_field_compatible(types.RegressionScore(parent="y"), types.Scalar())
    assert not comp.is_field_compatible(types.RegressionScore(parent="y"), types.CategoryLabel())
    with pytest.raises(TypeError, match="Scalar"):
        comp.compute([1.0], [1.0], types.CategoryLabel(), types.RegressionScore())
    with pytest.raises(ValueError, match="one number per example"):
        regression_metrics([1.0, 2.0], [[1.0, 2.0], [3.0, 4.0]])


def test_multilabel_matches_sklearn():
    vocab = ["a", "b", "c", "d"]
    labels = [["a"], ["b", "c"], [], ["a", "d"], ["c"]]
    preds = [[("a", 0.9), ("b", 0.4)], [("b", 0.7), ("c", 0.2)], [("d", 0.6)],
             [("a", 0.8), ("d", 0.51)], [("c", 0.55), ("a", 0.9)]]
    got = MultilabelMetrics().compute(labels, preds, types.SparseMultilabel(),
                                      types.SparseMultilabelPreds(vocab=vocab))
    y = np.array([[int(c in lab) for c in vocab] for lab in labels])
    y_hat = np.array([[int(any(lab == c and s > 0.5 for lab, s in p)) for c in vocab]
                      for p in preds])
    assert got["exactmatch"] == pytest.approx(skm.accuracy_score(y, y_hat)) == 0.4
    for name, fn in [("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)]:
        assert got[name] == pytest.approx(fn(y, y_hat, average="samples", zero_division=0))


def test_paired_counterfactual_metrics():
    spec = types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0)
    preds = [[0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.6, 0.4]]
    ids = ["p1", "c1", "p2", "c2"]
    metas = [{}, {"parentId": "p1"}, {}, {"parentId": "p2"}]
    got = MulticlassPairedMetrics().compute_with_metadata(
        [None] * 4, preds, types.CategoryLabel(), spec, ids, metas)
    jsd = np.mean([distance.jensenshannon(preds[0], preds[1]) ** 2,
                   distance.jensenshannon(preds[2], preds[3]) ** 2])
    assert got == pytest.approx({"num_pairs": 2, "swap_rate": 0.5, "mean_jsd": jsd})
    assert MulticlassPairedMetrics().compute_with_metadata(
        [None], preds[:1], types.CategoryLabel(), spec, ids[:1], metas[:1]) == {}


def test_paired_model_metrics():
    spec = types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0)
    a = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    b = np.array([[0.7, 0.3], [0.6, 0.4], [0.55, 0.45]])
    got = paired_model_metrics(a, b, spec)
    assert got["swap_rate"] == pytest.approx(1 / 3)
    assert got["mean_abs_diff"] == pytest.approx(np.abs(a - b).mean())
    assert paired_model_metrics(a, b, spec, {"threshold": 0.42})["swap_rate"] == pytest.approx(
        2 / 3)
    reg = paired_model_metrics([1.0, 2.0, 3.0], [1.5, 2.0, 1.0], types.RegressionScore())
    assert reg == pytest.approx({"num_examples": 3, "mean_abs_diff": 2.5 / 3, "max_abs_diff": 2})
    with pytest.raises(ValueError, match="same examples"):
        paired_model_metrics(a, b[:2], spec)
    with pytest.raises(TypeError, match="supports"):
        paired_model_metrics(["x"], ["y"], types.GeneratedText())


class FakeClassifier(BatchedModel):
    """P(pos) = sigmoid(scale * x); also a regression head 2x."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.calls = 0

    def input_spec(self):
        return {"x": types.Scalar()}

    def output_spec(self):
        return {"probas": types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0, parent="label"),
                "score": types.RegressionScore(parent="y")}

    def predict_minibatch(self, inputs, **kw):
        self.calls += len(inputs)
        out = []
        for ex in inputs:
            p = 1 / (1 + np.exp(-self.scale * ex["x"]))
            out.append({"probas": [1 - p, p], "score": 2 * ex["x"]})
        return out


def test_metrics_table_models_by_slices():
    xs = np.linspace(-2, 2, 21)
    examples = [{"x": float(x), "label": "pos" if x > 0.3 else "neg", "y": float(x)} for x in xs]
    spec = {"x": types.Scalar(min_val=-2, max_val=2), "label": types.CategoryLabel(
        vocab=["neg", "pos"]), "y": types.Scalar(min_val=-2, max_val=2)}
    ds = IndexedDataset(examples, spec)
    models = {"sharp": FakeClassifier(5.0), "flat": FakeClassifier(-1.0)}
    left = [i for i, x in enumerate(xs) if x < 0]
    slices = {"left": left, "right_ids": [ds.ids[i] for i in range(len(xs)) if xs[i] >= 0]}
    table = compute_metrics_table(models, ds, slices=slices)
    assert set(table.columns) >= {"model", "slice", "metric", "value", "num_examples"}
    assert models["sharp"].calls == len(xs)  # one predict per model, whatever the slices

    acc = metrics_pivot(table, "accuracy")
    assert list(acc.index) == ["sharp", "flat"] and list(acc.columns) == ["all", "left",
                                                                          "right_ids"]
    for name, model in models.items():
        for slice_name, pos in [("all", range(len(xs))), ("left", left),
                                ("right_ids", [i for i in range(len(xs)) if xs[i] >= 0])]:
            y_true = [int(xs[i] > 0.3) for i in pos]
            y_pred = [int(model.scale * xs[i] > 0) for i in pos]
            assert acc.loc[name, slice_name] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    mse = metrics_pivot(table, "mse")
    assert mse.loc["sharp", "all"] == pytest.approx(np.mean((2 * xs - xs) ** 2))
    with pytest.raises(KeyError, match="No 'bleu'"):
        metrics_pivot(table, "bleu")
    with pytest.raises(KeyError, match="not in the dataset"):
        compute_metrics_table(models, ds, slices={"bad": ["nope"]})
    # Precomputed outputs, and a plain Dataset.
    outs = {"sharp": list(FakeClassifier(5.0).predict(examples))}
    t2 = compute_metrics_table({"sharp": FakeClassifier(5.0)}, Dataset(examples, spec),
                               model_outputs=outs, config={"threshold": 0.9})
    y_pred = [int(1 / (1 + np.exp(-5 * x)) >= 0.9) for x in xs]
    y_true = [int(x > 0.3) for x in xs]
    assert metrics_pivot(t2, "accuracy").loc["sharp", "all"] == pytest.approx(
        skm.accuracy_score(y_true, y_pred))
