/* sink_opensearch.h - the indexer's OpenSearch / Elasticsearch sink: events
 * go to daily indices `<prefix>-<tenant>-YYYY.MM.DD` through the `_bulk` API.
 *
 * What it does (see sink.h for the write contract):
 *   - Installs an index template (`PUT _index_template/<name>`) with a strict
 *     mapping before the first write: keywords for the identifying fields,
 *     `message` and `raw` as text, `timestamp` as date_nanos, and
 *     custom_metadata as `flat_object` on OpenSearch (2.7+) or `flattened` on
 *     Elasticsearch (the flavour and version come from `GET /`).
 *   - Writes each event with the `create` op and `_id` = event id. A 409
 *     version conflict means the document is already there (a batch handed
 *     again after a failure): counted as a duplicate, never rewritten.
 *   - Cuts a batch into bulk bodies of at most bulk_max_bytes (one larger
 *     document goes alone), optionally gzips them, and sends up to
 *     `concurrency` at once over kept-alive connections.
 *   - Reads every item of every response. Items refused with 429 / 5xx (or a
 *     cluster-level refusal such as a read-only block) are resent alone,
 *     with backoff, until retry_timeout; then write returns LH_EUNAVAIL.
 *     Items refused for good (400 mapping errors, an immense term, 413) go
 *     into the report with the server's reason. A whole request refused as
 *     too large (413) or unparsable (400) is cut in halves and resent, down
 *     to single documents, so one bad document never holds the others back.
 *     A whole request refused with 429 (a saturated node) is resent in
 *     halves after a backoff, until retry_timeout, then LH_EFULL. A
 *     connection failure or a 5xx for the whole request returns LH_EUNAVAIL
 *     at once (after the other requests of that round finished): whatever
 *     was not acknowledged is written again when the pipeline hands the
 *     batch again, and what was is then counted as a duplicate.
 *   - write adds to the report it is given (it does not reset it). It
 *     blocks: at most retry_timeout plus one request timeout.
 *
 * Threads: write, flush and destroy from the one pipeline thread. ready and
 * lh_sink_opensearch_setup may be called from any thread (they use their
 * own connection, under a lock). The building blocks at the end are pure
 * functions, safe anywhere. */
#ifndef LH_INDEXER_SINK_OPENSEARCH_H
#define LH_INDEXER_SINK_OPENSEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/event.h"
#include "lh/metrics.h"
#include "sink.h"

/* The index template's settings (the `template:` section). */
struct lh_os_template_config {
    int install;                 /* PUT the template before the first write */
    char *name;                  /* "loghaul-logs" */
    int64_t priority;            /* template priority (higher wins over others) */
    int64_t shards;              /* index.number_of_shards */
    int64_t replicas;            /* index.number_of_replicas */
    char *refresh_interval;      /* "5s" */
    char *codec;                 /* "best_compression"; "" leaves the server default */
    int translog_async;          /* index.translog.durability: async */
    int date_nanos;              /* timestamp as date_nanos (else date, ms precision) */
};

struct lh_sink_opensearch_config {
    struct lh_strlist urls;      /* base URLs of nodes; requests rotate over them */
    char *index_prefix;          /* "logs" */
    uint64_t bulk_max_bytes;     /* uncompressed bytes per bulk body */
    int64_t concurrency;         /* bulk requests in flight at once */
    int gzip;                    /* Content-Encoding: gzip request bodies */
    int64_t gzip_level;          /* lh_codec gzip level (0-1 ISA-L, 2-12 libdeflate) */
    int64_t timeout_ms;          /* one bulk request, response included */
    int64_t connect_timeout_ms;
    int64_t retry_timeout_ms;    /* how long write retries refused items */
    int64_t backoff_base_ms, backoff_cap_ms;
    int64_t ready_timeout_ms;    /* GET /_cluster/health for ready() */
    char *username, *password;   /* basic auth */
    char *api_key;               /* "Authorization: ApiKey <api_key>" */
    char *ca_file, *cert_file, *key_file;   /* TLS: CA to verify, client cert (mTLS) */
    struct lh_os_template_config template;
};

/* urls, index_prefix, bulk_max_bytes, concurrency, gzip, gzip_level, timeout,
 * connect_timeout, retry_timeout, backoff_base, backoff_cap, ready_timeout,
 * username, password, api_key, ca, cert, key, template{...}. */
extern const struct lh_opt lh_sink_opensearch_opts[];

/* Creates the sink (no network traffic yet: the server is contacted by
 * lh_sink_opensearch_setup, ready or the first write). cfg is copied.
 * metrics may be NULL; else the sink registers its series in it, labelled
 * sink="<name>" (name: the instance name, e.g. "opensearch"), and metrics
 * must outlive the sink. Returns 0 and sets *out (free with
 * lh_sink_destroy), or LH_EINVAL (bad setting, message names it) or
 * LH_ENOMEM. */
int lh_sink_opensearch_create(const struct lh_sink_opensearch_config *cfg, const char *name,
                              struct lh_metrics *metrics, struct lh_sink **out,
                              struct lh_err *err);

/* Asks the server what it is (GET /) and installs the index template. Done
 * once; write and ready call it when it has not succeeded yet. Returns 0,
 * LH_EUNAVAIL (server unreachable or answering 5xx) or LH_EINVAL (the
 * server refused the template; the message has its reason). */
int lh_sink_opensearch_setup(struct lh_sink *s, struct lh_err *err);

/* ---- building blocks (exposed for tests and the benchmark) --------------- */

enum lh_os_flavour {
    LH_OS_OPENSEARCH = 0,
    LH_OS_ELASTICSEARCH,
};

/* What GET / said. */
struct lh_os_server {
    enum lh_os_flavour flavour;
    int major, minor;
};

/* Parses the body of GET / ({"version":{"distribution":"opensearch",
 * "number":"2.19.5"},...}; no distribution means Elasticsearch). */
int lh_os_parse_root(const char *body, size_t len, struct lh_os_server *out,
                     struct lh_err *err);

/* Appends the index template JSON for index pattern "<prefix>-*". */
int lh_os_template_json(const struct lh_os_template_config *t, const char *prefix,
                        const struct lh_os_server *srv, struct lh_buf *out);

/* Writes "<prefix>-<tenant>-YYYY.MM.DD" (UTC day of ts_ns) into out. The
 * tenant is lowercased, any byte outside [a-z0-9_-] becomes '_', it is cut
 * at 64 bytes, and a NULL or empty tenant is "default". Returns the length,
 * or LH_ETOOBIG when size is too small. */
#define LH_OS_INDEX_MAX 160
int lh_os_index_name(const char *prefix, const char *tenant, int64_t ts_ns, char *out,
                     size_t size);

/* Appends one bulk item to out: the action line
 *   {"create":{"_index":"...","_id":"..."}}\n
 * and the document line (fields as in lh_event, absent ones omitted,
 * timestamp RFC 3339 with nanoseconds, level always present, k8s nested,
 * custom_metadata an object whose repeated keys keep their first value),
 * ending in '\n'. date_nanos: 9 fractional digits, else 3. Returns 0 or
 * LH_ENOMEM (out unchanged). */
int lh_os_bulk_item(struct lh_buf *out, const char *prefix, const struct lh_event *ev,
                    int date_nanos);

/* Cutting a batch into bodies. Items are j = a..n-1, item j being
 * i = idx ? idx[j] : j, its bytes off[i]..off[i+1] (so idx picks a subset
 * in order, e.g. the items left to resend). Returns the end (exclusive) of
 * the body starting at a: items are added while the body stays within
 * max_bytes and within lim[i] of every item in it (lim may be NULL; it is
 * lowered after a 413 to halve bodies), and while the body is still below
 * target_bytes; at least one item, so one larger document goes alone. */
size_t lh_os_bulk_cut(const size_t *off, const size_t *idx, const uint64_t *lim, size_t a,
                      size_t n, uint64_t max_bytes, uint64_t target_bytes);

/* The body size that cuts `total` bytes into even bodies of at most
 * max_bytes, as many as a multiple of concurrency (12 MiB at 5 MiB and
 * concurrency 2: 4 x 3 MiB, not 5 + 5 + 2, so that no request runs alone at
 * the end of a batch), and not below LH_OS_MIN_BODY. */
#define LH_OS_MIN_BODY (256 * 1024)
uint64_t lh_os_bulk_target(uint64_t total, uint64_t max_bytes, unsigned concurrency);

/* What to do with one item of a bulk response. */
enum lh_os_outcome {
    LH_OS_CREATED = 0,      /* 200/201: durable */
    LH_OS_DUPLICATE,        /* 409 version conflict: the same _id is already there */
    LH_OS_RETRY,            /* 429, 5xx, or a cluster-level refusal: send again later */
    LH_OS_REJECT,           /* 400/413 about this document: never accepted */
};

/* One item of a bulk response. The spans point into the response body
 * (raw JSON string content, escapes not decoded); length 0 when absent. */
struct lh_os_item {
    int status;
    enum lh_os_outcome outcome;
    size_t type_off, type_len;            /* error.type */
    size_t reason_off, reason_len;        /* error.reason */
    size_t cause_type_off, cause_type_len;        /* error.caused_by.type */
    size_t cause_reason_off, cause_reason_len;    /* error.caused_by.reason */
};

/* The outcome for an item status and error type (type may be NULL). */
enum lh_os_outcome lh_os_classify(int status, const char *type, size_t type_len);

/* Parses a bulk response ({"errors":..,"items":[{"<op>":{"status":..,
 * "error":{...}}},...]}; other members are skipped) into items[0..n).
 * Returns 0, or LH_EINVAL when the body is not such a response or holds
 * another number of items than n. */
int lh_os_bulk_parse(const char *body, size_t len, struct lh_os_item *items, size_t n,
                     struct lh_err *err);

/* Writes "type: reason (caused by ctype: creason)" for an item, decoded,
 * into out (cut to size). */
void lh_os_item_reason(const char *body, const struct lh_os_item *it, char *out, size_t size);

/* The metrics class of a rejected item's error type: "mapping",
 * "invalid", "too_large" or "other". */
const char *lh_os_reject_class(int status, const char *type, size_t type_len);

#endif
