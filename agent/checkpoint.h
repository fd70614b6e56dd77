/* checkpoint.h - loghaul-agent's offset store: one JSON file holding, per
 * tailed file, its identity and the offset up to which the collector has
 * acknowledged every byte.
 *
 * A file's identity is (dev, inode) plus a fingerprint: a 64-bit hash of its
 * first fp_len bytes (fp_len up to the configured fingerprint size, 1 KiB by
 * default), so a reused inode number is not mistaken for the old file.
 *
 * The file is rewritten whole and atomically: written to "<path>.tmp",
 * fsync'd, renamed over <path>, and the directory fsync'd. A crash at any
 * point leaves either the old or the new content, never a mix.
 *
 *   {"version":1,"batch_seq":812,"files":[{"key":"5c0f...","dev":2049,"ino":1234,
 *     "fp":"9ae1...","fp_len":1024,"offset":4096,"size":8192,"path":"/var/log/app.log",
 *     "real":"/var/log/app.log.1"}]}
 *
 * `key` is a random 64-bit name the tail gives a file when it first sees it
 * and keeps for it across restarts and rotations (absent in files written
 * before keys existed: 0). `batch_seq` is the highest batch seq whose records
 * the offsets include (agent.h: the write-ahead disk buffer's files with a
 * higher seq are applied on top of the checkpoint after a crash); 0 or
 * absent: not known.
 *
 * `path` is the name the file was found under (a glob match, maybe a
 * symlink); `real` its resolved name when last seen (after a rename-rotation
 * the rotated name), used to find it again after a restart. Paths that are
 * not valid UTF-8 are stored hex-encoded under "path_hex" / "real_hex".
 * Not thread-safe; the tail calls it from the agent's loop thread. */
#ifndef LH_AGENT_CHECKPOINT_H
#define LH_AGENT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/err.h"

struct lh_ckpt_entry {
    uint64_t dev;
    uint64_t ino;
    uint64_t fp;          /* lh_ckpt_hash of the first fp_len bytes */
    uint32_t fp_len;
    uint64_t offset;      /* every byte before it was acknowledged */
    uint64_t size;        /* the file's size when last seen (loss accounting) */
    char *path;           /* owned, never NULL after load */
    char *real;           /* owned, never NULL after load */
    uint64_t key;         /* the tail's persistent name for the file; 0: none */
};

/* Loads file into a new array (*out, *n; free with lh_ckpt_free). A missing
 * file is no error (0 entries). Unparseable content: LH_ECORRUPT. */
int lh_ckpt_load(const char *file, struct lh_ckpt_entry **out, size_t *n, struct lh_err *err);

/* The same, also returning the file's batch_seq (0 when absent or missing). */
int lh_ckpt_load_seq(const char *file, struct lh_ckpt_entry **out, size_t *n,
                     uint64_t *batch_seq, struct lh_err *err);

/* Atomically replaces file with the n entries. Path strings may be NULL
 * (stored as ""). On failure the old file is untouched. */
int lh_ckpt_save(const char *file, const struct lh_ckpt_entry *v, size_t n, struct lh_err *err);

/* The same with a batch_seq (0: not written). */
int lh_ckpt_save_seq(const char *file, const struct lh_ckpt_entry *v, size_t n,
                     uint64_t batch_seq, struct lh_err *err);

void lh_ckpt_free(struct lh_ckpt_entry *v, size_t n);

/* The fingerprint hash (64-bit FNV-1a); not for security, only identity. */
uint64_t lh_ckpt_hash(const void *p, size_t n);

#endif
