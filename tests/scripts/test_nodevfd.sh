#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_nodevfd.sh - the wrapper works where /dev/fd does not exist (a minimal container or an
# initramfs): in a private mount namespace whose /dev has null, zero and urandom and nothing
# else, spill runs a command (exec and --stats), traces it, and spill top reads it.
# Needs root and unshare(1); skips (77) without them.
# shellcheck disable=SC2015 # pass never fails
set -u
. "$(dirname "$0")/fslib.sh"
build_probe
[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
command -v unshare >/dev/null || skip "unshare(1) is not installed"
unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"

mkdir -p spill dev
for n in null zero urandom; do : >"dev/$n"; done

# Everything below runs in the namespace; its output is checked afterwards.
cat >inside.sh <<'EOF'
set -u
for n in null zero urandom; do mount --bind "/dev/$n" "$PWD/dev/$n" || exit 90; done
mount --rbind "$PWD/dev" /dev || exit 91
echo "dev: $(ls /dev | tr '\n' ' ')"
[ ! -e /dev/fd ] && echo "no /dev/fd"
bash -c 'cat <(echo x)' >/dev/null 2>&1 || echo "process substitution fails here"
run() {
	local name=$1
	shift
	"$@" >"$name.out" 2>"$name.err"
	echo "$name: exit $?"
}
run exec "$SPILL" -t 1M -d "$PWD/spill" -- "$PROBE" spills 4
run stats "$SPILL" -t 1M -d "$PWD/spill" --stats -- "$PROBE" spills 4
run trace "$SPILL" -t 1M -d "$PWD/spill" --trace "$PWD/t.tsv" -- "$PROBE" spills 4
run static "$SPILL" -- /bin/true
run top "$SPILL" top --once
EOF
SPILL=$SPILL_BUILD/spill PROBE=$probe unshare -m bash inside.sh >inside.out 2>&1
rc=$?
cat inside.out
[ $rc = 0 ] || { echo "FAIL: the namespace set-up failed (exit $rc)"; exit 1; }
grep -q '^no /dev/fd$' inside.out && grep -q '^process substitution fails here$' inside.out ||
	{ echo "FAIL: /dev/fd was there after all: the test proves nothing"; exit 1; }
pass "a mount namespace without /dev/fd, where process substitution fails"

# check NAME: exit 0 and no complaint about a missing file.
check() {
	if grep -q "^$1: exit 0$" inside.out && ! grep -q 'No such file\|/dev/fd' "$1.err"; then
		pass "$2"
	else
		fail "$2: $(grep "^$1:" inside.out), $(cat "$1.out" "$1.err")"
	fi
}
check exec "spill -- COMMAND"
grep -q '^spilled=1$' exec.out || fail "the command did not spill: $(cat exec.out)"
check stats "spill --stats -- COMMAND (the summary)"
grep -q '^spill:   spilled allocations  1$' stats.err || fail "no summary: $(cat stats.err)"
check trace "spill --trace FILE -- COMMAND"
[ "$(head -c 7 t.tsv)" = "time_s	" ] || fail "no trace written: $(cat t.tsv)"
check static "spill -- /bin/true (the ELF check reads the header with od)"
check top "spill top --once"

finish
