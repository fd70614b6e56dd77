/* Unit tests for http_client.c against the loghaul HTTP server running on
 * 127.0.0.1:0 in a thread. */
#include "../lh_test.h"
#include "http_test_util.h"
#include "lh/http_client.h"

#include <libdeflate.h>
#include <stdint.h>

/* --- server side --- */

static void h_hello(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf b = LH_BUF_INIT;
    const char *x = lh_http_req_header(req, "X-Test");
    lh_buf_printf(&b, "{\"method\":\"%s\",\"x\":\"%s\"}", lh_http_req_method(req), x ? x : "");
    struct lh_http_header h[] = { { "X-Multi", "a" }, { "x-multi", "b" }, { NULL, NULL } };
    lh_http_respond_json(req, 200, h, b.data, b.len);
    lh_buf_free(&b);
}

static void h_echo(struct lh_http_req *req, void *arg)
{
    (void)arg;
    size_t n;
    const char *body = lh_http_req_body(req, &n);
    const char *ce = lh_http_req_header(req, "Content-Encoding");
    const char *ct = lh_http_req_header(req, "Content-Type");
    struct lh_http_header h[] = { { "X-Content-Type", ct ? ct : "-" }, { NULL, NULL } };
    if (ce && strcmp(ce, "gzip") == 0) {
        struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
        size_t cap = 1 << 20, got = 0;
        char *out = malloc(cap);
        int ok = d && out &&
                 libdeflate_gzip_decompress(d, body, n, out, cap, &got) == LIBDEFLATE_SUCCESS;
        if (ok)
            lh_http_respond(req, 200, h, out, got);
        else
            lh_http_respond_error(req, 400, NULL, "bad_gzip", "cannot decode");
        free(out);
        libdeflate_free_decompressor(d);
        return;
    }
    lh_http_respond(req, 201, h, body, n);
}

static void h_big(struct lh_http_req *req, void *arg)
{
    (void)arg;
    size_t n = 100000;
    char *p = malloc(n);
    memset(p, 'b', n);
    lh_http_respond(req, 200, NULL, p, n);
    free(p);
}

static void slow_work(struct lh_http_req *req, void *arg)
{
    (void)req;
    (void)arg;
    ht_sleep_ms(400);
}

static void slow_done(struct lh_http_req *req, int status, void *arg)
{
    (void)status;
    (void)arg;
    lh_http_respond(req, 200, NULL, "late", 4);
}

static void h_slow(struct lh_http_req *req, void *arg)
{
    (void)arg;
    if (lh_http_defer(req, slow_work, slow_done, NULL) != 0)
        lh_http_respond(req, 500, NULL, NULL, 0);
}

/* Holds requests until n of them are waiting, then answers them all: it
 * only completes when the client really sends them concurrently. */
static struct lh_http_req *g_waiting[16];
static int g_nwaiting;

static void h_barrier(struct lh_http_req *req, void *arg)
{
    (void)arg;
    struct lh_buf v = LH_BUF_INIT;
    int n = 1;
    if (lh_http_query_get(lh_http_req_query(req), "n", &v) == 0)
        n = atoi(v.data);
    lh_buf_free(&v);
    g_waiting[g_nwaiting++] = req;
    if (g_nwaiting < n)
        return;
    for (int i = 0; i < g_nwaiting; i++) {
        char b[32];
        int len = snprintf(b, sizeof(b), "released %d", i);
        lh_http_respond(g_waiting[i], 200, NULL, b, (size_t)len);
    }
    g_nwaiting = 0;
}

static void h_cn(struct lh_http_req *req, void *arg)
{
    (void)arg;
    const char *cn = lh_http_req_client_cn(req);
    lh_http_respond(req, 200, NULL, cn ? cn : "-", cn ? strlen(cn) : 1);
}

static void setup(struct lh_http_server *srv, void *arg)
{
    (void)arg;
    lh_http_server_route(srv, "GET", "/hello", h_hello, NULL, NULL);
    lh_http_server_route(srv, NULL, "/echo", h_echo, NULL, NULL);
    lh_http_server_route(srv, "GET", "/big", h_big, NULL, NULL);
    lh_http_server_route(srv, "GET", "/slow", h_slow, NULL, NULL);
    lh_http_server_route(srv, "GET", "/barrier", h_barrier, NULL, NULL);
    lh_http_server_route(srv, "GET", "/cn", h_cn, NULL, NULL);
}

static char *url(const struct ht_server *ts, const char *scheme, const char *path)
{
    static char bufs[8][256];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 256, "%s://%s:%d%s", scheme, strcmp(scheme, "https") ? "127.0.0.1" : "localhost",
             ts->port, path);
    return b;
}

/* --- tests --- */

TEST(client_get_post_and_headers)
{
    struct ht_server ts;
    struct lh_http_server_config scfg = { 0 };
    REQUIRE(ht_start(&ts, &scfg, setup, NULL) == 0);
    struct lh_http_client_config cfg = { 0 };
    struct lh_http_client *c = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_http_client_create(&cfg, &c, &err) == 0);
    struct lh_http_response resp = { 0 };
    struct lh_http_header h[] = { { "X-Test", "v1" }, { NULL, NULL } };
    struct lh_http_request req = { .url = url(&ts, "http", "/hello"), .headers = h };
    REQUIRE(lh_http_client_do(c, &req, &resp, &err) == 0);
    CHECK_INT(resp.status, ==, 200);
    CHECK_STR(resp.body.data, "{\"method\":\"GET\",\"x\":\"v1\"}");
    CHECK_STR(lh_http_response_header(&resp, "content-type"), "application/json");
    CHECK_STR(lh_http_response_header(&resp, "X-MULTI"), "a");
    CHECK_STR(lh_http_response_header(&resp, "Server"), "loghaul");
    CHECK(lh_http_response_header(&resp, "nope") == NULL);
    CHECK(resp.seconds > 0);

    struct lh_http_request post = { .url = url(&ts, "http", "/echo"), .body = "payload",
                                    .body_len = 7 };
    REQUIRE(lh_http_client_do(c, &post, &resp, &err) == 0);
    CHECK_INT(resp.status, ==, 201);
    CHECK_STR(resp.body.data, "payload");
    CHECK_STR(lh_http_response_header(&resp, "X-Content-Type"), "-");   /* no form default */

    struct lh_http_header ct[] = { { "Content-Type", "application/x-ndjson" }, { NULL, NULL } };
    struct lh_http_request put = { .method = "PUT", .url = url(&ts, "http", "/echo"),
                                   .headers = ct, .body = "{}\n", .body_len = 3 };
    REQUIRE(lh_http_client_do(c, &put, &resp, &err) == 0);
    CHECK_INT(resp.status, ==, 201);
    CHECK_STR(resp.body.data, "{}\n");
    CHECK_STR(lh_http_response_header(&resp, "X-Content-Type"), "application/x-ndjson");

    struct lh_http_request missing = { .method = "DELETE", .url = url(&ts, "http", "/none") };
    REQUIRE(lh_http_client_do(c, &missing, &resp, &err) == 0);
    CHECK_INT(resp.status, ==, 404);
    CHECK_CONTAINS(resp.body.data, "not_found");

    /* Everything went over one kept-alive connection. */
    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK_INT(st.connections_total, ==, 1);
    lh_http_response_free(&resp);
    lh_http_client_destroy(c);
    CHECK_INT(ht_stop(&ts), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}

TEST(client_gzip_request_body)
{
    struct ht_server ts;
    struct lh_http_server_config scfg = { 0 };
    REQUIRE(ht_start(&ts, &scfg, setup, NULL) == 0);
    struct lh_http_client_config cfg = { .gzip_level = 9 };
    struct lh_http_client *c = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_http_client_create(&cfg, &c, &err) == 0);
    struct lh_buf body = LH_BUF_INIT;
    for (int i = 0; i < 2000; i++)
        lh_buf_printf(&body, "{\"line\":%d,\"msg\":\"hello world\"}\n", i);
    struct lh_http_response resp = { 0 };
    struct lh_http_request req = { .url = url(&ts, "http", "/echo"), .body = body.data,
                                   .body_len = body.len, .gzip = 1 };
    REQUIRE(lh_http_client_do(c, &req, &resp, &err) == 0);
    CHECK_INT(resp.status, ==, 200);
    CHECK_INT(resp.body.len, ==, body.len);
    CHECK(resp.body.len == body.len && memcmp(resp.body.data, body.data, body.len) == 0);
    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK(st.bytes_in < body.len / 4);   /* it really travelled compressed */
    lh_http_response_free(&resp);
    lh_buf_free(&body);
    lh_http_client_destroy(c);
    CHECK_INT(ht_stop(&ts), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}

TEST(client_errors_too_big_timeout_refused)
{
    struct ht_server ts;
    struct lh_http_server_config scfg = { 0 };
    REQUIRE(ht_start(&ts, &scfg, setup, NULL) == 0);
    struct lh_http_client_config cfg = { .max_response = 1000, .timeout_ms = 200 };
    struct lh_http_client *c = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_http_client_create(&cfg, &c, &err) == 0);
    struct lh_http_response resp = { 0 };
    struct lh_http_request big = { .url = url(&ts, "http", "/big") };
    CHECK_INT(lh_http_client_do(c, &big, &resp, &err), ==, LH_ETOOBIG);
    CHECK_CONTAINS(err.msg, "over 1000 bytes");
    struct lh_http_request slow = { .url = url(&ts, "http", "/slow") };
    CHECK_INT(lh_http_client_do(c, &slow, &resp, &err), ==, LH_ETIMEDOUT);
    CHECK_CONTAINS(err.msg, "GET http://127.0.0.1:");
    /* A per-request timeout overrides the client's. */
    slow.timeout_ms = 3000;
    CHECK_INT(lh_http_client_do(c, &slow, &resp, &err), ==, 0);
    CHECK_STR(resp.body.data, "late");
    struct lh_http_request bad = { .url = "nope://x" };
    CHECK(lh_http_client_do(c, &bad, &resp, &err) == LH_EINVAL);
    int port = ts.port;
    CHECK_INT(ht_stop(&ts), ==, 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/hello", port);
    struct lh_http_request gone = { .url = u };
    CHECK_INT(lh_http_client_do(c, &gone, &resp, &err), ==, LH_EUNAVAIL);
    lh_http_response_free(&resp);
    lh_http_client_destroy(c);
    CHECK_INT(ht_leak_check(), ==, 0);
}

TEST(client_parallel_requests_run_concurrently)
{
    struct ht_server ts;
    struct lh_http_server_config scfg = { 0 };
    REQUIRE(ht_start(&ts, &scfg, setup, NULL) == 0);
    struct lh_http_client_config cfg = { .timeout_ms = 5000, .max_parallel = 8 };
    struct lh_http_client *c = NULL;
    struct lh_err err = { 0 };
    REQUIRE(lh_http_client_create(&cfg, &c, &err) == 0);
    struct lh_http_exchange x[7];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 6; i++)
        x[i].req.url = url(&ts, "http", "/barrier?n=6");
    x[6].req.url = "http://127.0.0.1:1/refused";
    REQUIRE(lh_http_client_do_all(c, x, 7, &err) == 0);
    int released = 0;
    for (int i = 0; i < 6; i++) {
        CHECK_INT(x[i].rc, ==, 0);
        CHECK_INT(x[i].resp.status, ==, 200);
        released += x[i].resp.body.data && strncmp(x[i].resp.body.data, "released", 8) == 0;
    }
    CHECK_INT(released, ==, 6);
    CHECK_INT(x[6].rc, ==, LH_EUNAVAIL);
    CHECK_CONTAINS(x[6].err.msg, "127.0.0.1:1");
    /* More requests than slots: queued, all done; the pool is reused. */
    struct lh_http_exchange y[20];
    memset(y, 0, sizeof(y));
    for (int i = 0; i < 20; i++) {
        y[i].req.url = url(&ts, "http", "/echo");
        y[i].req.body = "x";
        y[i].req.body_len = 1;
    }
    REQUIRE(lh_http_client_do_all(c, y, 20, &err) == 0);
    for (int i = 0; i < 20; i++)
        CHECK_INT(y[i].resp.status, ==, 201);
    struct lh_http_stats st;
    lh_http_server_stats(ts.srv, &st);
    CHECK_INT(st.connections_total, <=, 8 + 6);   /* connections were reused */
    for (int i = 0; i < 7; i++)
        lh_http_response_free(&x[i].resp);
    for (int i = 0; i < 20; i++)
        lh_http_response_free(&y[i].resp);
    lh_http_client_destroy(c);
    CHECK_INT(ht_stop(&ts), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}

TEST(client_tls13_and_mtls)
{
    const char *dir = lh_test_tmpdir();
    REQUIRE(ht_make_certs(dir) == 0);
    char cert[600], key[600], ca[600], ccert[600], ckey[600], other[600];
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(ccert, sizeof(ccert), "%s/client.pem", dir);
    snprintf(ckey, sizeof(ckey), "%s/client.key", dir);
    snprintf(other, sizeof(other), "%s/other-ca.pem", dir);
    struct ht_server ts;
    struct lh_http_server_config scfg = { 0 };
    scfg.tls.cert_file = cert;
    scfg.tls.key_file = key;
    scfg.tls.client_ca_file = ca;
    scfg.tls.client_auth = LH_HTTP_CLIENT_AUTH_REQUIRE;
    REQUIRE(ht_start(&ts, &scfg, setup, NULL) == 0);
    struct lh_err err = { 0 };
    struct lh_http_response resp = { 0 };
    struct lh_http_request req = { .url = url(&ts, "https", "/cn") };

    struct lh_http_client_config good = { .ca_file = ca, .cert_file = ccert, .key_file = ckey,
                                          .tls13 = 1 };
    struct lh_http_client *c = NULL;
    REQUIRE(lh_http_client_create(&good, &c, &err) == 0);
    REQUIRE(lh_http_client_do(c, &req, &resp, &err) == 0);
    CHECK_INT(resp.status, ==, 200);
    CHECK_STR(resp.body.data, "agent-7");
    lh_http_client_destroy(c);

    struct lh_http_client_config nocert = { .ca_file = ca };
    REQUIRE(lh_http_client_create(&nocert, &c, &err) == 0);
    CHECK(lh_http_client_do(c, &req, &resp, &err) < 0);
    lh_http_client_destroy(c);

    struct lh_http_client_config wrongca = { .ca_file = other, .cert_file = ccert,
                                             .key_file = ckey };
    REQUIRE(lh_http_client_create(&wrongca, &c, &err) == 0);
    CHECK_INT(lh_http_client_do(c, &req, &resp, &err), ==, LH_EIO);
    CHECK_CONTAINS(err.msg, "certificate");
    lh_http_client_destroy(c);

    struct lh_http_client_config halfcfg = { .cert_file = ccert };
    CHECK_INT(lh_http_client_create(&halfcfg, &c, &err), ==, LH_EINVAL);
    lh_http_response_free(&resp);
    CHECK_INT(ht_stop(&ts), ==, 0);
    CHECK_INT(ht_leak_check(), ==, 0);
}
