"""Prompt datasets whose rows carry custom segments (issue 14, part 3): ``segments`` checked
against the prompt, ``template`` + ``fields`` rendered into the prompt; problems at file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlit import data
from promptlit.lib.segmentation import example_segmentation
from promptlit.lib.validation import DataError


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_segments_and_template_rows_load(tmp_path):
    path = write(tmp_path, [
        {"prompt": "Q: a\nA: yes\n\nQ: b\nA:",
         "segments": [{"label": "query", "start": 13, "end": 20},
                      {"label": "shot", "start": 0, "end": 11}]},
        {"template": "Likes: {likes}\nDish: {dish}\nVerdict:",
         "fields": {"likes": "fish", "dish": "soup"}, "target": " Try it."},
    ])
    ds = data.load_path(path)
    first, second = ds.examples
    # sorted by offset, as plain JSON
    assert first["segments"] == [{"label": "shot", "start": 0, "end": 11, "text": "Q: a\nA: yes"},
                                 {"label": "query", "start": 13, "end": 20, "text": "Q: b\nA:"}]
    assert second["prompt"] == "Likes: fish\nDish: soup\nVerdict:"
    spans = example_segmentation(second).labelled_spans(second["prompt"])
    assert [(label, second["prompt"][s:e]) for s, e, label in spans] == [
        ("", "Likes:"), ("likes", "fish"), ("", "Dish:"), ("dish", "soup"), ("", "Verdict:")]
    assert ds.spec()["prompt"].type_name == "TextSegment"


@pytest.mark.parametrize(("row", "expected"), [
    ({"prompt": "short", "segments": [{"label": "a", "start": 0, "end": 50}]},
     "mine.jsonl:2: field 'segments[0].end': 50 is beyond the prompt (5 characters)"),
    ({"prompt": "abcdefgh", "segments": [{"label": "a", "start": 0, "end": 5},
                                         {"label": "b", "start": 3, "end": 8}]},
     "mine.jsonl:2: field 'segments': 'a' [0, 5) and 'b' [3, ...) overlap"),
    ({"prompt": "abc", "segments": [{"label": 7, "start": 0, "end": 2}]},
     "mine.jsonl:2: field 'segments[0].label': must be a non-empty string"),
    ({"template": "Hi {name}"}, "mine.jsonl:2: field 'template': uses field 'name', which "
                               "'fields' lacks"),
    ({"template": "Hi {name}", "fields": {"name": "x"}, "prompt": "Hello x"},
     "mine.jsonl:2: field 'prompt': the 'prompt' is not the 'template' filled with its 'fields'"),
    ({"template": "Hi", "segments": []}, "mine.jsonl:2: field 'segments': this row has both"),
    ({"prompt": "abcdef", "segments": [{"label": "a", "start": 0, "end": 2, "text": "xy"}]},
     "mine.jsonl:2: field 'segments[0].text': its text 'xy' is not prompt[0:2] ('ab')"),
])
def test_bad_segments_are_reported_at_file_line(tmp_path, row, expected):
    path = write(tmp_path, [{"prompt": "fine"}, row])
    with pytest.raises(DataError) as info:
        data.load_path(path)
    assert expected in str(info.value), str(info.value)
    assert "Fix:" in str(info.value)
    # skipping keeps the good row and reports the bad one
    ds = data.load_path(path, on_error="skip")
    assert [ex["prompt"] for ex in ds.examples] == ["fine"]
    assert any(expected in str(p) for p in ds.problems)


def test_fields_without_a_template_is_a_warning(tmp_path):
    ds = data.load_path(write(tmp_path, [{"prompt": "x", "fields": {"a": "b"}}]))
    assert len(ds) == 1
    assert any("'fields' fill a 'template'" in str(p) and p.severity == "warning"
               for p in ds.problems)
