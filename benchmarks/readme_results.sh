#!/usr/bin/env bash
# Reproduce the results table (README, docs/benchmarks/index.md) and the rate-distortion plot from ../shared/data.
# Needs the peers: pip install -e ".[peers]". Writes benchmarks/results/shared/ (CSV, JSON, markdown, PNGs), copies
# the plot to docs/rate_distortion.png and writes the tables, with this command, the date and the commit, to
# docs/benchmarks/bench-run.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
OUT=benchmarks/results/shared
srnsz bench "$DATA"/*.npy --eb 1e-2 1e-3 1e-4 --repeat "${REPEAT:-1}" --out "$OUT" --force
cp "$OUT/rate_distortion.png" docs/rate_distortion.png
{
  printf '# Full bench run\n\n'
  printf 'Every row of `bash benchmarks/readme_results.sh` (= `srnsz bench %s/*.npy --eb 1e-2 1e-3 1e-4`), %s,\n' \
    "$DATA" "$(date -u +%F)"
  printf 'commit %s: the summary table, each field, bound and codec, the geometric means, the bound violations and\n' \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf 'the failed runs as `srnsz bench` prints them.\n\n'
  cat "$OUT/results.md"
} > docs/benchmarks/bench-run.md
echo "table: $OUT/results.md"
