/* Unit tests for the indexer pipeline end to end, in process: a spool bus
 * in the test's directory, the store sink and a test sink that can be told
 * to fail or to reject events; also the DLQ tools (dlq.h) and the configs. */
#include "../lh_test.h"
#include "stages_fixture.h"
#include "../../indexer/dlq.h"
#include "../../indexer/indexer.h"
#include "../../indexer/pipeline.h"
#include "../../indexer/sink_store.h"

#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lh/daemon.h"
#include "lh/log.h"
#include "lh/store.h"
#include "lh/time.h"

/* ---- the test sink ---- */

struct tsink {
    struct lh_sink base;
    pthread_mutex_t mu;
    int fail;                  /* write returns LH_EUNAVAIL while set (atomic) */
    const char *reject;        /* events whose raw line contains this are rejected */
    char **ids;
    size_t nids, cap;
    uint64_t calls, duplicates;
    struct lh_buf text;        /* message, raw and metadata values of all events */
};

static int tsink_has(struct tsink *t, const char *id)
{
    for (size_t i = 0; i < t->nids; i++)
        if (strcmp(t->ids[i], id) == 0)
            return 1;
    return 0;
}

static int tsink_write(struct lh_sink *s, const struct lh_event *evs, size_t n,
                       struct lh_sink_report *rep, struct lh_err *err)
{
    struct tsink *t = s->ctx;
    pthread_mutex_lock(&t->mu);
    t->calls++;
    if (__atomic_load_n(&t->fail, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&t->mu);
        return lh_err_set(err, LH_EUNAVAIL, "test sink told to fail");
    }
    for (size_t i = 0; i < n; i++) {
        const struct lh_event *ev = &evs[i];
        if (t->reject && ev->raw && strstr(ev->raw, t->reject)) {
            lh_sink_report_reject(rep, i, "mapper_parsing_exception: failed to parse [level]");
            continue;
        }
        if (tsink_has(t, ev->id)) {
            t->duplicates++;
            rep->duplicates++;
            continue;
        }
        if (t->nids == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 256;
            t->ids = realloc(t->ids, t->cap * sizeof(*t->ids));
        }
        t->ids[t->nids++] = strdup(ev->id);
        rep->written++;
        lh_buf_printf(&t->text, "%s\n%s\n", ev->message ? ev->message : "",
                      ev->raw ? ev->raw : "");
        for (size_t k = 0; k < ev->nmeta; k++)
            lh_buf_printf(&t->text, "%s\n", ev->meta[k].value);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void tsink_destroy(struct lh_sink *s)
{
    (void)s;   /* owned by the test: it reads the sink after the pipeline ends */
}

static const struct lh_sink_ops tsink_ops = {
    .name = "test", .write = tsink_write, .destroy = tsink_destroy,
};

static void tsink_init(struct tsink *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    t->base.ops = &tsink_ops;
    t->base.ctx = t;
    snprintf(t->base.name, sizeof(t->base.name), "%s", name);
}

static void tsink_free(struct tsink *t)
{
    for (size_t i = 0; i < t->nids; i++)
        free(t->ids[i]);
    free(t->ids);
    lh_buf_free(&t->text);
    pthread_mutex_destroy(&t->mu);
}

static size_t tsink_count(struct tsink *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->nids;
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* ---- fixtures ---- */

static const char *patterns_dir(void)
{
    static char dir[4096];
    snprintf(dir, sizeof(dir), "%s/../../config/patterns", lh_test_build_dir());
    if (access(dir, R_OK) != 0)
        snprintf(dir, sizeof(dir), "config/patterns");
    return dir;
}

static char *path_in(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", lh_test_tmpdir(), name);
    return buf[k];
}

static struct lh_bus *open_bus(void)
{
    struct lh_bus_config cfg = { 0 };
    cfg.type = LH_BUS_SPOOL;
    cfg.spool.dir = path_in("spool");
    cfg.spool.segment_bytes = 1u << 20;
    cfg.spool.group_commit_ms = 1;
    cfg.spool.fsync = 1;
    struct lh_bus *bus = NULL;
    struct lh_err err = { 0 };
    if (lh_bus_open(&cfg, NULL, &bus, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "bus: %s", err.msg);
    return bus;
}

static struct lh_sink *open_store_sink(void)
{
    struct lh_store_config sc;
    memset(&sc, 0, sizeof(sc));
    lh_store_config_defaults(&sc);
    sc.dir = path_in("store");
    struct lh_sink *s = NULL;
    struct lh_err err = { 0 };
    if (lh_sink_store_create(&sc, "store", NULL, &s, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "store sink: %s", err.msg);
    return s;
}

/* Stage settings from YAML. */
struct scfg {
    struct lh_stages_config s;
};
static const struct lh_opt scfg_opts[] = { LH_STAGES_OPTS(struct scfg, s), { 0 } };

struct lh_stages *lh_test_stages(const char *yaml, struct lh_sink **sinks, size_t n)
{
    struct scfg c;
    memset(&c, 0, sizeof(c));
    struct lh_err err = { 0 };
    if (lh_conf_load_string("stages.yaml", yaml, strlen(yaml), scfg_opts, &c, &err) < 0) {
        lh_test_fail(__FILE__, __LINE__, "stages config: %s", err.msg);
        return NULL;
    }
    free(c.s.parse.patterns_dir);
    c.s.parse.patterns_dir = strdup(patterns_dir());
    const char *names[8];
    for (size_t i = 0; i < n; i++)
        names[i] = sinks[i]->name;
    struct lh_stages *st = NULL;
    if (lh_stages_create(&c.s, names, n, &st, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "stages: %s", err.msg);
    lh_conf_free(scfg_opts, &c);
    return st;
}

struct popts {
    const char *stages;          /* YAML, default "{}" */
    const char *group;
    int64_t max_batch, linger_ms, workers;
    const char *replay_topic;
    struct lh_metrics *m;
};

static struct lh_pipeline *make_pipeline(struct lh_bus *bus, struct lh_sink **sinks, size_t n,
                                         const struct popts *o)
{
    struct lh_pipeline_config pc = {
        .group = (char *)(o->group ? o->group : "indexer"),
        .max_batch = o->max_batch ? o->max_batch : 1000,
        .max_batch_bytes = 16u << 20,
        .linger_ms = o->linger_ms ? o->linger_ms : 20,
        .workers = o->workers ? o->workers : 1,
        .backoff_base_ms = 10, .backoff_cap_ms = 50, .flush_interval_ms = 1000,
    };
    struct lh_pipeline_args a = {
        .bus = bus, .topic = "logs", .replay_topic = o->replay_topic, .dlq_topic = "logs.dlq",
        .sinks = sinks, .nsinks = n, .stages = lh_test_stages(o->stages ? o->stages : "{}", sinks, n),
        .metrics = o->m,
    };
    struct lh_pipeline *p = NULL;
    struct lh_err err = { 0 };
    if (lh_pipeline_create(&pc, &a, &p, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "pipeline: %s", err.msg);
    return p;
}

/* A mix of formats, as agents ship them. */
static const char *const lines[] = {
    "2026-05-23 08:06:14 [payment-service] ERROR tr_abc123 usr_456 - Database transaction "
    "timeout during capture.",
    "{\"level\":\"info\",\"msg\":\"Garbage collection cycle completed in 12ms\","
    "\"service\":\"payment-service\",\"metadata\":{\"gc\":\"g1\"}}",
    "10.1.2.3 - - [23/May/2026:08:06:14 +0000] \"GET /api/v1/orders?id=7 HTTP/1.1\" 503 512 "
    "\"-\" \"curl/8.0\"",
    "<34>May 23 08:06:14 web-1 sshd[4242]: Failed password for root from 10.0.0.9",
    "2026-05-23 08:06:14,123 WARN [main] com.example.pay.Checkout - Retrying capture\n"
    "java.lang.IllegalStateException: gateway busy\n\tat com.example.pay.Gw.call(Gw.java:42)",
    "ts=2026-05-23T08:06:14Z level=debug msg=\"cache miss\" key=user:9",
    "2026-05-23 08:06:15 [auth] TRACE tr_1 usr_2 - token refreshed",
    "something nobody can parse ~~~",
};
#define NLINES (sizeof(lines) / sizeof(lines[0]))

struct produced {
    char **ids;
    char **values;
    size_t n;
};

static void produced_free(struct produced *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->ids[i]);
        free(p->values[i]);
    }
    free(p->ids);
    free(p->values);
    memset(p, 0, sizeof(*p));
}

/* Produces n events; batch selects the id space. raw(i) overrides the line. */
static void produce(struct lh_bus *bus, uint8_t batch, size_t n, const char *(*raw)(size_t),
                    struct produced *out)
{
    uint8_t uuid[16];
    memset(uuid, batch, sizeof(uuid));
    struct lh_buf enc = LH_BUF_INIT;
    struct lh_bus_msg *msgs = calloc(n, sizeof(*msgs));
    size_t *ends = calloc(n, sizeof(*ends));
    char (*ids)[LH_EVENT_ID_MAX] = calloc(n, sizeof(*ids));
    struct lh_bus_header hdr = { "tenant", "acme" };
    for (size_t i = 0; i < n; i++) {
        struct lh_event ev;
        memset(&ev, 0, sizeof(ev));
        lh_event_id(ids[i], uuid, (uint32_t)i);
        ev.id = ids[i];
        ev.tenant = "acme";
        ev.host = "web-1";
        ev.ts_ns = 1779523574000000000LL + (int64_t)i * 1000000;
        ev.received_ns = ev.ts_ns + 1000000;
        ev.raw = raw ? raw(i) : lines[i % NLINES];
        ev.message = ev.raw;
        lh_event_encode(&ev, &enc);
        ends[i] = enc.len;
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = i ? ends[i - 1] : 0;
        msgs[i] = (struct lh_bus_msg){ .key = "web-1", .key_len = 5, .value = enc.data + a,
                                       .value_len = ends[i] - a, .headers = &hdr,
                                       .nheaders = 1 };
    }
    struct lh_err err = { 0 };
    if (lh_bus_produce(bus, "logs", msgs, n, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "produce: %s", err.msg);
    if (out) {
        out->ids = realloc(out->ids, (out->n + n) * sizeof(char *));
        out->values = realloc(out->values, (out->n + n) * sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            out->ids[out->n + i] = strdup(ids[i]);
            out->values[out->n + i] = strndup(msgs[i].value, msgs[i].value_len);
        }
        out->n += n;
    }
    free(msgs);
    free(ends);
    free(ids);
    lh_buf_free(&enc);
}

/* Steps until `want` messages were committed in total (or a step found
 * nothing twice in a row). Returns the total. */
static size_t run_until(struct lh_pipeline *p, size_t want)
{
    size_t total = 0;
    int idle = 0;
    while (total < want && idle < 3) {
        struct lh_err err = { 0 };
        int rc = lh_pipeline_step(p, &err);
        if (rc < 0) {
            lh_test_fail(__FILE__, __LINE__, "step: %s", err.msg);
            break;
        }
        idle = rc == 0 ? idle + 1 : 0;
        total += (size_t)rc;
    }
    return total;
}

static uint64_t counter(struct lh_metrics *m, const char *name, const char *labels)
{
    return lh_counter_value(lh_counter_get(m, name, "", labels));
}

/* Every event of tenant acme in the store (newest first), via a reader. */
static size_t store_all(char ***ids_out, struct lh_buf *text)
{
    struct lh_store_config sc;
    memset(&sc, 0, sizeof(sc));
    lh_store_config_defaults(&sc);
    sc.dir = path_in("store");
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &sc, LH_STORE_READ, &err) < 0) {
        lh_test_fail(__FILE__, __LINE__, "store open: %s", err.msg);
        return 0;
    }
    size_t n = 0, cap = 0;
    char **ids = NULL;
    struct lh_store_pos after;
    int have_after = 0;
    for (;;) {
        struct lh_store_query q = { .tenant = "acme", .limit = 500,
                                    .after = have_after ? &after : NULL };
        struct lh_store_result *r = NULL;
        if (lh_store_search(s, &q, &r, &err) < 0) {
            lh_test_fail(__FILE__, __LINE__, "search: %s", err.msg);
            break;
        }
        for (size_t i = 0; i < r->n; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                ids = realloc(ids, cap * sizeof(*ids));
            }
            ids[n++] = strdup(r->events[i].id);
            if (text) {
                const struct lh_event *ev = &r->events[i];
                lh_buf_printf(text, "%s\n%s\n", ev->message ? ev->message : "",
                              ev->raw ? ev->raw : "");
                for (size_t k = 0; k < ev->nmeta; k++)
                    lh_buf_printf(text, "%s\n", ev->meta[k].value);
            }
        }
        int more = r->more && r->n > 0;
        if (more) {
            after = r->next;
            have_after = 1;
        }
        lh_store_result_free(r);
        if (!more)
            break;
    }
    lh_store_close(s);
    *ids_out = ids;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks that the store holds exactly the ids of `want`, once each. */
static void check_store_exactly(const struct produced *want)
{
    char **ids = NULL;
    size_t n = store_all(&ids, NULL);
    CHECK_INT(n, ==, want->n);
    char **w = malloc(want->n * sizeof(*w));
    memcpy(w, want->ids, want->n * sizeof(*w));
    qsort(w, want->n, sizeof(*w), cmp_str);
    qsort(ids, n, sizeof(*ids), cmp_str);
    for (size_t i = 0; i < n && i < want->n; i++)
        if (strcmp(ids[i], w[i]) != 0) {
            lh_test_fail(__FILE__, __LINE__, "store id %zu: %s, want %s", i, ids[i], w[i]);
            break;
        }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(w);
}

/* Messages left for a group on a topic (drains without committing). */
static size_t pending(struct lh_bus *bus, const char *group, const char *topic)
{
    struct lh_bus_consumer *c = NULL;
    struct lh_err err = { 0 };
    if (lh_bus_consumer_open(bus, group, topic, &c, &err) < 0) {
        lh_test_fail(__FILE__, __LINE__, "consumer: %s", err.msg);
        return 0;
    }
    size_t n = 0;
    for (;;) {
        struct lh_bus_batch b = { 0 };
        int rc = lh_bus_poll(c, 1000, 50, &b, &err);
        if (rc <= 0)
            break;
        n += b.n;
        lh_bus_batch_release(c, &b);
    }
    lh_bus_consumer_close(c);
    return n;
}

static void quiet(void) { lh_log_set_level(LH_LOG_ERROR); }

/* ---- tests ---- */

TEST(pipeline_indexes_every_event_exactly_once_and_commits)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct lh_metrics *m = lh_metrics_create();
    struct tsink t;
    tsink_init(&t, "test");
    struct lh_sink *sinks[2] = { open_store_sink(), &t.base };
    struct produced pr = { 0 };
    produce(bus, 1, 700, NULL, &pr);
    struct popts o = { .m = m, .max_batch = 250 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 2, &o);
    REQUIRE(p != NULL);
    CHECK_INT(run_until(p, 700), ==, 700);
    struct lh_pipeline_stats st;
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.batches, ==, 3);
    CHECK_INT(st.committed, ==, 700);
    lh_pipeline_destroy(p);
    check_store_exactly(&pr);
    CHECK_INT(tsink_count(&t), ==, 700);
    CHECK_INT(t.duplicates, ==, 0);
    CHECK_INT(pending(bus, "indexer", "logs"), ==, 0);
    /* Metrics: the seed's name per sink and tenant, parse kinds. */
    CHECK_INT(counter(m, "logs_indexed_total", "sink=\"store\",tenant=\"acme\""), ==, 700);
    CHECK_INT(counter(m, "logs_indexed_total", "sink=\"test\",tenant=\"acme\""), ==, 700);
    CHECK_INT(counter(m, "loghaul_indexer_consumed_total", NULL), ==, 700);
    uint64_t parsed = counter(m, "loghaul_indexer_parsed_total", "kind=\"json\",pattern=\"\"") +
                      counter(m, "loghaul_indexer_parsed_total", "kind=\"logfmt\",pattern=\"\"") +
                      counter(m, "loghaul_indexer_parsed_total", "kind=\"failed\",pattern=\"\"");
    uint64_t grok = 0;
    const char *pats[] = { "LOGHAUL_APP", "ACCESS_LOG", "SYSLOG3164", "JAVA_LOG4J" };
    for (size_t i = 0; i < 4; i++) {
        char lb[128];
        snprintf(lb, sizeof(lb), "kind=\"grok\",pattern=\"%s\"", pats[i]);
        uint64_t v = counter(m, "loghaul_indexer_parsed_total", lb);
        CHECK(v > 0);
        grok += v;
    }
    CHECK_INT(parsed + grok, ==, 700);
    CHECK_INT(counter(m, "loghaul_indexer_parse_failures_total", NULL), ==, 700 / NLINES);
    produced_free(&pr);
    tsink_free(&t);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

static void crash_before_commit(void *arg, size_t n)
{
    (void)arg;
    (void)n;
    _exit(42);   /* as if killed: nothing closed, nothing committed */
}

TEST(pipeline_crash_before_commit_replays_without_duplicates)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct produced pr = { 0 };
    produce(bus, 2, 300, NULL, &pr);
    lh_bus_close(bus);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct lh_bus *b2 = open_bus();
        struct lh_sink *sinks[1] = { open_store_sink() };
        struct popts o = { .max_batch = 200 };
        struct lh_pipeline *p = make_pipeline(b2, sinks, 1, &o);
        struct lh_pipeline_hooks h = { crash_before_commit, NULL };
        lh_pipeline_set_hooks(p, &h);
        struct lh_err err = { 0 };
        for (int i = 0; i < 50; i++)
            lh_pipeline_step(p, &err);
        _exit(1);   /* the hook never ran */
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), ==, 42);

    /* The first 200 are in the store but not committed: run again. */
    bus = open_bus();
    CHECK_INT(pending(bus, "indexer", "logs"), ==, 300);
    struct lh_metrics *m = lh_metrics_create();
    struct lh_sink *sinks[1] = { open_store_sink() };
    struct popts o = { .max_batch = 200, .m = m };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 1, &o);
    CHECK_INT(run_until(p, 300), ==, 300);
    lh_pipeline_destroy(p);
    CHECK_INT(counter(m, "loghaul_indexer_duplicates_total", "sink=\"store\""), ==, 200);
    CHECK_INT(counter(m, "loghaul_indexer_written_total", "sink=\"store\""), ==, 100);
    check_store_exactly(&pr);
    CHECK_INT(pending(bus, "indexer", "logs"), ==, 0);
    produced_free(&pr);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

static int wait_for(struct lh_pipeline *p, int (*cond)(const struct lh_pipeline_stats *))
{
    for (int i = 0; i < 1000; i++) {
        struct lh_pipeline_stats st;
        lh_pipeline_stats(p, &st);
        if (cond(&st))
            return 1;
        usleep(10000);
    }
    return 0;
}

static int failed_twice(const struct lh_pipeline_stats *st) { return st->sink_failures >= 2; }
static int committed_200(const struct lh_pipeline_stats *st) { return st->committed >= 200; }
static int committed_10(const struct lh_pipeline_stats *st) { return st->committed >= 10; }
static int failed_once(const struct lh_pipeline_stats *st) { return st->sink_failures >= 1; }

TEST(pipeline_failing_sink_pauses_without_polling_and_resumes)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct lh_metrics *m = lh_metrics_create();
    struct tsink t;
    tsink_init(&t, "flaky");
    t.fail = 1;
    struct lh_sink *sinks[2] = { open_store_sink(), &t.base };
    struct popts o = { .m = m, .max_batch = 1000 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 2, &o);
    struct lh_err err = { 0 };
    REQUIRE(lh_pipeline_start(p, NULL, NULL, &err) == 0);
    struct produced pr = { 0 };
    produce(bus, 3, 100, NULL, &pr);
    REQUIRE(wait_for(p, failed_twice));
    struct lh_pipeline_stats st;
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.paused, ==, 1);
    CHECK_INT(st.committed, ==, 0);
    CHECK_INT(st.polled, ==, 100);
    struct lh_buf why = LH_BUF_INIT;
    CHECK_INT(lh_pipeline_status(p, &why), ==, -1);
    CHECK_CONTAINS(why.data, "sink flaky down");
    CHECK_CONTAINS(why.data, "test sink told to fail");
    /* More events arrive: nothing more is polled while paused. */
    produce(bus, 4, 100, NULL, &pr);
    usleep(300000);
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.polled, ==, 100);
    CHECK_INT(st.committed, ==, 0);
    CHECK(lh_gauge_value(lh_gauge_get(m, "loghaul_indexer_sink_up", "", "sink=\"flaky\"")) == 0);
    /* The store took the batch once, and is not written again. */
    CHECK_INT(counter(m, "loghaul_indexer_written_total", "sink=\"store\""), ==, 100);
    __atomic_store_n(&t.fail, 0, __ATOMIC_RELEASE);
    REQUIRE(wait_for(p, committed_200));
    lh_buf_reset(&why);
    CHECK_INT(lh_pipeline_status(p, &why), ==, 0);
    lh_pipeline_stop(p, 1000);
    lh_pipeline_join(p);
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.paused, ==, 0);
    lh_pipeline_destroy(p);
    CHECK_INT(counter(m, "loghaul_indexer_written_total", "sink=\"store\""), ==, 200);
    CHECK_INT(counter(m, "loghaul_indexer_duplicates_total", "sink=\"store\""), ==, 0);
    CHECK(counter(m, "loghaul_indexer_sink_errors_total", "sink=\"flaky\"") >= 2);
    CHECK_INT(tsink_count(&t), ==, 200);
    CHECK_INT(t.duplicates, ==, 0);
    check_store_exactly(&pr);
    CHECK_INT(pending(bus, "indexer", "logs"), ==, 0);
    lh_buf_free(&why);
    produced_free(&pr);
    tsink_free(&t);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

TEST(pipeline_stop_finishes_the_batch_in_hand_within_the_drain)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct tsink t;
    tsink_init(&t, "flaky");
    t.fail = 1;
    struct lh_sink *sinks[1] = { &t.base };
    struct popts o = { 0 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 1, &o);
    struct lh_err err = { 0 };
    REQUIRE(lh_pipeline_start(p, NULL, NULL, &err) == 0);
    produce(bus, 5, 10, NULL, NULL);
    REQUIRE(wait_for(p, failed_once));
    /* Stop while the sink fails; it recovers within the drain time. */
    lh_pipeline_stop(p, 5000);
    usleep(100000);
    __atomic_store_n(&t.fail, 0, __ATOMIC_RELEASE);
    lh_pipeline_join(p);
    struct lh_pipeline_stats st;
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.committed, ==, 10);
    lh_pipeline_destroy(p);
    CHECK_INT(tsink_count(&t), ==, 10);

    /* Now it does not recover in time: the batch stays uncommitted and the
     * next run gets it. */
    __atomic_store_n(&t.fail, 1, __ATOMIC_RELEASE);
    p = make_pipeline(bus, sinks, 1, &o);
    REQUIRE(lh_pipeline_start(p, NULL, NULL, &err) == 0);
    produce(bus, 6, 10, NULL, NULL);
    REQUIRE(wait_for(p, failed_once));
    lh_pipeline_stop(p, 200);
    lh_pipeline_join(p);
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.committed, ==, 0);
    lh_pipeline_destroy(p);
    CHECK_INT(pending(bus, "indexer", "logs"), ==, 10);
    __atomic_store_n(&t.fail, 0, __ATOMIC_RELEASE);
    p = make_pipeline(bus, sinks, 1, &o);
    REQUIRE(lh_pipeline_start(p, NULL, NULL, &err) == 0);
    REQUIRE(wait_for(p, committed_10));
    lh_pipeline_destroy(p);
    CHECK_INT(tsink_count(&t), ==, 20);
    tsink_free(&t);
    lh_bus_close(bus);
}

static const char *reject_some(size_t i)
{
    return i % 10 == 3 ? "2026-05-23 08:06:14 [x] ERROR t u - reject-me please" : lines[i % NLINES];
}

struct dl_seen {
    size_t n, rejected, undecodable;
    const struct produced *pr;
    int value_ok;
};

static int dl_visit(void *arg, const struct lh_dlq_entry *e)
{
    struct dl_seen *s = arg;
    s->n++;
    if (strcmp(e->sink, "flaky") == 0) {
        s->rejected++;
        CHECK_STR(e->reason, "mapper_parsing_exception: failed to parse [level]");
        CHECK_STR(e->tenant, "acme");
        CHECK_CONTAINS(e->origin, "logs/0/");
        CHECK(e->failed_at[0] != '\0');
        /* The value is the message exactly as it was produced. */
        int found = 0;
        for (size_t i = 0; i < s->pr->n && !found; i++)
            found = strlen(s->pr->values[i]) == e->msg->value_len &&
                    memcmp(s->pr->values[i], e->msg->value, e->msg->value_len) == 0;
        s->value_ok += found;
    } else {
        CHECK_STR(e->sink, "");
        CHECK(strncmp(e->reason, "undecodable: ", 13) == 0);
        CHECK_STR(e->tenant, "acme");
        s->undecodable++;
    }
    return 0;
}

static void produce_garbage(struct lh_bus *bus)
{
    struct lh_bus_header hdr = { "tenant", "acme" };
    const char *bad[] = { "garbage{", "[1,2,3]", "{\"id\": 7}" };
    struct lh_bus_msg msgs[3];
    for (int i = 0; i < 3; i++)
        msgs[i] = (struct lh_bus_msg){ .value = bad[i], .value_len = strlen(bad[i]),
                                       .headers = &hdr, .nheaders = 1 };
    struct lh_err err = { 0 };
    if (lh_bus_produce(bus, "logs", msgs, 3, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "produce: %s", err.msg);
}

TEST(pipeline_rejects_and_undecodable_messages_go_to_the_dlq_and_replay)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct lh_metrics *m = lh_metrics_create();
    struct tsink t;
    tsink_init(&t, "flaky");
    t.reject = "reject-me";
    struct lh_sink *sinks[2] = { open_store_sink(), &t.base };
    struct produced pr = { 0 };
    produce(bus, 7, 40, reject_some, &pr);
    produce_garbage(bus);
    struct popts o = { .m = m, .replay_topic = "logs.replay" };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 2, &o);
    CHECK_INT(run_until(p, 43), ==, 43);
    CHECK_INT(tsink_count(&t), ==, 36);
    CHECK_INT(counter(m, "logs_indexed_total", "sink=\"flaky\",tenant=\"acme\""), ==, 36);
    CHECK_INT(counter(m, "logs_indexed_total", "sink=\"store\",tenant=\"acme\""), ==, 40);
    CHECK_INT(counter(m, "loghaul_indexer_dlq_total",
                      "reason=\"mapper_parsing_exception\",sink=\"flaky\""), ==, 4);
    CHECK_INT(counter(m, "loghaul_indexer_dlq_total", "reason=\"undecodable\",sink=\"\""), ==, 3);
    CHECK_INT(counter(m, "loghaul_indexer_undecodable_total", NULL), ==, 3);

    /* What the DLQ holds, read by the tool's scan (nothing committed). */
    struct lh_dlq_scan scan = { .topic = "logs.dlq", .first_wait_ms = 200, .idle_wait_ms = 50 };
    struct dl_seen seen = { .pr = &pr };
    struct lh_err err = { 0 };
    CHECK_INT(lh_dlq_each(bus, &scan, dl_visit, &seen, &err), ==, 7);
    CHECK_INT(seen.rejected, ==, 4);
    CHECK_INT(seen.value_ok, ==, 4);
    CHECK_INT(seen.undecodable, ==, 3);
    struct dl_seen again = { .pr = &pr };
    CHECK_INT(lh_dlq_each(bus, &scan, dl_visit, &again, &err), ==, 7);

    /* Replay after the sink was fixed: the rejected events come back
     * through the replay topic with their ids, to the sink that refused them
     * only (the store, which has them, does not see them again). */
    t.reject = NULL;
    struct lh_dlq_replay_stats rs;
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 1, &rs, &err), ==, 0);
    CHECK_INT(rs.replayed, ==, 4);   /* dry run: nothing changed */
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.seen, ==, 7);
    CHECK_INT(rs.replayed, ==, 4);
    CHECK_INT(rs.skipped, ==, 3);
    CHECK_INT(run_until(p, 4), ==, 4);
    CHECK_INT(tsink_count(&t), ==, 40);
    CHECK_INT(t.duplicates, ==, 0);
    CHECK_INT(counter(m, "loghaul_indexer_duplicates_total", "sink=\"store\""), ==, 0);
    CHECK_INT(counter(m, "logs_indexed_total", "sink=\"store\",tenant=\"acme\""), ==, 40);
    /* The group moved: a second replay finds nothing. */
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.seen, ==, 0);
    lh_pipeline_destroy(p);
    check_store_exactly(&pr);
    produced_free(&pr);
    tsink_free(&t);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

TEST(dlq_filters_and_printing)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct tsink t;
    tsink_init(&t, "flaky");
    t.reject = "reject-me";
    struct lh_sink *sinks[1] = { &t.base };
    produce(bus, 8, 20, reject_some, NULL);
    produce_garbage(bus);
    struct popts o = { 0 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 1, &o);
    CHECK_INT(run_until(p, 23), ==, 23);
    lh_pipeline_destroy(p);
    struct lh_dlq_scan scan = { .topic = "logs.dlq", .first_wait_ms = 200, .idle_wait_ms = 50 };
    struct lh_dlq_filter only_undecodable = { .sink = "-" };
    struct lh_dlq_filter by_reason = { .reason = "mapper_parsing" };
    struct lh_dlq_filter other_tenant = { .tenant = "globex" };
    size_t nu = 0, nr = 0, nt = 0;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    struct lh_err err = { 0 };
    int rc;
    struct lh_bus_consumer *cons = NULL;
    REQUIRE(lh_bus_consumer_open(bus, "printer", "logs.dlq", &cons, &err) == 0);
    struct lh_bus_batch b = { 0 };
    rc = lh_bus_poll(cons, 100, 200, &b, &err);
    REQUIRE_INT(rc, ==, 5);
    for (size_t i = 0; i < b.n; i++) {
        struct lh_dlq_entry e;
        lh_dlq_entry_of(&b.msgs[i], &e);
        nu += lh_dlq_match(&only_undecodable, &e);
        nr += lh_dlq_match(&by_reason, &e);
        nt += lh_dlq_match(&other_tenant, &e);
        lh_dlq_print_line(f, &e, 20);
        lh_dlq_print_json(f, &e);
        lh_dlq_print_full(f, &e);
    }
    lh_bus_batch_release(cons, &b);
    lh_bus_consumer_close(cons);
    fclose(f);
    CHECK_INT(nu, ==, 3);
    CHECK_INT(nr, ==, 2);
    CHECK_INT(nt, ==, 0);
    CHECK_CONTAINS(out, "tenant=acme sink=flaky mapper_parsing_exception: failed to parse "
                        "[level] | {\"id\":\"0808080808080...");
    CHECK_CONTAINS(out, "sink=- undecodable: ");
    CHECK_CONTAINS(out, "\"sink\":\"flaky\",\"tenant\":\"acme\",\"origin\":\"logs/0/3\"");
    CHECK_CONTAINS(out, "\"event\":{\"id\":\"08080808");
    CHECK_CONTAINS(out, "\"event\":\"garbage{\"}");
    CHECK_CONTAINS(out, "reason      mapper_parsing_exception");
    CHECK_CONTAINS(out, "  \"raw\": \"2026-05-23 08:06:14 [x] ERROR t u - reject-me please\"");
    free(out);
    /* Replay of one tenant only: the others are skipped (and passed). */
    struct lh_dlq_replay_stats rs;
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.{tenant}.again", &other_tenant, 1, 0, &rs, &err),
              ==, 0);
    CHECK_INT(rs.replayed, ==, 0);
    CHECK_INT(rs.skipped, ==, 5);
    scan.group = "second";
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.{tenant}.again", NULL, 1, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.replayed, ==, 5);
    CHECK_INT(pending(bus, "check", "logs.acme.again"), ==, 5);
    tsink_free(&t);
    lh_bus_close(bus);
}

static const char *level_line(size_t i)
{
    static const char *const v[] = {
        "2026-05-23 08:06:14 [svc] TRACE t u - a trace",
        "2026-05-23 08:06:14 [svc] DEBUG t u - a debug",
        "2026-05-23 08:06:14 [svc] INFO t u - an info",
        "2026-05-23 08:06:14 [svc] WARN t u - a warning",
        "2026-05-23 08:06:14 [svc] ERROR t u - an error",
        "2026-05-23 08:06:14 [svc] FATAL t u - a fatal",
    };
    return v[i % 6];
}

TEST(pipeline_routes_by_level_and_samples_deterministically)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct lh_metrics *m = lh_metrics_create();
    struct tsink hot, archive;
    tsink_init(&hot, "hot");
    tsink_init(&archive, "archive");
    struct lh_sink *sinks[2] = { &hot.base, &archive.base };
    struct produced pr = { 0 };
    produce(bus, 9, 600, level_line, &pr);
    const char *rules = "routes:\n"
                        "  - {name: hot, min_level: WARN, sinks: [hot]}\n"
                        "  - {name: all, sinks: [archive]}\n"
                        "sample:\n"
                        "  - {name: debug-thin, max_level: DEBUG, rate: 0.5, sinks: [archive]}\n";
    struct popts o = { .m = m, .stages = rules };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 2, &o);
    CHECK_INT(run_until(p, 600), ==, 600);
    lh_pipeline_destroy(p);
    size_t want_hot = 0, want_archive = 0, dropped = 0;
    for (size_t i = 0; i < pr.n; i++) {
        int lvl = (int)(i % 6);   /* 0 TRACE .. 5 FATAL */
        struct lh_event ev = { .id = pr.ids[i] };
        double u = (double)(lh_stages_sample_hash(&ev) >> 11) / 9007199254740992.0;
        int in_hot = lvl >= 3, in_archive = lvl >= 2 || u < 0.5;
        want_hot += in_hot;
        want_archive += in_archive;
        dropped += !in_archive;
        if (tsink_has(&hot, pr.ids[i]) != in_hot || tsink_has(&archive, pr.ids[i]) != in_archive)
            lh_test_fail(__FILE__, __LINE__, "event %zu (level %d, u %.3f): hot %d archive %d",
                         i, lvl, u, tsink_has(&hot, pr.ids[i]),
                         tsink_has(&archive, pr.ids[i]));
    }
    CHECK_INT(tsink_count(&hot), ==, want_hot);
    CHECK_INT(tsink_count(&archive), ==, want_archive);
    CHECK(dropped > 40 && dropped < 160);
    CHECK_INT(counter(m, "loghaul_indexer_sampled_total", "reason=\"debug-thin\""), ==, dropped);
    CHECK_INT(counter(m, "loghaul_indexer_routed_total", "sink=\"hot\""), ==, want_hot);
    CHECK_INT(counter(m, "loghaul_indexer_routed_total", "sink=\"archive\""), ==, want_archive);

    /* Another group over the same messages samples the same events. */
    struct tsink hot2, archive2;
    tsink_init(&hot2, "hot");
    tsink_init(&archive2, "archive");
    struct lh_sink *sinks2[2] = { &hot2.base, &archive2.base };
    struct popts o2 = { .stages = rules, .group = "other", .workers = 2 };
    p = make_pipeline(bus, sinks2, 2, &o2);
    CHECK_INT(run_until(p, 600), ==, 600);
    lh_pipeline_destroy(p);
    CHECK_INT(tsink_count(&archive2), ==, want_archive);
    for (size_t i = 0; i < archive2.nids; i++)
        if (!tsink_has(&archive, archive2.ids[i])) {
            lh_test_fail(__FILE__, __LINE__, "%s sampled differently", archive2.ids[i]);
            break;
        }
    produced_free(&pr);
    tsink_free(&hot);
    tsink_free(&archive);
    tsink_free(&hot2);
    tsink_free(&archive2);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

static const char *pii_line(size_t i)
{
    static const char *const v[] = {
        "2026-05-23 08:06:14 [pay] ERROR tr_1 usr_2 - card 4111 1111 1111 1111 declined for "
        "jane.doe@example.com",
        "{\"level\":\"warn\",\"msg\":\"refund to 5500-0000-0000-0004\",\"customer\":{\"email\":"
        "\"john@example.org\"}}",
        "ts=2026-05-23T08:06:14Z level=info msg=signup email=max@example.net",
    };
    return v[i % 3];
}

TEST(pipeline_masks_pii_before_any_sink_sees_it)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct lh_metrics *m = lh_metrics_create();
    struct tsink t;
    tsink_init(&t, "test");
    struct lh_sink *sinks[2] = { open_store_sink(), &t.base };
    struct produced pr = { 0 };
    produce(bus, 10, 90, pii_line, &pr);
    struct popts o = { .m = m, .workers = 2 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 2, &o);
    CHECK_INT(run_until(p, 90), ==, 90);
    lh_pipeline_destroy(p);
    struct lh_buf text = LH_BUF_INIT;
    char **ids = NULL;
    size_t n = store_all(&ids, &text);
    CHECK_INT(n, ==, 90);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    lh_buf_putc(&text, '\0');
    lh_buf_putc(&t.text, '\0');
    const char *pii[] = { "@example", "4111 1111", "5500-0000", "jane.doe", "john@", "max@" };
    for (size_t i = 0; i < sizeof(pii) / sizeof(pii[0]); i++) {
        if (strstr(text.data, pii[i]))
            lh_test_fail(__FILE__, __LINE__, "the store holds \"%s\"", pii[i]);
        if (strstr(t.text.data, pii[i]))
            lh_test_fail(__FILE__, __LINE__, "the sink saw \"%s\"", pii[i]);
    }
    CHECK_CONTAINS(text.data, "card [CARD] declined for [EMAIL]");
    CHECK_CONTAINS(text.data, "refund to [CARD]");
    CHECK(counter(m, "loghaul_indexer_masked_total", "rule=\"email\"") >= 90);
    CHECK(counter(m, "loghaul_indexer_masked_total", "rule=\"card\"") >= 60);
    CHECK_INT(counter(m, "loghaul_indexer_masked_events_total", NULL), ==, 90);
    lh_buf_free(&text);
    produced_free(&pr);
    tsink_free(&t);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

TEST(pipeline_new_stages_apply_from_the_next_batch)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct tsink a, b;
    tsink_init(&a, "a");
    tsink_init(&b, "b");
    struct lh_sink *sinks[2] = { &a.base, &b.base };
    struct popts o = { .stages = "routes: [{sinks: [a]}]" };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 2, &o);
    produce(bus, 11, 10, NULL, NULL);
    CHECK_INT(run_until(p, 10), ==, 10);
    lh_pipeline_set_stages(p, lh_test_stages("routes: [{sinks: [b]}]", sinks, 2));
    produce(bus, 12, 10, NULL, NULL);
    CHECK_INT(run_until(p, 10), ==, 10);
    struct lh_pipeline_stats st;
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.stage_swaps, ==, 1);
    lh_pipeline_destroy(p);
    CHECK_INT(tsink_count(&a), ==, 10);
    CHECK_INT(tsink_count(&b), ==, 10);
    tsink_free(&a);
    tsink_free(&b);
    lh_bus_close(bus);
}

struct late {
    struct lh_bus *bus;
};

static void *produce_late(void *arg)
{
    struct late *l = arg;
    usleep(50000);
    produce(l->bus, 14, 5, NULL, NULL);
    return NULL;
}

TEST(pipeline_batch_is_cut_by_size_or_after_the_linger)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct tsink t;
    tsink_init(&t, "t");
    struct lh_sink *sinks[1] = { &t.base };
    /* Full first: 25 waiting, batches of 10. */
    produce(bus, 13, 25, NULL, NULL);
    struct popts o = { .max_batch = 10, .linger_ms = 5000 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 1, &o);
    struct lh_err err = { 0 };
    CHECK_INT(lh_pipeline_step(p, &err), ==, 10);
    CHECK_INT(lh_pipeline_step(p, &err), ==, 10);
    lh_pipeline_destroy(p);
    /* Lingering: 5 left, 5 more arrive 50 ms later, a 500 ms linger takes both
     * into one batch. */
    struct popts o2 = { .max_batch = 1000, .linger_ms = 500 };
    p = make_pipeline(bus, sinks, 1, &o2);
    struct late l = { bus };
    pthread_t th;
    pthread_create(&th, NULL, produce_late, &l);
    CHECK_INT(lh_pipeline_step(p, &err), ==, 10);
    pthread_join(th, NULL);
    lh_pipeline_destroy(p);
    CHECK_INT(tsink_count(&t), ==, 30);
    tsink_free(&t);
    lh_bus_close(bus);
}

TEST(sink_store_rejects_events_without_ids_and_counts_duplicates)
{
    quiet();
    struct lh_sink *s = open_store_sink();
    REQUIRE(s != NULL);
    struct lh_event evs[4];
    memset(evs, 0, sizeof(evs));
    char longid[300];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    const char *ids[4] = { "00-1", NULL, "00-2", longid };
    for (int i = 0; i < 4; i++) {
        evs[i].id = ids[i];
        evs[i].tenant = "acme";
        evs[i].ts_ns = 1779523574000000000LL + i;
        evs[i].message = "m";
    }
    struct lh_sink_report rep = { 0 };
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_sink_write(s, evs, 4, &rep, &err), ==, 0);
    CHECK_INT(rep.written, ==, 2);
    REQUIRE_INT(rep.nrejects, ==, 2);
    CHECK_INT(rep.rejects[0].index, ==, 1);
    CHECK_CONTAINS(rep.rejects[0].reason, "missing_id");
    CHECK_INT(rep.rejects[1].index, ==, 3);
    CHECK_CONTAINS(rep.rejects[1].reason, "id_too_long");
    lh_sink_report_reset(&rep);
    REQUIRE_INT(lh_sink_write(s, evs, 1, &rep, &err), ==, 0);
    CHECK_INT(rep.written, ==, 0);
    CHECK_INT(rep.duplicates, ==, 1);
    CHECK(lh_sink_store_handle(s) != NULL);
    CHECK_INT(lh_sink_ready(s, &err), ==, 0);
    /* A second writer of the same directory is refused. */
    struct lh_store_config sc;
    memset(&sc, 0, sizeof(sc));
    lh_store_config_defaults(&sc);
    sc.dir = path_in("store");
    struct lh_sink *s2 = NULL;
    CHECK_INT(lh_sink_store_create(&sc, "again", NULL, &s2, &err), ==, LH_EUNAVAIL);
    lh_sink_report_free(&rep);
    lh_sink_destroy(s);
}

TEST(indexer_configs_in_the_repository_load_and_validate)
{
    char root[4096];
    snprintf(root, sizeof(root), "%s/../..", lh_test_build_dir());
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/config/local/indexer.yaml", root);
    if (access(probe, R_OK) != 0)
        snprintf(root, sizeof(root), ".");
    setenv("KAFKA_PASSWORD", "x", 1);
    setenv("OPENSEARCH_PASSWORD", "y", 1);
    setenv("LOGHAUL_ARCHIVE_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    const char *files[] = { "config/local/indexer.yaml", "config/scaled/indexer.yaml",
                            "config/examples/indexer-production.yaml", NULL };
    for (size_t i = 0; i < 4; i++) {
        char path[4300];
        snprintf(path, sizeof(path), "%s/%s", root, files[i] ? files[i] : "");
        struct lh_indexer_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        struct lh_err err = { 0 };
        int rc = lh_daemon_load_config(&lh_indexer_ops, files[i] ? path : NULL, &cfg, &err);
        if (rc != 0)
            lh_test_fail(__FILE__, __LINE__, "%s: %s", files[i] ? files[i] : "(defaults)",
                         err.msg);
        else
            lh_conf_free(lh_indexer_ops.opts, &cfg);
    }
    /* Mistakes are caught with a clear message. */
    static const struct { const char *yaml, *msg; } bad[] = {
        { "sinks: [{name: a, type: store}, {name: a, type: store, store: {dir: /x}}]",
          "'a' is used twice" },
        { "routes: [{sinks: [hot]}]", "no sink named 'hot'" },
        { "bus: {topic: 'logs.{tenant}'}", "consumes one topic" },
        { "pipeline: {replay_topic: logs}", "must differ" },
        { "sinks: [{name: s1, type: store}, {name: s2, type: store}]", "one writer" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[4300];
        snprintf(path, sizeof(path), "%s/bad.yaml", lh_test_tmpdir());
        FILE *f = fopen(path, "w");
        fputs(bad[i].yaml, f);
        fclose(f);
        struct lh_indexer_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        struct lh_err err = { 0 };
        CHECK(lh_daemon_load_config(&lh_indexer_ops, path, &cfg, &err) != 0);
        CHECK_CONTAINS(err.msg, bad[i].msg);
    }
}

struct growing {
    struct lh_bus *bus;
    size_t seen;
};

static int grow_visit(void *arg, const struct lh_dlq_entry *e)
{
    struct growing *g = arg;
    (void)e;
    if (g->seen++ == 0) {
        /* New dead letters arrive while the scan runs (a replay's events
         * refused again): the scan must not chase them. */
        struct lh_bus_header h = { "sink", "x" };
        struct lh_bus_msg m[3];
        for (int i = 0; i < 3; i++)
            m[i] = (struct lh_bus_msg){ .value = "{}", .value_len = 2, .headers = &h,
                                        .nheaders = 1 };
        struct lh_err err = { 0 };
        if (lh_bus_produce(g->bus, "logs.dlq", m, 3, &err) < 0)
            lh_test_fail(__FILE__, __LINE__, "produce: %s", err.msg);
    }
    return 0;
}

TEST(dlq_scan_stops_at_the_end_it_saw_when_it_began)
{
    quiet();
    struct lh_bus *bus = open_bus();
    struct lh_bus_header h = { "sink", "x" };
    struct lh_bus_msg m[4];
    for (int i = 0; i < 4; i++)
        m[i] = (struct lh_bus_msg){ .value = "{}", .value_len = 2, .headers = &h, .nheaders = 1 };
    struct lh_err err = { 0 };
    REQUIRE(lh_bus_produce(bus, "logs.dlq", m, 4, &err) == 0);
    struct lh_dlq_scan scan = { .topic = "logs.dlq", .first_wait_ms = 200, .idle_wait_ms = 100 };
    struct growing g = { bus, 0 };
    CHECK_INT(lh_dlq_each(bus, &scan, grow_visit, &g, &err), ==, 4);
    /* A replay takes the 7 there now, commits, and a second one finds none. */
    struct lh_dlq_replay_stats rs;
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.seen, ==, 7);
    CHECK_INT(rs.replayed, ==, 7);
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.seen, ==, 0);
    /* max: only that many are replayed and committed. */
    REQUIRE(lh_bus_produce(bus, "logs.dlq", m, 4, &err) == 0);
    scan.max = 3;
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.replayed, ==, 3);
    scan.max = 0;
    CHECK_INT(lh_dlq_replay(bus, &scan, "logs.replay", NULL, 0, 0, &rs, &err), ==, 0);
    CHECK_INT(rs.replayed, ==, 1);
    CHECK_INT(pending(bus, "check", "logs.replay"), ==, 11);
    lh_bus_close(bus);
}

static const char *reject_all(size_t i)
{
    (void)i;
    return "2026-05-23 08:06:14 [x] ERROR t u - reject-me: a line long enough to make the dead "
           "letters weigh something, padded out to a few hundred bytes with words and more words "
           "so that three of them fill a small spool but two batches of them do not fit at once";
}

static int dlq_paused(const struct lh_pipeline_stats *st) { return st->paused; }
static int committed_6(const struct lh_pipeline_stats *st) { return st->committed >= 6; }

TEST(pipeline_full_dlq_pauses_until_it_has_room)
{
    quiet();
    struct lh_bus_config cfg = { 0 };
    cfg.type = LH_BUS_SPOOL;
    cfg.spool.dir = path_in("spool");
    cfg.spool.segment_bytes = 1u << 20;
    cfg.spool.group_commit_ms = 1;
    cfg.spool.fsync = 1;
    cfg.spool.max_bytes = 3000;     /* per topic, unconsumed */
    struct lh_bus *bus = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_bus_open(&cfg, NULL, &bus, &err) == 0);
    struct tsink t;
    tsink_init(&t, "flaky");
    t.reject = "reject-me";
    struct lh_sink *sinks[1] = { &t.base };
    struct popts o = { 0 };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 1, &o);
    REQUIRE(lh_pipeline_start(p, NULL, NULL, &err) == 0);
    /* Three dead letters fit (nobody reads the DLQ yet: all its bytes count). */
    produce(bus, 20, 3, reject_all, NULL);
    for (int i = 0; i < 500; i++) {
        struct lh_pipeline_stats st;
        lh_pipeline_stats(p, &st);
        if (st.committed == 3)
            break;
        usleep(10000);
    }
    /* Three more do not: the pipeline holds them, not committed. */
    produce(bus, 21, 3, reject_all, NULL);
    REQUIRE(wait_for(p, dlq_paused));
    struct lh_buf why = LH_BUF_INIT;
    CHECK_INT(lh_pipeline_status(p, &why), ==, -1);
    CHECK_CONTAINS(why.data, "dead-letter queue unavailable: EFULL");
    struct lh_pipeline_stats st;
    lh_pipeline_stats(p, &st);
    CHECK_INT(st.committed, ==, 3);
    CHECK_INT(st.dead_letters, ==, 3);
    /* Someone reads the DLQ: there is room again and the batch goes on. */
    struct lh_bus_consumer *c = NULL;
    REQUIRE(lh_bus_consumer_open(bus, "reader", "logs.dlq", &c, &err) == 0);
    struct lh_bus_batch b = { 0 };
    REQUIRE_INT(lh_bus_poll(c, 100, 500, &b, &err), ==, 3);
    REQUIRE(lh_bus_commit(c, &b, &err) == 0);
    lh_bus_batch_release(c, &b);
    lh_bus_consumer_close(c);
    REQUIRE(wait_for(p, committed_6));
    lh_buf_reset(&why);
    CHECK_INT(lh_pipeline_status(p, &why), ==, 0);
    lh_pipeline_destroy(p);
    CHECK_INT(pending(bus, "reader", "logs.dlq"), ==, 3);
    CHECK_INT(pending(bus, "indexer", "logs"), ==, 0);
    lh_buf_free(&why);
    tsink_free(&t);
    lh_bus_close(bus);
}

static const char *reject_with_pii(size_t i)
{
    return i % 2 ? "reject-me: refund to alice@example.com card 4111 1111 1111 1111"
                 : "ok: bob@example.org paid";
}

struct pii_seen {
    size_t n, masked, original;
};

static int pii_visit(void *arg, const struct lh_dlq_entry *e)
{
    struct pii_seen *s = arg;
    char *v = strndup(e->msg->value, e->msg->value_len);
    s->n++;
    s->original += strstr(v, "alice@example.com") || strstr(v, "4111 1111 1111 1111") ||
                   strstr(v, "carol@example.net") || strstr(v, "5555-5555-5555-4444");
    s->masked += strstr(v, "[EMAIL]") && strstr(v, "[CARD]");
    free(v);
    return 0;
}

/* Dead letters (a refused event, a value that is no event) leave with the
 * mask rules applied when the mask stage runs, and as they were without it. */
static void dlq_pii_case(const char *stages, size_t want_masked, size_t want_original)
{
    struct lh_bus *bus = open_bus();
    struct tsink t;
    tsink_init(&t, "flaky");
    t.reject = "reject-me";
    struct lh_sink *sinks[1] = { &t.base };
    produce(bus, 9, 4, reject_with_pii, NULL);
    struct lh_bus_header hdr = { "tenant", "acme" };
    const char *bad = "not an event: carol@example.net 5555-5555-5555-4444";
    struct lh_bus_msg msg = { .value = bad, .value_len = strlen(bad), .headers = &hdr,
                              .nheaders = 1 };
    struct lh_err err = { 0 };
    REQUIRE(lh_bus_produce(bus, "logs", &msg, 1, &err) == 0);
    struct popts o = { .stages = stages };
    struct lh_pipeline *p = make_pipeline(bus, sinks, 1, &o);
    CHECK_INT(run_until(p, 5), ==, 5);
    lh_pipeline_destroy(p);
    struct lh_dlq_scan scan = { .topic = "logs.dlq", .first_wait_ms = 200, .idle_wait_ms = 50 };
    struct pii_seen s = { 0 };
    CHECK_INT(lh_dlq_each(bus, &scan, pii_visit, &s, &err), ==, 3);
    CHECK_INT(s.masked, ==, want_masked);
    CHECK_INT(s.original, ==, want_original);
    tsink_free(&t);
    lh_bus_close(bus);
}

TEST(pipeline_dead_letters_are_masked_when_the_mask_stage_runs)
{
    quiet();
    dlq_pii_case("{}", 3, 0);
}

TEST(pipeline_dead_letters_are_kept_as_they_were_without_the_mask_stage)
{
    quiet();
    dlq_pii_case("{stages: [parse, enrich]}", 0, 3);
}
