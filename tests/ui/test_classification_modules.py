"""The classification / regression UI modules over a real Workbench with small scikit-learn
models on a slice of the breast cancer and diabetes data (no JAX, no browser).

Callbacks are called as the app wired them (found by their component's elem_id and event), so
these tests check what the page would receive.
"""

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.components import metrics as M
from promptlit.components.thresholder import find_thresholds
from promptlit.models.sklearn_models import SklearnClassifier, SklearnRegressor
from promptlit.ui import app, plots
from promptlit.ui.modules import (
    classification_results,
    curves,
    metrics,
    regression_results,
    scalars,
    threshold,
)
from promptlit.ui.modules import predictions as P
from promptlit.ui.state import SessionState
from promptlit.workbench import Workbench

from .fakes import make_workbench

N = 120
FEATURES = ["f0", "f1", "f2"]
LABELS = ["malignant", "benign"]


def _cancer_rows():
    data = load_breast_cancer()
    x, y = data.data[:N, :3], data.target[:N]
    rows = [{**{f: float(v) for f, v in zip(FEATURES, xi, strict=True)}, "label": LABELS[t],
             "split": "train" if i % 3 else "test"} for i, (xi, t) in enumerate(zip(x, y,
                                                                                    strict=True))]
    return x, y, rows


@pytest.fixture(scope="module")
def wb():
    x, y, rows = _cancer_rows()
    spec = {f: types.Scalar() for f in FEATURES}
    spec["label"] = types.CategoryLabel(vocab=LABELS)
    spec["split"] = types.CategoryLabel(vocab=["train", "test"])
    clf = SklearnClassifier(LogisticRegression(max_iter=2000).fit(x, y), FEATURES, "label",
                            LABELS, null_idx=1, name="clf")
    weak = SklearnClassifier(LogisticRegression(C=1e-4, max_iter=2000).fit(x, y), FEATURES,
                             "label", LABELS, null_idx=1, name="weak")
    d = load_diabetes()
    dia_rows = [{"age": float(a), "bmi": float(b), "progression": float(t)}
                for a, b, t in zip(d.data[:80, 0], d.data[:80, 2], d.target[:80], strict=True)]
    reg = SklearnRegressor(LinearRegression().fit(d.data[:80, [0, 2]], d.target[:80]),
                           ["age", "bmi"], "progression", name="reg")
    return Workbench(models={"clf": clf, "weak": weak, "reg": reg},
                     datasets={"cancer": Dataset(rows, spec=spec),
                               "diabetes": Dataset(dia_rows, spec={
                                   "age": types.Scalar(), "bmi": types.Scalar(),
                                   "progression": types.Scalar()})})


@pytest.fixture
def state():
    return SessionState(dataset="cancer", model="clf", layout="classification")


def truth(wb, model="clf", threshold=None):
    """(ids, labels, <float>[n, 2] scores, predicted labels) straight from the model."""
    ds = wb.datasets["cancer"]
    scores = np.stack([o["probas"] for o in wb.predict(model, "cancer", ds.examples)])
    spec = wb.models[model].output_spec()["probas"]
    cfg = {} if threshold is None else {"threshold": threshold}
    predicted = [LABELS[i] for i in M.classify(scores, spec, cfg)]
    return ds.ids, [ex["label"] for ex in ds.examples], scores, predicted


def find_callback(demo, elem_id, event):
    """The wired callback of component ``elem_id``'s ``event``."""
    for fn in demo.fns.values():
        for block_id, ev in fn.targets:
            if ev == event and getattr(demo.blocks.get(block_id), "elem_id", None) == elem_id:
                return fn
    raise LookupError(f"no {event} callback on #{elem_id}")


def by_id(fn, result):
    """Callback outputs keyed by their component's elem_id (others by position)."""
    return {getattr(c, "elem_id", None) or i: v
            for i, (c, v) in enumerate(zip(fn.outputs, result, strict=True))}


@pytest.fixture(scope="module")
def demo(wb):
    return app.build_app(wb, layout="classification")


def test_compatible_modules_follow_specs(wb):
    shown = app.compatible_modules(wb, "cancer")
    assert {"metrics", "confusion_matrix", "classification_results", "scalars", "curves",
            "threshold"} <= shown
    assert "regression_results" not in shown
    reg = app.compatible_modules(wb, "diabetes")
    assert {"regression_results", "metrics", "scalars"} <= reg
    assert not {"confusion_matrix", "curves", "threshold", "classification_results"} & reg
    lm_only = app.compatible_modules(make_workbench(), "toy")
    assert not {"metrics", "confusion_matrix", "scalars", "threshold"} & lm_only


def test_metrics_equal_the_components_numbers(wb, state):
    ids, labels, scores, _ = truth(wb)
    spec = wb.models["clf"].output_spec()["probas"]
    state.selected_ids = list(ids[:30])
    state.slices["odd"] = list(ids[1::2])
    table, names, _ = metrics.compute(wb, state)
    assert names == ["clf"]
    grid = metrics.pivot(table, "accuracy").set_index("model")
    assert list(grid.columns) == ["all", "selection", "odd"]
    assert grid.loc["clf", "all"] == pytest.approx(
        round(M.multiclass_metrics(labels, scores, spec)["accuracy"], 4))
    assert grid.loc["clf", "selection"] == pytest.approx(
        round(M.multiclass_metrics(labels[:30], scores[:30], spec)["accuracy"], 4))
    assert grid.loc["clf", "odd"] == pytest.approx(
        round(M.multiclass_metrics(labels[1::2], scores[1::2], spec)["accuracy"], 4))
    wide = metrics.wide(table, "accuracy", descending=False)
    assert wide["slice"].tolist()[0] == min(("all", "selection", "odd"),
                                           key=lambda s: grid.loc["clf", s])
    assert wide.loc[wide["slice"] == "all", "num_examples"].item() == N
    assert wide.loc[wide["slice"] == "all", "auc"].item() == pytest.approx(
        round(M.multiclass_metrics(labels, scores, spec)["auc"], 4))


def test_metrics_compare_two_models_adds_paired_metrics(wb, state):
    state.compare_model = "weak"
    table, names, _ = metrics.compute(wb, state)
    assert names == ["clf", "weak"]
    assert metrics.pivot(table, "accuracy")["model"].tolist() == ["clf", "weak"]
    text = metrics.paired_markdown(wb, state, names)
    a = truth(wb, "clf")[3]
    b = truth(wb, "weak")[3]
    swap = np.mean(np.array(a) != np.array(b))
    # Markdown with its interpolated values escaped (swap\_rate renders as swap_rate).
    assert "clf vs weak" in text and f"| probas | swap\\_rate | {swap:.4g} |" in text


def test_confusion_cell_click_selects_exactly_those_ids(wb, demo):
    ids, labels, _, predicted = truth(wb)
    fn = find_callback(demo, "pl-cm-a", "select")
    st = SessionState(dataset="cancer", model="clf", layout="classification")
    # row 0 = label "malignant", column 2 = predicted "benign" (column 0 holds the row labels)
    evt = gr.SelectData(None, {"index": [0, 2], "value": 0})
    out = by_id(fn, fn.fn(st, evt))
    expected = [i for i, lab, p in zip(ids, labels, predicted, strict=True)
                if lab == "malignant" and p == "benign"]
    assert expected and st.selected_ids == expected and st.primary_id == expected[0]
    assert out["pl-footer"].startswith("✓ selected") and str(len(expected)) in out["pl-footer"]
    table = out["pl-table"]["value"]  # the data table lists just the cell's examples
    assert len(table) == len(expected)
    assert f"{len(expected)} of {N} examples match" in out["pl-table-info"]
    cm = out["pl-cm-a"]
    assert cm.iloc[0, 2] == len(expected)
    assert int(cm.iloc[:, 1:].to_numpy().sum()) == N
    sel = metrics.pivot(metrics.compute(wb, st)[0], "accuracy").set_index("model")
    assert sel.loc["clf", "selection"] == 0.0  # every example of that cell is wrong
    bad = by_id(fn, fn.fn(st, gr.SelectData(None, {"index": [0, 0], "value": "malignant"})))
    assert bad["pl-footer"].startswith("⚠ click a count")


def test_threshold_changes_predicted_classes_everywhere(wb, demo):
    st = SessionState(dataset="cancer", model="clf", layout="classification")
    ids, labels, scores, _ = truth(wb)
    # an example the model calls malignant with a middling score: a high threshold flips it
    pos = scores[:, 0]
    k = int(np.argmin(np.where(pos >= 0.5, pos, 2.0)))
    st.select_example(ids[k])
    frame, text = classification_results.results(wb, st)
    assert "predicted **malignant**" in text
    slide = find_callback(demo, "pl-threshold-a", "release")
    t = round(float(pos[k]) + 0.01, 2)
    out = by_id(slide, slide.fn(st, t))
    assert st.thresholds == {"clf": t} and out["pl-footer"] == f"✓ clf: threshold {t:.2f}"
    assert f"predicted **benign** (threshold {t:.2f} on malignant)" in out["pl-cls-verdict"]
    table = out["pl-cls-table"]
    assert table.loc[table["predicted"] == "✓", "class"].tolist() == ["benign"]
    _, _, _, predicted_t = truth(wb, threshold=t)
    cm = out["pl-cm-a"]
    assert cm.iloc[0, 1] == sum(lab == p == "malignant"
                                for lab, p in zip(labels, predicted_t, strict=True))
    spec = wb.models["clf"].output_spec()["probas"]
    acc = M.multiclass_metrics(labels, scores, spec, {"threshold": t})["accuracy"]
    assert out["pl-metrics-pivot"].set_index("model").loc["clf", "all"] == pytest.approx(
        round(acc, 4))
    scatter = plots.spec_of(out["pl-scalars-a"])
    assert [a["text"] for a in scatter["layout"]["annotations"]] == [f"threshold {t:.2f}"]
    assert [sh["x0"] for sh in scatter["layout"]["shapes"]] == [t]
    bad = by_id(slide, slide.fn(st, 1.5))
    assert bad["pl-footer"].startswith("⚠ a threshold must be between 0 and 1")


def test_optimise_for_cost_ratio_uses_the_thresholder(wb, demo):
    st = SessionState(dataset="cancer", model="clf", layout="classification")
    _, labels, scores, _ = truth(wb)
    fn = find_callback(demo, "pl-optimise", "click")
    out = by_id(fn, fn.fn(st, 5.0))
    best = find_thresholds(np.array(labels) == "malignant", scores[:, 0], cost_ratio=5.0)
    assert st.thresholds["clf"] == pytest.approx(best[""]["Single"])
    assert "cost ratio 5" in out["pl-footer"]
    bad = by_id(fn, fn.fn(st, -1))
    assert bad["pl-footer"].startswith("⚠ the cost ratio must be")


def test_group_thresholds_per_fairness_measure(wb, state):
    _, labels, scores, _ = truth(wb)
    groups = [ex["split"] for ex in wb.datasets["cancer"].examples]
    frame = threshold.group_thresholds(wb, state, "clf", "split", "Demographic parity", 1.0)
    expected = find_thresholds(np.array(labels) == "malignant", scores[:, 0], groups)
    assert dict(zip(frame["group"], frame["threshold"], strict=True)) == {
        g: v["Demographic parity"] for g, v in expected.items()}
    for _, row in frame.iterrows():
        mask = np.array(groups) == row["group"]
        assert row["positive_rate"] == pytest.approx(
            round(float(np.mean(scores[mask, 0] >= row["threshold"])), 4))
    with pytest.raises(ValueError, match="choose a category field"):
        threshold.group_thresholds(wb, state, "clf", threshold.NO_GROUP, "Single", 1.0)


def point_ids(figure) -> list[str]:
    """The example ids of a scatter figure's points (every trace)."""
    return [c[0] for t in plots.spec_of(figure)["data"] for c in t["customdata"]]


def test_scalars_click_box_and_lasso_select_and_curves_match_component(wb, demo):
    st = SessionState(dataset="cancer", model="clf", layout="classification")
    ids = wb.datasets["cancer"].ids
    figure = scalars.plot_model(wb, st, "clf", "split")
    assert sorted(point_ids(figure)) == sorted(ids)
    spec = plots.spec_of(figure)
    assert {t["name"] for t in spec["data"]} == {str(v) for v in
                                                 {ex["split"] for ex in wb.datasets["cancer"].examples}}
    assert spec["layout"]["dragmode"] == "select"  # drag: box selection
    assert spec["layout"]["yaxis"]["ticktext"] == LABELS
    fn = find_callback(demo, "pl-scalars-plot", "click")
    evt = gr.EventData(None, {"ids": [ids[3]], "add": False, "how": "click"})
    out = by_id(fn, fn.fn(st, evt))
    assert st.selected_ids == [ids[3]] and out["pl-footer"] == "✓ selected example #3"
    # The redrawn plot shows the selection (Plotly's selectedpoints: the others fade).
    shown = plots.spec_of(out["pl-scalars-a"])
    picked = [t["customdata"][k][0] for t in shown["data"] for k in t["selectedpoints"] or []]
    assert picked == [ids[3]]
    fn.fn(st, gr.EventData(None, {"ids": [ids[5]], "add": True, "how": "click"}))  # shift-click
    assert st.selected_ids == [ids[3], ids[5]]
    # A box (or lasso) selects every point in it; shift adds; unknown ids are ignored.
    out = by_id(fn, fn.fn(st, gr.EventData(None, {"ids": [ids[7], ids[8], "nope"],
                                                  "how": "box"})))
    assert st.selected_ids == [ids[7], ids[8]] and out["pl-footer"] == (
        "✓ 2 examples selected (#7 shown)")
    fn.fn(st, gr.EventData(None, {"ids": [ids[9], ids[10]], "add": True, "how": "lasso"}))
    assert st.selected_ids == [ids[7], ids[8], ids[9], ids[10]]
    too_many = fn.fn(st, gr.EventData(None, {"ids": ["x"] * (N + 1), "how": "box"}))
    assert too_many[-1].startswith(f"⚠ a plot selection named {N + 1} examples")
    assert st.selected_ids == [ids[7], ids[8], ids[9], ids[10]]
    key, per_class = curves.curves_of(wb, st, "clf")
    _, labels, scores, _ = truth(wb)
    from sklearn.metrics import roc_auc_score

    assert key == "probas" and per_class["malignant"]["roc_auc"] == pytest.approx(
        roc_auc_score(np.array(labels) == "malignant", scores[:, 0]))
    roc, pr, classes, _, _ = curves.draw(wb, st)
    assert classes == [curves.ALL_CLASSES, *LABELS]
    roc_spec, pr_spec = plots.spec_of(roc), plots.spec_of(pr)
    assert roc_spec["data"][0]["name"] == (
        f"malignant (ROC AUC {per_class['malignant']['roc_auc']:.3f})")
    assert roc_spec["data"][0]["x"] == [x for x, _ in per_class["malignant"]["roc_data"]]
    assert pr_spec["data"][0]["name"] == (
        f"malignant (AP {per_class['malignant']['average_precision']:.3f})")
    # Hover read-outs name each point's rates and threshold; the threshold's point is circled.
    assert "threshold " in roc_spec["data"][0]["customdata"][1][1]
    assert roc_spec["data"][1]["hovertemplate"] and "threshold 0.50" in roc_spec["data"][1]["name"]


def test_regression_results_and_fallback_model(wb):
    st = SessionState(dataset="diabetes", model="clf")  # clf cannot run on diabetes
    rows = wb.datasets["diabetes"]
    st.select_example(rows.ids[2])
    frame, text = regression_results.results(wb, st)
    out = wb.predict("reg", "diabetes", [rows.examples[2]])[0]
    assert frame["score"].tolist() == [round(out["score"], 4)]
    assert frame["error"].tolist() == [round(out["score"] - rows.examples[2]["progression"], 4)]
    assert "Showing model **reg**" in text
    assert P.models_for(wb, st, "binary") == ([], "No loaded binary classifier with a null "
                                                   "class runs on dataset diabetes.")
    figure = scalars.plot_model(wb, st, "reg", scalars.NO_COLOUR)
    spec = plots.spec_of(figure)
    assert len(point_ids(figure)) == 80
    assert spec["layout"]["yaxis"]["title"]["text"] == "prediction (score)"
    assert spec["layout"]["shapes"][0]["line"]["dash"] == "dash"  # y = x


def test_errors_reach_the_footer_not_a_traceback(wb, demo):
    st = SessionState(dataset="cancer", model="clf", layout="classification")
    fn = find_callback(demo, "pl-group-thresholds", "click")
    out = fn.fn(st, "split", "No such measure", 1.0)
    assert out[-1].startswith("⚠ measure must be one of")
    cm = find_callback(demo, "pl-cm-a", "select")
    res = cm.fn(st, gr.SelectData(None, {"index": [5, 1], "value": 0}))  # no row 5
    assert res[-1].startswith("⚠ click a count")


def test_build_app_places_modules_by_layout(wb, demo):
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"pl-metrics-pivot", "pl-cm-a", "pl-cls-table", "pl-scalars-plot",
            "pl-curves-plot", "pl-threshold-a"} <= ids
    assert isinstance(metrics.pivot(pd.DataFrame(), "accuracy"), pd.DataFrame)


def test_workbench_facade_metrics_table_paired_and_builtin_components(wb):
    ids, labels, scores, _ = truth(wb)
    spec = wb.models["clf"].output_spec()["probas"]
    table = wb.metrics_table("cancer", ["clf"], slices={"first": ids[:10]},
                             configs={"clf": {"threshold": 0.9}})
    grid = M.metrics_pivot(table, "recall")
    assert grid.loc["clf", "first"] == pytest.approx(
        M.multiclass_metrics(labels[:10], scores[:10], spec, {"threshold": 0.9})["recall"])
    assert set(wb.metrics_table("diabetes")["model"]) == {"reg"}  # compatible models only
    paired = wb.paired_metrics("clf", "weak", "cancer", wb.datasets["cancer"].examples)
    assert set(paired) == {"probas"} and paired["probas"]["num_examples"] == N
    assert wb.paired_metrics("clf", "reg", "cancer", []) == {}
    # built-in components run by name without being registered
    cm = wb.interpret("confusion_matrix", "clf", "cancer", wb.datasets["cancer"].examples)
    assert int(cm["probas"].counts.sum()) == N
    with pytest.raises(KeyError, match="known components"):
        wb.interpret("nope", "clf", "cancer", [])


def test_intro_line_fits_what_is_loaded(wb):
    assert app.default_intro(wb) == app.MODEL_INTRO  # classifiers only: no "Generate & explain"
    lm_only = make_workbench()
    assert app.default_intro(lm_only) == app.LM_INTRO
    both = Workbench(models={**lm_only.models, "clf": wb.models["clf"]},
                     datasets=dict(lm_only.datasets))
    assert app.default_intro(both) == f"{app.LM_INTRO} {app.MODEL_INTRO}"
