/* collector.c - loghaul-collector: config, auth, the ingest handlers and
 * their worker-thread half (see collector.h). */
#include "collector.h"

#include <stdlib.h>
#include <string.h>

#include "dedupe.h"
#include "fallback.h"
#include "ingest.h"
#include "ledger.h"
#include "lh/audit.h"
#include "lh/bus.h"
#include "lh/codec.h"
#include "lh/log.h"
#include "lh/time.h"
#include "lh/uuid.h"
#include "ratelimit.h"

/* ---- configuration ---- */

struct tenant_config {
    char *name;
    struct lh_strlist tokens;       /* shipper tokens of this tenant */
    struct lh_strlist client_cns;   /* client certificate CNs mapped to it */
};

struct limits_config {
    uint64_t max_decompressed;
    int64_t max_ratio;
    int64_t max_records;
    uint64_t max_field_bytes;
    int64_t max_meta_keys;
    int64_t max_depth;
    int utf8;                       /* 0 repair, 1 reject */
};

struct rate_config {
    uint64_t tenant_bytes;          /* per second; 0 unlimited */
    int64_t tenant_records;
    uint64_t host_bytes;
    int64_t host_records;
    int64_t burst_ms;
    int64_t max_hosts;
};

struct dedupe_config {
    int64_t window_ms;
    int64_t max_entries;            /* 0 disables the cache */
};

struct collector_config {
    struct lh_daemon_common common;
    struct lh_conf_list tenants;    /* of struct tenant_config */
    struct limits_config limits;
    struct rate_config rate;
    struct dedupe_config dedupe;
    struct lh_bus_config bus;
    struct lh_fallback_config fallback;
};

static const struct lh_opt tenant_opts[] = {
    { LH_OPT_STR, "name", NULL, offsetof(struct tenant_config, name), "tenant name",
      LH_OPT_REQUIRED },
    { LH_OPT_STRLIST, "tokens", NULL, offsetof(struct tenant_config, tokens),
      "shipper tokens (X-Log-Shipper-Token or Authorization: Bearer)", LH_OPT_SECRET },
    { LH_OPT_STRLIST, "client_cns", NULL, offsetof(struct tenant_config, client_cns),
      "client certificate subject CNs that belong to this tenant (mTLS)" },
    { 0 }
};

static const struct lh_opt limits_opts[] = {
    { LH_OPT_SIZE, "max_decompressed", "64MiB",
      offsetof(struct limits_config, max_decompressed), "decompressed body bytes (413)" },
    { LH_OPT_INT, "max_ratio", "200", offsetof(struct limits_config, max_ratio),
      "decompressed/compressed ratio refused as a bomb (413)" },
    { LH_OPT_INT, "max_records", "100000", offsetof(struct limits_config, max_records),
      "records per batch (413)" },
    { LH_OPT_SIZE, "max_field_bytes", "1MiB", offsetof(struct limits_config, max_field_bytes),
      "bytes of one string field (413)" },
    { LH_OPT_INT, "max_meta_keys", "256", offsetof(struct limits_config, max_meta_keys),
      "metadata keys per record" },
    { LH_OPT_INT, "max_depth", "32", offsetof(struct limits_config, max_depth),
      "JSON nesting depth" },
    { LH_OPT_ENUM, "invalid_utf8", "repair", offsetof(struct limits_config, utf8),
      "invalid UTF-8 in strings: repair (U+FFFD) or reject (400)", 0, NULL, 0,
      "repair|reject" },
    { 0 }
};

static const struct lh_opt rate_opts[] = {
    { LH_OPT_SIZE, "tenant_bytes_per_sec", "0", offsetof(struct rate_config, tenant_bytes),
      "decompressed bytes per second per tenant (0: unlimited)" },
    { LH_OPT_INT, "tenant_records_per_sec", "0", offsetof(struct rate_config, tenant_records),
      "records per second per tenant (0: unlimited)" },
    { LH_OPT_SIZE, "host_bytes_per_sec", "0", offsetof(struct rate_config, host_bytes),
      "decompressed bytes per second per host (0: unlimited)" },
    { LH_OPT_INT, "host_records_per_sec", "0", offsetof(struct rate_config, host_records),
      "records per second per host (0: unlimited)" },
    { LH_OPT_DURATION, "burst", "2s", offsetof(struct rate_config, burst_ms),
      "bucket size, as time at the rate" },
    { LH_OPT_INT, "max_hosts", "100000", offsetof(struct rate_config, max_hosts),
      "hosts tracked at once" },
    { 0 }
};

static const struct lh_opt dedupe_opts[] = {
    { LH_OPT_DURATION, "window", "15m", offsetof(struct dedupe_config, window_ms),
      "how long a batch UUID is remembered" },
    { LH_OPT_INT, "max_entries", "200000", offsetof(struct dedupe_config, max_entries),
      "batch UUIDs remembered at most (0: no cache; ids still dedupe downstream)" },
    { 0 }
};

static const struct lh_opt collector_opts[] = {
    LH_DAEMON_COMMON_OPTS(struct collector_config, common),
    { .type = LH_OPT_LIST, .key = "tenants", .offset = offsetof(struct collector_config, tenants),
      .help = "tenants and their credentials", .sub = tenant_opts,
      .item_size = sizeof(struct tenant_config) },
    { .type = LH_OPT_SECTION, .key = "limits", .offset = offsetof(struct collector_config, limits),
      .help = "request limits", .sub = limits_opts },
    { .type = LH_OPT_SECTION, .key = "rate_limits",
      .offset = offsetof(struct collector_config, rate), .help = "token-bucket rate limits",
      .sub = rate_opts },
    { .type = LH_OPT_SECTION, .key = "dedupe", .offset = offsetof(struct collector_config, dedupe),
      .help = "idempotency cache for retried batches", .sub = dedupe_opts },
    { .type = LH_OPT_SECTION, .key = "bus", .offset = offsetof(struct collector_config, bus),
      .help = "where accepted records go", .sub = lh_bus_opts },
    { .type = LH_OPT_SECTION, .key = "fallback",
      .offset = offsetof(struct collector_config, fallback),
      .help = "local spool while a Kafka bus is unreachable", .sub = lh_fallback_opts },
    { 0 }
};

static int collector_validate(const void *p, struct lh_err *err)
{
    const struct collector_config *cfg = p;
    const struct tenant_config *t = cfg->tenants.items;
    if (cfg->tenants.n == 0)
        return lh_err_set(err, LH_EINVAL, "tenants: at least one tenant is needed");
    for (size_t i = 0; i < cfg->tenants.n; i++) {
        if (t[i].tokens.n == 0 && t[i].client_cns.n == 0)
            return lh_err_set(err, LH_EINVAL, "tenants[%zu] (%s): no tokens and no client_cns",
                              i, t[i].name);
        for (size_t k = 0; k < i; k++)
            for (size_t a = 0; a < t[i].tokens.n; a++)
                for (size_t b = 0; b < t[k].tokens.n; b++)
                    if (strcmp(t[i].tokens.v[a], t[k].tokens.v[b]) == 0)
                        return lh_err_set(err, LH_EINVAL,
                                          "tenants[%zu] (%s): a token also belongs to %s", i,
                                          t[i].name, t[k].name);
    }
    if (cfg->limits.max_records <= 0 || cfg->limits.max_depth <= 0 ||
        cfg->limits.max_ratio <= 0 || cfg->limits.max_meta_keys < 0)
        return lh_err_set(err, LH_EINVAL, "limits: values must be positive");
    return 0;
}

/* ---- state ---- */

struct metrics {
    struct lh_metrics *m;
    struct lh_counter *bytes_in, *bytes_decoded, *duplicates, *unknown_keys;
    struct lh_histogram *batch_records;
};

struct collector {
    struct lh_daemon *d;
    const struct collector_config *cfg;
    struct lh_bus *bus;
    struct lh_fallback *fallback;   /* NULL unless configured with a kafka bus */
    struct lh_dedupe *dedupe;
    struct lh_ratelimit *tenant_rl, *host_rl;
    struct lh_ingest_limits limits;
    struct metrics mx;
    int stopping;
};

/* One ingest request in flight: created on the loop thread, filled by the
 * worker, answered and freed on the loop thread. */
struct job {
    struct collector *c;
    int ndjson;
    /* Copies of what the worker needs: a reload frees the old config while
     * workers may still run, so they never look at it. */
    char tenant[128];
    char topic[256];
    struct lh_ingest_limits limits;
    uint64_t max_decompressed;
    unsigned max_ratio;
    struct lh_uuid uuid;
    int have_key;                    /* Idempotency-Key given (dedupe applies) */
    /* The key was acknowledged before for a body with other bytes (another
     * encoding, or other records): the worker compares the decoded body
     * with what the first batch held before answering. */
    int recheck;
    struct lh_dedupe_seen seen;      /* recheck: the first batch; else this one */
    enum lh_codec codec;
    char remote_host[64];
    struct lh_buf body;
    /* results */
    int duplicate;                   /* recheck found the same records */
    int status;
    int64_t retry_after_ms;
    char code[32];
    struct lh_buf answer;            /* JSON body of the response */
    uint64_t accepted;
};

/* ---- metrics ---- */

static void count_reject(struct collector *c, int status, const char *reason)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "status=\"%d\",reason=\"%s\"", status, reason);
    lh_counter_add(lh_counter_get(c->mx.m, "loghaul_collector_rejects_total",
                                  "requests refused, by status and reason", labels), 1);
}

static void count_received(struct collector *c, const char *tenant, uint64_t n)
{
    char labels[160], val[128];
    snprintf(labels, sizeof(labels), "%s", lh_metrics_label(val, sizeof(val), "tenant", tenant));
    lh_counter_add(lh_counter_get(c->mx.m, "logs_received_total",
                                  "records accepted (durable on the bus), per tenant", labels), n);
}

static int metrics_init(struct collector *c)
{
    struct metrics *x = &c->mx;
    x->m = lh_daemon_metrics(c->d);
    x->bytes_in = lh_counter_get(x->m, "loghaul_collector_bytes_in_total",
                                 "request body bytes as received (compressed)", NULL);
    x->bytes_decoded = lh_counter_get(x->m, "loghaul_collector_bytes_decoded_total",
                                      "request body bytes after decompression", NULL);
    x->duplicates = lh_counter_get(x->m, "loghaul_collector_duplicate_batches_total",
                                   "retried batches acknowledged from the idempotency cache",
                                   NULL);
    x->unknown_keys = lh_counter_get(x->m, "loghaul_collector_unknown_keys_total",
                                     "ignored keys in ingest bodies", NULL);
    static const double recs[] = { 1, 10, 100, 1000, 10000, 100000 };
    x->batch_records = lh_histogram_get(x->m, "loghaul_collector_batch_records",
                                        "records per accepted batch", NULL, recs, 6);
    return x->bytes_in && x->bytes_decoded && x->duplicates && x->batch_records ? 0 : LH_ENOMEM;
}

/* ---- auth ---- */

static const char *token_of(struct lh_http_req *req)
{
    const char *t = lh_http_req_header(req, "X-Log-Shipper-Token");
    if (t && *t)
        return t;
    const char *a = lh_http_req_header(req, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        return *a ? a : NULL;
    }
    return NULL;
}

/* Returns the tenant, or NULL with *status 401/403 and a message. */
static const char *authenticate(struct collector *c, struct lh_http_req *req, int *status,
                                const char **why)
{
    const struct tenant_config *t = c->cfg->tenants.items;
    const char *token = token_of(req), *cn = lh_http_req_client_cn(req);
    const char *by_token = NULL, *by_cn = NULL;
    for (size_t i = 0; i < c->cfg->tenants.n; i++) {
        for (size_t k = 0; token && k < t[i].tokens.n; k++)
            if (strcmp(token, t[i].tokens.v[k]) == 0)
                by_token = t[i].name;
        for (size_t k = 0; cn && k < t[i].client_cns.n; k++)
            if (strcmp(cn, t[i].client_cns.v[k]) == 0)
                by_cn = t[i].name;
    }
    const char *tenant = by_token ? by_token : by_cn;
    if (!tenant) {
        *status = 401;
        *why = token ? "unknown token" : "a shipper token or a client certificate is required";
        return NULL;
    }
    const char *asked = lh_http_req_header(req, "X-Log-Tenant");
    if ((by_token && by_cn && strcmp(by_token, by_cn) != 0) ||
        (asked && *asked && strcmp(asked, tenant) != 0)) {
        *status = 403;
        *why = "these credentials are not allowed for that tenant";
        return NULL;
    }
    return tenant;
}

/* ---- the worker half ---- */

static void job_fail(struct job *j, int status, const char *code, int64_t retry_ms,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void job_fail(struct job *j, int status, const char *code, int64_t retry_ms,
                     const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    j->status = status;
    j->retry_after_ms = retry_ms;
    snprintf(j->code, sizeof(j->code), "%s", code);
    lh_buf_reset(&j->answer);
    lh_buf_printf(&j->answer, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    lh_buf_json_str(&j->answer, msg, strlen(msg));
    lh_buf_puts(&j->answer, "}}");
}

/* 200 for a batch acknowledged before: its count and its batch id as the
 * first answer gave it, whichever form the key had. */
static void duplicate_answer(struct job *j, uint64_t accepted)
{
    char id[LH_UUID_STR_SIZE];
    lh_buf_reset(&j->answer);
    if (lh_buf_printf(&j->answer, "{\"accepted\":%llu,\"batch_id\":\"%s\",\"duplicate\":true}",
                      (unsigned long long)accepted, lh_uuid_format(&j->uuid, id)) < 0) {
        job_fail(j, 503, "overloaded", 1000, "out of memory");
        return;
    }
    j->status = 200;
    j->duplicate = 1;
    j->accepted = accepted;
}

static void work_decode_produce(struct job *j)
{
    struct collector *c = j->c;
    struct lh_buf plain = LH_BUF_INIT, encoded = LH_BUF_INIT;
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_bus_msg *msgs = NULL;
    size_t *ends = NULL;
    struct lh_buf ledger = LH_BUF_INIT;
    struct lh_cledger_entry *lents = NULL;
    size_t nl = 0;
    struct lh_err err = { 0 };
    const char *data = j->body.data ? j->body.data : "";
    size_t len = j->body.len;

    /* 1. Decompress within the limits. */
    if (j->codec != LH_CODEC_NONE) {
        int rc = j->codec == LH_CODEC_GZIP
                     ? lh_codec_gunzip(data, len, j->max_decompressed, j->max_ratio, &plain, &err)
                     : lh_codec_unzstd(data, len, j->max_decompressed, j->max_ratio, &plain, &err);
        if (rc == LH_ETOOBIG) {
            job_fail(j, 413, "too_large", 0, "%s", err.msg);
            goto out;
        }
        if (rc < 0) {
            job_fail(j, 400, "bad_encoding", 0, "%s", err.msg);
            goto out;
        }
        data = plain.data ? plain.data : "";
        len = plain.len;
    } else if (len > j->max_decompressed) {
        job_fail(j, 413, "too_large", 0, "body over %llu bytes",
                 (unsigned long long)j->max_decompressed);
        goto out;
    }
    lh_counter_add(c->mx.bytes_decoded, len);

    /* A key seen before with other bytes: the same records under another
     * encoding are a retry; other records under it would be lost (their
     * event ids derive from the key), so they are refused, not dropped. */
    uint64_t content = lh_dedupe_digest(data, len, 0);
    if (j->recheck) {
        char id[LH_UUID_STR_SIZE];
        lh_uuid_format(&j->uuid, id);
        if (content != j->seen.content) {
            job_fail(j, 422, "idempotency_key_reused", 0,
                     "Idempotency-Key %s was acknowledged for a batch with other records; "
                     "send this batch under a new key", id);
            goto out;
        }
        duplicate_answer(j, j->seen.accepted);
        goto out;
    }
    j->seen.content = content;

    /* 2. Decode. */
    struct lh_ingest_context ctx = { .tenant = j->tenant, .batch_uuid = j->uuid.b,
                                     .received_ns = lh_time_now_ns(),
                                     .default_host = j->remote_host };
    struct lh_ingest_batch b;
    struct lh_ingest_error e;
    int rc = j->ndjson ? lh_ingest_decode_ndjson(data, len, &j->limits, &ctx, &arena, &b, &e)
                       : lh_ingest_decode_json(data, len, &j->limits, &ctx, &arena, &b, &e);
    if (rc < 0) {
        int status = rc == LH_ETOOBIG ? 413 : rc == LH_ENOMEM ? 503 : 400;
        j->status = status;
        snprintf(j->code, sizeof(j->code), "%s",
                 status == 413 ? "too_large" : status == 503 ? "overloaded" : "invalid_body");
        lh_buf_reset(&j->answer);
        lh_buf_printf(&j->answer, "{\"error\":{\"code\":\"%s\",\"message\":", j->code);
        char msg[512];
        snprintf(msg, sizeof(msg), "%s%s%s", e.field, e.field[0] ? ": " : "", e.message);
        lh_buf_json_str(&j->answer, msg, strlen(msg));
        lh_buf_puts(&j->answer, ",\"field\":");
        lh_buf_json_str(&j->answer, e.field, strlen(e.field));
        lh_buf_printf(&j->answer, ",\"index\":%ld}}", e.index);
        if (status == 503)
            j->retry_after_ms = 1000;
        goto out;
    }
    if (b.unknown_keys)
        lh_counter_add(c->mx.unknown_keys, b.unknown_keys);

    /* 3. Rate limits: the tenant's, then the host's. */
    int64_t now = lh_time_mono_ns();
    int64_t wait = lh_ratelimit_take(c->tenant_rl, j->tenant, len, b.n, now);
    if (wait == 0 && b.host) {
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", j->tenant, b.host);
        wait = lh_ratelimit_take(c->host_rl, key, len, b.n, now);
    }
    if (wait > 0) {
        job_fail(j, 429, "rate_limited", wait, "rate limit exceeded; retry in %lld ms",
                 (long long)wait);
        goto out;
    }

    /* 4. Encode every event and produce the batch, followed by its ledger
     * rows (one per host and file) in the same call: a batch answered 200
     * always has them on the bus (docs/ledger.md). */
    char hex[33];
    lh_uuid_format_hex(&j->uuid, hex);
    if (lh_cledger_build(&b, j->tenant, hex, ctx.received_ns, &ledger, &lents, &nl) < 0) {
        job_fail(j, 503, "overloaded", 1000, "out of memory");
        goto out;
    }
    msgs = calloc(b.n + nl, sizeof(*msgs));
    ends = calloc(b.n, sizeof(*ends));
    if (!msgs || !ends || lh_buf_reserve(&encoded, len + b.n * 160) < 0) {
        job_fail(j, 503, "overloaded", 1000, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b.n; i++) {
        if (lh_event_encode(&b.events[i], &encoded) < 0) {
            job_fail(j, 503, "overloaded", 1000, "out of memory");
            goto out;
        }
        ends[i] = encoded.len;
    }
    struct lh_bus_header hdr = { "tenant", j->tenant };
    for (size_t i = 0; i < b.n; i++) {
        size_t start = i ? ends[i - 1] : 0;
        msgs[i].value = encoded.data + start;
        msgs[i].value_len = ends[i] - start;
        msgs[i].key = b.events[i].host;
        msgs[i].key_len = b.events[i].host ? strlen(b.events[i].host) : 0;
        msgs[i].headers = &hdr;
        msgs[i].nheaders = 1;
    }
    struct lh_bus_header lhdr[2] = { { "tenant", j->tenant },
                                     { LH_AUDIT_HEADER, LH_AUDIT_HEADER_VALUE } };
    for (size_t k = 0; k < nl; k++) {
        struct lh_bus_msg *m = &msgs[b.n + k];
        m->value = ledger.data + lents[k].off;
        m->value_len = lents[k].len;
        m->key = lents[k].host[0] ? lents[k].host : NULL;
        m->key_len = strlen(lents[k].host);
        m->headers = lhdr;
        m->nheaders = 2;
    }
    rc = c->fallback ? lh_fallback_produce(c->fallback, j->topic, msgs, b.n + nl, &err)
                     : lh_bus_produce(c->bus, j->topic, msgs, b.n + nl, &err);
    if (rc < 0) {
        lh_warn("produce %zu records for %s: %s", b.n, j->tenant, err.msg);
        if (rc == LH_EFULL)
            job_fail(j, 503, "bus_full", 5000, "the bus is full; retry later");
        else
            job_fail(j, 503, "bus_unavailable", 2000, "the bus is unavailable; retry later");
        goto out;
    }
    j->status = 200;
    j->accepted = b.n;
    char id[LH_UUID_STR_SIZE];
    lh_uuid_format(&j->uuid, id);
    lh_buf_reset(&j->answer);
    lh_buf_printf(&j->answer, "{\"accepted\":%zu,\"batch_id\":\"%s\"}", b.n, id);
out:
    free(msgs);
    free(ends);
    free(lents);
    lh_buf_free(&ledger);
    lh_buf_free(&plain);
    lh_buf_free(&encoded);
    lh_arena_free(&arena);
}

static void work_cb(struct lh_http_req *req, void *arg)
{
    (void)req;
    work_decode_produce(arg);
}

static void respond_job(struct lh_http_req *req, struct job *j)
{
    char retry[32];
    struct lh_http_header hdrs[2] = { { NULL, NULL }, { NULL, NULL } };
    if (j->retry_after_ms > 0) {
        snprintf(retry, sizeof(retry), "%lld", (long long)((j->retry_after_ms + 999) / 1000));
        hdrs[0].name = "Retry-After";
        hdrs[0].value = retry;
    }
    lh_http_respond_json(req, j->status, hdrs, j->answer.data ? j->answer.data : "{}",
                         j->answer.len);
}

static void job_free(struct job *j)
{
    lh_buf_free(&j->body);
    lh_buf_free(&j->answer);
    free(j);
}

static void done_cb(struct lh_http_req *req, int status, void *arg)
{
    struct job *j = arg;
    struct collector *c = j->c;
    (void)status;
    if (j->have_key && !j->recheck) {
        j->seen.accepted = j->accepted;
        lh_dedupe_end(c->dedupe, j->tenant, j->uuid.b, j->status == 200, &j->seen,
                      lh_time_mono_ns());
    }
    if (j->duplicate) {
        lh_counter_add(c->mx.duplicates, 1);
    } else if (j->status == 200) {
        count_received(c, j->tenant, j->accepted);
        lh_histogram_observe(c->mx.batch_records, (double)j->accepted);
    } else {
        count_reject(c, j->status, j->code);
    }
    respond_job(req, j);
    job_free(j);
}

/* ---- the loop-thread half ---- */

static void reject(struct collector *c, struct lh_http_req *req, int status, const char *code,
                   const char *retry_after, const char *msg)
{
    struct lh_http_header hdrs[2] = { { NULL, NULL }, { NULL, NULL } };
    if (retry_after) {
        hdrs[0].name = "Retry-After";
        hdrs[0].value = retry_after;
    } else if (status == 401) {
        /* a 401 names the scheme it wants (RFC 9110 11.6.1), as queryd's do */
        hdrs[0].name = "WWW-Authenticate";
        hdrs[0].value = "Bearer realm=\"loghaul\"";
    }
    count_reject(c, status, code);
    lh_http_respond_error(req, status, hdrs[0].name ? hdrs : NULL, code, "%s", msg);
}

static void handle_ingest(struct lh_http_req *req, struct collector *c, int ndjson)
{
    if (c->stopping) {
        reject(c, req, 503, "shutting_down", "1", "the collector is shutting down");
        return;
    }
    int status;
    const char *why;
    const char *tenant = authenticate(c, req, &status, &why);
    if (!tenant) {
        reject(c, req, status, status == 401 ? "unauthorized" : "forbidden", NULL, why);
        return;
    }
    const char *ce = lh_http_req_header(req, "Content-Encoding");
    enum lh_codec codec = LH_CODEC_NONE;
    if (ce && *ce && lh_codec_parse(ce, strlen(ce), &codec, NULL) < 0) {
        reject(c, req, 415, "unsupported_encoding", NULL,
               "Content-Encoding must be gzip, zstd or identity");
        return;
    }
    /* JSON types, and what curl -d / --data-binary send by default, are
     * read as JSON; other media types are refused. */
    const char *ct = lh_http_req_header(req, "Content-Type");
    if (ct && *ct && !strstr(ct, "json") &&
        strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 &&
        strncasecmp(ct, "text/plain", 10) != 0) {
        reject(c, req, 415, "unsupported_media_type", NULL,
               ndjson ? "Content-Type must be application/x-ndjson"
                      : "Content-Type must be application/json");
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        reject(c, req, 503, "overloaded", "1", "out of memory");
        return;
    }
    j->c = c;
    j->ndjson = ndjson;
    j->codec = codec;
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    j->limits = c->limits;
    j->max_decompressed = c->cfg->limits.max_decompressed;
    j->max_ratio = (unsigned)c->cfg->limits.max_ratio;
    struct lh_err terr = { 0 };
    if (lh_bus_topic_expand(c->cfg->bus.topic, tenant, j->topic, sizeof(j->topic), &terr) < 0) {
        job_free(j);
        reject(c, req, 400, "bad_tenant", NULL, terr.msg);
        return;
    }
    lh_http_req_take_body(req, &j->body);
    const char *key = lh_http_req_header(req, "Idempotency-Key");
    if (key && *key) {
        if (lh_uuid_parse(key, strlen(key), &j->uuid, NULL) < 0) {
            job_free(j);
            reject(c, req, 400, "bad_idempotency_key", NULL,
                   "Idempotency-Key must be a UUID (the batch id)");
            return;
        }
        j->have_key = 1;
        j->seen.wire = lh_dedupe_digest(j->body.data ? j->body.data : "", j->body.len,
                                        (uint32_t)codec);
        struct lh_dedupe_seen first = { 0 };
        enum lh_dedupe_state st =
            lh_dedupe_begin(c->dedupe, tenant, j->uuid.b, lh_time_mono_ns(), &first);
        if (st == LH_DEDUPE_DONE && first.wire != j->seen.wire) {
            j->recheck = 1;
            j->seen = first;
        } else if (st == LH_DEDUPE_DONE) {
            duplicate_answer(j, first.accepted);
            lh_counter_add(c->mx.duplicates, j->duplicate);
            respond_job(req, j);
            job_free(j);
            return;
        }
        if (st == LH_DEDUPE_IN_FLIGHT) {
            job_free(j);
            reject(c, req, 503, "in_progress", "1", "this batch is being handled; retry");
            return;
        }
    } else {
        lh_uuid_v7(&j->uuid, NULL);
    }
    /* The host part of "ip:port" / "[ip6]:port": NDJSON records without a host. */
    const char *remote = lh_http_req_remote(req);
    const char *hh = lh_http_req_header(req, "X-Log-Host");
    snprintf(j->remote_host, sizeof(j->remote_host), "%s", hh && *hh ? hh : remote ? remote : "");
    if (!(hh && *hh)) {
        char *colon = strrchr(j->remote_host, ':');
        if (colon)
            *colon = '\0';
        if (j->remote_host[0] == '[') {
            memmove(j->remote_host, j->remote_host + 1, strlen(j->remote_host));
            char *rb = strchr(j->remote_host, ']');
            if (rb)
                *rb = '\0';
        }
    }
    lh_counter_add(c->mx.bytes_in, j->body.len);
    if (lh_http_defer(req, work_cb, done_cb, j) < 0) {
        if (j->have_key && !j->recheck)
            lh_dedupe_end(c->dedupe, tenant, j->uuid.b, 0, NULL, 0);
        job_free(j);
        reject(c, req, 503, "overloaded", "1", "cannot schedule the request");
    }
}

static void on_ingest(struct lh_http_req *req, void *arg) { handle_ingest(req, arg, 0); }
static void on_ingest_ndjson(struct lh_http_req *req, void *arg) { handle_ingest(req, arg, 1); }

/* ---- life cycle ---- */

static void apply_config(struct collector *c, const struct collector_config *cfg)
{
    c->cfg = cfg;
    c->limits.max_records = (size_t)cfg->limits.max_records;
    c->limits.max_field_bytes = (size_t)cfg->limits.max_field_bytes;
    c->limits.max_meta_keys = (size_t)cfg->limits.max_meta_keys;
    c->limits.max_depth = (unsigned)cfg->limits.max_depth;
    c->limits.utf8_repair = cfg->limits.utf8 == 0;
}

static struct lh_ratelimit *make_rl(uint64_t bps, int64_t rps, int64_t burst_ms, int64_t keys)
{
    return lh_ratelimit_create((double)bps, (double)rps, (double)burst_ms / 1000.0,
                               keys > 0 ? (size_t)keys : 0);
}

static int collector_init(struct lh_daemon *d, const void *p, void **state, struct lh_err *err)
{
    const struct collector_config *cfg = p;
    struct collector *c = calloc(1, sizeof(*c));
    if (!c)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    *state = c;
    c->d = d;
    apply_config(c, cfg);
    if (metrics_init(c) < 0)
        return lh_err_set(err, LH_ENOMEM, "metrics: out of memory");
    int rc = lh_bus_open(&cfg->bus, c->mx.m, &c->bus, err);
    if (rc < 0)
        return lh_err_wrap(err, "bus");
    if (cfg->fallback.dir && cfg->bus.type == LH_BUS_KAFKA &&
        (rc = lh_fallback_open(&cfg->fallback, c->bus, c->mx.m, &c->fallback, err)) < 0)
        return rc;
    c->dedupe = lh_dedupe_create((size_t)cfg->dedupe.max_entries,
                                 cfg->dedupe.window_ms * 1000000);
    c->tenant_rl = make_rl(cfg->rate.tenant_bytes, cfg->rate.tenant_records, cfg->rate.burst_ms, 0);
    c->host_rl = make_rl(cfg->rate.host_bytes, cfg->rate.host_records, cfg->rate.burst_ms,
                         cfg->rate.max_hosts);
    struct lh_http_server *srv = lh_daemon_http(d);
    if ((rc = lh_http_server_route(srv, "POST", "/v1/logs/ingest", on_ingest, c, err)) < 0 ||
        (rc = lh_http_server_route(srv, "POST", "/v1/logs/ingest/ndjson", on_ingest_ndjson, c,
                                   err)) < 0)
        return rc;
    lh_info("accepting logs for %zu tenant(s) on the %s bus", cfg->tenants.n, c->bus->ops->name);
    return 0;
}

static int collector_reload(struct lh_daemon *d, void *state, const void *p, struct lh_err *err)
{
    (void)d;
    struct collector *c = state;
    const struct collector_config *cfg = p;
    const struct collector_config *old = c->cfg;
    /* Tenants, tokens and request limits change now (each request copies
     * what its worker needs). The bus, the rate limiters and the cache are
     * in use by workers: their settings change with a restart. */
    if (cfg->bus.type != old->bus.type || strcmp(cfg->bus.topic, old->bus.topic) != 0)
        return lh_err_set(err, LH_EINVAL, "bus settings change only with a restart");
    if (memcmp(&cfg->rate, &old->rate, sizeof(cfg->rate)) != 0 ||
        memcmp(&cfg->dedupe, &old->dedupe, sizeof(cfg->dedupe)) != 0)
        lh_warn("reload: rate_limits and dedupe changes take effect after a restart");
    apply_config(c, cfg);
    lh_info("reloaded: %zu tenant(s)", cfg->tenants.n);
    return 0;
}

static void collector_shutdown(struct lh_daemon *d, void *state)
{
    (void)d;
    struct collector *c = state;
    if (c)
        c->stopping = 1;
}

static void collector_destroy(void *state)
{
    struct collector *c = state;
    if (!c)
        return;
    lh_fallback_close(c->fallback);
    lh_bus_close(c->bus);
    lh_dedupe_destroy(c->dedupe);
    lh_ratelimit_destroy(c->tenant_rl);
    lh_ratelimit_destroy(c->host_rl);
    free(c);
}

static int collector_ready(void *state, struct lh_buf *reason)
{
    struct collector *c = state;
    struct lh_err err = { 0 };
    if (!c || !c->bus)
        return lh_buf_puts(reason, "starting"), -1;
    if (c->stopping)
        return lh_buf_puts(reason, "shutting down"), -1;
    /* With a fallback spool the collector takes writes while Kafka is down. */
    if (!c->fallback && lh_bus_ready(c->bus, &err) < 0)
        return lh_buf_printf(reason, "bus not ready: %s", err.msg), -1;
    return 0;
}

const struct lh_daemon_ops lh_collector_ops = {
    .name = "collector",
    .description = "the ingest API: accepts log batches and makes them durable on the bus",
    .default_listen = "0.0.0.0:7070",
    .opts = collector_opts,
    .config_size = sizeof(struct collector_config),
    .common_offset = offsetof(struct collector_config, common),
    .validate = collector_validate,
    .init = collector_init,
    .reload = collector_reload,
    .shutdown = collector_shutdown,
    .destroy = collector_destroy,
    .ready = collector_ready,
};
