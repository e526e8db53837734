"""scikit-learn estimators on tabular data as LIT models: one `Scalar` input per feature.

`SklearnClassifier` wraps any fitted estimator with `predict_proba` (a `Pipeline` too) and returns
`{"probas": <float>[num_labels]}`; `SklearnRegressor` wraps any fitted estimator with `predict`
and returns `{"score": float}`. Inputs are validated at the boundary: a missing feature, a value
that is not a finite number, or an unknown label names the field, the example index and the fix.

Example:
    >>> from sklearn.linear_model import LogisticRegression
    >>> est = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> clf = SklearnClassifier(est, ["x"], "label", ["low", "high"])
    >>> out = list(clf.predict([{"x": 3.0}]))[0]
    >>> out["probas"].shape, bool(out["probas"][1] > 0.5)
    ((2,), True)
    >>> sorted(clf.output_spec())
    ['probas']
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.model import BatchedModel
from promptlit.models import local_presets

JsonDict = types.JsonDict
ESTIMATOR_FILE = "estimator.joblib"


def _check_names(feature_names: Sequence[str], target_field: str) -> list[str]:
    names = list(feature_names)
    if not names:
        raise ValueError("feature_names is empty; give the names of the estimator's input "
                         "columns, in the order it was fitted on.")
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise TypeError(f"feature_names must be non-empty strings; got {bad!r}.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"feature_names has duplicates {dupes}; every feature needs its own name.")
    if target_field in names:
        raise ValueError(f"the label/target field {target_field!r} is also a feature name; "
                         "rename one of them.")
    return names


def _check_n_features(estimator: Any, names: list[str]) -> None:
    n = getattr(estimator, "n_features_in_", None)
    if n is not None and n != len(names):
        raise ValueError(f"the estimator was fitted on {n} features but {len(names)} "
                         f"feature_names were given ({names[:5]}...).")
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and list(fitted) != names:
        raise ValueError(f"feature_names {names} differ from the names the estimator was fitted "
                         f"with {list(fitted)}; pass them in the same order.")


def _feature_matrix(model: _SklearnModel, inputs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """`<float64>[num_examples, num_features]` from a batch of examples, validated."""
    x = np.empty((len(inputs), len(model.feature_names)), dtype=np.float64)
    for i, ex in enumerate(inputs):
        if not isinstance(ex, Mapping):
            raise TypeError(f"{model.name}: example {i} is a {type(ex).__name__}, not a dict of "
                            f"feature name -> number.")
        for j, name in enumerate(model.feature_names):
            if name not in ex or ex[name] is None:
                raise ValueError(
                    f"{model.name}: example {i} has no value for feature {name!r}; every example "
                    f"needs all {len(model.feature_names)} features "
                    f"({', '.join(model.feature_names[:6])}{', ...' if len(model.feature_names) > 6 else ''}).")
            value = ex[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{model.name}: example {i}, feature {name!r}: expected a number, "
                                f"got {type(value).__name__} {value!r}. Fix the value in the data.")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{model.name}: example {i}, feature {name!r}: {value} is not a "
                                 "finite number; impute or drop the example.")
            x[i, j] = value
    return x


class _SklearnModel(BatchedModel):
    """Shared input handling of the scikit-learn adapters."""

    estimator: Any
    feature_names: list[str]
    feature_ranges: dict[str, tuple[float, float]]
    name: str
    metadata: JsonDict

    def _features_spec(self) -> types.Spec:
        spec: types.Spec = {}
        for f in self.feature_names:
            lo, hi = self.feature_ranges.get(f, (0.0, 1.0))
            step = (hi - lo) / 100 if hi > lo else 0.01
            spec[f] = types.Scalar(min_val=lo, max_val=hi, step=step, default=lo)
        return spec

    def max_minibatch_size(self) -> int:
        """scikit-learn is vectorised: large batches are cheap."""
        return 1024

    @property
    def supports_concurrent_predictions(self) -> bool:
        """A fitted estimator's predict methods do not mutate it."""
        return True

    def _matrix(self, inputs: Sequence[Mapping[str, Any]]) -> Any:
        x = _feature_matrix(self, inputs)
        if getattr(self.estimator, "feature_names_in_", None) is not None:
            import pandas as pd

            return pd.DataFrame(x, columns=self.feature_names)
        return x

    def cache_config(self) -> JsonDict:
        """Identifies the estimator for prediction caches (class, parameters, features)."""
        return {"estimator": repr(self.estimator), "features": self.feature_names,
                "metadata": self.metadata}

    def _preset_config(self) -> JsonDict:
        """The subclass's own constructor arguments (label / target fields) for its preset."""
        raise NotImplementedError

    def save_to_preset(self, path: str | os.PathLike[str]) -> Path:
        """Writes the estimator (joblib) and `promptlit_model.json` to directory `path`."""
        import joblib

        path = Path(path)
        local_presets.write_marker(path, type(self).__name__, {
            "feature_names": self.feature_names, **self._preset_config(), "name": self.name,
            "feature_ranges": {k: list(v) for k, v in self.feature_ranges.items()},
            "estimator_file": ESTIMATOR_FILE}, self.metadata)
        joblib.dump(self.estimator, path / ESTIMATOR_FILE)
        return path

    @classmethod
    def from_preset(cls, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Loads a directory written by `save_to_preset` (a trusted, own artefact: joblib)."""
        doc = local_presets.read_marker(path)
        config = dict(doc["config"])
        estimator = _load_estimator(path, config.pop("estimator_file", ESTIMATOR_FILE))
        config.update(kwargs)
        make: Callable[..., _SklearnModel] = cls  # a subclass, whose __init__ takes these
        return make(estimator, metadata=doc["metadata"], **config)


def _ranges(feature_ranges: Mapping[str, Sequence[float]] | None, names: list[str]
            ) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for k, v in (feature_ranges or {}).items():
        if k not in names:
            raise ValueError(f"feature_ranges names {k!r}, which is not a feature ({names}).")
        lo, hi = (float(x) for x in v)
        out[k] = (lo, hi)
    return out


class SklearnClassifier(_SklearnModel):
    """A fitted scikit-learn classifier (anything with `predict_proba`) as a LIT model.

    Args:
      estimator: the fitted estimator or Pipeline; `predict_proba` columns follow
        `estimator.classes_`.
      feature_names: the input columns, in the order the estimator was fitted on; each becomes a
        `Scalar` input field.
      label_field: the dataset field holding the true label (optional input, used by metrics).
      labels: display names of `estimator.classes_`, in that order (e.g. `["malignant",
        "benign"]` for classes `[0, 1]`); default: `str(c)` for each class.
      feature_ranges: optional `{feature: (min, max)}` for the UI's sliders.
      name: shown in errors and descriptions.
      metadata: free-form facts saved with the preset (training data, held-out accuracy).
      null_idx: the index of the "negative" class (LIT's `MulticlassPreds.null_idx`): with it,
        metrics report precision / recall / F1 of the other classes, and a binary classifier
        gets a decision threshold on its positive class (e.g. `null_idx=1` for
        `["malignant", "benign"]` makes "malignant" the positive class).

    Output spec: `{"probas": MulticlassPreds(vocab=labels, parent=label_field,
    null_idx=null_idx)}`, values `<float32>[num_labels]` summing to 1.
    """

    def __init__(self, estimator: Any, feature_names: Sequence[str], label_field: str,
                 labels: Sequence[str] | None = None, *,
                 feature_ranges: Mapping[str, Sequence[float]] | None = None,
                 name: str = "sklearn_classifier", metadata: JsonDict | None = None,
                 null_idx: int | None = None) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"{type(estimator).__name__} has no predict_proba; use a probabilistic "
                            "classifier (e.g. LogisticRegression) or wrap it in "
                            "CalibratedClassifierCV.")
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise ValueError(f"{type(estimator).__name__} is not fitted (no classes_); call "
                             "fit() before wrapping it.")
        self.estimator = estimator
        self.feature_names = _check_names(feature_names, label_field)
        _check_n_features(estimator, self.feature_names)
        self.label_field = label_field
        self.labels = [str(c) for c in classes] if labels is None else [str(x) for x in labels]
        if len(self.labels) != len(classes):
            raise ValueError(f"{len(self.labels)} labels {self.labels} given for "
                             f"{len(classes)} classes {list(classes)}; give one name per class, "
                             "in the order of estimator.classes_.")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be unique, got {self.labels}.")
        if null_idx is not None and (isinstance(null_idx, bool) or not isinstance(null_idx, int)
                                     or not 0 <= null_idx < len(self.labels)):
            raise ValueError(f"null_idx must be a class index 0..{len(self.labels) - 1} "
                             f"(of {self.labels}) or None; got {null_idx!r}.")
        self.null_idx = null_idx
        self.feature_ranges = _ranges(feature_ranges, self.feature_names)
        self.name = name
        self.metadata = dict(metadata or {})

    def description(self) -> str:
        """Estimator class and labels."""
        return (f"{self.name}: scikit-learn {type(self.estimator).__name__} over "
                f"{len(self.feature_names)} features -> {self.labels}")

    def input_spec(self) -> types.Spec:
        """One Scalar per feature, plus the optional label."""
        spec = self._features_spec()
        spec[self.label_field] = types.CategoryLabel(vocab=list(self.labels), required=False)
        return spec

    def output_spec(self) -> types.Spec:
        """`{"probas": MulticlassPreds(vocab=labels, parent=label_field, null_idx=null_idx)}`."""
        return {"probas": types.MulticlassPreds(vocab=list(self.labels), parent=self.label_field,
                                                null_idx=self.null_idx)}

    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """`{"probas": <float32>[num_labels]}` per example (the estimator's predict_proba)."""
        for i, ex in enumerate(inputs):
            label = ex.get(self.label_field) if isinstance(ex, Mapping) else None
            if label is not None and label not in self.labels:
                raise ValueError(f"{self.name}: example {i}, field {self.label_field!r}: "
                                 f"{label!r} is not one of the labels {self.labels}.")
        if not inputs:
            return []
        probas = np.asarray(self.estimator.predict_proba(self._matrix(inputs)), dtype=np.float32)
        return [{"probas": p} for p in probas]

    def _preset_config(self) -> JsonDict:
        return {"label_field": self.label_field, "labels": self.labels,
                **({"null_idx": self.null_idx} if self.null_idx is not None else {})}


class SklearnRegressor(_SklearnModel):
    """A fitted scikit-learn regressor (anything with `predict`) as a LIT model.

    Args:
      estimator: the fitted estimator or Pipeline.
      feature_names: the input columns in fitting order; each becomes a `Scalar` input.
      target_field: the dataset field holding the true value (optional input, for metrics).
      feature_ranges, name, metadata: as for `SklearnClassifier`.

    Output spec: `{"score": RegressionScore(parent=target_field)}`, one float per example.
    """

    def __init__(self, estimator: Any, feature_names: Sequence[str], target_field: str, *,
                 feature_ranges: Mapping[str, Sequence[float]] | None = None,
                 name: str = "sklearn_regressor", metadata: JsonDict | None = None) -> None:
        if not hasattr(estimator, "predict"):
            raise TypeError(f"{type(estimator).__name__} has no predict method.")
        self.estimator = estimator
        self.feature_names = _check_names(feature_names, target_field)
        _check_n_features(estimator, self.feature_names)
        self.target_field = target_field
        self.feature_ranges = _ranges(feature_ranges, self.feature_names)
        self.name = name
        self.metadata = dict(metadata or {})

    def description(self) -> str:
        """Estimator class and target."""
        return (f"{self.name}: scikit-learn {type(self.estimator).__name__} over "
                f"{len(self.feature_names)} features -> {self.target_field}")

    def input_spec(self) -> types.Spec:
        """One Scalar per feature, plus the optional target."""
        spec = self._features_spec()
        spec[self.target_field] = types.Scalar(required=False)
        return spec

    def output_spec(self) -> types.Spec:
        """`{"score": RegressionScore(parent=target_field)}`."""
        return {"score": types.RegressionScore(parent=self.target_field)}

    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """`{"score": float}` per example (the estimator's predict)."""
        if not inputs:
            return []
        scores = np.asarray(self.estimator.predict(self._matrix(inputs)), dtype=np.float64)
        return [{"score": float(s)} for s in scores.reshape(len(inputs), -1)[:, 0]]

    def _preset_config(self) -> JsonDict:
        return {"target_field": self.target_field}


def _load_estimator(path: str | os.PathLike[str], file: str) -> Any:
    import joblib

    target = Path(path) / file
    if not target.is_file():
        raise FileNotFoundError(f"{target} is missing; the preset at {path} is incomplete "
                                "(re-run save_to_preset).")
    return joblib.load(target)
