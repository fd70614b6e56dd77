/* backend_opensearch.c - OpenSearch / Elasticsearch as a queryd backend:
 * the query as Query DSL (os_dsl.h) over the tenant's daily indices, the
 * answer's hits back into events. A small pool of HTTP clients (one per
 * query at a time) keeps connections open. */
#include "backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/time.h"
#include "os_dsl.h"

#define OOFF(f) offsetof(struct lh_backend_os_config, f)
const struct lh_opt lh_backend_os_opts[] = {
    { LH_OPT_STRLIST, "urls", "http://127.0.0.1:9200", OOFF(urls),
      "base URLs of OpenSearch nodes; requests rotate over them" },
    { LH_OPT_STR, "index_prefix", "logs", OOFF(index_prefix),
      "indices are <prefix>-<tenant>-YYYY.MM.DD (as the indexer writes them)" },
    { LH_OPT_DURATION, "timeout", "30s", OOFF(timeout_ms),
      "one request (also bounded by the query's time limit)" },
    { LH_OPT_DURATION, "connect_timeout", "5s", OOFF(connect_timeout_ms), "TCP + TLS connect" },
    { LH_OPT_INT, "max_connections", "8", OOFF(max_connections),
      "queries sent at once (each keeps its connection)" },
    { LH_OPT_STR, "username", NULL, OOFF(username), "basic auth user" },
    { LH_OPT_STR, "password", NULL, OOFF(password), "basic auth password", LH_OPT_SECRET },
    { LH_OPT_STR, "api_key", NULL, OOFF(api_key), "Authorization: ApiKey <api_key>",
      LH_OPT_SECRET },
    { LH_OPT_STR, "ca", NULL, OOFF(ca_file), "PEM CA to verify the nodes (https)" },
    { LH_OPT_STR, "cert", NULL, OOFF(cert_file), "PEM client certificate (mTLS)" },
    { LH_OPT_STR, "key", NULL, OOFF(key_file), "its key" },
    { 0 }
};

struct os {
    char **urls;
    size_t nurls;
    char *prefix;
    int64_t timeout_ms;
    char auth[600];                  /* Authorization header value, "" for none */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct lh_http_client **free;    /* idle clients */
    size_t nfree, nclients, max_clients;
    struct lh_http_client_config ccfg;
    unsigned next_url;               /* atomic */
};

/* ---- the client pool ---------------------------------------------------- */

static int client_get(struct os *o, int64_t deadline_ns, struct lh_http_client **out,
                      struct lh_err *err)
{
    pthread_mutex_lock(&o->mu);
    while (o->nfree == 0 && o->nclients >= o->max_clients) {
        int64_t now = lh_time_mono_ns();
        if (deadline_ns && now >= deadline_ns) {
            pthread_mutex_unlock(&o->mu);
            return lh_err_set(err, LH_ETIMEDOUT, "opensearch: no connection free in time");
        }
        /* condition variables use the wall clock: wait in short steps */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->cv, &o->mu, &ts);
    }
    if (o->nfree) {
        *out = o->free[--o->nfree];
        pthread_mutex_unlock(&o->mu);
        return 0;
    }
    o->nclients++;
    pthread_mutex_unlock(&o->mu);
    int rc = lh_http_client_create(&o->ccfg, out, err);
    if (rc < 0) {
        pthread_mutex_lock(&o->mu);
        o->nclients--;
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
    }
    return rc;
}

static void client_put(struct os *o, struct lh_http_client *c)
{
    pthread_mutex_lock(&o->mu);
    o->free[o->nfree++] = c;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* POSTs body to <url>/<path> and parses the JSON answer into *root. */
static int os_post(struct os *o, const char *path, const struct lh_buf *body,
                   int64_t deadline_ns, json_t **root, struct lh_err *err)
{
    struct lh_http_client *c;
    int rc = client_get(o, deadline_ns, &c, err);
    if (rc < 0)
        return rc;
    int64_t timeout = o->timeout_ms;
    if (deadline_ns) {
        int64_t left = (deadline_ns - lh_time_mono_ns()) / LH_NS_PER_MS;
        if (left <= 0) {
            client_put(o, c);
            return lh_err_set(err, LH_ETIMEDOUT, "opensearch: time limit passed");
        }
        if (left < timeout)
            timeout = left;
    }
    unsigned k = __atomic_fetch_add(&o->next_url, 1, __ATOMIC_RELAXED);
    struct lh_buf url = LH_BUF_INIT;
    lh_buf_printf(&url, "%s/%s", o->urls[k % o->nurls], path);
    struct lh_http_header hdrs[3] = { { "Content-Type", "application/json" },
                                      { o->auth[0] ? "Authorization" : NULL, o->auth },
                                      { NULL, NULL } };
    struct lh_http_request req = { .method = body ? "POST" : "GET", .url = url.data,
                                   .headers = hdrs, .body = body ? body->data : NULL,
                                   .body_len = body ? body->len : 0, .timeout_ms = timeout };
    struct lh_http_response resp = { 0 };
    rc = url.data ? lh_http_client_do(c, &req, &resp, err) : LH_ENOMEM;
    client_put(o, c);
    lh_buf_free(&url);
    if (rc == LH_ETIMEDOUT && deadline_ns && lh_time_mono_ns() >= deadline_ns - LH_NS_PER_MS)
        rc = lh_err_set(err, LH_ETIMEDOUT, "opensearch: time limit passed");
    else if (rc < 0) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err ? err->msg : "request failed");
        rc = lh_err_set(err, rc == LH_ENOMEM ? LH_ENOMEM : LH_EUNAVAIL, "opensearch: %s", why);
    }
    if (rc == 0 && resp.status != 200) {
        const char *b = resp.body.data ? resp.body.data : "";
        if (resp.status == 429)
            rc = lh_err_set(err, LH_EFULL, "opensearch: busy (429): %.300s", b);
        else if (resp.status >= 500 || resp.status == 401 || resp.status == 403)
            rc = lh_err_set(err, LH_EUNAVAIL, "opensearch: HTTP %ld: %.300s", resp.status, b);
        else
            rc = lh_err_set(err, LH_ERR, "opensearch refused the query: HTTP %ld: %.400s",
                            resp.status, b);
    }
    if (rc == 0) {
        json_error_t je;
        *root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
        if (!*root)
            rc = lh_err_set(err, LH_EUNAVAIL, "opensearch: answer is not JSON: %s", je.text);
    }
    if (rc == 0 && json_is_true(json_object_get(*root, "timed_out"))) {
        json_decref(*root);
        *root = NULL;
        rc = lh_err_set(err, LH_ETIMEDOUT, "opensearch: the search timed out");
    }
    if (rc == 0) {
        json_t *shards = json_object_get(*root, "_shards");
        if (json_integer_value(json_object_get(shards, "failed")) > 0) {
            json_decref(*root);
            *root = NULL;
            rc = lh_err_set(err, LH_EUNAVAIL, "opensearch: some shards failed");
        }
    }
    lh_http_response_free(&resp);
    return rc;
}

/* "<indices>/_search?..." for bq. */
static int search_path(struct os *o, const struct lh_bquery *bq, struct lh_buf *path)
{
    int rc = lh_osq_indices(o->prefix, bq->tenant, bq->start_ns, bq->end_ns, lh_time_now_ns(),
                            path);
    rc |= lh_buf_puts(path, "/_search?ignore_unavailable=true&allow_no_indices=true");
    return rc ? LH_ENOMEM : 0;
}

/* ---- hits into events --------------------------------------------------- */

static const char *str_of(json_t *obj, const char *key, struct lh_arena *a)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return lh_arena_strndup(a, json_string_value(v), json_string_length(v));
    if (json_is_integer(v) || json_is_real(v)) {
        char buf[64];
        if (json_is_integer(v))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        else
            snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return lh_arena_strdup(a, buf);
    }
    return NULL;
}

static int to_event(json_t *src, struct lh_event *ev, const char *tenant, struct lh_arena *a)
{
    memset(ev, 0, sizeof(*ev));
    const char *ts = json_string_value(json_object_get(src, "timestamp"));
    if (!ts || lh_time_parse_rfc3339(ts, strlen(ts), &ev->ts_ns, NULL) < 0)
        return LH_EINVAL;
    ev->tenant = tenant;
    ev->id = str_of(src, "id", a);
    ev->service = str_of(src, "service", a);
    const char *lvl = json_string_value(json_object_get(src, "level"));
    ev->level = lvl ? lh_level_parse(lvl, strlen(lvl)) : LH_LEVEL_UNKNOWN;
    ev->host = str_of(src, "host", a);
    ev->trace_id = str_of(src, "trace_id", a);
    ev->span_id = str_of(src, "span_id", a);
    ev->user_id = str_of(src, "user_id", a);
    ev->message = str_of(src, "message", a);
    ev->stream = str_of(src, "stream", a);
    ev->container_id = str_of(src, "container_id", a);
    ev->region = str_of(src, "region", a);
    ev->file = str_of(src, "file", a);
    json_t *k8s = json_object_get(src, "k8s");
    if (json_is_object(k8s)) {
        ev->k8s_namespace = str_of(k8s, "namespace", a);
        ev->k8s_pod = str_of(k8s, "pod", a);
        ev->k8s_container = str_of(k8s, "container", a);
    }
    json_t *meta = json_object_get(src, "custom_metadata");
    if (json_is_object(meta) && json_object_size(meta)) {
        ev->meta = lh_arena_alloc(a, json_object_size(meta) * sizeof(*ev->meta));
        if (!ev->meta)
            return LH_ENOMEM;
        const char *key;
        json_t *v;
        json_object_foreach(meta, key, v) {
            const char *val = str_of(meta, key, a);
            if (!val)
                continue;   /* nested values: not written by loghaul */
            ev->meta[ev->nmeta].key = lh_arena_strdup(a, key);
            ev->meta[ev->nmeta].value = val;
            if (!ev->meta[ev->nmeta].key)
                return LH_ENOMEM;
            ev->nmeta++;
        }
    }
    return 0;
}

static int os_search(struct lh_backend *b, const struct lh_bquery *bq, struct lh_bresult *out,
                     struct lh_err *err)
{
    struct os *o = b->ctx;
    struct lh_buf body = LH_BUF_INIT, path = LH_BUF_INIT;
    json_t *root = NULL;
    memset(out, 0, sizeof(*out));
    int rc = lh_osq_search_body(bq, &body, err);
    if (rc == 0 && search_path(o, bq, &path) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    if (rc == 0)
        rc = os_post(o, path.data, &body, bq->deadline_ns, &root, err);
    lh_buf_free(&body);
    lh_buf_free(&path);
    if (rc < 0)
        return rc;
    json_t *hits = json_object_get(root, "hits");
    json_t *total = json_object_get(hits, "total");
    json_t *arr = json_object_get(hits, "hits");
    if (bq->total_cap) {
        out->total = (uint64_t)json_integer_value(json_object_get(total, "value"));
        const char *rel = json_string_value(json_object_get(total, "relation"));
        out->total_lower_bound = (rel && strcmp(rel, "gte") == 0) || out->total >= bq->total_cap;
    }
    size_t n = json_array_size(arr);
    out->more = n > bq->limit;
    if (n > bq->limit)
        n = bq->limit;
    if (n) {
        out->events = lh_arena_alloc(&out->arena, n * sizeof(*out->events));
        if (!out->events)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *src = json_object_get(json_array_get(arr, i), "_source");
        int r = to_event(src, &out->events[out->n], bq->tenant, &out->arena);
        if (r == LH_ENOMEM)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        else if (r < 0)
            lh_warn("opensearch: hit without a valid timestamp skipped (tenant %s)", bq->tenant);
        else
            out->n++;
    }
    json_decref(root);
    if (rc < 0)
        lh_bresult_free(out);
    return rc;
}

static int os_histogram(struct lh_backend *b, const struct lh_bquery *bq, int64_t first_ns,
                        int64_t bucket_ns, size_t n, uint64_t *counts, struct lh_err *err)
{
    struct os *o = b->ctx;
    struct lh_buf body = LH_BUF_INIT, path = LH_BUF_INIT;
    json_t *root = NULL;
    int rc = lh_osq_histogram_body(bq, bucket_ns, &body, err);
    if (rc == 0 && search_path(o, bq, &path) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    if (rc == 0)
        rc = os_post(o, path.data, &body, bq->deadline_ns, &root, err);
    lh_buf_free(&body);
    lh_buf_free(&path);
    if (rc < 0)
        return rc;
    json_t *buckets = json_object_get(json_object_get(json_object_get(root, "aggregations"),
                                                      "h"), "buckets");
    size_t i;
    json_t *bk;
    json_array_foreach(buckets, i, bk) {
        int64_t key_ns = (int64_t)json_integer_value(json_object_get(bk, "key")) * LH_NS_PER_MS;
        uint64_t c = (uint64_t)json_integer_value(json_object_get(bk, "doc_count"));
        if (key_ns < first_ns)
            continue;
        size_t k = (size_t)((key_ns - first_ns) / bucket_ns);
        if (k < n)
            counts[k] += c;
    }
    json_decref(root);
    return 0;
}

static int os_top(struct lh_backend *b, const struct lh_bquery *bq, const struct lh_qtop *top,
                  struct lh_btop *out, struct lh_err *err)
{
    struct os *o = b->ctx;
    struct lh_buf body = LH_BUF_INIT, path = LH_BUF_INIT;
    json_t *root = NULL;
    memset(out, 0, sizeof(*out));
    int rc = lh_osq_top_body(bq, top, &body, err);
    if (rc == 0 && search_path(o, bq, &path) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    if (rc == 0)
        rc = os_post(o, path.data, &body, bq->deadline_ns, &root, err);
    lh_buf_free(&body);
    lh_buf_free(&path);
    if (rc < 0)
        return rc;
    json_t *aggs = json_object_get(root, "aggregations");
    json_t *t = json_object_get(aggs, "t");
    json_t *buckets = json_object_get(t, "buckets");
    out->other = (uint64_t)json_integer_value(json_object_get(t, "sum_other_doc_count"));
    out->missing = (uint64_t)json_integer_value(json_object_get(json_object_get(aggs, "m"),
                                                                "doc_count"));
    size_t nb = json_array_size(buckets);
    if (nb) {
        out->entries = lh_arena_alloc(&out->arena, nb * sizeof(*out->entries));
        if (!out->entries)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nb && rc == 0; i++) {
        json_t *bk = json_array_get(buckets, i);
        const char *v = str_of(bk, "key", &out->arena);
        if (!v)
            continue;
        out->entries[out->n].value = v;
        out->entries[out->n].count = (uint64_t)json_integer_value(json_object_get(bk,
                                                                                  "doc_count"));
        out->n++;
    }
    json_decref(root);
    if (rc < 0)
        lh_btop_free(out);
    return rc;
}

static int os_ready(struct lh_backend *b, struct lh_err *err)
{
    struct os *o = b->ctx;
    json_t *root = NULL;
    int rc = os_post(o, "_cluster/health?timeout=1s", NULL,
                     lh_time_mono_ns() + 2 * LH_NS_PER_SEC, &root, err);
    if (rc < 0)
        return rc;
    const char *status = json_string_value(json_object_get(root, "status"));
    if (!status || strcmp(status, "red") == 0)
        rc = lh_err_set(err, LH_EUNAVAIL, "opensearch: cluster status %s",
                        status ? status : "unknown");
    json_decref(root);
    return rc;
}

static void os_free(struct os *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nfree; i++)
        lh_http_client_destroy(o->free[i]);
    for (size_t i = 0; i < o->nurls; i++)
        free(o->urls[i]);
    free(o->urls);
    free(o->free);
    free(o->prefix);
    free(o->ccfg.ca_file);
    free(o->ccfg.cert_file);
    free(o->ccfg.key_file);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    OPENSSL_cleanse(o->auth, sizeof(o->auth));
    free(o);
}

static void os_destroy(struct lh_backend *b)
{
    os_free(b->ctx);
    free(b);
}

static const struct lh_backend_ops os_ops = {
    .name = "opensearch",
    .search = os_search,
    .histogram = os_histogram,
    .top = os_top,
    .ready = os_ready,
    .destroy = os_destroy,
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int lh_backend_opensearch_open(const struct lh_backend_os_config *cfg, struct lh_backend **out,
                               struct lh_err *err)
{
    if (cfg->urls.n == 0)
        return lh_err_set(err, LH_EINVAL, "opensearch: no urls");
    struct os *o = calloc(1, sizeof(*o));
    struct lh_backend *b = calloc(1, sizeof(*b));
    if (!o || !b) {
        free(o);
        free(b);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->max_clients = cfg->max_connections > 0 ? (size_t)cfg->max_connections : 8;
    o->free = calloc(o->max_clients, sizeof(*o->free));
    o->urls = calloc(cfg->urls.n, sizeof(*o->urls));
    o->prefix = strdup(cfg->index_prefix && *cfg->index_prefix ? cfg->index_prefix : "logs");
    int oom = !o->free || !o->urls || !o->prefix;
    for (size_t i = 0; !oom && i < cfg->urls.n; i++) {
        size_t l = strlen(cfg->urls.v[i]);
        while (l > 0 && cfg->urls.v[i][l - 1] == '/')
            l--;
        o->urls[i] = strndup(cfg->urls.v[i], l);
        oom |= !o->urls[i];
        o->nurls += !oom;
    }
    o->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    o->ccfg.connect_timeout_ms = cfg->connect_timeout_ms;
    o->ccfg.timeout_ms = o->timeout_ms;
    o->ccfg.max_response = 256u << 20;
    o->ccfg.accept_gzip = 1;
    o->ccfg.ca_file = dup_or_null(cfg->ca_file);
    o->ccfg.cert_file = dup_or_null(cfg->cert_file);
    o->ccfg.key_file = dup_or_null(cfg->key_file);
    oom |= (cfg->ca_file && !o->ccfg.ca_file) || (cfg->cert_file && !o->ccfg.cert_file) ||
           (cfg->key_file && !o->ccfg.key_file);
    if (cfg->api_key && *cfg->api_key) {
        snprintf(o->auth, sizeof(o->auth), "ApiKey %s", cfg->api_key);
    } else if (cfg->username && *cfg->username) {
        char up[300];
        unsigned char enc[420];
        int n = snprintf(up, sizeof(up), "%s:%s", cfg->username,
                         cfg->password ? cfg->password : "");
        if (n < 0 || (size_t)n >= sizeof(up)) {
            os_free(o);
            free(b);
            return lh_err_set(err, LH_EINVAL, "opensearch: username/password too long");
        }
        EVP_EncodeBlock(enc, (const unsigned char *)up, n);
        snprintf(o->auth, sizeof(o->auth), "Basic %s", enc);
        OPENSSL_cleanse(up, sizeof(up));
    }
    if (oom) {
        os_free(o);
        free(b);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    b->ops = &os_ops;
    b->ctx = o;
    *out = b;
    return 0;
}
