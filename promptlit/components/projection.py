"""2-D / 3-D projections of embeddings (PCA, UMAP), fitted once per dataset and cached.

As LIT (`lit_nlp.components.projection`, `pca.py`, `umap.py`): a `ProjectorModel` is a small
model from ``{"x": Embeddings}`` to ``{"z": Embeddings}`` that is *fitted* on a dataset; a
`ProjectionManager` interpreter fits one projector per (model, embedding field, dataset ids,
projector options) on the first request, keeps it, and reuses it: examples it was fitted on get
their fitted coordinates back, new examples (e.g. an edited prompt) are `transform`ed into the
same space. Fits are deterministic for a given ``seed``.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 5))
    >>> projector, z = fit_projection(x, "pca", n_components=2)
    >>> z.shape, np.allclose(projector.transform(x), z)
    ((20, 2), True)
"""

from __future__ import annotations

import abc
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.model import BatchedModel
from promptlit.api.types import JsonDict, Spec
from promptlit.components.metrics import indexed_examples
from promptlit.lib.utils import find_spec_keys, indexed

__all__ = ["PCA", "UMAP", "PCAModel", "ProjectionManager", "ProjectorModel", "UmapModel",
           "fit_projection"]


def _as_matrix(values: Sequence[Any] | np.ndarray, field: str) -> np.ndarray:
    """`<float>[num_examples, emb_dim]` from one embedding per example, validated."""
    try:
        x = np.asarray([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    except (TypeError, ValueError) as e:
        raise ValueError(f"Field '{field}': expected one Embeddings vector (list of numbers) per "
                         f"example, all of the same length ({e}).") from e
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"Field '{field}': expected at least one embedding vector; got shape "
                         f"{x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Field '{field}': embeddings contain NaN or infinity.")
    return x


class ProjectorModel(BatchedModel, metaclass=abc.ABCMeta):
    """A dimensionality reduction as a model: fit on `<float>[n, emb_dim]`, then transform.

    Args:
        n_components: output dimension (2 or 3 for plots).
        seed: random seed; the same data and seed give the same projection.
    """

    def __init__(self, n_components: int = 3, seed: int = 0) -> None:
        if int(n_components) < 1:
            raise ValueError(f"n_components must be >= 1; got {n_components}.")
        self.n_components = int(n_components)
        self.seed = int(seed)
        self._fitted = False

    def input_spec(self) -> Spec:
        """``x``: the embedding to project."""
        return {"x": types.Embeddings()}

    def output_spec(self) -> Spec:
        """``z``: the projected point `<float>[n_components]`."""
        return {"z": types.Embeddings()}

    def max_minibatch_size(self) -> int:
        """Projection is cheap: large batches."""
        return 1000

    @property
    def fitted(self) -> bool:
        """Whether `fit` has run."""
        return self._fitted

    @abc.abstractmethod
    def fit(self, x: np.ndarray) -> np.ndarray:
        """Fits on `<float>[n, emb_dim]`; returns the fitted points `<float>[n, n_components]`."""

    @abc.abstractmethod
    def transform(self, x: np.ndarray) -> np.ndarray:
        """Projects `<float>[n, emb_dim]` to `<float>[n, n_components]` (after `fit`)."""

    def fit_transform(self, inputs: Sequence[JsonDict]) -> list[JsonDict]:
        """Fits on the ``x`` of `inputs`; returns ``[{"z": <float>[n_components]}]``."""
        z = self.fit(_as_matrix([ex["x"] for ex in inputs], "x"))
        self._fitted = True
        return [{"z": row} for row in z]

    def predict_minibatch(self, inputs: list[JsonDict], **kw: Any) -> list[JsonDict]:
        """``[{"z": ...}]`` for already-fitted projectors.

        Raises:
            RuntimeError: called before `fit_transform`.
        """
        if not self._fitted:
            raise RuntimeError(f"{type(self).__name__} must be fitted (fit_transform) before "
                               "it can project new points.")
        z = self.transform(_as_matrix([ex["x"] for ex in inputs], "x"))
        return [{"z": row} for row in z]


class PCAModel(ProjectorModel):
    """Principal component analysis (`sklearn.decomposition.PCA`, full SVD: deterministic)."""

    def fit(self, x: np.ndarray) -> np.ndarray:
        """Fits sklearn's PCA; fewer components when there are fewer points or dimensions."""
        from sklearn.decomposition import PCA as SkPCA

        k = min(self.n_components, x.shape[0], x.shape[1])
        self._pca = SkPCA(n_components=k, svd_solver="full", random_state=self.seed)
        return self._pad(self._pca.fit_transform(x))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Projects onto the fitted components."""
        return self._pad(self._pca.transform(x))

    def _pad(self, z: np.ndarray) -> np.ndarray:
        # Always n_components columns, so plots need no special case for tiny data.
        if z.shape[1] < self.n_components:
            z = np.pad(z, ((0, 0), (0, self.n_components - z.shape[1])))
        return z


class UmapModel(ProjectorModel):
    """UMAP (`umap-learn`), seeded: the same data and seed give the same embedding.

    Args:
        n_components, seed: as `ProjectorModel`.
        n_neighbors: UMAP's neighbourhood size (capped at the number of points - 1).
        min_dist: UMAP's minimum distance between embedded points.
        metric: the input-space metric ("euclidean", "cosine", ...).
    """

    def __init__(self, n_components: int = 3, seed: int = 0, n_neighbors: int = 15,
                 min_dist: float = 0.1, metric: str = "euclidean") -> None:
        super().__init__(n_components, seed)
        self.n_neighbors = int(n_neighbors)
        self.min_dist = float(min_dist)
        self.metric = metric

    def fit(self, x: np.ndarray) -> np.ndarray:
        """Fits UMAP; needs more points than `n_components` + 1."""
        import umap  # heavy (numba): imported on first use

        if x.shape[0] <= self.n_components + 1:
            raise ValueError(f"UMAP needs more than {self.n_components + 1} points to project to "
                             f"{self.n_components} dimensions; got {x.shape[0]}. Use PCA.")
        self._umap = umap.UMAP(n_components=self.n_components, random_state=self.seed,
                               n_neighbors=max(2, min(self.n_neighbors, x.shape[0] - 1)),
                               min_dist=self.min_dist, metric=self.metric, n_jobs=1)
        return np.asarray(self._umap.fit_transform(x), dtype=np.float64)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Places new points in the fitted embedding (`umap.UMAP.transform`)."""
        return np.asarray(self._umap.transform(x), dtype=np.float64)


_METHODS: dict[str, type[ProjectorModel]] = {"pca": PCAModel, "umap": UmapModel}


def fit_projection(embeddings: Sequence[Any] | np.ndarray, method: str = "pca",
                   n_components: int = 3, seed: int = 0, **kw: Any
                   ) -> tuple[ProjectorModel, np.ndarray]:
    """Fits a projector on `<float>[n, emb_dim]` embeddings.

    Args:
        embeddings: one vector per example.
        method: "pca" or "umap".
        n_components, seed: as `ProjectorModel`; `kw`: extra options (UMAP's n_neighbors, ...).

    Returns:
        (the fitted projector, the projected points `<float>[n, n_components]`).
    """
    if method not in _METHODS:
        raise ValueError(f"Unknown projection method {method!r}; choose one of {sorted(_METHODS)}.")
    projector = _METHODS[method](n_components=n_components, seed=seed, **kw)
    out = projector.fit_transform([{"x": v} for v in embeddings])
    return projector, np.asarray([o["z"] for o in out])


def _fingerprint(ids: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()


class ProjectionManager(Interpreter):
    """Projects an Embeddings output field with one projector per (model, field, dataset, options).

    Config: ``field_name`` (an Embeddings field of the model output; default: the only one),
    ``model_name`` (recommended: the model's name in the workbench; default: the model object's
    identity), ``proj_kw`` (options for the projector, e.g. ``{"n_components": 2, "seed": 1}``),
    ``use_input`` (project the inputs' own ``field_name`` instead of running the model).

    The first request for a key fits on *all* the dataset's examples and caches the projector
    and the fitted points by example id; later requests reuse them (`num_fits` counts fits).
    `run` returns ``[{"z": <float>[n_components]}]``, one per input.
    """

    def __init__(self, model_class: type[ProjectorModel]) -> None:
        self._model_class = model_class
        self._lock = threading.RLock()  # UMAP is not thread-safe
        self._instances: dict[tuple[Any, ...], tuple[ProjectorModel, dict[str, np.ndarray]]] = {}
        self.num_fits = 0

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """True when the model outputs an Embeddings field."""
        del dataset
        return bool(find_spec_keys(model.output_spec(), types.Embeddings))

    def config_spec(self) -> Spec:
        """The embedding field (``proj_kw`` is a dict and has no form field)."""
        return {"field_name": types.SingleFieldMatcher(spec="output", types=["Embeddings"])}

    def meta_spec(self) -> Spec:
        """``z``: the projected point."""
        return {"z": types.Embeddings()}

    def _field(self, model: Any, config: JsonDict) -> str:
        fields = find_spec_keys(model.output_spec(), types.Embeddings)
        field = config.get("field_name")
        if field is None:
            if len(fields) != 1:
                raise ValueError(f"Set config 'field_name' to one of the model's Embeddings "
                                 f"fields {fields}.")
            return fields[0]
        if field not in fields and not config.get("use_input"):
            raise ValueError(f"config 'field_name'={field!r} is not an Embeddings field of the "
                             f"model output; choose one of {fields}.")
        return field

    def run(self, inputs: Sequence[JsonDict], model: Any, dataset: Any,
            model_outputs: Sequence[JsonDict] | None = None,
            config: JsonDict | None = None) -> list[JsonDict]:
        """See the class docstring; inputs are identified by ``_id`` or their content hash."""
        return self.run_with_metadata(indexed(inputs), model, dataset, model_outputs, config)

    def run_with_metadata(self, indexed_inputs: Sequence[JsonDict], model: Any, dataset: Any,
                          model_outputs: Sequence[JsonDict] | None = None,
                          config: JsonDict | None = None) -> list[JsonDict]:
        """As `run`, on indexed inputs `{"id", "data", ...}`."""
        config = dict(config or {})
        field = self._field(model, config)
        proj_kw = dict(config.get("proj_kw") or {})
        with self._lock:
            train = indexed_examples(dataset)
            key = (config.get("model_name") or f"id:{id(model)}", field,
                   _fingerprint([ie["id"] for ie in train]),
                   json.dumps(proj_kw, sort_keys=True, default=str), bool(config.get("use_input")))
            if key not in self._instances:
                self._instances[key] = self._fit(train, model, field, proj_kw, config)
            projector, fitted = self._instances[key]
            need = [i for i, ie in enumerate(indexed_inputs) if ie["id"] not in fitted]
            new: dict[int, np.ndarray] = {}
            if need:
                if config.get("use_input"):
                    vectors = [indexed_inputs[i]["data"][field] for i in need]
                else:
                    if model_outputs is None:
                        outs = list(model.predict([indexed_inputs[i]["data"] for i in need]))
                    else:
                        outs = [model_outputs[i] for i in need]
                    vectors = [o[field] for o in outs]
                z = projector.transform(_as_matrix(vectors, field))
                new = dict(zip(need, z, strict=True))
            return [{"z": new[i] if i in new else fitted[ie["id"]]}
                    for i, ie in enumerate(indexed_inputs)]

    def _fit(self, train: list[JsonDict], model: Any, field: str, proj_kw: Mapping[str, Any],
             config: JsonDict) -> tuple[ProjectorModel, dict[str, np.ndarray]]:
        if config.get("use_input"):
            vectors = [ie["data"][field] for ie in train]
        else:
            vectors = [o[field] for o in model.predict([ie["data"] for ie in train])]
        projector = self._model_class(**proj_kw)
        z = projector.fit_transform([{"x": v} for v in _as_matrix(vectors, field)])
        self.num_fits += 1
        return projector, {ie["id"]: o["z"] for ie, o in zip(train, z, strict=True)}


class PCA(ProjectionManager):
    """PCA projection of an Embeddings field (LIT's "PCA" interpreter)."""

    def __init__(self) -> None:
        super().__init__(PCAModel)


class UMAP(ProjectionManager):
    """UMAP projection of an Embeddings field (LIT's "UMAP" interpreter)."""

    def __init__(self) -> None:
        super().__init__(UmapModel)
