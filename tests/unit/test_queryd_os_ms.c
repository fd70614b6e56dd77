/* test_queryd_os_ms.c - OpenSearch indices that map timestamp as date in
 * milliseconds (the indexer's `template.date_nanos: false`) answer as the
 * date_nanos ones. The search body (queryd/os_dsl.c) sorts timestamps with
 * numeric_type date_nanos, so that a cursor's
 * position in nanoseconds means the same on indices that map timestamp as
 * date (milliseconds, the indexer's `template.date_nanos: false`) and as
 * date_nanos. Without it OpenSearch reads search_after's nanoseconds as
 * milliseconds on a ms index (an instant far in the future) and every page
 * of a walk is its first one. And a time bound inside a millisecond is
 * asked as gt / lte (OpenSearch cuts bounds to the millisecond there: gte
 * and lt would take in or leave out that millisecond's events).
 * tests/integration/query_conformance walks and queries both kinds of
 * indices on the real OpenSearch. */
#include "../lh_test.h"
#include "../../queryd/os_dsl.h"

#include <jansson.h>

#include "lh/time.h"

static json_t *sort_key(json_t *body, size_t i, const char *field)
{
    return json_object_get(json_array_get(json_object_get(body, "sort"), i), field);
}

TEST(queryd_dsl_sorts_timestamps_in_nanoseconds_on_any_mapping)
{
    struct lh_query_limits lim;
    lh_query_limits_default(&lim);
    struct lh_query q;
    struct lh_query_error qe;
    REQUIRE_INT(lh_query_parse("{}", 2, 0, &lim, 1779523574LL * LH_NS_PER_SEC, &q, &qe), ==, 0);
    /* the last hit of a page from a ms index: a whole millisecond, in ns */
    struct lh_store_pos pos = { .ts_ns = 1779523574123000000LL };
    snprintf(pos.id, sizeof(pos.id), "c-00042");
    for (int page = 0; page < 2; page++) {
        struct lh_bquery bq = { .tenant = "acme", .q = &q, .start_ns = q.start_ns,
                                .end_ns = q.end_ns, .limit = 100,
                                .after = page ? &pos : NULL };
        struct lh_buf b = LH_BUF_INIT;
        struct lh_err err = { 0 };
        REQUIRE_INT(lh_osq_search_body(&bq, &b, &err), ==, 0);
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        lh_buf_free(&b);
        REQUIRE(j);
        CHECK_INT(json_array_size(json_object_get(j, "sort")), ==, 2);
        json_t *ts = sort_key(j, 0, "timestamp");
        CHECK_STR(json_string_value(json_object_get(ts, "order")), "desc");
        CHECK_STR(json_string_value(json_object_get(ts, "numeric_type")), "date_nanos");
        CHECK_STR(json_string_value(json_object_get(sort_key(j, 1, "id"), "order")), "desc");
        json_t *after = json_object_get(j, "search_after");
        if (page) {
            /* in the unit of the sort values: nanoseconds */
            CHECK_INT(json_integer_value(json_array_get(after, 0)), ==, pos.ts_ns);
            CHECK_STR(json_string_value(json_array_get(after, 1)), "c-00042");
        } else {
            CHECK(after == NULL);
        }
        json_decref(j);
    }
    lh_query_free(&q);
}

/* The range on timestamp of filter clause i, as "op value" pairs. */
static void range_of(json_t *body, size_t i, char *out, size_t size)
{
    json_t *r = json_object_get(json_object_get(json_array_get(
        json_object_get(json_object_get(json_object_get(body, "query"), "bool"), "filter"), i),
        "range"), "timestamp");
    size_t o = 0;
    out[0] = '\0';
    const char *k;
    json_t *v;
    json_object_foreach(r, k, v) {
        if (strcmp(k, "format") != 0 && o < size)
            o += (size_t)snprintf(out + o, size - o, "%s%s %s", o ? " " : "", k,
                                  json_string_value(v));
    }
}

TEST(queryd_dsl_time_bounds_inside_a_millisecond)
{
    static const struct {
        const char *filters, *range, *clause;
    } c[] = {
        /* whole milliseconds: as asked */
        { "{\"field\":\"timestamp\",\"operator\":\"GTE\",\"value\":\"2026-05-23T08:00:00.5Z\"}",
          "gte 2026-05-23T07:00:00.000000000Z lt 2026-05-23T09:00:00.123000000Z",
          "gte 2026-05-23T08:00:00.500000000Z" },
        /* inside one: gte v as gt v-1ns, lt v as lte v-1ns; gt and lte stay */
        { "{\"field\":\"timestamp\",\"operator\":\"LT\",\"value\":\"2026-05-23T08:00:00.000000001Z\"}",
          "gt 2026-05-23T07:00:00.000000000Z lte 2026-05-23T09:00:00.123456788Z",
          "lte 2026-05-23T08:00:00.000000000Z" },
        { "{\"field\":\"timestamp\",\"operator\":\"GT\",\"value\":\"2026-05-23T08:00:00.000000001Z\"}",
          NULL, "gt 2026-05-23T08:00:00.000000001Z" },
        { "{\"field\":\"timestamp\",\"operator\":\"EQUALS\",\"value\":\"2026-05-23T08:00:00.0000005Z\"}",
          NULL, "gt 2026-05-23T08:00:00.000000499Z lte 2026-05-23T08:00:00.000000500Z" },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char req[600];
        snprintf(req, sizeof(req), "{\"query\":{\"time_range\":{\"start\":\"%s\",\"end\":"
                 "\"%s\"},\"filters\":[%s]}}", i == 1 ? "2026-05-23T07:00:00.000000001Z"
                                                   : "2026-05-23T07:00:00Z",
                 i == 1 ? "2026-05-23T09:00:00.123456789Z" : "2026-05-23T09:00:00.123Z",
                 c[i].filters);
        struct lh_query_limits lim;
        lh_query_limits_default(&lim);
        struct lh_query q;
        struct lh_query_error qe;
        REQUIRE_INT(lh_query_parse(req, strlen(req), 0, &lim, 1779523574LL * LH_NS_PER_SEC, &q,
                                   &qe), ==, 0);
        struct lh_bquery bq = { .tenant = "acme", .q = &q, .start_ns = q.start_ns,
                                .end_ns = q.end_ns, .limit = 10 };
        struct lh_buf b = LH_BUF_INIT;
        struct lh_err err = { 0 };
        REQUIRE_INT(lh_osq_search_body(&bq, &b, &err), ==, 0);
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        lh_buf_free(&b);
        lh_query_free(&q);
        REQUIRE(j);
        char got[200];
        if (c[i].range) {
            range_of(j, 1, got, sizeof(got));
            CHECK_STR(got, c[i].range);
        }
        range_of(j, 2, got, sizeof(got));
        CHECK_STR(got, c[i].clause);
        json_decref(j);
    }
}
