"""The built-in interpreters and generators a Workbench gets by default, by LIT name.

`default_components()` instantiates each one that imports in this install (an optional
dependency missing, e.g. ``umap-learn``, just leaves that one out). Which of them apply to a
given model / dataset is decided by their specs (``is_compatible``), never here. The CLI builds
its Workbench with them; in Python pass them on yourself:

Example:
    >>> comps = default_components()
    >>> sorted(comps["generators"])
    ['ablation_flip', 'hotflip', 'scrambler', 'word_replacer']
    >>> {"grad_l2", "lime", "pca"} <= set(comps["interpreters"])
    True
    >>> # Workbench(models, datasets, interpreters=comps["interpreters"],
    >>> #           generators=comps["generators"])
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)

#: (kind, name, module, class) of every built-in component, in the order the UI lists them.
BUILTINS: tuple[tuple[str, str, str, str], ...] = (
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
)


def default_components() -> dict[str, dict[str, Any]]:
    """``{"interpreters": {name: component}, "generators": {name: component}}``, fresh instances.

    Components whose module or class is missing in this install are skipped (logged at debug).
    """
    found: dict[str, dict[str, Any]] = {"interpreters": {}, "generators": {}}
    for kind, name, module, cls in BUILTINS:
        try:
            found[kind][name] = getattr(importlib.import_module(module), cls)()
        except Exception as e:  # noqa: BLE001 - optional component
            logger.debug("component %s unavailable: %s", name, e)
    return found
