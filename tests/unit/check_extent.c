/* SPDX-License-Identifier: MIT */
/* check_extent.c - the free-extent treap against a brute-force bitmap model. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spill.h"

/* The model: one byte per unit of offset space, 1 = free. */
#define TOTAL 4096u
static unsigned char model[TOTAL];

struct live { uint64_t off, len; };
static struct live lives[TOTAL];
static unsigned n_lives;
static uint64_t seed, seed_start;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static uint64_t model_free_bytes(void)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < TOTAL; i++)
		n += model[i];
	return n;
}

/* Maximal free runs: what a coalescing allocator must hold as separate extents. */
static uint32_t model_runs(void)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < TOTAL; i++)
		n += model[i] && (i == 0 || !model[i - 1]);
	return n;
}

static int model_all(uint64_t off, uint64_t len, unsigned char v)
{
	if (off + len > TOTAL)
		return 0;
	for (uint64_t i = off; i < off + len; i++)
		if (model[i] != v)
			return 0;
	return 1;
}

static void model_set(uint64_t off, uint64_t len, unsigned char v)
{
	memset(model + off, v, len);
}

/* Lowest offset, a multiple of ALIGN, where LEN free units start; -1 if none. */
static int64_t model_first_fit(uint64_t len, uint64_t align)
{
	if (align < 1)
		align = 1;
	for (uint64_t off = 0; off + len <= TOTAL; off += align)
		if (model_all(off, len, 1))
			return (int64_t)off;
	return -1;
}

static void check_state(struct spill_extents *e, unsigned step)
{
	ck_assert_msg(e->free_bytes == model_free_bytes(), "seed %llu step %u: free_bytes %llu, model %llu",
		      (unsigned long long)seed_start, step, (unsigned long long)e->free_bytes,
		      (unsigned long long)model_free_bytes());
	ck_assert_msg(spill_extents_count(e) == model_runs(), "seed %llu step %u: %u extents, model has %u free runs",
		      (unsigned long long)seed_start, step, spill_extents_count(e), model_runs());
}

static void do_alloc(struct spill_extents *e, uint64_t len, uint64_t align, unsigned step, uint64_t seed0)
{
	uint64_t off = 0;
	int64_t fit = model_first_fit(len, align);
	int rc = spill_extents_alloc(e, len, align, &off);

	if (rc) {
		ck_assert_msg(fit < 0, "seed %llu step %u: alloc(%llu, align %llu) failed, but %lld fits",
			      (unsigned long long)seed0, step, (unsigned long long)len, (unsigned long long)align,
			      (long long)fit);
		return;
	}
	ck_assert_msg(fit >= 0, "seed %llu step %u: alloc(%llu) succeeded with no room", (unsigned long long)seed0,
		      step, (unsigned long long)len);
	ck_assert_msg(align <= 1 || off % align == 0, "seed %llu step %u: off %llu not aligned to %llu",
		      (unsigned long long)seed0, step, (unsigned long long)off, (unsigned long long)align);
	ck_assert_msg(model_all(off, len, 1), "seed %llu step %u: alloc gave [%llu,+%llu) which overlaps used space",
		      (unsigned long long)seed0, step, (unsigned long long)off, (unsigned long long)len);
	if (align <= 1)	/* without alignment padding it is exact first fit */
		ck_assert_msg((int64_t)off == fit, "seed %llu step %u: alloc(%llu) at %llu, first fit is %lld",
			      (unsigned long long)seed0, step, (unsigned long long)len, (unsigned long long)off,
			      (long long)fit);
	model_set(off, len, 0);
	lives[n_lives++] = (struct live){ off, len };
}

/* Random alloc / free / partial free / take, checked against the model after every step. */
static void run_random(uint64_t seed0, unsigned steps, int aligned)
{
	struct spill_extents e;

	seed = seed_start = seed0;
	n_lives = 0;
	memset(model, 1, sizeof model);
	ck_assert_int_eq(spill_extents_init(&e, TOTAL), 0);
	check_state(&e, 0);
	for (unsigned step = 1; step <= steps; step++) {
		unsigned op = (unsigned)(rnd() % 10);
		if (op < 4 || n_lives == 0) {
			uint64_t len = 1 + rnd() % (rnd() % 4 ? 64 : 700);
			uint64_t align = aligned ? (uint64_t)1 << (rnd() % 8) : 1;
			do_alloc(&e, len, align, step, seed0);
		} else if (op < 7) {
			unsigned i = (unsigned)(rnd() % n_lives);
			ck_assert_int_eq(spill_extents_free(&e, lives[i].off, lives[i].len), 0);
			model_set(lives[i].off, lives[i].len, 1);
			lives[i] = lives[--n_lives];
		} else if (op < 8) {
			/* free the tail of a block, as the core does with the unused part of a cap */
			unsigned i = (unsigned)(rnd() % n_lives);
			if (lives[i].len < 2)
				continue;
			uint64_t keep = 1 + rnd() % (lives[i].len - 1);
			ck_assert_int_eq(spill_extents_free(&e, lives[i].off + keep, lives[i].len - keep), 0);
			model_set(lives[i].off + keep, lives[i].len - keep, 1);
			lives[i].len = keep;
		} else if (op < 9) {
			/* grow a block in place: take what follows it */
			unsigned i = (unsigned)(rnd() % n_lives);
			uint64_t off = lives[i].off + lives[i].len, len = 1 + rnd() % 100;
			int want = model_all(off, len, 1);
			int rc = spill_extents_take(&e, off, len);
			ck_assert_msg(rc == (want ? 0 : -1), "seed %llu step %u: take(%llu,+%llu) = %d, model says %s",
				      (unsigned long long)seed0, step, (unsigned long long)off, (unsigned long long)len,
				      rc, want ? "free" : "used");
			if (!rc) {
				model_set(off, len, 0);
				lives[i].len += len;
			}
		} else {
			/* take an arbitrary range: succeeds exactly when all of it is free */
			uint64_t off = rnd() % TOTAL, len = 1 + rnd() % 200;
			int want = model_all(off, len, 1);
			int rc = spill_extents_take(&e, off, len);
			ck_assert_msg(rc == (want ? 0 : -1), "seed %llu step %u: take(%llu,+%llu) = %d, model says %s",
				      (unsigned long long)seed0, step, (unsigned long long)off, (unsigned long long)len,
				      rc, want ? "free" : "not all free");
			if (!rc) {
				model_set(off, len, 0);
				lives[n_lives++] = (struct live){ off, len };
			}
		}
		check_state(&e, step);
	}
	/* Everything back: one extent covering the whole space again. */
	while (n_lives) {
		n_lives--;
		ck_assert_int_eq(spill_extents_free(&e, lives[n_lives].off, lives[n_lives].len), 0);
		model_set(lives[n_lives].off, lives[n_lives].len, 1);
	}
	ck_assert_uint_eq(e.free_bytes, TOTAL);
	ck_assert_uint_eq(spill_extents_count(&e), 1);
	uint64_t off;
	ck_assert_int_eq(spill_extents_alloc(&e, TOTAL, 1, &off), 0);
	ck_assert_uint_eq(off, 0);
}

START_TEST(test_random_unaligned)
{
	uint64_t s = 0x1234567ull + (uint64_t)_i * 7919;
	run_random(s, 3000, 0);
}
END_TEST

START_TEST(test_random_aligned)
{
	uint64_t s = 0xabcdefull + (uint64_t)_i * 104729;
	run_random(s, 3000, 1);
}
END_TEST

START_TEST(test_basic)
{
	struct spill_extents e;
	uint64_t a, b, c, d;

	ck_assert_int_eq(spill_extents_init(&e, 1000), 0);
	ck_assert_uint_eq(e.free_bytes, 1000);
	ck_assert_uint_eq(spill_extents_count(&e), 1);
	ck_assert_int_eq(spill_extents_alloc(&e, 100, 1, &a), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, 100, 1, &b), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, 100, 1, &c), 0);
	ck_assert_uint_eq(a, 0);
	ck_assert_uint_eq(b, 100);
	ck_assert_uint_eq(c, 200);
	ck_assert_uint_eq(e.free_bytes, 700);
	/* A hole between two live blocks is reused first. */
	ck_assert_int_eq(spill_extents_free(&e, b, 100), 0);
	ck_assert_uint_eq(spill_extents_count(&e), 2);
	ck_assert_int_eq(spill_extents_alloc(&e, 60, 1, &d), 0);
	ck_assert_uint_eq(d, 100);
	/* Freeing the neighbours merges everything back into one extent. */
	ck_assert_int_eq(spill_extents_free(&e, a, 100), 0);
	ck_assert_int_eq(spill_extents_free(&e, c, 100), 0);
	ck_assert_uint_eq(spill_extents_count(&e), 2);	/* [0,100) and [160,1000) */
	ck_assert_int_eq(spill_extents_free(&e, d, 60), 0);
	ck_assert_uint_eq(spill_extents_count(&e), 1);
	ck_assert_uint_eq(e.free_bytes, 1000);
	/* Too big. */
	ck_assert_int_eq(spill_extents_alloc(&e, 1001, 1, &a), -1);
	ck_assert_int_eq(spill_extents_alloc(&e, 1000, 1, &a), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, 1, 1, &a), -1);
}
END_TEST

START_TEST(test_take)
{
	struct spill_extents e;
	uint64_t a;

	ck_assert_int_eq(spill_extents_init(&e, 1000), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, 100, 1, &a), 0);
	ck_assert_int_eq(spill_extents_take(&e, 100, 50), 0);	/* grow a in place */
	ck_assert_int_eq(spill_extents_take(&e, 100, 1), -1);	/* already taken */
	ck_assert_int_eq(spill_extents_take(&e, 140, 20), -1);	/* straddles used space */
	ck_assert_int_eq(spill_extents_take(&e, 900, 101), -1);	/* past the end */
	ck_assert_int_eq(spill_extents_take(&e, 500, 100), 0);	/* from the middle of an extent */
	ck_assert_uint_eq(spill_extents_count(&e), 2);
	ck_assert_uint_eq(e.free_bytes, 750);
	ck_assert_int_eq(spill_extents_take(&e, UINT64_MAX - 10, 20), -1);	/* wraps */
	ck_assert_int_eq(spill_extents_alloc(&e, 401, 1, &a), -1);	/* [150,500) and [600,1000) */
	ck_assert_int_eq(spill_extents_alloc(&e, 350, 1, &a), 0);
	ck_assert_uint_eq(a, 150);
}
END_TEST

START_TEST(test_alignment)
{
	struct spill_extents e;
	uint64_t a;

	ck_assert_int_eq(spill_extents_init(&e, 1 << 20), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, 3, 1, &a), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, 100, 4096, &a), 0);
	ck_assert_uint_eq(a, 4096);
	ck_assert_uint_eq(e.free_bytes, (1 << 20) - 103);
	ck_assert_uint_eq(spill_extents_count(&e), 2);	/* [3,4096) and [4196,1M) */
	/* Only an aligned spot counts, even when an unaligned one is big enough. */
	ck_assert_int_eq(spill_extents_alloc(&e, (1 << 20) - 8192, 8192, &a), 0);
	ck_assert_uint_eq(a, 8192);
}
END_TEST

/*
 * The core passes align >= page size and every offset it uses is a page multiple, so an
 * exactly-sized free hole is aligned already and first fit must reuse it.
 */
START_TEST(test_aligned_exact_hole_reused)
{
	struct spill_extents e;
	const uint64_t pg = 4096, mib = 1 << 20;
	uint64_t off[64], d;

	ck_assert_int_eq(spill_extents_init(&e, (uint64_t)1 << 40), 0);
	for (unsigned i = 0; i < 64; i++) {
		ck_assert_int_eq(spill_extents_alloc(&e, mib, pg, &off[i]), 0);
		ck_assert_uint_eq(off[i], i * mib);
	}
	for (unsigned i = 0; i < 64; i += 2)
		ck_assert_int_eq(spill_extents_free(&e, off[i], mib), 0);
	for (unsigned i = 0; i < 64; i += 2) {
		ck_assert_int_eq(spill_extents_alloc(&e, mib, pg, &d), 0);
		ck_assert_msg(d == off[i], "first fit of a page-aligned 1 MiB: got offset %llu, the free hole at %llu fits exactly",
			      (unsigned long long)d, (unsigned long long)off[i]);
	}
}
END_TEST

/* Many extents: the node pool grows (and may move) while the tree is in use. */
START_TEST(test_pool_growth)
{
	struct spill_extents e;
	const unsigned n = 20000;
	uint64_t off;

	ck_assert_int_eq(spill_extents_init(&e, 2ull * n), 0);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_int_eq(spill_extents_alloc(&e, 2, 1, &off), 0);
		ck_assert_uint_eq(off, 2ull * i);
	}
	ck_assert_uint_eq(spill_extents_count(&e), 0);
	ck_assert_uint_eq(e.free_bytes, 0);
	for (unsigned i = 0; i < n; i += 2)	/* every other block: n/2 separate extents */
		ck_assert_int_eq(spill_extents_free(&e, 2ull * i, 2), 0);
	ck_assert_uint_eq(spill_extents_count(&e), n / 2);
	for (unsigned i = 1; i < n; i += 2)	/* the rest: all merge into one */
		ck_assert_int_eq(spill_extents_free(&e, 2ull * i, 2), 0);
	ck_assert_uint_eq(spill_extents_count(&e), 1);
	ck_assert_uint_eq(e.free_bytes, 2ull * n);
}
END_TEST

START_TEST(test_huge_sizes)
{
	struct spill_extents e;
	uint64_t off;

	ck_assert_int_eq(spill_extents_init(&e, (uint64_t)1 << 40), 0);
	ck_assert_int_eq(spill_extents_alloc(&e, UINT64_MAX, 1, &off), -1);
	ck_assert_int_eq(spill_extents_alloc(&e, UINT64_MAX - 100, 4096, &off), -1);	/* len + pad wraps */
	ck_assert_int_eq(spill_extents_alloc(&e, (uint64_t)1 << 40, 1, &off), 0);
	ck_assert_uint_eq(off, 0);
	ck_assert_uint_eq(e.free_bytes, 0);
	ck_assert_int_eq(spill_extents_free(&e, 0, (uint64_t)1 << 40), 0);
	ck_assert_int_eq(spill_extents_free(&e, 0, 0), 0);	/* empty: a no-op */
	ck_assert_uint_eq(e.free_bytes, (uint64_t)1 << 40);
}
END_TEST

Suite *extent_suite(void)
{
	Suite *s = suite_create("extent");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_basic);
	tcase_add_test(core, test_take);
	tcase_add_test(core, test_alignment);
	tcase_add_test(core, test_aligned_exact_hole_reused);
	tcase_add_loop_test(core, test_random_unaligned, 0, 8);
	tcase_add_loop_test(core, test_random_aligned, 0, 8);
	tcase_set_timeout(core, 60);
	suite_add_tcase(s, core);
	tcase_add_test(limits, test_pool_growth);
	tcase_add_test(limits, test_huge_sizes);
	tcase_set_timeout(limits, 60);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(extent_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
