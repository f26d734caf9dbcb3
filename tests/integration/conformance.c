/* SPDX-License-Identifier: MIT */
/* conformance.c - every entry point of libspill.so, called through libffi, against glibc's. */
#include <dlfcn.h>
#include <errno.h>
#include <ffi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The program is not preloaded: its own allocations are glibc's. libspill.so is dlopen'ed
 * (SPILL_THRESHOLD=1M, SPILL_DIR=cwd) and each entry point is called through ffi_call with
 * the signature from TABLE, once on libspill's symbol and once on glibc's, with the same
 * arguments. Blocks are freed by the implementation that made them.
 */

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)
#define THRESHOLD M
#define SENTINEL 12345		/* errno before every call */
#define OUT_UNSET ((void *)(uintptr_t)0x5a5a5a5a5a5a5a50ull)
#define BIG_ALIGN ((size_t)1 << 63)	/* a power of two that no request can honour */

enum fn { MALLOC, FREE, CALLOC, REALLOC, REALLOCARRAY, POSIX_MEMALIGN, ALIGNED_ALLOC,
	  MEMALIGN, VALLOC, PVALLOC, MALLOC_USABLE_SIZE, N_FN };
enum kind { K_VOID, K_PTR, K_INT, K_SIZE };

#define SZ (sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32)

/* Every entry point and its C signature, as ffi types. */
static struct entry {
	const char *name;
	enum kind ret;
	unsigned nargs;
	ffi_type *rtype, *atypes[3];
	ffi_cif cif;
} table[N_FN] = {
	[MALLOC]             = { "malloc",             K_PTR,  1, &ffi_type_pointer, { NULL } },
	[FREE]               = { "free",               K_VOID, 1, &ffi_type_void,    { &ffi_type_pointer } },
	[CALLOC]             = { "calloc",             K_PTR,  2, &ffi_type_pointer, { NULL } },
	[REALLOC]            = { "realloc",            K_PTR,  2, &ffi_type_pointer, { &ffi_type_pointer } },
	[REALLOCARRAY]       = { "reallocarray",       K_PTR,  3, &ffi_type_pointer, { &ffi_type_pointer } },
	[POSIX_MEMALIGN]     = { "posix_memalign",     K_INT,  3, &ffi_type_sint,    { &ffi_type_pointer } },
	[ALIGNED_ALLOC]      = { "aligned_alloc",      K_PTR,  2, &ffi_type_pointer, { NULL } },
	[MEMALIGN]           = { "memalign",           K_PTR,  2, &ffi_type_pointer, { NULL } },
	[VALLOC]             = { "valloc",             K_PTR,  1, &ffi_type_pointer, { NULL } },
	[PVALLOC]            = { "pvalloc",            K_PTR,  1, &ffi_type_pointer, { NULL } },
	[MALLOC_USABLE_SIZE] = { "malloc_usable_size", K_SIZE, 1, NULL,              { &ffi_type_pointer } },
};

/* Argument values: a plain number, or one of these stand-ins. */
#define A_BLOCK ((size_t)-101)	/* the case's prepared block (from that implementation's malloc) */
#define A_OUT   ((size_t)-102)	/* &out, for posix_memalign */
#define A_NULL  ((size_t)0)

struct kase {
	enum fn fn;
	size_t a[3];
	size_t block;		/* size of the prepared block, when an argument is A_BLOCK */
	int spill;		/* libspill's result: 1 must be spilled, 0 must not, -1 either */
};

#define PMAX ((size_t)PTRDIFF_MAX)
#define SMAX SIZE_MAX

static const struct kase cases[] = {
	/* malloc */
	{ MALLOC, { 0 }, 0, 0 }, { MALLOC, { 1 }, 0, 0 }, { MALLOC, { 100 }, 0, 0 },
	{ MALLOC, { M - 1 }, 0, 0 }, { MALLOC, { M }, 0, 1 }, { MALLOC, { 3 * M }, 0, 1 },
	{ MALLOC, { SMAX }, 0, 0 }, { MALLOC, { SMAX / 2 }, 0, 0 }, { MALLOC, { PMAX + 1 }, 0, 0 },
	/* free */
	{ FREE, { A_NULL }, 0, -1 }, { FREE, { A_BLOCK }, 100, -1 }, { FREE, { A_BLOCK }, 3 * M, -1 },
	/* calloc, overflowing products included */
	{ CALLOC, { 0, 0 }, 0, 0 }, { CALLOC, { 1, 0 }, 0, 0 }, { CALLOC, { 0, SMAX }, 0, 0 },
	{ CALLOC, { SMAX, 0 }, 0, 0 }, { CALLOC, { 1, 1 }, 0, 0 }, { CALLOC, { 10, 10 }, 0, 0 },
	{ CALLOC, { 1, M - 1 }, 0, 0 }, { CALLOC, { M - 1, 1 }, 0, 0 }, { CALLOC, { 1024, 1024 }, 0, 1 },
	{ CALLOC, { 3, M }, 0, 1 }, { CALLOC, { 3 * M, 1 }, 0, 1 },
	{ CALLOC, { SMAX, 2 }, 0, 0 }, { CALLOC, { 2, SMAX / 2 + 1 }, 0, 0 },
	{ CALLOC, { (size_t)1 << 32, (size_t)1 << 32 }, 0, 0 }, { CALLOC, { SMAX, SMAX }, 0, 0 },
	{ CALLOC, { 1, SMAX }, 0, 0 }, { CALLOC, { SMAX / 2, 1 }, 0, 0 }, { CALLOC, { PMAX + 1, 1 }, 0, 0 },
	/* realloc */
	{ REALLOC, { A_NULL, 0 }, 0, 0 }, { REALLOC, { A_NULL, 100 }, 0, 0 },
	{ REALLOC, { A_NULL, M - 1 }, 0, 0 }, { REALLOC, { A_NULL, M }, 0, 1 },
	{ REALLOC, { A_NULL, 3 * M }, 0, 1 }, { REALLOC, { A_NULL, SMAX }, 0, 0 },
	{ REALLOC, { A_BLOCK, 0 }, 100, -1 }, { REALLOC, { A_BLOCK, 0 }, 3 * M, -1 },
	{ REALLOC, { A_BLOCK, 1 }, 100, 0 }, { REALLOC, { A_BLOCK, 200 }, 100, 0 },
	{ REALLOC, { A_BLOCK, M - 1 }, 100, 0 }, { REALLOC, { A_BLOCK, M }, M - 1, 1 },
	{ REALLOC, { A_BLOCK, 3 * M }, 100, 1 },		/* small -> big */
	{ REALLOC, { A_BLOCK, 100 }, 3 * M, -1 },		/* big -> small: moving back is a choice */
	{ REALLOC, { A_BLOCK, M }, 3 * M, 1 }, { REALLOC, { A_BLOCK, 3 * M }, 3 * M, 1 },
	{ REALLOC, { A_BLOCK, 3 * M + 1 }, 3 * M, 1 }, { REALLOC, { A_BLOCK, 9 * M }, 3 * M, 1 },
	{ REALLOC, { A_BLOCK, 3 * M }, M, 1 },
	{ REALLOC, { A_BLOCK, SMAX }, 100, -1 }, { REALLOC, { A_BLOCK, SMAX }, 3 * M, -1 },
	{ REALLOC, { A_BLOCK, SMAX / 2 }, 100, -1 }, { REALLOC, { A_BLOCK, SMAX / 2 }, 3 * M, -1 },
	{ REALLOC, { A_BLOCK, PMAX + 1 }, 100, -1 }, { REALLOC, { A_BLOCK, PMAX + 1 }, 3 * M, -1 },
	/* reallocarray */
	{ REALLOCARRAY, { A_NULL, 0, 0 }, 0, 0 }, { REALLOCARRAY, { A_NULL, 10, 10 }, 0, 0 },
	{ REALLOCARRAY, { A_NULL, 3, M }, 0, 1 }, { REALLOCARRAY, { A_NULL, M, 1 }, 0, 1 },
	{ REALLOCARRAY, { A_NULL, SMAX, 2 }, 0, 0 }, { REALLOCARRAY, { A_NULL, (size_t)1 << 32, (size_t)1 << 32 }, 0, 0 },
	{ REALLOCARRAY, { A_BLOCK, 0, 5 }, 100, -1 }, { REALLOCARRAY, { A_BLOCK, 5, 0 }, 3 * M, -1 },
	{ REALLOCARRAY, { A_BLOCK, 3, M }, 100, 1 }, { REALLOCARRAY, { A_BLOCK, 2, 50 }, 3 * M, -1 },
	{ REALLOCARRAY, { A_BLOCK, 2, 3 * M }, 3 * M, 1 },
	{ REALLOCARRAY, { A_BLOCK, 2, SMAX / 2 + 1 }, 100, -1 }, { REALLOCARRAY, { A_BLOCK, 2, SMAX / 2 + 1 }, 3 * M, -1 },
	{ REALLOCARRAY, { A_BLOCK, SMAX, SMAX }, 3 * M, -1 },
	/* malloc_usable_size */
	{ MALLOC_USABLE_SIZE, { A_NULL }, 0, -1 }, { MALLOC_USABLE_SIZE, { A_BLOCK }, 1, -1 },
	{ MALLOC_USABLE_SIZE, { A_BLOCK }, 100, -1 }, { MALLOC_USABLE_SIZE, { A_BLOCK }, M - 1, -1 },
	{ MALLOC_USABLE_SIZE, { A_BLOCK }, M, -1 }, { MALLOC_USABLE_SIZE, { A_BLOCK }, 3 * M, -1 },
	{ MALLOC_USABLE_SIZE, { A_BLOCK }, 3 * M + 1, -1 },
	/* valloc, pvalloc */
	{ VALLOC, { 0 }, 0, 0 }, { VALLOC, { 1 }, 0, 0 }, { VALLOC, { 100 }, 0, 0 },
	{ VALLOC, { M - 1 }, 0, 0 }, { VALLOC, { M }, 0, 1 }, { VALLOC, { 3 * M }, 0, 1 },
	{ VALLOC, { SMAX }, 0, 0 }, { VALLOC, { SMAX / 2 }, 0, 0 }, { VALLOC, { PMAX + 1 }, 0, 0 },
	{ PVALLOC, { 0 }, 0, 0 }, { PVALLOC, { 1 }, 0, 0 }, { PVALLOC, { 100 }, 0, 0 },
	{ PVALLOC, { M - 4096 }, 0, 0 }, { PVALLOC, { M - 1 }, 0, 1 },	/* rounds up to 1M */
	{ PVALLOC, { M }, 0, 1 }, { PVALLOC, { 3 * M }, 0, 1 },
	{ PVALLOC, { SMAX }, 0, 0 }, { PVALLOC, { SMAX / 2 }, 0, 0 }, { PVALLOC, { PMAX + 1 }, 0, 0 },
};

/* posix_memalign, aligned_alloc and memalign get every alignment x every size. */
static const size_t aligns[] = { 8, 16, 4096, 2 * M, 4 * M, 1024 * M, 3, 0, sizeof(void *) / 2, BIG_ALIGN };
static const size_t sizes[] = { 0, 1, 100, M - 1, M, 3 * M, SMAX, SMAX / 2, PMAX + 1 };

struct impl {
	const char *name;
	void *fn[N_FN];
};

struct result {
	int null;		/* pointer result is NULL */
	void *p;
	int rc;			/* posix_memalign */
	size_t usable;		/* malloc_usable_size result, or of the returned block */
	int err;		/* errno after the call */
	int out_untouched;	/* posix_memalign left *out alone */
	int block_freed;	/* the prepared block no longer belongs to us */
	const char *bad;	/* first property that does not hold, else NULL */
};

static char spill_dir[4096];

static int is_pow2(size_t a)
{
	return a && !(a & (a - 1));
}

/* 1 when P lies in a mapping of "SPILL_DIR/#<inode> (deleted)". */
static int spilled(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[8192];
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		int off = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || !off)
			continue;
		if ((uintptr_t)p < lo || (uintptr_t)p >= hi)
			continue;
		char *path = line + off;
		size_t n = strlen(spill_dir);
		found = strncmp(path, spill_dir, n) == 0 && path[n] == '/' && path[n + 1] == '#' &&
			strstr(path, " (deleted)\n") != NULL;
		break;
	}
	fclose(f);
	return found;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 131 + 7);
}

static void fill(void *p, size_t n)
{
	unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		c[i] = pattern(i);
}

static int holds_pattern(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != pattern(i))
			return 0;
	return 1;
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

/* The size the caller may use, or SIZE_MAX when the request cannot be met (overflow). */
static size_t requested(const struct kase *k)
{
	size_t n = 0, page = (size_t)sysconf(_SC_PAGESIZE);

	switch (k->fn) {
	case MALLOC: case VALLOC: return k->a[0];
	case PVALLOC:
		if (k->a[0] > SIZE_MAX - page + 1)
			return SIZE_MAX;
		return (k->a[0] + page - 1) & ~(page - 1);	/* pvalloc(0): glibc 2.36 gives 24 bytes */
	case CALLOC: case REALLOCARRAY: {
		size_t x = k->fn == CALLOC ? k->a[0] : k->a[1], y = k->fn == CALLOC ? k->a[1] : k->a[2];
		return __builtin_mul_overflow(x, y, &n) ? SIZE_MAX : n;
	}
	case REALLOC: case ALIGNED_ALLOC: case MEMALIGN: return k->a[1];
	case POSIX_MEMALIGN: return k->a[2];
	default: return 0;
	}
}

/* The alignment a non-NULL result must have. */
static size_t want_align(const struct kase *k)
{
	size_t a = 16, page = (size_t)sysconf(_SC_PAGESIZE);

	switch (k->fn) {
	case VALLOC: case PVALLOC: return page;
	case POSIX_MEMALIGN: a = k->a[1]; break;
	case ALIGNED_ALLOC: case MEMALIGN: a = k->a[0]; break;
	default: return 16;
	}
	if (!is_pow2(a))	/* glibc rounds up to the next power of two */
		for (size_t b = 1; b; b <<= 1)
			if (b >= a) {
				a = b;
				break;
			}
	return a < 16 ? 16 : a;
}

static void describe(const struct kase *k, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s(", table[k->fn].name);
	for (unsigned i = 0; i < table[k->fn].nargs && n < (int)size; i++) {
		const char *sep = i ? ", " : "";
		size_t v = k->a[i];
		if (v == A_BLOCK)
			n += snprintf(buf + n, size - n, "%sp[%zu]", sep, k->block);
		else if (v == A_OUT)
			n += snprintf(buf + n, size - n, "%s&out", sep);
		else if (v == A_NULL && table[k->fn].atypes[i] == &ffi_type_pointer)
			n += snprintf(buf + n, size - n, "%sNULL", sep);
		else if (v == SMAX)
			n += snprintf(buf + n, size - n, "%sSIZE_MAX", sep);
		else if (v == SMAX / 2)
			n += snprintf(buf + n, size - n, "%sSIZE_MAX/2", sep);
		else if (v == PMAX + 1)
			n += snprintf(buf + n, size - n, "%sPTRDIFF_MAX+1", sep);
		else if (v >= M && v % M == 0)
			n += snprintf(buf + n, size - n, "%s%zuM", sep, v / M);
		else if (v == M - 1)
			n += snprintf(buf + n, size - n, "%s1M-1", sep);
		else
			n += snprintf(buf + n, size - n, "%s%zu", sep, v);
	}
	if (n < (int)size)
		snprintf(buf + n, size - n, ")");
}

static const char *errname(int e)
{
	static char buf[4][16];
	static int i;

	if (e == SENTINEL)
		return "-";
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s", e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : "?");
	if (e != ENOMEM && e != EINVAL)
		snprintf(buf[i], sizeof buf[i], "%d", e);
	return buf[i];
}

#define BAD(r, what) do { if (!(r)->bad) (r)->bad = (what); } while (0)

/* Calls K on IMPL through libffi and checks what holds for any conforming allocator. */
static void run(const struct impl *im, const struct kase *k, struct result *r)
{
	struct entry *e = &table[k->fn];
	void *(*im_malloc)(size_t) = (void *(*)(size_t))im->fn[MALLOC];
	void (*im_free)(void *) = (void (*)(void *))im->fn[FREE];
	size_t (*im_usable)(void *) = (size_t (*)(void *))im->fn[MALLOC_USABLE_SIZE];
	void *block = NULL, *out = OUT_UNSET, *argp[3];
	size_t argv[3], want = requested(k);
	void *avalues[3];
	union { ffi_arg a; ffi_sarg s; void *p; size_t z; } rv;

	memset(r, 0, sizeof *r);
	if (k->block) {
		block = im_malloc(k->block);
		if (!block) {
			BAD(r, "setup malloc failed");
			return;
		}
		fill(block, k->block);
	}
	for (unsigned i = 0; i < e->nargs; i++) {
		if (e->atypes[i] == &ffi_type_pointer) {
			argp[i] = k->a[i] == A_BLOCK ? block : k->a[i] == A_OUT ? (void *)&out : NULL;
			avalues[i] = &argp[i];
		} else {
			argv[i] = k->a[i];
			avalues[i] = &argv[i];
		}
	}
	memset(&rv, 0, sizeof rv);
	errno = SENTINEL;
	ffi_call(&e->cif, FFI_FN(im->fn[k->fn]), &rv, avalues);
	r->err = errno;

	switch (e->ret) {
	case K_VOID:
		r->block_freed = 1;
		break;
	case K_SIZE:
		r->usable = rv.z;
		if (block && r->usable < k->block)
			BAD(r, "usable size < requested");
		if (block && !holds_pattern(block, k->block))
			BAD(r, "content changed");
		break;
	case K_INT:
		r->rc = (int)rv.s;
		r->p = r->rc ? NULL : out;
		r->null = r->p == NULL;
		r->out_untouched = out == OUT_UNSET;
		if (r->rc == 0 && out == OUT_UNSET)
			BAD(r, "returned 0 without setting *out");
		break;
	case K_PTR:
		r->p = rv.p;
		r->null = r->p == NULL;
		break;
	}
	if (e->ret == K_PTR || e->ret == K_INT) {
		if (r->p) {
			if ((uintptr_t)r->p % want_align(k))
				BAD(r, "misaligned");
			r->usable = im_usable(r->p);
			if (r->usable < want)
				BAD(r, "usable size < requested");
			if (k->fn == CALLOC && !all_zero(r->p, want))
				BAD(r, "calloc block not zero");
			if (block && !holds_pattern(r->p, k->block < want ? k->block : want))
				BAD(r, "realloc lost content");
			memset(r->p, 0xa5, r->usable < want ? r->usable : want);	/* every page is usable */
		}
		/* realloc(p, 0) frees p; any other NULL from realloc leaves p alone */
		r->block_freed = block && (r->p || want == 0);
		if (block && !r->block_freed && !holds_pattern(block, k->block))
			BAD(r, "failed realloc changed the old block");
	}
	if (block && !r->block_freed)
		im_free(block);
}

int main(void)
{
	struct impl spill = { "libspill", { 0 } }, glibc = { "glibc", { 0 } };
	const char *lib = getenv("SPILL_LIB");
	void *h;
	struct kase *all;
	size_t n = 0, fails = 0, spilled_count = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* the lines so far survive a crash */
	if (!lib) {
		fprintf(stderr, "conformance: SPILL_LIB is not set\n");
		return 2;
	}
	char cwd[sizeof spill_dir];
	if (!getcwd(cwd, sizeof cwd) || !realpath(cwd, spill_dir)) {
		perror("conformance: getcwd");
		return 2;
	}
	setenv("SPILL_THRESHOLD", "1M", 1);
	setenv("SPILL_DIR", spill_dir, 1);
	unsetenv("SPILL_STATS");
	unsetenv("SPILL_LOG");
	if (!(h = dlopen(lib, RTLD_NOW | RTLD_LOCAL))) {
		fprintf(stderr, "conformance: %s\n", dlerror());
		return 2;
	}
	for (int i = 0; i < N_FN; i++) {
		struct entry *e = &table[i];
		for (unsigned j = 0; j < e->nargs; j++)
			if (!e->atypes[j])
				e->atypes[j] = SZ;
		if (!e->rtype)
			e->rtype = SZ;
		if (ffi_prep_cif(&e->cif, FFI_DEFAULT_ABI, e->nargs, e->rtype, e->atypes) != FFI_OK) {
			fprintf(stderr, "conformance: ffi_prep_cif(%s) failed\n", e->name);
			return 2;
		}
		spill.fn[i] = dlsym(h, e->name);
		glibc.fn[i] = dlsym(RTLD_NEXT, e->name);
		if (!glibc.fn[i])
			glibc.fn[i] = dlsym(RTLD_DEFAULT, e->name);
		if (!spill.fn[i] || !glibc.fn[i] || spill.fn[i] == glibc.fn[i]) {
			fprintf(stderr, "conformance: %s: libspill %p, glibc %p\n", e->name, spill.fn[i], glibc.fn[i]);
			return 2;
		}
	}

	size_t n_fixed = sizeof cases / sizeof cases[0];
	size_t n_al = sizeof aligns / sizeof aligns[0], n_sz = sizeof sizes / sizeof sizes[0];
	all = calloc(n_fixed + 3 * n_al * n_sz, sizeof *all);
	memcpy(all, cases, sizeof cases);
	n = n_fixed;
	for (size_t i = 0; i < n_al; i++)
		for (size_t j = 0; j < n_sz; j++) {
			size_t a = aligns[i], s = sizes[j];
			/* Spilled: a power-of-two alignment that can be met, at or above the threshold. */
			int sp = s >= THRESHOLD && s <= PMAX && is_pow2(a) && a != BIG_ALIGN;
			all[n++] = (struct kase){ POSIX_MEMALIGN, { A_OUT, a, s }, 0,
						  sp && a % sizeof(void *) == 0 };
			all[n++] = (struct kase){ ALIGNED_ALLOC, { a, s }, 0, sp ? 1 : s >= THRESHOLD ? -1 : 0 };
			all[n++] = (struct kase){ MEMALIGN, { a, s }, 0, sp ? 1 : s >= THRESHOLD ? -1 : 0 };
		}

	for (size_t i = 0; i < n; i++) {
		const struct kase *k = &all[i];
		struct result s, g;
		char what[160], why[200] = "";

		describe(k, what, sizeof what);
		run(&glibc, k, &g);
		run(&spill, k, &s);
		int is_spilled = s.p && spilled(s.p);
		if (is_spilled)
			spilled_count++;
		if (s.bad)
			snprintf(why, sizeof why, "libspill: %s", s.bad);
		else if (g.bad)
			snprintf(why, sizeof why, "glibc: %s", g.bad);
		else if (s.null != g.null)
			snprintf(why, sizeof why, "NULL-ness differs");
		else if (k->fn == POSIX_MEMALIGN && s.rc != g.rc)
			snprintf(why, sizeof why, "return %d, glibc %d", s.rc, g.rc);
		else if (k->fn == POSIX_MEMALIGN && s.err != SENTINEL)
			snprintf(why, sizeof why, "posix_memalign changed errno to %d", s.err);
		else if (k->fn == POSIX_MEMALIGN && s.out_untouched != g.out_untouched)
			snprintf(why, sizeof why, "*out %s, glibc's %s", s.out_untouched ? "untouched" : "set",
				 g.out_untouched ? "untouched" : "set");
		else if (k->fn != POSIX_MEMALIGN && s.err != g.err)
			snprintf(why, sizeof why, "errno %d, glibc %d", s.err, g.err);
		else if (s.block_freed != g.block_freed)
			snprintf(why, sizeof why, "old block %s, glibc's %s", s.block_freed ? "freed" : "kept",
				 g.block_freed ? "freed" : "kept");
		else if (k->fn == MALLOC_USABLE_SIZE && !k->block && s.usable != g.usable)
			snprintf(why, sizeof why, "usable %zu, glibc %zu", s.usable, g.usable);
		else if (k->spill >= 0 && !s.null && is_spilled != k->spill)
			snprintf(why, sizeof why, "result %s spilled", is_spilled ? "is" : "is not");

		/* Free each result with the free of the implementation that made it. */
		if (s.p && k->fn != MALLOC_USABLE_SIZE)
			((void (*)(void *))spill.fn[FREE])(s.p);
		if (g.p && k->fn != MALLOC_USABLE_SIZE)
			((void (*)(void *))glibc.fn[FREE])(g.p);

		if (*why)
			fails++;
		/* errno=- : untouched */
		printf("%s %-40s libspill %s%s rc=%d errno=%s usable=%zu | glibc %s rc=%d errno=%s%s%s\n",
		       *why ? "FAIL" : "ok  ", what, s.null ? "NULL" : "ptr", is_spilled ? "(spilled)" : "",
		       s.rc, errname(s.err), s.usable, g.null ? "NULL" : "ptr", g.rc, errname(g.err),
		       *why ? " -- " : "", why);
	}
	printf("conformance: %zu cases, %zu mismatches, %zu libspill results spilled\n", n, fails, spilled_count);
	free(all);
	return fails ? 1 : 0;
}
