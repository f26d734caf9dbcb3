#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_integration_extra.sh - what the integration programs cannot check from inside:
# SPILL_STATS at exit, fd and map counts under limits, invalid frees, numpy, the library's
# dependencies and exports, silence, and frees after the library's destructor.
set -u
lib=$SPILL_LIB
bin=$SPILL_BUILD/tests/integration
tmp=$TEST_TMP
py=/usr/bin/python3
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

for t in big_alloc many_blocks cxx_vector; do
	[ -x "$bin/$t" ] || { echo "$bin/$t is missing: run make programs"; exit 1; }
done
dir=$(cd "$tmp" && pwd -P)

# (a) SPILL_STATS: big_alloc makes exactly 4 spilled blocks (1M, 3M, 4M, 2M), all live at once.
rm -f "$tmp"/s.*.json
env SPILL_DIR="$tmp" SPILL_THRESHOLD=1M SPILL_STATS="$tmp/s.%p.json" LD_PRELOAD="$lib" \
	"$bin/big_alloc" >"$tmp/a.out" 2>"$tmp/a.err" || fail "(a) big_alloc exited $?: $(cat "$tmp/a.out" "$tmp/a.err")"
set -- "$tmp"/s.*.json
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	fail "(a) want one stats file s.<pid>.json, found: $*"
else
	"$py" - "$1" "$dir" <<'EOF' && ok "(a) SPILL_STATS $(cat "$1")" || fail "(a) SPILL_STATS $(cat "$1")"
import json, os, sys
path, want_dir = sys.argv[1], sys.argv[2]
text = open(path).read()
assert text.count("\n") == 1 and text.endswith("\n"), "want one line"
s = json.loads(text)
want = {"spilled_allocs": 4, "spilled_frees": 4, "spilled_bytes_live": 0,
        "spilled_bytes_peak": 10 << 20, "threshold": 1 << 20, "dir": want_dir,
        "fallbacks": 0, "fallback_reasons": {}}
bad = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
pid = os.path.basename(path)[2:-5]
if str(s.get("pid")) != pid:
    bad["pid"] = (s.get("pid"), pid)
if not s.get("mapped_bytes_peak", 0) >= 10 << 20:
    bad["mapped_bytes_peak"] = (s.get("mapped_bytes_peak"), ">= 10M")
for k, (got, w) in bad.items():
    print(f"  {k}: got {got!r}, want {w!r}")
sys.exit(1 if bad else 0)
EOF
fi

# (b) 10,000 live spilled blocks under `ulimit -n 64`: the descriptor count stays flat.
out=$( (ulimit -n 64 && env SPILL_DIR="$tmp" SPILL_THRESHOLD=4K LD_PRELOAD="$lib" \
	"$bin/many_blocks" 10000 8192 keep) 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -eq 0 ] && ok "(b) 10000 blocks under ulimit -n 64" || fail "(b) many_blocks 10000 8192 under ulimit -n 64: exit $rc"

# (c) 100,000 live spilled blocks with vm.max_map_count at its default: one mapping for all.
maxmap=$(cat /proc/sys/vm/max_map_count)
out=$(env SPILL_DIR="$tmp" SPILL_THRESHOLD=4K LD_PRELOAD="$lib" "$bin/many_blocks" 100000 4096 keep 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
if [ $rc -ne 0 ]; then
	fail "(c) many_blocks 100000 4096: exit $rc"
else
	ok "(c) 100000 blocks, vm.max_map_count=$maxmap, $(echo "$out" | grep -o 'maps [0-9]* -> [0-9]*')"
fi

# (d) an invalid free (into the middle of a spilled block) and a double free end the process.
cat >"$tmp/badfree.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
	char *p = malloc(2 << 20);
	memset(p, 1, 2 << 20);
	if (strcmp(argv[1], "middle") == 0)
		free(p + 8192);
	else if (strcmp(argv[1], "double") == 0) {
		free(p);
		free(p);
	} else if (strcmp(argv[1], "realloc-middle") == 0)
		p = realloc(p + 4096, 4 << 20);
	return 0;
}
EOF
cc -O0 -w -o "$tmp/badfree" "$tmp/badfree.c" || { echo "cannot compile badfree.c"; exit 1; }
for mode in middle double realloc-middle; do
	( env SPILL_DIR="$tmp" SPILL_THRESHOLD=1M LD_PRELOAD="$lib" "$tmp/badfree" $mode 2>"$tmp/d.err" ) 2>/dev/null
	rc=$?
	msg=$(cat "$tmp/d.err")
	if [ $rc -eq 134 ] && grep -q '^libspill: ' "$tmp/d.err"; then
		ok "(d) $mode: SIGABRT, \"$msg\""
	else
		fail "(d) $mode: exit $rc (want 134 = SIGABRT), stderr \"$msg\""
	fi
done

# (e) python3 with numpy: big arrays spill, results are right, the spill file is in its maps.
if ! "$py" -c 'import numpy' 2>/dev/null; then
	echo "SKIP (e): numpy is not installed for $py"
else
	env SPILL_DIR="$tmp" SPILL_THRESHOLD=1M SPILL_STATS="$tmp/py.json" LD_PRELOAD="$lib" "$py" - "$dir" \
		>"$tmp/e.out" 2>&1 <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
n = 4 << 20
a = np.arange(n, dtype=np.float64)                 # 32 MiB
b = np.ones(n, dtype=np.float64) * 3.0
c = a * b + 1.0
assert c.sum() == 3.0 * n * (n - 1) / 2 + n, c.sum()
m = np.arange(512 * 512, dtype=np.float64).reshape(512, 512) / 1e4   # 2 MiB
i = np.eye(512)
assert np.allclose(m @ i, m)
z = np.zeros((1024, 1024), dtype=np.int32)        # 4 MiB, calloc
assert not z.any()
big = np.concatenate([a, a])                       # 64 MiB
assert big[n + 12345] == 12345.0
maps = open("/proc/self/maps").read().splitlines()
# numpy madvise()s big arrays MADV_HUGEPAGE, which splits the one mapping into several VMAs:
# count files, not lines.
spill = [l for l in maps if (d + "/#") in l and l.endswith("(deleted)")]
files = {l.split()[5] for l in spill}
ranges = [tuple(int(x, 16) for x in l.split()[0].split("-")) for l in spill]
addr = a.__array_interface__["data"][0]
inside = any(lo <= addr < hi for lo, hi in ranges)
print(f"spill files: {sorted(files)}, {len(spill)} VMAs; array at {addr:#x} inside: {inside}")
assert len(files) == 1 and inside
print("numpy ok")
EOF
	rc=$?
	sed 's/^/    /' "$tmp/e.out"
	if [ $rc -eq 0 ] && grep -q '"spilled_allocs":[1-9]' "$tmp/py.json"; then
		ok "(e) numpy: $(cat "$tmp/py.json")"
	else
		fail "(e) numpy: exit $rc, stats $(cat "$tmp/py.json" 2>/dev/null)"
	fi
fi

# (f) libc alone (plus the vdso and the loader), and exactly the 11 entry points exported.
deps=$(ldd "$lib" | awk '{print $1}' | grep -v -E '^(linux-vdso\.so\.1|libc\.so\.6|/lib.*/ld-linux.*\.so\.[0-9])$')
[ -z "$deps" ] && ok "(f) ldd: $(ldd "$lib" | awk '{print $1}' | tr '\n' ' ')" || fail "(f) ldd shows more than libc: $deps"
want="aligned_alloc calloc free malloc malloc_usable_size memalign posix_memalign pvalloc realloc reallocarray valloc wait wait3 wait4 waitid waitpid"
got=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] && ok "(f) nm -D --defined-only: $got" || fail "(f) exports \"$got\", want \"$want\""

# (g) silence: spilling programs print nothing on stderr without SPILL_LOG/SPILL_STATS.
for t in big_alloc cxx_vector; do
	env -u SPILL_LOG -u SPILL_STATS SPILL_DIR="$tmp" SPILL_THRESHOLD=1M LD_PRELOAD="$lib" \
		"$bin/$t" >"$tmp/g.out" 2>"$tmp/g.err"
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$tmp/g.err" ] && grep -q spilled "$tmp/g.out"; then
		ok "(g) $t spilled and printed nothing on stderr"
	else
		fail "(g) $t: exit $rc, stderr \"$(cat "$tmp/g.err")\""
	fi
done

# (h) frees after the library's destructor. glibc runs the program's own destructors before
# _dl_fini (which runs libspill's), so the late free comes from a shared library: its destructor
# runs inside _dl_fini and registers an atexit handler, which runs after _dl_fini is done.
# An atexit handler registered before main and the program's destructor free blocks too.
cat >"$tmp/latelib.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static char *late_block, *lib_block;
static void say(const char *s) { (void)!write(1, s, strlen(s)); }
void late_arm(char *late, char *lib) { late_block = late; lib_block = lib; }
static void late_free(void)
{
	/* libspill writes SPILL_STATS from its destructor: the file proves that it has run */
	say(access(getenv("SPILL_STATS"), F_OK) == 0 ? "after libspill's destructor: " : "before libspill's destructor: ");
	free(late_block);
	say("late free ok\n");
}
__attribute__((destructor)) static void lib_teardown(void)
{
	free(lib_block);
	say("library destructor free ok\n");
	atexit(late_free);	/* registered inside _dl_fini: runs after every destructor */
}
EOF
cat >"$tmp/late.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
void late_arm(char *late, char *lib);
static char *early_block, *dtor_block;
static void say(const char *s) { (void)!write(1, s, strlen(s)); }
static void early_free(void) { free(early_block); say("early atexit free ok\n"); }
__attribute__((constructor)) static void setup(void)
{
	early_block = malloc(3 << 20);
	memset(early_block, 1, 3 << 20);
	atexit(early_free);
}
__attribute__((destructor)) static void teardown(void)
{
	free(dtor_block);
	say("program destructor free ok\n");
}
int main(void)
{
	char *late = malloc(4 << 20), *lib = malloc(5 << 20);
	dtor_block = malloc(2 << 20);
	memset(dtor_block, 2, 2 << 20);
	memset(late, 3, 4 << 20);
	memset(lib, 4, 5 << 20);
	late_arm(late, lib);
	say("main done\n");
	return 0;
}
EOF
cc -O0 -shared -fPIC -o "$tmp/liblate.so" "$tmp/latelib.c" &&
	cc -O0 -o "$tmp/late" "$tmp/late.c" -L"$tmp" -llate -Wl,-rpath,"$tmp" || { echo "cannot compile late.c"; exit 1; }
env SPILL_DIR="$tmp" SPILL_THRESHOLD=1M SPILL_STATS="$tmp/late.json" LD_PRELOAD="$lib" "$tmp/late" >"$tmp/h.out" 2>"$tmp/h.err"
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$tmp/h.err" ] && grep -q "after libspill's destructor: late free ok" "$tmp/h.out" &&
   grep -q '"spilled_allocs":4' "$tmp/late.json"; then
	ok "(h) frees in atexit, in destructors and after libspill's destructor; exit 0: $(tr '\n' ';' <"$tmp/h.out")"
else
	fail "(h) exit $rc, stdout \"$(tr '\n' ';' <"$tmp/h.out")\", stderr \"$(cat "$tmp/h.err")\", stats $(cat "$tmp/late.json" 2>/dev/null)"
fi

echo "test_integration_extra: $fails failure(s)"
[ $fails -eq 0 ]
