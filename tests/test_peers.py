"""benchmarks/peers.py's pure helpers (the benchmark itself needs torch, transformers and inseq,
the `bench` extra, which CI never installs: nothing here imports them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "peers.py"


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("peers_bench", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peers = _module()


def test_importing_the_benchmark_needs_no_torch():
    assert "torch" not in peers.__dict__ and "inseq" not in peers.__dict__


def test_cells_parse_and_reject_bad_specs():
    assert peers.parse_cells(["140x23", "1100X64"]) == [(140, 23), (1100, 64)]
    for bad in ["140", "23x140", "axb", "10x0"]:
        with pytest.raises(ValueError, match="cell"):
            peers.parse_cells([bad])


def test_relative_error_is_against_the_reference_scale_and_skips_non_finite():
    ref = np.array([[1.0, -4.0], [0.0, 2.0]])
    assert peers.rel_error(ref, ref) == 0.0
    assert peers.rel_error(ref + np.array([[0.0, 0.0], [0.0, 0.004]]), ref) == pytest.approx(1e-3)
    assert peers.rel_error(np.array([np.nan, 1.0]), np.array([5.0, 1.0])) == 0.0
    assert peers.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        peers.rel_error(np.zeros(2), np.zeros(3))


def test_words_and_texts_are_deterministic():
    words = peers.pseudo_words(50, seed=1)
    assert len(set(words)) == 50 and all(3 <= len(w) <= 5 and w.isalpha() for w in words)
    assert words == peers.pseudo_words(50, seed=1) != peers.pseudo_words(50, seed=2)
    text = peers.word_text(30, 7, words)
    assert text == peers.word_text(30, 7, words) and set(text) <= set(words)


def test_table_formats_missing_values_and_ratios():
    rows = [{"model": "gpt2", "N": 140, "r": peers.ratio(3.0, 2.0)},
            {"model": "llama", "N": 1100, "r": peers.ratio(None, 2.0)}]
    out = peers.format_table(rows, [("model", "{}"), ("N", "{}"), ("r", "{:.2f}")])
    lines = out.splitlines()
    assert lines[0].split("|")[0].strip() == "model" and set(lines[1]) <= {"-", "|"}
    assert lines[2].endswith("1.50") and lines[3].endswith("-")
