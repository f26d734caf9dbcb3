/* SPDX-License-Identifier: MIT */
/* maps.h - what /proc/self/maps says about the spill file, for the integration tests. */
#ifndef SPILL_TEST_MAPS_H
#define SPILL_TEST_MAPS_H

#include <dirent.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

/*
 * 1 when PATH (a /proc/self/maps path, newline included) is a spill file of SPILL_DIR (CANON):
 * "CANON/#<inode> (deleted)" (O_TMPFILE), or "CANON/.libspill-<hex> (deleted)" where the file
 * system has no O_TMPFILE. On overlayfs the maps show the upper layer's path, not CANON's:
 * there (ANY_DIR) the name alone counts.
 */
static inline int spill_maps_is_ours(const char *path, const char *canon, int any_dir)
{
	const char *name = strrchr(path, '/');
	size_t len = strlen(canon);

	if (!name || !strstr(name, " (deleted)\n"))
		return 0;
	if (!any_dir && (strncmp(path, canon, len) != 0 || path + len != name))
		return 0;
	return name[1] == '#' || strncmp(name + 1, ".libspill-", 10) == 0;
}

/*
 * Counts the mappings of the spill file (spill_maps_is_ours) and returns the range of the
 * last one in *lo, *hi. Every spilled block must lie in that one range.
 */
static inline int spill_maps(uintptr_t *lo, uintptr_t *hi)
{
	const char *dir = getenv("SPILL_DIR");
	char canon[4096], line[8192];
	FILE *f = fopen("/proc/self/maps", "r");
	struct statfs sfs;
	int n = 0, any_dir;

	if (!dir || !f || !realpath(dir, canon)) {
		if (f)
			fclose(f);
		return -1;
	}
	any_dir = statfs(canon, &sfs) == 0 && sfs.f_type == OVERLAYFS_SUPER_MAGIC;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		int off = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &off) < 2 || !off)
			continue;
		if (spill_maps_is_ours(line + off, canon, any_dir)) {
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
