/* sinks.h - the indexer's configured sinks: a list in the config, each
 * item naming an instance and its type, and the factory that creates them.
 *
 *   sinks:
 *     - name: store              # the embedded store (sink_store.h)
 *       type: store
 *       store: { dir: ./var/store }
 *     - name: hot                # OpenSearch / Elasticsearch (sink_opensearch.h)
 *       type: opensearch
 *       opensearch: { urls: [http://127.0.0.1:9200] }
 *     - name: archive            # the archive, dir or S3 (sink_archive.h)
 *       type: archive
 *       archive: { backend: { type: dir, dir: { path: ./var/archive } } }
 *
 * Names are what routes refer to and what metrics are labelled with. Without
 * a `sinks:` key there is one store sink named "store" in ./var/store. */
#ifndef LH_INDEXER_SINKS_H
#define LH_INDEXER_SINKS_H

#include <stddef.h>

#include "lh/conf.h"
#include "lh/err.h"
#include "lh/metrics.h"
#include "lh/store.h"
#include "sink.h"
#include "sink_archive.h"
#include "sink_opensearch.h"

enum lh_sink_type {
    LH_SINK_STORE = 0,
    LH_SINK_OPENSEARCH = 1,
    LH_SINK_ARCHIVE = 2,
};

struct lh_sink_config {
    char *name;
    int type;                                  /* enum lh_sink_type */
    struct lh_store_config store;              /* type: store */
    struct lh_sink_opensearch_config opensearch;  /* type: opensearch */
    struct lh_sink_archive_config archive;         /* type: archive */
};

/* One item of the `sinks:` list. */
extern const struct lh_opt lh_sink_config_opts[];
/* The root-table entry for a struct lh_conf_list `sinks` of lh_sink_config. */
#define LH_SINKS_OPT(cfg_type, member)                                                       \
    { .type = LH_OPT_LIST, .key = "sinks", .def = "[{name: store, type: store}]",           \
      .offset = offsetof(cfg_type, member),                                                  \
      .help = "where events go: name, type (store|opensearch|archive) and that type's section",     \
      .sub = lh_sink_config_opts, .item_size = sizeof(struct lh_sink_config) }

/* Names present, unique, at most 31 bytes; the type's required settings. */
int lh_sinks_validate(const struct lh_conf_list *sinks, struct lh_err *err);

/* Creates every sink of the list in order into out[0..sinks->n) (the caller
 * allocates out). On failure nothing is left open. */
int lh_sinks_create(const struct lh_conf_list *sinks, struct lh_metrics *metrics,
                    struct lh_sink **out, struct lh_err *err);
/* The same; ledgers[i] (may be NULL; the array may be NULL) is the
 * delivery-ledger writer of sink i when it is an archive sink
 * (lh_sink_archive_create_ledger). Every writer is taken over (closed when
 * not used, also on failure) and its slot set to NULL. */
int lh_sinks_create_ledger(const struct lh_conf_list *sinks, struct lh_metrics *metrics,
                           struct lh_iledger **ledgers, struct lh_sink **out, struct lh_err *err);

#endif
