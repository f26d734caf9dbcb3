/* SPDX-License-Identifier: MIT */
/* spillfile.c - what a process's spill file says: its disk blocks, its page cache, its file system. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spillmon.h"

/* Disk blocks and file system of the file at PATH (a /proc magic link). */
static int file_figures(struct proc *p, const char *path)
{
	struct stat st;
	struct statvfs sv;
	struct statfs sf;

	if (stat(path, &st))
		return -1;
	p->disk = (long long)st.st_blocks * 512;
	if (statvfs(path, &sv) == 0) {
		p->fs_ok = 1;
		p->fs_dev = st.st_dev;
		p->fs_avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
		p->fs_total = (unsigned long long)sv.f_blocks * sv.f_frsize;
		p->fs_type = statfs(path, &sf) == 0 ? (long)sf.f_type : 0;
	}
	return 0;
}

/* SPILL_DIR's file system, seen through the process's root, for a process with no file yet. */
static void dir_figures(struct proc *p)
{
	char path[PATH_MAX + 64];
	struct stat st;
	struct statvfs sv;
	struct statfs sf;

	snprintf(path, sizeof path, "/proc/%d/root%s", (int)p->pid, p->dir);
	if (stat(path, &st) || statvfs(path, &sv))
		return;
	p->fs_ok = 1;
	p->fs_dev = st.st_dev;
	p->fs_avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	p->fs_total = (unsigned long long)sv.f_blocks * sv.f_frsize;
	p->fs_type = statfs(path, &sf) == 0 ? (long)sf.f_type : 0;
}

/* The mappings in [lo, hi): the spill reservation, which copy-on-write forks split into several. */
struct smaps_ctx {
	uintptr_t lo, hi;
	int in, seen;		/* inside such an entry; saw one */
	long long rss, dirty;
};

static int smaps_line(char *line, void *ctx)
{
	struct smaps_ctx *s = ctx;
	unsigned long lo, hi;
	char dash;
	long long kb;

	if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
		if (lo >= s->hi)
			return 1;	/* past it: spare the kernel the rest */
		s->in = lo >= s->lo && hi <= s->hi;
		if (s->in && !s->seen) {
			s->seen = 1;
			s->rss = s->dirty = 0;
		}
		return 0;
	}
	if (!s->in)
		return 0;
	if (sscanf(line, "Rss: %lld kB", &kb) == 1)
		s->rss += kb * 1024;
	else if (sscanf(line, "Shared_Dirty: %lld kB", &kb) == 1 || sscanf(line, "Private_Dirty: %lld kB", &kb) == 1)
		s->dirty += kb * 1024;
	return 0;
}

#ifndef __NR_cachestat
#define __NR_cachestat 451	/* Linux 6.5; the same number on every architecture */
#endif
struct cachestat_range { uint64_t off, len; };
struct cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

/*
 * Spilled bytes in RAM and dirty, as the process's own mincore() would count them: the page
 * cache of the spill file over its allocated ranges (blocks; read-ahead into the holes
 * past them is not spilled data), by cachestat(2). It needs the file open (its owner or
 * root) and Linux 6.5; -1 otherwise, and smaps is asked instead.
 */
static int cache_figures(struct proc *p, const char *path)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t pages = 0, dirty = 0;
	off_t at = 0, data, hole;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((data = lseek(fd, at, SEEK_DATA)) >= 0 && (hole = lseek(fd, data, SEEK_HOLE)) > data) {
		struct cachestat_range r = { (uint64_t)data, (uint64_t)(hole - data) };
		struct cachestat c;
		if (syscall(__NR_cachestat, fd, &r, &c, 0)) {
			close(fd);
			return -1;
		}
		pages += c.nr_cache;
		dirty += c.nr_dirty;
		at = hole;
	}
	close(fd);
	if (data < 0 && errno != ENXIO)
		return -1;
	p->res = (long long)(pages * (uint64_t)page);
	p->dirty = (long long)(dirty * (uint64_t)page);
	p->res_source = "cachestat";
	return 0;
}

/* The descriptor of PID's open file with inode INO (the spill file), or -1. */
static int fd_of_inode(pid_t pid, unsigned long ino)
{
	char path[64], link[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int fd = -1;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while (fd < 0 && (e = readdir(d))) {
		ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
		if (n > 0 && (link[n] = '\0', strstr(link, " (deleted)")) &&
		    fstatat(dirfd(d), e->d_name, &st, 0) == 0 && st.st_ino == ino)
			fd = atoi(e->d_name);
	}
	closedir(d);
	return fd;
}

/*
 * Disk, resident and dirty figures of P's spill file, and its file system, once
 * proc_details() has read the counter page (or found none).
 */
void spill_file_figures(struct proc *p)
{
	char path[PATH_MAX + 64], link[PATH_MAX];

	unsigned long base = 0, hi = 0, ino = 0;
	int fd = -1;
	if (p->page) {
		snprintf(p->dir, sizeof p->dir, "%s", p->pub.dir);
		base = (unsigned long)p->pub.base;
		hi = base + (unsigned long)p->pub.span;
		/* its own file, under the descriptor the page names; checked, as it may have been closed */
		snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)p->pid, (int)p->pub.fd);
		ssize_t n = p->pub.fd >= 0 ? readlink(path, link, sizeof link - 1) : -1;
		if (n > 10 && (link[n] = '\0', strcmp(link + n - 10, " (deleted)") == 0))
			fd = (int)p->pub.fd;
		for (int i = 0; fd < 0 && p->pub.fd >= 0 && base && i < p->nshared; i++)
			if (p->shared[i].lo == base)
				fd = fd_of_inode(p->pid, p->shared[i].ino);
		p->spilling = base && p->pub.fd >= 0;
	} else if (p->guess_hi) {
		base = p->guess_lo;
		hi = p->guess_hi;
		ino = p->guess_ino;
		fd = fd_of_inode(p->pid, ino);
		p->spilling = 1;
	} else if (!p->page_hi && p->state != 'Z') {
		/* no page and no spill file: it has never made a large request */
		p->idle = 1;
		p->res = p->dirty = p->disk = 0;
		return;
	} else {
		return;
	}
	if (!p->spilling) {
		/* no file of its own (yet): nothing spilled, or only a copy-on-write parent's blocks */
		p->res = p->dirty = p->disk = 0;
		dir_figures(p);
		return;
	}
	unsigned long vma_hi = p->page ? 0 : hi;	/* map_files names one whole mapping */
	for (int i = 0; p->page && i < p->nshared; i++)
		if (p->shared[i].lo == base)
			vma_hi = p->shared[i].hi;
	if (fd >= 0)
		snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)p->pid, fd);
	else
		snprintf(path, sizeof path, "/proc/%d/map_files/%lx-%lx", (int)p->pid, base, vma_hi);
	if (file_figures(p, path))
		dir_figures(p);
	if (cache_figures(p, path) == 0)
		return;
	struct smaps_ctx s = { .lo = base, .hi = hi, .rss = UNKNOWN, .dirty = UNKNOWN };
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)p->pid);
	if (for_each_line(path, smaps_line, &s) == 0 && s.seen) {
		p->res = s.rss;
		p->dirty = s.dirty;
		p->res_source = "smaps";
	}
}
