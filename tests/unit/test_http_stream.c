/* Unit tests for the streamed responses of http_server.c (lh_http_stream_*):
 * chunked and HTTP/1.0 bodies, keep-alive after a stream, HEAD, a client
 * that goes away, backpressure (LH_EFULL), the write timeout, TLS. */
#include "../lh_test.h"
#include "http_test_util.h"
#include "lh/http.h"
#undef lh_error
#include "lh/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the loop thread reports to the test thread. */
static int g_end_rc = 1;           /* lh_http_stream_end's result; 1: not ended */
static int g_full;                 /* writes refused with LH_EFULL */
static int g_respond_rc = 1;       /* lh_http_respond after begin */
static int g_write_nostream = 1;   /* lh_http_stream_write without begin */
static size_t g_buffered;          /* lh_http_stream_buffered at the first EFULL */

static void set_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static int get_int(int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

static int wait_int_not(int *p, int v, int timeout_ms)
{
    double end = ht_now() + timeout_ms / 1000.0;
    while (get_int(p) == v && ht_now() < end)
        ht_sleep_ms(5);
    return get_int(p) != v;
}

/* One stream: a timer writes the pieces, then ends it. */
struct stream {
    uv_timer_t timer;
    struct lh_http_req *req;
    int mode;        /* 0: three words; 1: until the client is gone; 2: fill until EFULL */
    int step;
};

static void on_stream_closed(uv_handle_t *h) { free(h->data); }

static void stream_finish(struct stream *s)
{
    set_int(&g_end_rc, lh_http_stream_end(s->req));
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_stream_closed);
}

static void on_tick(uv_timer_t *t)
{
    struct stream *s = t->data;
    static const char *const words[] = { "one", "two", "three" };
    switch (s->mode) {
    case 0:
        if (s->step == 3) {
            stream_finish(s);
            return;
        }
        lh_http_stream_write(s->req, words[s->step], strlen(words[s->step]));
        s->step++;
        return;
    case 1:
        if (lh_http_req_closed(s->req) || lh_http_stream_write(s->req, "tick\n", 5) < 0)
            stream_finish(s);
        return;
    default: {
        /* 64 KiB pieces in one go: the loop cannot send any of them meanwhile. */
        static char piece[65536];
        memset(piece, 'x', sizeof(piece));
        for (int i = 0; i < 64; i++) {
            int rc = lh_http_stream_write(s->req, piece, sizeof(piece));
            if (rc == LH_EFULL) {
                if (get_int(&g_full) == 0)
                    g_buffered = lh_http_stream_buffered(s->req);
                set_int(&g_full, get_int(&g_full) + 1);
                break;
            }
            if (rc < 0) {
                stream_finish(s);
                return;
            }
        }
        return;
    }
    }
}

static void h_stream(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf mode = LH_BUF_INIT;
    lh_http_query_get(lh_http_req_query(req), "mode", &mode);
    struct stream *s = calloc(1, sizeof(*s));
    s->req = req;
    s->mode = mode.data ? atoi(mode.data) : 0;
    lh_buf_free(&mode);
    struct lh_http_header h[] = { { "Cache-Control", "no-cache" }, { NULL, NULL } };
    int rc = lh_http_stream_begin(req, 200, h, "text/event-stream");
    set_int(&g_respond_rc, lh_http_respond(req, 500, NULL, "no", 2));
    if (rc == LH_EINVAL) {
        free(s);
        return;
    }
    uv_timer_init(lh_http_server_loop(lh_http_req_server(req)), &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, 10, s->mode == 2 ? 50 : 10);
}

static void h_plain(struct lh_http_req *req, void *arg)
{
    (void)arg;
    set_int(&g_write_nostream, lh_http_stream_write(req, "x", 1));
    lh_http_respond(req, 200, NULL, "plain", 5);
}

static void setup(struct lh_http_server *srv, void *arg)
{
    (void)arg;
    lh_http_server_route(srv, NULL, "/stream", h_stream, NULL, NULL);
    lh_http_server_route(srv, "GET", "/plain", h_plain, NULL, NULL);
}

static int start(struct ht_server *ts, struct lh_http_server_config *cfg)
{
    g_end_rc = 1;
    g_full = 0;
    g_respond_rc = 1;
    g_write_nostream = 1;
    int rc = ht_start(ts, cfg, setup, NULL);
    lh_log_set_level(LH_LOG_OFF);   /* the refused respond call logs an error */
    return rc;
}

/* --- a client that reads chunked bodies --- */

static int more(struct ht_conn *c)
{
    char buf[16384];
    ssize_t n;
    if (c->ssl) {
        n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
    } else {
        do
            n = recv(c->fd, buf, sizeof(buf), 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
    }
    return lh_buf_append(&c->in, buf, (size_t)n) == 0 ? (int)n : -1;
}

static void consume(struct lh_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

/* Reads the status line and headers into head; returns the status or -1. */
static int read_head(struct ht_conn *c, struct ht_resp *r)
{
    memset(r, 0, sizeof(*r));
    char *end;
    while (!(end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL))
        if (more(c) < 0)
            return -1;
    size_t hlen = (size_t)(end - c->in.data) + 4;
    lh_buf_append(&r->head, c->in.data, hlen);
    consume(&c->in, hlen);
    if (sscanf(r->head.data, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    return r->status;
}

/* Decodes a chunked body into r->body, one chunk per element of sizes[]
 * (up to max); returns the number of chunks before the last one, or -1. */
static int read_chunks(struct ht_conn *c, struct ht_resp *r, size_t *sizes, int max)
{
    int n = 0;
    for (;;) {
        char *eol;
        while (!(eol = c->in.data ? strstr(c->in.data, "\r\n") : NULL))
            if (more(c) < 0)
                return -1;
        size_t len = strtoul(c->in.data, NULL, 16);
        consume(&c->in, (size_t)(eol - c->in.data) + 2);
        while (c->in.len < len + 2)
            if (more(c) < 0)
                return -1;
        if (memcmp(c->in.data + len, "\r\n", 2) != 0)
            return -1;
        if (len == 0) {
            consume(&c->in, 2);
            return n;
        }
        lh_buf_append(&r->body, c->in.data, len);
        if (n < max)
            sizes[n] = len;
        n++;
        consume(&c->in, len + 2);
    }
}

static int has_header(const struct ht_resp *r, const char *name, const char *value)
{
    char v[128];
    const char *got = ht_header(r, name, v, sizeof(v));
    return value ? got && strcmp(got, value) == 0 : got != NULL;
}

/* --- tests --- */

TEST(http_stream_chunked_then_keepalive)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r;
    REQUIRE_INT(read_head(&c, &r), ==, 200);
    CHECK(has_header(&r, "Transfer-Encoding", "chunked"));
    CHECK(has_header(&r, "Content-Type", "text/event-stream"));
    CHECK(has_header(&r, "Cache-Control", "no-cache"));
    CHECK(!has_header(&r, "Content-Length", NULL));
    CHECK(!has_header(&r, "Connection", NULL));
    size_t sizes[8];
    CHECK_INT(read_chunks(&c, &r, sizes, 8), ==, 3);
    CHECK_STR(r.body.data, "onetwothree");
    CHECK_INT(sizes[0], ==, 3);
    CHECK_INT(sizes[2], ==, 5);
    ht_resp_free(&r);
    CHECK(wait_int_not(&g_end_rc, 1, 2000));
    CHECK_INT(get_int(&g_end_rc), ==, 0);
    CHECK_INT(get_int(&g_respond_rc), ==, LH_EINVAL);   /* respond after begin: refused */

    /* The same connection serves the next request. */
    REQUIRE(ht_sends(&c, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "plain");
    CHECK_INT(get_int(&g_write_nostream), ==, LH_EINVAL);
    ht_resp_free(&r);
    ht_close(&c);

    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK_INT(st.requests[2], ==, 2);
    CHECK_INT(ht_stop(&ts), ==, 0);
}

TEST(http_stream_pipelined_request_waits_for_the_stream)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r;
    REQUIRE_INT(read_head(&c, &r), ==, 200);
    size_t sizes[8];
    CHECK_INT(read_chunks(&c, &r, sizes, 8), ==, 3);
    CHECK_STR(r.body.data, "onetwothree");
    ht_resp_free(&r);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "plain");
    ht_resp_free(&r);
    ht_close(&c);
    CHECK_INT(ht_stop(&ts), ==, 0);
}

TEST(http_stream_http10_body_until_close)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    struct ht_resp r;
    REQUIRE_INT(read_head(&c, &r), ==, 200);
    CHECK(!has_header(&r, "Transfer-Encoding", NULL));
    CHECK(has_header(&r, "Connection", "close"));
    while (more(&c) > 0)
        ;
    CHECK_STR(c.in.data, "onetwothree");     /* then EOF */
    ht_resp_free(&r);
    ht_close(&c);
    CHECK(wait_int_not(&g_end_rc, 1, 2000));
    CHECK_INT(get_int(&g_end_rc), ==, 0);
    CHECK_INT(ht_stop(&ts), ==, 0);
}

TEST(http_stream_head_sends_headers_only)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r;
    REQUIRE_INT(read_head(&c, &r), ==, 200);
    CHECK(has_header(&r, "Transfer-Encoding", "chunked"));
    ht_resp_free(&r);
    CHECK(wait_int_not(&g_end_rc, 1, 2000));
    /* No body came: the next response follows the headers directly. */
    REQUIRE(ht_sends(&c, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "plain");
    ht_resp_free(&r);
    ht_close(&c);
    CHECK_INT(ht_stop(&ts), ==, 0);
}

TEST(http_stream_client_gone_is_seen)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /stream?mode=1 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r;
    REQUIRE_INT(read_head(&c, &r), ==, 200);
    while (!c.in.data || !strstr(strstr(c.in.data, "tick") ? strstr(c.in.data, "tick") + 4 : "",
                                 "tick"))   /* a few pieces arrive */
        REQUIRE(more(&c) > 0);
    ht_resp_free(&r);
    double t0 = ht_now();
    ht_close(&c);
    CHECK(wait_int_not(&g_end_rc, 1, 2000));
    CHECK_INT(get_int(&g_end_rc), ==, LH_ECLOSED);
    CHECK(ht_now() - t0 < 1.0);
    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK_INT(st.connections_open, ==, 0);
    CHECK_INT(ht_stop(&ts), ==, 0);
}

TEST(http_stream_backpressure_then_write_timeout)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .write_timeout_ms = 300 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    memset(&c, 0, sizeof(c));
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(c.fd >= 0);
    int small = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ts.port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(c.fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    REQUIRE(ht_sends(&c, "GET /stream?mode=2 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    /* The client never reads: writes are refused past 1 MiB waiting, and
     * once nothing moves for write_timeout the connection is closed. */
    CHECK(wait_int_not(&g_end_rc, 1, 5000));
    CHECK_INT(get_int(&g_end_rc), ==, LH_ECLOSED);
    CHECK_INT(get_int(&g_full), >=, 1);
    CHECK_INT(g_buffered, >=, 1u << 19);
    CHECK_INT(g_buffered, <=, (1u << 20) + 65536);
    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK_INT(st.timeouts, ==, 1);
    ht_close(&c);
    CHECK_INT(ht_stop(&ts), ==, 0);
}

TEST(http_stream_over_tls)
{
    const char *dir = lh_test_tmpdir();
    REQUIRE(ht_make_certs(dir) == 0);
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    struct ht_server ts;
    struct lh_http_server_config cfg = { .tls = { .cert_file = cert, .key_file = key } };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect_tls(&c, ts.port, ca, NULL, NULL, 0) == 0);
    REQUIRE(ht_sends(&c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r;
    REQUIRE_INT(read_head(&c, &r), ==, 200);
    size_t sizes[8];
    CHECK_INT(read_chunks(&c, &r, sizes, 8), ==, 3);
    CHECK_STR(r.body.data, "onetwothree");
    ht_resp_free(&r);
    REQUIRE(ht_sends(&c, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "plain");
    ht_resp_free(&r);
    ht_close(&c);
    CHECK_INT(ht_stop(&ts), ==, 0);
}
