/* test_queryd_query.c - parsing search/aggregate bodies (queryd/query.c):
 * every operator and its normalised values, full-text words and phrases,
 * defaults, the fingerprint, and each bad request with its exact field. */
#include "../lh_test.h"
#include "../../queryd/query.h"

#include "lh/event.h"
#include "lh/time.h"

#define NOW (1779523574LL * LH_NS_PER_SEC)   /* 2026-05-23T08:06:14Z */

static struct lh_query_limits lim(void)
{
    struct lh_query_limits l;
    lh_query_limits_default(&l);
    return l;
}

static int parse(const char *body, int aggregate, struct lh_query *q, struct lh_query_error *e)
{
    struct lh_query_limits l = lim();
    return lh_query_parse(body, strlen(body), aggregate, &l, NOW, q, e);
}

/* Parses a body with one filter and returns it in *f (q must be freed). */
static int one_filter(const char *filter, struct lh_query *q, struct lh_query_error *e)
{
    char body[2048];
    snprintf(body, sizeof(body), "{\"query\":{\"filters\":[%s]}}", filter);
    return parse(body, 0, q, e);
}

TEST(queryd_query_seed_example)
{
    struct lh_query q;
    struct lh_query_error e;
    const char *body =
        "{\"query\":{\"full_text\":\"database transaction timeout\",\"filters\":["
        "{\"field\":\"service\",\"operator\":\"EQUALS\",\"value\":\"payment-service\"},"
        "{\"field\":\"level\",\"operator\":\"EQUALS\",\"value\":\"ERROR\"}],"
        "\"time_range\":{\"start\":\"2026-05-23T07:00:00Z\",\"end\":\"2026-05-23T08:06:00Z\"}},"
        "\"pagination\":{\"limit\":100,\"cursor\":\"c3Bvb2xfMTAwX2V2dF85OWE=\"}}";
    REQUIRE_INT(parse(body, 0, &q, &e), ==, 0);
    CHECK_INT(q.nterms, ==, 3);
    CHECK_STR(q.terms[0], "database");
    CHECK_STR(q.terms[2], "timeout");
    CHECK_INT(q.nphrases, ==, 0);
    REQUIRE_INT(q.nfilters, ==, 2);
    CHECK_STR(q.filters[0].field, "service");
    CHECK_INT(q.filters[0].kind, ==, LH_QK_KEYWORD);
    CHECK_INT(q.filters[0].op, ==, LH_QOP_EQUALS);
    CHECK_STR(q.filters[0].value, "payment-service");
    CHECK_INT(q.filters[1].kind, ==, LH_QK_LEVEL);
    CHECK_STR(q.filters[1].value, "ERROR");
    CHECK_INT(q.start_ns, ==, NOW - (6 * 60 + 14) * LH_NS_PER_SEC - 3600 * LH_NS_PER_SEC);
    CHECK_INT(q.end_ns, ==, NOW - 14 * LH_NS_PER_SEC);
    CHECK(q.explicit_start && q.explicit_end);
    CHECK_INT(q.limit, ==, 100);
    CHECK_STR(q.cursor, "c3Bvb2xfMTAwX2V2dF85OWE=");
    lh_query_free(&q);
}

TEST(queryd_query_defaults)
{
    struct lh_query q;
    struct lh_query_error e;
    REQUIRE_INT(parse("{}", 0, &q, &e), ==, 0);
    CHECK_INT(q.limit, ==, 100);
    CHECK_INT(q.start_ns, ==, NOW - 24 * 3600 * LH_NS_PER_SEC);
    CHECK_INT(q.end_ns, ==, 0);
    CHECK(!q.explicit_start && !q.explicit_end);
    CHECK(q.cursor == NULL && q.nterms == 0 && q.nfilters == 0);
    lh_query_free(&q);
    /* only an end: the day before it */
    REQUIRE_INT(parse("{\"query\":{\"time_range\":{\"end\":1779523574000}}}", 0, &q, &e), ==, 0);
    CHECK_INT(q.end_ns, ==, NOW);
    CHECK_INT(q.start_ns, ==, NOW - 24 * 3600 * LH_NS_PER_SEC);
    lh_query_free(&q);
    /* nulls are absent */
    REQUIRE_INT(parse("{\"query\":{\"full_text\":null,\"filters\":null,\"time_range\":null},"
                      "\"pagination\":{\"cursor\":null}}", 0, &q, &e), ==, 0);
    CHECK(q.full_text == NULL && q.cursor == NULL);
    lh_query_free(&q);
}

TEST(queryd_query_full_text_words_and_phrases)
{
    struct lh_query q;
    struct lh_query_error e;
    /* Syntax of other search languages is plain text here. */
    const char *body = "{\"query\":{\"full_text\":\"error OR \\\"disk \\\\\\\"full\\\\\\\" now\\\" "
                       "field:value ( * \\\\ AND- foo*bar tr_abc123 naïve \\\"\\\"\"}}";
    REQUIRE_INT(parse(body, 0, &q, &e), ==, 0);
    REQUIRE_INT(q.nterms, ==, 7);
    CHECK_STR(q.terms[0], "error");
    CHECK_STR(q.terms[1], "OR");
    CHECK_STR(q.terms[2], "field:value");
    CHECK_STR(q.terms[3], "AND-");
    CHECK_STR(q.terms[4], "foo*bar");
    CHECK_STR(q.terms[5], "tr_abc123");
    CHECK_STR(q.terms[6], "naïve");
    REQUIRE_INT(q.nphrases, ==, 1);
    CHECK_STR(q.phrases[0], "disk \"full\" now");
    lh_query_free(&q);

    const char **t, **p;
    size_t nt, np;
    const char *why = NULL;
    struct lh_arena a = LH_ARENA_INIT;
    CHECK_INT(lh_query_split_text("\"open", 5, &a, &t, &nt, &p, &np, &why), ==, LH_EINVAL);
    CHECK_STR(why, "unterminated quote");
    REQUIRE_INT(lh_query_split_text("a\"b c\"d", 7, &a, &t, &nt, &p, &np, &why), ==, 0);
    CHECK_INT(nt, ==, 2);
    CHECK_STR(t[0], "a");
    CHECK_STR(t[1], "d");
    CHECK_INT(np, ==, 1);
    CHECK_STR(p[0], "b c");
    lh_arena_free(&a);
}

TEST(queryd_query_every_operator)
{
    struct lh_query q;
    struct lh_query_error e;
    struct {
        const char *filter;
        enum lh_qop op;
        enum lh_qkind kind;
        const char *field, *value;
        size_t nvalues;
        int exists;
    } cases[] = {
        { "{\"field\":\"host\",\"operator\":\"EQUALS\",\"value\":\"web01\"}", LH_QOP_EQUALS,
          LH_QK_KEYWORD, "host", "web01", 0, 0 },
        { "{\"field\":\"user_id\",\"operator\":\"NOT_EQUALS\",\"value\":42}", LH_QOP_NOT_EQUALS,
          LH_QK_KEYWORD, "user_id", "42", 0, 0 },
        { "{\"field\":\"service\",\"operator\":\"IN\",\"value\":[\"a\",\"b\",3]}", LH_QOP_IN,
          LH_QK_KEYWORD, "service", NULL, 3, 0 },
        { "{\"field\":\"message\",\"operator\":\"CONTAINS\",\"value\":\"time out\"}",
          LH_QOP_CONTAINS, LH_QK_TEXT, "message", "time out", 0, 0 },
        { "{\"field\":\"k8s.pod\",\"operator\":\"PREFIX\",\"value\":\"api-\"}", LH_QOP_PREFIX,
          LH_QK_KEYWORD, "k8s.pod", "api-", 0, 0 },
        { "{\"field\":\"trace_id\",\"operator\":\"EXISTS\"}", LH_QOP_EXISTS, LH_QK_KEYWORD,
          "trace_id", NULL, 0, 1 },
        { "{\"field\":\"trace_id\",\"operator\":\"exists\",\"value\":false}", LH_QOP_EXISTS,
          LH_QK_KEYWORD, "trace_id", NULL, 0, 0 },
        { "{\"field\":\"timestamp\",\"operator\":\"GT\",\"value\":\"2026-05-23T08:06:14.5Z\"}",
          LH_QOP_GT, LH_QK_TIME, "timestamp", "1779523574500000000", 0, 0 },
        { "{\"field\":\"timestamp\",\"operator\":\"LTE\",\"value\":1779523574000}", LH_QOP_LTE,
          LH_QK_TIME, "timestamp", "1779523574000000000", 0, 0 },
        { "{\"field\":\"metadata.duration_ms\",\"operator\":\"GTE\",\"value\":250}",
          LH_QOP_GTE, LH_QK_META, "metadata.duration_ms", "250", 0, 0 },
        { "{\"field\":\"metadata.ratio\",\"operator\":\"LT\",\"value\":\"-1.5\"}", LH_QOP_LT,
          LH_QK_META, "metadata.ratio", "-1.5", 0, 0 },
        { "{\"field\":\"metadata.host\",\"operator\":\"EQUALS\",\"value\":\"h\"}",
          LH_QOP_EQUALS, LH_QK_KEYWORD, "host", "h", 0, 0 },
        { "{\"field\":\"custom_metadata.k\",\"operator\":\"EQUALS\",\"value\":\"v\"}",
          LH_QOP_EQUALS, LH_QK_META, "metadata.k", "v", 0, 0 },
        { "{\"field\":\"level\",\"operator\":\"EQUALS\",\"value\":\"warning\"}", LH_QOP_EQUALS,
          LH_QK_LEVEL, "level", "WARN", 0, 0 },
        { "{\"value\":\"x\",\"operator\":\"EQUALS\",\"field\":\"raw\"}", LH_QOP_EQUALS,
          LH_QK_TEXT, "raw", "x", 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = one_filter(cases[i].filter, &q, &e);
        if (rc != 0)
            fprintf(stderr, "    case %zu: %s\n", i, e.message);
        REQUIRE_INT(rc, ==, 0);
        REQUIRE_INT(q.nfilters, ==, 1);
        const struct lh_qfilter *f = &q.filters[0];
        CHECK_INT(f->op, ==, cases[i].op);
        CHECK_INT(f->kind, ==, cases[i].kind);
        CHECK_STR(f->field, cases[i].field);
        if (cases[i].value)
            CHECK_STR(f->value, cases[i].value);
        CHECK_INT(f->nvalues, ==, cases[i].nvalues);
        if (cases[i].op == LH_QOP_EXISTS)
            CHECK_INT(f->exists, ==, cases[i].exists);
        lh_query_free(&q);
    }
    REQUIRE_INT(one_filter("{\"field\":\"metadata.a.b\",\"operator\":\"PREFIX\",\"value\":\"x\"}",
                           &q, &e), ==, 0);
    CHECK_STR(q.filters[0].meta_key, "a.b");
    lh_query_free(&q);
    REQUIRE_INT(one_filter("{\"field\":\"service\",\"operator\":\"IN\",\"value\":[\"a\",\"b\"]}",
                           &q, &e), ==, 0);
    CHECK_STR(q.filters[0].values[1], "b");
    lh_query_free(&q);
}

TEST(queryd_query_level_ranges_become_sets)
{
    struct lh_query q;
    struct lh_query_error e;
    struct {
        const char *op, *value, *want;
    } cases[] = {
        { "GTE", "warn", "WARN,ERROR,FATAL" },
        { "GT", "ERROR", "FATAL" },
        { "LT", "info", "UNKNOWN,TRACE,DEBUG" },
        { "LTE", "TRACE", "UNKNOWN,TRACE" },
        { "GT", "FATAL", "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char f[200];
        snprintf(f, sizeof(f), "{\"field\":\"level\",\"operator\":\"%s\",\"value\":\"%s\"}",
                 cases[i].op, cases[i].value);
        REQUIRE_INT(one_filter(f, &q, &e), ==, 0);
        CHECK_INT(q.filters[0].op, ==, LH_QOP_IN);
        char got[200] = "";
        for (size_t k = 0; k < q.filters[0].nvalues; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? "," : "",
                     q.filters[0].values[k]);
        CHECK_STR(got, cases[i].want);
        lh_query_free(&q);
    }
    REQUIRE_INT(one_filter("{\"field\":\"level\",\"operator\":\"IN\",\"value\":[\"err\",\"Fatal\"]}",
                           &q, &e), ==, 0);
    CHECK_STR(q.filters[0].values[0], "ERROR");
    CHECK_STR(q.filters[0].values[1], "FATAL");
    lh_query_free(&q);
}

/* Each bad request: its status is 400 and the error names this field. */
TEST(queryd_query_bad_requests_name_the_field)
{
    static char big[10000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    char bigtext[10100];
    snprintf(bigtext, sizeof(bigtext), "{\"query\":{\"full_text\":\"%s\"}}", big);
    char many_filters[8000] = "{\"query\":{\"filters\":[";
    for (int i = 0; i < 65; i++)
        strcat(many_filters, i ? ",{\"field\":\"host\",\"operator\":\"EXISTS\"}"
                               : "{\"field\":\"host\",\"operator\":\"EXISTS\"}");
    strcat(many_filters, "]}}");
    char many_values[12000] = "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"IN\","
                              "\"value\":[";
    for (int i = 0; i < 1001; i++)
        strcat(many_values, i ? ",\"x\"" : "\"x\"");
    strcat(many_values, "]}]}}");
    struct {
        const char *body;
        const char *field;
        const char *msg;     /* a part of the message */
    } cases[] = {
        { "{\"query\":", "", "malformed JSON" },
        { "[1,2]", "", "must be a JSON object" },
        { "{} x", "", "malformed JSON" },
        { "{\"query\":{\"full_text\":\"\xff\"}}", "", "malformed JSON" },
        { "{\"querry\":{}}", "querry", "unknown key" },
        { "{\"query\":{},\"query\":{}}", "query", "given twice" },
        { "{\"query\":[]}", "query", "must be an object" },
        { "{\"query\":{\"fulltext\":\"x\"}}", "query.fulltext", "unknown key" },
        { "{\"query\":{\"full_text\":5}}", "query.full_text", "must be a string" },
        { "{\"query\":{\"full_text\":\"say \\\"hi\"}}", "query.full_text", "unterminated quote" },
        { bigtext, "query.full_text", "longer than 8192 bytes" },
        { "{\"query\":{\"filters\":{}}}", "query.filters", "must be an array" },
        { many_filters, "query.filters", "more than 64 filters" },
        { "{\"query\":{\"filters\":[5]}}", "query.filters[0]", "must be an object" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"EXISTS\"},"
          "{\"field\":\"host\",\"operator\":\"EXISTS\"},{\"field\":\"message\",\"operator\":"
          "\"LIKE\",\"value\":\"x\"}]}}",
          "query.filters[2].operator", "query.filters[2].operator: unknown operator \"LIKE\"" },
        { "{\"query\":{\"filters\":[{\"field\":\"hostname\",\"operator\":\"EQUALS\",\"value\":"
          "\"x\"}]}}", "query.filters[0].field", "unknown field \"hostname\"" },
        { "{\"query\":{\"filters\":[{\"field\":\"tenant\",\"operator\":\"EQUALS\",\"value\":"
          "\"globex\"}]}}", "query.filters[0].field", "filtering on tenant is not allowed" },
        { "{\"query\":{\"filters\":[{\"field\":\"metadata.a*\",\"operator\":\"EXISTS\"}]}}",
          "query.filters[0].field", "metadata key may hold" },
        { "{\"query\":{\"filters\":[{\"field\":\"metadata.\",\"operator\":\"EXISTS\"}]}}",
          "query.filters[0].field", "1 to 256 bytes" },
        { "{\"query\":{\"filters\":[{\"operator\":\"EXISTS\"}]}}", "query.filters[0].field",
          "missing" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\"}]}}", "query.filters[0].operator",
          "missing" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"EQUALS\"}]}}",
          "query.filters[0].value", "missing" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"EQUALS\",\"value\":"
          "\"x\",\"boost\":2}]}}", "query.filters[0].boost", "unknown key" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"IN\",\"value\":\"x\"}]}}",
          "query.filters[0].value", "IN takes an array" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"IN\",\"value\":[]}]}}",
          "query.filters[0].value", "at least one value" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"IN\",\"value\":[{}]}]}}",
          "query.filters[0].value", "strings or numbers" },
        { many_values, "query.filters[0].value", "more than 1000 values" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"EQUALS\",\"value\":"
          "[\"a\"]}]}}", "query.filters[0].value", "takes one value" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"EQUALS\",\"value\":"
          "true}]}}", "query.filters[0].value", "string or a number" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"EXISTS\",\"value\":"
          "\"yes\"}]}}", "query.filters[0].value", "true, false or no value" },
        { "{\"query\":{\"filters\":[{\"field\":\"service\",\"operator\":\"GT\",\"value\":"
          "\"a\"}]}}", "query.filters[0].operator", "GT applies to timestamp, level and metadata" },
        { "{\"query\":{\"filters\":[{\"field\":\"timestamp\",\"operator\":\"CONTAINS\",\"value\":"
          "\"2026\"}]}}", "query.filters[0].operator", "CONTAINS does not apply to timestamp" },
        { "{\"query\":{\"filters\":[{\"field\":\"timestamp\",\"operator\":\"GT\",\"value\":"
          "\"yesterday\"}]}}", "query.filters[0].value", "is not a time" },
        { "{\"query\":{\"filters\":[{\"field\":\"level\",\"operator\":\"EQUALS\",\"value\":"
          "\"LOUD\"}]}}", "query.filters[0].value", "unknown level \"LOUD\"" },
        { "{\"query\":{\"filters\":[{\"field\":\"metadata.n\",\"operator\":\"GT\",\"value\":"
          "\"1e3\"}]}}", "query.filters[0].value", "needs a decimal number" },
        { "{\"query\":{\"time_range\":\"today\"}}", "query.time_range", "must be an object" },
        { "{\"query\":{\"time_range\":{\"start\":\"x\"}}}", "query.time_range.start",
          "is not a time" },
        { "{\"query\":{\"time_range\":{\"start\":\"2026-05-23T09:00:00Z\",\"end\":"
          "\"2026-05-23T08:00:00Z\"}}}", "query.time_range", "start must be before end" },
        { "{\"query\":{\"time_range\":{\"from\":1}}}", "query.time_range.from", "unknown key" },
        { "{\"pagination\":{\"limit\":-1}}", "pagination.limit", "between 1 and 1000" },
        { "{\"pagination\":{\"limit\":0}}", "pagination.limit", "between 1 and 1000" },
        { "{\"pagination\":{\"limit\":1001}}", "pagination.limit", "between 1 and 1000" },
        { "{\"pagination\":{\"limit\":99999999999999999999999}}", "pagination.limit",
          "between 1 and 1000" },
        { "{\"pagination\":{\"limit\":1.5}}", "pagination.limit", "between 1 and 1000" },
        { "{\"pagination\":{\"limit\":\"10\"}}", "pagination.limit", "between 1 and 1000" },
        { "{\"pagination\":{\"cursor\":5}}", "pagination.cursor", "must be a string" },
        { "{\"pagination\":{\"page\":2}}", "pagination.page", "unknown key" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lh_query q;
        struct lh_query_error e;
        int rc = parse(cases[i].body, 0, &q, &e);
        if (rc != LH_EINVAL || strcmp(e.field, cases[i].field) != 0 ||
            !strstr(e.message, cases[i].msg))
            fprintf(stderr, "    case %zu: rc %d field \"%s\" message \"%s\"\n", i, rc, e.field,
                    e.message);
        CHECK_INT(rc, ==, LH_EINVAL);
        CHECK_STR(e.field, cases[i].field);
        CHECK_CONTAINS(e.message, cases[i].msg);
        if (cases[i].field[0])   /* messages start with the path */
            CHECK(strncmp(e.message, cases[i].field, strlen(cases[i].field)) == 0);
    }
}

TEST(queryd_query_aggregate_bodies)
{
    struct lh_query q;
    struct lh_query_error e;
    REQUIRE_INT(parse("{\"query\":{\"time_range\":{\"start\":\"2026-05-23T07:00:00Z\",\"end\":"
                      "\"2026-05-23T08:00:00Z\"}},\"interval\":\"5m\",\"top\":[{\"field\":"
                      "\"level\"},{\"field\":\"metadata.k\",\"size\":3}]}", 1, &q, &e), ==, 0);
    CHECK_INT(q.interval_ns, ==, 300 * LH_NS_PER_SEC);
    REQUIRE_INT(q.ntop, ==, 2);
    CHECK_STR(q.top[0].field, "level");
    CHECK_INT(q.top[0].size, ==, 10);
    CHECK_STR(q.top[1].field, "metadata.k");
    CHECK_INT(q.top[1].size, ==, 3);
    lh_query_free(&q);
    /* default: about 100 buckets over the range; open end closes at now */
    REQUIRE_INT(parse("{\"top\":{\"field\":\"service\",\"size\":5}}", 1, &q, &e), ==, 0);
    CHECK_INT(q.interval_ns, ==, 1800 * LH_NS_PER_SEC);
    CHECK(q.end_ns > NOW && q.end_ns <= NOW + q.interval_ns);
    CHECK_INT(q.end_ns % q.interval_ns, ==, 0);
    CHECK_INT(q.ntop, ==, 1);
    lh_query_free(&q);
    struct {
        const char *body, *field, *msg;
    } bad[] = {
        { "{\"interval\":\"5 parsecs\"}", "interval", "not a duration" },
        { "{\"interval\":0}", "interval", "between 1ms and 366d" },
        { "{\"interval\":\"1s\",\"query\":{\"time_range\":{\"start\":\"2026-04-01T00:00:00Z\"}}}",
          "interval", "buckets over the time range; at most 10000" },
        { "{\"top\":{\"field\":\"message\"}}", "top.field", "not counted" },
        { "{\"top\":{\"field\":\"level\",\"size\":0}}", "top.size", "between 1 and 1000" },
        { "{\"top\":[{\"size\":3}]}", "top[0].field", "missing" },
        { "{\"pagination\":{}}", "pagination", "unknown key (known: query, interval, top)" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i].body, 1, &q, &e);
        if (rc != LH_EINVAL || strcmp(e.field, bad[i].field) != 0)
            fprintf(stderr, "    case %zu: rc %d field \"%s\" message \"%s\"\n", i, rc, e.field,
                    e.message);
        CHECK_INT(rc, ==, LH_EINVAL);
        CHECK_STR(e.field, bad[i].field);
        CHECK_CONTAINS(e.message, bad[i].msg);
    }
}

TEST(queryd_query_object_and_plain_text)
{
    struct lh_query q;
    struct lh_query_error e;
    struct lh_query_limits l = lim();
    const char *text = "timeout \"disk full\"";
    REQUIRE_INT(lh_query_parse_object(text, strlen(text), "query", &l, NOW, &q, &e), ==, 0);
    CHECK_INT(q.nterms, ==, 1);
    CHECK_INT(q.nphrases, ==, 1);
    lh_query_free(&q);
    const char *obj = "{\"filters\":[{\"field\":\"service\",\"operator\":\"EQUALS\",\"value\":"
                      "\"api\"}]}";
    REQUIRE_INT(lh_query_parse_object(obj, strlen(obj), "query", &l, NOW, &q, &e), ==, 0);
    CHECK_INT(q.nfilters, ==, 1);
    lh_query_free(&q);
    const char *bad = "{\"filters\":[{\"field\":\"nope\",\"operator\":\"EXISTS\"}]}";
    CHECK_INT(lh_query_parse_object(bad, strlen(bad), "query", &l, NOW, &q, &e), ==, LH_EINVAL);
    CHECK_STR(e.field, "query.filters[0].field");
    CHECK_INT(lh_query_parse_object("\"x", 2, "query", &l, NOW, &q, &e), ==, LH_EINVAL);
    CHECK_STR(e.field, "query.full_text");
}

TEST(queryd_query_fingerprint)
{
    struct lh_query a, b;
    struct lh_query_error e;
    uint8_t fa[LH_QUERY_FP_BYTES], fb[LH_QUERY_FP_BYTES];
    const char *q1 = "{\"query\":{\"full_text\":\"a b\",\"filters\":[{\"field\":\"host\","
                     "\"operator\":\"EQUALS\",\"value\":\"x\"}]},\"pagination\":{\"limit\":5}}";
    const char *q2 = "{\"pagination\":{\"limit\":50,\"cursor\":\"zz\"},\"query\":{\"filters\":"
                     "[{\"operator\":\"equals\",\"value\":\"x\",\"field\":\"host\"}],"
                     "\"full_text\":\"  a   b \"}}";
    REQUIRE_INT(parse(q1, 0, &a, &e), ==, 0);
    REQUIRE_INT(parse(q2, 0, &b, &e), ==, 0);
    lh_query_fingerprint(&a, fa);
    lh_query_fingerprint(&b, fb);
    CHECK(memcmp(fa, fb, sizeof(fa)) == 0);   /* limit, cursor, spacing, key order: same */
    lh_query_free(&b);
    const char *others[] = {
        "{\"query\":{\"full_text\":\"a c\",\"filters\":[{\"field\":\"host\",\"operator\":"
        "\"EQUALS\",\"value\":\"x\"}]}}",
        "{\"query\":{\"full_text\":\"a b\",\"filters\":[{\"field\":\"host\",\"operator\":"
        "\"EQUALS\",\"value\":\"y\"}]}}",
        "{\"query\":{\"full_text\":\"a b\",\"filters\":[{\"field\":\"host\",\"operator\":"
        "\"NOT_EQUALS\",\"value\":\"x\"}]}}",
        "{\"query\":{\"full_text\":\"\\\"a b\\\"\",\"filters\":[{\"field\":\"host\",\"operator\":"
        "\"EQUALS\",\"value\":\"x\"}]}}",
        "{\"query\":{\"full_text\":\"a b\",\"filters\":[{\"field\":\"host\",\"operator\":"
        "\"EQUALS\",\"value\":\"x\"}],\"time_range\":{\"start\":\"2026-05-23T00:00:00Z\"}}}",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        REQUIRE_INT(parse(others[i], 0, &b, &e), ==, 0);
        lh_query_fingerprint(&b, fb);
        CHECK(memcmp(fa, fb, sizeof(fa)) != 0);
        lh_query_free(&b);
    }
    lh_query_free(&a);
}

/* Mutated bodies (bytes flipped, inserted, deleted, cut) never crash the
 * parser: each is a query or a 400 with a message. */
TEST(queryd_query_mutations_never_crash)
{
    static const char *const seeds[] = {
        "{\"query\":{\"full_text\":\"a \\\"b c\\\" d\",\"filters\":[{\"field\":\"service\","
        "\"operator\":\"IN\",\"value\":[\"x\",2]},{\"field\":\"metadata.k\",\"operator\":\"GT\","
        "\"value\":1.5},{\"field\":\"timestamp\",\"operator\":\"LT\",\"value\":"
        "\"2026-05-23T08:00:00Z\"}],\"time_range\":{\"start\":1,\"end\":\"2026-05-24T00:00:00Z\"}},"
        "\"pagination\":{\"limit\":10,\"cursor\":\"abc\"}}",
        "{\"query\":{\"filters\":[{\"field\":\"level\",\"operator\":\"GTE\",\"value\":\"warn\"},"
        "{\"field\":\"trace_id\",\"operator\":\"EXISTS\",\"value\":false}]},\"interval\":\"1m\","
        "\"top\":[{\"field\":\"level\",\"size\":3}]}",
    };
    struct lh_query_limits l = lim();
    uint64_t s = 12345;
    char buf[1024];
    size_t ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        const char *seed = seeds[it % 2];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(s % 4);
        for (int e = 0; e < edits; e++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            size_t at = (size_t)(s % (n ? n : 1));
            switch ((s >> 20) % 4) {
            case 0: buf[at] = (char)(s >> 32); break;                 /* flip */
            case 1:                                                   /* insert */
                if (n + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = "{}[],:\"\\0a-.e "[(s >> 40) % 15];
                    n++;
                }
                break;
            case 2:                                                   /* delete */
                if (n > 1) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            default: n = at; break;                                   /* cut */
            }
        }
        struct lh_query q;
        struct lh_query_error e;
        int rc = lh_query_parse(buf, n, it % 2, &l, NOW, &q, &e);
        if (rc == 0) {
            ok++;
            lh_query_free(&q);
        } else {
            bad++;
            CHECK_INT(rc, ==, LH_EINVAL);
            CHECK(e.message[0] != '\0');
        }
    }
    CHECK(ok > 0 && bad > 0);
}
