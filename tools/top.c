/* SPDX-License-Identifier: MIT */
/* top.c - spill top: which processes spill, how much of it is in RAM, and how fast it moves. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "spillmon.h"

static const char usage_line[] = "usage: spill top [--once] [--json] [-d SECONDS] [-n COUNT] [-p PID[,PID...]]";

static void help(void)
{
	printf("%s\n"
	       "Shows every process that has libspill loaded: spilled bytes live, the disk blocks\n"
	       "behind them, how much of them is in RAM (resident) and not yet written (dirty),\n"
	       "major faults and storage I/O per second, and the memory cgroup's usage and limit.\n"
	       "\n"
	       "  --once          print one view and exit (rates are averages since each process began)\n"
	       "  --json          JSON instead of a table: one object per view, one per line\n"
	       "  -d SECONDS      time between views (default 1; 0.1 to 86400)\n"
	       "  -n COUNT        stop after COUNT views\n"
	       "  -p PID[,PID...] only these processes (the option may be repeated)\n"
	       "  -h, --help      show this help and exit\n"
	       "Interactive: q quits. Figures that cannot be read show as \"-\" (null in JSON).\n", usage_line);
}

/* One line saying what is wrong, and exit status 2. */
static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: error: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (spill top --help)\n");
	return 2;
}

/* The previous view's counters, for rates. */
struct prev {
	pid_t pid;
	double start;			/* start time since boot: a reused PID is another process */
	long long majflt, rd, wr;
	double t;
};
static struct prev *prevs;
static size_t nprev;

static volatile sig_atomic_t stop;
static struct termios saved_tty;
static int tty_raw;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void restore_tty(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_raw = 0;
}

static double rate(long long now, long long before, double dt)
{
	if (now < 0 || before < 0 || dt <= 0 || now < before)
		return -1;
	return (double)(now - before) / dt;
}

static void rates(struct row *r, double t)
{
	double start = r->p.age >= 0 ? uptime_s() - r->p.age : -1;

	for (size_t i = 0; i < nprev; i++)
		if (prevs[i].pid == r->p.pid && start >= 0 && prevs[i].start >= 0 &&
		    prevs[i].start - start < 0.5 && start - prevs[i].start < 0.5) {
			double dt = t - prevs[i].t;
			r->flt_s = rate(r->p.majflt, prevs[i].majflt, dt);
			r->rd_s = rate(r->p.rd, prevs[i].rd, dt);
			r->wr_s = rate(r->p.wr, prevs[i].wr, dt);
			return;
		}
	/* first sight: the average since the process began */
	r->flt_s = rate(r->p.majflt, 0, r->p.age);
	r->rd_s = rate(r->p.rd, 0, r->p.age);
	r->wr_s = rate(r->p.wr, 0, r->p.age);
}

static void remember(const struct row *rows, size_t n, double t)
{
	struct prev *more = realloc(prevs, (n ? n : 1) * sizeof *more);
	if (!more)
		return;
	prevs = more;
	nprev = n;
	for (size_t i = 0; i < n; i++) {
		const struct proc *p = &rows[i].p;
		prevs[i] = (struct prev){ p->pid, p->age >= 0 ? uptime_s() - p->age : -1, p->majflt, p->rd, p->wr, t };
	}
}

/*
 * Test hook: with SPILLMON_PAUSE=FIFO set, a view stops between finding the processes and
 * reading them until a writer opens FIFO and closes it, so that a test can make processes
 * exit at exactly that point.
 */
static void test_pause(void)
{
	const char *fifo = getenv("SPILLMON_PAUSE");
	char buf[64];
	int fd;

	if (!fifo || (fd = open(fifo, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
}

/*
 * One view's rows: every libspill process, or those of WANT. First every maps file is
 * read, then the details of the processes that have libspill; a process may exit at any
 * point in between and is then left out, or shows "-" for what went with it.
 * UNREADABLE counts the processes whose maps we may not read.
 */
static size_t collect(const pid_t *want, size_t nwant, struct row **out, int *unreadable)
{
	pid_t *all = NULL;
	const pid_t *pids = want;
	size_t n = nwant, k = 0, kept = 0;
	struct row *rows;

	*unreadable = 0;
	if (!want) {
		proc_list(&all, &n);
		pids = all;
	}
	rows = calloc(n ? n : 1, sizeof *rows);
	cgroup_forget();
	for (size_t i = 0; rows && i < n; i++) {
		int s = proc_scan_lib(pids[i], &rows[k].p);
		if (s == PROC_DENIED)
			++*unreadable;
		if (s == PROC_OK && rows[k].p.lib)
			k++;
	}
	free(all);
	test_pause();
	for (size_t i = 0; i < k; i++) {
		proc_details(&rows[i].p);
		if (rows[i].p.comm[0])	/* no stat: it exited while we read */
			rows[kept++] = rows[i];
	}
	*out = rows;
	return kept;
}

/* -p: each PID must exist, be readable and have libspill, or there is nothing to show. */
static int check_pids(const pid_t *pids, size_t n)
{
	struct proc p;
	for (size_t i = 0; i < n; i++) {
		int s = proc_scan_lib(pids[i], &p);
		if (s == PROC_GONE) {
			say("error: no process %d", (int)pids[i]);
			return 1;
		}
		if (s == PROC_DENIED) {
			say("error: cannot read /proc/%d/maps (permission denied): run as root or as its user",
			    (int)pids[i]);
			return 1;
		}
		if (!p.lib) {
			proc_basic(&p);
			say("error: process %d (%s) does not have libspill loaded", (int)pids[i],
			    p.comm[0] ? p.comm : "?");
			return 1;
		}
	}
	return 0;
}

/* "12" or "12,34": appended to PIDS; -1 on anything else. */
static int add_pids(const char *arg, pid_t **pids, size_t *n)
{
	for (const char *s = arg;;) {
		char item[32];
		size_t len = strcspn(s, ",");
		if (len == 0 || len >= sizeof item)
			return -1;
		memcpy(item, s, len);
		item[len] = '\0';
		pid_t *more = realloc(*pids, (*n + 1) * sizeof *more);
		if (!more)
			return -1;
		*pids = more;
		if (parse_pid(item, &more[*n]))
			return -1;
		++*n;
		if (!s[len])
			return 0;
		s += len + 1;
	}
}

/* The value of -X VAL, -XVAL, --long VAL or --long=VAL at argv[*i]; NULL if none follows. */
static const char *option_value(int argc, char **argv, int *i)
{
	const char *a = argv[*i], *eq = strchr(a, '=');

	if (a[1] == '-')
		return eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
	return a[2] ? a + 2 : *i + 1 < argc ? argv[++*i] : NULL;
}

/* Which of -d, -n, -p (or --delay, --count, --pid) ARG is; 0 for none. */
static char option_name(const char *a)
{
	static const char *const longs[] = { "--delay", "--count", "--pid" };
	if (a[0] == '-' && a[1] && strchr("dnp", a[1]))
		return a[1];
	for (int k = 0; k < 3; k++) {
		size_t len = strlen(longs[k]);
		if (strncmp(a, longs[k], len) == 0 && (a[len] == '\0' || a[len] == '='))
			return "dnp"[k];
	}
	return 0;
}

int top_main(int argc, char **argv)
{
	int once = 0, json = 0, screen, keys;
	long count = -1;
	double delay = 1;
	pid_t *want = NULL;
	size_t nwant = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val;
		char opt = option_name(a);
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help();
			return 0;
		} else if (strcmp(a, "--once") == 0) {
			once = 1;
		} else if (strcmp(a, "--json") == 0) {
			json = 1;
		} else if (!opt) {
			return usage_error(a[0] == '-' ? "unknown option %s" : "unexpected argument \"%s\"", a);
		} else if (!(val = option_value(argc, argv, &i))) {
			return usage_error(opt == 'd' ? "-d needs a number of seconds%s" :
					   opt == 'n' ? "-n needs a count%s" : "-p needs a process ID%s", "");
		} else if (opt == 'd') {
			if (parse_seconds(val, 0.1, 86400, &delay))
				return usage_error("-d \"%s\" is not a number of seconds from 0.1 to 86400", val);
		} else if (opt == 'n') {
			char *end;
			errno = 0;
			count = strtol(val, &end, 10);
			if (errno || *end || count < 1 || *val < '0' || *val > '9')
				return usage_error("-n \"%s\" is not a positive count", val);
		} else if (add_pids(val, &want, &nwant)) {
			return usage_error("-p \"%s\" is not a process ID (or a comma-separated list of them)", val);
		}
	}
	if (want && check_pids(want, nwant))
		return 1;
	if (once)
		count = 1;
	screen = !json && count != 1 && isatty(STDOUT_FILENO);
	keys = screen && isatty(STDIN_FILENO);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (keys && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios raw = saved_tty;
		raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tty_raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
		atexit(restore_tty);
	}

	for (long view = 0; !stop && (count < 0 || view < count); view++) {
		double t = now_s();
		struct row *rows;
		int unreadable;
		size_t n = collect(want, nwant, &rows, &unreadable);
		for (size_t i = 0; i < n; i++)
			rates(&rows[i], t);
		if (json)
			view_json(rows, n, unreadable, view ? delay : -1);
		else
			view_text(rows, n, unreadable, once ? -1 : delay, screen);
		fflush(stdout);
		remember(rows, n, t);
		free(rows);
		if (want && n == 0) {
			say("every watched process has exited");
			break;
		}
		if (count >= 0 && view + 1 >= count)
			break;
		/* wait for the next view, or a q */
		double until = t + delay;
		while (!stop) {
			double left = until - now_s();
			if (left <= 0)
				break;
			struct pollfd pfd = { keys ? STDIN_FILENO : -1, POLLIN, 0 };
			if (poll(&pfd, 1, (int)(left * 1000) + 1) > 0 && (pfd.revents & POLLIN)) {
				char c;
				if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
					stop = 1;
			}
		}
	}
	restore_tty();
	free(want);
	free(prevs);
	return 0;
}
