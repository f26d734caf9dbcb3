/* SPDX-License-Identifier: MIT */
/* forkcopy.c - bench case 6: fork a process that holds a large written buffer. */

/*
 * Usage: forkcopy [-s MIB]
 *
 * One malloc of MIB MiB, fully written; then fork(). The child reads one word per page of
 * the buffer, checks it, and exits. stdout: "result fork_s=F child_start_s=C total_s=T"
 * where fork_s is how long fork() took in the parent, child_start_s how long from the
 * fork() call until the child ran its first instruction, and total_s until the child's exit
 * was reaped (including its scan).
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
	unsigned long mib = 1024;
	int fds[2], status, c;
	char *e;

	while ((c = getopt(argc, argv, "s:")) != -1) {
		if (c != 's' || (mib = strtoul(optarg, &e, 10)) == 0 || *e) {
			fprintf(stderr, "usage: forkcopy [-s MIB]\n");
			return 2;
		}
	}
	size_t words = (mib << 20) / 8;
	uint64_t *p = malloc(words * 8);

	if (!p || pipe(fds)) {
		perror("forkcopy");
		return 1;
	}
	for (size_t i = 0; i < words; i++)
		p[i] = i;
	fflush(stdout);
	double t0 = now(), t1, tc = 0, t2;
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
		for (size_t i = 0; i < words; i += 512)
			bad |= p[i] != i;
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
	free(p);
	printf("result fork_s=%.6f child_start_s=%.6f total_s=%.6f\n", t1 - t0, tc - t0, t2 - t0);
	return 0;
}
