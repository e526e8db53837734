"""Salience maps: which tokens of the selected example drove a classifier's or regressor's
prediction, by every salience method that fits the model (Grad L2, Grad·Input, Integrated
Gradients, LIME), one heatmap row per method and input text field.

Each method is a registered interpreter returning `TokenSalience` (see
`promptlit.components.gradient_maps`, `promptlit.components.lime`), run through the
Workbench's cached ``interpret``: asking twice for the same example and settings is free.
Signed methods (Grad·Input, IG, LIME) use the diverging colour map (blue = towards the
explained class / a higher score, red = against it); Grad L2 uses the sequential one. Colours
are normalised per row (max |score|); hover a token for its exact score.

On a selection change the methods the interpreter marks ``autorun`` (the gradient maps) run at
once; the others (LIME, which samples the model hundreds of times) run on "Explain".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np

from promptlit.api import types
from promptlit.components import _classifier_common as common
from promptlit.lib.utils import example_id
from promptlit.ui import render
from promptlit.ui.modules import base, interp_common
from promptlit.ui.state import SessionState

NAME = "salience_maps"
LABELS: dict[str, str] = {"grad_l2": "Grad L2", "grad_dot_input": "Grad·Input",
                          "integrated_gradients": "Integrated Gradients", "lime": "LIME"}
"""Interpreter name -> label shown in the rows (other names are shown as they are)."""

DEFAULTS = {"methods": None, "ig_steps": 32, "lime_samples": 256, "intensity": 1.0,
            "explained": None}


@dataclasses.dataclass
class SalienceRow:
    """One heatmap row: a method's scores for the tokens of one input text field.

    Attributes:
      method: the interpreter's name ("grad_l2", "lime", ...); ``label`` its display name.
      field: the input text field the tokens come from ("sentence").
      key: the interpreter's result key (a gradient field such as "token_grad_sentence", or
        the text field for LIME).
      tokens: ``<str>[num_tokens]``; scores: ``<float>[num_tokens]`` exactly as the interpreter
        returned them. signed: whether the method's scores carry a direction.
    """

    method: str
    label: str
    field: str
    key: str
    tokens: list[str]
    scores: np.ndarray
    signed: bool


def method_config(wb: Any, method: str, ig_steps: int, lime_samples: int) -> dict[str, Any]:
    """The interpreter config for the UI's settings (only keys the method's config_spec has)."""
    spec = wb.interpreters[method].config_spec()
    cfg: dict[str, Any] = {}
    if "ig_steps" in spec:
        cfg["ig_steps"] = int(ig_steps)
    if "num_samples" in spec:
        cfg["num_samples"] = int(lime_samples)
    return cfg


def _text_field(key: str, in_spec: dict, out_spec: dict) -> str:
    """The input text field a salience result key belongs to."""
    if isinstance(in_spec.get(key), types.TextSegment):
        return key
    spec = out_spec.get(key)
    if isinstance(spec, types.TokenGradients):
        tok = out_spec.get(spec.align or "")
        if isinstance(tok, types.Tokens) and tok.parent:
            return tok.parent
    return key


def _signed(wb: Any, method: str) -> bool:
    return any(bool(getattr(t, "signed", False))
               for t in wb.interpreters[method].meta_spec().values()
               if isinstance(t, types.TokenSalience))


def autorun(wb: Any, method: str) -> bool:
    """Whether the interpreter asks to run as soon as an example is selected (its meta_spec)."""
    return any(bool(getattr(t, "autorun", False))
               for t in wb.interpreters[method].meta_spec().values()
               if isinstance(t, types.TokenSalience))


def salience_rows(wb: Any, model: str, dataset: str, example: dict[str, Any],
                  methods: Sequence[str], *, ig_steps: int = 32, lime_samples: int = 256,
                  progress: Any = None) -> list[SalienceRow]:
    """Every method's token salience for ``example``, one row per (method, text field).

    Each method runs through ``wb.interpret`` (cached by model, example, config).
    """
    m = wb.models[model]
    in_spec, out_spec = dict(m.input_spec()), dict(m.output_spec())
    rows: list[SalienceRow] = []
    for i, method in enumerate(methods):
        if progress is not None:
            progress(i / max(len(methods), 1), f"{LABELS.get(method, method)}: running")
        cfg = method_config(wb, method, ig_steps, lime_samples)
        result = wb.interpret(method, model, dataset, [example], cfg)[0]
        signed = _signed(wb, method)
        for key, sal in result.items():
            rows.append(SalienceRow(method=method, label=LABELS.get(method, method),
                                    field=_text_field(key, in_spec, out_spec), key=key,
                                    tokens=[str(t) for t in sal.tokens],
                                    scores=np.asarray(sal.salience, dtype=np.float64),
                                    signed=signed))
    return rows


def token_heatmap_html(text: str, tokens: Sequence[str], scores: np.ndarray, *, signed: bool,
                       intensity: float = 1.0) -> str:
    """``text`` with each token coloured by its score (tokens located left to right).

    Tokens not found in the text (special tokens such as [CLS]) are shown first as chips.
    """
    spans = common.token_spans(text, list(tokens), "##")
    colours = render.normalize(scores, signed) if len(scores) else np.zeros(0)
    placed = [(t, s[0], s[1], float(sc)) for t, s, sc in zip(tokens, spans, scores, strict=True)
              if s is not None]
    extra = [render._seg_span(str(t), float(sc), float(c), signed, intensity)  # noqa: SLF001
             for t, s, sc, c in zip(tokens, spans, scores, colours, strict=True) if s is None]
    placed_colours = np.asarray([c for s, c in zip(spans, colours, strict=True) if s is not None])
    body = render._heatmap_prenormalized(text, placed, placed_colours, signed,  # noqa: SLF001
                                         intensity, 0, len(text))
    chips = (" ".join(extra) + " ") if extra else ""
    return chips + body


def rows_html(rows: Sequence[SalienceRow], example: dict[str, Any], *,
              intensity: float = 1.0) -> str:
    """The rows as an HTML table: method | field | heatmap, grouped by text field."""
    if not rows:
        return '<div class="pl-empty">No salience yet.</div>'
    out = ['<table class="pl-salmaps" style="border-collapse:collapse;width:100%"><tbody>']
    for r in sorted(rows, key=lambda r: r.field):
        text = str(example.get(r.field, ""))
        if text:
            heat = token_heatmap_html(text, r.tokens, r.scores, signed=r.signed,
                                      intensity=intensity)
        else:
            heat = token_heatmap_html(" ".join(r.tokens), r.tokens, r.scores, signed=r.signed,
                                      intensity=intensity)
        kind = "signed" if r.signed else "unsigned"
        out.append(f'<tr data-method="{render.escape_text(r.method)}" '
                   f'data-field="{render.escape_text(r.field)}" data-signed="{kind}">'
                   f'<td class="pl-salmaps-label" style="{_CELL};white-space:nowrap;width:11em">'
                   f'<b>{render.escape_text(r.label)}</b><br>'
                   f'<small>{render.escape_text(r.field)} · {kind}</small></td>'
                   f'<td class="pl-text" style="{_CELL}">{heat}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def legend() -> str:
    """Both colour maps, one line each."""
    return (render.legend_html("Grad L2", False) +
            render.legend_html("Grad·Input, Integrated Gradients, LIME", True))


_CELL = "border-bottom:1px solid #eee;padding:4px 6px;vertical-align:top"


def render_module(wb: Any, state: SessionState, *, run_all: bool = False,
                  progress: Any = None) -> tuple[str, str, list[str], list[str]]:
    """(info Markdown, rows HTML, method choices, ticked methods) for the session.

    Runs the ticked autorun methods (all ticked ones with ``run_all``, i.e. "Explain").
    """
    v = interp_common.view(state, NAME, **DEFAULTS)
    model = interp_common.pick_model(wb, state, interp_common.salience_methods)
    if model is None:
        return ("No loaded model gives token salience on this dataset.", "", [], [])
    choices = interp_common.salience_methods(wb, model, state.dataset)
    ticked = [m for m in (v["methods"] if v["methods"] is not None else choices) if m in choices]
    ex = base.primary_example(wb, state)
    if ex is None:
        return (render.md("**{}** · select an example in the data table.", model),
                '<div class="pl-empty">Select an example to see its salience maps.</div>',
                choices, ticked)
    if run_all:
        v["explained"] = example_id(ex)
    explained = v["explained"] == example_id(ex)
    run = [m for m in ticked if explained or autorun(wb, m)]
    waiting = [m for m in ticked if m not in run]
    rows = salience_rows(wb, model, state.dataset, ex, run, ig_steps=v["ig_steps"],
                         lime_samples=v["lime_samples"], progress=progress)
    n = base.index_of(wb, state, state.primary_id)
    info = render.md("**{}** · example #{}", model, n)
    if waiting:
        names = ", ".join(LABELS.get(m, m) for m in waiting)
        info += render.md(" · press **Explain** to run {}", names)
    return info, rows_html(rows, ex, intensity=v["intensity"]), choices, ticked


def build(ctx: base.Context) -> base.Module:
    """Draws the salience-maps module and wires its controls."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-salience-maps") as container:
        info = base.markdown("", elem_id="pl-salmaps-info")
        with gr.Row():
            methods = gr.CheckboxGroup([], label="Methods", scale=3, elem_id="pl-salmaps-methods")
            explain = gr.Button("Explain", variant="primary", scale=1, elem_id="pl-salmaps-run")
        with gr.Row():
            ig_steps = gr.Slider(4, 128, value=DEFAULTS["ig_steps"], step=4,
                                 label="IG steps", elem_id="pl-salmaps-ig-steps")
            lime_samples = gr.Slider(16, 2048, value=DEFAULTS["lime_samples"], step=16,
                                     label="LIME samples", elem_id="pl-salmaps-lime-samples")
            intensity = gr.Slider(0.25, 5.0, value=1.0, step=0.25, label="Colour intensity",
                                  elem_id="pl-salmaps-intensity")
        gr.HTML(legend(), js_on_load=None)
        view = gr.HTML("", elem_id="pl-salmaps-view", js_on_load=None)

    outputs = [info, view, methods]

    def draw(state: SessionState, run_all: bool = False, progress: Any = None) -> list[Any]:
        text, html, choices, ticked = render_module(wb, state, run_all=run_all,
                                                    progress=progress)
        labelled = [(LABELS.get(c, c), c) for c in choices]
        return [text, html, gr.update(choices=labelled, value=ticked)]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]

        def settings(state: SessionState, ms: list[str] | None, steps: float, samples: float,
                     inten: float) -> None:
            v = interp_common.view(state, NAME, **DEFAULTS)
            v.update(methods=list(ms or []), ig_steps=int(steps), lime_samples=int(samples),
                     intensity=float(inten))

        @base.guard(len(outs))
        def on_explain(state: SessionState, ms: list[str] | None, steps: float, samples: float,
                       inten: float, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            if base.primary_example(wb, state) is None:
                raise ValueError("no example selected: click a row in the data table first")
            if not ms:
                raise ValueError("tick at least one salience method")
            settings(state, ms, steps, samples, inten)
            updates = draw(state, run_all=True, progress=base.progress_adapter(progress))
            names = ", ".join(LABELS.get(m, m) for m in ms)
            return (state, *updates, base.ok(f"salience maps ready ({names})"))

        inputs = [ctx.state, methods, ig_steps, lime_samples, intensity]
        explain.click(on_explain, inputs, outs, api_visibility="private", concurrency_id="model",
                      concurrency_limit=1)

        @base.guard(len(outs))
        def on_setting(state: SessionState, ms: list[str] | None, steps: float, samples: float,
                       inten: float) -> Any:
            settings(state, ms, steps, samples, inten)
            return (state, *draw(state), "")

        methods.input(on_setting, inputs, outs, api_visibility="private", concurrency_id="model",
                      concurrency_limit=1)
        for comp in (ig_steps, lime_samples, intensity):
            comp.release(on_setting, inputs, outs, api_visibility="private", concurrency_id="model",
                         concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
