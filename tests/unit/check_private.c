/* SPDX-License-Identifier: MIT */
/* check_private.c - finding the pages a MAP_PRIVATE file mapping holds of its own (pagemap). */
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spill.h"

#define PAGES 300

static int tmpfile_of(size_t size)
{
	int fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static int is_data(int fd, size_t pg)
{
	off_t d = lseek(fd, (off_t)(pg * spill_page), SEEK_DATA);
	return d >= 0 && (size_t)d < (pg + 1) * spill_page;
}

/*
 * A file with a pattern, mapped MAP_PRIVATE; some pages written through the mapping, some
 * only read. spill_private_flush() must write exactly the written ones to a second file, at
 * the offset asked, and nothing else.
 */
static void run(size_t pages, const char *written)
{
	size_t size = pages * spill_page;
	int src = tmpfile_of(size), dst = tmpfile_of(size + 8 * spill_page);
	unsigned char *page = malloc(spill_page);

	for (size_t pg = 0; pg < pages; pg++) {
		memset(page, (int)(pg % 200) + 1, spill_page);
		ck_assert_int_eq(pwrite(src, page, spill_page, (off_t)(pg * spill_page)), (ssize_t)spill_page);
	}
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, src, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	unsigned sum = 0;
	for (size_t pg = 0; pg < pages; pg++) {
		if (written[pg] == 'w')
			m[pg * spill_page + pg % spill_page] = 0xee;	/* a private copy now */
		else if (written[pg] == 'r')
			sum += m[pg * spill_page];			/* mapped, still the file's */
	}
	ck_assert_int_eq(spill_private_flush((char *)m, size, dst, 8 * spill_page), 0);
	for (size_t pg = 0; pg < pages; pg++) {
		int want = written[pg] == 'w';
		ck_assert_msg(is_data(dst, 8 + pg) == want, "page %zu (%c): data %d, want %d", pg,
			      written[pg], is_data(dst, 8 + pg), want);
		if (!want)
			continue;
		ck_assert_int_eq(pread(dst, page, spill_page, (off_t)((8 + pg) * spill_page)), (ssize_t)spill_page);
		ck_assert_int_eq(memcmp(page, m + pg * spill_page, spill_page), 0);
	}
	for (size_t pg = 0; pg < 8; pg++)
		ck_assert(!is_data(dst, pg));
	munmap(m, size);
	close(src), close(dst);
	free(page);
	(void)sum;
}

START_TEST(test_runs)
{
	char w[PAGES + 1];
	spill_page = (size_t)sysconf(_SC_PAGESIZE);
	/* first page, a run, single pages, read-only pages between, the last page */
	for (int i = 0; i < PAGES; i++)
		w[i] = i == 0 || (i >= 5 && i < 12) || i == 40 || i == 42 || i == PAGES - 1 ? 'w' :
		       i % 3 == 0 ? 'r' : '-';
	w[PAGES] = '\0';
	run(PAGES, w);
}
END_TEST

/* Runs across the 512-entry batches in which pagemap is read. */
START_TEST(test_batches)
{
	enum { N = 1500 };
	static char w[N + 1];
	spill_page = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i < N; i++)
		w[i] = (i >= 500 && i < 530) || (i >= 1020 && i < 1030) || i == 1023 || i == 1024 ? 'w' : 'r';
	w[N] = '\0';
	run(N, w);
}
END_TEST

START_TEST(test_nothing_written)
{
	char w[65];
	spill_page = (size_t)sysconf(_SC_PAGESIZE);
	memset(w, 'r', 64);
	w[64] = '\0';
	run(64, w);
}
END_TEST

Suite *private_suite(void)
{
	Suite *s = suite_create("private");
	TCase *core = tcase_create("core");

	tcase_add_test(core, test_runs);
	tcase_add_test(core, test_batches);
	tcase_add_test(core, test_nothing_written);
	suite_add_tcase(s, core);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(private_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
