/* SPDX-License-Identifier: MIT */
/* common.c - line-by-line reading of /proc files, sizes for people, numbers from the command line. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spillmon.h"

const char *prog = "spill";

/* One line on stderr, prefixed like every message of the spill command. */
void say(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Calls FN on each line of PATH (newline removed) until it returns nonzero. Reads in
 * chunks, so a caller that stops early spares the kernel the rest of a /proc file such
 * as smaps, which is generated as it is read. Lines longer than the buffer are skipped.
 * Returns 0, or -1 with errno set when PATH cannot be opened or read.
 */
int for_each_line(const char *path, line_fn fn, void *ctx)
{
	static char buf[1 << 16];
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), skipping = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		have += (size_t)n;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = '\0';
			if (!skipping && fn(line, ctx)) {
				close(fd);
				return 0;
			}
			skipping = 0;
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (n == 0) {
			if (have && !skipping) {
				buf[have] = '\0';
				fn(buf, ctx);
			}
			break;
		}
		if (have == sizeof buf - 1) {	/* a line longer than the buffer */
			have = 0;
			skipping = 1;
		}
	}
	close(fd);
	return 0;
}

/* The start of a small file, NUL-terminated; its length or -1. */
ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -1;
	while ((size_t)got < size - 1 && (n = read(fd, buf + got, size - 1 - (size_t)got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* BYTES as "512", "1.5K", "12.0M", "3.2G" (binary units); "-" when unknown. */
const char *human(char *buf, size_t size, long long bytes)
{
	static const char unit[] = "KMGTPE";
	double v = (double)bytes;
	int i = -1;

	if (bytes < 0) {
		snprintf(buf, size, "-");
		return buf;
	}
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, size, "%lld", bytes);
	else
		snprintf(buf, size, "%.1f%c", v, unit[i]);
	return buf;
}

/* A number of seconds from LO to HI ("1", "0.5", "2.25"); 0 or -1. */
int parse_seconds(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s || strspn(s, "0123456789.") != strlen(s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > 0x3fffffff)
		return -1;
	*out = (pid_t)v;
	return 0;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Seconds since boot, the clock of /proc/PID/stat's start time. */
double uptime_s(void)
{
	return clock_s(CLOCK_BOOTTIME);
}
