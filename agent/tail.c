/* tail.c - file discovery, reading, rotation and checkpoints of
 * loghaul-agent (see tail.h). */
#include "tail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "lh/buf.h"
#include "lh/log.h"
#include "meta.h"

#define CHUNK (64 * 1024)
#define ID_BUCKETS 1024
#define COPY_SCAN_MAX 256     /* directory entries examined when looking for a copy */

/* A file entry's life:
 *   ACTIVE   open; its source path still names it
 *   ROTATED  open; renamed, deleted or replaced: read to EOF, closed after rotate_wait
 *   CLOSED   no descriptor; kept (and checkpointed) until its records are
 *            acknowledged and the file is gone, so that it is recognised if
 *            it shows up again (a rotated name matching a glob)
 *   DEAD     no descriptor, content gone (truncated, no copy): waits for the
 *            acknowledgements of what it emitted, never checkpointed */
enum fstate { F_ACTIVE, F_ROTATED, F_CLOSED, F_DEAD };

struct tfile {
    struct tfile *next;         /* the tail's list, in discovery order */
    struct tfile *hnext;        /* (dev, ino) hash chain */
    struct lh_tail *t;
    uint64_t uid;
    uint64_t key;               /* persistent name (checkpoint.h), random, never 0 */
    enum fstate state;
    char *path;                 /* source path: the glob match (maybe a symlink) */
    char *real;                 /* resolved path when last looked at */
    int fd;
    int hashed;
    uint64_t dev, ino;
    uint64_t fp;                /* fingerprint of the first fp_len bytes */
    uint32_t fp_len;
    uint64_t chk_size;          /* size/mtime at the last fingerprint check */
    int64_t chk_mtime_ns;
    uint64_t read_off;          /* next byte to read */
    struct lh_buf pend;         /* bytes of the current line read so far (<= max_line_bytes) */
    uint64_t pend_start;        /* file offset of pend.data[0] */
    uint32_t split_part;        /* pieces of the current line already emitted */
    int skipping;               /* truncate mode: dropping the rest of a long line */
    uint64_t skipped;
    uint64_t size_seen;         /* the largest size fstat reported */
    uint64_t emitted_end;       /* end of the last emitted record */
    uint64_t acked;             /* acknowledged up to here */
    int64_t idle_since;         /* rotated: last read or the rotation itself */
    struct lh_fmt *fmt;
    struct lh_k8s_meta k8s;
    int has_k8s;
    int from_ckpt;              /* loaded from the checkpoint, not yet found again */
};

/* A watched directory (inotify reports a watch descriptor, not a path). */
struct wdir {
    int wd;
    char *dir;
};

/* A file under a tailed name renamed away (IN_MOVED_FROM), waiting for the
 * IN_MOVED_TO with the same cookie that says where it went. */
struct move {
    uint32_t cookie;
    char *from;
};

/* A path that could not be tailed, remembered so it is logged once. */
struct note {
    struct note *next;
    char *path;
    const char *reason;
    int seen;
};

struct lh_tail {
    char **include;
    size_t ninclude;
    char **exclude;
    size_t nexclude;
    char *ckpt_path;
    uint64_t max_line;
    int truncate_long;
    int read_from_end;
    uint32_t fp_bytes;
    uint64_t read_budget;
    int64_t scan_interval;
    int64_t rotate_wait;

    struct lh_ledger *ledger;
    lh_tail_emit_fn emit;
    void *arg;
    struct lh_fmt_spec *spec;

    struct tfile *files, *last;
    struct tfile *ids[ID_BUCKETS];
    struct tfile *ack_cache;
    uint64_t next_uid;
    struct note *notes;

    int ifd;
    struct wdir *wdirs;
    size_t nwdirs;
    struct move *moves;
    size_t nmoves;
    int64_t now;
    int64_t next_scan;
    int scan_now;
    int more;
    int dirty;
    uint64_t batch_seq;         /* stored with the checkpoint (lh_tail_set_batch_seq) */
    int first_start;            /* no checkpoint existed: read_from applies */
    int started;                /* the first scan is done */
    int destroying;             /* keep the ledger's rows when tearing down */
    int emitted;                /* records emitted in this poll */
    char *chunk;
    unsigned char *fpbuf;
    struct lh_tail_stats st;
};

/* ---- options ------------------------------------------------------------- */

#define OFF(f) offsetof(struct lh_tail_config, f)
const struct lh_opt lh_tail_opts[] = {
    { LH_OPT_STRLIST, "include", NULL, OFF(include),
      "glob patterns of files to tail, e.g. /var/log/containers/*.log", LH_OPT_REQUIRED },
    { LH_OPT_STRLIST, "exclude", NULL, OFF(exclude),
      "patterns to skip (full path if it holds a '/', else the file name), e.g. *.gz" },
    { LH_OPT_ENUM, "format", "plain", OFF(format), "line format", .choices = LH_FMT_CHOICES },
    { LH_OPT_ENUM, "multiline", "off", OFF(multiline), "multiline joining",
      .choices = LH_ML_CHOICES },
    { LH_OPT_STR, "multiline_start", NULL, OFF(multiline_start),
      "PCRE2 pattern of a record's first line (multiline: start)" },
    { LH_OPT_DURATION, "multiline_flush", "1s", OFF(multiline_flush_ms),
      "emit a pending multiline record after this much quiet" },
    { LH_OPT_INT, "multiline_max_lines", "1000", OFF(multiline_max_lines),
      "lines in one multiline record at most" },
    { LH_OPT_SIZE, "max_line_bytes", "256KiB", OFF(max_line_bytes),
      "longest line (and joined record) kept whole" },
    { LH_OPT_ENUM, "long_lines", "split", OFF(long_lines),
      "longer lines are split into marked pieces, or truncated and counted",
      .choices = "split|truncate" },
    { LH_OPT_ENUM, "read_from", "beginning", OFF(read_from),
      "where to start in files found at the very first start", .choices = "beginning|end" },
    { LH_OPT_SIZE, "fingerprint_bytes", "1KiB", OFF(fingerprint_bytes),
      "bytes at the head of a file hashed into its identity" },
    { LH_OPT_SIZE, "read_budget", "1MiB", OFF(read_budget), "bytes read per file per step" },
    { LH_OPT_DURATION, "scan_interval", "1s", OFF(scan_interval_ms),
      "glob rescan (and polling) interval" },
    { LH_OPT_DURATION, "rotate_wait", "5s", OFF(rotate_wait_ms),
      "keep a rotated file open this long after its last growth" },
    { LH_OPT_BOOL, "inotify", "true", OFF(inotify), "use inotify (else polling only)" },
    { LH_OPT_STR, "checkpoint", "./var/agent/checkpoint.json", OFF(checkpoint),
      "offset store file" },
    { 0 }
};
#undef OFF

/* ---- small helpers --------------------------------------------------------- */

static size_t id_bucket(uint64_t dev, uint64_t ino)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) % ID_BUCKETS;
}

static void id_add(struct lh_tail *t, struct tfile *f)
{
    if (f->hashed)
        return;
    size_t b = id_bucket(f->dev, f->ino);
    f->hnext = t->ids[b];
    t->ids[b] = f;
    f->hashed = 1;
}

static void id_del(struct lh_tail *t, struct tfile *f)
{
    if (!f->hashed)
        return;
    struct tfile **p = &t->ids[id_bucket(f->dev, f->ino)];
    while (*p && *p != f)
        p = &(*p)->hnext;
    if (*p)
        *p = f->hnext;
    f->hashed = 0;
    f->hnext = NULL;
}

static struct tfile *find_open(struct lh_tail *t, uint64_t dev, uint64_t ino)
{
    for (struct tfile *f = t->ids[id_bucket(dev, ino)]; f; f = f->hnext)
        if (f->dev == dev && f->ino == ino && f->fd >= 0)
            return f;
    return NULL;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Reads up to n bytes at offset 0; returns the count (short at EOF) or -1. */
static ssize_t read_head(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
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

/* 1 when the first fp_len bytes of fd hash to fp (fp_len 0: always). */
static int fp_matches(struct lh_tail *t, int fd, uint64_t fp, uint32_t fp_len)
{
    if (fp_len == 0)
        return 1;
    ssize_t n = read_head(fd, t->fpbuf, fp_len);
    return n == (ssize_t)fp_len && lh_ckpt_hash(t->fpbuf, fp_len) == fp;
}

/* Fingerprint of the first min(size, fp_bytes) bytes. */
static void fp_compute(struct lh_tail *t, int fd, uint64_t size, uint64_t *fp, uint32_t *len)
{
    size_t want = size < t->fp_bytes ? (size_t)size : t->fp_bytes;
    ssize_t n = read_head(fd, t->fpbuf, want);
    if (n < 0)
        n = 0;
    *fp = lh_ckpt_hash(t->fpbuf, (size_t)n);
    *len = (uint32_t)n;
}

static char *fd_path(int fd)
{
    char link[64], buf[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

static void set_str(char **dst, char *s)
{
    if (!s)
        return;   /* out of memory: keep the old value */
    free(*dst);
    *dst = s;
}

static void refresh_real(struct tfile *f)
{
    if (f->fd >= 0)
        set_str(&f->real, fd_path(f->fd));
}

static const char *dir_of(const char *path, char *buf, size_t n)
{
    snprintf(buf, n, "%s", path);
    char *s = strrchr(buf, '/');
    if (!s)
        return ".";
    if (s == buf)
        s[1] = '\0';
    else
        *s = '\0';
    return buf;
}

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void watch_dir(struct lh_tail *t, const char *dir)
{
    if (t->ifd < 0)
        return;
    /* Errors (ENOENT, ENOSPC for the watch limit) leave polling to find changes. */
    int wd = inotify_add_watch(t->ifd, dir, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                               IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF |
                               IN_MOVE_SELF | IN_ONLYDIR);
    if (wd < 0)
        return;
    /* Remember the directory of each watch, to name the files of its events. */
    for (size_t i = 0; i < t->nwdirs; i++) {
        if (t->wdirs[i].wd == wd) {
            if (strcmp(t->wdirs[i].dir, dir) != 0)
                set_str(&t->wdirs[i].dir, strdup(dir));
            return;
        }
    }
    char *d = strdup(dir);
    struct wdir *v = d ? realloc(t->wdirs, (t->nwdirs + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(d);
        return;   /* out of memory: only renamed-away files go unnoticed (as before) */
    }
    t->wdirs = v;
    t->wdirs[t->nwdirs++] = (struct wdir){ wd, d };
}

/* ---- bad paths ------------------------------------------------------------- */

static void note(struct lh_tail *t, const char *path, const char *reason, int errnum)
{
    struct note *n;
    for (n = t->notes; n; n = n->next)
        if (strcmp(n->path, path) == 0)
            break;
    if (n) {
        n->seen = 1;
        if (n->reason == reason)
            return;
        n->reason = reason;
    } else {
        n = calloc(1, sizeof(*n));
        if (n && !(n->path = strdup(path))) {
            free(n);
            n = NULL;
        }
        if (n) {
            n->reason = reason;
            n->seen = 1;
            n->next = t->notes;
            t->notes = n;
        }
    }
    if (errnum)
        lh_warn("tail: cannot tail %s (%s): %s", path, reason, strerror(errnum));
    else
        lh_warn("tail: cannot tail %s (%s)", path, reason);
    lh_ledger_error(t->ledger, reason);
}

static void note_clear(struct lh_tail *t, const char *path)
{
    for (struct note **p = &t->notes; *p; p = &(*p)->next)
        if (strcmp((*p)->path, path) == 0) {
            struct note *n = *p;
            *p = n->next;
            free(n->path);
            free(n);
            return;
        }
}

/* ---- file entries ---------------------------------------------------------- */

static void on_record(void *arg, const struct lh_record *rec);

/* A random nonzero 64-bit key. */
static uint64_t new_key(const struct lh_tail *t)
{
    uint64_t k = 0;
    if (getrandom(&k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) * 0x9E3779B97F4A7C15ull ^
            (t->next_uid << 17) ^ (uint64_t)getpid();
    }
    return k ? k : 1;
}

static struct tfile *file_alloc(struct lh_tail *t, const char *path, const char *real)
{
    struct tfile *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->t = t;
    f->fd = -1;
    f->uid = ++t->next_uid;
    f->key = new_key(t);
    f->path = strdup(path ? path : "");
    f->real = strdup(real ? real : (path ? path : ""));
    f->fmt = lh_fmt_create(t->spec, on_record, f);
    if (!f->path || !f->real || !f->fmt) {
        free(f->path);
        free(f->real);
        lh_fmt_destroy(f->fmt);
        free(f);
        return NULL;
    }
    return f;
}

/* Links f into the list after `after` (NULL: at the end). */
static void file_link(struct lh_tail *t, struct tfile *f, struct tfile *after)
{
    if (!after)
        after = t->last;
    if (!after) {
        f->next = t->files;
        t->files = f;
    } else {
        f->next = after->next;
        after->next = f;
    }
    if (!f->next)
        t->last = f;
}

static void pend_free(struct lh_tail *t, struct tfile *f)
{
    t->st.buffer_bytes -= f->pend.cap;
    lh_buf_free(&f->pend);
}

static void file_free(struct lh_tail *t, struct tfile *f, struct tfile *prev)
{
    if (prev)
        prev->next = f->next;
    else
        t->files = f->next;
    if (t->last == f)
        t->last = prev;
    id_del(t, f);
    if (t->ack_cache == f)
        t->ack_cache = NULL;
    if (f->fd >= 0)
        close(f->fd);
    int shared = 0;
    for (struct tfile *o = t->files; o && !shared; o = o->next)
        shared = strcmp(o->path, f->path) == 0;
    if (!shared && !t->destroying)
        lh_ledger_retire(t->ledger, f->path);
    pend_free(t, f);
    lh_fmt_destroy(f->fmt);
    free(f->path);
    free(f->real);
    free(f);
    t->dirty = 1;
}

/* ---- records ------------------------------------------------------------- */

static void on_record(void *arg, const struct lh_record *rec)
{
    struct tfile *f = arg;
    struct lh_tail *t = f->t;
    struct lh_record r = *rec;
    r.path = f->path;
    r.file_uid = f->uid;
    r.k8s = f->has_k8s ? &f->k8s : NULL;
    if (r.end > f->emitted_end)
        f->emitted_end = r.end;
    lh_ledger_read(t->ledger, f->path, r.nlines, r.end - r.start);
    static const struct {
        unsigned bit;
        const char *name;
    } flags[] = {
        { LH_REC_INVALID_UTF8, LH_FLAG_INVALID_UTF8 }, { LH_REC_BINARY, LH_FLAG_BINARY },
        { LH_REC_SPLIT, LH_FLAG_SPLIT }, { LH_REC_TRUNCATED, LH_FLAG_TRUNCATED },
        { LH_REC_PARSE_ERROR, LH_FLAG_PARSE_ERROR }, { LH_REC_NO_NEWLINE, LH_FLAG_NO_NEWLINE },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (r.flags & flags[i].bit)
            lh_ledger_flag(t->ledger, flags[i].name, 1);
    t->st.records++;
    t->emitted++;
    t->emit(t->arg, &r);
}

static void push_line(struct lh_tail *t, struct tfile *f, const char *data, size_t len,
                      uint64_t start, uint64_t end, unsigned flags, uint32_t part)
{
    struct lh_line ln = { data, len, start, end, flags, part };
    if (lh_fmt_push(f->fmt, &ln, t->now) < 0)
        lh_error("tail: %s: out of memory decoding a line at offset %llu", f->path,
                 (unsigned long long)start);
}

static int pend_append(struct lh_tail *t, struct tfile *f, const char *d, size_t n)
{
    size_t cap = f->pend.cap;
    if (lh_buf_append(&f->pend, d, n) < 0) {
        lh_error("tail: %s: out of memory buffering a line", f->path);
        return -1;
    }
    t->st.buffer_bytes += f->pend.cap - cap;
    if (f->pend.cap > t->st.buffer_peak)
        t->st.buffer_peak = f->pend.cap;
    return 0;
}

static void pend_reset(struct lh_tail *t, struct tfile *f, uint64_t next)
{
    if (f->pend.cap > CHUNK)
        pend_free(t, f);      /* do not keep a long line's buffer around */
    lh_buf_reset(&f->pend);
    f->pend_start = next;
    f->split_part = 0;
    f->skipping = 0;
    f->skipped = 0;
}

/* Where to cut n bytes of d so as not to split a UTF-8 sequence: n, or a
 * little less when d[n] is a continuation byte. */
static size_t utf8_cut(const char *d, size_t avail, size_t n)
{
    size_t cut = n;
    while (cut > 0 && n - cut < 3 && cut < avail && ((unsigned char)d[cut] & 0xC0) == 0x80)
        cut--;
    return cut > 0 && cut < avail && ((unsigned char)d[cut] & 0xC0) == 0x80 ? n : cut;
}

/* Splits the bytes d[0..n), file offsets [off, off+n), into lines. */
static void feed(struct lh_tail *t, struct tfile *f, const char *d, size_t n, uint64_t off)
{
    while (n > 0) {
        const char *nl = memchr(d, '\n', n);
        size_t seg = nl ? (size_t)(nl - d) : n;
        if (f->skipping) {
            f->skipped += seg;
            if (!nl)
                return;
            uint64_t end = off + seg + 1;
            push_line(t, f, f->pend.data, f->pend.len, f->pend_start, end, LH_REC_TRUNCATED, 0);
            lh_ledger_drop(t->ledger, f->path, LH_DROP_TRUNCATED, 0, f->skipped);
            pend_reset(t, f, end);
            d += seg + 1;
            n -= seg + 1;
            off += seg + 1;
            continue;
        }
        if (f->pend.len + seg > t->max_line) {
            /* Over the limit: fill the buffer up to it and cut there. */
            size_t room = (size_t)(t->max_line - f->pend.len);
            size_t cut = utf8_cut(d, n, room);
            if (cut == 0 && f->pend.len == 0)
                cut = room;
            if (pend_append(t, f, d, cut) < 0)
                return;
            d += cut;
            n -= cut;
            off += cut;
            if (t->truncate_long) {
                f->skipping = 1;
                f->skipped = 0;
            } else {
                push_line(t, f, f->pend.data, f->pend.len, f->pend_start, off, LH_REC_SPLIT,
                          ++f->split_part);
                uint32_t part = f->split_part;
                pend_reset(t, f, off);
                f->split_part = part;
            }
            continue;
        }
        if (!nl) {
            pend_append(t, f, d, n);
            return;
        }
        uint64_t end = off + seg + 1;
        unsigned flags = f->split_part ? LH_REC_SPLIT | LH_REC_SPLIT_LAST : 0;
        uint32_t part = f->split_part ? f->split_part + 1 : 0;
        if (f->pend.len) {
            if (pend_append(t, f, d, seg) < 0)
                return;
            push_line(t, f, f->pend.data, f->pend.len, f->pend_start, end, flags, part);
        } else {
            push_line(t, f, d, seg, f->pend_start, end, flags, part);
        }
        pend_reset(t, f, end);
        d += seg + 1;
        n -= seg + 1;
        off += seg + 1;
    }
}

/* The file's content ends here (closed, truncated): emit the unterminated
 * last line and every pending join. */
static void finish_content(struct lh_tail *t, struct tfile *f)
{
    if (f->skipping) {
        push_line(t, f, f->pend.data, f->pend.len, f->pend_start, f->read_off,
                  LH_REC_TRUNCATED | LH_REC_NO_NEWLINE, 0);
        lh_ledger_drop(t->ledger, f->path, LH_DROP_TRUNCATED, 0, f->skipped);
    } else if (f->pend.len) {
        unsigned flags = LH_REC_NO_NEWLINE;
        uint32_t part = 0;
        if (f->split_part) {
            flags |= LH_REC_SPLIT | LH_REC_SPLIT_LAST;
            part = f->split_part + 1;
        }
        push_line(t, f, f->pend.data, f->pend.len, f->pend_start, f->read_off, flags, part);
    }
    pend_reset(t, f, f->read_off);
    lh_fmt_flush(f->fmt, t->now, 1);
}

/* ---- rotation ------------------------------------------------------------ */

/* Looks in the directory of f for a regular file whose name starts with the
 * name of f (source or resolved), that is not tracked, is at least min_size
 * long and whose first fp_len bytes hash to fp. The newest one wins. f's own
 * inode is a candidate only with same_inode (f renamed while the agent was
 * stopped). Returns its open descriptor (and stat, path), or -1. */
static int find_copy(struct lh_tail *t, const struct tfile *f, uint64_t fp, uint32_t fp_len,
                     uint64_t min_size, int same_inode, struct stat *out_st, char **out_path)
{
    if (fp_len == 0)
        return -1;
    char dbuf[PATH_MAX];
    const char *dir = dir_of(f->real, dbuf, sizeof(dbuf));
    const char *p1 = base_of(f->path), *p2 = base_of(f->real);
    size_t l1 = strlen(p1), l2 = strlen(p2);
    DIR *dh = opendir(dir);
    if (!dh)
        return -1;
    int best = -1, examined = 0;
    struct stat best_st;
    char *best_path = NULL;
    struct dirent *de;
    while ((de = readdir(dh)) && examined < COPY_SCAN_MAX) {
        const char *nm = de->d_name;
        if (strncmp(nm, p1, l1) != 0 && strncmp(nm, p2, l2) != 0)
            continue;
        examined++;
        char full[PATH_MAX];
        if ((size_t)snprintf(full, sizeof(full), "%s/%s", dir, nm) >= sizeof(full))
            continue;
        int fd = open(full, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < min_size ||
            (!same_inode && (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino) ||
            find_open(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino) ||
            !fp_matches(t, fd, fp, fp_len) ||
            (best >= 0 && mtime_ns(&st) <= mtime_ns(&best_st))) {
            close(fd);
            continue;
        }
        char *p = strdup(full);
        if (!p) {
            close(fd);
            continue;
        }
        if (best >= 0)
            close(best);
        free(best_path);
        best = fd;
        best_st = st;
        best_path = p;
    }
    closedir(dh);
    if (best >= 0) {
        *out_st = best_st;
        *out_path = best_path;
    }
    return best;
}

static void loss(struct lh_tail *t, struct tfile *f, const char *reason, uint64_t start,
                 uint64_t end, const char *why)
{
    if (end <= start)
        return;
    lh_warn("tail: %s: loss window [%llu, %llu) of %s, %llu bytes never read: %s", f->path,
            (unsigned long long)start, (unsigned long long)end, f->real,
            (unsigned long long)(end - start), why);
    lh_ledger_loss(t->ledger, f->path, reason, start, end);
}

/* f's file shrank or its head changed (copytruncate, truncate to zero): the
 * old content continues in its copy if one is found (f becomes that copy,
 * keeping its uid and decoder state), and the new content is a new entry
 * read from 0. */
static void truncated(struct lh_tail *t, struct tfile *f, const struct stat *st)
{
    uint64_t size = (uint64_t)st->st_size;
    uint64_t seen = f->size_seen > f->read_off ? f->size_seen : f->read_off;
    struct tfile *n = file_alloc(t, f->path, f->real);
    if (!n) {
        lh_error("tail: %s: out of memory handling a truncation", f->path);
        return;
    }
    file_link(t, n, f);
    n->fd = f->fd;
    n->dev = f->dev;
    n->ino = f->ino;
    n->state = f->state;
    n->idle_since = t->now;
    n->size_seen = size;
    n->chk_size = size;
    n->chk_mtime_ns = mtime_ns(st);
    n->k8s = f->k8s;
    n->has_k8s = f->has_k8s;
    fp_compute(t, n->fd, size, &n->fp, &n->fp_len);
    id_del(t, f);
    id_add(t, n);
    f->fd = -1;
    t->dirty = 1;

    struct stat cst;
    char *cpath = NULL;
    int cfd = find_copy(t, f, f->fp, f->fp_len, f->read_off, 0, &cst, &cpath);
    if (cfd >= 0) {
        uint64_t csize = (uint64_t)cst.st_size;
        lh_info("tail: %s: truncated at offset %llu (to %llu bytes); reading on from its copy "
                "%s", f->path, (unsigned long long)f->read_off, (unsigned long long)size, cpath);
        f->fd = cfd;
        f->dev = (uint64_t)cst.st_dev;
        f->ino = (uint64_t)cst.st_ino;
        set_str(&f->real, cpath);
        f->state = F_ROTATED;
        f->idle_since = t->now;
        f->chk_size = csize;
        f->chk_mtime_ns = mtime_ns(&cst);
        id_add(t, f);
        loss(t, f, LH_LOSS_TRUNCATED, csize, seen,
             "written after the copy was taken and before the truncation");
        f->size_seen = csize > f->read_off ? csize : f->read_off;
    } else {
        if (seen > f->read_off)
            loss(t, f, LH_LOSS_TRUNCATED, f->read_off, seen,
                 "the file was truncated before they were read and no copy was found");
        else
            lh_info("tail: %s: truncated at offset %llu (to %llu bytes), nothing unread lost",
                    f->path, (unsigned long long)f->read_off, (unsigned long long)size);
        finish_content(t, f);
        f->state = F_DEAD;
    }
}

/* Closes a rotated file that was read to its end. */
static void close_rotated(struct lh_tail *t, struct tfile *f)
{
    finish_content(t, f);
    refresh_real(f);
    close(f->fd);
    f->fd = -1;
    f->state = F_CLOSED;
    pend_free(t, f);
    t->dirty = 1;
    lh_info("tail: closed rotated %s (%s) at offset %llu", f->path, f->real,
            (unsigned long long)f->read_off);
}

/* Does f's source path still name f? If not, it was rotated. */
static void check_path(struct lh_tail *t, struct tfile *f)
{
    struct stat ps;
    const char *why;
    if (stat(f->path, &ps) == 0) {
        if ((uint64_t)ps.st_dev == f->dev && (uint64_t)ps.st_ino == f->ino)
            return;
        why = S_ISREG(ps.st_mode) ? "rotated (a new file has its name)"
                                  : "replaced by something that is not a regular file";
    } else if (errno == ENOENT || errno == ENOTDIR) {
        why = "renamed or deleted";
    } else {
        return;   /* EACCES etc.: cannot tell; keep reading */
    }
    f->state = F_ROTATED;
    f->idle_since = t->now;
    refresh_real(f);
    t->scan_now = 1;
    t->dirty = 1;
    lh_info("tail: %s %s; reading %s to its end", f->path, why, f->real);
}

/* One file's step: checks, reads up to the budget, rotation. */
static void process_file(struct lh_tail *t, struct tfile *f)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0) {
        lh_warn("tail: fstat(%s): %s", f->path, strerror(errno));
        lh_ledger_error(t->ledger, LH_TAILERR_READ);
        return;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < f->read_off ||
        ((size != f->chk_size || mtime_ns(&st) != f->chk_mtime_ns) &&
         !fp_matches(t, f->fd, f->fp, f->fp_len))) {
        truncated(t, f, &st);
        /* f now reads its copy (finish the old content first) or is dead;
         * the new content, right after f in the list, is processed next. */
        if (f->fd >= 0)
            process_file(t, f);
        return;
    }
    f->chk_size = size;
    f->chk_mtime_ns = mtime_ns(&st);
    if (size > f->size_seen)
        f->size_seen = size;
    if (f->fp_len < t->fp_bytes && size > f->fp_len) {
        fp_compute(t, f->fd, size, &f->fp, &f->fp_len);
        t->dirty = 1;
    }
    uint64_t budget = t->read_budget;
    int got = 0;
    while (f->read_off < size && budget > 0) {
        size_t want = CHUNK;
        if (want > size - f->read_off)
            want = (size_t)(size - f->read_off);
        if (want > budget)
            want = (size_t)budget;
        ssize_t r = pread(f->fd, t->chunk, want, (off_t)f->read_off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            lh_warn("tail: read(%s) at offset %llu: %s", f->path,
                    (unsigned long long)f->read_off, strerror(errno));
            lh_ledger_error(t->ledger, LH_TAILERR_READ);
            break;
        }
        if (r == 0)
            break;
        uint64_t off = f->read_off;
        f->read_off += (uint64_t)r;
        budget -= (uint64_t)r;
        got = 1;
        feed(t, f, t->chunk, (size_t)r, off);
    }
    if (f->read_off < size)
        t->more = 1;
    if (f->state == F_ACTIVE)
        check_path(t, f);
    if (f->state == F_ROTATED) {
        if (got || f->read_off < size)
            f->idle_since = t->now;
        else if (t->now - f->idle_since >= t->rotate_wait)
            close_rotated(t, f);
    }
}

/* ---- discovery ------------------------------------------------------------- */

static int excluded(struct lh_tail *t, const char *path)
{
    const char *base = base_of(path);
    for (size_t i = 0; i < t->nexclude; i++) {
        const char *pat = t->exclude[i];
        if (strchr(pat, '/') ? fnmatch(pat, path, FNM_PATHNAME) == 0
                             : fnmatch(pat, base, 0) == 0)
            return 1;
    }
    return 0;
}

static void set_meta(struct tfile *f)
{
    f->has_k8s = lh_k8s_from_file(f->path, &f->k8s) == 0;
}

/* Is the file open on fd a copy of a file we tail: same directory, a name
 * that extends the tailed file's name (app.log.1, app.log-20240102), and the
 * same full-length fingerprint? */
static int is_copy_of_tailed(struct lh_tail *t, int fd, const char *real, uint64_t size)
{
    if (size < t->fp_bytes)
        return 0;
    ssize_t n = read_head(fd, t->fpbuf, t->fp_bytes);
    if (n != (ssize_t)t->fp_bytes)
        return 0;
    uint64_t h = lh_ckpt_hash(t->fpbuf, t->fp_bytes);
    char d1[PATH_MAX], d2[PATH_MAX];
    dir_of(real, d1, sizeof(d1));
    const char *name = base_of(real);
    for (struct tfile *f = t->files; f; f = f->next)
        if (f->fd >= 0 && f->fp_len == t->fp_bytes && f->fp == h &&
            strncmp(name, base_of(f->real), strlen(base_of(f->real))) == 0 &&
            strcmp(dir_of(f->real, d2, sizeof(d2)), d1) == 0)
            return 1;
    return 0;
}

static void consider(struct lh_tail *t, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == EACCES)
            note(t, path, LH_TAILERR_PERMISSION, errno);
        else if (errno != ENOENT && errno != ENOTDIR)
            note(t, path, LH_TAILERR_OPEN, errno);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        note(t, path, LH_TAILERR_NOT_REGULAR, 0);
        return;
    }
    struct tfile *f = find_open(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (f) {
        note_clear(t, path);
        if (strcmp(f->path, path) == 0)
            return;
        struct stat ps;
        int moved = f->state == F_ROTATED || stat(f->path, &ps) < 0 ||
                    (uint64_t)ps.st_dev != f->dev || (uint64_t)ps.st_ino != f->ino;
        if (moved) {
            /* Renamed to a name the globs match too: it goes on under that name. */
            lh_info("tail: %s is now %s", f->path, path);
            set_str(&f->path, strdup(path));
            f->state = F_ACTIVE;
            refresh_real(f);
            set_meta(f);
            t->dirty = 1;
        }
        return;   /* else the same file under a second name (link): read once */
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        note(t, path, errno == EACCES || errno == EPERM ? LH_TAILERR_PERMISSION
                                                        : LH_TAILERR_OPEN, errno);
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        note(t, path, LH_TAILERR_NOT_REGULAR, 0);
        return;
    }
    note_clear(t, path);
    uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino, size = (uint64_t)st.st_size;
    char *real = realpath(path, NULL);

    /* A file we knew (from the checkpoint, or closed after a rotation). */
    for (f = t->ids[id_bucket(dev, ino)]; f; f = f->hnext) {
        if (f->state != F_CLOSED || f->dev != dev || f->ino != ino)
            continue;
        if (size < f->read_off || !fp_matches(t, fd, f->fp, f->fp_len))
            continue;
        f->fd = fd;
        f->state = F_ACTIVE;
        set_str(&f->path, strdup(path));
        set_str(&f->real, real ? real : strdup(path));
        f->from_ckpt = 0;
        f->chk_size = 0;
        f->chk_mtime_ns = 0;
        set_meta(f);
        pend_reset(t, f, f->read_off);
        t->dirty = 1;
        lh_info("tail: following %s again from offset %llu", path,
                (unsigned long long)f->read_off);
        if (f->real)
            watch_dir(t, dir_of(f->real, (char[PATH_MAX]){ 0 }, PATH_MAX));
        return;
    }
    if (is_copy_of_tailed(t, fd, real ? real : path, size)) {
        lh_debug("tail: %s looks like a copy of a tailed file; not tailed on its own", path);
        close(fd);
        free(real);
        return;
    }
    f = file_alloc(t, path, real ? real : path);
    free(real);
    if (!f) {
        close(fd);
        lh_error("tail: %s: out of memory", path);
        return;
    }
    f->fd = fd;
    f->dev = dev;
    f->ino = ino;
    f->state = F_ACTIVE;
    fp_compute(t, fd, size, &f->fp, &f->fp_len);
    f->chk_size = size;
    f->chk_mtime_ns = mtime_ns(&st);
    uint64_t start = t->first_start && !t->started && t->read_from_end ? size : 0;
    f->read_off = f->emitted_end = f->acked = f->pend_start = start;
    f->size_seen = size;
    set_meta(f);
    file_link(t, f, NULL);
    id_add(t, f);
    t->dirty = 1;
    lh_info("tail: following %s from offset %llu", path, (unsigned long long)start);
    watch_dir(t, dir_of(f->real, (char[PATH_MAX]){ 0 }, PATH_MAX));
}

/* Watches every directory level of pattern that may hold matches. */
static void watch_pattern(struct lh_tail *t, const char *pattern)
{
    char dir[PATH_MAX];
    dir_of(pattern, dir, sizeof(dir));
    size_t wild = strcspn(dir, "*?[");
    if (!dir[wild]) {
        watch_dir(t, dir);
        return;
    }
    /* The fixed prefix, then each wildcard level below it. */
    char pre[PATH_MAX];
    snprintf(pre, sizeof(pre), "%.*s", (int)wild, dir);
    char *slash = strrchr(pre, '/');
    if (slash) {
        *(slash == pre ? slash + 1 : slash) = '\0';
        watch_dir(t, pre);
    }
    for (size_t i = wild; ; i++) {
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        char level[PATH_MAX];
        snprintf(level, sizeof(level), "%.*s", (int)i, dir);
        glob_t g;
        if (glob(level, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0) {
            for (size_t k = 0; k < g.gl_pathc; k++)
                watch_dir(t, g.gl_pathv[k]);
        }
        globfree(&g);
        if (!dir[i])
            break;
    }
}

/* Finds, after a restart, checkpointed files the globs no longer match:
 * their unacknowledged rest is read from their rotated name or their copy,
 * or counted as lost. A file may have grown after it was last seen (lines
 * written just before a copytruncate while the agent was down), so it is
 * looked for even when nothing unread is known. */
static void resolve_orphans(struct lh_tail *t)
{
    for (struct tfile *f = t->files; f; f = f->next) {
        if (!f->from_ckpt || f->state != F_CLOSED)
            continue;
        f->from_ckpt = 0;
        int fd = open(f->real, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino &&
            (uint64_t)st.st_size >= f->read_off && fp_matches(t, fd, f->fp, f->fp_len)) {
            if ((uint64_t)st.st_size <= f->acked) {
                close(fd);   /* read to its end; purged once the file is gone */
                continue;
            }
            lh_info("tail: resuming rotated %s (%s) at offset %llu", f->path, f->real,
                    (unsigned long long)f->read_off);
        } else {
            if (fd >= 0)
                close(fd);
            char *cpath = NULL;
            /* Renamed (same inode, another name) or copied (copytruncate). */
            fd = find_copy(t, f, f->fp, f->fp_len, f->read_off, 1, &st, &cpath);
            if (fd < 0) {
                if (f->acked >= f->size_seen)
                    continue;   /* nothing known unread; purged once the file is gone */
                loss(t, f, LH_LOSS_DELETED, f->acked, f->size_seen,
                     "the file is gone (deleted or rotated away) since the agent stopped");
                f->state = F_DEAD;
                id_del(t, f);
                t->dirty = 1;
                continue;
            }
            int renamed = (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino;
            lh_info("tail: resuming %s from its %s %s at offset %llu", f->path,
                    renamed ? "rotated name" : "copy", cpath, (unsigned long long)f->read_off);
            id_del(t, f);
            f->dev = (uint64_t)st.st_dev;
            f->ino = (uint64_t)st.st_ino;
            set_str(&f->real, cpath);
            id_add(t, f);
        }
        f->fd = fd;
        f->state = F_ROTATED;
        f->idle_since = t->now;
        f->chk_size = (uint64_t)st.st_size;
        f->chk_mtime_ns = mtime_ns(&st);
        pend_reset(t, f, f->read_off);
        t->dirty = 1;
    }
}

/* Drops closed entries that are fully acknowledged and whose file is gone. */
static void purge(struct lh_tail *t)
{
    struct tfile *prev = NULL, *f = t->files;
    while (f) {
        struct tfile *next = f->next;
        int drop = 0;
        if (f->state == F_DEAD && f->acked >= f->emitted_end) {
            drop = 1;
        } else if (f->state == F_CLOSED && !f->from_ckpt && f->acked >= f->emitted_end) {
            struct stat st;
            /* Gone, or its inode now belongs to an open file (reused). */
            drop = stat(f->real, &st) < 0 || (uint64_t)st.st_dev != f->dev ||
                   (uint64_t)st.st_ino != f->ino || find_open(t, f->dev, f->ino);
        }
        if (drop)
            file_free(t, f, prev);
        else
            prev = f;
        f = next;
    }
}

static void scan(struct lh_tail *t)
{
    t->st.scans++;
    t->scan_now = 0;
    t->next_scan = t->now + t->scan_interval;
    for (struct note *n = t->notes; n; n = n->next)
        n->seen = 0;
    for (size_t i = 0; i < t->ninclude; i++) {
        glob_t g;
        int rc = glob(t->include[i], 0, NULL, &g);
        if (rc == 0)
            for (size_t k = 0; k < g.gl_pathc; k++)
                if (!excluded(t, g.gl_pathv[k]))
                    consider(t, g.gl_pathv[k]);
        globfree(&g);
        watch_pattern(t, t->include[i]);
    }
    /* Forget notes of paths that went away, so a recurrence is logged again. */
    for (struct note **p = &t->notes; *p;) {
        if (!(*p)->seen) {
            struct note *n = *p;
            *p = n->next;
            free(n->path);
            free(n);
        } else {
            p = &(*p)->next;
        }
    }
    if (!t->started)
        resolve_orphans(t);
    t->started = 1;
    purge(t);
}

static int included(struct lh_tail *t, const char *path)
{
    for (size_t i = 0; i < t->ninclude; i++)
        if (fnmatch(t->include[i], path, FNM_PATHNAME) == 0)
            return !excluded(t, path);
    return 0;
}

/* A file renamed from a tailed name (from) to one the globs may not match
 * (to) before any scan opened it: a rotation faster than the scans (rename
 * and create many times a second). Its lines were written under the tailed
 * name, so it is read to its end as a rotated file of that name. */
static void adopt_moved(struct lh_tail *t, const char *from, const char *to)
{
    struct stat st;
    if (stat(to, &st) < 0 || !S_ISREG(st.st_mode) ||
        find_open(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        return;   /* gone again, or already followed (the usual rotation) */
    if (included(t, to))
        return;   /* the globs match the new name too: the scan finds it */
    consider(t, to);
    struct tfile *f = find_open(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (!f)
        return;
    char *p = strdup(from);
    if (p)
        set_str(&f->path, p);
    set_meta(f);
    f->state = F_ROTATED;
    f->idle_since = t->now;
    lh_info("tail: %s was renamed to %s before it was opened; reading it to its end", from, to);
}

static const char *wd_dir(struct lh_tail *t, int wd)
{
    for (size_t i = 0; i < t->nwdirs; i++)
        if (t->wdirs[i].wd == wd)
            return t->wdirs[i].dir;
    return NULL;
}

static void moves_clear(struct lh_tail *t)
{
    for (size_t i = 0; i < t->nmoves; i++)
        free(t->moves[i].from);
    t->nmoves = 0;
}

static void on_move(struct lh_tail *t, const struct inotify_event *ev)
{
    const char *dir = ev->len ? wd_dir(t, ev->wd) : NULL;
    if (!dir)
        return;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, ev->name) >= (int)sizeof(path))
        return;
    if (ev->mask & IN_MOVED_FROM) {
        if (!included(t, path))
            return;
        char *from = strdup(path);
        struct move *v = from ? realloc(t->moves, (t->nmoves + 1) * sizeof(*v)) : NULL;
        if (!v) {
            free(from);
            return;
        }
        t->moves = v;
        t->moves[t->nmoves++] = (struct move){ ev->cookie, from };
        return;
    }
    for (size_t i = 0; i < t->nmoves; i++) {
        if (t->moves[i].cookie != ev->cookie)
            continue;
        adopt_moved(t, t->moves[i].from, path);
        free(t->moves[i].from);
        t->moves[i] = t->moves[--t->nmoves];
        return;
    }
}

static void drain_inotify(struct lh_tail *t)
{
    if (t->ifd < 0)
        return;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(t->ifd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB |
                            IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW))
                t->scan_now = 1;
            if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))
                on_move(t, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
    moves_clear(t);   /* unpaired: moved out of the watched directories */
}

/* ---- public ---------------------------------------------------------------- */

int lh_tail_poll_once(struct lh_tail *t, int64_t now_ms, struct lh_err *err)
{
    (void)err;
    t->now = now_ms;
    t->more = 0;
    t->emitted = 0;
    drain_inotify(t);
    /* A rotation noticed while reading asks for a rescan at once, so the
     * file that took the name is found in the same step. */
    for (int round = 0; round < 2; round++) {
        if (round == 0 ? (t->scan_now || now_ms >= t->next_scan) : t->scan_now)
            scan(t);
        else if (round == 1)
            break;
        for (struct tfile *f = t->files; f; f = f->next)
            if (f->fd >= 0)
                process_file(t, f);
    }
    for (struct tfile *f = t->files; f; f = f->next)
        if (f->fd >= 0)
            lh_fmt_flush(f->fmt, now_ms, 0);
    struct tfile *prev = NULL, *f = t->files;
    while (f) {
        struct tfile *next = f->next;
        if (f->state == F_DEAD && f->acked >= f->emitted_end)
            file_free(t, f, prev);
        else
            prev = f;
        f = next;
    }
    return t->emitted;
}

int64_t lh_tail_next_wakeup(const struct lh_tail *t, int64_t now_ms)
{
    if (t->more || t->scan_now)
        return 0;
    int64_t due = t->next_scan;
    for (const struct tfile *f = t->files; f; f = f->next) {
        if (f->fd < 0)
            continue;
        int64_t d = lh_fmt_due(f->fmt);
        if (d < due)
            due = d;
        if (f->state == F_ROTATED && f->idle_since + t->rotate_wait < due)
            due = f->idle_since + t->rotate_wait;
    }
    return due <= now_ms ? 0 : due - now_ms;
}

void lh_tail_flush(struct lh_tail *t, int64_t now_ms)
{
    t->now = now_ms;
    for (struct tfile *f = t->files; f; f = f->next)
        lh_fmt_flush(f->fmt, now_ms, 1);
}

int lh_tail_ack(struct lh_tail *t, uint64_t file_uid, uint64_t end, uint32_t nlines)
{
    struct tfile *f = t->ack_cache;
    if (!f || f->uid != file_uid)
        for (f = t->files; f && f->uid != file_uid; f = f->next)
            ;
    if (!f)
        return LH_ENOTFOUND;
    t->ack_cache = f;
    lh_ledger_acked(t->ledger, f->path, nlines);
    if (end > f->acked) {
        f->acked = end;
        t->dirty = 1;
    }
    return 0;
}

void lh_tail_set_batch_seq(struct lh_tail *t, uint64_t seq)
{
    if (seq != t->batch_seq) {
        t->batch_seq = seq;
        t->dirty = 1;
    }
}

int lh_tail_file_ident(struct lh_tail *t, uint64_t file_uid, struct lh_ckpt_entry *out)
{
    struct tfile *f = t->ack_cache;
    if (!f || f->uid != file_uid)
        for (f = t->files; f && f->uid != file_uid; f = f->next)
            ;
    if (!f || f->state == F_DEAD)
        return LH_ENOTFOUND;
    if (f->state == F_ROTATED)
        refresh_real(f);
    memset(out, 0, sizeof(*out));
    out->key = f->key;
    out->dev = f->dev;
    out->ino = f->ino;
    out->fp = f->fp;
    out->fp_len = f->fp_len;
    out->offset = f->acked;
    out->size = f->size_seen;
    out->path = f->path;
    out->real = f->real;
    return 0;
}

int lh_tail_checkpoint_save(struct lh_tail *t, struct lh_err *err)
{
    if (!t->ckpt_path || !t->dirty)
        return 0;
    size_t n = 0;
    for (struct tfile *f = t->files; f; f = f->next)
        n++;
    struct lh_ckpt_entry *v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return lh_err_set(err, LH_ENOMEM, "checkpoint: out of memory");
    size_t k = 0;
    for (struct tfile *f = t->files; f; f = f->next) {
        if (f->state == F_DEAD)
            continue;
        if (f->state == F_ROTATED)
            refresh_real(f);
        v[k].key = f->key;
        v[k].dev = f->dev;
        v[k].ino = f->ino;
        v[k].fp = f->fp;
        v[k].fp_len = f->fp_len;
        v[k].offset = f->acked;
        v[k].size = f->size_seen;
        v[k].path = f->path;
        v[k].real = f->real;
        k++;
    }
    int rc = lh_ckpt_save_seq(t->ckpt_path, v, k, t->batch_seq, err);
    free(v);
    if (rc < 0) {
        lh_ledger_error(t->ledger, LH_TAILERR_CHECKPOINT);
        return rc;
    }
    t->dirty = 0;
    return 0;
}

int lh_tail_fd(const struct lh_tail *t)
{
    return t->ifd;
}

void lh_tail_get_stats(const struct lh_tail *t, struct lh_tail_stats *out)
{
    *out = t->st;
    out->files_open = 0;
    out->files_tracked = 0;
    for (const struct tfile *f = t->files; f; f = f->next) {
        out->files_tracked++;
        out->files_open += f->fd >= 0;
    }
}

static char **dup_list(const struct lh_strlist *l, size_t *n)
{
    *n = 0;
    char **v = calloc(l->n ? l->n : 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (!(v[i] = strdup(l->v[i]))) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return NULL;
        }
    }
    *n = l->n;
    return v;
}

static void free_list(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Loads the checkpoint into CLOSED entries. */
static int load_checkpoint(struct lh_tail *t, struct lh_err *err)
{
    struct lh_ckpt_entry *v;
    size_t n;
    if (access(t->ckpt_path, F_OK) != 0) {
        t->first_start = 1;
        return 0;
    }
    struct lh_err e = { 0 };
    int rc = lh_ckpt_load_seq(t->ckpt_path, &v, &n, &t->batch_seq, &e);
    if (rc == LH_ECORRUPT) {
        char aside[PATH_MAX];
        snprintf(aside, sizeof(aside), "%s.corrupt", t->ckpt_path);
        lh_error("tail: %s; moved aside to %s, starting over", e.msg, aside);
        lh_ledger_error(t->ledger, LH_TAILERR_CHECKPOINT);
        if (rename(t->ckpt_path, aside) < 0)
            return lh_err_errno(err, LH_EIO, errno, "rename(%s, %s)", t->ckpt_path, aside);
        t->first_start = 1;
        return 0;
    }
    if (rc < 0) {
        if (err)
            *err = e;
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct tfile *f = file_alloc(t, v[i].path, v[i].real);
        if (!f) {
            lh_ckpt_free(v, n);
            return lh_err_set(err, LH_ENOMEM, "checkpoint: out of memory");
        }
        f->state = F_CLOSED;
        f->from_ckpt = 1;
        if (v[i].key)
            f->key = v[i].key;
        f->dev = v[i].dev;
        f->ino = v[i].ino;
        f->fp = v[i].fp;
        f->fp_len = v[i].fp_len;
        f->read_off = f->acked = f->emitted_end = f->pend_start = v[i].offset;
        f->size_seen = v[i].size;
        file_link(t, f, NULL);
        id_add(t, f);
    }
    lh_ckpt_free(v, n);
    return 0;
}

int lh_tail_create(const struct lh_tail_config *cfg, struct lh_ledger *ledger,
                   lh_tail_emit_fn emit, void *arg, struct lh_tail **out, struct lh_err *err)
{
    if (!cfg->include.n)
        return lh_err_set(err, LH_EINVAL, "tail: include: no patterns");
    if (!ledger || !emit)
        return lh_err_set(err, LH_EINVAL, "tail: a ledger and an emit callback are required");
    struct lh_tail *t = calloc(1, sizeof(*t));
    if (!t)
        return lh_err_set(err, LH_ENOMEM, "tail: out of memory");
    int rc = LH_ENOMEM;
    t->ifd = -1;
    t->ledger = ledger;
    t->emit = emit;
    t->arg = arg;
    t->max_line = cfg->max_line_bytes ? cfg->max_line_bytes : 256 * 1024;
    t->truncate_long = cfg->long_lines == LH_TAIL_TRUNCATE;
    t->read_from_end = cfg->read_from == LH_TAIL_END;
    t->fp_bytes = cfg->fingerprint_bytes ? (uint32_t)cfg->fingerprint_bytes : 1024;
    t->read_budget = cfg->read_budget ? cfg->read_budget : 1024 * 1024;
    t->scan_interval = cfg->scan_interval_ms > 0 ? cfg->scan_interval_ms : 1000;
    t->rotate_wait = cfg->rotate_wait_ms < 0 ? 5000 : cfg->rotate_wait_ms;
    t->next_scan = INT64_MIN;
    if (cfg->fingerprint_bytes > (1u << 20)) {
        rc = lh_err_set(err, LH_EINVAL, "tail: fingerprint_bytes: at most 1 MiB");
        goto fail;
    }
    if (!(t->include = dup_list(&cfg->include, &t->ninclude)) ||
        !(t->exclude = dup_list(&cfg->exclude, &t->nexclude)) ||
        (cfg->checkpoint && !(t->ckpt_path = strdup(cfg->checkpoint))) ||
        !(t->chunk = malloc(CHUNK)) || !(t->fpbuf = malloc(t->fp_bytes))) {
        lh_err_set(err, LH_ENOMEM, "tail: out of memory");
        goto fail;
    }
    struct lh_fmt_config fc = {
        .kind = (enum lh_fmt_kind)cfg->format,
        .multiline = (enum lh_ml_mode)cfg->multiline,
        .start_pattern = cfg->multiline_start,
        .flush_ms = cfg->multiline_flush_ms,
        .max_bytes = (size_t)t->max_line,
        .max_lines = cfg->multiline_max_lines > 0 ? (uint32_t)cfg->multiline_max_lines : 0,
    };
    if ((rc = lh_fmt_spec_create(&fc, &t->spec, err)) < 0)
        goto fail;
    if (cfg->inotify) {
        t->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (t->ifd < 0)
            lh_warn("tail: inotify_init1: %s; polling every %lld ms", strerror(errno),
                    (long long)t->scan_interval);
    }
    if (t->ckpt_path) {
        if ((rc = load_checkpoint(t, err)) < 0)
            goto fail;
    } else {
        t->first_start = 1;
    }
    *out = t;
    return 0;
fail:
    lh_tail_destroy(t);
    return rc;
}

void lh_tail_destroy(struct lh_tail *t)
{
    if (!t)
        return;
    t->destroying = 1;
    while (t->files)
        file_free(t, t->files, NULL);
    while (t->notes) {
        struct note *n = t->notes;
        t->notes = n->next;
        free(n->path);
        free(n);
    }
    if (t->ifd >= 0)
        close(t->ifd);
    moves_clear(t);
    free(t->moves);
    for (size_t i = 0; i < t->nwdirs; i++)
        free(t->wdirs[i].dir);
    free(t->wdirs);
    lh_fmt_spec_destroy(t->spec);
    free_list(t->include, t->ninclude);
    free_list(t->exclude, t->nexclude);
    free(t->ckpt_path);
    free(t->chunk);
    free(t->fpbuf);
    free(t);
}
