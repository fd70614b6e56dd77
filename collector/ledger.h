/* ledger.h - the collector's rows of the delivery ledger (docs/ledger.md):
 * one `acked` row per (host, file) of an accepted batch, produced to the bus
 * in the same call as the batch's events (key = host, header type=ledger),
 * so a batch answered 200 always has its rows on the bus.
 *
 * Pure functions of the decoded batch; any thread. */
#ifndef LH_COLLECTOR_LEDGER_H
#define LH_COLLECTOR_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "lh/buf.h"

struct lh_cledger_entry {
    const char *host;          /* the events' host (the bus key); "" when none */
    size_t off, len;           /* the row's bytes in the output buffer */
};

/* Appends one acked row per distinct (host, file) of b's events to out
 * (batch_hex: the batch UUID as 32 hex digits) and returns in *entries
 * (malloc'd, the caller frees) where each is. The records of a row are
 * counted here; the agent's own counters of the file (b->files[] by path)
 * ride along. A batch without events gives no row. 0 or LH_ENOMEM. */
int lh_cledger_build(const struct lh_ingest_batch *b, const char *tenant, const char *batch_hex,
                     int64_t received_ns, struct lh_buf *out, struct lh_cledger_entry **entries,
                     size_t *n);

#endif
