/* Unit tests for the indexer's archive sink (staging, sealing, uploads,
 * recovery, backpressure) over the archive's dir backend, and the seed's log
 * triage through the pipeline: WARN and above to the store, all to the
 * archive. */
#include "../lh_test.h"
#include "../../indexer/pipeline.h"
#include "../../indexer/sink_archive.h"
#include "../../indexer/sink_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "lh/archive.h"
#include "lh/log.h"
#include "lh/store.h"

static char *tpath(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", lh_test_tmpdir(), name);
    return buf[k];
}

static void dir_backend(struct lh_archive_config *b)
{
    memset(b, 0, sizeof(*b));
    b->type = LH_ARCHIVE_DIR;
    b->format = LH_ARCHIVE_PARQUET;
    b->zstd_level = 3;
    b->dir.path = tpath("archive");
    b->dir.fsync = 1;
}

static void s3_down_backend(struct lh_archive_config *b)
{
    memset(b, 0, sizeof(*b));
    b->type = LH_ARCHIVE_S3;
    b->format = LH_ARCHIVE_PARQUET;
    b->zstd_level = 3;
    b->s3.endpoint = "http://127.0.0.1:1";
    b->s3.bucket = "loghaul";
    b->s3.region = "us-east-1";
    b->s3.access_key = "k";
    b->s3.secret_key = "s";
    b->s3.addressing = 1;
    b->s3.connect_timeout_ms = 200;
    b->s3.timeout_ms = 500;
    b->s3.retries = 0;
    b->s3.retry_base_ms = 10;
    b->s3.retry_max_ms = 10;
    b->s3.part_size = 16u << 20;
    b->s3.multipart_threshold = 64u << 20;
    b->s3.tls_verify = 1;
}

static struct lh_sink *make_sink(const struct lh_archive_config *b, int64_t rollover_ms,
                                 uint64_t object_bytes, uint64_t max_staging, int64_t shutdown_ms)
{
    struct lh_sink_archive_config c;
    memset(&c, 0, sizeof(c));
    c.backend = *b;
    c.staging_dir = tpath("staging");
    c.rollover_ms = rollover_ms;
    c.object_bytes = object_bytes;
    c.max_staging_bytes = max_staging;
    c.region = "eu-west-1";
    c.host = "idx-1";
    c.shutdown_upload_ms = shutdown_ms;
    c.replay_window_ms = 60000;
    struct lh_sink *s = NULL;
    struct lh_err err = { 0 };
    if (lh_sink_archive_create(&c, "archive", NULL, &s, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "archive sink: %s", err.msg);
    return s;
}

#define HOUR 3600000000000LL
static const int64_t T0 = 1779523200000000000LL;   /* 2026-05-23T08:00:00Z */

/* Events i of n: tenants acme/globex, hours 08 and 09, times descending
 * within each so that the sort shows. */
static void make_events(struct lh_event *evs, char (*ids)[48], size_t n, size_t base)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = base + i;
        memset(&evs[i], 0, sizeof(evs[i]));
        snprintf(ids[i], 48, "00000000000000000000000000000001-%zu", k);
        evs[i].id = ids[i];
        evs[i].tenant = k % 2 ? "globex" : "acme";
        evs[i].ts_ns = T0 + (k % 4 < 2 ? 0 : HOUR) + (int64_t)(1000 - k) * 1000000;
        evs[i].level = LH_LEVEL_INFO;
        evs[i].message = "archived line";
        evs[i].raw = "archived line";
        evs[i].host = "web-1";
    }
}

static size_t count_stage_files(void)
{
    DIR *d = opendir(tpath("staging"));
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".stage") != NULL;
    if (d)
        closedir(d);
    return n;
}

static int wait_objects(struct lh_sink *s, uint64_t want)
{
    for (int i = 0; i < 500; i++) {
        struct lh_sink_archive_stats st;
        lh_sink_archive_stats(s, &st);
        if (st.objects >= want && st.staged_files == 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* Reads every object of the archive: returns the event count, checks keys
 * and order. */
static size_t read_archive(size_t *nobjects, char *first_key, size_t keysize)
{
    struct lh_archive_config b;
    dir_backend(&b);
    struct lh_archive *ar = NULL;
    struct lh_err err = { 0 };
    if (lh_archive_open(&ar, &b, &err) < 0) {
        lh_test_fail(__FILE__, __LINE__, "archive: %s", err.msg);
        return 0;
    }
    struct lh_archive_list l = { 0 };
    if (lh_archive_list(ar, "", &l, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "list: %s", err.msg);
    size_t total = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct lh_arena a = LH_ARENA_INIT;
        struct lh_event *evs = NULL;
        size_t n = 0;
        if (lh_archive_read_events(ar, l.items[i].key, &a, &evs, &n, &err) < 0)
            lh_test_fail(__FILE__, __LINE__, "read %s: %s", l.items[i].key, err.msg);
        for (size_t k = 1; k < n; k++)
            if (evs[k].ts_ns < evs[k - 1].ts_ns)
                lh_test_fail(__FILE__, __LINE__, "%s: events not in time order",
                             l.items[i].key);
        /* Every event of an object has the object's tenant and hour. */
        for (size_t k = 0; k < n; k++) {
            char prefix[256];
            lh_archive_hour_prefix(prefix, sizeof(prefix), evs[k].tenant, evs[k].ts_ns);
            if (strncmp(l.items[i].key, prefix, strlen(prefix)) != 0)
                lh_test_fail(__FILE__, __LINE__, "%s holds an event of %s", l.items[i].key,
                             prefix);
        }
        if (i == 0 && first_key)
            snprintf(first_key, keysize, "%s", l.items[i].key);
        total += n;
        lh_arena_free(&a);
    }
    *nobjects = l.n;
    lh_archive_list_free(&l);
    lh_archive_close(ar);
    return total;
}

TEST(archive_sink_stages_durably_then_uploads_one_object_per_tenant_and_hour)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_archive_config b;
    dir_backend(&b);
    struct lh_sink *s = make_sink(&b, 60000, 32u << 20, 1u << 30, 5000);
    REQUIRE(s != NULL);
    struct lh_event evs[40];
    char ids[40][48];
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    for (int w = 0; w < 4; w++) {
        make_events(evs, ids, 10, (size_t)w * 10);
        REQUIRE_INT(lh_sink_write(s, evs, 10, &rep, &err), ==, 0);
    }
    CHECK_INT(rep.written, ==, 40);
    struct lh_sink_archive_stats st;
    lh_sink_archive_stats(s, &st);
    CHECK_INT(st.staged_files, ==, 4);
    CHECK(st.staged_bytes > 40 * 100);
    CHECK_INT(st.objects, ==, 0);
    CHECK_INT(count_stage_files(), ==, 4);
    /* Not yet a minute old: flush seals nothing. */
    CHECK_INT(lh_sink_flush(s, &err), ==, 0);
    lh_sink_archive_stats(s, &st);
    CHECK_INT(st.objects, ==, 0);
    lh_sink_archive_seal_all(s);
    REQUIRE(wait_objects(s, 4));
    CHECK_INT(count_stage_files(), ==, 0);
    size_t nobj = 0;
    char key[1024] = "";
    CHECK_INT(read_archive(&nobj, key, sizeof(key)), ==, 40);
    CHECK_INT(nobj, ==, 4);
    CHECK_CONTAINS(key, "acme/year=2026/month=05/day=23/hour=08/eu-west-1_idx-1_");
    CHECK_CONTAINS(key, ".parquet");
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
}

TEST(archive_sink_cuts_objects_by_size_and_by_age)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_archive_config b;
    dir_backend(&b);
    /* Size: 2 KiB objects. */
    struct lh_sink *s = make_sink(&b, 60000, 2048, 1u << 30, 5000);
    struct lh_event evs[40];
    char ids[40][48];
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    for (int w = 0; w < 8; w++) {
        make_events(evs, ids, 40, (size_t)w * 40);
        for (int i = 0; i < 40; i++)
            evs[i].tenant = "acme", evs[i].ts_ns = T0 + i;
        REQUIRE_INT(lh_sink_write(s, evs, 40, &rep, &err), ==, 0);
    }
    struct lh_sink_archive_stats st;
    for (int i = 0; i < 500; i++) {
        lh_sink_archive_stats(s, &st);
        if (st.objects >= 4)
            break;
        usleep(10000);
    }
    CHECK(st.objects >= 4);       /* sealed by size, without any flush */
    lh_sink_destroy(s);           /* seals the rest and uploads it */
    size_t nobj = 0;
    CHECK_INT(read_archive(&nobj, NULL, 0), ==, 320);
    CHECK(nobj >= 5);
    CHECK_INT(count_stage_files(), ==, 0);

    /* Age: a 50 ms rollover; flush seals once it passed. */
    struct lh_archive_config b2;
    dir_backend(&b2);
    s = make_sink(&b2, 50, 32u << 20, 1u << 30, 5000);
    make_events(evs, ids, 4, 1000);
    for (int i = 0; i < 4; i++)
        evs[i].ts_ns = T0 + i;    /* acme and globex, one hour: two objects */
    REQUIRE_INT(lh_sink_write(s, evs, 4, &rep, &err), ==, 0);
    usleep(80000);
    CHECK_INT(lh_sink_flush(s, &err), ==, 0);
    CHECK(wait_objects(s, 2));
    lh_sink_archive_stats(s, &st);
    CHECK_INT(st.objects, ==, 2);
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
}

TEST(archive_sink_keeps_staging_while_uploads_fail_then_recovers_it)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_archive_config down;
    s3_down_backend(&down);
    /* Uploads fail: writes still succeed (durably staged) up to
     * max_staging, then EFULL. */
    struct lh_sink *s = make_sink(&down, 60000, 1024, 8192, 0);
    REQUIRE(s != NULL);
    struct lh_event evs[10];
    char ids[10][48];
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    int rc = 0, writes = 0;
    for (; writes < 100 && rc == 0; writes++) {
        make_events(evs, ids, 10, (size_t)writes * 10);
        rc = lh_sink_write(s, evs, 10, &rep, &err);
    }
    CHECK_INT(rc, ==, LH_EFULL);
    CHECK_CONTAINS(err.msg, "max_staging");
    CHECK(writes > 3);
    uint64_t written = rep.written;
    CHECK_INT(written, ==, (uint64_t)(writes - 1) * 10);
    struct lh_sink_archive_stats st;
    for (int i = 0; i < 300; i++) {
        lh_sink_archive_stats(s, &st);
        if (st.upload_errors > 0)
            break;
        usleep(10000);
    }
    CHECK(st.upload_errors > 0);
    CHECK_INT(lh_sink_flush(s, &err), ==, LH_EUNAVAIL);
    CHECK_CONTAINS(err.msg, "uploads fail");
    CHECK_INT(lh_sink_ready(s, &err), ==, LH_EUNAVAIL);
    lh_sink_destroy(s);           /* shutdown_upload 0: everything stays staged */
    size_t left = count_stage_files();
    CHECK(left > 0);

    /* A torn last line (a write that never returned) is skipped. */
    DIR *d = opendir(tpath("staging"));
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".stage")) {
            char p[1200];
            snprintf(p, sizeof(p), "%s/%s", tpath("staging"), e->d_name);
            int fd = open(p, O_WRONLY | O_APPEND);
            CHECK(write(fd, "{\"id\":\"torn", 11) == 11);
            close(fd);
            break;
        }
    if (d)
        closedir(d);

    /* The next start uploads what was left, to the working backend. */
    struct lh_archive_config up;
    dir_backend(&up);
    s = make_sink(&up, 60000, 1024, 1u << 30, 5000);
    REQUIRE(wait_objects(s, left));
    size_t nobj = 0;
    CHECK_INT(read_archive(&nobj, NULL, 0), ==, written);
    CHECK_INT(nobj, ==, left);
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
}

TEST(archive_sink_does_not_archive_twice_what_the_bus_replays_after_a_crash)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_archive_config down;
    s3_down_backend(&down);
    /* A run stages events 0..29 and dies before uploading (and before the
     * bus position moved past 20..29). */
    struct lh_sink *s = make_sink(&down, 60000, 32u << 20, 1u << 30, 0);
    REQUIRE(s != NULL);
    struct lh_event evs[30];
    char ids[30][48];
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    make_events(evs, ids, 30, 0);
    REQUIRE_INT(lh_sink_write(s, evs, 30, &rep, &err), ==, 0);
    lh_sink_destroy(s);
    CHECK(count_stage_files() > 0);

    /* The next run gets 20..29 again from the bus, then 30..49. */
    struct lh_archive_config up;
    dir_backend(&up);
    s = make_sink(&up, 60000, 32u << 20, 1u << 30, 5000);
    make_events(evs, ids, 30, 20);
    struct lh_sink_report rep2 = { 0 };
    REQUIRE_INT(lh_sink_write(s, evs, 30, &rep2, &err), ==, 0);
    CHECK_INT(rep2.written, ==, 30);        /* acknowledged, replayed ones included */
    lh_sink_archive_seal_all(s);
    lh_sink_destroy(s);

    /* Every id 0..49 once. */
    struct lh_archive *ar = NULL;
    REQUIRE_INT(lh_archive_open(&ar, &up, &err), ==, 0);
    struct lh_archive_list l = { 0 };
    REQUIRE_INT(lh_archive_list(ar, "", &l, &err), ==, 0);
    int seen[50] = { 0 }, total = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct lh_arena a = LH_ARENA_INIT;
        struct lh_event *got = NULL;
        size_t n = 0;
        REQUIRE_INT(lh_archive_read_events(ar, l.items[i].key, &a, &got, &n, &err), ==, 0);
        for (size_t k = 0; k < n; k++) {
            const char *dash = strrchr(got[k].id, '-');
            int idx = dash ? atoi(dash + 1) : -1;
            if (idx >= 0 && idx < 50)
                seen[idx]++;
            total++;
        }
        lh_arena_free(&a);
    }
    CHECK_INT(total, ==, 50);
    for (int i = 0; i < 50; i++)
        if (seen[i] != 1)
            lh_test_fail(__FILE__, __LINE__, "event %d archived %d times", i, seen[i]);
    lh_archive_list_free(&l);
    lh_archive_close(ar);
    lh_sink_report_free(&rep);
    lh_sink_report_free(&rep2);
}

/* ---- the seed's log triage through the pipeline ---- */

struct scfg {
    struct lh_stages_config s;
};
static const struct lh_opt scfg_opts[] = { LH_STAGES_OPTS(struct scfg, s), { 0 } };

TEST(pipeline_log_triage_warn_and_above_to_the_store_everything_to_the_archive)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_bus_config bc = { 0 };
    bc.type = LH_BUS_SPOOL;
    bc.spool.dir = tpath("spool");
    bc.spool.segment_bytes = 1u << 20;
    bc.spool.group_commit_ms = 1;
    bc.spool.fsync = 1;
    struct lh_bus *bus = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_bus_open(&bc, NULL, &bus, &err) == 0);
    /* 60 events, levels cycling TRACE..FATAL. */
    static const char *const lv[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL" };
    struct lh_buf enc = LH_BUF_INIT;
    size_t ends[60];
    char ids[60][48], raws[60][96];
    for (int i = 0; i < 60; i++) {
        struct lh_event ev = { 0 };
        snprintf(ids[i], sizeof(ids[i]), "00000000000000000000000000000002-%d", i);
        snprintf(raws[i], sizeof(raws[i]), "2026-05-23 08:06:14 [svc] %s t u - event %d",
                 lv[i % 6], i);
        ev.id = ids[i];
        ev.tenant = "acme";
        ev.ts_ns = T0;
        ev.raw = raws[i];
        lh_event_encode(&ev, &enc);
        ends[i] = enc.len;
    }
    struct lh_bus_msg msgs[60];
    for (int i = 0; i < 60; i++) {
        size_t a = i ? ends[i - 1] : 0;
        msgs[i] = (struct lh_bus_msg){ .value = enc.data + a, .value_len = ends[i] - a };
    }
    REQUIRE(lh_bus_produce(bus, "logs", msgs, 60, &err) == 0);
    lh_buf_free(&enc);

    struct lh_store_config sc;
    memset(&sc, 0, sizeof(sc));
    lh_store_config_defaults(&sc);
    sc.dir = tpath("store");
    struct lh_sink *sinks[2] = { NULL, NULL };
    REQUIRE(lh_sink_store_create(&sc, "store", NULL, &sinks[0], &err) == 0);
    struct lh_archive_config b;
    dir_backend(&b);
    sinks[1] = make_sink(&b, 60000, 32u << 20, 1u << 30, 5000);
    const char *yaml = "routes:\n"
                       "  - {name: hot, min_level: WARN, sinks: [store]}\n"
                       "  - {name: archive, sinks: [archive]}\n";
    struct scfg c;
    memset(&c, 0, sizeof(c));
    REQUIRE(lh_conf_load_string("t", yaml, strlen(yaml), scfg_opts, &c, &err) == 0);
    char pat[4096];
    snprintf(pat, sizeof(pat), "%s/../../config/patterns", lh_test_build_dir());
    if (access(pat, R_OK) != 0)
        snprintf(pat, sizeof(pat), "config/patterns");
    free(c.s.parse.patterns_dir);
    c.s.parse.patterns_dir = strdup(pat);
    const char *names[2] = { "store", "archive" };
    struct lh_stages *st = NULL;
    REQUIRE(lh_stages_create(&c.s, names, 2, &st, &err) == 0);
    lh_conf_free(scfg_opts, &c);
    struct lh_pipeline_config pc = { .group = "g", .max_batch = 1000,
                                     .max_batch_bytes = 1u << 20, .linger_ms = 10,
                                     .workers = 1, .backoff_base_ms = 10,
                                     .backoff_cap_ms = 50, .flush_interval_ms = 1000 };
    struct lh_pipeline_args a = { .bus = bus, .topic = "logs", .dlq_topic = "logs.dlq",
                                  .sinks = sinks, .nsinks = 2, .stages = st };
    struct lh_pipeline *p = NULL;
    REQUIRE(lh_pipeline_create(&pc, &a, &p, &err) == 0);
    CHECK_INT(lh_pipeline_step(p, &err), ==, 60);
    lh_pipeline_destroy(p);       /* the archive seals and uploads on the way out */

    struct lh_store *rd = NULL;
    REQUIRE(lh_store_open(&rd, &sc, LH_STORE_READ, &err) == 0);
    struct lh_store_query q = { .tenant = "acme" };
    uint64_t n = 0;
    CHECK_INT(lh_store_count(rd, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 30);         /* WARN, ERROR, FATAL */
    struct lh_store_pred below = { .field = "level", .op = LH_STORE_LT, .value = "WARN" };
    q.preds = &below;
    q.npreds = 1;
    CHECK_INT(lh_store_count(rd, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 0);
    lh_store_close(rd);
    size_t nobj = 0;
    CHECK_INT(read_archive(&nobj, NULL, 0), ==, 60);
    CHECK_INT(nobj, ==, 1);
    lh_bus_close(bus);
}

TEST(pipeline_reports_the_archive_degraded_while_its_uploads_fail)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_bus_config bc = { 0 };
    bc.type = LH_BUS_SPOOL;
    bc.spool.dir = tpath("spool");
    bc.spool.segment_bytes = 1u << 20;
    bc.spool.group_commit_ms = 1;
    bc.spool.fsync = 1;
    struct lh_bus *bus = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_bus_open(&bc, NULL, &bus, &err) == 0);
    const char *js = "{\"id\":\"00000000000000000000000000000003-0\",\"tenant\":\"acme\","
                     "\"raw\":\"hello\"}";
    struct lh_bus_msg m = { .value = js, .value_len = strlen(js) };
    REQUIRE(lh_bus_produce(bus, "logs", &m, 1, &err) == 0);
    struct lh_archive_config down;
    s3_down_backend(&down);
    struct lh_sink *sinks[1] = { make_sink(&down, 10, 32u << 20, 1u << 30, 0) };
    struct scfg c;
    memset(&c, 0, sizeof(c));
    REQUIRE(lh_conf_load_string("t", "stages: [mask]", 14, scfg_opts, &c, &err) == 0);
    const char *names[1] = { "archive" };
    struct lh_stages *st = NULL;
    REQUIRE(lh_stages_create(&c.s, names, 1, &st, &err) == 0);
    lh_conf_free(scfg_opts, &c);
    struct lh_pipeline_config pc = { .group = "g", .max_batch = 100,
                                     .max_batch_bytes = 1u << 20, .linger_ms = 10,
                                     .workers = 1, .backoff_base_ms = 10,
                                     .backoff_cap_ms = 50, .flush_interval_ms = 10 };
    struct lh_pipeline_args a = { .bus = bus, .topic = "logs", .dlq_topic = "logs.dlq",
                                  .sinks = sinks, .nsinks = 1, .stages = st };
    struct lh_pipeline *p = NULL;
    REQUIRE(lh_pipeline_create(&pc, &a, &p, &err) == 0);
    CHECK_INT(lh_pipeline_step(p, &err), ==, 1);   /* staged: committed */
    struct lh_buf why = LH_BUF_INIT;
    int degraded = 0;
    for (int i = 0; i < 100 && !degraded; i++) {
        lh_pipeline_step(p, &err);                 /* idle steps flush the sinks */
        lh_buf_reset(&why);
        degraded = lh_pipeline_status(p, &why) < 0;
    }
    REQUIRE(degraded);
    CHECK_CONTAINS(why.data, "sink archive degraded: uploads fail");
    lh_buf_free(&why);
    lh_pipeline_destroy(p);
    CHECK(count_stage_files() == 1);               /* kept for the next start */
    lh_bus_close(bus);
}
