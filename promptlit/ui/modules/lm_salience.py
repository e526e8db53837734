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

"Why A rather than B?" (contrastive salience): type an alternative continuation B for the
selected response span A (or pick one of the model's top alternatives in the generated-text
module: "explain why not this one") and the prompt is coloured by its salience for
``log p(A) - log p(B)`` (`Workbench.salience(..., contrast=B)`, cached per span, method and B).
Signed methods then split the ranking into segments that push toward A and toward B; Grad L2 (the
norm of the gradient of the difference) has no direction. The contrast belongs to the example,
model and explained text it was set for.

Attention view: "Show attention" adds, beside the gradient salience, the model's attention from
the positions that wrote the selected span to every token (`Workbench.attention`, one cached
forward pass), averaged over layers and heads or for one layer / head, aggregated to the same
granularity (a segment's score is its share of the span's attention).

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
import itertools
import json
from typing import Any

import gradio as gr

from promptlit.lib.segmentation import ALL_GRANULARITIES, MAX_SEPARATOR_CHARS, resolve_granularity
from promptlit.salience.aggregation import GRANULARITIES, TemplateSegment
from promptlit.ui import fast_salience, render
from promptlit.ui.modules import base
from promptlit.ui.state import METHOD_LABELS, METHODS, SessionState

NAME = "lm_salience"
MATRIX_METHODS: tuple[str, ...] = ("grad_l2", "grad_dot_input")
TOP_K = 10
ATTENTION_WHOLE_CELLS = 65_536
"""The attention view keeps the whole response's maps (T x N rows per layer and head) up to this
many T x N cells; beyond, it asks for the selected span's rows only."""

# Delegated click handler: a click on a response token redraws the view in the browser when it
# can (`fast_salience.FAST_JS`: the matrix rows are summed there) and sends its index, whether
# shift was held and the browser's ack of what it drew to the Python callback wired to this
# gr.HTML's "click" event (which then only syncs the session and the secondary outputs).
CLICK_JS = fast_salience.FAST_JS + """
element.addEventListener('click', (e) => {
  const tok = e.target.closest('[data-index]');
  if (!tok || !element.contains(tok)) return;
  e.preventDefault();
  const index = parseInt(tok.dataset.index), shift = !!e.shiftKey;
  let fast = null;
  try { fast = PL.click(index, shift); } catch (err) { fast = null; }
  trigger('click', {index: index, shift: shift, fast: fast, need: !fast && PL.needsData()});
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


def contrast_of(state: SessionState) -> str | None:
    """The session's contrast text B, when it was set for the shown example, model and explained
    text (it does not follow the user to another example); else None."""
    c = state.views.get(NAME, {}).get("contrast")
    if isinstance(c, dict) and c.get("text") and (c.get("example"), c.get("model"),
                                                   c.get("target")) == (
            state.primary_id, state.model, state.explain_target):
        return str(c["text"])
    return None


def set_contrast(state: SessionState, text: str | None) -> None:
    """Sets (or, with None / "", clears) the contrast B for the shown example and model."""
    state.views.setdefault(NAME, {})["contrast"] = (
        {"text": text, "example": state.primary_id, "model": state.model,
         "target": state.explain_target} if text else None)


def _inner(wb: Any, model: str) -> Any:
    m = wb.models.get(model) if model else None
    return m.unwrap() if m is not None and callable(getattr(m, "unwrap", None)) else m


def supports_contrast(wb: Any, model: str) -> bool:
    """Whether ``model.salience`` takes a ``contrast`` (a `KerasCausalLM` does)."""
    fn = getattr(_inner(wb, model), "salience", None)
    try:
        return callable(fn) and "contrast" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def supports_attention(wb: Any, model: str) -> bool:
    """Whether the model has an ``attention(prompt, response)`` method."""
    return callable(getattr(_inner(wb, model), "attention", None))


def contrast_salience(wb: Any, state: SessionState, ex: dict, span: tuple[int, int],
                      contrast: str, progress: Any = None) -> Any:
    """The `SpanSalience` of ``span`` for ``log p(A) - log p(B = contrast)``, by the session's
    method (cached by the Workbench under a key holding B, the span, the method and steps).
    Its ``parent.contrast`` holds both log-probs and B's tokens."""
    if not supports_contrast(wb, state.model):
        raise ValueError(f"model {state.model!r} cannot compute contrastive salience (its "
                         "salience() takes no contrast)")
    result = wb.salience(state.model, ex, target=state.explain_target, methods=(state.method,),
                         ig_steps=int(state.ig_steps), progress=progress, contrast=contrast,
                         span=tuple(span))
    return result.for_span(span[0], span[1], state.method)


def attention_settings(state: SessionState) -> tuple[bool, int | None, int | None]:
    """(shown, layer, head) of the session's attention view; None = averaged."""
    v = state.views.get(NAME, {})

    def index(key: str) -> int | None:
        x = v.get(key)
        return int(x) if isinstance(x, int) or (isinstance(x, str) and x.isdigit()) else None

    return bool(v.get("attention", False)), index("att_layer"), index("att_head")


def attention_views(wb: Any, state: SessionState, ex: dict, span: tuple[int, int],
                    granularity: Any, with_template: bool, progress: Any = None
                    ) -> dict[str, Any]:
    """The attention view of ``span`` (HTML, ranked table, layer / head choices)."""
    _, layer, head = attention_settings(state)
    if not supports_attention(wb, state.model):
        return {"attention": '<div class="pl-empty">This model gives no attention weights.</div>',
                "attention_ranked": "", "layers": 0, "heads": 0, "layer": None, "head": None}
    sal = _matrix_salience(wb, state, ex, progress=progress)
    # Whole-response maps (one forward, then every span is numpy) while they are small; for
    # long texts only the span's rows (L x H x span x N floats, not L x H x T x N).
    whole = sal.num_response_tokens * sal.num_tokens <= ATTENTION_WHOLE_CELLS
    maps = wb.attention(state.model, ex, target=state.explain_target, progress=progress,
                        **({} if whole else {"span": tuple(span)}))
    layer = layer if layer is not None and layer < maps.num_layers else None
    head = head if head is not None and head < maps.num_heads else None
    att = maps.for_span(span[0], span[1], layer=layer, head=head)
    which = (f"layer {layer}" if layer is not None else "average over layers") + " · " + (
        f"head {head}" if head is not None else "average over heads")
    html = render.attention_view_html(att, granularity=granularity, intensity=state.intensity,
                                      include_template=with_template,
                                      label=f"ATTENTION ({which})")
    segs = [s for s in att.aggregate(granularity, side="prompt")
            if with_template or not isinstance(s, TemplateSegment)]
    ranked = render.ranked_table_html(
        segs, signed=False, k=TOP_K, intensity=state.intensity, granularity=granularity,
        attrs={"kind": "attention", "granularity": granularity,
               "span": f"{span[0]}:{span[1]}", "layer": "avg" if layer is None else layer,
               "head": "avg" if head is None else head},
        include_template=with_template)
    return {"attention": html,
            "attention_ranked": ('<div class="pl-role">SHARE OF THE SPAN’S ATTENTION (mean '
                                 "row; not an attribution)</div>" + ranked),
            "layers": maps.num_layers, "heads": maps.num_heads, "layer": layer, "head": head}


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

    Returns keys: view, legend, ranked, matrix, info, segments (dropdown choices), compare,
    attention (dict from `attention_views`, or None when the view is off or not ready).
    """
    ex = base.primary_example(wb, state)
    out: dict[str, Any] = {"legend": "", "ranked": "", "matrix": "", "segments": [],
                           "compare": "", "attention": None}
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
    contrast = contrast_of(state)
    span = (contrast_salience(wb, state, ex, state.span, contrast, progress=progress)
            if contrast else span_salience(wb, state, ex, sal, state.span, progress=progress))
    g, k = granularity_of(state, ex), TOP_K
    with_template = include_template(state)
    out["view"] = render.salience_view_html(sal, span, granularity=g, intensity=state.intensity,
                                            selected=state.span, include_template=with_template)
    label = METHOD_LABELS.get(state.method, state.method)
    out["legend"] = render.legend_html(f"{label} · why A rather than B" if contrast else label,
                                       span.signed, intensity=state.intensity)
    ranked = [s for s in span.aggregate(g, side="prompt")
              if with_template or not isinstance(s, TemplateSegment)]
    attrs = {"method": state.method, "granularity": g,
             "span": f"{state.span[0]}:{state.span[1]}", "template": str(with_template).lower()}
    if contrast:
        out["ranked"] = render.contrast_ranked_html(
            ranked, signed=span.signed, a_text=span.target_text, b_text=contrast, k=k,
            intensity=state.intensity, granularity=g, attrs={**attrs, "contrast": contrast},
            include_template=with_template)
    else:
        out["ranked"] = render.ranked_table_html(ranked, signed=span.signed,
                                                 k=k, intensity=state.intensity, granularity=g,
                                                 attrs=attrs, include_template=with_template)
    if attention_settings(state)[0]:
        out["attention"] = attention_views(wb, state, ex, state.span, g, with_template,
                                           progress=progress)
    sep = segment_separator(state)
    key = fast_salience.data_key(state.model, state.primary_id, state.explain_target, sal, sep)
    out["fast"] = {
        "key": key,
        # The browser can redraw clicks itself only for a cached matrix, no contrast B and no
        # attention view (those need the model or more data): anything else stays server-side.
        "ok": (not contrast and state.method in sal.matrices
               and state.method in MATRIX_METHODS and not attention_settings(state)[0]),
        "data": lambda: fast_salience.client_data(sal, ex, key=key, methods=MATRIX_METHODS,
                                                  separator=sep),
        "cfg": {"method": state.method, "gran": state.granularity,
                "span": [int(state.span[0]), int(state.span[1])],
                "anchor": None if state.anchor is None else int(state.anchor),
                "intensity": float(state.intensity), "tmpl": bool(with_template), "k": k}}
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
    c = span.parent.contrast if contrast else None
    if c is not None:
        out["info"] = render.md(
            "{}  \n**Why “{}” rather than “{}”?** log p(A) = {:.3f}, log p(B) = {:.3f} "
            "(B = {} token(s)); scores are for log p(A) − log p(B){}",
            out["info"], base.short(span.target_text, 60), base.short(contrast, 60),
            float(c["log_prob"]), float(c["log_prob_contrast"]), len(c["tokens"]),
            ": blue pushes toward A, red toward B" if span.signed else
            " (Grad L2: strength, no direction)")
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


_REVISIONS = itertools.count(1)


def fast_outputs(state: SessionState, r: dict[str, Any]) -> tuple[Any, str]:
    """The view and ranking outputs of a server render, ready for clicks in the browser.

    Each server render gets a new revision: the view carries it (with what the browser needs to
    redraw clicks: `fast_salience`) in a hidden ``div.pl-fast``, and the ranking in its
    ``div.pl-ranked-box``, so a render is never the same string as an earlier one (Gradio skips
    an update equal to the last value it sent, which would leave a browser-drawn view in place).
    The matrices and segment maps (``pl_data``) go to the page once per example and settings
    that change them (`fast_salience.data_key`); the session remembers which it holds.
    """
    v = state.views.setdefault(NAME, {})
    rev = next(_REVISIONS)
    v["rev"] = rev
    f = r.get("fast")
    cfg: dict[str, Any] = {"rev": rev, "fast": False, "key": ""}
    update: dict[str, Any] = {}
    if f is not None:
        if v.get("sent_key") != f["key"]:
            data = f["data"]()
            update["pl_data"] = data
            v["sent_key"], v["data_ok"] = f["key"], data is not None
        usable = v.get("sent_key") == f["key"] and bool(v.get("data_ok"))
        v["fast_key"] = f["key"]
        cfg.update(f["cfg"], key=f["key"], fast=bool(f["ok"] and usable))
    view = (r["view"] + '<div class="pl-fast" hidden data-config="'
            + render.escape_text(json.dumps(cfg, separators=(",", ":"))) + '"></div>')
    ranked = f'<div class="pl-ranked-box" data-rev="{rev}">{r["ranked"]}</div>'
    return (gr.update(value=view, **update) if update else view), ranked


def adopt_ack(state: SessionState, ack: dict[str, Any] | None) -> bool:
    """Takes the selection the browser drew (a `fast_salience.parse_ack` ack) into the session.

    True when the ack answers the view the server last rendered for this session (same data key
    and revision): the browser's view is then current, and the selection is adopted unless a
    newer ack was already (acks carry a sequence number; Gradio may run a late one after a newer
    one). False: the server must redraw as before.
    """
    v = state.views.get(NAME, {})
    if ack is None or ack["key"] != v.get("fast_key") or ack["rev"] != v.get("rev"):
        return False
    if ack["seq"] > int(v.get("seq", 0)):
        v["seq"] = ack["seq"]
        state.span, state.anchor, state.granularity = ack["span"], ack["anchor"], ack["gran"]
    return True


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
                                     placeholder="^## ", scale=1, elem_id="pl-segment-sep",
                                     max_length=min(ctx.limits.max_separator_chars,
                                                    MAX_SEPARATOR_CHARS))
            intensity = gr.Slider(0.25, 5.0, value=1.0, step=0.25, label="Colour intensity",
                                  scale=1, elem_id="pl-intensity")
        with gr.Row():
            target_gran = gr.Dropdown(list(GRANULARITIES), value="words",
                                      label="Pick a response…", scale=1)
            target_seg = gr.Dropdown([], label="…segment as the target", scale=3,
                                     elem_id="pl-target-segment")
        with gr.Row():
            contrast_box = gr.Textbox(
                label="…rather than B (why did the model write the selected span A rather "
                      "than this?)", placeholder="an alternative continuation, e.g.  Avoid",
                max_length=ctx.limits.max_contrast_chars, scale=3, elem_id="pl-contrast")
            contrast_btn = gr.Button("Why A rather than B?", scale=1,
                                     elem_id="pl-contrast-explain")
            contrast_clear = gr.Button("Clear contrast", scale=1, elem_id="pl-contrast-clear")
        legend = gr.HTML("", elem_id="pl-legend", js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                view = gr.HTML('<div class="pl-empty">Select an example in the data table.</div>',
                               elem_id="pl-salience-view", js_on_load=CLICK_JS,
                               pl_data=None)
                # The granularity radio's browser-side redraw hands its ack to the server here.
                fast_ack = gr.Textbox("", visible=False, max_length=fast_salience.MAX_ACK_CHARS)
            with gr.Column(scale=2, min_width=280, visible=False,
                           elem_id="pl-attention-column") as att_col:
                with gr.Row():
                    att_layer = gr.Dropdown([("average", "avg")], value="avg", label="Layer",
                                            elem_id="pl-att-layer")
                    att_head = gr.Dropdown([("average", "avg")], value="avg", label="Head",
                                           elem_id="pl-att-head")
                attention = gr.HTML("", elem_id="pl-attention-view", js_on_load=None)
                attention_ranked = gr.HTML("", elem_id="pl-attention-ranked", js_on_load=None)
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
            show_attention = gr.Checkbox(
                label="Show attention beside the salience", value=False,
                elem_id="pl-show-attention",
                info="The model's attention from the positions that wrote the selected span, "
                     "per layer and head or averaged (one cached forward pass).")
        matrix = gr.HTML("", elem_id="pl-matrix", visible=False, js_on_load=None)

    draw_outputs = [view, legend, ranked, matrix, info, target_seg, compare, att_col, attention,
                    attention_ranked, att_layer, att_head]

    def draw(state: SessionState, with_matrix: bool, progress: Any = None, *,
             synced: bool = False) -> list[Any]:
        # Always a callback: a click can start IG for a new span, which must stop (Cancelled)
        # once its client cancels or leaves. ``synced``: the browser already drew the view and
        # the ranking (a fast click), so those two are left as they are.
        r = render_views(wb, state, progress=progress or base.progress_adapter(None))
        view_out, ranked_out = ((gr.skip(), gr.skip()) if synced
                                else fast_outputs(state, r))
        matrix_html = r["matrix_fn"]() if with_matrix and "matrix_fn" in r else ""
        current = (f"{state.span[0]}:{state.span[1]}" if state.span else None)
        values = [v for _, v in r["segments"]]
        att = r.get("attention")
        if att is None:
            att_updates = [gr.update(visible=attention_settings(state)[0] and state.explained),
                           "", "", gr.skip(), gr.skip()]
        else:
            layers = [("average", "avg")] + [(f"layer {i}", str(i))
                                             for i in range(att["layers"])]
            heads = [("average", "avg")] + [(f"head {i}", str(i)) for i in range(att["heads"])]
            att_updates = [
                gr.update(visible=True), att["attention"], att["attention_ranked"],
                gr.update(choices=layers, value="avg" if att["layer"] is None
                          else str(att["layer"])),
                gr.update(choices=heads, value="avg" if att["head"] is None
                          else str(att["head"]))]
        return [view_out, r["legend"], ranked_out, gr.update(value=matrix_html),
                r["info"], gr.update(choices=r["segments"],
                                     value=current if current in values else None),
                r["compare"], *att_updates]

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
            if data.get("need") is True:  # the page lacks the click data: send it again
                state.views.get(NAME, {}).pop("sent_key", None)
            if adopt_ack(state, _ack(state, data.get("fast"))):
                return (state, *draw(state, with_matrix, synced=True), "")
            state.select_token(int(data["index"]), extend=bool(data.get("shift")))
            return (state, *draw(state, with_matrix), "")

        def _ack(state: SessionState, raw: Any) -> dict[str, Any] | None:
            if raw is None or raw == "":
                return None
            ex = base.primary_example(wb, state)
            if ex is None or not state.explained:
                return None
            t = _matrix_salience(wb, state, ex).num_response_tokens
            return fast_salience.parse_ack(raw, t=t)

        # multiple: a click while another is pending is queued, not dropped (Gradio's default
        # for clicks drops it), so the session ends on the last selection the page drew.
        view.click(on_click, [ctx.state, show_matrix], outs, api_visibility="private",
                   concurrency_id="model", concurrency_limit=1, trigger_mode="multiple")

        @base.guard(n)
        def on_granularity(state: SessionState, g: str, ack: str, with_matrix: bool,
                           progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            state.granularity = g or state.granularity
            if not state.explained:
                return (state, *[gr.skip()] * (n - 2), "")
            if adopt_ack(state, _ack(state, ack)):
                return (state, *draw(state, with_matrix, synced=True), "")
            return (state, *draw(state, with_matrix, base.progress_adapter(progress)), "")

        granularity.change(on_granularity, [ctx.state, granularity, fast_ack, show_matrix], outs,
                           js=fast_salience.GRANULARITY_JS, api_visibility="private",
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
        method.change(on_setting, settings, outs, api_visibility="private",
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
            state.settings["segment_sep"] = ctx.limits.check_separator(str(sep or ""))
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

        # -- why A rather than B? (one forward + backward over both sequences per span) ----
        @base.guard(n)
        def on_contrast(state: SessionState, text: str, with_matrix: bool,
                        progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            if not state.explained:
                raise ValueError("press “Generate & explain” first, then select the response "
                                 "span A to contrast")
            text = ctx.limits.check_contrast(text or "")
            if not supports_contrast(wb, state.model):
                raise ValueError(f"model {state.model!r} cannot compute contrastive salience")
            set_contrast(state, text)
            updates = draw(state, with_matrix, base.progress_adapter(progress))
            return (state, *updates, base.ok("contrastive salience ready: why the selected "
                                             "span rather than B"))

        for event in (contrast_btn.click, contrast_box.submit):
            event(on_contrast, [ctx.state, contrast_box, show_matrix], outs,
                  api_visibility="private", concurrency_id="model", concurrency_limit=1)

        @base.guard(n + 1)
        def on_clear(state: SessionState, with_matrix: bool) -> Any:
            set_contrast(state, None)
            if not state.explained:
                return (state, *[gr.skip()] * (n - 2), "", "")
            return (state, *draw(state, with_matrix), "", base.ok("contrast cleared"))

        contrast_clear.click(on_clear, [ctx.state, show_matrix],
                             [ctx.state, *draw_outputs, contrast_box, ctx.footer],
                             api_visibility="private", concurrency_id="model",
                             concurrency_limit=1)

        # -- attention view --------------------------------------------------------------------
        @base.guard(n)
        def on_attention(state: SessionState, shown: bool, layer: str, head: str,
                         with_matrix: bool, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            v = state.views.setdefault(NAME, {})
            v["attention"] = bool(shown)
            v["att_layer"] = None if layer in (None, "", "avg") else str(layer)
            v["att_head"] = None if head in (None, "", "avg") else str(head)
            if not state.explained:
                return (state, *[gr.skip()] * (n - 2), "")
            return (state, *draw(state, with_matrix, base.progress_adapter(progress)), "")

        att_inputs = [ctx.state, show_attention, att_layer, att_head, show_matrix]
        show_attention.change(on_attention, att_inputs, outs, api_visibility="private",
                              concurrency_id="model", concurrency_limit=1)
        for dd in (att_layer, att_head):
            dd.input(on_attention, att_inputs, outs, api_visibility="private",
                     concurrency_id="model", concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, draw_outputs, refresh, wire,
                                    controls={"granularity": granularity, "method": method,
                                              "contrast": contrast_box,
                                              "show_matrix": show_matrix}))
