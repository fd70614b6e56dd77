/* sink_opensearch.c - the OpenSearch sink against a real OpenSearch
 * (tests/services/opensearch, 127.0.0.1:9200).
 *
 * Checks, in order, on indices of a prefix private to the run (removed at
 * the end, with its template):
 *   1. the index template: strict mapping, date_nanos, flat_object;
 *   2. N generated events (several tenants and days), written in batches with
 *      gzip bodies: written == N, _count == N exactly, per-index counts, and
 *      sampled documents (_mget) equal to their events field by field;
 *      flat_object exact-match term queries on custom_metadata.<key>;
 *   3. the same batches again (plain bodies): all duplicates, count unchanged;
 *   4. a batch with documents the server refuses for good (timestamp before
 *      1970 for date_nanos, a 40,000-byte keyword) among good ones: the good
 *      ones are indexed, the bad ones are in the report with the server's
 *      reason, at their batch index;
 *   5. a body over the server's 100 MB http.max_content_length (bulk_max_bytes
 *      raised to 1 GiB): the 413 is answered by halving, everything lands;
 *      a single 101 MB document is rejected as too large;
 *   6. an index with a write block: its items are retried (and the write
 *      ends LH_EUNAVAIL after retry_timeout while the block stays, with the
 *      other documents written); once the block is lifted they go through;
 *   7. OpenSearch stopped and started again in the middle of a run of
 *      batches (tests/services/opensearch stop/start): writes return
 *      LH_EUNAVAIL while it is down, ready() too, and every batch handed
 *      again until it succeeds; afterwards each event was created exactly
 *      once (sum of written == events) and _count matches.
 *
 * usage: sink_opensearch [--url URL] [--count N] [--service SCRIPT] [--no-restart]
 *        [--keep]
 * Exits 0 when every check passed, printing what it checked. */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../indexer/sink_opensearch.h"
#include "lh/arena.h"
#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/time.h"

static const char *g_url = "http://127.0.0.1:9200";
static const char *g_service = "tests/services/opensearch";
static char g_prefix[64];
static int g_failed;
static struct lh_http_client *g_http;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            g_failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

#define DIE(...)                                                                 \
    do {                                                                         \
        fprintf(stderr, "FATAL: " __VA_ARGS__);                                  \
        fputc('\n', stderr);                                                     \
        exit(1);                                                                 \
    } while (0)

/* ---- HTTP helpers ---- */

/* Performs method url [body]; returns the status, the parsed JSON in *out
 * (may be NULL) when asked. */
static long http(const char *method, const char *path, const char *body, json_t **out)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", g_url, path);
    struct lh_http_header h[] = { { "Content-Type", "application/json" }, { NULL, NULL } };
    struct lh_http_request req = { .method = method, .url = url, .headers = h, .body = body,
                                   .body_len = body ? strlen(body) : 0 };
    struct lh_http_response resp = { 0 };
    struct lh_err err = { 0 };
    if (out)
        *out = NULL;
    if (lh_http_client_do(g_http, &req, &resp, &err) < 0) {
        lh_http_response_free(&resp);
        return -1;
    }
    long st = resp.status;
    if (out && resp.body.len)
        *out = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    lh_http_response_free(&resp);
    return st;
}

static long count_of(const char *pattern, const char *query)
{
    char path[512];
    json_t *j;
    snprintf(path, sizeof(path), "/%s/_refresh", pattern);
    http("POST", path, NULL, NULL);
    snprintf(path, sizeof(path), "/%s/_count", pattern);
    long st = http(query ? "POST" : "GET", path, query, &j);
    long n = st == 200 ? (long)json_integer_value(json_object_get(j, "count")) : -1;
    json_decref(j);
    return n;
}

static long count_all(void)
{
    char pat[96];
    snprintf(pat, sizeof(pat), "%s-*", g_prefix);
    return count_of(pat, NULL);
}

/* ---- generated events ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static const char *const tenants[] = { "acme", "Globex Corp", "initech" };
static const char *const services[] = { "payment-service", "auth", "search-api", "cart" };
static const char *const words[] = { "database", "timeout", "user", "login", "failed",
                                     "request", "completed", "cache", "miss", "retry",
                                     "naïve", "\"quoted\"", "tab\there", "中文" };
#define DAY_NS (86400LL * LH_NS_PER_SEC)
static const int64_t base_ts = 1779523200LL * LH_NS_PER_SEC;   /* 2026-05-23T08:00:00Z */

/* Fills ev (strings from a) as event `i` of run `run`. */
static void gen_event(struct lh_arena *a, const char *run, size_t i, struct lh_event *ev)
{
    char b[512];
    memset(ev, 0, sizeof(*ev));
    ev->ts_ns = base_ts + (int64_t)(rng() % (3 * DAY_NS)) + (int64_t)(rng() % 1000);
    snprintf(b, sizeof(b), "%s-%zu", run, i);
    ev->id = lh_arena_strdup(a, b);
    ev->tenant = tenants[i % 3];
    ev->service = services[rng() % 4];
    ev->level = (enum lh_level)(rng() % LH_LEVEL_COUNT);
    snprintf(b, sizeof(b), "host-%02d", (int)(rng() % 20));
    ev->host = lh_arena_strdup(a, b);
    if (rng() % 2) {
        snprintf(b, sizeof(b), "tr_%016llx", (unsigned long long)rng());
        ev->trace_id = lh_arena_strdup(a, b);
        snprintf(b, sizeof(b), "sp_%08x", (unsigned)rng());
        ev->span_id = lh_arena_strdup(a, b);
    }
    if (rng() % 3 == 0) {
        snprintf(b, sizeof(b), "usr_%u", (unsigned)(rng() % 1000));
        ev->user_id = lh_arena_strdup(a, b);
    }
    size_t n = 0, nw = 5 + rng() % 30;
    for (size_t w = 0; w < nw && n < 400; w++)
        n += (size_t)snprintf(b + n, sizeof(b) - n, "%s%s", w ? " " : "",
                              words[rng() % (sizeof(words) / sizeof(words[0]))]);
    ev->message = lh_arena_strdup(a, b);
    snprintf(b + n, sizeof(b) - n, " raw");
    ev->raw = lh_arena_strdup(a, b);
    ev->stream = rng() % 2 ? "stdout" : "stderr";
    if (rng() % 2) {
        ev->container_id = "c_pay_88f9";
        ev->k8s_namespace = "prod";
        ev->k8s_pod = rng() % 2 ? "pay-7d9f" : NULL;
        ev->k8s_container = "app";
    }
    ev->region = rng() % 2 ? "us-east-1" : "eu-west-1";
    ev->file = "/var/log/app.log";
    ev->nmeta = rng() % 4;
    if (ev->nmeta) {
        ev->meta = lh_arena_calloc(a, ev->nmeta * sizeof(*ev->meta));
        for (size_t k = 0; k < ev->nmeta; k++) {
            static const char *const keys[] = { "order.id", "zone", "version", "sku" };
            ev->meta[k].key = keys[k];
            snprintf(b, sizeof(b), "v%u", (unsigned)(rng() % 50));
            ev->meta[k].value = lh_arena_strdup(a, b);
        }
    }
}

static struct lh_sink *make_sink(int gzip, uint64_t bulk_max, int64_t retry_ms,
                                 struct lh_metrics *m)
{
    struct lh_sink_opensearch_config cfg;
    struct lh_err err = { 0 };
    memset(&cfg, 0, sizeof(cfg));
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "urls: [%s]\nindex_prefix: %s\ngzip: %s\nretry_timeout: %lldms\n"
             "backoff_cap: 1s\ntemplate: {name: %s-logs, refresh_interval: 1s}\n",
             g_url, g_prefix, gzip ? "true" : "false", (long long)retry_ms, g_prefix);
    if (lh_conf_load_string("itest", yaml, strlen(yaml), lh_sink_opensearch_opts, &cfg, &err))
        DIE("config: %s", err.msg);
    if (bulk_max)
        cfg.bulk_max_bytes = bulk_max;
    struct lh_sink *s = NULL;
    if (lh_sink_opensearch_create(&cfg, "itest", m, &s, &err))
        DIE("create: %s", err.msg);
    lh_conf_free(lh_sink_opensearch_opts, &cfg);
    return s;
}

/* Writes evs in batches of `batch`, requiring success; sums the report. */
static void write_all(struct lh_sink *s, const struct lh_event *evs, size_t n, size_t batch,
                      struct lh_sink_report *sum)
{
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        struct lh_sink_report rep = { 0 };
        struct lh_err err = { 0 };
        int rc = lh_sink_write(s, evs + i, k, &rep, &err);
        CHECK(rc == 0, "write of events %zu..%zu: %d %s", i, i + k, rc, err.msg);
        sum->written += rep.written;
        sum->duplicates += rep.duplicates;
        for (size_t r = 0; r < rep.nrejects; r++)
            lh_sink_report_reject(sum, i + rep.rejects[r].index, "%s", rep.rejects[r].reason);
        lh_sink_report_free(&rep);
    }
}

static const char *str_of(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Compares a stored _source with the event it came from. */
static int source_matches(json_t *src, const struct lh_event *ev, char *why, size_t n)
{
    char ts[LH_TIME_RFC3339_SIZE];
    lh_time_format_rfc3339(ev->ts_ns, 9, ts, sizeof(ts));
    struct { const char *k, *v; } f[] = {
        { "timestamp", ts }, { "id", ev->id }, { "tenant", ev->tenant },
        { "service", ev->service }, { "level", lh_level_name(ev->level) }, { "host", ev->host },
        { "trace_id", ev->trace_id }, { "span_id", ev->span_id }, { "user_id", ev->user_id },
        { "message", ev->message }, { "raw", ev->raw }, { "stream", ev->stream },
        { "container_id", ev->container_id }, { "region", ev->region }, { "file", ev->file },
    };
    size_t expect_keys = 0;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!same(str_of(src, f[i].k), f[i].v)) {
            snprintf(why, n, "%s: stored \"%s\", event \"%s\"", f[i].k,
                     str_of(src, f[i].k) ? str_of(src, f[i].k) : "(absent)",
                     f[i].v ? f[i].v : "(absent)");
            return 0;
        }
        expect_keys += f[i].v != NULL;
    }
    json_t *k8s = json_object_get(src, "k8s");
    if (ev->k8s_namespace || ev->k8s_pod || ev->k8s_container) {
        expect_keys++;
        if (!same(str_of(k8s, "namespace"), ev->k8s_namespace) ||
            !same(str_of(k8s, "pod"), ev->k8s_pod) ||
            !same(str_of(k8s, "container"), ev->k8s_container)) {
            snprintf(why, n, "k8s differs");
            return 0;
        }
    } else if (k8s) {
        snprintf(why, n, "k8s present for an event without it");
        return 0;
    }
    json_t *meta = json_object_get(src, "custom_metadata");
    if (ev->nmeta) {
        expect_keys++;
        if (json_object_size(meta) != ev->nmeta) {
            snprintf(why, n, "custom_metadata has %zu keys, event %zu", json_object_size(meta),
                     ev->nmeta);
            return 0;
        }
        for (size_t i = 0; i < ev->nmeta; i++)
            if (!same(str_of(meta, ev->meta[i].key), ev->meta[i].value)) {
                snprintf(why, n, "custom_metadata.%s differs", ev->meta[i].key);
                return 0;
            }
    } else if (meta) {
        snprintf(why, n, "custom_metadata present for an event without it");
        return 0;
    }
    if (json_object_size(src) != expect_keys) {
        snprintf(why, n, "_source has %zu fields, expected %zu", json_object_size(src),
                 expect_keys);
        return 0;
    }
    return 1;
}

/* _mget of `k` sampled events; returns how many matched. */
static size_t check_sample(const struct lh_event *evs, size_t n, size_t k)
{
    json_t *req = json_object(), *docs = json_array();
    size_t *pick = calloc(k, sizeof(*pick));
    for (size_t i = 0; i < k; i++) {
        pick[i] = (size_t)(rng() % n);
        char index[LH_OS_INDEX_MAX];
        lh_os_index_name(g_prefix, evs[pick[i]].tenant, evs[pick[i]].ts_ns, index,
                         sizeof(index));
        json_array_append_new(docs, json_pack("{s:s,s:s}", "_index", index, "_id",
                                              evs[pick[i]].id));
    }
    json_object_set_new(req, "docs", docs);
    char *body = json_dumps(req, JSON_COMPACT);
    json_t *resp;
    long st = http("POST", "/_mget", body, &resp);
    size_t ok = 0;
    CHECK(st == 200, "_mget: HTTP %ld", st);
    json_t *got = json_object_get(resp, "docs");
    for (size_t i = 0; i < k && i < json_array_size(got); i++) {
        json_t *d = json_array_get(got, i);
        char why[512] = "not found";
        if (json_is_true(json_object_get(d, "found")) &&
            source_matches(json_object_get(d, "_source"), &evs[pick[i]], why, sizeof(why)))
            ok++;
        else
            CHECK(0, "document %s: %s", evs[pick[i]].id, why);
    }
    json_decref(resp);
    free(body);
    json_decref(req);
    free(pick);
    return ok;
}

/* ---- the steps ---- */

static void step_template(void)
{
    char path[256];
    json_t *j;
    snprintf(path, sizeof(path), "/_index_template/%s-logs", g_prefix);
    long st = http("GET", path, NULL, &j);
    CHECK(st == 200, "template %s: HTTP %ld", path, st);
    json_t *t = json_object_get(json_array_get(json_object_get(j, "index_templates"), 0),
                                "index_template");
    json_t *map = json_object_get(json_object_get(t, "template"), "mappings");
    json_t *props = json_object_get(map, "properties");
    CHECK(same(str_of(map, "dynamic"), "strict"), "dynamic is %s", str_of(map, "dynamic"));
    CHECK(same(str_of(json_object_get(props, "timestamp"), "type"), "date_nanos"), "timestamp");
    CHECK(same(str_of(json_object_get(props, "custom_metadata"), "type"), "flat_object"),
          "custom_metadata");
    printf("ok   template %s-logs: strict mapping, timestamp date_nanos, custom_metadata "
           "flat_object\n", g_prefix);
    json_decref(j);
}

static void step_bulk(struct lh_sink *gz, struct lh_sink *plain, const struct lh_event *evs,
                      size_t n, struct lh_metrics *m)
{
    struct lh_sink_report sum = { 0 };
    int64_t t0 = lh_time_mono_ns();
    write_all(gz, evs, n, 5000, &sum);
    double secs = (double)(lh_time_mono_ns() - t0) / 1e9;
    CHECK(sum.written == n && sum.duplicates == 0 && sum.nrejects == 0,
          "written %llu duplicates %llu rejects %zu of %zu", (unsigned long long)sum.written,
          (unsigned long long)sum.duplicates, sum.nrejects, n);
    step_template();
    long c = count_all();
    CHECK(c == (long)n, "_count %ld, expected %zu", c, n);
    printf("ok   %zu events written with gzip bodies in %.1f s (%.0f/s), _count %ld\n", n, secs,
           (double)n / secs, c);

    /* per index: the sink's own index names over the events */
    size_t checked = 0;
    for (int t = 0; t < 3; t++)
        for (int d = 0; d < 4; d++) {
            char index[LH_OS_INDEX_MAX];
            lh_os_index_name(g_prefix, tenants[t], base_ts + d * DAY_NS, index, sizeof(index));
            long want = 0;
            for (size_t i = 0; i < n; i++) {
                char e[LH_OS_INDEX_MAX];
                lh_os_index_name(g_prefix, evs[i].tenant, evs[i].ts_ns, e, sizeof(e));
                want += strcmp(e, index) == 0;
            }
            long got = want ? count_of(index, NULL) : 0;
            CHECK(got == want, "%s: _count %ld, expected %ld", index, got, want);
            checked += want > 0;
        }
    printf("ok   per tenant/day index counts match (%zu indices, e.g. %s-globex_corp-2026.05.24)\n",
           checked, g_prefix);

    size_t ok = check_sample(evs, n, 300);
    printf("%s 300 sampled documents (_mget) equal their events field by field: %zu\n",
           ok == 300 ? "ok  " : "FAIL", ok);

    /* flat_object: exact match on custom_metadata.<key>, no partial match */
    long want = 0;
    for (size_t i = 0; i < n; i++)
        want += lh_event_meta(&evs[i], "order.id") &&
                strcmp(lh_event_meta(&evs[i], "order.id"), "v7") == 0;
    char pat[96];
    snprintf(pat, sizeof(pat), "%s-*", g_prefix);
    long got = count_of(pat, "{\"query\":{\"term\":{\"custom_metadata.order.id\":\"v7\"}}}");
    long none = count_of(pat, "{\"query\":{\"term\":{\"custom_metadata.order.id\":\"v\"}}}");
    CHECK(got == want && want > 0 && none == 0, "term custom_metadata.order.id: %ld vs %ld, "
          "partial %ld", got, want, none);
    printf("ok   term query custom_metadata.order.id=v7: %ld hits (expected %ld), \"v\": %ld\n",
           got, want, none);

    /* the same batches again, plain bodies: duplicates, nothing new */
    struct lh_sink_report again = { 0 };
    write_all(plain, evs, n, 5000, &again);
    c = count_all();
    CHECK(again.written == 0 && again.duplicates == n && c == (long)n,
          "again: written %llu duplicates %llu count %ld", (unsigned long long)again.written,
          (unsigned long long)again.duplicates, c);
    printf("ok   same %zu events again: %llu duplicates, %llu written, _count still %ld\n", n,
           (unsigned long long)again.duplicates, (unsigned long long)again.written, c);
    lh_sink_report_free(&sum);
    lh_sink_report_free(&again);
    (void)m;
}

static void step_rejects(struct lh_sink *s, struct lh_arena *a)
{
    enum { N = 200 };
    struct lh_event evs[N];
    for (size_t i = 0; i < N; i++)
        gen_event(a, "rej", i, &evs[i]);
    char *big = lh_arena_alloc(a, 40001);
    memset(big, 'x', 40000);
    big[40000] = '\0';
    evs[17].ts_ns = -5 * LH_NS_PER_SEC;         /* 1969: outside date_nanos */
    evs[120].trace_id = big;                     /* a keyword term over 32766 bytes */
    evs[199].service = big;
    long before = count_all();
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    int rc = lh_sink_write(s, evs, N, &rep, &err);
    CHECK(rc == 0, "write: %d %s", rc, err.msg);
    CHECK(rep.written == N - 3 && rep.nrejects == 3, "written %llu rejects %zu",
          (unsigned long long)rep.written, rep.nrejects);
    static const size_t bad[3] = { 17, 120, 199 };
    static const char *const why[3] = { "mapper_parsing_exception", "illegal_argument_exception",
                                        "illegal_argument_exception" };
    for (size_t r = 0; r < rep.nrejects && r < 3; r++) {
        CHECK(rep.rejects[r].index == bad[r], "reject %zu at %zu", r, rep.rejects[r].index);
        CHECK(strstr(rep.rejects[r].reason, why[r]) != NULL, "reason %s",
              rep.rejects[r].reason);
        printf("     reject [%zu]: %.150s\n", rep.rejects[r].index, rep.rejects[r].reason);
    }
    long after = count_all();
    CHECK(after == before + N - 3, "count %ld -> %ld", before, after);
    printf("ok   %d good documents indexed beside 3 refused for good, each reported with the "
           "server's reason\n", N - 3);
    lh_sink_report_free(&rep);
}

static void step_too_large(struct lh_metrics *m, struct lh_arena *a)
{
    /* 130 documents of ~800 KB: one 104 MB body, over http.max_content_length. */
    struct lh_sink *s = make_sink(0, 1ull << 30, 30000, m);
    enum { N = 130 };
    struct lh_event evs[N + 1];
    char *msg = lh_arena_alloc(a, 800001);
    for (size_t i = 0; i < 800000; i++)
        msg[i] = (char)('a' + (i % 7 == 6 ? ' ' - 'a' : (int)(i % 26)));
    msg[800000] = '\0';
    for (size_t i = 0; i < N; i++) {
        gen_event(a, "big", i, &evs[i]);
        evs[i].message = msg;
        evs[i].raw = NULL;
    }
    long before = count_all();
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    int rc = lh_sink_write(s, evs, N, &rep, &err);
    CHECK(rc == 0 && rep.written == N && rep.nrejects == 0, "write: %d %s written %llu", rc,
          err.msg, (unsigned long long)rep.written);
    long after = count_all();
    CHECK(after == before + N, "count %ld -> %ld", before, after);
    printf("ok   a %d MB bulk answered 413 was halved and resent: %llu written\n",
           (int)(N * 0.8), (unsigned long long)rep.written);
    lh_sink_report_reset(&rep);

    /* one document over the server's limit: rejected, the others land */
    char *huge = malloc(101u << 20);
    memset(huge, 'y', (101u << 20) - 1);
    huge[(101u << 20) - 1] = '\0';
    struct lh_event two[3];
    gen_event(a, "huge", 0, &two[0]);
    gen_event(a, "huge", 1, &two[1]);
    gen_event(a, "huge", 2, &two[2]);
    two[1].message = huge;
    rc = lh_sink_write(s, two, 3, &rep, &err);
    CHECK(rc == 0 && rep.written == 2 && rep.nrejects == 1 && rep.rejects[0].index == 1,
          "huge: %d %s written %llu rejects %zu", rc, err.msg,
          (unsigned long long)rep.written, rep.nrejects);
    if (rep.nrejects)
        printf("ok   a 101 MB document: rejected (\"%s\"), the 2 others written\n",
               rep.rejects[0].reason);
    free(huge);
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
}

struct unblock { char path[256]; int after_ms; };

static void *unblock_later(void *arg)
{
    struct unblock *u = arg;
    usleep((useconds_t)u->after_ms * 1000);
    http("PUT", u->path, "{\"index.blocks.write\":false}", NULL);
    return NULL;
}

static void step_blocked(struct lh_metrics *m, struct lh_arena *a)
{
    /* a write block on one daily index: its items come back 403
     * cluster_block_exception, a cluster condition, so they are retried */
    enum { N = 300 };
    struct lh_event evs[N];
    int64_t day = base_ts + 10 * DAY_NS;
    for (size_t i = 0; i < N; i++) {
        gen_event(a, "blk", i, &evs[i]);
        evs[i].tenant = "blocked";
        evs[i].ts_ns = i % 3 == 0 ? day : day + DAY_NS;   /* a third to the blocked day */
    }
    char index[LH_OS_INDEX_MAX], path[256];
    lh_os_index_name(g_prefix, "blocked", day, index, sizeof(index));
    struct lh_sink *s = make_sink(0, 0, 2000, m);
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    CHECK(lh_sink_write(s, evs, 1, &rep, &err) == 0, "first: %s", err.msg);   /* creates it */
    snprintf(path, sizeof(path), "/%s/_settings", index);
    CHECK(http("PUT", path, "{\"index.blocks.write\":true}", NULL) == 200, "block");
    lh_sink_report_reset(&rep);
    int64_t t0 = lh_time_mono_ns();
    int rc = lh_sink_write(s, evs, N, &rep, &err);
    double secs = (double)(lh_time_mono_ns() - t0) / 1e9;
    CHECK(rc == LH_EUNAVAIL, "blocked write: %d", rc);
    CHECK(rep.written == N - N / 3 && rep.duplicates == 0 && rep.nrejects == 0,
          "blocked: written %llu dup %llu rejects %zu", (unsigned long long)rep.written,
          (unsigned long long)rep.duplicates, rep.nrejects);
    CHECK(secs >= 1.5 && secs < 10, "gave up after %.1f s", secs);
    printf("ok   write block: %llu written elsewhere, the blocked %d retried %.1f s then "
           "LH_EUNAVAIL (%s)\n", (unsigned long long)rep.written, N / 3, secs, err.msg);
    lh_sink_destroy(s);

    /* handed again while the block is lifted after 1.5 s: all land */
    s = make_sink(0, 0, 30000, m);
    struct unblock u = { .after_ms = 1500 };
    snprintf(u.path, sizeof(u.path), "%s", path);
    pthread_t th;
    pthread_create(&th, NULL, unblock_later, &u);
    lh_sink_report_reset(&rep);
    rc = lh_sink_write(s, evs, N, &rep, &err);
    pthread_join(th, NULL);
    CHECK(rc == 0, "after unblock: %d %s", rc, err.msg);
    CHECK(rep.written == N / 3 - 1 && rep.duplicates == N - N / 3 + 1,
          "after unblock: written %llu dup %llu", (unsigned long long)rep.written,
          (unsigned long long)rep.duplicates);
    char pat[96];
    snprintf(pat, sizeof(pat), "%s-blocked-*", g_prefix);
    long c = count_of(pat, NULL);
    CHECK(c == N, "blocked indices count %ld", c);
    printf("ok   handed again, block lifted meanwhile: %llu written, %llu duplicates, count "
           "%ld\n", (unsigned long long)rep.written, (unsigned long long)rep.duplicates, c);
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
}

static int g_restart_rc = -1;

static void *restart_server(void *arg)
{
    (void)arg;
    char cmd[1024];
    usleep(1500 * 1000);
    snprintf(cmd, sizeof(cmd), "%s stop >&2", g_service);
    int rc1 = system(cmd);
    fprintf(stderr, "     (opensearch stopped: %d)\n", rc1);
    sleep(3);
    snprintf(cmd, sizeof(cmd), "%s start >&2", g_service);
    int rc2 = system(cmd);
    fprintf(stderr, "     (opensearch started: %d)\n", rc2);
    g_restart_rc = rc1 == 0 && rc2 == 0 ? 0 : 1;
    return NULL;
}

static void step_restart(struct lh_metrics *m, struct lh_arena *a)
{
    enum { N = 60000, BATCH = 1000 };
    struct lh_event *evs = calloc(N, sizeof(*evs));
    for (size_t i = 0; i < N; i++)
        gen_event(a, "rst", i, &evs[i]);
    struct lh_sink *s = make_sink(1, 0, 5000, m);
    long before = count_all();
    pthread_t th;
    pthread_create(&th, NULL, restart_server, NULL);
    uint64_t written = 0, dups = 0;
    size_t unavail = 0, ready_down = 0;
    int64_t deadline = lh_time_mono_ns() + 300 * LH_NS_PER_SEC;
    for (size_t i = 0; i < N; i += BATCH) {
        for (;;) {   /* as the pipeline: the same batch until it is taken */
            struct lh_sink_report rep = { 0 };
            struct lh_err err = { 0 };
            int rc = lh_sink_write(s, evs + i, BATCH, &rep, &err);
            written += rep.written;
            dups += rep.duplicates;
            CHECK(rep.nrejects == 0, "rejects during restart: %zu", rep.nrejects);
            lh_sink_report_free(&rep);
            if (rc == 0)
                break;
            CHECK(rc == LH_EUNAVAIL || rc == LH_EFULL, "write while down: %d %s", rc, err.msg);
            if (unavail++ == 0)
                printf("     while down: %s\n", err.msg);
            struct lh_err rerr = { 0 };
            ready_down += lh_sink_ready(s, &rerr) != 0;
            if (lh_time_mono_ns() > deadline)
                DIE("OpenSearch did not come back within 300 s");
            usleep(500 * 1000);
        }
    }
    pthread_join(th, NULL);
    CHECK(g_restart_rc == 0, "the service script failed");
    CHECK(unavail > 0, "no write saw the server down");
    CHECK(ready_down > 0, "ready() never said down");
    /* A batch the server took just before it stopped, without the answer
     * reaching us, comes back as duplicates: created once all the same. */
    CHECK(written <= N && written + dups >= N, "created %llu of %d (duplicates %llu)",
          (unsigned long long)written, N, (unsigned long long)dups);
    long after = count_all();
    CHECK(after == before + N, "count %ld -> %ld", before, after);
    struct lh_err rerr = { 0 };
    CHECK(lh_sink_ready(s, &rerr) == 0, "ready after restart: %s", rerr.msg);
    printf("ok   OpenSearch stopped and started mid-run: %zu writes returned LH_EUNAVAIL, "
           "ready() down %zu times; %llu created + %llu found already there (taken before the "
           "stop, answer lost), _count +%ld of %d\n", unavail, ready_down,
           (unsigned long long)written, (unsigned long long)dups, after - before, N);
    lh_sink_destroy(s);
    free(evs);
}

static void cleanup(void)
{
    char path[256];
    snprintf(path, sizeof(path), "/%s-*", g_prefix);
    http("DELETE", path, NULL, NULL);
    snprintf(path, sizeof(path), "/_index_template/%s-logs", g_prefix);
    http("DELETE", path, NULL, NULL);
}

int main(int argc, char **argv)
{
    size_t count = 50000;
    int restart = 1, keep = 0;
    static const struct option lo[] = {
        { "url", required_argument, 0, 'u' }, { "count", required_argument, 0, 'n' },
        { "service", required_argument, 0, 's' }, { "no-restart", no_argument, 0, 'R' },
        { "keep", no_argument, 0, 'k' }, { 0, 0, 0, 0 } };
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'u': g_url = optarg; break;
        case 'n': count = strtoul(optarg, NULL, 10); break;
        case 's': g_service = optarg; break;
        case 'R': restart = 0; break;
        case 'k': keep = 1; break;
        default:
            fprintf(stderr, "usage: %s [--url URL] [--count N] [--service SCRIPT] "
                            "[--no-restart] [--keep]\n", argv[0]);
            return 2;
        }
    }
    lh_log_set_level(LH_LOG_WARN);
    snprintf(g_prefix, sizeof(g_prefix), "lhit%d", (int)getpid());
    struct lh_http_client_config hc = { .timeout_ms = 120000 };
    struct lh_err err = { 0 };
    if (lh_http_client_create(&hc, &g_http, &err))
        DIE("http client: %s", err.msg);
    json_t *root;
    long st = http("GET", "/", NULL, &root);
    if (st != 200)
        DIE("no OpenSearch at %s (HTTP %ld): start tests/services/opensearch", g_url, st);
    printf("server %s %s, index prefix %s\n",
           str_of(json_object_get(root, "version"), "distribution") ?: "elasticsearch",
           str_of(json_object_get(root, "version"), "number"), g_prefix);
    json_decref(root);

    struct lh_metrics *m = lh_metrics_create();
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *evs = calloc(count, sizeof(*evs));
    for (size_t i = 0; i < count; i++)
        gen_event(&a, "ev", i, &evs[i]);
    struct lh_sink *gz = make_sink(1, 0, 30000, m);
    struct lh_sink *plain = make_sink(0, 0, 30000, m);

    step_bulk(gz, plain, evs, count, m);
    step_rejects(plain, &a);
    step_too_large(m, &a);
    step_blocked(m, &a);
    if (restart)
        step_restart(m, &a);

    struct lh_buf mt = LH_BUF_INIT;
    lh_metrics_render(m, &mt);
    CHECK(strstr(mt.data, "loghaul_opensearch_documents_total{sink=\"itest\",outcome=\"duplicate\"}"),
          "metrics");
    CHECK(strstr(mt.data, "loghaul_opensearch_rejects_total{sink=\"itest\",class=\"mapping\"} 1"),
          "mapping rejects metric");
    CHECK(strstr(mt.data, "loghaul_opensearch_rejects_total{sink=\"itest\",class=\"too_large\"} 1"),
          "too_large rejects metric");
    printf("metrics:\n");
    for (char *line = strtok(mt.data, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#' && !strstr(line, "_bucket{"))
            printf("     %s\n", line);
    lh_buf_free(&mt);

    if (!keep)
        cleanup();
    lh_sink_destroy(gz);
    lh_sink_destroy(plain);
    lh_metrics_destroy(m);
    lh_arena_free(&a);
    free(evs);
    lh_http_client_destroy(g_http);
    printf("%s: %d failed checks\n", g_failed ? "FAIL" : "PASS", g_failed);
    return g_failed ? 1 : 0;
}
