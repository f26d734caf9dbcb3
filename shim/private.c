/* SPDX-License-Identifier: MIT */
/* private.c - MAP_PRIVATE views of spill files: mapping them, and copying what they hold. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spill.h"

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)	/* a page-cache page (or shared anonymous): not a private copy */
#define PM_BATCH 512		/* pagemap entries read at once: 2 MiB of 4 KiB pages */

/* Maps [off, off+len) of FD over the same range of the reservation, shared or copy-on-write. */
int spill_map_file(uint64_t off, uint64_t len, int fd, int private)
{
	static const int how[] = { MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM };
	char *at = spill_file.base + off;

	if (mmap(at, len, PROT_READ | PROT_WRITE, (private ? MAP_PRIVATE : MAP_SHARED) |
		 MAP_FIXED | MAP_NORESERVE, fd, (off_t)off) == MAP_FAILED)
		return -1;
	/* a new mapping starts with normal read-ahead; keep it like its neighbours, so it can merge */
	if (spill_cfg.advice != SPILL_ADVICE_NORMAL)
		madvise(at, len, how[spill_cfg.advice]);
	return 0;
}

static int write_all(int fd, const char *p, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n, off += (uint64_t)n, len -= (uint64_t)n;
	}
	return 0;
}

/*
 * Writes to FD at OFF the pages of [addr, addr+len) that this process holds as private
 * copies: pages written through a MAP_PRIVATE file mapping since it was made, which
 * /proc/self/pagemap shows as present and not file pages (or swapped out). Every other page
 * still reads from the mapped file. Without pagemap the whole range is written, which is
 * slower but as correct. The caller must keep other threads from writing the range.
 */
int spill_private_flush(const char *addr, uint64_t len, int fd, uint64_t off)
{
	uint64_t ent[PM_BATCH], pages = len / spill_page, run = 0, first = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), r = 0;

	if (pm < 0)
		return write_all(fd, addr, len, off);
	for (uint64_t at = 0; at < pages && !r; at += PM_BATCH) {
		uint64_t n = pages - at < PM_BATCH ? pages - at : PM_BATCH;
		off_t where = (off_t)(((uintptr_t)addr / spill_page + at) * sizeof ent[0]);
		if (pread(pm, ent, n * sizeof ent[0], where) != (ssize_t)(n * sizeof ent[0])) {
			uint64_t from = run ? first : at;	/* write the rest whole */
			r = write_all(fd, addr + from * spill_page, len - from * spill_page,
				      off + from * spill_page);
			run = 0;
			break;
		}
		for (uint64_t i = 0; i < n && !r; i++) {
			int mine = (ent[i] & PM_SWAPPED) || (ent[i] & (PM_PRESENT | PM_FILE)) == PM_PRESENT;
			if (mine && !run++)
				first = at + i;
			if (!mine && run) {
				r = write_all(fd, addr + first * spill_page, run * spill_page, off + first * spill_page);
				run = 0;
			}
		}
	}
	if (run && !r)
		r = write_all(fd, addr + first * spill_page, run * spill_page, off + first * spill_page);
	int saved = errno;
	close(pm);
	errno = saved;
	return r;
}

/*
 * Copies block B's content to [dst, dst + B->len) of DST_FD, which must read as zero there:
 * the file it is mapped from (holes skipped), then the pages this process changed since a
 * fork made the block copy-on-write. 0, or -1 when the copy is not whole.
 */
int spill_copy_block(const struct spill_block *b, int dst_fd, uint64_t dst)
{
	int src_fd = b->src >= 2 ? spill_cow_src_fd(b->src) : spill_file.fd;

	if (spill_backing_copy_fd(src_fd, dst_fd, b->off, dst, b->len))
		return -1;
	if (b->src == SPILL_SRC_OWN)
		return 0;
	return spill_private_flush(spill_file.base + b->off, b->len, dst_fd, dst);
}
