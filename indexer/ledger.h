/* ledger.h - where the indexer keeps the delivery ledger's rows
 * (lh/audit.h, docs/ledger.md) so that queryd can read them:
 *
 *   dir         append-only NDJSON files <dir>/<start ns>-<pid>-<n>.ndjson
 *               (default <store dir>/.ledger beside the store sink's
 *               tenants), fdatasync'd by commit, rolled past 64 MiB
 *   opensearch  documents in the index <index_prefix>.ledger (not -ledger:
 *               the logs template's <prefix>-* pattern would make its strict
 *               mapping theirs), _id = the row's key, written with _bulk
 *               (a replay rewrites them); the index is created on the first
 *               commit with string fields as keywords
 *
 * The pipeline adds the rows of a batch, then commits them before it
 * commits its bus position: a crash replays rows, never loses one.
 *
 * Threads: one per writer (the pipeline thread; an archive sink's uploader
 * has a writer of its own). */
#ifndef LH_INDEXER_LEDGER_H
#define LH_INDEXER_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "lh/conf.h"
#include "lh/err.h"
#include "sink_opensearch.h"

struct lh_iledger_config {
    int type;                    /* LH_ILEDGER_AUTO, _DIR, _OPENSEARCH, _NONE */
    char *dir;                   /* type dir; default <first store sink dir>/.ledger */
    char *index;                 /* type opensearch; default <index_prefix>.ledger */
    int64_t retention_ms;        /* type dir: files last written longer ago are removed */
};

enum { LH_ILEDGER_AUTO = 0, LH_ILEDGER_DIR, LH_ILEDGER_OPENSEARCH, LH_ILEDGER_NONE };

/* type (auto|dir|opensearch|none), dir, index, retention. */
extern const struct lh_opt lh_iledger_opts[];

struct lh_iledger;

/* dir is created when missing. Whenever the writer starts a file, files of
 * dir not written for retention_ms (0: kept) are removed. */
int lh_iledger_open_dir(const char *dir, struct lh_iledger **out, struct lh_err *err);
void lh_iledger_set_retention(struct lh_iledger *l, int64_t retention_ms);
/* The OpenSearch cluster of os (urls, auth, TLS); rows go to index. */
int lh_iledger_open_opensearch(const struct lh_sink_opensearch_config *os, const char *index,
                               struct lh_iledger **out, struct lh_err *err);
void lh_iledger_close(struct lh_iledger *l);   /* NULL-safe; drops rows not committed */
/* "<dir>" or "opensearch index <index>", for logs. */
const char *lh_iledger_where(const struct lh_iledger *l);

/* Adds a row (one JSON object, no newline) with its document id. LH_ENOMEM. */
int lh_iledger_add(struct lh_iledger *l, const char *id, const char *json, size_t len);
/* Rows added since the last commit. */
size_t lh_iledger_pending(const struct lh_iledger *l);
/* Makes every added row durable. On failure the rows stay added: call
 * again (a row written twice folds to one). */
int lh_iledger_commit(struct lh_iledger *l, struct lh_err *err);
/* Forgets rows added since the last commit (a batch given up). */
void lh_iledger_discard(struct lh_iledger *l);

#endif
