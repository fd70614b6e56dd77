/* os_dsl.h - the search API's queries as OpenSearch Query DSL (request
 * bodies of _search), for the opensearch backend. Pure functions: any
 * thread; they only append to out.
 *
 * Every body restricts to the tenant (a term on `tenant`, besides the
 * tenant's indices) and to the part's time range. User text is always a
 * JSON string value of a query that takes data (term, terms, prefix,
 * wildcard with * ? \ escaped, match/match_phrase, regexp built here from
 * digits only): never query_string syntax, so `OR`, `field:value`, `(`,
 * `"` and `\` are searched for as written.
 *
 *   full text  each word: bool.should of match (operator and; match_phrase
 *              when the word has several tokens) on message and raw, and
 *              term on trace_id, user_id, host and custom_metadata (any
 *              value); each quoted phrase the same with match_phrase.
 *   filters    keyword fields: term / terms / prefix / wildcard / exists,
 *              NOT_EQUALS as must_not; metadata.<k> on custom_metadata.<k>
 *              (EXISTS as prefix "" since exists does not see dotted keys
 *              of a flat_object); timestamp as range (a bound inside a
 *              millisecond as gt / lte, which ms-mapped indices cut right);
 *              numeric comparisons of metadata values (stored as strings)
 *              as a regexp of the decimal numbers in range. message and raw
 *              are analysed text: only EXISTS applies to them (else
 *              LH_EINVAL, 400).
 *   order      sort timestamp desc (numeric_type date_nanos: in ns also on
 *              indices mapping it as date in ms), id desc; search_after
 *              [ts ns, id].
 *   totals     track_total_hits capped at total_cap.
 *
 * Differences from the store that remain: a phrase (or a word of several
 * tokens) must occur in order in message, but only needs all its words in
 * raw (the indexer maps raw without positions, so phrase queries cannot
 * run there); tokens follow OpenSearch's
 * standard analyzer (words joined by '_' or '.' between letters stay one
 * token; non-ASCII letters are lower-cased too); full-text terms on
 * trace_id, user_id, host and metadata match whole values, case-sensitive;
 * numeric metadata comparisons see plain decimal numbers only (no
 * exponent). */
#ifndef LH_QUERYD_OS_DSL_H
#define LH_QUERYD_OS_DSL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lh/buf.h"
#include "lh/err.h"

/* The _search body for a page: size limit + 1 (the extra hit tells that
 * more follow). 0, LH_EINVAL (err: "<path>: why"), LH_ENOMEM. */
int lh_osq_search_body(const struct lh_bquery *bq, struct lh_buf *out, struct lh_err *err);

/* size 0 and a date_histogram of fixed bucket_ns (whole milliseconds). */
int lh_osq_histogram_body(const struct lh_bquery *bq, int64_t bucket_ns, struct lh_buf *out,
                          struct lh_err *err);

/* size 0, a terms aggregation of top->field and a missing count. Metadata
 * keys cannot be aggregated (LH_EINVAL). */
int lh_osq_top_body(const struct lh_bquery *bq, const struct lh_qtop *top, struct lh_buf *out,
                    struct lh_err *err);

/* The indices to search: "<prefix>-<tenant>-YYYY.MM.DD,..." for the days of
 * [start, end) when there are at most 31 (end 0: up to now_ns + 1 day),
 * else "<prefix>-<tenant>-*". The tenant is lower-cased, bytes outside
 * [a-z0-9_-] become '_', cut at 64 bytes ("default" when empty): the
 * indexer's naming. */
int lh_osq_indices(const char *prefix, const char *tenant, int64_t start_ns, int64_t end_ns,
                   int64_t now_ns, struct lh_buf *out);

/* A regular expression (Lucene syntax, also valid PCRE) matching the
 * decimal numbers x (optional sign, digits, optional fraction, leading
 * zeros allowed) with `x op value`; value is [+-]digits[.digits]. Text
 * without any digit may also match: the query intersects with .*[0-9].*.
 * op is LH_QOP_GT..LH_QOP_LTE. 0, LH_EINVAL, LH_ENOMEM. */
int lh_osq_numeric_regexp(enum lh_qop op, const char *value, struct lh_buf *out);

#endif
