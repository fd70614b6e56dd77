/* Unit tests for json.c: RFC 8259 conformance cases, token spans, string
 * decoding, limits, robustness (truncation, random bytes) and agreement
 * with jansson on randomly generated documents. */
#include "../lh_test.h"
#include "lh/json.h"

#include <jansson.h>
#include <math.h>

/* A deterministic PRNG (xorshift64*). */
static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 2654435761u + 88172645463325252ULL; }
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static unsigned rnd(unsigned n) { return (unsigned)(rng() % n); }

/* Scans a whole document held in an exactly-sized heap copy (so ASan sees
 * any read past the end). Returns 0 for a valid document or the error code;
 * *err_off gets the error offset. */
static int scan_all(const char *doc, size_t len, enum lh_json_utf8 mode, unsigned depth,
                    size_t *err_off, struct lh_err *err)
{
    char *copy = malloc(len ? len : 1);
    REQUIRE(copy);
    memcpy(copy, doc, len);
    struct lh_json js;
    struct lh_json_token t;
    lh_json_init(&js, copy, len, depth, mode);
    int rc;
    size_t ntok = 0;
    while ((rc = lh_json_next(&js, &t, err)) > 0) {
        /* Every span lies inside the buffer. */
        CHECK(t.off <= len && t.len <= len - t.off);
        CHECK(t.p == copy + t.off);
        ntok++;
        REQUIRE(ntok <= len + 1);   /* every token consumes at least one byte */
    }
    if (rc == 0) {
        /* END is sticky. */
        CHECK_INT(lh_json_next(&js, &t, err), ==, LH_JSON_END);
    } else {
        /* So is an error. */
        CHECK_INT(lh_json_next(&js, &t, NULL), ==, LH_EINVAL);
    }
    if (err_off)
        *err_off = js.err_off;
    free(copy);
    return rc;
}

struct json_case {
    const char *doc;
    int valid;
    long err_off;   /* for invalid documents: the byte the error names */
};

#define OK(d)        { d, 1, -1 }
#define BAD(d, off)  { d, 0, off }

static const struct json_case cases[] = {
    /* valid */
    OK("{}"), OK("[]"), OK("0"), OK("-0"), OK("1"), OK("-1"), OK("123456789"), OK("1.5"),
    OK("-0.0"), OK("1e10"), OK("1E+10"), OK("1e-10"), OK("0.5e3"), OK("1.0E-0"),
    OK("-1.23e-4"), OK("1e0001"), OK("\"abc\""), OK("\"\""), OK("true"), OK("false"),
    OK("null"), OK(" [ 1 , 2 ] "), OK("\t\n\r {}\n"), OK("{\"a\":1}"),
    OK("{ \"a\" : 1 , \"b\" : [ ] }"), OK("{\"a\":{\"b\":[1,{\"c\":null}]}}"),
    OK("[[],[[]],{}]"), OK("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), OK("\"\\u0041\""),
    OK("\"\\u00e9\\u00E9\""), OK("\"\\uD83D\\uDE00\""), OK("\"\\uD800\""), OK("\"\\uDC00\""),
    OK("\"\\u0000\""), OK("\"\xc3\xa9\""), OK("\"\xf0\x9f\x98\x80\""), OK("\"\xe2\x82\xac\""),
    OK("\"\xef\xbf\xbf\""), OK("\"\xf4\x8f\xbf\xbf\""), OK("{\"a\":1,\"a\":2}"),
    OK("[1,true,false,null,\"x\",{},[]]"), OK("\" \""), OK("\"\x7f\""), OK("\"a/b\""),
    OK("[-0,0.0,0e0,-0E-0]"), OK("{\"\":\"\"}"),
    /* invalid */
    BAD("", 0), BAD("   ", 3), BAD("[1,]", 3), BAD("{\"a\":1,}", 7), BAD("[1 2]", 3),
    BAD("{\"a\" 1}", 5), BAD("{a:1}", 1), BAD("{'a':1}", 1), BAD("{\"a\":}", 5), BAD("[", 1),
    BAD("]", 0), BAD("{]", 1), BAD("[}", 1), BAD("01", 0), BAD("-01", 1), BAD("00", 0),
    BAD("1.", 2), BAD(".5", 0), BAD("-", 1), BAD("+1", 0), BAD("1e", 2), BAD("1e+", 3),
    BAD("1.e5", 2), BAD("0x10", 1), BAD("Infinity", 0), BAD("NaN", 0), BAD("-Infinity", 1),
    BAD("tru", 3), BAD("trUe", 2), BAD("nul", 3), BAD("True", 0), BAD("nulll", 4),
    BAD("\"abc", 4), BAD("\"\\q\"", 2), BAD("\"\\u12\"", 5), BAD("\"\\uZZZZ\"", 3),
    BAD("\"\\", 2), BAD("\"\\u", 3), BAD("\"a\x01\"", 2), BAD("\"a\nb\"", 2),
    BAD("\"\t\"", 1), BAD("\"\x80\"", 1), BAD("\"\xc0\x80\"", 1), BAD("\"\xed\xa0\x80\"", 1),
    BAD("\"\xf4\x90\x80\x80\"", 1), BAD("\"ab\xe2\x82\"", 3), BAD("\"\xff\"", 1),
    BAD("\"\xf8\x88\x80\x80\x80\"", 1), BAD("[1] [2]", 4), BAD("{} x", 3), BAD("1 2", 2),
    BAD("\"a\" \"b\"", 4), BAD("{\"a\":1 \"b\":2}", 7), BAD("[,1]", 1), BAD("[1,,2]", 3),
    BAD("{,}", 1), BAD("{\"a\":1,,\"b\":2}", 7), BAD("\xef\xbb\xbf{}", 0), BAD("{\"a\"}", 4),
    BAD("{\"a\":1", 6), BAD("[1,2", 4), BAD("[\"a\",", 5), BAD("/* c */ 1", 0),
    BAD("[01]", 1), BAD("1.5.3", 3), BAD("--1", 1), BAD("1e5e5", 3), BAD("{\"a\":1}}", 7),
    BAD("[1]]", 3), BAD("[\x0c" "1]", 1), BAD("\xa0", 0), BAD("{\"\x01\":1}", 2),
    BAD("{1:2}", 1), BAD("[\"a\":1]", 4), BAD("{\"a\",1}", 4), BAD("'a'", 0),
    BAD("[1,2,]", 5), BAD("1e-", 3), BAD("-.5", 1), BAD("\"\\x41\"", 2),
    BAD("\"\\U0041\"", 2), BAD("[null,]", 6), BAD("{\"a\":tru}", 8),
};

/* The length of a case: "" has no NUL to stop at, the others may hold
 * none either, so strlen is right for all of them. */
TEST(json_suite_cases)
{
    size_t nvalid = 0, ninvalid = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct json_case *c = &cases[i];
        struct lh_err err = {0};
        size_t off = 0;
        int rc = scan_all(c->doc, strlen(c->doc), LH_JSON_UTF8_REJECT, 0, &off, &err);
        if (c->valid) {
            nvalid++;
            if (rc != 0)
                lh_test_fail(__FILE__, __LINE__, "case %zu '%s' rejected: %s", i, c->doc,
                             err.msg);
        } else {
            ninvalid++;
            if (rc != LH_EINVAL) {
                lh_test_fail(__FILE__, __LINE__, "case %zu '%s' accepted", i, c->doc);
                continue;
            }
            if ((long)off != c->err_off)
                lh_test_fail(__FILE__, __LINE__, "case %zu '%s': error at %zu, want %ld (%s)",
                             i, c->doc, off, c->err_off, err.msg);
            char want[32];
            snprintf(want, sizeof(want), "at byte %zu", off);
            CHECK_CONTAINS(err.msg, want);
            CHECK_INT(err.code, ==, LH_EINVAL);
        }
    }
    CHECK_INT(nvalid, >=, 40);
    CHECK_INT(ninvalid, >=, 60);
}

TEST(json_tokens_and_spans)
{
    const char *doc = " {\"a\" : [1,-2.5e3,\"x\\\"y\",true,false,null],\"b\":{}} ";
    static const struct {
        enum lh_json_type type;
        const char *text;
        unsigned flags;
    } want[] = {
        { LH_JSON_OBJECT, "{", 0 },      { LH_JSON_KEY, "a", 0 },
        { LH_JSON_ARRAY, "[", 0 },       { LH_JSON_NUMBER, "1", 0 },
        { LH_JSON_NUMBER, "-2.5e3", LH_JSON_FLOAT },
        { LH_JSON_STRING, "x\\\"y", LH_JSON_ESCAPED },
        { LH_JSON_TRUE, "true", 0 },     { LH_JSON_FALSE, "false", 0 },
        { LH_JSON_NULL, "null", 0 },     { LH_JSON_ARRAY_END, "]", 0 },
        { LH_JSON_KEY, "b", 0 },         { LH_JSON_OBJECT, "{", 0 },
        { LH_JSON_OBJECT_END, "}", 0 },  { LH_JSON_OBJECT_END, "}", 0 },
    };
    struct lh_json js;
    struct lh_json_token t;
    struct lh_err err = {0};
    lh_json_init(&js, doc, strlen(doc), 0, LH_JSON_UTF8_REJECT);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int rc = lh_json_next(&js, &t, &err);
        REQUIRE_INT(rc, ==, want[i].type);
        CHECK_INT(t.type, ==, want[i].type);
        CHECK_INT(t.len, ==, strlen(want[i].text));
        CHECK(memcmp(t.p, want[i].text, t.len) == 0);
        CHECK(t.p == doc + t.off);
        CHECK_INT(t.flags, ==, want[i].flags);
    }
    CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_END);
    CHECK_INT(js.depth, ==, 0);
    /* The key token's span starts after its quote. */
    lh_json_init(&js, doc, strlen(doc), 0, LH_JSON_UTF8_REJECT);
    lh_json_next(&js, &t, &err);
    lh_json_next(&js, &t, &err);
    CHECK_INT(t.off, ==, 3);
    CHECK_STR(lh_json_type_name(LH_JSON_KEY), "key");
}

struct unesc_case {
    const char *in;
    const char *out;
};

static const struct unesc_case unesc[] = {
    { "", "" },
    { "plain", "plain" },
    { "\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t" },
    { "\\u0041\\u0062", "Ab" },
    { "\\u00e9\\u00C9", "\xc3\xa9\xc3\x89" },
    { "\\u20AC", "\xe2\x82\xac" },
    { "\\u07ff\\u0800\\uffff", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf" },
    { "\\uD83D\\uDE00", "\xf0\x9f\x98\x80" },
    { "\\udbff\\udfff", "\xf4\x8f\xbf\xbf" },
    { "\\uD800", "\xef\xbf\xbd" },
    { "\\uDC00", "\xef\xbf\xbd" },
    { "\\uD800\\u0041", "\xef\xbf\xbd" "A" },
    { "\\uD800x", "\xef\xbf\xbd" "x" },
    { "\\uD800\\uD800\\uDC00", "\xef\xbf\xbd\xf0\x90\x80\x80" },
    { "\\uDE00\\uD83D", "\xef\xbf\xbd\xef\xbf\xbd" },
    { "a\\u0000b", "a\xef\xbf\xbd" "b" },
    { "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" },
    /* invalid UTF-8 (REPAIR mode spans): one U+FFFD per bad byte */
    { "a\xff" "b", "a\xef\xbf\xbd" "b" },
    { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd" },
    { "x\x80\x80\x80\x80y", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy" },
    { "the quick brown fox jumps over the lazy dog\\n and then some more text\\t!",
      "the quick brown fox jumps over the lazy dog\n and then some more text\t!" },
};

TEST(json_unescape_cases)
{
    struct lh_arena arena = LH_ARENA_INIT;
    for (size_t i = 0; i < sizeof(unesc) / sizeof(unesc[0]); i++) {
        const char *in = unesc[i].in, *want = unesc[i].out;
        struct lh_buf b = LH_BUF_INIT;
        struct lh_err err = {0};
        REQUIRE_INT(lh_buf_append(&b, "<", 1), ==, 0);
        REQUIRE_INT(lh_json_unescape(in, strlen(in), &b, &err), ==, 0);
        CHECK_INT(b.len, ==, 1 + strlen(want));
        if (b.len != 1 + strlen(want) || memcmp(b.data + 1, want, b.len - 1) != 0)
            lh_test_fail(__FILE__, __LINE__, "unescape case %zu differs", i);
        CHECK_INT(b.data[b.len], ==, 0);
        lh_buf_free(&b);

        char *s = NULL;
        size_t n = 0;
        REQUIRE_INT(lh_json_unescape_arena(in, strlen(in), &arena, &s, &n, &err), ==, 0);
        CHECK_INT(n, ==, strlen(want));
        CHECK_STR(s, want);
    }
    lh_arena_free(&arena);
}

TEST(json_unescape_malformed)
{
    static const char *bad[] = { "\\q", "\\", "\\u12", "ab\\uZZZZ", "\\u00" };
    struct lh_arena arena = LH_ARENA_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lh_buf b = LH_BUF_INIT;
        struct lh_err err = {0};
        REQUIRE_INT(lh_buf_puts(&b, "keep"), ==, 0);
        CHECK_INT(lh_json_unescape(bad[i], strlen(bad[i]), &b, &err), ==, LH_EINVAL);
        CHECK_STR(b.data, "keep");
        CHECK_CONTAINS(err.msg, "malformed escape");
        char *s = NULL;
        CHECK_INT(lh_json_unescape_arena(bad[i], strlen(bad[i]), &arena, &s, NULL, &err), ==,
                  LH_EINVAL);
        lh_buf_free(&b);
    }
    lh_arena_free(&arena);
}

TEST(json_str_arena_copies_or_decodes)
{
    const char *doc = "[\"plain\",\"esc\\n\",\"bad\xff\"]";
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_json js;
    struct lh_json_token t;
    struct lh_err err = {0};
    char *s;
    size_t n;
    lh_json_init(&js, doc, strlen(doc), 0, LH_JSON_UTF8_REPAIR);
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_ARRAY);
    CHECK_INT(lh_json_str_arena(&t, &arena, &s, &n, &err), ==, LH_EINVAL);
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_STRING);
    CHECK_INT(t.flags, ==, 0);
    REQUIRE_INT(lh_json_str_arena(&t, &arena, &s, &n, &err), ==, 0);
    CHECK_STR(s, "plain");
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_STRING);
    CHECK_INT(t.flags, ==, LH_JSON_ESCAPED);
    REQUIRE_INT(lh_json_str_arena(&t, &arena, &s, &n, &err), ==, 0);
    CHECK_STR(s, "esc\n");
    CHECK_INT(n, ==, 4);
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_STRING);
    CHECK_INT(t.flags, ==, LH_JSON_BADUTF8);
    REQUIRE_INT(lh_json_str_arena(&t, &arena, &s, &n, &err), ==, 0);
    CHECK_STR(s, "bad\xef\xbf\xbd");
    lh_arena_free(&arena);
}

TEST(json_utf8_reject_and_repair)
{
    const char *doc = "{\"k\xc3\xa9y\":\"ok \xe2\x82\xac then \xc3\x28 bad\"}";
    size_t bad_at = strlen("{\"k\xc3\xa9y\":\"ok \xe2\x82\xac then ");
    struct lh_err err = {0};
    size_t off = 0;
    CHECK_INT(scan_all(doc, strlen(doc), LH_JSON_UTF8_REJECT, 0, &off, &err), ==, LH_EINVAL);
    CHECK_INT(off, ==, bad_at);
    char want[64];
    snprintf(want, sizeof(want), "invalid UTF-8 byte 0xc3 in a string at byte %zu", bad_at);
    CHECK_CONTAINS(err.msg, want);

    CHECK_INT(scan_all(doc, strlen(doc), LH_JSON_UTF8_REPAIR, 0, &off, &err), ==, 0);
    struct lh_json js;
    struct lh_json_token t;
    lh_json_init(&js, doc, strlen(doc), 0, LH_JSON_UTF8_REPAIR);
    lh_json_next(&js, &t, &err);
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_KEY);
    CHECK_INT(t.flags, ==, 0);
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_STRING);
    CHECK_INT(t.flags, ==, LH_JSON_BADUTF8);
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_json_unescape(t.p, t.len, &b, &err), ==, 0);
    CHECK_STR(b.data, "ok \xe2\x82\xac then \xef\xbf\xbd( bad");
    lh_buf_free(&b);

    /* Repair mode still rejects what is not about UTF-8. */
    CHECK_INT(scan_all("\"\xff\x01\"", 4, LH_JSON_UTF8_REPAIR, 0, &off, &err), ==, LH_EINVAL);
    CHECK_INT(off, ==, 2);
    CHECK_CONTAINS(err.msg, "control character 0x01");
}

static void nested(struct lh_buf *b, unsigned depth, int objects)
{
    lh_buf_reset(b);
    for (unsigned i = 0; i < depth; i++)
        lh_buf_puts(b, objects && (i & 1) ? "{\"k\":" : "[");
    lh_buf_puts(b, "1");
    for (unsigned i = depth; i-- > 0;)
        lh_buf_puts(b, objects && (i & 1) ? "}" : "]");
}

TEST(json_depth_limit)
{
    struct lh_buf b = LH_BUF_INIT;
    struct lh_err err = {0};
    size_t off;
    static const unsigned limits[] = { 1, 5, 0, 2000 };
    static const unsigned effective[] = { 1, 5, LH_JSON_DEPTH_DEFAULT, LH_JSON_DEPTH_LIMIT };
    for (size_t i = 0; i < 4; i++) {
        for (int objects = 0; objects < 2; objects++) {
            unsigned n = effective[i];
            nested(&b, n, objects);
            CHECK_INT(scan_all(b.data, b.len, LH_JSON_UTF8_REJECT, limits[i], &off, &err),
                      ==, 0);
            nested(&b, n + 1, objects);
            CHECK_INT(scan_all(b.data, b.len, LH_JSON_UTF8_REJECT, limits[i], &off, &err),
                      ==, LH_EINVAL);
            /* The opening bracket of level n + 1 is where it fails. */
            size_t at = 0;
            for (unsigned k = 0; k < n; k++)
                at += objects && (k & 1) ? 5 : 1;
            CHECK_INT(off, ==, at);
            char want[64];
            snprintf(want, sizeof(want), "nesting deeper than %u at byte %zu", n, at);
            CHECK_STR(err.msg, want);
        }
    }
    lh_buf_free(&b);
}

TEST(json_error_messages)
{
    struct lh_err err = {0};
    size_t off;
    scan_all("[1,]", 4, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected ']' at byte 3, expected a value");
    scan_all("{\"a\" 1}", 7, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected '1' at byte 5, expected ':' after the key");
    scan_all("[1,2", 4, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected end of input at byte 4, expected ',' or ']'");
    scan_all("{\"a\":1 x", 8, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected 'x' at byte 7, expected ',' or '}'");
    scan_all("{\"a\":1,}", 8, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected '}' at byte 7, expected a string key");
    scan_all("01", 2, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "leading zero in a number at byte 0");
    scan_all("{} {}", 5, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected '{' at byte 3, expected end of input after the top-level "
                       "value");
    scan_all("\"a\nb\"", 5, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "control character 0x0a in a string at byte 2, expected it escaped");
    scan_all("[\x01]", 3, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected byte 0x01 at byte 1, expected a value");
    scan_all("\"abc", 4, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_CONTAINS(err.msg, "end of input at byte 4 in the string starting at byte 0");
    scan_all("[tx]", 4, LH_JSON_UTF8_REJECT, 0, &off, &err);
    CHECK_STR(err.msg, "unexpected 'x' at byte 2, expected 'true'");

    /* After an error every call fails and names the first error. */
    struct lh_json js;
    struct lh_json_token t;
    lh_json_init(&js, "[1,,", 4, 0, LH_JSON_UTF8_REJECT);
    while (lh_json_next(&js, &t, &err) > 0)
        ;
    CHECK_INT(js.err_off, ==, 3);
    CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "at byte 3");
    /* A NULL err is fine. */
    lh_json_init(&js, "x", 1, 0, LH_JSON_UTF8_REJECT);
    CHECK_INT(lh_json_next(&js, &t, NULL), ==, LH_EINVAL);
}

TEST(json_skip_values)
{
    const char *doc = "{\"skip1\":{\"a\":[1,{\"b\":\"}]\"}],\"c\":null},\"keep\":7,"
                      "\"skip2\":[[],[[\"x\"]]],\"skip3\":\"str\",\"last\":true}";
    struct lh_json js;
    struct lh_json_token t;
    struct lh_err err = {0};
    lh_json_init(&js, doc, strlen(doc), 0, LH_JSON_UTF8_REJECT);
    REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_OBJECT);
    int seen_keep = 0, seen_last = 0;
    while (lh_json_next(&js, &t, &err) == LH_JSON_KEY) {
        if (t.len == 4 && memcmp(t.p, "keep", 4) == 0) {
            REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_NUMBER);
            int64_t v;
            CHECK_INT(lh_json_int64(&t, &v, &err), ==, 0);
            CHECK_INT(v, ==, 7);
            seen_keep = 1;
        } else if (t.len == 4 && memcmp(t.p, "last", 4) == 0) {
            CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_TRUE);
            seen_last = 1;
        } else {
            REQUIRE_INT(lh_json_skip(&js, &err), ==, 0);
            CHECK_INT(js.depth, ==, 1);
        }
    }
    CHECK_INT(t.type, ==, LH_JSON_OBJECT_END);
    CHECK(seen_keep && seen_last);
    CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_END);

    /* Skipping validates, and fails where there is no value. */
    lh_json_init(&js, "[[1,]]", 6, 0, LH_JSON_UTF8_REJECT);
    lh_json_next(&js, &t, &err);
    CHECK_INT(lh_json_skip(&js, &err), ==, LH_EINVAL);
    CHECK_INT(js.err_off, ==, 4);
    lh_json_init(&js, "[]", 2, 0, LH_JSON_UTF8_REJECT);
    lh_json_next(&js, &t, &err);
    CHECK_INT(lh_json_skip(&js, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "no value to skip at byte 1");
    /* A whole document. */
    lh_json_init(&js, doc, strlen(doc), 0, LH_JSON_UTF8_REJECT);
    CHECK_INT(lh_json_skip(&js, &err), ==, 0);
    CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_END);
}

TEST(json_numbers_convert)
{
    static const struct {
        const char *s;
        int rc;
        int64_t v;
    } ints[] = {
        { "0", 0, 0 }, { "-0", 0, 0 }, { "42", 0, 42 }, { "-17", 0, -17 },
        { "9223372036854775807", 0, INT64_MAX }, { "-9223372036854775808", 0, INT64_MIN },
        { "9223372036854775808", LH_EINVAL, 0 }, { "-9223372036854775809", LH_EINVAL, 0 },
        { "100000000000000000000", LH_EINVAL, 0 }, { "1.0", LH_EINVAL, 0 },
        { "1e3", LH_EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        struct lh_json js;
        struct lh_json_token t;
        struct lh_err err = {0};
        lh_json_init(&js, ints[i].s, strlen(ints[i].s), 0, LH_JSON_UTF8_REJECT);
        REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_NUMBER);
        int64_t v = 12345;
        CHECK_INT(lh_json_int64(&t, &v, &err), ==, ints[i].rc);
        if (ints[i].rc == 0)
            CHECK(v == ints[i].v);
    }
    /* Doubles, including one too long for the stack copy. */
    char longnum[300];
    memset(longnum, '1', 200);
    strcpy(longnum + 200, ".5e-9");
    const char *reals[] = { "1.5e3", "-0.25", "1e400", "0", longnum };
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        struct lh_json js;
        struct lh_json_token t;
        struct lh_err err = {0};
        char *copy = strdup(reals[i]);
        size_t n = strlen(copy);
        lh_json_init(&js, copy, n, 0, LH_JSON_UTF8_REJECT);
        REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_NUMBER);
        double d;
        REQUIRE_INT(lh_json_double(&t, &d, &err), ==, 0);
        CHECK(d == strtod(copy, NULL));
        CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_END);
        free(copy);
    }
    struct lh_json_token notnum = { .type = LH_JSON_STRING };
    double d;
    CHECK_INT(lh_json_double(&notnum, &d, NULL), ==, LH_EINVAL);
}

/* Every special byte at every position of strings 0..100 bytes long, so
 * the 32-, 16- and 8-byte fast paths and their tails all meet it. */
TEST(json_string_fast_path_boundaries)
{
    char doc[128], expect[128];
    struct lh_err err = {0};
    for (size_t len = 1; len <= 100; len++) {
        for (size_t at = 0; at < len; at++) {
            /* A control byte: the error names its exact offset. */
            doc[0] = '"';
            for (size_t i = 0; i < len; i++)
                doc[1 + i] = (char)('a' + (i % 26));
            doc[1 + len] = '"';
            doc[1 + at] = 0x1f;
            size_t off = 0;
            CHECK_INT(scan_all(doc, len + 2, LH_JSON_UTF8_REJECT, 0, &off, &err), ==,
                      LH_EINVAL);
            CHECK_INT(off, ==, at + 1);

            /* A stray quote ends the string early: trailing data. */
            doc[1 + at] = '"';
            CHECK_INT(scan_all(doc, len + 2, LH_JSON_UTF8_REJECT, 0, &off, &err), ==,
                      LH_EINVAL);
            CHECK_INT(off, ==, at + 2);

            /* An escape "\n" in place of two bytes decodes right. */
            if (at + 1 < len) {
                doc[1 + at] = '\\';
                doc[2 + at] = 'n';
                struct lh_json js;
                struct lh_json_token t;
                lh_json_init(&js, doc, len + 2, 0, LH_JSON_UTF8_REJECT);
                REQUIRE_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_STRING);
                CHECK_INT(t.len, ==, len);
                CHECK_INT(t.flags, ==, LH_JSON_ESCAPED);
                struct lh_buf b = LH_BUF_INIT;
                REQUIRE_INT(lh_json_unescape(t.p, t.len, &b, &err), ==, 0);
                for (size_t i = 0, o = 0; i < len; i++, o++) {
                    expect[o] = (char)('a' + (i % 26));
                    if (i == at) {
                        expect[o] = '\n';
                        i++;
                    }
                }
                CHECK_INT(b.len, ==, len - 1);
                CHECK(memcmp(b.data, expect, len - 1) == 0);
                lh_buf_free(&b);
                doc[2 + at] = (char)('a' + ((at + 1) % 26));
            }

            /* A 2-byte UTF-8 sequence is fine; a lone lead byte is not. */
            if (at + 1 < len) {
                doc[1 + at] = (char)0xc3;
                doc[2 + at] = (char)0xa9;
                CHECK_INT(scan_all(doc, len + 2, LH_JSON_UTF8_REJECT, 0, &off, &err), ==, 0);
                doc[2 + at] = 'x';
                CHECK_INT(scan_all(doc, len + 2, LH_JSON_UTF8_REJECT, 0, &off, &err), ==,
                          LH_EINVAL);
                CHECK_INT(off, ==, at + 1);
            }
        }
    }
}

/* ---- random documents -------------------------------------------------- */

static void gen_ws(struct lh_buf *b)
{
    static const char ws[] = " \t\n\r";
    if (rnd(4) == 0) {
        unsigned n = 1 + rnd(3);
        for (unsigned i = 0; i < n; i++)
            lh_buf_putc(b, ws[rnd(4)]);
    }
}

static void put_cp_utf8(struct lh_buf *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) { o[0] = (char)cp; n = 1; }
    else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 63)); n = 2;
    }
    else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63)); n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 63));
        o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63)); n = 4;
    }
    lh_buf_append(b, o, n);
}

static uint32_t random_cp(void)
{
    for (;;) {
        uint32_t cp;
        switch (rnd(4)) {
        case 0: cp = 1 + rnd(0x7f); break;
        case 1: cp = 0x80 + rnd(0x780); break;
        case 2: cp = 0x800 + rnd(0xf800); break;
        default: cp = 0x10000 + rnd(0x100000); break;
        }
        if (cp < 0xD800 || cp > 0xDFFF)
            return cp;
    }
}

/* A string literal of random content: plain text, escapes, \u escapes
 * (pairs for astral code points), raw UTF-8. Never \u0000. */
static void gen_string(struct lh_buf *b)
{
    static const char *esc[] = { "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t" };
    lh_buf_putc(b, '"');
    unsigned n = rnd(8) == 0 ? rnd(200) : rnd(24);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = rnd(10);
        if (k < 5) {
            char c = (char)(' ' + rnd(95));
            lh_buf_putc(b, c == '"' || c == '\\' ? '_' : c);
        } else if (k == 5) {
            lh_buf_puts(b, esc[rnd(8)]);
        } else if (k == 6) {
            uint32_t cp = random_cp();
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                lh_buf_printf(b, "\\u%04X\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
            } else {
                lh_buf_printf(b, rnd(2) ? "\\u%04x" : "\\u%04X", cp);
            }
        } else {
            uint32_t cp = random_cp();
            if (cp < 0x20 || cp == '"' || cp == '\\')
                lh_buf_printf(b, "\\u%04x", cp);  /* must be escaped */
            else
                put_cp_utf8(b, cp);
        }
    }
    lh_buf_putc(b, '"');
}

static void gen_number(struct lh_buf *b)
{
    switch (rnd(4)) {
    case 0:
        lh_buf_printf(b, "%d", (int)rnd(2000001) - 1000000);
        break;
    case 1:
        lh_buf_printf(b, "%s%u.%0*u", rnd(2) ? "-" : "", rnd(1000), (int)(1 + rnd(5)),
                      rnd(100000));
        break;
    case 2:
        lh_buf_printf(b, "%s%u%se%s%u", rnd(2) ? "-" : "", rnd(100), rnd(2) ? ".5" : "",
                      rnd(2) ? "-" : (rnd(2) ? "+" : ""), rnd(30));
        break;
    default:
        lh_buf_printf(b, "%u", rnd(10));
        break;
    }
}

static void gen_value(struct lh_buf *b, unsigned depth)
{
    unsigned k = rnd(depth >= 6 ? 6 : 9);
    gen_ws(b);
    switch (k) {
    case 0: case 1: gen_string(b); break;
    case 2: case 3: gen_number(b); break;
    case 4: lh_buf_puts(b, "true"); break;
    case 5: lh_buf_puts(b, rnd(2) ? "false" : "null"); break;
    case 6: case 7: {
        unsigned n = rnd(6);
        lh_buf_putc(b, '{');
        for (unsigned i = 0; i < n; i++) {
            if (i)
                lh_buf_putc(b, ',');
            gen_ws(b);
            /* Unique keys: jansson keeps only the last of duplicates. */
            gen_string(b);
            b->len--;
            lh_buf_printf(b, "#%u\"", i);
            gen_ws(b);
            lh_buf_putc(b, ':');
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        lh_buf_putc(b, '}');
        break;
    }
    default: {
        unsigned n = rnd(6);
        lh_buf_putc(b, '[');
        for (unsigned i = 0; i < n; i++) {
            if (i)
                lh_buf_putc(b, ',');
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        lh_buf_putc(b, ']');
        break;
    }
    }
    gen_ws(b);
}

/* Reads one value with the scanner and compares it with jansson's v. */
static int same_value(struct lh_json *js, json_t *v, int depth)
{
    struct lh_json_token t;
    struct lh_err err = {0};
    int rc = lh_json_next(js, &t, &err);
    if (rc < 0) {
        lh_test_fail(__FILE__, __LINE__, "scanner: %s", err.msg);
        return 0;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (rc != LH_JSON_OBJECT)
            return 0;
        size_t n = 0;
        while ((rc = lh_json_next(js, &t, &err)) == LH_JSON_KEY) {
            struct lh_buf k = LH_BUF_INIT;
            if (lh_json_unescape(t.p, t.len, &k, &err) < 0)
                return 0;
            json_t *m = json_object_getn(v, k.data, k.len);
            lh_buf_free(&k);
            if (!m || !same_value(js, m, depth + 1))
                return 0;
            n++;
        }
        return rc == LH_JSON_OBJECT_END && n == json_object_size(v);
    }
    case JSON_ARRAY:
        if (rc != LH_JSON_ARRAY)
            return 0;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!same_value(js, json_array_get(v, i), depth + 1))
                return 0;
        }
        return lh_json_next(js, &t, &err) == LH_JSON_ARRAY_END;
    case JSON_STRING: {
        if (rc != LH_JSON_STRING)
            return 0;
        struct lh_buf s = LH_BUF_INIT;
        int same = lh_json_unescape(t.p, t.len, &s, &err) == 0 &&
                   s.len == json_string_length(v) &&
                   memcmp(s.data, json_string_value(v), s.len) == 0;
        lh_buf_free(&s);
        return same;
    }
    case JSON_INTEGER: {
        int64_t i;
        return rc == LH_JSON_NUMBER && !(t.flags & LH_JSON_FLOAT) &&
               lh_json_int64(&t, &i, &err) == 0 && i == json_integer_value(v);
    }
    case JSON_REAL: {
        double d;
        return rc == LH_JSON_NUMBER && (t.flags & LH_JSON_FLOAT) &&
               lh_json_double(&t, &d, &err) == 0 && d == json_real_value(v);
    }
    case JSON_TRUE:  return rc == LH_JSON_TRUE;
    case JSON_FALSE: return rc == LH_JSON_FALSE;
    case JSON_NULL:  return rc == LH_JSON_NULL;
    }
    return 0;
}

TEST(json_random_documents_match_jansson)
{
    rng_seed(1);
    struct lh_buf b = LH_BUF_INIT;
    size_t bytes = 0;
    for (int i = 0; i < 1500; i++) {
        lh_buf_reset(&b);
        gen_value(&b, 0);
        bytes += b.len;
        json_error_t je;
        json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, &je);
        if (!v) {
            lh_test_fail(__FILE__, __LINE__, "jansson rejects generated doc: %s: %s", je.text,
                         b.data);
            continue;
        }
        struct lh_json js;
        struct lh_json_token t;
        lh_json_init(&js, b.data, b.len, 0, LH_JSON_UTF8_REJECT);
        if (!same_value(&js, v, 0) || lh_json_next(&js, &t, NULL) != LH_JSON_END)
            lh_test_fail(__FILE__, __LINE__, "differs from jansson: %s", b.data);
        json_decref(v);
    }
    CHECK_INT(bytes, >, 100000);
    lh_buf_free(&b);
}

/* Random one-byte edits of random documents: the scanner (REJECT mode)
 * accepts exactly what jansson accepts, except where jansson is stricter by
 * design (lone surrogate escapes, integers beyond int64, reals beyond
 * double), which the scanner accepts. */
TEST(json_mutations_agree_with_jansson)
{
    static const char alphabet[] = "{}[],:\"\\ 0123456789.eE+-tfnulrsa\x01\x80\xc3\xff";
    rng_seed(2);
    struct lh_buf b = LH_BUF_INIT;
    int rejected = 0, accepted = 0;
    for (int i = 0; i < 6000; i++) {
        lh_buf_reset(&b);
        gen_value(&b, 0);
        if (b.len == 0)
            continue;
        unsigned edits = 1 + rnd(2);
        for (unsigned e = 0; e < edits; e++) {
            size_t at = rnd((unsigned)b.len);
            switch (rnd(3)) {
            case 0: b.data[at] = alphabet[rnd(sizeof(alphabet) - 1)]; break;
            case 1: memmove(b.data + at, b.data + at + 1, b.len - at - 1); b.len--; break;
            default:
                if (lh_buf_putc(&b, 0) == 0) {
                    memmove(b.data + at + 1, b.data + at, b.len - at - 1);
                    b.data[at] = alphabet[rnd(sizeof(alphabet) - 1)];
                }
                break;
            }
            if (b.len == 0)
                break;
        }
        json_error_t je;
        json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        struct lh_err err = {0};
        int rc = scan_all(b.data, b.len, LH_JSON_UTF8_REJECT, 0, NULL, &err);
        if (v) {
            accepted++;
            if (rc != 0)
                lh_test_fail(__FILE__, __LINE__, "jansson accepts, scanner rejects (%s): %.*s",
                             err.msg, (int)b.len, b.data);
            json_decref(v);
        } else {
            rejected++;
            if (rc == 0 && !strstr(je.text, "Unicode") && !strstr(je.text, "too big") &&
                !strstr(je.text, "overflow"))
                lh_test_fail(__FILE__, __LINE__, "jansson rejects (%s), scanner accepts: %.*s",
                             je.text, (int)b.len, b.data);
        }
    }
    /* Both outcomes are well represented. */
    CHECK_INT(accepted, >, 300);
    CHECK_INT(rejected, >, 3000);
    lh_buf_free(&b);
}

TEST(json_truncation_always_fails)
{
    static const char *docs[] = {
        "{\"a\":[1,-2.5e+3,\"x\\\"y\\u00e9\\uD83D\\uDE00\",true,false,null],\"b\":{},"
        "\"c\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"d\":[[[0]]],\"e\":1E-7}",
        "[\"a long string that certainly spans more than thirty-two bytes of text\",0]",
        " [ { \"k\" : \"v\" } , [ ] , 123 , \"\\n\" ] ",
    };
    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        size_t len = strlen(docs[d]);
        struct lh_err err = {0};
        CHECK_INT(scan_all(docs[d], len, LH_JSON_UTF8_REJECT, 0, NULL, &err), ==, 0);
        for (size_t cut = 0; cut < len; cut++) {
            /* A trailing-space prefix is the whole document too. */
            if (strspn(docs[d] + cut, " ") == len - cut)
                continue;
            size_t off = 0;
            for (int mode = 0; mode < 2; mode++) {
                int rc = scan_all(docs[d], cut, (enum lh_json_utf8)mode, 0, &off, &err);
                if (rc != LH_EINVAL)
                    lh_test_fail(__FILE__, __LINE__, "doc %zu cut at %zu: rc %d", d, cut, rc);
                CHECK_INT(off, <=, cut);
            }
        }
    }
}

TEST(json_random_bytes_never_crash)
{
    static const char alphabet[] = "{}[],:\"\\ \t\n0123456789.eE+-truefalsnl\x00\x1f\x7f\x80"
                                   "\xbf\xc2\xe0\xed\xf0\xf4\xff";
    rng_seed(3);
    char buf[96];
    int valid = 0;
    for (int i = 0; i < 100000; i++) {
        size_t len = rnd(sizeof(buf));
        for (size_t k = 0; k < len; k++)
            buf[k] = rnd(4) ? alphabet[rnd(sizeof(alphabet) - 1)] : (char)rnd(256);
        int rc = scan_all(buf, len, (enum lh_json_utf8)(i & 1), 1 + rnd(8), NULL, NULL);
        CHECK(rc == 0 || rc == LH_EINVAL);
        valid += rc == 0;
        /* Decoding any span never fails badly either. */
        struct lh_buf b = LH_BUF_INIT;
        int urc = lh_json_unescape(buf, len, &b, NULL);
        CHECK(urc == 0 || urc == LH_EINVAL);
        CHECK(b.len <= 3 * len);
        lh_buf_free(&b);
    }
    CHECK_INT(valid, >, 0);
}
