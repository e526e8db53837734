"""Speed and memory of the salience kernels, printed as ratios against simple baselines.

Usage:
    .venv/bin/python benchmarks/salience.py --quick          # smoke run, ~2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/salience.py                  # ~100M-param Gemma, N=256/1024, T=16/64
    .venv/bin/python benchmarks/salience.py --sizes 256 --targets 16 --no-tf

Rows: the embedded model `presets/tiny_lm` (skipped with a note if it has not been built) and a
Gemma-architecture model with random weights (~100M parameters; `--quick` shrinks it). For each
prompt length N (all tokens are real; targets are the last T tokens):

* fwd: one jitted forward + token log-probs (`sequence_log_probs`), steady state.
* compile: first call minus steady call, for forward / span / matrix.
* span/fwd: Grad L2 + Grad.Input span salience (one forward + one backward) over the forward
  (goal <= 3.5).
* contrast/span: contrastive span salience ("why A rather than B?", log p(A) - log p(B) with a
  random B as long as the span: one forward + backward over both sequences as a batch of two,
  `promptlit.salience.contrast`) over the plain span call, same methods (goal <= 2.2).
* loop/matrix: a Python loop of T calls of one jitted per-target gradient, over our full
  T x N matrix in one call (goal >= 2).
* matrix/(1+2T)fwd: the matrix against its FLOP-level lower bound, one forward plus T backwards
  at ~2 forwards each (goal <= 1.3).
* 16spans/IG16: 16 separate span-gradient calls (naive IG) over IG with m=16 alpha steps batched
  in one call (goal >= 1.5).
* TF/ours: the same span salience done the LIT way, TensorFlow `GradientTape` around the same
  Gemma architecture (KERAS_BACKEND=tensorflow, in a subprocess) — eager, and in `tf.function`.
* peak RSS: the process's peak resident memory so far (`resource.getrusage`); XLA buffers are not
  visible to tracemalloc, so RSS is the meaningful number on CPU.

No cliffs (issue 12):

    .venv/bin/python benchmarks/salience.py --buckets                 # schemes: compiles vs padding
    .venv/bin/python benchmarks/salience.py --sweep --only tiny_lm    # N = 100..1100 step 50, T = 16
    .venv/bin/python benchmarks/salience.py --sweep --only tiny_lm --scheme old   # before
    .venv/bin/python benchmarks/salience.py --sweep --only tiny_lm --scheme pow2  # no 2^k skip

`--buckets` prints, for several length-bucket schemes, the number of distinct buckets (compiles per
kernel) and the padding waste over N ranges. `--sweep` times the gradient matrix and span salience
at fixed T over N = 100, 150, ..., 1100 (`--sweep-range`), one compile pass, then `--passes`
passes over all N with the median per N (interleaving N spreads the noise of a shared machine),
and prints each N's bucket, time, the step ratio t(N) / t(previous N) and that ratio over the N
ratio (above 1: time grew faster than N; the goal is no step above 1.3 where N grows by < 30 %).
Both wall time and this process's CPU time are recorded (CPU time moves far less with other
users' load). `--scheme old` times the buckets used before (powers of two to 256, then x128),
`--scheme pow2` today's buckets without the power-of-two skip (512, 1024 kept as buckets).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GEMMA_100M = {
    "vocabulary_size": 32000,
    "num_layers": 9,
    "num_query_heads": 12,
    "num_key_value_heads": 1,
    "hidden_dim": 768,
    "intermediate_dim": 3072,
    "head_dim": 64,
}
GEMMA_QUICK = {
    "vocabulary_size": 4096,
    "num_layers": 2,
    "num_query_heads": 4,
    "num_key_value_heads": 1,
    "hidden_dim": 128,
    "intermediate_dim": 512,
    "head_dim": 32,
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(first-call seconds, median steady-state seconds)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def _timed_ratio(fn: Callable[[], Any], base: Callable[[], Any], repeats: int
                 ) -> tuple[float, float]:
    """(first-call seconds of ``fn``, median of t(fn) / t(base) over ``repeats`` interleaved
    pairs): on a shared machine, load changes between two separately timed medians; each pair
    here runs back to back, so the ratio is steadier than a ratio of medians."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    base()
    ratios = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        base()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
    return first, statistics.median(ratios)


_TF_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys, time
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf, keras, keras_hub
    cfg = json.loads(sys.argv[1])
    keras.utils.set_random_seed(0)
    bb = keras_hub.models.GemmaBackbone(**cfg["backbone"])
    lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)

    def span_grad(ids, mask, tmask):
        # The LIT way: a GradientTape watching the token-embedding output.
        with tf.GradientTape() as tape:
            e = bb.token_embedding(ids)
            tape.watch(e)
            x = e * tf.cast(tf.sqrt(float(bb.hidden_dim)), e.dtype)
            for layer in bb.transformer_layers:
                x = layer(x, padding_mask=mask)
            logits = bb.token_embedding(bb.layer_norm(x), reverse=True)
            lsm = tf.nn.log_softmax(logits[:, :-1], axis=-1)
            lp = tf.gather(lsm, ids[:, 1:], batch_dims=2)
            f = tf.reduce_sum(lp * tmask[:, 1:])
        g = tape.gradient(f, e)
        return tf.norm(g, axis=-1), tf.reduce_sum(g * e, axis=-1)

    compiled = tf.function(span_grad)
    out = {}
    for n in cfg["sizes"]:
        ids = tf.constant(np.random.default_rng(0).integers(1, 100, (1, n)), tf.int32)
        mask = tf.ones((1, n), tf.int32)
        tmask = np.zeros((1, n), np.float32); tmask[0, -16:] = 1.0
        tmask = tf.constant(tmask)
        res = {}
        for name, fn in (("eager", span_grad), ("tf_function", compiled)):
            fn(ids, mask, tmask)
            times = []
            for _ in range(cfg["repeats"]):
                t0 = time.perf_counter(); r = fn(ids, mask, tmask); _ = r[0].numpy()
                times.append(time.perf_counter() - t0)
            res[name] = sorted(times)[len(times) // 2]
        out[str(n)] = res
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))
    """
)


def _tf_baseline(backbone_cfg: dict[str, Any], sizes: list[int], repeats: int) -> dict[str, Any]:
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env["CUDA_VISIBLE_DEVICES"] = ""
    arg = json.dumps({"backbone": backbone_cfg, "sizes": sizes, "repeats": repeats})
    proc = subprocess.run(
        [sys.executable, "-c", _TF_SCRIPT, arg], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bench_model(
    name: str,
    causal_lm: Any,
    sizes: list[int],
    targets: list[int],
    repeats: int,
    tf_times: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from promptlit.salience import contrast as C
    from promptlit.salience import kernels as K
    from promptlit.salience.forward import lm_forward

    fwd = lm_forward(causal_lm)
    n_params = sum(int(np.prod(v.shape)) for v in causal_lm.weights)
    vocab = causal_lm.backbone.vocabulary_size
    rows = []

    @jax.jit
    def one_target_grad(params: Any, ids: Any, mask: Any, t: Any) -> Any:
        """Baseline: the gradient of a single target's log-prob, one jitted call per target."""
        e = fwd.embed(params, ids[None])[0]

        def f(x: Any) -> Any:
            logits = fwd.logits(params, x[None], mask[None])[0]
            return K._token_log_probs(logits, ids)[t]

        g = jax.grad(f)(e)
        return jnp.linalg.norm(g, axis=-1), jnp.sum(g * e, -1)

    for n in sizes:
        rng = np.random.default_rng(n)
        ids = rng.integers(1, vocab, size=n).astype(np.int32)
        padded, mask = K._pad(ids, fwd.max_positions)
        fwd_first, t_fwd = _timed(lambda ids=ids: K.sequence_log_probs(fwd, ids), repeats)
        for t in targets:
            tmask = np.zeros(n, bool)
            tmask[n - t :] = True
            positions = np.arange(n - t, n)
            span_first, t_span = _timed(
                lambda ids=ids, tm=tmask: K.span_salience(
                    fwd, ids, tm, methods=("grad_l2", "grad_dot_input")
                ),
                repeats,
            )
            b_ids = rng.integers(1, vocab, size=t).astype(np.int32)  # B, as long as the span
            contrast_first, contrast_ratio = _timed_ratio(
                lambda ids=ids, tm=tmask, b=b_ids: C.contrast_salience(
                    fwd, ids, tm, b, methods=("grad_l2", "grad_dot_input")
                ),
                lambda ids=ids, tm=tmask: K.span_salience(
                    fwd, ids, tm, methods=("grad_l2", "grad_dot_input")
                ),
                max(repeats, 5),
            )
            mat_first, t_mat = _timed(
                lambda ids=ids, p=positions: K.salience_matrix(fwd, ids, p), max(1, repeats // 2)
            )

            def loop(positions: Any = positions, padded: Any = padded, mask: Any = mask) -> None:
                for p in positions:
                    jax.block_until_ready(one_target_grad(fwd.params, padded, mask, int(p)))

            _, t_loop = _timed(loop, 1)
            ig_first, t_ig = _timed(
                lambda ids=ids, tm=tmask: K.span_salience(
                    fwd, ids, tm, methods=("integrated_gradients",), ig_steps=16, ig_batch_size=4
                ),
                max(1, repeats // 2),
            )
            t_16_spans = 16 * t_span  # 16 independent span-gradient calls (measured: one)
            row = {
                "model": name,
                "params_M": n_params / 1e6,
                "N": n,
                "T": t,
                "fwd_ms": 1e3 * t_fwd,
                "compile_s": {
                    "fwd": fwd_first - t_fwd,
                    "span": span_first - t_span,
                    "matrix": mat_first - t_mat,
                    "ig16": ig_first - t_ig,
                },
                "span_x_fwd": t_span / t_fwd,
                "contrast_over_span": contrast_ratio,
                "contrast_compile_s": contrast_first - contrast_ratio * t_span,
                "matrix_ms": 1e3 * t_mat,
                "loop_over_matrix": t_loop / t_mat,
                "matrix_over_1p2T_fwd": t_mat / ((1 + 2 * t) * t_fwd),
                "ig16_ms": 1e3 * t_ig,
                "spans16_over_ig16": t_16_spans / t_ig,
                "peak_rss_mb": _peak_rss_mb(),
            }
            if tf_times and str(n) in tf_times:
                row["tf_eager_over_ours"] = tf_times[str(n)]["eager"] / t_span
                row["tf_function_over_ours"] = tf_times[str(n)]["tf_function"] / t_span
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _print_table(rows: list[dict[str, Any]], notes: list[str]) -> None:
    cols = [
        ("model", "{}"),
        ("params_M", "{:.1f}"),
        ("N", "{}"),
        ("T", "{}"),
        ("fwd_ms", "{:.1f}"),
        ("span_x_fwd", "{:.2f}"),
        ("contrast_over_span", "{:.2f}"),
        ("matrix_ms", "{:.0f}"),
        ("loop_over_matrix", "{:.2f}"),
        ("matrix_over_1p2T_fwd", "{:.2f}"),
        ("ig16_ms", "{:.0f}"),
        ("spans16_over_ig16", "{:.2f}"),
        ("tf_eager_over_ours", "{:.2f}"),
        ("tf_function_over_ours", "{:.2f}"),
        ("compile_s", "{}"),
        ("peak_rss_mb", "{:.0f}"),
    ]
    heads = {
        "params_M": "params(M)",
        "span_x_fwd": "span/fwd(<=3.5)",
        "contrast_over_span": "contrast/span(<=2.2)",
        "loop_over_matrix": "loop/matrix(>=2)",
        "matrix_over_1p2T_fwd": "matrix/(1+2T)fwd(<=1.3)",
        "spans16_over_ig16": "16spans/IG16(>=1.5)",
        "tf_eager_over_ours": "TFeager/ours",
        "tf_function_over_ours": "TFfunc/ours",
        "compile_s": "compile s fwd/span/mat/ig",
        "peak_rss_mb": "peakRSS(MB)",
    }
    table = [[heads.get(c, c) for c, _ in cols]]
    for r in rows:
        line = []
        for c, fmt in cols:
            v = r.get(c)
            if c == "compile_s" and v is not None:
                line.append("/".join(f"{v[k]:.1f}" for k in ("fwd", "span", "matrix", "ig16")))
            else:
                line.append("-" if v is None else fmt.format(v))
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for i, row in enumerate(table):
        print(" | ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    for note in notes:
        print(f"note: {note}")


def _old_bucket(n: int, max_positions: int | None = None) -> int:
    """The buckets before issue 12: powers of two from 32 to 256, then multiples of 128 (no
    position limit: the sweep's models have none)."""
    return max(32, 1 << (n - 1).bit_length()) if n <= 256 else -(-n // 128) * 128


def _pow2_bucket(n: int, max_positions: int | None = None) -> int:
    """Today's buckets, but keeping the exact powers of two (512, 1024, ...) as buckets: what
    `kernels.bucket_length` gives an accelerator."""
    from promptlit.salience import kernels as K

    return K.bucket_length(n, max_positions, platform="gpu")


def _bucket_schemes() -> dict[str, Callable[[int], int]]:
    from promptlit.salience import kernels as K

    def geometric(per_octave: int) -> Callable[[int], int]:
        bits = per_octave.bit_length() - 1

        def bucket(n: int) -> int:
            step = max(32, 1 << max(0, (n - 1).bit_length() - 1 - bits))
            return -(-n // step) * step

        return bucket

    return {
        "old: 2^k to 256, then x128": _old_bucket,
        "x32 to 256, then x64": lambda n: -(-n // 32) * 32 if n <= 256 else -(-n // 64) * 64,
        "x32, then 4 per octave": geometric(4),
        "x32, then 8 per octave": _pow2_bucket,
        "same, 2^k -> 2^k+32 from 512 (ours)": K.bucket_length,
        "x32, then 16 per octave": geometric(16),
    }


def _print_buckets() -> None:
    """Compile count vs padding waste of length-bucket schemes (pure arithmetic)."""
    import numpy as np

    rows = [["scheme", "N range", "buckets (compiles)", "mean pad", "max pad N>256",
             "max bucket step N>=256"]]
    for lo, hi in ((100, 1100), (33, 2048), (33, 8192)):
        ns = np.arange(lo, hi + 1)
        for name, fn in _bucket_schemes().items():
            b = np.array([fn(int(n)) for n in ns])
            waste = (b - ns) / b
            distinct = sorted(set(b.tolist()))
            big = [x for x in distinct if x >= 256]
            steps = [y / x for x, y in zip(big, big[1:], strict=False)]
            rows.append([name, f"{lo}-{hi}", str(len(distinct)), f"{waste.mean():.1%}",
                         f"{waste[ns > 256].max():.1%}", f"{max(steps):.3f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print(" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))


def _exact_bucket(n: int, max_positions: int | None = None) -> int:
    """No padding at all: every length its own shape (the reference the buckets are judged by)."""
    return n


SCHEMES: dict[str, Callable[..., int] | None] = {
    "ours": None, "old": _old_bucket, "pow2": _pow2_bucket, "exact": _exact_bucket}
"""--scheme name -> bucket function (None: `kernels.bucket_length` as shipped)."""


def _sweep(name: str, causal_lm: Any, ns: list[int], t: int, passes: int,
           schemes: list[str]) -> list[dict[str, Any]]:
    """Times the T x N gradient matrix and span salience over `ns` (median over passes), for
    each bucket scheme in `schemes`, interleaved within every pass (same machine state)."""
    import numpy as np

    from promptlit.salience import kernels as K
    from promptlit.salience.forward import lm_forward

    shipped = K.bucket_length
    buckets = {sc: SCHEMES[sc] or shipped for sc in schemes}
    fwd = lm_forward(causal_lm)
    vocab = causal_lm.backbone.vocabulary_size
    inputs = {}
    for n in ns:
        ids = np.random.default_rng(n).integers(1, vocab, size=n).astype(np.int32)
        tmask = np.zeros(n, bool)
        tmask[n - t:] = True
        inputs[n] = (ids, tmask, np.arange(n - t, n))

    def run(scheme: str, n: int) -> tuple[float, float, float, float]:
        K.bucket_length = buckets[scheme]  # type: ignore[assignment] # this process only
        try:
            ids, tmask, pos = inputs[n]
            t0, c0 = time.perf_counter(), time.process_time()
            K.salience_matrix(fwd, ids, pos)
            t1, c1 = time.perf_counter(), time.process_time()
            K.span_salience(fwd, ids, tmask, methods=("grad_l2", "grad_dot_input"))
            t2, c2 = time.perf_counter(), time.process_time()
        finally:
            K.bucket_length = shipped  # type: ignore[assignment]
        return t1 - t0, t2 - t1, c1 - c0, c2 - c1

    for n in ns:  # compile pass (and warm-up)
        for sc in schemes:
            t0 = time.perf_counter()
            run(sc, n)
            print(f"{name}: compiled/warmed N={n} {sc} ({time.perf_counter() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
    # Wall time, and this process's CPU time (all threads): on a shared machine the CPU time
    # moves far less with other users' load than the wall time does.
    kernels = ("matrix", "span", "matrix_cpu", "span_cpu")
    times = {(sc, n): {k: [] for k in kernels} for sc in schemes for n in ns}
    for p in range(passes):
        for n in ns:
            for sc in schemes:
                for k, v in zip(kernels, run(sc, n), strict=True):
                    times[(sc, n)][k].append(v)
        print(f"{name}: pass {p + 1}/{passes} done", file=sys.stderr, flush=True)
    rows = []
    for sc in schemes:
        for i, n in enumerate(ns):
            row: dict[str, Any] = {"model": name, "scheme": sc, "N": n, "T": t,
                                   "bucket": buckets[sc](n, fwd.max_positions)}
            for kernel in kernels:
                med = statistics.median(times[(sc, n)][kernel])
                row[f"{kernel}_ms"] = 1e3 * med
                if "exact" in schemes:
                    row[f"{kernel}_over_exact"] = med / statistics.median(
                        times[("exact", n)][kernel])
                if i:
                    prev = statistics.median(times[(sc, ns[i - 1])][kernel])
                    row[f"{kernel}_step"] = med / prev
                    row[f"{kernel}_step_over_N"] = (med / prev) / (n / ns[i - 1])
            rows.append(row)
        distinct = len({r["bucket"] for r in rows if r["scheme"] == sc})
        print(f"{name} ({sc} buckets): {distinct} buckets for {len(ns)} lengths",
              file=sys.stderr)
    print(f"{name}: {K.compile_count(fwd)} executables compiled in all", file=sys.stderr)
    return rows


def _print_sweep(rows: list[dict[str, Any]]) -> None:
    """The sweep table, then per scheme and kernel: the largest step t(N) / t(previous N), the
    largest where N grows < 30 %, and, with `exact` in the run, the largest cost of padding
    t / t_exact and the largest step beyond the exact length's own step (a cliff is a step the
    unpadded kernel does not take)."""
    cols = ["model", "scheme", "N", "bucket"]
    heads = {}
    for kernel in ("matrix", "span"):
        for suffix, head in (("_ms", "ms"), ("_step", "step"), ("_over_exact", "/exact"),
                             ("_cpu_ms", "CPU ms"), ("_cpu_step", "CPU step")):
            key = kernel + suffix
            if any(key in r for r in rows):
                cols.append(key)
                heads[key] = f"{kernel} {head}"
    table = [[heads.get(c, c) for c in cols]]
    for r in rows:
        table.append([("-" if r.get(c) is None else
                       f"{r[c]:.2f}" if ("step" in c or "exact" in c) else
                       f"{r[c]:.0f}" if c.endswith("_ms") else str(r[c])) for c in cols])
    widths = [max(len(x[i]) for x in table) for i in range(len(cols))]
    for i, x in enumerate(table):
        print(" | ".join(c.rjust(w) for c, w in zip(x, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    exact = {(r["model"], r["N"]): r for r in rows if r["scheme"] == "exact"}
    nan = float("nan")
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        mine = [r for r in rows if r["scheme"] == scheme]
        for kernel in ("matrix", "span", "matrix_cpu", "span_cpu"):
            pairs = [(prev, r) for prev, r in zip(mine, mine[1:], strict=False)
                     if f"{kernel}_step" in r and prev["model"] == r["model"]]
            steps = [r[f"{kernel}_step"] for _, r in pairs]
            small = [r[f"{kernel}_step"] for prev, r in pairs if r["N"] / prev["N"] < 1.3]
            line = (f"{scheme} {kernel}: max step {max(steps, default=nan):.2f}; where N grows "
                    f"< 30 %: {max(small, default=nan):.2f}")
            if exact and scheme != "exact":
                over = [r[f"{kernel}_over_exact"] for r in mine]
                beyond = [r[f"{kernel}_step"] / exact[(r["model"], r["N"])][f"{kernel}_step"]
                          for _, r in pairs]
                worst = max(range(len(beyond)), key=beyond.__getitem__, default=None)
                line += (f"; padding cost t/t_exact {min(over):.2f}-{max(over):.2f}; max step "
                         f"beyond the exact step {max(beyond, default=nan):.2f}" +
                         (f" (N = {pairs[worst][1]['N']})" if worst is not None else ""))
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model and sizes (smoke run)")
    parser.add_argument("--sizes", type=int, nargs="+", help="prompt lengths N")
    parser.add_argument("--targets", type=int, nargs="+", help="numbers of target tokens T")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measure")
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow baseline")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--only", choices=("tiny_lm", "gemma"), default=None,
                        help="benchmark one model only (e.g. long prompts on the tiny one)")
    parser.add_argument("--buckets", action="store_true",
                        help="print compile count vs padding waste of length-bucket schemes")
    parser.add_argument("--sweep", action="store_true",
                        help="time matrix and span over N = 100..1100 at fixed T (no cliffs)")
    parser.add_argument("--sweep-range", type=int, nargs=3, default=(100, 1100, 50),
                        metavar=("FIRST", "LAST", "STEP"), help="N values of --sweep")
    parser.add_argument("--passes", type=int, default=5, help="--sweep: timed passes over all N")
    parser.add_argument("--scheme", choices=tuple(SCHEMES), nargs="+", default=["ours"],
                        help="--sweep: length buckets to time, interleaved (old: before issue "
                        "12; pow2: ours without the CPU power-of-two skip; exact: no padding, "
                        "the reference)")
    args = parser.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import keras
    import keras_hub

    if args.buckets:
        _print_buckets()
        return 0
    if args.sweep:
        first, last, step = args.sweep_range
        ns = list(range(first, last + 1, step))
        t = (args.targets or [16])[0]
        rows: list[dict[str, Any]] = []
        if args.only != "gemma":
            lm = keras_hub.models.CausalLM.from_preset(str(ROOT / "presets" / "tiny_lm"))
            rows += _sweep("tiny_lm", lm, ns, t, args.passes, list(dict.fromkeys(args.scheme)))
        if args.only != "tiny_lm":
            keras.utils.set_random_seed(0)
            cfg = GEMMA_QUICK if args.quick else GEMMA_100M
            bb = keras_hub.models.GemmaBackbone(**cfg)
            lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
            rows += _sweep("gemma-quick" if args.quick else "gemma-100M", lm, ns, t,
                           args.passes, list(dict.fromkeys(args.scheme)))
        _print_sweep(rows)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return 0

    sizes = args.sizes or ([64, 128] if args.quick else [256, 1024])
    targets = args.targets or ([8, 16] if args.quick else [16, 64])
    repeats = args.repeats or (3 if args.quick else 3)
    gemma_cfg = GEMMA_QUICK if args.quick else GEMMA_100M
    notes = [
        "targets = the last T tokens; 16spans = 16 x one measured span-gradient call; "
        "TF baselines time the same span salience (T=16) on the same random Gemma config.",
    ]
    rows: list[dict[str, Any]] = []

    tiny = ROOT / "presets" / "tiny_lm"
    if args.only == "gemma":
        pass
    elif tiny.exists():
        lm = keras_hub.models.CausalLM.from_preset(str(tiny))
        small = [min(s, 128) for s in sizes] if args.quick else sizes
        rows += _bench_model("tiny_lm", lm, sorted(set(small)), targets, repeats, None)
    else:
        notes.append("presets/tiny_lm not built yet (H4): its row is skipped.")

    if args.only == "tiny_lm":
        _print_table(rows, notes)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return 0
    keras.utils.set_random_seed(0)
    bb = keras_hub.models.GemmaBackbone(**gemma_cfg)
    lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=None)
    tf_times = None
    if not args.no_tf:
        tf_times = _tf_baseline(gemma_cfg, sizes, repeats)
        if "error" in tf_times:
            notes.append(f"TensorFlow baseline failed: {tf_times['error']}")
            tf_times = None
        else:
            notes.append(f"TF baseline subprocess peak RSS: {tf_times['peak_rss_mb']:.0f} MB")
    label = "gemma-quick" if args.quick else "gemma-100M"
    rows += _bench_model(label, lm, sizes, targets, repeats, tf_times)

    _print_table(rows, notes)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
