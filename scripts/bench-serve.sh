#!/usr/bin/env bash
# `compass serve` throughput (release build, one replica on SQLite, loopback):
# 1. investigations per minute: JOBS incidents (default 60) opened through the API at
#    a simulated bundle's incident time, every one a full investigation over the bundle
#    (WORKERS at once, default 2); the clock runs from the first POST to the last result.
# 2. webhook intake: wrk posting one Alertmanager alert (a new fingerprint each request)
#    for 10 s with 16 connections, when wrk is installed (apt-get install wrk).
# Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-60}
workers=${WORKERS:-2}
cargo build --release -q -p compass
bin=$PWD/target/release/compass
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" simulate --scenario db-pool-exhaustion --out "$work/bundle" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COMPASS_LOG=warn "$bin" serve --bundle "$work/bundle" --no-auth --listen "127.0.0.1:$port" \
  --database "sqlite://$work/c.db" --workers "$workers" 2>"$work/serve.log" &
pid=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done
base="http://127.0.0.1:$port"
start_rfc=$(python3 -c "import json; print(json.load(open('$work/bundle/incident.json'))['start'])")

echo "==> $jobs investigations, $workers workers"
t0=$(date +%s.%N)
for i in $(seq 1 "$jobs"); do
  curl -sf -o /dev/null -X POST "$base/api/v1/incidents" -H 'content-type: application/json' \
    -d "{\"title\": \"bench $i\", \"start\": \"$start_rfc\"}"
done
python3 - "$base" "$jobs" "$t0" <<'PY'
import json, sys, time, urllib.request
base, jobs, t0 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while True:
    invs = json.load(urllib.request.urlopen(f"{base}/api/v1/investigations?limit=500"))
    done = [i for i in invs if i["state"] not in ("queued", "running")]
    if len(done) >= jobs:
        break
    time.sleep(0.05)
elapsed = time.time() - t0
took = sorted((i["finished_at"] - i["started_at"]) for i in done)
print(f"{jobs} investigations in {elapsed:.1f} s: {jobs / elapsed * 60:.0f} per minute "
      f"(one investigation: median {took[len(took)//2]} ms, max {took[-1]} ms)")
PY

if command -v wrk >/dev/null; then
  echo "==> webhook intake (wrk -t2 -c16 -d10s)"
  cat >"$work/alert.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"version":"4","status":"firing","receiver":"compass","groupKey":"{}:{alertname=\\"Bench%d\\"}","alerts":[{"status":"firing","labels":{"alertname":"Bench%d","service":"svc%d","severity":"warning"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"fp%d-%d"}]}', counter % 50, counter % 50, counter % 7, counter, math.random(1e9))
  return wrk.format("POST", "/api/v1/webhooks/alertmanager", {["content-type"] = "application/json"}, body)
end
LUA
  wrk -t2 -c16 -d10s --latency -s "$work/alert.lua" "$base" | sed -n '/Latency Distribution/,$p'
else
  echo "(wrk not installed: apt-get install wrk for the intake benchmark)"
fi
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "peak RSS of the replica: $((rss / 1024)) MB"
