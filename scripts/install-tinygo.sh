#!/usr/bin/env bash
# Installs TinyGo 0.41.0 into /opt/tinygo, built from source against Debian's LLVM 19.
#
# TinyGo is not packaged for Debian, and its release tarballs are not reachable from every
# build machine, so it is built from the Go module zip. v0.41.0 is the first release that
# accepts Go 1.26. The module zip lacks TinyGo's git submodules (wasi-libc, compiler-rt),
# so TinyGo's library cache is seeded with Debian's prebuilt archives instead; that is
# enough for the wasip1 target. TinyGo runs wasm-opt on every wasm build, so binaryen is
# required too. Not supported by this build: importing net, -gc=boehm, wasip2, and
# `tinygo clean` (it wipes the seeded cache; re-run this script afterwards).
#
# Build a guest with (the default scheduler costs ~0.2 ms per exported call; none is needed):
#
#   tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug -o f.wasm .
#
# LLVM 19 prints "'+bulk-memory-opt' is not a recognized feature" on every build; harmless.
#
# Re-runnable: does nothing when the binary and the seeded cache are already in place.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

VERSION=0.41.0
ROOT=/opt/tinygo
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tinygo"
RT=/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a
SEEDED=(
  "$CACHE/wasi-libc-wasm32-unknown-wasi-generic/lib.a"
  "$CACHE/compiler-rt-wasm32-unknown-wasi-generic/lib.a"
  "$CACHE/compiler-rt-wasm32-unknown-unknown-mvp/lib.a"
  "$CACHE/wasmbuiltins-wasm32-unknown-unknown-mvp/lib.a"
)

seeded() { for f in "${SEEDED[@]}"; do [[ -s $f ]] || return 1; done; }

if "$ROOT/bin/tinygo" version 2>/dev/null | grep -q "tinygo version $VERSION" && seeded &&
  command -v wasm-opt >/dev/null; then
  echo "tinygo: $("$ROOT/bin/tinygo" version) already installed; nothing to do"
  exit 0
fi

echo "tinygo: installing Debian packages (clang/lld/LLVM 19, wasi-libc, binaryen, g++ for cgo)"
apt_install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 llvm-19-dev libclang-19-dev binaryen g++

if ! "$ROOT/bin/tinygo" version 2>/dev/null | grep -q "tinygo version $VERSION"; then
  echo "tinygo: downloading github.com/tinygo-org/tinygo@v$VERSION from the Go module proxy"
  src=$(cd / && go mod download -json "github.com/tinygo-org/tinygo@v$VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || { echo "tinygo: go mod download gave no source directory" >&2; exit 1; }
  echo "tinygo: building $ROOT/bin/tinygo with -tags llvm19 (takes a few minutes)"
  rm -rf "$ROOT"
  cp -r "$src" "$ROOT"
  chmod -R u+w "$ROOT"
  (cd "$ROOT" && go build -tags llvm19 -o bin/tinygo .)
  mkdir -p "$ROOT/src/net" # a git submodule missing from the zip; TinyGo only checks it exists
fi
ln -sf "$ROOT/bin/tinygo" /usr/local/bin/tinygo

echo "tinygo: seeding the library cache in $CACHE from Debian's wasm32 archives"
mkdir -p "${SEEDED[@]%/lib.a}"
cp /usr/lib/wasm32-wasi/libc.a "$CACHE/wasi-libc-wasm32-unknown-wasi-generic/lib.a"
rm -rf "$CACHE/wasi-libc-wasm32-unknown-wasi-generic/include"
cp -r /usr/include/wasm32-wasi "$CACHE/wasi-libc-wasm32-unknown-wasi-generic/include"
cp "$RT" "$CACHE/compiler-rt-wasm32-unknown-wasi-generic/lib.a"
cp "$RT" "$CACHE/compiler-rt-wasm32-unknown-unknown-mvp/lib.a"
# wasm32-unknown-unknown needs a few libc routines that TinyGo normally builds itself.
t=$(mktemp -d)
(cd "$t" && ar x /usr/lib/wasm32-wasi/libc.a memcpy.o memmove.o memset.o __math_divzero.o \
  __math_invalid.o __math_oflow.o __math_uflow.o __math_xflow.o exp.o exp2.o exp_data.o \
  log.o log_data.o && llvm-ar-19 rcs "$CACHE/wasmbuiltins-wasm32-unknown-unknown-mvp/lib.a" ./*.o)
rm -rf "$t"

echo "tinygo: installed $("$ROOT/bin/tinygo" version)"
