/* jobs.h - search jobs: searches that may take longer than a request.
 *
 *   POST   /v1/logs/search/jobs       the body of POST /v1/logs/search ->
 *                                     202 {"job_id", "status": "running"}, Location
 *   GET    /v1/logs/search/jobs/<id>  {"job_id", "status", "progress", "elapsed_ms",
 *                                     "result": <the search answer> | "error": {...}}
 *   DELETE /v1/logs/search/jobs/<id>  cancels a running job, forgets a finished one
 *
 * A job runs the same search as /v1/logs/search (same answer, cursors
 * included: the next page is a normal search or another job) on a thread
 * of its own, with `jobs.timeout` instead of `limits.timeout`, so that an
 * archive scan of many hours can finish while the client polls. progress
 * counts the archive hours planned and read ("units_total", "units_done")
 * and the events read ("events_scanned"); a job on the hot tiers alone has
 * no units. status is running, done (result holds the answer), failed
 * (error holds the reason and http_status the status a search would have
 * had) or cancelled. A job belongs to the tenant of the token that made
 * it: other tenants get 404, like an unknown id. Finished jobs are kept for
 * `jobs.ttl`, at most `jobs.max_kept` of them (the oldest go first).
 *
 * Loop thread for everything but the job threads themselves. */
#ifndef LH_QUERYD_JOBS_H
#define LH_QUERYD_JOBS_H

#include <stdint.h>

#include "lh/conf.h"
#include "lh/err.h"
#include "lh/http.h"
#include "lh/metrics.h"

struct lh_qjobs_config {
    int64_t max_running;   /* jobs running at once; more: 503 */
    int64_t max_kept;      /* jobs remembered (running and finished) */
    int64_t timeout_ms;    /* one job */
    int64_t ttl_ms;        /* a finished job's answer is kept this long */
};

extern const struct lh_opt lh_qjobs_opts[];

struct lh_queryd;
struct lh_qjobs;

/* Registers the routes on srv. */
int lh_qjobs_create(struct lh_queryd *qd, struct lh_http_server *srv,
                    const struct lh_qjobs_config *cfg, struct lh_metrics *metrics,
                    struct lh_qjobs **out, struct lh_err *err);
/* New limits (a reload). */
void lh_qjobs_configure(struct lh_qjobs *js, const struct lh_qjobs_config *cfg);
/* Cancels every running job and waits for their threads. */
void lh_qjobs_shutdown(struct lh_qjobs *js);
void lh_qjobs_destroy(struct lh_qjobs *js);   /* NULL-safe; after shutdown */

/* queryd.c's side, for the jobs (struct lh_qreq: one search and its answer). */
struct lh_qreq;
struct lh_qprogress;
struct lh_buf;
const char *lh_queryd_authenticate(struct lh_queryd *qd, struct lh_http_req *req,
                                   const char **why);
int lh_queryd_stopping(const struct lh_queryd *qd);
void lh_queryd_count(struct lh_queryd *qd, const char *endpoint, int status);
/* An error answer as queryd's own routes give it (counted; 401 with
 * WWW-Authenticate, 503 with Retry-After: 1). */
void lh_queryd_reject(struct lh_queryd *qd, struct lh_http_req *req, const char *endpoint,
                      int status, const char *code, const char *msg);
/* A search of tenant with body (taken), run later by lh_qreq_run on any
 * thread; progress (may be NULL) must outlive the request. NULL: no memory. */
struct lh_qreq *lh_qreq_search(struct lh_queryd *qd, const char *tenant, struct lh_buf *body,
                               int64_t timeout_ms, struct lh_qprogress *progress);
/* 0 when the body is a valid search, else the status of the error answer. */
int lh_qreq_check(struct lh_qreq *r);
void lh_qreq_run(struct lh_qreq *r);
int lh_qreq_status(const struct lh_qreq *r, int *retry_after);
const struct lh_buf *lh_qreq_answer(const struct lh_qreq *r);
uint64_t lh_qreq_hits(const struct lh_qreq *r);
void lh_qreq_free(struct lh_qreq *r);   /* NULL-safe */

#endif
