/* SPDX-License-Identifier: MIT */
/* copytest.h - the places and advice the copy tests run under, and their per-test setup. */
#ifndef COPYTEST_H
#define COPYTEST_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../integration/matrix.h"
#include "../integration/sparse.h"
#include "spill.h"

#define MiB ((size_t)1 << 20)

/*
 * A variant is where the spill file lives and how it is advised. ext4 (/var/tmp) with
 * MADV_NORMAL has read-around that turns holes near any touched page into data; with
 * MADV_RANDOM SEEK_DATA sees exactly the pages written; tmpfs never reads around.
 */
struct variant {
	const char *fs, *advice;
	int exact;		/* SEEK_DATA shows the written pages and no others */
	char *root;		/* made by copytest_begin() in the runner: failed tests leave nothing behind */
};

static char root_ext4[64], root_tmpfs[64];
static struct variant variants[] = {
	{ "/var/tmp", "normal", 0, root_ext4 },
	{ "/var/tmp", "random", 1, root_ext4 },
	{ "/dev/shm", "normal", 1, root_tmpfs },
};
static const struct variant *var;
static char dir[96];
static size_t pg;

static const char *env_get(const char *name)
{
	return getenv(name);
}

/*
 * In main, before the tests fork: one directory per file system for all tests, removed by
 * copytest_end() with whatever a failed test left in it. Returns how many variants can run:
 * the tmpfs one needs a writable tmpfs at /dev/shm.
 */
static int copytest_begin(void)
{
	struct statfs sfs;

	snprintf(root_ext4, sizeof root_ext4, "/var/tmp/check_copy.XXXXXX");
	if (!mkdtemp(root_ext4)) {
		perror(root_ext4);
		exit(EXIT_FAILURE);
	}
	if (statfs("/dev/shm", &sfs) || sfs.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK)) {
		printf("note: /dev/shm is not a writable tmpfs; the tmpfs variant does not run\n");
		return 2;
	}
	snprintf(root_tmpfs, sizeof root_tmpfs, "/dev/shm/check_copy.XXXXXX");
	return mkdtemp(root_tmpfs) ? 3 : 2;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void copytest_end(void)
{
	if (root_ext4[0])
		nftw(root_ext4, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	if (root_tmpfs[0])
		nftw(root_tmpfs, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Inside the (forked) test: a fresh directory, SPILL_* in the environment, spill_init(). */
static void setup_variant(int i, const char *const *kv)
{
	var = &variants[i];
	snprintf(dir, sizeof dir, "%s/t.XXXXXX", var->root);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	unsetenv("SPILL_MAX");
	unsetenv("SPILL_ON_FAIL");
	unsetenv("SPILL_MIN_FREE");
	unsetenv("SPILL_FORK");
	setenv("SPILL_DIR", dir, 1);
	setenv("SPILL_THRESHOLD", "1M", 1);
	setenv("SPILL_ADVICE", var->advice, 1);
	for (; kv && kv[0]; kv += 2)
		setenv(kv[0], kv[1], 1);
	spill_init();
	spill_config_load(&spill_cfg, env_get);
	ck_assert_int_eq(spill_backing_check_dir(spill_cfg.dir, spill_cfg.dir, sizeof spill_cfg.dir), 0);
	spill_stats_reset();
	pg = spill_page;
	printf("variant: SPILL_DIR on %s, SPILL_ADVICE=%s\n", var->fs, var->advice);
}

static void teardown_variant(void)
{
	spill_flush_kept();
	ck_assert_uint_eq(spill_region_count(), 0);
	ck_assert_msg(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

static uint64_t off_of(const void *p)
{
	return (uint64_t)((const char *)p - spill_file.base);
}

static size_t round_pg(size_t n)
{
	return (n + pg - 1) & ~(pg - 1);
}

/* A spilled block, or the test fails. */
static unsigned char *must_spill(size_t size, int zero)
{
	unsigned char *p = spill_alloc(size, 0, zero);
	ck_assert_msg(p && spill_is_ours(p), "spill_alloc(%zu) did not spill", size);
	return p;
}

/* Checks BLOCK against pattern PT over LEN bytes; fails the test naming WHAT. */
static void expect_pattern(const unsigned char *block, size_t len, const struct sparse_pattern *pt, uint64_t seed,
			   const char *what)
{
	char why[256];
	size_t bad = sparse_check(block, len, pt, seed, why, sizeof why);
	ck_assert_msg(bad == (size_t)-1, "%s [%s, %s]: %s", what, var->fs, var->advice, why);
}

/*
 * The test must see the holes it was written for: under exact variants, a pattern with an
 * inner hole no folio can cover shows two data runs or more. Returns what SEEK_DATA saw.
 */
static struct sparse_seen expect_holes(const unsigned char *p, const struct sparse_pattern *pt, int exact)
{
	struct sparse_seen s = sparse_seek(spill_file.fd, off_of(p), round_pg(pt->size));

	if (exact && pt->wide_holes)
		ck_assert_msg(s.runs >= 2, "%s: SEEK_DATA sees %u data run(s) where the pattern has %u with wide "
			      "holes between them: the test would not exercise hole skipping", pt->name, s.runs, pt->nruns);
	if (exact && !pt->nruns)
		ck_assert_msg(s.runs == 0, "%s: SEEK_DATA sees data in a block never written", pt->name);
	return s;
}

#endif
