"""SklearnClassifier / SklearnRegressor: specs, exact predictions, input errors, presets, demos."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import promptlit as pl
from promptlit import demos
from promptlit.api import types
from promptlit.models import presets
from promptlit.models.sklearn_models import SklearnClassifier, SklearnRegressor


@pytest.fixture(scope="module")
def iris_like():
    """Three classes, integer-coded, on real breast-cancer features (first 4 columns)."""
    names, x, y = demos.breast_cancer_frame()
    x = x[:, :4]
    y3 = np.digitize(x[:, 0], np.quantile(x[:, 0], [1 / 3, 2 / 3]))  # 0, 1, 2 by radius
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y3)
    return names[:4], x, y3, est


@pytest.fixture(scope="module")
def classifier(iris_like):
    names, x, _, est = iris_like
    return SklearnClassifier(est, names, "size", ["small", "medium", "large"],
                             feature_ranges=demos.feature_ranges(names, x))


def _examples(names, x):
    return [{n: float(v) for n, v in zip(names, row, strict=True)} for row in x]


def test_classifier_specs(classifier, iris_like):
    names = iris_like[0]
    spec = classifier.input_spec()
    assert list(spec) == [*names, "size"]
    assert all(type(spec[n]) is types.Scalar for n in names)
    assert spec[names[0]].min_val == pytest.approx(iris_like[1][:, 0].min())
    assert spec["size"] == types.CategoryLabel(vocab=["small", "medium", "large"], required=False)
    assert classifier.output_spec() == {
        "probas": types.MulticlassPreds(vocab=["small", "medium", "large"], parent="size")}


def test_classifier_predictions_equal_predict_proba(classifier, iris_like):
    names, x, _, est = iris_like
    out = list(classifier.predict(_examples(names, x)))
    assert len(out) == len(x)
    got = np.stack([o["probas"] for o in out])
    np.testing.assert_allclose(got, est.predict_proba(x), rtol=1e-6, atol=1e-7)
    assert got.dtype == np.float32 and got.shape == (len(x), 3)


def test_regressor_specs_and_predictions():
    data = load_diabetes(scaled=False)
    est = LinearRegression().fit(data.data, data.target)
    model = SklearnRegressor(est, data.feature_names, "progression")
    spec = model.input_spec()
    assert list(spec) == [*data.feature_names, "progression"]
    assert spec["progression"] == types.Scalar(required=False)
    assert model.output_spec() == {"score": types.RegressionScore(parent="progression")}
    scores = [o["score"] for o in model.predict(_examples(data.feature_names, data.data))]
    np.testing.assert_allclose(scores, est.predict(data.data), rtol=1e-12)
    assert all(isinstance(s, float) for s in scores)


def test_dataframe_fitted_estimator_gets_named_columns():
    names, x, y = demos.breast_cancer_frame()
    frame = pd.DataFrame(x[:, :3], columns=names[:3])
    est = LogisticRegression(max_iter=2000).fit(frame, y)
    clf = SklearnClassifier(est, names[:3], "label", demos.BREAST_CANCER_LABELS)
    got = np.stack([o["probas"] for o in clf.predict(_examples(names[:3], x[:5, :3]))])
    np.testing.assert_allclose(got, est.predict_proba(frame.iloc[:5]), rtol=1e-6)
    with pytest.raises(ValueError, match="differ from the names the estimator was fitted with"):
        SklearnClassifier(est, [names[1], names[0], names[2]], "label")


def test_input_errors_name_field_and_example(classifier, iris_like):
    names = iris_like[0]
    good = _examples(names, iris_like[1][:2])
    missing = [good[0], {k: v for k, v in good[1].items() if k != names[2]}]
    with pytest.raises(ValueError, match=rf"example 1 has no value for feature '{names[2]}'"):
        list(classifier.predict(missing))
    with pytest.raises(TypeError, match=rf"example 0, feature '{names[0]}': expected a number, "
                                        r"got str"):
        list(classifier.predict([{**good[0], names[0]: "12.5"}]))
    with pytest.raises(ValueError, match="is not a finite number"):
        list(classifier.predict([{**good[0], names[1]: float("nan")}]))
    with pytest.raises(ValueError, match=r"example 0, field 'size': 'huge' is not one of"):
        list(classifier.predict([{**good[0], "size": "huge"}]))
    assert list(classifier.predict([])) == []


def test_constructor_errors(iris_like):
    names, _, _, est = iris_like
    with pytest.raises(ValueError, match="2 labels .* given for 3 classes"):
        SklearnClassifier(est, names, "size", ["a", "b"])
    with pytest.raises(ValueError, match="not fitted"):
        SklearnClassifier(LogisticRegression(), names, "size")
    with pytest.raises(ValueError, match="fitted on 4 features but 3"):
        SklearnClassifier(est, names[:3], "size")
    with pytest.raises(ValueError, match="also a feature name"):
        SklearnClassifier(est, names, names[0])
    with pytest.raises(TypeError, match="no predict_proba"):
        SklearnClassifier(LinearRegression().fit([[0.0]], [0.0]), ["x"], "y")


def test_presets_round_trip(classifier, iris_like, tmp_path):
    names, x, _, _ = iris_like
    classifier.metadata = {"note": "test"}
    classifier.save_to_preset(tmp_path / "clf")
    marker = json.loads((tmp_path / "clf" / "promptlit_model.json").read_text())
    assert marker["class"] == "SklearnClassifier" and marker["metadata"] == {"note": "test"}
    loaded = presets.load_model(str(tmp_path / "clf"), name="mine")
    assert isinstance(loaded, SklearnClassifier) and loaded.name == "mine"
    assert loaded.input_spec() == classifier.input_spec()
    exs = _examples(names, x[:20])
    for a, b in zip(classifier.predict(exs), loaded.predict(exs), strict=True):
        np.testing.assert_array_equal(a["probas"], b["probas"])


def _test_rows(dataset):
    return [ex for ex in dataset.examples if ex["split"] == "test"]


def test_shipped_breast_cancer_demo_reaches_its_recorded_accuracy():
    model = presets.load_model("presets/breast_cancer_clf")
    data = pl.data.load("breast_cancer")
    assert isinstance(model, SklearnClassifier) and model.is_compatible_with_dataset(data)
    assert data.spec()["label"].vocab == model.labels == ["malignant", "benign"]
    # benign is the null class: malignant gets a threshold (presets/build_demo_models.py).
    assert model.output_spec()["probas"].null_idx == 1
    rows = _test_rows(data)
    assert len(rows) == model.metadata["n_test"] == 143
    pred = [model.labels[int(np.argmax(o["probas"]))] for o in model.predict(rows)]
    acc = np.mean([p == r["label"] for p, r in zip(pred, rows, strict=True)])
    assert acc == pytest.approx(model.metadata["heldout_accuracy"], abs=1e-12)
    assert acc > 0.9 > model.metadata["majority_class_accuracy"]


def test_shipped_diabetes_demo_reaches_its_recorded_r2():
    model = presets.load_model("presets/diabetes_reg")
    data = pl.data.load("diabetes")
    assert isinstance(model, SklearnRegressor) and model.is_compatible_with_dataset(data)
    rows = _test_rows(data)
    y = np.array([r["progression"] for r in rows])
    s = np.array([o["score"] for o in model.predict(rows)])
    r2 = 1 - np.sum((y - s) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 == pytest.approx(model.metadata["heldout_r2"], abs=1e-9)
    assert r2 > 0.4
