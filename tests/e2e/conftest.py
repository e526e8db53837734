"""End-to-end fixtures: the real `promptlit serve` CLI (subprocess, free port, temporary cache
dir, the embedded tiny model) and headless Chromium driven by the `playwright` package.

* No browser at /usr/bin/chromium: the browser tests are skipped with the reason, unless
  ``CI=true``, where that is a failure (CI installs it: ``apt-get install -y chromium``).
* ``PROMPTLIT_E2E_URL=http://...``: test an already running server instead of starting one.
* ``PROMPTLIT_UPDATE_SCREENSHOTS=1``: also write the README screenshots to docs/screenshots/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptlit.server import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
DOC_SHOTS = REPO / "docs" / "screenshots"
START_TIMEOUT_S = 600


def in_ci() -> bool:
    """Whether we run in CI (there, missing prerequisites are failures, not skips)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skips (locally) or fails (in CI) when a prerequisite is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def wait_ready(url: str, proc: subprocess.Popen | None, log: Path, timeout: float) -> None:
    """Polls ``url`` until it answers (200, or 401/403 behind a login); fails with the server's log tail if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            pytest.fail(f"`promptlit serve` exited with {proc.returncode} before it was ready:\n"
                        f"{tail}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):  # up, behind --auth
                return
        except OSError:
            pass
        time.sleep(1.0)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    pytest.fail(f"`promptlit serve` was not ready within {timeout:.0f} s:\n{tail}")


def start_server(tmp: Path, *extra: str) -> tuple[str, subprocess.Popen, Path]:
    """Starts `python -m promptlit serve` on a free port; returns (url, process, log path)."""
    need((REPO / "presets" / "tiny_lm").exists(),
         "the embedded model presets/tiny_lm is not built (python presets/build_tiny_lm.py)")
    port = free_port()
    log = tmp / f"serve-{port}.log"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "promptlit", "serve", "--port", str(port), "--host",
           "127.0.0.1", "--cache-dir", str(tmp / f"cache-{port}"), "--no-browser", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    wait_ready(url, proc, log, START_TIMEOUT_S)
    return url, proc, log


def stop_server(proc: subprocess.Popen) -> None:
    """Stops the server process we started (by its pid)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running `promptlit serve` with the embedded model and sample prompts."""
    given = os.environ.get("PROMPTLIT_E2E_URL")
    if given:
        yield given.rstrip("/") + "/"
        return
    url, proc, _ = start_server(tmp_path_factory.mktemp("serve"))
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def classification_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running `promptlit serve --demo classification` (breast cancer and sentiment
    classifiers; ``PROMPTLIT_E2E_CLASSIFICATION_URL`` to use one already running)."""
    given = os.environ.get("PROMPTLIT_E2E_CLASSIFICATION_URL")
    if given:
        yield given.rstrip("/") + "/"
        return
    yield from demo_server(tmp_path_factory, "classification", "sentiment_clf")


def demo_server(tmp_path_factory: pytest.TempPathFactory, demo: str, preset: str
                ) -> Iterator[str]:
    """Serves `promptlit serve --demo DEMO` for the duration of a fixture (skips, saying how to
    build it, when its demo model `presets/PRESET` is missing); yields the URL."""
    need((REPO / "presets" / preset).exists(),
         f"the {demo} demo model presets/{preset} is not built "
         "(python presets/build_demo_models.py)")
    url, proc, _ = start_server(tmp_path_factory.mktemp(f"serve-{demo}"), "--demo", demo)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium (the system one; never `playwright install`)."""
    need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh browser page (its own Gradio session) with a desktop-sized viewport."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    try:
        yield pg
    finally:
        context.close()


def shoot(pg: object, name: str, *, readme: bool = False) -> Path:
    """Saves a full-page screenshot to test-artifacts/e2e/ (and docs/screenshots/ when
    ``PROMPTLIT_UPDATE_SCREENSHOTS=1`` and ``readme``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # The status bar sticks to the bottom of the window; a full-page shot would show it halfway
    # down the page, so it sits at the end of the page while the shot is taken.
    pin = "s => { const f = document.querySelector('#pl-footer'); if (f) f.style.position = s; }"
    pg.evaluate(pin, "static")  # type: ignore[attr-defined]
    try:
        pg.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        if readme and os.environ.get("PROMPTLIT_UPDATE_SCREENSHOTS") == "1":
            DOC_SHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(DOC_SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
    finally:
        pg.evaluate(pin, "")  # type: ignore[attr-defined]
    return path
