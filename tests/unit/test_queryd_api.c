/* test_queryd_api.c - queryd's HTTP API against a store in a temporary
 * directory: search answers checked against a brute-force reference,
 * pagination under concurrent appends, tenant isolation, aggregates, bad
 * requests, limits, live tail. */
#include "../lh_test.h"
#include "queryd_test_util.h"
#include "store_testlib.h"

#include <ctype.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lh/time.h"

#define TOKEN "acme-token-1"
#define GTOKEN "globex-token-1"

static const char *const base_yaml =
    "tenants:\n"
    "  - name: acme\n"
    "    tokens: [" TOKEN "]\n"
    "  - name: globex\n"
    "    tokens: [" GTOKEN "]\n"
    "cursor:\n"
    "  key: test-cursor-key-0123456789\n"
    "tiers:\n"
    "  - type: store\n"
    "    store:\n"
    "      dir: %s\n";

TEST(queryd_search_smoke)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    int64_t now = lh_time_now_ns();
    struct lh_event evs[3] = {
        qt_event(&a, "acme", "e1", now - 3 * LH_NS_PER_SEC, LH_LEVEL_ERROR, "payment-service",
                 "i-09ab7d6f5e", "Database transaction timeout during capture.",
                 "container_id=c_pay_88f9,region_hint=eu"),
        qt_event(&a, "acme", "e2", now - 2 * LH_NS_PER_SEC, LH_LEVEL_INFO, "payment-service",
                 "i-09ab7d6f5e", "all good", NULL),
        qt_event(&a, "globex", "g1", now - 1 * LH_NS_PER_SEC, LH_LEVEL_ERROR, "payment-service",
                 "h", "Database transaction timeout during capture.", NULL),
    };
    evs[0].trace_id = "tr_abc123";
    evs[0].user_id = "usr_456";
    evs[0].container_id = "c_pay_88f9";
    REQUIRE_INT(lh_store_append(w, evs, 3, NULL, NULL), ==, 0);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    int st;
    json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN,
                             "{\"query\":{\"full_text\":\"database transaction timeout\","
                             "\"filters\":[{\"field\":\"service\",\"operator\":\"EQUALS\","
                             "\"value\":\"payment-service\"},{\"field\":\"level\",\"operator\":"
                             "\"EQUALS\",\"value\":\"ERROR\"}]},\"pagination\":{\"limit\":100}}",
                             &st);
    CHECK_INT(st, ==, 200);
    REQUIRE(j);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, 1);
    CHECK_STR(json_string_value(json_object_get(j, "total_hits_relation")), "eq");
    CHECK(json_is_null(json_object_get(j, "next_cursor")));
    json_t *logs = json_object_get(j, "logs");
    REQUIRE_INT(json_array_size(logs), ==, 1);
    json_t *h = json_array_get(logs, 0);
    CHECK_STR(json_string_value(json_object_get(h, "id")), "e1");
    CHECK_STR(json_string_value(json_object_get(h, "level")), "ERROR");
    CHECK_STR(json_string_value(json_object_get(h, "service")), "payment-service");
    CHECK_STR(json_string_value(json_object_get(h, "trace_id")), "tr_abc123");
    CHECK_STR(json_string_value(json_object_get(h, "user_id")), "usr_456");
    CHECK_STR(json_string_value(json_object_get(h, "message")),
              "Database transaction timeout during capture.");
    json_t *md = json_object_get(h, "metadata");
    CHECK_STR(json_string_value(json_object_get(md, "host")), "i-09ab7d6f5e");
    CHECK_STR(json_string_value(json_object_get(md, "container_id")), "c_pay_88f9");
    CHECK_STR(json_string_value(json_object_get(md, "region_hint")), "eu");
    CHECK_INT(json_object_size(md), ==, 3);
    char ts[LH_TIME_RFC3339_SIZE];
    lh_time_format_rfc3339(now - 3 * LH_NS_PER_SEC, 9, ts, sizeof(ts));
    const char *got = json_string_value(json_object_get(h, "timestamp"));
    int64_t gts = 0;
    REQUIRE(got && lh_time_parse_rfc3339(got, strlen(got), &gts, NULL) == 0);
    CHECK_INT(gts, ==, now - 3 * LH_NS_PER_SEC);
    json_t *tiers = json_object_get(j, "tiers");
    CHECK_INT(json_array_size(tiers), ==, 1);
    CHECK_STR(json_string_value(json_array_get(tiers, 0)), "store");
    CHECK(json_is_integer(json_object_get(j, "took_ms")));
    json_decref(j);
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_store_close(w);
    lh_arena_free(&a);
}

/* ---- helpers ------------------------------------------------------------ */

/* n random events of tenant in [base, base + span) (ids unique per test). */
static struct lh_event *gen(struct lh_arena *a, struct tgen *g, const char *tenant, size_t n,
                            int64_t base, int64_t span)
{
    struct lh_event *evs = lh_arena_alloc(a, n * sizeof(*evs));
    tg_new_batch(g);
    for (size_t i = 0; i < n; i++)
        tg_event(g, &evs[i], tenant, base, span);
    return evs;
}

struct walk {
    char **ids;
    size_t n, cap;
    int pages;
    long long first_total;
    char first_rel[8];
    int status;                 /* last non-200 status, 0 if none */
};

static void walk_add(struct walk *w, const char *id)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->ids = realloc(w->ids, w->cap * sizeof(*w->ids));
    }
    w->ids[w->n++] = strdup(id);
}

static void walk_free(struct walk *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->ids[i]);
    free(w->ids);
    memset(w, 0, sizeof(*w));
}

/* Walks every page of `query` (the JSON of "query") with page size limit;
 * checks the newest-first order on the way (ts desc, id desc). */
static void walk_all(struct qt *t, const char *token, const char *query, int limit,
                     struct walk *w, int *order_ok)
{
    char cursor[1024] = "";
    int64_t last_ts = INT64_MAX;
    char last_id[256] = "";
    *order_ok = 1;
    memset(w, 0, sizeof(*w));
    for (int page = 0; page < 100000; page++) {
        struct lh_buf body = LH_BUF_INIT;
        lh_buf_printf(&body, "{\"query\":%s,\"pagination\":{\"limit\":%d", query, limit);
        if (cursor[0])
            lh_buf_printf(&body, ",\"cursor\":\"%s\"", cursor);
        lh_buf_puts(&body, "}}");
        int st;
        json_t *j = qt_post_json(t, "/v1/logs/search", token, body.data, &st);
        lh_buf_free(&body);
        w->pages++;
        if (st != 200 || !j) {
            w->status = st;
            json_decref(j);
            return;
        }
        if (page == 0) {
            w->first_total = json_integer_value(json_object_get(j, "total_hits"));
            snprintf(w->first_rel, sizeof(w->first_rel), "%s",
                     json_string_value(json_object_get(j, "total_hits_relation")));
        }
        json_t *logs = json_object_get(j, "logs"), *h;
        size_t i;
        json_array_foreach(logs, i, h) {
            const char *id = json_string_value(json_object_get(h, "id"));
            const char *ts = json_string_value(json_object_get(h, "timestamp"));
            int64_t tv = 0;
            lh_time_parse_rfc3339(ts, strlen(ts), &tv, NULL);
            if (tv > last_ts || (tv == last_ts && strcmp(id, last_id) >= 0))
                *order_ok = 0;
            last_ts = tv;
            snprintf(last_id, sizeof(last_id), "%s", id);
            walk_add(w, id);
        }
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        if (!next) {
            json_decref(j);
            return;
        }
        snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(j);
    }
}

/* Reference: ids of matching events, newest first. */
static size_t ref_ids(const struct lh_event *evs, size_t n, const struct lh_store_query *q,
                      const struct lh_event ***out)
{
    const struct lh_event **v = malloc((n ? n : 1) * sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ref_match(&evs[i], q))
            v[k++] = &evs[i];
    qsort(v, k, sizeof(*v), ref_order);
    *out = v;
    return k;
}

static int same_ids(const struct walk *w, const struct lh_event **want, size_t nwant)
{
    if (w->n != nwant) {
        fprintf(stderr, "    got %zu hits, want %zu\n", w->n, nwant);
        return 0;
    }
    for (size_t i = 0; i < nwant; i++)
        if (strcmp(w->ids[i], want[i]->id) != 0) {
            fprintf(stderr, "    hit %zu: got %s, want %s\n", i, w->ids[i], want[i]->id);
            return 0;
        }
    return 1;
}

/* ---- search vs the reference -------------------------------------------- */

TEST(queryd_search_matches_reference)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct tgen g = { 4242, &a, 0, { 0 }, 0 };
    int64_t now = lh_time_now_ns();
    int64_t base = now - 2 * 3600 * LH_NS_PER_SEC;
    size_t na = 3000, ng = 600;
    struct lh_event *ea = gen(&a, &g, "acme", na, base, 2 * 3600 * LH_NS_PER_SEC);
    struct lh_event *eg = gen(&a, &g, "globex", ng, base, 2 * 3600 * LH_NS_PER_SEC);
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    REQUIRE_INT(lh_store_append(w, ea, na, NULL, NULL), ==, 0);
    REQUIRE_INT(lh_store_append(w, eg, ng, NULL, NULL), ==, 0);
    lh_store_close(w);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);

    /* Each API query beside the same question put to the reference. */
    static const char *const svc_in[] = { "api", "web" };
    static const char *const lvls[] = { "WARN", "ERROR", "FATAL" };
    struct lh_store_pred p_svc = { "service", LH_STORE_EQ, "payment-service", NULL, 0 };
    struct lh_store_pred p_ne = { "host", LH_STORE_NE, "host-1", NULL, 0 };
    struct lh_store_pred p_in = { "service", LH_STORE_IN, NULL, svc_in, 2 };
    struct lh_store_pred p_lvl = { "level", LH_STORE_IN, NULL, lvls, 3 };
    struct lh_store_pred p_pre = { "host", LH_STORE_PREFIX, "web", NULL, 0 };
    struct lh_store_pred p_con = { "message", LH_STORE_CONTAINS, "ment", NULL, 0 };
    struct lh_store_pred p_ex = { "trace_id", LH_STORE_EXISTS, NULL, NULL, 0 };
    struct lh_store_pred p_nex = { "metadata.k1", LH_STORE_NOT_EXISTS, NULL, NULL, 0 };
    struct lh_store_pred p_gt = { "metadata.duration_ms", LH_STORE_GT, "500", NULL, 0 };
    static const char *const terms1[] = { "timeout" };
    static const char *const terms2[] = { "payment", "failed" };
    static const char *const phr1[] = { "connect refused" };
    struct {
        const char *query;
        struct lh_store_query ref;
    } cases[] = {
        { "{}", { .preds = NULL } },
        { "{\"full_text\":\"timeout\"}", { .terms = terms1, .nterms = 1 } },
        { "{\"full_text\":\"Payment FAILED\"}", { .terms = terms2, .nterms = 2 } },
        { "{\"full_text\":\"\\\"connect refused\\\"\"}", { .phrases = phr1, .nphrases = 1 } },
        { "{\"filters\":[{\"field\":\"service\",\"operator\":\"EQUALS\",\"value\":"
          "\"payment-service\"}]}", { .preds = &p_svc, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"host\",\"operator\":\"NOT_EQUALS\",\"value\":\"host-1\"}]}",
          { .preds = &p_ne, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"service\",\"operator\":\"IN\",\"value\":[\"api\",\"web\"]}]}",
          { .preds = &p_in, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"level\",\"operator\":\"GTE\",\"value\":\"warning\"}]}",
          { .preds = &p_lvl, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"host\",\"operator\":\"PREFIX\",\"value\":\"web\"}]}",
          { .preds = &p_pre, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"message\",\"operator\":\"CONTAINS\",\"value\":\"ment\"}]}",
          { .preds = &p_con, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"trace_id\",\"operator\":\"EXISTS\"}]}",
          { .preds = &p_ex, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"metadata.k1\",\"operator\":\"EXISTS\",\"value\":false}]}",
          { .preds = &p_nex, .npreds = 1 } },
        { "{\"filters\":[{\"field\":\"metadata.duration_ms\",\"operator\":\"GT\",\"value\":500}]}",
          { .preds = &p_gt, .npreds = 1 } },
        { "{\"full_text\":\"timeout\",\"filters\":[{\"field\":\"service\",\"operator\":"
          "\"EQUALS\",\"value\":\"payment-service\"}]}",
          { .terms = terms1, .nterms = 1, .preds = &p_svc, .npreds = 1 } },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct lh_store_query ref = cases[c].ref;
        ref.tenant = "acme";
        ref.start_ns = now - 24 * 3600 * LH_NS_PER_SEC;
        const struct lh_event **want;
        size_t nwant = ref_ids(ea, na, &ref, &want);
        struct walk wk;
        int order_ok;
        walk_all(&t, TOKEN, cases[c].query, 137, &wk, &order_ok);
        if (wk.status)
            fprintf(stderr, "    case %zu: status %d\n", c, wk.status);
        CHECK_INT(wk.status, ==, 0);
        CHECK(order_ok);
        if (!same_ids(&wk, want, nwant))
            fprintf(stderr, "    case %zu (%s) differs\n", c, cases[c].query);
        CHECK(same_ids(&wk, want, nwant));
        CHECK_INT(wk.first_total, ==, nwant);
        CHECK_STR(wk.first_rel, "eq");
        CHECK(nwant > 0);   /* every case finds something: the data covers it */
        free(want);
        walk_free(&wk);
    }
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_arena_free(&a);
}

/* ---- a 10,000-hit walk while another thread appends --------------------- */

struct appender {
    struct lh_store *w;
    int64_t now;
    int stop;
    int batches;
    int first_page_done;
};

static void *append_main(void *arg)
{
    struct appender *ap = arg;
    struct lh_arena a = LH_ARENA_INIT;
    while (!__atomic_load_n(&ap->first_page_done, __ATOMIC_SEQ_CST))
        usleep(1000);
    for (int b = 0; !__atomic_load_n(&ap->stop, __ATOMIC_SEQ_CST) && b < 400; b++) {
        struct lh_event evs[20];
        char id[64];
        for (int i = 0; i < 20; i++) {
            int late = i % 2;
            snprintf(id, sizeof(id), "%s-%04d-%02d", late ? "late" : "new", b, i);
            /* new: newer than every initial event; late: among them */
            int64_t ts = late ? ap->now - 3 * 3600 * LH_NS_PER_SEC + (b * 20 + i) * 1000003LL
                              : ap->now - 3600 * LH_NS_PER_SEC + (b * 20 + i) * LH_NS_PER_MS;
            evs[i] = qt_event(&a, "acme", id, ts, LH_LEVEL_INFO, "api", "h", "walk me", NULL);
        }
        if (lh_store_append(ap->w, evs, 20, NULL, NULL) != 0)
            break;
        ap->batches++;
        lh_arena_reset(&a);
        usleep(2000);
    }
    lh_arena_free(&a);
    return NULL;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

TEST(queryd_pagination_walk_10000_while_appending)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    int64_t now = lh_time_now_ns();
    size_t n = 10000;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "init-%05zu", i);
        /* many equal timestamps: ties are broken by id */
        int64_t ts = now - 3 * 3600 * LH_NS_PER_SEC + (int64_t)(i / 3) * 1000000LL;
        evs[i] = qt_event(&a, "acme", id, ts, LH_LEVEL_INFO, "api", "h", "walk me", NULL);
    }
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    REQUIRE_INT(lh_store_append(w, evs, n, NULL, NULL), ==, 0);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    struct appender ap = { .w = w, .now = now };
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, append_main, &ap) == 0);

    /* the walk: page 1 before the appender starts, then the rest */
    char cursor[1024] = "";
    char **seen = calloc(2 * n + 20000, sizeof(*seen));
    size_t nseen = 0;
    int64_t last_ts = INT64_MAX;
    char last_id[64] = "";
    int order_ok = 1, pages = 0;
    long long total0 = -1;
    for (;;) {
        char body[1400];
        snprintf(body, sizeof(body), "{\"query\":{\"full_text\":\"walk\"},\"pagination\":"
                 "{\"limit\":100%s%s%s}}", cursor[0] ? ",\"cursor\":\"" : "", cursor,
                 cursor[0] ? "\"" : "");
        int st;
        json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN, body, &st);
        REQUIRE_INT(st, ==, 200);
        REQUIRE(j);
        if (pages++ == 0) {
            total0 = json_integer_value(json_object_get(j, "total_hits"));
            CHECK_STR(json_string_value(json_object_get(j, "total_hits_relation")), "eq");
            __atomic_store_n(&ap.first_page_done, 1, __ATOMIC_SEQ_CST);
        }
        json_t *h;
        size_t i;
        json_array_foreach(json_object_get(j, "logs"), i, h) {
            const char *id = json_string_value(json_object_get(h, "id"));
            const char *ts = json_string_value(json_object_get(h, "timestamp"));
            int64_t tv = 0;
            lh_time_parse_rfc3339(ts, strlen(ts), &tv, NULL);
            if (tv > last_ts || (tv == last_ts && strcmp(id, last_id) >= 0))
                order_ok = 0;
            last_ts = tv;
            snprintf(last_id, sizeof(last_id), "%s", id);
            seen[nseen++] = strdup(id);
        }
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        if (next)
            snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(j);
        if (!next)
            break;
    }
    __atomic_store_n(&ap.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    CHECK_INT(total0, ==, 10000);
    CHECK(order_ok);
    CHECK(ap.batches > 0);   /* appends really overlapped the walk */
    CHECK(pages >= 100);
    /* no repeat; every initial event exactly once; no event newer than page 1 */
    qsort(seen, nseen, sizeof(*seen), cmp_str);
    size_t dups = 0, init = 0, newer = 0;
    for (size_t i = 0; i < nseen; i++) {
        if (i && strcmp(seen[i], seen[i - 1]) == 0)
            dups++;
        init += strncmp(seen[i], "init-", 5) == 0;
        newer += strncmp(seen[i], "new-", 4) == 0;
    }
    CHECK_INT(dups, ==, 0);
    CHECK_INT(init, ==, 10000);
    CHECK_INT(newer, ==, 0);
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_store_close(w);
    lh_arena_free(&a);
}

/* ---- tenants ------------------------------------------------------------ */

/* Same events for two tenants; acme's have ids a-*, globex's g-*. */
static void two_tenants(const char *dir, int64_t now, size_t n)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *w = qt_store_writer(dir);
    struct lh_event *evs = lh_arena_alloc(&a, 2 * n * sizeof(*evs));
    for (size_t i = 0; i < 2 * n; i++) {
        char id[32];
        int acme = i < n;
        snprintf(id, sizeof(id), "%s-%03zu", acme ? "a" : "g", i % n);
        evs[i] = qt_event(&a, acme ? "acme" : "globex", id, now - (int64_t)(i % n + 1) * 1000000,
                          i % 2 ? LH_LEVEL_ERROR : LH_LEVEL_INFO, "billing", "h1",
                          "secret invoice total", "owner=acme");
    }
    lh_store_append(w, evs, 2 * n, NULL, NULL);
    lh_store_close(w);
    lh_arena_free(&a);
}

static int all_ids_start(json_t *j, char c)
{
    json_t *h;
    size_t i;
    json_array_foreach(json_object_get(j, "logs"), i, h) {
        const char *id = json_string_value(json_object_get(h, "id"));
        if (!id || id[0] != c)
            return 0;
    }
    return 1;
}

TEST(queryd_tenant_isolation)
{
    const char *dir = lh_test_tmpdir();
    int64_t now = lh_time_now_ns();
    two_tenants(dir, now, 30);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    int st;
    const char *q = "{\"query\":{\"full_text\":\"secret invoice\"},\"pagination\":{\"limit\":10}}";
    json_t *ja = qt_post_json(&t, "/v1/logs/search", TOKEN, q, &st);
    CHECK_INT(st, ==, 200);
    CHECK_INT(json_integer_value(json_object_get(ja, "total_hits")), ==, 30);
    CHECK(all_ids_start(ja, 'a'));
    json_t *jg = qt_post_json(&t, "/v1/logs/search", GTOKEN, q, &st);
    CHECK_INT(st, ==, 200);
    CHECK_INT(json_integer_value(json_object_get(jg, "total_hits")), ==, 30);
    CHECK(all_ids_start(jg, 'g'));
    json_decref(jg);
    /* acme's cursor in globex's hands: 403, nothing of acme's */
    char body[1400];
    snprintf(body, sizeof(body), "{\"query\":{\"full_text\":\"secret invoice\"},"
             "\"pagination\":{\"limit\":10,\"cursor\":\"%s\"}}",
             json_string_value(json_object_get(ja, "next_cursor")));
    jg = qt_post_json(&t, "/v1/logs/search", GTOKEN, body, &st);
    CHECK_INT(st, ==, 403);
    CHECK_STR(qt_err_code(jg), "forbidden");
    CHECK_STR(qt_err_field(jg), "pagination.cursor");
    CHECK(!json_object_get(jg, "logs"));
    json_decref(jg);
    /* ... and in acme's: fine */
    jg = qt_post_json(&t, "/v1/logs/search", TOKEN, body, &st);
    CHECK_INT(st, ==, 200);
    CHECK(all_ids_start(jg, 'a'));
    json_decref(jg);
    json_decref(ja);
    /* whatever the filters say, the tenant is the token's */
    const char *escapes[] = {
        "{\"query\":{\"filters\":[{\"field\":\"tenant\",\"operator\":\"EQUALS\",\"value\":"
        "\"acme\"}]}}",
        "{\"query\":{\"filters\":[{\"field\":\"tenant\",\"operator\":\"NOT_EQUALS\",\"value\":"
        "\"globex\"}]}}",
        "{\"query\":{\"filters\":[{\"field\":\"metadata.tenant\",\"operator\":\"EXISTS\","
        "\"value\":false}]}}",
        "{\"query\":{\"filters\":[{\"field\":\"metadata.owner\",\"operator\":\"EQUALS\","
        "\"value\":\"acme\"}]}}",
        "{\"query\":{\"full_text\":\"acme\"}}",
    };
    for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
        jg = qt_post_json(&t, "/v1/logs/search", GTOKEN, escapes[i], &st);
        if (i < 2) {
            CHECK_INT(st, ==, 400);
            CHECK_STR(qt_err_field(jg), "query.filters[0].field");
        } else {
            CHECK_INT(st, ==, 200);
            CHECK(all_ids_start(jg, 'g'));
        }
        json_decref(jg);
    }
    /* no token, a bad one */
    struct ht_resp r;
    CHECK_INT(qt_post(&t, "/v1/logs/search", NULL, "{}", &r), ==, 401);
    char v[128];
    CHECK(ht_header(&r, "WWW-Authenticate", v, sizeof(v)) != NULL);
    CHECK(!strstr(r.body.data, "secret"));
    ht_resp_free(&r);
    CHECK_INT(qt_post(&t, "/v1/logs/search", "acme-token-2", "{}", &r), ==, 401);
    CHECK_CONTAINS(r.body.data, "unknown token");
    ht_resp_free(&r);
    CHECK_INT(qt_stop(&t), ==, 0);
}

/* ---- bad requests: clear 400/403, never a crash, never data ------------- */

TEST(queryd_bad_requests_over_http)
{
    const char *dir = lh_test_tmpdir();
    int64_t now = lh_time_now_ns();
    two_tenants(dir, now, 30);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    int st;
    json_t *first = qt_post_json(&t, "/v1/logs/search", TOKEN,
                                 "{\"query\":{\"full_text\":\"invoice\"},\"pagination\":"
                                 "{\"limit\":5}}", &st);
    REQUIRE_INT(st, ==, 200);
    const char *cur = json_string_value(json_object_get(first, "next_cursor"));
    REQUIRE(cur);
    char forged[1024], other_query[1400], forged_body[1400];
    snprintf(forged, sizeof(forged), "%s", cur);
    forged[strlen(forged) / 2] ^= 1;   /* one character changed */
    snprintf(forged_body, sizeof(forged_body), "{\"query\":{\"full_text\":\"invoice\"},"
             "\"pagination\":{\"cursor\":\"%s\"}}", forged);
    snprintf(other_query, sizeof(other_query), "{\"query\":{\"full_text\":\"total\"},"
             "\"pagination\":{\"cursor\":\"%s\"}}", cur);
    char *huge = malloc(1100000);
    strcpy(huge, "{\"query\":{\"full_text\":\"");
    size_t hl = strlen(huge);
    memset(huge + hl, 'x', 1048576);
    strcpy(huge + hl + 1048576, "\"}}");
    struct {
        const char *body;
        int status;
        const char *field;
    } cases[] = {
        { "{\"query\": {\"full_text\": \"x\"", 400, "" },
        { "not json at all", 400, "" },
        { "", 400, "" },
        { "{\"query\":{\"filters\":[{\"field\":\"a\",\"operator\":\"LIKE\",\"value\":\"x\"}]}}",
          400, "query.filters[0].field" },
        { "{\"query\":{\"filters\":[{\"field\":\"host\",\"operator\":\"LIKE\",\"value\":\"x\"}]}}",
          400, "query.filters[0].operator" },
        { huge, 400, "" },
        { "{\"pagination\":{\"limit\":-5}}", 400, "pagination.limit" },
        { "{\"pagination\":{\"limit\":1000000000000}}", 400, "pagination.limit" },
        { forged_body, 400, "pagination.cursor" },
        { other_query, 400, "pagination.cursor" },
        { "{\"pagination\":{\"cursor\":\"c3Bvb2xfMTAwX2V2dF85OWE=\"}}", 400, "pagination.cursor" },
        { "{\"query\":{\"filters\":[{\"field\":\"tenant\",\"operator\":\"IN\",\"value\":"
          "[\"globex\"]}]}}", 400, "query.filters[0].field" },
        /* looks like syntax, is text: fine */
        { "{\"query\":{\"full_text\":\"* OR 1=1 -- \\\"a\\\" \\\\ field:value (a AND b) /.*/ "
          "{\\\"match_all\\\":{}}\"}}", 200, NULL },
        /* a lone quote: a clear 400 */
        { "{\"query\":{\"full_text\":\"say \\\"hi\"}}", 400, "query.full_text" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ht_resp r;
        st = qt_post(&t, "/v1/logs/search", TOKEN, cases[i].body, &r);
        if (st != cases[i].status)
            fprintf(stderr, "    case %zu: %d %s\n", i, st, r.body.data);
        CHECK_INT(st, ==, cases[i].status);
        json_t *j = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
        CHECK(j != NULL);
        if (cases[i].field) {
            CHECK_STR(qt_err_code(j), "bad_request");
            CHECK_STR(qt_err_field(j), cases[i].field);
            CHECK(json_string_value(json_object_get(json_object_get(j, "error"), "message")));
            CHECK(!json_object_get(j, "logs"));
            CHECK(!strstr(r.body.data, "secret"));
        } else {
            /* searched for as text: nothing matches it (no match-all) */
            CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, 0);
        }
        json_decref(j);
        ht_resp_free(&r);
    }
    free(huge);
    json_decref(first);
    /* wrong method, wrong path */
    struct ht_resp r;
    CHECK_INT(ht_request(t.port, "GET /v1/logs/search HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 405);
    ht_resp_free(&r);
    /* still serving */
    json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN, "{}", &st);
    CHECK_INT(st, ==, 200);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, 30);
    json_decref(j);
    CHECK_INT(qt_stop(&t), ==, 0);
}

/* ---- aggregate ---------------------------------------------------------- */

TEST(queryd_aggregate_histogram_and_top)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    int64_t m = 60 * LH_NS_PER_SEC;
    int64_t now = lh_time_now_ns();
    int64_t t0 = (now / m - 10) * m;   /* a minute boundary ten minutes ago */
    struct lh_event evs[60];
    static const char *const svc[] = { "api", "web", "db" };
    size_t want_min[3] = { 0 }, want_svc[3] = { 0 }, errors = 0;
    for (int i = 0; i < 60; i++) {
        char id[16], meta[32];
        snprintf(id, sizeof(id), "e%02d", i);
        snprintf(meta, sizeof(meta), "zone=z%d", i % 4);
        int minute = i < 30 ? 0 : i < 50 ? 1 : 2;
        int s = i % 7 == 0 ? 2 : i % 2;
        enum lh_level lv = i % 5 == 0 ? LH_LEVEL_ERROR : LH_LEVEL_INFO;
        evs[i] = qt_event(&a, "acme", id, t0 + minute * m + i * LH_NS_PER_MS, lv, svc[s], "h",
                          "agg", i % 3 ? meta : NULL);
        if (lv == LH_LEVEL_ERROR) {
            want_min[minute]++;
            want_svc[s]++;
            errors++;
        }
    }
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    REQUIRE_INT(lh_store_append(w, evs, 60, NULL, NULL), ==, 0);
    lh_store_close(w);
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    char s0[LH_TIME_RFC3339_SIZE], s1[LH_TIME_RFC3339_SIZE];
    lh_time_format_rfc3339(t0, 0, s0, sizeof(s0));
    lh_time_format_rfc3339(t0 + 3 * m, 0, s1, sizeof(s1));
    char body[800];
    snprintf(body, sizeof(body),
             "{\"query\":{\"filters\":[{\"field\":\"level\",\"operator\":\"EQUALS\",\"value\":"
             "\"ERROR\"}],\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}},\"interval\":\"1m\","
             "\"top\":[{\"field\":\"service\",\"size\":2},{\"field\":\"metadata.zone\"}]}",
             s0, s1);
    int st;
    json_t *j = qt_post_json(&t, "/v1/logs/aggregate", TOKEN, body, &st);
    CHECK_INT(st, ==, 200);
    REQUIRE(j);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, errors);
    json_t *hist = json_object_get(j, "histogram");
    CHECK_INT(json_integer_value(json_object_get(hist, "interval_ms")), ==, 60000);
    json_t *buckets = json_object_get(hist, "buckets");
    REQUIRE_INT(json_array_size(buckets), ==, 3);
    for (int i = 0; i < 3; i++) {
        json_t *b = json_array_get(buckets, (size_t)i);
        char ts[LH_TIME_RFC3339_SIZE];
        lh_time_format_rfc3339(t0 + i * m, 3, ts, sizeof(ts));
        CHECK_STR(json_string_value(json_object_get(b, "start")), ts);
        CHECK_INT(json_integer_value(json_object_get(b, "count")), ==, want_min[i]);
    }
    json_t *top = json_object_get(j, "top");
    REQUIRE_INT(json_array_size(top), ==, 2);
    json_t *t_svc = json_array_get(top, 0);
    CHECK_STR(json_string_value(json_object_get(t_svc, "field")), "service");
    json_t *vals = json_object_get(t_svc, "values");
    REQUIRE_INT(json_array_size(vals), ==, 2);
    /* counts descending; the one left out is in "other" */
    uint64_t c0 = (uint64_t)json_integer_value(json_object_get(json_array_get(vals, 0), "count"));
    uint64_t c1 = (uint64_t)json_integer_value(json_object_get(json_array_get(vals, 1), "count"));
    uint64_t other = (uint64_t)json_integer_value(json_object_get(t_svc, "other"));
    CHECK(c0 >= c1);
    CHECK_INT(c0 + c1 + other, ==, errors);
    for (int k = 0; k < 2; k++) {
        const char *v = json_string_value(json_object_get(json_array_get(vals, (size_t)k),
                                                          "value"));
        int s = strcmp(v, "api") == 0 ? 0 : strcmp(v, "web") == 0 ? 1 : 2;
        CHECK_INT(k == 0 ? c0 : c1, ==, want_svc[s]);
    }
    json_t *t_zone = json_array_get(top, 1);
    uint64_t zsum = 0;
    json_t *zv;
    size_t zi;
    json_array_foreach(json_object_get(t_zone, "values"), zi, zv)
        zsum += (uint64_t)json_integer_value(json_object_get(zv, "count"));
    CHECK_INT(zsum + json_integer_value(json_object_get(t_zone, "missing")), ==, errors);
    CHECK(json_integer_value(json_object_get(t_zone, "missing")) > 0);
    json_decref(j);
    /* a bad aggregate names its field */
    j = qt_post_json(&t, "/v1/logs/aggregate", TOKEN, "{\"interval\":\"soon\"}", &st);
    CHECK_INT(st, ==, 400);
    CHECK_STR(qt_err_field(j), "interval");
    json_decref(j);
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_arena_free(&a);
}

/* ---- limits ------------------------------------------------------------- */

TEST(queryd_time_limit_gives_503)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct tgen g = { 99, &a, 0, { 0 }, 0 };
    int64_t now = lh_time_now_ns();
    size_t n = 40000;
    struct lh_event *evs = gen(&a, &g, "acme", n, now - 3600 * LH_NS_PER_SEC,
                               3600 * LH_NS_PER_SEC);
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    REQUIRE_INT(lh_store_append(w, evs, n, NULL, NULL), ==, 0);
    lh_store_close(w);
    lh_arena_free(&a);
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%slimits:\n  timeout: 1ms\n  slow_query: 0s\n", base_yaml);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, dir) == 0);
    lh_buf_free(&y);
    struct ht_resp r;
    int st = qt_post(&t, "/v1/logs/search", TOKEN,
                     "{\"query\":{\"full_text\":\"x\",\"filters\":[{\"field\":\"message\","
                     "\"operator\":\"CONTAINS\",\"value\":\"zz\"}]}}", &r);
    CHECK_INT(st, ==, 503);
    CHECK_CONTAINS(r.body.data, "\"code\":\"timeout\"");
    char v[32];
    CHECK(ht_header(&r, "Retry-After", v, sizeof(v)) != NULL);
    ht_resp_free(&r);
    CHECK_INT(lh_counter_value(lh_counter_get(t.metrics, "loghaul_queryd_query_timeouts_total",
                                              "", NULL)), ==, 1);
    /* a quick one (a range without data) answers, and is logged as slow (slow_query: 0s) */
    st = qt_post(&t, "/v1/logs/search", TOKEN, "{\"query\":{\"time_range\":{\"start\":"
                 "\"2000-01-01T00:00:00Z\",\"end\":\"2000-01-02T00:00:00Z\"}}}", &r);
    CHECK_INT(st, ==, 200);
    ht_resp_free(&r);
    CHECK_INT(lh_counter_value(lh_counter_get(t.metrics, "loghaul_queryd_slow_queries_total",
                                              "", NULL)), ==, 1);
    CHECK_INT(qt_stop(&t), ==, 0);
}

TEST(queryd_response_size_cuts_pages_not_hits)
{
    const char *dir = lh_test_tmpdir();
    int64_t now = lh_time_now_ns();
    two_tenants(dir, now, 50);
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%slimits:\n  max_response_bytes: 2KiB\n", base_yaml);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, dir) == 0);
    lh_buf_free(&y);
    int st;
    json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN, "{\"pagination\":{\"limit\":100}}",
                             &st);
    CHECK_INT(st, ==, 200);
    size_t n1 = json_array_size(json_object_get(j, "logs"));
    CHECK(n1 > 0 && n1 < 50);
    CHECK(json_string_value(json_object_get(j, "next_cursor")) != NULL);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, 50);
    json_decref(j);
    struct walk wk;
    int order_ok;
    walk_all(&t, TOKEN, "{}", 100, &wk, &order_ok);
    CHECK_INT(wk.n, ==, 50);
    CHECK(order_ok);
    CHECK(wk.pages > 1);
    walk_free(&wk);
    CHECK_INT(qt_stop(&t), ==, 0);
}

/* ---- live tail ---------------------------------------------------------- */

/* Reads from c until needle shows up in what was received (raw: chunk
 * framing included) or timeout_ms passes; 1 when found. */
static int read_until(struct ht_conn *c, const char *needle, int timeout_ms)
{
    double end = ht_now() + timeout_ms / 1000.0;
    for (;;) {
        if (c->in.data && strstr(c->in.data, needle))
            return 1;
        int left = (int)((end - ht_now()) * 1000);
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        if (poll(&p, 1, left) <= 0)
            continue;
        char buf[8192];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return 0;
        lh_buf_append(&c->in, buf, (size_t)n);
    }
}

static const char *url_encode(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (; *s && o + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", ch);
    }
    out[o] = 0;
    return out;
}

static double tails_open(struct qt *t)
{
    return lh_gauge_value(lh_gauge_get(t->metrics, "loghaul_queryd_tails_open", "", NULL));
}

TEST(queryd_tail_sends_new_matches_within_a_second)
{
    const char *dir = lh_test_tmpdir();
    struct lh_store *w = qt_store_writer(dir);
    REQUIRE(w);
    struct lh_arena a = LH_ARENA_INIT;
    int64_t now = lh_time_now_ns();
    /* an old match: a tail starts with new events only */
    struct lh_event old = qt_event(&a, "acme", "old-1", now - 60 * LH_NS_PER_SEC, LH_LEVEL_ERROR,
                                   "api", "h", "disk full", NULL);
    REQUIRE_INT(lh_store_append(w, &old, 1, NULL, NULL), ==, 0);
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%stail:\n  heartbeat: 300ms\n", base_yaml);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, dir) == 0);
    lh_buf_free(&y);

    char enc[600], req[1000];
    url_encode("{\"full_text\":\"disk\",\"filters\":[{\"field\":\"service\",\"operator\":"
               "\"EQUALS\",\"value\":\"api\"}]}", enc, sizeof(enc));
    snprintf(req, sizeof(req), "GET /v1/logs/tail?query=%s HTTP/1.1\r\nHost: t\r\n"
             "Authorization: Bearer " TOKEN "\r\nAccept: text/event-stream\r\n\r\n", enc);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, t.port) == 0);
    REQUIRE(ht_sends(&c, req) == 0);
    REQUIRE(read_until(&c, "tail started", 2000));
    CHECK_CONTAINS(c.in.data, "HTTP/1.1 200");
    CHECK_CONTAINS(c.in.data, "Content-Type: text/event-stream");
    CHECK_CONTAINS(c.in.data, "Transfer-Encoding: chunked");
    CHECK_INT(tails_open(&t), ==, 1);
    /* idle: heartbeats */
    CHECK(read_until(&c, ": keepalive", 2000));
    /* a matching event and two that do not match */
    struct lh_event evs[3] = {
        qt_event(&a, "acme", "other-1", lh_time_now_ns(), LH_LEVEL_ERROR, "web", "h",
                 "disk full", NULL),
        qt_event(&a, "globex", "other-2", lh_time_now_ns(), LH_LEVEL_ERROR, "api", "h",
                 "disk full", NULL),
        qt_event(&a, "acme", "new-1", lh_time_now_ns(), LH_LEVEL_ERROR, "api", "h",
                 "disk full again", NULL),
    };
    double t0 = ht_now();
    REQUIRE_INT(lh_store_append(w, evs, 3, NULL, NULL), ==, 0);
    CHECK(read_until(&c, "\"id\":\"new-1\"", 1000));
    double dt = ht_now() - t0;
    CHECK(dt < 1.0);
    /* the SSE frame: id line, then the hit as data */
    char idline[64];
    snprintf(idline, sizeof(idline), "id: %lld/new-1\ndata: {", (long long)evs[2].ts_ns);
    CHECK_CONTAINS(c.in.data, idline);
    /* a second event later; each is sent once */
    struct lh_event e2 = qt_event(&a, "acme", "new-2", lh_time_now_ns(), LH_LEVEL_WARN, "api",
                                  "h", "disk slow", NULL);
    REQUIRE_INT(lh_store_append(w, &e2, 1, NULL, NULL), ==, 0);
    CHECK(read_until(&c, "\"id\":\"new-2\"", 1000));
    read_until(&c, "never", 600);   /* a few more polls */
    const char *first = strstr(c.in.data, "\"id\":\"new-1\"");
    CHECK(first && !strstr(first + 1, "\"id\":\"new-1\""));
    CHECK(!strstr(c.in.data, "other-1"));
    CHECK(!strstr(c.in.data, "other-2"));
    CHECK(!strstr(c.in.data, "old-1"));
    /* the client goes away: the tail ends */
    ht_close(&c);
    double end = ht_now() + 2;
    while (tails_open(&t) > 0 && ht_now() < end)
        ht_sleep_ms(20);
    CHECK_INT(tails_open(&t), ==, 0);

    /* bad tails */
    struct ht_resp r;
    CHECK_INT(ht_request(t.port, "GET /v1/logs/tail?query=x HTTP/1.1\r\nHost: t\r\n\r\n", &r),
              ==, 401);
    ht_resp_free(&r);
    url_encode("{\"filters\":[{\"field\":\"tenant\",\"operator\":\"EXISTS\"}]}", enc, sizeof(enc));
    snprintf(req, sizeof(req), "GET /v1/logs/tail?query=%s HTTP/1.1\r\nHost: t\r\n"
             "Authorization: Bearer " TOKEN "\r\n\r\n", enc);
    CHECK_INT(ht_request(t.port, req, &r), ==, 400);
    CHECK_CONTAINS(r.body.data, "\"field\":\"query.filters[0].field\"");
    ht_resp_free(&r);
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_store_close(w);
    lh_arena_free(&a);
}

TEST(queryd_tail_ends_when_queryd_stops)
{
    const char *dir = lh_test_tmpdir();
    struct qt t;
    REQUIRE(qt_start(&t, base_yaml, dir) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, t.port) == 0);
    REQUIRE(ht_sends(&c, "GET /v1/logs/tail?query=anything HTTP/1.1\r\nHost: t\r\n"
                         "Authorization: Bearer " TOKEN "\r\n\r\n") == 0);
    REQUIRE(read_until(&c, "tail started", 2000));
    double t0 = ht_now();
    CHECK_INT(qt_stop(&t), ==, 0);    /* does not wait for the drain timeout */
    CHECK(ht_now() - t0 < 1.5);
    CHECK(read_until(&c, "0\r\n\r\n", 1000));   /* the stream's last chunk */
    ht_close(&c);
}

/* ---- HTTPS -------------------------------------------------------------- */

TEST(queryd_search_over_tls)
{
    const char *dir = lh_test_tmpdir();
    int64_t now = lh_time_now_ns();
    char store[600];
    snprintf(store, sizeof(store), "%s/store", dir);
    two_tenants(store, now, 5);
    REQUIRE(ht_make_certs(dir) == 0);
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%slisten:\n  tls:\n    cert: %s/server.pem\n    key: %s/server.key\n",
                  base_yaml, dir, dir);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, store) == 0);
    lh_buf_free(&y);
    char ca[600];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    struct ht_conn c;
    REQUIRE(ht_connect_tls(&c, t.port, ca, NULL, NULL, 0) == 0);
    const char *body = "{\"query\":{\"full_text\":\"invoice\"}}";
    char req[600];
    snprintf(req, sizeof(req), "POST /v1/logs/search HTTP/1.1\r\nHost: t\r\nAuthorization: "
             "Bearer " TOKEN "\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    REQUIRE(ht_sends(&c, req) == 0);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_CONTAINS(r.body.data, "\"total_hits\":5");
    ht_resp_free(&r);
    ht_close(&c);
    /* plain HTTP to the TLS port gets nothing */
    CHECK_INT(qt_post(&t, "/v1/logs/search", TOKEN, body, &r), ==, -1);
    ht_resp_free(&r);
    CHECK_INT(qt_stop(&t), ==, 0);
}

TEST(queryd_tail_limit_of_open_streams)
{
    const char *dir = lh_test_tmpdir();
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%stail:\n  max_streams: 1\n", base_yaml);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, dir) == 0);
    lh_buf_free(&y);
    static const char req[] = "GET /v1/logs/tail?query=x HTTP/1.1\r\nHost: t\r\n"
                              "Authorization: Bearer " TOKEN "\r\n\r\n";
    struct ht_conn c;
    REQUIRE(ht_connect(&c, t.port) == 0);
    REQUIRE(ht_sends(&c, req) == 0);
    REQUIRE(read_until(&c, "tail started", 2000));
    struct ht_resp r;
    CHECK_INT(ht_request(t.port, req, &r), ==, 503);
    CHECK_CONTAINS(r.body.data, "too_many_tails");
    char v[16];
    CHECK(ht_header(&r, "Retry-After", v, sizeof(v)) != NULL);
    ht_resp_free(&r);
    ht_close(&c);
    double end = ht_now() + 2;
    while (tails_open(&t) > 0 && ht_now() < end)
        ht_sleep_ms(20);
    /* the slot is free again */
    REQUIRE(ht_connect(&c, t.port) == 0);
    REQUIRE(ht_sends(&c, req) == 0);
    CHECK(read_until(&c, "tail started", 2000));
    ht_close(&c);
    CHECK_INT(qt_stop(&t), ==, 0);
}

TEST(queryd_tail_ends_after_max_duration)
{
    const char *dir = lh_test_tmpdir();
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%stail:\n  poll_interval: 20ms\n  max_duration: 300ms\n", base_yaml);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, dir) == 0);
    lh_buf_free(&y);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, t.port) == 0);
    REQUIRE(ht_sends(&c, "GET /v1/logs/tail?query=x HTTP/1.1\r\nHost: t\r\n"
                         "Authorization: Bearer " TOKEN "\r\n\r\n") == 0);
    REQUIRE(read_until(&c, "tail started", 2000));
    double t0 = ht_now();
    CHECK(read_until(&c, ": max_duration reached", 2000));
    CHECK(read_until(&c, "0\r\n\r\n", 1000));   /* the stream's last chunk */
    double took = ht_now() - t0;
    CHECK(took > 0.2 && took < 1.5);
    ht_close(&c);
    double end = ht_now() + 2;
    while (tails_open(&t) > 0 && ht_now() < end)
        ht_sleep_ms(20);
    CHECK(tails_open(&t) == 0);
    CHECK_INT(qt_stop(&t), ==, 0);
}

/* Past jobs.max_kept the oldest finished job makes room for a new one (as
 * documented), instead of a 503 until some job expires. */
static int job_status(struct qt *t, const char *id, char *state, size_t size)
{
    char req[256];
    snprintf(req, sizeof(req), "GET /v1/logs/search/jobs/%s HTTP/1.1\r\nHost: t\r\n"
             "Authorization: Bearer " TOKEN "\r\n\r\n", id);
    struct ht_resp r;
    int st = ht_request(t->port, req, &r);
    json_t *j = st == 200 ? json_loads(r.body.data, 0, NULL) : NULL;
    const char *s = j ? json_string_value(json_object_get(j, "status")) : NULL;
    snprintf(state, size, "%s", s ? s : "");
    json_decref(j);
    ht_resp_free(&r);
    return st;
}

TEST(queryd_jobs_past_max_kept_the_oldest_finished_goes)
{
    const char *dir = lh_test_tmpdir();
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, "%sjobs:\n  max_running: 1\n  max_kept: 2\n  ttl: 10m\n", base_yaml);
    struct qt t;
    REQUIRE(qt_start(&t, y.data, dir) == 0);
    lh_buf_free(&y);
    char ids[4][40];
    for (int i = 0; i < 4; i++) {
        int st = 0;
        json_t *j = qt_post_json(&t, "/v1/logs/search/jobs", TOKEN, "{}", &st);
        CHECK_INT(st, ==, 202);
        const char *id = j ? json_string_value(json_object_get(j, "job_id")) : NULL;
        REQUIRE(id != NULL);
        snprintf(ids[i], sizeof(ids[i]), "%s", id);
        json_decref(j);
        char state[32] = "running";
        double end = ht_now() + 5;
        while (strcmp(state, "running") == 0 && ht_now() < end) {
            CHECK_INT(job_status(&t, ids[i], state, sizeof(state)), ==, 200);
            ht_sleep_ms(10);
        }
        CHECK_STR(state, "done");
    }
    char state[32];
    CHECK_INT(job_status(&t, ids[0], state, sizeof(state)), ==, 404);
    CHECK_INT(job_status(&t, ids[1], state, sizeof(state)), ==, 404);
    CHECK_INT(job_status(&t, ids[2], state, sizeof(state)), ==, 200);
    CHECK_INT(job_status(&t, ids[3], state, sizeof(state)), ==, 200);
    CHECK_INT(qt_stop(&t), ==, 0);
}
