/* archive_write.c - writes generated events as archive objects, for the
 * independent readers (archive_readers.py) and for size measurements.
 *
 *   archive_write [opts] N OUT.parquet EXPECTED.jsonl
 *       N generated events (realistic lines mixed with edge cases: unicode,
 *       empty strings, absent fields, many and null metadata values) as one
 *       Parquet file, and the same events as JSON lines with exact values:
 *       {"timestamp_ns":..., "id":..., ..., "custom_metadata":[[k,v],...]|null}
 *   archive_write --ratio N
 *       N realistic events only; prints raw bytes and the Parquet and
 *       NDJSON+zstd sizes with their ratios to the raw bytes.
 *   archive_write --dump FILE
 *       reads FILE (.parquet or .ndjson.zst) with our reader and prints the
 *       events in the EXPECTED.jsonl form (to check other writers' files).
 * opts: --seed S, --realistic (no edge cases), --micros (TIMESTAMP_MICROS), --rows-per-group R,
 *       --page-bytes B, --plain (no dictionary), --level L (zstd, default 6 as the
 *       archive's zstd_level). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lh/archive_format.h"
#include "lh/arena.h"
#include "lh/buf.h"
#include "lh/err.h"
#include "lh/event.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned rn(unsigned n) { return (unsigned)(rnd() % n); }

static const char *pick(const char *const *a, size_t n) { return a[rn((unsigned)n)]; }
#define PICK(a) pick(a, sizeof(a) / sizeof(a[0]))

static const char *const services[] = {
    "payment-service", "checkout", "auth-service", "inventory", "search-api", "gateway",
    "user-profile", "notification", "billing-worker", "recommendation", "cart", "shipping",
};
static const char *const hosts[] = {
    "web-01", "web-02", "web-03", "web-04", "api-01", "api-02", "api-03", "worker-01",
    "worker-02", "worker-03", "db-proxy-01", "db-proxy-02", "edge-01", "edge-02", "batch-01",
    "batch-02", "ip-10-0-3-17", "ip-10-0-3-18", "ip-10-0-7-201", "ip-10-0-9-44",
};
static const char *const regions[] = { "eu-west-1", "us-east-1", "ap-south-1" };
static const char *const tenants[] = { "acme", "globex", "initech" };
/* Message templates; %d, %s and %x are filled with varied values. */
static const char *const templates[] = {
    "Database transaction timeout during capture.",
    "Payment authorized for order ord_%d amount %d.%02d EUR",
    "User login succeeded via %s",
    "User login failed: invalid password (attempt %d)",
    "GET /api/v1/products/%d 200 %dms",
    "POST /api/v1/cart/items 201 %dms",
    "GET /api/v1/search?q=%s 200 %dms",
    "Cache miss for key product:%d, loading from database",
    "Connection pool exhausted (active=%d, idle=0, waiting=%d)",
    "Retrying request to inventory-service (attempt %d of 5)",
    "Order ord_%d shipped with carrier %s, tracking %x",
    "Email notification queued for user usr_%d",
    "Slow query detected: SELECT * FROM orders WHERE customer_id = %d took %dms",
    "Health check passed",
    "Circuit breaker opened for downstream %s",
    "Scheduled job reconcile-ledger finished in %dms, %d rows updated",
    "NullPointerException in CheckoutController.submit at line %d",
    "Rate limit exceeded for API key key_%x",
    "Token refreshed for session sess_%x",
    "Disk usage at %d%% on /var/lib/data",
};
static const char *const words[] = { "google", "saml", "password", "github", "laptop",
                                     "shoes", "dhl", "ups", "fedex", "recommendation" };

static int fill_template(char *out, size_t size, const char *t)
{
    size_t o = 0;
    for (const char *p = t; *p && o + 24 < size; p++) {
        if (*p != '%') {
            out[o++] = *p;
            continue;
        }
        p++;
        if (*p == '0' && p[1] == '2' && p[2] == 'd') {
            o += (size_t)snprintf(out + o, size - o, "%02u", rn(100));
            p += 2;
        } else if (*p == 'd') {
            /* counts, latencies and ids: mostly small, sometimes large */
            unsigned mag = rn(8);
            o += (size_t)snprintf(out + o, size - o, "%u",
                                  rn(mag < 3 ? 10 : mag < 6 ? 300 : mag < 7 ? 5000 : 1000000));
        } else if (*p == 's') {
            o += (size_t)snprintf(out + o, size - o, "%s", PICK(words));
        } else if (*p == 'x') {
            o += (size_t)snprintf(out + o, size - o, "%08x", (unsigned)rnd());
        } else if (*p == '%') {
            out[o++] = '%';
        }
    }
    out[o] = '\0';
    return (int)o;
}

static enum lh_level pick_level(void)
{
    unsigned r = rn(100);
    return r < 60 ? LH_LEVEL_INFO : r < 80 ? LH_LEVEL_DEBUG : r < 90 ? LH_LEVEL_WARN
         : r < 98 ? LH_LEVEL_ERROR : r < 99 ? LH_LEVEL_TRACE : LH_LEVEL_FATAL;
}

static const char *level_str(enum lh_level l)
{
    static const char *const n[] = { "UNKNOWN", "TRACE", "DEBUG", "INFO", "WARN", "ERROR",
                                     "FATAL" };
    return (unsigned)l < 7 ? n[l] : "UNKNOWN";
}

/* Requests in flight: most lines belong to one (same trace and user id,
 * a few lines each, interleaved with other requests), the rest are
 * background lines without trace or user. */
struct request {
    char trace[16];
    char user[16];
    int left;                  /* lines still to come */
};
static struct request reqs[64];

/* A realistic event: a line like
 * "2026-05-23 08:06:14.123 [payment-service] ERROR tr_abc123 usr_456 - message"
 * parsed into its fields (time with the line's millisecond precision), the
 * line kept as raw. Batches of 500 lines share an agent batch UUID (the id
 * prefix), as the agent ships them. */
static void gen_realistic(struct lh_arena *a, struct lh_event *ev, size_t i, int64_t *clock)
{
    static uint64_t batch_hi, batch_lo;
    char msg[512], line[1024], buf[64];
    if (i % 500 == 0) {
        batch_hi = rnd();
        batch_lo = rnd();
    }
    *clock += (int64_t)rn(8) * 1000000;   /* a few lines per millisecond */
    memset(ev, 0, sizeof(*ev));
    ev->ts_ns = *clock;
    snprintf(buf, sizeof(buf), "%016" PRIx64 "%016" PRIx64 "-%zu", batch_hi, batch_lo, i % 500);
    ev->id = lh_arena_strdup(a, buf);
    ev->tenant = tenants[0];
    /* each service runs on three of the hosts */
    unsigned svc = rn(sizeof(services) / sizeof(services[0]));
    ev->service = services[svc];
    ev->level = pick_level();
    ev->host = hosts[(svc * 3 + rn(3)) % (sizeof(hosts) / sizeof(hosts[0]))];
    ev->region = regions[0];
    if (rn(5) != 0) {
        struct request *r = &reqs[rn(sizeof(reqs) / sizeof(reqs[0]))];
        if (r->left <= 0) {
            snprintf(r->trace, sizeof(r->trace), "tr_%06x", (unsigned)(rnd() & 0xffffff));
            snprintf(r->user, sizeof(r->user), "usr_%u", rn(5000));
            r->left = 2 + (int)rn(10);
        }
        r->left--;
        ev->trace_id = lh_arena_strdup(a, r->trace);
        ev->user_id = lh_arena_strdup(a, r->user);
    }
    fill_template(msg, sizeof(msg), PICK(templates));
    ev->message = lh_arena_strdup(a, msg);
    time_t s = (time_t)(ev->ts_ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(line, sizeof(line), "%s.%03d [%s] %s %s %s - %s", ts,
             (int)(ev->ts_ns / 1000000 % 1000), ev->service, level_str(ev->level),
             ev->trace_id ? ev->trace_id : "-", ev->user_id ? ev->user_id : "-", msg);
    ev->raw = lh_arena_strdup(a, line);
    ev->stream = "stdout";
    ev->file = "/var/log/app/app.log";
}

static const char *const odd_strings[] = {
    "",
    "caf\xc3\xa9 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x9a\x80",
    "quote \" backslash \\ slash / tab \t newline \n cr \r",
    "control \x01\x02\x1f bytes",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80",
    "   spaces around   ",
    "{\"json\": [1, 2, 3]}",
    "null",
};

/* An edge-case event: fields absent, empty or odd, many metadata keys. */
static void gen_odd(struct lh_arena *a, struct lh_event *ev, size_t i, int64_t *clock)
{
    char buf[64];
    gen_realistic(a, ev, i, clock);
    const char **f[] = { &ev->id, &ev->tenant, &ev->service, &ev->host, &ev->trace_id,
                         &ev->span_id, &ev->user_id, &ev->message, &ev->raw, &ev->stream,
                         &ev->container_id, &ev->k8s_namespace, &ev->k8s_pod,
                         &ev->k8s_container, &ev->region, &ev->file };
    for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
        unsigned r = rn(6);
        if (r == 0)
            *f[k] = NULL;
        else if (r == 1)
            *f[k] = PICK(odd_strings);
    }
    if (rn(4) == 0)
        ev->level = LH_LEVEL_UNKNOWN;
    if (rn(8) == 0) {   /* a long message */
        size_t n = 2000 + rn(8000);
        char *m = lh_arena_alloc(a, n + 1);
        for (size_t k = 0; k < n; k++)
            m[k] = (char)('a' + rn(26));
        m[n] = '\0';
        ev->message = m;
    }
    if (rn(10) == 0)
        ev->ts_ns = -(int64_t)(rnd() % 1000000000000000000ull);   /* before 1970 */
    size_t nm = rn(3) == 0 ? 0 : rn(4) == 0 ? 20 + rn(30) : 1 + rn(4);
    if (nm) {
        ev->meta = lh_arena_alloc(a, nm * sizeof(*ev->meta));
        for (size_t k = 0; k < nm; k++) {
            snprintf(buf, sizeof(buf), k % 3 == 0 ? "key_%zu" : "k\xc3\xa9y.%zu", k);
            /* keys are unique in an event (a map); one may be empty */
            ev->meta[k].key = lh_arena_strdup(a, k == 1 && rn(3) == 0 ? "" : buf);
            unsigned r = rn(8);
            ev->meta[k].value = r == 0 ? NULL : r == 1 ? PICK(odd_strings)
                              : lh_arena_strdup(a, buf);
        }
        ev->nmeta = nm;
    }
}

static void json_field(struct lh_buf *b, const char *name, const char *v)
{
    lh_buf_printf(b, ",\"%s\":", name);
    if (v)
        lh_buf_json_str(b, v, strlen(v));
    else
        lh_buf_puts(b, "null");
}

static void expected_line(struct lh_buf *b, const struct lh_event *ev)
{
    lh_buf_printf(b, "{\"timestamp_ns\":%" PRId64, ev->ts_ns);
    json_field(b, "id", ev->id);
    json_field(b, "tenant", ev->tenant);
    json_field(b, "service", ev->service);
    json_field(b, "level", level_str(ev->level));
    json_field(b, "host", ev->host);
    json_field(b, "trace_id", ev->trace_id);
    json_field(b, "span_id", ev->span_id);
    json_field(b, "user_id", ev->user_id);
    json_field(b, "message", ev->message);
    json_field(b, "raw", ev->raw);
    json_field(b, "stream", ev->stream);
    json_field(b, "container_id", ev->container_id);
    json_field(b, "k8s_namespace", ev->k8s_namespace);
    json_field(b, "k8s_pod", ev->k8s_pod);
    json_field(b, "k8s_container", ev->k8s_container);
    json_field(b, "region", ev->region);
    json_field(b, "file", ev->file);
    lh_buf_puts(b, ",\"custom_metadata\":");
    if (!ev->nmeta) {
        lh_buf_puts(b, "null");
    } else {
        lh_buf_putc(b, '[');
        for (size_t k = 0; k < ev->nmeta; k++) {
            lh_buf_puts(b, k ? ",[" : "[");
            lh_buf_json_str(b, ev->meta[k].key, strlen(ev->meta[k].key));
            lh_buf_putc(b, ',');
            if (ev->meta[k].value)
                lh_buf_json_str(b, ev->meta[k].value, strlen(ev->meta[k].value));
            else
                lh_buf_puts(b, "null");
            lh_buf_putc(b, ']');
        }
        lh_buf_putc(b, ']');
    }
    lh_buf_puts(b, "}\n");
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "archive_write: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int read_file(const char *path, struct lh_buf *b)
{
    FILE *f = fopen(path, "rb");
    char tmp[65536];
    size_t n;
    if (!f) {
        fprintf(stderr, "archive_write: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        lh_buf_append(b, tmp, n);
    fclose(f);
    return 0;
}

static int dump(const char *path)
{
    struct lh_buf in = LH_BUF_INIT, out = LH_BUF_INIT;
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_err err = { 0 };
    struct lh_event *evs;
    size_t n;
    enum lh_archive_format fmt;
    int rc = 1;
    if (read_file(path, &in) < 0)
        goto out;
    if (lh_archive_format_of_key(path, &fmt) < 0)
        fmt = LH_ARCHIVE_PARQUET;
    if (lh_archive_format_read(fmt, in.data, in.len, &a, &evs, &n, &err) < 0) {
        fprintf(stderr, "archive_write: %s: %s\n", path, err.msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        lh_buf_reset(&out);
        expected_line(&out, &evs[i]);
        fwrite(out.data, 1, out.len, stdout);
    }
    rc = 0;
out:
    lh_buf_free(&in);
    lh_buf_free(&out);
    lh_arena_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    struct lh_parquet_opts o = { 0 };
    int ratio = 0, realistic = 0, level = 6, i = 1;   /* 6: the archive default */
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            rng = strtoull(argv[++i], NULL, 10) * 2654435761u + 1;
        else if (strcmp(argv[i], "--micros") == 0)
            o.ts_micros = 1;
        else if (strcmp(argv[i], "--plain") == 0)
            o.no_dictionary = 1;
        else if (strcmp(argv[i], "--rows-per-group") == 0 && i + 1 < argc)
            o.row_group_rows = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--page-bytes") == 0 && i + 1 < argc)
            o.page_bytes = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc)
            level = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ratio") == 0)
            ratio = 1;
        else if (strcmp(argv[i], "--realistic") == 0)
            realistic = 1;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            return dump(argv[i + 1]);
        else
            break;
    }
    if (argc - i != (ratio ? 1 : 3)) {
        fprintf(stderr, "usage: archive_write [--seed S] [--realistic] [--micros] [--plain] "
                        "[--rows-per-group R] [--page-bytes B] [--level L] "
                        "N OUT.parquet EXPECTED.jsonl\n"
                        "       archive_write [--level L] --ratio N\n"
                        "       archive_write --dump FILE\n");
        return 2;
    }
    o.zstd_level = level;
    size_t n = strtoul(argv[i], NULL, 10);
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *evs = calloc(n ? n : 1, sizeof(*evs));
    struct lh_buf pq = LH_BUF_INIT, nd = LH_BUF_INIT, exp = LH_BUF_INIT;
    struct lh_err err = { 0 };
    int64_t clock = 1779523574000000000ll;   /* 2026-05-23 08:06:14 UTC */
    size_t raw_bytes = 0;
    int rc = 1;
    for (size_t k = 0; k < n; k++) {
        if (!ratio && !realistic && rn(5) == 0)
            gen_odd(&a, &evs[k], k, &clock);
        else
            gen_realistic(&a, &evs[k], k, &clock);
        raw_bytes += evs[k].raw ? strlen(evs[k].raw) + 1 : 0;
    }
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (lh_parquet_write(evs, n, &o, &pq, &err) < 0) {
        fprintf(stderr, "archive_write: parquet: %s\n", err.msg);
        goto out;
    }
    if (ratio) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (lh_ndjson_write(evs, n, level, &nd, &err) < 0) {
            fprintf(stderr, "archive_write: ndjson: %s\n", err.msg);
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &t2);
        double s1 = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        double s2 = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
        printf("events %zu\nraw_bytes %zu\n", n, raw_bytes);
        printf("parquet_bytes %zu ratio %.4f write_s %.3f (%.0f MB/s of raw)\n", pq.len,
               (double)pq.len / (double)raw_bytes, s1, (double)raw_bytes / s1 / 1e6);
        printf("ndjson_zst_bytes %zu ratio %.4f write_s %.3f (%.0f MB/s of raw)\n", nd.len,
               (double)nd.len / (double)raw_bytes, s2, (double)raw_bytes / s2 / 1e6);
        rc = 0;
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        expected_line(&exp, &evs[k]);
    if (write_file(argv[i + 1], pq.data, pq.len) < 0 ||
        write_file(argv[i + 2], exp.data ? exp.data : "", exp.len) < 0)
        goto out;
    rc = 0;
out:
    free(evs);
    lh_arena_free(&a);
    lh_buf_free(&pq);
    lh_buf_free(&nd);
    lh_buf_free(&exp);
    return rc;
}
