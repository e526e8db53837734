"""JAX salience kernels for causal LMs: span salience, the full target x source matrix, log-probs.

Conventions (shared by every function here):

* **Next-token scoring.** Token `p` (a *target*) is scored by the model's prediction at `p - 1`:
  `lp[p] = log_softmax(logits[p - 1])[token_ids[p]]`. Position 0 has no prediction and cannot be a
  target; `sequence_log_probs` reports 0.0 there.
* **Attribution point.** Gradients are taken with respect to the *token-embedding output*
  `e = fwd.embed(params, token_ids)`, `<float>[N, D]` (before Gemma's scale, before GPT-2's
  position embeddings). With `g_j = d f / d e_j` for a scalar objective `f`:

  - `grad_l2[j] = ||g_j||_2` (unsigned),
  - `grad_dot_input[j] = <g_j, e_j>` (signed),
  - `integrated_gradients[j] = <e_j - b_j, (1/m) * sum_k g_j(b + alpha_k (e - b))>` (signed) with
    the **Riemann midpoint rule** `alpha_k = (k + 1/2) / m`, `k = 0..m-1`, and baseline `b`
    (zero embeddings by default). Completeness: `sum_j IG_j ~ f(e) - f(b)`, with an
    O(1/m^2) error for smooth paths. Caveat: in models whose first op on the (scaled) embeddings
    is an RMSNorm (Gemma, Llama, Mistral, Qwen), the all-zero baseline sits at the norm's 0/0
    point; `f` jumps near alpha = 0 (over alpha ~ sqrt(eps)), so the sum approximates
    `f(e) - f(0+)`, not `f(e) - f(0)`. Pass a token id (e.g. the pad token) as `ig_baseline` when
    exact completeness matters.

* **Span salience** uses `f = sum_{p in span} lp[p]` (log-prob of the whole span); the **matrix**
  has one row per target `t` with `f = lp[t]`. Grad.Input and IG are linear in `f`, so a span's
  Grad.Input / IG equals the sum of its matrix rows; Grad L2 is not (it is a norm).

Efficiency: the model is split as `logits = head(hidden(e))` with a position-wise head (see
`LMForward`). One forward of `hidden` is linearised with `jax.vjp`; for each chunk of targets the
head runs on the chunk's predicting rows only (`lp[p]` depends on `hidden[p - 1]` only: a head
VJP on `C` rows, never `N x V` logits), and each target's cotangent on `hidden` is a single row.
The body's VJP is then `vmap`-ed over chunks of targets inside one compiled `fori_loop` with a
dynamic trip count. Span salience likewise runs the head on the span's rows only. IG batches its alpha steps along the batch axis (chunks of
`ig_batch_size`), inside the same compiled call as the plain gradient.

Cooperative cancellation: long work runs as several compiled calls ("pieces"): IG at most
`IG_STEPS_PER_CALL` alpha steps per call (disjoint alpha subsets, summed: exactly the one-call
Riemann sum), the matrix at most `MATRIX_TARGETS_PER_CALL` targets per call. After each piece the
optional `progress(fraction, message)` callback is called; if it raises (e.g.
`promptlit.lib.cancel.Cancelled`), no further piece runs and the exception propagates. Work that
fits one piece (the common 16-step IG, responses up to 256 tokens) stays one call.

Padding, compiles and memory ("no cliffs"):

* **Lengths** are padded to buckets (`bucket_length`): multiples of 32 up to 512, then 8 buckets
  per octave (576, 640, ..., 1024, 1152, ...); on a CPU the slow exact powers of two from 512
  up are replaced by themselves + 32 (544, 1056, 2080, ...); never past the model's position
  limit (`LMForward.max_positions`): at most ~11.6 % padding above 256 tokens, and adjacent
  buckets differ by at most 13.3 % there, so time grows smoothly with N; 48 buckets cover
  N <= 8192. Each kernel compiles once per (model, bucket, widths).
* **Target chunks** are sized to the work (`split_evenly`): the fewest chunks of at most
  `chunk_size` targets, near-equal, rounded up to a short ladder of widths (1-8, then 4 per
  octave: 10, 12, 14, 16, 20, 24, ...; at most 16 widths up to 32), so 23 targets run as one
  chunk of 24 (not 32) and 40 targets with `chunk_size=32` as two chunks of 20. IG alpha batches
  are split the same way (6 steps with `ig_batch_size=4`: two batches of 3, not 4 + 4).
* **Padding waste** of every call (positions, target rows, alpha steps) is a `Padding` record,
  logged at DEBUG on the `promptlit.salience.kernels` logger (`promptlit ... --verbose` shows
  it) with the record in the log record's `padding` attribute.
* **Memory**: with `chunk_size=None` / `ig_batch_size=None` (the defaults) the width is planned
  from the device's free memory (`promptlit.salience.memory`): the executable is compiled ahead of
  time at the widest width wanted (`MAX_CHUNK` / `MAX_IG_BATCH` for the platform; on a CPU
  narrowed by `cache_width` so one layer's attention probabilities stay cache-sized) and its
  `memory_analysis()` is checked against the budget before anything runs; if it does not fit, a
  width-1 compile gives the per-target bytes and the widest fitting width is used. An
  out-of-memory error while running halves the width and retries that call (a WARNING says so).
  Compiled executables are cached on the `LMForward` (`compile_count` counts them).

Shapes are padded with a padding mask, so results do not depend on the bucket or the chunking
(to float rounding). Results are unpadded numpy arrays, float32 (float64 when `jax_enable_x64`
is on).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from promptlit import distributed
from promptlit.salience import memory
from promptlit.salience.forward import LMForward

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input", "integrated_gradients")
SIGNED: dict[str, bool] = {"grad_l2": False, "grad_dot_input": True, "integrated_gradients": True}
MIN_BUCKET = 32
"""Shortest padded length, and the bucket step up to `2 * 8 * MIN_BUCKET` = 512 tokens."""
BUCKETS_PER_OCTAVE = 8
"""Buckets per doubling of the length above 512 tokens (bucket step = 1/8 of the octave)."""
SKIP_POWERS_FROM = 512
"""On a CPU, buckets that would be an exact power of two from here up are `MIN_BUCKET` longer
instead (power-of-two lengths are slow there; see `bucket_length`)."""
IG_STEPS_PER_CALL = 32
"""Most IG alpha steps one compiled call evaluates; more steps run as several calls."""
MATRIX_TARGETS_PER_CALL = 256
"""Most target rows one compiled matrix call computes; more run as several calls."""
MAX_CHUNK: dict[str, int] = {"cpu": 32, "default": 128}
"""Widest target chunk (targets per vmapped backward) planned per platform when `chunk_size` is
None. CPUs are compute-bound (wider chunks only cost memory); accelerators gain from width."""
MAX_IG_BATCH: dict[str, int] = {"cpu": 4, "default": 16}
"""Largest IG alpha batch planned per platform when `ig_batch_size` is None."""
MATRIX_IG_BATCH = 4
"""IG alpha batch of the IG *matrix* when `ig_batch_size` is None (there the chunk is planned)."""
CPU_ATTENTION_BYTES = 4 << 20
"""On a CPU, the most float32 attention probabilities (`width x heads x bucket^2 x 4` bytes, one
layer) a planned batch (targets per chunk, IG alphas per batch) may hold. Each vmapped row
re-reads its layer's `heads x N x N` probabilities in the backward pass; once a batch's outgrow
the caches, a wider batch costs more per row than it saves. Measured on a 2-core EPYC (1 MiB L2
per core, 32 MiB L3), matrix CPU time by chunk width, T = 23: GPT-2 (4 heads) N = 1100: 12.5 s
at width 1 against 16.0 s at 24; N = 700: 5.4 against 7.0 s; N = 140: equal (0.80-0.81 s) up to
8, 0.91 s at 24; tiny_lm (4 heads) N = 140: 8 best (0.148 s wall, 24: 0.175 s). 4 MiB picks the
best or a width within 2 % of it in each case. Accelerators are not capped (`MAX_CHUNK`)."""

ProgressFn = Callable[[float, str], None]


def bucket_length(n: int, max_positions: int | None = None, *, platform: str | None = None
                  ) -> int:
    """The padded length used for a sequence of `n` tokens.

    Multiples of 32 up to 512 (32, 64, ..., 480, 512), then `BUCKETS_PER_OCTAVE` = 8 buckets per
    doubling (576, 640, ..., 1024, 1152, 1280, ..., 2048, 2304, ...). On a CPU an exact power of
    two from `SKIP_POWERS_FROM` = 512 up is replaced by itself + 32 (..., 480, 544, 576, ...,
    960, 1056, 1152, ..., 1920, 2080, 2304, ...): there a power-of-two length is slow (README,
    "No cliffs": 1024 positions cost ~25 % more time than 1056, 512 8-16 % more than 544), so
    N = 481..544 share bucket 544 and N = 961..1056 bucket 1056; accelerators, which tile
    powers of two best, keep them. Either way: at most ~11 % padding above 256 tokens (11.6 %
    with the CPU skip: N = 481 in 544), adjacent buckets at most 12.5 % apart above 256 (13.3 %:
    480 -> 544), so no time cliffs, and O(log N) distinct shapes to compile (25 buckets up to
    N = 1100, 48 up to 8192). `benchmarks/salience.py --buckets` compares this with other
    schemes.

    Args:
        n: real tokens, >= 1.
        max_positions: the model's position limit (`LMForward.max_positions`; None: none). A
            bucket past it is cut to the limit when `n` fits (GPT-2, 1024 positions: N = 1000
            pads to 1024 on a CPU, not 1056); a longer `n` keeps its bucket, and the model's own
            error names its limit.
        platform: where the kernels run ("cpu", "gpu", "tpu"); None: the default device's.
    """
    if n <= 0:
        raise ValueError(f"bucket_length: need at least 1 token, got {n}.")
    skip = (platform or memory.platform()) == "cpu"
    below = 1 << max(0, (n - 1).bit_length() - 1)  # the largest power of two < n (n >= 2)
    if skip and n > 1 and below >= SKIP_POWERS_FROM and n <= below + MIN_BUCKET:
        bucket = below + MIN_BUCKET  # just past a skipped power of two: share its stand-in
    else:
        octave_bits = BUCKETS_PER_OCTAVE.bit_length() - 1  # 8 per octave -> 3
        step = max(MIN_BUCKET, 1 << max(0, (n - 1).bit_length() - 1 - octave_bits))
        bucket = -(-n // step) * step
        if skip and bucket >= SKIP_POWERS_FROM and bucket & (bucket - 1) == 0:
            bucket += MIN_BUCKET
    if max_positions is not None and n <= max_positions < bucket:
        bucket = int(max_positions)
    return bucket


def ladder_up(x: int) -> int:
    """Smallest chunk width >= x on the ladder 1..8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ...
    (exact up to 8, then 4 widths per octave: at most 20 % padding, few distinct compiles)."""
    x = int(x)
    if x <= 8:
        return max(1, x)
    step = 1 << ((x - 1).bit_length() - 3)  # x in (4 * step, 8 * step]
    return -(-x // step) * step


def split_evenly(total: int, most: int) -> tuple[int, int]:
    """`(width, count)`: `total` items in the fewest chunks of at most `most`, near-equal.

    `count = ceil(total / most)` chunks of `width = ladder_up(ceil(total / count))` (capped at
    `most`), so `count * width >= total` with little padding: `split_evenly(23, 32) == (24, 1)`,
    `split_evenly(40, 32) == (20, 2)`, `split_evenly(6, 4) == (3, 2)`.
    """
    total, most = max(1, int(total)), max(1, int(most))
    count = -(-total // most)
    width = min(most, ladder_up(-(-total // count)))
    return width, -(-total // width)


@dataclasses.dataclass(frozen=True)
class Padding:
    """What one kernel call computed beyond the real work, and how it was cut up.

    Attributes:
        kernel: "sequence_log_probs", "span_salience" or "salience_matrix".
        tokens, bucket: real and padded sequence length (positions).
        rows, row_slots: real target rows (matrix) or span positions (span head), and the rows
            computed including padding (matrix: chunks x `width` per call).
        width: targets per vmapped backward (matrix), 0 otherwise.
        ig_steps, ig_slots, ig_batch: IG alpha steps, alpha evaluations including zero-weight
            padding, and alphas per batched evaluation.
        calls: compiled calls made. retries: out-of-memory retries (each halved the width).
        activation_bytes: the compiled executable's buffers beyond its arguments (XLA's
            `memory_analysis`), None when unknown; budget_bytes: what planning allowed (None:
            widths were given, not planned).
    """

    kernel: str
    tokens: int
    bucket: int
    rows: int = 0
    row_slots: int = 0
    width: int = 0
    ig_steps: int = 0
    ig_slots: int = 0
    ig_batch: int = 0
    calls: int = 1
    retries: int = 0
    activation_bytes: int | None = None
    budget_bytes: int | None = None

    @property
    def token_waste(self) -> float:
        """Share of the bucket's positions that are padding."""
        return (self.bucket - self.tokens) / self.bucket

    @property
    def row_waste(self) -> float:
        return (self.row_slots - self.rows) / self.row_slots if self.row_slots else 0.0

    @property
    def ig_waste(self) -> float:
        return (self.ig_slots - self.ig_steps) / self.ig_slots if self.ig_slots else 0.0

    def describe(self) -> str:
        """One line: `salience_matrix: N=140 in bucket 160 (20 padded positions, 12%); ...`."""
        parts = [f"{self.kernel}: N={self.tokens} in bucket {self.bucket} "
                 f"({_n(self.bucket - self.tokens, 'padded position')}, {self.token_waste:.0%})"]
        if self.width:
            parts.append(f"T={self.rows} targets in chunks of {self.width} "
                         f"({_n(self.row_slots - self.rows, 'padded row')}, "
                         f"{self.row_waste:.0%})")
        elif self.row_slots:
            parts.append(f"{_n(self.rows, 'span position')} in {self.row_slots} head rows")
        if self.ig_steps:
            parts.append(f"IG {self.ig_steps} steps in batches of {self.ig_batch} "
                         f"({_n(self.ig_slots - self.ig_steps, 'padded step')}, "
                         f"{self.ig_waste:.0%})")
        parts.append(_n(self.calls, "call"))
        if self.retries:
            parts.append(_n(self.retries, "out-of-memory retry", "out-of-memory retries"))
        if self.activation_bytes is not None:
            mem = f"~{self.activation_bytes / memory.GB:.2f} GB working memory"
            if self.budget_bytes is not None:
                mem += f" (budget {self.budget_bytes / memory.GB:.1f} GB)"
            parts.append(mem)
        return "; ".join(parts)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _report(pad: Padding) -> None:
    logger.debug("%s", pad.describe(), extra={"padding": pad})


# ----------------------------------------------------------------------------- helpers


def _out_dtype() -> Any:
    return np.float64 if jax.config.jax_enable_x64 else np.float32


def _check_methods(methods: Sequence[str], where: str) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"{where}: unknown salience method(s) {unknown or '(none given)'}; "
            f"choose from {list(METHODS)}."
        )
    return methods


def _check_ids(token_ids: Any, where: str) -> np.ndarray:
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or ids.size < 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"{where}: token_ids must be a 1-D integer array of at least 2 tokens (one sequence, "
            f"prompt + response), got shape {ids.shape} dtype {ids.dtype}."
        )
    return ids.astype(np.int32)


def _pad(ids: np.ndarray, max_positions: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(padded <int32>[bucket], mask <bool>[bucket])` for one sequence (`bucket_length`)."""
    n = ids.shape[0]
    nb = bucket_length(n, max_positions)
    padded = np.zeros((nb,), np.int32)
    padded[:n] = ids
    mask = np.zeros((nb,), bool)
    mask[:n] = True
    return padded, mask


def _split(fwd: LMForward) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(hidden, head) with `logits == head(hidden)`; identity head if the split is unknown."""
    if fwd.hidden is not None and fwd.head is not None:
        return fwd.hidden, fwd.head
    return fwd.logits, lambda params, h: h


def _token_log_probs(logits: Any, ids: Any) -> Any:
    """`<float>[..., N, V], <int>[..., N] -> <float>[..., N]`; entry p scores ids[p] at p - 1."""
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    lsm = jax.nn.log_softmax(logits[..., :-1, :], axis=-1)
    lp = jnp.take_along_axis(lsm, ids[..., 1:, None], axis=-1)[..., 0]
    zeros = jnp.zeros(lp.shape[:-1] + (1,), lp.dtype)
    return jnp.concatenate([zeros, lp], axis=-1)


def _features(g: Any, e: Any, methods: tuple[str, ...]) -> dict[str, Any]:
    """`g, e: <float>[..., N, D]` -> {method: <float>[..., N]} for the gradient methods."""
    out = {}
    g32 = g.astype(jnp.promote_types(g.dtype, jnp.float32))
    if "grad_l2" in methods:
        out["grad_l2"] = jnp.sqrt(jnp.sum(g32 * g32, axis=-1))
    if "grad_dot_input" in methods:
        out["grad_dot_input"] = jnp.sum(g32 * e.astype(g32.dtype), axis=-1)
    return out


def _alpha_chunks(ig_steps: int, ig_batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint alphas `<float>[C, A]` and weights `<float>[C, A]` (1/m, 0 for padding)."""
    a = split_evenly(ig_steps, ig_batch_size)[0]
    ((alphas, weights, _),) = _alpha_pieces(ig_steps, a, max(ig_steps, 1))
    return alphas, weights


def _alpha_pieces(
    ig_steps: int, width: int, steps_per_call: int, start: int = 0
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The midpoint rule's alphas `k = start .. ig_steps - 1` split into pieces, one call each.

    Args:
        width: alphas per batched evaluation `A` (from `split_evenly(ig_steps, ig_batch_size)`).
        steps_per_call: most real steps per piece (rounded down to a multiple of `A`, >= `A`).
        start: the first alpha index not yet evaluated (0; more after an out-of-memory retry).

    Returns:
        `[(alphas <float>[C, A], weights <float>[C, A], steps), ...]`; padding has weight 0.
        Every `alpha_k = (k + 1/2) / m` (weight `1/m`) with `k >= start` is in exactly one
        piece, so summing the pieces' results gives exactly the one-call Riemann sum.
    """
    a = max(1, int(width))
    per = max(a, (max(1, int(steps_per_call)) // a) * a)
    alphas = (np.arange(start, ig_steps, dtype=np.float64) + 0.5) / ig_steps
    pieces = []
    for lo in range(0, alphas.size, per):
        piece = alphas[lo : lo + per]
        c = -(-piece.size // a)
        al = np.zeros((c * a,), np.float64)
        w = np.zeros((c * a,), np.float64)
        al[: piece.size] = piece
        w[: piece.size] = 1.0 / ig_steps
        pieces.append((al.reshape(c, a), w.reshape(c, a), int(piece.size)))
    return pieces


def _check_piece_size(value: int, name: str, where: str) -> int:
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{where}: {name} must be >= 1 (how much work one compiled call does), "
                         f"got {value!r}.")
    return int(value)


def _baseline(fwd: LMForward, params: Any, ids: Any, e: Any, kind: Any) -> Any:
    if kind == "zero":
        return jnp.zeros_like(e)
    return fwd.embed(params, jnp.full(ids.shape, kind, jnp.int32)[None])[0].astype(e.dtype)


def _check_baseline(ig_baseline: Any, where: str) -> Any:
    if ig_baseline == "zero" or (isinstance(ig_baseline, int | np.integer) and ig_baseline >= 0):
        return ig_baseline if ig_baseline == "zero" else int(ig_baseline)
    raise ValueError(
        f"{where}: ig_baseline must be 'zero' (all-zero embeddings) or a token id (e.g. the pad "
        f"token) whose embedding fills every position; got {ig_baseline!r}."
    )


def _dp(fwd: LMForward, width: int) -> int:
    """A batch width (targets per chunk, alphas per batch) rounded up to a multiple of the mesh's
    data axis, so the batch splits evenly over it (`width` itself on one device)."""
    return distributed.round_to_data(width, fwd.mesh) if fwd.mesh is not None else width


def _cached(fwd: LMForward, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    fn = fwd.cache.get(key)
    if fn is None:
        fn = fwd.cache[key] = build()
    return fn


def _shape_key(args: Any) -> tuple[Any, ...]:
    leaves, tree = jax.tree.flatten(args)
    return (str(tree), tuple((tuple(x.shape), str(x.dtype)) for x in leaves))


def _executable(
    fwd: LMForward, key: tuple[Any, ...], build: Callable[[], Any], args: tuple[Any, ...]
) -> Any:
    """The ahead-of-time compiled executable of `build()` (a jitted function) for `args`.

    `args[0]` is the weights (`fwd.params`, arrays or `jax.ShapeDtypeStruct`s); the rest fix the
    shapes. Cached on `fwd.cache` under `("exe", *key, shapes)` (see `compile_count`); the
    executable's `memory_analysis()` is known before it runs.
    """
    full = ("exe", *key, _shape_key(args[1:]))
    exe = fwd.cache.get(full)
    if exe is None:
        exe = fwd.cache[full] = _cached(fwd, key, build).lower(*args).compile()
    return exe


def compile_count(fwd: LMForward, kernel: str | None = None) -> int:
    """Executables compiled so far on `fwd` for `kernel` ("span", "matrix"; None: all).

    One per distinct (kernel settings, bucket, widths); `sequence_log_probs` is a plain
    `jax.jit` (count its compiles with `fwd.cache[("sequence_log_probs",)]._cache_size()`).
    """
    return sum(1 for k in fwd.cache
               if isinstance(k, tuple) and k and k[0] == "exe" and kernel in (None, k[1]))


def _max_width(kind: dict[str, int]) -> int:
    return kind.get(memory.platform(), kind["default"])


def cache_width(fwd: LMForward, bucket: int, most: int, per_row: int = 1) -> int:
    """`most`, narrowed on a CPU to the widest batch whose attention probabilities fit
    `CPU_ATTENTION_BYTES` (at least 1). `per_row`: batched sequences per row (an IG matrix row
    runs its alphas together). Elsewhere, or with the head count unknown, `most` itself."""
    if memory.platform() != "cpu" or not fwd.attention_heads:
        return most
    per = fwd.attention_heads * bucket * bucket * 4 * max(1, per_row)
    return max(1, min(most, CPU_ATTENTION_BYTES // per))


def _plan_width(
    where: str,
    total: int,
    most: int,
    compile_at: Callable[[int], Any],
    what: str,
) -> tuple[int, int | None, int]:
    """The widest width (near-equal split of `total`, at most `most`) that fits the budget.

    Args:
        compile_at: `width -> compiled executable` (cached, so asking twice costs nothing).
        what: "targets per chunk" / "alphas per batch", for messages.

    Returns:
        `(width, activation bytes at that width or None, budget bytes)`. Compiles at the widest
        width first; only if it does not fit, once more at width 1 and then at the widest width
        whose straight-line estimate between the two fits (`memory.fit_width`), checked by its
        own compile (and halved while it does not fit).
    """
    budget = memory.budget_bytes()
    width = split_evenly(total, most)[0]
    need = memory.activation_bytes(compile_at(width))
    if need is None or need <= budget or width == 1:
        if need is not None and need > budget:
            logger.warning("%s: needs ~%.2f GB with 1 of the %s, the budget is %.2f GB (free "
                           "memory x %.2f); trying anyway", where, need / memory.GB, what,
                           budget / memory.GB, memory.BUDGET_FRACTION)
        return width, need, budget
    need1 = memory.activation_bytes(compile_at(1))
    assert need1 is not None
    new = memory.fit_width(total, width, need1, need, budget)
    if new is None:
        logger.warning("%s: needs ~%.2f GB even with 1 of the %s, the budget is %.2f GB "
                       "(free memory x %.2f); trying anyway", where, need1 / memory.GB, what,
                       budget / memory.GB, memory.BUDGET_FRACTION)
        return 1, need1, budget
    need_new = memory.activation_bytes(compile_at(new))
    while need_new is not None and need_new > budget and new > 1:  # the line was optimistic
        new = split_evenly(total, new // 2)[0]
        need_new = memory.activation_bytes(compile_at(new))
    logger.info("%s: %d %s would need ~%.2f GB (budget %.2f GB); using %d", where, width, what,
                need / memory.GB, budget / memory.GB, new)
    return new, need_new, budget


def _compilable(fwd: LMForward, bucket: int, most: int, what: str, where: str) -> int:
    """`most`, capped so no intermediate exceeds `memory.MAX_ELEMENTS` (XLA cannot compile
    larger buffers; see `memory.widest_compilable`)."""
    cap = memory.widest_compilable(fwd, bucket, most)
    if cap < most:
        logger.info("%s: at most %d %s at length %d (largest intermediate x width <= %d "
                    "elements)", where, cap, what, bucket, memory.MAX_ELEMENTS)
    return cap


def _retry_width(where: str, error: BaseException, width: int, what: str, floor: int = 1
                 ) -> int:
    """After an out-of-memory `error` at `width`: the halved width, or raise MemoryError when
    `width` is already `floor` (1; on a mesh, the data axis: widths are multiples of it)."""
    if width <= floor:
        raise MemoryError(
            f"{where}: out of memory even with {floor} of the {what}"
            f"{' (one per device of the data axis)' if floor > 1 else ''}; use a shorter "
            "prompt, bfloat16 "
            "weights (--dtype bfloat16) or a device with more memory (`promptlit plan` estimates "
            f"what fits). ({(str(error).splitlines() or [''])[0][:200]})"
        ) from error
    new = max(1, width // 2)
    logger.warning("%s: out of memory with %d %s; retrying with %d", where, width, what, new)
    return new


# ----------------------------------------------------------------------------- sequence_log_probs


def sequence_log_probs(fwd: LMForward, token_ids: Any) -> np.ndarray:
    """Log-probability of every token given the tokens before it.

    Args:
        fwd: from `lm_forward(causal_lm)`.
        token_ids: `<int>[N]`, one sequence.

    Returns:
        `<float>[N]`: `log p(token_p | tokens_<p)`; entry 0 is 0.0 (nothing predicts it).
    """
    ids = _check_ids(token_ids, "sequence_log_probs")
    padded, mask = _pad(ids, fwd.max_positions)

    def build() -> Any:
        @jax.jit
        def run(params: Any, ids: Any, mask: Any) -> Any:
            e = fwd.embed(params, ids[None])
            return _token_log_probs(fwd.logits(params, e, mask[None])[0], ids)

        return run

    run = _cached(fwd, ("sequence_log_probs",), build)
    lp = run(fwd.params, padded, mask)
    _report(Padding("sequence_log_probs", ids.shape[0], padded.shape[0]))
    return np.asarray(lp, _out_dtype())[: ids.shape[0]]


# ----------------------------------------------------------------------------- span_salience


def _span_fn(fwd: LMForward, methods: tuple[str, ...], baseline: Any) -> Callable[..., Any]:
    hidden_fn, head_fn = _split(fwd)
    use_ig = "integrated_gradients" in methods
    grad_methods = tuple(m for m in methods if m != "integrated_gradients")

    @jax.jit
    def run(
        params: Any, ids: Any, mask: Any, pos: Any, wpos: Any, alphas: Any, weights: Any
    ) -> dict[str, Any]:
        """pos `<int>[S]`: target positions (padding: 0 with weight 0); wpos `<float>[S]`;
        alphas, weights `<float>[C, A]`: this call's IG alphas (None without IG)."""
        e = fwd.embed(params, ids[None])[0]  # [N, D]
        pred = jnp.maximum(pos - 1, 0)  # the hidden rows that predict the targets
        targets = ids[pos]

        def body(x: Any) -> Any:  # [B, N, D] -> [B, N, H]
            return hidden_fn(params, x, jnp.broadcast_to(mask, x.shape[:2]))

        def head_lp(hs: Any) -> Any:  # [S, H] -> [S]
            logits = head_fn(params, hs[None])[0]
            logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
            lsm = jax.nn.log_softmax(logits, axis=-1)
            return jnp.take_along_axis(lsm, targets[:, None], axis=-1)[:, 0]

        def span_log_prob(hrow: Any) -> Any:
            lps = head_lp(hrow[pred])
            return jnp.sum(lps * wpos.astype(lps.dtype))

        def span_grads(hrow: Any) -> tuple[Any, Any]:
            """`<float>[N, H]` -> (span log-prob, d/d hidden `<float>[N, H]`); head on S rows."""
            lps, vjp = jax.vjp(head_lp, hrow[pred])
            (dhs,) = vjp(wpos.astype(lps.dtype))
            dh = jnp.zeros_like(hrow).at[pred].add(dhs.astype(hrow.dtype))
            return jnp.sum(lps * wpos.astype(lps.dtype)), dh

        out: dict[str, Any] = {}
        if grad_methods:
            h, body_vjp = jax.vjp(body, e[None])
            log_prob, dh = span_grads(h[0])
            (g,) = body_vjp(dh[None])
            out.update(_features(g[0], e, grad_methods))
        else:  # IG only: the span's log-prob needs a forward pass, not a backward one
            log_prob = span_log_prob(body(e[None])[0])
        out["log_prob"] = log_prob

        if use_ig:
            b = _baseline(fwd, params, ids, e, baseline)
            diff = e - b
            alphas = alphas.astype(e.dtype)
            weights = weights.astype(jnp.promote_types(e.dtype, jnp.float32))

            def step(acc: Any, chunk: tuple[Any, Any]) -> tuple[Any, None]:
                a, wa = chunk  # [A], [A]
                x = b[None] + a[:, None, None] * diff[None]  # [A, N, D]
                x = distributed.constrain_batch(x, fwd.mesh)  # alphas over the data axis
                hx, vjp_x = jax.vjp(body, x)
                _, dhx = jax.vmap(span_grads)(hx)  # head on [A, S] rows only
                (gx,) = vjp_x(dhx)
                gx = gx.astype(acc.dtype)
                return acc + jnp.einsum("a,and->nd", wa, gx), None

            acc0 = jnp.zeros(e.shape, weights.dtype)
            gbar, _ = jax.lax.scan(step, acc0, (alphas, weights))
            out["integrated_gradients"] = jnp.sum(gbar * diff.astype(gbar.dtype), axis=-1)
        return out

    return run


def span_salience(
    fwd: LMForward,
    token_ids: Any,
    target_mask: Any,
    *,
    methods: Sequence[str] = METHODS,
    ig_steps: int = 32,
    ig_baseline: str | int = "zero",
    ig_batch_size: int | None = None,
    ig_steps_per_call: int = IG_STEPS_PER_CALL,
    progress: ProgressFn | None = None,
) -> dict[str, np.ndarray]:
    """Salience of every token for the log-probability of a chosen target span.

    One compiled call computes all requested methods: a single forward + backward for Grad L2 and
    Grad.Input, and, for IG, `ig_steps` gradient evaluations batched (near-equal batches of at
    most `ig_batch_size`). IG with more than `ig_steps_per_call` steps runs as several calls over
    disjoint alpha subsets whose results are summed (exactly the one-call Riemann sum),
    reporting progress between them.

    Args:
        fwd: from `lm_forward(causal_lm)`.
        token_ids: `<int>[N]`, prompt + response tokens of one sequence.
        target_mask: `<bool>[N]`, True for the target tokens (the span); position 0 cannot be a
            target (nothing predicts it).
        methods: any of `METHODS` ("grad_l2", "grad_dot_input", "integrated_gradients").
        ig_steps: number `m` of midpoint-rule steps for IG (alpha_k = (k + 1/2) / m).
        ig_baseline: "zero" (all-zero embeddings) or a token id whose embedding fills every
            position.
        ig_batch_size: most alpha steps per batched forward/backward (memory vs speed); None
            plans it from the free memory (at most `MAX_IG_BATCH` for the platform). An
            out-of-memory error halves it and retries (logged).
        ig_steps_per_call: the most IG steps one compiled call evaluates (cancellation latency
            vs per-call overhead: each extra call repeats one forward pass).
        progress: called as `progress(fraction, message)` after each compiled call (fraction of
            the IG steps done; 1.0 after the last call). If it raises (e.g.
            `promptlit.lib.cancel.Cancelled`), no further call runs and the exception propagates.

    Returns:
        `{method: <float>[N]}` for each requested method (scores for every token, target tokens
        included), plus `"log_prob"`: a 0-d array, `log p(span | rest)` = sum of the span's
        token log-probs.
    """
    where = "span_salience"
    methods = _check_methods(methods, where)
    ids = _check_ids(token_ids, where)
    tmask = np.asarray(target_mask, bool)
    if tmask.shape != ids.shape:
        raise ValueError(
            f"{where}: target_mask has shape {tmask.shape}, token_ids has {ids.shape}; "
            "they must match (one flag per token)."
        )
    if tmask[0]:
        raise ValueError(
            f"{where}: target_mask[0] is True, but the first token has no prediction to score "
            "(next-token convention); start the span at position >= 1."
        )
    if not tmask.any():
        raise ValueError(f"{where}: target_mask selects no token; mark the span's tokens True.")
    use_ig = "integrated_gradients" in methods
    if use_ig and ig_steps < 1:
        raise ValueError(
            f"{where}: ig_steps must be >= 1 for integrated_gradients, got {ig_steps}."
        )
    baseline = _check_baseline(ig_baseline, where)
    steps_per_call = _check_piece_size(ig_steps_per_call, "ig_steps_per_call", where)
    planned = ig_batch_size is None
    padded, mask = _pad(ids, fwd.max_positions)
    most = (cache_width(fwd, padded.shape[0], _max_width(MAX_IG_BATCH)) if ig_batch_size is None
            else _check_piece_size(ig_batch_size, "ig_batch_size", where))
    if use_ig:
        most = _compilable(fwd, padded.shape[0], most, "alphas per batch", where)
    # Target positions padded to a power of two >= 8 (few compiled shapes); the LM head runs on
    # these rows only, never on all N x V logits.
    positions = np.flatnonzero(tmask).astype(np.int32)
    size = min(max(8, 1 << (positions.size - 1).bit_length()), padded.shape[0])
    pos = np.zeros((size,), np.int32)
    pos[: positions.size] = positions
    wpos = np.zeros((size,), np.float32)
    wpos[: positions.size] = 1.0
    n = ids.shape[0]
    dtype = _out_dtype()

    def exe(piece_methods: tuple[str, ...], alphas: Any, weights: Any) -> Any:
        key = ("span", piece_methods, baseline if use_ig else None)
        args = (fwd.params, padded, mask, pos, wpos, alphas, weights)
        return _executable(fwd, key, functools.partial(_span_fn, fwd, piece_methods, baseline),
                           args)

    need: int | None = None
    budget: int | None = None
    width = 0
    if use_ig:
        def compile_at(w: int) -> Any:
            alphas, weights, _ = _alpha_pieces(ig_steps, _dp(fwd, w), steps_per_call)[0]
            return exe(methods, alphas, weights)

        if planned:
            width, need, budget = _plan_width(where, ig_steps, most, compile_at,
                                              "alphas per batch")
            width = _dp(fwd, width)
        else:
            width = _dp(fwd, split_evenly(ig_steps, most)[0])
            need = memory.activation_bytes(compile_at(width))
    else:
        need = memory.activation_bytes(exe(methods, None, None))
    result: dict[str, np.ndarray] = {}
    ig_sum: np.ndarray | None = None
    done = calls = retries = ig_slots = 0
    grads_done = False
    while True:
        pieces: list[tuple[np.ndarray | None, np.ndarray | None, int]] = (
            list(_alpha_pieces(ig_steps, width, steps_per_call, done)) if use_ig
            else [(None, None, 0)])
        try:
            for alphas, weights, steps in pieces:
                # The first call computes every method; later ones only their share of IG.
                piece_methods = ("integrated_gradients",) if grads_done else methods
                out = exe(piece_methods, alphas, weights)(
                    fwd.params, padded, mask, pos, wpos, alphas, weights)
                out = {k: np.asarray(v) for k, v in out.items()}  # runs it: errors surface here
                calls += 1
                if not grads_done:
                    result = {m: out[m].astype(dtype)[:n] for m in methods}
                    result["log_prob"] = out["log_prob"].astype(dtype)
                    grads_done = True
                if use_ig:
                    piece = out["integrated_gradients"].astype(np.float64)[:n]
                    ig_sum = piece if ig_sum is None else ig_sum + piece
                    done += steps
                    ig_slots += alphas.size if alphas is not None else 0
                if progress is not None:
                    if use_ig:
                        progress(done / ig_steps, f"integrated gradients: {done}/{ig_steps} steps")
                    else:
                        progress(1.0, "span salience: done")
            break
        except Exception as e:
            if not memory.is_out_of_memory(e):
                raise
            most = _retry_width(where, e, width if use_ig else 1, "alphas per batch",
                                floor=_dp(fwd, 1) if use_ig else 1)
            width = _dp(fwd, split_evenly(ig_steps, most)[0])
            retries += 1
    if ig_sum is not None:
        result["integrated_gradients"] = ig_sum.astype(dtype)
    _report(Padding("span_salience", n, padded.shape[0], rows=int(positions.size),
                    row_slots=size, ig_steps=ig_steps if use_ig else 0, ig_slots=ig_slots,
                    ig_batch=width, calls=calls, retries=retries, activation_bytes=need,
                    budget_bytes=budget))
    return result


# ----------------------------------------------------------------------------- salience_matrix


def _matrix_fn(
    fwd: LMForward,
    methods: tuple[str, ...],
    chunk: int,
    baseline: Any,
    dp_targets: bool = True,
) -> Callable[..., Any]:
    """The jitted matrix kernel; `dp_targets`: split each chunk of targets over the mesh's data
    axis (False when a batch of sequences is split over it instead)."""
    hidden_fn, head_fn = _split(fwd)
    mesh = fwd.mesh if dp_targets else None
    grad_methods = tuple(m for m in methods if m != "integrated_gradients")
    use_ig = "integrated_gradients" in methods

    def rows_head_grads(params: Any, hs: Any, tgt: Any) -> Any:
        """`hs <float>[B, C, H]` (rows predicting `tgt <int>[C]`) -> `d lp / d hs`, same shape.

        The LM head runs on the chunk's C rows only (never on all N x V logits): memory
        `O(C x V)` and head work `O(T x V x H)` for the whole matrix, not `O(N x V x H)`.
        """

        def lp(x: Any) -> Any:
            logits = head_fn(params, x)  # [B, C, V]
            logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
            lsm = jax.nn.log_softmax(logits, axis=-1)
            index = jnp.broadcast_to(tgt[None, :, None], lsm.shape[:-1] + (1,))
            return jnp.take_along_axis(lsm, index, axis=-1)[..., 0]

        out, vjp = jax.vjp(lp, hs)
        (d,) = vjp(jnp.ones_like(out))
        return d

    def chunk_rows(idx: Any, n: int) -> tuple[Any, Any]:
        """`(pred <int>[C], sel <bool>[C, N])`: the row predicting each target, as a one-hot
        (all False for padding targets, idx 0)."""
        pred = jnp.maximum(idx - 1, 0)
        sel = (jnp.arange(n)[None, :] == pred[:, None]) & (idx[:, None] >= 1)
        return pred, sel

    @jax.jit
    def run(
        params: Any, ids: Any, mask: Any, targets: Any, n_targets: Any, alphas: Any, weights: Any
    ) -> dict[str, Any]:
        """targets `<int>[nb + chunk]` (the first n_targets used); alphas, weights
        `<float>[C, A]`: this call's IG alphas (None without IG)."""
        e = fwd.embed(params, ids[None])[0]  # [N, D]
        n = ids.shape[0]
        n_targets = n_targets.astype(jnp.int32)
        n_chunks = (n_targets + chunk - 1) // chunk

        def body(x: Any) -> Any:
            return hidden_fn(params, x, jnp.broadcast_to(mask, x.shape[:2]))

        out: dict[str, Any] = {}
        if grad_methods:
            h, body_vjp = jax.vjp(body, e[None])

            def row_block(c: Any, acc: dict[str, Any]) -> dict[str, Any]:
                start = (c * chunk).astype(jnp.int32)
                idx = jax.lax.dynamic_slice(targets, (start,), (chunk,))
                pred, sel = chunk_rows(idx, n)
                dhs = rows_head_grads(params, h[0][pred][None], ids[idx])[0]  # [C, H]
                cot = sel[:, :, None].astype(dhs.dtype) * dhs[:, None, :]  # [C, N, H]
                cot = distributed.constrain_batch(cot, mesh)  # targets over the data axis
                (g,) = jax.vmap(lambda ct: body_vjp(ct[None]))(cot)  # [C, 1, N, D]
                feats = _features(g[:, 0], e[None], grad_methods)
                zero = jnp.zeros((), jnp.int32)
                return {
                    m: jax.lax.dynamic_update_slice(
                        acc[m], feats[m].astype(acc[m].dtype), (start, zero)
                    )
                    for m in grad_methods
                }

            f_dtype = jnp.promote_types(e.dtype, jnp.float32)
            acc0 = {m: jnp.zeros((n + chunk, n), f_dtype) for m in grad_methods}
            out.update(jax.lax.fori_loop(0, n_chunks, row_block, acc0))

        if use_ig:
            b = _baseline(fwd, params, ids, e, baseline)
            diff = e - b
            alphas = alphas.astype(e.dtype)
            weights = weights.astype(jnp.promote_types(e.dtype, jnp.float32))
            ig_chunk = max(1, chunk // alphas.shape[1])
            n_ig_chunks = (n_targets + ig_chunk - 1) // ig_chunk

            def alpha_step(acc: Any, a_chunk: tuple[Any, Any]) -> tuple[Any, None]:
                a, wa = a_chunk
                x = b[None] + a[:, None, None] * diff[None]  # [A, N, D]
                hx, vjp_x = jax.vjp(body, x)

                def row_block(c: Any, acc_in: Any) -> Any:
                    start = (c * ig_chunk).astype(jnp.int32)
                    zero = jnp.zeros((), jnp.int32)
                    idx = jax.lax.dynamic_slice(targets, (start,), (ig_chunk,))
                    pred, sel = chunk_rows(idx, n)
                    dhs = rows_head_grads(params, hx[:, pred], ids[idx])  # [A, C, H]
                    dhs = jnp.swapaxes(dhs, 0, 1)  # [C, A, H]
                    cot = sel[:, None, :, None].astype(dhs.dtype) * dhs[:, :, None, :]
                    cot = distributed.constrain_batch(cot, mesh)
                    (g,) = jax.vmap(vjp_x)(cot)  # [C, A, N, D]
                    g = g.astype(acc_in.dtype)
                    rows = jnp.einsum("cand,a,nd->cn", g, wa, diff.astype(acc_in.dtype))
                    cur = jax.lax.dynamic_slice(acc_in, (start, zero), (ig_chunk, n))
                    return jax.lax.dynamic_update_slice(acc_in, cur + rows, (start, zero))

                return jax.lax.fori_loop(0, n_ig_chunks, row_block, acc), None

            ig_acc0 = jnp.zeros((n + ig_chunk, n), weights.dtype)
            ig, _ = jax.lax.scan(alpha_step, ig_acc0, (alphas, weights))
            out["integrated_gradients"] = ig
        return out

    return run


def salience_matrix(
    fwd: LMForward,
    token_ids: Any,
    target_positions: Any,
    *,
    methods: Sequence[str] = ("grad_l2", "grad_dot_input"),
    ig_steps: int = 0,
    chunk_size: int | None = None,
    ig_baseline: str | int = "zero",
    ig_batch_size: int | None = None,
    ig_steps_per_call: int = IG_STEPS_PER_CALL,
    targets_per_call: int = MATRIX_TARGETS_PER_CALL,
    progress: ProgressFn | None = None,
) -> dict[str, np.ndarray]:
    """The full target x source salience matrix, in one compiled call when it is small.

    Row `t` holds the salience of every token for `lp[target_positions[t]]` (the log-prob of that
    single target token). One forward pass is linearised (`jax.vjp`) and its VJP is `vmap`-ed over
    one-hot cotangents, a chunk of targets at a time, so the cost is about one forward plus one
    backward per target and the memory is bounded by the chunk.

    Args:
        fwd: from `lm_forward(causal_lm)`.
        token_ids: `<int>[N]`, one sequence.
        target_positions: `<int>[T]`, positions in `[1, N)` to explain (usually the response
            tokens `range(num_prompt_tokens, N)`).
        methods: subset of `METHODS`; "integrated_gradients" needs `ig_steps >= 1`.
        ig_steps: midpoint-rule steps for the IG matrix (alpha steps batched `ig_batch_size` at a
            time; cost ~ `ig_steps` x the gradient matrix).
        chunk_size: most targets per vmapped VJP (memory ~ chunk backward passes); the targets of
            a call are split into the fewest near-equal chunks of at most this many
            (`split_evenly`: 23 targets -> one chunk of 24). None (default): planned from the
            free memory, at most `MAX_CHUNK` for the platform (on a CPU also `cache_width`: at
            long N one target per chunk is fastest there). An out-of-memory error halves the
            chunk and retries that call (logged).
        ig_baseline: "zero" or a token id (see `span_salience`).
        ig_batch_size: most alpha steps per batched forward for the IG matrix (default
            `MATRIX_IG_BATCH`; near-equal batches).
        ig_steps_per_call: the most IG steps one compiled call evaluates; more run as several
            calls over disjoint alpha subsets, summed (exactly the one-call Riemann sum).
        targets_per_call: the most targets one compiled call explains; more run as several
            calls (each repeats one forward pass).
        progress: called as `progress(fraction, message)` after each compiled call (fraction
            of the target rows x IG steps done; 1.0 after the last). If it raises (e.g.
            `promptlit.lib.cancel.Cancelled`), no further call runs and it propagates.

    Returns:
        `{method: <float>[T, N]}` for each requested method.
    """
    where = "salience_matrix"
    methods = _check_methods(methods, where)
    ids = _check_ids(token_ids, where)
    n = ids.shape[0]
    targets = np.asarray(target_positions)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"{where}: target_positions must be a 1-D integer array, got shape {targets.shape} "
            f"dtype {targets.dtype}."
        )
    bad = targets[(targets < 1) | (targets >= n)]
    if bad.size:
        raise ValueError(
            f"{where}: target positions {bad.tolist()[:5]} are outside [1, {n}) (position 0 has no "
            "prediction; positions must index token_ids)."
        )
    use_ig = "integrated_gradients" in methods
    if use_ig and ig_steps < 1:
        raise ValueError(
            f"{where}: 'integrated_gradients' requested with ig_steps={ig_steps}; pass ig_steps>=1."
        )
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"{where}: chunk_size must be >= 1, got {chunk_size}.")
    baseline = _check_baseline(ig_baseline, where)
    steps_per_call = _check_piece_size(ig_steps_per_call, "ig_steps_per_call", where)
    rows_per_call = _check_piece_size(targets_per_call, "targets_per_call", where)
    ig_most = (MATRIX_IG_BATCH if ig_batch_size is None
               else _check_piece_size(ig_batch_size, "ig_batch_size", where))
    t = targets.shape[0]
    if t == 0:
        return {m: np.zeros((0, n), _out_dtype()) for m in methods}
    padded, mask = _pad(ids, fwd.max_positions)
    nb = padded.shape[0]
    rows_per_call = min(rows_per_call, t)
    a = split_evenly(ig_steps, ig_most)[0] if use_ig else 0
    pieces: list[tuple[np.ndarray | None, np.ndarray | None, int]] = (
        list(_alpha_pieces(ig_steps, a, steps_per_call)) if use_ig else [(None, None, 1)])
    total_steps = ig_steps if use_ig else 1
    dtype = _out_dtype()

    def exe(piece_methods: tuple[str, ...], width: int, alphas: Any, weights: Any) -> Any:
        key = ("matrix", piece_methods, width, baseline if use_ig else None)
        args = (fwd.params, padded, mask, np.zeros((nb + width,), np.int32), np.int32(0),
                alphas, weights)
        return _executable(
            fwd, key, functools.partial(_matrix_fn, fwd, piece_methods, width, baseline), args
        )

    budget: int | None = None
    most = _compilable(fwd, nb, chunk_size or cache_width(fwd, nb, _max_width(MAX_CHUNK),
                                                          per_row=a if use_ig else 1),
                       "targets per chunk", where)
    if chunk_size is None:
        width, need, budget = _plan_width(
            where, rows_per_call, most,
            lambda w: exe(methods, _dp(fwd, w), pieces[0][0], pieces[0][1]),
            "targets per chunk")
        width = _dp(fwd, width)
    else:
        width = _dp(fwd, split_evenly(rows_per_call, most)[0])
        need = memory.activation_bytes(exe(methods, width, pieces[0][0], pieces[0][1]))
    parts: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    calls = retries = row_slots = 0
    for a0 in range(0, t, rows_per_call):
        b0 = min(a0 + rows_per_call, t)
        ig_sum: np.ndarray | None = None
        done = 0
        for i, (alphas, weights, steps) in enumerate(pieces):
            piece_methods = methods if i == 0 else ("integrated_gradients",)
            while True:
                tpad = np.zeros((nb + width,), np.int32)  # room for a full last chunk
                tpad[: b0 - a0] = targets[a0:b0]
                try:
                    out = exe(piece_methods, width, alphas, weights)(
                        fwd.params, padded, mask, tpad, np.int32(b0 - a0), alphas, weights)
                    out = {k: np.asarray(v) for k, v in out.items()}  # errors surface here
                    break
                except Exception as e:
                    if not memory.is_out_of_memory(e):
                        raise
                    most = _retry_width(where, e, width, "targets per chunk",
                                        floor=_dp(fwd, 1))
                    width = _dp(fwd, split_evenly(rows_per_call, most)[0])
                    retries += 1
            calls += 1
            if i == 0:
                row_slots += -(-(b0 - a0) // width) * width
                for m in methods:
                    if m != "integrated_gradients":
                        parts[m].append(out[m].astype(dtype)[: b0 - a0, :n])
            if use_ig:
                piece = out["integrated_gradients"].astype(np.float64)[: b0 - a0, :n]
                ig_sum = piece if ig_sum is None else ig_sum + piece
            done += steps
            if progress is not None:
                message = f"salience matrix: targets {a0}-{b0 - 1} of {t}"
                if use_ig:
                    message += f", IG steps {done}/{ig_steps}"
                progress((a0 * total_steps + (b0 - a0) * done) / (t * total_steps), message)
        if ig_sum is not None:
            parts["integrated_gradients"].append(ig_sum.astype(dtype))
    _report(Padding("salience_matrix", n, nb, rows=t, row_slots=row_slots, width=width,
                    ig_steps=ig_steps if use_ig else 0,
                    ig_slots=sum(int(p[0].size) for p in pieces if p[0] is not None),
                    ig_batch=a, calls=calls, retries=retries, activation_bytes=need,
                    budget_bytes=budget))
    return {m: x[0] if len(x) == 1 else np.concatenate(x, axis=0) for m, x in parts.items()}


# ----------------------------------------------------------------------------- batched matrix


def salience_matrix_batch(
    fwd: LMForward,
    token_ids: Sequence[Any],
    target_positions: Sequence[Any],
    *,
    methods: Sequence[str] = ("grad_l2", "grad_dot_input"),
    ig_steps: int = 0,
    chunk_size: int | None = None,
    ig_baseline: str | int = "zero",
    ig_batch_size: int | None = None,
    batch_size: int | None = None,
) -> list[dict[str, np.ndarray]]:
    """`salience_matrix` for several sequences at once: one compiled call for the whole batch.

    Every sequence is padded to the bucket of the longest (`bucket_length`) and the batch to
    `batch_size` rows (copies of the first sequence with no targets, discarded), so a run over a
    dataset compiles once per (bucket, batch size). The single-sequence kernel (`_matrix_fn`) is
    `jax.vmap`-ed over the batch; the loop over target chunks runs to the longest sequence's
    target count (shorter ones' extra rows are all-zero cotangents, dropped). Each sequence's
    numbers are those of `salience_matrix` on it alone, up to float rounding (a different
    bucket can change the summation order).

    Args:
        fwd: from `lm_forward(causal_lm)`.
        token_ids: one `<int>[N_i]` array per sequence.
        target_positions: one `<int>[T_i]` array per sequence, positions in `[1, N_i)`.
        methods, ig_steps, ig_baseline: as for `salience_matrix` (IG: the IG matrix, all steps
            in one call).
        chunk_size: most targets per vmapped backward *per sequence*; None: the platform's
            `MAX_CHUNK` shared by the batch (`MAX_CHUNK // batch` targets each), on a CPU
            narrowed to `cache_width`.
        ig_batch_size: alpha steps per batched evaluation (default `MATRIX_IG_BATCH`).
        batch_size: rows of the compiled call (default: the number of sequences); more
            sequences than this are an error.

    Returns:
        One `{method: <float>[T_i, N_i]}` per sequence, in order.
    """
    where = "salience_matrix_batch"
    methods = _check_methods(methods, where)
    if len(token_ids) != len(target_positions):
        raise ValueError(f"{where}: {len(token_ids)} sequences but {len(target_positions)} "
                         "target lists; give one target list per sequence.")
    if not token_ids:
        return []
    seqs = [_check_ids(ids, where) for ids in token_ids]
    targets = [np.asarray(t) for t in target_positions]
    for i, (ids, t) in enumerate(zip(seqs, targets, strict=True)):
        if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"{where}: target_positions[{i}] must be a 1-D integer array, got "
                             f"shape {t.shape} dtype {t.dtype}.")
        bad = t[(t < 1) | (t >= ids.shape[0])]
        if bad.size:
            raise ValueError(f"{where}: sequence {i}: target positions {bad.tolist()[:5]} are "
                             f"outside [1, {ids.shape[0]}).")
    rows = len(seqs) if batch_size is None else int(batch_size)
    if rows < len(seqs):
        raise ValueError(f"{where}: {len(seqs)} sequences do not fit batch_size={rows}; split "
                         "them into batches of at most batch_size.")
    rows = _dp(fwd, rows)  # a mesh's data axis splits the batch: pad it to a multiple
    use_ig = "integrated_gradients" in methods
    if use_ig and ig_steps < 1:
        raise ValueError(
            f"{where}: 'integrated_gradients' requested with ig_steps={ig_steps}; pass ig_steps>=1.")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"{where}: chunk_size must be >= 1, got {chunk_size}.")
    baseline = _check_baseline(ig_baseline, where)
    dtype = _out_dtype()
    t_max = max(int(t.shape[0]) for t in targets)
    if t_max == 0:
        return [{m: np.zeros((0, ids.shape[0]), dtype) for m in methods} for ids in seqs]
    nb = bucket_length(max(ids.shape[0] for ids in seqs), fwd.max_positions)
    alphas = weights = None
    a = 0
    if use_ig:
        a = split_evenly(ig_steps, MATRIX_IG_BATCH if ig_batch_size is None
                         else _check_piece_size(ig_batch_size, "ig_batch_size", where))[0]
        ((alphas, weights, _),) = _alpha_pieces(ig_steps, a, -(-ig_steps // a) * a)
    # Each target of a chunk runs `rows` sequences, each with its `a` alphas under IG.
    most = chunk_size or cache_width(fwd, nb, max(1, _max_width(MAX_CHUNK) // rows),
                                     per_row=rows * max(1, a))
    # One width per batch size, whatever the batch's longest response (fewer compiles: a
    # dataset's batches differ in T, not in shape); narrower only when every T is shorter.
    width = min(most, ladder_up(t_max))
    padded = np.zeros((rows, nb), np.int32)
    mask = np.zeros((rows, nb), bool)
    tpad = np.zeros((rows, nb + width), np.int32)
    for i in range(rows):
        ids = seqs[i] if i < len(seqs) else seqs[0]
        padded[i, : ids.shape[0]] = ids
        mask[i, : ids.shape[0]] = True
        if i < len(seqs):
            tpad[i, : targets[i].shape[0]] = targets[i]

    def build() -> Any:
        run = _matrix_fn(fwd, methods, width, baseline, dp_targets=False)
        return jax.jit(jax.vmap(run, in_axes=(None, 0, 0, 0, None, None, None)))

    if fwd.mesh is not None:  # the sequences split over the data axis
        padded, mask, tpad = (distributed.shard_batch(x, fwd.mesh) for x in (padded, mask, tpad))

    args = (fwd.params, padded, mask, tpad, np.int32(t_max), alphas, weights)
    exe = _executable(fwd, ("matrix_batch", methods, width, baseline if use_ig else None),
                      build, args)
    out = {k: np.asarray(v) for k, v in exe(*args).items()}
    _report(Padding("salience_matrix", sum(int(s.shape[0]) for s in seqs), nb * rows,
                    rows=sum(int(t.shape[0]) for t in targets),
                    row_slots=rows * -(-t_max // width) * width, width=width,
                    ig_steps=ig_steps if use_ig else 0,
                    ig_slots=int(alphas.size) if alphas is not None else 0, ig_batch=a))
    return [{m: out[m][i, : targets[i].shape[0], : seqs[i].shape[0]].astype(dtype)
             for m in methods} for i in range(len(seqs))]
