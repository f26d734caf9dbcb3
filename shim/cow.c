/* SPDX-License-Identifier: MIT */
/* cow.c - spilled blocks shared copy-on-write with forked children, and taking them back. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spill.h"

/*
 * Before fork(), every block of our file is remapped MAP_PRIVATE over its own file range
 * ("frozen"). Parent and child then read the same page cache, and a page that either one
 * writes becomes a private copy in the writer: fork's semantics, in O(blocks). A frozen
 * range of the file must not change while a child may map it, so:
 * - the children of a fork hold the write end of a pipe (a group); it reaches EOF once every
 *   one of them, and their own children, has exited or exec'd (the end is O_CLOEXEC);
 * - a frozen block the parent frees waits in quarantine, address range and disk space,
 *   until no live group shares it, and is released like any other block then;
 * - a frozen block no live group shares is taken back when no other thread can write it
 *   meanwhile: its private pages go into the file and it is mapped MAP_SHARED again.
 * The child keeps our file open as the source of what it inherited, and spills new blocks
 * to a file of its own, made on its first spill.
 * spill_fork_epoch counts groups. A block born at epoch b is shared with group g iff
 * b < g.epoch; a block freed at epoch f also needs g.epoch <= f.
 */
#define SRC_MAX 64		/* files a line of descendants inherits; beyond, forks copy */
#define RETRY_NS 1000000000ll	/* a take-back that other threads prevented waits this long */

struct src {			/* an ancestor's file that inherited blocks are mapped from */
	int fd;
	int hold;		/* the write end of the group that keeps its parent from reusing it */
	uint32_t refs;		/* blocks mapped from it; 0: a free slot */
};

struct group {
	int rfd;		/* -1: the program closed it, so it is taken to live for ever */
	uint32_t epoch;
};

struct quarantined {
	uint64_t off, len, cap;
	uint32_t born, freed;
};

uint32_t spill_fork_epoch;
static struct src srcs[SRC_MAX];
static struct group *groups;
static size_t ngroups, groups_cap;
static struct quarantined *quar;
static size_t nquar, quar_cap;
static uint32_t untracked;	/* a group we could not track: what it shares stays frozen */
static int open_wfd = -1;	/* the newest group's write end, until the next spill call seals it */
static int wait_rfd = -1;	/* copy mode: the parent waits for EOF here */
static int inherited_hold = -1;	/* in a child: the group end that fork() handed us */
static size_t frozen;		/* blocks whose src is SPILL_SRC_FROZEN */
static int pending;		/* is there anything for spill_cow_tick() to look at? */
static long long retry_ns;
static const char *why_not;	/* why the last fork could not share, for its warning */

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int grow(void **arr, size_t *cap, size_t elem)
{
	size_t n = *cap ? *cap * 2 : 64;
	void *p = *arr ? mremap(*arr, *cap * elem, n * elem, MREMAP_MAYMOVE)
		       : mmap(NULL, n * elem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	*arr = p;
	*cap = n;
	return 0;
}

static void close_keep_errno(int fd)
{
	int saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
}

static int shared_with_live(uint32_t born, uint32_t freed)
{
	if (born < untracked)
		return 1;
	for (size_t i = 0; i < ngroups; i++)
		if (born < groups[i].epoch && groups[i].epoch <= freed)
			return 1;
	return 0;
}

/* Lock held. May a live child map block B's file range? */
int spill_cow_shared(const struct spill_block *b)
{
	return b->src == SPILL_SRC_FROZEN && shared_with_live(b->born, UINT32_MAX);
}

int spill_cow_src_fd(uint32_t src)
{
	return src >= 2 && src < SRC_MAX ? srcs[src].fd : -1;
}

static void unref(uint32_t src)
{
	if (src < 2 || src >= SRC_MAX || !srcs[src].refs || --srcs[src].refs)
		return;
	close_keep_errno(srcs[src].fd);
	close_keep_errno(srcs[src].hold);	/* our parent may now reuse that range of its file */
	srcs[src].fd = srcs[src].hold = -1;
}

static int single_threaded(void)
{
	struct stat st;
	return stat("/proc/self/task", &st) == 0 && st.st_nlink == 3;	/* ".", ".." and us */
}

/* --- the parent's side: groups, quarantine, take-back --- */

static void seal(void)
{
	close_keep_errno(open_wfd);
	open_wfd = -1;
}

/* Returns the read end the parent may wait on, or -1. */
static int new_group(void)
{
	int fds[2];

	spill_fork_epoch++;
	pending = 1;
	if ((ngroups == groups_cap && grow((void **)&groups, &groups_cap, sizeof *groups)) ||
	    pipe2(fds, O_CLOEXEC)) {
		/* Nothing would tell us that these children are gone: they share for ever. */
		untracked = spill_fork_epoch;
		return -1;
	}
	fds[0] = spill_fd_move_high(fds[0]);
	open_wfd = spill_fd_move_high(fds[1]);
	groups[ngroups++] = (struct group){ .rfd = fds[0], .epoch = spill_fork_epoch };
	return fds[0];
}

/* Drops the groups whose every member has gone. Returns whether any had. */
static int reap(void)
{
	struct pollfd pf[64];
	size_t keep = 0, i = 0;
	int died = 0;

	while (i < ngroups) {
		size_t n = 0, start = i;
		for (; i < ngroups && n < 64; i++)
			pf[n++] = (struct pollfd){ .fd = groups[i].rfd, .events = POLLIN };
		if (poll(pf, n, 0) < 0)
			for (size_t j = 0; j < n; j++)
				pf[j].revents = 0;
		for (size_t j = 0; j < n; j++) {
			struct group g = groups[start + j];
			if (pf[j].revents & POLLNVAL)	/* closed by the program: we can no longer tell */
				g.rfd = -1;
			if (g.rfd >= 0 && (pf[j].revents & (POLLHUP | POLLIN | POLLERR))) {
				close_keep_errno(g.rfd);
				died = 1;
				continue;
			}
			groups[keep++] = g;
		}
	}
	ngroups = keep;
	return died;
}

/* Lock held, no other thread writing B: B becomes an ordinary block of our file again. */
static int thaw_own(struct spill_block *b)
{
	if (spill_private_flush(spill_file.base + b->off, b->len, spill_file.fd, b->off) ||
	    spill_map_file(b->off, b->cap, spill_file.fd, 0))
		return -1;
	b->src = SPILL_SRC_OWN;
	frozen--;
	spill_event("thaw addr=%p len=%llu", spill_file.base + b->off, (unsigned long long)b->len);
	return 0;
}

static void take_back(void)
{
	size_t cursor = 0;
	struct spill_block *b;

	if (!single_threaded()) {
		retry_ns = now_ns() + RETRY_NS;
		return;
	}
	retry_ns = LLONG_MAX;
	while ((b = spill_region_next(&cursor)))
		if (b->src == SPILL_SRC_FROZEN && !shared_with_live(b->born, UINT32_MAX) && thaw_own(b))
			retry_ns = now_ns() + RETRY_NS;
}

static void release_quarantined(const struct quarantined *q)
{
	if (spill_map_file(q->off, q->cap, spill_file.fd, 0)) {
		spill_backing_punch(q->off, q->len);	/* the addresses stay unusable, the disk does not */
		return;
	}
	spill_core_release_own(q->off, q->len, q->cap);
}

/*
 * At each spill call, and when wait*() has reaped a child: seals the newest group, notices
 * groups that have gone, releases what they held in quarantine and takes frozen blocks back.
 * FROM_WAIT: we may be in a signal handler, so never wait for the lock.
 */
void spill_cow_tick(int from_wait)
{
	struct quarantined done[32];
	size_t ndone;

	if (!__atomic_load_n(&pending, __ATOMIC_ACQUIRE))
		return;
	do {
		ndone = 0;
		if (from_wait) {
			if (spill_trylock())
				return;
		} else {
			spill_lock();
		}
		seal();
		int died = reap();
		for (size_t i = 0; i < nquar && ndone < 32;) {
			if (shared_with_live(quar[i].born, quar[i].freed)) {
				i++;
				continue;
			}
			done[ndone++] = quar[i];
			quar[i] = quar[--nquar];
		}
		if (frozen && (died || now_ns() >= retry_ns))
			take_back();
		__atomic_store_n(&pending, ngroups || nquar || frozen, __ATOMIC_RELEASE);
		spill_unlock();
		for (size_t i = 0; i < ndone; i++)
			release_quarantined(&done[i]);
	} while (ndone == 32);
}

/* --- fork --- */

struct span {
	uint64_t off, len;
};

static void sift(struct span *a, size_t i, size_t n)
{
	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && a[c + 1].off > a[c].off)
			c++;
		if (a[i].off >= a[c].off)
			return;
		struct span t = a[i];
		a[i] = a[c];
		a[c] = t;
	}
}

static void sort_spans(struct span *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(a, i, n);
	for (size_t i = n; i-- > 1;) {
		struct span t = a[0];
		a[0] = a[i];
		a[i] = t;
		sift(a, 0, i);
	}
}

static long read_number(const char *path)
{
	char buf[32];
	long v = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;

	close_keep_errno(fd);
	if (n <= 0)
		return -1;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (buf[i] - '0');
	return v;
}

static long count_mappings(void)
{
	char buf[4096];
	long lines = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close_keep_errno(fd);
	return n < 0 ? -1 : lines;
}

/*
 * Would RUNS more private mappings leave the process too few? Each may split a mapping in
 * three; a quarter of vm.max_map_count stays for the program.
 */
static int too_many_mappings(size_t runs)
{
	long max = read_number("/proc/sys/vm/max_map_count"), now = count_mappings();

	return max > 0 && now >= 0 && (uint64_t)now + 2 * runs + 64 > (uint64_t)(max - max / 4);
}

/* Lock held: remaps the N blocks of our file that are still shared. 0, or -1 if not all. */
static int freeze(size_t n)
{
	size_t bytes = (n * sizeof(struct span) + spill_page - 1) & ~(spill_page - 1), runs = 0, c = 0;
	struct span *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct spill_block *b;
	int r = 0;

	if (a == MAP_FAILED)
		return -1;
	for (size_t cursor = 0; (b = spill_region_next(&cursor));)
		if (b->src == SPILL_SRC_OWN)
			a[c++] = (struct span){ b->off, b->cap };
	sort_spans(a, n);
	for (size_t i = 0; i < n; i++)
		runs += !i || a[i - 1].off + a[i - 1].len != a[i].off;
	if (too_many_mappings(runs)) {
		why_not = "vm.max_map_count would be reached";
		r = -1;
	}
	/* Adjacent blocks go in one mmap, which the kernel keeps as one mapping. */
	for (size_t i = 0, j; i < n && !r; i = j) {
		uint64_t end = a[i].off + a[i].len;
		for (j = i + 1; j < n && a[j].off == end; j++)
			end += a[j].len;
		if (spill_map_file(a[i].off, end - a[i].off, spill_file.fd, 1)) {
			int err = errno;
			/* MAP_FIXED may have unmapped the range before failing: put it back as it was */
			if (spill_map_file(a[i].off, end - a[i].off, spill_file.fd, 0))
				spill_die("fork: cannot map spilled blocks back (%s)", spill_errname(errno));
			errno = err;
			r = -1;
			break;
		}
		for (size_t k = i; k < j; k++)
			spill_region_find(a[k].off)->src = SPILL_SRC_FROZEN;
		frozen += j - i;
	}
	munmap(a, bytes);
	return r;
}

static int free_src_slot(void)
{
	for (int i = 2; i < SRC_MAX; i++)
		if (!srcs[i].refs)
			return i;
	return -1;
}

/*
 * Before fork(), lock held: freezes the blocks of our file and opens the group the child will
 * hold. COPY: the child will copy its blocks (SPILL_FORK=copy), and the parent waits for that.
 * Returns whether the child must copy: COPY, or sharing was not possible.
 */
int spill_cow_prepare(int copy)
{
	size_t cursor = 0, shared = 0, own = 0;
	struct spill_block *b;
	static int warned;

	while ((b = spill_region_next(&cursor))) {
		own += b->src == SPILL_SRC_OWN;
		shared += b->src <= SPILL_SRC_FROZEN;
	}
	if (!shared)
		return copy;
	/* Freezing also makes copy mode's copy a snapshot of the instant of the fork. */
	why_not = NULL;
	if ((own && freeze(own)) || (!copy && free_src_slot() < 0)) {
		if (!why_not)
			why_not = free_src_slot() < 0 ? "too many generations" : spill_errname(errno);
		if (!copy && !warned++)
			spill_warn("fork: cannot share spilled blocks with the child (%s); it copies them", why_not);
		if (!copy)
			spill_stats_fallback(SPILL_R_FORK_COW);
		copy = 1;
	}
	if (copy || open_wfd < 0) {
		seal();
		int rfd = new_group();
		wait_rfd = copy ? rfd : -1;
	}
	return copy;
}

/* Copy mode: the parent's pipe end to wait on for the child's copy, or -1. */
int spill_cow_wait_fd(void)
{
	int fd = wait_rfd;
	wait_rfd = -1;
	if (fd >= 0)
		seal();		/* only the child may hold the write end now */
	return fd;
}

/*
 * In the child, first thing: the parent's children, quarantine and epochs are not ours. Our
 * epochs start again at 0, so every block we have was born before any fork of ours.
 */
void spill_cow_child(void)
{
	size_t cursor = 0;
	struct spill_block *b;

	while ((b = spill_region_next(&cursor)))
		b->born = 0;
	for (size_t i = 0; i < ngroups; i++)
		close_keep_errno(groups[i].rfd);
	ngroups = 0;
	wait_rfd = -1;
	for (size_t i = 0; i < nquar; i++)
		spill_core_free_range(quar[i].off, quar[i].cap);
	nquar = 0;
	inherited_hold = open_wfd;
	open_wfd = -1;
	spill_fork_epoch = untracked = 0;
	frozen = 0;
	pending = 0;
	retry_ns = 0;
}

/* A cow child: what was our parent's file becomes the source of the blocks we inherited. */
void spill_cow_inherit(void)
{
	int slot = free_src_slot();
	size_t cursor = 0;
	uint64_t bytes = 0;
	struct spill_block *b;

	spill_assert(slot >= 2);
	srcs[slot] = (struct src){ .fd = spill_file.fd, .hold = inherited_hold };
	inherited_hold = -1;
	while ((b = spill_region_next(&cursor)))
		if (b->src <= SPILL_SRC_FROZEN) {
			b->src = (uint32_t)slot;
			srcs[slot].refs++;
			bytes += b->len;
		}
	if (!srcs[slot].refs) {
		srcs[slot].refs = 1;
		unref((uint32_t)slot);
	}
	spill_stats_unclaim(bytes);	/* our parent's disk, not ours: SPILL_MAX counts our own */
	spill_core_need_file();
}

/* A child that copied or dropped its blocks needs none of its ancestors' files. */
void spill_cow_forget_files(void)
{
	size_t cursor = 0;
	struct spill_block *b;
	uint64_t bytes = 0;

	while ((b = spill_region_next(&cursor))) {
		if (b->src >= 2)
			bytes += b->len;	/* ours now: counted as spill_cow_inherit() did not */
		b->src = SPILL_SRC_OWN;
	}
	spill_stats_claim(bytes, SIZE_MAX);
	for (int i = 2; i < SRC_MAX; i++)
		if (srcs[i].refs) {
			srcs[i].refs = 1;
			unref((uint32_t)i);
		}
	close_keep_errno(inherited_hold);
	inherited_hold = -1;
}

/* --- freeing and resizing a block that is not an ordinary one --- */

/*
 * free() of B, which is not mapped MAP_SHARED on our file. Returns 1 when it is dealt with,
 * 0 when it is now an ordinary block of our file for the caller to release.
 */
int spill_cow_release(const struct spill_block *b)
{
	char *at = spill_file.base + b->off;

	if (b->src == SPILL_SRC_FROZEN) {
		spill_lock();
		frozen--;
		if (shared_with_live(b->born, spill_fork_epoch)) {
			if (nquar == quar_cap && grow((void **)&quar, &quar_cap, sizeof *quar)) {
				spill_unlock();
				return 1;	/* never reused: safe, if wasteful */
			}
			quar[nquar++] = (struct quarantined){ b->off, b->len, b->cap, b->born, spill_fork_epoch };
			pending = 1;
			spill_unlock();
			madvise(at, b->cap, MADV_DONTNEED);	/* our private copies go now */
			spill_event("quarantine addr=%p len=%llu", at, (unsigned long long)b->len);
			return 1;
		}
		spill_unlock();
		if (spill_map_file(b->off, b->cap, spill_file.fd, 0)) {
			spill_backing_punch(b->off, b->len);
			return 1;
		}
		return 0;
	}
	/* Inherited: the file is an ancestor's, and only our view of it goes. */
	spill_lock();
	unref(b->src);
	spill_unlock();
	if (spill_core_has_file() ? spill_map_file(b->off, b->cap, spill_file.fd, 0)
	    : mmap(at, b->cap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		   -1, 0) == MAP_FAILED)
		return 1;
	spill_core_free_range(b->off, b->cap);
	return 1;
}

/*
 * realloc() of the block at OFF, which its caller owns, so no other thread writes it: makes
 * it an ordinary block of our own file if that can be done now. 0 when it is.
 */
int spill_cow_thaw(uint64_t off)
{
	struct spill_block *b, cur;
	enum spill_reason why;
	int r = -1;

	spill_lock();
	b = spill_region_find(off);
	cur = *b;
	if (cur.src == SPILL_SRC_FROZEN)
		r = shared_with_live(cur.born, UINT32_MAX) ? -1 : thaw_own(b);
	spill_unlock();
	if (cur.src <= SPILL_SRC_FROZEN)
		return cur.src == SPILL_SRC_OWN ? 0 : r;
	/* Inherited: copy it into the same range of our own file, then map that. */
	if (!spill_core_ensure_file() || spill_policy_admit(cur.len, &why))
		return -1;
	r = spill_backing_reserve(off, cur.len);
	spill_policy_release(cur.len);
	if (r == 0 && (spill_copy_block(&cur, spill_file.fd, off) ||
		       spill_map_file(off, cur.cap, spill_file.fd, 0))) {
		spill_backing_punch(off, cur.len);
		r = -1;
	}
	if (r) {
		spill_stats_unclaim(cur.len);
		return -1;
	}
	spill_lock();
	spill_region_find(off)->src = SPILL_SRC_OWN;
	unref(cur.src);
	spill_unlock();
	spill_event("thaw addr=%p len=%llu", spill_file.base + off, (unsigned long long)cur.len);
	return 0;
}
