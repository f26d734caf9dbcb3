#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_wrapper.sh - the spill command: options -> SPILL_* variables, value checks, library
# lookup, exit statuses, static binaries, signals, and a real spill with its statistics.
# shellcheck disable=SC2015,SC2016 # pass never fails; the $ are for the inner sh
set -u
cd "$TEST_TMP" || exit 1

spill=$SPILL_BUILD/spill
fails=0
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; fails=$((fails + 1)); }

# run CMD...: sets rc, out and err.
run() {
	out=$("$@" 2>"$TEST_TMP/err")
	rc=$?
	err=$(<"$TEST_TMP/err")
}

# expect NAME RC: checks the last run's exit status.
expect() {
	if [ "$rc" = "$2" ]; then
		pass "$1"
	else
		fail "$1: exit $rc, wanted $2"
		printf '    stdout: %s\n    stderr: %s\n' "$out" "$err"
	fi
}

# env_has NAME VAR=VALUE: the last run's stdout (env output) holds exactly that line.
env_has() {
	if grep -qxF -- "$2" <<<"$out"; then
		pass "$1"
	else
		fail "$1: no line \"$2\" in: $(grep -E '^(SPILL_|LD_PRELOAD)' <<<"$out" | tr '\n' ' ')"
	fi
}

[ -x "$spill" ] || { echo "$spill is missing; run make"; exit 1; }
command -v cc >/dev/null || { echo "no C compiler"; exit 77; }

# Empty preload libraries keep the option checks independent of libspill itself.
echo 'int spill_test_dummy1;' | cc -shared -fPIC -o libdummy1.so -x c - || exit 1
echo 'int spill_test_dummy2;' | cc -shared -fPIC -o libdummy2.so -x c - || exit 1
dummy1=$TEST_TMP/libdummy1.so dummy2=$TEST_TMP/libdummy2.so
unset LD_PRELOAD SPILL_LIBRARY SPILL_THRESHOLD SPILL_DIR SPILL_MAX SPILL_MIN_FREE SPILL_ON_FAIL \
	SPILL_FORK SPILL_LOG SPILL_STATS SPILL_ONLY SPILL_WHEN SPILL_HEADROOM SPILL_DISABLE
mkdir -p dir

# --- options become variables -------------------------------------------------
run env SPILL_LIBRARY="$dummy1" "$spill" -t 1M -d dir --max 2G --min-free 10% --on-fail null \
	--fork drop --log --stats=s.%p.json --only cc1,ld --when pressure --headroom 70% env
expect "separate-value options run the command" 0
for kv in SPILL_THRESHOLD=1M "SPILL_DIR=$(cd -P dir && pwd -P)" SPILL_MAX=2G SPILL_MIN_FREE=10% \
	SPILL_ON_FAIL=null SPILL_FORK=drop SPILL_LOG=stderr "SPILL_STATS=$PWD/s.%p.json" \
	SPILL_ONLY=cc1:ld SPILL_WHEN=pressure SPILL_HEADROOM=70% "LD_PRELOAD=$dummy1"; do
	env_has "option -> ${kv%%=*}" "$kv"
done
run env SPILL_LIBRARY="$dummy1" "$spill" --threshold=2M --dir="$TEST_TMP" --max=3G --min-free=1G \
	--on-fail=abort --fork=copy --log=log.txt --stats=stderr --only=a:b --when=always \
	--headroom=50 env
expect "--opt=VALUE options run the command" 0
for kv in SPILL_THRESHOLD=2M "SPILL_DIR=$(cd -P "$TEST_TMP" && pwd -P)" SPILL_MAX=3G SPILL_MIN_FREE=1G \
	SPILL_ON_FAIL=abort SPILL_FORK=copy "SPILL_LOG=$PWD/log.txt" SPILL_STATS=stderr \
	SPILL_ONLY=a:b SPILL_WHEN=always SPILL_HEADROOM=50; do
	env_has "--opt=VALUE -> ${kv%%=*}" "$kv"
done
run env SPILL_LIBRARY="$dummy1" "$spill" -t512K -- env
env_has "-tSIZE form and --" SPILL_THRESHOLD=512K

# --- options beat the environment, which passes through otherwise --------------
run env SPILL_LIBRARY="$dummy1" SPILL_THRESHOLD=5M SPILL_MAX=9G "$spill" -t 1M env
env_has "option beats SPILL_THRESHOLD from the environment" SPILL_THRESHOLD=1M
env_has "environment passes through without an option" SPILL_MAX=9G

# --- LD_PRELOAD: prepended, never replaced ---------------------------------------
run env SPILL_LIBRARY="$dummy1" LD_PRELOAD="$dummy2" "$spill" env
env_has "library prepended to LD_PRELOAD" "LD_PRELOAD=$dummy1 $dummy2"
run env SPILL_LIBRARY="$dummy1" "$spill" sh -c 'echo "$LD_PRELOAD"'
[ "$out" = "$dummy1" ] && pass "LD_PRELOAD is the library alone when unset" ||
	fail "LD_PRELOAD without an old value: \"$out\""

# --- bad values: exit 2, "spill: error:", usage, and the command never runs -------
bad=(
	"-t 6x" "-t 0" "-t 0K" "-t 100iB" "-t 18446744073709551616" "-t 16777216T" "--threshold="
	"--max -1" "--max 1.5G" "--min-free 101%" "--min-free 5%%" "--min-free x"
	"--on-fail disk" "--fork share" "--when sometimes" "--headroom 0" "--headroom 120%"
	"--headroom 8O%" "-d $TEST_TMP/nonexistent" "-d $TEST_TMP/libdummy1.so" "--only=" "--only a,,b"
	"--only /bin/ls" "--log=" "--stats=" "--help=x" "--bogus" "-x" "-t"
)
for b in "${bad[@]}"; do
	rm -f ran
	# shellcheck disable=SC2086 # each entry is an option and its value
	run env SPILL_LIBRARY="$dummy1" "$spill" $b touch ran
	if [ "$rc" = 2 ] && [[ $err == "spill: error: "* ]] && [[ $err == *"usage: spill "* ]] && [ ! -e ran ]; then
		pass "bad value $b -> exit 2"
	else
		fail "bad value $b: exit $rc, stderr \"$err\", ran=$([ -e ran ] && echo yes || echo no)"
	fi
done
mkdir -p ro && chmod 0555 ro
if [ "$(id -u)" != 0 ]; then
	run env SPILL_LIBRARY="$dummy1" "$spill" -d ro true
	expect "unwritable --dir -> exit 2" 2
fi

# --- the wrapper accepts exactly what the library accepts --------------------------
if [ -f "$SPILL_LIB" ]; then
	agree=1
	for v in 1 64M 64m 64MiB 64mib 64MB 100B 100b 007 100iB 0 0K 6x 1.5G " 1" 18446744073709551615 \
		18446744073709551616 17179869183G 17179869184G 16777215T 16777216T; do
		run env SPILL_LIBRARY="$dummy1" "$spill" -t "$v" true
		w=$(env SPILL_THRESHOLD="$v" LD_PRELOAD="$SPILL_LIB" true 2>&1)
		if { [ "$rc" = 0 ] && [ -n "$w" ]; } || { [ "$rc" != 0 ] && [ -z "$w" ]; }; then
			fail "threshold \"$v\": wrapper exit $rc, library said \"$w\""
			agree=0
		fi
	done
	for v in 0 1 50 80% 100% 101 0% 8x; do
		run env SPILL_LIBRARY="$dummy1" "$spill" --headroom "$v" true
		w=$(env SPILL_HEADROOM="$v" LD_PRELOAD="$SPILL_LIB" true 2>&1)
		if { [ "$rc" = 0 ] && [ -n "$w" ]; } || { [ "$rc" != 0 ] && [ -z "$w" ]; }; then
			fail "headroom \"$v\": wrapper exit $rc, library said \"$w\""
			agree=0
		fi
	done
	[ $agree = 0 ] || pass "wrapper and library agree on sizes and percentages"
fi

# --- usage, help, version -----------------------------------------------------------
run env SPILL_LIBRARY="$dummy1" "$spill"
expect "no command -> exit 2" 2
[[ $err == *"usage: spill "* ]] && pass "no command prints the usage" || fail "no command: stderr \"$err\""
run env SPILL_LIBRARY="$dummy1" "$spill" -t 1M --
expect "options and -- but no command -> exit 2" 2
run "$spill" --help
expect "--help -> exit 0" 0
[[ $out == "usage: spill "* ]] && [ -z "$err" ] && pass "--help goes to stdout" || fail "--help: \"$out\" \"$err\""
for o in --threshold --dir --max --min-free --on-fail --fork --log --stats --only --when --headroom; do
	[[ $out == *"$o"* ]] || fail "--help does not mention $o"
done
run "$spill" -h
expect "-h -> exit 0" 0
run "$spill" --version
expect "--version -> exit 0" 0
[[ $out == "spill (libspill) "[0-9]* ]] && pass "--version prints a version" || fail "--version: \"$out\""

# --- command lookup: 127 not found, 126 not executable, status passes through ---------
run env SPILL_LIBRARY="$dummy1" "$spill" spill-no-such-command-here
expect "missing command -> exit 127" 127
[[ $err == spill:* ]] && pass "missing command message starts with spill:" || fail "missing: \"$err\""
run env SPILL_LIBRARY="$dummy1" "$spill" ./no-such-file
expect "missing ./file -> exit 127" 127
printf '#!/bin/sh\necho script ran\n' >noexec.sh
chmod 0644 noexec.sh
run env SPILL_LIBRARY="$dummy1" "$spill" ./noexec.sh
expect "non-executable ./file -> exit 126" 126
mkdir -p pathdir && cp noexec.sh pathdir/spill-noexec-cmd
run env SPILL_LIBRARY="$dummy1" PATH="$TEST_TMP/pathdir:$PATH" "$spill" spill-noexec-cmd
expect "non-executable file in PATH -> exit 126" 126
run env SPILL_LIBRARY="$dummy1" "$spill" "$TEST_TMP/dir"
expect "directory -> exit 126" 126
chmod 0755 noexec.sh
run env SPILL_LIBRARY="$dummy1" "$spill" ./noexec.sh
[ "$rc" = 0 ] && [ "$out" = "script ran" ] && pass "#! scripts run" || fail "script: exit $rc \"$out\" \"$err\""
run env SPILL_LIBRARY="$dummy1" "$spill" sh -c 'exit 7'
expect "exit status passes through" 7
run env SPILL_LIBRARY="$dummy1" "$spill" sh -c 'kill -TERM $$'
expect "death by SIGTERM passes through" 143
run env SPILL_LIBRARY="$dummy1" "$spill" --stats sh -c 'exit 9'
expect "--stats summary mode keeps the exit status" 9
run env SPILL_LIBRARY="$dummy1" "$spill" sh -c 'echo "$0"'
[ "$out" = sh ] && pass "argv[0] is kept" || fail "argv[0] is \"$out\""

# --- statically linked programs are refused -------------------------------------------
printf '#include <stdio.h>\nint main(void) { puts("static ran"); return 0; }\n' >hello.c
cc -O1 -o hello-dyn hello.c || exit 1
run env SPILL_LIBRARY="$dummy1" "$spill" ./hello-dyn
[ "$rc" = 0 ] && [ "$out" = "static ran" ] && pass "dynamic ELF runs" || fail "dynamic ELF: exit $rc \"$err\""
if cc -static -O1 -o hello-static hello.c 2>/dev/null && ./hello-static >/dev/null; then
	run env SPILL_LIBRARY="$dummy1" "$spill" ./hello-static
	expect "static binary -> exit 1" 1
	[[ $err == "spill: error: ./hello-static is statically linked; LD_PRELOAD cannot reach its malloc" ]] &&
		[ -z "$out" ] && pass "static binary refused with the message" || fail "static: \"$out\" \"$err\""
	mkdir -p sbin && cp hello-static sbin/spill-static-hello
	run env SPILL_LIBRARY="$dummy1" PATH="$TEST_TMP/sbin:$PATH" "$spill" spill-static-hello
	expect "static binary found in PATH -> exit 1" 1
	if cc -static-pie -fPIE -O1 -o hello-spie hello.c 2>/dev/null && ./hello-spie >/dev/null; then
		run env SPILL_LIBRARY="$dummy1" "$spill" ./hello-spie
		expect "static-pie binary -> exit 1" 1
	else
		echo "notice: cc -static-pie does not work here; static-pie check skipped"
	fi
else
	echo "notice: cc -static does not work here (libc.a is in libc6-dev); static check skipped"
fi

# --- library lookup ---------------------------------------------------------------------
run env SPILL_LIBRARY="$TEST_TMP/nope/libspill.so" "$spill" true
expect "SPILL_LIBRARY naming a missing file -> exit 1" 1
[[ $err == "spill: error: "*SPILL_LIBRARY* ]] && pass "missing SPILL_LIBRARY says so" || fail "\"$err\""
run env SPILL_LIBRARY="$dummy2" "$spill" sh -c 'echo "$LD_PRELOAD"'
[ "$out" = "$dummy2" ] && pass "SPILL_LIBRARY overrides the built-in path" || fail "override: \"$out\""
# an unsubstituted copy of scripts/spill finds ../lib, then ../build, relative to its real location
mkdir -p tree/bin tree/lib tree/build elsewhere
cp "$SPILL_SRC/scripts/spill" tree/bin/spill && chmod 0755 tree/bin/spill
run tree/bin/spill true
expect "no library anywhere -> exit 1" 1
[[ $err == "spill: error: cannot find libspill.so ("* ]] && pass "cannot-find message" || fail "\"$err\""
cp "$dummy2" tree/build/libspill.so
run tree/bin/spill sh -c 'echo "$LD_PRELOAD"'
[ "$out" = "$TEST_TMP/tree/build/libspill.so" ] && pass "../build/libspill.so found" || fail "build: \"$out\" \"$err\""
cp "$dummy1" tree/lib/libspill.so
ln -sf "$TEST_TMP/tree/bin/spill" elsewhere/spill
run elsewhere/spill sh -c 'echo "$LD_PRELOAD"'
[ "$out" = "$TEST_TMP/tree/lib/libspill.so" ] && pass "../lib/libspill.so found through a symlink" ||
	fail "lib via symlink: \"$out\" \"$err\""
run "$spill" sh -c 'echo "$LD_PRELOAD"'
[ "$out" = "$(cd -P "$SPILL_BUILD" && pwd -P)/libspill.so" ] || [ "$out" = "$SPILL_BUILD/libspill.so" ] &&
	pass "build/spill uses the build tree's library" || fail "build/spill: \"$out\" \"$err\""

# --- signals reach the command in --stats summary mode -------------------------------------
env SPILL_LIBRARY="$dummy1" "$spill" --stats sh -c 'echo $$ >child.pid; exec sleep 30' 2>/dev/null &
wpid=$!
for _ in $(seq 50); do [ -s child.pid ] && break; sleep 0.1; done
sleep 0.2
kill -TERM "$wpid"
wait "$wpid"
rc=$?
cpid=$(cat child.pid 2>/dev/null)
if [ "$rc" = 143 ] && [ -n "$cpid" ] && ! kill -0 "$cpid" 2>/dev/null; then
	pass "SIGTERM to the wrapper reaches the command"
else
	fail "SIGTERM forwarding: wrapper exit $rc, child $cpid $(kill -0 "$cpid" 2>/dev/null && echo alive)"
	[ -z "$cpid" ] || kill "$cpid" 2>/dev/null
fi

# --- a real spill ----------------------------------------------------------------------------
if [ ! -f "$SPILL_LIB" ]; then
	fail "$SPILL_LIB is missing: cannot test a real spill"
else
	cat >big.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	size_t sz = (size_t)4 << 20;
	char *p[16];

	for (int i = 0; i < n && i < 16; i++) {
		if (!(p[i] = malloc(sz)))
			return 3;
		memset(p[i], i + 1, sz);
	}
	for (int i = 0; i < n && i < 16; i++) {
		if (p[i][sz - 1] != (char)(i + 1))
			return 4;
		free(p[i]);
	}
	puts("big done");
	return 0;
}
EOF
	cc -O1 -o big big.c || exit 1
	run "$spill" -t 1M -d "$TEST_TMP" --stats="$TEST_TMP/s.%p.json" ./big 4
	expect "real spill runs" 0
	line=$(cat "$TEST_TMP"/s.*.json 2>/dev/null)
	if [[ $line =~ \"spilled_allocs\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
		pass "stats show spilled_allocs = ${BASH_REMATCH[1]}"
	else
		fail "no spills in the stats: \"$line\" (stderr \"$err\")"
	fi
	run "$spill" -t 1M -d "$TEST_TMP" --stats sh -c './big 3; ./big 2; exit 5'
	expect "summary mode keeps the status of a spilling command" 5
	if [[ $err == *"spill: summary of sh (2 processes)"* ]] && [[ $err =~ spilled\ allocations\ +5 ]] &&
		[[ $err == *"peak spilled"*MiB* ]] && [[ $err == *elapsed* ]] && [[ $err == *"peak RSS"* ]]; then
		pass "summary sums every process's statistics"
	else
		fail "summary: \"$err\""
	fi
	run "$spill" -t 1M -d "$TEST_TMP" --max 5M --stats ./big 3
	[[ $err =~ fallbacks\ +2\ \(max:\ 2\) ]] && pass "summary names fallback reasons" || fail "fallbacks: \"$err\""
fi

echo "$fails failed"
[ "$fails" = 0 ]
