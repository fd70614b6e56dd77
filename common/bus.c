/* bus.c - the bus interface: option table, dispatch to spool or kafka (see lh/bus.h). */
#include "lh/bus.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_impl.h"

static const struct lh_opt spool_opts[] = {
    { LH_OPT_STR, "dir", "./var/spool", offsetof(struct lh_bus_spool_config, dir),
      "directory of the spool: one sub-directory per topic" },
    { LH_OPT_SIZE, "segment_size", "64MiB", offsetof(struct lh_bus_spool_config, segment_bytes),
      "roll to a new segment file once a segment is this large" },
    { LH_OPT_DURATION, "group_commit", "2ms",
      offsetof(struct lh_bus_spool_config, group_commit_ms),
      "how long one fsync may wait for producers still writing, to cover them too" },
    { LH_OPT_SIZE, "max_size", "4GiB", offsetof(struct lh_bus_spool_config, max_bytes),
      "unconsumed bytes per topic; past it produce fails with EFULL (HTTP 503 upstream)" },
    { LH_OPT_DURATION, "retention", "24h", offsetof(struct lh_bus_spool_config, retention_ms),
      "delete consumed segments older than this (0: never by age)" },
    { LH_OPT_SIZE, "retention_size", "1GiB",
      offsetof(struct lh_bus_spool_config, retention_bytes),
      "delete the oldest consumed segments while the topic is larger than this (0: no limit)" },
    { LH_OPT_BOOL, "fsync", "true", offsetof(struct lh_bus_spool_config, fsync),
      "fsync before acknowledging; false only to measure the unsafe ceiling" },
    { 0 }
};

static const struct lh_opt kafka_opts[] = {
    { LH_OPT_STR, "brokers", "127.0.0.1:9092", offsetof(struct lh_bus_kafka_config, brokers),
      "bootstrap brokers, host:port[,host:port...]" },
    { LH_OPT_STR, "client_id", "loghaul", offsetof(struct lh_bus_kafka_config, client_id),
      "client.id sent to the brokers" },
    { LH_OPT_DURATION, "delivery_timeout", "30s",
      offsetof(struct lh_bus_kafka_config, delivery_timeout_ms),
      "give up on a message not acknowledged within this (message.timeout.ms)" },
    { LH_OPT_DURATION, "linger", "5ms", offsetof(struct lh_bus_kafka_config, linger_ms),
      "wait this long to fill producer batches (linger.ms)" },
    { LH_OPT_SIZE, "batch_size", "1MiB", offsetof(struct lh_bus_kafka_config, batch_bytes),
      "largest producer batch per partition (batch.size)" },
    { LH_OPT_STR, "compression", "zstd", offsetof(struct lh_bus_kafka_config, compression),
      "compression.type: none, gzip, snappy, lz4, zstd" },
    { LH_OPT_DURATION, "session_timeout", "10s",
      offsetof(struct lh_bus_kafka_config, session_timeout_ms),
      "consumer group session timeout (session.timeout.ms): after a broker outage the "
      "group waits this long for the old member before consuming again" },
    { LH_OPT_DURATION, "max_poll_interval", "5m",
      offsetof(struct lh_bus_kafka_config, max_poll_interval_ms),
      "a consumer not polling for this long leaves the group (max.poll.interval.ms)" },
    { LH_OPT_STRMAP, "properties", NULL, offsetof(struct lh_bus_kafka_config, properties),
      "extra librdkafka properties (security.protocol, ssl.*, sasl.*)", LH_OPT_SECRET },
    { 0 }
};

const struct lh_opt lh_bus_opts[] = {
    { LH_OPT_ENUM, "type", "spool", offsetof(struct lh_bus_config, type),
      "spool (embedded, on-disk) or kafka", 0, NULL, 0, "spool|kafka" },
    { LH_OPT_STR, "topic", "logs", offsetof(struct lh_bus_config, topic),
      "topic of the events; \"{tenant}\" expands to the tenant (logs.{tenant})" },
    { LH_OPT_STR, "dlq_topic", "logs.dlq", offsetof(struct lh_bus_config, dlq_topic),
      "dead-letter topic" },
    { LH_OPT_SECTION, "spool", NULL, offsetof(struct lh_bus_config, spool),
      "the embedded spool (type: spool)", 0, spool_opts },
    { LH_OPT_SECTION, "kafka", NULL, offsetof(struct lh_bus_config, kafka),
      "Apache Kafka (type: kafka)", 0, kafka_opts },
    { 0 }
};

int lh_bus_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 200 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct lh_bus_instruments *instruments(struct lh_metrics *m, const char *bus)
{
    struct lh_bus_instruments *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    char lb[64], l2[128];
    lh_metrics_label(lb, sizeof(lb), "bus", bus);
    in->produce_seconds = lh_histogram_get(m, "loghaul_bus_produce_seconds",
                                           "Time for a produce call to be durable", lb,
                                           lh_latency_buckets, lh_latency_nbuckets);
    in->produced_msgs = lh_counter_get(m, "loghaul_bus_produced_messages_total",
                                       "Messages acknowledged by the bus", lb);
    in->produced_bytes = lh_counter_get(m, "loghaul_bus_produced_bytes_total",
                                        "Value bytes acknowledged by the bus", lb);
    snprintf(l2, sizeof(l2), "%s,reason=\"full\"", lb);
    in->err_full = lh_counter_get(m, "loghaul_bus_produce_errors_total",
                                  "Failed produce calls by reason", l2);
    snprintf(l2, sizeof(l2), "%s,reason=\"unavailable\"", lb);
    in->err_unavail = lh_counter_get(m, "loghaul_bus_produce_errors_total",
                                     "Failed produce calls by reason", l2);
    snprintf(l2, sizeof(l2), "%s,reason=\"other\"", lb);
    in->err_other = lh_counter_get(m, "loghaul_bus_produce_errors_total",
                                   "Failed produce calls by reason", l2);
    return in;
}

int lh_bus_open(const struct lh_bus_config *cfg, struct lh_metrics *metrics,
                struct lh_bus **out, struct lh_err *err)
{
    struct lh_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return lh_err_set(err, LH_ENOMEM, "bus: out of memory");
    bus->metrics = metrics;
    if (metrics &&
        !(bus->inst = instruments(metrics, cfg->type == LH_BUS_KAFKA ? "kafka" : "spool"))) {
        free(bus);
        return lh_err_set(err, LH_ENOMEM, "bus: out of memory");
    }
    int rc;
    switch (cfg->type) {
    case LH_BUS_SPOOL:
        rc = lh_bus_spool_open(cfg, bus, err);
        break;
    case LH_BUS_KAFKA:
        rc = lh_bus_kafka_open(cfg, bus, err);
        break;
    default:
        rc = lh_err_set(err, LH_EINVAL, "bus: unknown type %d", cfg->type);
        break;
    }
    if (rc < 0) {
        free(bus->inst);
        free(bus);
        return rc;
    }
    *out = bus;
    return 0;
}

int lh_bus_produce(struct lh_bus *bus, const char *topic, const struct lh_bus_msg *msgs,
                   size_t n, struct lh_err *err)
{
    if (n == 0)
        return 0;
    if (!lh_bus_name_ok(topic))
        return lh_err_set(err, LH_EINVAL, "bus: bad topic name \"%s\"", topic ? topic : "");
    struct lh_bus_instruments *in = bus->inst;
    double t0 = in ? mono_s() : 0;
    int rc = bus->ops->produce(bus, topic, msgs, n, err);
    if (in) {
        if (rc == 0) {
            uint64_t bytes = 0;
            for (size_t i = 0; i < n; i++)
                bytes += msgs[i].value_len;
            lh_histogram_observe(in->produce_seconds, mono_s() - t0);
            lh_counter_add(in->produced_msgs, n);
            lh_counter_add(in->produced_bytes, bytes);
        } else {
            lh_counter_add(rc == LH_EFULL ? in->err_full :
                           rc == LH_EUNAVAIL ? in->err_unavail : in->err_other, 1);
        }
    }
    return rc;
}

int lh_bus_consumer_open(struct lh_bus *bus, const char *group, const char *topic,
                         struct lh_bus_consumer **out, struct lh_err *err)
{
    if (!lh_bus_name_ok(topic))
        return lh_err_set(err, LH_EINVAL, "bus: bad topic name \"%s\"", topic ? topic : "");
    if (!lh_bus_name_ok(group))
        return lh_err_set(err, LH_EINVAL, "bus: bad consumer group name \"%s\"",
                          group ? group : "");
    int rc = bus->ops->consumer_open(bus, group, topic, out, err);
    if (rc == 0 && bus->metrics) {
        char lb[512], t[256], g[256];
        snprintf(lb, sizeof(lb), "bus=\"%s\",%s,%s", bus->ops->name,
                 lh_metrics_label(t, sizeof(t), "topic", topic),
                 lh_metrics_label(g, sizeof(g), "group", group));
        (*out)->consumed = lh_counter_get(bus->metrics, "loghaul_bus_consumed_messages_total",
                                          "Messages returned by poll", lb);
        (*out)->lag = lh_gauge_get(bus->metrics, "loghaul_bus_consumer_lag_messages",
                                   "Messages between a consumer and the end of its topic", lb);
    }
    return rc;
}

int lh_bus_poll(struct lh_bus_consumer *c, size_t max, int timeout_ms, struct lh_bus_batch *out,
                struct lh_err *err)
{
    memset(out, 0, sizeof(*out));
    if (max == 0)
        return 0;
    int rc = c->ops->poll(c, max, timeout_ms, out, err);
    if (rc > 0)
        lh_counter_add(c->consumed, (uint64_t)rc);
    if (c->lag) {
        int64_t now = (int64_t)(mono_s() * 1000);
        int64_t lag;
        if (now - c->lag_updated_ms >= 1000 && c->ops->consumer_lag(c, &lag, NULL) == 0) {
            lh_gauge_set(c->lag, (double)lag);
            c->lag_updated_ms = now;
        }
    }
    return rc;
}

int lh_bus_commit(struct lh_bus_consumer *c, const struct lh_bus_batch *b, struct lh_err *err)
{
    if (!b || b->n == 0)
        return 0;
    return c->ops->commit(c, b, err);
}

void lh_bus_batch_release(struct lh_bus_consumer *c, struct lh_bus_batch *b)
{
    if (!b)
        return;
    if (b->impl || b->msgs)
        c->ops->batch_release(c, b);
    memset(b, 0, sizeof(*b));
}

void lh_bus_consumer_close(struct lh_bus_consumer *c)
{
    if (c)
        c->ops->consumer_close(c);
}

int lh_bus_ready(struct lh_bus *bus, struct lh_err *err)
{
    return bus->ops->ready(bus, err);
}

int lh_bus_stats(struct lh_bus *bus, const char *topic, struct lh_bus_stats *out,
                 struct lh_err *err)
{
    memset(out, 0, sizeof(*out));
    if (topic && !lh_bus_name_ok(topic))
        return lh_err_set(err, LH_EINVAL, "bus: bad topic name \"%s\"", topic);
    return bus->ops->stats(bus, topic, out, err);
}

int lh_bus_consumer_lag(struct lh_bus_consumer *c, int64_t *lag, struct lh_err *err)
{
    *lag = 0;
    return c->ops->consumer_lag(c, lag, err);
}

int lh_bus_topic_expand(const char *tmpl, const char *tenant, char *out, size_t n,
                        struct lh_err *err)
{
    size_t o = 0;
    const char *p = tmpl;
    if (n == 0)
        return lh_err_set(err, LH_ETOOBIG, "bus: topic buffer of 0 bytes");
    while (*p) {
        if (strncmp(p, "{tenant}", 8) == 0) {
            const char *t = tenant && tenant[0] ? tenant : "default";
            for (; *t; t++) {
                char c = *t;
                int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                if (o + 1 >= n)
                    return lh_err_set(err, LH_ETOOBIG, "bus: topic from \"%s\" too long", tmpl);
                out[o++] = ok ? c : '_';
            }
            p += 8;
            continue;
        }
        if (o + 1 >= n)
            return lh_err_set(err, LH_ETOOBIG, "bus: topic from \"%s\" too long", tmpl);
        out[o++] = *p++;
    }
    out[o] = '\0';
    if (!lh_bus_name_ok(out))
        return lh_err_set(err, LH_EINVAL, "bus: topic \"%s\" (from \"%s\") is not a valid name",
                          out, tmpl);
    return 0;
}

void lh_bus_close(struct lh_bus *bus)
{
    if (!bus)
        return;
    bus->ops->destroy(bus);
    free(bus->inst);
    free(bus);
}

void lh_bus_config_free(struct lh_bus_config *cfg)
{
    if (cfg)
        lh_conf_free(lh_bus_opts, cfg);
}
