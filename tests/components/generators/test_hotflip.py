"""HotFlip on a numpy fake classifier with a tiny embedding table: flips, verified by the model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promptlit.api.model import CachingModelWrapper, Model
from promptlit.components.generators.hotflip import HotFlip
from promptlit.lib import validation

sys.path.insert(0, str(Path(__file__).parents[1]))
from text_classifier_fakes import (  # noqa: E402
    TEXT,
    BagOfEmbeddings,
    rating_model,
    sentiment_data,
    sentiment_model,
)


def leaning_negative(cls=BagOfEmbeddings) -> BagOfEmbeddings:
    m = sentiment_model()
    return cls(m.vocab, m.E, m.W, [0.0, 0.5])


def label(model, text):
    return model.labels[int(next(iter(model.predict([{TEXT: text}])))["probas"].argmax())]


def test_single_flip_uses_the_gradient_and_the_embedding_table():
    model = leaning_negative()
    data = sentiment_data(model, [])
    ex = {TEXT: "Good movie", "label": "pos", "grad_class": "neg"}
    assert label(model, ex[TEXT]) == "pos"
    out = HotFlip().generate(ex, model, data)
    # The predicted class is explained whatever the example's grad_class (copied as is).
    # First order: (E[w] - e_good) . g_good is lowest for "terrible" ([0, 1.5]); case kept.
    assert out[0] == {TEXT: "Terrible movie", "label": "pos", "grad_class": "neg"}
    assert all(label(model, e[TEXT]) == "neg" for e in out)
    assert all(not validation.validate_example(e, data.spec()) for e in out)
    assert 1 <= len(out) <= 5


def test_ignored_tokens_and_wrappers():
    model = CachingModelWrapper(leaning_negative(), "clf")
    data = sentiment_data(model, [])
    out = HotFlip().generate({TEXT: "good movie"}, model, data,
                             {"tokens_to_ignore": ["good"], "num_examples": 1})
    assert out == [{TEXT: "good terrible"}]
    assert label(model, out[0][TEXT]) == "neg"


def test_regressor_below_threshold_goes_up():
    model = rating_model()
    out = HotFlip().generate({TEXT: "bad movie"}, model, sentiment_data(model, []),
                             {"num_examples": 1})
    assert [e[TEXT] for e in out] == ["great movie"]
    assert next(iter(model.predict(out)))["score"] > 0


def test_needs_an_embedding_table_and_gradients():
    class NoTable(BagOfEmbeddings):
        get_embedding_table = Model.get_embedding_table

    data = sentiment_data(sentiment_model(), [])
    assert HotFlip().is_compatible(leaning_negative(), data)
    no_table = leaning_negative(NoTable)
    assert not HotFlip().is_compatible(no_table, data)
    with pytest.raises(ValueError, match="implement get_embedding_table"):
        HotFlip().generate({TEXT: "good"}, no_table, data)
    no_grads = sentiment_model(with_grads=False)
    assert not HotFlip().is_compatible(no_grads, data)
    with pytest.raises(ValueError, match="needs a TokenGradients output"):
        HotFlip().generate({TEXT: "good"}, no_grads, data)
