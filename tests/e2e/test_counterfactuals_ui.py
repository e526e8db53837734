"""Counterfactuals, salience maps and the embeddings projector in a real browser against
`promptlit serve --demo classification` (the shipped sentiment classifier).

A sentiment example is selected through the link; its salience maps appear (gradient methods at
once, LIME on "Explain"); the word replacer turns "good" into "bad", the new prediction shows,
and the generated example is added to the session and explained; the projector fits PCA over the
dataset, and a click and a box drag on its Plotly chart select examples. Marked ``e2e`` and
``slow``.
"""

from __future__ import annotations

import re

import pytest

from .conftest import shoot
from .plot_helpers import box_drag, isolated_point, selected_ids, wait_chart

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = 1057  # "The line up is good !!! #Coachella2015" (positive)
SLOW_MS = 300_000


def wait_footer(page, text: str, timeout: int = SLOW_MS) -> str:
    """Waits until the footer says ``text``; returns the footer."""
    page.wait_for_function(
        "t => (document.querySelector('#pl-footer')?.innerText || '').includes(t)", arg=text,
        timeout=timeout)
    return page.inner_text("#pl-footer")


def methods_shown(page) -> list[str]:
    return page.eval_on_selector_all("#pl-salmaps-view tr[data-method]",
                                     "rows => rows.map(r => r.dataset.method)")


def test_counterfactual_salience_and_projector(page, classification_url):
    page.goto(f"{classification_url}?dataset=sentiment&model=sentiment&example={EXAMPLE}"
              "&layout=classification")
    wait_footer(page, "Ready")

    # Salience maps: the gradient methods run on selection, LIME on "Explain".
    page.get_by_role("tab", name="Explanations").click()
    page.wait_for_selector('#pl-salmaps-view tr[data-method="grad_l2"]')
    assert methods_shown(page) == ["grad_l2", "grad_dot_input", "integrated_gradients"]
    assert "press Explain to run LIME" in page.inner_text("#pl-salmaps-info")
    page.click("#pl-salmaps-run")
    page.wait_for_selector('#pl-salmaps-view tr[data-method="lime"]', timeout=SLOW_MS)
    assert "salience maps ready" in page.inner_text("#pl-footer")
    view = page.inner_text("#pl-salmaps-view")
    assert "good" in view and "Integrated Gradients" in view and "LIME" in view
    signed = page.eval_on_selector_all("#pl-salmaps-view tr[data-method]",
                                       "rows => rows.map(r => r.dataset.signed)")
    assert signed == ["unsigned", "signed", "signed", "signed"]
    shoot(page, "10_salience_maps")

    # Counterfactuals: word replacer "good -> bad" on the selected example.
    page.get_by_role("tab", name="Counterfactuals").click()
    subs = page.locator("#pl-cf-subs textarea, #pl-cf-subs input").first
    subs.fill("good -> bad")
    page.click("#pl-cf-generate")
    footer = wait_footer(page, "Word replacer made")
    assert "made 1 example(s)" in footer, footer
    table = page.inner_text("#pl-cf-table")
    assert "The line up is bad !!! #Coachella2015" in table
    assert "source prediction" in table and "new prediction" in table
    assert len(re.findall(r"(negative|neutral|positive) \(\d\.\d\d\)", table)) == 2, table
    shoot(page, "11_counterfactuals_word_replacer", readme=True)

    # Add it to this session's dataset: it becomes the selected example.
    page.locator("#pl-cf-picks input[type=checkbox]").first.check()
    page.click("#pl-cf-add")
    footer = wait_footer(page, "added 1 example(s)")
    assert "(now 2001)" in footer, footer

    page.get_by_role("tab", name="Explanations").click()
    page.wait_for_function(
        "() => (document.querySelector('#pl-salmaps-info')?.innerText || '')"
        ".includes('example #2000')")
    page.wait_for_selector('#pl-salmaps-view tr[data-method="grad_l2"]')
    assert "bad" in page.inner_text("#pl-salmaps-view")

    # Embeddings projector: PCA of the dataset (with the added example), then select.
    page.get_by_role("tab", name="Embeddings").click()
    page.click("#pl-emb-project")
    wait_footer(page, "projected sentiment with PCA")
    wait_chart(page, "pl-emb-chart", 2001)
    assert len(selected_ids(page, "pl-emb-chart")) == 1  # the added example
    page.locator("#pl-emb-chart").scroll_into_view_if_needed()
    shoot(page, "12_embeddings_projector", readme=True)

    # Click a point well apart from the others: it becomes the selected example.
    dot_id, x, y = isolated_point(page, "pl-emb-chart")
    page.mouse.click(x, y)
    wait_footer(page, "in the projector")
    assert re.search(r"selected example #\d+ in the projector", page.inner_text("#pl-footer"))
    page.wait_for_function(
        "id => { const gd = document.querySelector('#pl-emb-chart .js-plotly-plot');"
        " return gd && gd.data.flatMap(t => (t.selectedpoints || []).map(k => t.customdata[k][0]))"
        ".join() === id; }", arg=dot_id)

    # Drag a box over the upper-left part of the plot: several examples are selected.
    box_drag(page, "pl-emb-chart", 0.01, 0.01, 0.6, 0.6)
    footer = wait_footer(page, "examples in the projector")
    n = int(re.search(r"selected (\d+) examples in the projector", footer).group(1))
    assert n > 1
    page.wait_for_function(
        "n => { const gd = document.querySelector('#pl-emb-chart .js-plotly-plot');"
        " return gd && gd.data.reduce((s, t) => s + (t.selectedpoints || []).length, 0) === n; }",
        arg=n)
    shoot(page, "13_embeddings_box_selection")
