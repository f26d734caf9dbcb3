/* SPDX-License-Identifier: MIT */
/* maps.h - what /proc/self/maps says about the spill file, for the integration tests. */
#ifndef SPILL_TEST_MAPS_H
#define SPILL_TEST_MAPS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Counts the mappings of "$SPILL_DIR/#<inode> (deleted)" and returns the range of the last
 * one in *lo, *hi. Every spilled block must lie in that one range.
 */
static inline int spill_maps(uintptr_t *lo, uintptr_t *hi)
{
	const char *dir = getenv("SPILL_DIR");
	char canon[4096], line[8192];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	if (!dir || !f || !realpath(dir, canon)) {
		if (f)
			fclose(f);
		return -1;
	}
	size_t len = strlen(canon);
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		int off = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &off) < 2 || !off)
			continue;
		const char *path = line + off;
		if (strncmp(path, canon, len) == 0 && path[len] == '/' && path[len + 1] == '#' &&
		    strstr(path, " (deleted)\n")) {
			n++;
			if (lo)
				*lo = a;
			if (hi)
				*hi = b;
		}
	}
	fclose(f);
	return n;
}

/* Number of lines of /proc/self/maps (one per mapping). */
static inline long maps_lines(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Number of entries in /proc/self/fd (the directory's own fd included). */
static inline int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

#endif
