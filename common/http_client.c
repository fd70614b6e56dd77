/* http_client.c - blocking and concurrent HTTP requests over libcurl
 * (see lh/http_client.h). */
#include "lh/http_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <libdeflate.h>

#define DEF_CONNECT_TIMEOUT_MS 10000
#define DEF_TIMEOUT_MS 60000
#define DEF_MAX_RESPONSE (64u << 20)
#define DEF_GZIP_LEVEL 6
#define DEF_MAX_PARALLEL 8

const struct lh_opt lh_http_client_opts[] = {
    { .type = LH_OPT_DURATION, .key = "connect_timeout", .def = "10s",
      .offset = offsetof(struct lh_http_client_config, connect_timeout_ms),
      .help = "time to connect (TCP and TLS)" },
    { .type = LH_OPT_DURATION, .key = "timeout", .def = "60s",
      .offset = offsetof(struct lh_http_client_config, timeout_ms),
      .help = "time for a whole request and its response" },
    { .type = LH_OPT_SIZE, .key = "max_response", .def = "64MiB",
      .offset = offsetof(struct lh_http_client_config, max_response),
      .help = "largest response body accepted" },
    { .type = LH_OPT_STR, .key = "ca",
      .offset = offsetof(struct lh_http_client_config, ca_file),
      .help = "PEM CA file to verify the server (default: system store)" },
    { .type = LH_OPT_STR, .key = "cert",
      .offset = offsetof(struct lh_http_client_config, cert_file),
      .help = "PEM client certificate for mTLS" },
    { .type = LH_OPT_STR, .key = "key",
      .offset = offsetof(struct lh_http_client_config, key_file),
      .help = "PEM key of the client certificate" },
    { .type = LH_OPT_BOOL, .key = "tls13", .def = "false",
      .offset = offsetof(struct lh_http_client_config, tls13),
      .help = "require TLS 1.3 (otherwise TLS 1.2 or newer)" },
    { .type = LH_OPT_BOOL, .key = "accept_gzip", .def = "false",
      .offset = offsetof(struct lh_http_client_config, accept_gzip),
      .help = "ask for gzip-compressed responses" },
    { .type = LH_OPT_INT, .key = "gzip_level", .def = "6",
      .offset = offsetof(struct lh_http_client_config, gzip_level),
      .help = "compression level of gzip request bodies (1-12)" },
    { .type = LH_OPT_INT, .key = "max_parallel", .def = "8",
      .offset = offsetof(struct lh_http_client_config, max_parallel),
      .help = "requests in flight at once for parallel uploads" },
    { 0 }
};

/* One transfer: the state a curl easy handle needs while it runs. */
struct xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    char *gz;                    /* compressed body, when gzip */
    struct lh_http_response *resp;
    uint64_t max;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

struct lh_http_client {
    struct lh_http_client_config cfg;   /* strings owned */
    struct xfer one;                    /* for lh_http_client_do */
    CURLM *multi;                       /* for lh_http_client_do_all */
    struct xfer *pool;                  /* max_parallel transfers of the multi */
    size_t npool;
    struct libdeflate_compressor *gzc;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int lh_http_client_global_init(struct lh_err *err)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return lh_err_set(err, LH_ERR, "curl_global_init: %s", curl_easy_strerror(global_rc));
    return 0;
}

static char *dup_or_null(const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

void lh_http_client_destroy(struct lh_http_client *c)
{
    if (!c)
        return;
    if (c->one.easy)
        curl_easy_cleanup(c->one.easy);
    for (size_t i = 0; i < c->npool; i++)
        if (c->pool[i].easy)
            curl_easy_cleanup(c->pool[i].easy);
    free(c->pool);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->gzc)
        libdeflate_free_compressor(c->gzc);
    free(c->cfg.ca_file);
    free(c->cfg.cert_file);
    free(c->cfg.key_file);
    free(c->cfg.user_agent);
    free(c);
}

int lh_http_client_create(const struct lh_http_client_config *cfg,
                          struct lh_http_client **out, struct lh_err *err)
{
    int rc = lh_http_client_global_init(err);
    if (rc)
        return rc;
    if (cfg->gzip_level < 0 || cfg->gzip_level > 12 || cfg->connect_timeout_ms < 0 ||
        cfg->timeout_ms < 0 || cfg->max_parallel < 0)
        return lh_err_set(err, LH_EINVAL, "http client: bad timeout, gzip_level or max_parallel");
    if ((cfg->cert_file != NULL) != (cfg->key_file != NULL))
        return lh_err_set(err, LH_EINVAL, "http client: cert and key go together");
    struct lh_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return lh_err_set(err, LH_ENOMEM, "http client: out of memory");
    int fail = 0;
    c->cfg = *cfg;
    c->cfg.ca_file = dup_or_null(cfg->ca_file, &fail);
    c->cfg.cert_file = dup_or_null(cfg->cert_file, &fail);
    c->cfg.key_file = dup_or_null(cfg->key_file, &fail);
    c->cfg.user_agent = dup_or_null(cfg->user_agent ? cfg->user_agent : "loghaul", &fail);
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS;
    if (!c->cfg.timeout_ms)
        c->cfg.timeout_ms = DEF_TIMEOUT_MS;
    if (!c->cfg.max_response)
        c->cfg.max_response = DEF_MAX_RESPONSE;
    if (!c->cfg.gzip_level)
        c->cfg.gzip_level = DEF_GZIP_LEVEL;
    if (!c->cfg.max_parallel)
        c->cfg.max_parallel = DEF_MAX_PARALLEL;
    c->one.easy = curl_easy_init();
    if (fail || !c->one.easy) {
        lh_http_client_destroy(c);
        return lh_err_set(err, LH_ENOMEM, "http client: out of memory");
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------ */
/* responses */

void lh_http_response_free(struct lh_http_response *r)
{
    lh_buf_free(&r->body);
    lh_buf_free(&r->headers);
    r->nheaders = 0;
    r->status = 0;
    r->seconds = 0;
}

const char *lh_http_response_header(const struct lh_http_response *r, const char *name)
{
    const char *p = r->headers.data;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (x->resp->body.len + n > x->max) {
        x->too_big = 1;
        return 0;   /* aborts the transfer */
    }
    if (lh_buf_append(&x->resp->body, ptr, n) != 0)
        return 0;
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    struct lh_http_response *r = x->resp;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* A new status line (after a 100 Continue or a redirect): restart. */
        lh_buf_reset(&r->headers);
        r->nheaders = 0;
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon)
        return n;   /* the blank line ending the headers */
    size_t nl = (size_t)(colon - ptr);
    const char *v = colon + 1, *end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (lh_buf_append(&r->headers, ptr, nl) || lh_buf_putc(&r->headers, '\0') ||
        lh_buf_append(&r->headers, v, (size_t)(end - v)) || lh_buf_putc(&r->headers, '\0'))
        return 0;
    r->nheaders++;
    return n;
}

/* ------------------------------------------------------------------ */
/* transfers */

static void xfer_release(struct xfer *x)
{
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    free(x->gz);
    x->gz = NULL;
    x->resp = NULL;
}

static int add_header(struct xfer *x, const char *line)
{
    struct curl_slist *n = curl_slist_append(x->hdrs, line);
    if (!n)
        return LH_ENOMEM;
    x->hdrs = n;
    return 0;
}

/* Prepares x->easy for req; resp receives the answer. */
static int xfer_setup(struct lh_http_client *c, struct xfer *x, const struct lh_http_request *req,
                      struct lh_http_response *resp, struct lh_err *err)
{
    CURL *e = x->easy;
    curl_easy_reset(e);   /* keeps live connections, DNS and TLS session caches */
    xfer_release(x);
    lh_http_response_free(resp);
    x->resp = resp;
    x->max = c->cfg.max_response;
    x->too_big = 0;
    x->errbuf[0] = '\0';
    if (!req->url)
        return lh_err_set(err, LH_EINVAL, "http client: request without url");

    const void *body = req->body;
    size_t body_len = req->body_len;
    int has_ctype = 0;
    char line[1024];
    for (const struct lh_http_header *h = req->headers; h && h->name; h++) {
        if (strcasecmp(h->name, "Content-Type") == 0)
            has_ctype = 1;
        snprintf(line, sizeof(line), "%s: %s", h->name, h->value ? h->value : "");
        if (add_header(x, line))
            goto oom;
    }
    if (req->gzip && body) {
        if (!c->gzc && !(c->gzc = libdeflate_alloc_compressor((int)c->cfg.gzip_level)))
            goto oom;
        size_t bound = libdeflate_gzip_compress_bound(c->gzc, body_len);
        x->gz = malloc(bound);
        if (!x->gz)
            goto oom;
        size_t n = libdeflate_gzip_compress(c->gzc, body, body_len, x->gz, bound);
        if (n == 0)
            return lh_err_set(err, LH_ERR, "http client: gzip of %zu bytes failed", body_len);
        body = x->gz;
        body_len = n;
        if (add_header(x, "Content-Encoding: gzip"))
            goto oom;
    }
    const char *method = req->method ? req->method : body ? "POST" : "GET";
    if (body && !has_ctype && add_header(x, "Content-Type:"))   /* no form default */
        goto oom;

    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->cfg.user_agent);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(req->timeout_ms > 0 ? req->timeout_ms : c->cfg.timeout_ms));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->cfg.max_response);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_SSLVERSION,
                     c->cfg.tls13 ? CURL_SSLVERSION_TLSv1_3 : CURL_SSLVERSION_TLSv1_2);
    if (c->cfg.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg.ca_file);
    if (c->cfg.cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cfg.cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->cfg.key_file);
    }
    if (c->cfg.accept_gzip)
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        }
    }
    if (x->hdrs)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    return 0;
oom:
    xfer_release(x);
    return lh_err_set(err, LH_ENOMEM, "http client: out of memory");
}

/* Turns the outcome of a finished transfer into our code and message. */
static int xfer_finish(struct xfer *x, const struct lh_http_request *req, CURLcode cc,
                       struct lh_err *err)
{
    struct lh_http_response *r = x->resp;
    double secs = 0;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &secs);
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r->seconds = secs;
    r->status = status;
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    int code;
    switch (cc) {
    case CURLE_OK:
        xfer_release(x);
        return 0;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        code = x->too_big || cc == CURLE_FILESIZE_EXCEEDED ? LH_ETOOBIG : LH_ENOMEM;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        code = LH_EUNAVAIL;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = LH_ETIMEDOUT;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        code = LH_EINVAL;
        break;
    case CURLE_OUT_OF_MEMORY:
        code = LH_ENOMEM;
        break;
    default:
        code = LH_EIO;
        break;
    }
    if (code == LH_ETOOBIG)
        lh_err_set(err, code, "%s %s: response over %llu bytes", method, req->url,
                   (unsigned long long)x->max);
    else
        lh_err_set(err, code, "%s %s: %s", method, req->url,
                   x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
    xfer_release(x);
    return code;
}

int lh_http_client_do(struct lh_http_client *c, const struct lh_http_request *req,
                      struct lh_http_response *resp, struct lh_err *err)
{
    int rc = xfer_setup(c, &c->one, req, resp, err);
    if (rc)
        return rc;
    CURLcode cc = curl_easy_perform(c->one.easy);
    return xfer_finish(&c->one, req, cc, err);
}

int lh_http_client_do_all(struct lh_http_client *c, struct lh_http_exchange *x, size_t n,
                          struct lh_err *err)
{
    if (n == 0)
        return 0;
    if (!c->multi) {
        c->multi = curl_multi_init();
        if (!c->multi)
            return lh_err_set(err, LH_ENOMEM, "http client: curl_multi_init failed");
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->cfg.max_parallel);
    }
    size_t want = (size_t)c->cfg.max_parallel < n ? (size_t)c->cfg.max_parallel : n;
    if (c->npool < want) {
        struct xfer *p = realloc(c->pool, want * sizeof(*p));
        if (!p)
            return lh_err_set(err, LH_ENOMEM, "http client: out of memory");
        c->pool = p;
        for (size_t i = c->npool; i < want; i++) {
            memset(&p[i], 0, sizeof(p[i]));
            p[i].easy = curl_easy_init();
            if (!p[i].easy)
                return lh_err_set(err, LH_ENOMEM, "http client: out of memory");
            c->npool = i + 1;
        }
    }
    /* free[k]: pool slots not in use; slot of a running exchange in owner[]. */
    size_t *owner = calloc(want, sizeof(*owner));
    size_t *freeslots = calloc(want, sizeof(*freeslots));
    if (!owner || !freeslots) {
        free(owner);
        free(freeslots);
        return lh_err_set(err, LH_ENOMEM, "http client: out of memory");
    }
    size_t nfree = want, next = 0, running = 0;
    for (size_t i = 0; i < want; i++)
        freeslots[i] = want - 1 - i;
    for (size_t i = 0; i < n; i++) {
        x[i].rc = LH_ERR;
        lh_err_clear(&x[i].err);
    }
    int rc = 0;
    for (;;) {
        /* Start as many as there are free slots. */
        while (nfree > 0 && next < n) {
            size_t slot = freeslots[--nfree];
            struct xfer *t = &c->pool[slot];
            struct lh_http_exchange *ex = &x[next];
            if (xfer_setup(c, t, &ex->req, &ex->resp, &ex->err) != 0) {
                ex->rc = ex->err.code ? ex->err.code : LH_ERR;
                freeslots[nfree++] = slot;
                next++;
                continue;
            }
            curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (void *)(uintptr_t)slot);
            CURLMcode mc = curl_multi_add_handle(c->multi, t->easy);
            if (mc != CURLM_OK) {
                ex->rc = lh_err_set(&ex->err, LH_ERR, "curl_multi_add_handle: %s",
                                    curl_multi_strerror(mc));
                xfer_release(t);
                freeslots[nfree++] = slot;
                next++;
                continue;
            }
            owner[slot] = next;
            next++;
            running++;
        }
        if (running == 0)
            break;
        int still = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &still);
        if (mc != CURLM_OK) {
            rc = lh_err_set(err, LH_ERR, "curl_multi_perform: %s", curl_multi_strerror(mc));
            break;
        }
        CURLMsg *msg;
        int left, finished = 0;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            void *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            size_t slot = (size_t)(uintptr_t)priv;
            CURLcode cc = msg->data.result;
            struct lh_http_exchange *ex = &x[owner[slot]];
            curl_multi_remove_handle(c->multi, msg->easy_handle);
            ex->rc = xfer_finish(&c->pool[slot], &ex->req, cc, &ex->err);
            freeslots[nfree++] = slot;
            running--;
            finished = 1;
        }
        if (running > 0 && !finished) {
            mc = curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
            if (mc != CURLM_OK) {
                rc = lh_err_set(err, LH_ERR, "curl_multi_poll: %s", curl_multi_strerror(mc));
                break;
            }
        }
    }
    if (rc != 0) {
        /* Detach whatever still runs; its exchange keeps rc = LH_ERR. */
        for (size_t s = 0; s < want; s++) {
            int busy = 1;
            for (size_t k = 0; k < nfree; k++)
                if (freeslots[k] == s)
                    busy = 0;
            if (busy) {
                curl_multi_remove_handle(c->multi, c->pool[s].easy);
                lh_err_set(&x[owner[s]].err, LH_ERR, "aborted: %s", err ? err->msg : "");
                xfer_release(&c->pool[s]);
            }
        }
    }
    free(owner);
    free(freeslots);
    return rc;
}
