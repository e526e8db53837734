"""Warm-up: compile what the first clicks will need, in the background, when a server starts.

The first "Generate & explain" after a start otherwise pays for compiling the generation and the
salience kernels at its length buckets (seconds to minutes on a small CPU). `WarmUp` runs, in
one daemon thread, what that click runs: for every language model and dataset, the Workbench's
`predict` and full-matrix `salience` (Grad L2 + Grad·Input) of the first example of each distinct
length bucket among the dataset's first examples (`promptlit.salience.kernels.bucket_length` of
the prompt's characters is only a proxy before tokenizing, so examples are taken in order and a
bucket is skipped once an example of it ran). The kernels compile for those buckets, JAX's
persistent compilation cache (``promptlit serve``: under ``--cache-dir``) keeps them for the
next start, and the results land in the Workbench caches, so explaining a warmed example is a
cache hit.

It never blocks the page: the server is up before it starts, requests run beside it (they share
the CPU; the model calls are thread-safe JAX calls), and `WarmUp.cancel` (called by
`promptlit.server.Server.stop`) stops it between pieces of work (the Workbench's progress
callback raises `promptlit.lib.cancel.Cancelled`). Every step is logged on the ``promptlit``
logger. ``promptlit serve --no-warmup`` (``serve(..., warmup=False)``) turns it off.

Example:
    >>> w = WarmUp(wb, max_examples=1).start()     # doctest: +SKIP
    >>> w.wait(600); w.done                         # doctest: +SKIP
    [('tiny', 'sample_prompts', 0, 41.2)]
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from promptlit.lib.cancel import Cancelled

__all__ = ["WarmUp"]

logger = logging.getLogger("promptlit.warmup")

MATRIX_METHODS = ("grad_l2", "grad_dot_input")


class WarmUp:
    """Explains a few examples per language model and dataset in a background thread.

    Args:
      workbench: the `promptlit.workbench.Workbench` being served.
      max_examples: at most this many examples per model and dataset (one per length bucket).
      scan: how many of a dataset's first examples are looked at to find distinct buckets.

    Attributes:
      done: ``(model, dataset, example index, seconds)`` of every example warmed, in order.
      error: the exception that stopped it (None: finished or cancelled).
    """

    def __init__(self, workbench: Any, *, max_examples: int = 2, scan: int = 32) -> None:
        self.workbench = workbench
        self.max_examples = int(max_examples)
        self.scan = int(scan)
        self.done: list[tuple[str, str, int, float]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the plan -------------------------------------------------------------------------
    def _models(self) -> list[str]:
        out = []
        for name, m in self.workbench.models.items():
            inner = m.unwrap() if callable(getattr(m, "unwrap", None)) else m
            if callable(getattr(inner, "salience", None)) and callable(
                    getattr(inner, "generate", None) or getattr(inner, "predict", None)):
                out.append(name)
        return out

    def plan(self) -> list[tuple[str, str, int]]:
        """``(model, dataset, example index)`` to warm, in order: for each model and dataset,
        the first example of each distinct length bucket among its first ``scan`` examples, at
        most ``max_examples``."""
        from promptlit.salience.kernels import bucket_length

        out = []
        for model in self._models():
            for ds_name, ds in self.workbench.datasets.items():
                examples = list(getattr(ds, "examples", []))[: self.scan]
                seen: set[int] = set()
                for i, ex in enumerate(examples):
                    data = ex.get("data", ex) if isinstance(ex, dict) else {}
                    prompt = data.get("prompt") if isinstance(data, dict) else None
                    if not isinstance(prompt, str) or not prompt:
                        continue
                    # ~4 characters a token: the bucket the prompt will most likely land in
                    b = bucket_length(max(1, len(prompt) // 4))
                    if b in seen:
                        continue
                    seen.add(b)
                    out.append((model, ds_name, i))
                    if len(seen) >= self.max_examples:
                        break
        return out

    # -- running --------------------------------------------------------------------------
    def _check(self, _fraction: float = 0.0, _message: str = "") -> None:
        if self._stop.is_set():
            raise Cancelled("warm-up cancelled (the server is stopping)")

    def run(self) -> None:
        """Warms every planned example in this thread (`start` runs it in a daemon thread)."""
        wb = self.workbench
        try:
            plan = self.plan()
            logger.debug("warm-up: %d example(s) to explain in the background: %s", len(plan),
                         ", ".join(f"{m}/{d}#{i}" for m, d, i in plan) or "none")
            for model, ds_name, index in plan:
                self._check()
                ex = wb.datasets[ds_name].examples[index]
                start = time.perf_counter()
                wb.predict(model, ds_name, [ex], progress=self._check)
                self._check()
                wb.salience(model, ex, methods=MATRIX_METHODS, progress=self._check)
                seconds = time.perf_counter() - start
                self.done.append((model, ds_name, index, seconds))
                logger.debug("warm-up: %s on %s example %d explained in %.1f s", model, ds_name,
                             index, seconds)
            logger.debug("warm-up: done (%d example(s))", len(self.done))
        except Cancelled:
            logger.debug("warm-up: cancelled after %d example(s)", len(self.done))
        except Exception as e:  # noqa: BLE001 - a warm-up failure must not stop the server
            self.error = e
            logger.warning("warm-up: stopped by an error (the server is unaffected): %s", e,
                           exc_info=logger.isEnabledFor(logging.DEBUG))
        finally:
            self._finished.set()

    def start(self) -> WarmUp:
        """Starts `run` in a daemon thread named ``promptlit-warmup``; returns self."""
        self._thread = threading.Thread(target=self.run, name="promptlit-warmup", daemon=True)
        self._thread.start()
        return self

    def cancel(self, timeout: float = 10.0) -> bool:
        """Asks the thread to stop at its next check and waits up to ``timeout`` s; returns
        whether it has stopped (a compile in progress finishes first)."""
        self._stop.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the warm-up finished (or stopped); returns whether it did."""
        if self._thread is None:
            return True
        return self._finished.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is still working."""
        return self._thread is not None and not self._finished.is_set()
