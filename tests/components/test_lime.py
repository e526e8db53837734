"""LIME from scratch on numpy fake classifiers whose answer depends on known words."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from promptlit.api import types
from promptlit.components.lime import LIME, exponential_kernel, lime_weights, sample_masks
from promptlit.lib import validation

sys.path.insert(0, str(Path(__file__).parent))
from text_classifier_fakes import (  # noqa: E402
    TEXT,
    BagOfEmbeddings,
    rating_model,
    sentiment_data,
    sentiment_model,
)


def one_word_model() -> BagOfEmbeddings:
    """Only "terrible" has a non-zero embedding: the prediction depends on that word alone."""
    m = sentiment_model()
    emb = np.zeros_like(m.E)
    emb[m.vocab.index("terrible")] = [0.0, 1.5]
    return BagOfEmbeddings(m.vocab, emb, m.W, [0.5, 0.0])  # "pos" without "terrible"


SENTENCE = "The plot was terrible but the movie was not bad"


def test_the_one_word_that_matters_ranks_first():
    model = one_word_model()
    out = LIME().run([{TEXT: SENTENCE}], model, sentiment_data(model, [SENTENCE]),
                     config={"num_samples": 128})
    sal = out[0][TEXT]
    assert list(sal.tokens) == SENTENCE.split()
    scores = np.asarray(sal.salience)
    assert sal.tokens[int(np.argmax(scores))] == "terrible"  # predicted class is "neg"
    others = np.delete(scores, 3)
    assert scores[3] > 0.5 and np.all(np.abs(others) < 0.1 * scores[3])
    assert np.abs(scores).sum() == pytest.approx(1.0)
    assert validation.validate_value(types.TokenSalience(), sal) is None
    # Explaining "pos" instead: the same word, now strongly negative.
    pos = LIME().run([{TEXT: SENTENCE}], model, None,
                     config={"num_samples": 128, "class_to_explain": "pos"})[0][TEXT]
    assert pos.tokens[int(np.argmin(pos.salience))] == "terrible"


def test_one_predict_call_per_field_seeded_and_deterministic():
    model = sentiment_model()
    config = {"num_samples": 64, "seed": 3, "normalize": False}
    a = LIME().run([{TEXT: "good movie but bad plot"}], model, None, config=config)
    assert model.predict_calls == 1 and model.examples_seen == 65
    b = LIME().run([{TEXT: "good movie but bad plot"}], model, None, config=config)
    np.testing.assert_array_equal(a[0][TEXT].salience, b[0][TEXT].salience)
    batched = LIME().run([{TEXT: "good"}, {TEXT: "good movie but bad plot"}], model, None,
                         config=config)
    np.testing.assert_array_equal(a[0][TEXT].salience, batched[1][TEXT].salience)
    c = LIME().run([{TEXT: "good movie but bad plot"}], model, None,
                   config={**config, "seed": 4})
    assert not np.array_equal(a[0][TEXT].salience, c[0][TEXT].salience)
    ranks = np.argsort(-np.asarray(a[0][TEXT].salience))
    assert [a[0][TEXT].tokens[i] for i in ranks[:1]] == ["good"]  # predicted "pos"
    assert a[0][TEXT].tokens[ranks[-1]] == "bad"


def test_regressor_tokens_granularity_and_deletion():
    model = rating_model()
    out = LIME().run([{TEXT: "The movie was great"}], model, None,
                     config={"granularity": "tokens", "mask_token": "", "num_samples": 64})
    sal = out[0][TEXT]
    assert list(sal.tokens) == ["[CLS]", "the", "movie", "was", "great"]
    assert sal.salience[0] == 0.0  # [CLS] is not in the text: never masked, score 0
    assert sal.tokens[int(np.argmax(sal.salience))] == "great"


def test_masking_and_kernel_helpers():
    rng = np.random.default_rng(0)
    masks = sample_masks(500, 6, rng)
    masked = (~masks).sum(axis=1)
    assert masked.min() == 1 and masked.max() == 6  # k ~ Uniform{1..n}
    assert exponential_kernel(np.array([0.0]), 25)[0] == 1.0
    assert exponential_kernel(np.array([25.0]), 25)[0] == pytest.approx(np.exp(-0.5))
    # A linear score recovered exactly-ish by the weighted ridge.
    keep = np.vstack([np.ones((1, 4), bool), sample_masks(300, 4, rng)])
    w = lime_weights(keep, keep @ np.array([3.0, 0.0, -1.0, 0.5]), kernel_width=256)
    np.testing.assert_allclose(w, [3.0, 0.0, -1.0, 0.5], atol=0.05)
    assert LIME._mask("a bb c", [(0, 1), (2, 4), (5, 6)], np.array([1, 0, 1], bool),
                      "[MASK]") == "a [MASK] c"
    assert LIME._mask("a bb c", [(0, 1), (2, 4), (5, 6)], np.array([0, 0, 1], bool), "") == "c"


def test_bad_config_and_compatibility():
    model = sentiment_model()
    assert LIME().is_compatible(model, sentiment_data(model, ["x"]))
    with pytest.raises(ValueError, match="granularity 'chars'"):
        LIME().run([{TEXT: "good"}], model, None, config={"granularity": "chars"})
    with pytest.raises(ValueError, match="prediction field 'nope'"):
        LIME().run([{TEXT: "good"}], model, None, config={"prediction_key": "nope"})
    with pytest.raises(ValueError, match="not text \\(TextSegment\\) inputs"):
        LIME().run([{TEXT: "good"}], model, None, config={"text_fields": ["label"]})
    empty = LIME().run([{TEXT: ""}], model, None)[0][TEXT]
    assert list(empty.tokens) == [] and len(empty.salience) == 0
