"""benchmarks/gemma2_2b.py and benchmarks/gpu.sh work: the 2B architecture, the random-weight
builder, and every mode run end to end at tiny sizes (--dry-run), so CI checks them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gemma2_2b.py"
GPU_SH = ROOT / "benchmarks" / "gpu.sh"


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("gemma2_2b_bench", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _module()


def _env() -> dict[str, str]:
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args: list[str], timeout: int = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, env=kw.pop("env", _env()),
                          timeout=timeout, cwd=ROOT, **kw)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_the_2b_architecture_is_gemma2_instruct_2b_en() -> None:
    """The benchmark's config has the published parameter count and every Gemma 2 feature;
    built abstractly (no weights), so this is fast."""
    from promptlit.salience import memory

    config = bench.architecture()
    assert config == memory.ARCHITECTURES["gemma2_2b"][1]
    assert (config | {"vocabulary_size": 256000, "num_layers": 26, "hidden_dim": 2304,
                     "num_query_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                     "intermediate_dim": 18432, "final_logit_soft_cap": 30.0,
                     "attention_logit_soft_cap": 50.0, "sliding_window_size": 4096,
                     "use_sliding_window_attention": True, "use_post_ffw_norm": True,
                     "use_post_attention_norm": True, "query_head_dim_normalize": True}) == config
    published = keras_hub.models.GemmaBackbone.presets["gemma2_instruct_2b_en"]["metadata"]
    assert published["params"] == bench.PUBLISHED_PARAMS
    lm = memory.abstract_causal_lm("gemma2_instruct_2b_en", dtype="bfloat16")
    assert bench.count_parameters(lm) == bench.PUBLISHED_PARAMS
    # The tiny Gemma 2 of --dry-run keeps every flag of the 2B.
    flags = ("final_logit_soft_cap", "attention_logit_soft_cap", "use_sliding_window_attention",
             "use_post_ffw_norm", "use_post_attention_norm", "query_head_dim_normalize")
    assert all(bench.TINY[f] == config[f] for f in flags)


def test_fill_draws_like_the_keras_initialiser_in_the_target_dtype() -> None:
    import ml_dtypes

    glorot = keras.initializers.GlorotUniform()
    shape = (8, 512, 64)  # an attention kernel: Keras' fans are 512 * 8 and 64 * 8
    x = bench._fill(glorot, shape, np.dtype(np.float32), (0, 1))
    limit = np.sqrt(6.0 / (512 * 8 + 64 * 8))
    assert x.shape == shape and np.abs(x).max() <= limit and np.abs(x).max() > 0.99 * limit
    keras_x = np.asarray(glorot(shape, dtype="float32"))
    assert abs(x.std() / keras_x.std() - 1) < 0.02
    emb = keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal")
    y = bench._fill(emb, (4096, 64), np.dtype(np.float32), (0, 2))
    assert abs(y.std() * np.sqrt(4096) - 1) < 0.02  # Keras: fan_in = rows for an embedding
    y16 = bench._fill(emb, (4096, 64), np.dtype(ml_dtypes.bfloat16), (0, 2))
    assert y16.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y16, y.astype(ml_dtypes.bfloat16))  # rounded, same draws
    assert (bench._fill(keras.initializers.Zeros(), (3,), np.dtype(np.float32), (0, 0)) == 0).all()
    # jax.random on an accelerator (run here on the CPU): the same law, in the target dtype.
    z = np.asarray(bench._fill_on_device(glorot, shape, np.dtype(np.float32), (0, 1)))
    assert np.abs(z).max() <= limit and abs(z.std() / keras_x.std() - 1) < 0.02
    z16 = bench._fill_on_device(emb, (4096, 64), np.dtype(ml_dtypes.bfloat16), (0, 2))
    assert z16.dtype == ml_dtypes.bfloat16
    assert abs(np.asarray(z16, np.float32).std() * np.sqrt(4096) - 1) < 0.02


def test_max_rss_caps_the_kernels_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """--max-rss-gb: the planning budget is BUDGET_FRACTION x (cap - current RSS), never more
    than the free-memory budget, and 0 once the process is over the cap."""
    from promptlit.salience import memory

    monkeypatch.setattr(memory, "budget_bytes", lambda device=None: 100 * bench.GB)
    rss = bench._status_kb("VmRSS") * 1024
    bench.cap_memory((rss + 2 * bench.GB) / bench.GB)
    assert 1.5 * bench.GB < memory.budget_bytes() <= memory.BUDGET_FRACTION * 2.1 * bench.GB
    monkeypatch.setattr(memory, "budget_bytes", lambda device=None: bench.GB // 2)
    bench.cap_memory((rss + 2 * bench.GB) / bench.GB)
    assert memory.budget_bytes() == bench.GB // 2
    monkeypatch.setattr(memory, "budget_bytes", lambda device=None: bench.GB)
    bench.cap_memory(0.001)
    assert memory.budget_bytes() == 0
    assert bench._prompts(False, 1) == bench._prompts(False)[:1]


@pytest.mark.slow
def test_built_models_compute_what_keras_hub_computes() -> None:
    """float32, bfloat16 (the rounded float32 weights) and bf16w-f32c (bfloat16 params in a
    float32 model) give the model's own logits."""
    import jax.numpy as jnp

    config = bench.architecture(tiny=True)
    ids = np.random.default_rng(0).integers(1, config["vocabulary_size"], (1, 40)).astype("int32")
    mask = np.ones((1, 40), bool)
    out = {}
    for name in bench.DTYPES:
        policy, stored = bench._model_dtype(name)
        lm, values = bench.build_causal_lm(config, policy, 3, weights_dtype=stored)
        fwd = bench.make_forward(lm, values)
        out[name] = np.asarray(fwd.logits(fwd.params, fwd.embed(fwd.params, ids), mask),
                               np.float32)
        if stored is None:
            own = np.asarray(lm({"token_ids": ids, "padding_mask": mask}), np.float32)
            np.testing.assert_allclose(out[name], own, rtol=1e-5, atol=1e-5)
        else:
            assert all(v._value is None for v in lm.weights)  # no float32 copy held
            assert all(p.dtype == jnp.bfloat16 for p in fwd.params.values())
        if name == "float32":
            f32 = {v.path: np.asarray(v.value) for v in lm.weights}
        if name == "bfloat16":
            for v in lm.weights:
                np.testing.assert_array_equal(np.asarray(v.value),
                                              f32[v.path].astype(v.value.dtype))
    assert np.abs(out["bf16w-f32c"] - out["float32"]).max() < 0.1 * np.abs(out["float32"]).max()


@pytest.mark.slow
def test_dry_run_with_the_preset_round_trip(tmp_path: Path) -> None:
    """The whole CPU flow at tiny sizes: build, save + load_causal_lm, generate, salience."""
    out = tmp_path / "rows.json"
    proc = _run([sys.executable, str(SCRIPT), "--dry-run", "--dtypes", "float32",
                 "--load-dir", str(tmp_path), "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [(r["dtype"], r["N"], r["T"]) for r in rows] == [("float32", 64, 4)]
    row = rows[0]
    for key in ("build_s", "load_s", "gen_tok_s", "fwd_s", "span_s", "matrix_s", "ig_s", "loop_s",
                "span_x_fwd", "loop_over_matrix", "matrix_over_1p2T_fwd", "spans16_over_ig16",
                "peak_rss_mb", "compile_matrix_s"):
        assert row[key] > 0, key
    assert row["load_via"] == "promptlit" and row["matrix_plan"]["width"] == 4
    assert "span/fwd(<=3.5)" in proc.stdout and "gen tok/s" in proc.stdout
    assert not list(tmp_path.glob("gemma2-tiny-*"))  # the saved preset is removed


@pytest.mark.slow
def test_compare_dtypes_dry_run(tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    proc = _run([sys.executable, str(SCRIPT), "--compare-dtypes", "--dry-run", "--ig-steps", "4",
                 "--json", str(out)])
    res = json.loads(out.read_text())
    assert set(res) == {"bfloat16", "bf16w-f32c"}
    assert "(2 prompts, IG-4;" in proc.stdout
    for name, metrics in res.items():
        for method in ("grad_l2", "grad_dot_input", "integrated_gradients"):
            overlap = metrics[f"{method}/overlap@10"]
            assert 0.0 <= overlap["min"] <= overlap["max"] <= 1.0
            assert metrics[f"{method}/max_rel_err"]["max"] < 1.0, (name, method)
    assert "overlap@10" in proc.stdout


@pytest.mark.slow
def test_check_against_float64_passes() -> None:
    proc = _run([sys.executable, str(SCRIPT), "--check"])
    assert "check PASSED" in proc.stdout and "matrix grad_l2" in proc.stdout


def test_gpu_sh_parses_and_refuses_a_cpu_without_dry_run() -> None:
    _run(["bash", "-n", str(GPU_SH)])
    proc = subprocess.run(["bash", str(GPU_SH)], capture_output=True, text=True, cwd=ROOT,
                          env=dict(_env(), PYTHON=sys.executable), timeout=300)
    assert proc.returncode == 2 and "no accelerator found" in proc.stdout
    assert "--fetch-wheels" in subprocess.run(["bash", str(GPU_SH), "--help"], capture_output=True,
                                              text=True, timeout=60).stdout


def test_gpu_sh_carries_the_locked_keras_and_keras_hub() -> None:
    """The wheels gpu.sh carries to a GPU machine are the versions promptlit is tested with
    (requirements-lock.txt), never an older keras-hub that pyproject.toml excludes (it carried
    keras-hub 0.29.1 while promptlit needs >= 0.30)."""
    lock = dict(line.split("==", 1) for line in (ROOT / "requirements-lock.txt").read_text()
                .splitlines() if "==" in line and not line.startswith("#"))
    lock = {k.lower().replace("_", "-"): v.strip() for k, v in lock.items()}
    proc = subprocess.run(["bash", str(GPU_SH), "--wheel-specs"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    specs = dict(line.split("==", 1) for line in proc.stdout.split())
    specs = {k.lower().replace("_", "-"): v for k, v in specs.items()}
    assert {"keras", "keras-hub", "tokenizers", "regex"} <= set(specs)
    assert all(lock[name] == version for name, version in specs.items()), (specs, lock)


@pytest.mark.slow
def test_gpu_sh_dry_run() -> None:
    """The GPU script's whole flow on CPU: python + jax detected, keras found (no wheels needed
    here), the tiny benchmark in bfloat16 and bf16w-f32c."""
    proc = _run(["bash", str(GPU_SH), "--dry-run"], env=dict(_env(), PYTHON=sys.executable))
    assert "keras and keras-hub are importable already" in proc.stdout
    assert "bf16w-f32c" in proc.stdout and "dev peak GB" in proc.stdout
    assert "done in" in proc.stdout
