/* SPDX-License-Identifier: MIT */
/* cgroup.c - the memory limit a process runs under, and the usage it is measured against (v1 and v2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spillmon.h"

/* Where each hierarchy is mounted, from our own mountinfo: mount point and the root it shows. */
static struct mount {
	int found;
	char point[PATH_MAX], root[PATH_MAX];
} v1, v2;
static int mounts_read;

static int mountinfo_line(char *line, void *ctx)
{
	char root[PATH_MAX], point[PATH_MAX];
	const char *sep = strstr(line, " - ");
	(void)ctx;

	if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2)
		return 0;
	char fstype[32] = "", opts[1024] = "";
	if (sscanf(sep + 3, "%31s %*s %1023s", fstype, opts) < 1)
		return 0;
	struct mount *m = NULL;
	if (strcmp(fstype, "cgroup2") == 0 && !v2.found)
		m = &v2;
	else if (strcmp(fstype, "cgroup") == 0 && !v1.found) {
		char list[1030];
		snprintf(list, sizeof list, ",%s,", opts);
		if (strstr(list, ",memory,"))
			m = &v1;
	}
	if (m) {
		m->found = 1;
		snprintf(m->point, sizeof m->point, "%s", point);
		snprintf(m->root, sizeof m->root, "%s", strcmp(root, "/") ? root : "");
	}
	return 0;
}

/* The group's directory: "N:memory:/x" (v1) wins over "0::/x" (v2), as in scripts/memcap. */
struct which {
	int v1;
	char rel[PATH_MAX];
};

static int cgroup_line(char *line, void *ctx)
{
	struct which *w = ctx;
	char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	if (!c2)
		return 0;
	*c2 = '\0';
	char list[1030];
	snprintf(list, sizeof list, ",%s,", c1 + 1);
	if (strstr(list, ",memory,")) {
		w->v1 = 1;
		snprintf(w->rel, sizeof w->rel, "%s", c2 + 1);
		return 1;
	}
	if (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1)
		snprintf(w->rel, sizeof w->rel, "%s", c2 + 1);
	return 0;
}

static long long read_number(const char *dir, const char *name, int *unlimited)
{
	char path[PATH_MAX + 64], buf[64];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (read_small(path, buf, sizeof buf) <= 0)
		return UNKNOWN;
	if (unlimited)
		*unlimited = strncmp(buf, "max", 3) == 0;
	if (buf[0] < '0' || buf[0] > '9')
		return UNKNOWN;
	long long v = strtoll(buf, NULL, 10);
	if (unlimited && v >= (1ll << 60))	/* v1 says "no limit" with a huge number */
		*unlimited = 1;
	return v;
}

static int meminfo_line(char *line, void *ctx)
{
	long long *kib = ctx, v;

	if (sscanf(line, "MemTotal: %lld kB", &v) == 1)
		kib[0] = v;
	else if (sscanf(line, "MemFree: %lld kB", &v) == 1)
		kib[1] = v;
	return 0;
}

/*
 * v2's root group has no memory.current: what the whole machine uses stands for it there, as
 * v1's root memory.usage_in_bytes does (page cache included): MemTotal - MemFree.
 */
static long long machine_used(void)
{
	long long kib[2] = { -1, -1 };

	for_each_line("/proc/meminfo", meminfo_line, kib);
	return kib[0] >= 0 && kib[1] >= 0 ? (kib[0] - kib[1]) * 1024 : UNKNOWN;
}

/* A few groups per refresh: most processes share one. */
#define CACHE 64
static struct entry {
	int v1;
	char rel[PATH_MAX];
	struct cgroup_mem mem;
} cache[CACHE];
static int cached;

void cgroup_forget(void)
{
	cached = 0;
}

/* Walks from the process's group to the top; the first finite limit met is the one it runs under. */
static void resolve(const struct which *w, struct cgroup_mem *out)
{
	const struct mount *m = w->v1 ? &v1 : &v2;
	const char *limit_file = w->v1 ? "memory.limit_in_bytes" : "memory.max";
	const char *usage_file = w->v1 ? "memory.usage_in_bytes" : "memory.current";
	char dir[PATH_MAX * 2];
	size_t top, rootlen = strlen(m->root);

	out->usage = out->limit = UNKNOWN;
	if (!m->found || strncmp(w->rel, m->root, rootlen) || (w->rel[rootlen] && w->rel[rootlen] != '/'))
		return;		/* a group outside what we can see */
	snprintf(dir, sizeof dir, "%s%s", m->point, w->rel + rootlen);
	while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = '\0';
	top = strlen(m->point);
	out->usage = read_number(dir, usage_file, NULL);
	if (out->usage == UNKNOWN && !w->v1 && strlen(dir) <= top)
		out->usage = machine_used();	/* the root group */
	for (;;) {
		int unlimited = 0;
		long long limit = read_number(dir, limit_file, &unlimited);
		if (limit >= 0 && !unlimited) {
			out->limit = limit;
			out->usage = read_number(dir, usage_file, NULL);
			return;
		}
		/* not found or "max": go up (v2's root has no memory.max; the walk ends there) */
		char *slash = strrchr(dir, '/');
		if (strlen(dir) <= top || !slash || (size_t)(slash - dir) < top)
			break;
		*slash = '\0';
	}
	out->limit = NO_LIMIT;
}

void cgroup_lookup(pid_t pid, struct cgroup_mem *out)
{
	char path[64];
	struct which w = { 0, "" };

	out->usage = out->limit = UNKNOWN;
	if (!mounts_read) {
		mounts_read = 1;
		for_each_line("/proc/self/mountinfo", mountinfo_line, NULL);
	}
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	if (for_each_line(path, cgroup_line, &w) || !w.rel[0])
		return;
	for (int i = 0; i < cached; i++)
		if (cache[i].v1 == w.v1 && strcmp(cache[i].rel, w.rel) == 0) {
			*out = cache[i].mem;
			return;
		}
	resolve(&w, out);
	if (cached < CACHE) {
		cache[cached].v1 = w.v1;
		snprintf(cache[cached].rel, sizeof cache[cached].rel, "%s", w.rel);
		cache[cached++].mem = *out;
	}
}
