"""Contrastive salience kernel: finite differences (Grad L2), linearity (Grad.Input, IG)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.salience import contrast as C  # noqa: E402
from promptlit.salience import kernels as K  # noqa: E402
from promptlit.salience.forward import LMForward, lm_forward  # noqa: E402

pytestmark = pytest.mark.slow
VOCAB = 61


def _perturb(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "float" in str(v.dtype):
            v.assign(np.asarray(v.value) + 0.05 * rng.standard_normal(v.shape).astype(v.dtype))


@pytest.fixture(scope="module")
def gemma() -> LMForward:
    keras.utils.set_random_seed(21)
    bb = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=16, intermediate_dim=32, head_dim=8, final_logit_soft_cap=5.0)
    lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
    _perturb(lm, 3)
    return lm_forward(lm)


@pytest.fixture(scope="module")
def gpt2() -> LMForward:
    keras.utils.set_random_seed(22)
    bb = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=64)
    lm = keras_hub.models.GPT2CausalLM(backbone=bb, preprocessor=None)
    _perturb(lm, 4)
    table = bb.token_embedding.embeddings
    table.assign(np.random.default_rng(5).standard_normal(table.shape).astype("float32"))
    return lm_forward(lm)


def _ids(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB, size=n).astype(np.int32)


def _case() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sequence A (20 tokens, span [12, 15) then 5 more tokens) and a 4-token B."""
    ids = _ids(20, seed=7)
    mask = np.zeros(20, bool)
    mask[12:15] = True
    return ids, mask, _ids(4, seed=8), 12


def _span_lp(fwd: LMForward, e: Any, ids: np.ndarray, span: np.ndarray) -> Any:
    """Unpadded reference: sum of the span's token log-probs for embeddings ``e <float>[N, D]``."""
    logits = fwd.logits(fwd.params, e[None], jnp.ones((1, ids.shape[0]), bool))[0]
    return jnp.sum(K._token_log_probs(logits, jnp.asarray(ids)) * span)


def _f(fwd: LMForward, prefix: Any, ids_a: np.ndarray, mask_a: np.ndarray, ids_b: np.ndarray,
       mask_b: np.ndarray) -> Any:
    """f = log p(A) - log p(B) as a function of the shared prefix embeddings ``<float>[s, D]``."""
    s = prefix.shape[0]
    ea = fwd.embed(fwd.params, ids_a[None])[0]
    eb = fwd.embed(fwd.params, ids_b[None])[0]
    ea = jnp.concatenate([prefix, ea[s:]])
    eb = jnp.concatenate([prefix, eb[s:]])
    return _span_lp(fwd, ea, ids_a, mask_a) - _span_lp(fwd, eb, ids_b, mask_b)


@pytest.mark.parametrize("name", ["gemma", "gpt2"])
def test_grad_l2_is_the_norm_of_the_gradient_of_the_difference(request: Any, name: str) -> None:
    """Grad L2 against central finite differences of f = lp(A) - lp(B), in float64 numpy terms:
    the directional derivative along each unit vector of the shared prefix embedding."""
    fwd: LMForward = request.getfixturevalue(name)
    ids, mask, b, s = _case()
    ids_a, ids_b, s2, b_mask = C.contrast_sequences(ids, mask, b)
    assert s2 == s and ids_b.tolist() == ids[:s].tolist() + b.tolist()
    got = C.contrast_salience(fwd, ids, mask, b, methods=("grad_l2", "grad_dot_input"))
    prefix = np.asarray(fwd.embed(fwd.params, ids[None])[0][:s], np.float64)
    f = jax.jit(lambda p: _f(fwd, p.astype(jnp.float32), ids_a, mask, ids_b, b_mask))
    eps = 1e-2
    d = prefix.shape[1]
    for j in (0, 3, 7, s - 1):
        fd = np.zeros(d)
        for k in range(d):
            up, down = prefix.copy(), prefix.copy()
            up[j, k] += eps
            down[j, k] -= eps
            fd[k] = (float(f(up)) - float(f(down))) / (2 * eps)
        norm = np.linalg.norm(fd)
        np.testing.assert_allclose(got["grad_l2"][j], norm, rtol=2e-2, atol=2e-4)
        np.testing.assert_allclose(got["grad_dot_input"][j], fd @ prefix[j],
                                   atol=2e-2 * norm * np.linalg.norm(prefix[j]) + 2e-4)
    # and against autodiff of the unpadded reference, tightly, at every prefix position
    exact = np.asarray(jax.grad(lambda p: _f(fwd, p, ids_a, mask, ids_b, b_mask))(
        jnp.asarray(prefix, jnp.float32)))
    np.testing.assert_allclose(got["grad_l2"][:s], np.linalg.norm(exact, axis=-1), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(got["grad_dot_input"][:s], np.sum(exact * prefix, -1), rtol=1e-3,
                               atol=1e-5)
    # the log-probs reported are the two sequences' span log-probs
    ea = fwd.embed(fwd.params, ids_a[None])[0]
    eb = fwd.embed(fwd.params, ids_b[None])[0]
    np.testing.assert_allclose(got["log_prob"], float(_span_lp(fwd, ea, ids_a, mask)), rtol=1e-5)
    np.testing.assert_allclose(got["log_prob_contrast"],
                               float(_span_lp(fwd, eb, ids_b, b_mask)), rtol=1e-5)
    assert float(f(prefix)) == pytest.approx(float(got["log_prob"] - got["log_prob_contrast"]),
                                             rel=1e-4, abs=1e-5)


def test_grad_l2_is_not_a_difference_of_norms(gemma: LMForward) -> None:
    ids, mask, b, s = _case()
    _, ids_b, _, b_mask = C.contrast_sequences(ids, mask, b)
    got = C.contrast_salience(gemma, ids, mask, b, methods=("grad_l2",))
    a = K.span_salience(gemma, ids, mask, methods=("grad_l2",))
    bb = K.span_salience(gemma, ids_b, b_mask, methods=("grad_l2",))
    assert not np.allclose(got["grad_l2"][:s], np.abs(a["grad_l2"][:s] - bb["grad_l2"][:s]),
                           rtol=1e-2)
    # triangle inequality: ||gA - gB|| <= ||gA|| + ||gB||
    assert np.all(got["grad_l2"][:s] <= a["grad_l2"][:s] + bb["grad_l2"][:s] + 1e-6)


@pytest.mark.parametrize("name", ["gemma", "gpt2"])
@pytest.mark.parametrize("baseline", ["zero", 0])
def test_grad_dot_input_and_ig_are_differences_of_plain_attributions(
        request: Any, name: str, baseline: Any) -> None:
    """Linearity: contrastive Grad.Input and IG on the shared prefix = plain(A) - plain(B) with
    the same steps and baseline; from the span on, plain(A) alone."""
    fwd: LMForward = request.getfixturevalue(name)
    ids, mask, b, s = _case()
    _, ids_b, _, b_mask = C.contrast_sequences(ids, mask, b)
    methods = ("grad_dot_input", "integrated_gradients")
    kw = {"methods": methods, "ig_steps": 6, "ig_baseline": baseline}
    got = C.contrast_salience(fwd, ids, mask, b, ig_batch_size=4, ig_steps_per_call=4, **kw)
    a = K.span_salience(fwd, ids, mask, **kw)
    bb = K.span_salience(fwd, ids_b, b_mask, **kw)
    for m in methods:
        scale = np.abs(a[m]).max()
        np.testing.assert_allclose(got[m][:s], a[m][:s] - bb[m][:s], atol=2e-5 * scale + 1e-7)
        np.testing.assert_allclose(got[m][s:], a[m][s:], atol=2e-5 * scale + 1e-7)
    assert got["grad_dot_input"].shape == (20,)
    assert float(got["log_prob"]) == pytest.approx(float(a["log_prob"]), rel=1e-5)
    assert float(got["log_prob_contrast"]) == pytest.approx(float(bb["log_prob"]), rel=1e-5)


def test_ig_only_and_pieces_give_the_same_numbers(gemma: LMForward) -> None:
    ids, mask, b, _ = _case()
    one = C.contrast_salience(gemma, ids, mask, b, methods=("integrated_gradients",), ig_steps=8,
                              ig_batch_size=8)
    seen: list[float] = []
    many = C.contrast_salience(gemma, ids, mask, b, methods=("integrated_gradients",),
                               ig_steps=8, ig_batch_size=2, ig_steps_per_call=2,
                               progress=lambda f, _m: seen.append(f))
    np.testing.assert_allclose(one["integrated_gradients"], many["integrated_gradients"],
                               rtol=1e-4, atol=1e-6)
    assert seen == [0.25, 0.5, 0.75, 1.0]
    assert K.compile_count(gemma, "contrast") >= 2


def test_bad_inputs_are_explained(gemma: LMForward) -> None:
    ids, mask, b, _ = _case()
    gap = mask.copy()
    gap[14] = False
    gap[16] = True
    with pytest.raises(ValueError, match="contiguous"):
        C.contrast_salience(gemma, ids, gap, b)
    first = np.zeros(20, bool)
    first[0] = True
    with pytest.raises(ValueError, match="position 0"):
        C.contrast_salience(gemma, ids, first, b)
    with pytest.raises(ValueError, match="at least one"):
        C.contrast_salience(gemma, ids, mask, np.zeros((0,), np.int32))
    with pytest.raises(ValueError, match="selects no token"):
        C.contrast_salience(gemma, ids, np.zeros(20, bool), b)
