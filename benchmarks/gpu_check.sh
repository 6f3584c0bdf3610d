#!/usr/bin/env bash
# The prepared device check: one short run on a machine with an NVIDIA GPU, e.g.
#   device run: bash benchmarks/gpu_check.sh        (carry .whl when the machine lacks srnsz's dependencies)
# Installs srnsz if it is not importable, then benchmarks/gpu_check.py: hat and ae streams compressed on each device
# and decoded on every device (the same bits, the bound, MB/s), and one timed
# training step. On a machine without CUDA it runs the CPU part and says that the CUDA part was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then  # dependencies the machine lacks (zstandard, constriction, numcodecs, hydra-core, ...)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
if ! "$PY" -c "import srnsz.coding.context_mixing" 2>/dev/null; then
    "$PY" setup.py -q build_ext --inplace
    export PYTHONPATH=$PWD:${PYTHONPATH:-}
fi
"$PY" benchmarks/gpu_check.py "$@"
