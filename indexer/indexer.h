/* indexer.h - loghaul-indexer: consumes events from the bus, runs the
 * pipeline (pipeline.h: decode, parse, enrich, mask, route, sample) and
 * writes the configured sinks (sinks.h), committing its bus position only
 * after every sink acknowledged. Admin routes: /healthz, /readyz (not ready
 * while a sink or the dead-letter queue is failing), /metrics.
 *
 * The config struct is public so that tools (`loghaul dlq`) read the same
 * file with lh_daemon_load_config(&lh_indexer_ops, ...). */
#ifndef LH_INDEXER_H
#define LH_INDEXER_H

#include "lh/bus.h"
#include "lh/daemon.h"
#include "ledger.h"
#include "pipeline.h"
#include "sinks.h"
#include "stages.h"

struct lh_indexer_config {
    struct lh_daemon_common common;
    struct lh_bus_config bus;
    struct lh_pipeline_config pipeline;
    struct lh_stages_config stages;
    struct lh_conf_list sinks;           /* of struct lh_sink_config */
    struct lh_iledger_config ledger;     /* delivery-ledger rows (ledger.h) */
};

extern const struct lh_daemon_ops lh_indexer_ops;

#endif
