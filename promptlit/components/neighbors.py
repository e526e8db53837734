"""Nearest neighbours of examples in a model's embedding space (cosine or euclidean).

As LIT's `NearestNeighbors` (`lit_nlp.components.nearest_neighbors`): the query is the mean of the
selected examples' embeddings (one example: its own embedding); every dataset example's
embedding from the same model field is ranked by distance, nearest first (ties: dataset order).

Example:
    >>> import numpy as np
    >>> idx, dist = nearest_neighbors([1.0, 0.0], np.array([[0, 1], [2, 0.1], [1, 1]]), k=2)
    >>> idx.tolist(), np.round(dist, 4).tolist()
    ([[1, 2]], [[0.0012, 0.2929]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec
from promptlit.components.metrics import indexed_examples
from promptlit.lib.utils import find_spec_keys

__all__ = ["METRICS", "NearestNeighbors", "nearest_neighbors", "pairwise_distances"]

METRICS = ("cosine", "euclidean")
"""Supported distances."""


def pairwise_distances(queries: Sequence[float] | np.ndarray, embeddings: np.ndarray,
                       metric: str = "cosine") -> np.ndarray:
    """`<float>[num_queries, num_examples]` distances between `<float>[q, d]` and `<float>[n, d]`.

    Cosine distance is ``1 - cos(angle)`` in [0, 2]; a zero-norm example gets distance 1 (no
    direction: treated as orthogonal). Euclidean is the L2 distance.

    Raises:
        ValueError: unknown metric, mismatched dimensions, or a zero-norm query (cosine).
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {METRICS}.")
    q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    e = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    if q.shape[1] != e.shape[1]:
        raise ValueError(f"Query dimension {q.shape[1]} does not match embedding dimension "
                         f"{e.shape[1]}.")
    if metric == "euclidean":
        sq = (q**2).sum(1)[:, None] + (e**2).sum(1)[None, :] - 2 * q @ e.T
        return np.sqrt(np.maximum(sq, 0.0))
    qn, en = np.linalg.norm(q, axis=1), np.linalg.norm(e, axis=1)
    if np.any(qn == 0):
        raise ValueError("Cosine distance is undefined for a zero query vector.")
    sims = (q @ e.T) / qn[:, None] / np.where(en == 0, 1.0, en)[None, :]
    return np.where(en[None, :] == 0, 1.0, 1.0 - np.clip(sims, -1.0, 1.0))


def nearest_neighbors(query: Sequence[float] | np.ndarray, embeddings: np.ndarray, k: int = 10,
                      metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest rows of `<float>[n, d]` embeddings to each query.

    Args:
        query: `<float>[d]` or `<float>[q, d]`.
        embeddings: `<float>[n, d]`.
        k: neighbours per query (at most n).
        metric: "cosine" or "euclidean".

    Returns:
        (indices `<int>[q, k]`, distances `<float>[q, k]`), nearest first; ties keep row order.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    d = pairwise_distances(query, embeddings, metric)
    k = min(int(k), d.shape[1])
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


class NearestNeighbors(Interpreter):
    """The dataset examples nearest to the selection in an Embeddings output field.

    Config: ``embedding_name`` (default: the model's only Embeddings field), ``num_neighbors``
    (default 10), ``metric`` ("cosine" (default) or "euclidean").

    Returns, as LIT, ``[{"nearest_neighbors": [{"id", "index", "nn_distance"}, ...]}]``
    (``index``: position in the dataset).
    """

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model outputs an Embeddings field."""
        del dataset
        return bool(find_spec_keys(model.output_spec(), types.Embeddings))

    def config_spec(self) -> Spec:
        """Field, number of neighbours, metric."""
        return {
            "embedding_name": types.SingleFieldMatcher(spec="output", types=["Embeddings"]),
            "num_neighbors": types.Integer(min_val=1, max_val=100, default=10, required=False),
            "metric": types.CategoryLabel(vocab=list(METRICS), default="cosine",
                                          required=False),
        }

    def run(self, inputs: Sequence[JsonDict], model: Any, dataset: Any,
            model_outputs: Sequence[JsonDict] | None = None,
            config: JsonDict | None = None) -> list[JsonDict]:
        """See the class docstring. The dataset is predicted on every call (cache the model)."""
        config = dict(config or {})
        fields = find_spec_keys(model.output_spec(), types.Embeddings)
        field = config.get("embedding_name")
        if field is None and len(fields) == 1:
            field = fields[0]
        if field not in fields:
            raise ValueError(f"config 'embedding_name'={field!r} must be one of the model's "
                             f"Embeddings fields {fields}.")
        if not inputs:
            raise ValueError("NearestNeighbors needs at least one selected example.")
        if model_outputs is None:
            model_outputs = list(model.predict(inputs))
        query = np.mean([np.asarray(o[field], dtype=np.float64) for o in model_outputs], axis=0)
        data = indexed_examples(dataset)
        embs = np.asarray([np.asarray(o[field], dtype=np.float64)
                           for o in model.predict([ie["data"] for ie in data])])
        idx, dist = nearest_neighbors(query, embs, int(config.get("num_neighbors", 10)),
                                      str(config.get("metric", "cosine")))
        return [{"nearest_neighbors": [
            {"id": data[i]["id"], "index": int(i), "nn_distance": float(d)}
            for i, d in zip(idx[0], dist[0], strict=True)]}]
