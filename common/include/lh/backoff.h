/* backoff.h - exponential backoff with full jitter, and Retry-After.
 *
 * Delay n (counting from 0) is uniform in [0, min(cap_ms, base_ms * 2^n)]
 * ("full jitter": many clients retrying at once spread out instead of
 * arriving together). A server's Retry-After is honoured as a floor.
 *
 * Each struct carries its own random state (splitmix64, seeded from
 * getrandom), so threads never share one: give every retrying thread or
 * connection its own struct lh_backoff. One struct is not safe for
 * concurrent use without the caller's lock. No allocation, nothing to free. */
#ifndef LH_BACKOFF_H
#define LH_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#include "lh/err.h"

struct lh_backoff {
    uint32_t base_ms;    /* ceiling of the first delay */
    uint32_t cap_ms;     /* no delay ever exceeds this */
    uint32_t attempt;    /* delays handed out since the last reset */
    uint64_t rng;        /* random state */
};

/* Sets the limits, attempt = 0 and a fresh random seed (getrandom; if that
 * fails, clock and address bits, which still differ per struct). */
void lh_backoff_init(struct lh_backoff *b, uint32_t base_ms, uint32_t cap_ms);

/* Returns a delay in [0, lh_backoff_ceiling_ms(b)] and counts an attempt.
 * Never overflows: past ~32 attempts the ceiling simply stays at cap_ms. */
uint32_t lh_backoff_next_ms(struct lh_backoff *b);

/* The ceiling of the next delay: min(cap_ms, base_ms * 2^attempt). */
uint32_t lh_backoff_ceiling_ms(const struct lh_backoff *b);

/* After a success: the next delay starts from base_ms again. */
void lh_backoff_reset(struct lh_backoff *b);

/* Parses a Retry-After value of n bytes (surrounding spaces/tabs ignored):
 * delay-seconds ("120"; huge values saturate) or an HTTP-date, converted to
 * ms from now_ns (a date in the past gives 0). Returns 0 and sets *out_ms,
 * or LH_EINVAL. */
int lh_backoff_parse_retry_after(const char *s, size_t n, int64_t now_ns, uint64_t *out_ms,
                                 struct lh_err *err);

/* The next delay when the server may have sent Retry-After (value s of n
 * bytes, or s == NULL when absent): max(parsed Retry-After, next jittered
 * delay). An unparsable value is ignored. Counts an attempt like
 * lh_backoff_next_ms. now_ns: lh_time_now_ns() (a parameter for tests). */
uint64_t lh_backoff_next_retry_ms(struct lh_backoff *b, const char *s, size_t n,
                                  int64_t now_ns);

#endif
