/* ledger.h - GET /v1/ledger: the delivery ledger's report (docs/ledger.md).
 *
 * Rows (lh/audit.h) come from where the indexer keeps them: the directory
 * of NDJSON files beside the store (<store dir>/.ledger) or the OpenSearch
 * index <index_prefix>.ledger. `indexed` is the actual number of events in
 * the hot store per host, file and hour of their receive time: the store's
 * top values of `file` per host and hour, or an OpenSearch composite
 * aggregation; an event deleted from the store shows as unexplained.
 *
 * Thread-safe: report may run on any number of threads at once. */
#ifndef LH_QUERYD_LEDGER_H
#define LH_QUERYD_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"

struct lh_queryd_tier;

struct lh_qledger_config {
    char *dir;                   /* rows (default: the first store tier's dir + /.ledger) */
    char *index;                 /* rows in OpenSearch (default <index_prefix>.ledger) */
    int64_t settle_ms;           /* a cell with rows newer than this is pending */
    int64_t archive_settle_ms;   /* the same for the archive figure */
    int archive;                 /* LH_QLEDGER_ARCHIVE_AUTO / _YES / _NO */
};

enum { LH_QLEDGER_ARCHIVE_AUTO = 0, LH_QLEDGER_ARCHIVE_YES, LH_QLEDGER_ARCHIVE_NO };

/* dir, index, settle, archive_settle, archive. */
extern const struct lh_opt lh_qledger_opts[];

struct lh_qledger;

/* Finds the hot tier (the first store or opensearch tier) and the rows'
 * place. LH_EINVAL when there is no hot tier. */
int lh_qledger_open(const struct lh_qledger_config *cfg, const struct lh_queryd_tier *tiers,
                    size_t ntiers, struct lh_qledger **out, struct lh_err *err);
void lh_qledger_close(struct lh_qledger *l);   /* NULL-safe */

struct lh_qledger_req {
    const char *tenant;
    int64_t from, to;            /* unix seconds; windows starting in [from, to); to 0: open */
    const char *host, *file;     /* NULL: all */
    int64_t settle_ms;           /* -1: the configured one; 0 also refreshes OpenSearch */
    int64_t archive_settle_ms;   /* -1: the configured one */
    int64_t deadline_ns;         /* lh_time_mono_ns() limit, 0: none */
};

/* Appends the JSON report to out. 0, or LH_EUNAVAIL / LH_ETIMEDOUT /
 * LH_ENOMEM / LH_EIO with err set. */
int lh_qledger_report(struct lh_qledger *l, const struct lh_qledger_req *r, struct lh_buf *out,
                      struct lh_err *err);

#endif
