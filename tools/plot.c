/* SPDX-License-Identifier: MIT */
/* plot.c - spill plot: traces drawn with gnuplot, memory with its cap above, disk traffic below. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spillmon.h"

static const char usage_line[] = "usage: spill plot [-o PNG] [-t TITLE]... TRACE...";

static void help(void)
{
	printf("%s\n"
	       "Draws traces written by spill --trace into one PNG with gnuplot, one column per\n"
	       "trace: memory over time with the cgroup's limit as a line (top), disk traffic (bottom).\n"
	       "\n"
	       "  -o PNG      the picture (default: the first TRACE with .png for .tsv)\n"
	       "  -t TITLE    a title for the next trace's column (default: its file name)\n"
	       "  -h, --help  show this help and exit\n", usage_line);
}

/* Columns by name, so that a trace with more columns than these still plots. */
enum { T, RSS, RES, DIRTY, DISK, CG_USE, CG_MAX, FAULTS, READ, WRITE, NCOL };
static const char *const names[NCOL] = {
	"time_s", "rss_bytes", "spilled_resident_bytes", "spilled_dirty_bytes", "disk_used_bytes",
	"cgroup_usage_bytes", "cgroup_limit_bytes", "major_faults", "read_bytes", "write_bytes",
};

struct trace {
	const char *file, *title;
	size_t rows;
	double (*v)[NCOL];		/* NAN where the trace says "-" (or "max" for the limit) */
	int has[NCOL];			/* some row has a number there */
	char data[PATH_MAX + 32];	/* the derived table gnuplot reads */
};

#define MIB 1048576.0

/* Reads and checks FILE; prints what is wrong with it and returns -1. */
static int load(struct trace *tr)
{
	FILE *f = fopen(tr->file, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t len;
	int col[NCOL], ncols = 0, lineno = 1, rc = -1;

	if (!f) {
		say("error: cannot read %s: %s", tr->file, strerror(errno));
		return -1;
	}
	if ((len = getline(&line, &cap, f)) <= 0) {
		say("error: %s is empty: no trace was written to it", tr->file);
		goto out;
	}
	line[strcspn(line, "\n")] = '\0';
	for (int k = 0; k < NCOL; k++)
		col[k] = -1;
	for (char *s = line, *save = NULL, *name; (name = strtok_r(s, "\t", &save)); s = NULL, ncols++)
		for (int k = 0; k < NCOL; k++)
			if (strcmp(name, names[k]) == 0)
				col[k] = ncols;
	for (int k = 0; k < NCOL; k++)
		if (col[k] < 0) {
			say("error: %s is not a spill trace: its first line has no column %s", tr->file, names[k]);
			goto out;
		}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *field[64], *save = NULL;
		int n = 0;
		lineno++;
		if (line[len - 1] != '\n') {
			say("error: %s:%d: the last row is cut short: the trace is truncated", tr->file, lineno);
			goto out;
		}
		line[len - 1] = '\0';
		for (char *s = line, *x; n < 64 && (x = strtok_r(s, "\t", &save)); s = NULL)
			field[n++] = x;
		if (n != ncols) {
			say("error: %s:%d: %d fields where the header has %d: the trace is damaged", tr->file, lineno, n,
			    ncols);
			goto out;
		}
		if (tr->rows == alloc) {
			alloc = alloc ? alloc * 2 : 256;
			void *more = realloc(tr->v, alloc * sizeof *tr->v);
			if (!more) {
				say("error: out of memory reading %s", tr->file);
				goto out;
			}
			tr->v = more;
		}
		for (int k = 0; k < NCOL; k++) {
			const char *x = field[col[k]];
			char *end;
			double v = strtod(x, &end);
			if (strcmp(x, "-") == 0 || (k == CG_MAX && strcmp(x, "max") == 0)) {
				v = NAN;
			} else if (*end || end == x || !isfinite(v) || v < 0) {
				say("error: %s:%d: %s is \"%s\", not a number", tr->file, lineno, names[k], x);
				goto out;
			} else {
				tr->has[k] = 1;
			}
			tr->v[tr->rows][k] = v;
		}
		if (isnan(tr->v[tr->rows][T]) || (tr->rows && tr->v[tr->rows][T] <= tr->v[tr->rows - 1][T])) {
			say("error: %s:%d: the time does not increase: the trace is damaged", tr->file, lineno);
			goto out;
		}
		tr->rows++;
	}
	if (ferror(f)) {
		say("error: cannot read %s: %s", tr->file, strerror(errno));
		goto out;
	}
	if (!tr->rows) {
		say("error: %s has no samples (the command ended before the first one)", tr->file);
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

static void put(FILE *f, double v, double scale)
{
	if (isnan(v))
		fputs("\t?", f);
	else
		fprintf(f, "\t%.3f", v / scale);
}

/* Writes the table gnuplot draws: MiB for memory, MiB/s and faults/s for traffic. Returns the maxima. */
static int derive(struct trace *tr, const char *dir, int index, double *mem_max, double *io_max, double *flt_max)
{
	FILE *f;

	snprintf(tr->data, sizeof tr->data, "%s/trace%d.dat", dir, index);
	if (!(f = fopen(tr->data, "w")))
		return -1;
	for (size_t r = 0; r < tr->rows; r++) {
		double *v = tr->v[r];
		fprintf(f, "%.3f", v[T]);
		for (int k = RSS; k <= CG_MAX; k++) {
			put(f, v[k], MIB);
			if (!isnan(v[k]) && v[k] / MIB > *mem_max)
				*mem_max = v[k] / MIB;
		}
		for (int k = FAULTS; k <= WRITE; k++) {
			double rate = NAN;
			if (r && !isnan(v[k]) && !isnan(tr->v[r - 1][k]) && v[k] >= tr->v[r - 1][k])
				rate = (v[k] - tr->v[r - 1][k]) / (v[T] - tr->v[r - 1][T]);
			put(f, rate, k == FAULTS ? 1 : MIB);
			if (!isnan(rate) && k == FAULTS && rate > *flt_max)
				*flt_max = rate;
			if (!isnan(rate) && k != FAULTS && rate / MIB > *io_max)
				*io_max = rate / MIB;
		}
		fputc('\n', f);
	}
	return fclose(f) ? -1 : 0;
}

/* A string for gnuplot's double quotes. */
static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
	fputc('"', f);
}

/* Column numbers of the derived table (1 is time). */
enum { D_RSS = 2, D_RES, D_DIRTY, D_DISK, D_CG_USE, D_CG_MAX, D_FLT, D_READ, D_WRITE };

static void script(FILE *f, struct trace *tr, int n, const char *png, double mem_max, double io_max,
		   double flt_max, double t_max)
{
	fprintf(f, "set terminal pngcairo size %d,860 font \",10\"\n", 160 + 620 * n);
	fputs("set output ", f);
	quoted(f, png);
	fputs("\nset datafile separator \"\\t\"\nset datafile missing \"?\"\nset grid\n", f);
	/* keys inside, top left, over headroom left free for them above the highest value */
	fputs("set key top left opaque box samplen 2 font \",9\"\n", f);
	fprintf(f, "set xrange [0:%g]\n", t_max > 0 ? t_max * 1.02 : 1);
	fprintf(f, "set multiplot layout 2,%d rowsfirst title \"spill plot: memory and disk traffic over time\" font \",12\"\n", n);
	for (int i = 0; i < n; i++) {
		const char *d = tr[i].data;
		fputs("set title ", f);
		quoted(f, tr[i].title);
		fprintf(f, "\nset xlabel \"time (s)\"\nset ylabel \"memory (MiB)\"\nset yrange [0:%g]\nunset y2tics\nunset y2label\nplot ",
			mem_max > 0 ? mem_max * 1.7 : 1);
		const char *sep = "";
		struct { int col, has; const char *style, *what; } s[] = {
			{ D_CG_USE, tr[i].has[CG_USE], "lw 2 lc rgb \"#222222\"", "cgroup usage (page cache included)" },
			{ D_RSS, tr[i].has[RSS], "lw 2 lc rgb \"#1f77b4\"", "RSS (resident spilled pages included)" },
			{ D_RES, tr[i].has[RES], "lw 2 lc rgb \"#2ca02c\"", "spilled, in RAM" },
			{ D_DIRTY, tr[i].has[DIRTY], "lw 1 lc rgb \"#ff7f0e\"", "spilled, dirty" },
			{ D_DISK, tr[i].has[DISK], "lw 2 dt 3 lc rgb \"#7f7f7f\"", "spill file on disk" },
			/* last, so that the usage running along it does not hide it */
			{ D_CG_MAX, tr[i].has[CG_MAX], "lw 2.5 dt 2 lc rgb \"#d62728\"", "memory cap (cgroup limit)" },
		};
		for (unsigned k = 0; k < sizeof s / sizeof *s; k++) {
			if (!s[k].has)
				continue;
			fprintf(f, "%s", sep);
			quoted(f, d);
			fprintf(f, " using 1:%d with %s %s title \"%s\"", s[k].col, tr[i].rows < 3 ? "linespoints pt 7" : "lines",
				s[k].style, s[k].what);
			sep = ", \\\n     ";
		}
		fputc('\n', f);
	}
	for (int i = 0; i < n; i++) {
		const char *d = tr[i].data;
		fputs("set title ", f);
		quoted(f, tr[i].title);
		fprintf(f, "\nset xlabel \"time (s)\"\nset ylabel \"disk traffic (MiB/s)\"\nset yrange [0:%g]\n"
			"set y2label \"major faults per second\"\nset y2range [0:%g]\nset y2tics\nplot ",
			io_max > 0 ? io_max * 1.4 : 1, flt_max > 0 ? flt_max * 1.4 : 1);
		quoted(f, d);
		fprintf(f, " using 1:%d with lines lw 2 lc rgb \"#1f77b4\" title \"read from disk\", \\\n     ", D_READ);
		quoted(f, d);
		fprintf(f, " using 1:%d with lines lw 2 lc rgb \"#d62728\" title \"written (page cache dirtied)\", \\\n     ", D_WRITE);
		quoted(f, d);
		fprintf(f, " using 1:%d axes x1y2 with lines lw 1 dt 2 lc rgb \"#555555\" title \"major faults/s (right axis)\"\n",
			D_FLT);
	}
	fputs("unset multiplot\n", f);
}

/* Runs gnuplot on SCRIPT; its messages go to LOG. Returns its exit status, 127 if it cannot run. */
static int run_gnuplot(const char *script_path, const char *log)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 127;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execlp("gnuplot", "gnuplot", script_path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 127;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int is_png(const char *path)
{
	unsigned char sig[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, sig, sizeof sig) : -1;
	if (fd >= 0)
		close(fd);
	return n == 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0;
}

int plot_main(int argc, char **argv)
{
	const char *out = NULL, *pending_title = NULL;
	struct trace *tr = calloc((size_t)argc, sizeof *tr);
	int n = 0, rc = 1;
	size_t most = 0;
	char dir[PATH_MAX], png_tmp[PATH_MAX + 16], path[PATH_MAX + 32] = "", *def = NULL;
	double mem_max = 0, io_max = 0, flt_max = 0, t_max = 0;

	if (!tr)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help();
			free(tr);
			return 0;
		} else if ((strcmp(a, "-o") == 0 || strcmp(a, "-t") == 0) && i + 1 < argc) {
			if (a[1] == 'o')
				out = argv[++i];
			else
				pending_title = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			say("error: unknown option %s, or it needs a value (spill plot --help)", a);
			free(tr);
			return 2;
		} else {
			tr[n].file = a;
			tr[n++].title = pending_title;
			pending_title = NULL;
		}
	}
	if (!n) {
		say("error: no trace given (%s)", usage_line);
		free(tr);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		if (load(&tr[i]))
			goto out;
		if (!tr[i].title) {
			const char *b = strrchr(tr[i].file, '/');
			tr[i].title = b ? b + 1 : tr[i].file;
		}
		if (tr[i].v[tr[i].rows - 1][T] > t_max)
			t_max = tr[i].v[tr[i].rows - 1][T];
		if (tr[i].rows > most)
			most = tr[i].rows;
	}
	/* A run killed at once may have one sample beside a longer one; alone it draws nothing. */
	if (most < 2) {
		say("error: %s has one sample only: nothing to draw over time", tr[0].file);
		goto out;
	}
	if (!out) {
		size_t len = strlen(tr[0].file);
		def = malloc(len + 5);
		if (!def)
			goto out;
		memcpy(def, tr[0].file, len + 1);
		if (len > 4 && strcmp(def + len - 4, ".tsv") == 0)
			def[len - 4] = '\0';
		strcat(def, ".png");
		out = def;
	}
	const char *tmpdir = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/spill-plot.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(dir)) {
		say("error: cannot make a temporary directory (%s): %s", dir, strerror(errno));
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (derive(&tr[i], dir, i, &mem_max, &io_max, &flt_max)) {
			say("error: cannot write %s: %s", tr[i].data, strerror(errno));
			goto clean;
		}
	/* The picture is written beside its final name and renamed when whole: never half a PNG. */
	snprintf(png_tmp, sizeof png_tmp, "%s.XXXXXX", out);
	int fd = mkstemp(png_tmp);
	if (fd < 0) {
		say("error: cannot write %s: %s", out, strerror(errno));
		goto clean;
	}
	close(fd);
	snprintf(path, sizeof path, "%s/plot.gp", dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		say("error: cannot write %s: %s", path, strerror(errno));
		unlink(png_tmp);
		goto clean;
	}
	script(f, tr, n, png_tmp, mem_max, io_max, flt_max, t_max);
	fclose(f);
	char log[PATH_MAX + 32];
	snprintf(log, sizeof log, "%s/gnuplot.log", dir);
	int st = run_gnuplot(path, log);
	if (st == 127) {
		say("error: cannot run gnuplot; install it (Debian: apt-get install gnuplot-nox)");
	} else if (st != 0 || !is_png(png_tmp)) {
		char msg[2048] = "";
		read_small(log, msg, sizeof msg);
		say("error: gnuplot failed (status %d): %s", st, msg[0] ? msg : "no message");
	} else if (rename(png_tmp, out)) {
		say("error: cannot write %s: %s", out, strerror(errno));
	} else {
		printf("%s\n", out);
		rc = 0;
	}
	if (rc)
		unlink(png_tmp);
clean:
	for (int i = 0; i < n; i++)
		if (tr[i].data[0])
			unlink(tr[i].data);
	snprintf(path, sizeof path, "%s/plot.gp", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/gnuplot.log", dir);
	unlink(path);
	rmdir(dir);
out:
	for (int i = 0; i < n; i++)
		free(tr[i].v);
	free(tr);
	free(def);
	return rc;
}
