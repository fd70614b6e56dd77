/* test_queryd_cursor.c - pagination cursors (queryd/cursor.c): round trip,
 * and refusal of forged, altered, truncated, other-tenant, other-query,
 * expired and rotated-out cursors; base64url. */
#include "../lh_test.h"
#include "../../queryd/cursor.h"

#define NOW_S 1779523574LL

static const struct lh_cursor_key key1 = { (const uint8_t *)"first-key-0123456789", 20 };
static const struct lh_cursor_key key2 = { (const uint8_t *)"second-key-0123456789", 21 };

static struct lh_cursor sample(void)
{
    struct lh_cursor c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < LH_QUERY_FP_BYTES; i++)
        c.fingerprint[i] = (uint8_t)(i * 7 + 1);
    c.issued_s = NOW_S - 10;
    c.start_ns = 1779500000000000000LL;
    c.end_ns = 0;
    c.pos.ts_ns = 1779523000123456789LL;
    snprintf(c.pos.id, sizeof(c.pos.id), "0123456789abcdef0123456789abcdef-42");
    return c;
}

TEST(queryd_cursor_round_trip)
{
    struct lh_cursor c = sample(), d;
    char text[LH_CURSOR_TEXT_MAX + 1];
    int n = lh_cursor_encode(&c, "acme", &key1, text, sizeof(text));
    REQUIRE(n > 0);
    CHECK_INT(strlen(text), ==, n);
    CHECK_INT(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), ==,
              n);
    REQUIRE_INT(lh_cursor_decode(text, "acme", &key1, 1, c.fingerprint, NOW_S, 3600, &d), ==,
                LH_CURSOR_OK);
    CHECK_INT(d.issued_s, ==, c.issued_s);
    CHECK_INT(d.start_ns, ==, c.start_ns);
    CHECK_INT(d.end_ns, ==, 0);
    CHECK_INT(d.pos.ts_ns, ==, c.pos.ts_ns);
    CHECK_STR(d.pos.id, c.pos.id);
    /* the longest id fits */
    memset(c.pos.id, 'z', LH_STORE_ID_MAX);
    c.pos.id[LH_STORE_ID_MAX] = 0;
    REQUIRE(lh_cursor_encode(&c, "acme", &key1, text, sizeof(text)) > 0);
    REQUIRE_INT(lh_cursor_decode(text, "acme", &key1, 1, c.fingerprint, NOW_S, 0, &d), ==,
                LH_CURSOR_OK);
    CHECK_STR(d.pos.id, c.pos.id);
    CHECK_INT(lh_cursor_encode(&c, "acme", &key1, text, 100), ==, LH_ETOOBIG);
}

TEST(queryd_cursor_refusals)
{
    struct lh_cursor c = sample(), d;
    char text[LH_CURSOR_TEXT_MAX + 1], bad[LH_CURSOR_TEXT_MAX + 1];
    REQUIRE(lh_cursor_encode(&c, "acme", &key1, text, sizeof(text)) > 0);
    /* Every single changed character of the text is refused. */
    size_t n = strlen(text), refused = 0;
    for (size_t i = 0; i < n; i++) {
        strcpy(bad, text);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        refused += lh_cursor_decode(bad, "acme", &key1, 1, c.fingerprint, NOW_S, 3600, &d) ==
                   LH_CURSOR_BAD;
    }
    CHECK_INT(refused, ==, n);
    /* truncated, extended, garbage, empty, the seed's example */
    strcpy(bad, text);
    bad[n - 3] = 0;
    CHECK_INT(lh_cursor_decode(bad, "acme", &key1, 1, c.fingerprint, NOW_S, 3600, &d), ==,
              LH_CURSOR_BAD);
    snprintf(bad, sizeof(bad), "%sAAAA", text);
    CHECK_INT(lh_cursor_decode(bad, "acme", &key1, 1, c.fingerprint, NOW_S, 3600, &d), ==,
              LH_CURSOR_BAD);
    const char *junk[] = { "", "!!!!", "c3Bvb2xfMTAwX2V2dF85OWE=", "c3Bvb2xfMTAwX2V2dF85OWE",
                           "{\"ts\":1}" };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        CHECK_INT(lh_cursor_decode(junk[i], "acme", &key1, 1, c.fingerprint, NOW_S, 3600, &d),
                  ==, LH_CURSOR_BAD);
    /* signed with a key the server does not hold */
    REQUIRE(lh_cursor_encode(&c, "acme", &key2, bad, sizeof(bad)) > 0);
    CHECK_INT(lh_cursor_decode(bad, "acme", &key1, 1, c.fingerprint, NOW_S, 3600, &d), ==,
              LH_CURSOR_BAD);
    /* ... unless it is a previous key still accepted (rotation) */
    struct lh_cursor_key both[2] = { key1, key2 };
    CHECK_INT(lh_cursor_decode(bad, "acme", both, 2, c.fingerprint, NOW_S, 3600, &d), ==,
              LH_CURSOR_OK);
    /* another tenant's */
    CHECK_INT(lh_cursor_decode(text, "globex", &key1, 1, c.fingerprint, NOW_S, 3600, &d), ==,
              LH_CURSOR_TENANT);
    /* another query's */
    uint8_t fp[LH_QUERY_FP_BYTES];
    memcpy(fp, c.fingerprint, sizeof(fp));
    fp[3] ^= 1;
    CHECK_INT(lh_cursor_decode(text, "acme", &key1, 1, fp, NOW_S, 3600, &d), ==,
              LH_CURSOR_QUERY);
    /* stale: older than the TTL; or issued in the future */
    CHECK_INT(lh_cursor_decode(text, "acme", &key1, 1, c.fingerprint, NOW_S + 3600, 3600, &d), ==,
              LH_CURSOR_EXPIRED);
    CHECK_INT(lh_cursor_decode(text, "acme", &key1, 1, c.fingerprint, NOW_S - 1000, 3600, &d), ==,
              LH_CURSOR_EXPIRED);
    CHECK_INT(lh_cursor_decode(text, "acme", &key1, 1, c.fingerprint, NOW_S + 3600, 0, &d), ==,
              LH_CURSOR_OK);
    CHECK_CONTAINS(lh_cursor_verdict_text(LH_CURSOR_TENANT), "another tenant");
}

TEST(queryd_base64url)
{
    uint8_t in[10], out[16];
    char text[32];
    for (size_t n = 0; n <= sizeof(in); n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)(0xfb + i * 37);
        size_t tl = lh_base64url_encode(in, n, text);
        CHECK_INT(tl, ==, (n * 4 + 2) / 3);
        CHECK(!strchr(text, '=') && !strchr(text, '+') && !strchr(text, '/'));
        long m = lh_base64url_decode(text, tl, out, sizeof(out));
        CHECK_INT(m, ==, n);
        CHECK(memcmp(in, out, n) == 0);
    }
    CHECK_INT(lh_base64url_decode("AB", 2, out, sizeof(out)), ==, -1);    /* bits left over */
    CHECK_INT(lh_base64url_decode("A", 1, out, sizeof(out)), ==, -1);
    CHECK_INT(lh_base64url_decode("AA==", 4, out, sizeof(out)), ==, -1);
    CHECK_INT(lh_base64url_decode("AAAAAAAA", 8, out, 5), ==, -1);       /* no room */
}
