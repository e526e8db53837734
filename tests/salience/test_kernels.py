"""Salience kernels: exact against plain `jax.grad`, finite differences, linearity, completeness."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.salience import kernels as K  # noqa: E402
from promptlit.salience.forward import LMForward, lm_forward  # noqa: E402

pytestmark = pytest.mark.slow
VOCAB = 61


def _perturb(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "float" in str(v.dtype):
            v.assign(np.asarray(v.value) + 0.05 * rng.standard_normal(v.shape).astype(v.dtype))


@pytest.fixture(scope="session")
def gemma() -> tuple[Any, LMForward]:
    keras.utils.set_random_seed(11)
    bb = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
        final_logit_soft_cap=5.0,
    )
    lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
    _perturb(lm, 1)
    return lm, lm_forward(lm)


@pytest.fixture(scope="session")
def gpt2() -> tuple[Any, LMForward]:
    keras.utils.set_random_seed(12)
    bb = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
    )
    lm = keras_hub.models.GPT2CausalLM(backbone=bb, preprocessor=None)
    _perturb(lm, 2)
    # Unit-scale token embeddings, so tokens (not just positions) drive the predictions.
    table = bb.token_embedding.embeddings
    table.assign(np.random.default_rng(9).standard_normal(table.shape).astype("float32"))
    return lm, lm_forward(lm)


def _ids(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB, size=n).astype(np.int32)


def _lp(fwd: LMForward, params: Any, e: Any, ids: Any) -> Any:
    """Unpadded reference: `<float>[N, D] -> <float>[N]` token log-probs, no buckets."""
    logits = fwd.logits(params, e[None], jnp.ones((1, ids.shape[0]), bool))[0]
    return K._token_log_probs(logits, jnp.asarray(ids))


@pytest.mark.parametrize("platform", ["cpu", "gpu"])
def test_bucket_length(platform: str) -> None:
    """Multiples of 32 up to 512, then 8 buckets per octave (N = 140 -> 160, not 256); on a CPU
    the exact powers of two from 512 up are skipped (slow there: 1024 costs ~25 % more than
    1056), accelerators keep them."""
    ns = (1, 32, 33, 140, 200, 256, 257, 320, 481, 512, 513, 545, 1000, 1024, 1025, 1057, 2049,
          2081, 8192)
    want = {
        "cpu": [32, 32, 64, 160, 224, 256, 288, 320, 544, 544, 544, 576, 1056, 1056, 1056, 1152,
                2080, 2304, 8224],
        "gpu": [32, 32, 64, 160, 224, 256, 288, 320, 512, 512, 576, 576, 1024, 1024, 1152, 1152,
                2304, 2304, 8192],
    }  # fmt: skip
    assert [K.bucket_length(n, platform=platform) for n in ns] == want[platform]
    ns = np.arange(1, 8193)
    buckets = np.array([K.bucket_length(int(n), platform=platform) for n in ns])
    assert np.all(buckets >= ns) and np.all(np.diff(buckets) >= 0)
    assert np.all(buckets % 32 == 0)
    distinct = set(buckets.tolist())
    powers = {512, 1024, 2048, 4096, 8192}
    assert (powers & distinct) == (set() if platform == "cpu" else powers)
    assert len(set(buckets[ns <= 1100].tolist())) == 25 and len(distinct) == 48
    big = ns > 256
    pad, step = (63 / 544, 17 / 15) if platform == "cpu" else (1 / 9, 1.125)  # N = 481; 480->544
    assert ((buckets - ns) / buckets)[big].max() <= pad + 1e-12
    steps = sorted(set(buckets[big].tolist()))
    assert max(b / a for a, b in zip(steps, steps[1:], strict=False)) <= step + 1e-12
    assert K.bucket_length(1000) == 1056  # these tests run on a CPU: the default platform's


def test_bucket_length_respects_the_position_limit() -> None:
    """A model with learned positions (GPT-2: 1024) never gets a bucket past them: N = 1000
    pads to 1024 there (not 1056), N = 500 with 520 positions to 520; a limit above the bucket
    changes nothing, and a sequence longer than the limit keeps its own bucket (the model's
    error then names the limit)."""
    cpu = functools.partial(K.bucket_length, platform="cpu")
    assert cpu(1000, max_positions=1024) == 1024
    assert cpu(1024, max_positions=1024) == 1024
    assert cpu(500, max_positions=520) == 520
    assert cpu(1000, max_positions=4096) == 1056
    assert cpu(140, max_positions=1024) == 160
    assert cpu(1100, max_positions=1024) == 1152
    assert K.bucket_length(30, max_positions=40, platform="gpu") == 32
    assert K.bucket_length(35, max_positions=40, platform="gpu") == 40


def test_sequence_log_probs_match_model(gemma: tuple[Any, LMForward]) -> None:
    lm, fwd = gemma
    ids = _ids(21)
    got = K.sequence_log_probs(fwd, ids)
    logits = np.asarray(lm({"token_ids": ids[None], "padding_mask": np.ones((1, 21), "int32")}))[0]
    mx = logits.max(-1, keepdims=True)
    lsm = logits - mx - np.log(np.exp(logits - mx).sum(-1, keepdims=True))
    expected = np.concatenate([[0.0], lsm[np.arange(20), ids[1:]]])
    assert got.dtype == np.float32 and got.shape == (21,)
    assert np.abs(got - expected).max() < 1e-5


def test_span_gradients_match_plain_grad(gemma: tuple[Any, LMForward]) -> None:
    """Bucketing, the hidden/head split and the shifted weights change nothing."""
    _, fwd = gemma
    ids = _ids(27, seed=1)
    tmask = np.zeros(27, bool)
    tmask[[15, 16, 17, 22]] = True
    got = K.span_salience(fwd, ids, tmask, methods=("grad_l2", "grad_dot_input"))
    e = fwd.embed(fwd.params, ids[None])[0]
    g = jax.grad(lambda x: jnp.sum(_lp(fwd, fwd.params, x, ids) * tmask))(e)
    np.testing.assert_allclose(got["grad_l2"], np.linalg.norm(g, axis=-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["grad_dot_input"], np.sum(g * e, -1), rtol=1e-5, atol=1e-6)
    lp = _lp(fwd, fwd.params, e, ids)
    assert abs(float(got["log_prob"]) - float(jnp.sum(lp * tmask))) < 1e-5
    # Tokens after the last target cannot matter (causal model).
    assert np.all(got["grad_l2"][23:] == 0.0)
    assert set(got) == {"grad_l2", "grad_dot_input", "log_prob"}


def test_matrix_rows_match_per_target_gradients_n320(gemma: tuple[Any, LMForward]) -> None:
    """Regression (jax 0.10): jit(vmap(vjp)) with weights as arguments gave wrong rows at N=320."""
    _, fwd = gemma
    n = 320
    ids = _ids(n, seed=2)
    targets = np.array([1, 7, 100, 199, 250, 300, 318, 319])
    got = K.salience_matrix(fwd, ids, targets, chunk_size=3)  # 3 chunks, the last one partial
    assert got["grad_l2"].shape == (8, n) and got["grad_l2"].dtype == np.float32

    @jax.jit
    def one_target(params: Any, ids: Any, t: Any) -> tuple[Any, Any]:
        e = fwd.embed(params, ids[None])[0]
        g = jax.grad(lambda x: _lp(fwd, params, x, ids)[t])(e)
        return jnp.linalg.norm(g, axis=-1), jnp.sum(g * e, -1)

    worst = 0.0
    for row, t in enumerate(targets):
        l2, gxi = one_target(fwd.params, ids, t)
        np.testing.assert_allclose(got["grad_l2"][row], l2, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["grad_dot_input"][row], gxi, rtol=1e-4, atol=1e-6)
        worst = max(worst, float(np.abs(got["grad_l2"][row] - l2).max()))
        assert np.all(got["grad_l2"][row, t:] == 0.0)  # causal: nothing at or after t
    print(f"N=320 max |matrix row - per-target grad| (grad_l2) = {worst:.2e}")


def test_span_is_sum_of_matrix_rows(gemma: tuple[Any, LMForward]) -> None:
    """Grad.Input and IG are linear in the objective: span score == sum of its rows."""
    _, fwd = gemma
    ids = _ids(40, seed=3)
    span = np.arange(30, 36)
    tmask = np.zeros(40, bool)
    tmask[span] = True
    methods = ("grad_dot_input", "integrated_gradients")
    s = K.span_salience(fwd, ids, tmask, methods=methods, ig_steps=8, ig_batch_size=3)
    m = K.salience_matrix(fwd, ids, np.arange(25, 40), methods=methods, ig_steps=8, chunk_size=4)
    rows = span - 25
    for method in methods:
        diff = np.abs(m[method][rows].sum(0) - s[method]).max()
        assert diff < 1e-5 * max(1.0, np.abs(s[method]).max()), (method, diff)


def test_ig_completeness_gpt2_zero_baseline(gpt2: tuple[Any, LMForward]) -> None:
    """sum_j IG_j ~ log p(span | e) - log p(span | 0) within 2% at m = 64 (midpoint rule)."""
    _, fwd = gpt2
    ids = _ids(24, seed=4)
    tmask = np.zeros(24, bool)
    tmask[14:20] = True
    s = K.span_salience(fwd, ids, tmask, methods=("integrated_gradients",), ig_steps=64)
    e = fwd.embed(fwd.params, ids[None])[0]
    delta = float(s["log_prob"]) - float(
        jnp.sum(_lp(fwd, fwd.params, jnp.zeros_like(e), ids) * tmask)
    )
    total = float(s["integrated_gradients"].sum())
    print(f"GPT-2 IG completeness: sum={total:.5f} delta={delta:.5f}")
    assert abs(delta) > 0.05
    assert abs(total - delta) <= 0.02 * abs(delta)


def test_ig_completeness_gemma_token_baseline(gemma: tuple[Any, LMForward]) -> None:
    """Same on Gemma with a token baseline (the all-zero baseline is RMSNorm's 0/0 point)."""
    _, fwd = gemma
    ids = _ids(24, seed=5)
    tmask = np.zeros(24, bool)
    tmask[12:18] = True
    s = K.span_salience(fwd, ids, tmask, ig_steps=64, ig_baseline=0, ig_batch_size=16)
    b = fwd.embed(fwd.params, np.zeros((1, 24), np.int32))[0]
    delta = float(s["log_prob"]) - float(jnp.sum(_lp(fwd, fwd.params, b, ids) * tmask))
    total = float(s["integrated_gradients"].sum())
    print(f"Gemma IG completeness: sum={total:.5f} delta={delta:.5f}")
    assert abs(delta) > 0.05
    assert abs(total - delta) <= 0.02 * abs(delta)


def test_compiles_once_per_bucket(gemma: tuple[Any, LMForward]) -> None:
    _, fwd = gemma
    K.sequence_log_probs(fwd, _ids(5))
    run = fwd.cache[("sequence_log_probs",)]
    before = run._cache_size()
    for n in (100, 110, 127):  # all in the 128 bucket
        K.sequence_log_probs(fwd, _ids(n))
    assert fwd.cache[("sequence_log_probs",)] is run
    assert run._cache_size() == before + 1


def test_ig_in_pieces_is_the_one_call_riemann_sum(gemma: tuple[Any, LMForward]) -> None:
    """IG's alpha steps split over several compiled calls sum to exactly the one-call result
    (every midpoint alpha_k is used once), and progress is reported after each piece."""
    _, fwd = gemma
    ids = _ids(20, seed=6)
    tmask = np.zeros(20, bool)
    tmask[14:18] = True
    methods = ("grad_dot_input", "integrated_gradients")
    seen: list[tuple[float, str]] = []
    pieces = K.span_salience(fwd, ids, tmask, methods=methods, ig_steps=40, ig_batch_size=4,
                             ig_steps_per_call=16, progress=lambda f, m: seen.append((f, m)))
    whole = K.span_salience(fwd, ids, tmask, methods=methods, ig_steps=40, ig_batch_size=4,
                            ig_steps_per_call=40)
    assert seen == [(0.4, "integrated gradients: 16/40 steps"),
                    (0.8, "integrated gradients: 32/40 steps"),
                    (1.0, "integrated gradients: 40/40 steps")]
    for key in (*methods, "log_prob"):
        np.testing.assert_allclose(pieces[key], whole[key], rtol=1e-5, atol=1e-6)
    assert np.abs(whole["integrated_gradients"]).max() > 1e-3
    # The full matrix too: 15 targets in pieces of 6 (3 calls) x alpha pieces of 4 (2 calls).
    seen.clear()
    targets = np.arange(5, 20)
    m_pieces = K.salience_matrix(fwd, ids, targets, methods=("grad_l2", "integrated_gradients"),
                                 ig_steps=8, chunk_size=4, ig_steps_per_call=4,
                                 targets_per_call=6, progress=lambda f, m: seen.append((f, m)))
    m_whole = K.salience_matrix(fwd, ids, targets, methods=("grad_l2", "integrated_gradients"),
                                ig_steps=8, chunk_size=4)
    fractions = [f for f, _ in seen]
    assert len(seen) == 6 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[0][1] == "salience matrix: targets 0-5 of 15, IG steps 4/8"
    for key in m_whole:
        np.testing.assert_allclose(m_pieces[key], m_whole[key], rtol=1e-5, atol=1e-6)


def test_a_raising_progress_callback_stops_ig_at_the_next_piece(
        gemma: tuple[Any, LMForward]) -> None:
    """A cancelled client: the callback raises after the first piece and no other runs."""
    from promptlit.lib.cancel import Cancelled

    _, fwd = gemma
    ids = _ids(12, seed=7)
    tmask = np.zeros(12, bool)
    tmask[9:11] = True
    seen: list[float] = []

    def cancel(fraction: float, message: str) -> None:
        seen.append(fraction)
        raise Cancelled("client disconnected")

    with pytest.raises(Cancelled, match="client disconnected"):
        K.span_salience(fwd, ids, tmask, methods=("integrated_gradients",), ig_steps=100_000,
                        ig_batch_size=4, ig_steps_per_call=8, progress=cancel)
    assert seen == [8 / 100_000]
    seen.clear()
    with pytest.raises(Cancelled):
        K.salience_matrix(fwd, ids, np.arange(2, 12), methods=("integrated_gradients",),
                          ig_steps=100_000, ig_steps_per_call=8, progress=cancel)
    assert seen == [8 / 100_000]


def test_bad_inputs_are_explained(gemma: tuple[Any, LMForward]) -> None:
    _, fwd = gemma
    ids = _ids(10)
    first = np.zeros(10, bool)
    first[0] = True
    with pytest.raises(ValueError, match="position >= 1"):
        K.span_salience(fwd, ids, first)
    with pytest.raises(ValueError, match="selects no token"):
        K.span_salience(fwd, ids, np.zeros(10, bool))
    with pytest.raises(ValueError, match="unknown salience method"):
        K.span_salience(fwd, ids, ~first, methods=("saliency",))
    with pytest.raises(ValueError, match=r"outside \[1, 10\)"):
        K.salience_matrix(fwd, ids, [0, 3])
    with pytest.raises(ValueError, match="ig_steps"):
        K.salience_matrix(fwd, ids, [3], methods=("integrated_gradients",))
    with pytest.raises(ValueError, match="ig_baseline"):
        K.span_salience(fwd, ids, ~first, ig_baseline="blur")


_FD_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    jax.config.update("jax_enable_x64", True)
    import keras, keras_hub, numpy as np, jax.numpy as jnp
    keras.config.set_floatx("float64")
    keras.utils.set_random_seed(3)
    # Keras promotes (float64, "float32") to float32 in LayerNormalization's "at least float32"
    # upcast; make that a real upcast here so the whole model runs in float64.
    import keras.src.backend as kb
    _result_type = kb.result_type
    def _promote64(*dtypes):
        if any(kb.standardize_dtype(d) == "float64" for d in dtypes if d is not None):
            return "float64"
        return _result_type(*dtypes)
    kb.result_type = _promote64
    from promptlit.salience import kernels as K
    from promptlit.salience.forward import lm_forward

    # GPT-2: every op follows the float64 policy (Gemma/Llama norms and softmax are pinned to
    # float32 inside keras-hub, which would make finite differences noisy at ~1e-2).
    bb = keras_hub.models.GPT2Backbone(
        vocabulary_size=37, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=32, dtype="float64")
    lm = keras_hub.models.GPT2CausalLM(backbone=bb, preprocessor=None)
    rng = np.random.default_rng(0)
    for v in lm.weights:
        v.assign(np.asarray(v.value) + 0.3 * rng.standard_normal(v.shape))
    fwd = lm_forward(lm)
    n = 12
    ids = rng.integers(1, 37, size=n).astype(np.int32)
    tmask = np.zeros(n, bool); tmask[[7, 8, 10]] = True
    e = np.asarray(fwd.embed(fwd.params, ids[None])[0])
    assert e.dtype == np.float64

    def lp(x):
        logits = fwd.logits(fwd.params, jnp.asarray(x)[None], jnp.ones((1, n), bool))[0]
        return np.asarray(K._token_log_probs(logits, jnp.asarray(ids)))

    def fd_grad(f, x, eps=1e-5):
        g = np.zeros_like(x)
        for j in range(x.shape[0]):
            for d in range(x.shape[1]):
                xp = x.copy(); xp[j, d] += eps
                xm = x.copy(); xm[j, d] -= eps
                g[j, d] = (f(xp) - f(xm)) / (2 * eps)
        return g

    def rel(a, b):
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    span = K.span_salience(fwd, ids, tmask, methods=("grad_l2", "grad_dot_input"))
    g = fd_grad(lambda x: float(np.sum(lp(x) * tmask)), e)
    mat = K.salience_matrix(fwd, ids, [5, 9], chunk_size=1)
    g9 = fd_grad(lambda x: float(lp(x)[9]), e)
    print(json.dumps({
        "dtype": str(span["grad_l2"].dtype),
        "span_l2": rel(span["grad_l2"], np.linalg.norm(g, axis=-1)),
        "span_gxi": rel(span["grad_dot_input"], np.sum(g * e, -1)),
        "row_l2": rel(mat["grad_l2"][1], np.linalg.norm(g9, axis=-1)),
        "row_gxi": rel(mat["grad_dot_input"][1], np.sum(g9 * e, -1)),
    }))
    """
)


def test_gradients_vs_finite_differences_float64() -> None:
    """Central differences in float64 (own process: x64 must not leak into other tests)."""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _FD_SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print("float64 finite differences, relative errors:", res)
    assert res.pop("dtype") == "float64"
    for name, err in res.items():
        assert err <= 1e-4, (name, err)
