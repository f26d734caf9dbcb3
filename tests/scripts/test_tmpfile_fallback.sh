#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_tmpfile_fallback.sh - a SPILL_DIR whose file system refuses O_TMPFILE (a FUSE bindfs
# mount: FUSE servers without a tmpfile operation answer EOPNOTSUPP) takes the fallback path:
# one "does not support O_TMPFILE" message, a named file unlinked at once (no name of libspill's
# left in the directory), correct results. bindfs has no fallocate either, so libspill must
# refuse to spill there (no SIGBUS risk) and serve the blocks from RAM; whether blocks really
# spill on the fallback path is then left to the unit tests (spill_backing_force_named), and
# the test says so by skipping visibly after its checks pass. Skips when bindfs is missing.
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
command -v bindfs >/dev/null || skip "bindfs is not installed (apt-get install bindfs), no file system here refuses O_TMPFILE"
[ -c /dev/fuse ] || skip "no /dev/fuse here"
src=$TEST_TMP/src mnt=$TEST_TMP/mnt
mkdir -p "$src" "$mnt"
out=$(bindfs "$src" "$mnt" 2>&1) || skip "cannot mount bindfs here: $out"
fslib_mounts+=("$mnt")
refuses=$(python3 -c 'import os,sys
try: os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600)); print("accepts")
except OSError as e: print(e.strerror)' "$mnt" 2>&1)
echo "O_TMPFILE on bindfs: $refuses"
[ "$refuses" = accepts ] && skip "this bindfs accepts O_TMPFILE: the fallback cannot be exercised here"

env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$mnt" SPILL_THRESHOLD=1M "$probe" hold 16 \
	>"$TEST_TMP/hold.out" 2>"$TEST_TMP/hold.err" &
pid=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$TEST_TMP/hold.out" && break; sleep 0.1; done
# libfuse renames a file unlinked while open to .fuse_hidden*: that name is FUSE's, not ours
during=$(ls -A "$src" | grep -v '^\.fuse_hidden')
kill $pid; wait $pid 2>/dev/null
echo "while holding: $(cat "$TEST_TMP/hold.out"); names in the directory: [$(ls -A "$src" | tr '\n' ' ')]"
[ -z "$during" ] && pass "no name of libspill's in the directory while the program runs" ||
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
[ -z "$(ls -A "$src")" ] && pass "no file name left after exit" || fail "files left: $(ls -A "$src")"
[ "$fails" -gt 0 ] && finish
if grep -q ' spilled=6 ' "$TEST_TMP/fill.out"; then
	pass "the blocks spilled on the fallback path"
	finish
fi
if fallocate -l 4096 "$mnt/falloc-probe" 2>/dev/null; then
	rm -f "$mnt/falloc-probe"
	fail "bindfs supports fallocate here, yet nothing spilled on the fallback path"
	finish
fi
skip "fallback message and cleanup checked; bindfs has no fallocate, so spilling on the fallback path is left to the unit tests"
