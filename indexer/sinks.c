/* sinks.c - the configured sink list and its factory (see sinks.h). */
#include "sinks.h"

#include <string.h>

#include "sink_store.h"

const struct lh_opt lh_sink_config_opts[] = {
    { LH_OPT_STR, "name", NULL, offsetof(struct lh_sink_config, name),
      "instance name: what routes refer to, the sink=\"...\" metric label", LH_OPT_REQUIRED },
    { LH_OPT_ENUM, "type", NULL, offsetof(struct lh_sink_config, type),
      "store (the embedded store), opensearch (OpenSearch / Elasticsearch) or archive (a "
      "directory or S3 bucket of Parquet / NDJSON objects)", LH_OPT_REQUIRED, NULL, 0,
      "store|opensearch|archive" },
    { LH_OPT_SECTION, "store", NULL, offsetof(struct lh_sink_config, store),
      "type: store", 0, lh_store_opts },
    { LH_OPT_SECTION, "opensearch", NULL, offsetof(struct lh_sink_config, opensearch),
      "type: opensearch", 0, lh_sink_opensearch_opts },
    { LH_OPT_SECTION, "archive", NULL, offsetof(struct lh_sink_config, archive),
      "type: archive", 0, lh_sink_archive_opts },
    { 0 }
};

int lh_sinks_validate(const struct lh_conf_list *sinks, struct lh_err *err)
{
    const struct lh_sink_config *s = sinks->items;
    if (sinks->n == 0)
        return lh_err_set(err, LH_EINVAL, "sinks: at least one sink is needed");
    for (size_t i = 0; i < sinks->n; i++) {
        if (!s[i].name || !s[i].name[0] || strlen(s[i].name) > 31)
            return lh_err_set(err, LH_EINVAL, "sinks[%zu].name: 1 to 31 characters", i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(s[i].name, s[k].name) == 0)
                return lh_err_set(err, LH_EINVAL, "sinks[%zu].name: '%s' is used twice", i,
                                  s[i].name);
        if (s[i].type == LH_SINK_STORE && (!s[i].store.dir || !s[i].store.dir[0]))
            return lh_err_set(err, LH_EINVAL, "sinks[%zu].store.dir: required", i);
        if (s[i].type == LH_SINK_OPENSEARCH && s[i].opensearch.urls.n == 0)
            return lh_err_set(err, LH_EINVAL, "sinks[%zu].opensearch.urls: required", i);
        if (s[i].type == LH_SINK_ARCHIVE &&
            (!s[i].archive.staging_dir || !s[i].archive.staging_dir[0]))
            return lh_err_set(err, LH_EINVAL, "sinks[%zu].archive.staging_dir: required", i);
        if (s[i].type == LH_SINK_ARCHIVE && s[i].archive.backend.type == LH_ARCHIVE_S3 &&
            (!s[i].archive.backend.s3.bucket || !s[i].archive.backend.s3.bucket[0]))
            return lh_err_set(err, LH_EINVAL, "sinks[%zu].archive.backend.s3.bucket: required",
                              i);
    }
    for (size_t i = 0; i < sinks->n; i++)
        for (size_t k = 0; k < i; k++) {
            if (s[i].type == LH_SINK_STORE && s[k].type == LH_SINK_STORE &&
                strcmp(s[i].store.dir, s[k].store.dir) == 0)
                return lh_err_set(err, LH_EINVAL, "sinks[%zu]: store directory %s is also "
                                  "used by %s (one writer per directory)", i, s[i].store.dir,
                                  s[k].name);
            if (s[i].type == LH_SINK_ARCHIVE && s[k].type == LH_SINK_ARCHIVE &&
                strcmp(s[i].archive.staging_dir, s[k].archive.staging_dir) == 0)
                return lh_err_set(err, LH_EINVAL, "sinks[%zu]: staging directory %s is also "
                                  "used by %s", i, s[i].archive.staging_dir, s[k].name);
        }
    return 0;
}

int lh_sinks_create(const struct lh_conf_list *sinks, struct lh_metrics *metrics,
                    struct lh_sink **out, struct lh_err *err)
{
    return lh_sinks_create_ledger(sinks, metrics, NULL, out, err);
}

int lh_sinks_create_ledger(const struct lh_conf_list *sinks, struct lh_metrics *metrics,
                           struct lh_iledger **ledgers, struct lh_sink **out, struct lh_err *err)
{
    const struct lh_sink_config *s = sinks->items;
    int rc = lh_sinks_validate(sinks, err);
    if (rc < 0) {
        for (size_t i = 0; ledgers && i < sinks->n; i++)
            lh_iledger_close(ledgers[i]);
        return rc;
    }
    for (size_t i = 0; i < sinks->n; i++) {
        struct lh_iledger *lg = ledgers ? ledgers[i] : NULL;
        if (ledgers)
            ledgers[i] = NULL;
        if (s[i].type != LH_SINK_ARCHIVE) {
            lh_iledger_close(lg);
            lg = NULL;
        }
        out[i] = NULL;
        switch (s[i].type) {
        case LH_SINK_STORE:
            rc = lh_sink_store_create(&s[i].store, s[i].name, metrics, &out[i], err);
            break;
        case LH_SINK_OPENSEARCH:
            rc = lh_sink_opensearch_create(&s[i].opensearch, s[i].name, metrics, &out[i], err);
            break;
        case LH_SINK_ARCHIVE:
            rc = lh_sink_archive_create_ledger(&s[i].archive, s[i].name, metrics, lg, &out[i],
                                               err);
            break;
        default:
            rc = lh_err_set(err, LH_EINVAL, "unknown sink type %d", s[i].type);
        }
        if (rc < 0) {
            lh_err_wrap(err, "sink %s", s[i].name);
            for (size_t k = 0; k < i; k++)
                lh_sink_destroy(out[k]);
            for (size_t k = i + 1; ledgers && k < sinks->n; k++)
                lh_iledger_close(ledgers[k]);
            return rc;
        }
    }
    return 0;
}
