/* SPDX-License-Identifier: MIT */
/*
 * random_ops.c - differential random-operation test: long reproducible sequences of malloc,
 * calloc, realloc, reallocarray, memalign, aligned_alloc, posix_memalign and free with sizes
 * below, at and above SPILL_THRESHOLD, moving blocks across it both ways. Every block holds a
 * pattern derived from its id, checked after each realloc and before each free; the model
 * (what each block must hold) is kept apart from the allocator under test.
 * Seeds: argv[1..] or RANDOM_OPS_SEEDS="1 2 3" (random_ops.env); the seed is printed on failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 48
#define STRIDE 61	/* sampled positions: every 61st byte, plus both ends */

struct slot {
	unsigned char *p;
	size_t size;
	uint32_t id;
};

static uint64_t rng;
static size_t threshold;
static unsigned long long seed, op;
static const char *what;
static int failed;
static size_t n_big, n_cross_up, n_cross_down, n_calls;

static uint64_t next(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static unsigned char pat(uint32_t id, size_t i)
{
	return (unsigned char)(id * 131u + i * 7u + (i >> 12) * 3u + 1u);
}

static void fail(const char *why, const struct slot *s, size_t at)
{
	printf("FAIL seed=%llu op=%llu (%s): %s; block id=%u size=%zu p=%p at byte %zu\n"
	       "  reproduce: random_ops %llu\n", seed, op, what, why, s->id, s->size, (void *)s->p, at, seed);
	failed = 1;
}

/* Positions that are written and checked: all bytes of small blocks, a sample of big ones. */
#define FOR_POSITIONS(i, size) \
	for (size_t i = 0, step_ = (size) <= 65536 ? 1 : STRIDE; i < (size); \
	     i = (i < 64 || i + 64 >= (size)) ? i + 1 : (i + step_ + 64 >= (size) ? (size) - 64 : i + step_))

static void write_pattern(struct slot *s, size_t from)
{
	FOR_POSITIONS(i, s->size)
		if (i >= from)
			s->p[i] = pat(s->id, i);
}


/* Checks the positions written for the block's current size that lie below UPTO. */
static int check_pattern(const struct slot *s, size_t upto)
{
	FOR_POSITIONS(i, s->size)
		if (i < upto && s->p[i] != pat(s->id, i)) {
			fail("content lost", s, i);
			return -1;
		}
	return 0;
}

static int check_zero(const struct slot *s)
{
	FOR_POSITIONS(i, s->size)
		if (s->p[i]) {
			fail("calloc memory is not zero", s, i);
			return -1;
		}
	return 0;
}

/* Sizes on both sides of the threshold, exactly at it, and well above. */
static size_t pick_size(void)
{
	switch (next() % 8) {
	case 0: return next() % 64;
	case 1: return next() % 4096;
	case 2: return next() % (threshold / 2) + 1;
	case 3: return threshold - 1 - next() % 64;
	case 4: return threshold + next() % 64;
	case 5: return threshold + next() % threshold;
	case 6: return threshold / 2 + next() % threshold;	/* straddles it */
	default: return threshold * 2 + next() % (threshold * 2);
	}
}

static void note_size(size_t old, size_t size)
{
	n_big += size >= threshold;
	n_cross_up += old < threshold && size >= threshold;
	n_cross_down += old >= threshold && size < threshold;
}

static int run(unsigned long long s, unsigned long long ops)
{
	struct slot slots[SLOTS] = { 0 };
	uint32_t ids = 0;

	seed = s;
	rng = s * 0x2545f4914f6cdd1du + 1;
	failed = 0;
	for (op = 0; op < ops && !failed; op++) {
		struct slot *sl = &slots[next() % SLOTS];
		unsigned kind = (unsigned)(next() % 10);
		size_t size = pick_size(), align = (size_t)1 << (3 + next() % 14);	/* 8 .. 64K */
		void *q = NULL;

		n_calls++;
		if (sl->p && kind < 4) {	/* realloc / reallocarray of a live block */
			size_t keep = sl->size < size ? sl->size : size;
			if (kind == 3 && size % 8 == 0) {
				what = "reallocarray";
				q = reallocarray(sl->p, size / 8, 8);
			} else {
				what = "realloc";
				q = realloc(sl->p, size);
			}
			if (!q && size) {
				fail("realloc returned NULL", sl, 0);
				break;
			}
			note_size(sl->size, size);
			if (!size) {	/* glibc: realloc(p, 0) frees p */
				sl->p = NULL;
				continue;
			}
			sl->p = q;
			if (check_pattern(sl, keep))
				break;
			sl->size = size;
			write_pattern(sl, 0);	/* the sampled positions depend on the size */
			continue;
		}
		if (sl->p) {	/* free */
			what = "free";
			if (check_pattern(sl, sl->size))
				break;
			free(sl->p);
			sl->p = NULL;
			continue;
		}
		switch (kind % 6) {
		case 0: case 1:
			what = "malloc"; q = malloc(size); break;
		case 2:
			what = "calloc";
			q = size >= 16 ? calloc(size / 16, 16) : calloc(size, 1);
			size = size >= 16 ? size / 16 * 16 : size;
			break;
		case 3:
			what = "memalign"; q = memalign(align, size); break;
		case 4:
			what = "aligned_alloc"; size = (size + align - 1) & ~(align - 1);
			q = aligned_alloc(align, size); break;
		default:
			what = "posix_memalign";
			if (posix_memalign(&q, align, size))
				q = NULL;
			break;
		}
		sl->p = q;
		sl->size = size;
		sl->id = ++ids;
		if (!q) {
			fail("allocation returned NULL", sl, 0);
			break;
		}
		if (kind % 6 >= 3 && (uintptr_t)q % align) {
			fail("misaligned", sl, align);
			break;
		}
		if (malloc_usable_size(q) < size) {
			fail("malloc_usable_size smaller than the request", sl, malloc_usable_size(q));
			break;
		}
		if (kind % 6 == 2 && check_zero(sl))
			break;
		note_size(0, size);
		write_pattern(sl, 0);
	}
	for (int i = 0; i < SLOTS; i++) {
		if (slots[i].p && !failed) {
			what = "final check";
			check_pattern(&slots[i], slots[i].size);
		}
		free(slots[i].p);
	}
	return failed;
}

/* The threshold as libspill reads it (digits with an optional K/M suffix is enough here). */
static size_t env_threshold(void)
{
	const char *s = getenv("SPILL_THRESHOLD");
	char *end;
	size_t v = s ? strtoul(s, &end, 10) : 0;

	if (!s || !v)
		return 256 << 10;
	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	return v;
}

int main(int argc, char **argv)
{
	const char *env = getenv("RANDOM_OPS_SEEDS"), *o = getenv("RANDOM_OPS_OPS");
	unsigned long long ops = o ? strtoull(o, NULL, 0) : 20000;
	char buf[256], *tok, *save;
	int bad = 0, nseeds = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	threshold = env_threshold();
	if (argc > 1) {
		for (int i = 1; i < argc; i++, nseeds++)
			bad |= run(strtoull(argv[i], NULL, 0), ops);
	} else {
		snprintf(buf, sizeof buf, "%s", env ? env : "1 2 3");
		for (tok = strtok_r(buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save), nseeds++)
			bad |= run(strtoull(tok, NULL, 0), ops);
	}
	printf("random_ops: %d seed(s) x %llu ops, threshold %zu: %zu calls, %zu big, %zu crossed up, "
	       "%zu crossed down\n", nseeds, ops, threshold, n_calls, n_big, n_cross_up, n_cross_down);
	if (!bad && (!n_cross_up || !n_cross_down || !n_big)) {
		puts("FAIL: the sequences never crossed the threshold both ways");
		bad = 1;
	}
	puts(bad ? "FAILED" : "ok");
	return bad;
}
