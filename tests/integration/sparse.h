/* SPDX-License-Identifier: MIT */
/* sparse.h - blocks with holes: the patterns the copy tests write and the bytes they expect. */
#ifndef SPILL_TEST_SPARSE_H
#define SPILL_TEST_SPARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SPARSE_MAX_RUNS 48

/* [off, off+len) written, everything else of the block never touched (a hole in the file). */
struct sparse_run {
	size_t off, len;
};

struct sparse_pattern {
	const char *name;
	size_t size;
	unsigned nruns;			/* sorted, not overlapping */
	int wide_holes;			/* an inner hole of >= 2 MiB: no folio can cover it */
	struct sparse_run run[SPARSE_MAX_RUNS];
};

/* Eight bytes of the content named SEED at once: one hash per 8-byte group of positions. */
static inline uint64_t sparse_word(uint64_t seed, uint64_t group)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15u + group * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 29)) * 0x94d049bb133111ebu;
	return z ^ (z >> 32);
}

/* Byte I of the content named SEED: never 0, so a run that went missing reads as a hole. */
static inline unsigned char sparse_byte(uint64_t seed, uint64_t i)
{
	unsigned char b = (unsigned char)(sparse_word(seed, i / 8) >> (i % 8 * 8));
	return b ? b : 0x5a;
}

/* DST[k] = byte FROM+k of SEED: the content depends on the position, so a shifted run shows. */
static inline void sparse_gen(unsigned char *dst, uint64_t seed, size_t from, size_t len)
{
	size_t k = 0;

	for (; k < len && (from + k) % 8; k++)
		dst[k] = sparse_byte(seed, from + k);
	for (; k + 8 <= len; k += 8) {
		uint64_t w = sparse_word(seed, (from + k) / 8);
		for (unsigned j = 0; j < 8; j++, w >>= 8)
			dst[k + j] = (unsigned char)w ? (unsigned char)w : 0x5a;
	}
	for (; k < len; k++)
		dst[k] = sparse_byte(seed, from + k);
}

/* Writes the pattern's runs into BLOCK and reads nothing: a read would fill the holes. */
static inline void sparse_write(unsigned char *block, const struct sparse_pattern *pt, uint64_t seed)
{
	for (unsigned r = 0; r < pt->nruns; r++)
		sparse_gen(block + pt->run[r].off, seed, pt->run[r].off, pt->run[r].len);
}

/*
 * Checks [0, len) of BLOCK against the pattern (zero outside its runs and past its size).
 * Returns the first wrong offset, or (size_t)-1; a line saying what is wrong goes to WHY.
 */
static inline size_t sparse_check(const unsigned char *block, size_t len, const struct sparse_pattern *pt,
				  uint64_t seed, char *why, size_t whysize)
{
	static const unsigned char zero[4096];
	unsigned char want[4096];
	size_t at = 0;

	for (unsigned r = 0; r <= pt->nruns && at < len; r++) {
		size_t hole_end = r < pt->nruns ? pt->run[r].off : len;
		if (hole_end > len)
			hole_end = len;
		for (size_t n; at < hole_end; at += n) {	/* a chunk at a time, then the byte */
			n = hole_end - at < sizeof zero ? hole_end - at : sizeof zero;
			if (memcmp(block + at, zero, n))
				for (size_t i = at; i < at + n; i++)
					if (block[i]) {
						snprintf(why, whysize, "%s: byte %zu is 0x%02x, want 0 (a hole)", pt->name, i,
							 block[i]);
						return i;
					}
		}
		if (r == pt->nruns)
			break;
		size_t end = pt->run[r].off + pt->run[r].len < len ? pt->run[r].off + pt->run[r].len : len;
		for (size_t n; at < end; at += n) {
			n = end - at < sizeof want ? end - at : sizeof want;
			sparse_gen(want, seed, at, n);
			if (memcmp(block + at, want, n))
				for (size_t i = at; i < at + n; i++)
					if (block[i] != want[i - at]) {
						snprintf(why, whysize, "%s: byte %zu is 0x%02x, want 0x%02x (run %u of %u, "
							 "[%zu, %zu))", pt->name, i, block[i], want[i - at], r + 1, pt->nruns,
							 pt->run[r].off, pt->run[r].off + pt->run[r].len);
						return i;
					}
		}
	}
	return (size_t)-1;
}

static inline int sparse_add(struct sparse_pattern *pt, size_t off, size_t len)
{
	if (pt->nruns == SPARSE_MAX_RUNS || off + len > pt->size || !len)
		return -1;
	if (pt->nruns && off < pt->run[pt->nruns - 1].off + pt->run[pt->nruns - 1].len)
		return -1;
	pt->run[pt->nruns++] = (struct sparse_run){ off, len };
	return 0;
}

/*
 * The patterns, for page size PG: holes at the start, in the middle, at the end and on
 * both sides; runs of exactly one page, of one byte and across page boundaries; many runs;
 * sizes that are not page multiples; holes wider than any read-around or large folio.
 * Returns how many were written to OUT (at most 16).
 */
static inline unsigned sparse_patterns(struct sparse_pattern *out, size_t pg)
{
	const size_t M = (size_t)1 << 20;
	static const size_t lens[] = { 1, 1, 3, 1, 2, 17 };	/* times pg, but 1 byte for i % 6 == 0 */
	unsigned n = 0;
	struct sparse_pattern *p;

#define NEW(nm, sz, wide) (p = &out[n++], *p = (struct sparse_pattern){ .name = nm, .size = sz, .wide_holes = wide })
	NEW("issue9: data, 3M hole, data", 8 * M, 1);
	sparse_add(p, 0, M);
	sparse_add(p, 4 * M, M);
	NEW("hole at the start, odd size", 3 * M + 123, 0);
	sparse_add(p, 2 * M, M + 123);
	NEW("hole at the end", 2 * M, 0);
	sparse_add(p, 0, 5 * pg + 17);
	NEW("holes at both ends, a page across a boundary", 5 * M - 1, 0);
	sparse_add(p, 2 * M + 1, pg);
	NEW("runs of exactly one page", 4 * M, 1);
	sparse_add(p, 7 * pg, pg);
	sparse_add(p, 300 * pg, pg);
	sparse_add(p, 4 * M - pg, pg);
	NEW("page edges, size a page multiple + 1", M + pg + 1, 0);
	sparse_add(p, pg - 1, 2);
	sparse_add(p, 2 * pg, pg);
	sparse_add(p, 5 * pg - 1, 1);
	sparse_add(p, 8 * pg, 1);
	sparse_add(p, M + pg, 1);
	NEW("40 runs of 1 byte to 17 pages", 8 * M + 5, 0);
	for (size_t i = 0; i < 40; i++)
		sparse_add(p, i * 200 * 1024 + (i % 7) * pg + i % 3, i % 6 ? lens[i % 6] * pg + i % 2 : 1);
	NEW("holes wider than read-around", 40 * M, 1);
	sparse_add(p, 0, pg);
	sparse_add(p, 20 * M, pg);
	sparse_add(p, 40 * M - 1, 1);
	NEW("no data at all, odd size", 2 * M + 7, 0);
	NEW("all data, odd size", M + 1, 0);
	sparse_add(p, 0, M + 1);
	NEW("only the last byte", 2 * M + pg + 1, 0);
	sparse_add(p, 2 * M + pg, 1);
#undef NEW
	return n;
}

/* Bytes of all patterns together, for sizing a test. */
static inline size_t sparse_total(const struct sparse_pattern *pt, unsigned n)
{
	size_t t = 0;
	for (unsigned i = 0; i < n; i++)
		t += pt[i].size;
	return t;
}

/*
 * What SEEK_DATA says of [off, off+len) in FD: the number of data runs, and whether the
 * range starts or ends in a hole. This is what the hole-skipping copy will see.
 */
struct sparse_seen {
	unsigned runs;
	int lead_hole, tail_hole;
};

static inline struct sparse_seen sparse_seek(int fd, uint64_t off, uint64_t len)
{
	struct sparse_seen s = { 0, 0, 0 };
	uint64_t at = off, end = off + len;

	while (at < end) {
		off_t d = lseek(fd, (off_t)at, SEEK_DATA), h;
		if (d < 0 || (uint64_t)d >= end) {
			s.tail_hole = 1;
			break;
		}
		if (at == off && (uint64_t)d > off)
			s.lead_hole = 1;
		h = lseek(fd, d, SEEK_HOLE);
		s.runs++;
		if (h < 0 || (uint64_t)h >= end)
			break;
		at = (uint64_t)h;
	}
	if (!s.runs)
		s.lead_hole = 1;
	return s;
}

#endif
