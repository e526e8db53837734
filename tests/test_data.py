"""Tests for promptlit.data (pl.data): named datasets and name:path specs."""

import pytest

import promptlit as pl
from promptlit import data
from promptlit.api import types
from promptlit.api.dataset import IndexedDataset
from promptlit.lib.validation import DataError


def test_sample_prompts_is_a_prompt_dataset():
    ds = pl.data.load("sample_prompts")
    assert len(ds) >= 10
    spec = ds.spec()
    assert spec["prompt"] == types.TextSegment(description="The text the model continues.")
    assert spec["target"].required is False and type(spec["target"]) is types.TextSegment
    assert all(isinstance(ex["prompt"], str) and ex["prompt"] for ex in ds.examples)
    assert ds.problems == []
    assert "sample_prompts" in data.known_datasets()
    assert data.known_datasets()["sample_prompts"].endswith("datasets/sample_prompts.jsonl")


def test_unknown_name_lists_known_and_syntax():
    with pytest.raises(DataError) as info:
        data.load("nonexistent")
    text = str(info.value)
    assert "unknown dataset 'nonexistent'; known datasets: " in text
    assert "sample_prompts" in text
    assert "'nonexistent:/path/to/nonexistent.jsonl'" in text


def test_parse_dataset_specs():
    assert data.parse_dataset_specs("a, b:/x/y.jsonl,c:rel.csv") == {
        "a": "a", "b": "/x/y.jsonl", "c": "rel.csv"}
    assert data.parse_dataset_specs("/data/mine.tsv") == {"mine": "/data/mine.tsv"}
    assert data.parse_dataset_specs("w:C:/data/x.jsonl") == {"w": "C:/data/x.jsonl"}
    for bad, match in [("a,,b", "empty dataset"), (":x.jsonl", "bad dataset"),
                       ("a:x.jsonl,a:y.jsonl", "given twice")]:
        with pytest.raises(ValueError, match=match):
            data.parse_dataset_specs(bad)


def test_load_name_path_prompt_file_requires_prompt(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "a", "source": "s"}\n{"source": "s"}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        data.load(f"mine:{path}")
    (p,) = info.value.problems
    assert (p.source, p.line, p.field) == (str(path), 2, "prompt")
    ds = data.load(f"mine:{path}", on_error="skip", indexed=True)
    assert isinstance(ds, IndexedDataset) and ds.examples == [{"prompt": "a", "source": "s"}]
    assert ds.description() == "mine: mine.jsonl"


def test_load_csv_and_plain_files(tmp_path):
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("prompt,target\nhello,world\nbye,\n", encoding="utf-8")
    ds = data.load(f"c:{csv_path}")
    assert ds.examples == [{"prompt": "hello", "target": "world"}, {"prompt": "bye"}]
    assert ds.spec()["target"].required is False
    other = tmp_path / "rows.jsonl"
    other.write_text('{"text": "x", "label": 1}\n', encoding="utf-8")
    plain = data.load(str(other))  # a bare path: not a prompt file, nothing required
    assert set(plain.spec()) == {"text", "label"}


def test_register_max_examples_and_load_many(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(f'{{"prompt": "p{i}"}}\n' for i in range(5)), encoding="utf-8")
    data.register("mine_registered", path)
    try:
        assert data.known_datasets()["mine_registered"] == str(path)
        assert len(data.load("mine_registered", max_examples=2)) == 2
        many = data.load_many("mine_registered,alias:sample_prompts")
        assert list(many) == ["mine_registered", "alias"] and len(many["mine_registered"]) == 5
    finally:
        data._REGISTERED.pop("mine_registered", None)
    with pytest.raises(ValueError):
        data.register("bad:name", path)


# -- issue 10, item 7: every row of a prompt file is checked; sidecar specs; empty files ---------


def test_every_row_of_a_prompt_file_needs_a_string_prompt(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"source": "s"}\n{"prompt": "a", "source": "s"}\n{"prompt": 3}\n'
                    '{"prompt": null}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        data.load(f"p:{path}")
    problems = info.value.problems
    assert [(p.line, p.field) for p in problems] == [(1, "prompt"), (3, "prompt"), (4, "prompt")]
    assert "required field is missing" in str(problems[0])
    assert "expected TextSegment (a string), got int 3" in str(problems[1])
    assert "required field is null" in str(problems[2])
    ds = data.load(f"p:{path}", on_error="skip")
    assert ds.examples == [{"prompt": "a", "source": "s"}]
    assert ds.spec()["prompt"].required


def test_deeply_nested_line_in_a_prompt_file(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + '\n{"prompt": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"deep.jsonl:1: nested too deeply"):
        data.load(f"d:{path}")
    ds = data.load(f"d:{path}", on_error="skip")
    assert ds.examples == [{"prompt": "a"}] and ds.spec()["prompt"].required
    assert [p.line for p in ds.problems] == [1]


def test_prompt_file_reads_its_spec_sidecar(tmp_path):
    from promptlit.api.dataset import Dataset, spec_path

    path = tmp_path / "saved.jsonl"
    spec = {"prompt": types.TextSegment(description="Q"),
            "label": types.CategoryLabel(vocab=["x", "y"])}
    Dataset([{"prompt": "a", "label": "x"}], spec=spec).save(path)
    ds = data.load(f"s:{path}")
    assert ds.spec()["label"] == types.CategoryLabel(vocab=["x", "y"])  # not inferred
    assert ds.spec()["prompt"] == types.TextSegment(description="Q")
    assert ds.spec()["target"].required is False  # the prompt spec's other fields stay
    spec_path(path).write_text('{"prompt": {"__name__": "Scalar"}}', encoding="utf-8")
    with pytest.raises(DataError, match=r"saved.jsonl.spec: field 'prompt': .*must be text"):
        data.load(f"s:{path}")
    spec_path(path).write_text("{oops", encoding="utf-8")
    with pytest.raises(DataError, match=r"saved.jsonl.spec:1: cannot read the spec file"):
        data.load(f"s:{path}")


def test_empty_prompt_files_are_errors(tmp_path):
    for name, text in [("e.jsonl", ""), ("h.csv", "prompt,target\n")]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=f"{name}: has no examples"):
            data.load(f"x:{path}", on_error="skip")


def test_fields_only_inferred_from_prompt_rows_are_optional_for_new_examples():
    # /add_example with a prompt and a target failed on the shipped dataset: 'source', which
    # every shipped row has, was inferred as required.
    from promptlit.lib.validation import validate_example

    spec = data.load("sample_prompts").spec()
    assert spec["prompt"].required and not spec["source"].required
    assert validate_example({"prompt": "Q: 1 + 1 =\nA:", "target": " 2"}, spec,
                            source="new") == []
    bad = validate_example({"prompt": "x", "source": "mine"}, spec, source="new")
    assert bad and "not one of" in str(bad[0])
