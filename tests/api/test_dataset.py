"""Tests for promptlit.api.dataset: Dataset/IndexedDataset, spec inference, JSONL/CSV loaders."""

import json
import logging

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.dataset import (
    Dataset,
    IndexedDataset,
    infer_spec,
    infer_spec_for_func,
    load_csv,
    load_file,
    load_jsonl,
    spec_path,
)
from promptlit.lib.utils import example_id
from promptlit.lib.validation import DataError

EXAMPLES = [{"prompt": f"p{i}", "n": i, "ok": i % 2 == 0} for i in range(10)]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# -- Dataset -------------------------------------------------------------------------------------


def test_slice_sample_remap_len_iter():
    ds = Dataset(EXAMPLES, description="ten")
    assert len(ds) == 10 and list(ds) == EXAMPLES
    assert ds.description() == "ten"
    assert [ex["n"] for ex in ds.slice[2:8:3].examples] == [2, 5]
    assert [ex["n"] for ex in ds.slice[-2:].examples] == [8, 9]
    assert ds.slice[1:3].spec() == ds.spec()
    s1, s2 = ds.sample(4), ds.sample(4)
    assert len(s1) == 4 and s1.examples == s2.examples  # seeded: same draw twice
    assert ds.sample(4, seed=1).examples != s1.examples or len(ds) < 5
    assert len(ds.sample(50)) == 10
    r = ds.remap({"prompt": "text"})
    assert list(r.spec()) == ["text", "n", "ok"]
    assert r.examples[3] == {"text": "p3", "n": 3, "ok": False}
    assert ds.examples[3]["prompt"] == "p3"  # original untouched
    with pytest.raises(KeyError, match="nope"):
        ds.remap({"nope": "x"})
    with pytest.raises(TypeError):
        ds.slice[1]


def test_remap_renames_field_references():
    spec = {"text": types.TextSegment(), "toks": types.Tokens(parent="text")}
    ds = Dataset([{"text": "a b", "toks": ["a", "b"]}], spec=spec)
    assert ds.remap({"text": "prompt"}).spec()["toks"].parent == "prompt"


def test_save_load_round_trip(tmp_path):
    spec = {"prompt": types.TextSegment(), "label": types.CategoryLabel(vocab=["a", "b", "c"]),
            "score": types.Scalar(min_val=0, max_val=10), "emb": types.Embeddings(required=False)}
    examples = [{"prompt": "x\ny", "label": "a", "score": np.float32(2.5),
                 "emb": np.arange(3, dtype=np.float32)},
                {"prompt": "é ü", "label": "c", "score": 7}]
    path = Dataset(examples, spec=spec).save(tmp_path / "out.jsonl")
    assert spec_path(path).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loaded = Dataset.load(path)
    assert loaded.spec() == spec  # from the .spec sidecar, vocab and required kept
    assert loaded.examples == [{"prompt": "x\ny", "label": "a", "score": 2.5, "emb": [0.0, 1.0, 2.0]},
                               {"prompt": "é ü", "label": "c", "score": 7}]
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_save_is_atomic_on_failure(tmp_path):
    path = write(tmp_path / "keep.jsonl", '{"prompt": "old"}\n')
    with pytest.raises(TypeError):
        Dataset([{"prompt": object()}], spec={"prompt": types.TextSegment()}).save(path)
    assert path.read_text() == '{"prompt": "old"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl"]


def test_indexed_dataset_ids():
    ds = IndexedDataset(EXAMPLES[:3])
    assert ds.examples == EXAMPLES[:3]
    assert [ie["id"] for ie in ds.indexed_examples] == [example_id(ex) for ex in EXAMPLES[:3]]
    assert ds.indexed_examples[1] == {"id": example_id(EXAMPLES[1]), "data": EXAMPLES[1], "meta": {}}
    assert ds.index[example_id(EXAMPLES[2])] is EXAMPLES[2]
    sliced = ds.slice[1:]
    assert isinstance(sliced, IndexedDataset) and sliced.ids == ds.ids[1:]
    bigger = ds.add([{"prompt": "new", "n": 99, "ok": True}], meta={"added": True})
    assert len(bigger) == 4 and len(ds) == 3
    assert bigger.indexed_examples[-1]["meta"] == {"added": True}
    wrapped = IndexedDataset(base=Dataset(EXAMPLES), id_fn=lambda ex: f"id{ex['n']}")
    assert wrapped.ids[:2] == ["id0", "id1"] and wrapped.spec() == Dataset(EXAMPLES).spec()


# -- spec inference ------------------------------------------------------------------------------


def test_infer_spec_types():
    rows = [{"text": f"long text number {i}", "label": "pos" if i % 3 else "neg", "x": i * 0.5,
             "flag": bool(i % 2), "toks": ["a", "b"], "vec": [0.1, 0.2], "obj": {"k": 1},
             "_private": 1} for i in range(8)]
    rows[0]["maybe"] = "only once"
    spec = infer_spec(rows)
    assert spec["text"] == types.TextSegment()
    assert spec["label"] == types.CategoryLabel(vocab=["neg", "pos"])
    assert spec["x"] == types.Scalar(min_val=0, max_val=3.5)
    assert spec["flag"] == types.Boolean()
    assert spec["toks"] == types.Tokens()
    assert spec["vec"] == types.Embeddings()
    assert "obj" not in spec and "_private" not in spec
    assert spec["maybe"] == types.TextSegment(required=False)


def test_infer_spec_category_thresholds():
    # 3 rows with 2 distinct values: 2 >= 3/2, so it is text, not a label.
    assert type(infer_spec([{"s": "a"}, {"s": "b"}, {"s": "a"}])["s"]) is types.TextSegment
    many = [{"s": f"v{i % 11}"} for i in range(100)]  # 11 distinct > 10
    assert type(infer_spec(many)["s"]) is types.TextSegment
    long = [{"s": "x" * 41} for _ in range(10)]  # too long for a label
    assert type(infer_spec(long)["s"]) is types.TextSegment


def test_explicit_spec_overrides_inference():
    spec = infer_spec([{"s": "a"}, {"s": "a"}, {"s": "a"}, {"t": 1}], {"s": types.String()})
    assert spec == {"s": types.String(), "t": types.Scalar(min_val=1, max_val=2, required=False)}


def test_init_spec():
    class Loader(Dataset):
        def __init__(self, path: str, limit: int = 5, ratio: float | None = None,
                     verbose: bool = False):
            super().__init__([])

    spec = Loader.init_spec()
    assert spec == {"path": types.String(), "limit": types.Integer(required=False, default=5),
                    "ratio": types.Scalar(required=False),
                    "verbose": types.Boolean(required=False, default=False)}
    assert Dataset.init_spec() is None  # list[...] arguments cannot be a form field
    with pytest.raises(TypeError, match="no type annotation"):
        infer_spec_for_func(lambda x: x)


# -- JSONL loading -------------------------------------------------------------------------------

BAD_JSONL = "\n".join([
    '{"prompt": "fine", "source": "a"}',        # 1
    "",                                          # 2 blank: ignored
    '{"prompt": "broken", "source": "a"',       # 3 malformed JSON
    "[1, 2]",                                    # 4 not an object
    '{"target": "no prompt"}',                   # 5 missing required field
    '{"prompt": 3}',                             # 6 wrong type
    "   ",                                       # 7 blank
    '{"prompt": "also fine", "source": "b"}',   # 8
]) + "\n"


def test_load_jsonl_good(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"prompt": "a", "target": "b"}\n\n{"prompt": "c"}\n')
    ds = load_jsonl(path, required_fields=("prompt",))
    assert ds.examples == [{"prompt": "a", "target": "b"}, {"prompt": "c"}]
    assert ds.spec() == {"prompt": types.TextSegment(), "target": types.TextSegment(required=False)}
    assert ds.problems == [] and ds.source == str(path)


def test_load_jsonl_raise_lists_every_problem(tmp_path):
    path = write(tmp_path / "bad.jsonl", BAD_JSONL)
    with pytest.raises(DataError) as info:
        load_jsonl(path, required_fields=("prompt",))
    problems = info.value.problems
    assert [(p.source, p.line) for p in problems] == [(str(path), n) for n in (3, 4, 5, 6)]
    text = str(info.value)
    assert text.startswith("4 problems:")
    assert f"{path}:3: not valid JSON: Expecting ',' delimiter (column 35). Fix:" in text
    assert f"{path}:4: expected a JSON object, got list [1, 2]. Fix: write one object" in text
    assert (f"{path}:5: field 'prompt': required field is missing (expected TextSegment "
            "(a string); the example has: target). Fix: add 'prompt' to the example") in text
    assert (f"{path}:6: field 'prompt': expected TextSegment (a string), got int 3. "
            "Fix: write the value as a JSON string") in text
    assert problems[2].field == "prompt" and problems[3].field == "prompt"


def test_load_jsonl_skip_keeps_good_lines(tmp_path, caplog):
    path = write(tmp_path / "bad.jsonl", BAD_JSONL)
    with caplog.at_level(logging.WARNING, logger="promptlit.api.dataset"):
        ds = load_jsonl(path, required_fields=("prompt",), on_error="skip")
    assert ds.examples == [{"prompt": "fine", "source": "a"}, {"prompt": "also fine", "source": "b"}]
    assert [p.line for p in ds.problems] == [3, 4, 5, 6]
    assert "target" not in ds.spec()  # only seen in a skipped line
    assert "Skipped 4 bad line(s)" in caplog.text and "lines 3, 4, 5, 6" in caplog.text


def test_load_jsonl_explicit_spec_types(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"x": 1, "b": true, "c": "pos"}\n'
                                       '{"x": "1", "b": "yes", "c": "meh"}\n')
    spec = {"x": types.Scalar(), "b": types.Boolean(), "c": types.CategoryLabel(vocab=["pos", "neg"])}
    with pytest.raises(DataError) as info:
        load_jsonl(path, spec=spec)
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "x"), (2, "b"), (2, "c")]
    assert "not one of ['pos', 'neg']" in str(info.value)


def test_load_jsonl_mixed_kinds_majority_wins(tmp_path):
    path = write(tmp_path / "m.jsonl", '{"v": 1}\n{"v": 2}\n{"v": "three"}\n')
    with pytest.raises(DataError) as info:
        load_jsonl(path)
    (p,) = info.value.problems
    assert (p.line, p.field) == (3, "v") and "expected Scalar (a number), got str 'three'" in str(p)


def test_load_jsonl_unreadable(tmp_path):
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        load_jsonl(tmp_path / "missing.jsonl")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin1.jsonl:2: not valid UTF-8 \(byte 16\)"):
        load_jsonl(path)


def test_load_jsonl_bad_on_error(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        load_jsonl(write(tmp_path / "a.jsonl", "{}\n"), on_error="ignore")


# -- CSV / TSV -----------------------------------------------------------------------------------


def test_load_csv_infers_and_converts(tmp_path):
    path = write(tmp_path / "d.csv", 'prompt,score,flag,label\n'
                                     '"Hello, world",1.5,true,a\n'
                                     '"two\nlines",2,false,a\n'
                                     'third,,true,a\n'
                                     'fourth,4,false,b\n'
                                     'fifth,5,true,a\n')
    ds = load_csv(path)
    assert ds.examples[0] == {"prompt": "Hello, world", "score": 1.5, "flag": True, "label": "a"}
    assert ds.examples[1]["prompt"] == "two\nlines" and ds.examples[1]["score"] == 2
    assert "score" not in ds.examples[2]  # empty cell = absent field
    assert ds.spec()["score"] == types.Scalar(min_val=1.5, max_val=5, required=False)
    assert ds.spec()["flag"] == types.Boolean()
    assert ds.spec()["label"] == types.CategoryLabel(vocab=["a", "b"])


def test_load_tsv_by_extension_and_line_numbers(tmp_path):
    path = write(tmp_path / "d.tsv", "prompt\tn\n\nfine\t1\ntoo\tmany\tcells\n\t2\n")
    with pytest.raises(DataError) as info:
        load_file(path, required_fields=("prompt",))
    assert [(p.line, p.field) for p in info.value.problems] == [(4, None), (5, "prompt")]
    assert "has 3 cells but the header has 2 columns" in str(info.value)
    ds = load_file(path, required_fields=("prompt",), on_error="skip")
    assert ds.examples == [{"prompt": "fine", "n": 1}]


def test_load_csv_with_spec(tmp_path):
    path = write(tmp_path / "s.csv", "x,b\n3,yes\nthree,no\n")
    with pytest.raises(DataError) as info:
        load_csv(path, spec={"x": types.Integer(), "b": types.Boolean()})
    (p,) = info.value.problems
    assert (p.line, p.field) == (3, "x")


def test_load_file_unsupported(tmp_path):
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load_file(tmp_path / "a.xlsx")


def test_sidecar_spec_used_by_loader(tmp_path):
    path = tmp_path / "x.jsonl"
    Dataset([{"s": "a"}], spec={"s": types.String(description="an id")}).save(path)
    assert load_jsonl(path).spec() == {"s": types.String(description="an id")}
    spec_path(path).write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read the spec file"):
        load_jsonl(path)
    assert json.loads(path.read_text()) == {"s": "a"}
