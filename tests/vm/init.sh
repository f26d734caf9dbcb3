#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2093 # stage 1 is POSIX sh (busybox), stage 2 bash
# tests/vm/init.sh - PID 1 of the check-vm guest (tests/vm/check-vm.sh boots it).
#
# Stage 1 runs from the initramfs under busybox sh (POSIX only down to the stage 2 line):
# it loads the virtio and 9p modules packed beside it, mounts the host's root read-only over
# virtio-9p with a tmpfs overlay for writes, and switch_roots into it, running this same
# file from the host's tree under bash. Stage 2 mounts cgroup2 with the memory controller,
# formats the first scratch disk as the work disk ($TMPDIR), runs the scenarios of the job
# file named by spill.job= on the kernel command line, prints one PASS/FAIL/SKIP line per
# scenario and the closing "N passed, N failed, N skipped" line, and powers off.
if [ "$1" != stage2 ]; then
	/bin/busybox --install -s /bin
	export PATH=/bin
	mkdir -p /proc /sys /dev /lower /rw /newroot
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
	die() {
		echo "init: $*"
		poweroff -f
	}
	for m in $(cat /modules/order); do
		insmod "/modules/$m" || die "insmod $m failed"
	done
	# the accelerator probe of check-vm.sh: the kernel and the initramfs run, that is all
	if grep -qw spill.probe /proc/cmdline; then
		echo "check-vm-probe: booted $(uname -r)"
		poweroff -f
	fi
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower ||
		die "cannot mount the host's root over 9p"
	mount -t tmpfs -o mode=0755,size=25% tmpfs /rw && mkdir /rw/upper /rw/work &&
		mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
		die "cannot mount the overlay root"
	src=$(arg spill.src)
	for d in dev proc sys; do mount --move "/$d" "/newroot/$d"; done
	exec switch_root /newroot /bin/bash "$src/tests/vm/init.sh" stage2
	die "switch_root failed"
fi

# ---- stage 2: bash, the host's tree as root -------------------------------------------------
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
off() {
	sync
	busybox poweroff -f 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 10
}
die() {
	echo "init: $*"
	off
}
export SPILL_SRC SPILL_BUILD
SPILL_SRC=$(arg spill.src) SPILL_BUILD=$(arg spill.build)
job=$(arg spill.job)
export SPILL_LIB=$SPILL_BUILD/libspill.so
echo -1000 >/proc/self/oom_score_adj		# the OOM killer must pick the tests, never init

mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
# what udev would add; tests/vm/scenario_kernel.sh hides /dev/fd again to try the wrapper
ln -s /proc/self/fd /dev/fd && ln -s fd/0 /dev/stdin && ln -s fd/1 /dev/stdout && ln -s fd/2 /dev/stderr
# /dev/shm as every system has it (Python's multiprocessing needs it for its semaphores)
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || die "cannot mount /dev/shm"
# tests/integration/cow.c fills nine tenths of vm.max_map_count with blocks: emulated, the
# default's 60,000 take half a minute; the limit it tests is the same at a quarter of it
sysctl -qw vm.max_map_count=16384 || die "cannot set vm.max_map_count"
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || die "cannot mount cgroup2"
echo +memory >/sys/fs/cgroup/cgroup.subtree_control || die "no memory controller in cgroup2"
hostname check-vm
# Everything else the scenarios use comes from the host's /lib/modules over 9p.
modprobe -a virtio_blk ext4 loop 2>&1 || die "modprobe failed"
# The first scratch disk is the work disk: ext4 without discard, on a mount point of its own,
# so that it hides nothing of the host's tree (which may live under /tmp or /var/tmp).
work=/check-vm-work
mkdir -p "$work" && mkfs.ext4 -q -F -E nodiscard /dev/vda >/dev/null 2>&1 &&
	mount -o nodiscard /dev/vda "$work" || die "cannot make the work disk /dev/vda"
chmod 1777 "$work"
export TMPDIR=$work SPILL_TEST_TMPDIR=$work
# Tests that name /var/tmp get the work disk there too, unless the tree lives under it.
case "$SPILL_SRC/ $SPILL_BUILD/" in
*/var/tmp/*) echo "init: the tree is under /var/tmp: /var/tmp stays the overlay (no O_TMPFILE on 6.1)" ;;
*) mkdir -m 1777 "$work/var-tmp" && mount --bind "$work/var-tmp" /var/tmp ;;
esac
echo "init: Linux $(uname -r), $(nproc) CPU, $(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024)) MiB," \
	"cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers), ready after $(cut -d' ' -f1 /proc/uptime) s"

# The job file, written by check-vm.sh: lines "NAME SCRIPT [ARGS...]", SCRIPT in tests/vm/.
pass=0 fail=0 skip=0 results=()
while read -r name script args; do
	case $name in ''|'#'*) continue ;; esac
	echo "=== $name ==="
	start=$SECONDS
	log=/tmp/$name.log
	# shellcheck disable=SC2086 # ARGS are words
	# init is exempt from the OOM killer; the scenario must not be (children inherit it)
	(cd "$work" && echo 0 >/proc/self/oom_score_adj && exec bash "$SPILL_SRC/tests/vm/$script" $args) \
		</dev/null 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	secs=$((SECONDS - start))
	case $rc in
	0) pass=$((pass + 1)); results+=("PASS $name (${secs}s)") ;;
	77) skip=$((skip + 1)); results+=("SKIP $name: $(tail -n 1 "$log")") ;;
	*) fail=$((fail + 1)); results+=("FAIL $name (exit $rc, ${secs}s)")
	   echo "--- last kernel messages ---"; dmesg | tail -n 30 ;;
	esac
	echo "${results[-1]}"
done <"$job"
echo
echo "=== results ==="
printf '%s\n' "${results[@]}"
echo "$pass passed, $fail failed, $skip skipped (uptime $(cut -d' ' -f1 /proc/uptime) s)"
off
