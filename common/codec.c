/* codec.c - bounded gzip/zstd decompression and fast compression (see lh/codec.h). */
#include "lh/codec.h"

#include <isa-l.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zstd.h>
#include <zstd_errors.h>

struct lh_codec_ctx {
    struct libdeflate_decompressor *inflater;
    struct libdeflate_compressor *deflaters[LH_CODEC_GZIP_LEVEL_MAX + 1]; /* by level, 2.. */
    struct isal_zstream *isal;
    uint8_t *isal_level_buf;
    size_t isal_level_buf_size;
    ZSTD_DCtx *zd;
    ZSTD_CCtx *zc;
};

#define GROW_MIN (64 * 1024)      /* first output reservation when nothing better is known */
#define DEFLATE_MAX_RATIO 1032    /* deflate cannot expand beyond ~1032:1 */
#define ZSTD_WINDOWLOG_FLOOR 23   /* what zstd levels <= 19 use for unknown-size input */
#define ZSTD_WINDOWLOG_CEIL 27    /* zstd's own default limit for decoders */

/* ---- names ------------------------------------------------------------------------- */

int lh_codec_parse(const char *name, size_t len, enum lh_codec *out, struct lh_err *err)
{
    while (len && (*name == ' ' || *name == '\t')) {
        name++;
        len--;
    }
    while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    static const struct { const char *s; enum lh_codec c; } names[] = {
        { "gzip", LH_CODEC_GZIP }, { "x-gzip", LH_CODEC_GZIP }, { "zstd", LH_CODEC_ZSTD },
        { "identity", LH_CODEC_NONE }, { "none", LH_CODEC_NONE },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].s) == len && strncasecmp(name, names[i].s, len) == 0) {
            *out = names[i].c;
            return 0;
        }
    }
    return lh_err_set(err, LH_EINVAL,
                      "unsupported content encoding \"%.*s\" (expected gzip, zstd or identity)",
                      (int)(len > 64 ? 64 : len), name);
}

const char *lh_codec_name(enum lh_codec c)
{
    switch (c) {
    case LH_CODEC_GZIP: return "gzip";
    case LH_CODEC_ZSTD: return "zstd";
    default:            return "identity";
    }
}

static int is_zstd_magic(const unsigned char *p, size_t n)
{
    if (n < 4)
        return 0;
    uint32_t m = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return m == ZSTD_MAGICNUMBER || (m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

enum lh_codec lh_codec_sniff(const void *in, size_t n)
{
    const unsigned char *p = in;
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return LH_CODEC_GZIP;
    if (is_zstd_magic(p, n))
        return LH_CODEC_ZSTD;
    return LH_CODEC_NONE;
}

/* ---- context ----------------------------------------------------------------------- */

int lh_codec_ctx_create(struct lh_codec_ctx **out, struct lh_err *err)
{
    struct lh_codec_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return lh_err_set(err, LH_ENOMEM, "codec context: out of memory");
    *out = ctx;
    return 0;
}

void lh_codec_ctx_destroy(struct lh_codec_ctx *ctx)
{
    if (!ctx)
        return;
    libdeflate_free_decompressor(ctx->inflater);
    for (size_t i = 0; i < sizeof(ctx->deflaters) / sizeof(ctx->deflaters[0]); i++)
        libdeflate_free_compressor(ctx->deflaters[i]);
    free(ctx->isal);
    free(ctx->isal_level_buf);
    ZSTD_freeDCtx(ctx->zd);
    ZSTD_freeCCtx(ctx->zc);
    free(ctx);
}

/* ---- limits ------------------------------------------------------------------------ */

struct limit {
    size_t cap;          /* the most bytes this call may produce */
    int by_ratio;        /* cap comes from max_ratio, not max_out */
    size_t max_out;
    unsigned max_ratio;
};

static struct limit limit_of(size_t n, size_t max_out, unsigned max_ratio)
{
    struct limit l = { max_out, 0, max_out, max_ratio };
    if (max_ratio) {
        size_t r = n > SIZE_MAX / max_ratio ? SIZE_MAX : n * max_ratio;
        if (r < LH_CODEC_RATIO_FLOOR)
            r = LH_CODEC_RATIO_FLOOR;
        if (r < l.cap) {
            l.cap = r;
            l.by_ratio = 1;
        }
    }
    return l;
}

static int too_big(const struct limit *l, const char *what, size_t n, struct lh_err *err)
{
    if (l->by_ratio)
        return lh_err_set(err, LH_ETOOBIG,
                          "%s: output exceeds %u times the %zu input bytes "
                          "(decompression bomb?)", what, l->max_ratio, n);
    return lh_err_set(err, LH_ETOOBIG, "%s: output exceeds the limit of %zu bytes", what,
                      l->max_out);
}

/* Makes room for `want` more bytes past out->len, never more than `room_left`
 * (what the limit still allows). Returns the usable space or LH_ENOMEM. */
static int grow(struct lh_buf *out, size_t want, size_t room_left, size_t *space)
{
    if (want > room_left)
        want = room_left;
    if (lh_buf_reserve(out, want) < 0)
        return LH_ENOMEM;
    size_t s = out->cap - out->len - 1;
    *space = s < room_left ? s : room_left;
    return 0;
}

static void restore(struct lh_buf *out, size_t len0)
{
    out->len = len0;
    if (out->data)
        out->data[len0] = '\0';
}

/* ---- gunzip ------------------------------------------------------------------------ */

int lh_codec_ctx_gunzip(struct lh_codec_ctx *ctx, const void *in, size_t n, size_t max_out,
                        unsigned max_ratio, struct lh_buf *out, struct lh_err *err)
{
    const unsigned char *p = in;
    const size_t len0 = out->len;
    const struct limit lim = limit_of(n, max_out, max_ratio);
    int rc;

    if (n == 0)
        return lh_err_set(err, LH_EINVAL, "gunzip: empty input");
    if (n < 2 || p[0] != 0x1f || p[1] != 0x8b)
        return lh_err_set(err, LH_EINVAL, "gunzip: not gzip data (bad magic %02x %02x)",
                          p[0], n > 1 ? p[1] : 0);
    if (!ctx->inflater && !(ctx->inflater = libdeflate_alloc_decompressor()))
        return lh_err_set(err, LH_ENOMEM, "gunzip: out of memory");

    /* First reservation: 4x the input, or the trailer's ISIZE when larger
     * and plausible for deflate. ISIZE is exact for a single member (the
     * common case), only the last member's size for several. Reserving
     * more than is written costs address space, not work; too little costs
     * a restart (grow() is capped by the limit either way). */
    size_t want = n < SIZE_MAX / 4 ? n * 4 : SIZE_MAX;
    if (n >= 18) {
        const unsigned char *t = p + n - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 |
                       (size_t)t[3] << 24;
        if (isize > want && n <= SIZE_MAX / DEFLATE_MAX_RATIO &&
            isize <= n * DEFLATE_MAX_RATIO)
            want = isize;
    }
    if (want < GROW_MIN)
        want = GROW_MIN;

    size_t pos = 0, member = 0;
    while (pos < n) {
        size_t produced = out->len - len0, space, used_in = 0, got = 0;
        if (n - pos < 2 || p[pos] != 0x1f || p[pos + 1] != 0x8b) {
            rc = lh_err_set(err, LH_EINVAL, "gunzip: %zu bytes of trailing garbage after "
                            "gzip member %zu (offset %zu)", n - pos, member, pos);
            goto fail;
        }
        if (grow(out, want, lim.cap - produced, &space) < 0)
            goto nomem;
        for (;;) {
            enum libdeflate_result r = libdeflate_gzip_decompress_ex(
                ctx->inflater, p + pos, n - pos, out->data + out->len, space, &used_in, &got);
            if (r == LIBDEFLATE_SUCCESS)
                break;
            if (r != LIBDEFLATE_INSUFFICIENT_SPACE) {
                rc = lh_err_set(err, LH_EINVAL, "gunzip: gzip member %zu at offset %zu is "
                                "corrupt or truncated", member, pos);
                goto fail;
            }
            if (space >= lim.cap - produced) {
                rc = too_big(&lim, "gunzip", n, err);
                goto fail;
            }
            /* libdeflate restarts the member: double so the total work stays
             * within twice the final size. */
            size_t more = space > SIZE_MAX / 2 ? SIZE_MAX : space * 2;
            if (grow(out, more < GROW_MIN ? GROW_MIN : more, lim.cap - produced, &space) < 0)
                goto nomem;
        }
        out->len += got;
        out->data[out->len] = '\0';
        pos += used_in;
        member++;
        /* Later members: guess from the input still to read. */
        want = (n - pos) < SIZE_MAX / 4 ? (n - pos) * 4 : SIZE_MAX;
    }
    return 0;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "gunzip: out of memory");
fail:
    restore(out, len0);
    return rc;
}

/* ---- unzstd ------------------------------------------------------------------------ */

static unsigned log2_ceil(size_t v)
{
    unsigned l = 0;
    while (l < 63 && ((size_t)1 << l) < v)
        l++;
    return l;
}

int lh_codec_ctx_unzstd(struct lh_codec_ctx *ctx, const void *in, size_t n, size_t max_out,
                        unsigned max_ratio, struct lh_buf *out, struct lh_err *err)
{
    const size_t len0 = out->len;
    const struct limit lim = limit_of(n, max_out, max_ratio);
    int rc;

    if (n == 0)
        return lh_err_set(err, LH_EINVAL, "unzstd: empty input");
    if (!is_zstd_magic(in, n))
        return lh_err_set(err, LH_EINVAL, "unzstd: not zstd data (bad magic)");
    if (!ctx->zd && !(ctx->zd = ZSTD_createDCtx()))
        return lh_err_set(err, LH_ENOMEM, "unzstd: out of memory");
    ZSTD_DCtx_reset(ctx->zd, ZSTD_reset_session_and_parameters);
    /* No valid frame within the limit needs a window larger than the limit;
     * this keeps a hostile frame header from making us allocate 128 MiB+. */
    unsigned wlog = log2_ceil(lim.cap);
    if (wlog < ZSTD_WINDOWLOG_FLOOR)
        wlog = ZSTD_WINDOWLOG_FLOOR;
    if (wlog > ZSTD_WINDOWLOG_CEIL)
        wlog = ZSTD_WINDOWLOG_CEIL;
    ZSTD_DCtx_setParameter(ctx->zd, ZSTD_d_windowLogMax, (int)wlog);

    size_t want = n < SIZE_MAX / 4 ? n * 4 : SIZE_MAX;
    unsigned long long fcs = ZSTD_getFrameContentSize(in, n);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR && fcs < SIZE_MAX)
        want = (size_t)fcs + 1;   /* +1: room to see that the input ends there */
    if (want < GROW_MIN)
        want = GROW_MIN;

    /* Output may run one byte past the cap: that byte is how a crossing is
     * detected. It lands in the buffer's spare capacity and is discarded. */
    const size_t hard = lim.cap == SIZE_MAX ? SIZE_MAX : lim.cap + 1;
    ZSTD_inBuffer ib = { in, n, 0 };
    size_t last = 1;       /* ZSTD_decompressStream's last hint: 0 = frame complete */
    for (;;) {
        size_t produced = out->len - len0, space;
        if (produced > lim.cap) {
            rc = too_big(&lim, "unzstd", n, err);
            goto fail;
        }
        if (ib.pos == ib.size && last == 0)
            break;
        if (grow(out, want, hard - produced, &space) < 0)
            goto nomem;
        ZSTD_outBuffer ob = { out->data + out->len, space, 0 };
        size_t before_in = ib.pos;
        last = ZSTD_decompressStream(ctx->zd, &ob, &ib);
        if (ZSTD_isError(last) &&
            ZSTD_getErrorCode(last) == ZSTD_error_frameParameter_windowTooLarge) {
            rc = lh_err_set(err, LH_ETOOBIG, "unzstd: frame needs a window larger than "
                            "2^%u bytes", wlog);
            goto fail;
        }
        if (ZSTD_isError(last)) {
            rc = lh_err_set(err, LH_EINVAL, "unzstd: corrupt data near input offset %zu: %s",
                            ib.pos, ZSTD_getErrorName(last));
            goto fail;
        }
        out->len += ob.pos;
        if (ob.pos == 0 && ib.pos == before_in && ob.pos < ob.size) {
            /* No progress with room to write: the input ended mid-frame. */
            rc = lh_err_set(err, LH_EINVAL, "unzstd: truncated input (%zu bytes, frame "
                            "incomplete)", n);
            goto fail;
        }
        if (ob.pos == ob.size) {
            size_t s = space > SIZE_MAX / 2 ? SIZE_MAX : space * 2;
            want = s < GROW_MIN ? GROW_MIN : s;
        } else {
            want = GROW_MIN;
        }
    }
    out->data[out->len] = '\0';
    return 0;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "unzstd: out of memory");
fail:
    restore(out, len0);
    return rc;
}

int lh_codec_ctx_decode(struct lh_codec_ctx *ctx, enum lh_codec codec, const void *in,
                        size_t n, size_t max_out, unsigned max_ratio, struct lh_buf *out,
                        struct lh_err *err)
{
    switch (codec) {
    case LH_CODEC_GZIP: return lh_codec_ctx_gunzip(ctx, in, n, max_out, max_ratio, out, err);
    case LH_CODEC_ZSTD: return lh_codec_ctx_unzstd(ctx, in, n, max_out, max_ratio, out, err);
    case LH_CODEC_NONE:
        if (n > max_out)
            return lh_err_set(err, LH_ETOOBIG, "body of %zu bytes exceeds the limit of %zu "
                              "bytes", n, max_out);
        if (lh_buf_append(out, in, n) < 0)
            return lh_err_set(err, LH_ENOMEM, "decode: out of memory");
        return 0;
    }
    return lh_err_set(err, LH_EINVAL, "decode: unknown codec %d", (int)codec);
}

/* ---- gzip -------------------------------------------------------------------------- */

static int gzip_isal(struct lh_codec_ctx *ctx, int level, const unsigned char *in, size_t n,
                     struct lh_buf *out, struct lh_err *err)
{
    static const unsigned char empty[1];
    if (!in)
        in = empty;     /* keeps `in + pos` defined for a NULL, 0-byte input */
    const size_t len0 = out->len;
    size_t need_lvl = level == 1 ? ISAL_DEF_LVL1_DEFAULT : ISAL_DEF_LVL0_DEFAULT;
    int rc;

    if (!ctx->isal && !(ctx->isal = malloc(sizeof(*ctx->isal))))
        return lh_err_set(err, LH_ENOMEM, "gzip: out of memory");
    if (need_lvl > ctx->isal_level_buf_size) {
        uint8_t *b = realloc(ctx->isal_level_buf, need_lvl);
        if (!b)
            return lh_err_set(err, LH_ENOMEM, "gzip: out of memory");
        ctx->isal_level_buf = b;
        ctx->isal_level_buf_size = need_lvl;
    }
    struct isal_zstream *s = ctx->isal;
    isal_deflate_init(s);
    s->gzip_flag = IGZIP_GZIP;
    s->level = (uint32_t)level;
    s->level_buf = ctx->isal_level_buf;
    s->level_buf_size = (uint32_t)ctx->isal_level_buf_size;
    s->flush = NO_FLUSH;
    s->avail_in = 0;      /* isal_deflate_init leaves the buffer fields alone */

    /* Incompressible data is stored: input + ~5 bytes per 64 KiB block +
     * header/trailer. More space is added below if that is ever short. */
    size_t want = n + n / 8192 + 256;
    size_t pos = 0;
    for (;;) {
        size_t space;
        if (grow(out, want, SIZE_MAX / 2, &space) < 0)
            goto nomem;
        if (s->avail_in == 0) {
            size_t chunk = n - pos > (1u << 30) ? (1u << 30) : n - pos;
            s->next_in = (uint8_t *)(uintptr_t)(in + pos);
            s->avail_in = (uint32_t)chunk;
            pos += chunk;
            s->end_of_stream = pos == n;
        }
        if (space > UINT32_MAX)
            space = UINT32_MAX;
        s->next_out = (uint8_t *)out->data + out->len;
        s->avail_out = (uint32_t)space;
        int r = isal_deflate(s);
        out->len += space - s->avail_out;
        if (r != COMP_OK) {
            rc = lh_err_set(err, LH_ERR, "gzip: isal_deflate failed (%d)", r);
            goto fail;
        }
        if (s->internal_state.state == ZSTATE_END)
            break;
        want = s->avail_out == 0 ? space : GROW_MIN;
    }
    out->data[out->len] = '\0';
    return 0;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "gzip: out of memory");
fail:
    restore(out, len0);
    return rc;
}

int lh_codec_ctx_gzip(struct lh_codec_ctx *ctx, int level, const void *in, size_t n,
                      struct lh_buf *out, struct lh_err *err)
{
    if (level < LH_CODEC_GZIP_LEVEL_MIN || level > LH_CODEC_GZIP_LEVEL_MAX)
        return lh_err_set(err, LH_EINVAL, "gzip: level %d out of range %d..%d", level,
                          LH_CODEC_GZIP_LEVEL_MIN, LH_CODEC_GZIP_LEVEL_MAX);
    if (level <= 1)
        return gzip_isal(ctx, level, in, n, out, err);

    struct libdeflate_compressor **c = &ctx->deflaters[level];
    if (!*c && !(*c = libdeflate_alloc_compressor(level)))
        return lh_err_set(err, LH_ENOMEM, "gzip: out of memory");
    size_t bound = libdeflate_gzip_compress_bound(*c, n);
    if (lh_buf_reserve(out, bound) < 0)
        return lh_err_set(err, LH_ENOMEM, "gzip: out of memory for %zu bytes", bound);
    size_t got = libdeflate_gzip_compress(*c, in, n, out->data + out->len, bound);
    if (got == 0)
        return lh_err_set(err, LH_ERR, "gzip: libdeflate_gzip_compress failed");
    out->len += got;
    out->data[out->len] = '\0';
    return 0;
}

/* ---- zstd -------------------------------------------------------------------------- */

int lh_codec_ctx_zstd(struct lh_codec_ctx *ctx, int level, const void *in, size_t n,
                      struct lh_buf *out, struct lh_err *err)
{
    if (level < 0 || level > LH_CODEC_ZSTD_LEVEL_MAX)
        return lh_err_set(err, LH_EINVAL, "zstd: level %d out of range 0..%d", level,
                          LH_CODEC_ZSTD_LEVEL_MAX);
    if (!ctx->zc && !(ctx->zc = ZSTD_createCCtx()))
        return lh_err_set(err, LH_ENOMEM, "zstd: out of memory");
    ZSTD_CCtx_reset(ctx->zc, ZSTD_reset_session_and_parameters);
    size_t r = ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(r))
        return lh_err_set(err, LH_ERR, "zstd: %s", ZSTD_getErrorName(r));
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound))
        return lh_err_set(err, LH_ETOOBIG, "zstd: input of %zu bytes too large", n);
    if (lh_buf_reserve(out, bound) < 0)
        return lh_err_set(err, LH_ENOMEM, "zstd: out of memory for %zu bytes", bound);
    r = ZSTD_compress2(ctx->zc, out->data + out->len, bound, in, n);
    if (ZSTD_isError(r))
        return lh_err_set(err, LH_ERR, "zstd: %s", ZSTD_getErrorName(r));
    out->len += r;
    out->data[out->len] = '\0';
    return 0;
}

int lh_codec_ctx_encode(struct lh_codec_ctx *ctx, enum lh_codec codec, int level,
                        const void *in, size_t n, struct lh_buf *out, struct lh_err *err)
{
    switch (codec) {
    case LH_CODEC_GZIP: return lh_codec_ctx_gzip(ctx, level, in, n, out, err);
    case LH_CODEC_ZSTD: return lh_codec_ctx_zstd(ctx, level, in, n, out, err);
    case LH_CODEC_NONE:
        if (lh_buf_append(out, in, n) < 0)
            return lh_err_set(err, LH_ENOMEM, "encode: out of memory");
        return 0;
    }
    return lh_err_set(err, LH_EINVAL, "encode: unknown codec %d", (int)codec);
}

/* ---- one-shot wrappers ------------------------------------------------------------- */

#define ONE_SHOT(call)                                                           \
    do {                                                                         \
        struct lh_codec_ctx *ctx_ = NULL;                                        \
        int rc_ = lh_codec_ctx_create(&ctx_, err);                               \
        if (rc_ < 0)                                                             \
            return rc_;                                                          \
        rc_ = call;                                                              \
        lh_codec_ctx_destroy(ctx_);                                              \
        return rc_;                                                              \
    } while (0)

int lh_codec_gunzip(const void *in, size_t n, size_t max_out, unsigned max_ratio,
                    struct lh_buf *out, struct lh_err *err)
{
    ONE_SHOT(lh_codec_ctx_gunzip(ctx_, in, n, max_out, max_ratio, out, err));
}

int lh_codec_unzstd(const void *in, size_t n, size_t max_out, unsigned max_ratio,
                    struct lh_buf *out, struct lh_err *err)
{
    ONE_SHOT(lh_codec_ctx_unzstd(ctx_, in, n, max_out, max_ratio, out, err));
}

int lh_codec_gzip(int level, const void *in, size_t n, struct lh_buf *out,
                  struct lh_err *err)
{
    ONE_SHOT(lh_codec_ctx_gzip(ctx_, level, in, n, out, err));
}

int lh_codec_zstd(int level, const void *in, size_t n, struct lh_buf *out,
                  struct lh_err *err)
{
    ONE_SHOT(lh_codec_ctx_zstd(ctx_, level, in, n, out, err));
}
