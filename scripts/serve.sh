#!/usr/bin/env bash
# Installs promptlit into .venv (at the versions of requirements-lock.txt) and starts the workbench
# on the embedded defaults (the tiny model shipped in presets/tiny_lm and the sample_prompts
# dataset): offline, no accounts.
# Extra arguments go to `promptlit serve`, e.g. `bash scripts/serve.sh --port 8080`.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_venv
install_promptlit
exec "$venv/bin/promptlit" serve "$@"
