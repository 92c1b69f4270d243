#!/usr/bin/env bash
# `make demo`: the coordinator (configs/demo.toml) and a fleet of test-drive participants, so
# masked rounds complete without a browser. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

url=http://127.0.0.1:8081
participants=${DEMO_PARTICIPANTS:-20}

.venv/bin/xaynet-coordinator --config configs/demo.toml > .cache/demo-coordinator.log 2>&1 &
coordinator=$!
trap 'kill "$coordinator" 2>/dev/null || true; wait "$coordinator" 2>/dev/null || true' EXIT INT TERM

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
Coordinator: $url  (API docs $url/docs, round state $url/state, metrics $url/metrics)
Coordinator log: .cache/demo-coordinator.log
Starting $participants participants; every global model is checked against the weighted mean of
the models that were sent. Ctrl-C stops the demo.
TEXT
.venv/bin/xaynet-test-drive -n "$participants" -u "$url" --verify
