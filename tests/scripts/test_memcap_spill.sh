#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_memcap_spill.sh - the project's key proof: under a real memory cap, a program whose live
# buffers total 4x the cap is OOM-killed on its own and completes correctly with libspill.
# Skips (77) only when memcap cannot create a memory cgroup here (it exits 125).
set -u
SPILL_SRC=${SPILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SPILL_BUILD=${SPILL_BUILD:-$SPILL_SRC/build}
SPILL_LIB=${SPILL_LIB:-$SPILL_BUILD/libspill.so}
if [ -z "${TEST_TMP:-}" ]; then
	TEST_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/spill-test.XXXXXX")
	trap 'rm -rf "$TEST_TMP"' EXIT
fi
memcap=$SPILL_SRC/scripts/memcap
memhog=$SPILL_BUILD/programs/memhog
python=/usr/bin/python3
# 8 x 64 MiB = 512 MiB live = 4x the cap (MEMCAP_SPILL_CAP, _COUNT, _MIB: smaller under emulation)
cap=${MEMCAP_SPILL_CAP:-128M} count=${MEMCAP_SPILL_COUNT:-8} size_mib=${MEMCAP_SPILL_MIB:-64}
failures=0 notices=()

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

[ -f "$SPILL_LIB" ] || { echo "FAIL: $SPILL_LIB is not built (run make)"; exit 1; }
if [ ! -x "$memhog" ]; then
	memhog=$TEST_TMP/memhog
	cc -std=c11 -D_GNU_SOURCE -O2 -o "$memhog" "$SPILL_SRC/programs/memhog.c" ||
		{ echo "FAIL: cannot build programs/memhog.c"; exit 1; }
fi
spill_env=(LD_PRELOAD="$SPILL_LIB" SPILL_THRESHOLD=1M SPILL_DIR="$TEST_TMP")

# capped NAME COMMAND...: run COMMAND under memcap $cap; sets rc, out, err, report (key=value file).
capped() {
	local name=$1
	shift
	out=$TEST_TMP/$name.out err=$TEST_TMP/$name.err report=$TEST_TMP/$name.report
	"$memcap" "$cap" --report "$report" -- "$@" >"$out" 2>"$err"
	rc=$?
	if [ "$rc" = 125 ]; then
		cat "$err"
		echo "memcap cannot create a memory cgroup here: $(tail -n 1 "$err")"
		exit 77
	fi
}

# get KEY: a value from the last --report file.
get() {
	sed -n "s/^$1=//p" "$report"
}

# show NAME: what memcap measured, for the log.
show() {
	echo "$1: exit $rc, $(grep '^memcap: limit=' "$err")"
}

# The expected checksum, from a run that never holds more than one buffer.
"$memhog" -n "$count" -s "$size_mib" -k none >"$TEST_TMP/ref.out" 2>&1 ||
	{ echo "FAIL: memhog reference run failed:"; cat "$TEST_TMP/ref.out"; exit 1; }
ref_sum=$(sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p' "$TEST_TMP/ref.out")

# 1. Without libspill the cap is real: the 4x workload is OOM-killed.
capped plain "$memhog" -n "$count" -s "$size_mib" -k all -r
show "memhog ${count}x${size_mib} MiB live, cap $cap, no libspill"
[ "$rc" = 137 ] || fail "without libspill: exit status $rc, expected 137 (OOM kill)"
[ "$(get oom_killed)" = yes ] || fail "without libspill: oom_killed=$(get oom_killed), expected yes"
! grep -qx ok "$out" || fail "without libspill: memhog completed, so the cap did not hold"

# 2. With libspill the same workload completes under the same cap, with correct data.
start=${EPOCHREALTIME/./}
capped spill env "${spill_env[@]}" SPILL_STATS="$TEST_TMP/stats.json" \
	"$memhog" -n "$count" -s "$size_mib" -k all -r
us=$((${EPOCHREALTIME/./} - start))
show "memhog ${count}x${size_mib} MiB live, cap $cap, libspill"
echo "    (wall $((us / 1000)) ms)"
[ "$rc" = 0 ] || { fail "with libspill: exit status $rc, expected 0"; sed 's/^/    /' "$out" "$err"; }
[ "$(get oom_killed)" = no ] || fail "with libspill: oom_killed=$(get oom_killed), expected no"
grep -qx ok "$out" || fail "with libspill: memhog did not print ok"
grep -q "live_peak=$((count * size_mib))MiB rechecked=$count " "$out" ||
	fail "with libspill: memhog did not keep and re-check all $count buffers: $(head -n 1 "$out")"
sum=$(sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p' "$out")
if [ -z "$ref_sum" ] || [ "$sum" != "$ref_sum" ]; then
	fail "with libspill: checksum ${sum:-none}, expected ${ref_sum:-none}"
fi
if [ -s "$TEST_TMP/stats.json" ]; then
	spilled=$(sed -n 's/.*"spilled_bytes_peak":\([0-9]*\).*/\1/p' "$TEST_TMP/stats.json")
	[ "${spilled:-0}" -ge $((count * size_mib << 20)) ] ||
		fail "with libspill: spilled_bytes_peak=${spilled:-none}, expected >= $((count * size_mib)) MiB"
	echo "    stats: $(cat "$TEST_TMP/stats.json")"
else
	notices+=("no SPILL_STATS file was written; spilling is proven only by the cap")
fi

# 3. The same with numpy: arrays of 64 MiB kept live, 4x the cap in all, sums checked twice.
numpy_prog='
import sys
import numpy as np
count, n = int(sys.argv[1]), int(sys.argv[2]) * (1 << 20) // 8
arrays = []
for i in range(count):
    a = np.ones(n)
    a *= i + 1
    assert a.sum() == n * (i + 1), "array %d: bad sum after fill" % i
    arrays.append(a)
for i, a in enumerate(arrays):
    assert a.sum() == n * (i + 1) and a[0] == a[-1] == i + 1, "array %d: bad on re-read" % i
print("numpy arrays=%d live_mib=%d" % (len(arrays), count * n * 8 >> 20))
print("ok")
'
if "$python" -c 'import numpy' 2>/dev/null; then
	capped np_plain "$python" -c "$numpy_prog" "$count" "$size_mib"
	show "numpy ${count}x${size_mib} MiB live, cap $cap, no libspill"
	[ "$rc" = 137 ] || fail "numpy without libspill: exit status $rc, expected 137 (OOM kill)"
	[ "$(get oom_killed)" = yes ] || fail "numpy without libspill: oom_killed=$(get oom_killed)"

	capped np_spill env "${spill_env[@]}" "$python" -c "$numpy_prog" "$count" "$size_mib"
	show "numpy ${count}x${size_mib} MiB live, cap $cap, libspill"
	[ "$rc" = 0 ] || { fail "numpy with libspill: exit status $rc, expected 0"; sed 's/^/    /' "$out" "$err"; }
	[ "$(get oom_killed)" = no ] || fail "numpy with libspill: oom_killed=$(get oom_killed)"
	grep -qx ok "$out" || fail "numpy with libspill: the script did not print ok"
else
	notices+=("numpy part skipped: $python cannot import numpy")
fi

for n in "${notices[@]+"${notices[@]}"}"; do echo "NOTICE: $n"; done
if [ "$failures" -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "libspill let ${count}x${size_mib} MiB live run under a $cap cap that kills it without libspill"
