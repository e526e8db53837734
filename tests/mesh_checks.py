"""Mesh checks on 8 simulated CPU devices, run by `tests/test_distributed.py` in a subprocess.

XLA_FLAGS must give the host platform 8 devices before jax is imported, so this runs as its own
process: ``XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/mesh_checks.py``.
It builds a tiny random Gemma (4 query / 4 key-value heads, hidden 24, a SentencePiece trained
here), computes span salience (Grad L2, Grad.Input, IG), the salience matrix (the same three),
the batched matrix of two examples (`salience_matrix_batch`) and greedy
generation on one device, then on a 2x4 mesh (loaded with `from_preset(..., mesh=...)`) and an
8x1 mesh (an in-memory model sharded in place), and prints one line ``RESULT {json}``: the
relative errors, generations, every weight's sharding and shard shapes, the compiled kernels'
all-gathers, and the error messages of bad meshes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "models")]

import numpy as np  # noqa: E402

PROMPTS = ["The cat sat on the mat.", "Q: What is 2 + 3?\nA:", "Repeat the list.\nList: apple"]
METHODS = ("grad_l2", "grad_dot_input", "integrated_gradients")


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the error relative to the array's scale."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-30))


def build() -> object:
    import keras
    import keras_hub
    from test_keras_lm import _train_spm

    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.GemmaTokenizer(proto=_train_spm())
    vocab = -(-tokenizer.vocabulary_size() // 8) * 8  # the model axis splits the vocabulary
    pre = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer, sequence_length=64)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=vocab, num_layers=2, num_query_heads=4, num_key_value_heads=4,
        hidden_dim=24, intermediate_dim=48, head_dim=8, dtype="float32")
    return keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=pre)


def compute(lm: object) -> dict[str, object]:
    from promptlit.salience import kernels

    fwd = lm.forward  # type: ignore[attr-defined]
    ids, _, _, p = lm.encode_pair(PROMPTS[2], " apple river stone cloud")  # type: ignore[attr-defined]
    mask = np.zeros(ids.shape, bool)
    mask[p:] = True
    span = kernels.span_salience(fwd, ids, mask, methods=METHODS, ig_steps=8)
    matrix = kernels.salience_matrix(fwd, ids, np.arange(p, ids.shape[0]), methods=METHODS,
                                     ig_steps=4)
    ids2, _, _, p2 = lm.encode_pair(PROMPTS[0], " The cat sat.")  # type: ignore[attr-defined]
    batch = kernels.salience_matrix_batch(  # two examples, split over the data axis
        fwd, [ids, ids2], [np.arange(p, ids.shape[0]), np.arange(p2, ids2.shape[0])])
    _log("salience")
    gen = [r.tolist() for _, r in lm.generate_ids(PROMPTS)]  # type: ignore[attr-defined]
    _log("generate")
    return {"span": span, "matrix": matrix, "batch": batch, "generate": gen}


T0 = time.perf_counter()


def _log(what: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {what}", file=sys.stderr, flush=True)


def errors(ref: dict, got: dict) -> dict[str, float]:
    out = {f"span/{m}": rel(got["span"][m], ref["span"][m]) for m in (*METHODS, "log_prob")}
    out.update({f"matrix/{m}": rel(got["matrix"][m], ref["matrix"][m]) for m in METHODS})
    out.update({f"batch/{i}/{m}": rel(g[m], r[m]) for i, (g, r) in
                enumerate(zip(got["batch"], ref["batch"], strict=True)) for m in r})
    return out


def shardings(lm: object) -> dict[str, object]:
    """Every weight: its spec, full shape, and the distinct per-device shard shapes."""
    from jax.sharding import NamedSharding

    fwd = lm.forward  # type: ignore[attr-defined]
    out = {}
    for path, x in fwd.params.items():
        out[path] = {
            "named": isinstance(x.sharding, NamedSharding) and x.sharding.mesh == lm.mesh,  # type: ignore[attr-defined]
            "spec": [a if a is None or isinstance(a, str) else list(a) for a in x.sharding.spec]
            if isinstance(x.sharding, NamedSharding) else None,
            "shape": list(x.shape),
            "devices": len(x.sharding.device_set),
            "shard_shapes": sorted({tuple(s.data.shape) for s in x.addressable_shards}),
        }
    return out


def all_gathers(lm: object) -> list[list[int]]:
    """Result shapes of every all-gather in the compiled salience kernels."""
    shapes = []
    for key, exe in lm.forward.cache.items():  # type: ignore[attr-defined]
        if isinstance(key, tuple) and key and key[0] == "exe":
            for m in re.finditer(r"= \w+\[([\d,]*)\]\{[^}]*\} all-gather(?:-start)?\(",
                                 exe.as_text()):
                shapes.append([int(d) for d in m.group(1).split(",") if d])
    return shapes


def batch_input_spec(lm: object) -> list[object]:
    """The compiled batched matrix kernel's sharding of its token ids `<int>[B, N]`."""
    for key, exe in lm.forward.cache.items():  # type: ignore[attr-defined]
        if isinstance(key, tuple) and key[:2] == ("exe", "matrix_batch"):
            spec = exe.input_shardings[0][1].spec
            return [a if a is None or isinstance(a, str) else list(a) for a in spec]
    return []


def loaded_specs(preset: str, mesh: object) -> dict[str, object]:
    """Each weight's placement right after loading under `loading_scope` (before
    `KerasCausalLM` could reshard it): a spec, or "single device" for a whole copy."""
    from jax.sharding import NamedSharding

    from promptlit import distributed
    from promptlit.models.presets import load_causal_lm

    with distributed.loading_scope(distributed.preset_backbone_class(preset), mesh):
        raw = load_causal_lm(preset, dtype="float32")
    return {v.path: [a for a in v.value.sharding.spec]
            if isinstance(v.value.sharding, NamedSharding) else "single device"
            for v in raw.backbone.weights}


def bad_meshes(causal_lm: object) -> dict[str, str]:
    from promptlit import distributed

    out = {}
    for text in ("data=3,model=4", "model=3", "pipe=2", "data=2,model=x", "data=1,model=8"):
        try:
            mesh = distributed.make_mesh(text)
            distributed.check_model_axis(causal_lm.backbone, mesh)  # type: ignore[attr-defined]
            out[text] = "no error"
        except ValueError as e:
            out[text] = f"{type(e).__name__}: {e}"
    return out


def main() -> None:
    import jax

    from promptlit import distributed
    from promptlit.models.keras_lm import KerasCausalLM

    t0 = time.perf_counter()
    assert jax.device_count() == 8, jax.devices()
    causal_lm = build()
    _log("built")
    opts = dict(max_length=64, max_new_tokens=6, batch_size=4)
    single = KerasCausalLM(causal_lm, handle="test://mesh-gemma", **opts)
    ref = compute(single)
    result: dict[str, object] = {"devices": jax.device_count(),
                                 "single": {"generate": ref["generate"]}}
    with tempfile.TemporaryDirectory() as tmp:
        causal_lm.save_to_preset(tmp)
        lm24 = KerasCausalLM.from_preset(tmp, mesh="data=2,model=4", **opts)
        result["loaded"] = loaded_specs(tmp, lm24.mesh)
    lm81 = KerasCausalLM(causal_lm, handle="test://mesh-gemma", mesh="data=8,model=1", **opts)
    for name, lm in (("2x4", lm24), ("8x1", lm81)):
        got = compute(lm)
        result[name] = {"mesh": distributed.describe(lm.mesh), "errors": errors(ref, got),
                        "generate": got["generate"], "sharding": shardings(lm),
                        "expected_specs": {k: [a for a in v] for k, v in
                                           distributed.weight_specs(lm.causal_lm,
                                                                    lm.mesh).items()},
                        "all_gathers": all_gathers(lm), "batch_spec": batch_input_spec(lm)}
    result["bad_meshes"] = bad_meshes(causal_lm)
    result["subset"] = distributed.describe(distributed.make_mesh("data=1,model=4"))
    result["seconds"] = time.perf_counter() - t0
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
