/* ratelimit.h - token-bucket rate limits per key (tenant, host) in bytes
 * and records per second. A bucket holds up to rate * burst tokens and
 * refills continuously. Thread-safe (one mutex): the check runs on the
 * worker threads that decode batches. Idle buckets are forgotten, so the
 * number of hosts is bounded by max_keys, not by history. */
#ifndef LH_COLLECTOR_RATELIMIT_H
#define LH_COLLECTOR_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct lh_ratelimit;

/* bytes_per_sec / records_per_sec 0: that dimension is unlimited. */
struct lh_ratelimit *lh_ratelimit_create(double bytes_per_sec, double records_per_sec,
                                         double burst_sec, size_t max_keys);
void lh_ratelimit_destroy(struct lh_ratelimit *r);

/* Takes bytes and records from key's bucket. Returns 0 when allowed, or
 * the number of milliseconds until it would be (the Retry-After): then
 * nothing is taken. A request larger than the whole bucket is allowed
 * once the bucket is full (so a big batch is slow, never impossible).
 * NULL r: always allowed. */
int64_t lh_ratelimit_take(struct lh_ratelimit *r, const char *key, uint64_t bytes,
                          uint64_t records, int64_t now_ns);

#endif
