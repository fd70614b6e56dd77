/* main.c - loghaul-agent: tails log files and ships them to the collectors
 * (agent.h) inside the common daemon skeleton (lh/daemon.h): -c FILE,
 * --check-config, --version, --help, /healthz /readyz /metrics on
 * listen.address (127.0.0.1:7073), SIGHUP reload, SIGTERM drain. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "lh/daemon.h"
#include "lh/log.h"

struct agent_main_config {
    struct lh_daemon_common common;
    struct lh_agent_config agent;
};

struct agent_state {
    struct lh_agent *a;
    int64_t drain_ms;
};

/* The root table: the skeleton's listen/log/drain_timeout, then the agent's
 * own keys at the top level (tail:, batch:, ship:, buffer:, mask:, ...). */
static struct lh_opt root_opts[64];

static void build_opts(void)
{
    const struct lh_opt common[] = {
        LH_DAEMON_COMMON_OPTS(struct agent_main_config, common),
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        root_opts[n++] = common[i];
    for (const struct lh_opt *o = lh_agent_opts; o->type != LH_OPT_END; o++) {
        root_opts[n] = *o;
        root_opts[n].offset += offsetof(struct agent_main_config, agent);
        n++;
    }
    memset(&root_opts[n], 0, sizeof(root_opts[n]));
}

static int a_validate(const void *cfg, struct lh_err *err)
{
    const struct agent_main_config *c = cfg;
    return lh_agent_config_check(&c->agent, c->common.log.file, err);
}

static int a_init(struct lh_daemon *d, const void *cfg, void **state, struct lh_err *err)
{
    const struct agent_main_config *c = cfg;
    struct agent_state *st = calloc(1, sizeof(*st));
    if (!st)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    st->drain_ms = c->common.drain_timeout_ms;
    *state = st;
    return lh_agent_create(lh_daemon_loop(d), &c->agent, lh_daemon_metrics(d),
                           c->common.log.file, &st->a, err);
}

static int a_reload(struct lh_daemon *d, void *state, const void *new_cfg, struct lh_err *err)
{
    (void)d;
    struct agent_state *st = state;
    const struct agent_main_config *c = new_cfg;
    if (!st->a)
        return lh_err_set(err, LH_EINVAL, "the agent is not running");
    int rc = lh_agent_reload(st->a, &c->agent, c->common.log.file, err);
    if (rc == 0)
        st->drain_ms = c->common.drain_timeout_ms;
    return rc;
}

static void drained(void *arg)
{
    struct agent_state *st = arg;
    lh_agent_destroy(st->a);   /* closes the agent's handles: the loop can end */
    st->a = NULL;
}

static void a_shutdown(struct lh_daemon *d, void *state)
{
    (void)d;
    struct agent_state *st = state;
    if (!st->a)
        return;
    lh_info("agent: stopping: delivering what is in memory (up to %lld ms), the rest goes to "
            "the disk buffer", (long long)st->drain_ms);
    lh_agent_drain(st->a, st->drain_ms, drained, st);
}

static void a_destroy(void *state)
{
    struct agent_state *st = state;
    if (st->a)   /* not expected: shutdown destroys it once drained */
        lh_agent_destroy(st->a);
    free(st);
}

static int a_ready(void *state, struct lh_buf *reason)
{
    struct agent_state *st = state;
    if (!st->a) {
        lh_buf_puts(reason, "stopped");
        return 1;
    }
    return lh_agent_ready(st->a, reason);
}

static int a_render(void *state, struct lh_buf *out)
{
    struct agent_state *st = state;
    return st->a ? lh_agent_render_metrics(st->a, out) : 0;
}

static const struct lh_daemon_ops agent_ops = {
    .name = "agent",
    .description = "tails log files and ships them to loghaul collectors",
    .default_listen = "127.0.0.1:7073",
    .opts = root_opts,
    .config_size = sizeof(struct agent_main_config),
    .common_offset = offsetof(struct agent_main_config, common),
    .validate = a_validate,
    .init = a_init,
    .reload = a_reload,
    .shutdown = a_shutdown,
    .destroy = a_destroy,
    .ready = a_ready,
    .render_metrics = a_render,
};

int main(int argc, char **argv)
{
    build_opts();
    return lh_daemon_main(argc, argv, &agent_ops);
}
