/* http.h - the HTTP/1.1 server of the four daemons (ingest API, search API,
 * /healthz, /readyz, /metrics), on libuv + http-parser + OpenSSL.
 *
 * Threads
 *   A server lives on one libuv loop and everything it does happens on that
 *   loop's thread: accepting, reading, parsing, TLS, calling handlers,
 *   writing. Every function below must be called on the loop thread, or
 *   from any single thread while that loop is not running (set-up before
 *   uv_run, tear-down after it returned). Exceptions are marked "any thread".
 *   Heavy work (decompression, a blocking write to the bus) is moved off the
 *   loop with lh_http_defer: its work function runs on libuv's thread pool,
 *   its completion runs back on the loop thread and sends the response, or
 *   the work function answers itself (lh_http_work_respond) and the bytes
 *   leave from the worker thread.
 *
 * Requests
 *   A handler is called with a complete request (headers and the whole body,
 *   at most max_body bytes) and must call lh_http_respond (or one of its
 *   helpers) exactly once, right away or later on the loop thread. Until
 *   then the server keeps the request and its connection alive, even when
 *   the client disconnects: a late response to a gone client is discarded
 *   and lh_http_respond returns LH_ECLOSED. The request (and every string
 *   obtained from it) is freed by lh_http_respond; do not touch it after.
 *
 *   One request per connection is handled at a time: bytes of a pipelined
 *   request are buffered, and parsed once the previous response is written,
 *   so responses always go out in request order and never interleave.
 *   Reading stops while more than 64 KiB wait (backpressure).
 *
 *   Limits answer with an error and close the connection: 413 when a
 *   Content-Length or the streamed (chunked) body exceeds max_body, 431 when
 *   the request line plus headers exceed max_header_bytes or max_headers,
 *   400 on a malformed request, 408 when the header or body timeout passes.
 *   `Expect: 100-continue` is answered with 100 (or 413 at once).
 *   Clients that end their side of the connection while their request is
 *   being handled are taken as gone (the connection is closed).
 *
 * Responses always carry Content-Length, Date and `Server: loghaul`, and
 * `Connection: close` when the connection closes after them (client asked,
 * HTTP/1.0 without keep-alive, an error, or the server draining).
 *
 * TLS (optional): TLS 1.3 only, certificate chain + key from PEM files;
 * with a client CA file, client certificates are asked for (`optional`) or
 * required (`require`): a presented certificate must verify against that CA,
 * and the subject CN of a verified one is available on each request.
 *
 * Lifetime: lh_http_server_create binds and listens; lh_http_server_shutdown
 * drains; lh_http_server_destroy releases. Memory held for connections and
 * requests still in flight is freed when they end, so run the loop until
 * uv_run returns before uv_loop_close. */
#ifndef LH_HTTP_H
#define LH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"

struct lh_http_server;
struct lh_http_req;

/* A header given to lh_http_respond: arrays end with { NULL, NULL }. */
struct lh_http_header {
    const char *name;
    const char *value;
};

enum lh_http_client_auth {
    LH_HTTP_CLIENT_AUTH_NONE = 0,     /* never ask for a client certificate */
    LH_HTTP_CLIENT_AUTH_OPTIONAL = 1, /* ask; a presented one must verify */
    LH_HTTP_CLIENT_AUTH_REQUIRE = 2,  /* the handshake fails without a valid one */
};

/* Field types match lh/conf.h so a YAML section binds straight into it
 * (lh_http_server_opts). TLS is on when cert_file is set. */
struct lh_http_tls_config {
    char *cert_file;       /* PEM certificate chain, leaf first */
    char *key_file;        /* PEM private key */
    char *client_ca_file;  /* PEM CA(s) for client certificates; NULL: none */
    int client_auth;       /* enum lh_http_client_auth; needs client_ca_file */
};

/* Zero fields take the default given in brackets. */
struct lh_http_server_config {
    char *listen;                 /* "0.0.0.0:7070", "[::]:7070", "127.0.0.1:0", ":7070" */
    uint64_t max_body;            /* request body bytes [10 MiB] */
    uint64_t max_header_bytes;    /* request line + headers [16 KiB, at most 80 KiB] */
    int64_t max_headers;          /* header count [100] */
    int64_t max_connections;      /* open connections; beyond: accepted and closed [1024] */
    int64_t header_timeout_ms;    /* from connect / first byte to the end of headers,
                                     TLS handshake included (slowloris) [10 s] */
    int64_t body_timeout_ms;      /* longest pause between body bytes [30 s] */
    int64_t idle_timeout_ms;      /* keep-alive wait for the next request [60 s] */
    int64_t write_timeout_ms;     /* to write one response [30 s] */
    struct lh_http_tls_config tls;
};

/* The `listen:` section of a daemon config: address, max_body,
 * max_header_bytes, max_headers, max_connections, header_timeout,
 * body_timeout, idle_timeout, write_timeout, tls: {cert, key, client_ca,
 * client_auth: none|optional|require}. */
extern const struct lh_opt lh_http_server_opts[];
extern const struct lh_opt lh_http_tls_opts[];

/* Binds, listens and returns the server in *out. cfg is copied. Fails on a
 * bad address, a bind error (port in use) or unreadable/invalid TLS files. */
int lh_http_server_create(uv_loop_t *loop, const struct lh_http_server_config *cfg,
                          struct lh_http_server **out, struct lh_err *err);

/* The bound port (useful after listening on port 0). */
int lh_http_server_port(const struct lh_http_server *srv);
uv_loop_t *lh_http_server_loop(const struct lh_http_server *srv);

/* Handlers. Called on the loop thread with a complete request; must lead to
 * exactly one lh_http_respond* call for it (now or later). */
typedef void (*lh_http_handler_fn)(struct lh_http_req *req, void *arg);

/* Routes method + exact path (method NULL: any method). The path is
 * compared with the raw request path (no query, not percent-decoded).
 * Register before the loop runs requests; the strings are copied. */
int lh_http_server_route(struct lh_http_server *srv, const char *method, const char *path,
                         lh_http_handler_fn fn, void *arg, struct lh_err *err);
/* Routes every path that starts with prefix ("/v1/tail/"). Exact routes win
 * over prefixes, longer prefixes over shorter. A path that matches only
 * with another method gets 405 with Allow; no match gets 404. */
int lh_http_server_route_prefix(struct lh_http_server *srv, const char *method,
                                const char *prefix, lh_http_handler_fn fn, void *arg,
                                struct lh_err *err);

/* The built-in admin routes:
 *   GET /healthz  200 "ok" while the loop runs
 *   GET /readyz   ready(arg, reason) == 0: 200 "ready"; else 503 with the reason
 *                 the callback appended to `reason` (ready NULL: always ready)
 *   GET /metrics  render(arg, out) appends Prometheus text (version 0.0.4);
 *                 the server's own loghaul_http_* series follow it.
 * Both callbacks run on the loop thread and must be quick. */
struct lh_http_admin {
    int (*ready)(void *arg, struct lh_buf *reason);
    int (*render_metrics)(void *arg, struct lh_buf *out);
    void *arg;
};
int lh_http_server_add_admin_routes(struct lh_http_server *srv, const struct lh_http_admin *a,
                                    struct lh_err *err);

/* Called on the loop thread after each response was handed to the socket
 * (or discarded): status, request + response bytes, seconds since the
 * request's first byte. For daemon metrics (per-route counters...). */
typedef void (*lh_http_observer_fn)(void *arg, const struct lh_http_req *req, int status,
                                    uint64_t bytes_in, uint64_t bytes_out, double seconds);
void lh_http_server_set_observer(struct lh_http_server *srv, lh_http_observer_fn fn, void *arg);

/* Counters kept by the server. Any thread (relaxed atomic reads). */
#define LH_HTTP_LATENCY_BUCKETS 14
struct lh_http_stats {
    uint64_t requests[6];        /* by status class: [1]=1xx .. [5]=5xx, [0] other */
    uint64_t bytes_in;           /* bytes read from sockets (TLS included) */
    uint64_t bytes_out;          /* bytes written to sockets */
    uint64_t connections_total;  /* accepted */
    uint64_t connections_open;
    uint64_t connections_rejected; /* over max_connections */
    uint64_t tls_handshake_failures;
    uint64_t timeouts;           /* connections closed by a read/write timeout */
    uint64_t latency_bucket[LH_HTTP_LATENCY_BUCKETS + 1]; /* cumulative, +Inf last */
    double latency_sum;          /* seconds */
};
extern const double lh_http_latency_bounds[LH_HTTP_LATENCY_BUCKETS];  /* seconds */
void lh_http_server_stats(const struct lh_http_server *srv, struct lh_http_stats *out);
/* Appends the stats as Prometheus text (loghaul_http_* series). Any thread. */
int lh_http_server_render_stats(const struct lh_http_server *srv, struct lh_buf *out);

/* Swaps in a new certificate, key and client CA (SIGHUP). Connections
 * already open keep the old ones. On error the old context stays in use.
 * Fails when the server was created without TLS. */
int lh_http_server_reload_tls(struct lh_http_server *srv, const struct lh_http_tls_config *tls,
                              struct lh_err *err);

/* Graceful drain: stops accepting, closes idle connections, lets requests
 * in progress finish (answered with Connection: close), closes each
 * connection after its last response, and after drain_timeout_ms closes
 * whatever is left. done(arg) (may be NULL) runs on the loop thread once
 * every connection and the listener are closed; deferred work of closed
 * connections may still be running then (it keeps the loop alive). Later
 * calls do nothing: the first call's timeout and callback stay. */
void lh_http_server_shutdown(struct lh_http_server *srv, int64_t drain_timeout_ms,
                             void (*done)(void *arg), void *arg);

/* Releases the server. Without a shutdown before, closes everything now.
 * Memory is freed once the last handle closed and the last request in flight
 * was answered: keep running the loop until uv_run returns. */
void lh_http_server_destroy(struct lh_http_server *srv);

/* --- request accessors (loop thread; also from a defer work function,
 *     which may read but not respond) --- */

const char *lh_http_req_method(const struct lh_http_req *req);   /* "GET" */
const char *lh_http_req_path(const struct lh_http_req *req);     /* "/v1/logs/search" */
const char *lh_http_req_query(const struct lh_http_req *req);    /* after '?', "" if none */
const char *lh_http_req_url(const struct lh_http_req *req);      /* as received */
int lh_http_req_version_minor(const struct lh_http_req *req);    /* 0 or 1 (HTTP/1.x) */
/* First header of that name, case-insensitive; NULL when absent. */
const char *lh_http_req_header(const struct lh_http_req *req, const char *name);
/* The i-th header (i < count) as received; returns 0, or -1 past the end. */
size_t lh_http_req_header_count(const struct lh_http_req *req);
int lh_http_req_header_at(const struct lh_http_req *req, size_t i, const char **name,
                          const char **value);
/* The body (NUL-terminated past len; "" when empty). */
const char *lh_http_req_body(const struct lh_http_req *req, size_t *len);
/* Moves the body into out (out's old contents are freed); the request's
 * body is empty afterwards. Avoids a copy of large ingest batches. */
void lh_http_req_take_body(struct lh_http_req *req, struct lh_buf *out);
/* Remote address "ip:port" / "[ip6]:port". */
const char *lh_http_req_remote(const struct lh_http_req *req);
/* TLS: the verified client certificate's subject CN and full subject
 * (RFC 2253), NULL when none (plain listener, no or unverified cert). */
const char *lh_http_req_client_cn(const struct lh_http_req *req);
const char *lh_http_req_client_subject(const struct lh_http_req *req);
int lh_http_req_is_tls(const struct lh_http_req *req);
/* 1 when the client went away; a response would be discarded. Loop
 * thread only (a work function must not call it). */
int lh_http_req_closed(const struct lh_http_req *req);
struct lh_http_server *lh_http_req_server(const struct lh_http_req *req);

/* Finds name in a query string ("a=1&b=x%20y") and appends its decoded
 * value to out ('+' is a space). Returns 0, or LH_ENOTFOUND. Any thread. */
int lh_http_query_get(const char *query, const char *name, struct lh_buf *out);

/* --- responses (loop thread only) --- */

/* Sends status, headers (array ending with {NULL}; may be NULL) and a copy of
 * body[0..len). Content-Length, Date, Server and Connection are set by the
 * server (given ones of these names are ignored, except `Connection: close`,
 * which closes after the response); Content-Type defaults to text/plain.
 * Frees req. Returns 0, LH_ECLOSED when the client is gone (nothing sent),
 * LH_ENOMEM (the connection is closed). */
int lh_http_respond(struct lh_http_req *req, int status, const struct lh_http_header *headers,
                    const void *body, size_t len);
/* The same with Content-Type: application/json. */
int lh_http_respond_json(struct lh_http_req *req, int status,
                         const struct lh_http_header *headers, const char *json, size_t len);
/* {"error":{"code":"<code>","message":"<formatted>"}} as JSON, e.g.
 * lh_http_respond_error(req, 413, NULL, "too_large", "body over %zu bytes", max). */
int lh_http_respond_error(struct lh_http_req *req, int status,
                          const struct lh_http_header *headers, const char *code,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* --- streamed responses (loop thread only) ---
 *
 * For a body whose length is not known up front (server-sent events, live
 * tails): begin sends the status line and headers, each write queues one
 * piece of the body, end finishes it and frees req. Instead of
 * lh_http_respond, not in addition to it.
 *
 *   HTTP/1.1: `Transfer-Encoding: chunked`, one chunk per write; the
 *             connection may stay open for the next request after end.
 *   HTTP/1.0: the body is sent as is and the connection closes after end.
 *   HEAD:     the headers only; writes are accepted and dropped.
 *
 * Between begin and end the request stays with its handler: write and end
 * are called later, from timers or deferred completions, on the loop
 * thread. The client going away shows in lh_http_req_closed (then write
 * returns LH_ECLOSED and end only frees). The stream's owner checks that,
 * e.g. on each timer tick; a server drain does not end a stream by itself
 * (the drain timeout closes its connection: the owner should end it first).
 * While data waits to be sent, write_timeout applies from the last
 * progress: a client that stops reading is disconnected. Bytes of a
 * pipelined next request wait until the stream ended. */

/* Sends status (200..999, not 204/304), headers (as lh_http_respond; no
 * Content-Length) and Content-Type content_type (NULL: text/plain).
 * Returns 0; LH_EINVAL when req is not with its handler, was answered or
 * deferred, or status is not allowed; LH_ECLOSED when the client is gone.
 * After any return but LH_EINVAL, lh_http_stream_end must follow. */
int lh_http_stream_begin(struct lh_http_req *req, int status,
                         const struct lh_http_header *headers, const char *content_type);
/* Queues a copy of data[0..len) (len 0 does nothing). Returns 0; LH_EFULL
 * when more than 1 MiB would wait unsent (nothing queued: wait, see
 * lh_http_stream_buffered, or drop); LH_ECLOSED when the client is gone;
 * LH_ENOMEM; LH_EINVAL when no stream is open on req. */
int lh_http_stream_write(struct lh_http_req *req, const void *data, size_t len);
/* Bytes queued on the connection and not yet written to the socket. */
size_t lh_http_stream_buffered(const struct lh_http_req *req);
/* Ends the body (the last chunk) and frees req. Returns 0, LH_ECLOSED when
 * the client was gone (nothing sent), LH_ENOMEM (the connection closes). */
int lh_http_stream_end(struct lh_http_req *req);

/* Runs work(req, arg) on libuv's thread pool, then done(req, status, arg)
 * on the loop thread; done must respond. status is 0, or LH_ECLOSED when
 * the client went away meanwhile (responding is still required: it only
 * frees). work may read the request (it is not modified meanwhile) but
 * must not respond or touch the server. Returns 0, or an error and then
 * neither function is called (the caller still owns the response). */
typedef void (*lh_http_work_fn)(struct lh_http_req *req, void *arg);
typedef void (*lh_http_done_fn)(struct lh_http_req *req, int status, void *arg);
int lh_http_defer(struct lh_http_req *req, lh_http_work_fn work, lh_http_done_fn done,
                  void *arg);

/* From a work function only (libuv's pool): answers req there, so that the
 * client need not wait for the loop thread. The response (status, headers
 * and Content-Type as lh_http_respond; the body is body[0..nbody) one after
 * the other, their memory taken: the buffers are empty afterwards) is
 * written to the socket from the worker when the connection is plain TCP
 * and nothing else was waiting to be written; what the socket does not
 * take at once, and TLS connections, are sent by the loop thread after
 * done. done still runs (status as usual) and must not respond: it only
 * cleans up; the server finishes the request after done returns.
 * Returns 0; LH_EINVAL when not called from req's work function, called
 * twice or nbody > LH_HTTP_WORK_MAX_PARTS; LH_ENOMEM. On error nothing was
 * taken or sent and done must respond as usual. */
#define LH_HTTP_WORK_MAX_PARTS 4
int lh_http_work_respond(struct lh_http_req *req, int status,
                         const struct lh_http_header *headers, const char *content_type,
                         struct lh_buf *body, size_t nbody);

/* "OK", "Not Found"... for a status code ("Unknown" when unknown). */
const char *lh_http_status_text(int status);

#endif
