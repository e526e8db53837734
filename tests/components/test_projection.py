"""PCA equals sklearn's; fits are cached and reused; UMAP is deterministic with a seed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from promptlit.api import types
from promptlit.api.dataset import IndexedDataset
from promptlit.api.model import BatchedModel
from promptlit.components.projection import PCA, UMAP, UmapModel, fit_projection

RNG = np.random.default_rng(0)
W = RNG.normal(size=(4, 8))


class Embedder(BatchedModel):
    """emb = [x0..x3] @ W: an 8-d embedding of a 4-d input; counts predicted examples."""

    def __init__(self):
        self.calls = 0

    def input_spec(self):
        return {"v": types.Embeddings()}

    def output_spec(self):
        return {"emb": types.Embeddings(), "probas": types.MulticlassPreds(vocab=["a", "b"])}

    def predict_minibatch(self, inputs, **kw):
        self.calls += len(inputs)
        return [{"emb": np.asarray(ex["v"]) @ W, "probas": [0.5, 0.5]} for ex in inputs]


def _dataset(n=50, seed=1):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4, size=(3, 4))
    v = centers[rng.integers(0, 3, n)] + rng.normal(size=(n, 4))
    return IndexedDataset([{"v": row.tolist()} for row in v], {"v": types.Embeddings()})


def test_pca_equals_sklearn():
    ds = _dataset()
    x = np.asarray([np.asarray(ex["v"]) @ W for ex in ds.examples])
    _, z = fit_projection(x, "pca", n_components=3)
    np.testing.assert_allclose(z, SkPCA(n_components=3, svd_solver="full").fit_transform(x),
                               atol=1e-10)


def test_pca_manager_fits_once_and_transforms_new_points():
    ds, model, pca = _dataset(), Embedder(), PCA()
    config = {"field_name": "emb", "model_name": "m", "proj_kw": {"n_components": 2}}
    out = pca.run_with_metadata(ds.indexed_examples, model, ds, config=config)
    x = np.asarray([np.asarray(ex["v"]) @ W for ex in ds.examples])
    sk = SkPCA(n_components=2, svd_solver="full").fit(x)
    np.testing.assert_allclose(np.asarray([o["z"] for o in out]), sk.transform(x), atol=1e-10)
    assert pca.num_fits == 1 and model.calls == len(ds)
    # Same key: no refit, no model call for fitted examples.
    again = pca.run_with_metadata(ds.indexed_examples[:5], model, ds, config=config)
    assert pca.num_fits == 1 and model.calls == len(ds)
    np.testing.assert_array_equal(again[0]["z"], out[0]["z"])
    # A new example is transformed by the cached projector (one model call).
    new = {"v": [1.0, 2.0, 3.0, 4.0]}
    z_new = pca.run([new], model, ds, config=config)[0]["z"]
    np.testing.assert_allclose(z_new, sk.transform((np.asarray(new["v"]) @ W)[None])[0],
                               atol=1e-10)
    assert pca.num_fits == 1 and model.calls == len(ds) + 1
    # Another dataset or other options: a new fit.
    pca.run([new], model, _dataset(seed=2), config=config)
    pca.run([new], model, ds, config={**config, "proj_kw": {"n_components": 3}})
    assert pca.num_fits == 3
    with pytest.raises(ValueError, match="not an Embeddings field"):
        pca.run([new], model, ds, config={"field_name": "probas"})


@pytest.mark.slow  # numba compiles UMAP on first use in a process (~30 s); the fits are fast
def test_umap_deterministic_with_seed_and_cached():
    ds = _dataset(50)
    x = np.asarray([np.asarray(ex["v"]) @ W for ex in ds.examples])
    _, z1 = fit_projection(x, "umap", n_components=2, seed=7, n_neighbors=10)
    p2, z2 = fit_projection(x, "umap", n_components=2, seed=7, n_neighbors=10)
    assert z1.shape == (50, 2)
    np.testing.assert_allclose(z1, z2)
    new = x[:3] + 0.01
    np.testing.assert_allclose(p2.transform(new), p2.transform(new))
    with pytest.raises(ValueError, match="more than 3 points"):
        UmapModel(n_components=2).fit(x[:3])

    model, umap_ = Embedder(), UMAP()
    config = {"field_name": "emb", "model_name": "m", "proj_kw": {"n_components": 2, "seed": 7,
                                                                  "n_neighbors": 10}}
    a = umap_.run_with_metadata(ds.indexed_examples, model, ds, config=config)
    b = umap_.run_with_metadata(ds.indexed_examples, model, ds, config=config)
    assert umap_.num_fits == 1 and model.calls == len(ds)
    za = np.asarray([o["z"] for o in a])
    np.testing.assert_array_equal(za, np.asarray([o["z"] for o in b]))
    np.testing.assert_allclose(za, z1)  # the manager's fit is the same seeded fit
