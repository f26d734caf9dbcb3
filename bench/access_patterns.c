/* SPDX-License-Identifier: MIT */
/*
 * access_patterns.c - a sequential and a random-access pass over a working set, for running under
 * scripts/memcap with a cap well below the set (scripts/access-patterns.sh does).
 *   access_patterns malloc MIB [TOUCHES]          the set comes from malloc (LD_PRELOAD libspill)
 *   access_patterns file MIB ADVICE DIR [TOUCHES]  its own O_TMPFILE mapping in DIR, with
 *                                                  madvise ADVICE: none|sequential|random|willneed
 * Prints one line: fill, sequential and random figures.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int own = argc > 1 && !strcmp(argv[1], "file");
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 512, n = mib << 20, pages = n / PAGE;
	const char *advice = own && argc > 3 ? argv[3] : "none";
	size_t touches = strtoul(argc > (own ? 5 : 3) ? argv[own ? 5 : 3] : "32768", NULL, 0);
	uint64_t sum = 0, x = 88172645463325252u;
	unsigned char *p;
	double t0, fill, seq, rnd;

	if (own) {
		int fd = open(argc > 4 ? argv[4] : "/var/tmp", O_TMPFILE | O_RDWR | O_EXCL, 0600);
		if (fd < 0 || fallocate(fd, 0, 0, (off_t)n))
			return perror("tmpfile"), 1;
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return perror("mmap"), 1;
		int adv = !strcmp(advice, "sequential") ? MADV_SEQUENTIAL : !strcmp(advice, "random") ? MADV_RANDOM :
			  !strcmp(advice, "willneed") ? MADV_WILLNEED : MADV_NORMAL;
		if (madvise(p, n, adv))
			return perror("madvise"), 1;
	} else if (!(p = malloc(n))) {
		return perror("malloc"), 1;
	}
	t0 = now();
	for (size_t i = 0; i < n; i += 64)
		p[i] = (unsigned char)(i >> 12);
	fill = now() - t0;
	t0 = now();
	for (size_t i = 0; i < n; i += 64)
		sum += p[i];
	seq = now() - t0;
	t0 = now();
	for (size_t k = 0; k < touches; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t pg = x % pages;
		sum += p[pg * PAGE];
		p[pg * PAGE + 8] = (unsigned char)k;
	}
	rnd = now() - t0;
	printf("%s %s set=%zuMiB fill=%.0fMiB/s seq_read=%.0fMiB/s random=%.0f_touches/s (%zu touches, %.2fs) sum=%llu\n",
	       own ? "own-mapping" : "malloc", advice, mib, mib / fill, mib / seq, touches / rnd, touches, rnd,
	       (unsigned long long)(sum & 0xff));
	return 0;
}
