/* test_queryd_api.c - queryd's HTTP API against a store in a temporary
 * directory: search answers checked against a brute-force reference,
 * pagination under concurrent appends, tenant isolation, aggregates, bad
 * requests, limits, live tail. */
#include "../lh_test.h"
#include "queryd_test_util.h"
#include "store_testlib.h"

#include <unistd.h>

#include "lh/time.h"

#define TOKEN "acme-token-1"
#define GTOKEN "globex-token-1"

static const char *const base_yaml =
    "tenants:\n"
    "  - name: acme\n"
    "    tokens: [" TOKEN "]\n"
    "  - name: globex\n"
    "    tokens: [" GTOKEN "]\n"
    "cursor:\n"
    "  key: test-cursor-key-0123456789\n"
    "tiers:\n"
    "  - type: store\n"
    "    store:\n"
    "      dir: %s\n";

TEST(queryd_search_smoke)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    int64_t now = lh_time_now_ns();
    struct lh_event evs[3] = {
        qt_event(&a, "acme", "e1", now - 3 * LH_NS_PER_SEC, LH_LEVEL_ERROR, "payment-service",
                 "i-09ab7d6f5e", "Database transaction timeout during capture.",
                 "container_id=c_pay_88f9,region_hint=eu"),
        qt_event(&a, "acme", "e2", now - 2 * LH_NS_PER_SEC, LH_LEVEL_INFO, "payment-service",
                 "i-09ab7d6f5e", "all good", NULL),
        qt_event(&a, "globex", "g1", now - 1 * LH_NS_PER_SEC, LH_LEVEL_ERROR, "payment-service",
                 "h", "Database transaction timeout during capture.", NULL),
    };
    evs[0].trace_id = "tr_abc123";
    evs[0].user_id = "usr_456";
    evs[0].container_id = "c_pay_88f9";
    REQUIRE_INT(lh_store_append(w, evs, 3, NULL, NULL), ==, 0);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    int st;
    json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN,
                             "{\"query\":{\"full_text\":\"database transaction timeout\","
                             "\"filters\":[{\"field\":\"service\",\"operator\":\"EQUALS\","
                             "\"value\":\"payment-service\"},{\"field\":\"level\",\"operator\":"
                             "\"EQUALS\",\"value\":\"ERROR\"}]},\"pagination\":{\"limit\":100}}",
                             &st);
    CHECK_INT(st, ==, 200);
    REQUIRE(j);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, 1);
    CHECK_STR(json_string_value(json_object_get(j, "total_hits_relation")), "eq");
    CHECK(json_is_null(json_object_get(j, "next_cursor")));
    json_t *logs = json_object_get(j, "logs");
    REQUIRE_INT(json_array_size(logs), ==, 1);
    json_t *h = json_array_get(logs, 0);
    CHECK_STR(json_string_value(json_object_get(h, "id")), "e1");
    CHECK_STR(json_string_value(json_object_get(h, "level")), "ERROR");
    CHECK_STR(json_string_value(json_object_get(h, "service")), "payment-service");
    CHECK_STR(json_string_value(json_object_get(h, "trace_id")), "tr_abc123");
    CHECK_STR(json_string_value(json_object_get(h, "user_id")), "usr_456");
    CHECK_STR(json_string_value(json_object_get(h, "message")),
              "Database transaction timeout during capture.");
    json_t *md = json_object_get(h, "metadata");
    CHECK_STR(json_string_value(json_object_get(md, "host")), "i-09ab7d6f5e");
    CHECK_STR(json_string_value(json_object_get(md, "container_id")), "c_pay_88f9");
    CHECK_STR(json_string_value(json_object_get(md, "region_hint")), "eu");
    CHECK_INT(json_object_size(md), ==, 3);
    char ts[LH_TIME_RFC3339_SIZE];
    lh_time_format_rfc3339(now - 3 * LH_NS_PER_SEC, 9, ts, sizeof(ts));
    const char *got = json_string_value(json_object_get(h, "timestamp"));
    int64_t gts = 0;
    REQUIRE(got && lh_time_parse_rfc3339(got, strlen(got), &gts, NULL) == 0);
    CHECK_INT(gts, ==, now - 3 * LH_NS_PER_SEC);
    json_t *tiers = json_object_get(j, "tiers");
    CHECK_INT(json_array_size(tiers), ==, 1);
    CHECK_STR(json_string_value(json_array_get(tiers, 0)), "store");
    CHECK(json_is_integer(json_object_get(j, "took_ms")));
    json_decref(j);
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_store_close(w);
    lh_arena_free(&a);
}
