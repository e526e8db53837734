"""Hugging Face checkpoints saved by transformers 5 load (why pyproject.toml needs keras-hub >= 0.30).

transformers 5 writes a Llama / Mistral / Qwen config's RoPE base as ``rope_parameters.rope_theta``
and no top-level ``rope_theta``; keras-hub 0.29 read only the top-level key, so loading such a
checkpoint failed with ``KeyError: 'rope_theta'``. These tiny random-weight checkpoints (a byte-level
BPE tokenizer, two layers) are written the way transformers 5 writes them and loaded through
promptlit, offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from promptlit.models.keras_lm import KerasCausalLM

ROPE_THETA = 123_456.0  # not any family's default, so the test sees where it came from
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>"]
MERGES = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"]]


def _byte_level_alphabet() -> list[str]:
    """GPT-2's byte -> printable character map (byte-level BPE's base vocabulary), in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_transformers5_checkpoint(path: Path, model_type: str, *, hidden: int = 32,
                                   heads: int = 4, kv_heads: int = 2, layers: int = 2,
                                   seed: int = 0) -> Path:
    """A random-weight "llama" or "qwen2" checkpoint with transformers 5's config layout."""
    from safetensors.numpy import save_file

    vocab = {c: i for i, c in enumerate(_byte_level_alphabet())}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    added = [{"id": len(vocab) + i, "content": s, "special": True} for i, s in enumerate(SPECIALS)]
    vocab_size = len(vocab) + len(added)
    head_dim, inter = hidden // heads, 48
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    t = {"model.embed_tokens.weight": w(vocab_size, hidden, scale=1.0),
         "model.norm.weight": 1 + w(hidden, scale=0.1)}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + w(hidden, scale=0.1)
        t[p + "post_attention_layernorm.weight"] = 1 + w(hidden, scale=0.1)
        for name, rows in (("q", heads), ("k", kv_heads), ("v", kv_heads)):
            t[p + f"self_attn.{name}_proj.weight"] = w(rows * head_dim, hidden)
            if model_type == "qwen2":
                t[p + f"self_attn.{name}_proj.bias"] = w(rows * head_dim, scale=0.05)
        t[p + "self_attn.o_proj.weight"] = w(hidden, heads * head_dim)
        t[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        t[p + "mlp.up_proj.weight"] = w(inter, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, inter)
    config: dict[str, Any] = {
        "model_type": model_type, "architectures": [
            {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[model_type]],
        "vocab_size": vocab_size, "hidden_size": hidden, "intermediate_size": inter,
        "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "max_position_embeddings": 512, "tie_word_embeddings": True,
        "bos_token_id": added[0]["id"], "eos_token_id": added[1]["id"],
        "transformers_version": "5.0.0",
        # transformers 5: the RoPE base lives here, and there is no top-level "rope_theta".
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
    }
    if model_type == "qwen2":
        config.update(use_sliding_window=False, sliding_window=None, max_window_layers=layers)
    path.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(config))
    tokenizer = {"version": "1.0", "added_tokens": added,
                 "model": {"type": "BPE", "vocab": vocab, "merges": MERGES}}
    (path / "tokenizer.json").write_text(json.dumps(tokenizer))
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": SPECIALS[0], "eos_token": SPECIALS[1]}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_transformers5_checkpoint_loads_with_its_rope_base(tmp_path, model_type):
    ckpt = write_transformers5_checkpoint(tmp_path / model_type, model_type)
    lm = KerasCausalLM.from_preset(str(ckpt), max_length=32, max_new_tokens=2,
                                   chat_template="none")
    backbone = lm.causal_lm.backbone
    assert backbone.rope_max_wavelength == ROPE_THETA
    ids = np.asarray(lm.causal_lm.preprocessor.tokenizer.tokenize("the test"))
    assert ids.ndim == 1 and 0 < ids.size < 10  # "the" is one merged token
    hidden = backbone({"token_ids": ids[None], "padding_mask": np.ones((1, ids.size), bool)})
    assert hidden.shape == (1, ids.size, 32) and np.isfinite(np.asarray(hidden)).all()
