/* SPDX-License-Identifier: MIT */
/* movecopy.c - a realloc that cannot grow a written block in place, so the block moves. */

/*
 * Usage: movecopy [-s MIB] [-b MIB] [-y] [-d DIR]
 *
 * Buffer A of MIB MiB (default 1024) is fully written, then buffer B of -b MiB (default 64)
 * is allocated after it, so that an allocator that places blocks one after the other (as
 * libspill does in its file) cannot grow A in place; then A is realloc'ed to MIB + 64 MiB
 * (timed alone) and its old contents are read back, one word per page (timed apart: where
 * the move left the new copy's pages out of memory, this is where they come back).
 * stdout: "result realloc_s=R read_s=X moved=0|1 sync_s=Y dirty_mib=D" where moved says
 * whether realloc returned another address, and dirty_mib is the machine's Dirty +
 * Writeback memory (/proc/meminfo) just before the realloc. -y: sync() before the realloc
 * (sync_s is how long it took). -d DIR: also the space used on DIR's file system (statvfs
 * after a syncfs) in MiB: used_start before the mallocs, used_written after the write,
 * used_moved after the realloc and used_end after both buffers were freed. The syncfs
 * before used_written cleans the pages too: time moves of dirty blocks without -d.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
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
		perror("movecopy: -d");
		exit(1);
	}
	close(fd);
	return (double)(sv.f_blocks - sv.f_bfree) * sv.f_frsize / (1 << 20);
}

static unsigned long arg_mib(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v == 0) {
		fprintf(stderr, "usage: movecopy [-s MIB] [-b MIB] [-y] [-d DIR]\n");
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long mib = 1024, blocker = 64;
	int c, do_sync = 0;
	const char *dir = NULL;
	double used[4] = { -1, -1, -1, -1 };

	while ((c = getopt(argc, argv, "s:b:yd:")) != -1) {
		switch (c) {
		case 's': mib = arg_mib(optarg); break;
		case 'b': blocker = arg_mib(optarg); break;
		case 'y': do_sync = 1; break;
		case 'd': dir = optarg; break;
		default:
			fprintf(stderr, "usage: movecopy [-s MIB] [-b MIB] [-y] [-d DIR]\n");
			return 2;
		}
	}
	size_t words = (mib << 20) / 8;
	used[0] = used_mib(dir);
	uint64_t *a = malloc(words * 8);
	if (!a) {
		perror("movecopy: malloc");
		return 1;
	}
	for (size_t i = 0; i < words; i++)
		a[i] = i ^ 0x5555555555555555ull;
	char *b = malloc(blocker << 20);
	if (!b) {
		perror("movecopy: malloc");
		return 1;
	}
	memset(b, 1, blocker << 20);
	double ts = now(), sync_s = 0;
	if (do_sync) {
		sync();
		sync_s = now() - ts;
	}
	used[1] = used_mib(dir);
	long dirty = dirty_mib();
	volatile uintptr_t old = (uintptr_t)a;	/* volatile: compared after realloc, never used as a pointer */
	double t0 = now(), t1, t2;
	uint64_t *q = realloc(a, (words * 8) + ((size_t)64 << 20));

	t1 = now();
	if (!q) {
		perror("movecopy: realloc");
		return 1;
	}
	for (size_t i = 0; i < words; i += 512) {
		if (q[i] != (i ^ 0x5555555555555555ull)) {
			fprintf(stderr, "movecopy: word %zu lost in the move\n", i);
			return 1;
		}
	}
	t2 = now();
	used[2] = used_mib(dir);
	free(q);
	free(b);
	used[3] = used_mib(dir);
	printf("result realloc_s=%.6f read_s=%.6f moved=%d sync_s=%.6f dirty_mib=%ld",
	       t1 - t0, t2 - t1, (uintptr_t)q != old, sync_s, dirty);
	if (dir)
		printf(" used_start=%.1f used_written=%.1f used_moved=%.1f used_end=%.1f",
		       used[0], used[1], used[2], used[3]);
	printf("\n");
	return 0;
}
