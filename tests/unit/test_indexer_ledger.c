/* Unit tests for the indexer's delivery-ledger rows: ledger messages from the
 * collector go to the ledger (not to sinks or the DLQ), the pipeline writes
 * what routing dropped and sampling thinned per sink, and a replay cut into
 * other batches folds to the same numbers. */
#include "../lh_test.h"
#include "stages_fixture.h"
#include "../../indexer/pipeline.h"

#include <dirent.h>
#include <sys/time.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#include "lh/audit.h"
#include "lh/log.h"
#include "lh/time.h"

/* A sink that keeps the ids it got; its ops name makes it a "store" (hot)
 * or an "archive" sink for the ledger. */
struct lsink {
    struct lh_sink base;
    char **ids;
    size_t n, cap;
};

static int lsink_write(struct lh_sink *s, const struct lh_event *evs, size_t n,
                       struct lh_sink_report *rep, struct lh_err *err)
{
    (void)err;
    struct lsink *t = s->ctx;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t k = 0; k < t->n && !dup; k++)
            dup = strcmp(t->ids[k], evs[i].id) == 0;
        if (dup)
            continue;
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 256;
            t->ids = realloc(t->ids, t->cap * sizeof(*t->ids));
        }
        t->ids[t->n++] = strdup(evs[i].id);
        rep->written++;
    }
    return 0;
}

static void lsink_destroy(struct lh_sink *s) { (void)s; }

static const struct lh_sink_ops hot_ops = { .name = "store", .write = lsink_write,
                                            .destroy = lsink_destroy };
static const struct lh_sink_ops arch_ops = { .name = "archive", .write = lsink_write,
                                             .destroy = lsink_destroy };

static void lsink_init(struct lsink *t, const char *name, const struct lh_sink_ops *ops)
{
    memset(t, 0, sizeof(*t));
    t->base.ops = ops;
    t->base.ctx = t;
    snprintf(t->base.name, sizeof(t->base.name), "%s", name);
}

static void lsink_free(struct lsink *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->ids[i]);
    free(t->ids);
}

static char *path_in(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", lh_test_tmpdir(), name);
    return buf[k];
}


#define NEV 300
#define RECEIVED 1779523574000000000LL

/* NEV events of one batch (levels TRACE..FATAL in turn) followed, in the
 * same produce call, by the collector's acked row for them. */
static void produce_batch(struct lh_bus *bus)
{
    static const char *const v[] = {
        "2026-05-23 08:06:14 [svc] TRACE t u - a trace",
        "2026-05-23 08:06:14 [svc] DEBUG t u - a debug",
        "2026-05-23 08:06:14 [svc] INFO t u - an info",
        "2026-05-23 08:06:14 [svc] WARN t u - a warning",
        "2026-05-23 08:06:14 [svc] ERROR t u - an error",
        "2026-05-23 08:06:14 [svc] FATAL t u - a fatal",
    };
    uint8_t uuid[16];
    memset(uuid, 7, sizeof(uuid));
    struct lh_buf enc = LH_BUF_INIT, row = LH_BUF_INIT;
    struct lh_bus_msg msgs[NEV + 1];
    size_t ends[NEV];
    char ids[NEV][LH_EVENT_ID_MAX];
    struct lh_bus_header hdr = { "tenant", "acme" };
    struct lh_bus_header lhdr[2] = { { "tenant", "acme" }, { "type", "ledger" } };
    for (size_t i = 0; i < NEV; i++) {
        struct lh_event ev;
        memset(&ev, 0, sizeof(ev));
        lh_event_id(ids[i], uuid, (uint32_t)i);
        ev.id = ids[i];
        ev.tenant = "acme";
        ev.host = "web-1";
        ev.file = "/a.log";
        ev.ts_ns = RECEIVED;
        ev.received_ns = RECEIVED;
        ev.raw = ev.message = v[i % 6];
        lh_event_encode(&ev, &enc);
        ends[i] = enc.len;
    }
    for (size_t i = 0; i < NEV; i++) {
        size_t a = i ? ends[i - 1] : 0;
        msgs[i] = (struct lh_bus_msg){ .key = "web-1", .key_len = 5, .value = enc.data + a,
                                       .value_len = ends[i] - a, .headers = &hdr,
                                       .nheaders = 1 };
    }
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
    struct lh_audit_acked ack = { .batch = hex, .tenant = "acme", .host = "web-1",
                                  .file = "/a.log", .window = lh_audit_window(RECEIVED),
                                  .records = NEV, .agent_records = -1, .read = -1 };
    lh_audit_acked_json(&ack, &row);
    msgs[NEV] = (struct lh_bus_msg){ .key = "web-1", .key_len = 5, .value = row.data,
                                     .value_len = row.len, .headers = lhdr, .nheaders = 2 };
    struct lh_err err = { 0 };
    if (lh_bus_produce(bus, "logs", msgs, NEV + 1, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "produce: %s", err.msg);
    lh_buf_free(&enc);
    lh_buf_free(&row);
}

/* Runs a pipeline of group over the topic until everything is committed. */
static void run(struct lh_bus *bus, struct lh_sink **sinks, const char *group, int64_t max_batch,
                const char *ledger_dir, struct lh_metrics *m, struct lh_pipeline_stats *st)
{
    const char *rules = "routes:\n"
                        "  - {name: hot, min_level: WARN, sinks: [hot]}\n"
                        "  - {name: all, sinks: [arch]}\n"
                        "sample:\n"
                        "  - {name: thin, max_level: DEBUG, rate: 0.5, sinks: [arch]}\n";
    struct lh_pipeline_config pc = { .group = (char *)group, .max_batch = max_batch,
                                     .max_batch_bytes = 16u << 20, .linger_ms = 5, .workers = 1,
                                     .backoff_base_ms = 10, .backoff_cap_ms = 50,
                                     .flush_interval_ms = 1000 };
    struct lh_iledger *lg = NULL;
    struct lh_err err = { 0 };
    if (lh_iledger_open_dir(ledger_dir, &lg, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "ledger: %s", err.msg);
    struct lh_pipeline_args a = { .bus = bus, .topic = "logs", .dlq_topic = "logs.dlq",
                                  .sinks = sinks, .nsinks = 2,
                                  .stages = lh_test_stages(rules, sinks, 2), .ledger = lg,
                                  .metrics = m };
    struct lh_pipeline *p = NULL;
    if (lh_pipeline_create(&pc, &a, &p, &err) < 0) {
        lh_test_fail(__FILE__, __LINE__, "pipeline: %s", err.msg);
        return;
    }
    size_t total = 0;
    int idle = 0;
    while (total < NEV + 1 && idle < 3) {
        int rc = lh_pipeline_step(p, &err);
        if (rc < 0)
            lh_test_fail(__FILE__, __LINE__, "step: %s", err.msg);
        idle = rc <= 0 ? idle + 1 : 0;
        total += rc > 0 ? (size_t)rc : 0;
    }
    CHECK_INT(total, ==, NEV + 1);
    lh_pipeline_stats(p, st);
    lh_pipeline_destroy(p);
}

/* One more step of group g1 (what was produced since its last run). */
static void run_one(struct lh_bus *bus, struct lh_sink **sinks, const char *ledger_dir)
{
    struct lh_pipeline_config pc = { .group = "g1", .max_batch = 100,
                                     .max_batch_bytes = 16u << 20, .linger_ms = 5, .workers = 1,
                                     .backoff_base_ms = 10, .backoff_cap_ms = 50,
                                     .flush_interval_ms = 1000 };
    struct lh_iledger *lg = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_iledger_open_dir(ledger_dir, &lg, &err), ==, 0);
    struct lh_pipeline_args a = { .bus = bus, .topic = "logs", .dlq_topic = "logs.dlq",
                                  .sinks = sinks, .nsinks = 2,
                                  .stages = lh_test_stages("{}", sinks, 2), .ledger = lg };
    struct lh_pipeline *p = NULL;
    REQUIRE_INT(lh_pipeline_create(&pc, &a, &p, &err), ==, 0);
    int rc, idle = 0;
    size_t total = 0;
    while (total < 1 && idle < 3) {
        rc = lh_pipeline_step(p, &err);
        idle = rc <= 0 ? idle + 1 : 0;
        total += rc > 0 ? (size_t)rc : 0;
    }
    CHECK_INT(total, ==, 1);
    lh_pipeline_destroy(p);
}

/* Folds every row file of dir. */
static struct lh_audit_cell fold_dir(const char *dir, size_t *ncells, size_t *nrows)
{
    struct lh_audit_filter flt = { .tenant = "acme" };
    struct lh_audit_fold *f = NULL;
    struct lh_err err = { 0 };
    struct lh_audit_cell out;
    memset(&out, 0, sizeof(out));
    *nrows = 0;
    REQUIRE_INT(lh_audit_fold_create(&flt, &f, &err), ==, 0);
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".ndjson"))
            continue;
        char p[2048];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        FILE *fp = fopen(p, "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (fp && (n = getline(&line, &cap, fp)) > 0) {
            CHECK_INT(lh_audit_fold_add(f, line, (size_t)n - 1, &err), ==, 0);
            (*nrows)++;
        }
        free(line);
        if (fp)
            fclose(fp);
    }
    closedir(d);
    struct lh_audit_cell *c = lh_audit_fold_cells(f, ncells);
    if (c && *ncells)
        out = c[0];
    out.host = out.file = NULL;   /* owned by the fold */
    lh_audit_fold_destroy(f);
    return out;
}

TEST(indexer_ledger_rows_for_routing_sampling_and_the_collector)
{
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_bus_config bc = { 0 };
    bc.type = LH_BUS_SPOOL;
    bc.spool.dir = path_in("spool");
    bc.spool.segment_bytes = 1u << 20;
    bc.spool.group_commit_ms = 1;
    bc.spool.fsync = 1;
    struct lh_bus *bus = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_bus_open(&bc, NULL, &bus, &err), ==, 0);
    produce_batch(bus);
    const char *ldir = path_in("ledger");

    struct lsink hot, arch;
    lsink_init(&hot, "hot", &hot_ops);
    lsink_init(&arch, "arch", &arch_ops);
    struct lh_sink *sinks[2] = { &hot.base, &arch.base };
    struct lh_pipeline_stats st;
    struct lh_metrics *m = lh_metrics_create();
    run(bus, sinks, "g1", 1000, ldir, m, &st);
    /* the ledger message is not an event: no sink has it, nothing went to the DLQ */
    CHECK_INT(st.dead_letters, ==, 0);
    CHECK_INT(hot.n, ==, NEV / 2);                 /* WARN, ERROR, FATAL */
    CHECK(arch.n > NEV * 4 / 6 && arch.n < NEV);   /* TRACE and DEBUG halved */
    size_t ncells = 0, nrows = 0;
    struct lh_audit_cell c = fold_dir(ldir, &ncells, &nrows);
    REQUIRE_INT(ncells, ==, 1);
    CHECK_INT(c.window, ==, lh_audit_window(RECEIVED));
    CHECK_INT(c.acknowledged, ==, NEV);
    CHECK_INT(c.hot_dropped, ==, NEV - hot.n);     /* not routed to the hot sink */
    CHECK_INT(c.hot_sampled, ==, 0);
    CHECK_INT(c.arch_sampled, ==, NEV - arch.n);
    CHECK_INT(c.arch_dropped, ==, 0);
    c.indexed = hot.n;
    CHECK_INT(lh_audit_unexplained(&c), ==, 0);
    size_t first_rows = nrows;
    CHECK_INT(lh_counter_value(lh_counter_get(m, "loghaul_indexer_ledger_rows_total", "", "")),
              ==, nrows);
    CHECK_INT(lh_counter_value(lh_counter_get(m, "loghaul_indexer_ledger_errors_total", "", "")),
              ==, 0);
    lh_metrics_destroy(m);

    /* A replay of the same messages by another group in batches of 7 (every
     * cut differs) adds rows, and folds to the very same numbers. */
    struct lsink hot2, arch2;
    lsink_init(&hot2, "hot", &hot_ops);
    lsink_init(&arch2, "arch", &arch_ops);
    struct lh_sink *sinks2[2] = { &hot2.base, &arch2.base };
    run(bus, sinks2, "g2", 7, ldir, NULL, &st);
    struct lh_audit_cell c2 = fold_dir(ldir, &ncells, &nrows);
    CHECK(nrows > first_rows * 2);
    CHECK_INT(ncells, ==, 1);
    CHECK_INT(c2.acknowledged, ==, NEV);
    CHECK_INT(c2.hot_dropped, ==, c.hot_dropped);
    CHECK_INT(c2.arch_sampled, ==, c.arch_sampled);
    CHECK_INT(arch2.n, ==, arch.n);
    /* A dead letter replayed for the hot sink: written there ("replayed"),
     * and no row for the archive sink, which has it already. */
    struct lh_buf enc = LH_BUF_INIT;
    struct lh_event ev;
    memset(&ev, 0, sizeof(ev));
    char id[LH_EVENT_ID_MAX];
    uint8_t uuid[16];
    memset(uuid, 7, sizeof(uuid));
    lh_event_id(id, uuid, 4);   /* an INFO event: once dropped for the hot sink */
    ev.id = id;
    ev.tenant = "acme";
    ev.host = "web-1";
    ev.file = "/a.log";
    ev.ts_ns = ev.received_ns = RECEIVED;
    ev.raw = ev.message = "2026-05-23 08:06:14 [svc] WARN t u - a warning";
    lh_event_encode(&ev, &enc);
    struct lh_bus_header rh[2] = { { "tenant", "acme" }, { "replay_sink", "hot" } };
    struct lh_bus_msg rm = { .key = "web-1", .key_len = 5, .value = enc.data,
                             .value_len = enc.len, .headers = rh, .nheaders = 2 };
    REQUIRE_INT(lh_bus_produce(bus, "logs", &rm, 1, &err), ==, 0);
    lh_buf_free(&enc);
    size_t before = nrows;
    run_one(bus, sinks, ldir);
    struct lh_audit_cell c3 = fold_dir(ldir, &ncells, &nrows);
    CHECK_INT(nrows, ==, before + 1);   /* one row: replayed, for the hot sink */
    CHECK_INT(c3.arch_sampled, ==, c.arch_sampled);
    CHECK_INT(c3.arch_dropped, ==, 0);
    lsink_free(&hot);
    lsink_free(&arch);
    lsink_free(&hot2);
    lsink_free(&arch2);
    lh_bus_close(bus);
}

TEST(indexer_ledger_dir_expires_old_files_never_the_open_one)
{
    const char *dir = path_in("ledger");
    struct lh_iledger *l = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_iledger_open_dir(dir, &l, &err), ==, 0);
    char old[2048], young[2048];
    snprintf(old, sizeof(old), "%s/1-1-1.ndjson", dir);
    snprintf(young, sizeof(young), "%s/2-1-1.ndjson", dir);
    FILE *f = fopen(old, "w");
    REQUIRE(f != NULL);
    fputs("{}\n", f);
    fclose(f);
    f = fopen(young, "w");
    REQUIRE(f != NULL);
    fclose(f);
    struct timeval tv[2] = { { time(NULL) - 3 * 86400, 0 }, { time(NULL) - 3 * 86400, 0 } };
    REQUIRE_INT(utimes(old, tv), ==, 0);
    lh_iledger_set_retention(l, 2 * 86400 * 1000LL);
    REQUIRE_INT(lh_iledger_add(l, "id1", "{\"a\":1}", 7), ==, 0);
    CHECK_INT(lh_iledger_pending(l), ==, 1);
    REQUIRE_INT(lh_iledger_commit(l, &err), ==, 0);
    CHECK_INT(lh_iledger_pending(l), ==, 0);
    CHECK(access(old, F_OK) != 0);
    CHECK(access(young, F_OK) == 0);
    size_t files = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        files += strstr(de->d_name, ".ndjson") != NULL;
    if (d)
        closedir(d);
    CHECK_INT(files, ==, 2);   /* the young one and the writer's */
    lh_iledger_close(l);
}
