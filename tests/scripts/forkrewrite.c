/* SPDX-License-Identifier: MIT */
/*
 * forkrewrite.c - a helper of test_fork_cow.sh; knows nothing of libspill. Fills a buffer of
 * SIZE_MIB, forks READERS children that each check it and exit, waits for them, then
 * rewrites the whole buffer PASSES times, checking each pass. Prints "ok SUM" and exits 0,
 * or says what differed and exits 1. Single-threaded on purpose.
 * usage: forkrewrite SIZE_MIB READERS PASSES
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t word(uint64_t pass, size_t i)
{
	uint64_t x = pass * 0x9e3779b97f4a7c15u + i;
	x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9u;
	return x ^ (x >> 29);
}

static long first_bad(const uint64_t *p, size_t n, uint64_t pass)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != word(pass, i))
			return (long)i;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: forkrewrite SIZE_MIB READERS PASSES\n");
		return 2;
	}
	size_t n = strtoull(argv[1], NULL, 0) << 17;	/* words of 8 bytes in SIZE_MIB */
	int readers = atoi(argv[2]), passes = atoi(argv[3]), st;
	uint64_t *p = malloc(n * sizeof *p), sum = 0;
	long bad;

	if (!p) {
		perror("malloc");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = word(0, i);
	for (int r = 0; r < readers; r++)
		if (fork() == 0)
			_exit(first_bad(p, n, 0) < 0 ? 0 : 1);
	for (int r = 0; r < readers; r++)
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("a reader child saw wrong data or died (status %d)\n", st);
			return 1;
		}
	for (int pass = 1; pass <= passes; pass++) {
		for (size_t i = 0; i < n; i++)
			p[i] = word((uint64_t)pass, i);
		if ((bad = first_bad(p, n, (uint64_t)pass)) >= 0) {
			printf("pass %d: word %ld differs\n", pass, bad);
			return 1;
		}
	}
	for (size_t i = 0; i < n; i += 4096)
		sum += p[i];
	printf("ok %" PRIx64 "\n", sum);
	free(p);
	return 0;
}
