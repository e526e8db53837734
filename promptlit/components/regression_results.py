"""Per-example regression results: score, error and squared error against the label.

As LIT's `RegressionInterpreter` (`lit_nlp.components.regression_results`): for every
`RegressionScore` output field, each example gets `dtypes.RegressionResult(score, error,
squared_error)` with ``error = score - label`` (the label is the dataset field named by the
spec's `parent`); error fields are None when the example has no label.

Example:
    >>> [r.error for r in regression_results([2.5, 1.0], [2.0, None])]
    [0.5, None]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptlit.api import dtypes, types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.lib.utils import find_spec_keys

__all__ = ["RegressionInterpreter", "RegressionResults", "regression_results"]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got a bool {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected a number, got {type(value).__name__} {value!r}.") from e


def regression_results(
    scores: Sequence[float], labels: Sequence[float | None] | None = None
) -> list[dtypes.RegressionResult]:
    """One `RegressionResult(score, error, squared_error)` per score `<float>[num_examples]`.

    Args:
        scores: the predictions.
        labels: the true values (None entries, or no labels at all: errors are None).

    Raises:
        ValueError: lengths differ, or a score / label is not a number.
    """
    if labels is not None and len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} predictions; pass one each.")
    results = []
    for i, s in enumerate(scores):
        score = _number(s, f"prediction {i}")
        label = None if labels is None else labels[i]
        if label is None:
            results.append(dtypes.RegressionResult(score=score))
            continue
        error = score - _number(label, f"label {i}")
        results.append(dtypes.RegressionResult(score=score, error=error,
                                               squared_error=error * error))
    return results


class RegressionInterpreter(Interpreter):
    """Score, error and squared error for every example and `RegressionScore` field.

    `run` returns, per input, ``{pred_key: dtypes.RegressionResult}``.
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model outputs a RegressionScore field."""
        del dataset
        return bool(find_spec_keys(model.output_spec(), types.RegressionScore))

    def meta_spec(self) -> Spec:
        """Nothing fixed: one result per RegressionScore field, keyed by the field name."""
        return {}

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[dict[str, dtypes.RegressionResult]]:
        """`[{pred_key: RegressionResult}]`, one dict per input, in order."""
        del dataset, config
        out_spec = model.output_spec()
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        if len(model_outputs) != len(inputs):
            raise ValueError(f"{len(model_outputs)} model outputs for {len(inputs)} inputs.")
        results: list[dict[str, dtypes.RegressionResult]] = [{} for _ in inputs]
        for key in find_spec_keys(out_spec, types.RegressionScore):
            parent = out_spec[key].parent
            labels = [ex.get(parent) if parent else None for ex in inputs]
            for i, res in enumerate(regression_results([o[key] for o in model_outputs], labels)):
                results[i][key] = res
        return results


RegressionResults = RegressionInterpreter
"""Alias: the interpreter under the name of its output."""
