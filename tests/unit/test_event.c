/* Unit tests for event.c: level names and aliases, ids, the JSON encoding
 * (exact form, RFC 3339 times, UTF-8 repair) and decoding (round trips,
 * hand-written input with unknown keys, wrong types). */
#include "../lh_test.h"
#include "lh/event.h"
#include "lh/json.h"

#include <jansson.h>

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

TEST(event_level_names)
{
    static const char *names[LH_LEVEL_COUNT] = { "UNKNOWN", "TRACE", "DEBUG", "INFO",
                                                 "WARN", "ERROR", "FATAL" };
    for (int l = 0; l < LH_LEVEL_COUNT; l++) {
        CHECK_STR(lh_level_name((enum lh_level)l), names[l]);
        const char *n = lh_level_name((enum lh_level)l);
        CHECK_INT(lh_level_parse(n, strlen(n)), ==, l);
    }
    CHECK_STR(lh_level_name((enum lh_level)42), "UNKNOWN");
    CHECK_STR(lh_level_name((enum lh_level)-1), "UNKNOWN");
}

TEST(event_level_parse_aliases)
{
    static const struct {
        const char *s;
        enum lh_level l;
    } cases[] = {
        { "trace", LH_LEVEL_TRACE },     { "TRC", LH_LEVEL_TRACE },
        { "Finest", LH_LEVEL_TRACE },    { "finer", LH_LEVEL_TRACE },
        { "verbose", LH_LEVEL_TRACE },   { "debug", LH_LEVEL_DEBUG },
        { "DBG", LH_LEVEL_DEBUG },       { "fine", LH_LEVEL_DEBUG },
        { "d", LH_LEVEL_DEBUG },         { "info", LH_LEVEL_INFO },
        { "Information", LH_LEVEL_INFO }, { "informational", LH_LEVEL_INFO },
        { "NOTICE", LH_LEVEL_INFO },     { "I", LH_LEVEL_INFO },
        { "warning", LH_LEVEL_WARN },    { "WARN", LH_LEVEL_WARN },
        { "Wrn", LH_LEVEL_WARN },        { "W", LH_LEVEL_WARN },
        { "err", LH_LEVEL_ERROR },       { "ERROR", LH_LEVEL_ERROR },
        { "severe", LH_LEVEL_ERROR },    { "E", LH_LEVEL_ERROR },
        { "crit", LH_LEVEL_FATAL },      { "CRITICAL", LH_LEVEL_FATAL },
        { "panic", LH_LEVEL_FATAL },     { "emerg", LH_LEVEL_FATAL },
        { "Emergency", LH_LEVEL_FATAL }, { "alert", LH_LEVEL_FATAL },
        { "fatal", LH_LEVEL_FATAL },     { "F", LH_LEVEL_FATAL },
        { "", LH_LEVEL_UNKNOWN },        { "bogus", LH_LEVEL_UNKNOWN },
        { "warnings", LH_LEVEL_UNKNOWN }, { " info", LH_LEVEL_UNKNOWN },
        { "informationalxxxxxxxxxxxxx", LH_LEVEL_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (lh_level_parse(cases[i].s, strlen(cases[i].s)) != cases[i].l)
            lh_test_fail(__FILE__, __LINE__, "'%s' parsed as %s", cases[i].s,
                         lh_level_name(lh_level_parse(cases[i].s, strlen(cases[i].s))));
    }
    /* n bounds the read: "warning" cut to 4 bytes is "warn". */
    CHECK_INT(lh_level_parse("warning", 4), ==, LH_LEVEL_WARN);
    CHECK_INT(lh_level_parse("errorXYZ", 5), ==, LH_LEVEL_ERROR);
    CHECK_INT(lh_level_parse(NULL, 0), ==, LH_LEVEL_UNKNOWN);
}

TEST(event_id_format)
{
    uint8_t uuid[16];
    for (int i = 0; i < 16; i++)
        uuid[i] = (uint8_t)(i * 0x11);
    char id[LH_EVENT_ID_MAX];
    lh_event_id(id, uuid, 0);
    CHECK_STR(id, "00112233445566778899aabbccddeeff-0");
    lh_event_id(id, uuid, 1234);
    CHECK_STR(id, "00112233445566778899aabbccddeeff-1234");
    memset(id, 'x', sizeof(id));
    lh_event_id(id, uuid, UINT32_MAX);
    CHECK_STR(id, "00112233445566778899aabbccddeeff-4294967295");
    CHECK_INT(strlen(id), <, LH_EVENT_ID_MAX);
    /* Deterministic, and different for another batch or index. */
    char again[LH_EVENT_ID_MAX], other[LH_EVENT_ID_MAX];
    lh_event_id(again, uuid, UINT32_MAX);
    CHECK_STR(again, id);
    uuid[15] ^= 1;
    lh_event_id(other, uuid, UINT32_MAX);
    CHECK(strcmp(other, id) != 0);
}

TEST(event_encode_exact)
{
    struct lh_kv meta[] = { { "env", "prod" }, { "k\"q", "v\tw" }, { NULL, "skipped" } };
    struct lh_event ev = {
        .id = "00112233445566778899aabbccddeeff-7",
        .ts_ns = 1779523574123000000LL,
        .received_ns = 1779523574500000001LL,
        .tenant = "acme",
        .service = "payment-service",
        .level = LH_LEVEL_ERROR,
        .host = "i-09ab",
        .trace_id = "tr_abc123",
        .user_id = "usr_456",
        .message = "Database \"timeout\"\n\x01",
        .stream = "stdout",
        .k8s_namespace = "prod",
        .k8s_container = "pay",
        .region = "us-east-1",
        .raw = "raw line",
        .meta = meta,
        .nmeta = 3,
    };
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_buf_puts(&b, "prefix "), ==, 0);
    REQUIRE_INT(lh_event_encode(&ev, &b), ==, 0);
    CHECK_STR(b.data,
              "prefix {\"id\":\"00112233445566778899aabbccddeeff-7\","
              "\"timestamp\":\"2026-05-23T08:06:14.123000000Z\","
              "\"received\":\"2026-05-23T08:06:14.500000001Z\",\"tenant\":\"acme\","
              "\"service\":\"payment-service\",\"level\":\"ERROR\",\"host\":\"i-09ab\","
              "\"trace_id\":\"tr_abc123\",\"user_id\":\"usr_456\","
              "\"message\":\"Database \\\"timeout\\\"\\n\\u0001\",\"stream\":\"stdout\","
              "\"k8s\":{\"namespace\":\"prod\",\"container\":\"pay\"},"
              "\"region\":\"us-east-1\",\"raw\":\"raw line\","
              "\"custom_metadata\":{\"env\":\"prod\",\"k\\\"q\":\"v\\tw\"}}");
    lh_buf_free(&b);

    /* Everything absent: an empty object. */
    struct lh_event empty = {0};
    REQUIRE_INT(lh_event_encode(&empty, &b), ==, 0);
    CHECK_STR(b.data, "{}");
    lh_buf_free(&b);

    /* Times before the epoch and at the ends of the int64 range. */
    static const struct {
        int64_t ns;
        const char *s;
    } times[] = {
        { -1, "1969-12-31T23:59:59.999999999Z" },
        { 1, "1970-01-01T00:00:00.000000001Z" },
        { -2208988800000000000LL, "1900-01-01T00:00:00.000000000Z" },
        { 951868799999999999LL, "2000-02-29T23:59:59.999999999Z" },
        { INT64_MIN, "1677-09-21T00:12:43.145224192Z" },
        { INT64_MAX, "2262-04-11T23:47:16.854775807Z" },
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        struct lh_event t = { .ts_ns = times[i].ns };
        char want[64];
        snprintf(want, sizeof(want), "{\"timestamp\":\"%s\"}", times[i].s);
        lh_buf_reset(&b);
        REQUIRE_INT(lh_event_encode(&t, &b), ==, 0);
        CHECK_STR(b.data, want);
    }
    lh_buf_free(&b);
}

TEST(event_decode_times)
{
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        { "1970-01-01T00:00:00.000000001Z", 1 },
        { "2026-05-23T08:06:14.123Z", 1779523574123000000LL },
        { "2026-05-23t10:06:14.123+02:00", 1779523574123000000LL },
        { "2026-05-23 03:36:14.123-04:30", 1779523574123000000LL },
        { "2026-05-23T08:06:14z", 1779523574000000000LL },
        { "2000-02-29T23:59:59.999999999Z", 951868799999999999LL },
        { "2023-01-01T02:00:00+0200", 1672531200000000000LL },
        { "1900-01-01T00:00:00Z", -2208988800000000000LL },
        { "1969-12-31T23:59:59.999999999Z", -1 },
        { "1677-09-21T00:12:43.145224192Z", INT64_MIN },
        { "2262-04-11T23:47:16.854775807Z", INT64_MAX },
    };
    static const char *bad[] = {
        "2023-02-29T00:00:00Z", "2023-13-01T00:00:00Z", "2023-01-01T24:00:00Z",
        "2023-01-01T00:00:00.Z", "2023-01-01T00:00:00+02", 
        "2023-1-01T00:00:00Z", "2023-01-01T00:00:00Zjunk", "", "yesterday",
        "2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224191Z",
        "2023-01-01T00:60:00Z", "2023-04-31T00:00:00Z",
    };
    struct lh_arena arena = LH_ARENA_INIT;
    char json[128];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct lh_event ev;
        struct lh_err err = {0};
        snprintf(json, sizeof(json), "{\"timestamp\":\"%s\",\"received\":\"%s\"}", ok[i].s,
                 ok[i].s);
        if (lh_event_decode(json, strlen(json), &arena, &ev, &err) != 0) {
            lh_test_fail(__FILE__, __LINE__, "%s: %s", ok[i].s, err.msg);
            continue;
        }
        CHECK(ev.ts_ns == ok[i].ns);
        CHECK(ev.received_ns == ok[i].ns);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lh_event ev;
        struct lh_err err = {0};
        snprintf(json, sizeof(json), "{\"host\":\"h\",\"received\":\"%s\"}", bad[i]);
        if (lh_event_decode(json, strlen(json), &arena, &ev, &err) != LH_EINVAL) {
            lh_test_fail(__FILE__, __LINE__, "accepted time '%s'", bad[i]);
            continue;
        }
        CHECK_CONTAINS(err.msg, "'received'");
        CHECK(ev.host == NULL);    /* a failed decode leaves no partial event */
    }
    lh_arena_free(&arena);
}

/* ---- random round trips ------------------------------------------------- */

/* A string piece and what it must read back as after encode + decode. */
struct piece {
    const char *in;
    const char *out;
};

static const struct piece bad_utf8[] = {
    { "\x80", "\xef\xbf\xbd" },
    { "\xff", "\xef\xbf\xbd" },
    { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xe2\x82x", "\xef\xbf\xbd\xef\xbf\xbdx" },
};

static void put_cp(struct lh_buf *b, uint32_t cp)
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

/* Builds a random string into in (what the event holds) and out (what must
 * come back): ASCII incl. quotes, backslashes and control characters, BMP
 * and astral code points, and invalid UTF-8 when bad is set. NULL at times
 * (absent). */
static const char *random_str(struct lh_arena *a, const char **expect, int bad, int may_null)
{
    if (may_null && rnd(4) == 0) {
        *expect = NULL;
        return NULL;
    }
    struct lh_buf in = LH_BUF_INIT, out = LH_BUF_INIT;
    unsigned n = rnd(10) == 0 ? 100 + rnd(400) : rnd(30);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = rnd(20);
        if (bad && k == 0) {
            const struct piece *p = &bad_utf8[rnd(sizeof(bad_utf8) / sizeof(bad_utf8[0]))];
            lh_buf_puts(&in, p->in);
            lh_buf_puts(&out, p->out);
            continue;
        }
        uint32_t cp;
        if (k < 12)
            cp = 0x20 + rnd(0x5f);
        else if (k < 14)
            cp = 1 + rnd(0x1f);                     /* control characters */
        else if (k < 15)
            cp = rnd(2) ? '"' : '\\';
        else if (k < 18)
            cp = 0x80 + rnd(0xD800 - 0x80);
        else if (k < 19)
            cp = 0xE000 + rnd(0x2000);
        else
            cp = 0x10000 + rnd(0x100000);
        put_cp(&in, cp);
        put_cp(&out, cp);
    }
    lh_buf_putc(&in, 0);
    lh_buf_putc(&out, 0);
    const char *s = lh_arena_strndup(a, in.data, in.len);
    *expect = lh_arena_strndup(a, out.data, out.len);
    lh_buf_free(&in);
    lh_buf_free(&out);
    return s;
}

static int same_str(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

#define NSTR 17

static const char **str_fields(struct lh_event *ev, const char **f)
{
    f[0] = ev->id; f[1] = ev->tenant; f[2] = ev->service; f[3] = ev->host;
    f[4] = ev->trace_id; f[5] = ev->span_id; f[6] = ev->user_id; f[7] = ev->message;
    f[8] = ev->stream; f[9] = ev->container_id; f[10] = ev->k8s_namespace;
    f[11] = ev->k8s_pod; f[12] = ev->k8s_container; f[13] = ev->region; f[14] = ev->file;
    f[15] = ev->raw; f[16] = NULL;
    return f;
}

static void set_str_fields(struct lh_event *ev, const char **f)
{
    ev->id = f[0]; ev->tenant = f[1]; ev->service = f[2]; ev->host = f[3];
    ev->trace_id = f[4]; ev->span_id = f[5]; ev->user_id = f[6]; ev->message = f[7];
    ev->stream = f[8]; ev->container_id = f[9]; ev->k8s_namespace = f[10];
    ev->k8s_pod = f[11]; ev->k8s_container = f[12]; ev->region = f[13]; ev->file = f[14];
    ev->raw = f[15];
}

TEST(event_round_trip_random)
{
    rng_seed(7);
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_buf b = LH_BUF_INIT, again = LH_BUF_INIT;
    int levels_seen[LH_LEVEL_COUNT] = {0};
    for (int iter = 0; iter < 2000; iter++) {
        lh_arena_reset(&arena);
        int bad = iter % 3 == 0;
        struct lh_event ev = {0};
        const char *in[NSTR], *want[NSTR];
        for (int i = 0; i < 16; i++)
            in[i] = random_str(&arena, &want[i], bad, 1);
        set_str_fields(&ev, in);
        ev.ts_ns = (int64_t)rng();
        ev.received_ns = rnd(5) ? (int64_t)(rng() >> 2) : 0;
        ev.level = (enum lh_level)rnd(LH_LEVEL_COUNT);
        levels_seen[ev.level]++;
        size_t nmeta = rnd(4) ? rnd(12) : 0;
        struct lh_kv *meta = lh_arena_alloc(&arena, (nmeta + 1) * sizeof(*meta));
        const char **mwant = lh_arena_alloc(&arena, 2 * (nmeta + 1) * sizeof(char *));
        REQUIRE(meta && mwant);
        for (size_t i = 0; i < nmeta; i++) {
            meta[i].key = random_str(&arena, &mwant[2 * i], bad, 0);
            meta[i].value = random_str(&arena, &mwant[2 * i + 1], bad, 0);
        }
        ev.meta = meta;
        ev.nmeta = nmeta;

        lh_buf_reset(&b);
        REQUIRE_INT(lh_event_encode(&ev, &b), ==, 0);
        /* Compact: no newline, one line per event. */
        CHECK(memchr(b.data, '\n', b.len) == NULL);
        /* Always strictly valid JSON and UTF-8. */
        struct lh_json js;
        struct lh_json_token t;
        struct lh_err err = {0};
        lh_json_init(&js, b.data, b.len, 0, LH_JSON_UTF8_REJECT);
        REQUIRE_INT(lh_json_skip(&js, &err), ==, 0);
        CHECK_INT(lh_json_next(&js, &t, &err), ==, LH_JSON_END);

        struct lh_event out;
        if (lh_event_decode(b.data, b.len, &arena, &out, &err) != 0) {
            lh_test_fail(__FILE__, __LINE__, "decode: %s: %s", err.msg, b.data);
            continue;
        }
        const char *got[NSTR];
        str_fields(&out, got);
        for (int i = 0; i < 16; i++) {
            if (!same_str(got[i], want[i]))
                lh_test_fail(__FILE__, __LINE__, "iter %d field %d: '%s' vs '%s'", iter, i,
                             got[i] ? got[i] : "(null)", want[i] ? want[i] : "(null)");
        }
        CHECK(out.ts_ns == ev.ts_ns);
        CHECK(out.received_ns == ev.received_ns);
        CHECK_INT(out.level, ==, ev.level);
        REQUIRE_INT(out.nmeta, ==, nmeta);
        for (size_t i = 0; i < nmeta; i++) {
            CHECK(same_str(out.meta[i].key, mwant[2 * i]));
            CHECK(same_str(out.meta[i].value, mwant[2 * i + 1]));
        }
        /* Encoding the decoded event gives the same bytes. */
        lh_buf_reset(&again);
        REQUIRE_INT(lh_event_encode(&out, &again), ==, 0);
        CHECK(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
    }
    for (int l = 0; l < LH_LEVEL_COUNT; l++)
        CHECK_INT(levels_seen[l], >, 0);
    lh_buf_free(&b);
    lh_buf_free(&again);
    lh_arena_free(&arena);
}

/* An independent reader (jansson) sees what the encoder meant. */
TEST(event_encode_read_by_jansson)
{
    struct lh_kv meta[] = { { "k\xc3\xa9y", "v\xf0\x9f\x98\x80" }, { "bad", "x\xffy" } };
    struct lh_event ev = {
        .ts_ns = 1,
        .level = LH_LEVEL_WARN,
        .message = "tab\there \"q\" \\ \x1f end \xe2\x82",
        .k8s_pod = "pod-1",
        .meta = meta,
        .nmeta = 2,
    };
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_event_encode(&ev, &b), ==, 0);
    json_error_t je;
    json_t *v = json_loadb(b.data, b.len, 0, &je);
    REQUIRE(v);
    CHECK_STR(json_string_value(json_object_get(v, "message")),
              "tab\there \"q\" \\ \x1f end \xef\xbf\xbd\xef\xbf\xbd");
    CHECK_STR(json_string_value(json_object_get(v, "level")), "WARN");
    CHECK_STR(json_string_value(json_object_get(v, "timestamp")),
              "1970-01-01T00:00:00.000000001Z");
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "k8s"), "pod")), "pod-1");
    json_t *m = json_object_get(v, "custom_metadata");
    CHECK_STR(json_string_value(json_object_get(m, "k\xc3\xa9y")), "v\xf0\x9f\x98\x80");
    CHECK_STR(json_string_value(json_object_get(m, "bad")), "x\xef\xbf\xbdy");
    CHECK_INT(json_object_size(v), ==, 5);
    json_decref(v);
    lh_buf_free(&b);
}

TEST(event_decode_handwritten)
{
    const char *json =
        " {\n"
        "  \"future_field\": {\"nested\": [1, 2.5e3, {\"deep\": [true, null]}], \"s\": \"x\"},\n"
        "  \"service\" : \"pay\\u006dent\",\n"
        "  \"level\": \"warning\",\n"
        "  \"timestamp\": \"2026-05-23T10:06:14.5+02:00\",\n"
        "  \"another\": [\"ignored\", {\"k8s\": \"not this one\"}],\n"
        "  \"k8s\": {\"pod\": \"p-1\", \"labels\": {\"app\": \"x\"}, \"namespace\": null,\n"
        "            \"container\": \"c\\/1\"},\n"
        "  \"host\": null,\n"
        "  \"message\": \"snow \\u2603 and \\ud83d\\ude00 and \\u0000 and \\ud800\",\n"
        "  \"custom_metadata\": {\"a\": \"1\", \"b\\\"q\": \"two\", \"n\": null, \"c\": \"\"},\n"
        "  \"\\u0072aw\": \"escaped key\",\n"
        "  \"number\": -0.5e-3, \"bool\": false\n"
        " }\n";
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event ev;
    struct lh_err err = {0};
    REQUIRE_INT(lh_event_decode(json, strlen(json), &arena, &ev, &err), ==, 0);
    CHECK_STR(ev.service, "payment");
    CHECK_INT(ev.level, ==, LH_LEVEL_WARN);
    CHECK(ev.ts_ns == 1779523574500000000LL);
    CHECK(ev.received_ns == 0);
    CHECK_STR(ev.k8s_pod, "p-1");
    CHECK(ev.k8s_namespace == NULL);
    CHECK_STR(ev.k8s_container, "c/1");
    CHECK(ev.host == NULL);
    CHECK(ev.id == NULL && ev.tenant == NULL && ev.file == NULL);
    CHECK_STR(ev.message, "snow \xe2\x98\x83 and \xf0\x9f\x98\x80 and \xef\xbf\xbd and "
                          "\xef\xbf\xbd");
    CHECK_STR(ev.raw, "escaped key");
    CHECK_INT(ev.nmeta, ==, 3);
    CHECK_STR(lh_event_meta(&ev, "a"), "1");
    CHECK_STR(lh_event_meta(&ev, "b\"q"), "two");
    CHECK_STR(lh_event_meta(&ev, "c"), "");
    CHECK(lh_event_meta(&ev, "n") == NULL);
    CHECK(lh_event_meta(&ev, "zzz") == NULL);

    /* Raw invalid UTF-8 in the input is repaired, not rejected. */
    const char *raw_bad = "{\"message\":\"a\xff" "b\",\"level\":\"E\"}";
    REQUIRE_INT(lh_event_decode(raw_bad, strlen(raw_bad), &arena, &ev, &err), ==, 0);
    CHECK_STR(ev.message, "a\xef\xbf\xbd" "b");
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);

    /* Unknown level names and escaped ones. */
    const char *lv = "{\"level\":\"\\u0045RROR\"}";
    REQUIRE_INT(lh_event_decode(lv, strlen(lv), &arena, &ev, &err), ==, 0);
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);
    lv = "{\"level\":\"loud\"}";
    REQUIRE_INT(lh_event_decode(lv, strlen(lv), &arena, &ev, &err), ==, 0);
    CHECK_INT(ev.level, ==, LH_LEVEL_UNKNOWN);

    /* Many metadata entries (the array grows in the arena). */
    struct lh_buf b = LH_BUF_INIT;
    lh_buf_puts(&b, "{\"custom_metadata\":{");
    for (int i = 0; i < 100; i++)
        lh_buf_printf(&b, "%s\"k%d\":\"v%d\"", i ? "," : "", i, i);
    lh_buf_puts(&b, "}}");
    REQUIRE_INT(lh_event_decode(b.data, b.len, &arena, &ev, &err), ==, 0);
    CHECK_INT(ev.nmeta, ==, 100);
    CHECK_STR(lh_event_meta(&ev, "k0"), "v0");
    CHECK_STR(lh_event_meta(&ev, "k99"), "v99");
    lh_buf_free(&b);
    lh_arena_free(&arena);
}

TEST(event_decode_wrong_types)
{
    static const struct {
        const char *json;
        const char *msg;
    } cases[] = {
        { "{\"host\":1}", "event field 'host': expected a string, found number" },
        { "{\"message\":[\"x\"]}", "event field 'message': expected a string, found array" },
        { "{\"id\":{}}", "'id'" },
        { "{\"timestamp\":123}", "event field 'timestamp': expected an RFC 3339 time string" },
        { "{\"timestamp\":\"yesterday\"}", "'timestamp': \"yesterday\" is not an RFC 3339" },
        { "{\"level\":5}", "event field 'level': expected a string, found number" },
        { "{\"k8s\":\"x\"}", "event field 'k8s': expected an object, found string" },
        { "{\"k8s\":{\"pod\":true}}", "event field 'k8s.pod': expected a string, found true" },
        { "{\"custom_metadata\":[]}", "event field 'custom_metadata': expected an object" },
        { "{\"custom_metadata\":{\"a\":1}}", "event field 'custom_metadata.a': expected a "
                                             "string, found number" },
        { "{\"custom_metadata\":{\"o\":{}}}", "'custom_metadata.o'" },
        { "[]", "event JSON: expected an object, found array" },
        { "\"x\"", "expected an object, found string" },
        { "", "event JSON: unexpected end of input at byte 0" },
        { "{\"host\":\"a\"} x", "event JSON: unexpected 'x' at byte 13" },
        { "{\"host\":\"a\"", "event JSON: unexpected end of input at byte 11" },
        { "{\"host\":\"a\",}", "event JSON: unexpected '}' at byte 12, expected a string key" },
        { "{\"x\":[1,]}", "event JSON: unexpected ']' at byte 8" },
        { "{\"k8s\":{\"x\":[}}", "event JSON: unexpected '}' at byte 13" },
        { "{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
          "nesting deeper than 32" },
    };
    struct lh_arena arena = LH_ARENA_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lh_event ev;
        struct lh_err err = {0};
        memset(&ev, 0x5a, sizeof(ev));
        int rc = lh_event_decode(cases[i].json, strlen(cases[i].json), &arena, &ev, &err);
        CHECK_INT(rc, ==, LH_EINVAL);
        CHECK_CONTAINS(err.msg, cases[i].msg);
        CHECK(ev.host == NULL && ev.meta == NULL && ev.nmeta == 0 && ev.ts_ns == 0);
    }
    lh_arena_free(&arena);
}

TEST(event_meta_lookup)
{
    struct lh_kv meta[] = { { "a", "1" }, { NULL, "x" }, { "b", "2" }, { "a", "3" } };
    struct lh_event ev = { .meta = meta, .nmeta = 4 };
    CHECK_STR(lh_event_meta(&ev, "a"), "1");
    CHECK_STR(lh_event_meta(&ev, "b"), "2");
    CHECK(lh_event_meta(&ev, "c") == NULL);
    CHECK(lh_event_meta(&ev, NULL) == NULL);
    struct lh_event none = {0};
    CHECK(lh_event_meta(&none, "a") == NULL);
}
