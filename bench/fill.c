/* SPDX-License-Identifier: MIT */
/* fill.c - bench case 3: write a large buffer once, then read it back and checksum it. */

/*
 * Usage: fill [-s MIB]
 *
 * One malloc of MIB MiB; every 64-bit word is written with a value derived from its index,
 * then all words are read back into a checksum, which is verified against the closed form.
 * stdout: "result seconds=S write_s=W read_s=R checksum=C".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
	double t0, t1, t2;
	char *end;
	int c;

	while ((c = getopt(argc, argv, "s:")) != -1) {
		if (c != 's' || (mib = strtoul(optarg, &end, 10)) == 0 || *end) {
			fprintf(stderr, "usage: fill [-s MIB]\n");
			return 2;
		}
	}
	size_t words = (mib << 20) / sizeof(uint64_t);

	t0 = now();
	uint64_t *p = malloc(words * sizeof *p);
	if (!p) {
		perror("fill: malloc");
		return 1;
	}
	for (size_t i = 0; i < words; i++)
		p[i] = i * 0x9e3779b97f4a7c15ull;
	t1 = now();
	for (size_t i = 0; i < words; i++)
		sum += p[i];
	t2 = now();
	free(p);
	/* the sum of i*K over i < words, mod 2^64 */
	want = (uint64_t)(words % 2 ? words * ((words - 1) / 2) : (words / 2) * (words - 1)) *
		0x9e3779b97f4a7c15ull;
	if (sum != want) {
		fprintf(stderr, "fill: checksum %llx, expected %llx\n",
			(unsigned long long)sum, (unsigned long long)want);
		return 1;
	}
	printf("result seconds=%.6f write_s=%.6f read_s=%.6f checksum=%llx\n",
		now() - t0, t1 - t0, t2 - t1, (unsigned long long)sum);
	return 0;
}
