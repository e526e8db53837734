"""Tests for the UI modules' logic over a real Workbench with a fake LM (no JAX)."""

import json

import gradio as gr
import pytest

from promptlit.lib.utils import example_id
from promptlit.ui import app
from promptlit.ui.modules import base, data_table, datapoint_editor, lm_salience, slice_editor
from promptlit.ui.state import SessionState

from .fakes import EXAMPLES, make_workbench


@pytest.fixture
def wb():
    return make_workbench()


@pytest.fixture
def state():
    return SessionState(dataset="toy", model="fake")


def test_guard_turns_errors_into_one_footer_line():
    @base.guard(3)
    def boom(x):
        raise KeyError("unknown dataset 'x'; loaded datasets: ['toy']")

    out = boom(1)
    assert out[:2] == (gr.skip(), gr.skip())
    assert out[2] == "⚠ unknown dataset 'x'; loaded datasets: ['toy']"
    assert "\n" not in base.message(ValueError("a\nb"))


def test_filter_rows_search_field_slice_sort(wb, state):
    rows = base.dataset_rows(wb, state)
    assert [r[1]["source"] for r in data_table.filter_rows(rows, search="PORK")] == ["menu"]
    assert [r[1]["source"] for r in data_table.filter_rows(rows, field="source",
                                                           value="ma")] == ["math"]
    assert [r[1]["source"] for r in data_table.filter_rows(rows, sort="source",
                                                           descending=True)] == [
        "menu", "math", "copy"]
    ids = [rows[2][0]]
    assert [r[0] for r in data_table.filter_rows(rows, slice_ids=ids)] == ids


def test_page_frame_pages_and_marks_selection(wb, state):
    rows = base.dataset_rows(wb, state)
    numbers = {r[0]: n for n, r in enumerate(rows)}
    frame, ids, pages = data_table.page_frame(rows, ["prompt", "target"], page=2, page_size=2,
                                              selected=[rows[2][0]], numbers=numbers)
    assert pages == 2 and ids == [rows[2][0]]
    assert frame["#"].tolist() == [2] and frame["sel"].tolist() == ["✓"]
    frame, ids, _ = data_table.page_frame(rows, ["prompt"], page=99, page_size=2)
    assert len(ids) == 1  # clamped to the last page


def test_add_to_session_validates_selects_and_stays_in_session(wb, state):
    ex = datapoint_editor.build_example("New prompt:", " x", '{"source": "mine"}', None)
    assert ex == {"source": "mine", "prompt": "New prompt:", "target": " x"}
    new_id = datapoint_editor.add_to_session(wb, state, ex)
    assert state.primary_id == new_id == example_id(ex)
    assert len(base.dataset_rows(wb, state)) == len(EXAMPLES) + 1
    assert len(wb.datasets["toy"]) == len(EXAMPLES)  # the shared workbench is untouched
    other = SessionState(dataset="toy", model="fake")
    assert len(base.dataset_rows(wb, other)) == len(EXAMPLES)
    with pytest.raises(ValueError, match="prompt is empty"):
        datapoint_editor.build_example("  ", "", "", None)
    with pytest.raises(ValueError, match="not valid JSON"):
        datapoint_editor.build_example("p", "", "{oops", None)


def test_save_session_writes_only_inside_the_save_folder(wb, state, tmp_path):
    datapoint_editor.add_to_session(wb, state, {"prompt": "P1", "target": "T1"})
    saves = tmp_path / "saves"
    with pytest.raises(PermissionError, match="demo mode"):
        datapoint_editor.save_session(wb, state, "x", save_dir=saves, demo_mode=True)
    with pytest.raises(PermissionError, match="--save-dir DIR"):
        datapoint_editor.save_session(wb, state, "x", save_dir=None, demo_mode=False)
    for name in ("../escape", str(tmp_path / "abs.jsonl"), "/tmp/anything/x.conf",
                 "sub/dir.jsonl"):
        with pytest.raises(ValueError, match="not a plain file name"):
            datapoint_editor.save_session(wb, state, name, save_dir=saves, demo_mode=False)
    written = datapoint_editor.save_session(wb, state, "x", save_dir=saves, demo_mode=False)
    assert written == saves.resolve() / "x.jsonl"
    assert [json.loads(ln)["prompt"] for ln in written.read_text().splitlines()] == ["P1"]
    assert (saves / "x.jsonl.spec").is_file()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["x.jsonl",
                                                                        "x.jsonl.spec"]


def test_save_session_overwrites_only_when_asked(wb, state, tmp_path):
    datapoint_editor.add_to_session(wb, state, {"prompt": "P1"})
    (tmp_path / "taken.jsonl").write_text('{"prompt": "keep"}\n')
    with pytest.raises(FileExistsError, match="press Save again to overwrite"):
        datapoint_editor.save_session(wb, state, "taken", save_dir=tmp_path, demo_mode=False)
    assert "keep" in (tmp_path / "taken.jsonl").read_text()
    datapoint_editor.save_session(wb, state, "taken", save_dir=tmp_path, demo_mode=False,
                                  overwrite=True)
    assert "P1" in (tmp_path / "taken.jsonl").read_text()


def test_download_file_holds_the_session_examples(wb, state):
    assert datapoint_editor.download_file(wb, state) is None
    datapoint_editor.add_to_session(wb, state, {"prompt": "P1", "target": "T1"})
    path = datapoint_editor.download_file(wb, state)
    lines = open(path, encoding="utf-8").read().splitlines()
    assert [json.loads(ln) for ln in lines] == [{"prompt": "P1", "target": "T1"}]
    assert datapoint_editor.download_file(wb, state) == path  # same content: same file


def test_editor_offers_every_field_of_the_spec(wb, state):
    from promptlit.api import types
    from promptlit.api.dataset import Dataset

    spec = {"prompt": types.TextSegment(), "target": types.TextSegment(required=False),
            "source": types.CategoryLabel(vocab=["a", "b"]),
            "score": types.Scalar(required=False, default=0.5)}
    wb.add_dataset("rich", Dataset([{"prompt": "p", "source": "a"}], spec=spec))
    assert datapoint_editor.other_fields(wb, "rich") == {"source": "", "score": 0.5}
    label = datapoint_editor.fields_label(wb, "rich")
    assert "source: CategoryLabel" in label and "score: Scalar, optional" in label


def test_slices_by_field(wb, state):
    slices = slice_editor.slices_by_field(base.dataset_rows(wb, state), "source")
    assert sorted(slices) == ["source=copy", "source=math", "source=menu"]
    with pytest.raises(ValueError, match="no example has the field"):
        slice_editor.slices_by_field(base.dataset_rows(wb, state), "nope")


def test_render_views_matrix_clicks_need_no_model_call(wb, state):
    rows = base.dataset_rows(wb, state)
    state.select_example(rows[0][0])
    out = lm_salience.render_views(wb, state)
    assert "Generate &amp; explain" in out["view"]
    state.explained = True
    out = lm_salience.render_views(wb, state)
    assert state.span == (0, 2) and 'data-index="1"' in out["view"]
    fake = wb.models["fake"].unwrap()
    calls = dict(fake.calls)
    state.select_token(1)
    state.granularity, state.method = "sentences", "grad_dot_input"
    out2 = lm_salience.render_views(wb, state)
    assert fake.calls == calls  # pure numpy over the cached matrix
    assert out2["ranked"] != out["ranked"] and "diverging" in out2["legend"]
    assert out2["segments"] == [(":noitadnemmoceR", "0:1"), ("ok.", "1:2")]


def test_integrated_gradients_computed_per_span_then_cached(wb, state):
    rows = base.dataset_rows(wb, state)
    state.select_example(rows[1][0])
    state.explained, state.method = True, "integrated_gradients"
    fake = wb.models["fake"].unwrap()
    out = lm_salience.render_views(wb, state)
    n = fake.calls["salience"]
    assert "diverging" in out["legend"]
    lm_salience.render_views(wb, state)
    assert fake.calls["salience"] == n


def test_compatible_modules(wb):
    assert app.compatible_modules(wb, "toy") >= {"lm_salience", "generated_text", "data_table"}
    assert "lm_salience" not in app.compatible_modules(wb, "missing")


def test_build_app_rejects_unknown_layout(wb):
    with pytest.raises(KeyError, match="available"):
        app.build_app(wb, layout="nope")


def test_guard_reports_refresh_problems_from_the_state():
    st = SessionState()

    @base.guard(2)
    def cb(state):
        state.errors.append("generated_text: model exploded")
        return state, "✓ fine"

    assert cb(st) == (st, "⚠ generated_text: model exploded")
    assert st.errors == []


def test_table_query_over_thousands_of_rows_returns_one_page():
    from promptlit.api.dataset import Dataset
    from promptlit.data import prompt_spec
    from promptlit.workbench import Workbench

    from .fakes import FakeLM

    rows = [{"prompt": f"Question {i}: what is {i} + {i}?", "target": str(2 * i)}
            for i in range(5000)]
    wb = Workbench(models={"fake": FakeLM()}, datasets={"big": Dataset(rows, spec=prompt_spec())})
    st = SessionState(dataset="big", model="fake")
    all_rows = base.dataset_rows(wb, st)
    hits = data_table.filter_rows(all_rows, search="what is 12", sort="target", descending=True)
    # 12, 120-129, 1200-1299: 1 + 10 + 100 = 111 prompts contain "what is 12"
    assert len(hits) == 111
    frame, ids, pages = data_table.page_frame(hits, ["prompt", "target"], page=5, page_size=25)
    assert pages == 5 and len(ids) == 11
    targets = sorted((r[1]["target"] for r in hits), reverse=True)  # strings sort as text
    assert frame["target"].tolist() == targets[100:111]
    first, _, _ = data_table.page_frame(hits, ["target"], page=1, page_size=25)
    assert first["target"].tolist()[0] == "2598"


def test_compare_model_renders_a_second_view():
    from promptlit.api.dataset import Dataset
    from promptlit.data import prompt_spec
    from promptlit.workbench import Workbench

    from .fakes import FakeLM

    wb = Workbench(models={"a": FakeLM(), "b": FakeLM(suffix=" yes indeed.")},
                   datasets={"toy": Dataset([dict(e) for e in EXAMPLES], spec=prompt_spec())})
    st = SessionState(dataset="toy", model="a", compare_model="b")
    st.select_example(base.dataset_rows(wb, st)[1][0])
    st.explained = True
    out = lm_salience.render_views(wb, st)
    assert "COMPARE: b" in out["compare"] and "indeed." in out["compare"]
    assert "indeed." not in out["view"]


def test_added_examples_and_model_runs_are_bounded_per_request(wb, state):
    from promptlit.ui.limits import LimitError, RequestLimits

    limits = RequestLimits(max_session_examples=2, max_prompt_chars=50,
                           max_examples_per_request=2)
    for i in range(2):
        datapoint_editor.add_edited(wb, state, limits, f"p{i}", "", "", None)
    with pytest.raises(LimitError, match="already added 2 examples"):
        datapoint_editor.add_edited(wb, state, limits, "p2", "", "", None)
    with pytest.raises(LimitError, match="target has 51 characters"):
        datapoint_editor.add_edited(wb, SessionState(dataset="toy"), limits, "p", "t" * 51,
                                    "", None)
    ctx = base.Context(workbench=wb, state=None, footer=None, limits=limits)
    state.select_examples([r[0] for r in base.dataset_rows(wb, state)])
    with pytest.raises(ValueError, match="5 examples are selected; this server generates"):
        base.check_selection(ctx, state, "generates responses")


def test_cheap_per_session_events_do_not_queue_behind_each_other(wb):
    # Table search / filter / paging, the editor's reset and blank, /add_example and /session
    # call no model: one session's paging must not wait for another's.
    demo = app.build_app(wb)
    ids = {b._id: getattr(b, "elem_id", None) for b in demo.blocks.values()}
    table_inputs = {"pl-search", "pl-slice-filter"}
    cheap = [f for f in demo.fns.values()
             if any(ids.get(getattr(c, "_id", None)) in table_inputs for c in f.inputs)
             or f.api_name in ("add_example", "session", "info")]
    assert len(cheap) >= 5
    assert all(f.concurrency_limit is None for f in cheap), [
        (f.name, f.concurrency_limit) for f in cheap if f.concurrency_limit is not None]
    model_events = [f for f in demo.fns.values() if f.api_name in ("generate", "salience")]
    assert model_events and all(f.concurrency_id == "model" and f.concurrency_limit == 1
                                for f in model_events)
