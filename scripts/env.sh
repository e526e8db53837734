# Sourced by scripts/serve.sh and scripts/test.sh: finds a Python >= 3.12 and prepares .venv.
#
# promptlit needs Python >= 3.12 because it needs jax >= 0.12: jax 0.10 (the newest for 3.11)
# miscompiles jit(vmap(vjp)) of a keras-hub Gemma at >= 256 tokens (salience rows come out wrong).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PROMPTLIT_VENV:-$repo_root/.venv}"
# The exact versions CI tested (every package of `pip install -e .[test]`, pinned with ==);
# `bash scripts/lock.sh` re-resolves pyproject.toml in a fresh venv and rewrites it.
lock_file="$repo_root/requirements-lock.txt"

is_recent_python() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && is_recent_python "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  # pyenv installs versions that are not on PATH unless selected; look at them directly.
  local root
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for candidate in "$root"/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    if [ -x "$candidate" ] && is_recent_python "$candidate"; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

ensure_venv() {
  if [ ! -x "$venv/bin/python" ] || ! is_recent_python "$venv/bin/python"; then
    local python
    if ! python="$(find_python)"; then
      echo "promptlit needs Python >= 3.12 (for jax >= 0.12) and none was found." >&2
      echo "Install one (e.g. 'apt-get install python3.12 python3.12-venv' or 'pyenv install 3.12')," >&2
      echo "or point PYTHON=/path/to/python3.12 at it, then run this command again." >&2
      exit 1
    fi
    echo "Creating $venv with $python ($("$python" --version 2>&1))"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
  fi
}

# pip_install_locked [EXTRA]: `pip install -e .[EXTRA]` into the venv with every dependency at
# its version in requirements-lock.txt (a constraints file: it pins versions, installs nothing
# the extra does not need), quietly.
pip_install_locked() {
  local extra="${1:-}" target="$repo_root"
  [ -z "$extra" ] || target="$repo_root[$extra]"
  # setuptools' "Editable installation." notice (pip >= 25 shows build-backend warnings) is
  # information only; every other warning of the build still shows.
  PYTHONWARNINGS="ignore:Editable installation" \
    "$venv/bin/python" -m pip install --quiet -c "$lock_file" -e "$target"
}

# install_promptlit [EXTRA]: `pip_install_locked [EXTRA]`, skipped when that was done before with
# the same pyproject.toml and lock file (a stamp in the venv remembers them), so a start needs no
# network and prints nothing about packaging. Code changes need no reinstall (editable install).
install_promptlit() {
  local extra="${1:-}" stamp key
  stamp="$venv/.promptlit-install${extra:+-$extra}"
  key="$repo_root $(cksum < "$repo_root/pyproject.toml") $(cksum < "$lock_file")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$venv/bin/promptlit" ]; then
    return 0
  fi
  echo "Installing promptlit${extra:+[$extra]} and its dependencies (requirements-lock.txt) into $venv"
  pip_install_locked "$extra"
  echo "$key" > "$stamp"
}
