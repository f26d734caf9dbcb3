/* SPDX-License-Identifier: MIT */
/* stats.c - counters of the spill path (kept in the published page) and the JSON summary at exit. */
#include <errno.h>
#include <pthread.h>
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
	[SPILL_R_FORK_DROP] = "fork_drop",	/* a fork child without a file (drop, or a copy that did not fit) */
	[SPILL_R_FORK_COW] = "fork_cow",	/* a fork could not share blocks copy-on-write: the child copied */
};

/*
 * The counters live in the published page (pub.c); only the large-request path touches
 * them, so relaxed atomics cost nothing that matters. Updates go through spill_pub_get(),
 * which makes the page on first use; reads take spill_pub as it is.
 */
#define C spill_pub_get()

static void raise_peak(uint64_t *peak, uint64_t v)
{
	uint64_t old = __atomic_load_n(peak, __ATOMIC_RELAXED);
	while (v > old && !__atomic_compare_exchange_n(peak, &old, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Counts LEN against SPILL_MAX before the block exists; fails if the cap would be passed. */
int spill_stats_claim(size_t len, size_t max)
{
	struct spill_pub *c = C;
	uint64_t old = __atomic_load_n(&c->mapped_live, __ATOMIC_RELAXED);
	do {
		if (len > max || old > max - len)
			return -1;
	} while (!__atomic_compare_exchange_n(&c->mapped_live, &old, old + len, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	raise_peak(&c->mapped_peak, old + len);
	return 0;
}

void spill_stats_unclaim(size_t len)
{
	__atomic_fetch_sub(&C->mapped_live, len, __ATOMIC_RELAXED);
}

size_t spill_stats_mapped_live(void)
{
	return __atomic_load_n(&spill_pub->mapped_live, __ATOMIC_RELAXED);
}

void spill_stats_alloc(size_t size, size_t len)
{
	struct spill_pub *c = C;
	(void)len;
	if (spill_unlikely(!c->base) && spill_lo) {	/* the file exists now: say where it is mapped */
		c->span = spill_span;
		__atomic_store_n(&c->base, spill_lo, __ATOMIC_RELEASE);
	}
	if (spill_unlikely(c->fd != spill_file.fd))	/* the first file, or a fork child's own */
		__atomic_store_n(&c->fd, spill_file.fd, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->allocs, 1, __ATOMIC_RELAXED);
	raise_peak(&c->bytes_peak, __atomic_add_fetch(&c->bytes_live, size, __ATOMIC_RELAXED));
	spill_usage_sample(0);
}

void spill_stats_free(size_t size, size_t len)
{
	struct spill_pub *c = C;
	(void)len;
	__atomic_fetch_add(&c->frees, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&c->bytes_live, size, __ATOMIC_RELAXED);
}

void spill_stats_resize(size_t old_size, size_t old_len, size_t size, size_t len)
{
	struct spill_pub *c = C;
	(void)old_len, (void)len;
	if (size >= old_size)
		raise_peak(&c->bytes_peak, __atomic_add_fetch(&c->bytes_live, size - old_size, __ATOMIC_RELAXED));
	else
		__atomic_fetch_sub(&c->bytes_live, old_size - size, __ATOMIC_RELAXED);
	spill_usage_sample(0);
}

void spill_stats_fallback(enum spill_reason r)
{
	struct spill_pub *c = C;
	__atomic_fetch_add(&c->fallbacks, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->reasons[r], 1, __ATOMIC_RELAXED);
}

/* A sample of the spilled bytes in RAM (usage.c). */
void spill_stats_resident(uint64_t bytes)
{
	raise_peak(&C->resident_peak, bytes);
}

void spill_stats_reset(void)
{
	struct spill_pub *c = spill_pub;
	c->allocs = c->frees = c->bytes_live = c->bytes_peak = c->mapped_live = c->mapped_peak = 0;
	c->fallbacks = c->resident_peak = 0;
	memset(c->reasons, 0, sizeof c->reasons);
}

/* After fork.c's child handler: the page is the child's (fork.c made it so first), and the
 * spill file is now the child's own (copy) or none yet (cow, drop). */
static void stats_atfork_child(void)
{
	spill_pub_atfork_child();
	spill_pub->fd = spill_file.fd;
	spill_usage_start();	/* the child's summary tells the child's time */
}

/* From spill_init: the clock for elapsed_ms, and the fork handler that unshares the page. */
void spill_stats_init(void)
{
	spill_usage_start();
	pthread_atfork(NULL, NULL, stats_atfork_child);
}

static uint64_t get(uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* ",\"KEY\":V", or null for a figure that is not known (V < 0). */
static size_t put_figure(char *buf, size_t size, const char *key, long long v)
{
	if (v < 0)
		return spill_format(buf, size, ",\"%s\":null", key);
	return spill_format(buf, size, ",\"%s\":%lld", key, v);
}

/* The summary as one JSON object on one line, newline included. */
size_t spill_stats_json(char *buf, size_t size)
{
	struct spill_pub *c = spill_pub;
	struct spill_usage u;
	size_t n = spill_format(buf, size,
		"{\"pid\":%d,\"spilled_allocs\":%llu,\"spilled_frees\":%llu,\"spilled_bytes_live\":%llu,"
		"\"spilled_bytes_peak\":%llu,\"mapped_bytes_peak\":%llu,\"fallbacks\":%llu,\"fallback_reasons\":{",
		(int)getpid(), get(&c->allocs), get(&c->frees), get(&c->bytes_live), get(&c->bytes_peak),
		get(&c->mapped_peak), get(&c->fallbacks));
	const char *sep = "";
	for (int r = 0; r < SPILL_R_COUNT; r++) {
		if (!get(&c->reasons[r]) || n >= size)
			continue;
		n += spill_format(buf + n, size - n, "%s\"%s\":%llu", sep, spill_reason_name[r], get(&c->reasons[r]));
		sep = ",";
	}
	if (n < size)
		n += spill_format(buf + n, size - n, "}");
	spill_usage_totals(&u);
	if (n < size)
		n += put_figure(buf + n, size - n, "major_faults", u.major_faults);
	if (n < size)
		n += put_figure(buf + n, size - n, "disk_read_bytes", u.read_bytes);
	if (n < size)
		n += put_figure(buf + n, size - n, "disk_write_bytes", u.write_bytes);
	if (n < size)
		n += put_figure(buf + n, size - n, "resident_bytes_peak", (long long)get(&c->resident_peak));
	if (n < size)
		n += put_figure(buf + n, size - n, "elapsed_ms", u.elapsed_ms);
	if (n < size)
		n += spill_format(buf + n, size - n, ",\"threshold\":%zu,\"dir\":\"", spill_cfg.threshold);
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
	char json[1024 + PATH_MAX], path[PATH_MAX];
	size_t n, at = 0;
	int fd, saved = errno;

	if (spill_cfg.stats == SPILL_SINK_OFF)
		return;
	spill_usage_sample(1);	/* the resident peak may never have been sampled since */
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
