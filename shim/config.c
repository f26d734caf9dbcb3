/* SPDX-License-Identifier: MIT */
/* config.c - the SPILL_* environment, parsed once into struct spill_config. */
#include <string.h>

#include "spill.h"

struct spill_config spill_cfg;

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int same(const char *a, const char *b)
{
	while (*a && lower(*a) == lower(*b))
		a++, b++;
	return lower(*a) == lower(*b);
}

/* Bytes, or K/M/G/T (binary), optionally followed by "iB" or "B": 64M, 64MiB, 1g, 512. */
int spill_parse_size(const char *s, size_t *out)
{
	size_t v = 0;
	unsigned shift = 0;

	if (!s || !is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		if (v > (SIZE_MAX - (size_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	switch (lower(*s)) {
	case 'k': shift = 10; s++; break;
	case 'm': shift = 20; s++; break;
	case 'g': shift = 30; s++; break;
	case 't': shift = 40; s++; break;
	}
	if (shift && lower(s[0]) == 'i' && lower(s[1]) == 'b')
		s += 2;
	else if (lower(*s) == 'b')
		s++;
	if (*s)
		return -1;
	if (shift && v > SIZE_MAX >> shift)
		return -1;
	*out = v << shift;
	return 0;
}

/* "N%" or "N" with 0 <= N <= 100. */
int spill_parse_percent(const char *s, unsigned *out)
{
	unsigned v = 0;

	if (!s || !is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 100)
			return -1;
	}
	if (*s == '%')
		s++;
	if (*s)
		return -1;
	*out = v;
	return 0;
}

static int copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* "1", "yes", "true", "on" -> 1; "0", "no", "false", "off" -> 0; else -1. */
static int parse_bool(const char *s)
{
	static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };
	for (unsigned i = 0; i < 4; i++) {
		if (same(s, yes[i]))
			return 1;
		if (same(s, no[i]))
			return 0;
	}
	return -1;
}

static int parse_choice(const char *s, const char *const *names, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (same(s, names[i]))
			return (int)i;
	return -1;
}

static void bad(const char *var, const char *val, const char *what, const char *dflt)
{
	spill_warn("%s=\"%s\" %s; using %s", var, val, what, dflt);
}

/* VAR's value among NAMES (any case), or DFLT after one warning that lists them. */
static int load_choice(spill_getenv_fn get, const char *var, const char *const *names, unsigned n, int dflt)
{
	const char *v = get(var);
	char list[80];
	size_t at = 0;
	int c;

	if (!v || !*v)
		return dflt;
	if ((c = parse_choice(v, names, n)) >= 0)
		return c;
	for (unsigned i = 0; i < n && at < sizeof list; i++)
		at += spill_format(list + at, sizeof list - at, "%s%s", i ? ", " : "", names[i]);
	char what[96];
	spill_format(what, sizeof what, "is not one of %s", list);
	bad(var, v, what, names[dflt]);
	return dflt;
}

static void load_sink(const char *var, const char *val, enum spill_sink *sink, char *path, size_t size)
{
	if (!val || !*val)
		return;
	if (same(val, "stderr"))
		*sink = SPILL_SINK_STDERR;
	else if (copy_str(path, size, val) == 0)
		*sink = SPILL_SINK_FILE;
	else
		bad(var, "...", "is too long", "off");
}

void spill_config_load(struct spill_config *cfg, spill_getenv_fn get)
{
	static const char *const fail_names[] = { "ram", "null", "abort" };
	static const char *const fork_names[] = { "cow", "copy", "drop" };
	static const char *const when_names[] = { "always", "pressure" };
	static const char *const advice_names[] = { "normal", "sequential", "random" };
	const char *v;
	int c;

	memset(cfg, 0, sizeof *cfg);
	cfg->threshold = (size_t)64 << 20;
	cfg->max = SIZE_MAX;
	cfg->min_free = 5;
	cfg->min_free_pct = 1;
	cfg->headroom_pct = 80;
	v = get("TMPDIR");
	if (!v || !*v || copy_str(cfg->dir, sizeof cfg->dir, v))
		copy_str(cfg->dir, sizeof cfg->dir, "/var/tmp");

	if ((v = get("SPILL_DISABLE")) && *v) {
		c = parse_bool(v);
		if (c < 0)
			bad("SPILL_DISABLE", v, "is not 0 or 1", "0");
		cfg->disable = c > 0;
	}
	if ((v = get("SPILL_THRESHOLD")) && *v) {
		size_t t;
		if (spill_parse_size(v, &t) || t == 0)
			bad("SPILL_THRESHOLD", v, "is not a size of at least 1 byte", "64M");
		else
			cfg->threshold = t;
	}
	if ((v = get("SPILL_DIR")) && *v && copy_str(cfg->dir, sizeof cfg->dir, v))
		bad("SPILL_DIR", "...", "is too long", cfg->dir);
	if ((v = get("SPILL_MAX")) && *v && spill_parse_size(v, &cfg->max)) {
		cfg->max = SIZE_MAX;
		bad("SPILL_MAX", v, "is not a size", "no cap");
	}
	if ((v = get("SPILL_MIN_FREE")) && *v) {
		unsigned pct;
		size_t bytes;
		size_t n = strlen(v);
		if (v[n - 1] == '%' && spill_parse_percent(v, &pct) == 0) {
			cfg->min_free = pct;
		} else if (v[n - 1] != '%' && spill_parse_size(v, &bytes) == 0) {
			cfg->min_free = bytes;
			cfg->min_free_pct = 0;
		} else {
			bad("SPILL_MIN_FREE", v, "is not a size or a percentage", "5%");
		}
	}
	cfg->on_fail = (enum spill_on_fail)load_choice(get, "SPILL_ON_FAIL", fail_names, 3, 0);
	cfg->fork_mode = (enum spill_fork)load_choice(get, "SPILL_FORK", fork_names, 3, 0);
	cfg->when = (enum spill_when)load_choice(get, "SPILL_WHEN", when_names, 2, 0);
	cfg->advice = (enum spill_advice)load_choice(get, "SPILL_ADVICE", advice_names, 3, 0);
	if ((v = get("SPILL_HEADROOM")) && *v) {
		unsigned pct;
		if (spill_parse_percent(v, &pct) || pct == 0)
			bad("SPILL_HEADROOM", v, "is not a percentage from 1% to 100%", "80%");
		else
			cfg->headroom_pct = pct;
	}
	if ((v = get("SPILL_ONLY")) && *v && copy_str(cfg->only, sizeof cfg->only, v))
		bad("SPILL_ONLY", "...", "is too long", "every program");
	load_sink("SPILL_STATS", get("SPILL_STATS"), &cfg->stats, cfg->stats_path, sizeof cfg->stats_path);
	load_sink("SPILL_LOG", get("SPILL_LOG"), &cfg->log, cfg->log_path, sizeof cfg->log_path);
}

/* Is NAME one of the colon- (or comma-) separated names in ONLY? */
int spill_config_only_matches(const char *only, const char *name)
{
	size_t n = strlen(name);

	if (!*only)
		return 1;
	while (*only) {
		size_t k = strcspn(only, ":,");
		if (k == n && n && memcmp(only, name, n) == 0)
			return 1;
		only += k;
		if (*only)
			only++;
	}
	return 0;
}
