/* fallback.h - the collector's local spool for an outage of its bus.
 *
 * Kafka keeps hours of data for the indexers (the regional buffer); this
 * covers the other direction: when the collector cannot reach Kafka, it
 * keeps accepting into a bounded spool on local disk (still answering 200
 * only once the batch is durable there) and a forwarder thread moves the
 * backlog into Kafka when it is reachable again. Once the local spool is
 * full, produce returns LH_EFULL (503 upstream).
 *
 * While the primary is marked down, batches go straight to the local spool
 * (no request waits for a delivery timeout); the forwarder probes the
 * primary every probe interval. A batch whose produce to the primary
 * failed half-way is written whole to the spool: the part that did reach
 * Kafka arrives twice, with the same ids. Thread-safe. */
#ifndef LH_COLLECTOR_FALLBACK_H
#define LH_COLLECTOR_FALLBACK_H

#include "lh/bus.h"
#include "lh/conf.h"
#include "lh/metrics.h"

struct lh_fallback_config {
    char *dir;                  /* NULL: no fallback */
    uint64_t max_bytes;
    int64_t probe_interval_ms;
};

extern const struct lh_opt lh_fallback_opts[];

struct lh_fallback;

/* primary is not owned and must outlive the fallback. */
int lh_fallback_open(const struct lh_fallback_config *cfg, struct lh_bus *primary,
                     struct lh_metrics *metrics, struct lh_fallback **out, struct lh_err *err);
/* Stops the forwarder (the backlog stays on disk for the next start). */
void lh_fallback_close(struct lh_fallback *fb);

/* Produces to the primary, or to the local spool when the primary is down. */
int lh_fallback_produce(struct lh_fallback *fb, const char *topic, const struct lh_bus_msg *msgs,
                        size_t n, struct lh_err *err);

/* 1 while the primary is considered down. */
int lh_fallback_active(const struct lh_fallback *fb);

#endif
