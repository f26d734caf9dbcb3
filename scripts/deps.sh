#!/usr/bin/env bash
# scripts/deps.sh - makes sure what `make check` needs is installed. On Debian, as root, it
# installs what is missing (apt-get update first); otherwise it names the packages and fails.
set -u
packages=(build-essential g++ make pkg-config check libffi-dev python3 python3-numpy
	mandoc groff-base man-db clang libclang-rt-14-dev e2fsprogs util-linux procps bindfs fuse3
	gnuplot-nox dpkg-dev debhelper lintian)

missing() {
	local p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

if ! command -v dpkg-query >/dev/null; then
	pkg-config --exists check libffi && exit 0
	echo "deps: not Debian; install Check and libffi (with pkg-config files), g++, clang, mandoc" >&2
	exit 1
fi
mapfile -t need < <(missing)
[ "${#need[@]}" = 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ -n "${SPILL_NO_INSTALL:-}" ]; then
	echo "deps: missing Debian packages: ${need[*]}" >&2
	echo "deps: install them with: sudo apt-get install ${need[*]}" >&2
	exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
