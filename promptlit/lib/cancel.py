"""Cooperative cancellation of long work (salience, IG with many steps).

Long computations take a ``progress(fraction, message)`` callback and call it between pieces of
work. A caller that wants the work stopped (its client disconnected or pressed cancel) raises
`Cancelled` from that callback: the work stops at the next piece boundary, the exception
propagates to the caller, and nothing partial is cached.

Example:
    >>> def progress(fraction: float, message: str) -> None:
    ...     raise Cancelled("the client disconnected")  # e.g. when the request is gone
    >>> try:
    ...     progress(0.25, "integrated gradients: 32/128 steps")
    ... except Cancelled as e:
    ...     print(e)
    the client disconnected
"""

from __future__ import annotations

__all__ = ["Cancelled"]


class Cancelled(Exception):  # noqa: N818 - the name says what happened, as asyncio's does
    """The caller went away or cancelled; stop the work.

    Raised from a ``progress(fraction, message)`` callback; the computation calling it stops at
    its next piece boundary and lets the exception propagate, caching nothing partial.
    """
