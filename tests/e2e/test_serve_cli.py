"""`promptlit serve --share --auth ... --demo-mode` through the real CLI, offline: the share link
cannot be made, the server says so in one line (once) and keeps serving (with the login,
read-only)."""

from __future__ import annotations

import time

import pytest
from gradio_client import Client

from .conftest import start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_share_failure_auth_and_demo_mode_via_cli(tmp_path):
    url, proc, log = start_server(tmp_path, "--share", "--auth", "ann:secret", "--demo-mode")
    try:
        # The server answers while it still tries for the share link (bounded by its timeout).
        deadline = time.monotonic() + 90
        text = log.read_text(errors="replace")
        while ("Could not create a share link" not in text and "Share link:" not in text
               and time.monotonic() < deadline):
            time.sleep(0.5)
            text = log.read_text(errors="replace")
        if "Share link:" in text:  # pragma: no cover - only with internet access
            pytest.skip("this machine can reach Gradio's share server")
        lines = [ln for ln in text.splitlines() if "Could not create a share link" in ln]
        assert len(lines) == 1, text  # printed once (not also logged)
        assert f"serving locally at {url.rstrip('/')}" in lines[0]
        assert f"promptlit is running at {url}" in text
        assert "Traceback" not in text
        with pytest.raises(Exception):  # noqa: B017 - the login is required
            Client(url, verbose=False).predict(api_name="/info")
        info = Client(url, verbose=False, auth=("ann", "secret")).predict(api_name="/info")
        assert info["demo_mode"] is True and "tiny" in info["salience_models"]
    finally:
        stop_server(proc)
