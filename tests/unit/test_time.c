/* Unit tests for time.c: clocks, RFC 3339, epoch guessing, HTTP dates. */
#include "../lh_test.h"
#include "lh/time.h"

#include <time.h>

static int parse(const char *s, int64_t *ns)
{
    return lh_time_parse_rfc3339(s, strlen(s), ns, NULL);
}

/* Expected values computed by hand from day counts, not by the code under test:
 * 2026-05-23 is day 20596 since 1970-01-01. */
#define D20260523 (INT64_C(20596) * 86400)

TEST(time_rfc3339_valid_forms)
{
    static const struct { const char *s; int64_t ns; } ok[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "2026-05-23T08:06:14Z", (D20260523 + 8 * 3600 + 6 * 60 + 14) * LH_NS_PER_SEC },
        { "2026-05-23T08:06:14.123Z",
          (D20260523 + 29174) * LH_NS_PER_SEC + 123000000 },
        { "2026-05-23t08:06:14.123z", (D20260523 + 29174) * LH_NS_PER_SEC + 123000000 },
        { "2026-05-23 08:06:14.123Z", (D20260523 + 29174) * LH_NS_PER_SEC + 123000000 },
        { "2026-05-23 08:06:14", (D20260523 + 29174) * LH_NS_PER_SEC },
        { "2026-05-23T08:06:14", (D20260523 + 29174) * LH_NS_PER_SEC },
        { "2026-05-23T08:06:14.5", (D20260523 + 29174) * LH_NS_PER_SEC + 500000000 },
        { "2026-05-23T08:06:14.000000001Z", (D20260523 + 29174) * LH_NS_PER_SEC + 1 },
        { "2026-05-23T08:06:14.987654321Z", (D20260523 + 29174) * LH_NS_PER_SEC + 987654321 },
        { "2026-05-23T10:06:14+02:00", (D20260523 + 29174) * LH_NS_PER_SEC },
        { "2026-05-23T10:06:14.123+02:00", (D20260523 + 29174) * LH_NS_PER_SEC + 123000000 },
        { "2026-05-23T02:36:14-05:30", (D20260523 + 29174) * LH_NS_PER_SEC },
        { "2026-05-23T10:06:14+0200", (D20260523 + 29174) * LH_NS_PER_SEC },
        { "2026-05-23T08:06:14-00:00", (D20260523 + 29174) * LH_NS_PER_SEC },
        { "2026-05-24T00:30:00+23:59", (D20260523 + 31 * 60) * LH_NS_PER_SEC },
        { "1969-12-31T23:59:59.999999999Z", -1 },
        { "2000-02-29T00:00:00Z", INT64_C(951782400) * LH_NS_PER_SEC },   /* leap (400) */
        { "2024-02-29T12:00:00Z", INT64_C(1709208000) * LH_NS_PER_SEC },
        { "2262-04-11T23:47:16.854775807Z", INT64_MAX },
        { "1677-09-21T00:12:43.145224192Z", INT64_MIN },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ns = 42;
        struct lh_err e = {0};
        int rc = lh_time_parse_rfc3339(ok[i].s, strlen(ok[i].s), &ns, &e);
        if (rc != 0 || ns != ok[i].ns)
            lh_test_fail(__FILE__, __LINE__, "%s: rc %d ns %" PRId64 " want %" PRId64 " (%s)",
                         ok[i].s, rc, ns, ok[i].ns, e.msg);
    }
    /* Length-delimited: text after n is not looked at. */
    int64_t ns;
    CHECK(lh_time_parse_rfc3339("1970-01-01T00:00:01Zjunk", 20, &ns, NULL) == 0);
    CHECK_INT(ns, ==, LH_NS_PER_SEC);
}

TEST(time_rfc3339_invalid_forms)
{
    static const struct { const char *s; const char *why; } bad[] = {
        { "", "expected YYYY-MM-DD" },
        { "garbage", "expected YYYY-MM-DD" },
        { "2026-13-01T00:00:00Z", "month 13" },
        { "2026-00-10T00:00:00Z", "month 0" },
        { "2026-05-32T00:00:00Z", "day 32" },
        { "2026-05-00T00:00:00Z", "day 0" },
        { "2026-02-30T00:00:00Z", "day 30" },
        { "2026-02-29T00:00:00Z", "day 29" },        /* not a leap year */
        { "1900-02-29T00:00:00Z", "day 29" },        /* century, not leap */
        { "2026-04-31T00:00:00Z", "day 31" },
        { "2026-05-23T24:00:00Z", "hour 24" },
        { "2026-05-23T23:60:00Z", "minute 60" },
        { "2026-05-23T23:59:60Z", "second 60" },
        { "2026-05-23", "after the date" },
        { "2026-05-23X08:06:14Z", "after the date" },
        { "2026-5-23T08:06:14Z", "expected YYYY-MM-DD" },
        { "2026/05/23T08:06:14Z", "expected YYYY-MM-DD" },
        { "2026-05-23T8:06:14Z", "HH:MM:SS" },
        { "2026-05-23T08:06Z", "HH:MM:SS" },
        { "2026-05-23T08:06:14.Z", "no digits after" },
        { "2026-05-23T08:06:14.1234567890Z", "more than 9" },
        { "2026-05-23T08:06:14+2:00", "zone offset" },
        { "2026-05-23T08:06:14+24:00", "zone offset out of range" },
        { "2026-05-23T08:06:14+02:60", "zone offset out of range" },
        { "2026-05-23T08:06:14+02:0", "zone offset" },
        { "2026-05-23T08:06:14ZZ", "unexpected text" },
        { "2026-05-23T08:06:14 Z", "unexpected text" },
        { "2026-05-23T08:06:14Z ", "unexpected text" },
        { "-026-05-23T08:06:14Z", "expected YYYY-MM-DD" },
        { "2263-01-01T00:00:00Z", "representable range" },
        { "1677-09-21T00:12:43.145224191Z", "representable range" },
        { "0000-01-01T00:00:00Z", "representable range" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 42;
        struct lh_err e = {0};
        int rc = lh_time_parse_rfc3339(bad[i].s, strlen(bad[i].s), &ns, &e);
        if (rc != LH_EINVAL || ns != 42 || !strstr(e.msg, bad[i].why))
            lh_test_fail(__FILE__, __LINE__, "\"%s\": rc %d, msg \"%s\", want \"%s\"",
                         bad[i].s, rc, e.msg, bad[i].why);
    }
}

TEST(time_format_rfc3339)
{
    char buf[LH_TIME_RFC3339_SIZE];
    int64_t t = (D20260523 + 29174) * LH_NS_PER_SEC + 123456789;
    CHECK_INT(lh_time_format_rfc3339(t, 0, buf, sizeof(buf)), ==, 20);
    CHECK_STR(buf, "2026-05-23T08:06:14Z");
    CHECK_INT(lh_time_format_rfc3339(t, 3, buf, sizeof(buf)), ==, 24);
    CHECK_STR(buf, "2026-05-23T08:06:14.123Z");
    CHECK_INT(lh_time_format_rfc3339(t, 6, buf, sizeof(buf)), ==, 27);
    CHECK_STR(buf, "2026-05-23T08:06:14.123456Z");
    CHECK_INT(lh_time_format_rfc3339(t, 9, buf, sizeof(buf)), ==, 30);
    CHECK_STR(buf, "2026-05-23T08:06:14.123456789Z");
    CHECK_INT(lh_time_format_rfc3339(-1, 3, buf, sizeof(buf)), ==, 24);
    CHECK_STR(buf, "1969-12-31T23:59:59.999Z");               /* truncated toward the past */
    lh_time_format_rfc3339(INT64_MAX, 9, buf, sizeof(buf));
    CHECK_STR(buf, "2262-04-11T23:47:16.854775807Z");
    lh_time_format_rfc3339(INT64_MIN, 9, buf, sizeof(buf));
    CHECK_STR(buf, "1677-09-21T00:12:43.145224192Z");
    lh_time_format_rfc3339(INT64_C(951782400) * LH_NS_PER_SEC, 0, buf, sizeof(buf));
    CHECK_STR(buf, "2000-02-29T00:00:00Z");
    CHECK_INT(lh_time_format_rfc3339(t, 2, buf, sizeof(buf)), ==, LH_EINVAL);
    CHECK_INT(lh_time_format_rfc3339(t, 9, buf, 30), ==, LH_EINVAL);   /* no room for NUL */
    CHECK_INT(lh_time_format_rfc3339(t, 0, buf, 21), ==, 20);
}

/* Random instants over the whole int64 range, and the civil split checked
 * against gmtime_r (which is TZ-independent too). */
TEST(time_round_trip_random_instants)
{
    uint64_t s = 12345;
    char buf[LH_TIME_RFC3339_SIZE];
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t ns = (int64_t)(s ^ (s >> 29));
        if (i % 3 == 0)
            ns %= INT64_C(4000000000) * LH_NS_PER_SEC;   /* denser near now */
        int64_t back = 0;
        REQUIRE(lh_time_format_rfc3339(ns, 9, buf, sizeof(buf)) == 30);
        if (parse(buf, &back) != 0 || back != ns)
            lh_test_fail(__FILE__, __LINE__, "%" PRId64 " -> %s -> %" PRId64, ns, buf, back);
        struct lh_civil c;
        lh_time_to_civil(ns, &c);
        REQUIRE(lh_time_from_civil(&c, &back, NULL) == 0);
        CHECK_INT(back, ==, ns);
        time_t secs = (time_t)((ns - c.nsec) / LH_NS_PER_SEC);
        struct tm tm;
        gmtime_r(&secs, &tm);
        if (tm.tm_year + 1900 != c.year || tm.tm_mon + 1 != c.month || tm.tm_mday != c.day ||
            tm.tm_hour != c.hour || tm.tm_min != c.min || tm.tm_sec != c.sec)
            lh_test_fail(__FILE__, __LINE__, "%" PRId64 ": %s vs gmtime %04d-%02d-%02d", ns,
                         buf, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        /* Shorter forms parse back to the truncated instant. */
        REQUIRE(lh_time_format_rfc3339(ns, 3, buf, sizeof(buf)) == 24);
        REQUIRE(parse(buf, &back) == 0);
        CHECK_INT(back, <=, ns);
        CHECK_INT(ns - back, <, LH_NS_PER_MS);
    }
}

TEST(time_does_not_depend_on_tz)
{
    int64_t a, b;
    setenv("TZ", "America/New_York", 1);
    tzset();
    REQUIRE(parse("2026-05-23 08:06:14", &a) == 0);
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    REQUIRE(parse("2026-05-23 08:06:14", &b) == 0);
    CHECK_INT(a, ==, b);
    CHECK_INT(a, ==, (D20260523 + 29174) * LH_NS_PER_SEC);
    char buf[LH_TIME_RFC3339_SIZE];
    lh_time_format_rfc3339(a, 0, buf, sizeof(buf));
    CHECK_STR(buf, "2026-05-23T08:06:14Z");
}

TEST(time_clocks)
{
    int64_t now = lh_time_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    CHECK_INT(now / LH_NS_PER_SEC, >=, (int64_t)ts.tv_sec - 1);
    CHECK_INT(now / LH_NS_PER_SEC, <=, (int64_t)ts.tv_sec);
    CHECK_INT(now, >, INT64_C(1700000000) * LH_NS_PER_SEC);   /* after 2023 */
    int64_t m1 = lh_time_mono_ns();
    struct timespec nap = { 0, 2000000 };
    nanosleep(&nap, NULL);
    int64_t m2 = lh_time_mono_ns();
    CHECK_INT(m2 - m1, >=, 2000000);
}

TEST(time_epoch_unit_guessing)
{
    const int64_t t = INT64_C(1716451574);     /* 2024-05-23T08:06:14Z */
    static const struct { const char *s; int64_t ns; } ok[] = {
        { "1716451574", INT64_C(1716451574000000000) },
        { "1716451574.25", INT64_C(1716451574250000000) },
        { "1716451574123", INT64_C(1716451574123000000) },
        { "1716451574123.5", INT64_C(1716451574123500000) },
        { "1716451574123456", INT64_C(1716451574123456000) },
        { "1716451574123456789", INT64_C(1716451574123456789) },
        { "0", 0 },
        { "100000000000", INT64_C(100000000000) * LH_NS_PER_MS },  /* 1e11 -> ms */
        { "-1.5", -1500000000 },
        { "+12", 12 * LH_NS_PER_SEC },
        { "1.7e9", INT64_C(1700000000) * LH_NS_PER_SEC },
        { "0.000000001", 1 },
        { "1716451574.1234567891234", INT64_C(1716451574123456789) },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ns = 0;
        struct lh_err e = {0};
        int rc = lh_time_epoch_str(ok[i].s, strlen(ok[i].s), &ns, &e);
        if (rc != 0 || ns != ok[i].ns)
            lh_test_fail(__FILE__, __LINE__, "%s: rc %d ns %" PRId64 " want %" PRId64 " %s",
                         ok[i].s, rc, ns, ok[i].ns, e.msg);
    }
    /* 99999999999 (< 1e11) is read as seconds: past 2262, out of range. */
    static const char *const bad[] = { "", "-", ".", "abc", "12abc", "1.2.3", "1e", "1 2",
                                       "10000000000", "99999999999", "99999999999999999999999",
                                       "nan", "1e400" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 42;
        if (lh_time_epoch_str(bad[i], strlen(bad[i]), &ns, NULL) != LH_EINVAL || ns != 42)
            lh_test_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
    }
    int64_t ns;
    CHECK(lh_time_epoch_int(t, &ns, NULL) == 0 && ns == t * LH_NS_PER_SEC);
    CHECK(lh_time_epoch_int(t * 1000, &ns, NULL) == 0 && ns == t * LH_NS_PER_SEC);
    CHECK(lh_time_epoch_int(t * 1000000, &ns, NULL) == 0 && ns == t * LH_NS_PER_SEC);
    CHECK(lh_time_epoch_int(t * 1000000000, &ns, NULL) == 0 && ns == t * LH_NS_PER_SEC);
    CHECK(lh_time_epoch_int(-t, &ns, NULL) == 0 && ns == -t * LH_NS_PER_SEC);
    CHECK_INT(lh_time_epoch_int(INT64_C(20000000000), &ns, NULL), ==, LH_EINVAL);
    CHECK(lh_time_epoch_int(INT64_MIN, &ns, NULL) == 0 && ns == INT64_MIN);
    CHECK(lh_time_epoch_double(1716451574.5, &ns, NULL) == 0 &&
          ns == INT64_C(1716451574500000000));
    CHECK(lh_time_epoch_double(1716451574123.0, &ns, NULL) == 0 && ns == t * LH_NS_PER_SEC +
          123000000);
    CHECK_INT(lh_time_epoch_double(0.0 / 0.0, &ns, NULL), ==, LH_EINVAL);
    CHECK_INT(lh_time_epoch_double(1e300, &ns, NULL), ==, LH_EINVAL);
}

TEST(time_http_date_forms)
{
    const int64_t want = INT64_C(784111777) * LH_NS_PER_SEC;   /* 1994-11-06T08:49:37Z */
    static const char *const ok[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    };
    for (size_t i = 0; i < 3; i++) {
        int64_t ns = 0;
        struct lh_err e = {0};
        int rc = lh_time_parse_http_date(ok[i], strlen(ok[i]), &ns, &e);
        if (rc != 0 || ns != want)
            lh_test_fail(__FILE__, __LINE__, "%s: rc %d %s", ok[i], rc, e.msg);
    }
    int64_t ns;
    CHECK(lh_time_parse_http_date("Wed, 09 Jun 2021 10:18:14 GMT", 29, &ns, NULL) == 0);
    CHECK_INT(ns, ==, INT64_C(1623233894) * LH_NS_PER_SEC);
    CHECK(lh_time_parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT", 32, &ns, NULL) == 0);
    CHECK_INT(ns, ==, INT64_C(1767225600) * LH_NS_PER_SEC);
    static const char *const bad[] = {
        "", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "120",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lh_err e = {0};
        if (lh_time_parse_http_date(bad[i], strlen(bad[i]), &ns, &e) != LH_EINVAL)
            lh_test_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
        else
            CHECK_CONTAINS(e.msg, "HTTP date");
    }
}

TEST(time_civil_fields)
{
    struct lh_civil c = { 2024, 2, 29, 23, 59, 59, 999999999 };
    int64_t ns;
    REQUIRE(lh_time_from_civil(&c, &ns, NULL) == 0);
    CHECK_INT(ns, ==, INT64_C(1709251199999999999));
    c.year = 2023;
    struct lh_err e = {0};
    CHECK_INT(lh_time_from_civil(&c, &ns, &e), ==, LH_EINVAL);
    CHECK_CONTAINS(e.msg, "day 29");
    struct lh_civil d;
    lh_time_to_civil(INT64_C(1709251199999999999), &d);
    CHECK(d.year == 2024 && d.month == 2 && d.day == 29 && d.hour == 23 && d.min == 59 &&
          d.sec == 59 && d.nsec == 999999999);
}
