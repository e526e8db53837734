"""Tiny numpy text classifier / regressor with LIT glue-model specs and analytic gradients.

Shared by tests/components/test_gradient_maps.py, test_lime.py and generators/test_*.py
(imported after putting this directory on sys.path, as tests/test_cli.py does).

Model: tokens = ["[CLS]"] + lower-cased whitespace words ("[UNK]" for unknown words),
`e_i = E[token_i]` (or the example's "input_embs"), `t_i = tanh(e_i @ U)`, `h = sum_i t_i`,
classifier `logits = h @ W + b`, `p = softmax(logits)`, regressor `score = h @ w + b`.
Gradient of log p_c w.r.t. e_i: `U @ ((1 - t_i^2) * (W[:, c] - W @ p))`; of the score:
`U @ ((1 - t_i^2) * w)`.
"""

from __future__ import annotations

import numpy as np

from promptlit.api import types
from promptlit.api.model import BatchedModel

TEXT = "sentence"


class BagOfEmbeddings(BatchedModel):
    """Classifier (W: [k, C]) or regressor (W: [k]) over a fixed vocabulary; counts its calls."""

    def __init__(self, vocab, emb, W, b, labels=("pos", "neg"), U=None, with_grads=True,
                 null_idx=None):
        self.vocab = list(vocab)
        self.E = np.asarray(emb, dtype=np.float64)
        self.W = np.asarray(W, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        self.U = np.eye(self.E.shape[1]) if U is None else np.asarray(U, dtype=np.float64)
        self.labels = list(labels)
        self.regression = self.W.ndim == 1
        self.with_grads = with_grads
        self.null_idx = null_idx
        self.predict_calls = 0
        self.examples_seen = 0

    def max_minibatch_size(self):
        return 1024

    def input_spec(self):
        spec = {TEXT: types.TextSegment(),
                "input_embs": types.TokenEmbeddings(align="tokens", required=False)}
        if self.regression:
            spec["label"] = types.Scalar(required=False)
        else:
            spec["label"] = types.CategoryLabel(vocab=self.labels, required=False)
            spec["grad_class"] = types.CategoryLabel(vocab=self.labels, required=False)
        return spec

    def output_spec(self):
        spec = {"tokens": types.Tokens(parent=TEXT), "cls_emb": types.Embeddings(),
                "input_embs": types.TokenEmbeddings(align="tokens")}
        if self.regression:
            spec["score"] = types.RegressionScore(parent="label")
        else:
            spec["probas"] = types.MulticlassPreds(vocab=self.labels, parent="label",
                                                   null_idx=self.null_idx)
        if self.with_grads:
            spec[f"token_grad_{TEXT}"] = types.TokenGradients(
                align="tokens", grad_for="input_embs",
                grad_target_field_key=None if self.regression else "grad_class")
        return spec

    def tokenize(self, text):
        return ["[CLS]"] + [w if w in self.vocab else "[UNK]" for w in text.lower().split()]

    def forward(self, embs, grad_class=None):
        """(prediction, <float>[n, d] gradient, h) for embeddings <float>[n, d]."""
        t = np.tanh(embs @ self.U)
        h = t.sum(axis=0)
        if self.regression:
            return float(h @ self.W + self.b), ((1 - t**2) * self.W) @ self.U.T, h
        logits = h @ self.W + self.b
        p = np.exp(logits - logits.max())
        p /= p.sum()
        c = int(np.argmax(p)) if grad_class is None else self.labels.index(grad_class)
        dh = self.W[:, c] - self.W @ p
        return p, ((1 - t**2) * dh) @ self.U.T, h

    def log_score(self, embs, c=None):
        """f: log p_c (classifier) or the score (regressor) at embeddings <float>[n, d]."""
        pred, _, _ = self.forward(embs)
        return float(pred) if self.regression else float(np.log(pred[c]))

    def embed(self, text):
        return self.E[[self.vocab.index(t) for t in self.tokenize(text)]]

    def predict_minibatch(self, inputs, **kw):
        self.predict_calls += 1
        self.examples_seen += len(inputs)
        outs = []
        for ex in inputs:
            tokens = self.tokenize(ex[TEXT])
            embs = ex.get("input_embs")
            embs = self.embed(ex[TEXT]) if embs is None else np.asarray(embs, np.float64)
            pred, grads, h = self.forward(embs, ex.get("grad_class") or None)
            out = {"tokens": tokens, "cls_emb": h, "input_embs": embs}
            out["score" if self.regression else "probas"] = pred
            if self.with_grads:
                out[f"token_grad_{TEXT}"] = grads
            outs.append(out)
        return outs

    def get_embedding_table(self):
        return list(self.vocab), self.E


class Data:
    """A minimal dataset: spec + examples."""

    def __init__(self, examples, spec):
        self.examples = list(examples)
        self._spec = spec

    def spec(self):
        return dict(self._spec)


def sentiment_model(**kw) -> BagOfEmbeddings:
    """A 2-d sentiment classifier: "good"/"great" push pos, "bad"/"terrible" push neg.

    U = I, W = [[2, -2], [-2, 2]], b = 0, so logit_pos - logit_neg = 4 (h_0 - h_1).
    """
    vocab = ["[CLS]", "[UNK]", "the", "movie", "was", "good", "great", "bad", "terrible", "not",
             "plot"]
    emb = {"[CLS]": [0.1, 0.1], "[UNK]": [0, 0], "the": [0.05, 0.0], "movie": [0.1, 0.05],
           "was": [0.0, 0.05], "good": [1.0, 0.0], "great": [1.5, 0.0], "bad": [0.0, 1.0],
           "terrible": [0.0, 1.5], "not": [0.0, 0.3], "plot": [0.05, 0.1]}
    return BagOfEmbeddings(vocab, [emb[w] for w in vocab], [[2.0, -2.0], [-2.0, 2.0]],
                           [0.0, 0.0], **kw)


def sentiment_data(model, sentences):
    return Data([{TEXT: s, "label": "pos"} for s in sentences],
                {TEXT: types.TextSegment(), "label": types.CategoryLabel(vocab=model.labels)})


def rating_model() -> BagOfEmbeddings:
    """The sentiment features as a regressor: score = 2 (h_0 - h_1) + 0.5."""
    m = sentiment_model()
    return BagOfEmbeddings(m.vocab, m.E, [2.0, -2.0], 0.5)
