/* SPDX-License-Identifier: MIT */
/* interpose.c - the exported API: large allocations spill, the rest pass through; so do wait*(). */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "spill.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size)
{
	if (spill_unlikely(size >= spill_gate))
		return spill_malloc(size, 0);
	return real_malloc(size);
}

EXPORT void free(void *p)
{
	if (spill_unlikely(spill_is_ours(p) || spill_is_boot(p)))
		spill_free(p);
	else
		real_free(p);	/* free(NULL) included: the next allocator's to ignore */
}

EXPORT void *calloc(size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	if (spill_unlikely(n * size >= spill_gate)) {
		if (spill_active() < 0)
			return spill_boot_alloc(n * size, 0);	/* static storage: zero */
		if (spill_active() == 0 || n * size < spill_cfg.threshold)
			return real_calloc(n, size);
		return spill_alloc(n * size, 0, 1);	/* fresh file space reads as zero */
	}
	return real_calloc(n, size);
}

/* Internal calls never name an exported function: when libspill is not first in the lookup
 * order (dlopen, or preloaded after another allocator) that name binds to someone else. */
static void *do_realloc(void *p, size_t size)
{
	if (spill_unlikely(spill_is_ours(p) || spill_is_boot(p) || size >= spill_gate))
		return spill_realloc(p, size);
	return real_realloc(p, size);
}

EXPORT void *realloc(void *p, size_t size)
{
	return do_realloc(p, size);
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	return do_realloc(p, n * size);
}

static int is_pow2(size_t a)
{
	return a && !(a & (a - 1));
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (!is_pow2(align) || align % sizeof(void *))
		return EINVAL;
	if (spill_unlikely(size >= spill_gate)) {
		int saved = errno;
		void *p = spill_malloc(size, align);
		int err = p ? 0 : errno;
		errno = saved;	/* posix_memalign reports through its result, not errno */
		if (p)
			*out = p;
		return err;
	}
	int saved = errno, rc = real_posix_memalign(out, align, size);
	errno = saved;	/* glibc's memalign path sets errno on failure */
	return rc;
}

/* Alignments that are not powers of two are the next allocator's to judge (glibc rounds up). */
EXPORT void *memalign(size_t align, size_t size)
{
	if (spill_unlikely(size >= spill_gate) && (is_pow2(align) || !real_memalign))
		return spill_malloc(size, is_pow2(align) ? align : 0);
	return real_memalign(align, size);
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	if (spill_unlikely(size >= spill_gate) && (is_pow2(align) || !real_aligned_alloc))
		return spill_malloc(size, is_pow2(align) ? align : 0);
	return real_aligned_alloc(align, size);
}

EXPORT void *valloc(size_t size)
{
	if (spill_unlikely(size >= spill_gate) || !real_valloc)
		return spill_malloc(size, spill_page);
	return real_valloc(size);
}

EXPORT void *pvalloc(size_t size)
{
	size_t rounded = (size + spill_page - 1) & ~(spill_page - 1);

	if (rounded < size) {
		errno = ENOMEM;
		return NULL;
	}
	if (spill_unlikely(rounded >= spill_gate) || !real_pvalloc)
		return spill_malloc(rounded ? rounded : spill_page, spill_page);
	return real_pvalloc(size);
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (spill_unlikely(spill_is_ours(p) || spill_is_boot(p)))
		return spill_usable_size(p);
	if (!p)
		return 0;
	return real_malloc_usable_size ? real_malloc_usable_size(p) : 0;
}

/*
 * A child that shares spilled blocks copy-on-write keeps its parent's later writes to them in
 * RAM until it has gone. A parent that waits for it and then rewrites those blocks makes no
 * spill call in between, so the wait is where they are taken back (cow.c). It may be in a
 * signal handler: the tick never blocks there, and errno stays the wait's.
 */
static void reaped(void)
{
	int saved = errno;
	spill_cow_tick(1);
	errno = saved;
}

#define RESOLVED(fn) (spill_likely(fn) ? (fn) : (spill_init(), (fn)))

EXPORT pid_t wait(int *status)
{
	pid_t r = RESOLVED(real_wait)(status);
	if (r > 0)
		reaped();
	return r;
}

EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	pid_t r = RESOLVED(real_waitpid)(pid, status, options);
	if (r > 0)
		reaped();
	return r;
}

EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	pid_t r = RESOLVED(real_wait3)(status, options, ru);
	if (r > 0)
		reaped();
	return r;
}

EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	pid_t r = RESOLVED(real_wait4)(pid, status, options, ru);
	if (r > 0)
		reaped();
	return r;
}

EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	int r = RESOLVED(real_waitid)(type, id, info, options);
	if (r == 0 && info && info->si_pid > 0)
		reaped();
	return r;
}
