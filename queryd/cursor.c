/* cursor.c - HMAC-signed pagination cursors (see cursor.h). */
#include "cursor.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "lh/digest.h"

#define VERSION 1
#define TAG_BYTES 8
#define MAC_BYTES 16
#define FIXED_BYTES (1 + TAG_BYTES + LH_QUERY_FP_BYTES + 8 + 8 + 8)
#define MAX_BYTES (FIXED_BYTES + LH_STORE_POS_BYTES + MAC_BYTES)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t lh_base64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long lh_base64url_decode(const char *in, size_t n, uint8_t *out, size_t size)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= size)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)   /* leftover bits must be zero: one text per value */
        return -1;
    return (long)o;
}

static void put64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)u;
        u >>= 8;
    }
}

static int64_t get64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static void tenant_tag(const char *tenant, uint8_t out[TAG_BYTES])
{
    uint8_t md[LH_SHA256_BYTES];
    lh_sha256(tenant, strlen(tenant), md);
    memcpy(out, md, TAG_BYTES);
}

static void mac(const struct lh_cursor_key *key, const uint8_t *data, size_t n,
                uint8_t out[MAC_BYTES])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_sha256(), key->key, (int)key->len, data, n, md, &mdlen);
    memcpy(out, md, MAC_BYTES);
}

int lh_cursor_encode(const struct lh_cursor *c, const char *tenant,
                     const struct lh_cursor_key *key, char *out, size_t size)
{
    uint8_t raw[MAX_BYTES];
    size_t n = 0;
    raw[n++] = VERSION;
    tenant_tag(tenant, raw + n);
    n += TAG_BYTES;
    memcpy(raw + n, c->fingerprint, LH_QUERY_FP_BYTES);
    n += LH_QUERY_FP_BYTES;
    put64(raw + n, c->issued_s);
    put64(raw + n + 8, c->start_ns);
    put64(raw + n + 16, c->end_ns);
    n += 24;
    n += lh_store_pos_encode(&c->pos, raw + n);
    mac(key, raw, n, raw + n);
    n += MAC_BYTES;
    if (size < (n + 2) / 3 * 4 + 1)
        return LH_ETOOBIG;
    return (int)lh_base64url_encode(raw, n, out);
}

enum lh_cursor_verdict lh_cursor_decode(const char *text, const char *tenant,
                                        const struct lh_cursor_key *keys, size_t nkeys,
                                        const uint8_t fp[LH_QUERY_FP_BYTES], int64_t now_s,
                                        int64_t ttl_s, struct lh_cursor *out)
{
    uint8_t raw[MAX_BYTES];
    size_t tl = strlen(text);
    if (tl > LH_CURSOR_TEXT_MAX)
        return LH_CURSOR_BAD;
    long n = lh_base64url_decode(text, tl, raw, sizeof(raw));
    if (n < (long)(FIXED_BYTES + MAC_BYTES + 14) || raw[0] != VERSION)
        return LH_CURSOR_BAD;
    size_t body = (size_t)n - MAC_BYTES;
    int signed_ok = 0;
    for (size_t k = 0; k < nkeys && !signed_ok; k++) {
        uint8_t m[MAC_BYTES];
        mac(&keys[k], raw, body, m);
        signed_ok = CRYPTO_memcmp(m, raw + body, MAC_BYTES) == 0;
    }
    if (!signed_ok)
        return LH_CURSOR_BAD;
    struct lh_cursor c;
    memset(&c, 0, sizeof(c));
    const uint8_t *p = raw + 1;
    uint8_t tag[TAG_BYTES];
    tenant_tag(tenant, tag);
    int other_tenant = CRYPTO_memcmp(tag, p, TAG_BYTES) != 0;
    p += TAG_BYTES;
    memcpy(c.fingerprint, p, LH_QUERY_FP_BYTES);
    p += LH_QUERY_FP_BYTES;
    c.issued_s = get64(p);
    c.start_ns = get64(p + 8);
    c.end_ns = get64(p + 16);
    p += 24;
    if (lh_store_pos_decode(p, body - (size_t)(p - raw), &c.pos, NULL) < 0)
        return LH_CURSOR_BAD;
    if (other_tenant)
        return LH_CURSOR_TENANT;
    if (memcmp(c.fingerprint, fp, LH_QUERY_FP_BYTES) != 0)
        return LH_CURSOR_QUERY;
    if (c.issued_s > now_s + 300 || (ttl_s > 0 && c.issued_s < now_s - ttl_s))
        return LH_CURSOR_EXPIRED;
    *out = c;
    return LH_CURSOR_OK;
}

const char *lh_cursor_verdict_text(enum lh_cursor_verdict v)
{
    switch (v) {
    case LH_CURSOR_OK: return "valid";
    case LH_CURSOR_BAD: return "not a cursor issued by this server (malformed or altered)";
    case LH_CURSOR_TENANT: return "the cursor belongs to another tenant";
    case LH_CURSOR_QUERY: return "the cursor belongs to another query (full_text, filters "
                                 "and time_range must stay the same while paging)";
    case LH_CURSOR_EXPIRED: return "the cursor has expired: start the search again";
    }
    return "?";
}
