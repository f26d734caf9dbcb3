/* SPDX-License-Identifier: MIT */
/* real.c - finding the next allocator, and a bootstrap arena for the calls made meanwhile. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "spill.h"

void *(*real_malloc)(size_t);
static void free_before_init(void *p);
void (*real_free)(void *) = free_before_init;	/* so that free() needs no NULL test */
void *(*real_calloc)(size_t, size_t);
void *(*real_realloc)(void *, size_t);
void *(*real_memalign)(size_t, size_t);
int (*real_posix_memalign)(void **, size_t, size_t);
void *(*real_aligned_alloc)(size_t, size_t);
void *(*real_valloc)(size_t);
void *(*real_pvalloc)(size_t);
size_t (*real_malloc_usable_size)(void *);
pid_t (*real_wait)(int *);
pid_t (*real_waitpid)(pid_t, int *, int);
pid_t (*real_wait3)(int *, int, struct rusage *);
pid_t (*real_wait4)(pid_t, int *, int, struct rusage *);
int (*real_waitid)(idtype_t, id_t, siginfo_t *, int);

/* glibc's own entry points: used when RTLD_NEXT finds nothing (a static-ish setup). */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/*
 * dlsym() and dlerror() may call malloc and calloc before we know where the real ones
 * are; those calls are served from here. The arena is never reused: it only has to
 * last the few allocations of the bootstrap. Each block is preceded by its size.
 */
#define BOOT_SIZE SPILL_BOOT_SIZE
char spill_boot_arena[BOOT_SIZE] __attribute__((aligned(64)));
static size_t boot_used;

void *spill_boot_alloc(size_t size, size_t align)
{
	size_t at, old, hdr = 16;

	if (align < 16)
		align = 16;
	if (align > 4096 || size > BOOT_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	do {
		old = __atomic_load_n(&boot_used, __ATOMIC_RELAXED);
		at = (old + hdr + align - 1) & ~(align - 1);
		if (at + size > BOOT_SIZE) {
			errno = ENOMEM;
			return NULL;
		}
	} while (!__atomic_compare_exchange_n(&boot_used, &old, at + size, 0,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	memcpy(spill_boot_arena + at - sizeof(size_t), &size, sizeof size);
	return spill_boot_arena + at;	/* static storage: already zero */
}

size_t spill_boot_size(const void *p)
{
	size_t size;
	memcpy(&size, (const char *)p - sizeof size, sizeof size);
	return size;
}

/* free() before anything was allocated: only free(NULL) can be meant, or a pointer from
 * an allocator we cannot know yet. */
static void free_before_init(void *p)
{
	if (!p)
		return;
	spill_init();
	if (real_free != free_before_init)
		real_free(p);
}

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void *fallback_aligned_alloc(size_t align, size_t size)
{
	return real_memalign(align, size);
}

static int fallback_posix_memalign(void **out, size_t align, size_t size)
{
	void *p = real_memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void spill_real_resolve(void)
{
	/* Assigned one by one, so that a malloc arriving mid-way finds what is already there. */
	if (!(real_malloc = next("malloc")))
		real_malloc = __libc_malloc;
	if (!(real_free = next("free")))
		real_free = __libc_free;
	if (!(real_calloc = next("calloc")))
		real_calloc = __libc_calloc;
	if (!(real_realloc = next("realloc")))
		real_realloc = __libc_realloc;
	if (!(real_memalign = next("memalign")))
		real_memalign = __libc_memalign;
	if (!(real_posix_memalign = next("posix_memalign")))
		real_posix_memalign = fallback_posix_memalign;
	if (!(real_aligned_alloc = next("aligned_alloc")))
		real_aligned_alloc = fallback_aligned_alloc;
	real_valloc = next("valloc");
	real_pvalloc = next("pvalloc");
	real_malloc_usable_size = next("malloc_usable_size");
	real_wait = next("wait");
	real_waitpid = next("waitpid");
	real_wait3 = next("wait3");
	real_wait4 = next("wait4");
	real_waitid = next("waitid");
}
