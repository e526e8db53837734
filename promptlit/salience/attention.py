"""Attention weights of a keras-hub causal LM, through the same cut graph as the salience kernels.

For the attention view: which tokens did the model attend to at the positions that wrote the
selected response tokens, per layer and head, and averaged?

How the weights are obtained: `attention_maps` runs the model's own backbone graph after the
token embeddings (`LMForward.hidden`, the graph `promptlit.salience.forward` cuts) inside one
`jax.jit`, and while that function is traced it records the attention probabilities every
attention layer computes:

* layers that compute them explicitly (`keras.layers.Softmax`: keras-hub Gemma / Gemma 2 / Gemma 3
  attention on CPU and TPU, GPT-2's `MultiHeadAttention`) are recorded at their softmax output;
* layers that call the fused op `keras.ops.dot_product_attention` (keras-hub Llama, Mistral, Qwen
  on JAX, and Gemma on GPUs with cuDNN) get, for this trace only, an explicit implementation of
  that op with the same arguments (queries, keys, values, mask, scale, causal flag, logit
  soft-cap), whose probabilities are recorded; its output equals the fused op's.

The recording is a trace-time hook (a thread-local recorder, patched in under a lock and
restored right after tracing): the compiled function is then plain XLA, cached on the
`LMForward` like the salience kernels, and compiled once per length bucket. Nothing runs the
model's LM head (attention does not need logits).

Conventions: the *query* rows are positions of the sequence. For the response token at position
``p``, the row that wrote it is ``p - 1`` (the next-token convention of
`promptlit.salience.kernels`): `KerasCausalLM.attention` asks for those rows. Heads are in the
layer's query-head order (grouped-query layers: query head ``n`` reads key/value head
``n // (num_query_heads // num_key_value_heads)``). Each row is a probability distribution over
the tokens ``0 .. row`` (causal).

Example:
    >>> fwd = lm_forward(causal_lm)  # doctest: +SKIP
    >>> w = attention_maps(fwd, ids, rows)  # <float>[num_layers, num_heads, len(rows), N]
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import types
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from promptlit.salience import kernels as K
from promptlit.salience.forward import LMForward

__all__ = ["AttentionMaps", "attention_maps", "recording"]

_local = threading.local()
_PATCH_LOCK = threading.RLock()


class _Recorder:
    """Collects each attention layer's probabilities (rows ``rows`` only) during one trace."""

    def __init__(self, rows: Any) -> None:
        self.rows = rows
        self.maps: list[Any] = []
        self.sources: list[str] = []

    def add(self, probs: Any, source: str) -> None:
        """``probs <float>[B, ..heads.., T, S]`` -> stores ``<float32>[B, H, Q, S]``; ``source``:
        "softmax" or "dot_product_attention" (which hook saw it)."""
        self.sources.append(source)
        p = jnp.reshape(probs, (probs.shape[0], -1, probs.shape[-2], probs.shape[-1]))
        rows = self.rows if self.rows is not None else jnp.arange(p.shape[2])
        self.maps.append(jnp.take(p, rows, axis=2).astype(jnp.float32))


def _active() -> _Recorder | None:
    return getattr(_local, "recorder", None)


def _explicit_attention(original: Any) -> Any:
    """A `keras.ops.dot_product_attention` that, while a recorder is active, computes the
    attention explicitly (same result) and records its probabilities."""

    def dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None,
                              mask: Any = None, scale: Any = None, is_causal: bool = False,
                              flash_attention: Any = None,
                              attn_logits_soft_cap: Any = None) -> Any:
        rec = _active()
        if rec is None:
            kwargs = {} if attn_logits_soft_cap is None else {
                "attn_logits_soft_cap": attn_logits_soft_cap}
            return original(query, key, value, bias=bias, mask=mask, scale=scale,
                            is_causal=is_causal, flash_attention=flash_attention, **kwargs)
        q, k, v = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
        b, t, n, h = q.shape
        s, kv = k.shape[1], k.shape[2]
        g = n // kv
        scale = 1.0 / np.sqrt(h) if scale is None else scale
        logits = jnp.einsum("btkgh,bskh->bkgts", q.reshape(b, t, kv, g, h).astype(jnp.float32),
                            k.astype(jnp.float32)) * scale
        if attn_logits_soft_cap is not None:
            logits = jnp.tanh(logits / attn_logits_soft_cap) * attn_logits_soft_cap
        logits = logits.reshape(b, n, t, s)
        if bias is not None:
            logits = logits + jnp.asarray(bias, jnp.float32)
        keep = jnp.ones((1, 1, t, s), bool)
        if mask is not None:
            keep = keep & jnp.asarray(mask).astype(bool)
        if is_causal:
            keep = keep & jnp.tril(jnp.ones((t, s), bool))[None, None]
        logits = jnp.where(keep, logits, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(logits, axis=-1)
        rec.add(probs, "dot_product_attention")
        out = jnp.einsum("bkgts,bskh->btkgh", probs.reshape(b, kv, g, t, s).astype(v.dtype), v)
        return out.reshape(b, t, n, h)

    dot_product_attention.__wrapped__ = original  # type: ignore[attr-defined]
    return dot_product_attention


@contextlib.contextmanager
def recording(rows: Any = None) -> Iterator[_Recorder]:
    """Records attention probabilities of every attention layer called in this thread.

    Use it around the *trace* of a model call (inside a function being `jax.jit`-traced, or
    eagerly). Patches `keras.layers.Softmax.call` and `keras.ops.dot_product_attention` (also
    as `keras.src.ops.dot_product_attention`) for the duration; other threads calling them
    meanwhile are passed through unchanged.

    Args:
        rows: query positions to keep (`<int>[Q]`, may be a tracer); None keeps every row.

    Yields:
        The recorder; after the model call, ``recorder.maps`` holds one ``<float32>[B, H, Q, S]``
        per attention layer, in call order (= layer order), and ``recorder.sources`` which hook
        saw each ("softmax" or "dot_product_attention").
    """
    import keras
    from keras.src.layers.activations.softmax import Softmax

    with _PATCH_LOCK:
        previous = _active()
        rec = _Recorder(rows)
        original_call = Softmax.call
        modules: list[types.ModuleType] = []
        for mod in (getattr(keras, "ops", None), getattr(getattr(keras, "src", None), "ops", None)):
            if isinstance(mod, types.ModuleType) and hasattr(mod, "dot_product_attention") \
                    and mod not in modules:
                modules.append(mod)
        originals = [mod.dot_product_attention for mod in modules]

        def call(self: Any, inputs: Any, mask: Any = None) -> Any:
            out = original_call(self, inputs, mask=mask)
            active = _active()
            if active is not None:
                active.add(out, "softmax")
            return out

        setattr(Softmax, "call", call)  # noqa: B010 - restored below
        for mod, orig in zip(modules, originals, strict=True):
            setattr(mod, "dot_product_attention",  # noqa: B010
                    _explicit_attention(getattr(orig, "__wrapped__", orig)))
        _local.recorder = rec
        try:
            yield rec
        finally:
            _local.recorder = previous
            setattr(Softmax, "call", original_call)  # noqa: B010
            for mod, orig in zip(modules, originals, strict=True):
                setattr(mod, "dot_product_attention", orig)  # noqa: B010


def _attention_fn(fwd: LMForward) -> Any:
    hidden_fn = fwd.hidden if fwd.hidden is not None else fwd.logits

    @jax.jit
    def run(params: Any, ids: Any, mask: Any, rows: Any) -> Any:
        """ids, mask `<[Nb]>`; rows `<int>[Q]` -> `<float32>[L, H, Q, Nb]`."""
        e = fwd.embed(params, ids[None])
        with recording(rows) as rec:
            hidden_fn(params, e, mask[None])
        if not rec.maps:
            raise ValueError(
                f"attention_maps: no attention probabilities were seen in {fwd.name or 'the'} "
                "model (no keras Softmax layer or keras.ops.dot_product_attention call); its "
                "attention layers compute them some other way.")
        return jnp.stack([m[0] for m in rec.maps])

    return run


def attention_maps(fwd: LMForward, token_ids: Any, rows: Any) -> np.ndarray:
    """Attention probabilities of every layer and head from query ``rows`` to every token.

    Args:
        fwd: from `lm_forward(causal_lm)`.
        token_ids: ``<int>[N]``, one sequence.
        rows: ``<int>[Q]`` query positions in ``[0, N)`` (for response token ``p``: ``p - 1``).

    Returns:
        ``<float32>[L, H, Q, N]``: ``out[l, h, q]`` is layer ``l``, head ``h``'s attention
        distribution of position ``rows[q]`` over the ``N`` tokens (0 after ``rows[q]``).
    """
    where = "attention_maps"
    ids = K._check_ids(token_ids, where)
    n = ids.shape[0]
    q = np.asarray(rows)
    if q.ndim != 1 or not np.issubdtype(q.dtype, np.integer):
        raise ValueError(f"{where}: rows must be a 1-D integer array, got shape {q.shape} "
                         f"dtype {q.dtype}.")
    bad = q[(q < 0) | (q >= n)]
    if bad.size:
        raise ValueError(f"{where}: rows {bad.tolist()[:5]} are outside [0, {n}).")
    if q.size == 0:
        raise ValueError(f"{where}: no rows to return; pass at least one query position.")
    padded, mask = K._pad(ids, fwd.max_positions)
    size = min(max(8, 1 << (int(q.size) - 1).bit_length()), padded.shape[0])
    padded_rows = np.zeros((size,), np.int32)
    padded_rows[: q.size] = q
    run = K._cached(fwd, ("attention",), lambda: _attention_fn(fwd))
    with _PATCH_LOCK:  # a first call traces (and patches); later calls only run
        out = run(fwd.params, padded, mask, padded_rows)
    return np.asarray(out, np.float32)[:, :, : q.size, :n]


@dataclasses.dataclass(frozen=True, eq=False)
class AttentionMaps:
    """Attention from the positions that wrote each response token, per layer and head.

    An immutable value (shared through caches). ``salience`` carries the text, tokens and
    offsets (a `SequenceSalience` whose ``matrices["attention"]`` is the layer-and-head average),
    so spans aggregate to words, sentences, ... exactly like salience.

    Attributes:
        salience: `promptlit.salience.result.SequenceSalience` of the same prompt + response;
            for maps of the whole response, ``matrices["attention"] <float>[T, N]`` =
            ``weights.mean(axis=(0, 1))``.
        weights: ``<float32>[L, H, S, N]``: row ``i`` is the attention of the position predicting
            response token ``start + i`` (sequence position ``num_prompt_tokens + start + i -
            1``) over all ``N`` tokens; read-only. ``S = T`` for the whole response.
        start: the first response token the rows cover (0 for the whole response; maps of one
            span, `KerasCausalLM.attention(..., span=...)`, keep only its rows).
    """

    salience: Any
    weights: np.ndarray
    start: int = 0

    def __post_init__(self) -> None:
        w = np.array(self.weights, np.float32, copy=True)
        if w.ndim != 4:
            raise ValueError(f"AttentionMaps: weights must be [layers, heads, S, N], got shape "
                             f"{w.shape}.")
        sal = self.salience
        start = int(self.start)
        if (w.shape[3] != sal.num_tokens or start < 0
                or start + w.shape[2] > sal.num_response_tokens or w.shape[2] < 1):
            raise ValueError(f"AttentionMaps: weights of shape {w.shape} from response token "
                             f"{start} do not fit [L, H, <= {sal.num_response_tokens - start}, "
                             f"{sal.num_tokens}].")
        w.flags.writeable = False
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "start", start)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.salience, np.asarray(self.weights), self.start))

    @property
    def stop(self) -> int:
        """One past the last response token the rows cover."""
        return self.start + int(self.weights.shape[2])

    def covers(self, start: int, stop: int) -> bool:
        """Whether the rows hold response tokens ``[start, stop)``."""
        return self.start <= int(start) < int(stop) <= self.stop

    @property
    def num_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.weights.shape[1])

    def rows(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """``<float>[S, N]``: one layer's / head's rows, or the mean over layers and / or heads
        (None = average that axis); row ``i`` is response token ``start + i``."""
        w = self.weights
        for index, size, name in ((layer, self.num_layers, "layer"),
                                  (head, self.num_heads, "head")):
            if index is not None and not 0 <= int(index) < size:
                raise IndexError(f"{name} {index} is out of range: the model has {size} "
                                 f"{name}s (0..{size - 1}).")
        w = w.mean(axis=0, dtype=np.float64) if layer is None else w[int(layer)]
        return w.mean(axis=0, dtype=np.float64) if head is None else w[int(head)]

    def for_span(self, start: int, stop: int, *, layer: int | None = None,
                 head: int | None = None) -> Any:
        """The span's attention as a `SpanSalience` (method "attention", unsigned).

        Its ``scores <float>[N]`` are the *mean* of the span's rows: each row is a distribution
        over the tokens, so the scores sum to 1 and a segment's score (the sum of its tokens,
        `SpanSalience.aggregate`) is its share of the span's attention.
        """
        from promptlit.salience.result import SpanSalience

        self.salience._check_span(int(start), int(stop))
        if not self.covers(start, stop):
            raise IndexError(f"these attention maps hold response tokens [{self.start}, "
                             f"{self.stop}), not [{start}, {stop}); compute them for that span.")
        scores = self.rows(layer, head)[int(start) - self.start:int(stop) - self.start].mean(
            axis=0)
        return SpanSalience(parent=self.salience, method="attention", start=int(start),
                            stop=int(stop), scores=scores, signed=False)
