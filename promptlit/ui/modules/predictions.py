"""What the classification / regression modules share: which models and fields they can show,
the examples they score, and the decision rule the session's threshold sets.

Everything is found by spec, never by model name:

* a *classification field* is a `MulticlassPreds` output; it is *labelled* when its `parent`
  is a dataset field (metrics, confusion matrix and curves need that);
* a *binary field* is a labelled classification field with two classes and a `null_idx` (its
  positive class is the other one): only those take a decision threshold;
* a *regression field* is a `RegressionScore` output (labelled when its `parent` is a dataset
  field).

Example:
    >>> from promptlit.api import types
    >>> spec = {"probas": types.MulticlassPreds(vocab=["a", "b"], null_idx=0, parent="y")}
    >>> class_fields(spec, {"y": types.CategoryLabel()}, labelled=True)
    ['probas']
    >>> binary_fields(spec, {"y": types.CategoryLabel()})
    ['probas']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptlit.api import types
from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.state import SessionState

JsonDict = dict[str, Any]
CLASSIFICATION = "classification"
REGRESSION = "regression"
DEFAULT_THRESHOLD = 0.5


def _specs(wb: Any, model: str, dataset: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    try:
        out = wb.models[model].output_spec()
    except Exception:  # noqa: BLE001 - a model that cannot report specs feeds nothing
        out = {}
    try:
        data = wb.datasets[dataset].spec()
    except Exception:  # noqa: BLE001
        data = {}
    return out, data


def class_fields(out_spec: Mapping[str, Any], data_spec: Mapping[str, Any], *,
                 labelled: bool = False) -> list[str]:
    """`MulticlassPreds` output fields (with ``labelled``: only those whose parent is a
    dataset field)."""
    return [k for k, t in out_spec.items() if isinstance(t, types.MulticlassPreds)
            and (not labelled or t.parent in data_spec)]


def binary_fields(out_spec: Mapping[str, Any], data_spec: Mapping[str, Any]) -> list[str]:
    """Labelled binary `MulticlassPreds` fields with a `null_idx`: those a threshold applies to."""
    return [k for k in class_fields(out_spec, data_spec, labelled=True)
            if len(out_spec[k].vocab) == 2 and out_spec[k].null_idx is not None]


def regression_fields(out_spec: Mapping[str, Any], data_spec: Mapping[str, Any], *,
                      labelled: bool = False) -> list[str]:
    """`RegressionScore` output fields (with ``labelled``: parent is a dataset field)."""
    return [k for k, t in out_spec.items() if isinstance(t, types.RegressionScore)
            and (not labelled or t.parent in data_spec)]


def fields(wb: Any, model: str, dataset: str, kind: str, *, labelled: bool = False
           ) -> list[str]:
    """The `kind` fields of ``model`` on ``dataset``: "classification", "regression",
    "binary", "any" (labelled classification and regression fields: what metrics score) or
    "plot" (any classification or regression field)."""
    out, data = _specs(wb, model, dataset)
    if kind == "any":
        return class_fields(out, data, labelled=True) + regression_fields(out, data,
                                                                         labelled=True)
    if kind == "plot":
        return class_fields(out, data) + regression_fields(out, data)
    if kind == "binary":
        return binary_fields(out, data)
    if kind == CLASSIFICATION:
        return class_fields(out, data, labelled=labelled)
    return regression_fields(out, data, labelled=labelled)


def capable_models(wb: Any, dataset: str, kind: str, *, labelled: bool = False) -> list[str]:
    """Models that run on ``dataset`` and have a ``kind`` field there."""
    try:
        names = wb.compatible_models(dataset) if dataset else []
    except Exception:  # noqa: BLE001 - unknown dataset
        return []
    return [m for m in names if fields(wb, m, dataset, kind, labelled=labelled)]


def models_for(wb: Any, state: SessionState, kind: str, *, labelled: bool = False
               ) -> tuple[list[str], str]:
    """The models to show: the picked model (and the compared one) that can feed the module.

    When neither picked model fits the dataset (e.g. a text classifier picked while a tabular
    dataset is shown), the first capable model stands in, and the note says so.

    Returns:
      ``(model names, note)``; ``([], why)`` when no loaded model fits.
    """
    capable = capable_models(wb, state.dataset, kind, labelled=labelled)
    picked = [m for m in (state.model, state.compare_model) if m]
    chosen = [m for m in picked if m in capable]
    if chosen:
        return chosen, ""
    if not capable:
        what = {"binary": "binary classifier with a null class",
                CLASSIFICATION: "classifier", REGRESSION: "regression model",
                "any": "classifier or regression model with labels",
                "plot": "classifier or regression model"}.get(kind, kind)
        return [], f"No loaded {what} runs on dataset {state.dataset or '—'}."
    return capable[:1], render.md("Showing model **{}**: the picked model{} ({}) cannot run on "
                                  "{}.", capable[0], "s" if len(picked) > 1 else "",
                                  ", ".join(picked) or "none", state.dataset)


def rows(wb: Any, state: SessionState) -> list[tuple[str, JsonDict]]:
    """``(id, example)`` of every example: the dataset's, then the session's added ones."""
    return [(i, ex) for i, ex, _ in base.dataset_rows(wb, state)]


def indexed(pairs: list[tuple[str, JsonDict]]) -> list[JsonDict]:
    """LIT indexed examples ``{"id", "data", "meta"}`` of ``(id, example)`` pairs."""
    return [{"id": i, "data": ex, "meta": {}} for i, ex in pairs]


def threshold_of(wb: Any, state: SessionState, model: str) -> float | None:
    """The session's threshold for ``model`` when it has a binary field, else None."""
    if model not in state.thresholds or not fields(wb, model, state.dataset, "binary"):
        return None
    return float(state.thresholds[model])


def decision_config(wb: Any, state: SessionState, model: str) -> JsonDict:
    """The components' config for ``model``: ``{"threshold": t}`` when the session set one for
    its binary field (components apply it only to fields it fits), else ``{}`` (argmax)."""
    t = threshold_of(wb, state, model)
    return {} if t is None else {"threshold": t}


def positive_class(spec: types.MulticlassPreds) -> str:
    """The positive class of a binary field with `null_idx` (the other class)."""
    assert spec.null_idx is not None, "positive_class needs a field with a null_idx"
    return spec.vocab[1 - int(spec.null_idx)]


def fmt(value: Any, digits: int = 4) -> Any:
    """Rounds floats for tables (other values as they are)."""
    if isinstance(value, float):
        return round(value, digits)
    return value
