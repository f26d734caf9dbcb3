/* SPDX-License-Identifier: MIT */
/* stats.c - counters of the spill path and the JSON summary written at exit. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "spill.h"

const char *const spill_reason_name[SPILL_R_COUNT] = {
	[SPILL_R_MAX] = "max",			/* SPILL_MAX would be exceeded */
	[SPILL_R_MIN_FREE] = "min_free",	/* SPILL_MIN_FREE would be crossed */
	[SPILL_R_NO_SPACE] = "no_space",	/* fallocate failed: disk full, quota */
	[SPILL_R_NO_DIR] = "no_dir",		/* SPILL_DIR unusable: spilling disabled */
	[SPILL_R_FILE] = "file",		/* the spill file or its mapping could not be made */
	[SPILL_R_FULL] = "reservation_full",	/* no room left in the address reservation */
	[SPILL_R_PRESSURE_OK] = "memory_available", /* SPILL_WHEN=pressure and RAM had room */
	[SPILL_R_FORK_DROP] = "fork_drop",	/* a SPILL_FORK=drop child does not spill */
	[SPILL_R_FORK_COW] = "fork_cow",	/* a fork could not share blocks copy-on-write: the child copied */
};

/* Only the large-request path touches these, so relaxed atomics cost nothing that matters. */
static size_t allocs, frees, bytes_live, bytes_peak, mapped_live, mapped_peak, fallbacks;
static size_t reasons[SPILL_R_COUNT];

static void raise_peak(size_t *peak, size_t v)
{
	size_t old = __atomic_load_n(peak, __ATOMIC_RELAXED);
	while (v > old && !__atomic_compare_exchange_n(peak, &old, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Counts LEN against SPILL_MAX before the block exists; fails if the cap would be passed. */
int spill_stats_claim(size_t len, size_t max)
{
	size_t old = __atomic_load_n(&mapped_live, __ATOMIC_RELAXED);
	do {
		if (len > max || old > max - len)
			return -1;
	} while (!__atomic_compare_exchange_n(&mapped_live, &old, old + len, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	raise_peak(&mapped_peak, old + len);
	return 0;
}

void spill_stats_unclaim(size_t len)
{
	__atomic_fetch_sub(&mapped_live, len, __ATOMIC_RELAXED);
}

size_t spill_stats_mapped_live(void)
{
	return __atomic_load_n(&mapped_live, __ATOMIC_RELAXED);
}

void spill_stats_alloc(size_t size, size_t len)
{
	(void)len;
	__atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED);
	raise_peak(&bytes_peak, __atomic_add_fetch(&bytes_live, size, __ATOMIC_RELAXED));
}

void spill_stats_free(size_t size, size_t len)
{
	(void)len;
	__atomic_fetch_add(&frees, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&bytes_live, size, __ATOMIC_RELAXED);
}

void spill_stats_resize(size_t old_size, size_t old_len, size_t size, size_t len)
{
	(void)old_len, (void)len;
	if (size >= old_size)
		raise_peak(&bytes_peak, __atomic_add_fetch(&bytes_live, size - old_size, __ATOMIC_RELAXED));
	else
		__atomic_fetch_sub(&bytes_live, old_size - size, __ATOMIC_RELAXED);
}

void spill_stats_fallback(enum spill_reason r)
{
	__atomic_fetch_add(&fallbacks, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&reasons[r], 1, __ATOMIC_RELAXED);
}

void spill_stats_reset(void)
{
	allocs = frees = bytes_live = bytes_peak = mapped_live = mapped_peak = fallbacks = 0;
	memset(reasons, 0, sizeof reasons);
}

static size_t get(size_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* The summary as one JSON object on one line, newline included. */
size_t spill_stats_json(char *buf, size_t size)
{
	size_t n = spill_format(buf, size,
		"{\"pid\":%d,\"spilled_allocs\":%zu,\"spilled_frees\":%zu,\"spilled_bytes_live\":%zu,"
		"\"spilled_bytes_peak\":%zu,\"mapped_bytes_peak\":%zu,\"fallbacks\":%zu,\"fallback_reasons\":{",
		(int)getpid(), get(&allocs), get(&frees), get(&bytes_live), get(&bytes_peak),
		get(&mapped_peak), get(&fallbacks));
	const char *sep = "";
	for (int r = 0; r < SPILL_R_COUNT; r++) {
		if (!get(&reasons[r]) || n >= size)
			continue;
		n += spill_format(buf + n, size - n, "%s\"%s\":%zu", sep, spill_reason_name[r], get(&reasons[r]));
		sep = ",";
	}
	if (n < size)
		n += spill_format(buf + n, size - n, "},\"threshold\":%zu,\"dir\":\"", spill_cfg.threshold);
	/* The directory is the only free text: escape what JSON requires. */
	for (const char *d = spill_cfg.dir; *d && n + 8 < size; d++) {
		unsigned char c = (unsigned char)*d;
		if (c == '"' || c == '\\')
			n += spill_format(buf + n, size - n, "\\%c", c);
		else if (c < 0x20)
			n += spill_format(buf + n, size - n, "\\u00%c%c", "0123456789abcdef"[c >> 4],
					  "0123456789abcdef"[c & 15]);
		else
			buf[n++] = (char)c;
	}
	if (n < size)
		n += spill_format(buf + n, size - n, "\"}\n");
	return n < size ? n : size - 1;
}

/* SPILL_STATS=FILE: "%p" becomes the pid; the object is appended in one write. */
void spill_stats_write(void)
{
	char json[1024], path[PATH_MAX];
	size_t n, at = 0;
	int fd, saved = errno;

	if (spill_cfg.stats == SPILL_SINK_OFF)
		return;
	n = spill_stats_json(json, sizeof json);
	if (spill_cfg.stats == SPILL_SINK_STDERR) {
		(void)!write(STDERR_FILENO, json, n);
		errno = saved;
		return;
	}
	for (const char *s = spill_cfg.stats_path; *s && at + 24 < sizeof path; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			at += spill_format(path + at, sizeof path - at, "%d", (int)getpid());
			s++;
		} else {
			path[at++] = *s;
		}
	}
	path[at] = '\0';
	fd = spill_open_sink(path, 0);
	if (fd < 0) {
		spill_warn("SPILL_STATS=\"%s\" cannot be written (%s)", path, spill_errname(errno));
	} else {
		(void)!write(fd, json, n);
		close(fd);
	}
	errno = saved;
}
