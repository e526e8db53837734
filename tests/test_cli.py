"""Tests for promptlit.cli: spec parsing, validate exit codes, serve wiring, salience printout.

Models come from a fake loader registered with `register_model_loader("fake", ...)`, never the
real LM.
"""

import ast
import os
import socket
import subprocess
import sys
import time

import pytest

from promptlit import cli
from promptlit import server as server_module
from promptlit.ui.limits import RequestLimits
from promptlit.workbench import LoadError, register_model_loader

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_workbench import FakeLM  # noqa: E402


class BadLM(FakeLM):
    """Returns a number where text is expected."""

    def predict_minibatch(self, inputs):
        return [{"response": 1} for _ in inputs]


@pytest.fixture(autouse=True)
def fake_models():
    register_model_loader("fake", lambda handle, name: BadLM() if "bad" in handle else FakeLM())


@pytest.fixture
def good_jsonl(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_text('{"prompt": "One two three.", "target": " four"}\n{"prompt": "Hi"}\n',
                    encoding="utf-8")
    return path


@pytest.fixture
def bad_jsonl(tmp_path):
    path = tmp_path / "planted.jsonl"
    path.write_text('{"prompt": "fine"}\n\n{"prompt": "oops",}\n{"target": "x"}\n',
                    encoding="utf-8")
    return path


def test_parse_model_specs():
    assert cli.parse_model_specs("a:h1,b:h2") == {"a": "h1", "b": "h2"}
    assert cli.parse_model_specs("g:hf://org/x") == {"g": "hf://org/x"}
    assert cli.parse_model_specs("hf://org/gemma-2b") == {"gemma-2b": "hf://org/gemma-2b"}
    assert cli.parse_model_specs("kaggle://keras/gemma/keras/gemma_2b_en") == {
        "gemma_2b_en": "kaggle://keras/gemma/keras/gemma_2b_en"}
    assert cli.parse_model_specs("presets/tiny_lm/, m:gemma2_instruct_2b_en") == {
        "tiny_lm": "presets/tiny_lm/", "m": "gemma2_instruct_2b_en"}
    for bad, match in [("a:h,,b:h", "empty model"), ("a:", "bad model"), (":h", "bad model"),
                       ("a:x,a:y", "given twice")]:
        with pytest.raises(cli.SpecError, match=match):
            cli.parse_model_specs(bad)


def test_parse_auth(tmp_path):
    assert cli.parse_auth(None) is None
    assert cli.parse_auth("ann:pw:with:colons") == [("ann", "pw:with:colons")]
    f = tmp_path / "users.txt"
    f.write_text("# users\nann:1\n\nbob:2\n", encoding="utf-8")
    assert cli.parse_auth(str(f)) == [("ann", "1"), ("bob", "2")]
    f.write_text("ann:1\nbroken\n", encoding="utf-8")
    with pytest.raises(cli.SpecError, match=r"users.txt:2: expected user:password"):
        cli.parse_auth(str(f))
    with pytest.raises(cli.SpecError, match="--auth: 'nopassword' is neither USER:PASS nor an "
                                            "existing file"):
        cli.parse_auth("nopassword")
    with pytest.raises(cli.SpecError, match="--auth: expected user:password"):
        cli.parse_auth("ann:")


def test_repo_relative_presets_load_from_any_directory(tmp_path, monkeypatch):
    """`presets/...` handles resolve against the repository when not under the current
    directory (`promptlit.models.presets.resolve_handle`), so the README commands work anywhere."""
    monkeypatch.chdir(tmp_path)
    (clf,) = cli.load_models("clf:presets/breast_cancer_clf").values()
    assert type(clf).__name__ == "SklearnClassifier"
    with pytest.raises(LoadError, match="could not load model 'm' from 'no/such/dir'"):
        cli.load_models("m:no/such/dir")


def test_validate_exit_codes(good_jsonl, bad_jsonl, capsys):
    assert cli.main(["validate", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}"]) == 0
    out = capsys.readouterr().out
    assert "OK: 0 error(s), 0 warning(s) in 1 dataset(s) and 1 model(s)" in out

    assert cli.main(["validate", "--models", "m:fake://ok", "--datasets", f"p:{bad_jsonl}"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{bad_jsonl}:3: not valid JSON")
    assert out[1] == (f"{bad_jsonl}:4: field 'prompt': required field is missing (expected "
                      "TextSegment (a string); the example has: target). Fix: add 'prompt' to the "
                      "example, or declare it required=False.")
    assert out[-1] == "FAILED: 2 error(s), 0 warning(s) in 1 dataset(s) and 1 model(s)"


def test_validate_reports_bad_model_outputs(good_jsonl, capsys):
    assert cli.main(["validate", "--models", "m:fake://bad", "--datasets", f"g:{good_jsonl}"]) == 1
    out = capsys.readouterr().out
    assert "field 'response': expected GeneratedText (a string), got int 1" in out
    assert "FAILED: 2 error(s)" in out


def test_validate_unknown_dataset_and_model_failure(good_jsonl, capsys):
    assert cli.main(["validate", "--models", "m:fake://ok", "--datasets", "nonexistent"]) == 1
    assert "unknown dataset 'nonexistent'; known datasets: " in capsys.readouterr().out
    register_model_loader("broken", lambda h, n: (_ for _ in ()).throw(OSError("no weights")))
    assert cli.main(["validate", "--models", "m:broken://x", "--datasets", f"g:{good_jsonl}"]) == 1
    assert "could not load model 'm' from 'broken://x': OSError: no weights" in (
        capsys.readouterr().err)


def test_malformed_specs_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["validate", "--models", "a:x,a:y"])
    assert info.value.code == 2
    assert "--models: model name 'a' is given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["serve", "--port", "99999"])
    with pytest.raises(SystemExit):
        cli.main(["serve", "--layout", "nope"])
    assert "is not a layout" in capsys.readouterr().err


def test_generation_flags_become_model_options():
    parser = cli.make_parser()
    args = parser.parse_args(["serve", "--max-new-tokens", "12", "--sampler", "top_p",
                              "--top-p", "0.8", "--temperature", "0.7", "--seed", "3",
                              "--stop", r"\n\n", "--stop", "Q:", "--max-length", "300",
                              "--dtype", "bfloat16"])
    assert cli.generation_options(args) == {
        "max_new_tokens": 12, "sampler": "top_p", "top_p": 0.8, "temperature": 0.7, "seed": 3,
        "stop_sequences": ["\n\n", "Q:"], "max_length": 300, "dtype": "bfloat16"}
    assert cli.generation_options(parser.parse_args(["serve"])) == {}


@pytest.mark.parametrize("flags, message", [
    (["--top-p", "1.5"], "must be in (0, 1]"),
    (["--temperature", "0"], "must be > 0"),
    (["--stop", ""], "a stop sequence cannot be empty"),
    (["--stop", r"\x4"], "bad escape"),
    (["--sampler", "beam"], "invalid choice"),
    (["--dtype", "float16"], "invalid choice"),
])
def test_bad_generation_flags_are_usage_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["validate", *flags])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_generation_flags_reach_the_causal_lm_and_override_the_preset():
    (lm,) = cli.load_models("tiny:presets/tiny_lm", {"max_new_tokens": 5, "stop_sequences": ["."],
                                                     "sampler": "top_k", "seed": 1}).values()
    assert (lm.max_new_tokens, lm.stop_sequences, lm.sampler, lm.seed) == (5, (".",), "top_k", 1)
    (default,) = cli.load_models("tiny:presets/tiny_lm").values()
    assert (default.max_new_tokens, default.stop_sequences) == (64, ("\n\n",))  # the preset's


def test_generation_flags_skip_non_lm_presets():
    """A promptlit classifier preset ignores generation settings instead of failing."""
    models = cli.load_models("clf:presets/breast_cancer_clf", {"max_new_tokens": 4,
                                                               "stop_sequences": ["x"],
                                                               "dtype": "bfloat16"})
    assert type(models["clf"]).__name__ == "SklearnClassifier"


def test_serve_builds_workbench_and_calls_server(good_jsonl, tmp_path, monkeypatch):
    calls = {}

    def serve(workbench, **kwargs):
        calls["wb"], calls["kwargs"] = workbench, kwargs

    # Patch the real module's function: `from promptlit import server` in the CLI returns the
    # already-imported module when another test imported it first.
    monkeypatch.setattr(server_module, "serve", serve)
    # No subcommand means serve.
    code = cli.main(["--models", "m:fake://ok", "--datasets", f"g:{good_jsonl},sample_prompts",
                     "--port", "8081", "--auth", "ann:pw", "--max-examples", "1",
                     "--cache-dir", str(tmp_path / "c"), "--layout", "lm", "--demo-mode"])
    assert code == 0
    wb = calls["wb"]
    assert list(wb.models) == ["m"] and list(wb.datasets) == ["g", "sample_prompts"]
    assert len(wb.datasets["sample_prompts"]) == 1
    assert wb.cache_dir == tmp_path / "c" and wb.default_layout == "lm"
    limits = calls["kwargs"].pop("limits")
    assert calls["kwargs"] == {"host": "127.0.0.1", "port": 8081, "share": False,
                               "auth": [("ann", "pw")], "page_title": "promptlit",
                               "demo_mode": True, "default_layout": "lm",
                               "open_browser": True, "allow_public": False, "save_dir": None,
                               "warmup": True}
    assert limits == RequestLimits()


def test_salience_prints_top_segments(good_jsonl, capsys):
    code = cli.main(["salience", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}",
                     "--example", "0", "--method", "grad_l2", "--granularity", "words",
                     "--top", "2"])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    # FakeLM answers " ok 14"; each response token scores prompt word j as j + 1 (2 tokens).
    assert out[1] == "prompt:   One two three."
    assert out[2] == "response: ok 14"
    assert out[4] == "  1.     6.0000  [8:14]  'three.'"
    assert out[5] == "  2.     4.0000  [4:7]  'two'"
    with pytest.raises(SystemExit):
        cli.main(["salience", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}",
                  "--example", "5"])


def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "promptlit", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "{serve,validate,salience,plan,compare,explain}" in result.stdout


@pytest.mark.parametrize("demo, models, datasets, layout", [
    ("classification", ["breast_cancer", "sentiment"], ["breast_cancer", "sentiment"],
     "classification"),
    ("regression", ["diabetes", "sentiment_confidence"], ["diabetes", "sentiment"], "default"),
])
def test_serve_demo_loads_the_shipped_models_datasets_and_layout(demo, models, datasets, layout,
                                                                 monkeypatch):
    calls = {}
    monkeypatch.setattr(server_module, "serve", lambda wb, **kw: calls.update(wb=wb, kw=kw))
    assert cli.main(["serve", "--demo", demo, "--no-browser", "--max-examples", "50"]) == 0
    wb = calls["wb"]
    assert list(wb.models) == models and list(wb.datasets) == datasets
    assert calls["kw"]["default_layout"] == layout == wb.default_layout
    for model, dataset in zip(models, datasets, strict=True):  # each model reads its dataset
        assert dataset in wb.compatible_datasets(model)
        assert not wb.models[model].incompatibility_reasons(wb.datasets[dataset])


def test_serve_demo_refuses_explicit_models(capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--demo", "classification", "--models", "m:fake://ok"])
    assert "--demo classification picks its own models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["serve", "--demo", "nope"])


##
# Fail fast, with one clear line: numbers, ports, hosts, auth, caches, save dirs, limits


def _serve_spy(monkeypatch):
    """Replaces `server.serve` (records its kwargs) and fails the test if models load."""
    calls = {}
    monkeypatch.setattr(server_module, "serve", lambda wb, **kw: calls.update(wb=wb, kw=kw))
    return calls


def _no_loading(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("models/datasets were loaded before the check")
    monkeypatch.setattr(cli, "build_workbench", fail)
    monkeypatch.setattr(cli, "load_models", fail)


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--temperature", "inf"], ["--temperature", "nan"],
                                   ["--top-p", "nan"], ["--top-p", "inf"]])
def test_non_finite_numbers_are_usage_errors(flags, capsys):
    err = _usage_error(["validate", *flags], capsys)
    assert f"argument {flags[0]}: expected a finite number, got {flags[1]!r}" in err


def test_port_zero_means_any_free_port():
    assert cli.make_parser().parse_args(["serve", "--port", "0"]).port == 0
    with pytest.raises(SystemExit):
        cli.make_parser().parse_args(["serve", "--port", "-1"])


def test_busy_port_fails_before_loading_anything(monkeypatch, capsys):
    _no_loading(monkeypatch)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["serve", "--port", str(port), "--no-browser"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: port {port} on 127.0.0.1 is already in use (another promptlit or "
                   "server is listening there). Fix: --port N for another port, --port 0 for "
                   "any free port, or stop what uses it")


def test_busy_port_via_python_dash_m_exits_at_once():
    """The real command: one error line, no traceback, before any model loads."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "promptlit", "serve", "--port", str(port),
                                 "--no-browser"], capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, PROMPTLIT_AUTH=""))
    assert result.returncode == 1, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: port {port} on 127.0.0.1 is already in use (another promptlit "
                      "or server is listening there). Fix: --port N for another port, --port 0 "
                      "for any free port, or stop what uses it"]
    assert "Traceback" not in result.stderr and time.monotonic() - start < 60


def test_demo_mode_on_every_interface_needs_a_login_or_allow_public(monkeypatch, capsys):
    _no_loading(monkeypatch)
    monkeypatch.delenv("PROMPTLIT_AUTH", raising=False)
    err = _usage_error(["serve", "--host", "0.0.0.0", "--demo-mode"], capsys)
    assert ("error: refusing to serve demo mode on 0.0.0.0 (every network interface) without a "
            "login. Fix: require one with --auth-file FILE") in err
    assert "--allow-public" in err and "--host 127.0.0.1" in err


def test_share_without_a_login_needs_allow_public(monkeypatch, good_jsonl, capsys):
    """A share link is the public internet: `--share` without a login is a usage error (before
    anything loads) unless --allow-public says it is meant."""
    monkeypatch.delenv("PROMPTLIT_AUTH", raising=False)
    with monkeypatch.context() as m:
        _no_loading(m)
        err = _usage_error(["serve", "--share"], capsys)
    assert ("error: refusing to create a public share link without a login. Fix: require one "
            "with --auth-file FILE or PROMPTLIT_AUTH=user:pass") in err
    assert "--allow-public" in err and "Traceback" not in err
    calls = _serve_spy(monkeypatch)
    base = ["serve", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}", "--share",
            "--no-browser", "--port", "0"]
    assert cli.main([*base, "--allow-public"]) == 0
    assert calls["kw"]["share"] is True and calls["kw"]["allow_public"] is True


def test_allow_public_and_auth_let_demo_mode_bind_every_interface(monkeypatch, good_jsonl,
                                                                  tmp_path):
    calls = _serve_spy(monkeypatch)
    monkeypatch.setattr(server_module, "check_port", lambda host, port: None)  # never bound
    base = ["serve", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}", "--host",
            "0.0.0.0", "--demo-mode", "--no-browser"]
    assert cli.main([*base, "--allow-public"]) == 0
    assert calls["kw"]["allow_public"] is True and calls["kw"]["auth"] is None
    users = tmp_path / "users"
    users.write_text("ann:s3cret\n")
    assert cli.main([*base, "--auth-file", str(users)]) == 0
    assert calls["kw"]["auth"] == [("ann", "s3cret")] and calls["kw"]["allow_public"] is False


def test_auth_file_env_and_missing_files(monkeypatch, tmp_path, capsys):
    _no_loading(monkeypatch)
    monkeypatch.delenv("PROMPTLIT_AUTH", raising=False)
    err = _usage_error(["serve", "--auth", "/missing/file:x"], capsys)
    assert "error: --auth: no such file /missing/file:x" in err
    err = _usage_error(["serve", "--auth-file", str(tmp_path / "nope.txt")], capsys)
    assert f"error: --auth-file: no such file {tmp_path / 'nope.txt'}" in err
    users = tmp_path / "users"
    users.write_text("ann:1\n")
    err = _usage_error(["serve", "--auth", "ann:1", "--auth-file", str(users)], capsys)
    assert "give --auth or --auth-file, not both" in err
    monkeypatch.setenv("PROMPTLIT_AUTH", "/missing/env-file")
    err = _usage_error(["serve"], capsys)
    assert "error: PROMPTLIT_AUTH: no such file /missing/env-file" in err

    args = cli.make_parser().parse_args(["serve"])
    monkeypatch.setenv("PROMPTLIT_AUTH", "bob:pa/ss:word")  # a '/' in the password is fine
    assert cli.resolve_auth(args) == [("bob", "pa/ss:word")]
    monkeypatch.setenv("PROMPTLIT_AUTH", str(users))
    assert cli.resolve_auth(args) == [("ann", "1")]
    args = cli.make_parser().parse_args(["serve", "--auth-file", str(users)])
    assert cli.resolve_auth(args) == [("ann", "1")]


def test_help_explains_how_to_keep_the_password_out_of_the_process_list(capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--auth-file FILE" in text and "$PROMPTLIT_AUTH" in text
    assert "process list" in text and "--allow-public" in text
    for flag in ("--max-ig-steps", "--max-prompt-chars", "--max-queue", "--max-upload-mb",
                 "--save-dir", "--no-save", "--reset-cache"):
        assert flag in text


def _a_file(d):
    d.write_text("x")
    return d


def _a_corrupt_cache(d):
    d.mkdir()
    (d / "m.sqlite3").write_bytes(b"garbage" * 99)
    return d


@pytest.mark.parametrize("make_bad, expected", [
    (_a_file, "is a file, not a directory"),
    (_a_corrupt_cache, "not a usable SQLite cache file (file is not a database)"),
])
def test_bad_cache_dir_is_one_error_line_before_loading(make_bad, expected, tmp_path,
                                                         monkeypatch, capsys):
    _no_loading(monkeypatch)
    cache = make_bad(tmp_path / "cache")
    assert cli.main(["salience", "--cache-dir", str(cache)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    if "SQLite" in expected:
        bad = cache / "m.sqlite3"
        assert f"mv {bad} {bad}.corrupt-" in err and "--reset-cache" in err


def test_reset_cache_moves_the_corrupt_file_aside(tmp_path, good_jsonl, monkeypatch, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "m.sqlite3").write_bytes(b"garbage" * 99)
    argv = ["validate", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}",
            "--cache-dir", str(cache)]
    assert cli.main([*argv, "--reset-cache"]) == 0
    err = capsys.readouterr().err
    (aside,) = cache.glob("m.sqlite3.corrupt-*")
    assert f"note: {cache / 'm.sqlite3'} was not a readable cache file; moved it aside to " \
           f"{aside}" in err and aside.read_bytes() == b"garbage" * 99
    assert cli.main(argv) == 0  # the fresh file works
    monkeypatch.delenv("PROMPTLIT_CACHE_DIR", raising=False)
    assert "--reset-cache needs --cache-dir" in _usage_error(["validate", "--reset-cache"], capsys)


def test_expected_errors_are_one_line_and_the_traceback_needs_verbose(monkeypatch, good_jsonl,
                                                                     capsys):
    class Failing(FakeLM):
        def predict_minibatch(self, inputs):
            raise KeyError("no such vocabulary entry")

    register_model_loader("failing", lambda handle, name: Failing())
    argv = ["salience", "--models", "m:failing://x", "--datasets", f"g:{good_jsonl}"]
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == "error: no such vocabulary entry\n"
    assert cli.main([*argv, "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.endswith("error: no such vocabulary entry\n")

    class Buggy(FakeLM):
        def predict_minibatch(self, inputs):
            raise RuntimeError("boom")

    register_model_loader("buggy", lambda handle, name: Buggy())
    assert cli.main(["salience", "--models", "m:buggy://x", "--datasets", f"g:{good_jsonl}"]) == 1
    assert capsys.readouterr().err == ("error: unexpected RuntimeError: boom (rerun with --verbose "
                                       "for the traceback)\n")


def test_salience_on_a_prompt_longer_than_max_length_is_one_error_line(capsys):
    assert cli.main(["salience", "--max-length", "8"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: tiny: a prompt has 150 tokens, but max_length is 8; shorten the prompt "
                   "or raise max_length.\n")


def test_limit_flags_build_request_limits(monkeypatch, good_jsonl):
    calls = _serve_spy(monkeypatch)
    assert cli.main(["serve", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}",
                     "--no-browser", "--port", "0", "--max-ig-steps", "32",
                     "--max-prompt-chars", "500", "--max-queue", "3",
                     "--max-upload-mb", "0.5"]) == 0
    assert calls["kw"]["limits"] == RequestLimits(max_ig_steps=32, max_prompt_chars=500,
                                                  max_queue=3, max_upload_mb=0.5)


def test_save_dir_resolution(monkeypatch, good_jsonl, tmp_path, capsys):
    calls = _serve_spy(monkeypatch)
    monkeypatch.chdir(tmp_path)
    base = ["serve", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}", "--no-browser",
            "--port", "0"]

    def save_dir(*flags):
        assert cli.main([*base, *flags]) == 0
        return calls["kw"]["save_dir"]

    monkeypatch.delenv("PROMPTLIT_CACHE_DIR", raising=False)
    assert save_dir() == tmp_path / "promptlit-saves"
    assert save_dir("--cache-dir", "c") == tmp_path / "c" / "promptlit-saves"
    assert save_dir("--save-dir", "mine") == tmp_path / "mine"  # absolute
    assert save_dir("--no-save") is None and save_dir("--demo-mode") is None
    (tmp_path / "afile").write_text("x")
    err = _usage_error([*base, "--save-dir", "afile"], capsys)
    assert f"--save-dir {tmp_path / 'afile'} is a file, not a directory. Fix:" in err
    assert "--demo-mode never saves" in _usage_error([*base, "--demo-mode", "--save-dir", "x"],
                                                     capsys)
    assert "not allowed with argument" in _usage_error([*base, "--no-save", "--save-dir", "x"],
                                                       capsys)


HEAVY_MODULES = ("keras", "keras_hub", "jax", "jaxlib", "tensorflow", "gradio", "torch")
_IMPORTS_AFTER = """
import runpy, sys
sys.argv = ["promptlit", *sys.argv[1:]]
try:
    runpy.run_module("promptlit", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    print(sorted({name.split(".")[0] for name in sys.modules}), file=sys.__stdout__)
"""


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"], ["validate", "--help"],
                                  ["salience", "--help"], ["serve", "--port", "abc"],
                                  ["--models", ",,"], ["--layout", "nope"],
                                  ["--reset-cache"], ["--version"], ["-V"]])
def test_help_and_argument_errors_import_no_heavy_library(argv):
    """`python -m promptlit --help` (and a usage error, and --version) imports neither Keras,
    JAX, TensorFlow nor Gradio: it stays fast (benchmarks/startup.py measures it)."""
    result = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, *argv], capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, PROMPTLIT_AUTH=""))
    imported = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert not imported & set(HEAVY_MODULES), (imported & set(HEAVY_MODULES), result.stderr)
    assert "promptlit" in imported


def test_serve_prints_one_line_per_start_up_phase(good_jsonl, monkeypatch, capsys):
    calls = _serve_spy(monkeypatch)
    assert cli.main(["serve", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}",
                     "--no-browser", "--port", "0"]) == 0
    assert calls["kw"]["port"] == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["promptlit: importing JAX, Keras and Gradio…",
                     "promptlit: loading model m (fake://ok), dataset g…",
                     "promptlit: building the page…"]


def test_plan_help_and_bad_sizes_are_usage_errors_without_heavy_imports(capsys):
    """`promptlit plan`: a bad --device-memory is a usage error (exit 2) naming the fix."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["plan", "--device-memory", "24XB"])
    assert exit_info.value.code == 2
    assert "not a memory size: '24XB'; write e.g. 24GB" in capsys.readouterr().err
    result = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, "plan", "--help"],
                            capture_output=True, text=True, timeout=120)
    imported = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert not imported & set(HEAVY_MODULES), imported & set(HEAVY_MODULES)


def test_plan_unknown_model_is_one_error_line(capsys):
    assert cli.main(["plan", "--models", "m:mystery_7b", "--device-memory", "24GB"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no architecture known for 'mystery_7b': plan works "
                              "offline for the keras-hub presets gemma2_27b, gemma2_2b")


@pytest.mark.slow
def test_plan_prints_estimates_and_what_fits_per_device(capsys):
    """Compile-only, on the repo's tiny preset: one row per length, one column per device."""
    assert cli.main(["plan", "--models", "tiny:presets/tiny_lm", "--length", "100",
                     "--targets", "23", "--device-memory", "4MB", "16GB"]) == 0
    out = capsys.readouterr().out
    assert "compile-only estimates from XLA's memory_analysis()" in out
    lines = out.splitlines()
    (head,) = [line for line in lines if line.lstrip().startswith("model |   dtype")]
    assert "matrix w=max" in head and "IG a=max" in head
    (row,) = [line for line in lines if "float32" in line]
    assert "(w=24)" in row and "(a=16)" in row
    fits = [line.split("|") for line in lines if line.lstrip().startswith("tiny_lm |")
            and "GB" not in line and "float32" not in line]
    assert [[c.strip() for c in row] for row in fits] == [["tiny_lm", "100", "no", "24/16"]]


@pytest.mark.slow
def test_the_command_keeps_jax_compiles_under_the_cache_dir(tmp_path):
    """`promptlit ... --cache-dir DIR` (the command, not `cli.main` from Python) keeps XLA
    compiles in DIR/jax, so the next start skips them."""
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "PROMPTLIT_COMPILATION_CACHE")}
    result = subprocess.run([sys.executable, "-m", "promptlit", "validate", "--validate", "first",
                             "--cache-dir", str(cache)], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert any((cache / "jax").iterdir()), "no compilation cache entries"


def test_salience_contrast_explains_why_the_response_rather_than_another(capsys):
    # The embedded model copies the mistaken example: why its response rather than " Avoid."?
    code = cli.main(["salience", "--example", "0", "--method", "grad_dot_input",
                     "--granularity", "lines", "--top", "3", "--contrast", " Avoid."])
    out = capsys.readouterr().out
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("contrast: why the response"))
    log_a = float(line.split("log p(A) = ")[1].split(",")[0])
    log_b = float(line.split("log p(B) = ")[1].split(")")[0])
    assert log_a > log_b  # the model prefers what it wrote
    scores = [float(ln.split()[1]) for ln in out.splitlines() if ln[:4].strip().rstrip(".").isdigit()]
    assert len(scores) == 3 and abs(scores[0]) >= abs(scores[-1]) > 0


def test_serve_no_warmup_turns_the_background_warmup_off(good_jsonl, tmp_path, monkeypatch):
    calls = {}
    monkeypatch.setattr(server_module, "serve", lambda wb, **kw: calls.update(kw))
    assert cli.main(["serve", "--models", "m:fake://ok", "--datasets", f"g:{good_jsonl}",
                     "--no-browser", "--no-warmup", "--cache-dir", str(tmp_path / "c")]) == 0
    assert calls["warmup"] is False
