/* Unit tests for codec.c: round trips, multi-member/multi-frame input, bombs,
 * limits, truncated, corrupt and mislabelled input. */
#include "../lh_test.h"
#include "lh/codec.h"

#include <zlib.h>
#include <zstd.h>

#define MIB (1024 * 1024)

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Incompressible bytes. */
static char *random_data(size_t n, uint64_t seed)
{
    char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(rng_next(&seed) >> 56);
    return p;
}

/* Log-like text: repetitive structure, varying fields. */
static char *log_text(size_t n, uint64_t seed)
{
    static const char *const words[] = { "request", "completed", "user", "session", "cache",
                                         "miss", "timeout", "upstream", "retry", "db" };
    static const char *const levels[] = { "INFO", "DEBUG", "WARN", "ERROR" };
    char *p = malloc(n + 1), line[512];
    size_t len = 0;
    for (unsigned i = 0; len < n; i++) {
        int l = snprintf(line, sizeof(line), "2026-05-23T08:06:%02u.%03uZ %s svc-%u tr_%016llx",
                         i % 60, i % 1000, levels[rng_next(&seed) % 4],
                         (unsigned)(rng_next(&seed) % 8), (unsigned long long)rng_next(&seed));
        for (int w = 0; w < 8; w++)
            l += snprintf(line + l, sizeof(line) - (size_t)l, " %s", words[rng_next(&seed) % 10]);
        line[l++] = '\n';
        size_t take = (size_t)l < n - len ? (size_t)l : n - len;
        memcpy(p + len, line, take);
        len += take;
    }
    return p;
}

/* Independent check that our gzip output is standard: zlib inflates it. */
static int zlib_gunzip(const char *in, size_t n, char *out, size_t cap, size_t *got)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int r = inflate(&z, Z_FINISH);
    *got = z.total_out;
    inflateEnd(&z);
    return r == Z_STREAM_END ? 0 : -1;
}

static const size_t sizes[] = { 0, 1, 64 * 1024, 5 * MIB };

static void round_trip(struct lh_codec_ctx *ctx, enum lh_codec codec, int level,
                       const char *data, size_t n, const char *label)
{
    struct lh_err e = {0};
    struct lh_buf z = LH_BUF_INIT, back = LH_BUF_INIT;
    int rc = lh_codec_ctx_encode(ctx, codec, level, data, n, &z, &e);
    if (rc != 0) {
        lh_test_fail(__FILE__, __LINE__, "%s level %d %s %zu: encode %d %s",
                     lh_codec_name(codec), level, label, n, rc, e.msg);
        return;
    }
    CHECK(lh_codec_sniff(z.data, z.len) == codec);
    rc = lh_codec_ctx_decode(ctx, codec, z.data, z.len, n, 0, &back, &e);
    if (rc != 0 || back.len != n || (n && memcmp(back.data, data, n) != 0))
        lh_test_fail(__FILE__, __LINE__, "%s level %d %s %zu: decode rc %d len %zu: %s",
                     lh_codec_name(codec), level, label, n, rc, back.len, e.msg);
    if (codec == LH_CODEC_GZIP) {
        size_t got = 0;
        char *zb = malloc(n + 1);
        if (zlib_gunzip(z.data, z.len, zb, n + 1, &got) != 0 || got != n ||
            memcmp(zb, data, n) != 0)
            lh_test_fail(__FILE__, __LINE__, "gzip level %d %s %zu: zlib disagrees", level,
                         label, n);
        free(zb);
    }
    lh_buf_free(&z);
    lh_buf_free(&back);
}

/* Every level at sizes below 1 MiB; at 5 MiB only the levels in `big` (zstd
 * 13-19 take seconds per 5 MiB, which a unit suite cannot afford). */
static void round_trips(enum lh_codec codec, int max_level, const char *big)
{
    struct lh_codec_ctx *ctx;
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        char *rnd = random_data(sizes[s], s + 1), *txt = log_text(sizes[s], s + 100);
        for (int l = 0; l <= max_level; l++) {
            char tag[8];
            snprintf(tag, sizeof(tag), ",%d,", l);
            if (sizes[s] >= MIB && !strstr(big, tag))
                continue;
            round_trip(ctx, codec, l, rnd, sizes[s], "random");
            round_trip(ctx, codec, l, txt, sizes[s], "text");
        }
        free(rnd);
        free(txt);
    }
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_gzip_round_trip_every_level)
{
    round_trips(LH_CODEC_GZIP, LH_CODEC_GZIP_LEVEL_MAX, ",0,1,6,");
}

TEST(codec_zstd_round_trip_every_level)
{
    round_trips(LH_CODEC_ZSTD, LH_CODEC_ZSTD_LEVEL_MAX, ",0,1,3,9,");
}

TEST(codec_one_shot_appends_and_compresses)
{
    struct lh_err e = {0};
    size_t n = 256 * 1024;
    char *txt = log_text(n, 7);
    struct lh_buf gz = LH_BUF_INIT, zs = LH_BUF_INIT, out = LH_BUF_INIT;
    REQUIRE(lh_codec_gzip(1, txt, n, &gz, &e) == 0);
    REQUIRE(lh_codec_zstd(3, txt, n, &zs, &e) == 0);
    CHECK(gz.len < n / 3);           /* log text compresses well */
    CHECK(zs.len < n / 3);
    lh_buf_puts(&out, "prefix:");
    REQUIRE(lh_codec_gunzip(gz.data, gz.len, n, 0, &out, &e) == 0);
    REQUIRE(lh_codec_unzstd(zs.data, zs.len, n, 0, &out, &e) == 0);
    REQUIRE_INT(out.len, ==, 7 + 2 * n);
    CHECK(memcmp(out.data, "prefix:", 7) == 0);
    CHECK(memcmp(out.data + 7, txt, n) == 0);
    CHECK(memcmp(out.data + 7 + n, txt, n) == 0);
    CHECK(out.data[out.len] == '\0');
    lh_buf_free(&gz);
    lh_buf_free(&zs);
    lh_buf_free(&out);
    free(txt);
}

TEST(codec_names_and_sniffing)
{
    enum lh_codec c = LH_CODEC_NONE;
    struct lh_err e = {0};
    CHECK(lh_codec_parse("gzip", 4, &c, NULL) == 0 && c == LH_CODEC_GZIP);
    CHECK(lh_codec_parse("zstd", 4, &c, NULL) == 0 && c == LH_CODEC_ZSTD);
    CHECK(lh_codec_parse(" X-GZip\t", 8, &c, NULL) == 0 && c == LH_CODEC_GZIP);
    CHECK(lh_codec_parse("identity", 8, &c, NULL) == 0 && c == LH_CODEC_NONE);
    c = LH_CODEC_ZSTD;
    CHECK(lh_codec_parse("None", 4, &c, NULL) == 0 && c == LH_CODEC_NONE);
    c = LH_CODEC_GZIP;
    CHECK_INT(lh_codec_parse("br", 2, &c, &e), ==, LH_EINVAL);
    CHECK(c == LH_CODEC_GZIP);
    CHECK_CONTAINS(e.msg, "\"br\"");
    CHECK_INT(lh_codec_parse("gzip2", 5, &c, NULL), ==, LH_EINVAL);
    CHECK_INT(lh_codec_parse("", 0, &c, NULL), ==, LH_EINVAL);
    CHECK_STR(lh_codec_name(LH_CODEC_GZIP), "gzip");
    CHECK_STR(lh_codec_name(LH_CODEC_ZSTD), "zstd");
    CHECK_STR(lh_codec_name(LH_CODEC_NONE), "identity");
    CHECK(lh_codec_sniff("{\"a\":1}", 7) == LH_CODEC_NONE);
    CHECK(lh_codec_sniff("\x1f", 1) == LH_CODEC_NONE);
    CHECK(lh_codec_sniff("\x28\xb5\x2f\xfd", 4) == LH_CODEC_ZSTD);
    CHECK(lh_codec_sniff("\x50\x2a\x4d\x18", 4) == LH_CODEC_ZSTD);   /* skippable */
}

/* gzip member written by zlib with a file name, comment and extra field, as
 * `gzip` and some agents produce. */
static void zlib_gzip_with_header(const char *in, size_t n, struct lh_buf *out)
{
    z_stream z = {0};
    gz_header h = {0};
    unsigned char extra[] = "AB\x02\x00xy";
    h.name = (Bytef *)"app.log";
    h.comment = (Bytef *)"rotated";
    h.extra = extra;
    h.extra_len = 6;
    h.hcrc = 1;
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    REQUIRE(deflateSetHeader(&z, &h) == Z_OK);
    size_t bound = deflateBound(&z, (uLong)n) + 64;
    REQUIRE(lh_buf_reserve(out, bound) == 0);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)bound;
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out->len += z.total_out;
    deflateEnd(&z);
}

TEST(codec_gunzip_multi_member)
{
    struct lh_codec_ctx *ctx;
    struct lh_err e = {0};
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n1 = 100000, n2 = MIB + 3, n3 = 777;
    char *a = log_text(n1, 1), *b = log_text(n2, 2), *c = random_data(n3, 3);
    struct lh_buf cat = LH_BUF_INIT, out = LH_BUF_INIT;
    REQUIRE(lh_codec_ctx_gzip(ctx, 1, a, n1, &cat, &e) == 0);     /* ISA-L */
    REQUIRE(lh_codec_ctx_gzip(ctx, 6, "", 0, &cat, &e) == 0);     /* empty member */
    REQUIRE(lh_codec_ctx_gzip(ctx, 9, b, n2, &cat, &e) == 0);     /* libdeflate */
    zlib_gzip_with_header(c, n3, &cat);                           /* zlib, FNAME etc. */
    REQUIRE(lh_codec_ctx_gunzip(ctx, cat.data, cat.len, SIZE_MAX, 0, &out, &e) == 0);
    REQUIRE_INT(out.len, ==, n1 + n2 + n3);
    CHECK(memcmp(out.data, a, n1) == 0);
    CHECK(memcmp(out.data + n1, b, n2) == 0);
    CHECK(memcmp(out.data + n1 + n2, c, n3) == 0);
    /* The cap counts all members together. */
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_gunzip(ctx, cat.data, cat.len, n1 + n2 + n3 - 1, 0, &out, &e), ==,
              LH_ETOOBIG);
    CHECK_INT(out.len, ==, 0);
    CHECK_INT(lh_codec_ctx_gunzip(ctx, cat.data, cat.len, n1 + n2 + n3, 0, &out, &e), ==, 0);
    /* A very compressible first member and a small last one: neither 4x the
     * input nor the trailer's size is enough room, so the output buffer has
     * to grow and the member be decoded again. */
    struct lh_buf cat2 = LH_BUF_INIT;
    char *zeros = calloc(1, 2 * MIB);
    REQUIRE(lh_codec_ctx_gzip(ctx, 6, zeros, 2 * MIB, &cat2, &e) == 0);
    REQUIRE(lh_codec_ctx_gzip(ctx, 1, c, n3, &cat2, &e) == 0);
    REQUIRE(cat2.len * 4 < MIB);
    lh_buf_reset(&out);
    REQUIRE(lh_codec_ctx_gunzip(ctx, cat2.data, cat2.len, SIZE_MAX, 0, &out, &e) == 0);
    REQUIRE_INT(out.len, ==, 2 * MIB + n3);
    CHECK(memcmp(out.data, zeros, 2 * MIB) == 0);
    CHECK(memcmp(out.data + 2 * MIB, c, n3) == 0);
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_gunzip(ctx, cat2.data, cat2.len, 2 * MIB + n3 - 1, 0, &out, &e), ==,
              LH_ETOOBIG);
    CHECK_INT(out.len, ==, 0);
    lh_buf_free(&cat2);
    free(zeros);
    /* Garbage after the last member is refused, not ignored. */
    lh_buf_append(&cat, "junk", 4);
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_gunzip(ctx, cat.data, cat.len, SIZE_MAX, 0, &out, &e), ==,
              LH_EINVAL);
    CHECK_CONTAINS(e.msg, "trailing garbage");
    CHECK_INT(out.len, ==, 0);
    lh_buf_free(&cat);
    lh_buf_free(&out);
    free(a);
    free(b);
    free(c);
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_unzstd_multi_frame)
{
    struct lh_codec_ctx *ctx;
    struct lh_err e = {0};
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n1 = 200000, n2 = 2 * MIB;
    char *a = log_text(n1, 11), *b = random_data(n2, 12);
    struct lh_buf cat = LH_BUF_INIT, out = LH_BUF_INIT;
    REQUIRE(lh_codec_ctx_zstd(ctx, 1, a, n1, &cat, &e) == 0);
    /* A skippable frame (metadata some writers add) between data frames. */
    lh_buf_append(&cat, "\x50\x2a\x4d\x18\x05\x00\x00\x00hello", 13);
    REQUIRE(lh_codec_ctx_zstd(ctx, 3, b, n2, &cat, &e) == 0);
    REQUIRE(lh_codec_ctx_zstd(ctx, 5, "", 0, &cat, &e) == 0);
    /* A streamed frame with no content size in its header. */
    ZSTD_CCtx *zc = ZSTD_createCCtx();
    REQUIRE(lh_buf_reserve(&cat, ZSTD_compressBound(n1)) == 0);
    ZSTD_outBuffer ob = { cat.data + cat.len, ZSTD_compressBound(n1), 0 };
    ZSTD_inBuffer ib = { a, n1, 0 };
    size_t frame = cat.len, left = ZSTD_compressStream2(zc, &ob, &ib, ZSTD_e_continue);
    REQUIRE(!ZSTD_isError(left));
    do {
        left = ZSTD_compressStream2(zc, &ob, &ib, ZSTD_e_end);
        REQUIRE(!ZSTD_isError(left));
    } while (left);
    cat.len += ob.pos;
    ZSTD_freeCCtx(zc);
    CHECK(ZSTD_getFrameContentSize(cat.data + frame, cat.len - frame) ==
          ZSTD_CONTENTSIZE_UNKNOWN);

    REQUIRE(lh_codec_ctx_unzstd(ctx, cat.data, cat.len, SIZE_MAX, 0, &out, &e) == 0);
    REQUIRE_INT(out.len, ==, n1 + n2 + n1);
    CHECK(memcmp(out.data, a, n1) == 0);
    CHECK(memcmp(out.data + n1, b, n2) == 0);
    CHECK(memcmp(out.data + n1 + n2, a, n1) == 0);
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_unzstd(ctx, cat.data, cat.len, 2 * n1 + n2 - 1, 0, &out, &e), ==,
              LH_ETOOBIG);
    CHECK_INT(out.len, ==, 0);
    lh_buf_append(&cat, "junk", 4);
    CHECK_INT(lh_codec_ctx_unzstd(ctx, cat.data, cat.len, SIZE_MAX, 0, &out, &e), ==,
              LH_EINVAL);
    CHECK_INT(out.len, ==, 0);
    lh_buf_free(&cat);
    lh_buf_free(&out);
    free(a);
    free(b);
    lh_codec_ctx_destroy(ctx);
}

/* 10 MB of zeros compress to a few KB; a 1 MB limit must refuse them. */
TEST(codec_bombs_are_refused)
{
    struct lh_codec_ctx *ctx;
    struct lh_err e = {0};
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n = 10 * 1000 * 1000;
    char *zeros = calloc(1, n);
    struct lh_buf gz = LH_BUF_INIT, zs = LH_BUF_INIT, out = LH_BUF_INIT;
    REQUIRE(lh_codec_ctx_gzip(ctx, 6, zeros, n, &gz, &e) == 0);
    REQUIRE(lh_codec_ctx_zstd(ctx, 3, zeros, n, &zs, &e) == 0);
    CHECK(gz.len < 20000);
    CHECK(zs.len < 2000);
    lh_buf_puts(&out, "keep");
    CHECK_INT(lh_codec_ctx_gunzip(ctx, gz.data, gz.len, 1000000, 0, &out, &e), ==, LH_ETOOBIG);
    CHECK_CONTAINS(e.msg, "limit of 1000000 bytes");
    CHECK_STR(out.data, "keep");
    /* Never inflated in full: the buffer grew to about the limit, not 10 MB. */
    CHECK(out.cap < 3 * 1000000);
    lh_buf_free(&out);
    lh_buf_puts(&out, "keep");
    CHECK_INT(lh_codec_ctx_unzstd(ctx, zs.data, zs.len, 1000000, 0, &out, &e), ==, LH_ETOOBIG);
    CHECK_CONTAINS(e.msg, "limit of 1000000 bytes");
    CHECK_STR(out.data, "keep");
    CHECK(out.cap < 3 * 1000000);
    /* A zstd frame asking for a 32 MiB window (no content size to bound it)
     * is refused before the decoder allocates it, under a 1 MB limit. */
    struct lh_buf big = LH_BUF_INIT;
    ZSTD_CCtx *zc = ZSTD_createCCtx();
    REQUIRE(!ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_windowLog, 25)));
    REQUIRE(lh_buf_reserve(&big, ZSTD_compressBound(1000) + 64) == 0);
    ZSTD_outBuffer ob = { big.data, ZSTD_compressBound(1000) + 64, 0 };
    ZSTD_inBuffer ib = { zeros, 1000, 0 };
    REQUIRE(!ZSTD_isError(ZSTD_compressStream2(zc, &ob, &ib, ZSTD_e_continue)));
    REQUIRE(ZSTD_compressStream2(zc, &ob, &ib, ZSTD_e_end) == 0);
    big.len = ob.pos;
    ZSTD_freeCCtx(zc);
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_unzstd(ctx, big.data, big.len, 1000000, 0, &out, &e), ==,
              LH_ETOOBIG);
    CHECK_CONTAINS(e.msg, "window");
    CHECK_INT(lh_codec_ctx_unzstd(ctx, big.data, big.len, 40 * 1000 * 1000, 0, &out, &e), ==,
              0);
    CHECK_INT(out.len, ==, 1000);
    lh_buf_free(&big);
    /* The same bodies within a big enough limit are fine. */
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_gunzip(ctx, gz.data, gz.len, n, 0, &out, &e), ==, 0);
    CHECK_INT(out.len, ==, n);
    lh_buf_reset(&out);
    CHECK_INT(lh_codec_ctx_unzstd(ctx, zs.data, zs.len, n, 0, &out, &e), ==, 0);
    CHECK_INT(out.len, ==, n);
    lh_buf_free(&gz);
    lh_buf_free(&zs);
    lh_buf_free(&out);
    free(zeros);
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_limit_is_exact)
{
    struct lh_codec_ctx *ctx;
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n = 300001;
    char *txt = log_text(n, 5);
    for (int codec = LH_CODEC_GZIP; codec <= LH_CODEC_ZSTD; codec++) {
        struct lh_buf z = LH_BUF_INIT, out = LH_BUF_INIT;
        REQUIRE(lh_codec_ctx_encode(ctx, codec, 2, txt, n, &z, NULL) == 0);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, n, 0, &out, NULL), ==, 0);
        CHECK_INT(out.len, ==, n);
        lh_buf_reset(&out);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, n - 1, 0, &out, NULL), ==,
                  LH_ETOOBIG);
        CHECK_INT(out.len, ==, 0);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, 0, 0, &out, NULL), ==,
                  LH_ETOOBIG);
        lh_buf_free(&z);
        lh_buf_free(&out);
    }
    struct lh_buf out = LH_BUF_INIT;
    CHECK_INT(lh_codec_ctx_decode(ctx, LH_CODEC_NONE, txt, n, n - 1, 0, &out, NULL), ==,
              LH_ETOOBIG);
    CHECK_INT(lh_codec_ctx_decode(ctx, LH_CODEC_NONE, txt, n, n, 0, &out, NULL), ==, 0);
    CHECK(out.len == n && memcmp(out.data, txt, n) == 0);
    lh_buf_free(&out);
    free(txt);
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_ratio_limit)
{
    struct lh_codec_ctx *ctx;
    struct lh_err e = {0};
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n = 2 * MIB;
    char *zeros = calloc(1, n);
    for (int codec = LH_CODEC_GZIP; codec <= LH_CODEC_ZSTD; codec++) {
        struct lh_buf z = LH_BUF_INIT, out = LH_BUF_INIT;
        REQUIRE(lh_codec_ctx_encode(ctx, codec, 6, zeros, n, &z, NULL) == 0);
        unsigned ratio = (unsigned)(n / z.len);      /* the actual ratio, > 100 */
        REQUIRE(ratio > 100);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, SIZE_MAX, 100, &out, &e), ==,
                  LH_ETOOBIG);
        CHECK_CONTAINS(e.msg, "100 times");
        CHECK_INT(out.len, ==, 0);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, SIZE_MAX, ratio + 1, &out,
                                      &e), ==, 0);
        CHECK_INT(out.len, ==, n);
        /* Below LH_CODEC_RATIO_FLOOR of output the ratio is not enforced. */
        lh_buf_reset(&z);
        lh_buf_reset(&out);
        REQUIRE(lh_codec_ctx_encode(ctx, codec, 6, zeros, 60000, &z, NULL) == 0);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, SIZE_MAX, 2, &out, &e), ==, 0);
        CHECK_INT(out.len, ==, 60000);
        lh_buf_free(&z);
        lh_buf_free(&out);
    }
    free(zeros);
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_truncated_input_is_einval)
{
    struct lh_codec_ctx *ctx;
    struct lh_err e = {0};
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n = 64 * 1024;
    char *txt = log_text(n, 9);
    for (int codec = LH_CODEC_GZIP; codec <= LH_CODEC_ZSTD; codec++) {
        struct lh_buf z = LH_BUF_INIT, out = LH_BUF_INIT;
        REQUIRE(lh_codec_ctx_encode(ctx, codec, 1, txt, n, &z, NULL) == 0);
        size_t cuts[] = { 0, 1, 2, 3, 5, 10, 17, z.len / 3, z.len / 2, z.len - 9, z.len - 8,
                          z.len - 4, z.len - 1 };
        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
            lh_err_clear(&e);
            int rc = lh_codec_ctx_decode(ctx, codec, z.data, cuts[i], 10 * MIB, 0, &out, &e);
            if (rc != LH_EINVAL || out.len != 0 || e.msg[0] == '\0')
                lh_test_fail(__FILE__, __LINE__, "%s cut at %zu of %zu: rc %d len %zu",
                             lh_codec_name(codec), cuts[i], z.len, rc, out.len);
        }
        /* Truncated copy of a whole body as a second member / frame. */
        size_t whole = z.len;
        lh_buf_append(&z, z.data, whole / 2);
        CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, 10 * MIB, 0, &out, &e), ==,
                  LH_EINVAL);
        CHECK_INT(out.len, ==, 0);
        lh_buf_free(&z);
        lh_buf_free(&out);
    }
    free(txt);
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_corrupt_bytes_are_einval)
{
    struct lh_codec_ctx *ctx;
    struct lh_err e = {0};
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    size_t n = 64 * 1024;
    char *txt = log_text(n, 13);
    for (int codec = LH_CODEC_GZIP; codec <= LH_CODEC_ZSTD; codec++) {
        for (int level = 1; level <= 6; level += 5) {
            struct lh_buf z = LH_BUF_INIT, out = LH_BUF_INIT;
            REQUIRE(lh_codec_ctx_encode(ctx, codec, level, txt, n, &z, NULL) == 0);
            /* Positions past the headers (gzip MTIME/XFL/OS are not covered by
             * any check), through the body to the checksum trailer. */
            size_t pos[] = { 12, 40, z.len / 4, z.len / 2, 3 * z.len / 4, z.len - 6,
                             z.len - 2 };
            for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
                for (int bit = 0; bit < 8; bit += 3) {
                    z.data[pos[i]] ^= (char)(1 << bit);
                    lh_err_clear(&e);
                    int rc = lh_codec_ctx_decode(ctx, codec, z.data, z.len, 10 * MIB, 0, &out,
                                                 &e);
                    if (rc != LH_EINVAL || out.len != 0)
                        lh_test_fail(__FILE__, __LINE__, "%s level %d bit %d at %zu/%zu: "
                                     "rc %d len %zu", lh_codec_name(codec), level, bit,
                                     pos[i], z.len, rc, out.len);
                    z.data[pos[i]] ^= (char)(1 << bit);
                }
            }
            /* Unflipped, it still decodes: the failures were the flips. */
            CHECK_INT(lh_codec_ctx_decode(ctx, codec, z.data, z.len, n, 0, &out, NULL), ==, 0);
            lh_buf_free(&z);
            lh_buf_free(&out);
        }
    }
    free(txt);
    lh_codec_ctx_destroy(ctx);
}

TEST(codec_wrong_codec_for_the_data)
{
    struct lh_err e = {0};
    const char *text = "{\"log_records\":[{\"raw_message\":\"hello\"}]}";
    size_t n = strlen(text);
    struct lh_buf gz = LH_BUF_INIT, zs = LH_BUF_INIT, out = LH_BUF_INIT;
    REQUIRE(lh_codec_gzip(6, text, n, &gz, NULL) == 0);
    REQUIRE(lh_codec_zstd(3, text, n, &zs, NULL) == 0);
    CHECK_INT(lh_codec_gunzip(zs.data, zs.len, MIB, 0, &out, &e), ==, LH_EINVAL);
    CHECK_CONTAINS(e.msg, "not gzip data");
    CHECK_INT(lh_codec_unzstd(gz.data, gz.len, MIB, 0, &out, &e), ==, LH_EINVAL);
    CHECK_CONTAINS(e.msg, "not zstd data");
    CHECK_INT(lh_codec_gunzip(text, n, MIB, 0, &out, &e), ==, LH_EINVAL);
    CHECK_INT(lh_codec_unzstd(text, n, MIB, 0, &out, &e), ==, LH_EINVAL);
    CHECK_INT(lh_codec_gunzip("", 0, MIB, 0, &out, &e), ==, LH_EINVAL);
    CHECK_CONTAINS(e.msg, "empty");
    CHECK_INT(lh_codec_unzstd(NULL, 0, MIB, 0, &out, &e), ==, LH_EINVAL);
    /* A gzip magic followed by nonsense. */
    CHECK_INT(lh_codec_gunzip("\x1f\x8b\x08\x00garbagegarbage!!", 18, MIB, 0, &out, &e), ==,
              LH_EINVAL);
    CHECK_INT(out.len, ==, 0);
    lh_buf_free(&gz);
    lh_buf_free(&zs);
    lh_buf_free(&out);
}

TEST(codec_bad_levels)
{
    struct lh_buf out = LH_BUF_INIT;
    struct lh_err e = {0};
    CHECK_INT(lh_codec_gzip(-1, "x", 1, &out, &e), ==, LH_EINVAL);
    CHECK_CONTAINS(e.msg, "level -1");
    CHECK_INT(lh_codec_gzip(13, "x", 1, &out, &e), ==, LH_EINVAL);
    CHECK_INT(lh_codec_zstd(-1, "x", 1, &out, &e), ==, LH_EINVAL);
    CHECK_INT(lh_codec_zstd(20, "x", 1, &out, &e), ==, LH_EINVAL);
    CHECK_INT(out.len, ==, 0);
    /* NONE copies regardless of level. */
    struct lh_codec_ctx *ctx;
    REQUIRE(lh_codec_ctx_create(&ctx, NULL) == 0);
    CHECK_INT(lh_codec_ctx_encode(ctx, LH_CODEC_NONE, 99, "abc", 3, &out, &e), ==, 0);
    CHECK_STR(out.data, "abc");
    lh_codec_ctx_destroy(ctx);
    lh_buf_free(&out);
}
