#!/usr/bin/env bash
# SPILL_WHEN=pressure under a memory cap: with room to spare nothing spills; with a cap at a
# quarter of the working set it spills enough to finish where plain malloc is OOM-killed.
set -u
memcap=$SPILL_SRC/scripts/memcap
hog=$SPILL_BUILD/programs/memhog
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }

# memcap LIMIT STATS -- args: the working set is 16 x 32 MiB = 512 MiB, all live, re-read at the end.
run() {
	local cap=$1 stats=$2; shift 2
	"$memcap" "$cap" --report "$TEST_TMP/report" -- env "$@" "$hog" -n 16 -s 32 -k all -r \
		>"$TEST_TMP/out" 2>"$TEST_TMP/err"
	local rc=$?
	if [ $rc = 125 ]; then
		echo "no memory cgroup can be made here: $(cat "$TEST_TMP/err")"
		exit 77
	fi
	[ -n "$stats" ] && [ ! -s "$stats" ] && echo "no stats in $stats"
	return $rc
}
spill_env=(LD_PRELOAD="$SPILL_LIB" SPILL_THRESHOLD=1M SPILL_DIR="$TEST_TMP" SPILL_WHEN=pressure)
expected=$("$hog" -n 16 -s 32 -k none | sed -n 's/.*checksum=//p')

# A cap far above the working set: RAM serves everything.
run 2G "$TEST_TMP/big.json" "${spill_env[@]}" SPILL_STATS="$TEST_TMP/big.json"
check "generous cap: exit 0" "[ $? = 0 ]"
check "generous cap: nothing spilled" "[ \"$(field "$TEST_TMP/big.json" spilled_allocs)\" = 0 ]"
check "generous cap: 16 requests kept in RAM" \
	"grep -q '\"memory_available\":16' '$TEST_TMP/big.json'"
check "generous cap: correct results" "grep -q \"checksum=$expected\" '$TEST_TMP/out'"

# Plain malloc under a cap of a quarter of the working set is killed: the cap is real.
run 128M "" LD_PRELOAD=
rc=$?
check "quarter cap, plain malloc: OOM-killed (status $rc)" "[ $rc = 137 ] && grep -q oom_killed=yes '$TEST_TMP/report'"

# The same cap in pressure mode: part stays in RAM, the rest spills, the results are right.
run 128M "$TEST_TMP/small.json" "${spill_env[@]}" SPILL_STATS="$TEST_TMP/small.json"
rc=$?
check "quarter cap, pressure mode: completes (status $rc)" "[ $rc = 0 ] && grep -q oom_killed=no '$TEST_TMP/report'"
check "quarter cap, pressure mode: correct results" "grep -q \"checksum=$expected\" '$TEST_TMP/out'"
spilled=$(field "$TEST_TMP/small.json" spilled_allocs)
check "quarter cap, pressure mode: spilled some ($spilled of 16) but not all" \
	"[ \"${spilled:-0}\" -ge 8 ] && [ \"${spilled:-0}\" -lt 16 ]"
cat "$TEST_TMP/small.json"
exit $fail
