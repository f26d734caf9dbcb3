/* SPDX-License-Identifier: MIT */
/* realloc.c - resizing spilled blocks: in place when the file allows, else one kernel copy. */
#include <errno.h>
#include <string.h>

#include "spill.h"

static uint64_t round_up(uint64_t n, uint64_t to)
{
	return (n + to - 1) & ~(to - 1);
}

/* Moves a block that cannot grow in place: the kernel copies the pages, no user-space pass. */
static void *move_block(void *p, const struct spill_block *old, size_t size, enum spill_reason *why)
{
	char *q = spill_try(size, 0, (uint64_t)size * 2, why);

	if (!q)
		return NULL;
	/* A copy that fails part way leaves q unknown: the user-space copy then redoes it whole. */
	if (spill_copy_block(old, spill_file.fd, (uint64_t)(q - spill_file.base)))
		memcpy(q, p, old->size < size ? old->size : size);
	spill_event("move addr=%p->%p size=%llu->%zu", p, q, (unsigned long long)old->size, size);
	spill_free(p);
	return q;
}

/* Resizes spilled block P in place when it can: shrink cuts the file, growth extends it. */
static void *resize(void *p, size_t size)
{
	uint64_t off = (uint64_t)((char *)p - spill_file.base), len = round_up(size, spill_page);
	struct spill_block *b, cur;
	enum spill_reason why = SPILL_R_FULL;

	spill_lock();
	if (!(b = spill_region_find(off))) {
		spill_unlock();
		spill_bad_pointer("realloc", p);
	}
	cur = *b;
	spill_unlock();
	if (cur.src != SPILL_SRC_OWN && spill_cow_thaw(off) == 0)
		cur.src = SPILL_SRC_OWN;
	if (cur.src != SPILL_SRC_OWN) {
		/* Copy-on-write still: its file range is not ours to cut or extend. */
		if (len > cur.len) {
			void *q = move_block(p, &cur, size, &why);
			if (q)
				return q;
			goto fail;
		}
		spill_lock();
		spill_region_find(off)->size = size;
		spill_unlock();
		spill_stats_resize(cur.size, cur.len, size, cur.len);
		return p;
	}
	if (len <= cur.len) {
		if (len < cur.len)
			spill_backing_punch(off + len, cur.len - len);
		spill_lock();
		b = spill_region_find(off);
		b->len = len;
		b->size = size;
		spill_unlock();
		spill_stats_unclaim(cur.len - len);
		spill_stats_resize(cur.size, cur.len, size, len);
		spill_event("shrink addr=%p size=%llu->%zu", p, (unsigned long long)cur.size, size);
		return p;
	}
	if (spill_policy_admit(len - cur.len, &why))
		goto fail;
	int room = len <= cur.cap;
	if (!room && (room = spill_core_take(off + cur.cap, len - cur.cap) == 0)) {
		spill_lock();
		spill_region_find(off)->cap = len;
		spill_unlock();
	}
	if (room && spill_backing_reserve(off + cur.len, len - cur.len) == 0) {
		spill_policy_release(len - cur.len);
		spill_lock();
		b = spill_region_find(off);
		b->len = len;
		b->size = size;
		spill_unlock();
		spill_stats_resize(cur.size, cur.len, size, len);
		spill_event("grow addr=%p size=%llu->%zu", p, (unsigned long long)cur.size, size);
		return p;
	}
	spill_policy_release(len - cur.len);
	spill_stats_unclaim(len - cur.len);
	if (room) {
		why = SPILL_R_NO_SPACE;
		goto fail;
	}
	void *q = move_block(p, &cur, size, &why);
	if (q)
		return q;
fail:
	if (spill_cfg.on_fail == SPILL_FAIL_RAM) {
		void *r = spill_policy_fail(size, 0, 0, why);
		if (r) {
			memcpy(r, p, cur.size);
			spill_free(p);
		}
		return r;
	}
	return spill_policy_fail(size, 0, 0, why);
}

/*
 * A fork child that could not have a file of its own holds its inherited blocks as RAM copies
 * (fork.c); one that is resized goes to the real allocator, as a new large block there would.
 */
static void *to_heap(void *p, size_t size)
{
	uint64_t off = (uint64_t)((char *)p - spill_file.base);
	struct spill_block *b;
	size_t old;
	void *q;

	spill_lock();
	if (!(b = spill_region_find(off))) {
		spill_unlock();
		spill_bad_pointer("realloc", p);
	}
	old = b->size;
	spill_unlock();
	if (!(q = spill_policy_fail(size, 0, 0, SPILL_R_FORK_DROP)))
		return NULL;
	memcpy(q, p, old < size ? old : size);
	spill_free(p);
	return q;
}

void *spill_realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (!p)
		return spill_malloc(size, 0);
	if (spill_is_boot(p)) {
		old = spill_boot_size(p);
		if ((q = spill_malloc(size, 0)))
			memcpy(q, p, old < size ? old : size);
		return q;
	}
	if (spill_is_ours(p)) {
		if (size == 0) {	/* glibc frees and returns NULL */
			spill_free(p);
			return NULL;
		}
		if (size > PTRDIFF_MAX) {
			errno = ENOMEM;
			return NULL;
		}
		if (!spill_core_ready()) {	/* a fork child without a file of its own */
			if (spill_core_blocks_in_ram())
				return to_heap(p, size);
			errno = ENOMEM;		/* SPILL_FORK=drop: the block is gone */
			return NULL;
		}
		spill_cow_tick(0);
		return resize(p, size);
	}
	/* A block of the real allocator crossing the threshold moves into a spilled one. */
	if (spill_active() <= 0 || size < spill_cfg.threshold)
		return real_realloc(p, size);
	enum spill_reason why;
	if (size > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	if (spill_cfg.when == SPILL_WHEN_PRESSURE && spill_pressure_wants_ram(size)) {
		spill_policy_note(size, SPILL_R_PRESSURE_OK);
		q = real_realloc(p, size);
		spill_pressure_done(q, size);
		return q;
	}
	if (!(q = spill_try(size, 0, 0, &why))) {
		if (spill_cfg.on_fail != SPILL_FAIL_RAM)
			return spill_policy_fail(size, 0, 0, why);
		spill_policy_note(size, why);
		return real_realloc(p, size);
	}
	old = real_malloc_usable_size ? real_malloc_usable_size(p) : size;
	memcpy(q, p, old < size ? old : size);
	real_free(p);
	return q;
}
