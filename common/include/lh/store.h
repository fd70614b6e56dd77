/* store.h - loghaul's embedded log store: the single-machine hot store.
 *
 * An embedded library, not a server. One writer process (the indexer) and any
 * number of reader processes (queryd) share one data directory:
 *
 *   DIR/.lock                         flock'd by the writer (one writer per DIR)
 *   DIR/<tenant>/<YYYY-MM-DD>/        one partition per tenant and UTC day
 *   DIR/<tenant>/<YYYY-MM-DD>/<seq>.seg  append-only segments of blocks
 *
 * A block holds up to a few thousand events of one partition, sorted by
 * (timestamp, id): timestamps delta-encoded, receive times against the
 * timestamp or the previous row, event ids as batch uuid + index,
 * low-cardinality strings dictionary-encoded (the dictionary kept
 * uncompressed beside the block so a query can skip the block without
 * decompressing it), every column compressed with zstd, message/raw/metadata
 * included. Appends compress fast (zstd_level, default 1); the merge
 * rewrites each appended segment once (blocks of merge_block_bytes) at
 * merge_zstd_level (default 9), which is where the data gets small. Each
 * block carries its
 * min/max time, per-level counts, a bloom filter over the lower-cased tokens
 * of message, raw, trace_id, user_id, host and metadata values, and CRC32C
 * checksums of its header, its index part and its data.
 *
 * Durability: lh_store_append returns only after the blocks holding the batch
 * are fdatasync'd. A torn tail (a crash in the middle of an append) is found
 * and dropped when the writer opens the directory: the valid blocks are
 * copied to a sealed segment that replaces the torn one, so a reader still
 * mapping the old file is never cut short. Readers map segments
 * read-only, see only complete blocks whose checksums match, and never take
 * a lock the writer waits for; a new block is visible to a reader's next
 * query (no caching beyond that). A block that fails its checksum is skipped
 * with a logged error and counted (lh_store_result.blocks_corrupt).
 *
 * Event ids are unique per partition: appending an id that is already stored
 * skips it (and counts it). Ids of the form <32 hex>-<decimal> (lh_event_id)
 * are tracked as index ranges per batch UUID; other ids by a 128-bit hash.
 *
 * Threads: meant for one writer thread calling lh_store_append; the writer
 * functions (append, merge, retain) serialize on the handle's locks, so
 * merge and retain may also run on another thread, and the handle runs
 * them itself on a background thread when merge_interval is set; merge
 * rewrites only sealed segments, so appends never wait for it beyond the
 * final rename. Query functions (search, count, histogram, top, inspect)
 * are thread-safe on any handle, reader or writer, and run concurrently
 * with each other and with the writer; each query scans blocks on up to
 * `threads` threads of its own. A handle is closed once no call is running.
 *
 * Files are never truncated under a reader: segments are only appended to,
 * replaced by rename (merge, torn-tail recovery) or unlinked (retention),
 * and a reader keeps its mapping of an unlinked file until its next query. */
#ifndef LH_STORE_H
#define LH_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lh/arena.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/event.h"

/* ---- configuration ---------------------------------------------------- */

struct lh_store_config {
    char *dir;                  /* data directory (created by the writer) */
    int64_t retention_ms;       /* drop partitions whose day ended longer ago; 0 = keep */
    uint64_t retention_bytes;   /* per tenant: drop oldest partitions past this; 0 = no cap */
    uint64_t block_bytes;       /* raw bytes per block before it is cut (default 2 MiB) */
    int64_t block_events;       /* events per block at most (default 16384) */
    uint64_t segment_bytes;     /* a segment is sealed past this size (default 64 MiB) */
    int64_t merge_interval_ms;  /* writer: background merge + retention period; 0 = off */
    uint64_t merge_min_bytes;   /* sealed segments smaller than this are merged (16 MiB) */
    int64_t zstd_level;         /* appends: 1..19 (default 1, fast) */
    int64_t threads;            /* scan threads per query (default 2) */
    int64_t merge_zstd_level;   /* merge: 1..19 (default 9); merged data is read-mostly */
    uint64_t merge_block_bytes; /* merge: raw bytes per block (default 2 MiB: larger blocks compress better but make each matching block slower to read) */
};

/* Option table (lh/conf.h format) for a `store:` section bound to
 * struct lh_store_config. */
extern const struct lh_opt lh_store_opts[];

/* Fills cfg with the defaults above (dir stays as the caller set it;
 * retention and merge_interval 0, i.e. off). */
void lh_store_config_defaults(struct lh_store_config *cfg);

/* ---- open / close ----------------------------------------------------- */

enum lh_store_mode {
    LH_STORE_READ = 0,          /* queries only; never writes to DIR */
    LH_STORE_WRITE = 1,         /* the one writer: recovers DIR, appends, merges */
};

struct lh_store;

/* Opens the store in cfg->dir (copied). A writer takes DIR/.lock (LH_EUNAVAIL
 * if another writer holds it), removes leftovers of an interrupted merge or
 * retention run, drops torn tails and seals the segments that were being
 * appended to. A reader of a directory that does not exist yet sees no data.
 * Sizes, counts and levels of 0 in cfg mean the defaults; retention and
 * merge_interval of 0 mean off (lh_store_opts defaults them to 7d and 30s). */
int lh_store_open(struct lh_store **out, const struct lh_store_config *cfg,
                  enum lh_store_mode mode, struct lh_err *err);

/* Stops the background thread, seals the open segments (writer) and frees
 * the handle. NULL is a no-op. No query may be running on it. */
void lh_store_close(struct lh_store *s);

/* ---- append (writer thread) ------------------------------------------- */

struct lh_store_append_stats {
    uint64_t stored;            /* events written */
    uint64_t duplicates;        /* events skipped: id already stored */
    uint64_t rejected;          /* events skipped: no id, id longer than LH_STORE_ID_MAX or
                                   tenant longer than LH_STORE_TENANT_MAX */
};

#define LH_STORE_ID_MAX 200
#define LH_STORE_TENANT_MAX 128   /* bytes of a tenant name */

/* Appends n events, grouped by tenant (NULL or "" means "default") and UTC
 * day of ts_ns. Returns 0 once everything written is durable (fdatasync'd),
 * with stats filled in (st may be NULL). On error (LH_EIO, LH_ENOMEM) some
 * partitions may have been written: retrying the batch is safe, as
 * duplicates are skipped. The events are only read. */
int lh_store_append(struct lh_store *s, const struct lh_event *evs, size_t n,
                    struct lh_store_append_stats *st, struct lh_err *err);

/* ---- queries ---------------------------------------------------------- */

/* Field predicates. Fields: id, service, level, host, trace_id, span_id,
 * user_id, message, stream, container_id, k8s.namespace, k8s.pod,
 * k8s.container, region, file, raw, timestamp, received, metadata.<key>.
 *  EQ/NE/IN/PREFIX/CONTAINS compare bytes exactly (case-sensitive), except
 *    level, whose values are level names in any case ("error", "WARN").
 *    NE also matches events without the field.
 *  EXISTS / NOT_EXISTS: the field is present (non-NULL) / absent.
 *  LT/LE/GT/GE: timestamp and received compare as integers (ns since the
 *    epoch); level by severity (TRACE < ... < FATAL); other fields compare
 *    numerically when the value is a number (an event whose field is not a
 *    number does not match) and bytewise otherwise. */
enum lh_store_op {
    LH_STORE_EQ = 0,
    LH_STORE_NE,
    LH_STORE_IN,
    LH_STORE_PREFIX,
    LH_STORE_CONTAINS,
    LH_STORE_EXISTS,
    LH_STORE_NOT_EXISTS,
    LH_STORE_LT,
    LH_STORE_LE,
    LH_STORE_GT,
    LH_STORE_GE,
};

struct lh_store_pred {
    const char *field;
    enum lh_store_op op;
    const char *value;                  /* all ops but IN, EXISTS, NOT_EXISTS */
    const char *const *values;          /* IN */
    size_t nvalues;
};

/* A position in the newest-first order (timestamp desc, then id desc,
 * bytewise): the last event a page returned. */
struct lh_store_pos {
    int64_t ts_ns;
    char id[LH_STORE_ID_MAX + 1];
};

/* Serialised position for a cursor: LH_STORE_POS_BYTES at most. */
#define LH_STORE_POS_BYTES (16 + LH_STORE_ID_MAX)
/* Writes pos to out (at least LH_STORE_POS_BYTES bytes); returns the length. */
size_t lh_store_pos_encode(const struct lh_store_pos *pos, uint8_t *out);
/* Parses bytes written by lh_store_pos_encode; LH_EINVAL if malformed. */
int lh_store_pos_decode(const uint8_t *in, size_t len, struct lh_store_pos *pos,
                        struct lh_err *err);

/* Full text: every term and every phrase must occur in one of message,
 * raw, trace_id, user_id, host or a metadata value. Matching is on tokens
 * (maximal runs of ASCII letters, digits and bytes >= 0x80), ASCII
 * case-insensitive: the term "Timeout" matches "timeout," but not
 * "timeouts". A term that splits into several tokens ("tr_abc123") is a
 * phrase: its tokens must follow each other in one field, separated only
 * by non-token bytes. */
struct lh_store_query {
    const char *tenant;                 /* required; a query never crosses tenants */
    int64_t start_ns;                   /* ts >= start_ns */
    int64_t end_ns;                     /* ts < end_ns; 0 = no upper bound */
    const char *const *terms;
    size_t nterms;
    const char *const *phrases;
    size_t nphrases;
    const struct lh_store_pred *preds;  /* all must hold */
    size_t npreds;
    size_t limit;                       /* search: events per page (0 = 100) */
    const struct lh_store_pos *after;   /* search: resume after this position */
    int want_total;                     /* search: also count every match (total) */
    uint64_t total_cap;                 /* search with want_total: stop counting once
                                           about this many matched (0: count all); a
                                           total >= total_cap is then a lower bound */
    int64_t deadline_ns;                /* lh_time_mono_ns() after which the query gives
                                           up with LH_ETIMEDOUT (checked per block);
                                           0: no limit. All query functions. */
};

struct lh_store_result {
    struct lh_event *events;            /* newest first */
    size_t n;
    struct lh_store_pos next;           /* position of events[n-1] (when n > 0) */
    int more;                           /* 1 if more matches follow next */
    uint64_t total;                     /* exact match count when want_total */
    uint64_t blocks_total;              /* blocks of the tenant in the time range */
    uint64_t blocks_scanned;            /* of which decompressed */
    uint64_t blocks_corrupt;            /* skipped: checksum or format error */
    struct lh_arena arena;              /* owns events[] and their strings */
};

/* Newest-first page of at most limit matching events, starting after
 * q->after. Walking pages with next as the following page's `after` never
 * skips or repeats an event, also while new events arrive. The result is
 * owned by the caller (lh_store_result_free). */
int lh_store_search(struct lh_store *s, const struct lh_store_query *q,
                    struct lh_store_result **out, struct lh_err *err);
void lh_store_result_free(struct lh_store_result *r);

/* Exact number of matching events (limit and after are ignored). */
int lh_store_count(struct lh_store *s, const struct lh_store_query *q, uint64_t *out,
                   struct lh_err *err);

/* Counts per time bucket: buckets of bucket_ns aligned to the epoch,
 * covering [q->start_ns, q->end_ns) (both must be set; at most 100000
 * buckets). counts[i] is the bucket starting at first_ns + i * bucket_ns. */
struct lh_store_histogram {
    int64_t first_ns;
    int64_t bucket_ns;
    uint64_t *counts;
    size_t n;
    uint64_t blocks_corrupt;
};
int lh_store_histogram(struct lh_store *s, const struct lh_store_query *q, int64_t bucket_ns,
                       struct lh_store_histogram **out, struct lh_err *err);
void lh_store_histogram_free(struct lh_store_histogram *h);

/* The n most frequent values of a field among matching events (count desc,
 * then value asc); n = 0 means all. `missing` counts events without it. */
struct lh_store_top_entry {
    const char *value;
    uint64_t count;
};
struct lh_store_top {
    struct lh_store_top_entry *entries;
    size_t n;
    uint64_t distinct;                  /* distinct values seen */
    uint64_t missing;
    uint64_t blocks_corrupt;
    struct lh_arena arena;              /* owns entries and values */
};
int lh_store_top(struct lh_store *s, const struct lh_store_query *q, const char *field,
                 size_t n, struct lh_store_top **out, struct lh_err *err);
void lh_store_top_free(struct lh_store_top *t);

/* ---- maintenance (writer) --------------------------------------------- */

struct lh_store_maint_stats {
    uint64_t partitions_dropped;
    uint64_t bytes_dropped;
    uint64_t segments_merged;           /* input segments replaced */
    uint64_t segments_written;          /* merged segments written */
};

/* Drops whole partitions: those whose day ended more than retention_ms
 * before now_ns, then each tenant's oldest while its size exceeds
 * retention_bytes (its newest partition is always kept). Readers still
 * scanning a dropped partition finish on the data they mapped. */
int lh_store_retain(struct lh_store *s, int64_t now_ns, struct lh_store_maint_stats *st,
                    struct lh_err *err);

/* One merge pass: in every partition, sealed segments that appends wrote
 * (fast, zstd_level, blocks of block_bytes) and merged segments below
 * merge_min_bytes (or holding small blocks) are rewritten into larger
 * segments with blocks of merge_block_bytes at merge_zstd_level, so each
 * appended byte is recompressed once. Readers and the writer go on
 * meanwhile; the switch is atomic for readers (a merged segment names the
 * ones it replaces). */
int lh_store_merge(struct lh_store *s, struct lh_store_maint_stats *st, struct lh_err *err);

/* ---- inspect / verify ------------------------------------------------- */

struct lh_store_part_info {
    char tenant[256];
    char day[11];                       /* YYYY-MM-DD */
    uint64_t segments;
    uint64_t blocks;
    uint64_t events;
    uint64_t disk_bytes;                /* segment file bytes */
    uint64_t raw_bytes;                 /* event field bytes before encoding */
    int64_t min_ts, max_ts;
    uint64_t corrupt_blocks;            /* verify: blocks failing a check */
};

struct lh_store_report {
    struct lh_store_part_info *parts;
    size_t n;
    uint64_t blocks, events, disk_bytes, raw_bytes, corrupt_blocks;
    char **problems;                    /* one line per problem found */
    size_t nproblems;
    int verified;                       /* 1 if every block was checksummed and decoded */
};

/* Per-partition sizes, block counts and compression ratio. With verify,
 * every block's checksums are checked and its columns decoded; problems
 * lists each failure ("tenant/day/seq.seg@offset: body checksum mismatch"). */
int lh_store_inspect(struct lh_store *s, int verify, struct lh_store_report **out,
                     struct lh_err *err);
void lh_store_report_print(const struct lh_store_report *r, FILE *f);
void lh_store_report_free(struct lh_store_report *r);

#endif
