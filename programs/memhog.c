/* SPDX-License-Identifier: MIT */
/* memhog.c - allocates, fills and checksums big malloc buffers; knows nothing of libspill. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

struct buf {
	uint64_t *p;
	size_t words;
	uint64_t sum;		/* checksum of the pattern as it was written */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: memhog [-n COUNT] [-s SIZE_MIB] [-k all|none|N] [-r]\n"
		"  -n COUNT     number of buffers (default 4)\n"
		"  -s SIZE_MIB  size of each buffer in MiB (default 64)\n"
		"  -k KEEP      all: every buffer stays live until the end (default);\n"
		"               none: each is freed once checked; N: at most N live at once\n"
		"  -r           at the end re-read every live buffer and verify it again\n");
}

/* splitmix64: a cheap, well-mixed pattern that differs per buffer and per word */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* Order-sensitive, so swapped or shifted pages do not cancel out. */
static uint64_t step(uint64_t c, uint64_t w)
{
	return (c ^ w) * 0x100000001b3u + (c >> 29);
}

static uint64_t fill(uint64_t *p, size_t words, unsigned idx)
{
	uint64_t c = 0xcbf29ce484222325u, seed = (uint64_t)idx << 40;
	for (size_t i = 0; i < words; i++) {
		p[i] = mix(seed + i);
		c = step(c, p[i]);
	}
	return c;
}

static uint64_t checksum(const uint64_t *p, size_t words)
{
	uint64_t c = 0xcbf29ce484222325u;
	for (size_t i = 0; i < words; i++)
		c = step(c, p[i]);
	return c;
}

static int parse_num(const char *s, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static int verify(struct buf *b, unsigned idx, const char *when)
{
	uint64_t got = checksum(b->p, b->words);
	if (got == b->sum)
		return 0;
	fprintf(stderr, "memhog: buffer %u: checksum mismatch %s (expected %016" PRIx64
		", got %016" PRIx64 ")\n", idx, when, b->sum, got);
	return -1;
}

int main(int argc, char **argv)
{
	unsigned long count = 4, size_mib = 64, keep = (unsigned long)-1;
	int reread = 0, opt, bad = 0;

	while ((opt = getopt(argc, argv, "n:s:k:rh")) != -1) {
		switch (opt) {
		case 'n':
			if (parse_num(optarg, &count) || count == 0 || count > 1u << 20)
				bad = 1;
			break;
		case 's':
			if (parse_num(optarg, &size_mib) || size_mib == 0 || size_mib > 1u << 20)
				bad = 1;
			break;
		case 'k':
			if (!strcmp(optarg, "all"))
				keep = (unsigned long)-1;
			else if (!strcmp(optarg, "none"))
				keep = 0;
			else if (parse_num(optarg, &keep))
				bad = 1;
			break;
		case 'r':
			reread = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc) {
		usage(stderr);
		return 2;
	}

	struct buf *bufs = calloc(count, sizeof *bufs);
	if (!bufs) {
		fprintf(stderr, "memhog: out of memory for %lu buffer records\n", count);
		return 1;
	}
	size_t bytes = size_mib * MIB, live = 0, live_peak = 0;
	uint64_t total = 0;
	int failed = 0;

	for (unsigned long i = 0; i < count; i++) {
		/* -k N: free the oldest buffer before a new one would make N+1 live */
		if (keep != (unsigned long)-1 && i >= keep && keep > 0) {
			struct buf *old = &bufs[i - keep];
			free(old->p);
			old->p = NULL;
			live -= bytes;
		}
		struct buf *b = &bufs[i];
		b->p = malloc(bytes);
		if (!b->p) {
			fprintf(stderr, "memhog: malloc(%zu) failed for buffer %lu\n", bytes, i);
			return 1;
		}
		b->words = bytes / sizeof(uint64_t);
		b->sum = fill(b->p, b->words, (unsigned)i);
		live += bytes;
		if (live > live_peak)
			live_peak = live;
		if (verify(b, (unsigned)i, "after fill"))
			failed = 1;
		total = step(total, b->sum);
		if (keep == 0) {
			free(b->p);
			b->p = NULL;
			live -= bytes;
		}
	}

	unsigned long rechecked = 0;
	if (reread) {
		for (unsigned long i = 0; i < count; i++) {
			if (!bufs[i].p)
				continue;
			if (verify(&bufs[i], (unsigned)i, "on re-read"))
				failed = 1;
			rechecked++;
		}
	}
	for (unsigned long i = 0; i < count; i++)
		free(bufs[i].p);
	free(bufs);

	printf("memhog: count=%lu size=%luMiB live_peak=%zuMiB rechecked=%lu checksum=%016" PRIx64 "\n",
	       count, size_mib, live_peak / MIB, rechecked, total);
	if (failed) {
		printf("FAILED\n");
		return 1;
	}
	printf("ok\n");
	return 0;
}
