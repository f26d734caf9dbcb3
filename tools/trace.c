/* SPDX-License-Identifier: MIT */
/* trace.c - spill --trace: a process tree's memory, spilled pages, cgroup and I/O, every interval, as TSV. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spillmon.h"

static const char usage_line[] = "usage: spillmon trace -o FILE [-i MS] (-p PID | -- COMMAND [ARGS...] | --check)";

/* The columns, in order; spill plot finds them by these names. */
static const char header[] = "time_s\trss_bytes\tspilled_resident_bytes\tspilled_dirty_bytes\tdisk_used_bytes"
			     "\tcgroup_usage_bytes\tcgroup_limit_bytes\tmajor_faults\tread_bytes\twrite_bytes\n";

/* What each process had counted at the last sample, so that a total survives its exit. */
struct seen {
	pid_t pid;
	double start;
	long long majflt, rd, wr;
};
static struct seen *seen;
static size_t nseen;
static long long faults, rd, wr;	/* totals since the trace began */

static volatile sig_atomic_t got_signal, child_done;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void on_child(int sig)
{
	(void)sig;
	child_done = 1;
}

static void add(long long *sum, long long v)
{
	if (v >= 0)
		*sum += v;
}

/* Adds what P did since the last sample to the totals. BASELINE: it did nothing we count yet. */
static void account(const struct proc *p, int baseline, struct seen *now, size_t *nnow)
{
	double start = p->age >= 0 ? uptime_s() - p->age : -1;
	struct seen *was = NULL;

	for (size_t i = 0; i < nseen && !was; i++)
		if (seen[i].pid == p->pid && seen[i].start - start < 0.5 && start - seen[i].start < 0.5)
			was = &seen[i];
	if (!was && !baseline) {	/* new since the last sample: all it did happened in the trace */
		add(&faults, p->majflt);
		add(&rd, p->rd);
		add(&wr, p->wr);
	} else if (was) {
		if (p->majflt >= was->majflt)
			faults += p->majflt - was->majflt;
		if (p->rd >= was->rd)
			rd += p->rd - was->rd;
		if (p->wr >= was->wr)
			wr += p->wr - was->wr;
	}
	now[(*nnow)++] = (struct seen){ p->pid, start, p->majflt, p->rd, p->wr };
}

/* The group whose limit counts: the tightest finite one in the tree, else the root's. */
static void pick_cgroup(struct cgroup_mem *cg, const struct cgroup_mem *c)
{
	if ((c->limit >= 0 && (cg->limit < 0 || c->limit < cg->limit)) ||
	    (cg->limit == UNKNOWN && c->limit != UNKNOWN))
		*cg = *c;
}

static void put_num(char *buf, size_t size, size_t *at, long long v)
{
	if (*at < size)
		*at += (size_t)snprintf(buf + *at, size - *at, v >= 0 ? "\t%lld" : "\t-", v);
}

/* One row for ROOT's tree; 0, or -1 when the tree is gone. */
static int sample(int out, pid_t root, double t, int baseline)
{
	long long rss = UNKNOWN, res = 0, dirty = 0, disk = 0;
	struct cgroup_mem cg = { UNKNOWN, UNKNOWN };
	pid_t *pids;
	size_t n, nnow = 0;
	struct proc *p = malloc(sizeof *p);
	char row[512];
	size_t at;

	if (!p || proc_tree(root, &pids, &n)) {
		free(p);
		return -1;
	}
	struct seen *now = calloc(n ? n : 1, sizeof *now);
	cgroup_forget();
	for (size_t i = 0; now && i < n; i++) {
		if (proc_scan_lib(pids[i], p) == PROC_GONE)
			continue;
		if (p->lib)
			proc_details(p);
		else
			proc_basic(p);
		if (!p->comm[0] || p->state == 'Z' || p->exiting)
			continue;	/* gone or going: what it did is counted already */
		if (p->rss >= 0)
			rss = (rss < 0 ? 0 : rss) + p->rss;
		add(&res, p->res);
		add(&dirty, p->dirty);
		add(&disk, p->disk);
		pick_cgroup(&cg, &p->cg);
		account(p, baseline, now, &nnow);
	}
	free(pids);
	free(p);
	if (!now)
		return -1;
	free(seen);
	seen = now;
	nseen = nnow;
	if (!nnow)
		return -1;
	at = (size_t)snprintf(row, sizeof row, "%.3f", t);
	put_num(row, sizeof row, &at, rss);
	put_num(row, sizeof row, &at, res);
	put_num(row, sizeof row, &at, dirty);
	put_num(row, sizeof row, &at, disk);
	put_num(row, sizeof row, &at, cg.usage);
	if (cg.limit == NO_LIMIT && at < sizeof row)
		at += (size_t)snprintf(row + at, sizeof row - at, "\tmax");
	else
		put_num(row, sizeof row, &at, cg.limit);
	put_num(row, sizeof row, &at, faults);
	put_num(row, sizeof row, &at, rd);
	put_num(row, sizeof row, &at, wr);
	if (at < sizeof row - 1)
		row[at++] = '\n';
	return write(out, row, at) == (ssize_t)at ? 0 : -1;	/* whole rows only: one write each */
}

static int usage_error(const char *what, const char *arg)
{
	say("error: %s%s%s", what, arg ? " " : "", arg ? arg : "");
	fprintf(stderr, "%s\n", usage_line);
	return 2;
}

/*
 * Samples every interval on a fixed schedule (missed ticks are skipped, not bunched up)
 * until the traced tree is gone or a signal comes. Attached (-p) it exits 0; running a
 * command it exits with the command's status, and passes TERM, INT and HUP on to it.
 */
int trace_main(int argc, char **argv)
{
	const char *file = NULL;
	double interval = 0.1;
	pid_t root = 0, child = 0;
	int i, out, status = 0, check = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--check") == 0) {
			check = 1;	/* write the header and stop: can FILE be written at all? */
		} else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			file = argv[++i];
		} else if (strcmp(a, "-i") == 0 && i + 1 < argc) {
			double ms;
			if (parse_seconds(argv[++i], 10, 60000, &ms))
				return usage_error("-i is not a number of milliseconds from 10 to 60000:", argv[i]);
			interval = ms / 1000;
		} else if (strcmp(a, "-p") == 0 && i + 1 < argc) {
			if (parse_pid(argv[++i], &root))
				return usage_error("-p is not a process ID:", argv[i]);
		} else {
			return usage_error("unknown argument", a);
		}
	}
	if (!file || (!check && (!root) == (i >= argc)))
		return usage_error("give -o FILE, and either -p PID or -- COMMAND", NULL);
	out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (out < 0) {
		say("error: cannot write the trace file \"%s\": %s", file, strerror(errno));
		return 2;
	}
	if (write(out, header, sizeof header - 1) != (ssize_t)sizeof header - 1 || (check && close(out))) {
		say("error: cannot write the trace file \"%s\": %s", file, strerror(errno ? errno : EIO));
		return 2;
	}
	if (check)
		return 0;

	/* A signal ignored by whoever started us stays ignored: the wrapper's ^C is the command's. */
	struct sigaction sa = { .sa_handler = on_signal }, sc = { .sa_handler = on_child }, old;
	int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	for (unsigned k = 0; k < sizeof sigs / sizeof *sigs; k++)
		if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(sigs[k], &sa, NULL);
	if (!root) {
		sigaction(SIGCHLD, &sc, NULL);
		child = fork();
		if (child < 0) {
			say("error: cannot fork: %s", strerror(errno));
			return 1;
		}
		if (child == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			signal(SIGCHLD, SIG_DFL);
			execvp(argv[i], argv + i);
			say("%s: %s", argv[i], strerror(errno));
			_exit(errno == ENOENT ? 127 : 126);
		}
		root = child;
	}

	double start = now_s(), next = start;
	for (int first = 1;; first = 0) {
		if (child && waitpid(child, &status, WNOHANG) == child)
			break;
		if (got_signal) {
			if (!child)
				break;
			kill(child, got_signal);	/* the command decides; we trace until it ends */
			got_signal = 0;
		}
		if (sample(out, root, now_s() - start, first && !child) && !child)
			break;
		double now = now_s();
		while (next <= now)
			next += interval;
		while (!got_signal && !child_done && (now = now_s()) < next)
			poll(NULL, 0, (int)((next - now) * 1000) + 1);
		child_done = 0;
	}
	close(out);
	free(seen);
	if (!child)
		return 0;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
