#!/usr/bin/env bash
# Builds the C versions of the example filters, written directly against the
# ABI with no SDK: examples/<name>/c/<name>.c -> examples/<name>/<name>.c.wasm.
#
#   examples/build-c.sh            build every examples/*/c/<name>.c
#   examples/build-c.sh headers    build some
#
# Installs clang-19, lld-19 and wasi-libc from Debian when they are missing
# (TinyGo's install already brings them). CLANG overrides the compiler.
set -euo pipefail
cd "$(dirname "$0")"

CLANG="${CLANG:-clang-19}"
if ! command -v "$CLANG" >/dev/null || ! command -v wasm-ld-19 >/dev/null || [[ ! -f /usr/lib/wasm32-wasi/libc.a ]]; then
  echo "build-c: installing clang-19, lld-19 and wasi-libc" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-c: run as root (apt-get), or install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32" >&2
    exit 1
  fi
  source ../scripts/apt.sh
  apt_install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
fi

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for src in */c/*.c; do
    name="${src%%/*}"
    [[ "$src" == "$name/c/$name.c" ]] && names+=("$name")
  done
fi

for name in "${names[@]}"; do
  src="$name/c/$name.c"
  if [[ ! -f "$src" ]]; then
    echo "build-c: no $src" >&2
    exit 1
  fi
  # wasm32-wasi, not wasm32-wasip1: Debian's wasi-libc headers know the
  # former. A reactor exports _initialize, which the host calls once per
  # instance; the filter imports nothing from WASI it does not use.
  "$CLANG" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -mexec-model=reactor -Wl,--strip-all \
    -o "$name/$name.c.wasm" "$src"
  printf 'build-c: %-32s %7d bytes\n' "examples/$name/$name.c.wasm" "$(stat -c %s "$name/$name.c.wasm")"
done
