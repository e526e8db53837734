"""A tiny random-weight Gemma whose vocabulary has Gemma's chat control tokens, built once.

Shared by the chat-template tests of tests/models, tests/salience and tests/ui (import it after
putting this folder on ``sys.path``): `tiny_chat_lm` is cached per process, so the model is built
and its functions compiled once per test session.
"""

from __future__ import annotations

import io
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

CORPUS = [
    "What is the capital of France? Paris is the capital.",
    "Be brief. Answer in one word.\nHello there, how are you?",
    "user model system turn answer question",
    "The cat sat on the mat. Why? Because it was tired.",
] * 20
CONTROL = ["<start_of_turn>", "<end_of_turn>"]
HANDLE = "test://tiny-gemma-it"
"""An instruct-looking handle: chat_template="auto" picks the built-in Gemma template from it."""


@lru_cache(maxsize=1)
def spm_proto() -> bytes:
    """A SentencePiece model with Gemma's ids (pad 0, eos 1, bos 2, unk 3) and control tokens."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=320, hard_vocab_limit=False,
        model_type="unigram", character_coverage=1.0, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, allow_whitespace_only_pieces=True,
        user_defined_symbols=["\n", *CONTROL], pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", bos_piece="<bos>", eos_piece="<eos>", unk_piece="<unk>",
        num_threads=1, minloglevel=2)
    return model.getvalue()


@lru_cache(maxsize=1)
def causal_lm() -> Any:
    """The keras-hub `GemmaCausalLM` (random weights, seed 0, float32, 128-token sequences)."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.GemmaTokenizer(proto=spm_proto())
    pre = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer, sequence_length=128)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_query_heads=2,
        num_key_value_heads=1, hidden_dim=16, intermediate_dim=32, head_dim=8, dtype="float32")
    return keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=pre)


@lru_cache(maxsize=1)
def tiny_chat_lm() -> Any:
    """`KerasCausalLM` over `causal_lm` with ``chat_template="auto"`` and an instruct handle."""
    from promptlit.models.keras_lm import KerasCausalLM

    return KerasCausalLM(causal_lm(), handle=HANDLE, name="tiny-it", max_length=128,
                         max_new_tokens=5, batch_size=2, chat_template="auto")


def export_hf_checkpoint(directory: Path, chat_template: str | None) -> Path:
    """Writes `causal_lm` as a Hugging Face checkpoint (config.json, safetensors, tokenizer.model,
    tokenizer_config.json) with ``chat_template`` in its tokenizer config; returns the directory."""
    causal_lm().export_to_transformers(str(directory))
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["architectures"] = ["GemmaForCausalLM"]  # keras-hub's loader reads the task from it
    config_path.write_text(json.dumps(config))
    tok_path = directory / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    if chat_template is not None:
        tok["chat_template"] = chat_template
    tok_path.write_text(json.dumps(tok, indent=2))
    return directory


# Gemma's own Hugging Face template (google/gemma-2-2b-it), system role folded into the first turn
# as Gemma 3's template does.
HF_GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = "
    "messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set "
    "first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}{% for message in "
    "loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set "
    "role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix "
    "if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if "
    "add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
