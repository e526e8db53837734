"""Counterfactuals: derive new examples from the selected ones, see what the model now says, and
keep the interesting ones.

Pick a generator (every registered generator the model / dataset specs fit: word replacer with
your substitutions such as "good -> bad, great -> terrible", scrambler, ablation flip,
hotflip), adjust its settings, and "Generate" runs it on the selected examples through
`Workbench.generate` (cached). The table lists each new example with the model's prediction for
its source and for it (✓ where the decision flipped). Tick the ones to keep and "Add" puts them
in this session's copy of the dataset (validated against the spec, like the datapoint editor;
other browser sessions do not see them) and selects them.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from promptlit.api import types
from promptlit.components import _classifier_common as common
from promptlit.ui import render
from promptlit.ui.modules import base, datapoint_editor, interp_common
from promptlit.ui.state import SessionState

NAME = "counterfactuals"
LABELS = {"word_replacer": "Word replacer", "scrambler": "Scrambler",
          "ablation_flip": "Ablation flip", "hotflip": "HotFlip"}
DEFAULTS: dict[str, Any] = {"generator": None, "subs": None, "settings": {}, "generated": []}
# Config fields the settings box leaves out: field pickers (the generator's defaults apply)
# and the substitutions, which have their own box.
_HIDDEN_TYPES = (types.SingleFieldMatcher, types.MultiFieldMatcher)


@dataclasses.dataclass
class Generated:
    """One generated example with the model's predictions for it and for its source.

    Attributes:
      source_id: id of the example it was derived from; example: the new example.
      before, after: the prediction summaries ("positive (0.91)", "3.42").
      flipped: whether the decision changed (the class; the regression score's side of the
        threshold; a language model's response); None when the model has no such output.
    """

    source_id: str
    example: dict[str, Any]
    before: str
    after: str
    flipped: bool | None


def settings_defaults(wb: Any, generator: str) -> dict[str, Any]:
    """The generator's editable config defaults (without field pickers and substitutions)."""
    out = {}
    for key, t in wb.generators[generator].config_spec().items():
        if isinstance(t, _HIDDEN_TYPES) or key == "subs":
            continue
        default = getattr(t, "default", None)
        out[key] = list(default) if isinstance(default, tuple) else default
    return out


def parse_settings(text: str) -> dict[str, Any]:
    """The settings box as a dict; a plain-words error if it is not a JSON object."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"settings: not valid JSON ({e.msg} at line {e.lineno} column "
                         f"{e.colno}); write an object like {{\"num_examples\": 5}}") from None
    if not isinstance(value, dict):
        raise ValueError('settings: expected a JSON object like {"num_examples": 5}')
    return value


def generator_config(wb: Any, generator: str, subs: str, settings: dict[str, Any]
                     ) -> dict[str, Any]:
    """The config sent to the generator: known settings keys, plus ``subs`` if it takes them."""
    spec = wb.generators[generator].config_spec()
    unknown = sorted(set(settings) - set(spec))
    if unknown:
        raise ValueError(f"settings: {generator} has no option(s) {unknown}; its options are "
                         f"{sorted(k for k in spec if k != 'subs')}")
    cfg = dict(settings)
    if "subs" in spec:
        if not (subs or "").strip():
            raise ValueError("write substitutions like 'good -> bad, great -> terrible'")
        cfg["subs"] = subs
    return cfg


def _decision(pred: Any, spec: Any) -> Any:
    if isinstance(spec, types.MulticlassPreds):
        return int(np.argmax(np.asarray(pred, dtype=np.float64)))
    return None


def run_generator(wb: Any, state: SessionState, generator: str, config: dict[str, Any],
                  progress: Any = None) -> list[Generated]:
    """Runs ``generator`` on the selected examples; returns the new ones with predictions.

    Also keeps them in the session (``state.views["counterfactuals"]["generated"]``) for
    `add_generated`.
    """
    model = interp_common.pick_model(wb, state, interp_common.generators)
    if model is None:
        raise ValueError("no loaded model and generator fit this dataset")
    selected = base.selected_examples(wb, state)
    if not selected:
        raise ValueError("no example selected: click a row in the data table first")
    sources = [ex for _, ex in selected]
    made = wb.generate(generator, model, state.dataset, sources, config, progress=progress)
    new = [(i, ex) for (i, _), outs in zip(selected, made, strict=True) for ex in outs]
    out_spec = wb.models[model].output_spec()
    # The decision shown: a classification / regression output, else a generated text.
    keys = common.prediction_keys(out_spec) or [
        k for k, t in out_spec.items() if isinstance(t, types.GeneratedText)]
    key = keys[0] if keys else None
    before = dict(zip([i for i, _ in selected],
                      wb.predict(model, state.dataset, sources), strict=True))
    after = wb.predict(model, state.dataset, [ex for _, ex in new]) if new else []
    rows = []
    for (src, ex), out in zip(new, after, strict=True):
        b = before[src]
        if key is None:
            rows.append(Generated(src, ex, "", "", None))
            continue
        spec = out_spec[key]
        flipped: bool | None
        if isinstance(spec, types.MulticlassPreds):
            flipped = _decision(b[key], spec) != _decision(out[key], spec)
        elif isinstance(spec, types.GeneratedText):
            flipped = str(b[key]).strip() != str(out[key]).strip()
        else:
            threshold = float(config.get("regression_threshold", 0.0) or 0.0)
            flipped = (float(np.ravel(b[key])[0]) > threshold) != (
                float(np.ravel(out[key])[0]) > threshold)
        rows.append(Generated(src, ex, interp_common.prediction_summary(b[key], spec),
                              interp_common.prediction_summary(out[key], spec), flipped))
    v = interp_common.view(state, NAME, **DEFAULTS)
    v.update(generated=rows, model=model, dataset=state.dataset)
    return rows


def text_fields(wb: Any, state: SessionState) -> list[str]:
    """The dataset's text fields (the columns the table shows)."""
    if state.dataset not in wb.datasets:
        return []
    return [k for k, t in wb.datasets[state.dataset].spec().items()
            if isinstance(t, types.TextSegment)]


def table(wb: Any, state: SessionState, rows: list[Generated]) -> pd.DataFrame:
    """The review table: new #, source #, the text fields, predictions before / after, flip."""
    fields = text_fields(wb, state)
    cols = ["new", "from #", *fields, "source prediction", "new prediction", "flipped"]
    data = []
    for n, g in enumerate(rows, 1):
        data.append([n, base.index_of(wb, state, g.source_id),
                     *[base.short(g.example.get(f, ""), 200) for f in fields], g.before, g.after,
                     "" if g.flipped is None else ("✓" if g.flipped else "")])
    return pd.DataFrame(data, columns=cols)


def add_generated(wb: Any, state: SessionState, picks: list[int]) -> list[str]:
    """Adds generated examples ``picks`` (1-based, as in the table) to the session's dataset
    (validated against its spec) and selects them; returns their ids."""
    rows = interp_common.view(state, NAME, **DEFAULTS)["generated"]
    if not rows:
        raise ValueError("nothing generated yet: press “Generate” first")
    if not picks:
        raise ValueError("tick the generated examples to add first")
    bad = [p for p in picks if not 1 <= int(p) <= len(rows)]
    if bad:
        raise ValueError(f"no generated example {bad[0]}: there are {len(rows)}")
    ids = [datapoint_editor.add_to_session(wb, state, dict(rows[int(p) - 1].example))
           for p in picks]
    ids = list(dict.fromkeys(ids))
    state.select_example(ids[0])
    state.selected_ids = ids
    return ids


def _choices(rows: list[Generated], field: str | None) -> list[tuple[str, str]]:
    return [(f"{n}: {base.short(g.example.get(field, '') if field else '', 60)}", str(n))
            for n, g in enumerate(rows, 1)]


def build(ctx: base.Context) -> base.Module:
    """Draws the counterfactuals module and wires generate / add."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-counterfactuals") as container:
        info = base.markdown("", elem_id="pl-cf-info")
        with gr.Row():
            generator = gr.Dropdown([], label="Generator", scale=1, elem_id="pl-cf-generator")
            subs = gr.Textbox(label="Substitutions (word replacer)", scale=2,
                              placeholder="good -> bad, great -> terrible | awful",
                              elem_id="pl-cf-subs")
        settings = gr.Textbox(label="Settings (JSON; the generator's options)", lines=1,
                              elem_id="pl-cf-settings")
        generate_btn = gr.Button("Generate for the selected examples", variant="primary",
                                 elem_id="pl-cf-generate")
        results = gr.Dataframe(interactive=False, wrap=True, elem_id="pl-cf-table",
                               label="Generated examples and the model's predictions")
        picks = gr.CheckboxGroup([], label="Pick generated examples to add",
                                 elem_id="pl-cf-picks")
        with gr.Row():
            add_btn = gr.Button("Add picked to this session's dataset", elem_id="pl-cf-add")
            add_all_btn = gr.Button("Add all", elem_id="pl-cf-add-all")

    outputs = [info, generator, subs, settings, results, picks]

    def draw(state: SessionState) -> list[Any]:
        v = interp_common.view(state, NAME, **DEFAULTS)
        if v.get("dataset") not in (None, state.dataset):
            v.update(generated=[], dataset=None)  # they belong to another dataset
        model = interp_common.pick_model(wb, state, interp_common.generators)
        if model is None:
            return ["No generator fits the loaded models on this dataset.",
                    gr.update(choices=[], value=None), gr.skip(), "", pd.DataFrame(),
                    gr.update(choices=[], value=[])]
        gens = interp_common.generators(wb, model, state.dataset)
        if v["generator"] not in gens:
            v["generator"] = gens[0]
            v["settings"] = {}
        gen = v["generator"]
        spec = wb.generators[gen].config_spec()
        if v["subs"] is None and "subs" in spec:
            v["subs"] = str(getattr(spec["subs"], "default", "") or "")
        shown = {**settings_defaults(wb, gen), **v["settings"]}
        rows = v["generated"]
        fields = text_fields(wb, state)
        n_sel = len(state.selected_ids)
        text = (render.md("**{}** · {} selected example(s) · {} generated", model, n_sel,
                          len(rows)) if rows else
                render.md("**{}** · {} selected example(s) · pick a generator and press "
                          "**Generate**", model, n_sel))
        return [text, gr.update(choices=[(LABELS.get(g, g), g) for g in gens], value=gen),
                gr.update(value=v["subs"] or "", visible="subs" in spec),
                json.dumps(shown), table(wb, state, rows),
                gr.update(choices=_choices(rows, fields[0] if fields else None), value=[])]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]

        @base.guard(len(outs))
        def on_generator(state: SessionState, gen: str) -> Any:
            v = interp_common.view(state, NAME, **DEFAULTS)
            if gen and gen != v["generator"]:
                v.update(generator=gen, settings={})
            return (state, *draw(state), "")

        generator.input(on_generator, [ctx.state, generator], outs, api_visibility="private")

        @base.guard(len(outs))
        def on_generate(state: SessionState, gen: str, sub: str, sett: str,
                        progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            v = interp_common.view(state, NAME, **DEFAULTS)
            if not gen:
                raise ValueError("pick a generator first")
            chosen = parse_settings(sett)
            defaults = settings_defaults(wb, gen)
            v.update(generator=gen, subs=sub,
                     settings={k: val for k, val in chosen.items() if defaults.get(k) != val})
            cfg = generator_config(wb, gen, sub, chosen)
            base.check_selection(ctx, state, "generates counterfactuals")
            rows = run_generator(wb, state, gen, cfg, progress=base.progress_adapter(progress))
            flips = sum(1 for g in rows if g.flipped)
            msg = (f"{LABELS.get(gen, gen)} made {len(rows)} example(s), {flips} with a "
                   "different decision" if rows else
                   f"{LABELS.get(gen, gen)} made no examples from the selection (e.g. no "
                   "substitution matched)")
            return (state, *draw(state), base.ok(msg) if rows else "⚠ " + msg)

        generate_btn.click(on_generate, [ctx.state, generator, subs, settings], outs,
                           api_visibility="private", concurrency_id="model", concurrency_limit=1)

        all_outs = [ctx.state, *ctx.refresh_outputs(), ctx.footer]

        @base.guard(len(all_outs))
        def on_add(state: SessionState, chosen: list[str] | None) -> Any:
            ids = add_generated(wb, state, [int(c) for c in chosen or []])
            n = len(base.dataset_rows(wb, state))
            return (state, *ctx.refresh(state),
                    base.ok(f"added {len(ids)} example(s) to this session's {state.dataset} "
                            f"(now {n}); they are selected"))

        add_btn.click(on_add, [ctx.state, picks], all_outs, api_visibility="private")

        @base.guard(len(all_outs))
        def on_add_all(state: SessionState) -> Any:
            rows = interp_common.view(state, NAME, **DEFAULTS)["generated"]
            return inspect.unwrap(on_add)(state, [str(i) for i in range(1, len(rows) + 1)])

        add_all_btn.click(on_add_all, [ctx.state], all_outs, api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
