/* bus_impl.h - what bus.c shares with the bus implementations (bus_spool.c,
 * bus_kafka.c). Private to common/: nothing else includes it. */
#ifndef LH_BUS_IMPL_H
#define LH_BUS_IMPL_H

#include "lh/bus.h"

/* Every implementation's consumer starts with this, so that bus.c can
 * dispatch lh_bus_poll(c) and friends to the right ops. */
struct lh_bus_consumer {
    const struct lh_bus_ops *ops;
    struct lh_bus *bus;
    /* Set by bus.c after the implementation's consumer_open. */
    struct lh_counter *consumed;
    struct lh_gauge *lag;
    int64_t lag_updated_ms;
};

/* Metric handles shared by the implementations (NULL-safe to update). */
struct lh_bus_instruments {
    struct lh_histogram *produce_seconds;
    struct lh_counter *produced_msgs, *produced_bytes;
    struct lh_counter *err_full, *err_unavail, *err_other;
};

/* Each fills bus->ops and bus->ctx (bus->metrics is set already) or fails
 * leaving both untouched. cfg is only borrowed: copy what is kept. */
int lh_bus_spool_open(const struct lh_bus_config *cfg, struct lh_bus *bus, struct lh_err *err);
int lh_bus_kafka_open(const struct lh_bus_config *cfg, struct lh_bus *bus, struct lh_err *err);

/* For tests: triggers a fatal error in the kafka bus's producer, as a
 * broker fencing it would (the next produce replaces the producer). */
int lh_bus_kafka_test_fatal(struct lh_bus *bus);

/* A topic or group name usable as a file name and as a Kafka topic:
 * 1..200 of [A-Za-z0-9._-], not "." or "..", not starting with '.'. */
int lh_bus_name_ok(const char *name);

#endif
