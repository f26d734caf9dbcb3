/* SPDX-License-Identifier: MIT */
/* check_copy_fault.c - copy_file_range failing or coming up short at the first, a middle and the last run. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "copytest.h"

/*
 * What the stand-in for copy_file_range does when a call starts inside the run under test.
 * Errors and a 0 count must make the caller fall back (realloc: memcpy; fork: RAM copies);
 * short counts must simply be continued from where they stopped.
 */
enum fault_kind { F_EIO, F_EXDEV, F_ZERO, F_ONE_BYTE, F_HALVES, F_SHORT_THEN_EIO, F_KINDS };

static const struct {
	const char *name;
	int falls_back;
} kinds[F_KINDS] = {
	[F_EIO] = { "fails with EIO", 1 },
	[F_EXDEV] = { "fails with EXDEV", 1 },
	[F_ZERO] = { "returns 0", 1 },
	[F_ONE_BYTE] = { "copies 1 byte, then the rest", 0 },
	[F_HALVES] = { "copies half of what is asked, every call", 0 },
	[F_SHORT_THEN_EIO] = { "copies part, then fails with EIO", 1 },
};

static struct {
	enum fault_kind kind;
	int armed;
	uint64_t at;		/* file offset of the first byte of the run under test */
	unsigned hits;
} fault;

static ssize_t (*real_copy)(int, loff_t *, int, loff_t *, size_t);

/*
 * A call hits when the range it is asked to copy holds the run's first byte: the copy may
 * take several runs (and the holes between them) in one call, so no call need start there.
 */
static ssize_t faulty_copy(int in_fd, loff_t *in, int out_fd, loff_t *out, size_t len)
{
	int covers = (uint64_t)*in <= fault.at && fault.at < (uint64_t)*in + len;

	if (fault.armed && fault.kind == F_SHORT_THEN_EIO && fault.hits) {
		errno = EIO;	/* every call after the short one */
		return -1;
	}
	if (fault.armed && covers) {
		fault.hits++;
		switch (fault.kind) {
		case F_EIO:
			errno = EIO;
			return -1;
		case F_EXDEV:
			errno = EXDEV;
			return -1;
		case F_ZERO:
			return 0;
		case F_ONE_BYTE:
			if (fault.hits == 1 && len > 1)
				len = 1;
			break;
		case F_HALVES:
		case F_SHORT_THEN_EIO:
			if (len > 1)
				len /= 2;
			break;
		default:
			break;
		}
	}
	return real_copy(in_fd, in, out_fd, out, len);
}

static void hook(int on)
{
	if (!real_copy)
		real_copy = spill_backing_copy_range;
	spill_backing_copy_range = on ? faulty_copy : real_copy;
}

/* Five runs with wide holes between them, written with pwrite: SEEK_DATA sees exactly these. */
static struct sparse_pattern pat;

static void make_pattern(void)
{
	const size_t M = MiB;

	pat = (struct sparse_pattern){ .name = "five runs", .size = 6 * M + 123, .wide_holes = 1 };
	sparse_add(&pat, 0, 5 * pg + 1);
	sparse_add(&pat, M, M / 8);
	sparse_add(&pat, 3 * M + 1, pg);
	sparse_add(&pat, 4 * M, M / 8 - 7);
	sparse_add(&pat, 6 * M + 122, 1);
}

static const unsigned targets[] = { 0, 2, 4 };	/* the first, a middle and the last run */
static const char *const target_names[] = { "first", "middle", "last" };

static void write_pattern(unsigned char *p, uint64_t seed)
{
	for (unsigned r = 0; r < pat.nruns; r++) {
		unsigned char *buf = malloc(pat.run[r].len);
		sparse_gen(buf, seed, pat.run[r].off, pat.run[r].len);
		ck_assert_int_eq(pwrite(spill_file.fd, buf, pat.run[r].len, (off_t)(off_of(p) + pat.run[r].off)),
				 (ssize_t)pat.run[r].len);
		free(buf);
	}
}

static void arm(const unsigned char *p, unsigned t, enum fault_kind k)
{
	fault.kind = k;
	fault.at = off_of(p) + pat.run[targets[t]].off;
	fault.hits = 0;
	fault.armed = 1;
}

/* realloc that moves: the copy fails or comes up short; the block must still hold its data. */
START_TEST(test_move_faults)
{
	setup_variant(_i, NULL);
	make_pattern();
	hook(1);
	for (unsigned k = 0; k < F_KINDS; k++)
		for (unsigned t = 0; t < 3; t++) {
			uint64_t seed = 100 * k + t;
			unsigned char *p = must_spill(pat.size, 0), *box = must_spill(pg, 0), *q;
			char what[160];

			write_pattern(p, seed);
			expect_holes(p, &pat, 1);
			arm(p, t, (enum fault_kind)k);
			q = spill_realloc(p, 2 * pat.size);
			fault.armed = 0;
			snprintf(what, sizeof what, "realloc move, copy_file_range %s at the %s run", kinds[k].name,
				 target_names[t]);
			ck_assert_msg(fault.hits > 0, "%s: the fault never fired", what);
			ck_assert_msg(q && q != p && spill_is_ours(q), "%s: realloc gave %p", what, (void *)q);
			expect_pattern(q, 2 * pat.size, &pat, seed, what);
			ck_assert_uint_eq(spill_region_count(), 2);	/* the old block is gone */
			spill_free(q);
			spill_free(box);
			spill_flush_kept();
		}
	hook(0);
	printf("  realloc move: %d kinds of fault x first/middle/last run: content right every time\n", F_KINDS);
	teardown_variant();
}
END_TEST

/*
 * fork in copy mode: the copy into the child's file fails or comes up short. The child must
 * see every block as it was (on a failure from RAM copies, with one warning), never a
 * partial copy; the parent is untouched.
 */
static int fork_case(unsigned char **blk, unsigned n, unsigned k, unsigned t, char *err, size_t errsize)
{
	int pipefd[2], saved = dup(STDERR_FILENO), st, bad = 0;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	ck_assert_int_eq(pipe(pipefd), 0);
	arm(blk[n / 2], t, (enum fault_kind)k);
	fflush(stdout);
	dup2(pipefd[1], STDERR_FILENO);	/* the child's warning, written before fork() returns */
	pid = fork();
	if (pid == 0) {
		char why[256];
		alarm(60);
		close(pipefd[0]);
		if (!fault.hits) {
			fprintf(stderr, "FAIL the fault never fired in the child\n");
			_exit(1);
		}
		for (unsigned b = 0; b < n; b++)
			if (sparse_check(blk[b], round_pg(pat.size), &pat, 50 + b, why, sizeof why) != (size_t)-1) {
				fprintf(stderr, "FAIL child, block %u of %u: %s\n", b + 1, n, why);
				bad = 1;
			}
		for (unsigned b = 0; b < n; b++)
			memset(blk[b] + pat.size / 3, 0xcc, pg);	/* the parent must not see this */
		/* after a fallback the blocks are RAM copies: realloc may refuse (ENOMEM), never garble */
		errno = 0;
		unsigned char *q = spill_realloc(blk[0], 2 * pat.size);
		if (q) {
			bad |= q[pat.size / 3] != 0xcc || q[MiB] != sparse_byte(50, MiB);
			fprintf(stderr, "child realloc of an inherited block: ok\n");
		} else {
			bad |= errno != ENOMEM || blk[0][MiB] != sparse_byte(50, MiB);
			fprintf(stderr, "child realloc of an inherited block: NULL, %s\n", strerror(errno));
		}
		_exit(bad);
	}
	fault.armed = 0;
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(pipefd[1]);
	while (got + 1 < errsize && (r = read(pipefd[0], err + got, errsize - 1 - got)) > 0)
		got += (size_t)r;
	err[got] = '\0';
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(test_fork_faults)
{
	static const char *const env[] = { "SPILL_FORK", "copy", NULL };
	enum { N = 3 };
	unsigned char *blk[N];
	char err[4096], what[160];

	setup_variant(_i, env);
	make_pattern();
	hook(1);
	for (unsigned k = 0; k < F_KINDS; k++)
		for (unsigned t = 0; t < 3; t++) {
			/* fresh blocks each time: the parent's checks below read their holes full */
			for (unsigned b = 0; b < N; b++) {
				blk[b] = must_spill(pat.size, 0);
				write_pattern(blk[b], 50 + b);
				expect_holes(blk[b], &pat, 1);
			}
			int rc = fork_case(blk, N, k, t, err, sizeof err);
			int warned = strstr(err, "libspill: fork: cannot give the child a spill file of its own") != NULL;
			snprintf(what, sizeof what, "fork copy, copy_file_range %s at the %s run of block 2 of 3",
				 kinds[k].name, target_names[t]);
			ck_assert_msg(rc == 0, "%s: child exit %d: %s", what, rc, err);
			ck_assert_msg(warned == kinds[k].falls_back, "%s: %s; child said: %s", what,
				      warned ? "fell back to RAM copies" : "did not fall back", err);
			for (unsigned b = 0; b < N; b++) {
				expect_pattern(blk[b], round_pg(pat.size), &pat, 50 + b, what);
				spill_free(blk[b]);
			}
			spill_flush_kept();
		}
	hook(0);
	printf("  fork copy: %d kinds of fault x first/middle/last run: the child saw the right data every time\n",
	       F_KINDS);
	teardown_variant();
}
END_TEST

/*
 * SPILL_FORK=cow: the child's realloc of an inherited block copies it from the parent's file
 * and then its own changed pages; the copy fails or comes up short, and the moved block must
 * still hold the pattern and the child's own writes.
 */
static int cow_child(unsigned char *p, unsigned t, enum fault_kind k, uint64_t seed)
{
	char why[256];
	size_t mark = pat.size / 3;	/* in a hole: a private page of the child's own */

	p[mark] = 0xcc;
	arm(p, t, k);
	unsigned char *q = spill_realloc(p, 2 * pat.size);
	fault.armed = 0;
	if (!fault.hits) {
		printf("FAIL cow child: the fault never fired\n");
		return 1;
	}
	if (!q || q[mark] != 0xcc) {
		printf("FAIL cow child: realloc gave %p, byte %zu 0x%02x, want 0xcc\n", (void *)q, mark, q ? q[mark] : 0);
		return 1;
	}
	q[mark] = 0;
	if (sparse_check(q, 2 * pat.size, &pat, seed, why, sizeof why) != (size_t)-1) {
		printf("FAIL cow child, after realloc: %s\n", why);
		return 1;
	}
	return 0;
}

START_TEST(test_cow_realloc_faults)
{
	static const char *const env[] = { "SPILL_FORK", "cow", NULL };
	int st;

	setup_variant(_i, env);
	make_pattern();
	hook(1);
	for (unsigned k = 0; k < F_KINDS; k++)
		for (unsigned t = 0; t < 3; t++) {
			uint64_t seed = 300 + 10 * k + t;
			unsigned char *p = must_spill(pat.size, 0), *box = must_spill(pg, 0);
			write_pattern(p, seed);
			expect_holes(p, &pat, 1);
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0) {
				alarm(60);
				_exit(cow_child(p, t, (enum fault_kind)k, seed));
			}
			ck_assert_int_eq(waitpid(pid, &st, 0), pid);
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cow child's realloc, copy_file_range %s at the "
				      "%s run: status 0x%x", kinds[k].name, target_names[t], st);
			expect_pattern(p, round_pg(pat.size), &pat, seed, "the parent after its cow child");
			spill_free(p);
			spill_free(box);
			spill_flush_kept();
		}
	hook(0);
	printf("  cow child's realloc: %d kinds of fault x first/middle/last run: content right every time\n", F_KINDS);
	teardown_variant();
}
END_TEST

Suite *copy_fault_suite(void)
{
	Suite *s = suite_create("copy_fault");
	TCase *tc = tcase_create("faults");
	int n = copytest_begin();

	/* From variant 1 on: the source is written with pwrite and read with copy_file_range, so
	 * the advice of the mapping changes nothing here but the time */
	tcase_add_loop_test(tc, test_move_faults, 1, n);
	tcase_add_loop_test(tc, test_fork_faults, 1, n);
	tcase_add_loop_test(tc, test_cow_realloc_faults, 1, n);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(copy_fault_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	copytest_end();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
