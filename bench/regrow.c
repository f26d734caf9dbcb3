/* SPDX-License-Identifier: MIT */
/* regrow.c - bench case 4: one buffer doubled by realloc from START to END MiB, time per step. */

/*
 * Usage: regrow [-s START_MIB] [-e END_MIB]
 *
 * The buffer is fully written at START; each step reallocs it to twice its size (timed
 * alone), checks that the old contents survived (one word per page), then writes the new
 * half (timed apart). If realloc copies, the step time grows with the size; if it remaps or
 * extends in place it stays flat. stdout: one "step from=A to=B realloc_s=X write_s=Y" per
 * step, then "result first_s=X last_s=Y last_over_first=R".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(uint64_t *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		p[i] = i ^ 0x5555555555555555ull;
}

int main(int argc, char **argv)
{
	unsigned long start = 256, end = 2048;
	double first = 0, last = 0;
	char *e;
	int c;

	while ((c = getopt(argc, argv, "s:e:")) != -1) {
		unsigned long v = strtoul(optarg, &e, 10);

		if ((c != 's' && c != 'e') || v == 0 || *e) {
			fprintf(stderr, "usage: regrow [-s START_MIB] [-e END_MIB]\n");
			return 2;
		}
		if (c == 's')
			start = v;
		else
			end = v;
	}
	size_t words = (start << 20) / 8;
	uint64_t *p = malloc(words * 8);

	if (!p) {
		perror("regrow: malloc");
		return 1;
	}
	fill(p, 0, words);
	for (unsigned long mib = start; mib * 2 <= end; mib *= 2) {
		size_t nwords = words * 2;
		double t0 = now(), t1, t2;
		uint64_t *q = realloc(p, nwords * 8);

		t1 = now();
		if (!q) {
			perror("regrow: realloc");
			return 1;
		}
		p = q;
		for (size_t i = 0; i < words; i += 512) {
			if (p[i] != (i ^ 0x5555555555555555ull)) {
				fprintf(stderr, "regrow: word %zu lost at %lu MiB\n", i, mib * 2);
				return 1;
			}
		}
		fill(p, words, nwords);
		t2 = now();
		printf("step from=%lu to=%lu realloc_s=%.6f write_s=%.6f\n", mib, mib * 2, t1 - t0, t2 - t1);
		if (first == 0)
			first = t1 - t0;
		last = t1 - t0;
		words = nwords;
	}
	free(p);
	printf("result first_s=%.6f last_s=%.6f last_over_first=%.3f\n", first, last,
		first > 0 ? last / first : 0.0);
	return 0;
}
