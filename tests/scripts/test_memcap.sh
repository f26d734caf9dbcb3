#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_memcap.sh - scripts/memcap: report line and file, exit status, OOM detection, trace, cleanup.
# Skips (77) only when memcap cannot create a memory cgroup here (it exits 125).
set -u
SPILL_SRC=${SPILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SPILL_BUILD=${SPILL_BUILD:-$SPILL_SRC/build}
if [ -z "${TEST_TMP:-}" ]; then
	TEST_TMP=$(mktemp -d)
	trap 'rm -rf "$TEST_TMP"' EXIT
fi
memcap=$SPILL_SRC/scripts/memcap
memhog=$SPILL_BUILD/programs/memhog
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

if [ ! -x "$memhog" ]; then
	memhog=$TEST_TMP/memhog
	cc -std=c11 -D_GNU_SOURCE -O2 -o "$memhog" "$SPILL_SRC/programs/memhog.c" ||
		{ echo "cannot build programs/memhog.c"; exit 1; }
fi

# Our memory cgroup directory (v1 memory hierarchy, else v2), to look for leftover groups.
cgdir=''
if line=$(grep -m1 -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup); then
	cgdir=$(awk '$9 == "cgroup" && $NF ~ /(^|,)memory(,|$)/ { print $5; exit }' /proc/self/mountinfo)${line#*:*:}
elif line=$(grep -m1 '^0::' /proc/self/cgroup); then
	cgdir=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)${line#0::}
fi

# run NAME LIMIT [memcap options] -- COMMAND...: sets rc, err (stderr file), out and mpid.
run() {
	local name=$1
	shift
	out=$TEST_TMP/$name.out err=$TEST_TMP/$name.err
	"$memcap" "$@" >"$out" 2>"$err" &
	mpid=$!
	wait "$mpid"
	rc=$?
}

# report_ok NAME: the stderr report line is there, once, in the documented shape.
report_line='^memcap: limit=[0-9]+ peak=[0-9]+ oom_killed=(yes|no) status=[0-9]+ elapsed=[0-9]+\.[0-9]{2}$'
report_ok() {
	local n
	n=$(grep -cE "$report_line" "$err")
	[ "$n" = 1 ] || { fail "$1: expected one report line on stderr, got $n:"; sed 's/^/    /' "$err"; }
}

# field NAME: a value from the stderr report line.
field() {
	grep -E "$report_line" "$err" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# no_leftover NAME: memcap removed its group (memcap.<its pid>.*).
no_leftover() {
	[ -n "$cgdir" ] || return 0
	local left
	left=$(find "$cgdir" -maxdepth 1 -name "memcap.$mpid.*" 2>/dev/null)
	[ -z "$left" ] || fail "$1: group left behind: $left"
}

# 1. exit status passes through; report file; group removed
run status 64M --report "$TEST_TMP/status.report" -- sh -c 'exit 7'
if [ "$rc" = 125 ]; then
	cat "$err"
	echo "memcap cannot create a memory cgroup here: $(tail -n 1 "$err")"
	exit 77
fi
[ "$rc" = 7 ] || fail "sh -c 'exit 7': exit status $rc, expected 7"
report_ok status
[ "$(field status)" = 7 ] || fail "status: report says status=$(field status)"
[ "$(field limit)" = 67108864 ] || fail "status: report says limit=$(field limit), expected 67108864"
[ "$(field oom_killed)" = no ] || fail "status: report says oom_killed=$(field oom_killed)"
expected=$(printf 'limit=67108864\npeak=%s\noom_killed=no\nstatus=7\nelapsed=%s' "$(field peak)" "$(field elapsed)")
[ "$(cat "$TEST_TMP/status.report")" = "$expected" ] ||
	{ fail "status: --report file differs:"; sed 's/^/    /' "$TEST_TMP/status.report"; }
no_leftover status
echo "status passes through: $(grep -E "$report_line" "$err")"

# 2. a signal death is reported as 128+signal
run signal 64M -- sh -c 'kill -TERM $$'
[ "$rc" = 143 ] || fail "sh killed by TERM: exit status $rc, expected 143"
[ "$(field status)" = 143 ] || fail "signal: report says status=$(field status)"
no_leftover signal

# 3. a small command under a generous limit: no OOM, peak reported
run small 512M -- "$memhog" -n 2 -s 16 -r
[ "$rc" = 0 ] || fail "memhog 2x16 MiB under 512M: exit status $rc"
report_ok small
grep -qx ok "$out" || fail "small: memhog did not print ok"
[ "$(field oom_killed)" = no ] || fail "small: oom_killed=$(field oom_killed), expected no"
peak=$(field peak)
if [ "${peak:-0}" -lt $((32 << 20)) ] || [ "$peak" -gt $((512 << 20)) ]; then
	fail "small: peak=$peak, expected between 32 MiB (the live buffers) and the limit"
fi
no_leftover small
echo "generous limit: $(grep -E "$report_line" "$err")"

# 4. 4x the limit, all live: OOM-killed, and memcap says so
start=$SECONDS
run oom 64M --report "$TEST_TMP/oom.report" -- "$memhog" -n 4 -s 64 -k all
[ "$rc" = 137 ] || fail "memhog 4x64 MiB under 64M: exit status $rc, expected 137 (OOM kill)"
report_ok oom
[ "$(field oom_killed)" = yes ] || fail "oom: oom_killed=$(field oom_killed), expected yes"
[ "$(field status)" = 137 ] || fail "oom: report says status=$(field status)"
[ "$(field peak)" -le $((64 << 20)) ] || fail "oom: peak=$(field peak) is above the limit"
grep -qx 'oom_killed=yes' "$TEST_TMP/oom.report" || fail "oom: report file lacks oom_killed=yes"
! grep -qx ok "$out" || fail "oom: memhog finished although it should have been killed"
no_leftover oom
echo "4x the limit: $(grep -E "$report_line" "$err") ($((SECONDS - start)) s)"

# 5. --trace samples usage and RSS while the command runs
run trace 256M --trace "$TEST_TMP/trace.tsv" --interval 20 -- "$memhog" -n 3 -s 32 -r
[ "$rc" = 0 ] || fail "trace: memhog exit status $rc"
samples=$(wc -l <"$TEST_TMP/trace.tsv")
bad=$(grep -cvE '^[0-9]+\.[0-9]{3}	[0-9]+	[0-9]+$' "$TEST_TMP/trace.tsv")
max_usage=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TEST_TMP/trace.tsv")
max_rss=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$TEST_TMP/trace.tsv")
[ "$samples" -ge 3 ] || fail "trace: only $samples samples"
[ "$bad" = 0 ] || { fail "trace: $bad malformed lines:"; head -n 5 "$TEST_TMP/trace.tsv" | sed 's/^/    /'; }
[ "$max_usage" -ge $((32 << 20)) ] || fail "trace: usage never reached 32 MiB (max $max_usage)"
[ "$max_rss" -ge $((32 << 20)) ] || fail "trace: RSS never reached 32 MiB (max $max_rss)"
sort -c -n -k1,1 "$TEST_TMP/trace.tsv" 2>/dev/null || fail "trace: timestamps are not in order"
no_leftover trace
echo "trace: $samples samples, max usage $max_usage, max rss $max_rss"

# 6. a process left running in the group is moved out, not waited for, and the group goes away
run leftover 64M -- sh -c 'sleep 3 & exit 0'
[ "$rc" = 0 ] || fail "leftover: exit status $rc"
elapsed=$(field elapsed)
[ "${elapsed%%.*}" -lt 3 ] || fail "leftover: memcap waited ${elapsed}s for the background sleep"
no_leftover leftover

# 7. usage errors: exit 2, "memcap: error: ..." and the usage line
check_usage() {
	local rc2
	"$memcap" "$@" >"$TEST_TMP/usage.out" 2>"$TEST_TMP/usage.err"
	rc2=$?
	[ "$rc2" = 2 ] || fail "memcap $*: exit status $rc2, expected 2"
	grep -q '^memcap: error: ' "$TEST_TMP/usage.err" || fail "memcap $*: no 'memcap: error:' line"
	grep -q '^usage: memcap LIMIT' "$TEST_TMP/usage.err" || fail "memcap $*: no usage line"
}
check_usage
check_usage 64M
check_usage 64M --
check_usage 12Q -- true
check_usage 0 -- true
check_usage 64M --interval x -- true
check_usage 64M --trace
check_usage 64M --frobnicate -- true
echo "usage errors exit 2"

# 8. sizes: K/M/G suffixes are binary
run sizes 3G --quiet --report "$TEST_TMP/sizes.report" -- true
[ "$rc" = 0 ] || fail "sizes: exit status $rc"
grep -qx "limit=$((3 << 30))" "$TEST_TMP/sizes.report" || fail "sizes: 3G is not $((3 << 30)) bytes"
[ ! -s "$err" ] || { fail "sizes: --quiet still printed:"; sed 's/^/    /' "$err"; }

if [ "$failures" -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all memcap checks passed"
