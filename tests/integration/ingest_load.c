/* ingest_load.c - a load client for the ingest API, for integration tests
 * and benchmarks. Sends records carrying unique sequence numbers in batches
 * from several threads, gzip-compressed, each batch with its own UUID as
 * Idempotency-Key; retries a batch (same UUID, same bytes) on 429, 503 and
 * connection errors with backoff, so every record is accepted exactly once
 * from the client's point of view.
 *
 * usage: ingest_load --url URL [--token T] [--clients 8] [--records N]
 *                    [--batch 1000] [--size 500] [--start 0] [--hosts 16]
 *                    [--tenant-header T] [--no-gzip] [--max-seconds 600]
 * Prints one summary line: records, batches, retries by status, MB/s
 * (uncompressed), latency p50/p99; exits 0 when every record was accepted.
 * A line's text: "<seq-padded> seq=<n> host=<h> <filler words>". */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lh/buf.h"
#include "lh/codec.h"
#include "lh/time.h"
#include "lh/uuid.h"

static const char *url, *token = "dev-token";
static int clients = 8, batch = 1000, size = 500, hosts = 16, gzip_on = 1;
static long long records = 100000, start_seq = 0;
static double max_seconds = 600;
static atomic_llong next_batch, accepted, batches_ok, retries_429, retries_503, retries_conn,
    failures;
static double *latencies;
static atomic_llong nlat;

static const char *words[] = { "request", "timeout", "database", "cache", "user", "payment",
                               "retry", "connection", "upstream", "served", "order", "ok" };

static size_t sink(char *p, size_t s, size_t n, void *arg)
{
    struct lh_buf *b = arg;
    lh_buf_append(b, p, s * n);
    return s * n;
}

static void build_body(long long first, long long n, struct lh_buf *out)
{
    char line[4096];
    lh_buf_puts(out, "{\"shipper_metadata\":{\"host_id\":\"");
    lh_buf_printf(out, "load-host-%lld\",\"agent_version\":\"ingest_load\"},\"log_records\":[",
                  (first / batch) % hosts);
    for (long long i = 0; i < n; i++) {
        long long seq = first + i;
        int len = snprintf(line, sizeof(line), "%012lld seq=%lld level=%s", seq, seq,
                           seq % 10 == 0 ? "ERROR" : "INFO");
        unsigned r = (unsigned)(seq * 2654435761u);
        while (len < size - 12 && len < (int)sizeof(line) - 32) {
            r = r * 1103515245u + 12345u;
            len += snprintf(line + len, sizeof(line) - (size_t)len, " %s",
                            words[(r >> 16) % (sizeof(words) / sizeof(words[0]))]);
        }
        lh_buf_puts(out, i ? ",{\"raw_message\":" : "{\"raw_message\":");
        lh_buf_json_str(out, line, (size_t)len);
        lh_buf_puts(out, ",\"stream\":\"stdout\"}");
    }
    lh_buf_puts(out, "]}");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *client(void *arg)
{
    (void)arg;
    CURL *h = curl_easy_init();
    struct lh_buf body = LH_BUF_INIT, gz = LH_BUF_INIT, resp = LH_BUF_INIT;
    char auth[256], idem[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    double deadline = (double)lh_time_mono_ns() / 1e9 + max_seconds;
    for (;;) {
        long long b = atomic_fetch_add(&next_batch, 1);
        long long first = start_seq + b * batch;
        if (first >= start_seq + records)
            break;
        long long n = start_seq + records - first < batch ? start_seq + records - first : batch;
        lh_buf_reset(&body);
        build_body(first, n, &body);
        const char *data = body.data;
        size_t len = body.len;
        if (gzip_on) {
            lh_buf_reset(&gz);
            if (lh_codec_gzip(1, body.data, body.len, &gz, NULL) < 0) {
                atomic_fetch_add(&failures, 1);
                continue;
            }
            data = gz.data;
            len = gz.len;
        }
        struct lh_uuid u;
        char ustr[LH_UUID_STR_SIZE];
        lh_uuid_v4(&u, NULL);
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", lh_uuid_format(&u, ustr));
        struct curl_slist *hd = NULL;
        hd = curl_slist_append(hd, auth);
        hd = curl_slist_append(hd, idem);
        hd = curl_slist_append(hd, "Content-Type: application/json");
        hd = curl_slist_append(hd, "Expect:");
        if (gzip_on)
            hd = curl_slist_append(hd, "Content-Encoding: gzip");
        int delay_ms = 50;
        for (;;) {
            lh_buf_reset(&resp);
            curl_easy_reset(h);
            curl_easy_setopt(h, CURLOPT_URL, url);
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
            curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
            int64_t t0 = lh_time_mono_ns();
            CURLcode cc = curl_easy_perform(h);
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            if (cc == CURLE_OK && status == 200) {
                long long i = atomic_fetch_add(&nlat, 1);
                latencies[i] = (double)(lh_time_mono_ns() - t0) / 1e6;
                atomic_fetch_add(&accepted, n);
                atomic_fetch_add(&batches_ok, 1);
                break;
            }
            if (cc == CURLE_OK && status != 429 && status != 503) {
                fprintf(stderr, "ingest_load: batch at %lld: HTTP %ld: %s\n", first, status,
                        resp.data ? resp.data : "");
                atomic_fetch_add(&failures, 1);
                break;
            }
            atomic_fetch_add(cc != CURLE_OK ? &retries_conn
                             : status == 429 ? &retries_429 : &retries_503, 1);
            if ((double)lh_time_mono_ns() / 1e9 > deadline) {
                fprintf(stderr, "ingest_load: giving up on batch at %lld\n", first);
                atomic_fetch_add(&failures, 1);
                break;
            }
            usleep((useconds_t)(delay_ms * 1000 / 2 + rand() % (delay_ms * 500 + 1)));
            if (delay_ms < 2000)
                delay_ms *= 2;
        }
        curl_slist_free_all(hd);
    }
    lh_buf_free(&body);
    lh_buf_free(&gz);
    lh_buf_free(&resp);
    curl_easy_cleanup(h);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *tenant_header = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-gzip")) { gzip_on = 0; continue; }
        if (!v) { fprintf(stderr, "ingest_load: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--token")) token = v;
        else if (!strcmp(a, "--clients")) clients = atoi(v);
        else if (!strcmp(a, "--records")) records = atoll(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--size")) size = atoi(v);
        else if (!strcmp(a, "--start")) start_seq = atoll(v);
        else if (!strcmp(a, "--hosts")) hosts = atoi(v);
        else if (!strcmp(a, "--tenant-header")) tenant_header = v;
        else if (!strcmp(a, "--max-seconds")) max_seconds = atof(v);
        else { fprintf(stderr, "ingest_load: unknown option %s\n", a); return 2; }
    }
    (void)tenant_header;
    if (!url || clients < 1 || batch < 1 || records < 1 || hosts < 1) {
        fprintf(stderr, "usage: ingest_load --url URL [--token T] [--clients N] [--records N] "
                        "[--batch N] [--size B] [--start N] [--hosts N] [--no-gzip]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    latencies = calloc((size_t)(records / batch + 2), sizeof(double));
    pthread_t *t = calloc((size_t)clients, sizeof(*t));
    int64_t t0 = lh_time_mono_ns();
    for (int i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, client, NULL);
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    double secs = (double)(lh_time_mono_ns() - t0) / 1e9;
    long long nl = atomic_load(&nlat);
    qsort(latencies, (size_t)nl, sizeof(double), cmp_double);
    double mb = (double)atomic_load(&accepted) * size / 1e6;
    printf("ingest_load: %lld/%lld records accepted in %lld batches, %.2f s, %.1f MB/s, "
           "%.0f records/s, latency p50 %.1f ms p99 %.1f ms, retries 429=%lld 503=%lld "
           "conn=%lld, failed batches %lld\n",
           (long long)atomic_load(&accepted), records, (long long)atomic_load(&batches_ok), secs,
           mb / secs, (double)atomic_load(&accepted) / secs,
           nl ? latencies[nl / 2] : 0.0, nl ? latencies[(nl * 99) / 100] : 0.0,
           (long long)atomic_load(&retries_429), (long long)atomic_load(&retries_503),
           (long long)atomic_load(&retries_conn), (long long)atomic_load(&failures));
    free(t);
    free(latencies);
    curl_global_cleanup();
    return atomic_load(&accepted) == records && atomic_load(&failures) == 0 ? 0 : 1;
}
