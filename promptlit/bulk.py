"""`promptlit explain`: batched salience over a whole dataset, written as a Parquet dataset.

One row per example: its id, prompt, the explained text (the model's response, or the
example's target), the tokens with their character offsets, the `<float32>[T, N]` matrix of
every method, and the top-k prompt segments per granularity. Beside the parts,
``manifest.json`` records the model (handle, config hash), the methods, the configuration's
hash and the promptlit version.

    promptlit explain --models tiny:presets/tiny_lm --datasets sample_prompts --out runs/a
    pl.data.load("results:runs/a")          # the examples back, with the stored results

How the work is batched: the examples are sorted by prompt length (a stable sort, so the plan
depends only on the data and ``--batch-size``) and cut into batches of ``batch_size``; one batch
is one part file, ``part-00012.parquet``. Generation runs a batch at a time
(`KerasCausalLM.predict_minibatch`: keras-hub's compiled generate on the whole batch), salience
too (`KerasCausalLM.salience_batch`: every sequence padded to the length bucket of the batch's
longest, the batch to ``batch_size`` rows; one compiled call per batch, one compile per bucket).

Resumable and safe: a part is written to a temporary file and renamed into place
(`os.replace`), so a part file is complete or absent. A run restarted with the same command
skips the parts that exist; since the plan is deterministic and each part is computed by the
same compiled calls from the same inputs, the result is the one an uninterrupted run writes. A
run whose configuration (model, its generation settings, data, methods, target,
granularities, top-k, batch size, limit, IG steps) differs from the one recorded in the
directory's manifest is refused with what differs.

Several processes (`--coordinator/--num-processes/--process-id`, or a cluster's environment that
`jax.distributed.initialize` reads): process ``i`` computes parts ``i, i + P, i + 2P, ...``; every
process writes its own parts; process 0 writes the manifest after a barrier
(`jax.experimental.multihost_utils.sync_global_devices`) when all have finished. The parts do not
depend on the number of processes, so P processes write exactly what one writes.

Why list-of-list float32 columns rather than one ``.npy`` per example: a part stays one file that
appears atomically; pandas, DuckDB, Polars and Spark read the matrices directly; float32 values
are stored exactly; and thousands of small files per run are avoided.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import promptlit
from promptlit.api import types
from promptlit.lib import caching
from promptlit.lib.serialize import json_safe
from promptlit.lib.utils import example_id

logger = logging.getLogger(__name__)

FORMAT = "promptlit-explain"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PART_PATTERN = "part-{:05d}.parquet"
METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input", "integrated_gradients")
DEFAULT_METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input")
DEFAULT_GRANULARITIES: tuple[str, ...] = ("words", "sentences", "lines")
#: Granularities `--granularities` accepts ("blocks" needs a separator: not offered here).
GRANULARITIES: tuple[str, ...] = ("tokens", "words", "sentences", "lines", "paragraphs",
                                  "turns", "few-shot", "segments")
DEFAULT_BATCH_SIZE = 8


class ExplainError(ValueError):
    """Bad input to `explain` (flags, data, output directory): what, where and how to fix it."""


@dataclasses.dataclass(frozen=True)
class ExplainSummary:
    """What one `explain` call did (the CLI prints `line()`)."""

    out: Path
    examples: int
    parts: int
    computed_parts: int
    skipped_parts: int
    computed_examples: int
    empty_responses: int
    seconds: float
    process_id: int = 0
    num_processes: int = 1

    def line(self) -> str:
        rate = self.computed_examples / self.seconds if self.seconds > 0 else 0.0
        who = (f" (process {self.process_id} of {self.num_processes})"
               if self.num_processes > 1 else "")
        empty = (f"; {self.empty_responses} empty responses (no salience)"
                 if self.empty_responses else "")
        return (f"explain{who}: {self.computed_examples} examples explained in "
                f"{self.seconds:.1f} s ({rate:.2f} examples/s), {self.computed_parts} parts "
                f"written, {self.skipped_parts} already done; {self.examples} examples in "
                f"{self.parts} parts under {self.out}{empty}")


# ----------------------------------------------------------------------------- checks


def check_methods(methods: Sequence[str] | str) -> tuple[str, ...]:
    """``"grad_l2,grad_dot_input"`` or a sequence -> a tuple of known methods (or ExplainError)."""
    items = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods)]
    items = [m for m in items if m]
    bad = [m for m in items if m not in METHODS]
    if bad or not items:
        raise ExplainError(f"--methods: unknown method(s) {bad or '(none given)'}; choose from "
                           f"{', '.join(METHODS)} (comma-separated, e.g. "
                           "--methods grad_l2,grad_dot_input)")
    return tuple(dict.fromkeys(items))


def check_granularities(granularities: Sequence[str] | str) -> tuple[str, ...]:
    """``"words,sentences"`` or a sequence -> a tuple of granularities (or ExplainError)."""
    items = [g.strip() for g in (granularities.split(",") if isinstance(granularities, str)
                                 else granularities)]
    items = [g for g in items if g]
    bad = [g for g in items if g not in GRANULARITIES]
    if bad:
        raise ExplainError(f"--granularities: unknown granularity {bad}; choose from "
                           f"{', '.join(GRANULARITIES)} (comma-separated)")
    return tuple(dict.fromkeys(items))


def _example_prompt(model: Any, ex: Mapping[str, Any]) -> Any:
    prompt_of = getattr(model, "prompt_of", None)
    return prompt_of(ex) if callable(prompt_of) else ex["prompt"]


def model_config_hash(model: Any) -> str:
    """The hash a `Workbench` keys this model's predictions and salience by."""
    from promptlit.api.model import model_config

    return caching.config_hash(model_config(model))


def _dataset_fingerprint(examples: Sequence[Mapping[str, Any]]) -> str:
    return caching.config_hash([example_id(ex) for ex in examples])


def explain_config(model: Any, examples: Sequence[Mapping[str, Any]], *, methods: Sequence[str],
                   target: str, granularities: Sequence[str], top_k: int, batch_size: int,
                   limit: int | None, ig_steps: int) -> dict[str, Any]:
    """Everything that changes what `explain` writes (its hash names the configuration)."""
    from promptlit.api.model import model_config

    return {
        "model": {"handle": getattr(model, "handle", None),
                  "config_hash": model_config_hash(model),
                  "config": json.loads(json.dumps(model_config(model), default=str))},
        "dataset": {"fingerprint": _dataset_fingerprint(examples), "examples": len(examples)},
        "methods": list(methods),
        "target": target,
        "granularities": list(granularities),
        "top_k": int(top_k),
        "batch_size": int(batch_size),
        "limit": limit,
        "ig_steps": int(ig_steps) if "integrated_gradients" in methods else None,
    }


def check_examples(dataset: Any, dataset_name: str, *, target: str = "response",
                   limit: int | None = None) -> list[Mapping[str, Any]]:
    """The examples `explain` would explain (the first ``limit``), or ExplainError naming the
    first example that cannot be explained (no prompt; no target with ``target="target"``)."""
    examples = list(dataset.examples)
    if limit is not None:
        examples = examples[: int(limit)]
    if not examples:
        raise ExplainError(f"dataset {dataset_name!r} has no examples to explain")
    for i, ex in enumerate(examples):
        if "prompt" not in ex and not ex.get("messages"):
            raise ExplainError(f"dataset {dataset_name!r}, example {i}: no 'prompt' (or "
                               "'messages') field. Fix: give every example a prompt")
        if target == "target" and not (isinstance(ex.get("target"), str) and ex["target"]):
            raise ExplainError(f"dataset {dataset_name!r}, example {i} (id "
                               f"{example_id(ex)[:12]}): --target target needs a non-empty "
                               "'target' field. Fix: add targets to every example, or use "
                               "--target response to explain the model's own responses")
    return examples


def check_out_path(out: str | os.PathLike[str]) -> Path:
    """``out`` if it can hold results (new, empty, or an explain run's directory), else
    ExplainError; cheap (no model), so the CLI checks it before loading anything."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ExplainError(f"--out {path}: exists and is not a directory. Fix: choose a "
                           "directory path (it is created)")
    if path.is_dir() and read_manifest(path) is None and any(
            p for p in path.iterdir() if not p.name.startswith(".")):
        raise ExplainError(f"--out {path}: the directory is not empty and holds no "
                           f"{MANIFEST} of a promptlit explain run. Fix: choose a new or "
                           "empty directory")
    return path


def _flag_of(key: str) -> str:
    return {"model": "--models (and the generation flags)", "dataset": "--datasets",
            "methods": "--methods", "target": "--target", "granularities": "--granularities",
            "top_k": "--top-k", "batch_size": "--batch-size", "limit": "--limit",
            "ig_steps": "--ig-steps"}.get(key, key)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "model" and isinstance(a, dict) and isinstance(b, dict):
            if a.get("handle") != b.get("handle"):
                out.append(f"model: {a.get('handle')!r} there, {b.get('handle')!r} now")
            else:
                ca, cb = a.get("config") or {}, b.get("config") or {}
                sub = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
                out.append(f"model settings ({', '.join(sub) or 'config hash'}): "
                           f"{json.dumps({k: ca.get(k) for k in sub}, default=str)[:200]} there, "
                           f"{json.dumps({k: cb.get(k) for k in sub}, default=str)[:200]} now")
        elif key == "dataset":
            out.append(f"dataset: {(a or {}).get('examples')} examples "
                       f"(fingerprint {(a or {}).get('fingerprint')}) there, "
                       f"{(b or {}).get('examples')} (fingerprint {(b or {}).get('fingerprint')})"
                       " now")
        else:
            out.append(f"{key} ({_flag_of(key)}): {a!r} there, {b!r} now")
    return out


# ----------------------------------------------------------------------------- manifest


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a results directory, None when there is none (ExplainError if broken)."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExplainError(f"{path}: not a readable promptlit explain manifest ({e}). Fix: "
                           "delete the directory or choose another --out") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExplainError(f"{path}: not a promptlit explain manifest (no \"format\": "
                           f"\"{FORMAT}\"). Fix: choose another --out directory")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ExplainError(f"{path}: written by a newer promptlit (format version "
                           f"{manifest.get('format_version')}, this one reads {FORMAT_VERSION}). "
                           "Fix: upgrade promptlit")
    return manifest


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _manifest(config: Mapping[str, Any], config_hash: str, *, model_name: str,
              dataset_name: str, source: str | None, spec: types.Spec, parts: int,
              status: str, rows: int | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "promptlit_version": promptlit.__version__,
        "config_hash": config_hash, "config": dict(config),
        "model": {"name": model_name, "handle": config["model"]["handle"],
                  "config_hash": config["model"]["config_hash"]},
        "methods": list(config["methods"]), "target": config["target"],
        "dataset": {"name": dataset_name, "source": source, "spec": types.spec_to_json(spec)},
        "parts": [PART_PATTERN.format(i) for i in range(parts)],
        "status": status, "rows": rows,
    }


def check_out_dir(out: Path, config: Mapping[str, Any], config_hash: str) -> dict[str, Any] | None:
    """The existing manifest if ``out`` may take this run (same config), None for a fresh
    directory; ExplainError saying what differs and how to fix it otherwise."""
    check_out_path(out)
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is None:
        return None
    if manifest.get("config_hash") != config_hash:
        diffs = _differences(manifest.get("config") or {}, config) or [
            "config hash " f"{manifest.get('config_hash')} there, {config_hash} now"]
        raise ExplainError(
            f"--out {out} holds results of a different configuration, and runs are never "
            f"mixed: {'; '.join(diffs)}. Fix: rerun with the flags of the first run to resume "
            "it, or write to another --out directory (or delete this one)")
    return manifest


# ----------------------------------------------------------------------------- planning


def plan_batches(model: Any, examples: Sequence[Mapping[str, Any]], batch_size: int,
                 target: str = "response") -> list[list[int]]:
    """Example indices in batches of ``batch_size``: sorted by prompt tokens (plus the target's
    characters when explaining targets), stable, so the plan depends only on the data."""
    lengths = []
    for ex in examples:
        enc = model.encode_prompt(_example_prompt(model, ex), chat_template=ex.get("chat_template"))
        extra = len(ex.get("target") or "") if target == "target" else 0
        lengths.append(int(enc.ids.shape[0]) * 8 + extra // 4)
    order = sorted(range(len(examples)), key=lambda i: (lengths[i], i))
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def parts_of(process_id: int, num_processes: int, num_parts: int) -> list[int]:
    """The parts process ``process_id`` computes: ``process_id, process_id + P, ...``."""
    return list(range(process_id, num_parts, num_processes))


# ----------------------------------------------------------------------------- rows


def _top_segments(sal: Any, ex: Mapping[str, Any], methods: Sequence[str],
                  granularities: Sequence[str], top_k: int) -> dict[str, list[dict[str, Any]]]:
    from promptlit.lib.segmentation import resolve_granularity

    out: dict[str, list[dict[str, Any]]] = {}
    t = sal.num_response_tokens
    for g in granularities:
        rows: list[dict[str, Any]] = []
        try:
            resolved = resolve_granularity(g, example=ex)
        except ValueError:  # e.g. "segments" for an example that defines none
            out[g] = rows
            continue
        for method in methods:
            segs = list(sal.for_span(0, t, method).aggregate(resolved, side="prompt"))
            segs.sort(key=lambda s: abs(s.score), reverse=True)
            for rank, s in enumerate(segs[:top_k], 1):
                rows.append({"method": method, "rank": rank, "text": s.text,
                             "label": str(getattr(s, "label", "") or ""), "start": int(s.start),
                             "end": int(s.end), "score": float(s.score)})
        out[g] = rows
    return out


def _schema(methods: Sequence[str], granularities: Sequence[str]) -> Any:
    import pyarrow as pa

    segment = pa.struct([("method", pa.string()), ("rank", pa.int32()), ("text", pa.string()),
                         ("label", pa.string()), ("start", pa.int32()), ("end", pa.int32()),
                         ("score", pa.float64())])
    fields = [
        ("index", pa.int64()), ("id", pa.string()), ("example", pa.string()),
        ("prompt", pa.string()), ("target", pa.string()), ("response", pa.string()),
        ("prediction", pa.string()), ("text", pa.string()), ("prompt_length", pa.int32()),
        ("num_prompt_tokens", pa.int32()), ("tokens", pa.list_(pa.string())),
        ("offsets", pa.list_(pa.list_(pa.int32()))), ("template_mask", pa.list_(pa.bool_())),
        ("salience_metadata", pa.string()),
        *[(f"matrix_{m}", pa.list_(pa.list_(pa.float32()))) for m in methods],
        *[(f"top_{g}", pa.list_(segment)) for g in granularities],
    ]
    return pa.schema(fields)


def _row(index: int, ex: Mapping[str, Any], response: str, prediction: Any, sal: Any,
         methods: Sequence[str], granularities: Sequence[str], top_k: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": index, "id": example_id(ex),
        "example": json.dumps(json_safe(dict(ex)), sort_keys=True, ensure_ascii=False),
        "prompt": str(ex.get("prompt", "")),
        "target": ex.get("target") if isinstance(ex.get("target"), str) else None,
        "response": response,
        "prediction": (json.dumps(json_safe(prediction), sort_keys=True, ensure_ascii=False)
                       if prediction is not None else None),
    }
    if sal is None:  # an empty response: nothing to explain
        row.update({"text": None, "prompt_length": None, "num_prompt_tokens": None,
                    "tokens": None, "offsets": None, "template_mask": None,
                    "salience_metadata": None})
        row.update({f"matrix_{m}": None for m in methods})
        row.update({f"top_{g}": [] for g in granularities})
        return row
    row.update({
        "text": sal.text, "prompt_length": int(sal.prompt_length),
        "num_prompt_tokens": int(sal.num_prompt_tokens), "tokens": list(sal.tokens),
        "offsets": np.asarray(sal.offsets, np.int32).tolist(),
        "template_mask": np.asarray(sal.template_mask, bool).tolist(),
        "salience_metadata": json.dumps(json_safe(sal.metadata), sort_keys=True),
    })
    for m in methods:
        row[f"matrix_{m}"] = list(np.asarray(sal.matrices[m], np.float32))
    row.update({f"top_{g}": v for g, v in
                _top_segments(sal, ex, methods, granularities, top_k).items()})
    return row


def _write_part(path: Path, rows: list[dict[str, Any]], schema: Any, config_hash: str) -> None:
    """Writes one part atomically: a temporary file in the same directory, then `os.replace`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema.with_metadata(
        {b"promptlit_config_hash": config_hash.encode()}))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _part_done(path: Path, config_hash: str) -> bool:
    if not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - an unreadable part is recomputed
        logger.warning("%s: unreadable; computing it again", path)
        return False
    return meta.get(b"promptlit_config_hash") == config_hash.encode()


# ----------------------------------------------------------------------------- the run


def _barrier(name: str, num_processes: int) -> None:
    if num_processes > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def explain(model: Any, dataset: Any, out: str | os.PathLike[str], *,
            model_name: str = "model", dataset_name: str = "data",
            methods: Sequence[str] = DEFAULT_METHODS, target: str = "response",
            granularities: Sequence[str] = DEFAULT_GRANULARITIES, top_k: int = 10,
            batch_size: int = DEFAULT_BATCH_SIZE, limit: int | None = None, ig_steps: int = 16,
            process_id: int = 0, num_processes: int = 1, show_progress: bool = True,
            on_part: Callable[[int], None] | None = None) -> ExplainSummary:
    """Explains every example of ``dataset`` with ``model`` into the Parquet dataset ``out``.

    Args:
        model: a `KerasCausalLM` (unwrapped or in a wrapper).
        dataset: a `promptlit.api.dataset.Dataset` of prompts.
        out: the results directory (created; resumed when it holds the same configuration).
        model_name, dataset_name: recorded in the manifest.
        methods: salience methods (full matrices; IG with ``ig_steps``).
        target: "response" (generate, then explain the response) or "target" (explain the
            example's reference continuation; no generation).
        granularities: prompt granularities whose top ``top_k`` segments are stored per method.
        batch_size: examples per generation / salience call and per part file.
        limit: only the first ``limit`` examples.
        process_id, num_processes: this process's share (see the module docstring); call
            `init_distributed` first when ``num_processes > 1``.
        show_progress: a tqdm bar (examples/s, ETA).
        on_part: called with each part index after it is written (tests use it to stop a run).

    Returns:
        An `ExplainSummary` (its ``line()`` is the CLI's summary line).

    Raises:
        ExplainError: bad arguments, data without targets for ``target="target"``, an output
            directory with another configuration.
    """
    from tqdm.auto import tqdm

    inner = model.unwrap() if callable(getattr(model, "unwrap", None)) else model
    if not callable(getattr(inner, "salience_batch", None)):
        raise ExplainError(f"model {model_name!r} ({type(inner).__name__}) cannot be explained "
                           "in bulk: it has no salience_batch(); load a causal LM "
                           "(promptlit.models.KerasCausalLM), e.g. --models tiny:presets/tiny_lm")
    methods = check_methods(methods)
    granularities = check_granularities(granularities)
    if target not in ("response", "target"):
        raise ExplainError(f"--target must be 'response' or 'target', got {target!r}")
    for name, value, least in (("--top-k", top_k, 1), ("--batch-size", batch_size, 1),
                               ("--ig-steps", ig_steps, 1)):
        if isinstance(value, bool) or int(value) < least:
            raise ExplainError(f"{name} must be >= {least}, got {value!r}")
    if limit is not None and int(limit) < 1:
        raise ExplainError(f"--limit must be >= 1, got {limit!r}")
    if not 0 <= process_id < num_processes:
        raise ExplainError(f"--process-id {process_id} must be in 0..{num_processes - 1} "
                           f"(--num-processes {num_processes})")
    examples = check_examples(dataset, dataset_name, target=target, limit=limit)
    out = Path(out).expanduser()
    config = explain_config(inner, examples, methods=methods, target=target,
                            granularities=granularities, top_k=top_k, batch_size=batch_size,
                            limit=limit, ig_steps=ig_steps)
    config_hash = caching.config_hash(config)
    t0 = time.perf_counter()
    existing = check_out_dir(out, config, config_hash)
    plan = plan_batches(inner, examples, int(batch_size), target)
    spec = dataset.spec() if callable(getattr(dataset, "spec", None)) else {}
    source = getattr(dataset, "source", None)
    if process_id == 0:
        out.mkdir(parents=True, exist_ok=True)
        if existing is None:
            _write_json_atomic(out / MANIFEST, _manifest(
                config, config_hash, model_name=model_name, dataset_name=dataset_name,
                source=source, spec=spec, parts=len(plan), status="running"))
    _barrier("promptlit-explain-start", num_processes)
    if process_id != 0:
        check_out_dir(out, config, config_hash)
    schema = _schema(methods, granularities)
    mine = parts_of(process_id, num_processes, len(plan))
    todo = [i for i in mine if not _part_done(out / PART_PATTERN.format(i), config_hash)]
    done_examples = sum(len(plan[i]) for i in mine if i not in todo)
    total = sum(len(plan[i]) for i in mine)
    bar = tqdm(total=total, initial=done_examples, unit="ex", desc=f"explain {model_name}",
               disable=not show_progress, dynamic_ncols=True)
    computed = empty = 0
    try:
        for part in todo:
            batch = [examples[i] for i in plan[part]]
            if target == "response":
                predictions = list(inner.predict_minibatch([dict(ex) for ex in batch]))
                responses = [str(p["response"]) for p in predictions]
            else:
                predictions = [None] * len(batch)
                responses = [str(ex["target"]) for ex in batch]
            keep = [j for j, r in enumerate(responses) if _has_tokens(inner, r)]
            sals: dict[int, Any] = {}
            if keep:
                found = inner.salience_batch(
                    [_example_prompt(inner, batch[j]) for j in keep], [responses[j] for j in keep],
                    chat_templates=[batch[j].get("chat_template") for j in keep],
                    methods=methods, ig_steps=int(ig_steps), batch_size=int(batch_size))
                sals = dict(zip(keep, found, strict=True))
            rows = [_row(idx, ex, responses[j], predictions[j], sals.get(j), methods,
                         granularities, int(top_k))
                    for j, (idx, ex) in enumerate(zip(plan[part], batch, strict=True))]
            _write_part(out / PART_PATTERN.format(part), rows, schema, config_hash)
            computed += len(batch)
            empty += len(batch) - len(keep)
            bar.update(len(batch))
            if on_part is not None:
                on_part(part)
    finally:
        bar.close()
    _barrier("promptlit-explain-done", num_processes)
    if process_id == 0:
        missing = [PART_PATTERN.format(i) for i in range(len(plan))
                   if not _part_done(out / PART_PATTERN.format(i), config_hash)]
        if missing:
            raise ExplainError(f"{out}: parts {missing[:5]} are missing after every process "
                               "finished. Fix: rerun the same command to compute them")
        _write_json_atomic(out / MANIFEST, _manifest(
            config, config_hash, model_name=model_name, dataset_name=dataset_name,
            source=source, spec=spec, parts=len(plan), status="complete", rows=len(examples)))
    return ExplainSummary(out=out, examples=len(examples), parts=len(plan),
                          computed_parts=len(todo), skipped_parts=len(mine) - len(todo),
                          computed_examples=computed, empty_responses=empty,
                          seconds=time.perf_counter() - t0, process_id=process_id,
                          num_processes=num_processes)


def _has_tokens(model: Any, text: str) -> bool:
    if not text:
        return False
    return bool(len(model.tokenize_with_offsets(text)[0]))


# ----------------------------------------------------------------------------- several hosts


def init_distributed(coordinator: str | None = None, num_processes: int | None = None,
                     process_id: int | None = None) -> tuple[int, int]:
    """Starts JAX's multi-process runtime (`jax.distributed.initialize`); returns
    ``(process_id, num_processes)``.

    Values not given are read by JAX from the environment (``JAX_COORDINATOR_ADDRESS``, or a
    SLURM job, a TPU pod, Open MPI). CPU collectives use gloo (the barrier needs them). Call it
    before anything else touches JAX.

    Raises:
        ExplainError: when the runtime cannot start (what JAX said, and how to fix it).
    """
    import jax

    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:  # noqa: BLE001 - older / newer JAX without the option: default collectives
        logger.debug("jax_cpu_collectives_implementation not settable", exc_info=True)
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    except Exception as e:  # noqa: BLE001 - any failure becomes one clear line
        raise ExplainError(
            f"could not start JAX's multi-process runtime ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Fix: give --coordinator HOST:PORT "
            "(process 0's address, reachable by every process), --num-processes P and "
            "--process-id I (0..P-1, a different one per process), or run under SLURM / on a "
            "TPU pod where JAX finds them") from None
    return jax.process_index(), jax.process_count()


# ----------------------------------------------------------------------------- reading back


@dataclasses.dataclass(frozen=True)
class StoredResults:
    """What a results directory holds besides the examples: per example (in dataset order) the
    explained text, the model's prediction (``--target response``) and the salience."""

    manifest: Mapping[str, Any]
    responses: tuple[str, ...]
    predictions: tuple[Any, ...]
    salience: tuple[Any, ...]

    @property
    def model_config_hash(self) -> str:
        return str(self.manifest["model"]["config_hash"])

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.manifest["methods"])


def is_results_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory with a promptlit explain manifest."""
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def _prediction_from_json(text: str | None) -> Any:
    if text is None:
        return None
    p = json.loads(text)
    for key in ("prompt_embedding", "response_embedding"):
        if key in p and p[key] is not None:
            p[key] = np.asarray(p[key], np.float32)
    if p.get("response_top_tokens") is not None:
        p["response_top_tokens"] = [[(str(t), float(s)) for t, s in row]
                                    for row in p["response_top_tokens"]]
    return p


def _salience_from_row(row: Mapping[str, Any], methods: Sequence[str]) -> Any:
    from promptlit.salience.kernels import SIGNED
    from promptlit.salience.result import SequenceSalience

    if row.get("text") is None:
        return None
    n = len(row["tokens"])
    t = n - int(row["num_prompt_tokens"])
    return SequenceSalience(
        text=row["text"], prompt_length=int(row["prompt_length"]), tokens=list(row["tokens"]),
        offsets=np.asarray(row["offsets"], np.int64).reshape(-1, 2),
        num_prompt_tokens=int(row["num_prompt_tokens"]),
        matrices={m: np.asarray(row[f"matrix_{m}"], np.float32).reshape(t, n) for m in methods},
        signed={m: SIGNED[m] for m in methods},
        metadata=json.loads(row["salience_metadata"] or "{}"),
        template_mask=np.asarray(row["template_mask"], bool))


def read_table(path: str | os.PathLike[str]) -> Any:
    """Every row of a complete results directory as one `pyarrow.Table`, in dataset order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(path).expanduser()
    manifest = read_manifest(out)
    if manifest is None:
        raise ExplainError(f"{out}: no {MANIFEST}; this is not the output of promptlit explain. "
                           "Fix: give the --out directory of an explain run")
    if manifest.get("status") != "complete":
        have = sum((out / p).is_file() for p in manifest.get("parts", []))
        raise ExplainError(f"{out}: the explain run is not finished ({have} of "
                           f"{len(manifest.get('parts', []))} parts written). Fix: rerun the "
                           "same promptlit explain command; it resumes where it stopped")
    tables = []
    for name in manifest["parts"]:
        part = out / name
        if not part.is_file():
            raise ExplainError(f"{part}: missing, though {MANIFEST} lists it. Fix: rerun the "
                               "explain command that wrote this directory")
        table = pq.read_table(part)
        tables.append(table.replace_schema_metadata(None))
    table = pa.concat_tables(tables)
    return table.take(pa.compute.sort_indices(table, [("index", "ascending")]))


def load_results(path: str | os.PathLike[str], *, name: str | None = None,
                 max_examples: int | None = None) -> Any:
    """The examples of a results directory as a `Dataset`, with the stored results attached
    (``dataset.stored_results``, a `StoredResults`); a `Workbench` given the dataset serves
    the stored responses and salience without computing them (`seed_workbench`)."""
    from promptlit.api.dataset import Dataset

    out = Path(path).expanduser()
    table = read_table(out)
    manifest = read_manifest(out)
    assert manifest is not None
    methods = tuple(manifest["methods"])
    if max_examples is not None:
        table = table.slice(0, int(max_examples))
    rows = table.to_pylist()
    examples = [json.loads(r["example"]) for r in rows]
    spec = types.spec_from_json(manifest["dataset"].get("spec") or {}) or None
    ds = Dataset(examples, spec=spec, description=f"{name or out.name}: promptlit explain "
                                                  f"results of {manifest['model']['handle']}",
                 source=str(out))
    ds.stored_results = StoredResults(  # type: ignore[attr-defined]
        manifest=manifest, responses=tuple(r["response"] for r in rows),
        predictions=tuple(_prediction_from_json(r["prediction"]) for r in rows),
        salience=tuple(_salience_from_row(r, methods) for r in rows))
    return ds


def seed_workbench(wb: Any, dataset: str) -> list[str]:
    """Serves a results dataset's stored predictions and salience from ``wb``'s caches, for
    every loaded model with the configuration that computed them; returns those models' names.

    Salience is stored under the keys `Workbench.salience` uses for the stored methods, for
    the UI's matrix methods (Grad L2 + Grad·Input) and for each method alone.
    """
    ds = wb.datasets[dataset]
    results: StoredResults | None = getattr(ds, "stored_results", None)
    if results is None:
        return []
    seeded = []
    for name, model in wb.models.items():
        if getattr(model, "config_hash", None) != results.model_config_hash:
            continue
        examples = list(ds.examples)
        preds = [(ex, p) for ex, p in zip(examples, results.predictions, strict=False)
                 if p is not None]
        if preds:
            wb.add_predictions(name, [ex for ex, _ in preds], [p for _, p in preds])
        ig_steps = (results.manifest.get("config") or {}).get("ig_steps") or 16
        for ex, response, sal in zip(examples, results.responses, results.salience,
                                     strict=False):  # a Workbench may keep the first N only
            if sal is None:
                continue
            for subset in _method_subsets(results.methods):
                wb.add_salience(name, ex, _restrict(sal, subset), response=response,
                                methods=subset, ig_steps=int(ig_steps))
        seeded.append(name)
    if not seeded:
        logger.warning(
            "dataset %r holds stored results of model %s (config hash %s), but no loaded model "
            "has that configuration (%s): they are computed again on demand. Fix: load the "
            "model with the handle and generation flags of the explain run", dataset,
            results.manifest["model"]["handle"], results.model_config_hash,
            ", ".join(f"{n}: {getattr(m, 'config_hash', '?')}" for n, m in wb.models.items())
            or "no models")
    else:
        logger.info("dataset %r: stored results served for model(s) %s", dataset, seeded)
    return seeded


def _method_subsets(methods: Sequence[str]) -> list[tuple[str, ...]]:
    subsets = [tuple(methods)]
    matrix = tuple(m for m in DEFAULT_METHODS if m in methods)
    if len(matrix) == len(DEFAULT_METHODS):
        subsets.append(matrix)
    subsets += [(m,) for m in methods]
    return list(dict.fromkeys(subsets))


def _restrict(sal: Any, methods: Sequence[str]) -> Any:
    """``sal`` with only ``methods`` (as `KerasCausalLM.salience` would have returned it)."""
    if tuple(sal.matrices) == tuple(methods):
        return sal
    meta = dict(sal.metadata)
    meta["methods"] = list(methods)
    if "integrated_gradients" not in methods:
        meta.pop("settings", None)
    return dataclasses.replace(sal, matrices={m: sal.matrices[m] for m in methods},
                               signed={m: sal.signed[m] for m in methods}, metadata=meta)
