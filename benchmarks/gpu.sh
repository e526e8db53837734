#!/usr/bin/env bash
# The salience benchmark on one GPU: Gemma 2 2B (gemma2_instruct_2b_en's architecture, random
# weights) at N = 256 / 1024 / 4096 in bfloat16 and float32, printing the same table as
# benchmarks/gemma2_2b.py plus the device's memory peaks, in under 10 minutes.
#
#   bash benchmarks/gpu.sh --fetch-wheels   # here (PyPI reachable): fill benchmarks/.gpu-wheels/
#   bash benchmarks/gpu.sh                  # on the GPU machine (no internet needed)
#   bash benchmarks/gpu.sh --dry-run        # the whole flow on CPU at tiny sizes (CI)
#   bash benchmarks/gpu.sh --wheel-specs    # the pins carried (from requirements-lock.txt)
#   bash benchmarks/gpu.sh -- --sizes 1024  # anything after -- goes to gemma2_2b.py
#
# Python and JAX: $PYTHON if set, else the machine's python3 when it imports jax (a GPU image's
# own jax + CUDA plugin is used as is), else the checkout's .venv (for --dry-run; for a real run
# only if its jax sees an accelerator), else a fresh venv from python3.12 with
# `pip install "jax[cuda12]"` and the pinned keras / keras-hub (needs the internet). keras, keras-hub and their pure-Python needs that the machine lacks are
# installed from the wheels in benchmarks/.gpu-wheels/ (`--fetch-wheels`, ~9 MB) with
# `pip install --no-index --no-deps --target` into a scratch folder on PYTHONPATH; nothing is
# installed into the machine's environment. Older keras-hub (0.29) imported TensorFlow
# unconditionally in a few unrelated preprocessors; in the scratch copy such imports are made
# optional, so keras-hub imports without TensorFlow.
#
# promptlit requires jax >= 0.12 (jax 0.10 miscompiled jit(vmap(vjp)) on CPU at >= 256 tokens).
# With an older jax this script says so and first runs the correctness check (the kernels against
# a float64 reference on a tiny Gemma 2, `gemma2_2b.py --check`), and reports it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
WHEELS="$HERE/.gpu-wheels"
# keras, keras-hub and what importing them needs beyond numpy / jax / ml-dtypes / h5py / rich /
# absl-py / sentencepiece (found by importing in a clean --target folder on a python without
# them), at the versions promptlit is tested with: their pins in requirements-lock.txt.
WHEEL_NAMES=(keras keras-hub namex optree packaging typing_extensions regex tokenizers)
LOCK="$REPO/requirements-lock.txt"
WHEEL_SPECS=()
for name in "${WHEEL_NAMES[@]}"; do
  pin="$(grep -i -m1 -E "^${name//[-_]/[-_]}==" "$LOCK" 2>/dev/null)" || {
    echo "gpu.sh: $name is not pinned in $LOCK (refresh the lock: bash scripts/lock.sh)" >&2
    exit 1; }
  WHEEL_SPECS+=("$pin")
done
MODE=run
BENCH_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fetch-wheels) MODE=fetch ;;
    --dry-run) MODE=dry ;;
    --wheel-specs) printf '%s\n' "${WHEEL_SPECS[@]}"; exit 0 ;;
    --help|-h) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --) shift; BENCH_ARGS=("$@"); break ;;
    *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
START=$(date +%s)
say() { echo "[gpu.sh $(date +%H:%M:%S)] $*"; }

if [ "$MODE" = fetch ]; then
  PY="${PYTHON:-$REPO/.venv/bin/python}"
  [ -x "$PY" ] || PY=python3
  mkdir -p "$WHEELS"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" "${WHEEL_SPECS[@]}"
  ls -l "$WHEELS"
  say "wheels: $(du -sh "$WHEELS" | cut -f1) in $WHEELS (carry this folder to the GPU machine)"
  exit 0
fi

# ---- Python with JAX
# The checkout's own .venv (CPU jax) serves --dry-run, and a real run only where its jax sees an
# accelerator; a fresh venv is the last resort (the carried wheels are for CPython 3.12).
VENV_PY="$REPO/.venv/bin/python"
venv_ok() {
  [ -x "$VENV_PY" ] || return 1
  if [ "$MODE" = dry ]; then "$VENV_PY" -c "import jax" >/dev/null 2>&1
  else "$VENV_PY" -c "import jax, sys; sys.exit(jax.default_backend() == 'cpu')" >/dev/null 2>&1
  fi
}
if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
elif python3 -c "import jax" >/dev/null 2>&1; then
  PY="$(command -v python3)"
elif venv_ok; then
  PY="$VENV_PY"
else
  BASE_PY="$(command -v python3.12 || command -v python3)"
  say "no python3 with jax here: making a venv ($BASE_PY) with jax[cuda12], keras and keras-hub"
  say "(needs the internet)"
  VENV="${TMPDIR:-/tmp}/promptlit-gpu-venv"
  "$BASE_PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "jax[cuda12]" numpy scipy ml-dtypes h5py rich absl-py \
    sentencepiece "${WHEEL_SPECS[@]}" || {
    say "could not install jax[cuda12]; set PYTHON to a python with jax"; exit 1; }
  PY="$VENV/bin/python"
fi
read -r JAX_VERSION BACKEND DEVICES < <("$PY" -c "
import jax
print(jax.__version__, jax.default_backend(), str(jax.devices()).replace(' ', ''))")
say "python: $PY; jax $JAX_VERSION; backend $BACKEND; devices $DEVICES"
if [ "$MODE" = run ] && [ "$BACKEND" = cpu ]; then
  say "no accelerator found: the full sizes would take hours on a CPU. Use --dry-run here, or"
  say "benchmarks/gemma2_2b.py for the CPU table."
  exit 2
fi

# ---- keras, keras-hub and the rest from the carried wheels, where missing
SITE="${TMPDIR:-/tmp}/promptlit-gpu-site"
if "$PY" -c "import keras, keras_hub" >/dev/null 2>&1; then
  say "keras and keras-hub are importable already: no wheels installed"
else
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || {
    say "keras / keras-hub are missing and $WHEELS has no wheels: run"
    say "'bash benchmarks/gpu.sh --fetch-wheels' where PyPI is reachable and carry that folder"
    exit 1; }
  "$PY" -c "import sys; sys.exit(sys.version_info[:2] != (3, 12))" || {
    say "the carried wheels are for CPython 3.12 and $PY is $("$PY" -V 2>&1): install"
    say "${WHEEL_SPECS[*]} into it, or set PYTHON to a python 3.12 with jax"
    exit 1; }
  rm -rf "$SITE" && mkdir -p "$SITE"
  MISSING=()
  for spec in "${WHEEL_SPECS[@]}"; do  # only the pinned versions, whatever else is in $WHEELS
    dist="${spec%%==*}" version="${spec#*==}"
    whl="$(ls "$WHEELS"/*.whl | grep -i -E "/${dist//[-_]/[-_]}-${version}-" | head -1)"
    if "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" \
        >/dev/null 2>&1; then
      say "  $dist: the machine's own"
    elif [ -z "$whl" ]; then
      say "  $spec: no wheel in $WHEELS; run 'bash benchmarks/gpu.sh --fetch-wheels' again"
      exit 1
    else
      say "  $dist: from $(basename "$whl")"
      MISSING+=("$whl")
    fi
  done
  if [ ${#MISSING[@]} -gt 0 ] && ! "$PY" -m pip install --quiet --no-index --no-deps \
      --no-compile --target "$SITE" "${MISSING[@]}" >/dev/null 2>&1; then
    for whl in "${MISSING[@]}"; do  # no pip: a wheel is a zip file
      "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
        "$whl" "$SITE"
    done
  fi
  # keras-hub 0.29 had `import tensorflow as tf` at the top of a few modules it imports eagerly
  # (0.32 has none: then this finds nothing to guard).
  "$PY" - "$SITE" <<'EOF'
import pathlib, re, sys
pattern = re.compile(r"^import tensorflow as tf$", re.M)
guard = ("try:\n    import tensorflow as tf\nexcept ImportError:  # promptlit gpu.sh: no TensorFlow\n"
         "    tf = None")
for path in pathlib.Path(sys.argv[1], "keras_hub", "src", "models").rglob("*.py"):
    text = path.read_text(encoding="utf-8")
    if pattern.search(text):
        path.write_text(pattern.sub(guard, text), encoding="utf-8")
EOF
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3
# Real allocations (no 75 % preallocation), so the device's peak_bytes_in_use means something.
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
"$PY" -c "import keras, keras_hub; print('keras', keras.__version__, 'keras-hub', keras_hub.__version__)"

# ---- jax older than promptlit's minimum: correctness first
OLD_JAX=$("$PY" -c "
import jax
v = tuple(int(x) for x in jax.__version__.split('.')[:2])
print(1 if v < (0, 12) else 0)")
if [ "$OLD_JAX" = 1 ]; then
  say "WARNING: jax $JAX_VERSION is older than promptlit's minimum 0.12 (jax 0.10 miscompiled"
  say "jit(vmap(vjp)) on CPU at >= 256 tokens). Checking the kernels against float64 first:"
  if "$PY" "$HERE/gemma2_2b.py" --check; then
    say "correctness check PASSED on jax $JAX_VERSION: the numbers below can be trusted"
  else
    say "correctness check FAILED on jax $JAX_VERSION: salience from this jax is WRONG; the"
    say "timings below are still printed, but do not use this jax for promptlit"
  fi
fi

# ---- the benchmark
if [ "$MODE" = dry ]; then
  ARGS=(--dry-run --no-load --dtypes bfloat16 bf16w-f32c --sizes 64 --targets 4 --repeats 1
        --heavy-repeats 0 --gen 16 4)
else
  # bfloat16 first (the likely choice on a GPU), then float32; later measures are skipped, and
  # say so, once the budget is spent (each first call compiles the 26-layer model). The budget
  # counts from this script's start (${GPU_SH_BUDGET_S:-450} s), leaving room under 10 minutes
  # for the measure in flight when it runs out and for the tables.
  LEFT=$(( ${GPU_SH_BUDGET_S:-450} - ($(date +%s) - START) ))
  [ "$LEFT" -lt 60 ] && LEFT=60
  say "benchmark budget: $LEFT s"
  ARGS=(--dtypes bfloat16 float32 --sizes 256 1024 4096 --targets 32 --repeats 3
        --heavy-repeats 1 --gen 256 64 --loop-max-n 1024 --budget-s "$LEFT")
fi
[ -n "${OUT:-}" ] && [ -d "${OUT:-}" ] && ARGS+=(--json "$OUT/gemma2_2b_gpu.json")
"$PY" "$HERE/gemma2_2b.py" "${ARGS[@]}" "${BENCH_ARGS[@]}"
say "done in $(( $(date +%s) - START )) s"
