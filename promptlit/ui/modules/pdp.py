"""Partial dependence: how the model's prediction moves as one input feature is varied.

Pick a feature (a Scalar or CategoryLabel input the model reads and the dataset has; not the
gold label) and whether to vary it on the selected example(s) or on every example. The
registered partial-dependence interpreter (`promptlit.components.pdp.PdpInterpreter`, through
the Workbench's cached ``interpret``) sets the feature to each value of a grid over its range in
the dataset and averages the predictions: mean class probabilities for a classifier, the mean
score for a regressor. The plot shows one line per class (or the score; bars for a categorical
feature), with hover read-outs and zoom (a Plotly chart, see `promptlit.ui.plots`); the selected
example's own value is marked on it and named above it; the table has the exact numbers.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from promptlit.api import types
from promptlit.ui import plots, render
from promptlit.ui.modules import base, interp_common
from promptlit.ui.state import SessionState

NAME = "pdp"
DEFAULTS = {"feature": None, "scope": "selected", "num_points": 10}
COLUMNS = ["value", "prediction", "series"]


def pdp_result(wb: Any, state: SessionState, model: str, interpreter: str, feature: str,
               scope: str = "selected", num_points: int = 10, progress: Any = None
               ) -> dict[str, dict[Any, Any]]:
    """The interpreter's ``{pred_key: {value: mean prediction}}`` for the session.

    ``scope`` "selected" varies the selected examples; "all" every example of the session's
    dataset (including the ones added in this session).
    """
    if scope == "selected":
        examples = [ex for _, ex in base.selected_examples(wb, state)]
        if not examples:
            raise ValueError("no example selected: click a row, or pick “all examples”")
    else:
        examples = [ex for _, ex, _ in base.dataset_rows(wb, state)]
    return wb.interpret(interpreter, model, state.dataset, examples,
                        {"feature": feature, "num_points": int(num_points)}, progress=progress)


def pdp_frame(wb: Any, model: str, result: dict[str, dict[Any, Any]]) -> pd.DataFrame:
    """The result as a long table: value, prediction, series ("<field>: <class>" or the field).

    Classification results give one row per (value, class); regression one per value.
    """
    out_spec = wb.models[model].output_spec()
    rows = []
    for key, by_value in result.items():
        spec = out_spec.get(key)
        for value, pred in by_value.items():
            if isinstance(spec, types.MulticlassPreds):
                vocab = list(spec.vocab or range(len(pred)))
                many = len(result) > 1
                rows += [[value, float(p), f"{key}: {c}" if many else str(c)]
                         for c, p in zip(vocab, pred, strict=True)]
            else:
                rows.append([value, float(np.ravel(pred)[0]), key])
    return pd.DataFrame(rows, columns=COLUMNS)


def render_module(wb: Any, state: SessionState, progress: Any = None) -> dict[str, Any]:
    """Info Markdown, the long table, feature choices and whether the feature is categorical."""
    v = interp_common.view(state, NAME, **DEFAULTS)
    model = interp_common.pick_model(wb, state, interp_common.pdp_interpreters)
    empty = pd.DataFrame(columns=COLUMNS)
    if model is None:
        return {"info": "No loaded model has a Scalar or categorical input to vary.",
                "frame": empty, "features": [], "categorical": False}
    features = interp_common.pdp_features(wb, model, state.dataset)
    if v["feature"] not in features:
        v["feature"] = features[0]
    feature = v["feature"]
    spec = wb.datasets[state.dataset].spec().get(feature)
    categorical = isinstance(spec, types.CategoryLabel)
    out = {"features": features, "categorical": categorical, "frame": empty}
    ex = base.primary_example(wb, state)
    if v["scope"] == "selected" and ex is None:
        out["info"] = render.md("**{}** · select an example (or pick “all examples”).", model)
        return out
    interp = interp_common.pdp_interpreters(wb, model, state.dataset)[0]
    result = pdp_result(wb, state, model, interp, feature, v["scope"], v["num_points"],
                        progress=progress)
    out["frame"] = pdp_frame(wb, model, result)
    who = (f"{len(state.selected_ids)} selected example(s)" if v["scope"] == "selected"
           else f"all {len(base.dataset_rows(wb, state))} examples")
    own = ""
    if ex is not None and feature in ex:
        n = base.index_of(wb, state, state.primary_id)
        own = f" · example #{n} has {feature} = {ex[feature]}"
        out["own"] = (ex[feature], f"#{n}")
    out["info"] = render.md("**{}** · mean prediction over {} as **{}** varies{}", model, who,
                            feature, own)
    return out


def chart(frame: pd.DataFrame, feature: str, categorical: bool,
          own: tuple[Any, str] | None = None, model: str = "") -> Any:
    """The partial-dependence chart of `pdp_frame`'s table: a line per series over the feature
    (bars for a categorical one), the example's own value marked."""
    if frame.empty:
        return plots.empty("No partial dependence yet.")
    series = [{"name": name, "x": group["value"].tolist(), "y": group["prediction"].tolist()}
              for name, group in frame.groupby("series", sort=False)]
    return plots.lines(series, x_title=feature, y_title="mean prediction",
                       title=f"{model}: partial dependence on {feature}" if model else "",
                       categorical=categorical, vlines=[own] if own is not None else (),
                       view=f"pdp:{model}:{feature}")


def build(ctx: base.Context) -> base.Module:
    """Draws the partial-dependence module and wires its pickers."""
    wb = ctx.workbench
    with gr.Column(elem_id="pl-pdp") as container:
        info = base.markdown("", elem_id="pl-pdp-info")
        with gr.Row():
            feature = gr.Dropdown([], label="Feature to vary", scale=2, elem_id="pl-pdp-feature")
            scope = gr.Radio([("Selected example(s)", "selected"), ("All examples", "all")],
                             value="selected", label="Average over", scale=2,
                             elem_id="pl-pdp-scope")
            points = gr.Slider(2, 50, value=10, step=1, label="Grid points", scale=1,
                               elem_id="pl-pdp-points")
        plot = gr.Plot(plots.empty("No partial dependence yet."), show_label=False,
                       elem_id="pl-pdp-plot")
        table = gr.Dataframe(interactive=False, label="Mean predictions", elem_id="pl-pdp-table")

    outputs = [info, feature, plot, table]

    def draw(state: SessionState, progress: Any = None) -> list[Any]:
        r = render_module(wb, state, progress=progress)
        v = interp_common.view(state, NAME, **DEFAULTS)
        frame = r["frame"]
        wide = frame
        if not frame.empty:
            wide = frame.pivot_table(index="value", columns="series", values="prediction",
                                     sort=False).reset_index()
            wide.columns.name = None
        model = interp_common.pick_model(wb, state, interp_common.pdp_interpreters) or ""
        return [r["info"],
                gr.update(choices=r["features"], value=v["feature"] if r["features"] else None),
                chart(frame, v["feature"] or "", r["categorical"], r.get("own"), model),
                wide.round(4)]

    def refresh(_wb: Any, state: SessionState) -> list[Any]:
        return draw(state)

    def wire(ctx: base.Context) -> None:
        outs = [ctx.state, *outputs, ctx.footer]

        @base.guard(len(outs))
        def on_setting(state: SessionState, f: str, s: str, n: float,
                       progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            v = interp_common.view(state, NAME, **DEFAULTS)
            v.update(feature=f or v["feature"], scope=s or v["scope"], num_points=int(n))
            updates = draw(state, progress=base.progress_adapter(progress))
            return (state, *updates, base.ok(f"partial dependence on {v['feature']}"))

        inputs = [ctx.state, feature, scope, points]
        for comp in (feature, scope):
            comp.input(on_setting, inputs, outs, api_visibility="private", concurrency_id="model",
                       concurrency_limit=1)
        points.release(on_setting, inputs, outs, api_visibility="private", concurrency_id="model",
                       concurrency_limit=1)

    return ctx.register(base.Module(NAME, container, outputs, refresh, wire))
