"""Sequence salience interpreter: why did the LM write this response? (LIT's "Sequence Salience").

For each example, the interpreter asks the model's `salience(prompt, response, ...)` (a
`promptlit.models.KerasCausalLM`) for the full target x source matrix of the model's own response
(or of the example's reference `target`), and returns one
`promptlit.salience.result.SequenceSalience` per example.

Example:
    >>> interp = SequenceSalienceInterpreter()
    >>> sorted(interp.config_spec())
    ['ig_steps', 'method', 'target']
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from promptlit.api import types
from promptlit.api.components import Interpreter
from promptlit.api.types import JsonDict, Spec

METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input", "integrated_gradients")
TARGETS: tuple[str, ...] = ("response", "target")


def _inner(model: Any) -> Any:
    """The innermost model behind any wrappers (caching, ...)."""
    unwrap = getattr(model, "unwrap", None)
    return unwrap() if callable(unwrap) else model


class SequenceSalienceInterpreter(Interpreter):
    """Salience of every prompt (and earlier response) token for every response token.

    Methods: Grad L2 norm (unsigned), Gradient·Input (signed) and Integrated Gradients (signed,
    `ig_steps` midpoint steps; ~`ig_steps` times the cost). Explains the model's generated
    `response` (default) or the example's reference `target`.
    """

    _name = "sequence_salience"

    def is_compatible(self, model: Any, dataset: Any) -> bool:
        """A model with `.salience`, a TextSegment `prompt` input and a GeneratedText output."""
        del dataset
        inner = _inner(model)
        if not callable(getattr(inner, "salience", None)):
            return False
        try:
            in_spec, out_spec = model.input_spec(), model.output_spec()
        except Exception:  # noqa: BLE001 - a model that cannot report specs is not compatible
            return False
        return isinstance(in_spec.get("prompt"), types.TextSegment) and any(
            isinstance(t, types.GeneratedText) for t in out_spec.values())

    def config_spec(self) -> Spec:
        """method, ig_steps, and which text to explain (the generated response or the target)."""
        return {
            "method": types.CategoryLabel(vocab=list(METHODS), default="grad_l2",
                                          description="Salience method."),
            "ig_steps": types.Integer(min_val=1, max_val=256, default=16,
                                      description="Integrated Gradients steps."),
            "target": types.CategoryLabel(vocab=list(TARGETS), default="response",
                                          description="Explain the model's response or the "
                                                      "example's reference target."),
        }

    def meta_spec(self) -> Spec:
        """One `SequenceSalience` per example, under "sequence_salience"."""
        return {"sequence_salience": types.SequenceSalience()}

    def run(
        self,
        inputs: Sequence[JsonDict],
        model: Any,
        dataset: Any,
        model_outputs: Sequence[JsonDict] | None = None,
        config: JsonDict | None = None,
    ) -> list[Any]:
        """`SequenceSalience` per input (`promptlit.salience.result.SequenceSalience`).

        Args:
            inputs: examples with "prompt" (and "target" when config target is "target").
            model: a model with `salience(prompt, response, *, methods, ig_steps)`.
            dataset: unused.
            model_outputs: `model.predict(inputs)`; computed when None and needed.
            config: {"method": ..., "ig_steps": ..., "target": "response" | "target"}.

        Raises:
            ValueError: bad config, or target="target" on an example without a target (names
                the example index).
        """
        del dataset
        cfg = {k: v.default for k, v in self.config_spec().items()}
        cfg.update(config or {})
        method, target = str(cfg["method"]), str(cfg["target"])
        if method not in METHODS:
            raise ValueError(f"sequence_salience: method {method!r} is not one of {list(METHODS)}.")
        if target not in TARGETS:
            raise ValueError(f"sequence_salience: target {target!r} is not one of {list(TARGETS)}.")
        ig_steps = int(cfg["ig_steps"])
        if ig_steps < 1:
            raise ValueError(f"sequence_salience: ig_steps must be >= 1, got {ig_steps}.")
        inputs = list(inputs)
        if target == "response" and model_outputs is None:
            model_outputs = list(model.predict(inputs))
        results = []
        for i, ex in enumerate(inputs):
            if target == "response":
                assert model_outputs is not None
                text = model_outputs[i].get("response", "")
            else:
                text = ex.get("target")
                if not isinstance(text, str) or not text:
                    raise ValueError(f"sequence_salience: example {i} has no 'target' text; use "
                                     "target='response' to explain the model's generation.")
            prompt: str | list[dict[str, Any]] = str(ex.get("prompt", ""))
            kw: dict[str, Any] = {}
            if "chat_template" in inspect.signature(model.salience).parameters:
                # a chat model reads the conversation and the example's template choice
                from promptlit.models.chat import example_prompt

                prompt = example_prompt(ex)
                kw = {"chat_template": ex["chat_template"]} if ex.get("chat_template") else {}
            results.append(model.salience(prompt, text, methods=(method,), ig_steps=ig_steps,
                                          **kw))
        return results
