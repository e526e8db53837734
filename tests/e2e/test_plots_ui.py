"""The interactive (Plotly) charts in a real browser against `promptlit serve --demo
classification`: the scalars plot (hover read-outs, box drag, zoom that survives a shift-box
that adds to the selection), the ROC / PR curves (hover shows the threshold), the UMAP projector
(lasso) and HotFlip counterfactuals on the sentiment classifier.

Every selection is checked three ways: the footer, the data table's "N selected", and the
points the redrawn chart shows as selected, which must be exactly the points inside the dragged
box (computed from the chart's own data). Marked ``e2e`` (UMAP and HotFlip also ``slow``);
screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import re

import pytest

from .conftest import shoot
from .plot_helpers import (
    box_drag,
    chart,
    circle,
    drag,
    hover_text,
    in_box,
    isolated_point,
    plot_area,
    points,
    selected_ids,
    to_page,
    wait_chart,
)

pytestmark = [pytest.mark.e2e]

N_CANCER = 569
N_SENTIMENT = 2000
EXAMPLE = 1057  # "The line up is good !!! #Coachella2015" (positive)
SLOW_MS = 300_000


def footer_has(page, text: str, timeout: int = SLOW_MS) -> str:
    page.wait_for_function(
        "t => (document.querySelector('#pl-footer')?.innerText || '').includes(t)", arg=text,
        timeout=timeout)
    return page.inner_text("#pl-footer")


def table_says_selected(page, n: int) -> None:
    page.wait_for_function(
        "t => (document.querySelector('#pl-table-info')?.innerText || '').includes(t)",
        arg=f"{n} selected")


def wait_selected(page, plot_id: str, n: int) -> list[str]:
    """Waits until the redrawn chart shows ``n`` selected points; returns their ids."""
    page.wait_for_function(
        "([id, n]) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');"
        " return gd && gd.data && gd.data.reduce((s, t) => s + (t.selectedpoints || []).length,"
        " 0) === n; }", arg=[plot_id, n])
    return selected_ids(page, plot_id)


def footer_changes(page, text: str, previous: str) -> str:
    """Waits for a footer that says ``text`` and no longer ``previous``; returns it."""
    page.wait_for_function(
        "([t, old]) => { const f = document.querySelector('#pl-footer')?.innerText || '';"
        " return f.includes(t) && !f.includes(old); }", arg=[text, previous.strip()],
        timeout=SLOW_MS)
    return page.inner_text("#pl-footer")


def box_selects(page, plot_id: str, box: tuple[float, float, float, float], before: set[str],
                text: str, previous: str) -> set[str]:
    """Checks a box drag's selection in the footer ("<N> <text>"), the data table and the
    redrawn chart: ``before`` plus exactly the points in the box (give or take a point within
    2 px of its edge, where Plotly's hit test and ours may differ); returns it."""
    surely, maybe = in_box(page, plot_id, box, -2), in_box(page, plot_id, box, 2)
    assert surely - before
    footer = footer_changes(page, text, previous)
    n = int(re.search(rf"(\d+) {text}", footer).group(1))
    table_says_selected(page, n)
    chosen = set(wait_selected(page, plot_id, n))
    assert before | surely <= chosen <= before | maybe, footer
    return chosen


def test_scalars_hover_box_zoom_and_shift_box(page, classification_url):
    page.goto(classification_url)
    footer_has(page, "Ready")
    page.click("#pl-area-lower button[role=tab]:has-text('Predictions')")
    wait_chart(page, "pl-scalars-a", N_CANCER)
    page.locator("#pl-scalars-a").scroll_into_view_if_needed()
    shown = chart(page, "pl-scalars-a")
    assert shown["dragmode"] == "select" and shown["annotations"] == ["threshold 0.50"]

    # Hover: the example, its score and its label.
    pid, px, py = isolated_point(page, "pl-scalars-a")
    tip = hover_text(page, "pl-scalars-a", px, py)
    assert re.search(r"#\d+.*malignant score \d\.\d{3}.*label (malignant|benign)", tip), tip

    # Drag a box over the right half: exactly the points in it are selected, everywhere.
    box = box_drag(page, "pl-scalars-a", 0.6, 0.02, 0.98, 0.98)
    first = box_selects(page, "pl-scalars-a", box, set(), "examples selected", "Ready.")
    assert len(first) > 1
    shoot(page, "scalars_box_selection")

    # Zoom into the left half (the zoom tool), then shift-drag a box there: the selection
    # grows by the points in the new box, and the zoom stays after the redraw.
    page.hover("#pl-scalars-a .js-plotly-plot")
    page.click('#pl-scalars-a .modebar-btn[data-val="zoom"]')
    area = plot_area(page, "pl-scalars-a")
    drag(page, [(area["x"] + 2, area["y"] + 2),
                (area["x"] + area["width"] * 0.5, area["y"] + area["height"] - 2)])
    page.wait_for_function(
        "() => document.querySelector('#pl-scalars-a .js-plotly-plot').layout.xaxis.range[1]"
        " < 0.6")
    zoomed = chart(page, "pl-scalars-a")["xrange"]
    page.click('#pl-scalars-a .modebar-btn[data-val="select"]')
    previous = page.inner_text("#pl-footer")
    more = box_drag(page, "pl-scalars-a", 0.5, 0.02, 0.98, 0.98, shift=True)
    both = box_selects(page, "pl-scalars-a", more, first, "examples selected", previous)
    assert len(both) > len(first)
    page.wait_for_timeout(500)  # the zoom is restored just after the redraw
    after = chart(page, "pl-scalars-a")
    assert after["xrange"] == pytest.approx(zoomed, abs=1e-6)
    assert after["dragmode"] == "select"
    shoot(page, "scalars_zoomed_shift_box")

    # A click selects one example.
    pid, px, py = isolated_point(page, "pl-scalars-a")
    page.mouse.click(px, py)
    footer_changes(page, "selected example #", "examples selected")
    assert wait_selected(page, "pl-scalars-a", 1) == [pid]
    assert "⚠" not in page.inner_text("#pl-footer")


def test_curves_hover_reads_out_the_threshold(page, classification_url):
    page.goto(classification_url)
    footer_has(page, "Ready")
    page.click("#pl-area-lower button[role=tab]:has-text('Thresholds')")
    wait_chart(page, "pl-curves-roc")
    page.locator("#pl-curves-roc").scroll_into_view_if_needed()
    roc = chart(page, "pl-curves-roc")
    assert re.fullmatch(r"malignant \(ROC AUC 0\.\d{3}\)", roc["traces"][0]["name"])
    assert roc["traces"][1]["name"].startswith("threshold 0.50: FPR")  # the operating point
    k = len(roc["traces"][0]["x"]) // 2
    px, py = to_page(page, "pl-curves-roc", roc["traces"][0]["x"][k], roc["traces"][0]["y"][k])
    tip = hover_text(page, "pl-curves-roc", px, py)
    assert "FPR" in tip and "TPR" in tip and "threshold" in tip, tip
    assert chart(page, "pl-curves-pr")["traces"][0]["name"].startswith("malignant (AP 0.")


@pytest.mark.slow
def test_umap_projector_lasso_selects(page, classification_url):
    page.goto(f"{classification_url}?dataset=sentiment&model=sentiment&example={EXAMPLE}"
              "&layout=classification")
    footer_has(page, "Ready")
    page.get_by_role("tab", name="Embeddings").click()
    page.locator("#pl-emb-method label:has-text('UMAP')").click()
    page.click("#pl-emb-project")
    footer_has(page, "projected sentiment with UMAP")
    wait_chart(page, "pl-emb-chart", N_SENTIMENT)
    assert chart(page, "pl-emb-chart")["title"].startswith("UMAP of")
    assert wait_selected(page, "pl-emb-chart", 1)  # the linked example
    page.locator("#pl-emb-mode label:has-text('Lasso')").click()
    page.wait_for_function(
        "() => document.querySelector('#pl-emb-chart .js-plotly-plot')?.layout.dragmode"
        " === 'lasso'")
    page.locator("#pl-emb-chart").scroll_into_view_if_needed()
    # A lasso around the middle point of the map (sorted by position): its neighbours in it.
    mid = sorted((x, y) for _, x, y in points(page, "pl-emb-chart"))[N_SENTIMENT // 2]
    drag(page, circle(*to_page(page, "pl-emb-chart", *mid), 40))
    footer = footer_has(page, "in the projector")
    found = re.search(r"selected (\d+) examples in the projector", footer)
    n = int(found.group(1)) if found else 1
    table_says_selected(page, n)
    assert len(wait_selected(page, "pl-emb-chart", n)) == n
    assert chart(page, "pl-emb-chart")["dragmode"] == "lasso"
    shoot(page, "umap_lasso_selection")


@pytest.mark.slow
def test_hotflip_counterfactuals(page, classification_url):
    page.goto(f"{classification_url}?dataset=sentiment&model=sentiment&example={EXAMPLE}"
              "&layout=classification")
    footer_has(page, "Ready")
    page.get_by_role("tab", name="Counterfactuals").click()
    page.click("#pl-cf-generator input")
    page.get_by_role("option", name="HotFlip").click()
    page.wait_for_function(
        "() => (document.querySelector('#pl-cf-settings textarea')?.value || '')"
        ".includes('max_flips')")
    page.click("#pl-cf-generate")
    footer = footer_has(page, "HotFlip made")
    made = re.search(r"HotFlip made (\d+) example\(s\), (\d+) with a different decision",
                     footer)
    assert made and int(made.group(1)) >= 1 and int(made.group(2)) >= 1, footer
    table = page.inner_text("#pl-cf-table")
    assert "The line up is" in table and "positive (0.94)" in table
    assert re.search(r"negative \(\d\.\d\d\)", table), table
    shoot(page, "hotflip_counterfactuals")


EVIL = '<b>bold</b> <a href="https://evil.example">link</a> <img src=x onerror=alert(1)> & co'


def test_dataset_text_in_a_chart_is_shown_as_typed(page):
    """Plotly renders a subset of HTML in labels; promptlit's charts show such text inert."""
    import gradio as gr

    from promptlit.server import free_port
    from promptlit.ui import plots

    points = [{"id": f"e{k}", "x": k, "y": k, "hover": [EVIL]} for k in range(5)]
    with gr.Blocks() as demo:
        gr.Plot(plots.scatter(points, x_title=EVIL, y_title="y", title=EVIL,
                              colour_values=[EVIL] * 5, colour_title=EVIL), elem_id="pl-evil")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"http://127.0.0.1:{port}/")
        wait_chart(page, "pl-evil", 5)
        trace = chart(page, "pl-evil")["traces"][0]
        tip = hover_text(page, "pl-evil", *to_page(page, "pl-evil", trace["x"][2], trace["y"][2]))
        assert tip == EVIL
        for part in (".gtitle", ".xtitle", ".legendtext"):
            assert page.text_content(f"#pl-evil {part}") == EVIL
        assert page.locator("#pl-evil a, #pl-evil img").count() == 0
        assert page.locator("#pl-evil tspan[style*='bold']").count() == 0 and not dialogs
    finally:
        demo.close()
