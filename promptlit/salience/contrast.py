"""Contrastive salience: "why did the model write A rather than B?"

For a response span ``A`` (tokens ``[s, s + |A|)`` of one sequence) and an alternative
continuation ``B`` (any tokens) placed at the same position, the objective is

    f = log p(A | prefix) - log p(B | prefix)
      = sum_t log p(A_t | prefix, A_<t) - sum_t log p(B_t | prefix, B_<t),

with ``prefix`` = the tokens before the span (the prompt, and the response up to the span). The
two log-probabilities come from two sequences, ``prefix + A (+ the rest of the response)`` and
``prefix + B``, that share the prefix's token embeddings; the salience of prefix token ``j`` is
taken with respect to that *shared* embedding ``e_j`` (the same attribution point as
`promptlit.salience.kernels`: the token-embedding output). With ``g^A_j = d log p(A) / d e_j``
in the first sequence and ``g^B_j = d log p(B) / d e_j`` in the second:

* ``grad_l2[j] = ||g^A_j - g^B_j||_2``: the norm of the gradient of the difference (not a
  difference of norms); unsigned.
* ``grad_dot_input[j] = <g^A_j - g^B_j, e_j>``: signed; positive = pushes toward A, negative =
  pushes toward B. Exactly Grad.Input(A) - Grad.Input(B) (linearity).
* ``integrated_gradients[j] = <e_j - b_j, (1/m) sum_k (g^A_j - g^B_j)(b + alpha_k (e - b))>``
  along one straight path that scales both sequences together (the midpoint rule of
  `promptlit.salience.kernels`): exactly IG(A) - IG(B) with the same steps and baseline.

Positions from ``s`` on exist in sequence A only (A's own tokens and whatever follows it); there
the scores are those of ``log p(A)`` alone (B's tokens are not part of the explained text, and
tokens after A do not affect it: 0).

Efficiency: both sequences run as one batch of two inside one compiled call (padded to one
length bucket): one forward + one backward of a batch of 2, about twice a plain span call
(`benchmarks/salience.py`: contrast/span). Sequence A stops at the span's end (later tokens
change nothing), and the LM head runs on the two spans' predicting rows only. IG evaluates its alpha steps in batches of
``2 x ig_batch_size`` sequences, in pieces of at most ``ig_steps_per_call`` steps (summed:
exactly the one-call Riemann sum), with the same memory planning, out-of-memory halving and
cancellation between pieces as `kernels.span_salience`.

Example:
    >>> fwd = lm_forward(causal_lm)  # doctest: +SKIP
    >>> out = contrast_salience(fwd, ids, span_mask, contrast_ids)  # doctest: +SKIP
    >>> out["grad_dot_input"].shape, float(out["log_prob"] - out["log_prob_contrast"])  # +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from promptlit.salience import kernels as K
from promptlit.salience import memory
from promptlit.salience.forward import LMForward

__all__ = ["contrast_salience", "contrast_sequences"]


def contrast_sequences(
    token_ids: Any, target_mask: Any, contrast_ids: Any
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The two sequences of a contrast, checked.

    Args:
        token_ids: ``<int>[N]`` sequence A (prompt + response).
        target_mask: ``<bool>[N]``, True on A's span: one contiguous run, not at position 0.
        contrast_ids: ``<int>[M]`` B's tokens (M >= 1).

    Returns:
        ``(ids_a <int>[N], ids_b <int>[s + M], s, b_mask <bool>[s + M])`` where ``s`` is the span's
        first position (the shared prefix is ``[0, s)``) and ``b_mask`` marks B's tokens.

    Raises:
        ValueError: with what is wrong and how to fix it.
    """
    where = "contrast_salience"
    ids = K._check_ids(token_ids, where)
    tmask = np.asarray(target_mask, bool)
    if tmask.shape != ids.shape:
        raise ValueError(f"{where}: target_mask has shape {tmask.shape}, token_ids has "
                         f"{ids.shape}; they must match (one flag per token).")
    positions = np.flatnonzero(tmask)
    if positions.size == 0:
        raise ValueError(f"{where}: target_mask selects no token; mark the span A's tokens True.")
    s = int(positions[0])
    if s == 0:
        raise ValueError(f"{where}: the span starts at position 0, which nothing predicts; start "
                         "it at position >= 1.")
    if positions[-1] - s + 1 != positions.size:
        raise ValueError(f"{where}: the span A must be one contiguous run of tokens (B replaces "
                         f"it at the same position); got positions {positions.tolist()[:8]}.")
    b = np.asarray(contrast_ids)
    if b.ndim != 1 or b.size < 1 or not np.issubdtype(b.dtype, np.integer):
        raise ValueError(f"{where}: contrast_ids must be a 1-D integer array of at least one "
                         f"token (the alternative B), got shape {b.shape} dtype {b.dtype}.")
    ids_b = np.concatenate([ids[:s], b.astype(np.int32)])
    b_mask = np.zeros(ids_b.shape, bool)
    b_mask[s:] = True
    return ids, ids_b, s, b_mask


def _contrast_fn(fwd: LMForward, methods: tuple[str, ...], baseline: Any) -> Callable[..., Any]:
    hidden_fn, head_fn = K._split(fwd)
    use_ig = "integrated_gradients" in methods
    grad_methods = tuple(m for m in methods if m != "integrated_gradients")

    @jax.jit
    def run(params: Any, ids: Any, mask: Any, pos: Any, wpos: Any, shared: Any, alphas: Any,
            weights: Any) -> dict[str, Any]:
        """ids, mask `<[2, Nb]>`: sequence A, then B; pos `<int>[2, S]` each span's positions
        (padding: 0 with weight 0), wpos `<float>[2, S]`; shared `<bool>[Nb]`: the common
        prefix; alphas, weights `<float>[C, A]` (None without IG)."""
        e = fwd.embed(params, ids)  # [2, Nb, D]
        pred = jnp.maximum(pos - 1, 0)  # rows predicting the targets, [2, S]
        targets = jnp.take_along_axis(ids, pos, axis=1)  # [2, S]
        sign = jnp.asarray([1.0, -1.0], jnp.float32)
        rows = jnp.arange(2)[:, None]

        def body(x: Any) -> Any:  # [K, 2, Nb, D] -> [K, 2, Nb, H]
            k = x.shape[0]
            flat = x.reshape((k * 2,) + x.shape[2:])
            h = hidden_fn(params, flat, jnp.tile(mask, (k, 1)))
            return h.reshape((k, 2) + h.shape[1:])

        def head_lp(hs: Any) -> Any:  # [2, S, H] -> [2, S]
            logits = head_fn(params, hs)
            logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
            lsm = jax.nn.log_softmax(logits, axis=-1)
            return jnp.take_along_axis(lsm, targets[..., None], axis=-1)[..., 0]

        def span_lps(h2: Any) -> Any:  # [2, Nb, H] -> [2]: log p(A), log p(B)
            lps = head_lp(h2[rows, pred])
            return jnp.sum(lps * wpos.astype(lps.dtype), axis=1)

        def f_grads(h2: Any) -> tuple[Any, Any]:
            """`[2, Nb, H]` -> (`[2]` log-probs, d f / d h2 `[2, Nb, H]`), f = lp(A) - lp(B)."""
            lps, vjp = jax.vjp(head_lp, h2[rows, pred])
            (drows,) = vjp((wpos * sign[:, None]).astype(lps.dtype))
            dh = jnp.zeros_like(h2).at[rows, pred].add(drows.astype(h2.dtype))
            return jnp.sum(lps * wpos.astype(lps.dtype), axis=1), dh

        def combine(g: Any) -> Any:
            """`[..., 2, Nb, D]` -> `[..., Nb, D]`: d f / d (A's embeddings, the prefix shared
            with B: the two sequences' gradients add up there)."""
            return g[..., 0, :, :] + shared[:, None].astype(g.dtype) * g[..., 1, :, :]

        out: dict[str, Any] = {}
        if grad_methods:
            h, body_vjp = jax.vjp(body, e[None])
            lp2, dh = f_grads(h[0])
            (g,) = body_vjp(dh[None])
            out.update(K._features(combine(g[0]), e[0], grad_methods))
        else:  # IG only: the log-probs need a forward pass, not a backward one
            lp2 = span_lps(body(e[None])[0])
        out["log_prob"] = lp2[0]
        out["log_prob_contrast"] = lp2[1]

        if use_ig:
            if baseline == "zero":
                b = jnp.zeros_like(e)
            else:
                b = fwd.embed(params, jnp.full(ids.shape, baseline, jnp.int32)).astype(e.dtype)
            diff = e - b  # equal on the shared prefix (same tokens)
            alphas = alphas.astype(e.dtype)
            weights = weights.astype(jnp.promote_types(e.dtype, jnp.float32))

            def step(acc: Any, chunk: tuple[Any, Any]) -> tuple[Any, None]:
                a, wa = chunk  # [A], [A]
                x = b[None] + a[:, None, None, None] * diff[None]  # [A, 2, Nb, D]
                hx, vjp_x = jax.vjp(body, x)
                _, dhx = jax.vmap(f_grads)(hx)  # head on [A, 2, S] rows only
                (gx,) = vjp_x(dhx)
                gx = combine(gx).astype(acc.dtype)  # [A, Nb, D]
                return acc + jnp.einsum("a,and->nd", wa, gx), None

            acc0 = jnp.zeros(e.shape[1:], weights.dtype)
            gbar, _ = jax.lax.scan(step, acc0, (alphas, weights))
            out["integrated_gradients"] = jnp.sum(gbar * diff[0].astype(gbar.dtype), axis=-1)
        return out

    return run


def _unpad(x: Any, real: int, n: int, dtype: Any) -> np.ndarray:
    """``<float>[Nb]`` -> ``<float>[n]``: the first ``real`` entries, zeros after them."""
    out = np.zeros((n,), dtype)
    out[:real] = np.asarray(x)[:real]
    return out


def contrast_salience(
    fwd: LMForward,
    token_ids: Any,
    target_mask: Any,
    contrast_ids: Any,
    *,
    methods: Sequence[str] = K.METHODS,
    ig_steps: int = 32,
    ig_baseline: str | int = "zero",
    ig_batch_size: int | None = None,
    ig_steps_per_call: int = K.IG_STEPS_PER_CALL,
    progress: K.ProgressFn | None = None,
) -> dict[str, np.ndarray]:
    """Salience of every token for ``log p(A) - log p(B)``: why the span A rather than B.

    One compiled call evaluates both sequences (a batch of two) and differentiates the
    difference of their span log-probabilities (see the module docstring for the definitions).

    Args:
        fwd: from `lm_forward(causal_lm)`.
        token_ids: ``<int>[N]``, sequence A: prompt + response.
        target_mask: ``<bool>[N]``, True on the span A: one contiguous run of positions >= 1.
        contrast_ids: ``<int>[M]``, B's tokens; they replace A after the shared prefix
            ``token_ids[:s]`` (``s`` = A's first position).
        methods: any of `kernels.METHODS`.
        ig_steps: midpoint-rule steps for IG.
        ig_baseline: "zero" or a token id whose embedding fills every position (of both
            sequences).
        ig_batch_size: most alpha steps per batched evaluation (each evaluates both sequences:
            ``2 x ig_batch_size`` rows); None plans it from the free memory (at most
            `kernels.MAX_IG_BATCH` for the platform). An out-of-memory error halves it.
        ig_steps_per_call: the most IG steps one compiled call evaluates; more run as several
            calls over disjoint alpha subsets, summed (exactly the one-call Riemann sum).
        progress: ``progress(fraction, message)`` after each compiled call; if it raises (e.g.
            `promptlit.lib.cancel.Cancelled`), no further call runs and it propagates.

    Returns:
        ``{method: <float>[N]}`` over sequence A's positions (prefix: the contrastive scores;
        from ``s`` on: those of ``log p(A)`` alone), plus ``"log_prob"`` (``log p(A | prefix)``)
        and ``"log_prob_contrast"`` (``log p(B | prefix)``), 0-d arrays.
    """
    where = "contrast_salience"
    methods = K._check_methods(methods, where)
    ids_a, ids_b, s, b_mask = contrast_sequences(token_ids, target_mask, contrast_ids)
    a_mask = np.asarray(target_mask, bool)
    use_ig = "integrated_gradients" in methods
    if use_ig and ig_steps < 1:
        raise ValueError(f"{where}: ig_steps must be >= 1 for integrated_gradients, got "
                         f"{ig_steps}.")
    baseline = K._check_baseline(ig_baseline, where)
    steps_per_call = K._check_piece_size(ig_steps_per_call, "ig_steps_per_call", where)
    planned = ig_batch_size is None
    most = (K._max_width(K.MAX_IG_BATCH) if ig_batch_size is None
            else K._check_piece_size(ig_batch_size, "ig_batch_size", where))
    n, nb_ = ids_a.shape[0], ids_b.shape[0]
    # Tokens after the span change neither log p(A) (causal) nor B's sequence: sequence A runs
    # up to the span's end only (its scores there are exactly 0).
    na = int(np.flatnonzero(a_mask)[-1]) + 1
    nb = K.bucket_length(max(na, nb_), fwd.max_positions)
    ids = np.zeros((2, nb), np.int32)
    mask = np.zeros((2, nb), bool)
    ids[0, :na], ids[1, :nb_] = ids_a[:na], ids_b
    mask[0, :na], mask[1, :nb_] = True, True
    shared = np.zeros((nb,), bool)
    shared[:s] = True
    pos_a, pos_b = np.flatnonzero(a_mask), np.flatnonzero(b_mask)
    longest = max(pos_a.size, pos_b.size)
    size = min(max(8, 1 << (longest - 1).bit_length()), nb)
    pos = np.zeros((2, size), np.int32)
    wpos = np.zeros((2, size), np.float32)
    for row, p in enumerate((pos_a, pos_b)):
        pos[row, : p.size] = p
        wpos[row, : p.size] = 1.0
    dtype = K._out_dtype()

    def exe(piece_methods: tuple[str, ...], alphas: Any, weights: Any) -> Any:
        key = ("contrast", piece_methods, baseline if use_ig else None)
        args = (fwd.params, ids, mask, pos, wpos, shared, alphas, weights)
        return K._executable(fwd, key,
                             functools.partial(_contrast_fn, fwd, piece_methods, baseline), args)

    need: int | None = None
    budget: int | None = None
    width = 0
    if use_ig:
        def compile_at(w: int) -> Any:
            alphas, weights, _ = K._alpha_pieces(ig_steps, w, steps_per_call)[0]
            return exe(methods, alphas, weights)

        if planned:
            width, need, budget = K._plan_width(where, ig_steps, most, compile_at,
                                                "alphas per batch")
        else:
            width = K.split_evenly(ig_steps, most)[0]
            need = memory.activation_bytes(compile_at(width))
    else:
        need = memory.activation_bytes(exe(methods, None, None))
    result: dict[str, np.ndarray] = {}
    ig_sum: np.ndarray | None = None
    done = calls = retries = ig_slots = 0
    grads_done = False
    while True:
        pieces = (K._alpha_pieces(ig_steps, width, steps_per_call, done) if use_ig
                  else [(None, None, 0)])
        try:
            for alphas, weights, steps in pieces:
                piece_methods = ("integrated_gradients",) if grads_done else methods
                out = exe(piece_methods, alphas, weights)(
                    fwd.params, ids, mask, pos, wpos, shared, alphas, weights)
                out = {k: np.asarray(v) for k, v in out.items()}  # runs it: errors surface here
                calls += 1
                if not grads_done:
                    result = {m: _unpad(out[m], na, n, dtype) for m in methods
                              if m != "integrated_gradients"}
                    result["log_prob"] = out["log_prob"].astype(dtype)
                    result["log_prob_contrast"] = out["log_prob_contrast"].astype(dtype)
                    grads_done = True
                if use_ig:
                    piece = _unpad(out["integrated_gradients"], na, n, np.float64)
                    ig_sum = piece if ig_sum is None else ig_sum + piece
                    done += steps
                    ig_slots += alphas.size if alphas is not None else 0
                if progress is not None:
                    if use_ig:
                        progress(done / ig_steps,
                                 f"contrastive integrated gradients: {done}/{ig_steps} steps")
                    else:
                        progress(1.0, "contrastive salience: done")
            break
        except Exception as e:
            if not memory.is_out_of_memory(e):
                raise
            most = K._retry_width(where, e, width if use_ig else 1, "alphas per batch")
            width = K.split_evenly(ig_steps, most)[0]
            retries += 1
    if ig_sum is not None:
        result["integrated_gradients"] = ig_sum.astype(dtype)
    K._report(K.Padding("contrast_salience", na + nb_, 2 * nb, rows=int(pos_a.size + pos_b.size),
                        row_slots=2 * size, ig_steps=ig_steps if use_ig else 0,
                        ig_slots=ig_slots, ig_batch=width, calls=calls, retries=retries,
                        activation_bytes=need, budget_bytes=budget))
    return result
