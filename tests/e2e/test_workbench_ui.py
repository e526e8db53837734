"""The workbench in a real browser against `promptlit serve` with the embedded tiny model.

Slow (model load + first compile), marked ``e2e`` and ``slow``. Screenshots go to
test-artifacts/e2e/ (and docs/screenshots/ with PROMPTLIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import pytest

from .conftest import shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MISTAKE = "Recommendation: You have to try it."
FIXED = "Recommendation: Avoid."
EXPLAIN_TIMEOUT_MS = 300_000


def open_example(page, url: str, index: int) -> None:
    """Opens the app on example ``index`` (via the URL) and waits until it is selected."""
    page.goto(f"{url}?example={index}&granularity=words")
    page.wait_for_selector("#pl-table")
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '')"
        ".includes('PROMPT')")


def explain(page) -> None:
    """Presses "Generate & explain" and waits for the clickable response and ranked list."""
    page.click("#pl-explain")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('salience ready')",
        timeout=EXPLAIN_TIMEOUT_MS)
    page.wait_for_selector("#pl-salience-view .pl-resp[data-index]")
    page.wait_for_selector("#pl-ranked tr[data-rank]")


def html_of(page, selector: str) -> str:
    return page.inner_html(selector)


def wait_ranked(page, **attrs: str) -> str:
    """Waits until the ranked table answers exactly this request (its ``data-*`` attributes,
    e.g. ``granularity="sentences"``); returns its HTML. Waiting for "any change" races with
    the previous update landing late."""
    selector = "#pl-ranked table.pl-ranked" + "".join(f'[data-{k}="{v}"]'
                                                       for k, v in attrs.items())
    page.wait_for_selector(selector)
    return html_of(page, "#pl-ranked")


def selected_indices(page) -> list[int]:
    return page.eval_on_selector_all("#pl-salience-view .pl-selected",
                                     "els => els.map(e => parseInt(e.dataset.index))")


def ranked_rows(page) -> list[tuple[str, float]]:
    """(segment text, score) of the ranked table's rows, in rank order."""
    rows = page.eval_on_selector_all(
        "#pl-ranked tr[data-rank]",
        "rows => rows.map(r => [r.querySelector('.pl-segtext').title, "
        "r.querySelectorAll('td.pl-num')[1].innerText])")
    return [(t, float(s)) for t, s in rows]


def pick_row(page, url: str, row: int) -> None:
    """Opens the app and selects a row by clicking it in the data table."""
    page.goto(url)
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('Ready')")
    cell = page.locator(f'#pl-table [data-testid="cell-{row}-2"]')
    cell.click()
    page.wait_for_function(
        f"() => document.querySelector('#pl-footer')?.innerText.includes('selected example "
        f"#{row}')")


def test_pick_generate_click_switch_granularity_and_method(page, server_url):
    pick_row(page, server_url, 0)
    assert MISTAKE in page.inner_text("#pl-salience-view")
    explain(page)
    tokens = page.eval_on_selector_all("#pl-salience-view .pl-resp",
                                       "els => els.map(e => e.innerText)")
    assert len(tokens) >= 2, tokens
    # the preset's stop sequence (a blank line) ends the response after the recommendation
    assert "".join(tokens).rstrip().endswith("You have to try it."), tokens
    # default selection: the whole response
    assert selected_indices(page) == list(range(len(tokens)))
    shoot(page, "01_explained_whole_response", readme=True)

    before = html_of(page, "#pl-ranked")
    # Explain the recommendation the model copied from the mistaken few-shot example
    # ("You have to try it"), when the tiny model wrote it; else the last tokens.
    last = next((i for i, t in enumerate(tokens) if "try" in t), len(tokens) - 1)
    page.click(f'#pl-salience-view .pl-resp[data-index="{last}"]')
    after_click = wait_ranked(page, method="grad_l2", granularity="words",
                              span=f"{last}:{last + 1}")
    assert after_click != before
    page.wait_for_function("() => document.querySelectorAll('#pl-salience-view .pl-selected')"
                           ".length === 1")
    assert selected_indices(page) == [last]
    assert "response tokens" in page.inner_text("#pl-salience-info")

    first = next((i for i in range(last, -1, -1) if "You" in tokens[i]), max(last - 2, 0))
    first = first if first < last else max(last - 2, 0)
    page.click(f'#pl-salience-view .pl-resp[data-index="{first}"]', modifiers=["Shift"])
    page.wait_for_function(
        f"() => document.querySelectorAll('#pl-salience-view .pl-selected').length === "
        f"{last - first + 1}")
    assert selected_indices(page) == list(range(first, last + 1))
    span = f"{first}:{last + 1}"
    after_shift = wait_ranked(page, method="grad_l2", granularity="words", span=span)
    shoot(page, "02_selected_span_words", readme=True)

    words = ranked_rows(page)
    page.locator("#pl-granularity").get_by_label("sentences").check()
    after_gran = wait_ranked(page, method="grad_l2", granularity="sentences", span=span)
    assert after_gran != after_shift
    assert "sentences" in page.inner_text("#pl-ranked thead")
    sentences = ranked_rows(page)
    assert words != sentences
    # the README's story: the span's most salient prompt word and sentence are the mistaken
    # few-shot example's (the model copied its recommendation)
    assert words[0][0] == "have", words[:3]
    assert sentences[0][0] == MISTAKE, sentences[:3]
    assert all(s >= 0 for _, s in sentences)  # Grad L2 is unsigned
    assert [s for _, s in sentences] == sorted((s for _, s in sentences), reverse=True)

    page.locator("#pl-method").get_by_label("Grad·Input").check()
    wait_ranked(page, method="grad_dot_input", granularity="sentences", span=span)
    page.wait_for_function(
        "() => document.querySelector('#pl-legend')?.innerText.includes('diverging')")
    signed = ranked_rows(page)
    assert [abs(s) for _, s in signed] == sorted((abs(s) for _, s in signed), reverse=True)
    assert signed != sentences
    assert after_click != after_gran

    page.locator("#pl-show-matrix").get_by_label("Show the target×source matrix").check()
    page.wait_for_selector("#pl-matrix .pl-matrix .pl-mrow")
    shoot(page, "03_grad_input_sentences_matrix", readme=True)

    # Integrated Gradients: computed for the selected span on demand (no full matrix)
    before_ig = html_of(page, "#pl-ranked")
    page.locator("#pl-method").get_by_label("Integrated Gradients").check()
    page.wait_for_selector("#pl-ig-steps", state="visible")
    assert wait_ranked(page, method="integrated_gradients", span=span) != before_ig
    page.wait_for_function(
        "() => document.querySelector('#pl-matrix')?.innerText.includes('No full matrix')")
    ig = ranked_rows(page)
    assert ig and [abs(s) for _, s in ig] == sorted((abs(s) for _, s in ig), reverse=True)
    assert "⚠" not in page.inner_text("#pl-footer")


def test_fix_the_fewshot_mistake_in_the_editor_and_explain_it(page, server_url):
    open_example(page, server_url, 0)
    page.get_by_role("tab", name="Datapoint Editor").click()
    box = page.locator("#pl-edit-prompt textarea")
    box.wait_for()
    prompt = box.input_value()
    assert MISTAKE in prompt
    fixed = prompt.replace(MISTAKE, FIXED, 1)
    box.fill(fixed)
    page.click("#pl-add")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('added example #')")
    footer = page.inner_text("#pl-footer")
    assert "this session" in footer
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '')"
        ".includes('Recommendation: Avoid.')")
    explain(page)
    prompt_html = page.inner_text("#pl-salience-view .pl-prompt")
    assert FIXED in prompt_html and MISTAKE not in prompt_html
    # the climax of the story: with its example fixed, the model now answers "Avoid."
    response = "".join(page.eval_on_selector_all("#pl-salience-view .pl-resp",
                                                 "els => els.map(e => e.innerText)"))
    assert response.strip().endswith("Recommendation: Avoid."), response
    assert page.locator("#pl-salience-view .pl-prompt .pl-seg").count() > 5
    assert len(ranked_rows(page)) > 0
    shoot(page, "04_edited_fewshot_fixed", readme=True)


def test_bad_link_reports_in_footer(page, server_url):
    page.goto(f"{server_url}?example=9999")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('not in')")
    assert "example 9999" in page.inner_text("#pl-footer")
    assert "Traceback" not in page.content()
