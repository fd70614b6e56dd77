/* store.c - the embedded log store's handle: configuration, open/close,
 * crash recovery, durable appends with id dedupe, inspect/verify, and the
 * writer's background maintenance thread. See lh/store.h. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lh/log.h"

const struct lh_opt lh_store_opts[] = {
    { LH_OPT_STR, "dir", "./var/store", offsetof(struct lh_store_config, dir),
      "data directory of the store" },
    { LH_OPT_DURATION, "retention", "7d", offsetof(struct lh_store_config, retention_ms),
      "drop a tenant's day partitions this long after the day ended (0: keep)" },
    { LH_OPT_SIZE, "retention_size", "0", offsetof(struct lh_store_config, retention_bytes),
      "per tenant: drop the oldest partitions while the tenant is larger (0: no cap)" },
    { LH_OPT_SIZE, "block_size", "2MiB", offsetof(struct lh_store_config, block_bytes),
      "event bytes per block before it is cut (appends)" },
    { LH_OPT_INT, "block_events", "16384", offsetof(struct lh_store_config, block_events),
      "events per block at most" },
    { LH_OPT_SIZE, "segment_size", "64MiB", offsetof(struct lh_store_config, segment_bytes),
      "a segment is sealed and a new one started past this size" },
    { LH_OPT_DURATION, "merge_interval", "30s",
      offsetof(struct lh_store_config, merge_interval_ms),
      "writer: how often retention and merge run in the background (0: never)" },
    { LH_OPT_SIZE, "merge_min_size", "16MiB", offsetof(struct lh_store_config, merge_min_bytes),
      "sealed segments smaller than this are merged into larger ones" },
    { LH_OPT_INT, "zstd_level", "1", offsetof(struct lh_store_config, zstd_level),
      "zstd level of the blocks appends write (1-19; merge recompresses them)" },
    { LH_OPT_INT, "merge_zstd_level", "9", offsetof(struct lh_store_config, merge_zstd_level),
      "zstd level of merged blocks (1-19): appended data is recompressed once, in the "
      "background" },
    { LH_OPT_SIZE, "merge_block_size", "2MiB",
      offsetof(struct lh_store_config, merge_block_bytes),
      "event bytes per block of merged segments" },
    { LH_OPT_INT, "threads", "2", offsetof(struct lh_store_config, threads),
      "threads that scan blocks for one query" },
    { 0 }
};

void lh_store_config_defaults(struct lh_store_config *cfg)
{
    cfg->retention_ms = 0;
    cfg->retention_bytes = 0;
    cfg->block_bytes = 2u << 20;
    cfg->block_events = 16384;
    cfg->segment_bytes = 64u << 20;
    cfg->merge_interval_ms = 0;
    cfg->merge_min_bytes = 16u << 20;
    cfg->zstd_level = 1;
    cfg->threads = 2;
    cfg->merge_zstd_level = 9;
    cfg->merge_block_bytes = 2u << 20;
}

static void *bg_main(void *arg);

/* ---- writer partitions ------------------------------------------------ */

static void wpart_free(struct lhs_wpart *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    lhs_idx_free(w->idx);
    free(w->tenant);
    free(w->path);
    free(w);
}

static void part_path(const struct lh_store *s, const char *tenant, int64_t day, char *out,
                      size_t outsz)
{
    char enc[1024], ds[11];
    lhs_tenant_enc(tenant, enc, sizeof(enc));
    lhs_day_str(day, ds);
    snprintf(out, outsz, "%s/%s/%s", s->cfg.dir, enc, ds);
}

int lhs_wpart_get(struct lh_store *s, const char *tenant, int64_t day, int create,
                  struct lhs_wpart **out, struct lh_err *err)
{
    for (size_t i = 0; i < s->nwparts; i++) {
        struct lhs_wpart *w = s->wparts[i];
        if (w->day == day && strcmp(w->tenant, tenant) == 0) {
            *out = w;
            return 0;
        }
    }
    char path[PATH_MAX];
    part_path(s, tenant, day, path, sizeof(path));
    struct stat st;
    if (!create && stat(path, &st) < 0)
        return lh_err_set(err, LH_ENOTFOUND, "no partition %s", path);
    if (create) {
        int rc = lhs_mkdirs(path, err);
        if (rc < 0)
            return rc;
    }
    struct lhs_segname *names;
    size_t nn;
    int rc = lhs_list_segs(path, &names, &nn);
    if (rc < 0)
        return lh_err_set(err, rc, "list %s failed", path);
    struct lhs_wpart *w = calloc(1, sizeof(*w));
    struct lhs_wpart **nv = realloc(s->wparts, (s->nwparts + 1) * sizeof(*nv));
    if (nv)
        s->wparts = nv;
    if (w) {
        w->fd = -1;
        w->tenant = strdup(tenant);
        w->path = strdup(path);
    }
    if (!nv || !w || !w->tenant || !w->path) {
        wpart_free(w);
        free(names);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    w->day = day;
    w->next_seq = nn ? names[nn - 1].seq + 1 : 1;
    free(names);
    s->wparts[s->nwparts++] = w;
    *out = w;
    return 0;
}

void lhs_wpart_drop(struct lh_store *s, struct lhs_wpart *w)
{
    for (size_t i = 0; i < s->nwparts; i++) {
        if (s->wparts[i] == w) {
            s->wparts[i] = s->wparts[--s->nwparts];
            wpart_free(w);
            return;
        }
    }
}

/* Reads the id summaries of every live block of the partition. */
static int wpart_load_idx(struct lhs_wpart *w, struct lh_err *err)
{
    if (w->idx)
        return 0;
    struct lhs_idx *x = lhs_idx_new();
    if (!x)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    struct lhs_segname *names;
    size_t nn;
    int rc = lhs_list_segs(w->path, &names, &nn);
    if (rc < 0) {
        lhs_idx_free(x);
        return lh_err_set(err, rc, "list %s failed", w->path);
    }
    for (size_t i = 0; i < nn && rc == 0; i++) {
        if (names[i].dead || names[i].bad)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", w->path, names[i].name);
        struct lhs_seg *sg;
        if ((rc = lhs_seg_open(path, &sg, err)) < 0)
            break;
        rc = lhs_seg_scan(sg, 0, NULL, NULL, err);
        for (size_t k = 0; k < sg->nblocks && rc == 0; k++) {
            const struct lhs_block *b = sg->blocks[k];
            if (lhs_idx_add_summary(x, b->m.ids, b->m.ids_len) < 0)
                lh_error("store: %s@%llu: bad id summary", path, (unsigned long long)b->off);
        }
        lhs_seg_unref(sg);
    }
    free(names);
    if (rc < 0) {
        lhs_idx_free(x);
        return rc;
    }
    w->idx = x;
    return 0;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const char *c = p;
    while (n > 0) {
        ssize_t r = pwrite(fd, c, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Seals and closes the partition's active segment. */
static int wpart_seal(struct lhs_wpart *w, struct lh_err *err)
{
    if (w->fd < 0)
        return 0;
    struct lh_buf b = LH_BUF_INIT;
    int rc = 0;
    if (lhs_block_seal(&b) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    else if (write_all(w->fd, b.data, b.len, w->active_size) < 0 || fdatasync(w->fd) < 0)
        rc = lh_err_errno(err, LH_EIO, errno, "seal segment in %s", w->path);
    lh_buf_free(&b);
    close(w->fd);
    w->fd = -1;
    return rc;
}

/* Creates the next segment: header written and synced under a temporary
 * name, then renamed, so readers never see a partial header. */
static int wpart_new_segment(struct lhs_wpart *w, struct lh_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    uint64_t seq = w->next_seq++;
    snprintf(path, sizeof(path), "%s/%016llx.seg", w->path, (unsigned long long)seq);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return lh_err_errno(err, LH_EIO, errno, "create %s", tmp);
    struct lh_buf b = LH_BUF_INIT;
    int rc = 0;
    if (lhs_seg_header(&b, seq, LHS_SEG_KIND_APPEND, NULL, 0) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    else if (write_all(fd, b.data, b.len, 0) < 0 || fdatasync(fd) < 0 ||
             rename(tmp, path) < 0 || lhs_fsync_dir(w->path) < 0)
        rc = lh_err_errno(err, LH_EIO, errno, "create %s", path);
    if (rc < 0) {
        close(fd);
        unlink(tmp);
    } else {
        w->fd = fd;
        w->active_seq = seq;
        w->active_size = b.len;
        w->active_blocks = 0;
    }
    lh_buf_free(&b);
    return rc;
}

/* Writes encoded blocks (offsets bounds[0..nb]) durably to the partition. */
static int wpart_write(struct lh_store *s, struct lhs_wpart *w, const char *data,
                       const size_t *bounds, size_t nb, struct lh_err *err)
{
    size_t i = 0;
    while (i < nb) {
        if (w->fd >= 0 && w->active_size >= s->cfg.segment_bytes) {
            int rc = wpart_seal(w, err);
            if (rc < 0)
                return rc;
        }
        if (w->fd < 0) {
            int rc = wpart_new_segment(w, err);
            if (rc < 0)
                return rc;
        }
        /* as many blocks as fit under the segment limits */
        size_t j = i + 1;
        uint64_t room = LHS_SEG_MAP_MAX - LHS_BLK_HDR - w->active_size;
        while (j < nb && bounds[j + 1] - bounds[i] <= room &&
               w->active_size + (bounds[j] - bounds[i]) < s->cfg.segment_bytes)
            j++;
        size_t len = bounds[j] - bounds[i];
        if (len > room) {
            if (w->active_size > 4096) {   /* start a new segment and retry */
                int rc = wpart_seal(w, err);
                if (rc < 0)
                    return rc;
                continue;
            }
            return lh_err_set(err, LH_ETOOBIG, "block of %zu bytes too big", len);
        }
        if (write_all(w->fd, data + bounds[i], len, w->active_size) < 0 || fdatasync(w->fd) < 0) {
            /* Leave the segment as it is (a reader may map its tail) and go on
             * in a new one; whatever did reach the disk is found by the id
             * index reload, so a retry stores no duplicates. The next open
             * drops the torn tail. */
            int e = errno;
            close(w->fd);
            w->fd = -1;
            return lh_err_errno(err, LH_EIO, e, "append to %s", w->path);
        }
        w->active_size += len;
        w->active_blocks += (uint32_t)(j - i);
        i = j;
    }
    w->last_append_ms = mono_ms();
    return 0;
}

void lhs_seal_idle(struct lh_store *s, int64_t idle_ms)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&s->wlock);
    for (size_t i = 0; i < s->nwparts; i++) {
        struct lhs_wpart *w = s->wparts[i];
        if (w->fd < 0 || (now - w->last_append_ms < idle_ms && w->active_blocks < 256))
            continue;
        struct lh_err e;
        if (wpart_seal(w, &e) < 0)
            lh_error("%s", e.msg);
    }
    pthread_mutex_unlock(&s->wlock);
}

/* ---- append ----------------------------------------------------------- */

struct aent {
    const struct lh_event *ev;
    const char *tenant;
    int64_t day;
};

static int aent_group_cmp(const void *a, const void *b)
{
    const struct aent *x = a, *y = b;
    int c = x->tenant == y->tenant ? 0 : strcmp(x->tenant, y->tenant);
    if (c)
        return c;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return x->ev < y->ev ? -1 : x->ev > y->ev;
}

static int ev_ts_cmp(const void *a, const void *b)
{
    const struct lh_event *x = *(const struct lh_event *const *)a;
    const struct lh_event *y = *(const struct lh_event *const *)b;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns < y->ts_ns ? -1 : 1;
    return strcmp(x->id, y->id);
}

static const char *tenant_of(const struct lh_event *ev)
{
    return ev->tenant && ev->tenant[0] ? ev->tenant : "default";
}

static int append_group(struct lh_store *s, struct aent *g, size_t n,
                        struct lh_store_append_stats *st, struct lh_err *err)
{
    struct lhs_wpart *w;
    int rc = lhs_wpart_get(s, g[0].tenant, g[0].day, 1, &w, err);
    if (rc < 0 || (rc = wpart_load_idx(w, err)) < 0)
        return rc;
    const struct lh_event **evs = malloc(n * sizeof(*evs));
    size_t *bounds = malloc((n + 1) * sizeof(*bounds));
    struct lhs_ev_lens *lens = malloc(n * sizeof(*lens));
    size_t m = 0, nb = 0;
    if (!evs || !bounds || !lens) {
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        evs[i] = g[i].ev;
    size_t sorted = 1;
    while (sorted < n && ev_ts_cmp(&evs[sorted - 1], &evs[sorted]) <= 0)
        sorted++;
    if (sorted < n)
        qsort(evs, n, sizeof(*evs), ev_ts_cmp);
    /* ids go into the index now; any failure below reloads it from disk */
    for (size_t i = 0; i < n; i++) {
        int added = lhs_idx_add(w->idx, evs[i]->id);
        if (added < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            goto fail;
        }
        if (!added) {
            st->duplicates++;
            continue;
        }
        evs[m] = evs[i];
        lhs_event_lens(evs[i], &lens[m++]);
    }
    if (m == 0)
        goto out;
    lh_buf_reset(&s->wbuf);
    bounds[0] = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        uint64_t bytes = 0;
        while (j < m && (int64_t)(j - i) < s->cfg.block_events && bytes < s->cfg.block_bytes)
            bytes += lens[j++].raw_bytes;
        if ((rc = lhs_block_encode(s->enc, evs + i, lens + i, j - i, &s->wbuf, err)) < 0)
            goto fail;
        bounds[++nb] = s->wbuf.len;
        i = j;
    }
    if ((rc = wpart_write(s, w, s->wbuf.data, bounds, nb, err)) < 0)
        goto fail;   /* some blocks may be durable: the reload finds them */
    st->stored += m;
    goto out;
fail:
    lhs_idx_free(w->idx);
    w->idx = NULL;
out:
    if (s->wbuf.cap > (64u << 20))
        lh_buf_free(&s->wbuf);
    free(evs);
    free(bounds);
    free(lens);
    return rc;
}

int lh_store_append(struct lh_store *s, const struct lh_event *evs, size_t n,
                    struct lh_store_append_stats *stp, struct lh_err *err)
{
    struct lh_store_append_stats st = { 0 };
    if (s->mode != LH_STORE_WRITE)
        return lh_err_set(err, LH_EINVAL, "store: append on a read-only handle");
    struct aent *a = malloc((n ? n : 1) * sizeof(*a));
    if (!a)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct lh_event *ev = &evs[i];
        if (!ev->id || !ev->id[0] || strlen(ev->id) > LH_STORE_ID_MAX ||
            strlen(tenant_of(ev)) > LH_STORE_TENANT_MAX) {
            st.rejected++;
            continue;
        }
        a[m].ev = ev;
        a[m].tenant = tenant_of(ev);
        a[m].day = lhs_day_of(ev->ts_ns);
        m++;
    }
    qsort(a, m, sizeof(*a), aent_group_cmp);
    int rc = 0;
    pthread_mutex_lock(&s->wlock);
    for (size_t i = 0; i < m && rc == 0;) {
        size_t j = i + 1;
        while (j < m && a[j].day == a[i].day && strcmp(a[j].tenant, a[i].tenant) == 0)
            j++;
        rc = append_group(s, a + i, j - i, &st, err);
        i = j;
    }
    pthread_mutex_unlock(&s->wlock);
    free(a);
    if (stp)
        *stp = st;
    return rc;
}

/* ---- recovery --------------------------------------------------------- */

/* Finds the end of the valid blocks of an unsealed segment (mapped at p,
 * size bytes) and whether damaged blocks are followed by valid ones. */
static uint64_t valid_end(const char *path, const uint8_t *p, uint64_t size, uint64_t hlen)
{
    uint64_t off = hlen, good_end = hlen;
    while (off + LHS_BLK_HDR <= size) {
        struct lhs_block b;
        int r = lhs_block_header(p + off, size - off, &b);
        int ok = r == 1;
        if (ok && (b.flags & LHS_BLK_SEAL))
            return off + LHS_BLK_HDR;
        if (ok) {
            b.off = off;
            struct lh_err e;
            ok = lhs_block_parse_meta(&b, &e) == 0;
            if (ok) {
                lhs_block_free_meta(&b);
                ok = lhs_block_check_body(&b) == 0;
            }
        }
        if (ok) {
            off += b.len;
            good_end = off;
            continue;
        }
        /* damaged: a complete valid block later means corruption, not a tail */
        uint64_t q = off + 8;
        for (; q + LHS_BLK_HDR <= size; q += 8) {
            if (lhs_get32(p + q) != LHS_BLK_MAGIC)
                continue;
            struct lhs_block c;
            if (lhs_block_header(p + q, size - q, &c) != 1)
                continue;
            struct lh_err e;
            if (c.flags & LHS_BLK_SEAL)
                break;
            if (lhs_block_parse_meta(&c, &e) == 0) {
                lhs_block_free_meta(&c);
                if (lhs_block_check_body(&c) == 0)
                    break;
            }
        }
        if (q + LHS_BLK_HDR > size)
            return good_end;
        lh_error("store: %s: damaged block at offset %llu kept for verify",
                 path, (unsigned long long)off);
        off = q;
        good_end = q;
    }
    return good_end;
}

/* Writes a sealed copy of blocks [hlen, end) of a segment as segment seq,
 * replacing old_seq. */
static int replace_torn(const char *pdir, int fd, uint64_t old_seq, uint64_t hlen, uint64_t end,
                        uint64_t seq, struct lh_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/%016llx.seg", pdir, (unsigned long long)seq);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct lh_buf b = LH_BUF_INIT;
    int rc = 0, out = -1;
    if (lhs_seg_header(&b, seq, LHS_SEG_KIND_MERGE, &old_seq, 1) < 0 ||
        lh_buf_reserve(&b, end - hlen + LHS_BLK_HDR) < 0) {
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        goto out;
    }
    size_t at = b.len;
    ssize_t r = end > hlen ? pread(fd, b.data + at, end - hlen, (off_t)hlen) : 0;
    if (r != (ssize_t)(end - hlen)) {
        rc = lh_err_errno(err, LH_EIO, errno, "read %s/%016llx.seg", pdir,
                          (unsigned long long)old_seq);
        goto out;
    }
    b.len += (size_t)r;
    struct lhs_block last;
    if (!(b.len >= at + LHS_BLK_HDR &&
          lhs_block_header((uint8_t *)b.data + b.len - LHS_BLK_HDR, LHS_BLK_HDR, &last) == 1 &&
          (last.flags & LHS_BLK_SEAL)))
        lhs_block_seal(&b);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || write_all(out, b.data, b.len, 0) < 0 || fdatasync(out) < 0 ||
        rename(tmp, path) < 0 || lhs_fsync_dir(pdir) < 0)
        rc = lh_err_errno(err, LH_EIO, errno, "write %s", path);
out:
    if (out >= 0)
        close(out);
    if (rc < 0)
        unlink(tmp);
    lh_buf_free(&b);
    return rc;
}

int lhs_recover_partition(struct lh_store *s, const char *pdir, struct lh_err *err)
{
    (void)s;
    DIR *d = opendir(pdir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0) {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", pdir, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
    struct lhs_segname *names;
    size_t nn;
    int rc = lhs_list_segs(pdir, &names, &nn);
    if (rc < 0)
        return lh_err_set(err, rc, "list %s failed", pdir);
    uint64_t next_seq = nn ? names[nn - 1].seq + 1 : 1;
    for (size_t i = 0; i < nn && rc == 0; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", pdir, names[i].name);
        if (names[i].dead) {
            unlink(path);
            continue;
        }
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            rc = lh_err_errno(err, LH_EIO, errno, "open %s", path);
            if (fd >= 0)
                close(fd);
            break;
        }
        if (names[i].bad) {
            /* segments get their name only once the header is synced: damage */
            lh_error("store: %s: bad segment header, left for inspection", path);
            close(fd);
            continue;
        }
        uint64_t size = (uint64_t)st.st_size;
        uint8_t *map = size ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : NULL;
        if (size && map == MAP_FAILED) {
            rc = lh_err_errno(err, LH_EIO, errno, "mmap %s", path);
            close(fd);
            break;
        }
        uint8_t hb[4096];
        ssize_t hr = pread(fd, hb, sizeof(hb), 0);
        uint64_t hlen = hr >= 24 ? lhs_get32(hb + 20) : 0;
        struct lhs_block sb;
        int sealed = size >= hlen + LHS_BLK_HDR && (size - hlen) % 8 == 0 &&
                     lhs_block_header(map + size - LHS_BLK_HDR, LHS_BLK_HDR, &sb) == 1 &&
                     (sb.flags & LHS_BLK_SEAL);
        if (!sealed) {
            uint64_t end = valid_end(path, map, size, hlen);
            munmap(map, size);
            map = NULL;
            if (end < size) {
                /* A reader may have the tail mapped: rather than shrink the file
                 * under it, copy the valid blocks to a new segment that replaces
                 * this one, and unlink it. */
                lh_warn("store: %s: dropping torn tail (%llu bytes at offset %llu)", path,
                        (unsigned long long)(size - end), (unsigned long long)end);
                rc = replace_torn(pdir, fd, names[i].seq, hlen, end, next_seq++, err);
                close(fd);
                if (rc == 0)
                    unlink(path);
                continue;
            }
            struct lhs_block last;
            int has_seal = end >= hlen + LHS_BLK_HDR && pread(fd, hb, LHS_BLK_HDR,
                                                               (off_t)(end - LHS_BLK_HDR)) ==
                           LHS_BLK_HDR && lhs_block_header(hb, LHS_BLK_HDR, &last) == 1 &&
                           (last.flags & LHS_BLK_SEAL);
            struct lh_buf b = LH_BUF_INIT;
            if (!has_seal && (lhs_block_seal(&b) < 0 || write_all(fd, b.data, b.len, end) < 0))
                rc = lh_err_errno(err, LH_EIO, errno, "seal %s", path);
            else if (fdatasync(fd) < 0)
                rc = lh_err_errno(err, LH_EIO, errno, "fsync %s", path);
            lh_buf_free(&b);
        }
        if (map)
            munmap(map, size);
        close(fd);
    }
    free(names);
    if (rc == 0)
        lhs_fsync_dir(pdir);
    return rc;
}

static int rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return unlink(path);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(path);
}

int lhs_rm_tree(const char *path)
{
    return rm_tree(path);
}

static int recover_all(struct lh_store *s, struct lh_err *err)
{
    char **tenants;
    size_t nt;
    int rc = lhs_list_tenants(s->cfg.dir, &tenants, &nt);
    if (rc < 0)
        return lh_err_set(err, rc, "list %s failed", s->cfg.dir);
    for (size_t i = 0; i < nt && rc == 0; i++) {
        char enc[1024], tdir[PATH_MAX];
        lhs_tenant_enc(tenants[i], enc, sizeof(enc));
        snprintf(tdir, sizeof(tdir), "%s/%s", s->cfg.dir, enc);
        /* leftovers of an interrupted retention run */
        DIR *d = opendir(tdir);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d))) {
                if (strncmp(de->d_name, ".drop-", 6) == 0) {
                    char p[PATH_MAX];
                    snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
                    rm_tree(p);
                }
            }
            closedir(d);
        }
        int64_t *days;
        size_t nd;
        if ((rc = lhs_list_days(tdir, &days, &nd)) < 0) {
            rc = lh_err_set(err, rc, "list %s failed", tdir);
            break;
        }
        for (size_t k = 0; k < nd && rc == 0; k++) {
            char pdir[PATH_MAX], ds[11];
            lhs_day_str(days[k], ds);
            snprintf(pdir, sizeof(pdir), "%s/%s", tdir, ds);
            rc = lhs_recover_partition(s, pdir, err);
        }
        free(days);
    }
    for (size_t i = 0; i < nt; i++)
        free(tenants[i]);
    free(tenants);
    return rc;
}

/* ---- open / close ----------------------------------------------------- */

int lh_store_open(struct lh_store **out, const struct lh_store_config *cfg,
                  enum lh_store_mode mode, struct lh_err *err)
{
    if (!cfg || !cfg->dir || !cfg->dir[0])
        return lh_err_set(err, LH_EINVAL, "store: no directory configured");
    struct lh_store *s = calloc(1, sizeof(*s));
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    lh_store_config_defaults(&s->cfg);
    s->cfg.retention_ms = cfg->retention_ms;
    s->cfg.retention_bytes = cfg->retention_bytes;
    s->cfg.merge_interval_ms = cfg->merge_interval_ms;
#define TAKE(f) if (cfg->f > 0) s->cfg.f = cfg->f
    TAKE(block_bytes);
    TAKE(block_events);
    TAKE(segment_bytes);
    TAKE(merge_min_bytes);
    TAKE(zstd_level);
    TAKE(threads);
    TAKE(merge_zstd_level);
    TAKE(merge_block_bytes);
#undef TAKE
    if (s->cfg.segment_bytes > LHS_SEG_MAP_MAX / 2)
        s->cfg.segment_bytes = LHS_SEG_MAP_MAX / 2;
    if (s->cfg.block_bytes > (64u << 20))
        s->cfg.block_bytes = 64u << 20;
    if (s->cfg.merge_block_bytes > (64u << 20))
        s->cfg.merge_block_bytes = 64u << 20;
    if (s->cfg.merge_zstd_level > 19)
        s->cfg.merge_zstd_level = 19;
    if (s->cfg.block_events > 65536)
        s->cfg.block_events = 65536;
    if (s->cfg.zstd_level > 19)
        s->cfg.zstd_level = 19;
    if (s->cfg.threads > 64)
        s->cfg.threads = 64;
    s->mode = mode;
    s->lock_fd = -1;
    pthread_mutex_init(&s->cat_lock, NULL);
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->maint_lock, NULL);
    pthread_mutex_init(&s->bg_mu, NULL);
    pthread_cond_init(&s->bg_cv, NULL);
    int rc = 0;
    size_t dl = strlen(cfg->dir);
    while (dl > 1 && cfg->dir[dl - 1] == '/')
        dl--;
    if (!(s->cfg.dir = strndup(cfg->dir, dl))) {
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        goto fail;
    }
    if (mode == LH_STORE_WRITE) {
        if ((rc = lhs_mkdirs(s->cfg.dir, err)) < 0)
            goto fail;
        char lp[PATH_MAX];
        snprintf(lp, sizeof(lp), "%s/.lock", s->cfg.dir);
        s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s->lock_fd < 0) {
            rc = lh_err_errno(err, LH_EIO, errno, "store: open %s", lp);
            goto fail;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            rc = lh_err_errno(err, LH_EUNAVAIL, errno, "store: %s is locked by another writer",
                              s->cfg.dir);
            goto fail;
        }
        if (!(s->enc = lhs_enc_new((int)s->cfg.zstd_level))) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = recover_all(s, err)) < 0) {
            lh_err_wrap(err, "store: recovery of %s", s->cfg.dir);
            goto fail;
        }
        if (s->cfg.merge_interval_ms > 0) {
            if (pthread_create(&s->bg, NULL, bg_main, s) != 0) {
                rc = lh_err_set(err, LH_ERR, "store: cannot start the merge thread");
                goto fail;
            }
            s->bg_running = 1;
        }
    }
    *out = s;
    return 0;
fail:
    lh_store_close(s);
    return rc;
}

void lh_store_close(struct lh_store *s)
{
    if (!s)
        return;
    if (s->bg_running) {
        pthread_mutex_lock(&s->bg_mu);
        s->bg_stop = 1;
        pthread_cond_signal(&s->bg_cv);
        pthread_mutex_unlock(&s->bg_mu);
        pthread_join(s->bg, NULL);
    }
    for (size_t i = 0; i < s->nwparts; i++) {
        struct lh_err e;
        if (wpart_seal(s->wparts[i], &e) < 0)
            lh_error("%s", e.msg);
        wpart_free(s->wparts[i]);
    }
    free(s->wparts);
    lhs_catalog_free(s);
    lhs_enc_free(s->enc);
    lh_buf_free(&s->wbuf);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->cat_lock);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->maint_lock);
    pthread_mutex_destroy(&s->bg_mu);
    pthread_cond_destroy(&s->bg_cv);
    free(s->cfg.dir);
    free(s);
}

static void *bg_main(void *arg)
{
    struct lh_store *s = arg;
    pthread_mutex_lock(&s->bg_mu);
    while (!s->bg_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (s->cfg.merge_interval_ms % 1000) * 1000000;
        ts.tv_sec += s->cfg.merge_interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &ts);
        if (s->bg_stop)
            break;
        pthread_mutex_unlock(&s->bg_mu);
        struct lh_err e = { 0 };
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (lh_store_retain(s, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, NULL, &e) < 0)
            lh_error("store: retention: %s", e.msg);
        lhs_seal_idle(s, s->cfg.merge_interval_ms);
        if (lh_store_merge(s, NULL, &e) < 0)
            lh_error("store: merge: %s", e.msg);
        pthread_mutex_lock(&s->bg_mu);
    }
    pthread_mutex_unlock(&s->bg_mu);
    return NULL;
}

/* ---- positions -------------------------------------------------------- */

size_t lh_store_pos_encode(const struct lh_store_pos *pos, uint8_t *out)
{
    size_t l = strnlen(pos->id, LH_STORE_ID_MAX);
    out[0] = 1;
    lhs_put64(out + 1, (uint64_t)pos->ts_ns);
    out[9] = (uint8_t)l;
    memcpy(out + 10, pos->id, l);
    lhs_put32(out + 10 + l, lhs_crc(out, 10 + l));
    return 14 + l;
}

int lh_store_pos_decode(const uint8_t *in, size_t len, struct lh_store_pos *pos,
                        struct lh_err *err)
{
    if (len < 14 || in[0] != 1 || in[9] > LH_STORE_ID_MAX || len != 14u + in[9] ||
        lhs_get32(in + 10 + in[9]) != lhs_crc(in, 10u + in[9]))
        return lh_err_set(err, LH_EINVAL, "store: malformed position");
    pos->ts_ns = (int64_t)lhs_get64(in + 1);
    memcpy(pos->id, in + 10, in[9]);
    pos->id[in[9]] = '\0';
    return 0;
}

/* ---- inspect / verify ------------------------------------------------- */

struct vctx {
    struct lh_store_report *r;
    struct lh_store_part_info *pi;
    int fail;
};

static void add_problem(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_problem(struct vctx *v, const char *fmt, ...)
{
    struct lh_buf b = LH_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    int rc = lh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char **nv = rc == 0 ? realloc(v->r->problems, (v->r->nproblems + 1) * sizeof(*nv)) : NULL;
    if (!nv) {
        lh_buf_free(&b);
        v->fail = 1;
        return;
    }
    v->r->problems = nv;
    v->r->problems[v->r->nproblems++] = lh_buf_steal(&b);
}

static void seg_problem(void *ctx, const struct lhs_seg *s, uint64_t off, const char *msg)
{
    struct vctx *v = ctx;
    v->pi->corrupt_blocks++;
    add_problem(v, "%s@%llu: %s", s->path, (unsigned long long)off, msg);
}

/* Adds the segments of partition directory pdir to v->pi. With
 * retry_vanished, a listed segment that no longer exists stops the scan
 * with *vanished set (the caller lists again). */
static int scan_part(struct vctx *v, const char *pdir, int verify, int retry_vanished,
                     int *vanished, struct lh_err *err)
{
    struct lh_store_part_info *pi = v->pi;
    int rc = 0;
    struct lhs_segname *names;
    size_t nn;
    int lr;
    for (int attempt = 0; (lr = lhs_list_segs(pdir, &names, &nn)) == LH_EAGAIN &&
                          attempt < 20; attempt++)
        ;
    if (lr < 0)
        return 0;   /* dropped meanwhile */
    for (size_t j = 0; j < nn && rc == 0; j++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", pdir, names[j].name);
        if (names[j].bad) {
            pi->corrupt_blocks++;
            add_problem(v, "%s: bad segment header", path);
            continue;
        }
        if (names[j].dead)
            continue;
        struct lhs_seg *sg;
        struct lh_err e2;
        int orc = lhs_seg_open(path, &sg, &e2);
        if (orc == LH_ENOTFOUND && retry_vanished) {
            *vanished = 1;
            break;
        }
        if (orc < 0) {
            add_problem(v, "%s", e2.msg);
            continue;
        }
        rc = lhs_seg_scan(sg, verify, verify ? seg_problem : NULL, v, err);
        pi->segments++;
        pi->disk_bytes += sg->size;
        if (!verify)
            pi->corrupt_blocks += sg->corrupt;
        if (verify && sg->end < sg->size)
            add_problem(v, "%s@%llu: %llu bytes after the last complete block", path,
                        (unsigned long long)sg->end,
                        (unsigned long long)(sg->size - sg->end));
        for (size_t b = 0; b < sg->nblocks; b++) {
            const struct lhs_block *bl = sg->blocks[b];
            pi->blocks++;
            pi->events += bl->nrows;
            pi->raw_bytes += bl->raw_bytes;
            if (bl->min_ts < pi->min_ts)
                pi->min_ts = bl->min_ts;
            if (bl->max_ts > pi->max_ts)
                pi->max_ts = bl->max_ts;
            if (verify) {
                struct lhs_bdec d;
                lhs_bdec_init(&d, bl);
                for (int c = 0; c <= LHS_NCOLS; c++) {
                    int dr = c < LHS_NCOLS ? lhs_bdec_load(&d, c) : lhs_bdec_raw(&d);
                    if (dr < 0) {
                        pi->corrupt_blocks++;
                        add_problem(v, "%s@%llu: column %d does not decode", path,
                                    (unsigned long long)bl->off, c);
                        break;
                    }
                }
                lhs_bdec_free(&d);
            }
        }
        lhs_seg_unref(sg);
    }
    free(names);
    return rc;
}

int lh_store_inspect(struct lh_store *s, int verify, struct lh_store_report **out,
                     struct lh_err *err)
{
    struct lh_store_report *r = calloc(1, sizeof(*r));
    if (!r)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    struct vctx v = { r, NULL, 0 };
    char **tenants = NULL;
    size_t nt = 0;
    int rc = lhs_list_tenants(s->cfg.dir, &tenants, &nt);
    if (rc < 0) {
        rc = lh_err_set(err, rc, "list %s failed", s->cfg.dir);
        goto out;
    }
    for (size_t i = 0; i < nt && rc == 0; i++) {
        char enc[1024], tdir[PATH_MAX];
        lhs_tenant_enc(tenants[i], enc, sizeof(enc));
        snprintf(tdir, sizeof(tdir), "%s/%s", s->cfg.dir, enc);
        int64_t *days;
        size_t nd;
        if ((rc = lhs_list_days(tdir, &days, &nd)) < 0) {
            rc = lh_err_set(err, rc, "list %s failed", tdir);
            break;
        }
        for (size_t k = 0; k < nd && rc == 0; k++) {
            struct lh_store_part_info *np = realloc(r->parts, (r->n + 1) * sizeof(*np));
            if (!np) {
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                break;
            }
            r->parts = np;
            struct lh_store_part_info *pi = &r->parts[r->n++];
            memset(pi, 0, sizeof(*pi));
            v.pi = pi;
            snprintf(pi->tenant, sizeof(pi->tenant), "%s", tenants[i]);
            lhs_day_str(days[k], pi->day);
            pi->min_ts = INT64_MAX;
            pi->max_ts = INT64_MIN;
            char pdir[PATH_MAX];
            snprintf(pdir, sizeof(pdir), "%s/%s", tdir, pi->day);
            /* A merge may replace segments between the listing and their
             * reading: a listed segment that is gone means the listing is
             * stale, so the partition is counted again from a new one. */
            for (int pass = 0;; pass++) {
                size_t problems_before = r->nproblems;
                int vanished = 0;
                char tenant_keep[sizeof(pi->tenant)], day_keep[sizeof(pi->day)];
                memcpy(tenant_keep, pi->tenant, sizeof(tenant_keep));
                memcpy(day_keep, pi->day, sizeof(day_keep));
                memset(pi, 0, sizeof(*pi));
                memcpy(pi->tenant, tenant_keep, sizeof(tenant_keep));
                memcpy(pi->day, day_keep, sizeof(day_keep));
                pi->min_ts = INT64_MAX;
                pi->max_ts = INT64_MIN;
                rc = scan_part(&v, pdir, verify, pass < 20, &vanished, err);
                if (rc < 0 || !vanished)
                    break;
                while (r->nproblems > problems_before)
                    free(r->problems[--r->nproblems]);
            }
            r->blocks += pi->blocks;
            r->events += pi->events;
            r->disk_bytes += pi->disk_bytes;
            r->raw_bytes += pi->raw_bytes;
            r->corrupt_blocks += pi->corrupt_blocks;
        }
        free(days);
    }
    if (rc == 0 && v.fail)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
out:
    for (size_t i = 0; i < nt; i++)
        free(tenants[i]);
    free(tenants);
    if (rc < 0) {
        lh_store_report_free(r);
        return rc;
    }
    r->verified = verify;
    *out = r;
    return 0;
}

void lh_store_report_print(const struct lh_store_report *r, FILE *f)
{
    fprintf(f, "%-24s %-10s %8s %8s %12s %14s %14s %7s\n", "tenant", "day", "segments", "blocks",
            "events", "disk_bytes", "raw_bytes", "ratio");
    for (size_t i = 0; i < r->n; i++) {
        const struct lh_store_part_info *p = &r->parts[i];
        fprintf(f, "%-24s %-10s %8llu %8llu %12llu %14llu %14llu %6.1f%%\n", p->tenant, p->day,
                (unsigned long long)p->segments, (unsigned long long)p->blocks,
                (unsigned long long)p->events, (unsigned long long)p->disk_bytes,
                (unsigned long long)p->raw_bytes,
                p->raw_bytes ? 100.0 * (double)p->disk_bytes / (double)p->raw_bytes : 0.0);
    }
    fprintf(f, "total: %llu blocks, %llu events, %llu bytes on disk, %llu raw (%.1f%%)\n",
            (unsigned long long)r->blocks, (unsigned long long)r->events,
            (unsigned long long)r->disk_bytes, (unsigned long long)r->raw_bytes,
            r->raw_bytes ? 100.0 * (double)r->disk_bytes / (double)r->raw_bytes : 0.0);
    for (size_t i = 0; i < r->nproblems; i++)
        fprintf(f, "problem: %s\n", r->problems[i]);
    if (r->verified)
        fprintf(f, "verify: %s (%llu bad blocks)\n", r->nproblems ? "FAILED" : "ok",
                (unsigned long long)r->corrupt_blocks);
}

void lh_store_report_free(struct lh_store_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nproblems; i++)
        free(r->problems[i]);
    free(r->problems);
    free(r->parts);
    free(r);
}
