/* SPDX-License-Identifier: MIT */
/* forkcopy.c - bench case 6: fork a process that holds a large written buffer. */

/*
 * Usage: forkcopy [-s MIB] [-n BLOCKS]
 *
 * BLOCKS mallocs (default 1) that hold MIB MiB in all, fully written; then fork(). The
 * child reads one word per page of the buffers, checks it, and exits. stdout: "result
 * fork_s=F child_start_s=C total_s=T refault_s=R" where fork_s is how long fork() took in
 * the parent, child_start_s how long from the fork() call until the child ran its first
 * instruction, total_s until the child's exit was reaped (including its scan), and
 * refault_s how long the parent then took to read one word per page again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long mib = 1024, blocks = 1;
	int fds[2], status, c;
	char *e;

	while ((c = getopt(argc, argv, "s:n:")) != -1) {
		unsigned long *v = c == 's' ? &mib : c == 'n' ? &blocks : NULL;
		if (!v || (*v = strtoul(optarg, &e, 10)) == 0 || *e) {
			fprintf(stderr, "usage: forkcopy [-s MIB] [-n BLOCKS]\n");
			return 2;
		}
	}
	size_t words = (mib << 20) / 8 / blocks;
	uint64_t **p = calloc(blocks, sizeof *p);

	if (!p || pipe(fds)) {
		perror("forkcopy");
		return 1;
	}
	for (size_t b = 0; b < blocks; b++) {
		if (!(p[b] = malloc(words * 8))) {
			perror("forkcopy: malloc");
			return 1;
		}
		for (size_t i = 0; i < words; i++)
			p[b][i] = i + b;
	}
	fflush(stdout);
	double t0 = now(), t1, tc = 0, t2, t3;
	pid_t pid = fork();

	if (pid < 0) {
		perror("forkcopy: fork");
		return 1;
	}
	if (pid == 0) {
		double start = now();
		int bad = 0;

		if (write(fds[1], &start, sizeof start) != sizeof start)
			_exit(3);
		for (size_t b = 0; b < blocks; b++)
			for (size_t i = 0; i < words; i += 512)
				bad |= p[b][i] != i + b;
		_exit(bad ? 1 : 0);
	}
	t1 = now();
	if (read(fds[0], &tc, sizeof tc) != sizeof tc || waitpid(pid, &status, 0) != pid) {
		perror("forkcopy: child");
		return 1;
	}
	t2 = now();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "forkcopy: child failed (status %#x)\n", status);
		return 1;
	}
	uint64_t sum = 0;
	for (size_t b = 0; b < blocks; b++)
		for (size_t i = 0; i < words; i += 512)
			sum += p[b][i];
	t3 = now();
	for (size_t b = 0; b < blocks; b++)
		free(p[b]);
	free(p);
	printf("result fork_s=%.6f child_start_s=%.6f total_s=%.6f refault_s=%.6f\n", t1 - t0, tc - t0,
	       t2 - t0, t3 - t2);
	return sum == 0;	/* keeps the read loop */
}
