/* timestamp.h - reads the timestamps that log formats write, for the
 * indexer's parse stage: RFC 3339 / ISO 8601 (with a comma before the
 * fraction, as Log4j and Python write it), HTTP access-log dates, Apache
 * error-log dates, syslog dates and klog dates (these two have no year:
 * the year is the one that puts the instant closest before `ref_ns`, the
 * time the event was received), and epoch numbers (s/ms/us/ns by
 * magnitude). Pure functions, thread-safe. */
#ifndef LH_INDEXER_TIMESTAMP_H
#define LH_INDEXER_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 and sets *out_ns, or -1 when s[0..n) is no timestamp it knows. */
int lh_ts_parse_text(const char *s, size_t n, int64_t ref_ns, int64_t *out_ns);

#endif
