"""ROC / PR curves against sklearn, per class, and the interpreter's config handling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.api.model import BatchedModel
from promptlit.components.curves import CurvesInterpreter, binary_curves, class_curves

VOCAB = ["a", "b", "c"]


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def test_class_curves_match_sklearn():
    y, probs = _data()
    got = class_curves([VOCAB[i] for i in y], probs, types.MulticlassPreds(vocab=VOCAB))
    assert list(got) == VOCAB
    for i, name in enumerate(VOCAB):
        fpr, tpr, thr = skm.roc_curve(y == i, probs[:, i])
        np.testing.assert_allclose(np.array(got[name]["roc_data"]), np.c_[fpr, tpr])
        np.testing.assert_allclose(got[name]["roc_thresholds"], thr)
        p, r, _ = skm.precision_recall_curve(y == i, probs[:, i])
        np.testing.assert_allclose(np.array(got[name]["pr_data"]), np.c_[p, r])
        assert got[name]["roc_auc"] == pytest.approx(skm.roc_auc_score(y == i, probs[:, i]))
        assert got[name]["average_precision"] == pytest.approx(
            skm.average_precision_score(y == i, probs[:, i]))
        # Area under the points equals the AUC.
        pts = np.array(got[name]["roc_data"])
        assert np.trapezoid(pts[:, 1], pts[:, 0]) == pytest.approx(got[name]["roc_auc"])


def test_single_class_and_errors():
    c = binary_curves([True, True], [0.2, 0.9])
    assert c["roc_auc"] is None and all(np.isfinite(v) for pt in c["roc_data"] for v in pt)
    with pytest.raises(ValueError, match="one of each"):
        binary_curves([True], [0.1, 0.2])


class Fake(BatchedModel):
    def __init__(self, probs):
        self.probs = probs

    def input_spec(self):
        return {"i": types.Scalar()}

    def output_spec(self):
        return {"probas": types.MulticlassPreds(vocab=VOCAB, parent="label")}

    def predict_minibatch(self, inputs, **kw):
        return [{"probas": self.probs[int(ex["i"])]} for ex in inputs]


def test_interpreter():
    y, probs = _data(30, 1)
    examples = [{"i": i, "label": VOCAB[c]} for i, c in enumerate(y)]
    ds = Dataset(examples, {"i": types.Scalar(), "label": types.CategoryLabel(vocab=VOCAB)})
    interp = CurvesInterpreter()
    assert interp.is_compatible(Fake(probs), ds)
    out = interp.run(examples, Fake(probs), ds, config={"Label": "b"})
    fpr, tpr, _ = skm.roc_curve(y == 1, probs[:, 1])
    np.testing.assert_allclose(np.array(out["roc_data"]), np.c_[fpr, tpr])
    assert out["label"] == "b" and set(out["per_class"]) == set(VOCAB)
    assert interp.run(examples, Fake(probs), ds)["label"] == "a"  # LIT default: class 0
    with pytest.raises(ValueError, match="not a class"):
        interp.run(examples, Fake(probs), ds, config={"Label": "zz"})
    with pytest.raises(ValueError, match="Prediction field"):
        interp.run(examples, Fake(probs), ds, config={"Prediction field": "nope"})
