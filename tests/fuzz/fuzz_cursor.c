/* fuzz_cursor.c - libFuzzer target: queryd's pagination cursors
 * (queryd/cursor.c), as a search decodes pagination.cursor.
 *
 * Input byte 0 picks how the rest is used:
 *   0  the cursor text as a client sends it (forged: must be refused);
 *   1  raw cursor bytes, signed with the server key by this target and
 *      written as base64url, so that the parts after the MAC check are
 *      reached (byte 1 of them set to the right version and tenant tag
 *      when the low bit of the next byte says so);
 *   2  the fields of a cursor (times, position): encoded with
 *      lh_cursor_encode and decoded back, which must give them again
 *      (or "expired" for an old or future issue time);
 *   3  base64url text decoded alone (length and alphabet rules). */
#include "fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "../../queryd/cursor.h"

#define NOW_S INT64_C(1779523574)
#define TTL_S 3600

static const uint8_t key1[] = "fuzz-cursor-key-number-one";
static const uint8_t key2[] = "fuzz-cursor-key-number-two";
static const struct lh_cursor_key keys[2] = { { key1, sizeof(key1) - 1 },
                                              { key2, sizeof(key2) - 1 } };
static const uint8_t fp[LH_QUERY_FP_BYTES] = { 0xf0, 0x0d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                               11, 12, 13, 14 };
static const char tenant[] = "acme";

static int64_t get64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static void decode_text(const char *text)
{
    struct lh_cursor c;
    enum lh_cursor_verdict v = lh_cursor_decode(text, tenant, keys, 2, fp, NOW_S, TTL_S, &c);
    FUZZ_CHECK(v >= LH_CURSOR_OK && v <= LH_CURSOR_EXPIRED, "verdict %d", (int)v);
    fuzz_touch_str(lh_cursor_verdict_text(v));
    if (v == LH_CURSOR_OK)
        FUZZ_CHECK(memchr(c.pos.id, 0, sizeof(c.pos.id)), "position id not terminated");
}

/* Signs raw[0..n) as the server would (HMAC-SHA256, first 16 bytes). */
static void sign_and_decode(const uint8_t *data, size_t n)
{
    uint8_t raw[512];
    if (n < 1 || n + 16 > sizeof(raw))
        return;
    memcpy(raw, data + 1, n - 1);
    n--;
    if ((data[0] & 1) && n >= 9) {   /* the right version and tenant tag */
        uint8_t md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)tenant, strlen(tenant), md);
        raw[0] = 1;
        memcpy(raw + 1, md, 8);
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_sha256(), keys[1].key, (int)keys[1].len, raw, n, md, &mdlen);
    memcpy(raw + n, md, 16);
    char text[4 * sizeof(raw) / 3 + 8];
    lh_base64url_encode(raw, n + 16, text);
    decode_text(text);
}

static void roundtrip(const uint8_t *data, size_t n)
{
    if (n < 32)
        return;
    struct lh_cursor c;
    memset(&c, 0, sizeof(c));
    memcpy(c.fingerprint, fp, sizeof(fp));
    c.issued_s = get64(data);
    c.start_ns = get64(data + 8);
    c.end_ns = get64(data + 16);
    c.pos.ts_ns = get64(data + 24);
    size_t idn = n - 32 < LH_STORE_ID_MAX ? n - 32 : LH_STORE_ID_MAX;
    memcpy(c.pos.id, data + 32, idn);
    c.pos.id[idn] = '\0';
    char text[LH_CURSOR_TEXT_MAX];
    int len = lh_cursor_encode(&c, tenant, &keys[0], text, sizeof(text));
    FUZZ_CHECK(len > 0 && (size_t)len < sizeof(text) && strlen(text) == (size_t)len,
               "encode returned %d", len);
    struct lh_cursor back;
    enum lh_cursor_verdict v = lh_cursor_decode(text, tenant, keys, 2, fp, NOW_S, TTL_S, &back);
    int fresh = c.issued_s <= NOW_S + 300 && c.issued_s >= NOW_S - TTL_S;
    FUZZ_CHECK(v == (fresh ? LH_CURSOR_OK : LH_CURSOR_EXPIRED),
               "verdict %d for a cursor issued at %lld", (int)v, (long long)c.issued_s);
    if (v == LH_CURSOR_OK)
        FUZZ_CHECK(back.issued_s == c.issued_s && back.start_ns == c.start_ns &&
                       back.end_ns == c.end_ns && back.pos.ts_ns == c.pos.ts_ns &&
                       strcmp(back.pos.id, c.pos.id) == 0,
                   "decoded cursor differs");
    v = lh_cursor_decode(text, "other-tenant", keys, 2, fp, NOW_S, TTL_S, &back);
    FUZZ_CHECK(v == LH_CURSOR_TENANT, "another tenant's cursor: verdict %d", (int)v);
    v = lh_cursor_decode(text, tenant, keys + 1, 1, fp, NOW_S, TTL_S, &back);
    FUZZ_CHECK(v == LH_CURSOR_BAD, "a cursor under an unknown key: verdict %d", (int)v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0: {
        char *text = fuzz_strndup(p, n);
        decode_text(text);
        free(text);
        break;
    }
    case 1:
        sign_and_decode(p, n);
        break;
    case 2:
        roundtrip(p, n);
        break;
    case 3: {
        uint8_t out[64];
        long r = lh_base64url_decode((const char *)p, n, out, sizeof(out));
        FUZZ_CHECK(r >= -1 && r <= (long)sizeof(out), "decode returned %ld", r);
        if (r >= 0) {   /* what decodes encodes back to the same text */
            char again[4 * sizeof(out) / 3 + 8];
            size_t l = lh_base64url_encode(out, (size_t)r, again);
            FUZZ_CHECK(l == n && memcmp(again, p, n) == 0, "base64url does not round-trip");
        }
        break;
    }
    }
    return 0;
}
