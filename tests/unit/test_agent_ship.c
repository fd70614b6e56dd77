/* Unit tests for the agent end to end (tail -> batches -> shipper -> acks ->
 * checkpoint) against a test collector: an lh_http server on 127.0.0.1 in a
 * thread that decodes every batch with the collector's own decoder, keeps
 * the Idempotency-Keys it accepted (a repeat is answered 200 and not
 * counted, like the real collector) and counts every line it received.
 * Cases: exactly-once delivery and checkpoint advance, 503 + Retry-After,
 * 429, failover, 400 naming a record (and 400 without one: split), collector
 * down -> disk buffer -> replay in order, a tiny buffer sampling INFO/DEBUG
 * exactly counted while WARN+ is kept, restart from the same state with the
 * same UUIDs, TLS 1.3 + mTLS, reload (bad config refused, new endpoint,
 * new tail section), masking, and refusing to tail its own log.
 *
 * Test lines are "L<seq> <LEVEL> ..." so the collector tallies per seq. */
#include "http_test_util.h"   /* OpenSSL first: its lhash defines lh_error */
#undef lh_error
#include "../lh_test.h"
#include "../../agent/agent.h"
#include "../../agent/checkpoint.h"
#include "../../collector/ingest.h"
#include "lh/codec.h"
#include "lh/log.h"
#include "lh/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXSEQ 20000
#define MAXREQ 4096

/* ---- the test collector ------------------------------------------------------ */

struct tcoll {
    struct ht_server hs;
    pthread_mutex_t mu;
    int port;
    /* behaviour */
    int fail_first;              /* answer the next N requests with fail_status */
    int fail_status;
    const char *fail_code;       /* the error code of those answers ("busy") */
    const char *retry_after;
    int fail_all;                /* answer every request with fail_status */
    const char *reject;          /* 400 for a record whose message contains this */
    int reject_no_index;         /* ... without naming it */
    /* observations */
    int requests;
    double t[MAXREQ];
    int status[MAXREQ];
    char key[MAXREQ][40];
    char accepted[MAXREQ][40];
    int naccepted;
    int dup_keys;
    int counts[MAXSEQ];
    int order[MAXSEQ];           /* seqs in the order they arrived */
    int norder;
    int lines;
    char token[64];
    char encoding[16];
    char client_cn[64];
    char last_raw[256];
    int bad_seen;                /* lines with `reject` delivered */
};

static int has_key(struct tcoll *c, const char *k)
{
    for (int i = 0; i < c->naccepted; i++)
        if (strcmp(c->accepted[i], k) == 0)
            return 1;
    return 0;
}

static void respond_json(struct lh_http_req *req, int status, const char *retry_after,
                         const char *body)
{
    struct lh_http_header h[2] = { { "Retry-After", retry_after }, { NULL, NULL } };
    lh_http_respond_json(req, status, retry_after ? h : NULL, body, strlen(body));
}

static void on_ingest(struct lh_http_req *req, void *arg)
{
    struct tcoll *c = arg;
    pthread_mutex_lock(&c->mu);
    int r = c->requests < MAXREQ ? c->requests : MAXREQ - 1;
    c->requests++;
    c->t[r] = ht_now();
    const char *key = lh_http_req_header(req, "Idempotency-Key");
    snprintf(c->key[r], sizeof(c->key[r]), "%s", key ? key : "");
    const char *tok = lh_http_req_header(req, "X-Log-Shipper-Token");
    snprintf(c->token, sizeof(c->token), "%s", tok ? tok : "");
    const char *enc = lh_http_req_header(req, "Content-Encoding");
    snprintf(c->encoding, sizeof(c->encoding), "%s", enc ? enc : "");
    const char *cn = lh_http_req_client_cn(req);
    if (cn)
        snprintf(c->client_cn, sizeof(c->client_cn), "%s", cn);
    if (c->fail_all || c->fail_first > 0) {
        if (c->fail_first > 0)
            c->fail_first--;
        c->status[r] = c->fail_status;
        pthread_mutex_unlock(&c->mu);
        char fb[128];
        snprintf(fb, sizeof(fb), "{\"error\":{\"code\":\"%s\"}}",
                 c->fail_code ? c->fail_code : "busy");
        respond_json(req, c->fail_status, c->retry_after, fb);
        return;
    }
    size_t len;
    const char *body = lh_http_req_body(req, &len);
    enum lh_codec codec = LH_CODEC_NONE;
    struct lh_err err = { 0 };
    if (enc)
        lh_codec_parse(enc, strlen(enc), &codec, &err);
    struct lh_buf json = LH_BUF_INIT;
    struct lh_codec_ctx *cx = NULL;
    lh_codec_ctx_create(&cx, &err);
    int rc = lh_codec_ctx_decode(cx, codec, body, len, 64u << 20, 0, &json, &err);
    lh_codec_ctx_destroy(cx);
    struct lh_arena ar = LH_ARENA_INIT;
    struct lh_ingest_batch b;
    struct lh_ingest_error e;
    struct lh_ingest_limits lim = { 100000, 1 << 20, 100, 64, 1 };
    struct lh_uuid u = { { 0 } };
    struct lh_ingest_context ctx = { "t", u.b, lh_time_now_ns(), "h" };
    if (rc == 0)
        rc = lh_ingest_decode_json(json.data, json.len, &lim, &ctx, &ar, &b, &e);
    if (rc < 0) {
        c->status[r] = 400;
        pthread_mutex_unlock(&c->mu);
        respond_json(req, 400, NULL, "{\"error\":{\"code\":\"bad_body\"}}");
        lh_buf_free(&json);
        lh_arena_free(&ar);
        return;
    }
    if (c->reject)
        for (size_t i = 0; i < b.n; i++)
            if (b.events[i].raw && strstr(b.events[i].raw, c->reject)) {
                char msg[256];
                if (c->reject_no_index)
                    snprintf(msg, sizeof(msg), "{\"error\":{\"code\":\"invalid\"}}");
                else
                    snprintf(msg, sizeof(msg),
                             "{\"error\":{\"code\":\"invalid\",\"message\":\"bad value\","
                             "\"field\":\"log_records[%zu].raw_message\",\"index\":%zu}}", i, i);
                c->status[r] = 400;
                pthread_mutex_unlock(&c->mu);
                respond_json(req, 400, NULL, msg);
                lh_buf_free(&json);
                lh_arena_free(&ar);
                return;
            }
    c->status[r] = 200;
    if (key && has_key(c, key)) {
        c->dup_keys++;
    } else {
        if (key && c->naccepted < MAXREQ)
            snprintf(c->accepted[c->naccepted++], 40, "%s", key);
        for (size_t i = 0; i < b.n; i++) {
            const char *raw = b.events[i].raw ? b.events[i].raw : "";
            snprintf(c->last_raw, sizeof(c->last_raw), "%s", raw);
            c->lines++;
            if (c->reject && strstr(raw, c->reject))
                c->bad_seen++;
            int seq;
            if (sscanf(raw, "L%d", &seq) == 1 && seq >= 0 && seq < MAXSEQ) {
                c->counts[seq]++;
                if (c->norder < MAXSEQ)
                    c->order[c->norder++] = seq;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    char ans[128];
    snprintf(ans, sizeof(ans), "{\"accepted\":%zu,\"batch_id\":\"%s\"}", b.n, key ? key : "");
    respond_json(req, 200, NULL, ans);
    lh_buf_free(&json);
    lh_arena_free(&ar);
}

static void tc_setup(struct lh_http_server *srv, void *arg)
{
    lh_http_server_route(srv, "POST", "/v1/logs/ingest", on_ingest, arg, NULL);
}

/* Starts the collector on port (0: any); cert/key/ca: TLS with client certs required. */
static void tc_start(struct tcoll *c, int port, const char *dir_certs)
{
    char listen[64], cert[600], key[600], ca[600];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    struct lh_http_server_config cfg = { .listen = listen };
    if (dir_certs) {
        snprintf(cert, sizeof(cert), "%s/server.pem", dir_certs);
        snprintf(key, sizeof(key), "%s/server.key", dir_certs);
        snprintf(ca, sizeof(ca), "%s/ca.pem", dir_certs);
        cfg.tls.cert_file = cert;
        cfg.tls.key_file = key;
        cfg.tls.client_ca_file = ca;
        cfg.tls.client_auth = LH_HTTP_CLIENT_AUTH_REQUIRE;
    }
    REQUIRE(ht_start(&c->hs, &cfg, tc_setup, c) == 0);
    c->port = c->hs.port;
    lh_log_set_level(LH_LOG_OFF);
}

static void tc_stop(struct tcoll *c)
{
    ht_stop(&c->hs);
}

static struct tcoll *tc_new(void)
{
    struct tcoll *c = calloc(1, sizeof(*c));
    REQUIRE(c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void tc_free(struct tcoll *c)
{
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* A port nothing listens on (bound once, then released). */
static int free_port(void)
{
    struct tcoll *c = tc_new();
    tc_start(c, 0, NULL);
    int p = c->port;
    tc_stop(c);
    tc_free(c);
    return p;
}

/* ---- the agent under test ------------------------------------------------------ */

struct env {
    char dir[256], logs[300], state[300];
    uv_loop_t loop;
    struct lh_agent_config cfg;
    int have_cfg;
    struct lh_agent *a;
};

static void env_init(struct env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "%s", lh_test_tmpdir());
    snprintf(e->logs, sizeof(e->logs), "%s/logs", e->dir);
    snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
    REQUIRE(mkdir(e->logs, 0777) == 0);
    REQUIRE(uv_loop_init(&e->loop) == 0);
    lh_log_set_level(LH_LOG_OFF);
}

/* The YAML used by every test; extra is appended to the ship: section's
 * level (two spaces indent) and top is appended at the top level. */
static int load_cfg(struct env *e, struct lh_agent_config *cfg, const char *endpoints,
                    const char *ship_extra, const char *top, struct lh_err *err)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             "tail:\n"
             "  include: ['%s/*.log']\n"
             "  checkpoint: %s/checkpoint.json\n"
             "  scan_interval: 50ms\n"
             "  rotate_wait: 0s\n"
             "batch:\n"
             "  max_age: 30ms\n"
             "  max_records: 200\n"
             "ship:\n"
             "  endpoints: [%s]\n"
             "  token: test-token\n"
             "  backoff_base: 20ms\n"
             "  backoff_max: 200ms\n"
             "  spill_after: 100ms\n"
             "  connect_timeout: 1s\n"
             "  timeout: 5s\n"
             "%s"
             "buffer:\n"
             "  dir: %s/buffer\n"
             "host_id: test-host\n"
             "checkpoint_interval: 20ms\n"
             "%s",
             e->logs, e->state, endpoints, ship_extra ? ship_extra : "", e->state,
             top ? top : "");
    memset(cfg, 0, sizeof(*cfg));
    return lh_conf_load_string("agent.yaml", yaml, strlen(yaml), lh_agent_opts, cfg, err);
}

static void start_agent(struct env *e, const char *endpoints, const char *ship_extra,
                        const char *top)
{
    struct lh_err err = { 0 };
    mkdir(e->state, 0777);
    if (!e->have_cfg) {
        int rc = load_cfg(e, &e->cfg, endpoints, ship_extra, top, &err);
        if (rc < 0)
            fprintf(stderr, "    config: %s\n", err.msg);
        REQUIRE(rc == 0);
        e->have_cfg = 1;
    }
    int rc = lh_agent_create(&e->loop, &e->cfg, NULL, NULL, &e->a, &err);
    if (rc < 0)
        fprintf(stderr, "    lh_agent_create: %s\n", err.msg);
    REQUIRE(rc == 0);
}

static void stop_agent(struct env *e)
{
    lh_agent_destroy(e->a);
    e->a = NULL;
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

static void env_free(struct env *e)
{
    if (e->a)
        stop_agent(e);
    CHECK_INT(uv_loop_close(&e->loop), ==, 0);
    if (e->have_cfg)
        lh_conf_free(lh_agent_opts, &e->cfg);
}

typedef int (*pred_fn)(struct env *e, void *arg);

/* Runs the agent's loop until pred holds or timeout_ms passed. */
static int run_until(struct env *e, pred_fn pred, void *arg, int timeout_ms)
{
    double end = ht_now() + timeout_ms / 1000.0;
    while (ht_now() < end) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        if (pred(e, arg))
            return 1;
        ht_sleep_ms(2);
    }
    return pred(e, arg);
}

static int got_lines(struct env *e, void *arg)
{
    (void)e;
    struct tcoll *c = ((void **)arg)[0];
    int want = (int)(intptr_t)((void **)arg)[1];
    pthread_mutex_lock(&c->mu);
    int n = c->lines;
    pthread_mutex_unlock(&c->mu);
    return n >= want;
}

static int wait_lines(struct env *e, struct tcoll *c, int want, int timeout_ms)
{
    void *arg[2] = { c, (void *)(intptr_t)want };
    return run_until(e, got_lines, arg, timeout_ms);
}

static int all_acked(struct env *e, void *arg)
{
    struct lh_ledger_file f;
    lh_ledger_get(lh_agent_ledger(e->a), NULL, &f);
    struct lh_agent_stats st;
    lh_agent_get_stats(e->a, &st);
    return f.lines_acked >= (uint64_t)(intptr_t)arg && st.pending == 0;
}

static int nothing_pending(struct env *e, void *arg)
{
    struct lh_ledger_file f;
    lh_ledger_get(lh_agent_ledger(e->a), NULL, &f);
    struct lh_agent_stats st;
    lh_agent_get_stats(e->a, &st);
    return f.lines_read >= (uint64_t)(intptr_t)arg && st.pending == 0;
}

/* The disk buffer is empty (write-ahead files go once delivered and
 * included in a saved checkpoint). */
static int buffer_drained(struct env *e, void *arg)
{
    (void)arg;
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e->a), &st);
    return st.buffered == 0;
}

/* Appends lines seq [from, to) to logs/name; level by seq when levels. */
static void write_lines(struct env *e, const char *name, int from, int to, int levels,
                        const char *extra_at, int extra_seq)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", e->logs, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    REQUIRE(fd >= 0);
    struct lh_buf b = LH_BUF_INIT;
    static const char *lv[8] = { "INFO", "DEBUG", "INFO", "DEBUG", "INFO", "DEBUG", "WARN",
                                 "ERROR" };
    for (int i = from; i < to; i++)
        lh_buf_printf(&b, "L%d %s payload %s padding-padding-padding-padding-padding\n", i,
                      levels ? lv[i % 8] : "INFO",
                      extra_at && i == extra_seq ? extra_at : "-");
    REQUIRE(write(fd, b.data, b.len) == (ssize_t)b.len);
    close(fd);
    lh_buf_free(&b);
}

/* Every seq in [from, to) arrived exactly once. */
static void check_exactly_once(struct tcoll *c, int from, int to, int except)
{
    int missing = 0, dup = 0, first_bad = -1;
    pthread_mutex_lock(&c->mu);
    for (int i = from; i < to; i++) {
        if (i == except)
            continue;
        if (c->counts[i] == 0)
            missing++;
        if (c->counts[i] > 1)
            dup++;
        if (c->counts[i] != 1 && first_bad < 0)
            first_bad = i;
    }
    pthread_mutex_unlock(&c->mu);
    if (missing || dup)
        lh_test_fail(__FILE__, __LINE__, "%d missing, %d duplicated (first: L%d)", missing, dup,
                     first_bad);
}

static char *url_of(struct tcoll *c, char *buf, size_t n, const char *scheme)
{
    snprintf(buf, n, "'%s://127.0.0.1:%d'", scheme, c->port);
    return buf;
}

/* ---- tests ------------------------------------------------------------------------ */

TEST(agent_ship_delivers_exactly_once_and_checkpoints)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    tc_start(c, 0, NULL);
    char url[128];
    write_lines(&e, "a.log", 0, 600, 0, NULL, 0);
    write_lines(&e, "b.log", 600, 1000, 0, NULL, 0);
    start_agent(&e, url_of(c, url, sizeof(url), "http"), NULL, NULL);
    REQUIRE(wait_lines(&e, c, 1000, 10000));
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)1000, 5000));
    write_lines(&e, "a.log", 1000, 1200, 0, NULL, 0);
    REQUIRE(wait_lines(&e, c, 1200, 10000));
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)1200, 5000));
    ht_sleep_ms(50);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    check_exactly_once(c, 0, 1200, -1);
    CHECK_STR(c->token, "test-token");
    CHECK_STR(c->encoding, "gzip");
    struct lh_uuid u;
    CHECK(strlen(c->key[0]) == 36 && lh_uuid_parse(c->key[0], 36, &u, NULL) == 0);
    CHECK_INT(c->dup_keys, ==, 0);

    /* Ledger: per file read == acked; and in /metrics. */
    struct lh_ledger_file f;
    char pa[600], pb[600];
    snprintf(pa, sizeof(pa), "%s/a.log", e.logs);
    snprintf(pb, sizeof(pb), "%s/b.log", e.logs);
    REQUIRE(lh_ledger_get(lh_agent_ledger(e.a), pa, &f) == 0);
    CHECK_INT(f.lines_read, ==, 800);
    CHECK_INT(f.lines_acked, ==, 800);
    REQUIRE(run_until(&e, buffer_drained, NULL, 5000));
    struct lh_buf m = LH_BUF_INIT;
    REQUIRE(lh_agent_render_metrics(e.a, &m) == 0);
    CHECK_CONTAINS(m.data, "loghaul_agent_lines_acked_total 1200");
    CHECK_CONTAINS(m.data, "loghaul_agent_requests_total{endpoint=");
    CHECK_CONTAINS(m.data, "loghaul_agent_buffer_bytes 0");
    lh_buf_free(&m);

    /* The checkpoint holds every file at its end. */
    stop_agent(&e);
    struct lh_ckpt_entry *v;
    size_t n;
    char ck[600];
    snprintf(ck, sizeof(ck), "%s/checkpoint.json", e.state);
    REQUIRE(lh_ckpt_load(ck, &v, &n, NULL) == 0);
    CHECK_INT(n, ==, 2);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        REQUIRE(stat(v[i].path, &st) == 0);
        CHECK_INT(v[i].offset, ==, st.st_size);
    }
    lh_ckpt_free(v, n);
    /* A restart sends nothing again. */
    int before = c->lines;
    start_agent(&e, NULL, NULL, NULL);
    write_lines(&e, "b.log", 1200, 1210, 0, NULL, 0);
    REQUIRE(wait_lines(&e, c, before + 10, 5000));
    ht_sleep_ms(100);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    CHECK_INT(c->lines, ==, before + 10);
    check_exactly_once(c, 0, 1210, -1);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

/* 100 lines through an agent (one request in flight) to c, which first
 * answers its `fail_first` requests with `fail_status`: all arrive once. */
static void ship_100_through_failures(struct env *e, struct tcoll *c)
{
    tc_start(c, 0, NULL);
    char url[128];
    write_lines(e, "a.log", 0, 100, 0, NULL, 0);
    start_agent(e, url_of(c, url, sizeof(url), "http"), "  in_flight: 1\n", NULL);
    REQUIRE(wait_lines(e, c, 100, 10000));
    REQUIRE(run_until(e, all_acked, (void *)(intptr_t)100, 5000));
    check_exactly_once(c, 0, 100, -1);
}

static void retry_case(int status, const char *retry_after, int fails, double min_gap)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    c->fail_first = fails;
    c->fail_status = status;
    c->retry_after = retry_after;
    ship_100_through_failures(&e, c);
    pthread_mutex_lock(&c->mu);
    REQUIRE_INT(c->requests, >=, fails + 1);
    for (int i = 0; i < fails; i++) {
        CHECK_INT(c->status[i], ==, status);
        /* Every retry carries the same Idempotency-Key. */
        CHECK_STR(c->key[i + 1], c->key[0]);
    }
    CHECK_INT(c->status[fails], ==, 200);
    double gap = c->t[fails] - c->t[fails - 1];
    pthread_mutex_unlock(&c->mu);
    if (gap < min_gap)
        lh_test_fail(__FILE__, __LINE__, "retried after %.3f s, Retry-After asked %.3f s", gap,
                     min_gap);
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e.a), &st);
    CHECK_INT(st.failures, ==, fails);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_503_retry_after_honoured)
{
    retry_case(503, "1", 1, 0.95);
}

TEST(agent_ship_429_retried_with_same_key)
{
    retry_case(429, "0", 3, 0.0);
}

/* A collector that says the key was used for other records: the batch goes
 * again under a new key, whole (nothing split off or dropped). */
TEST(agent_ship_reused_key_resent_under_new_key)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    c->fail_first = 1;
    c->fail_status = 422;
    c->fail_code = "idempotency_key_reused";
    ship_100_through_failures(&e, c);
    pthread_mutex_lock(&c->mu);
    REQUIRE_INT(c->requests, >=, 2);
    CHECK_INT(c->status[0], ==, 422);
    CHECK_INT(c->status[1], ==, 200);
    CHECK(c->key[0][0] && c->key[1][0] && strcmp(c->key[0], c->key[1]) != 0);
    pthread_mutex_unlock(&c->mu);
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e.a), &st);
    CHECK_INT(st.rejected, ==, 0);
    CHECK_INT(st.splits, ==, 0);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_failover_to_second_endpoint)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    tc_start(c, 0, NULL);
    char eps[256];
    snprintf(eps, sizeof(eps), "'http://127.0.0.1:%d', 'http://127.0.0.1:%d'", free_port(),
             c->port);
    write_lines(&e, "a.log", 0, 500, 0, NULL, 0);
    start_agent(&e, eps, NULL, NULL);
    REQUIRE(wait_lines(&e, c, 500, 10000));
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)500, 5000));
    check_exactly_once(c, 0, 500, -1);
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e.a), &st);
    CHECK_INT(st.failures, >=, 1);
    CHECK_INT(st.spilled, ==, 0);   /* the second endpoint was up all along */
    struct lh_buf m = LH_BUF_INIT;
    REQUIRE(lh_agent_render_metrics(e.a, &m) == 0);
    CHECK_CONTAINS(m.data, "code=\"error\"} ");
    lh_buf_free(&m);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

static void reject_case(int no_index)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    c->reject = "BADRECORD";
    c->reject_no_index = no_index;
    tc_start(c, 0, NULL);
    char url[128];
    write_lines(&e, "a.log", 0, 300, 0, "BADRECORD", 137);
    start_agent(&e, url_of(c, url, sizeof(url), "http"), "  in_flight: 1\n", NULL);
    REQUIRE(wait_lines(&e, c, 299, 10000));
    struct lh_ledger *l = lh_agent_ledger(e.a);
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)299, 5000));
    check_exactly_once(c, 0, 300, 137);
    CHECK_INT(c->counts[137], ==, 0);
    CHECK_INT(c->bad_seen, ==, 0);
    char pa[600];
    snprintf(pa, sizeof(pa), "%s/a.log", e.logs);
    CHECK_INT(lh_ledger_dropped(l, pa, LH_DROP_REJECTED), ==, 1);
    struct lh_ledger_file f;
    REQUIRE(lh_ledger_get(l, pa, &f) == 0);
    CHECK_INT(f.lines_read, ==, 300);
    CHECK_INT(f.lines_acked, ==, 299);
    CHECK_INT(f.lines_dropped, ==, 1);
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e.a), &st);
    CHECK_INT(st.rejected, ==, 1);
    if (no_index)
        CHECK_INT(st.splits, >=, 2);
    else
        CHECK_INT(st.splits, ==, 0);
    /* The checkpoint went past the refused record: nothing is re-sent. */
    stop_agent(&e);
    int before = c->lines;
    start_agent(&e, NULL, NULL, NULL);
    write_lines(&e, "a.log", 300, 310, 0, NULL, 0);
    REQUIRE(wait_lines(&e, c, before + 10, 5000));
    ht_sleep_ms(100);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    CHECK_INT(c->lines, ==, before + 10);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_400_drops_named_record_rest_delivered)
{
    reject_case(0);
}

TEST(agent_ship_400_without_index_splits_until_found)
{
    reject_case(1);
}

static int spilled_at_least(struct env *e, void *arg)
{
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e->a), &st);
    return st.spilled >= (uint64_t)(intptr_t)arg;
}

TEST(agent_ship_collector_down_buffer_then_replay_in_order)
{
    struct env e;
    env_init(&e);
    int port = free_port();
    char url[128];
    snprintf(url, sizeof(url), "'http://127.0.0.1:%d'", port);
    write_lines(&e, "a.log", 0, 3000, 0, NULL, 0);
    start_agent(&e, url, "  in_flight: 1\n", NULL);
    /* Everything read, durable on disk, checkpoint advanced. */
    REQUIRE(run_until(&e, nothing_pending, (void *)(intptr_t)3000, 10000));
    struct lh_ship_stats st;
    lh_ship_get_stats(lh_agent_ship(e.a), &st);
    CHECK_INT(st.spilled, >=, 10);
    CHECK_INT(st.delivered, ==, 0);
    struct lh_buf m = LH_BUF_INIT;
    REQUIRE(lh_agent_render_metrics(e.a, &m) == 0);
    CHECK_CONTAINS(m.data, "loghaul_agent_collector_up 0");
    lh_buf_free(&m);
    /* The collector comes back on the same port. */
    struct tcoll *c = tc_new();
    tc_start(c, port, NULL);
    write_lines(&e, "a.log", 3000, 3500, 0, NULL, 0);
    REQUIRE(wait_lines(&e, c, 3500, 20000));
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)3500, 5000));
    check_exactly_once(c, 0, 3500, -1);
    /* In order: one request at a time, oldest batch first. */
    int inversions = 0;
    for (int i = 1; i < c->norder; i++)
        inversions += c->order[i] < c->order[i - 1];
    CHECK_INT(inversions, ==, 0);
    lh_ship_get_stats(lh_agent_ship(e.a), &st);
    CHECK_INT(st.replayed, ==, st.spilled);
    REQUIRE(run_until(&e, buffer_drained, NULL, 5000));
    m = (struct lh_buf)LH_BUF_INIT;
    REQUIRE(lh_agent_render_metrics(e.a, &m) == 0);
    CHECK_CONTAINS(m.data, "loghaul_agent_buffer_batches 0");
    lh_buf_free(&m);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_tiny_buffer_samples_low_levels_keeps_warn)
{
    struct env e;
    env_init(&e);
    int port = free_port();
    char url[128];
    snprintf(url, sizeof(url), "'http://127.0.0.1:%d'", port);
    /* 4000 lines, 3/4 INFO or DEBUG, 1/4 WARN or ERROR, ~230 bytes each as
     * JSON: ~900 KB of uncompressed batches for a 512 KiB buffer. */
    const int N = 4000;
    write_lines(&e, "a.log", 0, N, 1, NULL, 0);
    struct lh_err err = { 0 };
    REQUIRE(load_cfg(&e, &e.cfg, url, "  in_flight: 1\n", NULL, &err) == 0);
    e.cfg.buffer.max_bytes = 512 * 1024;
    e.cfg.batch.compression = LH_BATCH_NONE;
    e.cfg.batch.max_records = 50;
    e.have_cfg = 1;
    start_agent(&e, NULL, NULL, NULL);
    REQUIRE(run_until(&e, nothing_pending, (void *)(intptr_t)N, 15000));
    struct lh_ledger *l = lh_agent_ledger(e.a);
    uint64_t sampled = lh_ledger_dropped(l, NULL, LH_DROP_SAMPLED);
    uint64_t full = lh_ledger_dropped(l, NULL, LH_DROP_BUFFER_FULL);
    CHECK(sampled > 0);
    struct tcoll *c = tc_new();
    tc_start(c, port, NULL);
    struct lh_ledger_file f;
    lh_ledger_get(l, NULL, &f);
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)(N - (int)f.lines_dropped), 20000));
    lh_ledger_get(l, NULL, &f);
    /* Exact accounting: what arrived + what was dropped (by reason) == read. */
    int info_got = 0, warn_got = 0, dup = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < N; i++) {
        dup += c->counts[i] > 1;
        if (i % 8 < 6)
            info_got += c->counts[i];
        else
            warn_got += c->counts[i];
    }
    int lines = c->lines;
    pthread_mutex_unlock(&c->mu);
    CHECK_INT(dup, ==, 0);
    CHECK_INT(f.lines_read, ==, N);
    CHECK_INT(lines + (int)f.lines_dropped, ==, N);
    CHECK_INT(f.lines_dropped, ==, sampled + full);
    CHECK_INT(f.lines_acked, ==, lines);
    /* Sampling took INFO/DEBUG only; WARN/ERROR all arrived (the buffer had
     * room for them: nothing was dropped for buffer_full). */
    CHECK_INT(full, ==, 0);
    CHECK_INT(warn_got, ==, N / 4);
    CHECK_INT(info_got + (int)sampled, ==, 3 * N / 4);
    CHECK(info_got > 0);   /* sampled, not all dropped */
    struct lh_buf m = LH_BUF_INIT;
    REQUIRE(lh_agent_render_metrics(e.a, &m) == 0);
    char want[128];
    snprintf(want, sizeof(want), "loghaul_agent_lines_dropped_total{reason=\"sampled\"} %llu",
             (unsigned long long)sampled);
    CHECK_CONTAINS(m.data, want);
    lh_buf_free(&m);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_restart_replays_buffer_with_same_uuids)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    c->fail_all = 1;
    c->fail_status = 503;
    tc_start(c, 0, NULL);
    char url[128];
    write_lines(&e, "a.log", 0, 1000, 0, NULL, 0);
    start_agent(&e, url_of(c, url, sizeof(url), "http"), "  in_flight: 1\n", NULL);
    REQUIRE(run_until(&e, nothing_pending, (void *)(intptr_t)1000, 10000));
    write_lines(&e, "a.log", 1000, 1100, 0, NULL, 0);
    REQUIRE(run_until(&e, spilled_at_least, (void *)(intptr_t)1, 5000));
    stop_agent(&e);   /* clean stop: what is in memory goes to the buffer */
    /* The keys the collector refused so far (each at least once). */
    pthread_mutex_lock(&c->mu);
    int nfail = c->requests < MAXREQ ? c->requests : MAXREQ;
    char (*seen)[40] = calloc((size_t)nfail, 40);
    REQUIRE(seen);
    for (int i = 0; i < nfail; i++)
        memcpy(seen[i], c->key[i], 40);
    c->fail_all = 0;
    pthread_mutex_unlock(&c->mu);
    write_lines(&e, "a.log", 1100, 1200, 0, NULL, 0);
    start_agent(&e, NULL, NULL, NULL);
    REQUIRE(wait_lines(&e, c, 1200, 20000));
    REQUIRE(run_until(&e, all_acked, (void *)(intptr_t)100, 5000));
    ht_sleep_ms(100);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    check_exactly_once(c, 0, 1200, -1);
    /* Every batch refused before the restart was accepted after it under
     * the same Idempotency-Key. */
    pthread_mutex_lock(&c->mu);
    int missing = 0;
    for (int i = 0; i < nfail; i++)
        missing += !has_key(c, seen[i]);
    pthread_mutex_unlock(&c->mu);
    CHECK_INT(missing, ==, 0);
    free(seen);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_tls13_mtls)
{
    struct env e;
    env_init(&e);
    char certs[400];
    snprintf(certs, sizeof(certs), "%s/certs", e.dir);
    REQUIRE(mkdir(certs, 0700) == 0);
    REQUIRE(ht_make_certs(certs) == 0);
    struct tcoll *c = tc_new();
    tc_start(c, 0, certs);
    char url[128], tls[1200];
    snprintf(url, sizeof(url), "'https://127.0.0.1:%d'", c->port);
    snprintf(tls, sizeof(tls),
             "  tls:\n    ca: %s/ca.pem\n    cert: %s/client.pem\n    key: %s/client.key\n",
             certs, certs, certs);
    write_lines(&e, "a.log", 0, 300, 0, NULL, 0);
    start_agent(&e, url, tls, NULL);
    REQUIRE(wait_lines(&e, c, 300, 10000));
    check_exactly_once(c, 0, 300, -1);
    CHECK_STR(c->client_cn, "agent-7");

    /* Without a client certificate the collector refuses the handshake:
     * nothing is delivered, the batches wait (here: in the disk buffer). */
    struct lh_agent_config bad;
    struct lh_err err = { 0 };
    snprintf(tls, sizeof(tls), "  tls:\n    ca: %s/ca.pem\n", certs);
    REQUIRE(load_cfg(&e, &bad, url, tls, NULL, &err) == 0);
    REQUIRE(lh_agent_reload(e.a, &bad, NULL, &err) == 0);
    lh_conf_free(lh_agent_opts, &e.cfg);
    e.cfg = bad;
    ht_sleep_ms(100);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    write_lines(&e, "a.log", 300, 350, 0, NULL, 0);
    REQUIRE(run_until(&e, spilled_at_least, (void *)(intptr_t)1, 5000));
    CHECK_INT(c->lines, ==, 300);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_reload_refuses_bad_and_switches_endpoint)
{
    struct env e;
    env_init(&e);
    struct tcoll *c1 = tc_new(), *c2 = tc_new();
    tc_start(c1, 0, NULL);
    tc_start(c2, 0, NULL);
    char url[128];
    write_lines(&e, "a.log", 0, 100, 0, NULL, 0);
    start_agent(&e, url_of(c1, url, sizeof(url), "http"), NULL, NULL);
    REQUIRE(wait_lines(&e, c1, 100, 10000));

    /* A bad config (unreadable client certificate) is refused. */
    struct lh_agent_config bad;
    struct lh_err err = { 0 };
    REQUIRE(load_cfg(&e, &bad, url_of(c2, url, sizeof(url), "http"),
                     "  tls:\n    cert: /nonexistent/c.pem\n    key: /nonexistent/c.key\n", NULL,
                     &err) == 0);
    CHECK(lh_agent_reload(e.a, &bad, NULL, &err) < 0);
    CHECK_CONTAINS(err.msg, "/nonexistent/c.pem");
    lh_conf_free(lh_agent_opts, &bad);
    write_lines(&e, "a.log", 100, 200, 0, NULL, 0);
    REQUIRE(wait_lines(&e, c1, 200, 10000));
    CHECK_INT(c2->lines, ==, 0);

    /* A good one moves shipping to the second collector, and a changed
     * tail section (a second glob) restarts the tail without losing place. */
    struct lh_agent_config good;
    char top[600];
    snprintf(top, sizeof(top), "region: eu-2\n");
    REQUIRE(load_cfg(&e, &good, url_of(c2, url, sizeof(url), "http"), NULL, top, &err) == 0);
    char extra[600];
    snprintf(extra, sizeof(extra), "%s/*.txt", e.logs);
    char **v = realloc(good.tail.include.v, 2 * sizeof(char *));
    REQUIRE(v);
    good.tail.include.v = v;
    v[1] = strdup(extra);
    good.tail.include.n = 2;
    REQUIRE(lh_agent_reload(e.a, &good, NULL, &err) == 0);
    lh_conf_free(lh_agent_opts, &e.cfg);
    e.cfg = good;
    write_lines(&e, "a.log", 200, 300, 0, NULL, 0);
    write_lines(&e, "b.txt", 300, 350, 0, NULL, 0);
    REQUIRE(wait_lines(&e, c2, 150, 10000));
    ht_sleep_ms(100);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    CHECK_INT(c1->lines + c2->lines, ==, 350);
    for (int i = 0; i < 350; i++)
        if (c1->counts[i] + c2->counts[i] != 1)
            lh_test_fail(__FILE__, __LINE__, "L%d arrived %d times", i,
                         c1->counts[i] + c2->counts[i]);
    struct lh_agent_stats st;
    lh_agent_get_stats(e.a, &st);
    CHECK_INT(st.reloads, ==, 1);
    env_free(&e);
    tc_stop(c1);
    tc_stop(c2);
    tc_free(c1);
    tc_free(c2);
}

TEST(agent_ship_masks_at_the_edge)
{
    struct env e;
    env_init(&e);
    struct tcoll *c = tc_new();
    tc_start(c, 0, NULL);
    char url[128];
    write_lines(&e, "a.log", 0, 10, 0, "mail jane.doe@example.com card 4111 1111 1111 1111", 9);
    start_agent(&e, url_of(c, url, sizeof(url), "http"), NULL, "mask:\n  enabled: true\n");
    REQUIRE(wait_lines(&e, c, 10, 10000));
    CHECK_CONTAINS(c->last_raw, "mail [EMAIL] card [CARD]");
    CHECK(!strstr(c->last_raw, "jane.doe"));
    struct lh_agent_stats st;
    lh_agent_get_stats(e.a, &st);
    CHECK_INT(st.masked, ==, 2);
    env_free(&e);
    tc_stop(c);
    tc_free(c);
}

TEST(agent_ship_refuses_to_tail_its_own_output)
{
    struct env e;
    env_init(&e);
    struct lh_agent_config cfg;
    struct lh_err err = { 0 };
    REQUIRE(load_cfg(&e, &cfg, "'http://127.0.0.1:1'", NULL, NULL, &err) == 0);
    char own[600];
    snprintf(own, sizeof(own), "%s/agent.log", e.logs);
    CHECK_INT(lh_agent_config_check(&cfg, own, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "its own log file");
    CHECK_INT(lh_agent_config_check(&cfg, NULL, &err), ==, 0);
    /* An exclude makes it fine. */
    char *x = strdup("agent.log");
    cfg.tail.exclude.v = calloc(1, sizeof(char *));
    REQUIRE(cfg.tail.exclude.v);
    cfg.tail.exclude.v[0] = x;
    cfg.tail.exclude.n = 1;
    CHECK_INT(lh_agent_config_check(&cfg, own, &err), ==, 0);
    lh_conf_free(lh_agent_opts, &cfg);
    CHECK_INT(uv_loop_close(&e.loop), ==, 0);
}
