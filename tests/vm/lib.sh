# SPDX-License-Identifier: MIT
# tests/vm/lib.sh - sourced by the scenario scripts in the check-vm guest: result counting
# and the helpers they share. A scenario exits 0 (pass), 77 (skip, the reason on its last
# line) or 1 (a check failed), like the script tests.
# shellcheck shell=bash disable=SC2016 # check's conditions are expanded when evaluated
set -u
S=${SPILL_SRC:?} B=${SPILL_BUILD:?}
W=${TMPDIR:?}	# the work disk (ext4, no discard) that init.sh mounted
export SPILL_LIB=${SPILL_LIB:-$B/libspill.so}
# tests/scripts/spillprobe.c, built on the host by check-vm.sh (the script tests use it too)
export SPILL_PROBE=$B/vm/spillprobe
# shellcheck disable=SC2034 # the scenarios use it
probe=$SPILL_PROBE
fails=0 notes=()

pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; fails=$((fails + 1)); }
note() { notes+=("$*"); echo "NOTICE: $*"; }

# finish [SKIP-REASON]: the scenario's exit status from the failures counted.
finish() {
	local n
	for n in "${notes[@]+"${notes[@]}"}"; do echo "notice: $n"; done
	if [ "$fails" -gt 0 ]; then
		echo "$fails check(s) failed"
		exit 1
	fi
	[ -z "${1:-}" ] || { echo "$1"; exit 77; }
	exit 0
}

# check NAME CONDITION: pass or fail on the exit status of the shell condition CONDITION.
check() {
	if eval "$2"; then pass "$1"; else fail "$1"; fi
}

# script_test NAME [VAR=VALUE...]: runs tests/scripts/NAME.sh as tests/run.sh does (a private
# TEST_TMP on the work disk), its output indented; passes on 0, notes a skip on 77.
script_test() {
	local name=$1 t rc
	shift
	t=$(mktemp -d "$W/$name.XXXXXX")
	echo "--- $name"
	(cd "$t" && env SPILL_LIB="$SPILL_LIB" SPILL_BUILD="$B" SPILL_SRC="$S" TEST_TMP="$t" "$@" \
		bash "$S/tests/scripts/$name.sh") </dev/null 2>&1 | tee "$t.log" | sed -u 's/^/    /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) pass "$name" ;;
	77) note "$name skipped: $(tail -n 1 "$t.log")" ;;
	*) fail "$name (exit $rc)" ;;
	esac
	rm -rf "$t" "$t.log"
	return "$rc"
}

# avail DIR: bytes available on DIR's file system.
avail() { stat -f -c '%a %S' "$1" | { read -r a s; echo $((a * s)); }; }

# vmstat_get NAME: a counter of /proc/vmstat.
vmstat_get() { sed -n "s/^$1 //p" /proc/vmstat; }

# field FILE KEY: a number from a SPILL_STATS JSON line.
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }
