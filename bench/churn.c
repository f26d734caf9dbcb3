/* SPDX-License-Identifier: MIT */
/* churn.c - bench case 1: small-allocation churn, malloc/free of 16 B - 4 KiB across threads. */

/*
 * Usage: churn [-t THREADS] [-n OPS_PER_THREAD] [-k LIVE]
 *
 * Each thread keeps LIVE blocks alive in a ring; every operation frees the oldest block and
 * mallocs a new one of a pseudo-random size in [16, 4096], writing its first and last byte.
 * Nothing here ever reaches a spill threshold: the figure is what interposition costs.
 * stdout: "result seconds=S cpu_s=U ops=N ns_per_op=X checksum=C"; cpu_s is user + system
 * time of the whole process, which a busy machine disturbs less than the wall time.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct job {
	unsigned long ops, live;
	uint64_t seed, sum;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *run(void *arg)
{
	struct job *j = arg;
	unsigned char **ring = calloc(j->live, sizeof *ring);
	uint64_t s = j->seed, sum = 0;

	if (!ring)
		return NULL;
	for (unsigned long i = 0; i < j->ops; i++) {
		unsigned long slot = i % j->live;
		size_t n = 16 + xorshift(&s) % (4096 - 16 + 1);

		if (ring[slot])
			sum += ring[slot][0];
		free(ring[slot]);
		ring[slot] = malloc(n);
		if (!ring[slot]) {
			perror("churn: malloc");
			exit(1);
		}
		ring[slot][0] = (unsigned char)n;
		ring[slot][n - 1] = (unsigned char)i;
	}
	for (unsigned long k = 0; k < j->live; k++)
		free(ring[k]);
	free(ring);
	j->sum = sum;
	return NULL;
}

static unsigned long arg_num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v == 0) {
		fprintf(stderr, "churn: bad number \"%s\"\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long threads = 2, ops = 2000000, live = 1024;
	uint64_t sum = 0;
	double t0, t;
	int c;

	while ((c = getopt(argc, argv, "t:n:k:")) != -1) {
		switch (c) {
		case 't': threads = arg_num(optarg); break;
		case 'n': ops = arg_num(optarg); break;
		case 'k': live = arg_num(optarg); break;
		default:
			fprintf(stderr, "usage: churn [-t THREADS] [-n OPS_PER_THREAD] [-k LIVE]\n");
			return 2;
		}
	}
	pthread_t tid[threads];
	struct job jobs[threads];

	t0 = now();
	for (unsigned long i = 0; i < threads; i++) {
		jobs[i] = (struct job){ .ops = ops, .live = live, .seed = 0x9e3779b97f4a7c15ull * (i + 1) };
		if (pthread_create(&tid[i], NULL, run, &jobs[i])) {
			fprintf(stderr, "churn: pthread_create failed\n");
			return 1;
		}
	}
	for (unsigned long i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		sum += jobs[i].sum;
	}
	t = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("result seconds=%.6f cpu_s=%.6f ops=%lu ns_per_op=%.2f checksum=%llu\n",
		t, cpu, ops * threads, t * 1e9 / (double)(ops * threads), (unsigned long long)sum);
	return 0;
}
