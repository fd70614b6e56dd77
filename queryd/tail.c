/* tail.c - live tail over server-sent events (see tail.h). */
#include "tail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/log.h"
#include "lh/time.h"
#include "render.h"

#define TOFF(f) offsetof(struct lh_qtail_config, f)
const struct lh_opt lh_qtail_opts[] = {
    { LH_OPT_DURATION, "poll_interval", "250ms", TOFF(poll_ms),
      "how often each tail looks for new events" },
    { LH_OPT_DURATION, "heartbeat", "15s", TOFF(heartbeat_ms),
      "a comment line goes out after this long without events" },
    { LH_OPT_DURATION, "lookback", "10s", TOFF(lookback_ms),
      "events indexed up to this long after their timestamp are still sent" },
    { LH_OPT_INT, "max_streams", "100", TOFF(max_streams), "tails open at once" },
    { LH_OPT_INT, "max_events", "5000", TOFF(max_events), "events sent per poll at most" },
    { LH_OPT_DURATION, "timeout", "5s", TOFF(timeout_ms), "time limit of one poll's query" },
    { LH_OPT_DURATION, "max_duration", "0", TOFF(max_duration_ms),
      "a tail ends after this long (0: never); an EventSource reconnects and resumes with "
      "Last-Event-ID, so this spreads long-lived tails over restarts and replicas" },
    { 0 }
};

#define PAGE 1000
#define MAX_UNSENT (1u << 20)

/* The ids sent within the lookback window (open addressing, tombstone-
 * free: rebuilt when pruned). */
struct seen_ent {
    uint64_t h;                      /* 0: empty */
    int64_t ts;
};

struct seen {
    struct seen_ent *v;
    size_t cap, n;
};

struct tail {
    struct lh_qtail_hub *hub;
    struct tail *prev, *next;
    struct lh_http_req *req;         /* NULL once the stream ended */
    uv_timer_t timer;
    uv_work_t work;
    char tenant[256];
    struct lh_query q;
    struct lh_qtail_config cfg;
    int64_t since_ns;
    struct seen seen;
    int priming;                     /* first poll: remember what is there, send nothing */
    int busy;                        /* a poll is running on the pool */
    int stopping;                    /* end after the poll in flight */
    int timer_closed;
    uint64_t last_write_ms;          /* loop time of the last bytes sent */
    uint64_t started_ms;             /* loop time the stream began */
    /* written by the poll, read by its completion */
    struct lh_buf out;
    size_t sent, dropped;
    int poll_rc;
    struct lh_err poll_err;
};

struct lh_qtail_hub {
    uv_loop_t *loop;
    const struct lh_tier *tiers;
    size_t ntiers;
    struct lh_qtail_config cfg;
    struct tail *tails;
    size_t n;
    int stopping;
    struct lh_gauge *open;
    struct lh_counter *events;
};

/* ---- the seen set ------------------------------------------------------- */

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

static int seen_has(const struct seen *s, uint64_t h)
{
    if (!s->cap)
        return 0;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->v[i].h)
            return 0;
        if (s->v[i].h == h)
            return 1;
    }
}

static void seen_put_raw(struct seen_ent *v, size_t cap, uint64_t h, int64_t ts)
{
    size_t i = h & (cap - 1);
    while (v[i].h && v[i].h != h)
        i = (i + 1) & (cap - 1);
    v[i].h = h;
    v[i].ts = ts;
}

/* Rebuilds the set without entries older than min_ts, with room for
 * `extra` more. */
static int seen_rebuild(struct seen *s, int64_t min_ts, size_t extra)
{
    size_t live = 0;
    for (size_t i = 0; i < s->cap; i++)
        live += s->v[i].h && s->v[i].ts >= min_ts;
    size_t cap = 64;
    while (cap < 2 * (live + extra))
        cap *= 2;
    struct seen_ent *nv = calloc(cap, sizeof(*nv));
    if (!nv)
        return LH_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->v[i].h && s->v[i].ts >= min_ts)
            seen_put_raw(nv, cap, s->v[i].h, s->v[i].ts);
    free(s->v);
    s->v = nv;
    s->cap = cap;
    s->n = live;
    return 0;
}

static int seen_add(struct seen *s, uint64_t h, int64_t ts)
{
    if (2 * (s->n + 1) > s->cap && seen_rebuild(s, INT64_MIN, s->n + 1) < 0)
        return LH_ENOMEM;
    if (!seen_has(s, h))
        s->n++;
    seen_put_raw(s->v, s->cap, h, ts);
    return 0;
}

/* ---- a poll (worker thread) --------------------------------------------- */

struct fresh {
    const struct lh_event *ev;
    uint64_t h;
};

static int fresh_asc(const void *a, const void *b)
{
    const struct lh_event *x = ((const struct fresh *)a)->ev, *y = ((const struct fresh *)b)->ev;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns < y->ts_ns ? -1 : 1;
    return strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

static void poll_work(uv_work_t *w)
{
    struct tail *t = w->data;
    struct lh_qtail_hub *hub = t->hub;
    int64_t now = lh_time_now_ns();
    int64_t lookback = t->cfg.lookback_ms * LH_NS_PER_MS;
    int64_t from = now - lookback > t->since_ns ? now - lookback : t->since_ns;
    int64_t deadline = lh_time_mono_ns() + t->cfg.timeout_ms * LH_NS_PER_MS;
    size_t max = (size_t)t->cfg.max_events;
    size_t maxpages = max / PAGE + 2;
    struct lh_plan_part parts[LH_PLAN_MAX_TIERS];
    size_t nparts = lh_plan(hub->tiers, hub->ntiers, from, 0, now, parts);
    struct lh_plan_page *pages = calloc(maxpages, sizeof(*pages));
    size_t npages = 0;
    struct fresh *fresh = NULL;
    size_t nfresh = 0, cap = 0;
    int cut = 0;   /* stopped with older unsent events left behind */
    struct lh_store_pos pos;
    const struct lh_store_pos *after = NULL;
    t->poll_rc = 0;
    t->dropped = t->sent = 0;
    lh_buf_reset(&t->out);
    if (!pages)
        t->poll_rc = lh_err_set(&t->poll_err, LH_ENOMEM, "out of memory");
    /* Newest first, page by page, until the window is done. */
    while (t->poll_rc == 0 && npages < maxpages) {
        struct lh_plan_page *pg = &pages[npages];
        int rc = lh_plan_search(hub->tiers, parts, nparts, t->tenant, &t->q, PAGE, after, 0,
                                deadline, pg, &t->poll_err);
        if (rc < 0) {
            t->poll_rc = rc;
            break;
        }
        npages++;
        for (size_t i = 0; i < pg->n && t->poll_rc == 0; i++) {
            uint64_t h = hash_id(pg->hits[i]->id ? pg->hits[i]->id : "");
            if (seen_has(&t->seen, h))
                continue;
            if (nfresh == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct fresh *nf = realloc(fresh, ncap * sizeof(*nf));
                if (!nf) {
                    t->poll_rc = lh_err_set(&t->poll_err, LH_ENOMEM, "out of memory");
                    break;
                }
                fresh = nf;
                cap = ncap;
            }
            fresh[nfresh].ev = pg->hits[i];
            fresh[nfresh++].h = h;
        }
        if (!pg->more || pg->n == 0)
            break;
        if (nfresh >= max || npages == maxpages) {
            cut = 1;
            break;
        }
        pos.ts_ns = pg->hits[pg->n - 1]->ts_ns;
        snprintf(pos.id, sizeof(pos.id), "%s", pg->hits[pg->n - 1]->id ? pg->hits[pg->n - 1]->id
                                                                           : "");
        after = &pos;
    }
    if (t->poll_rc == 0 && nfresh) {
        qsort(fresh, nfresh, sizeof(*fresh), fresh_asc);
        size_t skip = nfresh > max ? nfresh - max : 0;   /* keep the newest */
        if ((skip || cut) && !t->priming) {
            /* What is older than the first event sent stays behind for good. */
            t->dropped = skip;
            if (fresh[skip].ev->ts_ns > t->since_ns)
                t->since_ns = fresh[skip].ev->ts_ns;
            lh_buf_printf(&t->out, ": events skipped (more than %zu new in one poll)\n\n", max);
        }
        if (seen_rebuild(&t->seen, from, nfresh) < 0)
            t->poll_rc = lh_err_set(&t->poll_err, LH_ENOMEM, "out of memory");
        for (size_t i = 0; i < nfresh && t->poll_rc == 0; i++)
            seen_add(&t->seen, fresh[i].h, fresh[i].ev->ts_ns);
        /* Priming: what was already stored when the tail began is only
         * remembered, so that later polls send just what arrives after. */
        for (size_t i = t->priming ? nfresh : skip; i < nfresh && t->poll_rc == 0; i++) {
            const struct lh_event *ev = fresh[i].ev;
            int rc = lh_buf_printf(&t->out, "id: %lld/", (long long)ev->ts_ns);
            /* an id never holds a line break in practice; cut at one to keep the framing */
            const char *id = ev->id ? ev->id : "";
            rc |= lh_buf_append(&t->out, id, strcspn(id, "\r\n"));
            rc |= lh_buf_puts(&t->out, "\ndata: ");
            rc |= lh_render_hit(&t->out, ev);
            rc |= lh_buf_puts(&t->out, "\n\n");
            if (rc)
                t->poll_rc = lh_err_set(&t->poll_err, LH_ENOMEM, "out of memory");
            else
                t->sent++;
        }
    } else if (t->poll_rc == 0 && t->seen.n) {
        seen_rebuild(&t->seen, from, 0);
    }
    if (t->poll_rc == 0)
        t->priming = 0;
    free(fresh);
    for (size_t i = 0; i < npages; i++)
        lh_plan_page_free(&pages[i]);
    free(pages);
}

/* ---- the loop-thread side ----------------------------------------------- */

static void tail_free(struct tail *t)
{
    lh_query_free(&t->q);
    lh_buf_free(&t->out);
    free(t->seen.v);
    free(t);
}

static void maybe_free(struct tail *t)
{
    if (t->timer_closed && !t->busy && !t->req)
        tail_free(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct tail *t = h->data;
    t->timer_closed = 1;
    maybe_free(t);
}

/* Ends the stream (now, or once the poll in flight is done). */
static void tail_stop(struct tail *t)
{
    struct lh_qtail_hub *hub = t->hub;
    if (!t->stopping) {
        t->stopping = 1;
        if (t->prev)
            t->prev->next = t->next;
        else
            hub->tails = t->next;
        if (t->next)
            t->next->prev = t->prev;
        hub->n--;
        lh_gauge_set(hub->open, (double)hub->n);
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    }
    if (!t->busy && t->req) {
        lh_http_stream_end(t->req);
        t->req = NULL;
    }
    maybe_free(t);
}

static int send_text(struct tail *t, const char *s, size_t n)
{
    int rc = lh_http_stream_write(t->req, s, n);
    if (rc == 0)
        t->last_write_ms = uv_now(t->hub->loop);
    return rc;
}

static void send_error(struct tail *t, const char *code, const char *msg)
{
    struct lh_buf b = LH_BUF_INIT;
    lh_buf_printf(&b, "event: error\ndata: {\"error\":{\"code\":\"%s\",\"message\":", code);
    lh_buf_json_str(&b, msg, strlen(msg));
    lh_buf_puts(&b, "}}\n\n");
    if (b.data)
        send_text(t, b.data, b.len);
    lh_buf_free(&b);
}

static void poll_done(uv_work_t *w, int status)
{
    struct tail *t = w->data;
    t->busy = 0;
    if (status != 0 || t->stopping || lh_http_req_closed(t->req)) {
        tail_stop(t);
        return;
    }
    if (t->poll_rc == LH_EINVAL) {
        send_error(t, "bad_request", t->poll_err.msg);
        tail_stop(t);
        return;
    }
    if (t->poll_rc < 0) {
        /* Transient (timeout, backend down): say so, keep tailing. */
        lh_debug("tail for %s: poll failed: %s", t->tenant, t->poll_err.msg);
        send_error(t, t->poll_rc == LH_ETIMEDOUT ? "timeout" : "backend_unavailable",
                   "this poll failed; retrying");
        return;
    }
    if (t->out.len == 0)
        return;
    int rc = lh_http_stream_buffered(t->req) + t->out.len > MAX_UNSENT
                 ? LH_EFULL
                 : send_text(t, t->out.data, t->out.len);
    if (rc == LH_EFULL) {
        send_error(t, "too_slow", "the client does not read fast enough; tail ended");
        tail_stop(t);
        return;
    }
    if (rc < 0) {
        tail_stop(t);
        return;
    }
    lh_counter_add(t->hub->events, t->sent);
}

static void on_tick(uv_timer_t *timer)
{
    struct tail *t = timer->data;
    if (t->stopping)
        return;
    if (lh_http_req_closed(t->req)) {
        tail_stop(t);
        return;
    }
    uint64_t now = uv_now(t->hub->loop);
    if (t->cfg.max_duration_ms > 0 && now - t->started_ms >= (uint64_t)t->cfg.max_duration_ms) {
        static const char bye[] = ": max_duration reached; reconnect to go on\n\n";
        send_text(t, bye, sizeof(bye) - 1);
        tail_stop(t);
        return;
    }
    if (now - t->last_write_ms >= (uint64_t)t->cfg.heartbeat_ms) {
        static const char beat[] = ": keepalive\n\n";
        if (send_text(t, beat, sizeof(beat) - 1) == LH_ECLOSED) {
            tail_stop(t);
            return;
        }
    }
    if (t->busy)
        return;
    t->work.data = t;
    if (uv_queue_work(t->hub->loop, &t->work, poll_work, poll_done) == 0)
        t->busy = 1;
}

int lh_qtail_start(struct lh_qtail_hub *hub, struct lh_http_req *req, const char *tenant,
                   struct lh_query *q, int64_t since_ns, const char *resume_id, int prime)
{
    /* every 503 says when to come back, as the search API's do */
    struct lh_http_header retry1[] = { { "Retry-After", "1" }, { NULL, NULL } };
    if (hub->stopping) {
        lh_http_respond_error(req, 503, retry1, "shutting_down", "queryd is shutting down");
        return 503;
    }
    if (hub->n >= (size_t)hub->cfg.max_streams) {
        struct lh_http_header h[] = { { "Retry-After", "5" }, { NULL, NULL } };
        lh_http_respond_error(req, 503, h, "too_many_tails", "%zu tails are open (the most "
                              "allowed); retry later", hub->n);
        return 503;
    }
    struct tail *t = calloc(1, sizeof(*t));
    if (!t) {
        lh_http_respond_error(req, 503, retry1, "overloaded", "out of memory");
        return 503;
    }
    t->hub = hub;
    t->cfg = hub->cfg;
    t->q = *q;
    memset(q, 0, sizeof(*q));
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    t->since_ns = since_ns;
    t->priming = prime;
    if (resume_id && *resume_id)
        seen_add(&t->seen, hash_id(resume_id), since_ns);
    struct lh_http_header h[] = { { "Cache-Control", "no-cache" },
                                  { "X-Accel-Buffering", "no" }, { NULL, NULL } };
    int rc = lh_http_stream_begin(req, 200, h, "text/event-stream");
    if (rc == LH_EINVAL) {
        lh_http_respond_error(req, 500, NULL, "internal", "cannot stream");
        tail_free(t);
        return 500;
    }
    t->req = req;
    uv_timer_init(hub->loop, &t->timer);
    t->timer.data = t;
    t->next = hub->tails;
    if (hub->tails)
        hub->tails->prev = t;
    hub->tails = t;
    hub->n++;
    lh_gauge_set(hub->open, (double)hub->n);
    if (rc < 0) {
        tail_stop(t);
        return 200;
    }
    t->started_ms = uv_now(hub->loop);
    static const char hello[] = "retry: 2000\n: tail started\n\n";
    send_text(t, hello, sizeof(hello) - 1);
    uv_timer_start(&t->timer, on_tick, 0, (uint64_t)t->cfg.poll_ms);
    return 200;
}

int lh_qtail_hub_create(uv_loop_t *loop, const struct lh_tier *tiers, size_t ntiers,
                       struct lh_metrics *metrics, struct lh_qtail_hub **out, struct lh_err *err)
{
    struct lh_qtail_hub *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    hub->loop = loop;
    hub->tiers = tiers;
    hub->ntiers = ntiers;
    hub->cfg = (struct lh_qtail_config){ .poll_ms = 250, .heartbeat_ms = 15000,
                                        .lookback_ms = 10000, .max_streams = 100,
                                        .max_events = 5000, .timeout_ms = 5000 };
    if (metrics) {
        hub->open = lh_gauge_get(metrics, "loghaul_queryd_tails_open", "live tails open", NULL);
        hub->events = lh_counter_get(metrics, "loghaul_queryd_tail_events_total",
                                     "events sent to live tails", NULL);
    }
    *out = hub;
    return 0;
}

void lh_qtail_hub_configure(struct lh_qtail_hub *hub, const struct lh_qtail_config *cfg)
{
    hub->cfg = *cfg;
}

size_t lh_qtail_hub_count(const struct lh_qtail_hub *hub) { return hub->n; }

void lh_qtail_hub_shutdown(struct lh_qtail_hub *hub)
{
    if (!hub)
        return;
    hub->stopping = 1;
    while (hub->tails)
        tail_stop(hub->tails);
}

void lh_qtail_hub_destroy(struct lh_qtail_hub *hub)
{
    if (!hub)
        return;
    if (hub->tails)
        lh_error("tail: %zu tails still open at destroy", hub->n);
    free(hub);
}
