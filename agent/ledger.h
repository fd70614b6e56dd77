/* ledger.h - loghaul-agent's per-file accounting: lines read, lines
 * acknowledged, lines dropped by reason, bytes lost in loss windows, and the
 * tail's error counters. It is the source of the agent's file metrics.
 *
 * Keyed by the source path (the path a glob found, so a rotated file is
 * charged to the name it was tailed under). Totals over every file ever seen
 * are kept apart from the per-file rows, so retiring a row (its file is gone
 * and fully acknowledged) keeps the totals exact while bounding memory.
 *
 * Thread-safety: every function takes an internal mutex, so the loop thread
 * may count while the admin thread renders /metrics. Strings passed in are
 * copied. */
#ifndef LH_AGENT_LEDGER_H
#define LH_AGENT_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"

struct lh_ledger;

/* Why lines were dropped. The shipper (sampling, a full disk buffer) adds
 * its own reasons to the same table through lh_ledger_drop. */
#define LH_DROP_TRUNCATED  "truncated"   /* rest of an over-long line (counted in bytes too) */

/* Loss-window reasons (bytes that existed but could not be read). */
#define LH_LOSS_TRUNCATED  "truncated"   /* file shrank before its end was read (copytruncate race) */
#define LH_LOSS_DELETED    "deleted"     /* file gone before it was read to the end */

/* Error reasons counted by lh_ledger_error. */
#define LH_TAILERR_PERMISSION  "permission_denied"
#define LH_TAILERR_NOT_REGULAR "not_regular_file"
#define LH_TAILERR_OPEN        "open_failed"
#define LH_TAILERR_READ        "read_failed"
#define LH_TAILERR_CHECKPOINT  "checkpoint_failed"
/* Line-quality counters (lh_ledger_flag). */
#define LH_FLAG_INVALID_UTF8   "invalid_utf8"
#define LH_FLAG_BINARY         "binary"
#define LH_FLAG_SPLIT          "split"
#define LH_FLAG_TRUNCATED      "truncated"
#define LH_FLAG_PARSE_ERROR    "parse_error"
#define LH_FLAG_NO_NEWLINE     "no_newline"

/* A snapshot of one file's row (or of the totals, with file = NULL). */
struct lh_ledger_file {
    uint64_t lines_read;       /* physical lines turned into records */
    uint64_t lines_acked;      /* of those, acknowledged by the collector */
    uint64_t lines_dropped;    /* all reasons */
    uint64_t bytes_read;
    uint64_t bytes_dropped;    /* read but not shipped (truncated long lines) */
    uint64_t bytes_lost;       /* loss windows: never read */
    uint64_t loss_windows;
};

/* One loss window as logged: bytes [start, end) of path were never read. */
struct lh_loss_window {
    char path[512];
    char reason[32];
    uint64_t start, end;
};

/* NULL when out of memory. */
struct lh_ledger *lh_ledger_create(void);
void lh_ledger_destroy(struct lh_ledger *l);   /* NULL-safe */

/* The ledger's boot id (32 hex digits, random at create): the counters are
 * cumulative since then, so the delivery ledger (docs/ledger.md) keeps
 * the maxima per boot. Constant; no lock needed. */
const char *lh_ledger_boot(const struct lh_ledger *l);

void lh_ledger_read(struct lh_ledger *l, const char *file, uint64_t lines, uint64_t bytes);
void lh_ledger_acked(struct lh_ledger *l, const char *file, uint64_t lines);
/* lines and/or bytes dropped for reason (a short constant word). */
void lh_ledger_drop(struct lh_ledger *l, const char *file, const char *reason, uint64_t lines,
                    uint64_t bytes);
/* Records a loss window; the last 64 are kept for lh_ledger_loss_windows. */
void lh_ledger_loss(struct lh_ledger *l, const char *file, const char *reason, uint64_t start,
                    uint64_t end);
void lh_ledger_error(struct lh_ledger *l, const char *reason);
void lh_ledger_flag(struct lh_ledger *l, const char *flag, uint64_t n);

/* Drops the per-file row of file (totals are kept). */
void lh_ledger_retire(struct lh_ledger *l, const char *file);

/* Snapshot of file's row (file = NULL: totals). 0, or LH_ENOTFOUND. */
int lh_ledger_get(struct lh_ledger *l, const char *file, struct lh_ledger_file *out);
/* Lines dropped for reason (file = NULL: all files). */
uint64_t lh_ledger_dropped(struct lh_ledger *l, const char *file, const char *reason);
uint64_t lh_ledger_errors(struct lh_ledger *l, const char *reason);
uint64_t lh_ledger_flags(struct lh_ledger *l, const char *flag);
/* Copies up to max of the most recent loss windows, oldest first; returns the count. */
size_t lh_ledger_loss_windows(struct lh_ledger *l, struct lh_loss_window *out, size_t max);

/* Appends the ledger in Prometheus text format (names loghaul_agent_*). */
int lh_ledger_render(struct lh_ledger *l, struct lh_buf *out);

#endif
