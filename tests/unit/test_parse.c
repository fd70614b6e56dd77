/* Unit tests for the indexer's parse stage and timestamp formats. */
#include "../lh_test.h"
#include "../../indexer/parse.h"
#include "../../indexer/timestamp.h"

#include <unistd.h>

#include "lh/time.h"

static int64_t ts(const char *rfc3339)
{
    int64_t ns = 0;
    if (lh_time_parse_rfc3339(rfc3339, strlen(rfc3339), &ns, NULL) < 0)
        lh_test_fail(__FILE__, __LINE__, "bad test timestamp %s", rfc3339);
    return ns;
}

struct fixture {
    struct lh_parser *p;
    struct lh_parse_worker *w;
    struct lh_arena arena;
};

static void setup(struct fixture *f)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/../../config/patterns", lh_test_build_dir());
    if (access(dir, R_OK) != 0)
        snprintf(dir, sizeof(dir), "config/patterns");
    char *names[] = { "LOGHAUL_APP", "JAVA_LOG4J", "KLOG", "SYSLOG3164", "ACCESS_LOG" };
    struct lh_parse_config cfg = { .json = 1, .logfmt = 1, .patterns_dir = dir,
                                   .grok = { names, 5 } };
    struct lh_err err = { 0 };
    memset(f, 0, sizeof(*f));
    if (lh_parser_create(&cfg, &f->p, &err) < 0 || lh_parse_worker_create(f->p, &f->w) < 0)
        lh_test_fail(__FILE__, __LINE__, "setup: %s", err.msg);
}

static void teardown(struct fixture *f)
{
    lh_parse_worker_destroy(f->w);
    lh_parser_destroy(f->p);
    lh_arena_free(&f->arena);
}

static int parse(struct fixture *f, struct lh_event *ev, const char *raw)
{
    memset(ev, 0, sizeof(*ev));
    ev->raw = raw;
    ev->ts_ns = ev->received_ns = ts("2026-05-23T09:00:00Z");
    return lh_parse_event(f->w, ev, &f->arena);
}

TEST(parse_seed_app_line_gives_the_seed_fields)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev;
    const char *raw = "2026-05-23 08:06:14 [payment-service] ERROR tr_abc123 usr_456 - "
                      "Database transaction timeout during capture.";
    CHECK_INT(parse(&f, &ev, raw), ==, LH_PARSE_GROK);
    CHECK_STR(ev.service, "payment-service");
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);
    CHECK_STR(ev.trace_id, "tr_abc123");
    CHECK_STR(ev.user_id, "usr_456");
    CHECK_STR(ev.message, "Database transaction timeout during capture.");
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14Z"));
    CHECK_STR(ev.raw, raw);
    CHECK_INT(ev.nmeta, ==, 0);
    teardown(&f);
}

TEST(parse_json_lines_fields_and_flattening)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev;
    CHECK_INT(parse(&f, &ev, "{\"level\":\"info\",\"msg\":\"Garbage collection cycle completed "
                             "in 12ms\",\"service\":\"payment-service\"}"), ==, LH_PARSE_JSON);
    CHECK_INT(ev.level, ==, LH_LEVEL_INFO);
    CHECK_STR(ev.message, "Garbage collection cycle completed in 12ms");
    CHECK_STR(ev.service, "payment-service");
    CHECK_INT(ev.nmeta, ==, 0);

    CHECK_INT(parse(&f, &ev, "{\"msg\":\"x\",\"http\":{\"status\":503,\"req\":{\"path\":\"/a\"}},"
                             "\"tags\":[\"a\",{\"b\":1}],\"ok\":true,\"n\":null,"
                             "\"traceId\":\"abc\",\"esc\\u00e9\":\"v\\n\"}"), ==, LH_PARSE_JSON);
    CHECK_STR(ev.message, "x");
    CHECK_STR(ev.trace_id, "abc");
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);   /* derived from http.status */
    CHECK_STR(lh_event_meta(&ev, "http.status"), "503");
    CHECK_STR(lh_event_meta(&ev, "http.req.path"), "/a");
    CHECK_STR(lh_event_meta(&ev, "tags"), "[\"a\",{\"b\":1}]");
    CHECK_STR(lh_event_meta(&ev, "ok"), "true");
    CHECK(lh_event_meta(&ev, "n") == NULL);
    CHECK_STR(lh_event_meta(&ev, "esc\xc3\xa9"), "v\n");
    teardown(&f);
}

TEST(parse_json_timestamps_in_every_unit)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev;
    parse(&f, &ev, "{\"ts\":1779523574123,\"msg\":\"ms\"}");
    CHECK_INT(ev.ts_ns, ==, 1779523574123LL * 1000000);
    parse(&f, &ev, "{\"time\":1779523574,\"msg\":\"s\"}");
    CHECK_INT(ev.ts_ns, ==, 1779523574LL * 1000000000);
    parse(&f, &ev, "{\"timestamp\":\"2026-05-23T08:06:14.123456789Z\"}");
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14.123456789Z"));
    parse(&f, &ev, "{\"@timestamp\":\"2026-05-23 10:06:14,5+02:00\"}");
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14.5Z"));
    /* An unreadable timestamp is kept as metadata, the event time stays. */
    parse(&f, &ev, "{\"ts\":\"yesterday\",\"msg\":\"m\"}");
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T09:00:00Z"));
    CHECK_STR(lh_event_meta(&ev, "ts"), "yesterday");
    teardown(&f);
}

TEST(parse_broken_json_falls_back_and_is_kept)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev;
    const char *raw = "{\"level\":\"info\",\"msg\":\"cut";
    CHECK_INT(parse(&f, &ev, raw), ==, LH_PARSE_FAILED);
    CHECK_INT(ev.level, ==, LH_LEVEL_UNKNOWN);
    CHECK_STR(ev.message, raw);
    CHECK_STR(lh_event_meta(&ev, "parse_failed"), "true");
    CHECK_INT(ev.nmeta, ==, 1);
    teardown(&f);
}

TEST(parse_logfmt_lines)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev;
    CHECK_INT(parse(&f, &ev, "time=2026-05-23T08:06:14Z level=warn msg=\"disk almost full\" "
                             "svc=storage pct=91 dry_run"), ==, LH_PARSE_LOGFMT);
    CHECK_INT(ev.level, ==, LH_LEVEL_WARN);
    CHECK_STR(ev.message, "disk almost full");
    CHECK_STR(ev.service, "storage");
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14Z"));
    CHECK_STR(lh_event_meta(&ev, "pct"), "91");
    CHECK_STR(lh_event_meta(&ev, "dry_run"), "true");
    /* One pair is not enough to call a line logfmt. */
    CHECK_INT(parse(&f, &ev, "x=1"), ==, LH_PARSE_FAILED);
    CHECK_INT(parse(&f, &ev, "a=\"unterminated b=2"), ==, LH_PARSE_FAILED);
    teardown(&f);
}

TEST(parse_record_fields_win_over_parsed_ones)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev = { 0 };
    struct lh_kv meta[] = { { "http.status", "from-record" } };
    ev.raw = "{\"level\":\"debug\",\"service\":\"parsed\",\"msg\":\"m\",\"http\":{\"status\":200}}";
    ev.level = LH_LEVEL_ERROR;
    ev.service = "given";
    ev.message = "explicit message";
    ev.meta = meta;
    ev.nmeta = 1;
    CHECK_INT(lh_parse_event(f.w, &ev, &f.arena), ==, LH_PARSE_JSON);
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);
    CHECK_STR(ev.service, "given");
    CHECK_STR(ev.message, "explicit message");
    CHECK_INT(ev.nmeta, ==, 1);
    CHECK_STR(lh_event_meta(&ev, "http.status"), "from-record");
    teardown(&f);
}

TEST(parse_derived_levels_syslog_klog_access)
{
    struct fixture f;
    setup(&f);
    struct lh_event ev;
    CHECK_INT(parse(&f, &ev, "<11>May 23 08:06:14 web1 sshd[42]: auth failed"), ==,
              LH_PARSE_GROK);
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);   /* severity 3 */
    CHECK_STR(ev.service, "sshd");
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14Z"));
    parse(&f, &ev, "W0523 08:06:14.250000    7 leader.go:88] lost lease");
    CHECK_INT(ev.level, ==, LH_LEVEL_WARN);
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14.25Z"));
    const char *acc = "10.0.0.1 - - [23/May/2026:10:06:14 +0200] \"GET /x HTTP/1.1\" 404 12 "
                      "\"-\" \"curl/8\"";
    CHECK_INT(parse(&f, &ev, acc), ==, LH_PARSE_GROK);
    CHECK_INT(ev.level, ==, LH_LEVEL_WARN);
    CHECK_STR(ev.message, acc);
    CHECK_INT(ev.ts_ns, ==, ts("2026-05-23T08:06:14Z"));
    CHECK_STR(lh_event_meta(&ev, "http.path"), "/x");
    teardown(&f);
}

TEST(timestamp_formats)
{
    int64_t ns, ref = ts("2026-01-02T00:00:00Z");
    CHECK_INT(lh_ts_parse_text("10/Oct/2025:13:55:36 -0700", 26, ref, &ns), ==, 0);
    CHECK_INT(ns, ==, ts("2025-10-10T20:55:36Z"));
    const char *ap = "Wed Oct 11 14:32:52.123456 2025";
    CHECK_INT(lh_ts_parse_text(ap, strlen(ap), ref, &ns), ==, 0);
    CHECK_INT(ns, ==, ts("2025-10-11T14:32:52.123456Z"));
    /* Year-less dates: December seen on January 2nd is last year's. */
    CHECK_INT(lh_ts_parse_text("Dec 31 23:59:59", 15, ref, &ns), ==, 0);
    CHECK_INT(ns, ==, ts("2025-12-31T23:59:59Z"));
    CHECK_INT(lh_ts_parse_text("Jan  1 10:00:00", 15, ref, &ns), ==, 0);
    CHECK_INT(ns, ==, ts("2026-01-01T10:00:00Z"));
    CHECK_INT(lh_ts_parse_text("1231 23:00:00.5", 15, ref, &ns), ==, 0);
    CHECK_INT(ns, ==, ts("2025-12-31T23:00:00.5Z"));
    CHECK_INT(lh_ts_parse_text("2026-05-23 08:06:14,123", 23, ref, &ns), ==, 0);
    CHECK_INT(ns, ==, ts("2026-05-23T08:06:14.123Z"));
    static const char *bad[] = { "", "hello world", "32/Oct/2025:13:55:36 -0700",
                                 "Foo 11 22:14:15", "2026-13-01 00:00:00", "1399 10:00:00" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lh_ts_parse_text(bad[i], strlen(bad[i]), ref, &ns) == 0)
            lh_test_fail(__FILE__, __LINE__, "\"%s\" parsed", bad[i]);
}
