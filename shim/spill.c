/* SPDX-License-Identifier: MIT */
/* spill.c - the spill core: one-time init, the kept set, and allocating and freeing spilled blocks. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "spill.h"

size_t spill_gate;		/* 0 until init: the first call of any size comes here */
uintptr_t spill_lo;
size_t spill_span;
size_t spill_page = 4096;

static int init_state;		/* 0 not started, 1 running, 2 done */
static SPILL_TLS int in_init;
static int enabled;		/* spilling allowed in this process */
static int backing_state;	/* 0 not tried, 1 ready, -1 failed (reason in backing_fail) */
static enum spill_reason backing_fail;
static int inherited_only;	/* fork child without a file: 1 its blocks are copies in RAM, 2 dropped */
static int need_file;		/* a cow fork child: its own file is made on its first spill */
static struct spill_extents extents;

/*
 * A freed block gives its memory back at once (FALLOC_FL_ZERO_RANGE drops its pages) but
 * keeps its disk blocks, as unwritten extents, in a second extent set: new blocks are
 * carved from there first and need no fallocate. The kept set merges neighbours, and it is
 * punched as a whole, one hole per run of adjacent blocks, once it holds KEEP_BYTES or is
 * KEEP_NS old, or whenever the disk is short: on ext4 with -o discard every block free is a
 * synchronous discard, so a thousand frees cost one punch instead of a thousand.
 */
#define KEEP_BYTES ((uint64_t)256 << 20)
#define KEEP_NS 1000000000ll
static struct spill_extents kept;
static long long kept_since;	/* when the kept set last went from empty to not */

static const char *secure_get(const char *name)
{
	return secure_getenv(name);
}

static uint64_t round_up(uint64_t n, uint64_t to)
{
	return (n + to - 1) & ~(to - 1);
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int program_listed(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	const char *base = exe;

	if (spill_config_only_matches(spill_cfg.only, program_invocation_short_name))
		return 1;
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	for (char *s = exe; *s; s++)
		if (*s == '/')
			base = s + 1;
	return spill_config_only_matches(spill_cfg.only, base);
}

#ifndef SPILL_UNIT_TEST	/* unit tests set SPILL_* first, then call spill_init() themselves */
__attribute__((constructor)) static void spill_ctor(void)
{
	spill_init();
}

__attribute__((destructor)) static void spill_dtor(void)
{
	/* Nothing is torn down: frees that come later (other destructors, stdio) still work. */
	if (init_state == 2 && !in_init)
		spill_stats_write();
}
#endif

/*
 * Runs once per process, on the first allocation or at the constructor, whichever comes
 * first. A call from inside init (dlsym allocating) returns at once; the caller then
 * serves it from the bootstrap arena.
 */
void spill_init(void)
{
	int expected = 0;

	if (spill_likely(__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2) || in_init)
		return;
	if (!__atomic_compare_exchange_n(&init_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2)
			sched_yield();
		return;
	}
	in_init = 1;
	spill_real_resolve();
	long pg = sysconf(_SC_PAGESIZE);
	if (pg > 0)
		spill_page = (size_t)pg;
	spill_config_load(&spill_cfg, secure_get);
	spill_log_open(&spill_cfg);
	enabled = !spill_cfg.disable && program_listed();
	if (enabled && spill_backing_check_dir(spill_cfg.dir, spill_cfg.dir, sizeof spill_cfg.dir)) {
		backing_state = -1;
		backing_fail = SPILL_R_NO_DIR;
	}
	pthread_atfork(spill_atfork_prepare, spill_atfork_parent, spill_atfork_child);
	spill_stats_init();
	in_init = 0;
	__atomic_store_n(&spill_gate, enabled ? spill_cfg.threshold : SIZE_MAX, __ATOMIC_RELEASE);
	__atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
}

/* Where a slow-path call goes: 1 spill, 0 the real allocator, -1 the bootstrap arena. */
int spill_active(void)
{
	spill_init();
	if (in_init || !real_malloc)
		return -1;
	return enabled;
}

/*
 * A fork child's own file, made on its first spill: until then its free ranges still map its
 * parent's file, which it must never write. Lock held.
 */
static int make_child_file(void)
{
	uint64_t off = 0, len;
	int fd = spill_backing_new_file(spill_cfg.dir);

	if (fd < 0)
		return errno;
	for (; spill_extents_next(&extents, off, &off, &len) == 0; off += len)
		if (spill_map_file(off, len, fd, 0)) {
			int err = errno;
			close(fd);
			return err;
		}
	spill_file.fd = fd;
	need_file = 0;
	return 0;
}

/* The file is made on the first spill, so programs that never spill hold no descriptor. */
static int backing_ready(void)
{
	int state = __atomic_load_n(&backing_state, __ATOMIC_ACQUIRE);

	if (state && !__atomic_load_n(&need_file, __ATOMIC_ACQUIRE))
		return state > 0;
	spill_lock();
	if (backing_state > 0 && need_file) {
		int err = make_child_file();
		if (err) {
			spill_warn("fork child: cannot create a spill file in \"%s\" (%s); spilling disabled",
				   spill_cfg.dir, spill_errname(err));
			backing_fail = SPILL_R_FILE;
			need_file = 0;
			__atomic_store_n(&backing_state, -1, __ATOMIC_RELEASE);
		}
	}
	if (!backing_state) {
		int err = spill_backing_open(spill_cfg.dir);
		if (err || spill_extents_init(&extents, spill_file.span) || spill_extents_init(&kept, 0)) {
			spill_warn("cannot create a spill file in \"%s\" (%s); spilling disabled",
				   spill_cfg.dir, spill_errname(err ? err : ENOMEM));
			backing_fail = SPILL_R_FILE;
			__atomic_store_n(&backing_state, -1, __ATOMIC_RELEASE);
		} else {
			extents.base = kept.base = (uintptr_t)spill_file.base;
			spill_lo = (uintptr_t)spill_file.base;
			__atomic_store_n(&spill_span, spill_file.span, __ATOMIC_RELEASE);
			__atomic_store_n(&backing_state, 1, __ATOMIC_RELEASE);
		}
	}
	spill_unlock();
	return backing_state > 0;
}

/* Punches every kept extent and makes it free space. ALL = 0: only if the set is due. */
static void punch_kept(int all)
{
	uint64_t off[32], len[32];
	unsigned n;

	do {
		n = 0;
		spill_lock();
		if (all || kept.free_bytes > KEEP_BYTES ||
		    (kept.free_bytes && now_ns() - kept_since > KEEP_NS)) {
			all = 1;
			while (n < 32 && spill_extents_pop(&kept, &off[n], &len[n]) == 0)
				n++;
		}
		spill_unlock();
		for (unsigned i = 0; i < n; i++)
			spill_backing_punch(off[i], len[i]);
		spill_lock();
		for (unsigned i = 0; i < n; i++)
			spill_extents_free(&extents, off[i], len[i]);
		spill_unlock();
	} while (n == 32);
}

void spill_flush_kept(void)
{
	if (backing_state > 0)
		punch_kept(1);
}

static int kept_nonempty(void)
{
	spill_lock();
	int r = kept.free_bytes != 0;
	spill_unlock();
	return r;
}

/*
 * What a block being made has taken so far. Each step records what it took, and
 * grant_undo() gives back exactly that, in reverse order, from whichever step failed.
 */
struct grant {
	uint64_t off, len, cap;
	int claimed;		/* counted against SPILL_MAX */
	int from_kept;		/* carved from the kept set, disk blocks and all */
	int carved;		/* addresses carved from the free space */
	int reserved;		/* disk blocks reserved with fallocate */
};

static void grant_undo(const struct grant *g)
{
	if (g->reserved)
		spill_backing_punch(g->off, g->len);
	if (g->claimed)
		spill_stats_unclaim(g->len);
	spill_lock();
	if (g->from_kept)
		spill_extents_free(&kept, g->off, g->len);
	else if (g->carved)
		spill_extents_free(&extents, g->off, g->cap);
	spill_unlock();
}

/* A block from the kept set, which needs no fallocate. 0, 1 if it has none, -1 with *why. */
static int grant_kept(struct grant *g, uint64_t align, enum spill_reason *why)
{
	spill_lock();
	g->from_kept = kept.free_bytes && spill_extents_alloc(&kept, g->len, align, &g->off) == 0;
	spill_unlock();
	if (!g->from_kept)
		return 1;
	g->cap = g->len;
	if (spill_stats_claim(g->len, spill_cfg.max)) {
		grant_undo(g);
		*why = SPILL_R_MAX;
		return -1;
	}
	g->claimed = 1;
	return 0;
}

/* A block from free space: admitted by the policy, carved, reserved. 0, or -1 with *why. */
static int grant_fresh(struct grant *g, uint64_t align, enum spill_reason *why)
{
	if (spill_policy_admit(g->len, why))
		return -1;
	g->claimed = 1;
	spill_lock();
	if (spill_extents_alloc(&extents, g->cap, align, &g->off) == 0)
		g->carved = 1;
	else if (g->cap > g->len && spill_extents_alloc(&extents, g->len, align, &g->off) == 0)
		g->carved = 1, g->cap = g->len;
	spill_unlock();
	int r = g->carved ? spill_backing_reserve(g->off, g->len) : -1;	/* punches what it half did */
	spill_policy_release(g->len);
	if (r) {
		*why = g->carved ? SPILL_R_NO_SPACE : SPILL_R_FULL;
		grant_undo(g);
		return -1;
	}
	g->reserved = 1;
	return 0;
}

/* Spills SIZE bytes with a CAP of address space; NULL with *why set when it cannot. */
void *spill_try(size_t size, size_t align, uint64_t cap, enum spill_reason *why)
{
	struct grant g;
	uint64_t len;
	int r;

	spill_cow_tick(0);
	if (!backing_ready()) {
		*why = backing_fail;
		return NULL;
	}
	if (inherited_only) {
		*why = SPILL_R_FORK_DROP;
		return NULL;
	}
	/* Every extent is a page multiple: only larger alignments need padding in the search. */
	align = align > spill_page ? align : 1;
	if (size > spill_file.span || align > spill_file.span) {
		*why = SPILL_R_FULL;
		return NULL;
	}
	len = round_up(size ? size : 1, spill_page);
	cap = cap > len ? round_up(cap, spill_page) : len;
	punch_kept(0);
	g = (struct grant){ .len = len, .cap = cap };
	if ((r = grant_kept(&g, align, why)) < 0)
		return NULL;
	for (int attempt = 0; r; attempt++) {
		g = (struct grant){ .len = len, .cap = cap };
		if (!(r = grant_fresh(&g, align, why)))
			break;
		/* Short of disk: the kept set holds reserved space that punching gives back. */
		if (attempt || (*why != SPILL_R_MIN_FREE && *why != SPILL_R_NO_SPACE) || !kept_nonempty())
			return NULL;
		spill_flush_kept();
	}
	struct spill_block b = { .off = g.off, .len = g.len, .cap = g.cap, .size = size };
	spill_lock();
	b.born = spill_fork_epoch;
	r = spill_region_insert(&b);
	spill_unlock();
	if (r) {
		grant_undo(&g);
		*why = SPILL_R_FULL;
		return NULL;
	}
	spill_stats_alloc(size, b.len);
	spill_event("create addr=%p size=%zu len=%llu", spill_file.base + b.off, size,
		    (unsigned long long)b.len);
	return spill_file.base + b.off;
}

void *spill_alloc(size_t size, size_t align, int zero)
{
	enum spill_reason why;
	void *p;

	if (size > PTRDIFF_MAX) {	/* never satisfiable, as glibc says */
		errno = ENOMEM;
		return NULL;
	}
	if (spill_cfg.when == SPILL_WHEN_PRESSURE && spill_pressure_wants_ram(size)) {
		p = spill_policy_fail(size, align, zero, SPILL_R_PRESSURE_OK);
		spill_pressure_done(p, size);
		return p;
	}
	p = spill_try(size, align, 0, &why);
	return p ? p : spill_policy_fail(size, align, zero, why);
}

/* Any slow-path allocation: before init and during it (dlsym allocating) nothing real is known. */
void *spill_malloc(size_t size, size_t align)
{
	switch (spill_active()) {
	case -1:
		return spill_boot_alloc(size, align);
	case 1:
		if (size >= spill_cfg.threshold)
			return spill_alloc(size, align, 0);
	}
	return align ? real_memalign(align, size) : real_malloc(size);
}

_Noreturn void spill_bad_pointer(const char *fn, const void *p)
{
	struct spill_block *b = spill_region_containing((uint64_t)((const char *)p - spill_file.base));
	if (b)
		spill_die("%s(): %p points into the middle of spilled block %p", fn, p,
			  (void *)(spill_file.base + b->off));
	spill_die("%s(): %p is not a live spilled block (double free or invalid pointer)", fn, p);
}

/* Removes P's block from the registry, or ends the program if P is not a live block. */
static struct spill_block unregister(const char *fn, void *p)
{
	struct spill_block b;

	spill_lock();
	if (spill_region_remove((uint64_t)((char *)p - spill_file.base), &b)) {
		spill_unlock();
		spill_bad_pointer(fn, p);
	}
	spill_unlock();
	return b;
}

/* Gives an ordinary block's memory back at once, and its disk space now or with the kept set. */
void spill_core_release_own(uint64_t off, uint64_t len, uint64_t cap)
{
	/* A block larger than the kept set may hold would be punched right after: punch it now. */
	if (spill_file.can_zero && len <= KEEP_BYTES && spill_backing_zero(off, len) == 0) {
		spill_lock();
		if (!kept.free_bytes)
			kept_since = now_ns();
		spill_extents_free(&kept, off, len);
		spill_extents_free(&extents, off + len, cap - len);
		spill_unlock();
		punch_kept(0);
		return;
	}
	spill_backing_punch(off, len);
	spill_lock();
	spill_extents_free(&extents, off, cap);
	spill_unlock();
}

static void release(const struct spill_block *b)
{
	if (inherited_only) {
		madvise(spill_file.base + b->off, b->cap, MADV_DONTNEED);
		spill_core_free_range(b->off, b->cap);
		return;
	}
	if (b->src != SPILL_SRC_OWN && spill_cow_release(b))
		return;
	spill_core_release_own(b->off, b->len, b->cap);
}

void spill_free(void *p)
{
	struct spill_block b;
	int saved = errno;	/* free() must not change errno */

	if (spill_is_boot(p))
		return;		/* bootstrap blocks are never reused */
	spill_cow_tick(0);
	spill_usage_sample(0);	/* before the block goes: its pages may be the peak */
	b = unregister("free", p);
	release(&b);
	if (b.src <= SPILL_SRC_FROZEN)	/* an inherited block's disk is not ours */
		spill_stats_unclaim(b.len);
	spill_stats_free(b.size, b.len);
	spill_event("free addr=%p size=%llu", p, (unsigned long long)b.size);
	errno = saved;
}

size_t spill_usable_size(const void *p)
{
	struct spill_block *b;
	size_t n;

	if (spill_is_boot(p))
		return spill_boot_size(p);
	spill_lock();
	b = spill_region_find((uint64_t)((const char *)p - spill_file.base));
	n = b ? b->len : 0;
	spill_unlock();
	if (!b)
		spill_bad_pointer("malloc_usable_size", p);
	return n;
}

/* For realloc.c: claims the free address range [off, off+len) for a block growing in place. */
int spill_core_take(uint64_t off, uint64_t len)
{
	spill_lock();
	int r = spill_extents_take(&extents, off, len);
	spill_unlock();
	return r;
}

/* For fork.c: is there a spill file, or are there blocks from one, that a child would share? */
int spill_core_ready(void)
{
	return backing_state > 0 && !inherited_only;
}

/* For cow.c: the address range [off, off+len) is free in this process. */
void spill_core_free_range(uint64_t off, uint64_t len)
{
	spill_lock();
	spill_extents_free(&extents, off, len);
	spill_unlock();
}

/* For cow.c: a fork child spills to a file of its own, made when it first spills. */
void spill_core_need_file(void)
{
	spill_file.fd = -1;
	__atomic_store_n(&need_file, 1, __ATOMIC_RELEASE);
}

int spill_core_has_file(void)
{
	return spill_file.fd >= 0 && !need_file;
}

int spill_core_ensure_file(void)
{
	return backing_ready() && !inherited_only;
}

/* For fork.c: the child has no file to spill new blocks to; its inherited ones are in RAM or gone. */
void spill_core_set_inherited_only(int blocks_in_ram)
{
	inherited_only = blocks_in_ram ? 1 : 2;
}

/* For realloc.c: a fork child whose inherited blocks were copied to RAM can still move them. */
int spill_core_blocks_in_ram(void)
{
	return inherited_only == 1;
}

/* For fork.c: kept extents hold disk blocks of the parent's file; a child just reuses the addresses. */
void spill_core_forget_kept(void)
{
	uint64_t off, len;

	while (spill_extents_pop(&kept, &off, &len) == 0)
		spill_extents_free(&extents, off, len);
}
