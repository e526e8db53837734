#!/usr/bin/env bash
# Installs promptlit with its test extra into .venv (at the versions of requirements-lock.txt),
# Debian's chromium for the browser tests, lints (ruff) and type-checks (mypy) the code, and runs
# the whole test suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -k salience`.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_venv
pip_install_locked test  # the versions in requirements-lock.txt: what CI tests

if [ ! -x /usr/bin/chromium ]; then
  # The browser tests drive Debian's chromium through playwright (never `playwright install`).
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "Installing Debian's chromium for the browser tests"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

cd "$repo_root"
"$venv/bin/ruff" check .
# Type check promptlit/ (settings: [tool.mypy] in pyproject.toml; ~25 s cold, ~2 s cached).
"$venv/bin/mypy"
set +e
"$venv/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure for promptlit." >&2
  exit 1
fi
exit "$status"
