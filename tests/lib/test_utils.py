"""Spec utilities: subclass-aware key search, stable ids, batching, compatibility reasons."""

import hashlib

import numpy as np
import pytest

from promptlit.api import types
from promptlit.lib import utils

SPEC = {
    "prompt": types.TextSegment(),
    "response": types.GeneratedText(parent="target"),
    "url": types.GeneratedURL(),
    "label": types.CategoryLabel(vocab=["a", "b"]),
    "probas": types.MulticlassPreds(vocab=["a", "b"], parent="label"),
    "tokens": types.Tokens(parent="response"),
    "grads": types.TokenGradients(align="tokens"),
    "n": types.Integer(),
    "score": types.RegressionScore(parent="n"),
}


def test_find_spec_keys_respects_subclasses():
    assert utils.find_spec_keys(SPEC, types.TextSegment) == ["prompt", "response", "url"]
    assert utils.find_spec_keys(SPEC, types.String) == ["prompt", "response", "url", "label"]
    assert utils.find_spec_keys(SPEC, types.URL) == ["url"]
    assert utils.find_spec_keys(SPEC, types.Scalar) == ["n", "score"]
    assert utils.find_spec_keys(SPEC, types._Tensor) == ["probas", "grads"]
    assert utils.find_spec_keys(SPEC, (types.Tokens, types.Integer)) == ["tokens", "n"]
    assert utils.find_spec_keys(SPEC, "GeneratedText") == ["response"]
    assert utils.find_spec_keys(SPEC, types.Embeddings) == []


def test_spec_contains_and_find_keys_by_parent():
    assert utils.spec_contains(SPEC, types.MulticlassPreds)
    assert not utils.spec_contains(SPEC, (types.Embeddings, types.AttentionHeads))
    assert utils.find_keys_by_parent(SPEC, "label") == ["probas"]
    assert utils.find_keys_by_parent(SPEC, "response") == ["tokens"]
    assert utils.find_keys_by_parent(SPEC, "nothing") == []


def test_example_id_is_stable_and_ignores_private_keys_and_order():
    a = {"prompt": "Hi", "target": "there", "n": 3}
    b = {"n": 3, "target": "there", "prompt": "Hi", "_id": "x", "_meta": {"added": True}}
    assert utils.example_id(a) == utils.example_id(b)
    # sha1 of the canonical (sorted-key, compact) JSON, precisely:
    assert (
        utils.example_id(a) == hashlib.sha1(b'{"n":3,"prompt":"Hi","target":"there"}').hexdigest()
    )
    assert utils.example_id(a) != utils.example_id({**a, "n": 4})


def test_example_id_is_numpy_safe():
    a = {"emb": np.array([1.5, 2.0], np.float32), "k": np.int64(2), "t": "é"}
    b = {"emb": [1.5, 2.0], "k": 2, "t": "é"}
    assert utils.example_id(a) == utils.example_id(b)


def test_batch_iterator():
    assert list(utils.batch_iterator(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(utils.batch_iterator([], 3)) == []
    assert list(utils.batch_iterator("ab", 5)) == [["a", "b"]]
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        list(utils.batch_iterator([1], 0))


def test_compatible_and_reasons():
    model_in = {
        "prompt": types.TextSegment(),
        "target": types.TextSegment(required=False),
        "label": types.CategoryLabel(required=False),
    }
    ok = {"prompt": types.TextSegment(), "target": types.GeneratedText(), "extra": types.Scalar()}
    assert utils.compatible(model_in, ok)
    assert utils.describe_incompatibility(model_in, ok) == []

    missing = {"text": types.TextSegment()}
    reasons = utils.describe_incompatibility(model_in, missing)
    assert len(reasons) == 1
    assert "requires input field 'prompt' (TextSegment)" in reasons[0]
    assert "dataset fields: text (TextSegment)" in reasons[0]
    assert "remap" in reasons[0]
    assert not utils.compatible(model_in, missing)

    wrong = {"prompt": types.Scalar(), "label": types.TextSegment()}
    reasons = utils.describe_incompatibility(model_in, wrong)
    assert len(reasons) == 2
    assert reasons[0].startswith("field 'prompt': the model expects TextSegment")
    assert "dataset provides Scalar" in reasons[0]
    assert reasons[1].startswith("field 'label': the model expects CategoryLabel")


def test_example_id_of_deeply_nested_values_does_not_recurse():
    deep = "leaf"
    for _ in range(5000):
        deep = [deep, {"k": 1.5}]
    a = utils.example_id({"x": deep})
    assert len(a) == 40 and a == utils.example_id({"x": deep})
    assert a != utils.example_id({"x": deep[0]})
    # The non-recursive encoding is byte-identical to json.dumps where both work (ids are stable).
    examples = [{"b": [1, 2.5, None, True, "é\n\"q\""], "a": {"z": [], "y": {}}, "_p": 1},
                {"n": np.float32(0.5), "arr": np.arange(3), "s": {"b", "a"}, "t": (1, "x")},
                {"big": 10**30, "neg": -0.0, "inf": float("inf"), "nan": float("nan")}]
    for ex in examples:
        assert utils._canonical_json_iterative(ex) == utils.canonical_json(ex)
