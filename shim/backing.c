/* SPDX-License-Identifier: MIT */
/* backing.c - the unlinked spill file and the address reservation mapped onto it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "spill.h"

#define DEFAULT_SPAN ((size_t)1 << 40)	/* 1 TiB of addresses; costs nothing until used */
#define MIN_SPAN ((size_t)16 << 20)

struct spill_backing spill_file = { .fd = -1 };
int spill_backing_force_named;
size_t spill_backing_span_want;

static ssize_t copy_range(int in_fd, loff_t *in, int out_fd, loff_t *out, size_t len)
{
	return copy_file_range(in_fd, in, out_fd, out, len, 0);
}

/* copy_file_range(), or a test's stand-in that fails or comes up short on purpose. */
ssize_t (*spill_backing_copy_range)(int, loff_t *, int, loff_t *, size_t) = copy_range;

/* Checks DIR and writes its canonical path to CANON. On failure says why, once. */
int spill_backing_check_dir(const char *dir, char *canon, size_t canon_size)
{
	char proc[64];
	struct statfs sfs;
	ssize_t n;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		spill_warn("SPILL_DIR=\"%s\" %s; spilling disabled", dir,
			   errno == ENOTDIR ? "is not a directory" :
			   errno == ENOENT ? "does not exist" : spill_errname(errno));
		return -1;
	}
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS)) {
		spill_warn("SPILL_DIR=\"%s\" cannot be written (%s); spilling disabled", dir,
			   spill_errname(errno));
		close(fd);
		return -1;
	}
	spill_format(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, canon, canon_size - 1);
	if (n > 0 && canon[0] == '/')
		canon[n] = '\0';
	else
		spill_format(canon, canon_size, "%s", dir);
	if (fstatfs(fd, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC))
		spill_warn("SPILL_DIR=\"%s\" is on %s; spilled blocks stay in memory there", canon,
			   sfs.f_type == TMPFS_MAGIC ? "tmpfs" : "ramfs");
	close(fd);
	return 0;
}

/*
 * btrfs writes a changed block to a new place (copy on write): an overwrite of spilled data
 * that is on disk already needs free space again, and when the disk is full the page fault
 * ends in SIGBUS, whatever fallocate reserved. A NOCOW file is overwritten in place, in the
 * blocks fallocate reserved. The flag can only be set while the file is empty. (btrfs keeps
 * no checksums for such a file; spilled memory needs none beyond what RAM has.)
 */
static void no_cow(int fd)
{
	struct statfs sfs;
	int flags, saved = errno;

	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == BTRFS_SUPER_MAGIC &&
	    ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_NOCOW_FL)) {
		flags |= FS_NOCOW_FL;
		ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	errno = saved;
}

/* A file with no name: O_TMPFILE, or where that is refused a random name unlinked at once. */
static int new_file(const char *dir, int *named)
{
	int fd = -1;

	*named = 0;
	if (!spill_backing_force_named) {
		fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			no_cow(fd);
		if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
			return fd;
	}
	*named = 1;
	for (int tries = 0; tries < 16 && fd < 0; tries++) {
		unsigned char r[8];
		char path[PATH_MAX];
		if (getrandom(r, sizeof r, GRND_NONBLOCK) != sizeof r)
			spill_format((char *)r, sizeof r, "%x", (unsigned)(getpid() + tries));
		size_t n = spill_format(path, sizeof path, "%s/.libspill-", dir);
		for (unsigned i = 0; i < sizeof r && n + 2 < sizeof path; i++) {
			path[n++] = "0123456789abcdef"[r[i] >> 4];
			path[n++] = "0123456789abcdef"[r[i] & 15];
		}
		path[n] = '\0';
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			unlink(path);
			no_cow(fd);
		}
		else if (errno != EEXIST)
			break;
	}
	return fd;
}

static size_t span_limit(void)
{
	struct rlimit rl;
	size_t span = spill_backing_span_want ? spill_backing_span_want : DEFAULT_SPAN;

	/* Under ulimit -v, take a quarter of the address space at most: the program needs the rest. */
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < span)
		span = (size_t)(rl.rlim_cur / 4) & ~(spill_page - 1);
	return span;
}

/* SPILL_ADVICE applies to the whole mapping at once: advice per block would split it. */
static void advise(void)
{
	static const int how[] = { MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM };
	if (spill_cfg.advice != SPILL_ADVICE_NORMAL)
		madvise(spill_file.base, spill_file.span, how[spill_cfg.advice]);
}

/* Creates the spill file and maps the reservation. Returns 0, or an errno. */
int spill_backing_open(const char *dir)
{
	size_t span = span_limit();
	char *base = MAP_FAILED;
	int fd = new_file(dir, &spill_file.named);
	struct stat st;

	if (fd < 0)
		return errno;
	if (spill_file.named)
		spill_warn("SPILL_DIR=\"%s\" does not support O_TMPFILE; using unlinked named files", dir);
	fd = spill_fd_move_high(fd);
	for (; span >= MIN_SPAN; span /= 2) {
		if (ftruncate(fd, (off_t)span))
			continue;
		base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
		if (base != MAP_FAILED)
			break;
	}
	if (base == MAP_FAILED) {
		int err = errno;
		close(fd);
		return err;
	}
	spill_file.can_zero = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, spill_page) == 0;
	if (spill_file.can_zero)	/* the probe allocated a block: give it back */
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)spill_page);
	spill_file.dev = fstat(fd, &st) == 0 ? st.st_dev : 0;
	spill_file.fd = fd;
	spill_file.base = base;
	spill_file.span = span;
	advise();
	return 0;
}

/* Reserves disk blocks for [off, off+len), so that first touch can never SIGBUS. */
int spill_backing_reserve(uint64_t off, uint64_t len)
{
	int r;
	while ((r = fallocate(spill_file.fd, 0, (off_t)off, (off_t)len)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		int err = errno;
		spill_backing_punch(off, len);	/* a failed fallocate may have allocated part */
		errno = err;
		return -1;
	}
	return 0;
}

/* Gives the memory and the disk space of [off, off+len) back; the range reads as zero after. */
void spill_backing_punch(uint64_t off, uint64_t len)
{
	int saved = errno;
	fallocate(spill_file.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
	errno = saved;
}

/* Gives the memory back and keeps the disk blocks (no discard): the range reads as zero after. */
int spill_backing_zero(uint64_t off, uint64_t len)
{
	int saved = errno, r;
	r = fallocate(spill_file.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
	errno = saved;
	return r;
}

/*
 * Copies [src, src+len) of FROM_FD to [dst, dst+len) of TO_FD inside the kernel, skipping
 * the source's holes: the destination must read as zero there already (fresh or punched
 * space). Holes are found with SEEK_DATA a chunk at a time; SEEK_HOLE is not used, because
 * it scans on to the end of the data, which on a file of many small blocks is most of it.
 * Every offset is computed from one count, DONE, so that source and destination advance
 * together. Returns 0, or -1 with errno set if any part could not be copied: the caller
 * then owns a destination of unknown content and must not use it as a copy.
 */
#define COPY_CHUNK ((uint64_t)1 << 20)

static int data_at(int fd, uint64_t off)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	return d >= 0 && (uint64_t)d == off;
}

int spill_backing_copy_fd(int from_fd, int to_fd, uint64_t src, uint64_t dst, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		off_t data = lseek(from_fd, (off_t)(src + done), SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			return 0;		/* nothing but a hole up to the end of the file */
		if (data < 0)
			return -1;
		if ((uint64_t)data >= src + len)
			return 0;
		done = (uint64_t)data - src;
		/* a run of chunks that start with data, copied as one */
		uint64_t end = (done / COPY_CHUNK + 1) * COPY_CHUNK;
		while (end < len && data_at(from_fd, src + end))
			end += COPY_CHUNK;
		if (end > len)
			end = len;
		while (done < end) {
			loff_t in = (loff_t)(src + done), out = (loff_t)(dst + done);
			ssize_t n = spill_backing_copy_range(from_fd, &in, to_fd, &out, end - done);
			if (n <= 0) {
				if (n == 0)
					errno = EIO;	/* the source ended early: not a copy */
				return -1;
			}
			done += (uint64_t)n;
		}
	}
	return 0;
}

/* A fresh file of the same span for a forked child. Returns the fd or -1. */
int spill_backing_new_file(const char *dir)
{
	int named, fd = new_file(dir, &named);

	if (fd < 0)
		return -1;
	fd = spill_fd_move_high(fd);
	if (ftruncate(fd, (off_t)spill_file.span)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Puts FD under the reservation in place of the current file, in one mmap. */
int spill_backing_switch(int fd)
{
	void *p = mmap(spill_file.base, spill_file.span, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	close(spill_file.fd);
	spill_file.fd = fd;
	advise();
	return 0;
}

/* The child does not inherit spilled blocks: the range stays reserved, and touching it faults. */
void spill_backing_drop(void)
{
	mmap(spill_file.base, spill_file.span, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	close(spill_file.fd);
	spill_file.fd = -1;
}

/* Space the process may still use on the spill partition, and its total size. */
int spill_backing_avail(uint64_t *avail, uint64_t *total)
{
	struct statvfs sv;
	if (fstatvfs(spill_file.fd, &sv))
		return -1;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	return 0;
}
