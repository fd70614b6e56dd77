/* archive_s3.c - the archive in an S3 bucket (AWS or any S3-compatible
 * server) over libcurl, every request signed with SigV4 (lh/sigv4.h).
 *
 * PUT with x-amz-content-sha256 (and x-amz-server-side-encryption when
 * configured); objects above multipart_threshold go up as a multipart
 * upload (initiate, parts, complete; abort when anything fails, so no
 * orphaned parts are left billing); GET with Range; HEAD; ListObjectsV2
 * with prefix and continuation token (the few tags needed are picked out of
 * the XML directly); DELETE. 5xx, 429, timeouts and connection failures
 * are retried with exponential backoff and full jitter.
 *
 * Threads: each request uses its own curl easy handle; one curl share
 * handle per archive (connections, DNS, TLS sessions) is locked by mutexes,
 * so every operation may run concurrently from any thread. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "archive_impl.h"
#include "lh/backoff.h"
#include "lh/sigv4.h"

#define MIN_PART (5u << 20)
#define MAX_PARTS 10000
#define MAX_ERROR_BODY (64u << 10)

struct s3ctx {
    char *base;                /* "http://127.0.0.1:9000" or "https://bucket.s3...": no '/' */
    char *host;                /* Host header value (signed) */
    char *path_prefix;         /* "/bucket" (path style) or "" (virtual host) */
    char *bucket, *region, *access_key, *secret_key, *session_token, *ca_file;
    int sse, tls_verify;
    uint64_t mp_threshold, part_size;
    long connect_timeout_ms, timeout_ms;
    int retries;
    long retry_base_ms, retry_max_ms;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

/* ---- XML: the few tags of S3 responses ---- */

static int put_utf8(struct lh_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return lh_buf_append(b, u, n);
}

/* Appends s[0..n) with XML entities decoded. */
static int xml_decode(struct lh_buf *b, const char *s, size_t n)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = { { "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' },
                 { "apos;", '\'' } };
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '&') {
            if (lh_buf_putc(b, s[i]) < 0)
                return LH_ENOMEM;
            continue;
        }
        const char *e = s + i + 1;
        size_t left = n - i - 1;
        int done = 0;
        for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
            size_t l = strlen(ents[k].name);
            if (left >= l && memcmp(e, ents[k].name, l) == 0) {
                if (lh_buf_putc(b, ents[k].c) < 0)
                    return LH_ENOMEM;
                i += l;
                done = 1;
                break;
            }
        }
        if (!done && left >= 3 && e[0] == '#') {
            const char *semi = memchr(e, ';', left < 12 ? left : 12);
            if (semi) {
                char num[16];
                size_t l = (size_t)(semi - e - 1);
                memcpy(num, e + 1, l);
                num[l] = '\0';
                char *end;
                unsigned long cp = num[0] == 'x' ? strtoul(num + 1, &end, 16)
                                                 : strtoul(num, &end, 10);
                if (*end == '\0' && l > 0 && cp > 0 && cp <= 0x10ffff) {
                    if (put_utf8(b, cp) < 0)
                        return LH_ENOMEM;
                    i += l + 2;
                    done = 1;
                }
            }
        }
        if (!done && lh_buf_putc(b, '&') < 0)
            return LH_ENOMEM;
    }
    return 0;
}

/* Finds <tag>...</tag> in s[0..n): *start and *len of the content, or 0. */
static int xml_find(const char *s, size_t n, const char *tag, const char **start, size_t *len)
{
    char open[64], close[64];
    int ol = snprintf(open, sizeof(open), "<%s>", tag);
    int cl = snprintf(close, sizeof(close), "</%s>", tag);
    const char *p = memmem(s, n, open, (size_t)ol);
    if (!p)
        return 0;
    p += ol;
    const char *q = memmem(p, n - (size_t)(p - s), close, (size_t)cl);
    if (!q)
        return 0;
    *start = p;
    *len = (size_t)(q - p);
    return 1;
}

char *lh_archive_xml_text(const char *xml, size_t len, const char *tag)
{
    const char *p;
    size_t n;
    struct lh_buf b = LH_BUF_INIT;
    if (!xml_find(xml, len, tag, &p, &n))
        return NULL;
    if (xml_decode(&b, p, n) < 0 || lh_buf_putc(&b, '\0') < 0) {
        lh_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int lh_archive_s3_parse_list(const char *xml, size_t len, struct lh_archive_list *out,
                             int *truncated, char **next_token, struct lh_err *err)
{
    const char *p = xml, *end = xml + len;
    struct lh_buf key = LH_BUF_INIT;
    *truncated = 0;
    *next_token = NULL;
    if (!memmem(xml, len, "<ListBucketResult", 17)) {
        return lh_err_set(err, LH_ECORRUPT, "archive: s3: not a ListBucketResult: %.100s",
                          xml);
    }
    for (;;) {
        const char *c;
        size_t cl;
        if (!xml_find(p, (size_t)(end - p), "Contents", &c, &cl))
            break;
        const char *k, *sz;
        size_t kl, szl;
        if (!xml_find(c, cl, "Key", &k, &kl) || !xml_find(c, cl, "Size", &sz, &szl) ||
            szl == 0 || szl > 20) {
            lh_buf_free(&key);
            return lh_err_set(err, LH_ECORRUPT, "archive: s3: list entry without Key or Size");
        }
        uint64_t size = 0;
        for (size_t i = 0; i < szl; i++) {
            if (!isdigit((unsigned char)sz[i])) {
                lh_buf_free(&key);
                return lh_err_set(err, LH_ECORRUPT, "archive: s3: bad Size in list");
            }
            size = size * 10 + (uint64_t)(sz[i] - '0');
        }
        lh_buf_reset(&key);
        if (xml_decode(&key, k, kl) < 0 ||
            lh_archive_list_add(out, key.data ? key.data : "", key.len, size) < 0) {
            lh_buf_free(&key);
            return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        }
        p = c + cl + 11;   /* past "</Contents>" */
    }
    lh_buf_free(&key);
    /* the flags follow the Contents in S3's responses but search all */
    char *t = lh_archive_xml_text(xml, len, "IsTruncated");
    *truncated = t && strcmp(t, "true") == 0;
    free(t);
    if (*truncated) {
        *next_token = lh_archive_xml_text(xml, len, "NextContinuationToken");
        if (!*next_token)
            return lh_err_set(err, LH_ECORRUPT,
                              "archive: s3: truncated list without NextContinuationToken");
    }
    return 0;
}

/* ---- requests ---- */

struct req {
    const char *method;
    const char *key;                      /* NULL: the bucket */
    const struct lh_sigv4_pair *query;    /* unencoded */
    size_t nquery;
    const void *body;
    size_t body_len;
    const char *content_type;
    char range[64];                       /* "" or "bytes=a-b" */
    int sse;                              /* send x-amz-server-side-encryption */
    /* results */
    struct lh_buf *resp;                  /* body appended here (may be NULL) */
    size_t resp_start;
    long status;
    int64_t content_length;               /* -1: unknown */
    char etag[160];
    char amz_code[64];                    /* S3 error code, if any */
    char amz_msg[200];
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct req *r = ud;
    size_t n = sz * nm;
    if (!r->resp)
        return n;
    if (lh_buf_append(r->resp, p, n) < 0)
        return 0;   /* aborts the transfer */
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct req *r = ud;
    size_t n = sz * nm;
    if (n > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        const char *v = p + 5;
        size_t l = n - 5;
        while (l && (*v == ' ' || *v == '\t')) {
            v++;
            l--;
        }
        while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
            l--;
        if (l >= sizeof(r->etag))
            l = sizeof(r->etag) - 1;
        memcpy(r->etag, v, l);
        r->etag[l] = '\0';
    }
    return n;
}

static void lock_cb(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    pthread_mutex_lock(&((struct s3ctx *)ud)->locks[data]);
}

static void unlock_cb(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    pthread_mutex_unlock(&((struct s3ctx *)ud)->locks[data]);
}

/* One attempt. 0 with r->status set when the server answered; LH_EUNAVAIL
 * or LH_ETIMEDOUT (retryable) when it did not; LH_ENOMEM. */
static int attempt(struct s3ctx *s, struct req *r, const char *payload_hash, struct lh_err *err)
{
    struct lh_buf path = LH_BUF_INIT, url = LH_BUF_INIT, auth = LH_BUF_INIT;
    struct lh_buf hv = LH_BUF_INIT;
    struct curl_slist *hl = NULL;
    char date[LH_SIGV4_DATE_SIZE];
    int rc = LH_ENOMEM;
    CURL *h = NULL;

    if (lh_buf_puts(&path, s->path_prefix) < 0 || lh_buf_putc(&path, '/') < 0 ||
        (r->key && lh_buf_puts(&path, r->key) < 0))
        goto nomem;
    if (!r->key && path.len > 1)
        path.data[--path.len] = '\0';   /* "/bucket", not "/bucket/" */
    if (lh_buf_puts(&url, s->base) < 0 || lh_sigv4_encode_path(&url, path.data) < 0)
        goto nomem;
    if (r->nquery && (lh_buf_putc(&url, '?') < 0 ||
                      lh_sigv4_canonical_query(&url, r->query, r->nquery) < 0))
        goto nomem;

    struct lh_sigv4_pair sh[8];
    size_t nh = 0;
    lh_sigv4_amz_date(time(NULL), date);
    sh[nh++] = (struct lh_sigv4_pair){ "host", s->host };
    sh[nh++] = (struct lh_sigv4_pair){ "x-amz-content-sha256", payload_hash };
    sh[nh++] = (struct lh_sigv4_pair){ "x-amz-date", date };
    if (r->range[0])
        sh[nh++] = (struct lh_sigv4_pair){ "range", r->range };
    if (r->sse)
        sh[nh++] = (struct lh_sigv4_pair){ "x-amz-server-side-encryption", "AES256" };
    if (s->session_token && *s->session_token)
        sh[nh++] = (struct lh_sigv4_pair){ "x-amz-security-token", s->session_token };
    struct lh_sigv4_request sreq = { r->method, path.data, r->query, r->nquery, sh, nh,
                                     payload_hash };
    struct lh_sigv4_creds creds = { s->access_key, s->secret_key, s->region, "s3" };
    if ((rc = lh_sigv4_sign(&sreq, &creds, date, &auth, NULL, err)) < 0)
        goto out;
    rc = LH_ENOMEM;
    for (size_t i = 0; i < nh; i++) {
        lh_buf_reset(&hv);
        if (lh_buf_printf(&hv, "%s: %s", sh[i].name, sh[i].value) < 0)
            goto nomem;
        struct curl_slist *t = curl_slist_append(hl, hv.data);
        if (!t)
            goto nomem;
        hl = t;
    }
    lh_buf_reset(&hv);
    if (lh_buf_printf(&hv, "Authorization: %s", auth.data) < 0)
        goto nomem;
    const char *extra[] = { hv.data, "Expect:", r->content_type ? NULL : "Content-Type:" };
    for (size_t i = 0; i < 3; i++) {
        if (!extra[i])
            continue;
        struct curl_slist *t = curl_slist_append(hl, extra[i]);
        if (!t)
            goto nomem;
        hl = t;
    }
    if (r->content_type) {
        lh_buf_reset(&auth);
        if (lh_buf_printf(&auth, "Content-Type: %s", r->content_type) < 0)
            goto nomem;
        struct curl_slist *t = curl_slist_append(hl, auth.data);
        if (!t)
            goto nomem;
        hl = t;
    }

    h = curl_easy_init();
    if (!h)
        goto nomem;
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_SHARE, s->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s->tls_verify ? 2L : 0L);
    if (s->ca_file && *s->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        if (strcmp(r->method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        }
    }

    if (r->resp) {
        r->resp->len = r->resp_start;   /* a retry starts over */
        if (r->resp->data)
            r->resp->data[r->resp_start] = '\0';
    }
    r->etag[0] = '\0';
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        int code = cc == CURLE_OPERATION_TIMEDOUT ? LH_ETIMEDOUT
                 : cc == CURLE_WRITE_ERROR ? LH_ENOMEM : LH_EUNAVAIL;
        rc = lh_err_set(err, code, "archive: s3 %s %s: %s", r->method, url.data,
                        curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_off_t cl = -1;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK)
        cl = -1;
    r->content_length = (int64_t)cl;
    rc = 0;
    goto out;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    lh_buf_free(&path);
    lh_buf_free(&url);
    lh_buf_free(&auth);
    lh_buf_free(&hv);
    return rc;
}

/* Fills r->amz_code / amz_msg from an error body. */
static void error_details(struct req *r, const char *body, size_t len)
{
    char *c = body ? lh_archive_xml_text(body, len, "Code") : NULL;
    char *m = body ? lh_archive_xml_text(body, len, "Message") : NULL;
    snprintf(r->amz_code, sizeof(r->amz_code), "%s", c ? c : "");
    snprintf(r->amz_msg, sizeof(r->amz_msg), "%s", m ? m : "");
    free(c);
    free(m);
}

/* A request with retries. Returns 0 for a 2xx answer (r->status), else an
 * error: LH_ENOTFOUND (404), LH_EINVAL (416), LH_EUNAVAIL / LH_ETIMEDOUT
 * (still failing after the retries), LH_ERR (other refusals). */
static int call(struct s3ctx *s, struct req *r, struct lh_err *err)
{
    char hash[65];
    struct lh_buf errbody = LH_BUF_INIT, scratch = LH_BUF_INIT;
    struct lh_buf *orig_resp = r->resp;
    /* a body-less call still gets the error document of a refusal */
    struct lh_buf *user_resp = orig_resp ? orig_resp : &scratch;
    int rc = 0;

    struct lh_backoff bo;
    lh_backoff_init(&bo, (uint32_t)s->retry_base_ms, (uint32_t)s->retry_max_ms);
    lh_sigv4_sha256_hex(r->body ? r->body : "", r->body_len, hash);
    for (int n = 0;; n++) {
        /* error bodies are read into errbody; good ones into the caller's */
        r->resp = user_resp;
        r->resp_start = user_resp ? user_resp->len : 0;
        rc = attempt(s, r, hash, err);
        int retry = 0;
        if (rc == LH_EUNAVAIL || rc == LH_ETIMEDOUT) {
            retry = 1;
        } else if (rc < 0) {
            break;
        } else if (r->status >= 200 && r->status < 300) {
            /* CompleteMultipartUpload may answer 200 with an <Error> body */
            if (user_resp && user_resp->len > r->resp_start &&
                memmem(user_resp->data + r->resp_start, user_resp->len - r->resp_start,
                       "<Error>", 7)) {
                error_details(r, user_resp->data + r->resp_start,
                              user_resp->len - r->resp_start);
                rc = lh_err_set(err, LH_EUNAVAIL, "archive: s3 %s %.200s: %s: %s", r->method,
                                r->key ? r->key : s->bucket, r->amz_code, r->amz_msg);
                user_resp->len = r->resp_start;
                user_resp->data[r->resp_start] = '\0';
                retry = 1;
            } else {
                break;
            }
        } else {
            const char *body = NULL;
            size_t blen = 0;
            if (user_resp && user_resp->len > r->resp_start) {
                lh_buf_reset(&errbody);
                size_t el = user_resp->len - r->resp_start;
                if (el > MAX_ERROR_BODY)
                    el = MAX_ERROR_BODY;
                if (lh_buf_append(&errbody, user_resp->data + r->resp_start, el) == 0) {
                    body = errbody.data;
                    blen = errbody.len;
                }
                user_resp->len = r->resp_start;
                user_resp->data[r->resp_start] = '\0';
            }
            error_details(r, body, blen);
            int code = r->status == 404 ? LH_ENOTFOUND
                     : r->status == 416 ? LH_EINVAL
                     : r->status >= 500 || r->status == 429 ? LH_EUNAVAIL : LH_ERR;
            rc = lh_err_set(err, code, "archive: s3 %s %.200s: HTTP %ld%s%s%s%s", r->method,
                            r->key ? r->key : s->bucket, r->status, r->amz_code[0] ? " " : "",
                            r->amz_code, r->amz_msg[0] ? ": " : "", r->amz_msg);
            retry = code == LH_EUNAVAIL;
        }
        if (!retry || n >= s->retries)
            break;
        uint32_t ms = lh_backoff_next_ms(&bo);   /* exponential, full jitter */
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
    r->resp = orig_resp;
    lh_buf_free(&errbody);
    lh_buf_free(&scratch);
    return rc;
}

/* ---- operations ---- */

static int put_single(struct s3ctx *s, const char *key, const void *data, size_t len,
                      struct lh_err *err)
{
    struct lh_buf resp = LH_BUF_INIT;
    struct req r = { 0 };
    r.method = "PUT";
    r.key = key;
    r.body = data;
    r.body_len = len;
    r.content_type = "application/octet-stream";
    r.sse = s->sse;
    r.resp = &resp;
    int rc = call(s, &r, err);
    lh_buf_free(&resp);
    return rc;
}

static int xml_escape(struct lh_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                      : *s == '"' ? "&quot;" : NULL;
        if ((e ? lh_buf_puts(b, e) : lh_buf_putc(b, *s)) < 0)
            return LH_ENOMEM;
    }
    return 0;
}

static void abort_upload(struct s3ctx *s, const char *key, const char *upload_id)
{
    struct lh_sigv4_pair q[] = { { "uploadId", upload_id } };
    struct req r = { 0 };
    r.method = "DELETE";
    r.key = key;
    r.query = q;
    r.nquery = 1;
    call(s, &r, NULL);   /* best effort: a lifecycle rule cleans what is left */
}

static int put_multipart(struct s3ctx *s, const char *key, const void *data, size_t len,
                         struct lh_err *err)
{
    struct lh_buf resp = LH_BUF_INIT, body = LH_BUF_INIT;
    struct lh_sigv4_pair init_q[] = { { "uploads", "" } };
    char *upload_id = NULL;
    char **etags = NULL;
    size_t part = (size_t)s->part_size, nparts;
    int rc;

    if (part < MIN_PART)
        part = MIN_PART;
    if ((len + part - 1) / part > MAX_PARTS)
        part = ((len / MAX_PARTS) | (MIN_PART - 1)) + 1;   /* round up past len / 10000 */
    nparts = (len + part - 1) / part;

    struct req r = { 0 };
    r.method = "POST";
    r.key = key;
    r.query = init_q;
    r.nquery = 1;
    r.content_type = "application/octet-stream";
    r.sse = s->sse;
    r.resp = &resp;
    if ((rc = call(s, &r, err)) < 0)
        goto out;
    upload_id = lh_archive_xml_text(resp.data ? resp.data : "", resp.len, "UploadId");
    if (!upload_id || !*upload_id) {
        rc = lh_err_set(err, LH_ERR, "archive: s3 %.200s: no UploadId in the answer", key);
        goto out;
    }
    etags = calloc(nparts, sizeof(*etags));
    if (!etags) {
        rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        goto out;
    }
    for (size_t i = 0; i < nparts; i++) {
        char num[16];
        snprintf(num, sizeof(num), "%zu", i + 1);
        struct lh_sigv4_pair q[] = { { "partNumber", num }, { "uploadId", upload_id } };
        struct req pr = { 0 };
        pr.method = "PUT";
        pr.key = key;
        pr.query = q;
        pr.nquery = 2;
        pr.body = (const char *)data + i * part;
        pr.body_len = i + 1 < nparts ? part : len - i * part;
        pr.content_type = "application/octet-stream";
        lh_buf_reset(&resp);
        pr.resp = &resp;
        if ((rc = call(s, &pr, err)) < 0)
            goto out;
        if (!pr.etag[0] || !(etags[i] = strdup(pr.etag))) {
            rc = lh_err_set(err, LH_ERR, "archive: s3 %.200s: part %zu without ETag", key, i + 1);
            goto out;
        }
    }
    if (lh_buf_puts(&body, "<CompleteMultipartUpload>") < 0)
        goto nomem;
    for (size_t i = 0; i < nparts; i++)
        if (lh_buf_printf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1) < 0 ||
            xml_escape(&body, etags[i]) < 0 || lh_buf_puts(&body, "</ETag></Part>") < 0)
            goto nomem;
    if (lh_buf_puts(&body, "</CompleteMultipartUpload>") < 0)
        goto nomem;
    struct lh_sigv4_pair cq[] = { { "uploadId", upload_id } };
    struct req cr = { 0 };
    cr.method = "POST";
    cr.key = key;
    cr.query = cq;
    cr.nquery = 1;
    cr.body = body.data;
    cr.body_len = body.len;
    cr.content_type = "application/xml";
    lh_buf_reset(&resp);
    cr.resp = &resp;
    rc = call(s, &cr, err);
    goto out;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
out:
    if (rc < 0 && upload_id && *upload_id)
        abort_upload(s, key, upload_id);
    for (size_t i = 0; etags && i < nparts; i++)
        free(etags[i]);
    free(etags);
    free(upload_id);
    lh_buf_free(&resp);
    lh_buf_free(&body);
    return rc;
}

static int s3_put(void *ctx, const char *key, const void *data, size_t len, struct lh_err *err)
{
    struct s3ctx *s = ctx;
    if (len > s->mp_threshold && len > MIN_PART)
        return put_multipart(s, key, data, len, err);
    return put_single(s, key, data, len, err);
}

static int s3_head(void *ctx, const char *key, uint64_t *size, struct lh_err *err);

static int s3_get(void *ctx, const char *key, uint64_t offset, uint64_t len, struct lh_buf *out,
                  struct lh_err *err)
{
    struct s3ctx *s = ctx;
    struct req r = { 0 };
    size_t start = out->len;
    r.method = "GET";
    r.key = key;
    r.resp = out;
    if (len)
        snprintf(r.range, sizeof(r.range), "bytes=%llu-%llu", (unsigned long long)offset,
                 (unsigned long long)(offset + len - 1));
    else if (offset)
        snprintf(r.range, sizeof(r.range), "bytes=%llu-", (unsigned long long)offset);
    int rc = call(s, &r, err);
    if (rc == LH_EINVAL && offset == 0) {
        /* 416 at offset 0: the object is empty */
        uint64_t size;
        if (s3_head(s, key, &size, NULL) == 0 && size == 0) {
            lh_err_clear(err);
            return 0;
        }
    }
    if (rc < 0)
        return rc;
    if (r.status == 200 && r.range[0]) {
        /* the server ignored Range: cut the part asked for ourselves */
        size_t got = out->len - start;
        size_t off = offset < got ? (size_t)offset : got;
        size_t n = got - off;
        if (len && len < n)
            n = (size_t)len;
        if (offset >= got && got != 0) {
            out->len = start;
            out->data[start] = '\0';
            return lh_err_set(err, LH_EINVAL, "archive: %.200s: offset past the end", key);
        }
        memmove(out->data + start, out->data + start + off, n);
        out->len = start + n;
        out->data[out->len] = '\0';
    }
    return 0;
}

static int s3_head(void *ctx, const char *key, uint64_t *size, struct lh_err *err)
{
    struct s3ctx *s = ctx;
    struct req r = { 0 };
    r.method = "HEAD";
    r.key = key;
    int rc = call(s, &r, err);
    if (rc < 0)
        return rc;
    if (r.content_length < 0)
        return lh_err_set(err, LH_ERR, "archive: s3 HEAD %.200s: no Content-Length", key);
    *size = (uint64_t)r.content_length;
    return 0;
}

static int s3_list(void *ctx, const char *prefix, struct lh_archive_list *out,
                   struct lh_err *err)
{
    struct s3ctx *s = ctx;
    struct lh_buf resp = LH_BUF_INIT;
    char *token = NULL;
    size_t first = out->n;
    int rc = 0;
    for (int page = 0; page < 1000000; page++) {
        struct lh_sigv4_pair q[4];
        size_t nq = 0;
        q[nq++] = (struct lh_sigv4_pair){ "list-type", "2" };
        q[nq++] = (struct lh_sigv4_pair){ "max-keys", "1000" };
        if (*prefix)
            q[nq++] = (struct lh_sigv4_pair){ "prefix", prefix };
        if (token)
            q[nq++] = (struct lh_sigv4_pair){ "continuation-token", token };
        struct req r = { 0 };
        r.method = "GET";
        r.query = q;
        r.nquery = nq;
        lh_buf_reset(&resp);
        r.resp = &resp;
        if ((rc = call(s, &r, err)) < 0)
            break;
        int truncated;
        char *next = NULL;
        rc = lh_archive_s3_parse_list(resp.data ? resp.data : "", resp.len, out, &truncated,
                                      &next, err);
        free(token);
        token = next;
        if (rc < 0 || !truncated)
            break;
    }
    free(token);
    lh_buf_free(&resp);
    if (rc == 0) {
        struct lh_archive_list tail = { out->items + first, out->n - first, 0 };
        lh_archive_list_sort(&tail);
    }
    return rc;
}

static int s3_del(void *ctx, const char *key, struct lh_err *err)
{
    struct s3ctx *s = ctx;
    struct req r = { 0 };
    r.method = "DELETE";
    r.key = key;
    int rc = call(s, &r, err);
    if (rc == LH_ENOTFOUND && strcmp(r.amz_code, "NoSuchKey") == 0)
        rc = 0;   /* some servers say 404 for an absent key: deleting it is done */
    if (rc == 0)
        lh_err_clear(err);
    return rc;
}

static void s3_destroy(void *ctx)
{
    struct s3ctx *s = ctx;
    if (!s)
        return;
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    free(s->base);
    free(s->host);
    free(s->path_prefix);
    free(s->bucket);
    free(s->region);
    free(s->access_key);
    if (s->secret_key) {
        memset(s->secret_key, 0, strlen(s->secret_key));
        free(s->secret_key);
    }
    free(s->session_token);
    free(s->ca_file);
    free(s);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static char *dup_or_env(const char *v, const char *env)
{
    if (v && *v)
        return strdup(v);
    const char *e = getenv(env);
    return strdup(e ? e : "");
}

static int bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-' ||
              b[i] == '.'))
            return 0;
    return 1;
}

int lh_archive_s3_create(void **ctx, const struct lh_archive_s3_config *cfg,
                         struct lh_err *err)
{
    struct s3ctx *s;
    struct lh_buf b = LH_BUF_INIT;
    int rc;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return lh_err_set(err, LH_ERR, "archive: curl_global_init failed");
    if (!cfg->bucket || !bucket_ok(cfg->bucket))
        return lh_err_set(err, LH_EINVAL,
                          "archive: s3.bucket \"%s\" is not a bucket name (3-63 of a-z 0-9 . -)",
                          cfg->bucket ? cfg->bucket : "");
    s = calloc(1, sizeof(*s));
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->locks[i], NULL);
    s->region = strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
    s->bucket = strdup(cfg->bucket);
    s->access_key = dup_or_env(cfg->access_key, "AWS_ACCESS_KEY_ID");
    s->secret_key = dup_or_env(cfg->secret_key, "AWS_SECRET_ACCESS_KEY");
    s->session_token = dup_or_env(cfg->session_token, "AWS_SESSION_TOKEN");
    s->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (!s->region || !s->bucket || !s->access_key || !s->secret_key || !s->session_token ||
        (cfg->ca_file && !s->ca_file))
        goto nomem;
    if (!*s->access_key || !*s->secret_key) {
        rc = lh_err_set(err, LH_EINVAL, "archive: s3 credentials missing (s3.access_key/"
                                        "secret_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");
        goto fail;
    }
    s->sse = cfg->sse == 1;
    s->tls_verify = cfg->tls_verify;
    s->mp_threshold = cfg->multipart_threshold ? cfg->multipart_threshold : (64u << 20);
    s->part_size = cfg->part_size >= MIN_PART ? cfg->part_size : (16u << 20);
    s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? (long)cfg->connect_timeout_ms : 5000;
    s->timeout_ms = cfg->timeout_ms > 0 ? (long)cfg->timeout_ms : 120000;
    s->retries = cfg->retries >= 0 && cfg->retries < 100 ? (int)cfg->retries : 5;
    s->retry_base_ms = cfg->retry_base_ms > 0 ? (long)cfg->retry_base_ms : 200;
    s->retry_max_ms = cfg->retry_max_ms > 0 ? (long)cfg->retry_max_ms : 10000;
    if (s->retry_max_ms > 3600000)
        s->retry_max_ms = 3600000;
    if (s->retry_base_ms > s->retry_max_ms)
        s->retry_base_ms = s->retry_max_ms;

    /* endpoint: scheme://authority, nothing after it */
    const char *ep = cfg->endpoint && *cfg->endpoint ? cfg->endpoint : NULL;
    if (!ep && lh_buf_printf(&b, "https://s3.%s.amazonaws.com", s->region) < 0)
        goto nomem;
    if (ep && lh_buf_puts(&b, ep) < 0)
        goto nomem;
    while (b.len && b.data[b.len - 1] == '/')
        b.data[--b.len] = '\0';
    const char *scheme_end = strstr(b.data, "://");
    if (!scheme_end || (strncmp(b.data, "http://", 7) != 0 && strncmp(b.data, "https://", 8) != 0) ||
        !scheme_end[3] || strpbrk(scheme_end + 3, "/?#@ ")) {
        rc = lh_err_set(err, LH_EINVAL, "archive: s3.endpoint \"%s\" is not http(s)://host[:port]",
                        b.data);
        goto fail;
    }
    const char *authority = scheme_end + 3;
    int virt = cfg->addressing == LH_S3_VIRTUAL || (cfg->addressing == LH_S3_AUTO && !ep);
    if (virt) {
        if (strchr(s->bucket, '.') && strncmp(b.data, "https://", 8) == 0) {
            rc = lh_err_set(err, LH_EINVAL, "archive: bucket names with dots need "
                                            "s3.addressing: path over https");
            goto fail;
        }
        struct lh_buf base = LH_BUF_INIT;
        if (lh_buf_append(&base, b.data, (size_t)(authority - b.data)) < 0 ||
            lh_buf_printf(&base, "%s.%s", s->bucket, authority) < 0) {
            lh_buf_free(&base);
            goto nomem;
        }
        s->base = base.data;
        s->host = strdup(strstr(s->base, "://") + 3);
        s->path_prefix = strdup("");
    } else {
        s->base = strdup(b.data);
        s->host = strdup(authority);
        s->path_prefix = malloc(strlen(s->bucket) + 2);
        if (s->path_prefix)
            sprintf(s->path_prefix, "/%s", s->bucket);
    }
    if (!s->base || !s->host || !s->path_prefix)
        goto nomem;
    s->share = curl_share_init();
    if (!s->share)
        goto nomem;
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, lock_cb);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    lh_buf_free(&b);
    *ctx = s;
    return 0;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
fail:
    lh_buf_free(&b);
    s3_destroy(s);
    return rc;
}

const struct lh_archive_ops lh_archive_s3_ops = {
    .name = "s3",
    .put = s3_put,
    .get = s3_get,
    .head = s3_head,
    .list = s3_list,
    .del = s3_del,
    .destroy = s3_destroy,
};
