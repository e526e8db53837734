"""Custom segments in the sequence-salience module (issue 14, part 3): the ranked list shows
labels, the matrix groups by them, and a granularity that needs more says what (fake LM)."""

from __future__ import annotations

import pytest

from promptlit.api.dataset import Dataset
from promptlit.data import prompt_spec
from promptlit.lib.segmentation import ALL_GRANULARITIES
from promptlit.ui import render
from promptlit.ui.modules import base, lm_salience
from promptlit.ui.state import SessionState

from .fakes import FakeLM

FEWSHOT = "Rate it.\n\nQ: a\nA: yes\n\nQ: b\nA: no\n\nQ: c\nA:"


@pytest.fixture
def wb():
    from promptlit.workbench import Workbench

    rows = [{"prompt": FEWSHOT},
            {"prompt": "## Rules\nBe kind.\n## Task\nSay hi:",
             "segments": [{"label": "rules", "start": 0, "end": 17}]}]
    return Workbench(models={"fake": FakeLM()},
                     datasets={"d": Dataset(rows, spec=prompt_spec())})


def state_for(wb, row: int, granularity: str) -> SessionState:
    st = SessionState(dataset="d", model="fake", granularity=granularity)
    st.select_example(base.dataset_rows(wb, st)[row][0])
    st.explained = True
    return st


def test_few_shot_labels_in_the_ranking_and_matrix(wb):
    st = state_for(wb, 0, "few-shot")
    out = lm_salience.render_views(wb, st)
    assert 'data-granularity="few-shot"' in out["ranked"]
    labels = [p.split('"', 1)[0] for p in out["ranked"].split('data-label="')[1:]]
    assert sorted(labels) == ["example 1", "example 2", "instruction", "query"]
    sal = lm_salience._matrix_salience(wb, st, base.primary_example(wb, st))
    span = sal.for_span(*st.span, st.method)
    segs = span.aggregate(lm_salience.granularity_of(st, base.primary_example(wb, st)))
    assert sum(s.score for s in segs) == pytest.approx(span.scores[:sal.num_prompt_tokens].sum())
    matrix = out["matrix_fn"]()
    assert ">example 1</div>" in matrix and ">query</div>" in matrix


def test_blocks_follow_the_session_separator(wb):
    st = state_for(wb, 1, "blocks")
    with pytest.raises(ValueError, match="type a regular expression in the separator box"):
        lm_salience.render_views(wb, st)
    st.settings["segment_sep"] = "^## "
    out = lm_salience.render_views(wb, st)
    assert 'data-granularity="blocks /^## /"' in out["ranked"]
    assert 'data-label="block 1"' in out["ranked"] and 'data-label="block 2"' in out["ranked"]
    st.settings["segment_sep"] = "(a+)+["
    with pytest.raises(ValueError, match="not a valid regular expression"):
        lm_salience.render_views(wb, st)


def test_example_segments_and_their_absence(wb):
    out = lm_salience.render_views(wb, state_for(wb, 1, "segments"))
    assert 'data-label="rules"' in out["ranked"]
    assert "## Task" in out["ranked"]  # the unlabelled rest is a segment too
    with pytest.raises(ValueError, match="defines no segments"):
        lm_salience.render_views(wb, state_for(wb, 0, "segments"))


def test_labels_are_escaped():
    from promptlit.lib.segmentation import LabelledSegment

    html = render.ranked_table_html([LabelledSegment("x", 0, 1, 1.0, "<img src=x>")],
                                    signed=False)
    assert "<img" not in html and "&lt;img src=x&gt;" in html
    assert set(ALL_GRANULARITIES[-3:]) == {"blocks", "few-shot", "segments"}
