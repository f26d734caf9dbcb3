/* SPDX-License-Identifier: MIT */
/* region.c - the registry of live spilled blocks and the lock that guards the spill state. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "spill.h"

/*
 * An open-addressing hash table keyed by file offset (a block's identity: address minus
 * base). free() finds a block in O(1) without reading memory in front of the pointer;
 * an empty slot has cap == 0. Deletion shifts later entries back, so there are no
 * tombstones and lookups stay short after churn.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct spill_block *table;
static size_t slots, live;

void spill_lock(void)
{
	pthread_mutex_lock(&lock);
}

void spill_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

/* For callers that may run inside a signal handler (wait*()): 0 when the lock was taken. */
int spill_trylock(void)
{
	return pthread_mutex_trylock(&lock);
}

static size_t slot_of(uint64_t off, size_t n)
{
	uint64_t h = off * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> (64 - __builtin_ctzll(n)));
}

static void put(struct spill_block *t, size_t n, const struct spill_block *b)
{
	size_t i = slot_of(b->off, n);
	while (t[i].cap)
		i = (i + 1) & (n - 1);
	t[i] = *b;
}

static int grow(void)
{
	size_t n = slots ? slots * 2 : 1024;
	struct spill_block *t = mmap(NULL, n * sizeof *t, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < slots; i++)
		if (table[i].cap)
			put(t, n, &table[i]);
	if (table)
		munmap(table, slots * sizeof *table);
	table = t;
	slots = n;
	return 0;
}

int spill_region_insert(const struct spill_block *b)
{
	if ((live + 1) * 2 > slots && grow())
		return -1;
	put(table, slots, b);
	live++;
	return 0;
}

struct spill_block *spill_region_find(uint64_t off)
{
	if (!slots)
		return NULL;
	for (size_t i = slot_of(off, slots); table[i].cap; i = (i + 1) & (slots - 1))
		if (table[i].off == off)
			return &table[i];
	return NULL;
}

int spill_region_remove(uint64_t off, struct spill_block *out)
{
	struct spill_block *b = spill_region_find(off);
	size_t i, j;

	if (!b)
		return -1;
	*out = *b;
	i = (size_t)(b - table);
	/* Backward-shift: move up every later entry whose home slot is at or before the hole. */
	for (j = (i + 1) & (slots - 1); table[j].cap; j = (j + 1) & (slots - 1)) {
		size_t home = slot_of(table[j].off, slots);
		if (((j - home) & (slots - 1)) >= ((j - i) & (slots - 1))) {
			table[i] = table[j];
			i = j;
		}
	}
	table[i].cap = 0;
	live--;
	return 0;
}

size_t spill_region_count(void)
{
	return live;
}

/* Iterates live blocks: start with *cursor = 0; NULL at the end. */
struct spill_block *spill_region_next(size_t *cursor)
{
	while (*cursor < slots) {
		struct spill_block *b = &table[(*cursor)++];
		if (b->cap)
			return b;
	}
	return NULL;
}

/* Only for error messages: which live block, if any, contains OFF. */
struct spill_block *spill_region_containing(uint64_t off)
{
	size_t c = 0;
	struct spill_block *b;
	while ((b = spill_region_next(&c)))
		if (off >= b->off && off < b->off + b->cap)
			return b;
	return NULL;
}

void spill_region_reset(void)
{
	if (table)
		munmap(table, slots * sizeof *table);
	table = NULL;
	slots = live = 0;
}
