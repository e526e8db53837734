"""Confusion matrices that remember which examples fall in each cell.

`confusion_matrix` counts (row value, column value) pairs, by default true label × predicted class,
and keeps the ids of the examples in every cell, so that a click on a cell in the UI can select
exactly those examples (`ConfusionMatrix.cell_ids`). `ConfusionMatrixInterpreter` builds one per
`MulticlassPreds` field of a model, with the same decision rule (threshold / margin) as
`MulticlassMetrics`.

Example:
    >>> cm = confusion_matrix(["a", "b", "b"], ["a", "a", "b"], ids=["x", "y", "z"])
    >>> cm.counts.tolist(), cm.cell_ids("b", "a")
    ([[1, 0], [1, 1]], ['y'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components.metrics import applicable_config, as_class_scores, classify
from promptlit.lib.utils import find_spec_keys, indexed

__all__ = ["MISSING", "ConfusionMatrix", "ConfusionMatrixInterpreter", "confusion_matrix"]

MISSING = "(missing)"
"""Row / column name for examples whose value is None."""


@dataclasses.dataclass
class ConfusionMatrix:
    """Counts `<int>[num_rows, num_cols]` of (row value, column value) pairs and each cell's ids.

    Attributes:
        row_labels: the row values (e.g. true labels), in order.
        col_labels: the column values (e.g. predicted classes), in order.
        counts: `<int>[num_rows, num_cols]`; ``counts[i, j]`` examples have row value
            ``row_labels[i]`` and column value ``col_labels[j]``.
        ids: ``ids[i][j]`` the ids of those examples, in input order.
        row_name, col_name: what the rows and columns are (axis titles).
    """

    row_labels: list[str]
    col_labels: list[str]
    counts: np.ndarray
    ids: list[list[list[str]]]
    row_name: str = "label"
    col_name: str = "predicted"

    def cell_ids(self, row: str, col: str) -> list[str]:
        """The ids of the examples in cell (`row`, `col`).

        Raises:
            KeyError: `row` or `col` is not a label of this matrix.
        """
        if row not in self.row_labels:
            raise KeyError(f"{row!r} is not a row of this confusion matrix; rows: "
                           f"{self.row_labels}.")
        if col not in self.col_labels:
            raise KeyError(f"{col!r} is not a column of this confusion matrix; columns: "
                           f"{self.col_labels}.")
        return list(self.ids[self.row_labels.index(row)][self.col_labels.index(col)])

    def to_frame(self) -> pd.DataFrame:
        """The counts as a DataFrame (index: row labels, columns: column labels)."""
        frame = pd.DataFrame(self.counts, index=self.row_labels, columns=self.col_labels)
        frame.index.name, frame.columns.name = self.row_name, self.col_name
        return frame

    def to_json(self) -> JsonDict:
        """A JSON-serializable dict with all fields (counts as nested lists)."""
        return {"row_labels": list(self.row_labels), "col_labels": list(self.col_labels),
                "counts": self.counts.tolist(), "ids": self.ids, "row_name": self.row_name,
                "col_name": self.col_name}


def _ordered_labels(values: Sequence[Any], declared: Sequence[str] | None) -> list[str]:
    """Declared labels first (in order), then other observed values (sorted), MISSING last."""
    labels = list(declared or [])
    seen = {_name(v) for v in values}
    extra = sorted(seen - set(labels) - {MISSING})
    return labels + extra + ([MISSING] if MISSING in seen else [])


def _name(value: Any) -> str:
    return MISSING if value is None else str(value)


def confusion_matrix(
    rows: Sequence[Any],
    cols: Sequence[Any],
    ids: Sequence[str] | None = None,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    row_name: str = "label",
    col_name: str = "predicted",
) -> ConfusionMatrix:
    """Counts of (row value, column value) pairs, with the ids of the examples in each cell.

    Args:
        rows: the row value of each example (e.g. the true label); None counts as `MISSING`.
        cols: the column value of each example (e.g. the predicted class).
        ids: each example's id (default: its position as a string).
        row_labels, col_labels: the rows / columns to show, in order (e.g. the vocabulary);
            observed values not listed are added after them, so no example is lost.
        row_name, col_name: axis titles.

    Raises:
        ValueError: `rows`, `cols` and `ids` have different lengths.
    """
    if len(rows) != len(cols) or (ids is not None and len(ids) != len(rows)):
        raise ValueError(f"confusion_matrix: {len(rows)} row values, {len(cols)} column values"
                         f"{'' if ids is None else f', {len(ids)} ids'}; pass one per example.")
    ids = [str(i) for i in range(len(rows))] if ids is None else [str(i) for i in ids]
    r_labels = _ordered_labels(rows, row_labels)
    c_labels = _ordered_labels(cols, col_labels)
    r_index = {v: i for i, v in enumerate(r_labels)}
    c_index = {v: i for i, v in enumerate(c_labels)}
    counts = np.zeros((len(r_labels), len(c_labels)), dtype=np.int64)
    cells: list[list[list[str]]] = [[[] for _ in c_labels] for _ in r_labels]
    for r, c, ex_id in zip(rows, cols, ids, strict=True):
        i, j = r_index[_name(r)], c_index[_name(c)]
        counts[i, j] += 1
        cells[i][j].append(ex_id)
    return ConfusionMatrix(r_labels, c_labels, counts, cells, row_name, col_name)


class ConfusionMatrixInterpreter(Interpreter):
    """A confusion matrix (true label × predicted class) per `MulticlassPreds` field.

    `run_with_metadata` uses the indexed inputs' ids; `run` uses each example's ``_id`` or its
    content hash (`promptlit.lib.utils.example_id`). Config (optional): ``threshold`` /
    ``margin`` as `MulticlassMetrics`; ``row_field``: a dataset field to use for the rows
    instead of the label (e.g. a CategoryLabel such as a group).

    Returns ``{pred_key: ConfusionMatrix}`` for the fields that have a `parent` (or for every
    MulticlassPreds field when ``row_field`` is given).
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when a MulticlassPreds field has a parent that is a dataset field."""
        data_spec = dataset.spec()
        out = model.output_spec()
        return any(out[k].parent in data_spec for k in find_spec_keys(out, types.MulticlassPreds))

    def config_spec(self) -> Spec:
        """Threshold, and the field to use for the rows."""
        return {
            "threshold": types.Scalar(min_val=0, max_val=1, step=0.01, default=0.5,
                                      required=False),
            "row_field": types.SingleFieldMatcher(spec="dataset", types=["CategoryLabel"],
                                                  required=False),
        }

    def run(self, inputs: Sequence[JsonDict], model: Any, dataset: Any,
            model_outputs: Sequence[JsonDict] | None = None,
            config: JsonDict | None = None) -> dict[str, ConfusionMatrix]:
        """`{pred_key: ConfusionMatrix}` (see the class docstring)."""
        return self.run_with_metadata(indexed(inputs), model, dataset, model_outputs, config)

    def run_with_metadata(self, indexed_inputs: Sequence[JsonDict], model: Any, dataset: Any,
                          model_outputs: Sequence[JsonDict] | None = None,
                          config: JsonDict | None = None) -> dict[str, ConfusionMatrix]:
        """As `run`, on indexed inputs `{"id", "data", ...}`."""
        config = dict(config or {})
        inputs = [ie["data"] for ie in indexed_inputs]
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        out_spec = model.output_spec()
        row_field = config.get("row_field")
        data_spec = dataset.spec()
        if row_field is not None and row_field not in data_spec:
            raise KeyError(f"config 'row_field'={row_field!r} is not a dataset field; fields: "
                           f"{sorted(data_spec)}.")
        result = {}
        for key in find_spec_keys(out_spec, types.MulticlassPreds):
            spec = out_spec[key]
            rows_from = row_field or spec.parent
            if rows_from is None or rows_from not in data_spec:
                continue
            scores = as_class_scores([o[key] for o in model_outputs], spec, key)
            decided = classify(scores, spec, applicable_config(spec, config))
            predicted = [spec.vocab[i] for i in decided]
            declared = getattr(data_spec[rows_from], "vocab", None)
            if rows_from == spec.parent:
                declared = list(spec.vocab)
            result[key] = confusion_matrix(
                [ex.get(rows_from) for ex in inputs], predicted,
                [ie["id"] for ie in indexed_inputs], row_labels=declared,
                col_labels=list(spec.vocab), row_name=rows_from, col_name=f"{key} (predicted)")
        return result
