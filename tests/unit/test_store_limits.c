/* test_store_limits.c - the store's per-query limits used by queryd:
 * total_cap (stop counting matches past a cap) and deadline_ns (give up
 * with LH_ETIMEDOUT). */
#include "../lh_test.h"
#include "store_testlib.h"

#include "lh/store.h"
#include "lh/time.h"

/* n events of tenant "acme" over one hour, in blocks of 200. */
static struct lh_store *make_store(struct lh_arena *a, size_t n)
{
    struct lh_store_config cfg = { .dir = (char *)lh_test_tmpdir(), .block_events = 200 };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0)
        return NULL;
    struct tgen g = { 777, a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    struct lh_event *evs = lh_arena_alloc(a, n * sizeof(*evs));
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "acme", TBASE, 3600ll * 1000000000ll);
    if (lh_store_append(s, evs, n, NULL, &err) < 0) {
        lh_store_close(s);
        return NULL;
    }
    return s;
}

TEST(store_total_cap_stops_counting_and_keeps_the_page)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *s = make_store(&a, 20000);
    REQUIRE(s);
    struct lh_err err = { 0 };
    struct lh_store_query q = { .tenant = "acme", .limit = 50, .want_total = 1 };
    struct lh_store_result *full = NULL, *capped = NULL;
    REQUIRE_INT(lh_store_search(s, &q, &full, &err), ==, 0);
    CHECK_INT(full->total, ==, 20000);
    q.total_cap = 1000;
    REQUIRE_INT(lh_store_search(s, &q, &capped, &err), ==, 0);
    CHECK_INT(capped->total, >=, 1000);
    CHECK_INT(capped->total, <, 20000);     /* not every block was counted */
    CHECK_INT(capped->blocks_scanned, <, full->blocks_scanned);
    REQUIRE_INT(capped->n, ==, full->n);
    for (size_t i = 0; i < full->n; i++)
        CHECK_STR(capped->events[i].id, full->events[i].id);
    CHECK_INT(capped->more, ==, 1);
    lh_store_result_free(capped);

    /* A cap above the number of matches keeps the count exact. */
    q.total_cap = 20001;
    REQUIRE_INT(lh_store_search(s, &q, &capped, &err), ==, 0);
    CHECK_INT(capped->total, ==, 20000);
    lh_store_result_free(capped);

    /* With a predicate, and from a position in the middle. */
    struct lh_store_pred p = { .field = "level", .op = LH_STORE_EQ, .value = "ERROR" };
    q.preds = &p;
    q.npreds = 1;
    q.total_cap = 0;
    struct lh_store_pos mid = full->next;
    q.after = &mid;
    lh_store_result_free(full);
    full = NULL;
    REQUIRE_INT(lh_store_search(s, &q, &full, &err), ==, 0);
    q.total_cap = 300;
    REQUIRE_INT(lh_store_search(s, &q, &capped, &err), ==, 0);
    CHECK_INT(full->total, >, 2000);
    CHECK_INT(capped->total, >=, 300);
    CHECK_INT(capped->total, <, full->total);
    REQUIRE_INT(capped->n, ==, full->n);
    for (size_t i = 0; i < full->n; i++)
        CHECK_STR(capped->events[i].id, full->events[i].id);
    lh_store_result_free(capped);
    lh_store_result_free(full);
    lh_store_close(s);
    lh_arena_free(&a);
}

TEST(store_deadline_gives_up_with_etimedout)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *s = make_store(&a, 3000);
    REQUIRE(s);
    struct lh_err err = { 0 };
    struct lh_store_query q = { .tenant = "acme", .limit = 10, .want_total = 1,
                                .deadline_ns = lh_time_mono_ns() - 1 };
    struct lh_store_result *r = NULL;
    CHECK_INT(lh_store_search(s, &q, &r, &err), ==, LH_ETIMEDOUT);
    CHECK(r == NULL);
    CHECK_CONTAINS(err.msg, "time limit");
    uint64_t n = 0;
    CHECK_INT(lh_store_count(s, &q, &n, &err), ==, LH_ETIMEDOUT);
    struct lh_store_histogram *h = NULL;
    q.start_ns = TBASE;
    q.end_ns = TBASE + 3600ll * 1000000000ll;
    CHECK_INT(lh_store_histogram(s, &q, 60ll * 1000000000ll, &h, &err), ==, LH_ETIMEDOUT);
    CHECK(h == NULL);
    struct lh_store_top *t = NULL;
    CHECK_INT(lh_store_top(s, &q, "service", 5, &t, &err), ==, LH_ETIMEDOUT);
    CHECK(t == NULL);

    /* A deadline in the future changes nothing. */
    q.deadline_ns = lh_time_mono_ns() + 60 * LH_NS_PER_SEC;
    REQUIRE_INT(lh_store_search(s, &q, &r, &err), ==, 0);
    CHECK_INT(r->total, ==, 3000);
    lh_store_result_free(r);
    CHECK_INT(lh_store_count(s, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 3000);
    lh_store_close(s);
    lh_arena_free(&a);
}
