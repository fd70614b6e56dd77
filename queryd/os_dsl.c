/* os_dsl.c - search API queries as OpenSearch Query DSL (see os_dsl.h). */
#include "os_dsl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/time.h"

/* ---- numeric ranges as regular expressions ------------------------------ */

/* Appends "[a-b]" (or the digit itself when a == b). */
static int cls(struct lh_buf *b, char lo, char hi)
{
    if (lo == hi)
        return lh_buf_putc(b, lo);
    return lh_buf_printf(b, "[%c-%c]", lo, hi);
}

/* "[0-9]{n}" for n > 0 */
static int digits(struct lh_buf *b, size_t n)
{
    if (n == 0)
        return 0;
    if (n == 1)
        return lh_buf_puts(b, "[0-9]");
    return lh_buf_printf(b, "[0-9]{%zu}", n);
}

/* Integer parts (after any leading zeros, which 0* takes) above id. */
static int int_gt(struct lh_buf *b, const char *id)
{
    size_t L = strlen(id);
    int rc = lh_buf_printf(b, "0*([1-9][0-9]{%zu,}", L);
    for (size_t i = 0; i < L; i++) {
        if (id[i] == '9')
            continue;
        rc |= lh_buf_putc(b, '|');
        rc |= lh_buf_append(b, id, i);
        rc |= cls(b, (char)(id[i] + 1), '9');
        rc |= digits(b, L - i - 1);
    }
    return rc | lh_buf_putc(b, ')');
}

/* Integer parts below id (zero, the empty part after 0*, included); sets
 * *empty when there are none (id is zero) and appends nothing then. */
static int int_lt(struct lh_buf *b, const char *id, int *empty)
{
    size_t L = strlen(id);
    *empty = L == 0;
    if (L == 0)
        return 0;
    struct lh_buf a = LH_BUF_INIT;
    int rc = 0;
    if (L >= 2)
        rc |= lh_buf_printf(&a, "[1-9][0-9]{0,%zu}", L - 2);
    for (size_t i = 0; i < L; i++) {
        char lo = i == 0 ? '1' : '0';
        if (id[i] <= lo)
            continue;
        if (a.len)
            rc |= lh_buf_putc(&a, '|');
        rc |= lh_buf_append(&a, id, i);
        rc |= cls(&a, lo, (char)(id[i] - 1));
        rc |= digits(&a, L - i - 1);
    }
    if (a.len)
        rc |= lh_buf_printf(b, "0*(%s)?", a.data);
    else
        rc |= lh_buf_puts(b, "0*");   /* id is 1: only zero is below */
    lh_buf_free(&a);
    return rc;
}

static int int_eq(struct lh_buf *b, const char *id)
{
    return lh_buf_puts(b, "0*") | lh_buf_puts(b, id);
}

static int frac_any(struct lh_buf *b) { return lh_buf_puts(b, "(\\.[0-9]*)?"); }

static int frac_eq(struct lh_buf *b, const char *fd)
{
    if (!*fd)
        return lh_buf_puts(b, "(\\.0*)?");
    return lh_buf_printf(b, "\\.%s0*", fd);
}

static int frac_gt(struct lh_buf *b, const char *fd)
{
    size_t L = strlen(fd);
    int rc = lh_buf_puts(b, "\\.(");
    for (size_t i = 0; i < L; i++) {
        if (fd[i] == '9')
            continue;
        rc |= lh_buf_append(b, fd, i);
        rc |= cls(b, (char)(fd[i] + 1), '9');
        rc |= lh_buf_puts(b, "[0-9]*|");
    }
    return rc | lh_buf_printf(b, "%s0*[1-9][0-9]*)", fd);
}

/* Fractions below fd (the absent fraction included); empty when fd is "". */
static int frac_lt(struct lh_buf *b, const char *fd, int *empty)
{
    size_t L = strlen(fd);
    *empty = L == 0;
    if (L == 0)
        return 0;
    int rc = lh_buf_puts(b, "(\\.(");
    for (size_t i = 0; i < L; i++) {
        if (fd[i] == '0')
            continue;
        rc |= lh_buf_append(b, fd, i);
        rc |= cls(b, '0', (char)(fd[i] - 1));
        rc |= lh_buf_puts(b, "[0-9]*|");
    }
    for (size_t i = 0; i < L; i++) {
        rc |= lh_buf_append(b, fd, i);
        rc |= lh_buf_puts(b, i + 1 < L ? "0*|" : "0*");
    }
    return rc | lh_buf_puts(b, "))?");
}

static int mag_any(struct lh_buf *b) { return lh_buf_puts(b, "[0-9]*(\\.[0-9]*)?"); }

static int mag_eq(struct lh_buf *b, const char *id, const char *fd)
{
    return lh_buf_putc(b, '(') | int_eq(b, id) | frac_eq(b, fd) | lh_buf_putc(b, ')');
}

static int mag_gt(struct lh_buf *b, const char *id, const char *fd)
{
    int rc = lh_buf_putc(b, '(');
    rc |= int_gt(b, id);
    rc |= frac_any(b);
    rc |= lh_buf_putc(b, '|');
    rc |= int_eq(b, id);
    rc |= frac_gt(b, fd);
    return rc | lh_buf_putc(b, ')');
}

/* Sets *empty when nothing is below (id and fd both zero). */
static int mag_lt(struct lh_buf *b, const char *id, const char *fd, int *empty)
{
    struct lh_buf ip = LH_BUF_INIT, fp = LH_BUF_INIT;
    int ie, fe;
    int rc = int_lt(&ip, id, &ie) | frac_lt(&fp, fd, &fe);
    *empty = ie && fe;
    if (!*empty) {
        rc |= lh_buf_putc(b, '(');
        if (!ie) {
            rc |= lh_buf_append(b, ip.data, ip.len);
            rc |= frac_any(b);
        }
        if (!fe) {
            if (!ie)
                rc |= lh_buf_putc(b, '|');
            rc |= int_eq(b, id);
            rc |= lh_buf_append(b, fp.data, fp.len);
        }
        rc |= lh_buf_putc(b, ')');
    }
    lh_buf_free(&ip);
    lh_buf_free(&fp);
    return rc;
}

/* An alternative of the whole expression: sign + magnitude pattern. */
enum mag { M_ANY, M_EQ, M_GT, M_LT, M_GE, M_LE };

static int alt(struct lh_buf *b, int *first, int neg, enum mag m, const char *id,
               const char *fd)
{
    struct lh_buf p = LH_BUF_INIT;
    int rc = 0, empty = 0;
    switch (m) {
    case M_ANY: rc = mag_any(&p); break;
    case M_EQ: rc = mag_eq(&p, id, fd); break;
    case M_GT: rc = mag_gt(&p, id, fd); break;
    case M_LT: rc = mag_lt(&p, id, fd, &empty); break;
    case M_GE:
        rc = lh_buf_putc(&p, '(') | mag_gt(&p, id, fd) | lh_buf_putc(&p, '|') |
             mag_eq(&p, id, fd) | lh_buf_putc(&p, ')');
        break;
    case M_LE: {
        struct lh_buf lt = LH_BUF_INIT;
        rc = mag_lt(&lt, id, fd, &empty);
        rc |= lh_buf_putc(&p, '(');
        if (!empty)
            rc |= lh_buf_append(&p, lt.data, lt.len) | lh_buf_putc(&p, '|');
        rc |= mag_eq(&p, id, fd) | lh_buf_putc(&p, ')');
        empty = 0;
        lh_buf_free(&lt);
        break;
    }
    }
    if (!empty) {
        if (!*first)
            rc |= lh_buf_putc(b, '|');
        *first = 0;
        rc |= lh_buf_puts(b, neg ? "\\-" : "\\+?");
        rc |= lh_buf_append(b, p.data, p.len);
    }
    lh_buf_free(&p);
    return rc;
}

int lh_osq_numeric_regexp(enum lh_qop op, const char *value, struct lh_buf *out)
{
    const char *s = value;
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    const char *dot = strchr(s, '.');
    size_t ilen = dot ? (size_t)(dot - s) : strlen(s);
    if (ilen == 0 || ilen > 64)
        return LH_EINVAL;
    for (size_t i = 0; i < ilen; i++)
        if (!isdigit((unsigned char)s[i]))
            return LH_EINVAL;
    char id[65], fd[65];
    size_t z = 0;
    while (z < ilen && s[z] == '0')
        z++;
    snprintf(id, sizeof(id), "%.*s", (int)(ilen - z), s + z);
    fd[0] = '\0';
    if (dot) {
        size_t fl = strlen(dot + 1);
        if (fl == 0 || fl > 64)
            return LH_EINVAL;
        for (size_t i = 0; i < fl; i++)
            if (!isdigit((unsigned char)dot[1 + i]))
                return LH_EINVAL;
        while (fl > 0 && dot[fl] == '0')
            fl--;
        snprintf(fd, sizeof(fd), "%.*s", (int)fl, dot + 1);
    }
    int zero = !id[0] && !fd[0];
    if (zero)
        neg = 0;   /* -0 is 0 */
    int first = 1, rc = 0;
    size_t start = out->len;
    rc |= lh_buf_putc(out, '(');
    switch (op) {
    case LH_QOP_GT:
        if (!neg)
            rc |= alt(out, &first, 0, M_GT, id, fd);
        else
            rc |= alt(out, &first, 0, M_ANY, id, fd) | alt(out, &first, 1, M_LT, id, fd);
        break;
    case LH_QOP_GTE:
        if (!neg) {
            rc |= alt(out, &first, 0, M_GE, id, fd);
            if (zero)
                rc |= alt(out, &first, 1, M_EQ, id, fd);
        } else {
            rc |= alt(out, &first, 0, M_ANY, id, fd) | alt(out, &first, 1, M_LE, id, fd);
        }
        break;
    case LH_QOP_LT:
        if (zero)
            rc |= alt(out, &first, 1, M_GT, id, fd);
        else if (!neg)
            rc |= alt(out, &first, 0, M_LT, id, fd) | alt(out, &first, 1, M_ANY, id, fd);
        else
            rc |= alt(out, &first, 1, M_GT, id, fd);
        break;
    case LH_QOP_LTE:
        if (zero)
            rc |= alt(out, &first, 0, M_EQ, id, fd) | alt(out, &first, 1, M_ANY, id, fd);
        else if (!neg)
            rc |= alt(out, &first, 0, M_LE, id, fd) | alt(out, &first, 1, M_ANY, id, fd);
        else
            rc |= alt(out, &first, 1, M_GE, id, fd);
        break;
    default:
        out->len = start;
        return LH_EINVAL;
    }
    rc |= lh_buf_putc(out, ')');
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return LH_ENOMEM;
    }
    return 0;
}

/* ---- query bodies ------------------------------------------------------- */

/* Clauses collected for bool.filter, bool.must and bool.must_not. */
struct clauses {
    struct lh_buf filter, must, must_not;
    int oom;
};

static struct lh_buf *begin(struct clauses *c, struct lh_buf *which)
{
    if (which->len)
        c->oom |= lh_buf_putc(which, ',');
    return which;
}

static void put_str(struct clauses *c, struct lh_buf *b, const char *s)
{
    c->oom |= lh_buf_json_str(b, s, strlen(s));
}

/* {"<kind>":{"<field>":<value string>}} */
static void simple(struct clauses *c, struct lh_buf *which, const char *kind, const char *field,
                   const char *value)
{
    struct lh_buf *b = begin(c, which);
    c->oom |= lh_buf_printf(b, "{\"%s\":{", kind);
    put_str(c, b, field);
    c->oom |= lh_buf_putc(b, ':');
    put_str(c, b, value);
    c->oom |= lh_buf_puts(b, "}}");
}

static void time_text(int64_t ns, char *buf)
{
    if (lh_time_format_rfc3339(ns, 9, buf, LH_TIME_RFC3339_SIZE) < 0)
        strcpy(buf, ns < 0 ? "1677-09-21T00:12:44.000000000Z" : "2262-04-11T23:47:16.854775807Z");
}

/* On an index mapping timestamp as date (ms), OpenSearch cuts a bound to
 * its millisecond: gte and lt of an instant inside a millisecond would take
 * in (gte) or leave out (lt) that millisecond's events, which lie before
 * it. gt and lte cut right, so such a bound is asked as gt v-1 or lte v-1:
 * the same events on date_nanos indices, the right ones on ms indices
 * (a tier boundary, now - max_age, is such an instant). */
static const char *exact_bound(const char *op, int64_t *v)
{
    if (*v % LH_NS_PER_MS == 0 || *v == INT64_MIN)
        return op;
    if (strcmp(op, "gte") == 0) {
        (*v)--;
        return "gt";
    }
    if (strcmp(op, "lt") == 0) {
        (*v)--;
        return "lte";
    }
    return op;
}

/* A range on timestamp: op1/v1 and optionally op2/v2 ("gte", ns). */
static void ts_range(struct clauses *c, struct lh_buf *b, const char *op1, int64_t v1,
                     const char *op2, int64_t v2)
{
    char t1[LH_TIME_RFC3339_SIZE], t2[LH_TIME_RFC3339_SIZE];
    op1 = exact_bound(op1, &v1);
    if (op2)
        op2 = exact_bound(op2, &v2);
    time_text(v1, t1);
    c->oom |= lh_buf_printf(b, "{\"range\":{\"timestamp\":{\"%s\":\"%s\"", op1, t1);
    if (op2) {
        time_text(v2, t2);
        c->oom |= lh_buf_printf(b, ",\"%s\":\"%s\"", op2, t2);
    }
    c->oom |= lh_buf_puts(b, ",\"format\":\"strict_date_optional_time_nanos\"}}}");
}

static int64_t ns_of(const char *v) { return strtoll(v, NULL, 10); }

/* A wildcard value: * ? \ escaped. */
static int wild_escape(struct lh_buf *b, const char *v, int stars)
{
    int rc = stars ? lh_buf_putc(b, '*') : 0;
    for (; *v; v++) {
        if (*v == '*' || *v == '?' || *v == '\\')
            rc |= lh_buf_putc(b, '\\');
        rc |= lh_buf_putc(b, *v);
    }
    return rc | (stars ? lh_buf_putc(b, '*') : 0);
}

static int filter_clause(struct clauses *c, const struct lh_qfilter *f, struct lh_err *err)
{
    char osfield[300];
    if (f->kind == LH_QK_META)
        snprintf(osfield, sizeof(osfield), "custom_metadata.%s", f->meta_key);
    else
        snprintf(osfield, sizeof(osfield), "%s", f->field);
    if (f->kind == LH_QK_TEXT && f->op != LH_QOP_EXISTS)
        return lh_err_set(err, LH_EINVAL, "query.filters[%d].operator: %s on %s is not "
                          "supported by the opensearch backend (%s is analysed text there); "
                          "search it with full_text", f->index, lh_qop_name(f->op), f->field,
                          f->field);
    struct lh_buf *b;
    switch (f->op) {
    case LH_QOP_EQUALS:
    case LH_QOP_NOT_EQUALS: {
        struct lh_buf *which = f->op == LH_QOP_EQUALS ? &c->filter : &c->must_not;
        if (f->kind == LH_QK_TIME) {
            b = begin(c, which);
            ts_range(c, b, "gte", ns_of(f->value), "lte", ns_of(f->value));
        } else {
            simple(c, which, "term", osfield, f->value);
        }
        return 0;
    }
    case LH_QOP_IN:
        b = begin(c, &c->filter);
        if (f->kind == LH_QK_TIME) {
            c->oom |= lh_buf_puts(b, "{\"bool\":{\"minimum_should_match\":1,\"should\":[");
            for (size_t i = 0; i < f->nvalues; i++) {
                if (i)
                    c->oom |= lh_buf_putc(b, ',');
                ts_range(c, b, "gte", ns_of(f->values[i]), "lte", ns_of(f->values[i]));
            }
            c->oom |= lh_buf_puts(b, "]}}");
            return 0;
        }
        c->oom |= lh_buf_puts(b, "{\"terms\":{");
        put_str(c, b, osfield);
        c->oom |= lh_buf_puts(b, ":[");
        for (size_t i = 0; i < f->nvalues; i++) {
            if (i)
                c->oom |= lh_buf_putc(b, ',');
            put_str(c, b, f->values[i]);
        }
        c->oom |= lh_buf_puts(b, "]}}");
        return 0;
    case LH_QOP_PREFIX:
        simple(c, &c->filter, "prefix", osfield, f->value);
        return 0;
    case LH_QOP_CONTAINS: {
        struct lh_buf w = LH_BUF_INIT;
        c->oom |= wild_escape(&w, f->value, 1);
        b = begin(c, &c->filter);
        c->oom |= lh_buf_puts(b, "{\"wildcard\":{");
        put_str(c, b, osfield);
        c->oom |= lh_buf_puts(b, ":{\"value\":");
        c->oom |= lh_buf_json_str(b, w.data ? w.data : "**", w.len);
        c->oom |= lh_buf_puts(b, "}}}");
        lh_buf_free(&w);
        return 0;
    }
    case LH_QOP_EXISTS: {
        struct lh_buf *which = f->exists ? &c->filter : &c->must_not;
        if (f->kind == LH_QK_META) {
            simple(c, which, "prefix", osfield, "");
        } else {
            b = begin(c, which);
            c->oom |= lh_buf_puts(b, "{\"exists\":{\"field\":");
            put_str(c, b, osfield);
            c->oom |= lh_buf_puts(b, "}}");
        }
        return 0;
    }
    case LH_QOP_GT:
    case LH_QOP_GTE:
    case LH_QOP_LT:
    case LH_QOP_LTE: {
        static const char *const names[] = { "gt", "gte", "lt", "lte" };
        const char *name = names[f->op - LH_QOP_GT];
        b = begin(c, &c->filter);
        if (f->kind == LH_QK_TIME) {
            ts_range(c, b, name, ns_of(f->value), NULL, 0);
            return 0;
        }
        /* metadata values are strings: compare as decimal numbers */
        struct lh_buf re = LH_BUF_INIT;
        int rc = lh_osq_numeric_regexp(f->op, f->value, &re);
        if (rc == LH_EINVAL) {
            lh_buf_free(&re);
            return lh_err_set(err, LH_EINVAL, "query.filters[%d].value: %s needs a decimal "
                              "number", f->index, lh_qop_name(f->op));
        }
        c->oom |= rc != 0;
        c->oom |= lh_buf_puts(&re, "&(.*[0-9].*)");
        c->oom |= lh_buf_puts(b, "{\"regexp\":{");
        put_str(c, b, osfield);
        c->oom |= lh_buf_puts(b, ":{\"value\":");
        c->oom |= lh_buf_json_str(b, re.data ? re.data : "", re.len);
        c->oom |= lh_buf_puts(b, ",\"flags\":\"INTERSECTION\",\"max_determinized_states\":100000}}}");
        lh_buf_free(&re);
        return 0;
    }
    }
    return 0;
}

/* The store's tokens: runs of ASCII letters, digits and bytes >= 0x80. */
static size_t count_tokens(const char *s)
{
    size_t n = 0;
    int in = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int t = isalnum(*p) || *p >= 0x80;
        n += t && !in;
        in = t;
    }
    return n;
}

/* One word or phrase: it must occur in one of the searched fields. */
static void text_clause(struct clauses *c, const char *t, int phrase)
{
    struct lh_buf *b = begin(c, &c->must);
    int as_phrase = phrase || count_tokens(t) > 1;
    static const char *const text_fields[] = { "message", "raw" };
    static const char *const kw_fields[] = { "trace_id", "user_id", "host", "custom_metadata" };
    c->oom |= lh_buf_puts(b, "{\"bool\":{\"minimum_should_match\":1,\"should\":[");
    for (size_t i = 0; i < 2; i++) {
        /* raw is indexed without positions (the indexer's template): there
         * a phrase can only ask for all of its words */
        if (as_phrase && i == 0) {
            c->oom |= lh_buf_printf(b, "{\"match_phrase\":{\"%s\":{\"query\":", text_fields[i]);
            put_str(c, b, t);
            c->oom |= lh_buf_puts(b, "}}},");
        } else {
            c->oom |= lh_buf_printf(b, "{\"match\":{\"%s\":{\"query\":", text_fields[i]);
            put_str(c, b, t);
            c->oom |= lh_buf_puts(b, ",\"operator\":\"and\"}}},");
        }
    }
    for (size_t i = 0; i < 4; i++) {
        c->oom |= lh_buf_printf(b, "%s{\"term\":{\"%s\":", i ? "," : "", kw_fields[i]);
        put_str(c, b, t);
        c->oom |= lh_buf_puts(b, "}}");
    }
    c->oom |= lh_buf_puts(b, "]}}");
}

static void clauses_free(struct clauses *c)
{
    lh_buf_free(&c->filter);
    lh_buf_free(&c->must);
    lh_buf_free(&c->must_not);
}

/* Appends "query":{"bool":{...}} for bq. */
static int put_query(const struct lh_bquery *bq, struct lh_buf *out, struct lh_err *err)
{
    struct clauses c;
    memset(&c, 0, sizeof(c));
    const struct lh_query *q = bq->q;
    simple(&c, &c.filter, "term", "tenant", bq->tenant);
    struct lh_buf *b = begin(&c, &c.filter);
    if (bq->end_ns)
        ts_range(&c, b, "gte", bq->start_ns, "lt", bq->end_ns);
    else
        ts_range(&c, b, "gte", bq->start_ns, NULL, 0);
    for (size_t i = 0; i < q->nterms; i++)
        text_clause(&c, q->terms[i], 0);
    for (size_t i = 0; i < q->nphrases; i++)
        text_clause(&c, q->phrases[i], 1);
    for (size_t i = 0; i < q->nfilters; i++) {
        int rc = filter_clause(&c, &q->filters[i], err);
        if (rc < 0) {
            clauses_free(&c);
            return rc;
        }
    }
    int rc = lh_buf_puts(out, "\"query\":{\"bool\":{\"filter\":[");
    rc |= lh_buf_append(out, c.filter.data, c.filter.len);
    rc |= lh_buf_putc(out, ']');
    if (c.must.len) {
        rc |= lh_buf_puts(out, ",\"must\":[");
        rc |= lh_buf_append(out, c.must.data, c.must.len);
        rc |= lh_buf_putc(out, ']');
    }
    if (c.must_not.len) {
        rc |= lh_buf_puts(out, ",\"must_not\":[");
        rc |= lh_buf_append(out, c.must_not.data, c.must_not.len);
        rc |= lh_buf_putc(out, ']');
    }
    rc |= lh_buf_puts(out, "}}");
    rc |= c.oom;
    clauses_free(&c);
    return rc ? lh_err_set(err, LH_ENOMEM, "out of memory") : 0;
}

static int finish(struct lh_buf *out, size_t start, int rc, struct lh_err *err)
{
    if (rc < 0 || rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return rc < 0 ? rc : lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    return 0;
}

int lh_osq_search_body(const struct lh_bquery *bq, struct lh_buf *out, struct lh_err *err)
{
    size_t start = out->len;
    int rc = lh_buf_printf(out, "{\"size\":%zu,", bq->limit + 1);
    if (bq->total_cap)
        rc |= lh_buf_printf(out, "\"track_total_hits\":%llu,",
                            (unsigned long long)bq->total_cap);
    else
        rc |= lh_buf_puts(out, "\"track_total_hits\":false,");
    /* numeric_type date_nanos: sort values (and so search_after) are in
     * nanoseconds also on indices that map timestamp as date (ms), and the
     * two kinds sort together; without it a ms index reads the ns position
     * as milliseconds, far in the future, and every page is the first. */
    rc |= lh_buf_puts(out, "\"_source\":{\"excludes\":[\"raw\",\"tenant\"]},"
                           "\"sort\":[{\"timestamp\":{\"order\":\"desc\","
                           "\"numeric_type\":\"date_nanos\"}},"
                           "{\"id\":{\"order\":\"desc\"}}],");
    if (bq->after) {
        rc |= lh_buf_printf(out, "\"search_after\":[%lld,", (long long)bq->after->ts_ns);
        rc |= lh_buf_json_str(out, bq->after->id, strlen(bq->after->id));
        rc |= lh_buf_puts(out, "],");
    }
    if (rc)
        return finish(out, start, rc, err);
    rc = put_query(bq, out, err);
    if (rc == 0)
        rc = lh_buf_putc(out, '}');
    return finish(out, start, rc, err);
}

int lh_osq_histogram_body(const struct lh_bquery *bq, int64_t bucket_ns, struct lh_buf *out,
                          struct lh_err *err)
{
    size_t start = out->len;
    if (bucket_ns < LH_NS_PER_MS || bucket_ns % LH_NS_PER_MS)
        return lh_err_set(err, LH_EINVAL, "interval: whole milliseconds with opensearch");
    int rc = lh_buf_puts(out, "{\"size\":0,\"track_total_hits\":false,");
    if (rc)
        return finish(out, start, rc, err);
    rc = put_query(bq, out, err);
    if (rc == 0)
        rc = lh_buf_printf(out, ",\"aggs\":{\"h\":{\"date_histogram\":{\"field\":\"timestamp\","
                                "\"fixed_interval\":\"%lldms\",\"min_doc_count\":1}}}}",
                           (long long)(bucket_ns / LH_NS_PER_MS));
    return finish(out, start, rc, err);
}

int lh_osq_top_body(const struct lh_bquery *bq, const struct lh_qtop *top, struct lh_buf *out,
                    struct lh_err *err)
{
    size_t start = out->len;
    if (top->kind == LH_QK_META)
        return lh_err_set(err, LH_EINVAL, "top.field: top values of %s are not available from "
                          "the opensearch backend (custom_metadata is a flat_object, which does "
                          "not aggregate)", top->field);
    int rc = lh_buf_puts(out, "{\"size\":0,\"track_total_hits\":false,");
    if (rc)
        return finish(out, start, rc, err);
    rc = put_query(bq, out, err);
    if (rc == 0) {
        size_t shard = top->size * 5 > 100 ? top->size * 5 : 100;
        rc = lh_buf_puts(out, ",\"aggs\":{\"t\":{\"terms\":{\"field\":");
        rc |= lh_buf_json_str(out, top->field, strlen(top->field));
        rc |= lh_buf_printf(out, ",\"size\":%zu,\"shard_size\":%zu}},\"m\":{\"missing\":"
                                 "{\"field\":", top->size, shard);
        rc |= lh_buf_json_str(out, top->field, strlen(top->field));
        rc |= lh_buf_puts(out, "}}}}");
    }
    return finish(out, start, rc, err);
}

int lh_osq_indices(const char *prefix, const char *tenant, int64_t start_ns, int64_t end_ns,
                   int64_t now_ns, struct lh_buf *out)
{
    char t[65];
    size_t n = 0;
    for (const char *p = tenant ? tenant : ""; *p && n < 64; p++) {
        char ch = (char)tolower((unsigned char)*p);
        t[n++] = (isalnum((unsigned char)ch) && !(ch & 0x80)) || ch == '_' || ch == '-' ? ch
                                                                                        : '_';
    }
    t[n] = '\0';
    if (!n)
        snprintf(t, sizeof(t), "default");
    int64_t day = 86400 * LH_NS_PER_SEC;
    int64_t end = end_ns ? end_ns : now_ns + day;
    int64_t d0 = start_ns >= 0 ? start_ns / day : (start_ns - day + 1) / day;
    int64_t d1 = (end - 1) >= 0 ? (end - 1) / day : (end - day) / day;
    if (end <= start_ns || d1 - d0 + 1 > 31)
        return lh_buf_printf(out, "%s-%s-*", prefix, t);
    int rc = 0;
    for (int64_t d = d0; d <= d1; d++) {
        struct lh_civil c;
        lh_time_to_civil(d * day, &c);
        rc |= lh_buf_printf(out, "%s%s-%s-%04d.%02d.%02d", d == d0 ? "" : ",", prefix, t, c.year,
                            c.month, c.day);
    }
    return rc;
}
