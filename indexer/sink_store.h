/* sink_store.h - the indexer's sink into the embedded store (lh/store.h).
 *
 * This process is the store's one writer: the sink opens the directory in
 * LH_STORE_WRITE mode (queryd opens the same directory read-only).
 * lh_store_append is durable when it returns and skips ids already stored,
 * so a batch handed again after a failure leaves one copy (counted as
 * duplicates). An I/O failure (LH_EIO) or an allocation failure is returned
 * as LH_EUNAVAIL so the pipeline backs off and hands the batch again. The
 * only permanent rejects are events without an id or with an id longer than
 * LH_STORE_ID_MAX: they go to the report (and so to the dead-letter queue).
 *
 * Threads: write and destroy from the pipeline thread; ready from any. */
#ifndef LH_INDEXER_SINK_STORE_H
#define LH_INDEXER_SINK_STORE_H

#include "lh/err.h"
#include "lh/metrics.h"
#include "lh/store.h"
#include "sink.h"

/* Opens cfg->dir for writing (cfg is copied). metrics may be NULL (the
 * pipeline counts what the sink reports). LH_EUNAVAIL when another process
 * writes the directory. */
int lh_sink_store_create(const struct lh_store_config *cfg, const char *name,
                         struct lh_metrics *metrics, struct lh_sink **out, struct lh_err *err);

/* The store handle (for a process that also queries what it writes). */
struct lh_store *lh_sink_store_handle(struct lh_sink *s);

#endif
