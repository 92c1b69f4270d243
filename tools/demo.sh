#!/usr/bin/env bash
# `make demo`: the coordinator (configs/demo.toml) serving the demo page. Open the URL it prints:
# the page starts eight devices -- Python participants in a web worker -- that train on their own
# data and complete masked rounds. DEMO_NATIVE=N adds N native devices (xaynet-test-drive --task
# digits) to the same rounds. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

url=http://127.0.0.1:8081
native=${DEMO_NATIVE:-0}
mkdir -p .cache

if .venv/bin/python -c "import urllib.request as u; u.urlopen('$url/healthz', timeout=1)" 2>/dev/null; then
  echo "something already answers on $url (another demo?): stop it first" >&2
  exit 1
fi
.venv/bin/xaynet-coordinator --config configs/demo.toml > .cache/demo-coordinator.log 2>&1 &
coordinator=$!
children=("$coordinator")
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq 100); do
  .venv/bin/python -c "import urllib.request as u; u.urlopen('$url/healthz', timeout=1)" 2>/dev/null && break
  if ! kill -0 "$coordinator" 2>/dev/null; then
    echo "the coordinator did not start (is port 8081 taken?):" >&2
    tail -n 20 .cache/demo-coordinator.log >&2
    exit 1
  fi
  sleep 0.1
done

cat <<TEXT

  Xaynet demo: open  $url/

  Each device on the page is a Python participant in a web worker (Pyodide). The coordinator's
  API is beside it: $url/docs, /state, /metrics.
  Coordinator log: .cache/demo-coordinator.log. Ctrl-C stops the demo.

TEXT
if [ "$native" -gt 0 ]; then
  .venv/bin/xaynet-test-drive --task digits -n "$native" -u "$url" > .cache/demo-native.log 2>&1 &
  children+=("$!")
  echo "  $native native devices join the rounds (log: .cache/demo-native.log)."
fi
wait "$coordinator"
