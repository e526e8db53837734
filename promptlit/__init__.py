"""promptlit: a prompt-debugging workbench for language models.

Loads Keras / keras-hub causal LMs on JAX and prompt/target datasets, generates responses and shows
*why* the model wrote them with sequence salience (Grad L2, Grad·Input, Integrated Gradients),
behind a Gradio UI and a LIT-compatible Python API.

Example:
    >>> import promptlit as pl
    >>> data = pl.data.load("sample_prompts")
    >>> lm = pl.models.KerasCausalLM.from_preset("presets/tiny_lm")  # doctest: +SKIP
    >>> wb = pl.Workbench(models={"tiny": lm}, datasets={"sample_prompts": data})  # doctest: +SKIP

Submodules and heavy names (JAX, Keras, Gradio) are imported lazily, on first attribute access, so
that `import promptlit` and the CLI's `--help` stay fast.
"""

import importlib
import os
from typing import Any

# Keras must pick its backend before it is first imported anywhere: promptlit runs on JAX.
os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"

_SUBMODULES = {"api", "comparison", "components", "data", "lib", "models", "notebook", "salience",
               "ui"}
_NAMES = {
    "Workbench": ("promptlit.workbench", "Workbench"),
    "serve": ("promptlit.server", "serve"),
    "Dataset": ("promptlit.api.dataset", "Dataset"),
    "Model": ("promptlit.api.model", "Model"),
    "compare": ("promptlit.comparison", "compare"),  # two prompts' salience, aligned
}

__all__ = sorted(_SUBMODULES | set(_NAMES) | {"__version__"})


def __getattr__(name: str) -> Any:
    """Imports submodules and public names on first use (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"promptlit.{name}")
    if name in _NAMES:
        module, attribute = _NAMES[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'promptlit' has no attribute {name!r}")
