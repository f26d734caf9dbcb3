#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_stats_io.sh - disk traffic in the statistics: a job that writes 1 GiB of spilled memory
# and reads it back reports at least 700 MiB read back from disk under a 256M memory cap, and
# (nearly) none without a cap; the --stats summary says the same. Skips (77) only when
# scripts/memcap cannot make a memory cgroup here. STATS_IO_MIB=N scales it all to an N MiB
# job (a multiple of 64; check-vm runs 384 under emulation).
# shellcheck disable=SC2015 # pass never fails
set -u
. "$(dirname "$0")/fslib.sh"
[ -f "$SPILL_LIB" ] || { echo "FAIL: $SPILL_LIB is not built (run make)"; exit 1; }
memhog=$SPILL_BUILD/programs/memhog
if [ ! -x "$memhog" ]; then
	memhog=$TEST_TMP/memhog
	cc -std=c11 -D_GNU_SOURCE -O2 -o "$memhog" "$SPILL_SRC/programs/memhog.c" ||
		{ echo "FAIL: cannot build programs/memhog.c"; exit 1; }
fi
memcap=$SPILL_SRC/scripts/memcap
dir=$TEST_TMP/spill
mkdir -p "$dir"
size=${STATS_IO_MIB:-1024}
job=("$memhog" -n $((size / 64)) -s 64 -k all -r)	# 64 MiB blocks written, kept, then all read back
MiB=$((1 << 20))
# of 1 GiB: a 256M cap, 700 MiB read back, 900 MiB resident at the peak. The peak is a sample,
# rate-limited by its own cost (seconds apart under emulation): it may miss the last block.
cap=$((size / 4)) most=$((size * 700 / 1024)) all=$(((size - 64) * 900 / 960))

# field FILE KEY: the number KEY in the JSON line of FILE ("null" or nothing if unknown).
field() {
	sed -n "s/.*\"$2\":\([0-9]*\|null\).*/\1/p" "$1" | head -n 1
}

"$memcap" 64M --quiet -- true 2>probe.err
if [ $? = 125 ]; then
	cat probe.err
	echo "memcap cannot make a memory cgroup here: $(tail -n 1 probe.err)"
	exit 77
fi

# Under the cap: most of it must come back from disk.
"$memcap" ${cap}M --report capped.report -- env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M \
	SPILL_STATS="$TEST_TMP/capped.json" "${job[@]}" >capped.out 2>&1
rc=$?
echo "capped: exit $rc, $(tr '\n' ' ' <capped.report)"
echo "    $(cat capped.json)"
[ $rc = 0 ] && grep -q '^ok' capped.out && pass "$size MiB written and read back under a ${cap}M cap" ||
	fail "the capped job: exit $rc, $(cat capped.out)"
rd=$(field capped.json disk_read_bytes)
[ "${rd:-0}" != null ] && [ "${rd:-0}" -ge $((most * MiB)) ] &&
	pass "disk_read_bytes $((rd / MiB)) MiB >= $most MiB under the cap" ||
	fail "disk_read_bytes is '$rd' under the cap, want >= $most MiB"
wr=$(field capped.json disk_write_bytes)
[ "${wr:-0}" != null ] && [ "${wr:-0}" -ge $((most * MiB)) ] &&
	pass "disk_write_bytes $((wr / MiB)) MiB >= $most MiB: the cap made the kernel write it out" ||
	fail "disk_write_bytes is '$wr' under the cap, want >= $most MiB"
flt=$(field capped.json major_faults)
[ "${flt:-0}" != null ] && [ "${flt:-0}" -gt 0 ] && pass "major_faults $flt > 0" || fail "major_faults is '$flt'"
res=$(field capped.json resident_bytes_peak)
[ "${res:-0}" -gt $((16 * MiB)) ] && [ "${res:-0}" -le $((cap * MiB)) ] &&
	pass "resident_bytes_peak $((res / MiB)) MiB: within the cap" ||
	fail "resident_bytes_peak is '$res', want between 16 MiB and the $cap MiB cap"
el=$(field capped.json elapsed_ms)
[ "${el:-null}" != null ] && [ "$el" -gt 0 ] && pass "elapsed_ms $el" || fail "elapsed_ms is '$el'"

# Without a cap: it all stays in RAM, so (nearly) nothing is read back.
env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M SPILL_STATS="$TEST_TMP/free.json" \
	"${job[@]}" >free.out 2>&1
rc=$?
echo "no cap: exit $rc; $(cat free.json)"
rd=$(field free.json disk_read_bytes)
[ $rc = 0 ] && [ "${rd:-null}" != null ] && [ "$rd" -lt $((64 * MiB)) ] &&
	pass "without a cap disk_read_bytes is $((rd / MiB)) MiB (< 64 MiB)" ||
	fail "without a cap: exit $rc, disk_read_bytes '$rd', want < 64 MiB"
res=$(field free.json resident_bytes_peak)
[ "${res:-0}" -ge $((all * MiB)) ] && pass "resident_bytes_peak $((res / MiB)) MiB: all of it was in RAM" ||
	fail "without a cap resident_bytes_peak is '$res', want >= $all MiB"

# The wrapper's summary under the cap says it too.
"$memcap" ${cap}M --quiet -- "$SPILL_BUILD/spill" -t 1M -d "$dir" --stats -- "${job[@]}" >sum.out 2>sum.err
rc=$?
grep '^spill:' sum.err
line=$(grep '^spill:   read from disk ' sum.err)
if [ $rc = 0 ] && [[ $line =~ ([0-9]+)\.[0-9]\ (MiB|GiB) ]]; then
	n=${BASH_REMATCH[1]}
	[ "${BASH_REMATCH[2]}" = GiB ] && n=$((n * 1024))
	[ "$n" -ge $most ] && pass "--stats summary: \"${line#spill:   }\"" || fail "--stats summary: $line"
else
	fail "--stats summary under the cap: exit $rc, \"$line\""
fi
for want in 'peak spilled in RAM' 'major faults' 'written to disk' 'elapsed'; do
	grep -q "^spill:   $want " sum.err || fail "the summary has no \"$want\" line"
done

finish
