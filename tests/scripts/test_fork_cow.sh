#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_fork_cow.sh - SPILL_FORK=cow (the default) as users meet it: Python's multiprocessing
# with the fork start method over a spilled numpy array, os.fork() in Python, and under a
# memory cap a read-mostly Pool over an array larger than the cap, and a single-threaded
# parent that rewrites its 2x-the-cap inherited buffer after its child has exited.
# Parts that need numpy or a memory cgroup skip visibly when those are missing.
set -u
SPILL_SRC=${SPILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SPILL_BUILD=${SPILL_BUILD:-$SPILL_SRC/build}
SPILL_LIB=${SPILL_LIB:-$SPILL_BUILD/libspill.so}
if [ -z "${TEST_TMP:-}" ]; then
	TEST_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/spill-test.XXXXXX")
	trap 'rm -rf "$TEST_TMP"' EXIT
fi
py=/usr/bin/python3
memcap=$SPILL_SRC/scripts/memcap
failures=0 skips=()
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

[ -f "$SPILL_LIB" ] || { echo "FAIL: $SPILL_LIB is not built (run make)"; exit 1; }
spill=(env LD_PRELOAD="$SPILL_LIB" SPILL_DIR="$TEST_TMP" SPILL_THRESHOLD=8M)

# (a) multiprocessing.Pool, fork start method, over a spilled array: same result as plain,
# and the workers spill nothing of their own (no copies).
cat >"$TEST_TMP/pool.py" <<'EOF'
import multiprocessing as mp, sys
import numpy as np
a = np.arange(int(sys.argv[1]) << 17, dtype=np.float64)   # SIZE_MIB of float64
a[::1024] *= 3
def part(i):
    n = len(a) // 8
    return float(a[i * n:(i + 1) * n].sum())
if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(4) as p:
        print(repr(sum(p.map(part, range(8)))))
EOF
if ! "$py" -c 'import numpy' 2>/dev/null; then
	skips+=("numpy is not installed for $py: parts (a) and (c) not run")
else
	want=$("$py" "$TEST_TMP/pool.py" 128)
	got=$("${spill[@]}" SPILL_LOG="$TEST_TMP/pool.log" "$py" "$TEST_TMP/pool.py" 128) ||
		fail "(a) the Pool run failed"
	[ -n "$want" ] && [ "$got" = "$want" ] || fail "(a) Pool result \"$got\", plain gives \"$want\""
	# Workers end by os._exit or SIGTERM (no exit-time stats): the log shows who spilled.
	creators=$(awk '$3 == "create" { print $2 }' "$TEST_TMP/pool.log" | sort -u | wc -l)
	[ "$creators" = 1 ] || fail "(a) $creators processes spilled; only the parent should have (workers copied?)"
	echo "(a) multiprocessing.Pool(4) over a spilled 128 MiB array: same result, no worker copied it"
fi

# (b) os.fork() in Python: isolation both ways, then the parent's rewrite after the wait.
cat >"$TEST_TMP/osfork.py" <<'EOF'
import os
n = 32 << 20
b = bytearray(b"p") * n
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)                 # the parent has rewritten its copy
    ok = b.count(b"p") == n
    b[:] = b"c" * n
    os._exit(0 if ok and b.count(b"c") == n else 1)
os.close(r)
b[:] = b"P" * n
os.write(w, b"x")
_, st = os.waitpid(pid, 0)
assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, "the child saw the parent's write"
assert b.count(b"P") == n, "the parent saw the child's write"
b[1 << 20] = ord("q")
assert b.count(b"P") == n - 1
print("ok")
EOF
got=$("${spill[@]}" "$py" "$TEST_TMP/osfork.py" 2>&1)
[ "$got" = ok ] || fail "(b) os.fork: $got"
echo "(b) os.fork() in Python with a spilled 32 MiB bytearray: isolated both ways"

# capped NAME LIMIT COMMAND...: runs COMMAND under memcap; sets rc and out.
capped() {
	local name=$1 limit=$2
	shift 2
	"$memcap" "$limit" -- "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err"
	rc=$? out=$(cat "$TEST_TMP/$name.out")
}

# FORK_COW_CAP_MIB: the cap of (c) and (d), 256 by default (check-vm makes it smaller under emulation)
cap=${FORK_COW_CAP_MIB:-256} pool=$((${FORK_COW_CAP_MIB:-256} * 3 / 2)) rewrite=$((${FORK_COW_CAP_MIB:-256} * 2))
capped probe 64M true
if [ "$rc" = 125 ]; then
	skips+=("memcap cannot create a memory cgroup here: parts (c) and (d) not run: $(tail -n 1 "$TEST_TMP/probe.err")")
else
	# (c) a read-mostly Pool over an array 1.5x the cap
	if "$py" -c 'import numpy' 2>/dev/null; then
		want=$("$py" "$TEST_TMP/pool.py" $pool)
		capped pool-plain ${cap}M "$py" "$TEST_TMP/pool.py" $pool
		[ "$rc" = 137 ] || fail "(c) plain Pool over $pool MiB under ${cap}M was not OOM-killed (status $rc)"
		capped pool-spill ${cap}M "${spill[@]}" "$py" "$TEST_TMP/pool.py" $pool
		[ "$rc" = 0 ] && [ -n "$want" ] && [ "$out" = "$want" ] ||
			fail "(c) Pool over $pool MiB under ${cap}M: status $rc, \"$out\", want \"$want\"; $(tail -n 3 "$TEST_TMP/pool-spill.err")"
		echo "(c) under a ${cap}M cap, Pool(4) over $pool MiB: plain OOM-killed, libspill right"
	fi
	# (d) a single-threaded parent rewrites its inherited buffer (2x the cap) twice after its child exited
	prog=$TEST_TMP/forkrewrite
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -o "$prog" "$SPILL_SRC/tests/scripts/forkrewrite.c" ||
		{ echo "FAIL: cannot build forkrewrite.c"; exit 1; }
	want=$("$prog" $rewrite 1 2)
	capped rewrite-plain ${cap}M "$prog" $rewrite 1 2
	[ "$rc" = 137 ] || fail "(d) plain $rewrite MiB rewrite under ${cap}M was not OOM-killed (status $rc)"
	capped rewrite-spill ${cap}M "${spill[@]}" "$prog" $rewrite 1 2
	[ "$rc" = 0 ] && [ "$out" = "$want" ] ||
		fail "(d) rewrite after the child exited under ${cap}M: status $rc, \"$out\", want \"$want\"; $(tail -n 3 "$TEST_TMP/rewrite-spill.err")"
	echo "(d) under a ${cap}M cap, $rewrite MiB rewritten twice after a fork: plain OOM-killed, libspill right"
fi

for s in "${skips[@]}"; do
	echo "note: $s"
done
if [ "$failures" != 0 ]; then
	echo "test_fork_cow: $failures failure(s)"
	exit 1
fi
if [ "${#skips[@]}" != 0 ]; then
	echo "${skips[-1]}"
	exit 77
fi
echo "test_fork_cow: all parts passed"
