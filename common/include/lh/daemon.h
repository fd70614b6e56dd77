/* daemon.h - the main() of the four daemons: command line, configuration,
 * logging, the admin HTTP routes, signals and the graceful stop. A daemon
 * supplies a small ops table and calls lh_daemon_main:
 *
 *   struct collector_config {
 *       struct lh_daemon_common common;   // listen:, log:, drain_timeout
 *       struct lh_bus_config bus;
 *   };
 *   static const struct lh_opt collector_opts[] = {
 *       LH_DAEMON_COMMON_OPTS(struct collector_config, common),
 *       { .type = LH_OPT_SECTION, .key = "bus", ... },
 *       { 0 }
 *   };
 *   static const struct lh_daemon_ops ops = {
 *       .name = "collector", .default_listen = "0.0.0.0:7070",
 *       .opts = collector_opts, .config_size = sizeof(struct collector_config),
 *       .common_offset = offsetof(struct collector_config, common),
 *       .init = c_init, .reload = c_reload, .shutdown = c_shutdown,
 *       .destroy = c_destroy, .ready = c_ready,
 *   };
 *   int main(int argc, char **argv) { return lh_daemon_main(argc, argv, &ops); }
 *
 * Command line: -c FILE (--config FILE), --check-config (load and validate,
 * print "config OK" or the error; exit 0/1), --version, --help,
 * --help-config (every option with its default). Without -c the built-in
 * defaults are used.
 *
 * Threads and life cycle: everything below runs on the thread that called
 * lh_daemon_main, which runs one libuv loop ("the loop thread"):
 *   1. config loaded (conf.h) and validated, logging configured
 *   2. the HTTP listener created with GET /healthz, /readyz, /metrics
 *   3. ops->init: registers the daemon's routes on lh_daemon_http(d), starts
 *      its handles and threads
 *   4. the loop runs. SIGHUP: the config file is loaded again; when it loads
 *      and validates, ops->reload gets it (TLS certificates and log settings
 *      are applied by the skeleton); on any error the running config stays
 *      and the error is logged. SIGTERM / SIGINT: the listener drains
 *      (drain_timeout), ops->shutdown is called, and the loop ends once
 *      every handle is closed; a second signal exits at once (status 1).
 *      SIGPIPE is ignored.
 *   5. ops->destroy, then everything is freed; exit status 0, or 1 when the
 *      start failed or lh_daemon_stop asked for it. */
#ifndef LH_DAEMON_H
#define LH_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/http.h"
#include "lh/metrics.h"

#ifndef LH_VERSION
#define LH_VERSION "0.1.0"
#endif

struct lh_daemon;

struct lh_daemon_log_config {
    int level;                /* enum lh_log_level: debug|info|warn|error */
    char *file;               /* NULL: stderr only */
    uint64_t file_max_bytes;  /* rotate past this */
    int json;                 /* one JSON object per line */
};

/* The part of every daemon config the skeleton uses. */
struct lh_daemon_common {
    struct lh_http_server_config listen;   /* listen.address defaults to ops->default_listen */
    struct lh_daemon_log_config log;
    int64_t drain_timeout_ms;              /* SIGTERM: time for requests in flight */
};

extern const struct lh_opt lh_daemon_log_opts[];

/* The entries for struct lh_daemon_common, for the daemon's root table. */
#define LH_DAEMON_COMMON_OPTS(cfg_type, member)                                                \
    { .type = LH_OPT_SECTION, .key = "listen", .offset = offsetof(cfg_type, member.listen),     \
      .help = "the HTTP listener (API, /healthz, /readyz, /metrics)",                      \
      .sub = lh_http_server_opts },                                                         \
    { .type = LH_OPT_SECTION, .key = "log", .offset = offsetof(cfg_type, member.log),           \
      .help = "the daemon's own diagnostics", .sub = lh_daemon_log_opts },                  \
    { .type = LH_OPT_DURATION, .key = "drain_timeout", .def = "30s",                        \
      .offset = offsetof(cfg_type, member.drain_timeout_ms),                                    \
      .help = "on SIGTERM, how long requests in flight may take before connections close" }

struct lh_daemon_ops {
    const char *name;            /* "collector": binary loghaul-<name>, log prefix */
    const char *description;     /* one line for --help */
    const char *default_listen;  /* listen.address when the config has none */
    const struct lh_opt *opts;   /* the root table of the daemon's config struct */
    size_t config_size;          /* sizeof that struct */
    size_t common_offset;        /* offsetof(that struct, its struct lh_daemon_common) */

    /* Optional checks beyond the option table (also run by --check-config
     * and before a reload). No side effects. */
    int (*validate)(const void *cfg, struct lh_err *err);
    /* Starts the daemon. cfg stays valid until a reload succeeded (then the
     * new one is valid) or the daemon ended. *state is handed back below.
     * On failure, a *state already set still gets shutdown and destroy (so
     * set it early and make both cope with a half-started daemon); handles
     * left open are closed by the skeleton before destroy. */
    int (*init)(struct lh_daemon *d, const void *cfg, void **state, struct lh_err *err);
    /* SIGHUP with a config that loaded and validated. Return 0 once it is
     * in use (the old config is freed right after: keep no pointer into
     * it), or an error to keep running with the old one. NULL: a reload
     * applies only the skeleton's parts (TLS certificates, logging). */
    int (*reload)(struct lh_daemon *d, void *state, const void *new_cfg, struct lh_err *err);
    /* The graceful stop began: stop taking work, finish what is in flight,
     * close the daemon's handles (the loop ends when all are closed). */
    void (*shutdown)(struct lh_daemon *d, void *state);
    /* After the loop ended and every handle was closed: free state. */
    void (*destroy)(void *state);
    /* /readyz: 0 when ready, else append why to reason. Must be quick. */
    int (*ready)(void *state, struct lh_buf *reason);
    /* /metrics: appends series kept outside the registry (e.g. the agent's
     * ledger) after it. Optional; loop thread; must be quick. */
    int (*render_metrics)(void *state, struct lh_buf *out);
};

/* Runs the daemon; returns the process exit status. */
int lh_daemon_main(int argc, char **argv, const struct lh_daemon_ops *ops);

/* Loads and validates a config the way the daemon does (file, or built-in
 * defaults when path is NULL) into out (config_size zeroed bytes). On
 * success free it with lh_conf_free(ops->opts, out). Any thread. */
int lh_daemon_load_config(const struct lh_daemon_ops *ops, const char *path, void *out,
                          struct lh_err *err);

/* Accessors (loop thread). */
uv_loop_t *lh_daemon_loop(struct lh_daemon *d);
struct lh_http_server *lh_daemon_http(struct lh_daemon *d);
/* The registry rendered at /metrics (thread-safe per lh/metrics.h). */
struct lh_metrics *lh_daemon_metrics(struct lh_daemon *d);
const void *lh_daemon_config(struct lh_daemon *d);   /* the config in use */
const char *lh_daemon_name(const struct lh_daemon *d);

/* Begins the graceful stop from inside the daemon (a fatal error): as on
 * SIGTERM, and the process exits with exit_code. Loop thread. */
void lh_daemon_stop(struct lh_daemon *d, int exit_code);

#endif
