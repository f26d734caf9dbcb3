/* SPDX-License-Identifier: MIT */
/* matrix.h - the SPILL_FORK modes and SPILL_ADVICE values every copy test runs under. */
#ifndef SPILL_TEST_MATRIX_H
#define SPILL_TEST_MATRIX_H

#include <stdio.h>
#include <string.h>

/*
 * The one list of fork modes: a new SPILL_FORK mode is one more word here. Every mode but
 * "drop" must give the child the blocks as they were at fork() with writes isolated both
 * ways, so that is what the tests check of a mode they do not know by name.
 * matrix_check_modes() fails while libspill knows a mode this list lacks.
 */
#ifndef MATRIX_FORK_MODES	/* -D for a run against an older libspill */
#define MATRIX_FORK_MODES "cow copy drop"
#endif

/* normal keeps the kernel's read-around, which hides holes; random shows them page by page. */
#define MATRIX_ADVICE "normal random"

/* Does a child forked under MODE keep its spilled blocks (readable, private)? */
static inline int matrix_child_keeps(const char *mode)
{
	return strcmp(mode, "drop") != 0;
}

/*
 * The next word of a space-separated LIST after *AT into WORD; 0 at the end.
 * for (const char *at = LIST; matrix_next(&at, w, sizeof w);) ...
 */
static inline int matrix_next(const char **at, char *word, size_t size)
{
	const char *s = *at;
	size_t n;

	while (*s == ' ')
		s++;
	n = strcspn(s, " ");
	if (!n || n >= size)
		return 0;
	memcpy(word, s, n);
	word[n] = '\0';
	*at = s + n;
	return 1;
}

/*
 * WARNING is what libspill printed for SPILL_FORK="?" ("... is not one of copy, drop;
 * using copy"). Returns 0 when its list is MATRIX_FORK_MODES, else says what differs.
 */
static inline int matrix_check_modes(const char *warning)
{
	const char *s = strstr(warning, "is not one of ");
	char lib[128] = "", *o = lib;

	if (!s) {
		printf("FAIL: cannot read libspill's SPILL_FORK modes from \"%s\"\n", warning);
		return -1;
	}
	for (s += 14; *s && *s != ';' && *s != '\n' && o + 1 < lib + sizeof lib; s++)
		if (*s != ',')
			*o++ = *s;
	*o = '\0';
	if (strcmp(lib, MATRIX_FORK_MODES)) {
		printf("FAIL: libspill's SPILL_FORK modes are \"%s\", the tests run \"%s\": "
		       "add the new mode to MATRIX_FORK_MODES in tests/integration/matrix.h\n", lib, MATRIX_FORK_MODES);
		return -1;
	}
	return 0;
}

#endif
