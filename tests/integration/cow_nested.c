/* SPDX-License-Identifier: MIT */
/*
 * cow_nested.c - under SPILL_FORK=cow, a child that resizes an inherited block (which makes
 * it a block of the child's own file) and then forks must not let its own child see what it
 * writes after that fork.
 *
 * The bug it was written for: blocks kept the `born` epoch of the parent that made them while
 * the child's epochs started again at 0, so the child's first fork (group epoch 1) counted a
 * block born at epoch >= 1 as not shared, took it back at the next spill call and wrote the
 * child's private pages into the file under the grandchild. Found by the model test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1 << 20)

int main(void)
{
	char *volatile first = malloc(2 * MIB);	/* live at the first fork: the parent's epoch becomes 1 */
	int go[2], st;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	first[0] = 1;
	if ((pid = fork()) == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	char *a = malloc(2 * MIB);		/* born at epoch 1 */
	memset(a, 'A', 2 * MIB);
	fflush(stdout);
	if ((pid = fork()) == 0) {		/* the child shares a copy-on-write */
		a = realloc(a, 2 * MIB - 100);	/* and makes it a block of its own file */
		if (!a || pipe(go))
			_exit(2);
		pid_t g = fork();
		if (g == 0) {
			char c;
			if (read(go[0], &c, 1) != 1)
				_exit(2);
			int bad = 0;
			for (size_t i = 0; i < 2 * MIB - 100; i += 4096)
				bad += a[i] != 'A';
			printf("grandchild: %s (%d pages show what its parent wrote after fork())\n", bad ? "WRONG" : "ok",
			       bad);
			_exit(bad != 0);
		}
		memset(a, 'X', 2 * MIB - 100);	/* the child writes after fork() returned */
		char *volatile b = malloc(2 * MIB);	/* a spill call: the child takes its blocks back */
		free(b);
		if (write(go[1], "g", 1) != 1 || waitpid(g, &st, 0) != g)
			_exit(2);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
	}
	if (waitpid(pid, &st, 0) != pid)
		return 2;
	int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && a[0] == 'A';
	printf("%s\n", ok ? "ok" : "FAIL: a cow child's own child saw what it wrote after a fork that followed "
	       "a realloc of an inherited block");
	free(a);
	free(first);
	return !ok;
}
