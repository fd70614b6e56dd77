/* Unit tests for the archive object formats: thrift.c (Compact Protocol),
 * parquet.c (our writer and reader), archive_ndjson.c. */
#include "../lh_test.h"
#include "../../common/archive_impl.h"
#include "lh/archive_format.h"
#include "lh/thrift.h"

#include <stdint.h>
#include <string.h>

#include <zstd.h>

/* ---- thrift ---- */

TEST(archive_thrift_known_bytes)
{
    struct lh_buf b = LH_BUF_INIT;
    struct lh_thrift_writer w;
    lh_thrift_writer_init(&w, &b);
    lh_thrift_write_struct_begin(&w);
    lh_thrift_write_field_i32(&w, 1, 1);       /* delta 1, type 5: 0x15, zigzag(1) = 2 */
    lh_thrift_write_field_i64(&w, 2, -1);      /* 0x16, zigzag(-1) = 1 */
    lh_thrift_write_field_bool(&w, 3, 1);      /* 0x11 */
    lh_thrift_write_field_string(&w, 20, "ab"); /* long delta: 0x08, zigzag(20)=40, 2 'a' 'b' */
    lh_thrift_write_field_list(&w, 21, LH_THRIFT_I32, 2);   /* 0x19, 0x25, 0x00 0x02 */
    lh_thrift_write_i32(&w, 0);
    lh_thrift_write_i32(&w, 1);
    lh_thrift_write_struct_end(&w);
    REQUIRE_INT(lh_thrift_writer_error(&w), ==, 0);
    const uint8_t want[] = { 0x15, 0x02, 0x16, 0x01, 0x11, 0x08, 40, 2, 'a', 'b',
                             0x19, 0x25, 0x00, 0x02, 0x00 };
    REQUIRE_INT(b.len, ==, sizeof(want));
    CHECK(memcmp(b.data, want, sizeof(want)) == 0);
    lh_buf_free(&b);
}

static void write_sample(struct lh_buf *b)
{
    struct lh_thrift_writer w;
    lh_thrift_writer_init(&w, b);
    lh_thrift_write_struct_begin(&w);
    lh_thrift_write_field_i32(&w, 1, -123456);
    lh_thrift_write_field_i64(&w, 2, INT64_MIN);
    lh_thrift_write_field_bool(&w, 3, 1);
    lh_thrift_write_field_bool(&w, 4, 0);
    lh_thrift_write_field_binary(&w, 5, "a\0b", 3);
    lh_thrift_write_field_struct(&w, 6);
    lh_thrift_write_field_i32(&w, 1, 7);
    lh_thrift_write_field_i64(&w, 100, INT64_MAX);
    lh_thrift_write_struct_end(&w);
    lh_thrift_write_field_list(&w, 20, LH_THRIFT_I32, 20);
    for (int i = 0; i < 20; i++)
        lh_thrift_write_i32(&w, i * 1000 - 5000);
    lh_thrift_write_field_list(&w, 40, LH_THRIFT_STRUCT, 3);
    for (int i = 0; i < 3; i++) {
        lh_thrift_write_struct_begin(&w);
        lh_thrift_write_field_string(&w, 1, i == 1 ? "" : "x\xc3\xa9");
        lh_thrift_write_struct_end(&w);
    }
    lh_thrift_write_field_double(&w, 41, -2.5);
    lh_thrift_write_field_i16(&w, 42, -300);
    /* fields a reader does not know: skipped */
    lh_thrift_write_field_list(&w, 300, LH_THRIFT_BINARY, 2);
    lh_thrift_write_string(&w, "unknown");
    lh_thrift_write_string(&w, "fields");
    lh_thrift_write_field_struct(&w, 301);
    lh_thrift_write_field_struct(&w, 1);
    lh_thrift_write_field_double(&w, 2, 1.0);
    lh_thrift_write_struct_end(&w);
    lh_thrift_write_struct_end(&w);
    lh_thrift_write_field_i32(&w, 302, 9);
    lh_thrift_write_struct_end(&w);
    REQUIRE_INT(lh_thrift_writer_error(&w), ==, 0);
}

/* Reads the sample back; returns the number of fields checked, -1 on a
 * reader error. */
static int read_sample(const void *data, size_t len, int check)
{
    struct lh_thrift_reader r;
    int16_t id;
    int t, seen = 0, elem;
    size_t n;
    lh_thrift_reader_init(&r, data, len);
    lh_thrift_read_struct_begin(&r);
    while (lh_thrift_read_field(&r, &id, &t)) {
        seen++;
        switch (id) {
        case 1:
            if (check)
                CHECK_INT(lh_thrift_read_i32(&r), ==, -123456);
            else
                lh_thrift_read_i32(&r);
            break;
        case 2:
            if (check)
                CHECK(lh_thrift_read_i64(&r) == INT64_MIN);
            else
                lh_thrift_read_i64(&r);
            break;
        case 3:
        case 4:
            if (check)
                CHECK_INT(t, ==, id == 3 ? LH_THRIFT_TRUE : LH_THRIFT_FALSE);
            break;
        case 5: {
            const uint8_t *p = lh_thrift_read_binary(&r, &n);
            if (check) {
                REQUIRE_INT(n, ==, 3);
                CHECK(memcmp(p, "a\0b", 3) == 0);
            }
            break;
        }
        case 6: {
            int16_t sid;
            int st;
            lh_thrift_read_struct_begin(&r);
            while (lh_thrift_read_field(&r, &sid, &st)) {
                if (sid == 1 && check)
                    CHECK_INT(lh_thrift_read_i32(&r), ==, 7);
                else if (sid == 100 && check)
                    CHECK(lh_thrift_read_i64(&r) == INT64_MAX);
                else
                    lh_thrift_skip(&r, st);
            }
            break;
        }
        case 20: {
            uint32_t cnt = lh_thrift_read_list(&r, &elem);
            if (check) {
                CHECK_INT(cnt, ==, 20);
                CHECK_INT(elem, ==, LH_THRIFT_I32);
            }
            for (uint32_t i = 0; i < cnt; i++) {
                int32_t v = lh_thrift_read_i32(&r);
                if (check)
                    CHECK_INT(v, ==, (int)i * 1000 - 5000);
            }
            break;
        }
        case 40: {
            uint32_t cnt = lh_thrift_read_list(&r, &elem);
            if (check)
                CHECK_INT(cnt, ==, 3);
            for (uint32_t i = 0; i < cnt; i++) {
                int16_t sid;
                int st;
                lh_thrift_read_struct_begin(&r);
                while (lh_thrift_read_field(&r, &sid, &st)) {
                    const uint8_t *p = lh_thrift_read_binary(&r, &n);
                    if (check) {
                        CHECK_INT(sid, ==, 1);
                        CHECK_INT(n, ==, i == 1 ? 0 : 3);
                        CHECK(i == 1 || memcmp(p, "x\xc3\xa9", 3) == 0);
                    }
                }
            }
            break;
        }
        case 41: {
            double d = lh_thrift_read_double(&r);
            if (check)
                CHECK(d == -2.5);
            break;
        }
        case 42:
            if (check) {
                CHECK_INT(t, ==, LH_THRIFT_I16);
                CHECK_INT(lh_thrift_read_i32(&r), ==, -300);
            } else {
                lh_thrift_read_i32(&r);
            }
            break;
        default:
            lh_thrift_skip(&r, t);
        }
    }
    if (lh_thrift_reader_error(&r))
        return -1;
    if (check)
        CHECK_INT(lh_thrift_reader_pos(&r, data), ==, len);
    return seen;
}

TEST(archive_thrift_round_trip)
{
    struct lh_buf b = LH_BUF_INIT;
    write_sample(&b);
    CHECK_INT(read_sample(b.data, b.len, 1), ==, 13);
    /* every truncation is an error, never a crash or a read past the end */
    for (size_t cut = 0; cut < b.len; cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.data, cut);
        CHECK_INT(read_sample(copy, cut, 0), ==, -1);
        free(copy);
    }
    lh_buf_free(&b);
}

TEST(archive_thrift_hostile_input)
{
    /* nesting deeper than the limit */
    uint8_t deep[100];
    for (size_t i = 0; i < sizeof(deep); i++)
        deep[i] = 0x1c;   /* field delta 1, type struct */
    struct lh_thrift_reader r;
    int16_t id;
    int t;
    lh_thrift_reader_init(&r, deep, sizeof(deep));
    lh_thrift_read_struct_begin(&r);
    while (lh_thrift_read_field(&r, &id, &t))
        lh_thrift_skip(&r, t);
    CHECK_INT(lh_thrift_reader_error(&r), ==, LH_ECORRUPT);
    /* a list claiming more elements than bytes */
    const uint8_t biglist[] = { 0x19, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00 };
    lh_thrift_reader_init(&r, biglist, sizeof(biglist));
    lh_thrift_read_struct_begin(&r);
    while (lh_thrift_read_field(&r, &id, &t))
        lh_thrift_skip(&r, t);
    CHECK_INT(lh_thrift_reader_error(&r), ==, LH_ECORRUPT);
    /* an over-long varint */
    const uint8_t longvar[] = { 0x15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0x01, 0x00 };
    lh_thrift_reader_init(&r, longvar, sizeof(longvar));
    lh_thrift_read_struct_begin(&r);
    while (lh_thrift_read_field(&r, &id, &t))
        lh_thrift_read_i32(&r);
    CHECK_INT(lh_thrift_reader_error(&r), ==, LH_ECORRUPT);
}

/* ---- generated events ---- */

static uint64_t seed;

static uint64_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static const char *const samples[] = {
    "",
    "a",
    "payment-service",
    "caf\xc3\xa9 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80",
    "quote \" backslash \\ tab \t newline \n",
    "\x01\x1f control",
    "ERROR",
    "2026-05-23 08:06:14 [payment-service] ERROR tr_abc123 usr_456 - Database transaction "
    "timeout during capture.",
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static const char *rnd_str(struct lh_arena *a)
{
    unsigned r = (unsigned)(rnd() % 10);
    if (r < 2)
        return NULL;
    if (r < 7)
        return samples[rnd() % NSAMPLES];
    /* random printable or multi-byte text */
    size_t n = (size_t)(rnd() % 40);
    char *s = lh_arena_alloc(a, n * 3 + 1), *p = s;
    for (size_t i = 0; i < n; i++) {
        if (rnd() % 5 == 0) {
            memcpy(p, "\xc3\xa9", 2);
            p += 2;
        } else {
            *p++ = (char)(' ' + rnd() % 95);
        }
    }
    *p = '\0';
    return s;
}

static void gen_events(struct lh_arena *a, struct lh_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct lh_event *e = &evs[i];
        memset(e, 0, sizeof(*e));
        e->ts_ns = (int64_t)(rnd() % 4000000000000000000ull) - 1000000000000000000ll;
        e->level = (enum lh_level)(rnd() % LH_LEVEL_COUNT);
        const char **f[] = { &e->id, &e->tenant, &e->service, &e->host, &e->trace_id,
                             &e->span_id, &e->user_id, &e->message, &e->raw, &e->stream,
                             &e->container_id, &e->k8s_namespace, &e->k8s_pod,
                             &e->k8s_container, &e->region, &e->file };
        for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
            *f[k] = rnd_str(a);
        /* runs of absent values of the lengths around the RLE threshold */
        if ((i / 7) % 3 == 0 || (i / 17) % 2 == 0)
            e->span_id = NULL;
        size_t nm = rnd() % 4 == 0 ? 0 : rnd() % 8 == 0 ? 30 + rnd() % 40 : 1 + rnd() % 4;
        if (nm) {
            e->meta = lh_arena_alloc(a, nm * sizeof(*e->meta));
            for (size_t k = 0; k < nm; k++) {
                char key[32];
                snprintf(key, sizeof(key), k == 0 ? "" : "k\xc3\xa9y%zu", k);
                e->meta[k].key = lh_arena_strdup(a, key);
                e->meta[k].value = rnd() % 6 == 0 ? NULL : rnd_str(a);
                if (!e->meta[k].value && rnd() % 2)
                    e->meta[k].value = "";
            }
            e->nmeta = nm;
        }
    }
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Compares the archived fields; ts_div: 1000 when written in micros. */
static int events_equal(const struct lh_event *a, const struct lh_event *b, int64_t ts_div)
{
    int64_t ta = a->ts_ns;
    if (ts_div > 1)
        ta = (ta >= 0 ? ta / ts_div : -((-(ta + 1)) / ts_div) - 1) * ts_div;
    if (ta != b->ts_ns || a->level != b->level)
        return 0;
    if (!str_eq(a->id, b->id) || !str_eq(a->tenant, b->tenant) ||
        !str_eq(a->service, b->service) || !str_eq(a->host, b->host) ||
        !str_eq(a->trace_id, b->trace_id) || !str_eq(a->span_id, b->span_id) ||
        !str_eq(a->user_id, b->user_id) || !str_eq(a->message, b->message) ||
        !str_eq(a->raw, b->raw) || !str_eq(a->stream, b->stream) ||
        !str_eq(a->container_id, b->container_id) ||
        !str_eq(a->k8s_namespace, b->k8s_namespace) || !str_eq(a->k8s_pod, b->k8s_pod) ||
        !str_eq(a->k8s_container, b->k8s_container) || !str_eq(a->region, b->region) ||
        !str_eq(a->file, b->file))
        return 0;
    if (a->nmeta != b->nmeta || (a->nmeta == 0 && b->meta))
        return 0;
    for (size_t k = 0; k < a->nmeta; k++)
        if (!str_eq(a->meta[k].key, b->meta[k].key) || !str_eq(a->meta[k].value, b->meta[k].value))
            return 0;
    return 1;
}

static void check_all_equal(const struct lh_event *want, const struct lh_event *got, size_t n,
                            int64_t ts_div)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!events_equal(&want[i], &got[i], ts_div)) {
            if (bad++ < 3)
                lh_test_fail(__FILE__, __LINE__, "event %zu differs after the round trip", i);
        }
    }
    CHECK_INT(bad, ==, 0);
}

/* ---- parquet ---- */

static void parquet_round_trip(const struct lh_parquet_opts *o, size_t n, int64_t ts_div)
{
    struct lh_arena a = LH_ARENA_INIT, ra = LH_ARENA_INIT;
    struct lh_event *evs = calloc(n ? n : 1, sizeof(*evs)), *got = NULL;
    struct lh_buf out = LH_BUF_INIT;
    struct lh_err err = { 0 };
    size_t ngot = 0;
    gen_events(&a, evs, n);
    REQUIRE_INT(lh_parquet_write(evs, n, o, &out, &err), ==, 0);
    CHECK(memcmp(out.data, "PAR1", 4) == 0 && memcmp(out.data + out.len - 4, "PAR1", 4) == 0);
    int rc = lh_parquet_read(out.data, out.len, &ra, &got, &ngot, &err);
    if (rc < 0)
        lh_test_fail(__FILE__, __LINE__, "read: %s", err.msg);
    REQUIRE_INT(rc, ==, 0);
    REQUIRE_INT(ngot, ==, n);
    check_all_equal(evs, got, n, ts_div);
    free(evs);
    lh_buf_free(&out);
    lh_arena_free(&a);
    lh_arena_free(&ra);
}

TEST(archive_parquet_round_trip)
{
    seed = 0x9e3779b97f4a7c15ull;
    struct lh_parquet_opts o = { 0 };
    parquet_round_trip(&o, 3000, 1);
}

TEST(archive_parquet_round_trip_pages_and_row_groups)
{
    seed = 12345;
    struct lh_parquet_opts o = { .row_group_rows = 333, .page_bytes = 2048 };
    parquet_round_trip(&o, 2500, 1);
    o.no_dictionary = 1;
    o.ts_micros = 1;
    o.zstd_level = 19;
    parquet_round_trip(&o, 1000, 1000);
    parquet_round_trip(&o, 1, 1000);
}

TEST(archive_parquet_empty_and_statistics)
{
    struct lh_buf out = LH_BUF_INIT;
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *got = NULL;
    size_t n = 99;
    REQUIRE_INT(lh_parquet_write(NULL, 0, NULL, &out, NULL), ==, 0);
    REQUIRE_INT(lh_parquet_read(out.data, out.len, &a, &got, &n, NULL), ==, 0);
    CHECK_INT(n, ==, 0);
    lh_buf_reset(&out);

    struct lh_event evs[10];
    memset(evs, 0, sizeof(evs));
    for (int i = 0; i < 10; i++)
        evs[i].ts_ns = 1000000000ll * (i % 2 ? 100 - i : 50 + i);   /* mixed order */
    struct lh_parquet_opts o = { .row_group_rows = 4 };
    REQUIRE_INT(lh_parquet_write(evs, 10, &o, &out, NULL), ==, 0);
    struct lh_parquet_file *f;
    REQUIRE_INT(lh_parquet_open(&f, out.data, out.len, NULL), ==, 0);
    CHECK_INT(lh_parquet_num_rows(f), ==, 10);
    REQUIRE_INT(lh_parquet_num_row_groups(f), ==, 3);
    int64_t rows, mn, mx;
    REQUIRE_INT(lh_parquet_row_group_ts(f, 0, &rows, &mn, &mx), ==, 0);
    CHECK_INT(rows, ==, 4);
    CHECK_INT(mn, ==, 50000000000ll);    /* rows 0..3: 50, 99, 52, 97 s */
    CHECK_INT(mx, ==, 99000000000ll);
    REQUIRE_INT(lh_parquet_row_group_ts(f, 2, &rows, &mn, &mx), ==, 0);
    CHECK_INT(rows, ==, 2);
    CHECK_INT(mn, ==, 58000000000ll);    /* rows 8, 9: 58, 91 s */
    CHECK_INT(mx, ==, 91000000000ll);
    CHECK_INT(lh_parquet_row_group_ts(f, 3, &rows, &mn, &mx), ==, LH_ENOTFOUND);
    /* one row group at a time */
    struct lh_event *part;
    REQUIRE_INT(lh_parquet_read_row_group(f, 1, &a, &part, &n, NULL), ==, 0);
    REQUIRE_INT(n, ==, 4);
    CHECK_INT(part[0].ts_ns, ==, evs[4].ts_ns);
    CHECK(part[0].level == LH_LEVEL_UNKNOWN && part[0].id == NULL && part[0].meta == NULL);
    lh_parquet_close(f);
    lh_buf_free(&out);
    lh_arena_free(&a);
}

TEST(archive_parquet_repairs_invalid_utf8)
{
    struct lh_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.message = "ok \xff bad \xc3 cut \xed\xa0\x80 surrogate \xe2\x82\xac";
    struct lh_kv kv = { "k\xfe", "v" };
    ev.meta = &kv;
    ev.nmeta = 1;
    struct lh_buf out = LH_BUF_INIT;
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n;
    REQUIRE_INT(lh_parquet_write(&ev, 1, NULL, &out, NULL), ==, 0);
    REQUIRE_INT(lh_parquet_read(out.data, out.len, &a, &got, &n, NULL), ==, 0);
    REQUIRE_INT(n, ==, 1);
    CHECK_STR(got[0].message, "ok \xef\xbf\xbd bad \xef\xbf\xbd cut \xef\xbf\xbd\xef\xbf\xbd"
                              "\xef\xbf\xbd surrogate \xe2\x82\xac");
    REQUIRE_INT(got[0].nmeta, ==, 1);
    CHECK_STR(got[0].meta[0].key, "k\xef\xbf\xbd");
    lh_buf_free(&out);
    lh_arena_free(&a);
}

/* raw lines holding their message come back whole (read through the
 * raw_prefix/raw_suffix columns), wherever the message stands in them. */
TEST(archive_parquet_stores_the_message_once)
{
    static const char *const msg = "Database transaction timeout during capture \xe2\x82\xac.";
    char mid[256], end[256], start[256], twice[256], bad[256], other[256];
    snprintf(mid, sizeof(mid), "2026-05-23 ERROR [pay] %s trace=abc", msg);
    snprintf(end, sizeof(end), "{\"level\":\"error\"} %s", msg);
    snprintf(start, sizeof(start), "%s {\"http\":{\"status\":500}}", msg);
    snprintf(twice, sizeof(twice), "%s, again: %s", msg, msg);
    snprintf(bad, sizeof(bad), "\xff pre %s post \xc3", msg);
    snprintf(other, sizeof(other), "Database transaction timeout during capture \\u20ac.");
    struct {
        const char *message, *raw, *want_raw;
    } cases[] = {
        { msg, mid, mid },
        { msg, end, end },
        { msg, start, start },
        { msg, msg, msg },
        { msg, twice, twice },
        { msg, bad, "\xef\xbf\xbd pre Database transaction timeout during capture \xe2\x82\xac. "
                    "post \xef\xbf\xbd" },
        { msg, other, other },                 /* escaped in raw: not a part of it */
        { "short msg", "x short msg y", "x short msg y" },
        { NULL, mid, mid },
        { msg, NULL, NULL },
        { "", "", "" },
        { "bad \xfe in both of them", "pre bad \xfe in both of them",
          "pre bad \xef\xbf\xbd in both of them" },
    };
    size_t nc = sizeof(cases) / sizeof(cases[0]);
    struct lh_event evs[sizeof(cases) / sizeof(cases[0])];
    memset(evs, 0, sizeof(evs));
    for (size_t i = 0; i < nc; i++) {
        evs[i].message = cases[i].message;
        evs[i].raw = cases[i].raw;
    }
    for (int keep = 0; keep < 2; keep++) {
        struct lh_parquet_opts o = { .keep_raw = keep, .row_group_rows = 5 };
        struct lh_buf out = LH_BUF_INIT;
        struct lh_arena a = LH_ARENA_INIT;
        struct lh_event *got;
        size_t n;
        REQUIRE_INT(lh_parquet_write(evs, nc, &o, &out, NULL), ==, 0);
        REQUIRE_INT(lh_parquet_read(out.data, out.len, &a, &got, &n, NULL), ==, 0);
        REQUIRE_INT(n, ==, nc);
        for (size_t i = 0; i < nc; i++) {
            if (!str_eq(got[i].raw, cases[i].want_raw))
                lh_test_fail(__FILE__, __LINE__, "keep_raw %d, case %zu: raw %s", keep, i,
                             got[i].raw ? got[i].raw : "(null)");
            if (i < 5 || i == 6)
                CHECK_STR(got[i].message, msg);
        }
        CHECK(got[8].message == NULL && got[9].raw == NULL);
        CHECK_STR(got[11].message, "bad \xef\xbf\xbd in both of them");
        lh_buf_free(&out);
        lh_arena_free(&a);
    }
}

/* The message's text is stored once: a file of lines with long,
 * incompressible messages is smaller by about their size than with
 * keep_raw (raw whole next to the message). */
TEST(archive_parquet_message_once_is_smaller)
{
    enum { N = 300, LEN = 1500 };
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event evs[N];
    memset(evs, 0, sizeof(evs));
    seed = 4242;
    for (size_t i = 0; i < N; i++) {
        char *m = lh_arena_alloc(&a, LEN + 1), *r = lh_arena_alloc(&a, LEN + 64);
        for (size_t k = 0; k < LEN; k++)
            m[k] = (char)('a' + rnd() % 26);
        m[LEN] = '\0';
        snprintf(r, LEN + 64, "2026-05-23 00:00:%02zu INFO [svc] %s", i % 60, m);
        evs[i].ts_ns = (int64_t)i * 1000000;
        evs[i].message = m;
        evs[i].raw = r;
    }
    struct lh_buf once = LH_BUF_INIT, twice = LH_BUF_INIT;
    struct lh_parquet_opts o = { 0 };
    REQUIRE_INT(lh_parquet_write(evs, N, &o, &once, NULL), ==, 0);
    o.keep_raw = 1;
    REQUIRE_INT(lh_parquet_write(evs, N, &o, &twice, NULL), ==, 0);
    /* 26 letters: about 4.7 bits each, LEN * 0.55 bytes a message */
    CHECK_INT(once.len + (size_t)N * LEN / 2, <, twice.len);
    CHECK_INT(once.len, >, (size_t)N * LEN / 2);
    struct lh_arena ra = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n;
    REQUIRE_INT(lh_parquet_read(once.data, once.len, &ra, &got, &n, NULL), ==, 0);
    REQUIRE_INT(n, ==, N);
    check_all_equal(evs, got, N, 1);
    lh_buf_free(&once);
    lh_buf_free(&twice);
    lh_arena_free(&a);
    lh_arena_free(&ra);
}

TEST(archive_parquet_rejects_damage)
{
    seed = 777;
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event evs[200];
    struct lh_buf out = LH_BUF_INIT;
    gen_events(&a, evs, 200);
    struct lh_parquet_opts o = { .row_group_rows = 64, .page_bytes = 1024 };
    REQUIRE_INT(lh_parquet_write(evs, 200, &o, &out, NULL), ==, 0);
    struct lh_err err = { 0 };
    struct lh_event *got;
    size_t n;
    /* every truncation fails cleanly */
    for (size_t cut = 0; cut < out.len; cut += 1 + cut / 16) {
        struct lh_arena ra = LH_ARENA_INIT;
        char *copy = malloc(cut + 1);
        memcpy(copy, out.data, cut);
        CHECK(lh_parquet_read(copy, cut, &ra, &got, &n, &err) < 0);
        free(copy);
        lh_arena_free(&ra);
    }
    /* flipped bytes anywhere: an error or (rarely, in a string) other data,
     * never a crash or an out-of-bounds read (ASan watches) */
    int errors = 0;
    for (size_t pos = 4; pos < out.len - 8; pos += 1 + pos / 64) {
        struct lh_arena ra = LH_ARENA_INIT;
        char *copy = malloc(out.len);
        memcpy(copy, out.data, out.len);
        copy[pos] ^= (char)(1 + pos % 255);
        errors += lh_parquet_read(copy, out.len, &ra, &got, &n, &err) < 0;
        free(copy);
        lh_arena_free(&ra);
    }
    CHECK(errors > 0);
    CHECK_INT(lh_parquet_read("PAR1xxxxPAR1", 12, &a, &got, &n, &err), ==, LH_ECORRUPT);
    CHECK_CONTAINS(err.msg, "parquet");
    lh_buf_free(&out);
    lh_arena_free(&a);
}

/* ---- ndjson ---- */

TEST(archive_ndjson_round_trip)
{
    seed = 4242;
    size_t n = 2000;
    struct lh_arena a = LH_ARENA_INIT, ra = LH_ARENA_INIT;
    struct lh_event *evs = calloc(n, sizeof(*evs)), *got = NULL;
    struct lh_buf out = LH_BUF_INIT;
    struct lh_err err = { 0 };
    size_t ngot = 0;
    gen_events(&a, evs, n);
    REQUIRE_INT(lh_ndjson_write(evs, n, 0, &out, &err), ==, 0);
    int rc = lh_ndjson_read(out.data, out.len, &ra, &got, &ngot, &err);
    if (rc < 0)
        lh_test_fail(__FILE__, __LINE__, "read: %s", err.msg);
    REQUIRE_INT(rc, ==, 0);
    REQUIRE_INT(ngot, ==, n);
    check_all_equal(evs, got, n, 1);
    /* a truncated frame */
    CHECK_INT(lh_ndjson_read(out.data, out.len / 2, &ra, &got, &ngot, &err), ==, LH_ECORRUPT);
    free(evs);
    lh_buf_free(&out);
    lh_arena_free(&a);
    lh_arena_free(&ra);
}

TEST(archive_ndjson_line_format_and_errors)
{
    struct lh_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.ts_ns = 1779523574123456789ll;
    ev.level = LH_LEVEL_ERROR;
    ev.service = "payment-service";
    ev.k8s_pod = "p\"1";
    struct lh_kv kv[] = { { "region", "eu" }, { "none", NULL } };
    ev.meta = kv;
    ev.nmeta = 2;
    struct lh_buf line = LH_BUF_INIT;
    REQUIRE_INT(lh_ndjson_encode_event(&ev, &line), ==, 0);
    CHECK_STR(line.data, "{\"timestamp\":\"2026-05-23T08:06:14.123456789Z\",\"level\":\"ERROR\","
                         "\"service\":\"payment-service\",\"k8s_pod\":\"p\\\"1\","
                         "\"custom_metadata\":{\"region\":\"eu\",\"none\":null}}");
    lh_buf_reset(&line);
    ev.ts_ns = -1;   /* one ns before the epoch */
    ev.nmeta = 0;
    REQUIRE_INT(lh_ndjson_encode_event(&ev, &line), ==, 0);
    CHECK_CONTAINS(line.data, "\"1969-12-31T23:59:59.999999999Z\"");

    /* a bad second line is reported with its number */
    const char *text = "{\"timestamp\":\"2026-05-23T08:06:14Z\",\"message\":\"a\"}\n"
                       "\n"
                       "{\"timestamp\":\"yesterday\"}\n";
    struct lh_buf z = LH_BUF_INIT;
    REQUIRE_INT(lh_buf_reserve(&z, 1024), ==, 0);
    size_t zl = ZSTD_compress(z.data, 1024, text, strlen(text), 3);
    REQUIRE(!ZSTD_isError(zl));
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n;
    struct lh_err err = { 0 };
    CHECK_INT(lh_ndjson_read(z.data, zl, &a, &got, &n, &err), ==, LH_ECORRUPT);
    CHECK_CONTAINS(err.msg, "line 3");
    /* without the bad line: one event, the blank line skipped */
    zl = ZSTD_compress(z.data, 1024, text, (size_t)(strstr(text, "\n\n") + 2 - text), 3);
    REQUIRE_INT(lh_ndjson_read(z.data, zl, &a, &got, &n, &err), ==, 0);
    REQUIRE_INT(n, ==, 1);
    CHECK_INT(got[0].ts_ns, ==, 1779523574000000000ll);
    CHECK_STR(got[0].message, "a");
    lh_buf_free(&line);
    lh_buf_free(&z);
    lh_arena_free(&a);
}

TEST(archive_format_keys)
{
    enum lh_archive_format f;
    CHECK_STR(lh_archive_format_ext(LH_ARCHIVE_PARQUET), "parquet");
    CHECK_STR(lh_archive_format_ext(LH_ARCHIVE_NDJSON), "ndjson.zst");
    CHECK(lh_archive_format_of_key("a/b_c.parquet", &f) == 0 && f == LH_ARCHIVE_PARQUET);
    CHECK(lh_archive_format_of_key("a/b_c.parquet.enc", &f) == 0 && f == LH_ARCHIVE_PARQUET);
    CHECK(lh_archive_format_of_key("a/b.ndjson.zst.enc", &f) == 0 && f == LH_ARCHIVE_NDJSON);
    CHECK_INT(lh_archive_format_of_key("a/b.json", &f), ==, LH_EINVAL);
}
