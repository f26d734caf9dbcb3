#!/usr/bin/env bash
# tests/run.sh [unit|integration|scripts|all] [NAME-FILTER]
# Runs libspill's tests and prints one closing line "N passed, N failed, N skipped".
# Exit status: 0 pass, 77 skip (the reason is the last line it printed), anything else fails.
# TEST_PREFIX="valgrind -q" (or "gdb --args") wraps unit and integration binaries.
# SPILL_TEST_ENV: VAR=VALUE words added to every integration test's environment after its .env
# file, so they win (tests/vm/scenario_kernel.sh makes the runs smaller under emulation).
# SPILL_TEST_SKIP: lines "NAME REASON" (NAME as printed, e.g. scripts/test_fuzz_config): those
# tests are not run and are reported as skipped for REASON (tests/vm/scenario_kernel.sh).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SPILL_BUILD:-$here/build}
unit_build=${SPILL_TEST_BUILD:-$build}
what=${1:-all}
filter=${2:-}
lib=$build/libspill.so
pass=0 fail=0 skip=0
failed_names=() skipped_names=()
tmp_root=$(mktemp -d "${SPILL_TEST_TMPDIR:-/var/tmp}/spill-test.XXXXXX")
trap 'rm -rf "$tmp_root"' EXIT

# record NAME STATUS LOG
record() {
	local name=$1 rc=$2 log=$3 secs
	secs=$(( $(date +%s) - started ))
	case $rc in
	0)  pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
	77) skip=$((skip + 1)); skipped_names+=("$name: $(tail -n 1 "$log")")
	    echo "SKIP $name: $(tail -n 1 "$log")" ;;
	*)  fail=$((fail + 1)); failed_names+=("$name")
	    echo "FAIL $name (exit $rc)"; sed 's/^/    /' "$log" | tail -n 60 ;;
	esac
}

# wanted NAME: in the filter and not skipped on purpose (then the skip is recorded).
wanted() {
	local n r
	[ -z "$filter" ] || [[ $1 == *"$filter"* ]] || return 1
	while read -r n r; do
		[ "$n" = "$1" ] || continue
		echo "$r" >"$tmp_root/skip.log"
		started=$(date +%s)
		record "$1" 77 "$tmp_root/skip.log"
		return 1
	done <<<"${SPILL_TEST_SKIP:-}"
}

run_unit() {
	local t name log
	for t in "$unit_build"/tests/unit/check_*; do
		[ -x "$t" ] || continue
		name=unit/$(basename "$t"); wanted "$name" || continue
		echo "=== $name ==="; started=$(date +%s)
		log=$tmp_root/$(basename "$t").log
		timeout 300 ${TEST_PREFIX:-} "$t" >"$log" 2>&1
		record "$name" $? "$log"
	done
}

# An integration test runs under LD_PRELOAD in a fresh SPILL_DIR; tests/integration/NAME.env
# adds KEY=VALUE lines (@DIR@ becomes that directory; PRELOAD=0 runs it without preload).
run_integration() {
	local t name dir log envf preload line
	local -a envs
	for t in "$build"/tests/integration/*; do
		[ -x "$t" ] || continue
		name=integration/$(basename "$t"); wanted "$name" || continue
		echo "=== $name ==="; started=$(date +%s)
		dir=$tmp_root/$(basename "$t"); mkdir -p "$dir"
		log=$dir.log
		envs=("SPILL_DIR=$dir" "SPILL_LIB=$lib" "SPILL_SRC=$here" "SPILL_BUILD=$build")
		preload=1
		envf=$here/tests/integration/$(basename "$t").env
		if [ -f "$envf" ]; then
			while IFS= read -r line; do
				case $line in ''|'#'*) continue ;; PRELOAD=0) preload=0; continue ;; esac
				envs+=("${line//@DIR@/$dir}")
			done <"$envf"
		fi
		# shellcheck disable=SC2206 # VAR=VALUE words
		envs+=(${SPILL_TEST_ENV:-})
		[ $preload = 1 ] && envs+=("LD_PRELOAD=$lib")
		(cd "$dir" && timeout 300 env "${envs[@]}" ${TEST_PREFIX:-} "$t") >"$log" 2>&1
		record "$name" $? "$log"
	done
}

# A script test gets SPILL_LIB, SPILL_BUILD, SPILL_SRC and a private TEST_TMP.
run_scripts() {
	local t name dir log
	for t in "$here"/tests/scripts/test_*.sh; do
		[ -f "$t" ] || continue
		name=scripts/$(basename "$t" .sh); wanted "$name" || continue
		echo "=== $name ==="; started=$(date +%s)
		dir=$tmp_root/$(basename "$t" .sh); mkdir -p "$dir"
		log=$dir.log
		(cd "$dir" && SPILL_LIB=$lib SPILL_BUILD=$build SPILL_SRC=$here TEST_TMP=$dir \
			timeout 600 bash "$t") >"$log" 2>&1 </dev/null
		record "$name" $? "$log"
	done
}

case $what in
unit) run_unit ;;
integration) run_integration ;;
scripts) run_scripts ;;
all) run_unit; run_integration; run_scripts ;;
*) echo "usage: tests/run.sh [unit|integration|scripts|all] [FILTER]" >&2; exit 2 ;;
esac

echo
for s in "${skipped_names[@]+"${skipped_names[@]}"}"; do echo "skipped: $s"; done
for f in "${failed_names[@]+"${failed_names[@]}"}"; do echo "failed: $f"; done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] && [ $((pass + skip)) -gt 0 ]
