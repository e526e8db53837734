"""Model handle resolution and loading: every handle form, offline failures that never hang."""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from promptlit.models import presets
from promptlit.models.presets import (
    DEFAULT_PRESET,
    REPO_ROOT,
    ModelLoadError,
    check_reachable,
    load_causal_lm,
    resolve_handle,
)

# A no-hang bound, not a performance check: without the guards an offline hf:// load retries
# for ~25 s and a Kaggle one can wait on DNS.
NO_HANG_S = 30.0


def _online(host: str) -> bool:
    return check_reachable(host, timeout_s=3.0) is None


# ----------------------------------------------------------------------------- resolve_handle


def test_resolve_preset_name_to_its_kaggle_handle():
    r = resolve_handle("gemma2_instruct_2b_en")
    assert r.kind == "preset" and r.is_remote
    assert r.source.startswith("kaggle://keras/gemma2/keras/gemma2_instruct_2b_en/")
    assert r.version is not None and r.host == "api.kaggle.com"


def test_resolve_kaggle_handles():
    r = resolve_handle("kaggle://keras/gemma2/keras/gemma2_2b_en/2")
    assert (r.kind, r.source, r.version) == ("kaggle", "kaggle://keras/gemma2/keras/gemma2_2b_en/2", 2)
    assert resolve_handle("kaggle://me/m/keras/v").version is None
    with pytest.raises(ModelLoadError, match="kaggle://OWNER/MODEL/keras/VARIANT"):
        resolve_handle("kaggle://me/m")
    with pytest.raises(ModelLoadError, match="must be an integer"):
        resolve_handle("kaggle://me/m/keras/v/latest")


def test_resolve_hf_handles_and_unknown_schemes():
    r = resolve_handle("hf://google/gemma-2-2b-it")
    assert (r.kind, r.source, r.host) == ("hf", "hf://google/gemma-2-2b-it", "huggingface.co")
    with pytest.raises(ModelLoadError, match="hf://ORG/NAME"):
        resolve_handle("hf://a/b/c")
    with pytest.raises(ModelLoadError, match="unsupported scheme 's3://'"):
        resolve_handle("s3://bucket/model")
    with pytest.raises(ModelLoadError, match="empty"):
        resolve_handle("  ")


def test_resolve_local_directories(tmp_path, monkeypatch):
    keras_dir = tmp_path / "kp"
    keras_dir.mkdir()
    (keras_dir / "config.json").write_text(json.dumps({"registered_name": "keras_hub>X"}))
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    assert resolve_handle(str(keras_dir)).kind == "local_keras"
    assert resolve_handle(str(hf_dir)).kind == "local_hf"
    assert resolve_handle(f"file://{hf_dir}").kind == "local_hf"
    assert resolve_handle(str(tmp_path)).kind == "local_unknown"
    monkeypatch.chdir(tmp_path)
    r = resolve_handle("kp")  # relative to the current directory
    assert r.kind == "local_keras" and r.path == keras_dir.resolve()
    # Relative to the repository root when not under the current directory.
    assert resolve_handle("presets").path == (REPO_ROOT / "presets").resolve()
    assert DEFAULT_PRESET == str(REPO_ROOT / "presets" / "tiny_lm")


def test_resolve_missing_and_unknown():
    r = resolve_handle("/no/such/preset_dir")
    assert r.kind == "missing" and str(r.path) == "/no/such/preset_dir"
    r = resolve_handle("gemma2_instruct_2b")
    assert r.kind == "unknown" and "gemma2_instruct_2b_en" in r.suggestions


# ----------------------------------------------------------------------------- loading failures


def test_missing_local_dir_names_the_path():
    with pytest.raises(ModelLoadError, match="/no/such/preset_dir does not exist"):
        load_causal_lm("/no/such/preset_dir")


def test_unknown_name_suggests_presets():
    with pytest.raises(ModelLoadError, match="Did you mean .*gemma2_instruct_2b_en"):
        load_causal_lm("gemma2_instruct_2b")


def test_directory_without_config_is_reported(tmp_path):
    with pytest.raises(ModelLoadError, match="needs a config.json"):
        load_causal_lm(str(tmp_path))


@pytest.mark.parametrize("handle", ["gemma2_instruct_2b_en",
                                    "kaggle://keras/gemma2/keras/gemma2_instruct_2b_en/2"])
def test_offline_kaggle_load_fails_fast_with_the_fixes(handle, tmp_path, monkeypatch):
    if _online("api.kaggle.com"):
        pytest.skip("Kaggle is reachable here; this checks the offline path")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))  # nothing cached
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm(handle, timeout_s=5)
    assert time.monotonic() - start < NO_HANG_S
    msg = str(info.value)
    assert handle in msg and "api.kaggle.com" in msg
    assert "KAGGLE_USERNAME" in msg and "kagglehub.login()" in msg
    assert "licence" in msg and "name:/path/to/preset" in msg


def test_offline_hf_load_fails_fast_with_the_fixes(monkeypatch, tmp_path):
    if _online("huggingface.co"):
        pytest.skip("huggingface.co is reachable here; this checks the offline path")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm("hf://promptlit-test/not-a-model", timeout_s=5)
    assert time.monotonic() - start < NO_HANG_S
    msg = str(info.value)
    assert "hf://promptlit-test/not-a-model" in msg and "HF_TOKEN" in msg
    assert "huggingface-cli login" in msg


def test_cached_kaggle_preset_loads_without_network(tmp_path, monkeypatch):
    """A preset already in the kagglehub cache is loaded from there, no network needed."""
    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip("presets/tiny_lm is not built")
    import shutil

    cache = tmp_path / "models" / "me" / "tiny" / "keras" / "tiny_lm" / "3"
    shutil.copytree(DEFAULT_PRESET, cache)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    monkeypatch.setattr(presets, "check_reachable", lambda *a, **k: pytest.fail("went online"))
    lm = load_causal_lm("kaggle://me/tiny/keras/tiny_lm", timeout_s=5)
    assert type(lm).__name__ == "GemmaCausalLM"


# ----------------------------------------------------------------------------- local loads


@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_local_keras_preset_weights_are_written_once(dtype, monkeypatch):
    """A local keras-hub preset loads with no random initialisation first (built abstractly, then
    `load_weights`), to exactly the weights and outputs of keras-hub's own `from_preset`."""
    if not os.path.isfile(os.path.join(DEFAULT_PRESET, "config.json")):
        pytest.skip("presets/tiny_lm is not built")
    import keras
    import keras_hub

    kwargs = {"dtype": dtype} if dtype else {}
    reference = keras_hub.models.CausalLM.from_preset(DEFAULT_PRESET, **kwargs)
    initialisers_called = []
    real = keras.initializers.VarianceScaling.__call__

    def spy(self, *args, **kw):
        initialisers_called.append(args)
        return real(self, *args, **kw)

    monkeypatch.setattr(keras.initializers.VarianceScaling, "__call__", spy)
    lm = presets._from_preset(DEFAULT_PRESET, dtype)
    assert initialisers_called == []  # no random weights were drawn
    assert lm.preprocessor is not None
    want = {v.path: np.asarray(v.value) for v in reference.weights}
    got = {v.path: np.asarray(v.value) for v in lm.weights}
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v), k
    assert lm.generate("The cat", max_length=12) == reference.generate("The cat", max_length=12)


def _write_hf_gpt2(path, vocab_size=300, n_embd=16, n_layer=1, n_positions=64):
    from safetensors.numpy import save_file

    from promptlit.models.keras_lm import _gpt2_byte_decoder

    rng = np.random.default_rng(0)
    chars = sorted(_gpt2_byte_decoder(), key=_gpt2_byte_decoder().get)
    merges = ["Ġ t", "h e", "Ġt he"]
    vocab = {c: i for i, c in enumerate(chars)}
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    assert len(vocab) <= vocab_size
    e = n_embd

    def w(*shape):
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)

    tensors = {"wte.weight": w(vocab_size, e), "wpe.weight": w(n_positions, e),
               "ln_f.weight": np.ones(e, np.float32), "ln_f.bias": np.zeros(e, np.float32)}
    for i in range(n_layer):
        tensors.update({
            f"h.{i}.ln_1.weight": np.ones(e, np.float32), f"h.{i}.ln_1.bias": w(e),
            f"h.{i}.ln_2.weight": np.ones(e, np.float32), f"h.{i}.ln_2.bias": w(e),
            f"h.{i}.attn.c_attn.weight": w(e, 3 * e), f"h.{i}.attn.c_attn.bias": w(3 * e),
            f"h.{i}.attn.c_proj.weight": w(e, e), f"h.{i}.attn.c_proj.bias": w(e),
            f"h.{i}.mlp.c_fc.weight": w(e, 4 * e), f"h.{i}.mlp.c_fc.bias": w(4 * e),
            f"h.{i}.mlp.c_proj.weight": w(4 * e, e), f"h.{i}.mlp.c_proj.bias": w(e),
        })
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab_size,
        "n_layer": n_layer, "n_head": 2, "n_embd": e, "n_positions": n_positions,
        "resid_pdrop": 0.0}))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return path


def test_local_hugging_face_checkpoint_is_converted(tmp_path):
    pytest.importorskip("safetensors")
    ckpt = _write_hf_gpt2(tmp_path / "gpt2_tiny")
    assert resolve_handle(str(ckpt)).kind == "local_hf"
    lm = presets.load_model(str(ckpt), name="gpt2-tiny", max_new_tokens=3)
    assert type(lm.causal_lm).__name__ == "GPT2CausalLM" and lm.name == "gpt2-tiny"
    ids, offsets, tokens = lm.tokenize_with_offsets("the then\nthe")
    assert [("the then\nthe")[s:e] for s, e in offsets.tolist()] == tokens
    (out,) = lm.generate(["the the"])
    assert isinstance(out, str)


def test_broken_local_hf_checkpoint_says_what_is_missing(tmp_path):
    ckpt = _write_hf_gpt2(tmp_path / "broken")
    (ckpt / "merges.txt").unlink()
    with pytest.raises(ModelLoadError, match=r"Hugging Face checkpoint at .*broken"):
        load_causal_lm(str(ckpt))


# ----------------------------------------------------------------------------- promptlit presets


def test_promptlit_preset_directories_resolve_and_load_by_marker(tmp_path, monkeypatch):
    from promptlit.models.sklearn_models import SklearnClassifier
    from promptlit.models.text_classifier import KerasTextClassifier

    monkeypatch.chdir(tmp_path)  # relative handles fall back to the repository root
    for handle, cls in [("presets/breast_cancer_clf", SklearnClassifier),
                        ("presets/sentiment_clf", KerasTextClassifier)]:
        r = resolve_handle(handle)
        assert (r.kind, r.is_remote, r.path) == ("local_promptlit", False,
                                                 (REPO_ROOT / handle).resolve())
        model = presets.load_model(handle, name="demo")
        assert isinstance(model, cls) and model.name == "demo"
    # keras-hub presets keep their kind and loader.
    assert resolve_handle(DEFAULT_PRESET).kind == "local_keras"
    with pytest.raises(ModelLoadError, match="promptlit classifier/regressor preset, not a causal"):
        load_causal_lm("presets/breast_cancer_clf")


def test_broken_promptlit_preset_is_a_model_load_error(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "promptlit_model.json").write_text('{"class": "Nope", "config": {}}')
    assert resolve_handle(str(tmp_path / "p")).kind == "local_promptlit"
    with pytest.raises(ModelLoadError, match=r"unknown model class 'Nope'.*\n.*build_demo_models"):
        presets.load_model(str(tmp_path / "p"))
    (tmp_path / "p" / "promptlit_model.json").write_text(
        '{"class": "SklearnClassifier", "config": {"feature_names": ["x"], "label_field": "y"}}')
    with pytest.raises(ModelLoadError, match=r"estimator.joblib is missing"):
        presets.load_model(str(tmp_path / "p"))


def test_garbage_config_json_reports_the_parse_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"registered_name": "x",\n  oops}', encoding="utf-8")
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm(str(tmp_path))
    text = str(info.value)
    assert (f"{config}: not valid JSON: Expecting property name enclosed in double quotes "
            "(line 2, column 3)") in text
    assert "needs a config.json" not in text and "Fix" in text
    config.write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config.json has neither 'registered_name'"):
        load_causal_lm(str(tmp_path))
    config.write_bytes(b'{"registered_name": "caf\xe9"}')
    with pytest.raises(ModelLoadError, match=r"config.json: not valid UTF-8"):
        load_causal_lm(str(tmp_path))
