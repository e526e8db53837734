"""Memory planning for the salience kernels: what a device has, what a kernel needs, and plans.

Two users:

* **The kernels, at run time** (`promptlit.salience.kernels`): when no `chunk_size` /
  `ig_batch_size` is given, a kernel compiles at the widest chunk it would like, reads the
  compiled executable's own buffer sizes (`Compiled.memory_analysis()`: XLA's buffer assignment,
  known before anything runs) and, if that does not fit in `budget_bytes()`, compiles once at
  width 1 and picks the widest chunk whose straight-line estimate between the two fits. An
  out-of-memory error at run time halves the chunk and retries (logged as a warning).
* **`promptlit plan`** (`plan_model`): the same compile-only estimates for a model that is never
  loaded: its keras-hub backbone is built inside a `keras.StatelessScope` (variables stay
  uninitialised: shapes only, no bytes), every weight is a `jax.ShapeDtypeStruct`, and each kernel
  is `jax.jit(...).lower(...).compile()`-d on abstract inputs for its `memory_analysis()`.
  Architectures known by name (`ARCHITECTURES`) work offline.

Numbers are bytes. "Activations" below means what a call allocates on top of the weights it is
given: XLA's temporary buffers plus outputs (`temp + output - alias`); "peak" = weights +
activations.

Example:
    >>> from promptlit.salience import memory
    >>> free, where = memory.available_memory()  # doctest: +SKIP
    >>> plan = memory.plan_model("gemma2_2b_en", length=1024, targets=64,
    ...                          dtype="bfloat16", device_memory=24 * 2**30)  # doctest: +SKIP
    >>> print(memory.format_plans([plan]))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GB = 2**30
BUDGET_FRACTION = 0.85
"""Share of the free memory a kernel may plan to use (the rest: fragmentation, other users)."""


# ----------------------------------------------------------------------------- the device


def _host_available() -> int:
    """Bytes of host RAM the OS could give this process now (`MemAvailable`)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * GB  # unknown: a modest laptop


def available_memory(device: Any = None) -> tuple[int, str]:
    """Free memory of the device kernels run on, and where the number comes from.

    Args:
        device: a `jax.Device` (default: `jax.local_devices()[0]`).

    Returns:
        `(bytes, source)`: from `device.memory_stats()` (`bytes_limit - bytes_in_use`) on
        accelerators that report it, else the host's available RAM (CPU devices report nothing).
    """
    import jax

    device = device if device is not None else jax.local_devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - some backends raise instead of returning None
        stats = None
    if stats and stats.get("bytes_limit"):
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return max(free, 0), f"{device.platform} memory_stats"
    return _host_available(), "host RAM (MemAvailable)"


def budget_bytes(device: Any = None) -> int:
    """What one kernel call may plan to allocate: `BUDGET_FRACTION` of `available_memory()`."""
    return int(BUDGET_FRACTION * available_memory(device)[0])


def platform(device: Any = None) -> str:
    import jax

    return (device if device is not None else jax.local_devices()[0]).platform


def activation_bytes(compiled: Any) -> int | None:
    """What running `compiled` allocates beyond its arguments: `temp + output - alias` bytes
    (`Compiled.memory_analysis()`), or None where the backend does not say."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    return int(m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes)


MAX_ELEMENTS = 2**34
"""Largest single intermediate array (elements) a kernel may be compiled with. XLA's CPU compiler
crashes the process (SIGFPE in libjax_common) on buffers around 2^36 elements (measured: the
Gemma 2 9B matrix at N = 8192 compiles with 32 targets per chunk, 2^35-element attention
cotangents, and dies with 64); no device holds such a buffer anyway."""


def largest_intermediate(fwd: Any, bucket: int) -> int:
    """Elements of the largest array one forward pass of `fwd` creates at length `bucket`
    (e.g. the attention logits `heads x N x N`), from the traced jaxpr (nothing compiled).
    Cached on `fwd.cache`."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    key = ("largest_intermediate", int(bucket))
    if key in fwd.cache:
        return int(fwd.cache[key])
    params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), fwd.params)
    s = jax.ShapeDtypeStruct
    e = jax.eval_shape(fwd.embed, params, s((1, bucket), jnp.int32))
    body = fwd.hidden or fwd.logits
    closed = jax.make_jaxpr(body)(params, e, s((1, bucket), jnp.bool_))
    largest = 0
    stack = [closed.jaxpr]
    while stack:
        jaxpr = stack.pop()
        for eqn in jaxpr.eqns:
            for v in eqn.outvars:
                shape = getattr(v.aval, "shape", ())
                largest = max(largest, int(np.prod(shape)) if shape else 1)
            stack.extend(getattr(j, "jaxpr", j) for j in _subjaxprs(eqn))
    fwd.cache[key] = largest
    return largest


def _subjaxprs(eqn: Any) -> list[Any]:
    from jax._src import core

    return list(core.jaxprs_in_params(eqn.params))


def widest_compilable(fwd: Any, bucket: int, most: int) -> int:
    """`most`, or less so that `width x largest_intermediate` stays within `MAX_ELEMENTS`.

    Traces the model only when `most x bucket^2 x 128` (128 heads, a generous bound on the
    attention logits) could exceed the limit, so short prompts cost nothing."""
    if most * bucket * bucket * 128 <= MAX_ELEMENTS:
        return most
    return max(1, min(most, MAX_ELEMENTS // max(1, largest_intermediate(fwd, bucket))))


def is_out_of_memory(error: BaseException) -> bool:
    """True for XLA's out-of-memory errors (`RESOURCE_EXHAUSTED`, "Out of memory")."""
    text = str(error)
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError)
        and ("RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower())
    )


def parse_size(text: str) -> int:
    """`"24GB"`, `"24 GiB"`, `"512MB"`, `"80g"`, `"1.5T"` -> bytes (powers of 1024).

    Raises:
        ValueError: for anything else, with an example.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"not a memory size: {text!r}; write e.g. 24GB, 80GB or 512MB")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    if not m.group(2) and not m.group(3):
        scale = GB  # a bare number is gigabytes
    return int(float(m.group(1)) * scale)


# ----------------------------------------------------------------------------- architectures

# Published hyper-parameters of the keras-hub presets, as keras-hub's own Hugging Face converters
# (keras_hub/src/utils/transformers/convert_gemma.py, convert_llama3.py) turn the models'
# config.json into backbone arguments; values from the Hugging Face configs of google/gemma-2b,
# google/gemma-7b, google/gemma-2-2b, google/gemma-2-9b, google/gemma-2-27b,
# meta-llama/Llama-2-7b-hf, meta-llama/Meta-Llama-3-8B, meta-llama/Llama-3.1-8B,
# meta-llama/Llama-3.2-1B and meta-llama/Llama-3.2-3B (the keras-hub presets gemma_2b_en,
# gemma2_9b_en, llama3_8b_en, ... are conversions of these checkpoints; instruct variants share
# the base model's architecture). keras-hub's Gemma `intermediate_dim` is twice Hugging Face's
# `intermediate_size` (its gated FFN halves it). Rope scaling is left out: it changes no shape.
_GEMMA = {"vocabulary_size": 256000, "layer_norm_epsilon": 1e-6}
_GEMMA2 = {**_GEMMA, "use_post_ffw_norm": True, "use_post_attention_norm": True,
           "final_logit_soft_cap": 30.0, "attention_logit_soft_cap": 50.0,
           "sliding_window_size": 4096, "use_sliding_window_attention": True}
_LLAMA3 = {"vocabulary_size": 128256, "rope_max_wavelength": 500000.0,
           "layer_norm_epsilon": 1e-5}
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "gemma_2b": ("GemmaBackbone", {**_GEMMA, "num_layers": 18, "num_query_heads": 8,
                                   "num_key_value_heads": 1, "hidden_dim": 2048,
                                   "intermediate_dim": 32768, "head_dim": 256}),
    "gemma_7b": ("GemmaBackbone", {**_GEMMA, "num_layers": 28, "num_query_heads": 16,
                                   "num_key_value_heads": 16, "hidden_dim": 3072,
                                   "intermediate_dim": 49152, "head_dim": 256}),
    "gemma2_2b": ("GemmaBackbone", {**_GEMMA2, "num_layers": 26, "num_query_heads": 8,
                                    "num_key_value_heads": 4, "hidden_dim": 2304,
                                    "intermediate_dim": 18432, "head_dim": 256,
                                    "query_head_dim_normalize": True}),
    "gemma2_9b": ("GemmaBackbone", {**_GEMMA2, "num_layers": 42, "num_query_heads": 16,
                                    "num_key_value_heads": 8, "hidden_dim": 3584,
                                    "intermediate_dim": 28672, "head_dim": 256,
                                    "query_head_dim_normalize": True}),
    # query_pre_attn_scalar 144 != head_dim 128: keras-hub's flag is False for this layout.
    "gemma2_27b": ("GemmaBackbone", {**_GEMMA2, "num_layers": 46, "num_query_heads": 32,
                                     "num_key_value_heads": 16, "hidden_dim": 4608,
                                     "intermediate_dim": 73728, "head_dim": 128,
                                     "query_head_dim_normalize": False}),
    "llama2_7b": ("LlamaBackbone", {"vocabulary_size": 32000, "num_layers": 32,
                                    "num_query_heads": 32, "num_key_value_heads": 32,
                                    "hidden_dim": 4096, "intermediate_dim": 11008,
                                    "rope_max_wavelength": 10000.0, "layer_norm_epsilon": 1e-5}),
    "llama3_8b": ("Llama3Backbone", {**_LLAMA3, "num_layers": 32, "num_query_heads": 32,
                                     "num_key_value_heads": 8, "hidden_dim": 4096,
                                     "intermediate_dim": 14336}),
    "llama3.1_8b": ("Llama3Backbone", {**_LLAMA3, "num_layers": 32, "num_query_heads": 32,
                                       "num_key_value_heads": 8, "hidden_dim": 4096,
                                       "intermediate_dim": 14336}),
    "llama3.2_1b": ("Llama3Backbone", {**_LLAMA3, "num_layers": 16, "num_query_heads": 32,
                                       "num_key_value_heads": 8, "hidden_dim": 2048,
                                       "intermediate_dim": 8192, "tie_word_embeddings": True}),
    "llama3.2_3b": ("Llama3Backbone", {**_LLAMA3, "num_layers": 28, "num_query_heads": 24,
                                       "num_key_value_heads": 8, "hidden_dim": 3072,
                                       "intermediate_dim": 8192, "tie_word_embeddings": True}),
}


def architecture_key(handle: str) -> str | None:
    """The `ARCHITECTURES` key of a keras-hub preset name or handle, or None.

    `gemma2_instruct_9b_en`, `kaggle://keras/gemma2/keras/gemma2_9b_en/2` -> `gemma2_9b`;
    `llama3.2_instruct_1b` -> `llama3.2_1b`; `gemma_1.1_instruct_2b_en` -> `gemma_2b`.
    """
    tail = str(handle).split("://", 1)[-1].rstrip("/")
    parts = [p for p in tail.split("/") if p and not p.isdigit()]
    for part in reversed(parts):
        key = part.lower()
        key = re.sub(r"_(instruct|en|int8)(?=_|$)", "", key)
        key = re.sub(r"_1\.1(?=_)", "", key)
        if key in ARCHITECTURES:
            return key
    return None


def _backbone_source(handle: str) -> tuple[str, dict[str, Any], str]:
    """`(backbone class name, config, label)` of a known name or a local preset directory."""
    key = architecture_key(handle)
    if key is not None:
        cls, config = ARCHITECTURES[key]
        return cls, dict(config), key
    path = Path(handle.removeprefix("file://"))
    cfg_file = path / "config.json" if path.is_dir() else path
    if cfg_file.name == "config.json" and cfg_file.is_file():
        try:
            data = json.loads(cfg_file.read_text(encoding="utf-8"))
            return str(data["class_name"]), dict(data["config"]), path.name or str(path)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{cfg_file}: not a keras-hub backbone config ({e})") from None
    raise ValueError(
        f"no architecture known for {handle!r}: plan works offline for the keras-hub presets "
        f"{', '.join(sorted(ARCHITECTURES))} (and their _instruct / _en variants) and for local "
        "keras-hub preset directories (with a config.json)"
    )


def _forget_uninitialised(variables: Sequence[Any]) -> None:
    """Keeps Keras from initialising these variables later (it would allocate the weights)."""
    from keras.src.backend.common import global_state

    ids = {id(v) for v in variables}
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    global_state.set_global_attribute("uninitialized_variables",
                                      [v for v in pending if id(v) not in ids])


def abstract_causal_lm(handle: str, *, dtype: str | None = None,
                       num_layers: int | None = None) -> Any:
    """A keras-hub CausalLM with the architecture of `handle` and no weights in memory.

    The backbone is built inside `keras.StatelessScope(initialize_variables=False)`: every
    variable has its shape and dtype but no value, and `lm_forward` of the result has
    `jax.ShapeDtypeStruct` params, so kernels can be lowered and compiled but not run.

    Args:
        handle: a name known to `ARCHITECTURES` (e.g. "gemma2_9b_en") or a local preset dir.
        dtype: weights and compute dtype ("float32", "bfloat16"); default: the config's.
        num_layers: build this many layers instead of the architecture's (depth extrapolation).
    """
    import keras
    import keras_hub

    cls_name, config, _ = _backbone_source(handle)
    if dtype is not None:
        config["dtype"] = dtype
    if num_layers is not None:
        config["num_layers"] = int(num_layers)
    backbone_cls = getattr(keras_hub.models, cls_name, None)
    lm_cls = getattr(keras_hub.models, cls_name.replace("Backbone", "CausalLM"), None)
    if backbone_cls is None or lm_cls is None:
        raise ValueError(f"{handle}: keras-hub has no {cls_name} / CausalLM to plan for")
    with keras.StatelessScope(initialize_variables=False):
        backbone = backbone_cls.from_config(config)
    _forget_uninitialised(backbone.weights)
    return lm_cls(backbone=backbone, preprocessor=None)


# ----------------------------------------------------------------------------- estimates

PLAN_KERNELS = ("generate", "span", "matrix", "ig")
DEPTHS = (2, 4)
"""Depths compiled for `plan_model`; activations are extrapolated linearly to the real depth
(decoder layers are identical, so buffer sizes are affine in the depth; Gemma 2 alternates
local / global layers, hence even depths)."""


def _struct_bytes(tree: Any) -> int:
    import jax
    import numpy as np

    return int(sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
                   for x in jax.tree.leaves(tree)))


def _generate_executable(causal_lm: Any, length: int) -> Any:
    """keras-hub's own `generate_step` (cache prefill + greedy decode loop) for one sequence of
    `length` tokens, compiled on abstract weights."""
    import jax
    import jax.numpy as jnp
    import keras

    variables = list(causal_lm.weights)
    params = [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in variables]

    def generate(p: Any, token_ids: Any, padding_mask: Any) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(variables, p, strict=True))):
            return causal_lm.generate_step(
                {"token_ids": token_ids, "padding_mask": padding_mask}, stop_token_ids=None)

    s = jax.ShapeDtypeStruct
    return jax.jit(generate).lower(params, s((1, length), jnp.int32),
                                   s((1, length), jnp.bool_)).compile()


def kernel_activation_bytes(fwd: Any, kernel: str, length: int, targets: int, width: int = 1,
                            *, ig_steps: int = 16, causal_lm: Any = None) -> int:
    """Activation bytes (`temp + output - alias`) of one kernel call, compiled, not run.

    Args:
        fwd: `lm_forward(...)` of a real or abstract model (its params may be
            `jax.ShapeDtypeStruct`s).
        kernel: "generate" (keras-hub `generate_step`; needs `causal_lm`), "span" (Grad L2 +
            Grad.Input of the last `targets` tokens), "matrix" (the `targets` x N gradient matrix
            in chunks of `width`) or "ig" (span IG, `ig_steps` steps in alpha batches of `width`,
            one call of up to `IG_STEPS_PER_CALL` steps).
        length: tokens N (padded to `bucket_length(N, fwd.max_positions)` as the kernels do).
    """
    import functools

    import jax
    import jax.numpy as jnp

    from promptlit.salience import kernels as K

    nb = K.bucket_length(length, fwd.max_positions)
    s = jax.ShapeDtypeStruct
    ids, mask = s((nb,), jnp.int32), s((nb,), jnp.bool_)
    if kernel == "generate":
        if causal_lm is None:
            raise ValueError("kernel_activation_bytes: 'generate' needs the causal_lm")
        exe = _generate_executable(causal_lm, nb)
    elif kernel in ("span", "ig"):
        size = min(max(8, 1 << (max(targets, 1) - 1).bit_length()), nb)
        pos, wpos = s((size,), jnp.int32), s((size,), jnp.float32)
        methods: tuple[str, ...]
        key: tuple[Any, ...]
        if kernel == "span":
            methods, baseline, alphas = ("grad_l2", "grad_dot_input"), None, None
        else:
            methods, baseline = ("integrated_gradients",), "zero"
            a, _, _ = K._alpha_pieces(ig_steps, width, K.IG_STEPS_PER_CALL)[0]
            alphas = s(a.shape, jnp.float32)
        key = ("span", methods, baseline)
        build = functools.partial(K._span_fn, fwd, methods, "zero")
        exe = K._executable(fwd, key, build, (fwd.params, ids, mask, pos, wpos, alphas, alphas))
    elif kernel == "matrix":
        methods = ("grad_l2", "grad_dot_input")
        key = ("matrix", methods, width, None)
        exe = K._executable(fwd, key, functools.partial(K._matrix_fn, fwd, methods, width, "zero"),
                            (fwd.params, ids, mask, s((nb + width,), jnp.int32),
                             s((), jnp.int32), None, None))
    else:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {PLAN_KERNELS}")
    need = activation_bytes(exe)
    if need is None:
        raise RuntimeError(f"the {jax.default_backend()} backend reports no memory_analysis()")
    return need


def fit_width(total: int, widest: int, need_1: int, need_widest: int, budget: int) -> int | None:
    """The widest near-equal width (`kernels.split_evenly(total, w)`) whose activations fit.

    Activations are estimated on the straight line through (1, `need_1`) and (`widest`,
    `need_widest`): peak memory is mostly the max of a fixed phase and a phase growing linearly
    with the width, for which the line is an upper bound; on tiny models XLA's buffer sizes can
    sit slightly above it, so the kernels check the chosen width's own compile at run time.
    None when even width 1 does not fit.
    """
    from promptlit.salience.kernels import split_evenly

    if need_1 > budget:
        return None
    if widest <= 1 or need_widest <= budget:
        return split_evenly(total, widest)[0]
    per = max((need_widest - need_1) / (widest - 1), 1.0)
    fit = 1 + int((budget - need_1) // per)
    return split_evenly(total, max(1, min(fit, widest)))[0]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Compile-only memory estimates of one model at one length (see `plan_model`).

    Attributes:
        label: the architecture's name (or the preset directory's).
        dtype: weights and compute dtype. length, bucket: N and its padded length.
        targets: T (matrix rows; the span is the last T tokens). ig_steps: IG steps.
        num_layers, parameters, weight_bytes: the full model's.
        activations: `{(kernel, width): bytes}` at the full depth (extrapolated from `depths`
            unless `depths` is empty: compiled at full depth); kernel in `PLAN_KERNELS`, width 0
            for generate / span, targets per chunk for matrix, alphas per batch for ig.
        matrix_widest, ig_widest: the widths compiled besides 1 (the maxima asked for, capped
            by `widest_compilable` at long lengths).
        depths: the depths compiled (empty: the full depth).
    """

    label: str
    dtype: str
    length: int
    bucket: int
    targets: int
    ig_steps: int
    num_layers: int
    parameters: int
    weight_bytes: int
    activations: dict[tuple[str, int], int]
    matrix_widest: int
    ig_widest: int
    depths: tuple[int, ...]

    def widths(self, device_bytes: int) -> dict[str, int | None]:
        """What fits on a device of `device_bytes`: `{"generate": 0 | None, "span": 0 | None,
        "matrix": targets per chunk | None, "ig": alphas per batch | None}` (None: does not
        fit), with the activation budget `BUDGET_FRACTION x (device - weights)`."""
        budget = int(BUDGET_FRACTION * (device_bytes - self.weight_bytes))
        act = self.activations
        return {
            "generate": 0 if act[("generate", 0)] <= budget else None,
            "span": 0 if act[("span", 0)] <= budget else None,
            "matrix": fit_width(self.targets, self.matrix_widest, act[("matrix", 1)],
                                act[("matrix", self.matrix_widest)], budget),
            "ig": fit_width(min(self.ig_steps, _ig_steps_per_call()), self.ig_widest,
                            act[("ig", 1)], act[("ig", self.ig_widest)], budget),
        }

    def activation(self, kernel: str, width: int = 0) -> int:
        """Estimated activations of `kernel` at `width` (straight line between compiled widths)."""
        if (kernel, width) in self.activations:
            return self.activations[(kernel, width)]
        widest = self.matrix_widest if kernel == "matrix" else self.ig_widest
        lo, hi = self.activations[(kernel, 1)], self.activations[(kernel, widest)]
        return int(lo + (hi - lo) * (width - 1) / max(widest - 1, 1))


def _ig_steps_per_call() -> int:
    from promptlit.salience.kernels import IG_STEPS_PER_CALL

    return IG_STEPS_PER_CALL


def plan_model(handle: str, *, length: int, targets: int = 64, dtype: str | None = None,
               ig_steps: int = 16, exact: bool = False, max_chunk: int | None = None,
               max_ig_batch: int | None = None,
               log: Any = None) -> Plan:
    """Compile-only memory estimates for `handle` at `length` tokens; no weights are allocated.

    Builds the architecture abstractly (`abstract_causal_lm`), compiles generate / span / matrix
    (at 1 and `max_chunk` targets per chunk) / IG (at 1 and `max_ig_batch` alphas per batch)
    for `jax.ShapeDtypeStruct` inputs and reads `memory_analysis()`. Unless `exact`, kernels are
    compiled at depths `DEPTHS` and extrapolated to the real depth (seconds instead of minutes;
    affine in the depth, checked against full-depth compiles in the README).

    Args:
        handle: a name in `ARCHITECTURES` (any keras-hub preset spelling) or a local preset dir.
        length: N, prompt + response tokens. targets: T, rows of the matrix (and span length).
        dtype: "float32" (promptlit's default for models) or "bfloat16"; None: the config's.
        ig_steps: IG steps (one call evaluates at most `kernels.IG_STEPS_PER_CALL`).
        max_chunk, max_ig_batch: widest widths to consider (default: the accelerator maxima
            `kernels.MAX_CHUNK["default"]`, `kernels.MAX_IG_BATCH["default"]`).
        log: optional `callable(str)` told what is being compiled.
    """
    from promptlit.salience import kernels as K
    from promptlit.salience.forward import lm_forward

    _, config, label = _backbone_source(handle)
    full_lm = abstract_causal_lm(handle, dtype=dtype)
    full_fwd = lm_forward(full_lm)
    weight_bytes = _struct_bytes(full_fwd.params)
    parameters = int(sum(int(math.prod(v.shape)) for v in full_lm.weights))
    depth = int(full_lm.backbone.num_layers)
    the_dtype = str(full_lm.backbone.dtype_policy.compute_dtype)
    nb = K.bucket_length(length, full_fwd.max_positions)
    chunk_cap = widest_compilable(full_fwd, nb, max_chunk or K.MAX_CHUNK["default"])
    batch_cap = widest_compilable(full_fwd, nb, max_ig_batch or K.MAX_IG_BATCH["default"])
    matrix_widest = K.split_evenly(targets, chunk_cap)[0]
    ig_widest = K.split_evenly(min(ig_steps, K.IG_STEPS_PER_CALL), batch_cap)[0]
    wanted = [("generate", 0), ("span", 0), ("matrix", 1), ("matrix", matrix_widest),
              ("ig", 1), ("ig", ig_widest)]
    depths: tuple[int, ...] = () if exact or depth <= max(DEPTHS) else DEPTHS
    measured: dict[int, dict[tuple[str, int], int]] = {}
    for d in depths or (depth,):
        lm = full_lm if d == depth else abstract_causal_lm(handle, dtype=dtype, num_layers=d)
        fwd = full_fwd if d == depth else lm_forward(lm)
        measured[d] = {}
        for kernel, width in dict.fromkeys(wanted):
            if log is not None:
                log(f"{label}: compiling {kernel}" + (f" (width {width})" if width else "") +
                    f" at N={length}, {d} layers")
            measured[d][(kernel, width)] = kernel_activation_bytes(
                fwd, kernel, length, targets, max(width, 1), ig_steps=ig_steps, causal_lm=lm)
    if depths:
        lo, hi = depths
        activations = {k: int(round(measured[lo][k] + (measured[hi][k] - measured[lo][k]) *
                                    (depth - lo) / (hi - lo))) for k in measured[lo]}
    else:
        activations = measured[depth]
    del config
    return Plan(label=label, dtype=the_dtype, length=length, bucket=nb,
                targets=targets, ig_steps=ig_steps, num_layers=depth, parameters=parameters,
                weight_bytes=weight_bytes, activations=activations, matrix_widest=matrix_widest,
                ig_widest=ig_widest, depths=depths)


def _gb(x: float) -> str:
    return f"{x / GB:.2f}" if x < 10 * GB else f"{x / GB:.1f}"


def _count(x: int) -> str:
    return f"{x / 1e9:.2f}B" if x >= 1e9 else f"{x / 1e6:.1f}M"


def format_plans(plans: Sequence[Plan], devices: Sequence[int] = ()) -> str:
    """Two text tables: peak GB per kernel (weights + activations), then what fits per device
    (`matrix chunk / IG alpha batch`; `-` where even width 1 does not fit, `no` where the weights
    plus a span gradient do not)."""
    if not plans:
        return ""
    head = ["model", "dtype", "layers", "N", "T", "params", "weights", "generate", "span",
            "matrix w=1", "matrix w=max", "IG a=1", "IG a=max"]
    rows = [head]
    for p in plans:
        w = p.weight_bytes
        layers = f"{p.num_layers}" + (f" (from {'+'.join(map(str, p.depths))})" if p.depths
                                      else "")
        rows.append([p.label, p.dtype, layers, str(p.length), str(p.targets),
                     _count(p.parameters), _gb(w), _gb(w + p.activation("generate")),
                     _gb(w + p.activation("span")), _gb(w + p.activation("matrix", 1)),
                     f"{_gb(w + p.activation('matrix', p.matrix_widest))} "
                     f"(w={p.matrix_widest})",
                     _gb(w + p.activation("ig", 1)),
                     f"{_gb(w + p.activation('ig', p.ig_widest))} (a={p.ig_widest})"])
    out = [_table(rows)]
    if devices:
        rows = [["model", "N", *[f"{d / GB:g} GB" for d in devices]]]
        for p in plans:
            cells = []
            for d in devices:
                fit = p.widths(d)
                if p.weight_bytes >= d or fit["span"] is None:
                    cells.append("no")
                else:
                    m, a = fit["matrix"], fit["ig"]
                    cells.append(f"{m if m else '-'}/{a if a else '-'}")
            rows.append([p.label, str(p.length), *cells])
        out.append(_table(rows))
    return "\n\n".join(out)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
