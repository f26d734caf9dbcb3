#!/usr/bin/env bash
# test_fuzz_config.sh - builds tests/fuzz/fuzz_config.c with libFuzzer and runs it for 20 s on a copy
# of its corpus; any crash, sanitizer report or invariant abort fails the test.
set -u
src=${SPILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=${TEST_TMP:-$(mktemp -d)}
cc=${FUZZ_CC:-clang}

skip() { echo "$1"; exit 77; }

command -v "$cc" >/dev/null 2>&1 || skip "skip: $cc not found (Debian: apt install clang libclang-rt-14-dev)"
# libFuzzer comes with the compiler runtime; probe for it with a trivial target.
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
	>"$tmp/probe.c"
"$cc" -fsanitize=fuzzer "$tmp/probe.c" -o "$tmp/probe" >"$tmp/probe.log" 2>&1 ||
	skip "skip: $cc cannot link -fsanitize=fuzzer (libFuzzer missing: apt install libclang-rt-14-dev)"

bin=$tmp/fuzz_config
if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=c11 -D_GNU_SOURCE -Wall -Wextra -I"$src/shim" \
	"$src/tests/fuzz/fuzz_config.c" "$src/shim/config.c" "$src/shim/log.c" -o "$bin"; then
	echo "FAIL: cannot build the fuzz target"
	exit 1
fi

corpus=$tmp/corpus
mkdir -p "$corpus" "$tmp/artifacts"
cp "$src"/tests/fuzz/corpus/* "$corpus"/
# The parser's warnings go to stderr by design; keep them out of the log.
"$bin" -max_total_time=20 -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	-artifact_prefix="$tmp/artifacts/" "$corpus" >"$tmp/fuzz.log" 2>&1
rc=$?
grep -v '^libspill: ' "$tmp/fuzz.log" | tail -n 30
if [ $rc -ne 0 ] || ls "$tmp"/artifacts/crash-* "$tmp"/artifacts/leak-* "$tmp"/artifacts/timeout-* >/dev/null 2>&1; then
	echo "FAIL: fuzz_config exited $rc; artifacts:"
	ls -l "$tmp/artifacts"
	for f in "$tmp"/artifacts/*; do [ -f "$f" ] && od -c "$f" | head -n 20; done
	exit 1
fi
grep -q 'Done [0-9]* runs' "$tmp/fuzz.log" || { echo "FAIL: the fuzzer did not report a finished run"; exit 1; }
echo "PASS: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$tmp/fuzz.log")"
exit 0
