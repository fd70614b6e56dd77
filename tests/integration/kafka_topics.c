/* kafka_topics.c - deletes Kafka topics a test created (librdkafka's admin
 * API), so that tests on the shared broker clean up after themselves.
 *
 * usage: kafka_topics [--brokers 127.0.0.1:9092] [--timeout-ms 30000] --delete TOPIC...
 * Exit 0 when every topic is gone (one that did not exist counts as gone),
 * 1 on any other error (printed), 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

static int usage(void)
{
    fprintf(stderr, "usage: kafka_topics [--brokers HOST:PORT] [--timeout-ms N] "
                    "--delete TOPIC...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *brokers = "127.0.0.1:9092";
    int timeout_ms = 30000, first = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = argv[++i];
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            timeout_ms = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--delete") == 0 && i + 1 < argc) {
            first = i + 1;
            break;
        } else {
            return usage();
        }
    }
    if (first < 0 || timeout_ms <= 0)
        return usage();
    int n = argc - first;

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka_topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_DeleteTopic_t **del = calloc((size_t)n, sizeof(*del));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    int rc = 1;
    if (!del || !q || !opt)
        goto out;
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof(errstr));
    for (int i = 0; i < n; i++)
        del[i] = rd_kafka_DeleteTopic_new(argv[first + i]);
    rd_kafka_DeleteTopics(rk, del, (size_t)n, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        fprintf(stderr, "kafka_topics: no answer within %d ms\n", timeout_ms + 5000);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "kafka_topics: %s\n", rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
        rc = 0;
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                fprintf(stderr, "kafka_topics: %s: %s\n", rd_kafka_topic_result_name(res[i]),
                        rd_kafka_err2str(e));
                rc = 1;
            }
        }
    }
    rd_kafka_event_destroy(ev);
out:
    if (del) {
        for (int i = 0; i < n; i++)
            if (del[i])
                rd_kafka_DeleteTopic_destroy(del[i]);
        free(del);
    }
    if (opt)
        rd_kafka_AdminOptions_destroy(opt);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
