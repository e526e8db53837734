"""The regression demo in a real browser: `promptlit serve --demo regression` (the shipped
diabetes ridge regressor and the sentiment-confidence text regressor).

Opens a diabetes example by link and checks what the page shows against the Python API: the
regression result (score, target, error = score − target), the regression metrics, and a
partial dependence curve (table and chart). Marked ``e2e``; screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import promptlit as pl

from .conftest import demo_server, shoot
from .plot_helpers import chart, hover_text, to_page, wait_chart

pytestmark = [pytest.mark.e2e]

EXAMPLE = 3


@pytest.fixture(scope="module")
def regression_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from demo_server(tmp_path_factory, "regression", "diabetes_reg")


def cell(page, table: str, row: int, col: int) -> str:
    """The text of a gr.Dataframe cell, once rendered."""
    selector = f'#{table} [data-testid="cell-{row}-{col}"]'
    page.wait_for_function("s => (document.querySelector(s)?.innerText || '').trim() !== ''",
                           arg=selector)
    return page.inner_text(selector).strip()


def test_regression_results_metrics_and_partial_dependence(page, regression_url):
    model = pl.models.load_model("presets/diabetes_reg")
    example = pl.data.load("diabetes").examples[EXAMPLE]
    expected = float(next(iter(model.predict([example])))["score"])

    page.goto(f"{regression_url}?dataset=diabetes&example={EXAMPLE}")
    page.wait_for_function(
        "() => (document.querySelector('#pl-footer')?.innerText || '').includes('Ready')")
    page.click("#pl-area-lower button[role=tab]:has-text('Predictions')")
    page.wait_for_function(
        "() => (document.querySelector('#pl-reg-summary')?.innerText || '').includes('score')")
    # columns: #, model, field, score, target, error, squared_error (one model fits diabetes)
    assert cell(page, "pl-reg-table", 0, 1) == "diabetes"
    score, target, error = (float(cell(page, "pl-reg-table", 0, c)) for c in (3, 4, 5))
    assert score == pytest.approx(expected, abs=1e-3)
    assert target == pytest.approx(float(example["progression"]), abs=1e-3)
    assert error == pytest.approx(score - target, abs=2e-3)

    page.click("#pl-area-lower button[role=tab]:has-text('Metrics')")
    page.wait_for_function(
        "() => (document.querySelector('#pl-metrics-table')?.innerText || '').includes('mse')")
    assert "pearsonr" in page.inner_text("#pl-metrics-table")

    page.click("#pl-area-lower button[role=tab]:has-text('Partial Dependence')")
    values = [float(cell(page, "pl-pdp-table", r, 0)) for r in range(2)]
    assert values[0] < values[1]  # the grid of the varied feature, ascending
    # The first grid value is the data's minimum of the varied feature (age, shown exactly):
    # the curve's value there is the model's prediction for this example with that age.
    assert page.inner_text("#pl-pdp-info").find("as age varies") >= 0
    at_min = float(next(iter(model.predict([{**example, "age": values[0]}])))["score"])
    assert float(cell(page, "pl-pdp-table", 0, 1)) == pytest.approx(at_min, abs=1e-3)
    # The chart: the same curve, this example's own age marked, numbers on hover.
    wait_chart(page, "pl-pdp-plot")
    shown = chart(page, "pl-pdp-plot")
    assert shown["traces"][0]["y"][0] == pytest.approx(at_min, abs=1e-3)
    assert shown["shapes"][0]["x0"] == pytest.approx(float(example["age"]))
    assert shown["annotations"] == [f"#{EXAMPLE}"]
    page.locator("#pl-pdp-plot").scroll_into_view_if_needed()
    trace = shown["traces"][0]
    tip = hover_text(page, "pl-pdp-plot", *to_page(page, "pl-pdp-plot", trace["x"][1],
                                                    trace["y"][1]))
    assert "age = " in tip and "mean prediction = " in tip, tip
    shoot(page, "regression_pdp")
    assert "⚠" not in page.inner_text("#pl-footer")
