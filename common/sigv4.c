/* sigv4.c - AWS Signature Version 4 request signing (see lh/sigv4.h).
 *
 * canonical request -> string to sign -> key derived from the secret by
 * HMAC chain (date, region, service, "aws4_request") -> HMAC signature. */
#include "lh/sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lh/digest.h"

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void lh_sigv4_amz_date(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, LH_SIGV4_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm);
}

void lh_sigv4_sha256_hex(const void *data, size_t len, char *out)
{
    uint8_t md[LH_SHA256_BYTES];
    lh_sha256(data, len, md);
    to_hex(md, LH_SHA256_BYTES, out);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

int lh_sigv4_uri_encode(struct lh_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char up[] = "0123456789ABCDEF";
    if (lh_buf_reserve(out, n * 3) < 0)
        return LH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            out->data[out->len++] = (char)c;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = up[c >> 4];
            out->data[out->len++] = up[c & 15];
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

int lh_sigv4_encode_path(struct lh_buf *out, const char *path)
{
    if (!path || !*path)
        return lh_buf_putc(out, '/');
    return lh_sigv4_uri_encode(out, path, strlen(path), 1);
}

struct enc_pair {
    char *k;
    char *v;
};

static int cmp_enc_pair(const void *a, const void *b)
{
    const struct enc_pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

int lh_sigv4_canonical_query(struct lh_buf *out, const struct lh_sigv4_pair *q, size_t n)
{
    if (n == 0)
        return 0;
    struct enc_pair *p = calloc(n, sizeof(*p));
    struct lh_buf tmp = LH_BUF_INIT;
    int rc = LH_ENOMEM;
    if (!p)
        return LH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *v = q[i].value ? q[i].value : "";
        lh_buf_reset(&tmp);
        if (lh_sigv4_uri_encode(&tmp, q[i].name, strlen(q[i].name), 0) < 0 ||
            !(p[i].k = strdup(tmp.data)))
            goto out;
        lh_buf_reset(&tmp);
        if (lh_sigv4_uri_encode(&tmp, v, strlen(v), 0) < 0)
            goto out;
        if (!(p[i].v = strdup(tmp.data ? tmp.data : "")))
            goto out;
    }
    qsort(p, n, sizeof(*p), cmp_enc_pair);
    for (size_t i = 0; i < n; i++) {
        if ((i && lh_buf_putc(out, '&') < 0) || lh_buf_puts(out, p[i].k) < 0 ||
            lh_buf_putc(out, '=') < 0 || lh_buf_puts(out, p[i].v) < 0)
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(p[i].k);
        free(p[i].v);
    }
    free(p);
    lh_buf_free(&tmp);
    return rc;
}

struct hdr {
    char *name;       /* lower-cased copy */
    const char *value;
    size_t order;     /* position in the request: keeps repeated names in order */
};

static int cmp_hdr(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends v trimmed, with runs of spaces and tabs (and folded line breaks)
 * collapsed to one space. */
static int put_trimmed(struct lh_buf *out, const char *v)
{
    int space = 0, any = 0;
    for (const char *s = v ? v : ""; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            space = 1;
            continue;
        }
        if (space && any && lh_buf_putc(out, ' ') < 0)
            return LH_ENOMEM;
        space = 0;
        any = 1;
        if (lh_buf_putc(out, *s) < 0)
            return LH_ENOMEM;
    }
    return 0;
}

/* Sorted, lower-cased header copies; *out to be freed with free_hdrs. */
static int sorted_headers(const struct lh_sigv4_request *req, struct hdr **out)
{
    struct hdr *h = calloc(req->nheaders ? req->nheaders : 1, sizeof(*h));
    if (!h)
        return LH_ENOMEM;
    for (size_t i = 0; i < req->nheaders; i++) {
        h[i].name = strdup(req->headers[i].name);
        if (!h[i].name) {
            for (size_t j = 0; j < i; j++)
                free(h[j].name);
            free(h);
            return LH_ENOMEM;
        }
        for (char *c = h[i].name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        h[i].value = req->headers[i].value;
        h[i].order = i;
    }
    qsort(h, req->nheaders, sizeof(*h), cmp_hdr);
    *out = h;
    return 0;
}

static void free_hdrs(struct hdr *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(h[i].name);
    free(h);
}

static int signed_header_list(struct lh_buf *out, const struct hdr *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(h[i].name, h[i - 1].name) == 0)
            continue;
        if ((i && lh_buf_putc(out, ';') < 0) || lh_buf_puts(out, h[i].name) < 0)
            return LH_ENOMEM;
    }
    return 0;
}

static int canonical_request(struct lh_buf *out, const struct lh_sigv4_request *req,
                             const struct hdr *h, size_t n)
{
    if (lh_buf_puts(out, req->method) < 0 || lh_buf_putc(out, '\n') < 0 ||
        lh_sigv4_encode_path(out, req->path) < 0 || lh_buf_putc(out, '\n') < 0 ||
        lh_sigv4_canonical_query(out, req->query, req->nquery) < 0 ||
        lh_buf_putc(out, '\n') < 0)
        return LH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int cont = i && strcmp(h[i].name, h[i - 1].name) == 0;
        if (cont) {
            if (lh_buf_putc(out, ',') < 0)
                return LH_ENOMEM;
        } else {
            if ((i && lh_buf_putc(out, '\n') < 0) || lh_buf_puts(out, h[i].name) < 0 ||
                lh_buf_putc(out, ':') < 0)
                return LH_ENOMEM;
        }
        if (put_trimmed(out, h[i].value) < 0)
            return LH_ENOMEM;
    }
    if (lh_buf_puts(out, "\n\n") < 0 || signed_header_list(out, h, n) < 0 ||
        lh_buf_putc(out, '\n') < 0 || lh_buf_puts(out, req->payload_sha256) < 0)
        return LH_ENOMEM;
    return 0;
}

int lh_sigv4_canonical_request(struct lh_buf *out, const struct lh_sigv4_request *req)
{
    struct hdr *h;
    int rc = sorted_headers(req, &h);
    if (rc < 0)
        return rc;
    rc = canonical_request(out, req, h, req->nheaders);
    free_hdrs(h, req->nheaders);
    return rc;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char *out)
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n) || n != 32)
        return LH_ERR;
    return 0;
}

static int valid_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return 0;
    return 1;
}

int lh_sigv4_sign(const struct lh_sigv4_request *req, const struct lh_sigv4_creds *creds,
                  const char *amz_date, struct lh_buf *out, struct lh_buf *sts,
                  struct lh_err *err)
{
    struct lh_buf creq = LH_BUF_INIT, s2s = LH_BUF_INIT, scope = LH_BUF_INIT;
    struct lh_buf kbuf = LH_BUF_INIT;
    struct hdr *h = NULL;
    char day[9], creq_hash[65], sig_hex[65];
    unsigned char k[32], sig[32];
    int rc;

    if (!req->method || !req->payload_sha256 || !creds->access_key || !creds->secret_key ||
        !creds->region || !creds->service)
        return lh_err_set(err, LH_EINVAL, "sigv4: incomplete request or credentials");
    if (!valid_date(amz_date))
        return lh_err_set(err, LH_EINVAL, "sigv4: bad x-amz-date \"%s\"",
                          amz_date ? amz_date : "");
    memcpy(day, amz_date, 8);
    day[8] = '\0';

    rc = sorted_headers(req, &h);
    if (rc < 0)
        goto nomem;
    rc = LH_ENOMEM;
    if (canonical_request(&creq, req, h, req->nheaders) < 0)
        goto nomem;
    lh_sigv4_sha256_hex(creq.data, creq.len, creq_hash);
    if (lh_buf_printf(&scope, "%s/%s/%s/aws4_request", day, creds->region, creds->service) < 0 ||
        lh_buf_printf(&s2s, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope.data,
                      creq_hash) < 0)
        goto nomem;

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service),
     * "aws4_request") */
    if (lh_buf_printf(&kbuf, "AWS4%s", creds->secret_key) < 0)
        goto nomem;
    if (hmac(kbuf.data, kbuf.len, day, 8, k) < 0 ||
        hmac(k, 32, creds->region, strlen(creds->region), k) < 0 ||
        hmac(k, 32, creds->service, strlen(creds->service), k) < 0 ||
        hmac(k, 32, "aws4_request", 12, k) < 0 || hmac(k, 32, s2s.data, s2s.len, sig) < 0) {
        rc = lh_err_set(err, LH_ERR, "sigv4: HMAC-SHA256 failed");
        goto out;
    }
    to_hex(sig, 32, sig_hex);
    if (lh_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=",
                      creds->access_key, scope.data) < 0 ||
        signed_header_list(out, h, req->nheaders) < 0 ||
        lh_buf_printf(out, ", Signature=%s", sig_hex) < 0)
        goto nomem;
    if (sts && lh_buf_append(sts, s2s.data, s2s.len) < 0)
        goto nomem;
    rc = 0;
    goto out;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "sigv4: out of memory");
out:
    OPENSSL_cleanse(k, sizeof(k));
    if (kbuf.data)
        OPENSSL_cleanse(kbuf.data, kbuf.len);
    if (h)
        free_hdrs(h, req->nheaders);
    lh_buf_free(&creq);
    lh_buf_free(&s2s);
    lh_buf_free(&scope);
    lh_buf_free(&kbuf);
    return rc;
}
