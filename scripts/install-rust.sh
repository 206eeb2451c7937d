#!/usr/bin/env bash
# Installs Debian's Rust toolchain with the wasm32-unknown-unknown standard library.
#
# Build Rust guests with Debian's compiler explicitly:
#
#   RUSTC=/usr/bin/rustc /usr/bin/cargo build --release --target wasm32-unknown-unknown
#
# because a rustup installation in ~/.cargo/bin shadows /usr/bin on PATH and has no wasm32
# target. crates.io may be unreachable, so guest crates must have no dependencies.
#
# Re-runnable: does nothing when rustc and the wasm32 std are already installed.
set -euo pipefail

if [[ -x /usr/bin/rustc ]] && compgen -G '/usr/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib' >/dev/null; then
  echo "rust: $(/usr/bin/rustc --version) with wasm32 std already installed; nothing to do"
  exit 0
fi

echo "rust: installing Debian packages (rustc, cargo, libstd-rust-dev-wasm32, lld-14)"
# A fresh image ships without package lists.
compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends \
  rustc cargo libstd-rust-dev-wasm32 lld-14 >/dev/null
echo "rust: installed $(/usr/bin/rustc --version)"
