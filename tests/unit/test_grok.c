/* Unit tests for grok.c and the shipped pattern library (config/patterns).
 * For every format, lines are generated from varied parts with the expected
 * captures known, plus hand-written edge cases. */
#include "../lh_test.h"
#include "../../indexer/grok.h"

#include <stdarg.h>
#include <unistd.h>

static const char *const formats[] = {
    "LOGHAUL_APP", "JAVA_LOG4J", "JAVA_LOGBACK", "PYTHON_LOG", "PYTHON_BASIC", "KLOG",
    "SYSLOG5424", "SYSLOG3164", "APACHE_ERROR", "ACCESS_LOG",
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

static struct lh_grok *load_library(void)
{
    struct lh_grok *g = NULL;
    struct lh_err err = { 0 };
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/../../config/patterns", lh_test_build_dir());
    if (access(dir, R_OK) != 0)
        snprintf(dir, sizeof(dir), "config/patterns");
    if (lh_grok_create(dir, formats, NFORMATS, &g, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "load %s: %s", dir, err.msg);
    return g;
}

/* Matches line and checks the winning pattern and the listed captures,
 * given as "field", "value" pairs ending with NULL. */
static void expect_match(struct lh_grok_matcher *m, const char *want_pattern, const char *line,
                         ...)
{
    int idx = lh_grok_match(m, line, strlen(line));
    if (idx < 0) {
        lh_test_fail(__FILE__, __LINE__, "no pattern matched: %s", line);
        return;
    }
    if (strcmp(formats[idx], want_pattern) != 0) {
        lh_test_fail(__FILE__, __LINE__, "%s matched %s, want %s", line, formats[idx],
                     want_pattern);
        return;
    }
    size_t n;
    const struct lh_grok_capture *caps = lh_grok_captures(m, &n);
    va_list ap;
    va_start(ap, line);
    const char *field;
    while ((field = va_arg(ap, const char *))) {
        const char *want = va_arg(ap, const char *);
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(caps[i].field, field) != 0)
                continue;
            found = 1;
            if (strlen(want) != caps[i].len || memcmp(caps[i].value, want, caps[i].len) != 0)
                lh_test_fail(__FILE__, __LINE__, "%s: %s = \"%.*s\", want \"%s\"", line, field,
                             (int)caps[i].len, caps[i].value, want);
        }
        if (!found)
            lh_test_fail(__FILE__, __LINE__, "%s: no capture %s (want \"%s\")", line, field,
                         want);
    }
    va_end(ap);
}

static const char *services[] = { "payment-service", "auth", "checkout_v2", "api.gateway",
                                  "inventory-svc" };
static const char *levels[] = { "ERROR", "INFO", "WARN", "DEBUG", "TRACE", "FATAL" };
static const char *texts[] = {
    "Database transaction timeout during capture.",
    "GC cycle completed in 12ms",
    "user 42 logged in from 10.1.2.3 - ok",
    "retrying request [attempt=3] to upstream: connection reset",
    "Cache miss for key=order:991; fetching",
    "naïve café résumé — unicode text",
    "quoted \"value\" and backslash \\ inside",
};

#define PICK(a, i) a[(size_t)(i) % (sizeof(a) / sizeof(a[0]))]

TEST(grok_seed_app_format_exact)
{
    struct lh_grok *g = load_library();
    REQUIRE(g);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    expect_match(m, "LOGHAUL_APP",
                 "2026-05-23 08:06:14 [payment-service] ERROR tr_abc123 usr_456 - Database "
                 "transaction timeout during capture.",
                 "timestamp", "2026-05-23 08:06:14", "service", "payment-service", "level",
                 "ERROR", "trace_id", "tr_abc123", "user_id", "usr_456", "message",
                 "Database transaction timeout during capture.", NULL);
    for (int i = 0; i < 24; i++) {
        char line[512], ts[64], tr[32], usr[32];
        snprintf(ts, sizeof(ts), "2026-%02d-%02d %02d:%02d:%02d%s", 1 + i % 12, 1 + i % 28,
                 i % 24, (i * 7) % 60, (i * 13) % 60, i % 3 == 0 ? ".123" : "");
        snprintf(tr, sizeof(tr), "tr_%x%04d", i * 2654435761u, i);
        snprintf(usr, sizeof(usr), i % 5 == 0 ? "-" : "usr_%d", i * 17);
        snprintf(line, sizeof(line), "%s [%s] %s %s %s - %s", ts, PICK(services, i),
                 PICK(levels, i), tr, usr, PICK(texts, i));
        expect_match(m, "LOGHAUL_APP", line, "timestamp", ts, "service", PICK(services, i),
                     "level", PICK(levels, i), "trace_id", tr, "user_id", usr, "message",
                     PICK(texts, i), NULL);
    }
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}

TEST(grok_access_log_combined_and_common)
{
    struct lh_grok *g = load_library();
    REQUIRE(g);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    static const char *ips[] = { "192.168.1.20", "10.0.0.1", "2001:db8::1", "proxy.internal",
                                 "::ffff:10.2.3.4", "203.0.113.254" };
    static const char *methods[] = { "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH" };
    static const char *paths[] = { "/", "/api/v1/orders?id=12&x=%20y", "/static/app.js",
                                   "/health", "/a/b/c.html#frag", "/search?q=a+b" };
    static const char *statuses[] = { "200", "404", "500", "301", "204", "503", "429" };
    static const char *agents[] = { "Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "-",
                                    "kube-probe/1.29", "Go-http-client/1.1" };
    for (int i = 0; i < 24; i++) {
        char line[1024], date[64], bytes[16];
        snprintf(date, sizeof(date), "%02d/%s/2026:%02d:%02d:%02d %s", 1 + i % 28,
                 PICK(((const char *[]){ "Jan", "Feb", "Mar", "Oct", "Dec" }), i), i % 24,
                 (i * 7) % 60, (i * 11) % 60, i % 2 ? "+0000" : "-0700");
        snprintf(bytes, sizeof(bytes), "%d", i * 997);
        const char *b = i % 6 == 5 ? "-" : bytes;
        if (i % 4 == 3)   /* common log format: no referrer, no agent */
            snprintf(line, sizeof(line), "%s - %s [%s] \"%s %s HTTP/1.1\" %s %s", PICK(ips, i),
                     i % 2 ? "frank" : "-", date, PICK(methods, i), PICK(paths, i),
                     PICK(statuses, i), b);
        else
            snprintf(line, sizeof(line),
                     "%s - - [%s] \"%s %s HTTP/%s\" %s %s \"https://example.com/ref\" \"%s\"",
                     PICK(ips, i), date, PICK(methods, i), PICK(paths, i),
                     i % 5 ? "1.1" : "2.0", PICK(statuses, i), b, PICK(agents, i));
        expect_match(m, "ACCESS_LOG", line, "client.ip", PICK(ips, i), "timestamp", date,
                     "http.method", PICK(methods, i), "http.path", PICK(paths, i),
                     "http.status", PICK(statuses, i), NULL);
        if (i % 4 != 3)
            expect_match(m, "ACCESS_LOG", line, "http.user_agent", PICK(agents, i), NULL);
        if (b != bytes)
            continue;
        expect_match(m, "ACCESS_LOG", line, "http.bytes", bytes, NULL);
    }
    /* A malformed request line is kept whole. */
    expect_match(m, "ACCESS_LOG",
                 "10.0.0.9 - - [10/Oct/2026:13:55:36 -0700] \"\\x16\\x03\\x01\" 400 0 \"-\" \"-\"",
                 "http.request", "\\x16\\x03\\x01", "http.status", "400", NULL);
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}

TEST(grok_apache_error_log)
{
    struct lh_grok *g = load_library();
    REQUIRE(g);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    static const char *lv[] = { "error", "warn", "notice", "crit", "debug", "info", "trace3" };
    static const char *mods[] = { "core", "ssl", "proxy", "mpm_event", "authz_core" };
    for (int i = 0; i < 24; i++) {
        char line[1024], ts[64], msg[256];
        snprintf(ts, sizeof(ts), "%s %s %2d %02d:%02d:%02d%s 2026",
                 PICK(((const char *[]){ "Mon", "Tue", "Wed", "Sun" }), i),
                 PICK(((const char *[]){ "Oct", "Jan", "May" }), i), 1 + i % 28, i % 24,
                 (i * 3) % 60, (i * 7) % 60, i % 2 ? ".123456" : "");
        snprintf(msg, sizeof(msg), "%s", PICK(texts, i));
        switch (i % 3) {
        case 0:   /* 2.4 with module, pid/tid, client and AH code */
            snprintf(line, sizeof(line),
                     "[%s] [%s:%s] [pid %d:tid %d] [client 72.15.99.%d:5%04d] AH%05d: %s", ts,
                     PICK(mods, i), PICK(lv, i), 1000 + i, 4000 + i, i, i, i, msg);
            expect_match(m, "APACHE_ERROR", line, "apache.module", PICK(mods, i), NULL);
            break;
        case 1:   /* 2.4 without client */
            snprintf(line, sizeof(line), "[%s] [%s:%s] [pid %d] %s", ts, PICK(mods, i),
                     PICK(lv, i), 1000 + i, msg);
            break;
        default:  /* 2.2: level only */
            snprintf(line, sizeof(line), "[%s] [%s] [client 10.0.0.%d] %s", ts, PICK(lv, i), i,
                     msg);
        }
        expect_match(m, "APACHE_ERROR", line, "timestamp", ts, "level", PICK(lv, i),
                     "message", msg, NULL);
    }
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}

TEST(grok_syslog_3164_and_5424)
{
    struct lh_grok *g = load_library();
    REQUIRE(g);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    static const char *progs[] = { "sshd", "su", "kernel", "CRON", "systemd-logind",
                                   "postfix/smtpd" };
    for (int i = 0; i < 24; i++) {
        char line[1024], ts[64], pri[16] = "";
        snprintf(ts, sizeof(ts), "%s %2d %02d:%02d:%02d",
                 PICK(((const char *[]){ "Oct", "Jan", "Feb", "Nov" }), i), 1 + i % 28,
                 i % 24, (i * 3) % 60, (i * 7) % 60);
        if (i % 2)
            snprintf(pri, sizeof(pri), "<%d>", (i * 7) % 192);
        if (i % 3)
            snprintf(line, sizeof(line), "%s%s host-%d %s[%d]: %s", pri, ts, i, PICK(progs, i),
                     100 + i, PICK(texts, i));
        else
            snprintf(line, sizeof(line), "%s%s host-%d.example.com %s: %s", pri, ts, i,
                     PICK(progs, i), PICK(texts, i));
        expect_match(m, "SYSLOG3164", line, "timestamp", ts, "service", PICK(progs, i),
                     "message", PICK(texts, i), NULL);
    }
    for (int i = 0; i < 24; i++) {
        char line[1024], ts[64];
        snprintf(ts, sizeof(ts), "2026-10-%02dT%02d:14:15.%03dZ", 1 + i % 28, i % 24, i);
        const char *sd = i % 3 == 0 ? "-" : "[exampleSDID@32473 iut=\"3\" eventSource=\"App\"]";
        snprintf(line, sizeof(line), "<%d>1 %s host%d.example.com %s %d ID%d %s %s",
                 (i * 11) % 192, ts, i, PICK(services, i), 200 + i, i, sd, PICK(texts, i));
        char msgid[16];
        snprintf(msgid, sizeof(msgid), "ID%d", i);
        expect_match(m, "SYSLOG5424", line, "timestamp", ts, "service", PICK(services, i),
                     "syslog.msgid", msgid, NULL);
        expect_match(m, "SYSLOG5424", line, "message", PICK(texts, i), NULL);
    }
    expect_match(m, "SYSLOG5424", "<165>1 - - - - - -", "syslog.pri", "165", NULL);
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}

TEST(grok_java_python_klog)
{
    struct lh_grok *g = load_library();
    REQUIRE(g);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    static const char *classes[] = { "com.example.PaymentService", "c.e.Pay", "Main",
                                     "org.apache.kafka.clients.NetworkClient",
                                     "io.netty.util.internal.PlatformDependent0" };
    static const char *threads[] = { "main", "http-nio-8080-exec-1", "pool-2-thread-7",
                                     "Kafka Producer [id=1]" };
    for (int i = 0; i < 24; i++) {
        char line[1024], ts[64], msg[512];
        snprintf(ts, sizeof(ts), "2026-05-%02d %02d:%02d:%02d%c%03d", 1 + i % 28, i % 24,
                 (i * 3) % 60, (i * 7) % 60, i % 2 ? ',' : '.', i);
        if (i % 4 == 1)   /* a stack trace joined into one record */
            snprintf(msg, sizeof(msg), "Payment failed\njava.lang.IllegalStateException: "
                     "boom\n\tat com.example.Pay.run(Pay.java:%d)\n\tat java.base/java.lang."
                     "Thread.run(Thread.java:833)", i);
        else
            snprintf(msg, sizeof(msg), "%s", PICK(texts, i));
        snprintf(line, sizeof(line), "%s %-5s [%s] %s - %s", ts, PICK(levels, i),
                 PICK(threads, i), PICK(classes, i), msg);
        expect_match(m, "JAVA_LOG4J", line, "timestamp", ts, "level", PICK(levels, i),
                     "java.thread", PICK(threads, i), "java.logger", PICK(classes, i),
                     "message", msg, NULL);
        snprintf(line, sizeof(line), "%s [%s] %-5s %s - %s", ts, PICK(threads, i),
                 PICK(levels, i), PICK(classes, i), msg);
        expect_match(m, "JAVA_LOGBACK", line, "timestamp", ts, "level", PICK(levels, i),
                     "java.logger", PICK(classes, i), "message", msg, NULL);
    }
    static const char *pylv[] = { "ERROR", "INFO", "WARNING", "DEBUG", "CRITICAL" };
    for (int i = 0; i < 24; i++) {
        char line[1024], ts[64], msg[512], logger[64];
        snprintf(ts, sizeof(ts), "2026-05-%02d %02d:%02d:%02d,%03d", 1 + i % 28, i % 24,
                 (i * 3) % 60, (i * 7) % 60, i);
        snprintf(logger, sizeof(logger), i % 3 ? "payment.api.v%d" : "root", i);
        if (i % 5 == 2)
            snprintf(msg, sizeof(msg), "Unhandled error\nTraceback (most recent call last):\n"
                     "  File \"app.py\", line %d, in <module>\n    main()\nValueError: bad", i);
        else
            snprintf(msg, sizeof(msg), "%s", PICK(texts, i));
        snprintf(line, sizeof(line), "%s - %s - %s - %s", ts, logger, PICK(pylv, i), msg);
        expect_match(m, "PYTHON_LOG", line, "timestamp", ts, "python.logger", logger, "level",
                     PICK(pylv, i), "message", msg, NULL);
        snprintf(line, sizeof(line), "%s:%s:%s", PICK(pylv, i), logger, msg);
        expect_match(m, "PYTHON_BASIC", line, "level", PICK(pylv, i), "python.logger", logger,
                     "message", msg, NULL);
    }
    static const char *kl[] = { "I", "W", "E", "F" };
    for (int i = 0; i < 24; i++) {
        char line[1024], ts[64], src[64];
        snprintf(ts, sizeof(ts), "%02d%02d %02d:%02d:%02d.%06d", 1 + i % 12, 1 + i % 28, i % 24,
                 (i * 3) % 60, (i * 7) % 60, i * 1111);
        snprintf(src, sizeof(src), "controller_%d.go:%d", i, 10 + i);
        snprintf(line, sizeof(line), "%s%s %7d %s] %s", PICK(kl, i), ts, 1 + i * 37, src,
                 PICK(texts, i));
        expect_match(m, "KLOG", line, "level", PICK(kl, i), "timestamp", ts, "source", src,
                     "message", PICK(texts, i), NULL);
    }
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}

TEST(grok_unmatched_lines_match_nothing)
{
    struct lh_grok *g = load_library();
    REQUIRE(g);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    static const char *lines[] = {
        "", "just some text", "{\"level\":\"info\",\"msg\":\"json\"}",
        "level=info msg=\"logfmt line\" svc=a", "\x01\x02\xff\xfe binary",
        "2026-05-23 08:06:14 no brackets here",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int idx = lh_grok_match(m, lines[i], strlen(lines[i]));
        if (idx >= 0)
            lh_test_fail(__FILE__, __LINE__, "\"%s\" unexpectedly matched %s", lines[i],
                         formats[idx]);
    }
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}

TEST(grok_definition_errors_are_clear)
{
    struct lh_grok *g = NULL;
    struct lh_err err = { 0 };
    const char *top[] = { "TOP" };
    CHECK_INT(lh_grok_create_from_text("t.grok", "TOP %{MISSING:x}\n", top, 1, &g, &err), ==,
              LH_EINVAL);
    CHECK_CONTAINS(err.msg, "t.grok:1: unknown pattern %{MISSING}");
    CHECK_INT(lh_grok_create_from_text("t.grok", "A %{B}\nB %{A}\nTOP %{A}\n", top, 1, &g, &err),
              ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "refers to itself");
    CHECK_INT(lh_grok_create_from_text("t.grok", "# c\n\nTOP (unclosed\n", top, 1, &g, &err),
              ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "t.grok:3");
    CHECK_INT(lh_grok_create_from_text("t.grok", "lonely\n", top, 1, &g, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "t.grok:1: expected `NAME REGEX`");
    const char *nope[] = { "NOPE" };
    CHECK_INT(lh_grok_create_from_text("t.grok", "TOP x\n", nope, 1, &g, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown pattern NOPE");
    CHECK(g == NULL);
}

TEST(grok_repeated_and_dotted_fields_and_optional_groups)
{
    struct lh_grok *g = NULL;
    struct lh_err err = { 0 };
    const char *top[] = { "TOP" };
    REQUIRE(lh_grok_create_from_text("t.grok",
                                     "N [0-9]+\nTOP ^%{N:a.b}(?: x=%{N:opt})?-(?<c.d>[a-z]+)$\n",
                                     top, 1, &g, &err) == 0);
    struct lh_grok_matcher *m = NULL;
    REQUIRE(lh_grok_matcher_create(g, &m) == 0);
    REQUIRE(lh_grok_match(m, "12-abc", 6) == 0);
    size_t n;
    const struct lh_grok_capture *c = lh_grok_captures(m, &n);
    REQUIRE_INT(n, ==, 2);   /* opt did not participate */
    CHECK_STR(c[0].field, "a.b");
    CHECK_INT(c[0].len, ==, 2);
    CHECK_STR(c[1].field, "c.d");
    CHECK(memcmp(c[1].value, "abc", 3) == 0);
    CHECK_INT(lh_grok_match(m, "12-ABC", 6), ==, -1);
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
}
