/* bus_spool.c - the spool bus: a durable on-disk queue in a directory (see lh/bus.h).
 *
 * Layout of <dir>/<topic>/:
 *   00000000000000000000.seg  append-only segment files named by the offset of
 *                             their first record (20 digits); the last one is active
 *   head                      one shared page: the durable end (see struct spool_head)
 *   .writer.lock              flock'd by the one writer process; holds its pid
 *   groups/<group>.off        a consumer group's committed position, replaced
 *                             atomically (temp file, fsync, rename, fsync dir)
 *   groups/<group>.lock       flock'd by the group's one consumer
 *
 * A record (little-endian):
 *    0 u32 len        bytes of the whole record, this header included
 *    4 u32 crc        CRC32C of bytes [16, len) followed by bytes [8, 16)
 *    8 u64 offset     dense per topic: 0, 1, 2...
 *   16 i64 ts_ms      when it was produced (ms since the epoch)
 *   24 u32 key_len
 *   28 u32 value_len
 *   32 u32 hdrs_len   bytes of the header block
 *   36 u16 nheaders
 *   38 u8  version    1
 *   39 u8  flags      0
 *   40    key, then the header block (per header: u16 klen, u32 vlen, key, NUL,
 *         value, NUL), then the value
 * The CRC covers the offset last so that it can be computed outside the
 * writer's lock and finished with the 8 offset bytes under it.
 *
 * Writing: producers (any thread) append their whole batch under the topic
 * mutex with one pwrite, then wait for a group commit. The first waiter
 * becomes the leader: it waits up to group_commit_ms for producers that are
 * still encoding, then fdatasyncs once for everything appended so far, and
 * wakes every producer it covered. produce returns only after that. The
 * durable end is published in the shared `head` page; readers never go past
 * it, so they see only complete, fsync'd, CRC-valid records even while a
 * batch is being written, and offsets below it are never reused.
 *
 * Readers may live in other processes (collector writes, indexer reads):
 * they pread segments, follow rolls by file name, and poll the head page
 * when no writer runs in their own bus. When no writer process is alive
 * (the .writer.lock is free) a reader that is stuck at a stale durable end
 * takes that lock for a moment, fsyncs and validates the tail itself, so a
 * crashed collector never strands data that an indexer could drain.
 *
 * Recovery (a writer opening a topic): every record of the last segment is
 * checked; a torn or corrupt tail is truncated (with a warning naming the
 * byte count) and the tail is fsync'd before anything is exposed. A record
 * that fails its CRC with valid records after it is corruption in the
 * middle: it is kept on disk, and readers skip it with an error log.
 *
 * Retention (by the writer): a segment other than the active one is deleted
 * when every consumer group known in groups/ has committed past it AND it is
 * older than retention_ms or the topic is larger than retention_bytes. With
 * no group at all nothing counts as consumed. Delete groups/<g>.off by hand to
 * forget a group that will never come back (it holds data otherwise).
 *
 * Backpressure: produce fails with LH_EFULL when the bytes not yet committed
 * by the slowest group (all bytes when there is no group) would pass
 * max_bytes, and when the disk is full (the partial write is truncated). */
#include "lh/bus.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "bus_impl.h"
#include "lh/log.h"

#define REC_HDR 40
#define REC_VERSION 1
#define REC_MAX (64u << 20)          /* largest record, header included */
#define VIEW_CHUNK (1u << 20)        /* bytes read at once when scanning */
#define BATCH_BYTES (4u << 20)       /* a poll returns about this much at most */
#define HEAD_MAGIC 0x44414548534c484cull /* "LHLSHEAD" */
#define HEAD_SIZE 4096
#define GROUPS_REFRESH_MS 500        /* re-read groups/ at least this often */
#define RETENTION_EVERY_MS 1000
#define LOCK_WAIT_MS 500             /* a writer waits this long for .writer.lock */
#define PROBE_EVERY_MS 200           /* readers check for a dead writer this often */

enum { REC_BAD = -1, REC_SHORT = 0, REC_OK = 1, REC_IOERR = 2 };

/* The shared page `head`. The writer maps it read-write, readers read-only;
 * fields are read and written with atomics. */
struct spool_head {
    uint64_t magic;
    uint64_t version;
    uint64_t durable;      /* records with offsets below this are complete and fsync'd */
    uint64_t writer_pid;   /* 0 after a clean close */
    uint64_t generation;   /* bumped by every writer open */
};

struct seg {
    uint64_t base;
    uint64_t size;
    int64_t mtime_ms;
};

struct rec {
    uint32_t len;
    uint64_t offset;
    int64_t ts_ms;
    uint32_t key_len, value_len, hdrs_len;
    uint16_t nheaders;
};

/* A window of a file read with pread, for scanning records. */
struct view {
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t start;
    size_t len;
};

/* The slowest consumer group, as last read from groups/. */
struct group_min {
    int n;                 /* groups found */
    uint64_t offset;       /* smallest committed offset */
    uint64_t max_offset;   /* largest committed offset */
    uint64_t seg, pos;     /* where that group's next record starts */
    int has_pos;
};

/* A producer waiting for its records to be fsync'd. */
struct waiter {
    uint64_t end;          /* offset after its last record */
    int done, rc;
    char msg[256];
    struct waiter *next;
};

struct spool;

/* The writer side of one topic in this process. */
struct spool_topic {
    struct spool *sp;
    struct spool_topic *next;
    char *name;
    char path[PATH_MAX];
    int dirfd, groupsfd, lockfd, headfd, segfd;
    struct spool_head *head;

    pthread_mutex_t mu;
    pthread_cond_t cv;           /* syncs ended, appends happened */
    struct seg *segs;            /* sorted by base; the last one is active */
    size_t nsegs, segcap;
    uint64_t next_offset, write_pos;     /* end of what is written */
    uint64_t durable_offset, durable_pos; /* end of what is fsync'd (active segment) */
    uint64_t total_bytes;
    struct waiter *waiters;
    int syncing;
    unsigned inflight;           /* producers encoding (atomic) */
    int broken;
    char broken_msg[300];
    uint64_t full_unconsumed;    /* unconsumed bytes at the last EFULL; 0: not full */

    struct group_min groups;
    int64_t groups_read_ms;
    int groups_dirty;            /* atomic: a consumer here committed */
    int64_t retention_ms_last;

    uint64_t syncs, produced_msgs, produced_bytes;
    struct lh_gauge *g_disk, *g_unconsumed, *g_segments;   /* NULL without metrics */
    struct lh_counter *c_syncs;
    struct lh_histogram *h_sync;
};

struct spool {
    struct lh_bus *bus;
    struct lh_bus_spool_config cfg;  /* cfg.dir is our copy */
    pthread_mutex_t mu;              /* topics */
    struct spool_topic *topics;
    pthread_mutex_t wait_mu;         /* readers in this bus wait for data here */
    pthread_cond_t wait_cv;
    uint64_t data_seq;
    uint64_t produce_errors;         /* atomic */
};

struct spool_consumer {
    struct lh_bus_consumer base;
    struct spool *sp;
    char *topic, *group;
    char path[PATH_MAX];
    int dirfd, groupsfd, glockfd, segfd, headfd;
    struct spool_head *head;
    struct view view;
    uint64_t seg_base, pos;      /* current segment and the byte of the next record */
    uint64_t next;               /* offset of the next record to return */
    uint64_t committed;
    uint64_t hint_seg, hint_pos; /* from the offsets file: where `next` starts */
    int has_hint;
    uint64_t local_limit;        /* durable end checked by this reader (no writer alive) */
    int64_t last_probe_ms;
    uint64_t corrupt_skipped;
    struct lh_counter *c_damaged;
};

struct spool_batch {
    uint8_t *data;
    size_t len, cap;
    struct lh_bus_header *hdrs;
    uint64_t end_offset, end_seg, end_pos;
};

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_ts(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* CRC32C (Castagnoli) continuing from crc (0 to start), through ISA-L. */
static uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    return ~crc32_iscsi((unsigned char *)(uintptr_t)p, (int)n, ~crc);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void seg_name(char *out, size_t n, uint64_t base)
{
    snprintf(out, n, "%020" PRIu64 ".seg", base);
}

static int parse_seg_name(const char *name, uint64_t *base)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *base = v;
    return 1;
}

static int mkdir_p(const char *path, struct lh_err *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return lh_err_errno(err, LH_EIO, errno, "spool: mkdir(%s)", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return lh_err_errno(err, LH_EIO, errno, "spool: mkdir(%s)", tmp);
    return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t pos)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(pos + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- records ---- */

static size_t hdrs_size(const struct lh_bus_msg *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nheaders; i++)
        n += 6 + strlen(m->headers[i].key) + 1 + strlen(m->headers[i].value) + 1;
    return n;
}

/* Checks what produce cannot store; sets *len to the record's size. */
static int rec_check(const struct lh_bus_msg *m, size_t *len, struct lh_err *err)
{
    if ((m->key_len && !m->key) || (m->value_len && !m->value) || (m->nheaders && !m->headers))
        return lh_err_set(err, LH_EINVAL, "spool: message with a NULL key, value or headers");
    if (m->nheaders > UINT16_MAX)
        return lh_err_set(err, LH_EINVAL, "spool: %zu headers (at most 65535)", m->nheaders);
    for (size_t i = 0; i < m->nheaders; i++) {
        if (!m->headers[i].key || !m->headers[i].value)
            return lh_err_set(err, LH_EINVAL, "spool: header %zu has a NULL key or value", i);
        if (strlen(m->headers[i].key) > UINT16_MAX)
            return lh_err_set(err, LH_EINVAL, "spool: header name longer than 65535 bytes");
    }
    if (m->key_len > REC_MAX || m->value_len > REC_MAX)
        return lh_err_set(err, LH_ETOOBIG, "spool: message larger than %u bytes", REC_MAX);
    size_t h = hdrs_size(m);
    size_t total = REC_HDR + m->key_len + h + m->value_len;
    if (h > REC_MAX || total > REC_MAX)
        return lh_err_set(err, LH_ETOOBIG, "spool: message of %zu bytes, at most %u", total,
                          REC_MAX);
    *len = total;
    return 0;
}

/* Writes the record with offset 0 and, in the crc field, the CRC of bytes
 * [16, len); rec_seal finishes it once the offset is known. */
static void rec_encode(uint8_t *p, const struct lh_bus_msg *m, int64_t ts, size_t len)
{
    size_t h = len - REC_HDR - m->key_len - m->value_len;
    put32(p, (uint32_t)len);
    put64(p + 8, 0);
    put64(p + 16, (uint64_t)ts);
    put32(p + 24, (uint32_t)m->key_len);
    put32(p + 28, (uint32_t)m->value_len);
    put32(p + 32, (uint32_t)h);
    put16(p + 36, (uint16_t)m->nheaders);
    p[38] = REC_VERSION;
    p[39] = 0;
    uint8_t *q = p + REC_HDR;
    if (m->key_len)
        memcpy(q, m->key, m->key_len);
    q += m->key_len;
    for (size_t i = 0; i < m->nheaders; i++) {
        size_t kl = strlen(m->headers[i].key), vl = strlen(m->headers[i].value);
        put16(q, (uint16_t)kl);
        put32(q + 2, (uint32_t)vl);
        q += 6;
        memcpy(q, m->headers[i].key, kl + 1);
        q += kl + 1;
        memcpy(q, m->headers[i].value, vl + 1);
        q += vl + 1;
    }
    if (m->value_len)
        memcpy(q, m->value, m->value_len);
    put32(p + 4, crc32c(0, p + 16, len - 16));
}

static void rec_seal(uint8_t *p, uint64_t offset)
{
    put64(p + 8, offset);
    put32(p + 4, crc32c(get32(p + 4), p + 8, 8));
}

/* Parses the record at p (avail bytes there) that should carry offset
 * expect. REC_SHORT: the bytes end inside it (r->len is its length when at
 * least 4 bytes were there, else 0). */
static int rec_parse(const uint8_t *p, size_t avail, uint64_t expect, struct rec *r)
{
    memset(r, 0, sizeof(*r));
    if (avail < 4)
        return REC_SHORT;
    r->len = get32(p);
    if (r->len < REC_HDR || r->len > REC_MAX)
        return REC_BAD;
    if (avail < r->len)
        return REC_SHORT;
    r->offset = get64(p + 8);
    r->ts_ms = (int64_t)get64(p + 16);
    r->key_len = get32(p + 24);
    r->value_len = get32(p + 28);
    r->hdrs_len = get32(p + 32);
    r->nheaders = get16(p + 36);
    if (p[38] != REC_VERSION || p[39] != 0)
        return REC_BAD;
    if ((uint64_t)REC_HDR + r->key_len + r->hdrs_len + r->value_len != r->len)
        return REC_BAD;
    uint32_t crc = crc32c(crc32c(0, p + 16, r->len - 16), p + 8, 8);
    if (crc != get32(p + 4) || r->offset != expect)
        return REC_BAD;
    const uint8_t *h = p + REC_HDR + r->key_len, *end = h + r->hdrs_len;
    for (unsigned i = 0; i < r->nheaders; i++) {
        if (end - h < 6)
            return REC_BAD;
        uint64_t kl = get16(h), vl = get32(h + 2);
        h += 6;
        if ((uint64_t)(end - h) < kl + 1 + vl + 1 || h[kl] != 0 || h[kl + 1 + vl] != 0)
            return REC_BAD;
        h += kl + 1 + vl + 1;
    }
    return h == end ? REC_OK : REC_BAD;
}

/* ---- reading files ---- */

static void view_reset(struct view *v, int fd)
{
    v->fd = fd;
    v->start = 0;
    v->len = 0;
}

/* Points *p at the bytes from pos on, reading at least `need` of them when
 * the file has them (fresh from the file when force or not in the window).
 * Returns how many bytes are there from pos, or -1 (errno). */
static ssize_t view_get(struct view *v, uint64_t pos, size_t need, int force, const uint8_t **p)
{
    if (!force && pos >= v->start && pos + need <= v->start + v->len) {
        *p = v->buf + (pos - v->start);
        return (ssize_t)(v->start + v->len - pos);
    }
    size_t want = need > VIEW_CHUNK ? need : VIEW_CHUNK;
    if (want > v->cap) {
        uint8_t *nb = realloc(v->buf, want);
        if (!nb) {
            errno = ENOMEM;
            return -1;
        }
        v->buf = nb;
        v->cap = want;
    }
    ssize_t n = pread_full(v->fd, v->buf, want, pos);
    if (n < 0) {
        v->len = 0;
        return -1;
    }
    v->start = pos;
    v->len = (size_t)n;
    *p = v->buf;
    return n;
}

/* Parses the record at pos. REC_SHORT also when the file ends at pos. */
static int parse_at(struct view *v, uint64_t pos, uint64_t expect, int force, struct rec *r,
                    const uint8_t **recp)
{
    const uint8_t *p = NULL;
    ssize_t n = view_get(v, pos, REC_HDR, force, &p);
    if (n < 0)
        return REC_IOERR;
    int rc = rec_parse(p, (size_t)n, expect, r);
    if (rc == REC_SHORT && r->len > (size_t)n) {
        n = view_get(v, pos, r->len, force, &p);
        if (n < 0)
            return REC_IOERR;
        rc = rec_parse(p, (size_t)n, expect, r);
    }
    if (recp)
        *recp = p;
    return rc;
}

/* Looks for a valid record after a damaged one at bad_pos (offset
 * bad_off) in a file of `size` bytes: first where its length field says,
 * then at every byte. Returns 1 with the record found in *pos and *off. */
static int find_resync(struct view *v, uint64_t bad_pos, uint64_t bad_off, uint32_t bad_len,
                       uint64_t size, uint64_t *pos, uint64_t *off)
{
    struct rec r;
    if (bad_len >= REC_HDR && bad_pos + bad_len < size &&
        parse_at(v, bad_pos + bad_len, bad_off + 1, 1, &r, NULL) == REC_OK) {
        *pos = bad_pos + bad_len;
        *off = bad_off + 1;
        return 1;
    }
    /* The length itself is damaged: search byte by byte for a header that
     * checks out, with an offset that can follow. Cheap filters first. */
    for (uint64_t q = bad_pos + 1; q + REC_HDR <= size; q++) {
        const uint8_t *p;
        ssize_t n = view_get(v, q, REC_HDR, 0, &p);
        if (n < REC_HDR)
            return 0;
        uint32_t len = get32(p);
        if (len < REC_HDR || len > REC_MAX || p[38] != REC_VERSION || p[39] != 0)
            continue;
        if ((uint64_t)REC_HDR + get32(p + 24) + get32(p + 28) + get32(p + 32) != len)
            continue;
        uint64_t o = get64(p + 8);
        if (o <= bad_off || o > bad_off + (q - bad_pos) / REC_HDR + 1)
            continue;
        if (q + len <= size && parse_at(v, q, o, 0, &r, NULL) == REC_OK) {
            *pos = q;
            *off = o;
            return 1;
        }
    }
    return 0;
}

/* Walks the records of the segment in v from pos (offset off) to `size`.
 * Damage followed by valid records is skipped over (counted in *damaged);
 * the walk ends at the first damage with nothing valid after it (a torn or
 * corrupt tail). Returns 0 with the end in *end_pos and *end_off, or -errno. */
static int scan_segment(struct view *v, uint64_t pos, uint64_t off, uint64_t size,
                        uint64_t *end_pos, uint64_t *end_off, uint64_t *damaged)
{
    struct rec r;
    while (pos < size) {
        int rc = parse_at(v, pos, off, 0, &r, NULL);
        if (rc == REC_IOERR)
            return -errno;
        if (rc == REC_OK) {
            pos += r.len;
            off++;
            continue;
        }
        uint64_t np, no;
        if (!find_resync(v, pos, off, r.len, size, &np, &no))
            break;
        if (damaged)
            *damaged += no - off;
        pos = np;
        off = no;
    }
    *end_pos = pos;
    *end_off = off;
    return 0;
}

/* The segment files of a topic directory, sorted by base. */
static int list_segments(const char *path, struct seg **out, size_t *nout, struct lh_err *err)
{
    DIR *d = opendir(path);
    if (!d)
        return lh_err_errno(err, LH_EIO, errno, "spool: opendir(%s)", path);
    struct seg *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        uint64_t base;
        if (!parse_seg_name(de->d_name, &base))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
            if (errno == ENOENT)
                continue;  /* deleted by retention meanwhile */
            rc = lh_err_errno(err, LH_EIO, errno, "spool: stat(%s/%s)", path, de->d_name);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct seg *nv = realloc(v, nc * sizeof(*nv));
            if (!nv) {
                rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        v[n].base = base;
        v[n].size = (uint64_t)st.st_size;
        v[n].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        n++;
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return rc;
    }
    for (size_t i = 1; i < n; i++)   /* few files: insertion sort */
        for (size_t j = i; j > 0 && v[j - 1].base > v[j].base; j--) {
            struct seg t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    *nout = n;
    return 0;
}

/* ---- consumer group files ---- */

/* Reads groups/<file>: "v1 <offset> <segment base> <byte position>\n".
 * Returns 1 when read, 0 when absent, negative on error. */
static int group_read(int groupsfd, const char *file, uint64_t *offset, uint64_t *seg,
                      uint64_t *pos, struct lh_err *err)
{
    int fd = openat(groupsfd, file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return lh_err_errno(err, LH_EIO, errno, "spool: open(groups/%s)", file);
    }
    char buf[128];
    ssize_t n = pread_full(fd, buf, sizeof(buf) - 1, 0);
    int e = errno;
    close(fd);
    if (n < 0)
        return lh_err_errno(err, LH_EIO, e, "spool: read(groups/%s)", file);
    buf[n] = '\0';
    unsigned long long o, s, p;
    if (sscanf(buf, "v1 %llu %llu %llu", &o, &s, &p) != 3)
        return lh_err_set(err, LH_ECORRUPT,
                          "spool: groups/%s is not an offsets file; delete it to restart the "
                          "group from the oldest record", file);
    *offset = o;
    *seg = s;
    *pos = p;
    return 1;
}

static int group_write(int groupsfd, const char *group, uint64_t offset, uint64_t seg,
                       uint64_t pos, struct lh_err *err)
{
    char tmp[256], final[256], line[128];
    snprintf(tmp, sizeof(tmp), ".%s.off.tmp", group);
    snprintf(final, sizeof(final), "%s.off", group);
    int n = snprintf(line, sizeof(line), "v1 %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", offset,
                     seg, pos);
    int fd = openat(groupsfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return lh_err_errno(err, LH_EIO, errno, "spool: open(groups/%s)", tmp);
    ssize_t w = write(fd, line, (size_t)n);
    if (w != n) {
        int e = w < 0 ? errno : ENOSPC;
        close(fd);
        unlinkat(groupsfd, tmp, 0);
        return lh_err_errno(err, e == ENOSPC ? LH_EFULL : LH_EIO, e,
                            "spool: write(groups/%s)", tmp);
    }
    if (fdatasync(fd) < 0) {
        int e = errno;
        close(fd);
        unlinkat(groupsfd, tmp, 0);
        return lh_err_errno(err, LH_EIO, e, "spool: fdatasync(groups/%s)", tmp);
    }
    close(fd);
    if (renameat(groupsfd, tmp, groupsfd, final) < 0)
        return lh_err_errno(err, LH_EIO, errno, "spool: rename(groups/%s)", final);
    if (fsync(groupsfd) < 0)
        return lh_err_errno(err, LH_EIO, errno, "spool: fsync(groups/)");
    return 0;
}

/* Finds the slowest group of the topic at path. */
static int groups_scan(const char *path, int groupsfd, struct group_min *out, struct lh_err *err)
{
    char gp[PATH_MAX];
    snprintf(gp, sizeof(gp), "%s/groups", path);
    DIR *d = opendir(gp);
    if (!d)
        return lh_err_errno(err, LH_EIO, errno, "spool: opendir(%s)", gp);
    struct group_min m = {0};
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".off") != 0)
            continue;
        uint64_t o, s, p;
        int r = group_read(groupsfd, de->d_name, &o, &s, &p, err);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0)
            continue;
        if (m.n == 0 || o > m.max_offset)
            m.max_offset = o;
        if (m.n == 0 || o < m.offset) {
            m.offset = o;
            m.seg = s;
            m.pos = p;
            m.has_pos = 1;
        }
        m.n++;
    }
    closedir(d);
    if (rc == 0)
        *out = m;
    return rc;
}

/* Bytes after the slowest group's position (all of them with no group). */
static uint64_t unconsumed_bytes(const struct seg *segs, size_t n, const struct group_min *g)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += segs[i].size;
    if (g->n == 0)
        return total;
    uint64_t sum = 0;
    for (size_t i = n; i-- > 0;) {
        if (g->has_pos && segs[i].base == g->seg && g->pos <= segs[i].size)
            return sum + segs[i].size - g->pos;
        sum += segs[i].size;
        if (segs[i].base <= g->offset)
            return sum;
    }
    return total;
}

/* ---- the head page ---- */

static int head_map(int dirfd, int writable, int *fdout, struct spool_head **out)
{
    int fd = openat(dirfd, "head", (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (st.st_size < HEAD_SIZE) {
        if (!writable || ftruncate(fd, HEAD_SIZE) < 0) {
            int e = writable ? errno : EAGAIN;
            close(fd);
            return -e;
        }
    }
    void *p = mmap(NULL, HEAD_SIZE, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                   fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    *fdout = fd;
    *out = p;
    return 0;
}

static uint64_t head_durable(const struct spool_head *h)
{
    if (!h || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != HEAD_MAGIC)
        return 0;
    return __atomic_load_n(&h->durable, __ATOMIC_ACQUIRE);
}

/* ---- the writer ---- */

static void notify_readers(struct spool *sp)
{
    pthread_mutex_lock(&sp->wait_mu);
    sp->data_seq++;
    pthread_cond_broadcast(&sp->wait_cv);
    pthread_mutex_unlock(&sp->wait_mu);
}

static void topic_gauges(struct spool_topic *t)
{
    lh_gauge_set(t->g_disk, (double)t->total_bytes);
    lh_gauge_set(t->g_segments, (double)t->nsegs);
}

/* Records up to durable_offset are on disk: publish and wake their producers. */
static void publish_durable(struct spool_topic *t)
{
    __atomic_store_n(&t->head->durable, t->durable_offset, __ATOMIC_RELEASE);
    for (struct waiter **pw = &t->waiters; *pw;) {
        struct waiter *w = *pw;
        if (w->end <= t->durable_offset) {
            w->done = 1;
            w->rc = 0;
            *pw = w->next;
        } else {
            pw = &w->next;
        }
    }
    pthread_cond_broadcast(&t->cv);
    notify_readers(t->sp);
}

/* A write or sync failed: throw away everything not yet durable (truncate
 * the active segment back), fail the producers waiting for it. Under mu. */
static void fail_unsynced(struct spool_topic *t, int code, const char *msg)
{
    if (t->write_pos > t->durable_pos) {
        if (ftruncate(t->segfd, (off_t)t->durable_pos) < 0) {
            t->broken = 1;
            snprintf(t->broken_msg, sizeof(t->broken_msg),
                     "spool %s: cannot truncate after a failed write (%s): reopen needed",
                     t->name, strerror(errno));
        }
        t->total_bytes -= t->write_pos - t->durable_pos;
        t->segs[t->nsegs - 1].size = t->durable_pos;
        t->write_pos = t->durable_pos;
        topic_gauges(t);
    }
    t->next_offset = t->durable_offset;
    for (struct waiter *w = t->waiters; w; w = w->next) {
        w->done = 1;
        w->rc = code;
        snprintf(w->msg, sizeof(w->msg), "%s", msg);
    }
    t->waiters = NULL;
    pthread_cond_broadcast(&t->cv);
}

static void refresh_groups(struct spool_topic *t)
{
    struct lh_err err = {0};
    struct group_min g;
    if (groups_scan(t->path, t->groupsfd, &g, &err) < 0) {
        lh_warn("spool %s: %s", t->name, err.msg);
        return;
    }
    t->groups = g;
    t->groups_read_ms = mono_ms();
}

/* Deletes consumed segments past retention. Under mu. */
static void apply_retention(struct spool_topic *t)
{
    const struct lh_bus_spool_config *c = &t->sp->cfg;
    t->retention_ms_last = mono_ms();
    if (c->retention_ms <= 0 && c->retention_bytes == 0)
        return;
    refresh_groups(t);
    if (t->groups.n == 0)
        return;
    int64_t now = wall_ms();
    size_t del = 0;
    while (del + 1 < t->nsegs) {
        const struct seg *s = &t->segs[del];
        int passed = t->groups.offset >= t->segs[del + 1].base;
        int old = c->retention_ms > 0 && now - s->mtime_ms > c->retention_ms;
        int big = c->retention_bytes > 0 && t->total_bytes > c->retention_bytes;
        if (!passed || !(old || big))
            break;
        char name[32];
        seg_name(name, sizeof(name), s->base);
        if (unlinkat(t->dirfd, name, 0) < 0 && errno != ENOENT) {
            lh_warn("spool %s: delete %s: %s", t->name, name, strerror(errno));
            break;
        }
        lh_debug("spool %s: retention deleted %s (%" PRIu64 " bytes)", t->name, name, s->size);
        t->total_bytes -= s->size;
        del++;
    }
    if (del) {
        memmove(t->segs, t->segs + del, (t->nsegs - del) * sizeof(*t->segs));
        t->nsegs -= del;
        topic_gauges(t);
    }
}

static int seg_push(struct spool_topic *t, uint64_t base, uint64_t size, int64_t mtime)
{
    if (t->nsegs == t->segcap) {
        size_t nc = t->segcap ? t->segcap * 2 : 16;
        struct seg *nv = realloc(t->segs, nc * sizeof(*nv));
        if (!nv)
            return -1;
        t->segs = nv;
        t->segcap = nc;
    }
    t->segs[t->nsegs++] = (struct seg){ base, size, mtime };
    return 0;
}

static int create_segment(struct spool_topic *t, uint64_t base, struct lh_err *err)
{
    char name[32];
    seg_name(name, sizeof(name), base);
    int fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return lh_err_errno(err, errno == ENOSPC || errno == EDQUOT ? LH_EFULL : LH_EIO, errno,
                            "spool: create %s/%s", t->path, name);
    if (fsync(t->dirfd) < 0) {
        int e = errno;
        close(fd);
        unlinkat(t->dirfd, name, 0);
        return lh_err_errno(err, LH_EIO, e, "spool: fsync(%s)", t->path);
    }
    if (seg_push(t, base, 0, wall_ms()) < 0) {
        close(fd);
        unlinkat(t->dirfd, name, 0);
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    }
    return fd;
}

/* Makes the active segment durable and starts a new one at next_offset.
 * Under mu, with no sync running. */
static int roll(struct spool_topic *t, struct lh_err *err)
{
    if (t->sp->cfg.fsync && fdatasync(t->segfd) < 0) {
        int e = errno;
        char msg[256];
        snprintf(msg, sizeof(msg), "spool %s: fdatasync: %s", t->name, strerror(e));
        fail_unsynced(t, LH_EIO, msg);
        return lh_err_errno(err, LH_EIO, e, "spool %s: fdatasync before roll", t->name);
    }
    t->durable_offset = t->next_offset;
    t->durable_pos = t->write_pos;
    publish_durable(t);
    int fd = create_segment(t, t->next_offset, err);
    if (fd < 0)
        return fd;
    close(t->segfd);
    t->segfd = fd;
    t->write_pos = t->durable_pos = 0;
    apply_retention(t);
    return 0;
}

/* Leads one group commit. Under mu (released while syncing). */
static void lead_sync(struct spool_topic *t)
{
    t->syncing = 1;
    int64_t gc = t->sp->cfg.group_commit_ms;
    if (gc > 0 && __atomic_load_n(&t->inflight, __ATOMIC_ACQUIRE) > 0) {
        struct timespec dl;
        deadline_ts(&dl, gc);
        while (__atomic_load_n(&t->inflight, __ATOMIC_ACQUIRE) > 0)
            if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT)
                break;
    }
    uint64_t target_off = t->next_offset, target_pos = t->write_pos;
    int fd = t->segfd, rc = 0, e = 0;
    if (target_off > t->durable_offset && t->sp->cfg.fsync) {
        pthread_mutex_unlock(&t->mu);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        rc = fdatasync(fd);
        e = errno;
        clock_gettime(CLOCK_MONOTONIC, &b);
        lh_histogram_observe(t->h_sync, (double)(b.tv_sec - a.tv_sec) +
                                        (double)(b.tv_nsec - a.tv_nsec) / 1e9);
        pthread_mutex_lock(&t->mu);
    }
    t->syncing = 0;
    if (rc == 0) {
        t->syncs++;
        lh_counter_add(t->c_syncs, 1);
        t->durable_offset = target_off;
        t->durable_pos = target_pos;
        publish_durable(t);
    } else {
        char msg[256];
        snprintf(msg, sizeof(msg), "spool %s: fdatasync: %s", t->name, strerror(e));
        lh_error("%s", msg);
        fail_unsynced(t, e == ENOSPC || e == EDQUOT ? LH_EFULL : LH_EIO, msg);
    }
}

static int take_writer_lock(struct spool_topic *t, struct lh_err *err)
{
    t->lockfd = openat(t->dirfd, ".writer.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t->lockfd < 0)
        return lh_err_errno(err, LH_EIO, errno, "spool: open(%s/.writer.lock)", t->path);
    int64_t until = mono_ms() + LOCK_WAIT_MS;
    /* Readers take the lock for a moment when they check for a dead writer. */
    while (flock(t->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return lh_err_errno(err, LH_EIO, errno, "spool: flock(%s/.writer.lock)", t->path);
        if (mono_ms() >= until) {
            char pid[32] = "?";
            ssize_t n = pread(t->lockfd, pid, sizeof(pid) - 1, 0);
            if (n > 0)
                pid[n] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            return lh_err_set(err, LH_EUNAVAIL,
                              "spool: topic %s is being written by another process (pid %s); "
                              "one producer process per spool directory", t->path, pid);
        }
        usleep(10000);
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(t->lockfd, 0) < 0 || pwrite(t->lockfd, pid, (size_t)n, 0) != n)
        lh_warn("spool %s: cannot record the writer pid: %s", t->path, strerror(errno));
    return 0;
}

/* Scans the last segment, truncates a torn tail, makes the rest durable. */
static int recover_tail(struct spool_topic *t, struct lh_err *err)
{
    struct seg *last = &t->segs[t->nsegs - 1];
    char name[32];
    seg_name(name, sizeof(name), last->base);
    int fd = openat(t->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lh_err_errno(err, LH_EIO, errno, "spool: open(%s/%s)", t->path, name);
    struct view v = { 0 };
    view_reset(&v, fd);
    uint64_t end_pos, end_off, damaged = 0;
    int rc = scan_segment(&v, 0, last->base, last->size, &end_pos, &end_off, &damaged);
    free(v.buf);
    if (rc < 0) {
        close(fd);
        return lh_err_errno(err, LH_EIO, -rc, "spool: read(%s/%s)", t->path, name);
    }
    if (damaged)
        lh_error("spool %s: %s holds %" PRIu64 " damaged record(s) before valid ones; "
                 "kept on disk, consumers skip them", t->name, name, damaged);
    if (end_pos < last->size) {
        lh_warn("spool %s: truncating %" PRIu64 " bytes of torn or corrupt tail of %s "
                "(records from offset %" PRIu64 ")", t->name, last->size - end_pos, name, end_off);
        if (ftruncate(fd, (off_t)end_pos) < 0) {
            int e = errno;
            close(fd);
            return lh_err_errno(err, LH_EIO, e, "spool: truncate(%s/%s)", t->path, name);
        }
        last->size = end_pos;
    }
    /* A crashed writer may have left records in the page cache only. */
    if (fdatasync(fd) < 0) {
        int e = errno;
        close(fd);
        return lh_err_errno(err, LH_EIO, e, "spool: fdatasync(%s/%s)", t->path, name);
    }
    t->segfd = fd;
    t->next_offset = t->durable_offset = end_off;
    t->write_pos = t->durable_pos = end_pos;
    return 0;
}

static void topic_free(struct spool_topic *t)
{
    if (!t)
        return;
    if (t->head) {
        __atomic_store_n(&t->head->writer_pid, 0, __ATOMIC_RELEASE);
        munmap(t->head, HEAD_SIZE);
    }
    if (t->headfd >= 0)
        close(t->headfd);
    if (t->segfd >= 0)
        close(t->segfd);
    if (t->groupsfd >= 0)
        close(t->groupsfd);
    if (t->lockfd >= 0)
        close(t->lockfd);   /* releases the flock */
    if (t->dirfd >= 0)
        close(t->dirfd);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->segs);
    free(t->name);
    free(t);
}

static int topic_open(struct spool *sp, const char *name, struct spool_topic **out,
                      struct lh_err *err)
{
    struct spool_topic *t = calloc(1, sizeof(*t));
    if (!t)
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    t->sp = sp;
    t->dirfd = t->groupsfd = t->lockfd = t->headfd = t->segfd = -1;
    pthread_mutex_init(&t->mu, NULL);
    cond_init_mono(&t->cv);
    int rc;
    t->name = strdup(name);
    if (!t->name) {
        rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory");
        goto fail;
    }
    snprintf(t->path, sizeof(t->path), "%s/%s/groups", sp->cfg.dir, name);
    if ((rc = mkdir_p(t->path, err)) < 0)
        goto fail;
    snprintf(t->path, sizeof(t->path), "%s/%s", sp->cfg.dir, name);
    t->dirfd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->dirfd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "spool: open(%s)", t->path);
        goto fail;
    }
    t->groupsfd = openat(t->dirfd, "groups", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->groupsfd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "spool: open(%s/groups)", t->path);
        goto fail;
    }
    if ((rc = take_writer_lock(t, err)) < 0)
        goto fail;
    if ((rc = groups_scan(t->path, t->groupsfd, &t->groups, err)) < 0)
        goto fail;
    t->groups_read_ms = mono_ms();
    if ((rc = list_segments(t->path, &t->segs, &t->nsegs, err)) < 0)
        goto fail;
    t->segcap = t->nsegs;
    if (t->nsegs == 0) {
        /* A new topic starts where consumers are, so offsets never go back. */
        rc = create_segment(t, t->groups.max_offset, err);
        if (rc < 0)
            goto fail;
        close(rc);
    }
    rc = head_map(t->dirfd, 1, &t->headfd, &t->head);
    if (rc < 0) {
        rc = lh_err_errno(err, LH_EIO, -rc, "spool: map %s/head", t->path);
        goto fail;
    }
    if ((rc = recover_tail(t, err)) < 0)
        goto fail;
    /* The head only ever held ends that were fsync'd: less than that on disk
     * means the storage lost data. Never hand out those offsets again (a
     * reader may be past them): go on in a new segment after the gap. */
    uint64_t published = head_durable(t->head);
    if (published > t->next_offset) {
        lh_error("spool %s: records %" PRIu64 "..%" PRIu64 " were acknowledged but are not on "
                 "disk (lost by the storage); continuing at offset %" PRIu64, name,
                 t->next_offset, published - 1, published);
        if ((rc = create_segment(t, published, err)) < 0)
            goto fail;
        close(t->segfd);
        t->segfd = rc;
        t->next_offset = t->durable_offset = published;
        t->write_pos = t->durable_pos = 0;
    }
    for (size_t i = 0; i < t->nsegs; i++)
        t->total_bytes += t->segs[i].size;
    __atomic_store_n(&t->head->version, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&t->head->writer_pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
    __atomic_add_fetch(&t->head->generation, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&t->head->durable, t->durable_offset, __ATOMIC_RELEASE);
    __atomic_store_n(&t->head->magic, HEAD_MAGIC, __ATOMIC_RELEASE);
    struct lh_metrics *m = sp->bus->metrics;
    if (m) {
        char lb[256];
        lh_metrics_label(lb, sizeof(lb), "topic", name);
        t->g_disk = lh_gauge_get(m, "loghaul_spool_disk_bytes",
                                 "Bytes of the topic's segment files", lb);
        t->g_unconsumed = lh_gauge_get(m, "loghaul_spool_unconsumed_bytes",
                                       "Bytes not yet committed by the slowest consumer group",
                                       lb);
        t->g_segments = lh_gauge_get(m, "loghaul_spool_segments", "Segment files of the topic",
                                     lb);
        t->c_syncs = lh_counter_get(m, "loghaul_spool_syncs_total",
                                    "Group commits (fdatasync calls) of the topic", lb);
        t->h_sync = lh_histogram_get(m, "loghaul_spool_sync_seconds",
                                     "Duration of a group commit's fdatasync", lb,
                                     lh_latency_buckets, lh_latency_nbuckets);
    }
    apply_retention(t);
    topic_gauges(t);
    *out = t;
    return 0;
fail:
    topic_free(t);
    return rc;
}

static struct spool_topic *topic_find(struct spool *sp, const char *name)
{
    for (struct spool_topic *t = sp->topics; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

static int topic_get(struct spool *sp, const char *name, struct spool_topic **out,
                     struct lh_err *err)
{
    pthread_mutex_lock(&sp->mu);
    struct spool_topic *t = topic_find(sp, name);
    int rc = 0;
    if (!t) {
        rc = topic_open(sp, name, &t, err);
        if (rc == 0) {
            t->next = sp->topics;
            sp->topics = t;
        }
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc == 0)
        *out = t;
    return rc;
}

/* Would `more` bytes pass max_bytes? Re-reads the groups when the answer
 * would be yes on stale information. Under mu. */
static int topic_full(struct spool_topic *t, uint64_t more, uint64_t *unconsumed)
{
    uint64_t max = t->sp->cfg.max_bytes;
    int64_t now = mono_ms();
    if (__atomic_exchange_n(&t->groups_dirty, 0, __ATOMIC_ACQ_REL) ||
        now - t->groups_read_ms > GROUPS_REFRESH_MS)
        refresh_groups(t);
    *unconsumed = unconsumed_bytes(t->segs, t->nsegs, &t->groups);
    if (max && *unconsumed + more > max && now - t->groups_read_ms > 5) {
        refresh_groups(t);
        *unconsumed = unconsumed_bytes(t->segs, t->nsegs, &t->groups);
    }
    lh_gauge_set(t->g_unconsumed, (double)*unconsumed);
    return max && *unconsumed + more > max;
}

/* Appends the sealed records in buf under mu; the partial write of a
 * failure is truncated away. */
static int append(struct spool_topic *t, uint8_t *buf, size_t total, size_t n, size_t *lens,
                  struct lh_err *err)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) {
        rec_seal(p, t->next_offset + i);
        p += lens[i];
    }
    size_t done = 0;
    while (done < total) {
        ssize_t w = pwrite(t->segfd, buf + done, total - done, (off_t)(t->write_pos + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (done && ftruncate(t->segfd, (off_t)t->write_pos) < 0) {
                t->broken = 1;
                snprintf(t->broken_msg, sizeof(t->broken_msg),
                         "spool %s: cannot truncate a partial write (%s): reopen needed",
                         t->name, strerror(errno));
            }
            int full = e == ENOSPC || e == EDQUOT || e == EFBIG;
            return lh_err_errno(err, full ? LH_EFULL : LH_EIO, e,
                                "spool %s: %s: write(%s/%020" PRIu64 ".seg)%s", t->name,
                                full ? "disk full" : "write failed", t->path,
                                t->segs[t->nsegs - 1].base,
                                done ? ", partial record truncated" : "");
        }
        done += (size_t)w;
    }
    t->write_pos += total;
    t->next_offset += n;
    t->segs[t->nsegs - 1].size = t->write_pos;
    t->segs[t->nsegs - 1].mtime_ms = wall_ms();   /* its age for retention */
    t->total_bytes += total;
    topic_gauges(t);
    return 0;
}

static int spool_produce(struct lh_bus *bus, const char *topic, const struct lh_bus_msg *msgs,
                         size_t n, struct lh_err *err)
{
    struct spool *sp = bus->ctx;
    struct spool_topic *t = NULL;
    int rc = topic_get(sp, topic, &t, err);
    if (rc < 0) {
        __atomic_add_fetch(&sp->produce_errors, 1, __ATOMIC_RELAXED);
        return rc;
    }
    __atomic_add_fetch(&t->inflight, 1, __ATOMIC_ACQ_REL);
    int inflight = 1;
    size_t *lens = malloc(n * sizeof(*lens)), total = 0;
    uint8_t *buf = NULL;
    if (!lens) {
        rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = rec_check(&msgs[i], &lens[i], err)) < 0)
            goto done;
        total += lens[i];
    }
    if (sp->cfg.max_bytes && total > sp->cfg.max_bytes) {
        rc = lh_err_set(err, LH_ETOOBIG, "spool %s: a batch of %zu bytes exceeds max_size %"
                        PRIu64, topic, total, sp->cfg.max_bytes);
        goto done;
    }
    buf = malloc(total);
    if (!buf) {
        rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory for %zu bytes", total);
        goto done;
    }
    int64_t ts = wall_ms();
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) {
        rec_encode(p, &msgs[i], ts, lens[i]);
        p += lens[i];
    }

    pthread_mutex_lock(&t->mu);
    if (t->broken) {
        rc = lh_err_set(err, LH_EIO, "%s", t->broken_msg);
        goto unlock;
    }
    uint64_t unconsumed;
    if (topic_full(t, total, &unconsumed)) {
        t->full_unconsumed = unconsumed ? unconsumed : 1;
        rc = lh_err_set(err, LH_EFULL, "spool %s is full: %" PRIu64 " unconsumed bytes, "
                        "max_size %" PRIu64, topic, unconsumed, sp->cfg.max_bytes);
        goto unlock;
    }
    while (t->write_pos > 0 && t->write_pos + total > sp->cfg.segment_bytes) {
        if (t->syncing) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        if ((rc = roll(t, err)) < 0)
            goto unlock;
    }
    if (!t->syncing && mono_ms() - t->retention_ms_last > RETENTION_EVERY_MS)
        apply_retention(t);
    if ((rc = append(t, buf, total, n, lens, err)) < 0)
        goto unlock;
    __atomic_sub_fetch(&t->inflight, 1, __ATOMIC_ACQ_REL);
    inflight = 0;
    pthread_cond_broadcast(&t->cv);

    {
        /* Wait for a group commit, leading one when none is running. */
        struct waiter w = { .end = t->next_offset };
        w.next = t->waiters;
        t->waiters = &w;
        while (!w.done) {
            if (!t->syncing)
                lead_sync(t);
            else
                pthread_cond_wait(&t->cv, &t->mu);
        }
        rc = w.rc;
        if (rc < 0) {
            lh_err_set(err, rc, "%s", w.msg);
        } else {
            t->produced_msgs += n;
            for (size_t i = 0; i < n; i++)
                t->produced_bytes += msgs[i].value_len;
        }
    }
unlock:
    pthread_mutex_unlock(&t->mu);
done:
    if (inflight) {
        __atomic_sub_fetch(&t->inflight, 1, __ATOMIC_ACQ_REL);
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    free(buf);
    free(lens);
    if (rc < 0)
        __atomic_add_fetch(&sp->produce_errors, 1, __ATOMIC_RELAXED);
    return rc;
}

/* ---- the consumer ---- */

static void consumer_close_seg(struct spool_consumer *c)
{
    if (c->segfd >= 0)
        close(c->segfd);
    c->segfd = -1;
    view_reset(&c->view, -1);
}

static int consumer_open_seg(struct spool_consumer *c, uint64_t base)
{
    char name[32];
    seg_name(name, sizeof(name), base);
    int fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    consumer_close_seg(c);
    c->segfd = fd;
    c->seg_base = base;
    c->pos = 0;
    view_reset(&c->view, fd);
    return 0;
}

static uint64_t consumer_limit(struct spool_consumer *c)
{
    if (!c->head) {
        int fd;
        struct spool_head *h;
        if (head_map(c->dirfd, 0, &fd, &h) == 0) {
            c->headfd = fd;
            c->head = h;
        }
    }
    uint64_t d = head_durable(c->head);
    return d > c->local_limit ? d : c->local_limit;
}

/* Skips damaged bytes at c->pos: to the next valid record in this segment,
 * or to the next segment. Logged and counted; LH_ECORRUPT when neither. */
static int consumer_skip_damage(struct spool_consumer *c, uint32_t bad_len, struct lh_err *err)
{
    struct stat st;
    if (fstat(c->segfd, &st) < 0)
        return lh_err_errno(err, LH_EIO, errno, "spool: stat segment");
    uint64_t np, no;
    if (find_resync(&c->view, c->pos, c->next, bad_len, (uint64_t)st.st_size, &np, &no)) {
        lh_error("spool %s: damaged record(s) at offsets %" PRIu64 "..%" PRIu64 " (segment %020"
                 PRIu64 ", byte %" PRIu64 ") fail their checksum: skipped", c->topic, c->next,
                 no - 1, c->seg_base, c->pos);
        c->corrupt_skipped += no - c->next;
        lh_counter_add(c->c_damaged, no - c->next);
        c->pos = np;
        c->next = no;
        return 0;
    }
    struct seg *segs;
    size_t n;
    int rc = list_segments(c->path, &segs, &n, err);
    if (rc < 0)
        return rc;
    uint64_t nb = 0;
    int found = 0;
    for (size_t i = 0; i < n && !found; i++)
        if (segs[i].base > c->seg_base && segs[i].base > c->next) {
            nb = segs[i].base;
            found = 1;
        }
    free(segs);
    if (!found)
        return lh_err_set(err, LH_ECORRUPT, "spool %s: record %" PRIu64 " (segment %020" PRIu64
                          ", byte %" PRIu64 ") is damaged and nothing valid follows yet",
                          c->topic, c->next, c->seg_base, c->pos);
    lh_error("spool %s: segment %020" PRIu64 " is damaged from byte %" PRIu64
             ": offsets %" PRIu64 "..%" PRIu64 " skipped", c->topic, c->seg_base, c->pos,
             c->next, nb - 1);
    c->corrupt_skipped += nb - c->next;
    lh_counter_add(c->c_damaged, nb - c->next);
    c->next = nb;
    if ((rc = consumer_open_seg(c, nb)) < 0)
        return lh_err_errno(err, LH_EIO, -rc, "spool %s: open segment %" PRIu64, c->topic, nb);
    return 0;
}

/* Opens the segment holding c->next and finds its byte position.
 * Returns 1 when positioned, 0 when there is no segment yet. */
static int consumer_position(struct spool_consumer *c, struct lh_err *err)
{
    struct seg *segs;
    size_t n;
    int rc = list_segments(c->path, &segs, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0) {
        free(segs);
        return 0;
    }
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        if (segs[i].base <= c->next)
            k = i;
    if (k == n) {
        lh_warn("spool %s: group %s: offsets %" PRIu64 "..%" PRIu64 " were deleted before the "
                "group consumed them", c->topic, c->group, c->next, segs[0].base - 1);
        c->next = segs[0].base;
        k = 0;
        c->has_hint = 0;
    }
    uint64_t base = segs[k].base;
    free(segs);
    if ((rc = consumer_open_seg(c, base)) < 0)
        return lh_err_errno(err, LH_EIO, -rc, "spool %s: open segment %" PRIu64, c->topic, base);
    struct rec r;
    if (c->has_hint && c->hint_seg == base) {
        struct stat st;
        c->has_hint = 0;
        if (fstat(c->segfd, &st) == 0 && c->hint_pos <= (uint64_t)st.st_size &&
            (c->hint_pos == (uint64_t)st.st_size ||
             parse_at(&c->view, c->hint_pos, c->next, 1, &r, NULL) == REC_OK)) {
            c->pos = c->hint_pos;
            return 1;
        }
    }
    c->has_hint = 0;
    /* Walk from the segment start to the committed offset. */
    uint64_t want = c->next;
    c->next = base;
    while (c->next < want) {
        int prc = parse_at(&c->view, c->pos, c->next, 1, &r, NULL);
        if (prc == REC_OK) {
            c->pos += r.len;
            c->next++;
            continue;
        }
        if (prc == REC_IOERR)
            return lh_err_errno(err, LH_EIO, errno, "spool %s: read segment", c->topic);
        if (prc == REC_SHORT && r.len == 0 && c->view.len == 0) {
            lh_warn("spool %s: group %s committed offset %" PRIu64 " but the log ends at %"
                    PRIu64 ": continuing from there", c->topic, c->group, want, c->next);
            return 1;
        }
        if ((rc = consumer_skip_damage(c, r.len, err)) < 0)
            return rc;
        if (c->seg_base != base)
            break;   /* jumped to a later segment, past `want` */
    }
    if (c->next > want)
        lh_warn("spool %s: group %s: committed offset %" PRIu64 " lies in damaged data; "
                "continuing at %" PRIu64, c->topic, c->group, want, c->next);
    return 1;
}

/* No writer alive and records past the durable end? Check them ourselves:
 * with the writer lock held, fsync the tail and accept its valid records. */
static void consumer_probe(struct spool_consumer *c)
{
    int64_t now = mono_ms();
    if (now - c->last_probe_ms < PROBE_EVERY_MS || c->segfd < 0)
        return;
    c->last_probe_ms = now;
    struct stat st;
    if (fstat(c->segfd, &st) < 0)
        return;
    struct lh_err err = {0};
    struct seg *segs;
    size_t n;
    if (list_segments(c->path, &segs, &n, &err) < 0)
        return;
    int more = (uint64_t)st.st_size > c->pos || (n && segs[n - 1].base > c->seg_base);
    int lfd = -1;
    if (more) {
        lfd = openat(c->dirfd, ".writer.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) {
            close(lfd);
            lfd = -1;
        }
    }
    if (lfd < 0) {
        free(segs);
        return;
    }
    uint64_t off = c->next, pos = c->pos;
    struct view v = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (segs[i].base < c->seg_base)
            continue;
        if (segs[i].base != c->seg_base) {
            if (segs[i].base != off)
                break;
            pos = 0;
        }
        char name[32];
        seg_name(name, sizeof(name), segs[i].base);
        int fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        struct stat fs;
        uint64_t end_pos = pos, end_off = off;
        int ok = fstat(fd, &fs) == 0 && fdatasync(fd) == 0;
        if (ok) {
            view_reset(&v, fd);
            ok = scan_segment(&v, pos, off, (uint64_t)fs.st_size, &end_pos, &end_off, NULL) == 0;
        }
        close(fd);
        if (!ok)
            break;
        off = end_off;
        if (end_pos < (uint64_t)fs.st_size)
            break;   /* a torn tail: the next writer truncates it */
    }
    free(v.buf);
    free(segs);
    flock(lfd, LOCK_UN);
    close(lfd);
    uint64_t prev = consumer_limit(c);
    if (off > prev)
        lh_info("spool %s: no writer alive; %" PRIu64 " record(s) past the published end were "
                "checked and made durable by the reader", c->topic, off - prev);
    if (off > c->local_limit)
        c->local_limit = off;
}

static int batch_reserve(struct spool_batch *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 64 * 1024;
    while (nc < b->len + more)
        nc *= 2;
    uint8_t *nd = realloc(b->data, nc);
    if (!nd)
        return -1;
    b->data = nd;
    b->cap = nc;
    return 0;
}

static void batch_free(struct spool_batch *b, struct lh_bus_msg *msgs)
{
    if (b) {
        free(b->data);
        free(b->hdrs);
        free(b);
    }
    free(msgs);
}

/* Reads what is available now. Returns the count, 0 or a negative code. */
static int consumer_read(struct spool_consumer *c, size_t max, struct lh_bus_batch *out,
                         struct lh_err *err)
{
    if (c->segfd < 0) {
        int rc = consumer_position(c, err);
        if (rc <= 0)
            return rc;
    }
    uint64_t limit = consumer_limit(c);
    if (c->next >= limit) {
        consumer_probe(c);
        limit = consumer_limit(c);
        if (c->next >= limit)
            return 0;
    }
    struct spool_batch *b = calloc(1, sizeof(*b));
    size_t cap = max < 1024 ? max : 1024, count = 0, nhdrs = 0;
    struct lh_bus_msg *msgs = calloc(cap, sizeof(*msgs));
    if (!b || !msgs) {
        batch_free(b, msgs);
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    }
    int rc = 0;
    while (count < max && c->next < limit && (count == 0 || b->len < BATCH_BYTES)) {
        struct rec r;
        const uint8_t *p;
        int prc = parse_at(&c->view, c->pos, c->next, 0, &r, &p);
        if (prc != REC_OK)   /* the window may hold bytes from before they were complete */
            prc = parse_at(&c->view, c->pos, c->next, 1, &r, &p);
        if (prc == REC_IOERR) {
            rc = lh_err_errno(err, LH_EIO, errno, "spool %s: read segment %020" PRIu64,
                              c->topic, c->seg_base);
            break;
        }
        if (prc == REC_SHORT && r.len == 0 && c->view.len == 0) {
            /* The end of this segment: the next one is named by its offset
             * (unless records were lost in between: then the next by name). */
            int orc = c->next != c->seg_base ? consumer_open_seg(c, c->next) : -ENOENT;
            if (orc == -ENOENT) {
                struct seg *segs;
                size_t n;
                if ((rc = list_segments(c->path, &segs, &n, err)) < 0)
                    break;
                uint64_t nb = 0;
                int found = 0;
                for (size_t i = 0; i < n && !found; i++)
                    if (segs[i].base > c->seg_base && segs[i].base >= c->next) {
                        nb = segs[i].base;
                        found = 1;
                    }
                free(segs);
                if (!found) {
                    rc = lh_err_set(err, LH_ECORRUPT, "spool %s: offset %" PRIu64 " is below "
                                    "the durable end but in no segment", c->topic, c->next);
                    break;
                }
                if (nb > c->next) {
                    lh_error("spool %s: offsets %" PRIu64 "..%" PRIu64 " are missing (deleted "
                             "or lost): skipped", c->topic, c->next, nb - 1);
                    c->corrupt_skipped += nb - c->next;
                    lh_counter_add(c->c_damaged, nb - c->next);
                }
                c->next = nb;
                orc = consumer_open_seg(c, nb);
            }
            if (orc < 0) {
                rc = lh_err_errno(err, LH_EIO, -orc, "spool %s: open segment", c->topic);
                break;
            }
            continue;
        }
        if (prc != REC_OK) {
            if ((rc = consumer_skip_damage(c, r.len, err)) < 0)
                break;
            continue;
        }
        if (count == cap) {
            size_t nc = cap * 2 < max ? cap * 2 : max;
            struct lh_bus_msg *nm = realloc(msgs, nc * sizeof(*nm));
            if (!nm) {
                rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory");
                break;
            }
            msgs = nm;
            cap = nc;
        }
        if (batch_reserve(b, r.len) < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory");
            break;
        }
        memcpy(b->data + b->len, p, r.len);
        /* Pointers are set once data stops moving; remember where for now. */
        msgs[count] = (struct lh_bus_msg){ .key_len = r.key_len, .value_len = r.value_len,
                                           .nheaders = r.nheaders, .topic = c->topic,
                                           .partition = 0, .offset = (int64_t)r.offset,
                                           .timestamp_ms = r.ts_ms };
        msgs[count].value = (const char *)(uintptr_t)b->len;
        nhdrs += r.nheaders;
        b->len += r.len;
        count++;
        c->pos += r.len;
        c->next++;
    }
    if (count == 0) {
        batch_free(b, msgs);
        return rc;
    }
    if (rc < 0)   /* return what was read; the error comes again next time */
        lh_err_clear(err);
    if (nhdrs && !(b->hdrs = calloc(nhdrs, sizeof(*b->hdrs)))) {
        batch_free(b, msgs);
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    }
    size_t h = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = b->data + (size_t)(uintptr_t)msgs[i].value;
        const uint8_t *q = p + REC_HDR;
        msgs[i].key = msgs[i].key_len ? (const char *)q : NULL;
        q += msgs[i].key_len;
        msgs[i].headers = msgs[i].nheaders ? &b->hdrs[h] : NULL;
        for (size_t k = 0; k < msgs[i].nheaders; k++) {
            uint32_t kl = get16(q), vl = get32(q + 2);
            b->hdrs[h].key = (const char *)q + 6;
            b->hdrs[h].value = (const char *)q + 6 + kl + 1;
            h++;
            q += 6 + kl + 1 + vl + 1;
        }
        msgs[i].value = (const char *)q;
    }
    b->end_offset = c->next;
    b->end_seg = c->seg_base;
    b->end_pos = c->pos;
    out->msgs = msgs;
    out->n = count;
    out->impl = b;
    return (int)count;
}

static int spool_poll(struct lh_bus_consumer *base, size_t max, int timeout_ms,
                      struct lh_bus_batch *out, struct lh_err *err)
{
    struct spool_consumer *c = (struct spool_consumer *)base;
    struct spool *sp = c->sp;
    if (max > INT32_MAX)
        max = INT32_MAX;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        pthread_mutex_lock(&sp->wait_mu);
        uint64_t seq = sp->data_seq;
        pthread_mutex_unlock(&sp->wait_mu);
        int n = consumer_read(c, max, out, err);
        if (n != 0)
            return n;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        /* A writer in this bus wakes us; one in another process is polled. */
        pthread_mutex_lock(&sp->mu);
        int local = topic_find(sp, c->topic) != NULL;
        pthread_mutex_unlock(&sp->mu);
        int64_t slice = local ? 200 : 5;
        struct timespec dl;
        deadline_ts(&dl, left < slice ? left : slice);
        pthread_mutex_lock(&sp->wait_mu);
        while (sp->data_seq == seq)
            if (pthread_cond_timedwait(&sp->wait_cv, &sp->wait_mu, &dl) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&sp->wait_mu);
    }
}

static int spool_commit(struct lh_bus_consumer *base, const struct lh_bus_batch *bt,
                        struct lh_err *err)
{
    struct spool_consumer *c = (struct spool_consumer *)base;
    const struct spool_batch *b = bt->impl;
    if (!b || b->end_offset <= c->committed)
        return 0;
    int rc = group_write(c->groupsfd, c->group, b->end_offset, b->end_seg, b->end_pos, err);
    if (rc < 0)
        return lh_err_wrap(err, "spool %s: commit of group %s", c->topic, c->group);
    c->committed = b->end_offset;
    struct spool *sp = c->sp;
    pthread_mutex_lock(&sp->mu);
    struct spool_topic *t = topic_find(sp, c->topic);
    if (t)
        __atomic_store_n(&t->groups_dirty, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sp->mu);
    return 0;
}

static void spool_batch_release(struct lh_bus_consumer *c, struct lh_bus_batch *b)
{
    (void)c;
    batch_free(b->impl, b->msgs);
}

static void spool_consumer_close(struct lh_bus_consumer *base)
{
    struct spool_consumer *c = (struct spool_consumer *)base;
    consumer_close_seg(c);
    free(c->view.buf);
    if (c->head)
        munmap(c->head, HEAD_SIZE);
    if (c->headfd >= 0)
        close(c->headfd);
    if (c->glockfd >= 0)
        close(c->glockfd);
    if (c->groupsfd >= 0)
        close(c->groupsfd);
    if (c->dirfd >= 0)
        close(c->dirfd);
    free(c->topic);
    free(c->group);
    free(c);
}

static const struct lh_bus_ops spool_ops;

static int spool_consumer_open(struct lh_bus *bus, const char *group, const char *topic,
                               struct lh_bus_consumer **out, struct lh_err *err)
{
    struct spool *sp = bus->ctx;
    struct spool_consumer *c = calloc(1, sizeof(*c));
    if (!c)
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    c->base.ops = &spool_ops;
    c->base.bus = bus;
    c->sp = sp;
    c->dirfd = c->groupsfd = c->glockfd = c->segfd = c->headfd = -1;
    view_reset(&c->view, -1);
    int rc;
    c->topic = strdup(topic);
    c->group = strdup(group);
    if (!c->topic || !c->group) {
        rc = lh_err_set(err, LH_ENOMEM, "spool: out of memory");
        goto fail;
    }
    snprintf(c->path, sizeof(c->path), "%s/%s/groups", sp->cfg.dir, topic);
    if ((rc = mkdir_p(c->path, err)) < 0)
        goto fail;
    snprintf(c->path, sizeof(c->path), "%s/%s", sp->cfg.dir, topic);
    c->dirfd = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    c->groupsfd = c->dirfd < 0 ? -1 :
                  openat(c->dirfd, "groups", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->groupsfd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "spool: open(%s/groups)", c->path);
        goto fail;
    }
    char name[256];
    snprintf(name, sizeof(name), "%s.lock", group);
    c->glockfd = openat(c->groupsfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->glockfd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "spool: open(%s/groups/%s)", c->path, name);
        goto fail;
    }
    if (flock(c->glockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = lh_err_set(err, LH_EINVAL, "spool %s: group %s already has a consumer (the spool "
                        "has one partition: one consumer per group)", topic, group);
        goto fail;
    }
    snprintf(name, sizeof(name), "%s.off", group);
    rc = group_read(c->groupsfd, name, &c->committed, &c->hint_seg, &c->hint_pos, err);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        c->has_hint = 1;
    } else {
        /* A new group starts at the oldest record, and registers itself now
         * so that retention keeps what it has not read. */
        struct seg *segs;
        size_t n;
        if ((rc = list_segments(c->path, &segs, &n, err)) < 0)
            goto fail;
        c->committed = n ? segs[0].base : 0;
        free(segs);
        if ((rc = group_write(c->groupsfd, group, c->committed, c->committed, 0, err)) < 0)
            goto fail;
        c->hint_seg = c->committed;
        c->hint_pos = 0;
        c->has_hint = 1;
    }
    c->next = c->committed;
    if (bus->metrics) {
        char lb[512], t[256], g[256];
        snprintf(lb, sizeof(lb), "%s,%s", lh_metrics_label(t, sizeof(t), "topic", topic),
                 lh_metrics_label(g, sizeof(g), "group", group));
        c->c_damaged = lh_counter_get(bus->metrics, "loghaul_spool_damaged_records_total",
                                      "Records skipped by consumers: failed checksums", lb);
    }
    *out = &c->base;
    return 0;
fail:
    spool_consumer_close(&c->base);
    return rc;
}

static int spool_consumer_lag(struct lh_bus_consumer *base, int64_t *lag, struct lh_err *err)
{
    (void)err;
    struct spool_consumer *c = (struct spool_consumer *)base;
    uint64_t limit = consumer_limit(c);
    *lag = limit > c->next ? (int64_t)(limit - c->next) : 0;
    return 0;
}

/* ---- the bus ---- */

static int spool_stats(struct lh_bus *bus, const char *topic, struct lh_bus_stats *out,
                       struct lh_err *err)
{
    struct spool *sp = bus->ctx;
    out->produce_errors = __atomic_load_n(&sp->produce_errors, __ATOMIC_RELAXED);
    pthread_mutex_lock(&sp->mu);
    for (struct spool_topic *t = sp->topics; t; t = t->next) {
        pthread_mutex_lock(&t->mu);
        out->produced_msgs += t->produced_msgs;
        out->produced_bytes += t->produced_bytes;
        out->syncs += t->syncs;
        if (topic && strcmp(topic, t->name) == 0) {
            uint64_t u;
            topic_full(t, 0, &u);
            out->unconsumed_bytes = u;
            out->disk_bytes = t->total_bytes;
            out->segments = t->nsegs;
            out->next_offset = t->next_offset;
            topic = NULL;
        }
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&sp->mu);
    if (!topic)
        return 0;
    /* Not written by this process: read the directory (readers' view). */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", sp->cfg.dir, topic);
    if (access(path, F_OK) < 0)
        return 0;
    struct seg *segs;
    size_t n;
    int rc = list_segments(path, &segs, &n, err);
    if (rc < 0)
        return rc;
    struct group_min g = {0};
    int gfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int groupsfd = gfd < 0 ? -1 : openat(gfd, "groups", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (groupsfd >= 0)
        groups_scan(path, groupsfd, &g, NULL);
    int hfd;
    struct spool_head *h;
    if (gfd >= 0 && head_map(gfd, 0, &hfd, &h) == 0) {
        out->next_offset = head_durable(h);
        munmap(h, HEAD_SIZE);
        close(hfd);
    }
    if (groupsfd >= 0)
        close(groupsfd);
    if (gfd >= 0)
        close(gfd);
    for (size_t i = 0; i < n; i++)
        out->disk_bytes += segs[i].size;
    out->segments = n;
    out->unconsumed_bytes = unconsumed_bytes(segs, n, &g);
    free(segs);
    return 0;
}

static int spool_ready(struct lh_bus *bus, struct lh_err *err)
{
    struct spool *sp = bus->ctx;
    if (access(sp->cfg.dir, W_OK) < 0)
        return lh_err_errno(err, LH_EUNAVAIL, errno, "spool: %s is not writable", sp->cfg.dir);
    struct statvfs vfs;
    if (statvfs(sp->cfg.dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < 1u << 20)
        return lh_err_set(err, LH_EFULL, "spool: the disk of %s is full", sp->cfg.dir);
    int rc = 0;
    pthread_mutex_lock(&sp->mu);
    for (struct spool_topic *t = sp->topics; t && rc == 0; t = t->next) {
        pthread_mutex_lock(&t->mu);
        uint64_t u;
        if (t->broken)
            rc = lh_err_set(err, LH_EIO, "%s", t->broken_msg);
        else if (topic_full(t, 0, &u) || (t->full_unconsumed && u >= t->full_unconsumed))
            rc = lh_err_set(err, LH_EFULL, "spool %s is full: %" PRIu64 " unconsumed bytes",
                            t->name, u);
        else
            t->full_unconsumed = 0;   /* consumers made room since the last EFULL */
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

static void spool_destroy(struct lh_bus *bus)
{
    struct spool *sp = bus->ctx;
    while (sp->topics) {
        struct spool_topic *t = sp->topics;
        sp->topics = t->next;
        topic_free(t);
    }
    pthread_mutex_destroy(&sp->mu);
    pthread_mutex_destroy(&sp->wait_mu);
    pthread_cond_destroy(&sp->wait_cv);
    free(sp->cfg.dir);
    free(sp);
}

static const struct lh_bus_ops spool_ops = {
    .name = "spool",
    .produce = spool_produce,
    .consumer_open = spool_consumer_open,
    .poll = spool_poll,
    .commit = spool_commit,
    .batch_release = spool_batch_release,
    .consumer_close = spool_consumer_close,
    .ready = spool_ready,
    .destroy = spool_destroy,
    .stats = spool_stats,
    .consumer_lag = spool_consumer_lag,
};

int lh_bus_spool_open(const struct lh_bus_config *cfg, struct lh_bus *bus, struct lh_err *err)
{
    const struct lh_bus_spool_config *c = &cfg->spool;
    if (!c->dir || !c->dir[0])
        return lh_err_set(err, LH_EINVAL, "bus.spool.dir: not set");
    if (strlen(c->dir) > PATH_MAX - 300)
        return lh_err_set(err, LH_EINVAL, "bus.spool.dir: path too long");
    if (c->group_commit_ms < 0 || c->retention_ms < 0)
        return lh_err_set(err, LH_EINVAL, "bus.spool: negative duration");
    struct spool *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    sp->cfg = *c;
    sp->cfg.dir = strdup(c->dir);
    if (!sp->cfg.dir) {
        free(sp);
        return lh_err_set(err, LH_ENOMEM, "spool: out of memory");
    }
    if (sp->cfg.segment_bytes == 0)
        sp->cfg.segment_bytes = 64u << 20;
    int rc = mkdir_p(sp->cfg.dir, err);
    if (rc < 0) {
        free(sp->cfg.dir);
        free(sp);
        return rc;
    }
    sp->bus = bus;
    pthread_mutex_init(&sp->mu, NULL);
    pthread_mutex_init(&sp->wait_mu, NULL);
    cond_init_mono(&sp->wait_cv);
    bus->ops = &spool_ops;
    bus->ctx = sp;
    return 0;
}
