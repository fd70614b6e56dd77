/* dedupe.h - the collector's idempotency cache: batch UUIDs seen within a
 * window, so a retried batch is acknowledged without producing it twice.
 * The event ids derived from the UUID keep retries invisible downstream
 * anyway (a different collector, an expired entry); this saves the bus the
 * duplicate bytes. Bounded: the oldest entries go first. Loop thread only.
 *
 * Each acknowledged key keeps digests of the body as sent and as decoded,
 * so a key reused for different records is told apart from a retry: the
 * event ids derive from the key, and acknowledging such a batch as a
 * duplicate would lose its records unread. */
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

/* What an acknowledged batch left in the cache. */
struct lh_dedupe_seen {
    uint64_t accepted;      /* records acknowledged */
    uint64_t wire;          /* lh_dedupe_digest of the body as received */
    uint64_t content;       /* ... and decompressed */
};

/* A cheap 64-bit fingerprint of a body: CRC-32C and length (tag mixes in,
 * e.g. the content encoding). Collisions only matter for a reused key. */
uint64_t lh_dedupe_digest(const void *p, size_t n, uint32_t tag);

struct lh_dedupe *lh_dedupe_create(size_t max_entries, int64_t window_ns);
void lh_dedupe_destroy(struct lh_dedupe *d);

/* Looks key (tenant + batch uuid) up; a new key is recorded as in flight.
 * DONE fills *seen. NULL d (dedupe disabled) always answers NEW. */
enum lh_dedupe_state lh_dedupe_begin(struct lh_dedupe *d, const char *tenant,
                                     const uint8_t uuid[16], int64_t now_ns,
                                     struct lh_dedupe_seen *seen);
/* The batch was acknowledged (ok: *seen is kept) or failed (the entry is
 * dropped so the retry is handled afresh; seen may be NULL). */
void lh_dedupe_end(struct lh_dedupe *d, const char *tenant, const uint8_t uuid[16], int ok,
                   const struct lh_dedupe_seen *seen, int64_t now_ns);
size_t lh_dedupe_size(const struct lh_dedupe *d);

#endif
