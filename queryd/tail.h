/* tail.h - live tail: GET /v1/logs/tail as server-sent events.
 *
 * Each open tail polls the tiers every poll interval (a worker-thread
 * search over [max(start, now - lookback), open)) and sends the matching
 * events it has not sent yet, oldest first, one SSE message per event:
 *
 *   id: <timestamp ns>/<event id>
 *   data: {hit, as in search answers}
 *
 * An event indexed later than `lookback` after its timestamp is not seen
 * (a tail follows event time, and late events fall behind the window).
 * Comment lines (": keepalive") go out when nothing else was sent for the
 * heartbeat interval, so proxies keep the connection and a vanished client
 * is noticed. A tail ends when the client goes away (seen at the next
 * tick), when it cannot keep up (more than 1 MiB unsent: an `event: error`
 * message, then the end), after max_duration (when set) or when queryd
 * stops. A reconnecting EventSource sends Last-Event-ID: the tail then
 * resumes at that event.
 *
 * Threads: everything here runs on the loop thread except the polls,
 * which run on libuv's pool. */
#ifndef LH_QUERYD_TAIL_H
#define LH_QUERYD_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lh/http.h"
#include "lh/metrics.h"
#include "plan.h"
#include "query.h"

struct lh_qtail_config {
    int64_t poll_ms;          /* [250 ms] */
    int64_t heartbeat_ms;     /* [15 s] */
    int64_t lookback_ms;      /* [10 s] */
    int64_t max_streams;      /* tails open at once [100] */
    int64_t max_events;       /* events sent per poll at most [5000] */
    int64_t timeout_ms;       /* one poll's query time limit [5 s] */
    int64_t max_duration_ms;  /* a stream ends after this long; 0: never [0] */
};

extern const struct lh_opt lh_qtail_opts[];

struct lh_qtail_hub;

/* tiers (ntiers) must outlive the hub. metrics may be NULL. */
int lh_qtail_hub_create(uv_loop_t *loop, const struct lh_tier *tiers, size_t ntiers,
                       struct lh_metrics *metrics, struct lh_qtail_hub **out, struct lh_err *err);

/* Applies new settings to tails started from now on. */
void lh_qtail_hub_configure(struct lh_qtail_hub *hub, const struct lh_qtail_config *cfg);

/* Starts a tail for req (it answers req: a stream, or 503 when max_streams
 * are open). Takes q (moved: the caller's struct is zeroed). since_ns:
 * the first event time to send; resume_id: an event id at since_ns
 * already sent (NULL: none); prime: the first poll only remembers the
 * events already stored and sends none (a new tail starting a lookback in
 * the past). Returns the status answered (200 or 503). */
int lh_qtail_start(struct lh_qtail_hub *hub, struct lh_http_req *req, const char *tenant,
                   struct lh_query *q, int64_t since_ns, const char *resume_id, int prime);

/* Tails open now. */
size_t lh_qtail_hub_count(const struct lh_qtail_hub *hub);

/* Ends every tail (their streams end once a poll in flight finished) and
 * refuses new ones; handles close; the loop can then end. */
void lh_qtail_hub_shutdown(struct lh_qtail_hub *hub);

/* After the loop ended. NULL-safe. */
void lh_qtail_hub_destroy(struct lh_qtail_hub *hub);

#endif
