/* SPDX-License-Identifier: MIT */
/* threads.c - 4 threads x thousands of malloc/calloc/realloc/free of 16 B .. 4 MiB across a 256K threshold. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maps.h"

/*
 * Each thread keeps SLOTS live blocks. A block is filled with a pattern derived from its
 * own id; before it is freed or resized its checksum is verified, so a block handed to two
 * owners, moved without its content, or overwritten by a neighbour is caught.
 * THREADS_SEED=N reproduces a run; the seed is printed first.
 */
#define THREADS 4
#define OPS 1500		/* per thread; THREADS_OPS=N overrides (each spilled free costs ms on ext4 -o discard) */
#define SLOTS 48
#define MAX_SIZE ((size_t)4 << 20)

struct block {
	unsigned char *p;
	size_t size;
	uint64_t id;
};

struct worker {
	pthread_t tid;
	int index;
	uint64_t rng;
	unsigned long ops, spilled, bad, reallocs, callocs;
	uintptr_t lo, hi;
};

static uint64_t seed;
static unsigned long ops_per_thread = OPS;

static uint64_t next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* Sizes spread over 16 B .. 4 MiB on a log scale, so both sides of 256K are frequent. */
static size_t pick_size(uint64_t *s)
{
	unsigned shift = 4 + (unsigned)(next(s) % 19);		/* 16 .. 4M */
	size_t n = ((size_t)1 << shift) + next(s) % ((size_t)1 << shift);
	return n > MAX_SIZE ? MAX_SIZE : n;
}

static unsigned char byte_at(uint64_t id, size_t i)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull + i / 8;
	return (unsigned char)((x ^ (x >> 29)) >> (i % 8 * 8));
}

/* Writes the pattern over [from, to): every byte for small blocks, one per 64 bytes + the ends for big ones. */
static size_t step(size_t size)
{
	return size > 65536 ? 61 : 1;
}

static void fill(struct block *b, size_t from)
{
	for (size_t i = from; i < b->size; i += step(b->size))
		b->p[i] = byte_at(b->id, i);
	if (b->size)
		b->p[b->size - 1] = byte_at(b->id, b->size - 1);
}

/* The number of wrong bytes among those fill() wrote into block B, looking at P[0, UPTO) only. */
static size_t verify_at(const unsigned char *p, const struct block *b, size_t upto)
{
	size_t bad = 0;
	for (size_t i = 0; i < upto; i += step(b->size))
		bad += p[i] != byte_at(b->id, i);
	if (b->size && b->size <= upto)
		bad += p[b->size - 1] != byte_at(b->id, b->size - 1);
	return bad;
}

static size_t verify(const struct block *b, size_t upto)
{
	return verify_at(b->p, b, upto);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct block slot[SLOTS];
	uint64_t ids = (uint64_t)w->index << 48;

	memset(slot, 0, sizeof slot);
	for (unsigned long op = 0; op < ops_per_thread; op++) {
		struct block *b = &slot[next(&w->rng) % SLOTS];
		unsigned kind = next(&w->rng) % 8;

		if (b->p && kind < 3) {				/* free */
			if (verify(b, b->size)) {
				w->bad++;
				printf("thread %d: block id %llx size %zu corrupt before free\n", w->index,
				       (unsigned long long)b->id, b->size);
			}
			free(b->p);
			b->p = NULL;
		} else if (b->p && kind < 6) {			/* realloc, keeping content */
			size_t size = pick_size(&w->rng), keep = size < b->size ? size : b->size;
			unsigned char *q = realloc(b->p, size);
			if (!q) {
				w->bad++;
				printf("thread %d: realloc(%zu -> %zu) failed\n", w->index, b->size, size);
				continue;
			}
			if (verify_at(q, b, keep)) {
				w->bad++;
				printf("thread %d: realloc(%zu -> %zu) lost content\n", w->index, b->size, size);
			}
			b->p = q;
			b->size = size;
			b->id = ++ids;				/* a fresh pattern over the whole block */
			fill(b, 0);
			w->reallocs++;
		} else {
			if (b->p)
				free(b->p);
			b->size = pick_size(&w->rng);
			b->id = ++ids;
			if (kind == 7) {
				size_t n = b->size / 16 + 1;
				b->size = n * 16;
				b->p = calloc(n, 16);
				if (b->p) {
					size_t nz = 0;
					for (size_t i = 0; i < b->size; i += step(b->size))
						nz += b->p[i] != 0;
					if (nz) {
						w->bad++;
						printf("thread %d: calloc(%zu, 16) not zero\n", w->index, n);
					}
				}
				w->callocs++;
			} else {
				b->p = malloc(b->size);
			}
			if (!b->p) {
				w->bad++;
				printf("thread %d: allocation of %zu failed\n", w->index, b->size);
				continue;
			}
			if (malloc_usable_size(b->p) < b->size) {
				w->bad++;
				printf("thread %d: usable size %zu < %zu\n", w->index, malloc_usable_size(b->p), b->size);
			}
			w->spilled += (uintptr_t)b->p >= w->lo && (uintptr_t)b->p < w->hi;
			fill(b, 0);
		}
		w->ops++;
	}
	for (int i = 0; i < SLOTS; i++)
		if (slot[i].p) {
			if (verify(&slot[i], slot[i].size))
				w->bad++;
			free(slot[i].p);
		}
	return NULL;
}

int main(void)
{
	struct worker w[THREADS];
	const char *s = getenv("THREADS_SEED");
	unsigned long bad = 0, ops = 0, spilled = 0, reallocs = 0, callocs = 0;
	uintptr_t lo = 0, hi = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("THREADS_OPS"))
		ops_per_thread = strtoul(getenv("THREADS_OPS"), NULL, 0);
	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
	printf("threads: seed %llu (rerun with THREADS_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	/* Make the spill file exist so the workers can tell where spilled blocks live. */
	void *volatile first = malloc(MAX_SIZE);	/* volatile: the compiler may not elide the pair */
	free(first);
	if (spill_maps(&lo, &hi) != 1) {
		printf("FAIL: no single spill mapping after a 4 MiB malloc\n");
		return 1;
	}
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .index = i, .rng = seed * (2 * i + 1) + 0x1234567 * (i + 1), .lo = lo, .hi = hi };
		if (!w[i].rng)
			w[i].rng = 1;
		if (pthread_create(&w[i].tid, NULL, work, &w[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].tid, NULL);
		printf("thread %d: %lu ops, %lu spilled allocations, %lu reallocs, %lu callocs, %lu errors\n", i,
		       w[i].ops, w[i].spilled, w[i].reallocs, w[i].callocs, w[i].bad);
		bad += w[i].bad;
		ops += w[i].ops;
		spilled += w[i].spilled;
		reallocs += w[i].reallocs;
		callocs += w[i].callocs;
	}
	int maps = spill_maps(NULL, NULL);
	if (maps != 1) {
		printf("FAIL: %d spill mappings at the end, want 1\n", maps);
		bad++;
	}
	if (spilled == 0) {
		printf("FAIL: nothing was spilled\n");
		bad++;
	}
	printf("threads: %lu ops (%lu spilled allocations, %lu reallocs, %lu callocs), %lu errors\n", ops,
	       spilled, reallocs, callocs, bad);
	return bad ? 1 : 0;
}
