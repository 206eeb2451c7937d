#!/usr/bin/env bash
# Installs redis-server and redis-cli (Debian's redis-server and redis-tools), which the
# shared-store tests start on random loopback ports. Skips what is already installed.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=apt.sh
. "$dir/apt.sh"

if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  echo "redis: $(redis-server --version | cut -d' ' -f1-3) already installed"
  exit 0
fi
apt_install redis-server redis-tools
# The tests start their own servers; the distribution's service is not needed.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "redis: $(redis-server --version | cut -d' ' -f1-3)"
