#!/usr/bin/env bash
# Installs the benchmark's load generator (wrk), reference proxy (nginx-light), chart plotter
# (gnuplot-nox) and CPU pinning tool (taskset, from util-linux) from Debian.
# Re-runnable: does nothing when all are present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

pkgs=()
command -v wrk >/dev/null || pkgs+=(wrk)
command -v nginx >/dev/null || pkgs+=(nginx-light)
command -v gnuplot >/dev/null || pkgs+=(gnuplot-nox)
command -v taskset >/dev/null || pkgs+=(util-linux)
if [[ ${#pkgs[@]} -eq 0 ]]; then
  echo "bench-tools: wrk, nginx, gnuplot and taskset already installed; nothing to do"
  exit 0
fi
had_nginx=$(command -v nginx || true)
echo "bench-tools: installing ${pkgs[*]} from Debian"
apt_install "${pkgs[@]}"
# The benchmark starts its own nginx on a loopback port; a packaged service that the install
# just started would hold port 80, so stop it (only if this script installed nginx).
if [[ -z $had_nginx ]] && systemctl is-active --quiet nginx 2>/dev/null; then
  echo "bench-tools: stopping and disabling the nginx service the package started"
  systemctl stop nginx && systemctl disable --quiet nginx
fi
echo "bench-tools: installed $(command -v wrk), $(nginx -v 2>&1), $(gnuplot --version), $(command -v taskset)"
