/* bus_put.c - produces raw messages onto a bus topic (spool or Kafka), for
 * tests that need what the collector never writes (values that are not an
 * event, to exercise the indexer's dead-letter path).
 *
 * usage: bus_put --bus spool|kafka [--dir DIR] [--brokers B] --topic T
 *                [--tenant NAME] [--key K] VALUE...
 * Each VALUE becomes one message (key K, header tenant=NAME when given).
 * Exits 0 once the bus acknowledged them all.
 *        bus_put --bus kafka [--brokers B] --delete-topics TOPIC...
 * deletes Kafka topics a test created (exit 0 when the brokers accepted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "lh/bus.h"

static int delete_topics(const char *brokers, char **topics, int n)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "bus_put: %s\n", why);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        fprintf(stderr, "bus_put: %s\n", why);
        return 1;
    }
    rd_kafka_DeleteTopic_t **del = calloc((size_t)n, sizeof(*del));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int rc = 1;
    if (del && q) {
        for (int i = 0; i < n; i++)
            del[i] = rd_kafka_DeleteTopic_new(topics[i]);
        rd_kafka_DeleteTopics(rk, del, (size_t)n, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (ev && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = 0;
        else
            fprintf(stderr, "bus_put: delete topics: %s\n",
                    ev ? rd_kafka_event_error_string(ev) : "timed out");
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_DeleteTopic_destroy_array(del, (size_t)n);
    }
    if (q)
        rd_kafka_queue_destroy(q);
    free(del);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    const char *bus_type = NULL, *dir = "./var/spool", *brokers = "127.0.0.1:9092";
    const char *topic = NULL, *tenant = NULL, *key = "bus-put";
    int i = 1, del = 0;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--delete-topics")) {
            del = 1;
            i++;
            break;
        }
        if (!strcmp(a, "--bus")) bus_type = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--brokers")) brokers = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else if (!strcmp(a, "--tenant")) tenant = v;
        else if (!strcmp(a, "--key")) key = v;
        else { fprintf(stderr, "bus_put: unknown option %s\n", a); return 2; }
    }
    if (del && bus_type && !strcmp(bus_type, "kafka") && i < argc)
        return delete_topics(brokers, argv + i, argc - i);
    if (!bus_type || !topic || i >= argc) {
        fprintf(stderr, "usage: bus_put --bus spool|kafka [--dir DIR] [--brokers B] --topic T "
                        "[--tenant NAME] [--key K] VALUE...\n");
        return 2;
    }
    size_t n = (size_t)(argc - i);
    struct lh_bus_msg *msgs = calloc(n, sizeof(*msgs));
    struct lh_bus_header hdr = { "tenant", tenant };
    if (!msgs)
        return 1;
    for (size_t k = 0; k < n; k++)
        msgs[k] = (struct lh_bus_msg){ .key = key, .key_len = strlen(key), .value = argv[i + k],
                                       .value_len = strlen(argv[i + k]),
                                       .headers = tenant ? &hdr : NULL,
                                       .nheaders = tenant ? 1 : 0 };
    struct lh_bus_config cfg = { 0 };
    struct lh_err err = { 0 };
    struct lh_bus *bus = NULL;
    cfg.type = strcmp(bus_type, "kafka") == 0 ? LH_BUS_KAFKA : LH_BUS_SPOOL;
    cfg.topic = (char *)topic;
    cfg.spool.dir = (char *)dir;
    cfg.spool.segment_bytes = 64 << 20;
    cfg.spool.max_bytes = 1ULL << 40;
    cfg.spool.fsync = 1;
    cfg.kafka.brokers = (char *)brokers;
    cfg.kafka.client_id = (char *)"bus_put";
    cfg.kafka.compression = (char *)"zstd";
    cfg.kafka.delivery_timeout_ms = 30000;
    cfg.kafka.session_timeout_ms = 10000;
    cfg.kafka.max_poll_interval_ms = 300000;
    int rc = lh_bus_open(&cfg, NULL, &bus, &err);
    if (rc == 0)
        rc = lh_bus_produce(bus, topic, msgs, n, &err);
    if (rc < 0)
        fprintf(stderr, "bus_put: %s\n", err.msg);
    lh_bus_close(bus);
    free(msgs);
    return rc < 0 ? 1 : 0;
}
