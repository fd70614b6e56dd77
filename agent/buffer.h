/* buffer.h - loghaul-agent's disk buffer. With write_ahead (the default)
 * every sealed batch is written here, durably, before it is sent: a batch
 * sent and then lost to a crash is sent again from here with the same UUID
 * (invisible downstream) instead of being read again into a new batch. The
 * file is removed once the collector acknowledged the batch and a
 * checkpoint including it was saved (agent.h). Without write_ahead only
 * batches no collector can take (collectors unreachable) are written.
 * Either way the buffer is bounded in bytes and replayed in seq order.
 *
 * Layout: one file per batch, <dir>/<seq, 20 digits>.batch, holding the
 * compressed body, its UUID (the Idempotency-Key, so a replay is
 * recognised by the collector), the record index (for split-on-400) and
 * per file its path and line count (to count acknowledged lines when it is
 * finally delivered) and where the batch leaves the file: the tail's
 * identity of the file (key, dev, ino, fingerprint, resolved path) and the
 * end offset, so that after a crash the tail resumes after it. Host byte
 * order; CRC-32C over the whole file:
 *
 *   "LHBUF002" seq:u64 uuid:16 codec:u32 nrec:u32 nfiles:u32 raw_len:u64
 *   body_len:u64 created_ms:i64 flags:u32 (1: written ahead)
 *   nfiles x { path_len:u32 path real_len:u32 real lines:u64 key:u64 dev:u64
 *              ino:u64 fp:u64 fp_len:u32 end:u64 size:u64 }
 *   nrec   x { off:u32 len:u32 nlines:u32 file:u32 }
 *   body   crc32c:u32
 * ("LHBUF001" files, without flags and per-file identity, are still read.)
 * A batch without records (all of its lines sampled or dropped) is stored
 * as such a file without body, whatever the bound: its ranges count.
 *
 * Delivered write-ahead batches wait as "<seq>.batch.sent" until a saved
 * checkpoint includes them.
 *
 * Durability: a batch is written to "<name>.tmp", fsync'd, renamed to its
 * name and the directory fsync'd before lh_dbuf_put returns 0 (several at
 * once share the directory fsync: lh_dbuf_put_many). From then on the
 * batch survives a crash, so the agent may advance its checkpoint past the
 * records it holds (ship.h). Leftover .tmp files (a crash mid-write) are
 * removed at open. A file that fails its checks when loaded is renamed
 * "<name>.corrupt", logged and counted, and skipped.
 *
 * Threads: the buffer belongs to the shipper thread (and, before it starts,
 * to the agent's recovery), except lh_dbuf_bytes, lh_dbuf_count,
 * lh_dbuf_waiting, lh_dbuf_max and lh_dbuf_corrupt, which any thread may
 * call (atomics). */
#ifndef LH_AGENT_BUFFER_H
#define LH_AGENT_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "lh/conf.h"
#include "lh/err.h"

/* Zero fields take the default in brackets. */
struct lh_dbuf_config {
    char *dir;              /* [./var/agent/buffer] */
    uint64_t max_bytes;     /* bytes of batch files at most [256 MiB] */
    /* Sampling while the buffer fills (applied by the agent to new lines,
     * while the buffer holds batches): */
    double sample_at;       /* fill ratio from which INFO/DEBUG/TRACE lines are sampled [0.5] */
    int64_t sample_keep;    /* ... keeping one line in sample_keep [10] */
    double low_levels_max;  /* fill ratio from which every INFO/DEBUG/TRACE line is
                               dropped, the rest kept for WARN and above [0.8] */
    int write_ahead;        /* every batch is written before it is sent (the YAML
                               default is true; 0 here is off) */
};

/* The `buffer:` section: dir, max_bytes, sample_at, sample_keep, low_levels_max,
 * write_ahead. */
extern const struct lh_opt lh_dbuf_opts[];

/* Ranges: 0 < sample_at <= low_levels_max <= 1, sample_keep >= 1. */
int lh_dbuf_config_check(const struct lh_dbuf_config *cfg, struct lh_err *err);

struct lh_dbuf;

/* Creates dir if needed, removes .tmp leftovers, and indexes the batch
 * files already there (a restart replays them). */
int lh_dbuf_open(const struct lh_dbuf_config *cfg, struct lh_dbuf **out, struct lh_err *err);
void lh_dbuf_close(struct lh_dbuf *d);   /* NULL-safe; files stay */

/* Takes the bound and sampling settings of cfg (SIGHUP; dir is not
 * changed). Batches already stored stay. Any thread. */
void lh_dbuf_set_limits(struct lh_dbuf *d, const struct lh_dbuf_config *cfg);

/* The sampling settings, defaults resolved. Any thread. */
void lh_dbuf_sampling(const struct lh_dbuf *d, double *sample_at, double *low_levels_max,
                      uint64_t *keep);

/* One more than the highest seq stored (1 when empty). */
uint64_t lh_dbuf_next_seq(const struct lh_dbuf *d);

/* Stores b durably (see above). LH_EFULL when it does not fit in
 * max_bytes, LH_EIO on a write error (nothing stored either way). */
int lh_dbuf_put(struct lh_dbuf *d, const struct lh_batch *b, struct lh_err *err);

/* Stores v[0..n) durably, in order, with one directory fsync for all
 * (group commit). Returns how many were stored: a prefix of v; when fewer
 * than n, err says why the next one was not (LH_EFULL, LH_EIO, LH_ENOMEM). */
size_t lh_dbuf_put_many(struct lh_dbuf *d, struct lh_batch *const *v, size_t n,
                        struct lh_err *err);

/* lh_dbuf_put_many in two halves, so that the files can be written on
 * another thread than the one that owns the buffer: lh_dbuf_write writes
 * the files durably (sizes[i]: each file's bytes, reserved against the
 * bound) and returns how many (a prefix; err says why not more) without
 * touching the index; one call at a time, from any thread, while the owner
 * goes on with everything else. The owner then indexes each with
 * lh_dbuf_add (LH_ENOMEM: the file was deleted). */
size_t lh_dbuf_write(struct lh_dbuf *d, struct lh_batch *const *v, size_t n, uint64_t *sizes,
                     struct lh_err *err);
int lh_dbuf_add(struct lh_dbuf *d, uint64_t seq, uint64_t bytes);
/* Deletes a file lh_dbuf_write wrote instead of indexing it. */
void lh_dbuf_discard(struct lh_dbuf *d, uint64_t seq, uint64_t bytes);

/* 1 when the buffer was opened with write_ahead. */
int lh_dbuf_write_ahead(const struct lh_dbuf *d);

/* The i-th stored seq in ascending order (i < lh_dbuf_count). */
uint64_t lh_dbuf_seq_at(const struct lh_dbuf *d, size_t i);

/* Reads batch seq back (files[].uid is 0; the identity fields and .end are
 * those stored, 0 in LHBUF001 files). LH_ENOTFOUND, LH_EIO, or
 * LH_ECORRUPT: the file failed its checks, was moved aside and dropped from
 * the index. */
int lh_dbuf_load(struct lh_dbuf *d, uint64_t seq, struct lh_batch **out, struct lh_err *err);
/* The same; *written_ahead (may be NULL) says whether it was written ahead. */
int lh_dbuf_load_flags(struct lh_dbuf *d, uint64_t seq, struct lh_batch **out,
                       int *written_ahead, struct lh_err *err);

/* Deletes batch seq (delivered). 0, LH_ENOTFOUND or LH_EIO. */
int lh_dbuf_remove(struct lh_dbuf *d, uint64_t seq, struct lh_err *err);

/* Write-ahead: batch seq was delivered; its file stays, renamed
 * "<seq>.batch.sent" (not sent again after a restart, its ranges still
 * count), until lh_dbuf_remove_delivered covers it. 0, LH_ENOTFOUND, or
 * LH_EIO (the rename failed: it stays undelivered). */
int lh_dbuf_mark_delivered(struct lh_dbuf *d, uint64_t seq);
/* 1 when the i-th stored batch was delivered. */
int lh_dbuf_delivered_at(const struct lh_dbuf *d, size_t i);
/* Deletes the delivered batches with seq <= upto (a saved checkpoint
 * includes them); returns how many. */
size_t lh_dbuf_remove_delivered(struct lh_dbuf *d, uint64_t upto);

/* Any thread. */
uint64_t lh_dbuf_bytes(const struct lh_dbuf *d);
uint64_t lh_dbuf_count(const struct lh_dbuf *d);
uint64_t lh_dbuf_waiting(const struct lh_dbuf *d);   /* count - delivered */
uint64_t lh_dbuf_max(const struct lh_dbuf *d);
uint64_t lh_dbuf_corrupt(const struct lh_dbuf *d);   /* files moved aside */

#endif
