/* SPDX-License-Identifier: MIT */
/* spillfile.h - the spill reservation and file as a test sees them from outside the library. */
#ifndef SPILL_TEST_SPILLFILE_H
#define SPILL_TEST_SPILLFILE_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../shim/pub.h"

/*
 * Is PATH "$SPILL_DIR/#<inode> (deleted)" (O_TMPFILE) or "$SPILL_DIR/.libspill-<hex> (deleted)"
 * (the named-file fallback)? CANON is SPILL_DIR's real path.
 */
static inline int spillfile_is_ours(const char *path, const char *canon)
{
	size_t n = strlen(canon);
	return !strncmp(path, canon, n) && path[n] == '/' &&
	       (path[n + 1] == '#' || !strncmp(path + n + 1, ".libspill-", 10)) && strstr(path, " (deleted)");
}

/*
 * The reservation as the library publishes it (shim/pub.h): its counter page, a memfd that
 * /proc/self/fd shows as "/memfd:libspill". 0, or -1 without a page or before the first spill.
 */
static inline int spillfile_published(uintptr_t *lo, uintptr_t *hi)
{
	char path[300], link[300];
	struct spill_pub pub;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	while (d && found < 0 && (e = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "/memfd:" SPILL_PUB_NAME, 7 + strlen(SPILL_PUB_NAME)))
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && pread(fd, &pub, sizeof pub, 0) == (ssize_t)sizeof pub &&
		    !memcmp(pub.magic, SPILL_PUB_MAGIC, 8) && pub.pid == getpid() && pub.span) {
			*lo = (uintptr_t)pub.base;
			*hi = (uintptr_t)(pub.base + pub.span);
			found = 0;
		}
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * The reservation: the published one, else from the lowest to the highest mapping of a spill
 * file. After a fork under SPILL_FORK=cow it is several mappings of several files (frozen
 * blocks, the parent's file, the child's own), so the last one alone is not enough. (On
 * overlayfs of Linux 6.1, maps shows the upper layer's path, not SPILL_DIR: only the
 * published page finds the reservation there.) 0, or -1 when there is none.
 */
static inline int spillfile_range(uintptr_t *lo, uintptr_t *hi)
{
	char canon[4096], line[8192];
	const char *dir = getenv("SPILL_DIR");
	FILE *f;
	int found = 0;

	if (spillfile_published(lo, hi) == 0)
		return 0;
	if (!dir || !realpath(dir, canon) || !(f = fopen("/proc/self/maps", "r")))
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		int at = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &at) < 2 || !at ||
		    !spillfile_is_ours(line + at, canon))
			continue;
		if (!found++ || a < *lo)
			*lo = a;
		if (found == 1 || b > *hi)
			*hi = b;
	}
	fclose(f);
	return found ? 0 : -1;
}

/*
 * A descriptor of our own of the spill file (through /proc/self/fd), to ask SEEK_DATA what
 * the library's copy will see; the file with the highest descriptor is the newest, the
 * process's own after a fork. -1 when there is none.
 */
static inline int spillfile_open(void)
{
	char canon[4096], link[4096], path[300], best[300] = "";
	const char *dir = getenv("SPILL_DIR");
	long top = -1;
	DIR *d;
	struct dirent *e;

	if (!dir || !realpath(dir, canon) || !(d = opendir("/proc/self/fd")))
		return -1;
	while ((e = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (spillfile_is_ours(link, canon) && atol(e->d_name) > top) {
			top = atol(e->d_name);
			snprintf(best, sizeof best, "%s", path);
		}
	}
	closedir(d);
	return top < 0 ? -1 : open(best, O_RDONLY | O_CLOEXEC);
}

#endif
