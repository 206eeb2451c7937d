#!/usr/bin/env bash
# Installs the tools the tests use besides the guest compilers:
#   - wabt's wat2wasm, to build hand-written (deliberately hostile) .wat guest fixtures;
#   - the npm `ws` package for host/testdata/wsclient, an independent WebSocket client;
#   - promtool (Debian's prometheus package), which lints the /metrics exposition;
#   - Debian's chromium and the npm playwright-core package in cmd/sluice/testdata/browser,
#     which drive the status page test;
#   - staticcheck, which `make vet` runs, from the Go module proxy.
# Re-runnable: skips whatever is already installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

WSCLIENT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/host/testdata/wsclient"
BROWSER="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/cmd/sluice/testdata/browser"

if command -v wat2wasm >/dev/null; then
  echo "tools: wat2wasm $(wat2wasm --version) already installed"
else
  echo "tools: installing wabt (wat2wasm) from Debian"
  apt_install wabt
fi

if command -v promtool >/dev/null; then
  echo "tools: promtool already installed"
else
  echo "tools: installing promtool (Debian's prometheus package)"
  apt_install prometheus
fi

if command -v chromium >/dev/null; then
  echo "tools: chromium already installed"
else
  echo "tools: installing chromium from Debian"
  apt_install chromium
fi

if [[ -f $BROWSER/node_modules/playwright-core/package.json ]]; then
  echo "tools: playwright-core already installed in $BROWSER"
else
  echo "tools: npm ci in $BROWSER"
  (cd "$BROWSER" && npm ci --no-audit --no-fund)
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
