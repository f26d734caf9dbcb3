/* SPDX-License-Identifier: MIT */
/* pub.h - layout of the counter page a spilling process publishes; spill top reads it. */
#ifndef SPILL_PUB_H
#define SPILL_PUB_H

#include <stdint.h>

/*
 * The page is a sealed memfd named SPILL_PUB_NAME, so it shows as "/memfd:libspill (deleted)"
 * in /proc/PID/maps and /proc/PID/fd. The counters are the ones stats.c keeps anyway,
 * updated in place with relaxed atomics: publishing them costs the allocation path nothing.
 * A reader opens /proc/PID/fd/N read-only and checks magic, version and pid before use.
 * Fields are only ever added at the end; a layout change that is not an addition bumps
 * SPILL_PUB_VERSION.
 */
#define SPILL_PUB_NAME "libspill"
#define SPILL_PUB_MAGIC "libspill"
#define SPILL_PUB_VERSION 1
#define SPILL_PUB_REASONS 16
#define SPILL_PUB_DIR 4096

struct spill_pub {
	char magic[8];			/* SPILL_PUB_MAGIC, no NUL */
	uint32_t version;		/* SPILL_PUB_VERSION */
	uint32_t size;			/* sizeof(struct spill_pub) of the writer */
	int32_t pid;			/* the owner; a fork child gets a page of its own */
	int32_t fd;			/* the descriptor of its own spill file; -1 while it has none */
	uint64_t base, span;		/* the spill reservation; 0 until the first file exists */
	uint64_t threshold;
	uint32_t reason_count, pad;	/* entries of reasons[] in use */
	uint64_t allocs, frees;
	uint64_t bytes_live, bytes_peak;	/* bytes the program asked for */
	uint64_t mapped_live, mapped_peak;	/* page-rounded bytes reserved on disk */
	uint64_t fallbacks;
	uint64_t resident_peak;		/* largest sample of spilled bytes in RAM */
	uint64_t reasons[SPILL_PUB_REASONS];	/* fallbacks by enum spill_reason */
	char dir[SPILL_PUB_DIR];	/* canonical SPILL_DIR, NUL-terminated */
};

#endif
