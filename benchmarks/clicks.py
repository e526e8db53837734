"""How fast the salience view answers a click, measured in a real browser.

Starts ``promptlit serve`` on the embedded defaults (the tiny model and the sample prompts,
127.0.0.1, a free port, a temporary cache dir), drives the system Chromium with playwright,
explains example 0 and then measures, inside the page, the time from a click (the click
event's own ``timeStamp``, the moment the browser received the input) to the moment the view
shows the new state (a ``MutationObserver`` callback seeing the ranked table answer the new
span / granularity and the clicked token selected), and to the next animation frame after it
(when it is painted):

* **span click**: a click on a response token (every fourth click a shift-click extending the
  selection);
* **granularity**: a click on another granularity (tokens, words, sentences, lines, paragraphs
  in turn).

Each is measured twice, ``--runs`` times each: with the browser-side redraw
(`promptlit.ui.fast_salience`, the default) and with it switched off in the page
(``window.promptlitSalience.disabled = true``: the queued Gradio round trip and a server
re-render, as before). Between clicks it waits until the server has synced the session (the
info line names the new span), as a person would not click faster than that.

Usage:
    .venv/bin/python benchmarks/clicks.py                 # 20 clicks of each kind and path
    .venv/bin/python benchmarks/clicks.py --runs 40 --json clicks.json
    .venv/bin/python benchmarks/clicks.py --url http://127.0.0.1:5432/   # a running server
    .venv/bin/python benchmarks/clicks.py --first-only --serve-arg=--no-warmup  # first explain
    .venv/bin/python benchmarks/clicks.py --first-only --wait-warmup   # ... after the warm-up

``--first-only`` times only the first "Generate & explain" after the start (fresh cache dir):
with ``--serve-arg=--no-warmup`` it pays every compile; by default the server's background
warm-up (`promptlit.warmup`) is explaining example 0 meanwhile; ``--wait-warmup`` clicks once
the warm-up logged its end.

Goal: a click updates the view in < 50 ms (median and p90) with the browser-side redraw.
The load average is printed with the table: other work on the machine moves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
URL_LINE = re.compile(r"promptlit is running at (http://\S+)")
GRANULARITIES = ("tokens", "words", "sentences", "lines", "paragraphs")

# In-page probe: arm(expect) records the next click's timeStamp; `pending` then resolves with the
# time the DOM first matches `expect` (and the next frame after it).
PROBE = r"""
() => {
  if (window.__plProbe) return;
  const P = window.__plProbe = {t0: null, armed: null, result: null};
  document.addEventListener('click', (e) => {
    if (P.armed && P.t0 === null) P.t0 = e.timeStamp;
  }, true);
  const check = () => {
    const a = P.armed;
    if (!a || P.t0 === null) return;
    const table = document.querySelector('#pl-ranked table.pl-ranked');
    if (!table || table.getAttribute('data-span') !== a.span
        || table.getAttribute('data-granularity') !== a.gran) return;
    const sel = Array.from(document.querySelectorAll('#pl-salience-view .pl-resp.pl-selected'))
      .map(e => parseInt(e.getAttribute('data-index'), 10));
    const want = [];
    const [lo, hi] = a.span.split(':').map(Number);
    for (let i = lo; i < hi; i++) want.push(i);
    if (sel.join(',') !== want.join(',')) return;
    const t1 = performance.now();
    P.armed = null;
    requestAnimationFrame(() => {
      const t2 = performance.now();
      P.done({dom: t1 - P.t0, frame: t2 - P.t0});
    });
  };
  new MutationObserver(check).observe(document.body,
    {subtree: true, childList: true, attributes: true, characterData: true});
  P.arm = (expect) => {
    P.pending = new Promise((resolve) => { P.t0 = null; P.armed = expect; P.done = resolve; });
  };
}
"""


def env() -> dict[str, str]:
    return dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
                GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")


def start_server(cache_dir: str, extra: list[str], timeout: float = 900.0
                 ) -> tuple[str, subprocess.Popen[str], list[str]]:
    """Starts ``promptlit serve --port 0`` and returns (url, process, its output lines)."""
    cmd = [sys.executable, "-m", "promptlit", "serve", "--port", "0", "--host", "127.0.0.1",
           "--no-browser", "--cache-dir", cache_dir, *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            m = URL_LINE.search(line)
            if m and not found:
                found.append(m.group(1))

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("promptlit serve did not start:\n" + "\n".join(lines[-40:]))
        time.sleep(0.2)
    return found[0].rstrip("/") + "/", proc, lines


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def explain(page: Any, url: str) -> float:
    """Opens example 0 and explains it; returns the seconds from the click to "salience ready"."""
    page.goto(f"{url}?example=0&granularity=words")
    page.wait_for_function(
        "() => (document.querySelector('#pl-salience-view')?.innerText || '').includes('PROMPT')")
    start = time.perf_counter()
    page.click("#pl-explain")
    page.wait_for_function(
        "() => document.querySelector('#pl-footer')?.innerText.includes('salience ready')",
        timeout=900_000)
    page.wait_for_selector("#pl-ranked table.pl-ranked")
    return time.perf_counter() - start


def synced(page: Any, span: tuple[int, int]) -> None:
    """Waits until the server has the selection (the info line names the span)."""
    page.wait_for_function(
        "(s) => (document.querySelector('#pl-salience-info')?.innerText || '')"
        ".includes('selected response tokens ' + s)", arg=f"{span[0]}–{span[1] - 1}")


def measure(page: Any, runs: int, fast: bool) -> dict[str, list[dict[str, float]]]:
    """``runs`` span clicks and ``runs`` granularity switches; their timings."""
    page.evaluate(PROBE)
    page.evaluate("(off) => { if (window.promptlitSalience) "
                  "window.promptlitSalience.disabled = off; }", not fast)
    # tokens one can click (a newline token has no box)
    clickable = page.eval_on_selector_all(
        "#pl-salience-view .pl-resp[data-index]",
        "els => els.filter(e => e.textContent.trim() && e.getClientRects().length)"
        ".map(e => parseInt(e.getAttribute('data-index'), 10))")
    gran = page.get_attribute("#pl-ranked table.pl-ranked", "data-granularity") or "words"
    span = tuple(int(x) for x in (page.get_attribute("#pl-ranked table.pl-ranked",
                                                     "data-span") or "0:1").split(":"))
    anchor = span[0]
    out: dict[str, list[dict[str, float]]] = {"span click": [], "granularity": []}
    for i in range(runs):
        index = clickable[(i * 7 + 3) % len(clickable)]
        shift = i % 4 == 3
        new = ((min(anchor, index), max(anchor, index) + 1) if shift else (index, index + 1))
        if not shift:
            anchor = index
        page.evaluate("(e) => { window.__plProbe.arm(e); }",
                      {"span": f"{new[0]}:{new[1]}", "gran": gran})
        page.click(f'#pl-salience-view .pl-resp[data-index="{index}"]',
                   modifiers=["Shift"] if shift else [])
        out["span click"].append(page.evaluate("() => window.__plProbe.pending"))
        span = new
        synced(page, span)
        time.sleep(0.1)
    for i in range(runs):
        g = GRANULARITIES[(GRANULARITIES.index(gran) + 1 + i) % len(GRANULARITIES)]
        if g == gran:
            continue
        page.evaluate("(e) => { window.__plProbe.arm(e); }",
                      {"span": f"{span[0]}:{span[1]}", "gran": g})
        page.locator("#pl-granularity").get_by_label(g, exact=True).check()
        out["granularity"].append(page.evaluate("() => window.__plProbe.pending"))
        gran = g
        time.sleep(0.6)  # the server's sync of the session (a light event) lands meanwhile
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="clicks of each kind and path")
    ap.add_argument("--url", help="measure an already running server instead of starting one")
    ap.add_argument("--json", help="also write the raw timings here")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for `promptlit serve` (repeatable), e.g. "
                         "--serve-arg=--no-warmup")
    ap.add_argument("--wait-warmup", action="store_true",
                    help="explain only once the server logged the end of its warm-up")
    ap.add_argument("--first-only", action="store_true",
                    help="only time the first explain after the start (no clicks)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="promptlit-clicks-")
    try:
        if args.url:
            url = args.url.rstrip("/") + "/"
        else:
            t0 = time.perf_counter()
            url, proc, lines = start_server(tmp.name, args.serve_arg)
            print(f"server up in {time.perf_counter() - t0:.1f} s at {url}", flush=True)
            if args.wait_warmup:
                while not any("warm-up: done" in x or "warm-up: stopped" in x for x in lines):
                    time.sleep(0.5)
                print(f"warm-up done {time.perf_counter() - t0:.1f} s after the start",
                      flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(120_000)
            first = explain(page, url)
            print(f"first explain (generate + matrix) {first:.2f} s", flush=True)
            results: dict[str, Any] = {}
            for fast in (() if args.first_only else (True, False)):
                path = "browser redraw" if fast else "server round trip"
                results[path] = measure(page, args.runs, fast)
            browser.close()
    finally:
        if proc is not None:
            stop_server(proc)
        tmp.cleanup()
    load_after = os.getloadavg()
    print()
    print("| click | path | n | DOM updated median / p90 (ms) | painted median / p90 (ms) |")
    print("|---|---|---|---|---|")
    for path, kinds in results.items():
        for kind, rows in kinds.items():
            dom = [r["dom"] for r in rows]
            frame = [r["frame"] for r in rows]
            print(f"| {kind} | {path} | {len(rows)} | {statistics.median(dom):.1f} / "
                  f"{pct(dom, 0.9):.1f} | {statistics.median(frame):.1f} / "
                  f"{pct(frame, 0.9):.1f} |")
    print(f"\nload average (1, 5, 15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}; after: {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}; {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "first_explain_s": first,
                                               "load_before": load_before,
                                               "load_after": load_after}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
