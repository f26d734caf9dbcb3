/* SPDX-License-Identifier: MIT */
/* check_spill.c - the spill core on a real file in a temp dir under /var/tmp. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "spill.h"

#define MiB ((size_t)1 << 20)

static char dir[64];

/*
 * Per-test setup, inside the (forked) test: a fresh directory, SPILL_* in the environment,
 * spill_init(). The configuration is loaded again afterwards, because a constructor may
 * have run init before main with the environment the test binary started with.
 */
static const char *env_get(const char *name)
{
	return getenv(name);
}

static void setup_env(const char *const *kv)
{
	strcpy(dir, "/var/tmp/check_spill.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	unsetenv("SPILL_MAX");
	unsetenv("SPILL_ON_FAIL");
	unsetenv("SPILL_MIN_FREE");
	setenv("SPILL_DIR", dir, 1);
	setenv("SPILL_THRESHOLD", "1M", 1);
	for (; kv && kv[0]; kv += 2)
		setenv(kv[0], kv[1], 1);
	spill_init();
	spill_config_load(&spill_cfg, env_get);
	ck_assert_int_eq(spill_backing_check_dir(spill_cfg.dir, spill_cfg.dir, sizeof spill_cfg.dir), 0);
	spill_stats_reset();
}

static void setup(void)
{
	setup_env(NULL);
}

static int dir_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* No name is ever left in the directory: rmdir of it must succeed. */
static void teardown(void)
{
	ck_assert_int_eq(dir_entries(), 0);
	ck_assert_msg(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

static uint64_t file_bytes(void)
{
	struct stat st;
	ck_assert_int_eq(fstat(spill_file.fd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static unsigned long long reason_count(const char *name)
{
	char json[1024], key[64];
	const char *p;

	spill_stats_json(json, sizeof json);
	snprintf(key, sizeof key, "\"%s\":", name);
	p = strstr(json, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* A pattern that depends on the offset: every 512th byte and the last one. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		p[i] = (unsigned char)(seed + i / 512);
	p[n - 1] = (unsigned char)(seed + (n - 1) / 512);
}

/* The pattern's every-512th bytes below N (N may be a prefix of what was filled). */
static int check_fill(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		if (p[i] != (unsigned char)(seed + i / 512))
			return 0;
	return 1;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += sizeof(uint64_t))
		if (*(const uint64_t *)(p + i))
			return 0;
	return 1;
}

/* spill_init() reads SPILL_* from the environment of the process that calls it. */
START_TEST(test_init_reads_environment)
{
	setenv("SPILL_THRESHOLD", "3M", 1);
	setenv("SPILL_ON_FAIL", "null", 1);
	spill_init();
	ck_assert_msg(spill_cfg.threshold == 3 * MiB, "spill_init() did not read SPILL_THRESHOLD=3M (threshold %zu): "
		      "was init already run by a constructor before main?", spill_cfg.threshold);
	ck_assert_int_eq(spill_cfg.on_fail, SPILL_FAIL_NULL);
	ck_assert_uint_eq(spill_gate, 3 * MiB);
}
END_TEST

START_TEST(test_alloc_free)
{
	unsigned char *p;
	char maps_line[PATH_MAX + 256], want[PATH_MAX + 64];
	struct stat st;
	FILE *f;
	int found = 0;

	setup();
	p = spill_alloc(3 * MiB + 1, 0, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert(spill_is_ours(p));
	ck_assert_uint_eq((uintptr_t)p % 4096, 0);
	ck_assert_uint_eq(spill_usable_size(p), 3 * MiB + 4096);
	ck_assert(all_zero(p, 3 * MiB + 1));
	fill(p, 3 * MiB + 1, 7);
	ck_assert(check_fill(p, 3 * MiB + 1, 7));
	ck_assert_int_eq(p[3 * MiB], (unsigned char)(7 + 3 * MiB / 512));
	ck_assert_uint_ge(file_bytes(), 3 * MiB + 4096);	/* reserved on disk: first touch cannot SIGBUS */
	/* The file has no name, and shows in the maps as DIR/#inode (deleted). */
	ck_assert_int_eq(fstat(spill_file.fd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_int_eq(spill_file.named, 0);
	ck_assert_int_eq(dir_entries(), 0);
	ck_assert_int_ge(spill_file.fd, 768);
	snprintf(want, sizeof want, "%s/#%llu (deleted)", spill_cfg.dir, (unsigned long long)st.st_ino);
	f = fopen("/proc/self/maps", "r");
	while (fgets(maps_line, sizeof maps_line, f))
		if (strstr(maps_line, want)) {
			unsigned long lo, hi;
			sscanf(maps_line, "%lx-%lx", &lo, &hi);
			ck_assert((uintptr_t)p >= lo && (uintptr_t)p < hi);
			found++;
		}
	fclose(f);
	ck_assert_msg(found == 1, "want one mapping of %s, found %d", want, found);
	ck_assert_uint_eq(spill_region_count(), 1);
	spill_free(p);
	ck_assert_uint_eq(spill_region_count(), 0);
	spill_flush_kept();
	ck_assert_uint_le(file_bytes(), 64 * 1024);	/* the disk space is back */
	ck_assert_uint_eq(spill_stats_mapped_live(), 0);
	teardown();
}
END_TEST

/* A freed block's disk space is kept a moment and handed to the next request of that size, zeroed. */
START_TEST(test_retained_reuse)
{
	unsigned char *p, *q;

	setup();
	p = spill_alloc(2 * MiB, 0, 0);
	ck_assert_ptr_nonnull(p);
	memset(p, 0xab, 2 * MiB);
	spill_free(p);
	if (spill_file.can_zero)
		ck_assert_uint_ge(file_bytes(), 2 * MiB);	/* kept: the disk blocks stay */
	q = spill_alloc(2 * MiB - 4096 * 3, 0, 1);
	ck_assert_ptr_eq(q, p);
	ck_assert_msg(all_zero(q, 2 * MiB - 4096 * 3), "a reused block must read as zero");
	spill_free(q);
	spill_flush_kept();
	ck_assert_uint_le(file_bytes(), 64 * 1024);
	teardown();
}
END_TEST

START_TEST(test_realloc_grow_in_place)
{
	unsigned char *p, *q;
	uint64_t before;

	setup();
	p = spill_alloc(MiB, 0, 0);
	fill(p, MiB, 3);
	before = file_bytes();
	q = spill_realloc(p, 5 * MiB);
	ck_assert_ptr_eq(q, p);	/* the space after it is free */
	ck_assert_uint_eq(spill_usable_size(q), 5 * MiB);
	ck_assert(check_fill(q, MiB, 3));
	ck_assert_uint_ge(file_bytes(), before + 4 * MiB);
	ck_assert(all_zero(q + MiB, 4 * MiB - 1));
	q[5 * MiB - 1] = 1;
	spill_free(q);
	spill_flush_kept();
	teardown();
}
END_TEST

START_TEST(test_realloc_shrink)
{
	unsigned char *p, *q;
	uint64_t before;

	setup();
	p = spill_alloc(8 * MiB, 0, 0);
	fill(p, 8 * MiB, 9);
	before = file_bytes();
	q = spill_realloc(p, 2 * MiB + 1);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(spill_usable_size(q), 2 * MiB + 4096);
	ck_assert(check_fill(q, 2 * MiB, 9));
	ck_assert_uint_le(file_bytes(), before - 5 * MiB);	/* the tail went back to the disk */
	/* and growing again reuses the same place (it is still within the block's cap) */
	ck_assert_ptr_eq(spill_realloc(q, 6 * MiB), p);
	ck_assert(check_fill(q, 2 * MiB, 9));
	ck_assert(all_zero(q + 2 * MiB + 4096, 4 * MiB - 4096));
	spill_free(q);
	teardown();
}
END_TEST

/* A block boxed in by a neighbour moves; the data goes along, the neighbour is untouched. */
START_TEST(test_realloc_move)
{
	unsigned char *p, *n, *q, *r;

	setup();
	p = spill_alloc(MiB, 0, 0);
	n = spill_alloc(MiB, 0, 0);
	ck_assert_ptr_eq(n, p + MiB);
	fill(p, MiB, 1);
	fill(n, MiB, 2);
	q = spill_realloc(p, 3 * MiB);
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_ne(q, p);
	ck_assert(spill_is_ours(q));
	ck_assert(check_fill(q, MiB, 1));
	ck_assert(check_fill(n, MiB, 2));
	ck_assert_uint_eq(spill_region_count(), 2);
	ck_assert_uint_eq(spill_usable_size(q), 3 * MiB);
	/* A moved block gets twice the room: growing into it needs no second move. */
	r = spill_alloc(MiB, 0, 0);
	ck_assert(r < q || r >= q + 6 * MiB);
	ck_assert_ptr_eq(spill_realloc(q, 6 * MiB), q);
	ck_assert(check_fill(q, MiB, 1));
	spill_free(q);
	spill_free(n);
	spill_free(r);
	ck_assert_uint_eq(spill_region_count(), 0);
	spill_flush_kept();
	teardown();
}
END_TEST

/* Without retention, a freed hole between live blocks is the first fit for the next block. */
START_TEST(test_first_fit_reuse)
{
	unsigned char *b[8], *q;

	setup();
	for (int i = 0; i < 8; i++)
		ck_assert_ptr_nonnull(b[i] = spill_alloc(MiB, 0, 0));
	spill_file.can_zero = 0;	/* every free punches and returns its extent at once */
	spill_free(b[2]);
	spill_free(b[5]);
	q = spill_alloc(MiB, 0, 0);
	ck_assert_ptr_eq(q, b[2]);
	q = spill_alloc(MiB - 4096, 0, 0);
	ck_assert_ptr_eq(q, b[5]);
	for (int i = 0; i < 8; i++)
		spill_free(b[i]);
	teardown();
}
END_TEST

START_TEST(test_alignment)
{
	void *p;

	setup();
	p = spill_alloc(MiB, 0, 0);
	void *q = spill_alloc(3 * MiB, 64 * MiB, 0);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq((uintptr_t)q % (64 * MiB), 0);
	ck_assert(spill_is_ours(q));
	spill_free(q);
	spill_free(p);
	teardown();
}
END_TEST

/* A plain heap block that crosses the threshold moves into a spilled one; size 0 frees. */
START_TEST(test_realloc_from_heap_and_to_zero)
{
	unsigned char *p, *q;

	setup();
	p = malloc(1000);
	memset(p, 0x42, 1000);
	q = spill_realloc(p, 2 * MiB);
	ck_assert(spill_is_ours(q));
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(q[i], 0x42);
	ck_assert_ptr_null(spill_realloc(q, 0));
	ck_assert_uint_eq(spill_region_count(), 0);
	/* below the threshold it stays on the heap */
	p = malloc(10);
	q = spill_realloc(p, 1000);
	ck_assert(!spill_is_ours(q));
	free(q);
	spill_flush_kept();
	teardown();
}
END_TEST

START_TEST(test_max_null)
{
	static const char *const env[] = { "SPILL_MAX", "4M", "SPILL_ON_FAIL", "null", NULL };
	void *p, *q;

	setup_env(env);
	ck_assert_uint_eq(spill_cfg.max, 4 * MiB);
	p = spill_alloc(3 * MiB, 0, 0);
	ck_assert_ptr_nonnull(p);
	errno = 0;
	q = spill_alloc(2 * MiB, 0, 0);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(reason_count("max"), 1);
	ck_assert_uint_eq(reason_count("fallbacks"), 1);
	/* growth past the cap fails too, and the block stays as it was */
	errno = 0;
	ck_assert_ptr_null(spill_realloc(p, 5 * MiB));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(spill_usable_size(p), 3 * MiB);
	ck_assert_uint_eq(reason_count("max"), 2);
	/* exactly up to the cap is fine */
	q = spill_alloc(MiB, 0, 0);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(spill_stats_mapped_live(), 4 * MiB);
	spill_free(q);
	spill_free(p);
	ck_assert_uint_eq(spill_stats_mapped_live(), 0);
	/* the cap counts live bytes: after the frees there is room again */
	p = spill_alloc(4 * MiB, 0, 0);
	ck_assert_ptr_nonnull(p);
	spill_free(p);
	spill_flush_kept();
	teardown();
}
END_TEST

START_TEST(test_max_ram)
{
	static const char *const env[] = { "SPILL_MAX", "2M", NULL };
	unsigned char *p, *q;

	setup_env(env);
	ck_assert_int_eq(spill_cfg.on_fail, SPILL_FAIL_RAM);
	p = spill_alloc(2 * MiB, 0, 0);
	ck_assert(spill_is_ours(p));
	q = spill_alloc(3 * MiB, 0, 1);
	ck_assert_ptr_nonnull(q);
	ck_assert(!spill_is_ours(q));	/* served by the real allocator */
	ck_assert(all_zero(q, 3 * MiB));	/* zero requested: still zero from RAM */
	free(q);
	/* growth that cannot spill: the data moves to RAM */
	fill(p, 2 * MiB, 4);
	q = spill_realloc(p, 4 * MiB);
	ck_assert_ptr_nonnull(q);
	ck_assert(!spill_is_ours(q));
	ck_assert(check_fill(q, 2 * MiB, 4));
	ck_assert_uint_eq(spill_region_count(), 0);
	ck_assert_uint_eq(reason_count("max"), 2);
	free(q);
	spill_flush_kept();
	teardown();
}
END_TEST

/*
 * A block that must move for growth, when the move would pass SPILL_MAX: the fallback is
 * counted under "max" (the reason), not "reservation_full".
 */
START_TEST(test_max_move_reason)
{
	static const char *const env[] = { "SPILL_MAX", "3M", "SPILL_ON_FAIL", "null", NULL };
	void *p, *n;

	setup_env(env);
	p = spill_alloc(MiB, 0, 0);
	n = spill_alloc(MiB, 0, 0);
	ck_assert_ptr_eq(n, (char *)p + MiB);
	ck_assert_ptr_null(spill_realloc(p, MiB + MiB / 2));
	ck_assert_uint_eq(spill_usable_size(p), MiB);
	ck_assert_uint_eq(reason_count("reservation_full"), 0);
	ck_assert_uint_eq(reason_count("max"), 1);
	spill_free(p);
	spill_free(n);
	spill_flush_kept();
	teardown();
}
END_TEST

/* Where O_TMPFILE is refused: a random name, unlinked at once. Nothing stays in the directory. */
START_TEST(test_named_fallback)
{
	unsigned char *p;
	struct stat st;

	setup();
	spill_backing_force_named = 1;
	p = spill_alloc(2 * MiB, 0, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(spill_file.named, 1);
	ck_assert_int_eq(dir_entries(), 0);
	ck_assert_int_eq(fstat(spill_file.fd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	fill(p, 2 * MiB, 5);
	ck_assert(check_fill(p, 2 * MiB, 5));
	p = spill_realloc(p, 7 * MiB);
	ck_assert(check_fill(p, 2 * MiB, 5));
	spill_free(p);
	spill_flush_kept();
	teardown();
}
END_TEST

/* A small reservation (as under ulimit -v): requests beyond it fall back as reservation_full. */
START_TEST(test_span_want)
{
	static const char *const env[] = { "SPILL_ON_FAIL", "null", NULL };
	void *p, *q;

	setup_env(env);
	spill_backing_span_want = 64 * MiB;
	p = spill_alloc(40 * MiB, 0, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(spill_file.span, 64 * MiB);
	ck_assert_uint_eq(spill_span, 64 * MiB);
	ck_assert_ptr_null(spill_alloc(30 * MiB, 0, 0));
	ck_assert_uint_eq(reason_count("reservation_full"), 1);
	ck_assert_ptr_null(spill_alloc(65 * MiB, 0, 0));
	ck_assert_uint_eq(reason_count("reservation_full"), 2);
	q = spill_alloc(24 * MiB, 0, 0);	/* exactly the rest */
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_eq(q, (char *)p + 40 * MiB);
	ck_assert(!spill_is_ours((char *)p + 64 * MiB));
	ck_assert(!spill_is_ours((char *)p - 1));
	spill_free(q);
	spill_free(p);
	spill_flush_kept();
	q = spill_alloc(64 * MiB, 0, 0);	/* everything came back */
	ck_assert_ptr_eq(q, p);
	spill_free(q);
	spill_flush_kept();
	teardown();
}
END_TEST

/* SPILL_DIR that does not exist: the file cannot be made; SPILL_ON_FAIL=null gives NULL. */
START_TEST(test_no_dir)
{
	static const char *const env[] = { "SPILL_ON_FAIL", "null", NULL };
	char gone[80];

	setup_env(env);
	snprintf(gone, sizeof gone, "%s/gone", dir);
	strcpy(spill_cfg.dir, gone);
	errno = 0;
	ck_assert_ptr_null(spill_alloc(2 * MiB, 0, 0));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(reason_count("file") + reason_count("no_dir"), 1);
	ck_assert_ptr_null(spill_alloc(2 * MiB, 0, 0));	/* remembered: no retry storm */
	ck_assert_uint_eq(reason_count("file") + reason_count("no_dir"), 2);
	teardown();
}
END_TEST

struct bad_call {
	void *p;
	int op;		/* 0 free, 1 usable_size, 2 realloc */
};

static void *bad_child(void *arg)
{
	struct bad_call *c = arg;
	if (c->op == 0)
		spill_free(c->p);
	else if (c->op == 1)
		spill_usable_size(c->p);
	else
		spill_realloc(c->p, 5 * MiB);
	return NULL;
}

/* Runs a bad call in a child; returns its stderr and checks it died of SIGABRT. */
static void bad_child_fn(void *arg)
{
	bad_child(arg);
}

static void expect_abort(struct bad_call *c, const char *want)
{
	char out[1024];
	int status = run_captured(bad_child_fn, c, out, sizeof out, NULL);

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "want SIGABRT, status %d: %s", status, out);
	ck_assert_msg(strstr(out, want) != NULL, "want \"%s\" in: %s", want, out);
}

START_TEST(test_bad_pointers)
{
	char *p, *q, want[160];
	struct bad_call c;

	setup();
	p = spill_alloc(2 * MiB, 0, 0);
	q = spill_alloc(2 * MiB, 0, 0);
	c = (struct bad_call){ p + 4096, 0 };
	snprintf(want, sizeof want, "libspill: free(): %p points into the middle of spilled block %p", (void *)(p + 4096),
		 (void *)p);
	expect_abort(&c, want);
	c = (struct bad_call){ p + 4096, 1 };
	expect_abort(&c, "points into the middle of spilled block");
	c = (struct bad_call){ p + 4096, 2 };
	expect_abort(&c, "libspill: realloc(): ");
	spill_free(q);
	spill_flush_kept();
	c = (struct bad_call){ q, 0 };	/* double free */
	snprintf(want, sizeof want, "libspill: free(): %p is not a live spilled block (double free or invalid pointer)",
		 (void *)q);
	expect_abort(&c, want);
	/* the parent's blocks are intact after all that */
	ck_assert_uint_eq(spill_region_count(), 1);
	spill_free(p);
	spill_flush_kept();
	teardown();
}
END_TEST

/* Whether this kernel has cachestat() (Linux 6.5), asked directly rather than through the library. */
static int cachestat_missing(void)
{
	struct { uint64_t off, len; } range = { 0, 0 };
	uint64_t cs[5];
	int fd = memfd_create("cachestat-probe", 0), missing;

	ck_assert_int_ge(fd, 0);
	missing = syscall(451, fd, &range, cs, 0) != 0 && errno == ENOSYS;
	close(fd);
	return missing;
}

/* Resident spilled bytes: the pages written are seen, the summary keeps the peak, a free samples first. */
static void resident_case(int mincore_only)
{
	uint64_t res, dirty;
	unsigned char *a, *b;
	char json[2048], *p;

	setup();
	spill_usage_no_cachestat = mincore_only;
	a = spill_alloc(8 * MiB, 0, 0);
	b = spill_alloc(4 * MiB, 0, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	memset(a, 1, 8 * MiB);
	memset(b, 2, 2 * MiB);
	/* the published page says where the file is, for spill top */
	ck_assert_int_eq(spill_pub->fd, spill_file.fd);
	ck_assert_uint_eq(spill_pub->base, (uintptr_t)spill_file.base);
	ck_assert_uint_eq(spill_pub->span, spill_file.span);
	ck_assert_int_eq(spill_usage_resident(&res, &dirty), 0);
	ck_assert_uint_ge(res, 10 * MiB);
	ck_assert_uint_le(res, 12 * MiB);	/* live blocks only: read-ahead past them is not counted */
	/* before Linux 6.5 there is no cachestat(): the library falls back to mincore */
	if (mincore_only || spill_usage_no_cachestat) {
		ck_assert(mincore_only || cachestat_missing());
		ck_assert_uint_eq(dirty, UINT64_MAX);	/* mincore cannot tell */
	} else {
		ck_assert_uint_ge(dirty, 10 * MiB);
		ck_assert_uint_le(dirty, res);
	}
	spill_usage_start();		/* forget the rate limit: the next call samples */
	spill_free(a);			/* ...before a's pages go */
	spill_free(b);
	ck_assert_int_eq(spill_usage_resident(&res, &dirty), 0);
	ck_assert_uint_eq(res, 0);		/* no live block */
	spill_stats_json(json, sizeof json);
	p = strstr(json, "\"resident_bytes_peak\":");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(strtoull(p + strlen("\"resident_bytes_peak\":"), NULL, 10), 10 * MiB);
	spill_flush_kept();
	teardown();
}

/* A fork child's counter updates (cow's unclaim of inherited blocks) land in its own page, never the parent's. */
START_TEST(test_fork_counters)
{
	unsigned char *p;
	size_t live, allocs;
	int status;
	pid_t pid;

	setup();
	p = spill_alloc(4 * MiB, 0, 0);
	ck_assert_ptr_nonnull(p);
	memset(p, 1, 4 * MiB);
	live = spill_stats_mapped_live();
	allocs = spill_pub->allocs;
	ck_assert_uint_eq(live, 4 * MiB);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int bad = spill_pub->pid != getpid();
		unsigned char *q = spill_alloc(2 * MiB, 0, 0);	/* the child's own */
		bad |= (!q || spill_pub->allocs != allocs + 1) << 1;
		bad |= (spill_pub->fd != spill_file.fd) << 2;
		_exit(bad);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check bits 0x%x", WEXITSTATUS(status));
	ck_assert_uint_eq(spill_stats_mapped_live(), live);
	ck_assert_uint_eq(spill_pub->allocs, allocs);
	ck_assert_int_eq(spill_pub->pid, getpid());
	spill_free(p);
	spill_flush_kept();
	teardown();
}
END_TEST

START_TEST(test_resident)
{
	resident_case(0);
}
END_TEST

START_TEST(test_resident_mincore)
{
	resident_case(1);
}
END_TEST

/* Four threads allocate, touch, resize and free; then every byte of the file and reservation is back. */
#define THREADS 4
#define ROUNDS 150

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = id * 2654435761u + 1;
	unsigned char *live[3] = { 0 };
	size_t sizes[3] = { 0 };
	long bad = 0;

	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned k = (seed = seed * 1103515245u + 12345u) >> 16;
		unsigned slot = k % 3;
		if (live[slot]) {
			if (!check_fill(live[slot], sizes[slot], id * 31 + slot))
				bad++;
			if (k & 8) {
				size_t ns = MiB + (k % 5) * MiB / 2;
				unsigned char *np = spill_realloc(live[slot], ns);
				if (!np) {
					bad++;
					continue;
				}
				if (!check_fill(np, sizes[slot] < ns ? sizes[slot] : ns, id * 31 + slot) &&
				    sizes[slot] <= ns)
					bad++;
				live[slot] = np;
				sizes[slot] = ns;
				fill(np, ns, id * 31 + slot);
				continue;
			}
			spill_free(live[slot]);
			live[slot] = NULL;
		} else {
			sizes[slot] = MiB + (k % 7) * 300000;
			live[slot] = spill_alloc(sizes[slot], 0, 0);
			if (!live[slot] || !spill_is_ours(live[slot])) {
				bad++;
				live[slot] = NULL;
				continue;
			}
			fill(live[slot], sizes[slot], id * 31 + slot);
		}
	}
	for (int i = 0; i < 3; i++)
		if (live[i])
			spill_free(live[i]);
	return (void *)bad;
}

START_TEST(test_threads)
{
	pthread_t t[THREADS];
	void *p;

	setup();
	spill_backing_span_want = 256 * MiB;
	p = spill_alloc(MiB, 0, 0);	/* create the file before the threads race */
	spill_free(p);
	for (uintptr_t i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
	for (int i = 0; i < THREADS; i++) {
		void *bad;
		pthread_join(t[i], &bad);
		ck_assert_msg(bad == NULL, "thread %d saw %ld bad blocks", i, (long)bad);
	}
	ck_assert_uint_eq(spill_region_count(), 0);
	ck_assert_uint_eq(spill_stats_mapped_live(), 0);
	spill_flush_kept();
	/* The whole reservation is one free extent again, and the file holds no blocks: nothing leaked. */
	uint64_t left = file_bytes();
	p = spill_alloc(256 * MiB, 0, 0);
	/*
	 * A few MiB may stay: with large page-cache folios (ext4 on recent kernels) a punch that
	 * splits a folio another thread is faulting can leave its dirty part behind. The extents
	 * are what must come back exactly.
	 */
	ck_assert_msg(p != NULL && spill_is_ours(p) && left <= 8 * MiB,
		      "after all frees: %llu bytes still allocated in the spill file; reservation %s",
		      (unsigned long long)left, p && spill_is_ours(p) ? "whole" : "NOT whole (extents leaked)");
	spill_free(p);
	spill_flush_kept();
	teardown();
}
END_TEST

Suite *spill_suite(void)
{
	Suite *s = suite_create("spill");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_init_reads_environment);
	tcase_add_test(core, test_alloc_free);
	tcase_add_test(core, test_retained_reuse);
	tcase_add_test(core, test_realloc_grow_in_place);
	tcase_add_test(core, test_realloc_shrink);
	tcase_add_test(core, test_realloc_move);
	tcase_add_test(core, test_first_fit_reuse);
	tcase_add_test(core, test_alignment);
	tcase_add_test(core, test_realloc_from_heap_and_to_zero);
	tcase_add_test(core, test_named_fallback);
	tcase_add_test(core, test_threads);
	tcase_add_test(core, test_resident);
	tcase_add_test(core, test_fork_counters);
	tcase_add_test(core, test_resident_mincore);
	tcase_set_timeout(core, 120);
	suite_add_tcase(s, core);
	tcase_add_test(limits, test_max_null);
	tcase_add_test(limits, test_max_ram);
	tcase_add_test(limits, test_max_move_reason);
	tcase_add_test(limits, test_span_want);
	tcase_add_test(limits, test_no_dir);
	tcase_add_test(limits, test_bad_pointers);
	tcase_set_timeout(limits, 60);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(spill_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
