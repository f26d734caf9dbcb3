#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_machine_pressure.sh - the whole machine's pressure, no cgroup limit: a VM with
# 768 MiB of RAM and no swap runs a 2 GiB job (memhog: 32 x 64 MiB, all live, re-read at the
# end). Plain malloc is OOM-killed by the kernel's global OOM killer; under libspill the job
# completes with the right checksum, and /proc/vmstat shows the kernel's own reclaim taking
# the spilled pages from the page cache after they were written to the spill disk.
. "$(dirname "$0")/lib.sh"
hog=$B/programs/memhog
n=32 mib=64
mkdir -p /spill && mkfs.ext4 -q -F -E nodiscard /dev/vdb && mount -o nodiscard /dev/vdb /spill ||
	{ fail "cannot make the spill disk"; finish; }
ram_kib=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)
echo "RAM $((ram_kib >> 10)) MiB, $(grep SwapTotal /proc/meminfo), cgroup $(cat /proc/self/cgroup)," \
	"spill disk $(($(avail /spill) >> 20)) MiB free; job $((n * mib)) MiB"
check "no swap" '[ "$(sed -n "s/^SwapTotal: *//p" /proc/meminfo)" = "0 kB" ]'
check "no cgroup limit: the job runs in the root group" '[ "$(cat /proc/self/cgroup)" = "0::/" ]'
check "the job is bigger than RAM" '[ $((n * mib)) -gt $((ram_kib >> 9)) ]'

expected=$("$hog" -n $n -s $mib -k none | sed -n 's/.*checksum=//p')
echo "reference (one buffer at a time): checksum=$expected"

# 1. plain malloc: the global OOM killer ends it
k0=$(vmstat_get oom_kill)
"$hog" -n $n -s $mib -k all -r >$W/plain.out 2>&1
rc=$?
echo "plain: exit $rc, $(head -n 1 $W/plain.out)"
dmesg | grep -E 'Out of memory|oom-kill:' | tail -n 2 | sed 's/^/    /'
check "plain malloc: OOM-killed (exit $rc, oom_kill +$(($(vmstat_get oom_kill) - k0)))" \
	'[ $rc = 137 ] && [ $(($(vmstat_get oom_kill) - k0)) -ge 1 ] && dmesg | grep -q "Killed process .*(memhog)"'

# 2. libspill: completes; the counters say where the pages went
counters="pgpgout nr_written nr_vmscan_write pgsteal_kswapd pgsteal_direct pgsteal_file pgscan_file workingset_refault_file"
declare -A before
for c in $counters; do before[$c]=$(vmstat_get $c); done
sync
start=$SECONDS
env LD_PRELOAD="$SPILL_LIB" SPILL_DIR=/spill SPILL_THRESHOLD=1M SPILL_STATS=$W/stats.json \
	"$hog" -n $n -s $mib -k all -r >$W/spill.out 2>&1
rc=$?
secs=$((SECONDS - start))
echo "libspill: exit $rc in $secs s, $(head -n 1 $W/spill.out)"
echo "    stats: $(cat $W/stats.json 2>/dev/null)"
declare -A d
for c in $counters; do
	d[$c]=$(($(vmstat_get $c) - ${before[$c]:-0}))
	echo "    vmstat $c +${d[$c]}"
done
check "libspill: completes with the right checksum, no OOM kill" \
	'[ $rc = 0 ] && grep -q "checksum=$expected" $W/spill.out && grep -qx ok $W/spill.out'
check "libspill: all $((n * mib)) MiB spilled" \
	'[ "$(field $W/stats.json spilled_bytes_peak)" -ge $((n * mib << 20)) ]'
over=$(((n * mib << 20) - (ram_kib << 10)))	# what cannot have stayed in RAM, bytes
check "the kernel wrote at least the $((over >> 20)) MiB that RAM cannot hold ($((d[nr_written] >> 8)) MiB written)" \
	'[ $((d[nr_written] * 4096)) -ge $over ]'
check "its reclaim took them from the page cache ($((d[pgsteal_file] >> 8)) MiB of file pages reclaimed)" \
	'[ $((d[pgsteal_file] * 4096)) -ge $over ]'
finish
