"""Gemma 2 / Gemma 3 query scaling: what keras-hub computes vs. what the checkpoint was trained with.

Gemma scales its queries by ``1/sqrt(query_pre_attn_scalar)`` before attention. For most Gemma
models ``query_pre_attn_scalar == head_dim``, but the 27B layouts differ: Gemma 2 27B uses 144
(``hidden_size / num_attention_heads`` = 4608 / 32) and Gemma 3 27B 168 (5376 / 32), both with
``head_dim`` 128. keras-hub (0.29.1, 0.32.0 and upstream as of 2026-08) builds the attention layer
of every `GemmaDecoderBlock` / `Gemma3DecoderBlock` with ``query_head_dim_normalize=True``
hard-coded, so the backbone's ``query_head_dim_normalize=False`` never reaches it and those models
run with ``1/sqrt(128)``: log-probs are off by 0.1-0.25 and salience by 6-30 % (measured against
transformers in float64). See ``docs/upstream/keras-hub-gemma-query-scaling.md`` for the source
lines and the report to file upstream.

`correct_query_scaling` fixes a loaded model in place: each affected attention layer's class is
switched to a subclass whose ``_compute_attention`` multiplies the (RoPE'd, normed) queries by
``sqrt(s_keras_hub / s_true)`` before keras-hub's own ``1/sqrt(s_keras_hub)``, so the product is
``1/sqrt(s_true)`` in every code path (plain einsum and fused ``dot_product_attention``, with or
without soft-cap, sliding window, cache). Weights are not touched, so a corrected model saved with
``save_to_preset`` is the same checkpoint, and loading it again through promptlit corrects it
again (never twice: an already corrected layer is left alone). Models where the two scalars agree
(Gemma 2B / 7B, Gemma 2 2B / 9B, Gemma 3 270M / 1B / 4B / 12B) are not touched at all.

Where the true scalar comes from:

* a Hugging Face checkpoint (local directory or ``hf://``): its ``config.json``'s
  ``query_pre_attn_scalar`` (``text_config`` for multimodal Gemma 3), exactly what transformers
  uses (transformers' default 256 when the key is absent);
* a keras-hub preset (Kaggle name, ``kaggle://``, a ``save_to_preset`` directory) or a model built
  in memory: keras-hub's documented meaning of ``query_head_dim_normalize=False``,
  ``hidden_dim // num_query_heads`` (the Gemma reference's "embed_dim / num_heads"), except for
  the layouts of released Gemma models whose reference scalar is ``head_dim``
  (`REFERENCE_SCALARS`): there a ``False`` flag is a conversion slip (keras-hub's first Gemma 2
  9B preset most likely carried one) and is ignored.

keras-hub's own Kaggle 27B presets need the same correction: every conversion path in keras-hub
copies the query kernels verbatim (Flax ``q_einsum`` / HF ``q_proj``, no pre-scaling), and
keras-hub's own Keras -> HF exporters write them back verbatim with ``query_pre_attn_scalar =
hidden_dim // num_query_heads``. The evidence is in the doc above.

Example:
    >>> lm = keras_hub.models.CausalLM.from_preset("hf://google/gemma-2-27b")  # doctest: +SKIP
    >>> correct_query_scaling(lm, source="hf://google/gemma-2-27b")  # doctest: +SKIP
    QueryScaling(query_pre_attn_scalar=144.0, keras_hub_scalar=128.0, layers=46, origin=...)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DOC = "docs/upstream/keras-hub-gemma-query-scaling.md"

HF_DEFAULT_QUERY_PRE_ATTN_SCALAR = 256.0
"""transformers' `Gemma2Config` / `Gemma3TextConfig` default, used when config.json omits the key."""

#: Released Gemma 2 / Gemma 3 text layouts (backbone class, hidden_dim, num_query_heads,
#: head_dim) -> the query_pre_attn_scalar of their reference implementation and Hugging Face
#: config. Consulted only for keras-hub presets whose config says query_head_dim_normalize=False.
REFERENCE_SCALARS: dict[tuple[str, int, int, int], float] = {
    ("GemmaBackbone", 2304, 8, 256): 256.0,  # Gemma 2 2B
    ("GemmaBackbone", 3584, 16, 256): 256.0,  # Gemma 2 9B (keras-hub's v1 preset: likely False)
    ("GemmaBackbone", 4608, 32, 128): 144.0,  # Gemma 2 27B
    ("Gemma3Backbone", 640, 4, 256): 256.0,  # Gemma 3 270M
    ("Gemma3Backbone", 1152, 4, 256): 256.0,  # Gemma 3 1B
    ("Gemma3Backbone", 2560, 8, 256): 256.0,  # Gemma 3 4B
    ("Gemma3Backbone", 3840, 16, 256): 256.0,  # Gemma 3 12B
    ("Gemma3Backbone", 5376, 32, 128): 168.0,  # Gemma 3 27B
}

_HF_GEMMA_TYPES = ("gemma2", "gemma3", "gemma3_text")


@dataclasses.dataclass(frozen=True)
class QueryScaling:
    """A model's corrected query scaling.

    Attributes:
        query_pre_attn_scalar: s in the ``1/sqrt(s)`` the model now applies (the checkpoint's).
        keras_hub_scalar: what keras-hub alone would apply (``head_dim`` for keras-hub <= 0.32).
        layers: number of attention layers corrected.
        origin: where `query_pre_attn_scalar` came from, for the log and the docs.
    """

    query_pre_attn_scalar: float
    keras_hub_scalar: float
    layers: int
    origin: str

    def describe(self) -> str:
        """The log line's core: "1/sqrt(144) instead of keras-hub's 1/sqrt(128)"."""
        return (f"1/sqrt({self.query_pre_attn_scalar:g}) instead of keras-hub's "
                f"1/sqrt({self.keras_hub_scalar:g})")


# ----------------------------------------------------------------------------- the layer patch


class _QueryScaleMixin:
    """Multiplies the queries by a constant before keras-hub's own query normalisation."""

    _promptlit_query_factor: float
    query_pre_attn_scalar: float
    keras_hub_query_scalar: float

    def _compute_attention(self, q: Any, *args: Any, **kwargs: Any) -> Any:
        from keras import ops

        q = q * ops.cast(self._promptlit_query_factor, q.dtype)
        return super()._compute_attention(q, *args, **kwargs)  # type: ignore[misc]


_SCALED_CLASSES: dict[type, type] = {}


def _scaled_class(base: type) -> type:
    """`base` with `_QueryScaleMixin` in front (one class per base, made on first use)."""
    cls = _SCALED_CLASSES.get(base)
    if cls is None:
        cls = type(f"QueryScaled{base.__name__}", (_QueryScaleMixin, base), {
            "__module__": __name__,
            "__doc__": f"keras-hub's {base.__name__} with the checkpoint's query scaling "
                       f"(promptlit.models.gemma_attention; see {DOC}).",
        })
        _SCALED_CLASSES[base] = cls
    return cls


def _attention_classes() -> tuple[type, ...]:
    from keras_hub.src.models.gemma.gemma_attention import CachedGemmaAttention
    from keras_hub.src.models.gemma3.gemma3_attention import CachedGemma3Attention

    return CachedGemmaAttention, CachedGemma3Attention


def _gemma_backbone(causal_lm: Any) -> Any | None:
    """The model's `GemmaBackbone` / `Gemma3Backbone`, or None for any other model."""
    backbone = getattr(causal_lm, "backbone", causal_lm)
    try:
        from keras_hub.models import Gemma3Backbone, GemmaBackbone
    except ImportError:  # pragma: no cover - keras-hub is a dependency
        return None
    return backbone if isinstance(backbone, GemmaBackbone | Gemma3Backbone) else None


def keras_hub_query_scalar(attention: Any) -> float:
    """The s of the ``1/sqrt(s)`` keras-hub's `_compute_attention` applies to this layer's queries.

    Mirrors keras-hub's rule (``head_dim`` when the *layer's* ``query_head_dim_normalize`` is True,
    else ``hidden_dim // num_query_heads``), so it stays right if keras-hub starts passing the
    backbone's flag through. Reads the layer as keras-hub built it, ignoring any correction.
    """
    if getattr(attention, "query_head_dim_normalize", True):
        return float(attention.head_dim)
    hidden = getattr(attention, "hidden_dim", None)
    if hidden is None:  # set in build(); a Gemma backbone is built on construction
        raise ValueError("the attention layer is not built yet")
    return float(int(hidden) // int(attention.num_query_heads))


def _attention_layers(backbone: Any) -> list[Any]:
    classes = _attention_classes()
    return [block.attention for block in backbone.transformer_layers
            if isinstance(getattr(block, "attention", None), classes)]


def query_scaling(causal_lm: Any) -> QueryScaling | None:
    """The correction applied to `causal_lm` by `correct_query_scaling`, or None if none was."""
    backbone = _gemma_backbone(causal_lm)
    if backbone is None:
        return None
    fixed = [a for a in _attention_layers(backbone) if isinstance(a, _QueryScaleMixin)]
    if not fixed:
        return None
    a = fixed[0]
    return QueryScaling(a.query_pre_attn_scalar, a.keras_hub_query_scalar, len(fixed),
                        getattr(a, "_promptlit_query_origin", ""))


def query_scaling_key(causal_lm: Any) -> dict[str, float]:
    """``{"query_pre_attn_scalar": s}`` for a corrected model, else ``{}``: for cache keys, so
    that results computed before a correction (or by promptlit versions without it) are not
    reused, while every other model's key stays as it was."""
    scaling = query_scaling(causal_lm)
    return {} if scaling is None else {"query_pre_attn_scalar": scaling.query_pre_attn_scalar}


# ----------------------------------------------------------------------------- the true scalar


def hf_query_pre_attn_scalar(config: dict[str, Any]) -> float | None:
    """The ``query_pre_attn_scalar`` transformers uses for a Hugging Face Gemma 2 / 3 config.

    Args:
        config: a parsed Hugging Face ``config.json``.

    Returns:
        The scalar for model types gemma2, gemma3_text and gemma3 (read from ``text_config``),
        transformers' default 256 when the key is absent; None for any other model type (Gemma 1
        has no such key and scales by ``head_dim``, which keras-hub gets right).
    """
    if not isinstance(config, dict) or config.get("model_type") not in _HF_GEMMA_TYPES:
        return None
    text = config.get("text_config") if config["model_type"] == "gemma3" else config
    if not isinstance(text, dict):
        text = {}
    value = text.get("query_pre_attn_scalar")
    if value is None:
        return HF_DEFAULT_QUERY_PRE_ATTN_SCALAR
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"query_pre_attn_scalar must be a positive number, got {value!r}")
    return value


def keras_config_query_pre_attn_scalar(backbone: Any) -> tuple[float, str]:
    """The scalar a keras-hub Gemma / Gemma 3 backbone's own config stands for, and why.

    ``query_head_dim_normalize=True`` -> ``head_dim``. ``False`` -> ``hidden_dim //
    num_query_heads`` (keras-hub's documented meaning, which is the 27B reference), unless the
    layout is a released model whose reference scalar is known (`REFERENCE_SCALARS`).
    """
    head_dim = float(backbone.head_dim)
    if getattr(backbone, "query_head_dim_normalize", True):
        return head_dim, "query_head_dim_normalize=True (head_dim)"
    key = (type(backbone).__name__, int(backbone.hidden_dim), int(backbone.num_query_heads),
           int(backbone.head_dim))
    if key in REFERENCE_SCALARS:
        return REFERENCE_SCALARS[key], (f"the reference scalar of the released {key[0]} layout "
                                        f"hidden_dim={key[1]}, {key[2]} heads x {key[3]}")
    value = float(int(backbone.hidden_dim) // int(backbone.num_query_heads))
    return value, "query_head_dim_normalize=False (hidden_dim // num_query_heads)"


def _read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def source_config(source: str | Path | None) -> dict[str, Any] | None:
    """The ``config.json`` of what `source` names (a local directory or ``hf://``), else None.

    Kaggle sources are keras-hub presets (no Hugging Face config) and return None without any
    file access. For ``hf://`` the file comes from the Hugging Face cache (keras-hub has just
    downloaded it to build the model).
    """
    if source is None:
        return None
    text = str(source)
    try:
        if text.startswith("hf://"):
            from keras_hub.src.utils.preset_utils import get_file

            return _read_json(get_file(text, "config.json"))
        if "://" in text:
            return None
        path = Path(text) / "config.json"
        return _read_json(path) if path.is_file() else None
    except Exception as e:  # noqa: BLE001 - fall back to the keras-hub config, but say so
        logger.warning("could not read the config.json of %s (%s: %s); using the keras-hub "
                       "config's query scaling", text, type(e).__name__, e)
        return None


# ----------------------------------------------------------------------------- the fix


def correct_query_scaling(causal_lm: Any, *, source: str | Path | None = None,
                          query_pre_attn_scalar: float | None = None) -> QueryScaling | None:
    """Makes a Gemma 2 / Gemma 3 model scale queries by its checkpoint's ``query_pre_attn_scalar``.

    Idempotent and a no-op for every other model and for Gemma models whose scalar equals what
    keras-hub applies (nothing is touched then, so their outputs stay bit-identical). A
    correction is logged once, at WARNING level because the model then differs from what
    keras-hub alone computes: "corrected query scaling: 1/sqrt(144) instead of keras-hub's
    1/sqrt(128) ...".

    Args:
        causal_lm: a keras-hub CausalLM (or backbone), e.g. fresh from ``from_preset``.
        source: what it was loaded from (a local directory or ``hf://...``); a Hugging Face
            checkpoint's config.json there gives the true scalar. Optional.
        query_pre_attn_scalar: the true scalar, when the caller knows it (overrides `source`).

    Returns:
        The `QueryScaling` in effect (also when an earlier call applied it), or None when the
        model needs no correction.
    """
    backbone = _gemma_backbone(causal_lm)
    if backbone is None:
        return None
    already = query_scaling(causal_lm)
    if already is not None:
        return already
    from_keras_config = False
    if query_pre_attn_scalar is not None:
        target, origin = float(query_pre_attn_scalar), "given by the caller"
    else:
        hf = hf_query_pre_attn_scalar(source_config(source) or {})
        if hf is not None:
            target, origin = hf, f"query_pre_attn_scalar in the config.json of {source}"
        else:
            target, origin = keras_config_query_pre_attn_scalar(backbone)
            from_keras_config = True
    if not math.isfinite(target) or target <= 0:
        raise ValueError(f"query_pre_attn_scalar must be a positive number, got {target!r}")

    layers = _attention_layers(backbone)
    todo = [a for a in layers if keras_hub_query_scalar(a) != target]
    if not todo:
        if (from_keras_config and not getattr(backbone, "query_head_dim_normalize", True)
                and target == float(backbone.head_dim) and "reference" not in origin):
            logger.warning(
                "%s: query_head_dim_normalize=False but hidden_dim // num_query_heads == head_dim "
                "(%d): if this model came from a Hugging Face checkpoint whose "
                "query_pre_attn_scalar is not %d, load it through promptlit from that checkpoint "
                "(local directory or hf://) so that its config.json is read; see %s.",
                type(backbone).__name__, backbone.head_dim, backbone.head_dim, DOC)
        return None
    current = keras_hub_query_scalar(todo[0])
    for attention in todo:
        s = keras_hub_query_scalar(attention)
        base = type(attention)
        attention.__class__ = _scaled_class(base)
        attention._promptlit_query_factor = math.sqrt(s / target)
        attention.query_pre_attn_scalar = target
        attention.keras_hub_query_scalar = s
        attention._promptlit_query_origin = origin
    # Functions keras / keras-hub compiled before the correction traced the old layers.
    for attr in ("generate_function", "predict_function", "test_function", "train_function"):
        if getattr(causal_lm, attr, None) is not None:
            setattr(causal_lm, attr, None)
    result = QueryScaling(target, current, len(todo), origin)
    name = getattr(causal_lm, "name", None) or type(causal_lm).__name__
    logger.warning("%s: corrected query scaling: %s in %d attention layers (%s; keras-hub ignores "
                   "query_head_dim_normalize=False, see %s)", name, result.describe(),
                   len(todo), origin, DOC)
    return result
