#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian bookworm machine that
# has Go, gcc and node/npm: TinyGo, Debian's Rust for wasm32, wat2wasm, the ws client and
# redis-server (for the shared-store tests).
# Run as root; re-runnable (each step skips what is already installed). The benchmark's
# tools are separate: scripts/install-bench-tools.sh.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for step in install-tinygo install-rust install-tools install-redis; do
  echo "setup: == $step"
  start=${EPOCHREALTIME/./}
  if ! "$dir/$step.sh"; then
    echo "setup: FAILED: scripts/$step.sh (see its output above)" >&2
    exit 1
  fi
  ms=$(((${EPOCHREALTIME/./} - start) / 1000))
  printf 'setup: %s took %d.%03ds\n' "$step" $((ms / 1000)) $((ms % 1000))
done
echo "setup: done"
