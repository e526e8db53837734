"""`promptlit compare` and `--segment-sep` (issue 14, parts 2 and 3), with the CLI tests' fake
model loader (no real LM): output, the CSV table, and usage errors before anything loads."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from promptlit import cli
from promptlit.workbench import register_model_loader

sys.path.insert(0, str(Path(__file__).parent))
from test_workbench import FakeLM  # noqa: E402


@pytest.fixture(autouse=True)
def fake_models():
    register_model_loader("fake", lambda handle, name: FakeLM())


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt": "## A\\nOne two.\\n## B\\nThree four."}\n'
        '{"prompt": "## A\\nOne two.\\n## B\\nThree five six."}\n'
        '{"prompt": "Intro\\n## A\\nx", "segments": [{"label": "intro", "start": 0, "end": 5}]}\n',
        encoding="utf-8")
    return path


def run(prompts, *argv):
    return cli.main(["compare", "--models", "m:fake://ok", "--datasets", f"p:{prompts}", *argv])


def test_compare_prints_aligned_segments_changes_and_tokens(prompts, capsys, tmp_path):
    out_csv = tmp_path / "t.csv"
    assert run(prompts, "--example", "0", "--example", "1", "--granularity", "lines",
               "--output", str(out_csv)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("model: m   dataset: p   A: #0   B: #1   method: grad_l2   "
                               "granularity: lines")
    assert "response A: ok 30" in out and "response B: ok 34" in out  # FakeLM: prompt length
    aligned = [line for line in lines if line.startswith((" = ", " ~ ", " - ", " + "))]
    assert [line[1] for line in aligned] == ["=", "=", "=", "~"]
    assert "Three four." in aligned[3] and "Three five six." in aligned[3]
    assert "top " in out and "changes in salience (delta = B - A)" in out
    assert "responses, token by token:" in out
    with open(out_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["op"] for r in rows] == ["equal", "equal", "equal", "changed"]
    assert rows[3]["text_b"] == "Three five six."
    delta = float(rows[3]["score_b"]) - float(rows[3]["score_a"])
    assert float(rows[3]["delta"]) == pytest.approx(delta)


def test_segment_sep_makes_labelled_blocks(prompts, capsys):
    assert run(prompts, "--example", "0", "--example", "1", "--segment-sep", "^## ") == 0
    out = capsys.readouterr().out
    assert "granularity: blocks /^## /" in out
    assert "block 1: ## A One two." in out and "block 2: ## B Three" in out
    assert cli.main(["salience", "--models", "m:fake://ok", "--datasets", f"p:{prompts}",
                     "--example", "0", "--segment-sep", "^## ", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "top 2 salient prompt blocks" in out and "block " in out
    assert cli.main(["salience", "--models", "m:fake://ok", "--datasets", f"p:{prompts}",
                     "--example", "2", "--granularity", "segments"]) == 0
    assert "intro: 'Intro'" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--example", "0"], "give exactly two examples to compare"),
    (["--example", "0", "--example", "0"], "are the same example"),
    (["--example", "0", "--example", "9"], "--example 9 is out of range: p has 3 examples"),
    (["--example", "0", "--example", "nope"], "is not a row number of p"),
    (["--example", "0", "--example", "1", "--granularity", "blocks"],
     "--granularity blocks splits the prompt at a separator: add --segment-sep"),
    (["--example", "0", "--example", "1", "--segment-sep", "(("],
     "is not a valid regular expression"),
    (["--example", "0", "--example", "1", "--segment-sep", "x", "--granularity", "words"],
     "--segment-sep makes blocks, but --granularity is words"),
    (["--example", "0", "--example", "1", "--target", "other"], "invalid choice: 'other'"),
])
def test_compare_usage_errors(prompts, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        run(prompts, *argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_segments_granularity_without_segments_is_one_error_line(prompts, capsys):
    assert run(prompts, "--example", "0", "--example", "1", "--granularity", "segments") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: this example defines no segments") and "Traceback" not in err


def test_compare_help_and_bad_separator_import_no_heavy_library():
    """`promptlit compare --help` and a bad --segment-sep stay fast (no Keras/JAX/Gradio)."""
    import ast
    import os
    import subprocess

    from test_cli import _IMPORTS_AFTER, HEAVY_MODULES

    for argv in (["compare", "--help"], ["compare", "--segment-sep", "(("],
                 ["salience", "--segment-sep", "(("]):
        result = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, *argv],
                                capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, PROMPTLIT_AUTH=""))
        imported = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
        assert not imported & set(HEAVY_MODULES), (argv, imported & set(HEAVY_MODULES))
        if "--help" in argv:
            assert "--segment-sep REGEX" in result.stdout
        else:
            assert "is not a valid regular expression" in result.stderr
