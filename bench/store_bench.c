/* store_bench.c - benchmark of the embedded log store (lh/store.h).
 *
 * Generates a realistic data set from a seed (services, levels, hosts,
 * requests with trace ids spanning several services, users, free text from
 * message templates with ids, numbers and paths, metadata, raw lines in
 * text or JSON form), writes it as NDJSON (the raw data set), ingests it
 * into a fresh store and reports: size on disk vs raw, ingest MB/s per CPU
 * second, and p50/p99 latencies of (a) a trace_id lookup over all data,
 * (b) a rare term, (c) a common term with limit 100, (d) a 1-hour count by
 * level; (a) and (b) are compared with `grep -c` over the NDJSON file and
 * `zstdgrep -c` over its zstd -3 copy.
 *
 * Build (from the repository root, after `make`):
 *   cc -O2 -g -std=c11 -D_GNU_SOURCE -pthread -Icommon/include bench/store_bench.c \
 *      build/lib/libloghaul.a -lzstd -lisal -lm -o build/store_bench
 * Run:
 *   build/store_bench [-s MB] [-d DIR] [-seed N] [-q QUERIES] [-b BLOCK_KB] [-z ZSTD_LEVEL]
 *   (default 200 MB of NDJSON in /tmp/store_bench; DIR is emptied first)
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lh/arena.h"
#include "lh/buf.h"
#include "lh/store.h"

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static uint64_t below(uint64_t n) { return rnd() % n; }
/* Zipf-like pick in [0, n): small indexes much more often. */
static uint64_t skewed(uint64_t n)
{
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    return (uint64_t)(pow(u, 3.0) * (double)n) % n;
}

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const services[] = {
    "api-gateway", "payment-service", "order-service", "user-service", "inventory",
    "auth", "search", "recommendation", "notification", "shipping", "billing", "cart",
    "catalog", "reviews", "fraud-detection", "email-worker", "cdn-edge", "session",
    "analytics-ingest", "scheduler",
};
#define NSVC 20
static const char *const methods[] = { "GET", "POST", "PUT", "DELETE" };
static const char *const paths[] = {
    "/v1/orders", "/v1/orders/{id}", "/v1/users/{id}", "/v1/cart", "/v1/checkout",
    "/v1/search", "/v1/products/{id}", "/healthz", "/v1/payments", "/v1/login",
};

/* Message templates: %T text, filled by fill(). */
static const char *const templates[] = {
    "request completed method=%M path=%P status=%S duration_ms=%D",
    "request started method=%M path=%P",
    "user %U logged in from %I",
    "cache miss for key product:%N",
    "cache hit for key session:%H",
    "order %O created total=%F currency=EUR items=%n",
    "payment authorized for order %O amount=%F",
    "payment declined for order %O reason=insufficient_funds",
    "database query took %D ms: SELECT * FROM orders WHERE id = %N",
    "slow query detected duration_ms=%D table=inventory",
    "connection to db-primary:5432 refused, retrying in %n s",
    "timeout after %D ms calling %V",
    "retrying request to %V attempt=%n",
    "published event order.created id=%O to topic orders",
    "consumed %n messages from partition %n offset %N",
    "GC pause %n ms heap_used=%N",
    "feature flag checkout_v2 evaluated to true for %U",
    "sending email to %U template=order_confirmation",
    "rate limit exceeded for client %I",
    "NullPointerException in OrderMapper.toDto at line %n",
    "failed to parse payload: unexpected token at offset %N",
    "health check ok latency_ms=%n",
    "scheduled job reindex finished in %D ms",
    "inventory reserved sku=%H qty=%n warehouse=eu-%n",
    "shipment %O handed to carrier dhl tracking=%H",
};
#define NTPL (sizeof(templates) / sizeof(templates[0]))

static void hex(char *out, int n)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < n; i++)
        out[i] = hx[below(16)];
    out[n] = 0;
}

static void fill(const char *tpl, char *out, size_t cap, const char *user)
{
    size_t o = 0;
    for (const char *p = tpl; *p && o + 64 < cap; p++) {
        if (*p != '%') {
            out[o++] = *p;
            continue;
        }
        char tmp[64];
        switch (*++p) {
        case 'M': snprintf(tmp, sizeof(tmp), "%s", methods[skewed(4)]); break;
        case 'P': snprintf(tmp, sizeof(tmp), "%s", paths[skewed(10)]); break;
        case 'S': snprintf(tmp, sizeof(tmp), "%d", below(20) ? 200 : (below(2) ? 500 : 404)); break;
        case 'D': snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)(1 + skewed(3000))); break;
        case 'U': snprintf(tmp, sizeof(tmp), "%s", user); break;
        case 'I': snprintf(tmp, sizeof(tmp), "10.%u.%u.%u", (unsigned)below(256),
                           (unsigned)below(256), (unsigned)below(256)); break;
        case 'N': snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)below(10000000)); break;
        case 'n': snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)below(100)); break;
        case 'H': hex(tmp, 12); break;
        case 'O': snprintf(tmp, sizeof(tmp), "ord-"); hex(tmp + 4, 10); break;
        case 'F': snprintf(tmp, sizeof(tmp), "%llu.%02llu", (unsigned long long)below(500),
                           (unsigned long long)below(100)); break;
        case 'V': snprintf(tmp, sizeof(tmp), "%s", services[skewed(NSVC)]); break;
        default: tmp[0] = 0; break;
        }
        size_t l = strlen(tmp);
        memcpy(out + o, tmp, l);
        o += l;
    }
    out[o] = 0;
}

static const enum lh_level level_pick[] = {
    LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO,
    LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_INFO,
    LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_DEBUG, LH_LEVEL_DEBUG, LH_LEVEL_DEBUG, LH_LEVEL_WARN,
    LH_LEVEL_WARN, LH_LEVEL_ERROR,
};
static const char *const lvl_name[] = { "UNKNOWN", "TRACE", "DEBUG", "INFO", "WARN", "ERROR",
                                        "FATAL" };

struct gen {
    int64_t ts;
    char trace[33];
    int trace_left;
    const char *tsvc;
    uint8_t batch[16];
    uint32_t index;
    char user[32];
};

static void gen_event(struct gen *g, struct lh_arena *a, struct lh_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    g->ts += (int64_t)below(8) * 1000000;   /* ms clock, ~290 events/s: 2 GB covers ~3 h */
    ev->ts_ns = g->ts;
    ev->received_ns = g->ts + 1000000 + (int64_t)below(50000000);
    char id[64];
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        id[2 * i] = hx[g->batch[i] >> 4];
        id[2 * i + 1] = hx[g->batch[i] & 15];
    }
    snprintf(id + 32, sizeof(id) - 32, "-%u", g->index++);
    ev->id = lh_arena_strdup(a, id);
    ev->tenant = below(10) ? "acme" : "globex";
    if (g->trace_left <= 0) {
        hex(g->trace, 32);
        g->trace_left = 3 + (int)below(12);
        snprintf(g->user, sizeof(g->user), "usr_%llu", (unsigned long long)skewed(50000));
    }
    g->trace_left--;
    ev->service = services[skewed(NSVC)];
    ev->level = level_pick[below(20)];
    if (below(500) == 0)
        ev->level = LH_LEVEL_FATAL;
    char host[32];
    snprintf(host, sizeof(host), "%s-%llu", ev->service, (unsigned long long)below(10));
    ev->host = lh_arena_strdup(a, host);
    ev->trace_id = below(10) ? lh_arena_strdup(a, g->trace) : NULL;
    char span[17];
    hex(span, 16);
    ev->span_id = ev->trace_id ? lh_arena_strdup(a, span) : NULL;
    ev->user_id = below(3) ? lh_arena_strdup(a, g->user) : NULL;
    char msg[512];
    fill(templates[skewed(NTPL)], msg, sizeof(msg), g->user);
    ev->message = lh_arena_strdup(a, msg);
    ev->stream = below(5) ? "stdout" : "stderr";
    char cid[16];
    snprintf(cid, sizeof(cid), "c_%s", host + strlen(host) - 1);
    ev->container_id = lh_arena_strdup(a, cid);
    ev->k8s_namespace = "prod";
    char pod[64];
    snprintf(pod, sizeof(pod), "%s-7d9f8-%llu", ev->service, (unsigned long long)below(10));
    ev->k8s_pod = lh_arena_strdup(a, pod);
    ev->k8s_container = ev->service;
    ev->region = below(2) ? "eu-west-1" : "us-east-1";
    /* the original line */
    char raw[1024];
    time_t sec = (time_t)(g->ts / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char tsb[40];
    strftime(tsb, sizeof(tsb), "%Y-%m-%dT%H:%M:%S", &tm);
    if (below(3)) {
        snprintf(raw, sizeof(raw), "%s.%03dZ %s [%s] trace=%s span=%s user=%s - %s", tsb,
                 (int)(g->ts / 1000000 % 1000), lvl_name[ev->level], ev->service,
                 ev->trace_id ? ev->trace_id : "-", ev->span_id ? ev->span_id : "-",
                 ev->user_id ? ev->user_id : "-", msg);
    } else {
        snprintf(raw, sizeof(raw),
                 "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"msg\":\"%s\",\"trace_id\":\"%s\"}", tsb,
                 (int)(g->ts / 1000000 % 1000), lvl_name[ev->level], msg,
                 ev->trace_id ? ev->trace_id : "");
    }
    ev->raw = lh_arena_strdup(a, raw);
    size_t nm = 1 + below(3);
    ev->meta = lh_arena_alloc(a, nm * sizeof(*ev->meta));
    ev->meta[0].key = "http.method";
    ev->meta[0].value = methods[skewed(4)];
    if (nm > 1) {
        ev->meta[1].key = "duration_ms";
        char d[16];
        snprintf(d, sizeof(d), "%llu", (unsigned long long)skewed(2000));
        ev->meta[1].value = lh_arena_strdup(a, d);
    }
    if (nm > 2) {
        ev->meta[2].key = "app.version";
        ev->meta[2].value = below(4) ? "2.14.1" : "2.15.0-rc1";
    }
    ev->nmeta = nm;
}

static void json_event(const struct lh_event *ev, struct lh_buf *b)
{
    lh_buf_printf(b, "{\"timestamp\":%lld,\"id\":", (long long)ev->ts_ns);
    lh_buf_json_str(b, ev->id, strlen(ev->id));
    const char *keys[] = { "tenant", "service", "host", "trace_id", "span_id", "user_id",
                           "message", "stream", "container_id", "region", "raw" };
    const char *vals[] = { ev->tenant, ev->service, ev->host, ev->trace_id, ev->span_id,
                           ev->user_id, ev->message, ev->stream, ev->container_id, ev->region,
                           ev->raw };
    lh_buf_printf(b, ",\"level\":\"%s\"", lvl_name[ev->level]);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!vals[i])
            continue;
        lh_buf_printf(b, ",\"%s\":", keys[i]);
        lh_buf_json_str(b, vals[i], strlen(vals[i]));
    }
    lh_buf_printf(b, ",\"k8s\":{\"namespace\":\"%s\",\"pod\":\"%s\",\"container\":\"%s\"}",
                  ev->k8s_namespace, ev->k8s_pod, ev->k8s_container);
    lh_buf_puts(b, ",\"metadata\":{");
    for (size_t i = 0; i < ev->nmeta; i++) {
        if (i)
            lh_buf_putc(b, ',');
        lh_buf_json_str(b, ev->meta[i].key, strlen(ev->meta[i].key));
        lh_buf_putc(b, ':');
        lh_buf_json_str(b, ev->meta[i].value, strlen(ev->meta[i].value));
    }
    lh_buf_puts(b, "}}\n");
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double *ms, int n, double grep_ms, double zgrep_ms)
{
    qsort(ms, (size_t)n, sizeof(*ms), dcmp);
    double p50 = ms[n / 2], p99 = ms[(int)((n - 1) * 0.99)];
    printf("  %-34s p50 %8.2f ms  p99 %8.2f ms", name, p50, p99);
    if (grep_ms > 0)
        printf("   grep -c %8.1f ms (%.0fx)  zstdgrep -c %8.1f ms (%.0fx)", grep_ms,
               grep_ms / p50, zgrep_ms, zgrep_ms / p50);
    printf("\n");
}

static double time_cmd(const char *cmd)
{
    double t0 = now_s(CLOCK_MONOTONIC);
    int rc = system(cmd);
    (void)rc;
    return (now_s(CLOCK_MONOTONIC) - t0) * 1000.0;
}

static uint64_t du(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "du -sb '%s' | cut -f1", dir);
    FILE *p = popen(cmd, "r");
    unsigned long long v = 0;
    if (p) {
        if (fscanf(p, "%llu", &v) != 1)
            v = 0;
        pclose(p);
    }
    return v;
}

int main(int argc, char **argv)
{
    double mb = 200;
    const char *dir = "/tmp/store_bench";
    int nq = 30, block_kb = 0, zlevel = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "-seed") && i + 1 < argc)
            rs = strtoull(argv[++i], NULL, 10) | 1;
        else if (!strcmp(argv[i], "-q") && i + 1 < argc)
            nq = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            block_kb = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-z") && i + 1 < argc)
            zlevel = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-s MB] [-d DIR] [-seed N] [-q QUERIES] [-b BLOCK_KB] "
                            "[-z ZSTD_LEVEL]\n", argv[0]);
            return 2;
        }
    }
    char cmd[4096], sdir[1024], ndjson[1024];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    snprintf(ndjson, sizeof(ndjson), "%s/events.ndjson", dir);

    struct lh_store_config cfg = { 0 };
    cfg.dir = sdir;
    cfg.block_bytes = (uint64_t)block_kb * 1024;
    cfg.zstd_level = zlevel;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    FILE *out = fopen(ndjson, "w");
    if (!out)
        return 1;
    struct gen g = { .ts = 1728000000000000000ll + 12 * 3600000000000ll };
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_buf jb = LH_BUF_INIT;
    const size_t batch = 5000;
    struct lh_event *evs = calloc(batch, sizeof(*evs));
    uint64_t json_bytes = 0, raw_bytes = 0, nev = 0;
    double cpu = 0, wall = 0, gen_cpu = 0;
    /* sample trace ids and rare tokens for the queries */
    char (*traces)[33] = calloc((size_t)nq, 33);
    char (*rare)[16] = calloc((size_t)nq, 16);
    int ntr = 0, nrare = 0;
    int64_t t_first = 0, t_last = 0;
    while (json_bytes < mb * 1e6) {
        double g0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        lh_arena_reset(&a);
        for (int i = 0; i < 16; i++)
            g.batch[i] = (uint8_t)below(256);
        g.index = 0;
        lh_buf_reset(&jb);
        for (size_t i = 0; i < batch; i++) {
            gen_event(&g, &a, &evs[i]);
            json_event(&evs[i], &jb);
            raw_bytes += strlen(evs[i].raw) + 1;
            if (evs[i].trace_id && ntr < nq && below(2000) == 0)
                snprintf(traces[ntr++], 33, "%s", evs[i].trace_id);
            const char *o = strstr(evs[i].message, "ord-");
            if (o && nrare < nq && below(500) == 0)
                snprintf(rare[nrare++], 16, "%.14s", o);
        }
        if (!t_first)
            t_first = evs[0].ts_ns;
        t_last = evs[batch - 1].ts_ns;
        fwrite(jb.data, 1, jb.len, out);
        json_bytes += jb.len;
        nev += batch;
        double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
        gen_cpu += c0 - g0;
        if (lh_store_append(s, evs, batch, NULL, &err) < 0) {
            fprintf(stderr, "append: %s\n", err.msg);
            return 1;
        }
        cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        wall += now_s(CLOCK_MONOTONIC) - w0;
    }
    fclose(out);
    lh_store_close(s);
    uint64_t disk = du(sdir);
    printf("store_bench: %llu events, NDJSON %.1f MB, raw lines %.1f MB, %.1f min of logs\n",
           (unsigned long long)nev, json_bytes / 1e6, raw_bytes / 1e6,
           (double)(t_last - t_first) / 60e9);
    printf("  size on disk        %.1f MB = %.2f%% of NDJSON, %.2f%% of raw lines\n", disk / 1e6,
           100.0 * (double)disk / (double)json_bytes, 100.0 * (double)disk / (double)raw_bytes);
    printf("  ingest              %.1f MB/s NDJSON per CPU second (%.1f MB/s raw lines), "
           "%.1f MB/s wall, %.2f CPU s\n",
           json_bytes / 1e6 / cpu, raw_bytes / 1e6 / cpu, json_bytes / 1e6 / wall, cpu);
    snprintf(cmd, sizeof(cmd), "zstd -q -3 -f '%s' -o '%s.zst'", ndjson, ndjson);
    if (system(cmd) == 0) {
        char zf[1100];
        snprintf(zf, sizeof(zf), "%s.zst", ndjson);
        struct stat st;
        if (stat(zf, &st) == 0)
            printf("  baseline zstd -3    %.1f MB = %.2f%% of NDJSON (no index)\n",
                   st.st_size / 1e6, 100.0 * (double)st.st_size / (double)json_bytes);
    }

    /* queries on a reader handle (cold process state, warm page cache) */
    if (lh_store_open(&s, &cfg, LH_STORE_READ, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    double *ms = calloc((size_t)nq, sizeof(double));
    printf("queries (%d runs each, 2 scan threads):\n", nq);
    /* (a) trace id lookup over all data */
    uint64_t hits = 0;
    for (int i = 0; i < nq; i++) {
        struct lh_store_pred p = { .field = "trace_id", .op = LH_STORE_EQ,
                                   .value = traces[i % (ntr ? ntr : 1)] };
        struct lh_store_query q = { .tenant = "acme", .preds = &p, .npreds = 1, .limit = 100 };
        double t0 = now_s(CLOCK_MONOTONIC);
        struct lh_store_result *r;
        if (lh_store_search(s, &q, &r, &err) < 0) {
            fprintf(stderr, "search: %s\n", err.msg);
            return 1;
        }
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1000;
        hits += r->n;
        lh_store_result_free(r);
    }
    snprintf(cmd, sizeof(cmd), "grep -c '%s' '%s' > '%s/grep.out'", traces[0], ndjson, dir);
    double gms = time_cmd(cmd);
    snprintf(cmd, sizeof(cmd), "zstdgrep -c '%s' '%s.zst' > '%s/grep.out'", traces[0], ndjson,
             dir);
    double zms = time_cmd(cmd);
    report("(a) trace_id = X, all data", ms, nq, gms, zms);
    printf("      %.1f hits per lookup\n", (double)hits / nq);
    /* (b) rare term */
    hits = 0;
    for (int i = 0; i < nq; i++) {
        const char *t[] = { rare[i % (nrare ? nrare : 1)] };
        struct lh_store_query q = { .tenant = "acme", .terms = t, .nterms = 1, .limit = 100 };
        double t0 = now_s(CLOCK_MONOTONIC);
        struct lh_store_result *r;
        if (lh_store_search(s, &q, &r, &err) < 0)
            return 1;
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1000;
        hits += r->n;
        lh_store_result_free(r);
    }
    snprintf(cmd, sizeof(cmd), "grep -c -i -w '%s' '%s' > '%s/grep.out'", rare[0], ndjson, dir);
    gms = time_cmd(cmd);
    snprintf(cmd, sizeof(cmd), "zstdgrep -c -i -w '%s' '%s.zst' > '%s/grep.out'", rare[0],
             ndjson, dir);
    zms = time_cmd(cmd);
    report("(b) rare term (an order id)", ms, nq, gms, zms);
    printf("      %.1f hits per search\n", (double)hits / nq);
    /* (c) common term, limit 100 */
    static const char *const common[] = { "request", "payment", "cache", "order" };
    uint64_t total = 0;
    for (int i = 0; i < nq; i++) {
        const char *t[] = { common[i % 4] };
        struct lh_store_query q = { .tenant = "acme", .terms = t, .nterms = 1, .limit = 100 };
        double t0 = now_s(CLOCK_MONOTONIC);
        struct lh_store_result *r;
        if (lh_store_search(s, &q, &r, &err) < 0)
            return 1;
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1000;
        total += r->n;
        lh_store_result_free(r);
    }
    snprintf(cmd, sizeof(cmd), "grep -m 100 -i -w request '%s' > '%s/grep.out'", ndjson, dir);
    gms = time_cmd(cmd);
    report("(c) common term, limit 100", ms, nq, 0, 0);
    printf("      %.0f hits per page; grep -m 100 for comparison %.1f ms\n",
           (double)total / nq, gms);
    /* (c') the same with an exact total count */
    for (int i = 0; i < (nq < 5 ? nq : 5); i++) {
        const char *t[] = { common[i % 4] };
        struct lh_store_query q = { .tenant = "acme", .terms = t, .nterms = 1, .limit = 100,
                                    .want_total = 1 };
        double t0 = now_s(CLOCK_MONOTONIC);
        struct lh_store_result *r;
        if (lh_store_search(s, &q, &r, &err) < 0)
            return 1;
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1000;
        total = r->total;
        lh_store_result_free(r);
    }
    report("(c') common term + exact total", ms, nq < 5 ? nq : 5, 0, 0);
    printf("      total %llu\n", (unsigned long long)total);
    /* (d) 1-hour count by level */
    for (int i = 0; i < nq; i++) {
        int64_t span = t_last - t_first;
        const int64_t hour = 3600000000000ll;
        int64_t st = t_first + (span > hour ? (int64_t)below((uint64_t)(span - hour)) : 0);
        struct lh_store_query q = { .tenant = "acme", .start_ns = st, .end_ns = st + hour };
        double t0 = now_s(CLOCK_MONOTONIC);
        struct lh_store_top *t;
        if (lh_store_top(s, &q, "level", 0, &t, &err) < 0) {
            fprintf(stderr, "top: %s\n", err.msg);
            return 1;
        }
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1000;
        if (i == 0) {
            printf("      levels:");
            for (size_t k = 0; k < t->n; k++)
                printf(" %s=%llu", t->entries[k].value, (unsigned long long)t->entries[k].count);
            printf("\n");
        }
        lh_store_top_free(t);
    }
    report("(d) 1-hour count by level", ms, nq, 0, 0);
    struct lh_store_report *rep;
    double v0 = now_s(CLOCK_MONOTONIC);
    if (lh_store_inspect(s, 1, &rep, &err) == 0) {
        printf("verify: %zu problems, %llu blocks, %.1f s\n", rep->nproblems,
               (unsigned long long)rep->blocks, now_s(CLOCK_MONOTONIC) - v0);
        lh_store_report_free(rep);
    }
    lh_store_close(s);
    lh_arena_free(&a);
    lh_buf_free(&jb);
    free(evs);
    free(ms);
    free(traces);
    free(rare);
    (void)gen_cpu;
    return 0;
}
