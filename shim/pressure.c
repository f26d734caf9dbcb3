/* SPDX-License-Identifier: MIT */
/* pressure.c - SPILL_WHEN=pressure: keep large blocks in RAM while the memory budget has room. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spill.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * Budget: the innermost finite memory limit on our cgroup path (v2 memory.max, v1
 * memory.limit_in_bytes), else MemTotal. Usage: memory that cannot be reclaimed without
 * swap, i.e. the group's anonymous and shmem pages, else MemTotal - MemAvailable. Page
 * cache is left out on purpose: spilled pages are page cache, and counting them would make
 * every request spill once a few regions exist, although the kernel can write them out.
 */
enum source { SRC_NONE, SRC_V1, SRC_V2, SRC_MEMINFO };

static int once;		/* 0 not looked, 1 looking, 2 ready */
static enum source src;
static int usage_fd = -1;
static uint64_t budget;
static uint64_t in_flight;	/* RAM granted and not yet populated, so not yet in usage */

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, size - 1, 0);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static uint64_t parse_u64(const char *s)
{
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	return v;
}

/* Value of "KEY <number>" at a line start in BUF, times UNIT; 0 if absent. */
static uint64_t field(const char *buf, const char *key, uint64_t unit)
{
	size_t k = strlen(key);
	for (const char *s = buf; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : s) {
		if (strncmp(s, key, k) == 0 && (s[k] == ' ' || s[k] == ':' || s[k] == '\t')) {
			s += k + 1;
			while (*s == ' ' || *s == '\t')
				s++;
			return parse_u64(s) * unit;
		}
	}
	return 0;
}

/* Our cgroup path for the memory controller: v1 "N:memory:/x", else v2 "0::/x". */
static enum source cgroup_path(char *path, size_t size)
{
	char buf[4096];
	const char *v2 = NULL;

	if (read_file("/proc/self/cgroup", buf, sizeof buf) <= 0)
		return SRC_NONE;
	for (char *line = buf; line && *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2) {
			size_t clen = (size_t)(c2 - c1 - 1);
			if (clen == 6 && memcmp(c1 + 1, "memory", 6) == 0) {
				spill_format(path, size, "/sys/fs/cgroup/memory%s", c2 + 1);
				return SRC_V1;
			}
			if (clen == 0 && line[0] == '0')
				v2 = c2 + 1;
		}
		line = end ? end + 1 : NULL;
	}
	if (!v2)
		return SRC_NONE;
	spill_format(path, size, "/sys/fs/cgroup%s", v2);
	return SRC_V2;
}

/* Walks from our group up to the root; the first finite limit met is the innermost. */
static void find_budget(void)
{
	char path[PATH_MAX], file[PATH_MAX + 32], buf[4096];
	enum source s = cgroup_path(path, sizeof path);

	while (s == SRC_V1 || s == SRC_V2) {
		spill_format(file, sizeof file, "%s/%s", path,
			     s == SRC_V1 ? "memory.limit_in_bytes" : "memory.max");
		if (read_file(file, buf, sizeof buf) > 0 && buf[0] >= '0' && buf[0] <= '9') {
			uint64_t limit = parse_u64(buf);
			if (limit < ((uint64_t)1 << 60)) {
				spill_format(file, sizeof file, "%s/memory.stat", path);
				usage_fd = spill_fd_move_high(open(file, O_RDONLY | O_CLOEXEC));
				if (usage_fd >= 0) {
					budget = limit;
					src = s;
					return;
				}
			}
		}
		char *slash = strrchr(path, '/');
		if (!slash || slash == path || strcmp(path, "/sys/fs/cgroup/memory") == 0 ||
		    strcmp(path, "/sys/fs/cgroup") == 0)
			break;
		*slash = '\0';
	}
	if (read_file("/proc/meminfo", buf, sizeof buf) > 0 && (budget = field(buf, "MemTotal", 1024))) {
		usage_fd = spill_fd_move_high(open("/proc/meminfo", O_RDONLY | O_CLOEXEC));
		src = usage_fd >= 0 ? SRC_MEMINFO : SRC_NONE;
	}
}

static int usage(uint64_t *out)
{
	char buf[8192];
	ssize_t n = pread(usage_fd, buf, sizeof buf - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	switch (src) {
	case SRC_V1:
		*out = field(buf, "total_rss", 1) + field(buf, "total_shmem", 1);
		return 0;
	case SRC_V2:
		*out = field(buf, "anon", 1) + field(buf, "shmem", 1);
		return 0;
	case SRC_MEMINFO: {
		uint64_t avail = field(buf, "MemAvailable", 1024);
		*out = budget > avail ? budget - avail : 0;
		return 0;
	}
	default:
		return -1;
	}
}

/*
 * 1: serve SIZE from RAM (the caller must then call spill_pressure_done(SIZE) once the
 * block is populated); 0: spill it. Without a readable budget, spill as SPILL_WHEN=always.
 */
int spill_pressure_wants_ram(size_t size)
{
	int expected = 0;
	uint64_t used, pending;

	if (__atomic_load_n(&once, __ATOMIC_ACQUIRE) != 2) {
		if (__atomic_compare_exchange_n(&once, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			int saved = errno;
			find_budget();
			errno = saved;
			__atomic_store_n(&once, 2, __ATOMIC_RELEASE);
		} else {
			while (__atomic_load_n(&once, __ATOMIC_ACQUIRE) != 2)
				;
		}
	}
	if (src == SRC_NONE)
		return 0;
	pending = __atomic_add_fetch(&in_flight, size, __ATOMIC_RELAXED);
	int saved = errno;
	int ok = usage(&used) == 0 && used + pending <= budget / 100 * spill_cfg.headroom_pct;
	errno = saved;
	if (!ok)
		__atomic_fetch_sub(&in_flight, size, __ATOMIC_RELAXED);
	return ok;
}

/*
 * Faults the block in, so that the kernel counts it before the next decision is made:
 * an untouched block would not show in the usage and every request would look affordable.
 */
void spill_pressure_done(void *p, size_t size)
{
	uintptr_t start = ((uintptr_t)p + spill_page - 1) & ~(uintptr_t)(spill_page - 1);
	uintptr_t end = ((uintptr_t)p + size) & ~(uintptr_t)(spill_page - 1);
	int saved = errno;

	if (p && end > start && madvise((void *)start, end - start, MADV_POPULATE_WRITE))
		for (volatile char *c = (char *)start; (uintptr_t)c < end; c += spill_page)
			*c = *c;
	errno = saved;
	__atomic_fetch_sub(&in_flight, size, __ATOMIC_RELAXED);
}

uint64_t spill_pressure_budget(void)
{
	return budget;
}
