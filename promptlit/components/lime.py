"""LIME for text classifiers and regressors, from scratch (numpy + scikit-learn Ridge).

Local Interpretable Model-agnostic Explanations (Ribeiro et al. 2016), as LIT's "LIME": the text
of one field is cut into units (whitespace words, or the model's own tokens located in the text);
`num_samples` perturbed copies each mask a random subset of units (k ~ Uniform{1..n} units, then a
random choice of k); the model scores every copy; a weighted Ridge regression from the
`<bool>[num_samples + 1, num_units]` keep-masks to the scores gives one coefficient per unit.
Weights are LIT's exponential kernel `sqrt(exp(-d^2 / kernel_width^2))` of the cosine distance
`d` (x100) between a sample's mask and the unmasked text, so near-original samples count most.

The score explained is the probability of `class_to_explain` (default: the class predicted for
the unmasked text) for a classifier, or the score of a regressor. Only the model's predictions
are used: no gradients, so any model with a MulticlassPreds or RegressionScore output works.
Masked units are replaced by `mask_token` ("" deletes them); the unmasked text is always
sample 0. All samples of one (example, field) go to the model in one `predict` call. Sampling
is seeded by `(seed, example content)`, so an explanation does not depend on the batch it is in.

Example:
    >>> lime = LIME()
    >>> sorted(lime.config_spec())  # doctest: +NORMALIZE_WHITESPACE
    ['class_to_explain', 'granularity', 'kernel_width', 'mask_token', 'normalize',
     'num_samples', 'prediction_key', 'seed', 'text_fields']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from promptlit.api import dtypes, types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components import _classifier_common as common
from promptlit.lib import utils

__all__ = ["GRANULARITIES", "LIME", "exponential_kernel", "lime_weights", "sample_masks"]

GRANULARITIES: tuple[str, ...] = ("words", "tokens")
RIDGE_ALPHA = 1.0  # as LIT


def sample_masks(num_samples: int, num_units: int, rng: np.random.Generator) -> np.ndarray:
    """Keep-masks `<bool>[num_samples, num_units]`: each row masks k ~ Uniform{1..n} random units."""
    if num_units == 0:
        return np.ones((num_samples, 0), dtype=bool)
    ranks = np.argsort(rng.random((num_samples, num_units)), axis=1)  # a permutation per row
    num_masked = rng.integers(1, num_units + 1, size=(num_samples, 1))
    return ranks >= num_masked


def exponential_kernel(distances: np.ndarray, kernel_width: float) -> np.ndarray:
    """LIME's sample weights `sqrt(exp(-d^2 / w^2))` for distances `<float>[num_samples]`."""
    return np.sqrt(np.exp(-(np.asarray(distances, float) ** 2) / float(kernel_width) ** 2))


def lime_weights(masks: np.ndarray, scores: np.ndarray, kernel_width: float,
                 seed: int = 0) -> np.ndarray:
    """Per-unit LIME coefficients `<float>[num_units]` from keep-masks and model scores.

    Args:
        masks: `<bool>[num_samples, num_units]`, row 0 conventionally all True (the original).
        scores: `<float>[num_samples]`, the model's score of each perturbed text.
        kernel_width: width of the exponential kernel on cosine distance x 100.
        seed: for the Ridge solver (deterministic anyway for the default solver).
    """
    from sklearn.linear_model import Ridge  # lazy: importing promptlit stays fast

    masks = np.asarray(masks, dtype=float)
    norms = np.linalg.norm(masks, axis=1) * np.sqrt(masks.shape[1])
    cosine = np.divide(masks.sum(axis=1), norms, out=np.zeros(len(masks)), where=norms > 0)
    weights = exponential_kernel((1.0 - cosine) * 100.0, kernel_width)
    model = Ridge(alpha=RIDGE_ALPHA, fit_intercept=True, random_state=seed)
    model.fit(masks, np.asarray(scores, float), sample_weight=weights)
    return np.asarray(model.coef_, dtype=np.float64)


class LIME(Interpreter):
    """LIME word (or token) importances for a classifier's class probability or a regressor's score.

    Signed: positive units raise the explained score when present. Returns, per input example,
    `{text field: dtypes.TokenSalience(units, scores)}` for each explained text field.
    Cost: `num_samples + 1` predictions per example and text field.
    """

    _name = "lime"

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """A model with a MulticlassPreds/RegressionScore output and a TextSegment input."""
        _, out_spec = common.specs(model)
        return bool(common.prediction_keys(out_spec)) and bool(common.text_fields(model, dataset))

    def config_spec(self) -> Spec:
        """What to explain (field, class, text fields) and LIME's sampling settings."""
        return {
            "prediction_key": common.prediction_key_config("explain"),
            "class_to_explain": types.TextSegment(
                default="", description="Class (label or index); empty: the predicted class."),
            "text_fields": types.MultiFieldMatcher(
                spec="input", types=["TextSegment"], select_all=True,
                description="Text fields to explain (default: all)."),
            "granularity": types.CategoryLabel(
                vocab=list(GRANULARITIES), default="words",
                description="Mask whitespace words, or the model's tokens."),
            "mask_token": types.TextSegment(default="[MASK]",
                                            description='Replaces masked units ("" deletes).'),
            "kernel_width": types.Scalar(min_val=1, max_val=1024, default=256, step=1,
                                         description="Kernel width (distance is cosine x 100)."),
            "num_samples": types.Integer(min_val=1, max_val=10000, default=256,
                                         description="Number of perturbed samples."),
            "seed": types.Integer(min_val=0, max_val=2**31 - 1, default=0,
                                  description="Random seed of the sampling."),
            "normalize": types.Boolean(default=True,
                                       description="Scale scores so |scores| sum to 1."),
        }

    def meta_spec(self) -> Spec:
        """One signed `TokenSalience` per explained text field (keyed by the field name)."""
        return {"saliency": types.TokenSalience(autorun=False, signed=True)}

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[dict[str, dtypes.TokenSalience]]:
        """`{text field: TokenSalience}` per input example.

        Args:
            inputs: examples of the model's input spec.
            model: any model with a MulticlassPreds or RegressionScore output.
            dataset: its spec limits which text fields are explained (may be None).
            model_outputs: `model.predict(inputs)`; only used (or computed) for
                granularity="tokens", to read the model's tokens.
            config: see `config_spec()`.

        Raises:
            ValueError: no prediction field / text field, unknown class, granularity or sizes.
        """
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        in_spec, out_spec = common.specs(model)
        pred_key = common.pick_prediction_key(out_spec, cfg.get("prediction_key"), self.name)
        pred_spec = out_spec[pred_key]
        fields = common.text_fields(model, dataset, cfg.get("text_fields"))
        if not fields:
            raise ValueError(f"{self.name}: the model has no TextSegment input that the dataset "
                             "provides; LIME explains text fields.")
        granularity = str(cfg["granularity"])
        if granularity not in GRANULARITIES:
            raise ValueError(f"{self.name}: granularity {granularity!r} is not one of "
                             f"{list(GRANULARITIES)}.")
        num_samples, kernel_width = int(cfg["num_samples"]), float(cfg["kernel_width"])
        if num_samples < 1 or kernel_width <= 0:
            raise ValueError(f"{self.name}: num_samples must be >= 1 and kernel_width > 0; got "
                             f"{num_samples} and {kernel_width}.")
        requested = None
        if isinstance(pred_spec, types.MulticlassPreds):
            requested = common.class_index(pred_spec, cfg.get("class_to_explain"), self.name)
        inputs = list(inputs)
        if granularity == "tokens" and model_outputs is None:
            model_outputs = list(model.predict(inputs))
        mask_token = str(cfg["mask_token"] or "")
        seed = int(cfg["seed"])

        results = []
        for i, ex in enumerate(inputs):
            clean = common.strip_model_only_fields(ex, model)
            result = {}
            for field in fields:
                text = str(ex.get(field) or "")
                if granularity == "words":
                    spans: list[tuple[int, int] | None] = list(common.word_spans(text))
                    labels = [text[s:e] for s, e in common.word_spans(text)]
                else:
                    assert model_outputs is not None
                    labels, spans = self._model_tokens(model_outputs[i], out_spec, field, text, i)
                units = [s for s in spans if s is not None]
                unit_pos = [j for j, s in enumerate(spans) if s is not None]
                # Seeded by content: an example's explanation does not depend on its batch.
                rng = np.random.default_rng([seed, int(utils.example_id(clean)[:12], 16)])
                masks = np.vstack([np.ones((1, len(units)), bool),
                                   sample_masks(num_samples, len(units), rng)])
                batch = [{**clean, field: self._mask(text, units, row, mask_token)}
                         for row in masks]
                preds = [o[pred_key] for o in model.predict(batch)]
                if isinstance(pred_spec, types.MulticlassPreds):
                    probs = np.asarray(preds, dtype=np.float64)
                    idx = requested if requested is not None else common.predicted_class(
                        probs[0], pred_spec)
                    scores = probs[:, idx]
                else:
                    scores = np.asarray(preds, dtype=np.float64).reshape(-1)
                salience = np.zeros(len(spans))
                if units:
                    salience[unit_pos] = lime_weights(masks, scores, kernel_width, seed)
                if cfg["normalize"] and np.abs(salience).sum() > 0:
                    salience = salience / np.abs(salience).sum()
                result[field] = dtypes.TokenSalience(tokens=labels, salience=salience)
            results.append(result)
        return results

    def _model_tokens(self, out: JsonDict, out_spec: Spec, field: str, text: str, i: int
                      ) -> tuple[list[str], list[tuple[int, int] | None]]:
        """The model's tokens of `field` and their character spans (None where not in the text)."""
        keys = [k for k in utils.find_spec_keys(out_spec, types.Tokens)
                if out_spec[k].parent == field]  # type: ignore[attr-defined]
        if not keys:
            raise ValueError(f"{self.name}: granularity='tokens' needs a Tokens(parent='{field}') "
                             "output field; the model has none. Fix: use granularity='words'.")
        tok_spec = out_spec[keys[0]]
        assert isinstance(tok_spec, types.Tokens)
        tokens = [str(t) for t in out[keys[0]]]
        offsets = [k for k, t in out_spec.items() if isinstance(t, types.TokenOffsets)
                   and t.align == keys[0] and k in out]
        if offsets:
            spans = [(int(s), int(e)) if e > s else None for s, e in out[offsets[0]]]
        else:
            spans = common.token_spans(text, tokens, tok_spec.token_prefix)
        if len(spans) != len(tokens):
            raise ValueError(f"{self.name}: example {i}: {len(tokens)} tokens but {len(spans)} "
                             "offsets.")
        return tokens, spans

    @staticmethod
    def _mask(text: str, units: list[tuple[int, int]], keep: np.ndarray, mask_token: str) -> str:
        dropped = [u for u, k in zip(units, keep, strict=True) if not k]
        if not mask_token:
            return common.remove_spans(text, dropped)
        return common.replace_spans(text, {u: mask_token for u in dropped})
