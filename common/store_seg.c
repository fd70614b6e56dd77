/* store_seg.c - segment files and the readers' catalog: mapping segments,
 * finding their complete blocks, resolving merged segments, and taking
 * consistent snapshots of a tenant's blocks for a query. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lh/log.h"

int lhs_seg_name_parse(const char *name, uint64_t *seq)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *seq = v;
    return 0;
}

int lhs_seg_header(struct lh_buf *b, uint64_t seq, int kind, const uint64_t *sup, uint32_t nsup)
{
    size_t start = b->len;
    uint32_t hlen = (uint32_t)((32 + 8 * (size_t)nsup + 4 + 7) & ~(size_t)7);
    if (lh_buf_append(b, LHS_SEG_MAGIC, 8) < 0 || lhs_buf_u32(b, LHS_SEG_VERSION) < 0 ||
        lhs_buf_u32(b, (uint32_t)kind) < 0 || lhs_buf_u32(b, nsup) < 0 ||
        lhs_buf_u32(b, hlen) < 0 || lhs_buf_u64(b, seq) < 0)
        return LH_ENOMEM;
    for (uint32_t i = 0; i < nsup; i++)
        if (lhs_buf_u64(b, sup[i]) < 0)
            return LH_ENOMEM;
    if (lhs_buf_u32(b, lhs_crc(b->data + start, b->len - start)) < 0)
        return LH_ENOMEM;
    while (b->len - start < hlen)
        if (lh_buf_putc(b, 0) < 0)
            return LH_ENOMEM;
    return 0;
}

/* Parses a segment header from p[0..n). Returns 0, or -1 if invalid. */
static int parse_header(const uint8_t *p, size_t n, uint64_t *seq, int *kind, uint32_t *nsup,
                        uint64_t **sup, uint32_t *hlen)
{
    if (n < 40 || memcmp(p, LHS_SEG_MAGIC, 8) != 0 || lhs_get32(p + 8) != LHS_SEG_VERSION)
        return -1;
    uint32_t ns = lhs_get32(p + 16), hl = lhs_get32(p + 20);
    if (ns > 100000 || hl != ((32 + 8 * (size_t)ns + 4 + 7) & ~(size_t)7) || hl > n)
        return -1;
    size_t crc_at = 32 + 8 * (size_t)ns;
    if (lhs_get32(p + crc_at) != lhs_crc(p, crc_at))
        return -1;
    *seq = lhs_get64(p + 24);
    *kind = (int)lhs_get32(p + 12);
    *nsup = ns;
    *hlen = hl;
    if (sup) {
        *sup = NULL;
        if (ns) {
            *sup = malloc(ns * sizeof(**sup));
            if (!*sup)
                return -1;
            for (uint32_t i = 0; i < ns; i++)
                (*sup)[i] = lhs_get64(p + 32 + 8 * i);
        }
    }
    return 0;
}

/* Reads the header of a segment file by path. -ENOENT style: returns
 * LH_ENOTFOUND if the file is gone, LH_ECORRUPT if unreadable. */
static int read_header_file(const char *path, uint64_t *seq, int *kind, uint32_t *nsup,
                            uint64_t **sup, uint32_t *hlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LH_ENOTFOUND : LH_EIO;
    uint8_t small[4096];
    uint8_t *buf = small;
    ssize_t r = pread(fd, small, sizeof(small), 0);
    int rc = LH_ECORRUPT;
    if (r >= 40) {
        uint32_t ns = lhs_get32(small + 16);
        size_t need = 32 + 8 * (size_t)ns + 8;
        if (ns <= 100000 && need > sizeof(small)) {
            buf = malloc(need);
            if (!buf) {
                close(fd);
                return LH_ENOMEM;
            }
            r = pread(fd, buf, need, 0);
        }
        if (r > 0 && parse_header(buf, (size_t)r, seq, kind, nsup, sup, hlen) == 0)
            rc = 0;
    }
    if (buf != small)
        free(buf);
    close(fd);
    return rc;
}

static int segname_cmp(const void *a, const void *b)
{
    const struct lhs_segname *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int lhs_list_segs(const char *pdir, struct lhs_segname **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(pdir);
    if (!d)
        return errno == ENOENT ? LH_ENOTFOUND : LH_EIO;
    struct lhs_segname *v = NULL;
    size_t nv = 0, cap = 0;
    uint64_t **sups = NULL;
    uint32_t *nsups = NULL;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t seq;
        if (lhs_seg_name_parse(de->d_name, &seq) < 0)
            continue;
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            struct lhs_segname *nn = realloc(v, cap * sizeof(*v));
            uint64_t **ns = realloc(sups, cap * sizeof(*sups));
            if (ns)
                sups = ns;
            uint32_t *nc = ns ? realloc(nsups, cap * sizeof(*nsups)) : NULL;
            if (nn)
                v = nn;
            if (nc)
                nsups = nc;
            if (!nn || !ns || !nc) {
                rc = LH_ENOMEM;
                break;
            }
        }
        memset(&v[nv], 0, sizeof(v[nv]));
        v[nv].seq = seq;
        snprintf(v[nv].name, sizeof(v[nv].name), "%s", de->d_name);
        sups[nv] = NULL;
        nsups[nv] = 0;
        nv++;
    }
    closedir(d);
    if (rc == 0) {
        /* read headers (sorting would separate v from sups: read after) */
        for (size_t i = 0; i < nv; i++) {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", pdir, v[i].name);
            uint64_t seq;
            uint32_t hlen;
            int r = read_header_file(path, &seq, &v[i].kind, &nsups[i], &sups[i], &hlen);
            if (r == LH_ENOTFOUND) {
                rc = LH_EAGAIN;     /* changed under us: the caller lists again */
                break;
            }
            if (r < 0 || seq != v[i].seq) {
                v[i].bad = 1;
                nsups[i] = 0;
            }
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < nv; i++)
            for (uint32_t k = 0; k < nsups[i]; k++)
                for (size_t j = 0; j < nv; j++)
                    if (j != i && v[j].seq == sups[i][k])
                        v[j].dead = 1;
        if (nv)
            qsort(v, nv, sizeof(*v), segname_cmp);
    }
    for (size_t i = 0; i < nv; i++)
        free(sups ? sups[i] : NULL);
    free(sups);
    free(nsups);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = nv;
    return 0;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int lhs_list_days(const char *tdir, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(tdir);
    if (!d)
        return errno == ENOENT ? 0 : LH_EIO;
    int64_t *v = NULL;
    size_t nv = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t day;
        if (lhs_day_parse(de->d_name, &day) < 0)
            continue;
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nn = realloc(v, cap * sizeof(*v));
            if (!nn) {
                free(v);
                closedir(d);
                return LH_ENOMEM;
            }
            v = nn;
        }
        v[nv++] = day;
    }
    closedir(d);
    if (nv)
        qsort(v, nv, sizeof(*v), i64_cmp);
    *out = v;
    *n = nv;
    return 0;
}

int lhs_list_tenants(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : LH_EIO;
    char **v = NULL;
    size_t nv = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        char name[512];
        if (de->d_name[0] == '.' ||
            lhs_tenant_dec(de->d_name, name, sizeof(name)) < 0)
            continue;
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(v, cap * sizeof(*v));
            if (!nn) {
                rc = LH_ENOMEM;
                break;
            }
            v = nn;
        }
        if (!(v[nv] = strdup(name))) {
            rc = LH_ENOMEM;
            break;
        }
        nv++;
    }
    closedir(d);
    if (rc < 0) {
        for (size_t i = 0; i < nv; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *n = nv;
    return 0;
}

/* ---- segments --------------------------------------------------------- */

/* 1 if the file's last 64 bytes are a seal block. */
static int file_sealed(int fd, uint64_t size, uint64_t hlen)
{
    uint8_t h[LHS_BLK_HDR];
    struct lhs_block b;
    if (size < hlen + LHS_BLK_HDR || (size - hlen) % 8)
        return 0;
    if (pread(fd, h, sizeof(h), (off_t)(size - LHS_BLK_HDR)) != (ssize_t)sizeof(h))
        return 0;
    return lhs_block_header(h, sizeof(h), &b) == 1 && (b.flags & LHS_BLK_SEAL);
}

int lhs_seg_open(const char *path, struct lhs_seg **out, struct lh_err *err)
{
    struct lhs_seg *s = calloc(1, sizeof(*s));
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    s->fd = -1;
    s->refs = 1;
    pthread_mutex_init(&s->lock, NULL);
    int rc;
    if (!(s->path = strdup(path))) {
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        goto fail;
    }
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        rc = lh_err_errno(err, errno == ENOENT ? LH_ENOTFOUND : LH_EIO, errno, "open(%s)", path);
        goto fail;
    }
    struct stat st;
    if (fstat(s->fd, &st) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "fstat(%s)", path);
        goto fail;
    }
    uint8_t hdr[4096];
    ssize_t r = pread(s->fd, hdr, sizeof(hdr), 0);
    uint32_t hlen;
    if (r < 40 || parse_header(hdr, (size_t)r, &s->seq, &s->kind, &s->nsuper, &s->supersedes,
                               &hlen) < 0) {
        /* large supersede lists: read the whole header */
        uint32_t ns = r >= 40 ? lhs_get32(hdr + 16) : 0;
        size_t need = 32 + 8 * (size_t)ns + 8;
        uint8_t *big = (r >= 40 && ns <= 100000 && need > sizeof(hdr)) ? malloc(need) : NULL;
        int ok = big && pread(s->fd, big, need, 0) > 0 &&
                 parse_header(big, need, &s->seq, &s->kind, &s->nsuper, &s->supersedes,
                              &hlen) == 0;
        free(big);
        if (!ok) {
            rc = lh_err_set(err, LH_ECORRUPT, "%s: bad segment header", path);
            goto fail;
        }
    }
    s->hdr_len = hlen;
    s->end = hlen;
    s->size = (uint64_t)st.st_size;
    /* a sealed file never grows: map just its size */
    s->map_len = file_sealed(s->fd, s->size, hlen) ? (size_t)s->size : LHS_SEG_MAP_MAX;
    if (s->map_len < s->size)
        s->map_len = (size_t)s->size;
    if (s->map_len == 0)
        s->map_len = 4096;
    s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, s->fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        rc = lh_err_errno(err, LH_EIO, errno, "mmap(%s)", path);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    lhs_seg_unref(s);
    return rc;
}

void lhs_seg_ref(struct lhs_seg *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void lhs_seg_unref(struct lhs_seg *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < s->nblocks; i++) {
        lhs_block_free_meta(s->blocks[i]);
        free(s->blocks[i]);
    }
    free(s->blocks);
    if (s->map)
        munmap(s->map, s->map_len);
    if (s->fd >= 0)
        close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s->supersedes);
    free(s->path);
    free(s);
}

int lhs_seg_scan(struct lhs_seg *s, int check_bodies, lhs_problem_fn problem, void *ctx,
                 struct lh_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (!s->sealed) {
        struct stat st;
        if (fstat(s->fd, &st) < 0) {
            rc = lh_err_errno(err, LH_EIO, errno, "fstat(%s)", s->path);
            goto out;
        }
        s->size = (uint64_t)st.st_size;
        if (s->size > s->map_len)
            s->size = s->map_len;
    }
    uint64_t off = s->end;
    while (off + LHS_BLK_HDR <= s->size && !s->sealed) {
        struct lhs_block hb;
        int r = lhs_block_header(s->map + off, s->size - off, &hb);
        if (r < 0)
            break;      /* being written */
        if (r == 0) {
            /* damaged header: look for the next valid block */
            uint64_t q = off + 8;
            int found = 0;
            for (; q + LHS_BLK_HDR <= s->size; q += 8) {
                if (lhs_get32(s->map + q) != LHS_BLK_MAGIC)
                    continue;
                if (lhs_block_header(s->map + q, s->size - q, &hb) == 1) {
                    found = 1;
                    break;
                }
            }
            if (!found)
                break;
            lh_error("store: %s: damaged block header at offset %llu, skipped to %llu", s->path,
                     (unsigned long long)off, (unsigned long long)q);
            if (problem)
                problem(ctx, s, off, "damaged block header");
            s->corrupt++;
            off = q;
            continue;
        }
        hb.off = off;
        if (hb.flags & LHS_BLK_SEAL) {
            s->sealed = 1;
            off += LHS_BLK_HDR;
            break;
        }
        struct lh_err e2 = { 0 };
        int bad = lhs_block_parse_meta(&hb, &e2) < 0;
        if (!bad && check_bodies && lhs_block_check_body(&hb) < 0) {
            lhs_block_free_meta(&hb);
            bad = 1;
        }
        if (bad) {
            lh_error("store: %s: block at offset %llu skipped: %s", s->path,
                     (unsigned long long)off, e2.code ? e2.msg : "body checksum mismatch");
            if (problem)
                problem(ctx, s, off, e2.code ? e2.msg : "body checksum mismatch");
            s->corrupt++;
            off += hb.len;
            continue;
        }
        if (s->nblocks == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 16;
            struct lhs_block **nv = realloc(s->blocks, ncap * sizeof(*nv));
            if (!nv) {
                lhs_block_free_meta(&hb);
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                goto out;
            }
            s->blocks = nv;
            s->cap = ncap;
        }
        struct lhs_block *nb = malloc(sizeof(*nb));
        if (!nb) {
            lhs_block_free_meta(&hb);
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            goto out;
        }
        *nb = hb;
        s->blocks[s->nblocks++] = nb;
        off += hb.len;
    }
    s->end = off;
    if (s->sealed && s->fd >= 0) {   /* never grows again: the mapping is enough */
        close(s->fd);
        s->fd = -1;
    }
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- catalog ---------------------------------------------------------- */

static void part_free(struct lhs_part *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsegs; i++)
        lhs_seg_unref(p->segs[i]);
    free(p->segs);
    free(p->path);
    free(p);
}

static void tenant_free(struct lhs_tenant *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nparts; i++)
        part_free(t->parts[i]);
    free(t->parts);
    free(t->name);
    free(t->path);
    free(t);
}

void lhs_catalog_free(struct lh_store *s)
{
    for (size_t i = 0; i < s->ntenants; i++)
        tenant_free(s->tenants[i]);
    free(s->tenants);
    s->tenants = NULL;
    s->ntenants = 0;
}

static struct lhs_tenant *tenant_get(struct lh_store *s, const char *name)
{
    for (size_t i = 0; i < s->ntenants; i++)
        if (strcmp(s->tenants[i]->name, name) == 0)
            return s->tenants[i];
    struct lhs_tenant *t = calloc(1, sizeof(*t));
    struct lhs_tenant **nv = realloc(s->tenants, (s->ntenants + 1) * sizeof(*nv));
    if (nv)
        s->tenants = nv;
    char enc[1024];
    lhs_tenant_enc(name, enc, sizeof(enc));
    size_t plen = strlen(s->cfg.dir) + strlen(enc) + 2;
    if (t) {
        t->name = strdup(name);
        t->path = malloc(plen);
    }
    if (!t || !nv || !t->name || !t->path) {
        tenant_free(t);
        return NULL;
    }
    snprintf(t->path, plen, "%s/%s", s->cfg.dir, enc);
    s->tenants[s->ntenants++] = t;
    return t;
}

/* Segment names of a partition directory (no headers read). */
static int list_seq(const char *pdir, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(pdir);
    if (!d)
        return errno == ENOENT ? 0 : LH_EIO;
    uint64_t *v = NULL;
    size_t nv = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t seq;
        if (lhs_seg_name_parse(de->d_name, &seq) < 0)
            continue;
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nn = realloc(v, cap * sizeof(*v));
            if (!nn) {
                free(v);
                closedir(d);
                return LH_ENOMEM;
            }
            v = nn;
        }
        v[nv++] = seq;
    }
    closedir(d);
    *out = v;
    *n = nv;
    return 0;
}

/* Brings one partition's segment list up to date with the directory:
 * known segments are kept, new files opened, replaced ones dropped. */
static int part_refresh(struct lhs_part *p, struct lh_err *err)
{
    uint64_t *seqs = NULL;
    size_t nn = 0;
    struct lhs_seg **nv = NULL;
    size_t nnv = 0;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        free(seqs);
        for (size_t i = 0; i < nnv; i++)
            lhs_seg_unref(nv[i]);
        free(nv);
        nv = NULL;
        nnv = 0;
        if ((rc = list_seq(p->path, &seqs, &nn)) < 0) {
            free(seqs);
            return lh_err_set(err, rc, "list %s failed", p->path);
        }
        nv = calloc(nn ? nn : 1, sizeof(*nv));
        if (!nv) {
            free(seqs);
            return lh_err_set(err, LH_ENOMEM, "out of memory");
        }
        int vanished = 0;
        for (size_t i = 0; i < nn; i++) {
            struct lhs_seg *seg = NULL;
            for (size_t k = 0; k < p->nsegs; k++)
                if (p->segs[k]->seq == seqs[i]) {
                    seg = p->segs[k];
                    lhs_seg_ref(seg);
                    break;
                }
            if (!seg) {
                char path[PATH_MAX];
                struct lh_err e2;
                snprintf(path, sizeof(path), "%s/%016llx.seg", p->path,
                         (unsigned long long)seqs[i]);
                int r = lhs_seg_open(path, &seg, &e2);
                if (r == LH_ENOTFOUND) {
                    vanished = 1;   /* merged away meanwhile: list again */
                    continue;
                }
                if (r < 0) {
                    lh_error("store: %s", e2.msg);
                    continue;
                }
                if (seg->seq != seqs[i]) {
                    lh_error("store: %s: sequence number does not match its name", path);
                    lhs_seg_unref(seg);
                    continue;
                }
            }
            nv[nnv++] = seg;
        }
        if (!vanished || attempt >= 20)
            break;
    }
    free(seqs);
    /* Drop the segments a merged one replaces. Decide for all of them
     * first: releasing one may free it while later checks still read its
     * list of superseded segments. */
    unsigned char *dead = calloc(nnv ? nnv : 1, 1);
    if (!dead) {
        for (size_t i = 0; i < nnv; i++)
            lhs_seg_unref(nv[i]);
        free(nv);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nnv; i++)
        for (size_t j = 0; j < nnv && !dead[i]; j++)
            for (uint32_t k = 0; j != i && k < nv[j]->nsuper && !dead[i]; k++)
                dead[i] = nv[j]->supersedes[k] == nv[i]->seq;
    size_t w = 0;
    for (size_t i = 0; i < nnv; i++) {
        if (dead[i])
            lhs_seg_unref(nv[i]);
        else
            nv[w++] = nv[i];
    }
    free(dead);
    nnv = w;
    for (size_t k = 0; k < p->nsegs; k++)
        lhs_seg_unref(p->segs[k]);
    free(p->segs);
    p->segs = nv;
    p->nsegs = nnv;
    for (size_t i = 0; i < nnv && rc == 0; i++)
        rc = lhs_seg_scan(nv[i], 0, NULL, NULL, err);
    return rc;
}

void lhs_snap_free(struct lhs_snap *snap)
{
    for (size_t i = 0; i < snap->nsegs; i++)
        lhs_seg_unref(snap->segs[i]);
    free(snap->segs);
    free(snap->blocks);
    free(snap->parts);
    memset(snap, 0, sizeof(*snap));
}

int lhs_catalog_snapshot(struct lh_store *s, const char *tenant, int64_t start, int64_t end,
                         struct lhs_snap *snap, struct lh_err *err)
{
    memset(snap, 0, sizeof(*snap));
    int rc = 0;
    int64_t *days = NULL;
    size_t ndays = 0;
    int64_t d0 = lhs_day_of(start), d1 = lhs_day_of(end == INT64_MAX ? end : end - 1);
    pthread_mutex_lock(&s->cat_lock);
    struct lhs_tenant *t = tenant_get(s, tenant);
    if (!t) {
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = lhs_list_days(t->path, &days, &ndays)) < 0) {
        rc = lh_err_set(err, rc, "list %s failed", t->path);
        goto out;
    }
    /* drop partitions that are gone (retention) */
    size_t w = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        int present = 0;
        for (size_t k = 0; k < ndays; k++)
            present |= days[k] == t->parts[i]->day;
        if (present)
            t->parts[w++] = t->parts[i];
        else
            part_free(t->parts[i]);
    }
    t->nparts = w;
    for (size_t k = 0; k < ndays; k++) {
        if (days[k] < d0 || days[k] > d1)
            continue;
        struct lhs_part *p = NULL;
        for (size_t i = 0; i < t->nparts; i++)
            if (t->parts[i]->day == days[k])
                p = t->parts[i];
        if (!p) {
            char ds[11];
            lhs_day_str(days[k], ds);
            size_t plen = strlen(t->path) + 12;
            struct lhs_part **nv = realloc(t->parts, (t->nparts + 1) * sizeof(*nv));
            if (nv)
                t->parts = nv;
            p = calloc(1, sizeof(*p));
            if (p)
                p->path = malloc(plen);
            if (!nv || !p || !p->path) {
                part_free(p);
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                goto out;
            }
            p->day = days[k];
            snprintf(p->path, plen, "%s/%s", t->path, ds);
            t->parts[t->nparts++] = p;
        }
        if ((rc = part_refresh(p, err)) < 0)
            goto out;
        /* take references */
        struct lhs_seg **sv = realloc(snap->segs, (snap->nsegs + p->nsegs + 1) * sizeof(*sv));
        struct lhs_part_ref *pv = realloc(snap->parts, (snap->nparts + 1) * sizeof(*pv));
        if (sv)
            snap->segs = sv;
        if (pv)
            snap->parts = pv;
        if (!sv || !pv) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            goto out;
        }
        snap->parts[snap->nparts].day = p->day;
        snap->parts[snap->nparts].first_seg = snap->nsegs;
        snap->parts[snap->nparts].nsegs = p->nsegs;
        snap->nparts++;
        for (size_t i = 0; i < p->nsegs; i++) {
            lhs_seg_ref(p->segs[i]);
            snap->segs[snap->nsegs++] = p->segs[i];
        }
    }
out:
    pthread_mutex_unlock(&s->cat_lock);
    free(days);
    if (rc < 0) {
        lhs_snap_free(snap);
        return rc;
    }
    /* blocks meeting [start, end) */
    size_t nb = 0;
    for (size_t i = 0; i < snap->nsegs; i++) {
        pthread_mutex_lock(&snap->segs[i]->lock);
        nb += snap->segs[i]->nblocks;
        pthread_mutex_unlock(&snap->segs[i]->lock);
    }
    snap->blocks = malloc((nb ? nb : 1) * sizeof(*snap->blocks));
    if (!snap->blocks) {
        lhs_snap_free(snap);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < snap->nsegs; i++) {
        struct lhs_seg *sg = snap->segs[i];
        pthread_mutex_lock(&sg->lock);
        for (size_t k = 0; k < sg->nblocks && snap->nblocks < nb; k++) {
            const struct lhs_block *b = sg->blocks[k];
            if (b->max_ts >= start && b->min_ts < end)
                snap->blocks[snap->nblocks++] = b;
        }
        pthread_mutex_unlock(&sg->lock);
    }
    return 0;
}
