/* SPDX-License-Identifier: MIT */
/* fork.c - after fork() the child gets spilled blocks of its own, never shared ones. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spill.h"

/*
 * fork(): a MAP_SHARED mapping would be shared with the child. The child re-homes its
 * blocks in a file of its own (or drops them, SPILL_FORK=drop) before fork() returns in
 * either process; the parent waits for that copy so that nothing it writes afterwards
 * can reach the child.
 */
static int fork_pipe[2] = { -1, -1 };

void spill_atfork_prepare(void)
{
	spill_lock();
	if (spill_core_ready() && spill_region_count() &&
	    spill_cfg.fork_mode == SPILL_FORK_COPY && pipe2(fork_pipe, O_CLOEXEC))
		fork_pipe[0] = fork_pipe[1] = -1;
}

void spill_atfork_parent(void)
{
	char c;

	if (fork_pipe[0] >= 0) {
		close(fork_pipe[1]);
		while (read(fork_pipe[0], &c, 1) < 0 && errno == EINTR)
			;
		close(fork_pipe[0]);
		fork_pipe[0] = fork_pipe[1] = -1;
	}
	spill_unlock();
}

/* Fallback when the child cannot have a file: private anonymous copies at the same addresses. */
static void copy_to_ram(int old_fd)
{
	char *src = mmap(NULL, spill_file.span, PROT_READ, MAP_SHARED | MAP_NORESERVE, old_fd, 0);
	size_t cursor = 0;
	struct spill_block *b;

	mmap(spill_file.base, spill_file.span, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	while (src != MAP_FAILED && (b = spill_region_next(&cursor)))
		memcpy(spill_file.base + b->off, src + b->off, b->len);
	if (src != MAP_FAILED)
		munmap(src, spill_file.span);
	close(old_fd);
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
		     spill_backing_copy_fd(spill_file.fd, fd, b->off, b->off, b->len) == 0;
	if (ok && spill_backing_switch(fd) == 0)
		return;
	if (fd >= 0)
		close(fd);
	spill_warn("fork: cannot give the child a spill file of its own (%s); its spilled blocks are copied to RAM",
		   spill_errname(errno));
	copy_to_ram(spill_file.fd);
	spill_core_set_inherited_only();
}

void spill_atfork_child(void)
{
	char c = 1;

	spill_unlock();	/* taken by prepare in this very thread; the child has no other */
	if (!spill_core_ready())
		goto out;
	spill_core_forget_kept();
	if (spill_cfg.fork_mode == SPILL_FORK_DROP) {
		spill_backing_drop();
		spill_core_set_inherited_only();
	} else if (spill_region_count()) {
		child_rehome();
	}
out:
	if (fork_pipe[1] >= 0) {
		close(fork_pipe[0]);
		(void)!write(fork_pipe[1], &c, 1);
		close(fork_pipe[1]);
		fork_pipe[0] = fork_pipe[1] = -1;
	}
}
