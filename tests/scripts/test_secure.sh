#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_secure.sh - in secure mode (AT_SECURE: a setuid program) no SPILL_* variable is honoured.
# The probe is linked against libspill.so with an absolute rpath (LD_PRELOAD is ignored for
# setuid programs), made setuid to nobody and run as root with SPILL_THRESHOLD=1M, SPILL_STATS
# and SPILL_LOG: a 2 MiB block must stay in RAM, no stats file, no log line. The same binary
# without the setuid bit is the control: there the variables do take effect.
set -u
. "$(dirname "$0")/fslib.sh"
[ "$(id -u)" = 0 ] || skip "not root: cannot make a setuid program owned by another user"
id nobody >/dev/null 2>&1 || skip "no user nobody"
# a directory nobody can reach (TEST_TMP is 0700), on a file system without nosuid
d=$(mktemp -d /var/tmp/spill-secure.XXXXXX) && fslib_files+=("$d")
chmod 755 "$d"
case ",$(findmnt -n -o OPTIONS -T "$d")," in
*,nosuid,*) skip "$d is on a nosuid mount: setuid execution is impossible here" ;;
esac
mkdir "$d/lib" "$d/out" && chmod 1777 "$d/out"
cp "$SPILL_LIB" "$d/lib/libspill.so" && chmod 755 "$d/lib" "$d/lib/libspill.so"
cc -std=c11 -D_GNU_SOURCE -O2 -o "$d/probe" "$SPILL_SRC/tests/scripts/spillprobe.c" \
	-L"$d/lib" -lspill -Wl,-rpath,"$d/lib" -Wl,--no-as-needed ||
	{ echo "FAIL: cannot link the probe against libspill.so"; exit 1; }

# run NAME: the probe with the SPILL_* settings; sets rc, out, err.
run() {
	out=$d/out/$1.out err=$d/out/$1.err
	rm -f "$d/out/stats-$1.json"
	env -u LD_PRELOAD SPILL_THRESHOLD=1M SPILL_DIR="$d/out" SPILL_STATS="$d/out/stats-$1.json" \
		SPILL_LOG=stderr "$d/probe" spills 2 >"$out" 2>"$err"
	rc=$?
	echo "$1: exit $rc, stdout: $(tr '\n' ' ' <"$out") stderr: $(tr '\n' ' ' <"$err")"
}

run control
if [ $rc = 0 ] && grep -qx 'spilled=1' "$out" && [ -s "$d/out/stats-control.json" ] &&
   grep -q '^libspill: ' "$err"; then
	pass "control (not setuid): the block spills, stats and log are written"
else
	fail "control: the linked probe does not spill with SPILL_THRESHOLD=1M, so the test proves nothing"
fi

chown nobody "$d/probe" && chmod 4755 "$d/probe"
run setuid
[ $rc = 126 ] && skip "setuid execution is refused here (exit 126)"
if ! grep -q 'spilled=' "$out"; then
	fail "setuid: the probe did not run: exit $rc"
else
	grep -qx 'secure=1' "$out" && pass "setuid: the probe runs with AT_SECURE=1" ||
		fail "setuid: AT_SECURE is not set in the probe"
	grep -qx 'spilled=0' "$out" && pass "setuid: SPILL_THRESHOLD ignored, the 2 MiB block is in RAM" ||
		fail "setuid: the 2 MiB block was spilled: SPILL_THRESHOLD was honoured"
	[ ! -e "$d/out/stats-setuid.json" ] && pass "setuid: SPILL_STATS ignored, no stats file" ||
		fail "setuid: a stats file was written: $(cat "$d/out/stats-setuid.json")"
	! grep -q '^libspill: ' "$err" && pass "setuid: SPILL_LOG ignored, no log line" ||
		fail "setuid: log lines: $(grep '^libspill: ' "$err")"
	[ -z "$(ls -A "$d/out" | grep -v '^\(control\|setuid\|stats-control\)')" ] ||
		fail "setuid: files appeared in SPILL_DIR: $(ls -A "$d/out")"
fi
finish
