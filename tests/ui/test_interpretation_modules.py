"""The interpretation modules (salience maps, embeddings, counterfactuals, PDP) over a real
Workbench with small real models: an untrained KerasTextClassifier (JAX) and a scikit-learn
logistic regression. Each module's numbers must be exactly the components' numbers."""

import numpy as np
import pytest

from promptlit.api import types
from promptlit.api.dataset import Dataset
from promptlit.components.defaults import default_components
from promptlit.components.gradient_maps import GradientDotInput, GradientNorm, IntegratedGradients
from promptlit.components.lime import LIME
from promptlit.components.pdp import PdpInterpreter
from promptlit.components.projection import fit_projection
from promptlit.ui import app, plots
from promptlit.ui.modules import base, counterfactuals, embeddings, interp_common, pdp
from promptlit.ui.modules import salience_maps as sm
from promptlit.ui.state import SessionState

from .fakes import make_workbench

TEXTS = ["a good movie", "a bad film", "great plot", "terrible acting", "a fine film",
         "good acting", "bad plot", "great movie", "terrible film", "fine plot",
         "good good film", "bad bad movie"]
LABELS = ["negative", "positive"]


def _workbench():
    from sklearn.linear_model import LogisticRegression

    from promptlit.models.sklearn_models import SklearnClassifier
    from promptlit.models.text_classifier import KerasTextClassifier
    from promptlit.workbench import Workbench

    vocab = sorted({w for t in TEXTS for w in t.split()})
    clf = KerasTextClassifier.build(vocab, labels=LABELS, emb_dim=8, hidden_dim=8, seed=0)
    spec = {"sentence": types.TextSegment(), "label": types.CategoryLabel(vocab=LABELS)}
    text = Dataset([{"sentence": t, "label": "positive" if any(
        w in t for w in ("good", "great", "fine")) else "negative"} for t in TEXTS], spec=spec)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    tab = Dataset([{"x1": float(a), "x2": float(b), "label": ["low", "high"][int(c)]}
                   for (a, b), c in zip(x, y, strict=True)],
                  spec={"x1": types.Scalar(), "x2": types.Scalar(),
                        "label": types.CategoryLabel(vocab=["low", "high"])})
    sk = SklearnClassifier(LogisticRegression().fit(x, y), ["x1", "x2"], "label", ["low", "high"])
    return Workbench({"tab": sk, "clf": clf}, {"tab": tab, "text": Dataset(
        text.examples, spec=spec)}, **default_components())


@pytest.fixture(scope="module")
def wb():
    return _workbench()


def _state(wb, dataset="text", model="tab", row=0):
    st = SessionState(dataset=dataset, model=model)
    st.select_example(base.dataset_rows(wb, st)[row][0])
    return st


def test_modules_shown_only_where_specs_fit(wb):
    assert {"salience_maps", "embeddings", "counterfactuals"} <= app.compatible_modules(wb,
                                                                                      "text")
    assert "pdp" not in app.compatible_modules(wb, "text")  # only the gold label to vary
    tab = app.compatible_modules(wb, "tab")
    assert "pdp" in tab and not {"salience_maps", "embeddings", "counterfactuals"} & tab
    # A language model: its prompt can be perturbed, but it has no token gradients,
    # embeddings or scalar inputs.
    lm_wb = make_workbench(**default_components())
    lm = app.compatible_modules(lm_wb, "toy")
    assert "counterfactuals" in lm and not {"salience_maps", "embeddings", "pdp"} & lm
    st = _state(lm_wb, dataset="toy", model="fake")
    rows = counterfactuals.run_generator(lm_wb, st, "word_replacer", {"subs": "pork -> beef"})
    assert rows[0].example["prompt"].startswith("Likes: fish\nDislikes: beef")
    assert rows[0].after == ":noitadnemmoceR ok." and rows[0].flipped is False
    # The session's model (tab) cannot explain text: the module picks the one that can.
    assert interp_common.pick_model(wb, _state(wb), interp_common.salience_methods) == "clf"


def test_salience_rows_equal_the_components(wb):
    st = _state(wb)
    ex = base.primary_example(wb, st)
    methods = ["grad_l2", "grad_dot_input", "integrated_gradients", "lime"]
    rows = sm.salience_rows(wb, "clf", "text", ex, methods, ig_steps=8, lime_samples=64)
    assert [(r.method, r.field) for r in rows] == [(m, "sentence") for m in methods]
    model, ds = wb.models["clf"], wb.datasets["text"]
    expected = {
        "grad_l2": GradientNorm().run([ex], model, ds)[0]["token_grad_sentence"],
        "grad_dot_input": GradientDotInput().run([ex], model, ds)[0]["token_grad_sentence"],
        "integrated_gradients": IntegratedGradients().run(
            [ex], model, ds, config={"ig_steps": 8})[0]["token_grad_sentence"],
        "lime": LIME().run([ex], model, ds, config={"num_samples": 64})[0]["sentence"],
    }
    for r in rows:
        assert r.tokens == list(expected[r.method].tokens)
        np.testing.assert_allclose(r.scores, expected[r.method].salience, rtol=1e-6, atol=1e-9)
        assert r.signed == (r.method != "grad_l2")
    html = sm.rows_html(rows, ex)
    assert html.count("<tr ") == 4 and 'data-method="lime"' in html
    assert 'data-signed="unsigned"' in html and html.count('data-signed="signed"') == 3
    assert all(w in html for w in ex["sentence"].split())


def test_salience_module_runs_lime_only_on_explain(wb):
    st = _state(wb, row=1)
    info, html, choices, ticked = sm.render_module(wb, st)
    assert choices == ticked == ["grad_l2", "grad_dot_input", "integrated_gradients", "lime"]
    assert "press **Explain** to run LIME" in info and 'data-method="lime"' not in html
    info, html, _, _ = sm.render_module(wb, st, run_all=True)
    assert "Explain" not in info and 'data-method="lime"' in html
    st.views[sm.NAME]["methods"] = ["grad_l2"]
    _, html, _, ticked = sm.render_module(wb, st)
    assert ticked == ["grad_l2"] and html.count("<tr ") == 1


def test_word_replacer_output_appears_and_adding_grows_the_session_dataset(wb):
    st = _state(wb)  # "a good movie"
    n = len(base.dataset_rows(wb, st))
    cfg = counterfactuals.generator_config(wb, "word_replacer", "good -> bad", {})
    rows = counterfactuals.run_generator(wb, st, "word_replacer", cfg)
    assert [g.example["sentence"] for g in rows] == ["a bad movie"]
    new_out = wb.predict("clf", "text", [rows[0].example])[0]
    spec = wb.models["clf"].output_spec()["probas"]
    assert rows[0].after == interp_common.prediction_summary(new_out["probas"], spec)
    frame = counterfactuals.table(wb, st, rows)
    assert frame["sentence"].tolist() == ["a bad movie"] and frame["from #"].tolist() == [0]
    ids = counterfactuals.add_generated(wb, st, [1])
    assert len(base.dataset_rows(wb, st)) == n + 1
    assert st.primary_id == ids[0] and st.selected_ids == ids
    assert base.primary_example(wb, st)["sentence"] == "a bad movie"
    assert len(wb.datasets["text"]) == len(TEXTS)  # other sessions do not see it
    with pytest.raises(ValueError, match="no generated example 5"):
        counterfactuals.add_generated(wb, st, [5])
    with pytest.raises(ValueError, match="tick the generated examples"):
        counterfactuals.add_generated(wb, st, [])
    with pytest.raises(ValueError, match="not valid JSON"):
        counterfactuals.parse_settings("{oops")
    with pytest.raises(ValueError, match="no option"):
        counterfactuals.generator_config(wb, "scrambler", "", {"nope": 1})
    with pytest.raises(ValueError, match="write substitutions"):
        counterfactuals.generator_config(wb, "word_replacer", " ", {})


def test_every_generator_runs_from_the_module(wb):
    st = _state(wb, row=2)
    for gen in interp_common.generators(wb, "clf", "text"):
        cfg = counterfactuals.generator_config(
            wb, gen, "great -> terrible", counterfactuals.settings_defaults(wb, gen))
        rows = counterfactuals.run_generator(wb, st, gen, cfg)
        assert all(g.source_id == st.primary_id and g.after for g in rows), gen


def test_projection_is_deterministic_and_fitted_once(wb):
    st = _state(wb)
    ids, z = embeddings.project(wb, st, "clf", "pca", "cls_emb")
    assert z.shape == (len(TEXTS), 2) and ids == [r[0] for r in base.dataset_rows(wb, st)]
    again_ids, again = embeddings.project(wb, st, "clf", "pca", "cls_emb")
    np.testing.assert_array_equal(again, z)
    assert wb.interpreters["pca"].num_fits == 1
    # Same numbers as fitting PCA directly on the model's embeddings, and on a new workbench.
    embs = [o["cls_emb"] for o in wb.predict("clf", "text", wb.datasets["text"].examples)]
    _, direct = fit_projection(embs, "pca", n_components=2, seed=0)
    np.testing.assert_allclose(z, direct, rtol=1e-6, atol=1e-9)
    _, z2 = embeddings.project(_workbench(), SessionState(dataset="text", model="clf"), "clf",
                               "pca", "cls_emb")
    np.testing.assert_allclose(z2, z, rtol=1e-5, atol=1e-6)
    # A session-added example is placed into the fitted space without a refit.
    st.added["text"] = [{"sentence": "a great film", "label": "positive"}]
    ids3, z3 = embeddings.project(wb, st, "clf", "pca", "cls_emb")
    assert len(ids3) == len(TEXTS) + 1 and wb.interpreters["pca"].num_fits == 1
    np.testing.assert_allclose(z3[:-1], z)


def test_projector_draws_points_and_selection_feeds_the_session(wb):
    st = _state(wb)
    r = embeddings.render_module(wb, st, run=True)
    spec = plots.spec_of(r["plot"])
    points = [c for t in spec["data"] for c in t["customdata"]]
    assert len(points) == len(TEXTS) and spec["layout"]["dragmode"] == "select"
    picked = [t["customdata"][k][0] for t in spec["data"] for k in t["selectedpoints"] or []]
    assert picked == [st.primary_id] and spec["layout"]["title"]["text"].startswith("PCA of")
    assert ("predicted class (probas)", "pred:probas") in r["colours"]
    # Coloured by the predicted class: one trace (legend entry) per class.
    assert {t["name"] for t in spec["data"]} <= {"negative", "positive"}
    st.views[embeddings.NAME]["mode"] = "lasso"
    assert plots.spec_of(embeddings.render_module(wb, st)["plot"])["layout"]["dragmode"] == (
        "lasso")
    known = [i for i, _, _ in base.dataset_rows(wb, st)]
    chosen = embeddings.select_ids(st, known[2:5], known)
    assert chosen == known[2:5] and st.primary_id == known[2]
    chosen = embeddings.select_ids(st, [known[7]], known, add=True)
    assert chosen == [*known[2:5], known[7]]
    with pytest.raises(ValueError, match="no examples in that selection"):
        embeddings.select_ids(st, ["nope"], known)
    names, colours = plots.categories(["a", "b", "a", None])
    assert names == ["a", "b", "a", "(none)"] and colours["a"] != colours["b"]


def test_pdp_values_equal_the_component(wb):
    st = _state(wb, dataset="tab", model="tab", row=3)
    ex = base.primary_example(wb, st)
    result = pdp.pdp_result(wb, st, "tab", "pdp", "x1", "selected", 7)
    expected = PdpInterpreter().run([ex], wb.models["tab"], wb.datasets["tab"],
                                    config={"feature": "x1", "num_points": 7})
    assert result.keys() == expected.keys()
    for value, probs in expected["probas"].items():
        np.testing.assert_allclose(result["probas"][value], probs)
    frame = pdp.pdp_frame(wb, "tab", result)
    assert len(frame) == 7 * 2 and set(frame["series"]) == {"low", "high"}
    high = frame[frame["series"] == "high"]
    np.testing.assert_allclose(high["prediction"], [p[1] for p in expected["probas"].values()])
    every = pdp.pdp_result(wb, st, "tab", "pdp", "x2", "all", 5)
    assert every == PdpInterpreter().run(wb.datasets["tab"].examples, wb.models["tab"],
                                         wb.datasets["tab"],
                                         config={"feature": "x2", "num_points": 5})
    r = pdp.render_module(wb, st)
    info = r["info"]
    assert "x1" in info and f"= {ex['x1']}" in info
    chart = plots.spec_of(pdp.chart(r["frame"], "x1", r["categorical"], r["own"], "tab"))
    assert [t["name"] for t in chart["data"]] == ["low", "high"]
    shown = r["frame"][r["frame"]["series"] == "high"]
    assert chart["data"][1]["x"] == pytest.approx(list(shown["value"]))
    assert chart["data"][1]["y"] == pytest.approx(list(shown["prediction"]))
    assert chart["layout"]["shapes"][0]["x0"] == ex["x1"]  # the example's own value, marked
    assert chart["layout"]["annotations"][0]["text"] == "#3"
    empty = SessionState(dataset="tab", model="tab")
    assert "select an example" in pdp.render_module(wb, empty)["info"]
    with pytest.raises(ValueError, match="no example selected"):
        pdp.pdp_result(wb, empty, "tab", "pdp", "x1")
