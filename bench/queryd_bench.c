/* queryd_bench.c - queryd's cost on top of the store: the same queries asked
 * through the HTTP API (a queryd in this process, one kept-alive client)
 * and of the store directly (lh/store.h, the same store handle settings,
 * the same arguments queryd passes: total counted up to 10,001), in
 * alternating rounds on one data set. Prints p50/p99 latency and queries/s
 * of each, and the HTTP overhead at p50 (http / store - 1).
 *
 *   queryd_bench [--events N] [--rounds R] [--dir DIR] [--keep]
 *
 * Query set (asked R times per side; the two that scan everything R/5 times):
 *   trace_id   EQUALS on one trace id (1 hit)
 *   rare       a word in about 1 event in 10,000 (full text, limit 100)
 *   common     a word in about 1 event in 3 (full text, limit 100)
 *   by_level   one hour: counts per level (aggregate top level; store top)
 * Events: store_testlib's generator over the last 6 hours. Built and run by
 * bench/queryd_bench.sh. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "../queryd/queryd.h"
#include "../tests/unit/store_testlib.h"
#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/store.h"
#include "lh/time.h"

struct qd {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct lh_http_server *srv;
    struct lh_queryd_config cfg;
    struct lh_queryd *q;
    int port;
};

static void *loop_main(void *arg)
{
    struct qd *d = arg;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    struct qd *d = a->data;
    lh_queryd_shutdown(d->q);
    lh_http_server_shutdown(d->srv, 1000, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static double now_s(void) { return (double)lh_time_mono_ns() / 1e9; }

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct series {
    double *v;
    size_t n;
};

static double pct(struct series *s, double p)
{
    qsort(s->v, s->n, sizeof(double), dcmp);
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static double sum(const struct series *s)
{
    double t = 0;
    for (size_t i = 0; i < s->n; i++)
        t += s->v[i];
    return t;
}

enum { Q_TRACE, Q_RARE, Q_COMMON, Q_LEVEL, NQ };
static const char *const qnames[NQ] = { "trace_id", "rare", "common", "by_level" };

struct ctx {
    struct lh_store *store;
    struct lh_http_client *http;
    char url[128], aurl[128];
    char trace[80];
    int64_t hour_start, hour_end;
    char bodies[NQ][600];
};

/* One query straight from the store, as queryd asks it. */
static int store_query(struct ctx *c, int q)
{
    struct lh_err err = { 0 };
    struct lh_store_pred p = { "trace_id", LH_STORE_EQ, c->trace, NULL, 0 };
    static const char *const rare[] = { "zyzzyva" };
    static const char *const common[] = { "timeout" };
    int64_t day_ago = lh_time_now_ns() - 24 * 3600 * LH_NS_PER_SEC;
    struct lh_store_query sq = { .tenant = "bench", .start_ns = day_ago, .limit = 100,
                                 .want_total = 1, .total_cap = 10001 };
    if (q == Q_TRACE) {
        sq.preds = &p;
        sq.npreds = 1;
    } else if (q == Q_RARE) {
        sq.terms = rare;
        sq.nterms = 1;
    } else if (q == Q_COMMON) {
        sq.terms = common;
        sq.nterms = 1;
    } else {
        struct lh_store_query tq = { .tenant = "bench", .start_ns = c->hour_start,
                                     .end_ns = c->hour_end };
        struct lh_store_top *t = NULL;
        struct lh_store_histogram *h = NULL;
        /* what the aggregate endpoint runs: the histogram (for total_hits) and the top */
        int rc = lh_store_histogram(c->store, &tq, 3600 * LH_NS_PER_SEC, &h, &err);
        if (rc == 0)
            rc = lh_store_top(c->store, &tq, "level", 0, &t, &err);
        lh_store_histogram_free(h);
        lh_store_top_free(t);
        return rc;
    }
    struct lh_store_result *r = NULL;
    int rc = lh_store_search(c->store, &sq, &r, &err);
    lh_store_result_free(r);
    return rc;
}

static int http_query(struct ctx *c, int q)
{
    struct lh_http_header h[] = { { "Authorization", "Bearer bench-token-1" },
                                  { "Content-Type", "application/json" }, { NULL, NULL } };
    struct lh_http_request req = { .method = "POST", .url = q == Q_LEVEL ? c->aurl : c->url,
                                   .headers = h, .body = c->bodies[q],
                                   .body_len = strlen(c->bodies[q]) };
    struct lh_http_response resp = { 0 };
    struct lh_err err = { 0 };
    int rc = lh_http_client_do(c->http, &req, &resp, &err);
    if (rc == 0 && resp.status != 200) {
        fprintf(stderr, "%s: HTTP %ld %s\n", qnames[q], resp.status, resp.body.data);
        rc = -1;
    }
    lh_http_response_free(&resp);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = { { "events", required_argument, NULL, 'n' },
                                         { "rounds", required_argument, NULL, 'r' },
                                         { "dir", required_argument, NULL, 'd' },
                                         { "keep", no_argument, NULL, 'k' }, { 0, 0, 0, 0 } };
    size_t events = 1000000;
    int rounds = 200, keep = 0, ch;
    char dir[512] = "";
    while ((ch = getopt_long(argc, argv, "n:r:d:k", lo, NULL)) != -1) {
        switch (ch) {
        case 'n': events = (size_t)atol(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'd': snprintf(dir, sizeof(dir), "%s", optarg); break;
        case 'k': keep = 1; break;
        default: return 2;
        }
    }
    lh_log_set_level(LH_LOG_WARN);
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/lh-queryd-bench-XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    struct ctx c;
    memset(&c, 0, sizeof(c));
    int64_t now = lh_time_now_ns(), span = 6 * 3600 * LH_NS_PER_SEC;
    struct lh_err err = { 0 };
    struct lh_store_config scfg = { .dir = dir };
    struct lh_store *w = NULL;
    if (lh_store_open(&w, &scfg, LH_STORE_WRITE, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* the data set: random events, a rare word in about 1 in 10,000 */
    struct lh_arena a = LH_ARENA_INIT;
    struct tgen g = { 20260523, &a, 0, { 0 }, 0 };
    double t0 = now_s();
    size_t batch = 50000, rare = 0;
    for (size_t done = 0; done < events; done += batch) {
        size_t n = events - done < batch ? events - done : batch;
        struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
        tg_new_batch(&g);
        for (size_t i = 0; i < n; i++) {
            tg_event(&g, &evs[i], "bench", now - span, span);
            if (tg_below(&g, 10000) == 0 && evs[i].message) {
                char m[600];
                snprintf(m, sizeof(m), "%s zyzzyva", evs[i].message);
                evs[i].message = lh_arena_strdup(&a, m);
                rare++;
            }
            if (!c.trace[0] && evs[i].trace_id && strlen(evs[i].trace_id) == 32 &&
                done + i > events / 2)
                snprintf(c.trace, sizeof(c.trace), "%s", evs[i].trace_id);
        }
        if (lh_store_append(w, evs, n, NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        lh_arena_reset(&a);
    }
    lh_store_close(w);
    lh_arena_free(&a);
    printf("store: %zu events (%zu with the rare word) over 6 h in %s, written in %.1f s\n",
           events, rare, dir, now_s() - t0);

    /* the same read handle settings on both sides: threads 2 */
    scfg.threads = 2;
    if (lh_store_open(&c.store, &scfg, LH_STORE_READ, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "listen: { address: 127.0.0.1:0 }\n"
             "tenants: [ { name: bench, tokens: [bench-token-1] } ]\n"
             "cursor: { key: bench-cursor-key-0123456789 }\n"
             "limits: { slow_query: 1h }\n"
             "tiers: [ { type: store, store: { dir: %s, threads: 2 } } ]\n", dir);
    struct qd d;
    memset(&d, 0, sizeof(d));
    if (lh_conf_load_string("bench.yaml", yaml, strlen(yaml), lh_queryd_opts, &d.cfg, &err) < 0 ||
        uv_loop_init(&d.loop) != 0 ||
        lh_http_server_create(&d.loop, &d.cfg.common.listen, &d.srv, &err) < 0 ||
        lh_queryd_create(&d.cfg, d.srv, NULL, &d.q, &err) < 0) {
        fprintf(stderr, "queryd: %s\n", err.msg);
        return 1;
    }
    d.port = lh_http_server_port(d.srv);
    uv_async_init(&d.loop, &d.stop, on_stop);
    d.stop.data = &d;
    pthread_create(&d.thread, NULL, loop_main, &d);

    struct lh_http_client_config hc = { .timeout_ms = 120000 };
    if (lh_http_client_create(&hc, &c.http, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/v1/logs/search", d.port);
    snprintf(c.aurl, sizeof(c.aurl), "http://127.0.0.1:%d/v1/logs/aggregate", d.port);
    int64_t hour = 3600 * LH_NS_PER_SEC;
    c.hour_end = (now / hour) * hour;
    c.hour_start = c.hour_end - hour;
    char hs[40], he[40];
    lh_time_format_rfc3339(c.hour_start, 0, hs, sizeof(hs));
    lh_time_format_rfc3339(c.hour_end, 0, he, sizeof(he));
    snprintf(c.bodies[Q_TRACE], sizeof(c.bodies[0]),
             "{\"query\":{\"filters\":[{\"field\":\"trace_id\",\"operator\":\"EQUALS\","
             "\"value\":\"%s\"}]},\"pagination\":{\"limit\":100}}", c.trace);
    snprintf(c.bodies[Q_RARE], sizeof(c.bodies[0]),
             "{\"query\":{\"full_text\":\"zyzzyva\"},\"pagination\":{\"limit\":100}}");
    snprintf(c.bodies[Q_COMMON], sizeof(c.bodies[0]),
             "{\"query\":{\"full_text\":\"timeout\"},\"pagination\":{\"limit\":100}}");
    snprintf(c.bodies[Q_LEVEL], sizeof(c.bodies[0]),
             "{\"query\":{\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}},\"interval\":\"1h\","
             "\"top\":[{\"field\":\"level\"}]}", hs, he);

    struct series st[NQ], ht[NQ];
    for (int q = 0; q < NQ; q++) {
        st[q].v = calloc((size_t)rounds, sizeof(double));
        ht[q].v = calloc((size_t)rounds, sizeof(double));
        st[q].n = ht[q].n = 0;
        /* warm-up: page cache, connections */
        for (int i = 0; i < 3; i++)
            if (store_query(&c, q) < 0 || http_query(&c, q) < 0)
                return 1;
    }
    /* alternate: store, http, store, http... per query, so drift hits both;
     * the two full scans (rare, common) get a fifth of the rounds */
    for (int r = 0; r < rounds; r++) {
        for (int q = 0; q < NQ; q++) {
            if ((q == Q_RARE || q == Q_COMMON) && r % 5 != 0)
                continue;
            double a0 = now_s();
            store_query(&c, q);
            double a1 = now_s();
            http_query(&c, q);
            double a2 = now_s();
            st[q].v[st[q].n++] = (a1 - a0) * 1000;
            ht[q].v[ht[q].n++] = (a2 - a1) * 1000;
        }
    }
    printf("\n%-9s %10s %10s %9s   %10s %10s %9s   %9s\n", "query", "store p50", "store p99",
           "store q/s", "http p50", "http p99", "http q/s", "overhead");
    for (int q = 0; q < NQ; q++) {
        double sq = (double)st[q].n / (sum(&st[q]) / 1000), hq = (double)ht[q].n / (sum(&ht[q]) / 1000);
        double s50 = pct(&st[q], 0.5), s99 = pct(&st[q], 0.99);
        double h50 = pct(&ht[q], 0.5), h99 = pct(&ht[q], 0.99);
        printf("%-9s %8.3fms %8.3fms %9.0f   %8.3fms %8.3fms %9.0f   %+8.1f%%\n", qnames[q], s50,
               s99, sq, h50, h99, hq, (h50 / s50 - 1) * 100);
        free(st[q].v);
        free(ht[q].v);
    }
    lh_http_client_destroy(c.http);
    uv_async_send(&d.stop);
    pthread_join(d.thread, NULL);
    lh_http_server_destroy(d.srv);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    lh_queryd_destroy(d.q);
    lh_conf_free(lh_queryd_opts, &d.cfg);
    lh_store_close(c.store);
    if (!keep) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}
