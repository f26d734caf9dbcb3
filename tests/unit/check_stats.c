/* SPDX-License-Identifier: MIT */
/* check_stats.c - counters, the SPILL_MAX claim, the JSON summary (parsed back field by field), the published page. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "spill.h"

/* A strict little JSON reader for the one shape the summary has: an object of numbers, strings, objects. */
struct field {
	char key[64];
	int kind;		/* 'n' number, 's' string, 'o' object, 'z' null */
	unsigned long long num;
	char str[PATH_MAX * 2];
	struct field *sub;
	int nsub;
};

static const char *ws(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

static const char *parse_string(const char *p, char *out, size_t size)
{
	size_t n = 0;
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		unsigned char c = (unsigned char)*p;
		if (!c || c < 0x20 || n + 1 >= size)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == '"' || *p == '\\' || *p == '/') {
				c = (unsigned char)*p;
			} else if (*p == 'u') {
				unsigned v = 0;
				for (int i = 1; i <= 4; i++) {
					char h = p[i];
					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
						return NULL;
					v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
				}
				if (v > 0xff)
					return NULL;
				c = (unsigned char)v;
				p += 4;
			} else if (*p == 'n') {
				c = '\n';
			} else if (*p == 't') {
				c = '\t';
			} else {
				return NULL;
			}
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return p + 1;
}

static const char *parse_object(const char *p, struct field *f, int max, int *count)
{
	*count = 0;
	p = ws(p);
	if (*p++ != '{')
		return NULL;
	p = ws(p);
	if (*p == '}')
		return p + 1;
	for (;;) {
		if (*count >= max)
			return NULL;
		struct field *x = &f[(*count)++];
		memset(x, 0, sizeof *x);
		if (!(p = parse_string(ws(p), x->key, sizeof x->key)))
			return NULL;
		p = ws(p);
		if (*p++ != ':')
			return NULL;
		p = ws(p);
		if (*p == '"') {
			x->kind = 's';
			if (!(p = parse_string(p, x->str, sizeof x->str)))
				return NULL;
		} else if (*p == '{') {
			x->kind = 'o';
			x->sub = calloc(16, sizeof *x->sub);
			if (!(p = parse_object(p, x->sub, 16, &x->nsub)))
				return NULL;
		} else if (strncmp(p, "null", 4) == 0) {
			x->kind = 'z';
			p += 4;
		} else if (*p >= '0' && *p <= '9') {
			x->kind = 'n';
			if (*p == '0' && p[1] >= '0' && p[1] <= '9')
				return NULL;	/* no leading zeros in JSON */
			x->num = strtoull(p, (char **)&p, 10);
		} else {
			return NULL;
		}
		p = ws(p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p++ != '}')
			return NULL;
		return p;
	}
}

static struct field fields[32];
static int nfields;

static void parse_summary(const char *json)
{
	const char *end;

	for (int i = 0; i < nfields; i++)	/* the previous summary's nested objects */
		free(fields[i].sub);
	nfields = 0;
	end = parse_object(json, fields, 32, &nfields);
	ck_assert_msg(end != NULL, "not a JSON object: %s", json);
	ck_assert_msg(strcmp(end, "\n") == 0, "summary must be one line ending in a newline: %s", json);
	for (int i = 0; i < nfields; i++)
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(fields[i].key, fields[j].key) != 0, "duplicate key %s", fields[i].key);
}

static struct field *get(const char *key, int kind)
{
	for (int i = 0; i < nfields; i++)
		if (strcmp(fields[i].key, key) == 0) {
			ck_assert_msg(fields[i].kind == kind, "field %s has the wrong type", key);
			return &fields[i];
		}
	ck_abort_msg("field %s missing", key);
	return NULL;
}

static unsigned long long num(const char *key)
{
	return get(key, 'n')->num;
}

static const char *const spec_fields[] = {
	"pid", "spilled_allocs", "spilled_frees", "spilled_bytes_live", "spilled_bytes_peak",
	"mapped_bytes_peak", "fallbacks", "fallback_reasons", "major_faults", "disk_read_bytes",
	"disk_write_bytes", "resident_bytes_peak", "elapsed_ms", "threshold", "dir",
};

/* Figures measured outside the counters: a number, or null where the system cannot tell. */
static int may_be_null(const char *key)
{
	return strcmp(key, "major_faults") == 0 || strcmp(key, "disk_read_bytes") == 0 ||
	       strcmp(key, "disk_write_bytes") == 0 || strcmp(key, "elapsed_ms") == 0;
}

static void summary(char *buf, size_t size)
{
	size_t n = spill_stats_json(buf, size);
	ck_assert_uint_eq(n, strlen(buf));
	parse_summary(buf);
	ck_assert_int_eq(nfields, (int)(sizeof spec_fields / sizeof *spec_fields));
	for (unsigned i = 0; i < sizeof spec_fields / sizeof *spec_fields; i++) {
		const char *k = spec_fields[i];
		int kind = strcmp(k, "dir") == 0 ? 's' : strcmp(k, "fallback_reasons") == 0 ? 'o' : 'n';
		for (int j = 0; j < nfields; j++)
			if (strcmp(fields[j].key, k) == 0 && fields[j].kind == 'z' && may_be_null(k))
				kind = 'z';
		(void)get(k, kind);
	}
}

static void config_for_test(void)
{
	memset(&spill_cfg, 0, sizeof spill_cfg);
	spill_cfg.threshold = 1 << 20;
	spill_cfg.max = SIZE_MAX;
	strcpy(spill_cfg.dir, "/var/tmp");
	spill_stats_reset();
}

START_TEST(test_empty_summary)
{
	char buf[1024];

	config_for_test();
	summary(buf, sizeof buf);
	ck_assert_uint_eq(num("pid"), (unsigned long long)getpid());
	ck_assert_uint_eq(num("spilled_allocs"), 0);
	ck_assert_uint_eq(num("spilled_frees"), 0);
	ck_assert_uint_eq(num("spilled_bytes_live"), 0);
	ck_assert_uint_eq(num("spilled_bytes_peak"), 0);
	ck_assert_uint_eq(num("mapped_bytes_peak"), 0);
	ck_assert_uint_eq(num("fallbacks"), 0);
	ck_assert_int_eq(get("fallback_reasons", 'o')->nsub, 0);
	ck_assert_uint_eq(num("threshold"), 1 << 20);
	ck_assert_str_eq(get("dir", 's')->str, "/var/tmp");
	ck_assert_uint_eq(num("resident_bytes_peak"), 0);
	/* reading the counters publishes nothing: no page, no descriptor */
	ck_assert_int_eq(spill_pub_fd(), -1);
}
END_TEST

START_TEST(test_counters)
{
	char buf[1024];

	config_for_test();
	ck_assert_int_eq(spill_stats_claim(8192, SIZE_MAX), 0);
	spill_stats_alloc(5000, 8192);
	ck_assert_int_eq(spill_stats_claim(4096, SIZE_MAX), 0);
	spill_stats_alloc(100, 4096);
	ck_assert_uint_eq(spill_stats_mapped_live(), 12288);
	spill_stats_resize(5000, 8192, 9000, 12288);	/* grow */
	ck_assert_int_eq(spill_stats_claim(4096, SIZE_MAX), 0);
	spill_stats_resize(9000, 12288, 1000, 4096);	/* shrink */
	spill_stats_unclaim(8192);
	spill_stats_unclaim(4096);
	spill_stats_free(100, 4096);
	spill_stats_fallback(SPILL_R_MAX);
	spill_stats_fallback(SPILL_R_MAX);
	spill_stats_fallback(SPILL_R_NO_SPACE);
	spill_stats_fallback(SPILL_R_FORK_DROP);
	summary(buf, sizeof buf);
	ck_assert_uint_eq(num("spilled_allocs"), 2);
	ck_assert_uint_eq(num("spilled_frees"), 1);
	ck_assert_uint_eq(num("spilled_bytes_live"), 1000);
	ck_assert_uint_eq(num("spilled_bytes_peak"), 9100);
	ck_assert_uint_eq(num("mapped_bytes_peak"), 16384);
	ck_assert_uint_eq(spill_stats_mapped_live(), 4096);
	ck_assert_uint_eq(num("fallbacks"), 4);
	struct field *r = get("fallback_reasons", 'o');
	ck_assert_int_eq(r->nsub, 3);
	for (int i = 0; i < r->nsub; i++) {
		ck_assert_int_eq(r->sub[i].kind, 'n');
		if (strcmp(r->sub[i].key, "max") == 0)
			ck_assert_uint_eq(r->sub[i].num, 2);
		else if (strcmp(r->sub[i].key, "no_space") == 0 || strcmp(r->sub[i].key, "fork_drop") == 0)
			ck_assert_uint_eq(r->sub[i].num, 1);
		else
			ck_abort_msg("unexpected reason %s", r->sub[i].key);
	}
}
END_TEST

/* Every reason has the name the documentation lists, and all of them fit in one summary. */
START_TEST(test_all_reasons)
{
	static const char *const names[] = { "max", "min_free", "no_space", "no_dir", "file",
					     "reservation_full", "memory_available", "fork_drop", "fork_cow" };
	char buf[1024];

	config_for_test();
	ck_assert_int_eq(SPILL_R_COUNT, 9);
	for (int r = 0; r < SPILL_R_COUNT; r++) {
		ck_assert_str_eq(spill_reason_name[r], names[r]);
		for (int k = 0; k <= r; k++)
			spill_stats_fallback((enum spill_reason)r);
	}
	summary(buf, sizeof buf);
	struct field *f = get("fallback_reasons", 'o');
	ck_assert_int_eq(f->nsub, SPILL_R_COUNT);
	for (int r = 0; r < SPILL_R_COUNT; r++) {
		ck_assert_str_eq(f->sub[r].key, names[r]);
		ck_assert_uint_eq(f->sub[r].num, (unsigned)r + 1);
	}
	ck_assert_uint_eq(num("fallbacks"), 45);
}
END_TEST

/* SPILL_MAX: a claim that would pass the cap fails and counts nothing. */
START_TEST(test_claim_cap)
{
	config_for_test();
	ck_assert_int_eq(spill_stats_claim(10, 15), 0);
	ck_assert_int_eq(spill_stats_claim(6, 15), -1);
	ck_assert_int_eq(spill_stats_claim(5, 15), 0);
	ck_assert_uint_eq(spill_stats_mapped_live(), 15);
	ck_assert_int_eq(spill_stats_claim(1, 15), -1);
	ck_assert_int_eq(spill_stats_claim(0, 15), 0);
	spill_stats_unclaim(15);
	ck_assert_int_eq(spill_stats_claim(16, 15), -1);
	ck_assert_int_eq(spill_stats_claim(0, 0), 0);
	ck_assert_int_eq(spill_stats_claim(1, 0), -1);
	/* no wrap-around near SIZE_MAX */
	ck_assert_int_eq(spill_stats_claim(5, SIZE_MAX), 0);
	ck_assert_int_eq(spill_stats_claim(SIZE_MAX, SIZE_MAX), -1);
	ck_assert_int_eq(spill_stats_claim(SIZE_MAX - 5, SIZE_MAX), 0);
	ck_assert_uint_eq(spill_stats_mapped_live(), SIZE_MAX);
}
END_TEST

/* The directory is free text: quotes, backslashes and control characters come back intact. */
START_TEST(test_dir_escaping)
{
	static const char *const dirs[] = { "/var/tmp/with \"quotes\"", "/a\\b\\\\c", "/tab\there/nl\nx/\x01\x1f",
					    "/utf8/\xc3\xa9t\xc3\xa9", "/" };
	char buf[2048];

	for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		config_for_test();
		strcpy(spill_cfg.dir, dirs[i]);
		summary(buf, sizeof buf);
		ck_assert_str_eq(get("dir", 's')->str, dirs[i]);
	}
}
END_TEST

/* Short buffers: always NUL-terminated, never written past the end (sanitizers watch). */
START_TEST(test_truncation)
{
	char full[1024];
	size_t n_full;

	config_for_test();
	strcpy(spill_cfg.dir, "/dir/with\"quote\\and\x01control");
	spill_stats_fallback(SPILL_R_MIN_FREE);
	spill_stats_fallback(SPILL_R_FILE);
	n_full = spill_stats_json(full, sizeof full);
	ck_assert_uint_eq(n_full, strlen(full));
	for (size_t size = 1; size <= n_full + 1; size++) {
		char *buf = malloc(size);
		size_t n = spill_stats_json(buf, size);
		ck_assert_msg(n < size, "size %zu: returned %zu", size, n);
		ck_assert_msg(strlen(buf) == n, "size %zu: length %zu, returned %zu", size, strlen(buf), n);
		free(buf);
	}
	/* A path long enough to fill the whole buffer still leaves a terminated string. */
	memset(spill_cfg.dir, 'x', PATH_MAX - 1);
	spill_cfg.dir[PATH_MAX - 1] = '\0';
	ck_assert_uint_lt(spill_stats_json(full, sizeof full), sizeof full);
	ck_assert_uint_lt(strlen(full), sizeof full);
}
END_TEST

static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/var/tmp/check_stats.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;
	ck_assert_msg(fd >= 0, "%s missing", path);
	n = read(fd, buf, size - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
}

/* SPILL_STATS=FILE: %p becomes the pid; each write appends one whole line. */
START_TEST(test_write_file)
{
	char path[PATH_MAX], buf[4096];

	config_for_test();
	make_tmpdir();
	spill_cfg.stats = SPILL_SINK_FILE;
	snprintf(spill_cfg.stats_path, sizeof spill_cfg.stats_path, "%s/stats-%%p.json", tmpdir);
	spill_stats_alloc(777, 4096);
	spill_stats_write();
	spill_stats_write();
	snprintf(path, sizeof path, "%s/stats-%d.json", tmpdir, (int)getpid());
	read_file(path, buf, sizeof buf);
	char *second = strchr(buf, '\n');
	ck_assert_ptr_nonnull(second);
	second++;
	ck_assert_ptr_eq(strchr(second, '\n'), second + strlen(second) - 1);	/* two whole lines */
	char first[sizeof buf];
	memcpy(first, buf, (size_t)(second - buf));
	first[second - buf] = '\0';
	parse_summary(first);		/* elapsed and I/O may differ: compare the parsed counters */
	ck_assert_uint_eq(num("spilled_allocs"), 1);
	ck_assert_uint_eq(num("spilled_bytes_live"), 777);
	parse_summary(second);
	ck_assert_uint_eq(num("spilled_allocs"), 1);
	ck_assert_uint_eq(num("spilled_bytes_live"), 777);
	ck_assert_uint_eq(num("pid"), (unsigned long long)getpid());
	unlink(path);
	rmdir(tmpdir);
	spill_cfg.stats = SPILL_SINK_OFF;	/* the exit-time summary would look for the directory */
}
END_TEST

static void write_stderr_child(void *arg)
{
	(void)arg;
	spill_stats_write();		/* off: nothing */
	spill_cfg.stats = SPILL_SINK_STDERR;
	spill_stats_write();
}

START_TEST(test_write_stderr_and_off)
{
	char buf[4096];
	pid_t pid;

	config_for_test();
	run_captured(write_stderr_child, NULL, buf, sizeof buf, &pid);
	parse_summary(buf);
	ck_assert_uint_eq(num("pid"), (unsigned long long)pid);
}
END_TEST

/* An unwritable SPILL_STATS path: one warning, no crash. */
static void write_child(void *arg)
{
	(void)arg;
	spill_stats_write();
}

START_TEST(test_write_unwritable)
{
	char buf[4096];

	config_for_test();
	spill_cfg.stats = SPILL_SINK_FILE;
	strcpy(spill_cfg.stats_path, "/nonexistent-dir/stats.json");
	run_captured(write_child, NULL, buf, sizeof buf, NULL);
	static const char want[] = "libspill: SPILL_STATS=\"/nonexistent-dir/stats.json\" cannot be written";
	ck_assert_msg(strncmp(buf, want, strlen(want)) == 0,
		      "got: %s", buf);
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + strlen(buf) - 1);
	spill_cfg.stats = SPILL_SINK_OFF;	/* and none at exit */
}
END_TEST

/* The exit-time figures: numbers where getrusage and /proc/self/io answer; the resident peak. */
START_TEST(test_usage_figures)
{
	char buf[2048];
	unsigned long long first;

	config_for_test();
	spill_stats_init();
	summary(buf, sizeof buf);
	first = num("elapsed_ms");
	(void)num("major_faults");
	if (access("/proc/self/io", R_OK) == 0) {
		(void)num("disk_read_bytes");
		(void)num("disk_write_bytes");
	}
	spill_stats_resident(12345);
	spill_stats_resident(100);
	summary(buf, sizeof buf);
	ck_assert_uint_eq(num("resident_bytes_peak"), 12345);
	ck_assert_uint_ge(num("elapsed_ms"), first);
}
END_TEST

/* 1 when a line of /proc/self/maps (all of it: sanitizers map a lot) ends in WHAT. */
static int maps_has(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[PATH_MAX + 256];
	int found = 0;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		found = strlen(line) >= strlen(what) && strcmp(line + strlen(line) - strlen(what), what) == 0;
	}
	fclose(f);
	return found;
}

static void proc_fd(char *path, size_t size, int fd)
{
	snprintf(path, size, "/proc/self/fd/%d", fd);
}

/*
 * The counters are published: the page shows as /memfd:libspill in /proc, opens read-only
 * through /proc/self/fd with magic, version, pid and the live counters, and is sealed.
 */
START_TEST(test_page)
{
	char link[64], target[256];
	struct spill_pub p;
	struct stat st;
	ssize_t n;
	int fd, r, w;

	config_for_test();
	ck_assert_int_eq(spill_pub_fd(), -1);
	spill_stats_alloc(5000, 8192);
	fd = spill_pub_fd();
	ck_assert_int_ge(fd, 3);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	proc_fd(link, sizeof link, fd);
	n = readlink(link, target, sizeof target - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_str_eq(target, "/memfd:" SPILL_PUB_NAME " (deleted)");
	ck_assert_int_eq(maps_has("/memfd:" SPILL_PUB_NAME " (deleted)"), 1);

	r = open(link, O_RDONLY);
	ck_assert_int_ge(r, 0);
	ck_assert_int_eq(pread(r, &p, sizeof p, 0), sizeof p);
	ck_assert_int_eq(memcmp(p.magic, SPILL_PUB_MAGIC, sizeof p.magic), 0);
	ck_assert_uint_eq(p.version, SPILL_PUB_VERSION);
	ck_assert_uint_eq(p.size, sizeof p);
	ck_assert_int_eq(p.pid, getpid());
	ck_assert_uint_eq(p.reason_count, SPILL_R_COUNT);
	ck_assert_int_eq(p.fd, -1);		/* no spill file in this test */
	ck_assert_uint_eq(p.threshold, 1 << 20);
	ck_assert_str_eq(p.dir, "/var/tmp");
	ck_assert_uint_eq(p.allocs, 1);
	ck_assert_uint_eq(p.bytes_live, 5000);
	/* a live view, not a copy */
	spill_stats_alloc(1000, 4096);
	spill_stats_fallback(SPILL_R_NO_SPACE);
	ck_assert_int_eq(pread(r, &p, sizeof p, 0), sizeof p);
	ck_assert_uint_eq(p.allocs, 2);
	ck_assert_uint_eq(p.bytes_live, 6000);
	ck_assert_uint_eq(p.fallbacks, 1);
	ck_assert_uint_eq(p.reasons[SPILL_R_NO_SPACE], 1);
	/* read-only to anyone who opens it again (root aside), and it cannot be cut short */
	ck_assert_int_eq(fstat(r, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0400);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
	w = open(link, O_RDWR);
	if (geteuid() != 0)
		ck_assert_int_eq(w, -1);
	if (w >= 0) {
		ck_assert_int_ne(ftruncate(w, 0), 0);
		close(w);
	}
	close(r);
}
END_TEST

/* A fork child gets a page of its own, under the same descriptor number; the parent's is untouched. */
START_TEST(test_page_fork)
{
	struct stat before;
	int status, fd;
	pid_t pid;

	config_for_test();
	spill_stats_init();
	spill_stats_alloc(100, 4096);
	fd = spill_pub_fd();
	ck_assert_int_eq(fstat(fd, &before), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct stat st;
		int bad = 0;
		bad |= (spill_pub_fd() != fd) << 0;
		bad |= (fstat(fd, &st) != 0 || st.st_ino == before.st_ino) << 1;
		bad |= (spill_pub->pid != getpid()) << 2;
		bad |= (spill_pub->allocs != 1 || spill_pub->bytes_live != 100) << 3;	/* inherited */
		spill_stats_alloc(200, 4096);
		bad |= (spill_pub->allocs != 2 || spill_pub->bytes_live != 300) << 4;
		bad |= (fstat(fd, &st) != 0 || (st.st_mode & 0777) != 0400) << 5;
		_exit(bad);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check bits 0x%x", WEXITSTATUS(status));
	ck_assert_int_eq(spill_pub->pid, getpid());
	ck_assert_uint_eq(spill_pub->allocs, 1);
	ck_assert_uint_eq(spill_pub->bytes_live, 100);
}
END_TEST

Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_empty_summary);
	tcase_add_test(core, test_counters);
	tcase_add_test(core, test_all_reasons);
	tcase_add_test(core, test_write_file);
	tcase_add_test(core, test_write_stderr_and_off);
	tcase_add_test(core, test_write_unwritable);
	tcase_add_test(core, test_usage_figures);
	tcase_add_test(core, test_page);
	tcase_add_test(core, test_page_fork);
	suite_add_tcase(s, core);
	tcase_add_test(limits, test_claim_cap);
	tcase_add_test(limits, test_dir_escaping);
	tcase_add_test(limits, test_truncation);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
