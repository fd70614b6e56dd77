/* test_fuzz_found.c - regression tests for bugs the fuzz targets
 * (tests/fuzz/) found; each input is also a crash-* seed of that target. */
#include "../lh_test.h"
#include "../../queryd/query.h"

#include "lh/time.h"

#define NOW (1779523574LL * LH_NS_PER_SEC)   /* 2026-05-23T08:06:14Z */

static int parse_query(const char *body, int aggregate, struct lh_query *q,
                       struct lh_query_error *e)
{
    struct lh_query_limits l;
    lh_query_limits_default(&l);
    return lh_query_parse(body, strlen(body), aggregate, &l, NOW, q, e);
}

/* Time ranges at the ends of int64 made the default start and the bucket
 * arithmetic overflow (signed overflow, UBSan). */
TEST(fuzz_found_query_time_range_extremes)
{
    struct lh_query q;
    struct lh_query_error e;
    static const struct {
        const char *body, *field;
    } bad[] = {
        { "{\"query\":{\"time_range\":{\"start\":-9223372036854775807,\"end\":"
          "9223372036854775807}},\"interval\":\"1s\"}", "query.time_range.start" },
        { "{\"query\":{\"time_range\":{\"end\":-9223372036854775807}}}", "query.time_range.end" },
        { "{\"query\":{\"time_range\":{\"start\":9223372036854775806}}}",
          "query.time_range.start" },
        { "{\"query\":{\"time_range\":{\"start\":\"1899-12-31T23:59:59Z\"}}}",
          "query.time_range.start" },
    };
    for (int agg = 0; agg < 2; agg++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            CHECK_INT(parse_query(bad[i].body, agg, &q, &e), ==, LH_EINVAL);
            CHECK_STR(e.field, bad[i].field);
            CHECK_CONTAINS(e.message, "outside the years 1900 to 2100");
        }
    /* The widest range allowed still works. */
    REQUIRE_INT(parse_query("{\"query\":{\"time_range\":{\"start\":\"1900-01-01T00:00:00Z\","
                            "\"end\":\"2100-01-01T00:00:00Z\"}},\"interval\":\"30d\"}", 1, &q, &e),
                ==, 0);
    CHECK_INT(q.start_ns, ==, -2208988800LL * LH_NS_PER_SEC);
    lh_query_free(&q);
    /* An end just after 1900 without a start: the default start stops at 1900. */
    REQUIRE_INT(parse_query("{\"query\":{\"time_range\":{\"end\":\"1900-01-01T01:00:00Z\"}}}", 1,
                            &q, &e), ==, 0);
    CHECK_INT(q.start_ns, ==, -2208988800LL * LH_NS_PER_SEC);
    lh_query_free(&q);
}
