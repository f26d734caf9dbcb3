/* SPDX-License-Identifier: MIT */
/*
 * model.c - differential model test: a long random sequence of malloc, calloc, realloc,
 * reallocarray, the aligned allocators and free, with sizes on both sides of the threshold
 * and odd ones; sparse writes (runs with holes, never whole blocks); fork (the child checks
 * every block, writes, frees, moves; the parent checks that none of it reached it); and
 * reuse of freed places. Every block is checked against a shadow of what it must hold.
 *
 * The shadow is not in memory the allocator serves: the slots and a bitmap of the pages
 * written are static arrays, and the shadow bytes live in a mapping of their own.
 * What a block holds is defined as C defines it: bytes up to the size survive realloc,
 * fresh spilled space reads as zero (libspill's design; calloc relies on it), and bytes a
 * realloc brings in from the old block's last page or the heap block's slack are adopted.
 *
 *   model                   the matrix: every fork mode and SPILL_ADVICE of matrix.h, and tmpfs
 *                           (MODEL_SEEDS="1 2", MODEL_OPS=N per seed and configuration,
 *                           MODEL_TMPFS=0 leaves out tmpfs)
 *   model one SEED OPS      one run under the environment's SPILL_*; a failure prints this line
 *                           (MODEL_TRACE=OP prints every operation from OP on)
 *
 * A fork child checks what it inherited and goes on with operations of its own, forks
 * included (MODEL_MAX_DEPTH=1 leaves those out; they found the inherited-epoch bug that
 * tests/integration/cow_nested.c keeps fixed).
 *
 * tests/unit/check_model.c builds this file with MODEL_CORE against the spill core itself,
 * which is how it runs under ASan.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rerun.h"
#include "sparse.h"

#ifndef MODEL_CORE	/* check_model.c defines these for the linked-in core */
#include "spillfile.h"

#define m_malloc malloc
#define m_calloc calloc
#define m_realloc realloc
#define m_reallocarray reallocarray
#define m_memalign memalign
#define m_aligned_alloc aligned_alloc
#define m_posix_memalign posix_memalign
#define m_free free
#define m_usable malloc_usable_size

static uintptr_t map_lo, map_hi;

/* In the spill reservation? It stays at one address for the life of the process and its children. */
static int is_spilled(const void *p)
{
	if (!map_hi && spillfile_range(&map_lo, &map_hi))
		map_lo = map_hi = 0;
	return map_hi && (uintptr_t)p >= map_lo && (uintptr_t)p < map_hi;
}

/* Our own descriptor of the spill file, for SEEK_DATA; found again after a fork. */
static int seek_fd = -1;
static pid_t seek_pid;

static int spill_fd(void)
{
	if (seek_fd >= 0 && seek_pid == getpid())
		return seek_fd;
	if (seek_fd >= 0)
		close(seek_fd);
	seek_pid = getpid();
	return seek_fd = spillfile_open();
}

static uintptr_t spill_base(void)
{
	is_spilled(NULL);
	return map_lo;
}
#endif

#define SLOTS 64
#define SPAN ((size_t)64 << 20)		/* shadow room per slot: the largest block */
#define BIG_MAX ((size_t)48 << 20)
#define LIVE_MAX ((size_t)128 << 20)	/* the sum of live sizes stays below this */
#define PAGES_MAX (SPAN / 4096)
#define HISTORY 6

enum how { H_MALLOC, H_CALLOC, H_MEMALIGN, H_ALIGNED, H_POSIX, H_REALLOC_NULL, H_REUSE, H_FORK_NEW };
static const char *const how_name[] = { "malloc", "calloc", "memalign", "aligned_alloc", "posix_memalign",
					"realloc(NULL)", "malloc after a free (reuse)", "malloc after fork" };

struct slot {
	unsigned char *p;
	size_t size;
	size_t stale;		/* bytes in [size, stale) may hold what was there before a shrink */
	uint32_t id;
	uint8_t how, spilled;
};

/* What happened to a slot lately, for the failure message. */
struct event {
	unsigned long long op;
	const char *what;
	uintptr_t p;
	size_t a, b;
};

static struct slot slots[SLOTS];
static uint64_t dirty[SLOTS][PAGES_MAX / 64];	/* pages whose shadow may be non-zero */
static struct event history[SLOTS][HISTORY];
static unsigned history_at[SLOTS];
static unsigned char *shadow;			/* SLOTS x SPAN, its own anonymous mapping */

/* What the child of a fork changed, for the parent to check it saw none of it (len 0: a whole slot). */
struct fork_write {
	unsigned slot;
	size_t off, len;
};

struct fork_log {
	unsigned n;
	struct fork_write w[64];
};
static struct fork_log *flog;		/* [d]: what the child at depth d wrote; shared memory */

static uint64_t rng;
static unsigned long long seed, op, ops;
static size_t T, pg, live;
static uint32_t ids;
static int failed, depth, exact, tmpfs;	/* depth: 0 the parent, 1 its fork child, ... */
static int max_depth = 2;		/* MODEL_MAX_DEPTH: 1 leaves out forks in fork children */
static unsigned long long sub;		/* operations done by this fork child */
static const char *mode = "copy", *advice = "normal", *opname = "";

static struct {
	unsigned long long writes, runs, allocs, spilled_allocs, callocs, aligned, reallocs, moved, in_place,
		shrunk, crossed_up, heap_reallocs, frees, reuses, reused_place, forks, empty_forks,
		moved_with_holes, fork_blocks_with_holes, checks;
} n;

static uint64_t next(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static size_t below(size_t n_)
{
	return n_ ? (size_t)(next() % n_) : 0;
}

static size_t round_pg(size_t x)
{
	return (x + pg - 1) & ~(pg - 1);
}

static unsigned char *sh(unsigned k)
{
	return shadow + (size_t)k * SPAN;
}

static unsigned long long trace_from = ~0ull;	/* MODEL_TRACE=OP: every event from OP on, on stdout */

static void note(unsigned k, const char *what, const void *p, size_t a, size_t b)
{
	history[k][history_at[k]++ % HISTORY] = (struct event){ op, what, (uintptr_t)p, a, b };
	if (op >= trace_from)
		printf("trace: op %llu depth %d sub %llu pid %d: slot %u %s %p %zu %zu\n", op, depth, sub, (int)getpid(), k,
		       what, p, a, b);
}

static void mark(unsigned k, size_t off, size_t len)
{
	for (size_t i = off / pg; len && i <= (off + len - 1) / pg; i++)
		dirty[k][i / 64] |= 1ull << (i % 64);
}

static int marked(unsigned k, size_t i)
{
	return dirty[k][i / 64] >> (i % 64) & 1;
}

static void reproduce_line(void)
{
	const char *lib = getenv("LD_PRELOAD"), *t = getenv("SPILL_THRESHOLD");

#ifdef MODEL_CORE
	printf("  reproduce: MODEL_SEEDS=%llu MODEL_OPS=%llu MODEL_ONLY=\"%s %s%s\" %s\n", seed, ops, mode, advice,
	       tmpfs ? " tmpfs" : "", program_invocation_name);
	(void)lib, (void)t;
#else
	printf("  reproduce: SPILL_FORK=%s SPILL_ADVICE=%s SPILL_THRESHOLD=%s SPILL_DIR=$(mktemp -d -p %s) "
	       "LD_PRELOAD=%s %s one %llu %llu\n", mode, advice, t ? t : "256K", tmpfs ? "/dev/shm" : "/var/tmp",
	       lib ? lib : "build/libspill.so", program_invocation_name, seed, op + 1);
#endif
}

static void fail(unsigned k, size_t at, const char *why, int got, int want)
{
	const struct slot *s = &slots[k];

	if (failed++)
		return;
	printf("FAIL seed=%llu op=%llu (%s", seed, op, opname);
	if (depth)
		printf(", in the fork child at depth %d, its op %llu", depth, sub);
	printf(") [SPILL_FORK=%s SPILL_ADVICE=%s%s]: %s\n", mode, advice, tmpfs ? " tmpfs" : "", why);
	printf("  slot %u: block id %u made by %s, size %zu, %s at %p", k, s->id, how_name[s->how], s->size,
	       s->spilled ? "spilled" : "on the heap", (void *)s->p);
	if (got >= 0)
		printf("; byte %zu (page %zu) is 0x%02x, want 0x%02x", at, at / pg, got, want);
	printf("\n  its last events:");
	for (unsigned i = history_at[k] > HISTORY ? history_at[k] - HISTORY : 0; i < history_at[k]; i++) {
		const struct event *e = &history[k][i % HISTORY];
		printf(" [op %llu %s %#lx %zu %zu]", e->op, e->what, (unsigned long)e->p, e->a, e->b);
	}
	printf("\n");
	reproduce_line();
	fflush(stdout);
}

/* Page I of slot K against the shadow; 0 if equal. */
static int check_page(unsigned k, size_t i)
{
	const struct slot *s = &slots[k];
	size_t off = i * pg, len = s->size - off < pg ? s->size - off : pg;

	n.checks++;
	if (!memcmp(s->p + off, sh(k) + off, len))
		return 0;
	for (size_t j = off; j < off + len; j++)
		if (s->p[j] != sh(k)[j]) {
			fail(k, j, "content differs from the model", s->p[j], sh(k)[j]);
			break;
		}
	return -1;
}

/*
 * Checks slot K: every page written, the first and the last, and SAMPLES others (which
 * are holes: reading them fills them, so only a few are read). SAMPLES < 0: every page.
 */
static int verify(unsigned k, int samples)
{
	const struct slot *s = &slots[k];
	size_t pages = (s->size + pg - 1) / pg;

	if (!s->p || !pages)
		return 0;
	for (size_t i = 0; i < pages; i++)
		if ((samples < 0 || marked(k, i) || i == 0 || i == pages - 1) && check_page(k, i))
			return -1;
	for (int j = 0; j < samples; j++)
		if (check_page(k, below(pages)))
			return -1;
	return 0;
}

/* [off, off+len) of slot K only (what a fork child wrote, as the parent sees it). */
static int verify_range(unsigned k, size_t off, size_t len)
{
	const struct slot *s = &slots[k];

	if (!s->p || off >= s->size)
		return 0;
	if (!len)
		return verify(k, 4);
	if (off + len > s->size)
		len = s->size - off;
	for (size_t j = off; j < off + len; j++)
		if (s->p[j] != sh(k)[j]) {
			fail(k, j, "the parent sees a write of its fork child", s->p[j], sh(k)[j]);
			return -1;
		}
	return 0;
}

/* The shadow past SIZE is zero: a block that grows gets zero unless the model adopts bytes. */
static void shadow_cut(unsigned k, size_t from, size_t to)
{
	size_t mid = round_pg(from);

	if (to <= from)
		return;
	memset(sh(k) + from, 0, (mid < to ? mid : to) - from);
	if (round_pg(to) > mid)
		madvise(sh(k) + mid, round_pg(to) - mid, MADV_DONTNEED);
	for (size_t i = mid / pg; i < round_pg(to) / pg; i++)
		dirty[k][i / 64] &= ~(1ull << (i % 64));
}

/* Takes the block's bytes [from, to) into the shadow: C leaves them unspecified. */
static void adopt(unsigned k, size_t from, size_t to)
{
	if (to <= from)
		return;
	memcpy(sh(k) + from, slots[k].p + from, to - from);
	mark(k, from, to - from);
}

/* Sizes: below, at and above the threshold, odd and page multiples, and rarely large. */
static size_t pick_size(void)
{
	size_t room = live < LIVE_MAX ? LIVE_MAX - live : 0, s;

	switch (next() % 16) {
	case 0: s = below(65); break;
	case 1: s = below(4096) + 1; break;
	case 2: s = below(T / 2) + 1; break;
	case 3: s = T - 1 - below(64); break;
	case 4: s = T + below(64); break;
	case 5: case 6: s = T + below(3 * T); break;
	case 7: s = (T / pg + below(3 * T / pg)) * pg; break;
	case 8: s = (T / pg + below(3 * T / pg)) * pg + (next() % 2 ? 1 : -1); break;
	case 9: case 10: s = T / 2 + below(3 * T / 2); break;
	case 11: s = 4 * T + below(12 * T); break;
	case 12: s = next() % 4 ? 2 * T + below(6 * T) : ((size_t)8 << 20) + below(BIG_MAX - ((size_t)8 << 20)); break;
	default: s = 2 * T + below(6 * T); break;
	}
	if (s > room)
		s = below(room < T ? room + 1 : T);
	return s;
}

/* A sparse write: a few runs of random length and place, with holes between them. */
static void write_runs(unsigned k, unsigned nruns)
{
	struct slot *s = &slots[k];
	uint64_t wseed = next();

	if (!s->p || !s->size)
		return;
	n.writes++;
	for (unsigned r = 0; r < nruns; r++) {
		size_t size = s->size, off, len, b;
		switch (next() % 8) {
		case 0: off = below(size); len = 1 + below(256); break;
		case 1: off = below(size); len = 1 + below(16384); break;
		case 2: off = below(size) / pg * pg; len = pg; break;		/* exactly one page */
		case 3: b = (1 + below(size / pg + 1)) * pg; len = 1 + below(64);	/* across a boundary */
			off = b > len ? b - len : 0; len *= 2; break;
		case 4: len = 1 + below(16); off = size > len ? size - len : 0; break;	/* the end */
		case 5: off = 0; len = 1 + below(64); break;
		case 6: off = below(size); len = 1 + below(65536); break;
		default: b = below(size / pg + 1) * pg; off = b ? b - next() % 2 : 0; len = 1; break;
		}
		if (off >= size)
			off = size - 1;
		if (len > size - off)
			len = size - off;
		sparse_gen(sh(k) + off, wseed, off, len);
		memcpy(s->p + off, sh(k) + off, len);	/* writes only: reading would fill the holes */
		mark(k, off, len);
		n.runs++;
		if (depth && flog[depth].n < 64)
			flog[depth].w[flog[depth].n++] = (struct fork_write){ k, off, len };
	}
	note(k, "write", s->p, nruns, 0);
}

static unsigned empty_slot(void)
{
	for (unsigned i = 0, k = (unsigned)below(SLOTS); i < SLOTS; i++, k = (k + 1) % SLOTS)
		if (!slots[k].p)
			return k;
	return SLOTS;
}

static unsigned live_slot(int spilled_only)
{
	for (unsigned i = 0, k = (unsigned)below(SLOTS); i < SLOTS; i++, k = (k + 1) % SLOTS)
		if (slots[k].p && (!spilled_only || slots[k].spilled))
			return k;
	return SLOTS;
}

/* No two live blocks overlap: a broken extent set shows here before the data does. */
static int check_apart(unsigned k)
{
	const struct slot *s = &slots[k];

	for (unsigned j = 0; j < SLOTS; j++)
		if (j != k && slots[j].p && s->p < slots[j].p + slots[j].size && slots[j].p < s->p + s->size) {
			fail(k, 0, "overlaps another live block", -1, -1);
			printf("  the other: slot %u, id %u, %p size %zu\n", j, slots[j].id, (void *)slots[j].p,
			       slots[j].size);
			return -1;
		}
	return 0;
}

/* A new block in empty slot K: fresh spilled space and calloc read as zero, heap bytes are adopted. */
static int alloc_into(unsigned k, size_t size, enum how how)
{
	struct slot *s = &slots[k];
	size_t align = (size_t)1 << (4 + below(13));	/* 16 .. 64K */
	void *q = NULL;

	opname = how_name[how];
	if (size > SPAN - 65536)	/* the shadow's room, with aligned_alloc's rounding up */
		size = SPAN - 65536;
	switch (how) {
	case H_CALLOC:
		q = size >= 16 ? m_calloc(size / 16, 16) : m_calloc(size, 1);
		size = size >= 16 ? size / 16 * 16 : size;
		n.callocs++;
		break;
	case H_MEMALIGN: q = m_memalign(align, size); break;
	case H_ALIGNED: size = (size + align - 1) & ~(align - 1); q = m_aligned_alloc(align, size); break;
	case H_POSIX: if (m_posix_memalign(&q, align, size)) q = NULL; break;
	case H_REALLOC_NULL: q = m_realloc(NULL, size); break;
	default: q = m_malloc(size); break;
	}
	*s = (struct slot){ q, size, size, ++ids, (uint8_t)how, (uint8_t)is_spilled(q) };
	note(k, how_name[how], q, size, 0);
	if (!q) {
		fail(k, 0, "allocation returned NULL", -1, -1);
		return -1;
	}
	n.allocs++;
	n.spilled_allocs += s->spilled;
	if (how >= H_MEMALIGN && how <= H_POSIX) {
		n.aligned++;
		if ((uintptr_t)q % align) {
			fail(k, align, "misaligned", -1, -1);
			return -1;
		}
	}
	if (m_usable(q) < size) {
		fail(k, m_usable(q), "malloc_usable_size is below the size asked", -1, -1);
		return -1;
	}
	live += size;
	if (!s->spilled && how != H_CALLOC)
		adopt(k, 0, size);	/* the heap's own leftovers */
	if (check_apart(k))
		return -1;
	return verify(k, 2);		/* zero where the model has nothing */
}

static int free_slot(unsigned k)
{
	struct slot *s = &slots[k];

	opname = "free";
	if (verify(k, 0))
		return -1;
	m_free(s->p);
	note(k, "free", s->p, s->size, 0);
	live -= s->size;
	shadow_cut(k, 0, s->size);
	s->p = NULL;
	s->size = 0;
	n.frees++;
	return 0;
}

/* What SEEK_DATA says of a spilled block: the copy of a move or a fork sees that. */
static struct sparse_seen seen(unsigned k)
{
	struct sparse_seen none = { 0, 0, 0 };
	int fd = spill_fd();
	if (fd < 0 || !slots[k].spilled)
		return none;
	return sparse_seek(fd, (uint64_t)((uintptr_t)slots[k].p - spill_base()), round_pg(slots[k].size));
}

/* The new size for a realloc: a little more, much more, less, below the threshold, or any. */
static size_t pick_resize(const struct slot *s)
{
	size_t room = live < LIVE_MAX ? LIVE_MAX - live : 0, ns;

	switch (next() % 8) {
	case 0: ns = s->size + 1 + below(pg); break;
	case 1: case 2: ns = s->size * (2 + below(3)) + below(pg); break;
	case 3: ns = s->size ? s->size / 2 + below(s->size / 2 + 1) : 1; break;
	case 4: ns = below(T); break;
	case 5: ns = s->size < T ? T + below(2 * T) : s->size + T; break;
	case 6: ns = next() % 32 ? pick_size() : 0; break;
	default: ns = pick_size(); break;
	}
	if (ns > s->size && ns - s->size > room)
		ns = s->size + below(room + 1);
	if (ns > SPAN)
		ns = SPAN;
	return ns;
}

static int realloc_slot(unsigned k)
{
	struct slot *s = &slots[k];
	size_t ns = pick_resize(s), old = s->size, usable = m_usable(s->p), u;
	uintptr_t was = (uintptr_t)s->p;
	int was_spilled = s->spilled, holes = 0;
	void *q;

	opname = "realloc";
	if (was_spilled && ns > old) {
		struct sparse_seen v = seen(k);
		holes = v.runs >= 2 || (v.runs && v.lead_hole);
	}
	if (ns % 8 == 0 && next() % 4 == 0) {
		opname = "reallocarray";
		q = m_reallocarray(s->p, ns / 8, 8);
	} else {
		q = m_realloc(s->p, ns);
	}
	note(k, opname, q, old, ns);
	n.reallocs++;
	if (!ns) {	/* glibc and libspill: realloc(p, 0) frees p */
		live -= old;
		shadow_cut(k, 0, old);
		s->p = NULL;
		s->size = 0;
		return 0;
	}
	if (!q) {
		fail(k, 0, "realloc returned NULL", -1, -1);
		return -1;
	}
	s->p = q;
	s->size = ns;
	s->spilled = (uint8_t)is_spilled(q);
	live += ns - old;
	n.heap_reallocs += !was_spilled && !s->spilled;
	n.crossed_up += !was_spilled && s->spilled;
	n.shrunk += ns < old;
	if (ns > old) {
		n.moved += was_spilled && (uintptr_t)q != was;
		n.in_place += was_spilled && (uintptr_t)q == was;
		n.moved_with_holes += holes && (uintptr_t)q != was;
		/*
		 * What C leaves unspecified and the model adopts: on the heap all of it; from the
		 * heap into a spilled block the heap block's slack; in a spilled block the rest of
		 * its last page and what a shrink left (a copy-on-write block keeps it); past that,
		 * fresh file space, which reads as zero.
		 */
		u = !s->spilled ? ns : was_spilled ? (s->stale > round_pg(old) ? s->stale : round_pg(old)) : usable;
		adopt(k, old, u < ns ? u : ns);
		s->stale = u > ns ? u : ns;
	} else {
		shadow_cut(k, ns, old);
		if (s->stale < round_pg(old))
			s->stale = round_pg(old);
	}
	if (check_apart(k))
		return -1;
	return verify(k, 3);
}

/* Free a spilled block, then ask for about its size: the new block lands on the kept extents. */
static int reuse(void)
{
	unsigned k = live_slot(1), e;
	uintptr_t at;
	size_t size, len;

	if (k == SLOTS || slots[k].size < T)
		return 0;
	at = (uintptr_t)slots[k].p;
	size = slots[k].size;
	len = round_pg(size);
	if (free_slot(k))
		return -1;
	if ((e = empty_slot()) == SLOTS)
		return 0;
	switch (next() % 4) {
	case 0: break;
	case 1: size = size - below(size - T + 1); break;
	case 2: size = round_pg(size) - below(pg); break;
	default: size = size + below(pg); break;
	}
	if (alloc_into(e, size, next() % 3 ? H_REUSE : H_CALLOC))
		return -1;
	n.reuses++;
	n.reused_place += (uintptr_t)slots[e].p >= at && (uintptr_t)slots[e].p < at + len;
	return 0;
}

static void one_op(void);

/*
 * A fork child on a nearly full disk (the check-vm file systems have 64 MiB free) may be
 * refused a file of its own: under SPILL_FORK=copy when its copy does not fit, under cow
 * when its first block does not. It then spills nothing new, as documented. Only then may
 * its new large block FRESH stay on the heap: the free space says so, not the library.
 */
static int no_file;	/* this process is such a child, or a child of one */

static int disk_too_full(unsigned fresh)
{
	const char *dir = getenv("SPILL_DIR");
	struct statvfs v;
	uint64_t need = (slots[fresh].size + pg - 1) / pg * pg, room, reserve;
	unsigned k;

	if (!dir || statvfs(dir, &v))
		return 0;
	for (k = 0; k < SLOTS && !strcmp(mode, "copy"); k++)
		if (slots[k].p && slots[k].spilled && k != fresh)
			need += (slots[k].size + pg - 1) / pg * pg;
	room = (uint64_t)v.f_bavail * v.f_frsize;
	reserve = (uint64_t)v.f_blocks * v.f_frsize / 20;	/* SPILL_MIN_FREE's default, 5% */
	if (room >= need + reserve + ((uint64_t)4 << 20))	/* 4 MiB: what rounding and metadata take */
		return 0;
	printf("note: fork child at depth %d: %llu MiB free, %llu MiB needed; it spills nothing new "
	       "(a full disk)\n", depth, (unsigned long long)(room >> 20), (unsigned long long)(need >> 20));
	return 1;
}

/*
 * The child of a fork in a mode that keeps the blocks: it checks every block, then goes on
 * with operations of its own (inherited blocks moved, shrunk, freed; new ones in its own
 * file; forks of its own), and checks every block again.
 */
static int child_keeps(void)
{
	unsigned k, count = 20 + (unsigned)below(60);

	opname = "the child's check of what it inherited";
	for (k = 0; k < SLOTS; k++)
		if (slots[k].p && verify(k, slots[k].size <= ((size_t)1 << 20) ? -1 : 16))
			return 1;
	if ((k = empty_slot()) != SLOTS) {
		if (alloc_into(k, 2 * T + below(2 * T), H_FORK_NEW))
			return 1;
		/* a child of such a child has no file either */
		if (!slots[k].spilled && !no_file && !(no_file = disk_too_full(k))) {
			fail(k, 0, "a large block of the fork child did not spill", -1, -1);
			return 1;
		}
		write_runs(k, 8);
	}
	for (sub = 1; sub <= count && !failed; sub++)
		one_op();
	opname = "the child's last check";
	for (k = 0; k < SLOTS && !failed; k++)
		if (slots[k].p)
			verify(k, 2);
	return failed != 0;
}

/* The child under SPILL_FORK=drop: spilled blocks are gone; free works, realloc says ENOMEM. */
static int child_drops(void)
{
	unsigned k;

	for (k = 0; k < SLOTS; k++)
		if (slots[k].p && !slots[k].spilled && verify(k, -1))
			return 1;
	if ((k = live_slot(1)) != SLOTS) {
		opname = "free of a dropped block";
		m_free(slots[k].p);
		live -= slots[k].size;
		slots[k].p = NULL;
	}
	if ((k = live_slot(1)) != SLOTS) {
		opname = "realloc of a dropped block";
		errno = 0;
		if (m_realloc(slots[k].p, slots[k].size + T) || errno != ENOMEM) {
			fail(k, 0, "realloc of a dropped block did not fail with ENOMEM", -1, -1);
			return 1;
		}
	}
	if ((k = empty_slot()) != SLOTS) {
		if (alloc_into(k, 2 * T + below(2 * T), H_FORK_NEW))
			return 1;
		if (slots[k].spilled) {
			fail(k, 0, "a large block of a SPILL_FORK=drop child spilled", -1, -1);
			return 1;
		}
		write_runs(k, 8);
		if (verify(k, -1))
			return 1;
	}
	return 0;
}

/*
 * fork(): the parent writes right after fork() returns and makes a new block; the child
 * (which must see none of that) checks everything and goes on on its own; afterwards the
 * parent checks every block, and each range the child wrote, against its own model.
 */
static int forked(void)
{
	int go[2], st, empty = next() % 6 == 0;
	struct fork_log *log = &flog[depth + 1];
	unsigned k, fresh = SLOTS;
	char c;
	pid_t pid;

	opname = "fork";
	if (empty) {	/* nothing spilled live: the child must still get a file of its own */
		for (k = 0; k < SLOTS; k++)
			if (slots[k].p && slots[k].spilled && free_slot(k))
				return -1;
	}
	for (k = 0; k < SLOTS; k++) {
		struct sparse_seen v = seen(k);
		n.fork_blocks_with_holes += v.runs >= 2;
	}
	if (pipe(go))
		abort();
	log->n = 0;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("FAIL fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		depth++;
		rng ^= 0x5851f42d4c957f2dull;	/* the child's own sequence */
		alarm(120);
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		int bad = matrix_child_keeps(mode) ? child_keeps() : child_drops();
		fflush(stdout);
		_exit(bad || failed);
	}
	close(go[0]);
	opname = "parent, right after fork";
	for (unsigned i = 0; i < 4; i++)
		if ((k = live_slot(0)) != SLOTS)
			write_runs(k, 1 + (unsigned)below(4));
	if ((fresh = empty_slot()) != SLOTS) {
		if (alloc_into(fresh, 2 * T + below(2 * T), H_FORK_NEW))
			return -1;
		write_runs(fresh, 8);
	}
	if (write(go[1], "g", 1) != 1)
		abort();
	close(go[1]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		if (!failed++) {
			printf("FAIL seed=%llu op=%llu (fork) [SPILL_FORK=%s SPILL_ADVICE=%s%s]: the child failed (%s)\n",
			       seed, op, mode, advice, tmpfs ? " tmpfs" : "", rerun_status(st));
			reproduce_line();
		}
		return -1;
	}
	opname = "parent, after its child";
	for (unsigned i = 0; i < log->n; i++)
		if (verify_range(log->w[i].slot, log->w[i].off, log->w[i].len))
			return -1;
	if (fresh != SLOTS && verify(fresh, -1))
		return -1;
	for (k = 0; k < SLOTS; k++)
		if (slots[k].p && verify(k, 1))
			return -1;
	n.forks++;
	n.empty_forks += empty;
	return 0;
}

/* One operation, chosen at random; a fork child runs more of them (forking less deep). */
static void one_op(void)
{
	unsigned k = (unsigned)below(SLOTS), r = (unsigned)below(1000);
	struct slot *sl = &slots[k];

	if (r < (depth ? 20u : 3u) || (!depth && op == ops / 2 && !n.forks)) {
		if (depth < max_depth)
			forked();
	} else if (r < 60) {
		reuse();
	} else if (r < 120) {
		opname = "check";
		if (sl->p)
			verify(k, 4);
	} else if (!sl->p || r < 260) {
		if (!sl->p) {
			static const enum how pick[] = { H_MALLOC, H_MALLOC, H_MALLOC, H_CALLOC, H_CALLOC, H_MEMALIGN,
							 H_ALIGNED, H_POSIX, H_REALLOC_NULL, H_MALLOC };
			if (!alloc_into(k, pick_size(), pick[below(10)]) && sl->p)
				write_runs(k, (unsigned)below(4));
		} else {
			free_slot(k);
		}
	} else if (r < 560) {
		write_runs(k, 1 + (unsigned)below(6));
	} else {
		realloc_slot(k);
	}
}

static void report(double secs)
{
	printf("model: seed %llu, %llu ops [SPILL_FORK=%s SPILL_ADVICE=%s%s] in %.1f s: %llu writes (%llu runs), "
	       "%llu allocs (%llu spilled, %llu calloc, %llu aligned), %llu reallocs (%llu moved, %llu grown in place, "
	       "%llu shrunk, %llu crossed up, %llu on the heap), %llu frees, %llu reuses (%llu on the freed place), "
	       "%llu forks (%llu with nothing spilled live), %llu moves and %llu fork copies of blocks with holes; "
	       "%llu page checks, %s\n",
	       seed, ops, mode, advice, tmpfs ? " tmpfs" : "", secs, n.writes, n.runs, n.allocs, n.spilled_allocs,
	       n.callocs, n.aligned, n.reallocs, n.moved, n.in_place, n.shrunk, n.crossed_up, n.heap_reallocs, n.frees,
	       n.reuses, n.reused_place, n.forks, n.empty_forks, n.moved_with_holes, n.fork_blocks_with_holes, n.checks,
	       failed ? "FAILED" : "0 mismatches");
}

/* A run that did not reach the paths it is for must not pass. */
static int coverage(void)
{
	int bad = 0;

#define NEED(cond, what) do { if (!(cond)) { printf("FAIL coverage: %s\n", what); bad = 1; } } while (0)
	if (ops < 1000)
		return 0;
	NEED(n.moved > 0, "no realloc moved a spilled block");
	NEED(n.in_place > 0, "no spilled block grew in place");
	NEED(n.shrunk > 0, "no block shrank");
	NEED(n.crossed_up > 0, "no heap block crossed into a spilled one");
	NEED(n.reused_place > 0, "no block was made on a freed block's place");
	NEED(n.forks > 0, "no fork");
	NEED(!exact || n.moved_with_holes > 0, "no move of a block with holes (SEEK_DATA saw none)");
	NEED(!exact || n.forks == n.empty_forks || n.fork_blocks_with_holes > 0, "no fork copy of a block with holes");
#undef NEED
	return bad;
}

static int run(unsigned long long s, unsigned long long count)
{
	struct timespec t0, t1;
	struct statfs sfs;
	const char *m = getenv("SPILL_FORK"), *a = getenv("SPILL_ADVICE"), *t = getenv("SPILL_THRESHOLD");

	mode = m && *m ? m : "copy";
	advice = a && *a ? a : "normal";
	T = t ? strtoul(t, NULL, 10) << (strpbrk(t, "Mm") ? 20 : strpbrk(t, "Kk") ? 10 : 0) : 256 << 10;
	pg = (size_t)sysconf(_SC_PAGESIZE);
	tmpfs = getenv("SPILL_DIR") && statfs(getenv("SPILL_DIR"), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
	exact = tmpfs || !strcmp(advice, "random");
	shadow = mmap(NULL, SLOTS * SPAN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	flog = mmap(NULL, 3 * sizeof *flog, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shadow == MAP_FAILED || flog == MAP_FAILED) {
		printf("FAIL: cannot map the shadow (%s)\n", strerror(errno));
		return 1;
	}
	seed = s;
	ops = count;
	if (getenv("MODEL_TRACE"))
		trace_from = strtoull(getenv("MODEL_TRACE"), NULL, 0);
	if (getenv("MODEL_MAX_DEPTH"))
		max_depth = atoi(getenv("MODEL_MAX_DEPTH"));
	rng = s * 0x2545f4914f6cdd1du + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (op = 0; op < ops && !failed; op++)
		one_op();
	for (unsigned k = 0; k < SLOTS; k++) {
		if (slots[k].p && !failed) {
			opname = "final check";
			verify(k, -1);
		}
		if (slots[k].p)
			m_free(slots[k].p);
		slots[k].p = NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	report((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	munmap(shadow, SLOTS * SPAN);
	munmap(flog, 3 * sizeof *flog);
	return failed || coverage();
}

#ifndef MODEL_CORE
int main(int argc, char **argv)
{
	const char *o = getenv("MODEL_OPS"), *sd = getenv("MODEL_SEEDS");
	unsigned long long count = o ? strtoull(o, NULL, 0) : 3000, total = 0;
	char seeds[256], fm[32], adv[32], tmp[64], ss[32], os[32];
	int bad = 0, runs = 0, have_tmpfs;
	struct timespec t0, t1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 3 && !strcmp(argv[1], "one"))
		return run(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bad |= rerun_check_modes() != 0;
	if (getenv("MODEL_TMPFS") && !strcmp(getenv("MODEL_TMPFS"), "0")) {	/* check-vm's file systems */
		printf("note: MODEL_TMPFS=0: the tmpfs runs are left out\n");
		have_tmpfs = 0;
	} else {
		have_tmpfs = rerun_tmpfs_dir(tmp, sizeof tmp);
	}
	snprintf(seeds, sizeof seeds, "%s", sd ? sd : "1");
	snprintf(os, sizeof os, "%llu", count);
	for (const char *sp = seeds; matrix_next(&sp, ss, sizeof ss);)
		for (const char *fp = MATRIX_FORK_MODES; matrix_next(&fp, fm, sizeof fm);)
			for (const char *ap = MATRIX_ADVICE " tmpfs"; matrix_next(&ap, adv, sizeof adv);) {
				int on_tmpfs = !strcmp(adv, "tmpfs");	/* normal advice, SPILL_DIR on tmpfs */
				if (on_tmpfs && !have_tmpfs)
					continue;
				const char *const kv[] = { "SPILL_FORK", fm, "SPILL_ADVICE", on_tmpfs ? "normal" : adv,
							   on_tmpfs ? "SPILL_DIR" : NULL, tmp, NULL };
				char *const args[] = { argv[0], "one", ss, os, NULL };
				int st = rerun(NULL, args, kv, NULL, 0);
				runs++;
				total += count;
				if (st) {
					printf("  (that run: %s)\n", rerun_status(st));
					bad = 1;
				}
			}
	if (have_tmpfs)
		rmdir(tmp);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("model: %d run(s), %llu operations in all, %.1f s: %s\n", runs, total,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, bad ? "FAILED" : "ok");
	return bad;
}
#endif
