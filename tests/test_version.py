"""`promptlit --version`: promptlit's version and the versions of the libraries it runs on, read
from package metadata (tests/test_cli.py checks that it imports no heavy library)."""

import platform
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import promptlit
from promptlit import cli, versions

REPO = Path(__file__).resolve().parents[1]
REPORTED = ("promptlit", "python", "jax", "jaxlib", "keras", "keras-hub", "gradio", "numpy")


def _parse(text: str) -> dict[str, str]:
    pairs = [line.split(None, 1) for line in text.strip().splitlines()]
    assert all(len(pair) == 2 for pair in pairs), text
    return dict(pairs)


def _expected() -> dict[str, str]:
    expected = {"promptlit": promptlit.__version__, "python": platform.python_version()}
    expected.update({name: metadata.version(name) for name in REPORTED[2:]})
    return expected


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_every_library_with_its_installed_version(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([flag])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert list(_parse(out)) == list(REPORTED)  # in this order, one per line
    assert _parse(out) == _expected()


def test_version_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "promptlit", "--version"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _parse(result.stdout) == _expected()
    assert result.stderr == ""


def test_promptlit_version_is_the_packaged_one():
    """`promptlit.__version__` (what --version prints) agrees with pyproject.toml and with the
    installed distribution's metadata."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert promptlit.__version__ == project["version"] == metadata.version("promptlit")


def test_a_missing_library_is_reported_not_raised(monkeypatch):
    real = metadata.version

    def version(name: str) -> str:
        if name == "gradio":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    report = versions.versions()
    assert report["gradio"] is None
    assert report["keras-hub"] == real("keras-hub")
    assert _parse(versions.version_text(report))["gradio"] == "not installed"
