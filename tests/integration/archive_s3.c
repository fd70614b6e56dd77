/* archive_s3.c - the S3 archive backend against a real S3 server (MinIO from
 * tests/services/s3): put, get, ranges, head, list with continuation,
 * concurrent use, multipart, SSE, client-side encryption, delete, errors.
 * Objects are checked back with a second, independent SigV4 client (curl's
 * own --aws-sigv4 signer) where the archive API hides a detail (multipart
 * ETag, SSE header).
 *
 * Environment: LOGHAUL_S3_ENDPOINT (default http://127.0.0.1:9000), bucket
 * loghaul, credentials loghaul / loghaul-secret. LOGHAUL_S3_SSE_ENDPOINT:
 * a second server with a KMS key (SSE-S3 needs one on MinIO); without it
 * the SSE check is reported as skipped. Prints "N passed, N failed". */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lh/archive.h"
#include "lh/archive_format.h"
#include "lh/err.h"
#include "lh/sigv4.h"

static int passed, failed;
static char prefix[128];

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) {                                                                   \
            passed++;                                                                 \
        } else {                                                                      \
            failed++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

static const char *endpoint(void)
{
    const char *e = getenv("LOGHAUL_S3_ENDPOINT");
    return e && *e ? e : "http://127.0.0.1:9000";
}

static void base_config(struct lh_archive_config *c, const char *ep)
{
    memset(c, 0, sizeof(*c));
    c->type = LH_ARCHIVE_S3;
    c->format = LH_ARCHIVE_PARQUET;
    c->zstd_level = 3;
    c->s3.endpoint = (char *)ep;
    c->s3.bucket = "loghaul";
    c->s3.region = "us-east-1";
    c->s3.access_key = "loghaul";
    c->s3.secret_key = "loghaul-secret";
    c->s3.addressing = LH_S3_PATH;
    c->s3.multipart_threshold = 64u << 20;
    c->s3.part_size = 16u << 20;
    c->s3.connect_timeout_ms = 2000;
    c->s3.timeout_ms = 60000;
    c->s3.retries = 3;
    c->s3.retry_base_ms = 50;
    c->s3.retry_max_ms = 500;
    c->s3.tls_verify = 1;
}

static struct lh_archive *open_or_die(const struct lh_archive_config *c)
{
    struct lh_archive *a;
    struct lh_err err = { 0 };
    if (lh_archive_open(&a, c, &err) < 0) {
        fprintf(stderr, "archive_s3: open: %s\n", err.msg);
        exit(1);
    }
    return a;
}

static void key_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s%s", prefix, name);
}

/* HEAD through curl's own SigV4 signer: returns the status and copies the
 * value of header `want` (lower-case name) into val. */
static size_t hdr_cb(char *p, size_t sz, size_t nm, void *ud)
{
    char **pair = ud;   /* [0] = wanted "name:", [1] = value out (256 bytes) */
    size_t n = sz * nm, wl = strlen(pair[0]);
    if (n > wl && strncasecmp(p, pair[0], wl) == 0) {
        const char *v = p + wl;
        while (*v == ' ')
            v++;
        size_t l = n - (size_t)(v - p);
        while (l && (v[l - 1] == '\r' || v[l - 1] == '\n'))
            l--;
        if (l > 255)
            l = 255;
        memcpy(pair[1], v, l);
        pair[1][l] = '\0';
    }
    return n;
}

static long curl_head(const char *ep, const char *key, const char *want, char *val)
{
    char url[2048], name[64];
    long status = 0;
    /* curl signs the path as given: hand it the RFC 3986 encoding S3 uses */
    struct lh_buf enc = LH_BUF_INIT;
    lh_sigv4_uri_encode(&enc, key, strlen(key), 1);
    snprintf(url, sizeof(url), "%s/loghaul/%s", ep, enc.data);
    lh_buf_free(&enc);
    snprintf(name, sizeof(name), "%s:", want);
    char *pair[2] = { name, val };
    val[0] = '\0';
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(h, CURLOPT_USERPWD, "loghaul:loghaul-secret");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, hdr_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, pair);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void test_basic(struct lh_archive *a)
{
    char k[512], missing[512];
    struct lh_buf b = LH_BUF_INIT;
    struct lh_err err = { 0 };
    uint64_t size = 0;
    const char *text = "0123456789abcdefghij";
    key_of(k, sizeof(k), "basic/a b+c=d&e\xc3\xa9.txt");   /* characters that need encoding */
    key_of(missing, sizeof(missing), "basic/missing");

    CHECK(lh_archive_put(a, k, text, 20, &err) == 0, "put: %s", err.msg);
    CHECK(lh_archive_get(a, k, 0, 0, &b, &err) == 0 && b.len == 20 &&
              memcmp(b.data, text, 20) == 0, "get: %s", err.msg);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 5, 4, &b, &err) == 0 && b.len == 4 &&
              memcmp(b.data, "5678", 4) == 0, "range: %s (%zu bytes)", err.msg, b.len);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 15, 0, &b, &err) == 0 && b.len == 5 &&
              memcmp(b.data, "fghij", 5) == 0, "range to the end: %s", err.msg);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 18, 100, &b, &err) == 0 && b.len == 2,
          "range clipped at the end: %s (%zu)", err.msg, b.len);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 20, 1, &b, &err) == LH_EINVAL && b.len == 0,
          "past the end: %s", err.msg);
    CHECK(lh_archive_head(a, k, &size, &err) == 0 && size == 20, "head: %s", err.msg);
    CHECK(lh_archive_get(a, missing, 0, 0, &b, &err) == LH_ENOTFOUND && b.len == 0,
          "get missing: %s", err.msg);
    CHECK(lh_archive_head(a, missing, &size, &err) == LH_ENOTFOUND, "head missing: %s",
          err.msg);
    /* replace, then an empty object */
    CHECK(lh_archive_put(a, k, "new", 3, &err) == 0, "overwrite: %s", err.msg);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 0, 0, &b, &err) == 0 && b.len == 3, "get new: %s", err.msg);
    CHECK(lh_archive_put(a, k, "", 0, &err) == 0, "empty put: %s", err.msg);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 0, 0, &b, &err) == 0 && b.len == 0, "empty get: %s", err.msg);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 0, 10, &b, &err) == 0 && b.len == 0, "empty range get: %s",
          err.msg);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete: %s", err.msg);
    CHECK(lh_archive_head(a, k, &size, &err) == LH_ENOTFOUND, "head after delete: %s", err.msg);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete again: %s", err.msg);
    lh_buf_free(&b);
}

struct putter {
    struct lh_archive *a;
    int from, to;
    int failures;
};

static void *put_range(void *arg)
{
    struct putter *p = arg;
    char k[512], name[64], body[32];
    struct lh_err err = { 0 };
    for (int i = p->from; i < p->to; i++) {
        snprintf(name, sizeof(name), "many/obj-%05d", i);
        key_of(k, sizeof(k), name);
        int n = snprintf(body, sizeof(body), "body %d", i);
        if (lh_archive_put(p->a, k, body, (size_t)n, &err) < 0) {
            if (p->failures++ < 3)
                fprintf(stderr, "put %s: %s\n", k, err.msg);
        }
    }
    return NULL;
}

static void test_list_and_threads(struct lh_archive *a)
{
    enum { N = 1050, T = 4 };
    pthread_t th[T];
    struct putter p[T];
    for (int t = 0; t < T; t++) {
        p[t] = (struct putter){ a, t * N / T, (t + 1) * N / T, 0 };
        pthread_create(&th[t], NULL, put_range, &p[t]);
    }
    int failures = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        failures += p[t].failures;
    }
    CHECK(failures == 0, "%d concurrent puts failed", failures);

    char pre[512], k[512];
    struct lh_archive_list l = { 0 };
    struct lh_err err = { 0 };
    key_of(pre, sizeof(pre), "many/");
    /* more than one page of 1000: the continuation token is followed */
    CHECK(lh_archive_list(a, pre, &l, &err) == 0, "list: %s", err.msg);
    CHECK(l.n == N, "listed %zu of %d", l.n, N);
    int order_ok = 1, sizes_ok = 1;
    for (size_t i = 0; i < l.n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "many/obj-%05zu", i);
        key_of(k, sizeof(k), name);
        order_ok &= strcmp(l.items[i].key, k) == 0;
        sizes_ok &= l.items[i].size == (uint64_t)snprintf(name, sizeof(name), "body %zu", i);
    }
    CHECK(order_ok, "list keys not as put, in order");
    CHECK(sizes_ok, "list sizes wrong");
    lh_archive_list_free(&l);
    /* a prefix that is not a "directory" */
    key_of(pre, sizeof(pre), "many/obj-0100");
    CHECK(lh_archive_list(a, pre, &l, &err) == 0 && l.n == 10, "prefix list: %zu %s", l.n,
          err.msg);
    lh_archive_list_free(&l);
    /* delete them all (concurrency again) */
    key_of(pre, sizeof(pre), "many/");
    CHECK(lh_archive_list(a, pre, &l, &err) == 0, "list: %s", err.msg);
    int del_fail = 0;
    for (size_t i = 0; i < l.n; i++)
        del_fail += lh_archive_delete(a, l.items[i].key, &err) < 0;
    CHECK(del_fail == 0, "%d deletes failed", del_fail);
    lh_archive_list_free(&l);
    CHECK(lh_archive_list(a, pre, &l, &err) == 0 && l.n == 0, "after delete: %zu left", l.n);
    lh_archive_list_free(&l);
}

static void test_multipart(void)
{
    struct lh_archive_config c;
    base_config(&c, endpoint());
    c.s3.multipart_threshold = 6u << 20;
    c.s3.part_size = 5u << 20;
    struct lh_archive *a = open_or_die(&c);
    size_t n = (12u << 20) + 12345;   /* three parts: 5 + 5 + 2.01 MiB */
    uint8_t *data = malloc(n);
    fill(data, n, 7);
    char k[512], val[256];
    struct lh_err err = { 0 };
    struct lh_buf b = LH_BUF_INIT;
    uint64_t size = 0;
    key_of(k, sizeof(k), "multipart/big.bin");
    CHECK(lh_archive_put(a, k, data, n, &err) == 0, "multipart put: %s", err.msg);
    CHECK(lh_archive_head(a, k, &size, &err) == 0 && size == n, "head: %" PRIu64 " %s", size,
          err.msg);
    CHECK(lh_archive_get(a, k, 0, 0, &b, &err) == 0 && b.len == n && memcmp(b.data, data, n) == 0,
          "multipart get back: %s", err.msg);
    lh_buf_reset(&b);
    /* a range across the part boundary at 5 MiB */
    CHECK(lh_archive_get(a, k, (5u << 20) - 10, 20, &b, &err) == 0 && b.len == 20 &&
              memcmp(b.data, data + (5u << 20) - 10, 20) == 0, "range across parts: %s",
          err.msg);
    /* curl's own signer sees a multipart ETag ("...-3") */
    CHECK(curl_head(endpoint(), k, "etag", val) == 200 && strstr(val, "-3\"") != NULL,
          "etag %s", val);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete: %s", err.msg);
    /* a small object under the threshold: one PUT, plain ETag */
    key_of(k, sizeof(k), "multipart/small.bin");
    CHECK(lh_archive_put(a, k, data, 1000, &err) == 0, "put: %s", err.msg);
    CHECK(curl_head(endpoint(), k, "etag", val) == 200 && strchr(val, '-') == NULL, "etag %s",
          val);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete: %s", err.msg);
    lh_buf_free(&b);
    free(data);
    lh_archive_close(a);
}

static void test_sse(void)
{
    const char *ep = getenv("LOGHAUL_S3_SSE_ENDPOINT");
    if (!ep || !*ep) {
        printf("skip SSE: LOGHAUL_S3_SSE_ENDPOINT not set (MinIO needs a KMS key for SSE-S3)\n");
        return;
    }
    struct lh_archive_config c;
    base_config(&c, ep);
    c.s3.sse = 1;
    c.s3.multipart_threshold = 6u << 20;
    c.s3.part_size = 5u << 20;
    struct lh_archive *a = open_or_die(&c);
    char k[512], val[256];
    struct lh_err err = { 0 };
    struct lh_buf b = LH_BUF_INIT;
    key_of(k, sizeof(k), "sse/one.bin");
    CHECK(lh_archive_put(a, k, "secret", 6, &err) == 0, "sse put: %s", err.msg);
    CHECK(curl_head(ep, k, "x-amz-server-side-encryption", val) == 200 &&
              strcmp(val, "AES256") == 0, "sse header \"%s\"", val);
    CHECK(lh_archive_get(a, k, 0, 0, &b, &err) == 0 && b.len == 6, "sse get: %s", err.msg);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete: %s", err.msg);
    /* multipart: SSE is requested when the upload is initiated */
    size_t n = (11u << 20);
    uint8_t *data = malloc(n);
    fill(data, n, 3);
    key_of(k, sizeof(k), "sse/big.bin");
    CHECK(lh_archive_put(a, k, data, n, &err) == 0, "sse multipart put: %s", err.msg);
    CHECK(curl_head(ep, k, "x-amz-server-side-encryption", val) == 200 &&
              strcmp(val, "AES256") == 0, "sse multipart header \"%s\"", val);
    lh_buf_reset(&b);
    CHECK(lh_archive_get(a, k, 0, 0, &b, &err) == 0 && b.len == n &&
              memcmp(b.data, data, n) == 0, "sse multipart get: %s", err.msg);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete: %s", err.msg);
    free(data);
    lh_buf_free(&b);
    lh_archive_close(a);
}

static void test_client_side_encryption_and_events(void)
{
    struct lh_archive_config c;
    base_config(&c, endpoint());
    c.encryption_key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    struct lh_archive *a = open_or_die(&c);
    struct lh_event evs[3];
    memset(evs, 0, sizeof(evs));
    for (int i = 0; i < 3; i++) {
        evs[i].ts_ns = 1779523574000000000ll + i;
        evs[i].service = "payment-service";
        evs[i].level = LH_LEVEL_ERROR;
        evs[i].message = "Database transaction timeout during capture.";
    }
    char key[LH_ARCHIVE_KEY_MAX], tenant[160];
    struct lh_err err = { 0 };
    snprintf(tenant, sizeof(tenant), "%.*s", (int)strlen(prefix) - 1, prefix);
    CHECK(lh_archive_write_events(a, tenant, evs[0].ts_ns, "eu-west-1", "web-1", evs, 3, key,
                                  &err) == 0, "write events: %s", err.msg);
    CHECK(strstr(key, "/year=2026/month=05/day=23/hour=08/eu-west-1_web-1_") != NULL &&
              strstr(key, ".parquet.enc") != NULL, "key %s", key);
    char val[256];
    CHECK(curl_head(endpoint(), key, "content-length", val) == 200, "curl head %s", key);
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n = 0;
    CHECK(lh_archive_read_events(a, key, &arena, &got, &n, &err) == 0 && n == 3 &&
              got[2].ts_ns == evs[2].ts_ns && got[2].level == LH_LEVEL_ERROR &&
              strcmp(got[2].message, evs[2].message) == 0, "read events: %s", err.msg);
    uint64_t size = 0, stored = strtoull(val, NULL, 10);
    CHECK(lh_archive_head(a, key, &size, &err) == 0 && size + LH_ARCHIVE_ENC_OVERHEAD == stored,
          "plaintext size %" PRIu64 " vs stored %" PRIu64, size, stored);
    /* the stored bytes are not Parquet: an independent reader sees no PAR1 */
    struct lh_archive_config pc;
    base_config(&pc, endpoint());
    struct lh_archive *plain = open_or_die(&pc);
    struct lh_buf b = LH_BUF_INIT;
    CHECK(lh_archive_get(plain, key, 0, 0, &b, &err) == LH_EINVAL,
          "reading .enc without a key must fail: %s", err.msg);
    lh_archive_close(plain);
    CHECK(lh_archive_delete(a, key, &err) == 0, "delete: %s", err.msg);
    lh_buf_free(&b);
    lh_arena_free(&arena);
    lh_archive_close(a);
}

static void test_time_range_read(struct lh_archive *a)
{
    enum { N = 1000 };
    static struct lh_event evs[N];
    int64_t t0 = 1779523574000000000ll;
    for (int i = 0; i < N; i++) {
        memset(&evs[i], 0, sizeof(evs[i]));
        evs[i].ts_ns = t0 + (int64_t)i * 1000000;
        evs[i].message = "Payment authorized";
    }
    struct lh_parquet_opts o = { .row_group_rows = 100 };
    struct lh_buf file = LH_BUF_INIT;
    struct lh_err err = { 0 };
    char k[512];
    key_of(k, sizeof(k), "range/x.parquet");
    CHECK(lh_parquet_write(evs, N, &o, &file, &err) == 0, "write: %s", err.msg);
    CHECK(lh_archive_put(a, k, file.data, file.len, &err) == 0, "put: %s", err.msg);
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n = 0;
    /* ranged GETs: the footer, then 3 of the 10 row groups */
    CHECK(lh_archive_read_events_range(a, k, t0 + 250 * 1000000ll, t0 + 449 * 1000000ll, &arena,
                                       &got, &n, &err) == 0 && n == 200 &&
              got[0].ts_ns == t0 + 250 * 1000000ll, "range read: %zu events %s", n, err.msg);
    CHECK(lh_archive_delete(a, k, &err) == 0, "delete: %s", err.msg);
    lh_arena_free(&arena);
    lh_buf_free(&file);
}

static void test_errors(void)
{
    struct lh_archive_config c;
    struct lh_err err = { 0 };
    char k[512];
    key_of(k, sizeof(k), "errors/x");
    base_config(&c, endpoint());
    c.s3.secret_key = "wrong-secret";
    struct lh_archive *a = open_or_die(&c);
    time_t t0 = time(NULL);
    CHECK(lh_archive_put(a, k, "x", 1, &err) == LH_ERR &&
              strstr(err.msg, "SignatureDoesNotMatch") != NULL, "wrong secret: %s", err.msg);
    CHECK(time(NULL) - t0 < 3, "a 403 must not be retried");
    lh_archive_close(a);

    base_config(&c, "http://127.0.0.1:1");   /* nothing listens there */
    c.s3.retries = 2;
    a = open_or_die(&c);
    int rc = lh_archive_put(a, k, "x", 1, &err);
    CHECK(rc == LH_EUNAVAIL, "unreachable: %d %s", rc, err.msg);
    lh_archive_close(a);

    base_config(&c, "ftp://127.0.0.1:9000");
    CHECK(lh_archive_open(&a, &c, &err) == LH_EINVAL, "bad endpoint accepted");
    base_config(&c, endpoint());
    c.s3.bucket = "Bad_Bucket";
    CHECK(lh_archive_open(&a, &c, &err) == LH_EINVAL, "bad bucket accepted");
}

int main(void)
{
    struct lh_archive_config c;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(prefix, sizeof(prefix), "itest-%ld-%d/", (long)time(NULL), (int)getpid());
    base_config(&c, endpoint());
    struct lh_archive *a = open_or_die(&c);
    struct lh_archive_list l = { 0 };
    struct lh_err err = { 0 };
    if (lh_archive_list(a, "itest-none/", &l, &err) < 0) {
        fprintf(stderr, "archive_s3: S3 at %s not usable: %s\n"
                        "(start it with tests/services/s3 start)\n", endpoint(), err.msg);
        return 1;
    }
    lh_archive_list_free(&l);
    test_basic(a);
    test_list_and_threads(a);
    test_multipart();
    test_sse();
    test_client_side_encryption_and_events();
    test_time_range_read(a);
    test_errors();
    /* nothing of this run is left behind */
    CHECK(lh_archive_list(a, prefix, &l, &err) == 0 && l.n == 0, "%zu objects left", l.n);
    lh_archive_list_free(&l);
    lh_archive_close(a);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
