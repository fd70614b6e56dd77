/* backend_store.c - the embedded store as a queryd backend (see backend.h). */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

void lh_bresult_free(struct lh_bresult *r)
{
    if (!r)
        return;
    if (r->owner && r->free_owner)
        r->free_owner(r->owner);
    lh_arena_free(&r->arena);
    memset(r, 0, sizeof(*r));
}

void lh_btop_free(struct lh_btop *t)
{
    if (!t)
        return;
    lh_arena_free(&t->arena);
    memset(t, 0, sizeof(*t));
}

void lh_backend_destroy(struct lh_backend *b)
{
    if (b)
        b->ops->destroy(b);
}

enum lh_store_op lh_backend_store_op(const struct lh_qfilter *f)
{
    switch (f->op) {
    case LH_QOP_EQUALS: return LH_STORE_EQ;
    case LH_QOP_NOT_EQUALS: return LH_STORE_NE;
    case LH_QOP_IN: return LH_STORE_IN;
    case LH_QOP_CONTAINS: return LH_STORE_CONTAINS;
    case LH_QOP_PREFIX: return LH_STORE_PREFIX;
    case LH_QOP_EXISTS: return f->exists ? LH_STORE_EXISTS : LH_STORE_NOT_EXISTS;
    case LH_QOP_GT: return LH_STORE_GT;
    case LH_QOP_GTE: return LH_STORE_GE;
    case LH_QOP_LT: return LH_STORE_LT;
    case LH_QOP_LTE: return LH_STORE_LE;
    }
    return LH_STORE_EQ;
}

static const char *const no_values[1] = { NULL };

/* Builds the store query for bq; preds has room for bq->q->nfilters. */
static void to_store(const struct lh_bquery *bq, struct lh_store_pred *preds,
                     struct lh_store_query *sq)
{
    const struct lh_query *q = bq->q;
    memset(sq, 0, sizeof(*sq));
    sq->tenant = bq->tenant;
    sq->start_ns = bq->start_ns;
    sq->end_ns = bq->end_ns;
    sq->terms = q->terms;
    sq->nterms = q->nterms;
    sq->phrases = q->phrases;
    sq->nphrases = q->nphrases;
    for (size_t i = 0; i < q->nfilters; i++) {
        const struct lh_qfilter *f = &q->filters[i];
        preds[i] = (struct lh_store_pred){
            .field = f->field,
            .op = lh_backend_store_op(f),
            .value = f->value,
            .values = f->nvalues ? f->values : no_values,
            .nvalues = f->nvalues,
        };
    }
    sq->preds = preds;
    sq->npreds = q->nfilters;
    sq->limit = bq->limit;
    sq->after = bq->after;
    sq->want_total = bq->total_cap > 0;
    sq->total_cap = bq->total_cap;
    sq->deadline_ns = bq->deadline_ns;
}

static int with_preds(const struct lh_bquery *bq, struct lh_store_pred **preds,
                      struct lh_err *err)
{
    *preds = calloc(bq->q->nfilters + 1, sizeof(**preds));
    return *preds ? 0 : lh_err_set(err, LH_ENOMEM, "out of memory");
}

static void free_result(void *p) { lh_store_result_free(p); }

static int st_search(struct lh_backend *b, const struct lh_bquery *bq, struct lh_bresult *out,
                     struct lh_err *err)
{
    struct lh_store_pred *preds;
    int rc = with_preds(bq, &preds, err);
    if (rc < 0)
        return rc;
    struct lh_store_query sq;
    to_store(bq, preds, &sq);
    struct lh_store_result *r = NULL;
    rc = lh_store_search(b->ctx, &sq, &r, err);
    free(preds);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->events = r->events;
    out->n = r->n;
    out->more = r->more;
    out->total = r->total;
    out->total_lower_bound = bq->total_cap && r->total >= bq->total_cap;
    out->owner = r;
    out->free_owner = free_result;
    return 0;
}

static int st_histogram(struct lh_backend *b, const struct lh_bquery *bq, int64_t first_ns,
                        int64_t bucket_ns, size_t n, uint64_t *counts, struct lh_err *err)
{
    struct lh_store_pred *preds;
    int rc = with_preds(bq, &preds, err);
    if (rc < 0)
        return rc;
    struct lh_store_query sq;
    to_store(bq, preds, &sq);
    struct lh_store_histogram *h = NULL;
    rc = lh_store_histogram(b->ctx, &sq, bucket_ns, &h, err);
    free(preds);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < h->n; i++) {
        int64_t at = h->first_ns + (int64_t)i * h->bucket_ns;
        if (at < first_ns)
            continue;
        size_t k = (size_t)((at - first_ns) / bucket_ns);
        if (k < n)
            counts[k] += h->counts[i];
    }
    lh_store_histogram_free(h);
    return 0;
}

static int st_top(struct lh_backend *b, const struct lh_bquery *bq, const struct lh_qtop *top,
                  struct lh_btop *out, struct lh_err *err)
{
    struct lh_store_pred *preds;
    int rc = with_preds(bq, &preds, err);
    if (rc < 0)
        return rc;
    struct lh_store_query sq;
    to_store(bq, preds, &sq);
    struct lh_store_top *t = NULL;
    /* All values, so that `other` is exact. */
    rc = lh_store_top(b->ctx, &sq, top->field, 0, &t, err);
    free(preds);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    size_t keep = t->n < top->size ? t->n : top->size;
    out->entries = keep ? lh_arena_alloc(&out->arena, keep * sizeof(*out->entries)) : NULL;
    if (keep && !out->entries) {
        lh_store_top_free(t);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->n; i++) {
        if (i < keep) {
            out->entries[i].value = lh_arena_strdup(&out->arena, t->entries[i].value);
            out->entries[i].count = t->entries[i].count;
            if (!out->entries[i].value) {
                lh_store_top_free(t);
                lh_btop_free(out);
                return lh_err_set(err, LH_ENOMEM, "out of memory");
            }
        } else {
            out->other += t->entries[i].count;
        }
    }
    out->n = keep;
    out->missing = t->missing;
    lh_store_top_free(t);
    return 0;
}

static int st_ready(struct lh_backend *b, struct lh_err *err)
{
    (void)b;
    (void)err;
    return 0;
}

static void st_destroy(struct lh_backend *b)
{
    lh_store_close(b->ctx);
    free(b);
}

static const struct lh_backend_ops store_ops = {
    .name = "store",
    .search = st_search,
    .histogram = st_histogram,
    .top = st_top,
    .ready = st_ready,
    .destroy = st_destroy,
};

int lh_backend_store_open(const struct lh_store_config *cfg, struct lh_backend **out,
                          struct lh_err *err)
{
    struct lh_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    struct lh_store *s = NULL;
    int rc = lh_store_open(&s, cfg, LH_STORE_READ, err);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->ops = &store_ops;
    b->ctx = s;
    *out = b;
    return 0;
}
