#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fs-copy-bench.sh - what libspill's two kernel copies cost on ext4, XFS with reflink and btrfs.
#
# Usage: scripts/fs-copy-bench.sh [--quick] [--runs N] [--fs "ext4 xfs btrfs"] [--table]
# Root only, run by hand (never by make check); needs make all programs, mkfs.xfs (xfsprogs),
# mkfs.btrfs (btrfs-progs), mkfs.ext4, losetup and fstrim. Each file system gets a fresh 12 GiB
# image file under /var/tmp on its own loop device (direct I/O, so that writeback reaches the
# disk and is not cached twice), mounted nodiscard. The cases:
#   fork   bench/forkcopy: a fork() in SPILL_FORK=copy mode from a process holding 1 and
#          4 GiB written spilled data, with the pages still dirty and after sync();
#   move   bench/movecopy: a realloc that moves a written 1 GiB spilled block, dirty and
#          after sync(), then the read of the moved copy;
#   space  both again with -d: the file system's used space (statvfs) around each step.
# The runs alternate between plain malloc (for fork and move) and the file systems, round
# by round; figures are medians over the rounds, with the lowest and highest run.
# Every spilled run must exit 0, print nothing on stderr, spill, and fall back never.
# Output: the table on stdout and in build/fs-copy/results.md; every run in build/fs-copy/runs.log.
# --quick: 256 MiB sizes, 4 GiB images, one round (a minute or two; only shows it runs).
# --table: no runs; print the table again from the runs recorded in build/fs-copy/.
set -u

prog='fs-copy-bench'
runs=3 quick=0 table_only=0 fs_list=(ext4 xfs btrfs)
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 runs=1 ;;
	--runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "$prog: --runs needs a number" >&2; exit 2; }
		runs=$2; shift ;;
	--fs) read -r -a fs_list <<<"${2:-}"; shift ;;
	--table) table_only=1 ;;
	*) echo "usage: scripts/fs-copy-bench.sh [--quick] [--runs N] [--fs \"ext4 xfs btrfs\"] [--table]" >&2; exit 2 ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	fork_sizes=(256) move_mib=256 img_size=4G
else
	fork_sizes=(1024 4096) move_mib=1024 img_size=12G
fi

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build
lib=$build/libspill.so
forkcopy=$build/bench/forkcopy
movecopy=$build/bench/movecopy
out=$build/fs-copy
die() { echo "$prog: error: $*" >&2; exit 1; }

if [ "$table_only" = 1 ]; then
	# the sizes and rounds of the recorded runs
	# shellcheck source=/dev/null
	. "$out/sizes" 2>/dev/null || die "no recorded runs in $out (run without --table first)"
fi
if [ "$table_only" = 0 ]; then
	[ "$(id -u)" = 0 ] || die "needs root (losetup, mkfs, mount)"
	for f in "$lib" "$forkcopy" "$movecopy"; do
		[ -f "$f" ] || die "$f is not built (run make all programs)"
	done
	for f in "${fs_list[@]}"; do
		case $f in
		ext4) need=(mkfs.ext4:e2fsprogs) ;;
		xfs) need=(mkfs.xfs:xfsprogs) ;;
		btrfs) need=(mkfs.btrfs:btrfs-progs) ;;
		*) die "unknown file system \"$f\" (ext4, xfs, btrfs)" ;;
		esac
		for n in "${need[@]}" losetup:mount fstrim:util-linux; do
			command -v "${n%%:*}" >/dev/null || die "${n%%:*} is missing (apt-get install ${n#*:})"
		done
	done
fi
mkdir -p "$out"
log=$out/runs.log

declare -A mnt=()
loops=() mounts=() files=()
cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null
		rmdir "${mounts[i]}" 2>/dev/null
	done
	for i in "${loops[@]+"${loops[@]}"}"; do losetup -d "$i" 2>/dev/null; done
	for i in "${files[@]+"${files[@]}"}"; do rm -f "$i"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=${EPOCHREALTIME/./}
say() {
	local us=$((${EPOCHREALTIME/./} - t_start))
	printf '%s: [%4d s] %s\n' "$prog" $((us / 1000000)) "$*" | tee -a "$log" >&2
}

# mount_fs FS: a fresh image of FS on its own loop device, mounted at ${mnt[FS]}.
mount_fs() {
	local fs=$1 img dev dir
	img=$(mktemp "/var/tmp/spill-fscopy-$fs.XXXXXX") || die "cannot create an image file in /var/tmp"
	files+=("$img")
	truncate -s "$img_size" "$img" || die "cannot size $img"
	dev=$(losetup -f --show --direct-io=on "$img") || die "no loop device for $img"
	loops+=("$dev")
	# read-ahead as on the disk that holds the image (the loop device's default is smaller)
	echo "$ra_kb" >"/sys/block/${dev#/dev/}/queue/read_ahead_kb" 2>/dev/null
	case $fs in
	ext4) mkfs.ext4 -q -F -m 0 "$dev" ;;
	xfs) mkfs.xfs -q -f -m reflink=1 "$dev" ;;
	btrfs) mkfs.btrfs -q -f "$dev" >/dev/null ;;
	esac || die "mkfs $fs on $dev failed"
	dir=$(mktemp -d "/var/tmp/spill-fscopy-$fs-mnt.XXXXXX") || die "cannot create a mount point"
	mount -o nodiscard "$dev" "$dir" || { rmdir "$dir"; die "cannot mount $fs ($dev)"; }
	mounts+=("$dir")
	mkdir -p "$dir/spill"
	mnt[$fs]=$dir
	say "$fs: $img_size image $img on $dev (dio $(cat "/sys/block/${dev#/dev/}/loop/dio" 2>/dev/null)," \
		"read_ahead_kb $(cat "/sys/block/${dev#/dev/}/queue/read_ahead_kb")), mounted on $dir" \
		"($(awk -v d="$dir" '$2 == d { print $4 }' /proc/mounts))"
}

# field NAME FILE: the value of NAME=... on the "result" line of FILE.
field() {
	sed -n "s/^result.* $1=\([^ ]*\).*/\1/p; s/^result $1=\([^ ]*\).*/\1/p" "$2" | head -n 1
}

# run CASE TARGET CMD...: one run of CMD plain (TARGET plain) or spilling to TARGET's mount;
# its result line goes to runs-CASE-TARGET.txt. A spilled run must be clean: exit 0, nothing
# on stderr, at least one spill and no fallback; otherwise the whole benchmark stops.
run() {
	local id=$1 target=$2 res=$out/run.out err=$out/run.err stats=$out/run.json rc
	shift 2
	rm -f "$stats"
	if [ "$target" = plain ]; then
		"$@" >"$res" 2>"$err"
	else
		sync -f "${mnt[$target]}"	# nothing left over from the previous run
		env LD_PRELOAD="$lib" SPILL_DIR="${mnt[$target]}/spill" SPILL_THRESHOLD=64M SPILL_FORK=copy \
			SPILL_STATS="$stats" "$@" >"$res" 2>"$err"
	fi
	rc=$?
	{ echo "# $id $target: $*"; cat "$res" "$err"; [ -f "$stats" ] && cat "$stats"; } >>"$log"
	if [ "$rc" != 0 ] || ! grep -q '^result ' "$res"; then
		die "$id on $target: exit $rc: $(cat "$err")"
	fi
	if [ "$target" != plain ]; then
		[ ! -s "$err" ] || die "$id on $target wrote to stderr: $(cat "$err")"
		if ! grep -q '"spilled_allocs":[1-9]' "$stats" || ! grep -q '"fallbacks":0[,}]' "$stats"; then
			die "$id on $target did not spill cleanly: $(cat "$stats" 2>/dev/null)"
		fi
		fstrim "${mnt[$target]}" 2>/dev/null	# keep the image file small between runs
	fi
	if [[ $id == move* ]] && [ "$(field moved "$res")" != 1 ]; then
		[ "$target" = plain ] || die "$id on $target: the block did not move"
	fi
	cat "$res" >>"$out/runs-$id-$target.txt"
	say "  $id $target: $(sed -n 's/^result //p' "$res")"
}

# stat_of CASE TARGET FIELD: "median (min-max)" of FIELD over the runs, or - without runs.
stat_of() {
	local f=$out/runs-$1-$2.txt
	[ -s "$f" ] || { echo -; return; }
	sed -n "s/^result.* $3=\([^ ]*\).*/\1/p; s/^result $3=\([^ ]*\).*/\1/p" "$f" | sort -g | awk '
		function num(x) { return x >= 1000 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
		{ v[NR] = $1 }
		END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (NR > 1) printf "%s (%s-%s)", num(m), num(v[1]), num(v[NR])
			else printf "%s", num(m) }'
}

# delta CASE TARGET A B: field B minus field A of the (single) space run, in MiB.
delta() {
	local f=$out/runs-$1-$2.txt a b
	[ -s "$f" ] || { echo -; return; }
	a=$(field "$3" "$f") b=$(field "$4" "$f")
	awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.0f", b - a }'
}

# measure: mounts the file systems and records every run in $out.
measure() {
	local round mib t
	: >"$log"
	rm -f "$out"/runs-*.txt "$out/when"
	say "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	say "tools: $(mkfs.xfs -V 2>&1 | head -n 1); $(mkfs.btrfs --version 2>&1 | head -n 1); $(mkfs.ext4 -V 2>&1 | head -n 1)"
	say "libspill: $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)"
	ra_kb=$(cat "/sys/class/bdi/$(stat -c '%Hd:%Ld' /var/tmp)/read_ahead_kb" 2>/dev/null) || ra_kb=128
	say "/var/tmp: $(findmnt -no FSTYPE,SOURCE,OPTIONS --target /var/tmp), read_ahead_kb $ra_kb"
	for t in "${fs_list[@]}"; do mount_fs "$t"; done
	printf 'fork_sizes=(%s) move_mib=%s runs=%s fs_list=(%s)\n' "${fork_sizes[*]}" "$move_mib" "$runs" \
		"${fs_list[*]}" >"$out/sizes"

	targets=(plain "${fs_list[@]}")
	for ((round = 1; round <= runs; round++)); do
		say "round $round/$runs"
		for mib in "${fork_sizes[@]}"; do
			for t in "${targets[@]}"; do run "fork$mib-dirty" "$t" "$forkcopy" -s "$mib"; done
			for t in "${fs_list[@]}"; do run "fork$mib-sync" "$t" "$forkcopy" -s "$mib" -y; done
		done
		for t in "${targets[@]}"; do run move-dirty "$t" "$movecopy" -s "$move_mib"; done
		for t in "${fs_list[@]}"; do run move-sync "$t" "$movecopy" -s "$move_mib" -y; done
	done
	say "space"
	for t in "${fs_list[@]}"; do
		for mib in "${fork_sizes[@]}"; do run "space-fork$mib" "$t" "$forkcopy" -s "$mib" -y -d "${mnt[$t]}"; done
		run space-move "$t" "$movecopy" -s "$move_mib" -y -d "${mnt[$t]}"
	done
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), took $(((${EPOCHREALTIME/./} - t_start) / 1000000)) s;" \
		"load at the end: $(cut -d' ' -f1-3 /proc/loadavg)." >"$out/when"
}

# row LABEL CASE FIELD [plain]: one table row, plain's column filled only when asked.
row() {
	local line="| $1 |" t
	if [ "${4:-}" = plain ]; then line+=" $(stat_of "$2" plain "$3") |"; else line+=" - |"; fi
	for t in "${fs_list[@]}"; do line+=" $(stat_of "$2" "$t" "$3") |"; done
	echo "$line"
}
# space_row LABEL CASE A B: the growth from field A to field B of the space run, per file system.
space_row() {
	local line="| $1 | - |" t
	for t in "${fs_list[@]}"; do line+=" $(delta "$2" "$t" "$3" "$4") |"; done
	echo "$line"
}
gib() { awk -v m="$1" 'BEGIN { printf "%g GiB", m / 1024 }'; }
# report: the markdown table of the recorded runs.
report() {
	local header sep t mib g
	header="| case | plain malloc |"
	sep="|---|---|"
	for t in "${fs_list[@]}"; do
		case $t in xfs) header+=" XFS (reflink=1) |" ;; *) header+=" $t |" ;; esac
		sep+="---|"
	done
	echo "$header"
	echo "$sep"
	for mib in "${fork_sizes[@]}"; do
		g=$(gib "$mib")
		row "fork, $g dirty: s until the child runs" "fork$mib-dirty" child_start_s plain
		row "… dirty + writeback memory at the fork, MiB" "fork$mib-dirty" dirty_mib plain
		row "… the child's first read of its copy (a word per page), s" "fork$mib-dirty" scan_s plain
		row "fork, $g after sync: s until the child runs" "fork$mib-sync" child_start_s
		row "… the sync() before it, s" "fork$mib-sync" sync_s
		row "… the child's first read of its copy, s" "fork$mib-sync" scan_s
	done
	g=$(gib "$move_mib")
	row "realloc moving $g dirty: s" move-dirty realloc_s plain
	row "… dirty + writeback memory at the realloc, MiB" move-dirty dirty_mib plain
	row "… read of the moved block (a word per page), s" move-dirty read_s plain
	row "realloc moving $g after sync: s" move-sync realloc_s
	row "… the sync() before it, s" move-sync sync_s
	row "… read of the moved block, s" move-sync read_s
	for mib in "${fork_sizes[@]}"; do
		g=$(gib "$mib")
		space_row "space, fork $g: the written buffer, MiB" "space-fork$mib" used_start used_written
		space_row "… added while the child holds its copy, MiB" "space-fork$mib" used_written used_child
		space_row "… left after the child exited and the buffer was freed, MiB" "space-fork$mib" used_start used_end
	done
	space_row "space, realloc move: the two written buffers, MiB" space-move used_start used_written
	space_row "… added by the move (new copy, old block freed), MiB" space-move used_written used_moved
	space_row "… left after both were freed, MiB" space-move used_start used_end
	echo
	echo "$runs round(s): median (lowest-highest run); space from one run with -y -d."
	cat "$out/when" 2>/dev/null
}

[ "$table_only" = 1 ] || measure
report >"$out/results.md"
cat "$out/results.md"
