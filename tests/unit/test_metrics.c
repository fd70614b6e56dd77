/* Unit tests for metrics.c: registry, atomics, Prometheus text rendering. */
#include "../lh_test.h"
#include "leak_check.h"
#include "lh/err.h"
#include "lh/log.h"
#include "lh/metrics.h"

#include <math.h>
#include <pthread.h>

static char *render(struct lh_metrics *m, struct lh_buf *b)
{
    lh_buf_reset(b);
    if (lh_metrics_render(m, b) < 0)
        return NULL;
    return b->data ? b->data : "";
}

TEST(metrics_render_exact_text)
{
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    struct lh_counter *in = lh_counter_get(m, "lh_events_in_total", "Events accepted.", NULL);
    struct lh_counter *drop_big = lh_counter_get(m, "lh_events_dropped_total",
                                                 "Events dropped.", "reason=\"too_big\"");
    struct lh_counter *drop_bad = lh_counter_get(m, "lh_events_dropped_total", "ignored help",
                                                 "reason=\"bad_json\"");
    struct lh_gauge *q = lh_gauge_get(m, "lh_queue_depth", "Queued batches.\nNow.", "");
    static const double b[] = { 0.1, 1, 2.5 };
    struct lh_histogram *h = lh_histogram_get(m, "lh_flush_seconds", "Flush \\ latency.",
                                              "sink=\"os\"", b, 3);
    REQUIRE(in && drop_big && drop_bad && q && h);
    lh_counter_add(in, 12345678901ull);
    lh_counter_add(drop_big, 2);
    lh_counter_add(drop_big, 1);
    lh_gauge_set(q, 7);
    lh_gauge_add(q, -0.5);
    lh_histogram_observe(h, 0.0625);
    lh_histogram_observe(h, 1);
    lh_histogram_observe(h, 2);
    lh_histogram_observe(h, 100);
    struct lh_buf out = LH_BUF_INIT;
    const char *want =
        "# HELP lh_events_in_total Events accepted.\n"
        "# TYPE lh_events_in_total counter\n"
        "lh_events_in_total 12345678901\n"
        "# HELP lh_events_dropped_total Events dropped.\n"
        "# TYPE lh_events_dropped_total counter\n"
        "lh_events_dropped_total{reason=\"too_big\"} 3\n"
        "lh_events_dropped_total{reason=\"bad_json\"} 0\n"
        "# HELP lh_queue_depth Queued batches.\\nNow.\n"
        "# TYPE lh_queue_depth gauge\n"
        "lh_queue_depth 6.5\n"
        "# HELP lh_flush_seconds Flush \\\\ latency.\n"
        "# TYPE lh_flush_seconds histogram\n"
        "lh_flush_seconds_bucket{sink=\"os\",le=\"0.1\"} 1\n"
        "lh_flush_seconds_bucket{sink=\"os\",le=\"1\"} 2\n"
        "lh_flush_seconds_bucket{sink=\"os\",le=\"2.5\"} 3\n"
        "lh_flush_seconds_bucket{sink=\"os\",le=\"+Inf\"} 4\n"
        "lh_flush_seconds_sum{sink=\"os\"} 103.0625\n"
        "lh_flush_seconds_count{sink=\"os\"} 4\n";
    CHECK_STR(render(m, &out), want);
    lh_buf_free(&out);
    lh_metrics_destroy(m);
    CHECK_INT(lh_test_leaks(), ==, 0);
}

TEST(metrics_histogram_bucket_math)
{
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    static const double b[] = { 1, 2, 5 };
    struct lh_histogram *h = lh_histogram_get(m, "h", "h", NULL, b, 3);
    REQUIRE(h);
    /* le is inclusive: 1 falls in le="1", 2 in le="2", 5 in le="5". */
    const double obs[] = { 0.5, 1, 1.5, 2, 3, 5, 7, 100, -3, NAN };
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        lh_histogram_observe(h, obs[i]);
    struct lh_buf out = LH_BUF_INIT;
    const char *text = render(m, &out);
    CHECK_CONTAINS(text, "h_bucket{le=\"1\"} 3\n");      /* -3, 0.5, 1 */
    CHECK_CONTAINS(text, "h_bucket{le=\"2\"} 5\n");      /* + 1.5, 2 */
    CHECK_CONTAINS(text, "h_bucket{le=\"5\"} 7\n");      /* + 3, 5 */
    CHECK_CONTAINS(text, "h_bucket{le=\"+Inf\"} 9\n");   /* + 7, 100; NaN ignored */
    CHECK_CONTAINS(text, "h_sum 117\n");
    CHECK_CONTAINS(text, "h_count 9\n");
    /* Default latency buckets: ascending, 1 ms .. 30 s. */
    REQUIRE_INT(lh_latency_nbuckets, >, 2);
    CHECK(lh_latency_buckets[0] == 0.001);
    CHECK(lh_latency_buckets[lh_latency_nbuckets - 1] == 30);
    for (size_t i = 1; i < lh_latency_nbuckets; i++)
        CHECK(lh_latency_buckets[i] > lh_latency_buckets[i - 1]);
    struct lh_histogram *lat = lh_histogram_get(m, "lat_seconds", "l", NULL, lh_latency_buckets,
                                                lh_latency_nbuckets);
    REQUIRE(lat);
    lh_histogram_observe(lat, 0.004);
    text = render(m, &out);
    CHECK_CONTAINS(text, "lat_seconds_bucket{le=\"0.0025\"} 0\n"
                         "lat_seconds_bucket{le=\"0.005\"} 1\n");
    CHECK_CONTAINS(text, "lat_seconds_bucket{le=\"30\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 1\n");
    /* A histogram without bounds has only +Inf. */
    struct lh_histogram *none = lh_histogram_get(m, "none", "n", NULL, NULL, 0);
    REQUIRE(none);
    lh_histogram_observe(none, 3);
    text = render(m, &out);
    CHECK_CONTAINS(text, "# TYPE none histogram\nnone_bucket{le=\"+Inf\"} 1\nnone_sum 3\n"
                         "none_count 1\n");
    lh_buf_free(&out);
    lh_metrics_destroy(m);
}

struct worker {
    struct lh_counter *c;
    struct lh_gauge *g;
    struct lh_histogram *h;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 100000; i++) {
        lh_counter_add(w->c, 1);
        lh_gauge_add(w->g, 1.0);
        lh_histogram_observe(w->h, (i & 1) ? 0.5 : 2.0);
    }
    return NULL;
}

TEST(metrics_concurrent_updates_are_exact)
{
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    static const double b[] = { 1 };
    struct worker w = {
        lh_counter_get(m, "c_total", "c", NULL),
        lh_gauge_get(m, "g", "g", NULL),
        lh_histogram_get(m, "h", "h", NULL, b, 1),
    };
    REQUIRE(w.c && w.g && w.h);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        REQUIRE_INT(pthread_create(&t[i], NULL, work, &w), ==, 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(lh_counter_value(w.c), ==, 400000);
    CHECK(lh_gauge_value(w.g) == 400000.0);
    struct lh_buf out = LH_BUF_INIT;
    const char *text = render(m, &out);
    CHECK_CONTAINS(text, "c_total 400000\n");
    CHECK_CONTAINS(text, "g 400000\n");
    CHECK_CONTAINS(text, "h_bucket{le=\"1\"} 200000\nh_bucket{le=\"+Inf\"} 400000\n");
    CHECK_CONTAINS(text, "h_sum 500000\nh_count 400000\n");
    lh_buf_free(&out);
    lh_metrics_destroy(m);
}

struct reg_arg {
    struct lh_metrics *m;
    int id;
    struct lh_counter *got[200];
};

static void *register_many(void *arg)
{
    struct reg_arg *r = arg;
    for (int i = 0; i < 200; i++) {
        char lb[64];
        snprintf(lb, sizeof(lb), "tenant=\"t%d\"", i);
        r->got[i] = lh_counter_get(r->m, "per_tenant_total", "p", lb);
        lh_counter_add(r->got[i], 1);
    }
    return NULL;
}

TEST(metrics_same_series_same_pointer)
{
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    struct lh_counter *a = lh_counter_get(m, "x_total", "x", "k=\"v\"");
    CHECK(a != NULL);
    CHECK(lh_counter_get(m, "x_total", "x", "k=\"v\"") == a);
    CHECK(lh_counter_get(m, "x_total", "x", "k=\"w\"") != a);
    struct lh_counter *plain = lh_counter_get(m, "x_total", "x", NULL);
    CHECK(plain != NULL && plain != a);
    CHECK(lh_counter_get(m, "x_total", "x", "") == plain);   /* NULL and "" are the same */
    struct lh_gauge *g = lh_gauge_get(m, "y", "y", NULL);
    CHECK(g && lh_gauge_get(m, "y", "y", NULL) == g);
    static const double b[] = { 1, 2 };
    struct lh_histogram *h = lh_histogram_get(m, "z", "z", NULL, b, 2);
    CHECK(h && lh_histogram_get(m, "z", "z", NULL, b, 2) == h);

    /* Concurrent registration of the same 200 series from 4 threads (the
     * hash table grows meanwhile): one pointer per series, exact counts. */
    struct reg_arg r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i].m = m;
        r[i].id = i;
        REQUIRE_INT(pthread_create(&t[i], NULL, register_many, &r[i]), ==, 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 200; i++) {
        REQUIRE(r[0].got[i] != NULL);
        CHECK(r[1].got[i] == r[0].got[i] && r[2].got[i] == r[0].got[i] &&
              r[3].got[i] == r[0].got[i]);
        CHECK_INT(lh_counter_value(r[0].got[i]), ==, 4);
    }
    struct lh_buf out = LH_BUF_INIT;
    const char *text = render(m, &out);
    CHECK_CONTAINS(text, "per_tenant_total{tenant=\"t0\"} 4\nper_tenant_total{tenant=\"t1\"} 4\n");
    CHECK_CONTAINS(text, "per_tenant_total{tenant=\"t199\"} 4\n");
    const char *first = strstr(text, "# TYPE per_tenant_total");
    CHECK(first && !strstr(first + 1, "# TYPE per_tenant_total"));   /* once per name */
    lh_buf_free(&out);
    lh_metrics_destroy(m);
}

static double read_double(void *arg) { return *(double *)arg; }

TEST(metrics_type_clash_returns_null)
{
    lh_log_set_level(LH_LOG_OFF);           /* the clashes are logged as errors */
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    static const double b[] = { 1 };
    double v = 1;
    CHECK(lh_counter_get(m, "a", "a", NULL) != NULL);
    CHECK(lh_gauge_get(m, "a", "a", NULL) == NULL);
    CHECK(lh_gauge_get(m, "a", "a", "x=\"1\"") == NULL);
    CHECK(lh_histogram_get(m, "a", "a", NULL, b, 1) == NULL);
    CHECK_INT(lh_gauge_fn(m, "a", "a", NULL, read_double, &v), ==, LH_EINVAL);
    CHECK(lh_gauge_get(m, "g", "g", NULL) != NULL);
    CHECK(lh_counter_get(m, "g", "g", NULL) == NULL);
    CHECK(lh_histogram_get(m, "hh", "h", NULL, b, 1) != NULL);
    CHECK(lh_counter_get(m, "hh", "h", NULL) == NULL);
    static const double b2[] = { 2 };
    CHECK(lh_histogram_get(m, "hh", "h", NULL, b2, 1) == NULL);   /* other buckets */
    static const double unsorted[] = { 2, 1 };
    CHECK(lh_histogram_get(m, "hu", "h", NULL, unsorted, 2) == NULL);
    CHECK(lh_counter_get(m, "bad-name", "b", NULL) == NULL);
    CHECK(lh_counter_get(m, "9lives", "b", NULL) == NULL);
    /* NULL-safe updates. */
    lh_counter_add(NULL, 1);
    lh_gauge_set(NULL, 1);
    lh_gauge_add(NULL, 1);
    lh_histogram_observe(NULL, 1);
    CHECK_INT(lh_counter_value(NULL), ==, 0);
    struct lh_buf out = LH_BUF_INIT;
    const char *text = render(m, &out);
    CHECK(!strstr(text, "hu"));                 /* failed registrations leave no trace */
    CHECK(!strstr(text, "bad-name"));
    lh_buf_free(&out);
    lh_metrics_destroy(m);
    lh_metrics_destroy(NULL);
    CHECK_INT(lh_test_leaks(), ==, 0);
}

TEST(metrics_callback_gauges)
{
    lh_log_set_level(LH_LOG_OFF);           /* the refused registrations are logged */
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    double depth = 3, disk = 1.5e12;
    CHECK_INT(lh_gauge_fn(m, "lh_spool_depth", "Depth.", "q=\"a\"", read_double, &depth), ==, 0);
    CHECK_INT(lh_gauge_fn(m, "lh_disk_bytes", "Disk.", NULL, read_double, &disk), ==, 0);
    CHECK_INT(lh_gauge_fn(m, "lh_spool_depth", "Depth.", "q=\"a\"", read_double, &depth), ==,
              LH_EINVAL);
    CHECK(lh_gauge_get(m, "lh_spool_depth", "Depth.", "q=\"a\"") == NULL);   /* computed */
    struct lh_gauge *plain = lh_gauge_get(m, "lh_spool_depth", "Depth.", "q=\"b\"");
    REQUIRE(plain);
    lh_gauge_set(plain, 0.25);
    struct lh_buf out = LH_BUF_INIT;
    CHECK_STR(render(m, &out),
              "# HELP lh_spool_depth Depth.\n"
              "# TYPE lh_spool_depth gauge\n"
              "lh_spool_depth{q=\"a\"} 3\n"
              "lh_spool_depth{q=\"b\"} 0.25\n"
              "# HELP lh_disk_bytes Disk.\n"
              "# TYPE lh_disk_bytes gauge\n"
              "lh_disk_bytes 1500000000000\n");
    depth = 42;
    disk = INFINITY;
    const char *text = render(m, &out);
    CHECK_CONTAINS(text, "lh_spool_depth{q=\"a\"} 42\n");
    CHECK_CONTAINS(text, "lh_disk_bytes +Inf\n");
    depth = 0.1;
    disk = NAN;
    text = render(m, &out);
    CHECK_CONTAINS(text, "lh_spool_depth{q=\"a\"} 0.1\n");
    CHECK_CONTAINS(text, "lh_disk_bytes NaN\n");
    lh_buf_free(&out);
    lh_metrics_destroy(m);
}

TEST(metrics_label_escaping)
{
    char buf[128];
    CHECK_STR(lh_metrics_label(buf, sizeof(buf), "tenant", "acme"), "tenant=\"acme\"");
    CHECK_STR(lh_metrics_label(buf, sizeof(buf), "path", "C:\\logs\\\"x\"\nend"),
              "path=\"C:\\\\logs\\\\\\\"x\\\"\\nend\"");
    CHECK_STR(lh_metrics_label(buf, sizeof(buf), "k", ""), "k=\"\"");
    CHECK_STR(lh_metrics_label(buf, sizeof(buf), "k", NULL), "k=\"\"");
    /* Truncation keeps the text well-formed: no split escape, closing quote. */
    char small[10];
    CHECK_STR(lh_metrics_label(small, sizeof(small), "k", "abcdefghij"), "k=\"abcde\"");
    CHECK_STR(lh_metrics_label(small, sizeof(small), "k", "abcd\"efg"), "k=\"abcd\"");
    CHECK_STR(lh_metrics_label(small, sizeof(small), "k", "abc\"efg"), "k=\"abc\\\"\"");
    CHECK_STR(lh_metrics_label(small, 3, "key", "v"), "");

    /* Escaped labels render as given and stay distinct series. */
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    char lb[256], a[128], b[128];
    snprintf(lb, sizeof(lb), "%s,%s", lh_metrics_label(a, sizeof(a), "tenant", "a\"b"),
             lh_metrics_label(b, sizeof(b), "reason", "x\\y"));
    struct lh_counter *c = lh_counter_get(m, "e_total", "e", lb);
    REQUIRE(c);
    lh_counter_add(c, 5);
    struct lh_buf out = LH_BUF_INIT;
    CHECK_CONTAINS(render(m, &out), "e_total{tenant=\"a\\\"b\",reason=\"x\\\\y\"} 5\n");
    lh_buf_free(&out);
    lh_metrics_destroy(m);
}
