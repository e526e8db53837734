"""promptlit.server: exposure warnings, port checks, login throttling, upload and queue limits,
the share-failure notice. Real servers on 127.0.0.1 (port 0) with a fake LM; no JAX, no browser.
"""

from __future__ import annotations

import hmac
import http.client
import socket
import threading
import time
import urllib.parse
import warnings

import pytest
from gradio_client import Client

from promptlit import server as server_module
from promptlit.server import LoginThrottle, PortError, check_exposure, check_port, serve
from promptlit.ui.limits import RequestLimits

from .ui.fakes import EXAMPLES, FakeLM, make_workbench


def _post(port: int, path: str, body: bytes, headers: dict[str, str], *,
          source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """POSTs from the loopback address ``source`` (the whole 127/8 is this machine)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _login(port: int, user: str, password: str, source: str = "127.0.0.1"):
    """What Gradio's login form sends: an urlencoded POST to /login."""
    body = urllib.parse.urlencode({"username": user, "password": password}).encode()
    return _post(port, "/login", body, {"Content-Type": "application/x-www-form-urlencoded"},
                 source=source)


##
# Units: exposure, ports, password comparison, the throttle's arithmetic


def test_exposure_rules():
    assert check_exposure("127.0.0.1", auth=False, demo_mode=True) is None
    assert check_exposure("localhost", auth=False) is None
    assert check_exposure("::1", auth=False, demo_mode=True) is None
    assert check_exposure("0.0.0.0", auth=True, demo_mode=True) is None
    warning = check_exposure("0.0.0.0", auth=False)
    assert warning.startswith("promptlit listens on 0.0.0.0 (every network interface) WITHOUT A "
                              "LOGIN: anyone who can reach this machine can use the workbench")
    assert "--auth-file FILE" in warning and "--host 127.0.0.1" in warning
    assert check_exposure("0.0.0.0", auth=False, allow_public=True) is None
    with pytest.raises(ValueError, match=r"refusing to serve demo mode on :: \(every network "
                                         r"interface\) without a login.*--allow-public"):
        check_exposure("::", auth=False, demo_mode=True)
    assert check_exposure("::", auth=False, demo_mode=True, allow_public=True) is None


def test_serve_refuses_public_demo_mode_before_building_anything(monkeypatch):
    monkeypatch.setattr("promptlit.ui.app.build_app",
                        lambda *a, **k: pytest.fail("build_app ran before the refusal"))
    with pytest.raises(ValueError, match="refusing to serve demo mode on 0.0.0.0"):
        serve(object(), host="0.0.0.0", port=0, demo_mode=True, block=False)


def test_listening_line_names_the_real_bind_address():
    assert server_module._listening_line("127.0.0.1", 80, "http://127.0.0.1:80/") == (
        "promptlit is running at http://127.0.0.1:80/")
    line = server_module._listening_line("0.0.0.0", 80, "http://127.0.0.1:80/")
    assert line.startswith("promptlit is listening on 0.0.0.0:80 (every network interface); "
                           "open http://127.0.0.1:80/ on this machine")
    assert server_module._listening_line("::", 80, "http://[::1]:80/").startswith(
        "promptlit is listening on [::]:80 (every network interface); open http://[::1]:80/")
    assert server_module._local_host("0.0.0.0") == "127.0.0.1"
    assert server_module._local_host("::") == "::1"


def test_check_port():
    check_port("127.0.0.1", 0)  # any free port: nothing to check
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortError, match=rf"port {port} on 127.0.0.1 is already in use.*"
                                            r"--port 0 for any free port"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again
    with pytest.raises(PortError, match=r"--host 192\.0\.2\.1 is not an address of this machine"):
        check_port("192.0.2.1", port)  # TEST-NET-1: never a local address
    with pytest.raises(PortError, match=r"--host no-such-host\.invalid: no such address"):
        check_port("no-such-host.invalid", port)


def test_busy_port_is_found_before_the_app_is_built(monkeypatch):
    monkeypatch.setattr("promptlit.ui.app.build_app",
                        lambda *a, **k: pytest.fail("build_app ran before the port check"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(PortError, match="already in use"):
            serve(object(), port=busy.getsockname()[1], block=False)


def test_logins_compare_every_password_with_hmac(monkeypatch):
    calls, compare = [], hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(server_module.hmac, "compare_digest", spy)
    logins = server_module._Logins([("ann", "pw"), ("bob", "pä/ss")])
    assert logins("ann", "pw") and logins("bob", "pä/ss")
    assert not logins("ann", "pä/ss") and not logins("eve", "pw") and not logins("ann", "")
    assert len(calls) == 5 * 2 * 2  # both users, user and password, on every attempt


def test_login_throttle_doubles_the_wait_and_forgets_on_success():
    now = [0.0]
    t = LoginThrottle(max_failures=3, base_delay=1.0, max_delay=4.0, clock=lambda: now[0])
    assert [t.attempt("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert t.attempt("a") == 1.0 and t.attempt("b") == 0.0  # per address
    waits = []
    for _ in range(4):  # wait out each lock, fail again: 2, 4, then capped at 4
        now[0] += t.attempt("a")
        assert t.attempt("a") == 0.0
        waits.append(t.attempt("a"))
    assert waits == [2.0, 4.0, 4.0, 4.0]
    now[0] += 4.0
    assert t.attempt("a") == 0.0
    t.succeeded("a")
    assert [t.attempt("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="max_failures >= 1"):
        LoginThrottle(max_failures=0)


##
# A served app with a login, a tight upload limit and a throttle


@pytest.fixture(scope="module")
def guarded():
    srv = serve(make_workbench(), port=0, block=False, auth=("ann", "s3cret"),
                limits=RequestLimits(max_upload_mb=0.01),
                login_throttle=LoginThrottle(max_failures=2, base_delay=60))
    yield srv
    srv.stop()


def test_failed_logins_are_throttled_per_client(guarded):
    port = guarded.port
    assert _login(port, "ann", "guess1")[0] == 400
    assert _login(port, "ann", "guess2")[0] == 400
    status, headers, body = _login(port, "ann", "guess3")
    assert status == 429 and 55 <= int(headers["retry-after"]) <= 60
    assert b"Too many failed logins from 127.0.0.1; try again in" in body
    assert _login(port, "ann", "s3cret")[0] == 429  # even the right password waits
    # Another client is not affected; a success clears its record.
    assert _login(port, "ann", "s3cret", source="127.0.0.2")[0] == 200
    assert _login(port, "ann", "nope", source="127.0.0.2")[0] == 400


def test_uploads_over_the_limit_are_refused(guarded):
    status, headers, _ = _login(guarded.port, "ann", "s3cret", source="127.0.0.3")
    assert status == 200
    cookies = "; ".join(c.split(";", 1)[0] for c in headers["set-cookie"].split(", ")
                        if "access-token" in c)

    def upload(size: int) -> tuple[int, bytes]:
        boundary = "promptlitboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                f"filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\n").encode() + \
            b"x" * size + f"\r\n--{boundary}--\r\n".encode()
        status, _, text = _post(guarded.port, "/gradio_api/upload", body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookies},
            source="127.0.0.3")
        return status, text

    # No control of the workbench takes a file: the upload route is closed (it accepted any
    # file of any size, even in demo mode); the size limit still bounds apps that do.
    for size in (20_000, 1_000):
        status, text = upload(size)
        assert status == 403 and b"takes no file uploads" in text
    assert guarded.app.max_file_size == 10_485  # 0.01 MB


def test_takes_uploads_finds_file_controls():
    import gradio as gr

    with gr.Blocks() as demo:
        gr.File()
    assert server_module.takes_uploads(demo)
    assert not server_module.takes_uploads(gr.Blocks())


##
# Queue bound and the share-failure notice


class BlockingLM(FakeLM):
    """Waits for `release` in every prediction (so requests pile up in the queue)."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def predict_minibatch(self, inputs, **kw):
        self.started.set()
        assert self.release.wait(60)
        return super().predict_minibatch(inputs, **kw)


def test_share_failure_is_printed_once_and_shown_on_the_page_and_the_queue_is_bounded(
        monkeypatch, capsys, caplog):
    from promptlit.api.dataset import Dataset
    from promptlit.data import prompt_spec
    from promptlit.workbench import Workbench

    monkeypatch.setattr(server_module, "_try_share", lambda host, port, timeout: (
        None, "no answer from Gradio's share server within 1 s"))
    lm = BlockingLM()
    wb = Workbench(models={"fake": lm},
                   datasets={"toy": Dataset([dict(e) for e in EXAMPLES], spec=prompt_spec())})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", server_module.ExposureWarning)
        srv = serve(wb, port=0, share=True, block=False, limits=RequestLimits(max_queue=1),
                        allow_public=True)
    try:
        out, err = capsys.readouterr()
        line = (f"Could not create a share link (no answer from Gradio's share server within "
                f"1 s); serving locally at {srv.local_url.rstrip('/')}")
        assert (out + err).count("Could not create a share link") == 1 and line in out
        assert not [r for r in caplog.records if "share link" in r.getMessage()]
        assert srv.app.promptlit_notices == [line]

        clients = [Client(srv.local_url, verbose=False) for _ in range(3)]
        running = clients[0].submit(prompt="first one", api_name="/generate")
        assert lm.started.wait(60)
        waiting = clients[1].submit(prompt="second one", api_name="/generate")
        deadline = time.monotonic() + 60
        while len(srv.app._queue) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = clients[2].submit(prompt="third one", api_name="/generate")
        with pytest.raises(Exception, match="Queue is full"):
            refused.result(timeout=60)
        lm.release.set()
        assert running.result(timeout=60)["response"] == " eno ok."
        assert waiting.result(timeout=60)["response"] == " eno ok."
    finally:
        lm.release.set()
        srv.stop()


def test_a_slow_first_answer_does_not_stop_the_server(monkeypatch):
    """On a loaded machine the first HEAD request to the new server can take longer than Gradio's
    3-second probe; Gradio then gives up at once ("When localhost is not accessible, a shareable
    link must be created") and the server never starts. serve() must keep asking, patiently."""
    import httpx

    real_head = httpx.head
    slow = {"left": 2}

    def head(url, *args, **kwargs):
        if slow["left"]:
            slow["left"] -= 1
            raise httpx.ReadTimeout("simulated: the machine is busy")
        return real_head(url, *args, **kwargs)

    monkeypatch.setattr(httpx, "head", head)
    srv = serve(make_workbench(), port=0, block=False)
    try:
        client = Client(srv.local_url, verbose=False)
        assert client.predict(api_name="/info")["datasets"] == {"toy": len(EXAMPLES)}
        assert slow["left"] == 0
    finally:
        srv.stop()


def test_wait_until_answering_names_the_url_and_the_fix():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PortError, match=rf"nothing answered at http://127\.0\.0\.1:{port}/ "
                                        r"within 1 s.*Fix: "):
        server_module.wait_until_answering(f"http://127.0.0.1:{port}/", timeout_s=1)
