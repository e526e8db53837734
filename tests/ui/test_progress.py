"""Progress of long work (issue 15, item 4): reported between the kernels' compiled pieces,
monotonic up to 1.0, and shown once on the page (on the footer), not over every output.
"""

from __future__ import annotations

import os

import pytest

from promptlit.lib.cancel import Cancelled
from promptlit.ui import app
from promptlit.ui.modules import base

from .fakes import make_workbench

PROMPT = "List: apple river stone\nAgain: apple"
TARGET = " river stone"


class FakeProgress:
    """Records what a ``gr.Progress`` is called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[float | None, str | None]] = []

    def __call__(self, progress: float | None, desc: str | None = None, **_: object) -> None:
        self.calls.append((progress, desc))


def test_every_event_that_writes_the_footer_shows_its_progress_there_only():
    demo = app.build_app(make_workbench())
    footer = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "pl-footer")
    on_footer = [f for f in demo.fns.values() if any(o is footer for o in f.outputs)]
    assert len(on_footer) > 20  # every module's callbacks end with the footer
    wrong = [f.name for f in on_footer
             if f.show_progress != "hidden" and f.show_progress_on != [footer]]
    assert not wrong, wrong
    # Model events redraw every module: still one overlay, the footer's.
    explain = [f for f in on_footer if f.concurrency_id == "model"]
    assert explain and all(f.show_progress_on == [footer] for f in explain)
    assert max(len(f.outputs) for f in explain) > 10
    config = demo.get_config_file()
    by_id = {d["id"]: d for d in config["dependencies"]}
    assert all(by_id[f._id]["show_progress_on"] == [footer._id] for f in explain)


def test_progress_adapter_clamps_and_stops_a_cancelled_request(monkeypatch):
    bar = FakeProgress()
    report = base.progress_adapter(bar)
    for f in (0.0, 0.5, 1.2, -0.1, float("nan")):
        report(f, "m")
    assert [p for p, _ in bar.calls] == [0.0, 0.5, 1.0, 0.0, 0.0]
    monkeypatch.setattr(base, "client_gone", lambda: True)
    with pytest.raises(Cancelled):
        report(0.7, "m")
    assert len(bar.calls) == 5


@pytest.fixture(scope="module")
def tiny_workbench():
    from promptlit.models.presets import DEFAULT_PRESET

    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip(f"{DEFAULT_PRESET} is not built yet (presets/build_tiny_lm.py)")
    from promptlit.api.dataset import Dataset
    from promptlit.data import prompt_spec
    from promptlit.models.keras_lm import KerasCausalLM
    from promptlit.workbench import Workbench

    lm = KerasCausalLM.from_preset(DEFAULT_PRESET, max_new_tokens=4)
    data = Dataset([{"prompt": PROMPT, "target": TARGET}], spec=prompt_spec())
    return Workbench(models={"tiny": lm}, datasets={"d": data})


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [
    {"methods": ("grad_l2", "grad_dot_input", "integrated_gradients"), "ig_steps": 12,
     "ig_steps_per_call": 2},  # the IG matrix in 3 compiled pieces (alpha batches of 4)
    # span IG in several pieces (10 steps: with the 12 of the matrix above, the span would be
    # answered from that cached matrix, which is exact but computes nothing to report)
    {"methods": ("integrated_gradients",), "ig_steps": 10, "ig_steps_per_call": 2,
     "full_matrix": False, "span": (0, 1)},
])
def test_salience_progress_reaches_the_adapter_monotonic_up_to_one(tiny_workbench, kwargs):
    bar = FakeProgress()
    ex = tiny_workbench.datasets["d"].examples[0]
    tiny_workbench.salience("tiny", ex, target="target", progress=base.progress_adapter(bar),
                            **kwargs)
    fractions = [p for p, _ in bar.calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0, bar.calls
    assert all(a <= b for a, b in zip(fractions, fractions[1:], strict=False)), bar.calls
    # It moves between the compiled pieces (not only 0 then 1).
    inner = sorted({f for f in fractions if 0.0 < f < 1.0})
    assert len(inner) >= 2, bar.calls
    assert all(isinstance(d, str) and d for _, d in bar.calls)
    # A cached answer reports 1.0 at once.
    again = FakeProgress()
    tiny_workbench.salience("tiny", ex, target="target", progress=base.progress_adapter(again),
                            **kwargs)
    assert [p for p, _ in again.calls] == [1.0]
