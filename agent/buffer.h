/* buffer.h - loghaul-agent's disk buffer: sealed batches that could not be
 * delivered (collectors unreachable) wait here, bounded in bytes, and are
 * replayed in seq order when a collector is back.
 *
 * Layout: one file per batch, <dir>/<seq, 20 digits>.batch, holding the
 * compressed body, its UUID (the Idempotency-Key, so a replay is
 * recognised by the collector), the record index (for split-on-400) and
 * per file its path and line count (to count acknowledged lines when it is
 * finally delivered). Host byte order; CRC-32C over the whole file:
 *
 *   "LHBUF001" seq:u64 uuid:16 codec:u32 nrec:u32 nfiles:u32 raw_len:u64
 *   body_len:u64 created_ms:i64
 *   nfiles x { path_len:u32 path lines:u64 }
 *   nrec   x { off:u32 len:u32 nlines:u32 file:u32 }
 *   body   crc32c:u32
 *
 * Durability: a batch is written to "<name>.tmp", fsync'd, renamed to its
 * name and the directory fsync'd before lh_dbuf_put returns 0. From then on
 * the batch survives a crash, so the agent may advance its checkpoint past
 * the records it holds (ship.h). Leftover .tmp files (a crash mid-write)
 * are removed at open. A file that fails its checks when loaded is renamed
 * "<name>.corrupt", logged and counted, and skipped.
 *
 * Threads: the buffer belongs to the shipper thread, except lh_dbuf_bytes,
 * lh_dbuf_count and lh_dbuf_fill, which any thread may call (atomics). */
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
};

/* The `buffer:` section: dir, max_bytes, sample_at, sample_keep, low_levels_max. */
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

/* The i-th stored seq in ascending order (i < lh_dbuf_count). */
uint64_t lh_dbuf_seq_at(const struct lh_dbuf *d, size_t i);

/* Reads batch seq back (files[].uid and .end are 0). LH_ENOTFOUND, LH_EIO,
 * or LH_ECORRUPT: the file failed its checks, was moved aside and dropped
 * from the index. */
int lh_dbuf_load(struct lh_dbuf *d, uint64_t seq, struct lh_batch **out, struct lh_err *err);

/* Deletes batch seq (delivered). 0, LH_ENOTFOUND or LH_EIO. */
int lh_dbuf_remove(struct lh_dbuf *d, uint64_t seq, struct lh_err *err);

/* Any thread. */
uint64_t lh_dbuf_bytes(const struct lh_dbuf *d);
uint64_t lh_dbuf_count(const struct lh_dbuf *d);
uint64_t lh_dbuf_max(const struct lh_dbuf *d);
uint64_t lh_dbuf_corrupt(const struct lh_dbuf *d);   /* files moved aside */

#endif
