"""Shared spec plumbing for the text-classifier interpreters and generators (private).

Everything here finds fields by type, following LIT's glue-model conventions:

* input spec: TextSegment text field(s), an optional CategoryLabel label, an optional
  TokenEmbeddings field (e.g. "input_embs": when an example carries it, the model runs on those
  embeddings instead of embedding its text) and an optional CategoryLabel gradient target
  (e.g. "grad_class", named by the gradient field's `grad_target_field_key`);
* output spec: a MulticlassPreds or RegressionScore prediction, Tokens(parent=<text field>),
  TokenEmbeddings and TokenGradients(align=<tokens>, grad_for=<embeddings>,
  grad_target_field_key=<gradient target input>).

Used by `gradient_maps`, `lime` and `generators.{ablation_flip, hotflip}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.model import Model
from promptlit.api.types import JsonDict, Spec
from promptlit.lib import utils

PRED_TYPES = (types.MulticlassPreds, types.RegressionScore)
_NON_SPACE = re.compile(r"\S+")
# Tokens that are never text: [CLS], [SEP], [PAD], <s>, </s>, <pad>, <unk>, <|endoftext|>, ...
_SPECIAL = re.compile(r"^(\[[^\]\s]+\]|<[^>\s]+>)$")
# Word-start / continuation markers of common subword tokenizers.
_WORD_START_MARKERS = ("▁", "Ġ")


def inner_model(model: Any) -> Any:
    """The innermost model behind any wrappers (caching, ...)."""
    unwrap = getattr(model, "unwrap", None)
    return unwrap() if callable(unwrap) else model


def specs(model: Any) -> tuple[Spec, Spec]:
    """`(input_spec, output_spec)` of a model, or two empty specs if it cannot report them."""
    try:
        return dict(model.input_spec()), dict(model.output_spec())
    except Exception:  # noqa: BLE001 - a model that cannot report specs is not compatible
        return {}, {}


def dataset_spec(dataset: Any, model: Any) -> Spec:
    """The dataset's spec, or the model's input spec when there is no dataset."""
    if dataset is not None and callable(getattr(dataset, "spec", None)):
        return dict(dataset.spec())
    return specs(model)[0]


def prediction_key_config(verb: str) -> types.SingleFieldMatcher:
    """The ``prediction_key`` config entry: which MulticlassPreds / RegressionScore output to
    `verb` ("explain", "flip"); empty means the first one."""
    return types.SingleFieldMatcher(spec="output", types=["MulticlassPreds", "RegressionScore"],
                                    description=f"Prediction to {verb} (default: the first).")


def regression_threshold_config() -> types.Scalar:
    """The ``regression_threshold`` config entry: a regressor's decision is score > threshold
    (what a counterfactual must flip)."""
    return types.Scalar(min_val=-1e6, max_val=1e6, default=0.0,
                        description="A regression decision is score > threshold.")


def prediction_keys(output_spec: Mapping[str, types.LitType]) -> list[str]:
    """Output fields holding a classification (MulticlassPreds) or regression prediction."""
    return utils.find_spec_keys(output_spec, PRED_TYPES)


def pick_prediction_key(output_spec: Mapping[str, types.LitType], requested: Any,
                        who: str) -> str:
    """The prediction field to explain or flip: `requested`, else the first one in the spec.

    Raises:
        ValueError: the model has no prediction field, or `requested` is not one.
    """
    keys = prediction_keys(output_spec)
    if not keys:
        raise ValueError(
            f"{who}: the model's output spec has no MulticlassPreds or RegressionScore field "
            f"(fields: {sorted(output_spec)}). Fix: use a classifier or regressor whose "
            "output_spec declares one.")
    if requested in (None, ""):
        return keys[0]
    if requested not in keys:
        raise ValueError(f"{who}: prediction field {requested!r} is not one of the model's "
                         f"MulticlassPreds/RegressionScore fields {keys}.")
    return str(requested)


def text_fields(model: Any, dataset: Any, requested: Any = None) -> list[str]:
    """TextSegment fields the model reads and the dataset has; `requested` (a list) filters them.

    With `model=None`, the dataset's TextSegment fields; with `dataset=None`, the model's.

    Raises:
        ValueError: a requested field is not such a field.
    """
    in_spec = specs(model)[0] if model is not None else {}
    data = dataset_spec(dataset, model)
    if model is None:  # e.g. a generator used on a dataset alone
        in_spec = data
    keys = [k for k in utils.find_spec_keys(in_spec, types.TextSegment)
            if k in data and isinstance(data[k], types.TextSegment)]
    if requested in (None, "", []):
        return keys
    requested = [requested] if isinstance(requested, str) else list(requested)
    unknown = [k for k in requested if k not in keys]
    if unknown:
        raise ValueError(f"fields {unknown} are not text (TextSegment) inputs of both the model "
                         f"and the dataset; choose from {keys}.")
    return [k for k in keys if k in requested]


def strip_model_only_fields(example: Mapping[str, Any], model: Any) -> JsonDict:
    """A copy of `example` without TokenEmbeddings inputs (stale once the text is edited)."""
    in_spec = specs(model)[0]
    drop = set(utils.find_spec_keys(in_spec, types.TokenEmbeddings))
    return {k: v for k, v in example.items() if k not in drop}


def class_index(pred_spec: types.MulticlassPreds, value: Any, who: str) -> int | None:
    """The class index named by `value` (a label, an index, or a numeric string); None if empty.

    Raises:
        ValueError: `value` names no class of `pred_spec.vocab`.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    vocab = list(pred_spec.vocab)
    if isinstance(value, str) and value in vocab:
        return vocab.index(value)
    try:
        idx = int(value)
    except (TypeError, ValueError):
        idx = None
    if idx is None or not -len(vocab) <= idx < len(vocab):
        raise ValueError(f"{who}: class {value!r} is not a label of {vocab} or an index "
                         f"0..{len(vocab) - 1}.")
    return idx % len(vocab)


def predicted_class(pred: Any, pred_spec: types.MulticlassPreds) -> int:
    """Index of the predicted class of `<float>[num_labels]` probabilities.

    Binary models with `null_idx` and `threshold` predict the positive class when its probability
    reaches the threshold (as `ClassificationMetrics.predicted_labels`); otherwise argmax.
    """
    scores = np.asarray(pred, dtype=float)
    if pred_spec.threshold is not None and pred_spec.null_idx is not None and len(scores) == 2:
        positive = 1 - pred_spec.null_idx
        return positive if scores[positive] >= pred_spec.threshold else pred_spec.null_idx
    return int(np.argmax(scores))


def decision(pred: Any, pred_spec: types.LitType, threshold: float) -> int | bool:
    """The discrete decision of a prediction: the class index, or `score > threshold`."""
    if isinstance(pred_spec, types.MulticlassPreds):
        return predicted_class(pred, pred_spec)
    return bool(float(pred) > threshold)


def grad_target_key(in_spec: Mapping[str, types.LitType],
                    grad_spec: types.LitType | None = None) -> str | None:
    """The input field that selects the gradient's target class, if the model has one."""
    key = getattr(grad_spec, "grad_target_field_key", None) if grad_spec is not None else None
    if key is None:
        for t in in_spec.values():
            key = getattr(t, "grad_target_field_key", None) or key
    return key if key in in_spec else None


def with_grad_class(example: Mapping[str, Any], model: Any, pred_spec: types.LitType,
                    class_idx: int | None) -> JsonDict:
    """`example` with every gradient-target input set to class `class_idx` (classification only)."""
    ex = dict(example)
    if class_idx is None or not isinstance(pred_spec, types.MulticlassPreds):
        return ex
    in_spec, out_spec = specs(model)
    for grad in out_spec.values():
        if isinstance(grad, (types.TokenGradients, types.Gradients)):
            key = grad_target_key(in_spec, grad)
            if key is not None:
                ex[key] = pred_spec.vocab[class_idx]
    return ex


##
# Text units: words, or the model's tokens located in the text.


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans `[start, end)` of the whitespace-separated words of `text`."""
    return [m.span() for m in _NON_SPACE.finditer(text)]


def is_special_token(token: str) -> bool:
    """Whether a token is a tokenizer's special token ([CLS], <pad>, ...), never real text."""
    return bool(_SPECIAL.match(token))


def token_surface(token: str, token_prefix: str | None) -> tuple[str, bool]:
    """`(text, is_continuation)` of a subword token: "##ing" -> ("ing", True), "▁the" -> ("the", False)."""
    if token_prefix and token.startswith(token_prefix) and len(token) > len(token_prefix):
        return token[len(token_prefix):], True
    for marker in _WORD_START_MARKERS:
        if token.startswith(marker):
            return token[len(marker):], False
    return token, False


def token_spans(text: str, tokens: Sequence[str], token_prefix: str | None = "##"
                ) -> list[tuple[int, int] | None]:
    """Character span of each model token in `text`, None for tokens not found (e.g. [CLS]).

    Tokens are matched left to right, case-insensitively, after stripping subword markers
    ("##", "▁", "Ġ"); a token that cannot be found after the previous match is given None and
    does not move the cursor, so one unknown token ([UNK]) does not derail the rest.
    """
    lower = text.lower()
    spans: list[tuple[int, int] | None] = []
    pos = 0
    for tok in tokens:
        surface, _ = token_surface(str(tok), token_prefix)
        surface = surface.strip().lower()
        if not surface or is_special_token(str(tok)):
            spans.append(None)
            continue
        start = lower.find(surface, pos)
        if start < 0:
            spans.append(None)
            continue
        spans.append((start, start + len(surface)))
        pos = start + len(surface)
    return spans


def remove_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` without the given spans; whitespace left doubled by a removal is collapsed."""
    out, pos = [], 0
    for start, end in sorted(spans):
        out.append(text[pos:start])
        pos = max(pos, end)
    out.append(text[pos:])
    result = out[0]
    for piece in out[1:]:
        if result and result[-1].isspace() and piece[:1].isspace():
            piece = piece.lstrip()
        result += piece
    return result.strip() if text == text.strip() else result


def replace_spans(text: str, replacements: Mapping[tuple[int, int], str]) -> str:
    """`text` with each span `[start, end)` replaced by its string (spans must not overlap)."""
    out, pos = [], 0
    for (start, end), new in sorted(replacements.items()):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def match_case(replacement: str, original: str) -> str:
    """`replacement` in the case pattern of `original`: "GOOD" -> "BAD", "Good" -> "Bad"."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def has_embedding_table(model: Any) -> bool:
    """Whether the model (behind any wrappers) overrides `Model.get_embedding_table()`."""
    inner = inner_model(model)
    method = getattr(type(inner), "get_embedding_table", None)
    return callable(method) and method is not Model.get_embedding_table
