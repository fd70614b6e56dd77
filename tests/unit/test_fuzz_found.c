/* test_fuzz_found.c - regression tests for bugs the fuzz targets
 * (tests/fuzz/) found; each input is also a crash-* seed of that target. */
#include "../lh_test.h"
#include "../../agent/format.h"
#include "../../indexer/grok.h"
#include "../../queryd/cursor.h"

#include "lh/time.h"

/* A Docker/CRI time past 2262 (or before 1677) overflowed int64 ns. */
TEST(fuzz_found_fmt_time_out_of_int64_range)
{
    int64_t ns = 0;
    CHECK_INT(lh_fmt_parse_time("4048-05-23T08:06:16Z", 20, &ns), ==, LH_EINVAL);
    CHECK_INT(lh_fmt_parse_time("9999-12-31T23:59:59.999999999Z", 30, &ns), ==, LH_EINVAL);
    CHECK_INT(lh_fmt_parse_time("0000-01-01T00:00:00Z", 20, &ns), ==, LH_EINVAL);
    CHECK_INT(lh_fmt_parse_time("2262-04-11T23:47:16Z", 20, &ns), ==, LH_EINVAL);
    CHECK_INT(ns, ==, 0);
    REQUIRE_INT(lh_fmt_parse_time("2262-04-11T23:47:15.5Z", 22, &ns), ==, 0);
    CHECK_INT(ns, ==, 9223372035LL * LH_NS_PER_SEC + 500000000);
    REQUIRE_INT(lh_fmt_parse_time("1677-09-21T00:12:45Z", 20, &ns), ==, 0);
    CHECK_INT(ns, ==, -9223372035LL * LH_NS_PER_SEC);
}

/* A (validly signed) cursor issued at a time near INT64_MIN overflowed the
 * age computation. */
TEST(fuzz_found_cursor_issued_far_past)
{
    static const uint8_t k[] = "unit-test-cursor-key-0123456789";
    struct lh_cursor_key key = { k, sizeof(k) - 1 };
    struct lh_cursor c, back;
    memset(&c, 0, sizeof(c));
    char text[LH_CURSOR_TEXT_MAX];
    const int64_t now = 1779523574;
    c.issued_s = INT64_MIN + 5;
    REQUIRE(lh_cursor_encode(&c, "acme", &key, text, sizeof(text)) > 0);
    CHECK_INT(lh_cursor_decode(text, "acme", &key, 1, c.fingerprint, now, 3600, &back), ==,
              LH_CURSOR_EXPIRED);
    c.issued_s = now - 3600;   /* exactly the TTL: still valid */
    REQUIRE(lh_cursor_encode(&c, "acme", &key, text, sizeof(text)) > 0);
    CHECK_INT(lh_cursor_decode(text, "acme", &key, 1, c.fingerprint, now, 3600, &back), ==,
              LH_CURSOR_OK);
    c.issued_s = now - 3601;
    REQUIRE(lh_cursor_encode(&c, "acme", &key, text, sizeof(text)) > 0);
    CHECK_INT(lh_cursor_decode(text, "acme", &key, 1, c.fingerprint, now, 3600, &back), ==,
              LH_CURSOR_EXPIRED);
}

/* Definitions that repeat a reference at every level expanded exponentially
 * (2^40 bytes here) before PCRE2 saw them. */
TEST(fuzz_found_grok_expansion_is_bounded)
{
    char defs[2048];
    size_t n = 0;
    n += (size_t)snprintf(defs + n, sizeof(defs) - n, "L0 x\n");
    for (int i = 1; i <= 40; i++)
        n += (size_t)snprintf(defs + n, sizeof(defs) - n, "L%d %%{L%d}%%{L%d}\n", i, i - 1,
                              i - 1);
    const char *top[] = { "L40" };
    struct lh_grok *g = NULL;
    struct lh_err err = { 0 };
    CHECK_INT(lh_grok_create_from_text("laughs", defs, top, 1, &g, &err), ==, LH_EINVAL);
    CHECK(g == NULL);
    CHECK_CONTAINS(err.msg, "expands to more than 65536 bytes");
    /* 2^12 bytes is fine. */
    top[0] = "L12";
    REQUIRE_INT(lh_grok_create_from_text("laughs", defs, top, 1, &g, &err), ==, 0);
    CHECK_INT(strlen(lh_grok_expansion(g, "L12")), >, 4096);
    lh_grok_destroy(g);
}
