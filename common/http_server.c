/* http_server.c - HTTP/1.1 server on libuv + http-parser + OpenSSL memory
 * BIOs (see lh/http.h for the contract and the threading rules).
 *
 * Shape: one struct conn per TCP connection, with a libuv TCP handle and
 * one timer (its meaning follows conn.state). Plaintext (directly, or out
 * of SSL_read) goes through conn_input into http-parser; the parser pauses
 * at the end of each message, the request is dispatched, and further bytes
 * wait in conn.pending until its response is written. Lifetimes are
 * reference counted: a server is held by its owner, its two handles and
 * each connection; a connection by its open handles and its request. */
#include "lh/http.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lh/tls.h"
/* openssl/lhash.h defines an lh_error macro of its own; ours wins here. */
#undef lh_error
#include "lh/log.h"

#define READ_BUF_SIZE (64 * 1024)
#define PLAIN_BUF_SIZE (16 * 1024)
#define PENDING_MAX (64 * 1024)      /* stop reading while more waits */
#define LINGER_MS 1000               /* read and discard before a final close */
#define HARD_MAX_HEADER_BYTES (80 * 1024)

#define DEF_MAX_BODY (10u << 20)
#define DEF_MAX_HEADER_BYTES (16u << 10)
#define DEF_MAX_HEADERS 100
#define DEF_MAX_CONNECTIONS 1024
#define DEF_HEADER_TIMEOUT_MS 10000
#define DEF_BODY_TIMEOUT_MS 30000
#define DEF_IDLE_TIMEOUT_MS 60000
#define DEF_WRITE_TIMEOUT_MS 30000

const double lh_http_latency_bounds[LH_HTTP_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

const struct lh_opt lh_http_tls_opts[] = {
    { .type = LH_OPT_STR, .key = "cert",
      .offset = offsetof(struct lh_http_tls_config, cert_file),
      .help = "PEM certificate chain, leaf first; TLS 1.3 is on when set" },
    { .type = LH_OPT_STR, .key = "key",
      .offset = offsetof(struct lh_http_tls_config, key_file),
      .help = "PEM private key of the certificate" },
    { .type = LH_OPT_STR, .key = "client_ca",
      .offset = offsetof(struct lh_http_tls_config, client_ca_file),
      .help = "PEM CA certificate(s) that sign client certificates (mTLS)" },
    { .type = LH_OPT_ENUM, .key = "client_auth", .def = "none",
      .offset = offsetof(struct lh_http_tls_config, client_auth),
      .help = "client certificates: none, optional (verified when sent) or require",
      .choices = "none|optional|require" },
    { 0 }
};

const struct lh_opt lh_http_server_opts[] = {
    { .type = LH_OPT_STR, .key = "address",
      .offset = offsetof(struct lh_http_server_config, listen),
      .help = "host:port to listen on (\"0.0.0.0:7070\", \"[::]:7070\"); default: the daemon's port" },
    { .type = LH_OPT_SIZE, .key = "max_body", .def = "10MiB",
      .offset = offsetof(struct lh_http_server_config, max_body),
      .help = "largest request body; larger ones get 413" },
    { .type = LH_OPT_SIZE, .key = "max_header_bytes", .def = "16KiB",
      .offset = offsetof(struct lh_http_server_config, max_header_bytes),
      .help = "largest request line + headers (at most 80KiB); larger get 431" },
    { .type = LH_OPT_INT, .key = "max_headers", .def = "100",
      .offset = offsetof(struct lh_http_server_config, max_headers),
      .help = "most headers in a request; more get 431" },
    { .type = LH_OPT_INT, .key = "max_connections", .def = "1024",
      .offset = offsetof(struct lh_http_server_config, max_connections),
      .help = "open connections; further ones are accepted and closed" },
    { .type = LH_OPT_DURATION, .key = "header_timeout", .def = "10s",
      .offset = offsetof(struct lh_http_server_config, header_timeout_ms),
      .help = "time to receive request line and headers (TLS handshake included)" },
    { .type = LH_OPT_DURATION, .key = "body_timeout", .def = "30s",
      .offset = offsetof(struct lh_http_server_config, body_timeout_ms),
      .help = "longest pause while receiving a request body" },
    { .type = LH_OPT_DURATION, .key = "idle_timeout", .def = "60s",
      .offset = offsetof(struct lh_http_server_config, idle_timeout_ms),
      .help = "how long a kept-alive connection waits for its next request" },
    { .type = LH_OPT_DURATION, .key = "write_timeout", .def = "30s",
      .offset = offsetof(struct lh_http_server_config, write_timeout_ms),
      .help = "time to send one response" },
    { .type = LH_OPT_SECTION, .key = "tls",
      .offset = offsetof(struct lh_http_server_config, tls),
      .help = "TLS 1.3 for this listener (off unless cert is set)", .sub = lh_http_tls_opts },
    { 0 }
};

enum conn_state {
    CS_NEW,      /* accepted (TLS handshake), no request byte yet: header timeout */
    CS_IDLE,     /* kept alive between requests: idle timeout */
    CS_HEADERS,  /* receiving a request line and headers: header timeout */
    CS_BODY,     /* receiving a body: body timeout (between reads) */
    CS_HANDLER,  /* the request is with its handler: no timeout */
    CS_WRITING,  /* the response is being written: write timeout */
    CS_STREAM,   /* a streamed response is open: write timeout while data waits */
    CS_LINGER,   /* final response sent, write side shut: discard until EOF */
};

struct route {
    char *method;            /* NULL: any */
    char *path;
    size_t path_len;
    int prefix;
    lh_http_handler_fn fn;
    void *arg;
};

struct hdr {
    size_t name, value;      /* offsets into req->text until finalised */
    const char *n, *v;
};

struct conn;

/* A response built by a defer work function (lh_http_work_respond): the
 * head and the body parts, and how much of them the worker wrote. */
#define WRESP_MAX_PARTS (LH_HTTP_WORK_MAX_PARTS + 1)
struct wresp {
    int status;
    int keep;                /* keep-alive as the head says */
    size_t conn_off;         /* where the head's Connection part starts */
    char *base[WRESP_MAX_PARTS];   /* [0] the head, then the body; malloc'd */
    size_t len[WRESP_MAX_PARTS];
    size_t nparts;
    size_t total;            /* bytes of all parts */
    size_t sent;             /* written by the worker */
    int error;               /* the worker's write failed */
};

struct lh_http_req {
    struct conn *conn;       /* holds one reference on it */
    struct lh_buf text;      /* url \0 path \0 query \0 name \0 value \0 ... */
    struct hdr *hdrs;
    size_t nhdrs, cap;
    int hdr_phase;           /* 0: url, 1: in a name, 2: in a value, 3: done */
    size_t path_off, query_off;
    struct lh_buf body;
    int method;              /* enum http_method */
    int http_minor;
    int keep_alive;
    uint64_t header_bytes;
    uint64_t start_ns;
    int dispatched;
    int deferred;
    int in_work;             /* its defer work function is running */
    int direct_ok;           /* the worker may write to the socket (plain, idle) */
    struct wresp *wresp;     /* answered by the work function */
    int streaming;           /* lh_http_stream_begin was called */
    int stream_chunked;      /* HTTP/1.1: chunked transfer encoding */
    int stream_head;         /* HEAD: the body is dropped */
    int stream_keep;         /* keep-alive after the stream ends */
    int stream_status;
    uint64_t stream_bytes;   /* bytes sent for the observer */
    uint64_t done_ns;        /* when the response was out, if not now (observe) */
    int counted;             /* status and latency counted by the worker */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    /* A defer worker may write a response to fd while the loop thread does
     * nothing else with the socket; wlock orders that write against the
     * loop closing the socket (wclosed) and the server starting to drain. */
    pthread_mutex_t wlock;
    int wclosed;             /* under wlock: the socket is (being) closed */
    int fd;
    struct lh_http_server *srv;
    struct conn *prev, *next;
    int refs;                /* 1 for the open handles + 1 per live request */
    int handles;             /* handles not closed yet */
    enum conn_state state;
    unsigned closing : 1, reading : 1, eof : 1, close_after : 1, tls_done : 1,
        linger : 1;          /* the client may still be sending: drain before closing */
    http_parser parser;
    struct lh_http_req *req; /* being parsed, or with its handler */
    int error_status;        /* set by parser callbacks that refuse a request */
    const char *error_code;
    char error_msg[160];
    struct lh_buf pending;   /* plaintext received but not parsed yet */
    size_t writes;           /* uv_write requests in flight */
    size_t write_bytes;      /* bytes of those requests */
    uint64_t body_last_ms;   /* loop time of the last body bytes */
    SSL *ssl;
    BIO *rbio, *wbio;        /* owned by ssl */
    char *client_cn, *client_subject;
    char remote[64];
};

#define WRITE_MAX_BUFS WRESP_MAX_PARTS
struct write_req {
    uv_write_t req;
    struct conn *conn;
    size_t nbufs, len;
    uv_buf_t buf[WRITE_MAX_BUFS];
    char *base[WRITE_MAX_BUFS];   /* what to free */
};

struct defer {
    uv_work_t work;
    struct lh_http_req *req;
    lh_http_work_fn fn;
    lh_http_done_fn done;
    void *arg;
};

struct lh_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t drain_timer;
    int refs;                /* owner + open handles + connections */
    int port;
    int draining, destroyed, drained, listening;
    struct lh_http_server_config cfg;  /* limits; string fields not used */
    SSL_CTX *ssl_ctx;        /* NULL: plain HTTP */
    struct route *routes;
    size_t nroutes, cap_routes;
    struct lh_http_admin admin;
    lh_http_observer_fn observer;
    void *observer_arg;
    struct conn *conns;
    size_t nconns;
    void (*drain_done)(void *arg);
    void *drain_arg;
    struct {
        uint64_t requests[6];
        uint64_t bytes_in, bytes_out;
        uint64_t conn_total, conn_open, conn_rejected;
        uint64_t tls_failures, timeouts;
        uint64_t latency[LH_HTTP_LATENCY_BUCKETS + 1];
        uint64_t latency_sum_us;
    } st;
    time_t date_sec;
    char date[40];
    char rbuf[READ_BUF_SIZE];
    char pbuf[PLAIN_BUF_SIZE];
};

#define STAT_ADD(field, n) __atomic_fetch_add(&(field), (uint64_t)(n), __ATOMIC_RELAXED)
#define STAT_SUB(field, n) __atomic_fetch_sub(&(field), (uint64_t)(n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static void conn_close(struct conn *c);
static void conn_parse(struct conn *c, const char *data, size_t len);
static void conn_input(struct conn *c, const char *data, size_t len);
static void conn_write_done(struct conn *c);
static void srv_check_drained(struct lh_http_server *srv);
static int conn_write(struct conn *c, char *data, size_t len);
static int tls_flush(struct conn *c);

/* ------------------------------------------------------------------ */
/* small helpers */

const char *lh_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void format_date(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Loop thread: the Date value, formatted once a second. */
static const char *http_date(struct lh_http_server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        format_date(now, srv->date);
        srv->date_sec = now;
    }
    return srv->date;
}

static int64_t def_i64(int64_t v, int64_t def) { return v > 0 ? v : def; }

/* ------------------------------------------------------------------ */
/* reference counts */

static void srv_unref(struct lh_http_server *srv)
{
    if (--srv->refs > 0)
        return;
    for (size_t i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].path);
    }
    free(srv->routes);
    SSL_CTX_free(srv->ssl_ctx);
    free(srv);
}

static void wresp_free(struct wresp *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nparts; i++)
        free(w->base[i]);
    free(w);
}

static void req_free(struct lh_http_req *req)
{
    wresp_free(req->wresp);
    lh_buf_free(&req->text);
    lh_buf_free(&req->body);
    free(req->hdrs);
    free(req);
}

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    struct lh_http_server *srv = c->srv;
    if (c->ssl)
        SSL_free(c->ssl);
    lh_buf_free(&c->pending);
    free(c->client_cn);
    free(c->client_subject);
    pthread_mutex_destroy(&c->wlock);
    free(c);
    srv_unref(srv);
}

/* ------------------------------------------------------------------ */
/* timers and reading */

static void conn_timer(struct conn *c, int64_t ms);

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct lh_http_server *srv = c->srv;
    if (c->closing)
        return;
    switch (c->state) {
    case CS_BODY: {
        uint64_t now = uv_now(srv->loop), tmo = (uint64_t)srv->cfg.body_timeout_ms;
        if (now - c->body_last_ms < tmo) {
            conn_timer(c, (int64_t)(tmo - (now - c->body_last_ms)));
            return;
        }
    }
        /* fall through */
    case CS_NEW:
    case CS_HEADERS:
        STAT_ADD(srv->st.timeouts, 1);
        lh_debug("http: %s: request read timeout", c->remote);
        if (c->req && !c->req->dispatched && (!c->ssl || c->tls_done)) {
            /* Tell the client why, then close. */
            req_free(c->req);
            c->req = NULL;
            c->refs--;    /* never the last: the handles hold one */
            c->linger = 1;
            c->error_status = 408;
            c->error_code = "timeout";
            snprintf(c->error_msg, sizeof(c->error_msg), "request not received in time");
            static const char resp[] = "HTTP/1.1 408 Request Timeout\r\nServer: loghaul\r\n"
                                       "Content-Length: 0\r\nConnection: close\r\n\r\n";
            char *p = malloc(sizeof(resp) - 1);
            if (p) {
                memcpy(p, resp, sizeof(resp) - 1);
                c->state = CS_WRITING;
                c->close_after = 1;
                if (conn_write(c, p, sizeof(resp) - 1) == 0) {
                    conn_timer(c, srv->cfg.write_timeout_ms);
                    return;
                }
            }
        }
        conn_close(c);
        return;
    case CS_WRITING:
        STAT_ADD(srv->st.timeouts, 1);
        lh_debug("http: %s: response write timeout", c->remote);
        conn_close(c);
        return;
    case CS_STREAM:
        if (c->writes == 0)
            return;
        STAT_ADD(srv->st.timeouts, 1);
        lh_debug("http: %s: streamed response write timeout", c->remote);
        conn_close(c);
        return;
    case CS_IDLE:
    case CS_LINGER:
        conn_close(c);
        return;
    case CS_HANDLER:
        return;
    }
}

static void conn_timer(struct conn *c, int64_t ms)
{
    if (!c->closing)
        uv_timer_start(&c->timer, on_timer, (uint64_t)(ms > 0 ? ms : 1), 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    /* One buffer per server is enough: libuv hands each read to on_read
     * before it allocates for the next one, all on the loop thread. */
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(struct conn *c)
{
    if (!c->closing && !c->reading && !c->eof) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    }
}

static void conn_read_stop(struct conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ------------------------------------------------------------------ */
/* closing */

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles == 0)
        conn_unref(c);
}

/* Closes at once. A request with its handler stays alive (its respond call
 * will be discarded); one being parsed is freed. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    struct lh_http_server *srv = c->srv;
    /* A worker writing a response finishes before the descriptor goes. */
    pthread_mutex_lock(&c->wlock);
    c->wclosed = 1;
    pthread_mutex_unlock(&c->wlock);
    c->closing = 1;
    c->reading = 0;
    if (c->req && !c->req->dispatched) {
        req_free(c->req);
        c->req = NULL;
        c->refs--;          /* never the last: the handles hold one */
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->nconns--;
    STAT_SUB(srv->st.conn_open, 1);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    srv_check_drained(srv);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->eof || !c->linger)
        conn_close(c);
}

/* After the last response: close_notify for TLS, then FIN. When the client
 * may still be sending (a refused request, pipelined bytes), read and drop
 * what comes for a moment before closing: closing with unread data resets
 * the connection, and the client could lose the response. */
static void conn_finish(struct conn *c)
{
    if (c->closing)
        return;
    if (c->ssl && c->tls_done) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        tls_flush(c);
        if (c->closing)
            return;
    }
    c->state = CS_LINGER;
    if (c->pending.len)
        c->linger = 1;
    lh_buf_free(&c->pending);
    c->shutdown_req.data = c;
    if (c->eof || uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        if (c->writes == 0) {
            conn_close(c);
            return;
        }
        /* Writes still in flight: close when the linger timer fires. */
    }
    conn_timer(c, LINGER_MS);
    conn_read_start(c);
}

/* ------------------------------------------------------------------ */
/* writing */

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct conn *c = wr->conn;
    c->writes--;
    c->write_bytes -= wr->len;
    if (status == 0)
        STAT_ADD(c->srv->st.bytes_out, wr->len);
    for (size_t i = 0; i < wr->nbufs; i++)
        free(wr->base[i]);
    free(wr);
    if (c->closing)
        return;
    if (status < 0) {
        lh_debug("http: %s: write: %s", c->remote, uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->writes == 0)
        conn_write_done(c);
    else if (c->state == CS_STREAM)
        conn_timer(c, c->srv->cfg.write_timeout_ms);   /* progress: wait anew */
}

/* Queues base[i][off[i]..len[i]) for i < n (at most WRITE_MAX_BUFS) on
 * the socket in one write; the base pointers are malloc'd and taken (freed
 * whatever happens). */
static int raw_writev(struct conn *c, char **base, const size_t *off, const size_t *len,
                      size_t n)
{
    struct write_req *wr = n <= WRITE_MAX_BUFS ? calloc(1, sizeof(*wr)) : NULL;
    int too_big = 0;
    for (size_t i = 0; i < n; i++)
        too_big |= len[i] - off[i] > UINT32_MAX;
    if (!wr || too_big) {
        for (size_t i = 0; i < n; i++)
            free(base[i]);
        free(wr);
        conn_close(c);
        return LH_ENOMEM;
    }
    wr->conn = c;
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        wr->base[i] = base[i];
        if (len[i] > off[i])
            wr->buf[nb++] = uv_buf_init(base[i] + off[i], (unsigned)(len[i] - off[i]));
        wr->len += len[i] - off[i];
    }
    wr->nbufs = n;
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, wr->buf, (unsigned)nb, on_write);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(base[i]);
        free(wr);
        lh_debug("http: %s: write: %s", c->remote, uv_strerror(rc));
        conn_close(c);
        return LH_EIO;
    }
    c->writes++;
    c->write_bytes += wr->len;
    return 0;
}

/* Queues data (malloc'd, ownership taken) on the socket. */
static int raw_write(struct conn *c, char *data, size_t len)
{
    size_t off = 0;
    return raw_writev(c, &data, &off, &len, 1);
}

/* Sends what OpenSSL produced (handshake records, tickets, data, alerts). */
static int tls_flush(struct conn *c)
{
    size_t n = BIO_ctrl_pending(c->wbio);
    if (n == 0)
        return 0;
    char *p = malloc(n);
    if (!p) {
        conn_close(c);
        return LH_ENOMEM;
    }
    int got = BIO_read(c->wbio, p, (int)n);
    if (got <= 0) {
        free(p);
        return 0;
    }
    return raw_write(c, p, (size_t)got);
}

/* Writes plaintext data (malloc'd, ownership taken). */
static int conn_write(struct conn *c, char *data, size_t len)
{
    if (c->closing) {
        free(data);
        return LH_ECLOSED;
    }
    if (!c->ssl)
        return raw_write(c, data, len);
    size_t off = 0;
    ERR_clear_error();
    while (off < len) {
        size_t chunk = len - off > (1u << 30) ? (1u << 30) : len - off;
        int w = SSL_write(c->ssl, data + off, (int)chunk);
        if (w <= 0) {
            char why[256];
            lh_debug("http: %s: SSL_write: %s", c->remote, lh_tls_errors(why, sizeof(why)));
            free(data);
            conn_close(c);
            return LH_EIO;
        }
        off += (size_t)w;
    }
    free(data);
    return tls_flush(c);
}

static void conn_resume(struct conn *c);

static void conn_write_done(struct conn *c)
{
    if (c->state == CS_LINGER && c->eof) {
        conn_close(c);   /* the last bytes are out and the client is done */
        return;
    }
    if (c->state == CS_STREAM) {
        uv_timer_stop(&c->timer);   /* nothing waits: no write timeout */
        return;
    }
    if (c->state != CS_WRITING)
        return;     /* e.g. a "100 Continue" went out while reading the body */
    if (c->close_after || c->srv->draining) {
        conn_finish(c);
        return;
    }
    c->state = CS_IDLE;
    conn_timer(c, c->srv->cfg.idle_timeout_ms);
    conn_resume(c);
}

/* ------------------------------------------------------------------ */
/* responses */

static int header_is(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static int header_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

static void count_status(struct lh_http_server *srv, int status)
{
    int cls = status / 100;
    STAT_ADD(srv->st.requests[cls >= 1 && cls <= 5 ? cls : 0], 1);
}

static void observe(struct lh_http_req *req, int status, uint64_t bytes_out);

/* Appends the status line and headers to out. len < 0: a streamed body
 * (chunked when chunked, else delimited by the close). *conn_off (may be
 * NULL): where the part that depends on keep_alive starts (it runs to the
 * end of the head). Any thread. */
static int put_head(const char *date, struct lh_buf *out, int status,
                    const struct lh_http_header *headers, const char *ctype, long long len,
                    int keep_alive, int http_minor, int chunked, size_t *conn_off)
{
    int have_ctype = 0, no_body = (status >= 100 && status < 200) || status == 204 ||
                                  status == 304;
    if (headers) {
        for (const struct lh_http_header *h = headers; h->name; h++)
            if (header_is(h->name, "Content-Type"))
                have_ctype = 1;
    }
    int rc = lh_buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: loghaul\r\n", status,
                           lh_http_status_text(status), date);
    if (rc == 0 && !have_ctype && !no_body && (ctype || len != 0))
        rc = lh_buf_printf(out, "Content-Type: %s\r\n",
                           ctype ? ctype : "text/plain; charset=utf-8");
    if (headers) {
        for (const struct lh_http_header *h = headers; rc == 0 && h->name; h++) {
            if (!h->value || header_is(h->name, "Content-Length") ||
                header_is(h->name, "Date") || header_is(h->name, "Server") ||
                header_is(h->name, "Connection") || header_is(h->name, "Transfer-Encoding"))
                continue;
            if (!h->name[0] || !header_ok(h->name) || !header_ok(h->value)) {
                lh_warn("http: response header %s dropped: CR/LF in it", h->name);
                continue;
            }
            if (ctype && header_is(h->name, "Content-Type"))
                continue;
            rc = lh_buf_printf(out, "%s: %s\r\n", h->name, h->value);
        }
    }
    if (rc == 0 && !no_body) {
        if (len >= 0)
            rc = lh_buf_printf(out, "Content-Length: %lld\r\n", len);
        else if (chunked)
            rc = lh_buf_puts(out, "Transfer-Encoding: chunked\r\n");
    }
    if (conn_off)
        *conn_off = out->len;
    if (rc == 0) {
        if (!keep_alive)
            rc = lh_buf_puts(out, "Connection: close\r\n\r\n");
        else if (http_minor == 0)
            rc = lh_buf_puts(out, "Connection: keep-alive\r\n\r\n");
        else
            rc = lh_buf_puts(out, "\r\n");
    }
    return rc;
}

/* 0 when the headers ask for `Connection: close`. */
static int headers_keep_alive(const struct lh_http_header *headers, int keep_alive)
{
    for (const struct lh_http_header *h = headers; h && h->name; h++)
        if (header_is(h->name, "Connection") && h->value && strcasecmp(h->value, "close") == 0)
            keep_alive = 0;
    return keep_alive;
}

/* Builds and queues a response on c; req (may be NULL) is the request it
 * answers, observed before the bytes leave. Returns the bytes queued (>= 0)
 * or a negative code (the connection is then closed). */
static long conn_send(struct conn *c, struct lh_http_req *req, int status,
                      const struct lh_http_header *headers, const char *ctype, const void *body,
                      size_t len, int keep_alive, int head_only, int http_minor)
{
    struct lh_http_server *srv = c->srv;
    struct lh_buf out = LH_BUF_INIT;
    int no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
    if (status < 100 || status > 999)
        status = 500;
    keep_alive = headers_keep_alive(headers, keep_alive);
    int rc = put_head(http_date(srv), &out, status, headers, ctype, (long long)len, keep_alive,
                      http_minor, 0, NULL);
    if (rc == 0 && !head_only && !no_body && len > 0)
        rc = lh_buf_append(&out, body, len);
    if (rc != 0) {
        lh_buf_free(&out);
        conn_close(c);
        return LH_ENOMEM;
    }
    size_t n = out.len;
    count_status(srv, status);
    if (req)
        observe(req, status, n);
    c->state = CS_WRITING;
    c->close_after = !keep_alive;
    rc = conn_write(c, lh_buf_steal(&out), n);
    if (rc != 0)
        return rc;
    conn_timer(c, srv->cfg.write_timeout_ms);
    return (long)n;
}

/* A JSON error for a request that never reached a handler; then close. */
static void conn_fail(struct conn *c, int status, const char *code, const char *msg)
{
    if (c->closing)
        return;
    if (c->req && !c->req->dispatched) {
        req_free(c->req);
        c->req = NULL;
        c->refs--;
    }
    conn_read_stop(c);
    lh_buf_free(&c->pending);
    c->linger = 1;
    struct lh_buf b = LH_BUF_INIT;
    int rc = lh_buf_puts(&b, "{\"error\":{\"code\":");
    if (rc == 0)
        rc = lh_buf_json_str(&b, code, strlen(code));
    if (rc == 0)
        rc = lh_buf_puts(&b, ",\"message\":");
    if (rc == 0)
        rc = lh_buf_json_str(&b, msg, strlen(msg));
    if (rc == 0)
        rc = lh_buf_puts(&b, "}}");
    if (rc != 0) {
        lh_buf_free(&b);
        conn_close(c);
        return;
    }
    lh_debug("http: %s: %d %s", c->remote, status, msg);
    conn_send(c, NULL, status, NULL, "application/json", b.data, b.len, 0, 0, 1);
    lh_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* http-parser callbacks */

static int parse_error(struct conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int parse_error(struct conn *c, int status, const char *code, const char *fmt, ...)
{
    c->error_status = status;
    c->error_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error_msg, sizeof(c->error_msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    if (c->req)   /* cannot happen: the parser pauses after each message */
        return parse_error(c, 500, "internal", "request overlap");
    struct lh_http_req *req = calloc(1, sizeof(*req));
    if (!req)
        return parse_error(c, 503, "no_memory", "out of memory");
    req->conn = c;
    req->start_ns = uv_hrtime();
    c->refs++;
    c->req = req;
    if (c->state == CS_IDLE)
        conn_timer(c, c->srv->cfg.header_timeout_ms);
    /* From CS_NEW the header timer keeps running since the connect. */
    c->state = CS_HEADERS;
    return 0;
}

static int count_header_bytes(struct conn *c, size_t n)
{
    struct lh_http_req *req = c->req;
    req->header_bytes += n;
    if (req->header_bytes > c->srv->cfg.max_header_bytes)
        return parse_error(c, 431, "headers_too_large",
                           "request line and headers over %llu bytes",
                           (unsigned long long)c->srv->cfg.max_header_bytes);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (count_header_bytes(c, len))
        return -1;
    if (lh_buf_append(&c->req->text, at, len))
        return parse_error(c, 503, "no_memory", "out of memory");
    return 0;
}

/* Ends the string being collected (url, name or value) in req->text. */
static int text_end(struct lh_http_req *req) { return lh_buf_putc(&req->text, '\0'); }

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct lh_http_req *req = c->req;
    if (count_header_bytes(c, len))
        return -1;
    if (req->hdr_phase == 3)
        return 0;                    /* trailer of a chunked body: ignored */
    if (req->hdr_phase != 1) {       /* a new header begins */
        if (req->nhdrs >= (size_t)c->srv->cfg.max_headers)
            return parse_error(c, 431, "too_many_headers", "more than %lld headers",
                               (long long)c->srv->cfg.max_headers);
        if (req->nhdrs == req->cap) {
            size_t ncap = req->cap ? req->cap * 2 : 16;
            struct hdr *n = realloc(req->hdrs, ncap * sizeof(*n));
            if (!n)
                return parse_error(c, 503, "no_memory", "out of memory");
            req->hdrs = n;
            req->cap = ncap;
        }
        if (text_end(req))           /* ends the url or the previous value */
            return parse_error(c, 503, "no_memory", "out of memory");
        req->hdrs[req->nhdrs].name = req->text.len;
        req->hdrs[req->nhdrs].value = 0;
        req->nhdrs++;
        req->hdr_phase = 1;
    }
    if (lh_buf_append(&req->text, at, len))
        return parse_error(c, 503, "no_memory", "out of memory");
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct lh_http_req *req = c->req;
    if (count_header_bytes(c, len))
        return -1;
    if (req->hdr_phase == 3)
        return 0;
    if (req->hdr_phase == 1) {
        if (text_end(req))
            return parse_error(c, 503, "no_memory", "out of memory");
        req->hdrs[req->nhdrs - 1].value = req->text.len;
        req->hdr_phase = 2;
    }
    if (lh_buf_append(&req->text, at, len))
        return parse_error(c, 503, "no_memory", "out of memory");
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct lh_http_req *req = c->req;
    struct lh_http_server *srv = c->srv;

    /* Close the last string; a header whose value never came is empty. */
    if (req->hdr_phase == 1) {
        if (text_end(req))
            return parse_error(c, 503, "no_memory", "out of memory");
        req->hdrs[req->nhdrs - 1].value = req->text.len;
    }
    if (text_end(req))
        return parse_error(c, 503, "no_memory", "out of memory");
    req->hdr_phase = 3;
    req->method = (int)p->method;
    req->http_minor = p->http_minor;
    req->keep_alive = http_should_keep_alive(p);
    p->upgrade = 0;   /* no protocol switch here: keep parsing HTTP/1.1 */

    if (p->http_major != 1)
        return parse_error(c, 505, "bad_version", "only HTTP/1.x is supported");
    if (p->method == HTTP_CONNECT)
        return parse_error(c, 405, "method_not_allowed", "CONNECT is not supported");

    /* Path and query out of the url (origin form or absolute form), copied
     * behind the headers as NUL-terminated strings. */
    size_t url_len = strlen(req->text.data);
    size_t poff = 0, plen = 0, qoff = 0, qlen = 0;
    const char *fixed = "/";
    if (url_len == 1 && req->text.data[0] == '*') {
        fixed = "*";
    } else {
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(req->text.data, url_len, 0, &u) != 0)
            return parse_error(c, 400, "bad_request", "invalid request target");
        if (u.field_set & (1 << UF_PATH)) {
            poff = u.field_data[UF_PATH].off;
            plen = u.field_data[UF_PATH].len;
        }
        if (u.field_set & (1 << UF_QUERY)) {
            qoff = u.field_data[UF_QUERY].off;
            qlen = u.field_data[UF_QUERY].len;
        }
    }
    /* Reserve first: the copies come from the same buffer. */
    if (lh_buf_reserve(&req->text, plen + qlen + 4) != 0)
        return parse_error(c, 503, "no_memory", "out of memory");
    req->path_off = req->text.len;
    if (plen)
        lh_buf_append(&req->text, req->text.data + poff, plen);
    else
        lh_buf_puts(&req->text, fixed);
    text_end(req);
    req->query_off = req->text.len;
    lh_buf_append(&req->text, req->text.data + qoff, qlen);
    text_end(req);
    for (size_t i = 0; i < req->nhdrs; i++) {
        char *v = req->text.data + req->hdrs[i].value;
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        req->hdrs[i].n = req->text.data + req->hdrs[i].name;
        req->hdrs[i].v = v;
    }

    /* Body limits known up front. */
    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_len = (p->flags & F_CONTENTLENGTH) != 0;
    if (has_len && p->content_length > srv->cfg.max_body)
        return parse_error(c, 413, "body_too_large", "request body of %llu bytes is over %llu",
                           (unsigned long long)p->content_length,
                           (unsigned long long)srv->cfg.max_body);
    int has_body = chunked || (has_len && p->content_length > 0);
    if (has_body && has_len && p->content_length <= (uint64_t)1 << 30 &&
        lh_buf_reserve(&req->body, (size_t)p->content_length) != 0)
        return parse_error(c, 503, "no_memory", "out of memory");
    if (has_body && p->http_minor >= 1) {
        const char *expect = lh_http_req_header(req, "Expect");
        if (expect && strcasecmp(expect, "100-continue") == 0) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            char *m = malloc(sizeof(cont) - 1);
            if (!m)
                return parse_error(c, 503, "no_memory", "out of memory");
            memcpy(m, cont, sizeof(cont) - 1);
            if (conn_write(c, m, sizeof(cont) - 1) != 0)
                return -1;
        }
    }
    c->state = CS_BODY;
    c->body_last_ms = uv_now(srv->loop);
    conn_timer(c, srv->cfg.body_timeout_ms);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct lh_http_req *req = c->req;
    if (req->body.len + len > c->srv->cfg.max_body)
        return parse_error(c, 413, "body_too_large", "request body over %llu bytes",
                           (unsigned long long)c->srv->cfg.max_body);
    if (lh_buf_append(&req->body, at, len))
        return parse_error(c, 503, "no_memory", "out of memory");
    c->body_last_ms = uv_now(c->srv->loop);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->state = CS_HANDLER;
    uv_timer_stop(&c->timer);
    http_parser_pause(p, 1);   /* one request at a time: the rest waits */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------ */
/* routing */

static const struct route *find_route(struct lh_http_server *srv, const char *method,
                                      const char *path, int *path_matched)
{
    const struct route *best = NULL;
    size_t best_len = 0;
    int is_head = strcmp(method, "HEAD") == 0;
    *path_matched = 0;
    for (int pass = 0; pass < 2 && !best; pass++) {
        /* pass 0: the method itself; pass 1: GET routes for HEAD */
        const char *m = pass == 0 ? method : "GET";
        if (pass == 1 && !is_head)
            break;
        for (size_t i = 0; i < srv->nroutes; i++) {
            const struct route *r = &srv->routes[i];
            int match = r->prefix ? strncmp(path, r->path, r->path_len) == 0
                                  : strcmp(path, r->path) == 0;
            if (!match)
                continue;
            *path_matched = 1;
            if (r->method && strcmp(r->method, m) != 0)
                continue;
            /* exact beats any prefix; longer prefix beats shorter */
            size_t score = r->prefix ? r->path_len : (size_t)-1;
            if (!best || score > best_len) {
                best = r;
                best_len = score;
            }
        }
    }
    return best;
}

static void respond_not_routed(struct lh_http_req *req, int path_matched)
{
    struct lh_http_server *srv = req->conn->srv;
    const char *path = lh_http_req_path(req);
    if (!path_matched) {
        lh_http_respond_error(req, 404, NULL, "not_found", "no route for %s", path);
        return;
    }
    char allow[256];
    size_t n = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = &srv->routes[i];
        int match = r->prefix ? strncmp(path, r->path, r->path_len) == 0
                              : strcmp(path, r->path) == 0;
        if (!match || !r->method || strstr(allow, r->method))
            continue;
        int w = snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", r->method);
        if (w > 0 && (size_t)w < sizeof(allow) - n)
            n += (size_t)w;
    }
    struct lh_http_header h[] = { { "Allow", allow }, { NULL, NULL } };
    lh_http_respond_error(req, 405, h, "method_not_allowed", "%s is not allowed on %s",
                          lh_http_req_method(req), path);
}

static void conn_dispatch(struct conn *c)
{
    struct lh_http_req *req = c->req;
    struct lh_http_server *srv = c->srv;
    req->dispatched = 1;
    int matched = 0;
    const struct route *r = find_route(srv, lh_http_req_method(req), lh_http_req_path(req),
                                       &matched);
    if (!r) {
        respond_not_routed(req, matched);
        return;
    }
    r->fn(req, r->arg);
}

/* ------------------------------------------------------------------ */
/* input */

static void conn_parse(struct conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    if (c->closing)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        if (n < len && lh_buf_append(&c->pending, data + n, len - n) != 0) {
            conn_close(c);
            return;
        }
        if (c->pending.len > PENDING_MAX)
            conn_read_stop(c);
        conn_dispatch(c);
        return;
    }
    if (e != HPE_OK || n != len) {
        if (c->error_status) {
            conn_fail(c, c->error_status, c->error_code, c->error_msg);
        } else if (e == HPE_HEADER_OVERFLOW) {
            conn_fail(c, 431, "headers_too_large", "request headers too large");
        } else {
            char msg[160];
            snprintf(msg, sizeof(msg), "malformed request: %s", http_errno_description(e));
            conn_fail(c, 400, "bad_request", msg);
        }
    }
}

/* Plaintext from the client. */
static void conn_input(struct conn *c, const char *data, size_t len)
{
    if (c->closing || c->state == CS_LINGER || len == 0)
        return;
    if (c->state == CS_HANDLER || c->state == CS_WRITING || c->state == CS_STREAM) {
        /* The next (pipelined) request waits for this response. */
        if (lh_buf_append(&c->pending, data, len) != 0) {
            conn_close(c);
            return;
        }
        if (c->pending.len > PENDING_MAX)
            conn_read_stop(c);
        return;
    }
    conn_parse(c, data, len);
}

/* Parses what waited while the previous request was handled. */
static void conn_resume(struct conn *c)
{
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
        http_parser_pause(&c->parser, 0);
    if (c->pending.len) {
        struct lh_buf tmp = c->pending;
        c->pending = (struct lh_buf)LH_BUF_INIT;
        conn_parse(c, tmp.data, tmp.len);
        lh_buf_free(&tmp);
    }
    if (c->closing)
        return;
    if (c->eof) {
        if (c->state != CS_HANDLER && c->state != CS_WRITING && c->state != CS_LINGER &&
            c->state != CS_STREAM)
            conn_close(c);   /* nothing more can come */
        return;
    }
    if ((c->state != CS_HANDLER && c->state != CS_STREAM) || c->pending.len <= PENDING_MAX)
        conn_read_start(c);
}

static void conn_eof(struct conn *c)
{
    c->eof = 1;
    conn_read_stop(c);
    switch (c->state) {
    case CS_WRITING:
        return;   /* finish the response; conn_resume closes afterwards */
    case CS_LINGER:
        if (c->writes == 0)
            conn_close(c);
        return;
    case CS_HANDLER:
    case CS_STREAM:
        lh_debug("http: %s: client went away during its request", c->remote);
        conn_close(c);
        return;
    default:
        conn_close(c);
        return;
    }
}

static void tls_input(struct conn *c, const char *data, size_t len)
{
    struct lh_http_server *srv = c->srv;
    char why[512];
    if (BIO_write(c->rbio, data, (int)len) != (int)len) {
        conn_close(c);
        return;
    }
    ERR_clear_error();
    if (!c->tls_done) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                tls_flush(c);
                return;
            }
            STAT_ADD(srv->st.tls_failures, 1);
            lh_debug("http: %s: TLS handshake failed: %s", c->remote,
                     lh_tls_errors(why, sizeof(why)));
            /* Send the alert, then close. */
            c->state = CS_WRITING;
            c->close_after = 1;
            c->eof = 1;
            conn_read_stop(c);
            tls_flush(c);
            if (!c->closing && c->writes == 0)
                conn_close(c);
            else
                conn_timer(c, srv->cfg.write_timeout_ms);
            return;
        }
        c->tls_done = 1;
        if (lh_tls_peer_identity(c->ssl, &c->client_cn, &c->client_subject) != 0) {
            conn_close(c);
            return;
        }
        if (tls_flush(c) != 0)
            return;
    }
    for (;;) {
        int r = SSL_read(c->ssl, srv->pbuf, sizeof(srv->pbuf));
        if (r > 0) {
            conn_input(c, srv->pbuf, (size_t)r);
            if (c->closing)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {   /* close_notify */
            tls_flush(c);
            if (!c->closing)
                conn_eof(c);
            return;
        }
        lh_debug("http: %s: TLS read: %s", c->remote, lh_tls_errors(why, sizeof(why)));
        conn_close(c);
        return;
    }
    tls_flush(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            conn_eof(c);
        } else {
            lh_debug("http: %s: read: %s", c->remote, uv_strerror((int)nread));
            conn_close(c);
        }
        return;
    }
    STAT_ADD(c->srv->st.bytes_in, nread);
    if (c->state == CS_LINGER)
        return;   /* dropped */
    if (c->ssl)
        tls_input(c, buf->base, (size_t)nread);
    else
        conn_input(c, buf->base, (size_t)nread);
}

/* ------------------------------------------------------------------ */
/* accepting */

static void on_reject_closed(uv_handle_t *h) { free(h); }

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        snprintf(out, n, "unknown");
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct lh_http_server *srv = server->data;
    if (status < 0) {
        lh_warn("http: accept: %s", uv_strerror(status));
        return;
    }
    if (srv->draining)
        return;
    if (srv->nconns >= (size_t)srv->cfg.max_connections) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(srv->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            STAT_ADD(srv->st.conn_rejected, 1);
        lh_warn("http: connection refused: %zu connections open (max_connections)",
                srv->nconns);
        uv_close((uv_handle_t *)t, on_reject_closed);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        lh_warn("http: accept: out of memory");
        return;
    }
    pthread_mutex_init(&c->wlock, NULL);
    c->fd = -1;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->refs = 1;
    srv->refs++;
    /* Linked before anything can close it. */
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    STAT_ADD(srv->st.conn_open, 1);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    STAT_ADD(srv->st.conn_total, 1);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        c->fd = fd;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->remote, sizeof(c->remote));
    else
        snprintf(c->remote, sizeof(c->remote), "unknown");
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CS_NEW;
    if (srv->ssl_ctx) {
        c->ssl = SSL_new(srv->ssl_ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !c->rbio || !c->wbio) {
            if (!c->ssl) {
                BIO_free(c->rbio);
                BIO_free(c->wbio);
            } else if (c->rbio && c->wbio) {
                SSL_set_bio(c->ssl, c->rbio, c->wbio);
            } else {
                BIO_free(c->rbio);
                BIO_free(c->wbio);
            }
            ERR_clear_error();
            conn_close(c);
            return;
        }
        BIO_set_mem_eof_return(c->rbio, -1);   /* empty means "retry", not EOF */
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    conn_timer(c, srv->cfg.header_timeout_ms);
    conn_read_start(c);
    if (!c->reading)
        conn_close(c);
}

/* ------------------------------------------------------------------ */
/* server life cycle */

static void on_srv_handle_closed(uv_handle_t *h) { srv_unref(h->data); }

static void srv_check_drained(struct lh_http_server *srv)
{
    if (!srv->draining || srv->drained || srv->nconns > 0)
        return;
    srv->drained = 1;
    uv_close((uv_handle_t *)&srv->drain_timer, on_srv_handle_closed);
    void (*done)(void *) = srv->drain_done;
    srv->drain_done = NULL;
    if (done)
        done(srv->drain_arg);   /* the drain timer's reference keeps srv alive */
}

static void close_all(struct lh_http_server *srv)
{
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next;
        conn_close(c);
        c = next;
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct lh_http_server *srv = t->data;
    if (srv->nconns)
        lh_warn("http: drain timeout: closing %zu connection(s) still open", srv->nconns);
    close_all(srv);
}

void lh_http_server_shutdown(struct lh_http_server *srv, int64_t drain_timeout_ms,
                             void (*done)(void *arg), void *arg)
{
    if (srv->draining)
        return;
    __atomic_store_n(&srv->draining, 1, __ATOMIC_RELAXED);
    srv->drain_done = done;
    srv->drain_arg = arg;
    /* A worker writing a response now has seen the server running: its
     * response counts as sent before the drain; later ones see it. */
    for (struct conn *w = srv->conns; w; w = w->next) {
        if (w->req && w->req->deferred && w->req->direct_ok) {
            pthread_mutex_lock(&w->wlock);
            pthread_mutex_unlock(&w->wlock);
        }
    }
    if (srv->listening) {
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_handle_closed);
    }
    /* Idle connections go now; the others after their response. */
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next;
        if ((c->state == CS_NEW || c->state == CS_IDLE) && c->pending.len == 0)
            conn_close(c);
        c = next;
    }
    if (srv->nconns > 0) {
        if (drain_timeout_ms <= 0)
            close_all(srv);
        else
            uv_timer_start(&srv->drain_timer, on_drain_timeout, (uint64_t)drain_timeout_ms, 0);
    }
    srv_check_drained(srv);
}

void lh_http_server_destroy(struct lh_http_server *srv)
{
    if (!srv || srv->destroyed)
        return;
    srv->destroyed = 1;
    if (!srv->draining)
        lh_http_server_shutdown(srv, 0, NULL, NULL);
    srv->drain_done = NULL;
    close_all(srv);
    srv_unref(srv);   /* the owner's reference */
}

/* Splits "host:port", "[v6]:port", ":port" or "port". */
static int parse_listen(const char *s, char *host, size_t hn, char *port, size_t pn,
                        struct lh_err *err)
{
    const char *colon;
    if (!s || !*s)
        return lh_err_set(err, LH_EINVAL, "http: empty listen address");
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= hn)
            return lh_err_set(err, LH_EINVAL, "http: bad listen address %s (want [ipv6]:port)",
                              s);
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else if ((colon = strrchr(s, ':')) != NULL) {
        if (memchr(s, ':', (size_t)(colon - s)))
            return lh_err_set(err, LH_EINVAL,
                              "http: bad listen address %s (write IPv6 as [addr]:port)", s);
        if ((size_t)(colon - s) >= hn)
            return lh_err_set(err, LH_EINVAL, "http: listen host too long in %s", s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    } else {
        host[0] = '\0';
        colon = s - 1;
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pn || strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)
        return lh_err_set(err, LH_EINVAL, "http: bad port in listen address %s", s);
    snprintf(port, pn, "%s", p);
    if (!host[0])
        snprintf(host, hn, "0.0.0.0");
    return 0;
}

static int bind_listen(const char *listen_addr, int *fd_out, struct lh_err *err)
{
    char host[256], port[16];
    int rc = parse_listen(listen_addr, host, sizeof(host), port, sizeof(port), err);
    if (rc)
        return rc;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0)
        return lh_err_set(err, LH_EINVAL, "http: listen address %s: %s", listen_addr,
                          gai_strerror(g));
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
            break;
        last = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return lh_err_errno(err, LH_EIO, last, "http: listen on %s", listen_addr);
    *fd_out = fd;
    return 0;
}

int lh_http_server_create(uv_loop_t *loop, const struct lh_http_server_config *cfg,
                          struct lh_http_server **out, struct lh_err *err)
{
    if (cfg->max_headers < 0 || cfg->max_connections < 0 || cfg->header_timeout_ms < 0 ||
        cfg->body_timeout_ms < 0 || cfg->idle_timeout_ms < 0 || cfg->write_timeout_ms < 0)
        return lh_err_set(err, LH_EINVAL, "http: negative limit or timeout in listener config");
    SSL_CTX *ctx = NULL;
    if (cfg->tls.cert_file && cfg->tls.cert_file[0]) {
        int rc = lh_tls_server_ctx_create(&cfg->tls, &ctx, err);
        if (rc)
            return rc;
    } else if (cfg->tls.key_file || cfg->tls.client_ca_file ||
               cfg->tls.client_auth != LH_HTTP_CLIENT_AUTH_NONE) {
        return lh_err_set(err, LH_EINVAL, "http: tls settings given without tls.cert");
    }
    struct lh_http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        SSL_CTX_free(ctx);
        return lh_err_set(err, LH_ENOMEM, "http: out of memory");
    }
    int fd = -1;
    int rc = bind_listen(cfg->listen, &fd, err);
    if (rc) {
        SSL_CTX_free(ctx);
        free(srv);
        return rc;
    }
    srv->loop = loop;
    srv->ssl_ctx = ctx;
    srv->cfg.max_body = cfg->max_body ? cfg->max_body : DEF_MAX_BODY;
    srv->cfg.max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes
                                                      : DEF_MAX_HEADER_BYTES;
    if (srv->cfg.max_header_bytes > HARD_MAX_HEADER_BYTES)
        srv->cfg.max_header_bytes = HARD_MAX_HEADER_BYTES;
    srv->cfg.max_headers = def_i64(cfg->max_headers, DEF_MAX_HEADERS);
    srv->cfg.max_connections = def_i64(cfg->max_connections, DEF_MAX_CONNECTIONS);
    srv->cfg.header_timeout_ms = def_i64(cfg->header_timeout_ms, DEF_HEADER_TIMEOUT_MS);
    srv->cfg.body_timeout_ms = def_i64(cfg->body_timeout_ms, DEF_BODY_TIMEOUT_MS);
    srv->cfg.idle_timeout_ms = def_i64(cfg->idle_timeout_ms, DEF_IDLE_TIMEOUT_MS);
    srv->cfg.write_timeout_ms = def_i64(cfg->write_timeout_ms, DEF_WRITE_TIMEOUT_MS);

    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    uv_timer_init(loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    srv->refs = 3;   /* owner, listener, drain timer */
    srv->listening = 1;
    int urc = uv_tcp_open(&srv->listener, fd);
    if (urc != 0)
        close(fd);   /* not taken by the handle */
    else
        urc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (urc != 0) {
        lh_err_set(err, LH_EIO, "http: listen on %s: %s", cfg->listen, uv_strerror(urc));
        /* Handles need the loop to close: the memory goes when it runs. */
        srv->destroyed = 1;
        srv->draining = 1;
        srv->drained = 1;
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_handle_closed);
        uv_close((uv_handle_t *)&srv->drain_timer, on_srv_handle_closed);
        srv_unref(srv);
        return LH_EIO;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6
                              ? ((struct sockaddr_in6 *)&ss)->sin6_port
                              : ((struct sockaddr_in *)&ss)->sin_port);
    lh_info("http: listening on %s (port %d%s)", cfg->listen, srv->port,
            ctx ? ", TLS 1.3" : "");
    *out = srv;
    return 0;
}

int lh_http_server_port(const struct lh_http_server *srv) { return srv->port; }
uv_loop_t *lh_http_server_loop(const struct lh_http_server *srv) { return srv->loop; }

int lh_http_server_reload_tls(struct lh_http_server *srv, const struct lh_http_tls_config *tls,
                              struct lh_err *err)
{
    if (!srv->ssl_ctx)
        return lh_err_set(err, LH_EINVAL, "http: listener has no TLS; restart to enable it");
    SSL_CTX *ctx = NULL;
    int rc = lh_tls_server_ctx_create(tls, &ctx, err);
    if (rc)
        return rc;
    SSL_CTX_free(srv->ssl_ctx);   /* open connections hold their own reference */
    srv->ssl_ctx = ctx;
    lh_info("http: TLS certificate reloaded from %s", tls->cert_file);
    return 0;
}

static int add_route(struct lh_http_server *srv, const char *method, const char *path,
                     int prefix, lh_http_handler_fn fn, void *arg, struct lh_err *err)
{
    if (!path || !fn)
        return lh_err_set(err, LH_EINVAL, "http: route without path or handler");
    if (srv->nroutes == srv->cap_routes) {
        size_t ncap = srv->cap_routes ? srv->cap_routes * 2 : 16;
        struct route *n = realloc(srv->routes, ncap * sizeof(*n));
        if (!n)
            return lh_err_set(err, LH_ENOMEM, "http: out of memory");
        srv->routes = n;
        srv->cap_routes = ncap;
    }
    struct route *r = &srv->routes[srv->nroutes];
    r->method = method ? strdup(method) : NULL;
    r->path = strdup(path);
    if ((method && !r->method) || !r->path) {
        free(r->method);
        free(r->path);
        return lh_err_set(err, LH_ENOMEM, "http: out of memory");
    }
    r->path_len = strlen(path);
    r->prefix = prefix;
    r->fn = fn;
    r->arg = arg;
    srv->nroutes++;
    return 0;
}

int lh_http_server_route(struct lh_http_server *srv, const char *method, const char *path,
                         lh_http_handler_fn fn, void *arg, struct lh_err *err)
{
    return add_route(srv, method, path, 0, fn, arg, err);
}

int lh_http_server_route_prefix(struct lh_http_server *srv, const char *method,
                                const char *prefix, lh_http_handler_fn fn, void *arg,
                                struct lh_err *err)
{
    return add_route(srv, method, prefix, 1, fn, arg, err);
}

void lh_http_server_set_observer(struct lh_http_server *srv, lh_http_observer_fn fn, void *arg)
{
    srv->observer = fn;
    srv->observer_arg = arg;
}

/* ------------------------------------------------------------------ */
/* stats */

void lh_http_server_stats(const struct lh_http_server *srv, struct lh_http_stats *out)
{
    struct lh_http_server *s = (struct lh_http_server *)srv;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < 6; i++)
        out->requests[i] = STAT_GET(s->st.requests[i]);
    out->bytes_in = STAT_GET(s->st.bytes_in);
    out->bytes_out = STAT_GET(s->st.bytes_out);
    out->connections_total = STAT_GET(s->st.conn_total);
    out->connections_open = STAT_GET(s->st.conn_open);
    out->connections_rejected = STAT_GET(s->st.conn_rejected);
    out->tls_handshake_failures = STAT_GET(s->st.tls_failures);
    out->timeouts = STAT_GET(s->st.timeouts);
    uint64_t cum = 0;
    for (int i = 0; i <= LH_HTTP_LATENCY_BUCKETS; i++) {
        cum += STAT_GET(s->st.latency[i]);
        out->latency_bucket[i] = cum;
    }
    out->latency_sum = (double)STAT_GET(s->st.latency_sum_us) / 1e6;
}

int lh_http_server_render_stats(const struct lh_http_server *srv, struct lh_buf *out)
{
    struct lh_http_stats st;
    lh_http_server_stats(srv, &st);
    static const char *cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
    int rc = lh_buf_puts(out, "# HELP loghaul_http_requests_total HTTP requests answered, "
                              "by status class.\n"
                              "# TYPE loghaul_http_requests_total counter\n");
    for (int i = 1; rc == 0 && i <= 6; i++)
        rc = lh_buf_printf(out, "loghaul_http_requests_total{code=\"%s\"} %llu\n", cls[i % 6],
                           (unsigned long long)st.requests[i % 6]);
#define COUNTER(name, help, v)                                                         \
    if (rc == 0)                                                                       \
        rc = lh_buf_printf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name \
                                " %llu\n", (unsigned long long)(v))
    COUNTER("loghaul_http_received_bytes_total", "Bytes read from HTTP clients.", st.bytes_in);
    COUNTER("loghaul_http_sent_bytes_total", "Bytes written to HTTP clients.", st.bytes_out);
    COUNTER("loghaul_http_connections_total", "HTTP connections accepted.",
            st.connections_total);
    COUNTER("loghaul_http_connections_rejected_total",
            "HTTP connections closed at once because max_connections were open.",
            st.connections_rejected);
    COUNTER("loghaul_http_tls_handshake_failures_total", "Failed TLS handshakes.",
            st.tls_handshake_failures);
    COUNTER("loghaul_http_timeouts_total", "HTTP connections closed by a timeout.",
            st.timeouts);
#undef COUNTER
    if (rc == 0)
        rc = lh_buf_printf(out, "# HELP loghaul_http_connections_open Open HTTP connections.\n"
                                "# TYPE loghaul_http_connections_open gauge\n"
                                "loghaul_http_connections_open %llu\n",
                           (unsigned long long)st.connections_open);
    if (rc == 0)
        rc = lh_buf_puts(out, "# HELP loghaul_http_request_duration_seconds Time from the "
                              "first byte of a request to its response.\n"
                              "# TYPE loghaul_http_request_duration_seconds histogram\n");
    for (int i = 0; rc == 0 && i < LH_HTTP_LATENCY_BUCKETS; i++)
        rc = lh_buf_printf(out, "loghaul_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                           lh_http_latency_bounds[i], (unsigned long long)st.latency_bucket[i]);
    if (rc == 0)
        rc = lh_buf_printf(out,
                           "loghaul_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                           "loghaul_http_request_duration_seconds_sum %.6f\n"
                           "loghaul_http_request_duration_seconds_count %llu\n",
                           (unsigned long long)st.latency_bucket[LH_HTTP_LATENCY_BUCKETS],
                           st.latency_sum,
                           (unsigned long long)st.latency_bucket[LH_HTTP_LATENCY_BUCKETS]);
    return rc;
}

/* The latency histogram (any thread). */
static double observe_latency(struct lh_http_server *srv, const struct lh_http_req *req)
{
    double secs = (double)((req->done_ns ? req->done_ns : uv_hrtime()) - req->start_ns) / 1e9;
    int b = 0;
    while (b < LH_HTTP_LATENCY_BUCKETS && secs > lh_http_latency_bounds[b])
        b++;
    STAT_ADD(srv->st.latency[b], 1);
    STAT_ADD(srv->st.latency_sum_us, (uint64_t)(secs * 1e6));
    return secs;
}

static void observe(struct lh_http_req *req, int status, uint64_t bytes_out)
{
    struct lh_http_server *srv = req->conn->srv;
    double secs = req->counted ? (double)(req->done_ns - req->start_ns) / 1e9
                               : observe_latency(srv, req);
    if (srv->observer)
        srv->observer(srv->observer_arg, req, status, req->header_bytes + req->body.len,
                      bytes_out, secs);
}

/* ------------------------------------------------------------------ */
/* responding */

static int respond(struct lh_http_req *req, int status, const struct lh_http_header *headers,
                   const char *ctype, const void *body, size_t len)
{
    struct conn *c = req->conn;
    if (!req->dispatched || c->req != req || req->streaming || req->wresp) {
        lh_error("http: respond called for a request not with its handler (status %d)", status);
        return LH_EINVAL;
    }
    c->req = NULL;
    int rc;
    if (c->closing) {
        observe(req, status, 0);
        rc = LH_ECLOSED;
    } else {
        int keep = req->keep_alive && !c->srv->draining && !c->eof;
        long n = conn_send(c, req, status, headers, ctype, body, len, keep,
                           req->method == HTTP_HEAD, req->http_minor);
        rc = n < 0 ? (int)n : 0;
    }
    req_free(req);
    conn_unref(c);
    return rc;
}

int lh_http_respond(struct lh_http_req *req, int status, const struct lh_http_header *headers,
                    const void *body, size_t len)
{
    return respond(req, status, headers, NULL, body, len);
}

int lh_http_respond_json(struct lh_http_req *req, int status,
                         const struct lh_http_header *headers, const char *json, size_t len)
{
    return respond(req, status, headers, "application/json", json, len);
}

int lh_http_respond_error(struct lh_http_req *req, int status,
                          const struct lh_http_header *headers, const char *code,
                          const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct lh_buf b = LH_BUF_INIT;
    int rc = lh_buf_puts(&b, "{\"error\":{\"code\":");
    if (rc == 0)
        rc = lh_buf_json_str(&b, code, strlen(code));
    if (rc == 0)
        rc = lh_buf_puts(&b, ",\"message\":");
    if (rc == 0)
        rc = lh_buf_json_str(&b, msg, strlen(msg));
    if (rc == 0)
        rc = lh_buf_puts(&b, "}}");
    if (rc != 0) {
        lh_buf_free(&b);
        static const char oom[] = "{\"error\":{\"code\":\"no_memory\",\"message\":\"\"}}";
        return respond(req, 503, NULL, "application/json", oom, sizeof(oom) - 1);
    }
    rc = respond(req, status, headers, "application/json", b.data, b.len);
    lh_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ */
/* streamed responses */

#define STREAM_MAX_BUFFERED (1u << 20)

int lh_http_stream_begin(struct lh_http_req *req, int status,
                         const struct lh_http_header *headers, const char *content_type)
{
    struct conn *c = req->conn;
    if (!req->dispatched || c->req != req || req->streaming || req->deferred ||
        status < 200 || status > 999 || status == 204 || status == 304)
        return LH_EINVAL;
    req->streaming = 1;
    if (c->closing)
        return LH_ECLOSED;
    struct lh_http_server *srv = c->srv;
    req->stream_head = req->method == HTTP_HEAD;
    req->stream_chunked = req->http_minor >= 1;
    /* Without chunks, the end of the body is the end of the connection. */
    req->stream_keep = headers_keep_alive(headers, req->keep_alive && !srv->draining &&
                                                       !c->eof && req->stream_chunked);
    struct lh_buf out = LH_BUF_INIT;
    if (put_head(http_date(srv), &out, status, headers, content_type, -1, req->stream_keep,
                 req->http_minor, req->stream_chunked, NULL) != 0) {
        lh_buf_free(&out);
        conn_close(c);
        return LH_ENOMEM;
    }
    count_status(srv, status);
    req->stream_bytes = out.len;
    req->stream_status = status;
    c->state = CS_STREAM;
    size_t n = out.len;
    int rc = conn_write(c, lh_buf_steal(&out), n);
    if (rc != 0)
        return rc == LH_EIO ? LH_ECLOSED : rc;
    conn_timer(c, srv->cfg.write_timeout_ms);
    return 0;
}

int lh_http_stream_write(struct lh_http_req *req, const void *data, size_t len)
{
    struct conn *c = req->conn;
    if (!req->streaming || c->req != req)
        return LH_EINVAL;
    if (c->closing)
        return LH_ECLOSED;
    if (len == 0 || req->stream_head)
        return 0;
    if (c->write_bytes + len > STREAM_MAX_BUFFERED && c->write_bytes > 0)
        return LH_EFULL;
    char size[24];
    int sn = req->stream_chunked ? snprintf(size, sizeof(size), "%zx\r\n", len) : 0;
    size_t n = (size_t)sn + len + (req->stream_chunked ? 2 : 0);
    char *p = malloc(n);
    if (!p)
        return LH_ENOMEM;
    memcpy(p, size, (size_t)sn);
    memcpy(p + sn, data, len);
    if (req->stream_chunked)
        memcpy(p + sn + len, "\r\n", 2);
    int was_idle = c->writes == 0;
    int rc = conn_write(c, p, n);
    if (rc != 0)
        return rc == LH_EIO ? LH_ECLOSED : rc;
    req->stream_bytes += n;
    if (was_idle)
        conn_timer(c, c->srv->cfg.write_timeout_ms);
    return 0;
}

size_t lh_http_stream_buffered(const struct lh_http_req *req)
{
    return req->conn->closing ? 0 : req->conn->write_bytes;
}

int lh_http_stream_end(struct lh_http_req *req)
{
    struct conn *c = req->conn;
    if (!req->streaming || c->req != req)
        return LH_EINVAL;
    int status = req->stream_status, rc = 0;
    c->req = NULL;
    if (c->closing) {
        rc = LH_ECLOSED;
    } else {
        c->state = CS_WRITING;
        c->close_after = !req->stream_keep;
        if (req->stream_chunked && !req->stream_head) {
            static const char last[] = "0\r\n\r\n";
            char *p = malloc(sizeof(last) - 1);
            if (!p) {
                conn_close(c);
                rc = LH_ENOMEM;
            } else {
                memcpy(p, last, sizeof(last) - 1);
                req->stream_bytes += sizeof(last) - 1;
                rc = conn_write(c, p, sizeof(last) - 1);
            }
        }
        if (rc == 0) {
            if (c->writes == 0)
                conn_write_done(c);
            else
                conn_timer(c, c->srv->cfg.write_timeout_ms);
        }
    }
    observe(req, status, req->stream_bytes);
    req_free(req);
    conn_unref(c);
    return rc == LH_EIO ? LH_ECLOSED : rc;
}

static void defer_work(uv_work_t *w)
{
    struct defer *d = w->data;
    d->req->in_work = 1;
    d->fn(d->req, d->arg);
    d->req->in_work = 0;
}

/* Writes what it can of w to the socket, without blocking (worker thread,
 * under c->wlock). */
static void wresp_send(struct conn *c, struct wresp *w)
{
    struct iovec iov[WRESP_MAX_PARTS];
    while (w->sent < w->total) {
        size_t skip = w->sent, n = 0;
        for (size_t i = 0; i < w->nparts; i++) {
            if (skip >= w->len[i]) {
                skip -= w->len[i];
                continue;
            }
            iov[n].iov_base = w->base[i] + skip;
            iov[n].iov_len = w->len[i] - skip;
            skip = 0;
            n++;
        }
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
        ssize_t r = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            w->sent += (size_t)r;
            STAT_ADD(c->srv->st.bytes_out, r);
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                w->error = 1;
            break;
        }
    }
}

/* Loop thread, after done: what the worker answered goes out (the rest of
 * it, or all of it on TLS), then the connection goes on as after
 * lh_http_respond. */
static void wresp_finish(struct lh_http_req *req)
{
    struct conn *c = req->conn;
    struct lh_http_server *srv = c->srv;
    struct wresp *w = req->wresp;
    c->req = NULL;
    if (!c->closing && w->error) {
        lh_debug("http: %s: write failed", c->remote);
        conn_close(c);
    }
    if (!req->counted && (!c->closing || w->sent))
        count_status(srv, w->status);
    if (c->closing) {
        observe(req, w->status, w->sent);
    } else {
        int keep = w->keep && !srv->draining && !c->eof;
        if (!keep && w->keep && w->sent == 0) {
            /* The head said keep-alive: now it says close. */
            static const char close_hdr[] = "Connection: close\r\n\r\n";
            char *h = realloc(w->base[0], w->conn_off + sizeof(close_hdr));
            if (h) {
                memcpy(h + w->conn_off, close_hdr, sizeof(close_hdr));
                w->base[0] = h;
                w->total = w->total - w->len[0] + w->conn_off + sizeof(close_hdr) - 1;
                w->len[0] = w->conn_off + sizeof(close_hdr) - 1;
                w->keep = 0;
            }
        }
        observe(req, w->status, w->total);
        c->state = CS_WRITING;
        c->close_after = !keep;
        if (w->sent < w->total) {
            /* The parts not written yet, in order; they are taken. */
            char *base[WRESP_MAX_PARTS];
            size_t off[WRESP_MAX_PARTS], len[WRESP_MAX_PARTS], n = 0, skip = w->sent;
            for (size_t i = 0; i < w->nparts; i++) {
                if (skip >= w->len[i]) {
                    skip -= w->len[i];
                    continue;
                }
                base[n] = w->base[i];
                off[n] = skip;
                len[n] = w->len[i];
                w->base[i] = NULL;
                skip = 0;
                n++;
            }
            int rc = 0;
            if (c->ssl) {
                for (size_t i = 0; i < n; i++) {
                    if (rc == 0 && off[i] == 0)
                        rc = conn_write(c, base[i], len[i]);
                    else
                        free(base[i]);
                }
            } else {
                rc = raw_writev(c, base, off, len, n);
            }
            if (rc == 0)
                conn_timer(c, srv->cfg.write_timeout_ms);
        } else {
            conn_write_done(c);
        }
    }
    req_free(req);
    conn_unref(c);
}

static void defer_after(uv_work_t *w, int status)
{
    struct defer *d = w->data;
    struct lh_http_req *req = d->req;
    lh_http_done_fn done = d->done;
    void *arg = d->arg;
    free(d);
    req->deferred = 0;
    int answered = req->wresp != NULL;   /* then req outlives done */
    done(req, status == UV_ECANCELED || req->conn->closing ? LH_ECLOSED : 0, arg);
    if (answered)
        wresp_finish(req);
}

int lh_http_work_respond(struct lh_http_req *req, int status,
                         const struct lh_http_header *headers, const char *content_type,
                         struct lh_buf *body, size_t nbody)
{
    if (!req->in_work || req->wresp || nbody > LH_HTTP_WORK_MAX_PARTS)
        return LH_EINVAL;
    struct conn *c = req->conn;
    struct wresp *w = calloc(1, sizeof(*w));
    if (!w)
        return LH_ENOMEM;
    if (status < 100 || status > 999)
        status = 500;
    int no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
    size_t blen = 0;
    for (size_t i = 0; i < nbody; i++)
        blen += body[i].len;
    char date[40];
    format_date(time(NULL), date);
    struct lh_buf head = LH_BUF_INIT;
    pthread_mutex_lock(&c->wlock);
    int direct = req->direct_ok && !c->wclosed;
    int keep = headers_keep_alive(headers, req->keep_alive &&
                                               !__atomic_load_n(&c->srv->draining,
                                                                __ATOMIC_RELAXED));
    if (put_head(date, &head, status, headers, content_type, (long long)blen, keep,
                 req->http_minor, 0, &w->conn_off) != 0) {
        pthread_mutex_unlock(&c->wlock);
        lh_buf_free(&head);
        free(w);
        return LH_ENOMEM;
    }
    w->status = status;
    w->keep = keep;
    w->len[0] = head.len;
    w->base[0] = lh_buf_steal(&head);
    w->nparts = 1;
    w->total = w->len[0];
    for (size_t i = 0; i < nbody; i++) {
        if (body[i].len && !no_body && req->method != HTTP_HEAD) {
            w->len[w->nparts] = body[i].len;
            w->total += body[i].len;
            w->base[w->nparts++] = lh_buf_steal(&body[i]);
        } else {
            lh_buf_free(&body[i]);
        }
    }
    if (direct) {
        /* counted before the client can read it, as lh_http_respond does */
        req->done_ns = uv_hrtime();
        count_status(c->srv, status);
        observe_latency(c->srv, req);
        req->counted = 1;
        wresp_send(c, w);
    }
    pthread_mutex_unlock(&c->wlock);
    req->wresp = w;
    return 0;
}

int lh_http_defer(struct lh_http_req *req, lh_http_work_fn work, lh_http_done_fn done,
                  void *arg)
{
    if (!req->dispatched || req->deferred || !work || !done)
        return LH_EINVAL;
    struct defer *d = calloc(1, sizeof(*d));
    if (!d)
        return LH_ENOMEM;
    d->work.data = d;
    d->req = req;
    d->fn = work;
    d->done = done;
    d->arg = arg;
    struct conn *c = req->conn;
    req->direct_ok = !c->ssl && !c->closing && c->writes == 0 && c->fd >= 0;
    int rc = uv_queue_work(c->srv->loop, &d->work, defer_work, defer_after);
    if (rc != 0) {
        free(d);
        return LH_ERR;
    }
    req->deferred = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* request accessors */

const char *lh_http_req_method(const struct lh_http_req *req)
{
    return http_method_str((enum http_method)req->method);
}

const char *lh_http_req_path(const struct lh_http_req *req)
{
    return req->text.data + req->path_off;
}

const char *lh_http_req_query(const struct lh_http_req *req)
{
    return req->text.data + req->query_off;
}

const char *lh_http_req_url(const struct lh_http_req *req) { return req->text.data; }
int lh_http_req_version_minor(const struct lh_http_req *req) { return req->http_minor; }

const char *lh_http_req_header(const struct lh_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nhdrs; i++)
        if (strcasecmp(req->hdrs[i].n, name) == 0)
            return req->hdrs[i].v;
    return NULL;
}

size_t lh_http_req_header_count(const struct lh_http_req *req) { return req->nhdrs; }

int lh_http_req_header_at(const struct lh_http_req *req, size_t i, const char **name,
                          const char **value)
{
    if (i >= req->nhdrs)
        return -1;
    *name = req->hdrs[i].n;
    *value = req->hdrs[i].v;
    return 0;
}

const char *lh_http_req_body(const struct lh_http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

void lh_http_req_take_body(struct lh_http_req *req, struct lh_buf *out)
{
    lh_buf_free(out);
    *out = req->body;
    req->body = (struct lh_buf)LH_BUF_INIT;
}

const char *lh_http_req_remote(const struct lh_http_req *req) { return req->conn->remote; }
const char *lh_http_req_client_cn(const struct lh_http_req *req) { return req->conn->client_cn; }

const char *lh_http_req_client_subject(const struct lh_http_req *req)
{
    return req->conn->client_subject;
}

int lh_http_req_is_tls(const struct lh_http_req *req) { return req->conn->ssl != NULL; }
int lh_http_req_closed(const struct lh_http_req *req) { return req->conn->closing; }

struct lh_http_server *lh_http_req_server(const struct lh_http_req *req)
{
    return req->conn->srv;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Appends the form-decoded s[0..n) to out. */
static int form_decode(const char *s, size_t n, struct lh_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
                   hexval((unsigned char)s[i + 2]) >= 0) {
            ch = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        }
        if (lh_buf_putc(out, ch))
            return LH_ENOMEM;
    }
    return 0;
}

int lh_http_query_get(const char *query, const char *name, struct lh_buf *out)
{
    if (!query)
        return LH_ENOTFOUND;
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        struct lh_buf key = LH_BUF_INIT;
        if (form_decode(p, klen, &key)) {
            lh_buf_free(&key);
            return LH_ENOMEM;
        }
        int match = key.data && strcmp(key.data, name) == 0;
        if (!key.data && !name[0])
            match = 1;
        lh_buf_free(&key);
        if (match) {
            if (eq && form_decode(eq + 1, plen - klen - 1, out))
                return LH_ENOMEM;
            if (!eq && lh_buf_append(out, "", 0))
                return LH_ENOMEM;
            return 0;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return LH_ENOTFOUND;
}

/* ------------------------------------------------------------------ */
/* admin routes */

static void h_healthz(struct lh_http_req *req, void *arg)
{
    (void)arg;
    lh_http_respond(req, 200, NULL, "ok\n", 3);
}

static void h_readyz(struct lh_http_req *req, void *arg)
{
    struct lh_http_server *srv = arg;
    struct lh_buf reason = LH_BUF_INIT;
    int rc = srv->admin.ready ? srv->admin.ready(srv->admin.arg, &reason) : 0;
    if (rc == 0 && !srv->draining) {
        lh_http_respond(req, 200, NULL, "ready\n", 6);
    } else {
        struct lh_buf b = LH_BUF_INIT;
        const char *why = srv->draining ? "shutting down"
                                        : (reason.len ? reason.data : "not ready");
        if (lh_buf_printf(&b, "not ready: %s\n", why) != 0)
            lh_http_respond(req, 503, NULL, "not ready\n", 10);
        else
            lh_http_respond(req, 503, NULL, b.data, b.len);
        lh_buf_free(&b);
    }
    lh_buf_free(&reason);
}

static void h_metrics(struct lh_http_req *req, void *arg)
{
    struct lh_http_server *srv = arg;
    struct lh_buf out = LH_BUF_INIT;
    int rc = srv->admin.render_metrics ? srv->admin.render_metrics(srv->admin.arg, &out) : 0;
    if (rc == 0)
        rc = lh_http_server_render_stats(srv, &out);
    if (rc != 0) {
        /* only memory runs out here: a passing condition, as every 503 says */
        struct lh_http_header h[] = { { "Retry-After", "1" }, { NULL, NULL } };
        lh_buf_free(&out);
        lh_http_respond_error(req, 503, h, "no_memory", "rendering metrics failed: %s",
                              lh_errcode_name(rc));
        return;
    }
    respond(req, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    lh_buf_free(&out);
}

int lh_http_server_add_admin_routes(struct lh_http_server *srv, const struct lh_http_admin *a,
                                    struct lh_err *err)
{
    if (a)
        srv->admin = *a;
    int rc = lh_http_server_route(srv, "GET", "/healthz", h_healthz, srv, err);
    if (rc == 0)
        rc = lh_http_server_route(srv, "GET", "/readyz", h_readyz, srv, err);
    if (rc == 0)
        rc = lh_http_server_route(srv, "GET", "/metrics", h_metrics, srv, err);
    return rc;
}
