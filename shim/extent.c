/* SPDX-License-Identifier: MIT */
/* extent.c - free space of the reservation: an address-ordered treap of free extents. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "spill.h"

/*
 * Each node is a free extent. The treap is ordered by offset and every node knows the
 * largest extent in its subtree, so first-fit (the lowest offset that fits) is one
 * descent: low offsets are reused first, which keeps the file and the page tables compact.
 * Callers hold the spill lock; nodes live in an mmap'd pool addressed by index, so the
 * pool can move when it grows.
 */
struct spill_ext_node {
	uint64_t off, len, maxlen;
	uint32_t left, right, prio, pad;
};

#define NIL 0u
#define N(e, i) ((e)->pool[i])

static uint32_t rnd(struct spill_extents *e)
{
	e->seed ^= e->seed << 13;
	e->seed ^= e->seed >> 7;
	e->seed ^= e->seed << 17;
	return (uint32_t)(e->seed >> 16);
}

static uint64_t maxlen(struct spill_extents *e, uint32_t i)
{
	return i ? N(e, i).maxlen : 0;
}

static void update(struct spill_extents *e, uint32_t i)
{
	uint64_t m = N(e, i).len, l = maxlen(e, N(e, i).left), r = maxlen(e, N(e, i).right);
	N(e, i).maxlen = m > l ? (m > r ? m : r) : (l > r ? l : r);
}

static int grow_pool(struct spill_extents *e)
{
	uint32_t cap = e->cap ? e->cap * 2 : 1024;
	size_t old = (size_t)e->cap * sizeof *e->pool, new = (size_t)cap * sizeof *e->pool;
	void *p;

	if (cap < e->cap)
		return -1;
	if (e->pool)
		p = mremap(e->pool, old, new, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, new, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	e->pool = p;
	e->cap = cap;
	return 0;
}

static uint32_t node_new(struct spill_extents *e, uint64_t off, uint64_t len)
{
	uint32_t i;

	if (e->free_head) {
		i = e->free_head;
		e->free_head = N(e, i).left;
	} else {
		if (e->used + 1 >= e->cap && grow_pool(e))
			return NIL;
		i = ++e->used;	/* index 0 is NIL */
	}
	N(e, i) = (struct spill_ext_node){ .off = off, .len = len, .maxlen = len, .prio = rnd(e) };
	return i;
}

static void node_del(struct spill_extents *e, uint32_t i)
{
	N(e, i).left = e->free_head;
	e->free_head = i;
}

/* Splits T into offsets < KEY (*l) and >= KEY (*r). */
static void split(struct spill_extents *e, uint32_t t, uint64_t key, uint32_t *l, uint32_t *r)
{
	if (!t) {
		*l = *r = NIL;
	} else if (N(e, t).off < key) {
		split(e, N(e, t).right, key, &N(e, t).right, r);
		*l = t;
		update(e, t);
	} else {
		split(e, N(e, t).left, key, l, &N(e, t).left);
		*r = t;
		update(e, t);
	}
}

static uint32_t merge(struct spill_extents *e, uint32_t l, uint32_t r)
{
	if (!l || !r)
		return l ? l : r;
	if (N(e, l).prio > N(e, r).prio) {
		N(e, l).right = merge(e, N(e, l).right, r);
		update(e, l);
		return l;
	}
	N(e, r).left = merge(e, l, N(e, r).left);
	update(e, r);
	return r;
}

static void insert_node(struct spill_extents *e, uint32_t n)
{
	uint32_t l, r;
	split(e, e->root, N(e, n).off, &l, &r);
	e->root = merge(e, merge(e, l, n), r);
}

/* Unlinks the node whose offset is exactly OFF and returns it (NIL if none). */
static uint32_t unlink_at(struct spill_extents *e, uint64_t off)
{
	uint32_t l, m, r;
	split(e, e->root, off, &l, &r);
	split(e, r, off + 1, &m, &r);
	e->root = merge(e, l, r);
	return m;
}

/* The free extent with the largest offset <= OFF, or NIL. */
static uint32_t floor_node(struct spill_extents *e, uint64_t off)
{
	uint32_t t = e->root, best = NIL;
	while (t) {
		if (N(e, t).off <= off) {
			best = t;
			t = N(e, t).right;
		} else {
			t = N(e, t).left;
		}
	}
	return best;
}

static uint32_t ceil_node(struct spill_extents *e, uint64_t off)
{
	uint32_t t = e->root, best = NIL;
	while (t) {
		if (N(e, t).off >= off) {
			best = t;
			t = N(e, t).left;
		} else {
			t = N(e, t).right;
		}
	}
	return best;
}

int spill_extents_init(struct spill_extents *e, uint64_t total)
{
	memset(e, 0, sizeof *e);
	e->seed = 0x9e3779b97f4a7c15ull;
	return spill_extents_free(e, 0, total);
}

/* Takes [off, off+len) out of the free extent N that contains it. */
static int carve(struct spill_extents *e, uint32_t n, uint64_t off, uint64_t len)
{
	uint64_t noff = N(e, n).off, nend = noff + N(e, n).len;
	uint32_t tail = NIL;

	if (off + len < nend && !(tail = node_new(e, off + len, nend - off - len)))
		return -1;
	n = unlink_at(e, noff);
	if (off > noff) {
		N(e, n).len = off - noff;
		N(e, n).left = N(e, n).right = NIL;
		update(e, n);
		insert_node(e, n);
	} else {
		node_del(e, n);
	}
	if (tail)
		insert_node(e, tail);
	e->free_bytes -= len;
	return 0;
}

/* The first offset at or after OFF whose address (base + offset) is a multiple of ALIGN. */
static uint64_t aligned(const struct spill_extents *e, uint64_t off, uint64_t align)
{
	if (align <= 1)
		return off;
	return ((e->base + off + align - 1) & ~(align - 1)) - e->base;
}

/* First fit of LEN bytes at a multiple of ALIGN (a power of two). */
int spill_extents_alloc(struct spill_extents *e, uint64_t len, uint64_t align, uint64_t *off)
{
	/* When every boundary is already a multiple of ALIGN, a fit needs no padding. */
	uint64_t pad = align > 1 && ((e->grain | e->base | len) & (align - 1)) ? align - 1 : 0;
	uint64_t need = len + pad;
	uint32_t t = e->root;

	if (need < len || maxlen(e, t) < len)
		return -1;
	while (t) {
		uint64_t start = aligned(e, N(e, t).off, align);
		if (maxlen(e, N(e, t).left) >= need)
			t = N(e, t).left;
		else if (start - N(e, t).off + len <= N(e, t).len) {
			*off = start;
			e->grain |= start | len;
			return carve(e, t, start, len);
		} else if (maxlen(e, N(e, t).right) >= need)
			t = N(e, t).right;
		else
			break;
	}
	/* Nothing fits even with worst-case alignment padding; try every extent that might. */
	for (uint32_t i = ceil_node(e, 0); i; i = ceil_node(e, N(e, i).off + 1)) {
		uint64_t start = aligned(e, N(e, i).off, align);
		if (start - N(e, i).off + len <= N(e, i).len) {
			*off = start;
			e->grain |= start | len;
			return carve(e, i, start, len);
		}
		if (align <= 1)
			break;
	}
	return -1;
}

/* Claims exactly [off, off+len) if it is all free (growth in place). */
int spill_extents_take(struct spill_extents *e, uint64_t off, uint64_t len)
{
	uint32_t n = floor_node(e, off);

	if (!n || off + len > N(e, n).off + N(e, n).len || off + len < off)
		return -1;
	e->grain |= off | len;
	return carve(e, n, off, len);
}

/* Returns [off, off+len) to the free space, merging with free neighbours. */
int spill_extents_free(struct spill_extents *e, uint64_t off, uint64_t len)
{
	uint32_t prev = floor_node(e, off), next = ceil_node(e, off);
	uint64_t start = off, end = off + len;

	if (!len)
		return 0;
	e->grain |= off | len;
	spill_assert(!prev || N(e, prev).off + N(e, prev).len <= off);
	spill_assert(!next || next == prev || end <= N(e, next).off);
	if (next && N(e, next).off == end) {
		end += N(e, next).len;
		node_del(e, unlink_at(e, N(e, next).off));
	}
	if (prev && N(e, prev).off + N(e, prev).len == start) {
		start = N(e, prev).off;
		prev = unlink_at(e, start);
		N(e, prev).len = end - start;
		N(e, prev).left = N(e, prev).right = NIL;
		update(e, prev);
		insert_node(e, prev);
	} else {
		uint32_t n = node_new(e, start, end - start);
		if (!n)
			return -1;
		insert_node(e, n);
	}
	e->free_bytes += len;
	return 0;
}

/* Removes the lowest free extent; -1 when there is none. */
int spill_extents_pop(struct spill_extents *e, uint64_t *off, uint64_t *len)
{
	uint32_t n = ceil_node(e, 0);

	if (!n)
		return -1;
	*off = N(e, n).off;
	*len = N(e, n).len;
	node_del(e, unlink_at(e, *off));
	e->free_bytes -= *len;
	return 0;
}

/* The free extent with the lowest offset >= FROM: iterates in address order. -1 at the end. */
int spill_extents_next(struct spill_extents *e, uint64_t from, uint64_t *off, uint64_t *len)
{
	uint32_t n = ceil_node(e, from);

	if (!n)
		return -1;
	*off = N(e, n).off;
	*len = N(e, n).len;
	return 0;
}

uint32_t spill_extents_count(const struct spill_extents *e)
{
	uint32_t n = 0;
	for (uint32_t i = e->free_head; i; i = e->pool[i].left)
		n++;
	return e->used - n;
}
