/* ingest.h - decodes ingest request bodies into events.
 *
 * Two body forms share one record schema:
 *   POST /v1/logs/ingest         {"shipper_metadata": {...}, "log_records": [ {...}, ... ]}
 *   POST /v1/logs/ingest/ndjson  one record object per line
 * A record: "timestamp" (RFC 3339 string or epoch number; default: the
 * receive time), "raw_message" and/or "message" (one is required),
 * "stream", "container_id", and optionally already-structured fields:
 * "level", "service", "host", "trace_id", "span_id", "user_id", "file",
 * "k8s": {"namespace","pod","container"}, "metadata": {flat or nested
 * object; nested keys are joined with '.'}. Unknown keys are ignored (so
 * newer agents work with older collectors) and counted.
 *
 * The first problem ends the decode with an error naming the field path
 * and record index ("log_records[3].timestamp: ..."), for the 400 answer.
 * The decoder runs on any thread; it owns nothing after it returns: the
 * events and their strings live in the caller's arena. */
#ifndef LH_COLLECTOR_INGEST_H
#define LH_COLLECTOR_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/event.h"

struct lh_ingest_limits {
    size_t max_records;       /* records per batch */
    size_t max_field_bytes;   /* bytes of one string value (after unescaping) */
    size_t max_meta_keys;     /* metadata keys per record */
    unsigned max_depth;       /* JSON nesting */
    int utf8_repair;          /* 1: invalid UTF-8 becomes U+FFFD; 0: 400 */
};

/* Per-file counts an agent reports in shipper_metadata.files[] (the
 * ledger: see docs/ledger.md). */
struct lh_ingest_file_stats {
    const char *path;
    int64_t read, acked, dropped, sampled;
    int64_t records;           /* the agent's count of this file's records in the batch, or -1 */
};

struct lh_ingest_batch {
    struct lh_event *events;   /* n events, in the arena */
    size_t n;
    const char *host;          /* shipper_metadata.host_id */
    const char *cluster;       /* shipper_metadata.cluster_name */
    const char *agent_version;
    const char *region;
    const char *agent_boot;    /* shipper_metadata.agent_boot: the agent process's UUID */
    struct lh_ingest_file_stats *files;
    size_t nfiles;
    size_t unknown_keys;       /* ignored keys, for a metric */
};

/* What was wrong, for the 400 body. */
struct lh_ingest_error {
    char field[128];           /* "log_records[3].timestamp", or "" for the body */
    long index;                /* record index, -1 when not about a record */
    char message[256];
};

/* Context the collector adds to every event. */
struct lh_ingest_context {
    const char *tenant;
    const uint8_t *batch_uuid; /* 16 bytes: ids are derived from it */
    int64_t received_ns;
    const char *default_host;  /* NDJSON: host when a record names none */
};

/* Decodes a JSON ingest body. 0, LH_EINVAL (error filled), LH_ETOOBIG
 * (too many records / too long a field: the 413 cases), LH_ENOMEM. */
int lh_ingest_decode_json(const char *body, size_t len, const struct lh_ingest_limits *lim,
                          const struct lh_ingest_context *ctx, struct lh_arena *arena,
                          struct lh_ingest_batch *out, struct lh_ingest_error *error);

/* Decodes an NDJSON body (blank lines skipped). */
int lh_ingest_decode_ndjson(const char *body, size_t len, const struct lh_ingest_limits *lim,
                            const struct lh_ingest_context *ctx, struct lh_arena *arena,
                            struct lh_ingest_batch *out, struct lh_ingest_error *error);

#endif
