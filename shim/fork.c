/* SPDX-License-Identifier: MIT */
/* fork.c - what a fork() child gets of spilled blocks: shared copy-on-write, a copy, or nothing. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spill.h"

/*
 * A MAP_SHARED mapping would be shared with the child, so before fork() the blocks of our
 * file become copy-on-write (cow.c), which makes the child's view a snapshot of the instant
 * of the fork. Then, by SPILL_FORK:
 * - cow: the child keeps them so, and spills new blocks to a file of its own;
 * - copy: the child copies them into a file of its own before fork() returns, and the
 *   parent waits for that copy; cow falls back to it when it cannot share;
 * - drop: the child loses them (touching one faults) and spills nothing.
 */
static int forking;		/* this fork has spilled blocks, or a spill file, to deal with */
static int child_copies;

void spill_atfork_prepare(void)
{
	spill_lock();
	forking = spill_core_ready();
	child_copies = 0;
	if (forking && spill_cfg.fork_mode != SPILL_FORK_DROP)
		child_copies = spill_cow_prepare(spill_cfg.fork_mode == SPILL_FORK_COPY);
}

void spill_atfork_parent(void)
{
	int fd = forking ? spill_cow_wait_fd() : -1;
	char c;

	/* EOF once the child has copied its blocks (or exited): it holds the only write end. */
	while (fd >= 0 && read(fd, &c, 1) < 0 && errno == EINTR)
		;
	spill_unlock();
	if (fd >= 0)
		spill_cow_tick(0);	/* nobody shares the frozen blocks now: take them back */
}

/*
 * Last resort when the child cannot have a file: private anonymous copies at the same
 * addresses. The blocks go to a compact anonymous buffer first, then anonymous memory
 * replaces the reservation where it is, and they come back. A second area as large as the
 * reservation would be simpler, but the address space may not hold two (ThreadSanitizer's
 * does not, nor does a tight ulimit -v).
 */
static void copy_to_ram(void)
{
	size_t cursor = 0, total = 0, at = 0;
	struct spill_block *b;
	char *tmp = NULL;

	while ((b = spill_region_next(&cursor)))
		total += b->len;
	if (total)
		tmp = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		spill_die("fork: cannot copy spilled blocks into the child's memory (%s)", spill_errname(errno));
	for (cursor = 0; (b = spill_region_next(&cursor)); at += b->len)
		memcpy(tmp + at, spill_file.base + b->off, b->len);
	if (mmap(spill_file.base, spill_file.span, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
		spill_die("fork: cannot copy spilled blocks into the child's memory (%s)", spill_errname(errno));
	for (cursor = 0, at = 0; (b = spill_region_next(&cursor)); at += b->len)
		memcpy(spill_file.base + b->off, tmp + at, b->len);
	if (tmp)
		munmap(tmp, total);
	if (spill_file.fd >= 0)
		close(spill_file.fd);
	spill_file.fd = -1;
}

static void child_rehome(void)
{
	size_t cursor = 0;
	struct spill_block *b;
	uint64_t need = 0, avail, total;
	int fd = spill_backing_new_file(spill_cfg.dir), ok = fd >= 0;

	/* The child's copy is a spill like any other: it leaves SPILL_MIN_FREE and obeys SPILL_MAX. */
	while ((b = spill_region_next(&cursor)))
		need += b->len;
	cursor = 0;
	if (ok && (need > spill_cfg.max ||
		   (spill_backing_avail(&avail, &total) == 0 &&
		    (avail < need || avail - need < spill_policy_min_free(total))))) {
		ok = 0;
		errno = ENOSPC;
	}
	while (ok && (b = spill_region_next(&cursor)))
		ok = fallocate(fd, 0, (off_t)b->off, (off_t)b->len) == 0 &&
		     spill_copy_block(b, fd, b->off) == 0;
	if (ok && spill_backing_switch(fd) == 0)
		return;
	if (fd >= 0)
		close(fd);
	spill_warn("fork: cannot give the child a spill file of its own (%s); its spilled blocks are copied to RAM",
		   spill_errname(errno));
	copy_to_ram();
	spill_core_set_inherited_only(1);
}

void spill_atfork_child(void)
{
	spill_unlock();	/* taken by prepare in this very thread; the child has no other */
	spill_pub_atfork_child();	/* before any counter update below: not the parent's page */
	if (!forking)
		return;
	spill_cow_child();
	spill_core_forget_kept();
	if (spill_cfg.fork_mode == SPILL_FORK_DROP) {
		spill_backing_drop();
		spill_core_set_inherited_only(0);
		spill_cow_forget_files();
	} else if (child_copies) {
		child_rehome();
		spill_cow_forget_files();	/* after the copy: closing our group end lets the parent go on */
	} else {
		spill_cow_inherit();
	}
}
