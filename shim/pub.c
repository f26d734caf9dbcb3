/* SPDX-License-Identifier: MIT */
/* pub.c - the counter page: a small sealed memfd that spill top reads through /proc/PID/fd. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spill.h"

/*
 * The counters live in the page itself, so that publishing them costs the allocation path
 * nothing. The page is made on the first call that counts anything (a spill, a free, a
 * fallback): processes that never reach the spill path hold no page and no descriptor.
 * It is a mapping of its own, never part of the spill reservation, and a fork child gets a
 * page of its own before fork() returns in it.
 */
static struct spill_pub local;		/* before the page exists, or where it cannot */
struct spill_pub *spill_pub = &local;
static int state;			/* 0 no page yet, 1 being made, 2 settled */
static int page_fd = -1;
static dev_t page_dev;
static ino_t page_ino;		/* to tell whether page_fd is still ours after the program closed it */

static size_t page_len(void)
{
	return (sizeof(struct spill_pub) + spill_page - 1) & ~(spill_page - 1);
}

static void fill_header(struct spill_pub *p)
{
	memcpy(p->magic, SPILL_PUB_MAGIC, sizeof p->magic);
	p->version = SPILL_PUB_VERSION;
	p->size = sizeof *p;
	p->pid = (int32_t)getpid();
	p->fd = spill_file.fd;
	p->reason_count = SPILL_R_COUNT;
	p->threshold = spill_cfg.threshold;
	spill_format(p->dir, sizeof p->dir, "%s", spill_cfg.dir);
}

/*
 * A memfd of the page's size, sealed against shrinking (a reader that truncated it would
 * make our next update a SIGBUS) and mode 0400, so that opening it again through
 * /proc/PID/fd gives read access only, root aside. Returns the descriptor or -1.
 */
static int new_memfd(void)
{
	int fd = memfd_create(SPILL_PUB_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)page_len()) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) || fchmod(fd, 0400)) {
		close(fd);
		return -1;
	}
	return spill_fd_move_high(fd);
}

/* The counters to update: makes the page on first use. Other threads wait the few µs it takes. */
struct spill_pub *spill_pub_get(void)
{
	int expected = 0;

	if (spill_likely(__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2))
		return spill_pub;
	if (!__atomic_compare_exchange_n(&state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2)
			sched_yield();
		return spill_pub;
	}
	int saved = errno, fd = new_memfd();
	struct spill_pub *p = fd >= 0 ? mmap(NULL, page_len(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
				      : MAP_FAILED;
	if (p != MAP_FAILED) {
		memcpy(p, &local, sizeof local);	/* counters reset by a unit test, not counted ones */
		fill_header(p);
		struct stat st;
		if (fstat(fd, &st) == 0)
			page_dev = st.st_dev, page_ino = st.st_ino;
		page_fd = fd;
		spill_pub = p;
	} else {
		if (fd >= 0)
			close(fd);
		fill_header(&local);	/* unpublished: spill top shows "-" for this process */
	}
	errno = saved;
	__atomic_store_n(&state, 2, __ATOMIC_RELEASE);
	return spill_pub;
}

/* The page's descriptor, or -1 (for the unit tests). */
int spill_pub_fd(void)
{
	return page_fd;
}

/*
 * fork child: the inherited page is the parent's, shared and writable. Give the child a
 * copy in a memfd of its own at the same address and under the same descriptor number, or
 * failing that a private copy that is not published. fork.c calls this before the child's
 * first counter update; calling it again in the same child does nothing.
 */
void spill_pub_atfork_child(void)
{
	int fd, s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);

	if (spill_pub->pid == (int32_t)getpid())
		return;		/* done already in this child */
	if (s == 1) {		/* the thread making the page does not exist here: start over */
		spill_pub = &local;
		__atomic_store_n(&state, 0, __ATOMIC_RELEASE);
		return;
	}
	if (s != 2 || spill_pub == &local) {
		local.pid = (int32_t)getpid();
		return;
	}
	struct stat st;
	int ours = fstat(page_fd, &st) == 0 && st.st_dev == page_dev && st.st_ino == page_ino;
	fd = new_memfd();
	if (fd >= 0 && pwrite(fd, spill_pub, sizeof *spill_pub, 0) == (ssize_t)sizeof *spill_pub &&
	    mmap(spill_pub, page_len(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED) {
		/* Same number as the parent's page, unless the program closed it and reused it. */
		if (ours && dup3(fd, page_fd, O_CLOEXEC) == page_fd) {
			close(fd);
		} else {
			if (ours)
				close(page_fd);
			page_fd = fd;
		}
		if (fstat(page_fd, &st) == 0)
			page_dev = st.st_dev, page_ino = st.st_ino;
		spill_pub->pid = (int32_t)getpid();
		return;
	}
	if (fd >= 0)
		close(fd);
	memcpy(&local, spill_pub, sizeof local);
	munmap(spill_pub, page_len());
	if (ours)
		close(page_fd);
	page_fd = -1;
	local.pid = (int32_t)getpid();
	spill_pub = &local;
}
