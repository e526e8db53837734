"""promptlit.models.tokenizers: SentencePiece ids without TF-Text's kernel-owned resource.

A CI run failed with ``NotFoundError: Resource localhost/_0_SentencepieceOp/... does not exist``
in the middle of the suite: something in the process cleared TensorFlow's eager kernel cache, which
deletes the resource TF-Text's tokenizer keeps inside a cached kernel, and the loaded model could
no longer read a prompt. These tests pin the fix: the same ids as keras-hub, and a loaded model that
keeps working after TensorFlow's kernels are cleared.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from promptlit.models.tokenizers import text_to_ids

TEXTS = ["", "Hello there", "Hello  world\n\nnaïve café 😀 日本 x\tend  ", "\n", "   ",
         "<start_of_turn>user\nHi<end_of_turn>", "The cat sat on the mat. Why?"]


@pytest.fixture(scope="module")
def gemma_tokenizer():
    import keras_hub

    sys.path.insert(0, os.path.dirname(__file__))
    import chat_lm

    return keras_hub.models.GemmaTokenizer(proto=chat_lm.spm_proto())


@pytest.mark.parametrize("text", TEXTS)
def test_sentencepiece_ids_equal_keras_hubs(gemma_tokenizer, text: str) -> None:
    ids = text_to_ids(gemma_tokenizer)(text)
    assert ids.dtype == np.int64 and ids.ndim == 1
    expected = np.asarray(gemma_tokenizer.tokenize(text)).astype(np.int64).reshape(-1)
    np.testing.assert_array_equal(ids, expected)


def test_other_tokenizers_keep_their_own_tokenize() -> None:
    class Words:
        def tokenize(self, text: str) -> list[int]:
            return [len(w) for w in text.split()]

    np.testing.assert_array_equal(text_to_ids(Words())("a bb ccc"), [1, 2, 3])


_AFTER_CLEARING = textwrap.dedent("""
    import os
    os.environ["KERAS_BACKEND"] = "jax"
    from promptlit.models.presets import DEFAULT_PRESET, load_model
    model = load_model(DEFAULT_PRESET)
    before = model.tokenize_with_offsets("Hello there")[0].tolist()
    from tensorflow.python.eager import context
    context.context().clear_kernel_cache()  # what tf.keras.backend.clear_session() does
    after = model.tokenize_with_offsets("Hello there")[0].tolist()
    out = list(model.predict([{"prompt": "Hello there"}]))[0]
    print("OK", before == after, len(out["response_tokens"]) > 0)
""")


def test_a_loaded_model_survives_tensorflow_clearing_its_kernels() -> None:
    result = subprocess.run([sys.executable, "-c", _AFTER_CLEARING], capture_output=True,
                            text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.stdout.strip().splitlines()[-1:] == ["OK True True"], result.stderr[-3000:]
