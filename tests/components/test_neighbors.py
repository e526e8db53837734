"""Nearest neighbours vs brute force (scipy distances, full sort)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import distance

from promptlit.api import types
from promptlit.api.dataset import IndexedDataset
from promptlit.api.model import BatchedModel
from promptlit.components.neighbors import NearestNeighbors, nearest_neighbors


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    embs = rng.normal(size=(60, 6))
    queries = rng.normal(size=(4, 6))
    idx, dist = nearest_neighbors(queries, embs, k=7, metric=metric)
    fn = distance.cosine if metric == "cosine" else distance.euclidean
    for q in range(4):
        brute = [fn(queries[q], e) for e in embs]
        order = sorted(range(60), key=lambda i: (brute[i], i))[:7]
        assert idx[q].tolist() == order
        np.testing.assert_allclose(dist[q], [brute[i] for i in order], atol=1e-9)


def test_edge_cases():
    idx, dist = nearest_neighbors([1.0, 0.0], np.array([[0.0, 0.0], [1.0, 0.0]]), k=5)
    assert idx.tolist() == [[1, 0]] and dist[0].tolist() == [0.0, 1.0]  # zero row: distance 1
    with pytest.raises(ValueError, match="zero query"):
        nearest_neighbors([0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="Unknown metric"):
        nearest_neighbors([1.0, 0.0], np.eye(2), metric="manhattan")
    with pytest.raises(ValueError, match="dimension"):
        nearest_neighbors([1.0, 0.0, 0.0], np.eye(2))


class Embedder(BatchedModel):
    def input_spec(self):
        return {"v": types.Embeddings()}

    def output_spec(self):
        return {"emb": types.Embeddings()}

    def predict_minibatch(self, inputs, **kw):
        return [{"emb": 2 * np.asarray(ex["v"])} for ex in inputs]


def test_interpreter_uses_mean_of_selection():
    rng = np.random.default_rng(1)
    vs = rng.normal(size=(30, 3))
    ds = IndexedDataset([{"v": v.tolist()} for v in vs], {"v": types.Embeddings()})
    sel = [ds.examples[0], ds.examples[1]]
    out = NearestNeighbors().run(sel, Embedder(), ds,
                                 config={"num_neighbors": 4, "metric": "euclidean"})
    nn = out[0]["nearest_neighbors"]
    query = 2 * (vs[0] + vs[1]) / 2
    brute = np.linalg.norm(2 * vs - query, axis=1)
    assert [n["index"] for n in nn] == np.argsort(brute, kind="stable")[:4].tolist()
    assert [n["id"] for n in nn] == [ds.ids[n["index"]] for n in nn]
    np.testing.assert_allclose([n["nn_distance"] for n in nn], np.sort(brute)[:4])
    with pytest.raises(ValueError, match="embedding_name"):
        NearestNeighbors().run(sel, Embedder(), ds, config={"embedding_name": "x"})
