/* bus.h - the durable message bus between collectors and indexers.
 *
 * One interface, two implementations chosen by configuration:
 *   spool (bus_spool.c)  a durable on-disk queue in a directory: the embedded default
 *   kafka (bus_kafka.c)  Apache Kafka through librdkafka: scaled out
 * Nothing outside bus*.c knows which one is in use.
 *
 * Delivery contract: lh_bus_produce returns 0 only when every message of the
 * call is durable (spool: written and fsync'd; kafka: acknowledged by all
 * in-sync replicas, idempotent producer). On failure some messages may be
 * stored anyway: callers retry the whole call, and duplicates are removed
 * downstream by event id. Consumers commit a position only after the
 * messages before it were fully processed, so a crash replays, never skips. */
#ifndef LH_BUS_H
#define LH_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "lh/conf.h"
#include "lh/err.h"
#include "lh/metrics.h"

struct lh_bus;
struct lh_bus_consumer;

struct lh_bus_header {
    const char *key;
    const char *value;   /* NUL-terminated */
};

struct lh_bus_msg {
    const char *key;                      /* partitioning key (the host); may be NULL */
    size_t key_len;
    const char *value;                    /* the payload (an encoded event) */
    size_t value_len;
    const struct lh_bus_header *headers;  /* e.g. {"tenant", "acme"} */
    size_t nheaders;
    /* Filled in by consumers: where the message came from. */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;                 /* when the bus stored it (ms since the epoch) */
};

/* A batch returned by lh_bus_poll. Its messages and their bytes stay valid
 * until lh_bus_batch_release; positions to commit travel inside it. */
struct lh_bus_batch {
    struct lh_bus_msg *msgs;
    size_t n;
    void *impl;          /* owned by the implementation */
};

struct lh_bus_spool_config {
    char *dir;                 /* root directory: one sub-directory per topic */
    uint64_t segment_bytes;    /* roll to a new segment file past this size */
    int64_t group_commit_ms;   /* fsync at most this often; producers wait for it */
    uint64_t max_bytes;        /* total size bound; produce returns LH_EFULL past it */
    int64_t retention_ms;      /* delete segments older than this once consumed */
    uint64_t retention_bytes;  /* ...or when the topic is larger than this */
    int fsync;                 /* 0 only for benchmarks of the unsafe ceiling */
};

struct lh_bus_kafka_config {
    char *brokers;             /* "host:port,host:port" */
    char *client_id;
    int64_t delivery_timeout_ms;
    int64_t linger_ms;
    uint64_t batch_bytes;
    char *compression;         /* zstd by default */
    int64_t session_timeout_ms;
    int64_t max_poll_interval_ms;
    struct lh_strmap properties; /* extra librdkafka properties (security.protocol, ssl.*, sasl.*) */
};

struct lh_bus_config {
    int type;                  /* LH_BUS_SPOOL or LH_BUS_KAFKA ("spool|kafka") */
    char *topic;               /* default "logs"; "{tenant}" expands per tenant */
    char *dlq_topic;           /* default "logs.dlq" */
    struct lh_bus_spool_config spool;
    struct lh_bus_kafka_config kafka;
};

enum { LH_BUS_SPOOL = 0, LH_BUS_KAFKA = 1 };

/* The `bus:` section's option table (type, topic, dlq_topic, spool:, kafka:). */
extern const struct lh_opt lh_bus_opts[];

/* Counters of one bus (and one topic of it, where the implementation knows
 * it) for /metrics and tests. Fields an implementation cannot know are 0. */
struct lh_bus_stats {
    uint64_t produced_msgs;    /* acknowledged by produce since open (all topics) */
    uint64_t produced_bytes;   /* their value bytes */
    uint64_t produce_errors;   /* failed produce calls */
    uint64_t syncs;            /* spool: group commits (fdatasync calls) */
    uint64_t disk_bytes;       /* spool: bytes of the topic's segment files */
    uint64_t unconsumed_bytes; /* spool: bytes not yet committed by the slowest group */
    uint64_t segments;         /* spool: segment files of the topic */
    uint64_t next_offset;      /* spool: offset the next record will get */
};

struct lh_bus_ops {
    const char *name;
    int (*produce)(struct lh_bus *bus, const char *topic, const struct lh_bus_msg *msgs,
                   size_t n, struct lh_err *err);
    int (*consumer_open)(struct lh_bus *bus, const char *group, const char *topic,
                         struct lh_bus_consumer **out, struct lh_err *err);
    int (*poll)(struct lh_bus_consumer *c, size_t max, int timeout_ms,
                struct lh_bus_batch *out, struct lh_err *err);
    int (*commit)(struct lh_bus_consumer *c, const struct lh_bus_batch *b, struct lh_err *err);
    void (*batch_release)(struct lh_bus_consumer *c, struct lh_bus_batch *b);
    void (*consumer_close)(struct lh_bus_consumer *c);
    int (*ready)(struct lh_bus *bus, struct lh_err *err);
    void (*destroy)(struct lh_bus *bus);
    int (*stats)(struct lh_bus *bus, const char *topic, struct lh_bus_stats *out,
                 struct lh_err *err);
    int (*consumer_lag)(struct lh_bus_consumer *c, int64_t *lag, struct lh_err *err);
};

struct lh_bus_instruments;

struct lh_bus {
    const struct lh_bus_ops *ops;
    void *ctx;                 /* owned by the implementation */
    struct lh_metrics *metrics;/* not owned; may be NULL */
    struct lh_bus_instruments *inst; /* bus.c's metric handles; NULL without metrics */
};

/* Opens the implementation named by cfg->type. metrics may be NULL; when
 * given, it must outlive the bus. Metrics (label bus="spool|kafka"):
 *   loghaul_bus_produce_seconds (histogram), loghaul_bus_produced_messages_total,
 *   loghaul_bus_produced_bytes_total, loghaul_bus_produce_errors_total{reason=full|
 *   unavailable|other}; per consumer {topic,group}: loghaul_bus_consumed_messages_total,
 *   loghaul_bus_consumer_lag_messages (updated by poll at most once a second);
 *   spool, per topic written here: loghaul_spool_disk_bytes, loghaul_spool_unconsumed_bytes,
 *   loghaul_spool_segments, loghaul_spool_syncs_total, loghaul_spool_sync_seconds;
 *   per consumer: loghaul_spool_damaged_records_total (skipped, failed checksums). */
int lh_bus_open(const struct lh_bus_config *cfg, struct lh_metrics *metrics,
                struct lh_bus **out, struct lh_err *err);

/* Thread-safe. Blocks until durable or failed. LH_EFULL: the bus is full
 * (answer 503 upstream); LH_EUNAVAIL: it cannot be reached now. */
int lh_bus_produce(struct lh_bus *bus, const char *topic, const struct lh_bus_msg *msgs,
                   size_t n, struct lh_err *err);

/* A consumer in a consumer group. One thread per consumer. */
int lh_bus_consumer_open(struct lh_bus *bus, const char *group, const char *topic,
                         struct lh_bus_consumer **out, struct lh_err *err);
/* Up to max messages, waiting up to timeout_ms for the first. Returns the
 * count (0 on timeout) or a negative code. */
int lh_bus_poll(struct lh_bus_consumer *c, size_t max, int timeout_ms, struct lh_bus_batch *out,
                struct lh_err *err);
/* Commits the position after the last message of b (and of every batch
 * polled before it). Durable when it returns 0. */
int lh_bus_commit(struct lh_bus_consumer *c, const struct lh_bus_batch *b, struct lh_err *err);
void lh_bus_batch_release(struct lh_bus_consumer *c, struct lh_bus_batch *b);
void lh_bus_consumer_close(struct lh_bus_consumer *c);

/* Counters of the bus; topic (may be NULL) selects the per-topic fields of
 * the spool (the writer side of this process). Thread-safe. */
int lh_bus_stats(struct lh_bus *bus, const char *topic, struct lh_bus_stats *out,
                 struct lh_err *err);
/* Messages between the consumer's position and the newest message it can
 * see (spool: the durable end; kafka: the high watermarks of the assigned
 * partitions as last fetched). Call from the consumer's thread. */
int lh_bus_consumer_lag(struct lh_bus_consumer *c, int64_t *lag, struct lh_err *err);

/* Expands "{tenant}" in a topic template (cfg->topic) into out. Tenant
 * characters outside [A-Za-z0-9._-] become '_' so the result is a valid
 * topic name. LH_ETOOBIG when it does not fit in n bytes. */
int lh_bus_topic_expand(const char *tmpl, const char *tenant, char *out, size_t n,
                        struct lh_err *err);

/* 0 when the bus can take writes now (for /readyz). Does not block: kafka
 * answers from a health thread that asks the brokers every few seconds;
 * spool checks the directory, free space and the topics' max_bytes. */
int lh_bus_ready(struct lh_bus *bus, struct lh_err *err);
void lh_bus_close(struct lh_bus *bus);
void lh_bus_config_free(struct lh_bus_config *cfg);

#endif
