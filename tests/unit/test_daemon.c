/* Unit tests for daemon.c: a small daemon run through lh_daemon_main in a
 * child process, driven over HTTP and with signals. */
#include "../lh_test.h"
#include "http_test_util.h"
#include "lh/daemon.h"

#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

struct testd_config {
    struct lh_daemon_common common;
    char *greeting;
    int64_t answer;
};

static const struct lh_opt testd_opts[] = {
    LH_DAEMON_COMMON_OPTS(struct testd_config, common),
    { .type = LH_OPT_STR, .key = "greeting", .def = "hello",
      .offset = offsetof(struct testd_config, greeting), .help = "what GET /greeting says" },
    { .type = LH_OPT_INT, .key = "answer", .def = "42",
      .offset = offsetof(struct testd_config, answer), .help = "a number, at least 0" },
    { 0 }
};

struct testd {
    const struct testd_config *cfg;
    uv_timer_t flush;          /* stands for work finished during shutdown */
    int marker_fd;
};

static int g_port_fd = -1;     /* the child writes its port here */
static int g_marker_fd = -1;   /* ...and "shutdown", "destroyed" here */

static int testd_validate(const void *cfg, struct lh_err *err)
{
    const struct testd_config *c = cfg;
    if (c->answer < 0)
        return lh_err_set(err, LH_EINVAL, "answer: must be at least 0, got %lld",
                          (long long)c->answer);
    return 0;
}

static void h_greeting(struct lh_http_req *req, void *arg)
{
    struct testd *t = arg;
    lh_http_respond(req, 200, NULL, t->cfg->greeting, strlen(t->cfg->greeting));
}

static void slow_work(struct lh_http_req *req, void *arg)
{
    (void)req;
    (void)arg;
    ht_sleep_ms(300);
}

static void slow_done(struct lh_http_req *req, int status, void *arg)
{
    (void)status;
    (void)arg;
    lh_http_respond(req, 200, NULL, "finished", 8);
}

static void h_slow(struct lh_http_req *req, void *arg)
{
    (void)arg;
    if (lh_http_defer(req, slow_work, slow_done, NULL) != 0)
        lh_http_respond(req, 500, NULL, NULL, 0);
}

static void on_flush(uv_timer_t *tm);

static int testd_init(struct lh_daemon *d, const void *cfg, void **state, struct lh_err *err)
{
    struct testd *t = calloc(1, sizeof(*t));
    if (!t)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    t->cfg = cfg;
    t->marker_fd = g_marker_fd;
    uv_timer_init(lh_daemon_loop(d), &t->flush);
    t->flush.data = t;
    int rc = lh_http_server_route(lh_daemon_http(d), "GET", "/greeting", h_greeting, t, err);
    if (rc == 0)
        rc = lh_http_server_route(lh_daemon_http(d), "GET", "/slow", h_slow, t, err);
    lh_counter_add(lh_counter_get(lh_daemon_metrics(d), "testd_started_total", "Starts.", NULL),
                   1);
    *state = t;
    if (strcmp(t->cfg->greeting, "failinit") == 0) {
        uv_timer_start(&t->flush, on_flush, 60000, 0);   /* a handle left running */
        return lh_err_set(err, LH_EUNAVAIL, "cannot start: told to fail");
    }
    char port[16];
    int n = snprintf(port, sizeof(port), "%d\n", lh_http_server_port(lh_daemon_http(d)));
    if (write(g_port_fd, port, (size_t)n) != n)
        return lh_err_set(err, LH_EIO, "cannot report the port");
    return rc;
}

static int testd_reload(struct lh_daemon *d, void *state, const void *ncfg, struct lh_err *err)
{
    (void)d;
    struct testd *t = state;
    const struct testd_config *c = ncfg;
    if (strcmp(c->greeting, "refuse") == 0)
        return lh_err_set(err, LH_EINVAL, "greeting: refused");
    t->cfg = c;
    return 0;
}

static void on_flush_closed(uv_handle_t *h)
{
    struct testd *t = h->data;
    if (t->marker_fd >= 0 && write(t->marker_fd, "shutdown\n", 9) != 9)
        abort();
}

static void on_flush(uv_timer_t *tm)
{
    if (!uv_is_closing((uv_handle_t *)tm))
        uv_close((uv_handle_t *)tm, on_flush_closed);
}

static void testd_shutdown(struct lh_daemon *d, void *state)
{
    (void)d;
    struct testd *t = state;
    uv_timer_start(&t->flush, on_flush, 100, 0);
}

static void testd_destroy(void *state)
{
    struct testd *t = state;
    if (t->marker_fd >= 0 && write(t->marker_fd, "destroyed\n", 10) != 10)
        abort();
    free(t);
}

static int testd_ready(void *state, struct lh_buf *reason)
{
    struct testd *t = state;
    if (strcmp(t->cfg->greeting, "notready") == 0) {
        lh_buf_puts(reason, "greeting says so");
        return -1;
    }
    return 0;
}

static const struct lh_daemon_ops testd_ops = {
    .name = "testd",
    .description = "a daemon for the tests",
    .default_listen = "127.0.0.1:0",
    .opts = testd_opts,
    .config_size = sizeof(struct testd_config),
    .common_offset = offsetof(struct testd_config, common),
    .validate = testd_validate,
    .init = testd_init,
    .reload = testd_reload,
    .shutdown = testd_shutdown,
    .destroy = testd_destroy,
    .ready = testd_ready,
};

/* --- helpers --- */

static void write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
    REQUIRE(rename(tmp, path) == 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    struct lh_buf b = LH_BUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        lh_buf_append(&b, buf, n);
    fclose(f);
    lh_buf_append(&b, "", 0);
    return lh_buf_steal(&b);
}

/* Runs lh_daemon_main(args) in a child with stdout/stderr in files under
 * the test's directory; returns its exit status (-1 if it did not exit). */
static int run_main(const char *const *args, char **out, char **errtext)
{
    char op[600], ep[600];
    snprintf(op, sizeof(op), "%s/stdout", lh_test_tmpdir());
    snprintf(ep, sizeof(ep), "%s/stderr", lh_test_tmpdir());
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(op, "w", stdout) || !freopen(ep, "w", stderr))
            _exit(99);
        char *argv[16];
        int argc = 0;
        argv[argc++] = "loghaul-testd";
        for (; args[argc - 1] && argc < 15; argc++)
            argv[argc] = (char *)args[argc - 1];
        argv[argc] = NULL;
        int code = lh_daemon_main(argc, argv, &testd_ops);
        fflush(NULL);
        exit(code);   /* exit, not _exit: LeakSanitizer checks the child */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *out = read_file(op);
    *errtext = read_file(ep);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *cfg_path(const char *name)
{
    static char bufs[4][600];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 600, "%s/%s", lh_test_tmpdir(), name);
    return b;
}

/* --- tests --- */

TEST(daemon_check_config_version_help)
{
    char *out, *err;
    const char *good = cfg_path("good.yaml");
    write_file(good, "listen:\n  address: 127.0.0.1:0\ngreeting: hi\nlog:\n  level: warn\n");
    const char *a1[] = { "-c", good, "--check-config", NULL };
    CHECK_INT(run_main(a1, &out, &err), ==, 0);
    CHECK_STR(out, "config OK\n");
    free(out);
    free(err);

    const char *bad = cfg_path("bad.yaml");
    write_file(bad, "listen:\n  adress: 127.0.0.1:0\n");
    const char *a2[] = { "--check-config", "-c", bad, NULL };
    CHECK_INT(run_main(a2, &out, &err), ==, 1);
    CHECK_CONTAINS(err, "bad.yaml:2: listen.adress: unknown key");
    CHECK_STR(out, "");
    free(out);
    free(err);

    write_file(bad, "answer: -5\n");
    CHECK_INT(run_main(a2, &out, &err), ==, 1);
    CHECK_CONTAINS(err, "answer: must be at least 0, got -5");
    free(out);
    free(err);

    write_file(bad, "listen:\n  tls:\n    cert: /nonexistent.pem\n    key: /nonexistent.key\n");
    CHECK_INT(run_main(a2, &out, &err), ==, 1);
    CHECK_CONTAINS(err, "listen.tls");
    CHECK_CONTAINS(err, "/nonexistent.pem");
    free(out);
    free(err);

    const char *a3[] = { "--check-config", "-c", "/nonexistent.yaml", NULL };
    CHECK_INT(run_main(a3, &out, &err), ==, 1);
    CHECK_CONTAINS(err, "/nonexistent.yaml");
    free(out);
    free(err);

    const char *a4[] = { "--version", NULL };
    CHECK_INT(run_main(a4, &out, &err), ==, 0);
    CHECK_STR(out, "loghaul-testd " LH_VERSION "\n");
    free(out);
    free(err);

    const char *a5[] = { "--help-config", NULL };
    CHECK_INT(run_main(a5, &out, &err), ==, 0);
    CHECK_CONTAINS(out, "greeting: hello");
    CHECK_CONTAINS(out, "max_body: 10MiB");
    CHECK_CONTAINS(out, "client_auth: none");
    CHECK_CONTAINS(out, "drain_timeout: 30s");
    free(out);
    free(err);

    const char *a6[] = { "--help", NULL };
    CHECK_INT(run_main(a6, &out, &err), ==, 0);
    CHECK_CONTAINS(out, "usage: loghaul-testd");
    CHECK_CONTAINS(out, "--check-config");
    free(out);
    free(err);

    const char *a7[] = { "--bogus", NULL };
    CHECK_INT(run_main(a7, &out, &err), ==, 2);
    CHECK_CONTAINS(err, "unknown argument --bogus");
    free(out);
    free(err);
}

static int http_get(int port, const char *path, struct ht_resp *r)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    return ht_request(port, req, r);
}

/* Polls GET path until its body equals want (a reload is asynchronous). */
static int wait_body(int port, const char *path, const char *want)
{
    for (int i = 0; i < 200; i++) {
        struct ht_resp r;
        int st = http_get(port, path, &r);
        int ok = st > 0 && r.body.data && strcmp(r.body.data, want) == 0;
        if (st > 0)
            ht_resp_free(&r);
        if (ok)
            return 1;
        ht_sleep_ms(10);
    }
    return 0;
}

/* Polls /metrics until it contains want. */
static int wait_metric(int port, const char *want)
{
    for (int i = 0; i < 300; i++) {
        struct ht_resp r;
        int st = http_get(port, "/metrics", &r);
        int ok = st == 200 && strstr(r.body.data, want) != NULL;
        if (st > 0)
            ht_resp_free(&r);
        if (ok)
            return 1;
        ht_sleep_ms(10);
    }
    return 0;
}

static int read_line_fd(int fd, char *buf, size_t n, int timeout_ms)
{
    size_t len = 0;
    while (len + 1 < n) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, buf + len, 1);
        if (r <= 0)
            return -1;
        if (buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
    return (int)len;
}

TEST(daemon_serves_reloads_and_drains)
{
    const char *conf = cfg_path("d.yaml");
    write_file(conf, "listen:\n  address: 127.0.0.1:0\ngreeting: one\ndrain_timeout: 3s\n"
                     "log:\n  level: error\n");
    int pp[2], mp[2];
    REQUIRE(pipe(pp) == 0 && pipe(mp) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pp[0]);
        close(mp[0]);
        g_port_fd = pp[1];
        g_marker_fd = mp[1];
        if (!freopen(cfg_path("d.stderr"), "w", stderr))
            _exit(99);
        char *argv[] = { "loghaul-testd", "-c", (char *)conf, NULL };
        int code = lh_daemon_main(3, argv, &testd_ops);
        exit(code);
    }
    close(pp[1]);
    close(mp[1]);
    char line[64];
    REQUIRE(read_line_fd(pp[0], line, sizeof(line), 5000) > 0);
    int port = atoi(line);
    REQUIRE(port > 0);

    struct ht_resp r;
    CHECK_INT(http_get(port, "/healthz", &r), ==, 200);
    ht_resp_free(&r);
    CHECK_INT(http_get(port, "/readyz", &r), ==, 200);
    ht_resp_free(&r);
    CHECK_INT(http_get(port, "/greeting", &r), ==, 200);
    CHECK_STR(r.body.data, "one");
    ht_resp_free(&r);

    /* SIGHUP with a good config: applied. */
    write_file(conf, "listen:\n  address: 127.0.0.1:0\ngreeting: two\ndrain_timeout: 3s\n"
                     "log:\n  level: error\n");
    REQUIRE(kill(pid, SIGHUP) == 0);
    CHECK(wait_body(port, "/greeting", "two"));
    /* A broken file and a refused one: the running config stays. Each
     * reload is awaited (signals sent close together coalesce). */
    write_file(conf, "greeting: [not, a, string]\n");
    REQUIRE(kill(pid, SIGHUP) == 0);
    CHECK(wait_metric(port, "loghaul_config_reloads_total{result=\"error\"} 1\n"));
    write_file(conf, "greeting: refuse\nlog:\n  level: error\n");
    REQUIRE(kill(pid, SIGHUP) == 0);
    CHECK(wait_metric(port, "loghaul_config_reloads_total{result=\"error\"} 2\n"));
    CHECK(wait_metric(port, "loghaul_config_reloads_total{result=\"ok\"} 1\n"));
    CHECK(wait_metric(port, "loghaul_build_info{daemon=\"testd\",version=\"" LH_VERSION "\"} 1"));
    CHECK(wait_metric(port, "testd_started_total 1\n"));
    CHECK(wait_metric(port, "loghaul_http_requests_total{code=\"2xx\"}"));
    CHECK(wait_body(port, "/greeting", "two"));
    /* Readiness comes from the daemon. */
    write_file(conf, "greeting: notready\nlog:\n  level: error\n");
    REQUIRE(kill(pid, SIGHUP) == 0);
    CHECK(wait_body(port, "/greeting", "notready"));
    CHECK_INT(http_get(port, "/readyz", &r), ==, 503);
    CHECK_CONTAINS(r.body.data, "greeting says so");
    ht_resp_free(&r);

    /* SIGTERM while a request is in flight: it completes, then exit 0. */
    struct ht_conn c;
    REQUIRE(ht_connect(&c, port) == 0);
    REQUIRE(ht_sends(&c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    ht_sleep_ms(50);
    REQUIRE(kill(pid, SIGTERM) == 0);
    CHECK_INT(ht_read(&c, &r, 0), ==, 200);
    CHECK_STR(r.body.data, "finished");
    char v[32];
    CHECK_STR(ht_header(&r, "Connection", v, sizeof(v)), "close");
    ht_resp_free(&r);
    ht_close(&c);
    int status = 0;
    double t0 = ht_now();
    while (waitpid(pid, &status, WNOHANG) == 0 && ht_now() - t0 < 10)
        ht_sleep_ms(10);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(read_line_fd(mp[0], line, sizeof(line), 100), >, 0);
    CHECK_STR(line, "shutdown");
    CHECK_INT(read_line_fd(mp[0], line, sizeof(line), 100), >, 0);
    CHECK_STR(line, "destroyed");
    char *log = read_file(cfg_path("d.stderr"));
    CHECK_CONTAINS(log, "d.yaml:1: greeting: expected a string, got a sequence");
    CHECK_CONTAINS(log, "refused, keeping the running config: greeting: refused");
    free(log);
    close(pp[0]);
    close(mp[0]);
}

TEST(daemon_start_failure_exits_1)
{
    /* The port is taken: the daemon reports it and exits 1. A plain
     * listening socket keeps it busy: no thread may run in this process
     * when run_main forks (a lock held by another thread at fork time
     * would stay held in the child). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    const char *conf = cfg_path("busy.yaml");
    char text[256];
    snprintf(text, sizeof(text), "listen:\n  address: 127.0.0.1:%d\n", ntohs(sa.sin_port));
    write_file(conf, text);
    char *out, *err;
    const char *a[] = { "-c", conf, NULL };
    CHECK_INT(run_main(a, &out, &err), ==, 1);
    CHECK_CONTAINS(err, "start failed");
    CHECK_CONTAINS(err, "in use");
    free(out);
    free(err);
    close(fd);
    /* init fails with a handle running: shut down, freed, exit 1. */
    write_file(conf, "listen:\n  address: 127.0.0.1:0\ngreeting: failinit\n");
    CHECK_INT(run_main(a, &out, &err), ==, 1);
    CHECK_CONTAINS(err, "start failed: cannot start: told to fail");
    free(out);
    free(err);
}
