/* SPDX-License-Identifier: MIT */
/* capture.h - runs a function in a child whose stderr is a pipe: the tests of messages. */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <check.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Runs FN(ARG) in a child with stderr on a pipe, which then exits 0. Returns the child's
 * wait status; what it printed goes to OUT (NUL-terminated), its pid to *CHILD if non-NULL.
 */
static inline int run_captured(void (*fn)(void *), void *arg, char *out, size_t size, pid_t *child)
{
	int fds[2], status;
	size_t at = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while (at + 1 < size && (n = read(fds[0], out + at, size - 1 - at)) > 0)
		at += (size_t)n;
	out[at] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (child)
		*child = pid;
	return status;
}

#endif
