/* timestamp.c - timestamps as log formats write them (see timestamp.h). */
#include "timestamp.h"

#include <string.h>

#include "lh/time.h"

static const char *const month_names[12] = { "jan", "feb", "mar", "apr", "may", "jun",
                                             "jul", "aug", "sep", "oct", "nov", "dec" };

/* Reads exactly `digits` decimal digits (or 1..digits when `flex`). */
static int read_num(const char **p, const char *end, int digits, int flex, int *out)
{
    int v = 0, k = 0;
    while (*p < end && k < digits && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++;
        k++;
    }
    if (k == 0 || (!flex && k != digits))
        return -1;
    *out = v;
    return 0;
}

static int read_month(const char **p, const char *end, int *out)
{
    if (end - *p < 3)
        return -1;
    char m[3] = { (char)((*p)[0] | 0x20), (char)((*p)[1] | 0x20), (char)((*p)[2] | 0x20) };
    for (int i = 0; i < 12; i++) {
        if (memcmp(m, month_names[i], 3) == 0) {
            *p += 3;
            /* Accept the full name too ("October"). */
            while (*p < end && (((**p) | 0x20) >= 'a' && ((**p) | 0x20) <= 'z'))
                (*p)++;
            *out = i + 1;
            return 0;
        }
    }
    return -1;
}

static int expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    (*p)++;
    return 0;
}

static void skip_spaces(const char **p, const char *end)
{
    while (*p < end && **p == ' ')
        (*p)++;
}

/* HH:MM:SS[.,fraction] */
static int read_clock(const char **p, const char *end, struct lh_civil *c)
{
    if (read_num(p, end, 2, 1, &c->hour) < 0 || expect(p, end, ':') < 0 ||
        read_num(p, end, 2, 0, &c->min) < 0 || expect(p, end, ':') < 0 ||
        read_num(p, end, 2, 0, &c->sec) < 0)
        return -1;
    c->nsec = 0;
    if (*p < end && (**p == '.' || **p == ',')) {
        (*p)++;
        int k = 0;
        long ns = 0;
        while (*p < end && **p >= '0' && **p <= '9') {
            if (k < 9) {
                ns = ns * 10 + (**p - '0');
                k++;
            }
            (*p)++;
        }
        if (k == 0)
            return -1;
        while (k++ < 9)
            ns *= 10;
        c->nsec = (int)ns;
    }
    return 0;
}

/* [+-]HHMM or [+-]HH:MM -> offset in seconds east of UTC. */
static int read_offset(const char **p, const char *end, int *secs)
{
    if (*p >= end || (**p != '+' && **p != '-'))
        return -1;
    int sign = **p == '-' ? -1 : 1, h, m;
    (*p)++;
    if (read_num(p, end, 2, 0, &h) < 0)
        return -1;
    if (*p < end && **p == ':')
        (*p)++;
    if (read_num(p, end, 2, 0, &m) < 0 || h > 23 || m > 59)
        return -1;
    *secs = sign * (h * 3600 + m * 60);
    return 0;
}

static int to_ns(struct lh_civil *c, int offset_secs, int64_t *out)
{
    int64_t ns;
    if (lh_time_from_civil(c, &ns, NULL) < 0)
        return -1;
    *out = ns - (int64_t)offset_secs * LH_NS_PER_SEC;
    return 0;
}

/* A year-less date: the latest year for which the instant is not more than
 * a day after ref (clocks differ a little; logs are not from the future). */
static int yearless(struct lh_civil *c, int64_t ref_ns, int64_t *out)
{
    struct lh_civil ref;
    lh_time_to_civil(ref_ns, &ref);
    for (int y = ref.year + 1; y >= ref.year - 1; y--) {
        c->year = y;
        int64_t ns;
        if (to_ns(c, 0, &ns) == 0 && ns <= ref_ns + 86400 * LH_NS_PER_SEC) {
            *out = ns;
            return 0;
        }
    }
    return -1;
}

/* 10/Oct/2026:13:55:36 -0700 */
static int parse_httpdate(const char *s, const char *end, int64_t *out)
{
    struct lh_civil c = { 0 };
    int off;
    if (read_num(&s, end, 2, 1, &c.day) < 0 || expect(&s, end, '/') < 0 ||
        read_month(&s, end, &c.month) < 0 || expect(&s, end, '/') < 0 ||
        read_num(&s, end, 4, 0, &c.year) < 0 || expect(&s, end, ':') < 0 ||
        read_clock(&s, end, &c) < 0)
        return -1;
    skip_spaces(&s, end);
    if (read_offset(&s, end, &off) < 0 || s != end)
        return -1;
    return to_ns(&c, off, out);
}

/* Wed Oct 11 14:32:52[.123456] 2026 */
static int parse_apache(const char *s, const char *end, int64_t *out)
{
    struct lh_civil c = { 0 };
    while (s < end && *s != ' ')   /* day name */
        s++;
    skip_spaces(&s, end);
    if (read_month(&s, end, &c.month) < 0)
        return -1;
    skip_spaces(&s, end);
    if (read_num(&s, end, 2, 1, &c.day) < 0)
        return -1;
    skip_spaces(&s, end);
    if (read_clock(&s, end, &c) < 0)
        return -1;
    skip_spaces(&s, end);
    if (read_num(&s, end, 4, 0, &c.year) < 0 || s != end)
        return -1;
    return to_ns(&c, 0, out);
}

/* Oct 11 22:14:15[.123] (syslog, no year) */
static int parse_syslog(const char *s, const char *end, int64_t ref_ns, int64_t *out)
{
    struct lh_civil c = { 0 };
    if (read_month(&s, end, &c.month) < 0)
        return -1;
    skip_spaces(&s, end);
    if (read_num(&s, end, 2, 1, &c.day) < 0)
        return -1;
    skip_spaces(&s, end);
    if (read_clock(&s, end, &c) < 0 || s != end)
        return -1;
    return yearless(&c, ref_ns, out);
}

/* 0523 08:06:14.123456 (klog, no year) */
static int parse_klog(const char *s, const char *end, int64_t ref_ns, int64_t *out)
{
    struct lh_civil c = { 0 };
    if (read_num(&s, end, 2, 0, &c.month) < 0 || read_num(&s, end, 2, 0, &c.day) < 0 ||
        expect(&s, end, ' ') < 0 || read_clock(&s, end, &c) < 0 || s != end)
        return -1;
    return yearless(&c, ref_ns, out);
}

/* RFC 3339 with the variants Log4j and Python write: a comma before the
 * fraction, and a zone written +HHMM. */
static int parse_iso(const char *s, size_t n, int64_t *out)
{
    char tmp[64];
    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    for (size_t i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.';
    return lh_time_parse_rfc3339(tmp, n, out, NULL) == 0 ? 0 : -1;
}

int lh_ts_parse_text(const char *s, size_t n, int64_t ref_ns, int64_t *out_ns)
{
    while (n && s[0] == ' ') {
        s++;
        n--;
    }
    while (n && s[n - 1] == ' ')
        n--;
    if (n < 6)
        return -1;
    const char *end = s + n;
    if (s[0] >= '0' && s[0] <= '9') {
        if (n >= 10 && s[4] == '-')
            return parse_iso(s, n, out_ns);
        if (n >= 4 && s[2] == '/')
            return parse_httpdate(s, end, out_ns);
        if (n >= 5 && s[4] == ' ')
            return parse_klog(s, end, ref_ns, out_ns);
        return lh_time_epoch_str(s, n, out_ns, NULL) == 0 ? 0 : -1;
    }
    if (parse_syslog(s, end, ref_ns, out_ns) == 0)
        return 0;
    return parse_apache(s, end, out_ns);
}
