/* SPDX-License-Identifier: MIT */
/* sensor.c - demo workload: collect big batches of synthetic samples in one malloc'd buffer each, analyse, free. */

/*
 * Usage: sensor [-b BATCH_MIB] [-n BATCHES] [-s SEED] [-c CHUNK_MIB]
 *
 * Each batch is BATCH_MIB MiB of int16 samples (a noisy sine, as from a 16-bit ADC). The
 * samples are written into a freshly malloc'd buffer, touching all of it, then a second pass
 * over the buffer computes count, mean, min, max and a 16-bin histogram, and the buffer is
 * freed. stdout gets one line per batch and a final checksum line over those lines, so two
 * runs can be compared textually. -c CHUNK_MIB streams each batch through one reused
 * CHUNK_MIB buffer instead: the same samples and the same results, in little memory.
 *
 * The program knows nothing about libspill. Its results depend only on the options: a
 * sample is a pure function of (seed, batch, index), and all arithmetic is integer (the
 * mean is one exact 64-bit sum divided once), so the allocator cannot change a digit.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PERIOD		4096	/* samples per sine period; a power of two */
#define AMPLITUDE	20000
#define NOISE		65521	/* noise table length; prime, so sine + noise rarely repeats */
#define BINS		16
#define BLOCK		8192	/* samples per analysis block (16 KiB, stays in L1) */

struct stats {
	uint64_t count;
	int64_t sum;
	int min, max;
	uint64_t hist[BINS];
};

typedef int16_t v8i16 __attribute__((vector_size(16)));

static int16_t sine[PERIOD];
static int16_t noise[NOISE];

static void sine_init(void)
{
	for (int i = 0; i < PERIOD; i++)
		sine[i] = (int16_t)lrint(AMPLITUDE * sin(2 * M_PI * i / PERIOD));
}

/* murmur3's 32-bit finalizer: a cheap, well-mixed hash. */
static inline uint32_t mix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* A per-batch key, so that batches (and seeds) differ. */
static uint32_t batch_key(uint64_t seed, unsigned long batch)
{
	return mix32((uint32_t)seed ^ mix32((uint32_t)(seed >> 32) + 0x9e3779b9u * (uint32_t)(batch + 1)));
}

/* Triangular noise in [-2048, 2046], from a table whose length is prime, so that together
 * with the sine it repeats only every PERIOD * NOISE samples. */
static void noise_init(uint64_t seed)
{
	for (uint32_t i = 0; i < NOISE; i++) {
		uint32_t h = mix32((i ^ (uint32_t)seed) * 0x9e3779b1u + (uint32_t)(seed >> 32));
		noise[i] = (int16_t)((int)(h & 0x7ff) + (int)((h >> 16) & 0x7ff) - 2048);
	}
}

/*
 * generate -- write samples [start, start + n) of one batch into out.
 * A sample is sine + noise + a batch offset (+-1000) + a drift that changes every
 * period (+-256); all of it fits in int16. Two table reads and adds per sample.
 */
static void generate(int16_t *restrict out, uint64_t start, size_t n, uint32_t key)
{
	int offset = (int)(key % 2001) - 1000;

	while (n > 0) {
		size_t phase = start & (PERIOD - 1);
		size_t q = (start + key) % NOISE;
		size_t len = PERIOD - phase;
		int16_t level = (int16_t)(offset + (int)(mix32((uint32_t)(start / PERIOD) ^ key) & 511) - 256);

		if (NOISE - q < len)
			len = NOISE - q;
		if (n < len)
			len = n;
		/* neither table wraps inside the segment; eight samples per step (GCC/clang
		 * vector extension: at -O2 the compiler will not vectorize this loop itself) */
		size_t j = 0;
		for (; j + 8 <= len; j += 8) {
			v8i16 a, b;

			memcpy(&a, sine + phase + j, sizeof a);
			memcpy(&b, noise + q + j, sizeof b);
			a += b + level;
			memcpy(out + j, &a, sizeof a);
		}
		for (; j < len; j++)
			out[j] = (int16_t)(sine[phase + j] + noise[q + j] + level);
		out += len;
		start += len;
		n -= len;
	}
}

/*
 * analyse -- fold samples into st; every field is order-independent, so chunking is exact.
 * The histogram counts pairs of samples in a 16x16 table (one increment per two samples),
 * folded into the 16 bins per block.
 */
static void analyse(const int16_t *s, size_t n, struct stats *st)
{
	for (size_t at = 0; at < n; at += BLOCK) {
		size_t len = n - at < BLOCK ? n - at : BLOCK;
		const int16_t *p = s + at;
		uint32_t pair[4][BINS * BINS];
		int32_t sum = 0;	/* BLOCK * 32768 fits */
		int16_t lo = INT16_MAX, hi = INT16_MIN;	/* int16, so min/max vectorize */
		size_t j;

		for (j = 0; j < len; j++) {
			sum += p[j];
			lo = p[j] < lo ? p[j] : lo;
			hi = p[j] > hi ? p[j] : hi;
		}
		memset(pair, 0, sizeof pair);
		/* neighbouring samples of a slow signal share a bin, so four tables keep
		 * consecutive increments from waiting on each other */
		for (j = 0; j + 8 <= len; j += 8) {
			uint64_t x[2];

			memcpy(x, p + j, sizeof x);
			x[0] ^= 0x8000800080008000ull;	/* int16 -> offset binary; the bin is the top nibble */
			x[1] ^= 0x8000800080008000ull;
			pair[0][(x[0] >> 12 & 0xf) | (x[0] >> 24 & 0xf0)]++;
			pair[1][(x[0] >> 44 & 0xf) | (x[0] >> 56 & 0xf0)]++;
			pair[2][(x[1] >> 12 & 0xf) | (x[1] >> 24 & 0xf0)]++;
			pair[3][(x[1] >> 44 & 0xf) | (x[1] >> 56 & 0xf0)]++;
		}
		for (; j < len; j++)
			st->hist[(uint16_t)(p[j] ^ 0x8000) >> 12]++;
		for (int a = 0; a < BINS; a++) {
			for (int b = 0; b < BINS; b++) {
				int k = a * BINS + b;
				uint32_t c = pair[0][k] + pair[1][k] + pair[2][k] + pair[3][k];
				st->hist[b] += c;	/* low nibble: the first sample of the pair */
				st->hist[a] += c;
			}
		}
		st->sum += sum;
		st->min = lo < st->min ? lo : st->min;
		st->max = hi > st->max ? hi : st->max;
	}
	st->count += n;
}

/* FNV-1a over the text of the result lines. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void usage(void)
{
	fprintf(stderr, "usage: sensor [-b BATCH_MIB] [-n BATCHES] [-s SEED] [-c CHUNK_MIB]\n");
	exit(2);
}

static unsigned long number(const char *arg, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v > max) {
		fprintf(stderr, "sensor: bad number \"%s\"\n", arg);
		usage();
	}
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long batch_mib = 1024, batches = 3, chunk_mib = 0;
	uint64_t seed = 1, sum = 0xcbf29ce484222325ull;
	int16_t *chunk = NULL;
	size_t n, chunk_n = 0;
	struct rusage ru;
	double t0 = now();
	int c;

	while ((c = getopt(argc, argv, "b:n:s:c:h")) != -1) {
		switch (c) {
		case 'b': batch_mib = number(optarg, 1ul << 20); break;
		case 'n': batches = number(optarg, 1000000); break;
		case 's': seed = number(optarg, ULONG_MAX); break;
		case 'c': chunk_mib = number(optarg, 1ul << 20); break;
		default: usage();
		}
	}
	if (optind != argc || batch_mib == 0)
		usage();
	n = batch_mib << 20 >> 1;
	if (chunk_mib && chunk_mib < batch_mib) {
		chunk_n = chunk_mib << 20 >> 1;
		chunk = malloc(chunk_n * sizeof *chunk);
		if (!chunk) {
			perror("sensor: malloc");
			return 1;
		}
	}
	sine_init();
	noise_init(seed);

	for (unsigned long b = 0; b < batches; b++) {
		struct stats st = { .min = INT_MAX, .max = INT_MIN };
		uint32_t key = batch_key(seed, b);
		char line[512];
		int len;

		if (chunk) {
			for (size_t at = 0; at < n; at += chunk_n) {
				size_t m = n - at < chunk_n ? n - at : chunk_n;
				generate(chunk, at, m, key);
				analyse(chunk, m, &st);
			}
		} else {
			int16_t *buf = malloc(n * sizeof *buf);
			if (!buf) {
				fprintf(stderr, "sensor: malloc(%zu): %s\n", n * sizeof *buf, strerror(errno));
				return 1;
			}
			generate(buf, 0, n, key);
			analyse(buf, n, &st);
			free(buf);
		}

		len = snprintf(line, sizeof line,
			"batch %lu: n=%" PRIu64 " mean=%.6f min=%d max=%d hist=",
			b, st.count, (double)st.sum / (double)st.count, st.min, st.max);
		for (int i = 0; i < BINS; i++)
			len += snprintf(line + len, sizeof line - len, "%s%" PRIu64,
				i ? "," : "", st.hist[i]);
		sum = fnv1a(sum, line);
		printf("%s\n", line);
		fflush(stdout);
	}
	printf("checksum: %016" PRIx64 " (%lu batches of %lu MiB, seed %" PRIu64 ")\n",
		sum, batches, batch_mib, seed);

	free(chunk);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "sensor: %lu x %lu MiB in %.2f s, max RSS %ld MiB\n",
		batches, batch_mib, now() - t0, ru.ru_maxrss / 1024);
	return 0;
}
