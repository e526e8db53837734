"""Grad L2, Grad·Input and Integrated Gradients on a numpy bag-of-embeddings classifier."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from promptlit.api import dtypes, types
from promptlit.api.model import CachingModelWrapper
from promptlit.components.gradient_maps import (
    GradientDotInput,
    GradientNorm,
    IntegratedGradients,
)
from promptlit.lib import validation

sys.path.insert(0, str(Path(__file__).parent))
from text_classifier_fakes import (  # noqa: E402
    TEXT,
    BagOfEmbeddings,
    rating_model,
    sentiment_data,
    sentiment_model,
)

GRAD = f"token_grad_{TEXT}"


def _hand_grads(embs, p_other, sign=1.0):
    """Gradient of log p_c for the sentiment model (U = I): 4 p_other (1 - tanh(e)^2) * [1, -1]."""
    return [[sign * 4 * p_other * (1 - math.tanh(e0) ** 2),
             -sign * 4 * p_other * (1 - math.tanh(e1) ** 2)] for e0, e1 in embs]


GOOD_MOVIE = [[0.1, 0.1], [1.0, 0.0], [0.1, 0.05]]  # [CLS], good, movie


def _p_pos(embs):
    h0 = sum(math.tanh(e0) for e0, _ in embs)
    h1 = sum(math.tanh(e1) for _, e1 in embs)
    return 1 / (1 + math.exp(-4 * (h0 - h1)))


def test_grad_l2_matches_hand_computed_values():
    model = sentiment_model()
    out = GradientNorm().run([{TEXT: "good movie"}], model, None, config={"normalize": False})
    sal = out[0][GRAD]
    assert isinstance(sal, dtypes.TokenSalience)
    assert list(sal.tokens) == ["[CLS]", "good", "movie"]
    p_neg = 1 - _p_pos(GOOD_MOVIE)
    expected = [math.hypot(*g) for g in _hand_grads(GOOD_MOVIE, p_neg)]
    np.testing.assert_allclose(sal.salience, expected, rtol=1e-9)
    # p_neg = 0.0375..., so "good" (saturated tanh) is the least sensitive token.
    assert expected[1] < expected[0] < expected[2]
    normed = GradientNorm().run([{TEXT: "good movie"}], model, None)[0][GRAD].salience
    np.testing.assert_allclose(normed, np.array(expected) / sum(expected), rtol=1e-9)
    assert validation.validate_value(types.TokenSalience(), sal) is None


def test_grad_dot_input_matches_hand_computed_values():
    model = sentiment_model()
    out = GradientDotInput().run([{TEXT: "good movie"}], model, None, config={"normalize": False})
    p_neg = 1 - _p_pos(GOOD_MOVIE)
    expected = [g0 * e0 + g1 * e1 for (g0, g1), (e0, e1)
                in zip(_hand_grads(GOOD_MOVIE, p_neg), GOOD_MOVIE, strict=True)]
    np.testing.assert_allclose(out[0][GRAD].salience, expected, rtol=1e-9)
    assert expected[0] == pytest.approx(0.0)  # [CLS] = [0.1, 0.1]: equal and opposite
    assert expected[1] > expected[2] > 0
    normed = GradientDotInput().run([{TEXT: "good movie"}], model, None)[0][GRAD].salience
    assert np.abs(normed).sum() == pytest.approx(1.0)


def test_class_to_explain_reruns_the_model_for_that_class():
    model = sentiment_model()
    given = list(model.predict([{TEXT: "good movie"}]))
    calls = model.predict_calls
    out = GradientDotInput().run([{TEXT: "good movie"}], model, None, model_outputs=given,
                                 config={"normalize": False, "class_to_explain": "neg"})
    assert model.predict_calls == calls + 1
    p_pos = _p_pos(GOOD_MOVIE)
    expected = [g0 * e0 + g1 * e1 for (g0, g1), (e0, e1)
                in zip(_hand_grads(GOOD_MOVIE, p_pos, sign=-1.0), GOOD_MOVIE, strict=True)]
    np.testing.assert_allclose(out[0][GRAD].salience, expected, rtol=1e-9)
    by_index = GradientDotInput().run([{TEXT: "good movie"}], model, None,
                                      config={"normalize": False, "class_to_explain": "1"})
    np.testing.assert_allclose(by_index[0][GRAD].salience, expected, rtol=1e-9)
    with pytest.raises(ValueError, match="class 'meh' is not a label"):
        GradientNorm().run([{TEXT: "good"}], model, None, config={"class_to_explain": "meh"})


@pytest.mark.parametrize("text,cls", [("good movie", None), ("the plot was not great", "neg"),
                                      ("terrible movie but good plot", "pos")])
def test_integrated_gradients_completeness(text, cls):
    model = sentiment_model()
    interp = IntegratedGradients()
    inputs = [{TEXT: text}]
    outputs = list(model.predict(inputs))
    model.predict_calls = model.examples_seen = 0
    config = {"normalize": False, "ig_steps": 64, "class_to_explain": cls or ""}
    sal = interp.run(inputs, model, None, model_outputs=outputs, config=config)[0][GRAD]
    embs = model.embed(text)
    c = int(np.argmax(outputs[0]["probas"])) if cls is None else model.labels.index(cls)
    delta = model.log_score(embs, c) - model.log_score(np.zeros_like(embs), c)
    assert abs(delta) > 0.1
    assert float(np.sum(sal.salience)) == pytest.approx(delta, rel=0.02)
    # All 64 interpolation steps went to the model in one predict call.
    assert model.predict_calls == 1 and model.examples_seen == 64


def test_integrated_gradients_batches_all_inputs_and_differs_from_grad_dot_input():
    model = sentiment_model()
    inputs = [{TEXT: "good movie"}, {TEXT: "bad plot"}, {TEXT: "the movie was great"}]
    outputs = list(model.predict(inputs))
    model.predict_calls = model.examples_seen = 0
    ig = IntegratedGradients().run(inputs, model, None, model_outputs=outputs,
                                   config={"ig_steps": 8, "normalize": False})
    assert model.predict_calls == 1 and model.examples_seen == 24
    gxi = GradientDotInput().run(inputs, model, None, model_outputs=outputs,
                                 config={"normalize": False})
    assert not np.allclose(ig[0][GRAD].salience, gxi[0][GRAD].salience)
    # The top token agrees with intuition: "good", "bad", "great".
    tops = [r[GRAD].tokens[int(np.argmax(np.abs(r[GRAD].salience)))] for r in ig]
    assert tops == ["good", "bad", "great"]


def test_integrated_gradients_on_a_regressor():
    model = rating_model()
    text = "great movie"
    sal = IntegratedGradients().run([{TEXT: text}], model, None,
                                    config={"normalize": False, "ig_steps": 64})[0][GRAD]
    embs = model.embed(text)
    delta = model.log_score(embs) - model.log_score(np.zeros_like(embs))
    assert float(np.sum(sal.salience)) == pytest.approx(delta, rel=0.02)
    with pytest.raises(ValueError, match="only meaningful for a classifier"):
        IntegratedGradients().run([{TEXT: text}], model, None, config={"class_to_explain": "x"})


def test_compatibility_is_spec_based_and_errors_name_the_missing_field():
    with_grads, no_grads = sentiment_model(), sentiment_model(with_grads=False)
    data = sentiment_data(with_grads, ["good"])
    for interp in (GradientNorm(), GradientDotInput(), IntegratedGradients()):
        assert interp.is_compatible(with_grads, data)
        assert interp.is_compatible(CachingModelWrapper(with_grads, "m"), data)
        assert not interp.is_compatible(no_grads, data)
        with pytest.raises(ValueError, match="no TokenGradients field.*Fix: use a model"):
            interp.run([{TEXT: "good"}], no_grads, data)
        assert interp.meta_spec()["saliency"].signed == (not isinstance(interp, GradientNorm))

    class NoEmbeddingInput(BagOfEmbeddings):
        def input_spec(self):
            spec = super().input_spec()
            del spec["input_embs"]
            return spec

    m = sentiment_model()
    cripple = NoEmbeddingInput(m.vocab, m.E, m.W, m.b)
    assert GradientNorm().is_compatible(cripple, data)
    assert not IntegratedGradients().is_compatible(cripple, data)
    with pytest.raises(ValueError, match="TokenEmbeddings field that is also a model \\*input\\*"):
        IntegratedGradients().run([{TEXT: "good"}], cripple, data)


def test_bad_ig_steps():
    with pytest.raises(ValueError, match="ig_steps must be >= 1"):
        IntegratedGradients().run([{TEXT: "good"}], sentiment_model(), None,
                                  config={"ig_steps": 0})
