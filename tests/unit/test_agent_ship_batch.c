/* Unit tests for the agent's batch bodies (decoded by the collector's own
 * decoder after gunzip/unzstd), batch bounds, split subsets, derived UUIDs,
 * level sniffing and the disk buffer file format. */
#include "../lh_test.h"
#include "../../agent/batch.h"
#include "../../agent/buffer.h"
#include "../../agent/level.h"
#include "../../collector/ingest.h"
#include "lh/codec.h"
#include "lh/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct lh_record mkrec(const char *path, uint64_t uid, const char *msg, uint64_t start)
{
    struct lh_record r;
    memset(&r, 0, sizeof(r));
    r.msg = msg;
    r.len = strlen(msg);
    r.start = start;
    r.end = start + r.len + 1;
    r.nlines = 1;
    r.path = path;
    r.file_uid = uid;
    return r;
}

static const struct lh_ingest_limits LIMITS = { 100000, 1 << 20, 100, 64, 1 };

/* Decompresses b and decodes it with the collector's decoder. */
static int decode(const struct lh_batch *b, struct lh_arena *ar, struct lh_ingest_batch *out,
                  struct lh_buf *json)
{
    struct lh_err err = { 0 };
    struct lh_codec_ctx *c;
    REQUIRE(lh_codec_ctx_create(&c, &err) == 0);
    int rc = lh_codec_ctx_decode(c, (enum lh_codec)b->codec, b->body.data, b->body.len,
                                 SIZE_MAX, 0, json, &err);
    lh_codec_ctx_destroy(c);
    REQUIRE(rc == 0);
    CHECK_INT(json->len, ==, b->raw_len);
    struct lh_ingest_context ctx = { "t", b->uuid.b, 1, "h" };
    struct lh_ingest_error e;
    rc = lh_ingest_decode_json(json->data, json->len, &LIMITS, &ctx, ar, out, &e);
    if (rc < 0)
        fprintf(stderr, "    decode: %s: %s\n", e.field, e.message);
    return rc;
}

static void batch_roundtrip(int compression)
{
    struct lh_ledger *l = lh_ledger_create();
    lh_ledger_read(l, "/var/log/a.log", 3, 100);
    lh_ledger_drop(l, "/var/log/a.log", LH_DROP_SAMPLED, 1, 10);
    lh_ledger_drop(l, "/var/log/a.log", LH_DROP_REJECTED, 1, 10);
    struct lh_shipper_meta meta = { "host-1", "prod", "eu-1", "loghaul-agent/test" };
    struct lh_batch_config cfg = { .compression = compression };
    struct lh_batcher *bb;
    struct lh_err err = { 0 };
    REQUIRE(lh_batcher_create(&cfg, &meta, l, &bb, &err) == 0);
    CHECK(lh_batcher_empty(bb));
    CHECK(lh_batcher_due(bb) == INT64_MAX);

    struct lh_record r1 = mkrec("/var/log/a.log", 7, "hello \"world\"\t\xff end", 0);
    struct lh_k8s_meta k = { 0 };
    snprintf(k.pod, sizeof(k.pod), "web-1");
    snprintf(k.namespace_, sizeof(k.namespace_), "shop");
    snprintf(k.container, sizeof(k.container), "nginx");
    snprintf(k.container_id, sizeof(k.container_id), "abc123");
    struct lh_record r2 = mkrec("/var/log/containers/web.log", 9, "second line", 0);
    r2.k8s = &k;
    r2.stream = "stderr";
    r2.ts_ns = 1716451574123456789LL;
    struct lh_record r3 = mkrec("/var/log/a.log", 7, "third", r1.end);
    r3.nlines = 3;
    struct lh_record skipped = mkrec("/var/log/a.log", 7, "sampled away", r3.end);
    CHECK_INT(lh_batcher_add(bb, &r1, r1.msg, r1.len, 1000000000LL, 100), ==, 0);
    CHECK_INT(lh_batcher_add(bb, &r2, r2.msg, r2.len, 1000000000LL, 150), ==, 0);
    CHECK_INT(lh_batcher_add(bb, &r3, r3.msg, r3.len, 1000000000LL, 160), ==, 0);
    CHECK_INT(lh_batcher_skip(bb, &skipped, 170), ==, 0);
    CHECK_INT(lh_batcher_records(bb), ==, 3);
    CHECK_INT(lh_batcher_due(bb), ==, 1100);   /* 1 s after the first record */

    struct lh_batch *b;
    REQUIRE(lh_batcher_seal(bb, 42, &b, &err) == 0);
    REQUIRE(b);
    CHECK(lh_batcher_empty(bb));
    CHECK_INT(b->seq, ==, 42);
    CHECK_INT(b->nrec, ==, 3);
    CHECK_INT(lh_uuid_version(&b->uuid), ==, 7);
    CHECK_INT(b->codec, ==, lh_batch_codec(compression));
    if (compression != LH_BATCH_NONE)
        CHECK_INT(lh_codec_sniff(b->body.data, b->body.len), ==, b->codec);
    REQUIRE_INT(b->nfiles, ==, 2);
    CHECK_STR(b->files[0].path, "/var/log/a.log");
    CHECK_INT(b->files[0].uid, ==, 7);
    CHECK_INT(b->files[0].end, ==, skipped.end);   /* covers the sampled record too */
    CHECK_INT(b->files[0].lines, ==, 4);
    CHECK_INT(b->files[1].lines, ==, 1);

    struct lh_arena ar = LH_ARENA_INIT;
    struct lh_ingest_batch ib;
    struct lh_buf json = LH_BUF_INIT;
    REQUIRE(decode(b, &ar, &ib, &json) == 0);
    REQUIRE_INT(ib.n, ==, 3);
    CHECK_STR(ib.host, "host-1");
    CHECK_STR(ib.cluster, "prod");
    CHECK_STR(ib.region, "eu-1");
    CHECK_STR(ib.agent_version, "loghaul-agent/test");
    CHECK_STR(ib.events[0].raw, "hello \"world\"\t\xef\xbf\xbd end");   /* U+FFFD */
    CHECK_STR(ib.events[0].file, "/var/log/a.log");
    CHECK_INT(ib.events[0].ts_ns, ==, 1000000000LL);
    CHECK_STR(ib.events[1].raw, "second line");
    CHECK_STR(ib.events[1].stream, "stderr");
    CHECK_STR(ib.events[1].container_id, "abc123");
    CHECK_STR(ib.events[1].k8s_pod, "web-1");
    CHECK_STR(ib.events[1].k8s_namespace, "shop");
    CHECK_STR(ib.events[1].k8s_container, "nginx");
    CHECK_INT(ib.events[1].ts_ns, ==, 1716451574123456789LL);
    CHECK_STR(ib.events[2].raw, "third");
    CHECK_INT(ib.unknown_keys, ==, 0);
    REQUIRE_INT(ib.nfiles, ==, 2);
    CHECK_STR(ib.files[0].path, "/var/log/a.log");
    CHECK_INT(ib.files[0].read, ==, 3);
    CHECK_INT(ib.files[0].sampled, ==, 1);
    CHECK_INT(ib.files[0].dropped, ==, 1);

    /* Each record's (off, len) is its own JSON object. */
    for (uint32_t i = 0; i < b->nrec; i++) {
        CHECK(json.data[b->recs[i].off] == '{');
        CHECK(json.data[b->recs[i].off + b->recs[i].len - 1] == '}');
    }
    CHECK_INT(b->recs[2].nlines, ==, 3);

    /* A subset keeps only the chosen records and the metadata. */
    uint32_t idx[2] = { 0, 2 };
    struct lh_buf sub = LH_BUF_INIT;
    REQUIRE(lh_batch_subset_json(json.data, json.len, b->recs, b->nrec, idx, 2, &sub) == 0);
    struct lh_ingest_context ctx = { "t", b->uuid.b, 1, "h" };
    struct lh_ingest_error e;
    lh_arena_reset(&ar);
    REQUIRE(lh_ingest_decode_json(sub.data, sub.len, &LIMITS, &ctx, &ar, &ib, &e) == 0);
    REQUIRE_INT(ib.n, ==, 2);
    CHECK_STR(ib.events[1].raw, "third");
    CHECK_STR(ib.host, "host-1");
    uint32_t bad[2] = { 2, 0 };
    CHECK(lh_batch_subset_json(json.data, json.len, b->recs, b->nrec, bad, 2, &sub) < 0);

    lh_buf_free(&sub);
    lh_buf_free(&json);
    lh_arena_free(&ar);
    lh_batch_free(b);
    lh_batcher_destroy(bb);
    lh_ledger_destroy(l);
}

TEST(agent_ship_batch_gzip_decodes_with_collector)
{
    batch_roundtrip(LH_BATCH_GZIP);
}

TEST(agent_ship_batch_zstd_and_none_decode_with_collector)
{
    batch_roundtrip(LH_BATCH_ZSTD);
    batch_roundtrip(LH_BATCH_NONE);
}

TEST(agent_ship_batch_bounds)
{
    struct lh_err err = { 0 };
    char line[600];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    /* Bytes: 4 KiB bodies; every batch stays under the bound, none is empty. */
    struct lh_batch_config cfg = { .max_bytes = 4096, .max_records = 1000, .max_age_ms = 500 };
    struct lh_batcher *bb;
    REQUIRE(lh_batcher_create(&cfg, NULL, NULL, &bb, &err) == 0);
    uint32_t total = 0, nb = 0;
    for (int i = 0; i < 100; i++) {
        struct lh_record r = mkrec("/f", 1, line, (uint64_t)i * 600);
        int rc = lh_batcher_add(bb, &r, r.msg, r.len, 1, 0);
        if (rc == LH_EFULL) {
            CHECK_INT(lh_batcher_bytes(bb), <=, 4096);
            struct lh_batch *b;
            REQUIRE(lh_batcher_seal(bb, (uint64_t)nb, &b, &err) == 0);
            CHECK(b->raw_len <= 4096 + 200);   /* + shipper_metadata */
            CHECK(b->nrec >= 5);
            total += b->nrec;
            nb++;
            lh_batch_free(b);
            rc = lh_batcher_add(bb, &r, r.msg, r.len, 1, 0);
        }
        CHECK(rc >= 0);
    }
    struct lh_batch *b;
    REQUIRE(lh_batcher_seal(bb, 99, &b, &err) == 0);
    total += b->nrec;
    lh_batch_free(b);
    CHECK_INT(total, ==, 100);
    CHECK_INT(nb, >=, 14);
    lh_batcher_destroy(bb);

    /* Records: the 10th add says "full". */
    struct lh_batch_config c2 = { .max_records = 10 };
    REQUIRE(lh_batcher_create(&c2, NULL, NULL, &bb, &err) == 0);
    for (int i = 0; i < 9; i++) {
        struct lh_record r = mkrec("/f", 1, "short", (uint64_t)i * 6);
        CHECK_INT(lh_batcher_add(bb, &r, r.msg, r.len, 1, 0), ==, 0);
    }
    struct lh_record r = mkrec("/f", 1, "short", 54);
    CHECK_INT(lh_batcher_add(bb, &r, r.msg, r.len, 1, 0), ==, 1);
    CHECK_INT(lh_batcher_add(bb, &r, r.msg, r.len, 1, 0), ==, LH_EFULL);
    /* Age: due max_age after the first record, whatever comes later. */
    REQUIRE(lh_batcher_seal(bb, 1, &b, &err) == 0);
    CHECK_INT(b->nrec, ==, 10);
    lh_batch_free(b);
    CHECK_INT(lh_batcher_add(bb, &r, r.msg, r.len, 1, 5000), ==, 0);
    CHECK_INT(lh_batcher_add(bb, &r, r.msg, r.len, 1, 5900), ==, 0);
    CHECK_INT(lh_batcher_due(bb), ==, 6000);
    /* A record larger than max_bytes travels alone. */
    lh_batcher_destroy(bb);
    struct lh_batch_config c3 = { .max_bytes = 1024 };
    REQUIRE(lh_batcher_create(&c3, NULL, NULL, &bb, &err) == 0);
    struct lh_record big = mkrec("/f", 1, line, 0);
    CHECK_INT(lh_batcher_add(bb, &big, big.msg, big.len, 1, 0), ==, 0);
    CHECK_INT(lh_batcher_add(bb, &big, big.msg, big.len, 1, 0), ==, LH_EFULL);
    lh_batcher_destroy(bb);

    struct lh_batch_config bad = { .compression = LH_BATCH_GZIP, .level = 13 };
    CHECK(lh_batch_config_check(&bad, &err) == LH_EINVAL);
    CHECK_CONTAINS(err.msg, "level");
}

TEST(agent_ship_batch_derived_uuids)
{
    struct lh_uuid p, a, b, c;
    struct lh_err err = { 0 };
    REQUIRE(lh_uuid_v7(&p, &err) == 0);
    lh_batch_derive_uuid(&p, "split:0", &a);
    lh_batch_derive_uuid(&p, "split:0", &b);
    lh_batch_derive_uuid(&p, "split:1", &c);
    CHECK(lh_uuid_cmp(&a, &b) == 0);   /* deterministic */
    CHECK(lh_uuid_cmp(&a, &c) != 0);
    CHECK(lh_uuid_cmp(&a, &p) != 0);
    CHECK_INT(lh_uuid_version(&a), ==, 8);
    CHECK_INT(a.b[8] & 0xc0, ==, 0x80);
}

TEST(agent_ship_level_sniff)
{
    static const struct {
        const char *line;
        int level;
    } cases[] = {
        { "2024-05-01 12:00:00 INFO starting", LH_LEVEL_INFO },
        { "2024-05-01 12:00:00 [DEBUG] cache miss", LH_LEVEL_DEBUG },
        { "level=info msg=\"served\"", LH_LEVEL_INFO },
        { "{\"level\":\"warn\",\"msg\":\"slow\"}", LH_LEVEL_WARN },
        { "{\"level\":30,\"msg\":\"ok\"}", LH_LEVEL_INFO },
        { "{\"level\":50,\"msg\":\"bad\"}", LH_LEVEL_ERROR },
        { "I0523 08:06:14.123456    1 main.go:10] hi", LH_LEVEL_INFO },
        { "E0523 08:06:14.123456    1 main.go:10] boom", LH_LEVEL_ERROR },
        { "W0523 08:06:14.123456    1 main.go:10] hmm", LH_LEVEL_WARN },
        { "INFO request failed", LH_LEVEL_UNKNOWN },          /* a hint of failure */
        { "INFO user error reported", LH_LEVEL_ERROR },       /* most severe word wins */
        { "Exception in thread main", LH_LEVEL_UNKNOWN },
        { "just some text", LH_LEVEL_UNKNOWN },
        { "Informational: nothing", LH_LEVEL_UNKNOWN },       /* not a level word */
        { "FATAL: out of memory", LH_LEVEL_FATAL },
        { "trace: enter", LH_LEVEL_TRACE },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = lh_level_sniff(cases[i].line, strlen(cases[i].line));
        if (got != cases[i].level)
            lh_test_fail(__FILE__, __LINE__, "\"%s\": %d, want %d", cases[i].line, got,
                         cases[i].level);
    }
    CHECK(lh_level_sampleable(LH_LEVEL_INFO));
    CHECK(lh_level_sampleable(LH_LEVEL_DEBUG));
    CHECK(!lh_level_sampleable(LH_LEVEL_WARN));
    CHECK(!lh_level_sampleable(LH_LEVEL_UNKNOWN));
}

static struct lh_batch *sample_batch(uint64_t seq, const char *text)
{
    struct lh_batch_config cfg = { 0 };
    struct lh_batcher *bb;
    struct lh_err err = { 0 };
    REQUIRE(lh_batcher_create(&cfg, NULL, NULL, &bb, &err) == 0);
    struct lh_record r = mkrec("/logs/app.log", 3, text, 0);
    REQUIRE(lh_batcher_add(bb, &r, r.msg, r.len, 1, 0) == 0);
    struct lh_batch *b;
    REQUIRE(lh_batcher_seal(bb, seq, &b, &err) == 0);
    lh_batcher_destroy(bb);
    return b;
}

TEST(agent_ship_buffer_roundtrip_order_bound_corruption)
{
    lh_log_set_level(LH_LOG_OFF);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/buf", lh_test_tmpdir());
    struct lh_dbuf_config cfg = { .dir = dir, .max_bytes = 4096 };
    struct lh_dbuf *d;
    struct lh_err err = { 0 };
    REQUIRE(lh_dbuf_open(&cfg, &d, &err) == 0);
    CHECK_INT(lh_dbuf_next_seq(d), ==, 1);
    struct lh_batch *b5 = sample_batch(5, "five"), *b3 = sample_batch(3, "three");
    REQUIRE(lh_dbuf_put(d, b5, &err) == 0);
    REQUIRE(lh_dbuf_put(d, b3, &err) == 0);
    CHECK_INT(lh_dbuf_count(d), ==, 2);
    CHECK_INT(lh_dbuf_seq_at(d, 0), ==, 3);   /* ascending, whatever the write order */
    CHECK_INT(lh_dbuf_seq_at(d, 1), ==, 5);
    CHECK_INT(lh_dbuf_next_seq(d), ==, 6);
    uint64_t bytes = lh_dbuf_bytes(d);
    CHECK(bytes > 0);
    /* Full: a batch that does not fit is refused, nothing is written. */
    int n = 2;
    int rc = 0;
    for (uint64_t s = 10; rc == 0 && s < 200; s++) {
        struct lh_batch *x = sample_batch(s, "filler filler filler");
        rc = lh_dbuf_put(d, x, &err);
        n += rc == 0;
        lh_batch_free(x);
    }
    CHECK_INT(rc, ==, LH_EFULL);
    CHECK_INT(lh_dbuf_bytes(d), <=, 4096);
    lh_dbuf_close(d);

    /* A restart finds them all; a stray .tmp is removed. */
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s/00000000000000000099.batch.tmp", dir);
    int fd = open(tmp, O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(lh_dbuf_open(&cfg, &d, &err) == 0);
    CHECK_INT(lh_dbuf_count(d), ==, n);
    CHECK(access(tmp, F_OK) != 0);
    struct lh_batch *back;
    REQUIRE(lh_dbuf_load(d, 3, &back, &err) == 0);
    CHECK(lh_uuid_cmp(&back->uuid, &b3->uuid) == 0);
    CHECK_INT(back->nrec, ==, 1);
    CHECK_INT(back->body.len, ==, b3->body.len);
    CHECK(memcmp(back->body.data, b3->body.data, b3->body.len) == 0);
    REQUIRE_INT(back->nfiles, ==, 1);
    CHECK_STR(back->files[0].path, "/logs/app.log");
    CHECK_INT(back->files[0].lines, ==, 1);
    CHECK_INT(back->recs[0].len, ==, b3->recs[0].len);
    lh_batch_free(back);

    /* A flipped byte: moved aside, dropped from the index, counted. */
    char p5[600];
    snprintf(p5, sizeof(p5), "%s/00000000000000000005.batch", dir);
    fd = open(p5, O_RDWR);
    REQUIRE(fd >= 0);
    char c;
    REQUIRE(pread(fd, &c, 1, 40) == 1);
    c ^= 1;
    REQUIRE(pwrite(fd, &c, 1, 40) == 1);
    close(fd);
    CHECK_INT(lh_dbuf_load(d, 5, &back, &err), ==, LH_ECORRUPT);
    CHECK_INT(lh_dbuf_corrupt(d), ==, 1);
    CHECK_INT(lh_dbuf_count(d), ==, n - 1);
    snprintf(p5, sizeof(p5), "%s/00000000000000000005.batch.corrupt", dir);
    CHECK(access(p5, F_OK) == 0);
    /* Remove after delivery. */
    CHECK_INT(lh_dbuf_remove(d, 3, &err), ==, 0);
    CHECK_INT(lh_dbuf_count(d), ==, n - 2);
    CHECK_INT(lh_dbuf_load(d, 3, &back, &err), ==, LH_ENOTFOUND);
    lh_dbuf_close(d);
    lh_batch_free(b3);
    lh_batch_free(b5);
}
