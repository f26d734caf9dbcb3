#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_tmpfile_fallback.sh - a SPILL_DIR whose file system refuses O_TMPFILE takes the fallback
# path: one "does not support O_TMPFILE" message, a named file unlinked at once (no name of
# libspill's left in the directory), correct results, and, where the file system has
# fallocate, blocks that really spill on that path.
#
# The file system is the first of these that refuses O_TMPFILE:
# - SPILL_TEST_FS, a fresh file system handed in by tests/vm/scenario_fs.sh (the test skips
#   if that one has O_TMPFILE);
# - overlayfs, mounted here over directories in TEST_TMP: before Linux 6.6 it has no
#   O_TMPFILE but has fallocate, so the fallback spills end to end (make check-vm, 6.1);
# - bindfs (FUSE): no O_TMPFILE and no fallocate, so libspill must refuse to spill there (no
#   SIGBUS risk) and serve the blocks from RAM; the test then skips visibly after its checks,
#   since the spilling part is left to the unit tests (spill_backing_force_named).
# Skips when none refuses O_TMPFILE here (Linux 6.6 and later without bindfs).
set -u
. "$(dirname "$0")/fslib.sh"
build_probe

# tmpfile DIR: "accepts", or why O_TMPFILE is refused in DIR.
tmpfile() {
	python3 -c 'import os,sys
try: os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600)); print("accepts")
except OSError as e: print(e.strerror)' "$1" 2>&1
}

# Candidates: "NAME DIR NAMES-DIR" (NAMES-DIR: where a name of libspill's would show).
tried=()
pick() {
	local r
	r=$(tmpfile "$2")
	echo "O_TMPFILE on $1: $r"
	tried+=("$1: O_TMPFILE $r")
	[ "$r" != accepts ] && fs=$1 mnt=$2 names=$3
}
fs=''
if [ -n "${SPILL_TEST_FS:-}" ]; then
	pick "$(fs_type "$SPILL_TEST_FS")" "$SPILL_TEST_FS" "$SPILL_TEST_FS"
	[ -n "$fs" ] || skip "SPILL_TEST_FS $SPILL_TEST_FS ($(fs_type "$SPILL_TEST_FS")) has O_TMPFILE: no fallback to test there"
fi
if [ -z "$fs" ]; then
	o=$TEST_TMP/ovl
	mkdir -p "$o/lower" "$o/upper" "$o/work" "$o/mnt"
	if out=$(mount -t overlay -o "lowerdir=$o/lower,upperdir=$o/upper,workdir=$o/work" overlay "$o/mnt" 2>&1); then
		fslib_mounts+=("$o/mnt")
		pick overlayfs "$o/mnt" "$o/upper"
	else
		tried+=("overlayfs: cannot mount: $out")
	fi
fi
if [ -z "$fs" ]; then
	if ! command -v bindfs >/dev/null; then
		tried+=("bindfs: not installed (apt-get install bindfs)")
	elif [ ! -c /dev/fuse ]; then
		tried+=("bindfs: no /dev/fuse here")
	else
		mkdir -p "$TEST_TMP/src" "$TEST_TMP/mnt"
		if out=$(bindfs "$TEST_TMP/src" "$TEST_TMP/mnt" 2>&1); then
			fslib_mounts+=("$TEST_TMP/mnt")
			pick bindfs "$TEST_TMP/mnt" "$TEST_TMP/src"
		else
			tried+=("bindfs: cannot mount: $out")
		fi
	fi
fi
[ -n "$fs" ] || skip "no file system here refuses O_TMPFILE (${tried[*]})"
echo "using $fs at $mnt"

# libfuse renames a file unlinked while open to .fuse_hidden*: that name is FUSE's, not ours
our_names() { ls -A "$names" | grep -v -e '^\.fuse_hidden' -e '^lost+found$'; }
before=$(our_names)

env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$mnt" SPILL_THRESHOLD=1M "$probe" hold 16 \
	>"$TEST_TMP/hold.out" 2>"$TEST_TMP/hold.err" &
pid=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$TEST_TMP/hold.out" && break; sleep 0.1; done
during=$(our_names)
kill $pid; wait $pid 2>/dev/null
echo "while holding: $(cat "$TEST_TMP/hold.out"); names in the directory: [$(ls -A "$names" | tr '\n' ' ')]"
[ "$during" = "$before" ] && pass "no name of libspill's in the directory while the program runs" ||
	fail "file names in the directory while the program runs: $during"

env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$mnt" SPILL_THRESHOLD=1M SPILL_STATS="$TEST_TMP/stats.json" \
	"$probe" fill 6 8 >"$TEST_TMP/fill.out" 2>"$TEST_TMP/fill.err"
rc=$?
echo "fill: exit $rc: $(grep '^fill:' "$TEST_TMP/fill.out")"
echo "    stderr: $(cat "$TEST_TMP/fill.err")"
echo "    stats: $(cat "$TEST_TMP/stats.json")"
[ $rc = 0 ] && grep -qx ok "$TEST_TMP/fill.out" && pass "6 x 8 MiB blocks correct on the fallback path" ||
	fail "fill on the fallback path: exit $rc"
n=$(grep -c 'does not support O_TMPFILE' "$TEST_TMP/fill.err")
if [ "$n" = 1 ] && grep -q '^libspill: SPILL_DIR=.*does not support O_TMPFILE' "$TEST_TMP/fill.err"; then
	pass "one \"libspill: ... does not support O_TMPFILE\" message"
else
	fail "expected exactly one \"does not support O_TMPFILE\" message, got $n"
fi
sleep 0.2
[ "$(our_names)" = "$before" ] && pass "no file name left after exit" || fail "files left: $(our_names)"
[ "$fails" -gt 0 ] && finish
if grep -q ' spilled=6 ' "$TEST_TMP/fill.out"; then
	pass "the blocks spilled on the fallback path ($fs)"
	finish
fi
if fallocate -l 4096 "$mnt/falloc-probe" 2>/dev/null; then
	rm -f "$mnt/falloc-probe"
	fail "$fs supports fallocate here, yet nothing spilled on the fallback path"
	finish
fi
skip "fallback message and cleanup checked; $fs has no fallocate, so spilling on the fallback path is left to the unit tests"
