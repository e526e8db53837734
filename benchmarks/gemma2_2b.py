"""Gemma 2 2B at full size, random weights built locally: load, memory, generation, salience.

The model has exactly the architecture of keras-hub's `gemma2_2b_en` / `gemma2_instruct_2b_en`
(`promptlit.salience.memory.ARCHITECTURES["gemma2_2b"]`: vocabulary 256000, 26 layers, hidden
2304, 8 query / 4 key-value heads of 256, keras-hub intermediate_dim 18432 (= 2 x Hugging Face's
9216), sliding window 4096 on every other layer, attention soft-cap 50, final soft-cap 30,
post-attention and post-FFW norms): 2,614,341,888 parameters, the presets' published count (the
worker checks it). Weights are random and nothing is downloaded.

Usage:
    .venv/bin/python benchmarks/gemma2_2b.py --dry-run          # the whole flow, tiny Gemma 2 (CI)
    .venv/bin/python benchmarks/gemma2_2b.py                    # this CPU: N=128, T=8, f32 + bf16
    .venv/bin/python benchmarks/gemma2_2b.py --load-dir /tmp/g2 # also save a preset, time from_preset
    .venv/bin/python benchmarks/gemma2_2b.py --compare-dtypes   # bfloat16 vs float32 salience
    .venv/bin/python benchmarks/gemma2_2b.py --check            # kernels vs a float64 reference
    bash benchmarks/gpu.sh                                      # a GPU: N=256/1024/4096

Configurations (`--dtypes`), each in its own subprocess (peak memory is per configuration):

* `float32`: weights and compute in float32 (promptlit's default for salience).
* `bfloat16`: weights and compute in bfloat16 (gradients too; the kernels accumulate the
  per-token features in float32).
* `bf16w-f32c`: weights *stored* in bfloat16, the network computed in float32. The model is
  built abstractly in float32 and its `LMForward.params` are the bfloat16 arrays; Keras'
  `StatelessScope` casts each weight to the layer's float32 inside the compiled kernel. No
  generation row (keras-hub's `generate` reads the variables themselves).

Random weights: each variable is filled straight in its target dtype with numpy, in blocks, from
the distribution of its Keras initializer (VarianceScaling / Glorot with Keras' own fan rule,
zeros, ones), seeded per variable: the bfloat16 weights are exactly the float32 ones rounded to
nearest. Building through Keras' initializers instead costs ~2 min and doubles the peak memory
(its float32 temporaries for the 590M-entry embedding); `--load-dir` measures that path too, as
keras-hub's `from_preset` takes it.

Token ids: there is no 256k-vocabulary tokenizer offline, so the benchmark works at token-id
level (random ids in [1, 256000); the kernels take ids, and `generate` takes preprocessed
`{"token_ids", "padding_mask"}` with no preprocessor). `--compare-dtypes` tokenizes real text
with `presets/tiny_lm`'s SentencePiece tokenizer (2048 pieces, a subset of the 256k id range) and
aggregates tokens to words with promptlit's own aggregation.

Measures (per configuration; per prompt length N with the last T tokens as targets):

* build s: random weights in memory; load s (`--load-dir`): `promptlit.models.presets.
  load_causal_lm` of the same weights saved as a local keras-hub preset (what a user pays after
  the download).
* gen tok/s: keras-hub `generate` (greedy, no stop token) of G new tokens after a P-token prompt,
  steady state, prefill included: G / seconds.
* fwd, span/fwd, matrix, loop/matrix, matrix/(1+2T)fwd, IG16, 16spans/IG16: as in
  `benchmarks/salience.py` (the loop baseline here runs the LM head on the one predicting row, as
  the kernels do, so it needs no N x V logits).
* compile: XLA trace + lower + compile seconds of each first call (jax.monitoring events), so a
  measure needs no separate warm-up run.
* peak RSS: the process's peak resident memory within each phase (VmHWM, reset before every
  phase through /proc/self/clear_refs), so each phase's number is its own. dev peak: the
  accelerator's `peak_bytes_in_use` so far (no reset exists), where the device reports it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_PARAMS = 2_614_341_888
"""keras-hub's metadata for `gemma2_2b_en` and `gemma2_instruct_2b_en` ("params")."""
# A 2-layer Gemma 2 with every flag of the 2B (both soft-caps, sliding window, post norms) for
# --dry-run and --check: window 32, so N = 64 exercises the sliding layers.
TINY = {
    "vocabulary_size": 4096, "num_layers": 2, "num_query_heads": 4, "num_key_value_heads": 2,
    "hidden_dim": 64, "intermediate_dim": 256, "head_dim": 16, "query_head_dim_normalize": True,
    "use_post_ffw_norm": True, "use_post_attention_norm": True, "final_logit_soft_cap": 30.0,
    "attention_logit_soft_cap": 50.0, "sliding_window_size": 32,
    "use_sliding_window_attention": True, "layer_norm_epsilon": 1e-6,
}
DTYPES = ("float32", "bfloat16", "bf16w-f32c")
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
GB = 2**30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the model


def architecture(tiny: bool = False) -> dict[str, Any]:
    """Backbone arguments: the 2B's (from promptlit's table of keras-hub presets) or `TINY`."""
    if tiny:
        return dict(TINY)
    from promptlit.salience import memory

    cls, config = memory.ARCHITECTURES["gemma2_2b"]
    assert cls == "GemmaBackbone"
    return dict(config)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' `compute_fans` (keras/src/initializers/random_initializers.py)."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _scale(initializer: Any, shape: tuple[int, ...]) -> tuple[str, float]:
    """`(distribution, scale)` of a Keras VarianceScaling initializer for `shape` (variance =
    scale), with Keras' fan rule."""
    fan_in, fan_out = _fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out,
           "fan_avg": (fan_in + fan_out) / 2}[initializer.mode]
    return initializer.distribution, initializer.scale / max(1.0, fan)


def _constant(initializer: Any) -> float | None:
    import keras

    if isinstance(initializer, keras.initializers.Zeros):
        return 0.0
    if isinstance(initializer, keras.initializers.Ones):
        return 1.0
    if isinstance(initializer, keras.initializers.Constant):
        return float(initializer.get_config()["value"])
    if not isinstance(initializer, keras.initializers.VarianceScaling):
        raise NotImplementedError(f"no fill for the {type(initializer).__name__} initializer")
    return None


def _fill(initializer: Any, shape: tuple[int, ...], np_dtype: Any, seed: tuple[int, int]) -> Any:
    """numpy array `shape` in `np_dtype`, drawn like Keras' `initializer` would, in blocks of
    at most 2^24 float32 values (no full-size float32 temporary for a bfloat16 weight)."""
    import numpy as np

    out = np.empty(math.prod(shape), np_dtype)
    value = _constant(initializer)
    if value is not None:
        out[:] = value
        return out.reshape(shape)
    distribution, scale = _scale(initializer, shape)
    rng = np.random.default_rng(list(seed))
    block = 1 << 24
    for lo in range(0, out.size, block):
        k = min(block, out.size - lo)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            x = rng.random(k, dtype=np.float32) * np.float32(2 * limit) - np.float32(limit)
        else:
            x = rng.standard_normal(k, dtype=np.float32)
            if distribution == "truncated_normal":  # Keras: +-2 sigma, std corrected
                np.clip(x, -2.0, 2.0, out=x)
                x *= np.float32(1 / 0.87962566103423978)
            x *= np.float32(math.sqrt(scale))
        out[lo : lo + k] = x.astype(np_dtype)
    return out.reshape(shape)


def _fill_on_device(initializer: Any, shape: tuple[int, ...], dtype: Any,
                    seed: tuple[int, int]) -> Any:
    """`_fill`'s distribution drawn by `jax.random` on the default device (an accelerator: a
    second instead of a minute of numpy; other draws than `_fill`'s, the same law)."""
    import jax
    import jax.numpy as jnp

    value = _constant(initializer)
    if value is not None:
        return jnp.full(shape, value, dtype)
    distribution, scale = _scale(initializer, shape)
    key = jax.random.fold_in(jax.random.key(seed[0]), seed[1])
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale)
        x = jax.random.uniform(key, shape, jnp.float32, -limit, limit)
    elif distribution == "truncated_normal":
        x = jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
        x = x * (math.sqrt(scale) / 0.87962566103423978)
    else:
        x = jax.random.normal(key, shape, jnp.float32) * math.sqrt(scale)
    return x.astype(dtype)


def _forget_uninitialised(variables: list[Any]) -> None:
    """Keras must not initialise these variables later (it would allocate random weights)."""
    from keras.src.backend.common import global_state

    ids = {id(v) for v in variables}
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    global_state.set_global_attribute("uninitialized_variables",
                                      [v for v in pending if id(v) not in ids])


def build_causal_lm(config: dict[str, Any], dtype: str, seed: int = 0,
                    weights_dtype: str | None = None,
                    on_device: bool | None = None) -> tuple[Any, dict[str, Any]]:
    """A `GemmaCausalLM` (no preprocessor) with random weights made straight in their dtype.

    The backbone is built inside `keras.StatelessScope(initialize_variables=False)` (no values),
    then every variable gets `_fill(...)` (numpy, on a CPU: peak memory = the weights + one
    variable) or `_fill_on_device(...)` (jax.random, on an accelerator: seconds).

    Args:
        config: backbone arguments (`architecture()`).
        dtype: the model's dtype policy ("float32", "bfloat16").
        weights_dtype: the dtype of the stored values when it differs from `dtype` (bfloat16
            weights for a float32 model: then the variables stay uninitialised and the values
            come back in `params` only, for `LMForward` params).
        on_device: draw with `jax.random` on the default device (default: when it is an
            accelerator and `weights_dtype` is None) instead of numpy; numpy's draws are the same
            on every machine (the float64 check compares a CPU reference with the device).

    Returns:
        `(causal_lm, params)`: params maps each variable's path to its value (numpy when
        `weights_dtype` is given, else the variable holds it and params is empty).
    """
    import jax
    import jax.numpy as jnp
    import keras
    import keras_hub
    import numpy as np

    with keras.StatelessScope(initialize_variables=False):
        backbone = keras_hub.models.GemmaBackbone(**config, dtype=dtype)
    variables = list(backbone.weights)
    _forget_uninitialised(variables)
    lm = keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=None)
    np_dtype = np.dtype(jnp.dtype(weights_dtype or dtype))
    if on_device is None:
        on_device = jax.default_backend() != "cpu" and weights_dtype is None
    values: dict[str, Any] = {}
    for i, v in enumerate(variables):
        init = v._initializer
        shape = tuple(int(s) for s in v.shape)
        if on_device:
            value = _fill_on_device(init, shape, np_dtype, (seed, i))
        else:
            value = _fill(init, shape, np_dtype, (seed, i))
        if weights_dtype is None:
            v._initialize(jnp.asarray(value))
            v._initializer = None
        else:
            values[v.path] = value
        del value
    return lm, values


def count_parameters(causal_lm: Any) -> int:
    return int(sum(math.prod(v.shape) for v in causal_lm.weights))


def make_forward(lm: Any, values: dict[str, Any]) -> Any:
    """`lm_forward(lm)`, with the stored values of a `weights_dtype` build as its params."""
    import dataclasses as dc

    import jax.numpy as jnp

    from promptlit.salience.forward import lm_forward

    fwd = lm_forward(lm)
    if not values:
        return fwd
    params = {key: jnp.asarray(values[key.split("#")[0]]) for key in fwd.params}
    return dc.replace(fwd, params=params, cache={})


# ----------------------------------------------------------------------------- measuring


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM (the peak RSS) to the current RSS
        return True
    except OSError:
        return False


def _device_peak() -> float | None:
    import jax

    try:
        stats = jax.local_devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - CPU devices report nothing or raise
        return None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return float(stats["peak_bytes_in_use"]) / GB


class Recorder:
    """Times phases, with their compile seconds and peak memory, into a dict per phase."""

    def __init__(self) -> None:
        import jax

        self.compile_s = 0.0
        self.can_reset = _reset_peak()
        self.phases: dict[str, dict[str, Any]] = {}

        def listen(event: str, duration: float, **_: Any) -> None:
            if event in COMPILE_EVENTS:
                self.compile_s += duration

        jax.monitoring.register_event_duration_secs_listener(listen)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        gc.collect()
        _reset_peak()
        c0, t0 = self.compile_s, time.perf_counter()
        rec: dict[str, Any] = {}
        yield rec
        rec["seconds"] = time.perf_counter() - t0
        rec["compile_s"] = self.compile_s - c0
        rec["peak_rss_mb"] = _status_kb("VmHWM") / 1024.0
        rec["rss_mb"] = _status_kb("VmRSS") / 1024.0
        rec["loadavg_1min"] = os.getloadavg()[0]
        dev = _device_peak()
        if dev is not None:
            rec["device_peak_gb"] = dev
        self.phases[name] = rec


class PaddingLog(logging.Handler):
    """Keeps the kernels' `Padding` records (widths, planned working memory) of the last call."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[Any] = []

    def emit(self, record: logging.LogRecord) -> None:
        pad = getattr(record, "padding", None)
        if pad is not None:
            self.records.append(pad)

    def last(self) -> dict[str, Any]:
        if not self.records:
            return {}
        pad = self.records[-1]
        return {"width": pad.width or pad.ig_batch, "calls": pad.calls, "retries": pad.retries,
                "activation_gb": (None if pad.activation_bytes is None
                                  else pad.activation_bytes / GB)}


def _timed(fn: Callable[[], Any], rec: Recorder, name: str, repeats: int) -> dict[str, Any]:
    """First call (compile + run; its compile seconds from jax.monitoring), then `repeats` steady
    calls; `run_s` = their median, or first - compile when `repeats` is 0."""
    with rec.phase(name) as r:
        t0 = time.perf_counter()
        c0 = rec.compile_s
        fn()
        first = time.perf_counter() - t0
        compile_s = rec.compile_s - c0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        r["first_s"] = first
        r["runs_s"] = times
        r["run_s"] = statistics.median(times) if times else max(first - compile_s, 1e-9)
    out = dict(rec.phases[name])
    out["compile_s"] = compile_s
    return out


# ----------------------------------------------------------------------------- the worker


@dataclasses.dataclass
class WorkerArgs:
    dtype: str
    tiny: bool
    sizes: list[int]
    targets: list[int]
    repeats: int
    heavy_repeats: int
    gen_prompt: int
    gen_new: int
    loop_max_n: int
    ig_steps: int
    load_dir: str | None
    load_via: str
    deadline: float
    seed: int = 0
    max_rss_gb: float | None = None


def cap_memory(max_rss_gb: float | None) -> None:
    """Caps the kernels' planning budget so this process stays under `max_rss_gb` of resident
    memory: `min(the budget from free memory, BUDGET_FRACTION x (max_rss_gb - current RSS))`.

    On a shared machine the free memory at planning time is not all ours (others' processes
    grow later). The cap cannot go below one target / one alpha: the float32 2B's IG at N = 128
    needs ~4 GB of activations even with 1 alpha per batch (on 9.74 GB of weights)."""
    if max_rss_gb is None:
        return
    from promptlit.salience import memory

    free_budget = memory.budget_bytes

    def capped(device: Any = None) -> int:
        room = int(max_rss_gb * GB) - _status_kb("VmRSS") * 1024
        return min(free_budget(device), int(memory.BUDGET_FRACTION * max(room, 0)))

    memory.budget_bytes = capped  # the kernels call memory.budget_bytes() at planning time
    log(f"kernels' memory budget capped for a peak RSS of {max_rss_gb:g} GB")


def _model_dtype(dtype: str) -> tuple[str, str | None]:
    """`(model policy, stored weights dtype or None)` of a configuration name."""
    if dtype == "bf16w-f32c":
        return "float32", "bfloat16"
    return dtype, None


def _save_preset(lm: Any, directory: Path) -> None:
    """The random model as a local keras-hub CausalLM preset (tokenizer: presets/tiny_lm's)."""
    import keras_hub

    if directory.exists():
        shutil.rmtree(directory)
    tokenizer = keras_hub.models.GemmaTokenizer.from_preset(str(ROOT / "presets" / "tiny_lm"))
    pre = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer=tokenizer, sequence_length=256)
    task = keras_hub.models.GemmaCausalLM(backbone=lm.backbone, preprocessor=pre)
    task.save_to_preset(str(directory))


def run_worker(a: WorkerArgs) -> list[dict[str, Any]]:
    """One configuration: build (and load), generate, then salience per N and T. Rows as dicts."""
    import jax
    import jax.numpy as jnp
    import keras  # noqa: F401 - imported before the build phase is timed
    import keras_hub  # noqa: F401
    import numpy as np

    from promptlit.salience import kernels as K

    cap_memory(a.max_rss_gb)
    rec = Recorder()
    pads = PaddingLog()
    klog = logging.getLogger("promptlit.salience.kernels")
    klog.setLevel(logging.DEBUG)
    klog.addHandler(pads)
    policy, stored = _model_dtype(a.dtype)
    config = architecture(a.tiny)
    label = "gemma2-tiny" if a.tiny else "gemma2_2b"
    base: dict[str, Any] = {"model": label, "dtype": a.dtype, "device": jax.devices()[0].platform,
                            "jax": jax.__version__}

    with rec.phase("build") as r:
        lm, values = build_causal_lm(config, policy, a.seed, weights_dtype=stored)
        fwd = make_forward(lm, values)
        jax.block_until_ready(fwd.params)
        values.clear()
    base["params_M"] = count_parameters(lm) / 1e6
    if not a.tiny and count_parameters(lm) != PUBLISHED_PARAMS:
        raise SystemExit(f"{count_parameters(lm)} parameters, not the published "
                         f"{PUBLISHED_PARAMS}: the architecture table is wrong")
    base["build_s"] = rec.phases["build"]["seconds"]
    base["build_peak_rss_mb"] = rec.phases["build"]["peak_rss_mb"]
    weight_gb = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(fwd.params)) / GB
    base["weights_gb"] = weight_gb
    log(f"{label} {a.dtype}: built in {base['build_s']:.1f} s, weights {weight_gb:.2f} GB, "
        f"peak RSS {base['build_peak_rss_mb']:.0f} MB")

    if a.load_dir and stored is None:
        from promptlit.models.presets import load_causal_lm

        def load(path: str) -> Any:
            if a.load_via == "keras-hub":  # keras-hub's own from_preset: random init first
                return keras_hub.models.CausalLM.from_preset(path, dtype=policy)
            return load_causal_lm(path, dtype=policy)

        directory = Path(a.load_dir) / f"{label}-{a.dtype}"
        with rec.phase("save"):
            _save_preset(lm, directory)
        size_gb = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / GB
        del lm, fwd
        gc.collect()
        with rec.phase("load"):
            lm = load(str(directory))
            jax.block_until_ready([v.value for v in lm.weights])
        lm.preprocessor = None
        fwd = make_forward(lm, {})
        base.update(load_s=rec.phases["load"]["seconds"], load_via=a.load_via,
                    load_peak_rss_mb=rec.phases["load"]["peak_rss_mb"], preset_gb=size_gb,
                    save_s=rec.phases["save"]["seconds"])
        log(f"saved ({size_gb:.1f} GB) in {base['save_s']:.0f} s; from_preset "
            f"{base['load_s']:.1f} s, peak RSS {base['load_peak_rss_mb']:.0f} MB")
        shutil.rmtree(directory, ignore_errors=True)

    vocab = int(config["vocabulary_size"])
    if a.gen_new > 0 and stored is None and time.time() < a.deadline:
        p, g = a.gen_prompt, a.gen_new
        ids = np.zeros((1, p + g), np.int32)
        ids[0, :p] = np.random.default_rng(1).integers(1, vocab, p)
        mask = np.zeros((1, p + g), bool)
        mask[0, :p] = True

        def gen() -> None:
            out = lm.generate({"token_ids": ids, "padding_mask": mask}, stop_token_ids=None)
            assert int(np.asarray(out["padding_mask"]).sum()) == p + g

        r = _timed(gen, rec, "generate", a.repeats)
        base.update(gen_prompt=p, gen_new=g, gen_tok_s=g / r["run_s"],
                    gen_compile_s=r["compile_s"], gen_peak_rss_mb=r["peak_rss_mb"])
        if "device_peak_gb" in r:
            base["gen_device_peak_gb"] = r["device_peak_gb"]
        log(f"generate P={p} G={g}: {base['gen_tok_s']:.2f} tok/s "
            f"(compile {r['compile_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB)")
    rows: list[dict[str, Any]] = []
    hidden_fn, head_fn = fwd.hidden, fwd.head

    @jax.jit
    def one_target_grad(params: Any, ids: Any, mask: Any, t: Any) -> Any:
        """Baseline: one target's gradient, one jitted call per target; the head runs on the
        predicting row only (no N x V logits)."""
        e = fwd.embed(params, ids[None])[0]

        def f(x: Any) -> Any:
            h = hidden_fn(params, x[None], mask[None])[0]
            logits = head_fn(params, h[t - 1][None, None])[0, 0].astype(jnp.float32)
            return jax.nn.log_softmax(logits)[ids[t]]

        g = jax.grad(f)(e).astype(jnp.float32)
        return jnp.linalg.norm(g, axis=-1), jnp.sum(g * e.astype(jnp.float32), -1)

    for n in a.sizes:
        rng = np.random.default_rng(n)
        ids = rng.integers(1, vocab, size=n).astype(np.int32)
        for t in a.targets:
            if time.time() > a.deadline:
                rows.append({**base, "N": n, "T": t, "skipped": "time budget"})
                log(f"N={n} T={t}: skipped (time budget)")
                continue
            row: dict[str, Any] = {**base, "N": n, "T": t}
            tmask = np.zeros(n, bool)
            tmask[n - t :] = True
            positions = np.arange(n - t, n)
            heavy = a.heavy_repeats
            m = _timed(lambda ids=ids: K.sequence_log_probs(fwd, ids), rec, f"fwd{n}", a.repeats)
            row["fwd_s"], row["compile_fwd_s"] = m["run_s"], m["compile_s"]
            peaks = [m["peak_rss_mb"]]
            log(f"N={n}: fwd {m['run_s']:.2f} s (compile {m['compile_s']:.1f} s, "
                f"peak RSS {m['peak_rss_mb']:.0f} MB)")
            m = _timed(lambda ids=ids, tm=tmask: K.span_salience(
                fwd, ids, tm, methods=("grad_l2", "grad_dot_input")), rec, f"span{n}", a.repeats)
            row["span_s"], row["compile_span_s"] = m["run_s"], m["compile_s"]
            peaks.append(m["peak_rss_mb"])
            log(f"N={n} T={t}: span {m['run_s']:.2f} s (compile {m['compile_s']:.1f} s, "
                f"peak RSS {m['peak_rss_mb']:.0f} MB)")
            m = _timed(lambda ids=ids, p=positions: K.salience_matrix(fwd, ids, p), rec,
                       f"matrix{n}_{t}", heavy)
            row["matrix_s"], row["compile_matrix_s"] = m["run_s"], m["compile_s"]
            row["matrix_plan"] = pads.last()
            peaks.append(m["peak_rss_mb"])
            log(f"N={n} T={t}: matrix {m['run_s']:.2f} s (compile {m['compile_s']:.1f} s, "
                f"peak RSS {m['peak_rss_mb']:.0f} MB) {row['matrix_plan']}")
            if time.time() < a.deadline:
                m = _timed(lambda ids=ids, tm=tmask: K.span_salience(
                    fwd, ids, tm, methods=("integrated_gradients",), ig_steps=a.ig_steps),
                    rec, f"ig{n}_{t}", heavy)
                row["ig_s"], row["compile_ig_s"] = m["run_s"], m["compile_s"]
                row["ig_plan"] = pads.last()
                peaks.append(m["peak_rss_mb"])
                log(f"N={n} T={t}: IG-{a.ig_steps} {m['run_s']:.2f} s (compile "
                    f"{m['compile_s']:.1f} s, peak RSS {m['peak_rss_mb']:.0f} MB) {row['ig_plan']}")
            if n <= a.loop_max_n and time.time() < a.deadline:
                padded, mask = K._pad(ids, fwd.max_positions)

                def loop(positions: Any = positions, padded: Any = padded, mask: Any = mask) -> None:
                    for p in positions:
                        jax.block_until_ready(one_target_grad(fwd.params, padded, mask, int(p)))

                m = _timed(loop, rec, f"loop{n}_{t}", min(heavy, 1))
                row["loop_s"] = m["run_s"]
                peaks.append(m["peak_rss_mb"])
                log(f"N={n} T={t}: loop of {t} per-target grads {m['run_s']:.2f} s (peak RSS "
                    f"{m['peak_rss_mb']:.0f} MB)")
            row["peak_rss_mb"] = max(peaks)
            dev = _device_peak()
            if dev is not None:
                row["device_peak_gb"] = dev
            _ratios(row, a.ig_steps)
            rows.append(row)
            row["loadavg_1min"] = max(p.get("loadavg_1min", 0.0) for k, p in rec.phases.items()
                                      if k.endswith((f"{n}", f"{n}_{t}")))
            print("ROW " + json.dumps(row), flush=True)
    if not rows:
        print("ROW " + json.dumps({**base, "N": None, "T": None}), flush=True)
    return rows


def _ratios(row: dict[str, Any], ig_steps: int) -> None:
    fwd, t = row.get("fwd_s"), row.get("T")
    if fwd:
        if row.get("span_s"):
            row["span_x_fwd"] = row["span_s"] / fwd
        if row.get("matrix_s") and t:
            row["matrix_over_1p2T_fwd"] = row["matrix_s"] / ((1 + 2 * t) * fwd)
    if row.get("loop_s") and row.get("matrix_s"):
        row["loop_over_matrix"] = row["loop_s"] / row["matrix_s"]
    if row.get("ig_s") and row.get("span_s"):
        row[f"spans{ig_steps}_over_ig{ig_steps}"] = ig_steps * row["span_s"] / row["ig_s"]


# ----------------------------------------------------------------------------- comparing dtypes


def _prompts(tiny: bool, count: int | None = None) -> list[str]:
    """Prompt + target texts of `datasets/sample_prompts.jsonl` with 30-65 words (60-110
    tiny_lm tokens), longest first: `count`, by default 3 (2 for --dry-run)."""
    path = ROOT / "datasets" / "sample_prompts.jsonl"
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            ex = json.loads(line)
            text = str(ex.get("prompt", "")) + " " + str(ex.get("target", ""))
            texts.append(" ".join(text.split()))
    texts = sorted((t for t in texts if 30 <= len(t.split()) <= 65), key=len, reverse=True)
    return texts[: count if count is not None else (2 if tiny else 3)]


def compare_worker(dtype: str, tiny: bool, ig_steps: int, out: str, seed: int = 0,
                   max_rss_gb: float | None = None, prompts: int | None = None) -> None:
    """Salience of real text (tiny_lm's tokenizer) in one configuration, saved as .npz."""
    import keras_hub
    import numpy as np

    from promptlit.salience import kernels as K

    cap_memory(max_rss_gb)

    policy, stored = _model_dtype(dtype)
    lm, values = build_causal_lm(architecture(tiny), policy, seed, weights_dtype=stored,
                                 on_device=False)  # bfloat16 = the float32 weights, rounded
    fwd = make_forward(lm, values)
    values.clear()
    tokenizer = keras_hub.models.GemmaTokenizer.from_preset(str(ROOT / "presets" / "tiny_lm"))
    arrays: dict[str, Any] = {}
    for i, text in enumerate(_prompts(tiny, prompts)):
        ids = np.concatenate([[tokenizer.token_to_id("<bos>")],
                              np.asarray(tokenizer(text))]).astype(np.int32)
        n = ids.shape[0]
        tmask = np.zeros(n, bool)
        tmask[n - max(2, n // 5):] = True  # the last fifth of the text is the "response"
        t0 = time.perf_counter()
        res = K.span_salience(fwd, ids, tmask, methods=("grad_l2", "grad_dot_input",
                                                        "integrated_gradients"),
                              ig_steps=ig_steps)
        log(f"{dtype} prompt {i} (N={n}): {time.perf_counter() - t0:.1f} s")
        arrays[f"ids{i}"] = ids
        arrays[f"tmask{i}"] = tmask
        for k, v in res.items():
            arrays[f"{k}{i}"] = np.asarray(v, np.float64)
    np.savez(out, **arrays)


def _words(tokenizer: Any, ids: Any) -> tuple[list[str], Any]:
    """Word index of every token (SentencePiece '▁' starts a word), and the words."""
    import numpy as np

    pieces = [tokenizer.id_to_token(int(i)) for i in ids]
    word = -1
    index = np.zeros(len(pieces), np.int64)
    words: list[str] = []
    for j, piece in enumerate(pieces):
        if j == 0 or piece.startswith("▁") or word < 0:
            word += 1
            words.append("")
        words[word] += piece.replace("▁", "")
        index[j] = word
    return words, index


def compare_metrics(ref: Any, got: Any, tokenizer: Any, top: int = 10) -> dict[str, Any]:
    """Agreement of `got` with `ref` (npz dicts) per method over the prompt words."""
    import numpy as np
    from scipy.stats import spearmanr

    out: dict[str, list[float]] = {}
    i = 0
    while f"ids{i}" in ref:
        ids, tmask = ref[f"ids{i}"], ref[f"tmask{i}"]
        words, index = _words(tokenizer, ids)
        src = ~tmask  # rank the prompt words, as the ranked lists do
        src[0] = False  # <bos>
        for method in ("grad_l2", "grad_dot_input", "integrated_gradients"):
            a, b = ref[f"{method}{i}"], got[f"{method}{i}"]
            wa = np.bincount(index[src], weights=a[src], minlength=len(words))
            wb = np.bincount(index[src], weights=b[src], minlength=len(words))
            keep = np.unique(index[src])
            wa, wb = wa[keep], wb[keep]
            key = np.abs if method != "grad_l2" else (lambda x: x)
            ta, tb = np.argsort(-key(wa))[:top], np.argsort(-key(wb))[:top]
            rho_all = spearmanr(wa, wb).statistic
            rho_top = spearmanr(wa[ta], wb[ta]).statistic
            out.setdefault(f"{method}/overlap@{top}", []).append(len(set(ta) & set(tb)) / top)
            out.setdefault(f"{method}/spearman_words", []).append(float(rho_all))
            out.setdefault(f"{method}/spearman_top{top}", []).append(float(rho_top))
            scale = max(np.abs(a).max(), 1e-30)
            out.setdefault(f"{method}/max_rel_err", []).append(float(np.abs(a - b).max() / scale))
            big = np.abs(a) >= 0.1 * scale
            rel = np.abs(a - b)[big] / np.abs(a)[big]
            out.setdefault(f"{method}/max_rel_err_big", []).append(float(rel.max()))
        lp_a, lp_b = float(ref[f"log_prob{i}"]), float(got[f"log_prob{i}"])
        out.setdefault("log_prob/abs_err", []).append(abs(lp_a - lp_b))
        i += 1
    return {k: {"min": min(v), "mean": sum(v) / len(v), "max": max(v)} for k, v in out.items()}


def compare_dtypes(args: argparse.Namespace) -> int:
    import keras_hub
    import numpy as np

    work = Path(tempfile.mkdtemp(prefix="gemma2-compare-"))
    files = {}
    # float32 is the reference; --dtypes picks the others (default: both bfloat16 variants)
    dtypes = ["float32", *[d for d in (args.dtypes or DTYPES[1:]) if d != "float32"]]
    for dtype in dtypes:
        files[dtype] = work / f"{dtype}.npz"
        cmd = ["--worker-compare", dtype, "--out", str(files[dtype]),
               "--ig-steps", str(args.ig_steps)] + (["--dry-run"] if args.dry_run else [])
        if args.prompts is not None:
            cmd += ["--prompts", str(args.prompts)]
        if args.max_rss_gb is not None:
            cmd += ["--max-rss-gb", str(args.max_rss_gb)]
        _spawn(cmd, collect=False)
    tokenizer = keras_hub.models.GemmaTokenizer.from_preset(str(ROOT / "presets" / "tiny_lm"))
    ref = dict(np.load(files["float32"]))
    result = {}
    others = dtypes[1:]
    for dtype in others:
        result[dtype] = compare_metrics(ref, dict(np.load(files[dtype])), tokenizer)
    shutil.rmtree(work, ignore_errors=True)
    label = "gemma2-tiny" if args.dry_run else "gemma2_2b"
    print(f"bfloat16 vs float32 salience, {label}, same random weights "
          f"({len(_prompts(args.dry_run, args.prompts))} prompts, IG-{args.ig_steps}; "
          "min / mean / max over prompts):")
    keys = list(result[others[0]])
    rows = [["metric", *others]]
    for k in keys:
        rows.append([k, *[f"{result[d][k]['min']:.3g} / {result[d][k]['mean']:.3g} / "
                          f"{result[d][k]['max']:.3g}" for d in others]])
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


# ----------------------------------------------------------------------------- the f64 check


def check_reference_worker(out: str, n: int, targets: list[int], ig_steps: int) -> None:
    """Float64 reference on the CPU: per-target `jax.grad` loops (no vmap, no kernels)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    lm, _ = build_causal_lm(architecture(True), "float64", 5, on_device=False)
    fwd = make_forward(lm, {})
    ids = np.random.default_rng(7).integers(1, TINY["vocabulary_size"], n).astype(np.int32)
    mask = jnp.ones((1, n), bool)

    def lp_fn(x: Any, t: int) -> Any:
        logits = fwd.logits(fwd.params, x[None], mask)[0, t - 1].astype(jnp.float64)
        return jax.nn.log_softmax(logits)[ids[t]]

    e = fwd.embed(fwd.params, jnp.asarray(ids)[None])[0]
    grad = jax.jit(jax.grad(lp_fn), static_argnums=1)
    rows_l2, rows_gxi = [], []
    for t in targets:
        g = grad(e, int(t))
        rows_l2.append(np.linalg.norm(g, axis=-1))
        rows_gxi.append(np.sum(np.asarray(g) * np.asarray(e), -1))
    span = jax.jit(jax.grad(lambda x: sum(lp_fn(x, int(t)) for t in targets)))
    ig = np.zeros(e.shape)
    for k in range(ig_steps):
        ig += np.asarray(span(e * ((k + 0.5) / ig_steps))) / ig_steps
    g = np.asarray(span(e))
    np.savez(out, ids=ids, targets=np.asarray(targets), l2=np.stack(rows_l2),
             gxi=np.stack(rows_gxi), span_l2=np.linalg.norm(g, axis=-1),
             span_gxi=np.sum(g * np.asarray(e), -1), ig=np.sum(ig * np.asarray(e), -1))


def check(args: argparse.Namespace) -> int:
    """The kernels (float32, default device, jit(vmap(vjp))) against the float64 reference."""
    import jax
    import numpy as np

    from promptlit.salience import kernels as K

    n, targets, ig_steps = 320, [1, 7, 100, 199, 250, 300, 318, 319], 8
    work = Path(tempfile.mkdtemp(prefix="gemma2-check-"))
    ref_file = work / "ref.npz"
    _spawn(["--worker-check-ref", "--out", str(ref_file)], collect=False,
           env={"JAX_PLATFORMS": "cpu"})
    ref = dict(np.load(ref_file))
    shutil.rmtree(work, ignore_errors=True)
    lm, _ = build_causal_lm(architecture(True), "float32", 5, on_device=False)  # = the reference's
    ids = ref["ids"]
    tmask = np.zeros(n, bool)
    tmask[targets] = True

    def rel(a: Any, b: Any) -> float:
        return float(np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-30))

    platform = jax.devices()[0].platform
    print(f"correctness check on {platform} (jax {jax.__version__}): float32 kernels vs a float64 "
          f"per-target jax.grad reference on the CPU, tiny Gemma 2, N={n}, {len(targets)} "
          "targets (max |a - b| / max |b| per row):")
    # On GPUs float32 matmuls may run as TF32 by default; "highest" is exact float32.
    precisions = ["highest"] if platform == "cpu" else ["highest", "default"]
    ok = True
    for precision in precisions:
        with jax.default_matmul_precision(precision):
            fwd = make_forward(lm, {})  # a fresh compile cache per precision
            mat = K.salience_matrix(fwd, ids, ref["targets"], chunk_size=3)  # last chunk partial
            span = K.span_salience(fwd, ids, tmask, ig_steps=ig_steps)
        errors = {
            "matrix grad_l2": max(rel(mat["grad_l2"][i], ref["l2"][i])
                                  for i in range(len(targets))),
            "matrix grad_dot_input": max(rel(mat["grad_dot_input"][i], ref["gxi"][i])
                                         for i in range(len(targets))),
            "span grad_l2": rel(span["grad_l2"], ref["span_l2"]),
            "span grad_dot_input": rel(span["grad_dot_input"], ref["span_gxi"]),
            f"span IG-{ig_steps}": rel(span["integrated_gradients"], ref["ig"]),
        }
        print(f"  matmul precision {precision}:")
        for k, v in errors.items():
            print(f"    {k:24s} {v:.2e}")
        if precision == "highest":
            ok = max(errors.values()) <= args.check_tolerance
        elif max(errors.values()) > args.check_tolerance:
            print("    (above the tolerance at the default precision: TF32-like float32 matmuls; "
                  "set JAX_DEFAULT_MATMUL_PRECISION=highest for float32-exact salience)")
    print(f"check {'PASSED' if ok else 'FAILED'} (tolerance {args.check_tolerance:g} at "
          "precision highest)")
    return 0 if ok else 1


# ----------------------------------------------------------------------------- the parent


def _spawn(cmd: list[str], *, collect: bool = True,
           env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Runs this script as a worker subprocess; returns its ROW lines (stderr passes through)."""
    full_env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *cmd],
                            stdout=subprocess.PIPE, text=True, env=full_env)
    assert proc.stdout is not None
    rows = []
    for line in proc.stdout:
        if line.startswith("ROW "):
            rows.append(json.loads(line[4:]))
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"worker {' '.join(cmd[:2])} failed with exit status {proc.returncode}")
    return rows


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else spec.format(v)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def format_tables(rows: list[dict[str, Any]], ig_steps: int) -> str:
    """Per configuration (build, load, generation), then per N and T (salience ratios)."""
    configs: dict[str, dict[str, Any]] = {}
    for r in rows:
        configs.setdefault(r["dtype"], r)
    head = ["model", "dtype", "device", "params(M)", "weights GB", "build s", "build RSS MB",
            "load s", "load RSS MB", "gen P+G", "gen tok/s", "gen compile s", "gen RSS MB"]
    table = [head]
    for d, r in configs.items():
        gen = f"{r['gen_prompt']}+{r['gen_new']}" if "gen_new" in r else None
        table.append([r["model"], d, r["device"], _fmt(r.get("params_M"), "{:.1f}"),
                      _fmt(r.get("weights_gb"), "{:.2f}"), _fmt(r.get("build_s"), "{:.1f}"),
                      _fmt(r.get("build_peak_rss_mb"), "{:.0f}"), _fmt(r.get("load_s"), "{:.1f}"),
                      _fmt(r.get("load_peak_rss_mb"), "{:.0f}"), gen or "-",
                      _fmt(r.get("gen_tok_s"), "{:.2f}"), _fmt(r.get("gen_compile_s"), "{:.1f}"),
                      _fmt(r.get("gen_peak_rss_mb"), "{:.0f}")])
    out = [_table(table)]
    ig = f"spans{ig_steps}_over_ig{ig_steps}"
    head = ["dtype", "N", "T", "fwd s", "span/fwd(<=3.5)", "matrix s", "loop/matrix(>=2)",
            "matrix/(1+2T)fwd(<=1.3)", f"IG{ig_steps} s", f"{ig_steps}spans/IG{ig_steps}(>=1.5)",
            "compile s fwd/span/mat/ig", "peakRSS(MB)", "dev peak GB", "loadavg"]
    table = [head]
    for r in rows:
        if r.get("N") is None:
            continue
        if r.get("skipped"):
            table.append([r["dtype"], str(r["N"]), str(r["T"]), f"skipped: {r['skipped']}",
                          *["-"] * (len(head) - 4)])
            continue
        comp = "/".join(_fmt(r.get(k), "{:.1f}") for k in
                        ("compile_fwd_s", "compile_span_s", "compile_matrix_s", "compile_ig_s"))
        table.append([r["dtype"], str(r["N"]), str(r["T"]), _fmt(r.get("fwd_s"), "{:.3f}"),
                      _fmt(r.get("span_x_fwd"), "{:.2f}"), _fmt(r.get("matrix_s"), "{:.2f}"),
                      _fmt(r.get("loop_over_matrix"), "{:.2f}"),
                      _fmt(r.get("matrix_over_1p2T_fwd"), "{:.2f}"),
                      _fmt(r.get("ig_s"), "{:.2f}"), _fmt(r.get(ig), "{:.2f}"), comp,
                      _fmt(r.get("peak_rss_mb"), "{:.0f}"), _fmt(r.get("device_peak_gb"), "{:.1f}"),
                      _fmt(r.get("loadavg_1min"), "{:.1f}")])
    out.append(_table(table))
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="the whole flow on a 2-layer Gemma 2 at tiny sizes (seconds)")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, help="configurations to run")
    parser.add_argument("--sizes", type=int, nargs="+", help="prompt lengths N")
    parser.add_argument("--targets", type=int, nargs="+", help="target tokens T (the last T)")
    parser.add_argument("--repeats", type=int, help="steady runs of fwd / span / generate")
    parser.add_argument("--heavy-repeats", type=int,
                        help="steady runs of matrix / IG / loop (0: first call minus compile)")
    parser.add_argument("--gen", type=int, nargs=2, metavar=("P", "G"),
                        help="generation: prompt tokens and new tokens (G=0: no generation)")
    parser.add_argument("--loop-max-n", type=int, default=1 << 30,
                        help="run the per-target loop baseline only up to this N")
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--load-dir", help="also save each model as a keras-hub preset here and "
                        "time loading it (needs ~10.5 GB of disk for float32)")
    parser.add_argument("--no-load", action="store_true",
                        help="--dry-run: skip the save / from_preset round trip (it needs "
                        "TensorFlow for keras-hub's Gemma tokenizer)")
    parser.add_argument("--load-via", choices=("promptlit", "keras-hub"), default="promptlit",
                        help="load with promptlit's load_causal_lm (weights written once) or "
                        "keras-hub's from_preset (random initialisation first)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="wall-clock budget for all configurations; later measures are "
                        "skipped (and said so) once it is spent")
    parser.add_argument("--max-rss-gb", type=float, default=None,
                        help="cap each worker's planned peak resident memory (GB; the kernels "
                        "pick narrower target chunks / IG batches to stay under it): for a "
                        "machine whose free memory is shared with others")
    parser.add_argument("--compare-dtypes", action="store_true",
                        help="bfloat16 vs float32 salience on the same random weights "
                        "(--dtypes: which bfloat16 configurations; float32 is the reference)")
    parser.add_argument("--prompts", type=int, default=None,
                        help="--compare-dtypes: how many sample prompts (default 3; 2 dry)")
    parser.add_argument("--check", action="store_true",
                        help="kernels vs a float64 reference on a tiny Gemma 2 (jax < 0.12)")
    parser.add_argument("--check-tolerance", type=float, default=1e-3)
    parser.add_argument("--json", type=Path, help="also write the rows / results here")
    # internal: worker modes
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-compare", help=argparse.SUPPRESS)
    parser.add_argument("--worker-check-ref", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.worker:
        run_worker(WorkerArgs(**json.loads(args.worker)))
        return 0
    if args.worker_compare:
        compare_worker(args.worker_compare, args.dry_run, args.ig_steps, args.out,
                       max_rss_gb=args.max_rss_gb, prompts=args.prompts)
        return 0
    if args.worker_check_ref:
        check_reference_worker(args.out, 320, [1, 7, 100, 199, 250, 300, 318, 319], 8)
        return 0
    if args.check:
        return check(args)
    if args.compare_dtypes:
        return compare_dtypes(args)

    tiny = args.dry_run
    dtypes = args.dtypes or (list(DTYPES) if tiny else ["float32", "bfloat16"])
    sizes = args.sizes or ([64] if tiny else [128])
    targets = args.targets or ([4] if tiny else [8])
    repeats = args.repeats if args.repeats is not None else (1 if tiny else 3)
    heavy = args.heavy_repeats if args.heavy_repeats is not None else (1 if tiny else 1)
    gen = args.gen or ([16, 4] if tiny else [128, 16])
    start = time.time()
    deadline = start + args.budget_s if args.budget_s else float("inf")
    load_dir = args.load_dir
    scratch = None
    if tiny and load_dir is None and not args.no_load:
        scratch = load_dir = tempfile.mkdtemp(prefix="gemma2-dry-")
    rows: list[dict[str, Any]] = []
    try:
        for dtype in dtypes:
            if time.time() > deadline:
                log(f"{dtype}: skipped (time budget)")
                continue
            wa = WorkerArgs(dtype=dtype, tiny=tiny, sizes=sizes, targets=targets,
                            repeats=repeats, heavy_repeats=heavy, gen_prompt=gen[0],
                            gen_new=gen[1], loop_max_n=args.loop_max_n, ig_steps=args.ig_steps,
                            load_dir=load_dir, load_via=args.load_via, deadline=deadline,
                            max_rss_gb=args.max_rss_gb)
            rows += _spawn(["--worker", json.dumps(dataclasses.asdict(wa))])
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    print(format_tables(rows, args.ig_steps))
    print(f"note: {len(dtypes)} configuration(s) in {time.time() - start:.0f} s wall; times are "
          "steady-state medians (compile excluded); RSS is per phase (VmHWM reset per phase).")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
