/* store_merge.c - the store's maintenance: retention (whole partitions
 * dropped by age and by tenant size) and merging small sealed segments into
 * large ones with full blocks, without blocking readers or the writer. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lh/log.h"

#define NS_PER_DAY 86400000000000ll

static uint64_t dir_bytes(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

static int drop_partition(struct lh_store *s, const char *tenant, const char *tdir, int64_t day,
                          struct lh_err *err)
{
    char ds[11], pdir[PATH_MAX], gone[PATH_MAX];
    lhs_day_str(day, ds);
    snprintf(pdir, sizeof(pdir), "%s/%s", tdir, ds);
    snprintf(gone, sizeof(gone), "%s/.drop-%s", tdir, ds);
    pthread_mutex_lock(&s->wlock);
    for (size_t i = 0; i < s->nwparts; i++) {
        struct lhs_wpart *w = s->wparts[i];
        if (w->day == day && strcmp(w->tenant, tenant) == 0) {
            lhs_wpart_drop(s, w);
            break;
        }
    }
    lhs_rm_tree(gone);
    int rc = 0;
    if (rename(pdir, gone) < 0)
        rc = lh_err_errno(err, LH_EIO, errno, "store: rename %s", pdir);
    else
        lhs_fsync_dir(tdir);
    pthread_mutex_unlock(&s->wlock);
    if (rc == 0)
        lhs_rm_tree(gone);
    return rc;
}

int lh_store_retain(struct lh_store *s, int64_t now_ns, struct lh_store_maint_stats *st,
                    struct lh_err *err)
{
    struct lh_store_maint_stats dummy = { 0 };
    if (!st)
        st = &dummy;
    if (s->mode != LH_STORE_WRITE)
        return lh_err_set(err, LH_EINVAL, "store: retention on a read-only handle");
    if (!s->cfg.retention_ms && !s->cfg.retention_bytes)
        return 0;
    pthread_mutex_lock(&s->maint_lock);
    char **tenants;
    size_t nt;
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
        uint64_t *sizes = calloc(nd ? nd : 1, sizeof(*sizes));
        uint8_t *drop = calloc(nd ? nd : 1, 1);
        if (!sizes || !drop) {
            free(sizes);
            free(drop);
            free(days);
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            break;
        }
        uint64_t total = 0;
        for (size_t k = 0; k < nd; k++) {
            char ds[11], pdir[PATH_MAX];
            lhs_day_str(days[k], ds);
            snprintf(pdir, sizeof(pdir), "%s/%s", tdir, ds);
            sizes[k] = dir_bytes(pdir);
            int64_t ends = (days[k] + 1) * NS_PER_DAY;
            if (s->cfg.retention_ms > 0 && ends + s->cfg.retention_ms * 1000000 <= now_ns)
                drop[k] = 1;
            else
                total += sizes[k];
        }
        if (s->cfg.retention_bytes) {
            for (size_t k = 0; k + 1 < nd && total > s->cfg.retention_bytes; k++) {
                if (drop[k])
                    continue;
                drop[k] = 1;
                total -= sizes[k];
            }
        }
        for (size_t k = 0; k < nd && rc == 0; k++) {
            if (!drop[k])
                continue;
            rc = drop_partition(s, tenants[i], tdir, days[k], err);
            if (rc == 0) {
                char ds[11];
                lhs_day_str(days[k], ds);
                lh_info("store: retention dropped %s/%s (%llu bytes)", tenants[i], ds,
                        (unsigned long long)sizes[k]);
                st->partitions_dropped++;
                st->bytes_dropped += sizes[k];
            }
        }
        free(sizes);
        free(drop);
        free(days);
    }
    for (size_t i = 0; i < nt; i++)
        free(tenants[i]);
    free(tenants);
out:
    pthread_mutex_unlock(&s->maint_lock);
    return rc;
}

/* ---- merge ------------------------------------------------------------ */

struct mw {                 /* merge output being written */
    struct lh_store *s;
    struct lhs_enc_ctx *enc;
    int fd;
    uint64_t size;
    struct lh_buf buf;
    struct lh_arena arena;
    struct lh_event *evs;
    const struct lh_event **ptrs;
    size_t n, cap;
    uint64_t bytes;
};

static int ptr_ts_cmp(const void *a, const void *b)
{
    const struct lh_event *x = *(const struct lh_event *const *)a;
    const struct lh_event *y = *(const struct lh_event *const *)b;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns < y->ts_ns ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int mw_flush(struct mw *m, struct lh_err *err)
{
    if (m->n == 0)
        return 0;
    for (size_t i = 0; i < m->n; i++)
        m->ptrs[i] = &m->evs[i];
    qsort(m->ptrs, m->n, sizeof(*m->ptrs), ptr_ts_cmp);
    lh_buf_reset(&m->buf);
    int rc = lhs_block_encode(m->enc, m->ptrs, NULL, m->n, &m->buf, err);
    if (rc < 0)
        return rc;
    const char *p = m->buf.data;
    size_t left = m->buf.len;
    while (left > 0) {
        ssize_t w = pwrite(m->fd, p, left, (off_t)m->size);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return lh_err_errno(err, LH_EIO, errno, "merge: write");
        }
        p += w;
        left -= (size_t)w;
        m->size += (uint64_t)w;
    }
    m->n = 0;
    m->bytes = 0;
    lh_arena_reset(&m->arena);
    return 0;
}

static int mw_add(struct mw *m, struct lhs_bdec *d, uint32_t row, const char *tenant,
                  struct lh_err *err)
{
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        struct lh_event *ne = realloc(m->evs, ncap * sizeof(*ne));
        if (ne)
            m->evs = ne;
        const struct lh_event **np = realloc(m->ptrs, ncap * sizeof(*np));
        if (np)
            m->ptrs = np;
        if (!ne || !np)
            return lh_err_set(err, LH_ENOMEM, "out of memory");
        m->cap = ncap;
    }
    int rc = lhs_bdec_event(d, row, tenant, &m->arena, &m->evs[m->n]);
    if (rc < 0)
        return lh_err_set(err, rc, "merge: block at %llu: %s", (unsigned long long)d->b->off,
                          lh_errcode_name(rc));
    m->bytes += lhs_event_raw_bytes(&m->evs[m->n]);
    m->n++;
    if ((int64_t)m->n >= m->s->cfg.block_events || m->bytes >= m->s->cfg.merge_block_bytes)
        return mw_flush(m, err);
    return 0;
}

static int merge_group(struct lh_store *s, const char *tenant, int64_t day, const char *pdir,
                       struct lhs_seg **segs, size_t n, struct lh_store_maint_stats *st,
                       struct lh_err *err)
{
    struct lhs_wpart *w;
    pthread_mutex_lock(&s->wlock);
    int rc = lhs_wpart_get(s, tenant, day, 0, &w, err);
    uint64_t seq = rc == 0 ? w->next_seq++ : 0;
    pthread_mutex_unlock(&s->wlock);
    if (rc < 0)
        return rc;
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(final, sizeof(final), "%s/%016llx.seg", pdir, (unsigned long long)seq);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    struct mw m;
    memset(&m, 0, sizeof(m));
    m.s = s;
    m.fd = -1;
    uint64_t *sup = malloc(n * sizeof(*sup));
    m.enc = lhs_enc_new((int)s->cfg.merge_zstd_level);
    if (!sup || !m.enc) {
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        sup[i] = segs[i]->seq;
    m.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (m.fd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "merge: create %s", tmp);
        goto out;
    }
    if ((rc = lhs_seg_header(&m.buf, seq, LHS_SEG_KIND_MERGE, sup, (uint32_t)n)) < 0) {
        rc = lh_err_set(err, rc, "out of memory");
        goto out;
    }
    if (pwrite(m.fd, m.buf.data, m.buf.len, 0) != (ssize_t)m.buf.len) {
        rc = lh_err_errno(err, LH_EIO, errno, "merge: write %s", tmp);
        goto out;
    }
    m.size = m.buf.len;
    for (size_t i = 0; i < n && rc == 0; i++) {
        for (size_t b = 0; b < segs[i]->nblocks && rc == 0; b++) {
            struct lhs_bdec d;
            lhs_bdec_init(&d, segs[i]->blocks[b]);
            for (uint32_t r = 0; r < d.n && rc == 0; r++)
                rc = mw_add(&m, &d, r, tenant, err);
            lhs_bdec_free(&d);
        }
    }
    if (rc == 0)
        rc = mw_flush(&m, err);
    if (rc < 0)
        goto out;
    lh_buf_reset(&m.buf);
    if (lhs_block_seal(&m.buf) < 0 ||
        pwrite(m.fd, m.buf.data, m.buf.len, (off_t)m.size) != (ssize_t)m.buf.len ||
        fdatasync(m.fd) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "merge: finish %s", tmp);
        goto out;
    }
    close(m.fd);
    m.fd = -1;
    /* switch: the rename makes the merged segment live and its inputs dead */
    pthread_mutex_lock(&s->wlock);
    if (rename(tmp, final) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "merge: rename %s", tmp);
    } else {
        lhs_fsync_dir(pdir);
        for (size_t i = 0; i < n; i++)
            unlink(segs[i]->path);
        lhs_fsync_dir(pdir);
    }
    pthread_mutex_unlock(&s->wlock);
    if (rc == 0) {
        st->segments_merged += n;
        st->segments_written++;
    }
out:
    if (m.fd >= 0)
        close(m.fd);
    if (rc < 0)
        unlink(tmp);
    lhs_enc_free(m.enc);
    lh_buf_free(&m.buf);
    lh_arena_free(&m.arena);
    free(m.evs);
    free(m.ptrs);
    free(sup);
    return rc;
}

static int merge_partition(struct lh_store *s, const char *tenant, int64_t day,
                           const char *pdir, struct lh_store_maint_stats *st, struct lh_err *err)
{
    uint64_t active = 0;
    int has_active = 0;
    pthread_mutex_lock(&s->wlock);
    for (size_t i = 0; i < s->nwparts; i++) {
        struct lhs_wpart *w = s->wparts[i];
        if (w->day == day && strcmp(w->tenant, tenant) == 0 && w->fd >= 0) {
            active = w->active_seq;
            has_active = 1;
        }
    }
    pthread_mutex_unlock(&s->wlock);
    struct lhs_segname *names;
    size_t nn;
    int rc = lhs_list_segs(pdir, &names, &nn);
    if (rc == LH_EAGAIN || rc == LH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return lh_err_set(err, rc, "list %s failed", pdir);
    struct lhs_seg **cand = calloc(nn ? nn : 1, sizeof(*cand));
    uint8_t *cand_small = calloc(nn ? nn : 1, 1);
    size_t nc = 0;
    if (!cand || !cand_small) {
        free(cand);
        free(cand_small);
        free(names);
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nn; i++) {
        if (names[i].dead || names[i].bad || (has_active && names[i].seq == active))
            continue;
        char path[PATH_MAX];
        struct lh_err e2;
        struct lhs_seg *sg;
        snprintf(path, sizeof(path), "%s/%s", pdir, names[i].name);
        struct stat fst;
        if (names[i].kind == LHS_SEG_KIND_MERGE && stat(path, &fst) == 0 &&
            (uint64_t)fst.st_size >= s->cfg.merge_min_bytes)
            continue;   /* a large merged segment: full blocks already */
        if (lhs_seg_open(path, &sg, &e2) < 0)
            continue;
        if (lhs_seg_scan(sg, 0, NULL, NULL, &e2) < 0 || !sg->sealed || sg->corrupt ||
            sg->end != sg->size) {
            lhs_seg_unref(sg);   /* damaged or still open: leave it alone */
            continue;
        }
        uint64_t raw = 0, rows = 0;
        for (size_t b = 0; b < sg->nblocks; b++) {
            raw += sg->blocks[b]->raw_bytes;
            rows += sg->blocks[b]->nrows;
        }
        int small_seg = sg->size < s->cfg.merge_min_bytes;
        int small_blocks = sg->nblocks > 1 && raw / sg->nblocks < s->cfg.merge_block_bytes / 4 &&
                           rows / sg->nblocks < (uint64_t)s->cfg.block_events / 4;
        /* appended segments are rewritten once, alone if need be: their
         * blocks were compressed fast, at the append level */
        int appended = names[i].kind == LHS_SEG_KIND_APPEND;
        if (sg->nblocks == 0 || small_seg || small_blocks || appended) {
            cand_small[nc] = (uint8_t)(small_blocks || appended);
            cand[nc++] = sg;
        } else {
            lhs_seg_unref(sg);
        }
    }
    free(names);
    /* groups of neighbours up to segment_size; a lone segment only when
     * its blocks are small or were appended (else merging would rewrite it
     * every pass) */
    for (size_t i = 0; i < nc && rc == 0;) {
        size_t j = i;
        uint64_t bytes = 0;
        while (j < nc && (j == i || bytes + cand[j]->size <= s->cfg.segment_bytes)) {
            bytes += cand[j]->size;
            j++;
        }
        if (j - i >= 2 || cand_small[i]) {
            rc = merge_group(s, tenant, day, pdir, cand + i, j - i, st, err);
            if (rc == LH_ECORRUPT) {   /* a damaged block: leave these for verify */
                lh_error("store: merge of %s skipped: %s", pdir, err ? err->msg : "");
                rc = 0;
            }
        }
        i = j;
    }
    free(cand_small);
    for (size_t i = 0; i < nc; i++)
        lhs_seg_unref(cand[i]);
    free(cand);
    return rc;
}

int lh_store_merge(struct lh_store *s, struct lh_store_maint_stats *st, struct lh_err *err)
{
    struct lh_store_maint_stats dummy = { 0 };
    if (!st)
        st = &dummy;
    if (s->mode != LH_STORE_WRITE)
        return lh_err_set(err, LH_EINVAL, "store: merge on a read-only handle");
    pthread_mutex_lock(&s->maint_lock);
    char **tenants;
    size_t nt;
    int rc = lhs_list_tenants(s->cfg.dir, &tenants, &nt);
    if (rc < 0) {
        pthread_mutex_unlock(&s->maint_lock);
        return lh_err_set(err, rc, "list %s failed", s->cfg.dir);
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
            char ds[11], pdir[PATH_MAX];
            lhs_day_str(days[k], ds);
            snprintf(pdir, sizeof(pdir), "%s/%s", tdir, ds);
            rc = merge_partition(s, tenants[i], days[k], pdir, st, err);
        }
        free(days);
    }
    for (size_t i = 0; i < nt; i++)
        free(tenants[i]);
    free(tenants);
    pthread_mutex_unlock(&s->maint_lock);
    return rc;
}
