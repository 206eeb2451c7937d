#!/usr/bin/env bash
# Builds the Rust versions of the example filters from source, each into
# examples/<name>/<name>.rust.wasm (beside the Go builds of the same filter).
#
#   examples/build-rust.sh            build every examples/*/rust crate
#   examples/build-rust.sh auth guard build some
#   examples/build-rust.sh --test     run the SDK's and every example's tests
#
# Uses Debian's Rust (scripts/install-rust.sh): RUSTC, RUSTDOC and CARGO
# default to /usr/bin, because a rustup install on PATH may lack the wasm32
# target. Everything builds offline: the crates have no dependencies beyond
# the SDK in sdk/rust.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export RUSTC="${RUSTC:-/usr/bin/rustc}"
export RUSTDOC="${RUSTDOC:-/usr/bin/rustdoc}"
CARGO="${CARGO:-/usr/bin/cargo}"
if [[ ! -x "$RUSTC" || ! -x "$CARGO" ]]; then
  bash scripts/install-rust.sh
fi

test=0
names=()
for arg in "$@"; do
  case "$arg" in
    --test) test=1 ;;
    -*) echo "build-rust: unknown flag $arg" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done
if [[ ${#names[@]} -eq 0 ]]; then
  for manifest in examples/*/rust/Cargo.toml; do
    names+=("$(basename "$(dirname "$(dirname "$manifest")")")")
  done
fi

if [[ $test -eq 1 ]]; then
  export CARGO_TARGET_DIR="$root/sdk/rust/target/examples"
  (cd sdk/rust && "$CARGO" test --offline --quiet)
  for name in "${names[@]}"; do
    echo "build-rust: testing $name"
    (cd "examples/$name/rust" && "$CARGO" test --offline --quiet)
  done
  exit 0
fi

# One target directory for every example (under the SDK's ignored target/):
# the SDK compiles once, not once per example.
export CARGO_TARGET_DIR="$root/sdk/rust/target/examples"
# Bulk memory: memcpy and memset become single instructions instead of
# byte loops, and inside the proxy every loop iteration of a guest also pays
# for the hook deadline's cancellation check (HMAC-SHA256 took 2-3 times as
# long without it). The proxy's runtime, like TinyGo's output, has it on.
export RUSTFLAGS="${RUSTFLAGS:--C target-feature=+bulk-memory}"

for name in "${names[@]}"; do
  dir="examples/$name/rust"
  if [[ ! -f "$dir/Cargo.toml" ]]; then
    echo "build-rust: no crate at $dir" >&2
    exit 1
  fi
  (cd "$dir" && "$CARGO" build --offline --quiet --release --target wasm32-unknown-unknown)
  # Each crate's library is named after its example, so its module is <name>.wasm.
  cp "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/$name.wasm" "examples/$name/$name.rust.wasm"
  printf 'build-rust: %-32s %7d bytes\n' "examples/$name/$name.rust.wasm" "$(stat -c %s "$root/examples/$name/$name.rust.wasm")"
done
