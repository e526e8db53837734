"""The classification modules in a real browser against `promptlit serve --demo classification`
(the shipped breast cancer logistic regression, 569 tumours, "malignant" the positive class).

A click on a confusion-matrix count selects exactly that cell's examples: the data table lists
them and the metrics' "selection" column scores them; moving the threshold changes the
predicted class of the selected example and the counts. Marked ``e2e``; screenshots go to
test-artifacts/e2e/ (and docs/screenshots/ with PROMPTLIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import math

import pytest

from .conftest import shoot

pytestmark = [pytest.mark.e2e]

N = 569


def footer_has(page, text: str) -> None:
    page.wait_for_function(
        "t => (document.querySelector('#pl-footer')?.innerText || '').includes(t)", arg=text)


def cell(page, table: str, row: int, col: int) -> str:
    return page.inner_text(f'#{table} [data-testid="cell-{row}-{col}"]').strip()


def open_tab(page, name: str) -> None:
    page.click(f"#pl-area-lower button[role=tab]:has-text('{name}')")


def test_confusion_cell_selects_and_threshold_changes_predictions(page, classification_url):
    page.goto(classification_url)
    footer_has(page, "Ready")
    open_tab(page, "Metrics")
    page.wait_for_selector('#pl-cm-a [data-testid="cell-1-2"]')
    # rows: label malignant / benign; columns: (row labels), predicted malignant / benign
    counts = [[int(cell(page, "pl-cm-a", r, c)) for c in (1, 2)] for r in (0, 1)]
    assert sum(map(sum, counts)) == N
    accuracy_all = float(cell(page, "pl-metrics-pivot", 0, 1))
    assert accuracy_all == pytest.approx((counts[0][0] + counts[1][1]) / N, abs=1e-4)

    missed = counts[0][1]  # malignant tumours the model calls benign
    assert missed > 0
    page.click('#pl-cm-a [data-testid="cell-0-2"]')
    footer_has(page, f"selected {missed} examples")
    page.wait_for_function(
        "t => (document.querySelector('#pl-table-info')?.innerText || '').includes(t)",
        arg=f"{missed} of {N} examples match")
    assert f"{missed} selected" in page.inner_text("#pl-table-info")
    assert page.locator('#pl-table [data-testid^="cell-"][data-testid$="-1"]').count() == missed
    page.wait_for_function(
        "() => (document.querySelector('#pl-metrics-pivot')?.innerText || '')"
        ".includes('selection')")
    assert float(cell(page, "pl-metrics-pivot", 0, 2)) == 0.0  # all of them are wrong
    assert float(cell(page, "pl-metrics-pivot", 0, 1)) == pytest.approx(accuracy_all)
    shoot(page, "classification_confusion_selection", readme=True)

    # The selected (first) example is a missed malignant tumour: predicted benign, wrong.
    open_tab(page, "Predictions")
    page.wait_for_function(
        "() => (document.querySelector('#pl-cls-verdict')?.innerText || '')"
        ".includes('predicted benign')")
    assert "wrong (label malignant)" in page.inner_text("#pl-cls-verdict")
    # columns: model, field, class, score, predicted, label; one row per class
    score = next(float(cell(page, "pl-cls-table", r, 3)) for r in (0, 1)
                 if cell(page, "pl-cls-table", r, 2) == "malignant")
    assert score < 0.5

    # A threshold just under its malignant score flips it to malignant (correct).
    t = math.floor(score * 100) / 100
    open_tab(page, "Thresholds")
    box = page.locator("#pl-threshold-a input[type=number]")
    box.fill(f"{t:.2f}")
    box.press("Tab")
    footer_has(page, f"threshold {t:.2f}")
    line = page.inner_text("#pl-threshold-counts")
    fn_after = int(line.split("FN ")[1].split()[0])
    assert fn_after < missed and f"threshold {t:.2f}" in line
    shoot(page, "classification_threshold", readme=True)
    open_tab(page, "Predictions")
    page.wait_for_function(
        "() => (document.querySelector('#pl-cls-verdict')?.innerText || '')"
        ".includes('predicted malignant')")
    assert "correct" in page.inner_text("#pl-cls-verdict")
    open_tab(page, "Metrics")
    page.wait_for_function(
        "n => document.querySelector('#pl-cm-a [data-testid=\"cell-0-2\"]')?.innerText.trim()"
        " === String(n)", arg=fn_after)
    assert float(cell(page, "pl-metrics-pivot", 0, 2)) > 0.0  # the selection is now partly right
