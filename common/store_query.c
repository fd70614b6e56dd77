/* store_query.c - the store's query engine: compiling a query, skipping
 * blocks by time, bloom filter, dictionaries and level counts, evaluating
 * predicates and full text column by column, and the newest-first search,
 * count, histogram and top-N operations, each scanning blocks on several
 * threads. */
#include "store_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <zstd.h>

#include "lh/log.h"
#include "lh/time.h"

/* ---- compiled query --------------------------------------------------- */

struct cterm {              /* a token sequence, lower-cased */
    size_t ntok;
    char **tok;
    size_t *len;
    uint64_t *hash;
};

enum fkind { FK_COL, FK_TS, FK_RECV, FK_LEVEL, FK_META };

struct cpred {
    enum lh_store_op op;
    enum fkind kind;
    int col;
    const char *key;
    const char **vals;
    size_t nvals;
    int isnum;
    double num;
    int64_t ival;
    int64_t *ivals;
    uint8_t lvl_ok[LH_LEVEL_COUNT];
    struct cterm *vtoks;    /* EQ/IN on indexed fields: tokens of each value */
};

struct cq {
    const char *tenant;
    int64_t start, end;
    struct cterm *terms;
    size_t nterms;
    struct cpred *preds;
    size_t npreds;
    int has_after;
    struct lh_store_pos after;
    size_t limit;
    int want_total;
    uint64_t total_cap;     /* want_total: stop counting past this (0: never) */
    int64_t deadline;       /* lh_time_mono_ns() limit (0: none) */
    int empty;              /* contradictory: matches nothing */
    struct lh_arena arena;
};

static const struct {
    const char *name;
    int col;
} col_names[] = {
    { "id", LHS_C_ID }, { "service", LHS_C_SERVICE }, { "host", LHS_C_HOST },
    { "trace_id", LHS_C_TRACE }, { "span_id", LHS_C_SPAN }, { "user_id", LHS_C_USER },
    { "message", LHS_C_MESSAGE }, { "stream", LHS_C_STREAM },
    { "container_id", LHS_C_CONTAINER }, { "k8s.namespace", LHS_C_K8S_NS },
    { "k8s_namespace", LHS_C_K8S_NS }, { "k8s.pod", LHS_C_K8S_POD }, { "k8s_pod", LHS_C_K8S_POD },
    { "k8s.container", LHS_C_K8S_CONT }, { "k8s_container", LHS_C_K8S_CONT },
    { "region", LHS_C_REGION }, { "file", LHS_C_FILE }, { "raw", LHS_C_RAW },
};

static int col_indexed(int c)
{
    return c == LHS_C_MESSAGE || c == LHS_C_TRACE || c == LHS_C_USER || c == LHS_C_HOST ||
           c == LHS_C_SPAN || c == LHS_C_RAW;
}

struct tokacc {
    struct lh_arena *a;
    char **tok;
    size_t *len;
    size_t n, cap;
    int fail;
};

static int tok_collect(void *ctx, const char *tok, size_t len)
{
    struct tokacc *t = ctx;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        char **nt = lh_arena_alloc(t->a, ncap * sizeof(*nt));
        size_t *nl = lh_arena_alloc(t->a, ncap * sizeof(*nl));
        if (!nt || !nl)
            return LH_ENOMEM;
        if (t->n) {
            memcpy(nt, t->tok, t->n * sizeof(*nt));
            memcpy(nl, t->len, t->n * sizeof(*nl));
        }
        t->tok = nt;
        t->len = nl;
        t->cap = ncap;
    }
    if (!(t->tok[t->n] = lh_arena_strndup(t->a, tok, len)))
        return LH_ENOMEM;
    t->len[t->n++] = len;
    return 0;
}

static int cterm_make(struct lh_arena *a, const char *s, struct cterm *out)
{
    struct tokacc t = { a, NULL, NULL, 0, 0, 0 };
    int rc = lhs_tokenize(s, strlen(s), tok_collect, &t);
    if (rc < 0)
        return rc;
    out->ntok = t.n;
    out->tok = t.tok;
    out->len = t.len;
    out->hash = t.n ? lh_arena_alloc(a, t.n * sizeof(uint64_t)) : NULL;
    if (t.n && !out->hash)
        return LH_ENOMEM;
    for (size_t i = 0; i < t.n; i++)
        out->hash[i] = lhs_tok_hash(t.tok[i], t.len[i]);
    return 0;
}

static int parse_num(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end || isnan(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

static int cmp_ok(enum lh_store_op op, int c)
{
    switch (op) {
    case LH_STORE_LT: return c < 0;
    case LH_STORE_LE: return c <= 0;
    case LH_STORE_GT: return c > 0;
    case LH_STORE_GE: return c >= 0;
    default: return 0;
    }
}

static int compile_pred(struct cq *cq, const struct lh_store_pred *p, struct cpred *c,
                        struct lh_err *err)
{
    memset(c, 0, sizeof(*c));
    c->op = p->op;
    if (!p->field)
        return lh_err_set(err, LH_EINVAL, "filter without a field");
    if ((unsigned)p->op > LH_STORE_GE)
        return lh_err_set(err, LH_EINVAL, "%s: unknown operator", p->field);
    int needs_value = p->op != LH_STORE_EXISTS && p->op != LH_STORE_NOT_EXISTS;
    if (p->op == LH_STORE_IN) {
        if (p->nvalues && !p->values)
            return lh_err_set(err, LH_EINVAL, "%s: IN without values", p->field);
        c->vals = (const char **)p->values;
        c->nvals = p->nvalues;
        for (size_t i = 0; i < p->nvalues; i++)
            if (!p->values[i])
                return lh_err_set(err, LH_EINVAL, "%s: IN with a NULL value", p->field);
    } else if (needs_value) {
        if (!p->value)
            return lh_err_set(err, LH_EINVAL, "%s: operator needs a value", p->field);
        c->vals = lh_arena_alloc(&cq->arena, sizeof(char *));
        if (!c->vals)
            return lh_err_set(err, LH_ENOMEM, "out of memory");
        c->vals[0] = p->value;
        c->nvals = 1;
    }
    if (strcmp(p->field, "timestamp") == 0 || strcmp(p->field, "received") == 0) {
        c->kind = p->field[0] == 't' ? FK_TS : FK_RECV;
        if (p->op == LH_STORE_PREFIX || p->op == LH_STORE_CONTAINS)
            return lh_err_set(err, LH_EINVAL, "%s: PREFIX/CONTAINS on a time", p->field);
        c->ivals = c->nvals ? lh_arena_alloc(&cq->arena, c->nvals * sizeof(int64_t)) : NULL;
        for (size_t i = 0; i < c->nvals; i++)
            if (parse_i64(c->vals[i], &c->ivals[i]) < 0)
                return lh_err_set(err, LH_EINVAL, "%s: '%s' is not a time in ns", p->field,
                                  c->vals[i]);
        if (c->kind == FK_TS && c->nvals == 1) {
            int64_t v = c->ivals[0];
            switch (p->op) {
            case LH_STORE_EQ:
                if (v > cq->start) cq->start = v;
                if (v < INT64_MAX && v + 1 < cq->end) cq->end = v + 1;
                break;
            case LH_STORE_GE: if (v > cq->start) cq->start = v; break;
            case LH_STORE_GT: if (v < INT64_MAX && v + 1 > cq->start) cq->start = v + 1; break;
            case LH_STORE_LT: if (v < cq->end) cq->end = v; break;
            case LH_STORE_LE: if (v < INT64_MAX && v + 1 < cq->end) cq->end = v + 1; break;
            default: break;
            }
        }
        if (c->kind == FK_TS && p->op == LH_STORE_NOT_EXISTS)
            cq->empty = 1;
        return 0;
    }
    if (strcmp(p->field, "level") == 0) {
        c->kind = FK_LEVEL;
        for (int l = 0; l < LH_LEVEL_COUNT; l++) {
            int ok = 0;
            const char *name = lhs_level_name(l);
            switch (p->op) {
            case LH_STORE_EQ: case LH_STORE_IN: case LH_STORE_NE:
                for (size_t i = 0; i < c->nvals; i++)
                    ok |= lhs_level_parse(c->vals[i]) == l;
                if (p->op == LH_STORE_NE)
                    ok = !ok;
                break;
            case LH_STORE_PREFIX:
                ok = strncasecmp(name, c->vals[0], strlen(c->vals[0])) == 0;
                break;
            case LH_STORE_CONTAINS:
                ok = strcasestr(name, c->vals[0]) != NULL;
                break;
            case LH_STORE_EXISTS: ok = 1; break;
            case LH_STORE_NOT_EXISTS: ok = 0; break;
            default: {
                int v = lhs_level_parse(c->vals[0]);
                ok = v >= 0 && cmp_ok(p->op, l - v);
                break;
            }
            }
            c->lvl_ok[l] = (uint8_t)ok;
        }
        return 0;
    }
    if (strncmp(p->field, "metadata.", 9) == 0 && p->field[9]) {
        c->kind = FK_META;
        c->key = p->field + 9;
    } else {
        c->kind = FK_COL;
        c->col = -1;
        for (size_t i = 0; i < sizeof(col_names) / sizeof(col_names[0]); i++)
            if (strcmp(col_names[i].name, p->field) == 0)
                c->col = col_names[i].col;
        if (c->col < 0)
            return lh_err_set(err, LH_EINVAL, "unknown field '%s'", p->field);
    }
    if (p->op >= LH_STORE_LT && parse_num(c->vals[0], &c->num) == 0)
        c->isnum = 1;
    if ((p->op == LH_STORE_EQ || p->op == LH_STORE_IN) &&
        (c->kind == FK_META || col_indexed(c->col))) {
        c->vtoks = c->nvals ? lh_arena_alloc(&cq->arena, c->nvals * sizeof(*c->vtoks)) : NULL;
        for (size_t i = 0; i < c->nvals; i++)
            if (cterm_make(&cq->arena, c->vals[i], &c->vtoks[i]) < 0)
                return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    return 0;
}

static void cq_free(struct cq *cq)
{
    lh_arena_free(&cq->arena);
}

static int cq_compile(struct cq *cq, const struct lh_store_query *q, struct lh_err *err)
{
    memset(cq, 0, sizeof(*cq));
    if (!q->tenant || !q->tenant[0] || strlen(q->tenant) > LH_STORE_TENANT_MAX)
        return lh_err_set(err, LH_EINVAL, "query without a valid tenant");
    cq->tenant = q->tenant;
    cq->start = q->start_ns;
    cq->end = q->end_ns ? q->end_ns : INT64_MAX;
    cq->limit = q->limit ? q->limit : 100;
    cq->want_total = q->want_total;
    cq->total_cap = q->total_cap;
    cq->deadline = q->deadline_ns;
    if (q->after) {
        cq->has_after = 1;
        cq->after = *q->after;
        cq->after.id[LH_STORE_ID_MAX] = '\0';
    }
    size_t nt = q->nterms + q->nphrases;
    if (nt) {
        cq->terms = lh_arena_alloc(&cq->arena, nt * sizeof(*cq->terms));
        if (!cq->terms)
            return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nt; i++) {
        const char *t = i < q->nterms ? q->terms[i] : q->phrases[i - q->nterms];
        if (!t)
            return lh_err_set(err, LH_EINVAL, "NULL search term");
        struct cterm ct;
        if (cterm_make(&cq->arena, t, &ct) < 0)
            return lh_err_set(err, LH_ENOMEM, "out of memory");
        if (ct.ntok)
            cq->terms[cq->nterms++] = ct;
    }
    if (q->npreds) {
        cq->preds = lh_arena_alloc(&cq->arena, q->npreds * sizeof(*cq->preds));
        if (!cq->preds)
            return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < q->npreds; i++) {
        int rc = compile_pred(cq, &q->preds[i], &cq->preds[i], err);
        if (rc < 0)
            return rc;
        cq->npreds++;
    }
    if (cq->start >= cq->end)
        cq->empty = 1;
    return 0;
}

/* ---- block-level skipping --------------------------------------------- */

static int bloom_has_all(const struct lhs_block *b, const struct cterm *t)
{
    for (size_t k = 0; k < t->ntok; k++)
        if (!lhs_bloom_test(b->m.bloom, b->m.bloom_words, t->hash[k]))
            return 0;
    return 1;
}

static int str_pred(const struct cpred *c, const char *v);

static int block_has_key(const struct lhs_block *b, const char *key)
{
    for (uint32_t i = 0; i < b->m.nkeys; i++)
        if (strcmp(b->m.keys[i], key) == 0)
            return 1;
    return 0;
}

/* 0 if no event of the block can match. */
static int block_may_match(const struct cq *cq, const struct lhs_block *b)
{
    if (b->max_ts < cq->start || b->min_ts >= cq->end)
        return 0;
    for (size_t i = 0; i < cq->nterms; i++)
        if (!bloom_has_all(b, &cq->terms[i]))
            return 0;
    for (size_t i = 0; i < cq->npreds; i++) {
        const struct cpred *c = &cq->preds[i];
        if (c->kind == FK_LEVEL) {
            uint64_t n = 0;
            for (int l = 0; l < LH_LEVEL_COUNT; l++)
                if (c->lvl_ok[l])
                    n += b->m.level_counts[l];
            if (!n)
                return 0;
            continue;
        }
        if (c->vtoks) {
            int any = 0;
            for (size_t k = 0; k < c->nvals && !any; k++)
                any = bloom_has_all(b, &c->vtoks[k]);
            if (!any)
                return 0;
        }
        if (c->kind == FK_META) {
            if (c->op != LH_STORE_NE && c->op != LH_STORE_NOT_EXISTS &&
                !block_has_key(b, c->key))
                return 0;
            continue;
        }
        if (c->kind != FK_COL)
            continue;
        const struct lhs_coldir *cd = &b->m.col[c->col];
        if (cd->enc == LHS_ENC_NULL) {
            if (!str_pred(c, NULL))
                return 0;
        } else if (cd->enc == LHS_ENC_DICT) {
            int any = str_pred(c, NULL);   /* code 0 */
            for (uint32_t k = 1; k <= cd->dict_n && !any; k++)
                any = str_pred(c, cd->dict[k]);
            if (!any)
                return 0;
        }
    }
    return 1;
}

/* ---- row predicates --------------------------------------------------- */

static int str_pred(const struct cpred *c, const char *v)
{
    switch (c->op) {
    case LH_STORE_EQ:
        return v && strcmp(v, c->vals[0]) == 0;
    case LH_STORE_NE:
        return !v || strcmp(v, c->vals[0]) != 0;
    case LH_STORE_IN:
        if (!v)
            return 0;
        for (size_t i = 0; i < c->nvals; i++)
            if (strcmp(v, c->vals[i]) == 0)
                return 1;
        return 0;
    case LH_STORE_PREFIX:
        return v && strncmp(v, c->vals[0], strlen(c->vals[0])) == 0;
    case LH_STORE_CONTAINS:
        return v && strstr(v, c->vals[0]) != NULL;
    case LH_STORE_EXISTS:
        return v != NULL;
    case LH_STORE_NOT_EXISTS:
        return v == NULL;
    default:
        if (!v)
            return 0;
        if (c->isnum) {
            double x;
            if (parse_num(v, &x) < 0)
                return 0;
            return cmp_ok(c->op, x < c->num ? -1 : x > c->num);
        }
        return cmp_ok(c->op, strcmp(v, c->vals[0]));
    }
}

static int int_pred(const struct cpred *c, int64_t v)
{
    switch (c->op) {
    case LH_STORE_EQ: return v == c->ivals[0];
    case LH_STORE_NE: return v != c->ivals[0];
    case LH_STORE_IN:
        for (size_t i = 0; i < c->nvals; i++)
            if (v == c->ivals[i])
                return 1;
        return 0;
    case LH_STORE_EXISTS: return 1;
    case LH_STORE_NOT_EXISTS: return 0;
    default: return cmp_ok(c->op, v < c->ivals[0] ? -1 : v > c->ivals[0]);
    }
}

/* ---- full text -------------------------------------------------------- */

/* 1 if the text at q (any case) starts with the lower-case tok[0..len). */
static int ci_prefix(const char *q, const char *end, const char *tok, size_t len)
{
    if ((size_t)(end - q) < len)
        return 0;
    for (size_t k = 0; k < len; k++)
        if (lhs_lower[(unsigned char)q[k]] != (unsigned char)tok[k])
            return 0;
    return 1;
}

/* The token sequence t at h (text in any case; ends at NUL or end)? */
static int seq_at(const char *h, const char *start, const char *end, const struct cterm *t)
{
    const unsigned char *u = (const unsigned char *)h;
    if (h > start && lhs_tokch[u[-1]])
        return 0;
    const char *q = h;
    for (size_t k = 0; k < t->ntok; k++) {
        if (k > 0) {
            while (q < end && *q && !lhs_tokch[(unsigned char)*q])
                q++;
            if (q >= end || !*q)
                return 0;
        }
        if (!ci_prefix(q, end, t->tok[k], t->len[k]))
            return 0;
        q += t->len[k];
        if (q < end && lhs_tokch[(unsigned char)*q])
            return 0;
    }
    return 1;
}

static int str_has(const char *s, const struct cterm *t)
{
    if (!s)
        return 0;
    const char *p = s, *end = s + strlen(s);
    while (p < end) {
        const char *h = lhs_ci_find(p, (size_t)(end - p), t->tok[0], t->len[0]);
        if (!h)
            return 0;
        if (seq_at(h, s, end, t))
            return 1;
        p = h + 1;
    }
    return 0;
}

/* A column's non-NULL strings, which lie back to back (each ends in its
 * NUL) in one decoded buffer: one search pass covers every row. */
struct region {
    const char *base;
    size_t len;
    size_t *starts;         /* offset of each listed row's string */
    uint32_t *rows;
    size_t n;
};

struct qblk {
    struct lhs_bdec d;
    struct region *reg[LHS_NCOLS + 1];   /* [LHS_C_RAW]: templates, [LHS_NCOLS]: raw lines */
};

static void qblk_free(struct qblk *qb)
{
    for (int c = 0; c <= LHS_NCOLS; c++) {
        if (qb->reg[c]) {
            free(qb->reg[c]->starts);
            free(qb->reg[c]->rows);
            free(qb->reg[c]);
        }
    }
    lhs_bdec_free(&qb->d);
}

/* vals: a decoded column's row strings (lhs_bdec_load, lhs_bdec_raw), in
 * row order in their buffer. */
static struct region *region_get(struct qblk *qb, int c, const char *const *vals)
{
    if (qb->reg[c])
        return qb->reg[c];
    uint32_t n = qb->d.n;
    struct region *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->starts = malloc(((size_t)n + 1) * sizeof(*r->starts));
    r->rows = malloc(((size_t)n + 1) * sizeof(*r->rows));
    if (!r->starts || !r->rows) {
        free(r->starts);
        free(r->rows);
        free(r);
        return NULL;
    }
    const char *last = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (!vals[i])
            continue;
        if (!r->base)
            r->base = vals[i];
        r->starts[r->n] = (size_t)(vals[i] - r->base);
        r->rows[r->n++] = i;
        last = vals[i];
    }
    if (last)
        r->len = (size_t)(last - r->base) + strlen(last) + 1;
    qb->reg[c] = r;
    return r;
}

/* Marks hit[row] for rows whose string contains t. */
static void region_match(const struct region *r, const struct cterm *t, uint8_t *hit)
{
    const char *base = r->base, *p = base, *end = base + r->len;
    while (p < end) {
        const char *h = lhs_ci_find(p, (size_t)(end - p), t->tok[0], t->len[0]);
        if (!h)
            break;
        /* row of h */
        size_t off = (size_t)(h - base), lo = 0, hi = r->n;
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (r->starts[mid] <= off)
                lo = mid;
            else
                hi = mid;
        }
        if (!hit[r->rows[lo]] && seq_at(h, base, end, t)) {
            hit[r->rows[lo]] = 1;
            p = base + (lo + 1 < r->n ? r->starts[lo + 1] : r->len);
        } else {
            p = h + 1;
        }
    }
}

static const int ft_cols[] = { LHS_C_MESSAGE, LHS_C_TRACE, LHS_C_USER, LHS_C_HOST, LHS_C_RAW };

/* mask[i] &= row i contains every term. */
static int ft_block(const struct cq *cq, struct qblk *qb, uint8_t *mask, uint32_t lo,
                    uint32_t hi, uint8_t *hit)
{
    struct lhs_bdec *d = &qb->d;
    for (size_t ti = 0; ti < cq->nterms; ti++) {
        const struct cterm *t = &cq->terms[ti];
        int alive = 0;
        for (uint32_t i = lo; i < hi; i++)
            alive |= mask[i];
        if (!alive)
            return 0;
        memset(hit + lo, 0, hi - lo);
        for (size_t k = 0; k < sizeof(ft_cols) / sizeof(ft_cols[0]); k++) {
            int c = ft_cols[k];
            int rc = lhs_bdec_load(d, c);
            if (rc < 0)
                return rc;
            const struct lhs_coldir *cd = &d->b->m.col[c];
            if (cd->enc == LHS_ENC_NULL)
                continue;
            if (cd->enc == LHS_ENC_DICT) {
                uint8_t ok[65537];
                ok[0] = 0;
                for (uint32_t e = 1; e <= cd->dict_n; e++)
                    ok[e] = (uint8_t)str_has(cd->dict[e], t);
                for (uint32_t i = lo; i < hi; i++)
                    hit[i] |= ok[d->codes[c][i]];
                continue;
            }
            if (c == LHS_C_RAW && t->ntok > 1) {
                /* a phrase may run across a field inside raw: search raw itself */
                if ((rc = lhs_bdec_raw(d)) < 0)
                    return rc;
                struct region *r = region_get(qb, LHS_NCOLS, (const char *const *)d->raw);
                if (!r)
                    return LH_ENOMEM;
                region_match(r, t, hit);
                continue;
            }
            /* a single token in raw is in its template's literal text or in a
             * field it refers to; all but span_id are searched anyway */
            struct region *r = region_get(qb, c, d->str[c]);
            if (!r)
                return LH_ENOMEM;
            region_match(r, t, hit);
            if (c == LHS_C_RAW && d->b->m.col[LHS_C_SPAN].enc != LHS_ENC_NULL) {
                if ((rc = lhs_bdec_load(d, LHS_C_SPAN)) < 0)
                    return rc;
                for (uint32_t i = lo; i < hi; i++)
                    if (mask[i] && !hit[i] && d->str[c][i] && d->str[LHS_C_SPAN][i] &&
                        strstr(d->str[c][i], "\x01\x04"))
                        hit[i] = (uint8_t)str_has(d->str[LHS_C_SPAN][i], t);
            }
        }
        if ((d->b->m.nkeys) && (lhs_bdec_load(d, LHS_C_META) == 0)) {
            for (uint32_t i = lo; i < hi; i++) {
                if (!mask[i] || hit[i] || !d->meta_row[i])
                    continue;
                const uint8_t *p = d->meta_row[i];
                uint64_t cnt = 0, code = 0, l = 0;
                lhs_varint(&p, d->meta_end, &cnt);
                for (uint64_t k = 0; k < cnt && !hit[i]; k++) {
                    lhs_varint(&p, d->meta_end, &code);
                    lhs_varint(&p, d->meta_end, &l);
                    hit[i] = (uint8_t)str_has((const char *)p, t);
                    p += l + 1;
                }
            }
        } else if (d->corrupt) {
            return LH_ECORRUPT;
        }
        for (uint32_t i = lo; i < hi; i++)
            mask[i] &= hit[i];
    }
    return 0;
}

/* Evaluates the query on rows [lo, hi) of a block; mask[i] = match. */
static int eval_block(const struct cq *cq, struct qblk *qb, uint8_t *mask, uint32_t lo,
                      uint32_t hi, uint8_t *scratch)
{
    struct lhs_bdec *d = &qb->d;
    int rc;
    for (uint32_t i = lo; i < hi; i++)
        mask[i] = 1;
    for (size_t pi = 0; pi < cq->npreds; pi++) {
        const struct cpred *c = &cq->preds[pi];
        switch (c->kind) {
        case FK_LEVEL:
            if ((rc = lhs_bdec_load(d, LHS_C_LEVEL)) < 0)
                return rc;
            for (uint32_t i = lo; i < hi; i++)
                mask[i] &= c->lvl_ok[d->level[i]];
            break;
        case FK_TS:
        case FK_RECV:
            if ((rc = lhs_bdec_load(d, c->kind == FK_TS ? LHS_C_TS : LHS_C_RECV)) < 0)
                return rc;
            for (uint32_t i = lo; i < hi; i++) {
                if (!mask[i])
                    continue;
                if (c->kind == FK_RECV && d->recv[i] == 0)
                    mask[i] = c->op == LH_STORE_NOT_EXISTS || c->op == LH_STORE_NE;
                else
                    mask[i] = (uint8_t)int_pred(c, c->kind == FK_TS ? d->ts[i] : d->recv[i]);
            }
            break;
        case FK_META:
            if ((rc = lhs_bdec_load(d, LHS_C_META)) < 0)
                return rc;
            for (uint32_t i = lo; i < hi; i++)
                if (mask[i])
                    mask[i] = (uint8_t)str_pred(c, lhs_bdec_meta_get(d, i, c->key));
            break;
        case FK_COL: {
            if ((rc = c->col == LHS_C_RAW ? lhs_bdec_raw(d) : lhs_bdec_load(d, c->col)) < 0)
                return rc;
            const struct lhs_coldir *cd = &d->b->m.col[c->col];
            if (cd->enc == LHS_ENC_DICT) {
                uint8_t ok[65537];
                ok[0] = (uint8_t)str_pred(c, NULL);
                for (uint32_t e = 1; e <= cd->dict_n; e++)
                    ok[e] = (uint8_t)str_pred(c, cd->dict[e]);
                for (uint32_t i = lo; i < hi; i++)
                    mask[i] &= ok[d->codes[c->col][i]];
                break;
            }
            const char *const *vals = c->col == LHS_C_RAW ? (const char *const *)d->raw
                                                           : d->str[c->col];
            for (uint32_t i = lo; i < hi; i++)
                if (mask[i])
                    mask[i] = (uint8_t)str_pred(c, vals[i]);
            break;
        }
        }
    }
    if (cq->nterms)
        return ft_block(cq, qb, mask, lo, hi, scratch);
    return 0;
}

/* ---- position helpers ------------------------------------------------- */

/* (ts, id) order: <0, 0, >0 */
static int key_cmp(int64_t ts, const char *id, int64_t ts2, const char *id2)
{
    if (ts != ts2)
        return ts < ts2 ? -1 : 1;
    return strcmp(id, id2);
}

/* Row range [lo, hi) of a block inside the time range, and *hia: the end
 * of the rows before `after` (hi when there is no position). */
static int row_range(const struct cq *cq, struct lhs_bdec *d, uint32_t *lo, uint32_t *hi,
                     uint32_t *hia)
{
    int rc = lhs_bdec_load(d, LHS_C_TS);
    if (rc < 0)
        return rc;
    uint32_t n = d->n, a, b;
    uint32_t l = 0, h = n;
    while (l < h) {
        uint32_t m = l + (h - l) / 2;
        if (d->ts[m] < cq->start) l = m + 1; else h = m;
    }
    a = l;
    h = n;
    while (l < h) {
        uint32_t m = l + (h - l) / 2;
        if (d->ts[m] < cq->end) l = m + 1; else h = m;
    }
    b = l;
    *lo = a;
    *hi = b;
    *hia = b;
    if (cq->has_after) {
        /* first row with (ts, id) >= after */
        l = a;
        h = b;
        while (l < h) {
            uint32_t m = l + (h - l) / 2;
            if (d->ts[m] < cq->after.ts_ns) l = m + 1; else h = m;
        }
        if (l < b && d->ts[l] == cq->after.ts_ns) {
            if ((rc = lhs_bdec_load(d, LHS_C_ID)) < 0)
                return rc;
            h = b;
            while (l < h) {
                uint32_t m = l + (h - l) / 2;
                if (key_cmp(d->ts[m], d->str[LHS_C_ID][m] ? d->str[LHS_C_ID][m] : "",
                            cq->after.ts_ns, cq->after.id) < 0)
                    l = m + 1;
                else
                    h = m;
            }
        }
        *hia = l;
    }
    return 0;
}

/* ---- parallel scan ---------------------------------------------------- */

enum qmode { QM_SEARCH, QM_COUNT, QM_HIST, QM_TOP };

struct hit {
    int64_t ts;
    const char *id;
    struct lh_event ev;
};

struct smap_ent {
    const char *key;
    uint64_t count;
};

struct smap {
    struct smap_ent *v;
    size_t cap, n;
};

static int smap_add(struct smap *m, struct lh_arena *a, const char *key, uint64_t add)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        struct smap_ent *nv = calloc(ncap, sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->v[i].key)
                continue;
            size_t j = (size_t)lhs_hash(m->v[i].key, strlen(m->v[i].key)) & (ncap - 1);
            while (nv[j].key)
                j = (j + 1) & (ncap - 1);
            nv[j] = m->v[i];
        }
        free(m->v);
        m->v = nv;
        m->cap = ncap;
    }
    size_t j = (size_t)lhs_hash(key, strlen(key)) & (m->cap - 1);
    while (m->v[j].key) {
        if (strcmp(m->v[j].key, key) == 0) {
            m->v[j].count += add;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (!(m->v[j].key = lh_arena_strdup(a, key)))
        return LH_ENOMEM;
    m->v[j].count = add;
    m->n++;
    return 0;
}

struct worker {
    struct job *job;
    pthread_t th;
    int started;
    int rc;
    struct lh_err err;
    uint64_t count, scanned, corrupt;
    /* search */
    struct hit *heap;
    size_t nheap;
    struct lh_arena arena;
    /* hist */
    uint64_t *buckets;
    /* top */
    struct smap top;
    uint64_t missing;
    void *dctx;             /* ZSTD_DCtx reused across blocks */
};

struct job {
    const struct cq *cq;
    enum qmode mode;
    const struct lhs_block **blocks;
    size_t nblocks;
    size_t next;            /* atomic */
    size_t k;               /* heap capacity (search) */
    int64_t first_ns, bucket_ns;
    size_t nbuckets;
    const char *field;
    struct cpred topf;      /* field of top */
    uint64_t counted;       /* atomic: matches counted so far (search, total_cap) */
};

/* Search: whether every match is still counted (want_total and the count
 * below total_cap); else scanning stops as soon as the page is known. */
static int counting(const struct job *j)
{
    const struct cq *cq = j->cq;
    return cq->want_total &&
           (!cq->total_cap || __atomic_load_n(&j->counted, __ATOMIC_RELAXED) < cq->total_cap);
}

static int hit_less(const struct hit *a, const struct hit *b)
{
    return key_cmp(a->ts, a->id, b->ts, b->id) < 0;
}

static void heap_down(struct hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && hit_less(&h[l], &h[m]))
            m = l;
        if (r < n && hit_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(struct hit *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hit_less(&h[i], &h[p]))
            return;
        struct hit t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int fast_countable(const struct cq *cq, const struct lhs_block *b, int *level_only)
{
    if (cq->nterms || b->min_ts < cq->start || b->max_ts >= cq->end)
        return 0;
    *level_only = 0;
    for (size_t i = 0; i < cq->npreds; i++) {
        if (cq->preds[i].kind != FK_LEVEL)
            return 0;
        *level_only = 1;
    }
    return 1;
}

static uint64_t fast_count(const struct cq *cq, const struct lhs_block *b, int level_only)
{
    if (!level_only)
        return b->nrows;
    uint64_t n = 0;
    for (int l = 0; l < LH_LEVEL_COUNT; l++) {
        int ok = 1;
        for (size_t i = 0; i < cq->npreds; i++)
            ok &= cq->preds[i].lvl_ok[l];
        if (ok)
            n += b->m.level_counts[l];
    }
    return n;
}

static int top_value(const struct job *j, struct lhs_bdec *d, uint32_t i, char *buf,
                     const char **out)
{
    const struct cpred *f = &j->topf;
    switch (f->kind) {
    case FK_LEVEL: *out = lhs_level_name(d->level[i]); return 0;
    case FK_TS: snprintf(buf, 24, "%lld", (long long)d->ts[i]); *out = buf; return 0;
    case FK_RECV:
        if (!d->recv[i]) {
            *out = NULL;
            return 0;
        }
        snprintf(buf, 24, "%lld", (long long)d->recv[i]);
        *out = buf;
        return 0;
    case FK_META: *out = lhs_bdec_meta_get(d, i, f->key); return 0;
    default:
        *out = f->col == LHS_C_RAW ? d->raw[i] : d->str[f->col][i];
        return 0;
    }
}

static int top_load(const struct job *j, struct lhs_bdec *d)
{
    const struct cpred *f = &j->topf;
    switch (f->kind) {
    case FK_LEVEL: return lhs_bdec_load(d, LHS_C_LEVEL);
    case FK_TS: return lhs_bdec_load(d, LHS_C_TS);
    case FK_RECV: return lhs_bdec_load(d, LHS_C_RECV);
    case FK_META: return lhs_bdec_load(d, LHS_C_META);
    default: return f->col == LHS_C_RAW ? lhs_bdec_raw(d) : lhs_bdec_load(d, f->col);
    }
}

static int scan_block(struct worker *w, const struct lhs_block *b, uint8_t **maskp,
                      uint8_t **scratchp, size_t *mcap)
{
    struct job *j = w->job;
    const struct cq *cq = j->cq;
    int rc = 0;
    int lo_only;
    if (!lhs_block_body_ok((struct lhs_block *)b)) {
        lh_error("store: tenant %s: block at offset %llu skipped: body checksum mismatch",
                 cq->tenant, (unsigned long long)b->off);
        w->corrupt++;
        return 0;
    }
    if (j->mode == QM_COUNT && fast_countable(cq, b, &lo_only)) {
        w->count += fast_count(cq, b, lo_only);
        return 0;
    }
    if (j->mode == QM_HIST && !cq->npreds && !cq->nterms && b->min_ts >= cq->start &&
        b->max_ts < cq->end) {
        size_t b0 = (size_t)((b->min_ts - j->first_ns) / j->bucket_ns);
        size_t b1 = (size_t)((b->max_ts - j->first_ns) / j->bucket_ns);
        if (b0 == b1 && b0 < j->nbuckets) {
            w->buckets[b0] += b->nrows;
            return 0;
        }
    }
    if (j->mode == QM_TOP && j->topf.kind == FK_LEVEL) {
        if (fast_countable(cq, b, &lo_only)) {
            for (int l = 0; l < LH_LEVEL_COUNT; l++) {
                int ok = 1;
                for (size_t i = 0; i < cq->npreds; i++)
                    ok &= cq->preds[i].lvl_ok[l];
                if (ok && b->m.level_counts[l] &&
                    (rc = smap_add(&w->top, &w->arena, lhs_level_name(l),
                                   b->m.level_counts[l])) < 0)
                    return rc;
            }
            return 0;
        }
    }
    if (b->nrows > *mcap) {
        uint8_t *nm = realloc(*maskp, b->nrows), *ns = realloc(*scratchp, b->nrows);
        if (nm)
            *maskp = nm;
        if (ns)
            *scratchp = ns;
        if (!nm || !ns)
            return LH_ENOMEM;
        *mcap = b->nrows;
    }
    uint8_t *mask = *maskp;
    struct qblk qb;
    memset(&qb, 0, sizeof(qb));
    lhs_bdec_init(&qb.d, b);
    qb.d.dctx = w->dctx;    /* reused across blocks */
    w->scanned++;
    uint32_t lo, hi, hia;
    if ((rc = row_range(cq, &qb.d, &lo, &hi, &hia)) < 0)
        goto out;
    int count_all = j->mode == QM_SEARCH && counting(j);
    if (j->mode == QM_SEARCH && !count_all)
        hi = hia;
    if (lo >= hi)
        goto out;
    if ((rc = eval_block(cq, &qb, mask, lo, hi, *scratchp)) < 0)
        goto out;
    switch (j->mode) {
    case QM_COUNT:
        for (uint32_t i = lo; i < hi; i++)
            w->count += mask[i];
        break;
    case QM_HIST:
        for (uint32_t i = lo; i < hi; i++)
            if (mask[i]) {
                size_t bk = (size_t)((qb.d.ts[i] - j->first_ns) / j->bucket_ns);
                if (bk < j->nbuckets)
                    w->buckets[bk]++;
            }
        break;
    case QM_TOP: {
        if ((rc = top_load(j, &qb.d)) < 0)
            goto out;
        const struct lhs_coldir *cd = j->topf.kind == FK_COL ? &b->m.col[j->topf.col] : NULL;
        if (cd && cd->enc == LHS_ENC_DICT) {
            uint64_t *cnt = calloc((size_t)cd->dict_n + 1, sizeof(*cnt));
            if (!cnt) {
                rc = LH_ENOMEM;
                goto out;
            }
            for (uint32_t i = lo; i < hi; i++)
                if (mask[i])
                    cnt[qb.d.codes[j->topf.col][i]]++;
            w->missing += cnt[0];
            for (uint32_t e = 1; e <= cd->dict_n && rc == 0; e++)
                if (cnt[e])
                    rc = smap_add(&w->top, &w->arena, cd->dict[e], cnt[e]);
            free(cnt);
            break;
        }
        char buf[24];
        for (uint32_t i = lo; i < hi && rc == 0; i++) {
            if (!mask[i])
                continue;
            const char *v;
            top_value(j, &qb.d, i, buf, &v);
            if (!v)
                w->missing++;
            else
                rc = smap_add(&w->top, &w->arena, v, 1);
        }
        break;
    }
    case QM_SEARCH: {
        if ((rc = lhs_bdec_load(&qb.d, LHS_C_ID)) < 0)
            goto out;
        const char *const *ids = qb.d.str[LHS_C_ID];
        uint64_t matched = 0;
        for (uint32_t i = hi; i-- > lo;) {
            if (!mask[i])
                continue;
            matched++;
            if (i >= hia)
                continue;
            const char *id = ids[i] ? ids[i] : "";
            if (w->nheap == j->k && key_cmp(qb.d.ts[i], id, w->heap[0].ts, w->heap[0].id) <= 0) {
                if (!count_all)
                    break;   /* every earlier row is smaller still */
                continue;
            }
            struct hit h;
            if ((rc = lhs_bdec_event(&qb.d, i, cq->tenant, &w->arena, &h.ev)) < 0)
                goto out;
            h.ts = h.ev.ts_ns;
            h.id = h.ev.id ? h.ev.id : "";
            if (w->nheap < j->k) {
                w->heap[w->nheap] = h;
                heap_up(w->heap, w->nheap++);
            } else {
                w->heap[0] = h;
                heap_down(w->heap, w->nheap, 0);
            }
        }
        w->count += matched;
        if (cq->total_cap)
            __atomic_fetch_add(&j->counted, matched, __ATOMIC_RELAXED);
        break;
    }
    }
out:
    if (rc == LH_ECORRUPT || qb.d.corrupt) {
        lh_error("store: tenant %s: block at offset %llu skipped: checksum or format error",
                 cq->tenant, (unsigned long long)b->off);
        w->corrupt++;
        rc = 0;
    }
    w->dctx = qb.d.dctx;
    qb.d.dctx = NULL;
    qblk_free(&qb);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct job *j = w->job;
    uint8_t *mask = NULL, *scratch = NULL;
    size_t mcap = 0;
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->nblocks)
            break;
        const struct lhs_block *b = j->blocks[i];
        if (j->cq->deadline && lh_time_mono_ns() > j->cq->deadline) {
            w->rc = lh_err_set(&w->err, LH_ETIMEDOUT, "store: query: time limit passed after "
                               "%zu of %zu blocks", i, j->nblocks);
            __atomic_store_n(&j->next, j->nblocks, __ATOMIC_RELAXED);
            break;
        }
        if (j->mode == QM_SEARCH) {
            int count_all = counting(j);
            if (!count_all && w->nheap == j->k && b->max_ts < w->heap[0].ts)
                break;   /* blocks come by max_ts desc: nothing later can enter */
            if (j->cq->has_after && !count_all && b->min_ts > j->cq->after.ts_ns)
                continue;
        }
        if (!block_may_match(j->cq, b))
            continue;
        int rc = scan_block(w, b, &mask, &scratch, &mcap);
        if (rc < 0) {
            w->rc = rc;
            lh_err_set(&w->err, rc, "store: query: %s", lh_errcode_name(rc));
            __atomic_store_n(&j->next, j->nblocks, __ATOMIC_RELAXED);
            break;
        }
    }
    free(mask);
    free(scratch);
    return NULL;
}

static int blk_maxts_desc(const void *a, const void *b)
{
    const struct lhs_block *x = *(const struct lhs_block *const *)a;
    const struct lhs_block *y = *(const struct lhs_block *const *)b;
    if (x->max_ts != y->max_ts)
        return x->max_ts > y->max_ts ? -1 : 1;
    return x->min_ts > y->min_ts ? -1 : x->min_ts < y->min_ts;
}

/* Runs a job over the tenant's blocks; workers[] has s->cfg.threads entries
 * that the caller frees with workers_free. */
static int run_job(struct lh_store *s, struct job *j, struct worker **wout, size_t *nw,
                   uint64_t *blocks_total, struct lh_err *err)
{
    struct lhs_snap snap;
    int rc = lhs_catalog_snapshot(s, j->cq->tenant, j->cq->start, j->cq->end, &snap, err);
    if (rc < 0)
        return rc;
    if (blocks_total)
        *blocks_total = snap.nblocks;
    qsort(snap.blocks, snap.nblocks, sizeof(*snap.blocks), blk_maxts_desc);
    j->blocks = snap.blocks;
    j->nblocks = j->cq->empty ? 0 : snap.nblocks;
    size_t nt = (size_t)s->cfg.threads;
    if (nt > j->nblocks)
        nt = j->nblocks ? j->nblocks : 1;
    if (j->mode == QM_SEARCH) {   /* the heap never needs more than every row */
        uint64_t rows = 0;
        for (size_t i = 0; i < j->nblocks; i++)
            rows += j->blocks[i]->nrows;
        if (j->k > rows + 1)
            j->k = (size_t)rows + 1;
    }
    struct worker *w = calloc(nt, sizeof(*w));
    if (!w) {
        lhs_snap_free(&snap);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nt; i++) {
        w[i].job = j;
        if (j->mode == QM_SEARCH && !(w[i].heap = calloc(j->k, sizeof(*w[i].heap))))
            rc = LH_ENOMEM;
        if (j->mode == QM_HIST && !(w[i].buckets = calloc(j->nbuckets, sizeof(uint64_t))))
            rc = LH_ENOMEM;
    }
    if (rc == 0) {
        for (size_t i = 1; i < nt; i++)
            w[i].started = pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0;
        worker_main(&w[0]);
        for (size_t i = 1; i < nt; i++)
            if (w[i].started)
                pthread_join(w[i].th, NULL);
        for (size_t i = 0; i < nt && rc == 0; i++)
            if (w[i].rc < 0) {
                rc = w[i].rc;
                if (err)
                    *err = w[i].err;
            }
    } else {
        lh_err_set(err, rc, "out of memory");
    }
    lhs_snap_free(&snap);
    *wout = w;
    *nw = nt;
    return rc;
}

static void workers_free(struct worker *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++) {
        free(w[i].heap);
        free(w[i].buckets);
        free(w[i].top.v);
        ZSTD_freeDCtx(w[i].dctx);
        lh_arena_free(&w[i].arena);
    }
    free(w);
}

/* ---- public operations ------------------------------------------------ */

static int hit_desc(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    return -key_cmp(x->ts, x->id, y->ts, y->id);
}

static int copy_event(struct lh_arena *a, const struct lh_event *src, struct lh_event *dst)
{
    *dst = *src;
    const char **f[] = { &dst->id, &dst->tenant, &dst->service, &dst->host, &dst->trace_id,
                         &dst->span_id, &dst->user_id, &dst->message, &dst->stream,
                         &dst->container_id, &dst->k8s_namespace, &dst->k8s_pod,
                         &dst->k8s_container, &dst->region, &dst->file, &dst->raw };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (*f[i] && !(*f[i] = lh_arena_strdup(a, *f[i])))
            return LH_ENOMEM;
    if (src->nmeta) {
        dst->meta = lh_arena_alloc(a, src->nmeta * sizeof(*dst->meta));
        if (!dst->meta)
            return LH_ENOMEM;
        for (size_t i = 0; i < src->nmeta; i++) {
            dst->meta[i].key = lh_arena_strdup(a, src->meta[i].key);
            dst->meta[i].value = lh_arena_strdup(a, src->meta[i].value);
            if (!dst->meta[i].key || !dst->meta[i].value)
                return LH_ENOMEM;
        }
    }
    return 0;
}

int lh_store_search(struct lh_store *s, const struct lh_store_query *q,
                    struct lh_store_result **out, struct lh_err *err)
{
    struct cq cq;
    int rc = cq_compile(&cq, q, err);
    if (rc < 0) {
        cq_free(&cq);
        return rc;
    }
    struct lh_store_result *r = calloc(1, sizeof(*r));
    if (!r) {
        cq_free(&cq);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    struct job j = { .cq = &cq, .mode = QM_SEARCH, .k = cq.limit + 1 };
    struct worker *w = NULL;
    size_t nw = 0;
    rc = run_job(s, &j, &w, &nw, &r->blocks_total, err);
    struct hit *all = NULL;
    size_t nall = 0;
    if (rc == 0) {
        for (size_t i = 0; i < nw; i++) {
            nall += w[i].nheap;
            r->total += w[i].count;
            r->blocks_scanned += w[i].scanned;
            r->blocks_corrupt += w[i].corrupt;
        }
        all = malloc((nall ? nall : 1) * sizeof(*all));
        if (!all)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < nw; i++)
            for (size_t h = 0; h < w[i].nheap; h++)
                all[k++] = w[i].heap[h];
        qsort(all, nall, sizeof(*all), hit_desc);
        size_t n = nall < cq.limit ? nall : cq.limit;
        r->more = nall > cq.limit;
        if (!q->want_total)
            r->total = 0;
        if (n) {
            r->events = lh_arena_alloc(&r->arena, n * sizeof(*r->events));
            if (!r->events)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n && rc == 0; i++)
            if (copy_event(&r->arena, &all[i].ev, &r->events[i]) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        if (rc == 0) {
            r->n = n;
            if (n) {
                r->next.ts_ns = r->events[n - 1].ts_ns;
                snprintf(r->next.id, sizeof(r->next.id), "%s",
                         r->events[n - 1].id ? r->events[n - 1].id : "");
            }
        }
    }
    free(all);
    workers_free(w, nw);
    cq_free(&cq);
    if (rc < 0) {
        lh_store_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void lh_store_result_free(struct lh_store_result *r)
{
    if (!r)
        return;
    lh_arena_free(&r->arena);
    free(r);
}

int lh_store_count(struct lh_store *s, const struct lh_store_query *q, uint64_t *out,
                   struct lh_err *err)
{
    struct cq cq;
    int rc = cq_compile(&cq, q, err);
    if (rc < 0) {
        cq_free(&cq);
        return rc;
    }
    cq.has_after = 0;
    struct job j = { .cq = &cq, .mode = QM_COUNT };
    struct worker *w = NULL;
    size_t nw = 0;
    rc = run_job(s, &j, &w, &nw, NULL, err);
    uint64_t n = 0;
    for (size_t i = 0; i < nw; i++)
        n += w[i].count;
    workers_free(w, nw);
    cq_free(&cq);
    if (rc == 0)
        *out = n;
    return rc;
}

int lh_store_histogram(struct lh_store *s, const struct lh_store_query *q, int64_t bucket_ns,
                       struct lh_store_histogram **out, struct lh_err *err)
{
    if (bucket_ns <= 0 || !q->end_ns || q->end_ns <= q->start_ns)
        return lh_err_set(err, LH_EINVAL, "histogram needs a bucket and a bounded time range");
    int64_t first = q->start_ns / bucket_ns * bucket_ns;
    if (first > q->start_ns)
        first -= bucket_ns;
    uint64_t nb = (uint64_t)((q->end_ns - 1 - first) / bucket_ns) + 1;
    if (nb > 100000)
        return lh_err_set(err, LH_EINVAL, "histogram: %llu buckets, at most 100000",
                          (unsigned long long)nb);
    struct cq cq;
    int rc = cq_compile(&cq, q, err);
    if (rc < 0) {
        cq_free(&cq);
        return rc;
    }
    cq.has_after = 0;
    struct lh_store_histogram *h = calloc(1, sizeof(*h));
    uint64_t *counts = calloc(nb, sizeof(*counts));
    if (!h || !counts) {
        free(h);
        free(counts);
        cq_free(&cq);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    struct job j = { .cq = &cq, .mode = QM_HIST, .first_ns = first, .bucket_ns = bucket_ns,
                     .nbuckets = (size_t)nb };
    struct worker *w = NULL;
    size_t nw = 0;
    rc = run_job(s, &j, &w, &nw, NULL, err);
    for (size_t i = 0; i < nw && rc == 0; i++) {
        for (size_t k = 0; k < nb; k++)
            counts[k] += w[i].buckets[k];
        h->blocks_corrupt += w[i].corrupt;
    }
    workers_free(w, nw);
    cq_free(&cq);
    if (rc < 0) {
        free(counts);
        free(h);
        return rc;
    }
    h->first_ns = first;
    h->bucket_ns = bucket_ns;
    h->counts = counts;
    h->n = (size_t)nb;
    *out = h;
    return 0;
}

void lh_store_histogram_free(struct lh_store_histogram *h)
{
    if (!h)
        return;
    free(h->counts);
    free(h);
}

static int top_cmp(const void *a, const void *b)
{
    const struct lh_store_top_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->value, y->value);
}

int lh_store_top(struct lh_store *s, const struct lh_store_query *q, const char *field,
                 size_t n, struct lh_store_top **out, struct lh_err *err)
{
    struct cq cq;
    int rc = cq_compile(&cq, q, err);
    if (rc < 0) {
        cq_free(&cq);
        return rc;
    }
    cq.has_after = 0;
    struct job j = { .cq = &cq, .mode = QM_TOP, .field = field };
    struct lh_store_pred fp = { .field = field, .op = LH_STORE_EXISTS };
    if ((rc = compile_pred(&cq, &fp, &j.topf, err)) < 0) {
        cq_free(&cq);
        return rc;
    }
    struct lh_store_top *t = calloc(1, sizeof(*t));
    if (!t) {
        cq_free(&cq);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    struct worker *w = NULL;
    size_t nw = 0;
    rc = run_job(s, &j, &w, &nw, NULL, err);
    struct smap all = { 0 };
    for (size_t i = 0; i < nw && rc == 0; i++) {
        t->missing += w[i].missing;
        t->blocks_corrupt += w[i].corrupt;
        for (size_t k = 0; k < w[i].top.cap && rc == 0; k++)
            if (w[i].top.v[k].key &&
                smap_add(&all, &t->arena, w[i].top.v[k].key, w[i].top.v[k].count) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        t->distinct = all.n;
        t->entries = lh_arena_alloc(&t->arena, (all.n ? all.n : 1) * sizeof(*t->entries));
        if (!t->entries)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < all.cap; i++)
            if (all.v[i].key) {
                t->entries[k].value = all.v[i].key;
                t->entries[k++].count = all.v[i].count;
            }
        qsort(t->entries, k, sizeof(*t->entries), top_cmp);
        t->n = n && n < k ? n : k;
    }
    free(all.v);
    workers_free(w, nw);
    cq_free(&cq);
    if (rc < 0) {
        lh_store_top_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void lh_store_top_free(struct lh_store_top *t)
{
    if (!t)
        return;
    lh_arena_free(&t->arena);
    free(t);
}
