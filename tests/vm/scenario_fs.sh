#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_fs.sh FS - SPILL_DIR on a fresh file system of type FS, made on the scratch disk
# /dev/vdb: xfs (mkfs.xfs -m reflink=1), btrfs, ext4 (no discard), overlay (overlayfs over
# ext4) or tmpfs. Each command of the list below runs against it; after each, no file may be
# left and no space used. The first spill also checks the file system's own messages: tmpfs
# warns once, overlayfs on 6.1 has no O_TMPFILE and takes the named-file fallback (once).
# Known failures (listed below the commands) are reported as such and do not fail it.
. "$(dirname "$0")/lib.sh"
fs=${1:?usage: scenario_fs.sh xfs|btrfs|ext4|overlay|tmpfs}
dev=/dev/vdb mnt=/mnt/$fs
mkdir -p "$mnt"

# ---- the file system ---------------------------------------------------------------------------
case $fs in
xfs) modprobe xfs && mkfs.xfs -q -f -m reflink=1 "$dev" && mount "$dev" "$mnt" ;;
btrfs) modprobe btrfs && mkfs.btrfs -q -f "$dev" >/dev/null && mount "$dev" "$mnt" ;;
ext4) mkfs.ext4 -q -F -E nodiscard "$dev" && mount -o nodiscard "$dev" "$mnt" ;;
overlay)
	# upper and work on ext4 below one (empty) lower layer, as a container's writable layer
	mkdir -p /mnt/base && mkfs.ext4 -q -F -E nodiscard "$dev" && mount -o nodiscard "$dev" /mnt/base &&
		mkdir /mnt/base/lower /mnt/base/upper /mnt/base/work && modprobe overlay &&
		mount -t overlay -o lowerdir=/mnt/base/lower,upperdir=/mnt/base/upper,workdir=/mnt/base/work \
			overlay "$mnt" ;;
tmpfs) mount -t tmpfs -o size=64M tmpfs "$mnt" ;;
*) echo "unknown file system $fs"; exit 2 ;;
esac || { fail "cannot make a $fs file system on $dev"; finish; }
# Small enough to fill quickly under emulation (mkfs.xfs wants 300 MiB at least): a ballast
# file leaves 64 MiB free. The tests get a directory of their own beside it.
if [ $(($(avail "$mnt") >> 20)) -gt 80 ]; then
	fallocate -l $(($(avail "$mnt") - (64 << 20))) "$mnt/.ballast" || fail "no ballast file"
fi
dir=$mnt/spill
mkdir "$dir" && chmod 1777 "$dir"
echo "$fs: $(findmnt -n -o SOURCE,FSTYPE,OPTIONS "$mnt"), $(($(avail "$dir") >> 20)) MiB free for $dir"

# What the kernel offers here (the fallbacks libspill takes depend on it).
python3 - "$dir" <<'EOF'
import os, sys
d = sys.argv[1]
def try_(what, f):
    try:
        f(); print(f"  {what}: yes")
    except OSError as e:
        print(f"  {what}: no ({e.strerror})")
def tmpfile():
    os.close(os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600))
try_("O_TMPFILE", tmpfile)
p = os.path.join(d, ".features")
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
try:
    try_("fallocate", lambda: os.posix_fallocate(fd, 0, 1 << 20))
    import fcntl, ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    def mode(m):
        def f():
            if libc.fallocate(fd, m, ctypes.c_long(0), ctypes.c_long(65536)):
                e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        return f
    try_("FALLOC_FL_PUNCH_HOLE", mode(0x02 | 0x01))
    try_("FALLOC_FL_ZERO_RANGE", mode(0x10 | 0x01))
    def reflink():
        q = os.open(p + ".clone", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.ioctl(q, 0x40049409, fd)          # FICLONE
        finally:
            os.close(q); os.unlink(p + ".clone")
    try_("reflink (FICLONE)", reflink)
finally:
    os.close(fd); os.unlink(p)
EOF

# ---- the spill, with this file system's messages ---------------------------------------------------
out=$W/spill.out err=$W/spill.err
env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$dir" SPILL_THRESHOLD=1M SPILL_STATS=$W/spill.json \
	"$probe" fill 8 4 >"$out" 2>"$err"
rc=$?
echo "spill: exit $rc: $(grep '^fill:' "$out"); stderr: $(cat "$err")"
echo "    stats: $(cat $W/spill.json)"
check "spill: 8 x 4 MiB blocks spilled and correct" '[ $rc = 0 ] && grep -q " spilled=8 ram=0 " "$out"'
case $fs in
tmpfs) want='is on tmpfs; spilled blocks stay in memory there' ;;
overlay) want='does not support O_TMPFILE; using unlinked named files' ;;
*) want='' ;;
esac
if [ -n "$want" ]; then
	check "spill: one \"$want\" message" '[ "$(grep -c "^libspill: .*$want" "$err")" = 1 ]'
	check "spill: no other message" '[ "$(grep -c . "$err")" = 1 ]'
else
	check "spill: no message" '[ ! -s "$err" ]'
fi

# ---- the list: one line per command, run by bash -o pipefail from the source tree with SPILL_DIR,
# SPILL_TEST_FS and SPILL_TEST_TMPDIR pointing at the file system. "preload CMD" runs CMD under
# libspill (SPILL_THRESHOLD=1M); "integration NAME [ARG...] [VAR=VALUE...]" runs the program
# tests/integration/NAME as tests/run.sh does (its .env file, a fresh directory there) with
# those arguments and variables. Each must exit 0 (77: skipped, its last line says why) and
# leave neither a file nor used space behind. A new program or mode is one more line here.
full="SPILL_ON_FAIL=null SPILL_MIN_FREE=0"	# fill the disk to its last block
runs=(
	"spill          preload $probe fill 16 2"
	"realloc        preload $probe realloc 4 | grep -x 'realloc: spilled=1 grew_in_place=1 moved=1 .*'"
	"fork-cow       integration fork isolation"
	"fork-copy      integration fork isolation SPILL_FORK=copy"
	"fork-drop      integration fork drop SPILL_FORK=drop"
	"cow            integration cow shared"
	"model          integration model MODEL_SEEDS=7 MODEL_OPS=300 MODEL_TMPFS=0"
	"big_alloc      integration big_alloc"
	"many_blocks    integration many_blocks"
	"full-disk      bash tests/scripts/test_full_disk.sh"
	"rewrite-full   preload env $full $probe rewrite 2"
	"fork-full      preload env $full $probe fork-full 8"
	"fork-full-copy preload env $full SPILL_FORK=copy $probe fork-full 8"
	"kill9          bash tests/scripts/test_kill9.sh"
	"no-tmpfile     bash tests/scripts/test_tmpfile_fallback.sh"
)
# Known failures, "FS NAME WHY": they run and are reported, but do not fail the scenario.
known=(
	"xfs    fork-full-copy  a fork copy shares the parent's disk blocks (copy_file_range clones them); the first write to a shared block after the fork needs new space, and with the disk full that write is a SIGBUS"
	"btrfs  fork-full-copy  a fork copy shares the parent's disk blocks (copy_file_range clones them); the first write to a shared block after the fork needs new space, and with the disk full that write is a SIGBUS"
)
# btrfs before Linux 6.17 reserves data space at every write fault, even into space fallocate
# gave a NOCOW file; with the disk full that fault is a SIGBUS (fixed by the kernel's commit
# 6599716de2d6, "btrfs: fix -ENOSPC mmap write failure on NOCOW files/extents"). These runs
# fill the disk to its last block (SPILL_MIN_FREE=0); whether a fault hits depends on writeback.
maybe="may fail, depending on writeback: on btrfs before Linux 6.17 a write fault into reserved (fallocated, NOCOW) space needs free data space, and with the disk full it is a SIGBUS (kernel commit 6599716de2d6)"
if [ "$fs" = btrfs ] && [ "$(printf '%s\n' "$(uname -r)" 6.17 | sort -V | head -n 1)" != 6.17 ]; then
	known+=("btrfs  rewrite-full  $maybe" "btrfs  fork-full  $maybe" "btrfs  full-disk  $maybe")
fi

preload() { LD_PRELOAD=$SPILL_LIB SPILL_THRESHOLD=1M "$@"; }
integration() {
	local name=$1 dir line preload=1 a rc
	local -a envs args
	shift
	dir=$(mktemp -d "$SPILL_DIR/$name.XXXXXX")
	envs=("SPILL_DIR=$dir" "SPILL_LIB=$SPILL_LIB" "SPILL_SRC=$S" "SPILL_BUILD=$B")
	while IFS= read -r line; do
		case $line in ''|'#'*) continue ;; PRELOAD=0) preload=0; continue ;; esac
		envs+=("${line//@DIR@/$dir}")
	done < <(cat "$S/tests/integration/$name.env" 2>/dev/null)
	[ $preload = 1 ] && envs+=("LD_PRELOAD=$SPILL_LIB")
	for a in "$@"; do
		if [[ $a =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs+=("$a"); else args+=("$a"); fi
	done
	(cd "$dir" && env "${envs[@]}" "$B/tests/integration/$name" "${args[@]+"${args[@]}"}")
	rc=$?
	rm -rf "$dir"
	return $rc
}
export -f preload integration
export S B

# leftovers: what is in the tests' directory.
leftovers() { find "$dir" -mindepth 1 -maxdepth 3 | head; }
# btrfs: its metadata may keep a few hundred KiB more after files come and go
slack=0 && [ "$fs" = btrfs ] && slack=$((1 << 20))
base=$(($(avail "$dir") - slack))
for r in "${runs[@]}"; do
	read -r name cmd <<<"$r"
	echo "--- $fs: $name: $cmd"
	t=$(mktemp -d "$W/run.XXXXXX")
	start=$SECONDS
	(cd "$S" && env SPILL_DIR="$dir" SPILL_TEST_FS="$dir" SPILL_TEST_TMPDIR="$dir" TEST_TMP="$t" \
		bash -o pipefail -c "$cmd") </dev/null >"$t.log" 2>&1
	rc=$?
	sed 's/^/    /' "$t.log" | tail -n 40
	why=$(printf '%s\n' "${known[@]}" | sed -n "s/^$fs  *$name  *//p")
	case $rc in
	0) pass "$fs: $name ($((SECONDS - start)) s)"
	   if [[ $why == "may fail"* ]]; then note "$fs: $name passed this time; it $why"
	   elif [ -n "$why" ]; then note "$fs: $name passes now: take it off the known failures"; fi ;;
	77) echo "skip - $fs: $name: $(tail -n 1 "$t.log")" ;;
	*) if [ -n "$why" ]; then
		note "$fs: $name: KNOWN FAILURE (exit $rc$([ $rc = 135 ] && echo ", SIGBUS")): $why"
	   else
		fail "$fs: $name (exit $rc$([ $rc = 135 ] && echo ", SIGBUS"))"
	   fi ;;
	esac
	rm -rf "$t" "$t.log"
	# nothing left behind: no file, and the free space back (btrfs: after its commit)
	sync -f "$dir"
	for ((i = 0; i < 50; i++)); do [ "$(avail "$dir")" -ge "$base" ] && break; sleep 0.2; done
	left=$(leftovers)
	[ -z "$left" ] || fail "$fs: $name left files behind: $left"
	[ "$(avail "$dir")" -ge "$base" ] ||
		fail "$fs: $name left $((base - $(avail "$dir"))) bytes used"
done
finish
