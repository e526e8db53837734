"""requirements-lock.txt: the versions `scripts/serve.sh` and `scripts/test.sh` install.

The lock must pin every direct dependency of promptlit and of its ``[test]`` extra, at a version
pyproject.toml's bounds allow (a bound raised without `bash scripts/lock.sh` fails here, not on a
user's machine), and the scripts must install from it.
"""

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from promptlit import versions

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements-lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate(LOCK.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements-lock.txt:{number}: {line!r} is not NAME==VERSION"
        name = canonicalize_name(match[1])
        assert name not in pins, f"requirements-lock.txt:{number}: {name} is pinned twice"
        pins[name] = match[2]
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"],
                                     *project["optional-dependencies"]["test"]]]


def test_lock_pins_every_direct_requirement_within_its_bounds():
    pins = _lock()
    assert "promptlit" not in pins  # the project itself is installed editable, not pinned
    for requirement in _requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, (f"{requirement.name} (pyproject.toml) is not in "
                              "requirements-lock.txt: run bash scripts/lock.sh")
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements-lock.txt pins {name}=={pins[name]}, outside pyproject.toml's "
            f"{requirement}: run bash scripts/lock.sh")


def test_lock_resolves_a_keras_hub_that_loads_transformers_5_checkpoints():
    """keras-hub 0.29 cannot load a Llama / Mistral / Qwen checkpoint saved by transformers 5
    (KeyError 'rope_theta'); an unbounded keras-hub once resolved to it (kagglehub's kagglesdk
    needs clashed with keras-hub's pin)."""
    assert Version(_lock()["keras-hub"]) >= Version("0.30")


def test_scripts_install_from_the_lock():
    env = (REPO / "scripts" / "env.sh").read_text()
    assert 'lock_file="$repo_root/requirements-lock.txt"' in env
    assert '-c "$lock_file"' in env
    assert "pip_install_locked test" in (REPO / "scripts" / "test.sh").read_text()
    assert "install_promptlit" in (REPO / "scripts" / "serve.sh").read_text()


def test_this_environment_runs_the_locked_versions():
    """What `promptlit --version` reports equals the lock (CI installs from it; a local venv
    installed otherwise skips, and `bash scripts/test.sh` reinstalls it from the lock)."""
    pins = _lock()
    installed = {name: metadata.version(name) for name in versions.PACKAGES}
    differ = {name: (version, pins.get(canonicalize_name(name)))
              for name, version in installed.items()
              if pins.get(canonicalize_name(name)) != version}
    if differ and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(f"this venv is not the locked one (installed, locked): {differ}")
    assert not differ, f"installed vs requirements-lock.txt: {differ}"
