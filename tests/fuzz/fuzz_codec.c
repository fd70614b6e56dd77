/* fuzz_codec.c - libFuzzer target: bounded gzip/zstd decoding (common/codec.c)
 * as the collector runs it on compressed ingest bodies.
 *
 * Input: byte 0 picks the decoder and the limits, the rest is the compressed
 * body. Checked: the output never exceeds max_out, nor max_ratio times the
 * input once past LH_CODEC_RATIO_FLOOR; a failed decode leaves the caller's
 * buffer at its length on entry; what the encoders write decodes back to the
 * same bytes. */
#include "fuzz.h"

#include "lh/codec.h"

static const size_t caps[4] = { 1024, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024 };
static const unsigned ratios[4] = { 0, 4, 200, 1000 };

static struct lh_codec_ctx *ctx;   /* reused, as a collector worker does */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct lh_err err = { 0 };
    if (lh_codec_ctx_create(&ctx, &err) < 0) {
        fprintf(stderr, "codec context: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void decode_one(unsigned sel, const uint8_t *in, size_t n)
{
    size_t max_out = caps[sel & 3];
    unsigned ratio = ratios[(sel >> 2) & 3];
    int use_ctx = (sel >> 4) & 1;
    int which = (sel >> 5) & 3;   /* 0 gzip, 1 zstd, 2 by sniffing, 3 identity */
    enum lh_codec codec = which == 0 ? LH_CODEC_GZIP
                          : which == 1 ? LH_CODEC_ZSTD
                          : which == 2 ? lh_codec_sniff(in, n)
                                       : LH_CODEC_NONE;
    struct lh_buf out = LH_BUF_INIT;
    struct lh_err err = { 0 };
    lh_buf_puts(&out, "prefix");   /* decoders append: this must survive */
    size_t before = out.len;
    int rc;
    if (use_ctx)
        rc = lh_codec_ctx_decode(ctx, codec, in, n, max_out, ratio, &out, &err);
    else if (codec == LH_CODEC_GZIP)
        rc = lh_codec_gunzip(in, n, max_out, ratio, &out, &err);
    else if (codec == LH_CODEC_ZSTD)
        rc = lh_codec_unzstd(in, n, max_out, ratio, &out, &err);
    else
        rc = lh_codec_ctx_decode(ctx, codec, in, n, max_out, ratio, &out, &err);
    FUZZ_CHECK(out.len >= before && memcmp(out.data, "prefix", before) == 0,
               "the bytes before the output were changed");
    size_t got = out.len - before;
    if (rc == 0) {
        FUZZ_CHECK(got <= max_out, "%zu bytes out, cap %zu", got, max_out);
        FUZZ_CHECK(ratio == 0 || got <= LH_CODEC_RATIO_FLOOR || got <= (size_t)ratio * n,
                   "%zu bytes from %zu, ratio limit %u", got, n, ratio);
        fuzz_touch(out.data, out.len);
    } else {
        FUZZ_CHECK(rc == LH_EINVAL || rc == LH_ETOOBIG, "unexpected return %d (%s)", rc,
                   err.msg);
        FUZZ_CHECK(got == 0, "a failed decode left %zu bytes", got);
        FUZZ_CHECK(err.msg[0], "a failure without a message");
    }
    lh_buf_free(&out);
}

/* The encoders' output of any input decodes back to it. */
static void roundtrip(unsigned sel, const uint8_t *in, size_t n)
{
    enum lh_codec codec = (sel & 1) ? LH_CODEC_ZSTD : LH_CODEC_GZIP;
    int level = (sel & 1) ? (int)((sel >> 1) % 4) : (int)((sel >> 1) % 3);   /* fast levels */
    struct lh_buf enc = LH_BUF_INIT, dec = LH_BUF_INIT;
    struct lh_err err = { 0 };
    int rc = lh_codec_ctx_encode(ctx, codec, level, in, n, &enc, &err);
    FUZZ_CHECK(rc == 0, "encode %s level %d: %s", lh_codec_name(codec), level, err.msg);
    FUZZ_CHECK(lh_codec_sniff(enc.data, enc.len) == codec, "sniffing our own %s output",
               lh_codec_name(codec));
    rc = lh_codec_ctx_decode(ctx, codec, enc.data, enc.len, n, 0, &dec, &err);
    FUZZ_CHECK(rc == 0, "decode of our own %s: %s", lh_codec_name(codec), err.msg);
    FUZZ_CHECK(dec.len == n && (n == 0 || memcmp(dec.data, in, n) == 0), "round trip differs");
    lh_buf_free(&enc);
    lh_buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    decode_one(sel, data + 1, size - 1);
    if (sel & 0x80)
        roundtrip(sel, data + 1, size - 1);
    return 0;
}
