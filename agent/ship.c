/* ship.c - the agent's shipper thread: libcurl multi, endpoints with
 * failover and full-jitter backoff, split-on-400, disk buffer spill and
 * replay (see ship.h). */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#undef lh_error   /* OpenSSL's lhash has one too; ours is the logging macro */

#include "ship.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "level.h"
#include "lh/backoff.h"
#include "lh/http_client.h"
#include "lh/time.h"
#include "lh/tls.h"
#undef lh_error
#include "lh/log.h"

#define INGEST_PATH "/v1/logs/ingest"
#define MAX_RESP_BODY (64 * 1024)
#define MAX_SLOTS 256

#define OFF(f) offsetof(struct lh_ship_config, f)
#define TOFF(f) offsetof(struct lh_ship_tls, f)
static const struct lh_opt tls_opts[] = {
    { LH_OPT_STR, "ca", NULL, TOFF(ca_file),
      "PEM CA file to verify the collectors (default: the system store)" },
    { LH_OPT_STR, "cert", NULL, TOFF(cert_file), "PEM client certificate (mTLS)" },
    { LH_OPT_STR, "key", NULL, TOFF(key_file), "PEM key of the client certificate",
      LH_OPT_SECRET },
    { LH_OPT_BOOL, "tls12", "false", TOFF(tls12),
      "also accept TLS 1.2 (default: TLS 1.3 only)" },
    { LH_OPT_BOOL, "insecure", "false", TOFF(insecure),
      "do not verify the collector's certificate (tests only)" },
    { 0 }
};

const struct lh_opt lh_ship_opts[] = {
    { LH_OPT_STRLIST, "endpoints", NULL, OFF(endpoints),
      "collector URLs, e.g. https://collector-1:7070 (" INGEST_PATH " is added to a URL "
      "without a path)", LH_OPT_REQUIRED },
    { LH_OPT_STR, "token", NULL, OFF(token), "shipper token", LH_OPT_SECRET },
    { LH_OPT_ENUM, "token_header", "header", OFF(token_header),
      "send the token as X-Log-Shipper-Token (header) or Authorization: Bearer (bearer)",
      .choices = "header|bearer" },
    { LH_OPT_SECTION, "tls", NULL, OFF(tls), "TLS to the collectors", .sub = tls_opts },
    { LH_OPT_INT, "in_flight", "4", OFF(in_flight), "requests in flight at once" },
    { LH_OPT_ENUM, "balance", "failover", OFF(balance),
      "failover: the first endpoint that is up; round_robin: spread over those up",
      .choices = "failover|round_robin" },
    { LH_OPT_DURATION, "connect_timeout", "5s", OFF(connect_timeout_ms),
      "time to connect (TCP and TLS)" },
    { LH_OPT_DURATION, "timeout", "30s", OFF(timeout_ms), "time for one request" },
    { LH_OPT_DURATION, "backoff_base", "200ms", OFF(backoff_base_ms),
      "first retry delay ceiling (full jitter, doubling per failure)" },
    { LH_OPT_DURATION, "backoff_max", "30s", OFF(backoff_max_ms), "retry delay ceiling" },
    { LH_OPT_DURATION, "max_retry_after", "5m", OFF(max_retry_after_ms),
      "longest Retry-After honoured" },
    { LH_OPT_INT, "memory_batches", "8", OFF(memory_batches),
      "batches held in memory (waiting and in flight) before new ones go to disk" },
    { LH_OPT_DURATION, "spill_after", "2s", OFF(spill_after_ms),
      "with no collector up this long, batches go to the disk buffer" },
    { LH_OPT_STR, "user_agent", NULL, OFF(user_agent), "User-Agent header" },
    { 0 }
};
#undef OFF
#undef TOFF

/* ---- config ---------------------------------------------------------------- */

static char *dup_or_null(const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

static void cfg_free(struct lh_ship_config *c)
{
    for (size_t i = 0; i < c->endpoints.n; i++)
        free(c->endpoints.v[i]);
    free(c->endpoints.v);
    free(c->token);
    free(c->tls.ca_file);
    free(c->tls.cert_file);
    free(c->tls.key_file);
    free(c->user_agent);
    memset(c, 0, sizeof(*c));
}

/* Deep copy with defaults resolved and URLs completed with the ingest path. */
static int cfg_copy(struct lh_ship_config *d, const struct lh_ship_config *s)
{
    int fail = 0;
    *d = *s;
    d->endpoints.v = calloc(s->endpoints.n ? s->endpoints.n : 1, sizeof(char *));
    d->endpoints.n = 0;
    if (!d->endpoints.v)
        fail = 1;
    for (size_t i = 0; !fail && i < s->endpoints.n; i++) {
        const char *u = s->endpoints.v[i];
        const char *hs = strstr(u, "://");
        const char *path = hs ? strchr(hs + 3, '/') : NULL;
        size_t n = strlen(u);
        char *x = malloc(n + sizeof(INGEST_PATH) + 1);
        if (!x) {
            fail = 1;
            break;
        }
        if (!path)
            snprintf(x, n + sizeof(INGEST_PATH) + 1, "%s%s", u, INGEST_PATH);
        else if (path[1] == '\0')
            snprintf(x, n + sizeof(INGEST_PATH) + 1, "%.*s%s", (int)(n - 1), u, INGEST_PATH);
        else
            snprintf(x, n + sizeof(INGEST_PATH) + 1, "%s", u);
        d->endpoints.v[d->endpoints.n++] = x;
    }
    d->token = dup_or_null(s->token, &fail);
    d->tls.ca_file = dup_or_null(s->tls.ca_file, &fail);
    d->tls.cert_file = dup_or_null(s->tls.cert_file, &fail);
    d->tls.key_file = dup_or_null(s->tls.key_file, &fail);
    d->user_agent = dup_or_null(s->user_agent ? s->user_agent : "loghaul-agent", &fail);
    if (!d->in_flight)
        d->in_flight = 4;
    if (!d->connect_timeout_ms)
        d->connect_timeout_ms = 5000;
    if (!d->timeout_ms)
        d->timeout_ms = 30000;
    if (!d->backoff_base_ms)
        d->backoff_base_ms = 200;
    if (!d->backoff_max_ms)
        d->backoff_max_ms = 30000;
    if (!d->max_retry_after_ms)
        d->max_retry_after_ms = 300000;
    if (!d->memory_batches)
        d->memory_batches = 8;
    if (!d->spill_after_ms)
        d->spill_after_ms = 2000;
    if (fail) {
        cfg_free(d);
        return LH_ENOMEM;
    }
    return 0;
}

static int check_tls_files(const struct lh_ship_tls *t, struct lh_err *err)
{
    if ((t->cert_file != NULL) != (t->key_file != NULL))
        return lh_err_set(err, LH_EINVAL, "ship.tls: cert and key go together");
    if (!t->cert_file && !t->ca_file)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return lh_err_set(err, LH_ENOMEM, "ship.tls: SSL_CTX_new failed");
    char why[256];
    int rc = 0;
    if (t->ca_file && SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1)
        rc = lh_err_set(err, LH_EINVAL, "ship.tls.ca: %s: %s", t->ca_file,
                        lh_tls_errors(why, sizeof(why)));
    else if (t->cert_file && SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1)
        rc = lh_err_set(err, LH_EINVAL, "ship.tls.cert: %s: %s", t->cert_file,
                        lh_tls_errors(why, sizeof(why)));
    else if (t->key_file && SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1)
        rc = lh_err_set(err, LH_EINVAL, "ship.tls.key: %s: %s", t->key_file,
                        lh_tls_errors(why, sizeof(why)));
    else if (t->cert_file && SSL_CTX_check_private_key(ctx) != 1)
        rc = lh_err_set(err, LH_EINVAL, "ship.tls: %s does not match %s", t->key_file,
                        t->cert_file);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int lh_ship_config_check(const struct lh_ship_config *c, struct lh_err *err)
{
    if (!c->endpoints.n)
        return lh_err_set(err, LH_EINVAL, "ship.endpoints: at least one collector URL");
    for (size_t i = 0; i < c->endpoints.n; i++) {
        const char *u = c->endpoints.v[i];
        if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
            return lh_err_set(err, LH_EINVAL, "ship.endpoints: %s: not an http:// or https:// URL",
                              u);
        const char *host = strstr(u, "://") + 3;
        if (!*host || *host == '/' || *host == ':')
            return lh_err_set(err, LH_EINVAL, "ship.endpoints: %s: no host", u);
        CURLU *cu = curl_url();
        if (!cu)
            return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
        CURLUcode uc = curl_url_set(cu, CURLUPART_URL, u, 0);
        curl_url_cleanup(cu);
        if (uc != CURLUE_OK)
            return lh_err_set(err, LH_EINVAL, "ship.endpoints: %s: %s", u, curl_url_strerror(uc));
    }
    if (c->in_flight < 0 || c->in_flight > MAX_SLOTS)
        return lh_err_set(err, LH_EINVAL, "ship.in_flight: 1..%d", MAX_SLOTS);
    if (c->memory_batches < 0 || c->connect_timeout_ms < 0 || c->timeout_ms < 0 ||
        c->backoff_base_ms < 0 || c->backoff_max_ms < 0 || c->spill_after_ms < 0 ||
        c->max_retry_after_ms < 0)
        return lh_err_set(err, LH_EINVAL, "ship: limits and durations must not be negative");
    if (c->backoff_max_ms > UINT32_MAX || c->backoff_base_ms > UINT32_MAX)
        return lh_err_set(err, LH_EINVAL, "ship.backoff_max: too long");
    if (c->token && strpbrk(c->token, "\r\n"))
        return lh_err_set(err, LH_EINVAL, "ship.token: must not contain line breaks");
    return check_tls_files(&c->tls, err);
}

/* ---- state ----------------------------------------------------------------- */

struct endpoint {
    char *url;
    struct lh_backoff bo;
    int64_t down_until;        /* monotonic ms */
    uint32_t failures;
};

struct part {
    struct lh_uuid uuid;
    uint32_t *idx;
    uint32_t n;
};

/* A batch held by the shipper: in memq (submitted by the loop) or in
 * active (loaded from the disk buffer). */
struct sb {
    struct lh_batch *b;
    int on_disk;               /* stored in the disk buffer */
    int loaded;                /* read back from the disk buffer (in active) */
    int sampled;               /* write-ahead sampling done */
    int writing;               /* handed to the write-ahead writer */
    int reported;              /* durable reported (or nothing to report) */
    int in_flight;
    int split;                 /* parts[] in use */
    struct lh_buf json;        /* raw JSON, once split */
    struct part *parts;
    uint32_t nparts, pcap;
    struct lh_buf part_body;   /* compressed body of parts[0] while it is sent */
    uint32_t attempts;
};

struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    struct sb *x;
    int ep;
    struct lh_buf resp;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    size_t body_len;
    int64_t started_ns;
};

struct lh_ship {
    struct lh_ship_config cfg;         /* shipper thread's (resolved) */
    struct lh_dbuf *dbuf;
    struct lh_ledger *ledger;
    struct lh_metrics *metrics;
    lh_ship_notify_fn notify;
    void *notify_arg;

    /* shared with other threads, under mu */
    pthread_mutex_t mu;
    struct lh_batch **inbox;
    size_t ninbox, inbox_cap;
    uint64_t *done;
    size_t ndone, done_cap;
    struct lh_ship_config *pending_cfg;
    int stop_req, abort_req;
    int64_t stop_deadline;

    _Atomic int healthy;
    _Atomic int64_t mem_max;
    _Atomic int stopped;
    _Atomic uint64_t outstanding;      /* submitted, not yet reported */
    _Atomic uint64_t st_submitted, st_delivered, st_replayed, st_spilled, st_dropped,
        st_requests, st_failures, st_splits, st_rejected, st_bytes, st_raw, st_in_flight,
        st_memory, st_sampled, st_written;
    _Atomic uint64_t ckpt_seq;         /* a saved checkpoint includes batches up to here */

    /* shipper thread only */
    pthread_t thread;
    int started;
    int wa;                             /* write-ahead (the disk buffer's setting) */
    int64_t wa_retry_at;                /* write-ahead waits (full, I/O error) until then */
    struct writer *writer;
    CURLM *multi;
    struct endpoint *eps;
    size_t neps;
    size_t rr;                          /* round robin cursor */
    struct slot **slots;
    size_t nslots, nrun;
    struct sb **memq;                   /* ascending seq */
    size_t nmem, memcap;
    struct sb **active;                 /* disk batches loaded (in flight or split) */
    size_t nactive, activecap;
    int stopping;
    int64_t unhealthy_since;            /* 0 while healthy */
    int64_t spill_retry_at;
    int64_t disk_retry_at;
    uint64_t sample_n;
    struct lh_counter *c_sampled;

    struct lh_histogram *h_latency;
    struct lh_codec_ctx *codec;
};

static int64_t mono_ms(void)
{
    return lh_time_mono_ns() / LH_NS_PER_MS;
}

static void st_add(_Atomic uint64_t *v, uint64_t n)
{
    atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

/* ---- durable reports --------------------------------------------------------- */

static void report(struct lh_ship *s, struct sb *x)
{
    if (x->reported)
        return;
    x->reported = 1;
    pthread_mutex_lock(&s->mu);
    if (s->ndone == s->done_cap) {
        size_t cap = s->done_cap ? s->done_cap * 2 : 64;
        uint64_t *nd = realloc(s->done, cap * sizeof(*nd));
        if (!nd) {
            pthread_mutex_unlock(&s->mu);
            lh_error("ship: out of memory reporting batch %llu",
                     (unsigned long long)x->b->seq);
            return;
        }
        s->done = nd;
        s->done_cap = cap;
    }
    s->done[s->ndone++] = x->b->seq;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_sub(&s->outstanding, 1);
    if (s->notify)
        s->notify(s->notify_arg);
}

size_t lh_ship_take_durable(struct lh_ship *s, uint64_t *out, size_t max)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->ndone < max ? s->ndone : max;
    if (n) {
        memcpy(out, s->done, n * sizeof(*out));
        memmove(s->done, s->done + n, (s->ndone - n) * sizeof(*out));
        s->ndone -= n;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- batches ------------------------------------------------------------------ */

static void sb_free(struct sb *x)
{
    if (!x)
        return;
    lh_batch_free(x->b);
    lh_buf_free(&x->json);
    lh_buf_free(&x->part_body);
    for (uint32_t i = 0; i < x->nparts; i++)
        free(x->parts[i].idx);
    free(x->parts);
    free(x);
}

static int vec_insert_sorted(struct sb ***v, size_t *n, size_t *cap, struct sb *x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct sb **nv = realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    size_t i = *n;
    while (i > 0 && (*v)[i - 1]->b->seq > x->b->seq)
        i--;
    memmove(&(*v)[i + 1], &(*v)[i], (*n - i) * sizeof(**v));
    (*v)[i] = x;
    (*n)++;
    return 0;
}

static void vec_remove(struct sb **v, size_t *n, struct sb *x)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == x) {
            memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
            (*n)--;
            return;
        }
}

static void publish_memory(struct lh_ship *s)
{
    atomic_store(&s->st_memory, s->nmem);
}

/* Counts acknowledged lines per file for records idx[0..n) (all when idx is NULL). */
static void count_acked(struct lh_ship *s, const struct lh_batch *b, const uint32_t *idx,
                        uint32_t n)
{
    if (!idx) {
        for (uint32_t i = 0; i < b->nfiles; i++)
            if (b->files[i].lines)
                lh_ledger_acked(s->ledger, b->files[i].path, b->files[i].lines);
        return;
    }
    uint64_t stackv[64];
    uint64_t *per = b->nfiles <= 64 ? stackv : calloc(b->nfiles, sizeof(*per));
    if (!per)
        return;
    memset(per, 0, b->nfiles * sizeof(*per));
    for (uint32_t i = 0; i < n; i++)
        per[b->recs[idx[i]].file] += b->recs[idx[i]].nlines;
    for (uint32_t i = 0; i < b->nfiles; i++)
        if (per[i])
            lh_ledger_acked(s->ledger, b->files[i].path, per[i]);
    if (per != stackv)
        free(per);
}

/* The batch is fully handled (delivered, or its refused records dropped,
 * or it had none). Write-ahead: its file stays until a saved checkpoint
 * includes it (lh_ship_checkpointed). */
static void batch_done(struct lh_ship *s, struct sb *x)
{
    struct lh_err err = { 0 };
    if (x->attempts) {
        st_add(&s->st_delivered, 1);
        if (x->loaded)
            st_add(&s->st_replayed, 1);
    }
    if (x->on_disk) {
        if (s->wa && x->b->seq > atomic_load(&s->ckpt_seq))
            lh_dbuf_mark_delivered(s->dbuf, x->b->seq);   /* removed once checkpointed */
        else if (lh_dbuf_remove(s->dbuf, x->b->seq, &err) < 0 && err.code != LH_ENOTFOUND)
            lh_error("ship: %s", err.msg);
    }
    int notified = !x->reported;
    report(s, x);
    if (x->loaded) {
        vec_remove(s->active, &s->nactive, x);
    } else {
        vec_remove(s->memq, &s->nmem, x);
        publish_memory(s);
    }
    sb_free(x);
    if (!notified && s->notify)   /* the backlog shrank: the loop may read again */
        s->notify(s->notify_arg);
}

static int load_json(struct lh_ship *s, struct sb *x, struct lh_err *err);

/* Sampling for the disk buffer (ship.h): drops TRACE/DEBUG/INFO records of
 * x by the buffer's fill, or all of them with drop_low. Counts them. */
static void sample_for_disk(struct lh_ship *s, struct sb *x, int drop_low)
{
    double at, max;
    uint64_t keep_n;
    lh_dbuf_sampling(s->dbuf, &at, &max, &keep_n);
    double fill = lh_ship_fill(s);
    int mode = drop_low || fill >= max ? 2 : fill >= at ? 1 : 0;
    if (!mode || !x->b->nrec)
        return;
    struct lh_err err = { 0 };
    if (load_json(s, x, &err) < 0) {
        lh_error("ship: sampling: %s", err.msg);
        return;
    }
    uint8_t *keep = malloc(x->b->nrec);
    if (!keep)
        return;
    static const char key[] = "\"raw_message\":\"";
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < x->b->nrec; i++) {
        const struct lh_batch_rec *r = &x->b->recs[i];
        const char *p = memmem(x->json.data + r->off, r->len, key, sizeof(key) - 1);
        keep[i] = 1;
        if (!p)
            continue;
        p += sizeof(key) - 1;
        const char *end = x->json.data + r->off + r->len, *q = p;
        while (q < end && *q != '"')   /* the end of the JSON string */
            q += *q == '\\' ? 2 : 1;
        if (q > end)
            q = end;
        if (!lh_level_sampleable(lh_level_sniff(p, (size_t)(q - p))))
            continue;
        keep[i] = mode == 1 && s->sample_n++ % keep_n == 0;
        if (!keep[i]) {
            dropped++;
            lh_ledger_drop(s->ledger, x->b->files[r->file].path, LH_DROP_SAMPLED, r->nlines,
                           r->len);
            st_add(&s->st_sampled, r->nlines);
            lh_counter_add(s->c_sampled, r->nlines);
        }
    }
    if (dropped && lh_batch_filter(x->b, x->json.data, x->json.len, keep, s->codec, &err) < 0)
        lh_error("ship: sampling: %s", err.msg);   /* sent whole; counted as sampled */
    lh_buf_free(&x->json);
    free(keep);
}

/* Writes a memory batch to the disk buffer. shutdown: a batch that does
 * not fit is only let go (not reported: its lines are read again after a
 * restart) instead of dropped and counted. Returns 0 when x was freed. */
static int spill(struct lh_ship *s, struct sb *x, int shutdown)
{
    struct lh_err err = { 0 };
    if (x->on_disk) {   /* written ahead: only the memory copy goes */
        st_add(&s->st_spilled, 1);
        vec_remove(s->memq, &s->nmem, x);
        publish_memory(s);
        sb_free(x);
        return 0;
    }
    if (!shutdown)
        sample_for_disk(s, x, 0);
    /* Write-ahead keeps batches without records too (their ranges count). */
    int rc = x->b->nrec || s->wa ? lh_dbuf_put(s->dbuf, x->b, &err) : 0;
    if (rc == LH_EFULL && !shutdown) {
        sample_for_disk(s, x, 1);   /* no room: keep only what may be WARN or worse */
        rc = x->b->nrec ? lh_dbuf_put(s->dbuf, x->b, &err) : 0;
    }
    if (rc == 0) {
        st_add(&s->st_spilled, x->b->nrec ? 1 : 0);
        report(s, x);
    } else if (rc == LH_EFULL && !shutdown) {
        char id[LH_UUID_STR_SIZE];
        lh_warn("ship: disk buffer full; batch %s (%u records) dropped",
                lh_uuid_format(&x->b->uuid, id), x->b->nrec);
        for (uint32_t i = 0; i < x->b->nfiles; i++)
            if (x->b->files[i].lines)
                lh_ledger_drop(s->ledger, x->b->files[i].path, LH_DROP_BUFFER_FULL,
                               x->b->files[i].lines, 0);
        st_add(&s->st_dropped, 1);
        report(s, x);
    } else if (shutdown) {
        lh_warn("ship: %s; batch %llu is read again after the restart", err.msg,
                (unsigned long long)x->b->seq);
    } else {
        lh_error("ship: %s", err.msg);
        return rc;
    }
    vec_remove(s->memq, &s->nmem, x);
    publish_memory(s);
    if (!x->reported)
        atomic_fetch_sub(&s->outstanding, 1);
    sb_free(x);
    return 0;
}

/* ---- write-ahead ---------------------------------------------------------------- */

static int any_up(const struct lh_ship *s, int64_t now);

/* Drops every record of x, counted as buffer_full: x keeps only its
 * ranges (a tombstone in the buffer, so the checkpoint may pass them). */
static void drop_all(struct lh_ship *s, struct sb *x)
{
    char id[LH_UUID_STR_SIZE];
    lh_warn("ship: disk buffer full; batch %s (%u records) dropped",
            lh_uuid_format(&x->b->uuid, id), x->b->nrec);
    for (uint32_t i = 0; i < x->b->nfiles; i++)
        if (x->b->files[i].lines) {
            lh_ledger_drop(s->ledger, x->b->files[i].path, LH_DROP_BUFFER_FULL,
                           x->b->files[i].lines, 0);
            x->b->files[i].lines = 0;
        }
    st_add(&s->st_dropped, 1);
    x->b->nrec = 0;
    x->b->raw_len = 0;
    lh_buf_free(&x->b->body);
    lh_buf_free(&x->json);
}

/* The write-ahead writer: a thread that writes groups of batches to the
 * disk buffer (file I/O and fsync only, lh_dbuf_write), so that the shipper
 * thread goes on sending meanwhile. One group at a time: the shipper hands
 * one over while the writer is idle and applies the result (indexes the
 * files, reports the batches durable) before handing the next. */
#define WA_GROUP 64
struct writer {
    struct lh_ship *s;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int busy;                   /* a group was handed over */
    int done;                   /* ...and written: results below */
    struct sb *xs[WA_GROUP];
    struct lh_batch *v[WA_GROUP];
    uint64_t sizes[WA_GROUP];
    size_t n, stored;
    struct lh_err err;
};

static void wake(struct lh_ship *s);

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !(w->busy && !w->done))
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        size_t n = w->n;
        pthread_mutex_unlock(&w->mu);
        struct lh_err err = { 0 };
        size_t k = lh_dbuf_write(w->s->dbuf, w->v, n, w->sizes, &err);
        pthread_mutex_lock(&w->mu);
        w->stored = k;
        w->err = err;
        w->done = 1;
        wake(w->s);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int writer_start(struct lh_ship *s)
{
    struct writer *w = calloc(1, sizeof(*w));
    if (!w)
        return LH_ENOMEM;
    w->s = s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return LH_ERR;
    }
    w->started = 1;
    s->writer = w;
    return 0;
}

static void writer_stop(struct lh_ship *s)
{
    struct writer *w = s->writer;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    s->writer = NULL;
}

/* No collector is up: memory copies of written batches are released. */
static int spilling(const struct lh_ship *s)
{
    return s->unhealthy_since != 0;
}

/* x is in the disk buffer: reported durable; sent from now on. While no
 * collector is up, its memory copy goes at once (counted as spilled). */
static void written(struct lh_ship *s, struct sb *x)
{
    x->on_disk = 1;
    st_add(&s->st_written, 1);
    int release = x->b->nrec && spilling(s);
    if (release)
        st_add(&s->st_spilled, 1);
    report(s, x);
    if (x->b->nrec == 0) {   /* only ranges: nothing to send */
        batch_done(s, x);
    } else if (release) {
        vec_remove(s->memq, &s->nmem, x);
        publish_memory(s);
        sb_free(x);
    }
}

/* x (the first batch not written) did not fit or failed: see write_ahead. */
static void write_failed(struct lh_ship *s, struct sb *x, const struct lh_err *why, int64_t now)
{
    struct lh_err err = { 0 };
    if (why->code != LH_EFULL) {
        lh_error("ship: write-ahead: %s; retrying in 1 s", why->msg);
        s->wa_retry_at = now + 1000;
        return;
    }
    if (any_up(s, now) && lh_dbuf_count(s->dbuf) > 0) {
        s->wa_retry_at = now + 20;   /* deliveries will make room */
        return;
    }
    sample_for_disk(s, x, 1);   /* no room: keep only what may be WARN or worse */
    struct lh_batch *one[1] = { x->b };
    if (lh_dbuf_put_many(s->dbuf, one, 1, &err) == 1) {
        written(s, x);
    } else if (err.code == LH_EFULL) {
        drop_all(s, x);   /* written as a tombstone on the next round */
    } else {
        lh_error("ship: write-ahead: %s; retrying in 1 s", err.msg);
        s->wa_retry_at = now + 1000;
    }
}

/* Takes the writer's result, if it has one. */
static void wa_apply(struct lh_ship *s, int64_t now)
{
    struct writer *w = s->writer;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    int ready = w->busy && w->done;
    pthread_mutex_unlock(&w->mu);
    if (!ready)
        return;
    /* The writer is idle until the next hand-over: its fields are ours. */
    size_t k = w->stored, ok = 0;
    for (size_t i = 0; i < w->n; i++)
        w->xs[i]->writing = 0;
    for (; ok < k; ok++)
        if (lh_dbuf_add(s->dbuf, w->v[ok]->seq, w->sizes[ok]) < 0)
            break;
    for (size_t i = ok + 1; i < k; i++)   /* after a failure nothing may be sent */
        lh_dbuf_discard(s->dbuf, w->v[i]->seq, w->sizes[i]);
    struct sb *first_failed = ok < w->n ? w->xs[ok] : NULL;
    struct lh_err err = w->err;
    if (ok < k)
        lh_err_set(&err, LH_ENOMEM, "buffer: out of memory");
    for (size_t i = 0; i < ok; i++)
        written(s, w->xs[i]);   /* may free them */
    pthread_mutex_lock(&w->mu);
    w->busy = w->done = 0;
    w->n = 0;
    pthread_mutex_unlock(&w->mu);
    if (first_failed)
        write_failed(s, first_failed, &err, now);
}

/* Waits for the writer to finish its group and applies it. */
static void wa_wait(struct lh_ship *s, int64_t now)
{
    struct writer *w = s->writer;
    if (!w)
        return;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int pending = w->busy && !w->done;
        pthread_mutex_unlock(&w->mu);
        if (!pending)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    wa_apply(s, now);
}

/* Hands the submitted batches not yet in the disk buffer, in seq order, to
 * the writer, before any of them may be sent (ship.h). While a collector is
 * up, only as many as memory_batches wait written and undelivered (the rest
 * wait in memory, as they would without write-ahead); while none is up, all
 * are written, one at a time, each sampled by the fill first as spilled
 * batches are. A batch that does not fit waits while a collector is up and
 * other batches are in the buffer (their delivery makes room); otherwise
 * its low levels, then all its records, are dropped and counted. */
static void write_ahead(struct lh_ship *s, int64_t now)
{
    struct writer *w = s->writer;
    wa_apply(s, now);
    if (!w || now < s->wa_retry_at)
        return;
    pthread_mutex_lock(&w->mu);
    int busy = w->busy;
    pthread_mutex_unlock(&w->mu);
    if (busy)
        return;
    size_t n = 0;
    int down = !any_up(s, now);
    uint64_t waiting = lh_dbuf_waiting(s->dbuf), room = (uint64_t)s->cfg.memory_batches;
    for (size_t i = 0; i < s->nmem && n < WA_GROUP; i++) {
        struct sb *x = s->memq[i];
        if (x->on_disk)
            continue;
        if (!down && x->b->nrec && waiting++ >= room)
            break;
        if (down && !x->sampled)
            sample_for_disk(s, x, 0);
        x->sampled = 1;
        x->writing = 1;
        w->xs[n] = x;
        w->v[n++] = x->b;
        if (down)
            break;   /* one at a time: the next one is sampled by the new fill */
    }
    if (!n)
        return;
    pthread_mutex_lock(&w->mu);
    w->n = n;
    w->busy = 1;
    w->done = 0;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Deletes the delivered batches a saved checkpoint includes. */
static void collect_delivered(struct lh_ship *s)
{
    if (!s->wa || lh_dbuf_waiting(s->dbuf) == lh_dbuf_count(s->dbuf))
        return;
    uint64_t upto = atomic_load(&s->ckpt_seq);
    if (upto)
        lh_dbuf_remove_delivered(s->dbuf, upto);
}

/* ---- splitting ---------------------------------------------------------------- */

static int load_json(struct lh_ship *s, struct sb *x, struct lh_err *err)
{
    if (x->json.len)
        return 0;
    return lh_codec_ctx_decode(s->codec, (enum lh_codec)x->b->codec, x->b->body.data,
                               x->b->body.len, (size_t)x->b->raw_len + 1, 0, &x->json, err);
}

static int start_split(struct lh_ship *s, struct sb *x, struct lh_err *err)
{
    if (x->split)
        return 0;
    int rc = load_json(s, x, err);
    if (rc < 0)
        return rc;
    x->parts = calloc(4, sizeof(*x->parts));
    if (!x->parts)
        return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
    x->pcap = 4;
    x->parts[0].idx = malloc((size_t)(x->b->nrec ? x->b->nrec : 1) * sizeof(uint32_t));
    if (!x->parts[0].idx)
        return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
    for (uint32_t i = 0; i < x->b->nrec; i++)
        x->parts[0].idx[i] = i;
    x->parts[0].n = x->b->nrec;
    x->parts[0].uuid = x->b->uuid;
    x->nparts = 1;
    x->split = 1;
    return 0;
}

static void remove_part0(struct sb *x)
{
    free(x->parts[0].idx);
    memmove(&x->parts[0], &x->parts[1], (x->nparts - 1) * sizeof(*x->parts));
    x->nparts--;
}

/* Drops record k (index into the part) of parts[0]. */
static void reject_record(struct lh_ship *s, struct sb *x, uint32_t k, const char *reason,
                          int status, const char *why)
{
    struct part *p = &x->parts[0];
    uint32_t r = p->idx[k];
    const struct lh_batch_rec *rec = &x->b->recs[r];
    const char *path = x->b->files[rec->file].path;
    char id[LH_UUID_STR_SIZE];
    const char *txt = x->json.data + rec->off;
    int shown = rec->len > 160 ? 160 : (int)rec->len;
    lh_warn("ship: collector answered %d for record %u of batch %s (file %s): %s; dropped (%s): "
            "%.*s%s", status, r, lh_uuid_format(&x->b->uuid, id), path, why, reason, shown, txt,
            rec->len > 160 ? "..." : "");
    lh_ledger_drop(s->ledger, path, reason, rec->nlines, rec->len);
    st_add(&s->st_rejected, 1);
    memmove(&p->idx[k], &p->idx[k + 1], (p->n - k - 1) * sizeof(*p->idx));
    p->n--;
    char label[48];
    snprintf(label, sizeof(label), "drop:%u", r);
    lh_batch_derive_uuid(&p->uuid, label, &p->uuid);
    if (p->n == 0)
        remove_part0(x);
}

/* Splits parts[0] in two halves. */
static int halve(struct lh_ship *s, struct sb *x)
{
    if (x->nparts == x->pcap) {
        uint32_t cap = x->pcap * 2;
        struct part *np = realloc(x->parts, cap * sizeof(*np));
        if (!np)
            return LH_ENOMEM;
        x->parts = np;
        x->pcap = cap;
    }
    struct part *p = &x->parts[0];
    uint32_t h = p->n / 2;
    struct part b = { .n = p->n - h };
    b.idx = malloc(b.n * sizeof(uint32_t));
    if (!b.idx)
        return LH_ENOMEM;
    memcpy(b.idx, p->idx + h, b.n * sizeof(uint32_t));
    lh_batch_derive_uuid(&p->uuid, "split:1", &b.uuid);
    lh_batch_derive_uuid(&p->uuid, "split:0", &p->uuid);
    p->n = h;
    memmove(&x->parts[2], &x->parts[1], (x->nparts - 1) * sizeof(*x->parts));
    x->parts[1] = b;
    x->nparts++;
    st_add(&s->st_splits, 2);
    return 0;
}

/* The collector's {"error":{"code","message","field","index"}}. */
static long error_index(const struct lh_buf *body, char *why, size_t n)
{
    long index = -1;
    snprintf(why, n, "%s", "no error details");
    if (!body->len)
        return -1;
    json_error_t je;
    json_t *root = json_loadb(body->data, body->len, 0, &je);
    json_t *e = root ? json_object_get(root, "error") : NULL;
    if (json_is_object(e)) {
        json_t *ix = json_object_get(e, "index");
        if (json_is_integer(ix))
            index = (long)json_integer_value(ix);
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        const char *field = json_string_value(json_object_get(e, "field"));
        snprintf(why, n, "%s%s%s%s%s", code ? code : "", code ? ": " : "",
                 field && *field ? field : "", field && *field ? ": " : "", msg ? msg : "");
    } else {
        snprintf(why, n, "%.*s", body->len > 200 ? 200 : (int)body->len, body->data);
    }
    json_decref(root);
    return index;
}

/* A 4xx that retrying will not fix: drop or split (see ship.h). */
static void refused(struct lh_ship *s, struct sb *x, int status, const struct lh_buf *body)
{
    struct lh_err err = { 0 };
    char why[300];
    long index = error_index(body, why, sizeof(why));
    if (status == 422 && strncmp(why, "idempotency_key_reused", 22) == 0) {
        /* The key was acknowledged for other records (a retry always sends
         * the same ones): these go again under a key derived from it. */
        struct lh_uuid *u = x->split ? &x->parts[0].uuid : &x->b->uuid;
        char id[LH_UUID_STR_SIZE];
        lh_warn("ship: collector refused key %s of batch %llu as reused; resending under a new key",
                lh_uuid_format(u, id), (unsigned long long)x->b->seq);
        lh_batch_derive_uuid(u, "rekey", u);
        return;
    }
    if (start_split(s, x, &err) < 0) {
        lh_error("ship: batch %llu refused (%d: %s) and cannot be split: %s",
                 (unsigned long long)x->b->seq, status, why, err.msg);
        return;   /* stays queued; retried */
    }
    struct part *p = &x->parts[0];
    if (status == 400 && index >= 0 && index < (long)p->n) {
        reject_record(s, x, (uint32_t)index, LH_DROP_REJECTED, status, why);
    } else if (p->n <= 1) {
        if (p->n == 1)
            reject_record(s, x, 0, status == 413 ? LH_DROP_TOO_LARGE : LH_DROP_REJECTED,
                          status, why);
        else
            remove_part0(x);
    } else if (halve(s, x) < 0) {
        lh_error("ship: out of memory splitting batch %llu", (unsigned long long)x->b->seq);
        return;
    } else {
        lh_info("ship: collector answered %d (%s) for %u records; split in two", status, why,
                p->n + x->parts[1].n);
    }
    if (x->nparts == 0)
        batch_done(s, x);
}

/* 415 for zstd: the batch is re-encoded as gzip. */
static int to_gzip(struct lh_ship *s, struct sb *x, struct lh_err *err)
{
    int rc = load_json(s, x, err);
    if (rc < 0)
        return rc;
    struct lh_buf gz = LH_BUF_INIT;
    if ((rc = lh_codec_ctx_gzip(s->codec, 1, x->json.data, x->json.len, &gz, err)) < 0) {
        lh_buf_free(&gz);
        return rc;
    }
    lh_buf_free(&x->b->body);
    x->b->body = gz;
    x->b->codec = LH_CODEC_GZIP;
    return 0;
}

/* ---- endpoints ---------------------------------------------------------------- */

static void eps_free(struct endpoint *eps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(eps[i].url);
    free(eps);
}

static int eps_build(struct lh_ship *s, const struct lh_ship_config *c, struct endpoint **out)
{
    struct endpoint *eps = calloc(c->endpoints.n, sizeof(*eps));
    if (!eps)
        return LH_ENOMEM;
    for (size_t i = 0; i < c->endpoints.n; i++) {
        if (!(eps[i].url = strdup(c->endpoints.v[i]))) {
            eps_free(eps, i);
            return LH_ENOMEM;
        }
        lh_backoff_init(&eps[i].bo, (uint32_t)c->backoff_base_ms, (uint32_t)c->backoff_max_ms);
        for (size_t k = 0; k < s->neps; k++)   /* keep the state of endpoints kept */
            if (strcmp(s->eps[k].url, eps[i].url) == 0) {
                eps[i].down_until = s->eps[k].down_until;
                eps[i].failures = s->eps[k].failures;
                eps[i].bo.attempt = s->eps[k].bo.attempt;
            }
    }
    *out = eps;
    return 0;
}

static int any_up(const struct lh_ship *s, int64_t now)
{
    if (!s->eps)
        return 0;
    for (size_t i = 0; i < s->neps; i++)
        if (s->eps[i].down_until <= now)
            return 1;
    return 0;
}

static int pick_endpoint(struct lh_ship *s, int64_t now)
{
    size_t start = s->cfg.balance == LH_SHIP_ROUND_ROBIN ? s->rr : 0;
    for (size_t k = 0; k < s->neps; k++) {
        size_t i = (start + k) % s->neps;
        if (s->eps[i].down_until <= now) {
            s->rr = i + 1;
            return (int)i;
        }
    }
    return -1;
}

static void endpoint_failed(struct lh_ship *s, int ep, const char *retry_after, const char *what)
{
    struct endpoint *e = &s->eps[ep];
    int64_t now = mono_ms();
    /* Requests already in flight when the endpoint went down fail too; they
     * do not lengthen the backoff again. */
    int already = e->down_until > now;
    uint64_t delay = already ? (uint64_t)(e->down_until - now) : lh_backoff_next_ms(&e->bo);
    if (retry_after && *retry_after) {
        uint64_t ra;
        if (lh_backoff_parse_retry_after(retry_after, strlen(retry_after), lh_time_now_ns(), &ra,
                                         NULL) == 0) {
            if (ra > (uint64_t)s->cfg.max_retry_after_ms)
                ra = (uint64_t)s->cfg.max_retry_after_ms;
            if (ra > delay)
                delay = ra;
        }
    }
    if (!already)
        e->failures++;
    e->down_until = now + (int64_t)delay;
    st_add(&s->st_failures, 1);
    lh_warn("ship: POST %s: %s; retrying in %llu ms (failure %u)", e->url, what,
            (unsigned long long)delay, e->failures);
}

static void endpoint_ok(struct lh_ship *s, int ep)
{
    struct endpoint *e = &s->eps[ep];
    if (e->failures)
        lh_info("ship: %s is answering again", e->url);
    e->failures = 0;
    e->down_until = 0;
    lh_backoff_reset(&e->bo);
}

/* ---- transfers ------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct slot *sl = ud;
    size_t n = size * nmemb;
    size_t room = sl->resp.len < MAX_RESP_BODY ? MAX_RESP_BODY - sl->resp.len : 0;
    if (room)
        lh_buf_append(&sl->resp, ptr, n < room ? n : room);
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud)
{
    struct slot *sl = ud;
    size_t n = size * nitems;
    static const char ra[] = "retry-after:";
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        sl->retry_after[0] = '\0';
    if (n > sizeof(ra) - 1 && strncasecmp(ptr, ra, sizeof(ra) - 1) == 0) {
        const char *v = ptr + sizeof(ra) - 1, *end = ptr + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        snprintf(sl->retry_after, sizeof(sl->retry_after), "%.*s", (int)(end - v), v);
    }
    return n;
}

static int add_hdr(struct slot *sl, const char *line)
{
    struct curl_slist *n = curl_slist_append(sl->hdrs, line);
    if (!n)
        return LH_ENOMEM;
    sl->hdrs = n;
    return 0;
}

/* Starts sending x (its whole body, or parts[0]) to endpoint ep. */
static int start(struct lh_ship *s, struct slot *sl, struct sb *x, int ep, struct lh_err *err)
{
    const struct lh_buf *body = &x->b->body;
    const struct lh_uuid *uuid = &x->b->uuid;
    int rc;
    if (x->split) {
        struct part *p = &x->parts[0];
        struct lh_buf js = LH_BUF_INIT;
        rc = lh_batch_subset_json(x->json.data, x->json.len, x->b->recs, x->b->nrec, p->idx,
                                  p->n, &js);
        lh_buf_reset(&x->part_body);
        if (rc == 0)
            rc = lh_codec_ctx_encode(s->codec, (enum lh_codec)x->b->codec, 1, js.data, js.len,
                                     &x->part_body, err);
        lh_buf_free(&js);
        if (rc < 0)
            return lh_err_set(err, rc, "ship: rebuilding a split batch: %s", err->msg);
        body = &x->part_body;
        uuid = &p->uuid;
    }
    CURL *e = sl->easy;
    curl_easy_reset(e);
    curl_slist_free_all(sl->hdrs);
    sl->hdrs = NULL;
    lh_buf_reset(&sl->resp);
    sl->retry_after[0] = '\0';
    sl->errbuf[0] = '\0';
    char line[512], id[LH_UUID_STR_SIZE];
    rc = add_hdr(sl, "Content-Type: application/json");
    if (rc == 0 && x->b->codec != LH_CODEC_NONE) {
        snprintf(line, sizeof(line), "Content-Encoding: %s",
                 lh_codec_name((enum lh_codec)x->b->codec));
        rc = add_hdr(sl, line);
    }
    if (rc == 0 && s->cfg.token) {
        if (s->cfg.token_header == LH_SHIP_TOKEN_BEARER)
            snprintf(line, sizeof(line), "Authorization: Bearer %s", s->cfg.token);
        else
            snprintf(line, sizeof(line), "X-Log-Shipper-Token: %s", s->cfg.token);
        rc = add_hdr(sl, line);
    }
    if (rc == 0) {
        snprintf(line, sizeof(line), "Idempotency-Key: %s", lh_uuid_format(uuid, id));
        rc = add_hdr(sl, line);
    }
    if (rc == 0)
        rc = add_hdr(sl, "Expect:");
    if (rc < 0)
        return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
    curl_easy_setopt(e, CURLOPT_URL, s->eps[ep].url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, sl->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, s->cfg.user_agent);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sl);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, sl);
    curl_easy_setopt(e, CURLOPT_SSLVERSION,
                     s->cfg.tls.tls12 ? CURL_SSLVERSION_TLSv1_2 : CURL_SSLVERSION_TLSv1_3);
    if (s->cfg.tls.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->cfg.tls.ca_file);
    if (s->cfg.tls.cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, s->cfg.tls.cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, s->cfg.tls.key_file);
    }
    if (s->cfg.tls.insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data ? body->data : "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl->hdrs);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)sl);
    CURLMcode mc = curl_multi_add_handle(s->multi, e);
    if (mc != CURLM_OK)
        return lh_err_set(err, LH_ERR, "ship: curl_multi_add_handle: %s", curl_multi_strerror(mc));
    sl->x = x;
    sl->ep = ep;
    sl->body_len = body->len;
    sl->started_ns = lh_time_mono_ns();
    x->in_flight = 1;
    x->attempts++;
    s->nrun++;
    atomic_store(&s->st_in_flight, s->nrun);
    return 0;
}

static void finish(struct lh_ship *s, struct slot *sl, CURLcode cc)
{
    struct sb *x = sl->x;
    int ep = sl->ep;
    curl_multi_remove_handle(s->multi, sl->easy);
    sl->x = NULL;
    x->in_flight = 0;
    s->nrun--;
    atomic_store(&s->st_in_flight, s->nrun);
    st_add(&s->st_requests, 1);
    long status = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
    double secs = (double)(lh_time_mono_ns() - sl->started_ns) / 1e9;
    lh_histogram_observe(s->h_latency, secs);
    if (s->metrics) {
        char labels[600], a[520], b[40], code[16];
        snprintf(code, sizeof(code), "%ld", status);
        snprintf(labels, sizeof(labels), "%s,%s",
                 lh_metrics_label(a, sizeof(a), "endpoint", s->eps[ep].url),
                 lh_metrics_label(b, sizeof(b), "code", cc == CURLE_OK ? code : "error"));
        lh_counter_add(lh_counter_get(s->metrics, "loghaul_agent_requests_total",
                                      "Requests to collectors by endpoint and HTTP status "
                                      "(code=\"error\": no response).", labels), 1);
    }
    char what[CURL_ERROR_SIZE + 64];
    if (cc != CURLE_OK) {
        snprintf(what, sizeof(what), "%s", sl->errbuf[0] ? sl->errbuf : curl_easy_strerror(cc));
        endpoint_failed(s, ep, NULL, what);
        return;
    }
    if (status >= 200 && status < 300) {
        endpoint_ok(s, ep);
        st_add(&s->st_bytes, sl->body_len);
        if (x->split) {
            struct part *p = &x->parts[0];
            count_acked(s, x->b, p->idx, p->n);
            uint64_t raw = 0;
            for (uint32_t i = 0; i < p->n; i++)
                raw += x->b->recs[p->idx[i]].len;
            st_add(&s->st_raw, raw);
            remove_part0(x);
            lh_buf_reset(&x->part_body);
            if (x->nparts == 0)
                batch_done(s, x);
        } else {
            count_acked(s, x->b, NULL, 0);
            st_add(&s->st_raw, x->b->raw_len);
            batch_done(s, x);
        }
        return;
    }
    if (status == 415 && x->b->codec != LH_CODEC_GZIP && x->b->codec != LH_CODEC_NONE) {
        struct lh_err err = { 0 };
        lh_warn("ship: %s does not accept %s (415); sending gzip (set batch.compression: gzip)",
                s->eps[ep].url, lh_codec_name((enum lh_codec)x->b->codec));
        if (to_gzip(s, x, &err) < 0)
            lh_error("ship: %s", err.msg);
        return;
    }
    int retry = status == 408 || status == 429 || status >= 500 || status == 401 ||
                status == 403 || status == 404 || status == 405 || status == 415 || status < 400;
    if (retry) {
        snprintf(what, sizeof(what), "HTTP %ld%s%.*s", status, sl->resp.len ? ": " : "",
                 sl->resp.len > 200 ? 200 : (int)sl->resp.len,
                 sl->resp.data ? sl->resp.data : "");
        for (char *p = what; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        endpoint_failed(s, ep, (status == 429 || status == 503) ? sl->retry_after : NULL, what);
        return;
    }
    endpoint_ok(s, ep);
    refused(s, x, (int)status, &sl->resp);
}

/* ---- the thread ------------------------------------------------------------------ */

static void take_inbox(struct lh_ship *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->ninbox;
    struct lh_batch **v = s->inbox;
    s->inbox = NULL;
    s->ninbox = s->inbox_cap = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        struct sb *x = calloc(1, sizeof(*x));
        if (x)
            x->b = v[i];
        if (!x || vec_insert_sorted(&s->memq, &s->nmem, &s->memcap, x) < 0) {
            /* Not reported: its lines are read again after a restart. */
            lh_error("ship: out of memory; batch %llu not sent", (unsigned long long)v[i]->seq);
            atomic_fetch_sub(&s->outstanding, 1);
            lh_batch_free(v[i]);
            free(x);
            continue;
        }
    }
    free(v);
    publish_memory(s);
}

static int apply_config(struct lh_ship *s, struct lh_ship_config *nc)
{
    struct endpoint *eps;
    if (eps_build(s, nc, &eps) < 0)
        return LH_ENOMEM;
    size_t want = (size_t)nc->in_flight;
    if (want > s->nslots) {
        struct slot **ns = realloc(s->slots, want * sizeof(*ns));
        if (!ns) {
            eps_free(eps, nc->endpoints.n);
            return LH_ENOMEM;
        }
        s->slots = ns;
        while (s->nslots < want) {
            struct slot *sl = calloc(1, sizeof(*sl));
            if (!sl || !(sl->easy = curl_easy_init())) {
                free(sl);
                break;
            }
            s->slots[s->nslots++] = sl;
        }
        if (s->nslots == 0) {
            eps_free(eps, nc->endpoints.n);
            return LH_ENOMEM;
        }
    }
    eps_free(s->eps, s->neps);
    s->eps = eps;
    s->neps = nc->endpoints.n;
    s->rr = 0;
    cfg_free(&s->cfg);
    s->cfg = *nc;
    memset(nc, 0, sizeof(*nc));
    atomic_store(&s->mem_max, s->cfg.memory_batches);
    return 0;
}

/* Swaps in a posted config once nothing is in flight (new connections,
 * new TLS files: a fresh connection pool). */
static void take_reload(struct lh_ship *s)
{
    pthread_mutex_lock(&s->mu);
    struct lh_ship_config *nc = s->nrun == 0 ? s->pending_cfg : NULL;
    if (nc)
        s->pending_cfg = NULL;
    pthread_mutex_unlock(&s->mu);
    if (!nc)
        return;
    CURLM *m = curl_multi_init();
    if (!m || apply_config(s, nc) < 0) {
        lh_error("ship: out of memory applying the new configuration; keeping the old one");
        if (m)
            curl_multi_cleanup(m);
        cfg_free(nc);
        free(nc);
        return;
    }
    curl_multi_cleanup(s->multi);
    s->multi = m;
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->cfg.in_flight);
    free(nc);
    lh_info("ship: configuration reloaded (%zu endpoint(s))", s->neps);
}

static int reload_pending(struct lh_ship *s)
{
    pthread_mutex_lock(&s->mu);
    int p = s->pending_cfg != NULL;
    pthread_mutex_unlock(&s->mu);
    return p;
}

/* The lowest-seq batch that can be sent now: a memory batch, or (unless
 * stopping) one of the disk buffer. NULL when none. */
/* 1 when a batch of memq has seq (memq is sorted). */
static int in_memq(const struct lh_ship *s, uint64_t seq)
{
    size_t lo = 0, hi = s->nmem;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->memq[mid]->b->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nmem && s->memq[lo]->b->seq == seq;
}

static struct sb *next_batch(struct lh_ship *s, int64_t now)
{
    struct sb *mem = NULL;
    for (size_t i = 0; i < s->nmem && !mem; i++)
        if (!s->memq[i]->in_flight && (!s->wa || s->memq[i]->on_disk))
            mem = s->memq[i];
    if (s->stopping || now < s->disk_retry_at)
        return mem;
    uint64_t n = lh_dbuf_count(s->dbuf);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = lh_dbuf_seq_at(s->dbuf, i);
        if (mem && mem->b->seq <= seq)
            return mem;
        if (lh_dbuf_delivered_at(s->dbuf, i) || in_memq(s, seq))
            continue;   /* waiting for the checkpoint, or held in memory (in flight) */
        struct sb *a = NULL;
        for (size_t k = 0; k < s->nactive && !a; k++)
            if (s->active[k]->b->seq == seq)
                a = s->active[k];
        if (a) {
            if (a->in_flight)
                continue;
            return a;
        }
        struct lh_err err = { 0 };
        struct lh_batch *b;
        int rc = lh_dbuf_load(s->dbuf, seq, &b, &err);
        if (rc == LH_ECORRUPT || rc == LH_ENOTFOUND) {
            lh_error("ship: %s", err.msg);
            n = lh_dbuf_count(s->dbuf);
            i--;   /* the index shrank: look at the same position again */
            continue;
        }
        if (rc < 0) {
            lh_error("ship: %s; retrying in 1 s", err.msg);
            s->disk_retry_at = now + 1000;
            return mem;
        }
        struct sb *x = calloc(1, sizeof(*x));
        if (x)
            x->b = b;
        if (!x || vec_insert_sorted(&s->active, &s->nactive, &s->activecap, x) < 0) {
            lh_batch_free(b);
            free(x);
            return mem;
        }
        x->on_disk = 1;
        x->loaded = 1;
        x->reported = 1;
        if (b->nrec == 0) {   /* nothing to send (only ranges) */
            batch_done(s, x);
            n = lh_dbuf_count(s->dbuf);
            i--;
            continue;
        }
        return x;
    }
    return mem;
}

static void dispatch(struct lh_ship *s, int64_t now)
{
    if (reload_pending(s))
        return;   /* let in-flight requests finish, then swap (take_reload) */
    while (s->nrun < s->nslots && s->nrun < (size_t)s->cfg.in_flight) {
        int ep = pick_endpoint(s, now);
        if (ep < 0)
            return;
        struct sb *x = next_batch(s, now);
        if (!x)
            return;
        struct slot *sl = NULL;
        for (size_t i = 0; i < s->nslots && !sl; i++)
            if (!s->slots[i]->x)
                sl = s->slots[i];
        if (!sl)
            return;
        struct lh_err err = { 0 };
        if (start(s, sl, x, ep, &err) < 0) {
            lh_error("%s", err.msg);
            s->disk_retry_at = now + 1000;
            return;
        }
    }
}

static void update_health(struct lh_ship *s, int64_t now)
{
    int up = any_up(s, now);
    atomic_store(&s->healthy, up);
    if (up)
        s->unhealthy_since = 0;
    else if (!s->unhealthy_since)
        s->unhealthy_since = now;
}

static void maybe_spill(struct lh_ship *s, int64_t now)
{
    if (!s->unhealthy_since || now < s->spill_retry_at)
        return;
    /* Written ahead, a batch is on disk already: only its memory copy goes,
     * at once (it is read back when a collector is up again). */
    int force = s->wa || s->nmem >= (size_t)s->cfg.memory_batches;
    if (!force && now - s->unhealthy_since < s->cfg.spill_after_ms)
        return;
    for (size_t i = 0; i < s->nmem;) {
        struct sb *x = s->memq[i];
        if (x->in_flight || x->split || (s->wa && !x->on_disk)) {
            i++;
            continue;
        }
        if (spill(s, x, 0) < 0) {
            s->spill_retry_at = now + 1000;
            return;
        }
    }
}

/* Ends every transfer now; their batches stay queued. */
static void abort_all(struct lh_ship *s)
{
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = s->slots[i];
        if (!sl->x)
            continue;
        curl_multi_remove_handle(s->multi, sl->easy);
        sl->x->in_flight = 0;
        sl->x = NULL;
        s->nrun--;
    }
    atomic_store(&s->st_in_flight, 0);
}

static int64_t poll_timeout(struct lh_ship *s, int64_t now)
{
    int64_t t = 1000;
    int waiting = s->nmem > 0 || (!s->stopping && lh_dbuf_count(s->dbuf) > 0);
    if (waiting)
        for (size_t i = 0; i < s->neps; i++)
            if (s->eps[i].down_until > now && s->eps[i].down_until - now < t)
                t = s->eps[i].down_until - now;
    if (waiting && !any_up(s, now) && s->unhealthy_since) {
        int64_t due = s->unhealthy_since + s->cfg.spill_after_ms - now;
        if (due > 0 && due < t)
            t = due;
    }
    if (s->stopping && s->stop_deadline - now < t)
        t = s->stop_deadline > now ? s->stop_deadline - now : 0;
    if (waiting && s->disk_retry_at > now && s->disk_retry_at - now < t)
        t = s->disk_retry_at - now;
    if (s->wa && s->nmem && s->wa_retry_at > now && s->wa_retry_at - now < t)
        t = s->wa_retry_at - now;
    return t < 0 ? 0 : t;
}

static void *thread_main(void *arg)
{
    struct lh_ship *s = arg;
    for (;;) {
        int64_t now = mono_ms();
        take_inbox(s);
        take_reload(s);
        update_health(s, now);
        pthread_mutex_lock(&s->mu);
        int stop = s->stop_req, abort_now = s->abort_req;
        int64_t deadline = s->stop_deadline;
        pthread_mutex_unlock(&s->mu);
        if (stop && !s->stopping) {
            s->stopping = 1;
            s->stop_deadline = deadline;
        }
        if (abort_now)
            wa_wait(s, now);
        write_ahead(s, now);
        collect_delivered(s);
        if (s->stopping) {
            if (abort_now || now >= s->stop_deadline) {
                abort_all(s);
                wa_wait(s, now);
                while (s->nmem)
                    spill(s, s->memq[0], 1);
                break;
            }
            if (s->nmem == 0 && s->nrun == 0)
                break;
            if (!any_up(s, now)) {   /* nothing will be delivered: keep it on disk */
                wa_wait(s, now);     /* one writer at a time */
                for (size_t i = 0; i < s->nmem;) {
                    if (s->memq[i]->in_flight || s->memq[i]->writing)
                        i++;
                    else
                        spill(s, s->memq[i], 1);
                }
            }
        }
        maybe_spill(s, now);
        dispatch(s, now);
        int64_t t = poll_timeout(s, now);
        curl_multi_poll(s->multi, NULL, 0, (int)t, NULL);
        int running = 0;
        curl_multi_perform(s->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            void *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            finish(s, priv, msg->data.result);
        }
    }
    abort_all(s);
    while (s->nactive) {
        struct sb *x = s->active[0];
        vec_remove(s->active, &s->nactive, x);
        sb_free(x);
    }
    atomic_store(&s->stopped, 1);
    if (s->notify)
        s->notify(s->notify_arg);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------ */

static double fill_ratio(void *arg)
{
    return lh_ship_fill(arg);
}

static double gauge_u64(_Atomic uint64_t *v)
{
    return (double)atomic_load(v);
}

static double g_in_flight(void *arg)
{
    return gauge_u64(&((struct lh_ship *)arg)->st_in_flight);
}

static double g_memory(void *arg)
{
    return gauge_u64(&((struct lh_ship *)arg)->st_memory);
}

static double g_buf_bytes(void *arg)
{
    return (double)lh_dbuf_bytes(((struct lh_ship *)arg)->dbuf);
}

static double g_buf_batches(void *arg)
{
    return (double)lh_dbuf_count(((struct lh_ship *)arg)->dbuf);
}

static double g_buf_max(void *arg)
{
    return (double)lh_dbuf_max(((struct lh_ship *)arg)->dbuf);
}

static double g_healthy(void *arg)
{
    return lh_ship_healthy(arg);
}

static void register_metrics(struct lh_ship *s)
{
    struct lh_metrics *m = s->metrics;
    if (!m)
        return;
    lh_gauge_fn(m, "loghaul_agent_requests_in_flight", "Requests to collectors in flight.",
                NULL, g_in_flight, s);
    lh_gauge_fn(m, "loghaul_agent_memory_batches", "Batches held in memory by the shipper.",
                NULL, g_memory, s);
    lh_gauge_fn(m, "loghaul_agent_buffer_bytes", "Bytes in the disk buffer.", NULL,
                g_buf_bytes, s);
    lh_gauge_fn(m, "loghaul_agent_buffer_batches", "Batches in the disk buffer.", NULL,
                g_buf_batches, s);
    lh_gauge_fn(m, "loghaul_agent_buffer_max_bytes", "Size bound of the disk buffer.", NULL,
                g_buf_max, s);
    lh_gauge_fn(m, "loghaul_agent_buffer_fill_ratio", "Disk buffer fill ratio (0..1).", NULL,
                fill_ratio, s);
    lh_gauge_fn(m, "loghaul_agent_collector_up", "1 when at least one collector endpoint is up.",
                NULL, g_healthy, s);
    s->c_sampled = lh_counter_get(m, "loghaul_agent_lines_sampled_total",
                                  "Lines of level INFO and below dropped by sampling as the "
                                  "disk buffer fills.", NULL);
    s->h_latency = lh_histogram_get(m, "loghaul_agent_request_seconds",
                                    "Time of one request to a collector.", NULL,
                                    lh_latency_buckets, lh_latency_nbuckets);
}

int lh_ship_create(const struct lh_ship_config *cfg, struct lh_dbuf *dbuf,
                   struct lh_ledger *ledger, struct lh_metrics *metrics,
                   lh_ship_notify_fn notify, void *arg, struct lh_ship **out,
                   struct lh_err *err)
{
    int rc = lh_http_client_global_init(err);
    if (rc < 0 || (rc = lh_ship_config_check(cfg, err)) < 0)
        return rc;
    struct lh_ship *s = calloc(1, sizeof(*s));
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
    s->dbuf = dbuf;
    s->wa = lh_dbuf_write_ahead(dbuf);
    s->ledger = ledger;
    s->metrics = metrics;
    s->notify = notify;
    s->notify_arg = arg;
    pthread_mutex_init(&s->mu, NULL);
    struct lh_ship_config nc;
    memset(&nc, 0, sizeof(nc));
    if (lh_codec_ctx_create(&s->codec, err) < 0 || cfg_copy(&nc, cfg) < 0 ||
        !(s->multi = curl_multi_init()) || apply_config(s, &nc) < 0) {
        cfg_free(&nc);
        lh_ship_destroy(s);
        return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->cfg.in_flight);
    atomic_store(&s->healthy, 1);
    if (s->wa && writer_start(s) < 0) {
        lh_ship_destroy(s);
        return lh_err_set(err, LH_ERR, "ship: cannot start the write-ahead thread");
    }
    register_metrics(s);
    if ((rc = pthread_create(&s->thread, NULL, thread_main, s)) != 0) {
        lh_ship_destroy(s);
        return lh_err_errno(err, LH_ERR, rc, "ship: pthread_create");
    }
    s->started = 1;
    *out = s;
    return 0;
}

static void wake(struct lh_ship *s)
{
    if (s->multi)
        curl_multi_wakeup(s->multi);
}

void lh_ship_destroy(struct lh_ship *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop_req = 1;
        s->abort_req = 1;
        pthread_mutex_unlock(&s->mu);
        wake(s);
        pthread_join(s->thread, NULL);
    }
    writer_stop(s);
    if (s->wa && s->dbuf)
        lh_dbuf_remove_delivered(s->dbuf, atomic_load(&s->ckpt_seq));
    /* Batches submitted after the thread ended: read again after a restart. */
    for (size_t i = 0; i < s->ninbox; i++)
        lh_batch_free(s->inbox[i]);
    free(s->inbox);
    for (size_t i = 0; i < s->nmem; i++)
        sb_free(s->memq[i]);
    free(s->memq);
    for (size_t i = 0; i < s->nactive; i++)
        sb_free(s->active[i]);
    free(s->active);
    for (size_t i = 0; i < s->nslots; i++) {
        if (s->slots[i]->easy)
            curl_easy_cleanup(s->slots[i]->easy);
        curl_slist_free_all(s->slots[i]->hdrs);
        lh_buf_free(&s->slots[i]->resp);
        free(s->slots[i]);
    }
    free(s->slots);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    eps_free(s->eps, s->neps);
    cfg_free(&s->cfg);
    if (s->pending_cfg) {
        cfg_free(s->pending_cfg);
        free(s->pending_cfg);
    }
    free(s->done);
    lh_codec_ctx_destroy(s->codec);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void lh_ship_submit(struct lh_ship *s, struct lh_batch *b)
{
    atomic_fetch_add(&s->outstanding, 1);
    st_add(&s->st_submitted, 1);
    pthread_mutex_lock(&s->mu);
    if (s->ninbox == s->inbox_cap) {
        size_t cap = s->inbox_cap ? s->inbox_cap * 2 : 16;
        struct lh_batch **nv = realloc(s->inbox, cap * sizeof(*nv));
        if (!nv) {
            pthread_mutex_unlock(&s->mu);
            lh_error("ship: out of memory; batch %llu not sent", (unsigned long long)b->seq);
            atomic_fetch_sub(&s->outstanding, 1);
            lh_batch_free(b);
            return;
        }
        s->inbox = nv;
        s->inbox_cap = cap;
    }
    s->inbox[s->ninbox++] = b;
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

int lh_ship_busy(const struct lh_ship *s)
{
    uint64_t max = (uint64_t)atomic_load(&s->mem_max);
    if (!atomic_load(&s->healthy))   /* reading goes on into the disk buffer... */
        return s->wa && atomic_load(&s->outstanding) >= max;   /* ...as fast as it is written */
    uint64_t backlog = atomic_load(&s->outstanding) + lh_dbuf_waiting(s->dbuf);
    return backlog >= max;
}

double lh_ship_fill(const struct lh_ship *s)
{
    uint64_t max = lh_dbuf_max(s->dbuf);
    return max ? (double)lh_dbuf_bytes(s->dbuf) / (double)max : 0;
}

int lh_ship_healthy(const struct lh_ship *s)
{
    return atomic_load(&s->healthy);
}

int lh_ship_reload(struct lh_ship *s, const struct lh_ship_config *cfg, struct lh_err *err)
{
    int rc = lh_ship_config_check(cfg, err);
    if (rc < 0)
        return rc;
    struct lh_ship_config *nc = calloc(1, sizeof(*nc));
    if (!nc || cfg_copy(nc, cfg) < 0) {
        free(nc);
        return lh_err_set(err, LH_ENOMEM, "ship: out of memory");
    }
    pthread_mutex_lock(&s->mu);
    if (s->pending_cfg) {
        cfg_free(s->pending_cfg);
        free(s->pending_cfg);
    }
    s->pending_cfg = nc;
    pthread_mutex_unlock(&s->mu);
    wake(s);
    return 0;
}

void lh_ship_stop(struct lh_ship *s, int64_t deadline_ms)
{
    pthread_mutex_lock(&s->mu);
    if (!s->stop_req) {
        s->stop_req = 1;
        s->stop_deadline = deadline_ms;
    }
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

void lh_ship_checkpointed(struct lh_ship *s, uint64_t seq)
{
    uint64_t cur = atomic_load(&s->ckpt_seq);
    while (seq > cur && !atomic_compare_exchange_weak(&s->ckpt_seq, &cur, seq))
        ;
    if (s->wa && !atomic_load(&s->stopped))
        wake(s);
}

int lh_ship_stopped(const struct lh_ship *s)
{
    return atomic_load(&s->stopped);
}

void lh_ship_get_stats(const struct lh_ship *s, struct lh_ship_stats *o)
{
    struct lh_ship *m = (struct lh_ship *)s;
    o->submitted = atomic_load(&m->st_submitted);
    o->delivered = atomic_load(&m->st_delivered);
    o->replayed = atomic_load(&m->st_replayed);
    o->spilled = atomic_load(&m->st_spilled);
    o->dropped = atomic_load(&m->st_dropped);
    o->requests = atomic_load(&m->st_requests);
    o->failures = atomic_load(&m->st_failures);
    o->splits = atomic_load(&m->st_splits);
    o->rejected = atomic_load(&m->st_rejected);
    o->bytes_sent = atomic_load(&m->st_bytes);
    o->raw_bytes_sent = atomic_load(&m->st_raw);
    o->in_flight = atomic_load(&m->st_in_flight);
    o->sampled = atomic_load(&m->st_sampled);
    o->memory = atomic_load(&m->st_memory);
    o->written = atomic_load(&m->st_written);
    o->buffered = lh_dbuf_count(m->dbuf);
}
