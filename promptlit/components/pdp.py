"""Partial dependence: how a model's predictions change as one input feature is varied.

As LIT's `PdpInterpreter` (`lit_nlp.components.pdp`): every selected example (or, with no
selection, the whole dataset) is copied with the feature set to each value of a grid, the model
predicts the edited copies, and the mean prediction per grid value is returned for every
`MulticlassPreds` (mean class scores `<float>[num_labels]`) and `RegressionScore` (mean score)
output field. The grid of a `Scalar` feature is 10 evenly spaced values from the dataset's
minimum to maximum (or over config ``range``); an `Integer` grid is rounded and deduplicated; a
`CategoryLabel` feature uses its vocabulary.

Example:
    >>> partial_dependence_grid([1.0, 3.0, 2.0], types.Scalar(), num_points=3).tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.lib.utils import find_spec_keys

__all__ = ["PdpInterpreter", "partial_dependence", "partial_dependence_grid"]

_SUPPORTED = (types.MulticlassPreds, types.RegressionScore)


def partial_dependence_grid(values: Sequence[Any], spec: types.LitType, num_points: int = 10,
                            value_range: Sequence[float] | None = None) -> np.ndarray | list[str]:
    """The values to try for a feature with spec `spec`, observed `values` in the dataset.

    Raises:
        ValueError: a Scalar feature with no numeric value and no range, or a bad range.
        TypeError: a feature that is neither Scalar nor CategoryLabel.
    """
    if isinstance(spec, types.CategoryLabel):
        return list(spec.vocab or sorted({str(v) for v in values if v is not None}))
    if not isinstance(spec, types.Scalar):
        raise TypeError(f"Partial dependence needs a Scalar or CategoryLabel feature; got "
                        f"{type(spec).__name__}.")
    if value_range is not None and len(value_range) > 0:
        if len(value_range) != 2 or not value_range[0] <= value_range[1]:
            raise ValueError(f"config 'range' must be [min, max] with min <= max; got "
                             f"{list(value_range)!r}.")
        lo, hi = float(value_range[0]), float(value_range[1])
    else:
        nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if not nums:
            raise ValueError("The feature has no numeric value in the dataset; give config "
                             "'range': [min, max].")
        lo, hi = min(nums), max(nums)
    grid = np.linspace(lo, hi, int(num_points))
    if isinstance(spec, types.Integer):
        grid = np.unique(np.round(grid).astype(np.int64))
    return grid


def partial_dependence(model: Any, examples: Sequence[JsonDict], feature: str,
                       grid: Sequence[Any] | np.ndarray) -> dict[str, dict[Any, Any]]:
    """Mean prediction per grid value of `feature`, for every supported output field.

    Args:
        model: the model (its `predict` is called once per grid value on edited copies).
        examples: the examples to edit (not modified).
        feature: the input field to vary.
        grid: the values to set it to.

    Returns:
        ``{pred_key: {value: mean}}``: a float for RegressionScore, a list of mean class scores
        `<float>[num_labels]` for MulticlassPreds. Values are Python numbers / strings.
    """
    out_spec = model.output_spec()
    keys = find_spec_keys(out_spec, _SUPPORTED)
    result: dict[str, dict[Any, Any]] = {k: {} for k in keys}
    if not examples:
        raise ValueError("Partial dependence needs at least one example.")
    for value in grid:
        value = value.item() if isinstance(value, np.generic) else value
        outputs = list(model.predict([{**ex, feature: value} for ex in examples]))
        for key in keys:
            preds = np.asarray([o[key] for o in outputs], dtype=np.float64)
            mean = preds.mean(axis=0)
            result[key][value] = float(mean) if isinstance(
                out_spec[key], types.RegressionScore) else mean.tolist()
    return result


class PdpInterpreter(Interpreter):
    """Partial dependence plots for one Scalar (or CategoryLabel) input feature.

    Config: ``feature`` (required: a model input field present in the dataset), ``range``
    (optional ``[min, max]`` for a Scalar feature), ``num_points`` (default 10).
    `run` returns ``{pred_key: {feature value: mean prediction}}`` (see `partial_dependence`).
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """A MulticlassPreds / RegressionScore output and a Scalar or CategoryLabel input."""
        del dataset
        return bool(find_spec_keys(model.output_spec(), _SUPPORTED)) and bool(
            find_spec_keys(model.input_spec(), (types.Scalar, types.CategoryLabel)))

    def config_spec(self) -> Spec:
        """The feature to vary and the grid size."""
        return {"feature": types.SingleFieldMatcher(spec="input",
                                                    types=["Scalar", "CategoryLabel"]),
                "num_points": types.Integer(min_val=2, max_val=100, default=10, required=False)}

    def run(self, inputs: Sequence[JsonDict], model: Any, dataset: Any,
            model_outputs: Sequence[JsonDict] | None = None,
            config: JsonDict | None = None) -> dict[str, dict[Any, Any]]:
        """See the class docstring; with no inputs, the whole dataset is used (as LIT).

        Raises:
            KeyError: no ``feature`` in config, or it is not a dataset field.
        """
        del model_outputs
        config = dict(config or {})
        feature = config.get("feature")
        if not feature:
            raise KeyError("PdpInterpreter needs config 'feature': the input field to vary.")
        data_spec = dataset.spec()
        spec = data_spec.get(feature) or model.input_spec().get(feature)
        if spec is None:
            raise KeyError(f"config 'feature'={feature!r} is not a dataset or model input field; "
                           f"dataset fields: {sorted(data_spec)}.")
        grid = partial_dependence_grid([ex.get(feature) for ex in dataset.examples], spec,
                                       int(config.get("num_points", 10)), config.get("range"))
        return partial_dependence(model, list(inputs) or list(dataset.examples), feature, grid)
