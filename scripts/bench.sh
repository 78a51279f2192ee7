#!/usr/bin/env bash
# Performance benchmarks of issue 2's targets, on a release build. Prints the median of
# several runs (wall seconds and peak RSS) for:
#   1. investigating a 12-service, 1-hour bundle (each fault kind);
#   2. investigating a 200-service, ~10-million-log-line bundle;
#   3. log template mining throughput (criterion bench in compass-core).
# Usage: scripts/bench.sh [RUNS]   (default 3). Needs GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=${BENCH_DIR:-$(mktemp -d)}
cargo build --release -q
bin=target/release/compass

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # DIR -> "wall_s rss_kb" medians over $runs runs
  local walls=() rss=()
  for _ in $(seq "$runs"); do
    out=$( { /usr/bin/time -f "%e %M" "$bin" investigate --bundle "$1" --format json >/dev/null; } 2>&1 | tail -1 )
    walls+=("${out% *}"); rss+=("${out#* }")
  done
  echo "$(printf '%s\n' "${walls[@]}" | median) $(printf '%s\n' "${rss[@]}" | median)"
}

echo "== 12 services, 1 hour, default log rate (median of $runs runs)"
printf '%-20s %8s %10s\n' scenario wall_s peak_MiB
for s in cpu-saturation memory-leak network-latency error-injection db-pool-exhaustion bad-deploy; do
  "$bin" simulate --scenario "$s" --seed 11 --out "$work/$s" >/dev/null
  read -r wall rss < <(measure "$work/$s")
  printf '%-20s %8s %10d\n' "$s" "$wall" $((rss / 1024))
done

echo "== 200 services, 1 hour, --log-rate 2800 (~10M log lines)"
"$bin" simulate --scenario cpu-saturation --seed 1 --services 200 --log-rate 2800 --out "$work/big" | sed -n 2p
read -r wall rss < <(measure "$work/big")
printf '%-20s %8s %10d\n' "200-services" "$wall" $((rss / 1024))

echo "== log template mining (criterion)"
cargo bench -q -p compass-core --bench logmine 2>&1 | grep -Ei "lines/s|thrpt|time:" || true
[ -z "${BENCH_DIR:-}" ] && rm -rf "$work"
