/* Unit tests for agent/format.c and agent/multiline.c: plain, Docker
 * json-file and CRI decoding, partial and multiline joining, byte ranges. */
#include "../lh_test.h"
#include "../../agent/format.h"

#include <stdint.h>

#define MAXREC 64

struct got {
    size_t n;
    char *msg[MAXREC];
    size_t len[MAXREC];
    struct lh_record rec[MAXREC];
};

static void collect(void *arg, const struct lh_record *r)
{
    struct got *g = arg;
    if (g->n >= MAXREC)
        return;
    g->msg[g->n] = malloc(r->len + 1);
    memcpy(g->msg[g->n], r->msg, r->len);
    g->msg[g->n][r->len] = '\0';
    g->len[g->n] = r->len;
    g->rec[g->n] = *r;
    g->n++;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->msg[i]);
    g->n = 0;
}

/* Feeds text as lines ('\n'-separated; a last line without '\n' is not
 * fed), with file offsets, then (if flush) a forced flush. */
static uint64_t feed_text(struct lh_fmt *f, const char *text, uint64_t off, int64_t now)
{
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        struct lh_line ln = { p, (size_t)(nl - p), off, off + (uint64_t)(nl - p) + 1, 0, 0 };
        REQUIRE(lh_fmt_push(f, &ln, now) == 0);
        off = ln.end;
        p = nl + 1;
    }
    return off;
}

static struct lh_fmt_spec *spec_new(enum lh_fmt_kind kind, enum lh_ml_mode ml, const char *pat)
{
    struct lh_fmt_config cfg = { .kind = kind, .multiline = ml, .start_pattern = pat,
                                 .flush_ms = 500 };
    struct lh_fmt_spec *s = NULL;
    struct lh_err err = { 0 };
    int rc = lh_fmt_spec_create(&cfg, &s, &err);
    if (rc < 0)
        fprintf(stderr, "    spec: %s\n", err.msg);
    REQUIRE(rc == 0);
    return s;
}

/* Ranges of consecutive records tile [0, end). */
static void check_tiling(const struct got *g, uint64_t end)
{
    uint64_t at = 0;
    for (size_t i = 0; i < g->n; i++) {
        CHECK_INT(g->rec[i].start, ==, at);
        CHECK_INT(g->rec[i].end, >, g->rec[i].start);
        at = g->rec[i].end;
    }
    CHECK_INT(at, ==, end);
}

TEST(agent_fmt_plain_strips_cr_and_tiles)
{
    struct lh_fmt_spec *s = spec_new(LH_FMT_PLAIN, LH_ML_OFF, NULL);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text = "one\r\ntwo\n\nthree\n";
    uint64_t end = feed_text(f, text, 0, 0);
    REQUIRE_INT(g.n, ==, 4);
    CHECK_STR(g.msg[0], "one");
    CHECK_STR(g.msg[1], "two");
    CHECK_STR(g.msg[2], "");
    CHECK_STR(g.msg[3], "three");
    CHECK(g.rec[0].stream == NULL);
    CHECK_INT(g.rec[0].ts_ns, ==, 0);
    CHECK_INT(g.rec[0].nlines, ==, 1);
    check_tiling(&g, end);
    CHECK_INT(end, ==, strlen(text));
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_time_rfc3339)
{
    int64_t ns = 0;
    REQUIRE(lh_fmt_parse_time("1970-01-01T00:00:00Z", 20, &ns) == 0);
    CHECK_INT(ns, ==, 0);
    const char *a = "2026-05-23T08:06:14.123456789Z";
    REQUIRE(lh_fmt_parse_time(a, strlen(a), &ns) == 0);
    /* 2026-05-23 is day 20596 since the epoch. */
    CHECK_INT(ns, ==, (20596LL * 86400 + 8 * 3600 + 6 * 60 + 14) * 1000000000LL + 123456789);
    const char *b = "2026-05-23T10:06:14.123+02:00";
    int64_t ns2 = 0;
    REQUIRE(lh_fmt_parse_time(b, strlen(b), &ns2) == 0);
    CHECK_INT(ns2, ==, ns - 456789);
    CHECK(lh_fmt_parse_time("2026-05-23 nope", 15, &ns) < 0);
    CHECK(lh_fmt_parse_time("2026-13-01T00:00:00Z", 20, &ns) < 0);
    CHECK(lh_fmt_parse_time("2026-01-01T00:00:00", 19, &ns) < 0);
}

TEST(agent_fmt_docker_escapes_and_fields)
{
    struct lh_fmt_spec *s = spec_new(LH_FMT_DOCKER, LH_ML_OFF, NULL);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text =
        "{\"log\":\"say \\\"hi\\\" \\\\ tab\\there \\u00e9\\ud83d\\ude00 \\/x\\n\","
        "\"stream\":\"stderr\",\"time\":\"2024-01-02T03:04:05.000000006Z\"}\n"
        "{\"stream\":\"stdout\",\"attrs\":{\"a\":[1,{\"b\":\"}\"}]},\"log\":\"plain\\n\","
        "\"time\":\"2024-01-02T03:04:05Z\"}\n"
        "not json at all\n"
        "{\"log\":\"lone \\ud800 surrogate\\n\",\"stream\":\"stdout\"}\n";
    uint64_t end = feed_text(f, text, 0, 0);
    REQUIRE_INT(g.n, ==, 4);
    CHECK_STR(g.msg[0], "say \"hi\" \\ tab\there \xc3\xa9\xf0\x9f\x98\x80 /x");
    CHECK_STR(g.rec[0].stream, "stderr");
    int64_t want;
    REQUIRE(lh_fmt_parse_time("2024-01-02T03:04:05.000000006Z", 30, &want) == 0);
    CHECK_INT(g.rec[0].ts_ns, ==, want);
    CHECK_INT(g.rec[0].flags & (LH_REC_PARSE_ERROR | LH_REC_INVALID_UTF8), ==, 0);
    CHECK_STR(g.msg[1], "plain");
    CHECK_STR(g.rec[1].stream, "stdout");
    CHECK_STR(g.msg[2], "not json at all");
    CHECK(g.rec[2].flags & LH_REC_PARSE_ERROR);
    CHECK_STR(g.msg[3], "lone \xef\xbf\xbd surrogate");
    check_tiling(&g, end);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_docker_partial_lines_joined)
{
    struct lh_fmt_spec *s = spec_new(LH_FMT_DOCKER, LH_ML_OFF, NULL);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text =
        "{\"log\":\"first half, \",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}\n"
        "{\"log\":\"second half\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:06Z\"}\n"
        "{\"log\":\"whole\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:07Z\"}\n";
    uint64_t end = feed_text(f, text, 0, 0);
    REQUIRE_INT(g.n, ==, 2);
    CHECK_STR(g.msg[0], "first half, second half");
    CHECK(g.rec[0].flags & LH_REC_PARTIAL);
    CHECK_INT(g.rec[0].nlines, ==, 2);
    CHECK_STR(g.msg[1], "whole");
    check_tiling(&g, end);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_cri_partial_join_and_streams)
{
    struct lh_fmt_spec *s = spec_new(LH_FMT_CRI, LH_ML_OFF, NULL);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text =
        "2024-01-02T03:04:05.100000000Z stdout P part one, \n"
        "2024-01-02T03:04:05.200000000Z stdout P part two, \n"
        "2024-01-02T03:04:05.300000000Z stdout F the end\n"
        "2024-01-02T03:04:06.000000000Z stderr F an error line\n"
        "2024-01-02T03:04:07.000000000Z stdout F \n"
        "2024-01-02T03:04:08.000000000Z stdout P dangling \n"
        "2024-01-02T03:04:09.000000000Z stderr F other stream\n"
        "garbage without fields\n";
    uint64_t end = feed_text(f, text, 0, 0);
    REQUIRE_INT(g.n, ==, 6);
    CHECK_STR(g.msg[0], "part one, part two, the end");
    CHECK(g.rec[0].flags & LH_REC_PARTIAL);
    CHECK_INT(g.rec[0].nlines, ==, 3);
    int64_t want;
    REQUIRE(lh_fmt_parse_time("2024-01-02T03:04:05.100000000Z", 30, &want) == 0);
    CHECK_INT(g.rec[0].ts_ns, ==, want);     /* the time of the first piece */
    CHECK_STR(g.rec[0].stream, "stdout");
    CHECK_STR(g.msg[1], "an error line");
    CHECK_STR(g.rec[1].stream, "stderr");
    CHECK_STR(g.msg[2], "");
    /* A P piece cut short by the other stream is shipped on its own, marked. */
    CHECK_STR(g.msg[3], "dangling ");
    CHECK(g.rec[3].flags & LH_REC_INCOMPLETE);
    CHECK_STR(g.msg[4], "other stream");
    CHECK_STR(g.msg[5], "garbage without fields");
    CHECK(g.rec[5].flags & LH_REC_PARSE_ERROR);
    check_tiling(&g, end);
    /* A trailing P piece waits for its F, then goes out on the flush timeout. */
    got_free(&g);
    uint64_t e2 = feed_text(f, "2024-01-02T03:04:10Z stdout P waiting\n", end, 1000);
    CHECK_INT(g.n, ==, 0);
    CHECK(lh_fmt_flush(f, 1200, 0) == 1);
    CHECK_INT(g.n, ==, 0);
    CHECK_INT(lh_fmt_due(f), ==, 1500);
    CHECK(lh_fmt_flush(f, 1500, 0) == 0);
    REQUIRE_INT(g.n, ==, 1);
    CHECK_STR(g.msg[0], "waiting");
    CHECK_INT(g.rec[0].start, ==, end);
    CHECK_INT(g.rec[0].end, ==, e2);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_multiline_java)
{
    struct lh_fmt_spec *s = spec_new(LH_FMT_PLAIN, LH_ML_JAVA, NULL);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text =
        "2024-01-02 10:00:00 INFO starting\n"
        "2024-01-02 10:00:01 ERROR request failed\n"
        "java.lang.IllegalStateException: boom\n"
        "\tat com.example.Foo.bar(Foo.java:10)\n"
        "\tat com.example.Main.main(Main.java:5)\n"
        "Caused by: java.io.IOException: disk\n"
        "\tat com.example.Disk.read(Disk.java:99)\n"
        "\t... 2 more\n"
        "2024-01-02 10:00:02 INFO next\n";
    uint64_t end = feed_text(f, text, 0, 0);
    CHECK_INT(g.n, ==, 2);          /* "next" is pending */
    lh_fmt_flush(f, 0, 1);
    REQUIRE_INT(g.n, ==, 3);
    CHECK_STR(g.msg[0], "2024-01-02 10:00:00 INFO starting");
    CHECK_STR(g.msg[1], "2024-01-02 10:00:01 ERROR request failed\n"
                        "java.lang.IllegalStateException: boom\n"
                        "\tat com.example.Foo.bar(Foo.java:10)\n"
                        "\tat com.example.Main.main(Main.java:5)\n"
                        "Caused by: java.io.IOException: disk\n"
                        "\tat com.example.Disk.read(Disk.java:99)\n"
                        "\t... 2 more");
    CHECK(g.rec[1].flags & LH_REC_MULTILINE);
    CHECK_INT(g.rec[1].nlines, ==, 7);
    CHECK_STR(g.msg[2], "2024-01-02 10:00:02 INFO next");
    check_tiling(&g, end);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_multiline_python)
{
    struct lh_fmt_spec *s = spec_new(LH_FMT_PLAIN, LH_ML_PYTHON, NULL);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text =
        "Traceback (most recent call last):\n"
        "  File \"b.py\", line 1, in <module>\n"
        "ZeroDivisionError: division by zero\n"
        "INFO ok\n"
        "ERROR handler failed\n"
        "Traceback (most recent call last):\n"
        "  File \"app.py\", line 3, in <module>\n"
        "    main()\n"
        "KeyError: 'x'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        "  File \"app.py\", line 5, in <module>\n"
        "ValueError: bad\n"
        "INFO last\n";
    uint64_t end = feed_text(f, text, 0, 0);
    lh_fmt_flush(f, 0, 1);
    REQUIRE_INT(g.n, ==, 4);
    /* A traceback with no message line before it is a record of its own. */
    CHECK_STR(g.msg[0], "Traceback (most recent call last):\n"
                        "  File \"b.py\", line 1, in <module>\n"
                        "ZeroDivisionError: division by zero");
    CHECK_STR(g.msg[1], "INFO ok");
    /* logger.exception: the message line, then the chained tracebacks. */
    CHECK_STR(g.msg[2], "ERROR handler failed\n"
                        "Traceback (most recent call last):\n"
                        "  File \"app.py\", line 3, in <module>\n"
                        "    main()\n"
                        "KeyError: 'x'\n"
                        "\n"
                        "During handling of the above exception, another exception occurred:\n"
                        "\n"
                        "Traceback (most recent call last):\n"
                        "  File \"app.py\", line 5, in <module>\n"
                        "ValueError: bad");
    CHECK_INT(g.rec[2].nlines, ==, 11);
    CHECK_STR(g.msg[3], "INFO last");
    check_tiling(&g, end);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_multiline_start_pattern_on_cri)
{
    /* PCRE2 start pattern (JIT-compiled), over CRI-decoded messages. */
    struct lh_fmt_spec *s = spec_new(LH_FMT_CRI, LH_ML_START, "^\\d{4}-\\d{2}-\\d{2} ");
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    const char *text =
        "2024-01-02T03:04:05Z stdout F 2024-01-02 a first\n"
        "2024-01-02T03:04:05Z stdout F   continued\n"
        "2024-01-02T03:04:05Z stdout P 2024-01-02 b pa\n"
        "2024-01-02T03:04:05Z stdout F rt\n"
        "2024-01-02T03:04:05Z stdout F \tmore b\n"
        "2024-01-02T03:04:05Z stderr F stderr breaks the join\n"
        "2024-01-02T03:04:05Z stdout F 2024-01-02 c\n";
    uint64_t end = feed_text(f, text, 0, 100);
    CHECK_INT(g.n, ==, 3);
    CHECK_INT(lh_fmt_due(f), ==, 600);
    lh_fmt_flush(f, 599, 0);
    CHECK_INT(g.n, ==, 3);
    lh_fmt_flush(f, 600, 0);
    REQUIRE_INT(g.n, ==, 4);
    CHECK_STR(g.msg[0], "2024-01-02 a first\n  continued");
    CHECK_STR(g.msg[1], "2024-01-02 b part\n\tmore b");
    CHECK(g.rec[1].flags & LH_REC_PARTIAL);
    CHECK(g.rec[1].flags & LH_REC_MULTILINE);
    CHECK_INT(g.rec[1].nlines, ==, 3);
    CHECK_STR(g.msg[2], "stderr breaks the join");
    CHECK_STR(g.rec[2].stream, "stderr");
    CHECK_STR(g.msg[3], "2024-01-02 c");
    check_tiling(&g, end);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);

    struct lh_fmt_config bad = { .kind = LH_FMT_PLAIN, .multiline = LH_ML_START,
                                 .start_pattern = "^(unclosed" };
    struct lh_err err = { 0 };
    CHECK(lh_fmt_spec_create(&bad, &s, &err) == LH_EINVAL);
    CHECK_CONTAINS(err.msg, "^(unclosed");
}

TEST(agent_fmt_multiline_caps_and_split_bypass)
{
    struct lh_fmt_config cfg = { .kind = LH_FMT_PLAIN, .multiline = LH_ML_START,
                                 .start_pattern = "^S", .max_lines = 3, .max_bytes = 64 };
    struct lh_fmt_spec *s = NULL;
    REQUIRE(lh_fmt_spec_create(&cfg, &s, NULL) == 0);
    struct got g = { 0 };
    struct lh_fmt *f = lh_fmt_create(s, collect, &g);
    uint64_t end = feed_text(f, "S1\nc\nc\nc\nc\nS2\n", 0, 0);
    /* S1 + 2 continuations hit max_lines: cut, marked; the rest goes on. */
    REQUIRE_INT(g.n, ==, 2);
    CHECK_STR(g.msg[0], "S1\nc\nc");
    CHECK(g.rec[0].flags & LH_REC_INCOMPLETE);
    CHECK_STR(g.msg[1], "c\nc");
    CHECK(g.rec[1].flags & LH_REC_INCOMPLETE);
    /* A split piece of a long line is never joined. */
    struct lh_line piece = { "Spiece", 6, end, end + 6, LH_REC_SPLIT, 1 };
    REQUIRE(lh_fmt_push(f, &piece, 0) == 0);
    REQUIRE_INT(g.n, ==, 4);
    CHECK_STR(g.msg[2], "S2");
    CHECK_STR(g.msg[3], "Spiece");
    CHECK_INT(g.rec[3].part, ==, 1);
    CHECK(g.rec[3].flags & LH_REC_SPLIT);
    got_free(&g);
    lh_fmt_destroy(f);
    lh_fmt_spec_destroy(s);
}

TEST(agent_fmt_classify_bytes)
{
    CHECK_INT(lh_fmt_classify("plain \xc3\xa9 text\t", 14), ==, 0);
    CHECK_INT(lh_fmt_classify("bad \xff byte", 10), ==, LH_REC_INVALID_UTF8);
    CHECK_INT(lh_fmt_classify("cut \xe2\x82", 6), ==, LH_REC_INVALID_UTF8);
    CHECK_INT(lh_fmt_classify("overlong \xc0\xaf", 11), ==, LH_REC_INVALID_UTF8);
    CHECK_INT(lh_fmt_classify("surrogate \xed\xa0\x80", 13), ==, LH_REC_INVALID_UTF8);
    CHECK_INT(lh_fmt_classify("nul\0here", 8), ==, LH_REC_BINARY);
    CHECK_INT(lh_fmt_classify("\x01\xfe", 2), ==, LH_REC_BINARY | LH_REC_INVALID_UTF8);
}

/* The byte-at-a-time definition lh_fmt_classify's 8-byte fast path must
 * agree with. */
static unsigned classify_ref(const unsigned char *s, size_t n)
{
    unsigned fl = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                fl |= LH_REC_BINARY;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else { fl |= LH_REC_INVALID_UTF8; i++; continue; }
        size_t k = 1;
        for (; k < len && i + k < n && (s[i + k] & 0xC0) == 0x80; k++)
            cp = (cp << 6) | (s[i + k] & 0x3F);
        if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            fl |= LH_REC_INVALID_UTF8;
            i++;
            continue;
        }
        i += len;
    }
    return fl;
}

TEST(agent_fmt_classify_fast_path_agrees)
{
    /* Every single odd byte at every offset of an ASCII run. */
    static const unsigned char odd[] = { 0x00, 0x01, 0x09, 0x0a, 0x1f, 0x20, 0x7e, 0x7f,
                                         0x80, 0xc3, 0xe2, 0xf0, 0xff };
    unsigned char buf[64];
    for (size_t o = 0; o < sizeof(odd); o++)
        for (size_t at = 0; at < 40; at++) {
            memset(buf, 'a', sizeof(buf));
            buf[at] = odd[o];
            for (size_t n = at + 1; n <= 40; n += 7)
                if (lh_fmt_classify((const char *)buf, n) != classify_ref(buf, n))
                    lh_test_fail(__FILE__, __LINE__, "byte 0x%02x at %zu of %zu", odd[o], at, n);
        }
    /* Random mixes of ASCII and UTF-8 pieces. */
    static const char *pieces[] = { "abcdefgh", "x", "\t", "\xc3\xa9", "\xe2\x82\xac",
                                    "\xf0\x9f\x98\x80", "\x7f", "\x01", "\xed\xa0\x80",
                                    "\xc0\xaf", "\xe2\x82", "0123456789abcdef" };
    uint32_t r = 12345;
    for (int t = 0; t < 5000; t++) {
        size_t n = 0;
        int parts = 1 + (int)(r % 9);
        for (int p = 0; p < parts; p++) {
            r = r * 1103515245u + 12345u;
            const char *pc = pieces[(r >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t l = strlen(pc);
            if (n + l > sizeof(buf))
                break;
            memcpy(buf + n, pc, l);
            n += l;
        }
        if (lh_fmt_classify((const char *)buf, n) != classify_ref(buf, n))
            lh_test_fail(__FILE__, __LINE__, "mix %d (%zu bytes) differs", t, n);
    }
}
