# Sourced by the install scripts: apt_install installs Debian packages,
# refreshing the package lists first when there are none and once more when
# an install fails (lists from an old image name versions no longer served).
apt_install() {
  local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || "${apt[@]}" update >/dev/null
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null; then
    echo "apt: install failed; refreshing the package lists and trying again" >&2
    "${apt[@]}" update >/dev/null
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null
  fi
}
