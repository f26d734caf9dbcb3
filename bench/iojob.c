/* SPDX-License-Identifier: MIT */
/* iojob.c - bench case 5c: one buffer much larger than the memory available, written then read back. */

/*
 * Usage: iojob [-s MIB]
 *
 * One malloc of MIB MiB, written sequentially (one 64-bit word per 64 bytes, so the time
 * goes to getting pages, not to the CPU), then read back the same way into a checksum that
 * is checked. stdout: "result write_s=W read_s=R write_mbs=X read_mbs=Y".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define STRIDE 8	/* words: one per 64-byte cache line */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long mib = 2048;
	uint64_t sum = 0, want = 0;
	char *e;
	int c;

	while ((c = getopt(argc, argv, "s:")) != -1) {
		if (c != 's' || (mib = strtoul(optarg, &e, 10)) == 0 || *e) {
			fprintf(stderr, "usage: iojob [-s MIB]\n");
			return 2;
		}
	}
	size_t words = (mib << 20) / 8;
	double t0 = now(), t1, t2;
	uint64_t *p = malloc(words * 8);

	if (!p) {
		perror("iojob: malloc");
		return 1;
	}
	for (size_t i = 0; i < words; i += STRIDE) {
		p[i] = i * 3 + 1;
		want += i * 3 + 1;
	}
	t1 = now();
	for (size_t i = 0; i < words; i += STRIDE)
		sum += p[i];
	t2 = now();
	free(p);
	if (sum != want) {
		fprintf(stderr, "iojob: checksum mismatch\n");
		return 1;
	}
	printf("result write_s=%.6f read_s=%.6f write_mbs=%.1f read_mbs=%.1f\n", t1 - t0, t2 - t1,
		mib * 1.048576 / (t1 - t0), mib * 1.048576 / (t2 - t1));
	return 0;
}
