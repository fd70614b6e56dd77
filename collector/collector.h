/* collector.h - loghaul-collector: the ingest API in front of the bus.
 *
 *   POST /v1/logs/ingest         JSON batch (shipper_metadata + log_records)
 *   POST /v1/logs/ingest/ndjson  one record per line
 *
 * A request is authenticated (shipper token or client certificate ->
 * tenant), checked against the idempotency cache, then decompressed,
 * decoded, rate-limited, encoded and produced to the bus on a worker
 * thread; the answer is 200 {"accepted","batch_id"} only once the bus made
 * every record durable. Stateless: any number run behind a load balancer. */
#ifndef LH_COLLECTOR_H
#define LH_COLLECTOR_H

#include "lh/daemon.h"

extern const struct lh_daemon_ops lh_collector_ops;

#endif
