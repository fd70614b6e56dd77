/* test_queryd_dsl.c - the OpenSearch Query DSL built by queryd/os_dsl.c:
 * user text that looks like query syntax stays data (asserted on the
 * generated JSON), every filter's clause, order and search_after, the
 * index list, and the numeric-range regular expressions checked against
 * strtod on many numbers (with PCRE2 as the regex engine). */
#include "../lh_test.h"
#include "../../queryd/os_dsl.h"

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>

#include "lh/time.h"

#define NOW (1779523574LL * LH_NS_PER_SEC)

static int parse(const char *body, struct lh_query *q)
{
    struct lh_query_limits l;
    lh_query_limits_default(&l);
    struct lh_query_error e;
    int rc = lh_query_parse(body, strlen(body), 0, &l, NOW, q, &e);
    if (rc)
        fprintf(stderr, "    parse: %s\n", e.message);
    return rc;
}

/* The search body for a query, parsed; NULL on error (err set). */
static json_t *body_for(const char *req, size_t limit, const struct lh_store_pos *after,
                        uint64_t cap, struct lh_err *err)
{
    struct lh_query q;
    if (parse(req, &q))
        return NULL;
    struct lh_bquery bq = { .tenant = "acme", .q = &q, .start_ns = q.start_ns,
                            .end_ns = q.end_ns, .limit = limit, .after = after,
                            .total_cap = cap };
    struct lh_buf b = LH_BUF_INIT;
    int rc = lh_osq_search_body(&bq, &b, err);
    json_t *j = NULL;
    if (rc == 0) {
        json_error_t je;
        j = json_loadb(b.data, b.len, 0, &je);
        if (!j)
            fprintf(stderr, "    not JSON (%s): %s\n", je.text, b.data);
    }
    lh_buf_free(&b);
    lh_query_free(&q);
    return j;
}

static json_t *path(json_t *j, const char *p)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", p);
    for (char *tok = strtok(buf, "/"); tok && j; tok = strtok(NULL, "/")) {
        if (json_is_array(j))
            j = json_array_get(j, (size_t)atoi(tok));
        else
            j = json_object_get(j, tok);
    }
    return j;
}

static const char *str_at(json_t *j, const char *p) { return json_string_value(path(j, p)); }

/* Every string anywhere in j, joined by '\n' (to look for syntax). */
static void all_keys(json_t *j, struct lh_buf *out)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v) {
            lh_buf_printf(out, "%s\n", k);
            all_keys(v, out);
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) all_keys(v, out);
    }
}

TEST(queryd_dsl_user_text_stays_data)
{
    struct lh_err err = { 0 };
    /* full_text: OR, field:value, (, *, ", \ and a quoted phrase */
    json_t *j = body_for("{\"query\":{\"full_text\":\"a* OR field:value ( \\\\ "
                         "\\\"x \\\\\\\" y\\\" ) zz\"}}", 10, NULL, 0, &err);
    REQUIRE(j);
    struct lh_buf keys = LH_BUF_INIT;
    all_keys(j, &keys);
    CHECK(!strstr(keys.data, "query_string"));
    CHECK(!strstr(keys.data, "simple_query_string"));
    CHECK(!strstr(keys.data, "regexp"));
    CHECK(!strstr(keys.data, "wildcard"));
    lh_buf_free(&keys);
    json_t *must = path(j, "query/bool/must");
    /* words a*, OR, field:value, zz and the phrase; ( ) \ have no token */
    REQUIRE_INT(json_array_size(must), ==, 5);
    /* a one-token word: match with operator and on message and raw, terms */
    CHECK_STR(str_at(must, "0/bool/should/0/match/message/query"), "a*");
    CHECK_STR(str_at(must, "0/bool/should/0/match/message/operator"), "and");
    CHECK_STR(str_at(must, "0/bool/should/1/match/raw/query"), "a*");
    CHECK_STR(str_at(must, "0/bool/should/2/term/trace_id"), "a*");
    CHECK_STR(str_at(must, "0/bool/should/3/term/user_id"), "a*");
    CHECK_STR(str_at(must, "0/bool/should/4/term/host"), "a*");
    CHECK_STR(str_at(must, "0/bool/should/5/term/custom_metadata"), "a*");
    CHECK_INT(json_integer_value(path(must, "0/bool/minimum_should_match")), ==, 1);
    CHECK_STR(str_at(must, "1/bool/should/0/match/message/query"), "OR");
    /* several tokens: a phrase */
    CHECK_STR(str_at(must, "2/bool/should/0/match_phrase/message/query"), "field:value");
    CHECK_STR(str_at(must, "3/bool/should/0/match/message/query"), "zz");
    CHECK_STR(str_at(must, "4/bool/should/0/match_phrase/message/query"), "x \" y");
    CHECK_STR(str_at(must, "4/bool/should/1/match/raw/query"), "x \" y");   /* no positions */
    CHECK_STR(str_at(must, "4/bool/should/1/match/raw/operator"), "and");
    json_decref(j);
}

TEST(queryd_dsl_filters)
{
    struct lh_err err = { 0 };
    json_t *j = body_for(
        "{\"query\":{\"filters\":["
        "{\"field\":\"service\",\"operator\":\"EQUALS\",\"value\":\"a\\\"b OR c:d\"},"
        "{\"field\":\"host\",\"operator\":\"NOT_EQUALS\",\"value\":\"h1\"},"
        "{\"field\":\"k8s.pod\",\"operator\":\"IN\",\"value\":[\"p1\",\"p(2)\"]},"
        "{\"field\":\"trace_id\",\"operator\":\"CONTAINS\",\"value\":\"a*b?c\\\\d\"},"
        "{\"field\":\"user_id\",\"operator\":\"PREFIX\",\"value\":\"usr_*\"},"
        "{\"field\":\"span_id\",\"operator\":\"EXISTS\"},"
        "{\"field\":\"region\",\"operator\":\"EXISTS\",\"value\":false},"
        "{\"field\":\"metadata.http.status\",\"operator\":\"EXISTS\"},"
        "{\"field\":\"metadata.k\",\"operator\":\"EQUALS\",\"value\":\"v\"},"
        "{\"field\":\"timestamp\",\"operator\":\"GTE\",\"value\":\"2026-05-23T08:00:00.5Z\"},"
        "{\"field\":\"level\",\"operator\":\"GTE\",\"value\":\"warn\"},"
        "{\"field\":\"metadata.duration_ms\",\"operator\":\"GT\",\"value\":250}"
        "],\"time_range\":{\"start\":\"2026-05-23T07:00:00Z\",\"end\":\"2026-05-23T09:00:00Z\"}}}",
        50, NULL, 10000, &err);
    REQUIRE(j);
    CHECK_INT(json_integer_value(path(j, "size")), ==, 51);
    CHECK_INT(json_integer_value(path(j, "track_total_hits")), ==, 10000);
    CHECK_STR(str_at(j, "sort/0/timestamp/order"), "desc");
    CHECK_STR(str_at(j, "sort/1/id/order"), "desc");
    CHECK(!path(j, "search_after"));
    json_t *f = path(j, "query/bool/filter");
    CHECK_STR(str_at(f, "0/term/tenant"), "acme");
    CHECK_STR(str_at(f, "1/range/timestamp/gte"), "2026-05-23T07:00:00.000000000Z");
    CHECK_STR(str_at(f, "1/range/timestamp/lt"), "2026-05-23T09:00:00.000000000Z");
    CHECK_STR(str_at(f, "2/term/service"), "a\"b OR c:d");
    CHECK_STR(str_at(f, "3/terms/k8s.pod/1"), "p(2)");
    CHECK_STR(str_at(f, "4/wildcard/trace_id/value"), "*a\\*b\\?c\\\\d*");
    CHECK_STR(str_at(f, "5/prefix/user_id"), "usr_*");
    CHECK_STR(str_at(f, "6/exists/field"), "span_id");
    CHECK_STR(str_at(f, "7/prefix/custom_metadata.http.status"), "");
    CHECK_STR(str_at(f, "8/term/custom_metadata.k"), "v");
    CHECK_STR(str_at(f, "9/range/timestamp/gte"), "2026-05-23T08:00:00.500000000Z");
    CHECK_STR(str_at(f, "10/terms/level/0"), "WARN");
    CHECK_STR(str_at(f, "10/terms/level/2"), "FATAL");
    const char *re = str_at(f, "11/regexp/custom_metadata.duration_ms/value");
    REQUIRE(re);
    CHECK_CONTAINS(re, "&(.*[0-9].*)");
    CHECK_STR(str_at(f, "11/regexp/custom_metadata.duration_ms/flags"), "INTERSECTION");
    CHECK_INT(json_array_size(f), ==, 12);
    json_t *mn = path(j, "query/bool/must_not");
    CHECK_STR(str_at(mn, "0/term/host"), "h1");
    CHECK_STR(str_at(mn, "1/exists/field"), "region");
    CHECK_INT(json_array_size(mn), ==, 2);
    json_decref(j);

    /* a cursor: search_after [ts, id] */
    struct lh_store_pos pos = { .ts_ns = 1779523574123456789LL };
    snprintf(pos.id, sizeof(pos.id), "id\"x");
    j = body_for("{}", 100, &pos, 0, &err);
    REQUIRE(j);
    CHECK_INT(json_integer_value(path(j, "search_after/0")), ==, 1779523574123456789LL);
    CHECK_STR(str_at(j, "search_after/1"), "id\"x");
    CHECK(json_is_false(path(j, "track_total_hits")));
    CHECK(!path(j, "query/bool/filter/1/range/timestamp/lt"));   /* open end */
    json_decref(j);

    /* message and raw are analysed text there: only EXISTS applies */
    j = body_for("{\"query\":{\"filters\":[{\"field\":\"message\",\"operator\":\"EXISTS\"},"
                 "{\"field\":\"message\",\"operator\":\"CONTAINS\",\"value\":\"x\"}]}}", 10, NULL,
                 0, &err);
    CHECK(j == NULL);
    CHECK_INT(err.code, ==, LH_EINVAL);
    CHECK(strncmp(err.msg, "query.filters[1].operator: CONTAINS on message", 46) == 0);
}

TEST(queryd_dsl_aggregations_and_indices)
{
    struct lh_query q;
    REQUIRE(parse("{\"query\":{\"full_text\":\"x\"}}", &q) == 0);
    struct lh_bquery bq = { .tenant = "acme", .q = &q, .start_ns = q.start_ns };
    struct lh_buf b = LH_BUF_INIT;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_osq_histogram_body(&bq, 60 * LH_NS_PER_SEC, &b, &err), ==, 0);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    REQUIRE(j);
    CHECK_STR(str_at(j, "aggs/h/date_histogram/fixed_interval"), "60000ms");
    CHECK_INT(json_integer_value(path(j, "size")), ==, 0);
    json_decref(j);
    lh_buf_reset(&b);
    struct lh_qtop top = { .field = "service", .kind = LH_QK_KEYWORD, .size = 5 };
    REQUIRE_INT(lh_osq_top_body(&bq, &top, &b, &err), ==, 0);
    j = json_loadb(b.data, b.len, 0, NULL);
    REQUIRE(j);
    CHECK_STR(str_at(j, "aggs/t/terms/field"), "service");
    CHECK_INT(json_integer_value(path(j, "aggs/t/terms/size")), ==, 5);
    CHECK_STR(str_at(j, "aggs/m/missing/field"), "service");
    json_decref(j);
    struct lh_qtop mt = { .field = "metadata.k", .kind = LH_QK_META, .size = 5 };
    CHECK_INT(lh_osq_top_body(&bq, &mt, &b, &err), ==, LH_EINVAL);
    CHECK(strncmp(err.msg, "top.field:", 10) == 0);
    lh_buf_free(&b);
    lh_query_free(&q);

    int64_t day = 86400 * LH_NS_PER_SEC;
    int64_t t0 = 20596 * day;   /* 2026-05-23 */
    lh_buf_reset(&b);
    lh_osq_indices("logs", "acme", t0 + 3600 * LH_NS_PER_SEC, t0 + day + 60, 0, &b);
    CHECK_STR(b.data, "logs-acme-2026.05.23,logs-acme-2026.05.24");
    lh_buf_reset(&b);
    lh_osq_indices("logs", "Acme Corp/../x", t0, t0 + day, 0, &b);
    CHECK_STR(b.data, "logs-acme_corp____x-2026.05.23");
    lh_buf_reset(&b);
    lh_osq_indices("logs", "acme", t0 - 40 * day, t0, 0, &b);
    CHECK_STR(b.data, "logs-acme-*");
    lh_buf_reset(&b);
    lh_osq_indices("logs", "", t0, 0, t0 + 10, &b);   /* open end: up to tomorrow */
    CHECK_STR(b.data, "logs-default-2026.05.23,logs-default-2026.05.24");
    lh_buf_free(&b);
}

/* The regexp for `x op n` must accept exactly the numbers strtod puts in
 * range (among plain decimal texts). */
static int check_regexp(enum lh_qop op, const char *n, const char *const *values, size_t nvalues)
{
    struct lh_buf re = LH_BUF_INIT;
    if (lh_osq_numeric_regexp(op, n, &re) != 0)
        return -1;
    int errc;
    PCRE2_SIZE erroff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re.data, re.len, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                                     &errc, &erroff, NULL);
    if (!code) {
        fprintf(stderr, "    regexp for %s %s does not compile: %s\n", lh_qop_name(op), n,
                re.data);
        lh_buf_free(&re);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int bad = 0;
    double nv = strtod(n, NULL);
    for (size_t i = 0; i < nvalues; i++) {
        const char *v = values[i];
        int matched = pcre2_match(code, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL) >= 0 &&
                      strpbrk(v, "0123456789") != NULL;
        double x = strtod(v, NULL);
        int want = op == LH_QOP_GT ? x > nv : op == LH_QOP_GTE ? x >= nv
                 : op == LH_QOP_LT ? x < nv : x <= nv;
        if (matched != want) {
            if (bad++ < 3)
                fprintf(stderr, "    %s %s: \"%s\" %s (regexp %s)\n", lh_qop_name(op), n, v,
                        matched ? "matched" : "did not match", re.data);
        }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    lh_buf_free(&re);
    return bad;
}

TEST(queryd_dsl_numeric_regexp_agrees_with_strtod)
{
    /* values: integers, decimals, signs, leading zeros, trailing dots/zeros */
    static char store[6000][16];
    const char *values[6000];
    size_t n = 0;
    for (int i = -1200; i <= 1200; i += 7) {
        snprintf(store[n], 16, "%d", i);
        values[n] = store[n];
        n++;
        snprintf(store[n], 16, "%d.%d", i / 10, abs(i) % 100);
        values[n] = store[n];
        n++;
    }
    const char *extra[] = { "0", "-0", "+0", "0.0", "-0.000", "00", "007", "+5", "5.", "250",
                            "250.0", "250.000001", "249.9999", "251", "1000", "99.5", "99.50",
                            "99.49", "100", "0.001", "0.0009", "0.00100", "-1.25", "-1.2",
                            "-1.250", "-1.2501", "9", "10", "-10", "-9.99", "123.45",
                            "123.4500", "123.449", "1e3", "abc", "-", "+", ".", "", "5.5.5",
                            "1234567", "-0.5", "0.5", "-100", "-99.9", "-100.1", "1", "2",
                            "19", "20", "21" };
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        snprintf(store[n], 16, "%s", extra[i]);
        values[n] = store[n];
        n++;
    }
    /* texts without a plain decimal form are out of scope (documented):
     * keep only those strtod reads whole and that contain a digit */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char *end;
        strtod(values[i], &end);
        if (*end == '\0' && strpbrk(values[i], "0123456789") && !strpbrk(values[i], "eE"))
            values[k++] = values[i];
    }
    n = k;
    const char *thresholds[] = { "0", "-0", "1", "9", "10", "19", "20", "99.5", "-1.25", "100",
                                 "0.001", "123.450", "-100", "250", "1000", "-0.5", "0.5", "007",
                                 "+3" };
    enum lh_qop ops[] = { LH_QOP_GT, LH_QOP_GTE, LH_QOP_LT, LH_QOP_LTE };
    int total_bad = 0;
    for (size_t t = 0; t < sizeof(thresholds) / sizeof(thresholds[0]); t++)
        for (size_t o = 0; o < 4; o++)
            total_bad += check_regexp(ops[o], thresholds[t], values, n) != 0;
    CHECK_INT(total_bad, ==, 0);
    struct lh_buf re = LH_BUF_INIT;
    CHECK_INT(lh_osq_numeric_regexp(LH_QOP_GT, "abc", &re), ==, LH_EINVAL);
    CHECK_INT(lh_osq_numeric_regexp(LH_QOP_EQUALS, "1", &re), ==, LH_EINVAL);
    lh_buf_free(&re);
}
