/* SPDX-License-Identifier: MIT */
/* many_blocks.c - COUNT live spilled blocks cost neither a descriptor nor a mapping each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maps.h"

/*
 * usage: many_blocks [COUNT [SIZE [keep]]]   (default 2000 blocks of 8 KiB, freed; SPILL_THRESHOLD=4K)
 * "keep" exits with the blocks live: each free punches a hole, which is slow on ext4 -o discard.
 * Every block must be spilled, /proc/self/fd must not grow after the first spill, and
 * /proc/self/maps must stay far below vm.max_map_count (65530). The script test runs it
 * under `ulimit -n 64`, and with 100000 blocks.
 */
#define MAX_MAPS 1000	/* "far below 65530": a program with no spills has a few dozen */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t count = argc > 1 ? strtoul(argv[1], NULL, 0) : 2000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 0) : 8192;
	int keep = argc > 3 && strcmp(argv[3], "keep") == 0;
	uintptr_t lo = 0, hi = 0;
	int fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd0 = fd_count();		/* before any spill: the pointer table below may spill too */
	long maps0 = maps_lines();
	unsigned char **p = calloc(count, sizeof *p);
	if (!p) {
		printf("FAIL: calloc of the pointer table\n");
		return 1;
	}
	double t0 = now();
	p[0] = malloc(size);
	int fd1 = fd_count();
	if (!p[0] || spill_maps(&lo, &hi) != 1) {
		printf("FAIL: the first %zu-byte block is not spilled (spill mappings: %d)\n", size,
		       spill_maps(NULL, NULL));
		return 1;
	}
	for (size_t i = 1; i < count; i++) {
		p[i] = malloc(size);
		if (!p[i]) {
			printf("FAIL: malloc #%zu of %zu bytes returned NULL\n", i, size);
			return 1;
		}
	}
	double t1 = now();
	size_t outside = 0, bad = 0;
	for (size_t i = 0; i < count; i++) {
		outside += (uintptr_t)p[i] < lo || (uintptr_t)p[i] + size > hi;
		p[i][0] = (unsigned char)i;
		p[i][size - 1] = (unsigned char)(i >> 8);
	}
	for (size_t i = 0; i < count; i++)
		bad += p[i][0] != (unsigned char)i || p[i][size - 1] != (unsigned char)(i >> 8);
	int fd2 = fd_count(), nmaps = spill_maps(NULL, NULL);
	long maps2 = maps_lines();

	printf("many_blocks: %zu live blocks of %zu bytes in %.2fs; fds %d -> %d (first spill) -> %d; "
	       "maps %ld -> %ld; spill mappings %d\n", count, size, t1 - t0, fd0, fd1, fd2, maps0, maps2, nmaps);
	if (outside) {
		printf("FAIL: %zu blocks are outside the spill mapping\n", outside);
		fails++;
	}
	if (bad) {
		printf("FAIL: %zu blocks lost their content\n", bad);
		fails++;
	}
	if (fd2 != fd1 || fd1 > fd0 + 1) {
		printf("FAIL: descriptors %d before any spill, %d after the first, %d after %zu\n", fd0, fd1, fd2, count);
		fails++;
	}
	if (nmaps != 1 || maps2 > MAX_MAPS || maps2 > maps0 + 4) {
		printf("FAIL: %ld mappings (%ld before), %d of them the spill file\n", maps2, maps0, nmaps);
		fails++;
	}
	if (keep) {
		printf("many_blocks: %s (exiting with the blocks live)\n", fails ? "FAILED" : "ok");
		return fails ? 1 : 0;
	}
	double t2 = now();
	for (size_t i = 0; i < count; i++)
		free(p[i]);
	printf("many_blocks: freed %zu blocks in %.2fs; fds %d, maps %ld\n", count, now() - t2, fd_count(),
	       maps_lines());
	free(p);
	printf("many_blocks: %s\n", fails ? "FAILED" : "ok");
	return fails ? 1 : 0;
}
