/* pipeline.c - the indexer's consume loop (see pipeline.h). */
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lh/arena.h"
#include "lh/backoff.h"
#include "lh/log.h"
#include "lh/time.h"

const struct lh_opt lh_pipeline_opts[] = {
    { LH_OPT_STR, "group", "loghaul-indexer", offsetof(struct lh_pipeline_config, group),
      "consumer group of the indexers (they share the topic's partitions)" },
    { LH_OPT_INT, "max_batch", "5000", offsetof(struct lh_pipeline_config, max_batch),
      "messages per batch" },
    { LH_OPT_SIZE, "max_batch_bytes", "16MiB",
      offsetof(struct lh_pipeline_config, max_batch_bytes),
      "message bytes per batch (bounds memory, also while a sink is down)" },
    { LH_OPT_DURATION, "linger", "200ms", offsetof(struct lh_pipeline_config, linger_ms),
      "a batch is handed on when full or this long after its first message" },
    { LH_OPT_INT, "workers", "1", offsetof(struct lh_pipeline_config, workers),
      "threads that decode, parse and mask a batch (the pipeline thread is one of them)" },
    { LH_OPT_DURATION, "backoff_base", "200ms",
      offsetof(struct lh_pipeline_config, backoff_base_ms),
      "first retry delay of a failing sink, DLQ or bus (exponential, full jitter)" },
    { LH_OPT_DURATION, "backoff_cap", "30s", offsetof(struct lh_pipeline_config, backoff_cap_ms),
      "longest retry delay" },
    { LH_OPT_DURATION, "flush_interval", "1s",
      offsetof(struct lh_pipeline_config, flush_interval_ms),
      "how often the sinks' pending work is flushed (the archive's open objects)" },
    { LH_OPT_STR, "replay_topic", "auto", offsetof(struct lh_pipeline_config, replay_topic),
      "topic `loghaul dlq replay` writes to and the indexer also reads: auto (spool: "
      "<topic>.replay; kafka: none, replays go to the main topic), a name, or none" },
    { 0 }
};

int lh_pipeline_replay_topic(const struct lh_pipeline_config *cfg, const struct lh_bus_config *bus,
                             char *out, size_t size)
{
    const char *r = cfg->replay_topic;
    if (!r || !r[0] || strcmp(r, "none") == 0)
        return 0;
    if (strcmp(r, "auto") == 0) {
        if (bus->type != LH_BUS_SPOOL)
            return 0;
        snprintf(out, size, "%s.replay", bus->topic ? bus->topic : "logs");
        return 1;
    }
    snprintf(out, size, "%s", r);
    return 1;
}

/* ---- state ---- */

enum { ITEM_OK = 0, ITEM_BAD };

struct item {
    struct lh_event ev;
    const struct lh_bus_msg *msg;
    uint32_t to;                 /* sinks */
    int status;
    const char *reason;          /* ITEM_BAD: why (worker arena) */
};

struct input {
    struct lh_bus_consumer *c;
    char *topic;
    struct lh_bus_batch *held;   /* polled, not yet committed */
    size_t nheld, capheld;
};

struct worker {
    struct lh_pipeline *p;
    pthread_t thread;
    int started;
    struct lh_stage_worker *sw;
    struct lh_arena arena;
    size_t from, to;             /* items of the current batch */
    int rc;
};

struct sink_state {
    struct lh_sink *s;
    struct lh_sink_report rep;
    struct lh_event *evs;        /* the events of this batch routed here */
    size_t *idx;                 /* their item indexes */
    int done;
    int down;                    /* last write failed (guarded by p->mu) */
    char why[256];               /* guarded by p->mu */
    int flush_failing;           /* last flush failed (guarded by p->mu) */
    char flush_why[256];         /* guarded by p->mu */
    struct lh_counter *written, *duplicates, *rejected, *errors;
    struct lh_gauge *up;
    struct lh_histogram *seconds;
};

struct dead_letter {
    size_t item;
    const char *sink;            /* "" for undecodable messages */
    const char *reason;
};

struct tenant_count {
    const char *tenant;
    uint64_t n;
};

struct lh_pipeline {
    /* settings */
    size_t max_batch;
    uint64_t max_bytes;
    int64_t linger_ms, flush_ms;
    uint32_t backoff_base, backoff_cap;
    char *dlq_topic;
    struct lh_bus *bus;
    struct lh_metrics *m;
    struct lh_pipeline_hooks hooks;

    struct input in[2];
    size_t nin;
    struct sink_state *sinks;
    size_t nsinks;

    struct lh_stages *stages;
    struct worker *w;
    size_t nw;

    /* the batch in hand */
    struct item *items;
    size_t n;
    uint64_t bytes;
    int64_t first_ns;            /* monotonic time of its first message */
    struct dead_letter *dl;
    size_t ndl, capdl;
    struct lh_arena dl_arena;
    struct tenant_count *tc;
    size_t ntc, captc;

    /* worker threads */
    pthread_mutex_t wmu;
    pthread_cond_t wgo, wdone;
    uint64_t gen;
    size_t pending;
    int wquit;

    /* control, status (mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                    /* also read without mu (atomic) */
    int64_t drain_deadline_ns;   /* monotonic */
    struct lh_stages *next_stages;
    int dlq_down, bus_down;
    char dlq_why[256], bus_why[256];
    pthread_t thread;
    int thread_started;
    void (*done)(void *);
    void *done_arg;

    /* stats (atomic) */
    uint64_t st_polled, st_batches, st_committed, st_dlq, st_failures, st_swaps;
    int st_paused;

    int64_t last_flush_ns, last_lag_ns;
    struct lh_backoff bo;

    /* metrics */
    struct lh_counter *c_consumed, *c_consumed_bytes, *c_undecodable, *c_parse_failed;
    struct lh_counter *c_masked_events, *c_unrouted, *c_commit_errors, *c_poll_errors;
    struct lh_gauge *g_lag, *g_paused;
    struct lh_histogram *h_batch_seconds, *h_batch_msgs;
};

static int64_t mono_ns(void) { return lh_time_mono_ns(); }

static int stopping(struct lh_pipeline *p) { return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE); }

static void set_paused(struct lh_pipeline *p, int v)
{
    __atomic_store_n(&p->st_paused, v, __ATOMIC_RELEASE);
    lh_gauge_set(p->g_paused, v);
}

/* Sleeps ms unless a stop comes (returns 1 then). */
static int nap(struct lh_pipeline *p, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stop)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            break;
    int s = p->stop;
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* After a failure: waits a backoff delay. Returns 1 when the batch must be
 * given up (a stop whose drain deadline passed). */
static int retry_wait(struct lh_pipeline *p)
{
    uint32_t ms = lh_backoff_next_ms(&p->bo);
    if (ms < 10)
        ms = 10;
    if (stopping(p)) {
        int64_t left = (p->drain_deadline_ns - mono_ns()) / 1000000;
        if (left <= 0)
            return 1;
        if (ms > left)
            ms = (uint32_t)left;
        /* A stop is in already, so nap returns at once: sleep plainly. */
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
        return mono_ns() >= p->drain_deadline_ns;
    }
    nap(p, ms);
    if (stopping(p))
        return mono_ns() >= p->drain_deadline_ns;
    return 0;
}

/* ---- metrics ---- */

static struct lh_counter *counter1(struct lh_pipeline *p, const char *name, const char *help,
                                   const char *key, const char *value)
{
    char lb[320], v[300];
    lb[0] = '\0';
    if (key)
        snprintf(lb, sizeof(lb), "%s", lh_metrics_label(v, sizeof(v), key, value));
    return lh_counter_get(p->m, name, help, lb);
}

static void metrics_init(struct lh_pipeline *p)
{
    struct lh_metrics *m = p->m;
    p->c_consumed = lh_counter_get(m, "loghaul_indexer_consumed_total",
                                   "Messages taken from the bus.", NULL);
    p->c_consumed_bytes = lh_counter_get(m, "loghaul_indexer_consumed_bytes_total",
                                         "Bytes of message values taken from the bus.", NULL);
    p->c_undecodable = lh_counter_get(m, "loghaul_indexer_undecodable_total",
                                      "Bus messages that are not events (sent to the DLQ).",
                                      NULL);
    p->c_parse_failed = lh_counter_get(m, "loghaul_indexer_parse_failures_total",
                                       "Lines no parser understood (kept whole, "
                                       "parse_failed=true).", NULL);
    p->c_masked_events = lh_counter_get(m, "loghaul_indexer_masked_events_total",
                                        "Events with at least one masked value.", NULL);
    p->c_unrouted = lh_counter_get(m, "loghaul_indexer_unrouted_total",
                                   "Events no route sent to any sink.", NULL);
    p->c_commit_errors = lh_counter_get(m, "loghaul_indexer_commit_errors_total",
                                        "Failed bus commits (the next commit covers them).",
                                        NULL);
    p->c_poll_errors = lh_counter_get(m, "loghaul_indexer_poll_errors_total",
                                      "Failed bus polls.", NULL);
    p->g_lag = lh_gauge_get(m, "loghaul_indexer_bus_lag_messages",
                            "Messages between the indexer's position and the end of the topic.",
                            NULL);
    p->g_paused = lh_gauge_get(m, "loghaul_indexer_paused",
                               "1 while the pipeline holds a batch for a failing sink or DLQ.",
                               NULL);
    static const double secs[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10,
                                   30, 60 };
    static const double msgs[] = { 1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000 };
    p->h_batch_seconds = lh_histogram_get(m, "loghaul_indexer_batch_seconds",
                                          "From a batch's first message to its commit.", NULL,
                                          secs, sizeof(secs) / sizeof(secs[0]));
    p->h_batch_msgs = lh_histogram_get(m, "loghaul_indexer_batch_messages",
                                       "Messages per committed batch.", NULL, msgs,
                                       sizeof(msgs) / sizeof(msgs[0]));
    for (size_t i = 0; i < p->nsinks; i++) {
        struct sink_state *s = &p->sinks[i];
        const char *nm = s->s->name;
        s->written = counter1(p, "loghaul_indexer_written_total",
                              "Events a sink made durable.", "sink", nm);
        s->duplicates = counter1(p, "loghaul_indexer_duplicates_total",
                                 "Events a sink already had (same id).", "sink", nm);
        s->rejected = counter1(p, "loghaul_indexer_rejected_total",
                               "Events a sink refused for good (sent to the DLQ).", "sink", nm);
        s->errors = counter1(p, "loghaul_indexer_sink_errors_total",
                             "Failed sink writes (each is retried).", "sink", nm);
        char lb[300], v[300];
        snprintf(lb, sizeof(lb), "%s", lh_metrics_label(v, sizeof(v), "sink", nm));
        s->up = lh_gauge_get(p->m, "loghaul_indexer_sink_up",
                             "1 when the sink's last write succeeded.", lb);
        lh_gauge_set(s->up, 1);
        s->seconds = lh_histogram_get(p->m, "loghaul_indexer_sink_write_seconds",
                                      "Duration of one sink write call.", lb, lh_latency_buckets,
                                      lh_latency_nbuckets);
    }
}

static void count_stages(struct lh_pipeline *p)
{
    static const char *const kinds[] = { "none", "json", "grok", "logfmt", "failed" };
    const struct lh_stages *st = p->stages;
    size_t ng = lh_stages_grok_count(st), nm = lh_stages_mask_rule_count(st);
    size_t ns = lh_stages_sample_count(st), nk = lh_stages_sink_count(st);
    for (size_t k = 0; k < p->nw; k++) {
        const struct lh_stage_counts *c = lh_stage_worker_counts(p->w[k].sw);
        lh_counter_add(p->c_undecodable, c->undecodable);
        lh_counter_add(p->c_parse_failed, c->kind[LH_PARSE_FAILED]);
        lh_counter_add(p->c_masked_events, c->masked_events);
        lh_counter_add(p->c_unrouted, c->unrouted);
        char lb[400], a[200];
        for (int i = 0; i < 5; i++) {
            if (!c->kind[i] || i == LH_PARSE_GROK)
                continue;
            snprintf(lb, sizeof(lb), "kind=\"%s\",pattern=\"\"", kinds[i]);
            lh_counter_add(lh_counter_get(p->m, "loghaul_indexer_parsed_total",
                                          "Events by the parser that understood them.", lb),
                           c->kind[i]);
        }
        for (size_t i = 0; i < ng; i++) {
            if (!c->grok[i])
                continue;
            snprintf(lb, sizeof(lb), "kind=\"grok\",%s",
                     lh_metrics_label(a, sizeof(a), "pattern", lh_stages_grok_name(st, i)));
            lh_counter_add(lh_counter_get(p->m, "loghaul_indexer_parsed_total",
                                          "Events by the parser that understood them.", lb),
                           c->grok[i]);
        }
        for (size_t i = 0; i < nm; i++)
            if (c->masked[i])
                lh_counter_add(counter1(p, "loghaul_indexer_masked_total",
                                        "Values replaced by PII masking, by rule.", "rule",
                                        lh_stages_mask_rule_name(st, i)),
                               c->masked[i]);
        for (size_t i = 0; i < ns; i++)
            if (c->sampled[i])
                lh_counter_add(counter1(p, "loghaul_indexer_sampled_total",
                                        "Events sampled out (of some sinks), by rule.",
                                        "reason", lh_stages_sample_name(st, i)),
                               c->sampled[i]);
        for (size_t i = 0; i < nk && i < p->nsinks; i++)
            if (c->routed[i])
                lh_counter_add(counter1(p, "loghaul_indexer_routed_total",
                                        "Events routed to a sink (after sampling).", "sink",
                                        p->sinks[i].s->name),
                               c->routed[i]);
        lh_stage_worker_reset_counts(p->w[k].sw);
    }
}

/* The DLQ reason class for metrics: the reason's leading identifier
 * ("mapper_parsing_exception: ..."), else "other". */
static void reason_class(const char *reason, char *out, size_t size)
{
    size_t n = 0;
    while (reason[n] && n < 48 && ((reason[n] >= 'a' && reason[n] <= 'z') ||
                                   (reason[n] >= 'A' && reason[n] <= 'Z') ||
                                   (reason[n] >= '0' && reason[n] <= '9') || reason[n] == '_'))
        n++;
    if (n == 0 || n == 48 || (reason[n] && reason[n] != ':' && reason[n] != ' '))
        snprintf(out, size, "other");
    else
        snprintf(out, size, "%.*s", (int)n, reason);
}

/* ---- workers ---- */

/* A dead letter replayed by `loghaul dlq replay` names the sink that
 * refused it: it goes to that sink only (the others have it already; the
 * archive would hold it twice). All sinks when the name is unknown now. */
static uint32_t replay_mask(const struct lh_pipeline *p, const struct lh_bus_msg *m)
{
    const char *sink = NULL;
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->headers[i].key && strcmp(m->headers[i].key, "replay_sink") == 0)
            sink = m->headers[i].value;
    if (!sink || !*sink)
        return UINT32_MAX;
    for (size_t i = 0; i < p->nsinks; i++)
        if (strcmp(p->sinks[i].s->name, sink) == 0)
            return 1u << i;
    return UINT32_MAX;
}

static void process_range(struct lh_pipeline *p, struct worker *w)
{
    w->rc = 0;
    for (size_t i = w->from; i < w->to; i++) {
        struct item *it = &p->items[i];
        struct lh_err err = { 0 };
        it->status = ITEM_OK;
        it->to = 0;
        it->reason = NULL;
        int rc = lh_stages_decode(w->sw, it->msg, &it->ev, &w->arena, &err);
        if (rc == LH_ENOMEM) {
            w->rc = rc;
            return;
        }
        if (rc < 0) {
            it->status = ITEM_BAD;
            char why[600];
            snprintf(why, sizeof(why), "undecodable: %s", err.msg[0] ? err.msg : "not an event");
            it->reason = lh_arena_strdup(&w->arena, why);
            if (!it->reason) {
                w->rc = LH_ENOMEM;
                return;
            }
            continue;
        }
        int64_t to = lh_stages_process(w->sw, &it->ev, &w->arena);
        if (to < 0) {
            w->rc = (int)to;
            return;
        }
        it->to = (uint32_t)to & replay_mask(p, it->msg);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct lh_pipeline *p = w->p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->wmu);
    for (;;) {
        while (!p->wquit && p->gen == seen)
            pthread_cond_wait(&p->wgo, &p->wmu);
        if (p->wquit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->wmu);
        process_range(p, w);
        pthread_mutex_lock(&p->wmu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->wdone);
    }
    pthread_mutex_unlock(&p->wmu);
    return NULL;
}

static void reset_arenas(struct lh_pipeline *p)
{
    for (size_t k = 0; k < p->nw; k++)
        lh_arena_reset(&p->w[k].arena);
}

/* Runs the stages over the batch on every worker. */
static int process_batch(struct lh_pipeline *p)
{
    size_t per = (p->n + p->nw - 1) / p->nw;
    /* Small batches are not worth waking threads for. */
    size_t use = p->n < 64 ? 1 : p->nw;
    if (use == 1)
        per = p->n;
    for (size_t k = 0; k < p->nw; k++) {
        size_t a = k * per < p->n ? k * per : p->n;
        size_t b = a + per < p->n ? a + per : p->n;
        if (k >= use)
            a = b = p->n;
        p->w[k].from = a;
        p->w[k].to = b;
    }
    if (use > 1) {
        pthread_mutex_lock(&p->wmu);
        p->pending = p->nw - 1;
        p->gen++;
        pthread_cond_broadcast(&p->wgo);
        pthread_mutex_unlock(&p->wmu);
    }
    process_range(p, &p->w[0]);
    if (use > 1) {
        pthread_mutex_lock(&p->wmu);
        while (p->pending > 0)
            pthread_cond_wait(&p->wdone, &p->wmu);
        pthread_mutex_unlock(&p->wmu);
    }
    for (size_t k = 0; k < p->nw; k++)
        if (p->w[k].rc < 0)
            return p->w[k].rc;
    return 0;
}

static void workers_stop(struct lh_pipeline *p)
{
    pthread_mutex_lock(&p->wmu);
    p->wquit = 1;
    pthread_cond_broadcast(&p->wgo);
    pthread_mutex_unlock(&p->wmu);
    for (size_t k = 1; k < p->nw; k++)
        if (p->w[k].started)
            pthread_join(p->w[k].thread, NULL);
}

static int make_stage_workers(struct lh_pipeline *p)
{
    for (size_t k = 0; k < p->nw; k++)
        if (lh_stage_worker_create(p->stages, &p->w[k].sw) < 0)
            return LH_ENOMEM;
    return 0;
}

static void free_stage_workers(struct lh_pipeline *p)
{
    for (size_t k = 0; k < p->nw; k++) {
        lh_stage_worker_destroy(p->w[k].sw);
        p->w[k].sw = NULL;
    }
}

/* Between batches, on the pipeline thread (workers idle). */
static void maybe_swap_stages(struct lh_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    struct lh_stages *ns = p->next_stages;
    p->next_stages = NULL;
    pthread_mutex_unlock(&p->mu);
    if (!ns)
        return;
    struct lh_stages *old = p->stages;
    struct lh_stage_worker **keep = calloc(p->nw, sizeof(*keep));
    int ok = keep != NULL;
    for (size_t k = 0; ok && k < p->nw; k++)
        if (lh_stage_worker_create(ns, &keep[k]) < 0)
            ok = 0;
    if (!ok) {
        for (size_t k = 0; keep && k < p->nw; k++)
            lh_stage_worker_destroy(keep[k]);
        free(keep);
        lh_stages_destroy(ns);
        lh_error("reload: out of memory building the new stages; keeping the old ones");
        return;
    }
    count_stages(p);   /* what the old workers counted */
    free_stage_workers(p);
    for (size_t k = 0; k < p->nw; k++)
        p->w[k].sw = keep[k];
    free(keep);
    p->stages = ns;
    lh_stages_destroy(old);
    __atomic_add_fetch(&p->st_swaps, 1, __ATOMIC_RELAXED);
    lh_info("pipeline: new parse/enrich/mask/route settings in use");
}

void lh_pipeline_set_stages(struct lh_pipeline *p, struct lh_stages *s)
{
    pthread_mutex_lock(&p->mu);
    struct lh_stages *old = p->next_stages;
    p->next_stages = s;
    pthread_mutex_unlock(&p->mu);
    lh_stages_destroy(old);
}

/* ---- gather ---- */

/* held[] has room for max_batch batches (every poll brings at least one
 * message), allocated up front: holding a batch never fails. */
static void hold(struct input *in, const struct lh_bus_batch *b)
{
    in->held[in->nheld++] = *b;
}

static void release_held(struct lh_pipeline *p)
{
    for (size_t i = 0; i < p->nin; i++) {
        struct input *in = &p->in[i];
        for (size_t k = 0; k < in->nheld; k++)
            lh_bus_batch_release(in->c, &in->held[k]);
        in->nheld = 0;
    }
}

static void set_bus_status(struct lh_pipeline *p, int down, const char *why)
{
    pthread_mutex_lock(&p->mu);
    p->bus_down = down;
    if (why)
        snprintf(p->bus_why, sizeof(p->bus_why), "%s", why);
    pthread_mutex_unlock(&p->mu);
}

/* Polls one input for up to the room left; returns messages added. */
static int poll_input(struct lh_pipeline *p, struct input *in, int timeout_ms)
{
    size_t room = p->max_batch - p->n;
    struct lh_bus_batch b = { 0 };
    struct lh_err err = { 0 };
    int rc = lh_bus_poll(in->c, room, timeout_ms, &b, &err);
    if (rc < 0) {
        lh_counter_add(p->c_poll_errors, 1);
        lh_warn("pipeline: poll of %s: %s", in->topic, err.msg);
        set_bus_status(p, 1, err.msg);
        return rc;
    }
    if (p->bus_down)
        set_bus_status(p, 0, NULL);
    if (rc == 0)
        return 0;
    hold(in, &b);
    if (p->n == 0)
        p->first_ns = mono_ns();
    for (size_t i = 0; i < b.n && p->n < p->max_batch; i++) {
        struct item *it = &p->items[p->n++];
        memset(it, 0, sizeof(*it));
        it->msg = &b.msgs[i];
        p->bytes += b.msgs[i].value_len;
    }
    __atomic_add_fetch(&p->st_polled, b.n, __ATOMIC_RELAXED);
    lh_counter_add(p->c_consumed, b.n);
    uint64_t bytes = 0;
    for (size_t i = 0; i < b.n; i++)
        bytes += b.msgs[i].value_len;
    lh_counter_add(p->c_consumed_bytes, bytes);
    return (int)b.n;
}

/* Fills the batch. Returns its size (0: nothing within the idle wait), or
 * a negative code when the bus failed before anything arrived. */
static int gather(struct lh_pipeline *p)
{
    p->n = 0;
    p->bytes = 0;
    const int idle_ms = 200;
    while (!stopping(p) && p->n < p->max_batch && p->bytes < p->max_bytes) {
        int timeout;
        if (p->n == 0) {
            maybe_swap_stages(p);   /* a reload applies from the next message on */
            timeout = idle_ms;
        } else {
            int64_t left = (p->first_ns + p->linger_ms * 1000000 - mono_ns()) / 1000000;
            if (left <= 0)
                break;
            timeout = (int)left;
        }
        if (p->nin > 1 && poll_input(p, &p->in[1], 0) > 0)
            continue;
        int rc = poll_input(p, &p->in[0], timeout);
        if (rc < 0) {
            if (p->n > 0)
                break;
            return rc;
        }
        if (rc == 0 && p->n == 0)
            return 0;
    }
    return (int)p->n;
}

/* ---- deliver ---- */

static int dl_add(struct lh_pipeline *p, size_t item, const char *sink, const char *reason)
{
    if (p->ndl == p->capdl) {
        size_t cap = p->capdl ? p->capdl * 2 : 64;
        struct dead_letter *v = realloc(p->dl, cap * sizeof(*v));
        if (!v)
            return LH_ENOMEM;
        p->dl = v;
        p->capdl = cap;
    }
    const char *r = lh_arena_strdup(&p->dl_arena, reason);
    if (!r)
        return LH_ENOMEM;
    p->dl[p->ndl++] = (struct dead_letter){ item, sink, r };
    return 0;
}

static void tenant_add(struct lh_pipeline *p, const char *tenant, uint64_t n)
{
    for (size_t i = 0; i < p->ntc; i++)
        if (strcmp(p->tc[i].tenant, tenant) == 0) {
            p->tc[i].n += n;
            return;
        }
    if (p->ntc == p->captc) {
        size_t cap = p->captc ? p->captc * 2 : 16;
        struct tenant_count *v = realloc(p->tc, cap * sizeof(*v));
        if (!v)
            return;   /* only a metric is lost */
        p->tc = v;
        p->captc = cap;
    }
    p->tc[p->ntc++] = (struct tenant_count){ tenant, n };
}

static void set_sink_status(struct lh_pipeline *p, struct sink_state *s, int down,
                            const char *why)
{
    pthread_mutex_lock(&p->mu);
    s->down = down;
    if (why)
        snprintf(s->why, sizeof(s->why), "%s", why);
    pthread_mutex_unlock(&p->mu);
    lh_gauge_set(s->up, down ? 0 : 1);
}

/* One write attempt of sink i. Returns 0 when done, <0 to retry. */
static int write_sink(struct lh_pipeline *p, size_t si)
{
    struct sink_state *s = &p->sinks[si];
    uint32_t bit = 1u << si;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct item *it = &p->items[i];
        if (it->status != ITEM_OK || !(it->to & bit))
            continue;
        s->evs[k] = it->ev;
        s->idx[k] = i;
        k++;
    }
    if (k == 0) {
        s->done = 1;
        return 0;
    }
    struct lh_err err = { 0 };
    lh_sink_report_reset(&s->rep);
    int64_t t0 = mono_ns();
    int rc = lh_sink_write(s->s, s->evs, k, &s->rep, &err);
    lh_histogram_observe(s->seconds, (double)(mono_ns() - t0) / 1e9);
    if (rc < 0) {
        lh_counter_add(s->errors, 1);
        __atomic_add_fetch(&p->st_failures, 1, __ATOMIC_RELAXED);
        char why[320];
        snprintf(why, sizeof(why), "%s%s%s", lh_errcode_name(rc), err.msg[0] ? ": " : "",
                 err.msg);
        if (!s->down)
            lh_warn("pipeline: sink %s failed, pausing and retrying: %s", s->s->name, why);
        set_sink_status(p, s, 1, why);
        return rc;
    }
    if (s->down) {
        lh_info("pipeline: sink %s is writing again", s->s->name);
        set_sink_status(p, s, 0, NULL);
    }
    /* Rejects first: they are subtracted from the tenants' counts. */
    char *rej = NULL;
    if (s->rep.nrejects && !(rej = calloc(k, 1)))
        return LH_ENOMEM;   /* retried; the sink drops its duplicates */
    for (size_t r = 0; r < s->rep.nrejects; r++) {
        const struct lh_sink_reject *x = &s->rep.rejects[r];
        if (x->index >= k || rej[x->index]) {
            lh_warn("pipeline: sink %s rejected event %zu of %zu: ignored", s->s->name,
                    x->index, k);
            continue;
        }
        if (dl_add(p, s->idx[x->index], s->s->name, x->reason) < 0) {
            free(rej);
            return LH_ENOMEM;
        }
        rej[x->index] = 1;
    }
    p->ntc = 0;
    for (size_t i = 0; i < k; i++)
        if (!rej || !rej[i])
            tenant_add(p, s->evs[i].tenant ? s->evs[i].tenant : "default", 1);
    free(rej);
    for (size_t t = 0; t < p->ntc; t++) {
        char lb[600], a[300], b[300];
        snprintf(lb, sizeof(lb), "%s,%s", lh_metrics_label(a, sizeof(a), "sink", s->s->name),
                 lh_metrics_label(b, sizeof(b), "tenant", p->tc[t].tenant));
        lh_counter_add(lh_counter_get(p->m, "logs_indexed_total",
                                      "Events a sink acknowledged, by sink and tenant.", lb),
                       p->tc[t].n);
    }
    lh_counter_add(s->written, s->rep.written);
    lh_counter_add(s->duplicates, s->rep.duplicates);
    lh_counter_add(s->rejected, s->rep.nrejects);
    s->done = 1;
    return 0;
}

static void set_dlq_status(struct lh_pipeline *p, int down, const char *why)
{
    pthread_mutex_lock(&p->mu);
    p->dlq_down = down;
    if (why)
        snprintf(p->dlq_why, sizeof(p->dlq_why), "%s", why);
    pthread_mutex_unlock(&p->mu);
}

/* Produces every dead letter of the batch. */
static int produce_dead_letters(struct lh_pipeline *p)
{
    if (p->ndl == 0)
        return 0;
    struct lh_bus_msg *msgs = calloc(p->ndl, sizeof(*msgs));
    struct lh_bus_header *hdrs = calloc(p->ndl * 5, sizeof(*hdrs));
    char (*topics)[256] = calloc(p->ndl, sizeof(*topics));
    char *sent = calloc(p->ndl, 1);
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_buf mbuf = LH_BUF_INIT;
    int rc = msgs && hdrs && topics && sent ? 0 : LH_ENOMEM;
    struct lh_err err = { 0 };
    char now[40];
    lh_time_format_rfc3339(lh_time_now_ns(), 3, now, sizeof(now));
    for (size_t i = 0; rc == 0 && i < p->ndl; i++) {
        const struct item *it = &p->items[p->dl[i].item];
        const struct lh_bus_msg *m = it->msg;
        const char *tenant = it->status == ITEM_OK && it->ev.tenant ? it->ev.tenant : NULL;
        for (size_t h = 0; !tenant && h < m->nheaders; h++)
            if (m->headers[h].key && strcmp(m->headers[h].key, "tenant") == 0)
                tenant = m->headers[h].value;
        if (!tenant)
            tenant = "";
        char origin[320];
        snprintf(origin, sizeof(origin), "%s/%" PRId32 "/%" PRId64, m->topic ? m->topic : "",
                 m->partition, m->offset);
        struct lh_bus_header *h = &hdrs[i * 5];
        h[0] = (struct lh_bus_header){ "reason", p->dl[i].reason };
        h[1] = (struct lh_bus_header){ "sink", p->dl[i].sink };
        h[2] = (struct lh_bus_header){ "tenant", tenant };
        h[3] = (struct lh_bus_header){ "origin", lh_arena_strdup(&a, origin) };
        h[4] = (struct lh_bus_header){ "failed_at", now };
        if (!h[3].value) {
            rc = LH_ENOMEM;
            break;
        }
        /* PII never leaves unmasked through the DLQ either: the value is
         * the message as it was on the bus, before the mask stage. */
        const char *value = m->value ? m->value : "";
        size_t vlen = m->value_len;
        int masked = lh_stages_mask_text(p->stages, value, vlen, &mbuf);
        if (masked < 0) {
            rc = masked;
            break;
        }
        if (masked > 0) {
            char *v = lh_arena_alloc(&a, mbuf.len + 1);
            if (!v) {
                rc = LH_ENOMEM;
                break;
            }
            memcpy(v, mbuf.data, mbuf.len + 1);
            value = v;
            vlen = mbuf.len;
        }
        msgs[i] = (struct lh_bus_msg){ .key = m->key, .key_len = m->key_len, .value = value,
                                       .value_len = vlen, .headers = h, .nheaders = 5 };
        if (lh_bus_topic_expand(p->dlq_topic, tenant[0] ? tenant : "default", topics[i],
                                sizeof(topics[i]), &err) < 0)
            snprintf(topics[i], sizeof(topics[i]), "%s", "logs.dlq");
    }
    /* One produce per distinct topic (one, unless dlq_topic has {tenant}). */
    struct lh_bus_msg *grp = rc == 0 ? calloc(p->ndl, sizeof(*grp)) : NULL;
    if (rc == 0 && !grp)
        rc = LH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < p->ndl; i++) {
        if (sent[i])
            continue;
        size_t g = 0;
        for (size_t k = i; k < p->ndl; k++)
            if (!sent[k] && strcmp(topics[k], topics[i]) == 0) {
                grp[g++] = msgs[k];
                sent[k] = 1;
            }
        rc = lh_bus_produce(p->bus, topics[i], grp, g, &err);
    }
    if (rc < 0) {
        char why[600];
        snprintf(why, sizeof(why), "%s%s%s", lh_errcode_name(rc), err.msg[0] ? ": " : "",
                 err.msg);
        if (!p->dlq_down)
            lh_warn("pipeline: dead-letter produce failed, pausing and retrying: %s", why);
        set_dlq_status(p, 1, why);
    } else {
        if (p->dlq_down) {
            lh_info("pipeline: dead-letter queue is writable again");
            set_dlq_status(p, 0, NULL);
        }
        __atomic_add_fetch(&p->st_dlq, p->ndl, __ATOMIC_RELAXED);
        for (size_t i = 0; i < p->ndl; i++) {
            char cls[64];
            if (p->dl[i].sink[0])
                reason_class(p->dl[i].reason, cls, sizeof(cls));
            else
                snprintf(cls, sizeof(cls), "undecodable");
            char lb[400], x[200], y[200];
            snprintf(lb, sizeof(lb), "%s,%s", lh_metrics_label(x, sizeof(x), "reason", cls),
                     lh_metrics_label(y, sizeof(y), "sink", p->dl[i].sink));
            lh_counter_add(lh_counter_get(p->m, "loghaul_indexer_dlq_total",
                                          "Events sent to the dead-letter queue, by reason "
                                          "class and sink.", lb), 1);
        }
    }
    free(grp);
    free(msgs);
    free(hdrs);
    free(topics);
    free(sent);
    lh_buf_free(&mbuf);
    lh_arena_free(&a);
    return rc;
}

static void commit(struct lh_pipeline *p)
{
    for (size_t i = 0; i < p->nin; i++) {
        struct input *in = &p->in[i];
        if (in->nheld == 0)
            continue;
        struct lh_err err = { 0 };
        int rc = -1;
        for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
            if (attempt)
                nap(p, 100 << attempt);
            rc = lh_bus_commit(in->c, &in->held[in->nheld - 1], &err);
        }
        if (rc < 0) {
            /* The next commit covers these messages; a crash before it
             * replays them (written again by id: no duplicates). */
            lh_counter_add(p->c_commit_errors, 1);
            lh_warn("pipeline: commit on %s: %s", in->topic, err.msg);
        }
    }
}

static void maybe_lag(struct lh_pipeline *p)
{
    int64_t now = mono_ns();
    if (now - p->last_lag_ns < 1000000000)
        return;
    p->last_lag_ns = now;
    int64_t lag = 0;
    struct lh_err err = { 0 };
    if (lh_bus_consumer_lag(p->in[0].c, &lag, &err) == 0)
        lh_gauge_set(p->g_lag, (double)lag);
}

static void flush_sinks(struct lh_pipeline *p)
{
    for (size_t i = 0; i < p->nsinks; i++) {
        struct sink_state *s = &p->sinks[i];
        struct lh_err err = { 0 };
        int rc = lh_sink_flush(s->s, &err);
        if (rc < 0)
            lh_warn("pipeline: flush of sink %s: %s", s->s->name, err.msg);
        pthread_mutex_lock(&p->mu);
        s->flush_failing = rc < 0;
        if (rc < 0)
            snprintf(s->flush_why, sizeof(s->flush_why), "%s", err.msg);
        pthread_mutex_unlock(&p->mu);
    }
    p->last_flush_ns = mono_ns();
}

static void maybe_flush(struct lh_pipeline *p)
{
    if (p->flush_ms > 0 && mono_ns() - p->last_flush_ns >= p->flush_ms * 1000000)
        flush_sinks(p);
}

/* Ends a batch: frees what it held. */
static void batch_end(struct lh_pipeline *p)
{
    release_held(p);
    reset_arenas(p);
    lh_arena_reset(&p->dl_arena);
    p->ndl = 0;
    p->n = 0;
    p->bytes = 0;
    for (size_t i = 0; i < p->nsinks; i++)
        p->sinks[i].done = 0;
}

int lh_pipeline_step(struct lh_pipeline *p, struct lh_err *err)
{
    maybe_swap_stages(p);
    maybe_flush(p);
    int n = gather(p);
    if (n < 0) {
        batch_end(p);
        return retry_wait(p) ? LH_ECLOSED : 0;
    }
    if (n == 0) {
        maybe_lag(p);
        return 0;
    }

    /* Process; on ENOMEM wait and redo it from scratch. */
    int rc;
    while ((rc = process_batch(p)) < 0) {
        lh_error("pipeline: processing a batch of %zu: %s; retrying", p->n, lh_errcode_name(rc));
        reset_arenas(p);
        for (size_t k = 0; k < p->nw; k++)
            lh_stage_worker_reset_counts(p->w[k].sw);
        set_paused(p, 1);
        if (retry_wait(p)) {
            batch_end(p);
            set_paused(p, 0);
            return lh_err_set(err, LH_ECLOSED, "pipeline: stopped with a batch not processed");
        }
    }
    count_stages(p);
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i].status == ITEM_BAD &&
            dl_add(p, i, "", p->items[i].reason) < 0) {
            /* Dropping the batch would let the next commit pass it. */
            batch_end(p);
            lh_pipeline_stop(p, 0);
            return lh_err_set(err, LH_ENOMEM, "pipeline: out of memory: stopping");
        }

    /* Deliver: every sink, then the dead letters; retry what failed. */
    lh_backoff_reset(&p->bo);
    int dlq_done = 0;
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < p->nsinks; i++)
            if (!p->sinks[i].done && write_sink(p, i) < 0)
                pending = 1;
        if (!pending && !dlq_done) {
            if (produce_dead_letters(p) == 0)
                dlq_done = 1;
            else
                pending = 1;
        }
        if (!pending)
            break;
        set_paused(p, 1);
        maybe_lag(p);   /* the lag grows while paused: keep the gauge current */
        maybe_flush(p); /* the other sinks' age-based work goes on meanwhile */
        if (retry_wait(p)) {
            lh_warn("pipeline: stopping with a batch of %zu messages not delivered; it is "
                    "read again after a restart", p->n);
            batch_end(p);
            set_paused(p, 0);
            return lh_err_set(err, LH_ECLOSED, "pipeline: stopped with a batch not delivered");
        }
    }
    set_paused(p, 0);
    lh_backoff_reset(&p->bo);

    size_t committed = p->n;
    if (p->hooks.before_commit)
        p->hooks.before_commit(p->hooks.arg, committed);
    commit(p);
    lh_histogram_observe(p->h_batch_seconds, (double)(mono_ns() - p->first_ns) / 1e9);
    lh_histogram_observe(p->h_batch_msgs, (double)committed);
    __atomic_add_fetch(&p->st_batches, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->st_committed, committed, __ATOMIC_RELAXED);
    batch_end(p);
    maybe_lag(p);
    return (int)committed;
}

/* ---- life cycle ---- */

static int input_open(struct lh_pipeline *p, struct input *in, const char *group,
                      const char *topic, struct lh_err *err)
{
    in->topic = strdup(topic);
    in->held = calloc(p->max_batch, sizeof(*in->held));
    in->capheld = p->max_batch;
    if (!in->topic || !in->held)
        return lh_err_set(err, LH_ENOMEM, "pipeline: out of memory");
    int rc = lh_bus_consumer_open(p->bus, group, topic, &in->c, err);
    if (rc < 0)
        return lh_err_wrap(err, "consumer of %s", topic);
    return 0;
}

int lh_pipeline_create(const struct lh_pipeline_config *cfg, const struct lh_pipeline_args *a,
                       struct lh_pipeline **out, struct lh_err *err)
{
    *out = NULL;
    struct lh_pipeline *p = calloc(1, sizeof(*p));
    if (!p) {
        for (size_t i = 0; i < a->nsinks; i++)
            lh_sink_destroy(a->sinks[i]);
        lh_stages_destroy(a->stages);
        return lh_err_set(err, LH_ENOMEM, "pipeline: out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->wmu, NULL);
    pthread_cond_init(&p->wgo, NULL);
    pthread_cond_init(&p->wdone, NULL);
    p->stages = a->stages;
    p->bus = a->bus;
    p->m = a->metrics;
    p->sinks = calloc(a->nsinks ? a->nsinks : 1, sizeof(*p->sinks));
    if (p->sinks) {
        p->nsinks = a->nsinks;
        for (size_t i = 0; i < a->nsinks; i++)
            p->sinks[i].s = a->sinks[i];
    } else {
        for (size_t i = 0; i < a->nsinks; i++)
            lh_sink_destroy(a->sinks[i]);
    }
    int rc = 0;
    p->max_batch = cfg->max_batch > 0 ? (size_t)cfg->max_batch : 5000;
    p->max_bytes = cfg->max_batch_bytes ? cfg->max_batch_bytes : 16u << 20;
    p->linger_ms = cfg->linger_ms >= 0 ? cfg->linger_ms : 200;
    p->flush_ms = cfg->flush_interval_ms;
    p->backoff_base = (uint32_t)(cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 200);
    p->backoff_cap = (uint32_t)(cfg->backoff_cap_ms > 0 ? cfg->backoff_cap_ms : 30000);
    lh_backoff_init(&p->bo, p->backoff_base, p->backoff_cap);
    p->nw = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    if (p->nw > 64)
        p->nw = 64;
    p->dlq_topic = strdup(a->dlq_topic ? a->dlq_topic : "logs.dlq");
    p->items = calloc(p->max_batch, sizeof(*p->items));
    p->w = calloc(p->nw, sizeof(*p->w));
    if (!p->sinks || !p->dlq_topic || !p->items || !p->w) {
        rc = lh_err_set(err, LH_ENOMEM, "pipeline: out of memory");
        goto fail;
    }
    if (lh_stages_sink_count(p->stages) != p->nsinks) {
        rc = lh_err_set(err, LH_EINVAL, "pipeline: the stages were built for %zu sinks, not %zu",
                        lh_stages_sink_count(p->stages), p->nsinks);
        goto fail;
    }
    for (size_t i = 0; i < p->nsinks; i++) {
        p->sinks[i].evs = calloc(p->max_batch, sizeof(struct lh_event));
        p->sinks[i].idx = calloc(p->max_batch, sizeof(size_t));
        if (!p->sinks[i].evs || !p->sinks[i].idx) {
            rc = lh_err_set(err, LH_ENOMEM, "pipeline: out of memory");
            goto fail;
        }
    }
    for (size_t k = 0; k < p->nw; k++)
        p->w[k].p = p;
    if (make_stage_workers(p) < 0) {
        rc = lh_err_set(err, LH_ENOMEM, "pipeline: out of memory");
        goto fail;
    }
    metrics_init(p);
    const char *group = cfg->group && cfg->group[0] ? cfg->group : "loghaul-indexer";
    if ((rc = input_open(p, &p->in[0], group, a->topic ? a->topic : "logs", err)) < 0)
        goto fail;
    p->nin = 1;
    if (a->replay_topic && a->replay_topic[0]) {
        p->nin = 2;
        if ((rc = input_open(p, &p->in[1], group, a->replay_topic, err)) < 0)
            goto fail;
    }
    for (size_t k = 1; k < p->nw; k++) {
        if (pthread_create(&p->w[k].thread, NULL, worker_main, &p->w[k]) != 0) {
            rc = lh_err_set(err, LH_ENOMEM, "pipeline: cannot start worker thread");
            goto fail;
        }
        p->w[k].started = 1;
    }
    p->last_flush_ns = mono_ns();
    *out = p;
    return 0;
fail:
    lh_pipeline_destroy(p);
    return rc;
}

void lh_pipeline_set_hooks(struct lh_pipeline *p, const struct lh_pipeline_hooks *h)
{
    p->hooks = *h;
}

static void *pipeline_main(void *arg)
{
    struct lh_pipeline *p = arg;
    lh_info("pipeline: consuming %s%s%s with %zu sink(s), %zu worker(s)", p->in[0].topic,
            p->nin > 1 ? " and " : "", p->nin > 1 ? p->in[1].topic : "", p->nsinks, p->nw);
    while (!stopping(p)) {
        struct lh_err err = { 0 };
        int rc = lh_pipeline_step(p, &err);
        if (rc < 0 && rc != LH_ECLOSED)
            lh_error("pipeline: %s", err.msg);
    }
    lh_info("pipeline: stopped");
    if (p->done)
        p->done(p->done_arg);
    return NULL;
}

int lh_pipeline_start(struct lh_pipeline *p, void (*done)(void *arg), void *arg,
                      struct lh_err *err)
{
    p->done = done;
    p->done_arg = arg;
    if (pthread_create(&p->thread, NULL, pipeline_main, p) != 0)
        return lh_err_set(err, LH_ENOMEM, "pipeline: cannot start its thread");
    p->thread_started = 1;
    return 0;
}

void lh_pipeline_stop(struct lh_pipeline *p, int64_t drain_ms)
{
    pthread_mutex_lock(&p->mu);
    if (!p->stop) {
        p->drain_deadline_ns = mono_ns() + (drain_ms > 0 ? drain_ms : 0) * 1000000;
        __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void lh_pipeline_join(struct lh_pipeline *p)
{
    if (p && p->thread_started) {
        pthread_join(p->thread, NULL);
        p->thread_started = 0;
    }
}

void lh_pipeline_destroy(struct lh_pipeline *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        lh_pipeline_stop(p, 0);
        lh_pipeline_join(p);
    }
    if (p->w)
        workers_stop(p);
    release_held(p);
    if (p->sinks && p->stages)
        flush_sinks(p);
    for (size_t i = 0; i < 2; i++) {
        if (p->in[i].c)
            lh_bus_consumer_close(p->in[i].c);
        free(p->in[i].held);
        free(p->in[i].topic);
    }
    for (size_t i = 0; p->sinks && i < p->nsinks; i++) {
        lh_sink_destroy(p->sinks[i].s);
        lh_sink_report_free(&p->sinks[i].rep);
        free(p->sinks[i].evs);
        free(p->sinks[i].idx);
    }
    free(p->sinks);
    if (p->w) {
        for (size_t k = 0; k < p->nw; k++) {
            lh_stage_worker_destroy(p->w[k].sw);
            lh_arena_free(&p->w[k].arena);
        }
        free(p->w);
    }
    lh_stages_destroy(p->stages);
    lh_stages_destroy(p->next_stages);
    lh_arena_free(&p->dl_arena);
    free(p->dl);
    free(p->tc);
    free(p->items);
    free(p->dlq_topic);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->wmu);
    pthread_cond_destroy(&p->wgo);
    pthread_cond_destroy(&p->wdone);
    free(p);
}

int lh_pipeline_status(struct lh_pipeline *p, struct lh_buf *reason)
{
    int bad = 0;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        lh_buf_puts(reason, "stopping");
        bad = 1;
    }
    for (size_t i = 0; i < p->nsinks; i++) {
        if (p->sinks[i].down) {
            lh_buf_printf(reason, "%ssink %s down: %s", bad ? "; " : "", p->sinks[i].s->name,
                          p->sinks[i].why);
            bad = 1;
        } else if (p->sinks[i].flush_failing) {
            lh_buf_printf(reason, "%ssink %s degraded: %s", bad ? "; " : "",
                          p->sinks[i].s->name, p->sinks[i].flush_why);
            bad = 1;
        }
    }
    if (p->dlq_down) {
        lh_buf_printf(reason, "%sdead-letter queue unavailable: %s", bad ? "; " : "",
                      p->dlq_why);
        bad = 1;
    }
    if (p->bus_down) {
        lh_buf_printf(reason, "%sbus: %s", bad ? "; " : "", p->bus_why);
        bad = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return bad ? -1 : 0;
}

void lh_pipeline_stats(struct lh_pipeline *p, struct lh_pipeline_stats *out)
{
    out->polled = __atomic_load_n(&p->st_polled, __ATOMIC_RELAXED);
    out->batches = __atomic_load_n(&p->st_batches, __ATOMIC_RELAXED);
    out->committed = __atomic_load_n(&p->st_committed, __ATOMIC_RELAXED);
    out->dead_letters = __atomic_load_n(&p->st_dlq, __ATOMIC_RELAXED);
    out->sink_failures = __atomic_load_n(&p->st_failures, __ATOMIC_RELAXED);
    out->stage_swaps = __atomic_load_n(&p->st_swaps, __ATOMIC_RELAXED);
    out->paused = __atomic_load_n(&p->st_paused, __ATOMIC_ACQUIRE);
}
