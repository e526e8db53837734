"""Tests for promptlit.ui.render: escaping, colour sign, selected-span markup, ranking order."""

import re

import numpy as np
import pytest

from promptlit.salience.aggregation import Segment
from promptlit.salience.result import SequenceSalience
from promptlit.ui import render


def _sal() -> SequenceSalience:
    text = "Say <hi> & $x.\nHi! ok"
    offsets = np.array([[0, 3], [3, 8], [8, 10], [10, 14], [14, 15], [15, 18], [18, 21]])
    # prompt = "Say <hi> & $x.\n" (15 chars, 5 tokens); response "Hi! ok" (2 tokens)
    matrix = np.array([[1.0, 4.0, 0.0, 2.0, 0.0, 0.0, 0.0],
                       [0.0, -1.0, 3.0, 0.0, 0.0, 5.0, 0.0]])
    return SequenceSalience(text=text, prompt_length=15, tokens=[text[s:e] for s, e in offsets],
                            offsets=offsets, num_prompt_tokens=5,
                            matrices={"grad_l2": np.abs(matrix), "grad_dot_input": matrix})


def test_escape_text_escapes_html_and_template_characters():
    out = render.escape_text('<script>alert("x")</script> & ${v} `t`')
    assert "<" not in out and ">" not in out and '"' not in out
    assert "&lt;script&gt;" in out and "&amp;" in out
    assert "$" not in out and "{" not in out and "`" not in out
    assert "&#36;&#123;v&#125;" in out


def test_heatmap_escapes_and_keeps_newlines_and_gaps():
    text = "a<b\nc d"
    html = render.heatmap_html(text, [Segment("a<b", 0, 3, 2.0), Segment("d", 6, 7, 1.0)],
                               signed=False)
    assert "a&lt;b" in html
    assert "\nc " in html  # the uncovered gap (newline, "c ") is kept verbatim
    assert html.count('class="pl-seg"') == 2
    assert 'title="score 2"' in html and 'title="score 1"' in html


def test_colour_sign_and_scale():
    assert render.colour_for(1.0, True) == "rgba(33,102,172,1.000)"  # positive: blue
    assert render.colour_for(-0.5, True) == "rgba(178,24,43,0.500)"  # negative: red
    assert render.colour_for(0.25, False) == "rgba(106,61,154,0.250)"  # sequential purple
    assert render.colour_for(-1.0, False).endswith(",0.000)")  # unsigned ignores negatives
    assert render.colour_for(0.4, False, intensity=2.0).endswith(",0.800)")
    assert render.colour_for(0.9, False, intensity=3.0).endswith(",1.000)")  # clipped


def test_heatmap_colours_follow_sign_for_signed_methods():
    html = render.heatmap_html("pos neg", [Segment("pos", 0, 3, 2.0), Segment("neg", 4, 7, -1.0)],
                               signed=True)
    pos, neg = re.findall(r"background-color:rgba\(([\d,]+),([\d.]+)\)", html)
    assert pos == ("33,102,172", "1.000")
    assert neg == ("178,24,43", "0.500")


def test_salience_view_marks_selected_span_and_indexes_response_tokens():
    sal = _sal()
    span = sal.for_span(1, 2, "grad_l2")
    html = render.salience_view_html(sal, span, granularity="words", selected=(1, 2))
    assert re.findall(r'data-index="(\d+)"', html) == ["0", "1"]
    selected = re.findall(r'class="pl-resp pl-selected"[^>]*data-index="(\d+)"', html)
    assert selected == ["1"]
    assert "&lt;hi&gt;" in html and "&amp;" in html and "&#36;x" in html
    # before any salience: no colours, tokens still clickable
    plain = render.salience_view_html(sal, None)
    assert "background-color" not in plain and plain.count("data-index=") == 2


def test_rank_segments_orders_by_abs_for_signed_and_value_for_unsigned():
    segs = [Segment("a", 0, 1, 1.0), Segment("b", 2, 3, -3.0), Segment("c", 4, 5, 2.0),
            Segment(" ", 5, 6, 9.0)]
    assert [s.text for s in render.rank_segments(segs, signed=True)] == ["b", "c", "a"]
    assert [s.text for s in render.rank_segments(segs, signed=False)] == ["c", "a", "b"]
    assert [s.text for s in render.rank_segments(segs, signed=True, k=1)] == ["b"]


def test_ranked_table_lists_top_k_in_order_with_exact_scores():
    sal = _sal()
    span = sal.for_span(0, 2, "grad_dot_input")
    segs = span.aggregate("tokens", side="prompt")
    html = render.ranked_table_html(segs, signed=True, k=3, granularity="tokens")
    rows = re.findall(r'<tr data-rank="(\d)">.*?title="([^"]*)".*?>([-\d.e]+)</td>', html)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [r[1] for r in rows] == [" &lt;hi&gt;", " &amp;", " &#36;x."]
    assert [float(r[2]) for r in rows] == [3.0, 3.0, 2.0]
    assert "No salience" in render.ranked_table_html([], signed=True)
    tagged = render.ranked_table_html(segs, signed=True, attrs={"span": "0:2", "m": 'a"b'})
    assert tagged.startswith('<table class="pl-ranked" data-span="0:2" data-m="a&quot;b">')


def test_legend_says_signed_or_not():
    assert 'data-signed="true"' in render.legend_html("Grad·Input", True)
    assert "diverging" in render.legend_html("x", True)
    assert "sequential" in render.legend_html("Grad L2", False)


def test_matrix_html_cells_and_missing_method():
    sal = _sal()
    html = render.matrix_html(sal, "grad_l2", granularity="tokens")
    assert 'grid-template-columns: 8em repeat(5,' in html
    assert html.count('class="pl-mrow"') == 2
    assert "&lt;hi&gt; ← " not in html  # cell titles use the response token then the source
    assert "No full matrix" in render.matrix_html(sal, "integrated_gradients")


@pytest.mark.parametrize("signed", [True, False])
def test_normalize_range(signed):
    x = render.normalize([2.0, -4.0, 1.0], signed)
    assert np.max(np.abs(x)) == pytest.approx(1.0)
    if not signed:
        assert x.min() >= 0
