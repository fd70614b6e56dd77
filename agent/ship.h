/* ship.h - loghaul-agent's shipper: delivers sealed batches (batch.h) to
 * the collectors over HTTP(S), spills them to the disk buffer (buffer.h)
 * when no collector can take them, and replays the buffer in order.
 *
 * Thread. The shipper runs on a thread of its own with a libcurl multi
 * handle (curl_multi_poll; woken by curl_multi_wakeup), so a slow
 * collector, a TLS handshake or an fsync of the disk buffer never stalls
 * the agent's loop thread, which tails files and builds batches. The loop
 * thread hands batches over with lh_ship_submit and learns which are
 * durable through the notify callback + lh_ship_take_durable.
 *
 * Wire. POST <endpoint> (a URL without a path gets /v1/logs/ingest) with
 * Content-Type: application/json, Content-Encoding: gzip|zstd, the token as
 * X-Log-Shipper-Token (or Authorization: Bearer), Idempotency-Key: the
 * batch UUID in canonical form (the same on every retry and replay).
 * Connections are kept alive (one libcurl connection pool), at most
 * in_flight requests run at once. TLS: TLS 1.3 only by default, server
 * verified against `ca` (or the system store), client certificate + key
 * for mTLS.
 *
 * Endpoints. balance=failover sends to the first endpoint that is up,
 * round_robin spreads over those that are up. A failed request (transport
 * error, timeout, 5xx, 408, 429, 401, 403, 404, 405) marks its endpoint down
 * for a delay drawn with full jitter from [0, min(backoff_max,
 * backoff_base * 2^failures)], and never less than the Retry-After of a
 * 429/503 (capped by max_retry_after); the batch goes back to the queue and
 * is sent to the next endpoint that is up.
 *
 * Refused batches. 400 naming a record (error.index) drops that record
 * (reported in the log with its file, counted as "rejected") and sends the
 * rest; 413, other 4xx, or a 400 without an index, split the batch in
 * halves until the bad record is alone, which is then dropped ("rejected",
 * or "too_large" for 413). The parts get UUIDs derived from the batch UUID
 * and the records they hold (batch.h), so a replay of the same batch after a
 * restart splits the same way and reuses the same Idempotency-Keys. 415 for
 * zstd re-encodes the batch as gzip.
 *
 * Durability and order. With write-ahead (buffer.write_ahead, the default)
 * every batch is written to the disk buffer first, in seq order, several at
 * once with one directory fsync (group commit), and only then reported
 * durable to the loop thread and sent: a batch is never sent before it and
 * every older batch are on disk. After a crash the buffer is replayed with
 * the same UUIDs, and the agent resumes the tail after the ranges the
 * buffer holds (agent.h), so no line that was sent is read again into a new
 * batch. A delivered batch's file is removed once a saved checkpoint
 * includes it (lh_ship_checkpointed). A batch without records (all sampled
 * or dropped) is written too, as a small file that only holds its ranges.
 * Without write-ahead a batch is durable once the collector answered 2xx
 * for all of it (or its records were dropped as above), or once it is in
 * the disk buffer. Either way the loop thread advances the tail's
 * checkpoint in seq order (a batch's checkpoint waits for every older
 * batch): nothing unacknowledged is skipped.
 *
 * Disk buffer. Without write-ahead a batch goes to the disk buffer when no
 * endpoint has been up for spill_after, or at once when memory_batches
 * batches are already waiting in memory while no endpoint is up. With
 * write-ahead it is there already; then only its memory copy is released
 * (counted as spilled). Waiting batches, in memory and on disk, are sent
 * lowest seq first.
 *
 * Sampling, as a batch is written to the buffer while no endpoint is up
 * (the fill is known then):
 * past buffer.sample_at its TRACE/DEBUG/INFO records (level.h) are kept one
 * in sample_keep, past low_levels_max none; WARN and above and records of
 * unknown level are kept. If the batch still does not fit, its low-level
 * records are all dropped; if it still does not fit, the whole batch is
 * dropped ("buffer_full"). Dropped lines are counted per file and reason
 * ("sampled", "buffer_full") in the ledger. The batch keeps its UUID. With
 * write-ahead, a batch that does not fit while a collector is up waits for
 * deliveries to make room (the loop stops reading meanwhile, see below);
 * only when the buffer holds nothing else is it sampled or dropped.
 *
 * Backpressure. While an endpoint is up and memory_batches or more batches
 * are waiting (in memory or on disk), lh_ship_busy() is 1: the agent stops
 * reading files until the collectors catch up, instead of spilling to
 * disk a backlog that a healthy but slower collector will take anyway.
 * With write-ahead, while no endpoint is up, it is 1 while memory_batches
 * batches wait to be written (memory stays bounded by a slow disk). */
#ifndef LH_AGENT_SHIP_H
#define LH_AGENT_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "buffer.h"
#include "ledger.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/metrics.h"

enum { LH_SHIP_TOKEN_HEADER = 0, LH_SHIP_TOKEN_BEARER = 1 };   /* token_header */
enum { LH_SHIP_FAILOVER = 0, LH_SHIP_ROUND_ROBIN = 1 };        /* balance */

struct lh_ship_tls {
    char *ca_file;          /* PEM CAs for the collectors' certificates; NULL: system store */
    char *cert_file;        /* PEM client certificate (mTLS) */
    char *key_file;         /* its key */
    int tls12;              /* also accept TLS 1.2 (default: TLS 1.3 only) */
    int insecure;           /* do not verify the server (tests only) */
};

/* Zero fields take the default in brackets. */
struct lh_ship_config {
    struct lh_strlist endpoints;   /* collector URLs; required */
    char *token;                   /* shipper token; NULL: none */
    int token_header;              /* LH_SHIP_TOKEN_* */
    struct lh_ship_tls tls;
    int64_t in_flight;             /* requests at once [4] */
    int balance;                   /* LH_SHIP_FAILOVER / LH_SHIP_ROUND_ROBIN */
    int64_t connect_timeout_ms;    /* [5 s] */
    int64_t timeout_ms;            /* one request [30 s] */
    int64_t backoff_base_ms;       /* [200 ms] */
    int64_t backoff_max_ms;        /* [30 s] */
    int64_t max_retry_after_ms;    /* cap of a collector's Retry-After [5 min] */
    int64_t memory_batches;        /* batches waiting in memory before spilling [8] */
    int64_t spill_after_ms;        /* no endpoint up this long: spill [2 s] */
    char *user_agent;              /* [loghaul-agent] */
};

/* The `ship:` section: endpoints, token, token_header (header|bearer), tls:
 * {ca, cert, key, tls12, insecure}, in_flight, balance (failover|round_robin),
 * connect_timeout, timeout, backoff_base, backoff_max, max_retry_after,
 * memory_batches, spill_after. */
extern const struct lh_opt lh_ship_opts[];

/* Validates cfg: URLs (http/https), ranges, and that the TLS files load
 * (certificate and key match). 0 or LH_EINVAL naming the problem. */
int lh_ship_config_check(const struct lh_ship_config *cfg, struct lh_err *err);

struct lh_ship;

/* Called on the shipper thread when durable seqs are ready to be taken,
 * when a batch was delivered (the backlog shrank: lh_ship_busy may have
 * turned 0) and when a stop finished. Must be cheap and thread-safe
 * (uv_async_send). */
typedef void (*lh_ship_notify_fn)(void *arg);

/* dbuf, ledger and metrics are not owned and must outlive the shipper; the
 * shipper thread uses dbuf exclusively from lh_ship_start to the end of
 * lh_ship_destroy. metrics may be NULL. Starts the thread. */
int lh_ship_create(const struct lh_ship_config *cfg, struct lh_dbuf *dbuf,
                   struct lh_ledger *ledger, struct lh_metrics *metrics,
                   lh_ship_notify_fn notify, void *arg, struct lh_ship **out,
                   struct lh_err *err);

/* Stops now (in-flight requests are abandoned, memory batches are spilled
 * to the disk buffer when they fit), joins the thread and frees. NULL-safe. */
void lh_ship_destroy(struct lh_ship *s);

/* Hands b over (owned by the shipper from now on). Batches must be
 * submitted in seq order. Any thread. */
void lh_ship_submit(struct lh_ship *s, struct lh_batch *b);

/* Moves up to max seqs of submitted batches that became durable since the
 * last call into out; returns how many. Any thread. */
size_t lh_ship_take_durable(struct lh_ship *s, uint64_t *out, size_t max);

/* Backpressure (see above): 1 while the loop should not read more. */
int lh_ship_busy(const struct lh_ship *s);

/* The disk buffer's fill ratio 0..1 (sampling). Any thread. */
double lh_ship_fill(const struct lh_ship *s);

/* 1 when at least one endpoint is up now. Any thread. */
int lh_ship_healthy(const struct lh_ship *s);

/* Applies a validated new config (endpoints, token, TLS files re-read for
 * new connections, limits). Connections already open finish their
 * request and are closed. Any thread; takes effect on the shipper thread. */
int lh_ship_reload(struct lh_ship *s, const struct lh_ship_config *cfg, struct lh_err *err);

/* A checkpoint including every batch up to seq was saved: delivered
 * write-ahead files up to there may go. Any thread. */
void lh_ship_checkpointed(struct lh_ship *s, uint64_t seq);

/* Graceful stop: keeps delivering the batches held in memory until none is
 * left or deadline_ms (monotonic) passed, then spills what is left to the
 * disk buffer and stops. The disk buffer is not replayed meanwhile.
 * Returns at once; lh_ship_stopped() says when it is done (notify runs). */
void lh_ship_stop(struct lh_ship *s, int64_t deadline_ms);
int lh_ship_stopped(const struct lh_ship *s);

struct lh_ship_stats {
    uint64_t submitted;        /* batches handed over */
    uint64_t delivered;        /* batches acknowledged (all parts), from memory or disk */
    uint64_t replayed;         /* of those, from the disk buffer */
    uint64_t spilled;          /* batches spilled to the disk buffer (write-ahead: memory
                                  copies released while no collector is up) */
    uint64_t written;          /* batches written ahead */
    uint64_t dropped;          /* batches dropped: buffer full */
    uint64_t requests;         /* HTTP requests finished (any outcome) */
    uint64_t failures;         /* requests that failed (retried) */
    uint64_t splits;           /* parts created by splitting refused batches */
    uint64_t rejected;         /* records dropped because the collector refused them */
    uint64_t bytes_sent;       /* compressed body bytes acknowledged */
    uint64_t raw_bytes_sent;   /* their JSON bytes */
    uint64_t sampled;          /* lines dropped by sampling on the way to disk */
    uint64_t in_flight;        /* now */
    uint64_t memory;           /* batches in memory now */
    uint64_t buffered;         /* batches in the disk buffer now (write-ahead: also those
                                  delivered, until a saved checkpoint includes them) */
};
void lh_ship_get_stats(const struct lh_ship *s, struct lh_ship_stats *out);

#endif
