/* codec.h - gzip and zstd for ingest bodies, the bus, the store and the archive.
 *
 * Decompression is bounded by the caller: max_out caps the bytes produced and
 * max_ratio caps output/input, so a decompression bomb is refused (LH_ETOOBIG)
 * as soon as a limit is crossed, never fully inflated. Truncated, corrupt or
 * wrong-format input is LH_EINVAL with a message naming the problem.
 *
 * gunzip uses libdeflate and accepts concatenated gzip members (`cat a.gz b.gz`);
 * unzstd uses the zstd streaming decoder and accepts concatenated frames
 * (skippable frames are skipped). gzip levels 0-1 use ISA-L igzip, 2-12
 * libdeflate; zstd frames carry a content checksum.
 *
 * Every function that produces bytes APPENDS them to a caller-owned struct
 * lh_buf; on failure the buffer is truncated back to its length on entry (its
 * capacity may have grown), so it stays valid and the caller still owns it.
 *
 * Threads: a struct lh_codec_ctx belongs to one thread at a time (contexts
 * are not internally locked); use one per worker thread and reuse it. The
 * one-shot functions (no ctx) build and free a context per call and may be
 * called from any thread concurrently. */
#ifndef LH_CODEC_H
#define LH_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"
#include "lh/err.h"

enum lh_codec {
    LH_CODEC_NONE = 0,   /* identity: bytes as they are */
    LH_CODEC_GZIP,
    LH_CODEC_ZSTD,
};

/* Level ranges. gzip: 0 = ISA-L level 0 (fastest; NOT "store"), 1 = ISA-L
 * level 1, 2..12 = libdeflate levels. zstd: 1..19 (zstd's own range; 0
 * means zstd's default, 3). Out-of-range levels are LH_EINVAL. */
#define LH_CODEC_GZIP_LEVEL_MIN 0
#define LH_CODEC_GZIP_LEVEL_MAX 12
#define LH_CODEC_ZSTD_LEVEL_MAX 19

/* The ratio limit applies only past this much output, so small but very
 * repetitive bodies (a few KiB of identical lines) are never refused by it. */
#define LH_CODEC_RATIO_FLOOR (64 * 1024)

/* Parses a Content-Encoding value or a config name, case-insensitively:
 * "gzip"/"x-gzip" -> GZIP, "zstd" -> ZSTD, "identity"/"none" -> NONE.
 * Leading/trailing spaces and tabs are ignored. Returns 0 and sets *out, or
 * LH_EINVAL (unknown name; *out untouched). */
int lh_codec_parse(const char *name, size_t len, enum lh_codec *out, struct lh_err *err);

/* "gzip", "zstd" or "identity" (the Content-Encoding token); static string. */
const char *lh_codec_name(enum lh_codec c);

/* Guesses the codec from the first bytes (gzip 1f 8b, zstd frame or
 * skippable-frame magic); LH_CODEC_NONE when neither matches. */
enum lh_codec lh_codec_sniff(const void *in, size_t n);

/* Reusable state: libdeflate and zstd (de)compressors and the ISA-L stream,
 * each allocated on first use and kept for the next call. */
struct lh_codec_ctx;

/* Returns 0 and sets *out (caller owns it; free with lh_codec_ctx_destroy),
 * or LH_ENOMEM. Cheap: the heavy state is allocated lazily. */
int lh_codec_ctx_create(struct lh_codec_ctx **out, struct lh_err *err);
void lh_codec_ctx_destroy(struct lh_codec_ctx *ctx);   /* NULL-safe */

/* Decompression. in/n: the compressed bytes (not retained). max_out: the
 * most bytes this call may append to out (SIZE_MAX: no cap). max_ratio:
 * the most output bytes per input byte, enforced once output exceeds
 * LH_CODEC_RATIO_FLOOR (0: no ratio limit).
 * unzstd also refuses frames whose window (decoder memory) exceeds
 * max(8 MiB, the cap rounded up to a power of two, at most 128 MiB).
 * Returns 0, or LH_ETOOBIG (a limit was crossed; decoding stopped there),
 * LH_EINVAL (not this format, truncated, corrupt, checksum mismatch, trailing
 * garbage after the last member/frame, or empty input), LH_ENOMEM. */
int lh_codec_ctx_gunzip(struct lh_codec_ctx *ctx, const void *in, size_t n, size_t max_out,
                        unsigned max_ratio, struct lh_buf *out, struct lh_err *err);
int lh_codec_ctx_unzstd(struct lh_codec_ctx *ctx, const void *in, size_t n, size_t max_out,
                        unsigned max_ratio, struct lh_buf *out, struct lh_err *err);
/* Dispatches on codec; LH_CODEC_NONE copies in (max_out still applies). */
int lh_codec_ctx_decode(struct lh_codec_ctx *ctx, enum lh_codec codec, const void *in,
                        size_t n, size_t max_out, unsigned max_ratio, struct lh_buf *out,
                        struct lh_err *err);

/* Compression: appends one gzip member / one zstd frame holding in[0..n).
 * Returns 0, LH_EINVAL (level out of range), LH_ENOMEM or LH_ERR (the
 * library failed; see the message). */
int lh_codec_ctx_gzip(struct lh_codec_ctx *ctx, int level, const void *in, size_t n,
                      struct lh_buf *out, struct lh_err *err);
int lh_codec_ctx_zstd(struct lh_codec_ctx *ctx, int level, const void *in, size_t n,
                      struct lh_buf *out, struct lh_err *err);
/* Dispatches on codec; LH_CODEC_NONE copies in and ignores level. */
int lh_codec_ctx_encode(struct lh_codec_ctx *ctx, enum lh_codec codec, int level,
                        const void *in, size_t n, struct lh_buf *out, struct lh_err *err);

/* One-shot forms of the above: same contracts, no context to manage. */
int lh_codec_gunzip(const void *in, size_t n, size_t max_out, unsigned max_ratio,
                    struct lh_buf *out, struct lh_err *err);
int lh_codec_unzstd(const void *in, size_t n, size_t max_out, unsigned max_ratio,
                    struct lh_buf *out, struct lh_err *err);
int lh_codec_gzip(int level, const void *in, size_t n, struct lh_buf *out,
                  struct lh_err *err);
int lh_codec_zstd(int level, const void *in, size_t n, struct lh_buf *out,
                  struct lh_err *err);

#endif
