/* test_queryd_os_sort.c - the OpenSearch search body (queryd/os_dsl.c)
 * sorts timestamps with numeric_type date_nanos, so that a cursor's
 * position in nanoseconds means the same on indices that map timestamp as
 * date (milliseconds, the indexer's `template.date_nanos: false`) and as
 * date_nanos. Without it OpenSearch reads search_after's nanoseconds as
 * milliseconds on a ms index (an instant far in the future) and every page
 * of a walk is its first one (tests/integration/query_conformance walks
 * both kinds of indices against the real OpenSearch). */
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
