#!/usr/bin/env bash
# Reproduce the README's results table and rate-distortion plot from ../shared/data.
# Needs the peers: pip install -e ".[peers]". Writes benchmarks/results/shared/ (CSV, JSON, markdown, PNGs)
# and copies the rate-distortion plot and the tables to docs/ (rate_distortion.png, results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
OUT=benchmarks/results/shared
srnsz bench "$DATA"/*.npy --eb 1e-2 1e-3 1e-4 --repeat "${REPEAT:-1}" --out "$OUT" --force
cp "$OUT/rate_distortion.png" docs/rate_distortion.png
cp "$OUT/results.md" docs/results.md
echo "table: $OUT/results.md"
