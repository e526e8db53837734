"""promptlit.startup: known-harmless start-up noise is dropped, everything else still shows."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest

from promptlit import startup

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796028011.464072   32206 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796028019.427153   32206 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty. use identity normalization.",
]
REAL = [
    "E0000 00:00:1796028019.427153   32206 some_op.cc:12] real trouble: out of memory",
    "Traceback (most recent call last):",
    "ValueError: the preset is broken",
]


def test_harmless_lines_are_exactly_the_known_noise(monkeypatch):
    monkeypatch.setattr(startup, "accelerator_present", lambda: False)
    assert all(startup.harmless(line) for line in NOISE)
    assert not any(startup.harmless(line) for line in REAL)
    # With a GPU or TPU present, failed CUDA probing is real news: it shows.
    monkeypatch.setattr(startup, "accelerator_present", lambda: True)
    assert not startup.harmless(NOISE[1]) and not startup.harmless(NOISE[2])
    assert startup.harmless(NOISE[0]) and startup.harmless(NOISE[3])


def test_filtered_stderr_drops_noise_written_to_fd_2_and_passes_the_rest(capfd, monkeypatch):
    monkeypatch.setattr(startup, "accelerator_present", lambda: False)
    with startup.filtered_stderr():
        for line in [*NOISE[:2], REAL[0], NOISE[3], REAL[1]]:
            os.write(2, (line + "\n").encode())  # as native code writes
        print("from python", file=sys.__stderr__, flush=True)  # fd 2 (pytest swaps sys.stderr)
        os.write(2, b"50%\r100%\r")  # a progress bar passes at once
        os.write(2, b"no newline at the end")
    print("after", file=sys.__stderr__, flush=True)
    err = capfd.readouterr().err
    assert err == (f"{REAL[0]}\n{REAL[1]}\nfrom python\n50%\r100%\rno newline at the end"
                   "after\n")


def test_filtered_stderr_restores_fd_2_after_an_error(capfd):
    with pytest.raises(RuntimeError), startup.filtered_stderr():
        raise RuntimeError("boom")
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"


def test_configure_picks_cpu_only_without_an_accelerator(monkeypatch, keep_logging):
    monkeypatch.setattr(startup, "accelerator_present", lambda: False)
    env: dict[str, str] = {}
    startup.configure(environ=env)
    assert env["JAX_PLATFORMS"] == "cpu" and env["TF_CPP_MIN_LOG_LEVEL"] == "1"
    env = {"JAX_PLATFORMS": "cuda", "TF_CPP_MIN_LOG_LEVEL": "0"}
    startup.configure(environ=env)  # the user's choice stands
    assert env == {"JAX_PLATFORMS": "cuda", "TF_CPP_MIN_LOG_LEVEL": "0", "KERAS_BACKEND": "jax"}
    monkeypatch.setattr(startup, "accelerator_present", lambda: True)
    env = {}
    startup.configure(environ=env)
    assert "JAX_PLATFORMS" not in env


@pytest.fixture
def keep_logging():
    """Restores the levels `startup.configure` sets."""
    names = ["", "promptlit", *startup.QUIET_LOGGERS]
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


def test_configure_quiets_backend_loggers_and_the_keras_build_warning(keep_logging):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        startup.configure(environ={})
        warnings.warn("`build()` was called on layer 'gemma_causal_lm', however the layer does "
                      "not have a `build()` method implemented and it looks like it has unbuilt "
                      "state.", UserWarning, stacklevel=1)
        warnings.warn("`build()` was called on layer 'my_dense', however the layer does not "
                      "have a `build()` method implemented", UserWarning, stacklevel=1)
    assert [str(w.message)[:40] for w in seen] == ["`build()` was called on layer 'my_dense'"]
    assert logging.getLogger("jax._src.xla_bridge").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("promptlit").getEffectiveLevel() == logging.INFO


def test_phase_lines(capsys):
    startup.phase("loading model tiny")
    assert capsys.readouterr().err == "promptlit: loading model tiny…\n"


def test_accelerator_present_reads_device_nodes(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(startup.glob, "glob", lambda pattern: [])
    assert not startup.accelerator_present()
    monkeypatch.setattr(startup.glob, "glob",
                        lambda pattern: ["/dev/nvidia0"] if "nvidia" in pattern else [])
    assert startup.accelerator_present()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert startup.accelerator_present()  # elsewhere: never force the CPU


def test_compilation_cache_dir_under_the_cache_dir_or_the_user_cache(tmp_path):
    env: dict[str, str] = {}
    path = startup.compilation_cache_dir(tmp_path / "c", env)
    assert path == str(tmp_path / "c" / "jax") and os.path.isdir(path)
    assert env == {"JAX_COMPILATION_CACHE_DIR": path,
                   "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                   "JAX_COMPILATION_CACHE_MAX_SIZE": str(startup.COMPILATION_CACHE_MAX_BYTES)}
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert startup.compilation_cache_dir(None, env) == str(tmp_path / "xdg" / "promptlit" / "jax")
    # The user's own choice, an opt-out, or a directory that cannot be made: left off.
    env = {"JAX_COMPILATION_CACHE_DIR": "/elsewhere"}
    assert startup.compilation_cache_dir(tmp_path, env) is None and len(env) == 1
    env = {startup.COMPILATION_CACHE_ENV: "off"}
    assert startup.compilation_cache_dir(tmp_path, env) is None and len(env) == 1
    (tmp_path / "file").write_text("x")
    env = {}
    assert startup.compilation_cache_dir(tmp_path / "file", env) is None and env == {}


def test_configure_turns_the_compilation_cache_on_only_when_asked(tmp_path, keep_logging):
    env: dict[str, str] = {}
    startup.configure(environ=env, cache_dir=tmp_path)
    assert "JAX_COMPILATION_CACHE_DIR" not in env  # a Python caller keeps JAX as it is
    startup.configure(environ=env, cache_dir=tmp_path, compilation_cache=True)
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "jax")
