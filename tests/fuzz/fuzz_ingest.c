/* fuzz_ingest.c - libFuzzer target: the collector's ingest body decoders
 * (collector/ingest.c), the JSON form of POST /v1/logs/ingest and the NDJSON
 * form, each event then encoded for the bus and decoded back
 * (lh_event_encode / lh_event_decode), which must round-trip. */
#include "fuzz.h"

#include "../../collector/ingest.h"
#include "lh/event.h"

static const uint8_t batch_uuid[16] = { 0x5e, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void roundtrip(const struct lh_event *ev)
{
    struct lh_buf b = LH_BUF_INIT;
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_err err = { 0 };
    struct lh_event back;
    FUZZ_CHECK(lh_event_encode(ev, &b) == 0, "encode failed");
    int rc = lh_event_decode(b.data, b.len, &a, &back, &err);
    FUZZ_CHECK(rc == 0, "decode of an encoded event failed: %s: %.*s", err.msg, (int)b.len,
               b.data);
    FUZZ_CHECK(back.ts_ns == ev->ts_ns, "timestamp %lld != %lld", (long long)back.ts_ns,
               (long long)ev->ts_ns);
    FUZZ_CHECK(back.level == ev->level, "level");
    FUZZ_CHECK(same(back.id, ev->id), "id");
    FUZZ_CHECK(same(back.message, ev->message), "message");
    FUZZ_CHECK(same(back.service, ev->service), "service");
    FUZZ_CHECK(back.nmeta == ev->nmeta, "metadata count %zu != %zu", back.nmeta, ev->nmeta);
    lh_buf_free(&b);
    lh_arena_free(&a);
}

static void check_batch(const struct lh_ingest_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct lh_event *ev = &b->events[i];
        fuzz_touch_str(ev->message);
        fuzz_touch_str(ev->raw);
        fuzz_touch_str(ev->host);
        for (size_t k = 0; k < ev->nmeta; k++) {
            fuzz_touch_str(ev->meta[k].key);
            fuzz_touch_str(ev->meta[k].value);
        }
        roundtrip(ev);
    }
    for (size_t i = 0; i < b->nfiles; i++)
        fuzz_touch_str(b->files[i].path);
    fuzz_touch_str(b->cluster);
    fuzz_touch_str(b->agent_version);
    fuzz_touch_str(b->region);
}

static void check_error(int rc, const struct lh_ingest_error *e)
{
    FUZZ_CHECK(rc == LH_EINVAL || rc == LH_ETOOBIG, "unexpected return %d", rc);
    FUZZ_CHECK(memchr(e->field, 0, sizeof(e->field)) && memchr(e->message, 0, sizeof(e->message)),
               "error strings not terminated");
    FUZZ_CHECK(e->message[0], "an error without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Small limits, so that the 413 paths are reachable with small inputs. */
    struct lh_ingest_limits lim = { .max_records = 64, .max_field_bytes = 512,
                                    .max_meta_keys = 8, .max_depth = 6, .utf8_repair = 1 };
    struct lh_ingest_context ctx = { .tenant = "fuzz", .batch_uuid = batch_uuid,
                                     .received_ns = INT64_C(1779523574000000000),
                                     .default_host = "10.0.0.1" };
    const char *body = (const char *)data;   /* exactly size bytes: no terminator */
    for (int form = 0; form < 2; form++) {
        struct lh_arena arena = LH_ARENA_INIT;
        struct lh_ingest_batch b;
        struct lh_ingest_error e;
        memset(&e, 0, sizeof(e));
        lim.utf8_repair = form == 0;
        int rc = form == 0 ? lh_ingest_decode_json(body, size, &lim, &ctx, &arena, &b, &e)
                           : lh_ingest_decode_ndjson(body, size, &lim, &ctx, &arena, &b, &e);
        if (rc == 0) {
            FUZZ_CHECK(b.n <= lim.max_records, "%zu records over the limit", b.n);
            check_batch(&b);
        } else {
            check_error(rc, &e);
        }
        lh_arena_free(&arena);
    }
    return 0;
}
