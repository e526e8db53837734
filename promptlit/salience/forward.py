"""Pure, stateless forward functions of a keras-hub causal LM, split at the token embeddings.

Salience methods differentiate the model's log-probabilities with respect to the *input token
embeddings*. This module turns a `keras_hub.models.CausalLM` into two pure JAX functions:

* `embed(params, token_ids)`: the token-embedding layer's output, `<float>[B, N, D]`. This is the
  interception point: everything a salience method attributes to "token j" is measured here.
* `logits(params, embeddings, padding_mask)`: the rest of the network, `<float>[B, N, V]`: any
  embedding scale (Gemma's `sqrt(hidden_dim)`), position embeddings (GPT-2), the transformer layers
  with their causal + padding (+ sliding-window) masks, the final norm, the LM head (tied or not)
  and the final-logit soft-cap (Gemma 2).

The weights are an explicit argument (`params`, a pytree of jax arrays), never constants captured
in a trace, so `jax.jit` compiles once per input shape and the same compiled function serves any
weights of the same architecture.

How the rest of the network is reproduced: instead of re-implementing every architecture by hand,
`lm_forward` cuts the backbone's own Keras functional graph at the token-embedding output (a
`keras.Model` whose inputs are that intermediate tensor and the padding mask) and then applies the
task's LM head, `backbone.token_embedding(hidden, reverse=True)`, exactly as each supported
`CausalLM` does in `call_with_cache`. Layers are called inside a `keras.StatelessScope` that maps
every variable to the matching entry of `params`. The result is therefore the model's own
computation, op for op (`tests/salience/test_forward.py` checks it against `causal_lm(...)` for
every supported family). We do not use `GemmaCausalLM.score(layer_intercept_fn=...)`: in keras-hub
0.32 the value returned for index -1 is discarded (the original embeddings are rescaled), so
intercepting there changes nothing.

Example:
    >>> fwd = lm_forward(causal_lm)  # doctest: +SKIP
    >>> emb = fwd.embed(fwd.params, token_ids)  # <float>[1, N, D]  # doctest: +SKIP
    >>> out = fwd.logits(fwd.params, emb, jnp.ones(token_ids.shape, bool))  # <float>[1, N, V]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

# CausalLM classes whose logits are exactly `token_embedding(backbone_graph(...), reverse=True)`
# and whose backbone graph takes only {"token_ids", "padding_mask"} (family -> class names).
SUPPORTED_CAUSAL_LMS: dict[str, tuple[str, ...]] = {
    "Gemma / Gemma 2": ("GemmaCausalLM",),
    "Gemma 3 (text-only)": ("Gemma3CausalLM",),
    "GPT-2": ("GPT2CausalLM",),
    "Llama / Llama 3": ("LlamaCausalLM", "Llama3CausalLM"),
    "Mistral": ("MistralCausalLM",),
    "Qwen / Qwen 3": ("QwenCausalLM", "Qwen3CausalLM"),
}
_SUPPORTED_CLASS_NAMES = frozenset(n for names in SUPPORTED_CAUSAL_LMS.values() for n in names)


@dataclasses.dataclass(frozen=True, eq=False)
class LMForward:
    """A causal LM as pure functions of `(params, ...)`, split at the token embeddings.

    Attributes:
        params: pytree (dict `variable.path -> jax.Array`) of every weight of the model; pass it
            as a jit *argument*.
        embed: `(params, token_ids<int>[B, N]) -> <float>[B, N, D]`, the token-embedding layer's
            output (before any scale or position embedding).
        logits: `(params, embeddings<float>[B, N, D], padding_mask<bool>[B, N]) -> <float>[B, N, V]`,
            the rest of the model; `logits[:, p]` predicts token `p + 1`.
        hidden: optional `(params, embeddings<float>[B, N, D], padding_mask<bool>[B, N]) ->
            <float>[B, N, H]`, the part of `logits` before a *position-wise* head, so that
            `logits(p, e, m) == head(p, hidden(p, e, m))`. Kernels use the split to keep
            vocabulary-sized arrays out of batched backward passes. When None, kernels treat
            `logits` as `hidden` and the head as the identity (correct, but memory-hungry).
        head: optional `(params, hidden<float>[B, N, H]) -> <float>[B, N, V]`, applied to each
            position independently (here: final-logit soft-cap included).
        name: the CausalLM class name, for messages.
        mesh: the `jax.sharding.Mesh` (axes "data", "model") that `params` are sharded over
            (`promptlit.distributed`), or None on one device. Kernels split their batched work
            (target chunks, IG alpha batches) over its data axis.
        attention_heads: query heads per attention layer (None: unknown). On a CPU the kernels
            narrow their planned batches so that `width x heads x N^2` attention probabilities
            stay cache-sized (`kernels.CPU_ATTENTION_BYTES`).
        max_positions: the longest sequence the model can embed (learned position tables, e.g.
            GPT-2's 1024), or None (rotary models: no table). Kernels never pad past it
            (`kernels.bucket_length`).
        cache: per-instance store for compiled kernels (filled by `promptlit.salience.kernels`);
            identity-hashed (`eq=False`), so compiled functions live exactly as long as this object.
    """

    params: Any
    embed: Callable[..., Any]
    logits: Callable[..., Any]
    hidden: Callable[..., Any] | None = None
    head: Callable[..., Any] | None = None
    name: str = ""
    mesh: Any = None
    attention_heads: int | None = None
    max_positions: int | None = None
    cache: dict[Any, Any] = dataclasses.field(default_factory=dict, repr=False)


def _supported_list() -> str:
    return "; ".join(f"{fam}: {', '.join(names)}" for fam, names in SUPPORTED_CAUSAL_LMS.items())


def _unsupported(causal_lm: Any, why: str) -> ValueError:
    return ValueError(
        f"lm_forward: {type(causal_lm).__name__} is not supported ({why}). Supported keras-hub "
        f"causal LMs: {_supported_list()}. For another architecture, add its CausalLM class to "
        "promptlit.salience.forward.SUPPORTED_CAUSAL_LMS once its logits are "
        "`backbone.token_embedding(backbone(...), reverse=True)`, and test it in "
        "tests/salience/test_forward.py."
    )


def _token_embedding_output(backbone: Any) -> Any:
    """The KerasTensor the backbone graph gets from `token_embedding(token_ids)`."""
    token_ids_input = backbone.input["token_ids"]
    found = []
    for node in backbone.token_embedding._inbound_nodes:
        if any(t is token_ids_input for t in node.input_tensors):
            found.extend(node.output_tensors)
    return found


def _unique_paths(variables: Sequence[Any]) -> list[str]:
    keys: list[str] = []
    seen: set[str] = set()
    for i, v in enumerate(variables):
        key = str(getattr(v, "path", None) or getattr(v, "name", f"var_{i}"))
        if key in seen:
            key = f"{key}#{i}"
        seen.add(key)
        keys.append(key)
    return keys


def _param(variable: Any) -> Any:
    """A variable's value; a `jax.ShapeDtypeStruct` for one that was never initialised (a model
    built abstractly by `promptlit.salience.memory.abstract_causal_lm`: no weights in memory)."""
    if getattr(variable, "_value", True) is None:
        import jax

        return jax.ShapeDtypeStruct(tuple(variable.shape), variable.dtype)
    return variable.value


def lm_forward(causal_lm: Any, *, mesh: Any = None) -> LMForward:
    """Builds pure `embed` / `logits` functions for a keras-hub causal LM.

    Args:
        causal_lm: a `keras_hub.models.CausalLM` of a supported family (see
            `SUPPORTED_CAUSAL_LMS`: Gemma, Gemma 2, Gemma 3 text-only, GPT-2, Llama, Llama 3,
            Mistral, Qwen, Qwen 3). Its preprocessor is not used.
        mesh: None (one device), a `jax.sharding.Mesh` with the axes ("data", "model"), or a
            "data=D,model=M" string (`promptlit.distributed.as_mesh`): the model's weights are
            sharded over it first (`distributed.shard_causal_lm`, in place; a no-op when they
            already are), so `params` holds each device's shard only.

    Returns:
        An `LMForward` whose `params` hold the model's current weights (a snapshot: re-run
        `lm_forward` after changing the weights).

    Raises:
        ValueError: for an unsupported class or a backbone graph that cannot be split at the token
            embeddings (e.g. a multimodal Gemma 3 with a vision encoder), naming the class and the
            supported list.
    """
    import keras

    from promptlit import distributed

    class_name = type(causal_lm).__name__
    if class_name not in _SUPPORTED_CLASS_NAMES:
        raise _unsupported(causal_lm, "not in the supported list")
    backbone = getattr(causal_lm, "backbone", None)
    if backbone is None or not hasattr(backbone, "token_embedding"):
        raise _unsupported(causal_lm, "it has no backbone with a `token_embedding` layer")
    inputs = backbone.input
    if not isinstance(inputs, dict) or set(inputs) != {"token_ids", "padding_mask"}:
        names = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise _unsupported(
            causal_lm,
            f"its backbone takes inputs {names}, not just token_ids + padding_mask "
            "(multimodal backbones, e.g. Gemma 3 with a vision encoder, are not supported; "
            "load the text-only preset)",
        )
    if isinstance(backbone.output, dict | list | tuple):
        raise _unsupported(causal_lm, "its backbone has several outputs (an embedding model?)")
    emb_outputs = _token_embedding_output(backbone)
    if len(emb_outputs) != 1:
        raise _unsupported(
            causal_lm, f"token_embedding is applied {len(emb_outputs)} times to token_ids"
        )

    # The backbone graph from the token-embedding output to the final hidden states (Keras clones
    # the intermediate tensor into a fresh Input; the layers, and so the variables, are shared).
    body = keras.Model(
        inputs=[emb_outputs[0], inputs["padding_mask"]],
        outputs=backbone.output,
        name=f"{backbone.name}_after_token_embedding",
    )

    mesh = distributed.as_mesh(mesh, where="lm_forward(mesh=...)")
    if mesh is not None:
        distributed.shard_causal_lm(causal_lm, mesh)
    variables: list[Any] = []
    seen_ids: set[int] = set()
    for v in list(causal_lm.weights) + list(backbone.weights):
        if id(v) not in seen_ids:
            seen_ids.add(id(v))
            variables.append(v)
    keys = _unique_paths(variables)
    params = {k: _param(v) for k, v in zip(keys, variables, strict=True)}
    token_embedding = backbone.token_embedding

    def _scope(p: Any) -> Any:
        return keras.StatelessScope(
            state_mapping=[(v, p[k]) for k, v in zip(keys, variables, strict=True)]
        )

    def embed(p: Any, token_ids: Any) -> Any:
        """`token_ids<int>[B, N] -> <float>[B, N, D]`: the token-embedding layer's output."""
        with _scope(p):
            return token_embedding(jnp.asarray(token_ids, "int32"))

    def hidden(p: Any, embeddings: Any, padding_mask: Any) -> Any:
        """`(<float>[B, N, D], <bool>[B, N]) -> <float>[B, N, D]`: final (normed) hidden states."""
        with _scope(p):
            mask = jnp.asarray(padding_mask).astype("int32")
            return body([jnp.asarray(embeddings), mask], training=False)

    def head(p: Any, hidden_states: Any) -> Any:
        """`<float>[B, N, D] -> <float>[B, N, V]`: the LM head (reverse embedding + soft-cap)."""
        with _scope(p):
            return token_embedding(hidden_states, reverse=True)

    def logits(p: Any, embeddings: Any, padding_mask: Any) -> Any:
        """`(<float>[B, N, D], <bool>[B, N]) -> <float>[B, N, V]`: the model after its embeddings."""
        return head(p, hidden(p, embeddings, padding_mask))

    heads = getattr(backbone, "num_query_heads", None) or getattr(backbone, "num_heads", None)
    positions = getattr(backbone, "max_sequence_length", None)
    return LMForward(
        params=params, embed=embed, logits=logits, hidden=hidden, head=head, name=class_name,
        mesh=mesh, attention_heads=int(heads) if heads else None,
        max_positions=int(positions) if positions else None,
    )
