#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_kernel.sh binaries|scripts - Debian 12's kernel 6.1: tests/run.sh with the work disk
# (ext4, no discard) as its scratch space, in two VMs: the unit and integration tests, and the
# script tests after a run of the spill wrapper on a system without /dev/fd (a minimal
# container or initramfs has none). The tests that cannot or need not run here are skipped
# with their reason (SPILL_TEST_SKIP).
. "$(dirname "$0")/lib.sh"
part=${1:?usage: scenario_kernel.sh binaries|scripts}
echo "kernel $(uname -r), cgroup $(cat /proc/self/cgroup), work disk $(findmnt -n -o FSTYPE,OPTIONS "$W")"

if [ "$part" = scripts ]; then
	# no_dev_fd CMD...: CMD in a mount namespace whose /dev holds only the device nodes, no fd link.
	no_dev_fd() {
		unshare -m --propagation private bash -c '
			mkdir -p /run/olddev && mount --bind /dev /run/olddev && mount -t tmpfs -o mode=755 dev /dev || exit 125
			for n in null zero full random urandom tty; do
				touch "/dev/$n" && mount --bind "/run/olddev/$n" "/dev/$n"
			done
			umount -l /run/olddev
			exec "$@"' sh "$@"
	}
	cat >$W/job.c <<-'EOF'
	#include <stdio.h>
	#include <stdlib.h>
	#include <string.h>
	int main(void)
	{
		char *volatile p = malloc(8 << 20);	/* volatile: the compiler may not elide it */
		memset(p, 7, 8 << 20);
		printf("job: %d\n", p[(8 << 20) - 1]);
		free(p);
		return 0;
	}
	EOF
	cc -O2 -o $W/job $W/job.c || fail "cannot build the wrapper's job"
	mkdir -p $W/wrapper
	no_dev_fd bash -c '[ ! -e /dev/fd ] && echo "no /dev/fd here"; exec "$@"' sh \
		"$B/spill" -t 1M -d $W/wrapper --stats=$W/wrapper.json -- $W/job >$W/wrapper.out 2>&1
	rc=$?
	sed 's/^/    /' $W/wrapper.out
	echo "    stats: $(cat $W/wrapper.json 2>/dev/null)"
	check "without /dev/fd the spill wrapper runs its job (exit $rc), which spills" \
		'[ $rc = 0 ] && grep -q "^no /dev/fd here" $W/wrapper.out && grep -qx "job: 7" $W/wrapper.out &&
		 grep -q "\"spilled_allocs\":1" $W/wrapper.json'
	check "without /dev/fd the spill wrapper says nothing of its own" \
		'[ "$(grep -cvx -e "no /dev/fd here" -e "job: 7" $W/wrapper.out)" = 0 ]'
	# ... and still refuses a static program, which LD_PRELOAD cannot reach
	cc -O2 -static -o $W/static-job $W/job.c || fail "cannot build a static job"
	no_dev_fd "$B/spill" -t 1M -- $W/static-job >$W/static.out 2>&1
	rc=$?
	sed 's/^/    /' $W/static.out
	check "without /dev/fd the spill wrapper refuses a static program (exit $rc)" \
		'[ $rc = 1 ] && grep -q "is statically linked" $W/static.out && ! grep -q "^job:" $W/static.out'
fi

# tests/run.sh in full but for these (name and reason); sizes cut down where a test has a knob.
export SPILL_TEST_SKIP="unit/check_config the parser does not depend on the kernel (make check runs it)
unit/check_extent the extent trees do not depend on the kernel (make check runs them)
unit/check_log the formatter does not depend on the kernel (make check runs it)
unit/check_region the block registry does not depend on the kernel (make check runs it)
unit/check_stats the statistics do not depend on the kernel (make check runs them)
scripts/test_integration_extra its checks (stats, fd and map counts, invalid frees, numpy, exports, late frees) do not depend on the kernel (make check runs it)
scripts/test_pressure SPILL_WHEN=pressure on cgroup v2 is the pressure-cgns scenario's (the same checks, in a cgroup namespace)
scripts/test_fuzz_config libFuzzer with ASan does not depend on the kernel; too slow under emulation (make check runs it)
scripts/test_manlint the man pages do not depend on the kernel (make check lints them)
scripts/test_bench_smoke the bench programs do not depend on the kernel (make check runs them)
scripts/test_install make install does not depend on the kernel (make check runs it)
scripts/test_wrapper the wrapper's options do not depend on the kernel (make check runs it; its run without /dev/fd is checked above)
scripts/test_memcap run by the cgroup-v2 scenario
scripts/test_memcap_spill run by the cgroup-v2 scenario
scripts/test_demo run by the cgroup-v2 scenario (make demo)
unit/check_copy_fault the fault hook does not depend on the kernel (make check runs it; check_copy runs the copies here)
scripts/test_full_disk run on each file system by the fs-* scenarios
scripts/test_kill9 run on each file system by the fs-* scenarios
scripts/test_tmpfile_fallback run on overlayfs, where it spills, by the fs-overlay scenario
scripts/test_deb run by the deb scenario"
export SPILL_TEST_ENV="FORK_THREAD_FORKS=20 FORK_COST_MIB=64 THREADS_OPS=300 MODEL_OPS=300"
# the script tests' own knobs: fewer pickle round trips, a smaller cap (and buffers) for the cow fork
export PICKLE_ITERATIONS=100 FORK_COW_CAP_MIB=96 STATS_IO_MIB=384
# two VMs, so that they run beside the others: the unit and integration tests, the script tests
if [ "$part" = binaries ]; then sets="unit integration"; else sets=scripts; fi
for set in $sets; do
	SPILL_TEST_BUILD=$B bash "$S/tests/run.sh" "$set" 2>&1 | tee $W/run.out
	rc=${PIPESTATUS[0]}
	check "tests/run.sh $set on $(uname -r): $(tail -n 1 $W/run.out)" '[ $rc = 0 ]'
done
finish
