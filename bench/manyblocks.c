/* SPDX-License-Identifier: MIT */
/* manyblocks.c - bench case 7: many live blocks at once; setup time, fds and mappings in use. */

/*
 * Usage: manyblocks [-n COUNT] [-s BYTES] [-k]
 *
 * mallocs COUNT blocks of BYTES each and writes one byte of every one, counts the
 * process's open fds (/proc/self/fd) and mappings (/proc/self/maps) while all are live,
 * then frees them all (with -k it exits with them all live, and free_s is 0). stdout: "result setup_s=S free_s=F fds_before=A fds_live=B
 * maps_before=C maps_live=D max_map_count=M".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	unsigned long count = 100000, size = 65536;
	long max_map = -1;
	char *e;
	int c, keep = 0;

	while ((c = getopt(argc, argv, "n:s:k")) != -1) {
		if (c == 'k') {
			keep = 1;
			continue;
		}
		unsigned long v = strtoul(optarg, &e, 10);

		if ((c != 'n' && c != 's') || v == 0 || *e) {
			fprintf(stderr, "usage: manyblocks [-n COUNT] [-s BYTES] [-k]\n");
			return 2;
		}
		if (c == 'n')
			count = v;
		else
			size = v;
	}
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f) {
		if (fscanf(f, "%ld", &max_map) != 1)
			max_map = -1;
		fclose(f);
	}
	int fds_before = count_fds();
	long maps_before = count_lines("/proc/self/maps");
	char **blocks = calloc(count, sizeof *blocks);
	double t0 = now(), t1, t2;

	if (!blocks) {
		perror("manyblocks: calloc");
		return 1;
	}
	for (unsigned long i = 0; i < count; i++) {
		blocks[i] = malloc(size);
		if (!blocks[i]) {
			fprintf(stderr, "manyblocks: malloc %lu of %lu failed\n", i, count);
			return 1;
		}
		blocks[i][i % size] = 1;
	}
	t1 = now();
	int fds_live = count_fds();
	long maps_live = count_lines("/proc/self/maps");

	t2 = now();
	for (unsigned long i = 0; i < count && !keep; i++)
		free(blocks[i]);
	if (!keep)
		free(blocks);
	printf("result setup_s=%.6f free_s=%.6f fds_before=%d fds_live=%d maps_before=%ld maps_live=%ld max_map_count=%ld\n",
		t1 - t0, keep ? 0.0 : now() - t2, fds_before, fds_live, maps_before, maps_live, max_map);
	return 0;
}
