#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_pressure_cgns.sh - SPILL_WHEN=pressure on cgroup v2 as a container sees it: the job
# runs in a nested group (/vmtest/box) that carries the memory.max, inside a cgroup namespace
# rooted there with cgroup2 mounted afresh, so /proc/self/cgroup says 0::/ and the budget is
# read from memory.max and memory.stat at the namespace's root. RAM while there is room,
# spilling under the cap where plain malloc is OOM-killed; the same from a group nested
# inside the namespace (0::/job), whose budget is its parent's.
. "$(dirname "$0")/lib.sh"
hog=$B/programs/memhog
top=/sys/fs/cgroup/vmtest box=/sys/fs/cgroup/vmtest/box
mkdir -p "$box" && echo +memory >"$top/cgroup.subtree_control" || { fail "cannot make $box"; finish; }
n=16 mib=16	# the working set: 16 x 16 MiB = 256 MiB, all live, re-read at the end
expected=$("$hog" -n $n -s $mib -k none | sed -n 's/.*checksum=//p')

# container SUB CMD...: what a container runtime does: join $box, unshare the cgroup and mount
# namespaces, mount cgroup2 afresh (its root is now $box), move into the nested group SUB if
# one is named, and exec CMD. Says what the job sees on stderr. SUB "-": no fresh mount, the
# job sees the whole hierarchy under /sys/fs/cgroup but itself at 0::/.
container() {
	local sub=$1
	shift
	echo "$BASHPID" >"$box/cgroup.procs" || exit 125
	exec unshare -C -m --propagation private bash -c '
		sub=$1; shift
		if [ "$sub" = - ]; then
			sub=
		else
			umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 125
		fi
		if [ -n "$sub" ]; then
			mkdir -p "/sys/fs/cgroup/$sub" && echo $$ >"/sys/fs/cgroup/$sub/cgroup.procs" || exit 125
		fi
		echo "seen from the job: /proc/self/cgroup $(cat /proc/self/cgroup)," \
			"/sys/fs/cgroup/memory.max $(cat /sys/fs/cgroup/memory.max)" >&2
		exec "$@"' sh "$sub" "$@"
}

# run NAME CAP SUB [VAR=VALUE...]: memhog in the container under CAP; sets rc, oom (kills counted
# by the box's memory.events during the run), out, err, stats.
run() {
	local name=$1 cap=$2 sub=$3 k0
	shift 3
	out=$W/$name.out err=$W/$name.err stats=$W/$name.json
	echo "$cap" >"$box/memory.max"
	k0=$(sed -n 's/^oom_kill //p' "$box/memory.events")
	(container "$sub" env "$@" SPILL_STATS="$stats" "$hog" -n $n -s $mib -k all -r) >"$out" 2>"$err"
	rc=$?
	oom=$(($(sed -n 's/^oom_kill //p' "$box/memory.events") - k0))
	[ -z "${sub#-}" ] || rmdir "$box/$sub"
	echo "$name: cap $cap, exit $rc, OOM kills $oom, $(head -n 1 "$out")"
	sed 's/^/    /' "$err"
	[ -s "$stats" ] && echo "    stats: $(cat "$stats")"
}
spill=(LD_PRELOAD="$SPILL_LIB" SPILL_THRESHOLD=1M SPILL_DIR="$W" SPILL_WHEN=pressure)

run ns-view 512M "" true
check "in the namespace /proc/self/cgroup says 0::/" 'grep -q "seen from the job: /proc/self/cgroup 0::/," "$err"'
check "in the namespace /sys/fs/cgroup/memory.max is the box's cap" 'grep -q "memory.max 536870912$" "$err"'

run roomy 640M "" "${spill[@]}"
check "cap 640M: completes with the right checksum" '[ $rc = 0 ] && grep -q "checksum=$expected" "$out"'
check "cap 640M: nothing spilled, all $n requests kept in RAM" \
	'[ "$(field "$stats" spilled_allocs)" = 0 ] && grep -q "\"memory_available\":$n" "$stats"'

run plain 96M "" LD_PRELOAD=
check "cap 96M, plain malloc: OOM-killed" '[ $rc = 137 ] && [ $oom -ge 1 ]'

run capped 96M "" "${spill[@]}"
spilled=$(field "$stats" spilled_allocs)
check "cap 96M, pressure mode: completes, no OOM kill, right checksum" \
	'[ $rc = 0 ] && [ $oom = 0 ] && grep -q "checksum=$expected" "$out"'
check "cap 96M, pressure mode: spilled some (${spilled:-?} of $n) but not all" \
	'[ "${spilled:-0}" -ge $((n / 2)) ] && [ "${spilled:-0}" -lt $n ]'

run nested 96M job "${spill[@]}"
spilled=$(field "$stats" spilled_allocs)
check "nested group 0::/job: the job sees its own group" 'grep -q "/proc/self/cgroup 0::/job," "$err"'
check "nested group, cap 96M on its parent: completes, right checksum, spilled some (${spilled:-?}) but not all" \
	'[ $rc = 0 ] && [ $oom = 0 ] && grep -q "checksum=$expected" "$out" &&
	 [ "${spilled:-0}" -ge $((n / 2)) ] && [ "${spilled:-0}" -lt $n ]'
# Without a cgroup2 mount of its own the namespace's 0::/ names the hierarchy's root, which has
# no limit: the budget is MemTotal (documented; container runtimes mount their own). Under a
# 288M cap the cap's budget would spill a few of the 16; MemTotal's keeps all in RAM.
run no-mount 288M - "${spill[@]}"
note "cgroup namespace without its own cgroup2 mount, cap 288M: exit $rc, $(field "$stats" spilled_allocs) of $n" \
	"spilled (budget MemTotal, as documented; with the namespace's own mount: $(
	run mounted 288M "" "${spill[@]}" >/dev/null; field "$stats" spilled_allocs) spilled)"
finish
