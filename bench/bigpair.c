/* SPDX-License-Identifier: MIT */
/* bigpair.c - bench case 2: malloc + free of one large block, repeated; untouched or fully written. */

/*
 * Usage: bigpair [-s MIB] [-n PAIRS] [-w]
 *
 * Each pair is malloc(MIB MiB) then free. With -w every byte of the block is written
 * (memset) in between, so the cost of getting and returning memory pages is included;
 * without it only the first byte is touched. stdout: "result seconds=S pairs=N us_per_pair=X".
 */
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

static unsigned long arg_num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v == 0) {
		fprintf(stderr, "bigpair: bad number \"%s\"\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long mib = 64, pairs = 100, sum = 0;
	int write_all = 0, c;
	double t0, t;

	while ((c = getopt(argc, argv, "s:n:w")) != -1) {
		switch (c) {
		case 's': mib = arg_num(optarg); break;
		case 'n': pairs = arg_num(optarg); break;
		case 'w': write_all = 1; break;
		default:
			fprintf(stderr, "usage: bigpair [-s MIB] [-n PAIRS] [-w]\n");
			return 2;
		}
	}
	size_t n = mib << 20;

	t0 = now();
	for (unsigned long i = 0; i < pairs; i++) {
		volatile unsigned char *p = malloc(n);

		if (!p) {
			perror("bigpair: malloc");
			return 1;
		}
		if (write_all)
			memset((void *)p, (int)(i & 0xff) | 1, n);
		else
			p[0] = 1;
		sum += p[n - 1] + p[0];
		free((void *)p);
	}
	t = now() - t0;
	printf("result seconds=%.6f pairs=%lu us_per_pair=%.2f checksum=%lu\n",
		t, pairs, t * 1e6 / (double)pairs, sum);
	return 0;
}
