#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_kill9.sh - nothing is left behind: a process holding 256 MiB spilled and killed with
# SIGKILL, and one that exits normally while a child it forked (and that exec'd) lives on,
# both give the spill partition's free space back exactly and leave no file in SPILL_DIR.
# Uses a dedicated 512M ext4 image, or SPILL_TEST_FS (a fresh file system of its own, tests/vm);
# falls back to the real disk with a tolerance.
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
mib=256
if [ -n "${SPILL_TEST_FS:-}" ]; then
	dir=$SPILL_TEST_FS tolerance=0
	# a third of the free space: the exit test needs room for the child's copy as well
	free_mib=$(($(avail "$dir") >> 20))
	[ $((free_mib / 3)) -lt $mib ] && mib=$((free_mib / 3))
	echo "$(fs_type "$dir") at $dir: $free_mib MiB free, holding $mib MiB"
elif mount_ext4 512M "$TEST_TMP/fs"; then
	dir=$TEST_TMP/fs tolerance=0
else
	echo "NOTICE: $why; using $TEST_TMP on the real disk with a 32 MiB tolerance"
	dir=$TEST_TMP/spill tolerance=$((32 << 20))
	mkdir -p "$dir"
fi

# settle BEFORE: waits (up to 10 s) until the free space is back to BEFORE; prints it. btrfs
# counts freed extents as free only once its transaction commits (every 30 s by default):
# after a second, sync -f commits it.
settle() {
	local now i
	for ((i = 0; i < 100; i++)); do
		now=$(avail "$dir")
		[ $((before - now)) -le "$tolerance" ] && break
		[ $i = 10 ] && sync -f "$dir"
		sleep 0.1
	done
	echo "$now"
}

# 1. SIGKILL while the block is live.
before=$(avail "$dir")
env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M "$probe" hold $mib >"$TEST_TMP/hold.out" 2>&1 &
pid=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$TEST_TMP/hold.out" && break; sleep 0.1; done
# btrfs counts the new extents in statfs only once its transaction commits
[ "$(fs_type "$dir")" = btrfs ] && sync -f "$dir"
during=$(avail "$dir")
echo "held: $(cat "$TEST_TMP/hold.out"); free before=$before during=$during"
if grep -q 'ready spilled=1' "$TEST_TMP/hold.out" && [ $((before - during)) -ge $((mib << 20)) ]; then
	pass "the $mib MiB block is spilled and uses $(((before - during) >> 20)) MiB of the partition"
else
	fail "the block was not spilled on $dir (free space went down by $((before - during)) bytes)"
fi
kill -9 $pid
wait $pid 2>/dev/null
after=$(settle)
echo "after SIGKILL: free=$after (before=$before, difference $((before - after)))"
[ $((before - after)) -le "$tolerance" ] && pass "SIGKILL: all space given back" ||
	fail "SIGKILL: $((before - after)) bytes of the partition stay used"
left=$(find "$dir" -mindepth 1 -not -name lost+found -not -path '*/lost+found/*' | head)
[ -z "$left" ] && pass "SIGKILL: no file left in SPILL_DIR" || fail "SIGKILL: files left: $left"

# 2. Normal exit with the block still live, after a fork whose child exec'd "sleep 10": the
# child's copy of the spill file must close at exec, the parent's at exit.
# 64 MiB, so that the child gets a spill file of its own on the image (256 would not fit twice).
before=$(avail "$dir")
env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M "$probe" exit-child $((mib < 64 ? mib : 64)) 10 \
	>"$TEST_TMP/exit.out" 2>&1
rc=$?
child=$(sed -n 's/^child=//p' "$TEST_TMP/exit.out")
after=$(settle)
echo "exit: status $rc, $(tr '\n' ' ' <"$TEST_TMP/exit.out"); free before=$before after=$after"
grep -q 'spilled=1' "$TEST_TMP/exit.out" || fail "exit: the block was not spilled"
if [ -n "$child" ] && [ -d "/proc/$child" ]; then
	leaked=$(ls -l "/proc/$child/fd" 2>/dev/null | grep -E '\(deleted\)|/#[0-9]|\.libspill-')
	[ -z "$leaked" ] && pass "exec: the forked child that exec'd holds no spill fd" ||
		fail "exec: the child holds a spill fd: $leaked"
	[ $((before - after)) -le "$tolerance" ] &&
		pass "exit: all space given back while the exec'd child still runs" ||
		fail "exit: $((before - after)) bytes stay used while the child (pid $child) runs"
	kill "$child" 2>/dev/null
else
	fail "exit: the background child is not running (status $rc)"
fi
left=$(find "$dir" -mindepth 1 -not -name lost+found -not -path '*/lost+found/*' | head)
[ -z "$left" ] && pass "exit: no file left in SPILL_DIR" || fail "exit: files left: $left"
finish
