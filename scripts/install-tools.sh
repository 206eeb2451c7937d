#!/usr/bin/env bash
# Installs the tools the tests use besides the guest compilers:
#   - wabt's wat2wasm, to build hand-written (deliberately hostile) .wat guest fixtures;
#   - the npm `ws` package for host/testdata/wsclient, an independent WebSocket client;
#   - staticcheck, which `make vet` runs, from the Go module proxy.
# Re-runnable: skips whatever is already installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

WSCLIENT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/host/testdata/wsclient"

if command -v wat2wasm >/dev/null; then
  echo "tools: wat2wasm $(wat2wasm --version) already installed"
else
  echo "tools: installing wabt (wat2wasm) from Debian"
  apt_install wabt
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

# staticcheck: pinned, so that every machine reports the same findings.
STATICCHECK_VERSION=v0.8.2
GOBIN_DIR="$(go env GOBIN)"
GOBIN_DIR="${GOBIN_DIR:-$(go env GOPATH)/bin}"
if [[ -x $GOBIN_DIR/staticcheck ]] && "$GOBIN_DIR/staticcheck" -version | grep -q "(${STATICCHECK_VERSION#v})"; then
  echo "tools: staticcheck $STATICCHECK_VERSION already installed in $GOBIN_DIR"
else
  echo "tools: installing staticcheck $STATICCHECK_VERSION into $GOBIN_DIR"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
