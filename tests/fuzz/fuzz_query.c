/* fuzz_query.c - libFuzzer target: queryd's request parser (queryd/query.c)
 * on the body of POST /v1/logs/search, the same body as an aggregate
 * request, and as the tail's query object; a parsed query is fingerprinted
 * as a search does. Checked: an error names its JSON path at the start of
 * its message; a query is freed on every path (LeakSanitizer). */
#include "fuzz.h"

#include "../../queryd/query.h"

#define NOW_NS INT64_C(1779523574000000000)   /* fixed: runs repeat */

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
