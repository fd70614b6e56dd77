/* query.h - the search API's request model: the JSON bodies of
 * POST /v1/logs/search and POST /v1/logs/aggregate (and the `query` of
 * GET /v1/logs/tail) parsed and checked into struct lh_query.
 *
 *   {"query": {"full_text": "database \"transaction timeout\"",
 *              "filters": [{"field": "service", "operator": "EQUALS",
 *                           "value": "payment-service"}, ...],
 *              "time_range": {"start": "2026-05-23T07:00:00Z", "end": "..."}},
 *    "pagination": {"limit": 100, "cursor": "..."}}
 *
 * full_text: words separated by white space; "double quoted" parts are
 *   phrases (\" and \\ escape inside quotes). Every word and phrase must
 *   match (tokens compared ASCII case-insensitively, see lh/store.h). A word
 *   without any letter or digit (`*`, `(`, `:`) matches everything and is
 *   dropped. Nothing in the text is syntax beyond the quotes: `OR`,
 *   `field:value`, `*` are searched for as written.
 * filters[]: field is a fixed field (lh_query_fields) or metadata.<key>
 *   (metadata.host and metadata.container_id are the fixed host and
 *   container_id, as hits show them); `tenant` is refused: the tenant comes
 *   from the token. Operators: EQUALS, NOT_EQUALS, IN (value: an array),
 *   CONTAINS, PREFIX, EXISTS (value true, false or absent = true), and
 *   GT/GTE/LT/LTE on timestamp (RFC 3339 or epoch s/ms/us/ns), level (by
 *   severity, TRACE < ... < FATAL) and metadata values (a decimal number;
 *   events whose value is not a number do not match). Level values are
 *   level names in any case; they are normalised ("warning" -> "WARN").
 * time_range: start inclusive, end exclusive; without start: 24 hours
 *   before end (or now); without end: open (events stamped in the future
 *   included).
 * pagination: limit 1..max_limit (default 100); cursor from next_cursor.
 *
 * Aggregate bodies have the same "query" plus
 *   "interval": "1m"                   histogram bucket (default: range/60)
 *   "top": {"field": "level", "size": 10}   or an array of such objects
 *
 * Errors name the part of the request at fault, as a JSON path
 * ("query.filters[2].operator") in lh_query_error.field, with a message
 * that starts with that path. Nothing is allocated outside the query's
 * arena. Pure functions: any thread. */
#ifndef LH_QUERYD_QUERY_H
#define LH_QUERYD_QUERY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/buf.h"

enum lh_qop {
    LH_QOP_EQUALS = 0,
    LH_QOP_NOT_EQUALS,
    LH_QOP_IN,
    LH_QOP_CONTAINS,
    LH_QOP_PREFIX,
    LH_QOP_EXISTS,
    LH_QOP_GT,
    LH_QOP_GTE,
    LH_QOP_LT,
    LH_QOP_LTE,
};
#define LH_QOP_COUNT 10

/* What a field is, for backends that treat kinds differently. */
enum lh_qkind {
    LH_QK_KEYWORD = 0,   /* exact strings: service, host, trace_id, ... */
    LH_QK_TEXT,          /* message, raw (analysed text in OpenSearch) */
    LH_QK_TIME,          /* timestamp: values are decimal ns */
    LH_QK_LEVEL,         /* level: values are level names */
    LH_QK_META,          /* metadata.<key> */
};

struct lh_qfilter {
    const char *field;          /* canonical: "service", "k8s.pod", "metadata.<key>" */
    const char *meta_key;       /* LH_QK_META: the key (points into field) */
    enum lh_qkind kind;
    enum lh_qop op;             /* GT.. on level are rewritten as IN */
    const char *value;          /* all ops but IN and EXISTS (normalised) */
    const char **values;        /* IN */
    size_t nvalues;
    int exists;                 /* EXISTS: 1 present, 0 absent */
    int index;                  /* position in the request's filters[] */
};

struct lh_qtop {
    const char *field;          /* canonical, as for filters */
    enum lh_qkind kind;
    size_t size;
};

#define LH_QUERY_MAX_TOP 8

/* Progress of a long-running query (search jobs): backends that know their
 * units of work (the archive: hours) add them to total and count them done
 * as they go; cancel set by another thread makes them stop at the next unit
 * with LH_ECLOSED. Written by the query's thread, read by any. */
struct lh_qprogress {
    _Atomic uint64_t total;     /* units of work known so far */
    _Atomic uint64_t done;
    _Atomic uint64_t scanned;   /* events read */
    _Atomic int cancel;
};

struct lh_query {
    const char *full_text;      /* as given (NULL when absent) */
    const char **terms;         /* words with at least one letter or digit */
    size_t nterms;
    const char **phrases;       /* quoted parts */
    size_t nphrases;
    struct lh_qfilter *filters;
    size_t nfilters;
    int64_t start_ns;           /* resolved */
    int64_t end_ns;             /* 0: open */
    int explicit_start, explicit_end;
    size_t limit;
    const char *cursor;         /* NULL when absent */
    /* aggregate */
    int64_t interval_ns;        /* 0: not asked (search) */
    struct lh_qtop top[LH_QUERY_MAX_TOP];
    size_t ntop;
    struct lh_arena arena;      /* owns every string and array above */
    struct lh_qprogress *progress; /* set by the caller, never by the parser; may be NULL */
};

struct lh_query_limits {
    size_t default_limit;       /* 100 */
    size_t max_limit;           /* 1000 */
    size_t max_terms;           /* words + phrases [64] */
    size_t max_filters;         /* [64] */
    size_t max_values;          /* values of one IN filter [1000] */
    size_t max_text_bytes;      /* full_text and each value [8192] */
    int64_t default_range_ns;   /* [24 h] */
    size_t max_buckets;         /* aggregate histogram buckets [10000] */
    size_t max_top;             /* top size [1000] */
};

struct lh_query_error {
    char field[160];            /* JSON path of the bad part; "" for the whole body */
    char message[512];          /* "<path>: what is wrong" */
};

/* Fills the defaults in brackets above. */
void lh_query_limits_default(struct lh_query_limits *l);

/* Parses a search body (aggregate = 0) or an aggregate body (aggregate =
 * 1) into q (zeroed or freed by the caller). now_ns resolves the default
 * time range. Returns 0, or LH_EINVAL with e filled (q is freed then), or
 * LH_ENOMEM. */
int lh_query_parse(const char *json, size_t len, int aggregate, const struct lh_query_limits *lim,
                   int64_t now_ns, struct lh_query *q, struct lh_query_error *e);

/* Parses only a query object ({"full_text", "filters", "time_range"}, as
 * in a search body's "query"), or plain text taken as full_text when it
 * does not start with '{' (the tail's ?query=). path prefixes error paths
 * ("query"). Same returns as lh_query_parse. */
int lh_query_parse_object(const char *text, size_t len, const char *path,
                          const struct lh_query_limits *lim, int64_t now_ns, struct lh_query *q,
                          struct lh_query_error *e);

void lh_query_free(struct lh_query *q);

/* A digest of what the query asks (full text, filters, the time range as
 * given: not the limit, not the cursor). Pages of one walk share it. */
#define LH_QUERY_FP_BYTES 16
void lh_query_fingerprint(const struct lh_query *q, uint8_t out[LH_QUERY_FP_BYTES]);

/* "EQUALS".. for an operator; the operator for a name (any case), or -1. */
const char *lh_qop_name(enum lh_qop op);
int lh_qop_parse(const char *s, size_t n);

/* The fixed fields, NULL-terminated (metadata.<key> comes on top). */
extern const char *const lh_query_fields[];

/* Splits full text into words and phrases the way lh_query_parse does.
 * Returns 0 or LH_EINVAL (unterminated quote; *why set). Strings and
 * arrays come from arena. */
int lh_query_split_text(const char *text, size_t len, struct lh_arena *arena,
                        const char ***terms, size_t *nterms, const char ***phrases,
                        size_t *nphrases, const char **why);

/* 1 if s holds at least one token byte (ASCII letter, digit, byte >= 0x80). */
int lh_query_has_token(const char *s);

#endif
