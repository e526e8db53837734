"""Model adapters: keras-hub causal LMs (JAX), text/tabular classifiers and regressors, presets.

Adapters are imported lazily so that listing presets does not import Keras.
"""

import importlib
from typing import Any

_NAMES = {
    "KerasCausalLM": ("promptlit.models.keras_lm", "KerasCausalLM"),
    "KerasTextClassifier": ("promptlit.models.text_classifier", "KerasTextClassifier"),
    "SklearnClassifier": ("promptlit.models.sklearn_models", "SklearnClassifier"),
    "SklearnRegressor": ("promptlit.models.sklearn_models", "SklearnRegressor"),
    "load_model": ("promptlit.models.presets", "load_model"),
    "DEFAULT_PRESET": ("promptlit.models.presets", "DEFAULT_PRESET"),
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    """Imports adapter classes on first use (PEP 562)."""
    if name in _NAMES:
        module, attribute = _NAMES[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'promptlit.models' has no attribute {name!r}")
