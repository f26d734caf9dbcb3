#!/usr/bin/env bash
# SPILL_ADVICE reaches the kernel as the spill mapping's VmFlags (rr: random, sr: sequential),
# for the whole mapping at once (it stays one mapping however many blocks live in it), and
# a bad value is reported once and ignored.
set -u
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
cat >"$TEST_TMP/probe.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
	char *p[8], line[512], dir[512];
	int in_spill = 0, mappings = 0;
	snprintf(dir, sizeof dir, "%s/#", getenv("SPILL_DIR"));
	for (int i = 0; i < 8; i++) {
		p[i] = malloc(2 << 20);
		memset(p[i], i, 2 << 20);
	}
	FILE *f = fopen("/proc/self/smaps", "r");
	while (fgets(line, sizeof line, f)) {
		if (strchr(line, '-') && strstr(line, " /")) {
			in_spill = strstr(line, dir) != NULL;
			mappings += in_spill;
		} else if (in_spill && strncmp(line, "VmFlags:", 8) == 0) {
			fputs(line, stdout);
		}
	}
	printf("mappings %d\n", mappings);
	for (int i = 0; i < 8; i++)
		free(p[i]);
	return 0;
}
C
cc -O2 -o "$TEST_TMP/probe" "$TEST_TMP/probe.c" || exit 1
run() { env LD_PRELOAD="$SPILL_LIB" SPILL_THRESHOLD=1M SPILL_DIR="$TEST_TMP" "$@" "$TEST_TMP/probe" 2>"$TEST_TMP/err"; }

out=$(run SPILL_ADVICE=random)
check "random: VmFlags has rr" "grep -q ' rr' <<<'$out'"
check "random: one spill mapping for 8 blocks" "grep -qx 'mappings 1' <<<'$out'"
out=$(run SPILL_ADVICE=sequential)
check "sequential: VmFlags has sr" "grep -q ' sr' <<<'$out'"
out=$(run)
check "default: neither rr nor sr" "! grep -qE ' (rr|sr)' <<<'$out' && grep -qx 'mappings 1' <<<'$out'"
out=$(run SPILL_ADVICE=sideways)
check "bad value: default kept" "! grep -qE ' (rr|sr)' <<<'$out'"
check "bad value: one line naming the variable" \
	"[ \$(grep -c 'libspill: SPILL_ADVICE=\"sideways\" is not one of normal, sequential, random; using normal' '$TEST_TMP/err') = 1 ]"
exit $fail
