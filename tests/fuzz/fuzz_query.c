/* fuzz_query.c - libFuzzer target: queryd's request parser (queryd/query.c)
 * on the body of POST /v1/logs/search, the same body as an aggregate
 * request, and as the tail's query object; then what a search does with a
 * parsed query: the fingerprint, the in-memory matcher (match.c) and the
 * OpenSearch request bodies (os_dsl.c). Checked: an error names its JSON path
 * at the start of its message; a query is freed on every path
 * (LeakSanitizer); the OpenSearch bodies are valid JSON; the regular
 * expression a numeric metadata filter becomes matches exactly the decimal
 * numbers that compare to the value as the operator says. */
#include "fuzz.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "../../queryd/match.h"
#include "../../queryd/os_dsl.h"
#include "../../queryd/query.h"
#include "lh/event.h"

#define NOW_NS INT64_C(1779523574000000000)   /* fixed: runs repeat */

/* ---- an exact oracle for decimal comparison ---- */

struct dec {
    int neg;
    const char *ip, *fp;   /* integer digits without leading zeros, fraction digits */
    size_t il, fl;         /* ... without trailing zeros */
};

static int dec_parse(const char *s, struct dec *d)
{
    memset(d, 0, sizeof(*d));
    if (*s == '+' || *s == '-')
        d->neg = *s++ == '-';
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == s)
        return -1;
    while (*s == '0' && s + 1 <= p)
        s++;
    d->ip = s;
    d->il = (size_t)(p - s);
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return -1;
        d->fp = f;
        d->fl = (size_t)(p - f);
        while (d->fl > 0 && f[d->fl - 1] == '0')
            d->fl--;
    }
    if (*p)
        return -1;
    if (d->il == 0 && d->fl == 0)
        d->neg = 0;   /* -0 is 0 */
    return 0;
}

static int dec_cmp(const struct dec *a, const struct dec *b)
{
    if (a->neg != b->neg)
        return a->neg ? -1 : 1;
    int m = 0;
    if (a->il != b->il)
        m = a->il < b->il ? -1 : 1;
    else if ((m = memcmp(a->ip, b->ip, a->il)) == 0)
        for (size_t i = 0; m == 0 && (i < a->fl || i < b->fl); i++) {
            char x = i < a->fl ? a->fp[i] : '0', y = i < b->fl ? b->fp[i] : '0';
            m = (x > y) - (x < y);
        }
    m = (m > 0) - (m < 0);
    return a->neg ? -m : m;
}

static int op_holds(enum lh_qop op, int c)
{
    switch (op) {
    case LH_QOP_GT: return c > 0;
    case LH_QOP_GTE: return c >= 0;
    case LH_QOP_LT: return c < 0;
    case LH_QOP_LTE: return c <= 0;
    default: return 0;
    }
}

/* The regular expression for `x op value` against numbers near value. */
static void check_numeric_regexp(enum lh_qop op, const char *value)
{
    struct dec v;
    if (strlen(value) > 60 || dec_parse(value, &v) < 0)
        return;
    struct lh_buf re = LH_BUF_INIT;
    if (lh_osq_numeric_regexp(op, value, &re) != 0) {
        lh_buf_free(&re);
        return;
    }
    int ecode;
    PCRE2_SIZE eoff;
    char *anchored = malloc(re.len + 8);
    FUZZ_CHECK(anchored != NULL, "out of memory");
    snprintf(anchored, re.len + 8, "^(?:%s)$", re.data);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, 0, &ecode,
                                     &eoff, NULL);
    FUZZ_CHECK(code != NULL, "the regexp for %s %s does not compile: %s", lh_qop_name(op),
               value, anchored);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    FUZZ_CHECK(md != NULL, "out of memory");
    const char *abs = value + (value[0] == '+' || value[0] == '-');
    size_t al = strlen(abs);
    char probes[40][80];
    int np = 0;
    snprintf(probes[np++], 80, "%s", value);
    snprintf(probes[np++], 80, "-%s", abs);
    snprintf(probes[np++], 80, "+%s", abs);
    snprintf(probes[np++], 80, "00%s", abs);
    snprintf(probes[np++], 80, "%s0", abs);
    snprintf(probes[np++], 80, "%s%s5", abs, strchr(abs, '.') ? "" : ".");
    snprintf(probes[np++], 80, "-%s%s01", abs, strchr(abs, '.') ? "" : ".");
    snprintf(probes[np++], 80, "9%s", abs);
    snprintf(probes[np++], 80, "%.*s", (int)(al > 1 ? al - 1 : al), abs);
    static const char *const fixed[] = { "0", "-0", "0.0", "1", "-1", "0.5", "-0.5", "10",
                                         "99999999999999999999", "-99999999999999999999",
                                         "0.000001", "123.456" };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        snprintf(probes[np++], 80, "%s", fixed[i]);
    for (char d = '0'; d <= '9' && np < 40; d++) {   /* the last digit changed */
        snprintf(probes[np], 80, "%s", value);
        probes[np][strlen(probes[np]) - 1] = d;
        np++;
    }
    for (int i = 0; i < np; i++) {
        struct dec x;
        if (dec_parse(probes[i], &x) < 0)
            continue;
        int want = op_holds(op, dec_cmp(&x, &v));
        int got = pcre2_match(code, (PCRE2_SPTR)probes[i], strlen(probes[i]), 0, 0, md, NULL) >= 0;
        FUZZ_CHECK(got == want, "%s %s %s: the regexp says %d, want %d: %s", probes[i],
                   lh_qop_name(op), value, got, want, anchored);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    free(anchored);
    lh_buf_free(&re);
}

static void check_json(const struct lh_buf *b, const char *what)
{
    json_error_t je;
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, &je);
    FUZZ_CHECK(j != NULL, "the %s body is not JSON (%s): %.*s", what, je.text, (int)b->len,
               b->data);
    json_decref(j);
}

/* What queryd builds from a parsed query. */
static void downstream(const struct lh_query *q)
{
    static const struct lh_kv meta[] = { { "duration_ms", "250.5" }, { "region", "eu" } };
    struct lh_event ev = { .ts_ns = INT64_C(1779523574123000000), .id = "log_1",
                           .tenant = "acme", .service = "payment-service",
                           .level = LH_LEVEL_ERROR, .host = "i-09ab", .trace_id = "tr_abc",
                           .message = "Database transaction timeout",
                           .raw = "2026-05-23 ERROR Database \"transaction timeout\"",
                           .meta = (struct lh_kv *)meta, .nmeta = 2 };
    int m = lh_qmatch(q, &ev);
    FUZZ_CHECK(m == 0 || m == 1, "lh_qmatch answered %d", m);
    struct lh_bquery bq = { .tenant = "acme", .q = q, .start_ns = q->start_ns,
                            .end_ns = q->end_ns, .limit = q->limit, .total_cap = 10000 };
    struct lh_buf b = LH_BUF_INIT;
    struct lh_err err = { 0 };
    if (lh_osq_search_body(&bq, &b, &err) == 0)
        check_json(&b, "search");
    lh_buf_reset(&b);
    if (q->interval_ns > 0 && lh_osq_histogram_body(&bq, q->interval_ns, &b, &err) == 0)
        check_json(&b, "histogram");
    for (size_t i = 0; i < q->ntop; i++) {
        lh_buf_reset(&b);
        if (lh_osq_top_body(&bq, &q->top[i], &b, &err) == 0)
            check_json(&b, "top");
    }
    lh_buf_reset(&b);
    FUZZ_CHECK(lh_osq_indices("logs", "acme", q->start_ns, q->end_ns, NOW_NS, &b) == 0 &&
                   b.len > 0, "no indices");
    lh_buf_free(&b);
    for (size_t i = 0; i < q->nfilters; i++) {
        const struct lh_qfilter *f = &q->filters[i];
        if (f->kind == LH_QK_META && f->op >= LH_QOP_GT && f->op <= LH_QOP_LTE && f->value)
            check_numeric_regexp(f->op, f->value);
    }
}

static void check_query(const struct lh_query *q, const struct lh_query_limits *lim)
{
    FUZZ_CHECK(q->limit >= 1 && q->limit <= lim->max_limit, "limit %zu", q->limit);
    FUZZ_CHECK(q->nterms + q->nphrases <= lim->max_terms, "%zu words", q->nterms + q->nphrases);
    FUZZ_CHECK(q->nfilters <= lim->max_filters, "%zu filters", q->nfilters);
    FUZZ_CHECK(q->end_ns == 0 || q->start_ns <= q->end_ns, "range %lld..%lld",
               (long long)q->start_ns, (long long)q->end_ns);
    for (size_t i = 0; i < q->nterms; i++)
        FUZZ_CHECK(lh_query_has_token(q->terms[i]), "a term without a token: '%s'", q->terms[i]);
    for (size_t i = 0; i < q->nphrases; i++)
        fuzz_touch_str(q->phrases[i]);
    for (size_t i = 0; i < q->nfilters; i++) {
        const struct lh_qfilter *f = &q->filters[i];
        fuzz_touch_str(f->field);
        fuzz_touch_str(f->value);
        FUZZ_CHECK(f->op >= 0 && f->op < LH_QOP_COUNT, "operator %d", (int)f->op);
        FUZZ_CHECK(f->op != LH_QOP_IN || f->nvalues <= lim->max_values, "%zu values",
                   f->nvalues);
        for (size_t k = 0; k < f->nvalues; k++)
            fuzz_touch_str(f->values[k]);
    }
    fuzz_touch_str(q->cursor);
    uint8_t fp[LH_QUERY_FP_BYTES];
    lh_query_fingerprint(q, fp);
    downstream(q);
}

static void check_error(int rc, const struct lh_query_error *e)
{
    FUZZ_CHECK(rc == LH_EINVAL, "unexpected return %d", rc);
    FUZZ_CHECK(memchr(e->field, 0, sizeof(e->field)) && memchr(e->message, 0, sizeof(e->message)),
               "error strings not terminated");
    FUZZ_CHECK(e->message[0], "an error without a message");
    FUZZ_CHECK(strncmp(e->message, e->field, strlen(e->field)) == 0,
               "message '%s' does not start with its path '%s'", e->message, e->field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lh_query_limits lim;
    lh_query_limits_default(&lim);
    lim.max_terms = 8;      /* small, so that the limits are reached */
    lim.max_filters = 8;
    lim.max_values = 8;
    lim.max_text_bytes = 256;
    const char *body = (const char *)data;
    for (int kind = 0; kind < 3; kind++) {
        struct lh_query q;
        struct lh_query_error e;
        memset(&q, 0, sizeof(q));
        memset(&e, 0, sizeof(e));
        int rc = kind < 2 ? lh_query_parse(body, size, kind, &lim, NOW_NS, &q, &e)
                          : lh_query_parse_object(body, size, "query", &lim, NOW_NS, &q, &e);
        if (rc == 0) {
            check_query(&q, &lim);
            lh_query_free(&q);
        } else {
            check_error(rc, &e);
        }
    }
    return 0;
}
