/* SPDX-License-Identifier: MIT */
/*
 * huge.c - absurd requests through every entry point: SIZE_MAX, SIZE_MAX/2, PTRDIFF_MAX+1, sizes
 * past the reservation and the disk, overflowing calloc/reallocarray, alignments that are not
 * powers of two or absurdly large. Under libspill each must give what glibc gives (the program
 * runs itself again without LD_PRELOAD and compares), the huge ones NULL/ENOMEM
 * (posix_memalign: ENOMEM returned, errno untouched), never a crash, never a giant spill file.
 */
#include <errno.h>
#include <malloc.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
#define TIB ((size_t)1 << 40)

extern char **environ;
static char out[65536];
static size_t used;
static const char *dir;
static unsigned long long avail0, min_avail;
static int failures;

static unsigned long long avail(void)
{
	struct statvfs sv;
	return dir && statvfs(dir, &sv) == 0 ? (unsigned long long)sv.f_bavail * sv.f_frsize : 0;
}

static void watch_disk(void)
{
	unsigned long long a = avail();
	if (a < min_avail)
		min_avail = a;
}

static const char *ename(int e)
{
	return e == 0 ? "0" : e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : e == 12345 ? "untouched" : "other";
}

/* One outcome line: what P and errno say (alignment seen, for non-NULL blocks). */
static size_t want_align;	/* alignment asked for by the current call, 0 for none */

static void record(const char *name, void *p, int err)
{
	size_t a = 0;
	int pow2 = want_align && !(want_align & (want_align - 1));

	if (p)
		for (a = 1; a < 4096 && (uintptr_t)p % (a * 2) == 0; a *= 2)
			;
	used += (size_t)snprintf(out + used, sizeof out - used, "%s: %s errno=%s%s\n", name,
				 p ? "non-NULL" : "NULL", p ? "-" : ename(err),
				 p ? (a >= 4096 ? " align>=4096" : a >= 64 ? " align>=64" : " align<64") : "");
	if (p && pow2)		/* kept out of the comparison with glibc, see main */
		used += (size_t)snprintf(out + used - 1, sizeof out - used + 1, " {%s}\n",
					 (uintptr_t)p % want_align ? "MISALIGNED" : "aligned") - 1;
	watch_disk();
	free(p);
}

#define TRY(name, call) do { errno = 12345; void *p_ = (call); record(name, p_, errno); } while (0)

static void run_cases(void)
{
	static const struct { const char *name; size_t n; } sizes[] = {
		{ "SIZE_MAX", SIZE_MAX }, { "SIZE_MAX/2", SIZE_MAX / 2 }, { "PTRDIFF_MAX+1", (size_t)PTRDIFF_MAX + 1 },
		{ "PTRDIFF_MAX", PTRDIFF_MAX }, { "SIZE_MAX-4095", SIZE_MAX - 4095 }, { "2TiB", 2 * TIB },
		{ "64TiB", 64 * TIB },
	};
	static const size_t aligns[] = { 3, 24, 48, 100, 4097, 12288, (size_t)1 << 40, (size_t)1 << 62,
					 ((size_t)1 << 63) + 1, SIZE_MAX };
	char name[128];
	void *small = malloc(100), *big = malloc(4 * MIB);

	memset(small, 's', 100);
	memset(big, 'b', 4 * MIB);
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		size_t n = sizes[i].n;
		const char *s = sizes[i].name;
		int r;
		void *q = (void *)0x1;

#define NAME(fn) (snprintf(name, sizeof name, "%s(%s)", fn, s), name)
		TRY(NAME("malloc"), malloc(n));
		TRY(NAME("calloc1"), calloc(1, n));
		TRY(NAME("calloc2"), calloc(n, 2));
		TRY(NAME("calloc_n"), calloc(n / 4096 ? n / 4096 : 1, 4096));
		TRY(NAME("realloc_null"), realloc(NULL, n));
		errno = 12345;
		void *rs = realloc(small, n);
		record(NAME("realloc_small"), rs ? rs : NULL, errno);
		if (rs)
			small = malloc(100);
		errno = 12345;
		void *rb = realloc(big, n);
		record(NAME("realloc_big"), rb, errno);
		if (rb)
			big = malloc(4 * MIB);
		errno = 12345;
		void *ra = reallocarray(big, n, 3);
		record(NAME("reallocarray_big"), ra, errno);
		if (ra)
			big = malloc(4 * MIB);
		TRY(NAME("memalign64"), memalign(64, n));
		TRY(NAME("aligned_alloc64"), aligned_alloc(64, n));
		TRY(NAME("valloc"), valloc(n));
		TRY(NAME("pvalloc"), pvalloc(n));
		errno = 12345;
		r = posix_memalign(&q, 64, n);
		used += (size_t)snprintf(out + used, sizeof out - used, "%s: ret=%s out=%s [errno=%s]\n",
					 NAME("posix_memalign64"), ename(r),
					 q == (void *)0x1 ? "untouched" : "set", ename(errno));
		if (!r)
			free(q);
		watch_disk();
	}
	/* the old blocks of failed reallocs are intact */
	int small_ok = 1, big_ok = 1;
	for (int i = 0; i < 100; i++)
		small_ok &= ((char *)small)[i] == 's';
	for (size_t i = 0; i < 4 * MIB; i += 4096)
		big_ok &= ((char *)big)[i] == 'b';
	used += (size_t)snprintf(out + used, sizeof out - used, "failed realloc keeps blocks: small=%d big=%d\n",
				 small_ok, big_ok);
	free(small);
	free(big);

	/* alignments that are not powers of two (or absurd), with small and spilled sizes */
	for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
		static const size_t ns[] = { 100, 2 * MIB, 64 * MIB };
		for (size_t j = 0; j < 3; j++) {
			size_t a = aligns[i], n = ns[j];
			void *q = (void *)0x1;
			int r;
			want_align = a;
			snprintf(name, sizeof name, "memalign(%#zx, %zu)", a, n);
			TRY(name, memalign(a, n));
			snprintf(name, sizeof name, "aligned_alloc(%#zx, %zu)", a, n);
			TRY(name, aligned_alloc(a, n));
			want_align = 0;
			errno = 12345;
			r = posix_memalign(&q, a, n);
			used += (size_t)snprintf(out + used, sizeof out - used,
						 "posix_memalign(%#zx, %zu): ret=%s out=%s [errno=%s]%s\n", a, n,
						 ename(r), q == (void *)0x1 ? "untouched" : "set", ename(errno),
						 r ? "" : (uintptr_t)q % a ? " {MISALIGNED}" : " {aligned}");
			if (!r)
				free(q);
			watch_disk();
		}
	}
}

/* Runs this program again with no LD_PRELOAD and reads its report: glibc's answers. */
static int glibc_answers(const char *self, char *buf, size_t size)
{
	char *argv[] = { (char *)self, "glibc", NULL }, **env;
	size_t n = 0, k = 0;
	posix_spawn_file_actions_t fa;
	int p[2], st;
	ssize_t r;
	pid_t pid;

	for (char **e = environ; *e; e++)
		n++;
	env = calloc(n + 1, sizeof *env);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11))
			env[k++] = *e;
	if (pipe(p))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	if (posix_spawn(&pid, self, &fa, NULL, argv, env))
		return -1;
	close(p[1]);
	n = 0;
	while (n + 1 < size && (r = read(p[0], buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(p[0]);
	free(env);
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static char ref[65536];
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *a, *b, *ea, *eb;

	dir = getenv("SPILL_DIR");
	avail0 = min_avail = avail();
	run_cases();
	if (argc > 1 && !strcmp(argv[1], "glibc")) {
		fputs(out, stdout);
		return 0;
	}
	if (n <= 0 || (self[n] = '\0', glibc_answers(self, ref, sizeof ref))) {
		puts("FAIL: cannot run the glibc reference");
		return 1;
	}
	/*
	 * Line by line: libspill's answer against glibc's. The "[errno=...]" of posix_memalign is
	 * left out: glibc sets errno there, libspill leaves it alone (POSIX reports by the result).
	 */
	for (a = out, b = ref; *a || *b; a = ea + !!*ea, b = eb + !!*eb) {
		ea = strchr(a, '\n') ? strchr(a, '\n') : a + strlen(a);
		eb = strchr(b, '\n') ? strchr(b, '\n') : b + strlen(b);
		/*
		 * A power-of-two alignment glibc cannot serve (it needs size + alignment bytes) may
		 * succeed inside libspill's reservation: fine when the block really is aligned.
		 */
		if (memmem(a, (size_t)(ea - a), "MISALIGNED", 10)) {
			printf("FAIL misaligned: %.*s\n", (int)(ea - a), a);
			failures++;
		} else if (memmem(a, (size_t)(ea - a), " {aligned}", 10) &&
			   (memmem(b, (size_t)(eb - b), "NULL errno=ENOMEM", 17) ||
			    memmem(b, (size_t)(eb - b), "ret=ENOMEM", 10))) {
			printf("note: %.*s (glibc: ENOMEM)\n", (int)(ea - a), a);
			continue;
		}
		if (memmem(a, (size_t)(ea - a), " [errno=", 8) && memmem(b, (size_t)(eb - b), " [errno=", 8)) {
			ea = memmem(a, (size_t)(ea - a), " [errno=", 8);
			eb = memmem(b, (size_t)(eb - b), " [errno=", 8);
			int same = ea - a == eb - b && !memcmp(a, b, (size_t)(ea - a));
			if (!same) {
				printf("FAIL differs from glibc:\n  libspill: %.*s\n  glibc:    %.*s\n", (int)(ea - a), a,
				       (int)(eb - b), b);
				failures++;
			}
			ea = strchr(ea, '\n'), eb = strchr(eb, '\n');
			continue;
		}
		if (ea - a != eb - b || memcmp(a, b, (size_t)(ea - a))) {
			printf("FAIL differs from glibc:\n  libspill: %.*s\n  glibc:    %.*s\n", (int)(ea - a), a,
			       (int)(eb - b), b);
			failures++;
		}
	}
	/* and the absolute rules, whatever glibc says */
	for (a = out; (a = strstr(a, "(SIZE_MAX")); a++) {
		char *line = a;
		while (line > out && line[-1] != '\n')
			line--;
		ea = strchr(a, '\n');
		if (!strstr(line, "errno=ENOMEM") && !strstr(line, "ret=ENOMEM")) {
			printf("FAIL not ENOMEM: %.*s\n", (int)(ea - line), line);
			failures++;
		}
		a = ea;
	}
	for (a = out; (a = strstr(a, "posix_memalign")); a++) {	/* large requests: libspill's path */
		ea = strchr(a, '\n');
		if (!memmem(a, (size_t)(ea - a), ", 100)", 6) && !memmem(a, (size_t)(ea - a), "errno=untouched", 15)) {
			printf("FAIL posix_memalign changed errno: %.*s\n", (int)(ea - a), a);
			failures++;
		}
		a = ea;
	}
	for (a = out; (a = strstr(a, "(PTRDIFF_MAX+1)")); a++) {
		ea = strchr(a, '\n');
		if (!memmem(a, (size_t)(ea - a), "ENOMEM", 6)) {
			printf("FAIL not ENOMEM: %.*s\n", (int)(ea - a), a);
			failures++;
		}
		a = ea;
	}
	size_t lines = 0;
	for (a = out; *a; a++)
		lines += *a == '\n';
	printf("%zu cases compared with glibc; SPILL_DIR free space: before %llu MiB, lowest %llu MiB\n",
	       lines, avail0 >> 20, min_avail >> 20);
	if (dir && avail0 - min_avail > 256 * MIB) {
		printf("FAIL the spill partition lost %llu MiB during the run: a giant file\n", (avail0 - min_avail) >> 20);
		failures++;
	}
	if (failures) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	puts("ok");
	return 0;
}
