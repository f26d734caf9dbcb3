/* SPDX-License-Identifier: MIT */
/* rerun.h - runs this test program again under other SPILL_* settings (the matrix of matrix.h). */
#ifndef SPILL_TEST_RERUN_H
#define SPILL_TEST_RERUN_H

#include <linux/magic.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "matrix.h"

extern char **environ;

/*
 * Runs PROG (this program if NULL) with ARGV and the environment changed by KV (name,
 * value pairs, NULL-terminated). With ERR, its stderr goes there (NUL-terminated);
 * without, it shares ours. Returns the wait status, -1 if it could not start.
 */
static inline int rerun(const char *prog, char *const argv[], const char *const *kv, char *err, size_t errsize)
{
	char *envp[512], vars[16][512];
	int n = 0, nv = 0, p[2] = { -1, -1 }, st;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	if (!prog)
		prog = "/proc/self/exe";	/* this very file, even if a rebuild has replaced its name */
	for (char **e = environ; *e && n < 480; e++) {
		int replaced = 0;
		for (const char *const *k = kv; k && k[0]; k += 2)
			replaced |= !strncmp(*e, k[0], strlen(k[0])) && (*e)[strlen(k[0])] == '=';
		if (!replaced)
			envp[n++] = *e;
	}
	for (const char *const *k = kv; k && k[0] && nv < 16; k += 2) {
		snprintf(vars[nv], sizeof vars[nv], "%s=%s", k[0], k[1]);
		envp[n++] = vars[nv++];
	}
	envp[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	if (err) {
		if (pipe(p))
			return -1;
		posix_spawn_file_actions_adddup2(&fa, p[1], 2);
		posix_spawn_file_actions_addclose(&fa, p[0]);
	}
	fflush(stdout);
	if (posix_spawn(&pid, prog, &fa, NULL, argv, envp)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		size_t got = 0;
		ssize_t r;
		close(p[1]);
		while (got + 1 < errsize && (r = read(p[0], err + got, errsize - 1 - got)) > 0)
			got += (size_t)r;
		err[got] = '\0';
		close(p[0]);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

/* The fork modes libspill knows are the ones MATRIX_FORK_MODES lists (asked of a child). */
static inline int rerun_check_modes(void)
{
	static const char *const kv[] = { "SPILL_FORK", "?", NULL };
	char *const argv[] = { "true", NULL };
	char err[1024];
	int st = rerun("/bin/true", argv, kv, err, sizeof err);

	if (st) {
		printf("FAIL: /bin/true under libspill with SPILL_FORK=? exited with status %d\n", st);
		return -1;
	}
	return matrix_check_modes(err);
}

/* A fresh directory on the tmpfs at /dev/shm in DIR, or 0 (and why) when there is none. */
static inline int rerun_tmpfs_dir(char *dir, size_t size)
{
	struct statfs sfs;

	if (statfs("/dev/shm", &sfs) || sfs.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK)) {
		printf("note: /dev/shm is not a writable tmpfs; the tmpfs runs are left out\n");
		return 0;
	}
	snprintf(dir, size, "/dev/shm/spill-test.XXXXXX");
	return mkdtemp(dir) != NULL;
}

/* "exit 3", "signal 11": what a wait status means. */
static inline const char *rerun_status(int st)
{
	static char buf[32];

	if (st == -1)
		return "could not start";
	if (WIFSIGNALED(st))
		snprintf(buf, sizeof buf, "signal %d", WTERMSIG(st));
	else
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
	return buf;
}

#endif
