/* SPDX-License-Identifier: MIT */
/*
 * sparse.c - blocks with holes through the exported allocator: realloc moves and
 * reallocarray, the crossing from the heap into a spilled block, calloc and sparse blocks
 * on the places of freed blocks, and fork() under every mode of matrix.h. Runs itself again
 * for every fork mode x SPILL_ADVICE, and once more with SPILL_DIR on tmpfs, where
 * SEEK_DATA never reads around. sparse.env: SPILL_THRESHOLD=256K.
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
#include <sys/wait.h>
#include <unistd.h>

#include "rerun.h"
#include "sparse.h"
#include "spillfile.h"

static size_t T, pg;
static int failures, exact;
static const char *mode, *advice;
static uintptr_t spill_base;
static int seek_fd = -1;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		printf("FAIL [SPILL_FORK=%s SPILL_ADVICE=%s%s] %s:%d: ", mode, advice, exact == 2 ? " tmpfs" : "", \
		       __FILE__, __LINE__); \
		printf(__VA_ARGS__); \
		putchar('\n'); \
		failures++; \
	} \
} while (0)

/*
 * The compiler may drop a malloc whose pointer goes nowhere, and stores into a block that is
 * freed before anything reads it: blocks that are neighbours or hold data only to be freed
 * go through here.
 */
static void *volatile sink;

static void *keep(void *p)
{
	sink = p;
	return p;
}

static size_t round_pg(size_t n)
{
	return (n + pg - 1) & ~(pg - 1);
}

static int spilled(const void *p)
{
	uintptr_t lo, hi;
	return spillfile_range(&lo, &hi) == 0 && (uintptr_t)p >= lo && (uintptr_t)p < hi;
}

static void find_spill_file(void)
{
	uintptr_t hi;
	if (spillfile_range(&spill_base, &hi) == 0)
		seek_fd = spillfile_open();
}

static struct sparse_seen seen(const void *p, size_t size)
{
	struct sparse_seen none = { 0, 0, 0 };
	if (seek_fd < 0)
		return none;
	return sparse_seek(seek_fd, (uint64_t)((uintptr_t)p - spill_base), round_pg(size));
}

static int expect(const unsigned char *b, size_t len, const struct sparse_pattern *pt, uint64_t seed, const char *what)
{
	char why[256];
	size_t at = sparse_check(b, len, pt, seed, why, sizeof why);
	CHECK(at == (size_t)-1, "%s: %s", what, why);
	return at == (size_t)-1;
}

static struct sparse_pattern pats[16];
static unsigned npats;

struct fenced {
	unsigned char *before, *p, *after;
};

/* BEFORE | P | AFTER adjacent: only in a process that has freed no spilled block yet. */
static struct fenced fence(size_t size)
{
	struct fenced f;
	f.before = malloc(T);
	f.p = malloc(size);
	f.after = malloc(T);
	CHECK(f.p == f.before + T && f.after == f.p + round_pg(size),
	      "blocks of a fresh process are not adjacent: %p %p %p", (void *)f.before, (void *)f.p, (void *)f.after);
	memset(f.before, 0x11, T);	/* data right before and after: a copy must stop at the ends */
	memset(f.after, 0x22, T);
	return f;
}

static int guards_ok(const struct fenced *f)
{
	for (size_t i = 0; i < T; i++)
		if (f->before[i] != 0x11 || f->after[i] != 0x22)
			return 0;
	return 1;
}

/* The moves: every pattern, then a block that crossed from the heap. */
static void moves(void)
{
	struct fenced f[16], cross;
	size_t small = T - 123, usable, big = 3 * T + 5;
	struct sparse_pattern cp = { .name = "crossed from the heap", .size = 8 * T + 1 };
	unsigned with_holes = 0, wide = 0, wide_seen = 0;

	/* all placed before anything is freed, so that each has a live neighbour on both sides */
	for (unsigned k = 0; k < npats; k++)
		f[k] = fence(pats[k].size);
	unsigned char *h = malloc(small);
	CHECK(!spilled(h), "a %zu-byte block spilled with SPILL_THRESHOLD=%zu", small, T);
	usable = malloc_usable_size(h);
	sparse_gen(h, 77, 0, usable);
	cross.before = NULL;
	cross.p = realloc(h, big);
	cross.after = keep(malloc(T));
	CHECK(spilled(cross.p) && cross.after == cross.p + round_pg(big), "the heap block did not cross into a spilled one");
	sparse_add(&cp, 0, usable);
	expect(cross.p, usable, &cp, 77, "heap to spill: the copied bytes");	/* the prefix only: keep the holes */
	sparse_add(&cp, 2 * T + 1, pg);
	sparse_add(&cp, big - 1, 1);
	sparse_write(cross.p, &cp, 77);

	/*
	 * From the highest block down: reading a source (the copy does, for holes inside the
	 * chunks it copies whole) makes the kernel read ahead into the blocks above it, and
	 * those have moved already.
	 */
	struct sparse_seen s = seen(cross.p, big);
	uintptr_t was = (uintptr_t)cross.p;
	unsigned char *q = realloc(cross.p, cp.size);
	CHECK(q && (uintptr_t)q != was, "the crossed block did not move");
	if (q)
		expect(q, cp.size, &cp, 77, "crossed from the heap, then moved");
	for (unsigned k = npats; k-- > 0;) {
		const struct sparse_pattern *pt = &pats[k];
		sparse_write(f[k].p, pt, 100 + k);
		struct sparse_seen v = seen(f[k].p, pt->size);
		with_holes += v.runs >= 2;
		if (pt->wide_holes) {
			wide++;
			wide_seen += v.runs >= 2;
			CHECK(!exact || v.runs >= 2, "%s: SEEK_DATA sees %u run(s): the move would not skip holes",
			      pt->name, v.runs);
		}
		/* reallocarray for the odd ones: the same path under another name */
		size_t grown = pt->size * 2 + 3;
		uintptr_t was = (uintptr_t)f[k].p;	/* the old pointer may not be compared after realloc */
		unsigned char *q = k % 2 ? reallocarray(f[k].p, grown, 1) : realloc(f[k].p, grown);
		CHECK(q && (uintptr_t)q != was, "%s: boxed in, yet realloc did not move it (%#lx -> %p)", pt->name,
		      (unsigned long)was, (void *)q);
		if (!q)
			continue;
		expect(q, grown, pt, 100 + k, "realloc move");
		CHECK(guards_ok(&f[k]), "%s: a neighbour changed", pt->name);
		f[k].p = q;
	}
	printf("  realloc moves: %u patterns (%u with several data runs as SEEK_DATA sees them, %u of the %u with wide "
	       "holes), one heap block crossed and moved (%u data runs)\n", npats, with_holes, wide_seen, wide, s.runs);
	for (unsigned k = 0; k < npats; k++)
		free(f[k].before), free(f[k].p), free(f[k].after);
	free(q);
	free(cross.after);
}

/* New blocks on the places of freed ones: calloc reads zero, and sparse data survives a move. */
static void reuse(void)
{
	unsigned char *a = keep(malloc(4 * T)), *b = keep(malloc(4 * T)), *fence_ = keep(malloc(T));
	struct sparse_pattern pt = { .name = "on a freed neighbour's place", .size = 6 * T + 5 };
	int reused = 0;

	memset(a, 0xaa, 4 * T);
	memset(b, 0xbb, 4 * T);
	/* addresses as numbers, taken while the blocks live: a freed pointer may not be compared */
	uintptr_t at_a = (uintptr_t)a, at_b = (uintptr_t)b;
	free(a);
	free(b);
	unsigned char *x = malloc(pt.size);	/* across both freed blocks, where they were kept */
	uintptr_t at_x = (uintptr_t)x;
	reused += at_x == at_a && at_b == at_a + 4 * T;
	sparse_add(&pt, 1, 1);
	sparse_add(&pt, 4 * T - 1, 2);
	sparse_add(&pt, pt.size - 1, 1);
	sparse_write(x, &pt, 9);
	unsigned char *box = keep(malloc(T));
	unsigned char *y = realloc(x, 12 * T);
	expect(y, 12 * T, &pt, 9, "sparse block on freed blocks' place, moved");
	unsigned char *z = calloc(T, 2);	/* on the place x had: calloc must read zero there */
	reused += (uintptr_t)z == at_a;
	for (size_t i = 0; i < 2 * T; i++)
		if (z[i]) {
			CHECK(0, "calloc on a freed block's place: byte %zu is 0x%02x", i, z[i]);
			break;
		}
	CHECK(reused == 2, "new blocks did not take the freed blocks' places (%d of 2): reuse not exercised "
	      "(freed %#lx and %#lx, new %#lx and %p)", reused, (unsigned long)at_a, (unsigned long)at_b,
	      (unsigned long)at_x, (void *)z);
	printf("  reuse of freed blocks' places: calloc reads zero, a sparse block on them moves intact\n");
	free(z), free(y), free(box), free(fence_);
}

/* fork() under this run's mode, with every pattern live and holes in each. */
static void forked(void)
{
	unsigned char *b[16], *after[16];
	int go[2], st;
	char c;
	pid_t pid;

	for (unsigned k = 0; k < npats; k++) {
		b[k] = malloc(pats[k].size);
		after[k] = keep(malloc(T));
		sparse_write(b[k], &pats[k], 200 + k);
	}
	if (pipe(go))
		abort();
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		if (matrix_child_keeps(mode)) {
			for (unsigned k = 0; k < npats; k++)
				expect(b[k], round_pg(pats[k].size), &pats[k], 200 + k, "fork child sees the block as at fork()");
			for (unsigned k = 0; k < npats; k++)
				b[k][pats[k].size / 3] = 0xc1;
			unsigned char *m = realloc(b[0], 4 * pats[0].size);	/* a move in the child's own file */
			CHECK(m && m[pats[0].size / 3] == 0xc1, "fork child: realloc lost the data");
			free(b[1]);
			unsigned char *n = malloc(3 * T);
			CHECK(n && spilled(n), "fork child: a new large block did not spill");
			if (n)
				memset(n, 0xc2, 3 * T);
		} else {
			free(b[1]);
			errno = 0;
			CHECK(!realloc(b[0], 4 * pats[0].size) && errno == ENOMEM, "drop child: realloc of an inherited block");
			unsigned char *n = malloc(3 * T);
			CHECK(n && !spilled(n), "drop child: a new large block is %s", n ? "spilled" : "NULL");
			if (n)
				memset(n, 0xc3, 3 * T);
		}
		fflush(stdout);
		_exit(failures != 0);
	}
	for (unsigned k = 0; k < npats; k++)
		b[k][pats[k].size / 2] ^= 0x80;	/* right after fork() returns */
	if (write(go[1], "g", 1) != 1 || waitpid(pid, &st, 0) != pid)
		abort();
	close(go[0]), close(go[1]);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child: %s", rerun_status(st));
	for (unsigned k = 0; k < npats; k++) {
		b[k][pats[k].size / 2] ^= 0x80;
		expect(b[k], round_pg(pats[k].size), &pats[k], 200 + k, "parent after the child");
		free(b[k]), free(after[k]);
	}
	printf("  fork: %u blocks with holes, isolation both ways\n", npats);
}

/*
 * A spill file but no live spilled block at fork(): at aad6aa0 a copy-mode child kept the
 * parent's file and mapping, and the blocks both allocated next shared the same file pages.
 */
static void forked_with_nothing_live(void)
{
	int go[2], back[2], st;
	char c;
	pid_t pid;

	if (pipe(go) || pipe(back))
		abort();
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		unsigned char *n = keep(malloc(2 * T));
		int bad = 0;
		alarm(60);
		memset(n, 'C', 2 * T);
		if (write(back[1], "c", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		for (size_t i = 0; i < 2 * T; i += pg)
			bad |= n[i] != 'C';
		_exit(bad);
	}
	unsigned char *a = keep(malloc(2 * T));
	size_t foreign = 0;
	if (read(back[0], &c, 1) != 1)
		abort();
	for (size_t i = 0; i < 2 * T; i += pg)
		foreign += a[i] != 0;
	memset(a, 'P', 2 * T);
	if (write(go[1], "p", 1) != 1 || waitpid(pid, &st, 0) != pid)
		abort();
	close(go[0]), close(go[1]), close(back[0]), close(back[1]);
	CHECK(!foreign && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "fork with no live spilled block: the parent's new block holds %zu pages the child "
	      "wrote, the child %s: they share one spill file", foreign, WEXITSTATUS(st) ? "sees the parent's" : "ok");
	free(a);
	printf("  fork with no live spilled block: parent and child apart: %s\n", foreign ? "NO" : "ok");
}

/* One configuration (the environment's), one PHASE, in a fresh process: placement is known. */
static int one(const char *phase)
{
	struct statfs sfs;
	const char *m = getenv("SPILL_FORK");

	mode = m && *m ? m : "copy";
	advice = getenv("SPILL_ADVICE") ? getenv("SPILL_ADVICE") : "normal";
	exact = !strcmp(advice, "random");
	if (statfs(getenv("SPILL_DIR"), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
		exact = 2;
	if (!strcmp(phase, "moves")) {
		unsigned char *first = keep(malloc(T));	/* makes the spill file, stays live */
		CHECK(spilled(first), "a %zu-byte block did not spill", T);
		find_spill_file();
		CHECK(seek_fd >= 0, "cannot find the spill file in /proc/self/fd");
		moves();
		free(first);
	} else if (!strcmp(phase, "reuse")) {
		reuse();
	} else {
		forked();
		forked_with_nothing_live();
	}
	return failures != 0;
}

static int run_phases(char *self, const char *const *kv)
{
	static const char *const phases[] = { "moves", "reuse", "fork" };
	int bad = 0;

	for (unsigned i = 0; i < 3; i++) {
		char *const args[] = { self, "one", (char *)phases[i], NULL };
		int st = rerun(NULL, args, kv, NULL, 0);
		if (st) {
			printf("  phase %s: %s\n", phases[i], rerun_status(st));
			bad = 1;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	const char *t = getenv("SPILL_THRESHOLD");
	char fm[32], adv[32], tmpfs[64];
	int runs = 0, failed = 0, have_tmpfs;

	setvbuf(stdout, NULL, _IOLBF, 0);
	T = t ? strtoul(t, NULL, 10) << (strchr(t, 'M') ? 20 : strchr(t, 'K') ? 10 : 0) : 256 << 10;
	pg = (size_t)sysconf(_SC_PAGESIZE);
	npats = sparse_patterns(pats, pg);
	if (argc > 2 && !strcmp(argv[1], "one"))
		return one(argv[2]);

	failed += rerun_check_modes() != 0;
	have_tmpfs = rerun_tmpfs_dir(tmpfs, sizeof tmpfs);
	for (const char *fp = MATRIX_FORK_MODES; matrix_next(&fp, fm, sizeof fm);) {
		for (const char *ap = MATRIX_ADVICE; matrix_next(&ap, adv, sizeof adv);) {
			const char *const kv[] = { "SPILL_FORK", fm, "SPILL_ADVICE", adv, NULL };
			printf("SPILL_FORK=%s SPILL_ADVICE=%s:\n", fm, adv);
			failed += run_phases(argv[0], kv);
			runs++;
		}
		if (have_tmpfs) {
			const char *const kv[] = { "SPILL_FORK", fm, "SPILL_DIR", tmpfs, NULL };
			printf("SPILL_FORK=%s SPILL_DIR on tmpfs:\n", fm);
			failed += run_phases(argv[0], kv);
			runs++;
		}
	}
	if (have_tmpfs)
		rmdir(tmpfs);
	printf("sparse: %d configuration(s), %d failed\n", runs, failed);
	puts(failed ? "FAILED" : "ok");
	return failed != 0;
}
