/* backend_archive.c - the archive (lh/archive.h: a local directory or S3) as
 * a queryd backend, for time ranges older than the hot tier keeps.
 *
 * Objects are listed per tenant and UTC hour (the indexer writes one hour
 * per object); a query reads the hours of its range newest first, only the
 * row groups whose time statistics overlap (Parquet), evaluates the query
 * on every event in memory (match.h: the store's semantics) and keeps the
 * matches of each hour sorted newest first. The objects of an hour are read
 * by up to READERS threads at once (S3 latency and decoding overlap). A search stops as soon as its
 * page is full and, when a total is asked, the count reached its cap;
 * histograms and top values read the whole range. Objects that fail to
 * decode or decrypt are skipped with a logged error, like corrupt store
 * blocks. Events outside their object's hour are left out (ordering across
 * hours relies on the partitioning). With bq->progress (search jobs) each
 * hour is a unit of work: counted when the scan plans it and when it is
 * read, and a cancel stops the scan before the next object. */
#include "backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lh/archive.h"
#include "lh/log.h"
#include "lh/time.h"
#include "match.h"

#define HOUR (3600 * LH_NS_PER_SEC)

static int64_t hour_floor(int64_t ns)
{
    return ns >= 0 ? ns / HOUR * HOUR : (ns - HOUR + 1) / HOUR * HOUR;
}

static int key_cmp(int64_t ts, const char *id, int64_t ts2, const char *id2)
{
    if (ts != ts2)
        return ts < ts2 ? -1 : 1;
    return strcmp(id ? id : "", id2 ? id2 : "");
}

static int ev_desc(const void *a, const void *b)
{
    const struct lh_event *x = *(const struct lh_event *const *)a;
    const struct lh_event *y = *(const struct lh_event *const *)b;
    return -key_cmp(x->ts_ns, x->id, y->ts_ns, y->id);
}

#define READERS 4

/* One reader's matches; their events live in its arena. */
struct reader {
    const struct lh_event **v;
    size_t n, cap;
    struct lh_arena arena;
    int rc;
    struct lh_err err;
};

/* The matches of one hour, newest first (events in the readers' arenas). */
struct hour {
    const struct lh_event **v;
    size_t n, cap;
    struct reader r[READERS];
};

static void hour_free(struct hour *h)
{
    free(h->v);
    for (int i = 0; i < READERS; i++) {
        free(h->r[i].v);
        lh_arena_free(&h->r[i].arena);
    }
    memset(h, 0, sizeof(*h));
}

static int push(const struct lh_event ***v, size_t *n, size_t *cap, const struct lh_event *ev)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        const struct lh_event **nv = realloc(*v, ncap * sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = ev;
    return 0;
}

/* The hours of bq's range, as units of work of its progress. */
static void plan_hours(const struct lh_bquery *bq, int64_t first, int64_t last)
{
    if (bq->progress && last >= first)
        atomic_fetch_add(&bq->progress->total, (uint64_t)((last - first) / HOUR + 1));
}

static int cancelled(const struct lh_bquery *bq, struct lh_err *err)
{
    if (bq->progress && atomic_load(&bq->progress->cancel))
        return lh_err_set(err, LH_ECLOSED, "archive: the query was cancelled");
    if (bq->deadline_ns && lh_time_mono_ns() > bq->deadline_ns)
        return lh_err_set(err, LH_ETIMEDOUT, "archive: time limit passed");
    return 0;
}

static int read_hour_objects(struct lh_archive *a, const struct lh_bquery *bq, int64_t hs,
                             struct hour *h, struct lh_err *err);

/* Reads hour hs of bq's range into h (reset first). */
static int read_hour(struct lh_archive *a, const struct lh_bquery *bq, int64_t hs,
                     struct hour *h, struct lh_err *err)
{
    int rc = read_hour_objects(a, bq, hs, h, err);
    if (rc == 0 && bq->progress)
        atomic_fetch_add(&bq->progress->done, 1);
    return rc;
}

/* What the readers of one hour share. */
struct hour_scan {
    struct lh_archive *a;
    const struct lh_bquery *bq;
    const struct lh_archive_list *list;
    int64_t from, to;
    _Atomic size_t next;        /* the next object to read */
    _Atomic int stop;           /* a reader failed: the others stop */
};

static void read_objects(struct hour_scan *sc, struct reader *r)
{
    const struct lh_bquery *bq = sc->bq;
    for (;;) {
        size_t i = atomic_fetch_add(&sc->next, 1);
        if (i >= sc->list->n || atomic_load(&sc->stop))
            return;
        if ((r->rc = cancelled(bq, &r->err)) < 0)
            break;
        const char *key = sc->list->items[i].key;
        struct lh_event *evs = NULL;
        size_t n = 0;
        struct lh_err rerr = { 0 };
        int rc = lh_archive_read_events_range(sc->a, key, sc->from, sc->to, &r->arena, &evs,
                                              &n, &rerr);
        if (rc == LH_ECORRUPT || rc == LH_EINVAL || rc == LH_ENOTFOUND) {
            lh_error("archive: %s skipped: %s", key, rerr.msg);
            continue;
        }
        if (rc < 0) {
            r->rc = rc;
            r->err = rerr;
            break;
        }
        if (bq->progress)
            atomic_fetch_add(&bq->progress->scanned, n);
        for (size_t k = 0; k < n; k++) {
            const struct lh_event *ev = &evs[k];
            if (ev->ts_ns < sc->from || ev->ts_ns > sc->to || !lh_qmatch(bq->q, ev))
                continue;
            if (push(&r->v, &r->n, &r->cap, ev) < 0) {
                r->rc = lh_err_set(&r->err, LH_ENOMEM, "out of memory");
                break;
            }
        }
        if (r->rc < 0)
            break;
    }
    atomic_store(&sc->stop, 1);
}

struct reader_arg {
    struct hour_scan *sc;
    struct reader *r;
};

static void *reader_main(void *arg)
{
    struct reader_arg *ra = arg;
    read_objects(ra->sc, ra->r);
    return NULL;
}

static int read_hour_objects(struct lh_archive *a, const struct lh_bquery *bq, int64_t hs,
                             struct hour *h, struct lh_err *err)
{
    h->n = 0;
    for (int i = 0; i < READERS; i++) {
        h->r[i].n = 0;
        h->r[i].rc = 0;
        lh_arena_reset(&h->r[i].arena);
    }
    int64_t from = bq->start_ns > hs ? bq->start_ns : hs;
    int64_t to = hs + HOUR - 1;
    if (bq->end_ns && bq->end_ns - 1 < to)
        to = bq->end_ns - 1;
    if (from > to)
        return 0;
    char prefix[LH_ARCHIVE_KEY_MAX];
    if (lh_archive_hour_prefix(prefix, sizeof(prefix), bq->tenant, hs) < 0)
        return lh_err_set(err, LH_EINVAL, "archive: tenant name too long");
    struct lh_archive_list list = { 0 };
    int rc = lh_archive_list(a, prefix, &list, err);
    if (rc < 0)
        return rc;
    struct hour_scan sc = { .a = a, .bq = bq, .list = &list, .from = from, .to = to };
    /* this thread reads too; helpers only when there is more than one object */
    pthread_t th[READERS];
    struct reader_arg ra[READERS];
    int started = 0;
    for (int i = 1; i < READERS && (size_t)i < list.n; i++) {
        ra[i] = (struct reader_arg){ &sc, &h->r[i] };
        if (pthread_create(&th[i], NULL, reader_main, &ra[i]) != 0)
            break;
        started = i;
    }
    read_objects(&sc, &h->r[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    lh_archive_list_free(&list);
    for (int i = 0; i < READERS && rc == 0; i++) {
        if (h->r[i].rc < 0) {
            if (err)
                *err = h->r[i].err;
            rc = h->r[i].rc;
        }
    }
    for (int i = 0; i < READERS && rc == 0; i++)
        for (size_t k = 0; k < h->r[i].n && rc == 0; k++)
            if (push(&h->v, &h->n, &h->cap, h->r[i].v[k]) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    if (rc == 0 && h->n > 1)
        qsort(h->v, h->n, sizeof(*h->v), ev_desc);
    return rc;
}

/* The newest hour of the range (end open: the current one). */
static int64_t last_hour(const struct lh_bquery *bq)
{
    int64_t end = bq->end_ns ? bq->end_ns - 1 : lh_time_now_ns() + HOUR;
    return hour_floor(end);
}

static int copy_event(struct lh_arena *a, const struct lh_event *src, struct lh_event *dst)
{
    *dst = *src;
    const char **f[] = { &dst->id, &dst->tenant, &dst->service, &dst->host, &dst->trace_id,
                         &dst->span_id, &dst->user_id, &dst->message, &dst->stream,
                         &dst->container_id, &dst->k8s_namespace, &dst->k8s_pod,
                         &dst->k8s_container, &dst->region, &dst->file, &dst->raw };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (*f[i] && !(*f[i] = lh_arena_strdup(a, *f[i])))
            return LH_ENOMEM;
    if (src->nmeta) {
        dst->meta = lh_arena_alloc(a, src->nmeta * sizeof(*dst->meta));
        if (!dst->meta)
            return LH_ENOMEM;
        for (size_t i = 0; i < src->nmeta; i++) {
            dst->meta[i].key = lh_arena_strdup(a, src->meta[i].key ? src->meta[i].key : "");
            dst->meta[i].value = lh_arena_strdup(a, src->meta[i].value ? src->meta[i].value
                                                                        : "");
            if (!dst->meta[i].key || !dst->meta[i].value)
                return LH_ENOMEM;
        }
    }
    return 0;
}

static int ar_search(struct lh_backend *b, const struct lh_bquery *bq, struct lh_bresult *out,
                     struct lh_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t limit = bq->limit ? bq->limit : 100;
    out->events = lh_arena_alloc(&out->arena, limit * sizeof(*out->events));
    if (!out->events)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    struct hour h;
    memset(&h, 0, sizeof(h));
    int rc = 0;
    int64_t first = hour_floor(bq->start_ns);
    plan_hours(bq, first, last_hour(bq));
    for (int64_t hs = last_hour(bq); hs >= first && rc == 0; hs -= HOUR) {
        int counting = bq->total_cap && out->total < bq->total_cap;
        if (out->more && !counting)
            break;
        /* an hour wholly newer than the position only adds to the count */
        if (!counting && bq->after && hs > bq->after->ts_ns) {
            if (bq->progress)
                atomic_fetch_add(&bq->progress->done, 1);
            continue;
        }
        if ((rc = read_hour(b->ctx, bq, hs, &h, err)) < 0)
            break;
        for (size_t i = 0; i < h.n && rc == 0; i++) {
            const struct lh_event *ev = h.v[i];
            out->total++;
            if (bq->after && key_cmp(ev->ts_ns, ev->id, bq->after->ts_ns, bq->after->id) >= 0)
                continue;
            if (out->n < limit) {
                if (copy_event(&out->arena, ev, &out->events[out->n]) < 0)
                    rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                else
                    out->n++;
            } else {
                out->more = 1;
            }
        }
    }
    hour_free(&h);
    if (rc < 0) {
        lh_bresult_free(out);
        return rc;
    }
    if (bq->total_cap) {
        out->total_lower_bound = out->total >= bq->total_cap;
    } else {
        out->total = 0;
    }
    return 0;
}

static int ar_histogram(struct lh_backend *b, const struct lh_bquery *bq, int64_t first_ns,
                        int64_t bucket_ns, size_t n, uint64_t *counts, struct lh_err *err)
{
    struct hour h;
    memset(&h, 0, sizeof(h));
    int rc = 0;
    plan_hours(bq, hour_floor(bq->start_ns), last_hour(bq));
    for (int64_t hs = last_hour(bq); hs >= hour_floor(bq->start_ns) && rc == 0; hs -= HOUR) {
        if ((rc = read_hour(b->ctx, bq, hs, &h, err)) < 0)
            break;
        for (size_t i = 0; i < h.n; i++) {
            int64_t ts = h.v[i]->ts_ns;
            if (ts < first_ns)
                continue;
            size_t k = (size_t)((ts - first_ns) / bucket_ns);
            if (k < n)
                counts[k]++;
        }
    }
    hour_free(&h);
    return rc;
}

/* Value counts, open addressing. */
struct vcount {
    char *value;
    uint64_t count;
};

struct vmap {
    struct vcount *v;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t x = 1469598103934665603ull;
    for (; *s; s++)
        x = (x ^ (unsigned char)*s) * 1099511628211ull;
    return x;
}

static int vmap_add(struct vmap *m, struct lh_arena *a, const char *value)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        struct vcount *nv = calloc(ncap, sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->v[i].value)
                continue;
            size_t j = hash_str(m->v[i].value) & (ncap - 1);
            while (nv[j].value)
                j = (j + 1) & (ncap - 1);
            nv[j] = m->v[i];
        }
        free(m->v);
        m->v = nv;
        m->cap = ncap;
    }
    size_t j = hash_str(value) & (m->cap - 1);
    while (m->v[j].value) {
        if (strcmp(m->v[j].value, value) == 0) {
            m->v[j].count++;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (!(m->v[j].value = lh_arena_strdup(a, value)))
        return LH_ENOMEM;
    m->v[j].count = 1;
    m->n++;
    return 0;
}

static int vcount_desc(const void *a, const void *b)
{
    const struct vcount *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->value, y->value);
}

static int ar_top(struct lh_backend *b, const struct lh_bquery *bq, const struct lh_qtop *top,
                  struct lh_btop *out, struct lh_err *err)
{
    memset(out, 0, sizeof(*out));
    struct hour h;
    memset(&h, 0, sizeof(h));
    struct vmap m = { 0 };
    int rc = 0;
    plan_hours(bq, hour_floor(bq->start_ns), last_hour(bq));
    for (int64_t hs = last_hour(bq); hs >= hour_floor(bq->start_ns) && rc == 0; hs -= HOUR) {
        if ((rc = read_hour(b->ctx, bq, hs, &h, err)) < 0)
            break;
        for (size_t i = 0; i < h.n && rc == 0; i++) {
            char buf[24];
            const char *v = lh_qmatch_field(h.v[i], top->field, buf);
            if (!v)
                out->missing++;
            else if (vmap_add(&m, &out->arena, v) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        }
    }
    hour_free(&h);
    if (rc == 0 && m.n) {
        size_t k = 0;
        for (size_t i = 0; i < m.cap; i++)
            if (m.v[i].value)
                m.v[k++] = m.v[i];
        qsort(m.v, k, sizeof(*m.v), vcount_desc);
        size_t keep = k < top->size ? k : top->size;
        out->entries = lh_arena_alloc(&out->arena, keep * sizeof(*out->entries));
        if (!out->entries) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < k; i++) {
                if (i < keep) {
                    out->entries[i].value = m.v[i].value;
                    out->entries[i].count = m.v[i].count;
                } else {
                    out->other += m.v[i].count;
                }
            }
            out->n = keep;
        }
    }
    free(m.v);
    if (rc < 0)
        lh_btop_free(out);
    return rc;
}

static int ar_ready(struct lh_backend *b, struct lh_err *err)
{
    (void)b;
    (void)err;
    return 0;
}

static void ar_destroy(struct lh_backend *b)
{
    lh_archive_close(b->ctx);
    free(b);
}

static const struct lh_backend_ops archive_ops = {
    .name = "archive",
    .search = ar_search,
    .histogram = ar_histogram,
    .top = ar_top,
    .ready = ar_ready,
    .destroy = ar_destroy,
};

int lh_backend_archive_open(const struct lh_archive_config *cfg, struct lh_backend **out,
                            struct lh_err *err)
{
    struct lh_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    struct lh_archive *a = NULL;
    int rc = lh_archive_open(&a, cfg, err);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->ops = &archive_ops;
    b->ctx = a;
    *out = b;
    return 0;
}
