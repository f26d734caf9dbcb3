/* SPDX-License-Identifier: MIT */
/* check_copy.c - blocks with holes through every path that copies or moves a spilled block. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "copytest.h"

static struct sparse_pattern pats[16];
static unsigned npats;

static void load_patterns(void)
{
	npats = sparse_patterns(pats, pg);
}

/* Data right next to a block on both sides: a copy must stop at the block's ends. */
static unsigned char *guard_before, *guard_after;

static void write_guard(unsigned char *g, uint64_t seed)
{
	sparse_gen(g, seed, 0, 2 * pg);
}

static void expect_guard(const unsigned char *g, uint64_t seed, const char *which, const char *pat)
{
	size_t i = 0;	/* one assertion, not one per byte: Check records every assertion that passes */

	while (i < 2 * pg && g[i] == sparse_byte(seed, i))
		i++;
	ck_assert_msg(i == 2 * pg, "%s: the guard block %s it changed at byte %zu", pat, which, i);
}

/* BEFORE | block | AFTER, adjacent in the file; guards written with WRITE (mapping or pwrite). */
static unsigned char *fenced(size_t size)
{
	unsigned char *p;

	guard_before = must_spill(2 * pg, 0);
	p = must_spill(size, 0);
	guard_after = must_spill(2 * pg, 0);
	ck_assert_ptr_eq(p, guard_before + 2 * pg);
	ck_assert_ptr_eq(guard_after, p + round_pg(size));
	return p;
}

static void pwrite_all(uint64_t off, const unsigned char *buf, size_t len)
{
	ck_assert_int_eq(pwrite(spill_file.fd, buf, len, (off_t)off), (ssize_t)len);
}

/* The pattern's runs written with pwrite: no fault, so no read-around: exact holes everywhere. */
static void pwrite_pattern(unsigned char *p, const struct sparse_pattern *pt, uint64_t seed)
{
	for (unsigned r = 0; r < pt->nruns; r++) {
		unsigned char *buf = malloc(pt->run[r].len);
		sparse_gen(buf, seed, pt->run[r].off, pt->run[r].len);
		pwrite_all(off_of(p) + pt->run[r].off, buf, pt->run[r].len);
		free(buf);
	}
}

/*
 * spill_backing_copy_fd itself, within the file and into a second file at another offset
 * (as fork does). VIA_PWRITE writes the source without faults, so holes stay exact even
 * under MADV_NORMAL.
 */
static void copy_fd_case(int via_pwrite)
{
	unsigned shown = 0, with_holes = 0;

	load_patterns();
	for (unsigned k = 0; k < npats; k++) {
		const struct sparse_pattern *pt = &pats[k];
		uint64_t seed = 1000 + k, len;
		unsigned char *src = fenced(pt->size), *dst, *other;
		int fd2;

		len = round_pg(pt->size);
		if (via_pwrite) {
			unsigned char *g = malloc(2 * pg);
			sparse_gen(g, 1, 0, 2 * pg);
			pwrite_all(off_of(guard_before), g, 2 * pg);
			sparse_gen(g, 2, 0, 2 * pg);
			pwrite_all(off_of(guard_after), g, 2 * pg);
			free(g);
			pwrite_pattern(src, pt, seed);
		} else {
			write_guard(guard_before, 1);
			write_guard(guard_after, 2);
			sparse_write(src, pt, seed);
		}
		struct sparse_seen s = expect_holes(src, pt, via_pwrite || var->exact);
		with_holes += s.runs >= 2 || (s.runs && (s.lead_hole || s.tail_hole));
		if (shown++ < npats)
			printf("  %-45s %2u run(s) in the pattern, SEEK_DATA sees %2u%s%s\n", pt->name, pt->nruns, s.runs,
			       s.lead_hole ? ", leading hole" : "", s.tail_hole ? ", trailing hole" : "");

		dst = must_spill(pt->size, 0);
		ck_assert_int_eq(spill_backing_copy_fd(spill_file.fd, spill_file.fd, off_of(src), off_of(dst), len), 0);
		expect_pattern(dst, len, pt, seed, "copy within the file");

		/* another file, another offset: the fork path */
		fd2 = spill_backing_new_file(spill_cfg.dir);
		ck_assert_int_ge(fd2, 0);
		uint64_t at = off_of(src) + 3 * pg;
		ck_assert_int_eq(fallocate(fd2, 0, (off_t)at, (off_t)len), 0);
		ck_assert_int_eq(spill_backing_copy_fd(spill_file.fd, fd2, off_of(src), at, len), 0);
		other = mmap(NULL, len, PROT_READ, MAP_SHARED, fd2, (off_t)at);
		ck_assert_ptr_ne(other, MAP_FAILED);
		expect_pattern(other, len, pt, seed, "copy into another file");
		munmap(other, len);
		close(fd2);

		expect_pattern(src, len, pt, seed, "the source after its copies");
		expect_guard(guard_before, 1, "before", pt->name);
		expect_guard(guard_after, 2, "after", pt->name);
		spill_free(dst);
		spill_free(src);
		spill_free(guard_before);
		spill_free(guard_after);
		spill_flush_kept();	/* the next pattern starts at the same offsets, on fresh holes */
	}
	if (via_pwrite || var->exact)
		ck_assert_uint_ge(with_holes, npats - 2);	/* all but "all data" and the read-around ones */
}

START_TEST(test_copy_fd_mapped)
{
	setup_variant(_i, NULL);
	copy_fd_case(0);
	teardown_variant();
}
END_TEST

START_TEST(test_copy_fd_pwrite)
{
	setup_variant(_i, NULL);
	copy_fd_case(1);
	teardown_variant();
}
END_TEST

/* realloc that moves (a neighbour boxes the block in), grows in place, and shrinks. */
START_TEST(test_realloc_paths)
{
	setup_variant(_i, NULL);
	load_patterns();
	for (unsigned k = 0; k < npats; k++) {
		const struct sparse_pattern *pt = &pats[k];
		uint64_t seed = 2000 + k;
		size_t grown = pt->size * 2 + 3;
		unsigned char *p = fenced(pt->size), *q;

		write_guard(guard_before, 1);
		write_guard(guard_after, 2);
		sparse_write(p, pt, seed);
		expect_holes(p, pt, var->exact);
		q = spill_realloc(p, grown);
		ck_assert_ptr_nonnull(q);
		ck_assert_msg(q != p, "%s: the block was boxed in but did not move", pt->name);
		expect_pattern(q, grown, pt, seed, "realloc move");
		expect_guard(guard_before, 1, "before", pt->name);
		expect_guard(guard_after, 2, "after", pt->name);
		spill_free(guard_after);

		/* the moved block has room after it: growth in place, a shrink, growth again within its room */
		ck_assert_ptr_eq(spill_realloc(q, grown + pg + 1), q);
		expect_pattern(q, grown + pg + 1, pt, seed, "realloc grow in place");
		ck_assert_ptr_eq(spill_realloc(q, pt->size / 2 + 1), q);
		expect_pattern(q, pt->size / 2 + 1, pt, seed, "realloc shrink");
		unsigned char *r = spill_realloc(q, 2 * pt->size + 5 * pg);
		ck_assert_ptr_eq(r, q);
		struct sparse_pattern cut = *pt;
		while (cut.nruns && cut.run[cut.nruns - 1].off >= pt->size / 2 + 1)
			cut.nruns--;
		if (cut.nruns && cut.run[cut.nruns - 1].off + cut.run[cut.nruns - 1].len > pt->size / 2 + 1)
			cut.run[cut.nruns - 1].len = pt->size / 2 + 1 - cut.run[cut.nruns - 1].off;
		/* the bytes of the last page past the shrunk size are unspecified; the rest reads as before */
		expect_pattern(r, pt->size / 2 + 1, &cut, seed, "realloc after shrink");
		struct sparse_pattern none = { .name = "past the shrunk size's last page" };
		size_t tail = round_pg(pt->size / 2 + 1);
		expect_pattern(r + tail, 2 * pt->size + 5 * pg - tail, &none, 0, "growth after a shrink reads as zero");
		spill_free(r);
		spill_free(guard_before);
		spill_flush_kept();
	}
	teardown_variant();
}
END_TEST

/* A block of the normal allocator that crosses the threshold, then gets holes and moves. */
START_TEST(test_realloc_cross)
{
	const size_t T = MiB;
	static const size_t small[] = { 1, 4095, 4097, 65536 + 3, 200000, MiB - 1 };

	setup_variant(_i, NULL);
	for (unsigned k = 0; k < sizeof small / sizeof small[0]; k++) {
		unsigned char *p = malloc(small[k]), *q, *box, *r;
		size_t usable = malloc_usable_size(p), big = 3 * T + 5;
		struct sparse_pattern pt = { .name = "crossed from the heap", .size = 8 * T + 1 };
		uint64_t seed = 3000 + k;

		ck_assert(!spill_is_ours(p));
		sparse_gen(p, seed, 0, usable);	/* up to the usable size: realloc keeps those bytes too */
		q = spill_realloc(p, big);
		ck_assert(spill_is_ours(q));
		sparse_add(&pt, 0, usable < big ? usable : big);
		/* only the copied prefix is read now: reading the rest would fill the holes the move must skip */
		expect_pattern(q, pt.run[0].len, &pt, seed, "heap to spill");
		box = must_spill(pg, 0);
		ck_assert_ptr_eq(box, q + round_pg(big));
		/* holes after the copied prefix, a one-page run, the last byte */
		sparse_add(&pt, 2 * T + 1, pg);
		sparse_add(&pt, big - 1, 1);
		sparse_write(q, &pt, seed);	/* rewrites the prefix with the same bytes */
		pt.size = 8 * T + 1;
		r = spill_realloc(q, pt.size);
		ck_assert_ptr_ne(r, q);
		expect_pattern(r, pt.size, &pt, seed, "heap to spill, then a move");
		spill_free(r);
		spill_free(box);
		spill_flush_kept();
	}
	teardown_variant();
}
END_TEST

/*
 * fork() with every pattern live, under every fork mode: the child sees each block as it
 * was at fork() (modes that keep blocks), not the parent's writes made after fork()
 * returned; the parent never sees the child's writes, frees or moves.
 */
struct live {
	unsigned char *p;
	const struct sparse_pattern *pt;
	uint64_t seed;
};

static struct live lives[16];
static unsigned char *box_after[16];

static int child_checks(const struct live *l, unsigned n)
{
	char why[256];
	int bad = 0;

	for (unsigned k = 0; k < n; k++) {
		size_t at = sparse_check(l[k].p, round_pg(l[k].pt->size), l[k].pt, l[k].seed, why, sizeof why);
		if (at != (size_t)-1) {
			printf("FAIL fork child [%s, %s, SPILL_FORK=%s]: %s\n", var->fs, var->advice,
			       getenv("SPILL_FORK"), why);
			bad = 1;
		}
	}
	return bad;
}

/* The keeping child: checks, then writes into holes and data, moves one block, frees one. */
static int child_keeps(unsigned n)
{
	int bad = child_checks(lives, n);

	for (unsigned k = 0; k < n; k++) {
		lives[k].p[lives[k].pt->size / 3] = 0xc1;
		lives[k].p[lives[k].pt->size - 1] ^= 0xff;
	}
	unsigned char *moved = spill_realloc(lives[0].p, lives[0].pt->size * 3);
	bad |= !moved || moved[lives[0].pt->size / 3] != 0xc1;
	spill_free(lives[1].p);
	unsigned char *fresh = spill_alloc(3 * MiB, 0, 0);
	bad |= !fresh || !spill_is_ours(fresh);
	if (fresh)
		memset(fresh, 0xc2, 3 * MiB);
	return bad;
}

/* The dropping child: the blocks are gone; free is fine, realloc says ENOMEM, new blocks are RAM. */
static int child_drops(void)
{
	int bad = 0;

	spill_free(lives[1].p);
	errno = 0;
	if (spill_realloc(lives[0].p, 2 * lives[0].pt->size) || errno != ENOMEM) {
		printf("FAIL drop child: realloc of an inherited block did not fail with ENOMEM\n");
		bad = 1;
	}
	unsigned char *fresh = spill_alloc(3 * MiB, 0, 0);
	if (!fresh || spill_is_ours(fresh)) {
		printf("FAIL drop child: a new block is %s\n", fresh ? "spilled" : "NULL");
		bad = 1;
	} else {
		memset(fresh, 0xc3, 3 * MiB);
	}
	return bad;
}

static void fork_once(const char *mode, unsigned n)
{
	int go[2], st;
	char c = 0;
	pid_t pid;

	setenv("SPILL_FORK", mode, 1);
	spill_config_load(&spill_cfg, env_get);
	ck_assert_int_eq(pipe(go), 0);
	fflush(stdout);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(60);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		_exit(matrix_child_keeps(mode) ? child_keeps(n) : child_drops());
	}
	/* right after fork() returns: the parent writes where the child will look */
	for (unsigned k = 0; k < n; k++)
		lives[k].p[lives[k].pt->size / 2] ^= 0x80;
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(go[0]);
	close(go[1]);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SPILL_FORK=%s child: status 0x%x", mode, st);
	for (unsigned k = 0; k < n; k++) {
		unsigned char *b = lives[k].p;
		size_t h = lives[k].pt->size / 2;
		b[h] ^= 0x80;	/* undo the parent's own write; the child's must not be there at all */
		expect_pattern(b, round_pg(lives[k].pt->size), lives[k].pt, lives[k].seed, "parent after the child");
	}
}

START_TEST(test_fork_modes)
{
	char mode[32];
	unsigned n;

	setup_variant(_i, NULL);
	load_patterns();
	n = npats;
	/* fresh blocks for every mode: the checks after a fork read the holes full */
	for (const char *at = MATRIX_FORK_MODES; matrix_next(&at, mode, sizeof mode);) {
		for (unsigned k = 0; k < n; k++) {
			lives[k] = (struct live){ must_spill(pats[k].size, 0), &pats[k], 4000 + k };
			box_after[k] = must_spill(pg, 0);	/* so that the child's realloc moves */
		}
		for (unsigned k = 0; k < n; k++) {
			sparse_write(lives[k].p, lives[k].pt, lives[k].seed);
			expect_holes(lives[k].p, lives[k].pt, var->exact);
		}
		fork_once(mode, n);
		printf("  SPILL_FORK=%s: %u blocks with holes, isolation both ways: ok\n", mode, n);
		for (unsigned k = 0; k < n; k++) {
			spill_free(lives[k].p);
			spill_free(box_after[k]);
		}
		spill_flush_kept();
	}
	teardown_variant();
}
END_TEST

/*
 * SPILL_FORK=copy when the child's copy does not fit (here SPILL_MAX is below what is live):
 * the child keeps its blocks as copies in RAM and spills nothing new, as documented. It can
 * still resize them: before 2026-11-30 its realloc failed with ENOMEM, as under
 * SPILL_FORK=drop, where the blocks are gone. The model test found it on the 64 MiB file
 * systems of make check-vm.
 */
static int child_without_file(unsigned n)
{
	char why[256];
	int bad = child_checks(lives, n);

	for (unsigned k = 0; k < n; k++) {
		size_t size = lives[k].pt->size;
		size_t to = k % 2 ? size / 2 + 1 : 3 * size;	/* shrink or grow, both leave the heap's copy */
		unsigned char *q = spill_realloc(lives[k].p, to);
		if (!q || spill_is_ours(q)) {
			printf("FAIL child without a file: realloc of %s to %zu gave %s (errno %d)\n", lives[k].pt->name,
			       to, q ? "a spilled block" : "NULL", errno);
			bad = 1;
			continue;
		}
		if (sparse_check(q, to < size ? to : size, lives[k].pt, lives[k].seed, why, sizeof why) != (size_t)-1) {
			printf("FAIL child without a file: after realloc to %zu: %s\n", to, why);
			bad = 1;
		}
		memset(q, 0xc4, to);
		free(q);	/* the unit tests' core is not interposed: the heap's free */
	}
	unsigned char *fresh = spill_alloc(3 * MiB, 0, 0);
	if (!fresh || spill_is_ours(fresh)) {
		printf("FAIL child without a file: a new block is %s\n", fresh ? "spilled" : "NULL");
		bad = 1;
	}
	free(fresh);
	return bad;
}

START_TEST(test_fork_copy_no_room)
{
	char out[8192];
	int st, err[2], saved;
	ssize_t len;
	unsigned n;
	pid_t pid;

	setup_variant(_i, NULL);
	load_patterns();
	n = npats;
	for (unsigned k = 0; k < n; k++) {
		lives[k] = (struct live){ must_spill(pats[k].size, 0), &pats[k], 5000 + k };
		box_after[k] = must_spill(pg, 0);
		sparse_write(lives[k].p, lives[k].pt, lives[k].seed);
	}
	setenv("SPILL_FORK", "copy", 1);
	spill_config_load(&spill_cfg, env_get);
	spill_cfg.max = pg;	/* the child's copy exceeds SPILL_MAX */
	/* the fork's message comes from the child's atfork handler: stderr is the pipe from before it */
	ck_assert_int_eq(pipe(err), 0);
	saved = dup(STDERR_FILENO);
	dup2(err[1], STDERR_FILENO);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		_exit(child_without_file(n));
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(err[1]);
	ck_assert_int_ge(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	len = read(err[0], out, sizeof out - 1);
	out[len > 0 ? len : 0] = '\0';
	close(err[0]);
	spill_config_load(&spill_cfg, env_get);
	ck_assert_msg(strstr(out, "libspill: fork: cannot give the child a spill file of its own ("), "stderr: %s", out);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child without a file: status 0x%x; %s", st, out);
	for (unsigned k = 0; k < n; k++) {
		expect_pattern(lives[k].p, round_pg(lives[k].pt->size), lives[k].pt, lives[k].seed, "parent after the child");
		spill_free(lives[k].p);
		spill_free(box_after[k]);
	}
	printf("  SPILL_FORK=copy, no room for the child's copy: its %u blocks resized on the heap: ok\n", n);
	teardown_variant();
}
END_TEST

/*
 * A process whose spill file exists but holds no live block forks. At aad6aa0 a copy-mode
 * child then skipped child_rehome() and kept the parent's file and MAP_SHARED mapping, so
 * both carved their next blocks from the same offsets and saw each other's data.
 */
START_TEST(test_fork_no_live_block)
{
	char mode[32];

	setup_variant(_i, NULL);
	spill_free(must_spill(2 * MiB, 0));	/* the file exists; nothing is live */
	for (const char *at = MATRIX_FORK_MODES; matrix_next(&at, mode, sizeof mode);) {
		int go[2], back[2], st;
		char c;
		pid_t pid;

		setenv("SPILL_FORK", mode, 1);
		spill_config_load(&spill_cfg, env_get);
		ck_assert_int_eq(pipe(go), 0);
		ck_assert_int_eq(pipe(back), 0);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			unsigned char *b = spill_alloc(2 * MiB, 0, 0);
			int bad = !b;
			alarm(60);
			if (b)
				memset(b, 'C', 2 * MiB);
			if (write(back[1], "c", 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(3);
			for (size_t i = 0; b && i < 2 * MiB; i += pg)
				bad |= b[i] != 'C';
			if (bad)
				printf("FAIL SPILL_FORK=%s child: its new block shows the parent's writes\n", mode);
			_exit(bad);
		}
		unsigned char *a = must_spill(2 * MiB, 0);
		ck_assert_int_eq(read(back[0], &c, 1), 1);	/* the child has written its block */
		size_t seen = 0;
		for (size_t i = 0; i < 2 * MiB; i += pg)
			seen += a[i] != 0;
		memset(a, 'P', 2 * MiB);
		ck_assert_int_eq(write(go[1], "p", 1), 1);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		close(go[0]), close(go[1]), close(back[0]), close(back[1]);
		ck_assert_msg(seen == 0, "SPILL_FORK=%s with no live spilled block: the parent's "
			      "new block shows %zu pages the child wrote: parent and child share the spill file", mode, seen);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SPILL_FORK=%s with no live spilled block: child status 0x%x",
			      mode, st);
		spill_free(a);
		printf("  SPILL_FORK=%s with no live block: parent and child separate: ok\n", mode);
	}
	teardown_variant();
}
END_TEST

/*
 * Kept extents: two freed neighbours full of data are merged in the kept set, and a new
 * block carved across both must read as zero wherever it was not written, through a move
 * and a fork copy; a calloc from the rest of them too.
 */
START_TEST(test_kept_reuse)
{
	unsigned char *n1, *n2, *fence, *x, *moved, *z, *box;
	struct sparse_pattern pt = { .name = "carved from two freed neighbours", .size = 3 * MiB + 5 };
	uint64_t seed = 5000;
	int st;

	setup_variant(_i, NULL);
	n1 = must_spill(2 * MiB, 0);
	n2 = must_spill(2 * MiB, 0);
	fence = must_spill(pg, 0);
	ck_assert_ptr_eq(n2, n1 + 2 * MiB);
	memset(n1, 0xee, 2 * MiB);
	memset(n2, 0xdd, 2 * MiB);
	spill_free(n1);
	spill_free(n2);
	x = must_spill(pt.size, 0);
	printf("  kept set in use: %s (block %s the freed neighbours' place)\n", spill_file.can_zero ? "yes" : "no (tmpfs)",
	       x == n1 ? "took" : "did not take");
	if (spill_file.can_zero)
		ck_assert_ptr_eq(x, n1);
	sparse_add(&pt, 0, 1);
	sparse_add(&pt, 2 * MiB - 1, 2);	/* across the boundary of the two old blocks */
	sparse_add(&pt, 2 * MiB + 7 * pg, pg);
	sparse_add(&pt, pt.size - 1, 1);
	sparse_write(x, &pt, seed);
	expect_holes(x, &pt, var->exact);
	fflush(stdout);
	pid_t pid = fork();	/* SPILL_FORK=copy: the child's copy skips the holes */
	if (pid == 0) {
		char why[256];
		if (sparse_check(x, round_pg(pt.size), &pt, seed, why, sizeof why) == (size_t)-1)
			_exit(0);
		printf("FAIL fork child: %s\n", why);
		_exit(1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child of a reused block: status 0x%x", st);
	box = must_spill(pg, 0);
	moved = spill_realloc(x, 6 * MiB);
	ck_assert_ptr_ne(moved, x);
	expect_pattern(moved, 6 * MiB, &pt, seed, "a block on kept extents, moved");
	z = spill_alloc(MiB, 0, 1);	/* from what is left of the kept extents, or fresh */
	ck_assert_ptr_nonnull(z);
	size_t i = 0;
	while (i < MiB && !z[i])
		i++;
	ck_assert_msg(i == MiB, "calloc'd block on reused extents: byte %zu is 0x%02x", i, z[i]);
	spill_free(z);
	spill_free(moved);
	spill_free(box);
	spill_free(fence);
	teardown_variant();
}
END_TEST

/* The fork modes the tests run are the ones libspill knows: a new mode cannot be missed. */
static void load_bad_fork(void *arg)
{
	(void)arg;
	setenv("SPILL_FORK", "?", 1);
	spill_config_load(&spill_cfg, env_get);
}

START_TEST(test_mode_list)
{
	char out[512], mode[32];

	ck_assert_int_eq(run_captured(load_bad_fork, NULL, out, sizeof out, NULL), 0);
	ck_assert_msg(matrix_check_modes(out) == 0, "libspill said: %s", out);
	for (const char *at = MATRIX_FORK_MODES; matrix_next(&at, mode, sizeof mode);) {
		setenv("SPILL_FORK", mode, 1);
		spill_config_load(&spill_cfg, env_get);
		ck_assert_msg(matrix_child_keeps(mode) == (spill_cfg.fork_mode != SPILL_FORK_DROP),
			      "SPILL_FORK=%s: the tests and libspill disagree on whether the child keeps its blocks", mode);
	}
	unsetenv("SPILL_FORK");
}
END_TEST

Suite *copy_suite(void)
{
	Suite *s = suite_create("copy");
	TCase *paths = tcase_create("paths"), *fork_tc = tcase_create("fork");
	int n = copytest_begin();

	tcase_add_loop_test(paths, test_copy_fd_mapped, 0, n);
	tcase_add_loop_test(paths, test_copy_fd_pwrite, 0, n);
	tcase_add_loop_test(paths, test_realloc_paths, 0, n);
	tcase_add_loop_test(paths, test_realloc_cross, 0, n);
	tcase_add_loop_test(paths, test_kept_reuse, 0, n);
	tcase_set_timeout(paths, 120);
	suite_add_tcase(s, paths);
	tcase_add_test(fork_tc, test_mode_list);
	tcase_add_loop_test(fork_tc, test_fork_modes, 0, n);
	tcase_add_loop_test(fork_tc, test_fork_no_live_block, 0, n);
	tcase_add_loop_test(fork_tc, test_fork_copy_no_room, 0, n);
	tcase_set_timeout(fork_tc, 120);
	suite_add_tcase(s, fork_tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(copy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	copytest_end();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
