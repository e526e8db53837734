"""'Why A rather than B?', the top alternatives and the attention view in a real browser, on the
embedded tiny model: the few-shot story gains "why 'You have to try it' rather than 'Avoid'?".

Slow (model load + compiles), marked ``e2e`` and ``slow``. Screenshots go to test-artifacts/e2e/
(and docs/screenshots/ with PROMPTLIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import pytest

from .conftest import shoot
from .test_workbench_ui import EXPLAIN_TIMEOUT_MS, explain, pick_row, wait_ranked

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _tokens(page) -> list[str]:
    return page.eval_on_selector_all("#pl-salience-view .pl-resp",
                                     "els => els.map(e => e.innerText)")


def _side_rows(page, side: str) -> list[tuple[str, float]]:
    rows = page.eval_on_selector_all(
        f'#pl-ranked table.pl-ranked[data-side="{side}"] tr[data-rank]',
        "rows => rows.map(r => [r.querySelector('.pl-segtext').title, "
        "r.querySelectorAll('td.pl-num')[1].innerText])")
    return [(t, float(s)) for t, s in rows]


def test_why_you_have_to_try_it_rather_than_avoid(page, server_url):
    pick_row(page, server_url, 0)
    explain(page)
    tokens = _tokens(page)
    first = next(i for i, t in enumerate(tokens) if t.strip() == "You")
    last = next(i for i, t in enumerate(tokens) if i > first and t.strip() == "it")
    page.click(f'#pl-salience-view .pl-resp[data-index="{first}"]')
    page.click(f'#pl-salience-view .pl-resp[data-index="{last}"]', modifiers=["Shift"])
    span = f"{first}:{last + 1}"
    wait_ranked(page, method="grad_l2", granularity="words", span=span)

    page.locator("#pl-contrast textarea, #pl-contrast input").first.fill(" Avoid")
    page.click("#pl-contrast-explain")
    page.wait_for_selector(f'#pl-ranked table.pl-ranked[data-span="{span}"]'
                           '[data-contrast=" Avoid"][data-side="both"]',
                           timeout=EXPLAIN_TIMEOUT_MS)
    info = page.inner_text("#pl-salience-info")
    assert "rather than" in info and "Avoid" in info and "log p(B)" in info
    assert "no direction" in page.inner_text("#pl-ranked")

    # Grad·Input is signed: the lists say which prompt words push toward A and toward B
    page.locator("#pl-method").get_by_label("Grad·Input").check()
    page.wait_for_selector('#pl-ranked table.pl-ranked[data-method="grad_dot_input"]'
                           '[data-contrast=" Avoid"][data-side="a"]', timeout=EXPLAIN_TIMEOUT_MS)
    toward_a, toward_b = _side_rows(page, "a"), _side_rows(page, "b")
    assert toward_a and all(score > 0 for _, score in toward_a)
    assert all(score < 0 for _, score in toward_b)
    assert "PUSH TOWARD A" in page.inner_text("#pl-ranked")
    assert "diverging" in page.inner_text("#pl-legend")
    shoot(page, "08_contrast_why_not_avoid", readme=True)

    # The generated-text module: the alternatives at "You", and "explain why not this one"
    page.click(f'#pl-logprobs .pl-tok[data-index="{first}"]')
    page.wait_for_selector(f'#pl-logprobs .pl-alt-panel[data-index="{first}"]')
    alternatives = page.eval_on_selector_all(
        "#pl-logprobs table.pl-alternatives tr[data-alt]",
        "rows => rows.map(r => r.querySelector('.pl-segtext').innerText)")
    assert len(alternatives) == 5 and alternatives[0].strip("“”").strip() == "You"
    pick = next(i for i, a in enumerate(alternatives)
                if i > 0 and page.locator(f'#pl-logprobs button.pl-why-not[data-alt="{i}"]')
                .count())
    alt_text = alternatives[pick].strip("“”")
    page.click(f'#pl-logprobs button.pl-why-not[data-alt="{pick}"]')
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('rather than')",
        timeout=EXPLAIN_TIMEOUT_MS)
    page.wait_for_selector(f'#pl-ranked table.pl-ranked[data-span="{first}:{first + 1}"]'
                           "[data-contrast]", timeout=EXPLAIN_TIMEOUT_MS)
    contrast = page.get_attribute("#pl-ranked table.pl-ranked", "data-contrast")
    assert contrast == alt_text
    assert page.locator("#pl-contrast textarea, #pl-contrast input").first.input_value() \
        == alt_text
    shoot(page, "09_explain_why_not_this_one", readme=True)

    # The attention view beside the salience, averaged, then one head
    page.locator("#pl-show-attention").get_by_label("Show attention").check()
    page.wait_for_selector('#pl-attention-ranked table.pl-ranked[data-kind="attention"]'
                           '[data-layer="avg"][data-head="avg"]', timeout=EXPLAIN_TIMEOUT_MS)
    assert "average over layers" in page.inner_text("#pl-attention-view")
    page.click("#pl-att-head input")
    page.get_by_role("option", name="head 2", exact=True).click()
    page.wait_for_selector('#pl-attention-ranked table.pl-ranked[data-head="2"]',
                           timeout=EXPLAIN_TIMEOUT_MS)
    assert "head 2" in page.inner_text("#pl-attention-view")
    shoot(page, "10_attention_beside_salience", readme=True)

    page.click("#pl-contrast-clear")
    page.wait_for_function("() => !document.querySelector('#pl-ranked table[data-contrast]')",
                           timeout=EXPLAIN_TIMEOUT_MS)
