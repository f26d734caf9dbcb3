/* SPDX-License-Identifier: MIT */
/* check_region.c - the registry hash (insert, find, backward-shift remove) against a model. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spill.h"

/* ck_assert_* records a checkpoint with file I/O on every call: too slow for inner loops. */
#define CHECK(cond, ...)                          \
	do {                                      \
		if (!(cond))                      \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static struct spill_block blk(uint64_t off)
{
	return (struct spill_block){ .off = off, .len = 4096 + (off & 0xff000), .cap = 8192 + (off & 0xff000),
				     .size = (off >> 12) + 1 };
}

static void check_found(uint64_t off)
{
	struct spill_block want = blk(off), *b = spill_region_find(off);
	ck_assert_msg(b != NULL, "offset %llu not found", (unsigned long long)off);
	ck_assert_msg(b->off == want.off && b->len == want.len && b->cap == want.cap && b->size == want.size,
		      "offset %llu: fields differ", (unsigned long long)off);
}

/*
 * The home slot of OFF in the 1024-slot table, measured rather than recomputed: alone in
 * an empty table a block sits in its home slot, and the iterator's cursor tells which.
 */
static size_t home_of(uint64_t off)
{
	struct spill_block b = { .off = off, .len = 1, .cap = 1, .size = 1 }, out;
	size_t cursor = 0;

	CHECK(spill_region_count() == 0, "table not empty");
	CHECK(spill_region_insert(&b) == 0, "insert");
	CHECK(spill_region_next(&cursor), "iterator lost the block");
	CHECK(spill_region_remove(off, &out) == 0, "remove");
	return cursor - 1;
}

/* WANT page-aligned offsets whose home is SLOT (a cluster forms there when all are inserted). */
static unsigned same_home(size_t slot, uint64_t *out, unsigned want)
{
	unsigned n = 0;

	spill_region_reset();
	for (uint64_t k = 1; n < want && k < 200000; k++)
		if (home_of(k << 12) == slot)
			out[n++] = k << 12;
	return n;
}

START_TEST(test_basic)
{
	struct spill_block b = blk(4096), out;

	spill_region_reset();
	ck_assert_uint_eq(spill_region_count(), 0);
	ck_assert_ptr_null(spill_region_find(4096));
	ck_assert_int_eq(spill_region_remove(4096, &out), -1);
	ck_assert_int_eq(spill_region_insert(&b), 0);
	ck_assert_uint_eq(spill_region_count(), 1);
	check_found(4096);
	ck_assert_ptr_null(spill_region_find(8192));
	ck_assert_ptr_null(spill_region_find(0));
	/* A block found can be updated in place. */
	spill_region_find(4096)->size = 99;
	ck_assert_uint_eq(spill_region_find(4096)->size, 99);
	ck_assert_int_eq(spill_region_remove(4096, &out), 0);
	ck_assert_uint_eq(out.size, 99);
	ck_assert_uint_eq(out.off, 4096);
	ck_assert_uint_eq(spill_region_count(), 0);
	ck_assert_ptr_null(spill_region_find(4096));
	ck_assert_int_eq(spill_region_remove(4096, &out), -1);
	/* Offset 0 is a valid key: the first block of the file. */
	b = blk(0);
	ck_assert_int_eq(spill_region_insert(&b), 0);
	check_found(0);
}
END_TEST

/* Removing the head of a collision chain must shift the rest back, or they become unreachable. */
START_TEST(test_backward_shift)
{
	uint64_t k[6], other[2];
	struct spill_block out;

	spill_region_reset();
	ck_assert_uint_eq(same_home(100, k, 6), 6);
	ck_assert_uint_eq(same_home(101, other, 2), 2);
	for (int i = 0; i < 4; i++) {
		struct spill_block b = blk(k[i]);
		ck_assert_int_eq(spill_region_insert(&b), 0);
	}
	/* these live in slots 104, 105: home 101, displaced by the home-100 cluster */
	for (int i = 0; i < 2; i++) {
		struct spill_block b = blk(other[i]);
		ck_assert_int_eq(spill_region_insert(&b), 0);
	}
	ck_assert_int_eq(spill_region_remove(k[0], &out), 0);
	for (int i = 1; i < 4; i++)
		check_found(k[i]);
	check_found(other[0]);
	check_found(other[1]);
	ck_assert_int_eq(spill_region_remove(k[2], &out), 0);
	check_found(k[1]);
	check_found(k[3]);
	check_found(other[0]);
	check_found(other[1]);
	ck_assert_int_eq(spill_region_remove(other[0], &out), 0);
	check_found(other[1]);
	ck_assert_int_eq(spill_region_remove(k[1], &out), 0);
	ck_assert_int_eq(spill_region_remove(k[3], &out), 0);
	check_found(other[1]);
	ck_assert_uint_eq(spill_region_count(), 1);
	ck_assert_ptr_null(spill_region_find(k[0]));
	ck_assert_ptr_null(spill_region_find(k[2]));
}
END_TEST

/* A cluster that starts in the last slot continues at slot 0; removal must follow it round. */
START_TEST(test_wraparound)
{
	uint64_t last[4], first[2];
	struct spill_block out;

	spill_region_reset();
	ck_assert_uint_eq(same_home(1023, last, 4), 4);
	ck_assert_uint_eq(same_home(0, first, 2), 2);
	for (int i = 0; i < 4; i++) {
		struct spill_block b = blk(last[i]);
		ck_assert_int_eq(spill_region_insert(&b), 0);
	}
	for (int i = 0; i < 2; i++) {
		struct spill_block b = blk(first[i]);
		ck_assert_int_eq(spill_region_insert(&b), 0);
	}
	ck_assert_int_eq(spill_region_remove(last[0], &out), 0);
	for (int i = 1; i < 4; i++)
		check_found(last[i]);
	check_found(first[0]);
	check_found(first[1]);
	ck_assert_int_eq(spill_region_remove(last[1], &out), 0);
	ck_assert_int_eq(spill_region_remove(first[0], &out), 0);
	check_found(last[2]);
	check_found(last[3]);
	check_found(first[1]);
	ck_assert_uint_eq(spill_region_count(), 3);
}
END_TEST

static uint64_t seed;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* Many inserts and removes, with keys drawn from a small space so clusters form; model = bitmap. */
START_TEST(test_random_model)
{
	enum { KEYS = 4096 };
	static unsigned char present[KEYS];
	uint64_t seed0 = 0x5eedull + (uint64_t)_i * 6007;
	size_t n = 0;

	seed = seed0;
	memset(present, 0, sizeof present);
	spill_region_reset();
	for (unsigned step = 0; step < 40000; step++) {
		unsigned k = (unsigned)(rnd() % KEYS);
		uint64_t off = (uint64_t)k << 12;
		struct spill_block b = blk(off), out;
		if (!present[k] && rnd() % 3) {
			CHECK(spill_region_insert(&b) == 0, "insert failed");
			present[k] = 1;
			n++;
		} else {
			int rc = spill_region_remove(off, &out);
			CHECK(rc == (present[k] ? 0 : -1), "seed %llu step %u: remove(%u) = %d, model %d",
				      (unsigned long long)seed0, step, k, rc, present[k]);
			if (!rc) {
				CHECK(out.size == b.size && out.off == off, "seed %llu step %u: wrong block",
					      (unsigned long long)seed0, step);
				present[k] = 0;
				n--;
			}
		}
		CHECK(spill_region_count() == n, "seed %llu step %u: count %zu, model %zu", (unsigned long long)seed0,
		      step, spill_region_count(), n);
		if (step % 1000 == 0 || step > 39000) {
			for (unsigned j = 0; j < KEYS; j++) {
				struct spill_block *f = spill_region_find((uint64_t)j << 12);
				CHECK((f != NULL) == present[j], "seed %llu step %u: key %u found=%d, model %d",
					      (unsigned long long)seed0, step, j, f != NULL, present[j]);
				CHECK(!f || f->size == blk((uint64_t)j << 12).size, "key %u: wrong block", j);
			}
		}
	}
}
END_TEST

/* The iterator visits every live block exactly once; containing() finds by interior offset. */
START_TEST(test_iterate_and_containing)
{
	static unsigned char seen[1000];
	size_t cursor = 0, visited = 0;
	struct spill_block *b;

	spill_region_reset();
	cursor = 0;
	ck_assert_ptr_null(spill_region_next(&cursor));
	for (uint64_t i = 0; i < 1000; i++) {
		struct spill_block nb = { .off = i << 20, .len = 4096, .cap = 65536, .size = i + 1 };
		ck_assert_int_eq(spill_region_insert(&nb), 0);
	}
	cursor = 0;
	while ((b = spill_region_next(&cursor))) {
		ck_assert_uint_eq(b->off & ((1 << 20) - 1), 0);
		ck_assert_uint_eq(seen[b->off >> 20], 0);
		seen[b->off >> 20] = 1;
		visited++;
	}
	ck_assert_uint_eq(visited, 1000);
	b = spill_region_containing((5ull << 20) + 65535);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->off, 5ull << 20);
	b = spill_region_containing((5ull << 20) + 100);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->size, 6);
	ck_assert_ptr_null(spill_region_containing((5ull << 20) + 65536));	/* past the cap */
	ck_assert_ptr_null(spill_region_containing(1000ull << 20));
}
END_TEST

/* Growth: the table rehashes many times; every key survives, and removals after growth work. */
START_TEST(test_growth)
{
	const uint64_t n = 100000;
	struct spill_block out;

	spill_region_reset();
	for (uint64_t i = 0; i < n; i++) {
		struct spill_block b = blk(i << 12);
		CHECK(spill_region_insert(&b) == 0, "insert %llu", (unsigned long long)i);
	}
	ck_assert_uint_eq(spill_region_count(), n);
	for (uint64_t i = 0; i < n; i++)
		CHECK(spill_region_find(i << 12), "key %llu lost", (unsigned long long)i);
	for (uint64_t i = 0; i < n; i += 2)
		CHECK(spill_region_remove(i << 12, &out) == 0, "remove %llu", (unsigned long long)i);
	for (uint64_t i = 0; i < n; i++)
		CHECK((spill_region_find(i << 12) != NULL) == (i & 1), "key %llu", (unsigned long long)i);
	ck_assert_uint_eq(spill_region_count(), n / 2);
	spill_region_reset();
	ck_assert_uint_eq(spill_region_count(), 0);
	ck_assert_ptr_null(spill_region_find(1 << 12));
}
END_TEST

/* Large and unaligned offsets hash as well as small ones. */
START_TEST(test_extreme_keys)
{
	uint64_t keys[] = { 0, 1, 4095, (uint64_t)1 << 40, ((uint64_t)1 << 40) - 4096, UINT64_MAX - 4095,
			    UINT64_MAX, 0x8000000000000000ull };
	struct spill_block out;

	spill_region_reset();
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
		struct spill_block b = { .off = keys[i], .len = 1, .cap = 1, .size = i };
		ck_assert_int_eq(spill_region_insert(&b), 0);
	}
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
		struct spill_block *b = spill_region_find(keys[i]);
		ck_assert_ptr_nonnull(b);
		ck_assert_uint_eq(b->size, i);
	}
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++) {
		ck_assert_int_eq(spill_region_remove(keys[i], &out), 0);
		ck_assert_uint_eq(out.size, i);
	}
	ck_assert_uint_eq(spill_region_count(), 0);
}
END_TEST

/* Longest run of occupied slots, read off the iterator's cursor (slot index + 1 after each block). */
static size_t longest_cluster(void)
{
	size_t cursor = 0, prev = (size_t)-2, run = 0, best = 0;

	while (spill_region_next(&cursor)) {
		run = cursor - 1 == prev + 1 ? run + 1 : 1;
		prev = cursor - 1;
		best = run > best ? run : best;
	}
	return best;
}

/*
 * Blocks of one round size sit at offsets that are multiples of a large power of two
 * (1000 blocks of 1 GiB fill a 1 TiB reservation; 64 MiB is the default threshold). The
 * hash must spread them: at load <= 1/2, linear probing keeps clusters short.
 */
START_TEST(test_hash_spreads_aligned_offsets)
{
	static const unsigned shifts[] = { 12, 21, 26, 30, 32 };

	for (unsigned s = 0; s < sizeof shifts / sizeof *shifts; s++) {
		spill_region_reset();
		for (uint64_t i = 0; i < 1000; i++) {
			struct spill_block b = { .off = i << shifts[s], .len = 1, .cap = 1, .size = 1 };
			CHECK(spill_region_insert(&b) == 0, "insert");
		}
		size_t c = longest_cluster();
		ck_assert_msg(c < 100, "1000 blocks %llu bytes apart: a run of %zu occupied slots (hash ignores high bits)",
			      1ull << shifts[s], c);
		for (uint64_t i = 0; i < 1000; i++)
			CHECK(spill_region_find(i << shifts[s]), "lost %llu", (unsigned long long)i);
	}
}
END_TEST

static unsigned long lock_counter;

static void *lock_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200000; i++) {
		spill_lock();
		unsigned long v = lock_counter;	/* a lost update shows if the lock does not exclude */
		__asm__ volatile("" ::: "memory");
		lock_counter = v + 1;
		spill_unlock();
	}
	return NULL;
}

START_TEST(test_lock)
{
	pthread_t t[4];
	lock_counter = 0;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, lock_worker, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(lock_counter, 4 * 200000ul);
}
END_TEST

Suite *region_suite(void)
{
	Suite *s = suite_create("region");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_basic);
	tcase_add_test(core, test_backward_shift);
	tcase_add_test(core, test_wraparound);
	tcase_add_loop_test(core, test_random_model, 0, 4);
	tcase_add_test(core, test_iterate_and_containing);
	tcase_add_test(core, test_lock);
	tcase_set_timeout(core, 60);
	suite_add_tcase(s, core);
	tcase_add_test(limits, test_growth);
	tcase_add_test(limits, test_extreme_keys);
	tcase_add_test(limits, test_hash_spreads_aligned_offsets);
	tcase_set_timeout(limits, 60);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(region_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
