"""Tests for promptlit.notebook: the inline widget's server, frame, render(data=...) and stop.

Uses the fake LM of the UI tests (no JAX); the notebooks under examples/ are executed for real in
tests/test_examples.py.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from promptlit import notebook
from promptlit.lib.validation import DataError

sys.path.insert(0, str(Path(__file__).parent / "ui"))
from fakes import EXAMPLES, FakeLM  # noqa: E402

from promptlit.api.dataset import Dataset  # noqa: E402


def status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status


@pytest.fixture
def widget():
    w = notebook.Workbench({"fake": FakeLM()}, {"menu": Dataset(list(EXAMPLES))}, height=640)
    yield w
    w.stop()


def test_render_serves_the_app_in_an_iframe(widget):
    assert widget.url is None
    frame = widget.render(layout="simple", dataset="menu", example=1)
    parts = urllib.parse.urlsplit(frame.url)
    assert parts.hostname == "127.0.0.1" and widget.url.startswith(f"http://127.0.0.1:{parts.port}")
    assert urllib.parse.parse_qs(parts.query) == {"dataset": ["menu"], "example": ["1"],
                                                  "layout": ["simple"]}
    html = frame._repr_html_()
    assert html.startswith('<iframe class="promptlit-frame" src="http://127.0.0.1:')
    assert 'height="640"' in html and "&amp;example=1" in html
    assert status(frame.url) == 200
    # A second render reuses the running server.
    again = widget.render(height=300)
    assert again.url == widget.url and 'height="300"' in again._repr_html_()


def test_render_data_puts_examples_in_front(widget):
    mine = [{"prompt": "Name a fruit:"}, {"prompt": "Name a colour:", "target": " red"}]
    frame = widget.render(data=mine)
    assert "dataset=notebook_data&example=0" in frame.url
    ds = widget.workbench.datasets[notebook.RENDER_DATASET]
    assert [ex["prompt"] for ex in ds.examples] == ["Name a fruit:", "Name a colour:"]
    assert set(ds.spec()) == {"prompt", "target", "source"}  # the loaded dataset's spec
    # The façade answers for them as for any dataset; rendering again replaces them.
    out = widget.workbench.predict("fake", notebook.RENDER_DATASET, ds.examples[:1])[0]
    assert out["response"] == " :tiurf ok."
    widget.render(data=[{"prompt": "Only me"}])
    assert len(widget.workbench.datasets[notebook.RENDER_DATASET]) == 1


def test_bad_render_input_is_explained_and_keeps_what_was_loaded(widget):
    with pytest.raises(ValueError, match="got no examples"):
        widget.render(data=[])
    with pytest.raises(KeyError, match=r"unknown dataset 'nope'; loaded datasets: \['menu'\]"):
        widget.render(dataset="nope")
    with pytest.raises(DataError, match="prompt"):
        widget.render(data=[{"prompt": 3}])
    assert list(widget.workbench.datasets) == ["menu"]


def test_two_widgets_have_their_own_servers_and_stop_frees_them():
    a = notebook.Workbench({"fake": FakeLM()}, {"menu": Dataset(list(EXAMPLES))})
    b = notebook.Workbench({"fake": FakeLM()}, {"menu": Dataset(list(EXAMPLES))})
    try:
        url_a, url_b = a.render().url, b.render().url
        assert url_a != url_b and status(url_a) == status(url_b) == 200
        a.stop()
        assert a.url is None
        with pytest.raises(urllib.error.URLError):
            status(url_a)
        assert status(url_b) == 200
    finally:
        a.stop()
        b.stop()
