#!/usr/bin/env bash
# Builds every example filter from source:
#   examples/<name>/<name>.wasm     with TinyGo (small, fast to instantiate)
#   examples/<name>/<name>.go.wasm  with standard Go (GOOS=wasip1, c-shared)
# Without TinyGo, <name>.wasm is a copy of the Go build, so proxy.toml still
# works (scripts/install-tinygo.sh installs TinyGo).
#
# Usage: examples/build.sh [name...]   (default: every filter directory)
# Env:   TINYGO (path of tinygo), GO (path of go), SKIP_GO=1 (TinyGo only).
set -euo pipefail
cd "$(dirname "$0")"

GO=${GO:-go}
TINYGO=${TINYGO:-}
if [[ -z $TINYGO ]]; then
  if command -v tinygo >/dev/null; then TINYGO=tinygo
  elif [[ -x /opt/tinygo/bin/tinygo ]]; then TINYGO=/opt/tinygo/bin/tinygo
  fi
fi

if (($# > 0)); then
  names=("$@")
else
  # A filter is a directory whose main.go imports the SDK.
  names=()
  for f in */main.go; do
    grep -q 'github.com/sluiceproxy/sluice/sdk/go"' "$f" && names+=("${f%/main.go}")
  done
fi

size() { wc -c <"$1" | tr -d ' '; }

[[ -n $TINYGO ]] || echo "build: tinygo not found; <name>.wasm will be the Go build (run scripts/install-tinygo.sh)" >&2
printf '%-10s %12s %12s\n' filter tinygo go
for name in "${names[@]}"; do
  tg=- gs=-
  if [[ -z ${SKIP_GO:-} ]]; then
    (cd "$name" && GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -o "$name.go.wasm" .)
    gs=$(size "$name/$name.go.wasm")
  fi
  if [[ -n $TINYGO ]]; then
    # -scheduler=none: filters run no goroutines, and the default scheduler
    # costs far more per exported call than the hook itself. TinyGo warns
    # about LLVM features it does not know; those lines are noise.
    (cd "$name" && "$TINYGO" build -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug \
      -o "$name.wasm" . 2> >(grep -v 'is not a recognized feature for this target' >&2))
    tg=$(size "$name/$name.wasm")
  elif [[ -f $name/$name.go.wasm ]]; then
    cp "$name/$name.go.wasm" "$name/$name.wasm"
  else
    echo "build: $name: neither tinygo nor a Go build" >&2
    exit 1
  fi
  printf '%-10s %12s %12s\n' "$name" "$tg" "$gs"
done
