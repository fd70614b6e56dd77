/* fuzz_conf.c - libFuzzer target: the configuration loader (common/conf.c)
 * on YAML text, bound through the real option tables of the daemons
 * (lh_conf_load_string: the loader lh_conf_load_file reads files into),
 * then the daemon's validation where it has no side effects. Checked: a
 * failed load says why and leaves the struct freed (LeakSanitizer); a
 * loaded struct is freed by lh_conf_free, twice in a row safely.
 *
 * Input: byte 0 picks the table (0 collector, 1 indexer, 2 queryd, 3 the
 * agent's), the rest is the YAML file. ${LH_FUZZ_VAR} is set. */
#include "fuzz.h"

#include "../../agent/agent.h"
#include "../../collector/collector.h"
#include "../../indexer/indexer.h"
#include "../../queryd/queryd.h"
#include "lh/conf.h"
#include "lh/daemon.h"

/* The agent's root table as agent/main.c builds it: the skeleton's keys,
 * then the agent's own at the top level. */
struct agent_root {
    struct lh_daemon_common common;
    struct lh_agent_config agent;
};
static struct lh_opt agent_root_opts[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("LH_FUZZ_VAR", "from-the-environment", 1);
    const struct lh_opt common[] = { LH_DAEMON_COMMON_OPTS(struct agent_root, common) };
    size_t nc = sizeof(common) / sizeof(common[0]);
    memcpy(agent_root_opts, common, sizeof(common));
    for (size_t n = nc; lh_agent_opts[n - nc].type != LH_OPT_END && n + 1 < 64; n++) {
        agent_root_opts[n] = lh_agent_opts[n - nc];
        agent_root_opts[n].offset += offsetof(struct agent_root, agent);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct lh_daemon_ops *ops[3] = { &lh_collector_ops, &lh_indexer_ops, &lh_queryd_ops };
    unsigned which = data[0] & 3;
    const struct lh_opt *opts = which < 3 ? ops[which]->opts : agent_root_opts;
    size_t cfg_size = which < 3 ? ops[which]->config_size : sizeof(struct agent_root);
    void *cfg = calloc(1, cfg_size);
    FUZZ_CHECK(cfg != NULL, "out of memory");
    struct lh_err err = { 0 };
    int rc = lh_conf_load_string("fuzz.yaml", (const char *)data + 1, size - 1, opts, cfg, &err);
    if (rc == 0) {
        if (which < 3 && ops[which]->validate) {
            struct lh_err verr = { 0 };
            if (ops[which]->validate(cfg, &verr) < 0)
                FUZZ_CHECK(verr.msg[0], "a validation failure without a message");
        }
        lh_conf_free(opts, cfg);
        lh_conf_free(opts, cfg);
    } else {
        FUZZ_CHECK(rc == LH_EINVAL || rc == LH_ETOOBIG, "unexpected return %d (%s)", rc,
                   err.msg);
        FUZZ_CHECK(err.msg[0], "a failure without a message");
    }
    free(cfg);
    return 0;
}
