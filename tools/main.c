/* SPDX-License-Identifier: MIT */
/* main.c - spillmon, the helper behind spill top, spill --trace and spill plot. */
#include <stdio.h>
#include <string.h>

#include "spillmon.h"

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} modes[] = { { "top", top_main }, { "trace", trace_main }, { "plot", plot_main } };

	for (unsigned i = 0; argc > 1 && i < sizeof modes / sizeof *modes; i++)
		if (strcmp(argv[1], modes[i].name) == 0)
			return modes[i].run(argc - 1, argv + 1);
	fprintf(stderr, "usage: spillmon top|trace|plot [ARGS...] (run by spill top, spill --trace, spill plot)\n");
	return 2;
}
