/* format.h - loghaul-agent's line decoders: they turn the physical lines the
 * tail reads into records.
 *
 *   plain   the line is the message (a trailing '\r' is removed).
 *   docker  Docker json-file lines {"log":"...\n","stream":"stdout","time":"..."}:
 *           the message is the unescaped "log" value minus its final '\n';
 *           a "log" without the final '\n' is a piece of a longer line
 *           (Docker splits at 16 KiB) and is joined with the pieces after it.
 *   cri     CRI lines "<RFC3339Nano time> <stdout|stderr> <P|F> <message>":
 *           P pieces are joined up to the next F piece of the same stream.
 * Then, optionally, multiline joining (multiline.h) merges lines into one
 * record (a stack trace), with a flush timeout for the last one.
 *
 * Every record carries the byte range [start, end) of the file it came
 * from. Records of one file come out in file order and their ranges tile
 * the file: a record's start is the previous record's end, except where the
 * tail skipped bytes (truncation, counted). So "acknowledged up to the end
 * of record R" is an exact checkpoint.
 *
 * Joins never grow past max_bytes / max_lines: the pending part is then
 * emitted marked LH_REC_INCOMPLETE and joining starts over. A stream switch
 * (stdout to stderr) ends pending joins too (marked INCOMPLETE when a CRI or
 * Docker piece was waiting for its end), so records never interleave.
 *
 * Bytes are never altered: invalid UTF-8 and binary bytes (NUL, other C0
 * controls but tab) are kept as read and the record is marked
 * LH_REC_INVALID_UTF8 / LH_REC_BINARY; the JSON encoder (lh_buf_json_str)
 * repairs invalid sequences to U+FFFD when the record is shipped.
 *
 * Not thread-safe: one lh_fmt per file, used from the agent's loop thread;
 * an lh_fmt_spec is shared by all of them (same thread). */
#ifndef LH_AGENT_FORMAT_H
#define LH_AGENT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/err.h"
#include "multiline.h"

struct lh_k8s_meta;

enum lh_fmt_kind { LH_FMT_PLAIN = 0, LH_FMT_DOCKER = 1, LH_FMT_CRI = 2 };
#define LH_FMT_CHOICES "plain|docker|cri"

/* Record (and input line) flags. */
#define LH_REC_SPLIT        (1u << 0)  /* a piece of a line longer than max_line_bytes */
#define LH_REC_SPLIT_LAST   (1u << 1)  /* ...the last piece (the one that ends the line) */
#define LH_REC_TRUNCATED    (1u << 2)  /* the line was cut at max_line_bytes, rest dropped */
#define LH_REC_NO_NEWLINE   (1u << 3)  /* the file ended (rotated, truncated) mid-line */
#define LH_REC_INVALID_UTF8 (1u << 4)  /* message bytes are not valid UTF-8 (kept as is) */
#define LH_REC_BINARY       (1u << 5)  /* message has NUL or C0 control bytes other than tab */
#define LH_REC_PARSE_ERROR  (1u << 6)  /* not a valid docker/CRI line: the raw line is the message */
#define LH_REC_PARTIAL      (1u << 7)  /* joined from docker/CRI partial pieces */
#define LH_REC_MULTILINE    (1u << 8)  /* joined from several lines by the multiline rule */
#define LH_REC_INCOMPLETE   (1u << 9)  /* a join was cut short (size, stream switch, close) */

/* One physical line (or piece of one) from the tail. */
struct lh_line {
    const char *data;          /* without the '\n' */
    size_t len;
    uint64_t start, end;       /* file bytes [start, end), the '\n' included */
    unsigned flags;            /* LH_REC_SPLIT*, TRUNCATED, NO_NEWLINE */
    uint32_t part;             /* 1-based piece number for SPLIT, else 0 */
};

/* A record. Pointers are valid only during the emit callback. */
struct lh_record {
    const char *msg;           /* msg[0..len): not NUL-terminated, may hold NULs */
    size_t len;
    uint64_t start, end;       /* file bytes [start, end) this record covers */
    int64_t ts_ns;             /* time from the docker/CRI line, 0 for plain */
    const char *stream;        /* "stdout"/"stderr" (static), NULL for plain */
    unsigned flags;            /* LH_REC_* */
    uint32_t nlines;           /* physical lines it consumed (for the ledger) */
    uint32_t part;             /* split piece number, 0 if whole */
    /* Set by the tail (NULL/0 straight out of lh_fmt): */
    const char *path;          /* the source path (glob match) */
    uint64_t file_uid;         /* lh_tail_ack key */
    uint32_t file_gen;         /* lh_tail_ack key */
    const struct lh_k8s_meta *k8s;   /* NULL when the path is not a k8s container log */
};

/* Called for each record, in file order. */
typedef void (*lh_fmt_emit_fn)(void *arg, const struct lh_record *rec);

struct lh_fmt_config {
    enum lh_fmt_kind kind;
    enum lh_ml_mode multiline;
    const char *start_pattern;  /* for LH_ML_START */
    int64_t flush_ms;           /* emit a pending join after this much quiet (0: 1000) */
    size_t max_bytes;           /* cap of a joined record (0: 256 KiB) */
    uint32_t max_lines;         /* cap of lines in a multiline record (0: 1000) */
};

struct lh_fmt_spec;   /* a compiled configuration, shared by all files */
struct lh_fmt;        /* one file's decoding state */

int lh_fmt_spec_create(const struct lh_fmt_config *cfg, struct lh_fmt_spec **out,
                       struct lh_err *err);
void lh_fmt_spec_destroy(struct lh_fmt_spec *s);   /* NULL-safe; after all its lh_fmt */

/* spec must outlive the lh_fmt. NULL when out of memory. */
struct lh_fmt *lh_fmt_create(struct lh_fmt_spec *spec, lh_fmt_emit_fn emit, void *arg);
void lh_fmt_destroy(struct lh_fmt *f);   /* NULL-safe; drops pending joins unemitted */

/* Decodes one physical line; emits 0 or more records. now_ms: a monotonic
 * clock for the flush timeout. LH_ENOMEM only (the line is then emitted raw
 * where possible). */
int lh_fmt_push(struct lh_fmt *f, const struct lh_line *ln, int64_t now_ms);

/* Emits pending joins that have waited flush_ms (force: all of them, e.g.
 * before the file is closed). Returns 1 if something is still pending. */
int lh_fmt_flush(struct lh_fmt *f, int64_t now_ms, int force);

/* Earliest time (ms) a flush is due, or INT64_MAX when nothing is pending. */
int64_t lh_fmt_due(const struct lh_fmt *f);

/* Where the first still-pending (unemitted) byte starts, or UINT64_MAX. */
uint64_t lh_fmt_pending_start(const struct lh_fmt *f);

/* Parsers used by lh_fmt, exposed for tests and other inputs. */

/* RFC 3339 time ("2024-05-23T08:06:14.123456789Z", "+02:00" offsets) to ns
 * since the epoch. 0, or LH_EINVAL. */
int lh_fmt_parse_time(const char *s, size_t n, int64_t *ns);

/* Marks for bytes: LH_REC_INVALID_UTF8 and/or LH_REC_BINARY (0 if clean). */
unsigned lh_fmt_classify(const char *s, size_t n);

#endif
