/* SPDX-License-Identifier: MIT */
/* policy.c - may this request spill (SPILL_MAX, SPILL_MIN_FREE), and what a refused one gets. */
#include <errno.h>

#include "spill.h"

/* Bytes admitted whose fallocate may not show in statvfs yet: counted as used already. */
static uint64_t in_flight;

uint64_t spill_policy_min_free(uint64_t total)
{
	if (!spill_cfg.min_free_pct)
		return spill_cfg.min_free;
	return total / 100 * spill_cfg.min_free + total % 100 * spill_cfg.min_free / 100;
}

/*
 * Admits LEN more bytes of disk, or says why not. An admitted caller must call
 * spill_policy_release(LEN) once its fallocate has returned, whatever it returned.
 */
int spill_policy_admit(size_t len, enum spill_reason *why)
{
	uint64_t avail, total, pending;

	if (spill_stats_claim(len, spill_cfg.max)) {
		*why = SPILL_R_MAX;
		return -1;
	}
	pending = __atomic_add_fetch(&in_flight, len, __ATOMIC_RELAXED);
	if (spill_backing_avail(&avail, &total) == 0 &&
	    (avail < pending || avail - pending < spill_policy_min_free(total))) {
		spill_policy_release(len);
		spill_stats_unclaim(len);
		*why = avail < pending ? SPILL_R_NO_SPACE : SPILL_R_MIN_FREE;
		return -1;
	}
	return 0;
}

void spill_policy_release(size_t len)
{
	__atomic_fetch_sub(&in_flight, len, __ATOMIC_RELAXED);
}

void spill_policy_note(size_t size, enum spill_reason why)
{
	spill_stats_fallback(why);
	spill_event("fallback size=%zu reason=%s", size, spill_reason_name[why]);
}

/* What a large request gets when it is not spilled: SPILL_ON_FAIL decides. */
void *spill_policy_fail(size_t size, size_t align, int zero, enum spill_reason why)
{
	spill_policy_note(size, why);
	if (why == SPILL_R_PRESSURE_OK)
		goto ram;
	switch (spill_cfg.on_fail) {
	case SPILL_FAIL_NULL:
		errno = ENOMEM;
		return NULL;
	case SPILL_FAIL_ABORT:
		spill_die("SPILL_ON_FAIL=abort: cannot spill %zu bytes (%s)", size, spill_reason_name[why]);
	case SPILL_FAIL_RAM:
		break;
	}
ram:
	if (zero)
		return real_calloc(1, size);
	return align ? real_memalign(align, size) : real_malloc(size);
}
