/* tail.h - loghaul-agent's file tailing: discovery by glob (inotify with a
 * polling fallback), per-file reading, rotation, loss accounting and
 * acknowledged checkpoints. Lines go through format.h and come out as
 * records through a callback.
 *
 * Driving it. lh_tail_poll_once(t, now_ms) does one bounded step: it drains
 * inotify events, rescans the globs when due (scan_interval, or at once
 * after a directory event), reads every open file up to read_budget bytes,
 * handles rotation, and emits multiline records whose flush time passed.
 * The daemon calls it when lh_tail_fd() is readable and on a timer of
 * lh_tail_next_wakeup() ms; tests call it directly with a fake clock. All
 * calls, including lh_tail_ack, come from one thread (the agent's loop).
 *
 * Identity. A file is (dev, inode) plus a fingerprint: a hash of its first
 * fingerprint_bytes bytes (fewer while the file is shorter; lengthened as it
 * grows). A reused inode with other content is a new file. A new file whose
 * name extends a tailed file's name in the same directory (app.log.1,
 * app.log-20240102) and whose full fingerprint equals that file's is taken
 * for its copy (copytruncate's) and not tailed on its own. Two files found
 * under two names (a symlink and its target, hard links) are read once.
 *
 * Rotation, per kind (each line is emitted exactly once):
 *   rename + create     the path now names another inode: the old file stays
 *                       open and is read to its end; it is closed once it has
 *                       been idle at EOF for rotate_wait. The new file is read
 *                       from offset 0. If the rotated name also matches a glob,
 *                       the old file simply goes on under that name.
 *   delete while open   the same (the open descriptor is drained).
 *   same name reappears a new inode, or the same inode number with another
 *                       fingerprint: a new file, from 0.
 *   symlink flip        the path (a symlink) resolves to another file: as rename.
 *   copytruncate        the file shrank, or its fingerprint changed. The copy
 *                       is looked for in the directory (names starting with the
 *                       file's name, same fingerprint, at least as long as what
 *                       was read) and read on from where reading stopped, with
 *                       the decoder state carried over; the truncated file is
 *                       then read as a new file from 0.
 * Loss windows. Bytes the tail saw exist (by fstat) but could not read are a
 * loss window [start, end) of the file, logged with the path and offsets and
 * counted in the ledger (lh_ledger_loss): the part of a truncated file past
 * its copy's end (or past the read offset, when no copy was found), and,
 * after a restart, the unacknowledged rest of a file that disappeared.
 * Bytes written and truncated between two polls are invisible to any reader
 * and cannot be counted.
 *
 * Checkpoints. A record carries (file_uid, end). After the collector has
 * acknowledged a batch, call lh_tail_ack for its records (or once per file
 * with the last record's end and the batch's line count), then
 * lh_tail_checkpoint_save: the offset store (checkpoint.h) then holds, per
 * file, the end of the last acknowledged record, and a new tail created on
 * the same checkpoint resumes exactly there - on the same file if it still
 * matches, or on its rotated name or copy if it was rotated meanwhile.
 * Each file also gets a random key, kept in the checkpoint across restarts
 * and rotations, so entries written elsewhere (the agent's write-ahead
 * buffer, lh_tail_file_ident) can be matched with the checkpoint's.
 *
 * Long lines. A line longer than max_line_bytes is, with long_lines=split,
 * emitted as pieces of max_line_bytes (cut before a UTF-8 sequence where
 * possible) marked LH_REC_SPLIT with part = 1, 2, ... and the last one
 * LH_REC_SPLIT_LAST (piece numbers restart at 1 after an agent restart in the
 * middle of such a line; offsets stay exact); with long_lines=truncate, its first max_line_bytes are
 * emitted marked LH_REC_TRUNCATED once its end is read, and the rest is
 * counted as dropped bytes (reason "truncated"). Per-file memory stays below
 * 2 x max_line_bytes plus one shared 64 KiB read buffer.
 *
 * Bad input: a glob match that is not a regular file, a file we may not
 * read, a read error: logged once per path and reason, counted in the
 * ledger's errors, retried at the next scans. Files are opened read-only,
 * O_NONBLOCK, never locked.
 *
 * Limits: a line without its final newline waits (a live writer may be in
 * the middle of it) until the file is rotated or truncated, when it is
 * emitted marked LH_REC_NO_NEWLINE. A rotated file is closed after
 * rotate_wait of idleness at EOF; what is written to it later is not read
 * unless a glob matches its new name. There is no cap on open descriptors
 * yet (one per tailed file plus rotated files being drained). */
#ifndef LH_AGENT_TAIL_H
#define LH_AGENT_TAIL_H

#include <stdint.h>

#include "checkpoint.h"
#include "format.h"
#include "ledger.h"
#include "lh/conf.h"
#include "lh/err.h"

enum { LH_TAIL_SPLIT = 0, LH_TAIL_TRUNCATE = 1 };         /* long_lines */
enum { LH_TAIL_BEGINNING = 0, LH_TAIL_END = 1 };          /* read_from */

struct lh_tail_config {
    struct lh_strlist include;   /* glob patterns (glob(3)); required */
    struct lh_strlist exclude;   /* fnmatch patterns: on the full path if they hold a '/',
                                    else on the file name */
    int format;                  /* enum lh_fmt_kind */
    int multiline;               /* enum lh_ml_mode */
    char *multiline_start;       /* PCRE2 start pattern for multiline=start */
    int64_t multiline_flush_ms;  /* 0: 1000 */
    int64_t multiline_max_lines; /* 0: 1000 */
    uint64_t max_line_bytes;     /* 0: 256 KiB; also the cap of joined records */
    int long_lines;              /* LH_TAIL_SPLIT or LH_TAIL_TRUNCATE */
    int read_from;               /* files found at the very first start (no checkpoint file) */
    uint64_t fingerprint_bytes;  /* 0: 1024 */
    uint64_t read_budget;        /* bytes per file per poll; 0: 1 MiB */
    int64_t scan_interval_ms;    /* 0: 1000 */
    int64_t rotate_wait_ms;      /* < 0: 5000; 0 closes a rotated file at its first EOF */
    int inotify;                 /* 0: polling only */
    char *checkpoint;            /* offset store path; NULL: none (tests) */
};

/* The `tail:` section's option table, for lh_conf binding into the struct
 * above (defaults as documented there). */
extern const struct lh_opt lh_tail_opts[];

struct lh_tail;

/* Called for each record, in file order per file. The record's strings are
 * valid only during the call. The callback may call lh_tail_ack but must not
 * destroy the tail. */
typedef void (*lh_tail_emit_fn)(void *arg, const struct lh_record *rec);

/* Creates a tail: compiles the format, loads the checkpoint (a corrupt one
 * is moved aside to "<checkpoint>.corrupt" and logged, and reading starts
 * over per read_from), opens inotify. Reads nothing yet. ledger is not owned
 * and must outlive the tail. */
int lh_tail_create(const struct lh_tail_config *cfg, struct lh_ledger *ledger,
                   lh_tail_emit_fn emit, void *arg, struct lh_tail **out, struct lh_err *err);

/* Stops tailing. Pending joins and partial lines are not emitted (they are
 * re-read after a restart, from the last acknowledged offset). NULL-safe. */
void lh_tail_destroy(struct lh_tail *t);

/* The inotify descriptor to watch for readability, or -1 in polling mode. */
int lh_tail_fd(const struct lh_tail *t);

/* One bounded step (see above). now_ms: a monotonic clock in ms. Returns the
 * number of records emitted, or a negative code on a fatal error (none
 * today: per-file problems are logged and counted, and the tail goes on). */
int lh_tail_poll_once(struct lh_tail *t, int64_t now_ms, struct lh_err *err);

/* Milliseconds until lh_tail_poll_once has work (0: call again now, a read
 * budget was used up). */
int64_t lh_tail_next_wakeup(const struct lh_tail *t, int64_t now_ms);

/* Emits every pending join now (before a clean shutdown). */
void lh_tail_flush(struct lh_tail *t, int64_t now_ms);

/* The collector acknowledged records of file_uid up to byte `end`, nlines
 * physical lines (for the ledger). Acks of one file must come in emission
 * order. 0, or LH_ENOTFOUND for an unknown uid. */
int lh_tail_ack(struct lh_tail *t, uint64_t file_uid, uint64_t end, uint32_t nlines);

/* Writes the checkpoint if anything changed since the last save. */
int lh_tail_checkpoint_save(struct lh_tail *t, struct lh_err *err);

/* The batch seq the next checkpoint saves say they include (checkpoint.h's
 * batch_seq; the agent passes the last batch it acknowledged). The value
 * loaded from the checkpoint is kept until then. */
void lh_tail_set_batch_seq(struct lh_tail *t, uint64_t seq);

/* What a checkpoint saved now would hold for file_uid (key, dev, ino,
 * fingerprint, size seen, path, real; offset = acknowledged so far), for
 * the agent to store with a batch in the write-ahead disk buffer. Strings
 * are the tail's, valid until the next call into the tail. 0, or
 * LH_ENOTFOUND for an unknown uid or a file whose content is gone. */
int lh_tail_file_ident(struct lh_tail *t, uint64_t file_uid, struct lh_ckpt_entry *out);

struct lh_tail_stats {
    uint64_t files_open;         /* descriptors held (active and rotated) */
    uint64_t files_tracked;      /* entries, including closed ones awaiting acks */
    uint64_t buffer_bytes;       /* line buffers allocated now */
    uint64_t buffer_peak;        /* the largest single line buffer ever */
    uint64_t records;            /* records emitted */
    uint64_t scans;
};
void lh_tail_get_stats(const struct lh_tail *t, struct lh_tail_stats *out);

#endif
