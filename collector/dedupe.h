/* dedupe.h - the collector's idempotency cache: batch UUIDs seen within a
 * window, so a retried batch is acknowledged without producing it twice.
 * The event ids derived from the UUID keep retries invisible downstream
 * anyway (a different collector, an expired entry); this saves the bus the
 * duplicate bytes. Bounded: the oldest entries go first. Loop thread only. */
#ifndef LH_COLLECTOR_DEDUPE_H
#define LH_COLLECTOR_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

enum lh_dedupe_state {
    LH_DEDUPE_NEW = 0,      /* not seen: now recorded as in flight */
    LH_DEDUPE_IN_FLIGHT,    /* the same batch is being handled right now */
    LH_DEDUPE_DONE,         /* acknowledged before: *accepted tells how many */
};

struct lh_dedupe;

struct lh_dedupe *lh_dedupe_create(size_t max_entries, int64_t window_ns);
void lh_dedupe_destroy(struct lh_dedupe *d);

/* Looks key (tenant + batch uuid) up; a new key is recorded as in flight.
 * NULL d (dedupe disabled) always answers NEW. */
enum lh_dedupe_state lh_dedupe_begin(struct lh_dedupe *d, const char *tenant,
                                     const uint8_t uuid[16], int64_t now_ns, uint64_t *accepted);
/* The batch was acknowledged (ok) or failed (the entry is dropped so the
 * retry is handled afresh). */
void lh_dedupe_end(struct lh_dedupe *d, const char *tenant, const uint8_t uuid[16], int ok,
                   uint64_t accepted, int64_t now_ns);
size_t lh_dedupe_size(const struct lh_dedupe *d);

#endif
