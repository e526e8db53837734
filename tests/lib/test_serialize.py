"""serialize.to_json / from_json round-trip numpy, tuples, LitTypes and dtypes."""

import json

import numpy as np
import pytest

from promptlit.api import dtypes, types
from promptlit.lib import serialize


def test_numpy_arrays_keep_dtype_shape_and_values():
    x = {
        "f32": np.array([[0.5, -1.25], [3.0, 4.0]], dtype=np.float32),
        "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
        "empty": np.zeros((2, 0), dtype=np.int8),
        "bool": np.array([True, False]),
        "str": np.array(["ab", "c"]),
    }
    y = serialize.from_json(serialize.to_json(x))
    for key, arr in x.items():
        assert y[key].dtype == arr.dtype, key
        assert y[key].shape == arr.shape, key
        np.testing.assert_array_equal(y[key], arr)


def test_numpy_scalars_become_python_numbers():
    s = serialize.to_json({"a": np.float32(0.5), "b": np.int16(-3), "c": np.bool_(True)})
    assert json.loads(s) == {"a": 0.5, "b": -3, "c": True}
    assert type(json.loads(s)["b"]) is int


def test_tuples_and_nesting_round_trip():
    x = {"cands": [("the cat", 0.75), ("a dog", None)], "nested": {"t": (1, (2, 3))}, "n": None}
    assert serialize.from_json(serialize.to_json(x)) == x


def test_lit_types_and_specs_round_trip():
    spec = {
        "label": types.CategoryLabel(vocab=["a", "b"]),
        "probas": types.MulticlassPreds(vocab=["a", "b"], parent="label", null_idx=0),
        "metric": types.MetricResult(best_value=types.MetricBestValue.HIGHEST),
    }
    back = serialize.from_json(serialize.to_json(spec))
    assert back == spec
    assert type(back["probas"]) is types.MulticlassPreds


def test_dtypes_round_trip():
    values = [
        dtypes.SpanLabel(start=0, end=3, label="PER"),
        dtypes.EdgeLabel(span1=(0, 1), span2=(2, 4), label="nsubj"),
        dtypes.EdgeLabel(span1=(0, 1), span2=None, label=0.5),
        dtypes.AnnotationCluster(label="x", spans=[dtypes.SpanLabel(start=1, end=2)], score=0.9),
        dtypes.TokenSalience(tokens=["a", "b"], salience=np.array([0.1, -0.2], np.float32)),
        dtypes.FeatureSalience(salience={"prompt": 0.7, "target": 0.3}),
        dtypes.SequenceSalienceMap(
            tokens_in=["hi"], tokens_out=["there", "!"], salience=np.ones((2, 3), np.float32)
        ),
        dtypes.RegressionResult(score=2.5, error=0.5, squared_error=0.25),
        dtypes.ClassificationResult(scores=[0.2, 0.8], predicted_class="pos", correct=True),
    ]
    back = serialize.from_json(serialize.to_json(values))
    assert back == values
    assert [type(v) for v in back] == [type(v) for v in values]
    assert back[1].span1 == (0, 1)
    assert back[4].salience.dtype == np.float32
    # dtypes' own to_json is plain JSON when the fields are.
    d = values[3].to_json()
    assert json.loads(json.dumps(d))["spans"][0]["__name__"] == "SpanLabel"
    assert dtypes.DataTuple.from_json(json.loads(json.dumps(d))) == values[3]


def test_unsupported_values_fail_clearly():
    with pytest.raises(TypeError, match="Cannot serialize .*object"):
        serialize.to_json({"x": object()})
    with pytest.raises(TypeError, match="keys must be strings"):
        serialize.to_json({1: "a"})


def test_deeply_nested_values_fail_clearly():
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        serialize.to_json({"x": deep})
    with pytest.raises(ValueError, match="nested too deeply"):
        serialize.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        serialize.from_json("[" * 500 + "]" * 500)
    shallow = {"x": [[[("a", 1.0)]]]}
    assert serialize.from_json(serialize.to_json(shallow)) == shallow
