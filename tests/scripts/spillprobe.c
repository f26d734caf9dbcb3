/* SPDX-License-Identifier: MIT */
/* spillprobe.c - the helper program of the script tests: allocates, checks and reports from inside. */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* Fills P with the pattern of block ID (one word per page is enough to catch lost pages). */
static void fill(uint64_t *p, size_t bytes, uint64_t id)
{
	for (size_t i = 0; i < bytes / 8; i += 512)
		p[i] = mix(id << 32 ^ i);
	p[bytes / 8 - 1] = mix(id);
}

static int check(const uint64_t *p, size_t bytes, uint64_t id)
{
	for (size_t i = 0; i < bytes / 8; i += 512)
		if (p[i] != mix(id << 32 ^ i))
			return -1;
	return p[bytes / 8 - 1] == mix(id) ? 0 : -1;
}

/* 1 when P lies in a spill mapping: an unlinked file ("(deleted)") that is not memfd or shm. */
static int is_spilled(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		uintptr_t lo, hi;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2)
			continue;
		if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
			found = strstr(line, " (deleted)") && !strstr(line, "/memfd:") &&
				!strstr(line, "/dev/shm/");
			break;
		}
	}
	fclose(f);
	return found;
}

static uint64_t avail_bytes(const char *dir)
{
	struct statvfs sv;
	if (statvfs(dir, &sv))
		return 0;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static size_t env_size(const char *name)
{
	const char *s = getenv(name);
	return s ? strtoull(s, NULL, 0) : 0;
}

/*
 * fill COUNT MIB: COUNT blocks of MIB MiB, each written and kept; at the end all verified.
 * PROBE_STATDIR + PROBE_RESERVE: after every allocation statvfs(PROBE_STATDIR) must show at least
 * PROBE_RESERVE bytes available. PROBE_MAX: the live spilled bytes never pass it.
 */
static int cmd_fill(int argc, char **argv)
{
	size_t count = argc > 2 ? strtoul(argv[2], NULL, 0) : 8;
	size_t bytes = (argc > 3 ? strtoul(argv[3], NULL, 0) : 16) * MIB;
	const char *statdir = getenv("PROBE_STATDIR");
	size_t reserve = env_size("PROBE_RESERVE"), max = env_size("PROBE_MAX");
	uint64_t **blocks = calloc(count, sizeof *blocks);
	size_t spilled = 0, ram = 0, nulls = 0, bad_errno = 0, live_spilled = 0, peak = 0;
	uint64_t min_avail = UINT64_MAX;
	int failed = 0;

	for (size_t i = 0; i < count; i++) {
		errno = 0;
		blocks[i] = malloc(bytes);
		if (!blocks[i]) {
			nulls++;
			if (errno != ENOMEM)
				bad_errno++;
			continue;
		}
		fill(blocks[i], bytes, i);
		if (is_spilled(blocks[i]) == 1) {
			spilled++;
			live_spilled += bytes;
			peak = live_spilled > peak ? live_spilled : peak;
		} else {
			ram++;
		}
		if (max && live_spilled > max) {
			printf("FAILED: block %zu: live spilled bytes %zu > SPILL_MAX %zu\n", i, live_spilled, max);
			failed = 1;
		}
		if (statdir) {
			uint64_t a = avail_bytes(statdir);
			min_avail = a < min_avail ? a : min_avail;
			if (a < reserve) {
				printf("FAILED: block %zu: %" PRIu64 " bytes available < reserve %zu\n", i, a, reserve);
				failed = 1;
			}
		}
	}
	for (size_t i = 0; i < count; i++)
		if (blocks[i] && check(blocks[i], bytes, i)) {
			printf("FAILED: block %zu lost its contents\n", i);
			failed = 1;
		}
	printf("fill: count=%zu mib=%zu spilled=%zu ram=%zu null=%zu null_errno_not_enomem=%zu "
	       "spilled_peak=%zu min_avail=%" PRIu64 "\n", count, bytes / MIB, spilled, ram, nulls,
	       bad_errno, peak, min_avail == UINT64_MAX ? 0 : min_avail);
	for (size_t i = 0; i < count; i++)
		free(blocks[i]);
	free(blocks);
	puts(failed ? "FAILED" : "ok");
	return failed;
}

/* hold MIB: one spilled block written through, then "ready" and wait to be killed. */
static int cmd_hold(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 64) * MIB;
	uint64_t *p = malloc(bytes);

	if (!p) {
		puts("FAILED: malloc");
		return 1;
	}
	for (size_t i = 0; i < bytes / 8; i += 512)
		p[i] = i;
	printf("ready spilled=%d\n", is_spilled(p));
	fflush(stdout);
	for (;;)
		pause();
}

/* fds: exit 1 if any open descriptor is an unlinked file (a spill file that leaked through exec). */
static int cmd_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int bad = 0, n = 0;

	while (d && (e = readdir(d))) {
		char path[300], target[4096];
		ssize_t len;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		if ((len = readlink(path, target, sizeof target - 1)) < 0)
			continue;
		target[len] = '\0';
		n++;
		if (strstr(target, "(deleted)") || strstr(target, "/#") || strstr(target, ".libspill-")) {
			printf("LEAKED fd %s -> %s\n", e->d_name, target);
			bad = 1;
		}
	}
	if (d)
		closedir(d);
	printf("fds: %d open, %s\n", n, bad ? "a spill file leaked" : "no spill file");
	return bad;
}

/* exit-child MIB SECONDS: spill, fork+exec "sleep SECONDS" in the background, exit normally. */
static int cmd_exit_child(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 64) * MIB;
	uint64_t *p = malloc(bytes);
	pid_t pid;

	if (!p)
		return 1;
	for (size_t i = 0; i < bytes / 8; i += 512)
		p[i] = i;
	printf("spilled=%d\n", is_spilled(p));
	fflush(stdout);
	if ((pid = fork()) == 0) {
		execlp("sleep", "sleep", argc > 3 ? argv[3] : "5", (char *)NULL);
		_exit(127);
	}
	printf("child=%d\n", (int)pid);
	return 0;			/* p is deliberately not freed: exit must release it */
}

/* spills MIB: allocate one block and say whether it is spilled (exit 0 either way). */
static int cmd_spills(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 2) * MIB;
	char *small[64];
	uint64_t *p = malloc(bytes);

	if (!p) {
		puts("FAILED: malloc");
		return 1;
	}
	fill(p, bytes, 7);
	for (int i = 0; i < 64; i++) {	/* small allocations keep working beside it */
		if (!(small[i] = malloc(100 + i * 1000)))
			return puts("FAILED: small malloc"), 1;
		memset(small[i], i, 100 + i * 1000);
	}
	for (int i = 0; i < 64; i++)
		free(small[i]);
	if (check(p, bytes, 7))
		return puts("FAILED: content"), 1;
	printf("spilled=%d\n", is_spilled(p));
	printf("secure=%lu\n", getauxval(AT_SECURE));
	free(p);
	return 0;
}

/*
 * report MIB[,MIB...] PERCENT: one block per MIB (each MIB MiB + 123 bytes, so no size is a
 * page multiple), the first PERCENT% of each written; prints what the process knows about
 * itself (bytes asked for, blocks, resident bytes by mincore over the blocks), then holds
 * them until stdin reaches EOF, frees them and exits.
 */
static int cmd_report(int argc, char **argv)
{
	char *list = argc > 2 ? argv[2] : "4", *save = NULL, line[64];
	int percent = argc > 3 ? atoi(argv[3]) : 100, n = 0;
	void *blocks[64];
	size_t sizes[64], live = 0, resident = 0, page = (size_t)sysconf(_SC_PAGESIZE);

	for (char *s = strtok_r(list, ",", &save); s && n < 64; s = strtok_r(NULL, ",", &save)) {
		size_t bytes = strtoul(s, NULL, 0) * MIB + 123;
		char *p = malloc(bytes);
		if (!p || is_spilled(p) != 1)
			return printf("FAILED: block %d (%zu bytes) %s\n", n, bytes, p ? "not spilled" : "malloc"), 1;
		memset(p, 0x5a, bytes * (size_t)percent / 100);
		blocks[n] = p;
		sizes[n++] = bytes;
		live += bytes;
	}
	for (int i = 0; i < n; i++) {
		size_t len = (sizes[i] + page - 1) / page;
		unsigned char *vec = malloc(len);
		if (!vec || mincore(blocks[i], sizes[i], vec))
			return puts("FAILED: mincore"), 1;
		for (size_t k = 0; k < len; k++)
			resident += (vec[k] & 1) * page;
		free(vec);
	}
	printf("pid=%d live=%zu blocks=%d resident=%zu\n", (int)getpid(), live, n, resident);
	fflush(stdout);
	while (fgets(line, sizeof line, stdin))
		;
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	return 0;
}

/* zombie MIB: a child spills MIB MiB and waits; the parent never reaps it, and exits at EOF on stdin. */
static int cmd_zombie(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 4) * MIB;
	char line[64];
	pid_t pid = fork();

	if (pid == 0) {
		char *p = malloc(bytes);
		if (p)
			memset(p, 1, bytes);
		for (;;)
			pause();
	}
	printf("child=%d\n", (int)pid);
	fflush(stdout);
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}

/*
 * realloc MIB: a spilled block of MIB MiB grows to 2x in place (nothing lies after it), a second
 * block is placed after it, then the first grows to 4x and must move; it shrinks back in place.
 * The contents survive every step. Prints what happened; exit 1 if a content check fails.
 */
static int cmd_realloc(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 8) * MIB;
	uint64_t *a = malloc(bytes), *a2, *b, *a4, *a1;
	int failed = 0, spilled;

	if (!a)
		return puts("FAILED: malloc"), 1;
	fill(a, bytes, 1);
	spilled = is_spilled(a) == 1;
	if (!(a2 = realloc(a, 2 * bytes)))
		return puts("FAILED: realloc to 2x"), 1;
	if (check(a2, bytes, 1))
		failed = puts("FAILED: content lost growing to 2x");
	fill(a2, 2 * bytes, 2);
	if (!(b = malloc(bytes)))
		return puts("FAILED: second malloc"), 1;
	fill(b, bytes, 3);
	if (!(a4 = realloc(a2, 4 * bytes)))
		return puts("FAILED: realloc to 4x"), 1;
	if (check(a4, 2 * bytes, 2))
		failed = puts("FAILED: content lost growing to 4x");
	if (check(b, bytes, 3))
		failed = puts("FAILED: the second block changed");
	fill(a4, 4 * bytes, 5);
	if (check(a4, 4 * bytes, 5))
		failed = puts("FAILED: the grown block does not keep what was written");
	fill(a4, bytes, 4);
	if (!(a1 = realloc(a4, bytes)))
		return puts("FAILED: shrink"), 1;
	if (check(a1, bytes, 4))
		failed = puts("FAILED: content lost shrinking");
	printf("realloc: spilled=%d grew_in_place=%d moved=%d shrunk_in_place=%d still_spilled=%d\n",
	       spilled, a2 == a, a4 != a2, a1 == a4, is_spilled(a1) == 1);
	free(a1);
	free(b);
	puts(failed ? "FAILED" : "ok");
	return failed;
}

/*
 * fork-full MIB: a spilled block of MIB MiB is written, the process forks (SPILL_FORK=copy:
 * where the file system has reflinks, the child's copy shares the parent's disk blocks), the
 * parent then fills the disk with 1 MiB blocks until malloc fails (run it with
 * SPILL_ON_FAIL=null), frees one of them, and parent and child each rewrite the whole block.
 * A shared block needs new disk space on its first write (copy on write): with the disk full
 * that is where a SIGBUS would come from. Exit 0 when both rewrote their block intact.
 */
static int cmd_fork_full(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 16) * MIB, n = 0;
	uint64_t *a = malloc(bytes), **fillers = calloc(1 << 16, sizeof *fillers);
	int go[2], status;
	pid_t pid;

	if (!a || !fillers || pipe(go))
		return puts("FAILED: setup"), 1;
	fill(a, bytes, 1);
	if ((pid = fork()) == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		if (check(a, bytes, 1))
			_exit(2);
		fill(a, bytes, 2);	/* the child's first write to its copy */
		_exit(check(a, bytes, 2) ? 2 : 0);
	}
	close(go[0]);
	while (n < (1 << 16) && (fillers[n] = malloc(MIB)) && is_spilled(fillers[n]) == 1) {
		memset(fillers[n], 0x5a, MIB);
		n++;
	}
	printf("fork-full: %zu MiB more spilled until the disk was full, %" PRIu64 " bytes left\n",
	       n, avail_bytes(getenv("SPILL_DIR") ? getenv("SPILL_DIR") : "."));
	fflush(stdout);
	if (n)
		free(fillers[--n]);
	fill(a, bytes, 3);	/* the parent's first write since the fork */
	printf("fork-full: parent rewrote its block: %s\n", check(a, bytes, 3) ? "FAILED" : "intact");
	fflush(stdout);
	(void)!write(go[1], "g", 1);
	close(go[1]);
	waitpid(pid, &status, 0);
	printf("fork-full: child %s\n", WIFEXITED(status) ? (WEXITSTATUS(status) ? "FAILED" : "rewrote its copy intact") :
	       WTERMSIG(status) == SIGBUS ? "died of SIGBUS" : "killed by a signal");
	while (n)
		free(fillers[--n]);
	free(a);
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	puts(ok ? "ok" : "FAILED");
	return !ok;
}

/*
 * rewrite MIB: spilled blocks of MIB MiB until malloc fails (run it with SPILL_ON_FAIL=null), all
 * written; syncfs, so that they are on disk; then each is written again and checked. On a
 * copy-on-write file system an overwrite of data already on disk needs new space: with the
 * disk full that is where a SIGBUS would come from. Exit 0 when every block came back intact.
 */
static int cmd_rewrite(int argc, char **argv)
{
	size_t bytes = (argc > 2 ? strtoul(argv[2], NULL, 0) : 4) * MIB, n = 0, max = 1 << 16;
	uint64_t **b = calloc(max, sizeof *b);
	const char *dir = getenv("SPILL_DIR") ? getenv("SPILL_DIR") : ".";
	int failed = 0, fd;

	while (b && n < max && (b[n] = malloc(bytes)) && is_spilled(b[n]) == 1)
		fill(b[n], bytes, n), n++;
	if (n < max && b && b[n])
		free(b[n]);	/* the first one that was not spilled */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
		syncfs(fd);
		close(fd);
	}
	printf("rewrite: %zu x %zu MiB spilled and synced, %" PRIu64 " bytes left; rewriting\n",
	       n, bytes / MIB, avail_bytes(dir));
	fflush(stdout);
	for (size_t i = 0; i < n; i++)
		fill(b[i], bytes, i + 1000);
	for (size_t i = 0; i < n; i++)
		if (check(b[i], bytes, i + 1000))
			failed = printf("FAILED: block %zu lost its contents\n", i);
	for (size_t i = 0; i < n; i++)
		free(b[i]);
	printf("rewrite: %zu blocks rewritten\n", n);
	puts(failed || !n ? "FAILED" : "ok");
	return failed || !n;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "fill"))
		return cmd_fill(argc, argv);
	if (!strcmp(cmd, "hold"))
		return cmd_hold(argc, argv);
	if (!strcmp(cmd, "fds"))
		return cmd_fds();
	if (!strcmp(cmd, "exit-child"))
		return cmd_exit_child(argc, argv);
	if (!strcmp(cmd, "spills"))
		return cmd_spills(argc, argv);
	if (!strcmp(cmd, "report"))
		return cmd_report(argc, argv);
	if (!strcmp(cmd, "zombie"))
		return cmd_zombie(argc, argv);
	if (!strcmp(cmd, "realloc"))
		return cmd_realloc(argc, argv);
	if (!strcmp(cmd, "fork-full"))
		return cmd_fork_full(argc, argv);
	if (!strcmp(cmd, "rewrite"))
		return cmd_rewrite(argc, argv);
	fprintf(stderr, "usage: spillprobe fill COUNT MIB | hold MIB | fds | exit-child MIB SECONDS | spills MIB"
		" | report MIB[,MIB...] PERCENT | zombie MIB | realloc MIB | fork-full MIB | rewrite MIB\n");
	return 2;
}
