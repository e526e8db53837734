"""promptlit.ui.plots: Plotly figure JSON for gr.Plot, with every text inert and selections
checked (no browser; tests/e2e drives the charts)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from gradio.components.plot import PlotData

from promptlit.ui import plots

EVIL = '<img src=x onerror=alert(1)> <a href="https://evil.example">x</a> <b>&amp;</b> %{x}'
ALLOWED_MARKUP = ("<br>", "<extra></extra>")


def strings(value: Any) -> list[str]:
    """Every string in a JSON value (keys too)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def assert_inert(spec: dict[str, Any]) -> None:
    """No markup in the figure but the line breaks and hover boxes promptlit writes itself."""
    for text in strings(spec):
        for allowed in ALLOWED_MARKUP:
            text = text.replace(allowed, "")
        assert "<" not in text and ">" not in text, text


def test_text_escapes_what_plotly_would_render():
    assert plots.text(EVIL) == ('&lt;img src=x onerror=alert(1)&gt; &lt;a href="https://evil.'
                                'example"&gt;x&lt;/a&gt; &lt;b&gt;&amp;amp;&lt;/b&gt; %{x}')
    assert plots.hover(["<b>a</b>", 3]) == "&lt;b&gt;a&lt;/b&gt;<br>3"


def test_dataset_text_reaches_scatter_labels_only_escaped():
    points = [{"id": f"id{i}", "x": i, "y": i % 3, "hover": [EVIL, f"#{i}"]} for i in range(12)]
    fig = plots.scatter(points, x_title=EVIL, y_title=EVIL, title=EVIL,
                        colour_values=[EVIL if i % 2 else "<i>odd</i>" for i in range(12)],
                        colour_title=EVIL, y_categories=[EVIL, "b", "c"],
                        vlines=[(0.5, EVIL)], selected=["id3"], primary="id3")
    assert isinstance(fig, PlotData) and fig.type == "plotly"
    spec = plots.spec_of(fig)
    assert_inert(spec)
    assert spec["data"][0]["hovertemplate"] == "%{customdata[1]}<extra></extra>"
    hovers = [c[1] for t in spec["data"] for c in t["customdata"]]
    assert plots.hover([EVIL, "#3"]) in hovers
    assert {t["name"] for t in spec["data"]} == {plots.text(EVIL), plots.text("<i>odd</i>")}


def test_curves_and_lines_escape_names_and_titles():
    curves = plots.curves([{"name": EVIL, "points": [(0, 0), (0.5, 0.7), (1, 1)],
                            "colour": "#000"}], x_title=EVIL, y_title="y", title=EVIL,
                          marks=[{"x": 0.5, "y": 0.7, "colour": "#f00", "title": EVIL}])
    assert_inert(plots.spec_of(curves))
    for categorical in (False, True):
        fig = plots.lines([{"name": EVIL, "x": [EVIL, "b"] if categorical else [1, 2],
                            "y": [0.1, 0.2]}], x_title=EVIL, y_title="mean",
                          categorical=categorical, vlines=[(EVIL if categorical else 1, EVIL)])
        assert_inert(plots.spec_of(fig))


def test_numbers_are_json_safe_and_many_values_get_a_colour_scale():
    points = [{"id": str(i), "x": float(i), "y": math.nan if i == 3 else i / 2} for i in range(20)]
    values: list[Any] = [float(i) for i in range(19)] + [None]
    spec = plots.spec_of(plots.scatter(points, x_title="x", y_title="y", colour_values=values))
    json.dumps(spec, allow_nan=False)
    scale, missing = spec["data"]
    assert scale["marker"]["colorscale"] == "Viridis" and len(scale["x"]) == 19
    assert missing["name"] == "(none)" and missing["customdata"][0][0] == "19"
    assert None in scale["y"]  # NaN became null


def test_many_categories_share_one_other_colour():
    names, colours = plots.categories([f"c{i}" for i in range(14)])
    assert len(colours) == 11 and colours["other (4 more)"] == plots.OTHER_COLOUR
    assert names[-1] == "other (4 more)" and names[0] == "c0"


def test_large_scatter_uses_webgl():
    points = [{"id": str(i), "x": i, "y": i} for i in range(plots.WEBGL_ABOVE + 1)]
    assert plots.spec_of(plots.scatter(points, x_title="x", y_title="y"))["data"][0][
        "type"] == "scattergl"


def test_picked_is_bounded_by_the_dataset():
    known = ["a", "b", "c", "d"]
    assert plots.picked({"ids": ["b", "zz", "b", "a"], "add": 1, "how": "lasso"}, known) == (
        ["b", "a"], True, "lasso")
    assert plots.picked({"ids": "c", "how": "<script>"}, known) == (["c"], False, "click")
    with pytest.raises(ValueError, match="no examples in that selection"):
        plots.picked({"ids": ["zz"]}, known)
    with pytest.raises(ValueError, match="named 5 examples; the dataset has 4"):
        plots.picked({"ids": ["a"] * 5}, known)
    with pytest.raises(ValueError, match="must be a list"):
        plots.picked({"ids": {"a": 1}}, known)


def test_plot_host_carries_the_bridge_script():
    import gradio as gr

    with gr.Blocks():
        with plots.plot_host("pl-test-host") as host:
            gr.Plot(plots.empty("nothing"))
    assert host.js_on_load == plots.BRIDGE_JS and host.html_template == "@children"
    for hook in ("plotly_click", "plotly_selected", "plotly_relayout", "trigger('click'"):
        assert hook in plots.BRIDGE_JS
