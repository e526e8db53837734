"""Text -> token ids for keras-hub tokenizers, without TF-Text's kernel-owned resources.

keras-hub's `SentencePieceTokenizer.tokenize` runs TF-Text's ``SentencepieceTokenizeOp`` on a
resource that lives inside a cached TensorFlow eager kernel. Anything in the process that clears
TensorFlow's eager kernel cache (``keras.utils.clear_session()`` under the TensorFlow backend, a
library resetting TensorFlow, or a notebook cell that does) deletes that resource, and every later
call fails with ``NotFoundError: Resource localhost/_0_SentencepieceOp/... does not exist`` — the
loaded model can no longer read a prompt. SentencePiece tokenizers are therefore run here by the
`sentencepiece` library itself, on the tokenizer's own model proto: the same C++ code TF-Text
wraps (same ids), with no TensorFlow state, and a few times faster per call. Other tokenizers
(byte-pair, word-piece) keep their keras-hub ``tokenize``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TextToIds = Callable[[str], np.ndarray]
"""Maps one text to its token ids, `<int64>[num_tokens]` (no start/end tokens added)."""


def text_to_ids(tokenizer: Any) -> TextToIds:
    """The function that tokenizes one text the way ``tokenizer.tokenize`` does.

    Args:
        tokenizer: a keras-hub tokenizer (``causal_lm.preprocessor.tokenizer``).

    Returns:
        For a SentencePiece tokenizer with its proto loaded, a `sentencepiece` processor's
        ``encode`` (add_bos / add_eos as the tokenizer sets them); otherwise a wrapper of
        ``tokenizer.tokenize``.
    """
    proto = getattr(tokenizer, "proto", None)
    if isinstance(proto, bytes) and _is_sentencepiece(tokenizer):
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor()
        processor.LoadFromSerializedProto(proto)
        add_bos = bool(getattr(tokenizer, "add_bos", False))
        add_eos = bool(getattr(tokenizer, "add_eos", False))

        def encode(text: str) -> np.ndarray:
            ids = processor.encode(text, out_type=int, add_bos=add_bos, add_eos=add_eos)
            return np.asarray(ids, dtype=np.int64)

        return encode

    def keras_hub_tokenize(text: str) -> np.ndarray:
        return np.asarray(tokenizer.tokenize(text)).astype(np.int64).reshape(-1)

    return keras_hub_tokenize


def _is_sentencepiece(tokenizer: Any) -> bool:
    return any(c.__name__ == "SentencePieceTokenizer" for c in type(tokenizer).__mro__)
