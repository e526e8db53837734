"""File names from the page stay inside the save folder: no separators, no '..', no links."""

import os

import pytest

from promptlit.lib.paths import UnsafePathError, file_in, safe_file_name


@pytest.mark.parametrize("name", [
    "../escape", "..", ".", "a/b.jsonl", "a\\b.jsonl", "/etc/passwd", "/tmp/anything/x.conf",
    "C:evil.jsonl", ".hidden.jsonl", "", "   ", "bad\x00name", "new\nline", "x" * 200,
    "<script>.jsonl", "name*?.jsonl",
])
def test_unsafe_names_are_refused_with_the_fix(name):
    with pytest.raises(UnsafePathError, match="Fix: type a name like my_examples.jsonl"):
        safe_file_name(name)


def test_plain_names_get_the_suffix():
    assert safe_file_name("my examples") == "my examples.jsonl"
    assert safe_file_name(" run-3 (fixed).jsonl ") == "run-3 (fixed).jsonl"
    assert safe_file_name("données") == "données.jsonl"


def test_file_in_stays_in_the_directory_and_creates_it(tmp_path):
    root = tmp_path / "saves"
    path = file_in(root, "mine")
    assert path == root.resolve() / "mine.jsonl" and root.is_dir()


def test_a_link_in_the_save_folder_is_not_written_through(tmp_path):
    root = tmp_path / "saves"
    root.mkdir()
    outside = tmp_path / "outside.jsonl"
    outside.write_text("keep me\n")
    os.symlink(outside, root / "trap.jsonl")
    with pytest.raises(UnsafePathError, match="trap.jsonl in the save folder is a link"):
        file_in(root, "trap")
    os.symlink(tmp_path / "outside.spec", root / "spec-trap.jsonl.spec")
    with pytest.raises(UnsafePathError, match="spec-trap.jsonl.spec in the save folder is a link"):
        file_in(root, "spec-trap")
    assert outside.read_text() == "keep me\n"
