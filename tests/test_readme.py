"""Runs README.md's ``python`` code blocks, in order, in one fresh interpreter (slow: the real
embedded model). Checks the README's promises too: it opens with the two commands, `.ci/run`
runs the test one, and the story's printed ranking starts with the mistaken few-shot line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    text = README.read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert first and text.index(first[0]) < text.index("\n## ")
    commands = [ln.split("#")[0].strip() for ln in first[1].splitlines() if ln.strip()]
    assert commands == ["bash scripts/serve.sh", "bash scripts/test.sh"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec bash scripts/test.sh" in ci


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    script = tmp_path / "readme.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               GRADIO_ANALYTICS_ENABLED="False")
    # From a directory that is not the repo: the documented handles must work from anywhere.
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout.splitlines()
    assert any("Recommendation:" in line for line in out)
    assert any(re.fullmatch(r"\(\d+, \d+\)", line) for line in out)
    scores = [(float(m[1]), m[2]) for line in out
              if (m := re.fullmatch(r"(-?\d+\.\d{4})  (.*)", line))]
    assert len(scores) == 3 and scores[0][1] == "Recommendation: You have to try it."
    assert [s for s, _ in scores] == sorted((s for s, _ in scores), reverse=True)
    assert any(line.startswith("http://127.0.0.1:") for line in out)
