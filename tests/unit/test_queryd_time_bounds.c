/* test_queryd_time_bounds.c - time_range values near the ends of int64
 * (queryd/query.c): refused with a 400-style error naming the field instead
 * of overflowing while the default range, the buckets and the span are
 * computed (UBSan runs these); the widest range still parses and its
 * buckets count right, for search, aggregate and the tail's query object. */
#include "../lh_test.h"
#include "../../queryd/query.h"
#include "../../queryd/queryd.h"

#include <stdio.h>

#include "lh/time.h"

#define NOW (1779523574LL * LH_NS_PER_SEC)   /* 2026-05-23T08:06:14Z */

static int parse(const char *body, int aggregate, struct lh_query *q, struct lh_query_error *e)
{
    struct lh_query_limits l;
    lh_query_limits_default(&l);
    return lh_query_parse(body, strlen(body), aggregate, &l, NOW, q, e);
}

TEST(queryd_time_range_extremes_refused)
{
    static const struct { const char *body; const char *field; } cases[] = {
        { "{\"query\":{\"time_range\":{\"end\":\"-9223372036854775807\"}}}",
          "query.time_range.end" },
        { "{\"query\":{\"time_range\":{\"end\":-9223372036}}}", "query.time_range.end" },
        { "{\"query\":{\"time_range\":{\"start\":9223372036854775807}}}",
          "query.time_range.start" },
        { "{\"query\":{\"time_range\":{\"start\":\"2262-04-11T23:47:16Z\"}}}",
          "query.time_range.start" },
        { "{\"query\":{\"time_range\":{\"start\":\"1899-12-31T23:59:59.999Z\"}}}",
          "query.time_range.start" },
        { "{\"query\":{\"time_range\":{\"end\":\"2150-01-01T00:00:00Z\"}}}",
          "query.time_range.end" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int agg = 0; agg < 2; agg++) {
            struct lh_query q;
            struct lh_query_error e;
            int rc = parse(cases[i].body, agg, &q, &e);
            if (rc != LH_EINVAL)
                fprintf(stderr, "    case %zu (%s): rc %d\n", i, agg ? "aggregate" : "search",
                        rc);
            CHECK_INT(rc, ==, LH_EINVAL);
            CHECK_STR(e.field, cases[i].field);
            CHECK_CONTAINS(e.message, "out of range (years 1900 to 2149)");
        }
    }
    /* the tail's ?query= object goes through the same parser */
    struct lh_query_limits l;
    lh_query_limits_default(&l);
    struct lh_query q;
    struct lh_query_error e;
    const char *obj = "{\"time_range\":{\"end\":-9223372036854775807}}";
    CHECK_INT(lh_query_parse_object(obj, strlen(obj), "query", &l, NOW, &q, &e), ==, LH_EINVAL);
    CHECK_STR(e.field, "query.time_range.end");
}

TEST(queryd_time_range_bounds_accepted)
{
    struct lh_query q;
    struct lh_query_error e;
    /* the earliest end: the default 24 h start lies before it, still in range */
    REQUIRE_INT(parse("{\"query\":{\"time_range\":{\"end\":\"1900-01-01T00:00:00Z\"}}}", 1, &q,
                      &e), ==, 0);
    CHECK(q.start_ns == LH_QUERY_TIME_MIN_NS - 86400 * LH_NS_PER_SEC);
    CHECK(q.end_ns == LH_QUERY_TIME_MIN_NS);
    lh_query_free(&q);
    /* the latest start, open end: aggregate buckets up to now's are empty, not overflowed */
    REQUIRE_INT(parse("{\"query\":{\"time_range\":{\"start\":\"2149-12-31T23:59:59Z\"}},"
                      "\"interval\":\"366d\"}", 1, &q, &e), ==, 0);
    CHECK(q.start_ns == LH_QUERY_TIME_MAX_NS - LH_NS_PER_SEC);
    CHECK(q.end_ns > q.start_ns);
    lh_query_free(&q);
    REQUIRE_INT(parse("{\"query\":{\"time_range\":{\"start\":\"1900-01-01T00:00:00Z\","
                      "\"end\":\"2149-12-31T23:59:59Z\"}}}", 1, &q, &e), ==, 0);
    CHECK(q.end_ns - q.start_ns > 0);   /* the span itself fits */
    CHECK_INT(q.interval_ns, ==, 30LL * 86400 * LH_NS_PER_SEC);   /* the widest auto bucket */
    lh_query_free(&q);
}

/* limits.default_range is bounded so that end - default_range stays in range
 * for the earliest end; tail.max_duration is a duration key. */
TEST(queryd_config_bounds_default_range_and_tail_duration)
{
    static const struct { const char *extra; int ok; const char *why; } cases[] = {
        { "limits: { default_range: 3650d }\n", 1, "" },
        { "limits: { default_range: 3651d }\n", 0, "limits.default_range: at most 3650d" },
        { "tail: { max_duration: 5m }\n", 1, "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/q%zu.yaml", lh_test_tmpdir(), i);
        FILE *f = fopen(path, "w");
        REQUIRE(f != NULL);
        fprintf(f, "tenants: [ { name: demo, tokens: [token-0123456789] } ]\n%s", cases[i].extra);
        fclose(f);
        struct lh_queryd_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        struct lh_err err = { 0 };
        int rc = lh_daemon_load_config(&lh_queryd_ops, path, &cfg, &err);
        CHECK_INT(rc == 0, ==, cases[i].ok);
        if (rc == 0)
            lh_conf_free(lh_queryd_opts, &cfg);
        else
            CHECK_CONTAINS(err.msg, cases[i].why);
    }
}
