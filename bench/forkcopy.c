/* SPDX-License-Identifier: MIT */
/* forkcopy.c - bench case 6: fork a process that holds a large written buffer. */

/*
 * Usage: forkcopy [-s MIB] [-n BLOCKS] [-y] [-d DIR]
 *
 * BLOCKS mallocs (default 1) that hold MIB MiB in all, fully written; then fork(). The
 * child reads one word per page of the buffers, checks it, and exits. stdout: "result
 * fork_s=F child_start_s=C total_s=T refault_s=R scan_s=S sync_s=Y dirty_mib=D" where fork_s
 * is how long fork() took in the parent, child_start_s how long from the fork() call until
 * the child ran its first instruction, total_s until the child's exit was reaped (including
 * its scan), refault_s how long the parent then took to read one word per page again,
 * scan_s how long the child's scan took, and dirty_mib the machine's Dirty + Writeback
 * memory (/proc/meminfo) just before the fork.
 * -y: sync() before the fork (sync_s is how long it took; 0 without -y), so that the fork
 * sees clean pages. -d DIR: also the space used on DIR's file system (statvfs, after a
 * syncfs so that delayed accounting has settled) in MiB: used_start before the mallocs,
 * used_written after the write, used_child while the child lives (after its scan; total_s
 * then includes this measurement) and used_end after the child was reaped and the buffers
 * freed. The syncfs before used_written cleans the pages too: time dirty forks without -d.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Dirty + Writeback of /proc/meminfo in MiB, or -1. */
static long dirty_mib(void)
{
	char line[128];
	long kib, sum = 0;
	int seen = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "Dirty: %ld kB", &kib) == 1 || sscanf(line, "Writeback: %ld kB", &kib) == 1) {
			sum += kib;
			seen++;
		}
	}
	fclose(f);
	return seen == 2 ? sum / 1024 : -1;
}

/* MiB used on DIR's file system after a syncfs, or -1 without -d. */
static double used_mib(const char *dir)
{
	struct statvfs sv;
	int fd;

	if (!dir)
		return -1;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || syncfs(fd) || fstatvfs(fd, &sv)) {
		perror("forkcopy: -d");
		exit(1);
	}
	close(fd);
	return (double)(sv.f_blocks - sv.f_bfree) * sv.f_frsize / (1 << 20);
}

int main(int argc, char **argv)
{
	unsigned long mib = 1024, blocks = 1;
	int fds[2], hold[2], status, c, do_sync = 0;
	const char *dir = NULL;
	double used[4] = { -1, -1, -1, -1 };
	char *e;

	while ((c = getopt(argc, argv, "s:n:yd:")) != -1) {
		unsigned long *v = c == 's' ? &mib : c == 'n' ? &blocks : NULL;
		if (c == 'y') {
			do_sync = 1;
		} else if (c == 'd') {
			dir = optarg;
		} else if (!v || (*v = strtoul(optarg, &e, 10)) == 0 || *e) {
			fprintf(stderr, "usage: forkcopy [-s MIB] [-n BLOCKS] [-y] [-d DIR]\n");
			return 2;
		}
	}
	size_t words = (mib << 20) / 8 / blocks;
	used[0] = used_mib(dir);
	uint64_t **p = calloc(blocks, sizeof *p);

	if (!p || pipe(fds) || pipe(hold)) {
		perror("forkcopy");
		return 1;
	}
	for (size_t b = 0; b < blocks; b++) {
		if (!(p[b] = malloc(words * 8))) {
			perror("forkcopy: malloc");
			return 1;
		}
		for (size_t i = 0; i < words; i++)
			p[b][i] = i + b;
	}
	double ts = now(), sync_s = 0;
	if (do_sync) {
		sync();
		sync_s = now() - ts;
	}
	used[1] = used_mib(dir);
	long dirty = dirty_mib();
	fflush(stdout);
	double t0 = now(), t1, tc = 0, scan = 0, t2, t3;
	pid_t pid = fork();

	if (pid < 0) {
		perror("forkcopy: fork");
		return 1;
	}
	if (pid == 0) {
		double start = now();
		int bad = 0;
		char x;

		if (write(fds[1], &start, sizeof start) != sizeof start)
			_exit(3);
		for (size_t b = 0; b < blocks; b++)
			for (size_t i = 0; i < words; i += 512)
				bad |= p[b][i] != i + b;
		start = now() - start;
		if (write(fds[1], &start, sizeof start) != sizeof start)
			_exit(3);
		close(hold[1]);
		while (read(hold[0], &x, 1) > 0)	/* until the parent has measured */
			;
		_exit(bad ? 1 : 0);
	}
	t1 = now();
	close(hold[0]);
	if (read(fds[0], &tc, sizeof tc) != sizeof tc || read(fds[0], &scan, sizeof scan) != sizeof scan) {
		perror("forkcopy: child");
		return 1;
	}
	used[2] = used_mib(dir);
	close(hold[1]);
	if (waitpid(pid, &status, 0) != pid) {
		perror("forkcopy: waitpid");
		return 1;
	}
	t2 = now();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "forkcopy: child failed (status %#x)\n", status);
		return 1;
	}
	uint64_t sum = 0;
	for (size_t b = 0; b < blocks; b++)
		for (size_t i = 0; i < words; i += 512)
			sum += p[b][i];
	t3 = now();
	for (size_t b = 0; b < blocks; b++)
		free(p[b]);
	free(p);
	used[3] = used_mib(dir);
	printf("result fork_s=%.6f child_start_s=%.6f total_s=%.6f refault_s=%.6f scan_s=%.6f sync_s=%.6f dirty_mib=%ld",
	       t1 - t0, tc - t0, t2 - t0, t3 - t2, scan, sync_s, dirty);
	if (dir)
		printf(" used_start=%.1f used_written=%.1f used_child=%.1f used_end=%.1f",
		       used[0], used[1], used[2], used[3]);
	printf("\n");
	return sum == 0;	/* keeps the read loop */
}
