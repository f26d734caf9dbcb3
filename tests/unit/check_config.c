/* SPDX-License-Identifier: MIT */
/* check_config.c - SPILL_* parsing: sizes, percentages, defaults, and one warning per bad value. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "spill.h"

struct kv {
	const char *name, *value;
};

static const struct kv *cur_env;

static const char *fake_get(const char *name)
{
	for (const struct kv *e = cur_env; e && e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e->value;
	return NULL;
}

/*
 * Loads the configuration from ENV in a child whose stderr is a pipe, so that each case
 * starts with log.c's warning counter at zero. Returns what the child printed in ERR.
 */
static struct spill_config *load_into;

static void load_child(void *env)
{
	cur_env = env;
	spill_config_load(load_into, fake_get);
}

static void load(const struct kv *env, struct spill_config *cfg, char *err, size_t errsize)
{
	struct spill_config *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
					   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;

	ck_assert_ptr_ne(shared, MAP_FAILED);
	load_into = shared;
	status = run_captured(load_child, (void *)env, err, errsize, NULL);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "config load died (status %d)", status);
	memcpy(cfg, shared, sizeof *cfg);
	munmap(shared, sizeof *shared);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static size_t size_of(const char *s, int *rc)
{
	size_t v = 12345;
	*rc = spill_parse_size(s, &v);
	return v;
}

START_TEST(test_parse_size_good)
{
	static const struct { const char *s; size_t v; } cases[] = {
		{ "0", 0 }, { "1", 1 }, { "512", 512 }, { "007", 7 },
		{ "1K", 1024 }, { "1k", 1024 }, { "1KiB", 1024 }, { "1kib", 1024 }, { "1KB", 1024 }, { "1kB", 1024 },
		{ "64M", (size_t)64 << 20 }, { "64MiB", (size_t)64 << 20 }, { "64mb", (size_t)64 << 20 },
		{ "3G", (size_t)3 << 30 }, { "3GiB", (size_t)3 << 30 }, { "2T", (size_t)2 << 40 }, { "2TB", (size_t)2 << 40 },
		{ "5B", 5 }, { "5b", 5 },
		{ "18446744073709551615", SIZE_MAX },
		{ "16777215T", (size_t)16777215 << 40 },
		{ "17179869183G", (size_t)17179869183 << 30 },
	};
	for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
		int rc;
		size_t v = size_of(cases[i].s, &rc);
		ck_assert_msg(rc == 0, "spill_parse_size(\"%s\") failed", cases[i].s);
		ck_assert_msg(v == cases[i].v, "spill_parse_size(\"%s\") = %zu, want %zu", cases[i].s, v, cases[i].v);
	}
}
END_TEST

START_TEST(test_parse_size_bad)
{
	static const char *const bad[] = {
		"", "6x", "-1", "+1", "1.5G", " 1", "1 ", "1 K", "K", "KiB", "1Ki", "1KBB", "1KiBx", "1iB",
		"1MM", "0x10", "1e3", "1P", "1KK",
		"18446744073709551616", "99999999999999999999999", "16777216T", "17179869184G", "17592186044416M",
	};
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		int rc;
		size_t v = size_of(bad[i], &rc);
		ck_assert_msg(rc == -1, "spill_parse_size(\"%s\") accepted (%zu)", bad[i], v);
		ck_assert_msg(v == 12345, "spill_parse_size(\"%s\") wrote its output on failure", bad[i]);
	}
	size_t v = 1;
	ck_assert_int_eq(spill_parse_size(NULL, &v), -1);
}
END_TEST

START_TEST(test_parse_percent)
{
	static const struct { const char *s; int ok; unsigned v; } cases[] = {
		{ "0", 1, 0 }, { "0%", 1, 0 }, { "5", 1, 5 }, { "5%", 1, 5 }, { "100", 1, 100 }, { "100%", 1, 100 },
		{ "0005%", 1, 5 }, { "00000000000000000000000100", 1, 100 },
		{ "101", 0, 0 }, { "101%", 0, 0 }, { "", 0, 0 }, { "%", 0, 0 }, { "-1", 0, 0 }, { "5%%", 0, 0 },
		{ "1.5%", 0, 0 }, { "5 %", 0, 0 }, { "x", 0, 0 }, { "99999999999999999999%", 0, 0 },
		{ "4294967396", 0, 0 },	/* 2^32 + 100: must not wrap round to 100 */
	};
	for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
		unsigned v = 777;
		int rc = spill_parse_percent(cases[i].s, &v);
		if (cases[i].ok) {
			ck_assert_msg(rc == 0 && v == cases[i].v, "spill_parse_percent(\"%s\") = %d/%u, want %u",
				      cases[i].s, rc, v, cases[i].v);
		} else {
			ck_assert_msg(rc == -1, "spill_parse_percent(\"%s\") accepted (%u)", cases[i].s, v);
			ck_assert_uint_eq(v, 777);
		}
	}
	unsigned v;
	ck_assert_int_eq(spill_parse_percent(NULL, &v), -1);
}
END_TEST

static void check_defaults(const struct spill_config *c, const char *dir)
{
	ck_assert_uint_eq(c->threshold, (size_t)64 << 20);
	ck_assert_str_eq(c->dir, dir);
	ck_assert_uint_eq(c->max, SIZE_MAX);
	ck_assert_uint_eq(c->min_free, 5);
	ck_assert_int_eq(c->min_free_pct, 1);
	ck_assert_int_eq(c->on_fail, SPILL_FAIL_RAM);
	ck_assert_int_eq(c->fork_mode, SPILL_FORK_COW);
	ck_assert_int_eq(c->when, SPILL_WHEN_ALWAYS);
	ck_assert_uint_eq(c->headroom_pct, 80);
	ck_assert_int_eq(c->stats, SPILL_SINK_OFF);
	ck_assert_int_eq(c->log, SPILL_SINK_OFF);
	ck_assert_str_eq(c->only, "");
	ck_assert_int_eq(c->disable, 0);
}

START_TEST(test_defaults)
{
	static const struct kv none[] = { { NULL, NULL } };
	static const struct kv tmpdir[] = { { "TMPDIR", "/some/tmp" }, { NULL, NULL } };
	static const struct kv empty[] = {
		{ "TMPDIR", "" }, { "SPILL_THRESHOLD", "" }, { "SPILL_DIR", "" }, { "SPILL_MAX", "" },
		{ "SPILL_MIN_FREE", "" }, { "SPILL_ON_FAIL", "" }, { "SPILL_STATS", "" }, { "SPILL_LOG", "" },
		{ "SPILL_DISABLE", "" }, { "SPILL_FORK", "" }, { "SPILL_ONLY", "" }, { "SPILL_WHEN", "" },
		{ "SPILL_HEADROOM", "" }, { NULL, NULL },
	};
	struct spill_config c;
	char err[4096];

	load(none, &c, err, sizeof err);
	check_defaults(&c, "/var/tmp");
	ck_assert_str_eq(err, "");
	load(tmpdir, &c, err, sizeof err);
	check_defaults(&c, "/some/tmp");
	ck_assert_str_eq(err, "");
	/* An empty variable counts as unset: no warning. */
	load(empty, &c, err, sizeof err);
	check_defaults(&c, "/var/tmp");
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_good_values)
{
	static const struct kv env[] = {
		{ "TMPDIR", "/ignored" }, { "SPILL_THRESHOLD", "1MiB" }, { "SPILL_DIR", "/data/spill" },
		{ "SPILL_MAX", "2G" }, { "SPILL_MIN_FREE", "1G" }, { "SPILL_ON_FAIL", "NULL" },
		{ "SPILL_STATS", "/tmp/s-%p.json" }, { "SPILL_LOG", "StdErr" }, { "SPILL_DISABLE", "yes" },
		{ "SPILL_FORK", "Drop" }, { "SPILL_ONLY", "sort:gcc" }, { "SPILL_WHEN", "PRESSURE" },
		{ "SPILL_HEADROOM", "95%" }, { NULL, NULL },
	};
	struct spill_config c;
	char err[4096];

	load(env, &c, err, sizeof err);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(c.threshold, (size_t)1 << 20);
	ck_assert_str_eq(c.dir, "/data/spill");
	ck_assert_uint_eq(c.max, (size_t)2 << 30);
	ck_assert_uint_eq(c.min_free, (size_t)1 << 30);
	ck_assert_int_eq(c.min_free_pct, 0);
	ck_assert_int_eq(c.on_fail, SPILL_FAIL_NULL);
	ck_assert_int_eq(c.stats, SPILL_SINK_FILE);
	ck_assert_str_eq(c.stats_path, "/tmp/s-%p.json");
	ck_assert_int_eq(c.log, SPILL_SINK_STDERR);
	ck_assert_int_eq(c.disable, 1);
	ck_assert_int_eq(c.fork_mode, SPILL_FORK_DROP);
	ck_assert_str_eq(c.only, "sort:gcc");
	ck_assert_int_eq(c.when, SPILL_WHEN_PRESSURE);
	ck_assert_uint_eq(c.headroom_pct, 95);
}
END_TEST

START_TEST(test_choices)
{
	static const struct { const char *var, *val; int field; int want; } cases[] = {
		{ "SPILL_ON_FAIL", "ram", 0, SPILL_FAIL_RAM }, { "SPILL_ON_FAIL", "null", 0, SPILL_FAIL_NULL },
		{ "SPILL_ON_FAIL", "Abort", 0, SPILL_FAIL_ABORT },
		{ "SPILL_FORK", "copy", 1, SPILL_FORK_COPY }, { "SPILL_FORK", "drop", 1, SPILL_FORK_DROP },
		{ "SPILL_WHEN", "always", 2, SPILL_WHEN_ALWAYS }, { "SPILL_WHEN", "pressure", 2, SPILL_WHEN_PRESSURE },
		{ "SPILL_DISABLE", "1", 3, 1 }, { "SPILL_DISABLE", "TRUE", 3, 1 }, { "SPILL_DISABLE", "on", 3, 1 },
		{ "SPILL_DISABLE", "0", 3, 0 }, { "SPILL_DISABLE", "no", 3, 0 }, { "SPILL_DISABLE", "off", 3, 0 },
		{ "SPILL_DISABLE", "false", 3, 0 },
		{ "SPILL_MIN_FREE", "0%", 4, 0 }, { "SPILL_MIN_FREE", "100%", 4, 100 }, { "SPILL_MIN_FREE", "50", 5, 50 },
		{ "SPILL_MIN_FREE", "0", 5, 0 }, { "SPILL_MIN_FREE", "4KiB", 5, 4096 },
		{ "SPILL_HEADROOM", "1", 6, 1 }, { "SPILL_HEADROOM", "100%", 6, 100 },
		{ "SPILL_THRESHOLD", "1", 7, 1 }, { "SPILL_THRESHOLD", "1b", 7, 1 },
		{ "SPILL_MAX", "0", 8, 0 },
	};
	for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct kv env[] = { { cases[i].var, cases[i].val }, { NULL, NULL } };
		struct spill_config c;
		char err[4096];
		long got = -1;

		load(env, &c, err, sizeof err);
		ck_assert_msg(err[0] == '\0', "%s=%s warned: %s", cases[i].var, cases[i].val, err);
		switch (cases[i].field) {
		case 0: got = c.on_fail; break;
		case 1: got = c.fork_mode; break;
		case 2: got = c.when; break;
		case 3: got = c.disable; break;
		case 4: got = c.min_free_pct ? (long)c.min_free : -2; break;
		case 5: got = c.min_free_pct ? -2 : (long)c.min_free; break;
		case 6: got = c.headroom_pct; break;
		case 7: got = (long)c.threshold; break;
		case 8: got = (long)c.max; break;
		}
		ck_assert_msg(got == cases[i].want, "%s=%s gave %ld, want %d", cases[i].var, cases[i].val, got,
			      cases[i].want);
	}
}
END_TEST

/* Every bad value: the whole configuration stays the default, and exactly one line says why. */
START_TEST(test_bad_values)
{
	static char longpath[PATH_MAX + 8];
	static const struct { const char *var, *val; } bad[] = {
		{ "SPILL_THRESHOLD", "6x" }, { "SPILL_THRESHOLD", "0" }, { "SPILL_THRESHOLD", "-1" },
		{ "SPILL_THRESHOLD", "1.5G" }, { "SPILL_THRESHOLD", "99999999999999999999" }, { "SPILL_THRESHOLD", "0K" },
		{ "SPILL_MAX", "lots" }, { "SPILL_MAX", "1.5G" }, { "SPILL_MAX", "-1" }, { "SPILL_MAX", "16777216T" },
		{ "SPILL_MIN_FREE", "101%" }, { "SPILL_MIN_FREE", "%" }, { "SPILL_MIN_FREE", "5x" },
		{ "SPILL_MIN_FREE", "-5%" }, { "SPILL_MIN_FREE", "5 %" }, { "SPILL_MIN_FREE", "1G%" },
		{ "SPILL_ON_FAIL", "crash" }, { "SPILL_ON_FAIL", "ra" }, { "SPILL_ON_FAIL", "ramm" },
		{ "SPILL_FORK", "spoon" }, { "SPILL_WHEN", "sometimes" },
		{ "SPILL_HEADROOM", "0" }, { "SPILL_HEADROOM", "0%" }, { "SPILL_HEADROOM", "101%" },
		{ "SPILL_HEADROOM", "80 %" }, { "SPILL_HEADROOM", "x" },
		{ "SPILL_DISABLE", "maybe" }, { "SPILL_DISABLE", "2" },
		{ "SPILL_DIR", longpath }, { "SPILL_ONLY", longpath }, { "SPILL_STATS", longpath },
		{ "SPILL_LOG", longpath },
	};
	static const struct kv none[] = { { NULL, NULL } };
	struct spill_config dflt, c;
	char err[4096], prefix[64];

	memset(longpath, 'a', PATH_MAX);
	longpath[0] = '/';
	longpath[PATH_MAX] = '\0';
	load(none, &dflt, err, sizeof err);
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct kv env[] = { { bad[i].var, bad[i].val }, { NULL, NULL } };
		load(env, &c, err, sizeof err);
		ck_assert_msg(memcmp(&c, &dflt, sizeof c) == 0, "%s=\"%.20s\" changed the configuration",
			      bad[i].var, bad[i].val);
		ck_assert_msg(count_lines(err) == 1, "%s=\"%.20s\" printed %d lines: %s", bad[i].var, bad[i].val,
			      count_lines(err), err);
		snprintf(prefix, sizeof prefix, "libspill: %s=\"", bad[i].var);
		ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s=\"%.20s\": unexpected message: %s",
			      bad[i].var, bad[i].val, err);
		ck_assert_msg(strstr(err, "; using ") != NULL, "%s: message does not name the default: %s",
			      bad[i].var, err);
		if (bad[i].val != longpath)	/* a short value is quoted back as given */
			ck_assert_msg(strncmp(err + strlen(prefix), bad[i].val, strlen(bad[i].val)) == 0 &&
				      err[strlen(prefix) + strlen(bad[i].val)] == '"',
				      "%s: value not quoted: %s", bad[i].var, err);
		ck_assert_msg(strlen(err) < 512, "%s: message longer than one log line", bad[i].var);
	}
}
END_TEST

/* The spec's example message, word for word in its fixed parts. */
START_TEST(test_bad_threshold_message)
{
	static const struct kv env[] = { { "SPILL_THRESHOLD", "6x" }, { NULL, NULL } };
	struct spill_config c;
	char err[4096];

	load(env, &c, err, sizeof err);
	ck_assert_msg(strncmp(err, "libspill: SPILL_THRESHOLD=\"6x\" is not a size", 44) == 0, "got: %s", err);
	ck_assert_msg(strlen(err) > 12 && strcmp(err + strlen(err) - 12, "; using 64M\n") == 0, "got: %s", err);
}
END_TEST

/* Several bad values at once: one line each; the good ones still apply. */
START_TEST(test_bad_and_good_mixed)
{
	static const struct kv env[] = {
		{ "SPILL_THRESHOLD", "6x" }, { "SPILL_MAX", "8M" }, { "SPILL_ON_FAIL", "explode" },
		{ "SPILL_WHEN", "pressure" }, { "SPILL_HEADROOM", "200" }, { "SPILL_FORK", "drop" }, { NULL, NULL },
	};
	struct spill_config c;
	char err[4096];

	load(env, &c, err, sizeof err);
	ck_assert_int_eq(count_lines(err), 3);
	ck_assert_ptr_nonnull(strstr(err, "libspill: SPILL_THRESHOLD=\"6x\""));
	ck_assert_ptr_nonnull(strstr(err, "libspill: SPILL_ON_FAIL=\"explode\""));
	ck_assert_ptr_nonnull(strstr(err, "libspill: SPILL_HEADROOM=\"200\""));
	ck_assert_uint_eq(c.threshold, (size_t)64 << 20);
	ck_assert_uint_eq(c.max, (size_t)8 << 20);
	ck_assert_int_eq(c.on_fail, SPILL_FAIL_RAM);
	ck_assert_int_eq(c.when, SPILL_WHEN_PRESSURE);
	ck_assert_uint_eq(c.headroom_pct, 80);
	ck_assert_int_eq(c.fork_mode, SPILL_FORK_DROP);
}
END_TEST

START_TEST(test_only_matches)
{
	ck_assert_int_eq(spill_config_only_matches("", "anything"), 1);
	ck_assert_int_eq(spill_config_only_matches("", ""), 1);
	ck_assert_int_eq(spill_config_only_matches("sort", "sort"), 1);
	ck_assert_int_eq(spill_config_only_matches("sort:gcc,ld", "gcc"), 1);
	ck_assert_int_eq(spill_config_only_matches("sort:gcc,ld", "ld"), 1);
	ck_assert_int_eq(spill_config_only_matches("sort:gcc,ld", "sor"), 0);
	ck_assert_int_eq(spill_config_only_matches("sort:gcc,ld", "sorting"), 0);
	ck_assert_int_eq(spill_config_only_matches("sort:gcc,ld", "gcc,ld"), 0);
	ck_assert_int_eq(spill_config_only_matches("sort::", ""), 0);
	ck_assert_int_eq(spill_config_only_matches(":a:", "a"), 1);
	ck_assert_int_eq(spill_config_only_matches("abc", "ABC"), 0);
}
END_TEST

/* Paths of PATH_MAX - 1 characters fit; one more does not, and TMPDIR then falls back quietly. */
START_TEST(test_path_lengths)
{
	static char fits[PATH_MAX], toolong[PATH_MAX + 1];
	struct spill_config c;
	char err[4096];

	memset(fits, 'd', PATH_MAX - 1);
	fits[0] = '/';
	fits[PATH_MAX - 1] = '\0';
	memset(toolong, 'd', PATH_MAX);
	toolong[0] = '/';
	toolong[PATH_MAX] = '\0';
	{
		struct kv env[] = { { "SPILL_DIR", fits }, { "SPILL_STATS", fits }, { "SPILL_LOG", fits },
				    { "SPILL_ONLY", fits }, { NULL, NULL } };
		load(env, &c, err, sizeof err);
		ck_assert_str_eq(err, "");
		ck_assert_str_eq(c.dir, fits);
		ck_assert_str_eq(c.stats_path, fits);
		ck_assert_str_eq(c.log_path, fits);
		ck_assert_str_eq(c.only, fits);
		ck_assert_int_eq(c.stats, SPILL_SINK_FILE);
		ck_assert_int_eq(c.log, SPILL_SINK_FILE);
	}
	{
		struct kv env[] = { { "TMPDIR", toolong }, { NULL, NULL } };
		load(env, &c, err, sizeof err);
		ck_assert_str_eq(c.dir, "/var/tmp");
	}
	{
		struct kv env[] = { { "TMPDIR", fits }, { "SPILL_DIR", toolong }, { NULL, NULL } };
		load(env, &c, err, sizeof err);
		ck_assert_str_eq(c.dir, fits);	/* the default stays: $TMPDIR */
		ck_assert_int_eq(count_lines(err), 1);
	}
}
END_TEST

/* The largest and smallest values each field takes. */
START_TEST(test_extremes)
{
	static const struct kv env[] = {
		{ "SPILL_THRESHOLD", "18446744073709551615" }, { "SPILL_MAX", "16777215TiB" },
		{ "SPILL_MIN_FREE", "18446744073709551615B" }, { NULL, NULL },
	};
	struct spill_config c;
	char err[4096];

	load(env, &c, err, sizeof err);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(c.threshold, SIZE_MAX);
	ck_assert_uint_eq(c.max, (size_t)16777215 << 40);
	ck_assert_uint_eq(c.min_free, SIZE_MAX);
	ck_assert_int_eq(c.min_free_pct, 0);
}
END_TEST

/* Thirty-two warnings at most per process, so a broken environment cannot flood stderr. */
static void reload_ten_times(void *env)
{
	struct spill_config c;

	cur_env = env;
	for (int i = 0; i < 10; i++)
		spill_config_load(&c, fake_get);
}

START_TEST(test_reload_warns_again_until_cap)
{
	static const struct kv env[] = { { "SPILL_ON_FAIL", "x" }, { "SPILL_FORK", "x" }, { "SPILL_WHEN", "x" },
					 { "SPILL_HEADROOM", "x" }, { "SPILL_MAX", "x" }, { NULL, NULL } };
	char buf[65536];

	run_captured(reload_ten_times, (void *)env, buf, sizeof buf, NULL);
	ck_assert_int_eq(count_lines(buf), 32);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_parse_size_good);
	tcase_add_test(core, test_parse_size_bad);
	tcase_add_test(core, test_parse_percent);
	tcase_add_test(core, test_defaults);
	tcase_add_test(core, test_good_values);
	tcase_add_test(core, test_choices);
	tcase_add_test(core, test_bad_values);
	tcase_add_test(core, test_bad_threshold_message);
	tcase_add_test(core, test_bad_and_good_mixed);
	tcase_add_test(core, test_only_matches);
	suite_add_tcase(s, core);
	tcase_add_test(limits, test_path_lengths);
	tcase_add_test(limits, test_extremes);
	tcase_add_test(limits, test_reload_warns_again_until_cap);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
