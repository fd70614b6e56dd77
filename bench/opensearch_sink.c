/* opensearch_sink.c - driver of bench/opensearch_sink.sh: the OpenSearch
 * sink's bulk throughput and CPU, and the same data as pre-built bulk
 * bodies for a plain loader (curl) to post.
 *
 *   opensearch_sink gen  --count N --prefix P --out DIR [--bulk-bytes B]
 *       writes DIR/NNNNN.ndjson: the bulk bodies the sink would build for the
 *       generated events (same builder, same cut), for index prefix P, and
 *       installs the sink's index template for P (so both runs index into
 *       identical mappings).
 *   opensearch_sink sink --count N --prefix P [--batch K] [--concurrency C]
 *                        [--gzip] [--url URL]
 *       writes the same events through the sink in batches of K and prints
 *       one line: events, seconds, events/s, MB/s (bulk bytes), CPU seconds
 *       (getrusage user+sys of this process during the writes) and CPU
 *       share of one core.
 *
 * Events are generated deterministically (seeded): ~450-byte app-like lines
 * with structured fields, 3 tenants x 2 days. Built by the script:
 *   cc -O2 ... bench/opensearch_sink.c build/lib/libindexer.a build/lib/libloghaul.a ... */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../indexer/sink_opensearch.h"
#include "lh/arena.h"
#include "lh/log.h"
#include "lh/time.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static const char *const tenants[] = { "acme", "globex", "initech" };
static const char *const services[] = { "payment-service", "auth", "search-api", "cart",
                                        "inventory", "gateway" };
static const char *const words[] = {
    "database", "transaction", "timeout", "during", "capture", "user", "login", "failed",
    "request", "completed", "in", "ms", "cache", "miss", "for", "key", "retrying", "upstream",
    "connection", "reset", "by", "peer", "order", "created", "payment", "authorized",
    "garbage", "collection", "cycle", "session", "expired", "rate", "limit", "exceeded",
};

static void gen(struct lh_arena *a, size_t i, struct lh_event *ev)
{
    char b[640];
    static const int64_t base = 1779523200LL * LH_NS_PER_SEC;   /* 2026-05-23 08:00Z */
    memset(ev, 0, sizeof(*ev));
    ev->ts_ns = base + (int64_t)(rng() % (2 * 86400ull * LH_NS_PER_SEC));
    snprintf(b, sizeof(b), "%016llx%016llx-%zu", (unsigned long long)rng(),
             (unsigned long long)rng(), i % 5000);
    ev->id = lh_arena_strdup(a, b);
    ev->tenant = tenants[i % 3];
    ev->service = services[rng() % 6];
    ev->level = (enum lh_level)(1 + rng() % 6);
    snprintf(b, sizeof(b), "i-%08x", (unsigned)(rng() % 64));
    ev->host = lh_arena_strdup(a, b);
    snprintf(b, sizeof(b), "tr_%016llx", (unsigned long long)rng());
    ev->trace_id = lh_arena_strdup(a, b);
    snprintf(b, sizeof(b), "sp_%08x", (unsigned)rng());
    ev->span_id = lh_arena_strdup(a, b);
    if (rng() % 2) {
        snprintf(b, sizeof(b), "usr_%u", (unsigned)(rng() % 100000));
        ev->user_id = lh_arena_strdup(a, b);
    }
    size_t n = 0, nw = 12 + rng() % 20;
    for (size_t w = 0; w < nw; w++)
        n += (size_t)snprintf(b + n, sizeof(b) - n, "%s%s", w ? " " : "",
                              words[rng() % (sizeof(words) / sizeof(words[0]))]);
    ev->message = lh_arena_strdup(a, b);
    char raw[800];
    snprintf(raw, sizeof(raw), "2026-05-23 08:06:14 [%s] %s %s - %s", ev->service,
             lh_level_name(ev->level), ev->trace_id, ev->message);
    ev->raw = lh_arena_strdup(a, raw);
    ev->stream = rng() % 4 ? "stdout" : "stderr";
    ev->container_id = "c_pay_88f9";
    ev->k8s_namespace = "prod";
    ev->k8s_pod = "payment-7d9f8c-x2x";
    ev->k8s_container = "app";
    ev->region = "us-east-1";
    ev->file = "/var/log/containers/payment.log";
    ev->nmeta = 2;
    ev->meta = lh_arena_calloc(a, 2 * sizeof(*ev->meta));
    ev->meta[0].key = "http.status";
    ev->meta[0].value = rng() % 10 ? "200" : "503";
    snprintf(b, sizeof(b), "%u", (unsigned)(rng() % 5000));
    ev->meta[1].key = "duration_ms";
    ev->meta[1].value = lh_arena_strdup(a, b);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static struct lh_sink *make_sink(const char *url, const char *prefix, long conc, int gzip,
                                 uint64_t bulk_bytes)
{
    struct lh_sink_opensearch_config cfg;
    struct lh_err err = { 0 };
    char yaml[512];
    memset(&cfg, 0, sizeof(cfg));
    snprintf(yaml, sizeof(yaml),
             "urls: [%s]\nindex_prefix: %s\nconcurrency: %ld\ngzip: %s\n"
             "bulk_max_bytes: %llu\ntemplate: {name: %s-logs}\n",
             url, prefix, conc, gzip ? "true" : "false", (unsigned long long)bulk_bytes, prefix);
    struct lh_sink *s = NULL;
    if (lh_conf_load_string("bench", yaml, strlen(yaml), lh_sink_opensearch_opts, &cfg, &err) ||
        lh_sink_opensearch_create(&cfg, "bench", NULL, &s, &err)) {
        fprintf(stderr, "sink: %s\n", err.msg);
        exit(1);
    }
    lh_conf_free(lh_sink_opensearch_opts, &cfg);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s gen|sink [options] (see the source)\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    size_t count = 200000, batch = 20000;
    long conc = 2;
    int gzip = 0;
    uint64_t bulk_bytes = 5u << 20;
    const char *prefix = "bench", *out = NULL, *url = "http://127.0.0.1:9200";
    static const struct option lo[] = {
        { "count", required_argument, 0, 'n' }, { "batch", required_argument, 0, 'b' },
        { "concurrency", required_argument, 0, 'c' }, { "gzip", no_argument, 0, 'z' },
        { "prefix", required_argument, 0, 'p' }, { "out", required_argument, 0, 'o' },
        { "url", required_argument, 0, 'u' }, { "bulk-bytes", required_argument, 0, 'B' },
        { 0, 0, 0, 0 } };
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'n': count = strtoul(optarg, NULL, 10); break;
        case 'b': batch = strtoul(optarg, NULL, 10); break;
        case 'c': conc = strtol(optarg, NULL, 10); break;
        case 'z': gzip = 1; break;
        case 'p': prefix = optarg; break;
        case 'o': out = optarg; break;
        case 'u': url = optarg; break;
        case 'B': bulk_bytes = strtoull(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    lh_log_set_level(LH_LOG_WARN);
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *evs = calloc(count, sizeof(*evs));
    for (size_t i = 0; i < count; i++)
        gen(&a, i, &evs[i]);
    struct lh_err err = { 0 };

    if (strcmp(mode, "gen") == 0) {
        if (!out)
            return 2;
        mkdir(out, 0755);
        struct lh_sink *s = make_sink(url, prefix, conc, 0, bulk_bytes);
        if (lh_sink_opensearch_setup(s, &err)) {
            fprintf(stderr, "template: %s\n", err.msg);
            return 1;
        }
        lh_sink_destroy(s);
        struct lh_buf b = LH_BUF_INIT;
        size_t *off = calloc(count + 1, sizeof(*off));
        for (size_t i = 0; i < count; i++) {
            off[i] = b.len;
            lh_os_bulk_item(&b, prefix, &evs[i], 1);
        }
        off[count] = b.len;
        size_t nfiles = 0;
        for (size_t i = 0; i < count;) {
            size_t e = lh_os_bulk_cut(off, NULL, NULL, i, count, bulk_bytes, bulk_bytes);
            char path[4096];
            snprintf(path, sizeof(path), "%s/%05zu.ndjson", out, nfiles++);
            FILE *f = fopen(path, "w");
            if (!f || fwrite(b.data + off[i], 1, off[e] - off[i], f) != off[e] - off[i] ||
                fclose(f) != 0) {
                perror(path);
                return 1;
            }
            i = e;
        }
        printf("%zu events, %zu bytes, %zu bodies\n", count, b.len, nfiles);
        free(off);
        lh_buf_free(&b);
    } else {
        struct lh_sink *s = make_sink(url, prefix, conc, gzip, bulk_bytes);
        if (lh_sink_opensearch_setup(s, &err)) {
            fprintf(stderr, "setup: %s\n", err.msg);
            return 1;
        }
        struct lh_buf tmp = LH_BUF_INIT;
        size_t bytes = 0;
        for (size_t i = 0; i < count; i++) {
            lh_buf_reset(&tmp);
            lh_os_bulk_item(&tmp, prefix, &evs[i], 1);
            bytes += tmp.len;
        }
        lh_buf_free(&tmp);
        double c0 = cpu_s();
        int64_t t0 = lh_time_mono_ns();
        uint64_t written = 0;
        for (size_t i = 0; i < count; i += batch) {
            size_t k = count - i < batch ? count - i : batch;
            struct lh_sink_report rep = { 0 };
            int rc = lh_sink_write(s, evs + i, k, &rep, &err);
            if (rc || rep.nrejects) {
                fprintf(stderr, "write: %d %s (%zu rejects)\n", rc, err.msg, rep.nrejects);
                return 1;
            }
            written += rep.written;
            lh_sink_report_free(&rep);
        }
        double secs = (double)(lh_time_mono_ns() - t0) / 1e9, cpu = cpu_s() - c0;
        printf("events %zu written %llu seconds %.3f events/s %.0f MB/s %.2f cpu_s %.3f "
               "cpu_share %.3f\n", count, (unsigned long long)written, secs,
               (double)count / secs, (double)bytes / secs / 1e6, cpu, cpu / secs);
        lh_sink_destroy(s);
    }
    lh_arena_free(&a);
    free(evs);
    return 0;
}
