"""What the interpretation modules (salience maps, embeddings, counterfactuals, PDP) share.

Which registered components can feed a module is decided by their specs only: an interpreter
whose ``meta_spec`` has a `TokenSalience` is a salience method, one whose ``meta_spec`` has an
`Embeddings` field is a projector, one whose ``config_spec`` names a ``feature`` (the input to
vary) is a partial-dependence interpreter, and a generator is any registered generator. Each
must also say ``is_compatible(model, dataset)``.

The model a module explains is the session's model when it can feed the module on the session's
dataset, else the first model that can (so picking the sentiment dataset while the breast cancer
classifier is the session's model still shows the sentiment model's salience).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from promptlit.api import types
from promptlit.ui.state import SessionState

logger = logging.getLogger("promptlit.ui")

Finder = Callable[[Any, str, str], list[str]]


def _compatible(wb: Any, registry: dict[str, Any], model: str, dataset: str,
                keep: Callable[[Any], bool]) -> list[str]:
    if model not in wb.models or dataset not in wb.datasets:
        return []
    m, ds = wb.models[model], wb.datasets[dataset]
    out = []
    for name, comp in registry.items():
        try:
            if keep(comp) and comp.is_compatible(m, ds):
                out.append(name)
        except Exception as e:  # noqa: BLE001 - a broken component is just not offered
            logger.warning("%s.is_compatible failed: %s", name, e)
    return out


def _meta_has(comp: Any, kind: type) -> bool:
    try:
        return any(isinstance(t, kind) for t in comp.meta_spec().values())
    except Exception:  # noqa: BLE001 - no usable meta_spec: not this kind
        return False


def salience_methods(wb: Any, model: str, dataset: str) -> list[str]:
    """Registered interpreters returning `TokenSalience` that run on (model, dataset)."""
    return _compatible(wb, wb.interpreters, model, dataset,
                       lambda c: _meta_has(c, types.TokenSalience))


def projectors(wb: Any, model: str, dataset: str) -> list[str]:
    """Registered interpreters projecting an `Embeddings` output (PCA, UMAP) on the pair."""
    return _compatible(wb, wb.interpreters, model, dataset,
                       lambda c: _meta_has(c, types.Embeddings))


def pdp_features(wb: Any, model: str, dataset: str) -> list[str]:
    """Inputs a partial-dependence plot can vary: the model's Scalar / CategoryLabel inputs that
    the dataset has, except the gold fields its predictions are scored against (varying a label
    never changes a prediction)."""
    if model not in wb.models or dataset not in wb.datasets:
        return []
    m = wb.models[model]
    gold = {getattr(t, "parent", None) for t in m.output_spec().values()}
    data = wb.datasets[dataset].spec()
    return [k for k, t in m.input_spec().items()
            if isinstance(t, types.Scalar | types.CategoryLabel) and k in data and k not in gold]


def pdp_interpreters(wb: Any, model: str, dataset: str) -> list[str]:
    """Registered partial-dependence interpreters (config has a ``feature``) on the pair, when
    the pair has a feature to vary (`pdp_features`)."""

    def is_pdp(c: Any) -> bool:
        try:
            return "feature" in c.config_spec() and not _meta_has(c, types.TokenSalience)
        except Exception:  # noqa: BLE001
            return False

    if not pdp_features(wb, model, dataset):
        return []
    return _compatible(wb, wb.interpreters, model, dataset, is_pdp)


def generators(wb: Any, model: str, dataset: str) -> list[str]:
    """Registered generators that run on the pair."""
    return _compatible(wb, getattr(wb, "generators", {}), model, dataset, lambda c: True)


def pick_model(wb: Any, state: SessionState, finder: Finder) -> str | None:
    """The session's model if ``finder`` offers it something on the dataset, else the first
    model that it does; None when no model can feed the module."""
    if not state.dataset or state.dataset not in wb.datasets:
        return None
    try:
        models = wb.compatible_models(state.dataset)
    except Exception:  # noqa: BLE001
        return None
    order = ([state.model] if state.model in models else []) + [m for m in models
                                                                 if m != state.model]
    for name in order:
        if finder(wb, name, state.dataset):
            return name
    return None


def available_modules(wb: Any, dataset: str) -> set[str]:
    """Which of salience_maps / embeddings / counterfactuals / pdp some model can feed."""
    out: set[str] = set()
    if not dataset or dataset not in wb.datasets:
        return out
    try:
        models = wb.compatible_models(dataset)
    except Exception:  # noqa: BLE001
        return out
    for module, finder in (("salience_maps", salience_methods), ("embeddings", projectors),
                           ("counterfactuals", generators), ("pdp", pdp_interpreters)):
        if any(finder(wb, m, dataset) for m in models):
            out.add(module)
    return out


def view(state: SessionState, module: str, **defaults: Any) -> dict[str, Any]:
    """The module's per-session settings dict in ``state.views`` (created with ``defaults``)."""
    v = state.views.setdefault(module, {})
    for k, value in defaults.items():
        v.setdefault(k, value)
    return v


def prediction_summary(pred: Any, spec: Any) -> str:
    """A prediction in a few words: "positive (0.91)" for class probabilities, "3.42" for a
    score, else its short text."""
    import numpy as np

    if isinstance(spec, types.MulticlassPreds):
        p = np.asarray(pred, dtype=np.float64).reshape(-1)
        i = int(np.argmax(p))
        label = spec.vocab[i] if spec.vocab and i < len(spec.vocab) else str(i)
        return f"{label} ({p[i]:.2f})"
    if isinstance(spec, types.RegressionScore | types.Scalar):
        return f"{float(np.asarray(pred).reshape(-1)[0]):.4g}"
    return " ".join(str(pred).split())[:60]
