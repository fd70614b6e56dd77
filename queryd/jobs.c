/* jobs.c - search jobs of loghaul-queryd (see jobs.h).
 *
 * Each job owns one struct lh_qreq and one thread that runs it. The list of
 * jobs belongs to the loop thread; a job thread only writes its own job's
 * state and answer, under the job's mutex, and sets `finished` last. The
 * loop thread joins finished threads and drops expired jobs lazily, on each
 * call of the API. */
#include "jobs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lh/buf.h"
#include "lh/log.h"
#include "lh/time.h"
#include "lh/uuid.h"
#include "query.h"

#define JOBS_PATH "/v1/logs/search/jobs"

#define COFF(f) offsetof(struct lh_qjobs_config, f)
const struct lh_opt lh_qjobs_opts[] = {
    { LH_OPT_INT, "max_running", "4", COFF(max_running),
      "search jobs running at once; more get 503 with Retry-After" },
    { LH_OPT_INT, "max_kept", "64", COFF(max_kept),
      "jobs remembered, running and finished (the oldest finished go first)" },
    { LH_OPT_DURATION, "timeout", "10m", COFF(timeout_ms), "time limit of one job" },
    { LH_OPT_DURATION, "ttl", "10m", COFF(ttl_ms),
      "a finished job's answer is kept this long after it finished" },
    { 0 }
};

enum job_state { JOB_RUNNING = 0, JOB_DONE, JOB_FAILED, JOB_CANCELLED };
static const char *const state_names[] = { "running", "done", "failed", "cancelled" };

struct sjob {
    struct sjob *next;
    char id[33];
    char tenant[256];
    struct lh_qprogress progress;
    struct lh_qreq *req;
    pthread_t thread;
    int joined;                /* loop thread: the thread was joined */
    int64_t started_mono, finished_mono;
    pthread_mutex_t mu;        /* guards state and finished */
    enum job_state state;
    int finished;
};

struct lh_qjobs {
    struct lh_queryd *qd;
    struct lh_qjobs_config cfg;
    struct sjob *jobs;         /* newest first */
    size_t njobs;
    int stopping;
    struct lh_counter *started, *cancelled;
};

static void *job_main(void *arg)
{
    struct sjob *j = arg;
    lh_qreq_run(j->req);
    int status = lh_qreq_status(j->req, NULL);
    pthread_mutex_lock(&j->mu);
    if (status == 200)
        j->state = JOB_DONE;
    else if (atomic_load(&j->progress.cancel))
        j->state = JOB_CANCELLED;
    else
        j->state = JOB_FAILED;
    j->finished_mono = lh_time_mono_ns();
    j->finished = 1;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static int job_finished(struct sjob *j, enum job_state *state)
{
    pthread_mutex_lock(&j->mu);
    int f = j->finished;
    if (state)
        *state = j->state;
    pthread_mutex_unlock(&j->mu);
    return f;
}

static void job_join(struct sjob *j)
{
    if (!j->joined) {
        pthread_join(j->thread, NULL);
        j->joined = 1;
    }
}

static void job_destroy(struct sjob *j)
{
    job_join(j);
    lh_qreq_free(j->req);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static size_t running(struct lh_qjobs *js)
{
    size_t n = 0;
    for (struct sjob *j = js->jobs; j; j = j->next)
        n += !job_finished(j, NULL);
    return n;
}

/* Joins finished threads; drops expired jobs and, past max_kept (less room
 * for jobs about to be added), the oldest finished ones. */
static void reap(struct lh_qjobs *js, int64_t room)
{
    int64_t now = lh_time_mono_ns();
    size_t kept = 0;
    for (struct sjob **pp = &js->jobs; *pp;) {
        struct sjob *j = *pp;
        int drop = 0;
        if (job_finished(j, NULL)) {
            job_join(j);
            drop = now - j->finished_mono > js->cfg.ttl_ms * LH_NS_PER_MS ||
                   (int64_t)kept + room >= js->cfg.max_kept;
        }
        if (drop) {
            *pp = j->next;
            js->njobs--;
            job_destroy(j);
        } else {
            kept++;
            pp = &j->next;
        }
    }
}

/* The job of the id at the end of the path, if it is the tenant's. */
static struct sjob *find(struct lh_qjobs *js, struct lh_http_req *req, const char *tenant)
{
    const char *id = lh_http_req_path(req) + strlen(JOBS_PATH "/");
    for (struct sjob *j = js->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0 && strcmp(j->tenant, tenant) == 0)
            return j;
    return NULL;
}

static const char *auth(struct lh_qjobs *js, struct lh_http_req *req)
{
    const char *why;
    const char *tenant = lh_queryd_authenticate(js->qd, req, &why);
    if (!tenant)
        lh_queryd_reject(js->qd, req, "jobs", 401, "unauthorized", why);
    return tenant;
}

static void busy(struct lh_qjobs *js, struct lh_http_req *req, const char *code,
                 const char *msg)
{
    struct lh_http_header h[] = { { "Retry-After", "5" }, { NULL, NULL } };
    lh_queryd_count(js->qd, "jobs", 503);
    lh_http_respond_error(req, 503, h, code, "%s", msg);
}

static void on_create(struct lh_http_req *req, void *arg)
{
    struct lh_qjobs *js = arg;
    if (js->stopping || lh_queryd_stopping(js->qd)) {
        busy(js, req, "shutting_down", "queryd is shutting down");
        return;
    }
    const char *tenant = auth(js, req);
    if (!tenant)
        return;
    reap(js, 1);   /* the oldest finished job makes room for this one */
    if ((int64_t)running(js) >= js->cfg.max_running) {
        busy(js, req, "overloaded", "too many search jobs running; retry later");
        return;
    }
    if ((int64_t)js->njobs >= js->cfg.max_kept) {
        busy(js, req, "overloaded", "too many search jobs running; retry later");
        return;
    }
    struct sjob *j = calloc(1, sizeof(*j));
    struct lh_uuid u;
    struct lh_buf body = LH_BUF_INIT;
    lh_http_req_take_body(req, &body);
    if (!j || lh_uuid_v4(&u, NULL) < 0 ||
        !(j->req = lh_qreq_search(js->qd, tenant, &body, js->cfg.timeout_ms, &j->progress))) {
        lh_buf_free(&body);
        free(j);
        busy(js, req, "overloaded", "out of memory");
        return;
    }
    int st = lh_qreq_check(j->req);
    if (st) {
        const struct lh_buf *a = lh_qreq_answer(j->req);
        struct lh_http_header h[] = { { "Retry-After", "1" }, { NULL, NULL } };
        lh_queryd_count(js->qd, "jobs", st);
        lh_http_respond_json(req, st, st == 503 ? h : NULL, a->data ? a->data : "{}", a->len);
        lh_qreq_free(j->req);
        free(j);
        return;
    }
    lh_uuid_format_hex(&u, j->id);
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    pthread_mutex_init(&j->mu, NULL);
    j->started_mono = lh_time_mono_ns();
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        pthread_mutex_destroy(&j->mu);
        lh_qreq_free(j->req);
        free(j);
        busy(js, req, "overloaded", "cannot start a thread for the job");
        return;
    }
    j->next = js->jobs;
    js->jobs = j;
    js->njobs++;
    lh_counter_add(js->started, 1);
    char loc[sizeof(JOBS_PATH) + 40], body_out[96];
    snprintf(loc, sizeof(loc), JOBS_PATH "/%s", j->id);
    int n = snprintf(body_out, sizeof(body_out), "{\"job_id\":\"%s\",\"status\":\"running\"}",
                     j->id);
    struct lh_http_header h[] = { { "Location", loc }, { NULL, NULL } };
    lh_queryd_count(js->qd, "jobs", 202);
    lh_http_respond_json(req, 202, h, body_out, (size_t)n);
}

/* The job a GET or DELETE names, or NULL when the request was answered
 * (401, 404). */
static struct sjob *lookup(struct lh_qjobs *js, struct lh_http_req *req)
{
    const char *tenant = auth(js, req);
    if (!tenant)
        return NULL;
    reap(js, 0);
    struct sjob *j = find(js, req, tenant);
    if (!j)
        lh_queryd_reject(js->qd, req, "jobs", 404, "not_found",
                         "no such search job (finished jobs are kept for a while only)");
    return j;
}

static void on_get(struct lh_http_req *req, void *arg)
{
    struct lh_qjobs *js = arg;
    struct sjob *j = lookup(js, req);
    if (!j)
        return;
    enum job_state state;
    int fin = job_finished(j, &state);
    int64_t end = fin ? j->finished_mono : lh_time_mono_ns();
    struct lh_buf b = LH_BUF_INIT;
    int oom = lh_buf_printf(&b, "{\"job_id\":\"%s\",\"status\":\"%s\",\"progress\":"
                            "{\"units_total\":%llu,\"units_done\":%llu,\"events_scanned\":%llu},"
                            "\"elapsed_ms\":%lld", j->id, state_names[state],
                            (unsigned long long)atomic_load(&j->progress.total),
                            (unsigned long long)atomic_load(&j->progress.done),
                            (unsigned long long)atomic_load(&j->progress.scanned),
                            (long long)((end - j->started_mono) / LH_NS_PER_MS));
    if (fin && state != JOB_RUNNING) {
        /* finished: the answer no longer changes, no lock needed */
        const struct lh_buf *a = lh_qreq_answer(j->req);
        const char *ans = a->data ? a->data : "{}";
        if (state == JOB_DONE) {
            oom |= lh_buf_puts(&b, ",\"result\":");
            oom |= lh_buf_append(&b, ans, a->len);
        } else {
            /* the answer is {"error":{...}}: splice its inside in */
            oom |= lh_buf_printf(&b, ",\"http_status\":%d,", lh_qreq_status(j->req, NULL));
            if (a->len > 2)
                oom |= lh_buf_append(&b, ans + 1, a->len - 2);
            else
                oom |= lh_buf_puts(&b, "\"error\":{}");
        }
    }
    oom |= lh_buf_putc(&b, '}');
    if (oom) {
        lh_buf_free(&b);
        busy(js, req, "overloaded", "out of memory");
        return;
    }
    lh_queryd_count(js->qd, "jobs", 200);
    lh_http_respond_json(req, 200, NULL, b.data, b.len);
    lh_buf_free(&b);
}

static void on_delete(struct lh_http_req *req, void *arg)
{
    struct lh_qjobs *js = arg;
    struct sjob *j = lookup(js, req);
    if (!j)
        return;
    enum job_state state;
    char out[128];
    int n;
    if (!job_finished(j, &state)) {
        atomic_store(&j->progress.cancel, 1);   /* the thread stops at its next unit */
        lh_counter_add(js->cancelled, 1);
        n = snprintf(out, sizeof(out), "{\"job_id\":\"%s\",\"status\":\"cancelling\"}", j->id);
    } else {
        n = snprintf(out, sizeof(out), "{\"job_id\":\"%s\",\"status\":\"%s\",\"deleted\":true}",
                     j->id, state_names[state]);
        for (struct sjob **pp = &js->jobs; *pp; pp = &(*pp)->next) {
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        }
        js->njobs--;
        job_destroy(j);
    }
    lh_queryd_count(js->qd, "jobs", 200);
    lh_http_respond_json(req, 200, NULL, out, (size_t)n);
}

int lh_qjobs_create(struct lh_queryd *qd, struct lh_http_server *srv,
                    const struct lh_qjobs_config *cfg, struct lh_metrics *metrics,
                    struct lh_qjobs **out, struct lh_err *err)
{
    struct lh_qjobs *js = calloc(1, sizeof(*js));
    if (!js)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    js->qd = qd;
    lh_qjobs_configure(js, cfg);
    if (metrics) {
        js->started = lh_counter_get(metrics, "loghaul_queryd_search_jobs_total",
                                     "Search jobs started", NULL);
        js->cancelled = lh_counter_get(metrics, "loghaul_queryd_search_jobs_cancelled_total",
                                       "Search jobs cancelled by DELETE", NULL);
    }
    int rc = lh_http_server_route(srv, "POST", JOBS_PATH, on_create, js, err);
    if (rc == 0)
        rc = lh_http_server_route_prefix(srv, "GET", JOBS_PATH "/", on_get, js, err);
    if (rc == 0)
        rc = lh_http_server_route_prefix(srv, "DELETE", JOBS_PATH "/", on_delete, js, err);
    if (rc < 0) {
        free(js);
        return rc;
    }
    *out = js;
    return 0;
}

void lh_qjobs_configure(struct lh_qjobs *js, const struct lh_qjobs_config *cfg)
{
    js->cfg = *cfg;
    if (js->cfg.max_running < 1)
        js->cfg.max_running = 1;
    if (js->cfg.max_kept < js->cfg.max_running)
        js->cfg.max_kept = js->cfg.max_running;
}

void lh_qjobs_shutdown(struct lh_qjobs *js)
{
    if (!js || js->stopping)
        return;
    js->stopping = 1;
    size_t n = 0;
    for (struct sjob *j = js->jobs; j; j = j->next) {
        if (!job_finished(j, NULL)) {
            atomic_store(&j->progress.cancel, 1);
            n++;
        }
    }
    if (n)
        lh_info("cancelling %zu running search job(s)", n);
    for (struct sjob *j = js->jobs; j; j = j->next)
        job_join(j);
}

void lh_qjobs_destroy(struct lh_qjobs *js)
{
    if (!js)
        return;
    lh_qjobs_shutdown(js);
    while (js->jobs) {
        struct sjob *j = js->jobs;
        js->jobs = j->next;
        job_destroy(j);
    }
    free(js);
}
