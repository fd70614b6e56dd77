/* audit.h - the delivery ledger's rows and their arithmetic (docs/ledger.md).
 *
 * Rows are compact JSON objects, one per line in the embedded ledger files
 * and one document each in the OpenSearch ledger index:
 *
 *   acked     written by the collector for every (batch, host, file) of an
 *             accepted batch, produced to the bus in the same call as the
 *             batch's events (bus header type=ledger); the indexer stores it
 *             verbatim. records = events of that file in the batch as the
 *             collector counted them; read/acked/dropped/sampled/boot are the
 *             agent's cumulative per-boot counters (absent for clients that
 *             send no shipper_metadata.files).
 *   sampled, dlq, dropped, archived, replayed
 *             written by the indexer: the event indexes (ranges "0-3,7") of
 *             one collector batch and file that a sink sampled out, sent to
 *             the dead-letter queue, did not get (routing), archived in an
 *             uploaded object, or wrote when they came back from the DLQ
 *             (`loghaul dlq replay`; they no longer count as dead-lettered).
 *
 * Folding is idempotent: an acked row is keyed by (batch, host, file) and
 * the last one wins (every copy is the same); indexer rows are unions of
 * index sets per (kind, batch, host, file, sink class), so a replay that
 * cuts the bus differently still counts every event once.
 *
 * Windows are the hour (unix seconds of its start) of the collector's
 * receive time, which every event carries as received_ns.
 *
 * Not thread-safe: one fold per thread. */
#ifndef LH_AUDIT_H
#define LH_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"
#include "lh/err.h"

#define LH_AUDIT_HEADER "type"       /* bus header naming a ledger message... */
#define LH_AUDIT_HEADER_VALUE "ledger"   /* ...with this value */
#define LH_AUDIT_WINDOW_SEC 3600

/* Hour start (unix seconds) of a receive time in ns. */
int64_t lh_audit_window(int64_t received_ns);

/* Splits an event id "<32 hex>-<index>" into the batch hex (33 bytes with
 * the NUL) and the index. 0, or LH_EINVAL for another form. */
int lh_audit_split_id(const char *id, char batch[33], uint32_t *index);

/* What the collector knows of one file of one accepted batch. Counters of
 * the agent are -1 when it did not send them. */
struct lh_audit_acked {
    const char *batch;          /* 32 hex */
    const char *tenant, *host, *file, *boot;   /* boot may be NULL */
    int64_t window;
    int64_t records;            /* counted by the collector */
    int64_t agent_records;      /* the agent's own count of this batch, or -1 */
    int64_t read, acked, dropped, sampled;
};

/* Appends the acked row as one JSON object (no newline). */
int lh_audit_acked_json(const struct lh_audit_acked *a, struct lh_buf *out);

/* For an acked row as produced by the collector (json, len): its document
 * id "acked-<batch>-<16 hex of host, file>" into out, and the row with
 * ,"at":<at_ns> added into row. LH_EINVAL when it is not an acked row. */
int lh_audit_acked_stamp(const char *json, size_t len, int64_t at_ns, char out[96],
                         struct lh_buf *row);

enum lh_audit_kind {
    LH_AUDIT_ACKED = 0,
    LH_AUDIT_SAMPLED,
    LH_AUDIT_DLQ,
    LH_AUDIT_DROPPED,
    LH_AUDIT_ARCHIVED,
    LH_AUDIT_REPLAYED,           /* dead letters replayed and then written by the sink */
    LH_AUDIT_NKINDS
};

const char *lh_audit_kind_name(enum lh_audit_kind k);

/* An indexer row: the indexes idx[0..n) (ascending, no repeats) of one
 * batch and file. sink_type is the sink's implementation ("store",
 * "opensearch", "archive"); sink its instance name. at_ns: write time. */
struct lh_audit_row {
    enum lh_audit_kind kind;
    const char *tenant, *host, *file, *batch, *sink, *sink_type, *object;
    int64_t window;
    int64_t at_ns;
    const uint32_t *idx;
    size_t n;
};

/* Appends the row as one JSON object (no newline); indexes as ranges. */
int lh_audit_row_json(const struct lh_audit_row *r, struct lh_buf *out);

/* A document id for a row that is the same for the same content:
 * "<kind>-<batch>-<16 hex of a hash of host, file, sink, object, idx>". */
void lh_audit_row_id(const struct lh_audit_row *r, char out[96]);

/* ---- building rows -------------------------------------------------------- */

/* Gathers events into indexer rows: one per (kind, sink, batch, tenant, host,
 * file). Strings are borrowed from the events and must stay valid until
 * lh_audit_rows_emit (or reset). One thread. */
struct lh_audit_rows;

struct lh_event;

/* NULL when out of memory. */
struct lh_audit_rows *lh_audit_rows_create(void);
void lh_audit_rows_destroy(struct lh_audit_rows *r);   /* NULL-safe */
void lh_audit_rows_reset(struct lh_audit_rows *r);
/* Adds ev (its batch and index from its id; events with ids of another form
 * are skipped: 0) to the row of (kind, sink). LH_ENOMEM. */
int lh_audit_rows_add(struct lh_audit_rows *r, enum lh_audit_kind kind, const char *sink,
                      const char *sink_type, const struct lh_event *ev);
size_t lh_audit_rows_count(const struct lh_audit_rows *r);
/* Calls emit(arg, id, json, len) for every row (object, at_ns as in struct
 * lh_audit_row); stops at the first error and returns it. */
int lh_audit_rows_emit(struct lh_audit_rows *r, const char *object, int64_t at_ns,
                       int (*emit)(void *arg, const char *id, const char *json, size_t len),
                       void *arg);

/* ---- folding ------------------------------------------------------------ */

struct lh_audit_fold;

struct lh_audit_filter {
    const char *tenant;         /* required */
    int64_t from, to;           /* windows [from, to) in unix seconds; to 0: open */
    const char *host, *file;    /* NULL: all */
};

/* One (host, file, window). hot_* are the store/OpenSearch sink's figures,
 * arch_* the archive sink's. indexed is filled by the caller (the actual
 * count in the hot store). */
struct lh_audit_cell {
    const char *host, *file;    /* owned by the fold */
    int64_t window;
    uint64_t acknowledged;
    int64_t agent_records;      /* sum of the agent's own counts, -1 if none sent */
    uint64_t read, agent_acked, agent_dropped, agent_sampled;
    uint64_t hot_sampled, hot_dlq, hot_dropped;
    uint64_t archived, arch_sampled, arch_dlq, arch_dropped;
    int archive_seen;           /* any archive-sink row */
    uint64_t indexed;
    int64_t last_at_ns;         /* newest indexer write time of a row of the cell */
};

int lh_audit_fold_create(const struct lh_audit_filter *f, struct lh_audit_fold **out,
                         struct lh_err *err);
void lh_audit_fold_destroy(struct lh_audit_fold *f);

/* Adds one row (a JSON object; rows of other tenants, windows, hosts or
 * files are skipped). LH_EINVAL for a line that is not a row (the caller
 * counts and skips it), LH_ENOMEM. */
int lh_audit_fold_add(struct lh_audit_fold *f, const char *json, size_t len, struct lh_err *err);

/* The cells after every row was added (sorted by host, file, window).
 * Valid until destroy; the caller may set their `indexed`. */
struct lh_audit_cell *lh_audit_fold_cells(struct lh_audit_fold *f, size_t *n);

struct lh_audit_opts {
    int64_t now_ns;
    int64_t settle_ns;          /* a cell with a row newer than this is pending */
    int archive;                /* report the archive figure */
    int64_t archive_settle_ns;  /* same for the archive figure */
};

/* acknowledged - indexed - dead-lettered - sampled - dropped (hot sink). */
int64_t lh_audit_unexplained(const struct lh_audit_cell *c);
/* The same for the archive. */
int64_t lh_audit_archive_unexplained(const struct lh_audit_cell *c);

/* Appends the GET /v1/ledger answer (docs/ledger.md). Returns 1 when no
 * cell has an unexplained difference (ok), 0 otherwise, or LH_ENOMEM. */
int lh_audit_report_json(struct lh_audit_fold *f, const struct lh_audit_opts *o,
                         struct lh_buf *out);

#endif
