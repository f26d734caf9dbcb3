/* SPDX-License-Identifier: MIT */
/* big_alloc.c - blocks below and above SPILL_THRESHOLD=1M: content, zeroing, usable size, /proc/self/maps. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maps.h"

/*
 * Exactly four spilled blocks (1M, 3M, calloc 4x1M, posix_memalign 2M at 2M), all live at
 * once: tests/scripts/test_integration_extra.sh checks SPILL_STATS against these numbers.
 */
#define M (1024 * 1024)

static int fails;

#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
	printf(__VA_ARGS__); printf("\n"); } } while (0)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 2654435761u + seed);
}

static size_t bad_byte(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 2654435761u + seed))
			return i;
	return SIZE_MAX;
}

static int inside(const void *p, size_t n, uintptr_t lo, uintptr_t hi)
{
	return (uintptr_t)p >= lo && (uintptr_t)p + n <= hi;
}

int main(void)
{
	struct { const char *what; size_t size; int spill; unsigned char *p; } b[] = {
		{ "malloc(100)", 100, 0, NULL },
		{ "malloc(1M-1)", M - 1, 0, NULL },
		{ "malloc(1M)", M, 1, NULL },
		{ "malloc(3M)", 3 * M, 1, NULL },
		{ "calloc(4, 1M)", 4 * M, 1, NULL },
		{ "posix_memalign(2M, 2M)", 2 * M, 1, NULL },
	};
	size_t n = sizeof b / sizeof b[0];
	uintptr_t lo = 0, hi = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK(spill_maps(NULL, NULL) == 0, "a spill mapping exists before the first spill");
	for (size_t i = 0; i < n; i++) {
		void *p = NULL;
		if (strncmp(b[i].what, "calloc", 6) == 0) {
			p = calloc(4, M);
		} else if (strncmp(b[i].what, "posix_memalign", 14) == 0) {
			int rc = posix_memalign(&p, 2 * M, b[i].size);
			CHECK(rc == 0, "%s returned %d", b[i].what, rc);
			CHECK((uintptr_t)p % (2 * M) == 0, "%s gave %p, not 2M aligned", b[i].what, p);
		} else {
			p = malloc(b[i].size);
		}
		CHECK(p != NULL, "%s returned NULL", b[i].what);
		if (!p)
			return 1;
		b[i].p = p;
		if (strncmp(b[i].what, "calloc", 6) == 0) {
			size_t nz = 0;
			for (size_t j = 0; j < b[i].size; j++)
				nz += b[i].p[j] != 0;
			CHECK(nz == 0, "%s: %zu bytes are not zero", b[i].what, nz);
		}
		CHECK(malloc_usable_size(p) >= b[i].size, "%s: usable size %zu < %zu", b[i].what,
		      malloc_usable_size(p), b[i].size);
		fill(b[i].p, b[i].size, (unsigned)i);
	}

	int maps = spill_maps(&lo, &hi);
	CHECK(maps == 1, "%d spill mappings (\"$SPILL_DIR/#... (deleted)\") in /proc/self/maps, want 1", maps);
	for (size_t i = 0; i < n; i++) {
		size_t at = bad_byte(b[i].p, b[i].size, (unsigned)i);
		int in = inside(b[i].p, b[i].size, lo, hi);
		CHECK(at == SIZE_MAX, "%s: content differs at byte %zu", b[i].what, at);
		CHECK(in == b[i].spill, "%s at %p is %sin the spill mapping %#lx-%#lx", b[i].what,
		      (void *)b[i].p, in ? "" : "not ", (unsigned long)lo, (unsigned long)hi);
		printf("%-24s %p %s usable=%zu\n", b[i].what, (void *)b[i].p, in ? "spilled" : "ram",
		       malloc_usable_size(b[i].p));
	}
	for (size_t i = 0; i < n; i++)
		free(b[i].p);
	printf("big_alloc: %s\n", fails ? "FAILED" : "ok");
	return fails ? 1 : 0;
}
