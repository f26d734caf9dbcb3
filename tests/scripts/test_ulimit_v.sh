#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ulimit_v.sh - under ulimit -v 2 GiB (far below the default 1 TiB reservation) a program
# still spills (the reservation shrinks to fit) and its small allocations keep working.
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
mkdir -p "$TEST_TMP/spill"
out=$TEST_TMP/out err=$TEST_TMP/err
(
	ulimit -v $((2 << 20)) || exit 99	# KiB
	env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$TEST_TMP/spill" SPILL_THRESHOLD=1M \
		SPILL_STATS="$TEST_TMP/stats.json" "$probe" fill 8 32
) >"$out" 2>"$err"
rc=$?
[ $rc = 99 ] && skip "ulimit -v cannot be set here"
echo "ulimit -v 2GiB: exit $rc: $(grep '^fill:' "$out")"
echo "    stats: $(cat "$TEST_TMP/stats.json" 2>/dev/null)"
if [ $rc = 0 ] && grep -qx ok "$out" && grep -q ' spilled=8 ram=0 ' "$out"; then
	pass "ulimit -v 2GiB: 8 x 32 MiB spilled and correct"
else
	fail "ulimit -v 2GiB: expected all 8 blocks spilled (exit $rc)"
	sed 's/^/    /' "$out" "$err" | head
fi
grep -q '^libspill: ' "$err" && fail "messages under ulimit -v: $(grep '^libspill: ' "$err")"
# Small allocations beside a spilled block, under a tighter limit still (the probe does 64).
(
	ulimit -v $((512 << 10))
	env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$TEST_TMP/spill" SPILL_THRESHOLD=1M "$probe" spills 16
) >"$out" 2>"$err"
rc=$?
if [ $rc = 0 ] && grep -qx 'spilled=1' "$out"; then
	pass "ulimit -v 512MiB: a 16 MiB block spills and small allocations work"
else
	fail "ulimit -v 512MiB: exit $rc, $(cat "$out" "$err")"
fi
finish
