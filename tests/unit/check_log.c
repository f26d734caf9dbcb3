/* SPDX-License-Identifier: MIT */
/* check_log.c - the malloc-free formatter, warnings on stderr, the event log and its fd. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "spill.h"

#define FMT_EQ(want, ...)                                                                   \
	do {                                                                                \
		char b_[256];                                                               \
		size_t n_ = spill_format(b_, sizeof b_, __VA_ARGS__);                       \
		ck_assert_str_eq(b_, want);                                                 \
		ck_assert_uint_eq(n_, strlen(want));                                        \
	} while (0)

START_TEST(test_conversions)
{
	FMT_EQ("plain text", "plain text");
	FMT_EQ("", "");
	FMT_EQ("a hello b", "a %s b", "hello");
	FMT_EQ("(null)", "%s", (char *)NULL);
	FMT_EQ("x", "%c", 'x');
	FMT_EQ("0 -1 42", "%d %d %d", 0, -1, 42);
	FMT_EQ("2147483647 -2147483648", "%d %d", INT_MAX, INT_MIN);
	FMT_EQ("4294967295", "%u", UINT_MAX);
	FMT_EQ("deadbeef 0", "%x %x", 0xdeadbeefu, 0u);
	FMT_EQ("18446744073709551615", "%zu", SIZE_MAX);
	FMT_EQ("-5 9223372036854775807", "%zd %zd", (ssize_t)-5, (ssize_t)SSIZE_MAX);
	FMT_EQ("ffffffffffffffff 1000", "%zx %zx", SIZE_MAX, (size_t)4096);
	FMT_EQ("18446744073709551615", "%llu", ULLONG_MAX);
	FMT_EQ("-9223372036854775808 9223372036854775807", "%lld %lld", LLONG_MIN, LLONG_MAX);
	FMT_EQ("123456789abcdef0", "%llx", 0x123456789abcdef0ull);
	FMT_EQ("-7 7", "%ld %lu", -7L, 7UL);
	FMT_EQ("0x1000 0x0", "%p %p", (void *)0x1000, (void *)NULL);
	FMT_EQ("100%", "%d%%", 100);
	FMT_EQ("%q", "%q");
	FMT_EQ("abc", "abc%");
	FMT_EQ("abc", "abc%z");
	FMT_EQ("abc", "abc%ll");
	FMT_EQ("libspill: 12 create addr=0x7f00 size=3 len=4096",
	       "libspill: %d create addr=%p size=%zu len=%llu", 12, (void *)0x7f00, (size_t)3, 4096ull);

	char ptr[32];
	void *p = &ptr;
	snprintf(ptr, sizeof ptr, "%p", p);	/* glibc prints non-NULL pointers as 0x<hex> too */
	FMT_EQ(ptr, "%p", p);
}
END_TEST

/* Truncation works like snprintf: the full length is returned, the buffer always ends in NUL. */
START_TEST(test_truncation)
{
	char buf[16];
	size_t n;

	memset(buf, '#', sizeof buf);
	n = spill_format(buf, 0, "hello %d", 123);
	ck_assert_uint_eq(n, 9);
	ck_assert_int_eq(buf[0], '#');

	n = spill_format(buf, 1, "hello");
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(buf, "");

	memset(buf, '#', sizeof buf);
	n = spill_format(buf, 4, "abcdef");
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(buf[4], '#');

	n = spill_format(buf, 3, "%d", 12345);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(buf, "12");

	n = spill_format(buf, 6, "%zu", (size_t)12345);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(buf, "12345");

	n = spill_format(buf, 5, "%zu", (size_t)12345);
	ck_assert_str_eq(buf, "1234");

	n = spill_format(buf, 4, "%p", (void *)0xabcdef);
	ck_assert_uint_eq(n, 8);
	ck_assert_str_eq(buf, "0xa");

	n = spill_format(buf, 3, "%s%s", "ab", "cd");
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(buf, "ab");

	n = spill_format(buf, 2, "%%%%");
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(buf, "%");
}
END_TEST

/* Every size of an exact-size heap buffer: sanitizers catch a write past the end. */
START_TEST(test_truncation_every_size)
{
	const char *want = "x=-42 y=ffff z=(null) p=0x10 s=18446744073709551615";
	for (size_t size = 1; size <= strlen(want) + 1; size++) {
		char *buf = malloc(size);
		size_t n = spill_format(buf, size, "x=%d y=%x z=%s p=%p s=%zu", -42, 0xffffu, (char *)NULL,
					(void *)0x10, SIZE_MAX);
		ck_assert_uint_eq(n, strlen(want));
		ck_assert_uint_eq(strlen(buf), size - 1);
		ck_assert_int_eq(strncmp(buf, want, size - 1), 0);
		free(buf);
	}
}
END_TEST

static void warn_once(void *arg)
{
	(void)arg;
	errno = EDQUOT;
	spill_warn("SPILL_X=\"%s\" is odd; using %d", "v", 7);
	if (errno != EDQUOT)
		_exit(3);
}

START_TEST(test_warn_line)
{
	char out[4096];
	int st = run_captured(warn_once, NULL, out, sizeof out, NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "spill_warn changed errno");
	ck_assert_str_eq(out, "libspill: SPILL_X=\"v\" is odd; using 7\n");
}
END_TEST

static void warn_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		spill_warn("warning %d", i);
}

START_TEST(test_warn_cap)
{
	static char out[65536];
	int lines = 0;

	run_captured(warn_many, NULL, out, sizeof out, NULL);
	for (char *s = out; *s; s++)
		lines += *s == '\n';
	ck_assert_int_eq(lines, 32);
	ck_assert_ptr_nonnull(strstr(out, "libspill: warning 0\n"));
	ck_assert_ptr_nonnull(strstr(out, "libspill: warning 31\n"));
	ck_assert_ptr_null(strstr(out, "warning 32"));
}
END_TEST

static void warn_long(void *arg)
{
	(void)arg;
	static char big[2000];
	memset(big, 'z', sizeof big - 1);
	spill_warn("%s", big);
}

/* A message longer than the line buffer is cut, but still one line ending in a newline. */
START_TEST(test_warn_long)
{
	char out[4096];
	size_t n;

	run_captured(warn_long, NULL, out, sizeof out, NULL);
	n = strlen(out);
	ck_assert_uint_eq(n, 511);
	ck_assert_int_eq(strncmp(out, "libspill: zzz", 13), 0);
	ck_assert_int_eq(out[n - 1], '\n');
	ck_assert_ptr_eq(strchr(out, '\n'), out + n - 1);
}
END_TEST

static void die_now(void *arg)
{
	(void)arg;
	spill_die("fatal %s %d", "thing", 9);
}

static void assert_now(void *arg)
{
	int x = *(int *)arg;
	spill_assert(x == 2);
}

START_TEST(test_die)
{
	char out[4096];
	int two = 2, one = 1;
	int st = run_captured(die_now, NULL, out, sizeof out, NULL);

	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	ck_assert_str_eq(out, "libspill: fatal thing 9\n");

	st = run_captured(assert_now, &two, out, sizeof out, NULL);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_str_eq(out, "");
	st = run_captured(assert_now, &one, out, sizeof out, NULL);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	ck_assert_msg(strncmp(out, "libspill: assertion failed: x == 2 (", 36) == 0, "got: %s", out);
}
END_TEST

START_TEST(test_errname)
{
	ck_assert_str_eq(spill_errname(ENOENT), "no such file or directory");
	ck_assert_str_eq(spill_errname(ENOSPC), "no space left on device");
	ck_assert_str_eq(spill_errname(EOPNOTSUPP), "operation not supported");
	ck_assert_str_eq(spill_errname(12345), "system error");
	ck_assert_str_eq(spill_errname(0), "system error");
}
END_TEST

static char log_path[PATH_MAX];

static void log_events(void *arg)
{
	struct spill_config cfg;
	(void)arg;
	memset(&cfg, 0, sizeof cfg);
	cfg.log = SPILL_SINK_FILE;
	snprintf(cfg.log_path, sizeof cfg.log_path, "%s", log_path);
	if (spill_log_enabled())
		_exit(4);
	spill_log_open(&cfg);
	if (!spill_log_enabled())
		_exit(5);
	spill_event("create addr=%p size=%zu len=%llu", (void *)0x1000, (size_t)5, 4096ull);
	spill_event("free addr=%p size=%llu", (void *)0x1000, 5ull);
	/* The log fd sits high, out of the program's way, and is not inherited by exec. */
	int found = 0;
	for (int fd = 3; fd < 4096; fd++) {
		char proc[64], target[PATH_MAX];
		ssize_t n;
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if ((n = readlink(proc, target, sizeof target - 1)) <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, log_path) == 0) {
			if (fd < 768 || !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
				_exit(6);
			found = 1;
		}
	}
	_exit(found ? 0 : 7);
}

START_TEST(test_event_log_file)
{
	char out[4096], line[512];
	FILE *f;
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 1024) {
		rl.rlim_cur = rl.rlim_max < 1024 ? rl.rlim_max : 1024;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(log_path, sizeof log_path, "/var/tmp/check_log.%d.log", (int)getpid());
	unlink(log_path);
	int st = run_captured(log_events, NULL, out, sizeof out, NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	ck_assert_str_eq(out, "");
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	/* pid is the child's: check the shape, then the text after it */
	ck_assert_int_eq(strncmp(line, "libspill: ", 10), 0);
	ck_assert_str_eq(strchr(line + 10, ' '), " create addr=0x1000 size=5 len=4096\n");
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	ck_assert_str_eq(strchr(line + 10, ' '), " free addr=0x1000 size=5\n");
	ck_assert_ptr_null(fgets(line, sizeof line, f));
	fclose(f);
	unlink(log_path);
}
END_TEST

static void log_unopenable(void *arg)
{
	struct spill_config cfg;
	(void)arg;
	memset(&cfg, 0, sizeof cfg);
	cfg.log = SPILL_SINK_FILE;
	snprintf(cfg.log_path, sizeof cfg.log_path, "/nonexistent-dir-%d/x.log", (int)getpid());
	spill_log_open(&cfg);
	spill_event("grow addr=%p", (void *)0x2000);
}

/* A log file that cannot be opened: one warning, then events go to stderr. */
START_TEST(test_event_log_fallback)
{
	char out[4096];
	run_captured(log_unopenable, NULL, out, sizeof out, NULL);
	ck_assert_msg(strncmp(out, "libspill: SPILL_LOG=\"/nonexistent-dir-", 38) == 0, "got: %s", out);
	char *second = strchr(out, '\n');
	ck_assert_ptr_nonnull(second);
	ck_assert_int_eq(strncmp(second + 1, "libspill: ", 10), 0);
	ck_assert_ptr_nonnull(strstr(second + 1, " grow addr=0x2000\n"));
}
END_TEST

static void event_unopened(void *arg)
{
	(void)arg;
	if (spill_log_enabled())
		_exit(2);
	spill_event("nothing %d", 1);
}

/* SPILL_LOG unset: events are dropped, nothing reaches stderr. */
START_TEST(test_event_off)
{
	char out[64];
	int st = run_captured(event_unopened, NULL, out, sizeof out, NULL);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_fd_move_high)
{
	int fd = open("/dev/null", O_RDONLY), high;
	struct rlimit rl;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(spill_fd_move_high(-1), -1);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= 1024 || rl.rlim_cur == RLIM_INFINITY) {
		high = spill_fd_move_high(fd);
		ck_assert_int_ge(high, 768);
		ck_assert_int_eq(fcntl(fd, F_GETFD), -1);	/* the low one is closed */
		ck_assert(fcntl(high, F_GETFD) & FD_CLOEXEC);
		/* already high: kept as is */
		ck_assert_int_eq(spill_fd_move_high(high), high);
		close(high);
	} else {
		close(fd);
	}
}
END_TEST

/* Under a small RLIMIT_NOFILE the fd goes to three quarters of it. */
START_TEST(test_fd_move_high_small_limit)
{
	struct rlimit rl = { 100, 100 };
	int fd, high;

	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	fd = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	high = spill_fd_move_high(fd);
	ck_assert_int_ge(high, 75);
	ck_assert_int_lt(high, 100);
	close(high);
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_conversions);
	tcase_add_test(core, test_warn_line);
	tcase_add_test(core, test_die);
	tcase_add_test(core, test_errname);
	tcase_add_test(core, test_event_log_file);
	tcase_add_test(core, test_event_log_fallback);
	tcase_add_test(core, test_event_off);
	tcase_add_test(core, test_fd_move_high);
	suite_add_tcase(s, core);
	tcase_add_test(limits, test_truncation);
	tcase_add_test(limits, test_truncation_every_size);
	tcase_add_test(limits, test_warn_cap);
	tcase_add_test(limits, test_warn_long);
	tcase_add_test(limits, test_fd_move_high_small_limit);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
