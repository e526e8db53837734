"""A tiny fake language model for UI unit tests (no JAX): deterministic responses and salience.

Only for testing rendering, state and callbacks; the e2e tests use the real embedded model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.api.model import BatchedModel
from promptlit.salience.result import SequenceSalience

EXAMPLES = [
    {"prompt": "Likes: fish\nDislikes: pork\nSuggestion: pork chop\nRecommendation:",
     "target": " Avoid.", "source": "menu"},
    {"prompt": "Add 2 and 3.\nAnswer:", "target": " 5", "source": "math"},
    {"prompt": "Copy: <b>bold</b> & co\nCopy:", "target": " <b>bold</b> & co", "source": "copy"},
]


def _tokenize(text: str, start: int = 0) -> list[tuple[int, int]]:
    """Whitespace-led word pieces as char offsets (like SentencePiece's ▁word)."""
    return [(m.start() + start, m.end() + start) for m in re.finditer(r"\s*\S+|\s+$", text)]


class FakeLM(BatchedModel):
    """Responds with the reversed last word of the prompt plus " ok."; salience is synthetic:
    response token t attends to prompt token (t * 3) % P with weight t+1, and signed methods
    alternate signs so colours are testable."""

    def __init__(self, suffix: str = " ok.") -> None:
        self.suffix = suffix
        self.calls = {"predict": 0, "salience": 0}

    def input_spec(self) -> types.Spec:
        return {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}

    def output_spec(self) -> types.Spec:
        return {"response": types.GeneratedText(parent="target"),
                "response_tokens": types.Tokens(parent="response"),
                "response_logprobs": types.TokenScores(align="response_tokens")}

    def predict_minibatch(self, inputs: list[dict], **kw: Any) -> list[dict]:
        self.calls["predict"] += 1
        out = []
        for ex in inputs:
            words = ex["prompt"].split()
            response = " " + (words[-1][::-1] if words else "") + self.suffix
            toks = [response[s:e] for s, e in _tokenize(response)]
            out.append({"response": response, "response_tokens": toks,
                        "response_logprobs": [-0.1 * (i + 1) for i in range(len(toks))]})
        return out

    def salience(self, prompt: str, response: str, *, methods: Sequence[str] = ("grad_l2",),
                 ig_steps: int = 16, span: tuple[int, int] | None = None,
                 **kw: Any) -> SequenceSalience:
        self.calls["salience"] += 1
        text = prompt + response
        p_off = _tokenize(prompt)
        r_off = _tokenize(response, len(prompt))
        offsets = np.array(p_off + r_off, dtype=np.int64).reshape(-1, 2)
        n, p = len(offsets), len(p_off)
        t = n - p
        base = np.zeros((t, n))
        for i in range(t):
            base[i, (i * 3) % max(p, 1)] = i + 1.0
            base[i, p - 1] += 0.5
        matrices, span_scores = {}, {}
        for m in methods:
            if m == "grad_l2":
                matrices[m] = base
            elif m == "grad_dot_input":
                signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
                matrices[m] = base * signs
            elif m == "integrated_gradients":
                a, b = span or (0, t)
                span_scores[(m, a, b)] = -base[a:b].sum(axis=0)
        return SequenceSalience(text=text, prompt_length=len(prompt),
                                tokens=[text[s:e] for s, e in offsets], offsets=offsets,
                                num_prompt_tokens=p, matrices=matrices,
                                span_scores=span_scores,
                                signed={"integrated_gradients": True} if span_scores else {})


def make_workbench(**kw: Any) -> Any:
    """A real Workbench over FakeLM and the small EXAMPLES dataset."""
    from promptlit.data import prompt_spec
    from promptlit.workbench import Workbench

    data = Dataset([dict(e) for e in EXAMPLES], spec=prompt_spec())
    return Workbench(models={"fake": FakeLM()}, datasets={"toy": data}, **kw)
