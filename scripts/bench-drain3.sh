#!/usr/bin/env bash
# Log template mining throughput, COMPASS against the drain3 Python package (from PyPI,
# installed into a local virtualenv by this script), on the same 1M-line input built
# from the Loghub samples. Only the mining loop is timed on both sides.
# Usage: scripts/bench-drain3.sh [LOGHUB_DIR] (default ../shared/data/loghub); LINES=N.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/loghub}
lines=${LINES:-1000000}
venv=${DRAIN3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/compass-drain3-venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import drain3' 2>/dev/null; then
  echo "==> installing drain3 0.9.11 into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "drain3==0.9.11"
fi
cargo build --release -q

input="$work/input.txt"
echo "==> COMPASS"
target/release/compass bench logs --input "$input" --make-from "$data" --lines "$lines" | tee "$work/compass.txt"
echo "==> drain3"
"$venv/bin/python" - "$input" <<'PY' 2>/dev/null | tee "$work/drain3.txt"
import sys, time
from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig
cfg = TemplateMinerConfig()  # drain3 defaults: depth 4, sim_th 0.4, max_children 100
cfg.profiling_enabled = False
tm = TemplateMiner(config=cfg)
with open(sys.argv[1], encoding="utf-8") as f:
    lines = f.read().splitlines()
t0 = time.perf_counter()
for line in lines:
    tm.add_log_message(line)
dt = time.perf_counter() - t0
print(f"lines={len(lines)} seconds={dt:.3f} lines_per_s={len(lines) / dt:.0f} templates={len(tm.drain.clusters)}")
PY
rate() { grep -o 'lines_per_s=[0-9]*' "$1" | tail -1 | cut -d= -f2; }
awk -v c="$(rate "$work/compass.txt")" -v d="$(rate "$work/drain3.txt")" \
  'BEGIN { printf "==> COMPASS mines %.1fx the lines per second of drain3 (%d vs %d)\n", c / d, c, d }'
