#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_demo.sh - the demo at a small scale: sensor results are deterministic and the same under
# libspill, and scripts/demo.sh runs through and prints its table.
set -u

sensor=$SPILL_BUILD/programs/sensor
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

[ -f "$SPILL_LIB" ] || { echo "skip: $SPILL_LIB is not built (make)"; exit 77; }
[ -x "$sensor" ] || { echo "skip: $sensor is not built (make programs)"; exit 77; }

args=(-b 8 -n 3 -s 7)

# Same seed, same results; another seed, other results; streaming in 1 MiB chunks, same results.
"$sensor" "${args[@]}" >a.out 2>/dev/null || fail "sensor ${args[*]} exited $?"
"$sensor" "${args[@]}" >b.out 2>/dev/null || fail "second sensor run exited $?"
"$sensor" -b 8 -n 3 -s 8 >c.out 2>/dev/null || fail "sensor -s 8 exited $?"
"$sensor" "${args[@]}" -c 1 >d.out 2>/dev/null || fail "sensor -c 1 exited $?"
[ "$(grep -c '^batch ' a.out)" = 3 ] || fail "expected 3 batch lines, got: $(cat a.out)"
grep -q '^checksum: [0-9a-f]\{16\} ' a.out || fail "no checksum line in: $(cat a.out)"
cmp -s a.out b.out || fail "same seed, different results"
cmp -s a.out c.out && fail "seeds 7 and 8 gave the same results"
cmp -s a.out d.out || fail "streamed (-c 1) results differ from whole-buffer results"

# Under libspill every 8 MiB batch buffer spills, and the results do not change.
LD_PRELOAD=$SPILL_LIB SPILL_THRESHOLD=1M SPILL_DIR=$TEST_TMP SPILL_STATS=$TEST_TMP/s.json \
	"$sensor" "${args[@]}" >e.out 2>e.err || fail "sensor under libspill exited $?: $(cat e.err)"
cmp -s a.out e.out || fail "results under libspill differ: $(diff a.out e.out)"
if [ -s s.json ]; then
	allocs=$(grep -o '"spilled_allocs":[0-9]*' s.json | cut -d: -f2)
	[ "$allocs" = 3 ] || fail "spilled_allocs is '$allocs', want 3: $(cat s.json)"
else
	fail "no SPILL_STATS output in s.json"
fi

# The demo itself, tiny: 2 batches of 64 MiB under a 48 MiB cap (or no cap where none can be made).
DEMO_BATCH_MIB=64 DEMO_BATCHES=2 DEMO_CAP=48M DEMO_DIR=$TEST_TMP \
	bash "$SPILL_SRC/scripts/demo.sh" >demo.out 2>&1
rc=$?
cat demo.out
[ $rc = 0 ] || fail "demo.sh exited $rc"
for want in 'outcome' 'peak memory' 'spilled peak' 'elapsed' 'results identical: yes'; do
	grep -q "$want" demo.out || fail "demo output lacks '$want'"
done
grep -q '^  outcome  .*finished$' demo.out || fail "the libspill run did not finish"
ls -d "$TEST_TMP"/spill-demo.* >/dev/null 2>&1 && fail "demo.sh left its directory behind"

[ $fails = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "ok"
