/* pipeline.h - the indexer's consume loop: bus -> stages -> sinks -> commit.
 *
 * One batch at a time, on one thread (the pipeline thread):
 *   1. gather: poll the bus until max_batch messages (or max_batch_bytes of
 *      values) are in hand, or `linger` passed since the first of them. A
 *      replay topic (see lh_pipeline_config.replay_topic), when configured,
 *      is polled too, in the same consumer group.
 *   2. process: decode, parse/enrich/mask, route and sample each message
 *      (stages.h), split over `workers` threads (the pipeline thread is one
 *      of them). A message that does not decode goes to the dead-letter
 *      queue with the decoder's reason.
 *   3. deliver: every sink gets the events routed to it (lh_sink_write). A
 *      sink that returns LH_EUNAVAIL / LH_EFULL (or any other error) is
 *      retried with the same events after a backoff (lh/backoff.h) until it
 *      succeeds; sinks that already took the batch are not written again.
 *      While a sink is failing the pipeline is paused: it holds this one
 *      batch and polls nothing more, so memory stays bounded; /readyz
 *      reports the sink as down. Events a sink rejects for good (listed in
 *      its report) go to the dead-letter queue.
 *   4. dead letters: produced to the DLQ topic on the same bus (value: the
 *      message exactly as consumed; key: its key; headers `reason`, `sink`
 *      (empty for undecodable messages), `tenant`, `origin`
 *      (topic/partition/offset) and `failed_at` (RFC 3339)). A failed
 *      produce is retried like a sink.
 *   5. ledger: messages with the bus header type=ledger are the collector's
 *      delivery-ledger rows, not events; they are written, with rows for
 *      what this batch's sinks sampled out, did not get or dead-lettered,
 *      to the ledger (ledger.h, docs/ledger.md); a failed write is retried
 *      like a sink.
 *   6. commit: the bus position after the batch is committed only once
 *      every sink, the dead-letter produce and the ledger write succeeded. A crash before that
 *      replays the batch; sinks write by event id, so nothing duplicates.
 *
 * Stop (lh_pipeline_stop): polling stops at once; the batch in hand is still
 * written and committed if that finishes before the drain deadline,
 * otherwise it is left uncommitted (delivered again after a restart). Then
 * every sink is flushed and the consumers are closed.
 *
 * Reload: lh_pipeline_set_stages hands over a new lh_stages, swapped in
 * before the next batch. Sinks and the bus change only with a restart.
 *
 * Threads: create, start, stop, join and destroy from one controlling
 * thread; set_stages, status and stats from any thread. lh_pipeline_step
 * (tests, tools) runs one batch on the calling thread instead of start. */
#ifndef LH_INDEXER_PIPELINE_H
#define LH_INDEXER_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"
#include "lh/bus.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/metrics.h"
#include "ledger.h"
#include "sink.h"
#include "stages.h"

struct lh_pipeline_config {
    char *group;                 /* consumer group */
    int64_t max_batch;           /* messages per batch */
    uint64_t max_batch_bytes;    /* message value bytes per batch */
    int64_t linger_ms;           /* hand a batch on this long after its first message */
    int64_t workers;             /* threads for decode/parse/mask (1: the pipeline thread) */
    int64_t backoff_base_ms;     /* retry of a failing sink / DLQ / bus */
    int64_t backoff_cap_ms;
    int64_t flush_interval_ms;   /* how often sinks' flush runs */
    char *replay_topic;          /* "auto", a topic name, or "" / "none" for none */
};

/* group, max_batch, max_batch_bytes, linger, workers, backoff_base,
 * backoff_cap, flush_interval, replay_topic. */
extern const struct lh_opt lh_pipeline_opts[];

/* The replay topic that `replay_topic` names for a bus: "auto" is
 * "<topic>.replay" on the spool (where only one process may write a topic,
 * so replays cannot go to the main topic while the collector runs) and none
 * on Kafka (replays go to the main topic). Writes it into out and returns 1,
 * or returns 0 for none. */
int lh_pipeline_replay_topic(const struct lh_pipeline_config *cfg, const struct lh_bus_config *bus,
                             char *out, size_t size);

struct lh_pipeline;

struct lh_pipeline_args {
    struct lh_bus *bus;          /* not owned; outlives the pipeline */
    const char *topic;           /* consumed */
    const char *replay_topic;    /* also consumed when not NULL */
    const char *dlq_topic;       /* "{tenant}" expands per event */
    struct lh_sink **sinks;      /* owned by the pipeline from create on (also on failure) */
    size_t nsinks;
    struct lh_stages *stages;    /* owned by the pipeline from create on (also on failure) */
    struct lh_metrics *metrics;  /* may be NULL; outlives the pipeline */
    struct lh_iledger *ledger;   /* may be NULL; owned by the pipeline from create on */
};

/* Test hooks, called on the pipeline thread. */
struct lh_pipeline_hooks {
    /* After sinks and DLQ succeeded, before the commit. */
    void (*before_commit)(void *arg, size_t nmsgs);
    void *arg;
};

/* Opens the consumers (group from cfg) and the worker threads. */
int lh_pipeline_create(const struct lh_pipeline_config *cfg, const struct lh_pipeline_args *a,
                       struct lh_pipeline **out, struct lh_err *err);
void lh_pipeline_set_hooks(struct lh_pipeline *p, const struct lh_pipeline_hooks *h);

/* One batch: gather, process, deliver, commit. Returns the number of
 * messages committed (0 when none arrived within the wait), or LH_ECLOSED
 * when a stop abandoned the batch. */
int lh_pipeline_step(struct lh_pipeline *p, struct lh_err *err);

/* Runs steps on a thread of its own until lh_pipeline_stop. done (may be
 * NULL) is called on that thread as its last act. */
int lh_pipeline_start(struct lh_pipeline *p, void (*done)(void *arg), void *arg,
                      struct lh_err *err);
/* Asks the pipeline to stop; the batch in hand has drain_ms to finish.
 * Returns at once. */
void lh_pipeline_stop(struct lh_pipeline *p, int64_t drain_ms);
/* Waits for the thread started by lh_pipeline_start. */
void lh_pipeline_join(struct lh_pipeline *p);
/* Flushes the sinks, closes consumers, frees everything (joins first). */
void lh_pipeline_destroy(struct lh_pipeline *p);

/* Takes ownership of s; it replaces the current stages before the next batch. */
void lh_pipeline_set_stages(struct lh_pipeline *p, struct lh_stages *s);

/* 0 when events flow; else -1 with why appended to reason (a sink down, a
 * sink whose flush fails (the archive's uploads), the DLQ unavailable, the
 * bus failing, stopped). */
int lh_pipeline_status(struct lh_pipeline *p, struct lh_buf *reason);

struct lh_pipeline_stats {
    uint64_t polled;             /* messages taken from the bus */
    uint64_t batches;            /* batches committed */
    uint64_t committed;          /* messages committed */
    uint64_t dead_letters;       /* messages produced to the DLQ */
    uint64_t sink_failures;      /* failed sink writes (each retry counts) */
    uint64_t stage_swaps;
    int paused;                  /* currently retrying a sink or the DLQ */
};
void lh_pipeline_stats(struct lh_pipeline *p, struct lh_pipeline_stats *out);

#endif
