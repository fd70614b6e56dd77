/* indexer.c - loghaul-indexer: config, life cycle, /readyz (see indexer.h). */
#include "indexer.h"

#include <stdlib.h>
#include <string.h>

#include "lh/log.h"

static const struct lh_opt indexer_opts[] = {
    LH_DAEMON_COMMON_OPTS(struct lh_indexer_config, common),
    { .type = LH_OPT_SECTION, .key = "bus", .offset = offsetof(struct lh_indexer_config, bus),
      .help = "where events come from (topic) and dead letters go (dlq_topic)",
      .sub = lh_bus_opts },
    { .type = LH_OPT_SECTION, .key = "pipeline",
      .offset = offsetof(struct lh_indexer_config, pipeline),
      .help = "batching, consumer group, worker threads, retry delays",
      .sub = lh_pipeline_opts },
    LH_STAGES_OPTS(struct lh_indexer_config, stages),
    LH_SINKS_OPT(struct lh_indexer_config, sinks),
    { .type = LH_OPT_SECTION, .key = "ledger", .offset = offsetof(struct lh_indexer_config, ledger),
      .help = "where the delivery ledger's rows go (docs/ledger.md)", .sub = lh_iledger_opts },
    { 0 }
};

/* Sink names in config order. */
static size_t sink_names(const struct lh_indexer_config *cfg, const char **names, size_t max)
{
    const struct lh_sink_config *s = cfg->sinks.items;
    size_t n = cfg->sinks.n < max ? cfg->sinks.n : max;
    for (size_t i = 0; i < n; i++)
        names[i] = s[i].name ? s[i].name : "";
    return n;
}

static int indexer_validate(const void *p, struct lh_err *err)
{
    const struct lh_indexer_config *cfg = p;
    int rc = lh_sinks_validate(&cfg->sinks, err);
    if (rc < 0)
        return rc;
    if (cfg->sinks.n > LH_STAGES_MAX_SINKS)
        return lh_err_set(err, LH_EINVAL, "sinks: at most %d", LH_STAGES_MAX_SINKS);
    const char *names[LH_STAGES_MAX_SINKS];
    size_t n = sink_names(cfg, names, LH_STAGES_MAX_SINKS);
    if ((rc = lh_stages_validate(&cfg->stages, names, n, err)) < 0)
        return rc;
    const char *topic = cfg->bus.topic ? cfg->bus.topic : "";
    if (!topic[0] || strstr(topic, "{tenant}"))
        return lh_err_set(err, LH_EINVAL, "bus.topic: the indexer consumes one topic; \"%s\" "
                          "is not a topic name", topic);
    const struct lh_pipeline_config *pc = &cfg->pipeline;
    if (pc->max_batch <= 0 || pc->max_batch > 1000000)
        return lh_err_set(err, LH_EINVAL, "pipeline.max_batch: 1 to 1000000");
    if (pc->workers <= 0 || pc->workers > 64)
        return lh_err_set(err, LH_EINVAL, "pipeline.workers: 1 to 64");
    if (pc->max_batch_bytes == 0)
        return lh_err_set(err, LH_EINVAL, "pipeline.max_batch_bytes: must be positive");
    char replay[256];
    if (lh_pipeline_replay_topic(pc, &cfg->bus, replay, sizeof(replay)) &&
        (strcmp(replay, topic) == 0 ||
         (cfg->bus.dlq_topic && strcmp(replay, cfg->bus.dlq_topic) == 0)))
        return lh_err_set(err, LH_EINVAL, "pipeline.replay_topic: must differ from bus.topic "
                          "and bus.dlq_topic");
    if (cfg->bus.dlq_topic && strcmp(cfg->bus.dlq_topic, topic) == 0)
        return lh_err_set(err, LH_EINVAL, "bus.dlq_topic: must differ from bus.topic");
    return 0;
}

/* ---- state ---- */

struct indexer {
    struct lh_daemon *d;
    const struct lh_indexer_config *cfg;
    struct lh_bus *bus;
    struct lh_pipeline *pipe;
    char names[LH_STAGES_MAX_SINKS][32];   /* running sinks, for reloads */
    size_t nsinks;
    uv_async_t done;                        /* the pipeline thread ended */
    int done_open, running, stopping;
};

static void on_done_closed(uv_handle_t *h) { (void)h; }

static void on_pipeline_done(uv_async_t *a)
{
    struct indexer *ix = a->data;
    if (!ix->running)
        return;
    ix->running = 0;
    lh_pipeline_join(ix->pipe);
    if (ix->done_open) {
        uv_close((uv_handle_t *)&ix->done, on_done_closed);
        ix->done_open = 0;
    }
    if (!ix->stopping) {
        lh_error("the pipeline stopped on its own: stopping the indexer");
        lh_daemon_stop(ix->d, 1);
    }
}

/* Pipeline thread. */
static void pipeline_done(void *arg)
{
    struct indexer *ix = arg;
    uv_async_send(&ix->done);
}

/* The ledger writer the config asks for (*out NULL: none). */
static int open_ledger(const struct lh_indexer_config *cfg, struct lh_iledger **out,
                       struct lh_err *err)
{
    *out = NULL;
    const struct lh_iledger_config *lc = &cfg->ledger;
    const struct lh_sink_config *s = cfg->sinks.items;
    const struct lh_sink_config *store = NULL, *os = NULL;
    for (size_t i = 0; i < cfg->sinks.n; i++) {
        if (s[i].type == LH_SINK_STORE && !store)
            store = &s[i];
        if (s[i].type == LH_SINK_OPENSEARCH && !os)
            os = &s[i];
    }
    int type = lc->type;
    if (type == LH_ILEDGER_NONE)
        return 0;
    if (type == LH_ILEDGER_AUTO)
        type = (lc->dir && lc->dir[0]) || store ? LH_ILEDGER_DIR
               : os                              ? LH_ILEDGER_OPENSEARCH
                                                 : LH_ILEDGER_NONE;
    if (type == LH_ILEDGER_DIR) {
        char dir[4096];
        if (lc->dir && lc->dir[0])
            snprintf(dir, sizeof(dir), "%s", lc->dir);
        else if (store && store->store.dir)
            snprintf(dir, sizeof(dir), "%s/.ledger", store->store.dir);
        else
            return lh_err_set(err, LH_EINVAL, "ledger.dir: needed without a store sink");
        int rc = lh_iledger_open_dir(dir, out, err);
        if (rc == 0)
            lh_iledger_set_retention(*out, lc->retention_ms);
        return rc;
    }
    if (type == LH_ILEDGER_OPENSEARCH) {
        if (!os)
            return lh_err_set(err, LH_EINVAL, "ledger.type opensearch: no opensearch sink");
        char index[512];
        if (lc->index && lc->index[0])
            snprintf(index, sizeof(index), "%s", lc->index);
        else
            snprintf(index, sizeof(index), "%s.ledger",
                     os->opensearch.index_prefix ? os->opensearch.index_prefix : "logs");
        return lh_iledger_open_opensearch(&os->opensearch, index, out, err);
    }
    return 0;
}

static int build_stages(struct indexer *ix, const struct lh_indexer_config *cfg,
                        struct lh_stages **out, struct lh_err *err)
{
    const char *names[LH_STAGES_MAX_SINKS];
    for (size_t i = 0; i < ix->nsinks; i++)
        names[i] = ix->names[i];
    return lh_stages_create(&cfg->stages, names, ix->nsinks, out, err);
}

static int indexer_init(struct lh_daemon *d, const void *p, void **state, struct lh_err *err)
{
    const struct lh_indexer_config *cfg = p;
    struct indexer *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    *state = ix;
    ix->d = d;
    ix->cfg = cfg;
    struct lh_metrics *m = lh_daemon_metrics(d);
    if (uv_async_init(lh_daemon_loop(d), &ix->done, on_pipeline_done) != 0)
        return lh_err_set(err, LH_ENOMEM, "uv_async_init failed");
    ix->done.data = ix;
    ix->done_open = 1;
    int rc = lh_bus_open(&cfg->bus, m, &ix->bus, err);
    if (rc < 0)
        return lh_err_wrap(err, "bus");
    /* delivery-ledger writers: the pipeline's and one per archive sink */
    struct lh_iledger *ledger = NULL, *sink_ledgers[LH_STAGES_MAX_SINKS] = { 0 };
    const struct lh_sink_config *sc = cfg->sinks.items;
    rc = open_ledger(cfg, &ledger, err);
    for (size_t i = 0; rc == 0 && ledger && i < cfg->sinks.n && i < LH_STAGES_MAX_SINKS; i++)
        if (sc[i].type == LH_SINK_ARCHIVE)
            rc = open_ledger(cfg, &sink_ledgers[i], err);
    if (rc < 0) {
        lh_iledger_close(ledger);
        for (size_t i = 0; i < LH_STAGES_MAX_SINKS; i++)
            lh_iledger_close(sink_ledgers[i]);
        return lh_err_wrap(err, "ledger");
    }
    if (ledger)
        lh_info("ledger: delivery-ledger rows in %s", lh_iledger_where(ledger));
    else
        lh_warn("ledger: no store or opensearch sink: no delivery-ledger rows are kept");
    struct lh_sink *sinks[LH_STAGES_MAX_SINKS] = { 0 };
    if ((rc = lh_sinks_create_ledger(&cfg->sinks, m, sink_ledgers, sinks, err)) < 0) {
        lh_iledger_close(ledger);
        return rc;
    }
    ix->nsinks = cfg->sinks.n;
    for (size_t i = 0; i < ix->nsinks; i++)
        snprintf(ix->names[i], sizeof(ix->names[i]), "%s", sinks[i]->name);
    struct lh_stages *stages = NULL;
    if ((rc = build_stages(ix, cfg, &stages, err)) < 0) {
        for (size_t i = 0; i < ix->nsinks; i++)
            lh_sink_destroy(sinks[i]);
        lh_iledger_close(ledger);
        return rc;
    }
    char replay[256];
    int has_replay = lh_pipeline_replay_topic(&cfg->pipeline, &cfg->bus, replay, sizeof(replay));
    struct lh_pipeline_args args = {
        .bus = ix->bus, .topic = cfg->bus.topic, .replay_topic = has_replay ? replay : NULL,
        .dlq_topic = cfg->bus.dlq_topic, .sinks = sinks, .nsinks = ix->nsinks,
        .stages = stages, .metrics = m, .ledger = ledger,
    };
    if ((rc = lh_pipeline_create(&cfg->pipeline, &args, &ix->pipe, err)) < 0)
        return rc;
    if ((rc = lh_pipeline_start(ix->pipe, pipeline_done, ix, err)) < 0)
        return rc;
    ix->running = 1;
    lh_info("indexing %s from the %s bus into %zu sink(s)", cfg->bus.topic, ix->bus->ops->name,
            ix->nsinks);
    return 0;
}

static int indexer_reload(struct lh_daemon *d, void *state, const void *p, struct lh_err *err)
{
    (void)d;
    struct indexer *ix = state;
    const struct lh_indexer_config *cfg = p, *old = ix->cfg;
    if (!ix->pipe)
        return lh_err_set(err, LH_EINVAL, "not running");
    const char *names[LH_STAGES_MAX_SINKS];
    size_t n = sink_names(cfg, names, LH_STAGES_MAX_SINKS);
    int same = n == ix->nsinks;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(names[i], ix->names[i]) == 0;
    if (!same)
        return lh_err_set(err, LH_EINVAL, "the sink list changes only with a restart");
    if (cfg->bus.type != old->bus.type || strcmp(cfg->bus.topic, old->bus.topic) != 0 ||
        strcmp(cfg->bus.dlq_topic, old->bus.dlq_topic) != 0)
        return lh_err_set(err, LH_EINVAL, "bus settings change only with a restart");
    struct lh_stages *stages = NULL;
    int rc = build_stages(ix, cfg, &stages, err);
    if (rc < 0)
        return rc;
    const struct lh_pipeline_config *a = &cfg->pipeline, *b = &old->pipeline;
    if (a->max_batch != b->max_batch || a->max_batch_bytes != b->max_batch_bytes ||
        a->linger_ms != b->linger_ms || a->workers != b->workers ||
        a->backoff_base_ms != b->backoff_base_ms || a->backoff_cap_ms != b->backoff_cap_ms ||
        a->flush_interval_ms != b->flush_interval_ms || strcmp(a->group, b->group) != 0 ||
        strcmp(a->replay_topic, b->replay_topic) != 0)
        lh_warn("reload: pipeline settings (batching, workers, group) and sink settings take "
                "effect after a restart");
    lh_pipeline_set_stages(ix->pipe, stages);
    ix->cfg = cfg;
    lh_info("reload: parse, enrich, mask, routes and sampling replaced (%zu route(s), %zu "
            "sample rule(s))", cfg->stages.routes.n, cfg->stages.sample.n);
    return 0;
}

static void indexer_shutdown(struct lh_daemon *d, void *state)
{
    struct indexer *ix = state;
    if (!ix)
        return;
    ix->stopping = 1;
    if (ix->running) {
        const struct lh_indexer_config *cfg = lh_daemon_config(d);
        lh_pipeline_stop(ix->pipe, cfg ? cfg->common.drain_timeout_ms : 0);
        return;   /* on_pipeline_done closes the handle */
    }
    if (ix->done_open) {
        uv_close((uv_handle_t *)&ix->done, on_done_closed);
        ix->done_open = 0;
    }
}

static void indexer_destroy(void *state)
{
    struct indexer *ix = state;
    if (!ix)
        return;
    lh_pipeline_destroy(ix->pipe);   /* flushes the sinks, closes the consumers */
    lh_bus_close(ix->bus);
    free(ix);
}

static int indexer_ready(void *state, struct lh_buf *reason)
{
    struct indexer *ix = state;
    if (!ix || !ix->pipe)
        return lh_buf_puts(reason, "starting"), -1;
    if (ix->stopping)
        return lh_buf_puts(reason, "shutting down"), -1;
    return lh_pipeline_status(ix->pipe, reason);
}

const struct lh_daemon_ops lh_indexer_ops = {
    .name = "indexer",
    .description = "consumes the bus, parses, enriches and masks events, writes the sinks",
    .default_listen = "127.0.0.1:7072",
    .opts = indexer_opts,
    .config_size = sizeof(struct lh_indexer_config),
    .common_offset = offsetof(struct lh_indexer_config, common),
    .validate = indexer_validate,
    .init = indexer_init,
    .reload = indexer_reload,
    .shutdown = indexer_shutdown,
    .destroy = indexer_destroy,
    .ready = indexer_ready,
};
