/* archive_format.c - what the archive object formats share: level names,
 * key extensions and dispatch by format (see lh/archive_format.h). */
#include "lh/archive_format.h"

#include <string.h>

#include "archive_impl.h"

const char *lh_archive_format_ext(enum lh_archive_format f)
{
    return f == LH_ARCHIVE_NDJSON ? "ndjson.zst" : "parquet";
}

static int ends_with(const char *s, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

int lh_archive_format_of_key(const char *key, enum lh_archive_format *out)
{
    size_t n = strlen(key);
    if (ends_with(key, n, ".enc"))
        n -= 4;
    if (ends_with(key, n, ".parquet")) {
        *out = LH_ARCHIVE_PARQUET;
        return 0;
    }
    if (ends_with(key, n, ".ndjson.zst")) {
        *out = LH_ARCHIVE_NDJSON;
        return 0;
    }
    return LH_EINVAL;
}

int lh_archive_format_write(enum lh_archive_format fmt, const struct lh_event *evs, size_t n,
                            int zstd_level, struct lh_buf *out, struct lh_err *err)
{
    if (fmt == LH_ARCHIVE_NDJSON)
        return lh_ndjson_write(evs, n, zstd_level, out, err);
    struct lh_parquet_opts o = { 0 };
    o.zstd_level = zstd_level;
    return lh_parquet_write(evs, n, &o, out, err);
}

int lh_archive_format_read(enum lh_archive_format fmt, const void *data, size_t len,
                           struct lh_arena *arena, struct lh_event **evs, size_t *n,
                           struct lh_err *err)
{
    if (fmt == LH_ARCHIVE_NDJSON)
        return lh_ndjson_read(data, len, arena, evs, n, err);
    return lh_parquet_read(data, len, arena, evs, n, err);
}
