/* SPDX-License-Identifier: MIT */
/* view.c - spill top's views: the table for people and the JSON for programs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "spillmon.h"

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
	if (!n)		/* nothing spills: the sums are known, and 0 */
		return (struct totals){ 0, 0, 0, 0, 0, 0, 0, 0 };
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

void view_json(const struct row *rows, size_t n, int unreadable, double interval)
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

void view_text(const struct row *rows, size_t n, int unreadable, double interval, int screen)
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
