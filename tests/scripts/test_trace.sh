#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_trace.sh - spill --trace writes one row per interval with every column filled, and
# spill plot draws it; empty, truncated and damaged traces get one clear message and no PNG;
# a trace file that cannot be written stops the wrapper before the command runs (exit 2).
# shellcheck disable=SC2015 # pass never fails
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
spill=$SPILL_BUILD/spill
dir=$TEST_TMP/spill
mkdir -p "$dir"
hold=$TEST_TMP/hold
mkfifo "$hold"
cols='time_s	rss_bytes	spilled_resident_bytes	spilled_dirty_bytes	disk_used_bytes	cgroup_usage_bytes	cgroup_limit_bytes	major_faults	read_bytes	write_bytes'

# rows FILE: data rows written so far.
rows() {
	local n=1
	[ ! -f "$1" ] || n=$(wc -l <"$1")
	echo $((n > 0 ? n - 1 : 0))
}

# 1. A spilling program traced until it has written its blocks and the trace has a few rows
# more: then it is let go.
exec 3<>"$hold"
"$spill" -t 1M -d "$dir" --trace trace.tsv --stats -- "$probe" report 8,16 100 <"$hold" >run.out 2>run.err 3>&- &
run=$!
# it has written its blocks when it reports (slow under emulation); then 3 rows more
for ((i = 0; i < 600; i++)); do grep -q '^pid=' run.out 2>/dev/null && break; sleep 0.05; done
ready=$(rows trace.tsv)
for ((i = 0; i < 600 && $(rows trace.tsv) < (ready > 2 ? ready + 3 : 5); i++)); do sleep 0.05; done
exec 3>&-
wait "$run"
rc=$?
echo "run: exit $rc, $(rows trace.tsv) rows; $(cat run.out)"
head -n 3 trace.tsv
[ $rc = 0 ] && pass "spill --trace --stats runs the command (exit 0)" || fail "spill --trace exited $rc: $(cat run.err)"
grep -q '^spill:   read from disk ' run.err && pass "the --stats summary is there too" || fail "no summary: $(cat run.err)"
[ "$(head -n 1 trace.tsv)" = "$cols" ] && pass "the header names the ten columns" || fail "header: $(head -n 1 trace.tsv)"
if python3 - trace.tsv <<'EOF' 2>err
import sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "the last row has no newline"
rows = [l.split("\t") for l in lines[1:-1]]
assert len(rows) >= 5, "%d rows" % len(rows)
t = []
for n, r in enumerate(rows, 2):
    assert len(r) == 10, "line %d: %d fields" % (n, len(r))
    for k, x in enumerate(r):
        assert x != "" and x != "-", "line %d column %d is empty" % (n, k + 1)
        if not (k == 6 and x == "max"):
            float(x)
    t.append(float(r[0]))
assert all(b > a for a, b in zip(t, t[1:])), "time does not increase"
# never more than one row per interval: the schedule skips ticks, it does not bunch them
assert len(rows) <= t[-1] / 0.1 + 2, "%d rows in %.3f s" % (len(rows), t[-1])
spilled = max(float(r[2]) for r in rows)
disk = max(float(r[4]) for r in rows)
assert spilled >= 24 << 20, "spilled resident never reached the 24 MiB written: %d" % spilled
assert disk >= 24 << 20, "disk used never reached 24 MiB: %d" % disk
print("%d rows over %.2f s, every column filled; spilled resident up to %d MiB" % (len(rows), t[-1], spilled / 2**20))
EOF
then
	pass "trace rows: at most one per interval, every column filled, time increasing"
else
	fail "trace rows: $(cat err)"
fi

# 2. spill plot: a PNG, by default beside the trace; two traces side by side with -o.
"$spill" plot trace.tsv >plot.out 2>plot.err
rc=$?
[ $rc = 0 ] && [ "$(head -c 8 trace.png | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] &&
	pass "spill plot trace.tsv made trace.png ($(stat -c %s trace.png) bytes)" ||
	fail "spill plot: exit $rc, $(cat plot.err)"
cp trace.tsv again.tsv
"$spill" plot -o both.png -t "first run" trace.tsv -t "second run" again.tsv >plot.out 2>plot.err
rc=$?
[ $rc = 0 ] && [ -s both.png ] && [ "$(cat plot.out)" = both.png ] &&
	pass "two traces side by side in both.png" || fail "spill plot -o both.png: exit $rc, $(cat plot.err)"

# 3. Bad traces: one clear line, exit 1, no PNG and no half-written one.
# bad NAME WHAT: spill plot on NAME must fail saying WHAT.
bad() {
	rm -f out.png out.png.*
	"$spill" plot -o out.png "$1" >bad.out 2>bad.err
	local rc=$?
	if [ $rc = 1 ] && [ "$(wc -l <bad.err)" = 1 ] && grep -q "$2" bad.err && ! grep -qi traceback bad.err &&
		[ -z "$(ls out.png* 2>/dev/null)" ]; then
		pass "plot $1: exit 1, \"$(cat bad.err)\", no PNG"
	else
		fail "plot $1: exit $rc, $(cat bad.err bad.out), files: $(ls out.png* 2>/dev/null)"
	fi
}
: >empty.tsv
bad empty.tsv "is empty"
head -n 1 trace.tsv >header.tsv
bad header.tsv "no samples"
head -n 2 trace.tsv >one.tsv
bad one.tsv "one sample only"
head -c $(($(stat -c %s trace.tsv) - 3)) trace.tsv >cut.tsv
bad cut.tsv "truncated"
{ head -n 3 trace.tsv; printf '1.5\t12\t3\n'; tail -n 2 trace.tsv; } >short.tsv
bad short.tsv "fields where the header has"
{ head -n 2 trace.tsv; head -n 2 trace.tsv | tail -n 1; } >backwards.tsv
bad backwards.tsv "time does not increase"
sed '3s/^\([^\t]*\)\t[^\t]*/\1\tlots/' trace.tsv >word.tsv
bad word.tsv "not a number"
printf 'hello\nworld\n' >other.tsv
bad other.tsv "not a spill trace"
bad missing.tsv "cannot read"
"$spill" plot >bad.out 2>bad.err
[ $? = 2 ] && pass "plot without a trace: exit 2, \"$(cat bad.err)\"" || fail "plot without a trace: $(cat bad.err)"

# 4. A trace file that cannot be written: said before the command starts, exit 2.
# unwritable FILE WHAT
unwritable() {
	rm -f ran
	"$spill" --trace "$1" -- touch ran >out 2>err
	local rc=$?
	if [ $rc = 2 ] && grep -q "$2" err && [ ! -e ran ]; then
		pass "--trace $1: exit 2 before the command ran: $(head -n 1 err)"
	else
		fail "--trace $1: exit $rc, ran: $([ -e ran ] && echo yes || echo no), $(cat err)"
	fi
}
unwritable "$TEST_TMP/no/such/dir/t.tsv" "cannot be written"
unwritable "$TEST_TMP" "is a directory"
unwritable /dev/full "cannot be written (No space left on device)"	# opens, but every write fails
"$spill" --trace >out 2>err
[ $? = 2 ] && pass "--trace without a file: exit 2" || fail "--trace without a file: $(cat err)"

finish
