#!/usr/bin/env bash
# scripts/deps.sh [vm] - makes sure what `make check` needs is installed (with "vm": what
# `make check-vm` needs as well). On Debian, as root, it installs what is missing (apt-get
# update first, no recommended packages); otherwise it names the packages and fails.
set -u
packages=(build-essential g++ make pkg-config check libffi-dev python3 python3-numpy
	mandoc groff-base man-db clang libclang-rt-14-dev e2fsprogs util-linux procps bindfs fuse3
	gnuplot-nox dpkg-dev debhelper lintian)
# make check-vm: qemu, Debian's 6.1 kernel (only its files in /boot and /lib/modules are used:
# no boot loader is installed or touched), a static busybox for the initramfs, cpio and kmod
# to build it, and the tools of the file systems the VM tests.
vm_packages=(qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xfsprogs btrfs-progs)
[ "${1:-}" = vm ] && packages+=("${vm_packages[@]}")

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing() {
	local p
	for p in "${packages[@]}"; do
		installed "$p" || echo "$p"
	done
}

if ! command -v dpkg-query >/dev/null; then
	[ "${1:-}" = vm ] && { echo "deps: not Debian; make check-vm needs ${vm_packages[*]}" >&2; exit 1; }
	pkg-config --exists check libffi && exit 0
	echo "deps: not Debian; install Check and libffi (with pkg-config files), g++, clang, mandoc" >&2
	exit 1
fi
mapfile -t need < <(missing)
[ "${#need[@]}" = 0 ] && exit 0
# A kernel package needs an initramfs generator. On a machine without one, take the small
# tiny-initramfs rather than initramfs-tools, which would bring udev and systemd as init;
# where one is installed already it is left alone (they conflict).
if [[ " ${need[*]} " == *" linux-image-amd64 "* ]] &&
   ! installed initramfs-tools && ! installed dracut && ! installed tiny-initramfs; then
	need+=(tiny-initramfs)
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ -n "${SPILL_NO_INSTALL:-}" ]; then
	echo "deps: missing Debian packages: ${need[*]}" >&2
	echo "deps: install them with: sudo apt-get install --no-install-recommends ${need[*]}" >&2
	exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
