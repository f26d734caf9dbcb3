/* SPDX-License-Identifier: MIT */
/* fuzz_config.c - libFuzzer target: SPILL_* values from the input through spill_config_load(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spill.h"

/*
 * The input is split at newlines into values for these variables, in order; a value may
 * hold any byte but NUL and newline. The raw input (up to its first NUL) also goes
 * through spill_parse_size() and spill_parse_percent().
 */
static const char *const names[] = {
	"SPILL_THRESHOLD", "SPILL_DIR", "SPILL_MAX", "SPILL_MIN_FREE", "SPILL_ON_FAIL", "SPILL_STATS",
	"SPILL_LOG", "SPILL_DISABLE", "SPILL_FORK", "SPILL_ONLY", "SPILL_WHEN", "SPILL_HEADROOM", "TMPDIR",
};
#define NVARS (sizeof names / sizeof *names)

static char *values[NVARS];

static const char *fake_get(const char *name)
{
	for (unsigned i = 0; i < NVARS; i++)
		if (strcmp(names[i], name) == 0)
			return values[i];
	return NULL;
}

static void check_string(const char *s, size_t size)
{
	if (!memchr(s, '\0', size))
		abort();	/* a path without its NUL inside the field */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spill_config cfg;
	char *copy = malloc(size + 1), *p = copy;
	size_t v;
	unsigned pct;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';

	/* Whole input: the parsers must never accept a value outside their range. */
	if (spill_parse_percent(copy, &pct) == 0 && pct > 100)
		abort();
	if (spill_parse_size(copy, &v) == 0 && strlen(copy) == 0)
		abort();

	memset(values, 0, sizeof values);
	for (unsigned i = 0; i < NVARS && p; i++) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		values[i] = p;
		p = nl ? nl + 1 : NULL;
	}
	memset(&cfg, 0xa5, sizeof cfg);	/* load must set every field, not rely on zeroed memory */
	spill_config_load(&cfg, fake_get);

	if (cfg.threshold < 1 || cfg.headroom_pct < 1 || cfg.headroom_pct > 100)
		abort();
	if (cfg.min_free_pct != 0 && cfg.min_free_pct != 1)
		abort();
	if (cfg.min_free_pct && cfg.min_free > 100)
		abort();
	if ((unsigned)cfg.on_fail > SPILL_FAIL_ABORT || (unsigned)cfg.fork_mode > SPILL_FORK_DROP ||
	    (unsigned)cfg.when > SPILL_WHEN_PRESSURE || (unsigned)cfg.stats > SPILL_SINK_FILE ||
	    (unsigned)cfg.log > SPILL_SINK_FILE || (cfg.disable != 0 && cfg.disable != 1))
		abort();
	check_string(cfg.dir, sizeof cfg.dir);
	check_string(cfg.stats_path, sizeof cfg.stats_path);
	check_string(cfg.log_path, sizeof cfg.log_path);
	check_string(cfg.only, sizeof cfg.only);
	if (!cfg.dir[0])
		abort();	/* there is always a directory: SPILL_DIR, $TMPDIR or /var/tmp */
	if (cfg.stats == SPILL_SINK_FILE && !cfg.stats_path[0])
		abort();
	if (cfg.log == SPILL_SINK_FILE && !cfg.log_path[0])
		abort();
	/* A value that was accepted is the value given. */
	if (values[0] && *values[0] && spill_parse_size(values[0], &v) == 0 && v > 0 && cfg.threshold != v)
		abort();
	if (values[1] && *values[1] && strlen(values[1]) < sizeof cfg.dir && strcmp(cfg.dir, values[1]))
		abort();
	(void)spill_config_only_matches(cfg.only, values[12] ? values[12] : "prog");
	free(copy);
	return 0;
}
