"""Issue 10.3, stale Integrated Gradients: the salience module over the embedded tiny LM.

A span's IG scores depend on the IG steps; asking again with other steps must give the numbers
for those steps (not the ones computed first), and the `SequenceSalience` the Workbench caches
is shared by every session, so no UI call may change it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from promptlit.api.dataset import Dataset
from promptlit.data import prompt_spec
from promptlit.models.presets import DEFAULT_PRESET
from promptlit.ui.modules import base, lm_salience
from promptlit.ui.state import SessionState

IG = "integrated_gradients"
PROMPT = "List: apple river stone\nAgain: apple"
TARGET = " river stone"
SPAN = (0, 2)


@pytest.fixture(scope="module")
def tiny():
    """The embedded tiny LM (presets/tiny_lm), loaded once for this module."""
    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip(f"{DEFAULT_PRESET} is not built yet (presets/build_tiny_lm.py)")
    from promptlit.models.keras_lm import KerasCausalLM

    return KerasCausalLM.from_preset(DEFAULT_PRESET, max_new_tokens=4)


@pytest.fixture()
def wb(tiny):
    """A fresh Workbench (empty salience cache) over the tiny LM and one prompt."""
    from promptlit.workbench import Workbench

    data = Dataset([{"prompt": PROMPT, "target": TARGET}], spec=prompt_spec())
    return Workbench(models={"tiny": tiny}, datasets={"d": data})


def _state(wb, steps: int) -> SessionState:
    st = SessionState(dataset="d", model="tiny", method=IG, ig_steps=steps,
                      explain_target="target")
    st.select_example(base.dataset_rows(wb, st)[0][0])
    st.explained, st.span = True, SPAN
    return st


def _direct(tiny, steps: int) -> np.ndarray:
    """What the model itself gives for the span, without any cache."""
    sal = tiny.salience(PROMPT, TARGET, methods=(IG,), ig_steps=steps, span=SPAN)
    return np.asarray(sal.for_span(*SPAN, IG).scores)


def test_span_ig_follows_the_steps_asked_for(wb, tiny):
    """IG with 2 steps, then 16 steps, for the same span: each gives its own numbers."""
    st = _state(wb, 2)
    ex = base.primary_example(wb, st)
    sal = lm_salience._matrix_salience(wb, st, ex)
    two = lm_salience.span_salience(wb, st, ex, sal, SPAN)
    st.ig_steps = 16
    sixteen = lm_salience.span_salience(wb, st, ex, sal, SPAN)
    expected2, expected16 = _direct(tiny, 2), _direct(tiny, 16)
    assert np.abs(expected2 - expected16).max() > 1e-3  # the steps really change the numbers
    np.testing.assert_allclose(two.scores, expected2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sixteen.scores, expected16, rtol=1e-5, atol=1e-7)
    assert two.method == sixteen.method == IG and two.signed and sixteen.signed
    assert sixteen.target_text == sal.for_span(*SPAN, "grad_l2").target_text == " river"
    assert (two.settings["ig_steps"], sixteen.settings["ig_steps"]) == (2, 16)
    # Back to 2 steps: the 2-step numbers again (from the cache, not the 16-step ones).
    st.ig_steps = 2
    again = lm_salience.span_salience(wb, st, ex, sal, SPAN)
    np.testing.assert_allclose(again.scores, expected2, rtol=1e-5, atol=1e-7)


def test_render_views_ranks_by_the_sessions_steps(wb):
    """The ranked table shows each steps setting's own scores."""
    st = _state(wb, 2)
    two = lm_salience.render_views(wb, st)["ranked"]
    st.ig_steps = 16
    sixteen = lm_salience.render_views(wb, st)["ranked"]
    st.ig_steps = 2
    assert sixteen != two and lm_salience.render_views(wb, st)["ranked"] == two


def test_cached_salience_is_never_changed_by_the_ui(wb, tiny):
    """The matrix result lives in the shared cache: UI calls leave it exactly as it was, and
    two sessions with different steps never see each other's numbers."""
    a, b = _state(wb, 2), _state(wb, 16)
    ex = base.primary_example(wb, a)
    sal = lm_salience._matrix_salience(wb, a, ex)
    before = {m: np.array(x) for m, x in sal.matrices.items()}
    spans_before = dict(sal.span_scores)
    methods_before = list(sal.methods)
    first_a = lm_salience.span_salience(wb, a, ex, sal, SPAN)
    first_b = lm_salience.span_salience(wb, b, ex, sal, SPAN)
    lm_salience.render_views(wb, a)
    lm_salience.render_views(wb, b)
    second_a = lm_salience.span_salience(wb, a, ex, sal, SPAN)
    second_b = lm_salience.span_salience(wb, b, ex, sal, SPAN)
    np.testing.assert_array_equal(second_a.scores, first_a.scores)
    np.testing.assert_array_equal(second_b.scores, first_b.scores)
    np.testing.assert_allclose(first_a.scores, _direct(tiny, 2), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(first_b.scores, _direct(tiny, 16), rtol=1e-5, atol=1e-7)
    # The cached matrix result is untouched: same object, same numbers, no span scores added.
    assert lm_salience._matrix_salience(wb, a, ex) is sal
    assert dict(sal.span_scores) == spans_before == {}
    assert list(sal.methods) == methods_before == list(lm_salience.MATRIX_METHODS)
    for m, x in before.items():
        np.testing.assert_array_equal(sal.matrices[m], x)
    # And it cannot be changed: read-only arrays, read-only mappings, no mutating method.
    with pytest.raises(ValueError, match="read-only"):
        sal.matrices["grad_l2"][0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        sal.offsets[0, 0] = 5
    with pytest.raises(TypeError):
        sal.matrices["grad_l2"] = np.zeros_like(before["grad_l2"])  # type: ignore[index]
    with pytest.raises(TypeError):
        sal.span_scores[(IG, *SPAN)] = first_a.scores  # type: ignore[index]
    assert not hasattr(sal, "add_span_scores")
    with pytest.raises(ValueError, match="read-only"):
        first_a.scores[0] = 0.0
