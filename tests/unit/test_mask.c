/* Unit tests for mask.c: e-mail and card scanners, Luhn, PCRE2 rules. */
#include "../lh_test.h"
#include "lh/mask.h"

static struct lh_masker *default_masker(void)
{
    struct lh_mask_config cfg = { .emails = 1, .cards = 1 };
    struct lh_masker *m = NULL;
    struct lh_err err = { 0 };
    if (lh_masker_create(&cfg, &m, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "create: %s", err.msg);
    return m;
}

/* Masks s and returns a malloc'd copy of the result (s itself if unchanged). */
static char *mask(const struct lh_masker *m, const char *s, int *replaced)
{
    struct lh_buf out = LH_BUF_INIT;
    int rc = lh_mask_apply(m, s, strlen(s), &out, NULL);
    if (replaced)
        *replaced = rc;
    if (rc <= 0) {
        lh_buf_free(&out);
        return strdup(s);
    }
    return lh_buf_steal(&out);
}

static void expect(const struct lh_masker *m, const char *in, const char *want)
{
    char *got = mask(m, in, NULL);
    if (strcmp(got, want) != 0)
        lh_test_fail(__FILE__, __LINE__, "mask(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

TEST(luhn_known_numbers)
{
    CHECK(lh_luhn_valid("4111111111111111", 16));
    CHECK(lh_luhn_valid("5555-5555-5555-4444", 19));
    CHECK(lh_luhn_valid("378282246310005", 15));
    CHECK(lh_luhn_valid("6011 1111 1111 1117", 19));
    CHECK(!lh_luhn_valid("4111111111111112", 16));
    CHECK(!lh_luhn_valid("1234567812345678", 16));
    CHECK(!lh_luhn_valid("", 0));
}

TEST(mask_cards_valid_and_invalid)
{
    struct lh_masker *m = default_masker();
    REQUIRE(m);
    expect(m, "paid with 4111111111111111 ok", "paid with [CARD] ok");
    expect(m, "card=5555-5555-5555-4444;", "card=[CARD];");
    expect(m, "amex 3782 822463 10005 done", "amex [CARD] done");
    expect(m, "6011 1111 1111 1117", "[CARD]");
    expect(m, "4111111111111111", "[CARD]");
    /* Luhn fails: left alone. */
    expect(m, "paid with 4111111111111112 ok", "paid with 4111111111111112 ok");
    expect(m, "order 1234567812345678", "order 1234567812345678");
    /* Part of a longer token or a longer run of digits: not a card. */
    expect(m, "id x4111111111111111", "id x4111111111111111");
    expect(m, "41111111111111110000000", "41111111111111110000000");
    expect(m, "trace 4111111111111111abc", "trace 4111111111111111abc");
    /* A card next to other numbers keeps the other numbers. */
    expect(m, "qty 12 4111 1111 1111 1111 exp 2029", "qty 12 [CARD] exp 2029");
    expect(m, "2026-05-23 08:06:14 amount 1234", "2026-05-23 08:06:14 amount 1234");
    expect(m, "two 4111111111111111 and 5555555555554444.",
           "two [CARD] and [CARD].");
    /* Epoch timestamps are not cards, even when they pass Luhn. */
    expect(m, "ts=1779523574123456782 ms=1779523574125", "ts=1779523574123456782 ms=1779523574125");
    CHECK(lh_luhn_valid("1779523574123456782", 19));
    CHECK(lh_luhn_valid("1779523574125", 13));
    lh_masker_destroy(m);
}

TEST(mask_emails)
{
    struct lh_masker *m = default_masker();
    REQUIRE(m);
    expect(m, "user alice.smith+tag@example.co.uk logged in",
           "user [EMAIL] logged in");
    expect(m, "<bob@mail.example.com>", "<[EMAIL]>");
    expect(m, "a@b.io,c_d@e-f.org.", "[EMAIL],[EMAIL].");
    expect(m, "no address @ here", "no address @ here");
    expect(m, "host@localhost is not an address", "host@localhost is not an address");
    expect(m, "ip user@10.0.0.1", "ip user@10.0.0.1");
    expect(m, "@example.com", "@example.com");
    expect(m, "x@y.c", "x@y.c");
    lh_masker_destroy(m);
}

TEST(mask_counts_per_rule_and_both_kinds)
{
    struct lh_masker *m = default_masker();
    REQUIRE(m);
    unsigned long counts[2] = { 0, 0 };
    struct lh_buf out = LH_BUF_INIT;
    const char *s = "a@b.com paid 4111111111111111, c@d.net too";
    int rc = lh_mask_apply(m, s, strlen(s), &out, counts);
    CHECK_INT(rc, ==, 3);
    CHECK_STR(out.data, "[EMAIL] paid [CARD], [EMAIL] too");
    CHECK_INT(counts[0], ==, 2);
    CHECK_INT(counts[1], ==, 1);
    CHECK_STR(lh_masker_rule_name(m, 1), "card");
    lh_buf_free(&out);
    lh_masker_destroy(m);
}

TEST(mask_disabled_detectors_and_patterns)
{
    struct lh_mask_pattern pats[] = {
        { "ssn", "\\b\\d{3}-\\d{2}-\\d{4}\\b", "[SSN]" },
        { "bearer", "Bearer [A-Za-z0-9._-]+", NULL },
    };
    struct lh_mask_config cfg = { .emails = 0, .cards = 0,
                                  .patterns = { .items = pats, .n = 2 } };
    struct lh_masker *m = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_masker_create(&cfg, &m, &err) == 0);
    CHECK_INT(lh_masker_rule_count(m), ==, 4);
    expect(m, "ssn 123-45-6789 mail a@b.com card 4111111111111111",
           "ssn [SSN] mail a@b.com card 4111111111111111");
    expect(m, "Authorization: Bearer abc.def-123 next", "Authorization: [REDACTED] next");
    lh_masker_destroy(m);
}

TEST(mask_bad_pattern_is_a_clear_error)
{
    struct lh_mask_pattern pats[] = { { "broken", "(unclosed", NULL } };
    struct lh_mask_config cfg = { .emails = 1, .patterns = { .items = pats, .n = 1 } };
    struct lh_masker *m = NULL;
    struct lh_err err = { 0 };
    CHECK_INT(lh_masker_create(&cfg, &m, &err), ==, LH_EINVAL);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "mask pattern broken");
    CHECK_CONTAINS(err.msg, "offset");
}

TEST(mask_random_bytes_never_crash)
{
    struct lh_masker *m = default_masker();
    REQUIRE(m);
    static const char alphabet[] = "0123456789 -@.abcxyz_+\xff\xc3";
    char s[256];
    struct lh_buf out = LH_BUF_INIT, out2 = LH_BUF_INIT;
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof(s));
        for (size_t i = 0; i < n; i++)
            s[i] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        int rc = lh_mask_apply(m, s, n, &out, NULL);
        REQUIRE(rc >= 0);
        if (rc > 0) {
            /* Nothing the scanners detect may survive: masking is idempotent. */
            int again = lh_mask_apply(m, out.data, out.len, &out2, NULL);
            if (again != 0)
                lh_test_fail(__FILE__, __LINE__, "not idempotent on \"%.*s\" -> \"%s\"",
                             (int)n, s, out.data);
        }
    }
    lh_buf_free(&out);
    lh_buf_free(&out2);
    lh_masker_destroy(m);
}
