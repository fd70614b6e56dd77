/* Unit tests for http_server.c: a server on 127.0.0.1:0 in a thread,
 * driven with raw sockets and OpenSSL clients. */
#include "../lh_test.h"
#include "http_test_util.h"
#include "lh/http.h"
#undef lh_error
#include "lh/log.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* State shared between the loop thread and the test thread. */
static int g_done_status = 1;     /* status given to slow_done; 1: not called */
static int g_respond_rc = 1;      /* what lh_http_respond returned there */
static int g_not_ready;
static int g_observed;

static void set_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static int get_int(int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

static int wait_int_not(int *p, int v, int timeout_ms)
{
    double end = ht_now() + timeout_ms / 1000.0;
    while (get_int(p) == v && ht_now() < end)
        ht_sleep_ms(5);
    return get_int(p) != v;
}

/* --- handlers --- */

static void h_hello(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf b = LH_BUF_INIT;
    const char *x = lh_http_req_header(req, "x-test");
    lh_buf_printf(&b, "method=%s path=%s query=%s x=%s", lh_http_req_method(req),
                  lh_http_req_path(req), lh_http_req_query(req), x ? x : "-");
    struct lh_http_header h[] = { { "X-Reply", "yes" }, { NULL, NULL } };
    lh_http_respond(req, 200, h, b.data, b.len);
    lh_buf_free(&b);
}

static void h_echo(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf body = LH_BUF_INIT;
    lh_http_req_take_body(req, &body);
    lh_http_respond(req, 200, NULL, body.data ? body.data : "", body.len);
    lh_buf_free(&body);
}

static void h_fast(struct lh_http_req *req, void *arg)
{
    (void)arg;
    lh_http_respond(req, 200, NULL, "fast", 4);
}

static void slow_work(struct lh_http_req *req, void *arg)
{
    (void)req;
    ht_sleep_ms((int)(intptr_t)arg);
}

static void slow_done(struct lh_http_req *req, int status, void *arg)
{
    (void)arg;
    int rc = lh_http_respond(req, 200, NULL, "slow", 4);
    set_int(&g_respond_rc, rc);
    set_int(&g_done_status, status);
}

static void h_slow(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf v = LH_BUF_INIT;
    int ms = 100;
    if (lh_http_query_get(lh_http_req_query(req), "ms", &v) == 0)
        ms = atoi(v.data);
    lh_buf_free(&v);
    if (lh_http_defer(req, slow_work, slow_done, (void *)(intptr_t)ms) != 0)
        lh_http_respond_error(req, 500, NULL, "defer", "cannot defer");
}

static void h_cn(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf b = LH_BUF_INIT;
    const char *cn = lh_http_req_client_cn(req), *subj = lh_http_req_client_subject(req);
    lh_buf_printf(&b, "cn=%s subject=%s tls=%d", cn ? cn : "-", subj ? subj : "-",
                  lh_http_req_is_tls(req));
    lh_http_respond(req, 200, NULL, b.data, b.len);
    lh_buf_free(&b);
}

static void h_prefix(struct lh_http_req *req, void *arg)
{
    struct lh_buf b = LH_BUF_INIT;
    lh_buf_printf(&b, "%s:%s", (const char *)arg, lh_http_req_path(req));
    lh_http_respond(req, 200, NULL, b.data, b.len);
    lh_buf_free(&b);
}

static void h_big(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf v = LH_BUF_INIT;
    size_t n = 1000;
    if (lh_http_query_get(lh_http_req_query(req), "n", &v) == 0)
        n = (size_t)strtoull(v.data, NULL, 10);
    lh_buf_free(&v);
    char *p = malloc(n);
    if (!p) {
        lh_http_respond_error(req, 500, NULL, "no_memory", "out of memory");
        return;
    }
    memset(p, 'z', n);
    lh_http_respond(req, 200, NULL, p, n);
    free(p);
}

static int ready_cb(void *arg, struct lh_buf *reason)
{
    (void)arg;
    if (get_int(&g_not_ready)) {
        lh_buf_puts(reason, "bus down");
        return -1;
    }
    return 0;
}

static int render_cb(void *arg, struct lh_buf *out)
{
    (void)arg;
    return lh_buf_puts(out, "# TYPE my_metric gauge\nmy_metric 42\n");
}

static void observer(void *arg, const struct lh_http_req *req, int status, uint64_t in,
                     uint64_t out, double secs)
{
    (void)arg;
    (void)req;
    (void)in;
    (void)secs;
    if (status == 200 && out > 0)
        __atomic_fetch_add(&g_observed, 1, __ATOMIC_SEQ_CST);
}

static void setup_routes(struct lh_http_server *srv, void *arg)
{
    (void)arg;
    struct lh_http_admin admin = { .ready = ready_cb, .render_metrics = render_cb };
    lh_http_server_route(srv, "GET", "/hello", h_hello, NULL, NULL);
    lh_http_server_route(srv, "POST", "/echo", h_echo, NULL, NULL);
    lh_http_server_route(srv, "GET", "/fast", h_fast, NULL, NULL);
    lh_http_server_route(srv, "GET", "/slow", h_slow, NULL, NULL);
    lh_http_server_route(srv, "GET", "/big", h_big, NULL, NULL);
    lh_http_server_route(srv, NULL, "/cn", h_cn, NULL, NULL);
    lh_http_server_route_prefix(srv, "GET", "/p/", h_prefix, "short", NULL);
    lh_http_server_route_prefix(srv, "GET", "/p/long/", h_prefix, "long", NULL);
    lh_http_server_route(srv, "GET", "/p/exact", h_prefix, "exact", NULL);
    lh_http_server_add_admin_routes(srv, &admin, NULL);
    lh_http_server_set_observer(srv, observer, NULL);
}

static int start(struct ht_server *ts, struct lh_http_server_config *cfg)
{
    return ht_start(ts, cfg, setup_routes, NULL);
}

/* Ends a test: the server stops cleanly and nothing leaked. */
static void finish(struct ht_server *ts)
{
    CHECK_INT(ht_stop(ts), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}

/* --- tests --- */

TEST(http_get_and_post)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    REQUIRE(ts.port > 0);
    struct ht_resp r;
    char v[128];
    CHECK_INT(ht_request(ts.port, "GET /hello?a=1&b=two HTTP/1.1\r\nHost: t\r\n"
                                  "X-TEST: Value  \r\n\r\n", &r), ==, 200);
    CHECK_STR(r.body.data, "method=GET path=/hello query=a=1&b=two x=Value");
    CHECK_STR(ht_header(&r, "x-reply", v, sizeof(v)), "yes");
    CHECK_STR(ht_header(&r, "Server", v, sizeof(v)), "loghaul");
    CHECK(ht_header(&r, "Date", v, sizeof(v)) && strstr(v, "GMT"));
    snprintf(v + 64, 64, "%zu", strlen("method=GET path=/hello query=a=1&b=two x=Value"));
    CHECK_STR(ht_header(&r, "Content-Length", v, 64), v + 64);
    ht_resp_free(&r);

    CHECK_INT(ht_request(ts.port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n"
                                  "hello world", &r), ==, 200);
    CHECK_STR(r.body.data, "hello world");
    ht_resp_free(&r);

    /* absolute-form target */
    CHECK_INT(ht_request(ts.port, "GET http://t/hello?q HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==,
              200);
    CHECK_STR(r.body.data, "method=GET path=/hello query=q x=-");
    ht_resp_free(&r);
    finish(&ts);
}

TEST(http_routing_404_405_head_prefix)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_resp r;
    char v[128];
    CHECK_INT(ht_request(ts.port, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 404);
    CHECK_CONTAINS(r.body.data, "{\"error\":{\"code\":\"not_found\",\"message\":");
    CHECK_STR(ht_header(&r, "Content-Type", v, sizeof(v)), "application/json");
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 405);
    CHECK_STR(ht_header(&r, "Allow", v, sizeof(v)), "GET");
    ht_resp_free(&r);
    /* HEAD uses the GET route: same length, no body */
    CHECK_INT(ht_request(ts.port, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    snprintf(v + 64, 64, "%zu", strlen("method=HEAD path=/hello query= x=-"));
    CHECK_STR(ht_header(&r, "Content-Length", v, 64), v + 64);
    CHECK_INT(r.body.len, ==, 0);
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "GET /p/x/y HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    CHECK_STR(r.body.data, "short:/p/x/y");
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "GET /p/long/z HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    CHECK_STR(r.body.data, "long:/p/long/z");
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "GET /p/exact HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    CHECK_STR(r.body.data, "exact:/p/exact");
    ht_resp_free(&r);
    finish(&ts);
}

TEST(http_keepalive_several_requests)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    for (int i = 0; i < 5; i++) {
        char req[128], want[64];
        snprintf(req, sizeof(req), "GET /hello?i=%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        snprintf(want, sizeof(want), "query=i=%d", i);
        REQUIRE(ht_sends(&c, req) == 0);
        struct ht_resp r;
        CHECK_INT(ht_read(&c, &r, 0), ==, 200);
        CHECK_CONTAINS(r.body.data, want);
        char v[64];
        CHECK(ht_header(&r, "Connection", v, sizeof(v)) == NULL);
        ht_resp_free(&r);
    }
    ht_close(&c);
    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK_INT(st.connections_total, ==, 1);
    CHECK_INT(st.requests[2], ==, 5);
    CHECK_INT(st.latency_bucket[LH_HTTP_LATENCY_BUCKETS], ==, 5);
    CHECK(st.bytes_in > 0 && st.bytes_out > 0);
    CHECK_INT(get_int(&g_observed), ==, 5);
    finish(&ts);
}

TEST(http_pipelined_requests_answered_in_order)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    /* The first is slow (thread pool), the second instant: order must hold. */
    REQUIRE(ht_sends(&c, "GET /slow?ms=150 HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
                         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc") == 0);
    struct ht_resp r1, r2, r3;
    CHECK_INT(ht_read(&c, &r1, 0), ==, 200);
    CHECK_INT(ht_read(&c, &r2, 0), ==, 200);
    CHECK_INT(ht_read(&c, &r3, 0), ==, 200);
    CHECK_STR(r1.body.data, "slow");
    CHECK_STR(r2.body.data, "fast");
    CHECK_STR(r3.body.data, "abc");
    ht_resp_free(&r1);
    ht_resp_free(&r2);
    ht_resp_free(&r3);
    ht_close(&c);
    finish(&ts);
}

TEST(http_malformed_request_400)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GARBAGE\r\n\r\n") == 0);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 400);
    CHECK_CONTAINS(r.body.data, "\"code\":\"bad_request\"");
    char v[64];
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "close");
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_resp_free(&r);
    ht_close(&c);
    CHECK_INT(ht_request(ts.port, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", &r), ==, 400);
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", &r), ==, 505);
    ht_resp_free(&r);
    finish(&ts);
}

TEST(http_oversized_headers_431)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .max_header_bytes = 4096, .max_headers = 10 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct lh_buf req = LH_BUF_INIT;
    lh_buf_puts(&req, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    for (int i = 0; i < 8000; i++)
        lh_buf_putc(&req, 'a');
    lh_buf_puts(&req, "\r\n\r\n");
    struct ht_resp r;
    CHECK_INT(ht_request(ts.port, req.data, &r), ==, 431);
    CHECK_CONTAINS(r.body.data, "headers_too_large");
    ht_resp_free(&r);
    lh_buf_reset(&req);
    lh_buf_puts(&req, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 20; i++)
        lh_buf_printf(&req, "X-H%d: v\r\n", i);
    lh_buf_puts(&req, "\r\n");
    CHECK_INT(ht_request(ts.port, req.data, &r), ==, 431);
    CHECK_CONTAINS(r.body.data, "too_many_headers");
    ht_resp_free(&r);
    /* A request just under the limits still works. */
    CHECK_INT(ht_request(ts.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    ht_resp_free(&r);
    lh_buf_free(&req);
    finish(&ts);
}

TEST(http_body_too_large_413_by_content_length)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .max_body = 1000 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    /* Only the headers: the answer must not wait for the body. */
    REQUIRE(ht_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n") == 0);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 413);
    CHECK_CONTAINS(r.body.data, "body_too_large");
    CHECK_INT(ht_wait_closed(&c, 3000), ==, 1);
    ht_resp_free(&r);
    ht_close(&c);
    finish(&ts);
}

TEST(http_chunked_body_and_413_by_stream)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .max_body = 1000 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_resp r;
    CHECK_INT(ht_request(ts.port, "POST /echo HTTP/1.1\r\nHost: t\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", &r),
              ==, 200);
    CHECK_STR(r.body.data, "hello world");
    ht_resp_free(&r);

    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n") == 0);
    char chunk[600];
    memset(chunk, 'x', sizeof(chunk));
    int sent = 0, status = -1;
    for (int i = 0; i < 10 && status < 0; i++) {
        char hdr[16];
        snprintf(hdr, sizeof(hdr), "1f4\r\n");      /* 500 bytes */
        if (ht_sends(&c, hdr) != 0 || ht_send(&c, chunk, 500) != 0 || ht_sends(&c, "\r\n"))
            break;
        sent += 500;
        struct pollfd p = { .fd = c.fd, .events = POLLIN };
        if (poll(&p, 1, 50) > 0) {
            status = ht_read(&c, &r, 0);
            if (status > 0)
                ht_resp_free(&r);
        }
    }
    if (status < 0) {
        status = ht_read(&c, &r, 0);
        if (status > 0)
            ht_resp_free(&r);
    }
    CHECK_INT(status, ==, 413);
    CHECK_INT(sent, <=, 1500);
    CHECK_INT(ht_wait_closed(&c, 3000), ==, 1);
    ht_close(&c);
    finish(&ts);
}

TEST(http_expect_100_continue)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                         "Expect: 100-continue\r\n\r\n") == 0);
    char buf[256];
    ssize_t n = recv(c.fd, buf, sizeof(buf) - 1, 0);
    REQUIRE(n > 0);
    buf[n] = '\0';
    CHECK_STR(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    REQUIRE(ht_sends(&c, "12345") == 0);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "12345");
    ht_resp_free(&r);
    ht_close(&c);
    finish(&ts);
}

TEST(http_10_and_connection_close)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    struct ht_resp r;
    char v[64];
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /fast HTTP/1.0\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "close");
    CHECK(strncmp(r.head.data, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_resp_free(&r);
    ht_close(&c);

    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /fast HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "keep-alive");
    ht_resp_free(&r);
    REQUIRE(ht_sends(&c, "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "close");
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_resp_free(&r);
    ht_close(&c);
    finish(&ts);
}

TEST(http_slowloris_cut_by_header_timeout)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .header_timeout_ms = 500 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n";
    double t0 = ht_now();
    size_t sent = 0;
    int answered = 0;
    while (sent < strlen(req)) {
        if (ht_send(&c, req + sent, 1) != 0)
            break;
        sent++;
        struct pollfd p = { .fd = c.fd, .events = POLLIN };
        if (poll(&p, 1, 200) > 0) {
            answered = 1;
            break;
        }
    }
    double dt = ht_now() - t0;
    CHECK(answered);
    CHECK(sent < strlen(req));
    struct ht_resp r;
    int st = ht_read(&c, &r, 0);
    CHECK(st == 408 || st == -1);
    if (st > 0)
        ht_resp_free(&r);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    CHECK(dt >= 0.4 && dt < 2.0);
    ht_close(&c);
    struct lh_http_stats s;
    lh_http_server_stats(ts.srv, &s);
    CHECK_INT(s.timeouts, ==, 1);
    finish(&ts);
}

TEST(http_idle_and_body_timeouts)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .idle_timeout_ms = 300, .body_timeout_ms = 300 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    struct ht_resp r;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    ht_resp_free(&r);
    double t0 = ht_now();
    CHECK_INT(ht_wait_closed(&c, 3000), ==, 1);
    double dt = ht_now() - t0;
    CHECK(dt >= 0.25 && dt < 2.5);
    ht_close(&c);

    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 408);
    ht_resp_free(&r);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_close(&c);
    finish(&ts);
}

TEST(http_deferred_handler_client_gone)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    ht_sleep_ms(60);
    ht_close(&c);   /* gone while the work runs */
    REQUIRE(wait_int_not(&g_respond_rc, 1, 3000));
    CHECK_INT(get_int(&g_done_status), ==, LH_ECLOSED);
    CHECK_INT(get_int(&g_respond_rc), ==, LH_ECLOSED);
    /* The server carries on. */
    struct ht_resp r;
    CHECK_INT(ht_request(ts.port, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    ht_resp_free(&r);
    CHECK_INT((long long)ht_open_connections_settled(&ts), ==, 0);
    finish(&ts);
}

TEST(http_graceful_shutdown_completes_inflight)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    int port = ts.port;
    struct ht_conn c, idle;
    REQUIRE(ht_connect(&idle, port) == 0);
    REQUIRE(ht_connect(&c, port) == 0);
    REQUIRE(ht_sends(&c, "GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    ht_sleep_ms(60);
    ht_begin_stop(&ts);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "slow");
    char v[64];
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "close");
    ht_resp_free(&r);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    CHECK_INT(ht_wait_closed(&idle, 2000), ==, 1);
    ht_close(&c);
    ht_close(&idle);
    CHECK_INT(ht_connect(&c, port), ==, -1);   /* no longer listening */
    if (c.fd >= 0)
        ht_close(&c);
    finish(&ts);
}

TEST(http_drain_timeout_closes_stragglers)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    ts.drain_ms = 100;
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    REQUIRE(ht_sends(&c, "GET /slow?ms=600 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    ht_sleep_ms(60);
    double t0 = ht_now();
    ht_begin_stop(&ts);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, -1);   /* cut at the drain timeout */
    CHECK(ht_now() - t0 < 0.5);
    ht_close(&c);
    CHECK_INT(ht_stop(&ts), ==, 0);          /* waits for the work to end */
    CHECK_INT(get_int(&g_respond_rc), ==, LH_ECLOSED);
    CHECK_INT(ht_leak_check(), ==, 0);
}

TEST(http_max_connections)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .max_connections = 2 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn a, b, c;
    struct ht_resp r;
    REQUIRE(ht_connect(&a, ts.port) == 0);
    REQUIRE(ht_connect(&b, ts.port) == 0);
    REQUIRE(ht_sends(&a, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&a, &r, 0), ==, 200);
    ht_resp_free(&r);
    REQUIRE(ht_sends(&b, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&b, &r, 0), ==, 200);
    ht_resp_free(&r);
    REQUIRE(ht_connect(&c, ts.port) == 0);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_close(&c);
    ht_close(&a);
    /* A slot frees up once a connection closed. */
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        ok = ht_request(ts.port, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n", &r) == 200;
        if (ok)
            ht_resp_free(&r);
        else
            ht_sleep_ms(10);
    }
    CHECK(ok);
    ht_close(&b);
    struct lh_http_stats s;
    lh_http_server_stats(ts.srv, &s);
    CHECK_INT(s.connections_rejected, >=, 1);
    finish(&ts);
}

TEST(http_admin_routes)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_resp r;
    char v[128];
    CHECK_INT(ht_request(ts.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    ht_resp_free(&r);
    set_int(&g_not_ready, 1);
    CHECK_INT(ht_request(ts.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 503);
    CHECK_CONTAINS(r.body.data, "bus down");
    ht_resp_free(&r);
    CHECK_INT(ht_request(ts.port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    CHECK_CONTAINS(ht_header(&r, "Content-Type", v, sizeof(v)), "text/plain; version=0.0.4");
    CHECK_CONTAINS(r.body.data, "my_metric 42\n");
    CHECK_CONTAINS(r.body.data, "loghaul_http_requests_total{code=\"2xx\"} 2\n");
    CHECK_CONTAINS(r.body.data, "loghaul_http_requests_total{code=\"5xx\"} 1\n");
    CHECK_CONTAINS(r.body.data, "# TYPE loghaul_http_connections_open gauge\n");
    CHECK_CONTAINS(r.body.data, "loghaul_http_request_duration_seconds_count 3\n");
    ht_resp_free(&r);
    finish(&ts);
}

TEST(http_query_get_decodes)
{
    struct lh_buf b = LH_BUF_INIT;
    CHECK_INT(lh_http_query_get("a=1&q=hello+w%6Frld%21&e=&f", "q", &b), ==, 0);
    CHECK_STR(b.data, "hello world!");
    lh_buf_reset(&b);
    CHECK_INT(lh_http_query_get("a=1&q=x", "a", &b), ==, 0);
    CHECK_STR(b.data, "1");
    lh_buf_reset(&b);
    CHECK_INT(lh_http_query_get("a=1&e=&f", "e", &b), ==, 0);
    CHECK_STR(b.data, "");
    CHECK_INT(lh_http_query_get("a=1&e=&f", "f", &b), ==, 0);
    CHECK_INT(lh_http_query_get("a=1&b%20c=2", "b c", &b), ==, 0);
    CHECK_STR(b.data, "2");
    CHECK_INT(lh_http_query_get("a=1", "zz", &b), ==, LH_ENOTFOUND);
    CHECK_INT(lh_http_query_get("bad=%zz%4", "bad", &b), ==, 0);
    CHECK_CONTAINS(b.data, "%zz%4");
    lh_buf_free(&b);
}

TEST(http_bad_listen_address_and_port_in_use)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_err err = { 0 };
    struct lh_http_server *srv = NULL, *srv2 = NULL;
    struct lh_http_server_config cfg = { .listen = "127.0.0.1:99999" };
    CHECK_INT(lh_http_server_create(&loop, &cfg, &srv, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "bad port");
    cfg.listen = "1::2:80";
    CHECK_INT(lh_http_server_create(&loop, &cfg, &srv, &err), ==, LH_EINVAL);
    cfg.listen = "127.0.0.1:0";
    cfg.tls.key_file = "/nonexistent";
    CHECK_INT(lh_http_server_create(&loop, &cfg, &srv, &err), ==, LH_EINVAL);
    cfg.tls.key_file = NULL;
    REQUIRE(lh_http_server_create(&loop, &cfg, &srv, &err) == 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", lh_http_server_port(srv));
    cfg.listen = addr;
    CHECK_INT(lh_http_server_create(&loop, &cfg, &srv2, &err), ==, LH_EIO);
    CHECK_CONTAINS(err.msg, "in use");
    cfg.listen = "[::1]:0";
    if (lh_http_server_create(&loop, &cfg, &srv2, &err) == 0) {   /* when IPv6 exists */
        CHECK(lh_http_server_port(srv2) > 0);
        lh_http_server_destroy(srv2);
    }
    lh_http_server_destroy(srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}

/* --- TLS --- */

static char g_dir[512];

static const char *path_in(const char *name)
{
    static char bufs[8][600];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 600, "%s/%s", g_dir, name);
    return b;
}

static void tls_cfg(struct lh_http_server_config *cfg, int client_auth)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->tls.cert_file = (char *)path_in("server.pem");
    cfg->tls.key_file = (char *)path_in("server.key");
    if (client_auth != LH_HTTP_CLIENT_AUTH_NONE)
        cfg->tls.client_ca_file = (char *)path_in("ca.pem");
    cfg->tls.client_auth = client_auth;
}

/* Sends GET /cn over c; returns the status, the body in body. */
static int get_cn(struct ht_conn *c, struct lh_buf *body)
{
    if (ht_sends(c, "GET /cn HTTP/1.1\r\nHost: localhost\r\n\r\n") != 0)
        return -1;
    struct ht_resp r;
    int st = ht_read(c, &r, 0);
    if (st > 0 && body)
        lh_buf_append(body, r.body.data, r.body.len);
    if (st > 0)
        ht_resp_free(&r);
    return st;
}

TEST(http_tls13_handshake_and_tls12_refused)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    struct ht_server ts;
    struct lh_http_server_config cfg;
    tls_cfg(&cfg, LH_HTTP_CLIENT_AUTH_NONE);
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    CHECK_STR(SSL_get_version(c.ssl), "TLSv1.3");
    struct lh_buf body = LH_BUF_INIT;
    CHECK_INT(get_cn(&c, &body), ==, 200);
    CHECK_STR(body.data, "cn=- subject=- tls=1");
    lh_buf_reset(&body);
    CHECK_INT(get_cn(&c, &body), ==, 200);     /* keep-alive over TLS */
    lh_buf_free(&body);
    ht_close(&c);

    CHECK_INT(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, TLS1_2_VERSION), ==,
              -1);
    ht_close(&c);
    /* Plain HTTP to a TLS port gets nowhere. */
    REQUIRE(ht_connect(&c, ts.port) == 0);
    ht_sends(&c, "GET /cn HTTP/1.1\r\nHost: t\r\n\r\n");
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, -1);
    ht_close(&c);
    struct lh_http_stats s;
    lh_http_server_stats(ts.srv, &s);
    CHECK_INT(s.tls_handshake_failures, ==, 2);
    finish(&ts);
}

TEST(http_mtls_require)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    struct ht_server ts;
    struct lh_http_server_config cfg;
    tls_cfg(&cfg, LH_HTTP_CLIENT_AUTH_REQUIRE);
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    struct lh_buf body = LH_BUF_INIT;
    /* No client certificate: TLS 1.3 clients may finish their side of the
     * handshake before the server refuses, but no request gets through. */
    int st = -1;
    if (ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0)
        st = get_cn(&c, NULL);
    CHECK_INT(st, ==, -1);
    ht_close(&c);
    /* A certificate from an unknown CA. */
    st = -1;
    if (ht_connect_tls(&c, ts.port, path_in("ca.pem"), path_in("rogue.pem"),
                       path_in("rogue.key"), 0) == 0)
        st = get_cn(&c, NULL);
    CHECK_INT(st, ==, -1);
    ht_close(&c);
    /* The right one. */
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), path_in("client.pem"),
                           path_in("client.key"), 0) == 0);
    CHECK_INT(get_cn(&c, &body), ==, 200);
    CHECK_STR(body.data, "cn=agent-7 subject=CN=agent-7,O=loghaul tls=1");
    ht_close(&c);
    lh_buf_free(&body);
    struct lh_http_stats s;
    lh_http_server_stats(ts.srv, &s);
    CHECK_INT(s.tls_handshake_failures, ==, 2);
    finish(&ts);
}

TEST(http_mtls_optional)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    struct ht_server ts;
    struct lh_http_server_config cfg;
    tls_cfg(&cfg, LH_HTTP_CLIENT_AUTH_OPTIONAL);
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    struct lh_buf body = LH_BUF_INIT;
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    CHECK_INT(get_cn(&c, &body), ==, 200);
    CHECK_STR(body.data, "cn=- subject=- tls=1");
    ht_close(&c);
    lh_buf_reset(&body);
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), path_in("client.pem"),
                           path_in("client.key"), 0) == 0);
    CHECK_INT(get_cn(&c, &body), ==, 200);
    CHECK_CONTAINS(body.data, "cn=agent-7 ");
    ht_close(&c);
    int st = -1;
    if (ht_connect_tls(&c, ts.port, path_in("ca.pem"), path_in("rogue.pem"),
                       path_in("rogue.key"), 0) == 0)
        st = get_cn(&c, NULL);
    CHECK_INT(st, ==, -1);   /* a presented certificate must verify */
    ht_close(&c);
    lh_buf_free(&body);
    finish(&ts);
}

static struct lh_http_tls_config g_reload_tls;
static int g_reload_rc = 1;

static void h_reload(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_err err = { 0 };
    int rc = lh_http_server_reload_tls(lh_http_req_server(req), &g_reload_tls, &err);
    set_int(&g_reload_rc, rc);
    lh_http_respond(req, rc == 0 ? 200 : 500, NULL, err.msg, strlen(err.msg));
}

static void setup_reload(struct lh_http_server *srv, void *arg)
{
    setup_routes(srv, arg);
    lh_http_server_route(srv, "POST", "/reload", h_reload, NULL, NULL);
}

static int peer_org_is(struct ht_conn *c, const char *org)
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (!cert)
        return 0;
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName, buf,
                              sizeof(buf));
    X509_free(cert);
    return strcmp(buf, org) == 0;
}

TEST(http_tls_reload_certificate)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    REQUIRE(ht_issue_cert(g_dir, "s2", "reloaded", "localhost", "ca", HT_CERT_SERVER) == 0);
    struct ht_server ts;
    struct lh_http_server_config cfg;
    tls_cfg(&cfg, LH_HTTP_CLIENT_AUTH_NONE);
    REQUIRE(ht_start(&ts, &cfg, setup_reload, NULL) == 0);
    struct ht_conn c;
    struct ht_resp r;
    /* A broken reload keeps the old certificate. */
    g_reload_tls.cert_file = (char *)path_in("s2.pem");
    g_reload_tls.key_file = (char *)path_in("server.key");   /* wrong key */
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    CHECK(!peer_org_is(&c, "reloaded"));
    ht_sends(&c, "POST /reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(ht_read(&c, &r, 0), ==, 500);
    CHECK_CONTAINS(r.body.data, "mismatch");
    ht_resp_free(&r);
    ht_close(&c);
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    CHECK(!peer_org_is(&c, "reloaded"));
    g_reload_tls.key_file = (char *)path_in("s2.key");
    ht_sends(&c, "POST /reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    ht_resp_free(&r);
    CHECK_INT(get_cn(&c, NULL), ==, 200);   /* the open connection carries on */
    ht_close(&c);
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    CHECK(peer_org_is(&c, "reloaded"));
    CHECK_INT(get_cn(&c, NULL), ==, 200);
    ht_close(&c);
    finish(&ts);
}

TEST(http_tls_graceful_shutdown_and_client_gone)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    struct ht_server ts;
    struct lh_http_server_config cfg;
    tls_cfg(&cfg, LH_HTTP_CLIENT_AUTH_NONE);
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    ht_sends(&c, "GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
    ht_sleep_ms(50);
    ht_close(&c);
    REQUIRE(wait_int_not(&g_respond_rc, 1, 3000));
    CHECK_INT(get_int(&g_respond_rc), ==, LH_ECLOSED);
    set_int(&g_respond_rc, 1);
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    ht_sends(&c, "GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
    ht_sleep_ms(50);
    ht_begin_stop(&ts);
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "slow");
    ht_resp_free(&r);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_close(&c);
    finish(&ts);
}

static void big_body_roundtrip(struct ht_conn *c)
{
    size_t n = 3u << 20;
    char *body = malloc(n);
    REQUIRE(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + (i * 7919) % 26);
    char head[128];
    for (int round = 0; round < 2; round++) {   /* twice: keep-alive after a big one */
        snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                 n);
        REQUIRE(ht_sends(c, head) == 0);
        REQUIRE(ht_send(c, body, n) == 0);
        struct ht_resp r;
        CHECK_INT(ht_read(c, &r, 0), ==, 200);
        CHECK_INT(r.body.len, ==, n);
        CHECK(r.body.len == n && memcmp(r.body.data, body, n) == 0);
        ht_resp_free(&r);
    }
    free(body);
}

TEST(http_big_bodies_plain_and_tls)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    struct ht_server plain, tls;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&plain, &cfg) == 0);
    tls_cfg(&cfg, LH_HTTP_CLIENT_AUTH_NONE);
    REQUIRE(start(&tls, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, plain.port) == 0);
    big_body_roundtrip(&c);
    ht_close(&c);
    REQUIRE(ht_connect_tls(&c, tls.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    big_body_roundtrip(&c);
    /* pipelining over TLS */
    REQUIRE(ht_sends(&c, "GET /slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r1, r2;
    CHECK_INT(ht_read(&c, &r1, 0), ==, 200);
    CHECK_INT(ht_read(&c, &r2, 0), ==, 200);
    CHECK_STR(r1.body.data, "slow");
    CHECK_STR(r2.body.data, "fast");
    ht_resp_free(&r1);
    ht_resp_free(&r2);
    ht_close(&c);
    finish(&plain);
    finish(&tls);
}

TEST(http_garbage_input_never_crashes)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { .header_timeout_ms = 300, .max_body = 4096 };
    REQUIRE(start(&ts, &cfg) == 0);
    static const char *pieces[] = {
        "GET ", "POST ", "/echo", "/hello", "?a=%zz", " HTTP/1.1", " HTTP/1.0", "\r\n", "\n",
        "Host: t", "Content-Length: 5", "Content-Length: -1", "Content-Length: 99999999999999",
        "Transfer-Encoding: chunked", "ffffffffffffffff\r\n", "5\r\nhello\r\n", "0\r\n\r\n",
        ":", " ", "\x01\x80\xff", "Expect: 100-continue", "Connection: close", "\r\n\r\n",
    };
    unsigned seed = 12345;
    for (int i = 0; i < 150; i++) {
        struct ht_conn c;
        REQUIRE(ht_connect(&c, ts.port) == 0);
        struct lh_buf b = LH_BUF_INIT;
        int n = 1 + (int)(rand_r(&seed) % 12);
        for (int k = 0; k < n; k++)
            lh_buf_puts(&b, pieces[rand_r(&seed) % (sizeof(pieces) / sizeof(pieces[0]))]);
        ht_send(&c, b.data, b.len);
        if (rand_r(&seed) % 2)
            shutdown(c.fd, SHUT_WR);
        struct pollfd p = { .fd = c.fd, .events = POLLIN };
        poll(&p, 1, 5);
        ht_close(&c);
        lh_buf_free(&b);
    }
    struct ht_resp r;
    CHECK_INT(ht_request(ts.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    ht_resp_free(&r);
    finish(&ts);
}

TEST(http_write_timeout_for_a_client_that_does_not_read)
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
    REQUIRE(ht_sends(&c, "GET /big?n=33554432 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct lh_http_stats st;
    double t0 = ht_now();
    do {
        ht_sleep_ms(20);
        lh_http_server_stats(ts.srv, &st);
    } while (st.connections_open > 0 && ht_now() - t0 < 5);
    CHECK_INT(st.connections_open, ==, 0);
    CHECK_INT(st.timeouts, ==, 1);
    CHECK(ht_now() - t0 >= 0.25);
    ht_close(&c);
    finish(&ts);
}
