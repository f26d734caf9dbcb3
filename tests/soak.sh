#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/soak.sh - what `make soak` runs: the differential model test (tests/integration/model.c)
# for SOAK_SEEDS x SOAK_OPS operations on each of its runs (every fork mode x SPILL_ADVICE, and
# tmpfs: 4 seeds x 42000 x 9 runs = 1,512,000 by default), then the pickle loop for 2000 iterations.
# Too long for make check; prints the time of each part. Exit status: 0 pass, else fail.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SPILL_BUILD:-$here/build}
lib=$build/libspill.so
seeds=${SOAK_SEEDS:-"1 2 3 4"}
ops=${SOAK_OPS:-42000}
tmp=$(mktemp -d "${SPILL_TEST_TMPDIR:-/var/tmp}/spill-soak.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0

echo "=== model: seeds $seeds, $ops operations per run ==="
start=$(date +%s)
(cd "$tmp" && env SPILL_DIR="$tmp" SPILL_THRESHOLD=256K MODEL_SEEDS="$seeds" MODEL_OPS="$ops" LD_PRELOAD="$lib" \
	"$build/tests/integration/model") || fails=$((fails + 1))
echo "model: $(( $(date +%s) - start )) s"

echo "=== pickle loop: 2000 iterations per SPILL_ADVICE ==="
start=$(date +%s)
mkdir -p "$tmp/pickle"
(cd "$tmp/pickle" && SPILL_LIB=$lib SPILL_BUILD=$build SPILL_SRC=$here TEST_TMP=$tmp/pickle PICKLE_ITERATIONS=2000 \
	bash "$here/tests/scripts/test_pickle.sh")
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 77 ] || fails=$((fails + 1))
echo "pickle loop: $(( $(date +%s) - start )) s"

[ $fails -eq 0 ] && echo "soak: ok" || echo "soak: $fails part(s) FAILED"
[ $fails -eq 0 ]
