"""Gradient salience maps for text classifiers and regressors: Grad L2, Grad·Input, IG.

LIT's `gradient_maps` interpreters, driven purely by specs. A model qualifies when its output
spec has a `TokenGradients(align=<Tokens field>, grad_for=<TokenEmbeddings field>,
grad_target_field_key=<input field>)`: the gradient `<float>[num_tokens, emb_dim]` of the
explained class's log-probability (or of the regression score) with respect to the token
embeddings `<float>[num_tokens, emb_dim]` it names. Each interpreter returns, per input example,
one `dtypes.TokenSalience` per gradient field, keyed by that field's name:

* `GradientNorm` ("Grad L2"): `||g_i||_2` per token, unsigned; how sensitive the prediction is to
  each token's embedding.
* `GradientDotInput` ("Grad·Input"): `g_i · e_i`, signed; a first-order estimate of each token's
  contribution relative to a zero embedding.
* `IntegratedGradients`: `(e_i - b_i) · mean_k g_i(b + alpha_k (e - b))` with a zero baseline `b`
  and the midpoint rule `alpha_k = (k + 1/2) / m` (as `promptlit.salience.kernels`), signed. It
  satisfies completeness: the attributions sum to `f(e) - f(b)` (up to the quadrature error).
  The model is run on interpolated embeddings by putting them in the example's TokenEmbeddings
  input field (LIT convention, e.g. "input_embs"); all `m` steps of all examples and gradient
  fields go to the model in a single `predict` call, which batches them.

The class explained is, in order: config `class_to_explain` (a label or an index), the value of
the example's gradient-target input (e.g. "grad_class"), or the model's predicted class.
With `normalize` (default, as LIT) Grad L2 scores are divided by their sum and signed scores by
the sum of their absolute values.

Example:
    >>> interp = IntegratedGradients()
    >>> sorted(interp.config_spec())
    ['class_to_explain', 'ig_steps', 'normalize']
    >>> interp.meta_spec()["saliency"].signed
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from promptlit.api import dtypes, types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components import _classifier_common as common

__all__ = ["GradientDotInput", "GradientNorm", "IntegratedGradients"]

_FIX = ('Fix: use a model whose output_spec declares e.g. "token_grad_text": '
        'TokenGradients(align="tokens", grad_for="input_embs", grad_target_field_key="grad_class") '
        'next to "tokens": Tokens(parent="text") and "input_embs": TokenEmbeddings(align="tokens")')


class _GradientMap(Interpreter):
    """Shared machinery; subclasses define `_scores(grads, embs, ...)`."""

    signed: ClassVar[bool] = False
    needs_output_embeddings: ClassVar[bool] = False

    def _grad_fields(self, model: Any) -> list[str]:
        """The TokenGradients output fields this method can use on `model`."""
        _, out_spec = common.specs(model)
        keys = []
        for key, t in out_spec.items():
            if not isinstance(t, types.TokenGradients):
                continue
            if not isinstance(out_spec.get(t.align or ""), types.Tokens):
                continue
            if self.needs_output_embeddings and not isinstance(
                    out_spec.get(t.grad_for or ""), types.TokenEmbeddings):
                continue
            keys.append(key)
        return keys

    def _require_grad_fields(self, model: Any) -> list[str]:
        keys = self._grad_fields(model)
        if keys:
            return keys
        _, out_spec = common.specs(model)
        found = [k for k, t in out_spec.items() if isinstance(t, types.TokenGradients)]
        if not found:
            problem = "the model's output spec has no TokenGradients field"
        elif self.needs_output_embeddings:
            problem = (f"TokenGradients field(s) {found} must have align= a Tokens output and "
                       "grad_for= a TokenEmbeddings output")
        else:
            problem = f"TokenGradients field(s) {found} must have align= a Tokens output field"
        raise ValueError(f"{self.name}: {problem} (output fields: {sorted(out_spec)}). {_FIX}.")

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model outputs a usable TokenGradients field (see the module docstring)."""
        del dataset
        return bool(self._grad_fields(model))

    def config_spec(self) -> Spec:
        """class_to_explain (empty: grad_class input, else predicted) and normalize."""
        return {
            "class_to_explain": types.TextSegment(
                default="", description="Class to explain, as a label or an index; empty: the "
                                        "example's gradient target, else the predicted class."),
            "normalize": types.Boolean(default=True, description="Scale scores to sum to 1 "
                                                                 "(absolute values if signed)."),
        }

    def meta_spec(self) -> Spec:
        """One `TokenSalience` per gradient field (keyed by that field's name)."""
        return {"saliency": types.TokenSalience(autorun=True, signed=self.signed)}

    def _config(self, config: JsonDict | None) -> JsonDict:
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        return cfg

    def _requested_class(self, model: Any, cfg: JsonDict) -> tuple[types.LitType | None,
                                                                    int | None]:
        """(prediction spec, requested class index or None)."""
        _, out_spec = common.specs(model)
        keys = common.prediction_keys(out_spec)
        pred_spec = out_spec[keys[0]] if keys else None
        idx = None
        if isinstance(pred_spec, types.MulticlassPreds):
            idx = common.class_index(pred_spec, cfg.get("class_to_explain"), self.name)
        elif cfg.get("class_to_explain") not in (None, ""):
            raise ValueError(f"{self.name}: class_to_explain is only meaningful for a "
                             "classifier (MulticlassPreds output); this model has none.")
        if idx is not None:
            in_spec = common.specs(model)[0]
            if not any(common.grad_target_key(in_spec, out_spec[k]) is not None
                       for k in self._grad_fields(model)):
                raise ValueError(
                    f"{self.name}: cannot explain class {cfg['class_to_explain']!r}: the "
                    "model's TokenGradients have no grad_target_field_key naming an input field "
                    "(e.g. \"grad_class\": CategoryLabel(required=False)). Fix: leave "
                    "class_to_explain empty to explain the model's default class, or add the "
                    "gradient-target input to the model.")
        return pred_spec, idx

    @staticmethod
    def _normalize(scores: np.ndarray, signed: bool) -> np.ndarray:
        total = np.sum(np.abs(scores)) if signed else np.sum(scores)
        return scores / total if total > 0 else scores

    def _salience(self, tokens: Sequence[str], scores: np.ndarray, normalize: bool
                  ) -> dtypes.TokenSalience:
        scores = np.asarray(scores, dtype=np.float64)
        if normalize:
            scores = self._normalize(scores, self.signed)
        return dtypes.TokenSalience(tokens=list(tokens), salience=scores)

    def _tokens_grads(self, out: JsonDict, key: str, out_spec: Spec, i: int
                      ) -> tuple[list[str], np.ndarray]:
        grad_spec = out_spec[key]
        assert isinstance(grad_spec, types.TokenGradients)
        tokens = list(out[grad_spec.align or ""])
        grads = np.asarray(out[key], dtype=np.float64)
        if grads.ndim != 2 or grads.shape[0] != len(tokens):
            raise ValueError(
                f"{self.name}: example {i}: gradient field '{key}' has shape {grads.shape} but "
                f"'{grad_spec.align}' has {len(tokens)} tokens; expected "
                "<float>[num_tokens, emb_dim].")
        return tokens, grads

    def _scores(self, grads: np.ndarray, embs: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[dict[str, dtypes.TokenSalience]]:
        """`{gradient field: TokenSalience}` per input, from the model's gradient outputs.

        Args:
            inputs: examples of the model's input spec.
            model: a classifier/regressor with TokenGradients outputs.
            dataset: unused.
            model_outputs: `model.predict(inputs)`; recomputed when None or when
                `class_to_explain` is set (the gradients depend on the class).
            config: {"class_to_explain": label or index or "", "normalize": bool}.

        Raises:
            ValueError: the model has no usable TokenGradients field (says what to declare),
                or the class does not exist.
        """
        del dataset
        cfg = self._config(config)
        keys = self._require_grad_fields(model)
        pred_spec, idx = self._requested_class(model, cfg)
        inputs = list(inputs)
        if idx is not None:
            assert pred_spec is not None
            model_outputs = list(model.predict(
                [common.with_grad_class(ex, model, pred_spec, idx) for ex in inputs]))
        elif model_outputs is None:
            model_outputs = list(model.predict(inputs))
        out_spec = common.specs(model)[1]
        results = []
        for i, out in enumerate(model_outputs):
            result = {}
            for key in keys:
                tokens, grads = self._tokens_grads(out, key, out_spec, i)
                embs = None
                if self.needs_output_embeddings:
                    embs = np.asarray(out[out_spec[key].grad_for], dtype=np.float64)  # type: ignore[attr-defined]
                    if embs.shape != grads.shape:
                        raise ValueError(f"{self.name}: example {i}: embeddings shape "
                                         f"{embs.shape} != gradient shape {grads.shape}.")
                result[key] = self._salience(tokens, self._scores(grads, embs),
                                             bool(cfg["normalize"]))
            results.append(result)
        return results


class GradientNorm(_GradientMap):
    """Grad L2: the L2 norm of each token's gradient `<float>[num_tokens]` (unsigned).

    Large where a small change to the token's embedding would move the explained class's
    log-probability (or the regression score) most. Cheap: the model's own gradient output.
    """

    _name = "grad_l2"
    signed = False

    def _scores(self, grads: np.ndarray, embs: np.ndarray | None) -> np.ndarray:
        del embs
        return np.linalg.norm(grads, axis=-1)


class GradientDotInput(_GradientMap):
    """Grad·Input: `g_i · e_i` per token (signed), gradient dotted with the token embedding.

    Positive tokens push towards the explained class (or a higher score), negative ones away;
    a first-order estimate of each token's contribution relative to a zero embedding.
    """

    _name = "grad_dot_input"
    signed = True
    needs_output_embeddings = True

    def _scores(self, grads: np.ndarray, embs: np.ndarray | None) -> np.ndarray:
        assert embs is not None
        return np.sum(grads * embs, axis=-1)


class IntegratedGradients(_GradientMap):
    """Integrated Gradients with a zero baseline (signed), `ig_steps` midpoint-rule steps.

    Attributions `<float>[num_tokens]` sum to `f(x) - f(0)`, where f is the explained class's
    log-probability (or the score) as a function of the token embeddings. Costs `ig_steps`
    gradient evaluations per example and gradient field, sent to the model in one `predict` call.
    Needs the gradient's `grad_for` field as a TokenEmbeddings *input* of the model (so it can run
    on interpolated embeddings) and, for classifiers, a gradient-target input (so every step
    explains the same class).
    """

    _name = "integrated_gradients"
    signed = True
    needs_output_embeddings = True

    def _grad_fields(self, model: Any) -> list[str]:
        in_spec, out_spec = common.specs(model)
        keys = []
        is_classifier = any(isinstance(out_spec[k], types.MulticlassPreds)
                            for k in common.prediction_keys(out_spec))
        for key in super()._grad_fields(model):
            grad = out_spec[key]
            if not isinstance(in_spec.get(grad.grad_for or ""), types.TokenEmbeddings):  # type: ignore[attr-defined]
                continue
            if is_classifier and common.grad_target_key(in_spec, grad) is None:
                continue
            keys.append(key)
        return keys

    def _require_grad_fields(self, model: Any) -> list[str]:
        keys = self._grad_fields(model)
        if keys:
            return keys
        if not super()._grad_fields(model):
            return super()._require_grad_fields(model)
        in_spec, out_spec = common.specs(model)
        raise ValueError(
            f"{self.name}: the model's TokenGradients must name (grad_for=) a TokenEmbeddings "
            "field that is also a model *input* (so the model can run on interpolated "
            "embeddings) and, for a classifier, a grad_target_field_key input that selects the "
            f"class (model inputs: {sorted(in_spec)}). Fix: add e.g. \"input_embs\": "
            "TokenEmbeddings(align=\"tokens\", required=False) and \"grad_class\": "
            "CategoryLabel(vocab, required=False) to input_spec.")

    def config_spec(self) -> Spec:
        """class_to_explain, normalize, and ig_steps (number of interpolation steps m)."""
        return {**super().config_spec(),
                "ig_steps": types.Integer(min_val=1, max_val=512, default=32,
                                          description="Interpolation steps (midpoint rule).")}

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[dict[str, dtypes.TokenSalience]]:
        """`{gradient field: TokenSalience}` per input (see the class docstring).

        Args:
            inputs: examples of the model's input spec.
            model: a classifier/regressor with TokenGradients and TokenEmbeddings in/outputs.
            dataset: unused.
            model_outputs: `model.predict(inputs)` (tokens, embeddings, predicted class);
                computed when None.
            config: {"class_to_explain": ..., "normalize": bool, "ig_steps": int}.

        Raises:
            ValueError: the model lacks the fields IG needs (names them), bad ig_steps or class.
        """
        del dataset
        cfg = self._config(config)
        steps = int(cfg["ig_steps"])
        if steps < 1:
            raise ValueError(f"{self.name}: ig_steps must be >= 1, got {steps}.")
        keys = self._require_grad_fields(model)
        pred_spec, requested = self._requested_class(model, cfg)
        inputs = list(inputs)
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        in_spec, out_spec = common.specs(model)
        pred_key = common.prediction_keys(out_spec)[0] if pred_spec is not None else None
        alphas = (np.arange(steps) + 0.5) / steps  # midpoint rule on [0, 1]

        # One interpolated example per (input, gradient field, step), all predicted at once.
        jobs: list[tuple[int, str, list[str], np.ndarray]] = []
        batch: list[JsonDict] = []
        for i, (ex, out) in enumerate(zip(inputs, model_outputs, strict=True)):
            base = dict(ex)
            if isinstance(pred_spec, types.MulticlassPreds):
                idx = requested
                target_key = common.grad_target_key(in_spec, out_spec[keys[0]])
                if idx is None and target_key and ex.get(target_key) not in (None, ""):
                    idx = common.class_index(pred_spec, ex[target_key], self.name)
                if idx is None:
                    assert pred_key is not None  # set whenever pred_spec is
                    idx = common.predicted_class(out[pred_key], pred_spec)
                base = common.with_grad_class(base, model, pred_spec, idx)
            for key in keys:
                tokens, _ = self._tokens_grads(out, key, out_spec, i)
                emb_key = out_spec[key].grad_for  # type: ignore[attr-defined]
                embs = np.asarray(out[emb_key], dtype=np.float32)
                jobs.append((i, key, tokens, embs))
                batch.extend({**base, emb_key: a * embs} for a in alphas.astype(np.float32))
        path_outputs = list(model.predict(batch))
        if len(path_outputs) != len(batch):
            raise ValueError(f"{self.name}: the model returned {len(path_outputs)} outputs for "
                             f"{len(batch)} interpolated inputs.")

        results: list[dict[str, dtypes.TokenSalience]] = [{} for _ in inputs]
        for j, (i, key, tokens, embs) in enumerate(jobs):
            grads = np.stack([np.asarray(o[key], dtype=np.float64)
                              for o in path_outputs[j * steps:(j + 1) * steps]])
            if grads.shape[1:] != embs.shape:
                raise ValueError(f"{self.name}: example {i}: gradient shape {grads.shape[1:]} at "
                                 f"interpolated inputs != embeddings shape {embs.shape}.")
            scores = np.sum(grads.mean(axis=0) * embs.astype(np.float64), axis=-1)
            results[i][key] = self._salience(tokens, scores, bool(cfg["normalize"]))
        return results
