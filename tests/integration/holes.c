/* SPDX-License-Identifier: MIT */
/*
 * holes.c - issue 9's reproducer: a block with data, a 3 MiB hole and data again, copied by
 * fork and then moved by realloc, must keep the data in place. The fork child and the
 * moved block each print "ok" or "CORRUPT". Runs itself again under every SPILL_ADVICE of
 * matrix.h and every fork mode whose child keeps its blocks (holes.env: SPILL_THRESHOLD=1M).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rerun.h"

/* The program, unchanged but for the checks of the moved block: 0 when both say ok. */
static int reproduce(void)
{
	char *a = malloc(8 << 20), *b = malloc(8 << 20);	/* b stops a growing in place */
	int st, bad = 0;

	memset(a, 'A', 1 << 20);			/* data [0, 1M) */
	memset(a + (4 << 20), 'B', 1 << 20);		/* hole [1M, 4M), data [4M, 5M) */
	b[0] = 1;
	fflush(stdout);
	if (fork() == 0) {
		printf("  fork child: %s\n", a[4 << 20] == 'B' ? "ok" : "CORRUPT");
		fflush(stdout);
		_exit(a[4 << 20] == 'B' ? 0 : 1);
	}
	if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		bad = 1;
	char *c = realloc(a, 64 << 20);			/* moves */
	int moved_ok = c && c[3 << 20] == 0 && c[4 << 20] == 'B' && c[(5 << 20) - 1] == 'B' && c[0] == 'A' &&
		       c[(1 << 20) - 1] == 'A';
	printf("  realloc move: %s (byte 3M is 0x%02x, byte 4M is 0x%02x)\n", moved_ok ? "ok" : "CORRUPT",
	       c ? (unsigned char)c[3 << 20] : 0, c ? (unsigned char)c[4 << 20] : 0);
	free(c);
	free(b);
	return bad || !moved_ok;
}

int main(int argc, char **argv)
{
	char mode[32], advice[32];
	int runs = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "one"))
		return reproduce();
	for (const char *m = MATRIX_FORK_MODES; matrix_next(&m, mode, sizeof mode);) {
		if (!matrix_child_keeps(mode))
			continue;	/* the child reads the block: only modes that keep it apply */
		for (const char *a = MATRIX_ADVICE; matrix_next(&a, advice, sizeof advice);) {
			const char *const kv[] = { "SPILL_FORK", mode, "SPILL_ADVICE", advice, NULL };
			char *const args[] = { argv[0], "one", NULL };
			printf("SPILL_FORK=%s SPILL_ADVICE=%s:\n", mode, advice);
			int st = rerun(NULL, args, kv, NULL, 0);
			runs++;
			if (st) {
				printf("FAIL SPILL_FORK=%s SPILL_ADVICE=%s: %s\n", mode, advice, rerun_status(st));
				failed++;
			}
		}
	}
	printf("holes: %d of %d configurations %s\n", runs - failed, runs, failed ? "passed: FAILED" : "passed");
	if (!runs) {
		puts("FAIL: no fork mode keeps the blocks: nothing was tested");
		return 1;
	}
	puts(failed ? "FAILED" : "ok");
	return failed != 0;
}
