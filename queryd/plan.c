/* plan.c - cutting a time range over the tiers and running queries on the
 * parts (see plan.h). */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

size_t lh_plan(const struct lh_tier *tiers, size_t ntiers, int64_t start_ns, int64_t end_ns,
               int64_t now_ns, struct lh_plan_part *parts)
{
    size_t n = 0;
    int64_t upper = 0;   /* 0: open (the future) */
    for (size_t i = 0; i < ntiers; i++) {
        int64_t lower = tiers[i].max_age_ns ? now_ns - tiers[i].max_age_ns : INT64_MIN;
        /* this tier: [lower, upper) */
        int64_t s = start_ns > lower ? start_ns : lower;
        int64_t e = end_ns;
        if (upper && (!e || e > upper))
            e = upper;
        if (!e || s < e)
            parts[n++] = (struct lh_plan_part){ .tier = i, .start_ns = s, .end_ns = e };
        if (!tiers[i].max_age_ns)
            break;
        upper = lower;
    }
    return n;
}

static void bquery(struct lh_bquery *bq, const struct lh_plan_part *p, const char *tenant,
                   const struct lh_query *q, int64_t deadline_ns)
{
    memset(bq, 0, sizeof(*bq));
    bq->tenant = tenant;
    bq->q = q;
    bq->start_ns = p->start_ns;
    bq->end_ns = p->end_ns;
    bq->deadline_ns = deadline_ns;
    bq->progress = q->progress;
}

void lh_plan_page_free(struct lh_plan_page *page)
{
    for (size_t i = 0; i < page->nresults; i++)
        lh_bresult_free(&page->results[i]);
    free(page->hits);
    memset(page, 0, sizeof(*page));
}

int lh_plan_search(const struct lh_tier *tiers, const struct lh_plan_part *parts, size_t nparts,
                   const char *tenant, const struct lh_query *q, size_t limit,
                   const struct lh_store_pos *after, uint64_t total_cap, int64_t deadline_ns,
                   struct lh_plan_page *page, struct lh_err *err)
{
    memset(page, 0, sizeof(*page));
    page->hits = calloc(limit ? limit : 1, sizeof(*page->hits));
    if (!page->hits)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    for (size_t i = 0; i < nparts && i < LH_PLAN_MAX_TIERS; i++) {
        size_t want = limit - page->n;
        if (!want && !total_cap) {
            page->more = 1;   /* a later part may hold matches: the next page tells */
            break;
        }
        struct lh_bquery bq;
        bquery(&bq, &parts[i], tenant, q, deadline_ns);
        bq.limit = want ? want : 1;
        bq.after = after;
        if (total_cap)
            bq.total_cap = page->total < total_cap ? total_cap - page->total : 1;
        struct lh_bresult *r = &page->results[page->nresults];
        const struct lh_backend *b = tiers[parts[i].tier].backend;
        int rc = b->ops->search((struct lh_backend *)b, &bq, r, err);
        if (rc < 0) {
            lh_plan_page_free(page);
            return rc;
        }
        page->nresults++;
        page->tiers_used |= 1u << parts[i].tier;
        page->total += r->total;
        page->total_lower_bound |= r->total_lower_bound;
        size_t take = r->n < want ? r->n : want;
        for (size_t k = 0; k < take; k++)
            page->hits[page->n++] = &r->events[k];
        if (r->n > take || r->more)
            page->more = 1;
    }
    return 0;
}

int lh_plan_histogram(const struct lh_tier *tiers, const struct lh_plan_part *parts,
                      size_t nparts, const char *tenant, const struct lh_query *q,
                      int64_t first_ns, int64_t bucket_ns, size_t n, uint64_t *counts,
                      int64_t deadline_ns, struct lh_err *err)
{
    for (size_t i = 0; i < nparts; i++) {
        struct lh_bquery bq;
        bquery(&bq, &parts[i], tenant, q, deadline_ns);
        if (!bq.end_ns)
            bq.end_ns = first_ns + (int64_t)n * bucket_ns;
        const struct lh_backend *b = tiers[parts[i].tier].backend;
        int rc = b->ops->histogram((struct lh_backend *)b, &bq, first_ns, bucket_ns, n, counts,
                                   err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct lh_btop_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->value, y->value);
}

int lh_plan_top(const struct lh_tier *tiers, const struct lh_plan_part *parts, size_t nparts,
                const char *tenant, const struct lh_query *q, const struct lh_qtop *top,
                int64_t deadline_ns, struct lh_btop *out, struct lh_err *err)
{
    memset(out, 0, sizeof(*out));
    struct lh_btop_entry *all = NULL;
    size_t nall = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < nparts && rc == 0; i++) {
        struct lh_bquery bq;
        bquery(&bq, &parts[i], tenant, q, deadline_ns);
        struct lh_btop t;
        const struct lh_backend *b = tiers[parts[i].tier].backend;
        rc = b->ops->top((struct lh_backend *)b, &bq, top, &t, err);
        if (rc < 0)
            break;
        out->other += t.other;
        out->missing += t.missing;
        for (size_t k = 0; k < t.n && rc == 0; k++) {
            size_t j = 0;
            while (j < nall && strcmp(all[j].value, t.entries[k].value) != 0)
                j++;
            if (j < nall) {
                all[j].count += t.entries[k].count;
                continue;
            }
            if (nall == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                struct lh_btop_entry *nv = realloc(all, ncap * sizeof(*nv));
                if (!nv) {
                    rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                    break;
                }
                all = nv;
                cap = ncap;
            }
            all[nall].value = lh_arena_strdup(&out->arena, t.entries[k].value);
            all[nall].count = t.entries[k].count;
            if (!all[nall].value)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            else
                nall++;
        }
        lh_btop_free(&t);
    }
    if (rc == 0 && nall) {
        qsort(all, nall, sizeof(*all), entry_cmp);
        size_t keep = nall < top->size ? nall : top->size;
        out->entries = lh_arena_alloc(&out->arena, keep * sizeof(*out->entries));
        if (!out->entries) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        } else {
            memcpy(out->entries, all, keep * sizeof(*all));
            out->n = keep;
            for (size_t k = keep; k < nall; k++)
                out->other += all[k].count;
        }
    }
    free(all);
    if (rc < 0)
        lh_btop_free(out);
    return rc;
}
