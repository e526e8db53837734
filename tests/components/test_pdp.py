"""Partial dependence on tiny fake models with a known dependence on one feature."""

from __future__ import annotations

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.api.model import BatchedModel
from promptlit.components.pdp import PdpInterpreter, partial_dependence_grid


class Linear(BatchedModel):
    """score = 3 a - 2 b + 1; P(pos) = clip(0.1 a, 0, 1); counts predict calls."""

    def __init__(self):
        self.calls = 0

    def input_spec(self):
        return {"a": types.Scalar(), "b": types.Scalar(), "n": types.Integer(required=False),
                "c": types.CategoryLabel(vocab=["x", "y"], required=False)}

    def output_spec(self):
        return {"score": types.RegressionScore(), "probas": types.MulticlassPreds(
            vocab=["neg", "pos"], null_idx=0)}

    def predict_minibatch(self, inputs, **kw):
        self.calls += 1
        out = []
        for ex in inputs:
            p = min(max(0.1 * ex["a"], 0.0), 1.0)
            bonus = 5.0 if ex.get("c") == "y" else 0.0
            out.append({"score": 3 * ex["a"] - 2 * ex["b"] + 1 + bonus, "probas": [1 - p, p]})
        return out


EXAMPLES = [{"a": 0.0, "b": 1.0, "n": 1, "c": "x"}, {"a": 4.5, "b": -1.0, "n": 4, "c": "x"},
            {"a": 9.0, "b": 3.0, "n": 2, "c": "y"}]
SPEC = {"a": types.Scalar(min_val=0, max_val=9), "b": types.Scalar(min_val=-1, max_val=3),
        "n": types.Integer(min_val=1, max_val=4), "c": types.CategoryLabel(vocab=["x", "y"])}


def test_linear_dependence_exact():
    ds = Dataset(EXAMPLES, SPEC)
    model = Linear()
    out = PdpInterpreter().run([], model, ds, config={"feature": "a"})
    grid = np.linspace(0, 9, 10)
    assert list(out["score"]) == grid.tolist()
    mean_rest = np.mean([-2 * ex["b"] + 1 + (5.0 if ex["c"] == "y" else 0.0) for ex in EXAMPLES])
    for a in grid:
        assert out["score"][float(a)] == pytest.approx(3 * a + mean_rest)
        assert out["probas"][float(a)] == pytest.approx([1 - 0.1 * a, 0.1 * a])
    # Slope of the partial dependence is the coefficient.
    assert np.polyfit(grid, list(out["score"].values()), 1)[0] == pytest.approx(3.0)
    assert model.calls == 10  # one predict per grid value (3 examples fit one minibatch)


def test_selection_range_integer_and_category():
    ds = Dataset(EXAMPLES, SPEC)
    out = PdpInterpreter().run(EXAMPLES[:1], Linear(), ds,
                               config={"feature": "b", "range": [0, 2], "num_points": 3})
    assert out["score"] == pytest.approx({0.0: 1.0, 1.0: -1.0, 2.0: -3.0})
    ints = PdpInterpreter().run([], Linear(), ds, config={"feature": "n", "num_points": 10})
    assert list(ints["score"]) == [1, 2, 3, 4]
    cats = PdpInterpreter().run([], Linear(), ds, config={"feature": "c"})
    assert cats["score"]["y"] - cats["score"]["x"] == pytest.approx(5.0)


def test_errors():
    ds = Dataset(EXAMPLES, SPEC)
    with pytest.raises(KeyError, match="needs config 'feature'"):
        PdpInterpreter().run([], Linear(), ds, config={})
    with pytest.raises(KeyError, match="not a dataset or model input"):
        PdpInterpreter().run([], Linear(), ds, config={"feature": "zz"})
    with pytest.raises(ValueError, match=r"\[min, max\]"):
        partial_dependence_grid([1.0], types.Scalar(), value_range=[3, 1])
    with pytest.raises(TypeError, match="Scalar or CategoryLabel"):
        partial_dependence_grid(["t"], types.TextSegment())
    assert PdpInterpreter().is_compatible(Linear(), ds)
