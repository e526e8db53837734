"""AblationFlip on numpy fake classifiers/regressors: finds the known flipping words, minimal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promptlit.components.generators.ablation_flip import AblationFlip
from promptlit.lib import validation

sys.path.insert(0, str(Path(__file__).parents[1]))
from text_classifier_fakes import (  # noqa: E402
    TEXT,
    BagOfEmbeddings,
    rating_model,
    sentiment_data,
    sentiment_model,
)


def leaning_negative() -> BagOfEmbeddings:
    """The sentiment model with a bias of 0.5 towards "neg": "good" alone makes it "pos"."""
    m = sentiment_model()
    return BagOfEmbeddings(m.vocab, m.E, m.W, [0.0, 0.5])


def decision(model, text):
    return next(iter(model.predict([{TEXT: text}])))["probas"].argmax()


def test_finds_the_one_flipping_word():
    model = leaning_negative()
    data = sentiment_data(model, ["the movie was good"])
    ex = {TEXT: "the movie was good", "label": "pos", "input_embs": [[0.0, 0.0]]}
    assert decision(model, ex[TEXT]) == 0
    model.examples_seen = 0
    out = AblationFlip().generate(ex, model, data)
    # 1 original + 4 leave-one-out + C(3, 2) + C(3, 3) sets without "good": 9 predictions.
    assert model.examples_seen == 9
    assert out == [{TEXT: "the movie was", "label": "pos"}]  # stale input_embs dropped
    assert decision(model, out[0][TEXT]) == 1
    assert not validation.validate_example(out[0], data.spec())


def test_needs_two_words_and_respects_max_ablations():
    model = leaning_negative()
    data = sentiment_data(model, [])
    ex = {TEXT: "Good great movie", "label": "pos"}
    assert AblationFlip().generate(ex, model, data)[0][TEXT] == "movie"
    assert AblationFlip().generate(ex, model, data, {"max_ablations": 1}) == []


def test_regression_threshold():
    model = rating_model()
    data = sentiment_data(model, [])
    ex = {TEXT: "bad movie"}  # score 2 (h0 - h1) + 0.5 = -0.92
    out = AblationFlip().generate(ex, model, data, {"regression_threshold": 0.0})
    assert [e[TEXT] for e in out] == ["movie"]
    assert next(iter(model.predict(out)))["score"] > 0.0
    assert AblationFlip().generate(ex, model, data, {"regression_threshold": -2.0}) == []


def test_compatibility_and_errors():
    model = leaning_negative()
    data = sentiment_data(model, [])
    assert AblationFlip().is_compatible(model, data)
    with pytest.raises(ValueError, match="prediction field 'x'"):
        AblationFlip().generate({TEXT: "good"}, model, data, {"prediction_key": "x"})
    assert AblationFlip().generate({TEXT: ""}, model, data) == []
