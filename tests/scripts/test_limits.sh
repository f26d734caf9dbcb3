#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_limits.sh - SPILL_MAX and SPILL_MIN_FREE hold exactly, on a 128M loop-mounted ext4 image:
# live spilled bytes never pass the cap and the cap is used up to the last block that fits;
# after every allocation the partition keeps at least the reserve (statvfs from inside).
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
mount_ext4 128M "$TEST_TMP/fs" || skip "no ext4 image here: $why"
dir=$TEST_TMP/fs
mib=8 count=16

# run NAME ENV...: the probe fills COUNT x MIB under ENV; sets rc, out, err, stats.
run() {
	local name=$1
	shift
	out=$TEST_TMP/$name.out err=$TEST_TMP/$name.err stats=$TEST_TMP/$name.json
	env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M SPILL_STATS="$stats" "$@" \
		"$probe" fill $count $mib >"$out" 2>"$err"
	rc=$?
	echo "$name: exit $rc: $(grep '^fill:' "$out")"
	echo "    stats: $(cat "$stats" 2>/dev/null)"
}

field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$stats"; }

# SPILL_MAX=40M, 8 MiB blocks: exactly 5 spill, never more live than the cap (the probe checks
# after each allocation, the stats give the peak); with null the 11 others are refused.
for mode in null ram; do
	run max-$mode SPILL_MAX=40M SPILL_ON_FAIL=$mode SPILL_MIN_FREE=0 PROBE_MAX=$((40 << 20))
	if [ "$rc" = 0 ] && grep -qx ok "$out" && grep -q " spilled=5 " "$out" &&
	   [ "$(field spilled_bytes_peak)" -le $((40 << 20)) ] && [ "$(field spilled_allocs)" = 5 ]; then
		pass "SPILL_MAX=40M ($mode): 5 x 8 MiB spilled, peak $(field spilled_bytes_peak) <= cap"
	else
		fail "SPILL_MAX=40M ($mode): expected exactly 5 spilled blocks and peak <= 40M"
		sed 's/^/    /' "$out" "$err" | head
	fi
done
# The cap is on live bytes: freeing makes room again (fill frees all at the end, then a second
# process-independent check is the stats' live count going back to 0).
[ "$(field spilled_bytes_live)" = 0 ] && pass "SPILL_MAX: live bytes back to 0 after the frees" ||
	fail "SPILL_MAX: spilled_bytes_live=$(field spilled_bytes_live) at exit, expected 0"

# SPILL_MIN_FREE as bytes and as a percentage: statvfs never below it, and the space above the
# reserve is used (what is left is less than one more block).
total=$(fs_total "$dir")
for spec in 48M 50%; do
	case $spec in
	*%) reserve=$((total / 100 * ${spec%\%} + total % 100 * ${spec%\%} / 100)) ;;
	*M) reserve=$((${spec%M} << 20)) ;;
	esac
	before=$(avail "$dir")
	run minfree-$spec SPILL_MIN_FREE=$spec SPILL_ON_FAIL=null PROBE_STATDIR="$dir" PROBE_RESERVE=$reserve
	min_avail=$(sed -n 's/.* min_avail=\([0-9]*\).*/\1/p' "$out")
	echo "    partition: total=$total available_before=$before reserve=$reserve min_available=$min_avail"
	if [ "$rc" = 0 ] && grep -qx ok "$out" && [ "${min_avail:-0}" -ge "$reserve" ]; then
		pass "SPILL_MIN_FREE=$spec: available space never below $reserve bytes"
	else
		fail "SPILL_MIN_FREE=$spec: available space fell to ${min_avail:-?} < reserve $reserve"
		sed 's/^/    /' "$out" "$err" | head
	fi
	if [ "${min_avail:-0}" -lt $((reserve + (mib << 20) + (1 << 20))) ] && grep -q ' spilled=[1-9]' "$out"; then
		pass "SPILL_MIN_FREE=$spec: the space above the reserve was used (less than a block left)"
	else
		fail "SPILL_MIN_FREE=$spec: $((min_avail - reserve)) bytes above the reserve stayed unused"
	fi
done
finish
