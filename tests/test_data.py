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
