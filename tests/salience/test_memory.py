"""Memory planning: device memory, sizes, the offline architecture table, abstract models that
allocate nothing, compile-only estimates against measured peak memory (within 25 %)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.salience import memory  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GB = memory.GB


def test_parse_size_and_available_memory() -> None:
    assert memory.parse_size("24GB") == 24 * GB
    assert memory.parse_size("80 GiB") == 80 * GB
    assert memory.parse_size("512MB") == 512 * 2**20
    assert memory.parse_size("1.5T") == int(1.5 * 2**40)
    assert memory.parse_size("16") == 16 * GB
    for bad in ("", "-3GB", "24XB", "lots"):
        with pytest.raises(ValueError, match="not a memory size"):
            memory.parse_size(bad)
    free, source = memory.available_memory()
    assert free > 0 and source
    assert 0 < memory.budget_bytes() <= free * 1.5  # free memory moves between the calls


def test_fit_width_is_the_widest_near_equal_width_under_the_chord() -> None:
    # need(w) = 100 + 10 (w - 1) on the chord between w = 1 (100) and w = 64 (730).
    assert memory.fit_width(64, 64, 100, 730, 10_000) == 64
    assert memory.fit_width(64, 64, 100, 730, 99) is None
    assert memory.fit_width(64, 64, 100, 730, 100) == 1
    assert memory.fit_width(64, 64, 100, 730, 255) == 16  # 1 + 15.5 -> 16 -> 4 chunks of 16
    assert memory.fit_width(64, 64, 100, 730, 300) == 16  # 21 fit -> 4 near-equal chunks of 16
    assert memory.fit_width(23, 24, 100, 330, 10_000) == 24


@pytest.mark.parametrize(("handle", "key"), [
    ("gemma2_instruct_9b_en", "gemma2_9b"),
    ("kaggle://keras/gemma2/keras/gemma2_27b_en/2", "gemma2_27b"),
    ("gemma_1.1_instruct_2b_en", "gemma_2b"),
    ("llama3.2_instruct_1b", "llama3.2_1b"),
    ("llama3_instruct_8b_en_int8", "llama3_8b"),
    ("gemma2_2b", "gemma2_2b"),
    ("hf://google/gemma-2-2b", None),
    ("presets/tiny_lm", None),
])
def test_architecture_names(handle: str, key: str | None) -> None:
    assert memory.architecture_key(handle) == key


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


@pytest.mark.slow
def test_abstract_models_allocate_nothing_and_have_the_published_sizes() -> None:
    """The offline table against the published parameter counts (Gemma 2 model card: 2.6B,
    9.2B, 27.2B; Llama 3 8B: 8.03B; Llama 3.2 1B: 1.24B) and the weights' bytes, while the
    process grows by far less than one model's weights (nothing is allocated)."""
    from promptlit.salience.forward import lm_forward

    published = {"gemma2_2b_en": 2.61e9, "gemma2_9b_en": 9.24e9, "gemma2_27b_en": 27.23e9,
                 "llama3_8b_en": 8.03e9, "llama3.2_1b": 1.24e9, "gemma_7b_en": 8.54e9}
    before = _rss()
    for handle, count in published.items():
        lm = memory.abstract_causal_lm(handle, dtype="bfloat16")
        fwd = lm_forward(lm)
        leaves = list(fwd.params.values())
        assert all(type(x).__name__ == "ShapeDtypeStruct" for x in leaves)
        params = sum(int(np.prod(x.shape)) for x in leaves)
        assert abs(params - count) / count < 0.01, (handle, params)
        assert memory._struct_bytes(fwd.params) == 2 * params  # bfloat16
    grown = _rss() - before
    assert grown < 1 * GB, f"the process grew by {grown / GB:.1f} GB"
    with pytest.raises(ValueError, match="no architecture known for 'mystery_7b'.*gemma2_9b"):
        memory.abstract_causal_lm("mystery_7b")


_MEASURE = textwrap.dedent(
    """
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np, keras, keras_hub, jax
    from promptlit.salience import kernels as K
    from promptlit.salience.forward import lm_forward

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))

    cfg = json.loads(sys.argv[1])
    n, t = cfg.pop("length"), cfg.pop("targets")
    keras.utils.set_random_seed(0)
    bb = keras_hub.models.GemmaBackbone(**cfg)
    lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
    fwd = lm_forward(lm)
    ids = np.random.default_rng(0).integers(1, cfg["vocabulary_size"], n).astype(np.int32)
    tmask = np.zeros(n, bool); tmask[-t:] = True
    variables = list(lm.weights)
    params = [v.value for v in variables]

    @jax.jit
    def generate(p, tok, mask):
        with keras.StatelessScope(state_mapping=list(zip(variables, p))):
            return lm.generate_step({"token_ids": tok, "padding_mask": mask}, stop_token_ids=None)

    nb = K.bucket_length(n)
    tok = np.zeros((1, nb), np.int32); tok[0, :n] = ids
    mask = np.zeros((1, nb), bool); mask[0, :n] = True
    runs = {
        "generate": lambda: np.asarray(generate(params, tok, mask)),
        "span": lambda: K.span_salience(fwd, ids, tmask, methods=("grad_l2", "grad_dot_input")),
        "matrix": lambda: K.salience_matrix(fwd, ids, np.arange(n - t, n), chunk_size=t),
        "ig": lambda: K.span_salience(fwd, ids, tmask, methods=("integrated_gradients",),
                                      ig_steps=16, ig_batch_size=4),
    }
    out, seen = {}, {}
    for name, run in runs.items():
        run()  # compile and warm up
        seen[name] = []
        for _ in range(3):  # the largest of 3: pages still mapped from a run hide its peak
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS
            base = status("VmRSS")
            run()
            seen[name].append(status("VmHWM") - base)
        out[name] = max(seen[name])
    print("MB per run:", {k: [round(v / 2**20) for v in vs] for k, vs in seen.items()},
          file=sys.stderr)
    print(json.dumps(out))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_plan_matches_measured_peak_memory(tmp_path: Path) -> None:
    """`plan_model` on the abstract 6-layer model (compiled at 2 and 4 layers, extrapolated)
    against the peak resident memory the real kernels add on the CPU (in a fresh process, large
    allocations unmapped when freed): within 25 % for span, matrix and IG, the kernels whose
    widths are planned. (Generation of a small model adds a few MB, below what RSS resolves:
    it is only checked to be small.)"""
    cfg = {"vocabulary_size": 4096, "num_layers": 6, "num_query_heads": 4,
           "num_key_value_heads": 2, "hidden_dim": 256, "intermediate_dim": 1024,
           "head_dim": 64}
    n, t = 512, 16
    preset = tmp_path / "six_layers"
    preset.mkdir()
    (preset / "config.json").write_text(json.dumps(
        {"class_name": "GemmaBackbone", "config": cfg}), encoding="utf-8")
    plan = memory.plan_model(str(preset), length=n, targets=t, max_chunk=t, max_ig_batch=4)
    assert plan.depths == memory.DEPTHS and plan.num_layers == 6
    assert (plan.matrix_widest, plan.ig_widest) == (16, 4)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps({**cfg, "length": n, "targets": t})],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    print(proc.stderr.strip().splitlines()[-1])  # each measured run's peak, for the log
    estimated = {"generate": plan.activation("generate"), "span": plan.activation("span"),
                 "matrix": plan.activation("matrix", t), "ig": plan.activation("ig", 4)}
    ratios = {k: estimated[k] / max(measured[k], 1) for k in measured}
    print("estimate / measured peak:", {k: round(v, 3) for k, v in ratios.items()},
          "measured MB:", {k: round(v / 2**20) for k, v in measured.items()})
    assert estimated["generate"] < 64 * 2**20 and measured["generate"] < 64 * 2**20
    unresolved = [k for k in ("span", "matrix", "ig") if measured[k] <= 50 * 2**20]
    if unresolved:
        # Peak RSS is a property of the whole process: on a loaded machine (or when the
        # allocator reuses pages an earlier phase mapped) a kernel's increment can read as a few
        # MB. That is no evidence about the estimate either way, so say so instead of failing.
        pytest.skip(f"peak RSS did not resolve the {unresolved} activations on this machine "
                    f"(measured MB: { {k: round(v / 2**20) for k, v in measured.items()} })")
    for kernel in ("span", "matrix", "ig"):
        assert 0.75 <= ratios[kernel] <= 1.25, (kernel, ratios[kernel])


@pytest.mark.slow
def test_depth_extrapolation_matches_a_full_depth_compile(tmp_path: Path) -> None:
    cfg = {"vocabulary_size": 512, "num_layers": 7, "num_query_heads": 2,
           "num_key_value_heads": 1, "hidden_dim": 64, "intermediate_dim": 128, "head_dim": 32}
    preset = tmp_path / "seven"
    preset.mkdir()
    (preset / "config.json").write_text(json.dumps({"class_name": "GemmaBackbone",
                                                    "config": cfg}), encoding="utf-8")
    quick = memory.plan_model(str(preset), length=200, targets=8, max_chunk=8, max_ig_batch=4)
    exact = memory.plan_model(str(preset), length=200, targets=8, max_chunk=8, max_ig_batch=4,
                              exact=True)
    assert quick.depths == (2, 4) and exact.depths == ()
    for key, value in exact.activations.items():  # 2 %, or 256 KB for a tiny generate
        assert abs(quick.activations[key] - value) <= max(0.02 * value, 2**18), key
    assert exact.weight_bytes == quick.weight_bytes
    fits: dict[str, Any] = exact.widths(10 * GB)
    assert fits == {"generate": 0, "span": 0, "matrix": 8, "ig": 4}
