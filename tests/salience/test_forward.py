"""`lm_forward` reproduces each supported keras-hub causal LM's own logits, op for op.

Every model is built tiny with random weights (no downloads); all float weights get a small random
perturbation so that zero-initialised biases / norm scales are exercised too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.salience.forward import LMForward, lm_forward  # noqa: E402

VOCAB = 61
N = 12


def _perturb(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "float" in str(v.dtype):
            v.assign(np.asarray(v.value) + 0.05 * rng.standard_normal(v.shape).astype(v.dtype))


def _gemma() -> Any:
    bb = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
    )
    return keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)


def _gemma2() -> Any:
    # Gemma 2 = GemmaBackbone with soft-caps, post-norms and alternating sliding-window layers;
    # a small window and small caps so that all of them change the result at N=12.
    bb = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
        query_head_dim_normalize=False,
        use_post_ffw_norm=True,
        use_post_attention_norm=True,
        attention_logit_soft_cap=2.0,
        final_logit_soft_cap=1.5,
        use_sliding_window_attention=True,
        sliding_window_size=4,
    )
    return keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)


def _gemma3() -> Any:
    bb = keras_hub.models.Gemma3Backbone(
        vocabulary_size=VOCAB,
        image_size=16,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
        use_sliding_window_attention=True,
        sliding_window_size=4,
        vision_encoder=None,
    )
    return keras_hub.models.Gemma3CausalLM(backbone=bb, preprocessor=None)


def _gpt2() -> Any:
    bb = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
    )
    return keras_hub.models.GPT2CausalLM(backbone=bb, preprocessor=None)


def _llama() -> Any:
    bb = keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
    )
    return keras_hub.models.LlamaCausalLM(backbone=bb, preprocessor=None)


def _mistral() -> Any:
    bb = keras_hub.models.MistralBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        sliding_window=4,
    )
    return keras_hub.models.MistralCausalLM(backbone=bb, preprocessor=None)


def _qwen() -> Any:
    bb = keras_hub.models.QwenBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
    )
    return keras_hub.models.QwenCausalLM(backbone=bb, preprocessor=None)


BUILDERS: dict[str, Callable[[], Any]] = {
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gpt2": _gpt2,
    "llama": _llama,
    "mistral": _mistral,
    "qwen": _qwen,
}


@pytest.fixture(scope="session")
def tiny_lms() -> dict[str, Any]:
    """Session cache of built models (built lazily, once)."""
    return {}


def _get(tiny_lms: dict[str, Any], name: str) -> Any:
    if name not in tiny_lms:
        keras.utils.set_random_seed(7)
        lm = BUILDERS[name]()
        _perturb(lm, seed=len(tiny_lms) + 1)
        tiny_lms[name] = lm
    return tiny_lms[name]


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=(2, N)).astype("int32")
    mask = np.ones((2, N), bool)
    mask[1, 9:] = False  # right padding on the second row
    return ids, mask


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDERS))
def test_logits_match_model(tiny_lms: dict[str, Any], name: str) -> None:
    lm = _get(tiny_lms, name)
    ids, mask = _inputs()
    expected = np.asarray(lm({"token_ids": ids, "padding_mask": mask.astype("int32")}))
    fwd = lm_forward(lm)
    assert isinstance(fwd, LMForward)
    run = jax.jit(lambda p, t, m: fwd.logits(p, fwd.embed(p, t), m))
    got = np.asarray(run(fwd.params, ids, mask))
    assert got.shape == (2, N, VOCAB)
    diff = float(np.abs(got - expected).max())
    print(f"{name}: max |own - model| = {diff:.2e}")
    assert diff <= 1e-5


@pytest.mark.slow
def test_gemma2_caps_are_active(tiny_lms: dict[str, Any]) -> None:
    """The final-logit soft-cap bounds every logit (so the comparison above covers it)."""
    lm = _get(tiny_lms, "gemma2")
    fwd = lm_forward(lm)
    ids, mask = _inputs()
    out = np.asarray(fwd.logits(fwd.params, fwd.embed(fwd.params, ids), mask))
    assert np.abs(out).max() <= 1.5 + 1e-6
    assert np.abs(out).max() > 0.5


@pytest.mark.slow
def test_gpt2_embed_is_token_embedding_only(tiny_lms: dict[str, Any]) -> None:
    lm = _get(tiny_lms, "gpt2")
    fwd = lm_forward(lm)
    ids, _ = _inputs()
    emb = np.asarray(fwd.embed(fwd.params, ids))
    table = np.asarray(lm.backbone.token_embedding.embeddings.value)
    np.testing.assert_array_equal(emb, table[ids])


@pytest.mark.slow
def test_gemma_embed_is_unscaled(tiny_lms: dict[str, Any]) -> None:
    """Gemma's sqrt(hidden_dim) scale belongs to `logits`, not to the interception point."""
    lm = _get(tiny_lms, "gemma")
    fwd = lm_forward(lm)
    ids, _ = _inputs()
    table = np.asarray(lm.backbone.token_embedding.embeddings.value)
    np.testing.assert_array_equal(np.asarray(fwd.embed(fwd.params, ids)), table[ids])


@pytest.mark.slow
def test_params_are_arguments_not_constants(tiny_lms: dict[str, Any]) -> None:
    """New weights flow through the SAME compiled function (no retrace, no stale constants)."""
    lm = _get(tiny_lms, "gemma")
    fwd = lm_forward(lm)
    ids, mask = _inputs()
    run = jax.jit(lambda p, t, m: fwd.logits(p, fwd.embed(p, t), m))
    base = np.asarray(run(fwd.params, ids, mask))
    halved = jax.tree_util.tree_map(
        lambda x: x * 0.5 if jnp.issubdtype(x.dtype, jnp.floating) else x, fwd.params
    )
    other = np.asarray(run(halved, ids, mask))
    assert run._cache_size() == 1
    assert np.abs(other - base).max() > 1e-3
    # No weight is baked into the trace as a constant.
    closed = jax.make_jaxpr(lambda p, t, m: fwd.logits(p, fwd.embed(p, t), m))(
        fwd.params, ids, mask
    )
    assert all(np.size(c) < 16 for c in closed.consts), [np.shape(c) for c in closed.consts]


def test_unsupported_architecture_is_named() -> None:
    class FancyCausalLM:
        backbone = None

    with pytest.raises(ValueError, match=r"FancyCausalLM.*Supported.*GemmaCausalLM.*GPT2CausalLM"):
        lm_forward(FancyCausalLM())
