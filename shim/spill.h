/* SPDX-License-Identifier: MIT */
/* spill.h - internal types and prototypes shared by the shim's files. */
#ifndef SPILL_H
#define SPILL_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "pub.h"

#define SPILL_HIDDEN __attribute__((visibility("hidden")))
#define SPILL_TLS __thread __attribute__((tls_model("initial-exec")))
#define spill_likely(x) __builtin_expect(!!(x), 1)
#define spill_unlikely(x) __builtin_expect(!!(x), 0)

#define spill_assert(c) \
	((c) ? (void)0 : spill_die("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__))

/* config.c */
enum spill_on_fail { SPILL_FAIL_RAM, SPILL_FAIL_NULL, SPILL_FAIL_ABORT };
enum spill_fork { SPILL_FORK_COW, SPILL_FORK_COPY, SPILL_FORK_DROP };
enum spill_when { SPILL_WHEN_ALWAYS, SPILL_WHEN_PRESSURE };
enum spill_sink { SPILL_SINK_OFF, SPILL_SINK_STDERR, SPILL_SINK_FILE };
enum spill_advice { SPILL_ADVICE_NORMAL, SPILL_ADVICE_SEQUENTIAL, SPILL_ADVICE_RANDOM };

struct spill_config {
	size_t threshold;
	char dir[PATH_MAX];
	size_t max;			/* SIZE_MAX: no cap */
	size_t min_free;		/* bytes, or a percentage when min_free_pct */
	int min_free_pct;
	enum spill_on_fail on_fail;
	enum spill_fork fork_mode;
	enum spill_when when;
	unsigned headroom_pct;
	enum spill_advice advice;	/* madvise() of the whole spill mapping */
	enum spill_sink stats, log;
	char stats_path[PATH_MAX], log_path[PATH_MAX];
	char only[PATH_MAX];		/* colon-separated program names, "" = all */
	int disable;
};

typedef const char *(*spill_getenv_fn)(const char *name);
SPILL_HIDDEN int spill_parse_size(const char *s, size_t *out);
SPILL_HIDDEN int spill_parse_percent(const char *s, unsigned *out);
SPILL_HIDDEN void spill_config_load(struct spill_config *cfg, spill_getenv_fn get);
SPILL_HIDDEN int spill_config_only_matches(const char *only, const char *name);
SPILL_HIDDEN extern struct spill_config spill_cfg;

/* log.c */
SPILL_HIDDEN size_t spill_vformat(char *buf, size_t size, const char *fmt, va_list ap);
SPILL_HIDDEN size_t spill_format(char *buf, size_t size, const char *fmt, ...);
SPILL_HIDDEN void spill_log_open(const struct spill_config *cfg);
SPILL_HIDDEN int spill_log_enabled(void);
SPILL_HIDDEN void spill_event(const char *fmt, ...);
SPILL_HIDDEN void spill_warn(const char *fmt, ...);
SPILL_HIDDEN _Noreturn void spill_die(const char *fmt, ...);
SPILL_HIDDEN const char *spill_errname(int err);
SPILL_HIDDEN int spill_open_sink(const char *path, int flags);
SPILL_HIDDEN int spill_fd_move_high(int fd);

/* real.c */
SPILL_HIDDEN extern void *(*real_malloc)(size_t);
SPILL_HIDDEN extern void (*real_free)(void *);
SPILL_HIDDEN extern void *(*real_calloc)(size_t, size_t);
SPILL_HIDDEN extern void *(*real_realloc)(void *, size_t);
SPILL_HIDDEN extern void *(*real_memalign)(size_t, size_t);
SPILL_HIDDEN extern int (*real_posix_memalign)(void **, size_t, size_t);
SPILL_HIDDEN extern void *(*real_aligned_alloc)(size_t, size_t);
SPILL_HIDDEN extern void *(*real_valloc)(size_t);
SPILL_HIDDEN extern void *(*real_pvalloc)(size_t);
SPILL_HIDDEN extern size_t (*real_malloc_usable_size)(void *);
SPILL_HIDDEN extern pid_t (*real_wait)(int *);
SPILL_HIDDEN extern pid_t (*real_waitpid)(pid_t, int *, int);
SPILL_HIDDEN extern pid_t (*real_wait3)(int *, int, struct rusage *);
SPILL_HIDDEN extern pid_t (*real_wait4)(pid_t, int *, int, struct rusage *);
SPILL_HIDDEN extern int (*real_waitid)(idtype_t, id_t, siginfo_t *, int);
SPILL_HIDDEN void spill_real_resolve(void);
SPILL_HIDDEN void *spill_boot_alloc(size_t size, size_t align);
SPILL_HIDDEN size_t spill_boot_size(const void *p);
#define SPILL_BOOT_SIZE (64 * 1024)
SPILL_HIDDEN extern char spill_boot_arena[SPILL_BOOT_SIZE];

/* extent.c: free space of the reservation, in file-offset space (page units are the caller's) */
struct spill_extents {
	struct spill_ext_node *pool;
	uint32_t cap, used, free_head, root;
	uint64_t seed, free_bytes;
	uint64_t grain;		/* OR of every boundary ever made: all are multiples of its lowest bit */
	uint64_t base;		/* address of offset 0: alignment applies to base + off (0 in unit tests) */
};
SPILL_HIDDEN int spill_extents_init(struct spill_extents *e, uint64_t total);
SPILL_HIDDEN int spill_extents_alloc(struct spill_extents *e, uint64_t len, uint64_t align, uint64_t *off);
SPILL_HIDDEN int spill_extents_take(struct spill_extents *e, uint64_t off, uint64_t len);
SPILL_HIDDEN int spill_extents_free(struct spill_extents *e, uint64_t off, uint64_t len);
SPILL_HIDDEN int spill_extents_pop(struct spill_extents *e, uint64_t *off, uint64_t *len);
SPILL_HIDDEN int spill_extents_next(struct spill_extents *e, uint64_t from, uint64_t *off, uint64_t *len);
SPILL_HIDDEN uint32_t spill_extents_count(const struct spill_extents *e);

/* region.c: registry of live spilled blocks, keyed by file offset */
struct spill_block {
	uint64_t off;		/* file offset = address - base */
	uint64_t len;		/* bytes reserved on disk (page multiple) */
	uint64_t cap;		/* address space owned, >= len; growth within it needs no move */
	uint64_t size;		/* bytes the program asked for */
	uint32_t born;		/* spill_fork_epoch when made: children forked later share it */
	uint32_t src;		/* how it is mapped: SPILL_SRC_* below, or an inherited file (cow.c) */
};
#define SPILL_SRC_OWN 0		/* MAP_SHARED on our own file: the normal case */
#define SPILL_SRC_FROZEN 1	/* MAP_PRIVATE on our own file, whose range a child may share */
/* src >= 2: MAP_PRIVATE on an ancestor's file, inherited at fork (spill_cow_src_fd) */
SPILL_HIDDEN void spill_lock(void);
SPILL_HIDDEN void spill_unlock(void);
SPILL_HIDDEN int spill_trylock(void);
SPILL_HIDDEN int spill_region_insert(const struct spill_block *b);
SPILL_HIDDEN struct spill_block *spill_region_find(uint64_t off);
SPILL_HIDDEN int spill_region_remove(uint64_t off, struct spill_block *out);
SPILL_HIDDEN size_t spill_region_count(void);
SPILL_HIDDEN struct spill_block *spill_region_next(size_t *cursor);
SPILL_HIDDEN struct spill_block *spill_region_containing(uint64_t off);
SPILL_HIDDEN void spill_region_reset(void);

/* backing.c: the unlinked file and the address reservation mapped onto it */
struct spill_backing {
	int fd;
	char *base;
	size_t span;
	int named;		/* fell back to a named file unlinked at once */
	int can_zero;		/* FALLOC_FL_ZERO_RANGE works: freed space can be kept */
	dev_t dev;
};
SPILL_HIDDEN extern struct spill_backing spill_file;
SPILL_HIDDEN extern int spill_backing_force_named;	/* test hook */
SPILL_HIDDEN extern size_t spill_backing_span_want;	/* test hook; 0 = default */
SPILL_HIDDEN extern ssize_t (*spill_backing_copy_range)(int, loff_t *, int, loff_t *, size_t); /* test hook */
SPILL_HIDDEN int spill_backing_check_dir(const char *dir, char *canon, size_t canon_size);
SPILL_HIDDEN int spill_backing_open(const char *dir);
SPILL_HIDDEN int spill_backing_reserve(uint64_t off, uint64_t len);
SPILL_HIDDEN void spill_backing_punch(uint64_t off, uint64_t len);
SPILL_HIDDEN int spill_backing_zero(uint64_t off, uint64_t len);
SPILL_HIDDEN int spill_backing_copy_fd(int from_fd, int to_fd, uint64_t src, uint64_t dst, uint64_t len);
SPILL_HIDDEN int spill_backing_new_file(const char *dir);
SPILL_HIDDEN int spill_backing_switch(int fd);
SPILL_HIDDEN void spill_backing_drop(void);
SPILL_HIDDEN int spill_backing_avail(uint64_t *avail, uint64_t *total);

/* stats.c */
enum spill_reason {
	SPILL_R_MAX, SPILL_R_MIN_FREE, SPILL_R_NO_SPACE, SPILL_R_NO_DIR, SPILL_R_FILE,
	SPILL_R_FULL, SPILL_R_PRESSURE_OK, SPILL_R_FORK_DROP, SPILL_R_FORK_COW, SPILL_R_COUNT
};
SPILL_HIDDEN extern const char *const spill_reason_name[SPILL_R_COUNT];
SPILL_HIDDEN void spill_stats_alloc(size_t size, size_t len);
SPILL_HIDDEN void spill_stats_free(size_t size, size_t len);
SPILL_HIDDEN void spill_stats_resize(size_t old_size, size_t old_len, size_t size, size_t len);
SPILL_HIDDEN void spill_stats_fallback(enum spill_reason r);
SPILL_HIDDEN size_t spill_stats_mapped_live(void);
SPILL_HIDDEN int spill_stats_claim(size_t len, size_t max);
SPILL_HIDDEN void spill_stats_unclaim(size_t len);
SPILL_HIDDEN void spill_stats_resident(uint64_t bytes);
SPILL_HIDDEN void spill_stats_init(void);
SPILL_HIDDEN void spill_stats_write(void);
SPILL_HIDDEN void spill_stats_reset(void);
SPILL_HIDDEN size_t spill_stats_json(char *buf, size_t size);

/* pub.c: the page the counters live in, readable by spill top */
SPILL_HIDDEN extern struct spill_pub *spill_pub;
SPILL_HIDDEN struct spill_pub *spill_pub_get(void);
SPILL_HIDDEN int spill_pub_fd(void);
SPILL_HIDDEN void spill_pub_atfork_child(void);

/* usage.c: resident samples, faults and disk traffic; -1 where a figure is unknown */
struct spill_usage {
	long long major_faults, read_bytes, write_bytes, elapsed_ms;
};
SPILL_HIDDEN extern int spill_usage_no_cachestat;	/* test hook: 1 = mincore() only */
SPILL_HIDDEN void spill_usage_start(void);
SPILL_HIDDEN int spill_usage_resident(uint64_t *res, uint64_t *dirty);
SPILL_HIDDEN void spill_usage_sample(int force);
SPILL_HIDDEN void spill_usage_totals(struct spill_usage *u);

/* policy.c */
SPILL_HIDDEN int spill_policy_admit(size_t len, enum spill_reason *why);
SPILL_HIDDEN void spill_policy_release(size_t len);
SPILL_HIDDEN uint64_t spill_policy_min_free(uint64_t total);
SPILL_HIDDEN void spill_policy_note(size_t size, enum spill_reason why);
SPILL_HIDDEN void *spill_policy_fail(size_t size, size_t align, int zero, enum spill_reason why);

/* pressure.c */
SPILL_HIDDEN int spill_pressure_wants_ram(size_t size);
SPILL_HIDDEN void spill_pressure_done(void *p, size_t size);
SPILL_HIDDEN uint64_t spill_pressure_budget(void);

/* spill.c: the spill core */
SPILL_HIDDEN extern size_t spill_gate;		/* requests >= this take the slow path */
SPILL_HIDDEN extern uintptr_t spill_lo;		/* our reservation: [spill_lo, spill_lo + spill_span) */
SPILL_HIDDEN extern size_t spill_span;
SPILL_HIDDEN extern size_t spill_page;
SPILL_HIDDEN void spill_init(void);
SPILL_HIDDEN int spill_active(void);
SPILL_HIDDEN void *spill_alloc(size_t size, size_t align, int zero);
SPILL_HIDDEN void *spill_malloc(size_t size, size_t align);
SPILL_HIDDEN void spill_free(void *p);
SPILL_HIDDEN void *spill_realloc(void *p, size_t size);
SPILL_HIDDEN size_t spill_usable_size(const void *p);
SPILL_HIDDEN void spill_flush_kept(void);
SPILL_HIDDEN void *spill_try(size_t size, size_t align, uint64_t cap, enum spill_reason *why);
SPILL_HIDDEN _Noreturn void spill_bad_pointer(const char *fn, const void *p);
SPILL_HIDDEN int spill_core_take(uint64_t off, uint64_t len);
SPILL_HIDDEN int spill_core_ready(void);
SPILL_HIDDEN void spill_core_set_inherited_only(int blocks_in_ram);
SPILL_HIDDEN int spill_core_blocks_in_ram(void);
SPILL_HIDDEN void spill_core_forget_kept(void);
SPILL_HIDDEN void spill_core_free_range(uint64_t off, uint64_t len);
SPILL_HIDDEN void spill_core_release_own(uint64_t off, uint64_t len, uint64_t cap);
SPILL_HIDDEN void spill_core_need_file(void);
SPILL_HIDDEN int spill_core_has_file(void);
SPILL_HIDDEN int spill_core_ensure_file(void);

/* fork.c */
SPILL_HIDDEN void spill_atfork_prepare(void);
SPILL_HIDDEN void spill_atfork_parent(void);
SPILL_HIDDEN void spill_atfork_child(void);

/* cow.c: blocks shared copy-on-write with forked children */
SPILL_HIDDEN extern uint32_t spill_fork_epoch;
SPILL_HIDDEN int spill_cow_prepare(int own_group);
SPILL_HIDDEN int spill_cow_wait_fd(void);
SPILL_HIDDEN void spill_cow_parent(void);
SPILL_HIDDEN void spill_cow_child(void);
SPILL_HIDDEN void spill_cow_inherit(void);
SPILL_HIDDEN void spill_cow_forget_files(void);
SPILL_HIDDEN int spill_cow_src_fd(uint32_t src);
SPILL_HIDDEN void spill_cow_tick(int from_wait);
SPILL_HIDDEN int spill_cow_release(const struct spill_block *b);
SPILL_HIDDEN int spill_cow_thaw(uint64_t off);
SPILL_HIDDEN int spill_cow_shared(const struct spill_block *b);

/* private.c: the pages of a MAP_PRIVATE range that differ from its file */
SPILL_HIDDEN int spill_private_flush(const char *addr, uint64_t len, int fd, uint64_t off);
SPILL_HIDDEN int spill_copy_block(const struct spill_block *b, int dst_fd, uint64_t dst);
SPILL_HIDDEN int spill_map_file(uint64_t off, uint64_t len, int fd, int private);

static inline int spill_is_ours(const void *p)
{
	return (uintptr_t)p - spill_lo < spill_span;
}

static inline int spill_is_boot(const void *p)
{
	return (uintptr_t)p - (uintptr_t)spill_boot_arena < SPILL_BOOT_SIZE;
}

#endif
