"""The built-in components (interpreters, generators, metrics) by LIT-style name: one registry.

`default_components()` instantiates each one that imports in this install (an optional
dependency missing, e.g. ``umap-learn``, just leaves that one out). Which of them apply to a
given model / dataset is decided by their specs (``is_compatible``), never here. The CLI builds
its Workbench with all of them; a `promptlit.workbench.Workbench` built in Python without them
still finds any of them by name on first use (`builtin`).

Example:
    >>> comps = default_components()
    >>> sorted(comps["generators"])
    ['ablation_flip', 'hotflip', 'scrambler', 'word_replacer']
    >>> {"grad_l2", "lime", "pca", "sequence_salience", "thresholder"} <= set(comps["interpreters"])
    True
    >>> type(builtin("thresholder")).__name__
    'Thresholder'
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)

#: The kinds of components, in the order a name is looked up (as `Workbench` does).
KINDS: tuple[str, ...] = ("interpreters", "generators", "metrics")

#: (kind, name, module, class) of every built-in component, in the order the UI lists them.
BUILTINS: tuple[tuple[str, str, str, str], ...] = (
    ("interpreters", "sequence_salience", "promptlit.components.sequence_salience",
     "SequenceSalienceInterpreter"),
    ("interpreters", "classification", "promptlit.components.classification_results",
     "ClassificationInterpreter"),
    ("interpreters", "regression", "promptlit.components.regression_results",
     "RegressionInterpreter"),
    ("interpreters", "confusion_matrix", "promptlit.components.confusion_matrix",
     "ConfusionMatrixInterpreter"),
    ("interpreters", "thresholder", "promptlit.components.thresholder", "Thresholder"),
    ("interpreters", "curves", "promptlit.components.curves", "CurvesInterpreter"),
    ("interpreters", "grad_l2", "promptlit.components.gradient_maps", "GradientNorm"),
    ("interpreters", "grad_dot_input", "promptlit.components.gradient_maps", "GradientDotInput"),
    ("interpreters", "integrated_gradients", "promptlit.components.gradient_maps",
     "IntegratedGradients"),
    ("interpreters", "lime", "promptlit.components.lime", "LIME"),
    ("interpreters", "pca", "promptlit.components.projection", "PCA"),
    ("interpreters", "umap", "promptlit.components.projection", "UMAP"),
    ("interpreters", "pdp", "promptlit.components.pdp", "PdpInterpreter"),
    ("generators", "word_replacer", "promptlit.components.generators.word_replacer",
     "WordReplacer"),
    ("generators", "scrambler", "promptlit.components.generators.scrambler", "Scrambler"),
    ("generators", "ablation_flip", "promptlit.components.generators.ablation_flip",
     "AblationFlip"),
    ("generators", "hotflip", "promptlit.components.generators.hotflip", "HotFlip"),
    ("metrics", "generation_metrics", "promptlit.components.text_metrics", "GenerationMetrics"),
    ("metrics", "multiclass", "promptlit.components.metrics", "MulticlassMetrics"),
    ("metrics", "paired", "promptlit.components.metrics", "MulticlassPairedMetrics"),
    ("metrics", "regression", "promptlit.components.metrics", "RegressionMetrics"),
    ("metrics", "multilabel", "promptlit.components.metrics", "MultilabelMetrics"),
)


def _instantiate(module: str, cls: str) -> Any:
    return getattr(importlib.import_module(module), cls)()


def builtin(name: str) -> Any:
    """A new instance of the built-in component called ``name`` (interpreters first, then
    generators, then metrics, as names are looked up in a Workbench).

    Raises:
      KeyError: no built-in of that name (the message lists them).
      ImportError: its optional dependency is not installed.
    """
    for kind in KINDS:
        for k, n, module, cls in BUILTINS:
            if k == kind and n == name:
                return _instantiate(module, cls)
    raise KeyError(f"no built-in component {name!r}; built-ins: {sorted(names())}")


def names() -> set[str]:
    """The names of every built-in component."""
    return {n for _, n, _, _ in BUILTINS}


def default_components() -> dict[str, dict[str, Any]]:
    """``{"interpreters": {...}, "generators": {...}, "metrics": {...}}`` (name -> component),
    fresh instances.

    Components whose module or class is missing in this install are skipped (logged at debug).
    """
    found: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    for kind, name, module, cls in BUILTINS:
        try:
            found[kind][name] = _instantiate(module, cls)
        except Exception as e:  # noqa: BLE001 - optional component
            logger.debug("component %s unavailable: %s", name, e)
    return found
