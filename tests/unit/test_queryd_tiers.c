/* test_queryd_tiers.c - a query over two tiers: the embedded store for the
 * last two hours and the archive (a directory, Parquet objects per hour, as
 * the indexer writes them) for everything older. Pages walk from one tier
 * into the next without skipping or repeating; totals and aggregations add
 * up; an archive-only queryd answers alone. */
#include "../lh_test.h"
#include "queryd_test_util.h"
#include "store_testlib.h"

#include "lh/archive.h"
#include "lh/time.h"

#define TOKEN "acme-token-1"

static int ev_newest_first(const void *a, const void *b)
{
    const struct lh_event *x = a, *y = b;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns > y->ts_ns ? -1 : 1;
    return -strcmp(x->id, y->id);
}

/* Writes evs (sorted by time) into the archive, one object per hour. */
static int archive_hours(const char *dir, struct lh_event *evs, size_t n)
{
    struct lh_archive_config cfg = { .type = LH_ARCHIVE_DIR, .format = LH_ARCHIVE_PARQUET,
                                     .zstd_level = 3, .dir = { .path = (char *)dir } };
    struct lh_archive *a = NULL;
    struct lh_err err = { 0 };
    if (lh_archive_open(&a, &cfg, &err) < 0) {
        fprintf(stderr, "    archive: %s\n", err.msg);
        return -1;
    }
    int64_t hour = 3600 * LH_NS_PER_SEC;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int64_t h = evs[i].ts_ns / hour;
        while (j < n && evs[j].ts_ns / hour == h)
            j++;
        if (lh_archive_write_events(a, "acme", evs[i].ts_ns, "eu", "h1", &evs[i], j - i, NULL,
                                    &err) < 0) {
            fprintf(stderr, "    archive write: %s\n", err.msg);
            lh_archive_close(a);
            return -1;
        }
        i = j;
    }
    lh_archive_close(a);
    return 0;
}

static int ev_oldest_first(const void *a, const void *b) { return -ev_newest_first(a, b); }

TEST(queryd_store_and_archive_tiers)
{
    const char *dir = lh_test_tmpdir();
    char sdir[600], adir[600];
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    snprintf(adir, sizeof(adir), "%s/archive", dir);
    struct lh_arena a = LH_ARENA_INIT;
    struct tgen g = { 555, &a, 0, { 0 }, 0 };
    int64_t now = lh_time_now_ns(), hour = 3600 * LH_NS_PER_SEC;
    size_t n = 1500;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    tg_new_batch(&g);
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "acme", now - 6 * hour, 6 * hour - LH_NS_PER_SEC);
    qsort(evs, n, sizeof(*evs), ev_oldest_first);
    /* the archive holds everything; the store the last two hours */
    REQUIRE(archive_hours(adir, evs, n) == 0);
    size_t first_recent = 0;
    while (first_recent < n && evs[first_recent].ts_ns < now - 2 * hour)
        first_recent++;
    struct lh_store *w = qt_store_writer(sdir);
    REQUIRE(w);
    REQUIRE_INT(lh_store_append(w, evs + first_recent, n - first_recent, NULL, NULL), ==, 0);
    lh_store_close(w);
    qsort(evs, n, sizeof(*evs), ev_newest_first);

    static const char yaml[] =
        "tenants: [ { name: acme, tokens: [" TOKEN "] } ]\n"
        "cursor: { key: tier-test-cursor-key-0123 }\n"
        "tiers:\n"
        "  - type: store\n"
        "    max_age: 2h\n"
        "    store: { dir: %s/store }\n"
        "  - type: archive\n"
        "    archive: { type: dir, dir: { path: %s/archive } }\n";
    char y[1024];
    snprintf(y, sizeof(y), yaml, dir, dir);
    struct qt t;
    REQUIRE(qt_start(&t, y, NULL) == 0);

    /* a walk over 24 h: the newest hits from the store, then the archive */
    char cursor[1024] = "";
    size_t k = 0, pages = 0;
    int order_ok = 1, saw_store = 0, saw_archive = 0;
    long long total = -1;
    for (;;) {
        char body[1400];
        snprintf(body, sizeof(body), "{\"pagination\":{\"limit\":97%s%s%s}}",
                 cursor[0] ? ",\"cursor\":\"" : "", cursor, cursor[0] ? "\"" : "");
        int st;
        json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN, body, &st);
        REQUIRE_INT(st, ==, 200);
        if (pages++ == 0)
            total = json_integer_value(json_object_get(j, "total_hits"));
        json_t *tier;
        size_t ti;
        json_array_foreach(json_object_get(j, "tiers"), ti, tier) {
            saw_store |= strcmp(json_string_value(tier), "store") == 0;
            saw_archive |= strcmp(json_string_value(tier), "archive") == 0;
        }
        json_t *h;
        size_t i;
        json_array_foreach(json_object_get(j, "logs"), i, h) {
            const char *id = json_string_value(json_object_get(h, "id"));
            if (k >= n || strcmp(id, evs[k].id) != 0)
                order_ok = 0;
            k++;
        }
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        if (next)
            snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(j);
        if (!next)
            break;
    }
    CHECK_INT(k, ==, n);
    CHECK(order_ok);
    CHECK_INT(total, ==, n);
    CHECK(saw_store && saw_archive);

    /* a filter and full text over both tiers, against the reference */
    struct lh_store_pred p = { "level", LH_STORE_EQ, "ERROR", NULL, 0 };
    static const char *const words[] = { "timeout" };
    struct lh_store_query ref = { .tenant = "acme", .terms = words, .nterms = 1, .preds = &p,
                                  .npreds = 1 };
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += ref_match(&evs[i], &ref);
    int st;
    json_t *j = qt_post_json(&t, "/v1/logs/search", TOKEN,
                             "{\"query\":{\"full_text\":\"timeout\",\"filters\":[{\"field\":"
                             "\"level\",\"operator\":\"EQUALS\",\"value\":\"error\"}]},"
                             "\"pagination\":{\"limit\":1000}}", &st);
    CHECK_INT(st, ==, 200);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, want);
    CHECK_INT(json_array_size(json_object_get(j, "logs")), ==, want);
    CHECK(want > 0);
    json_decref(j);

    /* aggregations add up across the tiers */
    char s0[40], s1[40], body[600];
    lh_time_format_rfc3339((now / hour - 6) * hour, 0, s0, sizeof(s0));
    lh_time_format_rfc3339((now / hour + 1) * hour, 0, s1, sizeof(s1));
    snprintf(body, sizeof(body), "{\"query\":{\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}},"
             "\"interval\":\"1h\",\"top\":[{\"field\":\"level\",\"size\":7}]}", s0, s1);
    j = qt_post_json(&t, "/v1/logs/aggregate", TOKEN, body, &st);
    CHECK_INT(st, ==, 200);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, n);
    long long levels = 0;
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(json_array_get(json_object_get(j, "top"), 0), "values"),
                       i, v)
        levels += json_integer_value(json_object_get(v, "count"));
    CHECK_INT(levels, ==, n);
    CHECK_INT(json_array_size(json_object_get(j, "tiers")), ==, 2);
    json_decref(j);
    CHECK_INT(qt_stop(&t), ==, 0);

    /* the archive alone, with a filter on metadata: the reference again */
    static const char yaml2[] =
        "tenants: [ { name: acme, tokens: [" TOKEN "] } ]\n"
        "tiers:\n"
        "  - type: archive\n"
        "    archive: { type: dir, dir: { path: %s/archive } }\n";
    snprintf(y, sizeof(y), yaml2, dir);
    REQUIRE(qt_start(&t, y, NULL) == 0);
    struct lh_store_pred mp = { "metadata.duration_ms", LH_STORE_GE, "250", NULL, 0 };
    struct lh_store_query ref2 = { .tenant = "acme", .preds = &mp, .npreds = 1 };
    want = 0;
    for (size_t e = 0; e < n; e++)
        want += ref_match(&evs[e], &ref2);
    j = qt_post_json(&t, "/v1/logs/search", TOKEN,
                     "{\"query\":{\"filters\":[{\"field\":\"metadata.duration_ms\",\"operator\":"
                     "\"GTE\",\"value\":250}]},\"pagination\":{\"limit\":1000}}", &st);
    CHECK_INT(st, ==, 200);
    CHECK_INT(json_integer_value(json_object_get(j, "total_hits")), ==, want);
    CHECK_STR(json_string_value(json_array_get(json_object_get(j, "tiers"), 0)), "archive");
    json_decref(j);
    CHECK_INT(qt_stop(&t), ==, 0);
    lh_arena_free(&a);
}
