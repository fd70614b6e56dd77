/* query_conformance.c - the search API answers the same over every backend:
 * one generated data set is written into an embedded store directory,
 * through the _bulk API with the indexer's own document and template
 * encoders (indexer/sink_opensearch.h) into the real OpenSearch
 * (tests/services/opensearch), and as archive objects into an archive
 * directory (one object per host and UTC hour, as the indexer partitions
 * them; Parquet in even hours, client-side encrypted NDJSON+zstd in odd
 * ones); three queryd instances run in this process, one per backend, and
 * every query of the suite is asked of each: the same hits in the same
 * order (every page of a cursor walk), the same total_hits, the same
 * aggregations as the embedded store, which is the reference. Then four
 * walks of 10,000 hits (--walk) run while events keep arriving: through
 * OpenSearch (timestamps mapped in ns, and in ms), through the archive and
 * across both as two tiers (see "pagination walks while ingest continues"
 * below). Indices and templates: prefixes qct<pid> and qct<pid>ms.
 *
 *   build/tests/query_conformance [--url http://127.0.0.1:9200] [--count N]
 *                                 [--walk N] [--keep] [-v]
 *
 * The suite covers every operator on keyword fields, levels, timestamps and
 * metadata keys (dotted ones too), words, phrases, unicode, empty results,
 * combinations and narrow time ranges. It stays inside what both backends
 * define the same way (os_dsl.h lists the differences: analyzer details of
 * '_' and '.', non-ASCII case, exact-value full-text matches on keywords).
 * Indices and the template use a prefix of their own (qct<pid>) and are
 * deleted at the end unless --keep. Prints one line per query and
 * "N passed, N failed"; exit status 1 on any difference. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "../../indexer/sink_opensearch.h"
#include "../../queryd/queryd.h"
#include "lh/archive.h"
#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/store.h"
#include "lh/time.h"

static int g_verbose;

/* ---- queryd in this process --------------------------------------------- */

struct qd {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct lh_http_server *srv;
    struct lh_queryd_config cfg;
    struct lh_queryd *q;
    char base[64];
};

static void *qd_loop(void *arg)
{
    struct qd *d = arg;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void qd_on_stop(uv_async_t *a)
{
    struct qd *d = a->data;
    lh_queryd_shutdown(d->q);
    lh_http_server_shutdown(d->srv, 1000, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static int qd_start(struct qd *d, const char *yaml)
{
    memset(d, 0, sizeof(*d));
    struct lh_err err = { 0 };
    if (lh_conf_load_string("conformance.yaml", yaml, strlen(yaml), lh_queryd_opts, &d->cfg,
                            &err) < 0 ||
        lh_queryd_validate(&d->cfg, &err) < 0) {
        fprintf(stderr, "config: %s\n", err.msg);
        return -1;
    }
    uv_loop_init(&d->loop);
    if (lh_http_server_create(&d->loop, &d->cfg.common.listen, &d->srv, &err) < 0 ||
        lh_queryd_create(&d->cfg, d->srv, NULL, &d->q, &err) < 0) {
        fprintf(stderr, "queryd: %s\n", err.msg);
        return -1;
    }
    snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", lh_http_server_port(d->srv));
    uv_async_init(&d->loop, &d->stop, qd_on_stop);
    d->stop.data = d;
    return pthread_create(&d->thread, NULL, qd_loop, d) == 0 ? 0 : -1;
}

static void qd_stop(struct qd *d)
{
    uv_async_send(&d->stop);
    pthread_join(d->thread, NULL);
    lh_http_server_destroy(d->srv);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    lh_queryd_destroy(d->q);
    lh_conf_free(lh_queryd_opts, &d->cfg);
}

/* ---- HTTP --------------------------------------------------------------- */

/* One client per thread (the walks below run in threads of their own). */
static _Thread_local struct lh_http_client *g_http;

static int http(const char *method, const char *url, const char *body, size_t len,
                const char *ctype, const char *token, struct lh_http_response *resp)
{
    char auth[128];
    snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
    struct lh_http_header h[] = { { "Content-Type", ctype }, { token ? "Authorization" : NULL,
                                                               auth }, { NULL, NULL } };
    struct lh_http_request req = { .method = method, .url = url, .headers = h, .body = body,
                                   .body_len = len, .timeout_ms = 60000 };
    struct lh_err err = { 0 };
    lh_http_response_free(resp);
    if (lh_http_client_do(g_http, &req, resp, &err) < 0) {
        fprintf(stderr, "%s %s: %s\n", method, url, err.msg);
        return -1;
    }
    return (int)resp->status;
}

static json_t *post_json_as(const char *base, const char *path, const char *body,
                            const char *token, int *status)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", base, path);
    struct lh_http_response resp = { 0 };
    *status = http("POST", url, body, strlen(body), "application/json", token, &resp);
    json_t *j = resp.body.data ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
    if (*status != 200 && g_verbose)
        fprintf(stderr, "  %s -> %d %s\n", path, *status, resp.body.data);
    lh_http_response_free(&resp);
    return j;
}

static json_t *post_json(const char *base, const char *path, const char *body, int *status)
{
    return post_json_as(base, path, body, "conformance-token", status);
}

/* ---- the data set ------------------------------------------------------- */

static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static size_t below(size_t n) { return (size_t)(rnd() % n); }

static const char *const words[] = {
    "timeout", "payment", "failed", "connection", "refused", "retry", "cache", "miss",
    "database", "Timeout", "TIMEOUT", "naïve", "café", "日本語", "ok", "done", "slow",
    "query", "card", "declined", "disk", "full", "Grüße", "OR", "AND", "value",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))
static const char *const services[] = { "api", "web", "db", "auth", "payment-service" };
static const char *const hosts[] = { "web-1", "web-2", "db-1", "worker-3", "edge-9" };
static const char *const durations[] = { "12", "99.5", "99.49", "100", "-3.25", "1500",
                                         "0", "007", "250", "-0.5", "42.125", "999999" };

struct dataset {
    struct lh_event *evs;
    size_t n;
    struct lh_arena arena;
    int64_t base, span;
};

static void make_data(struct dataset *d, const char *tenant, size_t n, int64_t now)
{
    memset(d, 0, sizeof(*d));
    d->n = n;
    d->span = 2 * 3600 * LH_NS_PER_SEC;
    d->base = now - d->span - 60 * LH_NS_PER_SEC;
    d->evs = lh_arena_alloc(&d->arena, n * sizeof(*d->evs));
    struct lh_arena *a = &d->arena;
    for (size_t i = 0; i < n; i++) {
        struct lh_event *e = &d->evs[i];
        memset(e, 0, sizeof(*e));
        char buf[512];
        snprintf(buf, sizeof(buf), "c-%05zu", i);
        e->id = lh_arena_strdup(a, buf);
        e->tenant = tenant;
        /* whole milliseconds, with collisions: ties are ordered by id */
        e->ts_ns = d->base + (int64_t)below((size_t)(d->span / LH_NS_PER_MS / 4)) * 4 *
                   LH_NS_PER_MS;
        e->level = (enum lh_level)below(LH_LEVEL_COUNT);
        e->service = below(10) ? services[below(5)] : NULL;
        e->host = below(8) ? hosts[below(5)] : NULL;
        if (below(3)) {
            snprintf(buf, sizeof(buf), "%016llx%016llx", (unsigned long long)rnd(),
                     (unsigned long long)rnd());
            e->trace_id = lh_arena_strdup(a, buf);
        }
        if (below(2)) {
            snprintf(buf, sizeof(buf), "usr_%zu", below(20));
            e->user_id = lh_arena_strdup(a, buf);
        }
        size_t nw = 1 + below(7), o = 0;
        for (size_t k = 0; k < nw; k++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", k ? (below(4) ? " " : ", ")
                                                                      : "", words[below(NWORDS)]);
        e->message = lh_arena_strdup(a, buf);
        e->stream = below(2) ? "stdout" : "stderr";
        if (below(3)) {
            snprintf(buf, sizeof(buf), "c%06zx", below(1 << 20));
            e->container_id = lh_arena_strdup(a, buf);
        }
        e->k8s_namespace = below(2) ? "prod" : NULL;
        if (e->k8s_namespace) {
            snprintf(buf, sizeof(buf), "pod-%zu", below(6));
            e->k8s_pod = lh_arena_strdup(a, buf);
            e->k8s_container = "app";
        }
        e->region = below(2) ? "eu-west-1" : "us-east-1";
        size_t nm = below(4);
        if (nm) {
            e->meta = lh_arena_alloc(a, 3 * sizeof(*e->meta));
            static const char *const keys[] = { "zone", "duration_ms", "http.status" };
            for (size_t k = 0; k < 3; k++) {
                if (below(3) == 0)
                    continue;
                const char *v;
                if (k == 0) {
                    snprintf(buf, sizeof(buf), "z-%zu", below(5));
                    v = lh_arena_strdup(a, buf);
                } else if (k == 1) {
                    v = durations[below(sizeof(durations) / sizeof(durations[0]))];
                } else {
                    v = below(3) ? "200" : "500";
                }
                e->meta[e->nmeta].key = keys[k];
                e->meta[e->nmeta].value = v;
                e->nmeta++;
            }
        }
    }
    /* fixed events the queries below point at */
    d->evs[0].trace_id = "feedfacecafebeef0000000000000001";
    d->evs[0].message = "card declined for naïve café customer";
    d->evs[1].message = "connection refused by database";
    d->evs[2].message = "refused connection twice";
    d->evs[3].ts_ns = d->evs[4].ts_ns;   /* an exact tie */
}

/* ---- loading ------------------------------------------------------------ */

static int load_store(const struct dataset *d, const char *dir)
{
    struct lh_store_config cfg = { .dir = (char *)dir, .block_events = 300 };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    struct lh_store_append_stats st;
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0 ||
        lh_store_append(s, d->evs, d->n, &st, &err) < 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        lh_store_close(s);
        return -1;
    }
    lh_store_close(s);
    return st.stored == d->n ? 0 : -1;
}

#define ARCHIVE_KEY_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* One archive handle per object format: Parquet plain, NDJSON encrypted. */
static int open_archive(const char *dir, int ndjson, struct lh_archive **out)
{
    struct lh_archive_config cfg = { .type = LH_ARCHIVE_DIR,
                                      .format = ndjson ? LH_ARCHIVE_NDJSON : LH_ARCHIVE_PARQUET,
                                      .zstd_level = 3,
                                      .encryption_key = ndjson ? ARCHIVE_KEY_HEX : NULL,
                                      .dir = { .path = (char *)dir, .fsync = 0 } };
    struct lh_err err = { 0 };
    if (lh_archive_open(out, &cfg, &err) < 0) {
        fprintf(stderr, "archive: %s\n", err.msg);
        return -1;
    }
    return 0;
}

#define HOUR_NS (3600 * LH_NS_PER_SEC)

/* Writes evs[0..n) of tenant as the indexer would: one object per (hour,
 * host); Parquet in even hours, encrypted NDJSON in odd ones. */
static int load_archive(const struct lh_event *evs, size_t n, const char *tenant,
                        const char *dir)
{
    struct lh_archive *fmt[2] = { NULL, NULL };
    struct lh_event *batch = malloc(n * sizeof(*batch));
    int rc = batch && open_archive(dir, 0, &fmt[0]) == 0 &&
                     open_archive(dir, 1, &fmt[1]) == 0 ? 0 : -1;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        lo = evs[i].ts_ns < lo ? evs[i].ts_ns : lo;
        hi = evs[i].ts_ns > hi ? evs[i].ts_ns : hi;
    }
    size_t written = 0;
    for (int64_t h = lo / HOUR_NS * HOUR_NS; rc == 0 && n && h <= hi; h += HOUR_NS) {
        for (size_t hi_ = 0; rc == 0 && hi_ <= sizeof(hosts) / sizeof(hosts[0]); hi_++) {
            const char *host = hi_ < sizeof(hosts) / sizeof(hosts[0]) ? hosts[hi_] : NULL;
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                const struct lh_event *e = &evs[i];
                int same = host ? e->host && strcmp(e->host, host) == 0 : !e->host;
                if (same && e->ts_ns >= h && e->ts_ns < h + HOUR_NS)
                    batch[k++] = *e;
            }
            if (!k)
                continue;
            struct lh_err err = { 0 };
            if (lh_archive_write_events(fmt[(h / HOUR_NS) & 1], tenant, h, "eu-west-1",
                                        host ? host : "nohost", batch, k, NULL, &err) < 0) {
                fprintf(stderr, "archive write: %s\n", err.msg);
                rc = -1;
            }
            written += k;
        }
    }
    lh_archive_close(fmt[0]);
    lh_archive_close(fmt[1]);
    free(batch);
    return rc == 0 && written == n ? 0 : -1;
}

/* POSTs evs[0..n) to _bulk, searchable when it returns (refresh=true);
 * timestamps with 9 fractional digits (date_nanos) or 3. */
static int os_bulk(const char *url, const char *prefix, const struct lh_event *evs, size_t n,
                   int date_nanos)
{
    struct lh_http_response resp = { 0 };
    struct lh_buf b = LH_BUF_INIT;
    char u[512];
    for (size_t i = 0; i < n; i++)
        lh_os_bulk_item(&b, prefix, &evs[i], date_nanos);
    snprintf(u, sizeof(u), "%s/_bulk?refresh=true", url);
    int st = http("POST", u, b.data, b.len, "application/x-ndjson", NULL, &resp);
    lh_buf_free(&b);
    json_t *j = resp.body.data ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
    int errors = !j || json_is_true(json_object_get(j, "errors"));
    if (st != 200 || errors)
        fprintf(stderr, "bulk: %d %.500s\n", st, resp.body.data ? resp.body.data : "");
    json_decref(j);
    lh_http_response_free(&resp);
    return st != 200 || errors ? -1 : 0;
}

/* Installs the indexer's index template for <prefix>-*, timestamp mapped as
 * date_nanos or as date (milliseconds: `template.date_nanos: false`). */
static int os_template(const char *url, const char *prefix, int date_nanos)
{
    struct lh_http_response resp = { 0 };
    char u[512];
    snprintf(u, sizeof(u), "%s/", url);
    if (http("GET", u, NULL, 0, "application/json", NULL, &resp) != 200) {
        fprintf(stderr, "opensearch at %s not answering\n", url);
        return -1;
    }
    struct lh_os_server srv;
    struct lh_err err = { 0 };
    if (lh_os_parse_root(resp.body.data, resp.body.len, &srv, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    struct lh_os_template_config t = { .install = 1, .name = (char *)prefix, .priority = 900,
                                       .shards = 1, .replicas = 0, .refresh_interval = "1s",
                                       .codec = "", .date_nanos = date_nanos };
    struct lh_buf b = LH_BUF_INIT;
    lh_os_template_json(&t, prefix, &srv, &b);
    snprintf(u, sizeof(u), "%s/_index_template/%s", url, prefix);
    int st = http("PUT", u, b.data, b.len, "application/json", NULL, &resp);
    lh_buf_free(&b);
    if (st != 200)
        fprintf(stderr, "template: %d %s\n", st, resp.body.data);
    lh_http_response_free(&resp);
    return st == 200 ? 0 : -1;
}

static void cleanup_opensearch(const char *url, const char *prefix)
{
    struct lh_http_response resp = { 0 };
    char u[512];
    snprintf(u, sizeof(u), "%s/%s-*", url, prefix);
    http("DELETE", u, NULL, 0, "application/json", NULL, &resp);
    snprintf(u, sizeof(u), "%s/_index_template/%s", url, prefix);
    http("DELETE", u, NULL, 0, "application/json", NULL, &resp);
    lh_http_response_free(&resp);
}

/* ---- comparing ---------------------------------------------------------- */

struct walk {
    struct lh_buf ids;          /* "id\n" per hit */
    size_t n;
    long long total;
    char rel[8];
    int status;
};

/* A first page's total_hits and total_hits_relation. */
static void page_total(json_t *page, long long *total, char *rel, size_t size)
{
    *total = json_integer_value(json_object_get(page, "total_hits"));
    snprintf(rel, size, "%s", json_string_value(json_object_get(page, "total_hits_relation")));
}

/* The page's next_cursor (malloc'd; NULL at the end); frees the page. */
static char *next_cursor(json_t *page)
{
    const char *next = json_string_value(json_object_get(page, "next_cursor"));
    char *cursor = next ? strdup(next) : NULL;
    json_decref(page);
    return cursor;
}

static void walk(const char *base, const char *token, const char *query, int limit,
                 struct walk *w)
{
    memset(w, 0, sizeof(*w));
    char *cursor = NULL;
    for (int page = 0; page < 10000; page++) {
        struct lh_buf body = LH_BUF_INIT;
        lh_buf_printf(&body, "{\"query\":%s,\"pagination\":{\"limit\":%d", query, limit);
        if (cursor)
            lh_buf_printf(&body, ",\"cursor\":\"%s\"", cursor);
        lh_buf_puts(&body, "}}");
        int st;
        json_t *j = post_json_as(base, "/v1/logs/search", body.data, token, &st);
        lh_buf_free(&body);
        free(cursor);
        cursor = NULL;
        if (st != 200 || !j) {
            w->status = st;
            json_decref(j);
            return;
        }
        if (page == 0)
            page_total(j, &w->total, w->rel, sizeof(w->rel));
        json_t *h;
        size_t i;
        json_array_foreach(json_object_get(j, "logs"), i, h) {
            lh_buf_printf(&w->ids, "%s %s %s\n", json_string_value(json_object_get(h, "id")),
                          json_string_value(json_object_get(h, "timestamp")),
                          json_string_value(json_object_get(h, "level")));
            w->n++;
        }
        if (!(cursor = next_cursor(j)))
            return;
    }
    free(cursor);
}

/* The first hit where the walk of `name` differs from the reference's. */
static void first_diff(const char *ref, const char *name, const struct lh_buf *a,
                       const struct lh_buf *b)
{
    const char *p = a->data ? a->data : "", *q = b->data ? b->data : "";
    for (size_t line = 0;; line++) {
        size_t la = strcspn(p, "\n"), lb = strcspn(q, "\n");
        if (la != lb || memcmp(p, q, la) != 0) {
            fprintf(stderr, "    hit %zu: %s \"%.*s\" vs %s \"%.*s\"\n", line, ref, (int)la,
                    p, name, (int)lb, q);
            return;
        }
        if (!p[la] || !q[lb])
            return;
        p += la + 1;
        q += lb + 1;
    }
}

/* Same hits in the same order, same total and relation. */
static int same_walk(const struct walk *a, const struct walk *b)
{
    return a->status == 0 && b->status == 0 && a->n == b->n && a->total == b->total &&
           strcmp(a->rel, b->rel) == 0 && a->ids.len == b->ids.len &&
           (a->ids.len == 0 || memcmp(a->ids.data, b->ids.data, a->ids.len) == 0);
}

/* ---- pagination walks while ingest continues ----------------------------
 *
 * Tenant "walk": --walk N events (ids w0-NNNNN, three to a timestamp, over
 * the hours before the current one) in two sets of OpenSearch indices (the
 * timestamp mapped as date_nanos, and as date in ms, the indexer's
 * `template.date_nanos: false`) and in the archive (one object per host and
 * hour). Four walks of one query (limit 100) run at once, each in a thread
 * of its own: through a queryd on either index set, the archive queryd and
 * a queryd of two tiers (OpenSearch for the last 2 hours, the archive for
 * older events: the walk crosses from one into the other). Once every walk
 * has its first page, a feeder keeps writing batches into all of them, as
 * the indexer does: new events (now: newer than any walk's first page)
 * into the current hour's indices and a new archive object each batch (the
 * indexer rolls objects over), and late events into the hours being walked
 * (an archive object of their own, into the same daily indices): half of
 * them before the oldest initial event (ahead of every cursor), a quarter
 * on the newest one's timestamp (behind every cursor), a quarter on and
 * next to random initial events' timestamps. Every 25th page of a walk
 * waits for one more batch to be written, so that ingest overlaps the
 * walk however slow the stores are.
 *
 * The cursor contract (docs/search-api.md): a walk keeps the window of its
 * first page and resumes after the last hit it returned. So each walk must
 * give hits strictly newest first (timestamp, then id), none twice, every
 * initial event, no new one; and a late event must be there when it was
 * searchable (its writes returned) before the page that went past its
 * position was asked, and must not be there when its writes began after
 * that page was answered (what lands behind the cursor is not seen). */

#define WALK_LIMIT 100
#define WALK_BATCHES 100     /* at most (the archive reads every object of an hour on each
                                * page); the feeder stops when the walks are done */
#define WALK_NEW 8           /* new events per batch */
#define WALK_LATE 8          /* late events per batch */
#define WALK_ID 24

struct late_ev {
    int64_t ts;
    char id[WALK_ID];
    int batch;
};

struct wbatch {
    int64_t os_start, os_end, ar_start, ar_end;   /* lh_time_mono_ns() around the writes */
};

struct feeder {
    const char *url, *prefix, *prefix_ms, *adir;
    const struct lh_event *init;       /* sorted by time */
    size_t ninit;
    int64_t wbase;                     /* the oldest initial event */
    struct late_ev late[WALK_BATCHES * WALK_LATE];
    size_t nlate;
    struct wbatch batches[WALK_BATCHES];
    atomic_int nbatches;               /* written completely */
    int nwalks;
    atomic_int first_pages, walks_done, over;   /* over: the feeder stopped */
    int failed;
};

static void *feed_main(void *arg)
{
    struct feeder *f = arg;
    struct lh_err err = { 0 };
    struct lh_http_client_config hc = { .timeout_ms = 60000 };
    struct lh_archive *fmt[2] = { NULL, NULL };
    if (lh_http_client_create(&hc, &g_http, &err) < 0 || open_archive(f->adir, 0, &fmt[0]) < 0 ||
        open_archive(f->adir, 1, &fmt[1]) < 0) {
        fprintf(stderr, "feeder: %s\n", err.msg);
        f->failed = 1;
    }
    while (!f->failed && atomic_load(&f->first_pages) < f->nwalks)
        usleep(1000);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    struct lh_arena a = LH_ARENA_INIT;
    for (int b = 0; !f->failed && b < WALK_BATCHES && atomic_load(&f->walks_done) < f->nwalks;
         b++) {
        struct lh_event nev[WALK_NEW], lev[WALK_LATE];
        int64_t now = lh_time_now_ns() / LH_NS_PER_MS * LH_NS_PER_MS;
        /* late events: even batches before the oldest initial event (the walks
         * get there last: ahead of every cursor); batches 1, 5, 9... on the
         * newest initial event's timestamp with greater ids (behind every
         * cursor once its first page is out); batches 3, 7, 11... at a random
         * initial event (ties and the instants before them) */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t j0 = b % 4 == 1 ? f->ninit - 1 : (size_t)(rng % f->ninit);
        int64_t anchor = b % 2 ? f->init[j0].ts_ns : f->wbase - 5 * 60 * LH_NS_PER_SEC;
        int64_t hour = anchor / HOUR_NS * HOUR_NS;
        for (int k = 0; k < WALK_NEW + WALK_LATE; k++) {
            int late = k >= WALK_NEW;
            int i = late ? k - WALK_NEW : k;
            struct lh_event *e = late ? &lev[i] : &nev[i];
            char id[WALK_ID];
            snprintf(id, sizeof(id), "%s-%04d-%02d", late ? "wl" : "wn", b, i);
            memset(e, 0, sizeof(*e));
            e->id = lh_arena_strdup(&a, id);
            e->tenant = "walk";
            e->level = LH_LEVEL_WARN;
            e->service = "api";
            e->host = "live";
            e->message = late ? "walk me, late" : "walk me, new";
            if (!late) {
                e->ts_ns = now + i * LH_NS_PER_MS;
                continue;
            }
            if (b % 2 == 0) {
                e->ts_ns = anchor + (int64_t)(rng % 240000 + (uint64_t)i) * LH_NS_PER_MS;
            } else {
                /* exact ties with initial events, and the instants next to them */
                size_t j = j0 + (size_t)i < f->ninit ? j0 + (size_t)i : j0;
                e->ts_ns = b % 4 == 1 ? anchor
                                      : f->init[j].ts_ns + (i % 3 == 2 ? -LH_NS_PER_MS : 0);
                if (e->ts_ns / HOUR_NS * HOUR_NS != hour)
                    e->ts_ns = anchor;
            }
        }
        struct wbatch *wb = &f->batches[b];
        struct lh_event all[WALK_NEW + WALK_LATE];
        memcpy(all, nev, sizeof(nev));
        memcpy(all + WALK_NEW, lev, sizeof(lev));
        wb->os_start = lh_time_mono_ns();
        int rc = os_bulk(f->url, f->prefix, all, WALK_NEW + WALK_LATE, 1);
        if (rc == 0)
            rc = os_bulk(f->url, f->prefix_ms, all, WALK_NEW + WALK_LATE, 0);
        wb->os_end = lh_time_mono_ns();
        wb->ar_start = lh_time_mono_ns();
        if (rc == 0 &&
            (lh_archive_write_events(fmt[(now / HOUR_NS) & 1], "walk", now, "eu-west-1", "live",
                                     nev, WALK_NEW, NULL, &err) < 0 ||
             lh_archive_write_events(fmt[(hour / HOUR_NS) & 1], "walk", hour, "eu-west-1",
                                     "live", lev, WALK_LATE, NULL, &err) < 0)) {
            fprintf(stderr, "feeder: archive: %s\n", err.msg);
            rc = -1;
        }
        wb->ar_end = lh_time_mono_ns();
        if (rc < 0) {
            f->failed = 1;
            break;
        }
        for (int i = 0; i < WALK_LATE; i++) {
            struct late_ev *l = &f->late[f->nlate++];
            l->ts = lev[i].ts_ns;
            snprintf(l->id, sizeof(l->id), "%s", lev[i].id);
            l->batch = b;
        }
        atomic_store(&f->nbatches, b + 1);
        lh_arena_reset(&a);
        usleep(25000);   /* a steady trickle, not a flood */
    }
    lh_arena_free(&a);
    lh_archive_close(fmt[0]);
    lh_archive_close(fmt[1]);
    lh_http_client_destroy(g_http);
    atomic_store(&f->over, 1);
    return NULL;
}

struct wpage {
    int64_t send, recv;          /* lh_time_mono_ns() */
    int64_t last_ts;             /* the page's last hit (none: n == 0) */
    char last_id[WALK_ID];
    size_t n;
};

struct whit {
    int64_t ts;
    char id[WALK_ID];
};

struct live {
    const char *name, *base;
    int os, ar;                  /* which stores the walk reads */
    struct feeder *f;
    struct whit *hits;
    size_t n, cap;
    struct wpage *pages;
    size_t npages, pcap;
    long long total;
    char rel[8];
    int status, order_ok;
    int64_t t0, t1;
};

static int key_cmp(int64_t ts, const char *id, int64_t ts2, const char *id2)
{
    if (ts != ts2)
        return ts < ts2 ? -1 : 1;
    return strcmp(id, id2);
}

static void *live_main(void *arg)
{
    struct live *w = arg;
    struct lh_http_client_config hc = { .timeout_ms = 60000 };
    char *cursor = NULL;
    int counted = 0;
    w->order_ok = 1;
    w->t0 = lh_time_mono_ns();
    if (lh_http_client_create(&hc, &g_http, NULL) < 0)
        w->status = -1;
    /* a walk that repeats pages ends after 4 times the pages it should take */
    size_t max_pages = w->f->ninit / WALK_LIMIT * 4 + 10;
    int fed = 0;
    for (size_t page = 0; !w->status && page < max_pages; page++) {
        /* ingest really goes on during the walk, also when the stores are slow
         * to take it: every 25th page waits for another batch to be written */
        while (page % 25 == 0 && page && atomic_load(&w->f->nbatches) <= fed &&
               !atomic_load(&w->f->over))
            usleep(1000);
        if (page % 25 == 0)
            fed = atomic_load(&w->f->nbatches);
        struct lh_buf body = LH_BUF_INIT;
        lh_buf_printf(&body, "{\"query\":{\"full_text\":\"walk\"},\"pagination\":{\"limit\":%d",
                      WALK_LIMIT);
        if (cursor)
            lh_buf_printf(&body, ",\"cursor\":\"%s\"", cursor);
        lh_buf_puts(&body, "}}");
        if (w->npages == w->pcap) {
            w->pcap = w->pcap ? 2 * w->pcap : 256;
            w->pages = realloc(w->pages, w->pcap * sizeof(*w->pages));
        }
        struct wpage *p = &w->pages[w->npages++];
        memset(p, 0, sizeof(*p));
        p->send = lh_time_mono_ns();
        int st;
        json_t *j = post_json_as(w->base, "/v1/logs/search", body.data, "walk-token", &st);
        p->recv = lh_time_mono_ns();
        lh_buf_free(&body);
        free(cursor);
        cursor = NULL;
        if (st != 200 || !j) {
            w->status = st ? st : -1;
            json_decref(j);
            break;
        }
        if (page == 0) {
            page_total(j, &w->total, w->rel, sizeof(w->rel));
            atomic_fetch_add(&w->f->first_pages, 1);
            counted = 1;
        }
        json_t *h;
        size_t i;
        json_array_foreach(json_object_get(j, "logs"), i, h) {
            const char *id = json_string_value(json_object_get(h, "id"));
            const char *ts = json_string_value(json_object_get(h, "timestamp"));
            int64_t tv = 0;
            if (!id || !ts || lh_time_parse_rfc3339(ts, strlen(ts), &tv, NULL) < 0) {
                w->order_ok = 0;
                continue;
            }
            if (w->n && key_cmp(tv, id, w->hits[w->n - 1].ts, w->hits[w->n - 1].id) >= 0)
                w->order_ok = 0;
            if (w->n == w->cap) {
                w->cap = w->cap ? 2 * w->cap : 16384;
                w->hits = realloc(w->hits, w->cap * sizeof(*w->hits));
            }
            w->hits[w->n].ts = tv;
            snprintf(w->hits[w->n].id, WALK_ID, "%s", id);
            p->last_ts = tv;
            snprintf(p->last_id, WALK_ID, "%s", id);
            p->n++;
            w->n++;
        }
        if (!(cursor = next_cursor(j)))
            break;
    }
    free(cursor);
    w->t1 = lh_time_mono_ns();
    if (!counted)
        atomic_fetch_add(&w->f->first_pages, 1);
    atomic_fetch_add(&w->f->walks_done, 1);
    lh_http_client_destroy(g_http);
    return NULL;
}

static int whit_by_id(const void *a, const void *b)
{
    return strcmp(((const struct whit *)a)->id, ((const struct whit *)b)->id);
}

/* Checks walk w against the cursor contract (see above); prints its line. */
static int judge_walk(struct live *w, const struct feeder *f)
{
    qsort(w->hits, w->n, sizeof(*w->hits), whit_by_id);
    size_t dups = 0, init = 0, newer = 0, late = 0, must = 0, must_seen = 0, behind = 0,
           behind_seen = 0, overlap = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (i && strcmp(w->hits[i].id, w->hits[i - 1].id) == 0) {
            dups++;
            if (dups == 1)
                fprintf(stderr, "    %s: %s twice\n", w->name, w->hits[i].id);
        }
        init += strncmp(w->hits[i].id, "w0-", 3) == 0;
        newer += strncmp(w->hits[i].id, "wn-", 3) == 0;
        late += strncmp(w->hits[i].id, "wl-", 3) == 0;
    }
    for (int b = 0; w->npages && b < atomic_load(&f->nbatches); b++)
        overlap += f->batches[b].os_start > w->pages[0].recv &&
                   f->batches[b].ar_end < w->pages[w->npages - 1].send;
    for (size_t k = 0; k < f->nlate && w->npages; k++) {
        const struct late_ev *l = &f->late[k];
        const struct wbatch *b = &f->batches[l->batch];
        int64_t start = w->os ? b->os_start : b->ar_start;
        int64_t visible = w->ar ? b->ar_end : b->os_end;
        /* the page that went past l: the first whose last hit is older */
        const struct wpage *p = &w->pages[w->npages - 1];
        for (size_t i = 0; i < w->npages; i++) {
            if (w->pages[i].n && key_cmp(w->pages[i].last_ts, w->pages[i].last_id, l->ts,
                                         l->id) < 0) {
                p = &w->pages[i];
                break;
            }
        }
        struct whit key = { .ts = l->ts };
        snprintf(key.id, sizeof(key.id), "%s", l->id);
        int seen = bsearch(&key, w->hits, w->n, sizeof(*w->hits), whit_by_id) != NULL;
        if (visible < p->send) {
            must++;
            must_seen += seen;
            if (!seen && must - must_seen == 1)
                fprintf(stderr, "    %s: skipped %s (written before page %zu was asked)\n",
                        w->name, l->id, (size_t)(p - w->pages));
        } else if (start > p->recv) {
            behind++;
            behind_seen += seen;
            if (seen && behind_seen == 1)
                fprintf(stderr, "    %s: %s written behind the cursor (after page %zu) but "
                        "returned\n", w->name, l->id, (size_t)(p - w->pages));
        }
    }
    int ok = w->status == 0 && w->order_ok && dups == 0 && init == f->ninit &&
             w->total == (long long)f->ninit && strcmp(w->rel, "eq") == 0 && newer == 0 &&
             must_seen == must && behind_seen == 0 && must > 0 && behind > 0 && overlap > 0 &&
             w->npages >= f->ninit / WALK_LIMIT;
    printf("%s walk_%-21s %zu hits (total %lld %s) in %zu pages, %.1f s: initial %zu/%zu, "
           "late %zu (%zu/%zu written ahead, %zu/%zu behind the cursor), new %zu, %zu "
           "batches during the walk%s%s\n", ok ? "ok  " : "FAIL", w->name, w->n, w->total,
           w->rel, w->npages, (double)(w->t1 - w->t0) / 1e9, init, f->ninit, late, must_seen,
           must, behind_seen, behind, newer, overlap, w->order_ok ? "" : ", OUT OF ORDER",
           w->status ? ", HTTP error" : "");
    if (w->status)
        fprintf(stderr, "    %s: page %zu: status %d\n", w->name, w->npages - 1, w->status);
    return ok;
}

/* Bounds inside a millisecond, on the walk tenant's data (by now the same
 * in every store): the same hits from the ns and the ms index sets and from
 * the archive (bases[0..3)), as many as there are events in range. */
static int sub_ms_cases(const struct feeder *f, const char *const bases[3], int *passed)
{
    size_t ka = f->ninit * 3 / 10 / 3 * 3, kb = ka + 300 < f->ninit ? ka + 300 : f->ninit - 1;
    int64_t ta = f->init[ka].ts_ns, tb = f->init[kb].ts_ns;
    char a1[40], b1[40], am[40], bm[40], a0[40];
    lh_time_format_rfc3339(ta + 1, 9, a1, sizeof(a1));
    lh_time_format_rfc3339(tb + 1, 9, b1, sizeof(b1));
    lh_time_format_rfc3339(ta - 1, 9, am, sizeof(am));
    lh_time_format_rfc3339(tb - 1, 9, bm, sizeof(bm));
    lh_time_format_rfc3339(ta, 9, a0, sizeof(a0));
    struct {
        const char *name;
        char query[400];
        int64_t lo, hi;          /* expected: lo <= ts < hi */
    } c[5];
#define TSF(op, v) "{\"field\":\"timestamp\",\"operator\":\"" op "\",\"value\":\"%s\"}"
    c[0].name = "sub_ms_time_range";
    snprintf(c[0].query, sizeof(c[0].query), "{\"time_range\":{\"start\":\"%s\",\"end\":"
             "\"%s\"}}", a1, b1);
    c[0].lo = ta + 1, c[0].hi = tb + 1;
    c[1].name = "sub_ms_gte_lt";
    snprintf(c[1].query, sizeof(c[1].query), "{\"filters\":[" TSF("GTE", ) "," TSF("LT", )
             "]}", a1, b1);
    c[1].lo = ta + 1, c[1].hi = tb + 1;
    c[2].name = "sub_ms_gt_lte";
    snprintf(c[2].query, sizeof(c[2].query), "{\"filters\":[" TSF("GT", ) "," TSF("LTE", )
             "]}", am, bm);
    c[2].lo = ta, c[2].hi = tb;
    c[3].name = "sub_ms_equals";
    snprintf(c[3].query, sizeof(c[3].query), "{\"filters\":[" TSF("EQUALS", ) "]}", a1);
    c[3].lo = ta + 1, c[3].hi = ta + 2;
    c[4].name = "ms_equals";
    snprintf(c[4].query, sizeof(c[4].query), "{\"filters\":[" TSF("EQUALS", ) "]}", a0);
    c[4].lo = ta, c[4].hi = ta + 1;
#undef TSF
    int failed = 0;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        size_t want = 0;
        for (size_t k = 0; k < f->ninit; k++)
            want += f->init[k].ts_ns >= c[i].lo && f->init[k].ts_ns < c[i].hi;
        for (size_t k = 0; k < f->nlate; k++)
            want += f->late[k].ts >= c[i].lo && f->late[k].ts < c[i].hi;
        struct walk w[3];
        for (int k = 0; k < 3; k++)
            walk(bases[k], "walk-token", c[i].query, 97, &w[k]);
        int ok = w[0].status == 0 && same_walk(&w[0], &w[1]) && same_walk(&w[0], &w[2]) &&
                 w[0].n == want && w[0].total == (long long)want;
        printf("%s %-26s expected %4zu: opensearch %4zu (%lld) opensearch_ms %4zu (%lld) "
               "archive %4zu (%lld)\n", ok ? "ok  " : "FAIL", c[i].name, want, w[0].n,
               w[0].total, w[1].n, w[1].total, w[2].n, w[2].total);
        if (!ok) {
            first_diff("opensearch", "opensearch_ms", &w[0].ids, &w[1].ids);
            first_diff("opensearch", "archive", &w[0].ids, &w[2].ids);
            failed++;
        } else {
            (*passed)++;
        }
        for (int k = 0; k < 3; k++)
            lh_buf_free(&w[k].ids);
    }
    return failed;
}

#define WALKS_MAX 8

/* Loads tenant "walk" (n events) into OpenSearch (both index sets) and the
 * archive, runs the walks w[0..nw) and the feeder at once, and judges the
 * walks; then the sub-millisecond cases on w[0..3) (the ns indices, the ms
 * indices, the archive). Returns the failures. */
static int live_walks(size_t n, const char *url, const char *prefix, const char *prefix_ms,
                      const char *adir, struct live *w, int nw, int *passed)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    int64_t now = lh_time_now_ns();
    /* from 15 min past the hour 3 hours ago to 5 min before this hour */
    int64_t wbase = now / HOUR_NS * HOUR_NS - 3 * HOUR_NS + 15 * 60 * LH_NS_PER_SEC;
    int64_t span = 3 * HOUR_NS - 20 * 60 * LH_NS_PER_SEC;
    int64_t step = span / (int64_t)(n / 3 + 1) / LH_NS_PER_MS * LH_NS_PER_MS;
    for (size_t i = 0; i < n; i++) {
        char id[WALK_ID];
        snprintf(id, sizeof(id), "w0-%05zu", i);
        evs[i] = (struct lh_event){ .id = lh_arena_strdup(&a, id), .tenant = "walk",
                                    .ts_ns = wbase + (int64_t)(i / 3) * step,
                                    .level = (enum lh_level)(i % LH_LEVEL_COUNT),
                                    .service = services[i % 5], .host = hosts[i % 5],
                                    .message = i % 2 ? "walk me" : "walk this way" };
    }
    struct feeder *f = calloc(1, sizeof(*f));
    if (!f || nw > WALKS_MAX || os_bulk(url, prefix, evs, n, 1) < 0 ||
        os_bulk(url, prefix_ms, evs, n, 0) < 0 || load_archive(evs, n, "walk", adir) < 0) {
        fprintf(stderr, "walk: loading failed\n");
        free(f);
        lh_arena_free(&a);
        return nw;
    }
    *f = (struct feeder){ .url = url, .prefix = prefix, .prefix_ms = prefix_ms, .adir = adir,
                          .init = evs, .ninit = n, .wbase = wbase, .nwalks = nw };
    for (int i = 0; i < nw; i++)
        w[i].f = f;
    pthread_t th[WALKS_MAX], feeder;
    int started = pthread_create(&feeder, NULL, feed_main, f) == 0;
    if (!started)
        atomic_store(&f->over, 1);
    int running[WALKS_MAX];
    for (int i = 0; i < nw; i++) {
        running[i] = pthread_create(&th[i], NULL, live_main, &w[i]) == 0;
        if (!running[i]) {   /* as if it had failed at once */
            w[i].status = -1;
            atomic_fetch_add(&f->first_pages, 1);
            atomic_fetch_add(&f->walks_done, 1);
        }
    }
    for (int i = 0; i < nw; i++)
        if (running[i])
            pthread_join(th[i], NULL);
    if (started)
        pthread_join(feeder, NULL);
    int failed = 0;
    for (int i = 0; i < nw; i++) {
        if (!f->failed && judge_walk(&w[i], f))
            (*passed)++;
        else
            failed++;
        free(w[i].hits);
        free(w[i].pages);
    }
    if (f->failed)
        printf("FAIL the feeder could not write (see above)\n");
    int nb = atomic_load(&f->nbatches);
    double os_ms = 0, ar_ms = 0;
    for (int b = 0; b < nb; b++) {
        os_ms += (double)(f->batches[b].os_end - f->batches[b].os_start) / 1e6 / nb;
        ar_ms += (double)(f->batches[b].ar_end - f->batches[b].ar_start) / 1e6 / nb;
    }
    printf("     feeder: %d batches of %d new and %d late events; a batch took %.0f ms in "
           "OpenSearch (two bulks), %.0f ms in the archive (two objects)\n", nb, WALK_NEW,
           WALK_LATE, os_ms, ar_ms);
    const char *bases[3] = { w[0].base, w[1].base, w[2].base };
    if (nw >= 3)
        failed += sub_ms_cases(f, bases, passed);
    free(f);
    lh_arena_free(&a);
    return failed;
}

struct qcase {
    const char *name;
    const char *query;          /* the "query" object; %s: timestamps, see below */
    int expect_empty;
};

int main(int argc, char **argv)
{
    static const struct option lo[] = { { "url", required_argument, NULL, 'u' },
                                         { "count", required_argument, NULL, 'n' },
                                         { "walk", required_argument, NULL, 'w' },
                                         { "keep", no_argument, NULL, 'k' },
                                         { 0, 0, 0, 0 } };
    const char *url = getenv("LOGHAUL_OPENSEARCH_URL");
    if (!url || !*url)
        url = "http://127.0.0.1:9200";
    size_t count = 3000, nwalk = 10000;
    int keep = 0, ch;
    while ((ch = getopt_long(argc, argv, "u:n:w:kv", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'n': count = (size_t)atol(optarg); break;
        case 'w': nwalk = (size_t)atol(optarg); break;
        case 'k': keep = 1; break;
        case 'v': g_verbose = 1; break;
        default: return 2;
        }
    }
    if (count < 100 || nwalk < 1000 || nwalk > 99999) {
        fprintf(stderr, "--count: at least 100; --walk: 1000 to 99999\n");
        return 2;
    }
    lh_log_set_level(LH_LOG_WARN);
    struct lh_err err = { 0 };
    struct lh_http_client_config hc = { .timeout_ms = 60000 };
    if (lh_http_client_create(&hc, &g_http, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char prefix[32], prefix_ms[40], dir[] = "/tmp/loghaul-conformance-XXXXXX", adir[64];
    snprintf(prefix, sizeof(prefix), "qct%d", (int)getpid());
    snprintf(prefix_ms, sizeof(prefix_ms), "%sms", prefix);   /* indices mapped in ms */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    int64_t now = lh_time_now_ns();
    struct dataset d;
    make_data(&d, "conf", count, now);
    snprintf(adir, sizeof(adir), "%s/archive", dir);
    int rc = load_store(&d, dir);
    if (rc == 0)
        rc = load_archive(d.evs, d.n, "conf", adir);
    if (rc == 0)
        rc = os_template(url, prefix, 1);
    if (rc == 0)
        rc = os_bulk(url, prefix, d.evs, d.n, 1);
    if (rc == 0)
        rc = os_template(url, prefix_ms, 0);
    if (rc < 0) {
        cleanup_opensearch(url, prefix);
        cleanup_opensearch(url, prefix_ms);
        return 1;
    }
    printf("loaded %zu events into %s, %s and %s/%s-*\n", d.n, dir, adir, url, prefix);

    static const char head[] = "tenants:\n  - name: conf\n    tokens: [conformance-token]\n"
                               "  - name: walk\n    tokens: [walk-token]\n"
                               "cursor:\n  key: conformance-cursor-key-0123\n"
                               "listen:\n  address: 127.0.0.1:0\n";
    char y1[1024], y2[1024], y3[1024], y4[1400], y5[1024];
    snprintf(y1, sizeof(y1), "%stiers:\n  - type: store\n    store:\n      dir: %s\n", head, dir);
    snprintf(y2, sizeof(y2), "%stiers:\n  - type: opensearch\n    opensearch:\n"
             "      urls: [\"%s\"]\n      index_prefix: %s\n", head, url, prefix);
    snprintf(y3, sizeof(y3), "%stiers:\n  - type: archive\n    archive:\n      type: dir\n"
             "      encryption_key: \"%s\"\n      dir:\n        path: %s\n", head,
             ARCHIVE_KEY_HEX, adir);
    /* two tiers for the walks: OpenSearch for the last 2 hours, the archive before */
    snprintf(y4, sizeof(y4), "%stiers:\n  - type: opensearch\n    max_age: 2h\n"
             "    opensearch:\n      urls: [\"%s\"]\n      index_prefix: %s\n"
             "  - type: archive\n    archive:\n      type: dir\n      encryption_key: \"%s\"\n"
             "      dir:\n        path: %s\n", head, url, prefix, ARCHIVE_KEY_HEX, adir);
    /* OpenSearch indices whose timestamps are mapped as date (milliseconds) */
    snprintf(y5, sizeof(y5), "%stiers:\n  - type: opensearch\n    opensearch:\n"
             "      urls: [\"%s\"]\n      index_prefix: %s\n", head, url, prefix_ms);
    struct qd qs, qo, qa, qt, qm;
    if (qd_start(&qs, y1) < 0 || qd_start(&qo, y2) < 0 || qd_start(&qa, y3) < 0 ||
        qd_start(&qt, y4) < 0 || qd_start(&qm, y5) < 0)
        return 1;

    /* times for the timestamp filters: the data set's own instants */
    char t_mid[40], t_q1[40], t_e3[40], t_e5[40], r_from[40], r_to[40];
    lh_time_format_rfc3339(d.base + d.span / 2, 9, t_mid, sizeof(t_mid));
    lh_time_format_rfc3339(d.base + d.span / 4, 3, t_q1, sizeof(t_q1));
    lh_time_format_rfc3339(d.evs[3].ts_ns, 9, t_e3, sizeof(t_e3));
    lh_time_format_rfc3339(d.evs[5].ts_ns, 9, t_e5, sizeof(t_e5));
    lh_time_format_rfc3339(d.base + d.span / 3, 0, r_from, sizeof(r_from));
    lh_time_format_rfc3339(d.base + d.span / 3 + 600 * LH_NS_PER_SEC, 0, r_to, sizeof(r_to));
    char q_gt_ts[200], q_lte_ts[200], q_in_ts[300], q_ne_ts[200], q_range[200], q_range2[400];
    snprintf(q_gt_ts, sizeof(q_gt_ts), "{\"filters\":[{\"field\":\"timestamp\",\"operator\":"
             "\"GT\",\"value\":\"%s\"}]}", t_mid);
    snprintf(q_lte_ts, sizeof(q_lte_ts), "{\"filters\":[{\"field\":\"timestamp\",\"operator\":"
             "\"LTE\",\"value\":\"%s\"}]}", t_q1);
    snprintf(q_in_ts, sizeof(q_in_ts), "{\"filters\":[{\"field\":\"timestamp\",\"operator\":"
             "\"IN\",\"value\":[\"%s\",\"%s\"]}]}", t_e3, t_e5);
    snprintf(q_ne_ts, sizeof(q_ne_ts), "{\"filters\":[{\"field\":\"timestamp\",\"operator\":"
             "\"NOT_EQUALS\",\"value\":\"%s\"}]}", t_e3);
    snprintf(q_range, sizeof(q_range), "{\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}}",
             r_from, r_to);
    snprintf(q_range2, sizeof(q_range2), "{\"full_text\":\"timeout\",\"time_range\":{\"start\":"
             "\"%s\",\"end\":\"%s\"},\"filters\":[{\"field\":\"level\",\"operator\":\"GTE\","
             "\"value\":\"INFO\"}]}", r_from, r_to);
#define F1(f, op, v) "{\"filters\":[{\"field\":\"" f "\",\"operator\":\"" op "\",\"value\":" v "}]}"
    struct qcase cases[] = {
        { "everything", "{}", 0 },
        { "word", "{\"full_text\":\"timeout\"}", 0 },
        { "word_case", "{\"full_text\":\"TimeOut\"}", 0 },
        { "two_words", "{\"full_text\":\"payment failed\"}", 0 },
        { "three_words", "{\"full_text\":\"card declined disk\"}", 0 },
        { "phrase", "{\"full_text\":\"\\\"connection refused\\\"\"}", 0 },
        { "phrase_reversed", "{\"full_text\":\"\\\"refused connection\\\"\"}", 0 },
        { "phrase_and_word", "{\"full_text\":\"\\\"card declined\\\" naïve\"}", 0 },
        { "unicode_latin", "{\"full_text\":\"naïve café\"}", 0 },
        { "unicode_umlaut", "{\"full_text\":\"Grüße\"}", 0 },
        { "unicode_cjk", "{\"full_text\":\"日本語\"}", 0 },
        { "syntax_as_text", "{\"full_text\":\"OR AND value\"}", 0 },
        { "no_such_word", "{\"full_text\":\"zyzzyva\"}", 1 },
        { "trace_id_text", "{\"full_text\":\"feedfacecafebeef0000000000000001\"}", 0 },
        { "user_id_text", "{\"full_text\":\"usr_7\"}", 0 },
        { "equals_service", F1("service", "EQUALS", "\"payment-service\""), 0 },
        { "equals_level", F1("level", "EQUALS", "\"error\""), 0 },
        { "equals_none", F1("service", "EQUALS", "\"no-such-service\""), 1 },
        { "not_equals_service", F1("service", "NOT_EQUALS", "\"api\""), 0 },
        { "not_equals_host", F1("host", "NOT_EQUALS", "\"web-1\""), 0 },
        { "in_service", F1("service", "IN", "[\"api\",\"db\"]"), 0 },
        { "in_level", F1("level", "IN", "[\"WARN\",\"FATAL\"]"), 0 },
        { "contains_host", F1("host", "CONTAINS", "\"eb-\""), 0 },
        { "contains_wildcard_chars", F1("host", "CONTAINS", "\"w*b\""), 1 },
        { "prefix_service", F1("service", "PREFIX", "\"pay\""), 0 },
        { "prefix_user", F1("user_id", "PREFIX", "\"usr_1\""), 0 },
        { "exists_trace", F1("trace_id", "EXISTS", "true"), 0 },
        { "not_exists_trace", F1("trace_id", "EXISTS", "false"), 0 },
        { "equals_id", F1("id", "EQUALS", "\"c-00042\""), 0 },
        { "gt_timestamp", q_gt_ts, 0 },
        { "lte_timestamp", q_lte_ts, 0 },
        { "in_timestamp", q_in_ts, 0 },
        { "not_equals_timestamp", q_ne_ts, 0 },
        { "gte_level", F1("level", "GTE", "\"warn\""), 0 },
        { "lt_level", F1("level", "LT", "\"INFO\""), 0 },
        { "meta_equals", F1("metadata.zone", "EQUALS", "\"z-3\""), 0 },
        { "meta_not_equals", F1("metadata.zone", "NOT_EQUALS", "\"z-3\""), 0 },
        { "meta_in", F1("metadata.zone", "IN", "[\"z-0\",\"z-4\"]"), 0 },
        { "meta_prefix", F1("metadata.zone", "PREFIX", "\"z-\""), 0 },
        { "meta_contains", F1("metadata.zone", "CONTAINS", "\"-2\""), 0 },
        { "meta_exists", F1("metadata.zone", "EXISTS", "true"), 0 },
        { "meta_not_exists", F1("metadata.zone", "EXISTS", "false"), 0 },
        { "meta_dotted_exists", F1("metadata.http.status", "EXISTS", "true"), 0 },
        { "meta_dotted_equals", F1("metadata.http.status", "EQUALS", "500"), 0 },
        { "meta_gt", F1("metadata.duration_ms", "GT", "99.49"), 0 },
        { "meta_gte", F1("metadata.duration_ms", "GTE", "99.5"), 0 },
        { "meta_lt_negative", F1("metadata.duration_ms", "LT", "-1"), 0 },
        { "meta_lte_zero", F1("metadata.duration_ms", "LTE", "0"), 0 },
        { "meta_gt_leading_zeros", F1("metadata.duration_ms", "GT", "6.99"), 0 },
        { "host_alias", F1("metadata.host", "EQUALS", "\"db-1\""), 0 },
        { "k8s_namespace", F1("k8s.namespace", "EQUALS", "\"prod\""), 0 },
        { "k8s_pod_in", F1("k8s.pod", "IN", "[\"pod-1\",\"pod-5\"]"), 0 },
        { "stream", F1("stream", "EQUALS", "\"stderr\""), 0 },
        { "region", F1("region", "NOT_EQUALS", "\"eu-west-1\""), 0 },
        { "container_exists", F1("container_id", "EXISTS", "false"), 0 },
        { "message_exists", F1("message", "EXISTS", "true"), 0 },
        { "time_window", q_range, 0 },
        { "combined", "{\"full_text\":\"retry\",\"filters\":[{\"field\":\"service\",\"operator\":"
          "\"IN\",\"value\":[\"api\",\"web\",\"auth\"]},{\"field\":\"level\",\"operator\":"
          "\"NOT_EQUALS\",\"value\":\"DEBUG\"},{\"field\":\"metadata.duration_ms\",\"operator\":"
          "\"EXISTS\"}]}", 0 },
        { "combined_window", q_range2, 0 },
        { "contradiction", "{\"filters\":[{\"field\":\"service\",\"operator\":\"EQUALS\","
          "\"value\":\"api\"},{\"field\":\"service\",\"operator\":\"EQUALS\",\"value\":\"db\"}]}",
          1 },
    };
    size_t ncases = sizeof(cases) / sizeof(cases[0]);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < ncases; i++) {
        struct walk ws, wo, wa;
        int limit = i % 2 ? 97 : 500;   /* walks of many pages and of few */
        walk(qs.base, "conformance-token", cases[i].query, limit, &ws);
        walk(qo.base, "conformance-token", cases[i].query, limit, &wo);
        walk(qa.base, "conformance-token", cases[i].query, limit, &wa);
        int ok = ws.status == 0 && same_walk(&ws, &wo) && same_walk(&ws, &wa) &&
                 (cases[i].expect_empty ? ws.n == 0 : ws.n > 0) && (long long)ws.n == ws.total;
        printf("%s %-26s store %5zu hits (total %lld) opensearch %5zu (%lld) archive %5zu "
               "(%lld)\n", ok ? "ok  " : "FAIL", cases[i].name, ws.n, ws.total, wo.n, wo.total,
               wa.n, wa.total);
        if (!ok) {
            fprintf(stderr, "    status: store %d, opensearch %d, archive %d\n", ws.status,
                    wo.status, wa.status);
            first_diff("store", "opensearch", &ws.ids, &wo.ids);
            first_diff("store", "archive", &ws.ids, &wa.ids);
            failed++;
        } else {
            passed++;
        }
        lh_buf_free(&ws.ids);
        lh_buf_free(&wo.ids);
        lh_buf_free(&wa.ids);
    }

    /* aggregations: histogram and top values, the same over both */
    const char *aggs[] = {
        "{\"query\":{\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}},\"interval\":\"1m\","
        "\"top\":[{\"field\":\"level\"},{\"field\":\"service\",\"size\":3}]}",
        "{\"query\":{\"full_text\":\"timeout\",\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}},"
        "\"interval\":\"10m\",\"top\":[{\"field\":\"host\",\"size\":2},{\"field\":\"k8s.pod\"}]}",
    };
    char a_from[40], a_to[40];
    lh_time_format_rfc3339((d.base / (600 * LH_NS_PER_SEC)) * 600 * LH_NS_PER_SEC, 0, a_from,
                           sizeof(a_from));
    lh_time_format_rfc3339(now, 0, a_to, sizeof(a_to));
    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++) {
        char body[800];
        snprintf(body, sizeof(body), aggs[i], a_from, a_to);
        int s1, s2, s3;
        json_t *js = post_json(qs.base, "/v1/logs/aggregate", body, &s1);
        json_t *jo = post_json(qo.base, "/v1/logs/aggregate", body, &s2);
        json_t *ja = post_json(qa.base, "/v1/logs/aggregate", body, &s3);
        json_t *all[3] = { js, jo, ja };
        for (int k = 0; k < 3; k++) {
            json_object_del(all[k], "took_ms");
            json_object_del(all[k], "tiers");
        }
        int ok = s1 == 200 && s2 == 200 && s3 == 200 && json_equal(js, jo) &&
                 json_equal(js, ja) && json_integer_value(json_object_get(js, "total_hits")) > 0;
        printf("%s aggregate_%zu               total %lld / %lld / %lld\n", ok ? "ok  " : "FAIL",
               i, (long long)json_integer_value(json_object_get(js, "total_hits")),
               (long long)json_integer_value(json_object_get(jo, "total_hits")),
               (long long)json_integer_value(json_object_get(ja, "total_hits")));
        if (!ok) {
            char *a = json_dumps(js, JSON_COMPACT), *b = json_dumps(jo, JSON_COMPACT),
                 *c = json_dumps(ja, JSON_COMPACT);
            fprintf(stderr, "    store:      %.600s\n    opensearch: %.600s\n"
                    "    archive:    %.600s\n", a, b, c);
            free(a);
            free(b);
            free(c);
            failed++;
        } else {
            passed++;
        }
        for (int k = 0; k < 3; k++)
            json_decref(all[k]);
    }

    /* the 10,000-hit walks while events keep arriving */
    struct live walks[] = {
        { .name = "opensearch", .base = qo.base, .os = 1 },
        { .name = "opensearch_ms", .base = qm.base, .os = 1 },
        { .name = "archive", .base = qa.base, .ar = 1 },
        { .name = "opensearch_archive", .base = qt.base, .os = 1, .ar = 1 },
    };
    failed += live_walks(nwalk, url, prefix, prefix_ms, adir, walks,
                         (int)(sizeof(walks) / sizeof(walks[0])), &passed);

    qd_stop(&qs);
    qd_stop(&qo);
    qd_stop(&qa);
    qd_stop(&qt);
    qd_stop(&qm);
    if (!keep) {
        cleanup_opensearch(url, prefix);
        cleanup_opensearch(url, prefix_ms);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    lh_arena_free(&d.arena);
    lh_http_client_destroy(g_http);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
