/* Unit tests for the OpenSearch sink's building blocks: index names per
 * tenant and day, bulk items (NDJSON action + document lines), cutting a
 * batch into bodies at the byte bound, bulk response parsing into per-item
 * outcomes, the index template per server flavour, the option table, and
 * a write to a closed port (connection refused -> LH_EUNAVAIL). The real
 * server is exercised by tests/integration/sink_opensearch.c. */
#include "../lh_test.h"
#include "../../indexer/sink_opensearch.h"
#include "lh/time.h"

#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int64_t ts(const char *s)
{
    int64_t ns = 0;
    if (lh_time_parse_rfc3339(s, strlen(s), &ns, NULL) < 0)
        lh_test_fail(__FILE__, __LINE__, "bad time %s", s);
    return ns;
}

TEST(os_index_name_tenant_and_day)
{
    char b[LH_OS_INDEX_MAX];
    CHECK_INT(lh_os_index_name("logs", "acme", ts("2026-05-23T08:06:14.123Z"), b, sizeof(b)),
              ==, 20);
    CHECK_STR(b, "logs-acme-2026.05.23");
    /* the UTC day: the last nanosecond of a day and the first of the next */
    lh_os_index_name("logs", "acme", ts("2026-05-23T23:59:59.999999999Z"), b, sizeof(b));
    CHECK_STR(b, "logs-acme-2026.05.23");
    lh_os_index_name("logs", "acme", ts("2026-05-24T00:00:00Z"), b, sizeof(b));
    CHECK_STR(b, "logs-acme-2026.05.24");
    lh_os_index_name("logs", "acme", ts("2026-05-24T01:30:00+02:00"), b, sizeof(b));
    CHECK_STR(b, "logs-acme-2026.05.23");
    lh_os_index_name("logs", "acme", -1, b, sizeof(b));
    CHECK_STR(b, "logs-acme-1969.12.31");
    /* sanitised: lowercase, [a-z0-9_-], anything else '_' */
    lh_os_index_name("logs", "Team.Ops/EU*1 é", 0, b, sizeof(b));
    CHECK_STR(b, "logs-team_ops_eu_1___-1970.01.01");
    lh_os_index_name("x", NULL, 0, b, sizeof(b));
    CHECK_STR(b, "x-default-1970.01.01");
    lh_os_index_name("x", "", 0, b, sizeof(b));
    CHECK_STR(b, "x-default-1970.01.01");
    char longt[200];
    memset(longt, 'a', sizeof(longt) - 1);
    longt[199] = '\0';
    int n = lh_os_index_name("logs", longt, 0, b, sizeof(b));
    CHECK_INT(n, ==, 5 + 64 + 11);
    CHECK_INT(strlen(b), ==, (size_t)n);
    CHECK_INT(lh_os_index_name("logs", "acme", 0, b, 10), ==, LH_ETOOBIG);
}

/* Splits an item into its two lines; both must be JSON objects. */
static void item_lines(const char *s, size_t len, json_t **action, json_t **doc)
{
    const char *nl = memchr(s, '\n', len);
    REQUIRE(nl != NULL);
    REQUIRE(s[len - 1] == '\n');
    REQUIRE(memchr(nl + 1, '\n', len - (size_t)(nl + 1 - s) - 1) == NULL);
    json_error_t je;
    *action = json_loadb(s, (size_t)(nl - s), 0, &je);
    *doc = json_loadb(nl + 1, len - (size_t)(nl + 1 - s) - 1, 0, &je);
    REQUIRE(*action && *doc);
}

TEST(os_bulk_item_full_event)
{
    struct lh_kv meta[] = { { "region.zone", "us-east-1a" }, { "user", "bob" },
                            { "user", "alice" }, { "q\"k", "v\nx" } };
    struct lh_event ev = {
        .ts_ns = ts("2026-05-23T08:06:14.123456789Z"), .id = "0123abcd-7",
        .tenant = "Acme", .service = "payment-service", .level = LH_LEVEL_ERROR,
        .host = "i-09ab", .trace_id = "tr_abc123", .span_id = "sp1", .user_id = "usr_456",
        .message = "Database \"transaction\" timeout", .stream = "stdout",
        .container_id = "c_pay", .k8s_namespace = "prod", .k8s_container = "app",
        .region = "us-east-1", .file = "/var/log/app.log", .raw = "2026 ERROR tr_abc123 \t",
        .meta = meta, .nmeta = 4,
    };
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_os_bulk_item(&b, "logs", &ev, 1), ==, 0);
    const char *want =
        "{\"create\":{\"_index\":\"logs-acme-2026.05.23\",\"_id\":\"0123abcd-7\"}}\n"
        "{\"timestamp\":\"2026-05-23T08:06:14.123456789Z\",\"level\":\"ERROR\","
        "\"id\":\"0123abcd-7\",\"tenant\":\"Acme\",\"service\":\"payment-service\","
        "\"host\":\"i-09ab\",\"trace_id\":\"tr_abc123\",\"span_id\":\"sp1\","
        "\"user_id\":\"usr_456\",\"message\":\"Database \\\"transaction\\\" timeout\","
        "\"raw\":\"2026 ERROR tr_abc123 \\t\",\"stream\":\"stdout\",\"container_id\":\"c_pay\","
        "\"k8s\":{\"namespace\":\"prod\",\"container\":\"app\"},\"region\":\"us-east-1\","
        "\"file\":\"/var/log/app.log\",\"custom_metadata\":{\"region.zone\":\"us-east-1a\","
        "\"user\":\"bob\",\"q\\\"k\":\"v\\nx\"}}\n";
    CHECK_STR(b.data, want);
    json_t *a, *d;
    item_lines(b.data, b.len, &a, &d);
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "custom_metadata"), "q\"k")),
              "v\nx");
    json_decref(a);
    json_decref(d);

    /* ms precision when the mapping is date, not date_nanos */
    lh_buf_reset(&b);
    REQUIRE_INT(lh_os_bulk_item(&b, "logs", &ev, 0), ==, 0);
    CHECK_CONTAINS(b.data, "\"timestamp\":\"2026-05-23T08:06:14.123Z\"");
    lh_buf_free(&b);
}

TEST(os_bulk_item_absent_fields_omitted)
{
    struct lh_event ev = { .ts_ns = ts("2026-01-02T03:04:05Z"), .message = "hi" };
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_os_bulk_item(&b, "logs", &ev, 1), ==, 0);
    CHECK_STR(b.data, "{\"create\":{\"_index\":\"logs-default-2026.01.02\"}}\n"
                      "{\"timestamp\":\"2026-01-02T03:04:05.000000000Z\",\"level\":\"UNKNOWN\","
                      "\"message\":\"hi\"}\n");
    /* an only-k8s-pod event and invalid UTF-8 stay valid JSON */
    struct lh_event ev2 = { .ts_ns = 0, .id = "x", .k8s_pod = "p-1", .message = "bad \xff byte" };
    size_t mark = b.len;
    REQUIRE_INT(lh_os_bulk_item(&b, "logs", &ev2, 1), ==, 0);
    json_t *a, *d;
    item_lines(b.data + mark, b.len - mark, &a, &d);
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "k8s"), "pod")), "p-1");
    CHECK_INT(json_object_size(json_object_get(d, "k8s")), ==, 1);
    CHECK_STR(json_string_value(json_object_get(d, "message")), "bad \xef\xbf\xbd byte");
    CHECK_STR(json_string_value(json_object_get(json_object_get(a, "create"), "_id")), "x");
    json_decref(a);
    json_decref(d);
    lh_buf_free(&b);
}

TEST(os_bulk_cut_respects_byte_bound)
{
    /* 500 items of varying size, one of them bigger than the bound. */
    struct lh_buf b = LH_BUF_INIT;
    size_t off[501];
    char msg[3000];
    for (size_t i = 0; i < 500; i++) {
        size_t len = (i * 37) % 900 + 1;
        if (i == 250)
            len = sizeof(msg) - 1;
        memset(msg, 'a' + (int)(i % 26), len);
        msg[len] = '\0';
        char id[16];
        snprintf(id, sizeof(id), "id-%zu", i);
        struct lh_event ev = { .ts_ns = (int64_t)i * 3600 * LH_NS_PER_SEC, .id = id,
                               .tenant = i % 2 ? "a" : "b", .message = msg };
        off[i] = b.len;
        REQUIRE_INT(lh_os_bulk_item(&b, "logs", &ev, 1), ==, 0);
    }
    off[500] = b.len;
    const uint64_t max = 2048;
    size_t a = 0, bodies = 0, items = 0;
    while (a < 500) {
        size_t e = lh_os_bulk_cut(off, NULL, NULL, a, 500, max, max);
        REQUIRE(e > a && e <= 500);
        uint64_t bytes = off[e] - off[a];
        if (e - a > 1)
            CHECK(bytes <= max);
        else if (bytes > max)
            CHECK_INT(a, ==, 250);                      /* only the big one is alone and over */
        if (e < 500)
            CHECK(off[e + 1] - off[a] > max);           /* the next item would not fit */
        /* the body is whole NDJSON lines: action/doc pairs */
        size_t lines = 0;
        for (size_t k = off[a]; k < off[e]; k++)
            lines += b.data[k] == '\n';
        CHECK_INT(lines, ==, 2 * (e - a));
        items += e - a;
        bodies++;
        a = e;
    }
    CHECK_INT(items, ==, 500);
    CHECK(bodies > 100);
    /* everything fits in one body when the bound is large */
    CHECK_INT(lh_os_bulk_cut(off, NULL, NULL, 0, 500, 1u << 30, 1u << 30), ==, 500);
    CHECK_INT(lh_os_bulk_cut(off, NULL, NULL, 499, 500, 1, 1), ==, 500);

    /* a target below the bound: bodies close once they reach it */
    a = 0;
    while (a < 500) {
        size_t e = lh_os_bulk_cut(off, NULL, NULL, a, 500, max, 1000);
        CHECK(e == a + 1 || off[e - 1] - off[a] < 1000);   /* below target before the last */
        CHECK(e - a == 1 || off[e] - off[a] <= max);
        a = e;
    }

    /* a subset in order (items left to resend), with per-item limits */
    size_t idx[] = { 3, 4, 10, 11, 12, 250, 400 };
    uint64_t lim[500];
    for (size_t i = 0; i < 500; i++)
        lim[i] = 1u << 30;
    size_t all = 0;
    for (size_t j = 0; j < 7; j++)
        all += off[idx[j] + 1] - off[idx[j]];
    CHECK_INT(lh_os_bulk_cut(off, idx, lim, 0, 7, 1u << 30, 1u << 30), ==, 7);
    lim[11] = (off[4] - off[3]) + (off[5] - off[4]) + (off[11] - off[10]); /* 3, 4, 10 fit */
    CHECK_INT(lh_os_bulk_cut(off, idx, lim, 0, 7, 1u << 30, 1u << 30), ==, 3);
    /* the next body starts with item 11: its limit holds for the whole body */
    size_t e = lh_os_bulk_cut(off, idx, lim, 3, 7, 1u << 30, 1u << 30), bytes = 0;
    REQUIRE(e > 3 && e <= 7);
    for (size_t j = 3; j < e; j++)
        bytes += off[idx[j] + 1] - off[idx[j]];
    CHECK(e == 4 || bytes <= lim[11]);
    if (e < 7)
        CHECK(bytes + (off[idx[e] + 1] - off[idx[e]]) > lim[11]);
    CHECK(all > bytes);
    lh_buf_free(&b);
}

TEST(os_bulk_target_even_bodies)
{
    const uint64_t M = 5u << 20;
    /* 12 MiB, 5 MiB bodies, 2 at once: 4 bodies of 3 MiB */
    CHECK_INT(lh_os_bulk_target(12u << 20, M, 2), ==, 3u << 20);
    /* 10 MiB: 2 bodies of 5 MiB */
    CHECK_INT(lh_os_bulk_target(10u << 20, M, 2), ==, 5u << 20);
    /* 3 MiB: split in 2 so both connections work */
    CHECK_INT(lh_os_bulk_target(3u << 20, M, 2), ==, 3u << 19);
    /* never below the floor, never above the bound */
    CHECK_INT(lh_os_bulk_target(100, M, 2), ==, LH_OS_MIN_BODY);
    CHECK_INT(lh_os_bulk_target(100u << 20, M, 1), ==, M);
    CHECK_INT(lh_os_bulk_target(100u << 20, M, 3), ==, (100u << 20) / 21 + 1);
}

static void reason_of(const char *body, const struct lh_os_item *it, char *out, size_t n)
{
    lh_os_item_reason(body, it, out, n);
}

TEST(os_bulk_parse_mixed_items)
{
    const char *resp =
        "{\"took\":30,\"errors\":true,\"items\":["
        "{\"create\":{\"_index\":\"logs-a-2026.05.23\",\"_id\":\"1\",\"_version\":1,"
        "\"result\":\"created\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},"
        "\"_seq_no\":0,\"_primary_term\":1,\"status\":201}},"
        "{\"create\":{\"_index\":\"logs-a-2026.05.23\",\"_id\":\"2\",\"status\":409,"
        "\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"[2]: version "
        "conflict, document already exists (current version [1])\",\"index\":\"logs-a\","
        "\"shard\":\"0\"}}},"
        "{\"create\":{\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\","
        "\"reason\":\"rejected execution of coordinating operation\"}}},"
        "{\"create\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\","
        "\"reason\":\"failed to parse field [timestamp] of type [date_nanos] in document with "
        "id '4'. Preview of field's value: 'x\\\"y'\",\"caused_by\":{\"type\":"
        "\"illegal_argument_exception\",\"reason\":\"bad\\u00e9 date\",\"caused_by\":{"
        "\"type\":\"deeper\",\"reason\":\"ignored\"}}}}},"
        "{\"index\":{\"status\":503,\"error\":{\"type\":\"unavailable_shards_exception\","
        "\"reason\":\"primary shard is not active\"}}},"
        "{\"create\":{\"status\":403,\"error\":{\"type\":\"cluster_block_exception\","
        "\"reason\":\"index [logs-a] blocked by: [FORBIDDEN/8/index write (api)];\"}}},"
        "{\"create\":{\"status\":400,\"error\":{\"type\":\"strict_dynamic_mapping_exception\","
        "\"reason\":\"mapping set to strict\"}}},"
        "{\"create\":{\"status\":400,\"error\":{\"type\":\"illegal_argument_exception\","
        "\"reason\":\"Document contains at least one immense term\"}}},"
        "{\"create\":{\"status\":200}},"
        "{\"create\":{\"status\":404,\"error\":{\"type\":\"index_not_found_exception\","
        "\"reason\":\"no such index\"}}},"
        "{\"create\":{\"status\":413,\"error\":{\"type\":\"content_too_long_exception\","
        "\"reason\":\"too long\"}}}"
        "]}";
    struct lh_os_item it[11];
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_os_bulk_parse(resp, strlen(resp), it, 11, &err), ==, 0);
    static const int st[11] = { 201, 409, 429, 400, 503, 403, 400, 400, 200, 404, 413 };
    static const enum lh_os_outcome oc[11] = {
        LH_OS_CREATED, LH_OS_DUPLICATE, LH_OS_RETRY, LH_OS_REJECT, LH_OS_RETRY, LH_OS_RETRY,
        LH_OS_REJECT, LH_OS_REJECT, LH_OS_CREATED, LH_OS_RETRY, LH_OS_REJECT,
    };
    for (int i = 0; i < 11; i++) {
        CHECK_INT(it[i].status, ==, st[i]);
        CHECK_INT(it[i].outcome, ==, oc[i]);
    }
    char r[240];
    reason_of(resp, &it[3], r, sizeof(r));
    CHECK_STR(r, "mapper_parsing_exception: failed to parse field [timestamp] of type "
                 "[date_nanos] in document with id '4'. Preview of field's value: 'x\"y' "
                 "(caused by illegal_argument_exception: bad\xc3\xa9 date)");
    reason_of(resp, &it[6], r, sizeof(r));
    CHECK_STR(r, "strict_dynamic_mapping_exception: mapping set to strict");
    reason_of(resp, &it[0], r, sizeof(r));
    CHECK_STR(r, "HTTP 201");
    /* cut to the size given */
    reason_of(resp, &it[3], r, 20);
    CHECK_STR(r, "mapper_parsing_exce");
    CHECK_STR(lh_os_reject_class(400, "mapper_parsing_exception", 24), "mapping");
    CHECK_STR(lh_os_reject_class(400, "strict_dynamic_mapping_exception", 32), "mapping");
    CHECK_STR(lh_os_reject_class(400, "illegal_argument_exception", 26), "invalid");
    CHECK_STR(lh_os_reject_class(413, NULL, 0), "too_large");
    CHECK_STR(lh_os_reject_class(400, "content_too_long_exception", 26), "too_large");
    CHECK_STR(lh_os_reject_class(400, "something_else", 14), "other");
}

TEST(os_bulk_parse_filtered_and_bad)
{
    /* the filter_path form the sink asks for */
    const char *ok = "{\"errors\":false,\"items\":[{\"create\":{\"status\":201}},"
                     "{\"create\":{\"status\":201}}]}";
    struct lh_os_item it[3];
    struct lh_err err = { 0 };
    CHECK_INT(lh_os_bulk_parse(ok, strlen(ok), it, 2, &err), ==, 0);
    CHECK_INT(it[1].outcome, ==, LH_OS_CREATED);
    /* item count must match the documents sent */
    CHECK_INT(lh_os_bulk_parse(ok, strlen(ok), it, 3, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "2 items for 3 documents");
    CHECK_INT(lh_os_bulk_parse(ok, strlen(ok), it, 1, &err), ==, LH_EINVAL);
    static const char *bad[] = {
        "", "[]", "{\"items\":[{\"create\":{\"status\":201}}]",         /* truncated */
        "{\"items\":[{\"create\":{\"result\":\"created\"}}]}",        /* no status */
        "{\"items\":[{\"create\":{\"status\":\"201\"}}]}",            /* status a string */
        "{\"items\":[{\"create\":{\"status\":201}}]} trailing",
        "{\"errors\":true}",                                         /* no items */
        "{\"error\":{\"type\":\"x\"},\"status\":400}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        CHECK_INT(lh_os_bulk_parse(bad[i], strlen(bad[i]), it, 1, &err), ==, LH_EINVAL);
        CHECK(err.msg[0] != '\0');
    }
    /* zero documents, zero items */
    CHECK_INT(lh_os_bulk_parse("{\"items\":[]}", 12, it, 0, &err), ==, 0);
}

TEST(os_classify_statuses)
{
    CHECK_INT(lh_os_classify(201, NULL, 0), ==, LH_OS_CREATED);
    CHECK_INT(lh_os_classify(409, "version_conflict_engine_exception", 33), ==,
              LH_OS_DUPLICATE);
    CHECK_INT(lh_os_classify(429, NULL, 0), ==, LH_OS_RETRY);
    CHECK_INT(lh_os_classify(500, NULL, 0), ==, LH_OS_RETRY);
    CHECK_INT(lh_os_classify(400, "mapper_parsing_exception", 24), ==, LH_OS_REJECT);
    CHECK_INT(lh_os_classify(413, NULL, 0), ==, LH_OS_REJECT);
    /* cluster-level refusals wait, whatever their status */
    CHECK_INT(lh_os_classify(400, "cluster_block_exception", 23), ==, LH_OS_RETRY);
    CHECK_INT(lh_os_classify(403, "security_exception", 18), ==, LH_OS_RETRY);
    CHECK_INT(lh_os_classify(401, NULL, 0), ==, LH_OS_RETRY);
}

static json_t *template_for(enum lh_os_flavour f, int major, int minor, int nanos)
{
    struct lh_os_template_config t = { .install = 1, .name = "loghaul-logs", .priority = 100,
                                       .shards = 1, .replicas = 0, .refresh_interval = "5s",
                                       .codec = "best_compression", .translog_async = 1,
                                       .date_nanos = nanos };
    struct lh_os_server srv = { f, major, minor };
    struct lh_buf b = LH_BUF_INIT;
    if (lh_os_template_json(&t, "logs", &srv, &b) < 0)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(b.data, b.len, 0, &je);
    if (!j)
        lh_test_fail(__FILE__, __LINE__, "template is not JSON: %s: %s", je.text, b.data);
    lh_buf_free(&b);
    return j;
}

static const char *prop_type(json_t *tpl, const char *field)
{
    json_t *p = json_object_get(json_object_get(json_object_get(tpl, "template"), "mappings"),
                                "properties");
    return json_string_value(json_object_get(json_object_get(p, field), "type"));
}

TEST(os_template_per_flavour)
{
    json_t *os = template_for(LH_OS_OPENSEARCH, 2, 19, 1);
    REQUIRE(os);
    CHECK_STR(json_string_value(json_array_get(json_object_get(os, "index_patterns"), 0)),
              "logs-*");
    json_t *tmpl = json_object_get(os, "template");
    json_t *idx = json_object_get(json_object_get(tmpl, "settings"), "index");
    CHECK_INT(json_integer_value(json_object_get(idx, "number_of_shards")), ==, 1);
    CHECK_INT(json_integer_value(json_object_get(idx, "number_of_replicas")), ==, 0);
    CHECK_STR(json_string_value(json_object_get(idx, "refresh_interval")), "5s");
    CHECK_STR(json_string_value(json_object_get(idx, "codec")), "best_compression");
    CHECK_STR(json_string_value(json_object_get(json_object_get(idx, "translog"), "durability")),
              "async");
    CHECK_STR(json_string_value(json_object_get(json_object_get(tmpl, "mappings"), "dynamic")),
              "strict");
    CHECK_STR(prop_type(os, "custom_metadata"), "flat_object");
    CHECK_STR(prop_type(os, "timestamp"), "date_nanos");
    static const char *kw[] = { "id", "tenant", "service", "level", "host", "trace_id",
                                "span_id", "user_id", "stream", "container_id", "region",
                                "file" };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        CHECK_STR(prop_type(os, kw[i]), "keyword");
    CHECK_STR(prop_type(os, "message"), "text");
    CHECK_STR(prop_type(os, "raw"), "text");
    json_t *props = json_object_get(json_object_get(tmpl, "mappings"), "properties");
    CHECK(json_is_false(json_object_get(json_object_get(props, "message"), "norms")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(props, "raw"), "index_options")),
              "docs");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(
                  json_object_get(props, "k8s"), "properties"), "pod"), "type")), "keyword");
    json_decref(os);

    json_t *es = template_for(LH_OS_ELASTICSEARCH, 8, 15, 0);
    REQUIRE(es);
    CHECK_STR(prop_type(es, "custom_metadata"), "flattened");
    CHECK_STR(prop_type(es, "timestamp"), "date");
    json_decref(es);
    /* servers without a flat map type keep custom_metadata unindexed */
    json_t *old = template_for(LH_OS_OPENSEARCH, 1, 3, 1);
    REQUIRE(old);
    CHECK_STR(prop_type(old, "custom_metadata"), "object");
    json_decref(old);
}

TEST(os_parse_root_flavours)
{
    struct lh_os_server s;
    const char *os = "{\"name\":\"n\",\"version\":{\"distribution\":\"opensearch\","
                     "\"number\":\"2.19.5\"},\"tagline\":\"The OpenSearch Project\"}";
    REQUIRE_INT(lh_os_parse_root(os, strlen(os), &s, NULL), ==, 0);
    CHECK_INT(s.flavour, ==, LH_OS_OPENSEARCH);
    CHECK_INT(s.major, ==, 2);
    CHECK_INT(s.minor, ==, 19);
    const char *es = "{\"version\":{\"number\":\"8.15.1\",\"build_flavor\":\"default\"},"
                     "\"tagline\":\"You Know, for Search\"}";
    REQUIRE_INT(lh_os_parse_root(es, strlen(es), &s, NULL), ==, 0);
    CHECK_INT(s.flavour, ==, LH_OS_ELASTICSEARCH);
    CHECK_INT(s.major, ==, 8);
    struct lh_err err = { 0 };
    CHECK_INT(lh_os_parse_root("{}", 2, &s, &err), ==, LH_EINVAL);
    CHECK_INT(lh_os_parse_root("<html>", 6, &s, &err), ==, LH_EINVAL);
}

TEST(os_config_defaults_and_checks)
{
    struct lh_sink_opensearch_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_conf_load_string("t", "", 0, lh_sink_opensearch_opts, &cfg, &err), ==, 0);
    CHECK_INT(cfg.urls.n, ==, 1);
    CHECK_STR(cfg.urls.v[0], "http://127.0.0.1:9200");
    CHECK_STR(cfg.index_prefix, "logs");
    CHECK_INT(cfg.bulk_max_bytes, ==, 5 << 20);
    CHECK_INT(cfg.concurrency, ==, 2);
    CHECK_INT(cfg.gzip, ==, 0);
    CHECK_INT(cfg.template.install, ==, 1);
    CHECK_STR(cfg.template.name, "loghaul-logs");
    CHECK_STR(cfg.template.refresh_interval, "5s");
    CHECK_STR(cfg.template.codec, "best_compression");
    CHECK_INT(cfg.template.shards, ==, 1);
    CHECK_INT(cfg.template.replicas, ==, 0);
    CHECK_INT(cfg.template.date_nanos, ==, 1);

    struct lh_sink *s = NULL;
    REQUIRE_INT(lh_sink_opensearch_create(&cfg, "os", NULL, &s, &err), ==, 0);
    CHECK_STR(s->name, "os");
    CHECK_STR(s->ops->name, "opensearch");
    lh_sink_destroy(s);

    char *saved = cfg.index_prefix;
    cfg.index_prefix = "Logs";
    s = NULL;
    CHECK_INT(lh_sink_opensearch_create(&cfg, "os", NULL, &s, &err), ==, LH_EINVAL);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "index_prefix");
    cfg.index_prefix = saved;
    cfg.concurrency = 0;
    CHECK_INT(lh_sink_opensearch_create(&cfg, "os", NULL, &s, &err), ==, LH_EINVAL);
    cfg.concurrency = 2;
    cfg.username = "u";
    CHECK_INT(lh_sink_opensearch_create(&cfg, "os", NULL, &s, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "password");
    cfg.username = NULL;
    lh_conf_free(lh_sink_opensearch_opts, &cfg);

    const char *yaml = "urls: [https://a:9200/, https://b:9200]\nindex_prefix: app\n"
                       "bulk_max_bytes: 1MiB\nconcurrency: 4\ngzip: true\n"
                       "username: u\npassword: p\nca: /etc/ca.pem\n"
                       "template: {replicas: 1, translog_async: true}\n";
    memset(&cfg, 0, sizeof(cfg));
    REQUIRE_INT(lh_conf_load_string("t", yaml, strlen(yaml), lh_sink_opensearch_opts, &cfg,
                                    &err), ==, 0);
    CHECK_INT(cfg.urls.n, ==, 2);
    CHECK_INT(cfg.bulk_max_bytes, ==, 1 << 20);
    CHECK_INT(cfg.template.replicas, ==, 1);
    CHECK_INT(cfg.template.shards, ==, 1);
    CHECK_INT(cfg.template.translog_async, ==, 1);
    REQUIRE_INT(lh_sink_opensearch_create(&cfg, "os", NULL, &s, &err), ==, 0);
    lh_sink_destroy(s);
    lh_conf_free(lh_sink_opensearch_opts, &cfg);
    const char *typo = "urls: [http://a]\ntemplate: {shard: 2}\n";
    memset(&cfg, 0, sizeof(cfg));
    CHECK_INT(lh_conf_load_string("t", typo, strlen(typo), lh_sink_opensearch_opts, &cfg, &err),
              ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "template.shard");
}

/* A port nothing listens on: bound, never listened to. */
static int closed_port(int *fd)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof(a);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &l) < 0)
        return -1;
    return ntohs(a.sin_port);
}

TEST(os_write_unreachable_is_unavail)
{
    int fd;
    int port = closed_port(&fd);
    REQUIRE(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    char *urls[] = { url };
    struct lh_sink_opensearch_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_conf_load_string("t", "", 0, lh_sink_opensearch_opts, &cfg, &err), ==, 0);
    struct lh_strlist saved = cfg.urls;
    cfg.urls.v = urls;
    cfg.urls.n = 1;
    struct lh_metrics *m = lh_metrics_create();
    struct lh_sink *s = NULL;
    REQUIRE_INT(lh_sink_opensearch_create(&cfg, "os", m, &s, &err), ==, 0);
    cfg.urls = saved;
    lh_conf_free(lh_sink_opensearch_opts, &cfg);

    struct lh_event ev[3] = { { .ts_ns = 1, .id = "a", .message = "x" },
                              { .ts_ns = 2, .id = "b" }, { .ts_ns = 3, .id = "c" } };
    struct lh_sink_report rep = { 0 };
    int64_t t0 = lh_time_mono_ns();
    CHECK_INT(lh_sink_write(s, ev, 3, &rep, &err), ==, LH_EUNAVAIL);
    CHECK_INT(err.code, ==, LH_EUNAVAIL);
    CHECK(lh_time_mono_ns() - t0 < 5 * LH_NS_PER_SEC);   /* no retry loop on refusal */
    CHECK_INT(rep.written, ==, 0);
    CHECK_INT(rep.nrejects, ==, 0);
    CHECK_INT(lh_sink_ready(s, &err), ==, LH_EUNAVAIL);
    CHECK_INT(lh_sink_write(s, ev, 0, &rep, &err), ==, 0);   /* nothing to do */
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
    lh_metrics_destroy(m);
    close(fd);
}
