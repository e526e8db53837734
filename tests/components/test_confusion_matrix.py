"""Confusion matrix counts vs sklearn, cell ids for UI selection, the interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from promptlit.api import types
from promptlit.api.dataset import IndexedDataset
from promptlit.api.model import BatchedModel
from promptlit.components.confusion_matrix import (
    MISSING,
    ConfusionMatrixInterpreter,
    confusion_matrix,
)


def test_counts_match_sklearn_and_cells_hold_ids():
    rng = np.random.default_rng(0)
    vocab = ["a", "b", "c"]
    y = rng.integers(0, 3, 50)
    p = rng.integers(0, 3, 50)
    ids = [f"ex{i}" for i in range(50)]
    cm = confusion_matrix([vocab[i] for i in y], [vocab[i] for i in p], ids,
                          row_labels=vocab, col_labels=vocab)
    np.testing.assert_array_equal(cm.counts, skm.confusion_matrix(y, p, labels=[0, 1, 2]))
    for i, r in enumerate(vocab):
        for j, c in enumerate(vocab):
            assert cm.cell_ids(r, c) == [ids[k] for k in range(50) if y[k] == i and p[k] == j]
    assert cm.to_frame().loc["b", "c"] == cm.counts[1, 2]
    assert cm.to_json()["counts"] == cm.counts.tolist()
    with pytest.raises(KeyError, match="not a row"):
        cm.cell_ids("z", "a")


def test_unlisted_and_missing_values_are_kept():
    cm = confusion_matrix(["a", None, "zz"], ["a", "b", "b"], row_labels=["a", "b"])
    assert cm.row_labels == ["a", "b", "zz", MISSING]
    assert cm.cell_ids(MISSING, "b") == ["1"] and cm.counts.sum() == 3
    with pytest.raises(ValueError, match="one per example"):
        confusion_matrix(["a"], ["a", "b"])


class Fake(BatchedModel):
    def input_spec(self):
        return {"p": types.Scalar()}

    def output_spec(self):
        return {"probas": types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0, parent="label")}

    def predict_minibatch(self, inputs, **kw):
        return [{"probas": [1 - ex["p"], ex["p"]]} for ex in inputs]


def test_interpreter_uses_ids_threshold_and_row_field():
    examples = [{"p": 0.9, "label": "pos", "g": "x"}, {"p": 0.4, "label": "pos", "g": "y"},
                {"p": 0.1, "label": "neg", "g": "y"}, {"p": 0.7, "label": "neg", "g": "x"}]
    ds = IndexedDataset(examples, {"p": types.Scalar(),
                                   "label": types.CategoryLabel(vocab=["neg", "pos"]),
                                   "g": types.CategoryLabel(vocab=["x", "y"])})
    interp = ConfusionMatrixInterpreter()
    assert interp.is_compatible(Fake(), ds)
    cm = interp.run_with_metadata(ds.indexed_examples, Fake(), ds)["probas"]
    assert cm.counts.tolist() == [[1, 1], [1, 1]]
    assert cm.cell_ids("pos", "neg") == [ds.ids[1]]
    cm = interp.run_with_metadata(ds.indexed_examples, Fake(), ds, config={"threshold": 0.35})
    assert cm["probas"].counts.tolist() == [[1, 1], [0, 2]]
    by_group = interp.run(examples, Fake(), ds, config={"row_field": "g"})["probas"]
    assert by_group.row_labels == ["x", "y"] and by_group.counts.tolist() == [[0, 2], [2, 0]]
    with pytest.raises(KeyError, match="not a dataset field"):
        interp.run(examples, Fake(), ds, config={"row_field": "nope"})
