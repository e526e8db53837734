"""RegressionInterpreter / regression_results: score, error = score - label, squared error."""

from __future__ import annotations

import pytest

from promptlit.api import dtypes, types
from promptlit.api.dataset import Dataset
from promptlit.api.model import BatchedModel
from promptlit.components.regression_results import RegressionInterpreter, regression_results


class Doubler(BatchedModel):
    def input_spec(self):
        return {"x": types.Scalar()}

    def output_spec(self):
        return {"score": types.RegressionScore(parent="y"), "raw": types.RegressionScore()}

    def predict_minibatch(self, inputs, **kw):
        return [{"score": 2 * ex["x"], "raw": ex["x"]} for ex in inputs]


def test_run_errors_against_parent():
    examples = [{"x": 1.0, "y": 1.5}, {"x": -2.0, "y": -3.0}, {"x": 0.5}]
    ds = Dataset(examples, {"x": types.Scalar(), "y": types.Scalar(required=False)})
    out = RegressionInterpreter().run(examples, Doubler(), ds)
    assert out[0]["score"] == dtypes.RegressionResult(score=2.0, error=0.5, squared_error=0.25)
    assert out[1]["score"] == dtypes.RegressionResult(score=-4.0, error=-1.0, squared_error=1.0)
    assert out[2]["score"] == dtypes.RegressionResult(score=1.0)
    assert out[0]["raw"].error is None  # no parent: no error
    assert RegressionInterpreter().is_compatible(Doubler(), ds)


def test_bad_values():
    with pytest.raises(ValueError, match="prediction 0: expected a number"):
        regression_results(["high"])
    with pytest.raises(ValueError, match="label 1: expected a number"):
        regression_results([1.0, 2.0], [1.0, "x"])
    with pytest.raises(ValueError, match="2 labels but 1"):
        regression_results([1.0], [1.0, 2.0])
