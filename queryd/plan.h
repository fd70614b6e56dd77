/* plan.h - which backend answers which part of a query's time range, and
 * running a search or an aggregation over those parts.
 *
 * Tiers are configured newest first, each with the age its data reaches:
 * tier 0 holds [now - max_age_0, future), tier 1 [now - max_age_1,
 * now - max_age_0), ...; a max_age of 0 means "everything older" and ends
 * the list. A query's range is cut along these boundaries into parts,
 * newest first; a search fills its page from the first part on, resuming
 * after the cursor position in each (the parts are ordered in time, so the
 * order of hits across parts is the global newest-first order).
 *
 * Functions here block (they call the backends) and run on worker threads;
 * tiers are read only. */
#ifndef LH_QUERYD_PLAN_H
#define LH_QUERYD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct lh_tier {
    const char *name;            /* "store", "opensearch" (answers' `tiers`) */
    struct lh_backend *backend;
    int64_t max_age_ns;          /* 0: unlimited (the last tier) */
};

struct lh_plan_part {
    size_t tier;
    int64_t start_ns, end_ns;    /* end 0: open */
};

#define LH_PLAN_MAX_TIERS 8

/* Cuts [start, end) (end 0: open) along the tier boundaries at now_ns.
 * Fills parts (room for ntiers) newest first; returns how many (0 when the
 * range lies outside every tier). */
size_t lh_plan(const struct lh_tier *tiers, size_t ntiers, int64_t start_ns, int64_t end_ns,
               int64_t now_ns, struct lh_plan_part *parts);

/* A search page over the parts. */
struct lh_plan_page {
    const struct lh_event **hits;   /* newest first; point into results[] */
    size_t n;
    int more;
    uint64_t total;
    int total_lower_bound;
    struct lh_bresult results[LH_PLAN_MAX_TIERS];
    size_t nresults;
    unsigned tiers_used;            /* bit per tier that was asked */
};

/* Runs the search: q's full text and filters, limit hits after `after`,
 * counting matches up to total_cap. Returns 0 (page filled; free it with
 * lh_plan_page_free) or a backend error (err set, page freed). */
int lh_plan_search(const struct lh_tier *tiers, const struct lh_plan_part *parts, size_t nparts,
                   const char *tenant, const struct lh_query *q, size_t limit,
                   const struct lh_store_pos *after, uint64_t total_cap, int64_t deadline_ns,
                   struct lh_plan_page *page, struct lh_err *err);
void lh_plan_page_free(struct lh_plan_page *page);

/* Histogram buckets [first_ns + i * bucket_ns) for i < n, summed over the
 * parts into counts (zeroed by the caller). */
int lh_plan_histogram(const struct lh_tier *tiers, const struct lh_plan_part *parts,
                      size_t nparts, const char *tenant, const struct lh_query *q,
                      int64_t first_ns, int64_t bucket_ns, size_t n, uint64_t *counts,
                      int64_t deadline_ns, struct lh_err *err);

/* Top values of top->field over the parts, merged (count desc, value asc),
 * cut to top->size with the rest in other. */
int lh_plan_top(const struct lh_tier *tiers, const struct lh_plan_part *parts, size_t nparts,
                const char *tenant, const struct lh_query *q, const struct lh_qtop *top,
                int64_t deadline_ns, struct lh_btop *out, struct lh_err *err);

#endif
