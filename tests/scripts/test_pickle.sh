#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_pickle.sh - issue 9's Python reproducer: 400 pickle round trips under libspill at
# SPILL_THRESHOLD=256K, under every SPILL_ADVICE the copy tests use; the spilled buffers must
# move (SPILL_LOG counts the moves) or the run proves nothing. PICKLE_ITERATIONS changes 400.
set -u
# Debian's python3, as the other script tests use (a pyenv shim on PATH runs 40 processes first).
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "python3 is not installed (scripts/deps.sh installs it)"; exit 77; }
iterations=${PICKLE_ITERATIONS:-400}
advices=$(sed -n 's/^#define MATRIX_ADVICE "\(.*\)"$/\1/p' "$SPILL_SRC/tests/integration/matrix.h")
[ -n "$advices" ] || { echo "FAIL: no MATRIX_ADVICE in tests/integration/matrix.h"; exit 1; }
fails=0
for advice in $advices; do
	log=$TEST_TMP/log.$advice stats=$TEST_TMP/stats.$advice
	rm -f "$log" "$stats"
	env SPILL_DIR="$TEST_TMP" SPILL_THRESHOLD=256K SPILL_ADVICE="$advice" SPILL_LOG="$log" SPILL_STATS="$stats" \
		LD_PRELOAD="$SPILL_LIB" "$py" "$SPILL_SRC/tests/scripts/pickle_loop.py" "$iterations" >"$TEST_TMP/out" 2>&1
	rc=$?
	moves=$(grep -c ' move ' "$log" 2>/dev/null)
	# one line per process that loaded the library: add them up
	allocs=$(grep -o '"spilled_allocs":[0-9]*' "$stats" 2>/dev/null | awk -F: '{ s += $2 } END { print s + 0 }')
	if [ $rc -ne 0 ]; then
		echo "FAIL SPILL_ADVICE=$advice: exit $rc: $(tail -n 3 "$TEST_TMP/out")"
		fails=$((fails + 1))
	elif [ "${moves:-0}" -eq 0 ] || [ "${allocs:-0}" -eq 0 ]; then
		echo "FAIL SPILL_ADVICE=$advice: ${allocs:-0} spilled blocks, ${moves:-0} moves: the copy path was not exercised"
		fails=$((fails + 1))
	else
		echo "ok SPILL_ADVICE=$advice: $(tail -n 1 "$TEST_TMP/out"); $allocs spilled blocks, $moves moved"
	fi
done
exit $((fails != 0))
