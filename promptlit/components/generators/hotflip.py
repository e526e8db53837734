"""HotFlip: token substitutions, chosen by gradients, that flip a classifier's (or regressor's) decision.

LIT's "HotFlip" (Ebrahimi et al. 2018) on the glue-model spec. It needs, from the model:

* a `TokenGradients(align=<Tokens>, grad_for=<TokenEmbeddings>)` output: `g_i`, the gradient
  `<float>[num_tokens, emb_dim]` of the predicted class's log-probability (or of the regression
  score) w.r.t. the token embeddings `e_i` `<float>[num_tokens, emb_dim]` (the `grad_for` output);
* the token embedding table through the documented method
  `model.get_embedding_table() -> (vocab <str>[vocab_size], <float>[vocab_size, emb_dim])`
  (`promptlit.api.model.Model.get_embedding_table`; wrappers delegate it).

To first order, replacing token i by vocabulary token w changes the explained log-probability by
`(E[w] - e_i) · g_i`. For each position the best replacement is the w that most lowers it (for a
regressor: moves the score towards `regression_threshold`); positions are ranked by that estimate.
Subsets of 1..`max_flips` positions among the `MAX_POSITIONS` best, best estimates first and
skipping supersets of sets already found, are applied to the *text* (each token is located in
its text field; see `_classifier_common.token_spans`) and re-run through the model in one
`predict` call per size; only examples whose decision really flips are returned, fewest flips
first, at most `num_examples`.

Replacement candidates exclude special tokens ([CLS], <pad>, ...), the Tokens field's
`mask_token`, tokens without letters or digits, and subword continuations ("##ing") unless the
replaced token is itself a continuation (and vice versa). Tokens in `tokens_to_ignore` and
tokens not found in the text are never flipped.

Example:
    >>> sorted(HotFlip().config_spec())  # doctest: +NORMALIZE_WHITESPACE
    ['max_flips', 'num_examples', 'prediction_key', 'regression_threshold', 'tokens_to_ignore']
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Generator
from promptlit.api.types import JsonDict, Spec
from promptlit.components import _classifier_common as common

__all__ = ["MAX_POSITIONS", "HotFlip"]

MAX_POSITIONS = 10
"""Token positions considered for multi-token flips (the best first-order estimates)."""


@dataclasses.dataclass(frozen=True)
class _Flip:
    field: str  # text field
    span: tuple[int, int]  # character span of the token in the field's text
    replacement: str  # surface text of the new token
    estimate: float  # first-order change of the explained score (negative moves to a flip)


class HotFlip(Generator):
    """Gradient-guided token substitutions that flip the prediction (verified by re-running)."""

    _name = "hotflip"

    def _grad_fields(self, model: Any, dataset: Any) -> list[str]:
        """TokenGradients fields over Tokens of a text input, with TokenEmbeddings outputs."""
        _, out_spec = common.specs(model)
        texts = set(common.text_fields(model, dataset))
        keys = []
        for key, t in out_spec.items():
            if not isinstance(t, types.TokenGradients):
                continue
            tokens = out_spec.get(t.align or "")
            if (isinstance(tokens, types.Tokens) and tokens.parent in texts
                    and isinstance(out_spec.get(t.grad_for or ""), types.TokenEmbeddings)):
                keys.append(key)
        return keys

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """A prediction output, usable TokenGradients and `get_embedding_table()` (see module)."""
        _, out_spec = common.specs(model)
        return (bool(common.prediction_keys(out_spec)) and bool(self._grad_fields(model, dataset))
                and common.has_embedding_table(model))

    def config_spec(self) -> Spec:
        """prediction_key, num_examples, max_flips, tokens_to_ignore, regression_threshold."""
        return {
            "prediction_key": common.prediction_key_config("flip"),
            "num_examples": types.Integer(min_val=1, max_val=100, default=5,
                                          description="Most flipped examples returned."),
            "max_flips": types.Integer(min_val=1, max_val=10, default=3,
                                       description="Most tokens substituted at once."),
            "tokens_to_ignore": types.Tokens(default=[],
                                             description="Tokens never substituted."),
            "regression_threshold": common.regression_threshold_config(),
        }

    def generate(self, example: JsonDict, model: Any, dataset: Any,
                 config: JsonDict | None = None) -> list[JsonDict]:
        """Flipped copies of `example`, fewest substitutions first ([] if none found).

        Raises:
            ValueError: the model lacks TokenGradients or an embedding table (says which and
                how to add it), the table's width differs from the embeddings', or bad config.
        """
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        in_spec, out_spec = common.specs(model)
        pred_key = common.pick_prediction_key(out_spec, cfg.get("prediction_key"), self.name)
        pred_spec = out_spec[pred_key]
        grad_keys = self._grad_fields(model, dataset)
        if not grad_keys:
            raise ValueError(
                f"{self.name}: the model needs a TokenGradients output aligned to the Tokens of a "
                "text input, with grad_for= a TokenEmbeddings output (e.g. \"token_grad_text\": "
                "TokenGradients(align=\"tokens\", grad_for=\"input_embs\", "
                f"grad_target_field_key=\"grad_class\")); output fields: {sorted(out_spec)}.")
        if not common.has_embedding_table(model):
            raise ValueError(
                f"{self.name}: the model does not expose its token embedding table. Fix: "
                "implement get_embedding_table() -> (vocab, <float>[vocab_size, emb_dim]) on it.")
        num_examples, max_flips = int(cfg["num_examples"]), int(cfg["max_flips"])
        if num_examples < 1 or max_flips < 1:
            raise ValueError(f"{self.name}: num_examples and max_flips must be >= 1; got "
                             f"{num_examples} and {max_flips}.")
        threshold = float(cfg["regression_threshold"])
        ignore = {str(t).lower() for t in cfg.get("tokens_to_ignore") or []}

        # The original prediction, then gradients explicitly for the predicted class.
        base = common.strip_model_only_fields(example, model)
        target_keys = {common.grad_target_key(in_spec, out_spec[k]) for k in grad_keys}
        query = {k: v for k, v in base.items() if k not in target_keys}
        out = next(iter(model.predict([query])))
        decision = common.decision(out[pred_key], pred_spec, threshold)
        if isinstance(pred_spec, types.MulticlassPreds) and target_keys - {None}:
            query = common.with_grad_class(query, model, pred_spec, int(decision))
            out = next(iter(model.predict([query])))
        # Gradients point up the explained score: descend, except for a regressor below the
        # threshold, which must go up.
        sign = -1.0 if isinstance(pred_spec, types.RegressionScore) and not decision else 1.0

        vocab, table = model.get_embedding_table()
        vocab = [str(v) for v in vocab]
        table = np.asarray(table, dtype=np.float64)
        if table.ndim != 2 or table.shape[0] != len(vocab):
            raise ValueError(f"{self.name}: get_embedding_table() returned {len(vocab)} tokens "
                             f"and a table of shape {table.shape}; expected "
                             "<float>[vocab_size, emb_dim].")
        flips = []
        for key in grad_keys:
            flips += self._position_flips(example, out, out_spec, key, vocab, table, sign, ignore)
        flips = sorted(flips, key=lambda f: f.estimate)[:MAX_POSITIONS]

        results: list[tuple[frozenset[int], JsonDict]] = []
        for size in range(1, min(max_flips, len(flips)) + 1):
            if len(results) >= num_examples:
                break
            combos = [c for c in itertools.combinations(range(len(flips)), size)
                      if not any(found <= set(c) for found, _ in results)]
            combos.sort(key=lambda c: sum(flips[i].estimate for i in c))
            batch = [self._apply(base, example, [flips[i] for i in c]) for c in combos]
            preds = [o[pred_key] for o in model.predict(batch)] if batch else []
            for c, new, pred in zip(combos, batch, preds, strict=True):
                if common.decision(pred, pred_spec, threshold) != decision:
                    results.append((frozenset(c), new))
        return [new for _, new in results[:num_examples]]

    def _position_flips(self, example: JsonDict, out: JsonDict, out_spec: Spec, key: str,
                        vocab: list[str], table: np.ndarray, sign: float,
                        ignore: set[str]) -> list[_Flip]:
        """The best substitution of each flippable token of one gradient field."""
        grad_spec = out_spec[key]
        assert isinstance(grad_spec, types.TokenGradients)
        tok_spec = out_spec[grad_spec.align or ""]
        assert isinstance(tok_spec, types.Tokens)
        field = str(tok_spec.parent)
        text = example.get(field)
        if not isinstance(text, str):
            return []
        tokens = [str(t) for t in out[grad_spec.align or ""]]
        grads = np.asarray(out[key], dtype=np.float64)
        embs = np.asarray(out[grad_spec.grad_for or ""], dtype=np.float64)
        if grads.shape != embs.shape or grads.shape[0] != len(tokens):
            raise ValueError(f"{self.name}: '{key}' has shape {grads.shape}, embeddings "
                             f"{embs.shape}, for {len(tokens)} tokens.")
        if table.shape[1] != embs.shape[1]:
            raise ValueError(f"{self.name}: the embedding table has width {table.shape[1]} but "
                             f"'{grad_spec.grad_for}' has width {embs.shape[1]}.")
        prefix = tok_spec.token_prefix
        surfaces = [common.token_surface(v, prefix) for v in vocab]
        usable = np.array([
            not common.is_special_token(v) and v != tok_spec.mask_token
            and any(ch.isalnum() for ch in s) for v, (s, _) in zip(vocab, surfaces, strict=True)])
        continuation = np.array([c for _, c in surfaces])
        lowered = np.array([s.lower() for s, _ in surfaces])
        spans = common.token_spans(text, tokens, prefix)
        flips = []
        for i, (tok, span) in enumerate(zip(tokens, spans, strict=True)):
            surface, is_cont = common.token_surface(tok, prefix)
            if span is None or tok.lower() in ignore or surface.lower() in ignore:
                continue
            # First-order change of the explained score for every replacement, sign-adjusted.
            delta = sign * (table @ grads[i] - embs[i] @ grads[i])
            ok = usable & (continuation == is_cont)
            ok &= lowered != surface.lower()
            if not ok.any():
                continue
            delta = np.where(ok, delta, np.inf)
            best = int(np.argmin(delta))
            new = surfaces[best][0]
            original = text[span[0]:span[1]]
            flips.append(_Flip(field, span, common.match_case(new, original), float(delta[best])))
        return flips

    @staticmethod
    def _apply(base: JsonDict, example: JsonDict, flips: list[_Flip]) -> JsonDict:
        new = dict(base)
        for field in {f.field for f in flips}:
            edits = {f.span: f.replacement for f in flips if f.field == field}
            new[field] = common.replace_spans(str(example[field]), edits)
        return new
