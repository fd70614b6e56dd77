/* batch.h - loghaul-agent's batches: records gathered into one ingest body
 * (collector/ingest.h's JSON form), compressed, with a UUID that stays with
 * the batch for every retry (the Idempotency-Key).
 *
 * Body layout (records first so they stream into the buffer; the collector
 * accepts shipper_metadata after them):
 *   {"log_records":[{"timestamp":"2026-05-23T08:06:14.123456789Z",
 *      "raw_message":"...","file":"/var/log/app.log","stream":"stdout",
 *      "container_id":"...","k8s":{"namespace":"...","pod":"...","container":"..."}},
 *      ...],
 *    "shipper_metadata":{"host_id":...,"cluster_name":...,"region":...,
 *      "agent_version":...,"files":[{"path":...,"read":N,"acked":N,
 *      "dropped":N,"sampled":N,"records":N}, ...],"agent_boot":"<32 hex>"}}
 * "timestamp" is the docker/CRI time when the line had one, else the time
 * the agent read it. files[] lists the ledger counters (ledger.h) of each
 * file that has records in the batch, as they were when it was sealed:
 * read = lines read, acked = lines the collector acknowledged, sampled =
 * lines dropped by sampling, dropped = lines dropped for any other reason,
 * records = records of the file in this batch; agent_boot names the ledger
 * the counters come from (they restart at 0 with a new one).
 *
 * Bounds: a batch is sealed when its JSON body would pass max_bytes (the
 * record that would cross it starts the next batch; a single record larger
 * than max_bytes travels alone), when it holds max_records records, or
 * max_age after its first record was added.
 *
 * Each record keeps where its JSON object sits in the body (off, len), so a
 * batch the collector refused can be rebuilt without some of its records
 * (lh_batch_subset_json) for the split-on-400 logic in ship.c.
 *
 * Each batch also says, per source file, up to which byte it covers the
 * file (records shipped and records sampled away alike): once the batch is
 * durable (acknowledged, or written to the disk buffer) the tail may be
 * acknowledged up to there.
 *
 * Threads: a batcher belongs to the agent's loop thread. A sealed batch is
 * a plain object handed from thread to thread (one owner at a time). */
#ifndef LH_AGENT_BATCH_H
#define LH_AGENT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "ledger.h"
#include "meta.h"
#include "lh/buf.h"
#include "lh/codec.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/uuid.h"

/* Reasons the shipper drops lines for, in the ledger (ledger.h) and so in
 * /metrics as loghaul_agent_lines_dropped_total{reason=...}. */
#define LH_DROP_SAMPLED     "sampled"      /* INFO/DEBUG sampled while the disk buffer fills */
#define LH_DROP_BUFFER_FULL "buffer_full"  /* the disk buffer had no room at all */
#define LH_DROP_REJECTED    "rejected"     /* the collector refused the record (400 naming it) */
#define LH_DROP_TOO_LARGE   "too_large"    /* a single record over the collector's size limit */

/* Zero fields take the default in brackets. */
struct lh_batch_config {
    uint64_t max_bytes;     /* JSON body bytes [1 MiB] */
    int64_t max_records;    /* records per batch [10000] */
    int64_t max_age_ms;     /* seal this long after the first record [1 s] */
    int compression;        /* LH_BATCH_GZIP [default], LH_BATCH_ZSTD, LH_BATCH_NONE */
    int64_t level;          /* gzip 1..12 (1 is ISA-L), zstd 1..19 [1] */
};

enum { LH_BATCH_GZIP = 0, LH_BATCH_ZSTD = 1, LH_BATCH_NONE = 2 };

/* The enum lh_codec of a compression choice. */
int lh_batch_codec(int compression);

/* The `batch:` section: max_bytes, max_records, max_age, compression
 * (none|gzip|zstd), level. */
extern const struct lh_opt lh_batch_opts[];

/* Checks ranges (level for the codec, max_bytes >= 1 KiB...). 0 or LH_EINVAL. */
int lh_batch_config_check(const struct lh_batch_config *cfg, struct lh_err *err);

struct lh_batch_rec {
    uint32_t off, len;      /* the record's JSON object within the raw body */
    uint32_t nlines;        /* physical lines it stands for (ledger) */
    uint32_t file;          /* index into files[] */
};

struct lh_batch_file {
    char *path;             /* owned */
    uint64_t uid;           /* the tail's file uid (this process only; 0 when replayed) */
    uint64_t end;           /* the batch covers the file up to this byte */
    uint64_t lines;         /* lines of its records in this batch */
    /* The file's identity in the tail when the batch was sealed (tail.h,
     * lh_tail_file_ident), kept with the batch in the write-ahead disk
     * buffer so that a restart resumes the file after `end` (agent.h).
     * key 0: not known. */
    uint64_t key, dev, ino, fp, size;
    uint32_t fp_len;
    char *real;             /* owned; NULL when not known */
};

struct lh_batch {
    uint64_t seq;           /* order of creation; also the disk buffer's file name */
    struct lh_uuid uuid;
    int codec;              /* enum lh_codec of body */
    struct lh_buf body;     /* the compressed body (empty when nrec == 0) */
    uint64_t raw_len;       /* bytes of the JSON body */
    struct lh_batch_rec *recs;
    uint32_t nrec;
    struct lh_batch_file *files;
    uint32_t nfiles;
    int64_t created_ms;     /* monotonic ms of the first record */
};

/* NULL-safe. */
void lh_batch_free(struct lh_batch *b);

/* Builds into out (reset first) the JSON body holding only the records
 * idx[0..n) (indices into recs, ascending) of the raw body json, with the
 * original shipper_metadata. 0 or LH_ENOMEM / LH_EINVAL (bad index). */
int lh_batch_subset_json(const char *json, size_t json_len, const struct lh_batch_rec *recs,
                         uint32_t nrec, const uint32_t *idx, uint32_t n, struct lh_buf *out);

/* Keeps only the records with keep[i] != 0: rebuilds the body from json
 * (the raw body), recompresses it, compacts recs and recounts files[].lines.
 * The UUID stays. A batch left with no record has an empty body. */
int lh_batch_filter(struct lh_batch *b, const char *json, size_t json_len, const uint8_t *keep,
                    struct lh_codec_ctx *cx, struct lh_err *err);

/* A UUID derived from parent and a label, the same every time (for the
 * parts of a split batch, so a replayed split reuses its Idempotency-Keys):
 * SHA-256 of both, shaped as a version 8 UUID. */
void lh_batch_derive_uuid(const struct lh_uuid *parent, const char *label, struct lh_uuid *out);

struct lh_batcher;

/* meta's strings must outlive the batcher; ledger (for files[]) is not owned. */
int lh_batcher_create(const struct lh_batch_config *cfg, const struct lh_shipper_meta *meta,
                      struct lh_ledger *ledger, struct lh_batcher **out, struct lh_err *err);
void lh_batcher_destroy(struct lh_batcher *b);   /* NULL-safe; drops what is pending */

/* Swaps in new bounds and codec (SIGHUP); the batch being built is sealed
 * by the caller first. cfg must pass lh_batch_config_check. */
void lh_batcher_set_config(struct lh_batcher *b, const struct lh_batch_config *cfg);

/* Appends rec with message msg[0..len) (the record's own, or a masked
 * copy). read_ns: wall-clock time used when the record has no time of its
 * own. now_ms: monotonic, starts the age bound. Returns
 *   0          added
 *   1          added, and the batch is now full: seal it
 *   LH_EFULL   not added: the batch is full; seal it and add again
 *   LH_ENOMEM */
int lh_batcher_add(struct lh_batcher *b, const struct lh_record *rec, const char *msg,
                   size_t len, int64_t read_ns, int64_t now_ms);

/* Covers rec's bytes without shipping it (a sampled or dropped record):
 * the batch then also acknowledges it. 0 or LH_ENOMEM. */
int lh_batcher_skip(struct lh_batcher *b, const struct lh_record *rec, int64_t now_ms);

/* 1 when nothing (no record, no skipped range) is pending. */
int lh_batcher_empty(const struct lh_batcher *b);
/* Records and JSON bytes pending. */
uint32_t lh_batcher_records(const struct lh_batcher *b);
size_t lh_batcher_bytes(const struct lh_batcher *b);

/* Monotonic ms at which the pending batch must be sealed (INT64_MAX when
 * empty). */
int64_t lh_batcher_due(const struct lh_batcher *b);

/* Closes the pending batch: adds shipper_metadata, compresses, gives it a
 * fresh UUID (v7) and seq, and returns it in *out (caller owns it). The
 * batcher is then empty. A batch of only skipped ranges has nrec == 0 and
 * an empty body. When the batcher is empty, *out = NULL and 0. If
 * compression fails the pending batch is kept (LH_E*). */
int lh_batcher_seal(struct lh_batcher *b, uint64_t seq, struct lh_batch **out,
                    struct lh_err *err);

#endif
