/* Unit tests for the delivery ledger: row encoding, folding (idempotent under
 * replays cut differently), the unexplained arithmetic, pending cells, the
 * agent's per-boot counters, and the collector's acked rows. */
#include "../lh_test.h"
#include "../../collector/ledger.h"

#include <jansson.h>

#include "lh/audit.h"

#define B1 "0123456789abcdef0123456789abcdef"
#define B2 "fedcba9876543210fedcba9876543210"
#define HOUR 1779523200LL   /* a window start: a multiple of 3600 */

static struct lh_audit_fold *fold_new(const char *host, const char *file)
{
    struct lh_audit_filter f = { .tenant = "acme", .from = 0, .to = 0, .host = host,
                                 .file = file };
    struct lh_audit_fold *fo = NULL;
    struct lh_err err = { 0 };
    if (lh_audit_fold_create(&f, &fo, &err) < 0)
        return NULL;
    return fo;
}

static int add(struct lh_audit_fold *f, const char *json)
{
    struct lh_err err = { 0 };
    return lh_audit_fold_add(f, json, strlen(json), &err);
}

static void add_acked(struct lh_audit_fold *f, const char *batch, const char *file, int records,
                      int64_t window)
{
    struct lh_audit_acked a = { .batch = batch, .tenant = "acme", .host = "h1", .file = file,
                                .window = window, .records = records, .agent_records = -1,
                                .read = -1 };
    struct lh_buf b = LH_BUF_INIT;
    lh_audit_acked_json(&a, &b);
    add(f, b.data);
    lh_buf_free(&b);
}

static void add_set(struct lh_audit_fold *f, enum lh_audit_kind kind, const char *batch,
                    const char *sink_type, const uint32_t *idx, size_t n, int64_t at)
{
    struct lh_audit_row r = { .kind = kind, .tenant = "acme", .host = "h1", .file = "/a.log",
                              .batch = batch, .sink = sink_type, .sink_type = sink_type,
                              .window = HOUR, .at_ns = at, .idx = idx, .n = n };
    struct lh_buf b = LH_BUF_INIT;
    lh_audit_row_json(&r, &b);
    add(f, b.data);
    lh_buf_free(&b);
}

TEST(audit_window_and_event_ids)
{
    CHECK_INT(lh_audit_window(HOUR * 1000000000LL), ==, HOUR);
    CHECK_INT(lh_audit_window((HOUR + 3599) * 1000000000LL + 999999999), ==, HOUR);
    CHECK_INT(lh_audit_window((HOUR + 3600) * 1000000000LL), ==, HOUR + 3600);
    CHECK_INT(lh_audit_window(-1), ==, -3600);
    char batch[33];
    uint32_t idx = 0;
    REQUIRE_INT(lh_audit_split_id(B1 "-42", batch, &idx), ==, 0);
    CHECK_STR(batch, B1);
    CHECK_INT(idx, ==, 42);
    CHECK_INT(lh_audit_split_id(B1 "-", batch, &idx), ==, LH_EINVAL);
    CHECK_INT(lh_audit_split_id(B1 "-4x", batch, &idx), ==, LH_EINVAL);
    CHECK_INT(lh_audit_split_id("0123456789ABCDEF0123456789abcdef-1", batch, &idx), ==,
              LH_EINVAL);
    CHECK_INT(lh_audit_split_id(B1 "-99999999999", batch, &idx), ==, LH_EINVAL);
    CHECK_INT(lh_audit_split_id("abc-1", batch, &idx), ==, LH_EINVAL);
}

TEST(audit_row_json_ranges_and_ids)
{
    static const uint32_t idx[] = { 0, 1, 2, 5, 7, 8 };
    struct lh_audit_row r = { .kind = LH_AUDIT_SAMPLED, .tenant = "acme", .host = "h\"1",
                              .file = "/a.log", .batch = B1, .sink = "hot",
                              .sink_type = "store", .window = HOUR, .at_ns = 5, .idx = idx,
                              .n = 6 };
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_audit_row_json(&r, &b), ==, 0);
    CHECK_CONTAINS(b.data, "\"kind\":\"sampled\"");
    CHECK_CONTAINS(b.data, "\"idx\":\"0-2,5,7-8\"");
    CHECK_CONTAINS(b.data, "\"host\":\"h\\\"1\"");
    json_t *o = json_loads(b.data, 0, NULL);
    REQUIRE(o != NULL);
    CHECK_INT(json_integer_value(json_object_get(o, "n")), ==, 6);
    json_decref(o);
    char id1[96], id2[96];
    lh_audit_row_id(&r, id1);
    lh_audit_row_id(&r, id2);
    CHECK_STR(id1, id2);
    CHECK_CONTAINS(id1, "sampled-" B1 "-");
    r.n = 5;   /* other content, other id */
    lh_audit_row_id(&r, id2);
    CHECK(strcmp(id1, id2) != 0);
    lh_buf_free(&b);

    /* the collector's acked row gets its id and a write time */
    struct lh_audit_acked a = { .batch = B1, .tenant = "acme", .host = "h1", .file = "/a.log",
                                .boot = "boot1", .window = HOUR, .records = 3,
                                .agent_records = 3, .read = 10, .acked = 7, .dropped = 0,
                                .sampled = 1 };
    REQUIRE_INT(lh_audit_acked_json(&a, &b), ==, 0);
    struct lh_buf row = LH_BUF_INIT;
    REQUIRE_INT(lh_audit_acked_stamp(b.data, b.len, 1234, id1, &row), ==, 0);
    CHECK_CONTAINS(id1, "acked-" B1 "-");
    CHECK_CONTAINS(row.data, ",\"at\":1234}");
    CHECK_CONTAINS(row.data, "\"read\":10,\"acked\":7,\"dropped\":0,\"sampled\":1");
    CHECK_INT(lh_audit_acked_stamp("{\"kind\":\"sampled\"}", 18, 1, id2, &row), ==, LH_EINVAL);
    lh_buf_free(&row);
    lh_buf_free(&b);
}

TEST(audit_fold_is_idempotent_whatever_the_replay_cut)
{
    struct lh_audit_fold *f = fold_new(NULL, NULL);
    REQUIRE(f != NULL);
    /* batch B1: 10 records; the first run wrote its rows in two polls... */
    add_acked(f, B1, "/a.log", 10, HOUR);
    static const uint32_t s1[] = { 1, 3 }, s2[] = { 6 }, all[] = { 1, 3, 6 };
    add_set(f, LH_AUDIT_SAMPLED, B1, "store", s1, 2, 1);
    add_set(f, LH_AUDIT_SAMPLED, B1, "store", s2, 1, 1);
    /* ...the replay after a crash in one, and the acked row came again */
    add_set(f, LH_AUDIT_SAMPLED, B1, "store", all, 3, 2);
    add_acked(f, B1, "/a.log", 10, HOUR);
    /* the archive sink's samples are another figure */
    static const uint32_t a1[] = { 2 };
    add_set(f, LH_AUDIT_SAMPLED, B1, "archive", a1, 1, 2);
    /* a second batch, another tenant's row, a row that is not one */
    add_acked(f, B2, "/a.log", 5, HOUR);
    CHECK_INT(add(f, "{\"kind\":\"acked\",\"batch\":\"" B1 "\",\"tenant\":\"other\","
                     "\"host\":\"h1\",\"file\":\"/a.log\",\"window\":1779523200,"
                     "\"records\":99}"), ==, 0);
    CHECK_INT(add(f, "not json"), ==, LH_EINVAL);
    CHECK_INT(add(f, "{\"kind\":\"sampled\",\"batch\":\"x\",\"tenant\":\"acme\",\"window\":0,"
                     "\"sink_type\":\"store\",\"idx\":\"3-1\"}"), ==, LH_EINVAL);
    size_t n = 0;
    struct lh_audit_cell *c = lh_audit_fold_cells(f, &n);
    REQUIRE(c != NULL);
    REQUIRE_INT(n, ==, 1);
    CHECK_STR(c[0].host, "h1");
    CHECK_STR(c[0].file, "/a.log");
    CHECK_INT(c[0].window, ==, HOUR);
    CHECK_INT(c[0].acknowledged, ==, 15);
    CHECK_INT(c[0].hot_sampled, ==, 3);
    CHECK_INT(c[0].arch_sampled, ==, 1);
    CHECK_INT(c[0].last_at_ns, ==, 2);
    lh_audit_fold_destroy(f);
}

TEST(audit_dead_letters_replayed_and_written_are_no_longer_dead)
{
    struct lh_audit_fold *f = fold_new(NULL, NULL);
    REQUIRE(f != NULL);
    add_acked(f, B1, "/a.log", 10, HOUR);
    static const uint32_t dlq[] = { 2, 5, 9 }, rep[] = { 5, 9 }, other[] = { 5 };
    add_set(f, LH_AUDIT_DLQ, B1, "store", dlq, 3, 1);
    add_set(f, LH_AUDIT_REPLAYED, B1, "store", rep, 2, 3);
    /* a replay written by the archive sink says nothing of the hot sink's */
    add_set(f, LH_AUDIT_DLQ, B1, "archive", other, 1, 1);
    size_t n = 0;
    struct lh_audit_cell *c = lh_audit_fold_cells(f, &n);
    REQUIRE(c && n == 1);
    CHECK_INT(c[0].hot_dlq, ==, 1);
    CHECK_INT(c[0].arch_dlq, ==, 1);
    c[0].indexed = 9;   /* 7 first time + the 2 replayed */
    CHECK_INT(lh_audit_unexplained(&c[0]), ==, 0);
    lh_audit_fold_destroy(f);
}

TEST(audit_unexplained_arithmetic_and_report)
{
    struct lh_audit_fold *f = fold_new(NULL, NULL);
    REQUIRE(f != NULL);
    add_acked(f, B1, "/a.log", 10, HOUR);
    static const uint32_t smp[] = { 0, 1 }, dlq[] = { 2 }, drp[] = { 3 };
    add_set(f, LH_AUDIT_SAMPLED, B1, "opensearch", smp, 2, 1);
    add_set(f, LH_AUDIT_DLQ, B1, "opensearch", dlq, 1, 1);
    add_set(f, LH_AUDIT_DROPPED, B1, "opensearch", drp, 1, 1);
    size_t n = 0;
    struct lh_audit_cell *c = lh_audit_fold_cells(f, &n);
    REQUIRE(c && n == 1);
    c[0].indexed = 6;
    CHECK_INT(lh_audit_unexplained(&c[0]), ==, 0);
    struct lh_audit_opts o = { .now_ns = 100LL * 1000000000, .settle_ns = 10LL * 1000000000 };
    struct lh_buf b = LH_BUF_INIT;
    CHECK_INT(lh_audit_report_json(f, &o, &b), ==, 1);
    CHECK_CONTAINS(b.data, "\"acknowledged\":10,\"indexed\":6,\"archived\":0,"
                           "\"dead_lettered\":1,\"sampled\":2,\"dropped\":1,\"unexplained\":0");
    CHECK_CONTAINS(b.data, "\"ok\":true");
    /* an event deleted from the store: one unexplained */
    c[0].indexed = 5;
    CHECK_INT(lh_audit_unexplained(&c[0]), ==, 1);
    lh_buf_reset(&b);
    CHECK_INT(lh_audit_report_json(f, &o, &b), ==, 0);
    CHECK_CONTAINS(b.data, "\"unexplained\":1,\"pending\":0");
    CHECK_CONTAINS(b.data, "\"ok\":false");
    json_t *j = json_loads(b.data, 0, NULL);
    REQUIRE(j != NULL);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "totals"), "unexplained")),
              ==, 1);
    json_decref(j);
    /* ...unless its rows are younger than the settle time: pending */
    o.now_ns = 5LL * 1000000000;
    lh_buf_reset(&b);
    CHECK_INT(lh_audit_report_json(f, &o, &b), ==, 1);
    CHECK_CONTAINS(b.data, "\"unexplained\":0,\"pending\":1");
    /* the archive figure: nothing archived is a difference of 10 */
    o.now_ns = 100LL * 1000000000;
    o.archive = 1;
    lh_buf_reset(&b);
    CHECK_INT(lh_audit_report_json(f, &o, &b), ==, 0);
    CHECK_CONTAINS(b.data, "\"archive\":{\"archived\":0,\"dead_lettered\":0,\"sampled\":0,"
                           "\"dropped\":0,\"unexplained\":10");
    lh_buf_free(&b);
    lh_audit_fold_destroy(f);
}

TEST(audit_agent_counters_sum_per_boot_maxima_by_window)
{
    struct lh_audit_fold *f = fold_new("h1", "/a.log");
    REQUIRE(f != NULL);
    /* boot A: two batches in hour 1 (read 10 then 20), one in hour 2 (read 30) */
    const char *rows[] = {
        "{\"kind\":\"acked\",\"batch\":\"" B1 "\",\"tenant\":\"acme\",\"host\":\"h1\","
        "\"file\":\"/a.log\",\"window\":1779523200,\"records\":10,\"boot\":\"A\","
        "\"read\":10,\"acked\":0,\"dropped\":0,\"sampled\":0}",
        "{\"kind\":\"acked\",\"batch\":\"" B2 "\",\"tenant\":\"acme\",\"host\":\"h1\","
        "\"file\":\"/a.log\",\"window\":1779523200,\"records\":10,\"boot\":\"A\","
        "\"read\":20,\"acked\":10,\"dropped\":0,\"sampled\":0}",
        "{\"kind\":\"acked\",\"batch\":\"11111111111111111111111111111111\",\"tenant\":\"acme\","
        "\"host\":\"h1\",\"file\":\"/a.log\",\"window\":1779526800,\"records\":8,\"boot\":\"A\","
        "\"read\":30,\"acked\":20,\"dropped\":0,\"sampled\":2}",
        /* boot B (a restart): its counters start again */
        "{\"kind\":\"acked\",\"batch\":\"22222222222222222222222222222222\",\"tenant\":\"acme\","
        "\"host\":\"h1\",\"file\":\"/a.log\",\"window\":1779526800,\"records\":5,\"boot\":\"B\","
        "\"read\":5,\"acked\":0,\"dropped\":0,\"sampled\":0}",
        /* another file: filtered out */
        "{\"kind\":\"acked\",\"batch\":\"" B1 "\",\"tenant\":\"acme\",\"host\":\"h1\","
        "\"file\":\"/b.log\",\"window\":1779523200,\"records\":10,\"boot\":\"A\","
        "\"read\":10,\"acked\":0,\"dropped\":0,\"sampled\":0}",
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        CHECK_INT(add(f, rows[i]), ==, 0);
    size_t n = 0;
    struct lh_audit_cell *c = lh_audit_fold_cells(f, &n);
    REQUIRE(c && n == 2);
    CHECK_INT(c[0].window, ==, HOUR);
    CHECK_INT(c[0].read, ==, 20);
    CHECK_INT(c[0].acknowledged, ==, 20);
    CHECK_INT(c[1].window, ==, HOUR + 3600);
    CHECK_INT(c[1].read, ==, 15);          /* 10 more of boot A, 5 of boot B */
    CHECK_INT(c[1].agent_sampled, ==, 2);
    CHECK_INT(c[1].acknowledged, ==, 13);
    struct lh_audit_opts o = { .now_ns = 1 };
    struct lh_buf b = LH_BUF_INIT;
    c[0].indexed = 20;
    c[1].indexed = 13;
    CHECK_INT(lh_audit_report_json(f, &o, &b), ==, 1);
    /* read 35 = 33 acknowledged + 2 sampled by the agent: nothing pending */
    CHECK_CONTAINS(b.data, "\"read\":35,\"acknowledged\":33,\"indexed\":33");
    CHECK_CONTAINS(b.data, "\"agent_pending\":0");
    lh_buf_free(&b);
    lh_audit_fold_destroy(f);
}

TEST(audit_collector_rows_per_host_and_file)
{
    struct lh_event ev[6];
    memset(ev, 0, sizeof(ev));
    const char *hosts[] = { "h1", "h1", "h1", "h2", "h1", NULL };
    const char *files[] = { "/a.log", "/a.log", "/b.log", "/a.log", "/a.log", NULL };
    for (int i = 0; i < 6; i++) {
        ev[i].host = hosts[i];
        ev[i].file = files[i];
    }
    struct lh_ingest_file_stats fs[1] = { { .path = "/a.log", .read = 100, .acked = 90,
                                            .dropped = 1, .sampled = 2, .records = 3 } };
    struct lh_ingest_batch b = { .events = ev, .n = 6, .files = fs, .nfiles = 1,
                                 .agent_boot = "boot-1" };
    struct lh_buf out = LH_BUF_INIT;
    struct lh_cledger_entry *e = NULL;
    size_t n = 0;
    REQUIRE_INT(lh_cledger_build(&b, "acme", B1, (HOUR + 10) * 1000000000LL, &out, &e, &n), ==,
                0);
    REQUIRE_INT(n, ==, 4);
    const char *want[4][3] = { { "h1", "/a.log", "3" }, { "h1", "/b.log", "1" },
                               { "h2", "/a.log", "1" }, { "", "", "1" } };
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loadb(out.data + e[i].off, e[i].len, 0, NULL);
        REQUIRE(o != NULL);
        CHECK_STR(e[i].host, want[i][0]);
        CHECK_STR(json_string_value(json_object_get(o, "host")), want[i][0]);
        CHECK_STR(json_string_value(json_object_get(o, "file")), want[i][1]);
        CHECK_INT(json_integer_value(json_object_get(o, "records")), ==, atoi(want[i][2]));
        CHECK_INT(json_integer_value(json_object_get(o, "window")), ==, HOUR);
        CHECK_STR(json_string_value(json_object_get(o, "batch")), B1);
        /* the agent's counters ride with the file they name (both hosts' /a.log) */
        json_t *read = json_object_get(o, "read");
        if (strcmp(want[i][1], "/a.log") == 0) {
            CHECK_INT(json_integer_value(read), ==, 100);
            CHECK_INT(json_integer_value(json_object_get(o, "agent_records")), ==, 3);
            CHECK_STR(json_string_value(json_object_get(o, "boot")), "boot-1");
        } else {
            CHECK(read == NULL);
        }
        json_decref(o);
    }
    free(e);
    lh_buf_free(&out);
    /* no events: no rows */
    b.n = 0;
    lh_buf_reset(&out);
    REQUIRE_INT(lh_cledger_build(&b, "acme", B1, 0, &out, &e, &n), ==, 0);
    CHECK_INT(n, ==, 0);
    CHECK(e == NULL);
    lh_buf_free(&out);
}
