"""`promptlit explain` (promptlit.bulk): batched salience over a dataset into Parquet.

One tiny random Gemma (1 layer, hidden 16), saved as a keras-hub preset so the CLI and
subprocesses load it by path, and five prompts of different lengths (three parts of two).
Checked: stored matrices equal `Workbench.salience` (1e-5); a run stopped after one part and
restarted equals an uninterrupted run value for value; another configuration in the same
directory is refused; the directory loads back as a dataset whose responses and salience the
Workbench serves without a model call; two processes (jax.distributed on 127.0.0.1, gloo, four
simulated CPU devices each) write exactly what one process writes; bad input is one line.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import promptlit as pl
from promptlit import bulk
from promptlit.cli import main
from promptlit.lib.utils import example_id

pytestmark = pytest.mark.slow

CORPUS = ["the quick brown fox jumps over the lazy dog. Why? Because it can.",
          "Question: what is two plus two?\nAnswer: four.",
          "List: apple river stone cloud\nAgain: apple river stone"] * 20
PROMPTS = [
    {"prompt": "Question: what is two plus two?\nAnswer:", "target": " four."},
    {"prompt": "the quick brown fox", "target": " jumps over the lazy dog."},
    {"prompt": "List: apple river stone cloud\nAgain: apple river stone", "target": " cloud"},
    {"prompt": "Why? Because it can. The dog jumps over the fox. Why?", "target": " Because."},
    {"prompt": "Answer in one word.\nQuestion: what jumps?\nAnswer:", "target": " fox"},
]
BATCH = 2


@pytest.fixture(scope="session")
def preset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer random Gemma with its own SentencePiece vocabulary, as a local preset."""
    import keras
    import keras_hub
    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=proto, vocab_size=400,
        hard_vocab_limit=False, model_type="unigram", character_coverage=1.0,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, allow_whitespace_only_pieces=True, user_defined_symbols=["\n"],
        pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="<pad>", bos_piece="<bos>",
        eos_piece="<eos>", unk_piece="<unk>", num_threads=1, minloglevel=2)
    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.GemmaTokenizer(proto=proto.getvalue())
    pre = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer, sequence_length=64)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_query_heads=2,
        num_key_value_heads=1, hidden_dim=16, intermediate_dim=32, head_dim=8, dtype="float32")
    path = tmp_path_factory.mktemp("bulk") / "preset"
    keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=pre).save_to_preset(str(path))
    (path / "promptlit_generation.json").write_text(
        json.dumps({"max_new_tokens": 5, "max_length": 64}))
    return path


@pytest.fixture(scope="session")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "mini.jsonl"
    path.write_text("".join(json.dumps(ex) + "\n" for ex in PROMPTS))
    return path


@pytest.fixture(scope="session")
def lm(preset_dir: Path) -> Any:
    return pl.models.KerasCausalLM.from_preset(str(preset_dir), name="m")  # as the CLI names it


@pytest.fixture(scope="session")
def dataset(data_file: Path) -> Any:
    return pl.data.load(f"mini:{data_file}")


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory, lm: Any, dataset: Any
             ) -> tuple[Path, bulk.ExplainSummary]:
    out = tmp_path_factory.mktemp("bulk") / "full"
    summary = bulk.explain(lm, dataset, out, model_name="m", dataset_name="mini",
                           batch_size=BATCH, show_progress=False)
    return out, summary


def _rows(out: Path) -> list[dict[str, Any]]:
    return bulk.read_table(out).to_pylist()


def test_rows_equal_workbench_salience(full_run: tuple[Path, bulk.ExplainSummary], lm: Any,
                                       dataset: Any) -> None:
    out, summary = full_run
    assert (summary.examples, summary.parts, summary.computed_parts) == (5, 3, 3)
    assert "5 examples explained" in summary.line() and "3 parts written" in summary.line()
    manifest = json.loads((out / bulk.MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["rows"] == 5
    assert manifest["promptlit_version"] == pl.__version__
    assert manifest["model"]["handle"] == lm.handle
    assert manifest["model"]["config_hash"] == bulk.model_config_hash(lm)
    assert manifest["methods"] == ["grad_l2", "grad_dot_input"]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    rows = _rows(out)
    assert [r["index"] for r in rows] == list(range(5))
    wb = pl.Workbench(models={"m": lm}, datasets={"mini": dataset})  # computes afresh
    predicted = wb.predict("m", "mini", dataset.examples)
    for row, ex, pred in zip(rows, dataset.examples, predicted, strict=True):
        assert row["id"] == example_id(ex) and json.loads(row["example"]) == ex
        assert row["response"] == pred["response"]  # batched generation = the Workbench's
        if row["text"] is None:  # an empty response: nothing to explain
            continue
        sal = wb.salience("m", ex, response=row["response"])
        n, t = sal.num_tokens, sal.num_response_tokens
        assert row["tokens"] == list(sal.tokens) and row["text"] == sal.text
        np.testing.assert_array_equal(np.asarray(row["offsets"]), sal.offsets)
        for method in ("grad_l2", "grad_dot_input"):
            stored = np.asarray(row[f"matrix_{method}"], np.float32)
            assert stored.shape == (t, n)
            ref = sal.matrices[method]
            np.testing.assert_allclose(stored, ref, rtol=1e-5,
                                       atol=1e-5 * float(np.abs(ref).max()))
            words = sorted(sal.for_span(0, t, method).aggregate("words"),
                           key=lambda s: abs(s.score), reverse=True)
            top = [s for s in row["top_words"] if s["method"] == method]
            assert [s["rank"] for s in top] == list(range(1, min(10, len(words)) + 1))
            assert (top[0]["start"], top[0]["end"]) == (words[0].start, words[0].end)
            assert top[0]["score"] == pytest.approx(words[0].score, rel=1e-5, abs=1e-6)
    assert sum(r["text"] is not None for r in rows) >= 3  # most responses are explained


def test_killed_run_resumes_to_the_identical_result(
        tmp_path: Path, full_run: tuple[Path, bulk.ExplainSummary], lm: Any,
        dataset: Any) -> None:
    out = tmp_path / "resumed"

    def kill(part: int) -> None:
        raise KeyboardInterrupt(f"killed after part {part}")

    with pytest.raises(KeyboardInterrupt):
        bulk.explain(lm, dataset, out, model_name="m", dataset_name="mini", batch_size=BATCH,
                     show_progress=False, on_part=kill)
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet"]
    assert json.loads((out / bulk.MANIFEST).read_text())["status"] == "running"
    (out / ".part-00001.parquet.tmp-999").write_bytes(b"half a part")  # a kill mid-write
    with pytest.raises(bulk.ExplainError, match="not finished.*rerun the same"):
        pl.data.load(f"res:{out}")
    summary = bulk.explain(lm, dataset, out, model_name="m", dataset_name="mini",
                           batch_size=BATCH, show_progress=False)
    assert (summary.skipped_parts, summary.computed_parts, summary.computed_examples) == (1, 2, 3)
    assert _rows(out) == _rows(full_run[0])  # every value, bit for bit
    assert (json.loads((out / bulk.MANIFEST).read_text())
            == json.loads((full_run[0] / bulk.MANIFEST).read_text()))


def test_another_configuration_is_refused(full_run: tuple[Path, bulk.ExplainSummary],
                                          lm: Any, dataset: Any) -> None:
    out = full_run[0]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(bulk.ExplainError) as e:
        bulk.explain(lm, dataset, out, model_name="m", dataset_name="mini", batch_size=BATCH,
                     methods=("grad_l2",), top_k=3, show_progress=False)
    message = str(e.value)
    assert "different configuration" in message
    assert "methods (--methods): ['grad_l2', 'grad_dot_input'] there, ['grad_l2'] now" in message
    assert "top_k (--top-k): 10 there, 3 now" in message and "Fix:" in message
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing touched


def test_results_load_back_and_the_workbench_serves_them_without_the_model(
        full_run: tuple[Path, bulk.ExplainSummary], lm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptlit.salience import kernels

    out = full_run[0]
    rows = _rows(out)
    data = pl.data.load(f"results:{out}")
    assert [dict(ex) for ex in data.examples] == PROMPTS
    stored = data.stored_results
    assert stored.responses == tuple(r["response"] for r in rows)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the stored results should have been served")

    monkeypatch.setattr(lm, "generate_ids", boom)
    monkeypatch.setattr(kernels, "salience_matrix", boom)
    wb = pl.Workbench(models={"tiny": lm}, datasets={"res": data})
    outputs = wb.predict("tiny", "res", data.examples)
    assert [o["response"] for o in outputs] == [r["response"] for r in rows]
    assert outputs[0]["prompt_embedding"].dtype == np.float32
    for row, ex in zip(rows, data.examples, strict=True):
        if row["text"] is None:
            continue
        for methods in (("grad_l2", "grad_dot_input"), ("grad_dot_input",)):
            sal = wb.salience("tiny", ex, methods=methods)  # as the UI asks
            assert list(sal.matrices) == list(methods)
            for m in methods:
                np.testing.assert_array_equal(sal.matrices[m],
                                              np.asarray(row[f"matrix_{m}"], np.float32))


def test_cli_bad_input_is_one_line(tmp_path: Path, data_file: Path, preset_dir: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = ["explain", "--models", f"m:{preset_dir}", "--datasets", f"mini:{data_file}"]
    with pytest.raises(SystemExit) as e:
        main([*base, "--out", str(tmp_path / "a"), "--methods", "grad_l2,saliency"])
    assert e.value.code == 2
    assert "unknown method(s) ['saliency']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([*base, "--out", str(tmp_path / "a"), "--granularities", "words,chapters"])
    assert e.value.code == 2 and "chapters" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([*base, "--out", str(tmp_path / "a"), "--num-processes", "2", "--process-id", "2"])
    assert e.value.code == 2 and "below --num-processes 2" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main([*base, "--out", str(busy)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "Fix:" in err and "Traceback" not in err
    no_targets = tmp_path / "prompts.jsonl"
    no_targets.write_text(json.dumps({"prompt": "hello"}) + "\n")
    assert main(["explain", "--models", f"m:{preset_dir}", "--datasets", f"p:{no_targets}",
                 "--out", str(tmp_path / "b"), "--target", "target"]) == 1
    err = capsys.readouterr().err
    assert "example 0" in err and "--target response" in err and "Traceback" not in err
    with pytest.raises(bulk.ExplainError, match="no manifest.json"):
        bulk.read_table(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_write_exactly_what_one_writes(
        tmp_path: Path, full_run: tuple[Path, bulk.ExplainSummary], preset_dir: Path,
        data_file: Path) -> None:
    """jax.distributed on 127.0.0.1 with gloo CPU collectives, 4 simulated devices each."""
    out = tmp_path / "two"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    port = _free_port()
    cmd = [sys.executable, "-m", "promptlit", "explain", "--models", f"m:{preset_dir}",
           "--datasets", f"mini:{data_file}", "--out", str(out), "--batch-size", str(BATCH),
           "--no-progress", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
           "--mesh", "data=1"]  # one of the 4 devices each, exactly as the one-device run
    procs = [subprocess.Popen([*cmd, "--process-id", str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=600)
            results.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            p.kill()
    for i, (code, _stdout, stderr) in enumerate(results):
        assert code == 0, f"process {i} failed:\n{stderr[-3000:]}"
    assert "process 0 of 2" in results[0][1] and "2 parts written" in results[0][1]
    assert "process 1 of 2" in results[1][1] and "1 parts written" in results[1][1]
    assert _rows(out) == _rows(full_run[0])
    assert (json.loads((out / bulk.MANIFEST).read_text())
            == json.loads((full_run[0] / bulk.MANIFEST).read_text()))
