/* buffer.c - the agent's on-disk batch buffer (see buffer.h). */
#include "buffer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lh/crc32c.h"
#include "lh/log.h"

#define MAGIC1 "LHBUF001"
#define MAGIC2 "LHBUF002"
#define MAGIC_LEN 8
#define HEAD_LEN (MAGIC_LEN + 8 + 16 + 4 + 4 + 4 + 8 + 8 + 8)   /* v1; v2 adds flags:u32 */
#define FLAG_WA 1u
#define SEQ_DIGITS 20

#define OFF(f) offsetof(struct lh_dbuf_config, f)
const struct lh_opt lh_dbuf_opts[] = {
    { LH_OPT_STR, "dir", "./var/agent/buffer", OFF(dir),
      "directory of the disk buffer (batches waiting for a collector)" },
    { LH_OPT_SIZE, "max_bytes", "256MiB", OFF(max_bytes), "disk buffer size at most" },
    { LH_OPT_DOUBLE, "sample_at", "0.5", OFF(sample_at),
      "fill ratio from which INFO/DEBUG/TRACE lines are sampled" },
    { LH_OPT_INT, "sample_keep", "10", OFF(sample_keep),
      "while sampling, keep one INFO/DEBUG/TRACE line in this many" },
    { LH_OPT_DOUBLE, "low_levels_max", "0.8", OFF(low_levels_max),
      "fill ratio from which all INFO/DEBUG/TRACE lines are dropped (the rest of the "
      "buffer is kept for WARN and above)" },
    { LH_OPT_BOOL, "write_ahead", "true", OFF(write_ahead),
      "write every batch here (fsync'd) before it is sent, so that after a crash it is sent "
      "again with the same id instead of being read again into a new batch (no visible "
      "duplicates); false: only batches no collector can take are written (restart takes "
      "effect)" },
    { 0 }
};
#undef OFF

int lh_dbuf_config_check(const struct lh_dbuf_config *c, struct lh_err *err)
{
    double sa = c->sample_at ? c->sample_at : 0.5;
    double lm = c->low_levels_max ? c->low_levels_max : 0.8;
    if (!(sa > 0 && sa <= 1) || !(lm > 0 && lm <= 1) || sa > lm)
        return lh_err_set(err, LH_EINVAL,
                          "buffer: need 0 < sample_at (%g) <= low_levels_max (%g) <= 1", sa, lm);
    if (c->sample_keep < 0)
        return lh_err_set(err, LH_EINVAL, "buffer.sample_keep: at least 1");
    return 0;
}

struct entry {
    uint64_t seq;
    uint64_t bytes;
    int delivered;
};

struct lh_dbuf {
    char *dir;
    int dfd;
    _Atomic uint64_t max;
    struct entry *v;
    size_t n, cap;
    _Atomic uint64_t bytes;
    _Atomic uint64_t count;
    _Atomic uint64_t corrupt;
    _Atomic uint64_t delivered;
    _Atomic uint64_t reserved;          /* written by lh_dbuf_write, not indexed yet */
    uint64_t next_seq;
    int write_ahead;
    _Atomic double sample_at, low_max;
    _Atomic uint64_t keep;
};

static void name_of(char *out, size_t n, uint64_t seq, const char *suffix)
{
    snprintf(out, n, "%0*" PRIu64 ".batch%s", SEQ_DIGITS, seq, suffix);
}

/* The file name of entry i: delivered write-ahead batches are renamed
 * "<seq>.batch.sent" (not sent again after a restart). */
static void entry_name(const struct lh_dbuf *d, size_t i, char *out, size_t n)
{
    name_of(out, n, d->v[i].seq, d->v[i].delivered ? ".sent" : "");
}

/* Index of the first entry with seq >= s. */
static size_t lower_bound(const struct lh_dbuf *d, uint64_t s)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->v[mid].seq < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int index_add(struct lh_dbuf *d, uint64_t seq, uint64_t bytes)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct entry *nv = realloc(d->v, cap * sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        d->v = nv;
        d->cap = cap;
    }
    size_t i = lower_bound(d, seq);
    memmove(&d->v[i + 1], &d->v[i], (d->n - i) * sizeof(*d->v));
    d->v[i] = (struct entry){ seq, bytes, 0 };
    d->n++;
    atomic_fetch_add(&d->bytes, bytes);
    atomic_store(&d->count, d->n);
    if (seq >= d->next_seq)
        d->next_seq = seq + 1;
    return 0;
}

static void index_del(struct lh_dbuf *d, size_t i)
{
    atomic_fetch_sub(&d->bytes, d->v[i].bytes);
    if (d->v[i].delivered)
        atomic_fetch_sub(&d->delivered, 1);
    memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(*d->v));
    d->n--;
    atomic_store(&d->count, d->n);
}

static int mkdir_p(const char *path, struct lh_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
            return lh_err_errno(err, LH_EIO, errno, "mkdir(%s)", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return lh_err_errno(err, LH_EIO, errno, "mkdir(%s)", tmp);
    return 0;
}

/* "<20 digits>.batch" -> seq; 0 when the name has another shape. */
static int parse_name(const char *name, const char *suffix, uint64_t *seq)
{
    size_t sl = strlen(suffix);
    if (strlen(name) != SEQ_DIGITS + sl || strcmp(name + SEQ_DIGITS, suffix) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < SEQ_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *seq = v;
    return 1;
}

void lh_dbuf_close(struct lh_dbuf *d)
{
    if (!d)
        return;
    if (d->dfd >= 0)
        close(d->dfd);
    free(d->v);
    free(d->dir);
    free(d);
}

int lh_dbuf_open(const struct lh_dbuf_config *cfg, struct lh_dbuf **out, struct lh_err *err)
{
    int rc = lh_dbuf_config_check(cfg, err);
    if (rc < 0)
        return rc;
    const char *dir = cfg->dir && cfg->dir[0] ? cfg->dir : "./var/agent/buffer";
    if ((rc = mkdir_p(dir, err)) < 0)
        return rc;
    struct lh_dbuf *d = calloc(1, sizeof(*d));
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        return lh_err_set(err, LH_ENOMEM, "buffer: out of memory");
    }
    lh_dbuf_set_limits(d, cfg);
    d->next_seq = 1;
    d->write_ahead = cfg->write_ahead != 0;
    d->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dfd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "buffer: open(%s)", dir);
        lh_dbuf_close(d);
        return rc;
    }
    DIR *dh = fdopendir(dup(d->dfd));
    if (!dh) {
        rc = lh_err_errno(err, LH_EIO, errno, "buffer: opendir(%s)", dir);
        lh_dbuf_close(d);
        return rc;
    }
    struct dirent *de;
    rc = 0;
    while (rc == 0 && (de = readdir(dh)) != NULL) {
        uint64_t seq;
        if (parse_name(de->d_name, ".batch.tmp", &seq)) {
            if (unlinkat(d->dfd, de->d_name, 0) < 0)
                lh_warn("buffer: unlink %s/%s: %s", dir, de->d_name, strerror(errno));
            continue;
        }
        int sent = parse_name(de->d_name, ".batch.sent", &seq);
        if (!sent && !parse_name(de->d_name, ".batch", &seq))
            continue;
        struct stat st;
        if (fstatat(d->dfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        size_t at = lower_bound(d, seq);
        if (at < d->n && d->v[at].seq == seq)
            continue;   /* not expected: rename is atomic */
        rc = index_add(d, seq, (uint64_t)st.st_size);
        if (rc == 0 && sent) {
            d->v[lower_bound(d, seq)].delivered = 1;
            atomic_fetch_add(&d->delivered, 1);
        }
    }
    closedir(dh);
    if (rc < 0) {
        lh_dbuf_close(d);
        return lh_err_set(err, rc, "buffer: out of memory");
    }
    if (d->n)
        lh_info("buffer: %zu batch(es), %llu bytes waiting in %s", d->n,
                (unsigned long long)atomic_load(&d->bytes), dir);
    *out = d;
    return 0;
}

void lh_dbuf_set_limits(struct lh_dbuf *d, const struct lh_dbuf_config *c)
{
    atomic_store(&d->max, c->max_bytes ? c->max_bytes : (256ull << 20));
    atomic_store(&d->sample_at, c->sample_at ? c->sample_at : 0.5);
    atomic_store(&d->low_max, c->low_levels_max ? c->low_levels_max : 0.8);
    atomic_store(&d->keep, c->sample_keep > 0 ? (uint64_t)c->sample_keep : 10);
}

void lh_dbuf_sampling(const struct lh_dbuf *d, double *sample_at, double *low_levels_max,
                      uint64_t *keep)
{
    *sample_at = atomic_load(&d->sample_at);
    *low_levels_max = atomic_load(&d->low_max);
    *keep = atomic_load(&d->keep);
}

uint64_t lh_dbuf_next_seq(const struct lh_dbuf *d)
{
    return d->next_seq;
}

uint64_t lh_dbuf_seq_at(const struct lh_dbuf *d, size_t i)
{
    return i < d->n ? d->v[i].seq : 0;
}

uint64_t lh_dbuf_bytes(const struct lh_dbuf *d)
{
    return atomic_load(&d->bytes);
}

uint64_t lh_dbuf_count(const struct lh_dbuf *d)
{
    return atomic_load(&d->count);
}

uint64_t lh_dbuf_waiting(const struct lh_dbuf *d)
{
    uint64_t c = atomic_load(&d->count), dl = atomic_load(&d->delivered);
    return c > dl ? c - dl : 0;
}

int lh_dbuf_write_ahead(const struct lh_dbuf *d)
{
    return d->write_ahead;
}

int lh_dbuf_delivered_at(const struct lh_dbuf *d, size_t i)
{
    return i < d->n && d->v[i].delivered;
}

int lh_dbuf_mark_delivered(struct lh_dbuf *d, uint64_t seq)
{
    size_t i = lower_bound(d, seq);
    if (i >= d->n || d->v[i].seq != seq)
        return LH_ENOTFOUND;
    if (!d->v[i].delivered) {
        /* Not fsync'd: if the rename is lost in a crash, the batch is only
         * sent once more (same UUID). */
        char from[64], to[64];
        entry_name(d, i, from, sizeof(from));
        d->v[i].delivered = 1;
        entry_name(d, i, to, sizeof(to));
        if (renameat(d->dfd, from, d->dfd, to) < 0) {
            lh_warn("buffer: rename(%s/%s): %s", d->dir, from, strerror(errno));
            d->v[i].delivered = 0;
            return LH_EIO;
        }
        atomic_fetch_add(&d->delivered, 1);
    }
    return 0;
}

size_t lh_dbuf_remove_delivered(struct lh_dbuf *d, uint64_t upto)
{
    size_t removed = 0;
    for (size_t i = 0; i < d->n && d->v[i].seq <= upto;) {
        if (!d->v[i].delivered) {
            i++;
            continue;
        }
        char name[64];
        entry_name(d, i, name, sizeof(name));
        if (unlinkat(d->dfd, name, 0) < 0 && errno != ENOENT)
            lh_warn("buffer: unlink(%s/%s): %s", d->dir, name, strerror(errno));
        index_del(d, i);
        removed++;
    }
    return removed;
}

uint64_t lh_dbuf_max(const struct lh_dbuf *d)
{
    return atomic_load(&d->max);
}

uint64_t lh_dbuf_corrupt(const struct lh_dbuf *d)
{
    return atomic_load(&d->corrupt);
}

/* ---- encoding -------------------------------------------------------------- */

static int put(struct lh_buf *b, const void *p, size_t n)
{
    return lh_buf_append(b, p, n);
}

#define PUTV(b, v) put((b), &(v), sizeof(v))

static int encode(const struct lh_batch *bt, uint32_t flags, struct lh_buf *o)
{
    uint32_t codec = (uint32_t)bt->codec, nrec = bt->nrec, nfiles = bt->nfiles;
    uint64_t seq = bt->seq, raw = bt->raw_len, blen = bt->body.len;
    int64_t created = bt->created_ms;
    int rc = put(o, MAGIC2, MAGIC_LEN) || PUTV(o, seq) || put(o, bt->uuid.b, 16) ||
             PUTV(o, codec) || PUTV(o, nrec) || PUTV(o, nfiles) || PUTV(o, raw) ||
             PUTV(o, blen) || PUTV(o, created) || PUTV(o, flags);
    for (uint32_t i = 0; rc == 0 && i < nfiles; i++) {
        const struct lh_batch_file *f = &bt->files[i];
        const char *p = f->path ? f->path : "", *r = f->real ? f->real : "";
        uint32_t pl = (uint32_t)strlen(p), rl = (uint32_t)strlen(r);
        rc = PUTV(o, pl) || put(o, p, pl) || PUTV(o, rl) || put(o, r, rl) ||
             PUTV(o, f->lines) || PUTV(o, f->key) || PUTV(o, f->dev) || PUTV(o, f->ino) ||
             PUTV(o, f->fp) || PUTV(o, f->fp_len) || PUTV(o, f->end) || PUTV(o, f->size);
    }
    if (rc == 0 && nrec)
        rc = put(o, bt->recs, (size_t)nrec * sizeof(*bt->recs));
    if (rc == 0 && blen)
        rc = put(o, bt->body.data, blen);
    if (rc == 0) {
        uint32_t crc = lh_crc32c(0, o->data, o->len);
        rc = PUTV(o, crc);
    }
    return rc ? LH_ENOMEM : 0;
}

struct reader {
    const char *p;
    size_t n, pos;
};

static int get(struct reader *r, void *out, size_t n)
{
    if (r->n - r->pos < n)
        return -1;
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

#define GETV(r, v) get((r), &(v), sizeof(v))

/* A string of len:u32 + bytes, NUL-terminated into *out (owned). */
static int get_str(struct reader *r, char **out)
{
    uint32_t l;
    if (GETV(r, l) || l > r->n - r->pos)
        return -1;
    if (!(*out = malloc((size_t)l + 1)))
        return -2;
    get(r, *out, l);
    (*out)[l] = '\0';
    return 0;
}

static int decode(const char *p, size_t n, uint64_t want_seq, struct lh_batch **out,
                  uint32_t *flags_out, const char **why)
{
    *why = "truncated";
    if (n < HEAD_LEN + 4)
        return LH_ECORRUPT;
    uint32_t crc;
    memcpy(&crc, p + n - 4, 4);
    if (lh_crc32c(0, p, n - 4) != crc) {
        *why = "checksum mismatch";
        return LH_ECORRUPT;
    }
    struct reader r = { p, n - 4, 0 };
    char magic[MAGIC_LEN];
    uint32_t codec, nrec, nfiles, flags = 0;
    int v2 = 0;
    uint64_t seq, raw, blen;
    int64_t created;
    struct lh_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return LH_ENOMEM;
    if (get(&r, magic, MAGIC_LEN) ||
        (memcmp(magic, MAGIC1, MAGIC_LEN) != 0 && !(v2 = !memcmp(magic, MAGIC2, MAGIC_LEN)))) {
        *why = "bad magic";
        goto corrupt;
    }
    if (GETV(&r, seq) || get(&r, b->uuid.b, 16) || GETV(&r, codec) || GETV(&r, nrec) ||
        GETV(&r, nfiles) || GETV(&r, raw) || GETV(&r, blen) || GETV(&r, created) ||
        (v2 && GETV(&r, flags)))
        goto corrupt;
    if (seq != want_seq) {
        *why = "seq does not match the name";
        goto corrupt;
    }
    if (codec > 2 || nfiles > r.n || nrec > r.n / sizeof(struct lh_batch_rec) ||
        blen > r.n || raw > UINT32_MAX) {
        *why = "bad counts";
        goto corrupt;
    }
    b->seq = seq;
    b->codec = (int)codec;
    b->raw_len = raw;
    b->created_ms = created;
    if (nfiles && !(b->files = calloc(nfiles, sizeof(*b->files))))
        goto nomem;
    for (uint32_t i = 0; i < nfiles; i++) {
        struct lh_batch_file *f = &b->files[i];
        b->nfiles = i + 1;
        int g = get_str(&r, &f->path);
        if (g == 0 && v2)
            g = get_str(&r, &f->real);
        if (g == -2)
            goto nomem;
        if (g < 0 || GETV(&r, f->lines))
            goto corrupt;
        if (v2 && (GETV(&r, f->key) || GETV(&r, f->dev) || GETV(&r, f->ino) ||
                   GETV(&r, f->fp) || GETV(&r, f->fp_len) || GETV(&r, f->end) ||
                   GETV(&r, f->size)))
            goto corrupt;
    }
    if (nrec) {
        if (!(b->recs = malloc((size_t)nrec * sizeof(*b->recs))))
            goto nomem;
        if (get(&r, b->recs, (size_t)nrec * sizeof(*b->recs)))
            goto corrupt;
        b->nrec = nrec;
        for (uint32_t i = 0; i < nrec; i++)
            if (b->recs[i].file >= nfiles || (uint64_t)b->recs[i].off + b->recs[i].len > raw) {
                *why = "bad record index";
                goto corrupt;
            }
    }
    if (r.n - r.pos != blen)
        goto corrupt;
    if (blen && lh_buf_append(&b->body, p + r.pos, blen) < 0)
        goto nomem;
    *out = b;
    if (flags_out)
        *flags_out = flags;
    return 0;
corrupt:
    lh_batch_free(b);
    return LH_ECORRUPT;
nomem:
    lh_batch_free(b);
    return LH_ENOMEM;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One batch being written by lh_dbuf_put_many. */
struct pw {
    struct lh_buf o;
    int fd;
    char tmp[64], name[64];
};

size_t lh_dbuf_write(struct lh_dbuf *d, struct lh_batch *const *v, size_t n, uint64_t *sizes,
                     struct lh_err *err)
{
    if (n == 0)
        return 0;
    struct pw one, *w = n == 1 ? &one : calloc(n, sizeof(*w));
    if (!w) {
        lh_err_set(err, LH_ENOMEM, "buffer: out of memory");
        return 0;
    }
    uint32_t flags = d->write_ahead ? FLAG_WA : 0;
    uint64_t reserved = 0, max = atomic_load(&d->max);
    size_t k = 0, opened = 0;
    /* Write every file (no sync yet) and start its writeback. */
    for (; k < n; k++) {
        struct pw *x = &w[k];
        x->o = (struct lh_buf)LH_BUF_INIT;
        x->fd = -1;
        opened = k + 1;
        if (encode(v[k], flags, &x->o) < 0) {
            lh_err_set(err, LH_ENOMEM, "buffer: out of memory");
            break;
        }
        /* A batch without records (a tombstone that only carries ranges)
         * is tiny and always stored: the ranges must not be missing. */
        uint64_t now = atomic_load(&d->bytes) + atomic_load(&d->reserved) + reserved;
        if (v[k]->nrec && now + x->o.len > max) {
            lh_err_set(err, LH_EFULL, "buffer: full (%llu of %llu bytes)",
                       (unsigned long long)now, (unsigned long long)max);
            break;
        }
        name_of(x->tmp, sizeof(x->tmp), v[k]->seq, ".tmp");
        name_of(x->name, sizeof(x->name), v[k]->seq, "");
        x->fd = openat(d->dfd, x->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (x->fd < 0) {
            lh_err_errno(err, LH_EIO, errno, "buffer: open(%s/%s)", d->dir, x->tmp);
            break;
        }
        if (write_all(x->fd, x->o.data, x->o.len) < 0) {
            lh_err_errno(err, LH_EIO, errno, "buffer: write(%s/%s)", d->dir, x->tmp);
            break;
        }
        sync_file_range(x->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        reserved += x->o.len;
    }
    /* Then make them durable, in order; the first failure ends the group. */
    size_t done = 0;
    for (; done < k; done++)
        if (fdatasync(w[done].fd) < 0) {
            lh_err_errno(err, LH_EIO, errno, "buffer: fdatasync(%s/%s)", d->dir, w[done].tmp);
            break;
        }
    size_t renamed = 0;
    for (; renamed < done; renamed++)
        if (renameat(d->dfd, w[renamed].tmp, d->dfd, w[renamed].name) < 0) {
            lh_err_errno(err, LH_EIO, errno, "buffer: rename(%s/%s)", d->dir,
                         w[renamed].tmp);
            break;
        }
    if (renamed && fsync(d->dfd) < 0) {
        lh_err_errno(err, LH_EIO, errno, "buffer: fsync(%s)", d->dir);
        for (size_t i = 0; i < renamed; i++)
            unlinkat(d->dfd, w[i].name, 0);
        renamed = 0;
    }
    for (size_t i = 0; i < opened; i++) {
        struct pw *x = &w[i];
        if (x->fd >= 0)
            close(x->fd);
        if (i < renamed) {
            sizes[i] = x->o.len;
            atomic_fetch_add(&d->reserved, x->o.len);
        } else if (x->fd >= 0) {
            unlinkat(d->dfd, x->tmp, 0);
        }
        lh_buf_free(&x->o);
    }
    if (w != &one)
        free(w);
    return renamed;
}

int lh_dbuf_add(struct lh_dbuf *d, uint64_t seq, uint64_t bytes)
{
    atomic_fetch_sub(&d->reserved, bytes);
    if (index_add(d, seq, bytes) < 0) {
        /* Keep memory and disk consistent: without an index entry the file
         * would be found again only after a restart. */
        char name[64];
        name_of(name, sizeof(name), seq, "");
        unlinkat(d->dfd, name, 0);
        return LH_ENOMEM;
    }
    return 0;
}

void lh_dbuf_discard(struct lh_dbuf *d, uint64_t seq, uint64_t bytes)
{
    char name[64];
    name_of(name, sizeof(name), seq, "");
    unlinkat(d->dfd, name, 0);
    atomic_fetch_sub(&d->reserved, bytes);
}

size_t lh_dbuf_put_many(struct lh_dbuf *d, struct lh_batch *const *v, size_t n,
                        struct lh_err *err)
{
    uint64_t one, *sizes = n == 1 ? &one : calloc(n ? n : 1, sizeof(*sizes));
    if (!sizes) {
        lh_err_set(err, LH_ENOMEM, "buffer: out of memory");
        return 0;
    }
    size_t k = lh_dbuf_write(d, v, n, sizes, err), stored = 0;
    for (size_t i = 0; i < k; i++) {
        if (stored == i && lh_dbuf_add(d, v[i]->seq, sizes[i]) == 0) {
            stored++;
            continue;
        }
        if (stored == i)
            lh_err_set(err, LH_ENOMEM, "buffer: out of memory");
        if (i > stored)   /* after a failure: not indexed, not kept */
            lh_dbuf_discard(d, v[i]->seq, sizes[i]);
    }
    if (sizes != &one)
        free(sizes);
    return stored;
}

int lh_dbuf_put(struct lh_dbuf *d, const struct lh_batch *b, struct lh_err *err)
{
    struct lh_batch *v[1] = { (struct lh_batch *)b };
    struct lh_err e = { 0 };
    if (lh_dbuf_put_many(d, v, 1, &e) == 1)
        return 0;
    if (err)
        *err = e;
    return e.code ? e.code : LH_EIO;
}

static void move_aside(struct lh_dbuf *d, size_t i, const char *why)
{
    char name[64], aside[80];
    entry_name(d, i, name, sizeof(name));
    name_of(aside, sizeof(aside), d->v[i].seq, ".corrupt");
    lh_error("buffer: %s/%s: %s; moved aside to %s, its lines are lost", d->dir, name, why,
             aside);
    if (renameat(d->dfd, name, d->dfd, aside) < 0)
        unlinkat(d->dfd, name, 0);
    fsync(d->dfd);
    index_del(d, i);
    atomic_fetch_add(&d->corrupt, 1);
}

int lh_dbuf_load(struct lh_dbuf *d, uint64_t seq, struct lh_batch **out, struct lh_err *err)
{
    return lh_dbuf_load_flags(d, seq, out, NULL, err);
}

int lh_dbuf_load_flags(struct lh_dbuf *d, uint64_t seq, struct lh_batch **out,
                       int *written_ahead, struct lh_err *err)
{
    size_t i = lower_bound(d, seq);
    if (i >= d->n || d->v[i].seq != seq)
        return lh_err_set(err, LH_ENOTFOUND, "buffer: no batch %llu", (unsigned long long)seq);
    char name[64];
    entry_name(d, i, name, sizeof(name));
    int fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            index_del(d, i);
            return lh_err_set(err, LH_ENOTFOUND, "buffer: %s/%s vanished", d->dir, name);
        }
        return lh_err_errno(err, LH_EIO, e, "buffer: open(%s/%s)", d->dir, name);
    }
    struct stat st;
    struct lh_buf b = LH_BUF_INIT;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "buffer: fstat(%s/%s)", d->dir, name);
    } else if (lh_buf_reserve(&b, (size_t)st.st_size + 1) < 0) {
        rc = lh_err_set(err, LH_ENOMEM, "buffer: out of memory");
    } else {
        while (b.len < (size_t)st.st_size) {
            ssize_t r = read(fd, b.data + b.len, (size_t)st.st_size - b.len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = lh_err_errno(err, LH_EIO, errno, "buffer: read(%s/%s)", d->dir, name);
                break;
            }
            if (r == 0)
                break;
            b.len += (size_t)r;
        }
    }
    close(fd);
    if (rc == 0) {
        const char *why = "";
        uint32_t flags = 0;
        rc = decode(b.data, b.len, seq, out, &flags, &why);
        if (rc == 0 && written_ahead)
            *written_ahead = (flags & FLAG_WA) != 0;
        if (rc == LH_ECORRUPT) {
            move_aside(d, i, why);
            lh_err_set(err, rc, "buffer: %s/%s: %s", d->dir, name, why);
        } else if (rc < 0) {
            lh_err_set(err, rc, "buffer: out of memory");
        }
    }
    lh_buf_free(&b);
    return rc;
}

int lh_dbuf_remove(struct lh_dbuf *d, uint64_t seq, struct lh_err *err)
{
    size_t i = lower_bound(d, seq);
    if (i >= d->n || d->v[i].seq != seq)
        return lh_err_set(err, LH_ENOTFOUND, "buffer: no batch %llu", (unsigned long long)seq);
    char name[64];
    entry_name(d, i, name, sizeof(name));
    index_del(d, i);
    if (unlinkat(d->dfd, name, 0) < 0 && errno != ENOENT)
        return lh_err_errno(err, LH_EIO, errno, "buffer: unlink(%s/%s)", d->dir, name);
    return 0;
}
