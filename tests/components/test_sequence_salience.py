"""SequenceSalienceInterpreter with a fake LM (no Keras): compatibility, config, run."""

from __future__ import annotations

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.model import BatchedModel, CachingModelWrapper
from promptlit.components.sequence_salience import SequenceSalienceInterpreter
from promptlit.salience.result import SequenceSalience


class FakeLM(BatchedModel):
    """Echoes the prompt reversed; salience = a ones matrix scaled by ig_steps."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...], int]] = []

    def input_spec(self):
        return {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}

    def output_spec(self):
        return {"response": types.GeneratedText(parent="target")}

    def predict_minibatch(self, inputs, **kw):
        return [{"response": " " + ex["prompt"][::-1]} for ex in inputs]

    def salience(self, prompt, response, *, methods=("grad_l2",), ig_steps=16):
        self.calls.append((prompt, response, tuple(methods), ig_steps))
        text = prompt + response
        offsets = np.array([[0, len(prompt)], [len(prompt), len(text)]])
        return SequenceSalience(text=text, prompt_length=len(prompt), tokens=[prompt, response],
                                offsets=offsets, num_prompt_tokens=1,
                                matrices={methods[0]: np.full((1, 2), float(ig_steps))})


class NoSalience(FakeLM):
    salience = None  # type: ignore[assignment]


class Classifier(FakeLM):
    def output_spec(self):
        return {"label": types.CategoryLabel(vocab=["a", "b"])}


def test_registered_name_and_config_spec():
    interp = SequenceSalienceInterpreter()
    assert interp.name == "sequence_salience"
    spec = interp.config_spec()
    assert spec["method"].vocab == ["grad_l2", "grad_dot_input", "integrated_gradients"]
    assert spec["target"].vocab == ["response", "target"] and spec["target"].default == "response"
    assert spec["ig_steps"].default == 16
    assert isinstance(interp.meta_spec()["sequence_salience"], types.SequenceSalience)


def test_is_compatible_needs_salience_prompt_and_generated_text():
    interp = SequenceSalienceInterpreter()
    assert interp.is_compatible(FakeLM(), None)
    assert interp.is_compatible(CachingModelWrapper(FakeLM(), "lm"), None)
    assert not interp.is_compatible(NoSalience(), None)
    assert not interp.is_compatible(Classifier(), None)


def test_run_explains_the_response_or_the_target():
    lm = FakeLM()
    interp = SequenceSalienceInterpreter()
    inputs = [{"prompt": "abc", "target": " xyz"}, {"prompt": "de", "target": " w"}]
    out = interp.run(inputs, lm, None)
    assert [s.response_text for s in out] == [" cba", " ed"]
    assert lm.calls[0] == ("abc", " cba", ("grad_l2",), 16)
    out = interp.run(inputs, lm, None, config={"target": "target", "method": "grad_dot_input",
                                               "ig_steps": 4})
    assert [s.response_text for s in out] == [" xyz", " w"]
    assert out[0].matrices["grad_dot_input"].tolist() == [[4.0, 4.0]]
    given = [{"response": " given"}, {"response": " too"}]
    out = interp.run(inputs, lm, None, model_outputs=given)
    assert [s.response_text for s in out] == [" given", " too"]


def test_run_reports_bad_config_and_missing_target():
    interp = SequenceSalienceInterpreter()
    with pytest.raises(ValueError, match="method 'attention'"):
        interp.run([{"prompt": "a"}], FakeLM(), None, config={"method": "attention"})
    with pytest.raises(ValueError, match="example 1 has no 'target'"):
        interp.run([{"prompt": "a", "target": " b"}, {"prompt": "c"}], FakeLM(), None,
                   config={"target": "target"})
