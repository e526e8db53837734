"""Compare prompts: two versions of a prompt side by side, and what changed in their salience.

Pick two examples, A and B (e.g. a few-shot prompt with a mistaken example and its fixed
version, or an example and its edit from the Datapoint Editor; "A, B ← selection" takes the
data table's first two selected examples). "Compare" generates both responses and their
salience through the Workbench (cached), then draws, from `promptlit.comparison`:

* the two prompts aligned segment by segment at the chosen granularity (difflib on the segments'
  text): equal, changed (~), deleted (−, only in A) and inserted (+, only in B) segments, each
  coloured by its salience for its own response (or, with "the same text", both for A's
  response), on one colour scale;
* the segments whose salience changed most (``Δ = B − A``);
* the two responses as a token diff with each shared token's log-probability change.

Granularities include the custom ones: "few-shot" (repeated labelled blocks found
automatically, "example 1 … n"), "blocks" (split at the separator regex typed here; bounded and
checked, `promptlit.lib.segmentation.SeparatorSegmentation`) and "segments" (each example's own
labelled ``segments`` or template fields). Changing the granularity, the separator or the
normalisation redraws from the cache: no model call.
"""

from __future__ import annotations

import difflib
from typing import Any

import gradio as gr

from promptlit import comparison
from promptlit.lib.segmentation import ALL_GRANULARITIES, MAX_SEPARATOR_CHARS
from promptlit.ui import render, render_compare
from promptlit.ui.modules import base
from promptlit.ui.state import METHOD_LABELS, SessionState

NAME = "prompt_compare"
MAX_CHOICES = 1000
"""Most examples offered in each picker (any row can still be taken from the selection)."""
MAX_SIMILAR = 300
"""Most dataset rows searched for the original of a session edit (`default_pair`)."""
SIMILAR_CHARS = 2000
"""Characters of each prompt compared when looking for an edit's original."""
TOP_K = 10
TARGET_CHOICES = [("each its own response", "response"), ("each its own target", "target"),
                  ("the same text: A's response", "same")]
METHOD_CHOICES = [(METHOD_LABELS[m], m) for m in ("grad_l2", "grad_dot_input")]
DEFAULTS: dict[str, Any] = {"a": None, "b": None, "target": "response", "method": "grad_l2",
                            "granularity": "sentences", "separator": "", "normalize": True,
                            "done": False, "picked": False}


def settings(state: SessionState) -> dict[str, Any]:
    """This session's comparison settings (``state.views["prompt_compare"]``), defaults filled."""
    view = state.views.setdefault(NAME, {})
    for key, value in DEFAULTS.items():
        view.setdefault(key, value)
    return view


def example_choices(wb: Any, state: SessionState) -> list[tuple[str, str]]:
    """``(label, example id)`` for the pickers: "#i · source · prompt…", session edits marked."""
    out = []
    for i, (ex_id, ex, added) in enumerate(base.dataset_rows(wb, state)[:MAX_CHOICES]):
        source = ex.get("source")
        mark = " (added in this session)" if added else ""
        label = f"#{i}{mark} · {source} · " if source else f"#{i}{mark} · "
        out.append((label + base.short_middle(ex.get("prompt", ""), 90), ex_id))
    return out


def default_pair(wb: Any, state: SessionState, previous: str | None = None
                 ) -> tuple[str | None, str | None]:
    """A and B until the session picks them.

    The first two selected examples; else, for an example added in this session (an edit from
    the Datapoint Editor), the example it was made from as A (``previous``: the dataset example
    shown before it, else the one most like it) and the edit as B; else the selected example
    (or the first row) and the row after it (the shipped few-shot pairs are a mistaken prompt
    followed by its fixed version).
    """
    ids = [i for i in state.selected_ids if base.find_example(wb, state, i) is not None]
    if len(ids) >= 2:
        return ids[0], ids[1]
    rows = base.dataset_rows(wb, state)
    order = [r[0] for r in rows]
    a = state.primary_id if state.primary_id in order else (order[0] if order else None)
    if a is None:
        return None, None
    k = order.index(a)
    if rows[k][2]:  # added in this session: compare it with what it was made from
        before = {r[0]: r[2] for r in rows}
        if previous is not None and previous != a and before.get(previous) is False:
            return previous, a
        original = _most_similar(str(rows[k][1].get("prompt", "")),
                                 [r for r in rows[:MAX_SIMILAR] if not r[2]])
        if original is not None:
            return original, a
    b = order[k + 1] if k + 1 < len(order) else (order[k - 1] if k > 0 else None)
    return a, b


def _most_similar(prompt: str, rows: list[tuple[str, Any, bool]]) -> str | None:
    """The id of the row whose prompt is most like ``prompt`` (difflib ratio over the first
    `SIMILAR_CHARS` characters, so a redraw stays cheap), or None."""
    best, best_id = 0.0, None
    prompt = prompt[:SIMILAR_CHARS]
    for ex_id, ex, _ in rows:
        other = str(ex.get("prompt", ""))[:SIMILAR_CHARS]
        matcher = difflib.SequenceMatcher(None, prompt, other, autojunk=False)
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_id = ratio, ex_id
    return best_id


def run(wb: Any, state: SessionState, progress: Any = None) -> comparison.PromptComparison:
    """The comparison the session's settings ask for (Workbench-cached predictions and
    salience; a new pair, target or method computes what is missing)."""
    view = settings(state)
    if not state.model:
        raise ValueError("no model loaded that can explain a response")
    a = base.find_example(wb, state, view["a"])
    b = base.find_example(wb, state, view["b"])
    if a is None or b is None:
        raise ValueError("pick two examples, A and B, to compare")
    return comparison.compare_examples(
        wb, state.model, state.dataset, a, b, granularity=view["granularity"],
        target=view["target"], method=view["method"], normalize=bool(view["normalize"]),
        separator=view["separator"] or None, progress=progress)


def render_views(wb: Any, state: SessionState, progress: Any = None) -> dict[str, Any]:
    """What the module draws: keys info, side, changed, responses (HTML / Markdown)."""
    view = settings(state)
    out: dict[str, Any] = {"info": "", "side": "", "changed": "", "responses": ""}
    if not view["done"]:
        out["side"] = ('<div class="pl-empty">Pick two examples (A and B) and press '
                       "“Compare”.</div>")
        return out
    result = run(wb, state, progress=progress)
    rows = {r[0]: n for n, r in enumerate(base.dataset_rows(wb, state))}
    name_a, name_b = f"A (#{rows.get(view['a'])})", f"B (#{rows.get(view['b'])})"
    table = result.segments
    counts = table["op"].value_counts()
    explained = {"response": "each for its own response", "target": "each for its own target",
                 "same": "both for A's response"}[result.target]
    out["info"] = render.md(
        "**{}** · {} · {} · granularity **{}** · {} equal, {} changed, {} deleted, {} inserted"
        " segments{}", state.model, METHOD_LABELS.get(result.method, result.method), explained,
        result.granularity, int(counts.get("equal", 0)), int(counts.get("changed", 0)),
        int(counts.get("deleted", 0)), int(counts.get("inserted", 0)),
        " · scores as shares of each prompt's total" if table.attrs["normalize"] else "")
    out["side"] = render_compare.side_by_side_html(table, name_a=name_a, name_b=name_b)
    out["changed"] = render_compare.changed_html(comparison.changed_most(table, TOP_K))
    out["responses"] = render_compare.responses_html(result.responses, text_a=result.text_a,
                                                     text_b=result.text_b)
    return out


def build(ctx: base.Context) -> base.Module:
    """Draws the compare module and wires its controls."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-prompt-compare") as container:
        info = base.markdown("", elem_id="pl-cmp-info")
        with gr.Row():
            pick_a = gr.Dropdown([], label="A (e.g. the prompt with the mistake)", scale=3,
                                 elem_id="pl-cmp-a")
            pick_b = gr.Dropdown([], label="B (e.g. its fixed version, or your edit)", scale=3,
                                 elem_id="pl-cmp-b")
            from_selection = gr.Button("A, B ← selection", scale=1, elem_id="pl-cmp-selection")
        with gr.Row():
            target = gr.Radio(TARGET_CHOICES, value="response", label="Explain", scale=2,
                              elem_id="pl-cmp-target")
            method = gr.Radio(METHOD_CHOICES, value="grad_l2", label="Method", scale=1,
                              elem_id="pl-cmp-method")
        with gr.Row():
            granularity = gr.Radio(list(ALL_GRANULARITIES), value="sentences",
                                   label="Granularity", scale=3, elem_id="pl-cmp-granularity")
            separator = gr.Textbox("", label="Separator regex (for “blocks”)",
                                   placeholder="^## ", scale=1,
                                   max_length=min(ctx.limits.max_separator_chars,
                                                  MAX_SEPARATOR_CHARS),
                                   elem_id="pl-cmp-separator")
            normalize = gr.Checkbox(value=True, label="Scores as shares of each prompt's total",
                                    scale=1, elem_id="pl-cmp-normalize")
        compare_btn = gr.Button("Compare", variant="primary", elem_id="pl-cmp-run")
        base.markdown("**Prompts side by side** (= equal · ~ changed · − only in A · + only "
                      "in B; colour: salience, one scale for both)")
        side = gr.HTML("", elem_id="pl-cmp-side", js_on_load=None)
        base.markdown("**Segments whose salience changed most** (Δ = B − A)")
        changed = gr.HTML("", elem_id="pl-cmp-changed", js_on_load=None)
        responses = gr.HTML("", elem_id="pl-cmp-responses", js_on_load=None)

    outputs = [pick_a, pick_b, info, side, changed, responses]

    def draw(state: SessionState, progress: Any = None) -> list[Any]:
        view = settings(state)
        choices = example_choices(wb, state)
        ids = {v for _, v in choices}
        if not view["picked"] and not view["done"]:
            view["a"], view["b"] = default_pair(wb, state, previous=view["a"])
        if view["done"] and (view["a"] not in ids or view["b"] not in ids):
            view["done"] = False  # the dataset changed under the comparison
        r = render_views(wb, state, progress=progress)
        return [gr.update(choices=choices, value=view["a"] if view["a"] in ids else None),
                gr.update(choices=choices, value=view["b"] if view["b"] in ids else None),
                r["info"], r["side"], r["changed"], r["responses"]]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]
        n = len(outs)
        controls = [ctx.state, pick_a, pick_b, target, method, granularity, separator,
                    normalize]

        def store(state: SessionState, a: Any, b: Any, tgt: Any, m: Any, g: Any, sep: Any,
                  norm: Any) -> None:
            view = settings(state)
            sep = ctx.limits.check_separator(str(sep or ""))
            if tgt not in comparison.TARGETS:
                raise ValueError(f"unknown target {tgt!r}; choose one of {comparison.TARGETS}")
            if m not in ("grad_l2", "grad_dot_input"):
                raise ValueError(f"unknown method {m!r}")
            if g not in ALL_GRANULARITIES:
                raise ValueError(f"unknown granularity {g!r}")
            if (a or None, b or None) != (view["a"], view["b"]):
                view["picked"] = True
            view.update(a=a or None, b=b or None, target=tgt, method=m, granularity=g,
                        separator=sep, normalize=bool(norm))

        @base.guard(n)
        def on_compare(state: SessionState, a: Any, b: Any, tgt: Any, m: Any, g: Any, sep: Any,
                       norm: Any, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            store(state, a, b, tgt, m, g, sep, norm)
            view = settings(state)
            if not view["a"] or not view["b"]:
                raise ValueError("pick two examples, A and B, to compare")
            if view["a"] == view["b"]:
                raise ValueError("A and B are the same example; pick two different ones")
            view["done"] = view["picked"] = True
            try:
                values = draw(state, base.progress_adapter(progress))
            except Exception:
                view["done"] = False
                raise
            return (state, *values, base.ok("comparison ready: see the prompts side by side"))

        compare_btn.click(on_compare, controls, outs, api_visibility="private",
                          concurrency_id="model", concurrency_limit=1)

        @base.guard(n)
        def on_setting(state: SessionState, a: Any, b: Any, tgt: Any, m: Any, g: Any, sep: Any,
                       norm: Any, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            view = settings(state)
            before = (view["a"], view["b"])
            store(state, a, b, tgt, m, g, sep, norm)
            if (view["a"], view["b"]) != before:
                view["done"] = False  # a new pair waits for "Compare"
            if not view["done"]:
                r = render_views(wb, state)
                return (state, gr.skip(), gr.skip(), r["info"], r["side"], r["changed"],
                        r["responses"], "")
            return (state, *draw(state, base.progress_adapter(progress)), "")

        for comp in (pick_a, pick_b, target, method, granularity, normalize):
            comp.input(on_setting, controls, outs, api_visibility="private",
                       concurrency_id="model", concurrency_limit=1)
        separator.submit(on_setting, controls, outs, api_visibility="private",
                         concurrency_id="model", concurrency_limit=1)
        separator.blur(on_setting, controls, outs, api_visibility="private",
                       concurrency_id="model", concurrency_limit=1)

        @base.guard(n)
        def on_selection(state: SessionState) -> Any:
            ids = [i for i in state.selected_ids if base.find_example(wb, state, i) is not None]
            if len(ids) < 2:
                raise ValueError("select two examples in the data table first (shift- or "
                                 "ctrl-click a second row), or pick A and B here")
            view = settings(state)
            view.update(a=ids[0], b=ids[1], done=False, picked=True)
            return (state, *draw(state), base.ok("A and B set from the selection: press "
                                                 "“Compare”"))

        from_selection.click(on_selection, [ctx.state], outs, api_visibility="private")

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
