#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/vm/check-vm.sh [NAME-FILTER...] - `make check-vm`: libspill's tests inside qemu VMs that boot
# Debian's own 6.1 kernel (linux-image-amd64; not the host's boot kernel, only its files in
# /boot and /lib/modules), with cgroup v2, no swap and fresh scratch disks.
#
# Each scenario below is one VM boot: a busybox initramfs (tests/vm/init.sh as /init, the
# virtio and 9p modules beside it) mounts the host's root read-only over virtio-9p with a
# tmpfs overlay for writes, then runs tests/vm/SCRIPT from this tree. One line per scenario,
# PASS, FAIL (with its console log) or SKIP, then "N passed, N failed, N skipped".
# KVM is probed with a short timeout (a KVM boot can hang in the firmware); TCG otherwise.
# Exit status: 0 all passed, 1 a failure, 77 nothing could run (the reason on one line).
#
# Environment: SPILL_VM_KERNEL (a kernel version, default the newest /boot/vmlinuz-6.1*),
# SPILL_VM_ACCEL (kvm or tcg: skip the probe), SPILL_VM_JOBS (VMs at once, default 2),
# SPILL_VM_TIMEOUT_SCALE (multiplies every timeout, default 1), SPILL_BUILD.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SPILL_BUILD:-$here/build}
filters=("$@")	# scenarios whose name contains one of these; none: all
out=$build/vm
jobs=${SPILL_VM_JOBS:-2}
scale=${SPILL_VM_TIMEOUT_SCALE:-1}

# One VM boot per scenario, longest first (they run $jobs at a time).
# NAME  MEMORY(MiB)  SCRATCH DISKS(MiB, the first is the work disk)  TIMEOUT(s)  SCRIPT [ARGS]
scenarios=(
	"kernel-6.1        1536  2048           360  scenario_kernel.sh binaries"
	"kernel-6.1-scripts 1536 2048           360  scenario_kernel.sh scripts"
	"cgroup-v2         1024  1024           360  scenario_cgroup_v2.sh"
	"machine-pressure   768  512,3072       360  scenario_machine_pressure.sh"
	"fs-btrfs          1024  512,160        300  scenario_fs.sh btrfs"
	"fs-xfs            1024  512,320        300  scenario_fs.sh xfs"
	"fs-ext4           1024  512,128        300  scenario_fs.sh ext4"
	"fs-overlay        1024  512,128        300  scenario_fs.sh overlay"
	"fs-tmpfs          1024  512            300  scenario_fs.sh tmpfs"
	"pressure-cgns     1024  1024           240  scenario_pressure_cgns.sh"
	"deb               1024  1024           300  scenario_deb.sh"
)

skip_all() {
	echo "SKIP check-vm: $*"
	echo "0 passed, 0 failed, 1 skipped"
	exit 77
}

# ---- what the VM needs ---------------------------------------------------------------------
qemu=$(command -v qemu-system-x86_64) ||
	skip_all "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86, or scripts/deps.sh vm)"
if [ -n "${SPILL_VM_KERNEL:-}" ]; then
	kver=$SPILL_VM_KERNEL
else
	kver=$(find /boot -maxdepth 1 -name 'vmlinuz-6.1.*' 2>/dev/null | sed 's|.*/vmlinuz-||' | sort -V | tail -n 1)
fi
kernel=/boot/vmlinuz-$kver
if [ -z "$kver" ]; then
	skip_all "no Debian 6.1 kernel in /boot (apt-get install --no-install-recommends linux-image-amd64)"
elif [ ! -r "$kernel" ]; then
	skip_all "$kernel is missing or not readable"
fi
[ -d "/lib/modules/$kver" ] || skip_all "/lib/modules/$kver is missing (reinstall linux-image-$kver)"
busybox=$(command -v busybox || echo /bin/busybox)
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
	skip_all "no static busybox (apt-get install busybox-static)"
fi
for tool in cpio modprobe; do
	command -v "$tool" >/dev/null || skip_all "$tool is not installed (apt-get install ${tool/modprobe/kmod})"
done
[[ "$here$build" != *[[:space:]]* ]] || skip_all "the tree's path has a blank, which the kernel command line cannot carry"
[ -f "$build/libspill.so" ] || { echo "check-vm: $build/libspill.so is not built: run make check-vm"; exit 1; }

# ---- the initramfs: static busybox, /init, the modules needed to reach the 9p root -------------
rm -rf "$out" && mkdir -p "$out/initramfs/bin" "$out/initramfs/modules" "$out/logs" "$out/disks" || exit 1
cp "$busybox" "$out/initramfs/bin/busybox" && cp "$here/tests/vm/init.sh" "$out/initramfs/init" || exit 1
modprobe -S "$kver" --show-depends -a virtio_pci 9pnet_virtio 9p overlay 2>/dev/null |
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$out/modules.txt"
[ -s "$out/modules.txt" ] || skip_all "modprobe cannot resolve the 9p modules of $kver"
while read -r ko; do
	cp "$ko" "$out/initramfs/modules/" && basename "$ko"
done <"$out/modules.txt" >"$out/initramfs/modules/order"
(cd "$out/initramfs" && find . | cpio -o -H newc --quiet) >"$out/initramfs.cpio" || exit 1
# the script tests' probe, built once here rather than in every test under emulation
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -o "$out/spillprobe" "$here/tests/scripts/spillprobe.c" || exit 1
# The deb scenario installs the package built here: the guest only runs test_deb.sh.
if [ -f "$here/tests/scripts/test_deb.sh" ] && grep -q '^deb:' "$here/Makefile"; then
	make -s -C "$here" deb >"$out/logs/make-deb.log" 2>&1 ||
		echo "check-vm: make deb failed (its log: $out/logs/make-deb.log); the deb scenario will fail"
fi

# The kernel boots faster uncompressed, as an ELF vmlinux through qemu's PVH entry: emulated,
# decompressing the bzImage takes longer than booting. Extracted once (its xz stream), kept.
vmlinux=$build/vm-kernel/vmlinux-$kver
if [ ! -s "$vmlinux" ] && command -v xz >/dev/null; then
	mkdir -p "${vmlinux%/*}"
	at=$(LC_ALL=C grep -abo -m 1 $'\xfd7zXZ\x00' "$kernel" | head -n 1 | cut -d: -f1)
	[ -n "$at" ] && tail -c +$((at + 1)) "$kernel" | xz -dc >"$vmlinux.tmp" 2>/dev/null
	if [ "$(head -c 4 "$vmlinux.tmp" 2>/dev/null)" = $'\x7fELF' ]; then mv "$vmlinux.tmp" "$vmlinux"; else rm -f "$vmlinux.tmp"; fi
fi
[ -s "$vmlinux" ] && kernel=$vmlinux

# Emulated, the kernel's Spectre and Meltdown mitigations cost about a third of the time.
cmdline=mitigations=off

# boot NAME ACCEL MEMORY TIMEOUT EXTRA-CMDLINE [QEMU-ARGS...]: one VM; its console goes to logs/NAME.log.
boot() {
	local name=$1 accel=$2 mem=$3 secs=$4 extra=$5 cpu=max
	shift 5
	[ "$accel" = kvm ] && cpu=host
	timeout -k 5 "$secs" "$qemu" -accel "$accel" -cpu "$cpu" -m "$mem" -smp 1 \
		-nodefaults -no-user-config -display none -no-reboot -serial "file:$out/logs/$name.log" \
		-kernel "$kernel" -initrd "$out/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 loglevel=1 $cmdline spill.src=$here spill.build=$build $extra" \
		"$@" </dev/null >"$out/logs/$name.qemu" 2>&1
}

# ---- KVM if it boots quickly (a KVM boot can hang in the firmware), else TCG: both at once ----
accel=${SPILL_VM_ACCEL:-}
if [ -z "$accel" ]; then
	[ -w /dev/kvm ] && boot probe-kvm kvm 256 10 spill.probe &
	boot probe-tcg tcg 256 90 spill.probe &
	wait
	why=()
	for a in kvm tcg; do
		if grep -qs '^check-vm-probe: booted' "$out/logs/probe-$a.log"; then
			accel=$a
			break
		fi
		if [ ! -e "$out/logs/probe-$a.qemu" ]; then why+=("$a: /dev/kvm is not usable")
		elif grep -qs 'terminating on signal' "$out/logs/probe-$a.qemu"; then why+=("$a: no boot in time")
		elif grep -qs . "$out/logs/probe-$a.qemu"; then why+=("$a: $(tail -n 1 "$out/logs/probe-$a.qemu")")
		else why+=("$a: the kernel did not start the initramfs"); fi
	done
	[ -n "$accel" ] || skip_all "qemu cannot boot $kernel here (${why[*]})"
	[ "$accel" = kvm ] || echo "check-vm: ${why[*]}; using tcg (emulation)"
fi
echo "check-vm: kernel $kver, accelerator $accel, host root shared read-only over 9p, logs in $out/logs"

# run_one LINE: boots the scenario's VM; prints its result line and, if it failed, its log.
run_one() {
	local name mem disks secs script args d i=0 rc line start=$SECONDS
	local -a drives=()
	read -r name mem disks secs script args <<<"$1"
	secs=$(awk -v s="$secs" -v k="$scale" 'BEGIN { printf "%d", s * k }')
	for d in ${disks//,/ }; do
		truncate -s "${d}M" "$out/disks/$name.$i.img" || return 1
		drives+=(-drive "file=$out/disks/$name.$i.img,format=raw,if=virtio,cache=unsafe")
		i=$((i + 1))
	done
	echo "$name $script $args" >"$out/$name.job"
	boot "$name" "$accel" "$mem" "$secs" "spill.job=$out/$name.job" \
		-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap" \
		-device virtio-9p-pci,fsdev=root,mount_tag=hostroot "${drives[@]}"
	rc=$?
	rm -f "$out/disks/$name".*.img
	tr -d '\r' <"$out/logs/$name.log" >"$out/logs/$name.txt"
	line=$(grep -E "^(PASS|FAIL|SKIP) $name( |:|\$)" "$out/logs/$name.txt" | tail -n 1)
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		line="FAIL $name (timeout: the VM was killed after $secs s)"
	elif [ -z "$line" ]; then
		line="FAIL $name (the VM ended without a result, qemu exit $rc: $(tail -n 1 "$out/logs/$name.qemu"))"
	fi
	echo "$line"
	# what a passing scenario noted (a known failure, a part skipped) is worth seeing too
	grep '^notice: ' "$out/logs/$name.txt" | sed 's/^/    /'
	if [[ $line == FAIL* ]]; then
		echo "--- console log of $name ($((SECONDS - start)) s) ---"
		sed 's/^/    /' "$out/logs/$name.txt" | tail -n 300
	fi
}

# Up to $jobs VMs at once, in the order of the table (longest first); each result is printed
# as a whole as soon as its VM has ended.
start=$SECONDS
names=()
for s in "${scenarios[@]}"; do
	name=${s%% *}
	if [ ${#filters[@]} -gt 0 ]; then
		for f in "${filters[@]}"; do [[ $name == *"$f"* ]] && break; done
		[[ $name == *"$f"* ]] || continue
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	{ run_one "$s" >"$out/$name.result" 2>&1; flock "$out/logs" cat "$out/$name.result"; } &
	names+=("$name")
done
wait
pass=0 fail=0 skip=0 failed=()
for name in "${names[@]+"${names[@]}"}"; do
	case $(head -c 4 "$out/$name.result") in
	PASS) pass=$((pass + 1)) ;;
	SKIP) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)); failed+=("$name") ;;
	esac
done
echo
for n in "${failed[@]+"${failed[@]}"}"; do echo "failed: $n"; done
echo "check-vm: $((SECONDS - start)) s for ${#names[@]} VMs with $accel, $jobs at once"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ] && [ $((pass + skip)) -gt 0 ]
