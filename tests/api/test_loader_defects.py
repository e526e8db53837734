"""Loader defects from the outside tester (issue 10, item 7): every bad input is a clear problem.

Deeply nested lines, `null` required fields, empty files, duplicate rows / ids, unclosed CSV
quotes, malformed `.spec` sidecars: each is reported at its `file:line` with a fix, skipped under
`on_error="skip"`, and never a raw traceback.
"""

import json
import logging

import pytest

from promptlit.api import types
from promptlit.api.dataset import (
    Dataset,
    IndexedDataset,
    load_csv,
    load_file,
    load_jsonl,
    spec_path,
)
from promptlit.lib import utils
from promptlit.lib.validation import DataError

DEEP = "[" * 100_000 + "]" * 100_000


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# -- 1. deep nesting ---------------------------------------------------------------------------


def test_deeply_nested_lines_are_problems_not_recursion_errors(tmp_path):
    path = write(tmp_path / "deep.jsonl", "\n".join([
        '{"prompt": "ok"}',                                     # 1
        DEEP,                                                   # 2: json.loads recursion
        '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}",    # 3
        '{"prompt": "x", "meta": ' + "[" * 300 + "]" * 300 + "}",  # 4: parses, too deep
        '{"prompt": "fine"}',                                   # 5
    ]) + "\n")
    with pytest.raises(DataError) as info:
        load_jsonl(path)
    problems = info.value.problems
    assert [p.line for p in problems] == [2, 3, 4]
    assert all("nested too deeply" in str(p) for p in problems)
    assert str(problems[0]).startswith(f"{path}:2: nested too deeply")
    assert problems[2].field == "meta" and "Fix: " in str(problems[2])
    ds = load_jsonl(path, on_error="skip")
    assert ds.examples == [{"prompt": "ok"}, {"prompt": "fine"}]
    assert [p.line for p in ds.problems] == [2, 3, 4]


def test_deep_values_built_in_memory_do_not_blow_up(tmp_path):
    deep = []
    for _ in range(5000):
        deep = [deep]
    ds = Dataset([{"prompt": "a", "meta": deep}])  # spec inference must not recurse
    assert "meta" not in ds.spec()
    ids = IndexedDataset(base=ds).ids  # hashing must not recurse
    assert len(ids) == 1 and len(ids[0]) == 40
    with pytest.raises(ValueError, match="nested too deeply"):
        ds.save(tmp_path / "deep.jsonl")


# -- 2./3. every row is checked; null is not "missing" -----------------------------------------


def test_null_required_field_says_null(tmp_path):
    path = write(tmp_path / "n.jsonl", '{"prompt": "a"}\n{"prompt": null, "target": "t"}\n')
    with pytest.raises(DataError) as info:
        load_jsonl(path, required_fields=("prompt",))
    (p,) = info.value.problems
    assert (p.line, p.field) == (2, "prompt")
    text = str(p)
    assert text.startswith(f"{path}:2: field 'prompt': required field is null")
    assert "missing" not in text and "Fix: replace null with a value" in text


# -- 4. empty files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, text, why", [
    ("e.jsonl", "", "the file is empty"),
    ("b.jsonl", "\n  \n\n", "the file has only blank lines"),
    ("h.csv", "prompt,target\n", "the file has only a header row"),
    ("h.tsv", "prompt\ttarget\n\n", "the file has only a header row"),
    ("e.csv", "", "the file is empty"),
])
def test_empty_and_header_only_files_are_errors(tmp_path, name, text, why):
    path = write(tmp_path / name, text)
    for on_error in ("raise", "skip"):
        with pytest.raises(DataError) as info:
            load_file(path, on_error=on_error)
        assert str(info.value).startswith(f"{path}: has no examples: {why}")
        assert "Fix: " in str(info.value)


def test_all_lines_bad_under_skip_is_an_error(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"prompt": null}\nnot json\n')
    with pytest.raises(DataError) as info:
        load_jsonl(path, required_fields=("prompt",), on_error="skip")
    text = str(info.value)
    assert f"{path}: has no examples: all 2 line(s) were skipped as bad" in text
    assert f"{path}:1: field 'prompt'" in text and f"{path}:2: not valid JSON" in text


# -- 5. duplicates -----------------------------------------------------------------------------


def test_exact_duplicate_rows_are_kept_once_with_a_warning(tmp_path, caplog):
    path = write(tmp_path / "d.jsonl", '{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "a"}\n'
                                       '{"prompt": "c"}\n{"prompt": "b"}\n')
    with caplog.at_level(logging.WARNING, logger="promptlit.api.dataset"):
        ds = load_jsonl(path, dataset_cls=IndexedDataset)  # raise mode: duplicates are warnings
    assert [ex["prompt"] for ex in ds.examples] == ["a", "b", "c"]
    assert len(set(ds.ids)) == len(ds) == 3
    assert [(p.line, p.severity) for p in ds.problems] == [(3, "warning"), (5, "warning")]
    assert str(ds.problems[0]).startswith(f"{path}:3: warning: repeats line 1")
    assert "kept once" in str(ds.problems[0]) and "repeats line 1" in caplog.text


def test_repeated_explicit_id_with_other_content_is_an_error(tmp_path):
    path = write(tmp_path / "ids.csv", "id,prompt\nq1,a\nq2,b\nq1,c\n")
    with pytest.raises(DataError) as info:
        load_csv(path)
    (p,) = info.value.problems
    assert (p.line, p.field) == (4, "id") and "line 2" in str(p) and "unique" in str(p)
    ds = load_csv(path, on_error="skip")
    assert [ex["prompt"] for ex in ds.examples] == ["a", "b"]


def test_indexed_dataset_row_and_id_always_correspond():
    a, b = {"prompt": "a"}, {"prompt": "b"}
    ds = IndexedDataset([a, b, dict(a), a])
    assert len(ds) == 4 and len(set(ds.ids)) == 4
    assert ds.ids[0] == utils.example_id(a)
    for n, ident in enumerate(ds.ids):
        assert ds.indexed_examples[n]["id"] == ident and ds.index[ident] is ds.examples[n]
    assert [p.index for p in ds.problems] == [2, 3]
    assert all(p.severity == "warning" and "repeats example #0" in str(p) for p in ds.problems)
    bigger = ds.add([b])
    assert len(set(bigger.ids)) == 5 and bigger.ids[:4] == ds.ids
    assert len(bigger.problems) == 3


# -- 6. unclosed CSV quotes --------------------------------------------------------------------


def test_unclosed_csv_quote_is_reported_and_next_rows_recovered(tmp_path):
    path = write(tmp_path / "q.csv", 'prompt,target\n'
                                     'one,1\n'
                                     '"two,2\n'          # 3: quote never closed
                                     'three,3\n'
                                     '"four",4\n'
                                     '"multi\nline",5\n')
    with pytest.raises(DataError) as info:
        load_csv(path)
    (p,) = info.value.problems
    assert p.line == 3 and "swallows line(s) 4-5" in str(p) and "Fix: close the quote" in str(p)
    ds = load_csv(path, on_error="skip")
    assert [ex["prompt"] for ex in ds.examples] == ["one", "three", "four", "multi\nline"]
    assert [q.line for q in ds.problems] == [3]


def test_unclosed_csv_quote_at_the_end_of_a_one_column_file(tmp_path):
    path = write(tmp_path / "q.csv", 'prompt\nfirst\n"second\nthird\n')
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert [p.line for p in info.value.problems] == [3]
    assert [ex["prompt"] for ex in load_csv(path, on_error="skip").examples] == ["first", "third"]


def test_unclosed_quote_in_the_header_is_an_error_even_under_skip(tmp_path):
    path = write(tmp_path / "h.csv", '"prompt,target\na,b\n')
    with pytest.raises(DataError, match=r"h.csv:1: the header row is unreadable: a quoted value"):
        load_csv(path, on_error="skip")


def test_sloppy_single_line_quotes_still_load(tmp_path):
    path = write(tmp_path / "s.csv", 'prompt,t\n"a" ,x\nsay "hi",y\n')
    assert [ex["prompt"] for ex in load_csv(path).examples] == ["a ", 'say "hi"']


# -- 7. .spec sidecars -------------------------------------------------------------------------


@pytest.mark.parametrize("text, match", [
    ('{"s": {"__name__": "String"},\n "t": }', r"x.jsonl.spec:2: cannot read the spec file: "
                                               r"not valid JSON"),
    ("[1, 2]", r"x.jsonl.spec: cannot read the spec file: expected a JSON object"),
    ('{"s": {"__name__": "Nope"}}', r"x.jsonl.spec: field 's': cannot read the spec file: "
                                    r"'Nope' is not a known LitType"),
    ('{"s": 3}', r"x.jsonl.spec: field 's': cannot read the spec file"),
])
def test_malformed_spec_file_names_the_file(tmp_path, text, match):
    path = tmp_path / "x.jsonl"
    Dataset([{"s": "a"}], spec={"s": types.String()}).save(path)
    spec_path(path).write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        load_jsonl(path)
    assert json.loads(path.read_text()) == {"s": "a"}
