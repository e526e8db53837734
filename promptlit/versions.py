"""The versions promptlit runs with, for ``promptlit --version`` and bug reports.

Read from the installed distributions' metadata (`importlib.metadata`), never by importing the
libraries: ``promptlit --version`` stays as fast as ``--help`` (no JAX, Keras or Gradio import).
The versions a fresh install gets are pinned in ``requirements-lock.txt`` (``scripts/lock.sh``
refreshes it); this reports what is actually installed.

Example:
    >>> report = versions()
    >>> list(report)[:3]
    ['promptlit', 'python', 'jax']
    >>> print(version_text({"promptlit": "0.1.0", "python": "3.12.1", "jax": None}))
    promptlit 0.1.0
    python    3.12.1
    jax       not installed
"""

from __future__ import annotations

import platform
from importlib import metadata

import promptlit

#: The distributions whose behaviour promptlit's results depend on, in report order (PyPI names).
PACKAGES = ("jax", "jaxlib", "keras", "keras-hub", "gradio", "numpy")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """{"promptlit": ..., "python": ..., package: version or None when not installed}."""
    report: dict[str, str | None] = {"promptlit": promptlit.__version__,
                                     "python": platform.python_version()}
    for name in packages:
        try:
            report[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            report[name] = None
    return report


def version_text(report: dict[str, str | None] | None = None) -> str:
    """`versions` as aligned ``name version`` lines (what ``promptlit --version`` prints)."""
    report = versions() if report is None else report
    width = max(map(len, report))
    return "\n".join(f"{name:<{width}} {version or 'not installed'}"
                     for name, version in report.items())
