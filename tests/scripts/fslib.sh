# SPDX-License-Identifier: MIT
# fslib.sh - sourced by the script tests: the probe program, small file systems made for a
# test (loop-mounted ext4 image, tmpfs), removed again by one EXIT trap, and pass/fail counting.
# shellcheck shell=bash
SPILL_SRC=${SPILL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SPILL_BUILD=${SPILL_BUILD:-$SPILL_SRC/build}
SPILL_LIB=${SPILL_LIB:-$SPILL_BUILD/libspill.so}
if [ -z "${TEST_TMP:-}" ]; then
	TEST_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/spill-test.XXXXXX")
	fslib_rm_tmp=1
fi
cd "$TEST_TMP" || exit 1
fslib_mounts=() fslib_files=()
fails=0

pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; fails=$((fails + 1)); }
skip() { echo "$*"; exit 77; }

# finish: the exit status of a test from the failures counted.
finish() {
	if [ "$fails" -gt 0 ]; then
		echo "$fails check(s) failed"
		exit 1
	fi
	exit 0
}

fslib_cleanup() {
	local m i
	for ((i = ${#fslib_mounts[@]} - 1; i >= 0; i--)); do
		m=${fslib_mounts[i]}
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for m in "${fslib_files[@]+"${fslib_files[@]}"}"; do rm -rf "$m"; done
	[ -n "${fslib_rm_tmp:-}" ] && rm -rf "$TEST_TMP"
}
trap fslib_cleanup EXIT

# build_probe: compiles tests/scripts/spillprobe.c to $probe (plain, no link to libspill), or
# takes SPILL_PROBE, one built already (tests/vm/check-vm.sh builds it once on the host).
build_probe() {
	[ -f "$SPILL_LIB" ] || { echo "FAIL: $SPILL_LIB is not built (run make)"; exit 1; }
	if [ -n "${SPILL_PROBE:-}" ] && [ -x "$SPILL_PROBE" ]; then
		probe=$SPILL_PROBE
		return
	fi
	probe=$TEST_TMP/spillprobe
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -o "$probe" "$SPILL_SRC/tests/scripts/spillprobe.c" ||
		{ echo "FAIL: cannot build spillprobe.c"; exit 1; }
}

# mount_ext4 SIZE DIR: a fresh ext4 image of SIZE in $TEST_TMP, loop-mounted on DIR.
# Returns non-zero with the reason in $why when that is impossible here.
mount_ext4() {
	local img=$TEST_TMP/$(basename "$2").img out
	mkdir -p "$2"
	if ! command -v mkfs.ext4 >/dev/null; then why="mkfs.ext4 is not installed"; return 1; fi
	truncate -s "$1" "$img" && fslib_files+=("$img")
	if ! out=$(mkfs.ext4 -q -F -m 0 "$img" 2>&1); then why="mkfs.ext4 failed: $out"; return 1; fi
	if ! out=$(mount -o loop "$img" "$2" 2>&1); then why="cannot loop-mount an ext4 image: $out"; return 1; fi
	fslib_mounts+=("$2")
	chmod 1777 "$2"
}

# mount_tmpfs SIZE DIR
mount_tmpfs() {
	local out
	mkdir -p "$2"
	if ! out=$(mount -t tmpfs -o "size=$1" tmpfs "$2" 2>&1); then why="cannot mount a tmpfs: $out"; return 1; fi
	fslib_mounts+=("$2")
}

# avail DIR: bytes available to unprivileged users on DIR's file system.
# (No process substitution: a minimal system may have no /dev/fd.)
avail() {
	stat -f -c '%a %S' "$1" | { read -r a s && echo $((a * s)); }
}

# SPILL_TEST_FS=DIR, set by tests/vm/scenario_fs.sh: a directory on a fresh file system of its
# own (xfs, btrfs, overlayfs, ...) that the tests taking one use instead of those they mount.
# fs_type DIR: the type of DIR's file system as mount names it (xfs, btrfs, ext4, overlay, tmpfs).
fs_type() { findmnt -n -o FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; }

# fs_total DIR: the file system's size in bytes as statvfs reports it (f_blocks * f_frsize).
fs_total() {
	stat -f -c '%b %S' "$1" | { read -r b s && echo $((b * s)); }
}
