/* archive_format.h - the bytes of one archive object: Parquet or NDJSON+zstd.
 *
 * Writers take an array of events and produce one whole object in memory
 * (the indexer buffers an object's events, then uploads the result). Readers
 * take one whole object in memory and give events back, their strings
 * allocated from a caller's arena (they stay valid until the arena is reset).
 *
 * Both formats carry the same fields, named as in the search API:
 *   timestamp (ns, UTC), id, tenant, service, level, host, trace_id, span_id,
 *   user_id, message, raw, stream, container_id, k8s_namespace, k8s_pod,
 *   k8s_container, region, file, custom_metadata (string -> string).
 * received_ns is not archived (it reads back as 0). Absent (NULL) strings
 * stay absent, empty strings stay empty; an event without metadata reads
 * back with meta == NULL, nmeta == 0. A metadata value may be NULL.
 *
 * Parquet (parquet.c, our own writer and reader, no library):
 *   - PAR1, row groups of up to row_group_rows events, one column chunk per
 *     leaf column, data pages v1 of about page_bytes each, zstd per page;
 *   - timestamp: INT64, required, TIMESTAMP(isAdjustedToUTC, NANOS) or
 *     MICROS (+ converted type TIMESTAMP_MICROS) when ts_micros is set;
 *     min/max statistics per row group (lh_parquet_row_group_ts);
 *   - other fields: optional BYTE_ARRAY with STRING/UTF8, definition levels
 *     RLE/bit-packed; dictionary encoding (PLAIN dictionary page +
 *     RLE_DICTIONARY data pages) where it pays (low-cardinality columns);
 *   - raw is stored once: when the message (16 bytes or more) is a part of
 *     the raw line, as it is for nearly every parsed line, the row holds
 *     raw_prefix and raw_suffix (optional STRING columns: the bytes before
 *     and after the message, taken at the line's end where it is there,
 *     else at its first occurrence) and raw is absent, so the message's
 *     text is not stored twice. Readers rebuild it:
 *       raw = coalesce(raw, raw_prefix || message || raw_suffix)
 *     (SQL of DuckDB, Athena, Trino, Spark); our reader does so itself.
 *     Otherwise (no message, a short one, or one rewritten by the
 *     pipeline) raw is stored whole and raw_prefix/raw_suffix are absent;
 *     opts keep_raw stores it whole always. Files without the two columns
 *     (schema "1") read as before;
 *   - custom_metadata: optional group (MAP) { repeated group key_value
 *     { required binary key (STRING); optional binary value (STRING) } },
 *     so Athena/Trino/Spark/DuckDB see a real map<string,string>;
 *   - footer: FileMetaData in Thrift Compact Protocol (lh/thrift.h),
 *     key_value_metadata "loghaul.schema" = "2" ("1": before
 *     raw_prefix/raw_suffix).
 *   Readable by DuckDB, pyarrow, Athena, Spark (tests/integration/
 *   archive_readers.py checks DuckDB and pyarrow against every row).
 *
 * NDJSON+zstd (archive_ndjson.c): one JSON object per event and line,
 *   {"timestamp":"2026-05-23T08:06:14.123456789Z","id":...,"level":"ERROR",
 *    ...,"k8s":{"namespace":...},"custom_metadata":{...}}, absent fields
 *   omitted, then one zstd frame over all lines.
 *
 * All functions are reentrant: any thread may call them on its own data. */
#ifndef LH_ARCHIVE_FORMAT_H
#define LH_ARCHIVE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/buf.h"
#include "lh/err.h"
#include "lh/event.h"

enum lh_archive_format {
    LH_ARCHIVE_PARQUET = 0,
    LH_ARCHIVE_NDJSON = 1,     /* NDJSON, zstd-compressed */
};

/* "parquet" / "ndjson.zst": the object key extension (without ".enc"). */
const char *lh_archive_format_ext(enum lh_archive_format f);

/* The format of an object key by its extension (".enc" ignored): 0 and
 * *out set, or LH_EINVAL for an unknown extension. */
int lh_archive_format_of_key(const char *key, enum lh_archive_format *out);

/* ---- NDJSON + zstd ---- */

/* Appends one zstd frame holding n JSON lines to out. level: zstd level
 * (0: the library default). */
int lh_ndjson_write(const struct lh_event *evs, size_t n, int level, struct lh_buf *out,
                    struct lh_err *err);

/* Appends the uncompressed JSON of one event (no newline). */
int lh_ndjson_encode_event(const struct lh_event *ev, struct lh_buf *out);

/* Decompresses and parses data[0..len): *evs (an array in arena) gets *n
 * events. Blank lines are skipped; a bad line is LH_ECORRUPT naming the
 * line number. */
int lh_ndjson_read(const void *data, size_t len, struct lh_arena *arena, struct lh_event **evs,
                   size_t *n, struct lh_err *err);

/* ---- Parquet ---- */

struct lh_parquet_opts {
    size_t row_group_rows;   /* 0: 1048576 */
    size_t page_bytes;       /* target uncompressed page size; 0: 1 MiB */
    int zstd_level;          /* 0: 3 */
    int no_dictionary;       /* 1: PLAIN only */
    int ts_micros;           /* 1: TIMESTAMP(MICROS) instead of NANOS (sub-us digits lost) */
    int keep_raw;            /* 1: raw whole in every row (no raw_prefix/raw_suffix) */
};

/* Appends one Parquet file holding the n events to out. opts may be NULL
 * (defaults). n may be 0 (a valid file with no row group). */
int lh_parquet_write(const struct lh_event *evs, size_t n, const struct lh_parquet_opts *opts,
                     struct lh_buf *out, struct lh_err *err);

struct lh_parquet_file;

/* Parses the footer of the Parquet file data[0..len) (which must stay valid
 * until lh_parquet_close). Columns are found by name, so files with more,
 * fewer or reordered columns open too: unknown columns are ignored, missing
 * ones read as absent. Returns 0, LH_ECORRUPT or LH_ENOMEM. */
int lh_parquet_open(struct lh_parquet_file **out, const void *data, size_t len,
                    struct lh_err *err);
void lh_parquet_close(struct lh_parquet_file *f);

int64_t lh_parquet_num_rows(const struct lh_parquet_file *f);
size_t lh_parquet_num_row_groups(const struct lh_parquet_file *f);
/* Rows and timestamp range (ns) of row group i, from the footer statistics;
 * a search skips row groups outside its time range without reading them.
 * Returns 0, or LH_ENOTFOUND when the file has no statistics for it. */
int lh_parquet_row_group_ts(const struct lh_parquet_file *f, size_t i, int64_t *rows,
                            int64_t *ts_min, int64_t *ts_max);

/* The same from the tail of a file that is not in memory (an object in the
 * archive): tail holds the last tail_len bytes of a file of file_len bytes.
 * When the footer is longer than the tail, returns LH_EAGAIN with *need =
 * the tail length required. Row groups are then read with
 * lh_parquet_read_row_group_at from the byte range lh_parquet_row_group_range
 * names. tail must stay valid until lh_parquet_close. */
int lh_parquet_open_tail(struct lh_parquet_file **out, const void *tail, size_t tail_len,
                         uint64_t file_len, size_t *need, struct lh_err *err);
/* The byte range of the file holding row group i's columns. */
int lh_parquet_row_group_range(const struct lh_parquet_file *f, size_t i, uint64_t *off,
                               uint64_t *len);
/* Decodes row group i from data, the file's bytes [off, off + len). */
int lh_parquet_read_row_group_at(struct lh_parquet_file *f, size_t i, const void *data,
                                 uint64_t off, size_t len, struct lh_arena *arena,
                                 struct lh_event **evs, size_t *n, struct lh_err *err);

/* Decodes row group i: *evs (array in arena) gets *n events. */
int lh_parquet_read_row_group(struct lh_parquet_file *f, size_t i, struct lh_arena *arena,
                              struct lh_event **evs, size_t *n, struct lh_err *err);

/* Open + every row group + close. */
int lh_parquet_read(const void *data, size_t len, struct lh_arena *arena, struct lh_event **evs,
                    size_t *n, struct lh_err *err);

/* Either format by fmt. */
int lh_archive_format_write(enum lh_archive_format fmt, const struct lh_event *evs, size_t n,
                            int zstd_level, struct lh_buf *out, struct lh_err *err);
int lh_archive_format_read(enum lh_archive_format fmt, const void *data, size_t len,
                           struct lh_arena *arena, struct lh_event **evs, size_t *n,
                           struct lh_err *err);

#endif
