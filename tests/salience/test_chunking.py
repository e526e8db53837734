"""No cliffs: length buckets, target chunks and IG alpha batches sized to the work; compile
counts across sweeps; results identical across buckets and chunkings; padding reported; memory
planning and out-of-memory retries."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.salience import kernels as K  # noqa: E402
from promptlit.salience import memory  # noqa: E402
from promptlit.salience.forward import LMForward, lm_forward  # noqa: E402

pytestmark = pytest.mark.slow
VOCAB = 61
TOL = {"rtol": 2e-5, "atol": 2e-6}


@pytest.fixture(scope="module")
def lm() -> Any:
    keras.utils.set_random_seed(21)
    bb = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=16, intermediate_dim=32, head_dim=8, final_logit_soft_cap=5.0,
    )
    model = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
    rng = np.random.default_rng(3)
    for v in model.weights:
        v.assign(np.asarray(v.value) + 0.05 * rng.standard_normal(v.shape).astype(v.dtype))
    return model


@pytest.fixture
def fwd(lm: Any) -> LMForward:
    """A fresh split (empty compile cache) per test, so compile counts start at zero."""
    return lm_forward(lm)


def _ids(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB, size=n).astype(np.int32)


def _paddings(caplog: pytest.LogCaptureFixture, kernel: str) -> list[K.Padding]:
    return [r.padding for r in caplog.records
            if hasattr(r, "padding") and r.padding.kernel == kernel]


def test_ladder_and_near_equal_splits() -> None:
    assert [K.ladder_up(x) for x in (1, 7, 8, 9, 11, 16, 17, 23, 24, 25, 33, 100)] == [
        1, 7, 8, 10, 12, 16, 20, 24, 24, 28, 40, 112]  # fmt: skip
    assert K.split_evenly(23, 32) == (24, 1)  # the case: not 32
    assert K.split_evenly(40, 32) == (20, 2)  # near-equal, not 32 + 8 (padded to 64)
    assert K.split_evenly(6, 4) == (3, 2)  # IG alphas: 3 + 3, not 4 + 4
    assert K.split_evenly(16, 4) == (4, 4) and K.split_evenly(1, 32) == (1, 1)
    for most in range(1, 65):
        for total in range(1, 400):
            width, count = K.split_evenly(total, most)
            assert width <= most and count == -(-total // most) and count * width >= total
            assert (count * width - total) / (count * width) <= 0.25  # the 3 = 2 + 1 case
    # At most 16 distinct widths (compiles per bucket) for any number of targets, chunks <= 32.
    assert len({K.split_evenly(t, 32)[0] for t in range(1, 257)}) == 16


def test_compiles_are_bounded_across_a_length_sweep(fwd: LMForward) -> None:
    """One compile per bucket: sequence_log_probs over N = 2..1100 and span salience over
    N = 40..1100 compile exactly once per distinct bucket (25 buckets up to 1100)."""
    lengths = list(range(2, 1101, 13))
    for n in lengths:
        K.sequence_log_probs(fwd, _ids(n))
    buckets = {K.bucket_length(n) for n in lengths}
    assert fwd.cache[("sequence_log_probs",)]._cache_size() == len(buckets) == 25
    lengths = list(range(40, 1101, 97))
    for n in lengths:
        tmask = np.zeros(n, bool)
        tmask[-5:] = True
        K.span_salience(fwd, _ids(n, 1), tmask, methods=("grad_l2",))
        K.span_salience(fwd, _ids(n, 2), tmask, methods=("grad_l2",))  # cached: no compile
    assert K.compile_count(fwd, "span") == len({K.bucket_length(n) for n in lengths}) == 11


def test_target_chunks_sized_to_t_compile_per_width_and_agree(
        fwd: LMForward, caplog: pytest.LogCaptureFixture) -> None:
    """At fixed N, any T gives the same rows as a chunk-of-1 reference; one compile per
    distinct chunk width; T = 23 runs as one chunk of 24 (1 padded row, not 9)."""
    n = 70
    ids = _ids(n, 3)
    ref = K.salience_matrix(fwd, ids, np.arange(1, n), chunk_size=1)
    before = K.compile_count(fwd, "matrix")
    ts = (1, 3, 8, 9, 16, 17, 23, 33, 40, 64)
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    for t in ts:
        got = K.salience_matrix(fwd, ids, np.arange(n - t, n), chunk_size=32)
        for m in ("grad_l2", "grad_dot_input"):
            np.testing.assert_allclose(got[m], ref[m][n - 1 - t:], **TOL)
    widths = [K.split_evenly(t, 32)[0] for t in ts]
    assert widths == [1, 3, 8, 10, 16, 20, 24, 20, 20, 32]
    assert K.compile_count(fwd, "matrix") == len(set(widths)) == 8  # width 1: the reference's
    assert before == 1
    pads = {p.rows: p for p in _paddings(caplog, "salience_matrix")}
    assert (pads[23].width, pads[23].row_slots) == (24, 24)
    assert (pads[40].width, pads[40].row_slots, pads[40].row_waste) == (20, 40, 0.0)
    assert (pads[33].row_slots, pads[64].row_slots) == (40, 64)
    assert all(p.bucket == 96 and p.tokens == n for p in pads.values())


def test_results_do_not_depend_on_the_bucket(fwd: LMForward, monkeypatch: Any) -> None:
    """Span gradients, IG and the matrix, unpadded vs padded to the default bucket (27 padded
    positions, bucket 64): identical to float tolerance (the padding mask works)."""
    n = 37
    ids = _ids(n, 4)
    tmask = np.zeros(n, bool)
    tmask[30:35] = True
    methods = ("grad_l2", "grad_dot_input", "integrated_gradients")

    def run() -> dict[str, np.ndarray]:
        span = K.span_salience(fwd, ids, tmask, methods=methods, ig_steps=6, ig_batch_size=3)
        mat = K.salience_matrix(fwd, ids, np.arange(25, n), methods=methods, ig_steps=4,
                                chunk_size=5)
        return {**{f"span_{k}": v for k, v in span.items()},
                **{f"matrix_{k}": v for k, v in mat.items()},
                "lp": K.sequence_log_probs(fwd, ids)}

    default = run()
    for bucket in (lambda m, max_positions=None: m,):  # no padding vs the default bucket (64)
        monkeypatch.setattr(K, "bucket_length", bucket)
        other = run()
        for key, value in default.items():
            np.testing.assert_allclose(other[key], value, err_msg=key, **TOL)
    assert np.abs(default["span_integrated_gradients"]).max() > 1e-3


def test_learned_positions_cap_the_bucket(monkeypatch: Any) -> None:
    """A GPT-2 with 40 learned positions: N = 35 (default bucket 64) pads only to 40, so every
    kernel runs (a bucket past the position table cannot be embedded) and agrees with the
    unpadded run; `lm_forward` reads the limit from the backbone (None for rotary models)."""
    keras.utils.set_random_seed(5)
    bb = keras_hub.models.GPT2Backbone(vocabulary_size=VOCAB, num_layers=2, num_heads=2,
                                       hidden_dim=16, intermediate_dim=32,
                                       max_sequence_length=40)
    causal_lm = keras_hub.models.GPT2CausalLM(backbone=bb, preprocessor=None)
    gpt2 = lm_forward(causal_lm)
    assert gpt2.max_positions == 40
    n = 35
    ids = _ids(n, 8)
    tmask = np.zeros(n, bool)
    tmask[28:33] = True
    methods = ("grad_l2", "grad_dot_input", "integrated_gradients")

    def run(fwd: LMForward) -> dict[str, np.ndarray]:
        span = K.span_salience(fwd, ids, tmask, methods=methods, ig_steps=4)
        mat = K.salience_matrix(fwd, ids, np.arange(30, n), methods=methods[:2])
        batch = K.salience_matrix_batch(fwd, [ids, ids[:20]], [np.arange(30, n), [19]],
                                        methods=methods[:2])
        return {**{f"span_{k}": v for k, v in span.items()},
                **{f"matrix_{k}": v for k, v in mat.items()},
                **{f"batch_{k}": v for k, v in batch[0].items()},
                "lp": K.sequence_log_probs(fwd, ids)}

    capped = run(gpt2)
    monkeypatch.setattr(K, "bucket_length", lambda m, max_positions=None: m)
    unpadded = run(lm_forward(causal_lm))  # fresh compile cache: really unpadded
    for key, value in capped.items():
        np.testing.assert_allclose(value, unpadded[key], err_msg=key, **TOL)


def test_rotary_models_have_no_position_limit(fwd: LMForward) -> None:
    assert fwd.max_positions is None


def test_ig_alpha_batches_are_near_equal(fwd: LMForward,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """6 steps with ig_batch_size=4 run as 2 batches of 3 (no padded step), and agree with
    batches of 1 and of 6; 10 steps as 3 batches of 4 (2 padded steps)."""
    n = 24
    ids = _ids(n, 5)
    tmask = np.zeros(n, bool)
    tmask[18:22] = True
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    ig = "integrated_gradients"
    out = {b: K.span_salience(fwd, ids, tmask, methods=(ig,), ig_steps=6, ig_batch_size=b)[ig]
           for b in (4, 1, 6)}
    np.testing.assert_allclose(out[4], out[1], **TOL)
    np.testing.assert_allclose(out[4], out[6], **TOL)
    K.span_salience(fwd, ids, tmask, methods=(ig,), ig_steps=10, ig_batch_size=4)
    pads = _paddings(caplog, "span_salience")
    assert [(p.ig_steps, p.ig_batch, p.ig_slots) for p in pads] == [
        (6, 3, 6), (6, 1, 6), (6, 6, 6), (10, 4, 12)]


def test_padding_is_logged_in_words(fwd: LMForward, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    ids = _ids(140, 6)
    K.salience_matrix(fwd, ids, np.arange(117, 140), chunk_size=32)
    (pad,) = _paddings(caplog, "salience_matrix")
    assert (pad.tokens, pad.bucket, pad.rows, pad.row_slots, pad.width, pad.calls) == (
        140, 160, 23, 24, 24, 1)
    text = pad.describe()
    assert text.startswith("salience_matrix: N=140 in bucket 160 (20 padded positions, 12%); "
                           "T=23 targets in chunks of 24 (1 padded row, 4%); 1 call")
    assert "GB working memory" in text
    assert any(r.getMessage() == text for r in caplog.records)


def _flaky(monkeypatch: Any, kernel: str, too_wide: int) -> list[int]:
    """Executables of `kernel` wider than `too_wide` raise XLA's out-of-memory error."""
    real = K._executable
    tried: list[int] = []

    class OutOfMemory:
        def __init__(self, exe: Any) -> None:
            self.exe = exe

        def memory_analysis(self) -> Any:
            return self.exe.memory_analysis()

        def __call__(self, *args: Any) -> Any:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                               "1.00GiB.")

    def executable(fwd: LMForward, key: tuple[Any, ...], build: Any, args: Any) -> Any:
        exe = real(fwd, key, build, args)
        if key[0] != kernel:
            return exe
        width = key[2] if kernel == "matrix" else args[5].shape[1]
        tried.append(width)
        return OutOfMemory(exe) if width > too_wide else exe

    monkeypatch.setattr(K, "_executable", executable)
    return tried


def test_out_of_memory_halves_the_chunk_and_retries(
        fwd: LMForward, monkeypatch: Any, caplog: pytest.LogCaptureFixture) -> None:
    n = 40
    ids = _ids(n, 7)
    targets = np.arange(24, n)
    tmask = np.zeros(n, bool)
    tmask[30:36] = True
    ig = "integrated_gradients"
    ref = K.salience_matrix(fwd, ids, targets, chunk_size=16)
    ref_ig = K.span_salience(fwd, ids, tmask, methods=(ig,), ig_steps=8, ig_batch_size=8,
                             ig_steps_per_call=4)
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    _flaky(monkeypatch, "matrix", too_wide=4)
    got = K.salience_matrix(fwd, ids, targets, chunk_size=16)
    for m in ref:
        np.testing.assert_allclose(got[m], ref[m], **TOL)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["salience_matrix: out of memory with 16 targets per chunk; retrying with 8",
                        "salience_matrix: out of memory with 8 targets per chunk; retrying with 4"]
    (pad,) = _paddings(caplog, "salience_matrix")
    assert (pad.width, pad.retries, pad.calls) == (4, 2, 1)

    # IG: the failed piece is redone with half the alphas per batch; progress stays monotone and
    # the sum is still exactly the Riemann sum over all 8 steps.
    caplog.clear()
    _flaky(monkeypatch, "span", too_wide=2)
    seen: list[float] = []
    got_ig = K.span_salience(fwd, ids, tmask, methods=(ig,), ig_steps=8, ig_batch_size=8,
                             ig_steps_per_call=4, progress=lambda f, _: seen.append(f))
    np.testing.assert_allclose(got_ig[ig], ref_ig[ig], **TOL)
    assert seen == [0.5, 1.0]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "span_salience: out of memory with 8 alphas per batch; retrying with 4",
        "span_salience: out of memory with 4 alphas per batch; retrying with 2"]

    _flaky(monkeypatch, "matrix", too_wide=0)
    with pytest.raises(MemoryError, match="even with 1 of the targets per chunk.*promptlit plan"):
        K.salience_matrix(fwd, ids, targets, chunk_size=2)


def test_planned_width_fits_the_budget(fwd: LMForward, monkeypatch: Any,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """With chunk_size=None the widest chunk is compiled and checked against the budget first;
    a small budget gives a narrower chunk whose compiled activations fit; results agree."""
    n = 90
    ids = _ids(n, 8)
    targets = np.arange(58, n)  # 32 targets: the CPU maximum, one chunk
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    wide = K.salience_matrix(fwd, ids, targets)
    (pad,) = _paddings(caplog, "salience_matrix")
    assert pad.width == K.MAX_CHUNK["cpu"] == 32 and pad.budget_bytes is not None
    need_1 = memory.activation_bytes(K._executable(
        fwd, ("matrix", ("grad_l2", "grad_dot_input"), 1, None),
        lambda: K._matrix_fn(fwd, ("grad_l2", "grad_dot_input"), 1, "zero"),
        (fwd.params, np.zeros(96, np.int32), np.zeros(96, bool), np.zeros(97, np.int32),
         np.int32(0), None, None)))
    assert need_1 is not None and pad.activation_bytes is not None
    budget = (need_1 + pad.activation_bytes) // 2
    monkeypatch.setattr(memory, "budget_bytes", lambda device=None: budget)
    caplog.clear()
    narrow = K.salience_matrix(fwd, ids, targets)
    (pad,) = _paddings(caplog, "salience_matrix")
    assert 1 < pad.width < 32 and pad.activation_bytes <= budget
    wide_need = _need(fwd, 32)
    assert wide_need > budget
    assert pad.width <= memory.fit_width(32, 32, need_1, wide_need, budget)
    for m in wide:
        np.testing.assert_allclose(narrow[m], wide[m], **TOL)
    monkeypatch.setattr(memory, "budget_bytes", lambda device=None: need_1 // 2)
    caplog.clear()
    K.salience_matrix(fwd, ids, targets)
    assert any("even with 1 of the targets per chunk" in r.getMessage() for r in caplog.records)


def _need(fwd: LMForward, width: int) -> int:
    key = ("matrix", ("grad_l2", "grad_dot_input"), width, None)
    (exe,) = [v for k, v in fwd.cache.items() if k[:5] == ("exe", *key)]
    need = memory.activation_bytes(exe)
    assert need is not None
    return need


def test_lm_forward_knows_the_attention_heads(fwd: LMForward) -> None:
    assert fwd.attention_heads == 2  # the fixture's num_query_heads


@pytest.mark.parametrize(("bucket", "most", "per_row", "want"), [
    (64, 32, 1, 32),      # 2 heads x 64^2 x 4 B = 32 KiB per row: 128 fit 4 MiB; 32 at most
    (160, 32, 1, 20),     # 200 KiB per row: 20 fit
    (704, 32, 1, 1),      # 3.8 MiB per row: one
    (1152, 32, 1, 1),     # 10 MiB per row: still one, never zero
    (320, 32, 2, 2),      # an IG matrix row holds its 2 alphas: 1.6 MiB per target row
])
def test_cpu_batches_keep_the_attention_probabilities_cache_sized(
        fwd: LMForward, bucket: int, most: int, per_row: int, want: int) -> None:
    """On a CPU a wider vmapped batch spills the per-layer `heads x N^2` probabilities out of
    the caches and costs more per row (GPT-2, N = 1100, T = 23: 12.5 s at width 1, 16.0 s at
    24): the planned width is narrowed to fit `CPU_ATTENTION_BYTES`."""
    assert memory.platform() == "cpu"
    assert K.CPU_ATTENTION_BYTES == 4 << 20
    assert K.cache_width(fwd, bucket, most, per_row=per_row) == want


def test_planned_chunks_and_alpha_batches_follow_the_cache_width(
        fwd: LMForward, monkeypatch: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The default (planned) widths of the matrix, the IG matrix and the IG span narrow with the
    cache cap, and the numbers stay those of the wide batch."""
    ids, pos = _ids(150, 8), np.arange(130, 150)  # bucket 160
    tmask = np.zeros(150, bool)
    tmask[130:] = True
    wide = K.salience_matrix(fwd, ids, pos, chunk_size=20)
    wide_ig = K.span_salience(fwd, ids, tmask, methods=("integrated_gradients",), ig_steps=8,
                              ig_batch_size=4)
    per_row = 2 * 160 * 160 * 4  # heads x bucket^2 x float32
    monkeypatch.setattr(K, "CPU_ATTENTION_BYTES", 5 * per_row)
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    got = K.salience_matrix(fwd, ids, pos)
    got_ig = K.span_salience(fwd, ids, tmask, methods=("integrated_gradients",), ig_steps=8)
    K.salience_matrix(fwd, ids, pos, methods=("integrated_gradients",), ig_steps=4,
                      ig_batch_size=2)
    (grad, ig_matrix) = _paddings(caplog, "salience_matrix")
    (span,) = _paddings(caplog, "span_salience")
    assert (grad.width, grad.calls) == (5, 1)   # 20 targets: 4 chunks of 5 in one call
    assert ig_matrix.width == 2                  # 5 // 2 alphas per target row
    assert span.ig_batch == 4                    # MAX_IG_BATCH on a CPU, within the cap
    for m in ("grad_l2", "grad_dot_input"):
        np.testing.assert_allclose(got[m], wide[m], **TOL)
    np.testing.assert_allclose(got_ig["integrated_gradients"],
                               wide_ig["integrated_gradients"], **TOL)
    monkeypatch.setattr(K, "CPU_ATTENTION_BYTES", per_row)  # one alpha per batch fits
    caplog.clear()
    K.span_salience(fwd, ids, tmask, methods=("integrated_gradients",), ig_steps=8)
    (span,) = _paddings(caplog, "span_salience")
    assert span.ig_batch == 1


def test_batched_ig_matrix_counts_its_alphas_in_the_cache_width(
        fwd: LMForward, monkeypatch: Any, caplog: pytest.LogCaptureFixture) -> None:
    """`salience_matrix_batch` runs `rows x alpha batch` sequences per target: with room for 8
    sequences' attention probabilities, 2 rows of the IG matrix (4 alphas each) plan chunks of
    1 target, the gradient matrix chunks of 4; the numbers stay those of a wide run."""
    seqs = [_ids(150, 9), _ids(140, 10)]  # bucket 160
    targets = [np.arange(140, 150), np.arange(130, 140)]
    ig = ("integrated_gradients",)
    wide = K.salience_matrix_batch(fwd, seqs, targets, methods=ig, ig_steps=4, chunk_size=10)
    per_seq = 2 * 160 * 160 * 4  # heads x bucket^2 x float32
    monkeypatch.setattr(K, "CPU_ATTENTION_BYTES", 8 * per_seq)
    caplog.set_level(logging.DEBUG, logger="promptlit.salience.kernels")
    got = K.salience_matrix_batch(fwd, seqs, targets, methods=ig, ig_steps=4)
    K.salience_matrix_batch(fwd, seqs, targets)
    (ig_pad, grad_pad) = _paddings(caplog, "salience_matrix")
    assert (ig_pad.ig_batch, ig_pad.width) == (4, 1)
    assert grad_pad.width == 4
    for a, b in zip(got, wide, strict=True):
        np.testing.assert_allclose(a[ig[0]], b[ig[0]], **TOL)
