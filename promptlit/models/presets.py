"""Model handles: what a `--models name:HANDLE` string points at, and loading it without hanging.

A handle is one of:

* a keras-hub preset name, e.g. ``"gemma2_instruct_2b_en"`` (downloaded from Kaggle by kagglehub;
  Gemma presets need Kaggle credentials and the accepted model licence);
* ``"kaggle://owner/model/keras/variant[/version]"``, a Kaggle Models handle;
* ``"hf://org/name"``, a Hugging Face Hub repository (keras-hub converts Transformers checkpoints
  of the architectures it knows: Gemma, Llama, Mistral, Qwen, GPT-2, ...);
* a local directory: a keras-hub preset (``config.json`` with ``registered_name``, as written by
  ``save_to_preset``) or a Hugging Face checkpoint (``config.json`` with ``model_type`` +
  ``*.safetensors`` + tokenizer files), which keras-hub converts on load (needs ``safetensors``);
  or a promptlit classifier / regressor preset (a ``promptlit_model.json`` marker, see
  `promptlit.models.local_presets`), which `load_model` loads with its own class.
  Relative paths are tried against the current directory, then the repository root, so the
  default ``presets/tiny_lm`` works from anywhere.

Loading never hangs offline: before keras-hub touches the network, the host is probed with a short
timeout (`timeout_s`, DNS included) and models already in the kagglehub / Hugging Face caches are
loaded from there. Every failure is a `ModelLoadError` naming the handle, the cause and the fixes.

Example:
    >>> resolve_handle("kaggle://keras/gemma2/keras/gemma2_2b_en/1").kind
    'kaggle'
    >>> resolve_handle("hf://google/gemma-2-2b").source
    'hf://google/gemma-2-2b'
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from promptlit.models.keras_lm import KerasCausalLM

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_PRESET = str(REPO_ROOT / "presets" / "tiny_lm")
"""The small Gemma-architecture preset the project ships (works offline)."""

HandleKind = Literal["preset", "kaggle", "hf", "local_keras", "local_hf", "local_promptlit",
                     "local_unknown", "missing", "unknown"]

KAGGLE_FIXES = (
    "To fix: (1) set the KAGGLE_USERNAME and KAGGLE_KEY environment variables (from "
    "https://www.kaggle.com/settings, 'Create New Token') or run `kagglehub.login()`; "
    "(2) accept the model's licence on its Kaggle page (Gemma models are gated); "
    "(3) or download the preset once where there is network and pass a local path "
    "(`name:/path/to/preset`, e.g. `--models tiny:presets/tiny_lm`)."
)
HF_FIXES = (
    "To fix: (1) set the HF_TOKEN environment variable or run `huggingface-cli login` (also "
    "`hf auth login`); (2) accept the model's licence on its huggingface.co page (gated models); "
    "(3) or download the checkpoint once where there is network and pass a local path "
    "(`name:/path/to/checkpoint_dir`, a directory with config.json and *.safetensors)."
)


class ModelLoadError(RuntimeError):
    """A model handle could not be loaded; the message names the handle, the cause and the fix."""

    def __init__(self, handle: str, cause: str, fixes: str = "") -> None:
        self.handle = handle
        self.cause = cause
        self.fixes = fixes
        super().__init__(f"Could not load model {handle!r}: {cause}" + (f"\n{fixes}" if fixes else ""))


@dataclasses.dataclass(frozen=True)
class ResolvedHandle:
    """Where a handle's weights come from.

    Attributes:
        handle: the handle as given.
        kind: "preset" (a keras-hub preset name), "kaggle", "hf", "local_keras" (a keras-hub
            preset directory), "local_hf" (a Hugging Face checkpoint directory),
            "local_promptlit" (a promptlit_model.json preset), "local_unknown"
            (a directory without a recognisable config.json), "missing" (a path that does not
            exist) or "unknown" (a name that is neither a path nor a known preset).
        source: what `keras_hub.models.CausalLM.from_preset` receives: a ``kaggle://`` or
            ``hf://`` URI or an absolute directory path (for "missing": the path tried).
        host: the network host a download talks to (None for local handles).
        path: the local directory (local kinds and "missing").
        version: the Kaggle version when the handle pins one.
        suggestions: close preset names for an "unknown" handle.
        config_problem: for "local_unknown", what is wrong with the directory's config.json
            (unreadable, not valid JSON with its line and column, or no recognisable keys);
            None when there is no config.json.
    """

    handle: str
    kind: HandleKind
    source: str
    host: str | None = None
    path: Path | None = None
    version: int | None = None
    suggestions: tuple[str, ...] = ()
    config_problem: str | None = None

    @property
    def is_remote(self) -> bool:
        """Whether loading may need the network."""
        return self.kind in ("preset", "kaggle", "hf")


def _kaggle_host() -> str:
    endpoint = os.environ.get("KAGGLE_API_ENDPOINT")
    return (urlparse(endpoint).hostname or "api.kaggle.com") if endpoint else "api.kaggle.com"


def _hf_host() -> str:
    endpoint = os.environ.get("HF_ENDPOINT")
    return (urlparse(endpoint).hostname or "huggingface.co") if endpoint else "huggingface.co"


def _builtin_presets() -> dict[str, Any]:
    """keras-hub's registry of preset names (name -> metadata with "kaggle_handle")."""
    import keras_hub  # noqa: F401  (importing registers every model's presets)
    from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS

    return dict(BUILTIN_PRESETS)


def _kaggle_handle(handle: str, uri: str) -> ResolvedHandle:
    rest = uri.removeprefix("kaggle://").strip("/")
    parts = rest.split("/")
    if len(parts) not in (4, 5) or not all(parts):
        raise ModelLoadError(
            handle,
            f"{uri!r} is not a Kaggle Models handle: expected "
            "kaggle://OWNER/MODEL/keras/VARIANT[/VERSION], e.g. "
            "kaggle://keras/gemma2/keras/gemma2_instruct_2b_en/1.",
        )
    version = None
    if len(parts) == 5:
        if not parts[4].isdigit():
            raise ModelLoadError(handle, f"the Kaggle version in {uri!r} must be an integer, "
                                         f"got {parts[4]!r}.")
        version = int(parts[4])
    return ResolvedHandle(handle, "kaggle" if handle.startswith("kaggle://") else "preset",
                          "kaggle://" + "/".join(parts), host=_kaggle_host(), version=version)


def _classify_dir(handle: str, path: Path) -> ResolvedHandle:
    from promptlit.models.local_presets import is_promptlit_preset

    if is_promptlit_preset(path):
        return ResolvedHandle(handle, "local_promptlit", str(path), path=path)
    config = path / "config.json"
    if not config.is_file():
        return ResolvedHandle(handle, "local_unknown", str(path), path=path)
    problem = None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        problem = f"{config}: not valid UTF-8 (byte {e.start + 1})"
    except json.JSONDecodeError as e:
        problem = f"{config}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
    except RecursionError:
        problem = f"{config}: not valid JSON: nested too deeply"
    except OSError as e:
        problem = f"{config}: cannot be read: {e.strerror or e}"
    if problem is None:
        if isinstance(data, dict) and "registered_name" in data:
            return ResolvedHandle(handle, "local_keras", str(path), path=path)
        if isinstance(data, dict) and "model_type" in data:
            return ResolvedHandle(handle, "local_hf", str(path), path=path)
        problem = (f"{config} has neither 'registered_name' (a keras-hub preset) nor "
                   "'model_type' (a Hugging Face checkpoint)")
    return ResolvedHandle(handle, "local_unknown", str(path), path=path, config_problem=problem)


def resolve_handle(handle: str) -> ResolvedHandle:
    """Classifies a model handle (no network; imports keras-hub only for bare preset names).

    Args:
        handle: a preset name, ``kaggle://...``, ``hf://...`` or a local directory.

    Returns:
        A `ResolvedHandle`. Paths that do not exist resolve to kind "missing", names that are
        neither paths nor keras-hub presets to "unknown"; `load_causal_lm` reports both.

    Raises:
        ModelLoadError: a malformed ``kaggle://`` / ``hf://`` handle or an unsupported scheme.
    """
    if not isinstance(handle, str) or not handle.strip():
        raise ModelLoadError(str(handle), "the model handle is empty.",
                             f"Pass a preset name, kaggle://..., hf://... or a directory such "
                             f"as {DEFAULT_PRESET}.")
    h = handle.strip()
    scheme, sep, rest = h.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme == "kaggle":
            return _kaggle_handle(handle, h)
        if scheme == "hf":
            parts = rest.strip("/").split("/")
            if not 1 <= len(parts) <= 2 or not all(parts):
                raise ModelLoadError(handle, f"{h!r} is not a Hugging Face handle: expected "
                                             "hf://ORG/NAME, e.g. hf://google/gemma-2-2b-it.")
            return ResolvedHandle(handle, "hf", "hf://" + "/".join(parts), host=_hf_host())
        if scheme == "file":
            h = rest
        else:
            raise ModelLoadError(handle, f"unsupported scheme {scheme + '://'!r}.",
                                 "Use a keras-hub preset name, kaggle://..., hf://... or a local "
                                 "directory.")
    path = Path(h).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
    for cand in candidates:
        if cand.exists():
            cand = cand.resolve()
            if not cand.is_dir():
                return ResolvedHandle(handle, "local_unknown", str(cand), path=cand)
            return _classify_dir(handle, cand)
    looks_like_path = (os.sep in h or "/" in h or h.startswith((".", "~"))
                       or path.suffix in (".json", ".h5", ".keras"))
    if looks_like_path:
        return ResolvedHandle(handle, "missing", str(candidates[0].absolute()),
                              path=candidates[0].absolute())
    presets = _builtin_presets()
    if h in presets:
        return _kaggle_handle(handle, presets[h]["kaggle_handle"])
    close = tuple(difflib.get_close_matches(h, list(presets), n=3, cutoff=0.6))
    return ResolvedHandle(handle, "unknown", h, suggestions=close)


# ----------------------------------------------------------------------------- network guards


def _run_with_timeout[T](
    fn: Callable[[], T], timeout_s: float
) -> tuple[bool, T | None, Exception | None]:
    """Runs `fn` in a daemon thread: (finished, result, error). A hung call is abandoned."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except Exception as e:  # noqa: BLE001 - reported to the caller
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True, name="promptlit-model-load")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return False, None, None
    return True, box.get("result"), box.get("error")


def check_reachable(host: str, *, port: int = 443, timeout_s: float = 5.0) -> str | None:
    """None when a TCP connection to `host:port` opens within `timeout_s` (DNS included), else why."""

    def connect() -> None:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass

    done, _, error = _run_with_timeout(connect, timeout_s)
    if not done:
        return f"no answer from {host}:{port} within {timeout_s:g} s"
    if error is not None:
        return f"cannot reach {host}:{port} ({type(error).__name__}: {error})"
    return None


def _kaggle_cached_dir(resolved: ResolvedHandle) -> Path | None:
    """The kagglehub cache directory of a Kaggle handle, when a loadable copy is there."""
    try:
        from kagglehub.config import get_cache_folder
    except ImportError:
        return None
    owner, model, framework, variation = resolved.source.removeprefix("kaggle://").split("/")[:4]
    base = Path(get_cache_folder()) / "models" / owner / model / framework / variation
    if resolved.version is not None:
        versions = [base / str(resolved.version)]
    else:
        versions = sorted((p for p in base.glob("*") if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
    for d in versions:
        if (d / "config.json").is_file() and any(d.glob("*.weights.h5")) and (
                d / "task.json").is_file():
            return d
    return None


def _hf_cached_dir(resolved: ResolvedHandle) -> Path | None:
    """The Hugging Face cache snapshot of an ``hf://`` handle, if fully downloaded before."""
    try:
        import huggingface_hub
    except ImportError:
        return None
    repo_id = resolved.source.removeprefix("hf://")
    try:
        path = Path(huggingface_hub.snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or cache unusable): go online
        return None
    return path if (path / "config.json").is_file() else None


def _remote_fixes(resolved: ResolvedHandle) -> str:
    return HF_FIXES if resolved.kind == "hf" else KAGGLE_FIXES


def _describe_remote(resolved: ResolvedHandle) -> str:
    if resolved.kind == "preset":
        return f"keras-hub preset {resolved.handle!r} (Kaggle handle {resolved.source})"
    return resolved.source


def _load_keras_preset_weights_once(source: str, dtype: str | None) -> Any | None:
    """A local single-file keras-hub preset's CausalLM, its weights written once; None if `source`
    is not one (a Hugging Face checkpoint, sharded weights, task weights: use `from_preset`).

    keras-hub's `from_preset` first fills every weight with random numbers (Keras initialises
    variables on creation), then overwrites them with the file's: for Gemma 2 2B on a 2-core CPU
    that is minutes of random numbers and a peak of ~2.5x the weights (bfloat16: 288 s and
    12.1 GB for 4.9 GB of weights; `benchmarks/gemma2_2b.py --load-dir`). Here the backbone is
    built inside `keras.StatelessScope(initialize_variables=False)` (shapes, no values), then
    `load_weights` assigns each variable from the file: the same weights, one copy, plus one
    variable in flight.
    """
    path = Path(source)
    if not ((path / "config.json").is_file() and (path / "model.weights.h5").is_file()) or (
            path / "task.weights.h5").exists():
        return None
    import keras
    import keras_hub
    from keras.src.backend.common import global_state

    kwargs = {"dtype": dtype} if dtype is not None else {}
    with keras.StatelessScope(initialize_variables=False):
        backbone = keras_hub.models.Backbone.from_preset(source, load_weights=False, **kwargs)
    variables = list(backbone.weights)
    distribution = keras.distribution.distribution()
    if distribution is not None:  # e.g. promptlit.distributed.loading_scope: every weight is
        for v in variables:       # written straight into its shards, never whole on one device
            v._layout = distribution.get_variable_layout(v)
    ids = {id(v) for v in variables}
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    global_state.set_global_attribute("uninitialized_variables",
                                      [v for v in pending if id(v) not in ids])
    causal_lm = keras_hub.models.CausalLM.from_preset(source, backbone=backbone,
                                                      load_weights=False)
    backbone.load_weights(str(path / "model.weights.h5"))
    for v in variables:
        if v._value is None:  # not in the file (e.g. a seed state): Keras' own initial value
            v._deferred_initialize()
        v._initializer = None
    return causal_lm


def _from_preset(source: str, dtype: str | None) -> Any:
    import keras_hub

    from promptlit.models.gemma_attention import correct_query_scaling

    kwargs = {"dtype": dtype} if dtype is not None else {}
    causal_lm = _load_keras_preset_weights_once(source, dtype)
    if causal_lm is None:
        causal_lm = keras_hub.models.CausalLM.from_preset(source, **kwargs)
    # Gemma 2 / 3 27B layouts: keras-hub scales queries by 1/sqrt(head_dim), not the checkpoint's
    # 1/sqrt(query_pre_attn_scalar) (docs/upstream/keras-hub-gemma-query-scaling.md).
    correct_query_scaling(causal_lm, source=source)
    return causal_lm


def _local_failure(resolved: ResolvedHandle, error: Exception) -> ModelLoadError:
    what = "keras-hub preset" if resolved.kind == "local_keras" else "Hugging Face checkpoint"
    fix = ""
    if isinstance(error, ImportError) and "safetensors" in str(error):
        fix = "Install safetensors (`pip install safetensors`) to convert Hugging Face checkpoints."
    elif resolved.kind == "local_hf":
        fix = ("keras-hub converts Hugging Face checkpoints of the architectures it knows (Gemma, "
               "Gemma 2/3, Llama, Mistral, Qwen, GPT-2, ...); the directory needs config.json, "
               "*.safetensors and the tokenizer files (tokenizer.model or vocab.json + merges.txt "
               "or tokenizer.json).")
    return ModelLoadError(resolved.handle,
                          f"loading the {what} at {resolved.path} failed: "
                          f"{type(error).__name__}: {error}", fix)


def load_causal_lm(handle: str, *, dtype: str | None = None, timeout_s: float = 20.0) -> Any:
    """Loads a `keras_hub.models.CausalLM` from any handle form, failing fast when offline.

    Args:
        handle: a preset name, ``kaggle://...``, ``hf://...`` or a local directory (see module).
        dtype: weights / compute dtype passed to keras-hub ("float32", "bfloat16"; None: the
            preset's own).
        timeout_s: bound on the network probe and on fetching the preset's config.json (the
            weights download afterwards is not bounded: large models take minutes).

    Returns:
        The `keras_hub.models.CausalLM` (with its preprocessor attached).

    Raises:
        ModelLoadError: with the handle, the cause and how to fix it (credentials, licence,
            local path, missing directory, unknown preset name).
    """
    resolved = resolve_handle(handle)
    if resolved.kind == "missing":
        raise ModelLoadError(handle, f"the local directory {resolved.path} does not exist.",
                             "Check the path (relative paths are tried against the current "
                             f"directory and {REPO_ROOT}), or use a preset name, kaggle://... or "
                             "hf://....")
    if resolved.kind == "unknown":
        hint = (f" Did you mean {', '.join(map(repr, resolved.suggestions))}?"
                if resolved.suggestions else "")
        raise ModelLoadError(handle, f"{handle!r} is not a local directory nor a keras-hub preset "
                                     f"name.{hint}",
                             "Pass a preset name (keras_hub.models.CausalLM.presets lists them), "
                             "kaggle://OWNER/MODEL/keras/VARIANT[/VERSION], hf://ORG/NAME, or a "
                             "local directory (`name:/path/to/preset`).")
    if resolved.kind == "local_promptlit":
        raise ModelLoadError(handle, f"{resolved.path} is a promptlit classifier/regressor "
                                     "preset, not a causal LM.",
                             "Load it with promptlit.models.load_model (or --models NAME:PATH).")
    if resolved.kind == "local_unknown" and resolved.config_problem:
        raise ModelLoadError(handle, f"{resolved.config_problem}.",
                             "Fix: repair config.json (a keras-hub preset's is written by "
                             "save_to_preset and has 'registered_name'; a Hugging Face "
                             "checkpoint's has 'model_type'), or re-save / re-download the "
                             "model.")
    if resolved.kind == "local_unknown":
        raise ModelLoadError(handle, f"{resolved.path} is not a model directory: it needs a "
                                     "config.json (a keras-hub preset saved with save_to_preset, "
                                     "or a Hugging Face checkpoint with model_type).")
    if not resolved.is_remote:
        try:
            return _from_preset(str(resolved.path), dtype)
        except Exception as e:  # noqa: BLE001 - rewrapped with the path and a fix
            raise _local_failure(resolved, e) from e

    cached = _kaggle_cached_dir(resolved) if resolved.kind != "hf" else _hf_cached_dir(resolved)
    if cached is not None:
        try:
            return _from_preset(str(cached), dtype)
        except Exception:  # noqa: BLE001 - incomplete cache: fall back to the network
            pass
    what = _describe_remote(resolved)
    assert resolved.host is not None
    problem = check_reachable(resolved.host, timeout_s=min(timeout_s, 10.0))
    if problem is not None:
        raise ModelLoadError(handle, f"downloading {what} needs the network, but {problem}; "
                                     "it is not in the local cache either.",
                             _remote_fixes(resolved))

    def fetch_config() -> Any:
        from keras_hub.src.utils.preset_utils import get_file

        return get_file(resolved.source, "config.json")

    done, _, error = _run_with_timeout(fetch_config, timeout_s)
    if not done:
        raise ModelLoadError(handle, f"fetching the config of {what} took longer than "
                                     f"{timeout_s:g} s.", _remote_fixes(resolved))
    if error is not None:
        text = str(error)
        cause = f"fetching {what} failed: {type(error).__name__}: {text}"
        if any(s in text for s in ("401", "403", "gated", "Unauthorized", "not accessible")):
            cause += " (access denied: missing credentials or licence not accepted)"
        raise ModelLoadError(handle, cause, _remote_fixes(resolved)) from error
    try:
        return _from_preset(resolved.source, dtype)
    except Exception as e:  # noqa: BLE001 - rewrapped with the fixes
        raise ModelLoadError(handle, f"loading {what} failed: {type(e).__name__}: {e}",
                             _remote_fixes(resolved)) from e


def load_model(handle: str, name: str | None = None, **kwargs: Any) -> KerasCausalLM | Any:
    """The model behind `handle` (what `Workbench.load_model` and the CLI call).

    A promptlit preset directory (``promptlit_model.json``) loads as the class its marker names
    (`SklearnClassifier`, `SklearnRegressor`, `KerasTextClassifier`); every other handle is a
    `KerasCausalLM`.

    Args:
        handle: see `load_causal_lm`.
        name: display name (defaults to the handle's last path component).
        **kwargs: passed to `KerasCausalLM.from_preset` (max_length, sampler, dtype,
            stop_sequences, ...) or to the promptlit preset class's `from_preset` (which gets no
            generation settings).
    """
    from promptlit.models.keras_lm import GENERATION_OPTIONS, KerasCausalLM

    resolved = resolve_handle(handle) if "://" not in handle else None
    if resolved is not None and resolved.kind == "local_promptlit":
        from promptlit.models.local_presets import load_preset

        assert resolved.path is not None  # set for every local kind

        # generation settings (e.g. the CLI's --max-new-tokens) concern causal LMs only
        kwargs = {k: v for k, v in kwargs.items()
                  if k not in (*GENERATION_OPTIONS, "dtype", "mesh")}

        try:
            return load_preset(resolved.path, **({"name": name} if name else {}), **kwargs)
        except Exception as e:  # noqa: BLE001 - rewrapped with the path
            raise ModelLoadError(handle, f"loading the promptlit preset at {resolved.path} "
                                         f"failed: {type(e).__name__}: {e}",
                                 "Rebuild it (e.g. `python presets/build_demo_models.py`).") from e

    return KerasCausalLM.from_preset(handle, name=name, **kwargs)
