"""Interpreter / Metrics / Generator / ComponentGroup behave like LIT's base classes."""

import numpy as np
import pytest

from promptlit.api import components, types
from promptlit.lib import utils


class FakeDataset:
    def __init__(self, examples, spec):
        self.examples = examples
        self._spec = spec

    def spec(self):
        return self._spec


class FakeClassifier:
    """Predicts P(pos) = len(text) / 10, with a regression head that predicts len(text)."""

    def __init__(self):
        self.calls = 0

    def input_spec(self):
        return {"text": types.TextSegment()}

    def output_spec(self):
        return {
            "probas": types.MulticlassPreds(vocab=["neg", "pos"], parent="label", null_idx=0),
            "length": types.RegressionScore(parent="size"),
            "no_parent": types.MulticlassPreds(vocab=["neg", "pos"]),
        }

    def predict(self, inputs):
        self.calls += 1
        out = []
        for ex in inputs:
            p = min(len(ex["text"]) / 10, 1.0)
            out.append(
                {
                    "probas": np.array([1 - p, p]),
                    "length": float(len(ex["text"])),
                    "no_parent": np.array([0.5, 0.5]),
                }
            )
        return out


class Accuracy(components.ClassificationMetrics):
    """Fraction of correctly classified examples."""

    def meta_spec(self):
        return {"accuracy": types.MetricResult(best_value="highest")}

    def compute_labels(self, labels, predicted, pred_spec):
        return {
            "accuracy": float(np.mean([a == b for a, b in zip(labels, predicted, strict=True)]))
        }


class MeanAbsError(components.SimpleMetrics):
    """Mean absolute error of regression scores."""

    def is_field_compatible(self, pred_spec, parent_spec):
        return isinstance(pred_spec, types.RegressionScore) and isinstance(
            parent_spec, types.Scalar
        )

    def compute(self, labels, preds, label_spec, pred_spec, config=None):
        return {"mae": float(np.mean(np.abs(np.array(labels) - np.array(preds))))}


SPEC = {
    "text": types.TextSegment(),
    "label": types.CategoryLabel(vocab=["neg", "pos"], required=False),
    "size": types.Scalar(required=False),
}
EXAMPLES = [
    {"text": "ab", "label": "neg", "size": 2.0},  # p=.2 -> neg (correct)
    {"text": "abcdefgh", "label": "pos", "size": 10.0},  # p=.8 -> pos (correct), |8-10| = 2
    {"text": "abcdef", "label": "neg", "size": 6.0},  # p=.6 -> pos (wrong)
    {"text": "abcd"},  # unlabelled: skipped
]


def test_metrics_pair_fields_by_parent_and_skip_unlabelled():
    model, data = FakeClassifier(), FakeDataset(EXAMPLES, SPEC)
    acc = Accuracy()
    assert acc.field_pairs(model, data) == {"probas": "label"}
    assert acc.is_compatible(model, data)
    result = acc.run(EXAMPLES, model, data)
    assert result == [
        {"pred_key": "probas", "label_key": "label", "metrics": {"accuracy": pytest.approx(2 / 3)}}
    ]
    mae = MeanAbsError().run(EXAMPLES, model, data)
    assert mae == [
        {"pred_key": "length", "label_key": "size", "metrics": {"mae": pytest.approx(2 / 3)}}
    ]


def test_metrics_use_given_model_outputs_and_config_threshold():
    model, data = FakeClassifier(), FakeDataset(EXAMPLES, SPEC)
    outputs = model.predict(EXAMPLES)
    calls = model.calls
    result = Accuracy().run(EXAMPLES, model, data, model_outputs=outputs, config={"threshold": 0.7})
    assert model.calls == calls  # no extra predict
    # threshold .7: "abcdef" (p=.6) becomes neg -> all three correct
    assert result[0]["metrics"]["accuracy"] == pytest.approx(1.0)


def test_metrics_incompatible_without_label_field():
    model = FakeClassifier()
    data = FakeDataset([{"text": "a"}], {"text": types.TextSegment()})
    assert not Accuracy().is_compatible(model, data)
    assert Accuracy().run([{"text": "a"}], model, data) == []


def test_predicted_labels_argmax_and_threshold():
    spec = types.MulticlassPreds(vocab=["neg", "pos"], null_idx=0)
    preds = [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]
    assert components.ClassificationMetrics.predicted_labels(preds, spec) == ["neg", "pos", "pos"]
    assert components.ClassificationMetrics.predicted_labels(preds, spec, 0.7) == [
        "neg",
        "neg",
        "pos",
    ]
    three = types.MulticlassPreds(vocab=["a", "b", "c"])
    assert components.ClassificationMetrics.predicted_labels([[0.1, 0.2, 0.7]], three) == ["c"]


class Reverser(components.Generator):
    """Reverses the text, and also upper-cases it."""

    def config_spec(self):
        return {"upper": types.Boolean(default=True)}

    def generate(self, example, model, dataset, config=None):
        out = [{**example, "text": example["text"][::-1]}]
        if (config or {}).get("upper", True):
            out.append({**example, "text": example["text"].upper()})
        return out


def test_generator_generate_all_and_run():
    gen = Reverser()
    inputs = [{"text": "abc"}, {"text": "xy"}]
    expected = [[{"text": "cba"}, {"text": "ABC"}], [{"text": "yx"}, {"text": "XY"}]]
    assert gen.generate_all(inputs, None, None) == expected
    assert gen.run(inputs, None, None) == expected
    assert gen.run(inputs, None, None, config={"upper": False}) == [
        [{"text": "cba"}],
        [{"text": "yx"}],
    ]
    assert gen.is_compatible(None, None)
    assert gen.name == "Reverser"
    assert gen.description() == "Reverses the text, and also upper-cases it."
    assert gen.config_spec()["upper"].default is True


class Counter(components.Interpreter):
    """Counts characters."""

    def is_compatible(self, model, dataset):
        return utils.spec_contains(dataset.spec(), types.TextSegment)

    def meta_spec(self):
        return {"chars": types.Integer()}

    def run(self, inputs, model, dataset, model_outputs=None, config=None):
        return [{"chars": len(ex["text"])} for ex in inputs]


def test_interpreter_defaults_and_run_with_metadata():
    c = Counter()
    indexed = [{"id": "a", "data": {"text": "abc"}, "meta": {}}]
    assert c.run_with_metadata(indexed, None, None) == [{"chars": 3}]
    c.name = "chars"
    assert c.name == "chars"
    base = components.Interpreter()
    assert base.config_spec() == {} and base.meta_spec() == {}
    with pytest.raises(NotImplementedError, match="must implement run"):
        base.run([], None, None)


def test_component_group_runs_compatible_members_once():
    model, data = FakeClassifier(), FakeDataset(EXAMPLES, SPEC)
    group = components.ComponentGroup(
        {"acc": Accuracy(), "mae": MeanAbsError(), "count": Counter()}
    )
    assert group.is_compatible(model, data)
    assert group.meta_spec() == {
        "acc: accuracy": types.MetricResult(best_value="highest"),
        "count: chars": types.Integer(),
    }
    result = group.run(EXAMPLES[:3], model, data)
    assert model.calls == 1  # predictions shared by all members
    assert result["acc"][0]["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert result["mae"][0]["metrics"]["mae"] == pytest.approx(2 / 3)
    assert result["count"] == [{"chars": 2}, {"chars": 8}, {"chars": 6}]
    no_text = FakeDataset([], {"size": types.Scalar()})
    assert "count" not in group.run_with_metadata([], model, no_text, model_outputs=[])
