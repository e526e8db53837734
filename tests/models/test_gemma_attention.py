"""Gemma 2 / Gemma 3 query scaling (`promptlit.models.gemma_attention`) on tiny 27B-layout models.

keras-hub hard-codes ``query_head_dim_normalize=True`` in its Gemma / Gemma 3 decoder blocks, so
models whose ``query_pre_attn_scalar`` differs from ``head_dim`` (the 27B layouts) scale queries by
``1/sqrt(head_dim)``. These tests build tiny models of that layout (hidden 32 or 36, 2 layers,
head_dim 8, query_pre_attn_scalar 18) with random weights, both as Hugging Face checkpoints loaded
through promptlit and as keras-hub presets, and check one attention layer's output on a few tokens
against softmax(q.k / sqrt(query_pre_attn_scalar), soft-capped, causal + sliding window) . v
computed by hand in float64 numpy (RoPE and Gemma 3's query/key RMSNorm included). A 2B-layout
model (query_pre_attn_scalar == head_dim) must be left bit-identical.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from promptlit.models import gemma_attention as ga  # noqa: E402
from promptlit.models.presets import DEFAULT_PRESET, load_causal_lm  # noqa: E402

SPM = Path(DEFAULT_PRESET) / "assets" / "tokenizer" / "vocabulary.spm"  # Gemma ids, vocab 2048
VOCAB = 2048
QPAS = 18  # query_pre_attn_scalar of every tiny 27B-layout model here
HEAD_DIM = 8
T = 7  # tokens fed to one attention layer
WINDOW = 3  # sliding window: shorter than T, so that it matters
ATTN_CAP = 2.0  # Gemma 2 attention soft-cap: small, so that it matters
LOG = "promptlit.models.gemma_attention"

needs_hf = pytest.mark.skipif(not SPM.is_file(), reason="presets/tiny_lm is not built")


# ----------------------------------------------------------------------------- tiny checkpoints


def _w(rng: np.random.Generator, *shape: int, scale: float = 0.3) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def write_hf_gemma(path: Path, family: str, *, qpas: float | None = QPAS, hidden: int = 32,
                   heads: int = 4, kv_heads: int = 2, head_dim: int = HEAD_DIM, layers: int = 2,
                   seed: int = 0) -> Path:
    """A random-weight Hugging Face Gemma 2 ("gemma2") or Gemma 3 text ("gemma3_text") checkpoint."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    inter = 24
    t: dict[str, np.ndarray] = {"model.embed_tokens.weight": _w(rng, VOCAB, hidden, scale=1.0),
                                "model.norm.weight": _w(rng, hidden, scale=0.1)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            t[p + norm + ".weight"] = _w(rng, hidden, scale=0.1)
        t[p + "self_attn.q_proj.weight"] = _w(rng, heads * head_dim, hidden)
        t[p + "self_attn.k_proj.weight"] = _w(rng, kv_heads * head_dim, hidden)
        t[p + "self_attn.v_proj.weight"] = _w(rng, kv_heads * head_dim, hidden)
        t[p + "self_attn.o_proj.weight"] = _w(rng, hidden, heads * head_dim)
        t[p + "mlp.gate_proj.weight"] = _w(rng, inter, hidden)
        t[p + "mlp.up_proj.weight"] = _w(rng, inter, hidden)
        t[p + "mlp.down_proj.weight"] = _w(rng, hidden, inter)
        if family == "gemma3_text":
            t[p + "self_attn.q_norm.weight"] = _w(rng, head_dim, scale=0.1)
            t[p + "self_attn.k_norm.weight"] = _w(rng, head_dim, scale=0.1)
    config: dict[str, Any] = {
        "model_type": family, "vocab_size": VOCAB, "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim, "rms_norm_eps": 1e-6,
        "sliding_window": WINDOW, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
    }
    if qpas is not None:
        config["query_pre_attn_scalar"] = qpas
    if family == "gemma2":
        config.update(attn_logit_softcapping=ATTN_CAP, final_logit_softcapping=30.0,
                      architectures=["Gemma2ForCausalLM"])
    else:
        config.update(attn_logit_softcapping=None, final_logit_softcapping=None,
                      rope_theta=1_000_000.0, rope_local_base_freq=10_000.0, rope_scaling=None,
                      layer_types=["sliding_attention"] * layers,
                      architectures=["Gemma3ForCausalLM"])
    path.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(config))
    shutil.copy(SPM, path / "tokenizer.model")
    return path


def keras_27b_layout(family: str, *, flag: bool = False, seed: int = 0) -> Any:
    """A tiny keras-hub CausalLM of a 27B layout as a keras-hub preset describes it: hidden 36,
    2 query heads -> hidden_dim // num_query_heads = 18 != head_dim 8, and
    query_head_dim_normalize=`flag` (the 27B presets' False by default)."""
    keras.utils.set_random_seed(seed)
    common = dict(vocabulary_size=VOCAB, num_layers=2, num_query_heads=2, num_key_value_heads=1,
                  hidden_dim=36, intermediate_dim=24, head_dim=HEAD_DIM,
                  query_head_dim_normalize=flag, use_post_ffw_norm=True,
                  use_post_attention_norm=True, use_sliding_window_attention=True,
                  sliding_window_size=WINDOW)
    tokenizer_cls = (keras_hub.models.GemmaTokenizer if family == "gemma2"
                     else keras_hub.models.Gemma3Tokenizer)
    kw = {"has_vision_tokens": False} if family == "gemma3" else {}
    tokenizer = tokenizer_cls(proto=str(SPM), **kw) if SPM.is_file() else None
    if family == "gemma2":
        bb = keras_hub.models.GemmaBackbone(**common, attention_logit_soft_cap=ATTN_CAP,
                                            final_logit_soft_cap=30.0)
        pre = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer) if tokenizer else None
        lm = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=pre)
    else:
        bb = keras_hub.models.Gemma3Backbone(**common, vision_encoder=None, image_size=16)
        pre = (keras_hub.models.Gemma3CausalLMPreprocessor(tokenizer, image_converter=None)
               if tokenizer else None)
        lm = keras_hub.models.Gemma3CausalLM(backbone=bb, preprocessor=pre)
    rng = np.random.default_rng(seed + 1)
    for v in lm.weights:  # zero-initialised norm scales too
        v.assign(np.asarray(v.value) + 0.1 * rng.standard_normal(v.shape).astype(v.dtype))
    return lm


# ----------------------------------------------------------------------------- hand-computed


def _rope(x: np.ndarray, wavelength: float, scaling: float) -> np.ndarray:
    """Rotate-half RoPE of x<float64>[T, heads, d] at positions 0..T-1."""
    d = x.shape[-1]
    inv = wavelength ** (-np.arange(0, d, 2) / d) / scaling
    ang = np.arange(x.shape[0])[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def _rms(x: np.ndarray, scale: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps) * (1.0 + scale)


def hand_attention(attn: Any, x: np.ndarray, scalar: float) -> np.ndarray:
    """softmax(cap(q.k / sqrt(scalar)) + causal/sliding mask) . v, then the output projection,
    in float64 from the layer's weights and configuration (its scaling code is not used)."""
    f64 = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    x = f64(x)[0]  # [T, D]
    q = np.einsum("td,ndh->tnh", x, f64(attn.query_dense.kernel))
    k = np.einsum("td,kdh->tkh", x, f64(attn.key_dense.kernel))
    v = np.einsum("td,kdh->tkh", x, f64(attn.value_dense.kernel))
    if getattr(attn, "use_query_key_norm", False):  # Gemma 3
        q = _rms(q, f64(attn.query_norm.scale), attn.query_norm.epsilon)
        k = _rms(k, f64(attn.key_norm.scale), attn.key_norm.epsilon)
    wavelength = getattr(attn, "rope_wavelength", 10_000.0)
    scaling = getattr(attn, "rope_scaling_factor", 1.0)
    q, k = _rope(q, wavelength, scaling), _rope(k, wavelength, scaling)
    groups = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, groups, axis=1), np.repeat(v, groups, axis=1)
    logits = np.einsum("tnh,snh->nts", q, k) / np.sqrt(scalar)
    if attn.logit_soft_cap is not None:
        logits = attn.logit_soft_cap * np.tanh(logits / attn.logit_soft_cap)
    i, j = np.arange(len(x))[:, None], np.arange(len(x))[None, :]
    allowed = j <= i
    if attn.use_sliding_window_attention:
        allowed &= (i - j) < attn.sliding_window_size
    logits = np.where(allowed[None], logits, -np.inf)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = np.einsum("nts,snh->tnh", p, v)
    return np.einsum("tnh,nhd->td", out, f64(attn.output_dense.kernel))[None]


def layer_output(attn: Any, x: np.ndarray) -> np.ndarray:
    mask = np.tril(np.ones((1, x.shape[1], x.shape[1]), bool))
    return np.asarray(attn(x, attention_mask=mask), dtype=np.float64)


def _x(hidden: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, T, hidden)).astype(np.float32)


def _attentions(lm: Any) -> list[Any]:
    return [b.attention for b in lm.backbone.transformer_layers]


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err < 2e-6, f"relative error {err:.2e}"


def _far(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def _token_ids(lm: Any) -> np.ndarray:
    ids = lm.preprocessor.tokenizer("the cat sat on the mat and the dog sat too")
    return np.concatenate([[1], np.asarray(ids)])[None].astype("int32")


def _log_probs(lm: Any, ids: np.ndarray) -> np.ndarray:
    logits = np.asarray(lm({"token_ids": ids, "padding_mask": np.ones_like(ids, bool)}),
                        dtype=np.float64)
    logits -= logits.max(-1, keepdims=True)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return np.take_along_axis(lp[0, :-1], ids[0, 1:, None], -1)[:, 0]


# ----------------------------------------------------------------------------- the upstream bug


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_keras_hub_scales_27b_layouts_by_head_dim(family):
    """The claim, on the installed keras-hub: the backbone's query_head_dim_normalize=False does
    not reach the attention layers, which compute 1/sqrt(head_dim)."""
    lm = keras_27b_layout(family)
    assert lm.backbone.query_head_dim_normalize is False
    for attn in _attentions(lm):
        assert attn.query_head_dim_normalize is True
        assert ga.keras_hub_query_scalar(attn) == HEAD_DIM
        x = _x(36)
        _assert_close(layer_output(attn, x), hand_attention(attn, x, HEAD_DIM))
        assert _far(layer_output(attn, x), hand_attention(attn, x, QPAS)) > 1e-3


# ----------------------------------------------------------------------------- Hugging Face


@needs_hf
@pytest.mark.parametrize("family", ["gemma2", "gemma3_text"])
def test_hf_checkpoint_attention_matches_hand_computation(tmp_path, family, caplog):
    """hidden 32, 4 heads x 8, query_pre_attn_scalar 18: keras-hub's own flag could not even
    express 18 (hidden_dim // num_query_heads == 8), so the value comes from config.json."""
    ckpt = write_hf_gemma(tmp_path / family, family)
    unfixed = keras_hub.models.CausalLM.from_preset(str(ckpt), dtype="float32")
    with caplog.at_level(logging.WARNING, logger=LOG):
        fixed = load_causal_lm(str(ckpt), dtype="float32")
    records = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert len(records) == 1
    assert "corrected query scaling: 1/sqrt(18) instead of keras-hub's 1/sqrt(8)" in records[0]
    assert ga.query_scaling(fixed) == ga.QueryScaling(
        18.0, 8.0, 2, f"query_pre_attn_scalar in the config.json of {ckpt}")
    x = _x(32)
    for attn, raw in zip(_attentions(fixed), _attentions(unfixed), strict=True):
        expected = hand_attention(attn, x, QPAS)
        _assert_close(layer_output(attn, x), expected)
        assert _far(layer_output(raw, x), expected) > 1e-3  # the unfixed model is not
    ids = _token_ids(fixed)
    diff = np.abs(_log_probs(fixed, ids) - _log_probs(unfixed, ids)).max()
    assert diff > 1e-3, "the correction must change the log-probs"


@needs_hf
@pytest.mark.parametrize("family", ["gemma2", "gemma3_text"])
def test_hf_checkpoint_with_head_dim_scalar_is_left_bit_identical(tmp_path, family, caplog):
    """2B layout: query_pre_attn_scalar == head_dim. Nothing is touched, nothing logged."""
    ckpt = write_hf_gemma(tmp_path / family, family, qpas=HEAD_DIM)
    unfixed = keras_hub.models.CausalLM.from_preset(str(ckpt), dtype="float32")
    with caplog.at_level(logging.DEBUG, logger=LOG):
        lm = load_causal_lm(str(ckpt), dtype="float32")
    assert not [r for r in caplog.records if r.name == LOG]
    assert ga.query_scaling(lm) is None
    assert all(type(a) is type(b) for a, b in zip(_attentions(lm), _attentions(unfixed),
                                                  strict=True))
    assert not any(isinstance(a, ga._QueryScaleMixin) for a in _attentions(lm))
    ids = _token_ids(lm)
    np.testing.assert_array_equal(_log_probs(lm, ids), _log_probs(unfixed, ids))
    x = _x(32)
    for attn in _attentions(lm):
        _assert_close(layer_output(attn, x), hand_attention(attn, x, HEAD_DIM))


@needs_hf
def test_keras_causal_lm_from_hf_checkpoint_logs_once_and_keys_the_cache(tmp_path, caplog):
    from promptlit.models.keras_lm import KerasCausalLM

    ckpt = write_hf_gemma(tmp_path / "g2", "gemma2")
    with caplog.at_level(logging.INFO, logger=LOG):
        lm = KerasCausalLM.from_preset(str(ckpt), max_new_tokens=2)
    assert len([r for r in caplog.records if r.name == LOG]) == 1  # presets, not again in __init__
    assert lm.query_scaling is not None and lm.query_scaling.query_pre_attn_scalar == QPAS
    assert lm.cache_config()["query_pre_attn_scalar"] == QPAS
    # the salience forward pass runs the corrected layers: its log-probs are the model's own
    ids = _token_ids(lm.causal_lm)
    fwd = lm.forward
    emb = fwd.embed(fwd.params, ids)
    logits = np.asarray(fwd.logits(fwd.params, emb, np.ones_like(ids, bool)), np.float64)
    direct = np.asarray(lm.causal_lm({"token_ids": ids, "padding_mask": np.ones_like(ids, bool)}))
    np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- keras-hub presets


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_keras_preset_27b_layout_is_corrected_to_hidden_over_heads(family, caplog):
    """A keras-hub preset (as keras-hub's Kaggle 27B presets are: verbatim query kernels and
    query_head_dim_normalize=False) gets 1/sqrt(hidden_dim // num_query_heads) = 1/sqrt(18)."""
    lm = keras_27b_layout(family)
    raw = keras_27b_layout(family)  # same seed, same weights, left alone
    ids = np.array([[1, 17, 300, 5, 17, 300, 42, 9]], "int32")
    before = _log_probs(lm, ids)
    with caplog.at_level(logging.WARNING, logger=LOG):
        result = ga.correct_query_scaling(lm)
        again = ga.correct_query_scaling(lm)
    assert result == again == ga.QueryScaling(
        18.0, 8.0, 2, "query_head_dim_normalize=False (hidden_dim // num_query_heads)")
    assert len([r for r in caplog.records if r.name == LOG]) == 1
    x = _x(36)
    for attn, unfixed in zip(_attentions(lm), _attentions(raw), strict=True):
        expected = hand_attention(attn, x, QPAS)
        _assert_close(layer_output(attn, x), expected)
        assert _far(layer_output(unfixed, x), expected) > 1e-3
    assert np.abs(_log_probs(lm, ids) - before).max() > 1e-3
    np.testing.assert_array_equal(_log_probs(raw, ids), before)


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_keras_preset_with_head_dim_normalize_is_untouched(family):
    lm = keras_27b_layout(family, flag=True)
    ids = np.array([[1, 17, 300, 5, 17, 300, 42, 9]], "int32")
    before = _log_probs(lm, ids)
    assert ga.correct_query_scaling(lm) is None
    assert not any(isinstance(a, ga._QueryScaleMixin) for a in _attentions(lm))
    np.testing.assert_array_equal(_log_probs(lm, ids), before)
    assert ga.query_scaling_key(lm) == {}


@needs_hf
def test_saved_keras_preset_is_corrected_on_load_and_saving_keeps_the_weights(tmp_path):
    lm = keras_27b_layout("gemma2")
    ga.correct_query_scaling(lm)
    lm.save_to_preset(str(tmp_path / "preset"))  # weights untouched: the same checkpoint
    loaded = load_causal_lm(str(tmp_path / "preset"), dtype="float32")
    assert ga.query_scaling(loaded).query_pre_attn_scalar == QPAS
    for a, b in zip(lm.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = _x(36)
    for attn in _attentions(loaded):
        _assert_close(layer_output(attn, x), hand_attention(attn, x, QPAS))


def test_compiled_functions_are_reset():
    lm = keras_27b_layout("gemma2")
    lm.generate_function = lm.predict_function = object()
    ga.correct_query_scaling(lm)
    assert lm.generate_function is None and lm.predict_function is None


def test_other_models_are_ignored():
    assert ga.correct_query_scaling(object()) is None
    assert ga.query_scaling(SimpleNamespace(backbone=None)) is None


# ----------------------------------------------------------------------------- where s comes from


def _fake_backbone(cls: str, hidden: int, heads: int, head_dim: int, flag: bool) -> Any:
    obj = type(cls, (), {})()
    obj.hidden_dim, obj.num_query_heads, obj.head_dim = hidden, heads, head_dim
    obj.query_head_dim_normalize = flag
    return obj


@pytest.mark.parametrize("cls,hidden,heads,head_dim,flag,expected", [
    ("GemmaBackbone", 4608, 32, 128, False, 144.0),  # Gemma 2 27B
    ("Gemma3Backbone", 5376, 32, 128, False, 168.0),  # Gemma 3 27B
    ("GemmaBackbone", 3584, 16, 256, False, 256.0),  # Gemma 2 9B: a False flag is a slip
    ("Gemma3Backbone", 3840, 16, 256, False, 256.0),  # Gemma 3 12B
    ("GemmaBackbone", 2304, 8, 256, True, 256.0),  # Gemma 2 2B
    ("GemmaBackbone", 36, 2, 8, False, 18.0),  # a custom layout: keras-hub's documented meaning
    ("GemmaBackbone", 4608, 32, 128, True, 128.0),  # an explicit True is respected
])
def test_keras_config_scalar(cls, hidden, heads, head_dim, flag, expected):
    value, why = ga.keras_config_query_pre_attn_scalar(
        _fake_backbone(cls, hidden, heads, head_dim, flag))
    assert value == expected and why


@pytest.mark.parametrize("config,expected", [
    ({"model_type": "gemma2", "query_pre_attn_scalar": 144, "head_dim": 128}, 144.0),
    ({"model_type": "gemma3_text", "query_pre_attn_scalar": 168}, 168.0),
    ({"model_type": "gemma3", "text_config": {"query_pre_attn_scalar": 168}}, 168.0),
    ({"model_type": "gemma3", "text_config": {}}, 256.0),  # transformers' default
    ({"model_type": "gemma2"}, 256.0),
    ({"model_type": "gemma", "head_dim": 256}, None),
    ({"model_type": "llama"}, None),
    ({"registered_name": "keras_hub>GemmaBackbone"}, None),
])
def test_hf_config_scalar(config, expected):
    assert ga.hf_query_pre_attn_scalar(config) == expected


def test_hf_config_scalar_rejects_nonsense():
    with pytest.raises(ValueError, match="positive"):
        ga.hf_query_pre_attn_scalar({"model_type": "gemma2", "query_pre_attn_scalar": 0})


def test_source_config_reads_hf_handles_and_never_kaggle(tmp_path, monkeypatch):
    from keras_hub.src.utils import preset_utils

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma2",
                                                      "query_pre_attn_scalar": 144}))
    asked = []

    def fake_get_file(preset, path):
        asked.append((preset, path))
        return str(tmp_path / path)

    monkeypatch.setattr(preset_utils, "get_file", fake_get_file)
    assert ga.source_config("hf://google/gemma-2-27b")["query_pre_attn_scalar"] == 144
    assert ga.source_config("kaggle://keras/gemma2/keras/gemma2_27b_en/3") is None
    assert asked == [("hf://google/gemma-2-27b", "config.json")]
    assert ga.source_config(tmp_path)["model_type"] == "gemma2"
    assert ga.source_config(tmp_path / "nowhere") is None
