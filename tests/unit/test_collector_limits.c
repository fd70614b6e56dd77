/* Unit tests for the collector's idempotency cache and rate limiter. */
#include "../lh_test.h"
#include "../../collector/dedupe.h"
#include "../../collector/ratelimit.h"

#define SEC 1000000000LL

static void uuid_of(uint8_t u[16], unsigned i)
{
    memset(u, 0, 16);
    memcpy(u, &i, sizeof(i));
}

TEST(dedupe_states_and_window)
{
    struct lh_dedupe *d = lh_dedupe_create(100, 10 * SEC);
    REQUIRE(d);
    uint8_t u[16];
    struct lh_dedupe_seen seen = { 0 }, done = { 42, 7, 9 };
    uuid_of(u, 1);
    CHECK_INT(lh_dedupe_begin(d, "a", u, 0, &seen), ==, LH_DEDUPE_NEW);
    CHECK_INT(lh_dedupe_begin(d, "a", u, 1, &seen), ==, LH_DEDUPE_IN_FLIGHT);
    CHECK_INT(lh_dedupe_begin(d, "b", u, 1, &seen), ==, LH_DEDUPE_NEW);   /* other tenant */
    lh_dedupe_end(d, "a", u, 1, &done, 2 * SEC);
    CHECK_INT(lh_dedupe_begin(d, "a", u, 3 * SEC, &seen), ==, LH_DEDUPE_DONE);
    /* what the acknowledged batch left: its count and both digests */
    CHECK_INT(seen.accepted, ==, 42);
    CHECK_INT(seen.wire, ==, 7);
    CHECK_INT(seen.content, ==, 9);
    /* Past the window the batch is new again. */
    CHECK_INT(lh_dedupe_begin(d, "a", u, 13 * SEC, &seen), ==, LH_DEDUPE_NEW);
    /* A failed batch is forgotten at once, so its retry is handled. */
    uuid_of(u, 2);
    CHECK_INT(lh_dedupe_begin(d, "a", u, 14 * SEC, &seen), ==, LH_DEDUPE_NEW);
    lh_dedupe_end(d, "a", u, 0, NULL, 14 * SEC);
    CHECK_INT(lh_dedupe_begin(d, "a", u, 14 * SEC, &seen), ==, LH_DEDUPE_NEW);
    lh_dedupe_destroy(d);
    /* Disabled cache: always new. */
    CHECK_INT(lh_dedupe_begin(NULL, "a", u, 0, &seen), ==, LH_DEDUPE_NEW);
}

TEST(dedupe_bounded_and_consistent_under_churn)
{
    const size_t cap = 1000;
    struct lh_dedupe *d = lh_dedupe_create(cap, 1000 * SEC);
    REQUIRE(d);
    uint8_t u[16];
    struct lh_dedupe_seen seen = { 0 };
    for (unsigned i = 0; i < 20000; i++) {
        uuid_of(u, i);
        REQUIRE(lh_dedupe_begin(d, "t", u, i, &seen) == LH_DEDUPE_NEW);
        struct lh_dedupe_seen s = { i, i, i };
        lh_dedupe_end(d, "t", u, i % 7 != 0, &s, i);   /* every 7th fails */
        CHECK(lh_dedupe_size(d) <= cap);
    }
    /* The most recent successful batches are remembered exactly. */
    for (unsigned i = 20000 - 500; i < 20000; i++) {
        uuid_of(u, i);
        enum lh_dedupe_state st = lh_dedupe_begin(d, "t", u, 20000, &seen);
        if (i % 7 != 0) {
            CHECK_INT(st, ==, LH_DEDUPE_DONE);
            CHECK_INT(seen.accepted, ==, i);
        } else {
            CHECK_INT(st, ==, LH_DEDUPE_NEW);
            lh_dedupe_end(d, "t", u, 0, NULL, 20000);
        }
    }
    /* The oldest are gone. */
    uuid_of(u, 1);
    CHECK_INT(lh_dedupe_begin(d, "t", u, 20000, &seen), ==, LH_DEDUPE_NEW);
    lh_dedupe_destroy(d);
}

TEST(dedupe_digest_tells_bodies_and_encodings_apart)
{
    const char x[] = "{\"logs\":[{\"message\":\"a\"}]}";
    const char y[] = "{\"logs\":[{\"message\":\"b\"}]}";
    uint64_t dx = lh_dedupe_digest(x, sizeof(x) - 1, 0);
    CHECK(dx == lh_dedupe_digest(x, sizeof(x) - 1, 0));        /* a retry: same digest */
    CHECK(dx != lh_dedupe_digest(y, sizeof(y) - 1, 0));        /* one byte differs */
    CHECK(dx != lh_dedupe_digest(x, sizeof(x) - 2, 0));        /* a prefix */
    CHECK(dx != lh_dedupe_digest(x, sizeof(x) - 1, 1));        /* another encoding */
    CHECK(lh_dedupe_digest("", 0, 0) != lh_dedupe_digest("", 0, 1));
}

TEST(ratelimit_buckets_refill_and_retry_after)
{
    /* 1000 bytes/s, 10 records/s, 2 s of burst. */
    struct lh_ratelimit *r = lh_ratelimit_create(1000, 10, 2, 10);
    REQUIRE(r);
    CHECK_INT(lh_ratelimit_take(r, "h1", 1500, 5, 0), ==, 0);
    CHECK_INT(lh_ratelimit_take(r, "h1", 400, 5, 0), ==, 0);
    /* 100 bytes left: 500 more need 400 ms. */
    int64_t w = lh_ratelimit_take(r, "h1", 500, 1, 0);
    CHECK(w >= 400 && w <= 402);
    /* Refused requests take nothing; after the wait it passes. */
    CHECK_INT(lh_ratelimit_take(r, "h1", 500, 1, 401 * 1000000LL), ==, 0);
    /* Another host has its own bucket. */
    CHECK_INT(lh_ratelimit_take(r, "h2", 2000, 20, 0), ==, 0);
    CHECK(lh_ratelimit_take(r, "h2", 1, 1, 0) > 0);
    /* Records limit alone. */
    struct lh_ratelimit *rr = lh_ratelimit_create(0, 10, 1, 10);
    REQUIRE(rr);
    CHECK_INT(lh_ratelimit_take(rr, "x", 1 << 30, 10, 0), ==, 0);
    w = lh_ratelimit_take(rr, "x", 0, 5, 0);
    CHECK(w >= 500 && w <= 501);
    /* Bigger than a whole bucket: allowed once the bucket is full, then debt. */
    CHECK_INT(lh_ratelimit_take(rr, "y", 0, 50, 0), ==, 0);
    CHECK(lh_ratelimit_take(rr, "y", 0, 1, 0) > 4000);
    lh_ratelimit_destroy(rr);
    lh_ratelimit_destroy(r);
    /* No limits configured: no limiter, everything allowed. */
    CHECK(lh_ratelimit_create(0, 0, 1, 10) == NULL);
    CHECK_INT(lh_ratelimit_take(NULL, "z", 1 << 30, 1 << 20, 0), ==, 0);
}

TEST(ratelimit_forgets_idle_hosts_within_max_keys)
{
    struct lh_ratelimit *r = lh_ratelimit_create(100, 0, 1, 50);
    REQUIRE(r);
    char key[32];
    /* 10,000 hosts, each idle long enough to be full again: the table
     * stays bounded and nobody is refused. */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "host-%d", i);
        CHECK_INT(lh_ratelimit_take(r, key, 10, 0, (int64_t)i * SEC), ==, 0);
    }
    lh_ratelimit_destroy(r);
}
