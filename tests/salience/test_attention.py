"""Attention maps through the cut graph, against attention computed by hand on tiny models."""

from __future__ import annotations

import pickle
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.salience import attention as A  # noqa: E402
from promptlit.salience.forward import lm_forward  # noqa: E402
from promptlit.salience.result import SequenceSalience  # noqa: E402

pytestmark = pytest.mark.slow
VOCAB = 61
N = 13


def _perturb(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "float" in str(v.dtype):
            v.assign(np.asarray(v.value) + 0.3 * rng.standard_normal(v.shape).astype(v.dtype))


def _gemma() -> Any:
    keras.utils.set_random_seed(31)
    bb = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32, head_dim=8)
    lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
    _perturb(lm, 6)
    return lm


@pytest.fixture(scope="module")
def gemma() -> Any:
    return _gemma()


def _ids() -> np.ndarray:
    return np.random.default_rng(3).integers(1, VOCAB, size=N).astype(np.int32)


def _rope(x: np.ndarray) -> np.ndarray:
    """Rotary position embedding by hand: ``<float>[T, heads, h]``, positions 0..T-1, rotating
    the two halves of each head (wavelength 10000)."""
    t, _, h = x.shape
    inv = 10000.0 ** (-np.arange(0, h, 2) / h)
    ang = np.arange(t)[:, None] * inv[None]  # [T, h/2]
    cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None]
    sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None]
    x1, x2 = x[..., : h // 2], x[..., h // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def _manual_gemma(lm: Any, ids: np.ndarray) -> np.ndarray:
    """``<float>[L, H, N, N]``: each layer's attention computed with numpy from its weights
    (RMS norm, query / key projections, RoPE, 1/sqrt(head_dim), causal softmax; grouped heads);
    the layers' outputs (for the next layer's input) come from the model's blocks."""
    bb = lm.backbone
    x = np.asarray(bb.token_embedding(ids[None]))[0] * np.sqrt(bb.hidden_dim)
    out = []
    for i in range(bb.num_layers):
        block = bb.get_layer(f"decoder_block_{i}")
        att = block.attention
        scale = np.asarray(block.pre_attention_norm.scale)
        xn = x / np.sqrt(np.mean(x * x, -1, keepdims=True) + 1e-6) * (1 + scale)
        q = _rope(np.einsum("td,ndh->tnh", xn, np.asarray(att.query_dense.kernel)))
        k = _rope(np.einsum("td,kdh->tkh", xn, np.asarray(att.key_dense.kernel)))
        g = att.num_query_heads // att.num_key_value_heads
        k = np.repeat(k, g, axis=1)  # query head n reads key head n // g
        logits = np.einsum("tnh,snh->nts", q, k) / np.sqrt(att.head_dim)
        logits = np.where(np.tril(np.ones((N, N), bool))[None], logits, -np.inf)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        out.append(p / p.sum(-1, keepdims=True))
        x = np.asarray(block(x[None], padding_mask=np.ones((1, N), "int32")))[0]
    return np.stack(out)


def test_gemma_attention_matches_a_manual_computation(gemma: Any) -> None:
    ids = _ids()
    fwd = lm_forward(gemma)
    rows = np.array([0, 4, 7, 12])
    got = A.attention_maps(fwd, ids, rows)
    expected = _manual_gemma(gemma, ids)
    assert got.shape == (2, 4, 4, N) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected[:, :, rows], atol=2e-5)
    assert got.std(axis=1).max() > 1e-2  # the heads differ: head order is checked too
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def test_fused_attention_path_is_recorded_and_unchanged(gemma: Any, monkeypatch: Any) -> None:
    """Layers that call keras.ops.dot_product_attention (Llama, Mistral, Qwen on JAX; Gemma on a
    GPU) are recorded through the explicit op: same maps, same logits as the fused op."""
    ids = _ids()
    plain = lm_forward(gemma)
    mask = jnp.ones((1, N), bool)
    before = np.asarray(plain.logits(plain.params, plain.embed(plain.params, ids[None]), mask))
    with A.recording() as rec:
        plain.logits(plain.params, plain.embed(plain.params, ids[None]), mask)
    assert rec.sources == ["softmax", "softmax"]  # Gemma on a CPU: the explicit softmax
    for i in range(gemma.backbone.num_layers):
        att = gemma.backbone.get_layer(f"decoder_block_{i}").attention
        monkeypatch.setattr(att, "_use_fused_attention_op", lambda: True)
    fwd = lm_forward(gemma)
    fused = np.asarray(fwd.logits(fwd.params, fwd.embed(fwd.params, ids[None]), mask))
    np.testing.assert_allclose(fused, before, atol=1e-4)  # the fused path really runs
    got = A.attention_maps(fwd, ids, np.arange(N))
    np.testing.assert_allclose(got, _manual_gemma(gemma, ids), atol=2e-5)
    with A.recording() as rec:  # eagerly, too: the explicit op returns what the fused op does
        h = fwd.logits(fwd.params, fwd.embed(fwd.params, ids[None]), mask)
    assert rec.sources == ["dot_product_attention"] * 2
    np.testing.assert_allclose(np.asarray(h), fused, atol=1e-4)


def test_llama_gpt2_layers_and_padding() -> None:
    """Every layer is recorded, rows are causal distributions, and padding to the length
    bucket changes nothing (a longer sequence's prefix gives the same rows)."""
    keras.utils.set_random_seed(32)
    llama = keras_hub.models.LlamaCausalLM(backbone=keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB, num_layers=3, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32), preprocessor=None)
    gpt2 = keras_hub.models.GPT2CausalLM(backbone=keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=64), preprocessor=None)
    for lm, layers, heads in ((llama, 3, 4), (gpt2, 2, 2)):
        _perturb(lm, 7)
        fwd = lm_forward(lm)
        ids = _ids()
        w = A.attention_maps(fwd, ids, np.arange(N))
        assert w.shape == (layers, heads, N, N)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
        assert np.abs(np.triu(w, 1)).max() == 0.0
        longer = np.concatenate([ids, _ids()[:5]])
        w2 = A.attention_maps(fwd, longer, np.arange(N))
        np.testing.assert_allclose(w2[..., :N], w, atol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        A.attention_maps(fwd, ids, np.array([N]))


def test_attention_maps_value(gemma: Any) -> None:
    """AttentionMaps: averages, a span's mean row (shares summing to 1), immutability, pickle."""
    ids = _ids()
    fwd = lm_forward(gemma)
    p = 9  # 9 prompt tokens, 4 response tokens; response token t is written at row p + t - 1
    w = A.attention_maps(fwd, ids, np.arange(p - 1, N - 1))
    tokens = [f"t{i}" for i in range(N)]
    text = "".join(tokens)
    offsets = np.cumsum([0] + [len(t) for t in tokens])
    sal = SequenceSalience(text=text, prompt_length=int(offsets[p]), tokens=tokens,
                           offsets=np.stack([offsets[:-1], offsets[1:]], 1), num_prompt_tokens=p,
                           matrices={"attention": w.mean(axis=(0, 1))})
    maps = A.AttentionMaps(sal, w)
    assert (maps.num_layers, maps.num_heads) == (2, 4)
    np.testing.assert_allclose(maps.rows(), w.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(maps.rows(1), w[1].mean(0), rtol=1e-6)
    np.testing.assert_allclose(maps.rows(None, 2), w[:, 2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(maps.rows(0, 3), w[0, 3])
    span = maps.for_span(1, 3, layer=1, head=0)
    np.testing.assert_allclose(span.scores, w[1, 0, 1:3].mean(0), rtol=1e-6)
    assert span.scores.sum() == pytest.approx(1.0, abs=1e-5) and not span.signed
    segs = span.aggregate("tokens", side="all")
    assert sum(s.score for s in segs) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        maps.weights[0, 0, 0, 0] = 1.0
    with pytest.raises(IndexError, match="layer 5"):
        maps.rows(5)
    back = pickle.loads(pickle.dumps(maps))
    np.testing.assert_array_equal(back.weights, maps.weights)
    assert back.salience.text == text
