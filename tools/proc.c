/* SPDX-License-Identifier: MIT */
/* proc.c - what /proc says about a process that has libspill loaded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spillmon.h"

#define PAGE_LINK "/memfd:" SPILL_PUB_NAME " (deleted)"

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int maps_line(char *line, void *ctx)
{
	struct proc *p = ctx;
	unsigned long lo, hi, ino;
	char perms[8];
	int path_at = 0;

	if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %n", &lo, &hi, perms, &ino, &path_at) < 4 || !path_at)
		return 0;
	const char *path = line + path_at;
	if (strcmp(path, PAGE_LINK) == 0) {
		p->lib = 1;
		p->page_lo = lo;
		p->page_hi = hi;
	} else if (strncmp(base_name(path), "libspill", 8) == 0 && strstr(base_name(path), ".so")) {
		p->lib = 1;
	} else if (perms[3] == 's' && strstr(path, " (deleted)")) {
		if (p->nshared < (int)(sizeof p->shared / sizeof *p->shared)) {
			p->shared[p->nshared].lo = lo;
			p->shared[p->nshared].hi = hi;
			p->shared[p->nshared++].ino = ino;
		}
		/* Without a page (a library too old to publish one), guess: the largest mapping
		 * of an O_TMPFILE file ("DIR/#INODE") or of our named fallback. */
		const char *b = base_name(path);
		if ((b[0] == '#' || strncmp(b, ".libspill-", 10) == 0) && b > path &&
		    hi - lo > p->guess_hi - p->guess_lo) {
			p->guess_lo = lo;
			p->guess_hi = hi;
			p->guess_ino = ino;
			snprintf(p->dir, sizeof p->dir, "%.*s", (int)(b - 1 - path), path);
		}
	}
	return 0;
}

/* Reads /proc/PID/maps: is libspill there? PROC_OK (see p->lib), PROC_GONE or PROC_DENIED. */
int proc_scan_lib(pid_t pid, struct proc *p)
{
	char path[64];

	memset(p, 0, sizeof *p);
	p->pid = pid;
	p->res = p->dirty = p->disk = p->rss = p->majflt = p->rd = p->wr = UNKNOWN;
	p->age = -1;
	p->cg.usage = p->cg.limit = UNKNOWN;
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	if (for_each_line(path, maps_line, p))
		return errno == EACCES || errno == EPERM ? PROC_DENIED : PROC_GONE;
	return PROC_OK;
}

/* comm, state, ppid, major faults, start time and RSS from /proc/PID/stat. */
static void read_stat(struct proc *p)
{
	char path[64], buf[1024], *open_paren, *close_paren;
	unsigned long long f[48];
	int n = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)p->pid);
	if (read_small(path, buf, sizeof buf) <= 0 || !(open_paren = strchr(buf, '(')) ||
	    !(close_paren = strrchr(buf, ')')))
		return;
	*close_paren = '\0';
	snprintf(p->comm, sizeof p->comm, "%s", open_paren + 1);
	char *s = close_paren + 2;
	p->state = *s;
	for (s += 1; n < 48 && *s; n++) {	/* fields 4 on: numbers */
		while (*s == ' ')
			s++;
		f[n] = strtoull(s, &s, 10);
	}
	if (n < 21)
		return;
	/* field k of stat(5) is f[k - 4] */
	p->ppid = (pid_t)f[0];
	p->exiting = (f[5] & 0x4) != 0;		/* PF_EXITING: its mm and cgroup are going */
	p->majflt = (long long)f[8];
	long tck = sysconf(_SC_CLK_TCK);
	if (tck > 0)
		p->age = uptime_s() - (double)f[18] / (double)tck;
	p->rss = (long long)f[20] * sysconf(_SC_PAGESIZE);
}

static long long field_after(const char *text, const char *key)
{
	const char *s = strstr(text, key);
	return s ? strtoll(s + strlen(key), NULL, 10) : UNKNOWN;
}

static void read_io(struct proc *p)
{
	char path[64], buf[1024] = "\n";

	snprintf(path, sizeof path, "/proc/%d/io", (int)p->pid);
	if (read_small(path, buf + 1, sizeof buf - 1) <= 0)
		return;
	p->rd = field_after(buf, "\nread_bytes:");
	p->wr = field_after(buf, "\nwrite_bytes:");
}

/* Reads the counter page through the descriptor at PATH; 0 when it is this process's own. */
static int read_page(struct proc *p, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &p->pub, sizeof p->pub, 0);
	close(fd);
	if (n < (ssize_t)offsetof(struct spill_pub, dir) ||
	    memcmp(p->pub.magic, SPILL_PUB_MAGIC, sizeof p->pub.magic) || p->pub.version < 1 ||
	    p->pub.pid != p->pid)
		return -1;	/* not ours, or a fork child that has not made its own yet */
	p->pub.dir[sizeof p->pub.dir - 1] = '\0';
	p->page = 1;
	return 0;
}

/* What every process has: stat, io, cgroup. */
void proc_basic(struct proc *p)
{
	read_stat(p);
	read_io(p);
	cgroup_lookup(p->pid, &p->cg);
}

/*
 * Everything else, once proc_scan_lib() found libspill; what cannot be read stays UNKNOWN.
 * The counter page is read through its descriptor (the process's own user may), else
 * through map_files (root only).
 */
void proc_details(struct proc *p)
{
	char path[PATH_MAX + 64], link[PATH_MAX];
	struct dirent *e;
	DIR *d;

	proc_basic(p);
	snprintf(path, sizeof path, "/proc/%d/fd", (int)p->pid);
	if ((d = opendir(path))) {
		while (!p->page && (e = readdir(d))) {
			ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, PAGE_LINK) == 0) {
				snprintf(path, sizeof path, "/proc/%d/fd/%s", (int)p->pid, e->d_name);
				read_page(p, path);
			}
		}
		closedir(d);
	}
	if (!p->page && p->page_hi) {
		snprintf(path, sizeof path, "/proc/%d/map_files/%lx-%lx", (int)p->pid, p->page_lo, p->page_hi);
		read_page(p, path);
	}
	spill_file_figures(p);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* Every process in /proc, in PID order. */
int proc_list(pid_t **pids, size_t *n)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t cap = 0;
	pid_t pid;

	*pids = NULL;
	*n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (parse_pid(e->d_name, &pid))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 512;
			pid_t *more = realloc(*pids, cap * sizeof *more);
			if (!more)
				break;
			*pids = more;
		}
		(*pids)[(*n)++] = pid;
	}
	closedir(d);
	qsort(*pids, *n, sizeof **pids, cmp_pid);
	return 0;
}

static int add_pid(pid_t **pids, size_t *n, size_t *cap, pid_t pid)
{
	for (size_t i = 0; i < *n; i++)
		if ((*pids)[i] == pid)
			return 0;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		pid_t *more = realloc(*pids, *cap * sizeof *more);
		if (!more)
			return -1;
		*pids = more;
	}
	(*pids)[(*n)++] = pid;
	return 0;
}

/* ROOT and its descendants, from the children lists of every thread (CONFIG_PROC_CHILDREN). */
int proc_tree(pid_t root, pid_t **pids, size_t *n)
{
	char path[320], buf[4096];
	size_t cap = 0;

	*pids = NULL;
	*n = 0;
	if (add_pid(pids, n, &cap, root))
		return -1;
	for (size_t i = 0; i < *n; i++) {
		struct dirent *e;
		DIR *d;
		snprintf(path, sizeof path, "/proc/%d/task", (int)(*pids)[i]);
		if (!(d = opendir(path)))
			continue;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "/proc/%d/task/%s/children", (int)(*pids)[i], e->d_name);
			if (read_small(path, buf, sizeof buf) <= 0)
				continue;
			for (char *s = buf, *end; *s; s = end) {
				long v = strtol(s, &end, 10);
				if (end == s)
					break;
				if (v > 0)
					add_pid(pids, n, &cap, (pid_t)v);
			}
		}
		closedir(d);
	}
	return 0;
}

const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xef53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683e: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x858458f6: return "ramfs";
	case 0x794c7630: return "overlay";
	case 0x6969: return "nfs";
	case 0x65735546: return "fuse";
	case 0x2fc12fc1: return "zfs";
	case 0xf2f52010: return "f2fs";
	default: return "?";
	}
}
