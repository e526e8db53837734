"""A quiet, legible start for the `promptlit` command.

`promptlit serve` imports JAX, Keras, keras-hub (which imports TensorFlow for its tokenizers) and
Gradio, then loads models. Left alone, those libraries print backend probing (TensorFlow looking
for CUDA drivers, JAX trying TPU and proxy backends, absl's "before InitializeLog" preamble),
sentencepiece's normaliser notes and a Keras ``build()`` warning that every keras-hub CausalLM
triggers, none of which the user can act on. This module:

* `configure`: picks the JAX CPU backend when no accelerator device exists (so nothing probes for
  one), keeps third-party loggers at WARNING (promptlit's own at INFO), ignores the one Keras
  warning known to be harmless, and turns on JAX's persistent compilation cache
  (`compilation_cache_dir`), so a second start (and a second first request) skips the XLA
  compiles of the first: loading the tiny model drops from ~5 s to ~1 s;
* `filtered_stderr`: drops the known-harmless lines native code writes to file descriptor 2
  (TensorFlow / absl / sentencepiece ignore Python's logging and ``TF_CPP_MIN_LOG_LEVEL`` for
  them), passing every other line through at once, errors included;
* `phase`: prints one line per start-up phase ("promptlit: loading model tiny …").

Each filter names exactly what it hides (`HARMLESS_LINES`, `HARMLESS_WARNINGS`); anything else
still reaches the terminal. Nothing here imports a heavy library at import time.

Example:
    >>> import re
    >>> any(p.search("normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty. use identity "
    ...              "normalization.") for p in HARMLESS_LINES)
    True
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator, MutableMapping, Sequence

PREFIX = "promptlit: "

#: Device nodes of accelerators JAX can use on Linux: NVIDIA, AMD (ROCm), TPU (v4+: accel,
#: v5e / v6e: vfio), and WSL's GPU bridge.
ACCELERATOR_DEVICES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/accel[0-9]*", "/dev/vfio/[0-9]*",
                       "/dev/dxg")

#: Lines native libraries write to stderr at start-up that say nothing the user can act on.
HARMLESS_LINES: tuple[re.Pattern[str], ...] = (
    # absl's preamble before its first message (TensorFlow, at import)
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are "
               r"written to STDERR$"),
    # TensorFlow's notes about the CPU instructions it was built for
    re.compile(r"^I\d{4} [\d:. ]+\d+ cpu_feature_guard\.cc:\d+\] "),
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild "
               r"TensorFlow with the appropriate compiler flags\.$"),
    re.compile(r"^I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on"),
    # sentencepiece (inside tensorflow-text) on a model without a normalisation rule
    re.compile(r"^normalizer\.cc\(\d+\) LOG\(INFO\) precompiled_charsmap is empty\. "
               r"use identity normalization\.$"),
)

#: With no accelerator device on this machine, TensorFlow's failed CUDA probing is expected too.
HARMLESS_WITHOUT_ACCELERATOR: tuple[re.Pattern[str], ...] = (
    re.compile(r"^I\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your "
               r"machine, GPU will not be used\.$"),
    re.compile(r"^E\d{4} [\d:. ]+\d+ cuda_(platform|executor)\.cc:\d+\] failed call to cuInit: "),
    re.compile(r"^I\d{4} [\d:. ]+\d+ cuda_diagnostics\.cc:\d+\] "),
)

#: (message regex, category) of Python warnings known to be harmless.
HARMLESS_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # keras 3.15 + keras-hub: every CausalLM (a functional model whose sampler state Keras
    # cannot build) triggers this when loaded from a preset; the model is built and works.
    (r"`build\(\)` was called on layer '\w*causal_lm', however the layer does not have a "
     r"`build\(\)` method implemented", UserWarning),
)

#: The most disk JAX's compilation cache may use before it drops its least recently used entries.
COMPILATION_CACHE_MAX_BYTES = 4 * 1024**3
#: ``PROMPTLIT_COMPILATION_CACHE=0`` (or off / false / no) turns the compilation cache off.
COMPILATION_CACHE_ENV = "PROMPTLIT_COMPILATION_CACHE"

#: Third-party loggers that chatter at INFO during start-up (backend probing, HTTP checks).
QUIET_LOGGERS = ("jax", "jax._src.xla_bridge", "httpx", "absl", "tensorflow")


def accelerator_present() -> bool:
    """Whether this machine has a GPU or TPU device node (Linux; elsewhere: assume it might)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(glob.glob(pattern) for pattern in ACCELERATOR_DEVICES)


def compilation_cache_dir(cache_dir: str | os.PathLike[str] | None = None,
                          environ: MutableMapping[str, str] | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache (before JAX is imported); returns its
    directory, or None when it stays off.

    The directory is ``jax/`` under ``cache_dir`` (``--cache-dir``) when given, else
    ``$XDG_CACHE_HOME/promptlit/jax`` (``~/.cache/promptlit/jax``). Every compile is kept (not
    only those over JAX's default 1 s), up to `COMPILATION_CACHE_MAX_BYTES`. It stays off when
    ``JAX_COMPILATION_CACHE_DIR`` is set already (JAX then uses that), when
    ``$PROMPTLIT_COMPILATION_CACHE`` is 0 / off, or when the directory cannot be written. JAX
    keys entries by the program, its compile options, the device and the jax / jaxlib versions,
    and treats a cache it cannot read as a miss.
    """
    env = os.environ if environ is None else environ
    if env.get(COMPILATION_CACHE_ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return None
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    if cache_dir:
        path = os.path.join(os.path.expanduser(os.fspath(cache_dir)), "jax")
    else:
        root = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(root, "promptlit", "jax")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return None
    env["JAX_COMPILATION_CACHE_DIR"] = path
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    env.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILATION_CACHE_MAX_BYTES))
    return path


def configure(*, verbose: bool = False, cache_dir: str | os.PathLike[str] | None = None,
              compilation_cache: bool = False,
              environ: MutableMapping[str, str] | None = None) -> None:
    """Sets up a quiet start; call before JAX, Keras or TensorFlow are imported.

    * ``JAX_PLATFORMS=cpu`` when it is not set and no accelerator device exists (JAX would probe
      CUDA, ROCm and TPU backends and log each failure); set it yourself to choose.
    * ``TF_CPP_MIN_LOG_LEVEL=1`` when not set: TensorFlow's C++ INFO lines off, its warnings
      and errors on.
    * Logging: promptlit's messages at INFO (DEBUG with ``verbose``), other libraries' at
      WARNING (DEBUG with ``verbose``).
    * `HARMLESS_WARNINGS` are ignored.
    * With ``compilation_cache``: JAX's persistent compilation cache, in
      `compilation_cache_dir` (``cache_dir``: the ``--cache-dir`` of the command).
    """
    env = os.environ if environ is None else environ
    env.setdefault("KERAS_BACKEND", "jax")
    if "JAX_PLATFORMS" not in env and not accelerator_present():
        env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("promptlit").setLevel(level)
    if not verbose:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    for message, category in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if compilation_cache:
        compilation_cache_dir(cache_dir, env)


def phase(text: str) -> None:
    """Prints one start-up phase line to stderr: ``promptlit: <text>…``."""
    print(f"{PREFIX}{text}…", file=sys.stderr, flush=True)


def harmless(line: str, patterns: Sequence[re.Pattern[str]] | None = None) -> bool:
    """Whether ``line`` (without its line end) is known start-up noise."""
    if patterns is None:
        patterns = HARMLESS_LINES + (() if accelerator_present() else HARMLESS_WITHOUT_ACCELERATOR)
    return any(p.search(line) for p in patterns)


def _pump(read_fd: int, write_fd: int, patterns: Sequence[re.Pattern[str]]) -> None:
    """Copies lines from ``read_fd`` to ``write_fd`` until EOF, dropping `harmless` ones.

    A partial line is held until its end, except text up to a carriage return (progress bars),
    which passes at once.
    """
    pending = b""
    try:
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            pending += chunk
            out = []
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                if not harmless(raw.decode("utf-8", "replace").rstrip("\r"), patterns):
                    out.append(raw + b"\n")
            cut = pending.rfind(b"\r")
            if cut >= 0:
                out.append(pending[:cut + 1])
                pending = pending[cut + 1:]
            if out:
                os.write(write_fd, b"".join(out))
        if pending and not harmless(pending.decode("utf-8", "replace"), patterns):
            os.write(write_fd, pending)
    except OSError:
        pass
    finally:
        os.close(read_fd)
        os.close(write_fd)


@contextlib.contextmanager
def filtered_stderr(patterns: Sequence[re.Pattern[str]] | None = None) -> Iterator[None]:
    """Within the block, drops known-harmless lines written to file descriptor 2.

    Native libraries (TensorFlow, absl, sentencepiece) write to the descriptor directly, so the
    filter sits there: fd 2 becomes a pipe read by a thread that forwards every other line to
    the real stderr as it arrives (Python's own ``sys.stderr`` output too). When fd 2 cannot be
    redirected (no such descriptor), the block runs unfiltered.

    Args:
      patterns: what to drop (default: `HARMLESS_LINES`, plus `HARMLESS_WITHOUT_ACCELERATOR`
        on a machine without an accelerator device).
    """
    if patterns is None:
        patterns = HARMLESS_LINES + (() if accelerator_present() else HARMLESS_WITHOUT_ACCELERATOR)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        read_fd, write_fd = os.pipe()
        forward_fd = os.dup(saved)
        os.dup2(write_fd, 2)
        os.close(write_fd)
    except OSError:
        os.close(saved)
        yield
        return
    pump = threading.Thread(target=_pump, args=(read_fd, forward_fd, tuple(patterns)),
                            name="promptlit-stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closes: the thread sees EOF
        os.close(saved)
        # A child process started in the block may hold the pipe open: do not wait for it.
        pump.join(timeout=5)


def import_backends(*, ui: bool = True) -> None:
    """Imports Keras (JAX), keras-hub (and with it TensorFlow) and, with ``ui``, Gradio and the
    page's modules: the slow imports of a start, done in one announced phase."""
    import keras  # noqa: F401
    import keras_hub  # noqa: F401

    if ui:
        import gradio  # noqa: F401

        import promptlit.ui.app  # noqa: F401
