/* time.h - clocks, RFC 3339 and HTTP-date parsing/formatting, epoch-number guessing.
 *
 * Every timestamp in loghaul is an int64_t count of nanoseconds since the Unix
 * epoch (1970-01-01T00:00:00Z), which covers 1677-09-21 to 2262-04-11. All
 * conversions here are pure UTC arithmetic: nothing depends on TZ, the
 * locale or the C library's time functions, so every function is
 * thread-safe and allocation-free. Leap seconds do not exist in this scale
 * (second 60 is rejected). */
#ifndef LH_TIME_H
#define LH_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "lh/err.h"

#define LH_NS_PER_SEC  1000000000LL
#define LH_NS_PER_MS   1000000LL

/* Wall clock (CLOCK_REALTIME) in ns since the epoch; may jump. */
int64_t lh_time_now_ns(void);
/* Monotonic clock (CLOCK_MONOTONIC) in ns from an arbitrary origin: for
 * measuring intervals and deadlines, never for timestamps. */
int64_t lh_time_mono_ns(void);

/* A broken-down UTC time. */
struct lh_civil {
    int year;            /* 1677..2262 for representable instants */
    int month;           /* 1..12 */
    int day;             /* 1..31 */
    int hour, min, sec;  /* 0..23, 0..59, 0..59 */
    int nsec;            /* 0..999999999 */
};

/* Splits ns into UTC fields (any int64_t is valid). */
void lh_time_to_civil(int64_t ns, struct lh_civil *out);
/* Builds ns from UTC fields. Returns 0, or LH_EINVAL when a field is out of
 * range (month 13, Feb 30 of a common year, hour 24, ...) or the instant is
 * outside the int64 range. */
int lh_time_from_civil(const struct lh_civil *c, int64_t *out_ns, struct lh_err *err);

/* Parses an RFC 3339 timestamp of exactly n bytes (no NUL needed):
 *   YYYY-MM-DD{T|t|space}HH:MM:SS[.1-9 digits][Z|z|+HH:MM|-HH:MM|+HHMM|-HHMM]
 * A missing zone means UTC ("2026-05-23 08:06:14"). Fields are range-checked
 * (calendar days, leap years; hour 24 and second 60 are rejected).
 * Returns 0 and sets *out_ns, or LH_EINVAL with a message naming the bad
 * part (*out_ns untouched). */
int lh_time_parse_rfc3339(const char *s, size_t n, int64_t *out_ns, struct lh_err *err);

/* Longest output of lh_time_format_rfc3339 plus its NUL:
 * "2262-04-11T23:47:16.854775807Z". */
#define LH_TIME_RFC3339_SIZE 31

/* Writes ns as "YYYY-MM-DDTHH:MM:SS[.f]Z" in UTC with frac_digits (0, 3, 6 or
 * 9) fractional digits, truncated (not rounded) so that the text never
 * sorts after the instant. buf gets a NUL terminator. Returns the length
 * written (20, 24, 27 or 30), or LH_EINVAL (bad frac_digits, or size too
 * small for that length + 1). */
int lh_time_format_rfc3339(int64_t ns, int frac_digits, char *buf, size_t size);

/* Epoch numbers of unknown unit (JSON "ts" fields). The unit is guessed from
 * the magnitude of the integer part |v|:
 *   |v| <  1e11  seconds       (1e11 s is year 5138)
 *   |v| <  1e14  milliseconds  (ms after 1973-03-03 land here)
 *   |v| <  1e17  microseconds  (us after 1973-03-03)
 *   otherwise    nanoseconds
 * so any instant after March 1973 is read correctly in any of the units.
 * A fractional part is in the guessed unit ("1716451574.25" s,
 * "1716451574123.5" ms) and is truncated below 1 ns.
 * Each returns 0 and sets *out_ns, or LH_EINVAL (garbage, NaN/inf, or a
 * value outside the int64 ns range, e.g. 1e10 seconds). */
int lh_time_epoch_int(int64_t v, int64_t *out_ns, struct lh_err *err);
int lh_time_epoch_double(double v, int64_t *out_ns, struct lh_err *err);
/* Decimal text of exactly n bytes: [+-]digits[.digits], exact (no floating
 * point); text with an exponent ("1.7e9") goes through the double path. */
int lh_time_epoch_str(const char *s, size_t n, int64_t *out_ns, struct lh_err *err);

/* Parses an HTTP-date (RFC 9110 section 5.6.7) of exactly n bytes, in any of
 * its three forms: "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate), "Sunday,
 * 06-Nov-94 08:49:37 GMT" (RFC 850; years 70-99 are 19xx, 00-69 20xx) and
 * "Sun Nov  6 08:49:37 1994" (asctime). Returns 0 and sets *out_ns, or
 * LH_EINVAL. */
int lh_time_parse_http_date(const char *s, size_t n, int64_t *out_ns, struct lh_err *err);

#endif
