"""Base classes of LIT-style components: interpreters, metrics, generators, component groups.

A component declares what it can work on through specs (`is_compatible(model, dataset)`), what
options it takes (`config_spec()`) and what it returns (`meta_spec()`). Models and datasets are
duck-typed: a model has `input_spec()`, `output_spec()` and `predict(inputs)`; a dataset has
`spec()` and `examples`.

Example (a metric computing exact-match accuracy of generated text):
    >>> from promptlit.api import types
    >>> class ExactMatch(SimpleMetrics):
    ...     def is_field_compatible(self, pred_spec, parent_spec):
    ...         return isinstance(pred_spec, types.GeneratedText) and isinstance(
    ...             parent_spec, types.TextSegment)
    ...     def compute(self, labels, preds, label_spec, pred_spec, config=None):
    ...         return {"exact_match": sum(l == p for l, p in zip(labels, preds)) / len(labels)}
    >>> ExactMatch().compute(["a", "b"], ["a", "c"], types.TextSegment(), types.GeneratedText())
    {'exact_match': 0.5}
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.types import JsonDict, Spec
from promptlit.lib import utils


def _output_spec(model: Any) -> Spec:
    return dict(model.output_spec())


class Interpreter(abc.ABC):  # noqa: B024 - abstract by convention; every method has a default
    """Base class of interpreters: anything that runs on (examples, model, dataset).

    Subclasses override `run` (and usually `is_compatible`, `config_spec`, `meta_spec`).
    """

    _name: str | None = None

    @property
    def name(self) -> str:
        """Display name; defaults to the class name."""
        return self._name or type(self).__name__

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def description(self) -> str:
        """One paragraph for the UI; defaults to the class docstring."""
        return inspect.getdoc(self) or ""

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> Any:
        """Runs the interpreter on `inputs`; `model_outputs` (if given) are `model.predict(inputs)`."""
        raise NotImplementedError(f"{type(self).__name__} must implement run().")

    def run_with_metadata(
        self,
        indexed_inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> Any:
        """As `run`, on LIT's indexed inputs `{"id": ..., "data": example, "meta": ...}`."""
        inputs = [ex["data"] for ex in indexed_inputs]
        return self.run(inputs, model, dataset, model_outputs=model_outputs, config=config)

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """Whether this component can run on `model` and `dataset` (True unless overridden)."""
        del model, dataset
        return True

    def config_spec(self) -> Spec:
        """Options the user can set (rendered as a form); field name -> LitType."""
        return {}

    def meta_spec(self) -> Spec:
        """What `run` returns, per output field; field name -> LitType."""
        return {}


class Metrics(Interpreter):
    """Base class of metrics: scores a model's predictions against the dataset's labels.

    Prediction fields are paired with label fields through their `parent=` attribute: output field
    `p` with `parent="label"` is scored against dataset field `label` when
    `is_field_compatible(output_spec[p], dataset_spec["label"])`.
    """

    @abc.abstractmethod
    def is_field_compatible(
        self, pred_spec: types.LitType, parent_spec: types.LitType | None
    ) -> bool:
        """Whether a prediction field of type `pred_spec` can be scored against `parent_spec`."""

    @abc.abstractmethod
    def compute(
        self,
        labels: Sequence[Any],
        preds: Sequence[Any],
        label_spec: types.LitType,
        pred_spec: types.LitType,
        config: JsonDict | None = None,
    ) -> dict[str, float]:
        """Metric name -> value over all (label, pred) pairs."""

    def compute_with_metadata(
        self,
        labels: Sequence[Any],
        preds: Sequence[Any],
        label_spec: types.LitType,
        pred_spec: types.LitType,
        indices: Sequence[str | None],
        metas: Sequence[JsonDict],
        config: JsonDict | None = None,
    ) -> dict[str, float]:
        """As `compute`, with example ids (None: an input without one) and metadata (for metrics
        that need them)."""
        del indices, metas
        return self.compute(labels, preds, label_spec, pred_spec, config)

    def field_pairs(self, model: Any, dataset: Any) -> dict[str, str]:
        """Prediction field -> label field, for every compatible pair (see class docstring)."""
        data_spec = dataset.spec()
        pairs = {}
        for pred_key, pred_spec in _output_spec(model).items():
            parent = getattr(pred_spec, "parent", None)
            if parent is None or parent not in data_spec:
                continue
            if self.is_field_compatible(pred_spec, data_spec[parent]):
                pairs[pred_key] = parent
        return pairs

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model has at least one prediction field this metric can score."""
        return bool(self.field_pairs(model, dataset))

    def meta_spec(self) -> Spec:
        """Metric name -> MetricResult; subclasses list their metrics here."""
        return {}

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[JsonDict]:
        """Scores every compatible (prediction, label) field pair.

        Examples without a label (missing or None) are skipped for that pair; pairs with no
        labelled example are left out. Returns, as LIT does,
        `[{"pred_key": ..., "label_key": ..., "metrics": {name: value}}, ...]`.
        """
        indexed = [{"id": utils.example_id(ex), "data": ex, "meta": {}} for ex in inputs]
        return self.run_with_metadata(indexed, model, dataset, model_outputs, config)

    def run_with_metadata(
        self,
        indexed_inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[JsonDict]:
        """As `run`, on indexed inputs `{"id", "data", "meta"}`."""
        inputs = [ex["data"] for ex in indexed_inputs]
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        data_spec, out_spec = dataset.spec(), _output_spec(model)
        results = []
        for pred_key, label_key in self.field_pairs(model, dataset).items():
            rows = [
                (ie, out[pred_key])
                for ie, out in zip(indexed_inputs, model_outputs, strict=True)
                if ie["data"].get(label_key) is not None and out.get(pred_key) is not None
            ]
            if not rows:
                continue
            metrics = self.compute_with_metadata(
                [ie["data"][label_key] for ie, _ in rows],
                [pred for _, pred in rows],
                data_spec[label_key],
                out_spec[pred_key],
                [ie.get("id") for ie, _ in rows],
                [ie.get("meta", {}) for ie, _ in rows],
                config,
            )
            results.append({"pred_key": pred_key, "label_key": label_key, "metrics": metrics})
        return results


class SimpleMetrics(Metrics):
    """Metrics computed from (labels, preds) alone; subclasses implement `compute`."""


class ClassificationMetrics(SimpleMetrics):
    """Base of metrics on MulticlassPreds scored against a CategoryLabel.

    `compute` turns probabilities into predicted labels (argmax, or `threshold` on the positive
    class for binary problems with `null_idx`) and calls `compute_labels`.
    """

    def is_field_compatible(
        self, pred_spec: types.LitType, parent_spec: types.LitType | None
    ) -> bool:
        """MulticlassPreds against a CategoryLabel."""
        return isinstance(pred_spec, types.MulticlassPreds) and isinstance(
            parent_spec, types.CategoryLabel
        )

    @staticmethod
    def predicted_labels(
        preds: Sequence[Any], pred_spec: types.MulticlassPreds, threshold: float | None = None
    ) -> list[str]:
        """The predicted class name of each `<float>[num_labels]` prediction."""
        vocab = list(pred_spec.vocab)
        threshold = pred_spec.threshold if threshold is None else threshold
        labels = []
        for p in preds:
            scores = np.asarray(p, dtype=float)
            if threshold is not None and pred_spec.null_idx is not None and len(vocab) == 2:
                positive = 1 - pred_spec.null_idx
                idx = positive if scores[positive] >= threshold else pred_spec.null_idx
            else:
                idx = int(np.argmax(scores))
            labels.append(vocab[idx])
        return labels

    def compute(
        self,
        labels: Sequence[Any],
        preds: Sequence[Any],
        label_spec: types.LitType,
        pred_spec: types.LitType,
        config: JsonDict | None = None,
    ) -> dict[str, float]:
        """Converts probabilities to labels, then `compute_labels`."""
        assert isinstance(pred_spec, types.MulticlassPreds)
        threshold = (config or {}).get("threshold")
        predicted = self.predicted_labels(preds, pred_spec, threshold)
        return self.compute_labels(list(labels), predicted, pred_spec)

    @abc.abstractmethod
    def compute_labels(
        self, labels: list[str], predicted: list[str], pred_spec: types.MulticlassPreds
    ) -> dict[str, float]:
        """Metric name -> value from true and predicted class names."""


class Generator(Interpreter):
    """Base class of counterfactual generators: new examples derived from each input."""

    @abc.abstractmethod
    def generate(
        self, example: JsonDict, model: Any, dataset: Any, config: JsonDict | None = None
    ) -> list[JsonDict]:
        """New examples derived from `example` (possibly none)."""

    def generate_all(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        config: JsonDict | None = None,
    ) -> list[list[JsonDict]]:
        """`generate` for each input, in order."""
        return [self.generate(ex, model, dataset, config) for ex in inputs]

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[list[JsonDict]]:
        """Same as `generate_all` (model outputs are not used)."""
        del model_outputs
        return self.generate_all(inputs, model, dataset, config)


class ComponentGroup(Interpreter):
    """Several components run as one; results keyed by component name.

    Only components compatible with the (model, dataset) pair are run. `meta_spec` prefixes each
    component's fields with its name: `"<name>: <field>"`.
    """

    def __init__(self, subcomponents: Mapping[str, Interpreter]) -> None:
        self._subcomponents = dict(subcomponents)

    @property
    def subcomponents(self) -> dict[str, Interpreter]:
        """Component name -> component."""
        return dict(self._subcomponents)

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True if any sub-component is compatible."""
        return any(c.is_compatible(model, dataset) for c in self._subcomponents.values())

    def meta_spec(self) -> Spec:
        """Union of the sub-components' meta specs, keys prefixed by component name."""
        return {
            f"{name}: {key}": t
            for name, c in self._subcomponents.items()
            for key, t in c.meta_spec().items()
        }

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> dict[str, Any]:
        """Component name -> that component's `run` result."""
        indexed = [{"id": utils.example_id(ex), "data": ex, "meta": {}} for ex in inputs]
        return self.run_with_metadata(indexed, model, dataset, model_outputs, config)

    def run_with_metadata(
        self,
        indexed_inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> dict[str, Any]:
        """Component name -> that component's `run_with_metadata` result."""
        if model_outputs is None:
            model_outputs = list(model.predict([ex["data"] for ex in indexed_inputs]))
        return {
            name: c.run_with_metadata(indexed_inputs, model, dataset, model_outputs, config)
            for name, c in self._subcomponents.items()
            if c.is_compatible(model, dataset)
        }
