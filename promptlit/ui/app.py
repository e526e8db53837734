"""The workbench app: a Gradio Blocks page built from a layout, reading top to bottom like the page.

    header (title, inline doc)       toolbar (dataset · models · layout · copy link)
    left column: tabs of the layout's "left" modules (data table, editor, slices)
    right column: tabs of its "upper" modules (sequence salience) and "lower" ones (generated text)
    footer (status line: messages and errors)

Every module reads and writes only the `promptlit.workbench.Workbench` and the per-session
`promptlit.ui.state.SessionState` (a ``gr.State``). A module is shown only when the layout lists
it and the loaded models / datasets can feed it.

Named API endpoints (call them with ``gradio_client``; they are stateless):

* ``/generate`` — ``generate(dataset="", model="", example=0, prompt="")``: the model's response
  for an example (by index) or for a raw prompt, with tokens, log-probs and metrics vs the target.
* ``/salience`` — ``salience(dataset="", model="", example=0, method="grad_l2",
  granularity="words", span_start=0, span_stop=-1, target="response", prompt="", top_k=10,
  ig_steps=16, contrast="")``: prompt segments with their salience for the response span, and
  the top ones; with ``contrast`` (an alternative continuation B) the salience of
  ``log p(A) - log p(B)`` for the span A, with the segments that push toward A and toward B.
* ``/info`` — the loaded datasets, models, layouts.

and two per-session ones (state kept per client session): ``/add_example(prompt, target)`` and
``/session()`` (what this session has added and selected).

Example:
    >>> import promptlit as pl                                            # doctest: +SKIP
    >>> demo = build_app(wb, layout="lm")                                 # doctest: +SKIP
    >>> demo.queue(default_concurrency_limit=1).launch()                  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr

from promptlit.lib.cancel import Cancelled
from promptlit.salience.aggregation import GRANULARITIES, TemplateSegment
from promptlit.ui import render, render_compare
from promptlit.ui.limits import RequestLimits
from promptlit.ui.modules import (
    base,
    classification_results,
    confusion_matrix,
    counterfactuals,
    curves,
    data_table,
    datapoint_editor,
    embeddings,
    footer,
    generated_text,
    interp_common,
    lm_salience,
    metrics,
    pdp,
    predictions,
    prompt_compare,
    regression_results,
    salience_maps,
    scalars,
    slice_editor,
    threshold,
    toolbar,
)
from promptlit.ui.state import METHODS, SessionState, from_query

logger = logging.getLogger("promptlit.ui")

BUILDERS = {
    "data_table": data_table.build,
    "datapoint_editor": datapoint_editor.build,
    "slice_editor": slice_editor.build,
    "lm_salience": lm_salience.build,
    "prompt_compare": prompt_compare.build,
    "generated_text": generated_text.build,
    "salience_maps": salience_maps.build,
    "embeddings": embeddings.build,
    "counterfactuals": counterfactuals.build,
    "pdp": pdp.build,
    "metrics": metrics.build,
    "confusion_matrix": confusion_matrix.build,
    "classification_results": classification_results.build,
    "regression_results": regression_results.build,
    "scalars": scalars.build,
    "curves": curves.build,
    "threshold": threshold.build,
}
"""Layout module name -> builder, for the modules this UI implements."""

PAGE_CSS = render.CSS + render_compare.CSS + """
#pl-footer { position: sticky; bottom: 0; z-index: 100; min-height: 3.4em; padding: 6px 8px;
             border-top: 1px solid #ddd; border-radius: 0; font-size: 0.9em;
             background: var(--body-background-fill, #fff) !important; }
.gradio-container { overflow: clip !important; }  /* clip, not hidden: the footer can stick */
#pl-header h1 { margin-bottom: 0; }
"""


def _layouts(workbench: Any, layouts: Mapping[str, Any] | None) -> dict[str, Any]:
    from promptlit.api import layout as layout_api

    if layouts:
        return layout_api.merge_layouts(layouts)
    if getattr(workbench, "layouts", None):
        return dict(workbench.layouts)
    return layout_api.all_layouts()


def compatible_modules(workbench: Any, dataset: str) -> set[str]:
    """The implemented modules the loaded models / dataset can feed."""
    ok = {"data_table", "datapoint_editor", "slice_editor", "footer"}
    fields = set(base.spec_fields(workbench, dataset))
    models: list[str] = []
    try:
        models = workbench.compatible_models(dataset) if dataset else []
    except Exception:  # noqa: BLE001 - unknown dataset: nothing model-based
        models = []
    if models and "prompt" in fields:
        ok.add("generated_text")
        if set(base.lm_models(workbench)) & set(models):
            ok |= {"lm_salience", "prompt_compare"}
    # Salience maps, embeddings, counterfactuals, PDP: some registered component fits by spec.
    ok |= interp_common.available_modules(workbench, dataset)
    ok |= prediction_modules(workbench, dataset)
    return ok


def prediction_modules(workbench: Any, dataset: str) -> set[str]:
    """The classification / regression modules some model can feed on ``dataset``, by spec:
    classification_results and scalars need a MulticlassPreds (or, for scalars and
    regression_results, a RegressionScore) output; metrics a prediction whose parent is a
    dataset field; confusion_matrix and curves a MulticlassPreds with such a parent;
    threshold a binary one with a null class."""
    ok: set[str] = set()
    if predictions.capable_models(workbench, dataset, predictions.CLASSIFICATION):
        ok |= {"classification_results", "scalars"}
    if predictions.capable_models(workbench, dataset, predictions.REGRESSION):
        ok |= {"regression_results", "scalars"}
    if predictions.capable_models(workbench, dataset, "any"):
        ok.add("metrics")
    if predictions.capable_models(workbench, dataset, predictions.CLASSIFICATION,
                                  labelled=True):
        ok |= {"confusion_matrix", "curves"}
    if predictions.capable_models(workbench, dataset, "binary"):
        ok.add("threshold")
    return ok


def initial_state(workbench: Any, layout: str) -> SessionState:
    """The state a new session starts from: first dataset, first LM (or model), the layout."""
    dataset = next(iter(workbench.datasets), "")
    lms = base.lm_models(workbench)
    model = lms[0] if lms else next(iter(workbench.models), "")
    return SessionState(dataset=dataset, model=model, layout=layout)


def api_errors(fn: Any) -> Any:
    """Wraps an API endpoint so any error reaches the client as one plain line (``gr.Error``),
    not a generic "error" (the server never shows tracebacks)."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Cancelled as e:
            logger.info("API %s cancelled: its client cancelled or went away; work stopped",
                        fn.__name__)
            raise gr.Error(str(e), print_exception=False) from e
        except Exception as e:  # noqa: BLE001 - reported to the client
            logger.warning("API %s failed", fn.__name__, exc_info=True)
            raise gr.Error(base.message(e).removeprefix("⚠ "), print_exception=False) from e

    return inner


def _api_example(workbench: Any, limits: RequestLimits, dataset: str, model: str,
                 example: Any, prompt: str | None) -> tuple[str, str, dict]:
    """The (dataset, model, example) an API call names, checked: a known dataset and model, and
    either a non-empty ``prompt`` or a valid example index (never a silent default)."""
    dataset = dataset or next(iter(workbench.datasets), "")
    lms = base.lm_models(workbench)
    model = model or (lms[0] if lms else next(iter(workbench.models), ""))
    if model not in workbench.models:
        raise KeyError(f"unknown model {model!r}; loaded: {sorted(workbench.models)}")
    if prompt:
        if not prompt.strip():
            raise ValueError("prompt is blank; send the prompt text, or leave prompt out and "
                             "pass example=N to use an example of the dataset")
        return dataset, model, {"prompt": limits.check_prompt(prompt)}
    if dataset not in workbench.datasets:
        raise KeyError(f"unknown dataset {dataset!r}; loaded: {sorted(workbench.datasets)}")
    examples = workbench.datasets[dataset].examples
    if example is None or example == "":
        raise ValueError("say what to run on: pass example=N (an index into the dataset, "
                         f"0..{len(examples) - 1}) or a non-empty prompt")
    if not examples:
        raise IndexError(f"dataset {dataset} has no examples; pass a prompt instead")
    index = limits.check_int("example", example, low=0, high=len(examples) - 1)
    ex = dict(examples[index])
    limits.check_prompt(str(ex.get("prompt", "")), where=f"example {index}'s prompt")
    return dataset, model, ex


LM_INTRO = ("Pick an example, press **Generate & explain**, then click response tokens to see "
            "which parts of the prompt made the model write them.")
MODEL_INTRO = ("Pick examples in the data table (or a confusion-matrix cell, or points in the "
               "projector): predictions, metrics, salience maps and counterfactuals follow the "
               "selection.")


def default_intro(workbench: Any) -> str:
    """The line under the title when no ``inline_doc`` is given: how to start, for what is loaded
    (language models: explain a response; other models: select examples)."""
    lms = base.lm_models(workbench)
    if not lms:
        return MODEL_INTRO
    return LM_INTRO if len(lms) == len(workbench.models) else f"{LM_INTRO} {MODEL_INTRO}"


def _contrast_fields(span: Any, segs: list[Any], top_k: int, seg: Any) -> dict[str, Any]:
    """The /salience answer's contrast part: B, its tokens, both log-probs and, for signed
    methods, the `top_k` user-text segments pushing toward A (positive) and toward B."""
    c = dict(span.parent.contrast or {})
    user = [s for s in segs if str(s.text).strip() and not isinstance(s, TemplateSegment)]
    out: dict[str, Any] = {"contrast": {
        "text": c.get("text"), "tokens": list(c.get("tokens", ())),
        "log_prob": c.get("log_prob"), "log_prob_contrast": c.get("log_prob_contrast")}}
    if span.signed:
        out["toward_a"] = [seg(s) for s in sorted((s for s in user if s.score > 0),
                                                  key=lambda s: -s.score)[:top_k]]
        out["toward_b"] = [seg(s) for s in sorted((s for s in user if s.score < 0),
                                                  key=lambda s: s.score)[:top_k]]
    return out


def build_app(workbench: Any, *, layout: str | None = None,
              layouts: Mapping[str, Any] | None = None, page_title: str = "promptlit",
              demo_mode: bool = False, inline_doc: str | None = None,
              onboarding: str | None = None, canonical_url: str | None = None,
              save_dir: str | os.PathLike[str] | None = None,
              limits: RequestLimits | None = None
              ) -> gr.Blocks:
    """Builds the workbench page for ``workbench``.

    Args:
      workbench: the `promptlit.workbench.Workbench` every callback asks.
      layout: the layout to open with (default: the workbench's default, else "lm" when a
        model can explain responses, else "default").
      layouts: extra / overriding layouts (name -> LayoutSpec or its JSON).
      page_title: browser tab and header title.
      demo_mode: read-only: saving examples is hidden and refused.
      inline_doc: Markdown shown under the title (what this demo is about).
      onboarding: Markdown for a collapsible "how to use" box.
      canonical_url: put in the page head as ``<link rel="canonical">``.
      save_dir: the one directory the page may save session examples into (created when
        first used; file names are sanitised, nothing outside it is written). None: the page
        writes nothing on the server (it still offers a browser download). Ignored in demo
        mode.
      limits: what one request may ask for (`promptlit.ui.limits.RequestLimits`; defaults).

    Returns:
      The ``gr.Blocks``; launch options it needs (css, head) are in its
      ``promptlit_launch_kwargs`` attribute (`promptlit.server.serve` passes them on), and
      ``promptlit_notices`` is a list of plain-text lines (e.g. "the share link could not be
      made") that the page header shows on the next page load.
    """
    limits = limits or RequestLimits()
    save_dir = None if demo_mode or save_dir is None else Path(save_dir).expanduser().resolve()
    notices: list[str] = []
    all_layouts = _layouts(workbench, layouts)
    layout = layout or getattr(workbench, "default_layout", None) or (
        "lm" if base.lm_models(workbench) and "lm" in all_layouts else "default")
    if layout not in all_layouts:
        raise KeyError(f"no layout named {layout!r}; available: {', '.join(sorted(all_layouts))}")
    spec = all_layouts[layout]
    start = initial_state(workbench, layout)

    with gr.Blocks(title=page_title, fill_width=True, analytics_enabled=False) as demo:
        state = gr.State(start)
        with gr.Column(elem_id="pl-header"):
            gr.Markdown(f"# {page_title}\n" + (inline_doc or default_intro(workbench)))
            if onboarding:
                with gr.Accordion("How to use", open=False):
                    gr.Markdown(onboarding)
            notice = base.markdown("", elem_id="pl-notices", visible=False)
        bar = toolbar.build(workbench, start, list(all_layouts))
        status = footer.build(demo_mode=demo_mode)
        status.unrender()
        ctx = base.Context(workbench=workbench, state=state, footer=status, demo_mode=demo_mode,
                           limits=limits, save_dir=save_dir)
        ctx.register(base.Module("toolbar", bar.container, [bar.info, bar.query],
                                 toolbar.refresh))

        # Place modules by area and tab; modules only other layouts use go to "More".
        placed: dict[str, str] = {}
        tabs: dict[str, tuple[Any, list[str]]] = {}
        shown = set(spec.modules()) & compatible_modules(workbench, start.dataset)

        def area(name: str, tab_map: Mapping[str, list[str]]) -> None:
            with gr.Tabs(elem_id=f"pl-area-{name}"):
                for tab, names in tab_map.items():
                    mine = [n for n in names if n in BUILDERS and n not in placed]
                    if not mine:
                        continue
                    tab_id = f"pl-tab-{tab.lower().replace(' ', '-')}"
                    with gr.Tab(tab, elem_id=tab_id, visible=any(n in shown for n in mine)) as t:
                        for n in mine:
                            BUILDERS[n](ctx).container.visible = n in shown
                            placed[n] = tab
                    tabs[tab] = (t, mine)

        others = {n for spec_ in all_layouts.values() for n in spec_.modules()} - set(
            spec.modules())
        with gr.Row(equal_height=False):
            if any(n in BUILDERS for names in spec.left.values() for n in names):
                with gr.Column(scale=2, min_width=360):
                    area("left", spec.left)
            with gr.Column(scale=3, min_width=480):
                area("upper", spec.upper)
                more = [n for n in BUILDERS if n in others]
                area("lower", {**spec.lower, **({"More": more} if more else {})})
        status.render()

        def visibility(layout_name: str, dataset: str) -> list[Any]:
            wanted = set(all_layouts[layout_name].modules()) & compatible_modules(workbench,
                                                                                   dataset)
            ups = [gr.update(visible=n in wanted) for n in ctx.modules if n in placed]
            ups += [gr.update(visible=any(n in wanted for n in names))
                    for _, names in tabs.values()]
            return ups

        vis_outputs = [m.container for n, m in ctx.modules.items() if n in placed]
        vis_outputs += [t for t, _ in tabs.values()]
        for m in list(ctx.modules.values()):
            if m.wire is not None:
                m.wire(ctx)
        refresh_outs = ctx.refresh_outputs()
        gran = ctx.modules["lm_salience"].controls["granularity"] \
            if "lm_salience" in ctx.modules else None

        # -- toolbar events -------------------------------------------------------------------
        @base.guard(2 + len(refresh_outs) + len(vis_outputs))
        def on_dataset(st: SessionState, name: str) -> Any:
            if name not in workbench.datasets:
                raise KeyError(f"unknown dataset {name!r}")
            st.dataset, st.selected_ids, st.primary_id = name, [], None
            st.span, st.anchor, st.explained, st.table_query = None, None, False, {}
            return (st, *visibility(st.layout, name), *ctx.refresh(st),
                    base.ok(f"dataset {name}"))

        bar.dataset.input(on_dataset, [state, bar.dataset],
                          [state, *vis_outputs, *refresh_outs, status], api_visibility="private")

        @base.guard(2 + len(refresh_outs))
        def on_models(st: SessionState, names: list[str] | None) -> Any:
            names = list(names or [])
            if not names:
                raise ValueError("pick at least one model")
            st.model, st.compare_model = names[0], (names[1] if len(names) > 1 else None)
            st.explained, st.span, st.anchor = False, None, None
            msg = f"model {st.model}" + (f", comparing with {st.compare_model}"
                                         if st.compare_model else "")
            return (st, *ctx.refresh(st), base.ok(msg + ": press “Generate & explain”"))

        bar.models.input(on_models, [state, bar.models], [state, *refresh_outs, status],
                         api_visibility="private")

        @base.guard(2 + len(vis_outputs) + 2)
        def on_layout(st: SessionState, name: str) -> Any:
            if name not in all_layouts:
                raise KeyError(f"no layout named {name!r}")
            st.layout = name
            return (st, *visibility(name, st.dataset), *toolbar.refresh(workbench, st),
                    base.ok(f"layout {name}: {all_layouts[name].description}"))

        bar.layout.input(on_layout, [state, bar.layout],
                         [state, *vis_outputs, bar.info, bar.query, status],
                         api_visibility="private")

        # -- URL query parameters on page load -----------------------------------------------
        load_outs = [state, bar.dataset, bar.models, bar.layout, *([gran] if gran else []),
                     notice, *vis_outputs, *refresh_outs, status]

        @base.guard(len(load_outs))
        def on_load(st: SessionState, request: gr.Request) -> Any:
            params = from_query(dict(request.query_params) if request is not None else {})
            notes = []
            if params.get("dataset") in workbench.datasets:
                st.dataset = params["dataset"]
            elif "dataset" in params:
                notes.append(f"unknown dataset {params['dataset']!r} in the link")
            if params.get("model") in workbench.models:
                st.model = params["model"]
            elif "model" in params:
                notes.append(f"unknown model {params['model']!r} in the link")
            if params.get("layout") in all_layouts:
                st.layout = params["layout"]
            if "granularity" in params:
                st.granularity = params["granularity"]
            ex = params.get("example")
            rows = base.dataset_rows(workbench, st)
            if isinstance(ex, int) and 0 <= ex < len(rows):
                st.select_example(rows[ex][0])
            elif isinstance(ex, str) and any(r[0] == ex for r in rows):
                st.select_example(ex)
            elif ex is not None:
                notes.append(f"example {ex!r} from the link is not in {st.dataset}")
            msg = ("⚠ " + "; ".join(notes)) if notes else (
                "Ready (demo mode: read-only)." if demo_mode else "Ready.")
            # Choices too: datasets and models added after the page was built (a notebook's
            # render(data=...), Workbench.load_model) appear on the next page load.
            return (st, gr.update(choices=list(workbench.datasets), value=st.dataset),
                    gr.update(choices=list(workbench.models),
                              value=[m for m in (st.model, st.compare_model) if m]),
                    gr.update(value=st.layout), *([st.granularity] if gran else []),
                    gr.update(value="⚠ " + " · ".join(notices) if notices else "",
                              visible=bool(notices)),
                    *visibility(st.layout, st.dataset), *ctx.refresh(st), msg)

        demo.load(on_load, [state], load_outs, api_visibility="private")

        # -- API endpoints ---------------------------------------------------------------------
        def generate(dataset: str = "", model: str = "", example: int | None = None,
                     prompt: str | None = None) -> dict:
            """The model's response for example #`example` of `dataset` (or a raw `prompt`):
            response, tokens, log-probs, and exact match / BLEU / ROUGE-L against the target."""
            ds, m, ex = _api_example(workbench, limits, dataset, model, example, prompt)
            out = workbench.predict(m, ds, [ex], progress=base.progress_adapter())[0]
            row = generated_text.metrics_row(None if prompt or example is None else int(example),
                                             ex, out)
            return {"dataset": ds, "model": m, "prompt": ex.get("prompt", ""),
                    "target": ex.get("target"), "response": str(out.get("response", "")),
                    "response_tokens": [str(t) for t in out.get("response_tokens", []) or []],
                    "response_logprobs": [float(x) for x in
                                          (out.get("response_logprobs", []) or [])],
                    "metrics": {k: row[k] for k in ("exact_match", "bleu", "rouge_l",
                                                    "perplexity")}}

        gr.api(api_errors(generate), api_name="generate", concurrency_id="model",
               concurrency_limit=1)

        def salience(dataset: str = "", model: str = "", example: int | None = None,
                     method: str = "grad_l2", granularity: str = "words", span_start: int = 0,
                     span_stop: int = -1, target: str = "response", prompt: str | None = None,
                     top_k: int = 10, ig_steps: int = 16, contrast: str = "") -> dict:
            """Salience of the prompt's segments (at `granularity`) for the response tokens
            [span_start, span_stop) (-1 = to the end) of example #`example` (or a raw
            `prompt`), by `method` (grad_l2, grad_dot_input, integrated_gradients). Scores are
            sums over tokens; `top` lists the `top_k` most salient segments. With `contrast` (an
            alternative continuation B), the scores are for log p(A) - log p(B), A = the span:
            "why A rather than B?"; `contrast` then gives B's tokens and both log-probs, and
            for signed methods `toward_a` / `toward_b` the `top_k` segments pushing each way.
            Sizes are bounded by the server's limits (`/info` lists them)."""
            if method not in METHODS:
                raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
            api_granularities = (*GRANULARITIES, "few-shot")  # custom ones need more input
            if granularity not in api_granularities:
                raise ValueError(f"granularity must be one of {list(api_granularities)}, got "
                                 f"{granularity!r}")
            if target not in ("response", "target"):
                raise ValueError(f"target must be 'response' or 'target', got {target!r}")
            top_k = limits.check_int("top_k", top_k, low=1, high=limits.max_top_k)
            ig_steps = limits.check_int("ig_steps", ig_steps, low=1, high=limits.max_ig_steps)
            span_start = limits.check_int("span_start", span_start, low=0, high=2**31)
            span_stop = limits.check_int("span_stop", span_stop, low=-1, high=2**31)
            contrast = limits.check_contrast(contrast) if contrast else ""
            ds, m, ex = _api_example(workbench, limits, dataset, model, example, prompt)
            if m not in base.lm_models(workbench):
                raise ValueError(f"model {m!r} cannot explain responses; salience models: "
                                 f"{base.lm_models(workbench)}")
            st = SessionState(dataset=ds, model=m, method=method, granularity=granularity,
                              ig_steps=ig_steps, explain_target=target)
            report = base.progress_adapter()
            sal = lm_salience._matrix_salience(workbench, st, ex, progress=report)
            t = sal.num_response_tokens
            stop = t if span_stop < 0 else span_stop
            if not 0 <= span_start < stop <= t:
                raise IndexError(f"span [{span_start}, {span_stop}) is outside the response: "
                                 f"it has {t} tokens, so use 0 <= span_start < span_stop <= {t} "
                                 "(span_stop=-1 means to the end)")
            if contrast:
                span = lm_salience.contrast_salience(workbench, st, ex, (span_start, stop),
                                                     contrast, progress=report)
            else:
                span = lm_salience.span_salience(workbench, st, ex, sal, (span_start, stop),
                                                 progress=report)
            segs = span.aggregate(granularity, side="prompt")

            def seg(s: Any) -> dict:
                return {"text": s.text, "start": int(s.start), "end": int(s.end),
                        "score": float(s.score),
                        "template": isinstance(s, TemplateSegment),  # chat-template tokens
                        "label": str(getattr(s, "label", "") or "")}  # few-shot blocks

            return {"dataset": ds, "model": m, "method": method, "granularity": granularity,
                    "signed": bool(span.signed), "prompt": sal.prompt_text,
                    "response": sal.response_text, "span": [span_start, stop],
                    "ig_steps": ig_steps if method == "integrated_gradients" else None,
                    "target_text": span.target_text,
                    "response_tokens": list(sal.response_tokens),
                    "segments": [seg(s) for s in segs],
                    "top": [seg(s) for s in render.rank_segments(segs, span.signed, top_k)],
                    **(_contrast_fields(span, segs, top_k, seg) if contrast else {})}

        gr.api(api_errors(salience), api_name="salience", concurrency_id="model",
               concurrency_limit=1)

        def info() -> dict:
            """The loaded datasets (with sizes), models, layouts, whether demo mode is on,
            whether the page may save on the server, and the request limits."""
            return {"datasets": {n: len(d) for n, d in workbench.datasets.items()},
                    "models": list(workbench.models), "salience_models":
                        base.lm_models(workbench), "layouts": list(all_layouts),
                    "demo_mode": demo_mode, "saving": save_dir is not None,
                    "limits": dataclasses.asdict(limits)}

        gr.api(api_errors(info), api_name="info", concurrency_limit=None)

        with gr.Row(visible=False):
            api_prompt = gr.Textbox()
            api_target = gr.Textbox()
            api_fields = gr.Textbox(value="", label="fields")
            api_out = gr.JSON()
            api_add = gr.Button()
            api_session = gr.Button()

        def add_example(st: SessionState, prompt: str, target: str, fields: str = "") -> tuple:
            """Adds an example to this session's copy of the dataset (other sessions do not see
            it) and selects it; returns what the session holds. `fields`: the example's other
            fields as a JSON object (e.g. ``{"source": "mine"}``)."""
            datapoint_editor.add_edited(workbench, st, limits, prompt, target, fields or "",
                                        None)
            return st, session_summary(st)

        def session_summary(st: SessionState) -> dict:
            return {"dataset": st.dataset, "model": st.model,
                    "added": [e.get("prompt", "") for e in st.session_examples()],
                    "num_examples": len(base.dataset_rows(workbench, st)),
                    "selected": base.index_of(workbench, st, st.primary_id),
                    "slices": {k: len(v) for k, v in st.slices.items()}}

        # Per-session and cheap (no model call): they run concurrently, never queue behind
        # another session's request.
        api_add.click(api_errors(add_example), [state, api_prompt, api_target, api_fields],
                      [state, api_out], api_name="add_example", concurrency_limit=None)
        api_session.click(lambda st: session_summary(st), [state], [api_out],
                          api_name="session", concurrency_limit=None)

    base.show_progress_once(demo, status)  # one progress overlay (the footer's), not one per output
    head = ('<meta name="referrer" content="no-referrer">'
            + (f'<link rel="canonical" href="{render.escape_text(canonical_url)}">'
               if canonical_url else ""))
    demo.promptlit_launch_kwargs = {"css": PAGE_CSS, "head": head}
    demo.promptlit_layout = layout
    demo.promptlit_notices = notices
    return demo
