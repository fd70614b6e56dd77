/* sink.h - where the indexer writes events: one interface, one
 * implementation per destination beside it (sink_opensearch.c,
 * sink_store.c, sink_archive.c).
 *
 * The pipeline hands a sink a batch of processed events and commits its
 * bus position only after every sink returned 0 for it. A sink returns 0
 * when each event of the batch is either durable at the destination or
 * listed in the report as rejected for good (a mapping conflict, a
 * document too large): rejected events go to the dead-letter queue with
 * the reason. Any other failure (destination down, saturated) is returned
 * as LH_EUNAVAIL or LH_EFULL: the pipeline pauses consumption, backs off
 * and hands the same batch again. Writes are idempotent by event id, so a
 * batch written twice leaves one copy.
 *
 * Threads: one pipeline thread calls a sink; a sink may use threads of its
 * own inside write (parallel bulk requests). */
#ifndef LH_INDEXER_SINK_H
#define LH_INDEXER_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "lh/err.h"
#include "lh/event.h"
#include "lh/metrics.h"

struct lh_sink;

/* An event a sink will never accept, and why. */
struct lh_sink_reject {
    size_t index;            /* into the batch given to write */
    char reason[240];        /* "mapper_parsing_exception: failed to parse field [level]" */
};

struct lh_sink_report {
    struct lh_sink_reject *rejects;   /* owned by the report, see lh_sink_report_free */
    size_t nrejects, cap;
    uint64_t written;                 /* events made durable by this call */
    uint64_t duplicates;              /* events already present (same id) */
};

struct lh_sink_ops {
    const char *name;                 /* "opensearch", "store", "archive" */
    /* See the contract above. */
    int (*write)(struct lh_sink *s, const struct lh_event *evs, size_t n,
                 struct lh_sink_report *rep, struct lh_err *err);
    /* Finishes pending work (the archive closes its open objects). May be
     * NULL. Called periodically and at shutdown. */
    int (*flush)(struct lh_sink *s, struct lh_err *err);
    /* 0 when the destination is reachable (for /readyz). May be NULL. */
    int (*ready)(struct lh_sink *s, struct lh_err *err);
    void (*destroy)(struct lh_sink *s);
};

struct lh_sink {
    const struct lh_sink_ops *ops;
    void *ctx;                        /* owned by the implementation */
    char name[32];                    /* instance name for logs and metrics */
};

/* Adds a reject to rep (index, printf-style reason). LH_ENOMEM on failure. */
int lh_sink_report_reject(struct lh_sink_report *rep, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lh_sink_report_reset(struct lh_sink_report *rep);
void lh_sink_report_free(struct lh_sink_report *rep);

static inline int lh_sink_write(struct lh_sink *s, const struct lh_event *evs, size_t n,
                                struct lh_sink_report *rep, struct lh_err *err)
{
    return s->ops->write(s, evs, n, rep, err);
}

static inline int lh_sink_flush(struct lh_sink *s, struct lh_err *err)
{
    return s->ops->flush ? s->ops->flush(s, err) : 0;
}

static inline int lh_sink_ready(struct lh_sink *s, struct lh_err *err)
{
    return s->ops->ready ? s->ops->ready(s, err) : 0;
}

static inline void lh_sink_destroy(struct lh_sink *s)
{
    if (s)
        s->ops->destroy(s);
}

#endif
