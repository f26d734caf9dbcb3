#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_full_disk.sh - asking for far more than the spill file system holds (a 64M tmpfs and a
# 128M loop-mounted ext4 image) follows SPILL_ON_FAIL: ram completes with correct contents,
# null gives NULL with errno ENOMEM, abort ends the process with SIGABRT and a clear message.
# Never SIGBUS. Skips when neither file system can be mounted here. With SPILL_TEST_FS=DIR (a
# fresh file system of its own, tests/vm) it runs against DIR alone, asking for 2x its free space.
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
count=16 mib=16		# 256 MiB asked for, 2x to 4x what fits

# one FS DIR: the three SPILL_ON_FAIL modes against DIR.
one() {
	local fs=$1 dir=$2 mode rc out err extra
	# nofree: SPILL_MIN_FREE=0, so the refusal comes from fallocate itself (ENOSPC)
	for mode in ram null abort nofree; do
		# btrfs gives the space of the last run back at its next commit (every 30 s): commit now
		sync -f "$dir"
		out=$TEST_TMP/$fs-$mode.out err=$TEST_TMP/$fs-$mode.err extra=SPILL_ON_FAIL=$mode
		[ $mode = nofree ] && extra="SPILL_ON_FAIL=null SPILL_MIN_FREE=0"
		# shellcheck disable=SC2086 # $extra is one or two words
		env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M $extra \
			SPILL_STATS="$TEST_TMP/$fs-$mode.json" "$probe" fill $count $mib >"$out" 2>"$err"
		rc=$?
		echo "$fs $mode: exit $rc: $(grep '^fill:' "$out")"
		[ "$rc" = 135 ] && fail "$fs $mode: died of SIGBUS"
		case $mode in
		ram)
			if [ "$rc" = 0 ] && grep -qx ok "$out" &&
			   grep -q "spilled=[1-9][0-9]* ram=[1-9][0-9]* null=0 " "$out"; then
				pass "$fs ram: all $count blocks correct, part spilled, the rest in RAM"
			else
				fail "$fs ram: exit $rc, expected ok with both spilled and RAM blocks"
				sed 's/^/    /' "$out" "$err" | head -20
			fi ;;
		null)
			if [ "$rc" = 0 ] && grep -qx ok "$out" &&
			   grep -q "spilled=[1-9][0-9]* ram=0 null=[1-9][0-9]* null_errno_not_enomem=0 " "$out"; then
				pass "$fs null: malloc returned NULL with ENOMEM once the disk was full"
			else
				fail "$fs null: exit $rc, expected NULL+ENOMEM for the requests that do not fit"
				sed 's/^/    /' "$out" "$err" | head -20
			fi ;;
		abort)
			if [ "$rc" = 134 ] && grep -q '^libspill: SPILL_ON_FAIL=abort' "$err"; then
				pass "$fs abort: SIGABRT with \"$(grep -m1 '^libspill: SPILL_ON_FAIL=abort' "$err")\""
			else
				fail "$fs abort: exit $rc, expected 134 (SIGABRT) and a \"libspill: SPILL_ON_FAIL=abort\" line"
				sed 's/^/    /' "$out" "$err" | head -20
			fi ;;
		nofree)
			if [ "$rc" = 0 ] && grep -qx ok "$out" && grep -Eq '"(no_space|min_free)":[1-9]' "$TEST_TMP/$fs-$mode.json" &&
			   grep -q "spilled=[1-9][0-9]* ram=0 null=[1-9][0-9]* null_errno_not_enomem=0 " "$out"; then
				pass "$fs SPILL_MIN_FREE=0: filling the disk to the last block gives NULL+ENOMEM, no SIGBUS"
			else
				fail "$fs SPILL_MIN_FREE=0: exit $rc, expected NULL+ENOMEM (fallback no_space or min_free)"
				sed 's/^/    /' "$out" "$err" "$TEST_TMP/$fs-$mode.json" | head -20
			fi ;;
		esac
	done
}

if [ -n "${SPILL_TEST_FS:-}" ]; then
	count=$(($(avail "$SPILL_TEST_FS") * 2 / (mib << 20) + 2))
	echo "$(fs_type "$SPILL_TEST_FS") at $SPILL_TEST_FS: $(($(avail "$SPILL_TEST_FS") >> 20)) MiB free, asking for $count x $mib MiB"
	one "$(fs_type "$SPILL_TEST_FS")" "$SPILL_TEST_FS"
	finish
fi
mounted=0 reasons=()
if mount_tmpfs 64M "$TEST_TMP/tmpfs"; then
	one tmpfs "$TEST_TMP/tmpfs"; mounted=$((mounted + 1))
else
	reasons+=("tmpfs: $why")
fi
if mount_ext4 128M "$TEST_TMP/ext4"; then
	one ext4 "$TEST_TMP/ext4"; mounted=$((mounted + 1))
else
	reasons+=("ext4: $why")
fi
for r in "${reasons[@]+"${reasons[@]}"}"; do echo "NOTICE: part skipped: $r"; done
[ "$mounted" = 0 ] && skip "no small file system can be mounted here (${reasons[*]})"
finish
