"""How fast `promptlit` starts: `--help`, argument errors, and `serve` up to its first page.

Usage:
    .venv/bin/python benchmarks/startup.py            # 5 runs of the quick commands, 1 serve
    .venv/bin/python benchmarks/startup.py --runs 10 --serves 3
    .venv/bin/python benchmarks/startup.py --no-serve # only the commands that load no model

Rows (wall-clock seconds of a fresh ``python -m promptlit ...`` process, median of the runs):

* ``--help``, ``serve --help``, a bad flag (``--port abc``), a bad ``--models`` value: exit
  before any heavy import (goal: < 1 s; `tests/test_cli.py` checks that no keras / jax / gradio
  module is imported).
* ``serve`` (the embedded tiny model and sample prompts, ``--port 0 --no-browser``), from the
  process start to each of its phase lines ("importing …", "loading …", "building the page …"),
  to the printed URL, and to the first page: ``GET /`` answered and Gradio's ``/config``
  served (what the browser loads next). Every line the server printed before its URL is listed
  (expected: the phase lines only).

The numbers depend on the machine and on warm file caches (the first run after a reboot is
slower); compare runs on one machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = {
    "--help": ["--help"],
    "serve --help": ["serve", "--help"],
    "bad flag (--port abc)": ["serve", "--port", "abc"],
    "bad --models (,,)": ["serve", "--models", ",,"],
}
URL_LINE = re.compile(r"promptlit is running at (http://\S+)")


def env() -> dict[str, str]:
    """The environment of the measured processes (a quiet, offline Gradio)."""
    return dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")


def time_command(args: list[str]) -> float:
    """Seconds a ``python -m promptlit ARGS`` process takes to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "promptlit", *args], cwd=ROOT, env=env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   timeout=120)
    return time.perf_counter() - start


def time_serve(timeout: float = 600.0) -> tuple[list[tuple[float, str]], float]:
    """Starts `serve`; returns ``[(seconds, line printed)]`` up to the URL, and the seconds to
    the first page (``GET /`` and ``GET /config`` answered). Stops the server."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "promptlit", "serve", "--port", "0",
                             "--no-browser"], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines: list[tuple[float, str]] = []
    url = None
    done = threading.Event()

    def read() -> None:
        nonlocal url
        assert proc.stdout is not None
        for line in proc.stdout:
            if url is None:
                lines.append((time.perf_counter() - start, line.rstrip("\n")))
                found = URL_LINE.search(line)
                if found:
                    url = found.group(1)
                    done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not done.wait(timeout) or url is None:
            raise RuntimeError("serve printed no URL:\n" + "\n".join(t for _, t in lines))
        for path in ("", "config"):
            with urllib.request.urlopen(url + path, timeout=60) as response:
                response.read()
        first_page = time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return lines, first_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each quick command")
    parser.add_argument("--serves", type=int, default=1, help="serve start-ups to time")
    parser.add_argument("--no-serve", action="store_true", help="skip the serve start-up")
    args = parser.parse_args()

    print(f"python -m promptlit ..., median of {args.runs} runs (goal < 1 s):")
    for name, argv in QUICK.items():
        times = [time_command(argv) for _ in range(args.runs)]
        print(f"  {name:<24} {statistics.median(times):6.2f} s   (min {min(times):.2f}, "
              f"max {max(times):.2f})")
    if args.no_serve:
        return
    for n in range(args.serves):
        lines, first_page = time_serve()
        print(f"serve (embedded tiny model), start-up {n + 1} of {args.serves}:")
        for seconds, text in lines:
            print(f"  {seconds:6.2f} s  {text}")
        print(f"  {first_page:6.2f} s  first page served (GET / and /config)")


if __name__ == "__main__":
    main()
