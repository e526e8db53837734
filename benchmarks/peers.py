"""promptlit against what users would pick instead, on the same weights (issue 12, part 3).

Builds random-weight Hugging Face checkpoints (GPT-2, Gemma 2, Llama; small: a few M
parameters) with `transformers` (`save_pretrained`), loads each in both stacks (promptlit through
keras-hub's Hugging Face converter, `promptlit.models.presets.load_causal_lm`; transformers in
PyTorch), checks that the salience values agree, and prints time ratios:

* **promptlit**: `salience_matrix` (Grad L2 + Grad.Input of every response token, one compiled
  call) and the IG-16 matrix (`ig_steps=16`, Inseq's baseline token).
* **PyTorch loop**: the plain way, one forward + backward per target token (the prefix that
  predicts it, `logits_to_keep=1`, gradients for the input embeddings only, weights frozen),
  `torch.set_num_threads(2)`, `OMP_WAIT_POLICY=PASSIVE`.
* **Inseq** (`inseq.load_model(model, method)` + `attribute(prompt, prompt + response)`):
  `saliency`, `input_x_gradient`, `integrated_gradients` (16 steps, `riemann_middle`, the same
  midpoint rule as promptlit), each one method per call.

Agreement (checked on every cell that is timed, relative error = max |a - b| / max |b|, goal
<= 1e-4): promptlit's Grad L2 / Grad.Input matrices against the PyTorch loop's, and against
Inseq's `saliency` (L2 norm over the hidden dimension of its |gradient|) / `input_x_gradient`
(summed over the hidden dimension); promptlit's IG matrix against Inseq's `integrated_gradients`
(summed over the hidden dimension).

Ratios (above 1: promptlit is faster), wall time, median over `--repeats` warm calls:

* `loop/matrix`: the PyTorch loop (both methods from one gradient) over the promptlit matrix;
* `sal/matrix`, `ixg/matrix`: each Inseq method (one method per call) over the promptlit matrix
  (which yields both methods);
* `ig/IGmatrix`: Inseq's `integrated_gradients` over promptlit's IG-16 matrix;
* `cpu ...`: the same ratios of each stack's process CPU time (all threads), which moves far
  less than wall time when other jobs share the cores. The raw times of every stack are also
  written to `WORKDIR/<model>_<pid>_times.json`.

Each stack runs in its own subprocess (jax and torch never share a process or fight for threads),
one after the other, so the machine's load should be similar across a cell; the load average is
printed. Needs the `bench` extra, in a separate environment (never CI, never `tests/`):

    python3.12 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install -e '.[bench]'
    /work/venv-bench/bin/python benchmarks/peers.py --quick            # GPT-2, N=140, T=23
    /work/venv-bench/bin/python benchmarks/peers.py --models gpt2 --cells 100x7 140x23 300x64
    /work/venv-bench/bin/python benchmarks/peers.py                    # the full grid (hours)

`--cells` takes `NxT` pairs; the full grid is N in {100, 140, 300, 700, 1100} x T in {7, 23, 64};
`--ig-cells` limits where IG is timed (it costs ~16x the gradient matrix on every stack).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GRID_N = (100, 140, 300, 700, 1100)
GRID_T = (7, 23, 64)
QUICK_CELLS = ((140, 23),)
IG_STEPS = 16
TOLERANCE = 1e-4
VOCAB = 1024
WORDS = 160
SEED = 0

# Hugging Face configs (random weights). GPT-2: the 5.1M-parameter shape.
MODELS: dict[str, dict[str, Any]] = {
    "gpt2": {
        "model_type": "gpt2", "vocab_size": VOCAB, "n_positions": 1280, "n_embd": 256,
        "n_layer": 6, "n_head": 4, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "bos_token_id": VOCAB - 1, "eos_token_id": VOCAB - 1,
    },
    "gemma2": {
        "model_type": "gemma2", "vocab_size": VOCAB, "hidden_size": 256,
        "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "query_pre_attn_scalar": 64,
        "max_position_embeddings": 2048, "sliding_window": 4096, "pad_token_id": 0,
        "eos_token_id": 1, "bos_token_id": 2, "attn_implementation": "eager",
    },
    "llama": {
        "model_type": "llama", "vocab_size": VOCAB, "hidden_size": 256,
        "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 2048, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "bos_token_id": VOCAB - 2, "eos_token_id": VOCAB - 1,
    },
}


# ----------------------------------------------------------------------------- pure helpers


def pseudo_words(count: int = WORDS, seed: int = SEED) -> list[str]:
    """`count` distinct lower-case pseudo-words (3-5 letters), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        w = "".join(rng.choice(letters, size=int(rng.integers(3, 6))))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def word_text(n_words: int, seed: int, vocab: Sequence[str]) -> list[str]:
    """`n_words` words drawn from `vocab` (seeded): the text of one benchmark cell."""
    rng = np.random.default_rng(seed)
    return [vocab[int(i)] for i in rng.integers(0, len(vocab), size=n_words)]


def rel_error(a: Any, b: Any) -> float:
    """max |a - b| / max |b| (the reference's scale), over entries finite in both."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    scale = float(np.max(np.abs(b[ok]))) if ok.any() else 0.0
    return float(np.max(np.abs(a[ok] - b[ok]))) / scale if scale > 0 else 0.0


def parse_cells(specs: Sequence[str]) -> list[tuple[int, int]]:
    """`["140x23", "300x7"]` -> `[(140, 23), (300, 7)]` (N tokens, T response tokens)."""
    cells = []
    for s in specs:
        try:
            n, t = (int(x) for x in s.lower().split("x"))
        except ValueError:
            raise ValueError(f"cell {s!r}: write NxT, e.g. 140x23") from None
        if not 1 <= t < n:
            raise ValueError(f"cell {s!r}: need 1 <= T < N")
        cells.append((n, t))
    return cells


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num and den else None


def format_table(rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]) -> str:
    """A plain-text table: `cols` are (key, format); missing values print as '-'."""
    def cell(r: dict[str, Any], key: str, fmt: str) -> str:
        v = r.get(key)
        return "-" if v is None else fmt.format(v)

    table = [[k for k, _ in cols]] + [[cell(r, k, f) for k, f in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    lines = [" | ".join(x.rjust(w) for x, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(median wall s, median process CPU s, last result) over `repeats` calls after a warm-up."""
    out = fn()
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


# ----------------------------------------------------------------------------- build (torch)


def _build(family: str, out: Path) -> None:
    """Writes a random-weight checkpoint + tokenizer files both stacks can load."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    words = pseudo_words()
    corpus = [" ".join(word_text(64, s, words)) for s in range(200)]
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(MODELS[family])
    specials = {"gpt2": ["<|endoftext|>"], "llama": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]}
    if family == "gemma2":
        import sentencepiece as spm

        text_file = out / "corpus.txt"
        text_file.write_text("\n".join(corpus) + "\n")
        spm.SentencePieceTrainer.train(
            input=str(text_file), model_prefix=str(out / "tokenizer"), vocab_size=600,
            model_type="bpe", pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>",
            eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>", byte_fallback=False,
            hard_vocab_limit=False, minloglevel=2)
        (out / "tokenizer.vocab").unlink()
        text_file.unlink()
        # transformers 5 converts the SentencePiece model when it is all a directory holds.
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "tokenizer.model").write_bytes((out / "tokenizer.model").read_bytes())
            tok = transformers.GemmaTokenizer.from_pretrained(tmp)
    else:
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=VOCAB - len(specials[family]), show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        bpe.train_from_iterator(corpus, trainer)
        bpe.add_special_tokens(specials[family])
        ids = [bpe.token_to_id(s) for s in specials[family]]
        if family == "llama":
            cfg["bos_token_id"], cfg["eos_token_id"] = ids[:2]
            bpe.post_processor = processors.TemplateProcessing(
                single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", ids[0])])
            bpe.save(str(out / "tokenizer.json"))
            tok = transformers.PreTrainedTokenizerFast(
                tokenizer_file=str(out / "tokenizer.json"), bos_token="<|begin_of_text|>",
                eos_token="<|end_of_text|>")
        else:
            cfg["bos_token_id"] = cfg["eos_token_id"] = ids[0]
            bpe.model.save(str(out))  # vocab.json + merges.txt, for keras-hub
            vocab = json.loads((out / "vocab.json").read_text())
            vocab["<|endoftext|>"] = ids[0]
            (out / "vocab.json").write_text(json.dumps(vocab))
            bpe.save(str(out / "tokenizer.json"))
            tok = transformers.PreTrainedTokenizerFast(
                tokenizer_file=str(out / "tokenizer.json"), bos_token="<|endoftext|>",
                eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    attn = cfg.pop("attn_implementation", None)
    config = transformers.AutoConfig.for_model(**cfg)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation=attn)
    with torch.no_grad():  # random, but not tiny: salience values well above float noise
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.08 if "emb" in name or "wte" in name or "wpe" in name else 0.05)
    model.save_pretrained(str(out), safe_serialization=True)
    saved = json.loads((out / "config.json").read_text())
    if "rope_theta" not in saved and "rope_theta" in saved.get("rope_parameters", {}):
        # transformers 5 nests it; keras-hub 0.29's Llama converter reads the top-level key.
        saved["rope_theta"] = saved["rope_parameters"]["rope_theta"]
        (out / "config.json").write_text(json.dumps(saved, indent=2))
    tok.save_pretrained(str(out))
    n_params = sum(p.numel() for p in model.parameters())
    (out / "peers.json").write_text(json.dumps({"family": family, "params": n_params,
                                                "words": words}))


def _cell_inputs(ckpt: Path, cells: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Per cell: the prompt and full text and their token ids, as the HF tokenizer reads them
    (the ids every stack gets; Inseq re-tokenizes the strings and is checked against them)."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    words = json.loads((ckpt / "peers.json").read_text())["words"]
    out = {}
    for n, t in cells:
        text = word_text(n + 8, n * 1000 + t, words)
        k = n
        while len(tok(" ".join(text[:k]))["input_ids"]) > n:
            k -= 1
        full = " ".join(text[:k])
        ids = tok(full)["input_ids"]
        if len(ids) != n:
            raise RuntimeError(f"{ckpt.name}: cannot make exactly {n} tokens ({len(ids)})")
        prompt = " ".join(text[: k - t])
        pids = tok(prompt)["input_ids"]
        if len(pids) != n - t or pids != ids[: n - t]:
            raise RuntimeError(f"{ckpt.name}: the prompt's tokens are not a prefix (N={n}, T={t})")
        out[f"{n}x{t}"] = {"prompt": prompt, "full": full, "ids": ids}
    return out


# ----------------------------------------------------------------------------- workers


def _torch_setup() -> Any:
    import torch

    torch.set_num_threads(2)
    return torch


def _load_hf(ckpt: Path) -> Any:
    import transformers

    torch = _torch_setup()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32)
    model.eval()
    model.requires_grad_(False)
    return model


def _embed_scale(emb: Any) -> float:
    """The factor transformers' embedding module applies to its rows (Gemma: sqrt(hidden))."""
    scale = getattr(emb, "embed_scale", 1.0)
    return float(scale.item() if hasattr(scale, "item") else scale)


def _worker_torch(spec: dict[str, Any]) -> dict[str, Any]:
    """The plain per-target loop: forward + backward of each target's prefix."""
    torch = _torch_setup()
    model = _load_hf(Path(spec["ckpt"]))
    emb = model.get_input_embeddings()
    scale = _embed_scale(emb)
    res: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, cell in spec["cells"].items():
        ids = cell["ids"]
        n, t = len(ids), cell["T"]
        ids_t = torch.tensor(ids)[None]

        def loop(ids: list[int] = ids, ids_t: Any = ids_t, n: int = n, t: int = t) -> Any:
            l2 = np.zeros((t, n), np.float32)
            gi = np.zeros((t, n), np.float32)
            for i, p in enumerate(range(n - t, n)):
                # promptlit's attribution point: the embedding rows before any scale (Gemma's
                # sqrt(hidden) lives in transformers 5's embedding module).
                e = emb.weight[ids_t[:, :p]].detach().requires_grad_(True)
                logits = model(inputs_embeds=e * scale, use_cache=False,
                               logits_to_keep=1).logits
                lp = torch.log_softmax(logits[0, -1].float(), -1)[ids[p]]
                (g,) = torch.autograd.grad(lp, e)
                l2[i, :p] = g[0].norm(dim=-1).numpy()
                gi[i, :p] = (g[0] * e[0]).sum(-1).detach().numpy()
            return l2, gi

        wall, cpu, (l2, gi) = _timed(loop, spec["repeats"])
        res[key] = {"loop_s": wall, "loop_cpu_s": cpu}
        arrays[f"{key}/grad_l2"], arrays[f"{key}/grad_dot_input"] = l2, gi
        print(f"torch {key}: loop {wall:.3f} s", file=sys.stderr, flush=True)
    np.savez(spec["arrays"], **arrays)
    return res


def _worker_inseq(spec: dict[str, Any]) -> dict[str, Any]:
    """Inseq's `saliency`, `input_x_gradient`, `integrated_gradients` (one method per call)."""
    import inseq
    import transformers

    model = _load_hf(Path(spec["ckpt"]))
    tok = transformers.AutoTokenizer.from_pretrained(spec["ckpt"])
    scale = _embed_scale(model.get_input_embeddings())
    res: dict[str, Any] = {k: {} for k in spec["cells"]}
    arrays: dict[str, np.ndarray] = {}
    for method, cells in spec["methods"].items():
        im = inseq.load_model(model, method, tokenizer=tok)
        # The log-probability of each target (Inseq's default is the probability, whose
        # gradient is p times that of the log-probability).
        kw: dict[str, Any] = {"show_progress": False, "step_scores": [],
                              "attributed_fn": "probability", "logprob": True}
        if method == "integrated_gradients":
            # Captum's IG defaults to Gauss-Legendre nodes, and `attribute(method=...)` names
            # Inseq's method: set Captum's rule on the wrapped object (the midpoint rule,
            # alpha_k = (k + 1/2) / m, is promptlit's).
            ig = im.attribution_method.method
            ig.attribute = functools.partial(ig.attribute, method="riemann_middle")
            kw.update(n_steps=IG_STEPS)
        for key in cells:
            cell = spec["cells"][key]
            n, t = len(cell["ids"]), cell["T"]
            wall, cpu, out = _timed(
                lambda c=cell, im=im, kw=kw: im.attribute(c["prompt"], c["full"], **kw),
                spec["repeats"])
            seq = out.sequence_attributions[0]
            got = [tk.id for tk in seq.target]
            if got != cell["ids"]:
                raise RuntimeError(f"inseq tokenized {key} differently: {got[:8]}... vs "
                                   f"{cell['ids'][:8]}...")
            attr = seq.target_attributions.float().numpy()  # [N, T (generated), D]
            attr = np.nan_to_num(np.moveaxis(attr, 1, 0), nan=0.0)  # [T, N, D]
            if method == "saliency":  # Inseq differentiates the scaled rows: rescale
                mat = scale * np.sqrt((attr.astype(np.float64) ** 2).sum(-1))
            else:
                mat = attr.astype(np.float64).sum(-1)
            arrays[f"{key}/{method}"] = mat.astype(np.float32).reshape(t, n)
            res[key][method + "_s"] = wall
            res[key][method + "_cpu_s"] = cpu
            print(f"inseq {method} {key}: {wall:.3f} s", file=sys.stderr, flush=True)
    res["_baseline_id"] = im.tokenizer.unk_token_id  # Inseq's IG baseline token (encode())
    np.savez(spec["arrays"], **arrays)
    return res


def _worker_promptlit(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax

    jax.config.update("jax_compilation_cache_dir", spec["jax_cache"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    from promptlit.models.presets import load_causal_lm
    from promptlit.salience import kernels as K
    from promptlit.salience.forward import lm_forward

    fwd = lm_forward(load_causal_lm(spec["ckpt"], dtype="float32"))
    res: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    baseline = spec.get("ig_baseline", "zero")
    for key, cell in spec["cells"].items():
        ids = np.asarray(cell["ids"], np.int32)
        n, t = len(ids), cell["T"]
        pos = np.arange(n - t, n)
        wall, cpu, out = _timed(lambda ids=ids, pos=pos: K.salience_matrix(fwd, ids, pos),
                                spec["repeats"])
        res[key] = {"matrix_s": wall, "matrix_cpu_s": cpu}
        arrays[f"{key}/grad_l2"] = out["grad_l2"]
        arrays[f"{key}/grad_dot_input"] = out["grad_dot_input"]
        print(f"promptlit {key}: matrix {wall:.3f} s", file=sys.stderr, flush=True)
        if key in spec["ig"]:
            wall, cpu, out = _timed(lambda ids=ids, pos=pos: K.salience_matrix(
                fwd, ids, pos, methods=("integrated_gradients",), ig_steps=IG_STEPS,
                ig_baseline=baseline), spec["repeats"])
            res[key].update(ig_matrix_s=wall, ig_matrix_cpu_s=cpu)
            arrays[f"{key}/integrated_gradients"] = out["integrated_gradients"]
            print(f"promptlit {key}: IG matrix {wall:.3f} s", file=sys.stderr, flush=True)
    np.savez(spec["arrays"], **arrays)
    return res


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "torch": _worker_torch, "inseq": _worker_inseq, "promptlit": _worker_promptlit}


def _run_worker(kind: str, spec: dict[str, Any], python: str) -> dict[str, Any]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
               TOKENIZERS_PARALLELISM="false", KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    proc = subprocess.run([python, __file__, "_worker", kind, f.name], env=env,
                          stdout=subprocess.PIPE, text=True)
    os.unlink(f.name)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------- driver


def _bench_model(family: str, workdir: Path, cells: list[tuple[int, int]],
                 ig_cells: list[tuple[int, int]], repeats: int, python: str,
                 promptlit_python: str) -> list[dict[str, Any]]:
    ckpt = workdir / family
    if not (ckpt / "peers.json").exists():
        subprocess.run([python, __file__, "_build", family, str(ckpt)], check=True)
    info = json.loads((ckpt / "peers.json").read_text())
    sys.path.insert(0, str(ROOT))
    inputs = _cell_inputs(ckpt, cells)
    keys = [f"{n}x{t}" for n, t in cells]
    ig_keys = [f"{n}x{t}" for n, t in ig_cells if f"{n}x{t}" in inputs]
    spec_cells = {k: dict(inputs[k], T=t) for k, (_, t) in zip(keys, cells, strict=True)}
    base = {"ckpt": str(ckpt), "cells": spec_cells, "repeats": repeats}
    load = os.getloadavg()
    tag = os.getpid()  # runs sharing a workdir never read each other's arrays
    tr = _run_worker("torch", dict(base, arrays=str(workdir / f"{family}_{tag}_torch.npz")), python)
    methods = {"saliency": keys, "input_x_gradient": keys, "integrated_gradients": ig_keys}
    ins = _run_worker("inseq", dict(base, methods=methods,
                                    arrays=str(workdir / f"{family}_{tag}_inseq.npz")), python)
    baseline = ins.pop("_baseline_id", None)
    pl = _run_worker("promptlit", dict(
        base, ig=ig_keys, ig_baseline="zero" if baseline is None else int(baseline),
        jax_cache=str(workdir / "jax_cache"), arrays=str(workdir / f"{family}_{tag}_promptlit.npz")),
        promptlit_python)
    load_after = os.getloadavg()
    (workdir / f"{family}_{tag}_times.json").write_text(json.dumps(
        {"torch": tr, "inseq": ins, "promptlit": pl}, indent=1))
    a_t = np.load(workdir / f"{family}_{tag}_torch.npz")
    a_i = np.load(workdir / f"{family}_{tag}_inseq.npz")
    a_p = np.load(workdir / f"{family}_{tag}_promptlit.npz")
    rows = []
    for k, (n, t) in zip(keys, cells, strict=True):
        p, tt, ii = pl[k], tr[k], ins[k]
        errs = {
            "err_loop": max(rel_error(a_p[f"{k}/grad_l2"], a_t[f"{k}/grad_l2"]),
                            rel_error(a_p[f"{k}/grad_dot_input"], a_t[f"{k}/grad_dot_input"])),
            "err_inseq": max(rel_error(a_p[f"{k}/grad_l2"], a_i[f"{k}/saliency"]),
                             rel_error(a_p[f"{k}/grad_dot_input"],
                                       a_i[f"{k}/input_x_gradient"])),
        }
        if k in ig_keys:
            errs["err_ig"] = rel_error(a_p[f"{k}/integrated_gradients"],
                                       a_i[f"{k}/integrated_gradients"])
        rows.append({
            "model": family, "params_M": info["params"] / 1e6, "N": n, "T": t,
            "matrix_s": p["matrix_s"], "loop_s": tt["loop_s"],
            "saliency_s": ii.get("saliency_s"), "ixg_s": ii.get("input_x_gradient_s"),
            "loop/matrix": ratio(tt["loop_s"], p["matrix_s"]),
            "sal/matrix": ratio(ii.get("saliency_s"), p["matrix_s"]),
            "ixg/matrix": ratio(ii.get("input_x_gradient_s"), p["matrix_s"]),
            "ig_matrix_s": p.get("ig_matrix_s"), "inseq_ig_s": ii.get("integrated_gradients_s"),
            "ig/IGmatrix": ratio(ii.get("integrated_gradients_s"), p.get("ig_matrix_s")),
            "cpu loop/matrix": ratio(tt["loop_cpu_s"], p["matrix_cpu_s"]),
            "cpu sal/matrix": ratio(ii.get("saliency_cpu_s"), p["matrix_cpu_s"]),
            "cpu ixg/matrix": ratio(ii.get("input_x_gradient_cpu_s"), p["matrix_cpu_s"]),
            "cpu ig/IGmatrix": ratio(ii.get("integrated_gradients_cpu_s"),
                                     p.get("ig_matrix_cpu_s")),
            **errs, "load": f"{load[0]:.1f}-{load_after[0]:.1f}",
        })
    return rows


COLUMNS = [
    ("model", "{}"), ("params_M", "{:.1f}"), ("N", "{}"), ("T", "{}"),
    ("matrix_s", "{:.3f}"), ("loop_s", "{:.3f}"), ("saliency_s", "{:.3f}"), ("ixg_s", "{:.3f}"),
    ("loop/matrix", "{:.2f}"), ("sal/matrix", "{:.2f}"), ("ixg/matrix", "{:.2f}"),
    ("ig_matrix_s", "{:.2f}"), ("inseq_ig_s", "{:.2f}"), ("ig/IGmatrix", "{:.2f}"),
    ("cpu loop/matrix", "{:.2f}"), ("cpu sal/matrix", "{:.2f}"), ("cpu ixg/matrix", "{:.2f}"),
    ("cpu ig/IGmatrix", "{:.2f}"), ("err_loop", "{:.1e}"), ("err_inseq", "{:.1e}"),
    ("err_ig", "{:.1e}"), ("load", "{}"),
]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        spec = json.loads(Path(argv[2]).read_text())
        print(json.dumps(WORKERS[argv[1]](spec)))
        return 0
    if argv[:1] == ["_build"]:
        _build(argv[1], Path(argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--cells", nargs="+", help="NxT pairs (default: the full grid)")
    ap.add_argument("--ig-cells", nargs="*", help="NxT pairs to time IG on (default: all cells "
                                                  "with N <= 300 and T <= 23)")
    ap.add_argument("--quick", action="store_true", help="GPT-2 only, N=140 T=23")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "promptlit-peers"))
    ap.add_argument("--promptlit-python", default=sys.executable,
                    help="the Python that runs promptlit (default: this one)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.quick:
        cells = list(QUICK_CELLS)
        models = ["gpt2"] if args.models == list(MODELS) else args.models
    else:
        cells = parse_cells(args.cells) if args.cells else [(n, t) for n in GRID_N for t in GRID_T]
        models = args.models
    ig_cells = (parse_cells(args.ig_cells) if args.ig_cells is not None
                else [(n, t) for n, t in cells if n <= 300 and t <= 23])
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for family in models:
        rows += _bench_model(family, workdir, cells, ig_cells, args.repeats, sys.executable,
                             args.promptlit_python)
        print(format_table(rows[-len(cells):], COLUMNS), file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs; torch threads 2, OMP_WAIT_POLICY=PASSIVE; median of "
          f"{args.repeats} warm calls; ratios > 1: promptlit faster; err: max|a-b|/max|b| "
          f"(goal <= {TOLERANCE:g})")
    print(format_table(rows, COLUMNS))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    bad = [r for r in rows if any((r.get(e) or 0) > TOLERANCE
                                  for e in ("err_loop", "err_inseq", "err_ig"))]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
