/* SPDX-License-Identifier: MIT */
/*
 * fork.c - fork() and spilled blocks: no write crosses between parent and child (SPILL_FORK=cow,
 * the default, and copy), SPILL_FORK=drop children, forks while threads allocate,
 * posix_spawn/system/popen/vfork with spilled blocks live, a bad SPILL_FORK value. Prints (does
 * not assert) the fork cost. Runs under LD_PRELOAD with SPILL_THRESHOLD=1M (fork.env); re-runs
 * itself for the other modes. tests/integration/cow.c tests what is particular to cow.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
#define BLOCK (2 * MIB)
#define NBLOCKS 4

extern char **environ;
static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		printf("FAIL %s:%d: ", __FILE__, __LINE__); \
		printf(__VA_ARGS__); \
		putchar('\n'); \
		failures++; \
	} \
} while (0)

/*
 * The inode of the "(deleted)" file mapped at P, 0 when P is not in such a mapping. SHARED:
 * only a MAP_SHARED mapping counts (a copy-on-write one shares nothing writable).
 */
static unsigned long mapped_inode(const void *p, int shared)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	unsigned long ino = 0;

	while (f && fgets(line, sizeof line, f)) {
		uintptr_t lo, hi;
		unsigned long i;
		char perms[8];
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %lu", &lo, &hi, perms, &i) != 4)
			continue;
		if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
			if (strstr(line, "(deleted)") && (!shared || perms[3] == 's'))
				ino = i;
			break;
		}
	}
	if (f)
		fclose(f);
	return ino;
}

static unsigned long spill_inode(const void *p)
{
	return mapped_inode(p, 0);
}

static void fill(void *p, size_t n, unsigned char v)
{
	memset(p, v, n);
}

/* 1 when every 512th byte and the last of P are V. */
static int holds(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i += 512)
		if (c[i] != v)
			return 0;
	return c[n - 1] == v;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_ok(pid_t pid, const char *what)
{
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		printf("FAIL waitpid %s: %s\n", what, strerror(errno));
		return 0;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 1;
	printf("FAIL %s: child %s %d\n", what, WIFSIGNALED(st) ? "killed by signal" : "exit",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	return 0;
}

/* Writes by either side after fork are invisible to the other, in several blocks. */
static void test_isolation(void)
{
	unsigned char *b[NBLOCKS];
	int to_child[2], to_parent[2];
	unsigned long parent_ino;
	char c;
	pid_t pid;

	for (int i = 0; i < NBLOCKS; i++) {
		b[i] = malloc(BLOCK);
		fill(b[i], BLOCK, 'A');
	}
	parent_ino = spill_inode(b[0]);
	CHECK(parent_ino != 0, "a %zu-byte block is not spilled", BLOCK);
	if (pipe(to_child) || pipe(to_parent))
		abort();
	pid = fork();
	if (pid == 0) {
		int bad = 0;
		if (read(to_child[0], &c, 1) != 1)	/* the parent has written 'P' */
			_exit(2);
		for (int i = 0; i < NBLOCKS; i++)
			bad |= !holds(b[i], BLOCK, 'A');
		if (bad)
			printf("FAIL child sees the parent's writes made after fork\n");
		if (spill_inode(b[0]) == 0 || mapped_inode(b[0], 1) == parent_ino) {
			printf("FAIL child block shares the parent's spill file writable (inode %lu, parent %lu)\n",
			       spill_inode(b[0]), parent_ino);
			bad = 1;
		}
		for (int i = 0; i < NBLOCKS; i++)
			fill(b[i], BLOCK, 'C');
		if (write(to_parent[1], "c", 1) != 1)
			_exit(2);
		/* the child's own blocks work: free, realloc, new */
		free(b[0]);
		b[1] = realloc(b[1], 3 * BLOCK);
		bad |= !b[1] || !holds(b[1], BLOCK, 'C');
		unsigned char *n = malloc(BLOCK);
		fill(n, BLOCK, 'N');
		if (!holds(n, BLOCK, 'N') || mapped_inode(n, 1) == 0 || mapped_inode(n, 1) == parent_ino) {
			printf("FAIL child's new block is not in a spill file of its own (inode %lu)\n",
			       mapped_inode(n, 1));
			bad = 1;
		}
		_exit(bad);
	}
	/* right after fork returns: the parent writes at once */
	for (int i = 0; i < NBLOCKS; i++)
		fill(b[i], BLOCK, 'P');
	if (write(to_child[1], "p", 1) != 1 || read(to_parent[0], &c, 1) != 1)
		abort();
	for (int i = 0; i < NBLOCKS; i++)
		CHECK(holds(b[i], BLOCK, 'P'), "parent block %d sees the child's writes", i);
	CHECK(wait_ok(pid, "isolation child"), "isolation child failed");
	for (int i = 0; i < NBLOCKS; i++) {
		CHECK(holds(b[i], BLOCK, 'P'), "parent block %d changed after the child's frees", i);
		free(b[i]);
	}
	close(to_child[0]), close(to_child[1]), close(to_parent[0]), close(to_parent[1]);
	printf("isolation (SPILL_FORK=%s): %d blocks, both directions, parent writes right after fork: done\n",
	       getenv("SPILL_FORK") ? getenv("SPILL_FORK") : "default", NBLOCKS);
}

/* Threads allocating spilled and small blocks while the main thread forks 100 times
 * (FORK_THREAD_FORKS=N: N times; tests/vm runs fewer under emulation). */
static volatile int stop;

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	while (!stop) {
		size_t n = rand_r(&seed) % 2 ? BLOCK + rand_r(&seed) % MIB : 1 + (size_t)(rand_r(&seed) % 4096);
		unsigned char v = (unsigned char)rand_r(&seed);
		unsigned char *p = malloc(n);
		if (!p) {
			printf("FAIL churn malloc(%zu)\n", n);
			failures++;
			return NULL;
		}
		fill(p, n, v);
		if (!holds(p, n, v)) {
			printf("FAIL churn block lost its contents\n");
			failures++;
		}
		p = realloc(p, n + 8192);
		free(p);
	}
	return NULL;
}

static void test_fork_threads(void)
{
	pthread_t t[3];
	unsigned char *keep = malloc(BLOCK);
	double t0 = now(), in_fork = 0;
	int ok = 0, forks = getenv("FORK_THREAD_FORKS") ? atoi(getenv("FORK_THREAD_FORKS")) : 100;

	fill(keep, BLOCK, 'K');
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < forks; i++) {
		double t1 = now();
		pid_t pid = fork();
		if (pid == 0) {
			alarm(20);
			unsigned char *n = malloc(BLOCK);
			int bad = !holds(keep, BLOCK, 'K') || !n;
			if (n) {
				fill(n, BLOCK, 'n');
				bad |= !holds(n, BLOCK, 'n');
				free(n);
			}
			free(keep);
			_exit(bad);
		}
		in_fork += now() - t1;
		ok += wait_ok(pid, "fork-while-threads child");
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK(ok == forks, "%d of %d children forked beside 3 allocating threads failed", forks - ok, forks);
	CHECK(holds(keep, BLOCK, 'K'), "parent block changed");
	free(keep);
	printf("fork while 3 threads allocate: %d forks in %.2f s (%.1f ms in fork() on average), no deadlock\n",
	       forks, now() - t0, forks ? in_fork * 1e3 / forks : 0);
}

/* posix_spawn, system, popen, vfork+exec with spilled blocks live. */
static void test_spawners(const char *self)
{
	size_t big = 64 * MIB;
	unsigned char *b = malloc(big);
	char *argv[] = { "/bin/sh", "-c", "exit 7", NULL };
	char line[64] = "";
	int st = -1;
	pid_t pid;
	double t0;
	FILE *f;

	fill(b, big, 'S');
	t0 = now();
	CHECK(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) == 0, "posix_spawn");
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7, "posix_spawn child status %d", st);
	printf("posix_spawn with %zu MiB spilled: %.1f ms\n", big / MIB, (now() - t0) * 1e3);
	t0 = now();
	st = system("exit 5");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "system() status %d", st);
	printf("system() with %zu MiB spilled: %.1f ms\n", big / MIB, (now() - t0) * 1e3);
	t0 = now();
	f = popen("echo popen-ok", "r");
	CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "popen-ok\n"), "popen read \"%s\"", line);
	CHECK(f && pclose(f) == 0, "pclose");
	printf("popen() with %zu MiB spilled: %.1f ms\n", big / MIB, (now() - t0) * 1e3);
	t0 = now();
	pid = vfork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 3", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 3, "vfork+exec status %d", st);
	printf("vfork+exec with %zu MiB spilled: %.1f ms\n", big / MIB, (now() - t0) * 1e3);
	t0 = now();
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 3", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 3, "fork+exec status %d", st);
	printf("fork+exec with %zu MiB spilled: %.1f ms\n", big / MIB, (now() - t0) * 1e3);
	CHECK(holds(b, big, 'S'), "block changed across spawns");
	free(b);
	(void)self;
}

/* Fork copy cost: fork() with N MiB of written spilled data, against fork() with none. */
static void measure_fork_cost(void)
{
	const char *s = getenv("FORK_COST_MIB");
	size_t mib = s ? strtoul(s, NULL, 0) : 1024, n = mib * MIB;

	double t0, base = 1e9, with = 1e9;
	unsigned char *b;

	if (!mib)
		return;
	for (int i = 0; i < 3; i++) {
		t0 = now();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		base = now() - t0 < base ? now() - t0 : base;
		waitpid(pid, NULL, 0);
	}
	if (!(b = malloc(n))) {
		printf("fork cost: cannot allocate %zu MiB, not measured\n", mib);
		return;
	}
	fill(b, n, 'G');
	for (int i = 0; i < 2; i++) {
		t0 = now();
		pid_t pid = fork();
		if (pid == 0)
			_exit(holds(b, n, 'G') ? 0 : 1);
		double d = now() - t0;
		with = d < with ? d : with;
		CHECK(wait_ok(pid, "fork-cost child"), "fork-cost child saw wrong data");
	}
	printf("FORK COST: fork() with %zu MiB of written spilled data: %.1f ms (no spilled data: %.2f ms) "
	       "=> %.0f ms per GiB\n", mib, with * 1e3, base * 1e3, (with - base) * 1e3 * 1024 / mib);
	free(b);
}

/* SPILL_FORK=drop (re-run of this program): the child does not get the spilled blocks. */
static int drop_mode(void)
{
	unsigned char *a = malloc(BLOCK), *b = malloc(BLOCK), *c = malloc(BLOCK);
	pid_t pid;

	fill(a, BLOCK, 'a'), fill(b, BLOCK, 'b'), fill(c, BLOCK, 'c');
	CHECK(spill_inode(a) != 0, "drop: block not spilled");
	pid = fork();
	if (pid == 0) {
		int bad = 0, st;
		free(b);			/* freeing an inherited block is fine */
		errno = 0;
		void *r = realloc(c, 2 * BLOCK);
		if (r || errno != ENOMEM) {
			printf("FAIL drop child: realloc of an inherited block gave %p errno %d\n", r, errno);
			bad = 1;
		}
		unsigned char *n = malloc(BLOCK);
		if (!n || spill_inode(n) != 0) {
			printf("FAIL drop child: a new large block is %s\n", n ? "spilled" : "NULL");
			bad = 1;
		} else {
			fill(n, BLOCK, 'n');
			bad |= !holds(n, BLOCK, 'n');
			n = realloc(n, 3 * BLOCK);
			bad |= !n || !holds(n, BLOCK, 'n');
			free(n);
		}
		pid_t g = fork();
		if (g == 0) {
			signal(SIGSEGV, SIG_DFL);
			a[0] = 'x';		/* touching an inherited block: SIGSEGV */
			_exit(0);
		}
		if (waitpid(g, &st, 0) != g || !WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV) {
			printf("FAIL drop grandchild: touching an inherited block did not SIGSEGV (status %d)\n", st);
			bad = 1;
		}
		if (system("exit 0") != 0) {
			printf("FAIL drop child: system()\n");
			bad = 1;
		}
		_exit(bad);
	}
	CHECK(wait_ok(pid, "drop child"), "drop child failed");
	CHECK(holds(a, BLOCK, 'a') && holds(b, BLOCK, 'b') && holds(c, BLOCK, 'c'),
	      "drop: parent blocks changed by the child's free/realloc");
	fill(b, BLOCK, 'B');
	CHECK(holds(b, BLOCK, 'B'), "drop: parent cannot write its block after the child freed it");
	free(a), free(b), free(c);
	printf("SPILL_FORK=drop: child frees inherited blocks, its realloc gives ENOMEM, new large "
	       "blocks in RAM, touching an inherited block SIGSEGVs: %s\n", failures ? "FAILED" : "ok");
	return failures != 0;
}

/* Runs this program again as MODE with VAR set; returns its exit status, its stderr in ERR. */
static int rerun(const char *self, const char *mode, const char *var, char *err, size_t errsize)
{
	int p[2], st;
	char *argv[] = { (char *)self, (char *)mode, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	size_t n = 0;
	ssize_t r;

	setenv(strchr(var, '=') ? "SPILL_FORK" : var, strchr(var, '=') + 1, 1);
	if (pipe(p))
		abort();
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	if (posix_spawn(&pid, self, &fa, NULL, argv, environ))
		abort();
	close(p[1]);
	while (n + 1 < errsize && (r = read(p[0], err + n, errsize - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = '\0';
	close(p[0]);
	waitpid(pid, &st, 0);
	unsetenv("SPILL_FORK");
	fflush(stdout);
	return st;
}

int main(int argc, char **argv)
{
	char self[4096], err[8192];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(100);	/* a deadlock ends the test with SIGALRM instead of hanging make check */
	if (n <= 0)
		return 1;
	self[n] = '\0';
	if (argc > 1 && !strcmp(argv[1], "drop"))
		return drop_mode();
	if (argc > 1 && !strcmp(argv[1], "isolation")) {
		test_isolation();
		return failures != 0;
	}

	test_isolation();
	test_fork_threads();
	test_spawners(self);

	st = rerun(self, "drop", "SPILL_FORK=drop", err, sizeof err);
	fputs(err, stdout);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SPILL_FORK=drop run failed (status %d)", st);

	st = rerun(self, "isolation", "SPILL_FORK=copy", err, sizeof err);
	fputs(err, stdout);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SPILL_FORK=copy isolation failed (status %d)", st);

	st = rerun(self, "isolation", "SPILL_FORK=sideways", err, sizeof err);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SPILL_FORK=sideways: the default not kept (status %d)", st);
	CHECK(!strncmp(err, "libspill: SPILL_FORK=", 21) && strchr(err, '\n') &&
	      strchr(err, '\n')[1] == '\0', "SPILL_FORK=sideways: expected one \"libspill: SPILL_FORK=\" line, got \"%s\"", err);
	printf("SPILL_FORK=sideways: %s", err);

	measure_fork_cost();
	if (failures) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	puts("ok");
	return 0;
}
