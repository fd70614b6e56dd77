/* daemon.c - the common main() of the daemons (see lh/daemon.h). */
#include "lh/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lh/http_client.h"
#include "lh/tls.h"
/* openssl/lhash.h defines an lh_error macro of its own; ours wins here. */
#undef lh_error
#include "lh/log.h"

#define HARD_STOP_GRACE_MS 15000   /* after drain_timeout, before giving up */

const struct lh_opt lh_daemon_log_opts[] = {
    { .type = LH_OPT_ENUM, .key = "level", .def = "info",
      .offset = offsetof(struct lh_daemon_log_config, level),
      .help = "lowest level written", .choices = "debug|info|warn|error" },
    { .type = LH_OPT_STR, .key = "file",
      .offset = offsetof(struct lh_daemon_log_config, file),
      .help = "also write to this file (rotated); stderr always gets the lines" },
    { .type = LH_OPT_SIZE, .key = "file_max_size", .def = "50MiB",
      .offset = offsetof(struct lh_daemon_log_config, file_max_bytes),
      .help = "rotate the file to FILE.1 past this size" },
    { .type = LH_OPT_BOOL, .key = "json", .def = "false",
      .offset = offsetof(struct lh_daemon_log_config, json),
      .help = "one JSON object per line instead of text" },
    { 0 }
};

struct lh_daemon {
    const struct lh_daemon_ops *ops;
    const char *config_path;      /* NULL: built-in defaults */
    void *cfg;                    /* the config in use (config_size bytes) */
    void *state;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t hard_stop;
    struct lh_http_server *http;
    struct lh_metrics *metrics;
    struct lh_counter *reloads_ok, *reloads_failed;
    int stopping;
    int exit_code;
    char component[64];
};

static struct lh_daemon_common *common_of(const struct lh_daemon_ops *ops, const void *cfg)
{
    return (struct lh_daemon_common *)((char *)cfg + ops->common_offset);
}

uv_loop_t *lh_daemon_loop(struct lh_daemon *d) { return &d->loop; }
struct lh_http_server *lh_daemon_http(struct lh_daemon *d) { return d->http; }
struct lh_metrics *lh_daemon_metrics(struct lh_daemon *d) { return d->metrics; }
const void *lh_daemon_config(struct lh_daemon *d) { return d->cfg; }
const char *lh_daemon_name(const struct lh_daemon *d) { return d->ops->name; }

/* ------------------------------------------------------------------ */
/* configuration */

int lh_daemon_load_config(const struct lh_daemon_ops *ops, const char *path, void *out,
                          struct lh_err *err)
{
    int rc = path ? lh_conf_load_file(path, ops->opts, out, err)
                  : lh_conf_load_string("(built-in defaults)", "", 0, ops->opts, out, err);
    if (rc)
        return rc;
    struct lh_daemon_common *cm = common_of(ops, out);
    if (!cm->listen.listen && ops->default_listen) {
        cm->listen.listen = strdup(ops->default_listen);
        if (!cm->listen.listen) {
            lh_conf_free(ops->opts, out);
            return lh_err_set(err, LH_ENOMEM, "out of memory");
        }
    }
    if (!cm->listen.listen) {
        lh_conf_free(ops->opts, out);
        return lh_err_set(err, LH_EINVAL, "%s: listen.address: missing required key",
                          path ? path : "config");
    }
    /* TLS files are read now, so that a broken certificate fails
     * --check-config and a reload, not the next handshake. */
    const struct lh_http_tls_config *tls = &cm->listen.tls;
    if (tls->cert_file || tls->key_file || tls->client_ca_file ||
        tls->client_auth != LH_HTTP_CLIENT_AUTH_NONE) {
        SSL_CTX *ctx = NULL;
        rc = lh_tls_server_ctx_create(tls, &ctx, err);
        if (rc) {
            lh_err_wrap(err, "%s: listen.tls", path ? path : "config");
            lh_conf_free(ops->opts, out);
            return rc;
        }
        SSL_CTX_free(ctx);
    }
    if (ops->validate && (rc = ops->validate(out, err)) != 0) {
        lh_conf_free(ops->opts, out);
        return rc;
    }
    return 0;
}

static void config_release(struct lh_daemon *d, void *cfg)
{
    if (cfg) {
        lh_conf_free(d->ops->opts, cfg);
        free(cfg);
    }
}

static void apply_log(struct lh_daemon *d, const struct lh_daemon_log_config *lc)
{
    struct lh_log_config c = {
        .component = d->component,
        .level = (enum lh_log_level)lc->level,
        .file = lc->file,
        .file_max_bytes = lc->file_max_bytes,
        .json = lc->json,
    };
    if (lh_log_configure(&c) != 0)
        lh_error("log: cannot open %s; logging to stderr only", lc->file);
}

/* ------------------------------------------------------------------ */
/* admin routes */

static int d_ready(void *arg, struct lh_buf *reason)
{
    struct lh_daemon *d = arg;
    if (d->stopping) {
        lh_buf_puts(reason, "stopping");
        return -1;
    }
    return d->ops->ready ? d->ops->ready(d->state, reason) : 0;
}

static int d_render(void *arg, struct lh_buf *out)
{
    struct lh_daemon *d = arg;
    int rc = lh_metrics_render(d->metrics, out);
    if (rc == 0 && d->state && d->ops->render_metrics)
        rc = d->ops->render_metrics(d->state, out);
    return rc;
}

/* ------------------------------------------------------------------ */
/* signals, reload and stop */

static void on_hard_stop(uv_timer_t *t)
{
    struct lh_daemon *d = t->data;
    lh_error("stop: still running %d ms after the drain timeout; exiting now",
             HARD_STOP_GRACE_MS);
    lh_log_shutdown();
    _exit(d->exit_code ? d->exit_code : 1);
}

static void on_http_drained(void *arg)
{
    (void)arg;
    lh_info("listener drained");
}

static void begin_stop(struct lh_daemon *d, int exit_code)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    if (exit_code)
        d->exit_code = exit_code;
    int64_t drain = common_of(d->ops, d->cfg)->drain_timeout_ms;
    lh_info("stopping: draining requests for up to %lld ms", (long long)drain);
    lh_http_server_shutdown(d->http, drain, on_http_drained, d);
    if (d->ops->shutdown)
        d->ops->shutdown(d, d->state);
    uv_timer_start(&d->hard_stop, on_hard_stop, (uint64_t)(drain > 0 ? drain : 0) +
                   HARD_STOP_GRACE_MS, 0);
}

void lh_daemon_stop(struct lh_daemon *d, int exit_code) { begin_stop(d, exit_code); }

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct lh_daemon *d = s->data;
    if (d->stopping) {
        lh_warn("%s again while stopping: exiting now", strsignal(signum));
        lh_log_shutdown();
        _exit(1);
    }
    lh_info("%s received", strsignal(signum));
    begin_stop(d, 0);
}

static int listen_differs(const struct lh_http_server_config *a,
                          const struct lh_http_server_config *b)
{
    return strcmp(a->listen, b->listen) != 0 || a->max_body != b->max_body ||
           a->max_header_bytes != b->max_header_bytes || a->max_headers != b->max_headers ||
           a->max_connections != b->max_connections ||
           a->header_timeout_ms != b->header_timeout_ms ||
           a->body_timeout_ms != b->body_timeout_ms ||
           a->idle_timeout_ms != b->idle_timeout_ms ||
           a->write_timeout_ms != b->write_timeout_ms ||
           (a->tls.cert_file == NULL) != (b->tls.cert_file == NULL);
}

static void reload(struct lh_daemon *d)
{
    struct lh_err err = { 0 };
    const char *path = d->config_path ? d->config_path : "(built-in defaults)";
    void *ncfg = calloc(1, d->ops->config_size);
    if (!ncfg) {
        lh_error("reload: out of memory; keeping the running config");
        lh_counter_add(d->reloads_failed, 1);
        return;
    }
    int rc = lh_daemon_load_config(d->ops, d->config_path, ncfg, &err);
    if (rc) {
        free(ncfg);
        lh_error("reload of %s failed, keeping the running config: %s", path, err.msg);
        lh_counter_add(d->reloads_failed, 1);
        return;
    }
    struct lh_daemon_common *oc = common_of(d->ops, d->cfg), *nc = common_of(d->ops, ncfg);
    if (!d->ops->reload) {
        /* The daemon may point into its config: keep it, apply our parts. */
        if (nc->listen.tls.cert_file && oc->listen.tls.cert_file &&
            lh_http_server_reload_tls(d->http, &nc->listen.tls, &err) != 0)
            lh_error("reload: TLS certificates not reloaded: %s", err.msg);
        apply_log(d, &nc->log);
        config_release(d, ncfg);
        lh_counter_add(d->reloads_ok, 1);
        lh_info("reloaded TLS certificates and log settings from %s; other changes need a "
                "restart", path);
        return;
    }
    if ((rc = d->ops->reload(d, d->state, ncfg, &err)) != 0) {
        config_release(d, ncfg);
        lh_error("reload of %s refused, keeping the running config: %s", path, err.msg);
        lh_counter_add(d->reloads_failed, 1);
        return;
    }
    if (listen_differs(&oc->listen, &nc->listen))
        lh_warn("reload: listener settings other than TLS certificates need a restart");
    if (nc->listen.tls.cert_file && oc->listen.tls.cert_file &&
        lh_http_server_reload_tls(d->http, &nc->listen.tls, &err) != 0)
        lh_error("reload: TLS certificates not reloaded: %s", err.msg);
    apply_log(d, &nc->log);
    config_release(d, d->cfg);
    d->cfg = ncfg;
    lh_counter_add(d->reloads_ok, 1);
    lh_info("config reloaded from %s", path);
}

static void on_hup(uv_signal_t *s, int signum)
{
    (void)signum;
    struct lh_daemon *d = s->data;
    if (!d->stopping)
        reload(d);
}

/* ------------------------------------------------------------------ */
/* main */

static void usage(FILE *f, const struct lh_daemon_ops *ops)
{
    fprintf(f,
            "usage: loghaul-%s [-c FILE] [--check-config] [--version] [--help] [--help-config]\n"
            "%s%s"
            "  -c, --config FILE  configuration file (YAML); default: built-in defaults\n"
            "  --check-config     load and validate the configuration, print \"config OK\"\n"
            "                     or the error, exit 0 or 1\n"
            "  --version          print the version\n"
            "  --help             this text\n"
            "  --help-config      every configuration key with its default and meaning\n"
            "signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the configuration\n",
            ops->name, ops->description ? ops->description : "",
            ops->description ? "\n" : "");
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run(struct lh_daemon *d)
{
    struct lh_err err = { 0 };
    const struct lh_daemon_ops *ops = d->ops;
    struct lh_daemon_common *cm = common_of(ops, d->cfg);
    int rc = uv_loop_init(&d->loop);
    if (rc) {
        lh_error("uv_loop_init: %s", uv_strerror(rc));
        return 1;
    }
    d->metrics = lh_metrics_create();
    if (!d->metrics) {
        lh_error("out of memory");
        uv_loop_close(&d->loop);
        return 1;
    }
    char labels[256], l1[128], l2[128];
    snprintf(labels, sizeof(labels), "%s,%s",
             lh_metrics_label(l1, sizeof(l1), "daemon", ops->name),
             lh_metrics_label(l2, sizeof(l2), "version", LH_VERSION));
    lh_gauge_set(lh_gauge_get(d->metrics, "loghaul_build_info", "Daemon and version.", labels),
                 1);
    lh_gauge_set(lh_gauge_get(d->metrics, "loghaul_start_time_seconds",
                              "Start time of the process, seconds since the epoch.", NULL),
                 (double)time(NULL));
    d->reloads_ok = lh_counter_get(d->metrics, "loghaul_config_reloads_total",
                                   "Configuration reloads (SIGHUP) by result.", "result=\"ok\"");
    d->reloads_failed = lh_counter_get(d->metrics, "loghaul_config_reloads_total",
                                       "Configuration reloads (SIGHUP) by result.",
                                       "result=\"error\"");

    rc = lh_http_server_create(&d->loop, &cm->listen, &d->http, &err);
    struct lh_http_admin admin = { .ready = d_ready, .render_metrics = d_render, .arg = d };
    if (rc == 0)
        rc = lh_http_server_add_admin_routes(d->http, &admin, &err);
    if (rc == 0 && ops->init)
        rc = ops->init(d, d->cfg, &d->state, &err);
    if (rc != 0) {
        lh_error("start failed: %s", err.msg);
        d->exit_code = 1;
        d->stopping = 1;
        if (d->state && ops->shutdown)
            ops->shutdown(d, d->state);   /* lets a half-started daemon close its handles */
    } else {
        uv_timer_init(&d->loop, &d->hard_stop);
        d->hard_stop.data = d;
        uv_unref((uv_handle_t *)&d->hard_stop);
        uv_signal_t *sigs[] = { &d->sig_term, &d->sig_int, &d->sig_hup };
        int nums[] = { SIGTERM, SIGINT, SIGHUP };
        for (int i = 0; i < 3; i++) {
            uv_signal_init(&d->loop, sigs[i]);
            sigs[i]->data = d;
            uv_signal_start(sigs[i], nums[i] == SIGHUP ? on_hup : on_stop_signal, nums[i]);
            uv_unref((uv_handle_t *)sigs[i]);   /* they never keep the loop alive */
        }
        lh_info("loghaul-%s %s started: http on port %d%s", ops->name, LH_VERSION,
                lh_http_server_port(d->http), d->config_path ? "" : " (built-in defaults)");
        uv_run(&d->loop, UV_RUN_DEFAULT);
        lh_info("stopped");
    }
    /* Tear down: the listener, then every handle still open (ours: the
     * signals and the stop timer; the daemon's, if it left any), then the
     * daemon's state once nothing can call into it any more. */
    if (d->http) {
        lh_http_server_destroy(d->http);
        d->http = NULL;
    }
    uv_walk(&d->loop, on_walk_close, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (d->state && ops->destroy)
        ops->destroy(d->state);
    d->state = NULL;
    if (uv_loop_close(&d->loop) != 0)
        lh_warn("loop closed with handles still open");
    lh_metrics_destroy(d->metrics);
    d->metrics = NULL;
    return d->exit_code;
}

int lh_daemon_main(int argc, char **argv, const struct lh_daemon_ops *ops)
{
    const char *path = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "loghaul-%s: %s needs a file\n", ops->name, a);
                return 2;
            }
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else if (strcmp(a, "--check-config") == 0) {
            check = 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("loghaul-%s %s\n", ops->name, LH_VERSION);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, ops);
            return 0;
        } else if (strcmp(a, "--help-config") == 0) {
            printf("# loghaul-%s configuration: every key with its default\n", ops->name);
            lh_conf_print_help(stdout, ops->opts);
            return 0;
        } else {
            fprintf(stderr, "loghaul-%s: unknown argument %s\n", ops->name, a);
            usage(stderr, ops);
            return 2;
        }
    }
    struct lh_err err = { 0 };
    struct lh_daemon d;
    memset(&d, 0, sizeof(d));
    d.ops = ops;
    d.config_path = path;
    snprintf(d.component, sizeof(d.component), "%s", ops->name);
    d.cfg = calloc(1, ops->config_size);
    if (!d.cfg) {
        fprintf(stderr, "loghaul-%s: out of memory\n", ops->name);
        return 1;
    }
    int rc = lh_daemon_load_config(ops, path, d.cfg, &err);
    if (check) {
        if (rc == 0)
            printf("config OK\n");
        else
            fprintf(stderr, "%s\n", err.msg);
        config_release(&d, rc == 0 ? d.cfg : NULL);
        if (rc)
            free(d.cfg);
        return rc == 0 ? 0 : 1;
    }
    if (rc) {
        fprintf(stderr, "loghaul-%s: %s\n", ops->name, err.msg);
        free(d.cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    apply_log(&d, &common_of(ops, d.cfg)->log);
    if (lh_http_client_global_init(&err) != 0) {
        lh_error("%s", err.msg);
        config_release(&d, d.cfg);
        lh_log_shutdown();
        return 1;
    }
    int code = run(&d);
    config_release(&d, d.cfg);
    lh_log_shutdown();
    return code;
}
