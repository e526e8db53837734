"""`promptlit explain` (bulk, batched across examples) against one-by-one `Workbench.salience`.

Usage:
    .venv/bin/python benchmarks/bulk.py                       # both models, N = 256
    .venv/bin/python benchmarks/bulk.py --only tiny_lm --examples 64 --batch-size 8
    .venv/bin/python benchmarks/bulk.py --only gemma --examples 16 --batch-size 4

Rows:

* ``tiny_lm``: the shipped `presets/tiny_lm` (2M parameters), ``--target response``: each
  example's prompt is ``N - T`` tokens of the sample prompts' text, the model generates up to
  ``T`` tokens (greedy, stopping at a blank line as the preset says), and the Grad L2 +
  Grad·Input matrices of the response are computed. One by one: a fresh `Workbench` and
  ``wb.salience("tiny", ex)`` per example (generation of one prompt, then one matrix call).
* ``gemma-68M``: the random-weight Gemma of `benchmarks/salience.py` (67.9M parameters, 9
  layers, hidden 768, vocabulary 32k) with the tiny model's tokenizer, ``--target target``
  (prompts of ``N - T`` tokens, targets of ``T`` tokens; a random model's generations are
  noise, and its 32k vocabulary holds ids the small tokenizer cannot decode). One by one:
  ``wb.salience("gemma", ex, target="target")``.

Both paths are warmed up first on the same lengths (every compile happens before timing: the
bulk run's buckets, the one-by-one path's bucket), then timed on the same examples. Printed: the
examples/s of each path and their ratio (goal >= 3 on CPU), with the load average, because on a
shared machine absolute times move with other users' work. Compare ratios taken back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("KERAS_BACKEND", "jax")


def _prompts(lm: Any, n: int, prompt_tokens: int, target_tokens: int, seed: int = 0
             ) -> list[dict[str, Any]]:
    """``n`` examples: a prompt of exactly ``prompt_tokens`` tokens (with the start token) cut
    from the sample prompts' text at different offsets, and a target of ``target_tokens``."""
    import promptlit as pl

    text = "\n\n".join(ex["prompt"] + (ex.get("target") or "")
                       for ex in pl.data.load("sample_prompts").examples)
    text = (text + "\n\n") * 4
    ids, offsets, _ = lm.tokenize_with_offsets(text)
    out = []
    need = prompt_tokens - 1 + target_tokens
    for i in range(n):
        start = (i * 37 + seed) % (len(ids) - need - 1)
        p_end = start + prompt_tokens - 1
        t_end = p_end + target_tokens
        out.append({"prompt": text[offsets[start][0]: offsets[p_end - 1][1]],
                    "target": text[offsets[p_end - 1][1]: offsets[t_end - 1][1]] or " x"})
    return out


def _time_bulk(lm: Any, data: Any, target: str, batch_size: int) -> float:
    from promptlit import bulk

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        bulk.explain(lm, data, Path(out) / "run", model_name="m", dataset_name="bench",
                     target=target, batch_size=batch_size, show_progress=False)
        return time.perf_counter() - t0


def _time_one_by_one(lm: Any, data: Any, target: str) -> float:
    import promptlit as pl

    wb = pl.Workbench(models={"m": lm}, datasets={"bench": data})  # empty caches
    t0 = time.perf_counter()
    for ex in data.examples:
        try:
            wb.salience("m", ex, target=target)
        except ValueError:  # an empty response: nothing to explain (bulk stores no matrix)
            continue
    return time.perf_counter() - t0


def _row(name: str, params: float, lm: Any, examples: list[dict[str, Any]], target: str,
         batch_size: int, warm: int, repeats: int) -> dict[str, Any]:
    from promptlit.api.dataset import Dataset

    warm_data = Dataset(examples[:warm])
    data = Dataset(examples[warm:])
    _time_bulk(lm, warm_data, target, batch_size)  # compiles: generation and matrix per bucket
    _time_one_by_one(lm, warm_data, target)
    bulk_s, one_s = [], []
    for _ in range(repeats):  # interleaved: both see the same load
        bulk_s.append(_time_bulk(lm, data, target, batch_size))
        one_s.append(_time_one_by_one(lm, data, target))
    n = len(data.examples)
    b, o = min(bulk_s), min(one_s)
    return {"model": name, "params_M": params, "target": target, "examples": n,
            "batch": batch_size, "bulk_s": b, "one_s": o, "bulk_ex_s": n / b, "one_ex_s": n / o,
            "ratio": o / b, "load": os.getloadavg()[0]}


def _print(rows: list[dict[str, Any]]) -> None:
    head = (f"{'model':>10} | {'params(M)':>9} | {'target':>8} | {'N':>4} | {'T':>3} | "
            f"{'examples':>8} | {'batch':>5} | {'bulk ex/s':>9} | {'one-by-one ex/s':>15} | "
            f"{'bulk/one(>=3)':>13} | {'load avg':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:>10} | {r['params_M']:>9.1f} | {r['target']:>8} | {r['N']:>4} | "
              f"{r['T']:>3} | {r['examples']:>8} | {r['batch']:>5} | {r['bulk_ex_s']:>9.2f} | "
              f"{r['one_ex_s']:>15.2f} | {r['ratio']:>13.2f} | {r['load']:>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("tiny_lm", "gemma"), default=None)
    parser.add_argument("--length", type=int, default=256, help="N: prompt + response tokens")
    parser.add_argument("--targets", type=int, default=16, help="T: response / target tokens")
    parser.add_argument("--examples", type=int, default=None,
                        help="timed examples (default 64 tiny_lm, 16 gemma)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="bulk batch (default 8 tiny_lm, 4 gemma)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import keras
    import keras_hub

    import promptlit as pl

    rows = []
    prompt_tokens = args.length - args.targets - 2  # re-tokenized cuts may gain a token
    if args.only != "gemma":
        lm = pl.models.KerasCausalLM.from_preset(str(ROOT / "presets" / "tiny_lm"),
                                                 max_new_tokens=args.targets)
        n = args.examples or 64
        b = args.batch_size or 8
        examples = _prompts(lm, n + b, prompt_tokens, args.targets)
        params = lm.causal_lm.count_params() / 1e6
        rows.append({**_row("tiny_lm", params, lm, examples, "response", b, b, args.repeats),
                     "N": args.length, "T": args.targets})
        _print(rows)
    if args.only != "tiny_lm":
        from salience import GEMMA_100M

        tiny = keras_hub.models.CausalLM.from_preset(str(ROOT / "presets" / "tiny_lm"))
        keras.utils.set_random_seed(0)
        bb = keras_hub.models.GemmaBackbone(**GEMMA_100M)
        causal = keras_hub.models.GemmaCausalLM(backbone=bb, preprocessor=tiny.preprocessor)
        lm = pl.models.KerasCausalLM(causal, handle="random://gemma-68M", max_new_tokens=1)
        n = args.examples or 16
        b = args.batch_size or 4
        examples = _prompts(lm, n + b, prompt_tokens, args.targets)
        rows.append({**_row("gemma-68M", causal.count_params() / 1e6, lm, examples, "target",
                            b, b, args.repeats), "N": args.length, "T": args.targets})
        _print(rows)
    print()
    _print(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
