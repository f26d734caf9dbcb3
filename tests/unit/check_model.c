/* SPDX-License-Identifier: MIT */
/*
 * check_model.c - the differential model test (tests/integration/model.c) on the spill core
 * linked in, not preloaded: this is how it runs under make check-asan (ASan and UBSan see
 * the core's every access). Every fork mode x {ext4 normal, ext4 random, tmpfs};
 * MODEL_OPS (default 600 under a sanitizer, else 200) operations each, MODEL_SEEDS' first seed (default 1),
 * MODEL_ONLY="MODE ADVICE[ tmpfs]" runs one.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "spill.h"

/* The spill core linked in, entered as interpose.c enters it; everything else is the heap's. */
static void *m_malloc(size_t n)
{
	return n >= spill_gate ? spill_malloc(n, 0) : malloc(n);
}

static void *m_calloc(size_t n, size_t m)
{
	if (n && m > SIZE_MAX / n)
		return NULL;
	return n * m >= spill_gate && spill_active() > 0 ? spill_alloc(n * m, 0, 1) : calloc(n, m);
}

static void *m_realloc(void *p, size_t n)
{
	return spill_is_ours(p) || n >= spill_gate ? spill_realloc(p, n) : realloc(p, n);
}

static void *m_reallocarray(void *p, size_t n, size_t m)
{
	if (n && m > SIZE_MAX / n)
		return NULL;
	return m_realloc(p, n * m);
}

static void *m_memalign(size_t a, size_t n)
{
	return n >= spill_gate ? spill_malloc(n, a) : memalign(a, n);
}

static void *m_aligned_alloc(size_t a, size_t n)
{
	return n >= spill_gate ? spill_malloc(n, a) : aligned_alloc(a, n);
}

static int m_posix_memalign(void **out, size_t a, size_t n)
{
	if (n < spill_gate)
		return posix_memalign(out, a, n);
	*out = spill_malloc(n, a);
	return *out ? 0 : ENOMEM;
}

static void m_free(void *p)
{
	if (spill_is_ours(p))
		spill_free(p);
	else
		free(p);
}

static size_t m_usable(void *p)
{
	return spill_is_ours(p) ? spill_usable_size(p) : malloc_usable_size(p);
}

static int is_spilled(const void *p)
{
	return spill_is_ours(p);
}

static int spill_fd(void)
{
	return spill_file.fd;
}

static uintptr_t spill_base(void)
{
	return (uintptr_t)spill_file.base;
}

#define MODEL_CORE 1
#include "../integration/model.c"

#include <check.h>
#include <ftw.h>

/* What this file is for is the sanitizers; without them the preloaded model runs longer. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define OPS 600
#else
#define OPS 200
#endif

struct config {
	char mode[32], advice[32];
	int tmpfs;
};

static struct config configs[32];
static int nconfigs;
static char root_ext4[64], root_tmpfs[64];

static const char *env_get(const char *name)
{
	return getenv(name);
}

START_TEST(test_model)
{
	const struct config *c = &configs[_i];
	const char *o = getenv("MODEL_OPS"), *sd = getenv("MODEL_SEEDS");
	char d[96];

	snprintf(d, sizeof d, "%s/t.XXXXXX", c->tmpfs ? root_tmpfs : root_ext4);
	ck_assert_ptr_nonnull(mkdtemp(d));
	setenv("SPILL_DIR", d, 1);
	setenv("SPILL_THRESHOLD", "256K", 1);
	setenv("SPILL_FORK", c->mode, 1);
	setenv("SPILL_ADVICE", c->advice, 1);
	spill_init();
	spill_config_load(&spill_cfg, env_get);	/* a constructor may have run init with another environment */
	ck_assert_int_eq(spill_backing_check_dir(spill_cfg.dir, spill_cfg.dir, sizeof spill_cfg.dir), 0);
	ck_assert_msg(run(sd ? strtoull(sd, NULL, 0) : 1, o ? strtoull(o, NULL, 0) : OPS) == 0,
		      "model run failed [SPILL_FORK=%s SPILL_ADVICE=%s%s]: see its output", c->mode, c->advice,
		      c->tmpfs ? " tmpfs" : "");
	spill_flush_kept();
	ck_assert_int_eq(rmdir(d), 0);
}
END_TEST

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(void)
{
	const char *only = getenv("MODEL_ONLY");
	struct statfs sfs;
	char fm[32], adv[32];
	int have_tmpfs, failed;

	snprintf(root_ext4, sizeof root_ext4, "/var/tmp/check_model.XXXXXX");
	if (!mkdtemp(root_ext4))
		return EXIT_FAILURE;
	snprintf(root_tmpfs, sizeof root_tmpfs, "/dev/shm/check_model.XXXXXX");
	have_tmpfs = !statfs("/dev/shm", &sfs) && sfs.f_type == TMPFS_MAGIC && mkdtemp(root_tmpfs);
	if (!have_tmpfs)
		printf("note: /dev/shm is not a writable tmpfs; the tmpfs runs are left out\n");
	for (const char *fp = MATRIX_FORK_MODES; matrix_next(&fp, fm, sizeof fm);)
		for (const char *ap = MATRIX_ADVICE " tmpfs"; matrix_next(&ap, adv, sizeof adv);) {
			struct config c = { .tmpfs = !strcmp(adv, "tmpfs") };
			char name[64];
			snprintf(c.mode, sizeof c.mode, "%s", fm);
			snprintf(c.advice, sizeof c.advice, "%s", c.tmpfs ? "normal" : adv);
			snprintf(name, sizeof name, "%s %s%s", c.mode, c.advice, c.tmpfs ? " tmpfs" : "");
			if ((c.tmpfs && !have_tmpfs) || (only && strcmp(only, name)) || nconfigs == 32)
				continue;
			configs[nconfigs++] = c;
		}

	Suite *s = suite_create("model");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, test_model, 0, nconfigs);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(root_ext4, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	if (have_tmpfs)
		nftw(root_tmpfs, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	return failed == 0 && nconfigs ? EXIT_SUCCESS : EXIT_FAILURE;
}
