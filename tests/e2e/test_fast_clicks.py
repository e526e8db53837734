"""Span clicks and granularity switches redrawn in the browser (`promptlit.ui.fast_salience`)
against the real `promptlit serve` with the embedded tiny model.

* The browser's sums are promptlit's: for both matrix methods, several spans and every
  granularity the API offers, the segment scores the page computes equal, exactly, those of the
  ``/salience`` endpoint (`SequenceSalience.for_span(...).aggregate(...)` on the server).
* What the browser draws is what the server draws: the view and the ranked table after a
  browser-side click equal (DOM ``isEqualNode``) the server's render of the same selection.
* The session follows: after browser-side clicks, a server redraw (a method switch) shows the
  same span and granularity.
"""

from __future__ import annotations

import pytest
from gradio_client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXPLAIN_TIMEOUT_MS = 300_000
API_GRANULARITIES = ("tokens", "words", "sentences", "lines", "paragraphs", "few-shot")

SNAPSHOT = """() => [document.querySelector('#pl-salience-view .pl-view').outerHTML,
                    document.querySelector('#pl-ranked .pl-ranked-box').innerHTML]"""
SAME = """([view, ranked]) => {
  const parse = (html) => { const t = document.createElement('template'); t.innerHTML = html;
                            return Array.from(t.content.childNodes); };
  const v = document.querySelector('#pl-salience-view .pl-view');
  const box = document.querySelector('#pl-ranked .pl-ranked-box');
  const want = parse(ranked), got = Array.from(box.childNodes);
  return [parse(view)[0].isEqualNode(v),
          want.length === got.length && want.every((n, i) => n.isEqualNode(got[i]))];
}"""


def explained(page, url: str) -> int:
    """Opens example 0, explains it, returns the number of response tokens."""
    page.goto(f"{url}?example=0&granularity=words")
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '').includes('PROMPT')")
    page.click("#pl-explain")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('salience ready')",
        timeout=EXPLAIN_TIMEOUT_MS)
    page.wait_for_selector("#pl-ranked table.pl-ranked")
    page.wait_for_function("() => window.promptlitSalience && "
                           "window.promptlitSalience.aggregate('grad_l2', 0, 1, 'words')")
    return page.eval_on_selector_all("#pl-salience-view .pl-resp[data-index]", "e => e.length")


def ranked_is(page, span: str, gran: str) -> None:
    try:
        page.wait_for_selector(f'#pl-ranked table.pl-ranked[data-span="{span}"]'
                               f'[data-granularity="{gran}"]', timeout=60_000)
    except Exception as e:  # say what the page shows instead
        shown = page.evaluate(
            "() => { const t = document.querySelector('#pl-ranked table.pl-ranked');"
            " return [t && t.dataset.span, t && t.dataset.granularity,"
            " document.querySelector('#pl-salience-info')?.innerText,"
            " document.querySelector('#pl-footer')?.innerText]; }")
        raise AssertionError(f"wanted {span} {gran}; the page shows {shown}") from e


def set_fast(page, on: bool) -> None:
    page.evaluate("(off) => { window.promptlitSalience.disabled = off; }", not on)


def granularity(page, g: str) -> None:
    page.locator("#pl-granularity").get_by_label(g, exact=True).check()


def info_names(page, span: tuple[int, int]) -> None:
    page.wait_for_function(
        "(s) => (document.querySelector('#pl-salience-info')?.innerText || '')"
        ".includes('selected response tokens ' + s)", arg=f"{span[0]}–{span[1] - 1}")


def test_browser_sums_equal_python_aggregation(page, server_url):
    t = explained(page, server_url)
    client = Client(server_url, verbose=False)
    spans = [(0, t), (t // 2, min(t, t // 2 + 3))]
    for method in ("grad_l2", "grad_dot_input"):
        for a, b in spans:
            for g in API_GRANULARITIES:
                js = page.evaluate("([m, a, b, g]) => window.promptlitSalience.aggregate(m, a, b, g)",
                                   [method, a, b, g])
                py = client.predict(dataset="sample_prompts", example=0, method=method,
                                    granularity=g, span_start=a, span_stop=b,
                                    api_name="/salience")
                assert [(s["start"], s["end"], s["text"]) for s in js] == [
                    (s["start"], s["end"], s["text"]) for s in py["segments"]], (method, g)
                # float64 sums in the same order as numpy's: equal to the last bit
                assert [s["score"] for s in js] == [s["score"] for s in py["segments"]], (
                    method, (a, b), g)


def test_browser_redraw_equals_server_render_and_the_session_follows(page, server_url):
    t = explained(page, server_url)
    assert t >= 6
    set_fast(page, False)  # the server draws the references
    page.click('#pl-salience-view .pl-resp[data-index="2"]')
    ranked_is(page, "2:3", "words")
    words_2 = page.evaluate(SNAPSHOT)
    granularity(page, "sentences")
    ranked_is(page, "2:3", "sentences")
    sentences_2 = page.evaluate(SNAPSHOT)
    page.click('#pl-salience-view .pl-resp[data-index="1"]')
    page.click('#pl-salience-view .pl-resp[data-index="4"]', modifiers=["Shift"])
    ranked_is(page, "1:5", "sentences")
    sentences_1_5 = page.evaluate(SNAPSHOT)
    page.click('#pl-salience-view .pl-resp[data-index="5"]')
    ranked_is(page, "5:6", "sentences")
    granularity(page, "words")
    ranked_is(page, "5:6", "words")
    info_names(page, (5, 6))

    set_fast(page, True)  # now the browser draws
    page.click('#pl-salience-view .pl-resp[data-index="2"]')
    ranked_is(page, "2:3", "words")  # drawn synchronously by the click handler
    assert page.evaluate(SAME, words_2) == [True, True]
    info_names(page, (2, 3))  # the server synced the session ...
    assert page.evaluate(SAME, words_2) == [True, True]  # ... and left the view as drawn
    granularity(page, "sentences")
    ranked_is(page, "2:3", "sentences")
    assert page.evaluate(SAME, sentences_2) == [True, True]
    page.click('#pl-salience-view .pl-resp[data-index="1"]')
    page.click('#pl-salience-view .pl-resp[data-index="4"]', modifiers=["Shift"])
    ranked_is(page, "1:5", "sentences")
    assert page.evaluate(SAME, sentences_1_5) == [True, True]
    info_names(page, (1, 5))

    # A server redraw (another method, then back) shows the selection the browser made.
    page.locator("#pl-method").get_by_label("Grad·Input").check()
    page.wait_for_selector('#pl-ranked table.pl-ranked[data-method="grad_dot_input"]'
                           '[data-span="1:5"][data-granularity="sentences"]')
    page.locator("#pl-method").get_by_label("Grad L2").check()
    page.wait_for_selector('#pl-ranked table.pl-ranked[data-method="grad_l2"]'
                           '[data-span="1:5"][data-granularity="sentences"]')
    assert page.evaluate(SAME, sentences_1_5) == [True, True]
    # and the browser keeps redrawing clicks on top of the new render
    page.click('#pl-salience-view .pl-resp[data-index="2"]')
    granularity(page, "words")
    ranked_is(page, "2:3", "words")
    assert page.evaluate(SAME, words_2) == [True, True]
