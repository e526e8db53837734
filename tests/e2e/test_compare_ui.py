"""Issue 14, parts 2 and 3 in a real browser against `promptlit serve` with the embedded model:
the few-shot story's mistaken prompt and its fixed version side by side, and custom segments
(few-shot blocks, blocks at a typed separator) in the sequence-salience view.

Slow (model load + first compile), marked ``e2e`` and ``slow``. Screenshots go to
test-artifacts/e2e/ (and docs/screenshots/ with PROMPTLIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import pytest

from .conftest import shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL_TIMEOUT_MS = 300_000


def wait_footer(page, text: str, timeout: int = MODEL_TIMEOUT_MS) -> None:
    page.wait_for_function(
        f"() => (document.querySelector('#pl-footer')?.innerText || '').includes({text!r})",
        timeout=timeout)


def open_compare(page, url: str) -> None:
    page.goto(url)
    wait_footer(page, "Ready")
    page.get_by_role("tab", name="Compare Prompts").click()
    page.wait_for_selector("#pl-cmp-run", state="visible")


def side_rows(page) -> list[dict]:
    """The side-by-side table's rows: op, labels and texts of A and B."""
    return page.eval_on_selector_all(
        "#pl-cmp-side tr[data-op]",
        "rows => rows.map(r => ({op: r.dataset.op, la: r.dataset.labelA || '', "
        "lb: r.dataset.labelB || '', a: r.querySelector('.pl-cmp-a')?.innerText || '', "
        "b: r.querySelector('.pl-cmp-b')?.innerText || ''}))")


def test_mistake_vs_fixed_side_by_side(page, server_url):
    open_compare(page, server_url)
    # by default A is the first row (fewshot-mistake) and B the next one (its fixed version)
    page.wait_for_function(
        "() => (document.querySelector('#pl-cmp-a input')?.value || '').includes("
        "'#0 · fewshot-mistake')")
    assert "#1 · fewshot-fixed" in page.input_value("#pl-cmp-b input")
    page.click("#pl-cmp-run")
    wait_footer(page, "comparison ready")
    page.wait_for_selector('#pl-cmp-side table.pl-cmp[data-granularity="sentences"]')
    rows = side_rows(page)
    changed = [r for r in rows if r["op"] == "changed"]
    assert len(changed) == 1, rows
    assert "Recommendation: You have to try it." in changed[0]["a"]
    assert "Recommendation: Avoid." in changed[0]["b"]
    assert {r["op"] for r in rows} == {"equal", "changed"}
    # the responses: the copied recommendation struck through, the fixed one underlined
    deleted = "".join(page.eval_on_selector_all("#pl-cmp-responses del",
                                                "els => els.map(e => e.innerText)"))
    inserted = "".join(page.eval_on_selector_all("#pl-cmp-responses ins",
                                                 "els => els.map(e => e.innerText)"))
    assert "You" in deleted and "try" in deleted, deleted
    assert "void" in inserted, inserted
    assert page.locator("#pl-cmp-changed tr[data-rank]").count() >= 3
    shoot(page, "05_compare_mistake_vs_fixed", readme=True)

    # few-shot blocks: the mistaken example is the one that changed, and it lost the most
    # salience (scores are shares of each prompt's total)
    page.locator("#pl-cmp-granularity").get_by_label("few-shot").check()
    page.wait_for_selector('#pl-cmp-side table.pl-cmp[data-granularity="few-shot"]')
    rows = side_rows(page)
    assert [(r["op"], r["la"], r["lb"]) for r in rows] == [
        ("equal", "instruction", "instruction"), ("changed", "example 1", "example 1"),
        ("equal", "example 2", "example 2"), ("equal", "query", "query")]
    first = page.locator("#pl-cmp-changed tr[data-rank='1']")
    assert first.get_attribute("data-op") == "changed"
    assert "example 1" in first.inner_text()
    delta = float(first.locator("td.pl-num").last.inner_text())
    assert delta < 0, delta
    shoot(page, "06_compare_fewshot_blocks", readme=True)

    # the same text for both: how the fix changed what the model looks at for A's response
    page.locator("#pl-cmp-target").get_by_label("the same text: A's response").check()
    page.wait_for_function(
        "() => (document.querySelector('#pl-cmp-info')?.innerText || '')"
        ".includes(\"both for A's response\")", timeout=MODEL_TIMEOUT_MS)
    assert page.locator("#pl-cmp-responses del").count() == 0
    assert page.locator("#pl-cmp-responses ins").count() == 0
    shared = int(page.get_attribute("#pl-cmp-responses .pl-cmp-resp", "data-shared"))
    assert shared == page.locator("#pl-cmp-responses span[data-op='equal']").count() > 5
    titles = page.eval_on_selector_all(
        "#pl-cmp-responses span[data-op='equal']",
        "els => els.filter(e => e.innerText.trim() === 'You').map(e => e.title)")
    # the fixed prompt makes the copied "You" much less likely (by more than a nat)
    assert titles and "(Δ -" in titles[0], titles
    assert float(titles[0].rsplit("Δ ", 1)[1].rstrip(")")) < -1.0, titles
    assert "⚠" not in page.inner_text("#pl-footer")


def test_custom_segments_in_sequence_salience(page, server_url):
    page.goto(f"{server_url}?example=0&granularity=words")
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '')"
        ".includes('PROMPT')")
    page.click("#pl-explain")
    wait_footer(page, "salience ready")
    page.wait_for_selector("#pl-ranked tr[data-rank]")

    page.locator("#pl-granularity").get_by_label("few-shot").check()
    page.wait_for_selector('#pl-ranked table.pl-ranked[data-granularity="few-shot"]')
    labels = page.eval_on_selector_all("#pl-ranked td.pl-segtext",
                                       "els => els.map(e => e.dataset.label)")
    assert sorted(labels) == ["example 1", "example 2", "instruction", "query"]
    # the story: the response copies the mistaken first example's recommendation
    assert labels[0] == "example 1", labels
    page.locator("#pl-show-matrix").get_by_label("Show the target×source matrix").check()
    page.wait_for_selector("#pl-matrix .pl-matrix .pl-mhead")
    heads = page.eval_on_selector_all("#pl-matrix .pl-mhead", "els => els.map(e => e.innerText)")
    assert heads == ["instruction", "example 1", "example 2", "query"]
    shoot(page, "07_salience_fewshot_segments", readme=True)

    box = page.locator("#pl-segment-sep textarea, #pl-segment-sep input").first
    box.fill("^Taste-likes:")
    box.press("Enter")
    page.locator("#pl-granularity").get_by_label("blocks").check()
    page.wait_for_selector('#pl-ranked table.pl-ranked[data-granularity="blocks /^Taste-likes:/"]')
    labels = page.eval_on_selector_all("#pl-ranked td.pl-segtext",
                                       "els => els.map(e => e.dataset.label)")
    assert sorted(labels) == ["block 1", "block 2", "block 3", "block 4"]

    box.fill("((")
    box.press("Enter")
    wait_footer(page, "not a valid regular expression", timeout=60_000)
    assert "Traceback" not in page.content()


def test_an_edit_from_the_datapoint_editor_is_compared_with_its_original(page, server_url):
    page.goto(f"{server_url}?example=2")
    wait_footer(page, "Ready")
    page.get_by_role("tab", name="Datapoint Editor").click()
    box = page.locator("#pl-edit-prompt textarea")
    box.wait_for()
    prompt = box.input_value()
    assert "Recommendation: Order it." in prompt
    box.fill(prompt.replace("Recommendation: Order it.", "Recommendation: Avoid.", 1))
    page.click("#pl-add")
    wait_footer(page, "added example #", timeout=60_000)
    page.get_by_role("tab", name="Compare Prompts").click()
    # A: the example the edit came from; B: the edit (added in this session)
    page.wait_for_function(
        "() => (document.querySelector('#pl-cmp-b input')?.value || '')"
        ".includes('(added in this session)')")
    assert page.input_value("#pl-cmp-a input").startswith("#2 · fewshot-mistake")
    page.click("#pl-cmp-run")
    wait_footer(page, "comparison ready")
    changed = [r for r in side_rows(page) if r["op"] != "equal"]
    assert [(r["op"], r["a"].strip(), r["b"].strip()) for r in changed] == [
        ("changed", "Recommendation: Order it.", "Recommendation: Avoid.")]
    assert "⚠" not in page.inner_text("#pl-footer")
