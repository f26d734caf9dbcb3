/* SPDX-License-Identifier: MIT */
/* usage.c - what spilling cost: resident samples taken on the spill path, faults and disk traffic. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spill.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451	/* Linux 6.5; the same number on every architecture */
#endif
struct cachestat_range { uint64_t off, len; };
struct cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

#define MIN_GAP_NS 1000000ll	/* at most a thousand samples a second... */
#define COST_FACTOR 100		/* ...and never more than 1% of the time */

int spill_usage_no_cachestat;	/* set when cachestat() is missing; a test hook too */
static long long next_ns;
static int sampling;
static long long start_ns;

static long long clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void spill_usage_start(void)
{
	start_ns = clock_ns(CLOCK_MONOTONIC);
	next_ns = 0;
}

/* Pages of [off, off+len) of the spill file in RAM, by mincore() on its mapping. */
static uint64_t block_mincore(uint64_t off, uint64_t len)
{
	unsigned char vec[1024];
	uint64_t pages = 0, step = sizeof vec * spill_page;

	for (uint64_t at = 0; at < len; at += step) {
		uint64_t chunk = len - at < step ? len - at : step;
		if (mincore(spill_file.base + off + at, chunk, vec))
			break;
		for (uint64_t i = 0; i < (chunk + spill_page - 1) / spill_page; i++)
			pages += vec[i] & 1;
	}
	return pages;
}

/*
 * Spilled bytes in RAM: the page cache of the spill file within live blocks (read-ahead
 * past a block's end is not spilled data), and of them the dirty ones; *DIRTY is
 * UINT64_MAX where only mincore() is there to ask (kernels before 6.5). Returns -1 when
 * there is no file.
 */
int spill_usage_resident(uint64_t *res, uint64_t *dirty)
{
	uint64_t off[32], len[32], pages = 0, dirty_pages = 0;
	size_t cursor = 0;
	unsigned n;
	struct spill_block *b;
	int fd = spill_file.fd, use_cachestat = !__atomic_load_n(&spill_usage_no_cachestat, __ATOMIC_RELAXED);

	if (fd < 0 || !spill_file.base)
		return -1;
	do {
		n = 0;
		spill_lock();
		while (n < 32 && (b = spill_region_next(&cursor))) {
			off[n] = b->off;
			len[n++] = b->len;
		}
		spill_unlock();
		for (unsigned i = 0; i < n; i++) {
			struct cachestat_range r = { off[i], len[i] };
			struct cachestat c;
			if (use_cachestat && syscall(__NR_cachestat, fd, &r, &c, 0) == 0) {
				pages += c.nr_cache;
				dirty_pages += c.nr_dirty;
				continue;
			}
			if (use_cachestat && (errno == ENOSYS || errno == EPERM)) {	/* EPERM: seccomp */
				__atomic_store_n(&spill_usage_no_cachestat, 1, __ATOMIC_RELAXED);
				use_cachestat = 0;
			}
			pages += block_mincore(off[i], len[i]);
		}
	} while (n == 32);
	*res = pages * spill_page;
	*dirty = use_cachestat ? dirty_pages * spill_page : UINT64_MAX;
	return 0;
}

/*
 * Called on the spill path: records the resident spilled bytes when the last sample is old
 * enough. No thread: a program that stops calling into the spill path is sampled again at
 * exit only. FORCE samples regardless of the time.
 */
void spill_usage_sample(int force)
{
	uint64_t res, dirty;
	int saved;

	if (!force && clock_ns(CLOCK_MONOTONIC_COARSE) < __atomic_load_n(&next_ns, __ATOMIC_RELAXED))
		return;
	if (__atomic_exchange_n(&sampling, 1, __ATOMIC_ACQUIRE))
		return;		/* another thread is at it */
	saved = errno;
	long long t0 = clock_ns(CLOCK_MONOTONIC);
	if (spill_usage_resident(&res, &dirty) == 0)
		spill_stats_resident(res);
	long long cost = clock_ns(CLOCK_MONOTONIC) - t0;
	__atomic_store_n(&next_ns, t0 + (cost * COST_FACTOR > MIN_GAP_NS ? cost * COST_FACTOR : MIN_GAP_NS),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&sampling, 0, __ATOMIC_RELEASE);
	errno = saved;
}

/* The number after "NAME: " in a /proc/self/io text, or -1. */
static long long io_field(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	long long v = 0;

	if (!p)
		return -1;
	for (p += strlen(name); *p == ' '; p++)
		;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (*p - '0');
	return v;
}

/*
 * The process's figures for the summary; -1 where unknown.
 * - major faults: getrusage(), every file of the process (its libraries too), not children;
 * - read: /proc/self/io read_bytes, what the process made the kernel fetch from storage
 *   (its page faults on spilled memory and any other file it read);
 * - written: write_bytes (page cache the process dirtied) less cancelled_write_bytes (dirty
 *   pages dropped before writeback, as a free does) less spilled pages still dirty now,
 *   which go with the file and never reach the disk (known with cachestat() only).
 */
void spill_usage_totals(struct spill_usage *u)
{
	char text[1024] = "\n";
	struct rusage ru;
	uint64_t res, dirty;
	ssize_t n = -1;
	int saved = errno, fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);

	u->major_faults = getrusage(RUSAGE_SELF, &ru) == 0 ? (long long)ru.ru_majflt : -1;
	u->elapsed_ms = start_ns ? (clock_ns(CLOCK_MONOTONIC) - start_ns) / 1000000 : -1;
	if (fd >= 0) {
		n = read(fd, text + 1, sizeof text - 2);
		close(fd);
	}
	text[n > 0 ? n + 1 : 1] = '\0';
	/* the newline in front tells "\nwrite_bytes" from "cancelled_write_bytes" */
	u->read_bytes = io_field(text, "\nread_bytes:");
	u->write_bytes = io_field(text, "\nwrite_bytes:");
	long long cancelled = io_field(text, "\ncancelled_write_bytes:");
	if (u->write_bytes >= 0 && cancelled >= 0)
		u->write_bytes = u->write_bytes > cancelled ? u->write_bytes - cancelled : 0;
	if (u->write_bytes > 0 && spill_usage_resident(&res, &dirty) == 0 && dirty != UINT64_MAX)
		u->write_bytes = (uint64_t)u->write_bytes > dirty ? u->write_bytes - (long long)dirty : 0;
	errno = saved;
}
