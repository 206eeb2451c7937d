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
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

if [[ -x /usr/bin/rustc ]] && compgen -G '/usr/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib' >/dev/null; then
  echo "rust: $(/usr/bin/rustc --version) with wasm32 std already installed; nothing to do"
  exit 0
fi

echo "rust: installing Debian packages (rustc, cargo, libstd-rust-dev-wasm32, lld-14)"
apt_install rustc cargo libstd-rust-dev-wasm32 lld-14
echo "rust: installed $(/usr/bin/rustc --version)"
