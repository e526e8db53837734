"""Workbench.salience(contrast=...) and Workbench.attention: cache keys hold everything that changes
the numbers, results persist (SQLite) and come back equal."""

from __future__ import annotations

import re

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.model import BatchedModel
from promptlit.salience.attention import AttentionMaps
from promptlit.salience.result import SequenceSalience
from promptlit.workbench import Workbench


def _sal(prompt: str, response: str, **kw: object) -> SequenceSalience:
    text = prompt + response
    offsets = [m.span() for m in re.finditer(r"\S+\s*", text)]
    p = sum(1 for s, _ in offsets if s < len(prompt))
    return SequenceSalience(text=text, prompt_length=len(prompt),
                            tokens=[text[s:e] for s, e in offsets], offsets=np.array(offsets),
                            num_prompt_tokens=p, **kw)  # type: ignore[arg-type]


class ContrastLM(BatchedModel):
    """Word tokens; contrastive scores encode B's length so different contrasts differ."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def input_spec(self):
        return {"prompt": types.TextSegment()}

    def output_spec(self):
        return {"response": types.GeneratedText()}

    def predict_minibatch(self, inputs):
        return [{"response": " yes it is"} for _ in inputs]

    def salience(self, prompt, response, *, methods=("grad_l2",), ig_steps=16, span=None,
                 contrast=None):
        self.calls.append(("salience", response, span, contrast))
        base = _sal(prompt, response)
        t, n = base.num_response_tokens, base.num_tokens
        if contrast is None:
            return _sal(prompt, response, matrices={m: np.ones((t, n)) for m in methods})
        a, b = span or (0, t)
        return _sal(prompt, response,
                    span_scores={(m, a, b): np.full(n, -float(len(contrast))) for m in methods},
                    metadata={"contrast": {"text": contrast, "start": a, "stop": b},
                              "settings": {m: {"contrast": contrast} for m in methods}})

    def attention(self, prompt, response, span=None):
        self.calls.append(("attention", response) if span is None else
                          ("attention", response, span))
        sal = _sal(prompt, response)
        t, n = sal.num_response_tokens, sal.num_tokens
        a, b = span or (0, t)
        w = np.full((2, 3, b - a, n), 1.0 / n, np.float32)
        return AttentionMaps(_sal(prompt, response), w, a)


EX = {"prompt": "Say yes or no:"}


def test_contrast_is_in_the_salience_key(tmp_path) -> None:
    lm = ContrastLM()
    wb = Workbench(models={"lm": lm}, datasets={}, cache_dir=tmp_path)
    plain = wb.salience("lm", EX, methods=("grad_dot_input",))
    avoid = wb.salience("lm", EX, methods=("grad_dot_input",), span=(0, 1), contrast=" no")
    other = wb.salience("lm", EX, methods=("grad_dot_input",), span=(0, 1), contrast=" never")
    again = wb.salience("lm", EX, methods=("grad_dot_input",), span=[0, 1], contrast=" no")
    assert again is avoid and plain.contrast is None
    assert avoid.contrast["text"] == " no" and other.contrast["text"] == " never"
    assert avoid.for_span(0, 1, "grad_dot_input").scores[0] == -3.0
    assert other.for_span(0, 1, "grad_dot_input").scores[0] == -6.0
    assert [c[3] for c in lm.calls if c[0] == "salience"] == [None, " no", " never"]
    # a new Workbench on the same cache directory: served from SQLite, equal and frozen
    lm2 = ContrastLM()
    wb2 = Workbench(models={"lm": lm2}, datasets={}, cache_dir=tmp_path)
    back = wb2.salience("lm", EX, methods=("grad_dot_input",), span=(0, 1), contrast=" no")
    assert [c for c in lm2.calls if c[0] == "salience"] == []
    assert back.contrast["text"] == " no"
    np.testing.assert_array_equal(back.span_scores[("grad_dot_input", 0, 1)],
                                  avoid.span_scores[("grad_dot_input", 0, 1)])
    for bad in ("", 5):
        with pytest.raises(ValueError, match="contrast"):
            wb.salience("lm", EX, contrast=bad)  # type: ignore[arg-type]


def test_attention_is_cached_by_model_prompt_and_text(tmp_path) -> None:
    lm = ContrastLM()
    wb = Workbench(models={"lm": lm}, datasets={}, cache_dir=tmp_path)
    first = wb.attention("lm", EX)
    assert wb.attention("lm", EX) is first
    other = wb.attention("lm", EX, response=" no")
    assert other is not first and other.salience.response_text == " no"
    assert [c for c in lm.calls if c[0] == "attention"] == [("attention", " yes it is"),
                                                            ("attention", " no")]
    lm2 = ContrastLM()
    back = Workbench(models={"lm": lm2}, datasets={}, cache_dir=tmp_path).attention("lm", EX)
    assert lm2.calls == [] or all(c[0] != "attention" for c in lm2.calls)
    np.testing.assert_array_equal(back.weights, first.weights)
    assert not back.weights.flags.writeable
    with pytest.raises(ValueError, match="target"):
        wb.attention("lm", EX, target="target")
    part = wb.attention("lm", EX, span=[1, 2])
    assert (part.start, part.stop) == (1, 2) and wb.attention("lm", EX, span=(1, 2)) is part
    assert lm.calls[-1] == ("attention", " yes it is", (1, 2))
