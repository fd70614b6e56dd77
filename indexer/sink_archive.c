/* sink_archive.c - the archive sink: durable local staging, uploads of whole
 * objects per tenant and hour (see sink_archive.h). */
#include "sink_archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lh/archive_format.h"
#include "lh/backoff.h"
#include "lh/log.h"
#include "lh/time.h"
#include "lh/uuid.h"

#define OFF(f) offsetof(struct lh_sink_archive_config, f)

const struct lh_opt lh_sink_archive_opts[] = {
    { LH_OPT_SECTION, "backend", NULL, OFF(backend),
      "where objects go: type dir|s3, format parquet|ndjson, dir{path}, s3{...}", 0,
      lh_archive_opts },
    { LH_OPT_STR, "staging_dir", "./var/archive-staging", OFF(staging_dir),
      "local directory of the staging files (durable before the bus position moves)" },
    { LH_OPT_DURATION, "rollover", "60s", OFF(rollover_ms),
      "an object is cut at most this long after its first event was staged" },
    { LH_OPT_SIZE, "object_size", "32MiB", OFF(object_bytes),
      "...or once this many staged bytes (uncompressed) are in it" },
    { LH_OPT_SIZE, "max_staging", "2GiB", OFF(max_staging_bytes),
      "staged bytes not yet uploaded; past it writes fail with EFULL and the pipeline pauses" },
    { LH_OPT_STR, "region", "", OFF(region),
      "region in object keys (empty: the region of the object's first event)" },
    { LH_OPT_STR, "host", "", OFF(host), "host in object keys (empty: this machine's name)" },
    { LH_OPT_DURATION, "shutdown_upload", "10s", OFF(shutdown_upload_ms),
      "at shutdown, how long to keep uploading; the rest stays staged for the next start" },
    { LH_OPT_DURATION, "replay_window", "10m", OFF(replay_window_ms),
      "after a start with staged files left, events already staged that the bus delivers "
      "again within this time are not staged twice" },
    { 0 }
};

struct stage {
    struct stage *next;
    char *tenant;
    char *region;
    int64_t hour_ns;
    char path[PATH_MAX];
    int fd;
    uint64_t bytes;              /* on disk */
    int64_t opened_ns;           /* monotonic */
    int fresh;                   /* created by the write in progress */
    struct lh_buf pend;          /* what the write in progress appends */
};

struct sealed {
    struct sealed *next;
    char *path;
    uint64_t bytes;
};

/* 128-bit fingerprints of event ids, open addressing (0,0 = empty). */
struct idset {
    uint64_t (*v)[2];
    size_t cap, n;
};

#define IDSET_MAX (4u << 20)   /* ids remembered at most (64 MiB of table) */

static void id_fp(const char *id, uint64_t fp[2])
{
    uint64_t a = 1469598103934665603ull, b = 0x9e3779b97f4a7c15ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        a = (a ^ *p) * 1099511628211ull;
        b = (b ^ *p) * 0xff51afd7ed558ccdull;
        b ^= b >> 29;
    }
    fp[0] = a | 1;   /* never the empty slot */
    fp[1] = b;
}

static int idset_has(const struct idset *s, const uint64_t fp[2])
{
    if (!s->n)
        return 0;
    for (size_t i = fp[1] & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->v[i][0])
            return 0;
        if (s->v[i][0] == fp[0] && s->v[i][1] == fp[1])
            return 1;
    }
}

static int idset_add(struct idset *s, const uint64_t fp[2])
{
    if (2 * (s->n + 1) > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t(*nv)[2] = calloc(ncap, sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->v[i][0])
                continue;
            size_t j = s->v[i][1] & (ncap - 1);
            while (nv[j][0])
                j = (j + 1) & (ncap - 1);
            nv[j][0] = s->v[i][0];
            nv[j][1] = s->v[i][1];
        }
        free(s->v);
        s->v = nv;
        s->cap = ncap;
    }
    size_t j = fp[1] & (s->cap - 1);
    while (s->v[j][0]) {
        if (s->v[j][0] == fp[0] && s->v[j][1] == fp[1])
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->v[j][0] = fp[0];
    s->v[j][1] = fp[1];
    s->n++;
    return 0;
}

static void idset_free(struct idset *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

struct archive_sink {
    struct lh_sink base;
    struct lh_archive *ar;
    enum lh_archive_format fmt;
    int zstd_level, encrypt;
    char *dir, *region, *host;
    int dirfd;
    int64_t rollover_ns, shutdown_ms;
    uint64_t object_bytes, max_staging;

    struct idset replayed;       /* pipeline thread: ids staged by an earlier run */
    int64_t replay_until_ns;     /* monotonic: forget them after this */
    uint64_t replay_skipped;
    struct stage *open;          /* pipeline thread */
    uint64_t open_bytes;         /* atomic: read by stats */
    size_t nopen;                /* atomic */

    pthread_mutex_t mu;          /* the queue, the uploader's state */
    pthread_cond_t cv;
    struct sealed *qh, *qt;
    size_t nq;
    uint64_t qbytes;
    int stop;
    int64_t deadline_ns;         /* monotonic: the uploader gives up after it */
    int failing;
    char why[300];
    uint64_t objects, errors;
    pthread_t thread;
    int started;

    struct lh_counter *c_objects, *c_bytes, *c_errors, *c_replay;
    struct lh_histogram *h_upload;
    struct lh_gauge *g_staged;
};

static void update_gauge(struct archive_sink *a);

static int64_t mono_ns(void) { return lh_time_mono_ns(); }

/* ---- the upload queue ---- */

static int enqueue(struct archive_sink *a, const char *path, uint64_t bytes)
{
    struct sealed *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return LH_ENOMEM;
    }
    s->bytes = bytes;
    pthread_mutex_lock(&a->mu);
    if (a->qt)
        a->qt->next = s;
    else
        a->qh = s;
    a->qt = s;
    a->nq++;
    a->qbytes += bytes;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static void stage_free(struct stage *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->tenant);
    free(s->region);
    lh_buf_free(&s->pend);
    free(s);
}

/* Closes a staging file and hands it to the uploader. */
static void seal(struct archive_sink *a, struct stage *s)
{
    struct stage **pp = &a->open;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    __atomic_sub_fetch(&a->open_bytes, s->bytes, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&a->nopen, 1, __ATOMIC_RELAXED);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (enqueue(a, s->path, s->bytes) < 0)   /* found again at the next start */
        lh_error("archive sink %s: out of memory; %s stays staged", a->base.name, s->path);
    stage_free(s);
}

/* ---- upload ---- */

static int cmp_ts(const void *x, const void *y)
{
    const struct lh_event *a = x, *b = y;
    return a->ts_ns < b->ts_ns ? -1 : a->ts_ns > b->ts_ns;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The uuid in "<32 hex>.stage". */
static int uuid_of_path(const char *path, uint8_t out[16])
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (strlen(b) != 38 || strcmp(b + 32, ".stage") != 0)
        return -1;
    for (int i = 0; i < 16; i++) {
        int h = hexval(b[2 * i]), l = hexval(b[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return 0;
}

static int read_file(const char *path, struct lh_buf *out, struct lh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lh_err_errno(err, errno == ENOENT ? LH_ENOTFOUND : LH_EIO, errno, "open(%s)",
                            path);
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? lh_err_errno(err, LH_EIO, errno, "fstat(%s)", path) : 0;
    if (rc == 0 && lh_buf_reserve(out, (size_t)st.st_size + 1) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    while (rc == 0) {
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = lh_err_errno(err, LH_EIO, errno, "read(%s)", path);
        if (n <= 0)
            break;
        out->len += (size_t)n;
        if (out->len == out->cap && lh_buf_reserve(out, 65536) < 0)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    close(fd);
    return rc;
}

/* Uploads one staging file and removes it. */
static int upload(struct archive_sink *a, const char *path, uint64_t *obj_bytes,
                  struct lh_err *err)
{
    struct lh_buf data = LH_BUF_INIT, body = LH_BUF_INIT;
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event *evs = NULL;
    json_t *hdr = NULL;
    uint8_t uuid[16];
    int rc = read_file(path, &data, err);
    if (rc == LH_ENOTFOUND) {
        rc = 0;   /* uploaded and removed already */
        goto out;
    }
    if (rc < 0)
        goto out;
    if (uuid_of_path(path, uuid) < 0) {
        rc = lh_err_set(err, LH_EINVAL, "%s: not a staging file name", path);
        goto out;
    }
    const char *p = data.data ? data.data : "", *end = p + data.len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    hdr = nl ? json_loadb(p, (size_t)(nl - p), 0, NULL) : NULL;
    const char *tenant = json_string_value(json_object_get(hdr, "tenant"));
    const char *region = json_string_value(json_object_get(hdr, "region"));
    int64_t hour_ns = (int64_t)json_integer_value(json_object_get(hdr, "hour_ns"));
    if (!tenant) {
        /* A crash before the header was durable: nothing in it was acknowledged. */
        lh_warn("archive sink %s: %s has no header: removed", a->base.name, path);
        goto remove;
    }
    size_t n = 0, cap = 0, bad = 0;
    for (p = nl + 1; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) {
            bad++;   /* a torn last line: its write never returned */
            break;
        }
        if (e > p) {
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                struct lh_event *v = realloc(evs, cap * sizeof(*v));
                if (!v) {
                    rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                    goto out;
                }
                evs = v;
            }
            struct lh_err de = { 0 };
            if (lh_event_decode(p, (size_t)(e - p), &arena, &evs[n], &de) == 0)
                n++;
            else
                bad++;
        }
        p = e + 1;
    }
    if (bad)
        lh_warn("archive sink %s: %s: %zu unreadable line(s) skipped", a->base.name, path, bad);
    if (n > 0) {
        qsort(evs, n, sizeof(*evs), cmp_ts);
        const char *rg = a->region[0] ? a->region : region ? region : "";
        char key[LH_ARCHIVE_KEY_MAX];
        if ((rc = lh_archive_key(key, sizeof(key), tenant, hour_ns, rg, a->host, uuid, a->fmt,
                                 a->encrypt)) < 0) {
            rc = lh_err_set(err, LH_EINVAL, "%s: cannot make an object key", path);
            goto out;
        }
        if ((rc = lh_archive_format_write(a->fmt, evs, n, a->zstd_level, &body, err)) < 0 ||
            (rc = lh_archive_put(a->ar, key, body.data ? body.data : "", body.len, err)) < 0) {
            lh_err_wrap(err, "%s", key);
            goto out;
        }
        *obj_bytes = body.len;
    }
remove:
    if (unlink(path) < 0 && errno != ENOENT) {
        rc = lh_err_errno(err, LH_EIO, errno, "unlink(%s)", path);
        goto out;
    }
    fsync(a->dirfd);
out:
    json_decref(hdr);
    free(evs);
    lh_arena_free(&arena);
    lh_buf_free(&data);
    lh_buf_free(&body);
    return rc;
}

static void *uploader_main(void *arg)
{
    struct archive_sink *a = arg;
    struct lh_backoff bo;
    lh_backoff_init(&bo, 200, 30000);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->qh && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->qh || (a->stop && mono_ns() >= a->deadline_ns))
            break;
        struct sealed *s = a->qh;
        pthread_mutex_unlock(&a->mu);
        struct lh_err err = { 0 };
        uint64_t obj = 0;
        int64_t t0 = mono_ns();
        int rc = upload(a, s->path, &obj, &err);
        lh_histogram_observe(a->h_upload, (double)(mono_ns() - t0) / 1e9);
        pthread_mutex_lock(&a->mu);
        if (rc == 0) {
            a->qh = s->next;
            if (!a->qh)
                a->qt = NULL;
            a->nq--;
            a->qbytes -= s->bytes;
            if (obj) {
                a->objects++;
                lh_counter_add(a->c_objects, 1);
                lh_counter_add(a->c_bytes, obj);
            }
            if (a->failing)
                lh_info("archive sink %s: uploads work again", a->base.name);
            a->failing = 0;
            lh_backoff_reset(&bo);
            free(s->path);
            free(s);
            pthread_mutex_unlock(&a->mu);
            update_gauge(a);
            pthread_mutex_lock(&a->mu);
            continue;
        }
        a->errors++;
        lh_counter_add(a->c_errors, 1);
        if (!a->failing)
            lh_warn("archive sink %s: upload of %s failed, retrying: %s", a->base.name,
                    s->path, err.msg);
        a->failing = 1;
        snprintf(a->why, sizeof(a->why), "%s", err.msg);
        /* Wait the backoff (a stop wakes us; then the deadline decides). */
        uint32_t ms = lh_backoff_next_ms(&bo);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int was_stopping = a->stop;
        while (a->stop == was_stopping &&
               pthread_cond_timedwait(&a->cv, &a->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- write ---- */

static int64_t hour_of(int64_t ns)
{
    const int64_t h = 3600LL * 1000000000LL;
    int64_t q = ns / h;
    if (ns % h < 0)
        q--;
    return q * h;
}

static struct stage *stage_for(struct archive_sink *a, const struct lh_event *ev,
                               struct lh_err *err)
{
    const char *tenant = ev->tenant && ev->tenant[0] ? ev->tenant : "default";
    int64_t hour = hour_of(ev->ts_ns);
    for (struct stage *s = a->open; s; s = s->next)
        if (s->hour_ns == hour && strcmp(s->tenant, tenant) == 0)
            return s;
    struct stage *s = calloc(1, sizeof(*s));
    if (!s) {
        lh_err_set(err, LH_ENOMEM, "out of memory");
        return NULL;
    }
    s->fd = -1;
    struct lh_uuid u;
    char hex[LH_UUID_STR_SIZE];
    if (lh_uuid_v7(&u, err) < 0 || !(s->tenant = strdup(tenant)) ||
        (ev->region && !(s->region = strdup(ev->region)))) {
        stage_free(s);
        lh_err_set(err, LH_ENOMEM, "out of memory");
        return NULL;
    }
    lh_uuid_format_hex(&u, hex);
    snprintf(s->path, sizeof(s->path), "%s/%s.stage", a->dir, hex);
    s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        lh_err_errno(err, LH_EIO, errno, "open(%s)", s->path);
        stage_free(s);
        return NULL;
    }
    s->hour_ns = hour;
    s->opened_ns = mono_ns();
    s->fresh = 1;
    lh_buf_puts(&s->pend, "{\"stage\":1,\"tenant\":");
    lh_buf_json_str(&s->pend, s->tenant, strlen(s->tenant));
    lh_buf_printf(&s->pend, ",\"hour_ns\":%lld,\"region\":", (long long)hour);
    lh_buf_json_str(&s->pend, s->region ? s->region : "", s->region ? strlen(s->region) : 0);
    if (lh_buf_puts(&s->pend, "}\n") < 0) {
        unlink(s->path);
        stage_free(s);
        lh_err_set(err, LH_ENOMEM, "out of memory");
        return NULL;
    }
    s->next = a->open;
    a->open = s;
    __atomic_add_fetch(&a->nopen, 1, __ATOMIC_RELAXED);
    return s;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Undoes what the write in progress did to its staging files. */
static void rollback(struct archive_sink *a)
{
    struct stage **pp = &a->open;
    while (*pp) {
        struct stage *s = *pp;
        if (s->fresh) {
            *pp = s->next;
            unlink(s->path);
            __atomic_sub_fetch(&a->nopen, 1, __ATOMIC_RELAXED);
            stage_free(s);
            continue;
        }
        if (s->pend.len && ftruncate(s->fd, (off_t)s->bytes) < 0)
            lh_error("archive sink %s: cannot cut %s back after a failed write: %s",
                     a->base.name, s->path, strerror(errno));
        lh_buf_reset(&s->pend);
        pp = &s->next;
    }
}

static int archive_write(struct lh_sink *base, const struct lh_event *evs, size_t n,
                         struct lh_sink_report *rep, struct lh_err *err)
{
    struct archive_sink *a = base->ctx;
    pthread_mutex_lock(&a->mu);
    uint64_t staged = a->qbytes + __atomic_load_n(&a->open_bytes, __ATOMIC_RELAXED);
    int failing = a->failing;
    char why[300];
    snprintf(why, sizeof(why), "%s", a->why);
    pthread_mutex_unlock(&a->mu);
    if (staged >= a->max_staging)
        return lh_err_set(err, LH_EFULL, "archive staging holds %llu bytes (max_staging)%s%s",
                          (unsigned long long)staged, failing ? "; uploads fail: " : "",
                          failing ? why : "");
    int rc = 0;
    if (a->replayed.n && mono_ns() > a->replay_until_ns)
        idset_free(&a->replayed);
    uint64_t skipped = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (a->replayed.n && evs[i].id) {
            uint64_t fp[2];
            id_fp(evs[i].id, fp);
            if (idset_has(&a->replayed, fp)) {
                skipped++;   /* staged before a crash: uploaded from there */
                continue;
            }
        }
        struct stage *s = stage_for(a, &evs[i], err);
        if (!s)
            rc = err && err->code ? err->code : LH_ENOMEM;
        else if (lh_event_encode(&evs[i], &s->pend) < 0 || lh_buf_putc(&s->pend, '\n') < 0)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    int newfile = 0;
    for (struct stage *s = a->open; rc == 0 && s; s = s->next) {
        if (!s->pend.len)
            continue;
        newfile |= s->fresh;
        if (write_all(s->fd, s->pend.data, s->pend.len) < 0 || fdatasync(s->fd) < 0)
            rc = lh_err_errno(err, LH_EIO, errno, "staging %s", s->path);
    }
    if (rc == 0 && newfile && fsync(a->dirfd) < 0)
        rc = lh_err_errno(err, LH_EIO, errno, "fsync(%s)", a->dir);
    if (rc < 0) {
        rollback(a);
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err && err->msg[0] ? err->msg : "staging failed");
        return lh_err_set(err, LH_EUNAVAIL, "archive sink %s: %s", a->base.name, msg);
    }
    struct stage *s = a->open;
    while (s) {
        struct stage *next = s->next;
        if (s->pend.len) {
            s->bytes += s->pend.len;
            __atomic_add_fetch(&a->open_bytes, s->pend.len, __ATOMIC_RELAXED);
            lh_buf_reset(&s->pend);
        }
        s->fresh = 0;
        if (s->bytes >= a->object_bytes)
            seal(a, s);
        s = next;
    }
    rep->written += n;
    if (skipped) {
        a->replay_skipped += skipped;
        lh_counter_add(a->c_replay, skipped);
    }
    update_gauge(a);
    return 0;
}

static int archive_flush(struct lh_sink *base, struct lh_err *err)
{
    struct archive_sink *a = base->ctx;
    int64_t now = mono_ns();
    struct stage *s = a->open;
    while (s) {
        struct stage *next = s->next;
        if (now - s->opened_ns >= a->rollover_ns)
            seal(a, s);
        s = next;
    }
    pthread_mutex_lock(&a->mu);
    int rc = a->failing ? lh_err_set(err, LH_EUNAVAIL, "uploads fail (%zu staged file(s) "
                                     "waiting): %s", a->nq, a->why) : 0;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static int archive_ready(struct lh_sink *base, struct lh_err *err)
{
    struct archive_sink *a = base->ctx;
    pthread_mutex_lock(&a->mu);
    int rc = a->failing ? lh_err_set(err, LH_EUNAVAIL, "uploads fail: %s", a->why) : 0;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void lh_sink_archive_seal_all(struct lh_sink *base)
{
    struct archive_sink *a = base->ctx;
    while (a->open)
        seal(a, a->open);
}

void lh_sink_archive_stats(struct lh_sink *base, struct lh_sink_archive_stats *out)
{
    struct archive_sink *a = base->ctx;
    pthread_mutex_lock(&a->mu);
    out->staged_bytes = a->qbytes + __atomic_load_n(&a->open_bytes, __ATOMIC_RELAXED);
    out->staged_files = a->nq + __atomic_load_n(&a->nopen, __ATOMIC_RELAXED);
    out->objects = a->objects;
    out->upload_errors = a->errors;
    pthread_mutex_unlock(&a->mu);
}

static void update_gauge(struct archive_sink *a)
{
    if (!a->g_staged)
        return;
    struct lh_sink_archive_stats st;
    lh_sink_archive_stats(&a->base, &st);
    lh_gauge_set(a->g_staged, (double)st.staged_bytes);
}

static void archive_destroy(struct lh_sink *base)
{
    struct archive_sink *a = base->ctx;
    if (a->started) {
        lh_sink_archive_seal_all(base);
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        a->deadline_ns = mono_ns() + a->shutdown_ms * 1000000;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        if (a->nq)
            lh_warn("archive sink %s: %zu staging file(s) left for the next start in %s",
                    a->base.name, a->nq, a->dir);
    }
    while (a->open) {
        struct stage *s = a->open;
        a->open = s->next;
        stage_free(s);
    }
    while (a->qh) {
        struct sealed *s = a->qh;
        a->qh = s->next;
        free(s->path);
        free(s);
    }
    idset_free(&a->replayed);
    lh_archive_close(a->ar);
    if (a->dirfd >= 0)
        close(a->dirfd);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->dir);
    free(a->region);
    free(a->host);
    free(a);
}

static const struct lh_sink_ops archive_ops = {
    .name = "archive",
    .write = archive_write,
    .flush = archive_flush,
    .ready = archive_ready,
    .destroy = archive_destroy,
};

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Adds the ids of a staging file's events (after its header line) to
 * a->replayed. Best effort: an unreadable file or line only means its events
 * may be archived twice after a replay, as without this. */
static void remember_ids(struct archive_sink *a, const char *path)
{
    struct lh_buf b = LH_BUF_INIT;
    struct lh_err err = { 0 };
    if (read_file(path, &b, &err) < 0) {
        lh_warn("archive sink %s: %s", a->base.name, err.msg);
        lh_buf_free(&b);
        return;
    }
    struct lh_arena arena = LH_ARENA_INIT;
    const char *p = b.data, *end = b.data + b.len;
    const char *nl = p ? memchr(p, '\n', (size_t)(end - p)) : NULL;   /* the header */
    for (p = nl ? nl + 1 : end; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;   /* a torn last line was never acknowledged */
        struct lh_event ev;
        lh_arena_reset(&arena);
        if (lh_event_decode(p, (size_t)(nl - p), &arena, &ev, NULL) < 0 || !ev.id)
            continue;
        if (a->replayed.n >= IDSET_MAX) {
            lh_warn("archive sink %s: more than %u staged events left by an earlier run: the "
                    "rest may be archived twice if the bus delivers them again",
                    a->base.name, IDSET_MAX);
            break;
        }
        uint64_t fp[2];
        id_fp(ev.id, fp);
        if (idset_add(&a->replayed, fp) < 0)
            break;
    }
    lh_arena_free(&arena);
    lh_buf_free(&b);
}

/* Queues what an earlier run left staged, oldest first. */
static int recover(struct archive_sink *a, struct lh_err *err)
{
    DIR *d = opendir(a->dir);
    if (!d)
        return lh_err_errno(err, LH_EIO, errno, "opendir(%s)", a->dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        uint8_t u[16];
        if (uuid_of_path(e->d_name, u) < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(names, cap * sizeof(*v));
            if (!v) {
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                break;
            }
            names = v;
        }
        if (!(names[n] = strdup(e->d_name)))
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", a->dir, names[i]);
        if (rc == 0 && stat(path, &st) == 0) {
            remember_ids(a, path);
            if (enqueue(a, path, (uint64_t)st.st_size) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        }
        free(names[i]);
    }
    free(names);
    if (rc == 0 && n)
        lh_info("archive sink %s: %zu staging file(s) from an earlier run queued for upload; "
                "%zu of their events will not be staged again when the bus replays them",
                a->base.name, n, a->replayed.n);
    return rc;
}

int lh_sink_archive_create(const struct lh_sink_archive_config *cfg, const char *name,
                           struct lh_metrics *metrics, struct lh_sink **out, struct lh_err *err)
{
    *out = NULL;
    if (!cfg->staging_dir || !cfg->staging_dir[0])
        return lh_err_set(err, LH_EINVAL, "archive sink: staging_dir is required");
    struct archive_sink *a = calloc(1, sizeof(*a));
    if (!a)
        return lh_err_set(err, LH_ENOMEM, "archive sink: out of memory");
    a->dirfd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->base.ops = &archive_ops;
    a->base.ctx = a;
    snprintf(a->base.name, sizeof(a->base.name), "%s", name && name[0] ? name : "archive");
    char host[256] = "";
    if (!cfg->host || !cfg->host[0]) {
        if (gethostname(host, sizeof(host) - 1) < 0)
            snprintf(host, sizeof(host), "unknown");
    }
    a->dir = strdup(cfg->staging_dir);
    a->region = strdup(cfg->region ? cfg->region : "");
    a->host = strdup(cfg->host && cfg->host[0] ? cfg->host : host);
    a->rollover_ns = (cfg->rollover_ms > 0 ? cfg->rollover_ms : 60000) * 1000000;
    a->object_bytes = cfg->object_bytes ? cfg->object_bytes : 32u << 20;
    a->max_staging = cfg->max_staging_bytes ? cfg->max_staging_bytes : 2ull << 30;
    a->shutdown_ms = cfg->shutdown_upload_ms;
    a->zstd_level = cfg->backend.zstd_level > 0 ? (int)cfg->backend.zstd_level : 6;
    int rc;
    if (!a->dir || !a->region || !a->host) {
        rc = lh_err_set(err, LH_ENOMEM, "archive sink: out of memory");
        goto fail;
    }
    if ((rc = lh_archive_open(&a->ar, &cfg->backend, err)) < 0) {
        lh_err_wrap(err, "archive sink %s", a->base.name);
        goto fail;
    }
    a->fmt = lh_archive_object_format(a->ar);
    a->encrypt = lh_archive_encrypts(a->ar);
    if (mkdir_p(a->dir) < 0 ||
        (a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "archive sink: staging directory %s", a->dir);
        goto fail;
    }
    a->replay_until_ns = mono_ns() + cfg->replay_window_ms * 1000000;
    if ((rc = recover(a, err)) < 0)
        goto fail;
    if (metrics) {
        char lb[128], v[100];
        snprintf(lb, sizeof(lb), "%s", lh_metrics_label(v, sizeof(v), "sink", a->base.name));
        a->c_objects = lh_counter_get(metrics, "loghaul_archive_objects_total",
                                      "Archive objects uploaded.", lb);
        a->c_bytes = lh_counter_get(metrics, "loghaul_archive_object_bytes_total",
                                    "Bytes of archive objects uploaded (encoded).", lb);
        a->c_errors = lh_counter_get(metrics, "loghaul_archive_upload_errors_total",
                                     "Failed archive uploads (each is retried).", lb);
        a->h_upload = lh_histogram_get(metrics, "loghaul_archive_upload_seconds",
                                       "Encoding and upload of one archive object.", lb,
                                       lh_latency_buckets, lh_latency_nbuckets);
        a->g_staged = lh_gauge_get(metrics, "loghaul_archive_staged_bytes",
                                   "Bytes staged locally and not yet uploaded.", lb);
        a->c_replay = lh_counter_get(metrics, "loghaul_archive_replay_skipped_total",
                                     "Events the bus delivered again after a restart that an "
                                     "earlier run had staged already (not archived twice).", lb);
    }
    if (pthread_create(&a->thread, NULL, uploader_main, a) != 0) {
        rc = lh_err_set(err, LH_ENOMEM, "archive sink: cannot start the uploader");
        goto fail;
    }
    a->started = 1;
    *out = &a->base;
    return 0;
fail:
    archive_destroy(&a->base);
    return rc;
}
