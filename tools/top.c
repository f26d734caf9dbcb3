/* SPDX-License-Identifier: MIT */
/* top.c - spill top: which processes spill, how much of it is in RAM, and how fast it moves. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
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

/* One row: the process and its rates over the last interval (or its lifetime). */
struct row {
	struct proc p;
	double flt_s, rd_s, wr_s;	/* -1 unknown */
};

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

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_num(const char *key, long long v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%lld", key, v);
}

static void json_rate(const char *key, double v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.1f", key, v);
}

static void json_limit(long long v)
{
	if (v == NO_LIMIT)
		printf(",\"cgroup_limit_bytes\":\"max\"");
	else
		json_num("cgroup_limit_bytes", v);
}

/* The counters of the page; 0 for a process that never made one, unknown when it cannot be read. */
static long long live(const struct proc *p)
{
	return p->page ? (long long)p->pub.bytes_live : p->idle ? 0 : UNKNOWN;
}

static long long fallbacks(const struct proc *p)
{
	return p->page ? (long long)p->pub.fallbacks : p->idle ? 0 : UNKNOWN;
}

/* Sums of the figures the rows know; a total is unknown only when no row knows it. */
struct totals {
	long long live, disk, res, dirty, fallbacks;
	double flt_s, rd_s, wr_s;
};

static void add(long long *sum, long long v)
{
	if (v >= 0)
		*sum = (*sum < 0 ? 0 : *sum) + v;
}

static void add_rate(double *sum, double v)
{
	if (v >= 0)
		*sum = (*sum < 0 ? 0 : *sum) + v;
}

static struct totals total(const struct row *rows, size_t n)
{
	struct totals t = { UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, -1, -1, -1 };
	for (size_t i = 0; i < n; i++) {
		const struct proc *p = &rows[i].p;
		add(&t.live, live(p));
		add(&t.fallbacks, fallbacks(p));
		add(&t.disk, p->disk);
		add(&t.res, p->res);
		add(&t.dirty, p->dirty);
		add_rate(&t.flt_s, rows[i].flt_s);
		add_rate(&t.rd_s, rows[i].rd_s);
		add_rate(&t.wr_s, rows[i].wr_s);
	}
	return t;
}

/* The spill file systems, one entry per device. */
static size_t partitions(const struct row *rows, size_t n, const struct proc **out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct proc *p = &rows[i].p;
		size_t j = 0;
		if (!p->fs_ok)
			continue;
		while (j < k && out[j]->fs_dev != p->fs_dev)
			j++;
		if (j == k)
			out[k++] = p;
	}
	return k;
}

static void show_json(const struct row *rows, size_t n, int unreadable, double interval)
{
	const struct proc **parts = calloc(n ? n : 1, sizeof *parts);
	struct totals t = total(rows, n);
	size_t np = parts ? partitions(rows, n, parts) : 0;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("{\"time\":%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	if (interval > 0)
		printf(",\"interval_s\":%.3g", interval);
	else
		printf(",\"interval_s\":null");
	printf(",\"processes\":[");
	for (size_t i = 0; i < n; i++) {
		const struct proc *p = &rows[i].p;
		printf("%s{\"pid\":%d,\"program\":", i ? "," : "", (int)p->pid);
		json_str(p->comm);
		printf(",\"dir\":");
		if (p->dir[0])
			json_str(p->dir);
		else
			printf("null");
		json_num("spilled_bytes_live", live(p));
		json_num("spilled_bytes_peak", p->page ? (long long)p->pub.bytes_peak : p->idle ? 0 : UNKNOWN);
		json_num("spilled_allocs", p->page ? (long long)p->pub.allocs : p->idle ? 0 : UNKNOWN);
		json_num("fallbacks", fallbacks(p));
		json_num("disk_bytes", p->disk);
		json_num("resident_bytes", p->res);
		json_num("dirty_bytes", p->dirty);
		printf(",\"resident_from\":");
		if (p->res_source)
			json_str(p->res_source);
		else
			printf("null");
		json_num("rss_bytes", p->rss);
		json_rate("major_faults_per_s", rows[i].flt_s);
		json_rate("read_bytes_per_s", rows[i].rd_s);
		json_rate("write_bytes_per_s", rows[i].wr_s);
		json_num("cgroup_usage_bytes", p->cg.usage);
		json_limit(p->cg.limit);
		putchar('}');
	}
	printf("],\"totals\":{\"processes\":%zu", n);
	json_num("spilled_bytes_live", t.live);
	json_num("disk_bytes", t.disk);
	json_num("resident_bytes", t.res);
	json_num("dirty_bytes", t.dirty);
	json_num("fallbacks", t.fallbacks);
	json_rate("major_faults_per_s", t.flt_s);
	json_rate("read_bytes_per_s", t.rd_s);
	json_rate("write_bytes_per_s", t.wr_s);
	printf("},\"partitions\":[");
	for (size_t i = 0; i < np; i++) {
		printf("%s{\"device\":\"%u:%u\",\"fs\":\"%s\",\"avail_bytes\":%llu,\"total_bytes\":%llu,\"dirs\":[",
		       i ? "," : "", major(parts[i]->fs_dev), minor(parts[i]->fs_dev), fs_name(parts[i]->fs_type),
		       parts[i]->fs_avail, parts[i]->fs_total);
		/* every SPILL_DIR on it, once */
		const char *sep = "";
		for (size_t r = 0; r < n; r++) {
			const struct proc *p = &rows[r].p, *q = NULL;
			if (!p->fs_ok || p->fs_dev != parts[i]->fs_dev || !p->dir[0])
				continue;
			for (size_t e = 0; e < r && !q; e++)
				if (rows[e].p.fs_ok && rows[e].p.fs_dev == p->fs_dev && strcmp(rows[e].p.dir, p->dir) == 0)
					q = &rows[e].p;
			if (q)
				continue;
			printf("%s", sep);
			json_str(p->dir);
			sep = ",";
		}
		printf("]}");
	}
	printf("],\"unreadable\":%d}\n", unreadable);
	free(parts);
}

#define H(k, v) human(b[k], sizeof b[k], (v))

static const char *hrate(char *buf, double v)
{
	if (v < 0)
		return "-";
	if (v < 1024) {
		snprintf(buf, 16, "%.0f", v);
		return buf;
	}
	return human(buf, 16, (long long)v);
}

static const char *cgroup_text(char *buf, size_t size, const struct cgroup_mem *cg)
{
	char u[16], l[16];
	if (cg->usage < 0 && cg->limit == UNKNOWN)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%s/%s", human(u, sizeof u, cg->usage),
			 cg->limit == NO_LIMIT ? "max" : human(l, sizeof l, cg->limit));
	return buf;
}

static void show_text(const struct row *rows, size_t n, int unreadable, double interval, int screen)
{
	char b[4][16], rb[3][16], cg[40], clock[16];
	const struct proc **parts = calloc(n ? n : 1, sizeof *parts);
	struct totals t = total(rows, n);
	size_t np = parts ? partitions(rows, n, parts) : 0;
	time_t now = time(NULL);

	strftime(clock, sizeof clock, "%H:%M:%S", localtime(&now));
	if (screen)
		fputs("\033[H\033[J", stdout);
	printf("spill top  %s  %zu process%s with libspill", clock, n, n == 1 ? "" : "es");
	if (unreadable)
		printf(", %d not readable (run as root or as their user)", unreadable);
	if (interval > 0)
		printf("  every %.3g s%s", interval, screen ? ", q quits" : "");
	printf("\n%7s %-15s %7s %7s %7s %7s %8s %7s %7s %6s %15s  %s\n", "PID", "PROGRAM", "LIVE", "DISK", "RES",
	       "DIRTY", "MAJFLT/s", "READ/s", "WRITE/s", "FALLBK", "CGROUP USE/MAX", "SPILL_DIR");
	for (size_t i = 0; i < n; i++) {
		const struct proc *p = &rows[i].p;
		char fb[24] = "-";
		if (fallbacks(p) >= 0)
			snprintf(fb, sizeof fb, "%lld", fallbacks(p));
		printf("%7d %-15.15s %7s %7s %7s %7s %8s %7s %7s %6s %15s  %s\n", (int)p->pid, p->comm,
		       H(0, live(p)), H(1, p->disk), H(2, p->res), H(3, p->dirty),
		       hrate(rb[0], rows[i].flt_s), hrate(rb[1], rows[i].rd_s), hrate(rb[2], rows[i].wr_s), fb,
		       cgroup_text(cg, sizeof cg, &p->cg), p->dir[0] ? p->dir : "-");
	}
	char fb[24] = "-";
	if (t.fallbacks >= 0)
		snprintf(fb, sizeof fb, "%lld", t.fallbacks);
	printf("%7s %-15s %7s %7s %7s %7s %8s %7s %7s %6s\n", "", "TOTAL", H(0, t.live), H(1, t.disk), H(2, t.res),
	       H(3, t.dirty), hrate(rb[0], t.flt_s), hrate(rb[1], t.rd_s), hrate(rb[2], t.wr_s), fb);
	for (size_t i = 0; i < np; i++)
		printf("free on %s (%s): %s of %s\n", parts[i]->dir, fs_name(parts[i]->fs_type),
		       H(0, (long long)parts[i]->fs_avail), H(1, (long long)parts[i]->fs_total));
	if (!screen && interval > 0)
		putchar('\n');
	fflush(stdout);
	free(parts);
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
			show_json(rows, n, unreadable, view ? delay : -1);
		else
			show_text(rows, n, unreadable, once ? -1 : delay, screen);
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
