"""`KerasTextClassifier`: a small Keras 3 text classifier / regressor on JAX, with LIT's glue specs.

The model is word-level and small enough to train in minutes on a CPU:

    text --tokenize--> <str>[num_tokens] --vocab--> <int>[num_tokens]
         --embedding table--> <float>[num_tokens, emb_dim]          ("input_embs")
         --Conv1D(conv_width, tanh), masked mean pool, Dense(tanh)--> <float>[hidden_dim]  ("cls_emb")
         --Dense--> <float>[num_labels] logits (classification) or <float>[1] (regression)

Padding never changes a prediction: padded positions are zeroed before the convolution and left
out of the mean. The tokenizer keeps each token's surface text (for display) and looks it up
lower-cased, with URLs and @mentions mapped to the `<url>` / `<user>` entries.

Gradients follow LIT's glue models: `token_grad_<text_field>` is the gradient of the
log-probability of the class named by the example's `grad_class` (default: the predicted class;
regression: of the score) with respect to `input_embs`. They are computed in one jitted JAX call
per padded batch shape: the Keras head is called statelessly with its weights as arguments, and
one VJP gives every example's `<float>[num_tokens, emb_dim]` gradient. An example that carries
`input_embs` (e.g. an Integrated Gradients interpolation) runs on those embeddings instead of the
table lookup.

Example:
    >>> clf = KerasTextClassifier.build(["good", "bad"], labels=["neg", "pos"], emb_dim=8,
    ...                                 hidden_dim=8, seed=0)
    >>> out = list(clf.predict([{"sentence": "good movie"}]))[0]
    >>> out["tokens"], out["input_embs"].shape, out["token_grad_sentence"].shape
    (['good', 'movie'], (2, 8), (2, 8))
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np

from promptlit.api import types
from promptlit.api.model import BatchedModel
from promptlit.models import local_presets

JsonDict = types.JsonDict
Task = Literal["classification", "regression"]

PAD, UNK, URL_TOKEN, USER_TOKEN = "[PAD]", "[UNK]", "<url>", "<user>"
SPECIAL_TOKENS = (PAD, UNK, URL_TOKEN, USER_TOKEN)
WEIGHTS_FILE = "model.weights.h5"
VOCAB_FILE = "vocab.txt"

# URLs, @mentions, words (with an inner apostrophe: "don't"), numbers, then any other single
# non-space character (punctuation, emoji).
_TOKEN_RE = re.compile(r"https?://\S+|@\w+|[^\W_]+(?:['’][^\W_]+)*|\d+|[^\w\s]|_+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Splits `text` into surface tokens `<str>[num_tokens]` (whitespace is dropped)."""
    return _TOKEN_RE.findall(text)


def token_key(token: str) -> str:
    """The vocabulary entry a surface token is looked up as (lower-cased; URLs, @mentions)."""
    if token.startswith(("http://", "https://")):
        return URL_TOKEN
    if token.startswith("@") and len(token) > 1:
        return USER_TOKEN
    return token.lower().replace("’", "'")


def build_vocab(texts: Iterable[str], *, max_size: int = 8000, min_count: int = 2) -> list[str]:
    """The special tokens, then the most frequent token keys seen `min_count`+ times.

    Ties are broken alphabetically so the vocabulary is deterministic.
    """
    counts = collections.Counter(token_key(t) for text in texts for t in tokenize(text))
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
                   key=lambda w: (-counts[w], w))
    return list(SPECIAL_TOKENS) + words[: max(0, max_size - len(SPECIAL_TOKENS))]


def _bucket(n: int, lo: int) -> int:
    """The next power of two >= max(n, lo): few distinct shapes, few compilations."""
    b = lo
    while b < n:
        b *= 2
    return b


class KerasTextClassifier(BatchedModel):
    """A word-level Keras text classifier or regressor with LIT glue-model specs and gradients.

    Build an untrained model with `build(...)` (then `fit`), or load one with `from_preset`.

    Args:
      config: the architecture and field names (what `build` writes; saved with the preset):
        task ("classification" | "regression"), labels (class names; classification only),
        text_field, label_field, emb_dim, hidden_dim, conv_width, dropout, max_length, seed.
      vocab: `<str>[vocab_size]`, index 0 = "[PAD]", 1 = "[UNK]".
      name: shown in descriptions and errors.
      metadata: free-form facts saved with the preset (data, held-out accuracy).
      batch_size: examples per jitted call.
    """

    def __init__(self, config: Mapping[str, Any], vocab: Sequence[str], *,
                 name: str = "text_classifier", metadata: JsonDict | None = None,
                 batch_size: int = 32) -> None:
        self.config = _check_config(config)
        self.vocab = list(vocab)
        if self.vocab[:2] != [PAD, UNK]:
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}; got {self.vocab[:2]}.")
        self._index = {w: i for i, w in enumerate(self.vocab)}
        self.name = name
        self.metadata = dict(metadata or {})
        self.batch_size = int(batch_size)
        self.keras_model, self.head, self.embedding = _build_keras(self.config, len(self.vocab))
        self._jitted: Any = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, vocab: Sequence[str], *, task: Task = "classification",
              labels: Sequence[str] | None = None, text_field: str = "sentence",
              label_field: str = "label", emb_dim: int = 32, hidden_dim: int = 64,
              conv_width: int = 3, dropout: float = 0.2, max_length: int = 64, seed: int = 0,
              name: str = "text_classifier", metadata: JsonDict | None = None
              ) -> KerasTextClassifier:
        """An untrained model. `vocab` is a word list (special tokens are added if missing)."""
        words = [w for w in vocab if w not in SPECIAL_TOKENS]
        full_vocab = list(SPECIAL_TOKENS) + list(dict.fromkeys(words))
        config = {"task": task, "labels": list(labels) if labels is not None else None,
                  "text_field": text_field, "label_field": label_field, "emb_dim": emb_dim,
                  "hidden_dim": hidden_dim, "conv_width": conv_width, "dropout": dropout,
                  "max_length": max_length, "seed": seed}
        return cls(config, full_vocab, name=name, metadata=metadata)

    @property
    def task(self) -> Task:
        """"classification" or "regression"."""
        return self.config["task"]

    @property
    def labels(self) -> list[str]:
        """The class names (empty for regression)."""
        return list(self.config["labels"] or [])

    @property
    def text_field(self) -> str:
        """The input field holding the text."""
        return self.config["text_field"]

    @property
    def label_field(self) -> str:
        """The input field holding the gold label / target."""
        return self.config["label_field"]

    # ------------------------------------------------------------------ specs

    def description(self) -> str:
        """Task, labels and size."""
        what = f"classifier -> {self.labels}" if self.task == "classification" else "regressor"
        return (f"{self.name}: word-level Keras text {what} (vocab {len(self.vocab)}, "
                f"emb_dim {self.config['emb_dim']})")

    def max_minibatch_size(self) -> int:
        """Examples per jitted call."""
        return self.batch_size

    def input_spec(self) -> types.Spec:
        """LIT glue inputs: the text, the optional gold label, `input_embs` and `grad_class`."""
        label: types.LitType
        if self.task == "classification":
            label = types.CategoryLabel(vocab=self.labels, required=False)
        else:
            label = types.Scalar(required=False)
        return {
            self.text_field: types.TextSegment(),
            self.label_field: label,
            "input_embs": types.TokenEmbeddings(align="tokens", required=False),
            "grad_class": types.CategoryLabel(vocab=self.labels or None, required=False),
        }

    def output_spec(self) -> types.Spec:
        """LIT glue outputs: probas or score, tokens, cls_emb, input_embs and token gradients."""
        spec: types.Spec = {}
        if self.task == "classification":
            spec["probas"] = types.MulticlassPreds(vocab=self.labels, parent=self.label_field)
        else:
            spec["score"] = types.RegressionScore(parent=self.label_field)
        spec["tokens"] = types.Tokens(parent=self.text_field)
        spec["cls_emb"] = types.Embeddings()
        spec["input_embs"] = types.TokenEmbeddings(align="tokens")
        spec[f"token_grad_{self.text_field}"] = types.TokenGradients(
            align="tokens", grad_for="input_embs", grad_target_field_key="grad_class")
        return spec

    def get_embedding_table(self) -> tuple[list[str], np.ndarray]:
        """(vocab, `<float>[vocab_size, emb_dim]`) for HotFlip-style generators."""
        return list(self.vocab), np.asarray(self.embedding.embeddings.value)

    def cache_config(self) -> JsonDict:
        """What identifies this model's outputs: its config and a digest of its weights."""
        import hashlib

        h = hashlib.sha256()
        for v in self.keras_model.weights:
            h.update(np.asarray(v.value).tobytes())
        return {"config": self.config, "vocab_size": len(self.vocab), "weights": h.hexdigest()}

    # ------------------------------------------------------------------ tokenization

    def tokenize(self, text: str) -> list[str]:
        """The surface tokens the model reads, truncated to `max_length`."""
        return tokenize(text)[: self.config["max_length"]]

    def token_ids(self, tokens: Sequence[str]) -> np.ndarray:
        """`<int32>[num_tokens]` vocabulary ids (unknown words -> [UNK])."""
        unk = self._index[UNK]
        return np.asarray([self._index.get(token_key(t), unk) for t in tokens], dtype=np.int32)

    def encode(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """`<int32>[num_texts, length]` padded ids (default length: `max_length`)."""
        length = length or self.config["max_length"]
        out = np.zeros((len(texts), length), dtype=np.int32)
        for i, text in enumerate(texts):
            ids = self.token_ids(self.tokenize(text))[:length]
            out[i, : len(ids)] = ids
        return out

    # ------------------------------------------------------------------ training

    def fit(self, texts: Sequence[str], targets: Sequence[Any], *, epochs: int = 5,
            batch_size: int = 64, learning_rate: float = 2e-3,
            validation: tuple[Sequence[str], Sequence[Any]] | None = None,
            verbose: int | str = 2) -> Any:
        """Trains the Keras model (Adam; cross-entropy or mean squared error); returns History.

        `targets` are label strings (classification) or numbers (regression).
        """
        import keras

        keras.utils.set_random_seed(self.config["seed"])
        x = self.encode(texts)
        y = self._targets(targets)
        if self.task == "classification":
            loss: Any = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            metrics = ["accuracy"]
        else:
            loss, metrics = "mse", ["mae"]
        self.keras_model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                                 metrics=metrics)
        val = None
        if validation is not None:
            val = (self.encode(validation[0]), self._targets(validation[1]))
        history = self.keras_model.fit(x, y, epochs=epochs, batch_size=batch_size,
                                       validation_data=val, shuffle=True, verbose=verbose)
        self._jitted = None
        return history

    def _targets(self, targets: Sequence[Any]) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(targets, dtype=np.float32).reshape(-1, 1)
        index = {label: i for i, label in enumerate(self.labels)}
        bad = [t for t in targets if t not in index]
        if bad:
            raise ValueError(f"labels {sorted(set(map(str, bad)))[:5]} are not in the model's "
                             f"labels {self.labels}.")
        return np.asarray([index[t] for t in targets], dtype=np.int32)

    # ------------------------------------------------------------------ prediction

    def _compiled(self) -> Any:
        """The jitted forward + VJP, built once and reused (jax caches one trace per shape)."""
        if self._jitted is not None:
            return self._jitted
        import jax
        import jax.numpy as jnp

        head = self.head
        classification = self.task == "classification"

        def forward(trainable: Any, non_trainable: Any, embs: Any, mask: Any, grad_idx: Any
                    ) -> tuple[Any, Any, Any]:
            def f(e: Any) -> tuple[Any, Any]:
                (out, cls_emb), _ = head.stateless_call(trainable, non_trainable, [e, mask],
                                                        training=False)
                if classification:
                    return jax.nn.log_softmax(out, axis=-1), (out, cls_emb)
                return out, (out, cls_emb)

            target, vjp_fn, (out, cls_emb) = jax.vjp(f, embs, has_aux=True)
            if classification:
                idx = jnp.where(grad_idx < 0, jnp.argmax(out, axis=-1), grad_idx)
                cotangent = jax.nn.one_hot(idx, out.shape[-1], dtype=target.dtype)
            else:
                cotangent = jnp.ones_like(target)
            (grads,) = vjp_fn(cotangent)
            return out, cls_emb, grads

        self._jitted = jax.jit(forward)
        return self._jitted

    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """Glue-model outputs per example (see `output_spec`); arrays are numpy, in the model's
        float dtype (float32 unless Keras' floatx says otherwise).

        Per example: `probas` `<float>[num_labels]` (or `score` float), `tokens`
        `<str>[num_tokens]`, `cls_emb` `<float>[hidden_dim]`, `input_embs`
        `<float>[num_tokens, emb_dim]` and `token_grad_<text_field>` `<float>[num_tokens, emb_dim]`.
        """
        if not inputs:
            return []
        table = np.asarray(self.embedding.embeddings.value)
        emb_dim = table.shape[1]
        tokens, embs_list, grad_idx = [], [], []
        label_index = {label: i for i, label in enumerate(self.labels)}
        for i, ex in enumerate(inputs):
            text = ex.get(self.text_field) if isinstance(ex, Mapping) else None
            if not isinstance(text, str):
                raise ValueError(f"{self.name}: example {i} needs a string field "
                                 f"{self.text_field!r}, got {type(text).__name__}.")
            toks = self.tokenize(text)
            tokens.append(toks)
            given = ex.get("input_embs")
            if given is not None:
                e = np.asarray(given, dtype=table.dtype)
                if e.shape != (len(toks), emb_dim):
                    raise ValueError(
                        f"{self.name}: example {i}, field 'input_embs' has shape {e.shape} but "
                        f"its text has {len(toks)} tokens of dimension {emb_dim}; pass "
                        f"<float>[{len(toks)}, {emb_dim}] (e.g. this model's own 'input_embs' "
                        "output, scaled) or drop the field.")
                embs_list.append(e)
            else:
                embs_list.append(table[self.token_ids(toks)])
            gc = ex.get("grad_class")
            if gc is None or self.task == "regression":
                grad_idx.append(-1)
            elif gc in label_index:
                grad_idx.append(label_index[gc])
            else:
                raise ValueError(f"{self.name}: example {i}, field 'grad_class': {gc!r} is not "
                                 f"one of the labels {self.labels}; leave it out to explain the "
                                 "predicted class.")
        n = len(inputs)
        batch = _bucket(n, 1)
        length = _bucket(max(len(t) for t in tokens), 8)
        embs = np.zeros((batch, length, emb_dim), dtype=table.dtype)
        mask = np.zeros((batch, length), dtype=table.dtype)
        for i, e in enumerate(embs_list):
            embs[i, : len(e)] = e
            mask[i, : len(e)] = 1
        idx = np.full((batch,), -1, dtype=np.int32)
        idx[:n] = grad_idx
        trainable = [v.value for v in self.head.trainable_variables]
        non_trainable = [v.value for v in self.head.non_trainable_variables]
        out, cls_emb, grads = self._compiled()(trainable, non_trainable, embs, mask, idx)
        out, cls_emb, grads = np.asarray(out), np.asarray(cls_emb), np.asarray(grads)
        results = []
        for i in range(n):
            k = len(tokens[i])
            r: JsonDict = {}
            if self.task == "classification":
                logits = out[i].astype(np.float64)
                p = np.exp(logits - logits.max())
                r["probas"] = (p / p.sum()).astype(out.dtype)  # the model's float dtype
            else:
                r["score"] = float(out[i, 0])
            r["tokens"] = list(tokens[i])
            r["cls_emb"] = cls_emb[i]
            r["input_embs"] = embs_list[i]
            r[f"token_grad_{self.text_field}"] = grads[i, :k]
            results.append(r)
        return results

    # ------------------------------------------------------------------ presets

    def save_to_preset(self, path: str | os.PathLike[str]) -> Path:
        """Writes `promptlit_model.json` (config + metadata), `vocab.txt` and the weights."""
        path = Path(path)
        local_presets.write_marker(path, "KerasTextClassifier",
                                   {"model": self.config, "name": self.name}, self.metadata)
        (path / VOCAB_FILE).write_text("".join(w + "\n" for w in self.vocab), encoding="utf-8")
        # Save from an uncompiled twin: a compiled model's file would carry the optimizer's
        # moments too (3x the size), which inference never needs.
        twin, _, _ = _build_keras(self.config, len(self.vocab))
        twin.set_weights(self.keras_model.get_weights())
        twin.save_weights(str(path / WEIGHTS_FILE))
        return path

    @classmethod
    def from_preset(cls, path: str | os.PathLike[str], **kwargs: Any) -> KerasTextClassifier:
        """Loads a directory written by `save_to_preset` (offline, no network)."""
        doc = local_presets.read_marker(path)
        path = Path(path)
        for f in (VOCAB_FILE, WEIGHTS_FILE):
            if not (path / f).is_file():
                raise FileNotFoundError(f"{path / f} is missing; the preset at {path} is "
                                        "incomplete (re-run save_to_preset).")
        vocab = (path / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        config = doc["config"]
        kwargs.setdefault("name", config.get("name", path.name))
        model = cls(config["model"], vocab, metadata=doc["metadata"], **kwargs)
        model.keras_model.load_weights(str(path / WEIGHTS_FILE))
        return model


def _check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    defaults = {"task": "classification", "labels": None, "text_field": "sentence",
                "label_field": "label", "emb_dim": 32, "hidden_dim": 64, "conv_width": 3,
                "dropout": 0.2, "max_length": 64, "seed": 0}
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ValueError(f"unknown KerasTextClassifier config keys {unknown}; known: "
                         f"{sorted(defaults)}.")
    c = {**defaults, **dict(config)}
    if c["task"] not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {c['task']!r}.")
    if c["task"] == "classification":
        if not c["labels"] or len(c["labels"]) < 2 or len(set(c["labels"])) != len(c["labels"]):
            raise ValueError(f"a classifier needs at least 2 unique labels, got {c['labels']!r}.")
        c["labels"] = [str(x) for x in c["labels"]]
    else:
        c["labels"] = None
    if c["text_field"] == c["label_field"]:
        raise ValueError("text_field and label_field must differ.")
    for k in ("emb_dim", "hidden_dim", "conv_width", "max_length"):
        if not isinstance(c[k], int) or c[k] < 1:
            raise ValueError(f"{k} must be a positive integer, got {c[k]!r}.")
    return c


def _build_keras(config: Mapping[str, Any], vocab_size: int) -> tuple[Any, Any, Any]:
    """(full model ids -> output, head (embs, mask) -> (output, cls_emb), embedding layer).

    The head reads `<float>[batch, length, emb_dim]` embeddings and a `<float>[batch, length]`
    mask; the full model looks ids up and masks id 0 ([PAD]), and is what is trained and saved.
    """
    import keras
    from keras import layers, ops

    seed = int(config["seed"])
    init = keras.initializers.GlorotUniform(seed=seed)
    emb_dim, hidden = config["emb_dim"], config["hidden_dim"]
    num_out = len(config["labels"]) if config["task"] == "classification" else 1

    embs_in = keras.Input((None, emb_dim), name="input_embs")
    mask_in = keras.Input((None,), name="mask")
    m = ops.expand_dims(mask_in, -1)
    x = embs_in * m  # padded positions contribute nothing, whatever their embedding
    x = layers.Conv1D(hidden, config["conv_width"], padding="same", activation="tanh",
                      kernel_initializer=init, name="conv")(x)
    x = ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)  # masked mean
    cls_emb = layers.Dense(hidden, activation="tanh", kernel_initializer=init, name="pooler")(x)
    h = layers.Dropout(config["dropout"], seed=seed, name="dropout")(cls_emb)
    out = layers.Dense(num_out, kernel_initializer=init, name="output")(h)
    head = keras.Model([embs_in, mask_in], [out, cls_emb], name="head")

    ids = keras.Input((None,), dtype="int32", name="token_ids")
    embedding = layers.Embedding(vocab_size, emb_dim, name="token_embedding",
                                 embeddings_initializer=keras.initializers.RandomNormal(
                                     stddev=0.1, seed=seed))
    mask = ops.cast(ops.not_equal(ids, 0), embs_in.dtype)
    logits, _ = head([embedding(ids), mask])
    full = keras.Model(ids, logits, name="text_classifier")
    return full, head, embedding
