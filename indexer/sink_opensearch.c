/* sink_opensearch.c - the OpenSearch / Elasticsearch `_bulk` sink (see
 * sink_opensearch.h for what it guarantees). */
#include "sink_opensearch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lh/backoff.h"
#include "lh/codec.h"
#include "lh/http_client.h"
#include "lh/json.h"
#include "lh/log.h"
#include "lh/time.h"

#define OFF(f) offsetof(struct lh_sink_opensearch_config, f)
#define TOFF(f) offsetof(struct lh_os_template_config, f)

static const struct lh_opt template_opts[] = {
    { LH_OPT_BOOL, "install", "true", TOFF(install),
      "install the index template before the first write" },
    { LH_OPT_STR, "name", "loghaul-logs", TOFF(name), "name of the index template" },
    { LH_OPT_INT, "priority", "100", TOFF(priority),
      "template priority (the highest matching template wins)" },
    { LH_OPT_INT, "shards", "1", TOFF(shards), "index.number_of_shards of each daily index" },
    { LH_OPT_INT, "replicas", "0", TOFF(replicas),
      "index.number_of_replicas (0 on a single node, 1+ in a cluster)" },
    { LH_OPT_STR, "refresh_interval", "5s", TOFF(refresh_interval),
      "index.refresh_interval: how soon new documents become searchable" },
    { LH_OPT_STR, "codec", "best_compression", TOFF(codec),
      "index.codec (\"\": the server's default)" },
    { LH_OPT_BOOL, "translog_async", "false", TOFF(translog_async),
      "index.translog.durability: async (faster; a node crash may lose ~5 s)" },
    { LH_OPT_BOOL, "date_nanos", "true", TOFF(date_nanos),
      "map timestamp as date_nanos (ns precision, 1970-2262) instead of date (ms)" },
    { 0 }
};

const struct lh_opt lh_sink_opensearch_opts[] = {
    { LH_OPT_STRLIST, "urls", "[http://127.0.0.1:9200]", OFF(urls),
      "base URLs of the cluster's nodes; bulk requests rotate over them" },
    { LH_OPT_STR, "index_prefix", "logs", OFF(index_prefix),
      "indices are <index_prefix>-<tenant>-YYYY.MM.DD" },
    { LH_OPT_SIZE, "bulk_max_bytes", "5MiB", OFF(bulk_max_bytes),
      "largest bulk body (uncompressed); a larger single document goes alone" },
    { LH_OPT_INT, "concurrency", "2", OFF(concurrency), "bulk requests in flight at once" },
    { LH_OPT_BOOL, "gzip", "false", OFF(gzip), "gzip bulk bodies (Content-Encoding: gzip)" },
    { LH_OPT_INT, "gzip_level", "1", OFF(gzip_level),
      "gzip level: 0-1 ISA-L (fast), 2-12 libdeflate (smaller)" },
    { LH_OPT_DURATION, "timeout", "60s", OFF(timeout_ms),
      "time for one bulk request and its response" },
    { LH_OPT_DURATION, "connect_timeout", "5s", OFF(connect_timeout_ms),
      "time to connect (TCP and TLS)" },
    { LH_OPT_DURATION, "retry_timeout", "30s", OFF(retry_timeout_ms),
      "how long a write resends documents refused with 429/5xx before giving up" },
    { LH_OPT_DURATION, "backoff_base", "100ms", OFF(backoff_base_ms),
      "first retry delay ceiling (exponential, full jitter)" },
    { LH_OPT_DURATION, "backoff_cap", "5s", OFF(backoff_cap_ms), "largest retry delay" },
    { LH_OPT_DURATION, "ready_timeout", "2s", OFF(ready_timeout_ms),
      "time allowed to GET /_cluster/health for readiness" },
    { LH_OPT_STR, "username", NULL, OFF(username), "basic auth user" },
    { LH_OPT_STR, "password", NULL, OFF(password), "basic auth password", LH_OPT_SECRET },
    { LH_OPT_STR, "api_key", NULL, OFF(api_key),
      "API key (base64 of id:key), sent as Authorization: ApiKey", LH_OPT_SECRET },
    { LH_OPT_STR, "ca", NULL, OFF(ca_file), "PEM CA file to verify the server (https)" },
    { LH_OPT_STR, "cert", NULL, OFF(cert_file), "PEM client certificate (mTLS)" },
    { LH_OPT_STR, "key", NULL, OFF(key_file), "PEM key of the client certificate" },
    { LH_OPT_SECTION, "template", NULL, OFF(template), "the index template", 0,
      template_opts },
    { 0 }
};

/* filter_path keeps bulk responses small: only what we act on. */
/* Bodies halved after a whole-request 429 stay at least this large. */
#define MIN_SPLIT_BYTES (64 * 1024)

#define BULK_QUERY "/_bulk?filter_path=errors,items.*.status,items.*.error.type," \
                   "items.*.error.reason,items.*.error.caused_by.type," \
                   "items.*.error.caused_by.reason"

/* ------------------------------------------------------------------------ */
/* the sink's state */

/* One bulk body of a round: items pend[first .. first+count). */
struct body {
    size_t first, count;
    const char *data;          /* uncompressed NDJSON: a slice of enc, or copy */
    size_t len;
    struct lh_buf copy;        /* when the items are not contiguous in enc */
    struct lh_buf gz;          /* compressed, when gzip */
};

enum reject_class { RC_MAPPING, RC_INVALID, RC_TOO_LARGE, RC_OTHER, RC_COUNT };
static const char *const reject_class_names[RC_COUNT] = { "mapping", "invalid", "too_large",
                                                          "other" };

struct os_ctx {
    struct lh_sink sink;
    struct lh_sink_opensearch_config cfg;     /* strings owned (lh_conf_free) */
    char **bulk_urls;                         /* "<url>/_bulk?filter_path=..." per url */
    char **base_urls;                         /* url without a trailing '/' */
    size_t nurls, next_url;
    char *auth;                               /* Authorization value or NULL */
    struct lh_http_header hdr_plain[3], hdr_gzip[4], hdr_json[3];

    /* control connection: setup, ready; any thread, under ctl_mu */
    pthread_mutex_t ctl_mu;
    struct lh_http_client *ctl;
    size_t ctl_url;                           /* the node control requests go to */
    int setup_done;
    struct lh_os_server srv;

    /* the write path: pipeline thread only */
    struct lh_http_client *bulk;
    struct lh_codec_ctx *codec;
    struct lh_backoff bo;
    struct lh_buf enc;                        /* every item of the batch, encoded */
    size_t *off;                              /* item boundaries in enc, n + 1 */
    uint64_t *lim;                            /* per item: the largest body it may join */
    size_t *pend, *pend2;                     /* items still to send (batch indexes) */
    size_t cap_items;
    struct body *bodies;
    struct lh_http_exchange *x;
    size_t cap_bodies;
    struct lh_os_item *items;                 /* a parsed response */
    size_t cap_parsed;

    /* metrics (NULL-safe) */
    struct lh_counter *m_written, *m_dup, *m_rejected, *m_reject[RC_COUNT];
    struct lh_counter *m_retried, *m_requests, *m_req_failed, *m_bytes, *m_bytes_raw;
    struct lh_histogram *m_latency;
};

/* ------------------------------------------------------------------------ */
/* building blocks */

int lh_os_index_name(const char *prefix, const char *tenant, int64_t ts_ns, char *out,
                     size_t size)
{
    char t[65];
    size_t n = 0;
    if (tenant)
        for (const char *p = tenant; *p && n < 64; p++) {
            char ch = *p;
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                       ch == '-'))
                ch = '_';
            t[n++] = ch;
        }
    if (n == 0) {
        memcpy(t, "default", 8);
        n = 7;
    }
    t[n] = '\0';
    struct lh_civil c;
    lh_time_to_civil(ts_ns, &c);
    int len = snprintf(out, size, "%s-%s-%04d.%02d.%02d", prefix, t, c.year, c.month, c.day);
    if (len < 0 || (size_t)len >= size)
        return LH_ETOOBIG;
    return len;
}

/* Appends ,"key":"val" (no comma while *first is set); nothing for NULL. */
static int put_field(struct lh_buf *b, int *first, const char *key, const char *val)
{
    if (!val)
        return 0;
    int rc = *first ? 0 : lh_buf_putc(b, ',');
    *first = 0;
    rc |= lh_buf_putc(b, '"');
    rc |= lh_buf_puts(b, key);
    rc |= lh_buf_puts(b, "\":");
    rc |= lh_buf_json_str(b, val, strlen(val));
    return rc;
}

int lh_os_bulk_item(struct lh_buf *out, const char *prefix, const struct lh_event *ev,
                    int date_nanos)
{
    size_t start = out->len;
    char index[LH_OS_INDEX_MAX];
    char ts[LH_TIME_RFC3339_SIZE];
    int rc = 0, top = 0;   /* 0: timestamp and level are already there */

    if (lh_os_index_name(prefix, ev->tenant, ev->ts_ns, index, sizeof(index)) < 0)
        return LH_ENOMEM;   /* impossible: the prefix length is checked at create */
    lh_time_format_rfc3339(ev->ts_ns, date_nanos ? 9 : 3, ts, sizeof(ts));

    rc |= lh_buf_puts(out, "{\"create\":{\"_index\":\"");
    rc |= lh_buf_puts(out, index);
    rc |= lh_buf_putc(out, '"');
    if (ev->id) {
        rc |= lh_buf_puts(out, ",\"_id\":");
        rc |= lh_buf_json_str(out, ev->id, strlen(ev->id));
    }
    rc |= lh_buf_puts(out, "}}\n{\"timestamp\":\"");
    rc |= lh_buf_puts(out, ts);
    rc |= lh_buf_puts(out, "\",\"level\":\"");
    rc |= lh_buf_puts(out, lh_level_name(ev->level));
    rc |= lh_buf_putc(out, '"');
    rc |= put_field(out, &top, "id", ev->id);
    rc |= put_field(out, &top, "tenant", ev->tenant);
    rc |= put_field(out, &top, "service", ev->service);
    rc |= put_field(out, &top, "host", ev->host);
    rc |= put_field(out, &top, "trace_id", ev->trace_id);
    rc |= put_field(out, &top, "span_id", ev->span_id);
    rc |= put_field(out, &top, "user_id", ev->user_id);
    rc |= put_field(out, &top, "message", ev->message);
    rc |= put_field(out, &top, "raw", ev->raw);
    rc |= put_field(out, &top, "stream", ev->stream);
    rc |= put_field(out, &top, "container_id", ev->container_id);
    if (ev->k8s_namespace || ev->k8s_pod || ev->k8s_container) {
        int first = 1;
        rc |= lh_buf_puts(out, ",\"k8s\":{");
        rc |= put_field(out, &first, "namespace", ev->k8s_namespace);
        rc |= put_field(out, &first, "pod", ev->k8s_pod);
        rc |= put_field(out, &first, "container", ev->k8s_container);
        rc |= lh_buf_putc(out, '}');
    }
    rc |= put_field(out, &top, "region", ev->region);
    rc |= put_field(out, &top, "file", ev->file);
    if (ev->received_ns) {
        /* the collector's receive time: the delivery ledger counts by its hour */
        char rcv[LH_TIME_RFC3339_SIZE];
        lh_time_format_rfc3339(ev->received_ns, date_nanos ? 9 : 3, rcv, sizeof(rcv));
        rc |= lh_buf_printf(out, ",\"received\":\"%s\"", rcv);
    }
    if (ev->meta && ev->nmeta) {
        /* A repeated key would make the server refuse the document. */
        rc |= lh_buf_puts(out, ",\"custom_metadata\":");
        rc |= lh_event_meta_json(ev->meta, ev->nmeta, 1, out);
    }
    rc |= lh_buf_puts(out, "}\n");
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return LH_ENOMEM;
    }
    return 0;
}

size_t lh_os_bulk_cut(const size_t *off, const size_t *idx, const uint64_t *lim, size_t a,
                      size_t n, uint64_t max_bytes, uint64_t target_bytes)
{
    uint64_t l = max_bytes, total = 0;
    size_t j = a;
    do {
        size_t i = idx ? idx[j] : j;
        uint64_t len = off[i + 1] - off[i];
        if (lim && lim[i] < l)
            l = lim[i];
        if (j > a && (total + len > l || total >= target_bytes))
            break;
        total += len;
        j++;
    } while (j < n);
    return j;
}

uint64_t lh_os_bulk_target(uint64_t total, uint64_t max_bytes, unsigned concurrency)
{
    if (max_bytes == 0 || concurrency == 0)
        return max_bytes;
    uint64_t nbodies = (total + max_bytes - 1) / max_bytes;
    nbodies = (nbodies + concurrency - 1) / concurrency * concurrency;
    uint64_t target = (total + nbodies - 1) / nbodies;
    if (target < LH_OS_MIN_BODY)
        target = LH_OS_MIN_BODY;
    return target < max_bytes ? target : max_bytes;
}

static int span_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return s && n == l && memcmp(s, lit, l) == 0;
}

/* Error types that describe the cluster, not the document: waiting helps,
 * a dead-letter queue would not. */
static const char *const cluster_errors[] = {
    "cluster_block_exception",           /* read-only index, flood-stage disk */
    "index_not_found_exception",         /* auto-create disabled, index deleted */
    "index_closed_exception",
    "security_exception",                /* credentials, permissions */
    "unavailable_shards_exception",
    "no_shard_available_action_exception",
    "es_rejected_execution_exception",   /* queue full (also 429) */
    "opensearch_rejected_execution_exception",
    "rejected_execution_exception",
    "circuit_breaking_exception",
    "process_cluster_event_timeout_exception",
    "node_closed_exception",
    "primary_missing_action_exception",
    NULL
};

enum lh_os_outcome lh_os_classify(int status, const char *type, size_t type_len)
{
    if (status >= 200 && status < 300)
        return LH_OS_CREATED;
    if (status == 409)
        return LH_OS_DUPLICATE;
    for (const char *const *e = cluster_errors; *e; e++)
        if (span_is(type, type_len, *e))
            return LH_OS_RETRY;
    if (status == 400 || status == 413)
        return LH_OS_REJECT;
    return LH_OS_RETRY;   /* 429, 5xx, and anything unexpected: never lose it */
}

const char *lh_os_reject_class(int status, const char *type, size_t type_len)
{
    if (status == 413 || (type && type_len >= 9 && memmem(type, type_len, "too_large", 9)) ||
        (type && memmem(type, type_len, "too_long", 8)))
        return reject_class_names[RC_TOO_LARGE];
    if (span_is(type, type_len, "mapper_parsing_exception") ||
        span_is(type, type_len, "strict_dynamic_mapping_exception") ||
        span_is(type, type_len, "document_parsing_exception") ||
        span_is(type, type_len, "json_parse_exception") ||
        span_is(type, type_len, "x_content_parse_exception"))
        return reject_class_names[RC_MAPPING];
    if (span_is(type, type_len, "illegal_argument_exception"))
        return reject_class_names[RC_INVALID];
    return reject_class_names[RC_OTHER];
}

static int expect(struct lh_json *js, struct lh_json_token *t, int type, struct lh_err *err)
{
    int rc = lh_json_next(js, t, err);
    if (rc < 0)
        return rc;
    if (rc != type)
        return lh_err_set(err, LH_EINVAL, "bulk response: %s at byte %zu, expected %s",
                          lh_json_type_name(rc), t->off, lh_json_type_name(type));
    return 0;
}

/* Reads {"type":..,"reason":..,...} (the opening brace already read); with
 * cause != 0 also a nested caused_by. */
static int parse_error_obj(struct lh_json *js, struct lh_os_item *it, int top,
                           struct lh_err *err)
{
    struct lh_json_token t;
    int rc;
    while ((rc = lh_json_next(js, &t, err)) == LH_JSON_KEY) {
        size_t *off = NULL, *len = NULL;
        if (span_is(t.p, t.len, "type")) {
            off = top ? &it->type_off : &it->cause_type_off;
            len = top ? &it->type_len : &it->cause_type_len;
        } else if (span_is(t.p, t.len, "reason")) {
            off = top ? &it->reason_off : &it->cause_reason_off;
            len = top ? &it->reason_len : &it->cause_reason_len;
        } else if (top && span_is(t.p, t.len, "caused_by")) {
            struct lh_json_token v;
            if ((rc = lh_json_next(js, &v, err)) < 0)
                return rc;
            if (v.type == LH_JSON_OBJECT) {
                if ((rc = parse_error_obj(js, it, 0, err)) < 0)
                    return rc;
            }   /* else a scalar: ignored (containers cannot start here) */
            else if (v.type == LH_JSON_ARRAY)
                return lh_err_set(err, LH_EINVAL, "bulk response: caused_by is an array");
            continue;
        }
        if (off) {
            struct lh_json_token v;
            if ((rc = lh_json_next(js, &v, err)) < 0)
                return rc;
            if (v.type == LH_JSON_STRING) {
                *off = v.off;
                *len = v.len;
            } else if (v.type == LH_JSON_OBJECT || v.type == LH_JSON_ARRAY) {
                return lh_err_set(err, LH_EINVAL, "bulk response: error.%s is not a string",
                                  top ? "type" : "caused_by.type");
            }
            continue;
        }
        if ((rc = lh_json_skip(js, err)) < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (rc != LH_JSON_OBJECT_END)
        return lh_err_set(err, LH_EINVAL, "bulk response: bad error object at byte %zu", t.off);
    return 0;
}

/* Reads one {"<op>":{"status":..,"error":{..},..}} element. */
static int parse_item(struct lh_json *js, struct lh_os_item *it, struct lh_err *err)
{
    struct lh_json_token t;
    int rc;
    memset(it, 0, sizeof(*it));
    it->status = -1;
    if ((rc = expect(js, &t, LH_JSON_KEY, err)) < 0)   /* the op name */
        return rc;
    if ((rc = expect(js, &t, LH_JSON_OBJECT, err)) < 0)
        return rc;
    while ((rc = lh_json_next(js, &t, err)) == LH_JSON_KEY) {
        if (span_is(t.p, t.len, "status")) {
            int64_t v;
            if ((rc = expect(js, &t, LH_JSON_NUMBER, err)) < 0)
                return rc;
            if (lh_json_int64(&t, &v, NULL) < 0 || v < 0 || v > 999)
                return lh_err_set(err, LH_EINVAL, "bulk response: bad status at byte %zu",
                                  t.off);
            it->status = (int)v;
        } else if (span_is(t.p, t.len, "error")) {
            struct lh_json_token v;
            if ((rc = lh_json_next(js, &v, err)) < 0)
                return rc;
            if (v.type == LH_JSON_OBJECT) {
                if ((rc = parse_error_obj(js, it, 1, err)) < 0)
                    return rc;
            } else if (v.type == LH_JSON_STRING) {   /* very old servers */
                it->reason_off = v.off;
                it->reason_len = v.len;
            } else if (v.type == LH_JSON_ARRAY) {
                return lh_err_set(err, LH_EINVAL, "bulk response: error is an array");
            }
        } else if ((rc = lh_json_skip(js, err)) < 0) {
            return rc;
        }
    }
    if (rc < 0)
        return rc;
    if (rc != LH_JSON_OBJECT_END)
        return lh_err_set(err, LH_EINVAL, "bulk response: bad item at byte %zu", t.off);
    if ((rc = expect(js, &t, LH_JSON_OBJECT_END, err)) < 0)
        return rc;
    if (it->status < 0)
        return lh_err_set(err, LH_EINVAL, "bulk response: item without status");
    return 0;
}

int lh_os_bulk_parse(const char *body, size_t len, struct lh_os_item *items, size_t n,
                     struct lh_err *err)
{
    struct lh_json js;
    struct lh_json_token t;
    size_t got = 0;
    int rc, seen_items = 0;
    lh_json_init(&js, body, len, 0, LH_JSON_UTF8_REPAIR);
    if ((rc = expect(&js, &t, LH_JSON_OBJECT, err)) < 0)
        return rc;
    while ((rc = lh_json_next(&js, &t, err)) == LH_JSON_KEY) {
        if (!span_is(t.p, t.len, "items")) {
            if ((rc = lh_json_skip(&js, err)) < 0)
                return rc;
            continue;
        }
        seen_items = 1;
        if ((rc = expect(&js, &t, LH_JSON_ARRAY, err)) < 0)
            return rc;
        while ((rc = lh_json_next(&js, &t, err)) == LH_JSON_OBJECT) {
            if (got == n)
                return lh_err_set(err, LH_EINVAL, "bulk response: more than %zu items", n);
            if ((rc = parse_item(&js, &items[got], err)) < 0)
                return rc;
            items[got].outcome =
                lh_os_classify(items[got].status, body + items[got].type_off,
                               items[got].type_len);
            got++;
        }
        if (rc < 0)
            return rc;
        if (rc != LH_JSON_ARRAY_END)
            return lh_err_set(err, LH_EINVAL, "bulk response: bad items array at byte %zu",
                              t.off);
    }
    if (rc < 0)
        return rc;
    if ((rc = lh_json_next(&js, &t, err)) < 0)   /* nothing may follow */
        return rc;
    if (!seen_items && n > 0)
        return lh_err_set(err, LH_EINVAL, "bulk response: no items");
    if (got != n)
        return lh_err_set(err, LH_EINVAL, "bulk response: %zu items for %zu documents", got, n);
    return 0;
}

/* Appends the decoded span, or the raw bytes should decoding fail. */
static void put_span(struct lh_buf *b, const char *body, size_t off, size_t len)
{
    if (lh_json_unescape(body + off, len, b, NULL) < 0)
        lh_buf_append(b, body + off, len);
}

void lh_os_item_reason(const char *body, const struct lh_os_item *it, char *out, size_t size)
{
    struct lh_buf b = LH_BUF_INIT;
    if (it->type_len) {
        put_span(&b, body, it->type_off, it->type_len);
        lh_buf_puts(&b, ": ");
    }
    if (it->reason_len)
        put_span(&b, body, it->reason_off, it->reason_len);
    else
        lh_buf_printf(&b, "HTTP %d", it->status);
    if (it->cause_type_len || it->cause_reason_len) {
        lh_buf_puts(&b, " (caused by ");
        if (it->cause_type_len) {
            put_span(&b, body, it->cause_type_off, it->cause_type_len);
            lh_buf_puts(&b, ": ");
        }
        put_span(&b, body, it->cause_reason_off, it->cause_reason_len);
        lh_buf_putc(&b, ')');
    }
    snprintf(out, size, "%s", b.data ? b.data : "");
    lh_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* server info and template */

int lh_os_parse_root(const char *body, size_t len, struct lh_os_server *out,
                     struct lh_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root)
        return lh_err_set(err, LH_EINVAL, "GET /: not JSON: %s", je.text);
    json_t *ver = json_object_get(root, "version");
    const char *num = json_string_value(json_object_get(ver, "number"));
    const char *dist = json_string_value(json_object_get(ver, "distribution"));
    int major = 0, minor = 0;
    if (!num || sscanf(num, "%d.%d", &major, &minor) < 1) {
        json_decref(root);
        return lh_err_set(err, LH_EINVAL, "GET /: no version.number");
    }
    out->flavour = dist && strcmp(dist, "opensearch") == 0 ? LH_OS_OPENSEARCH
                                                            : LH_OS_ELASTICSEARCH;
    out->major = major;
    out->minor = minor;
    json_decref(root);
    return 0;
}

static int ver_at_least(const struct lh_os_server *s, int major, int minor)
{
    return s->major > major || (s->major == major && s->minor >= minor);
}

int lh_os_template_json(const struct lh_os_template_config *t, const char *prefix,
                        const struct lh_os_server *srv, struct lh_buf *out)
{
    static const char *const keywords[] = {
        "id", "tenant", "service", "level", "host", "trace_id", "span_id", "user_id",
        "stream", "container_id", "region", "file", NULL
    };
    size_t start = out->len;
    int rc = 0;
    /* prefix is [a-z0-9_.-] (checked at create): nothing to escape */
    rc |= lh_buf_printf(out, "{\"index_patterns\":[\"%s-*\"],\"priority\":%lld", prefix,
                        (long long)t->priority);
    rc |= lh_buf_puts(out, ",\"_meta\":{\"managed_by\":\"loghaul\"},\"template\":{"
                           "\"settings\":{\"index\":{");
    rc |= lh_buf_printf(out, "\"number_of_shards\":%lld,\"number_of_replicas\":%lld",
                        (long long)t->shards, (long long)t->replicas);
    if (t->refresh_interval && *t->refresh_interval) {
        rc |= lh_buf_puts(out, ",\"refresh_interval\":");
        rc |= lh_buf_json_str(out, t->refresh_interval, strlen(t->refresh_interval));
    }
    if (t->codec && *t->codec) {
        rc |= lh_buf_puts(out, ",\"codec\":");
        rc |= lh_buf_json_str(out, t->codec, strlen(t->codec));
    }
    if (t->translog_async)
        rc |= lh_buf_puts(out, ",\"translog\":{\"durability\":\"async\"}");
    rc |= lh_buf_puts(out, "}},\"mappings\":{\"dynamic\":\"strict\",\"properties\":{");
    rc |= lh_buf_printf(out, "\"timestamp\":{\"type\":\"%s\"}",
                        t->date_nanos ? "date_nanos" : "date");
    rc |= lh_buf_printf(out, ",\"received\":{\"type\":\"%s\"}",
                        t->date_nanos ? "date_nanos" : "date");
    for (const char *const *k = keywords; *k; k++)
        rc |= lh_buf_printf(out, ",\"%s\":{\"type\":\"keyword\"}", *k);
    rc |= lh_buf_puts(out, ",\"message\":{\"type\":\"text\",\"analyzer\":\"standard\","
                           "\"norms\":false}"
                           ",\"raw\":{\"type\":\"text\",\"analyzer\":\"standard\","
                           "\"index_options\":\"docs\",\"norms\":false}"
                           ",\"k8s\":{\"properties\":{\"namespace\":{\"type\":\"keyword\"},"
                           "\"pod\":{\"type\":\"keyword\"},\"container\":{\"type\":\"keyword\"}}}"
                           ",\"custom_metadata\":");
    if (srv->flavour == LH_OS_OPENSEARCH && ver_at_least(srv, 2, 7))
        rc |= lh_buf_puts(out, "{\"type\":\"flat_object\"}");
    else if (srv->flavour == LH_OS_ELASTICSEARCH && ver_at_least(srv, 7, 3))
        rc |= lh_buf_puts(out, "{\"type\":\"flattened\"}");
    else   /* no flat map type: kept in _source, not searchable */
        rc |= lh_buf_puts(out, "{\"type\":\"object\",\"enabled\":false}");
    rc |= lh_buf_puts(out, "}}}}");
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return LH_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* control requests: setup and ready */

/* A short excerpt of a response body for messages. */
static const char *excerpt(const struct lh_http_response *r)
{
    return r->body.data ? r->body.data : "";
}

static int status_code(long status)
{
    if (status == 429)
        return LH_EFULL;
    if (status >= 500 || status == 401 || status == 403 || status == 404)
        return LH_EUNAVAIL;
    return LH_EINVAL;
}

/* Both under ctl_mu. */
static int do_setup(struct os_ctx *c, int64_t timeout_ms, struct lh_err *err)
{
    struct lh_http_response resp = { 0 };
    struct lh_buf tpl = LH_BUF_INIT;
    char url[2048];
    int rc = LH_EUNAVAIL;
    for (size_t k = 0; k < c->nurls; k++) {
        c->ctl_url = (c->ctl_url + (k > 0)) % c->nurls;   /* the next node on failure */
        const char *base = c->base_urls[c->ctl_url];
        snprintf(url, sizeof(url), "%s/", base);
        struct lh_http_request req = { .method = "GET", .url = url,
                                       .headers = c->hdr_json, .timeout_ms = timeout_ms };
        rc = lh_http_client_do(c->ctl, &req, &resp, err);
        if (rc < 0)
            continue;
        if (resp.status != 200) {
            rc = lh_err_set(err, status_code(resp.status), "GET %s: HTTP %ld: %.200s", url,
                            resp.status, excerpt(&resp));
            continue;
        }
        if ((rc = lh_os_parse_root(resp.body.data, resp.body.len, &c->srv, err)) < 0)
            break;
        if (!c->cfg.template.install) {
            c->setup_done = 1;
            break;
        }
        lh_buf_reset(&tpl);
        if ((rc = lh_os_template_json(&c->cfg.template, c->cfg.index_prefix, &c->srv, &tpl)) <
            0) {
            lh_err_set(err, rc, "index template: out of memory");
            break;
        }
        snprintf(url, sizeof(url), "%s/_index_template/%s", base, c->cfg.template.name);
        struct lh_http_request put = { .method = "PUT", .url = url, .headers = c->hdr_json,
                                       .body = tpl.data, .body_len = tpl.len,
                                       .timeout_ms = timeout_ms };
        rc = lh_http_client_do(c->ctl, &put, &resp, err);
        if (rc < 0)
            continue;
        if (resp.status != 200) {
            rc = lh_err_set(err, status_code(resp.status), "PUT %s: HTTP %ld: %.300s", url,
                            resp.status, excerpt(&resp));
            if (rc == LH_EINVAL)
                break;   /* the template itself was refused: another node won't differ */
            continue;
        }
        c->setup_done = 1;
        /* indices made by an older template lack `received`: add it (strict
         * mappings take new fields through _mapping) */
        snprintf(url, sizeof(url), "%s/%s-*/_mapping?allow_no_indices=true&"
                 "ignore_unavailable=true", base, c->cfg.index_prefix);
        char mbody[128];
        snprintf(mbody, sizeof(mbody), "{\"properties\":{\"received\":{\"type\":\"%s\"}}}",
                 c->cfg.template.date_nanos ? "date_nanos" : "date");
        struct lh_http_request pm = { .method = "PUT", .url = url, .headers = c->hdr_json,
                                      .body = mbody, .body_len = strlen(mbody),
                                      .timeout_ms = timeout_ms };
        struct lh_err merr = { 0 };
        if (lh_http_client_do(c->ctl, &pm, &resp, &merr) < 0 || resp.status != 200)
            lh_warn("%s: cannot add the received field to existing %s-* indices: %s%.200s",
                    c->sink.name, c->cfg.index_prefix, merr.msg, excerpt(&resp));
        lh_info("%s: %s %d.%d, index template %s installed for %s-*", c->sink.name,
                c->srv.flavour == LH_OS_OPENSEARCH ? "OpenSearch" : "Elasticsearch",
                c->srv.major, c->srv.minor, c->cfg.template.name, c->cfg.index_prefix);
        break;
    }
    lh_http_response_free(&resp);
    lh_buf_free(&tpl);
    if (c->setup_done)
        return 0;
    if (rc == LH_ETIMEDOUT || rc == LH_EIO || rc == 0)
        rc = LH_EUNAVAIL;
    return err ? (err->code = rc) : rc;
}

int lh_sink_opensearch_setup(struct lh_sink *s, struct lh_err *err)
{
    struct os_ctx *c = s->ctx;
    pthread_mutex_lock(&c->ctl_mu);
    int rc = c->setup_done ? 0 : do_setup(c, 0, err);
    pthread_mutex_unlock(&c->ctl_mu);
    return rc;
}

static int os_ready(struct lh_sink *s, struct lh_err *err)
{
    struct os_ctx *c = s->ctx;
    struct lh_http_response resp = { 0 };
    char url[2048];
    int rc = 0;
    pthread_mutex_lock(&c->ctl_mu);
    if (!c->setup_done)
        rc = do_setup(c, c->cfg.ready_timeout_ms, err);
    if (rc == 0) {
        snprintf(url, sizeof(url), "%s/_cluster/health", c->base_urls[c->ctl_url]);
        struct lh_http_request req = { .method = "GET", .url = url, .headers = c->hdr_json,
                                       .timeout_ms = c->cfg.ready_timeout_ms };
        rc = lh_http_client_do(c->ctl, &req, &resp, err);
        if (rc == 0 && resp.status != 200)
            rc = lh_err_set(err, LH_EUNAVAIL, "GET %s: HTTP %ld", url, resp.status);
        if (rc == 0) {
            json_t *root = json_loadb(resp.body.data, resp.body.len, 0, NULL);
            const char *st = json_string_value(json_object_get(root, "status"));
            if (!st || strcmp(st, "red") == 0)
                rc = lh_err_set(err, LH_EUNAVAIL, "cluster health is %s", st ? st : "unknown");
            json_decref(root);
        }
    }
    if (rc < 0)
        c->ctl_url = (c->ctl_url + 1) % c->nurls;   /* ask another node next time */
    pthread_mutex_unlock(&c->ctl_mu);
    lh_http_response_free(&resp);
    if (rc < 0) {
        if (err)
            err->code = LH_EUNAVAIL;
        return LH_EUNAVAIL;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* write */

static int grow(void **p, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < want)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return LH_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int reserve_items(struct os_ctx *c, size_t n)
{
    if (n + 1 <= c->cap_items)
        return 0;
    size_t cap = c->cap_items, want = n + 1;
    size_t cap2 = cap, cap3 = cap, cap4 = cap;
    if (grow((void **)&c->off, &cap, want, sizeof(*c->off)) ||
        grow((void **)&c->lim, &cap2, want, sizeof(*c->lim)) ||
        grow((void **)&c->pend, &cap3, want, sizeof(*c->pend)) ||
        grow((void **)&c->pend2, &cap4, want, sizeof(*c->pend2)))
        return LH_ENOMEM;   /* the arrays that did grow keep their larger size: harmless */
    c->cap_items = cap;
    return 0;
}

static int reserve_bodies(struct os_ctx *c, size_t n)
{
    if (n <= c->cap_bodies)
        return 0;
    size_t want = c->cap_bodies ? c->cap_bodies : 8;
    while (want < n)
        want *= 2;
    struct body *b = realloc(c->bodies, want * sizeof(*b));
    if (!b)
        return LH_ENOMEM;
    c->bodies = b;
    struct lh_http_exchange *x = realloc(c->x, want * sizeof(*x));
    if (!x)
        return LH_ENOMEM;   /* bodies grew, cap_bodies not: the next call retries */
    c->x = x;
    memset(b + c->cap_bodies, 0, (want - c->cap_bodies) * sizeof(*b));
    memset(x + c->cap_bodies, 0, (want - c->cap_bodies) * sizeof(*x));
    c->cap_bodies = want;
    return 0;
}

static int reserve_parsed(struct os_ctx *c, size_t n)
{
    return grow((void **)&c->items, &c->cap_parsed, n, sizeof(*c->items));
}

/* Cuts the pending items into bodies; returns how many (or LH_ENOMEM). */
static int form_bodies(struct os_ctx *c, size_t npend, struct lh_err *err)
{
    uint64_t all = 0;
    for (size_t j = 0; j < npend; j++)
        all += c->off[c->pend[j] + 1] - c->off[c->pend[j]];
    uint64_t target = lh_os_bulk_target(all, c->cfg.bulk_max_bytes,
                                        (unsigned)c->cfg.concurrency);
    size_t nb = 0, k = 0;
    while (k < npend) {
        size_t first = k;
        k = lh_os_bulk_cut(c->off, c->pend, c->lim, first, npend, c->cfg.bulk_max_bytes, target);
        uint64_t total = 0;
        for (size_t j = first; j < k; j++)
            total += c->off[c->pend[j] + 1] - c->off[c->pend[j]];
        if (reserve_bodies(c, nb + 1) < 0)
            return lh_err_set(err, LH_ENOMEM, "opensearch sink: out of memory");
        struct body *b = &c->bodies[nb++];
        b->first = first;
        b->count = k - first;
        int contiguous = 1;
        for (size_t j = first + 1; j < k && contiguous; j++)
            contiguous = c->pend[j] == c->pend[j - 1] + 1;
        if (contiguous) {
            b->data = c->enc.data + c->off[c->pend[first]];
            b->len = (size_t)total;
        } else {
            lh_buf_reset(&b->copy);
            if (lh_buf_reserve(&b->copy, (size_t)total) < 0)
                return lh_err_set(err, LH_ENOMEM, "opensearch sink: out of memory");
            for (size_t j = first; j < k; j++) {
                size_t i = c->pend[j];
                lh_buf_append(&b->copy, c->enc.data + c->off[i], c->off[i + 1] - c->off[i]);
            }
            b->data = b->copy.data;
            b->len = b->copy.len;
        }
        struct lh_http_exchange *x = &c->x[nb - 1];
        memset(&x->req, 0, sizeof(x->req));
        x->req.method = "POST";
        x->req.url = c->bulk_urls[c->next_url++ % c->nurls];
        x->req.timeout_ms = c->cfg.timeout_ms;
        if (c->cfg.gzip) {
            lh_buf_reset(&b->gz);
            int rc = lh_codec_ctx_gzip(c->codec, (int)c->cfg.gzip_level, b->data, b->len,
                                       &b->gz, err);
            if (rc < 0)
                return rc;
            x->req.body = b->gz.data;
            x->req.body_len = b->gz.len;
            x->req.headers = c->hdr_gzip;
        } else {
            x->req.body = b->data;
            x->req.body_len = b->len;
            x->req.headers = c->hdr_plain;
        }
    }
    return (int)nb;
}

/* What one round of requests left to do. */
struct round {
    size_t retry_items;        /* refused items to resend after a delay */
    size_t split;              /* bodies cut in halves, to resend at once */
    int full;                  /* a whole request was refused with 429 */
    int fail;                  /* 0, or LH_EUNAVAIL: stop the write */
    uint64_t retry_after_ms;   /* largest Retry-After seen */
    char why[300];             /* the last reason for a retry or a failure */
};

static void keep_pending(struct os_ctx *c, const struct body *b, size_t *npend2)
{
    for (size_t k = 0; k < b->count; k++)
        c->pend2[(*npend2)++] = c->pend[b->first + k];
}

static int handle_body(struct os_ctx *c, const struct body *b, struct lh_http_exchange *x,
                       struct lh_sink_report *rep, struct round *r, size_t *npend2,
                       struct lh_err *err)
{
    lh_histogram_observe(c->m_latency, x->resp.seconds);
    lh_counter_add(c->m_requests, 1);
    if (x->rc < 0) {
        lh_counter_add(c->m_req_failed, 1);
        snprintf(r->why, sizeof(r->why), "%s", x->err.msg);
        r->fail = LH_EUNAVAIL;
        keep_pending(c, b, npend2);
        return 0;
    }
    lh_counter_add(c->m_bytes, x->req.body_len);
    lh_counter_add(c->m_bytes_raw, b->len);
    long st = x->resp.status;
    if (st == 200) {
        if (reserve_parsed(c, b->count) < 0)
            return lh_err_set(err, LH_ENOMEM, "opensearch sink: out of memory");
        struct lh_err perr = { 0 };
        const char *rb = x->resp.body.data ? x->resp.body.data : "";
        if (lh_os_bulk_parse(rb, x->resp.body.len, c->items, b->count, &perr) < 0) {
            lh_counter_add(c->m_req_failed, 1);
            snprintf(r->why, sizeof(r->why), "%s", perr.msg);
            r->fail = LH_EUNAVAIL;
            keep_pending(c, b, npend2);
            return 0;
        }
        for (size_t k = 0; k < b->count; k++) {
            const struct lh_os_item *it = &c->items[k];
            size_t i = c->pend[b->first + k];
            switch (it->outcome) {
            case LH_OS_CREATED:
                rep->written++;
                lh_counter_add(c->m_written, 1);
                break;
            case LH_OS_DUPLICATE:
                rep->duplicates++;
                lh_counter_add(c->m_dup, 1);
                break;
            case LH_OS_REJECT: {
                char reason[sizeof(rep->rejects[0].reason)];
                lh_os_item_reason(rb, it, reason, sizeof(reason));
                if (lh_sink_report_reject(rep, i, "%s", reason) < 0)
                    return lh_err_set(err, LH_ENOMEM, "opensearch sink: out of memory");
                const char *cls = lh_os_reject_class(it->status, rb + it->type_off,
                                                     it->type_len);
                for (int k2 = 0; k2 < RC_COUNT; k2++)
                    if (cls == reject_class_names[k2])
                        lh_counter_add(c->m_reject[k2], 1);
                lh_counter_add(c->m_rejected, 1);
                break;
            }
            case LH_OS_RETRY:
                lh_os_item_reason(rb, it, r->why, sizeof(r->why));
                c->pend2[(*npend2)++] = i;
                r->retry_items++;
                lh_counter_add(c->m_retried, 1);
                break;
            }
        }
        return 0;
    }
    lh_counter_add(c->m_req_failed, 1);
    if ((st == 413 || st == 400) && b->count > 1) {
        /* Too large or unparsable as a whole: halve it, down to single
         * documents, so the guilty one is found and the rest go through. */
        uint64_t half = b->len / 2 ? b->len / 2 : 1;
        for (size_t k = 0; k < b->count; k++) {
            size_t i = c->pend[b->first + k];
            if (c->lim[i] > half)
                c->lim[i] = half;
        }
        keep_pending(c, b, npend2);
        r->split++;
        return 0;
    }
    if (st == 413 || st == 400) {
        size_t i = c->pend[b->first];
        const char *cls = reject_class_names[st == 413 ? RC_TOO_LARGE : RC_OTHER];
        int rc = st == 413
            ? lh_sink_report_reject(rep, i, "document too large: HTTP 413 for %zu bytes", b->len)
            : lh_sink_report_reject(rep, i, "HTTP 400: %.200s", excerpt(&x->resp));
        if (rc < 0)
            return lh_err_set(err, LH_ENOMEM, "opensearch sink: out of memory");
        for (int k2 = 0; k2 < RC_COUNT; k2++)
            if (cls == reject_class_names[k2])
                lh_counter_add(c->m_reject[k2], 1);
        lh_counter_add(c->m_rejected, 1);
        return 0;
    }
    /* 429 / 5xx / auth / anything else for the whole request. */
    snprintf(r->why, sizeof(r->why), "POST %s: HTTP %ld: %.200s", x->req.url, st,
             excerpt(&x->resp));
    keep_pending(c, b, npend2);
    if (st == 429) {
        /* The node is saturated (queues, indexing pressure): wait, and send
         * smaller bodies, which also gets a body larger than the node's
         * indexing-pressure limit through. */
        r->full = 1;
        r->retry_items += b->count;
        lh_counter_add(c->m_retried, b->count);
        uint64_t half = b->len / 2 > MIN_SPLIT_BYTES ? b->len / 2 : MIN_SPLIT_BYTES;
        for (size_t k = 0; b->count > 1 && k < b->count; k++) {
            size_t i = c->pend[b->first + k];
            if (c->lim[i] > half)
                c->lim[i] = half;
        }
        const char *ra = lh_http_response_header(&x->resp, "Retry-After");
        uint64_t ms;
        if (ra && lh_backoff_parse_retry_after(ra, strlen(ra), lh_time_now_ns(), &ms, NULL) == 0 &&
            ms > r->retry_after_ms)
            r->retry_after_ms = ms;
    } else {
        r->fail = LH_EUNAVAIL;
    }
    return 0;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int os_write(struct lh_sink *s, const struct lh_event *evs, size_t n,
                    struct lh_sink_report *rep, struct lh_err *err)
{
    struct os_ctx *c = s->ctx;
    if (n == 0)
        return 0;
    int rc = lh_sink_opensearch_setup(s, err);
    if (rc < 0) {
        /* Whatever kept setup from finishing, nothing was written: pause. */
        lh_err_wrap(err, "%s: setup", s->name);
        if (err)
            err->code = LH_EUNAVAIL;
        return LH_EUNAVAIL;
    }
    if (reserve_items(c, n) < 0)
        return lh_err_set(err, LH_ENOMEM, "%s: out of memory", s->name);

    lh_buf_reset(&c->enc);
    for (size_t i = 0; i < n; i++) {
        c->off[i] = c->enc.len;
        c->lim[i] = c->cfg.bulk_max_bytes;
        c->pend[i] = i;
        if (lh_os_bulk_item(&c->enc, c->cfg.index_prefix, &evs[i], c->cfg.template.date_nanos))
            return lh_err_set(err, LH_ENOMEM, "%s: out of memory", s->name);
    }
    c->off[n] = c->enc.len;

    size_t npend = n;
    int64_t deadline = lh_time_mono_ns() + c->cfg.retry_timeout_ms * LH_NS_PER_MS;
    lh_backoff_reset(&c->bo);
    for (;;) {
        int nb = form_bodies(c, npend, err);
        if (nb < 0)
            return nb;
        struct lh_err xerr = { 0 };
        if ((rc = lh_http_client_do_all(c->bulk, c->x, (size_t)nb, &xerr)) < 0)
            return lh_err_set(err, LH_EUNAVAIL, "%s: %s", s->name, xerr.msg);
        struct round r = { 0 };
        size_t npend2 = 0;
        for (int b = 0; b < nb; b++)
            if ((rc = handle_body(c, &c->bodies[b], &c->x[b], rep, &r, &npend2, err)) < 0)
                return rc;
        size_t *t = c->pend;
        c->pend = c->pend2;
        c->pend2 = t;
        npend = npend2;
        if (npend == 0)
            return 0;
        if (r.fail)
            return lh_err_set(err, r.fail, "%s: %zu of %zu documents not written: %s", s->name,
                              npend, n, r.why);
        if (r.retry_items == 0)
            continue;   /* only halved bodies: send them at once */
        uint64_t delay = lh_backoff_next_ms(&c->bo);
        if (r.retry_after_ms > delay)
            delay = r.retry_after_ms;
        int64_t now = lh_time_mono_ns();
        if (now + (int64_t)delay * LH_NS_PER_MS > deadline)   /* a last try at the deadline */
            delay = now < deadline ? (uint64_t)((deadline - now) / LH_NS_PER_MS) : 0;
        if (delay == 0 && now >= deadline)
            return lh_err_set(err, r.full ? LH_EFULL : LH_EUNAVAIL,
                              "%s: %zu of %zu documents still refused after %lld ms: %s",
                              s->name, npend, n, (long long)c->cfg.retry_timeout_ms, r.why);
        lh_debug("%s: resending %zu refused documents in %llu ms: %s", s->name, npend,
                 (unsigned long long)delay, r.why);
        sleep_ms(delay);
    }
}

/* ------------------------------------------------------------------------ */
/* create / destroy */

static void os_destroy(struct lh_sink *s)
{
    struct os_ctx *c = s->ctx;
    if (!c)
        return;
    lh_http_client_destroy(c->bulk);
    lh_http_client_destroy(c->ctl);
    lh_codec_ctx_destroy(c->codec);
    for (size_t i = 0; i < c->nurls; i++) {
        free(c->bulk_urls ? c->bulk_urls[i] : NULL);
        free(c->base_urls ? c->base_urls[i] : NULL);
    }
    free(c->bulk_urls);
    free(c->base_urls);
    free(c->auth);
    lh_buf_free(&c->enc);
    free(c->off);
    free(c->lim);
    free(c->pend);
    free(c->pend2);
    for (size_t i = 0; i < c->cap_bodies; i++) {
        lh_buf_free(&c->bodies[i].copy);
        lh_buf_free(&c->bodies[i].gz);
        lh_http_response_free(&c->x[i].resp);
    }
    free(c->bodies);
    free(c->x);
    free(c->items);
    pthread_mutex_destroy(&c->ctl_mu);
    lh_conf_free(lh_sink_opensearch_opts, &c->cfg);
    free(c);
}

static const struct lh_sink_ops os_ops = {
    .name = "opensearch",
    .write = os_write,
    .flush = NULL,
    .ready = os_ready,
    .destroy = os_destroy,
};

static char *dup_str(const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

/* Deep copy of the strings a config holds. */
static int copy_config(struct lh_sink_opensearch_config *dst,
                       const struct lh_sink_opensearch_config *src)
{
    int fail = 0;
    *dst = *src;
    dst->urls.v = NULL;
    dst->urls.n = 0;
    if (src->urls.n) {
        dst->urls.v = calloc(src->urls.n, sizeof(char *));
        if (!dst->urls.v)
            fail = 1;
        else
            for (size_t i = 0; i < src->urls.n; i++, dst->urls.n++)
                dst->urls.v[i] = dup_str(src->urls.v[i], &fail);
    }
    dst->index_prefix = dup_str(src->index_prefix, &fail);
    dst->username = dup_str(src->username, &fail);
    dst->password = dup_str(src->password, &fail);
    dst->api_key = dup_str(src->api_key, &fail);
    dst->ca_file = dup_str(src->ca_file, &fail);
    dst->cert_file = dup_str(src->cert_file, &fail);
    dst->key_file = dup_str(src->key_file, &fail);
    dst->template.name = dup_str(src->template.name, &fail);
    dst->template.refresh_interval = dup_str(src->template.refresh_interval, &fail);
    dst->template.codec = dup_str(src->template.codec, &fail);
    return fail ? LH_ENOMEM : 0;
}

static int valid_prefix(const char *p)
{
    if (!p || !*p || strlen(p) > 64 || *p == '-' || *p == '_' || *p == '+' || *p == '.')
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-' || *p == '.'))
            return 0;
    return 1;
}

static int check_config(const struct lh_sink_opensearch_config *cfg, struct lh_err *err)
{
    if (cfg->urls.n == 0)
        return lh_err_set(err, LH_EINVAL, "opensearch: urls: at least one URL is needed");
    for (size_t i = 0; i < cfg->urls.n; i++)
        if (!cfg->urls.v[i] || (strncmp(cfg->urls.v[i], "http://", 7) != 0 &&
                                strncmp(cfg->urls.v[i], "https://", 8) != 0) ||
            strlen(cfg->urls.v[i]) > 1024)
            return lh_err_set(err, LH_EINVAL, "opensearch: urls: %s: not an http(s) URL",
                              cfg->urls.v[i] ? cfg->urls.v[i] : "(null)");
    if (!valid_prefix(cfg->index_prefix))
        return lh_err_set(err, LH_EINVAL,
                          "opensearch: index_prefix: \"%s\" must be 1-64 bytes of "
                          "[a-z0-9_.-], not starting with -, _, + or .",
                          cfg->index_prefix ? cfg->index_prefix : "");
    if (cfg->bulk_max_bytes < 1024 || cfg->bulk_max_bytes > (1ull << 30))
        return lh_err_set(err, LH_EINVAL, "opensearch: bulk_max_bytes: 1KiB..1GiB");
    if (cfg->concurrency < 1 || cfg->concurrency > 64)
        return lh_err_set(err, LH_EINVAL, "opensearch: concurrency: 1..64");
    if (cfg->gzip_level < LH_CODEC_GZIP_LEVEL_MIN || cfg->gzip_level > LH_CODEC_GZIP_LEVEL_MAX)
        return lh_err_set(err, LH_EINVAL, "opensearch: gzip_level: 0..12");
    if (cfg->timeout_ms <= 0 || cfg->connect_timeout_ms <= 0 || cfg->ready_timeout_ms <= 0 ||
        cfg->retry_timeout_ms < 0 || cfg->backoff_base_ms <= 0 ||
        cfg->backoff_cap_ms < cfg->backoff_base_ms || cfg->backoff_cap_ms > UINT32_MAX)
        return lh_err_set(err, LH_EINVAL,
                          "opensearch: timeouts must be > 0 and backoff_base <= backoff_cap");
    if (cfg->username && !cfg->password)
        return lh_err_set(err, LH_EINVAL, "opensearch: username needs a password");
    if (cfg->username && cfg->api_key)
        return lh_err_set(err, LH_EINVAL, "opensearch: username and api_key exclude each other");
    const struct lh_os_template_config *t = &cfg->template;
    if (t->install) {
        if (!t->name || !*t->name || strspn(t->name, "abcdefghijklmnopqrstuvwxyz0123456789_-.") !=
                                         strlen(t->name))
            return lh_err_set(err, LH_EINVAL, "opensearch: template.name: [a-z0-9_.-]+");
        if (t->shards < 1 || t->replicas < 0)
            return lh_err_set(err, LH_EINVAL,
                              "opensearch: template: shards >= 1 and replicas >= 0");
    }
    return 0;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static int make_auth(struct os_ctx *c)
{
    const struct lh_sink_opensearch_config *cfg = &c->cfg;
    if (cfg->api_key) {
        c->auth = join("ApiKey ", cfg->api_key);
        return c->auth ? 0 : LH_ENOMEM;
    }
    if (!cfg->username)
        return 0;
    size_t lu = strlen(cfg->username), lp = strlen(cfg->password);
    char *plain = malloc(lu + lp + 2);
    size_t cap = 6 + 4 * ((lu + lp + 1 + 2) / 3) + 1;
    c->auth = malloc(cap);
    if (!plain || !c->auth) {
        free(plain);
        return LH_ENOMEM;
    }
    memcpy(plain, cfg->username, lu);
    plain[lu] = ':';
    memcpy(plain + lu + 1, cfg->password, lp);
    memcpy(c->auth, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)c->auth + 6, (const unsigned char *)plain,
                    (int)(lu + lp + 1));
    OPENSSL_cleanse(plain, lu + lp + 1);
    free(plain);
    return 0;
}

static void make_headers(struct os_ctx *c)
{
    size_t k = 0;
    c->hdr_plain[k++] = (struct lh_http_header){ "Content-Type", "application/x-ndjson" };
    if (c->auth)
        c->hdr_plain[k++] = (struct lh_http_header){ "Authorization", c->auth };
    c->hdr_plain[k] = (struct lh_http_header){ NULL, NULL };
    k = 0;
    c->hdr_gzip[k++] = (struct lh_http_header){ "Content-Type", "application/x-ndjson" };
    c->hdr_gzip[k++] = (struct lh_http_header){ "Content-Encoding", "gzip" };
    if (c->auth)
        c->hdr_gzip[k++] = (struct lh_http_header){ "Authorization", c->auth };
    c->hdr_gzip[k] = (struct lh_http_header){ NULL, NULL };
    k = 0;
    c->hdr_json[k++] = (struct lh_http_header){ "Content-Type", "application/json" };
    if (c->auth)
        c->hdr_json[k++] = (struct lh_http_header){ "Authorization", c->auth };
    c->hdr_json[k] = (struct lh_http_header){ NULL, NULL };
}

static void make_metrics(struct os_ctx *c, struct lh_metrics *m)
{
    char sink[96], lab[192];
    lh_metrics_label(sink, sizeof(sink), "sink", c->sink.name);
#define DOCS "Documents the OpenSearch sink handled, by outcome."
    snprintf(lab, sizeof(lab), "%s,outcome=\"written\"", sink);
    c->m_written = lh_counter_get(m, "loghaul_opensearch_documents_total", DOCS, lab);
    snprintf(lab, sizeof(lab), "%s,outcome=\"duplicate\"", sink);
    c->m_dup = lh_counter_get(m, "loghaul_opensearch_documents_total", DOCS, lab);
    snprintf(lab, sizeof(lab), "%s,outcome=\"rejected\"", sink);
    c->m_rejected = lh_counter_get(m, "loghaul_opensearch_documents_total", DOCS, lab);
    for (int k = 0; k < RC_COUNT; k++) {
        snprintf(lab, sizeof(lab), "%s,class=\"%s\"", sink, reject_class_names[k]);
        c->m_reject[k] = lh_counter_get(m, "loghaul_opensearch_rejects_total",
                                        "Documents refused for good, by reason class.", lab);
    }
    c->m_retried = lh_counter_get(m, "loghaul_opensearch_retried_documents_total",
                                  "Documents resent after a 429/5xx item response.", sink);
    c->m_requests = lh_counter_get(m, "loghaul_opensearch_bulk_requests_total",
                                   "Bulk requests sent.", sink);
    c->m_req_failed = lh_counter_get(m, "loghaul_opensearch_bulk_request_errors_total",
                                     "Bulk requests that failed as a whole.", sink);
    c->m_bytes = lh_counter_get(m, "loghaul_opensearch_sent_bytes_total",
                                "Bulk body bytes sent (after compression).", sink);
    c->m_bytes_raw = lh_counter_get(m, "loghaul_opensearch_bulk_bytes_total",
                                    "Bulk body bytes before compression.", sink);
    c->m_latency = lh_histogram_get(m, "loghaul_opensearch_bulk_seconds",
                                    "Time of one bulk request.", sink, lh_latency_buckets,
                                    lh_latency_nbuckets);
#undef DOCS
}

int lh_sink_opensearch_create(const struct lh_sink_opensearch_config *cfg, const char *name,
                              struct lh_metrics *metrics, struct lh_sink **out,
                              struct lh_err *err)
{
    int rc = check_config(cfg, err);
    if (rc < 0)
        return rc;
    struct os_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return lh_err_set(err, LH_ENOMEM, "opensearch: out of memory");
    pthread_mutex_init(&c->ctl_mu, NULL);
    c->sink.ops = &os_ops;
    c->sink.ctx = c;
    snprintf(c->sink.name, sizeof(c->sink.name), "%s", name && *name ? name : "opensearch");
    rc = LH_ENOMEM;
    if (copy_config(&c->cfg, cfg) < 0 || make_auth(c) < 0)
        goto oom;
    c->nurls = cfg->urls.n;
    c->bulk_urls = calloc(c->nurls, sizeof(char *));
    c->base_urls = calloc(c->nurls, sizeof(char *));
    if (!c->bulk_urls || !c->base_urls)
        goto oom;
    for (size_t i = 0; i < c->nurls; i++) {
        c->base_urls[i] = strdup(cfg->urls.v[i]);
        if (!c->base_urls[i])
            goto oom;
        size_t l = strlen(c->base_urls[i]);
        while (l > 0 && c->base_urls[i][l - 1] == '/')
            c->base_urls[i][--l] = '\0';
        c->bulk_urls[i] = join(c->base_urls[i], BULK_QUERY);
        if (!c->bulk_urls[i])
            goto oom;
    }
    make_headers(c);

    struct lh_http_client_config hc = {
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .timeout_ms = cfg->timeout_ms,
        .max_response = 256u << 20,
        .ca_file = cfg->ca_file,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .max_parallel = cfg->concurrency,
        .user_agent = "loghaul-indexer",
    };
    if ((rc = lh_http_client_create(&hc, &c->bulk, err)) < 0)
        goto fail;
    hc.max_parallel = 1;
    if ((rc = lh_http_client_create(&hc, &c->ctl, err)) < 0)
        goto fail;
    if ((rc = lh_codec_ctx_create(&c->codec, err)) < 0)
        goto fail;
    lh_backoff_init(&c->bo, (uint32_t)cfg->backoff_base_ms, (uint32_t)cfg->backoff_cap_ms);
    if (metrics)
        make_metrics(c, metrics);
    *out = &c->sink;
    return 0;
oom:
    lh_err_set(err, LH_ENOMEM, "opensearch: out of memory");
fail:
    os_destroy(&c->sink);
    return rc;
}
