"""Request limits: every size a browser or API caller controls is bounded here.

A share link is the public internet: one caller must not be able to make a request so large that
every other client waits behind it. Whoever starts the server may raise or lower the limits
(`promptlit serve --max-ig-steps ...`, or ``pl.serve(wb, limits=RequestLimits(...))``); callers
get a clear error naming the limit and how to stay within it.

Example:
    >>> limits = RequestLimits(max_ig_steps=64)
    >>> limits.check_int("ig_steps", 16, low=1, high=limits.max_ig_steps)
    16
    >>> limits.check_int("ig_steps", 1024, low=1, high=limits.max_ig_steps)
    Traceback (most recent call last):
    ...
    promptlit.ui.limits.LimitError: ig_steps must be between 1 and 64, got 1024
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["LimitError", "RequestLimits"]


class LimitError(ValueError):
    """A request asked for more than this server allows (or for a nonsensical size)."""


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for.

    Attributes:
      max_ig_steps: Integrated Gradients steps per request (cost grows linearly with them).
      max_prompt_chars: characters of a prompt typed into the page or sent to the API.
      max_top_k: segments a ranked list may return.
      max_examples_per_request: examples one request may run a model on at once (e.g. the
        selection a counterfactual generator or a prediction table works through).
      max_session_examples: examples one browser or API session may add to its datasets.
      max_queue: requests that may wait for the model at once; more get "busy, retry".
      max_upload_mb: largest file the server accepts as an upload, in megabytes.
      max_contrast_chars: characters of a contrast text (the alternative continuation B of
        "why A rather than B?"; it is run through the model with the prompt).
      max_separator_chars: characters of a separator regex typed for the "blocks" granularity
        (at most `promptlit.lib.segmentation.MAX_SEPARATOR_CHARS`, the pattern library's own cap;
        each search also stops after `SEPARATOR_TIMEOUT_S` seconds).
    """

    max_ig_steps: int = 256
    max_prompt_chars: int = 20_000
    max_top_k: int = 200
    max_examples_per_request: int = 64
    max_session_examples: int = 1000
    max_queue: int = 16
    max_upload_mb: float = 5.0
    max_contrast_chars: int = 500
    max_separator_chars: int = 200

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"RequestLimits.{field.name} must be a number > 0, got {value!r}")

    @staticmethod
    def check_int(name: str, value: Any, *, low: int, high: int) -> int:
        """``value`` as an int within ``[low, high]``, else a `LimitError` that says so.

        Strings of digits are accepted (query parameters and JSON clients send them); bools,
        fractions and other text are refused with the field's name.
        """
        if isinstance(value, bool):
            raise LimitError(f"{name} must be a whole number, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if not isinstance(value, int):
            raise LimitError(f"{name} must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise LimitError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def check_prompt(self, prompt: str, *, where: str = "prompt") -> str:
        """``prompt`` unchanged when it is within `max_prompt_chars`, else a `LimitError`."""
        if len(prompt) > self.max_prompt_chars:
            raise LimitError(f"{where} has {len(prompt):,} characters; this server accepts at "
                             f"most {self.max_prompt_chars:,}. Shorten it, or start the server "
                             "with a larger --max-prompt-chars")
        return prompt

    def check_separator(self, text: str) -> str:
        """A separator regex for the "blocks" granularity: ``text`` unchanged when it is within
        `max_separator_chars` (and the pattern library's own cap), else a `LimitError`."""
        from promptlit.lib.segmentation import MAX_SEPARATOR_CHARS

        text = "" if text is None else str(text)
        most = min(self.max_separator_chars, MAX_SEPARATOR_CHARS)
        if len(text) > most:
            raise LimitError(f"the separator has {len(text):,} characters; this server accepts "
                             f"at most {most:,}. Shorten it")
        return text

    def check_contrast(self, text: str) -> str:
        """``text`` (a contrast, B) unchanged when it is within `max_contrast_chars` and not
        empty, else a `LimitError` that says so."""
        if not isinstance(text, str) or not text:
            raise LimitError("contrast must be a non-empty text: the alternative continuation B "
                             "to compare the selected response span with (e.g. ' Avoid')")
        if len(text) > self.max_contrast_chars:
            raise LimitError(f"contrast has {len(text):,} characters; this server accepts at "
                             f"most {self.max_contrast_chars:,}. Compare with a shorter "
                             "alternative")
        return text
