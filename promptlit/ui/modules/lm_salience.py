"""Sequence salience, the core module: why did the model write this part of its response?

Shows the selected example's prompt and the model's response. Click a response token to select
it (shift-click extends the selection; or pick a whole response word / sentence / line from the
list); the prompt is then coloured by how much each segment mattered to the selected span.

"Generate & explain" runs the model once and computes the full target×source salience matrix
for the matrix methods (Grad L2, Grad·Input) through `Workbench.salience` (cached). From then on
every click, granularity, method or intensity change is pure numpy over that cached
`SequenceSalience`: no model call. Integrated Gradients has no full matrix; it is computed for
the selected span on demand, through the Workbench cache too, whose key holds the span, the IG
steps and everything else that changes the numbers.

Cached results are shared by every session and immutable: this module never changes one; it
only reads them (a span's scores come back as a new `SpanSalience`).

Custom segments: besides tokens … turns, the granularity may be "few-shot" (repeated labelled
blocks found automatically, "example 1 … n"), "blocks" (the prompt split at the separator regex
typed beside it; bounded and checked, `promptlit.lib.segmentation.SeparatorSegmentation`) or
"segments" (the example's own labelled ``segments`` or template fields). Scores sum to their
labels exactly like the built-in granularities; the ranked list and the matrix show the labels.

Chat templates: for an instruction-tuned model the prompt is shown as the model reads it, wrapped
in its chat template (`promptlit.models.chat`), the template tokens greyed. They are segments of
their own, left out of the ranking and of the colour range unless "Include chat-template tokens"
is ticked (their salience is computed either way and shows on hover). The info line names the
template in use; at the "turns" granularity each message of a conversation is one segment.
"""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr

from promptlit.lib.segmentation import ALL_GRANULARITIES, MAX_SEPARATOR_CHARS, resolve_granularity
from promptlit.salience.aggregation import GRANULARITIES, TemplateSegment
from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.state import METHOD_LABELS, METHODS, SessionState

NAME = "lm_salience"
MATRIX_METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input")
TOP_K = 10

# Delegated click handler: a click on a response token sends its index (and whether shift was
# held) to the Python callback wired to this gr.HTML's "click" event.
CLICK_JS = """
element.addEventListener('click', (e) => {
  const tok = e.target.closest('[data-index]');
  if (!tok || !element.contains(tok)) return;
  e.preventDefault();
  trigger('click', {index: parseInt(tok.dataset.index), shift: !!e.shiftKey});
});
element.addEventListener('mousedown', (e) => {
  if (e.shiftKey && e.target.closest('[data-index]')) e.preventDefault();
});
"""


def _matrix_salience(wb: Any, state: SessionState, ex: dict, model: str | None = None,
                     progress: Any = None) -> Any:
    """The cached `SequenceSalience` with full matrices for Grad L2 and Grad·Input."""
    return wb.salience(model or state.model, ex, target=state.explain_target,
                       methods=MATRIX_METHODS, progress=progress)


def span_salience(wb: Any, state: SessionState, ex: dict, sal: Any, span: tuple[int, int],
                  progress: Any = None) -> Any:
    """The `SpanSalience` of response tokens ``span`` for the session's method and settings.

    Matrix methods sum rows of ``sal`` (the cached matrix result of `_matrix_salience`).
    Integrated Gradients (no matrix) asks the Workbench for exactly this span with the
    session's ``ig_steps``; the Workbench caches it under a key holding the method, steps, span,
    target text and model config, so other settings are never served stale. ``sal`` itself is
    never changed (it is shared by every session); the returned span's ``parent`` is the result
    its scores came from (same text and tokens as ``sal``), and ``span.settings`` says which
    steps made them.

    Args:
      wb: the Workbench. state: the session (model, method, ig_steps, explain_target).
      ex: the example. sal: its cached matrix `SequenceSalience`.
      span: ``(start, stop)`` response-token indices, stop exclusive.
      progress: ``progress(fraction, message)`` for the Workbench (it may raise
        `promptlit.lib.cancel.Cancelled` to stop the work between pieces).
    """
    method = state.method
    if method in sal.matrices:
        return sal.for_span(span[0], span[1], method)
    result = wb.salience(state.model, ex, target=state.explain_target, methods=(method,),
                         ig_steps=int(state.ig_steps), progress=progress,
                         **_span_kwargs(wb, state.model, span))
    return result.for_span(span[0], span[1], method)


def _span_kwargs(wb: Any, model: str, span: tuple[int, int]) -> dict[str, Any]:
    """How to ask ``model.salience`` for one response span: ``span=(a, b)``, ``spans=[(a, b)]``
    or ``target_span=(a, b)``, whichever its signature takes (nothing: whole response only)."""
    m = wb.models[model]
    fn = getattr(m.unwrap() if callable(getattr(m, "unwrap", None)) else m, "salience", None)
    if not callable(fn):
        return {}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    for name, value in (("span", tuple(span)), ("spans", [tuple(span)]),
                        ("target_span", tuple(span))):
        if name in params:
            return {name: value}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"span": tuple(span)}
    return {}


def include_template(state: SessionState) -> bool:
    """Whether the session counts chat-template tokens in colours and rankings (off by default)."""
    return bool(state.views.get(NAME, {}).get("include_template", False))


def prompt_preview_html(wb: Any, state: SessionState, ex: dict) -> str:
    """The example's prompt before any salience: as the session's model reads it (its chat
    template greyed) when the model can say (`KerasCausalLM.format_prompt`), else as written."""
    m = wb.models.get(state.model) if state.model else None
    inner = m.unwrap() if m is not None and callable(getattr(m, "unwrap", None)) else m
    fmt = getattr(inner, "format_prompt", None)
    prompt_of = getattr(inner, "prompt_of", None)
    plain = render.plain_text_html(str(ex.get("prompt", "")), label="PROMPT")
    if not callable(fmt) or not callable(prompt_of):
        return plain
    try:
        rendered = fmt(prompt_of(ex), chat_template=ex.get("chat_template"))
    except (ValueError, KeyError) as e:  # a bad conversation: shown, explained on "explain"
        return plain + f'<div class="pl-empty">{render.escape_text(str(e))}</div>'
    if rendered.template is None:
        return plain
    label = f"PROMPT (chat template: {rendered.template}; template tokens greyed)"
    return render.templated_text_html(rendered.text, rendered.template_spans, label=label)


def segment_separator(state: SessionState) -> str:
    """The session's separator regex for the "blocks" granularity ("" when none is typed)."""
    return str(state.settings.get("segment_sep") or "")


def granularity_of(state: SessionState, ex: dict) -> Any:
    """The session's granularity, ready for aggregation: a built-in name, or a custom
    `promptlit.lib.segmentation.Segmentation` ("few-shot"; "blocks" at the session's separator;
    "segments" of the example). Raises ValueError saying what a custom one needs."""
    return resolve_granularity(state.granularity, example=ex, separator=segment_separator(state))


def render_views(wb: Any, state: SessionState, progress: Any = None) -> dict[str, Any]:
    """Everything the module draws for the session, as HTML strings / choices.

    Returns keys: view, legend, ranked, matrix, info, segments (dropdown choices), compare.
    """
    ex = base.primary_example(wb, state)
    out: dict[str, Any] = {"legend": "", "ranked": "", "matrix": "", "segments": [],
                           "compare": ""}
    if ex is None:
        out["view"] = '<div class="pl-empty">Select an example in the data table.</div>'
        out["info"] = ""
        return out
    if not state.explained:
        out["view"] = (prompt_preview_html(wb, state, ex)
                       + '<div class="pl-empty">Press “Generate &amp; explain” to generate the '
                       "response and compute its salience.</div>")
        out["info"] = ""
        return out
    sal = _matrix_salience(wb, state, ex, progress=progress)
    t = sal.num_response_tokens
    if t == 0:
        out["view"] = render.salience_view_html(sal, None)
        out["info"] = "The response is empty: nothing to explain."
        return out
    if state.span is None or not (0 <= state.span[0] < state.span[1] <= t):
        state.span = (0, t)
    span = span_salience(wb, state, ex, sal, state.span, progress=progress)
    g, k = granularity_of(state, ex), TOP_K
    with_template = include_template(state)
    out["view"] = render.salience_view_html(sal, span, granularity=g, intensity=state.intensity,
                                            selected=state.span, include_template=with_template)
    out["legend"] = render.legend_html(METHOD_LABELS.get(state.method, state.method),
                                       span.signed, intensity=state.intensity)
    ranked = [s for s in span.aggregate(g, side="prompt")
              if with_template or not isinstance(s, TemplateSegment)]
    out["ranked"] = render.ranked_table_html(ranked, signed=span.signed,
                                             k=k, intensity=state.intensity, granularity=g,
                                             attrs={"method": state.method, "granularity": g,
                                                    "span": f"{state.span[0]}:{state.span[1]}",
                                                    "template": str(with_template).lower()},
                                             include_template=with_template)
    out["matrix_fn"] = lambda: render.matrix_html(sal, state.method, granularity=g,
                                                  intensity=state.intensity,
                                                  include_template=with_template)
    template = sal.metadata.get("chat_template")
    template_note = (render.md(" · chat template **{}** ({} template tokens, greyed)", template,
                               int(sal.template_mask.sum()))
                     if template and template != "none" else
                     render.md(" · no chat template") if template else render.md(""))
    out["info"] = render.md("**{}** · explaining the {} · selected response tokens {}–{}: "
                            "“{}” · {} tokens ({} prompt){}", state.model, state.explain_target,
                            state.span[0], state.span[1] - 1, base.short(span.target_text, 80),
                            len(sal.tokens), sal.num_prompt_tokens, template_note)
    segs = []
    for seg in sal.response_segments(state.target_granularity):
        segs.append((base.short(seg.text, 60) or "⏎", f"{seg.token_start}:{seg.token_stop}"))
    out["segments"] = segs
    if state.compare_model and state.compare_model != state.model:
        sal2 = _matrix_salience(wb, state, ex, model=state.compare_model, progress=progress)
        if sal2.num_response_tokens:
            m2 = state.method if state.method in sal2.matrices else MATRIX_METHODS[0]
            span2 = sal2.for_span(0, sal2.num_response_tokens, m2)
            out["compare"] = (f'<div class="pl-role">COMPARE: {render.escape_text(state.compare_model)}'
                              f" ({render.escape_text(METHOD_LABELS.get(m2, m2))}, whole "
                              "response)</div>"
                              + render.salience_view_html(sal2, span2, granularity=g,
                                                          intensity=state.intensity,
                                                          include_template=with_template))
    return out


def build(ctx: base.Context) -> base.Module:
    """Draws the salience module and wires its controls (no model call on clicks)."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-lm-salience") as container:
        info = base.markdown("", elem_id="pl-salience-info")
        with gr.Row():
            explain_btn = gr.Button("Generate & explain", variant="primary", scale=2,
                                    elem_id="pl-explain")
            explain_target = gr.Radio(["response", "target"], value="response",
                                      label="Explain", scale=2, elem_id="pl-explain-target")
        with gr.Row():
            method = gr.Radio([(METHOD_LABELS[m], m) for m in METHODS], value="grad_l2",
                              label="Method", scale=3, elem_id="pl-method")
            ig_steps = gr.Slider(4, 64, value=16, step=4, label="IG steps", scale=1,
                                 visible=False, elem_id="pl-ig-steps")
        with gr.Row():
            granularity = gr.Radio(list(ALL_GRANULARITIES), value="words", label="Granularity",
                                   scale=3, elem_id="pl-granularity")
            segment_sep = gr.Textbox("", label="Separator regex (for “blocks”)",
                                     placeholder="^## ", max_length=MAX_SEPARATOR_CHARS, scale=1,
                                     elem_id="pl-segment-sep")
            intensity = gr.Slider(0.25, 5.0, value=1.0, step=0.25, label="Colour intensity",
                                  scale=1, elem_id="pl-intensity")
        with gr.Row():
            target_gran = gr.Dropdown(list(GRANULARITIES), value="words",
                                      label="Pick a response…", scale=1)
            target_seg = gr.Dropdown([], label="…segment as the target", scale=3,
                                     elem_id="pl-target-segment")
        legend = gr.HTML("", elem_id="pl-legend", js_on_load=None)
        view = gr.HTML('<div class="pl-empty">Select an example in the data table.</div>',
                       elem_id="pl-salience-view", js_on_load=CLICK_JS)
        compare = gr.HTML("", elem_id="pl-compare-view", js_on_load=None)
        base.markdown("**Most salient prompt segments** (score = sum over the selected tokens)")
        ranked = gr.HTML("", elem_id="pl-ranked", js_on_load=None)
        with gr.Row():
            show_matrix = gr.Checkbox(label="Show the target×source matrix", value=False,
                                      elem_id="pl-show-matrix")
            with_template = gr.Checkbox(
                label="Include chat-template tokens in colours and rankings", value=False,
                elem_id="pl-include-template",
                info="Template tokens (turn markers, role words) are greyed and left out by "
                     "default; their salience is computed either way.")
        matrix = gr.HTML("", elem_id="pl-matrix", visible=False, js_on_load=None)

    draw_outputs = [view, legend, ranked, matrix, info, target_seg, compare]

    def draw(state: SessionState, with_matrix: bool, progress: Any = None) -> list[Any]:
        # Always a callback: a click can start IG for a new span, which must stop (Cancelled)
        # once its client cancels or leaves.
        r = render_views(wb, state, progress=progress or base.progress_adapter(None))
        matrix_html = r["matrix_fn"]() if with_matrix and "matrix_fn" in r else ""
        current = (f"{state.span[0]}:{state.span[1]}" if state.span else None)
        values = [v for _, v in r["segments"]]
        return [r["view"], r["legend"], r["ranked"], gr.update(value=matrix_html),
                r["info"], gr.update(choices=r["segments"],
                                     value=current if current in values else None),
                r["compare"]]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state, state.show_matrix)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *draw_outputs, ctx.footer]
        n = len(outs)

        all_outs = [ctx.state, *ctx.refresh_outputs(), ctx.footer]

        @base.guard(len(all_outs))
        def on_explain(state: SessionState, target: str, with_matrix: bool,
                       progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            ex = base.primary_example(wb, state)
            if ex is None:
                raise ValueError("no example selected: click a row in the data table first")
            if not state.model:
                raise ValueError("no model loaded that can explain a response")
            state.explain_target = target or "response"
            report = base.progress_adapter(progress)
            report(0.05, "generating the response")
            wb.predict(state.model, state.dataset, [ex], progress=report)
            report(0.4, "computing the salience matrix")
            _matrix_salience(wb, state, ex, progress=report)
            state.explained, state.span, state.anchor = True, None, None
            state.show_matrix = bool(with_matrix)
            # Redraw every module: the generation is now cached (generated text shows it).
            return (state, *ctx.refresh(state), base.ok("salience ready: click response "
                                                        "tokens to explain them"))

        explain_btn.click(on_explain, [ctx.state, explain_target, show_matrix], all_outs,
                          api_visibility="private", concurrency_id="model", concurrency_limit=1)

        @base.guard(n)
        def on_click(state: SessionState, with_matrix: bool, evt: gr.EventData) -> Any:
            data = getattr(evt, "_data", None) or {}
            if "index" not in data:
                return (state, *[gr.skip()] * (n - 2), "")
            if not state.explained:
                raise ValueError("press “Generate & explain” first")
            state.select_token(int(data["index"]), extend=bool(data.get("shift")))
            return (state, *draw(state, with_matrix), "")

        view.click(on_click, [ctx.state, show_matrix], outs, api_visibility="private",
                   concurrency_id="model", concurrency_limit=1)

        @base.guard(n)
        def on_setting(state: SessionState, m: str, g: str, inten: float, steps: float,
                       with_matrix: bool, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            state.method, state.granularity = m or state.method, g or state.granularity
            state.intensity, state.ig_steps = float(inten), int(steps)
            state.show_matrix = bool(with_matrix)
            if not state.explained:
                return (state, *[gr.skip()] * (n - 2), "")
            return (state, *draw(state, with_matrix, base.progress_adapter(progress)), "")

        settings = [ctx.state, method, granularity, intensity, ig_steps, show_matrix]
        for comp in (method, granularity):
            comp.change(on_setting, settings, outs, api_visibility="private",
                        concurrency_id="model", concurrency_limit=1)
        for slider in (intensity, ig_steps):
            slider.release(on_setting, settings, outs, api_visibility="private",
                           concurrency_id="model", concurrency_limit=1)
        show_matrix.change(on_setting, settings, outs, api_visibility="private",
                           concurrency_id="model", concurrency_limit=1).then(
            lambda v: gr.update(visible=bool(v)), [show_matrix], [matrix], api_visibility="private")
        method.change(lambda m: gr.update(visible=m == "integrated_gradients"), [method],
                      [ig_steps], api_visibility="private")

        @base.guard(n)
        def on_separator(state: SessionState, sep: str, with_matrix: bool) -> Any:
            sep = str(sep or "")
            if len(sep) > MAX_SEPARATOR_CHARS:
                raise ValueError(f"the separator has {len(sep)} characters; at most "
                                 f"{MAX_SEPARATOR_CHARS}")
            state.settings["segment_sep"] = sep
            if not state.explained or state.granularity != "blocks":
                return (state, *[gr.skip()] * (n - 2), "")
            return (state, *draw(state, with_matrix), "")

        for event in (segment_sep.submit, segment_sep.blur):
            event(on_separator, [ctx.state, segment_sep, show_matrix], outs,
                  api_visibility="private", concurrency_id="model", concurrency_limit=1)

        @base.guard(n)
        def on_target_gran(state: SessionState, tg: str, with_matrix: bool) -> Any:
            state.target_granularity = tg or "words"
            if not state.explained:
                return (state, *[gr.skip()] * (n - 2), "")
            return (state, *draw(state, with_matrix), "")

        target_gran.input(on_target_gran, [ctx.state, target_gran, show_matrix], outs,
                          api_visibility="private")

        @base.guard(n)
        def on_target_seg(state: SessionState, value: str, with_matrix: bool) -> Any:
            if not value:
                return (state, *[gr.skip()] * (n - 2), "")
            a, b = (int(x) for x in str(value).split(":"))
            state.set_span(a, b)
            return (state, *draw(state, with_matrix), "")

        @base.guard(n)
        def on_template(state: SessionState, value: bool, with_matrix: bool) -> Any:
            state.views.setdefault(NAME, {})["include_template"] = bool(value)
            if not state.explained:
                return (state, *[gr.skip()] * (n - 2), "")
            return (state, *draw(state, with_matrix), "")

        with_template.change(on_template, [ctx.state, with_template, show_matrix], outs,
                             api_visibility="private", concurrency_id="model",
                             concurrency_limit=1)

        target_seg.input(on_target_seg, [ctx.state, target_seg, show_matrix], outs,
                         api_visibility="private", concurrency_id="model", concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, draw_outputs, refresh, wire,
                                    controls={"granularity": granularity, "method": method}))
