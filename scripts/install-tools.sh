#!/usr/bin/env bash
# Installs the tools the tests use besides the guest compilers:
#   - wabt's wat2wasm, to build hand-written (deliberately hostile) .wat guest fixtures;
#   - the npm `ws` package for host/testdata/wsclient, an independent WebSocket client.
# Re-runnable: skips whatever is already installed.
set -euo pipefail

WSCLIENT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/host/testdata/wsclient"

if command -v wat2wasm >/dev/null; then
  echo "tools: wat2wasm $(wat2wasm --version) already installed"
else
  echo "tools: installing wabt (wat2wasm) from Debian"
  # A fresh image ships without package lists.
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends wabt >/dev/null
fi

if [[ -f $WSCLIENT/node_modules/ws/package.json ]]; then
  echo "tools: ws already installed in $WSCLIENT"
elif [[ -f $WSCLIENT/package-lock.json ]]; then
  echo "tools: npm ci in $WSCLIENT"
  (cd "$WSCLIENT" && npm ci --no-audit --no-fund)
else
  echo "tools: npm install in $WSCLIENT"
  (cd "$WSCLIENT" && npm install --no-audit --no-fund)
fi
