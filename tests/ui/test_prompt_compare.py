"""The "Compare prompts" module (issue 14, part 2) over a real Workbench with the fake LM:
drawing, escaping, no model call on a redraw, errors in the footer, wiring."""

from __future__ import annotations

import gradio as gr
import pytest

from promptlit.ui import app
from promptlit.ui.modules import base, prompt_compare
from promptlit.ui.state import SessionState

from .fakes import make_workbench


@pytest.fixture
def wb():
    return make_workbench()


def ids(wb, st) -> list[str]:
    return [r[0] for r in base.dataset_rows(wb, st)]


def ready(wb, **view) -> SessionState:
    st = SessionState(dataset="toy", model="fake")
    rows = ids(wb, st)
    prompt_compare.settings(st).update({"a": rows[0], "b": rows[2], "done": True,
                                        "picked": True, **view})
    return st


def test_nothing_is_computed_before_compare(wb):
    st = SessionState(dataset="toy", model="fake")
    out = prompt_compare.render_views(wb, st)
    assert "press “Compare”" in out["side"]
    assert wb.models["fake"].unwrap().calls == {"predict": 0, "salience": 0}
    # defaults follow the selection: the selected row and the next one
    st.select_example(ids(wb, st)[1])
    assert prompt_compare.default_pair(wb, st) == (ids(wb, st)[1], ids(wb, st)[2])


def test_side_by_side_changed_and_responses_escape_the_text(wb):
    st = ready(wb, granularity="words")
    out = prompt_compare.render_views(wb, st)
    side = out["side"]
    assert side.count("<tr class=") == side.count("data-op=")
    assert 'data-op="changed"' in side and 'data-granularity="words"' in side
    assert "&lt;b&gt;bold&lt;/b&gt;" in side and "<b>bold" not in side  # example 3's text
    assert "A (#0)" in side and "B (#2)" in side
    assert 'class="pl-ranked pl-cmp-changed-table"' in out["changed"]
    assert "RESPONSE A" in out["responses"] and "<del" in out["responses"]
    assert "granularity **words**" in str(out["info"])
    assert "shares of each prompt" in str(out["info"])


def test_redraws_use_the_cache(wb):
    fake = wb.models["fake"].unwrap()
    st = ready(wb)
    prompt_compare.render_views(wb, st)
    calls = dict(fake.calls)
    for g in ("words", "lines", "few-shot", "paragraphs"):
        prompt_compare.settings(st)["granularity"] = g
        prompt_compare.render_views(wb, st)
    prompt_compare.settings(st)["normalize"] = False
    prompt_compare.render_views(wb, st)
    assert fake.calls == calls


def test_blocks_and_segments_say_what_they_need(wb):
    st = ready(wb, granularity="blocks", separator="")
    with pytest.raises(ValueError, match="splits the prompt at a separator"):
        prompt_compare.render_views(wb, st)
    prompt_compare.settings(st)["separator"] = "(("
    with pytest.raises(ValueError, match="not a valid regular expression"):
        prompt_compare.render_views(wb, st)
    prompt_compare.settings(st)["separator"] = "^Copy"
    assert 'data-granularity="blocks /^Copy/"' in prompt_compare.render_views(wb, st)["side"]
    prompt_compare.settings(st)["granularity"] = "segments"
    with pytest.raises(ValueError, match="defines no segments"):
        prompt_compare.render_views(wb, st)


def _fn(demo, elem_id: str, event: str = "click"):
    """The event function wired to the component ``elem_id``'s ``event``."""
    comp = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    return next(f for f in demo.fns.values() if (comp._id, event) in f.targets)


def test_wiring_compare_button_and_errors_in_the_footer(wb):
    demo = app.build_app(wb, layout="lm")
    ids_ = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"pl-prompt-compare", "pl-cmp-run", "pl-cmp-side", "pl-cmp-separator"} <= ids_
    fn = _fn(demo, "pl-cmp-run")
    assert fn.concurrency_id == "model" and fn.concurrency_limit == 1
    st = SessionState(dataset="toy", model="fake")
    rows = ids(wb, st)
    out = fn.fn(st, rows[0], rows[0], "response", "grad_l2", "sentences", "", True)
    assert out[-1].startswith("⚠ A and B are the same example")
    out = fn.fn(st, rows[0], rows[1], "response", "grad_l2", "sentences", "x" * 500, True)
    assert "at most 200" in out[-1]
    out = fn.fn(st, rows[0], rows[1], "same", "grad_dot_input", "sentences", "", False)
    assert out[-1].startswith("✓ comparison ready"), out[-1]
    assert 'data-op=' in out[4] and "both for A's response" in str(out[3])
    view = prompt_compare.settings(st)
    assert (view["a"], view["b"], view["done"], view["method"]) == (rows[0], rows[1], True,
                                                                     "grad_dot_input")
    # a failed comparison leaves the session as it was (not "done" with bad settings)
    out = fn.fn(st, rows[0], rows[1], "response", "grad_l2", "segments", "", True)
    assert out[-1].startswith("⚠ this example defines no segments")
    assert out[1] is gr.skip() or out[1] == gr.skip()
    assert view["done"] is False
    assert "prompt_compare" in app.compatible_modules(wb, "toy")


def test_an_edit_is_compared_with_its_original_by_default(wb):
    from promptlit.ui.modules import datapoint_editor

    st = SessionState(dataset="toy", model="fake")
    rows = ids(wb, st)
    original = base.find_example(wb, st, rows[0])
    new_id = datapoint_editor.add_to_session(
        wb, st, {**original, "prompt": original["prompt"].replace("pork chop", "fish pie")})
    assert prompt_compare.default_pair(wb, st) == (rows[0], new_id)  # the most similar
    # the example shown before the edit wins (the page remembers it)
    assert prompt_compare.default_pair(wb, st, previous=rows[1]) == (rows[1], new_id)
    assert prompt_compare.default_pair(wb, st, previous=new_id) == (rows[0], new_id)
    st.select_examples([rows[2], rows[1]])
    assert prompt_compare.default_pair(wb, st) == (rows[2], rows[1])


def test_missing_sides_render_empty_not_nan(wb):
    st = ready(wb, granularity="words")
    out = prompt_compare.render_views(wb, st)
    table = prompt_compare.run(wb, st).segments
    assert (table["op"] == "inserted").any() or (table["op"] == "deleted").any()
    for html in (out["side"], out["changed"], out["responses"]):
        assert ">nan<" not in html and "nan:" not in html and "nan</" not in html


def test_separator_length_is_a_request_limit():
    from promptlit.ui.limits import LimitError, RequestLimits

    assert RequestLimits().check_separator("^## ") == "^## "
    with pytest.raises(LimitError, match="the separator has 11 characters; this server accepts "
                                         "at most 10"):
        RequestLimits(max_separator_chars=10).check_separator("x" * 11)
    with pytest.raises(LimitError, match="at most 200"):  # the pattern library's own cap
        RequestLimits(max_separator_chars=10_000).check_separator("x" * 201)
