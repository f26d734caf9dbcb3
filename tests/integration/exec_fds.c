/* SPDX-License-Identifier: MIT */
/*
 * exec_fds.c - no spill file descriptor survives execve: with spilled blocks live, a fork()ed
 * child (which holds a spill file of its own, SPILL_FORK=copy) that execs, a posix_spawn()ed
 * program, and finally this process itself exec a checker that lists /proc/self/fd and fails on
 * any unlinked file or any file in SPILL_DIR. (Exit and SIGKILL: tests/scripts/test_kill9.sh.)
 */
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The checker: 0 when no descriptor points at a spill file. */
static int check_fds(const char *who)
{
	const char *dir = getenv("SPILL_DIR");
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int bad = 0, n = 0;

	while (d && (e = readdir(d))) {
		char path[300], target[4096];
		ssize_t len;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		if (e->d_name[0] == '.' || (len = readlink(path, target, sizeof target - 1)) < 0)
			continue;
		target[len] = '\0';
		n++;
		if (strstr(target, "(deleted)") || (dir && !strncmp(target, dir, strlen(dir)) && target[strlen(dir)] == '/')) {
			printf("FAIL %s: fd %s -> %s survived exec\n", who, e->d_name, target);
			bad = 1;
		}
	}
	if (d)
		closedir(d);
	printf("%s: %d descriptors, %s\n", who, n, bad ? "a spill file leaked" : "no spill file");
	return bad;
}

static int status_ok(pid_t pid)
{
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	int failures = 0;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		return check_fds(argv[1]);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	char *big = malloc(8 << 20), *big2 = malloc(4 << 20);
	memset(big, 1, 8 << 20);
	memset(big2, 2, 4 << 20);

	if ((pid = fork()) == 0) {
		big[0] = 3;	/* the child's own copy is live in its own spill file */
		execl(self, self, "fork+exec child", (char *)NULL);
		_exit(127);
	}
	failures += !status_ok(pid);
	char *args[] = { self, "posix_spawn child", NULL };
	if (posix_spawn(&pid, self, NULL, NULL, args, environ) == 0)
		failures += !status_ok(pid);
	else
		failures++;
	if (failures) {
		printf("FAIL %d child check(s)\n", failures);
		return 1;
	}
	fflush(stdout);
	execl(self, self, "the process itself after execve", (char *)NULL);
	puts("FAIL execve");
	return 1;
}
