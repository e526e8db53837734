"""Generated text: the model's response beside the target, per-token log-probabilities, and
exact match / BLEU / ROUGE-L / perplexity for every selected example.

"Generate" runs `Workbench.predict` (cached) for all selected examples with a progress bar; the
metrics come from `promptlit.components.text_metrics`.

Top alternatives: a model whose predictions carry ``response_top_tokens`` (a `KerasCausalLM`: the
5 most likely tokens at each response position) shows them on hover; a click on a token opens
them with their probabilities, and "explain why not this one" selects that token in the sequence
salience module with the alternative as the contrast B ("why A rather than B?", computed through
`Workbench.salience(..., contrast=B)`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from promptlit.components import text_metrics as tm
from promptlit.ui import render
from promptlit.ui.modules import base
from promptlit.ui.state import SessionState

NAME = "generated_text"
METRIC_COLUMNS = ["#", "response", "target", "exact_match", "bleu", "rouge_l", "perplexity"]


def metrics_row(number: int | None, ex: dict, out: dict) -> dict[str, Any]:
    """One metrics-table row: the response vs the example's target (blank without a target)."""
    response = str(out.get("response", ""))
    target = ex.get("target")
    row: dict[str, Any] = {"#": number, "response": base.short(response, 100),
                           "target": base.short(target or "", 100)}
    if target:
        row["exact_match"] = tm.exact_match(response, target)
        row["bleu"] = round(tm.sentence_bleu(response, target), 2)
        row["rouge_l"] = round(tm.rouge_l(response, target), 4)
    else:
        row.update(exact_match=None, bleu=None, rouge_l=None)
    lps = out.get("response_logprobs")
    try:
        row["perplexity"] = (round(tm.perplexity(np.asarray(lps, dtype=np.float64)), 3)
                             if lps is not None and len(lps) else None)
    except ValueError:
        row["perplexity"] = None
    return row


def logprobs_html(out: dict) -> str:
    """The response tokens coloured by probability, with ``log p`` (and the top alternatives,
    when the prediction has them) on hover (white = likely); no panel open (`tokens_html`)."""
    return tokens_html(out)


# Delegated clicks: a token opens its alternatives; "explain why not this one" sends the
# token's index and the alternative's rank.
TOKENS_JS = """
element.addEventListener('click', (e) => {
  const why = e.target.closest('button.pl-why-not');
  if (why && element.contains(why)) {
    e.preventDefault();
    trigger('click', {index: parseInt(why.dataset.index), alt: parseInt(why.dataset.alt)});
    return;
  }
  const tok = e.target.closest('.pl-tok[data-index]');
  if (tok && element.contains(tok)) trigger('click', {index: parseInt(tok.dataset.index)});
});
"""


def open_token(state: SessionState) -> int | None:
    """The response token whose alternatives are open, for the shown example (else None)."""
    v = state.views.get(NAME, {})
    if v.get("example") == state.primary_id and isinstance(v.get("open"), int):
        return int(v["open"])
    return None


def tokens_html(out: dict, state: SessionState | None = None) -> str:
    """The response tokens with log p and, when the prediction has them, the top alternatives
    (`render.token_alternatives_html`)."""
    tokens = out.get("response_tokens")
    lps = out.get("response_logprobs")
    if tokens is None or lps is None or len(tokens) != len(lps):
        return '<div class="pl-empty">This model gives no per-token log-probabilities.</div>'
    alts = out.get("response_top_tokens")
    return render.token_alternatives_html(
        [str(t) for t in tokens], [float(x) for x in lps],
        alts if isinstance(alts, list | tuple) and len(alts) == len(tokens) else None,
        open_index=open_token(state) if state is not None else None)


def build(ctx: base.Context) -> base.Module:
    """Draws the generated-text module and wires "Generate"."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-generated-text") as container:
        generate_btn = gr.Button("Generate for the selected examples", variant="secondary",
                                 elem_id="pl-generate")
        with gr.Row():
            response = gr.Textbox(label="Response", lines=4, interactive=False,
                                  elem_id="pl-response")
            target = gr.Textbox(label="Target", lines=4, interactive=False, elem_id="pl-target")
        tokens = gr.HTML("", elem_id="pl-logprobs", js_on_load=TOKENS_JS)
        table = gr.Dataframe(headers=METRIC_COLUMNS, interactive=False, wrap=True,
                             elem_id="pl-metrics", label="Metrics per selected example")

    outputs = [response, target, tokens, table]

    def draw(state: SessionState, generate: bool = False, progress: Any = None) -> list[Any]:
        selected = base.selected_examples(wb, state)
        ex = base.primary_example(wb, state)
        if ex is None or not state.model:
            return ["", "", "", pd.DataFrame(columns=METRIC_COLUMNS)]
        if not generate:
            # Show only what is cached: never run the model on a mere selection change.
            model = wb.models[state.model]
            cached = getattr(model, "cached", None)
            if not callable(cached):
                return ["", str(ex.get("target", "")), "",
                        pd.DataFrame(columns=METRIC_COLUMNS)]
            outs = list(cached([e for _, e in selected]))
            if any(o is None for o in outs):
                return ["(press Generate)", str(ex.get("target", "")), "",
                        pd.DataFrame(columns=METRIC_COLUMNS)]
        else:
            outs = wb.predict(state.model, state.dataset, [e for _, e in selected],
                              progress=progress)
        rows = [metrics_row(base.index_of(wb, state, i), e, o)
                for (i, e), o in zip(selected, outs, strict=True)]
        primary = outs[[i for i, _ in selected].index(state.primary_id)] \
            if state.primary_id in [i for i, _ in selected] else outs[0]
        return [str(primary.get("response", "")), str(ex.get("target", "")),
                tokens_html(primary, state), pd.DataFrame(rows, columns=METRIC_COLUMNS)]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]

        @base.guard(len(outs))
        def on_generate(state: SessionState, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            if not state.selected_ids:
                raise ValueError("no example selected: click a row in the data table first")
            base.check_selection(ctx, state, "generates responses")
            updates = draw(state, generate=True, progress=base.progress_adapter(progress))
            return (state, *updates, base.ok(f"generated {len(state.selected_ids)} response(s)"))

        generate_btn.click(on_generate, [ctx.state], outs, api_visibility="private",
                           concurrency_id="model", concurrency_limit=1)

        salience = ctx.modules.get("lm_salience")
        contrast_box = salience.controls.get("contrast") if salience is not None else None
        all_outs = [ctx.state, *ctx.refresh_outputs(),
                    *([contrast_box] if contrast_box is not None else []), ctx.footer]
        n_all = len(all_outs)

        @base.guard(n_all)
        def on_token(state: SessionState, evt: gr.EventData,
                     progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            data = getattr(evt, "_data", None) or {}
            ex = base.primary_example(wb, state)
            if "index" not in data or ex is None or not state.model:
                return (state, *[gr.skip()] * (n_all - 1))
            index = int(data["index"])
            if "alt" not in data:  # open (or close) the token's alternatives: no model call
                v = state.views.setdefault(NAME, {})
                same = v.get("example") == state.primary_id and v.get("open") == index
                v.update(example=state.primary_id, open=None if same else index)
                updates: list[Any] = [gr.skip()] * (n_all - 2)
                updates[all_outs.index(tokens) - 1] = draw(state)[2]  # this view only
                return (state, *updates, "")
            if salience is None or contrast_box is None:
                raise ValueError("the layout has no sequence salience module to explain in")
            from promptlit.ui.modules import lm_salience  # noqa: PLC0415 - sibling module

            cached = getattr(wb.models[state.model], "cached", None)
            outs_cached = list(cached([ex])) if callable(cached) else [None]
            out = outs_cached[0]
            if out is None:
                raise ValueError("generate the response first")
            alts = out.get("response_top_tokens") or []
            if not 0 <= index < len(alts) or not 0 <= int(data["alt"]) < len(alts[index]):
                raise ValueError(f"no alternative #{data['alt']} at response token {index}")
            text = ctx.limits.check_contrast(str(alts[index][int(data["alt"])][0]))
            report = base.progress_adapter(progress)
            state.explain_target = "response"
            lm_salience._matrix_salience(wb, state, ex, progress=report)
            state.explained = True
            state.set_span(index, index + 1)
            state.anchor = index
            lm_salience.set_contrast(state, text)
            return (state, *ctx.refresh(state), text,
                    base.ok(f"why “{base.short(str(out['response_tokens'][index]), 30)}” rather "
                            f"than “{base.short(text, 30)}”: contrastive salience ready"))

        tokens.click(on_token, [ctx.state], all_outs, api_visibility="private",
                     concurrency_id="model", concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
