"""Launch the workbench UI: host, port, optional Gradio share link, optional login.

    >>> import promptlit as pl                                    # doctest: +SKIP
    >>> server = pl.serve(wb, port=5432, block=False)             # doctest: +SKIP
    >>> server.url                                                # doctest: +SKIP
    'http://127.0.0.1:5432/'
    >>> server.stop()                                             # doctest: +SKIP

A share link needs the internet (Gradio's tunnel service). Where it cannot be created (offline,
firewalled, slow), `serve` says so in one line and keeps serving locally; the attempt is bounded
by ``share_timeout`` seconds so start-up never hangs on it.

Exposure: on a loopback host (the default 127.0.0.1) only this machine can connect. Any other
host (``0.0.0.0``: every interface) without a login is warned about loudly, and refused in demo
mode (the public read-only mode) unless ``allow_public=True`` says it is meant; a share link
(the public internet) without a login is refused the same way. With a login,
failed attempts are throttled per client address (`LoginThrottle`), and passwords are compared in
constant time. The port is checked before anything is built, so a busy port fails in a second.
"""

from __future__ import annotations

import dataclasses
import errno
import hmac
import ipaddress
import logging
import math
import os
import secrets
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptlit.ui.limits import RequestLimits

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

logger = logging.getLogger("promptlit.server")

__all__ = ["ExposureWarning", "LoginThrottle", "PortError", "Server", "check_exposure",
           "check_port", "free_port", "is_loopback", "parse_auth", "serve"]

AuthLike = str | os.PathLike | tuple[str, str] | Sequence[tuple[str, str]] | None

WILDCARD_HOSTS = ("0.0.0.0", "::")


class ExposureWarning(UserWarning):
    """Others can reach the server without a login (a share link, or a non-loopback host)."""


class PortError(OSError):
    """The host/port cannot be listened on; the message says why and how to fix it."""


##
# Logins


def _looks_like_path(value: str) -> bool:
    """Whether an --auth value names a file: its would-be user part has a path separator or
    starts like a path (``/``, ``~``, ``.``). A password may hold ``/``; a user name may not."""
    user = value.partition(":")[0]
    return "/" in user or "\\" in user or user.startswith(("~", "."))


def _read_auth_file(path: Path, label: str, given: str) -> list[tuple[str, str]]:
    if not path.exists():
        raise ValueError(f"{label}: no such file {given}; give USER:PASS, or the path of an "
                         "existing file with one USER:PASS line per user")
    if path.is_dir():
        raise ValueError(f"{label}: {given} is a directory; expected a file with one USER:PASS "
                         "line per user")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(f"{label}: cannot read {given}: {why}") from None
    entries = [(f"{path}:{i}", ln.strip()) for i, ln in enumerate(lines, 1)
               if ln.strip() and not ln.strip().startswith("#")]
    if not entries:
        raise ValueError(f"{path}: the auth file has no user:password lines")
    return [_split_entry(entry, where) for where, entry in entries]


def _split_entry(entry: str, where: str) -> tuple[str, str]:
    user, sep, password = entry.partition(":")
    user = user.strip()
    if not sep or not user or not password:
        raise ValueError(f"{where}: expected user:password (or a file of such lines)")
    return user, password


def parse_auth(auth: AuthLike, *, label: str = "auth") -> list[tuple[str, str]] | None:
    """Normalises ``auth`` to ``[(user, password), ...]`` (None: no login).

    Accepts ``"user:pass"``, a path to a file of ``user:pass`` lines (``#`` comments and blank
    lines skipped), a ``(user, pass)`` tuple or a list of them. A string is read as a path when
    such a file exists, when its part before the first ``:`` looks like a path (has ``/``, or
    starts with ``~`` or ``.``) or when it has no ``:`` at all; a missing file is then an error,
    never a user name. ``label`` names the source in messages (``--auth``, ``PROMPTLIT_AUTH``).

    Raises:
      ValueError: a missing or unreadable file, or a malformed entry (with its file and line).
    """
    if auth is None or auth == "" or auth == []:
        return None
    if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(x, str) for x in auth):
        return [_split_entry(f"{auth[0]}:{auth[1]}", label)]
    if isinstance(auth, os.PathLike):
        return _read_auth_file(Path(auth).expanduser(), label, os.fspath(auth))
    if isinstance(auth, str):
        path = Path(auth).expanduser()
        if path.exists() or _looks_like_path(auth):
            return _read_auth_file(path, label, auth)
        if ":" not in auth:
            raise ValueError(f"{label}: {auth!r} is neither USER:PASS nor an existing file "
                             "(no such file)")
        return [_split_entry(auth, label)]
    pairs = [tuple(p) for p in auth]
    if not all(len(p) == 2 for p in pairs):
        raise ValueError(f"{label}: expected (user, password) pairs, got {auth!r}")
    return pairs  # type: ignore[return-value]


class _Logins:
    """Gradio's ``auth`` callable: every known (user, password) is compared in constant time
    (`hmac.compare_digest`), and all of them always, so timing tells nothing about which matched."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = [(u.encode("utf-8"), p.encode("utf-8")) for u, p in pairs]

    def __call__(self, username: str, password: str) -> bool:
        user, pw = str(username).encode("utf-8"), str(password).encode("utf-8")
        ok = False
        for u, p in self._pairs:
            ok |= hmac.compare_digest(u, user) & hmac.compare_digest(p, pw)
        return ok


class LoginThrottle:
    """Slows down password guessing, per client address.

    Every login attempt counts as a failure until it succeeds (so a burst of parallel guesses is
    counted before any is answered). After ``max_failures`` failures in a row from one address,
    that address must wait ``base_delay`` seconds before its next attempt; each further failure
    doubles the wait, up to ``max_delay``. Attempts during a wait are refused with HTTP 429 and a
    ``Retry-After`` header, without checking the password. A success forgets the address.

    Keyed by the client address the server sees: behind a reverse proxy or Gradio's share tunnel
    every client has the proxy's address and they share one budget.

    Example:
        >>> now = [0.0]
        >>> t = LoginThrottle(max_failures=2, base_delay=10, clock=lambda: now[0])
        >>> [t.attempt("1.2.3.4") for _ in range(3)]
        [0.0, 0.0, 10.0]
        >>> now[0] = 10.0; t.attempt("1.2.3.4"), t.attempt("1.2.3.4")
        (0.0, 20.0)
    """

    def __init__(self, max_failures: int = 5, base_delay: float = 2.0, max_delay: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_failures < 1 or not base_delay > 0 or not max_delay >= base_delay:
            raise ValueError("LoginThrottle needs max_failures >= 1 and 0 < base_delay <= "
                             f"max_delay, got {max_failures}, {base_delay}, {max_delay}")
        self.max_failures, self.base_delay, self.max_delay = max_failures, base_delay, max_delay
        self._clock = clock
        self._state: dict[str, tuple[int, float]] = {}  # address -> (failures, locked until)
        self._lock = threading.Lock()

    def attempt(self, client: str) -> float:
        """Seconds ``client`` must still wait (the attempt is refused), or 0.0: the attempt may
        go ahead and is counted as a failure until `succeeded` is called."""
        with self._lock:
            now = self._clock()
            failures, until = self._state.get(client, (0, 0.0))
            if until > now:
                return until - now
            failures += 1
            if failures >= self.max_failures:
                until = now + min(self.base_delay * 2 ** (failures - self.max_failures),
                                  self.max_delay)
            self._state[client] = (failures, until)
            if len(self._state) > 10_000:  # forget addresses idle for longer than any wait
                self._state = {c: v for c, v in self._state.items()
                               if v[1] + self.max_delay > now}
            return 0.0

    def succeeded(self, client: str) -> None:
        """Forgets ``client``'s failures (a correct login)."""
        with self._lock:
            self._state.pop(client, None)


class _LoginThrottleMiddleware:
    """ASGI middleware: `LoginThrottle` around Gradio's ``POST /login`` (other routes pass)."""

    def __init__(self, app: Any, throttle: LoginThrottle) -> None:
        self.app, self.throttle = app, throttle

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (scope.get("type") != "http" or scope.get("method") != "POST"
                or not str(scope.get("path", "")).rstrip("/").endswith("/login")):
            await self.app(scope, receive, send)
            return
        client = str((scope.get("client") or ("unknown",))[0])
        wait = self.throttle.attempt(client)
        if wait > 0:
            from starlette.responses import JSONResponse

            seconds = math.ceil(wait)
            response = JSONResponse(
                {"detail": f"Too many failed logins from {client}; try again in {seconds} s."},
                status_code=429, headers={"Retry-After": str(seconds)})
            await response(scope, receive, send)
            return
        status: dict[str, int] = {}

        async def send_status(message: dict) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        await self.app(scope, receive, send_status)
        if 200 <= status.get("code", 0) < 400:
            self.throttle.succeeded(client)


#: Gradio components whose values arrive through the upload route.
_UPLOAD_COMPONENTS = ("File", "UploadButton", "Image", "ImageEditor", "Audio", "Video",
                      "Model3D", "Gallery", "MultimodalTextbox", "ImageSlider")


def takes_uploads(demo: Any) -> bool:
    """Whether any component of the app takes a file from the browser."""
    return any(type(b).__name__ in _UPLOAD_COMPONENTS
               and getattr(b, "interactive", None) is not False
               for b in getattr(demo, "blocks", {}).values())


class _NoUploadsMiddleware:
    """ASGI middleware: refuses Gradio's upload route (403) in an app where no control takes a
    file, so a stranger cannot park files on the server at all (other routes pass)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (scope.get("type") == "http" and scope.get("method") == "POST"
                and str(scope.get("path", "")).rstrip("/").endswith("/upload")):
            from starlette.responses import JSONResponse

            response = JSONResponse({"detail": "this workbench takes no file uploads"},
                                    status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


##
# Host and port


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.x, ::1, localhost)."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def check_exposure(host: str, *, auth: bool, demo_mode: bool = False,
                   allow_public: bool = False, share: bool = False) -> str | None:
    """The warning to print when ``host`` lets other machines in without a login, else None.

    Raises:
      ValueError: in demo mode on such a host, or with a share link (``share``: the public
        internet) on any host, unless ``allow_public`` (a public workbench without a login must
        be asked for explicitly).
    """
    if share and not auth and not allow_public:
        raise ValueError(
            "refusing to create a public share link without a login. Fix: require one with "
            "--auth-file FILE or PROMPTLIT_AUTH=user:pass (serve(auth=...)); or pass "
            "--allow-public (allow_public=True) to share the workbench with anyone who gets "
            "the link, on purpose")
    if auth or is_loopback(host):
        return None
    where = (f"{host} (every network interface)" if host in WILDCARD_HOSTS
             else f"{host} (reachable from other machines)")
    if demo_mode and not allow_public:
        raise ValueError(
            f"refusing to serve demo mode on {where} without a login. Fix: require one with "
            "--auth-file FILE or PROMPTLIT_AUTH=user:pass (serve(auth=...)); or pass "
            "--allow-public (allow_public=True) to serve it to anyone on purpose; or bind "
            "--host 127.0.0.1 (this machine only)")
    if allow_public:
        return None
    return (f"promptlit listens on {where} WITHOUT A LOGIN: anyone who can reach this machine "
            "can use the workbench and its models. Fix: require a login with --auth-file FILE or "
            "PROMPTLIT_AUTH=user:pass (serve(auth=...)), or bind --host 127.0.0.1; pass "
            "--allow-public (allow_public=True) if this is meant")


def wait_until_answering(url: str, timeout_s: float = 120.0) -> None:
    """Waits until the server at ``url`` answers an HTTP request (any status: a login page or a
    redirect count), asking again after each timeout or refused connection.

    Proxies from the environment are bypassed: this is the local server.

    Raises:
      PortError: nothing answered within ``timeout_s`` seconds; the message names the fix.
    """
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            httpx.head(url, timeout=max(0.1, min(10.0, left)), trust_env=False)
            return
        except (httpx.TimeoutException, httpx.TransportError):
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
    raise PortError(
        f"nothing answered at {url} within {timeout_s:g} s after the server started. Fix: "
        "check that connections to this machine's own addresses are not blocked (a firewall, "
        "or NO_PROXY lacking 127.0.0.1 / localhost), or try again when the machine is less "
        "busy")


def check_port(host: str, port: int) -> None:
    """Checks that ``host:port`` can be listened on right now (port 0: any free port, always).

    Raises:
      PortError: the port is in use, the host is not an address of this machine, or listening
        there is not allowed; the message names the fix.
    """
    if not port:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as e:
        raise PortError(f"--host {host}: no such address or host name ({e.strerror or e}). Fix: "
                        "--host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every "
                        "interface)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                msg = (f"port {port} on {host} is already in use (another promptlit or server "
                       "is listening there). Fix: --port N for another port, --port 0 for any "
                       "free port, or stop what uses it")
            elif e.errno == errno.EADDRNOTAVAIL:
                msg = (f"--host {host} is not an address of this machine. Fix: --host 127.0.0.1 "
                       "(this machine only), --host 0.0.0.0 (every interface) or one of this "
                       "machine's addresses")
            elif e.errno == errno.EACCES:
                msg = (f"not allowed to listen on port {port} (ports below 1024 need "
                       "administrator rights). Fix: --port 5432 (any port from 1024), or --port 0")
            else:
                msg = f"cannot listen on {host}:{port}: {e.strerror or e}"
            raise PortError(msg) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now at ``host`` (asked of the OS)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return int(s.getsockname()[1])


def _url_host(host: str) -> str:
    return f"[{host.strip('[]')}]" if ":" in host else host


def _local_host(host: str) -> str:
    """The address to open on this machine for a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _lan_address() -> str | None:
    """This machine's address on its default route, if it has one (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_loopback else address


def _listening_line(host: str, port: int, local_url: str) -> str:
    """Where the server listens, and the URL that opens it from here (and from elsewhere)."""
    if host in WILDCARD_HOSTS:
        line = (f"promptlit is listening on {_url_host(host)}:{port} (every network interface); "
                f"open {local_url} on this machine")
        lan = _lan_address()
        return line + (f", or http://{lan}:{port}/ from other machines" if lan else "")
    if is_loopback(host):
        return f"promptlit is running at {local_url}"
    return f"promptlit is running at {local_url} (listening on {host} only)"


@dataclasses.dataclass
class Server:
    """A running workbench server.

    Attributes:
      url: the address to open (the share link if one was made, else the local one).
      local_url: ``http://host:port/``.
      share_url: the public link, or None.
      share_error: why the share link could not be made (None when not asked or made).
      app: the ``gr.Blocks``.
      host, port: where it listens (``0.0.0.0``: every interface; the real port when 0 was
        asked for).
    """

    url: str
    local_url: str
    share_url: str | None
    share_error: str | None
    app: Any
    host: str = "127.0.0.1"
    port: int = 0
    warmup: Any = None
    """The running `promptlit.warmup.WarmUp` (``serve(..., warmup=True)``), else None."""

    def stop(self) -> None:
        """Stops the server (and its share tunnel, and cancels its warm-up)."""
        if self.warmup is not None:
            self.warmup.cancel(timeout=5.0)
        try:
            self.app.close(verbose=False)
        except TypeError:
            self.app.close()

    def block(self) -> None:
        """Waits until Ctrl-C, then stops."""
        try:
            self.app.block_thread()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def _try_share(host: str, port: int, timeout: float) -> tuple[str | None, str | None]:
    """Opens a Gradio share tunnel to ``host:port`` within ``timeout`` s: ``(url, error)``."""
    from gradio import networking

    result: dict[str, Any] = {}

    def attempt() -> None:
        try:
            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            result["url"] = networking.setup_tunnel(local, port, secrets.token_urlsafe(32),
                                                    None, None)
        except BaseException as e:  # noqa: BLE001 - any failure means "no link"
            cause = e.__cause__ or e
            result["error"] = f"{e} {type(cause).__name__}: {cause}".strip() \
                if cause is not e else f"{type(e).__name__}: {e}"

    thread = threading.Thread(target=attempt, name="promptlit-share", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return None, f"no answer from Gradio's share server within {timeout:g} s"
    if "url" in result:
        return str(result["url"]), None
    return None, " ".join(str(result.get("error", "unknown error")).split())


def serve(workbench: Any, *, host: str = "127.0.0.1", port: int = 5432, share: bool = False,
          auth: AuthLike = None, page_title: str = "promptlit", demo_mode: bool = False,
          layouts: Mapping[str, Any] | None = None, default_layout: str | None = None,
          block: bool = True, open_browser: bool = False, share_timeout: float = 15.0,
          inline_doc: str | None = None, onboarding: str | None = None,
          canonical_url: str | None = None, allow_public: bool = False,
          limits: RequestLimits | None = None, save_dir: str | os.PathLike | None = None,
          login_throttle: LoginThrottle | None = None, warmup: bool = False,
          **kw: Any) -> Server:
    """Builds the app (`promptlit.ui.app.build_app`) and serves it.

    Args:
      workbench: the `promptlit.workbench.Workbench` to serve.
      host, port: where to listen (``0.0.0.0`` for every interface; port 0: any free port).
        The port is checked before the app is built (`check_port`).
      share: also try to create a public Gradio share link (needs the internet; on failure a
        clear message is printed, added to the page's notices, and the server keeps serving
        locally).
      auth: ``"user:pass"``, a file of such lines, or ``(user, pass)`` pairs: require a login.
        Failed logins are throttled per client address (``login_throttle``).
      page_title: browser tab / header title. demo_mode: read-only (no saving).
      layouts, default_layout: extra layouts and the one to open with.
      block: wait until Ctrl-C (True, the CLI) or return at once with a running `Server`.
      open_browser: open a browser tab on the local URL.
      share_timeout: seconds to wait for the share link before giving up on it.
      inline_doc, onboarding, canonical_url: see `build_app`.
      allow_public: a host other machines can reach, without ``auth``, is warned about; in
        ``demo_mode`` it is refused unless this is True, and so is ``share`` without ``auth``
        (see `check_exposure`).
      limits: the `promptlit.ui.limits.RequestLimits` (default: its defaults); ``max_queue``
        bounds the requests waiting for the model (more get Gradio's "queue is full"),
        ``max_upload_mb`` the size of an uploaded file.
      save_dir: where the page may save session examples (None: saving to the server is off).
      login_throttle: the `LoginThrottle` for ``auth`` (default: 5 free failures, then 2 s
        doubling up to 5 min).
      warmup: once serving, explain the first example of each length bucket of every dataset
        with every language model in a background thread (`promptlit.warmup.WarmUp`: compiles
        the kernels, fills the caches; cancelled by `Server.stop`). ``promptlit serve`` turns it
        on unless ``--no-warmup``.
      **kw: passed to ``gr.Blocks.launch`` (e.g. ``max_threads``, ``root_path``).

    Returns:
      A `Server` with ``.url`` and ``.stop()`` (when ``block=False``; with ``block=True`` it
      returns after the server stopped).

    Raises:
      ValueError: bad ``auth``, demo mode exposed or a share link without a login (see
        ``allow_public``).
      PortError: ``host:port`` cannot be listened on (in use, not this machine's address).
    """
    from promptlit.ui.app import build_app
    from promptlit.ui.limits import RequestLimits

    host = host or "127.0.0.1"
    pairs = parse_auth(auth)
    exposed = check_exposure(host, auth=bool(pairs), demo_mode=demo_mode,
                             allow_public=allow_public, share=share)
    limits = limits if limits is not None else RequestLimits()
    check_port(host, int(port))
    if share and not pairs:
        msg = ("share=True without auth: anyone with the link can use this workbench and its "
               "models; pass auth='user:pass' to require a login")
        warnings.warn(msg, ExposureWarning, stacklevel=2)
        print(f"Warning: {msg}", flush=True)
    demo = build_app(workbench, layout=default_layout, layouts=layouts, page_title=page_title,
                     demo_mode=demo_mode, inline_doc=inline_doc, onboarding=onboarding,
                     canonical_url=canonical_url, save_dir=save_dir, limits=limits)
    notices = getattr(demo, "promptlit_notices", None)
    if notices is None:
        notices = demo.promptlit_notices = []  # type: ignore[attr-defined]
    port = int(port) or free_port(_local_host(host))
    demo.queue(default_concurrency_limit=1, max_size=limits.max_queue)
    launch_kwargs = dict(getattr(demo, "promptlit_launch_kwargs", {}))
    launch_kwargs.update(kw)
    launch_kwargs.setdefault("max_file_size", max(1, int(limits.max_upload_mb * 1024 * 1024)))
    app_kwargs = dict(launch_kwargs.pop("app_kwargs", None) or {})
    from starlette.middleware import Middleware

    middleware = list(app_kwargs.get("middleware", ()))
    if pairs:
        middleware.append(Middleware(_LoginThrottleMiddleware,
                                     throttle=login_throttle or LoginThrottle()))
    if not takes_uploads(demo):
        middleware.append(Middleware(_NoUploadsMiddleware))
    app_kwargs["middleware"] = middleware
    try:
        # _frontend=False: Gradio's own "is localhost reachable" probe gives up after a single
        # 3-second timeout (a busy machine's first answer can take longer) and then refuses to
        # start; `wait_until_answering` below asks patiently instead.
        demo.launch(server_name=host, server_port=port, share=False,
                    auth=_Logins(pairs) if pairs else None, prevent_thread_lock=True,
                    inbrowser=open_browser, show_error=False, quiet=True, app_kwargs=app_kwargs,
                    _frontend=False, **launch_kwargs)
    except OSError as e:
        raise PortError(f"could not serve on {host}:{port}: {e}. Fix: pick a free port with "
                        "--port N (or --port 0 for any), or stop what is using it") from e
    port = int(demo.server_port)
    local_url = f"http://{_url_host(_local_host(host))}:{port}/"
    try:
        wait_until_answering(local_url)
    except PortError:
        demo.close()
        raise
    share_url: str | None = None
    share_error: str | None = None
    if share:
        share_url, share_error = _try_share(host, port, share_timeout)
        if share_url:
            demo.share_url = share_url  # type: ignore[assignment]  # gradio types it as None
            print(f"Share link: {share_url}", flush=True)
        else:
            line = (f"Could not create a share link ({share_error}); serving locally at "
                    f"{local_url.rstrip('/')}")
            notices.append(line)  # the page header shows it; printed once (not also logged)
            print(line, flush=True)
    print(_listening_line(host, port, local_url), flush=True)
    if exposed:
        warnings.warn(exposed, ExposureWarning, stacklevel=2)
        print(f"WARNING: {exposed}", file=sys.stderr, flush=True)
    server = Server(url=share_url or local_url, local_url=local_url, share_url=share_url,
                    share_error=share_error, app=demo, host=host, port=port)
    if warmup:  # after the page is served: it never waits for the warm-up
        from promptlit.warmup import WarmUp

        server.warmup = WarmUp(workbench).start()
    if block:
        server.block()
    return server
