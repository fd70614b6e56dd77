/* Unit tests for backoff.c: bounds, cap, spread of draws, Retry-After. */
#include "../lh_test.h"
#include "lh/backoff.h"
#include "lh/time.h"

TEST(backoff_ceiling_doubles_to_the_cap)
{
    struct lh_backoff b;
    lh_backoff_init(&b, 100, 30000);
    uint32_t want[] = { 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000 };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_INT(lh_backoff_ceiling_ms(&b), ==, want[i]);
        uint32_t d = lh_backoff_next_ms(&b);
        CHECK_INT(d, <=, want[i]);
    }
    CHECK_INT(b.attempt, ==, 11);
    lh_backoff_reset(&b);
    CHECK_INT(b.attempt, ==, 0);
    CHECK_INT(lh_backoff_ceiling_ms(&b), ==, 100);
}

TEST(backoff_large_attempts_do_not_overflow)
{
    struct lh_backoff b;
    lh_backoff_init(&b, UINT32_MAX, UINT32_MAX);
    for (uint32_t a = 0; a < 200; a++) {
        b.attempt = a;
        CHECK_INT(lh_backoff_ceiling_ms(&b), ==, UINT32_MAX);
    }
    lh_backoff_init(&b, 1000, 60000);
    uint32_t probes[] = { 31, 32, 33, 63, 64, 65, 1000, UINT32_MAX - 1, UINT32_MAX };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        b.attempt = probes[i];
        CHECK_INT(lh_backoff_ceiling_ms(&b), ==, 60000);
        CHECK_INT(lh_backoff_next_ms(&b), <=, 60000);
    }
    CHECK_INT(b.attempt, ==, UINT32_MAX);            /* saturates */
    lh_backoff_init(&b, 0, 60000);                   /* base 0: never waits */
    b.attempt = 40;
    CHECK_INT(lh_backoff_next_ms(&b), ==, 0);
    lh_backoff_init(&b, 500, 200);                   /* cap below base */
    CHECK_INT(lh_backoff_next_ms(&b), <=, 200);
}

/* Full jitter: draws cover [0, ceiling] evenly, not clustered at the top. */
TEST(backoff_draws_spread_over_the_range)
{
    struct lh_backoff b;
    lh_backoff_init(&b, 1000, 1000);
    enum { N = 100000, BINS = 10 };
    unsigned bins[BINS] = {0};
    uint32_t lo = UINT32_MAX, hi = 0;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        uint32_t d = lh_backoff_next_ms(&b);
        REQUIRE(d <= 1000);
        bins[d * BINS / 1001]++;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
    }
    CHECK_INT(lo, <=, 2);
    CHECK_INT(hi, >=, 998);
    CHECK(sum / N > 480 && sum / N < 520);           /* mean of U[0,1000] is 500 */
    for (int i = 0; i < BINS; i++)
        if (bins[i] < N / BINS * 9 / 10 || bins[i] > N / BINS * 11 / 10)
            lh_test_fail(__FILE__, __LINE__, "bin %d holds %u of %d", i, bins[i], N);
    /* Two structs draw different sequences (independent seeds). */
    struct lh_backoff x, y;
    lh_backoff_init(&x, 1000, 1000000);
    lh_backoff_init(&y, 1000, 1000000);
    int same = 0;
    for (int i = 0; i < 20; i++)
        same += lh_backoff_next_ms(&x) == lh_backoff_next_ms(&y);
    CHECK_INT(same, <, 5);
}

TEST(backoff_retry_after_seconds_and_dates)
{
    const int64_t now = INT64_C(784111777) * LH_NS_PER_SEC;   /* 1994-11-06T08:49:37Z */
    uint64_t ms = 0;
    struct lh_err e = {0};
    CHECK(lh_backoff_parse_retry_after("120", 3, now, &ms, NULL) == 0 && ms == 120000);
    CHECK(lh_backoff_parse_retry_after(" 0\t", 3, now, &ms, NULL) == 0 && ms == 0);
    CHECK(lh_backoff_parse_retry_after("99999999999999999999999", 23, now, &ms, NULL) == 0);
    CHECK(ms >= UINT64_C(18000000000000000000));     /* saturated, not wrapped */
    const char *d = "Sun, 06 Nov 1994 08:51:07 GMT";  /* 90 s after now */
    CHECK(lh_backoff_parse_retry_after(d, strlen(d), now, &ms, NULL) == 0 && ms == 90000);
    CHECK(lh_backoff_parse_retry_after(d, strlen(d), now + 500 * LH_NS_PER_MS, &ms, NULL) == 0);
    CHECK_INT(ms, ==, 89500);
    d = "Sun, 06 Nov 1994 08:00:00 GMT";              /* in the past */
    CHECK(lh_backoff_parse_retry_after(d, strlen(d), now, &ms, NULL) == 0 && ms == 0);
    d = "Sunday, 06-Nov-94 08:50:37 GMT";
    CHECK(lh_backoff_parse_retry_after(d, strlen(d), now, &ms, NULL) == 0 && ms == 60000);
    static const char *const bad[] = { "", "  ", "-5", "1.5", "12s", "soon",
                                       "Sun, 06 Nov 1994 08:51:07 PST" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 7;
        if (lh_backoff_parse_retry_after(bad[i], strlen(bad[i]), now, &ms, &e) != LH_EINVAL ||
            ms != 7)
            lh_test_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
        else
            CHECK_CONTAINS(e.msg, "Retry-After");
    }
}

TEST(backoff_next_retry_honours_the_server)
{
    const int64_t now = INT64_C(1767225600) * LH_NS_PER_SEC;
    struct lh_backoff b;
    lh_backoff_init(&b, 100, 1000);
    /* Server asks for more than our ceiling: its value wins. */
    CHECK_INT(lh_backoff_next_retry_ms(&b, "30", 2, now), ==, 30000);
    CHECK_INT(b.attempt, ==, 1);
    const char *d = "Thu, 01 Jan 2026 00:00:45 GMT";
    CHECK_INT(lh_backoff_next_retry_ms(&b, d, strlen(d), now), ==, 45000);
    /* Server asks for 0: our jittered delay stands (never below it). */
    int above = 0;
    for (int i = 0; i < 200; i++) {
        lh_backoff_reset(&b);
        b.attempt = 5;                                 /* ceiling 1000 (capped) */
        uint64_t v = lh_backoff_next_retry_ms(&b, "0", 1, now);
        CHECK_INT(v, <=, 1000);
        above += v > 0;
    }
    CHECK_INT(above, >, 150);
    /* Absent or garbage Retry-After: plain jitter. */
    lh_backoff_reset(&b);
    CHECK_INT(lh_backoff_next_retry_ms(&b, NULL, 0, now), <=, 100);
    CHECK_INT(lh_backoff_next_retry_ms(&b, "soon", 4, now), <=, 200);
    CHECK_INT(b.attempt, ==, 2);
}
