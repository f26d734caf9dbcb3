/* SPDX-License-Identifier: MIT */
/*
 * cow.c - SPILL_FORK=cow, and the snapshot both sharing modes take at fork(): isolation both
 * ways across three generations and sparse blocks, a child that forks before it has a file,
 * one that execs, take-back at wait(), a writer thread racing fork(), quarantine of blocks
 * freed while a child shares them (and their disk space afterwards), a child killed with
 * SIGKILL, too many mappings at a fork, and a fork while the file holds no live block. Runs with SPILL_THRESHOLD=1M (cow.env), re-runs
 * itself with SPILL_FORK=copy for the tests both modes share, and for the mapping limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
#define PAGE 4096

extern char **environ;
static int failures;
static const char *mode = "cow";

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		printf("FAIL [%s] %s:%d: ", mode, __FILE__, __LINE__); \
		printf(__VA_ARGS__); \
		putchar('\n'); \
		failures++; \
	} \
} while (0)

/* What /proc/self/maps says about the mapping that holds P. */
struct where {
	unsigned long ino;
	uint64_t off;		/* file offset of P */
	char perms[8];		/* "rw-s": MAP_SHARED, "rw-p": private */
};

static int where_is(const void *p, struct where *w)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;

	while (f && !found && fgets(line, sizeof line, f)) {
		uintptr_t lo, hi;
		unsigned long long pgoff;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %*s %lu", &lo, &hi, w->perms,
			   &pgoff, &w->ino) != 5)
			continue;
		if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
			found = strstr(line, "(deleted)") != NULL;
			w->off = (uintptr_t)p - lo + pgoff;
		}
	}
	if (f)
		fclose(f);
	return found;
}

static int is_shared(const void *p)
{
	struct where w;
	return where_is(p, &w) && w.perms[3] == 's';
}

/* A descriptor of our own on the spill file with inode INO, found in /proc/self/fd. */
static int open_spill_file(unsigned long ino)
{
	for (int fd = 3; fd < 65536; fd++) {
		struct stat st;
		char path[64];
		if (fstat(fd, &st) || st.st_ino != ino || !S_ISREG(st.st_mode))
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		return open(path, O_RDONLY | O_CLOEXEC);
	}
	return -1;
}

/* Does the file hold data (not a hole) anywhere in [off, off+len)? */
static int has_data(int fd, uint64_t off, uint64_t len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	return d >= 0 && (uint64_t)d < off + len;
}

static unsigned char pat(unsigned tag, size_t i)
{
	return (unsigned char)(tag * 37u + i / PAGE * 11u + i % 251u + 1u);
}

/* A sparse block: written runs separated by holes, the first page, a one-page run, the end. */
static void write_sparse(unsigned char *p, size_t n, unsigned tag)
{
	static const size_t runs[][2] = { { 0, 1 }, { 3, 2 }, { 9, 1 }, { 20, 7 } };
	for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++)
		for (size_t i = runs[r][0] * PAGE; i < (runs[r][0] + runs[r][1]) * PAGE && i < n; i++)
			p[i] = pat(tag, i);
	for (size_t i = n > 3 * PAGE ? n - 3 * PAGE + 17 : 0; i < n; i++)
		p[i] = pat(tag, i);
}

static int in_sparse(size_t i, size_t n)
{
	size_t pg = i / PAGE;
	return pg == 0 || pg == 3 || pg == 4 || pg == 9 || (pg >= 20 && pg < 27) ||
	       (n > 3 * PAGE && i >= n - 3 * PAGE + 17);
}

/* Index of the first byte of P that is not what write_sparse(TAG) leaves, or -1. */
static long check_sparse(const unsigned char *p, size_t n, unsigned tag)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (in_sparse(i, n) ? pat(tag, i) : 0))
			return (long)i;
	return -1;
}

static void fill(unsigned char *p, size_t n, unsigned char v)
{
	memset(p, v, n);
}

static int holds(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i += 509)
		if (p[i] != v)
			return 0;
	return p[n - 1] == v;
}

static int wait_ok(pid_t pid, const char *what)
{
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		printf("FAIL [%s] waitpid %s: %s\n", mode, what, strerror(errno));
		failures++;
		return 0;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 1;
	printf("FAIL [%s] %s: child %s %d\n", mode, what, WIFSIGNALED(st) ? "killed by signal" : "exit",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	failures++;
	return 0;
}

/*
 * Three generations. Blocks: sparse ones of odd sizes, and dense ones. Each generation checks
 * what it inherited, writes every page of it, and must never see another's writes; the child
 * forks before it has spilled anything of its own, frees one inherited block, grows another
 * (which moves or copies it into the child's own file) and spills a new one.
 */
#define NB 5
static const size_t sizes[NB] = { 3 * MIB + 123, 2 * MIB, 1 * MIB + 1, 5 * MIB + 4095, 2 * MIB };

static int generation(unsigned char **b, unsigned tag, unsigned char mine, int depth)
{
	int bad = 0;

	for (int i = 0; i < NB; i++) {
		long at = i < 3 ? check_sparse(b[i], sizes[i], tag + (unsigned)i) : -1;
		if (at >= 0 || (i >= 3 && !holds(b[i], sizes[i], (unsigned char)('A' + i)))) {
			printf("FAIL [%s] generation %d: inherited block %d wrong at byte %ld\n", mode, depth, i, at);
			bad = 1;
		}
		if (is_shared(b[i]) && depth > 0) {
			struct where w;
			where_is(b[i], &w);
			/* shared is fine only in a file of this process's own (copy mode) */
			if (!strcmp(mode, "cow")) {
				printf("FAIL [%s] generation %d: inherited block %d is MAP_SHARED\n", mode, depth, i);
				bad = 1;
			}
		}
	}
	if (depth == 2)
		return bad;
	pid_t pid = fork();
	if (pid == 0) {
		int cbad = generation(b, tag, (unsigned char)(mine + 1), depth + 1);
		for (int i = 0; i < NB; i++)
			fill(b[i], sizes[i], (unsigned char)(mine + 1));
		/* the grandchild's own operations on what it inherited */
		free(b[0]);
		unsigned char *g = realloc(b[1], 7 * MIB);
		cbad |= !g || !holds(g, sizes[1], (unsigned char)(mine + 1));
		unsigned char *n = malloc(2 * MIB);
		fill(n, 2 * MIB, 'n');
		cbad |= !n || !holds(n, 2 * MIB, 'n') || !is_shared(n);
		_exit(cbad ? 1 : 0);
	}
	for (int i = 0; i < NB; i++)
		fill(b[i], sizes[i], mine);	/* while the child reads */
	bad |= !wait_ok(pid, "generation child");
	for (int i = 0; i < NB; i++)
		if (!holds(b[i], sizes[i], mine)) {
			printf("FAIL [%s] generation %d: block %d sees a child's writes\n", mode, depth, i);
			bad = 1;
		}
	return bad;
}

static void test_generations(void)
{
	unsigned char *b[NB];
	const unsigned tag = 40;

	for (int i = 0; i < NB; i++) {
		b[i] = malloc(sizes[i]);
		if (i < 3) {
			memset(b[i], 0, sizes[i]);
			write_sparse(b[i], sizes[i], tag + (unsigned)i);
		} else {
			fill(b[i], sizes[i], (unsigned char)('A' + i));
		}
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* a child with no file of its own forks again, then spills */
		int bad = generation(b, tag, 'c', 1);
		unsigned char *n = malloc(3 * MIB);
		fill(n, 3 * MIB, 'N');
		bad |= !holds(n, 3 * MIB, 'N') || !is_shared(n);
		free(b[2]);
		unsigned char *g = realloc(b[0], 9 * MIB);
		if (!g || !holds(g, sizes[0], 'c')) {
			printf("FAIL [%s] child: realloc of an inherited block lost its contents\n", mode);
			bad = 1;
		}
		_exit(bad);
	}
	for (int i = 0; i < NB; i++)
		fill(b[i], sizes[i], 'P');
	wait_ok(pid, "first child");
	for (int i = 0; i < NB; i++) {
		CHECK(holds(b[i], sizes[i], 'P'), "parent block %d changed", i);
		free(b[i]);
	}
	printf("[%s] three generations, sparse and dense blocks, both directions: done\n", mode);
}

/* A child that execs: the parent's blocks are intact and its own again after wait(). */
static void test_exec_and_take_back(void)
{
	size_t n = 8 * MIB;
	unsigned char *b = malloc(n);
	int st;

	memset(b, 0, n);
	write_sparse(b, n, 7);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
		_exit(127);
	}
	b[PAGE * 3] = 'x';	/* a write after the fork: a private copy until taken back */
	b[PAGE * 3] = pat(7, PAGE * 3);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec child");
	CHECK(check_sparse(b, n, 7) < 0, "block changed across fork+exec");
	CHECK(is_shared(b), "after the child exec'd and was reaped, the block is not MAP_SHARED again");
	b[5] = 'y';
	CHECK(b[5] == 'y', "write after take-back");
	free(b);
	printf("[%s] fork+exec, then wait(): blocks intact and taken back\n", mode);
}

/*
 * A writer thread stamps every page of a block, after recording the stamp in ordinary memory,
 * while the main thread forks. The child must see the block as it was at one instant: no
 * stamp newer than the one the child's ordinary memory holds, stamps not increasing along the
 * block, and nothing older than the stamp before.
 */
static unsigned char *stamped;
static size_t stamped_len;
static volatile uint64_t ram_stamp;
static volatile int stop;

static void *stamper(void *arg)
{
	(void)arg;
	for (uint64_t s = 1; !stop; s++) {
		__atomic_store_n(&ram_stamp, s, __ATOMIC_SEQ_CST);
		for (size_t i = 0; i < stamped_len; i += PAGE)
			__atomic_store_n((uint64_t *)(stamped + i), s, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_snapshot(void)
{
	pthread_t t;
	int ok = 0, forks = 20;

	stamped_len = 16 * MIB;
	stamped = malloc(stamped_len);
	memset(stamped, 0, stamped_len);
	stop = 0;
	pthread_create(&t, NULL, stamper, NULL);
	while (__atomic_load_n(&ram_stamp, __ATOMIC_SEQ_CST) < 3)
		;
	for (int k = 0; k < forks; k++) {
		pid_t pid = fork();
		if (pid == 0) {
			uint64_t r = ram_stamp, prev = UINT64_MAX;
			for (size_t i = 0; i < stamped_len; i += PAGE) {
				uint64_t s = *(uint64_t *)(stamped + i);
				if (s > r || s + 1 < r || s > prev) {
					printf("FAIL [%s] snapshot: page %zu holds stamp %" PRIu64 ", memory says %" PRIu64
					       " (previous page %" PRIu64 ")\n", mode, i / PAGE, s, r, prev);
					_exit(1);
				}
				prev = s;
			}
			_exit(0);
		}
		ok += wait_ok(pid, "snapshot child");
	}
	stop = 1;
	pthread_join(t, NULL);
	free(stamped);
	CHECK(ok == forks, "%d of %d snapshots were not one instant", forks - ok, forks);
	printf("[%s] %d forks while a thread stamps a %zu MiB block: each child saw one instant\n", mode,
	       forks, stamped_len / MIB);
}

/* The parent frees a block a child still reads; the child then exits, or is killed. */
static void test_quarantine(int kill_child)
{
	size_t n = 4 * MIB;
	unsigned char *b = malloc(n), *again;
	int to_child[2], to_parent[2], fd, st, cow = !strcmp(mode, "cow");
	struct where w;
	char c;

	fill(b, n, 'Q');
	CHECK(where_is(b, &w), "block not spilled");
	fd = open_spill_file(w.ino);
	CHECK(fd >= 0, "cannot open the spill file through /proc/self/fd");
	if (pipe(to_child) || pipe(to_parent))
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		if (read(to_child[0], &c, 1) != 1)
			_exit(2);
		if (!holds(b, n, 'Q')) {
			printf("FAIL [%s] quarantine: the child lost the block its parent freed\n", mode);
			_exit(1);
		}
		if (write(to_parent[1], "r", 1) != 1)
			_exit(2);
		pause();	/* until killed, or the pipe below closes */
		_exit(0);
	}
	free(b);
	again = malloc(n);	/* cow: must not reuse the range the child still reads */
	fill(again, n, 'R');
	if (cow) {
		CHECK(again != b, "a block freed while a child shares it was reused at once");
		CHECK(has_data(fd, w.off, n), "the disk space of a shared block went while the child reads it");
	}
	if (write(to_child[1], "f", 1) != 1 || read(to_parent[0], &c, 1) != 1)
		abort();
	kill(pid, kill_child ? SIGKILL : SIGTERM);
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	if (cow)
		CHECK(!has_data(fd, w.off, n), "the disk space of the freed block did not come back after the child %s",
		      kill_child ? "was killed" : "exited");
	free(again);
	close(fd);
	close(to_child[0]), close(to_child[1]), close(to_parent[0]), close(to_parent[1]);
	printf("[%s] a block freed while a child reads it: the child still reads it%s%s\n", mode,
	       cow ? "; its space comes back after the child " : "", cow ? (kill_child ? "was SIGKILLed" : "exited") : "");
}

/* Re-run: blocks that cannot be adjacent, nearly vm.max_map_count of them. A fork needs too many mappings: it copies. */
static int many_mappings(void)
{
	/* nine tenths of vm.max_map_count (60,000 of Linux's 65,530): over the quarter cow keeps free */
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	int limit = 0, N;
	unsigned char **b;

	if (!f || fscanf(f, "%d", &limit) != 1 || limit < 1000) {
		printf("FAIL many: cannot read vm.max_map_count\n");
		return 1;
	}
	fclose(f);
	N = limit / 10 * 9;
	b = mmap(NULL, (size_t)N * sizeof *b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return 1;

	for (int i = 0; i < N; i++) {
		b[i] = memalign(2 * PAGE, PAGE);	/* every other page: no two blocks touch */
		if (!b[i]) {
			printf("FAIL many: memalign %d\n", i);
			return 1;
		}
		b[i][0] = (unsigned char)i, b[i][PAGE - 1] = (unsigned char)(i >> 8);
	}
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < N; i++)
			if (b[i][0] != (unsigned char)i || b[i][PAGE - 1] != (unsigned char)(i >> 8))
				_exit(1);
		b[0][0] = 'c';
		_exit(0);
	}
	int ok = wait_ok(pid, "many-mappings child");
	ok &= b[0][0] == 0;
	printf("[%s] fork with %d separate blocks: %s\n", mode, N, ok ? "ok" : "FAILED");
	return !ok;
}

/*
 * A parent whose spill file exists but holds no live block: the child must still spill to a
 * file of its own. (Before cow.c it went on with its parent's file, and both allocated the
 * same offsets of it: shared writable memory.)
 */
static void test_no_live_blocks(void)
{
	unsigned char *volatile a = malloc(8 * MIB);	/* volatile: the pair must not be elided */
	unsigned char *b;
	int p1[2], p2[2];
	char c;

	a[0] = 1;
	free(a);
	if (pipe(p1) || pipe(p2))
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		b = malloc(8 * MIB);
		fill(b, 8 * MIB, 'C');
		if (write(p1[1], "c", 1) != 1 || read(p2[0], &c, 1) != 1)
			_exit(2);
		_exit(holds(b, 8 * MIB, 'C') ? 0 : 1);
	}
	if (read(p1[0], &c, 1) != 1)
		abort();
	b = malloc(8 * MIB);
	fill(b, 8 * MIB, 'P');
	if (write(p2[1], "p", 1) != 1)
		abort();
	CHECK(wait_ok(pid, "no-live-blocks child"), "a child forked with no live block saw its parent's writes");
	CHECK(holds(b, 8 * MIB, 'P'), "the parent saw its child's writes");
	free(b);
	close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
	printf("[%s] fork with a spill file but no live block: parent and child spill apart\n", mode);
}

static int rerun(const char *self, const char *arg, const char *const *env, char *err, size_t errsize)
{
	int p[2], st;
	char *argv[] = { (char *)self, (char *)arg, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	size_t n = 0;
	ssize_t r;

	for (; env[0]; env += 2)
		setenv(env[0], env[1], 1);
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
	fflush(stdout);
	return st;
}

static int shared_tests(void)
{
	test_no_live_blocks();
	test_generations();
	test_snapshot();
	test_exec_and_take_back();
	test_quarantine(0);
	test_quarantine(1);
	return failures != 0;
}

int main(int argc, char **argv)
{
	char self[4096], err[8192], stats[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(200);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	if (getenv("SPILL_FORK"))
		mode = getenv("SPILL_FORK");
	if (argc > 1 && !strcmp(argv[1], "shared"))
		return shared_tests();
	if (argc > 1 && !strcmp(argv[1], "many"))
		return many_mappings();

	shared_tests();

	const char *copy[] = { "SPILL_FORK", "copy", NULL };
	st = rerun(self, "shared", copy, err, sizeof err);
	fputs(err, stdout);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the tests in SPILL_FORK=copy failed (status %d)", st);
	unsetenv("SPILL_FORK");

	/*
	 * On tmpfs: on ext4 -o discard, releasing tens of thousands of separate extents at exit takes seconds
	 * per file. The mapping limit does not depend on the file system.
	 */
	char shm[] = "/dev/shm/spill-cow.XXXXXX";
	const char *many_dir = mkdtemp(shm) ? shm : getenv("SPILL_DIR");
	snprintf(stats, sizeof stats, "%s/many.json", getenv("SPILL_DIR"));
	const char *many[] = { "SPILL_THRESHOLD", "4K", "SPILL_STATS", stats, "SPILL_DIR", many_dir, NULL };
	st = rerun(self, "many", many, err, sizeof err);
	rmdir(shm);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "too many mappings: the fork failed (status %d)", st);
	const char *line = strstr(err, "libspill: fork: cannot share spilled blocks with the child (");
	CHECK(line && strchr(line, '\n') && !strstr(strchr(line, '\n'), "libspill: fork"),
	      "too many mappings: want one line, got \"%s\"", err);
	FILE *f = fopen(stats, "r");
	char json[4096] = "";
	CHECK(f && fgets(json, sizeof json, f) && strstr(json, "\"fork_cow\":1"),
	      "too many mappings: fallback_reasons lacks fork_cow:1 in \"%s\"", json);
	if (f)
		fclose(f);
	unlink(stats);
	printf("too many mappings at a fork: %s", err);

	if (failures) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	puts("ok");
	return 0;
}
