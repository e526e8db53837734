"""promptlit: a prompt-debugging workbench for language models.

Loads Keras / keras-hub causal LMs on JAX and prompt/target datasets, generates responses and shows
*why* the model wrote them with sequence salience (Grad L2, Grad·Input, Integrated Gradients),
behind a Gradio UI and a LIT-compatible Python API.

Example:
    >>> import promptlit as pl
    >>> data = pl.data.load("sample_prompts")
"""

import os

# Keras must pick its backend before it is first imported anywhere: promptlit runs on JAX.
os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"
