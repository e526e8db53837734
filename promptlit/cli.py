"""The `promptlit` command: serve the workbench, validate data and models, print salience.

    promptlit serve --models tiny:presets/tiny_lm --datasets sample_prompts --port 5432
    promptlit serve --demo classification     # breast cancer + sentiment classifiers, offline
    promptlit validate --datasets mine:data.jsonl --validate all      # exit 1 on problems
    promptlit salience --example 0 --method grad_l2 --granularity words
    promptlit salience --example 0 --segment-sep '^Taste-likes:'    # blocks at a separator regex
    promptlit compare --example 0 --example 1 --granularity few-shot # two prompt versions
    promptlit explain --models tiny:presets/tiny_lm --datasets sample_prompts --out runs/a
    python -m promptlit ...                                          # the same

`promptlit` with no subcommand is `promptlit serve`. Models are `NAME:HANDLE` (the handle is a
local preset directory, a keras-hub preset name, `hf://org/model`, `kaggle://...`; only the first
':' separates the name, and a bare handle is named after its last path component). Datasets are
`NAME` (built-in, see `promptlit.data.known_datasets()`) or `NAME:PATH` (.jsonl / .csv / .tsv).

Bad input is one `error: ...` line naming what was wrong and how to fix it: exit status 2 for a
malformed command line, 1 for anything found later (a missing file, a busy port, a broken cache,
a prompt too long for the model); ``--verbose`` adds the traceback. What can be checked cheaply
(flags, auth files, the port, the cache and save directories) is checked before any model loads.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlit import startup

if TYPE_CHECKING:
    from promptlit.api.dataset import OnError

DEFAULT_MODELS = "tiny:presets/tiny_lm"
DEFAULT_DATASETS = "sample_prompts"
SUBCOMMANDS = ("serve", "validate", "salience", "plan", "compare", "explain")
#: Flags of the command itself; any other first argument starts a `promptlit serve` command line.
TOP_LEVEL_FLAGS = ("-h", "--help", "-V", "--version")
AUTH_ENV = "PROMPTLIT_AUTH"
SAVES_DIRNAME = "promptlit-saves"

logger = logging.getLogger("promptlit")


class SpecError(ValueError):
    """A malformed --models / --datasets / --auth value."""


##
# Parsing helpers


def _name_from_handle(handle: str) -> str:
    """`hf://org/gemma-2b` -> `gemma-2b`; `presets/tiny_lm/` -> `tiny_lm`."""
    tail = handle.split("://", 1)[-1].rstrip("/\\")
    name = tail.replace("\\", "/").rsplit("/", 1)[-1]
    return name or handle


def parse_model_specs(specs: str) -> dict[str, str]:
    """Parses "a:h1,b:h2" into {name: handle}, in order.

    Only the first ':' splits name from handle, so `g:hf://org/x` is {"g": "hf://org/x"}; an
    item whose first ':' starts a `://` (`hf://org/x`, `kaggle://...`) or that has no ':' at all
    is a bare handle, named after its last path component.

    Raises:
      SpecError: for empty items, empty names/handles, or duplicate names.
    """
    out: dict[str, str] = {}
    for raw in specs.split(","):
        item = raw.strip()
        if not item:
            raise SpecError(f"empty model in {specs!r}; write NAME:HANDLE[,NAME:HANDLE...]")
        name, sep, handle = item.partition(":")
        if not sep or handle.startswith("//"):
            name, handle = _name_from_handle(item), item
        name, handle = name.strip(), handle.strip()
        if not name or not handle:
            raise SpecError(f"bad model {item!r}: write NAME:HANDLE, e.g. tiny:presets/tiny_lm")
        if name in out:
            raise SpecError(f"model name {name!r} is given twice in {specs!r}; names must be unique")
        out[name] = handle
    return out


def parse_dataset_specs(specs: str) -> dict[str, str]:
    """Parses "a,b:path" into {name: name-or-path} (see `promptlit.data.parse_dataset_specs`)."""
    from promptlit import data

    try:
        return data.parse_dataset_specs(specs)
    except ValueError as e:
        raise SpecError(str(e)) from e


def parse_auth(value: str | os.PathLike | None, label: str = "--auth"
               ) -> list[tuple[str, str]] | None:
    """`user:pass` or a file of `user:pass` lines -> [(user, pass), ...]; None when not given.

    The same rules as `promptlit.server.parse_auth` (a value whose user part looks like a path
    is a file, which must exist); a malformed entry is a `SpecError` naming the file and line
    (or ``label``).
    """
    from promptlit.server import parse_auth as parse

    try:
        return parse(value, label=label)
    except ValueError as e:
        raise SpecError(str(e)) from None


def resolve_auth(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    """The login of `serve`: ``--auth``, else ``--auth-file``, else ``$PROMPTLIT_AUTH``.

    ``--auth USER:PASS`` shows the password to everyone who can list processes; ``--auth-file``
    and the environment variable do not.
    """
    auth, auth_file = getattr(args, "auth", None), getattr(args, "auth_file", None)
    if auth and auth_file:
        raise SpecError("give --auth or --auth-file, not both")
    if auth_file:
        return parse_auth(Path(auth_file), "--auth-file")
    if auth:
        return parse_auth(auth, "--auth")
    return parse_auth(os.environ.get(AUTH_ENV) or None, AUTH_ENV)


def request_limits(args: argparse.Namespace) -> Any:
    """The `promptlit.ui.limits.RequestLimits` of the limit flags (defaults where not given)."""
    from promptlit.ui.limits import RequestLimits

    given = {name: getattr(args, name) for name in LIMIT_FLAGS
             if getattr(args, name, None) is not None}
    return RequestLimits(**given)


def resolve_save_dir(args: argparse.Namespace) -> Path | None:
    """Where the page may save session examples, as an absolute path; None: saving is off.

    Off in ``--demo-mode`` and with ``--no-save``; else ``--save-dir``, or ``promptlit-saves/``
    under ``--cache-dir`` when one is given, else under the working directory. The directory is
    created when the page first saves.

    Raises:
      SpecError: ``--save-dir`` with ``--demo-mode``, or the directory exists as a file.
    """
    if getattr(args, "demo_mode", False):
        if getattr(args, "save_dir", None):
            raise SpecError("--save-dir: --demo-mode never saves; drop --save-dir or --demo-mode")
        return None
    if getattr(args, "no_save", False):
        return None
    if getattr(args, "save_dir", None):
        path, source = Path(args.save_dir).expanduser(), "--save-dir"
    elif getattr(args, "cache_dir", None):
        path = Path(args.cache_dir).expanduser() / SAVES_DIRNAME
        source = f"the save directory (default: {SAVES_DIRNAME}/ under --cache-dir)"
    else:
        path = Path(SAVES_DIRNAME)
        source = f"the save directory (default: {SAVES_DIRNAME}/ in the working directory)"
    path = Path(os.path.abspath(path))
    if path.exists() and not path.is_dir():
        raise SpecError(f"{source} {path} is a file, not a directory. Fix: --save-dir DIR for "
                        "another directory (created when the page first saves), or --no-save")
    return path


def check_cache_dir(args: argparse.Namespace) -> None:
    """Checks --cache-dir (a writable directory of readable SQLite files) before loading
    anything; ``--reset-cache`` moves unreadable files aside.

    Raises:
      CacheError: with the path and the fix (``--reset-cache`` or the exact ``mv``).
    """
    from promptlit.lib.caching import CacheError
    from promptlit.lib.caching import check_cache_dir as check

    if not args.cache_dir:
        return
    try:
        moved = check(args.cache_dir, reset=args.reset_cache, label="--cache-dir")
    except CacheError as e:
        if e.unreadable:
            raise CacheError(f"{e} (or rerun with --reset-cache, which moves unreadable cache "
                             "files aside)", e.unreadable) from None
        raise
    for old, new in moved:
        print(f"note: {old} was not a readable cache file; moved it aside to {new}",
              file=sys.stderr)


##
# Building the workbench


def _default_components() -> dict[str, dict[str, Any]]:
    """Every built-in interpreter, generator and metric that imports in this install."""
    from promptlit.components.defaults import default_components

    return default_components()


def load_models(specs: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Loads every model of a --models value; raises `LoadError` on the first failure.

    `options`: generation settings for the causal LMs (`generation_options`), overriding a
    preset's own ``promptlit_generation.json``.
    """
    from promptlit.api.model import Model
    from promptlit.workbench import LoadError, resolve_model

    models: dict[str, Model] = {}
    for name, handle in parse_model_specs(specs).items():
        try:
            models[name] = resolve_model(handle, name, **(options or {}))
        except Exception as e:
            raise LoadError(f"could not load model {name!r} from {handle!r}: "
                            f"{type(e).__name__}: {e}") from e
    return models


def load_datasets(specs: str, *, on_error: OnError = "raise", max_examples: int | None = None
                  ) -> dict[str, Any]:
    """Loads every dataset of a --datasets value (raises `DataError` with all problems)."""
    from promptlit import data

    return {name: data.load_path(data.resolve(name, target), name=name, on_error=on_error,
                                 max_examples=max_examples)
            for name, target in parse_dataset_specs(specs).items()}


def build_workbench(args: argparse.Namespace, *, validate: str | None = None) -> Any:
    """The Workbench for parsed arguments (models, datasets, default components, layouts)."""
    from promptlit.api import layout
    from promptlit.workbench import Workbench

    datasets = load_datasets(args.datasets, on_error=args.on_error,
                             max_examples=args.max_examples)
    models = load_models(args.models, model_options(args))
    components = _default_components()
    return Workbench(models, datasets, interpreters=components["interpreters"],
                     generators=components["generators"], metrics=components["metrics"],
                     layouts=layout.all_layouts(),
                     default_layout=getattr(args, "layout", None), cache_dir=args.cache_dir,
                     validate=validate, max_examples=args.max_examples)


##
# Subcommands


def _cmd_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from promptlit import server

    try:
        auth = resolve_auth(args)
        server.check_exposure(args.host, auth=bool(auth), demo_mode=args.demo_mode,
                              allow_public=args.allow_public, share=args.share)
        save_dir = resolve_save_dir(args)
    except ValueError as e:
        parser.error(str(e))
    limits = request_limits(args)
    server.check_port(args.host, args.port)  # a busy port fails now, not after the models load
    startup.phase("importing JAX, Keras and Gradio")
    with startup.filtered_stderr():  # TensorFlow / absl / sentencepiece start-up noise
        startup.import_backends()
        startup.phase("loading " + ", ".join(
            [f"model {n} ({h})" for n, h in parse_model_specs(args.models).items()]
            + [f"dataset {n}" for n in parse_dataset_specs(args.datasets)]))
        wb = build_workbench(args, validate=args.validate)
    for p in wb.problems:
        print(f"warning: {p}", file=sys.stderr)
    startup.phase("building the page")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", server.ExposureWarning)  # serve() prints them itself
        server.serve(wb, host=args.host, port=args.port, share=args.share, auth=auth,
                     page_title=args.page_title, demo_mode=args.demo_mode,
                     default_layout=args.layout, open_browser=not args.no_browser,
                     allow_public=args.allow_public, limits=limits, save_dir=save_dir,
                     warmup=not args.no_warmup)
    return 0


def _cmd_validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from promptlit.lib.validation import DataError, Problem
    from promptlit.workbench import LoadError, Workbench

    problems: list[Problem] = []
    datasets: dict[str, Any] = {}
    from promptlit import data

    for name, target in parse_dataset_specs(args.datasets).items():
        try:
            datasets[name] = data.load_path(data.resolve(name, target), name=name,
                                            on_error="skip", max_examples=args.max_examples)
            problems += datasets[name].problems
        except DataError as e:
            problems += e.problems
    try:
        models = load_models(args.models, generation_options(args))
    except LoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    wb = Workbench(models, datasets, cache_dir=args.cache_dir, max_examples=args.max_examples)
    problems += wb.validate(args.validate or "first")
    for name in wb.datasets:
        if not wb.compatible_models(name):
            problems.append(Problem(
                f"no loaded model can read this dataset (models: {sorted(wb.models)})",
                source=name, severity="warning"))
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(p)
    summary = (f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s) in "
               f"{len(wb.datasets)} dataset(s) and {len(wb.models)} model(s)")
    print(("FAILED: " if errors else "OK: ") + summary)
    return 1 if errors else 0


def _granularity(args: argparse.Namespace, parser: argparse.ArgumentParser,
                 default: str) -> str:
    """The granularity name the flags ask for: ``--segment-sep`` alone means "blocks"."""
    granularity = args.granularity or ("blocks" if args.segment_sep else default)
    if granularity == "blocks" and not args.segment_sep:
        parser.error("--granularity blocks splits the prompt at a separator: add "
                     "--segment-sep REGEX (e.g. --segment-sep '^## ')")
    if args.segment_sep and granularity != "blocks":
        parser.error(f"--segment-sep makes blocks, but --granularity is {granularity}; drop one "
                     "(or say --granularity blocks)")
    return granularity


def _pick_example(ref: str, rows: list[tuple[str, dict]], dataset: str, flag: str,
                  parser: argparse.ArgumentParser) -> tuple[int, dict]:
    """``(index, example)`` for ``--example REF``: a row number, or an example id (or a unique
    prefix of one, at least 6 characters)."""
    if ref.isdigit():
        i = int(ref)
        if not 0 <= i < len(rows):
            parser.error(f"{flag} {i} is out of range: {dataset} has {len(rows)} examples "
                         f"(0..{len(rows) - 1})")
        return i, rows[i][1]
    hits = [i for i, (ex_id, _) in enumerate(rows) if len(ref) >= 6 and ex_id.startswith(ref)]
    if len(hits) != 1:
        parser.error(f"{flag} {ref!r} is not a row number of {dataset} (0..{len(rows) - 1}) "
                     f"nor {'a unique' if hits else 'an'} example id (prefix of 6+ characters)")
    return hits[0], rows[hits[0]][1]


def _cmd_salience(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from promptlit.lib.segmentation import resolve_granularity

    granularity = _granularity(args, parser, "words")
    wb = build_workbench(args)
    model = args.model or next(iter(wb.models))
    dataset = args.dataset or next(iter(wb.datasets))
    if model not in wb.models:
        parser.error(f"--model {model!r} is not loaded; models: {sorted(wb.models)}")
    if dataset not in wb.datasets:
        parser.error(f"--dataset {dataset!r} is not loaded; datasets: {sorted(wb.datasets)}")
    examples = wb.datasets[dataset].examples
    if not 0 <= args.example < len(examples):
        parser.error(f"--example {args.example} is out of range: {dataset} has "
                     f"{len(examples)} examples (0..{len(examples) - 1})")
    ex = examples[args.example]
    sal = wb.salience(model, ex, target=args.target, methods=(args.method,),
                      ig_steps=args.ig_steps)
    span = sal.for_span(0, sal.num_response_tokens, args.method)
    if args.contrast:
        # why the whole response (A) rather than --contrast (B): log p(A) - log p(B)
        sal = wb.salience(model, ex, target=args.target, methods=(args.method,),
                          ig_steps=args.ig_steps, contrast=args.contrast,
                          span=(0, sal.num_response_tokens))
        span = sal.for_span(0, sal.num_response_tokens, args.method)
    g = resolve_granularity(granularity, example=ex, separator=args.segment_sep)
    segments = list(span.aggregate(g, side="prompt"))
    top = sorted(segments, key=lambda s: abs(s.score), reverse=True)[: args.top]
    print(f"model: {model}   dataset: {dataset}   example: {args.example}   "
          f"method: {args.method}   granularity: {g}")
    print(f"prompt:   {_short(sal.prompt_text)}")
    print(f"{args.target + ':':<9} {_short(sal.response_text)}")
    if args.contrast:
        c = dict(sal.contrast or {})
        print(f"contrast: why the {args.target} rather than {_short(args.contrast)!r} "
              f"(log p(A) = {c.get('log_prob', float('nan')):.3f}, log p(B) = "
              f"{c.get('log_prob_contrast', float('nan')):.3f}); positive scores push toward "
              f"the {args.target}, negative toward the contrast")
    print(f"top {len(top)} salient prompt {granularity} (score = sum over response tokens):")
    for rank, seg in enumerate(top, 1):
        label = getattr(seg, "label", "")
        shown = f"{label}: {_short(seg.text, 60)!r}" if label else repr(_short(seg.text, 70))
        print(f"{rank:3d}. {seg.score:10.4f}  [{seg.start}:{seg.end}]  {shown}")
    return 0


def _cmd_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`promptlit compare --example A --example B`: two prompts' salience, aligned."""
    from promptlit import comparison

    refs = list(args.example or [])
    if len(refs) != 2:
        parser.error(f"give exactly two examples to compare: --example A --example B (got "
                     f"{len(refs)})")
    granularity = _granularity(args, parser, "sentences")
    wb = build_workbench(args)
    model = args.model or next(iter(wb.models))
    dataset = args.dataset or next(iter(wb.datasets))
    if model not in wb.models:
        parser.error(f"--model {model!r} is not loaded; models: {sorted(wb.models)}")
    if dataset not in wb.datasets:
        parser.error(f"--dataset {dataset!r} is not loaded; datasets: {sorted(wb.datasets)}")
    rows = [(ie["id"], ie["data"]) for ie in wb.datasets[dataset].indexed_examples]
    (i_a, ex_a), (i_b, ex_b) = (_pick_example(r, rows, dataset, "--example", parser)
                                for r in refs)
    if i_a == i_b:
        parser.error(f"--example {refs[0]} and --example {refs[1]} are the same example; "
                     "compare two different ones")
    result = comparison.compare_examples(
        wb, model, dataset, ex_a, ex_b, granularity=granularity, target=args.target,
        method=args.method, normalize=args.normalize, separator=args.segment_sep)
    table = result.segments
    if args.output:
        table.to_csv(args.output, index=False)
    unit = " (shares of each prompt's total)" if args.normalize else ""
    print(f"model: {model}   dataset: {dataset}   A: #{i_a}   B: #{i_b}   method: {args.method}"
          f"   granularity: {result.granularity}   explained: {args.target}")
    print(f"response A: {_short(result.text_a)}")
    print(f"response B: {_short(result.text_b)}")
    marks = {"equal": "=", "changed": "~", "deleted": "-", "inserted": "+"}

    def side(label: Any, text: Any) -> str:
        if comparison.missing(text):
            return ""
        return _short((f"{label}: " if not comparison.missing(label) and label else "")
                      + str(text), 44)

    print(f"aligned prompt segments{unit}:  (= equal  ~ changed  - only in A  + only in B)")
    for row in table.itertuples(index=False):
        a = "" if comparison.missing(row.score_a) else f"{row.score_a:9.4f}"
        b = "" if comparison.missing(row.score_b) else f"{row.score_b:9.4f}"
        print(f" {marks[row.op]} {a:>9}  {side(row.label_a, row.text_a):<44} | "
              f"{b:>9}  {side(row.label_b, row.text_b)}")
    ranked = comparison.changed_most(table, args.top)
    print(f"top {len(ranked)} changes in salience (delta = B - A):")
    for rank, row in enumerate(ranked.itertuples(index=False), 1):
        what = side(row.label_b, row.text_b) if row.op == "inserted" else side(
            row.label_a, row.text_a)
        print(f"{rank:3d}. {row.delta:+10.4f}  {marks[row.op]} {what}")
    tokens = result.responses
    shared = tokens[tokens["op"] == "equal"]
    deltas = shared["delta"].dropna()
    print(f"responses, token by token: {len(shared)} shared, "
          f"{int((tokens['op'] != 'equal').sum())} differ"
          + (f"; mean log-prob change of shared tokens {deltas.mean():+.4f} nats"
             if len(deltas) else ""))
    for row in tokens.itertuples(index=False):
        if row.op == "equal":
            d = "" if comparison.missing(row.delta) else f"{row.delta:+.4f}"
            print(f"   = {row.token_a!r:<20} {d}")
        else:
            a = "" if comparison.missing(row.token_a) else repr(row.token_a)
            b = "" if comparison.missing(row.token_b) else repr(row.token_b)
            print(f"   {marks[row.op]} {a:<20} -> {b}")
    if args.output:
        print(f"wrote the aligned table to {args.output}")
    return 0


def _cmd_plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`promptlit plan`: compile-only memory estimates per model and length, and what fits."""
    import time

    from promptlit.salience import memory

    specs = parse_model_specs(args.models)
    devices = list(args.device_memory or [])
    if not devices:
        free, source = memory.available_memory()
        devices = [free]
        print(f"note: no --device-memory; planning for this machine's free memory "
              f"({free / memory.GB:.1f} GB, {source})", file=sys.stderr)
    t0 = time.monotonic()

    def log(message: str) -> None:
        logger.info("%s (%.0f s)", message, time.monotonic() - t0)

    plans = [memory.plan_model(handle, length=n, targets=args.targets, dtype=args.dtype,
                               ig_steps=args.ig_steps, exact=args.exact, log=log)
             for handle in specs.values() for n in args.length]
    import jax

    print(f"promptlit plan: compile-only estimates from XLA's memory_analysis() on the "
          f"{jax.default_backend()} compiler (layers 'from 2+4': compiled at 2 and 4 layers, "
          "extrapolated); peak GB (2^30 bytes) = weights + activations; the span is the last T "
          "tokens.")
    print(memory.format_plans(plans, devices))
    print("cells: matrix targets per chunk / IG alphas per batch that fit "
          f"{memory.BUDGET_FRACTION:.0%} of (device - weights); '-': not even 1; 'no': the "
          "weights plus a span gradient do not fit.")
    return 0


def _short(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


##
# Argument parser


def _add_common(p: argparse.ArgumentParser, top_k_flag: str = "--top-k") -> None:
    p.add_argument("--models", default=DEFAULT_MODELS, metavar="NAME:HANDLE[,...]",
                   help=f"models to load (default: {DEFAULT_MODELS}, the repo's tiny LM)")
    p.add_argument("--datasets", default=DEFAULT_DATASETS, metavar="NAME[:PATH][,...]",
                   help=f"datasets: built-in names or NAME:PATH to .jsonl/.csv/.tsv "
                        f"(default: {DEFAULT_DATASETS})")
    p.add_argument("--max-examples", type=_positive_int, default=None, metavar="N",
                   help="keep at most N examples per dataset")
    p.add_argument("--cache-dir", default=os.environ.get("PROMPTLIT_CACHE_DIR"), metavar="DIR",
                   help="persist predictions and salience in SQLite files here "
                        "(default: $PROMPTLIT_CACHE_DIR, else memory only)")
    p.add_argument("--reset-cache", action="store_true",
                   help="move unreadable cache files in --cache-dir aside (as "
                        "NAME.corrupt-TIMESTAMP) and start them afresh")
    p.add_argument("--on-error", choices=("raise", "skip"), default="skip",
                   help="bad dataset lines: skip them with a warning (default) or stop")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log debug messages; show the traceback of an error")
    _add_generation(p, top_k_flag)


def _memory_size(text: str) -> int:
    from promptlit.salience.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_plan(plan: argparse.ArgumentParser) -> None:
    plan.set_defaults(subparser=plan, datasets=DEFAULT_DATASETS, cache_dir=None,
                      reset_cache=False)
    plan.add_argument("--models", default=DEFAULT_MODELS, metavar="NAME:HANDLE[,...]",
                      help="models to plan for: keras-hub preset names known offline (gemma_2b, "
                           "gemma2_2b/9b/27b, llama2_7b, llama3_8b, llama3.2_1b/3b, with any "
                           "_instruct/_en spelling) or local preset directories "
                           f"(default: {DEFAULT_MODELS})")
    plan.add_argument("--length", type=_positive_int, nargs="+", default=[1024], metavar="N",
                      help="prompt + response tokens; several give one row each (default 1024)")
    plan.add_argument("--targets", type=_positive_int, default=64, metavar="T",
                      help="response tokens explained (matrix rows, span length; default 64)")
    plan.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                      help="weights and compute dtype (default float32, as models load)")
    plan.add_argument("--device-memory", type=_memory_size, nargs="+", default=None,
                      metavar="SIZE", help="device memory to plan for, e.g. 24GB (several: one "
                                           "column each; default: this machine's free memory)")
    plan.add_argument("--ig-steps", type=_positive_int, default=16, help="IG steps (default 16)")
    plan.add_argument("--exact", action="store_true",
                      help="compile at the model's full depth (minutes per model) instead of at "
                           "2 and 4 layers, extrapolated")
    plan.add_argument("-v", "--verbose", action="store_true",
                      help="log each compile; show the traceback of an error")


def _add_generation(p: argparse.ArgumentParser, top_k_flag: str = "--top-k") -> None:
    g = p.add_argument_group("generation (causal LMs; overrides a preset's "
                             "promptlit_generation.json)")
    g.add_argument("--max-new-tokens", type=_positive_int, default=None, metavar="N",
                   help="longest response in tokens (default 64)")
    g.add_argument("--max-length", type=_positive_int, default=None, metavar="N",
                   help="longest prompt + response in tokens (default 1024, capped by the model)")
    g.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                   help="weights and compute dtype (default float32: precise gradients; "
                        "bfloat16 halves memory)")
    g.add_argument("--sampler", choices=("greedy", "top_k", "top_p"), default=None,
                   help="decoding (default greedy)")
    g.add_argument("--temperature", type=_positive_float, default=None, metavar="T",
                   help="softmax temperature for top_k / top_p (default 1.0)")
    g.add_argument(top_k_flag, dest="top_k", type=_positive_int, default=None, metavar="K",
                   help="k for top_k")
    g.add_argument("--top-p", type=_probability, default=None, metavar="P", help="p for top_p")
    g.add_argument("--seed", type=int, default=None, help="sampler seed (default: random)")
    g.add_argument("--stop", action="append", default=None, metavar="SEQ", type=_unescape,
                   help="end responses where SEQ begins; repeatable; escapes like \\n work "
                        "(e.g. --stop '\\n\\n' stops at the first blank line)")
    g.add_argument("--chat-template", default=None, metavar="T", type=_chat_template_arg,
                   help="wrap prompts in a chat format: auto (default: the checkpoint's own "
                        "template, else the built-in one of instruct presets, else none), none, "
                        "a built-in name (gemma, llama3, mistral, chatml/qwen, transcript) or a "
                        "path to a .jinja file, tokenizer_config.json or checkpoint directory")


def generation_options(args: argparse.Namespace) -> dict[str, Any]:
    """The generation flags that were given, as `KerasCausalLM` arguments."""
    names = {"max_new_tokens": "max_new_tokens", "max_length": "max_length", "dtype": "dtype",
             "sampler": "sampler",
             "temperature": "temperature", "top_k": "top_k", "top_p": "top_p", "seed": "seed"}
    options = {key: getattr(args, attr) for key, attr in names.items()
               if getattr(args, attr, None) is not None}
    if getattr(args, "stop", None):
        options["stop_sequences"] = list(args.stop)
    if getattr(args, "chat_template", None) is not None:
        options["chat_template"] = args.chat_template
    return options


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """`generation_options` plus, for commands with ``--mesh`` (serve, explain), the device mesh
    (a `promptlit.distributed.MeshSpec`; default: every device on the data axis, which on one
    device is no mesh at all)."""
    options = generation_options(args)
    if getattr(args, "mesh", None) is not None:
        options["mesh"] = args.mesh
    return options


def _chat_template_arg(value: str) -> str:
    """A --chat-template value: auto, none, a built-in name, or an existing path."""
    from promptlit.models import chat

    text = value.strip()
    if text.lower() in chat.EXAMPLE_CHOICES or Path(text).expanduser().exists():
        return text
    raise argparse.ArgumentTypeError(
        f"{value!r} is not auto, none, a built-in template ({', '.join(chat.BUILTIN_TEMPLATES)}, "
        "or the aliases qwen, gemma2, gemma3, llama) nor an existing file or directory; give "
        "one of those, e.g. --chat-template gemma or --chat-template path/to/template.jinja")


def _unescape(text: str) -> str:
    """`\\n`, `\\t` and other backslash escapes typed on a command line -> the characters."""
    try:
        value = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise argparse.ArgumentTypeError(f"bad escape in {text!r} ({e.reason}); write e.g. "
                                         "'\\n\\n' for a blank line") from None
    if not value:
        raise argparse.ArgumentTypeError("a stop sequence cannot be empty")
    return value


def _parse(text: str, kind: type[int] | type[float], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _parse(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _port(text: str) -> int:
    value = _parse(text, int, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 (any free port) to 65535, got {value}")
    return value


#: The `RequestLimits` fields `serve` has flags for (``--max-ig-steps`` ...).
LIMIT_FLAGS = {
    "max_ig_steps": (_positive_int, "N", "Integrated Gradients steps one request may ask for"),
    "max_prompt_chars": (_positive_int, "N", "characters of a prompt typed or sent to the API"),
    "max_queue": (_positive_int, "N", "requests that may wait for the model; more are told "
                                      "the server is busy, retry"),
    "max_upload_mb": (_positive_float, "MB", "largest file the server accepts as an upload"),
}


def _add_serve(serve: argparse.ArgumentParser) -> None:
    from promptlit.distributed import add_mesh_argument
    from promptlit.ui.limits import RequestLimits

    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0: "
                            "every interface, which warns without a login)")
    serve.add_argument("--port", type=_port, default=5432,
                       help="port (default 5432; 0: any free port)")
    serve.add_argument("--share", action="store_true", help="create a public Gradio share link")
    login = serve.add_argument_group(
        "login", f"require a login: --auth-file FILE or ${AUTH_ENV} (USER:PASS or a file path) "
                 "keep the password out of the process list; --auth USER:PASS does not")
    login.add_argument("--auth", default=None, metavar="USER:PASS|FILE",
                       help="USER:PASS (visible to other users in the process list), or a file "
                            "of USER:PASS lines (a value with '/' before its first ':' is a "
                            "file, which must exist)")
    login.add_argument("--auth-file", default=None, metavar="FILE",
                       help="a file of USER:PASS lines, one per user ('#' comments)")
    login.add_argument("--allow-public", action="store_true",
                       help="serve --demo-mode on a non-loopback --host, or make a --share "
                            "link, without a login (both refused otherwise), and do not warn "
                            "about an exposed --host")
    serve.add_argument("--layout", default=None, metavar="NAME",
                       help="the layout to open with (default, lm, classification, simple)")
    serve.add_argument("--validate", choices=("first", "sample", "all"), default=None,
                       help="check datasets and models at start-up; problems are printed")
    serve.add_argument("--demo-mode", action="store_true",
                       help="read-only demo: hide loading models/datasets and saving")
    saving = serve.add_mutually_exclusive_group()
    saving.add_argument("--save-dir", default=None, metavar="DIR",
                        help=f"where the page may save session examples (default: "
                             f"{SAVES_DIRNAME}/ under --cache-dir when given, else in the working "
                             "directory; always off with --demo-mode)")
    saving.add_argument("--no-save", action="store_true",
                        help="the page may not write files on the server")
    serve.add_argument("--demo", choices=("classification", "regression"), default=None,
                       help="serve a shipped demo instead of --models/--datasets: "
                            "classification (breast cancer, sentiment) or regression "
                            "(diabetes, sentiment confidence)")
    serve.add_argument("--page-title", default="promptlit", metavar="T", help="browser tab title")
    add_mesh_argument(serve)
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    serve.add_argument("--no-warmup", action="store_true",
                       help="do not explain the datasets' first examples in the background "
                            "once serving (the warm-up compiles the kernels the first clicks "
                            "need and caches their results; it never blocks the page)")
    limits = serve.add_argument_group("request limits (what one browser or API request may ask "
                                      "for)")
    defaults = RequestLimits()
    for name, (kind, metavar, text) in LIMIT_FLAGS.items():
        limits.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            metavar=metavar,
                            help=f"{text} (default {getattr(defaults, name):g})")


def _granularities() -> tuple[str, ...]:
    from promptlit.lib.segmentation import ALL_GRANULARITIES

    return ALL_GRANULARITIES


def _segment_sep(text: str) -> str:
    """A ``--segment-sep`` regex, checked (length, syntax) before anything loads."""
    from promptlit.lib.segmentation import SeparatorSegmentation

    try:
        SeparatorSegmentation(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_segment_sep(p: argparse.ArgumentParser) -> None:
    p.add_argument("--segment-sep", default=None, metavar="REGEX", type=_segment_sep,
                   help="split the prompt into blocks where this regular expression matches "
                        "(multiline: ^ is a line start), e.g. '^## '; each block is a segment "
                        "('block 1', 'block 2', ...)")


class _VersionAction(argparse.Action):
    """``--version``: prints `promptlit.versions.version_text` (package metadata only, no heavy
    import) and exits 0."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from promptlit.versions import version_text

        print(version_text())
        parser.exit()


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the `promptlit` command."""
    parser = argparse.ArgumentParser(
        prog="promptlit", description="Prompt-debugging workbench: sequence salience for LMs.")
    parser.add_argument("-V", "--version", action=_VersionAction,
                        help="print the versions of promptlit, Python, JAX, Keras, keras-hub, "
                             "Gradio and NumPy, and exit")
    sub = parser.add_subparsers(dest="command",
                                metavar="{serve,validate,salience,plan,compare,explain}")

    serve = sub.add_parser("serve", help="start the web UI (the default command)")
    _add_common(serve)
    serve.set_defaults(subparser=serve)
    _add_serve(serve)

    validate = sub.add_parser("validate", help="check datasets and models; exit 1 on problems")
    _add_common(validate)
    validate.set_defaults(subparser=validate)
    validate.add_argument("--validate", choices=("first", "sample", "all"), default="all",
                          help="which examples to check (default: all)")

    sal = sub.add_parser("salience", help="print the most salient prompt segments of an example")
    _add_common(sal)
    sal.set_defaults(subparser=sal)
    sal.add_argument("--model", default=None, help="model name (default: the first)")
    sal.add_argument("--dataset", default=None, help="dataset name (default: the first)")
    sal.add_argument("--example", type=int, default=0, help="example index (default 0)")
    sal.add_argument("--method", default="grad_l2",
                     choices=("grad_l2", "grad_dot_input", "integrated_gradients"))
    sal.add_argument("--granularity", default=None, choices=_granularities(),
                     help="how prompt scores are summed (default: words; 'blocks' with "
                          "--segment-sep)")
    _add_segment_sep(sal)
    sal.add_argument("--target", default="response", choices=("response", "target"),
                     help="explain the model's response or the example's target")
    sal.add_argument("--top", type=_positive_int, default=10, help="segments to print")
    sal.add_argument("--contrast", default=None, metavar="TEXT", type=_unescape,
                     help="explain why the response rather than TEXT (contrastive salience: "
                          "log p(response) - log p(TEXT))")
    sal.add_argument("--ig-steps", type=_positive_int, default=16, help="Integrated Gradients steps")

    cmp = sub.add_parser(
        "compare", help="compare two versions of a prompt: their salience aligned segment by "
                        "segment, and their responses token by token")
    _add_common(cmp)
    cmp.set_defaults(subparser=cmp)
    cmp.add_argument("--example", action="append", metavar="N|ID",
                     help="an example to compare (a row number or an example id); give it "
                          "twice: --example A --example B")
    cmp.add_argument("--model", default=None, help="model name (default: the first)")
    cmp.add_argument("--dataset", default=None, help="dataset name (default: the first)")
    cmp.add_argument("--method", default="grad_l2", choices=("grad_l2", "grad_dot_input"))
    cmp.add_argument("--granularity", default=None, choices=_granularities(),
                     help="how the prompts are split and aligned (default: sentences; "
                          "'blocks' with --segment-sep; 'segments': each example's own)")
    _add_segment_sep(cmp)
    cmp.add_argument("--target", default="response", choices=("response", "target", "same"),
                     help="explain each its own response (default), each its own target, or "
                          "both the same text (A's response)")
    cmp.add_argument("--normalize", action="store_true",
                     help="scores as shares of each prompt's total salience")
    cmp.add_argument("--top", type=_positive_int, default=10,
                     help="changes in salience to list (default 10)")
    cmp.add_argument("--output", default=None, metavar="FILE.csv",
                     help="also write the aligned table as CSV")

    explain = sub.add_parser(
        "explain", help="salience for every example of a dataset, batched, written as a "
                        "resumable Parquet dataset (loads back with --datasets NAME:DIR)")
    _add_common(explain, top_k_flag="--sampler-top-k")
    explain.set_defaults(subparser=explain)
    _add_explain(explain)

    plan = sub.add_parser(
        "plan", help="estimate memory (weights, activations, peak) and the chunk sizes salience "
                     "would use; compile-only, no weights loaded, offline for known presets")
    _add_plan(plan)
    return parser


def _add_explain(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR",
                   help="results directory (created; a rerun with the same flags resumes it)")
    p.add_argument("--methods", default="grad_l2,grad_dot_input", metavar="M[,M...]",
                   help="grad_l2, grad_dot_input, integrated_gradients (default: the first two)")
    p.add_argument("--target", default="response", choices=("response", "target"),
                   help="explain the model's responses (generated, batched) or the examples' "
                        "targets")
    p.add_argument("--granularities", default="words,sentences,lines", metavar="G[,G...]",
                   help="prompt granularities whose top segments are stored: tokens, words, "
                        "sentences, lines, paragraphs, turns, few-shot, segments "
                        "(default: words,sentences,lines)")
    p.add_argument("--top-k", dest="segments_top_k", type=_positive_int, default=10,
                   metavar="K", help="segments stored per granularity and method (default 10); "
                                     "the sampler's k is --sampler-top-k here")
    p.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                   help="examples per generation / salience call and per part file (default 8)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="explain only the first N examples")
    p.add_argument("--ig-steps", type=_positive_int, default=16,
                   help="Integrated Gradients steps (with --methods ...,integrated_gradients)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    hosts = p.add_argument_group(
        "several processes (hosts or GPUs); each computes its share of the parts")
    hosts.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="process 0's address (jax.distributed); default: "
                            "$JAX_COORDINATOR_ADDRESS or the cluster's (SLURM, TPU pod)")
    hosts.add_argument("--num-processes", type=_positive_int, default=None, metavar="P")
    hosts.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="this process's number, 0..P-1")
    hosts.add_argument("--distributed", action="store_true",
                       help="start jax.distributed with what the environment says (SLURM, "
                            "TPU pod, $JAX_COORDINATOR_ADDRESS ...), without the three flags")
    from promptlit.distributed import add_mesh_argument

    add_mesh_argument(p)


def _cmd_explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from promptlit import bulk

    try:
        methods = bulk.check_methods(args.methods)
        granularities = bulk.check_granularities(args.granularities)
    except bulk.ExplainError as e:
        parser.error(str(e))
    models = parse_model_specs(args.models)
    datasets = parse_dataset_specs(args.datasets)
    if len(models) != 1 or len(datasets) != 1:
        parser.error(f"explain takes one model and one dataset (got {len(models)} models, "
                     f"{len(datasets)} datasets); run it once per pair, each with its own --out")
    if args.process_id is not None and args.process_id < 0:
        parser.error(f"--process-id must be >= 0, got {args.process_id}")
    if (args.process_id is not None and args.num_processes is not None
            and args.process_id >= args.num_processes):
        parser.error(f"--process-id {args.process_id} must be below --num-processes "
                     f"{args.num_processes} (0..{args.num_processes - 1})")
    ((model_name, _),) = models.items()
    ((dataset_name, _),) = datasets.items()
    bulk.check_out_path(args.out)  # cheap checks first: no model is loaded yet
    data = load_datasets(args.datasets, on_error=args.on_error, max_examples=args.max_examples)
    bulk.check_examples(data[dataset_name], dataset_name, target=args.target, limit=args.limit)
    process_id, num_processes = 0, 1
    if args.distributed or any(v is not None for v in (args.coordinator, args.num_processes,
                                                       args.process_id)):
        process_id, num_processes = bulk.init_distributed(args.coordinator, args.num_processes,
                                                          args.process_id)
    model = load_models(args.models, model_options(args))[model_name]
    summary = bulk.explain(
        model, data[dataset_name], args.out, model_name=model_name, dataset_name=dataset_name,
        methods=methods, target=args.target, granularities=granularities,
        top_k=args.segments_top_k, batch_size=args.batch_size, limit=args.limit,
        ig_steps=args.ig_steps, process_id=process_id, num_processes=num_processes,
        show_progress=not args.no_progress)
    print(summary.line())
    return 0


def _apply_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """`--demo NAME`: the demo's models, datasets and (unless --layout is given) layout."""
    from promptlit.demos import DEMOS

    if args.models != DEFAULT_MODELS or args.datasets != DEFAULT_DATASETS:
        parser.error(f"--demo {args.demo} picks its own models and datasets; drop --models and "
                     "--datasets (or drop --demo)")
    demo = DEMOS[args.demo]
    args.models, args.datasets = demo["models"], demo["datasets"]
    args.layout = args.layout or demo["layout"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `promptlit` command; returns the exit status (0 ok, 1 problems, 2 usage).

    Run as the command (no ``argv``), it also turns on JAX's persistent compilation cache
    (`promptlit.startup.compilation_cache_dir`); called from Python, JAX is left as it is."""
    as_command = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in TOP_LEVEL_FLAGS):
        argv = ["serve", *argv]
    parser = make_parser()
    args = parser.parse_args(argv)
    sub: argparse.ArgumentParser = args.subparser
    startup.configure(verbose=args.verbose, cache_dir=getattr(args, "cache_dir", None),
                      compilation_cache=as_command)  # logging, JAX platform, known noise
    if getattr(args, "demo", None):
        _apply_demo(args, sub)
    if getattr(args, "layout", None):
        from promptlit.api import layout

        if args.layout not in layout.all_layouts():
            sub.error(f"--layout {args.layout!r} is not a layout; choose from "
                      f"{', '.join(sorted(layout.all_layouts()))}")
    for option in ("models", "datasets"):
        try:
            (parse_model_specs if option == "models" else parse_dataset_specs)(getattr(args, option))
        except SpecError as e:
            sub.error(f"--{option}: {e}")
    if args.reset_cache and not args.cache_dir:
        sub.error("--reset-cache needs --cache-dir DIR (or $PROMPTLIT_CACHE_DIR)")
    handlers = {"serve": _cmd_serve, "validate": _cmd_validate, "salience": _cmd_salience,
                "plan": _cmd_plan, "compare": _cmd_compare, "explain": _cmd_explain}
    try:
        check_cache_dir(args)
        return handlers[args.command](args, sub)
    except Exception as e:  # noqa: BLE001 - every error becomes one line (+ traceback: -v)
        return _report(e, verbose=args.verbose)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """The errors bad input causes (files, data, models, ports, caches): one line, no traceback."""
    from promptlit.lib.validation import DataError
    from promptlit.workbench import LoadError

    return (ValueError, KeyError, IndexError, OSError, DataError, LoadError)


def _report(e: BaseException, *, verbose: bool) -> int:
    """Prints ``error: ...`` for ``e`` (its traceback first under --verbose); returns 1."""
    if verbose:
        traceback.print_exception(e, file=sys.stderr)
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        message = e.args[0]  # str(KeyError) would add quotes
    else:
        message = str(e) or type(e).__name__
    if not isinstance(e, _expected_errors()):
        message = (f"unexpected {type(e).__name__}: {message}" +
                   ("" if verbose else " (rerun with --verbose for the traceback)"))
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
