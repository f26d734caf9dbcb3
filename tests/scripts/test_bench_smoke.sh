#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_bench_smoke.sh - every bench program runs once at a tiny size, plain and under libspill,
# exits 0 and prints a sane "result" line; scripts/bench.sh at least parses. Not timed.
set -u
SPILL_SRC=${SPILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SPILL_BUILD=${SPILL_BUILD:-$SPILL_SRC/build}
SPILL_LIB=${SPILL_LIB:-$SPILL_BUILD/libspill.so}
if [ -z "${TEST_TMP:-}" ]; then
	TEST_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/spill-test.XXXXXX")
	trap 'rm -rf "$TEST_TMP"' EXIT
fi
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

[ -f "$SPILL_LIB" ] || { echo "FAIL: $SPILL_LIB is not built (run make)"; exit 1; }

# prog NAME: the built bench program, or one compiled here from bench/NAME.c.
prog() {
	local b=$SPILL_BUILD/bench/$1
	if [ ! -x "$b" ]; then
		b=$TEST_TMP/$1
		[ -x "$b" ] || cc -std=c11 -D_GNU_SOURCE -O2 -o "$b" "$SPILL_SRC/bench/$1.c" -lpthread -lm ||
			{ echo "FAIL: cannot build bench/$1.c" >&2; return 1; }
	fi
	echo "$b"
}

# check KIND WANT NAME ARGS...: run bench program NAME (KIND plain or spill); its stdout must
# have a "result" line matching the extended regex WANT.
check() {
	local kind=$1 want=$2 name=$3 b out=$TEST_TMP/out err=$TEST_TMP/err rc
	shift 3
	b=$(prog "$name") || { fail "$name: not built"; return; }
	if [ "$kind" = spill ]; then
		env LD_PRELOAD="$SPILL_LIB" SPILL_THRESHOLD=64K SPILL_DIR="$TEST_TMP" \
			SPILL_STATS="$TEST_TMP/stats.%p.json" "$b" "$@" >"$out" 2>"$err"
	else
		"$b" "$@" >"$out" 2>"$err"
	fi
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$kind $name $*: exit $rc: $(head -c 300 "$err")"
	elif ! grep -Eq "^result .*$want" "$out"; then
		fail "$kind $name $*: no result line matching '$want' in: $(head -c 300 "$out")"
	elif grep -q . "$err"; then
		fail "$kind $name $*: unexpected stderr: $(head -c 300 "$err")"
	else
		echo "ok: $kind $name $*"
	fi
}

num='[0-9]+(\.[0-9]+)?'
for kind in plain spill; do
	check "$kind" "seconds=$num cpu_s=$num ops=2000 " churn -t 2 -n 1000 -k 16
	check "$kind" "pairs=3 us_per_pair=$num checksum=3" bigpair -s 1 -n 3
	check "$kind" "pairs=3 us_per_pair=$num" bigpair -s 1 -n 3 -w
	check "$kind" "seconds=$num write_s=$num read_s=$num checksum=" fill -s 8
	check "$kind" "first_s=$num last_s=$num last_over_first=$num" regrow -s 1 -e 8
	[ "$(grep -c '^step ' "$TEST_TMP/out")" = 3 ] || fail "$kind regrow: expected 3 step lines"
	check "$kind" "write_s=$num read_s=$num write_mbs=$num read_mbs=$num" iojob -s 8
	check "$kind" "fork_s=$num child_start_s=$num total_s=$num" forkcopy -s 4
	check "$kind" "scan_s=$num sync_s=$num dirty_mib=-?[0-9]+ used_start=$num used_written=$num used_child=$num used_end=$num" \
		forkcopy -s 4 -y -d "$TEST_TMP"
	# libspill places the blocker right after the block, so its realloc must move; glibc may mremap in place
	moved='[01]'
	[ "$kind" = spill ] && moved=1
	check "$kind" "realloc_s=$num read_s=$num moved=$moved sync_s=$num dirty_mib=-?[0-9]+" movecopy -s 4 -b 1
	check "$kind" "used_start=$num used_written=$num used_moved=$num used_end=$num" movecopy -s 4 -b 1 -y -d "$TEST_TMP"
	check "$kind" "fds_before=[0-9]+ fds_live=[0-9]+ maps_before=[0-9]+ maps_live=[0-9]+ max_map_count=" \
		manyblocks -n 100 -s 4096
	check "$kind" "free_s=0.000000" manyblocks -n 10 -s 4096 -k
done
# The spill runs did spill (so the smoke test covers the spilled paths too).
spilled=$(cat "$TEST_TMP"/stats.*.json 2>/dev/null | grep -c '"spilled_allocs":[1-9]')
[ "$spilled" -ge 9 ] || fail "only $spilled libspill runs spilled anything (SPILL_STATS)"

for s in bench.sh fs-copy-bench.sh; do
	bash -n "$SPILL_SRC/scripts/$s" || fail "scripts/$s does not parse"
	if command -v shellcheck >/dev/null; then
		shellcheck "$SPILL_SRC/scripts/$s" || fail "shellcheck scripts/$s"
	fi
done

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all bench programs ran"
