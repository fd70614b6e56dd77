/* test_store_time_extremes.c - the store keeps events whose timestamps lie
 * anywhere in int64 (the collector accepts epoch numbers up to the int64
 * ends): a block's timestamp deltas and receive-time differences beyond
 * int64 are encoded without overflow (UBSan runs this) and read back
 * exactly, for every event of the tenant. */
#include "../lh_test.h"
#include "store_testlib.h"

#include "lh/store.h"

TEST(store_timestamps_at_the_int64_ends_round_trip)
{
    static const int64_t ts[] = { INT64_MIN + 1, -8170651660220000000LL, -1, 0,
                                  1795324259162942316LL, INT64_MAX - 1 };
    static const int64_t recv[] = { 1795324259162942316LL, 1795324259162942316LL, INT64_MAX,
                                    0, INT64_MIN + 7, 1795324259162942316LL };
    enum { N = sizeof(ts) / sizeof(ts[0]) };
    struct lh_store_config cfg = { .dir = (char *)lh_test_tmpdir(), .block_events = 64 };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct lh_event evs[N];
    char ids[N][16];
    for (int i = 0; i < N; i++) {
        memset(&evs[i], 0, sizeof(evs[i]));
        snprintf(ids[i], sizeof(ids[i]), "ext-%d", i);
        evs[i].id = ids[i];
        evs[i].tenant = "acme";
        evs[i].ts_ns = ts[i];
        evs[i].received_ns = recv[i];
        evs[i].message = "far away in time";
        evs[i].level = LH_LEVEL_INFO;
    }
    /* all in one append, and again one by one (blocks of one event) */
    REQUIRE_INT(lh_store_append(s, evs, N, NULL, &err), ==, 0);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "one-%d", i);
        struct lh_event one = evs[i];
        one.id = id;
        REQUIRE_INT(lh_store_append(s, &one, 1, NULL, &err), ==, 0);
    }
    struct lh_store_query q = { .tenant = "acme", .start_ns = INT64_MIN, .limit = 100,
                                .want_total = 1 };
    struct lh_store_result *r = NULL;
    REQUIRE_INT(lh_store_search(s, &q, &r, &err), ==, 0);
    CHECK_INT(r->total, ==, 2 * N);
    REQUIRE_INT(r->n, ==, 2 * N);
    int found = 0;
    for (size_t k = 0; k < r->n; k++) {
        const struct lh_event *ev = &r->events[k];
        int i = atoi(strchr(ev->id, '-') + 1);
        REQUIRE(i >= 0 && i < N);
        if (ev->ts_ns != ts[i] || ev->received_ns != recv[i])
            fprintf(stderr, "    %s: ts %lld recv %lld, want %lld %lld\n", ev->id,
                    (long long)ev->ts_ns, (long long)ev->received_ns, (long long)ts[i],
                    (long long)recv[i]);
        CHECK(ev->ts_ns == ts[i]);
        CHECK(ev->received_ns == recv[i]);
        found++;
        if (k > 0)   /* newest first */
            CHECK(r->events[k - 1].ts_ns >= ev->ts_ns);
    }
    CHECK_INT(found, ==, 2 * N);
    lh_store_result_free(r);
    lh_store_close(s);
}
