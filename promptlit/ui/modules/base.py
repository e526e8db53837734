"""What every UI module shares: the build context, error guarding and example lookup.

A module is a function ``build(ctx) -> Module`` that draws its components inside the current
Gradio context and wires its own events. Modules talk to each other only through the session
state (`promptlit.ui.state.SessionState`) and `Context.refresh_outputs` / `Context.refresh`:
when the selected example, dataset or model changes, every module's ``refresh`` is called to
redraw from the state. Callbacks are thin and ask the `promptlit.workbench.Workbench`.

Every callback is wrapped by `guard`: an exception becomes a one-line message in the footer,
never a traceback on the page, and the other outputs are left as they were (``gr.skip()``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from promptlit.lib.cancel import Cancelled
from promptlit.lib.utils import example_id
from promptlit.ui import render
from promptlit.ui.limits import RequestLimits
from promptlit.ui.state import SessionState

logger = logging.getLogger("promptlit.ui")

JsonDict = dict[str, Any]
RefreshFn = Callable[[Any, SessionState], list[Any]]


def markdown(value: str = "", **kwargs: Any) -> gr.Markdown:
    """A ``gr.Markdown`` that shows any value that is not `promptlit.ui.render.Markdown` as
    inert text.

    Status and info lines interpolate dataset names, example text, slice names and URL
    parameters; a plain ``str`` reaching this component is escaped whole, so only Markdown the
    app built with `promptlit.ui.render.md` (which escapes its arguments) is ever formatted.
    Every Markdown line of the UI is made here. Its initial ``value`` is the app's own text.
    (The escaping is set on the instance: a ``gr.Markdown`` subclass would make Gradio write a
    ``.pyi`` stub beside this file at import time.)
    """
    component = gr.Markdown(render.Markdown(value), **kwargs)
    plain = component.postprocess

    def postprocess(v: Any) -> Any:
        return plain(str(render.as_markdown(v)) if isinstance(v, str) else v)

    component.postprocess = postprocess  # type: ignore[method-assign, assignment]
    return component


@dataclasses.dataclass
class Module:
    """A built module: its outer container (shown/hidden by layout) and its redraw hook.

    Attributes:
      name: the layout module name ("data_table", "lm_salience", ...).
      container: the gr.Column holding it (its visibility follows the layout).
      outputs: components ``refresh`` returns updates for, in order.
      refresh: ``(workbench, state) -> [update, ...]`` redraw after a selection change.
      wire: ``(ctx) -> None`` connects events that need other modules (called once all exist).
      controls: named components other code may set (e.g. "granularity" from a URL).
    """

    name: str
    container: Any
    outputs: list[Any] = dataclasses.field(default_factory=list)
    refresh: RefreshFn | None = None
    wire: Callable[[Context], None] | None = None
    controls: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Context:
    """Shared by the modules of one app: the workbench, session state and footer components,
    and what the server allows: request ``limits`` and the ``save_dir`` the page may write
    session examples into (None: the page writes nothing on the server)."""

    workbench: Any
    state: Any  # gr.State holding a SessionState
    footer: Any  # the status line (a `markdown` component: plain text unless `render.md`)
    demo_mode: bool = False
    limits: RequestLimits = dataclasses.field(default_factory=RequestLimits)
    save_dir: Path | None = None
    modules: dict[str, Module] = dataclasses.field(default_factory=dict)

    def register(self, module: Module) -> Module:
        """Adds a built module (so others' selection changes redraw it)."""
        self.modules[module.name] = module
        return module

    def refresh_outputs(self) -> list[Any]:
        """Every registered module's refresh outputs, in registration order."""
        out: list[Any] = []
        for m in self.modules.values():
            if m.refresh is not None:
                out += m.outputs
        return out

    def refresh(self, state: SessionState) -> list[Any]:
        """Updates for `refresh_outputs` (a module that fails shows its error, others go on)."""
        out: list[Any] = []
        for m in self.modules.values():
            if m.refresh is None:
                continue
            try:
                updates = list(m.refresh(self.workbench, state))
            except Exception as e:  # noqa: BLE001 - one module's failure must not blank others
                logger.warning("refresh of %s failed", m.name, exc_info=True)
                state.errors.append(f"{m.name}: {message(e).removeprefix('⚠ ')}")
                updates = [gr.skip()] * len(m.outputs)
            if len(updates) != len(m.outputs):
                raise RuntimeError(f"module {m.name} refresh returned {len(updates)} updates for "
                                   f"{len(m.outputs)} outputs")
            out += updates
        return out


def message(e: BaseException) -> str:
    """A one-line, plain-words description of an error for the footer."""
    text = str(e).strip() or type(e).__name__
    if isinstance(e, KeyError) and text.startswith(("'", '"')) and text.endswith(("'", '"')):
        text = text[1:-1]
    first = " ".join(text.split())
    if len(first) > 400:
        first = first[:399] + "…"
    return f"⚠ {first}"


def ok(text: str) -> str:
    """A footer message for a completed action."""
    return f"✓ {text}"


def guard(num_outputs: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wraps a callback whose LAST output is the footer: errors go there as one line.

    Problems a module met while redrawing (`Context.refresh`, kept in ``state.errors`` when the
    callback's first argument is the `SessionState`) replace the footer message too. On an
    exception the other ``num_outputs - 1`` outputs are ``gr.skip()`` (unchanged) and the
    full traceback goes to the server log only.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            state = args[0] if args and isinstance(args[0], SessionState) else None
            if state is not None:
                state.errors.clear()
            try:
                out = fn(*args, **kwargs)
            except Cancelled as e:
                logger.info("callback %s cancelled (%s); work stopped", fn.__name__, e)
                skips = [gr.skip()] * (num_outputs - 1)
                return (*skips, message(e)) if num_outputs > 1 else message(e)
            except Exception as e:  # noqa: BLE001 - the footer reports it
                logger.warning("callback %s failed", fn.__name__, exc_info=True)
                skips = [gr.skip()] * (num_outputs - 1)
                return (*skips, message(e)) if num_outputs > 1 else message(e)
            if state is not None and state.errors:
                text = "⚠ " + "; ".join(state.errors)
                state.errors.clear()
                if isinstance(out, tuple) and len(out) == num_outputs:
                    return (*out[:-1], text)
                if num_outputs == 1:
                    return text
            return out

        return inner

    return wrap


# -- examples ----------------------------------------------------------------------------------
def dataset_rows(workbench: Any, state: SessionState, dataset: str | None = None
                 ) -> list[tuple[str, JsonDict, bool]]:
    """``(id, example, added_in_session)`` for the dataset's examples then the session's."""
    name = dataset or state.dataset
    if not name or name not in workbench.datasets:
        return []
    ds = workbench.datasets[name]
    rows = [(ie["id"], ie["data"], False) for ie in ds.indexed_examples]
    seen = {r[0] for r in rows}
    for ex in state.added.get(name, []):
        i = example_id(ex)
        if i not in seen:
            rows.append((i, ex, True))
            seen.add(i)
    return rows


def find_example(workbench: Any, state: SessionState, ex_id: str | None) -> JsonDict | None:
    """The example with id ``ex_id`` in the current dataset or the session's added ones."""
    if not ex_id:
        return None
    for i, ex, _ in dataset_rows(workbench, state):
        if i == ex_id:
            return ex
    return None


def index_of(workbench: Any, state: SessionState, ex_id: str | None) -> int | None:
    """Row number of ``ex_id`` in `dataset_rows` (used in shareable links)."""
    for n, (i, _, _) in enumerate(dataset_rows(workbench, state)):
        if i == ex_id:
            return n
    return None


def primary_example(workbench: Any, state: SessionState) -> JsonDict | None:
    """The selected (primary) example, or None."""
    return find_example(workbench, state, state.primary_id)


def selected_examples(workbench: Any, state: SessionState) -> list[tuple[str, JsonDict]]:
    """All selected ``(id, example)`` pairs, in selection order (missing ids are skipped)."""
    rows = {i: ex for i, ex, _ in dataset_rows(workbench, state)}
    return [(i, rows[i]) for i in state.selected_ids if i in rows]


def lm_models(workbench: Any) -> list[str]:
    """Models that can explain a response (have a ``salience`` method)."""
    out = []
    for name, m in workbench.models.items():
        inner = m.unwrap() if callable(getattr(m, "unwrap", None)) else m
        if callable(getattr(m, "salience", None)) or callable(getattr(inner, "salience", None)):
            out.append(name)
    return out


def spec_fields(workbench: Any, dataset: str) -> list[str]:
    """The dataset's field names (its spec), or those of its first example."""
    if dataset not in workbench.datasets:
        return []
    ds = workbench.datasets[dataset]
    try:
        spec = ds.spec()
    except Exception:  # noqa: BLE001 - fall back to the data
        spec = {}
    if spec:
        return list(spec)
    exs = ds.examples
    return [k for k in (exs[0] if exs else {}) if not str(k).startswith("_")]


def short(text: Any, limit: int = 120) -> str:
    """One line, at most ``limit`` characters (for table cells and dropdown labels)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short_middle(text: Any, limit: int = 100) -> str:
    """One line of at most ``limit`` characters keeping the start and the (often telling) end,
    e.g. few-shot prompts that share their first lines."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    head = limit // 3
    return flat[:head] + " … " + flat[-(limit - head - 3):]


def check_selection(ctx: Context, state: SessionState, action: str) -> None:
    """Refuses to run a model on more selected examples than one request may
    (`RequestLimits.max_examples_per_request`): one person's "select all, generate" must not
    hold the model for everyone else."""
    n, most = len(state.selected_ids), ctx.limits.max_examples_per_request
    if n > most:
        raise ValueError(f"{n} examples are selected; this server {action} for at most {most} "
                         "at once. Select fewer (e.g. a page of the table or a slice)")


def client_gone() -> bool:
    """Whether the client of the Gradio event running in this thread cancelled it or went away.

    Gradio runs a callback in a worker thread and, on a cancel or a disconnect, only forgets the
    event (the thread would compute on, holding the model). The event's context (event id and
    queue) reaches the thread, so long computations ask this between pieces of work. Outside a
    queued event (a notebook, a direct call) it is always False.
    """
    try:
        from gradio.context import LocalContext

        blocks = LocalContext.blocks.get(None)
        event_id = LocalContext.event_id.get(None)
    except Exception:  # noqa: BLE001 - another gradio: never cancel by mistake
        return False
    queue = getattr(blocks, "_queue", None)
    jobs = getattr(queue, "active_jobs", None)
    if event_id is None or jobs is None:
        return False
    for job in jobs:
        for event in job or ():
            if getattr(event, "_id", None) == event_id:
                return not getattr(event, "alive", True)
    return True  # no longer an active job: cancelled


def check_client() -> None:
    """Raises `promptlit.lib.cancel.Cancelled` when `client_gone`."""
    if client_gone():
        raise Cancelled("the request was cancelled (the client cancelled it or went away)")


def progress_adapter(progress: Any = None) -> Callable[[float, str], None]:
    """Turns a ``gr.Progress`` (or nothing) into the Workbench's ``progress(fraction, message)``
    callable, which also stops the work (`check_client`) once the client cancelled or left:
    the Workbench and the model call it between pieces of work (the salience kernels' compiled
    calls: IG alpha pieces, groups of matrix rows). Fractions are clamped to [0, 1]; the page
    shows them once, on the footer (`show_progress_once`)."""

    def report(fraction: float, msg: str) -> None:
        check_client()
        if progress is None:
            return
        f = float(fraction)
        try:  # (a None fraction would hide the message too: Gradio shows a bare spinner)
            progress(min(max(f, 0.0), 1.0) if f == f else 0.0, desc=msg)
        except Exception:  # noqa: BLE001 - progress is best effort (e.g. called via the API)
            pass

    return report


def show_progress_once(blocks: Any, target: Any) -> int:
    """Makes every event of ``blocks`` that updates ``target`` (the footer) show its progress
    there only.

    Gradio draws an event's progress overlay (spinner, timer, `gr.Progress` bar) over each of
    its outputs; a model run here redraws every module, so one salience call showed a dozen
    overlays. Events that set their own ``show_progress_on`` or hide their progress are left
    alone. Call it once all events are wired; returns how many events it changed.
    """
    changed = 0
    for fn in getattr(blocks, "fns", {}).values():
        outputs = list(getattr(fn, "outputs", None) or ())
        if (getattr(fn, "show_progress_on", None) is None
                and getattr(fn, "show_progress", "full") != "hidden"
                and any(o is target for o in outputs)):
            fn.show_progress_on = [target]
            changed += 1
    return changed


def visible_if(flag: bool) -> dict[str, Any]:
    """``gr.update(visible=flag)``."""
    return gr.update(visible=bool(flag))


def choices_update(choices: Sequence[Any], value: Any = None) -> dict[str, Any]:
    """``gr.update(choices=..., value=...)``."""
    return gr.update(choices=list(choices), value=value)
