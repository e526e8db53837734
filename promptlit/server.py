"""Launch the workbench UI: host, port, optional Gradio share link, optional login.

    >>> import promptlit as pl                                    # doctest: +SKIP
    >>> server = pl.serve(wb, port=5432, block=False)             # doctest: +SKIP
    >>> server.url                                                # doctest: +SKIP
    'http://127.0.0.1:5432/'
    >>> server.stop()                                             # doctest: +SKIP

A share link needs the internet (Gradio's tunnel service). Where it cannot be created (offline,
firewalled, slow), `serve` says so in one line and keeps serving locally; the attempt is bounded
by ``share_timeout`` seconds so start-up never hangs on it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

logger = logging.getLogger("promptlit.server")

__all__ = ["Server", "parse_auth", "serve"]

AuthLike = str | os.PathLike | tuple[str, str] | Sequence[tuple[str, str]] | None


def parse_auth(auth: AuthLike) -> list[tuple[str, str]] | None:
    """Normalises ``auth`` to ``[(user, password), ...]`` (None: no login).

    Accepts ``"user:pass"``, a path to a file of ``user:pass`` lines (``#`` comments and blank
    lines skipped), a ``(user, pass)`` tuple or a list of them.

    Raises:
      ValueError: a malformed entry, with the file and line where it is.
    """
    if auth is None or auth == "" or auth == []:
        return None
    if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(x, str) for x in auth):
        return [auth]
    if isinstance(auth, str | os.PathLike):
        path = Path(auth).expanduser()
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            entries = [(f"{path}:{i}", ln.strip()) for i, ln in enumerate(lines, 1)
                       if ln.strip() and not ln.strip().startswith("#")]
            if not entries:
                raise ValueError(f"{path}: the auth file has no user:password lines")
        else:
            entries = [("auth", str(auth))]
        pairs = []
        for where, entry in entries:
            user, sep, password = entry.partition(":")
            if not sep or not user or not password:
                raise ValueError(f"{where}: expected user:password (or a file of such lines)")
            pairs.append((user, password))
        return pairs
    pairs = [tuple(p) for p in auth]  # type: ignore[union-attr]
    if not all(len(p) == 2 for p in pairs):
        raise ValueError(f"auth: expected (user, password) pairs, got {auth!r}")
    return pairs  # type: ignore[return-value]


@dataclasses.dataclass
class Server:
    """A running workbench server.

    Attributes:
      url: the address to open (the share link if one was made, else the local one).
      local_url: ``http://host:port/``.
      share_url: the public link, or None.
      share_error: why the share link could not be made (None when not asked or made).
      app: the ``gr.Blocks``.
    """

    url: str
    local_url: str
    share_url: str | None
    share_error: str | None
    app: Any

    def stop(self) -> None:
        """Stops the server (and its share tunnel)."""
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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now at ``host`` (asked of the OS)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
          canonical_url: str | None = None, **kw: Any) -> Server:
    """Builds the app (`promptlit.ui.app.build_app`) and serves it.

    Args:
      workbench: the `promptlit.workbench.Workbench` to serve.
      host, port: where to listen (``0.0.0.0`` for every interface; port 0: any free port).
      share: also try to create a public Gradio share link (needs the internet; on failure a
        clear message is printed and the server keeps serving locally).
      auth: ``"user:pass"``, a file of such lines, or ``(user, pass)`` pairs: require a login.
      page_title: browser tab / header title. demo_mode: read-only (no saving).
      layouts, default_layout: extra layouts and the one to open with.
      block: wait until Ctrl-C (True, the CLI) or return at once with a running `Server`.
      open_browser: open a browser tab on the local URL.
      share_timeout: seconds to wait for the share link before giving up on it.
      inline_doc, onboarding, canonical_url: see `build_app`.
      **kw: passed to ``gr.Blocks.launch`` (e.g. ``max_threads``, ``root_path``).

    Returns:
      A `Server` with ``.url`` and ``.stop()`` (when ``block=False``; with ``block=True`` it
      returns after the server stopped).
    """
    from promptlit.ui.app import build_app

    pairs = parse_auth(auth)
    if share and not pairs:
        msg = ("share=True without auth: anyone with the link can use this workbench and its "
               "models; pass auth='user:pass' to require a login")
        warnings.warn(msg, UserWarning, stacklevel=2)
        print(f"Warning: {msg}", flush=True)
    demo = build_app(workbench, layout=default_layout, layouts=layouts, page_title=page_title,
                     demo_mode=demo_mode, inline_doc=inline_doc, onboarding=onboarding,
                     canonical_url=canonical_url)
    port = int(port) or free_port("127.0.0.1" if host in ("0.0.0.0", "::", "") else host)
    demo.queue(default_concurrency_limit=1)
    launch_kwargs = dict(getattr(demo, "promptlit_launch_kwargs", {}))
    launch_kwargs.update(kw)
    try:
        demo.launch(server_name=host, server_port=int(port), share=False,
                    auth=pairs, prevent_thread_lock=True, inbrowser=open_browser,
                    show_error=False, quiet=True, **launch_kwargs)
    except OSError as e:
        raise OSError(f"could not serve on {host}:{port}: {e}. Fix: pick a free port with "
                      "--port, or stop what is using it") from e
    local_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{demo.server_port}/"
    share_url = share_error = None
    if share:
        share_url, share_error = _try_share(host, int(demo.server_port), share_timeout)
        if share_url:
            demo.share_url = share_url
            print(f"Share link: {share_url}", flush=True)
        else:
            line = (f"Could not create a share link ({share_error}); serving locally at "
                    f"{local_url.rstrip('/')}")
            logger.warning(line)
            print(line, flush=True)
    print(f"promptlit is running at {local_url}", flush=True)
    server = Server(url=share_url or local_url, local_url=local_url, share_url=share_url,
                    share_error=share_error, app=demo)
    if block:
        server.block()
    return server
