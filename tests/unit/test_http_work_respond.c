/* Unit tests for lh_http_work_respond (http_server.c): responses written by
 * a defer work function, from the worker thread on plain connections and by
 * the loop on TLS ones or when the socket does not take them at once. */
#include "../lh_test.h"
#include "http_test_util.h"
#include "lh/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* State shared between the server's threads and the test thread. */
static int g_dones;            /* done callbacks run */
static int g_done_status = 1;  /* status of the last one; 1: none yet */
static int g_work_rc = 1;      /* what the last lh_http_work_respond returned */
static int g_outside_rc = 1;   /* lh_http_work_respond called from a handler */
static int g_not_taken;        /* a body buffer still full after a 0 */
static char g_dir[512];

static void set_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static int get_int(int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

static int wait_int(int *p, int v, int timeout_ms)
{
    double end = ht_now() + timeout_ms / 1000.0;
    while (get_int(p) != v && ht_now() < end)
        ht_sleep_ms(5);
    return get_int(p) == v;
}

/* The request's query: "ms=N" sleeps N ms first, "big=N" answers N bytes. */
static long query_num(struct lh_http_req *req, const char *name)
{
    struct lh_buf v = LH_BUF_INIT;
    long n = 0;
    if (lh_http_query_get(lh_http_req_query(req), name, &v) == 0 && v.data)
        n = atol(v.data);
    lh_buf_free(&v);
    return n;
}

static void w_work(struct lh_http_req *req, void *arg)
{
    (void)arg;
    long ms = query_num(req, "ms"), big = query_num(req, "big");
    if (ms > 0)
        ht_sleep_ms((int)ms);
    struct lh_buf parts[3] = { LH_BUF_INIT, LH_BUF_INIT, LH_BUF_INIT };
    lh_buf_puts(&parts[0], "{\"n\":");
    if (big > 0) {
        /* a recognisable pattern: a byte lost or moved shows */
        lh_buf_putc(&parts[1], '"');
        for (long i = 0; i < big; i++)
            lh_buf_putc(&parts[1], (char)('a' + i % 26));
        lh_buf_putc(&parts[1], '"');
    } else {
        lh_buf_puts(&parts[1], "[1,2,3]");
    }
    lh_buf_puts(&parts[2], "}");
    struct lh_http_header h[] = { { "X-From", "worker" }, { NULL, NULL } };
    int rc = lh_http_work_respond(req, 200, h, "application/json", parts, 3);
    set_int(&g_work_rc, rc);
    for (int i = 0; i < 3; i++) {
        if (rc == 0 && parts[i].len)
            set_int(&g_not_taken, 1);
        lh_buf_free(&parts[i]);
    }
}

static void w_done(struct lh_http_req *req, int status, void *arg)
{
    (void)arg;
    set_int(&g_done_status, status);
    if (get_int(&g_work_rc) != 0)
        lh_http_respond(req, 500, NULL, "not answered", 12);
    __atomic_add_fetch(&g_dones, 1, __ATOMIC_SEQ_CST);
}

static void h_work(struct lh_http_req *req, void *arg)
{
    (void)arg;
    set_int(&g_outside_rc, lh_http_work_respond(req, 200, NULL, NULL, NULL, 0));
    if (lh_http_defer(req, w_work, w_done, NULL) != 0)
        lh_http_respond(req, 503, NULL, NULL, 0);
}

static void h_fast(struct lh_http_req *req, void *arg)
{
    (void)arg;
    lh_http_respond(req, 200, NULL, "fast", 4);
}

static void setup(struct lh_http_server *srv, void *arg)
{
    (void)arg;
    lh_http_server_route(srv, NULL, "/w", h_work, NULL, NULL);
    lh_http_server_route(srv, "GET", "/fast", h_fast, NULL, NULL);
}

static int start(struct ht_server *ts, struct lh_http_server_config *cfg)
{
    set_int(&g_dones, 0);
    set_int(&g_done_status, 1);
    set_int(&g_work_rc, 1);
    set_int(&g_outside_rc, 1);
    set_int(&g_not_taken, 0);
    return ht_start(ts, cfg, setup, NULL);
}

static void finish(struct ht_server *ts)
{
    CHECK_INT(ht_stop(ts), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}

static const char *path_in(const char *name)
{
    static char p[700];
    snprintf(p, sizeof(p), "%s/%s", g_dir, name);
    return p;
}

/* Connects and sends a request whose work takes 300 ms; returns 60 ms
 * into it. */
static int send_slow(struct ht_server *ts, struct ht_conn *c)
{
    if (ht_connect(c, ts->port) != 0 ||
        ht_sends(c, "GET /w?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n") != 0)
        return -1;
    ht_sleep_ms(60);
    return 0;
}

/* --- tests --- */

TEST(http_work_respond_pipelined_keepalive_and_head)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    /* three requests in one write: answered in order, one at a time */
    REQUIRE(ht_sends(&c, "GET /w?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n"
                         "HEAD /w HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /w HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ht_resp r;
    char v[64];
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "{\"n\":[1,2,3]}");
    CHECK_STR(ht_header(&r, "Content-Type", v, sizeof(v)), "application/json");
    CHECK_STR(ht_header(&r, "X-From", v, sizeof(v)), "worker");
    CHECK(ht_header(&r, "Date", v, sizeof(v)) != NULL);
    CHECK(ht_header(&r, "Connection", v, sizeof(v)) == NULL);   /* kept alive */
    ht_resp_free(&r);
    CHECK_INT(ht_read(&c, &r, 1), ==, 200);
    CHECK_STR(ht_header(&r, "Content-Length", v, sizeof(v)), "13");
    CHECK_INT((long long)r.body.len, ==, 0);
    ht_resp_free(&r);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "{\"n\":[1,2,3]}");
    ht_resp_free(&r);
    /* counted once each, before the client could read them */
    struct lh_http_stats s;
    lh_http_server_stats(ts.srv, &s);
    CHECK_INT((long long)s.requests[2], ==, 3);
    CHECK(wait_int(&g_dones, 3, 3000));
    CHECK_INT(get_int(&g_done_status), ==, 0);
    CHECK_INT(get_int(&g_work_rc), ==, 0);
    CHECK_INT(get_int(&g_outside_rc), ==, LH_EINVAL);   /* only from a work function */
    CHECK_INT(get_int(&g_not_taken), ==, 0);
    /* the connection goes on with a plain handler */
    REQUIRE(ht_sends(&c, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "fast");
    ht_resp_free(&r);
    ht_close(&c);
    finish(&ts);
}

TEST(http_work_respond_body_larger_than_the_socket_takes)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect(&c, ts.port) == 0);
    /* more than the socket buffers hold: the worker's write stops early
     * and the loop sends the rest */
    long big = 8L << 20;
    REQUIRE(ht_sends(&c, "GET /w?big=8388608 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(wait_int(&g_work_rc, 0, 5000));
    ht_sleep_ms(100);   /* not reading meanwhile */
    struct ht_resp r;
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    REQUIRE((long)r.body.len == big + 8);
    CHECK(memcmp(r.body.data, "{\"n\":\"abc", 9) == 0);
    int ok = 1;
    for (long i = 0; i < big && ok; i++)
        ok = r.body.data[6 + i] == (char)('a' + i % 26);
    CHECK(ok);
    CHECK_STR(r.body.data + 6 + big, "\"}");
    ht_resp_free(&r);
    REQUIRE(ht_sends(&c, "GET /w HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "{\"n\":[1,2,3]}");
    ht_resp_free(&r);
    struct lh_http_stats s;
    lh_http_server_stats(ts.srv, &s);
    CHECK((long)s.bytes_out > big);
    ht_close(&c);
    finish(&ts);
}

TEST(http_work_respond_drain_says_close)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(send_slow(&ts, &c) == 0);
    ht_begin_stop(&ts);
    struct ht_resp r;
    char v[64];
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "{\"n\":[1,2,3]}");
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "close");
    ht_resp_free(&r);
    CHECK_INT(ht_wait_closed(&c, 2000), ==, 1);
    ht_close(&c);
    finish(&ts);
}

TEST(http_work_respond_client_gone)
{
    struct ht_server ts;
    struct lh_http_server_config cfg = { 0 };
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(send_slow(&ts, &c) == 0);
    ht_close(&c);   /* gone while the work runs */
    REQUIRE(wait_int(&g_dones, 1, 3000));
    CHECK_INT(get_int(&g_done_status), ==, LH_ECLOSED);
    CHECK_INT(get_int(&g_work_rc), ==, 0);
    struct ht_resp r;
    CHECK_INT(ht_request(ts.port, "GET /w HTTP/1.1\r\nHost: t\r\n\r\n", &r), ==, 200);
    CHECK_STR(r.body.data, "{\"n\":[1,2,3]}");
    ht_resp_free(&r);
    CHECK_INT((long long)ht_open_connections_settled(&ts), ==, 0);
    finish(&ts);
}

TEST(http_work_respond_over_tls)
{
    snprintf(g_dir, sizeof(g_dir), "%s", lh_test_tmpdir());
    REQUIRE(ht_make_certs(g_dir) == 0);
    struct ht_server ts;
    struct lh_http_server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char cert[700], key[700];
    snprintf(cert, sizeof(cert), "%s", path_in("server.pem"));
    snprintf(key, sizeof(key), "%s", path_in("server.key"));
    cfg.tls.cert_file = cert;
    cfg.tls.key_file = key;
    REQUIRE(start(&ts, &cfg) == 0);
    struct ht_conn c;
    REQUIRE(ht_connect_tls(&c, ts.port, path_in("ca.pem"), NULL, NULL, 0) == 0);
    struct ht_resp r;
    for (int i = 0; i < 2; i++) {   /* kept alive */
        REQUIRE(ht_sends(&c, "GET /w HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0);
        CHECK_INT(ht_read(&c, &r, 0), ==, 200);
        CHECK_STR(r.body.data, "{\"n\":[1,2,3]}");
        ht_resp_free(&r);
    }
    REQUIRE(ht_sends(&c, "GET /w?big=300000 HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_INT((long long)r.body.len, ==, 300008);
    ht_resp_free(&r);
    ht_close(&c);
    finish(&ts);
}
