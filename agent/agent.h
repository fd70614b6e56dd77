/* agent.h - loghaul-agent's core: tail -> batches -> shipper -> acks ->
 * checkpoint, on a libuv loop.
 *
 * Flow. The tail (tail.h) is polled on the loop thread when its inotify
 * descriptor is readable and on a timer. Each record is checked against the
 * sampling rule, masked if masking is on, and appended to the batch being
 * built (batch.h); a full or old batch is sealed, with each file's
 * identity and end offset (tail.h, lh_tail_file_ident), and handed to the
 * shipper thread (ship.h). When the shipper reports a batch durable, the
 * loop acknowledges its records to the tail in seq order, and the
 * checkpoint is saved at most every checkpoint_interval; it records the
 * last batch seq it includes.
 *
 * Write-ahead (buffer.write_ahead, the default). A batch is durable once it
 * is in the disk buffer, where the shipper writes every batch, in seq
 * order, before sending it; its file is deleted once the collector
 * acknowledged it and a saved checkpoint includes it. After a crash (kill
 * -9) the agent, before tailing, applies the ranges of the buffered batches
 * the checkpoint does not include yet to the checkpoint, so the tail
 * resumes after them, and the shipper sends them again with their UUIDs:
 * no line that was sent is read again into a new batch, and a line that
 * reaches the collector twice carries the same event id both times. Lines
 * read but not yet in a written batch were never sent and are read again.
 * Cost: one fsync'd file per batch (group-committed), see bench/.
 * Without write-ahead a batch is durable once a collector acknowledged it
 * (or it was spilled to the disk buffer, or dropped and counted), and a
 * crash re-sends up to checkpoint_interval worth of acknowledged lines in
 * new batches (at-least-once with visible duplicates). A clean stop
 * re-sends nothing either way.
 *
 * Sampling happens as batches are written to the disk buffer (ship.h):
 * past buffer.sample_at, TRACE/DEBUG/INFO lines are kept one in
 * buffer.sample_keep, past buffer.low_levels_max none of them; WARN and
 * above and lines of unknown level are kept until the buffer has no room at
 * all. Every line dropped is counted per file and reason in the ledger
 * (/metrics, shipper_metadata).
 *
 * Backpressure. While a collector is up but the batches waiting reach
 * ship.memory_batches, the tail is not polled: the files on disk are the
 * buffer. Applications are never slowed: files are read without locks.
 *
 * Own output. The agent refuses a configuration whose tail.include would
 * match its own log file, stderr (when it is a file), checkpoint or disk
 * buffer: it never ships its own logs (no echo loop).
 *
 * Reload (SIGHUP). lh_agent_reload validates a whole new configuration
 * (including TLS files and masking patterns) and refuses it, keeping the
 * old one, when anything is wrong. Applying it: the pending batch is sealed,
 * the shipper takes new endpoints/token/TLS (new connections re-read the
 * certificate files), batch, buffer and masking settings take effect at
 * once; a changed tail section recreates the tail once every batch in
 * flight is durable and the checkpoint saved, so no position is lost.
 *
 * Threads: every function is called on the loop thread (or, before the loop
 * runs and after it stopped, on the thread that owns it). */
#ifndef LH_AGENT_AGENT_H
#define LH_AGENT_AGENT_H

#include <stdint.h>

#include <uv.h>

#include "batch.h"
#include "buffer.h"
#include "ledger.h"
#include "ship.h"
#include "tail.h"
#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/mask.h"

struct lh_agent_mask {
    int enabled;                   /* scrub messages before they leave the host */
    struct lh_mask_config rules;
};

struct lh_agent_config {
    struct lh_tail_config tail;
    struct lh_batch_config batch;
    struct lh_ship_config ship;
    struct lh_dbuf_config buffer;
    struct lh_agent_mask mask;
    char *host_id;                 /* NULL: /etc/machine-id or the hostname */
    char *cluster_name;
    char *region;
    int64_t checkpoint_interval_ms;  /* [200 ms] */
};

/* The agent's sections and keys: tail, batch, ship, buffer, mask {enabled,
 * rules}, host_id, cluster_name, region, checkpoint_interval. */
extern const struct lh_opt lh_agent_opts[];

/* Every check lh_agent_create / lh_agent_reload make, without starting
 * anything (--check-config). own_log_file: the daemon's log file (NULL:
 * none), which the tail globs must not match. */
int lh_agent_config_check(const struct lh_agent_config *cfg, const char *own_log_file,
                          struct lh_err *err);

struct lh_agent;

/* Creates the agent on loop and starts tailing and shipping. cfg is
 * borrowed: it must stay valid until lh_agent_reload switched to another
 * one, or lh_agent_destroy (the daemon skeleton's rule). metrics (not
 * owned, may be NULL: the agent then keeps its own) gets the agent's series. */
int lh_agent_create(uv_loop_t *loop, const struct lh_agent_config *cfg,
                    struct lh_metrics *metrics, const char *own_log_file,
                    struct lh_agent **out, struct lh_err *err);

/* Validates cfg; on success applies it and keeps no pointer into the old
 * one. On failure nothing changes. */
int lh_agent_reload(struct lh_agent *a, const struct lh_agent_config *cfg,
                    const char *own_log_file, struct lh_err *err);

/* Graceful stop (SIGTERM): stops reading, seals the pending batch, lets the
 * shipper deliver what it holds in memory for up to timeout_ms, spills the
 * rest to the disk buffer, saves the checkpoint, then calls done(arg) on
 * the loop thread. */
void lh_agent_drain(struct lh_agent *a, int64_t timeout_ms, void (*done)(void *arg), void *arg);

/* Stops at once (batches in memory go to the disk buffer when they fit and
 * are not there yet, else their lines are read again at the next start),
 * saves the checkpoint and closes the loop handles; memory is freed once
 * the loop ran their close callbacks: run the loop until uv_run returns.
 * NULL-safe. */
void lh_agent_destroy(struct lh_agent *a);

/* /metrics: the agent's own registry when it keeps one, and the ledger
 * (metrics given to lh_agent_create are rendered by their owner).
 * /readyz: ready unless draining. */
int lh_agent_render_metrics(void *agent, struct lh_buf *out);
int lh_agent_ready(void *agent, struct lh_buf *reason);

struct lh_ledger *lh_agent_ledger(struct lh_agent *a);
struct lh_ship *lh_agent_ship(struct lh_agent *a);

struct lh_agent_stats {
    uint64_t batches;              /* sealed */
    uint64_t records;              /* added to batches */
    uint64_t masked;               /* replacements made */
    uint64_t acked_batches;        /* acknowledged to the tail (in order) */
    uint64_t pending;              /* sealed, not yet durable */
    uint64_t checkpoints;          /* saves */
    uint64_t reloads;
    int paused;                    /* backpressure: the tail is not polled now */
};
void lh_agent_get_stats(const struct lh_agent *a, struct lh_agent_stats *out);

#endif
