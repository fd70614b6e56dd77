/* Unit tests for the collector's ingest body decoder. */
#include "../lh_test.h"
#include "../../collector/ingest.h"

#include "lh/time.h"

static const uint8_t uuid[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                  0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
static const struct lh_ingest_limits limits = {
    .max_records = 1000, .max_field_bytes = 4096, .max_meta_keys = 8, .max_depth = 16,
    .utf8_repair = 1,
};

struct run {
    struct lh_arena arena;
    struct lh_ingest_batch b;
    struct lh_ingest_error e;
    int rc;
};

static void decode(struct run *r, const char *body, const struct lh_ingest_limits *lim)
{
    struct lh_ingest_context ctx = { .tenant = "acme", .batch_uuid = uuid,
                                     .received_ns = 1779523574000000000LL,
                                     .default_host = "peer" };
    memset(r, 0, sizeof(*r));
    r->rc = lh_ingest_decode_json(body, strlen(body), lim ? lim : &limits, &ctx, &r->arena,
                                  &r->b, &r->e);
}

static void expect_error(const char *body, int code, const char *field, const char *msg)
{
    struct run r;
    decode(&r, body, NULL);
    if (r.rc != code)
        lh_test_fail(__FILE__, __LINE__, "%s: rc %d, want %d (%s: %s)", body, r.rc, code,
                     r.e.field, r.e.message);
    else if (strcmp(r.e.field, field) != 0 || !strstr(r.e.message, msg))
        lh_test_fail(__FILE__, __LINE__, "%s: error \"%s: %s\", want \"%s: ...%s...\"", body,
                     r.e.field, r.e.message, field, msg);
    lh_arena_free(&r.arena);
}

TEST(ingest_seed_body)
{
    struct run r;
    decode(&r,
           "{\"shipper_metadata\":{\"host_id\":\"i-09ab7d6f5e\",\"cluster_name\":\"k8s-prod\","
           "\"agent_version\":\"loghaul-agent/0.1\"},\"log_records\":["
           "{\"timestamp\":\"2026-05-23T08:06:14.123Z\",\"stream\":\"stdout\",\"raw_message\":"
           "\"2026-05-23 08:06:14 [payment-service] ERROR tr_abc123 usr_456 - Database "
           "transaction timeout during capture.\",\"container_id\":\"c_pay_88f9\"},"
           "{\"timestamp\":\"2026-05-23T08:06:14.125Z\",\"stream\":\"stderr\",\"raw_message\":"
           "\"{\\\"level\\\":\\\"info\\\",\\\"msg\\\":\\\"GC done\\\"}\",\"container_id\":"
           "\"c_pay_88f9\"}]}",
           NULL);
    REQUIRE_INT(r.rc, ==, 0);
    REQUIRE_INT(r.b.n, ==, 2);
    CHECK_STR(r.b.host, "i-09ab7d6f5e");
    CHECK_STR(r.b.cluster, "k8s-prod");
    struct lh_event *e = r.b.events;
    CHECK_STR(e[0].host, "i-09ab7d6f5e");
    CHECK_STR(e[0].tenant, "acme");
    CHECK_STR(e[0].stream, "stdout");
    CHECK_STR(e[0].container_id, "c_pay_88f9");
    CHECK_CONTAINS(e[0].raw, "[payment-service] ERROR");
    CHECK(e[0].message == NULL);
    int64_t want;
    lh_time_parse_rfc3339("2026-05-23T08:06:14.123Z", 24, &want, NULL);
    CHECK_INT(e[0].ts_ns, ==, want);
    CHECK_STR(e[1].raw, "{\"level\":\"info\",\"msg\":\"GC done\"}");
    CHECK_STR(e[0].id, "0123456789abcdef0123456789abcdef-0");
    CHECK_STR(e[1].id, "0123456789abcdef0123456789abcdef-1");
    CHECK_INT(e[1].received_ns, ==, 1779523574000000000LL);
    lh_arena_free(&r.arena);
}

TEST(ingest_structured_fields_metadata_and_ledger)
{
    struct run r;
    decode(&r,
           "{\"log_records\":[{\"message\":\"m\",\"level\":\"warning\",\"service\":\"s\","
           "\"trace_id\":\"t\",\"span_id\":\"sp\",\"user_id\":\"u\",\"host\":\"h2\","
           "\"file\":\"/var/log/a.log\",\"timestamp\":1779523574123,"
           "\"k8s\":{\"namespace\":\"ns\",\"pod\":\"p\",\"container\":\"c\",\"x\":1},"
           "\"metadata\":{\"a\":\"1\",\"b\":{\"c\":2,\"d\":true},\"n\":null},\"future\":[1]}],"
           "\"shipper_metadata\":{\"host_id\":\"h1\",\"region\":\"eu-1\",\"files\":["
           "{\"path\":\"/var/log/a.log\",\"read\":10,\"acked\":8,\"dropped\":1,\"sampled\":1}]}}",
           NULL);
    REQUIRE_INT(r.rc, ==, 0);
    struct lh_event *e = &r.b.events[0];
    CHECK_STR(e->message, "m");
    CHECK_INT(e->level, ==, LH_LEVEL_WARN);
    CHECK_STR(e->service, "s");
    CHECK_STR(e->trace_id, "t");
    CHECK_STR(e->span_id, "sp");
    CHECK_STR(e->user_id, "u");
    CHECK_STR(e->host, "h2");             /* the record's own host wins */
    CHECK_STR(e->region, "eu-1");         /* shipper metadata after the records */
    CHECK_STR(e->file, "/var/log/a.log");
    CHECK_INT(e->ts_ns, ==, 1779523574123LL * 1000000);
    CHECK_STR(e->k8s_namespace, "ns");
    CHECK_STR(e->k8s_pod, "p");
    CHECK_STR(e->k8s_container, "c");
    CHECK_INT(e->nmeta, ==, 3);
    CHECK_STR(lh_event_meta(e, "a"), "1");
    CHECK_STR(lh_event_meta(e, "b.c"), "2");
    CHECK_STR(lh_event_meta(e, "b.d"), "true");
    CHECK_INT(r.b.unknown_keys, ==, 2);
    REQUIRE_INT(r.b.nfiles, ==, 1);
    CHECK_STR(r.b.files[0].path, "/var/log/a.log");
    CHECK_INT(r.b.files[0].read, ==, 10);
    CHECK_INT(r.b.files[0].acked, ==, 8);
    CHECK_INT(r.b.files[0].dropped, ==, 1);
    lh_arena_free(&r.arena);
}

TEST(ingest_bad_bodies_name_the_field)
{
    expect_error("", LH_EINVAL, "", "malformed JSON");
    expect_error("[]", LH_EINVAL, "", "must be a JSON object");
    expect_error("{}", LH_EINVAL, "log_records", "missing");
    expect_error("{\"log_records\":[]}", LH_EINVAL, "log_records", "empty batch");
    expect_error("{\"log_records\":{}}", LH_EINVAL, "log_records", "expected an array");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\"},7]}", LH_EINVAL, "log_records[1]",
                 "expected a record object");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\"},{\"raw_message\":5}]}", LH_EINVAL,
                 "log_records[1].raw_message", "expected a string");
    expect_error("{\"log_records\":[{\"stream\":\"stdout\"}]}", LH_EINVAL,
                 "log_records[0].raw_message", "needs raw_message or message");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\",\"timestamp\":\"noon\"}]}",
                 LH_EINVAL, "log_records[0].timestamp", "RFC 3339");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\",\"metadata\":{\"x\":[1]}}]}",
                 LH_EINVAL, "log_records[0].metadata.x", "expected a string, number");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\",\"metadata\":[]}]}", LH_EINVAL,
                 "log_records[0].metadata", "expected an object");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\"}]} trailing", LH_EINVAL, "",
                 "malformed JSON");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\"]}", LH_EINVAL, "", "malformed JSON");
    expect_error("{\"log_records\":[{\"raw_message\":\"a\",\"metadata\":{\"1\":\"\",\"2\":\"\","
                 "\"3\":\"\",\"4\":\"\",\"5\":\"\",\"6\":\"\",\"7\":\"\",\"8\":\"\",\"9\":\"\"}}]}",
                 LH_ETOOBIG, "log_records[0].metadata", "more than 8 keys");
    expect_error("{\"shipper_metadata\":{\"files\":[{\"read\":-1}]},\"log_records\":[]}",
                 LH_EINVAL, "shipper_metadata.files.read", "non-negative");
}

TEST(ingest_limits_depth_size_count_utf8)
{
    /* 10,000-deep nesting is refused by the depth limit, not the stack. */
    size_t depth = 10000;
    char *deep = malloc(depth * 2 + 64);
    REQUIRE(deep);
    char *p = deep;
    p += sprintf(p, "{\"log_records\":[{\"raw_message\":\"a\",\"future\":");
    for (size_t i = 0; i < depth; i++)
        *p++ = '[';
    for (size_t i = 0; i < depth; i++)
        *p++ = ']';
    strcpy(p, "}]}");
    expect_error(deep, LH_EINVAL, "", "nesting deeper than 16");
    free(deep);

    char big[6000];
    memset(big, 'x', sizeof(big));
    const char *head = "{\"log_records\":[{\"raw_message\":\"";
    memcpy(big, head, strlen(head));
    strcpy(big + 5000, "\"}]}");
    expect_error(big, LH_ETOOBIG, "log_records[0].raw_message", "longer than 4096 bytes");

    struct lh_ingest_limits two = limits;
    two.max_records = 2;
    struct run r;
    decode(&r, "{\"log_records\":[{\"message\":\"1\"},{\"message\":\"2\"},{\"message\":\"3\"}]}",
           &two);
    CHECK_INT(r.rc, ==, LH_ETOOBIG);
    CHECK_CONTAINS(r.e.message, "more than 2 records");
    lh_arena_free(&r.arena);

    /* Invalid UTF-8: repaired to U+FFFD, or refused. */
    decode(&r, "{\"log_records\":[{\"message\":\"a\xff" "b\"}]}", NULL);
    REQUIRE_INT(r.rc, ==, 0);
    CHECK_STR(r.b.events[0].message, "a\xef\xbf\xbd" "b");
    lh_arena_free(&r.arena);
    struct lh_ingest_limits strict = limits;
    strict.utf8_repair = 0;
    decode(&r, "{\"log_records\":[{\"message\":\"a\xff" "b\"}]}", &strict);
    CHECK_INT(r.rc, ==, LH_EINVAL);
    lh_arena_free(&r.arena);
    /* NUL: a raw NUL byte is invalid JSON; an escaped one becomes U+FFFD. */
    const char nul_body[] = "{\"log_records\":[{\"message\":\"a\0b\"}]}";
    struct lh_ingest_context ctx = { .tenant = "t", .batch_uuid = uuid };
    memset(&r, 0, sizeof(r));
    CHECK_INT(lh_ingest_decode_json(nul_body, sizeof(nul_body) - 1, &limits, &ctx, &r.arena,
                                    &r.b, &r.e), ==, LH_EINVAL);
    lh_arena_free(&r.arena);
    decode(&r, "{\"log_records\":[{\"message\":\"a\\u0000b\"}]}", NULL);
    REQUIRE_INT(r.rc, ==, 0);
    CHECK_STR(r.b.events[0].message, "a\xef\xbf\xbd" "b");
    lh_arena_free(&r.arena);
}

TEST(ingest_ndjson)
{
    struct lh_ingest_context ctx = { .tenant = "t", .batch_uuid = uuid, .received_ns = 5,
                                     .default_host = "10.0.0.7" };
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_ingest_batch b;
    struct lh_ingest_error e;
    const char *body = "{\"raw_message\":\"one\"}\n\r\n  \n{\"message\":\"two\",\"host\":\"h\"}\r\n"
                       "{\"raw_message\":\"three\"}";
    REQUIRE_INT(lh_ingest_decode_ndjson(body, strlen(body), &limits, &ctx, &arena, &b, &e), ==, 0);
    REQUIRE_INT(b.n, ==, 3);
    CHECK_STR(b.events[0].raw, "one");
    CHECK_STR(b.events[0].host, "10.0.0.7");
    CHECK_STR(b.events[1].host, "h");
    CHECK_STR(b.events[2].id, "0123456789abcdef0123456789abcdef-2");
    lh_arena_reset(&arena);
    body = "{\"raw_message\":\"one\"}\n{\"raw_message\":\"two\"\n";
    CHECK_INT(lh_ingest_decode_ndjson(body, strlen(body), &limits, &ctx, &arena, &b, &e), ==,
              LH_EINVAL);
    CHECK_INT(e.index, ==, 1);
    body = "{\"raw_message\":\"one\"}\n[1]\n";
    CHECK_INT(lh_ingest_decode_ndjson(body, strlen(body), &limits, &ctx, &arena, &b, &e), ==,
              LH_EINVAL);
    CHECK_STR(e.field, "line[1]");
    CHECK_INT(lh_ingest_decode_ndjson("\n\n", 2, &limits, &ctx, &arena, &b, &e), ==, LH_EINVAL);
    CHECK_CONTAINS(e.message, "empty batch");
    lh_arena_free(&arena);
}

TEST(ingest_random_mutations_never_crash)
{
    const char *seed = "{\"shipper_metadata\":{\"host_id\":\"h\",\"files\":[{\"path\":\"p\","
                       "\"read\":1}]},\"log_records\":[{\"timestamp\":\"2026-05-23T08:06:14Z\","
                       "\"raw_message\":\"x\\u00e9\",\"metadata\":{\"a\":{\"b\":1}},"
                       "\"k8s\":{\"pod\":\"p\"},\"level\":\"ERROR\"}]}";
    size_t n = strlen(seed);
    char *buf = malloc(n);
    REQUIRE(buf);
    unsigned s = 7;
    static const char bytes[] = "{}[]\":,\\0a -.e\xff";
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, seed, n);
        int muts = 1 + rand_r(&s) % 4;
        for (int k = 0; k < muts; k++)
            buf[rand_r(&s) % n] = bytes[rand_r(&s) % (sizeof(bytes) - 1)];
        size_t len = (size_t)(rand_r(&s) % 8 == 0 ? rand_r(&s) % n : n);
        struct lh_ingest_context ctx = { .tenant = "t", .batch_uuid = uuid };
        struct lh_arena arena = LH_ARENA_INIT;
        struct lh_ingest_batch b;
        struct lh_ingest_error e;
        int rc = lh_ingest_decode_json(buf, len, &limits, &ctx, &arena, &b, &e);
        CHECK(rc == 0 || rc == LH_EINVAL || rc == LH_ETOOBIG);
        if (rc == 0)
            CHECK(b.n == 1 && b.events[0].id);
        else
            CHECK(e.message[0] != '\0');
        lh_arena_free(&arena);
    }
    free(buf);
}
