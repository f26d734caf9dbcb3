#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_cgroup_v2.sh - the memory cap on cgroup v2 (memory.max), where this tree's own
# host has v1: scripts/memcap's v2 branch (its own test), memhog and numpy OOM-killed under
# the cap without libspill and complete with the right checksum under it, and a small
# `make demo` whose plain run is OOM-killed and whose libspill run gives identical results.
. "$(dirname "$0")/lib.sh"

echo "/proc/self/cgroup: $(tr '\n' ' ' </proc/self/cgroup)"
check "cgroup v2 alone: /proc/self/cgroup is one 0:: line, no v1 memory hierarchy" \
	'[ "$(grep -c . /proc/self/cgroup)" = 1 ] && grep -q "^0::/" /proc/self/cgroup &&
	 ! grep -q " - cgroup .*memory" /proc/self/mountinfo'
check "the memory controller is on for child groups" 'grep -qw memory /sys/fs/cgroup/cgroup.subtree_control'

script_test test_memcap		# limit, memory.peak, oom_kill from memory.events, cleanup, trace

# From a group that holds processes (not the root) memcap cannot hand the memory controller to
# a child of its own (v2 has no internal processes): it must say so and exit 125.
mkdir -p /sys/fs/cgroup/busy
(echo "$BASHPID" >/sys/fs/cgroup/busy/cgroup.procs && exec "$S/scripts/memcap" 64M -- true) 2>$W/busy.err
rc=$?
echo "    from a busy group: exit $rc: $(cat $W/busy.err)"
check "memcap in a non-root group that holds processes: exit 125 with the reason" \
	'[ $rc = 125 ] && grep -q "cannot delegate controllers" $W/busy.err'
rmdir /sys/fs/cgroup/busy
# memhog and numpy, 4x the cap: plain OOM-killed, libspill completes (6 x 48 MiB under 72M here)
script_test test_memcap_spill MEMCAP_SPILL_CAP=72M MEMCAP_SPILL_COUNT=6 MEMCAP_SPILL_MIB=48

# A small make demo: 3 batches of 96 MiB under a 64 MiB cap.
make -s -C "$S" demo DEMO_BATCH_MIB=96 DEMO_BATCHES=3 DEMO_CAP=64M DEMO_DIR="$W" >$W/demo.out 2>&1
rc=$?
sed 's/^/    /' $W/demo.out
check "make demo: exit 0 (status $rc)" '[ $rc = 0 ]'
check "make demo: the cap is the v2 one (no NO MEMORY CAP line)" '! grep -q "NO MEMORY CAP" $W/demo.out'
check "make demo: plain malloc OOM-killed, libspill finished" \
	'grep -Eq "^  outcome +OOM-killed by kernel +finished\$" $W/demo.out'
check "make demo: results identical" 'grep -q "^results identical: yes" $W/demo.out'
finish
