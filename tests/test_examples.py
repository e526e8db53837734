"""Executes the notebooks under examples/ headlessly (nbclient + ipykernel), cell by cell.

Checks what a reader sees: the salience cells print real numbers with the mistaken few-shot line
on top, and the widget's output cell holds an iframe of a live local server answering HTTP 200
(checked before the notebook's last cell stops it).
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NUMBER_LINE = re.compile(r"^\s*([-+]?\d+\.\d{4})\s+'(.*)'$")


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module) -> str:
    """A kernelspec running this interpreter (so the kernel sees the same installed promptlit)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / "promptlit-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "promptlit test", "language": "python",
        "env": {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}}))
    monkeypatch_module.setenv("JUPYTER_PATH", str(root))
    return "promptlit-test"


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def outputs_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def outputs_html(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []))


def ranked(text: str) -> list[tuple[float, str]]:
    return [(float(m[1]), m[2]) for line in text.splitlines() if (m := NUMBER_LINE.match(line))]


def run_notebook(name: str, kernel: str, frame_query: str) -> list:
    """Executes examples/<name> cell by cell; returns its code cells (with outputs).

    Before the last cell (which stops the widget) the widget cell's iframe must point at a live
    local server answering HTTP 200 with ``frame_query`` in its URL.
    """
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLES / name, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel, timeout=600,
                            resources={"metadata": {"path": str(REPO)}})
    code = [c for c in nb.cells if c.cell_type == "code"]
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell is code[-1]:
                frame = re.search(r'<iframe class="promptlit-frame" src="([^"]+)"',
                                  outputs_html(code[-2]))
                assert frame, f"no promptlit iframe in the widget cell: {code[-2].outputs}"
                url = frame[1].replace("&amp;", "&")
                assert url.startswith("http://127.0.0.1:") and frame_query in url
                with urllib.request.urlopen(url, timeout=60) as r:
                    assert r.status == 200 and b"gradio" in r.read().lower()
            client.execute_cell(cell, index)
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, errors
    return code


def test_prompt_debugging_notebook(kernel_env):
    code = run_notebook("prompt_debugging.ipynb", kernel_env, "dataset=notebook_data")
    assert "Recommendation: You have to try it." in outputs_text(code[1])
    grad = ranked(outputs_text(code[2]))
    assert len(grad) == 3 and all(score > 0 for score, _ in grad)
    assert [s for s, _ in grad] == sorted((s for s, _ in grad), reverse=True)
    # the mistaken few-shot block (shown by its last line) first, by a wide margin (measured 4.7x)
    assert grad[0][1] == "Recommendation: You have to try it." and grad[0][0] > 2 * grad[1][0]
    assert "top line: 'Recommendation: You have to try it.'" in outputs_text(code[2])
    ig = ranked(outputs_text(code[3]))
    assert len(ig) == 3 and ig[0][1] == "Recommendation: You have to try it." and ig[0][0] > 0
    assert "Recommendation" in outputs_text(code[4])


def test_classification_notebook(kernel_env):
    code = run_notebook("classification.ipynb", kernel_env, "dataset=breast_cancer")
    text = [outputs_text(c) for c in code]
    assert "['cancer'] ['sentiment']" in text[0]
    acc = re.search(r"accuracy \[\{'train': ([\d.]+), 'test': ([\d.]+)\}\]", text[1])
    assert acc and 0.9 < float(acc[2]) <= float(acc[1]) <= 1.0
    counts = [int(n) for n in re.findall(r"^(?:malignant|benign)\s+(\d+)\s+(\d+)$", text[2],
                                          flags=re.M) for n in n]
    assert len(counts) == 4 and sum(counts) == 143  # the shipped test split
    thresholds = [float(t) for t in re.findall(r"threshold ([\d.]+)", text[2])]
    assert len(thresholds) == 3 and thresholds == sorted(thresholds)  # costlier FPs: higher
    tops = dict(re.findall(r"^(IG|LIME) (\[.*\])$", text[3], flags=re.M))
    assert set(tops) == {"IG", "LIME"}
    assert any("good" in tok for tok in re.findall(r"\('([^']+)'", tops["IG"]))
    rows = re.findall(r"^\s*(negative|neutral|positive) (\d\.\d{3})  '(.*)'$", text[4], flags=re.M)
    assert len(rows) == 2 and "good" in rows[0][2] and "bad" in rows[1][2]
    assert rows[0][1] != rows[1][1]  # the model was re-run on the counterfactual
