/* time.c - clocks, RFC 3339 / HTTP-date parsing and formatting (see lh/time.h). */
#include "lh/time.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t lh_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * LH_NS_PER_SEC + ts.tv_nsec;
}

int64_t lh_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * LH_NS_PER_SEC + ts.tv_nsec;
}

/* ---- calendar ---------------------------------------------------------------------- */

/* The proleptic Gregorian calendar repeats every 400 years (146097 days).
 * Counting years from March 1 puts the leap day at the end of the year, so
 * the day of the year follows from the month by a linear formula. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    if (m <= 2)
        y--;                                        /* Jan, Feb belong to the previous year */
    int64_t cycle = (y >= 0 ? y : y - 399) / 400;  /* floor(y / 400) */
    int64_t yoc = y - cycle * 400;                  /* year of cycle, 0..399 */
    int mar = m > 2 ? m - 3 : m + 9;                /* months since March, 0..11 */
    int64_t doy = (153 * mar + 2) / 5 + d - 1;      /* day of March-based year, 0..365 */
    int64_t doc = yoc * 365 + yoc / 4 - yoc / 100 + doy;
    return cycle * 146097 + doc - 719468;           /* 719468: 0000-03-01 to 1970-01-01 */
}

static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t cycle = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doc = days - cycle * 146097;                             /* 0..146096 */
    int64_t yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365;  /* 0..399 */
    int64_t doy = doc - (365 * yoc + yoc / 4 - yoc / 100);          /* 0..365 */
    int mar = (int)((5 * doy + 2) / 153);                            /* 0..11 */
    *d = (int)(doy - (153 * mar + 2) / 5 + 1);
    *m = mar < 10 ? mar + 3 : mar - 9;
    *y = yoc + cycle * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b, int64_t *rem)
{
    int64_t q = a / b, r = a % b;
    if (r < 0) {
        q--;
        r += b;
    }
    *rem = r;
    return q;
}

void lh_time_to_civil(int64_t ns, struct lh_civil *out)
{
    int64_t nsec, sod, y;
    int64_t secs = floor_div(ns, LH_NS_PER_SEC, &nsec);
    int64_t days = floor_div(secs, 86400, &sod);
    civil_from_days(days, &y, &out->month, &out->day);
    out->year = (int)y;
    out->hour = (int)(sod / 3600);
    out->min = (int)(sod / 60 % 60);
    out->sec = (int)(sod % 60);
    out->nsec = (int)nsec;
}

#define SHOW(s, n) (int)((n) > 48 ? 48 : (n)), (s)

/* Parse errors quote the input: `kind "text": problem`. */
#define BAD(fmt, ...) lh_err_set(err, LH_EINVAL, "%s \"%.*s\": " fmt, kind, SHOW(s, n), \
                                 ##__VA_ARGS__)

/* Shared by the parsers: fields (plus a UTC offset) to ns after range checks.
 * kind, s, n only name the input in error messages. */
static int civil_to_ns(int64_t y, int mo, int d, int h, int mi, int sec, int64_t nsec,
                       int64_t offset_s, int64_t *out, const char *kind, const char *s,
                       size_t n, struct lh_err *err)
{
    if (mo < 1 || mo > 12)
        return BAD("month %d out of range 1..12", mo);
    if (y < -1000000 || y > 1000000)
        return BAD("year %lld out of range", (long long)y);
    if (d < 1 || d > days_in_month(y, mo))
        return BAD("day %d out of range for %04lld-%02d", d, (long long)y, mo);
    if (h < 0 || h > 23)
        return BAD("hour %d out of range 0..23", h);
    if (mi < 0 || mi > 59)
        return BAD("minute %d out of range 0..59", mi);
    if (sec < 0 || sec > 59)
        return BAD("second %d out of range 0..59", sec);
    if (nsec < 0 || nsec >= LH_NS_PER_SEC)
        return BAD("nanoseconds %lld out of range", (long long)nsec);
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    if (secs < 0 && nsec > 0) {   /* so that the earliest instants do not overflow */
        secs++;
        nsec -= LH_NS_PER_SEC;
    }
    int64_t ns;
    if (__builtin_mul_overflow(secs, LH_NS_PER_SEC, &ns) || __builtin_add_overflow(ns, nsec, &ns))
        return BAD("outside the representable range (1677-09-21..2262-04-11)");
    *out = ns;
    return 0;
}

int lh_time_from_civil(const struct lh_civil *c, int64_t *out_ns, struct lh_err *err)
{
    return civil_to_ns(c->year, c->month, c->day, c->hour, c->min, c->sec, c->nsec, 0, out_ns,
                       "time", "", 0, err);
}

/* ---- RFC 3339 ---------------------------------------------------------------------- */

/* Value of k decimal digits at s[i..], or -1. */
static int digits(const char *s, size_t n, size_t i, int k)
{
    if (i + (size_t)k > n)
        return -1;
    int v = 0;
    for (int j = 0; j < k; j++) {
        char c = s[i + (size_t)j];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    return v;
}

int lh_time_parse_rfc3339(const char *s, size_t n, int64_t *out_ns, struct lh_err *err)
{
    const char *kind = "timestamp";
    int y = digits(s, n, 0, 4), mo = digits(s, n, 5, 2), d = digits(s, n, 8, 2);
    if (y < 0 || mo < 0 || d < 0 || s[4] != '-' || s[7] != '-')
        return BAD("expected YYYY-MM-DD");
    if (n < 19 || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return BAD("expected 'T' or a space, then HH:MM:SS, after the date");
    int h = digits(s, n, 11, 2), mi = digits(s, n, 14, 2), sec = digits(s, n, 17, 2);
    if (h < 0 || mi < 0 || sec < 0 || s[13] != ':' || s[16] != ':')
        return BAD("expected HH:MM:SS");
    size_t i = 19;
    int64_t nsec = 0;
    if (i < n && s[i] == '.') {
        int k = 0;
        int64_t scale = LH_NS_PER_SEC;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
            if (k == 9)
                return BAD("more than 9 fractional digits");
            scale /= 10;
            nsec += (s[i] - '0') * scale;
        }
        if (k == 0)
            return BAD("no digits after '.'");
    }
    int64_t offset = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        int oh = digits(s, n, i + 1, 2), om;
        if (i + 3 < n && s[i + 3] == ':') {
            om = digits(s, n, i + 4, 2);
            i += 6;
        } else {
            om = digits(s, n, i + 3, 2);
            i += 5;
        }
        if (oh < 0 || om < 0)
            return BAD("expected a zone offset like +02:00");
        if (oh > 23 || om > 59)
            return BAD("zone offset out of range");
        offset = sign * (oh * 3600 + om * 60);
    }
    if (i != n)
        return BAD("unexpected text at offset %zu", i);
    return civil_to_ns(y, mo, d, h, mi, sec, nsec, offset, out_ns, kind, s, n, err);
}

static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

int lh_time_format_rfc3339(int64_t ns, int frac_digits, char *buf, size_t size)
{
    if (frac_digits != 0 && frac_digits != 3 && frac_digits != 6 && frac_digits != 9)
        return LH_EINVAL;
    size_t len = 20 + (frac_digits ? (size_t)frac_digits + 1 : 0);
    if (size < len + 1)
        return LH_EINVAL;
    struct lh_civil c;
    lh_time_to_civil(ns, &c);
    char *p = buf;
    p = put2(p, c.year / 100);
    p = put2(p, c.year % 100);
    *p++ = '-';
    p = put2(p, c.month);
    *p++ = '-';
    p = put2(p, c.day);
    *p++ = 'T';
    p = put2(p, c.hour);
    *p++ = ':';
    p = put2(p, c.min);
    *p++ = ':';
    p = put2(p, c.sec);
    if (frac_digits) {
        *p++ = '.';
        int v = c.nsec;
        for (int k = 9; k > frac_digits; k--)
            v /= 10;
        for (int k = frac_digits - 1; k >= 0; k--) {
            p[k] = (char)('0' + v % 10);
            v /= 10;
        }
        p += frac_digits;
    }
    *p++ = 'Z';
    *p = '\0';
    return (int)len;
}

/* ---- epoch numbers ----------------------------------------------------------------- */

static int64_t unit_for(uint64_t mag)
{
    if (mag < 100000000000ULL)              /* 1e11 */
        return LH_NS_PER_SEC;
    if (mag < 100000000000000ULL)           /* 1e14 */
        return LH_NS_PER_MS;
    if (mag < 100000000000000000ULL)        /* 1e17 */
        return 1000;
    return 1;
}

static int epoch_range(struct lh_err *err)
{
    return lh_err_set(err, LH_EINVAL, "epoch time outside the representable range "
                      "(1677-09-21..2262-04-11)");
}

int lh_time_epoch_int(int64_t v, int64_t *out_ns, struct lh_err *err)
{
    uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
    int64_t ns;
    if (__builtin_mul_overflow(v, unit_for(mag), &ns))
        return epoch_range(err);
    *out_ns = ns;
    return 0;
}

int lh_time_epoch_double(double v, int64_t *out_ns, struct lh_err *err)
{
    if (!isfinite(v))
        return lh_err_set(err, LH_EINVAL, "epoch time is not a finite number");
    double ip = trunc(v);
    if (fabs(ip) >= 9.2e18)
        return epoch_range(err);
    int64_t whole = (int64_t)ip, ns;
    int64_t unit = unit_for(whole < 0 ? -(uint64_t)whole : (uint64_t)whole);
    int64_t frac = (int64_t)((v - ip) * (double)unit);   /* truncates toward zero */
    if (__builtin_mul_overflow(whole, unit, &ns) || __builtin_add_overflow(ns, frac, &ns))
        return epoch_range(err);
    *out_ns = ns;
    return 0;
}

int lh_time_epoch_str(const char *s, size_t n, int64_t *out_ns, struct lh_err *err)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t d0 = i;
    uint64_t whole = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (whole > (UINT64_MAX - 9) / 10)
            return epoch_range(err);
        whole = whole * 10 + (uint64_t)(s[i] - '0');
    }
    size_t nwhole = i - d0, f0 = 0, nfrac = 0;
    if (i < n && s[i] == '.') {
        f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        nfrac = i - f0;
    }
    if (nwhole + nfrac == 0)
        return lh_err_set(err, LH_EINVAL, "epoch time \"%.*s\": not a number", SHOW(s, n));
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        char tmp[64], *end;
        if (n >= sizeof(tmp))
            return lh_err_set(err, LH_EINVAL, "epoch time \"%.*s\": too long", SHOW(s, n));
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        double v = strtod(tmp, &end);
        if (end != tmp + n)
            return lh_err_set(err, LH_EINVAL, "epoch time \"%.*s\": not a number", SHOW(s, n));
        return lh_time_epoch_double(v, out_ns, err);
    }
    if (i != n)
        return lh_err_set(err, LH_EINVAL, "epoch time \"%.*s\": not a number", SHOW(s, n));
    if (whole > (uint64_t)INT64_MAX)
        return epoch_range(err);
    int64_t unit = unit_for(whole), ns, frac = 0, scale = unit;
    for (size_t k = 0; k < nfrac && scale > 1; k++) {
        scale /= 10;
        frac += (s[f0 + k] - '0') * scale;
    }
    if (__builtin_mul_overflow((int64_t)whole, unit, &ns) || __builtin_add_overflow(ns, frac, &ns))
        return epoch_range(err);
    *out_ns = neg ? -ns : ns;
    return 0;
}

/* ---- HTTP-date --------------------------------------------------------------------- */

static const char *const month_names[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
static const char *const day_names[7] = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
};

static int month_at(const char *s, size_t n, size_t i)
{
    if (i + 3 > n)
        return -1;
    for (int m = 0; m < 12; m++)
        if (strncasecmp(s + i, month_names[m], 3) == 0)
            return m + 1;
    return -1;
}

/* Length of the day name at s (3 letters, or the full name when `full`), or 0. */
static size_t day_name_at(const char *s, size_t n, int full)
{
    for (int k = 0; k < 7; k++) {
        size_t l = full ? strlen(day_names[k]) : 3;
        if (l <= n && strncasecmp(s, day_names[k], l) == 0)
            return l;
    }
    return 0;
}

/* "HH:MM:SS" at s[i..]; 0 or -1. */
static int clock_at(const char *s, size_t n, size_t i, int *h, int *mi, int *sec)
{
    *h = digits(s, n, i, 2);
    *mi = digits(s, n, i + 3, 2);
    *sec = digits(s, n, i + 6, 2);
    if (*h < 0 || *mi < 0 || *sec < 0 || s[i + 2] != ':' || s[i + 5] != ':')
        return -1;
    return 0;
}

int lh_time_parse_http_date(const char *s, size_t n, int64_t *out_ns, struct lh_err *err)
{
    const char *kind = "HTTP date";
    int y, mo, d, h, mi, sec;
    size_t l;

    if (n == 29 && (l = day_name_at(s, n, 0)) == 3 && s[3] == ',') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        d = digits(s, n, 5, 2);
        mo = month_at(s, n, 8);
        y = digits(s, n, 12, 4);
        if (s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || d < 0 || mo < 0 ||
            y < 0 || clock_at(s, n, 17, &h, &mi, &sec) < 0 || memcmp(s + 25, " GMT", 4) != 0)
            goto bad;
    } else if ((l = day_name_at(s, n, 1)) > 0 && l < n && s[l] == ',') {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        const char *p = s + l;
        size_t m = n - l;
        if (m != 24)
            goto bad;
        d = digits(p, m, 2, 2);
        mo = month_at(p, m, 5);
        y = digits(p, m, 9, 2);
        if (p[1] != ' ' || p[4] != '-' || p[8] != '-' || p[11] != ' ' || p[20] != ' ' ||
            d < 0 || mo < 0 || y < 0 || clock_at(p, m, 12, &h, &mi, &sec) < 0 ||
            memcmp(p + 20, " GMT", 4) != 0)
            goto bad;
        y += y < 70 ? 2000 : 1900;
    } else if (n == 24 && day_name_at(s, n, 0) == 3 && s[3] == ' ') {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        mo = month_at(s, n, 4);
        d = s[8] == ' ' ? digits(s, n, 9, 1) : digits(s, n, 8, 2);
        y = digits(s, n, 20, 4);
        if (s[7] != ' ' || s[10] != ' ' || s[19] != ' ' || mo < 0 || d < 0 || y < 0 ||
            clock_at(s, n, 11, &h, &mi, &sec) < 0)
            goto bad;
    } else {
        goto bad;
    }
    return civil_to_ns(y, mo, d, h, mi, sec, 0, 0, out_ns, kind, s, n, err);
bad:
    return BAD("not an IMF-fixdate, RFC 850 or asctime date");
}
