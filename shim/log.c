/* SPDX-License-Identifier: MIT */
/* log.c - messages without malloc: a small formatter, a stack buffer and write(2). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "spill.h"

#define MAX_WARNINGS 32

static int event_fd = -1;
static int warnings;
static SPILL_TLS int in_log;	/* a message about a message must not recurse */

static size_t put(char *buf, size_t size, size_t at, char c)
{
	if (at + 1 < size)
		buf[at] = c;
	return at + 1;
}

static size_t put_num(char *buf, size_t size, size_t at, unsigned long long v, unsigned base, int neg)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		at = put(buf, size, at, '-');
	while (n)
		at = put(buf, size, at, tmp[--n]);
	return at;
}

/* Supports %s %c %d %u %zu %zd %zx %llu %lld %llx %x %p %%: all the shim needs. */
size_t spill_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t at = 0;

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			at = put(buf, size, at, *fmt);
			continue;
		}
		int lng = 0;
		fmt++;
		if (*fmt == 'z') {
			lng = 2;
			fmt++;
		} else if (fmt[0] == 'l' && fmt[1] == 'l') {
			lng = 2;
			fmt += 2;
		} else if (*fmt == 'l') {
			lng = 2;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				at = put(buf, size, at, *s);
			break;
		}
		case 'c':
			at = put(buf, size, at, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			at = put_num(buf, size, at, v < 0 ? -(unsigned long long)v : (unsigned long long)v, 10, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			at = put_num(buf, size, at, v, *fmt == 'u' ? 10 : 16, 0);
			break;
		}
		case 'p':
			at = put(buf, size, at, '0');
			at = put(buf, size, at, 'x');
			at = put_num(buf, size, at, (uintptr_t)va_arg(ap, void *), 16, 0);
			break;
		case '%':
			at = put(buf, size, at, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			at = put(buf, size, at, '%');
			at = put(buf, size, at, *fmt);
		}
	}
	if (size)
		buf[at < size ? at : size - 1] = '\0';
	return at;
}

size_t spill_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = spill_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void emit(int fd, const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;
	int saved = errno;	/* keep errno: callers are in the middle of malloc and free */

	if (fd < 0 || in_log)
		return;
	in_log = 1;
	n = spill_format(buf, sizeof buf, "%s", prefix);
	if (n < sizeof buf)
		n += spill_vformat(buf + n, sizeof buf - n, fmt, ap);
	if (n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	while (write(fd, buf, n) < 0 && errno == EINTR)
		;
	in_log = 0;
	errno = saved;
}

/* Puts a descriptor we keep for the life of the process above the range programs use. */
int spill_fd_move_high(int fd)
{
	struct rlimit rl;
	long floor = 768;

	if (fd < 0)
		return fd;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < 1024)
		floor = (long)rl.rlim_cur * 3 / 4;
	if (fd >= floor)
		return fd;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, floor);
	if (high < 0)
		return fd;
	close(fd);
	return high;
}

/* strerror() may load message catalogs through malloc; these names cannot. */
const char *spill_errname(int err)
{
	switch (err) {
	case ENOENT: return "no such file or directory";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case ENOTDIR: return "not a directory";
	case EISDIR: return "is a directory";
	case EROFS: return "read-only file system";
	case ENOSPC: return "no space left on device";
	case EDQUOT: return "disk quota exceeded";
	case ENOMEM: return "out of memory";
	case EFBIG: return "file too large";
	case EINVAL: return "invalid argument";
	case EMFILE: return "too many open files";
	case EOPNOTSUPP: return "operation not supported";
	case ELOOP: return "too many symbolic links";
	case ENAMETOOLONG: return "file name too long";
	default: return "system error";
	}
}

int spill_open_sink(const char *path, int flags)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | flags, 0644);
	return fd;
}

void spill_log_open(const struct spill_config *cfg)
{
	if (cfg->log == SPILL_SINK_STDERR)
		event_fd = STDERR_FILENO;
	else if (cfg->log == SPILL_SINK_FILE) {
		event_fd = spill_fd_move_high(spill_open_sink(cfg->log_path, 0));
		if (event_fd < 0)
			spill_warn("SPILL_LOG=\"%s\" cannot be opened (%s); logging to stderr",
				   cfg->log_path, spill_errname(errno));
		if (event_fd < 0)
			event_fd = STDERR_FILENO;
	}
}

int spill_log_enabled(void)
{
	return event_fd >= 0;
}

void spill_event(const char *fmt, ...)
{
	char prefix[40];
	va_list ap;

	if (event_fd < 0)
		return;
	spill_format(prefix, sizeof prefix, "libspill: %d ", (int)getpid());
	va_start(ap, fmt);
	emit(event_fd, prefix, fmt, ap);
	va_end(ap);
}

void spill_warn(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&warnings, 1, __ATOMIC_RELAXED) >= MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	emit(STDERR_FILENO, "libspill: ", fmt, ap);
	va_end(ap);
}

void spill_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(STDERR_FILENO, "libspill: ", fmt, ap);
	va_end(ap);
	abort();
}
