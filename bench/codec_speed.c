/* codec_speed.c - single-core MB/s of lh_codec on generated log-like text.
 *
 * Not built by the Makefile. From the repository root, after `make`:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Icommon/include bench/codec_speed.c \
 *       build/lib/libloghaul.a -lzstd -ldeflate -lisal -lz -o build/codec_speed
 *   build/codec_speed [MiB of generated text, default 128 | a file to use instead]
 *
 * The text imitates the shared microbench generator (gen.py) (~460-byte app-format
 * lines). It is cut into 1 MiB bodies (an ingest batch); MB/s counts
 * uncompressed bytes. For gunzip, libdeflate (what lh_codec uses) is set
 * against a bounded zlib inflate stream and ISA-L's inflate, and against the
 * same body split into 16 gzip members (where the size hint in the trailer is
 * wrong, so the growing output buffer has to restart). Each figure is the
 * best of 3 passes. */
#include "lh/codec.h"

#include <isa-l.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define BLOCK (1024 * 1024)
#define REPS 3      /* each figure is the best of REPS passes (shared machines are noisy) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 1;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static char *gen_text(size_t n)
{
    static const char *svcs[] = { "payment-service", "auth-service", "cart", "search",
                                  "gateway", "inventory", "email", "billing" };
    static const char *lv[] = { "INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "INFO",
                                "DEBUG", "WARN", "ERROR" };
    static const char *words[] = { "the", "quick", "brown", "fox", "jumps", "over", "lazy",
        "dog", "database", "transaction", "timeout", "during", "capture", "request",
        "completed", "user", "session", "cache", "miss", "retry", "connection", "refused",
        "upstream", "latency" };
    char *p = malloc(n + 2048);
    size_t len = 0;
    for (unsigned i = 0; len < n; i++) {
        len += (size_t)sprintf(p + len, "2026-05-23 08:06:%02u [%s] %s tr_%016llx usr_%u -",
                               i % 60, svcs[rnd() % 8], lv[rnd() % 10],
                               (unsigned long long)rnd(), (unsigned)(rnd() % 99999 + 1));
        int nw = 40 + (int)(rnd() % 31);
        for (int w = 0; w < nw; w++)
            len += (size_t)sprintf(p + len, " %s", words[rnd() % 24]);
        len += (size_t)sprintf(p + len, " seq=%u\n", i);
    }
    return p;
}

struct blocks {
    size_t n;
    struct lh_buf *b;
};

static void report(const char *what, double secs, size_t raw, size_t packed)
{
    if (packed)
        printf("%-44s %8.0f MB/s   ratio %.2f\n", what, raw / secs / 1e6,
               (double)raw / (double)packed);
    else
        printf("%-44s %8.0f MB/s\n", what, raw / secs / 1e6);
}

static struct blocks compress_all(struct lh_codec_ctx *ctx, enum lh_codec c, int level,
                                  const char *text, size_t n, const char *label)
{
    struct blocks bl = { (n + BLOCK - 1) / BLOCK, NULL };
    bl.b = calloc(bl.n, sizeof(*bl.b));
    size_t packed = 0;
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        packed = 0;
        for (size_t i = 0; i < bl.n; i++) {
            size_t len = n - i * BLOCK < BLOCK ? n - i * BLOCK : BLOCK;
            struct lh_err e;
            lh_buf_reset(&bl.b[i]);
            if (lh_codec_ctx_encode(ctx, c, level, text + i * BLOCK, len, &bl.b[i], &e) < 0) {
                fprintf(stderr, "%s\n", e.msg);
                exit(1);
            }
            packed += bl.b[i].len;
        }
        best = now_s() - t0 < best ? now_s() - t0 : best;
    }
    report(label, best, n, packed);
    return bl;
}

static void free_blocks(struct blocks *bl)
{
    for (size_t i = 0; i < bl->n; i++)
        lh_buf_free(&bl->b[i]);
    free(bl->b);
}

static void decode_all(struct lh_codec_ctx *ctx, enum lh_codec c, const struct blocks *bl,
                       size_t n, const char *label)
{
    struct lh_buf out = LH_BUF_INIT;
    size_t total = 0;
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        total = 0;
        for (size_t i = 0; i < bl->n; i++) {
            struct lh_err e;
            lh_buf_reset(&out);
            if (lh_codec_ctx_decode(ctx, c, bl->b[i].data, bl->b[i].len, 4 * BLOCK, 100, &out,
                                    &e) < 0) {
                fprintf(stderr, "%s\n", e.msg);
                exit(1);
            }
            total += out.len;
        }
        best = now_s() - t0 < best ? now_s() - t0 : best;
    }
    report(label, best, n, 0);
    if (total != n)
        fprintf(stderr, "size mismatch %zu vs %zu\n", total, n);
    lh_buf_free(&out);
}

/* zlib inflate into a buffer of the cap's size: the streaming alternative
 * to libdeflate (its per-call overhead is small next to inflating 1 MiB). */
static void zlib_decode_all(const struct blocks *bl, size_t n)
{
    z_stream z = {0};
    inflateInit2(&z, 31);
    size_t cap = 4 * BLOCK, total = 0;
    char *out = malloc(cap);
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now_s();
        total = 0;
        for (size_t i = 0; i < bl->n; i++) {
            inflateReset(&z);
            z.next_in = (Bytef *)bl->b[i].data;
            z.avail_in = (uInt)bl->b[i].len;
            z.next_out = (Bytef *)out;
            z.avail_out = (uInt)cap;
            int r;
            while ((r = inflate(&z, Z_NO_FLUSH)) == Z_OK && z.avail_in)
                ;
            if (r != Z_STREAM_END) {
                fprintf(stderr, "zlib inflate %d\n", r);
                exit(1);
            }
            total += cap - z.avail_out;
        }
        best = now_s() - t0 < best ? now_s() - t0 : best;
    }
    report("gunzip zlib inflate stream (alternative)", best, n, 0);
    inflateEnd(&z);
    free(out);
    if (total != n)
        fprintf(stderr, "size mismatch %zu vs %zu\n", total, n);
}

static void isal_decode_all(const struct blocks *bl, size_t n)
{
    struct inflate_state *st = malloc(sizeof(*st));
    size_t cap = 4 * BLOCK, total = 0;
    char *out = malloc(cap);
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now_s();
        total = 0;
        for (size_t i = 0; i < bl->n; i++) {
            isal_inflate_init(st);
            st->crc_flag = ISAL_GZIP;
            st->next_in = (uint8_t *)bl->b[i].data;
            st->avail_in = (uint32_t)bl->b[i].len;
            st->next_out = (uint8_t *)out;
            st->avail_out = (uint32_t)cap;
            if (isal_inflate(st) != ISAL_DECOMP_OK || st->block_state != ISAL_BLOCK_FINISH) {
                fprintf(stderr, "isal_inflate failed\n");
                exit(1);
            }
            total += st->total_out;
        }
        best = now_s() - t0 < best ? now_s() - t0 : best;
    }
    report("gunzip ISA-L isal_inflate (alternative)", best, n, 0);
    free(st);
    free(out);
    if (total != n)
        fprintf(stderr, "size mismatch %zu vs %zu\n", total, n);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 128, n = mib * 1024 * 1024;
    char *text;
    FILE *f = argc > 1 && mib == 0 ? fopen(argv[1], "rb") : NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        rewind(f);
        text = malloc(n);
        if (fread(text, 1, n, f) != n)
            return 1;
        fclose(f);
        printf("%s: %.0f MiB in 1 MiB bodies, one core\n", argv[1], n / 1048576.0);
    } else {
        text = gen_text(n);
        printf("%zu MiB of log-like text in 1 MiB bodies, one core\n", mib);
    }
    struct lh_codec_ctx *ctx;
    lh_codec_ctx_create(&ctx, NULL);

    static const int gz_levels[] = { 0, 1, 2, 6, 9 };
    struct blocks gz6 = { 0, NULL };
    for (size_t i = 0; i < sizeof(gz_levels) / sizeof(gz_levels[0]); i++) {
        char label[64];
        snprintf(label, sizeof(label), "gzip level %d (%s)", gz_levels[i],
                 gz_levels[i] <= 1 ? "ISA-L" : "libdeflate");
        struct blocks bl = compress_all(ctx, LH_CODEC_GZIP, gz_levels[i], text, n, label);
        if (gz_levels[i] == 6)
            gz6 = bl;
        else
            free_blocks(&bl);
    }
    decode_all(ctx, LH_CODEC_GZIP, &gz6, n, "gunzip lh_codec (libdeflate)");
    zlib_decode_all(&gz6, n);
    isal_decode_all(&gz6, n);

    /* The same bodies as 16 members each: the trailer's size hint is only the
     * last member's, so the first reservation is a guess. */
    struct blocks multi = { gz6.n, calloc(gz6.n, sizeof(struct lh_buf)) };
    for (size_t i = 0; i < multi.n; i++) {
        size_t len = n - i * BLOCK < BLOCK ? n - i * BLOCK : BLOCK, part = len / 16 + 1;
        for (size_t off = 0; off < len; off += part)
            lh_codec_ctx_gzip(ctx, 6, text + i * BLOCK + off, len - off < part ? len - off : part,
                              &multi.b[i], NULL);
    }
    decode_all(ctx, LH_CODEC_GZIP, &multi, n, "gunzip lh_codec, 16 members per body");
    free_blocks(&multi);
    free_blocks(&gz6);

    static const int zs_levels[] = { 1, 3, 6 };
    for (size_t i = 0; i < sizeof(zs_levels) / sizeof(zs_levels[0]); i++) {
        char label[64];
        snprintf(label, sizeof(label), "zstd level %d", zs_levels[i]);
        struct blocks bl = compress_all(ctx, LH_CODEC_ZSTD, zs_levels[i], text, n, label);
        if (zs_levels[i] == 3)
            decode_all(ctx, LH_CODEC_ZSTD, &bl, n, "unzstd lh_codec (streaming)");
        free_blocks(&bl);
    }
    lh_codec_ctx_destroy(ctx);
    free(text);
    return 0;
}
