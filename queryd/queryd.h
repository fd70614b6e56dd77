/* queryd.h - loghaul-queryd: the search API over the hot store (the
 * embedded store or OpenSearch) and the archive, each answering the part of
 * a query's time range its tier holds.
 *
 *   POST /v1/logs/search      query.h's body -> {"total_hits", "total_hits_relation",
 *                             "next_cursor", "logs": [...], "tiers", "took_ms"}
 *   POST /v1/logs/aggregate   counts per time bucket and top values of fields
 *   GET  /v1/logs/tail        server-sent events of new matches (tail.h)
 *   /v1/logs/search/jobs      searches that outlast a request (jobs.h)
 *
 * Every request carries `Authorization: Bearer <token>`; the token names
 * the tenant (config `tenants:`), and every backend query is restricted to
 * it. Queries run on libuv's pool with a time limit; a bad request gets a
 * 400 naming the part at fault ({"error":{"code","message","field"}}), a
 * cursor of another tenant a 403, an exhausted time limit or a backend
 * that is down a 503 with Retry-After.
 *
 * lh_queryd_ops is the daemon (main.c). The functions below run queryd on
 * an HTTP server of the caller's (the tests do): create registers the
 * routes, shutdown (loop thread) ends tails and closes queryd's handles,
 * destroy (after the loop ended) frees. */
#ifndef LH_QUERYD_H
#define LH_QUERYD_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lh/conf.h"
#include "lh/daemon.h"
#include "lh/http.h"
#include "jobs.h"
#include "lh/metrics.h"
#include "query.h"
#include "tail.h"

extern const struct lh_daemon_ops lh_queryd_ops;

struct lh_queryd_tenant {
    char *name;
    struct lh_strlist tokens;        /* bearer tokens of this tenant */
};

struct lh_queryd_cursor_config {
    char *key;                       /* HMAC key that signs cursors (>= 16 bytes) */
    struct lh_strlist previous_keys; /* still accepted (key rotation) */
    int64_t ttl_ms;                  /* cursors older than this are refused */
};

struct lh_queryd_limits {
    int64_t default_limit, max_limit;
    uint64_t max_request_bytes;
    uint64_t max_text_bytes;
    int64_t max_terms, max_filters, max_values;
    int64_t default_range_ms;
    int64_t max_buckets;
    int64_t timeout_ms;              /* one query */
    uint64_t max_response_bytes;     /* a page is cut short past this (next_cursor goes on) */
    int64_t slow_query_ms;           /* logged at warn */
    int64_t max_concurrent;          /* queries running at once; more: 503 */
    int64_t total_hits_cap;          /* total_hits exact up to this, then "gte" */
};

enum lh_queryd_tier_type { LH_TIER_STORE = 0, LH_TIER_OPENSEARCH = 1, LH_TIER_ARCHIVE = 2 };

struct lh_queryd_tier {
    char *name;                      /* default: the type */
    int type;                        /* enum lh_queryd_tier_type */
    int64_t max_age_ms;              /* data of this age or newer; 0: all older */
    struct lh_store_config store;
    struct lh_backend_os_config opensearch;
    struct lh_archive_config archive;
};

struct lh_queryd_config {
    struct lh_daemon_common common;
    struct lh_conf_list tenants;     /* of struct lh_queryd_tenant */
    struct lh_queryd_cursor_config cursor;
    struct lh_queryd_limits limits;
    struct lh_qtail_config tail;
    struct lh_qjobs_config jobs;
    struct lh_conf_list tiers;       /* of struct lh_queryd_tier; none: one store tier */
};

extern const struct lh_opt lh_queryd_opts[];

/* Checks a loaded config beyond the option table. */
int lh_queryd_validate(const struct lh_queryd_config *cfg, struct lh_err *err);

struct lh_queryd;

/* Opens the tiers and registers the routes on srv. cfg must stay valid
 * until lh_queryd_reload replaced it or queryd was destroyed. metrics
 * (may be NULL) must outlive queryd. */
int lh_queryd_create(const struct lh_queryd_config *cfg, struct lh_http_server *srv,
                     struct lh_metrics *metrics, struct lh_queryd **out, struct lh_err *err);
/* Uses new tenants, limits, cursor keys and tail settings (tiers change
 * only with a restart). Loop thread. */
int lh_queryd_reload(struct lh_queryd *qd, const struct lh_queryd_config *cfg,
                     struct lh_err *err);
void lh_queryd_shutdown(struct lh_queryd *qd);
void lh_queryd_destroy(struct lh_queryd *qd);
/* /readyz: 0, or -1 with the reason appended. */
int lh_queryd_ready(struct lh_queryd *qd, struct lh_buf *reason);

#endif
