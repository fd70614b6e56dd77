/* test_queryd_match.c - queries evaluated in memory (queryd/match.c, used
 * by the archive backend) agree with an independent brute-force reference
 * of the store's semantics (store_testlib.h) on random events. */
#include "../lh_test.h"
#include "../../queryd/match.h"
#include "store_testlib.h"

#include "lh/time.h"

static int parse(const char *query_obj, struct lh_query *q)
{
    struct lh_query_limits l;
    lh_query_limits_default(&l);
    struct lh_query_error e;
    int rc = lh_query_parse_object(query_obj, strlen(query_obj), "query", &l, TBASE, q, &e);
    if (rc)
        fprintf(stderr, "    %s\n", e.message);
    return rc;
}

TEST(queryd_match_agrees_with_reference)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct tgen g = { 31337, &a, 0, { 0 }, 0 };
    size_t n = 3000;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    tg_new_batch(&g);
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "acme", TBASE, TDAY / 4);
    static const char *const lvls[] = { "WARN", "ERROR", "FATAL" };
    static const char *const svcs[] = { "api", "db" };
    static const char *const t1[] = { "timeout" }, *const t2[] = { "payment", "failed" };
    static const char *const t3[] = { "naïve" }, *const p1[] = { "connect refused" };
    static const char *const t4[] = { "usr_7" };
    char ts[32];
    snprintf(ts, sizeof(ts), "%lld", (long long)(TBASE + TDAY / 8));
    struct lh_store_pred pr[] = {
        { "service", LH_STORE_EQ, "api", NULL, 0 },
        { "host", LH_STORE_NE, "host-1", NULL, 0 },
        { "service", LH_STORE_IN, NULL, svcs, 2 },
        { "level", LH_STORE_IN, NULL, lvls, 3 },
        { "host", LH_STORE_PREFIX, "web", NULL, 0 },
        { "message", LH_STORE_CONTAINS, "ment", NULL, 0 },
        { "trace_id", LH_STORE_EXISTS, NULL, NULL, 0 },
        { "metadata.k1", LH_STORE_NOT_EXISTS, NULL, NULL, 0 },
        { "metadata.duration_ms", LH_STORE_GT, "500", NULL, 0 },
        { "metadata.duration_ms", LH_STORE_LE, "99.5", NULL, 0 },
        { "timestamp", LH_STORE_GE, ts, NULL, 0 },
        { "k8s.namespace", LH_STORE_EQ, "prod", NULL, 0 },
    };
    char tsq[300];
    snprintf(tsq, sizeof(tsq), "{\"filters\":[{\"field\":\"timestamp\",\"operator\":\"GTE\","
             "\"value\":%s}]}", ts);
    struct {
        const char *q;
        struct lh_store_query ref;
    } cases[] = {
        { "timeout", { .terms = t1, .nterms = 1 } },
        { "PAYMENT Failed", { .terms = t2, .nterms = 2 } },
        { "naïve", { .terms = t3, .nterms = 1 } },
        { "usr_7", { .terms = t4, .nterms = 1 } },
        { "\"connect refused\"", { .phrases = p1, .nphrases = 1 } },
        { "{\"filters\":[{\"field\":\"service\",\"operator\":\"EQUALS\",\"value\":\"api\"}]}",
          { .preds = &pr[0], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"host\",\"operator\":\"NOT_EQUALS\",\"value\":\"host-1\"}]}",
          { .preds = &pr[1], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"service\",\"operator\":\"IN\",\"value\":[\"api\",\"db\"]}]}",
          { .preds = &pr[2], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"level\",\"operator\":\"GTE\",\"value\":\"warning\"}]}",
          { .preds = &pr[3], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"host\",\"operator\":\"PREFIX\",\"value\":\"web\"}]}",
          { .preds = &pr[4], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"message\",\"operator\":\"CONTAINS\",\"value\":\"ment\"}]}",
          { .preds = &pr[5], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"trace_id\",\"operator\":\"EXISTS\"}]}",
          { .preds = &pr[6], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"metadata.k1\",\"operator\":\"EXISTS\",\"value\":false}]}",
          { .preds = &pr[7], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"metadata.duration_ms\",\"operator\":\"GT\",\"value\":500}]}",
          { .preds = &pr[8], .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"metadata.duration_ms\",\"operator\":\"LTE\",\"value\":"
          "\"99.5\"}]}", { .preds = &pr[9], .npreds = 1 } },
        { tsq, { .preds = &pr[10], .npreds = 1 } },
        { "{\"full_text\":\"timeout\",\"filters\":[{\"field\":\"k8s.namespace\",\"operator\":"
          "\"EQUALS\",\"value\":\"prod\"}]}",
          { .terms = t1, .nterms = 1, .preds = &pr[11], .npreds = 1 } },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct lh_query q;
        REQUIRE_INT(parse(cases[c].q, &q), ==, 0);
        struct lh_store_query ref = cases[c].ref;
        ref.tenant = "acme";
        size_t agree = 0, matched = 0;
        for (size_t i = 0; i < n; i++) {
            int want = ref_match(&evs[i], &ref), got = lh_qmatch(&q, &evs[i]);
            agree += want == got;
            matched += got;
        }
        if (agree != n)
            fprintf(stderr, "    case %zu (%s): %zu of %zu agree\n", c, cases[c].q, agree, n);
        CHECK_INT(agree, ==, n);
        CHECK(matched > 0 && matched < n);   /* the case tells events apart */
        lh_query_free(&q);
    }
    lh_arena_free(&a);
}
