/* backend.h - where queryd's questions are answered: one interface with an
 * implementation per kind of storage, chosen per time range by the planner
 * (plan.h):
 *
 *   store       the embedded log store (lh/store.h), read-only   backend_store.c
 *   opensearch  daily indices logs-<tenant>-YYYY.MM.DD           backend_opensearch.c
 *   archive     hourly Parquet / NDJSON objects (lh/archive.h)    backend_archive.c
 *
 * A backend answers for one tenant and one time range at a time: newest-
 * first pages resumed after a position, match counts up to a cap, time
 * histograms and top values. Every call blocks and runs on a worker thread
 * (libuv's pool); implementations are thread-safe (any number of calls at
 * once on one backend). Calls give up with LH_ETIMEDOUT once deadline_ns
 * passed.
 *
 * Errors: LH_EINVAL means this backend cannot answer that query as asked;
 * the message then starts with the JSON path of the request part at fault
 * ("query.filters[1].operator: ...") and becomes a 400. LH_ETIMEDOUT,
 * LH_EUNAVAIL (the backend is down or refused) become 503; LH_ENOMEM 503. */
#ifndef LH_QUERYD_BACKEND_H
#define LH_QUERYD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lh/archive.h"
#include "lh/arena.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/event.h"
#include "lh/store.h"
#include "query.h"

struct lh_backend;

/* One backend's share of a request. */
struct lh_bquery {
    const char *tenant;
    const struct lh_query *q;        /* full text and filters (start/end below rule) */
    int64_t start_ns, end_ns;        /* this backend's part of the range; end 0: open */
    size_t limit;                    /* search: hits per page */
    const struct lh_store_pos *after;/* search: resume after this position (NULL: newest) */
    uint64_t total_cap;              /* search: count matches up to this (0: no count) */
    int64_t deadline_ns;             /* lh_time_mono_ns() limit (0: none) */
    struct lh_qprogress *progress;   /* q->progress: report and obey cancel (may be NULL) */
};

struct lh_bresult {
    struct lh_event *events;         /* newest first (timestamp desc, id desc) */
    size_t n;
    int more;                        /* more matches follow events[n-1] */
    uint64_t total;                  /* with total_cap: matches counted */
    int total_lower_bound;           /* total stopped at the cap: at least that many */
    struct lh_arena arena;           /* owns events when the backend built them */
    void *owner;                     /* or: an object owning them, freed by free_owner */
    void (*free_owner)(void *owner);
};

void lh_bresult_free(struct lh_bresult *r);

struct lh_btop_entry {
    const char *value;
    uint64_t count;
};

struct lh_btop {
    struct lh_btop_entry *entries;   /* count desc, then value asc */
    size_t n;
    uint64_t other;                  /* matches with a value not in entries */
    uint64_t missing;                /* matches without the field */
    struct lh_arena arena;           /* owns entries and values */
};

void lh_btop_free(struct lh_btop *t);

struct lh_backend_ops {
    const char *name;                /* "store", "opensearch": the `tiers` of responses */
    /* A page of at most q->limit hits (and the count, with total_cap). */
    int (*search)(struct lh_backend *b, const struct lh_bquery *q, struct lh_bresult *out,
                  struct lh_err *err);
    /* Adds the matches per bucket of bucket_ns into counts[0..n): bucket i
     * starts at first_ns + i * bucket_ns (first_ns is a multiple of
     * bucket_ns; q->start_ns/end_ns lie inside the buckets). */
    int (*histogram)(struct lh_backend *b, const struct lh_bquery *q, int64_t first_ns,
                     int64_t bucket_ns, size_t n, uint64_t *counts, struct lh_err *err);
    /* The most frequent values of a field (at least top->size of them when
     * there are as many), with what is left in other and missing. */
    int (*top)(struct lh_backend *b, const struct lh_bquery *q, const struct lh_qtop *top,
               struct lh_btop *out, struct lh_err *err);
    /* 0 when queries can be answered; else why (for /readyz). */
    int (*ready)(struct lh_backend *b, struct lh_err *err);
    void (*destroy)(struct lh_backend *b);
};

struct lh_backend {
    const struct lh_backend_ops *ops;
    void *ctx;                       /* the implementation's */
};

void lh_backend_destroy(struct lh_backend *b);   /* NULL-safe */

/* The embedded store, opened read-only on cfg->dir (which may not exist
 * yet: then it has no data). */
int lh_backend_store_open(const struct lh_store_config *cfg, struct lh_backend **out,
                          struct lh_err *err);

/* The store predicate operator for a filter (field names are the API's). */
enum lh_store_op lh_backend_store_op(const struct lh_qfilter *f);

/* OpenSearch (or Elasticsearch) over HTTP; the indexer writes the indices
 * (indexer/sink_opensearch.h). Field types match lh/conf.h. */
struct lh_backend_os_config {
    struct lh_strlist urls;          /* base URLs of nodes; requests rotate over them */
    char *index_prefix;              /* "logs": indices <prefix>-<tenant>-YYYY.MM.DD */
    int64_t timeout_ms;              /* one request (bounded by the query's deadline too) */
    int64_t connect_timeout_ms;
    int64_t max_connections;         /* HTTP clients kept for concurrent queries */
    char *username, *password;       /* basic auth */
    char *api_key;                   /* Authorization: ApiKey <api_key> */
    char *ca_file, *cert_file, *key_file;
};

/* urls, index_prefix, timeout, connect_timeout, max_connections, username,
 * password, api_key, ca, cert, key. */
extern const struct lh_opt lh_backend_os_opts[];

/* Creates the OpenSearch backend (no request is made until the first
 * query or ready). cfg is copied. */
int lh_backend_opensearch_open(const struct lh_backend_os_config *cfg, struct lh_backend **out,
                               struct lh_err *err);

/* The archive (a directory or S3, as the indexer writes it); cfg is copied.
 * Queries read the objects of each hour of their range (backend_archive.c). */
int lh_backend_archive_open(const struct lh_archive_config *cfg, struct lh_backend **out,
                            struct lh_err *err);

#endif
