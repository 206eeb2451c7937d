#!/usr/bin/env bash
# Starts the demo: two backends and the proxy with proxy.toml, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

bin/demo-backend -listen 127.0.0.1:9001 -name backend-1 & pids+=($!)
bin/demo-backend -listen 127.0.0.1:9002 -name backend-2 & pids+=($!)
bin/sluice -config proxy.toml -log-format text & pids+=($!)

sleep 1
cat <<TXT

  Sluice is running.
    chat page (WebSocket through the proxy):  http://127.0.0.1:8080/
    API with a token:   curl -H 'Authorization: Bearer demo-token' http://127.0.0.1:8080/api/hello
    API without one:    curl -i http://127.0.0.1:8080/api/hello      (401 from the auth filter)
    admin:              http://127.0.0.1:9901/healthz
  Ctrl-C stops everything.

TXT
wait -n "${pids[@]}"
