#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_top.sh - spill top: with two spilling programs running it lists both, with the figures
# they report about themselves; -p, --json and the text view; bad -p and -d; processes that
# exit while it reads them (one reaped, one left a zombie), and processes it may not read.
# shellcheck disable=SC2015 # pass never fails
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
spill=$SPILL_BUILD/spill
command -v python3 >/dev/null || skip "python3 is needed to read the JSON"
[ -x "$SPILL_BUILD/libspill/spillmon" ] || { echo "FAIL: $SPILL_BUILD/libspill/spillmon is not built (make)"; exit 1; }

dir=$TEST_TMP/spill
mkdir -p "$dir"
hold=$TEST_TMP/hold
mkfifo "$hold"
exec 3<>"$hold"		# the probes hold their blocks until this writer goes
pids=()
# shellcheck disable=SC2317 # runs from the EXIT trap
stop_all() {
	exec 3>&- 4>&- 5>&- 2>/dev/null
	for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	fslib_cleanup
}
trap stop_all EXIT

# start NAME ARGS...: a probe under libspill, reading the hold fifo; sets pid.
start() {
	local name=$1
	shift
	env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M "$probe" "$@" \
		<"$hold" >"$TEST_TMP/$name.out" 2>&1 &
	pid=$!
	pids+=("$pid")
}

# ready NAME: waits until the probe has printed its report (bounded, so a broken probe cannot hang the test).
ready() {
	local i
	for ((i = 0; i < 600; i++)); do
		grep -q '^pid=\|^child=\|FAILED' "$TEST_TMP/$1.out" && break
		sleep 0.05
	done
	grep -q '^pid=\|^child=' "$TEST_TMP/$1.out" || { echo "FAIL: probe $1: $(cat "$TEST_TMP/$1.out")"; exit 1; }
}

# value NAME KEY: KEY=... from the probe's report.
value() {
	sed -n "s/.*[ ^]\?$2=\([0-9]*\).*/\1/p" "$TEST_TMP/$1.out" | head -n 1
}

start a report 3,8,20 50		# three blocks, half of each written
pid_a=$pid
start b report 1,2,5 100	# three blocks, all written
pid_b=$pid
ready a
ready b
echo "probe a: $(cat a.out)"
echo "probe b: $(cat b.out)"

t0=${EPOCHREALTIME/./}
"$spill" top --once --json >top.json 2>top.err
rc=$?
t1=${EPOCHREALTIME/./}
echo "spill top --once --json took $(((t1 - t0) / 1000)) ms (exit $rc)"
[ $rc = 0 ] && pass "spill top --once --json exits 0" || fail "spill top --once --json exited $rc: $(cat top.err)"

# check JSON PID LIVE BLOCKS RESIDENT: the process's row agrees with what it said of itself.
check() {
	python3 - "$@" <<'EOF'
import json, sys
view = json.load(open("top.json"))
pid, live, blocks, resident = (int(x) for x in sys.argv[1:5])
rows = [p for p in view["processes"] if p["pid"] == pid]
if len(rows) != 1:
    sys.exit("pid %d: %d rows in %s" % (pid, len(rows), [p["pid"] for p in view["processes"]]))
p = rows[0]
bad = []
page = 4096
if p["spilled_bytes_live"] is None or abs(p["spilled_bytes_live"] - live) > blocks * page:
    bad.append("spilled_bytes_live %s, the program says %d" % (p["spilled_bytes_live"], live))
if p["disk_bytes"] is None or not live <= p["disk_bytes"] <= live + blocks * page + 65536:  # + fs metadata
    bad.append("disk_bytes %s for %d bytes in %d blocks" % (p["disk_bytes"], live, blocks))
if p["resident_bytes"] is None or abs(p["resident_bytes"] - resident) > resident / 10:
    bad.append("resident_bytes %s, mincore in the program says %d" % (p["resident_bytes"], resident))
if p["dirty_bytes"] is None or p["dirty_bytes"] > p["resident_bytes"]:
    bad.append("dirty_bytes %s (resident %s)" % (p["dirty_bytes"], p["resident_bytes"]))
if p["spilled_allocs"] != blocks or p["fallbacks"] != 0:
    bad.append("spilled_allocs %s fallbacks %s" % (p["spilled_allocs"], p["fallbacks"]))
if p["program"] != "spillprobe" or not p["dir"] or not p["dir"].endswith("/spill"):
    bad.append("program %r dir %r" % (p["program"], p["dir"]))
for k in ("rss_bytes", "major_faults_per_s", "read_bytes_per_s", "write_bytes_per_s", "cgroup_usage_bytes"):
    if p[k] is None:
        bad.append("%s is null" % k)
if bad:
    sys.exit("pid %d: %s" % (pid, "; ".join(bad)))
print("pid %d: live %d disk %d resident %d (%s) dirty %d" % (pid, p["spilled_bytes_live"], p["disk_bytes"],
      p["resident_bytes"], p["resident_from"], p["dirty_bytes"]))
EOF
}
for n in a b; do
	pid_n=$(value $n pid)
	if out=$(check "$pid_n" "$(value $n live)" "$(value $n blocks)" "$(value $n resident)" 2>&1); then
		pass "probe $n: $out"
	else
		fail "probe $n: $out"
	fi
done
if python3 -c '
import json, sys
v = json.load(open("top.json"))
t, ps = v["totals"], v["processes"]
assert t["processes"] == len(ps) >= 2, t
assert t["spilled_bytes_live"] >= sum(p["spilled_bytes_live"] or 0 for p in ps if p["program"] == "spillprobe")
parts = [x for x in v["partitions"] if sys.argv[1] in x["dirs"]]
assert len(parts) == 1 and 0 < parts[0]["avail_bytes"] <= parts[0]["total_bytes"], v["partitions"]
assert isinstance(v["unreadable"], int)
' "$dir" 2>err; then
	pass "totals and the spill partition's free space"
else
	fail "totals or partitions: $(tail -n 1 err)"
fi

# -p: only the processes named; the text view has a row for each, a total and the partition.
"$spill" top --once --json -p "$pid_b" >p.json 2>&1
n=$(python3 -c 'import json; print(",".join(str(p["pid"]) for p in json.load(open("p.json"))["processes"]))' 2>&1)
[ "$n" = "$pid_b" ] && pass "-p $pid_b lists that process only" || fail "-p $pid_b listed: $n"
"$spill" top --once -p "$pid_a,$pid_b" >text.out 2>&1
rc=$?
cat text.out
if [ $rc = 0 ] && grep -q "^ *$pid_a spillprobe " text.out && grep -q "^ *$pid_b spillprobe " text.out &&
	grep -q 'PID PROGRAM .*LIVE .*DISK .*RES .*DIRTY .*MAJFLT/s .*READ/s .*WRITE/s' text.out &&
	grep -q '^ *TOTAL ' text.out && grep -q "^free on $dir " text.out; then	# -p: no other process
	pass "the text view: header, both rows, TOTAL, free space"
else
	fail "the text view (exit $rc)"
fi
"$spill" top --json -n 2 -d 0.2 -p "$pid_a" >two.json 2>&1
[ "$(wc -l <two.json)" = 2 ] && python3 -c '
import json
a, b = (json.loads(l) for l in open("two.json"))
assert a["interval_s"] is None and b["interval_s"] == 0.2, (a["interval_s"], b["interval_s"])
' 2>err && pass "-n 2 -d 0.2: two views, the second over the interval" || fail "-n 2 -d 0.2: $(cat two.json err)"

# Bad input: one line, and exit 1 for a process that cannot be shown, 2 for a usage error.
# expect STATUS WHAT ARGS...
expect() {
	local want=$1 what=$2
	shift 2
	"$spill" top "$@" >out 2>err
	local rc=$? lines
	lines=$(wc -l <err)
	if [ $rc = "$want" ] && [ "$lines" = 1 ] && grep -q "$what" err && [ ! -s out ]; then
		pass "top $*: exit $rc, \"$(cat err)\""
	else
		fail "top $*: exit $rc (want $want), $lines line(s): $(cat err out)"
	fi
}
gone=$(sh -c 'echo $$')		# a PID that has just ended
expect 1 "no process $gone" -p "$gone"
expect 1 "does not have libspill loaded" -p $$
expect 1 "no process" --once -p "$pid_a,$gone"
for d in 0 -1 abc '' 0.05 1e3 99999999; do
	expect 2 "is not a number of seconds\|needs a number" -d "$d"
done
expect 2 "needs a number of seconds" -d
expect 2 "is not a process ID" -p 12x
expect 2 "unknown option" --bogus

# Processes exiting while top reads them. SPILLMON_PAUSE holds top between finding the
# processes and reading them; meanwhile c exits (reaped) and the zombie's child is killed.
start c report 2 100
pid_c=$pid
start z zombie 4
ready c
ready z
zchild=$(value z child)
pause=$TEST_TMP/pause
mkfifo "$pause"

# at_pause PID: waits until top (PID) has the pause fifo open, i.e. it found the processes.
at_pause() {
	local i
	for ((i = 0; i < 600; i++)); do
		for fd in /proc/"$1"/fd/*; do
			[ "$(readlink "$fd" 2>/dev/null)" = "$pause" ] && return 0
		done
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

exec 4<>"$pause"	# top blocks reading the fifo until this, its only writer, is closed
SPILLMON_PAUSE=$pause "$spill" top --once --json >vanish.json 2>vanish.err 4>&- &
top_pid=$!
if at_pause "$top_pid"; then
	kill -9 "$pid_c" "$zchild"
	wait "$pid_c" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$zchild/stat" 2>/dev/null)" = Z ] && break
		sleep 0.05
	done
fi
exec 4>&-
wait "$top_pid"
rc=$?
if [ $rc = 0 ] && python3 - "$pid_c" "$zchild" "$pid_a" <<'EOF' 2>err
import json, sys
c, z, a = (int(x) for x in sys.argv[1:4])
v = json.load(open("vanish.json"))
ps = {p["pid"]: p for p in v["processes"]}
assert c not in ps, "the exited process is still listed"
assert a in ps and ps[a]["spilled_bytes_live"], "the live one is missing"
assert z in ps and ps[z]["spilled_bytes_live"] is None and ps[z]["disk_bytes"] is None, ps.get(z)
EOF
then
	pass "processes that exit mid-read: the reaped one is left out, the zombie shows nulls ('-'), exit 0"
else
	fail "processes exiting mid-read: exit $rc, $(cat vanish.err err)"
fi

# The same in the text view: a process whose figures went with it shows "-".
start y zombie 4
ready y
ychild=$(value y child)
exec 4<>"$pause"
SPILLMON_PAUSE=$pause "$spill" top --once >zombie.txt 2>&1 4>&- &
top_pid=$!
if at_pause "$top_pid"; then
	kill -9 "$ychild"
	for ((i = 0; i < 200; i++)); do
		[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$ychild/stat" 2>/dev/null)" = Z ] && break
		sleep 0.05
	done
fi
exec 4>&-
wait "$top_pid"
rc=$?
cat zombie.txt
[ $rc = 0 ] && grep -q "^ *$ychild spillprobe *- *- *- *- " zombie.txt &&
	pass "the text view shows the zombie's figures as -" || fail "zombie in the text view (exit $rc)"
expect 1 "does not have libspill loaded" -p "$ychild"	# a zombie maps nothing any more

# A stream of short-lived spilling processes while top runs again and again: it never fails.
(
	for ((i = 0; i < 20; i++)); do
		env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M "$probe" spills 2 >/dev/null 2>&1
	done
) &
churn=$!
bad=0 runs=0
mkdir churn
while kill -0 "$churn" 2>/dev/null || [ $runs -lt 10 ]; do
	runs=$((runs + 1))
	"$spill" top --once --json >churn/$runs.json 2>churn.err || bad=$((bad + 1))
done
wait "$churn"
python3 -c '
import json, sys
for f in sys.argv[1:]:
    json.load(open(f))
' churn/*.json 2>churn.err || bad=$((bad + 1))
[ $bad = 0 ] && pass "$runs views while 20 spilling processes came and went: all whole" ||
	fail "$bad of $runs views failed or were not JSON: $(cat churn.err)"

# Processes it may not read: top as an unprivileged user lists its own, counts the rest.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	pub=$(mktemp -d /var/tmp/spill-top-pub.XXXXXX)
	fslib_files+=("$pub")
	chmod 0755 "$pub"
	cp "$probe" "$SPILL_LIB" "$SPILL_BUILD/libspill/spillmon" "$pub/"
	mkdir -m 1777 "$pub/spill"
	as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	"${as_nobody[@]}" env LD_PRELOAD="$pub/libspill.so" SPILL_DIR="$pub/spill" SPILL_THRESHOLD=1M \
		"$pub/spillprobe" report 4 100 <"$hold" >"$TEST_TMP/n.out" 2>&1 &
	pids+=($!)
	ready n
	"${as_nobody[@]}" "$pub/spillmon" top --once --json >nobody.json 2>nobody.err
	rc=$?
	if [ $rc = 0 ] && python3 - "$(value n pid)" "$(value n live)" "$pid_a" "$pid_b" <<'EOF' 2>err
import json, sys
n, live, a, b = (int(x) for x in sys.argv[1:5])
v = json.load(open("nobody.json"))
ps = {p["pid"]: p for p in v["processes"]}
assert n in ps and ps[n]["spilled_bytes_live"] == live, ps.get(n)
assert a not in ps and b not in ps, "root's processes listed"
assert v["unreadable"] >= 2, v["unreadable"]
EOF
	then
		pass "as nobody: its own process with its counters, $(python3 -c 'import json; print(json.load(open("nobody.json"))["unreadable"])') others counted as not readable"
	else
		fail "as nobody: exit $rc, $(cat nobody.err err)"
	fi
else
	echo "NOTICE: not root or no setpriv: the unreadable-process check did not run"
fi

finish
