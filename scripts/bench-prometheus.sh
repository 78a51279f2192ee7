#!/usr/bin/env bash
# Investigation against a real Prometheus: a simulated incident in a 50-service system
# (SERVICES=N, SCENARIO=name) is backfilled into a fresh TSDB with promtool, Prometheus
# serves it on a free loopback port, and `compass investigate --config` (release build)
# runs RUNS times (default 5). Prints the median / min / max wall time, the API calls
# Prometheus served per investigation (its own prometheus_http_requests_total), and the
# most series any one answer held (from a --record of one run).
# Needs prometheus + promtool (installed from Debian when missing), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
services=${SERVICES:-50}
scenario=${SCENARIO:-cpu-saturation}

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "==> installing prometheus (apt-get install -y prometheus)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
cargo build --release -q -p compass
bin=$PWD/target/release/compass
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "==> simulating $scenario in $services services"
"$bin" simulate --scenario "$scenario" --services "$services" --out "$work/bundle" >/dev/null
promtool tsdb create-blocks-from openmetrics "$work/bundle/metrics.om" "$work/data" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'global: {scrape_interval: 15s}\nscrape_configs: []\n' >"$work/prom.yml"
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=100y 2>"$work/prom.log" &
pid=$!
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.1; done
cat >"$work/compass.toml" <<TOML
version = 1
[sources.prom]
kind = "prometheus"
url = "http://127.0.0.1:$port"
TOML
read -r at svc < <(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print(i["start"], i["affected_services"][0])' "$work/bundle/incident.json")
api_calls() {
  curl -s "http://127.0.0.1:$port/metrics" |
    awk '/^prometheus_http_requests_total\{.*handler="\/api\/v1\// { s += $NF } END { print s + 0 }'
}

echo "==> $runs investigations (incident at $at on $svc)"
before=$(api_calls)
times=()
for i in $(seq "$runs"); do
  start=$(date +%s%N)
  "$bin" investigate --config "$work/compass.toml" --service "$svc" --at "$at" --format json >"$work/run$i.json" || [ $? -eq 3 ]
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
after=$(api_calls)
"$bin" investigate --config "$work/compass.toml" --service "$svc" --at "$at" --format json \
  --record "$work/rec" >/dev/null 2>&1 || [ $? -eq 3 ]
python3 - "$work" "$runs" "$before" "$after" "${times[@]}" <<'PY'
import json, statistics, sys
work, runs, before, after = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
times = sorted(int(t) for t in sys.argv[5:])
most = 0
for line in open(f"{work}/rec/responses.jsonl"):
    r = json.loads(line)
    if r.get("port") == "metrics" and r.get("call") == "query_range" and isinstance(r.get("response"), list):
        most = max(most, len(r["response"]))
top = json.load(open(f"{work}/run1.json"))["hypotheses"][:1]
print(f"wall time per investigation: median {statistics.median(times)} ms (min {times[0]}, max {times[-1]}, {runs} runs)")
print(f"Prometheus API calls per investigation: {(after - before) / runs:.0f}")
print(f"most series in one answer: {most}")
if top:
    rc = top[0]["root_cause"]
    truth = json.load(open(f"{work}/bundle/truth.json"))
    print(f"top hypothesis: {rc['service']} {rc['fault_kind']} (injected: {truth['service']} {truth['fault_kind']})")
PY
