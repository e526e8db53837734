"""A span call after a matrix call on the same text reuses the cached matrix, where that is exact.

Grad·Input (and IG) of a response span is the sum of the span's rows of the full matrix, so
`Workbench.salience(..., span=(a, b), full_matrix=False)` answers from a cached full-matrix
result without a model call, with the numbers the model's span kernel gives. Grad L2 of a span
(the norm of the summed gradient) is not the sum of the rows' norms: it is always computed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from promptlit.api.dataset import Dataset
from promptlit.data import prompt_spec
from promptlit.models.presets import DEFAULT_PRESET

pytestmark = pytest.mark.slow

PROMPT = "List: apple river stone\nAgain: apple"
TARGET = " river stone"
SPAN = (0, 2)


@pytest.fixture(scope="module")
def tiny():
    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip(f"{DEFAULT_PRESET} is not built yet (presets/build_tiny_lm.py)")
    from promptlit.models.keras_lm import KerasCausalLM

    return KerasCausalLM.from_preset(DEFAULT_PRESET, max_new_tokens=4)


def counting(model, monkeypatch) -> list:
    """Counts the model's salience calls (the signature stays the model's: the Workbench's
    cache keys fill in its defaults)."""
    import functools

    calls: list = []
    inner = model.salience

    @functools.wraps(inner)
    def salience(*args, **kw):
        calls.append(kw)
        return inner(*args, **kw)

    monkeypatch.setattr(model, "salience", salience)
    return calls


def _wb(model):
    from promptlit.workbench import Workbench

    data = Dataset([{"prompt": PROMPT, "target": TARGET}], spec=prompt_spec())
    return Workbench(models={"tiny": model}, datasets={"d": data})


def test_grad_dot_input_span_comes_from_the_matrix_and_equals_the_kernel(tiny, monkeypatch):
    calls = counting(tiny, monkeypatch)
    wb = _wb(tiny)
    ex = wb.datasets["d"].examples[0]
    full = wb.salience("tiny", ex, target="target")  # Grad L2 + Grad·Input matrices
    assert len(calls) == 1
    got = wb.salience("tiny", ex, target="target", methods=("grad_dot_input",), span=SPAN,
                      full_matrix=False)
    assert len(calls) == 1  # no model call
    assert got.metadata["span_from_matrix"] and not got.matrices
    monkeypatch.undo()
    fresh = tiny.salience(PROMPT, TARGET, methods=("grad_dot_input",), span=SPAN,
                          full_matrix=False)
    a = got.for_span(*SPAN, "grad_dot_input").scores
    b = fresh.for_span(*SPAN, "grad_dot_input").scores
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())
    np.testing.assert_array_equal(a, full.for_span(*SPAN, "grad_dot_input").scores)
    # cached: asking again is the same object
    assert wb.salience("tiny", ex, target="target", methods=("grad_dot_input",), span=SPAN,
                       full_matrix=False) is got


def test_grad_l2_span_is_computed_because_it_is_not_a_row_sum(tiny, monkeypatch):
    calls = counting(tiny, monkeypatch)
    wb = _wb(tiny)
    ex = wb.datasets["d"].examples[0]
    full = wb.salience("tiny", ex, target="target")
    span = wb.salience("tiny", ex, target="target", methods=("grad_l2",), span=SPAN,
                       full_matrix=False)
    assert len(calls) == 2 and "span_from_matrix" not in span.metadata
    rows = full.for_span(*SPAN, "grad_l2").scores
    norm = span.for_span(*SPAN, "grad_l2").scores
    # ||g_0 + g_1|| <= ||g_0|| + ||g_1||, and for real gradients strictly less somewhere
    assert np.all(norm <= rows + 1e-6) and not np.allclose(norm, rows)
