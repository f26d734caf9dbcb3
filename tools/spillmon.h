/* SPDX-License-Identifier: MIT */
/* spillmon.h - spill top, spill --trace and spill plot: what their files share. */
#ifndef SPILLMON_H
#define SPILLMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../shim/pub.h"

/* A figure that could not be read is -1 (shown as "-", null in JSON); a missing limit is NO_LIMIT. */
#define UNKNOWN (-1ll)
#define NO_LIMIT (-2ll)

/* The memory cgroup a process is charged to: the innermost finite limit on its path, and that group's usage. */
struct cgroup_mem {
	long long usage, limit;
};

/* What one pass over /proc learns about one process. */
struct proc {
	pid_t pid, ppid;
	char comm[64];
	char state;			/* from /proc/PID/stat; 'Z' for a zombie */
	int exiting;			/* on its way out: v1 shows it in the root cgroup already */
	int lib;			/* libspill is mapped (or its counter page is) */
	int page;			/* the counter page was read */
	int idle;			/* no counter page at all: it never spilled, its counters are 0 */
	struct spill_pub pub;
	unsigned long page_lo, page_hi;	/* the counter page's mapping */
	int nshared;			/* shared mappings of deleted files: the spill mapping is one */
	struct { unsigned long lo, hi, ino; } shared[8];
	int spilling;			/* the spill mapping was found */
	unsigned long guess_lo, guess_hi, guess_ino;	/* without a page: the likeliest spill mapping */
	char dir[PATH_MAX];		/* SPILL_DIR: from the page, else from the spill file's path; "" */
	long long res, dirty;		/* spilled bytes in RAM, and dirty */
	const char *res_source;		/* "cachestat", "smaps" or NULL: where res and dirty come from */
	long long disk;			/* disk blocks of the spill file, in bytes */
	long long rss;			/* resident set, spilled pages included */
	long long majflt, rd, wr;	/* cumulative: major faults, bytes read from and written to storage */
	double age;			/* seconds since the process started, or -1 */
	struct cgroup_mem cg;
	int fs_ok;			/* the spill file system's figures below are known */
	dev_t fs_dev;
	long fs_type;
	unsigned long long fs_avail, fs_total;
};

/* common.c */
typedef int (*line_fn)(char *line, void *ctx);	/* nonzero: stop reading */
int for_each_line(const char *path, line_fn fn, void *ctx);
ssize_t read_small(const char *path, char *buf, size_t size);
const char *human(char *buf, size_t size, long long bytes);
int parse_seconds(const char *s, double lo, double hi, double *out);
int parse_pid(const char *s, pid_t *out);
double now_s(void);
double uptime_s(void);
extern const char *prog;
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* proc.c */
enum { PROC_OK, PROC_GONE, PROC_DENIED };
int proc_scan_lib(pid_t pid, struct proc *p);
void proc_basic(struct proc *p);
void proc_details(struct proc *p);
int proc_list(pid_t **pids, size_t *n);
int proc_tree(pid_t root, pid_t **pids, size_t *n);
const char *fs_name(long type);

/* spillfile.c */
void spill_file_figures(struct proc *p);

/* cgroup.c */
void cgroup_lookup(pid_t pid, struct cgroup_mem *out);
void cgroup_forget(void);

/* view.c: one row of spill top, the process and its rates over the last interval (or its life) */
struct row {
	struct proc p;
	double flt_s, rd_s, wr_s;	/* -1 unknown */
};
void view_json(const struct row *rows, size_t n, int unreadable, double interval);
void view_text(const struct row *rows, size_t n, int unreadable, double interval, int screen);

/* top.c, trace.c, plot.c */
int top_main(int argc, char **argv);
int trace_main(int argc, char **argv);
int plot_main(int argc, char **argv);

#endif
