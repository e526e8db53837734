"""The server's background warm-up (`promptlit.warmup.WarmUp`) over a fake LM: what it plans,
that it fills the Workbench caches (so a warmed example's explain is a cache hit), that it is
cancellable, that errors never escape it, and that `serve` starts and stops it."""

from __future__ import annotations

import logging

import pytest

from promptlit.warmup import WarmUp

from .ui.fakes import make_workbench


def test_plan_takes_one_example_per_length_bucket_per_model_and_dataset():
    wb = make_workbench()
    plan = WarmUp(wb, max_examples=5).plan()
    assert plan and all(m == "fake" and d == "toy" for m, d, _ in plan)
    assert plan[0][2] == 0
    assert len(plan) == len({i for _, _, i in plan}) <= 5
    assert len(WarmUp(wb, max_examples=1).plan()) == 1


def test_warmup_fills_the_caches_and_logs(caplog):
    wb = make_workbench()
    fake = wb.models["fake"]
    fake = fake.unwrap() if callable(getattr(fake, "unwrap", None)) else fake
    caplog.set_level(logging.DEBUG, logger="promptlit")
    w = WarmUp(wb, max_examples=1).start()
    assert w.wait(60) and not w.running and w.error is None
    assert [(m, d, i) for m, d, i, _ in w.done] == [("fake", "toy", 0)]
    calls = dict(fake.calls)
    ex = wb.datasets["toy"].examples[0]
    wb.predict("fake", "toy", [ex])
    wb.salience("fake", ex, methods=("grad_l2", "grad_dot_input"))  # what "explain" asks
    assert fake.calls == calls  # both were cache hits
    assert "warm-up: done" in caplog.text


def test_warmup_says_nothing_at_info(caplog):
    """A quiet start: `promptlit serve` prints its phase lines and the URL, nothing more; the
    warm-up's progress is for --verbose (DEBUG), only its errors are warnings."""
    caplog.set_level(logging.INFO, logger="promptlit")
    w = WarmUp(make_workbench(), max_examples=1).start()
    assert w.wait(60) and w.error is None and len(w.done) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_cancel_stops_it_between_pieces_of_work(caplog):
    wb = make_workbench()
    caplog.set_level(logging.DEBUG, logger="promptlit")
    w = WarmUp(wb)
    w._stop.set()  # cancelled before its first piece of work
    w.start()
    assert w.wait(60) and w.done == [] and w.error is None
    assert "cancelled" in caplog.text
    assert WarmUp(wb).cancel(timeout=0.1)  # never started: nothing to wait for


def test_an_error_is_logged_not_raised(caplog):
    wb = make_workbench()

    def boom(*a, **k):
        raise RuntimeError("no compiler today")

    wb.salience = boom  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="promptlit")
    w = WarmUp(wb, max_examples=1).start()
    assert w.wait(60) and isinstance(w.error, RuntimeError)
    assert "no compiler today" in caplog.text


@pytest.mark.parametrize("on", [True, False])
def test_serve_starts_it_and_stop_cancels_it(on):
    import promptlit as pl

    wb = make_workbench()
    server = pl.serve(wb, port=0, block=False, warmup=on)
    try:
        assert (server.warmup is not None) is on
        if on:
            assert server.warmup.wait(60)
    finally:
        server.stop()
    if on:
        assert not server.warmup.running


def test_a_request_for_what_is_being_computed_waits_for_it_instead_of_computing_again():
    import threading
    import time

    wb = make_workbench()
    fake = wb.models["fake"].unwrap()
    inner = fake.salience
    started = threading.Event()

    def slow(*a, **k):
        started.set()
        time.sleep(0.5)
        return inner(*a, **k)

    fake.salience = slow
    ex = wb.datasets["toy"].examples[0]
    wb.predict("fake", "toy", [ex])
    results = []
    first = threading.Thread(target=lambda: results.append(wb.salience("fake", ex)))
    first.start()
    assert started.wait(10)
    seen = []
    second = wb.salience("fake", ex, progress=lambda f, m: seen.append(m))  # while it runs
    first.join(10)
    assert fake.calls["salience"] == 1 and results[0] is second
    assert any("already being computed" in m for m in seen)
