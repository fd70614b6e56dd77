/* http_client.h - a thin HTTP client over libcurl for OpenSearch, S3 and the
 * agent's shipper: kept-alive connections, bounded responses, timeouts,
 * TLS (CA, client certificate, TLS 1.3 minimum) and gzip request bodies.
 *
 * Threads: a struct lh_http_client belongs to one thread at a time (it
 * holds one curl easy handle for blocking calls and one multi handle with
 * its own pool for lh_http_client_do_all); give each thread its own.
 * Connections stay open between calls of the same client and are reused.
 *
 * curl_global_init: lh_http_client_global_init() runs it once per process
 * (pthread_once); lh_http_client_create calls it, so nothing else is needed
 * as long as no other code in the process calls curl_global_init itself
 * concurrently. Daemons call it early in main (lh_daemon_main does). It is
 * never undone (curl_global_cleanup is not called: other threads may still
 * use curl at exit). */
#ifndef LH_HTTP_CLIENT_H
#define LH_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/http.h"   /* struct lh_http_header */

/* Zero fields take the default in brackets. Field types match lh/conf.h
 * (lh_http_client_opts binds a YAML section into it). Strings are copied. */
struct lh_http_client_config {
    int64_t connect_timeout_ms;  /* TCP + TLS connect [10 s] */
    int64_t timeout_ms;          /* a whole request, response body included [60 s] */
    uint64_t max_response;       /* response body bytes; more: LH_ETOOBIG [64 MiB] */
    char *ca_file;               /* PEM CAs to verify servers; NULL: system store */
    char *cert_file;             /* PEM client certificate (mTLS); NULL: none */
    char *key_file;              /* its key */
    int tls13;                   /* refuse servers below TLS 1.3 (else 1.2 minimum) */
    int accept_gzip;             /* ask for gzip responses, decoded transparently */
    int64_t gzip_level;          /* level of gzip request bodies, 1..12 [6] */
    int64_t max_parallel;        /* lh_http_client_do_all: transfers at once [8] */
    char *user_agent;            /* [loghaul] */
};

/* connect_timeout, timeout, max_response, ca, cert, key, tls13, accept_gzip,
 * gzip_level, max_parallel. */
extern const struct lh_opt lh_http_client_opts[];

struct lh_http_request {
    const char *method;                  /* NULL: GET, or POST when there is a body */
    const char *url;
    const struct lh_http_header *headers;/* ends with { NULL, NULL }; may be NULL */
    const void *body;                    /* not copied: valid during the call */
    size_t body_len;
    int gzip;                            /* gzip the body, add Content-Encoding: gzip */
    int64_t timeout_ms;                  /* 0: the client's */
};

/* Zero-initialise before the first use; lh_http_response_free releases it
 * (and leaves it ready for reuse). A call overwrites what it held. */
struct lh_http_response {
    long status;                 /* final HTTP status (interim 1xx skipped) */
    struct lh_buf body;          /* decoded body, NUL-terminated */
    struct lh_buf headers;       /* "name\0value\0" pairs of the final response */
    size_t nheaders;
    double seconds;              /* total time of the transfer */
};

struct lh_http_client;

/* curl_global_init once per process; any thread. 0 or LH_ERR. */
int lh_http_client_global_init(struct lh_err *err);

int lh_http_client_create(const struct lh_http_client_config *cfg,
                          struct lh_http_client **out, struct lh_err *err);
void lh_http_client_destroy(struct lh_http_client *c);

/* Performs one request and blocks until its response (or failure).
 * Returns 0 when an HTTP response arrived, whatever its status; else
 *   LH_EUNAVAIL  could not connect / resolve, connection reset, empty reply
 *   LH_ETIMEDOUT the connect or request timeout passed
 *   LH_ETOOBIG   the response body is over max_response
 *   LH_EINVAL    bad URL or request
 *   LH_EIO       TLS or other transfer failure (message says which)
 * with err describing it ("POST https://...: Connection refused"). */
int lh_http_client_do(struct lh_http_client *c, const struct lh_http_request *req,
                      struct lh_http_response *resp, struct lh_err *err);

/* Several requests run concurrently (at most max_parallel at once) on the
 * calling thread; returns when all are done. Each exchange gets its own
 * outcome in rc / err (as for lh_http_client_do) and resp. Returns 0, or a
 * negative code when the batch could not be run at all. */
struct lh_http_exchange {
    struct lh_http_request req;
    struct lh_http_response resp;
    int rc;
    struct lh_err err;
};
int lh_http_client_do_all(struct lh_http_client *c, struct lh_http_exchange *x, size_t n,
                          struct lh_err *err);

/* First response header of that name (case-insensitive), NULL if absent. */
const char *lh_http_response_header(const struct lh_http_response *r, const char *name);
void lh_http_response_free(struct lh_http_response *r);

#endif
