"""ClassificationInterpreter / classification_results: decision rules, correctness, config."""

from __future__ import annotations

import numpy as np
import pytest

from promptlit.api import dtypes, types
from promptlit.api.dataset import Dataset
from promptlit.api.model import BatchedModel
from promptlit.components.classification_results import (
    ClassificationInterpreter,
    classification_results,
)

VOCAB = ["neg", "pos"]


class FakeBinary(BatchedModel):
    """P(pos) = the example's "p"; plus a 3-class head without null_idx."""

    def input_spec(self):
        return {"p": types.Scalar()}

    def output_spec(self):
        return {"probas": types.MulticlassPreds(vocab=VOCAB, null_idx=0, parent="label"),
                "three": types.MulticlassPreds(vocab=["a", "b", "c"]),
                "score": types.RegressionScore(parent="y")}

    def predict_minibatch(self, inputs, **kw):
        return [{"probas": [1 - ex["p"], ex["p"]], "three": [0.2, 0.5, 0.3], "score": ex["p"]}
                for ex in inputs]


EXAMPLES = [{"p": 0.9, "label": "pos", "g": "x"}, {"p": 0.35, "label": "pos", "g": "y"},
            {"p": 0.2, "label": "neg", "g": "x"}, {"p": 0.6, "label": "neg", "g": "y"},
            {"p": 0.45}]
DATA = Dataset(EXAMPLES, {"p": types.Scalar(), "label": types.CategoryLabel(vocab=VOCAB,
                                                                            required=False),
                          "g": types.CategoryLabel(vocab=["x", "y"], required=False)})


def test_argmax_and_correctness():
    out = ClassificationInterpreter().run(EXAMPLES, FakeBinary(), DATA)
    assert [o["probas"].predicted_class for o in out] == ["pos", "neg", "neg", "pos", "neg"]
    assert [o["probas"].correct for o in out] == [True, False, True, False, None]
    np.testing.assert_allclose(out[1]["probas"].scores, [0.65, 0.35])
    assert isinstance(out[0]["probas"], dtypes.ClassificationResult)
    assert all(o["three"].predicted_class == "b" and o["three"].correct is None for o in out)
    assert ClassificationInterpreter().is_compatible(FakeBinary(), DATA)


def test_threshold_flat_per_field_and_per_group():
    interp, model = ClassificationInterpreter(), FakeBinary()
    for config in ({"threshold": 0.3}, {"probas": {"threshold": 0.3}}):
        out = interp.run(EXAMPLES, model, DATA, config=config)
        assert [o["probas"].predicted_class for o in out] == ["pos", "pos", "neg", "pos", "pos"]
    # Group thresholds (as the Thresholder returns): x -> 0.95, y -> 0.3; others -> 0.5.
    config = {"group_field": "g", "group_thresholds": {"x": 0.95, "y": 0.3}, "threshold": 0.5}
    out = interp.run(EXAMPLES, model, DATA, config=config)
    assert [o["probas"].predicted_class for o in out] == ["neg", "pos", "neg", "pos", "neg"]
    with pytest.raises(ValueError, match="group_thresholds"):
        interp.run(EXAMPLES, model, DATA, config={"group_field": "g"})


def test_spec_threshold_margin_and_errors():
    spec = types.MulticlassPreds(vocab=VOCAB, null_idx=0, threshold=0.8)
    scores = [[0.25, 0.75], [0.1, 0.9]]
    assert [r.predicted_class for r in classification_results(scores, spec)] == ["neg", "pos"]
    assert classification_results([[0.5, 0.5]], spec, threshold=0.5)[0].predicted_class == "pos"
    plain = types.MulticlassPreds(vocab=VOCAB, null_idx=0)
    # margin log(0.8/0.2): positive only when P(pos) > 0.8.
    got = classification_results(scores, plain, margin=float(np.log(4)))
    assert [r.predicted_class for r in got] == ["neg", "pos"]
    with pytest.raises(ValueError, match="null_idx"):
        classification_results([[0.2, 0.5, 0.3]], types.MulticlassPreds(vocab=list("abc")),
                               threshold=0.5)
    with pytest.raises(ValueError, match="expected 2 scores"):
        classification_results([[1.0]], plain)
    with pytest.raises(ValueError, match="2 labels but 1"):
        classification_results([[0.5, 0.5]], plain, labels=["neg", "pos"])
