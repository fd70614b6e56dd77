/* bus_kafka.c - the Kafka bus through librdkafka (see lh/bus.h).
 *
 * Producer: one rd_kafka_t per bus, idempotent (enable.idempotence=true,
 * acks=all), compression from the config (zstd by default), key = the
 * message key (murmur2 partitioner, like the Java client), headers as Kafka
 * record headers. lh_bus_produce enqueues the n messages and waits until
 * all n delivery reports have arrived (a per-call counter and condition
 * variable); a background thread serves rd_kafka_poll. Any failed report
 * fails the call with LH_EUNAVAIL and the broker's reason. A full local
 * queue is retried until delivery_timeout_ms, then LH_EFULL.
 *
 * Consumer: one rd_kafka_t per consumer, in a consumer group, with
 * enable.auto.commit=false and enable.auto.offset.store=false: nothing is
 * committed but what lh_bus_commit commits, synchronously, as the offset
 * after the last message polled per partition (of that batch and of every
 * batch before it). On a rebalance nothing is committed for the caller:
 * messages polled but not committed when a partition is revoked are
 * delivered again to its next owner (at-least-once; the sinks drop the
 * duplicates by event id), and a later commit of a revoked partition is
 * skipped. librdkafka properties from kafka.properties are applied after
 * the defaults and before the settings this contract depends on
 * (idempotence, acks, manual commits), which they cannot override. */
#include "lh/bus.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "bus_impl.h"
#include "lh/arena.h"
#include "lh/log.h"

#define READY_TIMEOUT_MS 1000  /* per health check; bounds how long close waits */

struct ktopic {
    char *name;
    rd_kafka_topic_t *rkt;
    struct ktopic *next;
};

struct kbus {
    struct lh_bus *bus;
    struct lh_bus_kafka_config cfg;  /* strings and properties are our copies */
    rd_kafka_t *producer;
    pthread_t poller;
    int poller_started;
    int stop;                        /* atomic */
    pthread_rwlock_t rw;             /* read: using the producer; write: replacing it */
    pthread_mutex_t mu;              /* topics */
    struct ktopic *topics;
    int fatal;                       /* atomic: the producer hit a fatal error */
    char fatal_msg[256];
    /* Broker reachability, refreshed by the health thread for ready(). */
    pthread_t health;
    int health_started;
    pthread_mutex_t hmu;
    pthread_cond_t hcv;
    int reachable;                   /* under hmu: 0 not yet known, 1 yes, -1 no */
    char reach_msg[256];
    uint64_t produced_msgs, produced_bytes, produce_errors;  /* atomic */
};

/* One lh_bus_produce call waiting for its delivery reports. */
struct kcall {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
    int failed;
    char reason[256];
    char topic[256];
};

struct kpos {
    int32_t partition;
    int64_t next;
};

struct kconsumer {
    struct lh_bus_consumer base;
    struct kbus *kb;
    rd_kafka_t *rk;
    char *topic;
    struct kpos *pos;      /* next offset per partition, over everything polled */
    size_t npos, cappos;
};

struct kbatch {
    rd_kafka_message_t **rkm;
    size_t n;
    struct lh_arena arena;
    struct kpos *snap;     /* positions to commit for this batch */
    size_t nsnap;
};

static int producer_restart(struct kbus *kb, struct lh_err *err);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (strcmp(fac, "FAIL") == 0)
        level = LOG_DEBUG;   /* connection failures come through on_error too */
    if (level <= LOG_ERR)
        lh_error("kafka: %s: %s", fac, buf);
    else if (level == LOG_WARNING)
        lh_warn("kafka: %s: %s", fac, buf);
    else if (level <= LOG_INFO)
        lh_info("kafka: %s: %s", fac, buf);
    else
        lh_debug("kafka: %s: %s", fac, buf);
}

/* opaque is the struct kbus for the producer, the struct kconsumer for a consumer. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kbus *kb = rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? opaque : NULL;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char msg[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, msg, sizeof(msg));
        lh_error("kafka: fatal error: %s: %s", rd_kafka_err2name(orig), msg);
        if (kb && !__atomic_load_n(&kb->fatal, __ATOMIC_ACQUIRE)) {
            snprintf(kb->fatal_msg, sizeof(kb->fatal_msg), "%s: %s", rd_kafka_err2name(orig),
                     msg);
            __atomic_store_n(&kb->fatal, 1, __ATOMIC_RELEASE);
        }
        return;
    }
    lh_warn("kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct kcall *call = m->_private;
    if (!call)
        return;
    pthread_mutex_lock(&call->mu);
    if (m->err && !call->failed) {
        call->failed = 1;
        /* Not rd_kafka_message_errstr: for a delivery report it returns the
         * payload, which is not a string. */
        snprintf(call->reason, sizeof(call->reason), "%s (%s, %s[%d])", rd_kafka_err2str(m->err),
                 rd_kafka_err2name(m->err), rd_kafka_topic_name(m->rkt), (int)m->partition);
    }
    if (--call->pending == 0)
        pthread_cond_broadcast(&call->cv);
    pthread_mutex_unlock(&call->mu);
}

static int kset(rd_kafka_conf_t *conf, const char *key, const char *value, struct lh_err *err)
{
    char es[512];
    if (rd_kafka_conf_set(conf, key, value, es, sizeof(es)) != RD_KAFKA_CONF_OK)
        return lh_err_set(err, LH_EINVAL, "bus.kafka: %s=%s: %s", key, value, es);
    return 0;
}

static int kset_int(rd_kafka_conf_t *conf, const char *key, int64_t v, struct lh_err *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return kset(conf, key, buf, err);
}

/* The settings both sides share, then the user's properties. */
static rd_kafka_conf_t *base_conf(struct kbus *kb, struct lh_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, kb);
    const struct lh_bus_kafka_config *c = &kb->cfg;
    if (kset(conf, "bootstrap.servers", c->brokers, err) < 0 ||
        kset(conf, "client.id", c->client_id ? c->client_id : "loghaul", err) < 0)
        goto fail;
    for (size_t i = 0; i < c->properties.n; i++)
        if (kset(conf, c->properties.keys[i], c->properties.values[i], err) < 0)
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void *poller_main(void *arg)
{
    struct kbus *kb = arg;
    while (!__atomic_load_n(&kb->stop, __ATOMIC_ACQUIRE))
        rd_kafka_poll(kb->producer, 100);
    return NULL;
}

/* Asks the brokers for metadata every few seconds, so that ready() answers
 * at once (it serves /readyz on an event loop). */
static void *health_main(void *arg)
{
    struct kbus *kb = arg;
    while (!__atomic_load_n(&kb->stop, __ATOMIC_ACQUIRE)) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(kb->producer, 0, NULL, &md, READY_TIMEOUT_MS);
        int ok = e == RD_KAFKA_RESP_ERR_NO_ERROR && md->broker_cnt > 0;
        pthread_mutex_lock(&kb->hmu);
        kb->reachable = ok ? 1 : -1;
        if (e)
            snprintf(kb->reach_msg, sizeof(kb->reach_msg), "metadata: %s", rd_kafka_err2str(e));
        else if (!ok)
            snprintf(kb->reach_msg, sizeof(kb->reach_msg), "no broker in metadata");
        if (md)
            rd_kafka_metadata_destroy(md);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += ok ? 3 : 1;
        while (!__atomic_load_n(&kb->stop, __ATOMIC_ACQUIRE))
            if (pthread_cond_timedwait(&kb->hcv, &kb->hmu, &dl) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&kb->hmu);
    }
    return NULL;
}

static rd_kafka_topic_t *topic_get(struct kbus *kb, const char *name, struct lh_err *err)
{
    pthread_mutex_lock(&kb->mu);
    struct ktopic *t;
    for (t = kb->topics; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            break;
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (t && !(t->name = strdup(name))) {
            free(t);
            t = NULL;
        }
        if (t && !(t->rkt = rd_kafka_topic_new(kb->producer, name, NULL))) {
            lh_err_set(err, LH_EINVAL, "kafka: topic %s: %s", name,
                       rd_kafka_err2str(rd_kafka_last_error()));
            free(t->name);
            free(t);
            pthread_mutex_unlock(&kb->mu);
            return NULL;
        }
        if (!t) {
            lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
            pthread_mutex_unlock(&kb->mu);
            return NULL;
        }
        t->next = kb->topics;
        kb->topics = t;
    }
    pthread_mutex_unlock(&kb->mu);
    return t->rkt;
}

static int produce_err_code(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return LH_EFULL;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return LH_ETOOBIG;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return LH_EINVAL;
    default:
        return LH_EUNAVAIL;
    }
}

static int kafka_produce_locked(struct kbus *kb, const char *topic,
                                const struct lh_bus_msg *msgs, size_t n, struct lh_err *err);

static int kafka_produce(struct lh_bus *bus, const char *topic, const struct lh_bus_msg *msgs,
                         size_t n, struct lh_err *err)
{
    struct kbus *kb = bus->ctx;
    if (__atomic_load_n(&kb->fatal, __ATOMIC_ACQUIRE) && producer_restart(kb, err) < 0) {
        __atomic_add_fetch(&kb->produce_errors, 1, __ATOMIC_RELAXED);
        return lh_err_set(err, LH_EUNAVAIL, "kafka: the producer failed fatally (%s) and "
                          "could not be replaced", kb->fatal_msg);
    }
    pthread_rwlock_rdlock(&kb->rw);
    int rc = kafka_produce_locked(kb, topic, msgs, n, err);
    pthread_rwlock_unlock(&kb->rw);
    if (rc < 0)
        __atomic_add_fetch(&kb->produce_errors, 1, __ATOMIC_RELAXED);
    return rc;
}

static int kafka_produce_locked(struct kbus *kb, const char *topic,
                                const struct lh_bus_msg *msgs, size_t n, struct lh_err *err)
{
    if (!kb->producer)
        return lh_err_set(err, LH_EUNAVAIL, "kafka: no producer (it failed fatally: %s)",
                          kb->fatal_msg);
    rd_kafka_topic_t *rkt = topic_get(kb, topic, err);
    if (!rkt) {
        return err ? err->code : LH_ERR;
    }
    struct kcall call = { .pending = 0 };
    pthread_mutex_init(&call.mu, NULL);
    pthread_cond_init(&call.cv, NULL);
    snprintf(call.topic, sizeof(call.topic), "%s", topic);
    int64_t deadline = mono_ms() + (kb->cfg.delivery_timeout_ms > 0 ?
                                    kb->cfg.delivery_timeout_ms : 30000);
    int rc = 0;
    if (__atomic_load_n(&kb->fatal, __ATOMIC_ACQUIRE))
        rc = lh_err_set(err, LH_EUNAVAIL, "kafka: producer failed fatally: %s", kb->fatal_msg);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct lh_bus_msg *m = &msgs[i];
        rd_kafka_headers_t *hdrs = NULL;
        if (m->nheaders) {
            hdrs = rd_kafka_headers_new(m->nheaders);
            for (size_t k = 0; k < m->nheaders; k++)
                rd_kafka_header_add(hdrs, m->headers[k].key, -1, m->headers[k].value, -1);
        }
        pthread_mutex_lock(&call.mu);
        call.pending++;
        pthread_mutex_unlock(&call.mu);
        rd_kafka_resp_err_t e;
        for (;;) {
            e = rd_kafka_producev(kb->producer, RD_KAFKA_V_RKT(rkt),
                                  RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(m->key, m->key ? m->key_len : 0),
                                  RD_KAFKA_V_VALUE((void *)(uintptr_t)m->value, m->value_len),
                                  RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&call),
                                  RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || mono_ms() >= deadline)
                break;
            rd_kafka_poll(kb->producer, 10);   /* serve delivery reports, make room */
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            pthread_mutex_lock(&call.mu);
            call.pending--;
            pthread_mutex_unlock(&call.mu);
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);   /* not taken over on failure */
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rc = lh_err_set(err, LH_EFULL, "kafka: producer queue full for %" PRId64
                                " ms (topic %s)", kb->cfg.delivery_timeout_ms, topic);
            else
                rc = lh_err_set(err, produce_err_code(e), "kafka: produce to %s: %s", topic,
                                rd_kafka_err2str(e));
        }
    }
    /* Every message enqueued gets exactly one delivery report. */
    pthread_mutex_lock(&call.mu);
    while (call.pending > 0)
        pthread_cond_wait(&call.cv, &call.mu);
    pthread_mutex_unlock(&call.mu);
    if (rc == 0 && call.failed)
        rc = lh_err_set(err, LH_EUNAVAIL, "kafka: delivery to %s failed: %s", topic,
                        call.reason);
    pthread_mutex_destroy(&call.mu);
    pthread_cond_destroy(&call.cv);
    if (rc == 0) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += msgs[i].value_len;
        __atomic_add_fetch(&kb->produced_msgs, n, __ATOMIC_RELAXED);
        __atomic_add_fetch(&kb->produced_bytes, bytes, __ATOMIC_RELAXED);
    }
    return rc;
}

/* ---- consumer ---- */

static void pos_remove(struct kconsumer *c, int32_t partition)
{
    for (size_t i = 0; i < c->npos; i++)
        if (c->pos[i].partition == partition) {
            c->pos[i] = c->pos[--c->npos];
            return;
        }
}

static int pos_set(struct kconsumer *c, int32_t partition, int64_t next)
{
    for (size_t i = 0; i < c->npos; i++)
        if (c->pos[i].partition == partition) {
            if (next > c->pos[i].next)
                c->pos[i].next = next;
            return 0;
        }
    if (c->npos == c->cappos) {
        size_t nc = c->cappos ? c->cappos * 2 : 16;
        struct kpos *np = realloc(c->pos, nc * sizeof(*np));
        if (!np)
            return -1;
        c->pos = np;
        c->cappos = nc;
    }
    c->pos[c->npos++] = (struct kpos){ partition, next };
    return 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kconsumer *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        lh_info("kafka: consumer assigned %d partition(s)", parts->cnt);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            re = rd_kafka_assign(rk, parts);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        /* Nothing is committed here: what was polled but not committed
         * goes to the partitions' next owner again. */
        lh_info("kafka: consumer revoked %d partition(s)", parts->cnt);
        for (int i = 0; i < parts->cnt; i++)
            pos_remove(c, parts->elems[i].partition);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            re = rd_kafka_assign(rk, NULL);
        break;
    default:
        lh_error("kafka: rebalance failed: %s", rd_kafka_err2str(err));
        re = rd_kafka_assign(rk, NULL);
        break;
    }
    if (e) {
        lh_error("kafka: rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (re)
        lh_error("kafka: rebalance: %s", rd_kafka_err2str(re));
}

static void kbatch_free(struct kbatch *b, struct lh_bus_msg *msgs)
{
    if (b) {
        for (size_t i = 0; i < b->n; i++)
            rd_kafka_message_destroy(b->rkm[i]);
        free(b->rkm);
        free(b->snap);
        lh_arena_free(&b->arena);
        free(b);
    }
    free(msgs);
}

/* Fills msg from rkm; header strings are copied into the batch arena. */
static int fill_msg(struct kbatch *b, rd_kafka_message_t *rkm, struct lh_bus_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->key = rkm->key;
    msg->key_len = rkm->key ? rkm->key_len : 0;
    msg->value = rkm->payload ? rkm->payload : "";
    msg->value_len = rkm->payload ? rkm->len : 0;
    msg->topic = rd_kafka_topic_name(rkm->rkt);
    msg->partition = rkm->partition;
    msg->offset = rkm->offset;
    msg->timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    size_t cnt = rd_kafka_header_cnt(hdrs);
    if (cnt == 0)
        return 0;
    struct lh_bus_header *h = lh_arena_alloc(&b->arena, cnt * sizeof(*h));
    if (!h)
        return -1;
    size_t k = 0;
    const char *name;
    const void *val;
    size_t size;
    for (size_t idx = 0; k < cnt &&
         rd_kafka_header_get_all(hdrs, idx, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         idx++) {
        h[k].key = lh_arena_strdup(&b->arena, name);
        h[k].value = lh_arena_strndup(&b->arena, val ? val : "", val ? size : 0);
        if (!h[k].key || !h[k].value)
            return -1;
        k++;
    }
    msg->headers = h;
    msg->nheaders = k;
    return 0;
}

static int kafka_poll(struct lh_bus_consumer *base, size_t max, int timeout_ms,
                      struct lh_bus_batch *out, struct lh_err *err)
{
    struct kconsumer *c = (struct kconsumer *)base;
    size_t cap = max < 1024 ? max : 1024;
    struct kbatch *b = calloc(1, sizeof(*b));
    struct lh_bus_msg *msgs = calloc(cap, sizeof(*msgs));
    if (b)
        b->rkm = calloc(cap, sizeof(*b->rkm));
    if (!b || !msgs || !b->rkm) {
        kbatch_free(b, msgs);
        return lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
    }
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;
    while (b->n < max) {
        int wait = 0;
        if (b->n == 0) {
            int64_t left = deadline - mono_ms();
            wait = left > 0 ? (int)left : 0;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, wait);
        if (!rkm) {
            if (b->n > 0 || mono_ms() >= deadline)
                break;
            continue;
        }
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                lh_warn("kafka: consumer of %s: %s: %.*s", c->topic, rd_kafka_err2name(rkm->err),
                        rkm->payload ? (int)rkm->len : 0,
                        rkm->payload ? (const char *)rkm->payload : "");
            rd_kafka_message_destroy(rkm);
            char fe[256];
            if (rd_kafka_fatal_error(c->rk, fe, sizeof(fe))) {
                rc = lh_err_set(err, LH_EUNAVAIL, "kafka: consumer failed fatally: %s", fe);
                break;
            }
            if (b->n == 0 && mono_ms() >= deadline)
                break;
            continue;
        }
        if (b->n == cap) {
            size_t nc = cap * 2 < max ? cap * 2 : max;
            struct lh_bus_msg *nm = realloc(msgs, nc * sizeof(*nm));
            if (nm)
                msgs = nm;
            rd_kafka_message_t **nr = nm ? realloc(b->rkm, nc * sizeof(*nr)) : NULL;
            if (!nr) {
                rd_kafka_message_destroy(rkm);
                rc = lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
                break;
            }
            b->rkm = nr;
            cap = nc;
        }
        b->rkm[b->n] = rkm;
        if (fill_msg(b, rkm, &msgs[b->n]) < 0 || pos_set(c, rkm->partition, rkm->offset + 1)) {
            b->n++;
            rc = lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
            break;
        }
        b->n++;
    }
    if (rc == 0 && b->n > 0 && c->npos > 0) {
        b->snap = malloc(c->npos * sizeof(*b->snap));
        if (!b->snap)
            rc = lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
        else {
            memcpy(b->snap, c->pos, c->npos * sizeof(*b->snap));
            b->nsnap = c->npos;
        }
    }
    if (rc < 0 || b->n == 0) {
        /* Messages handed back unprocessed are fetched again after a
         * restart (nothing was committed for them). */
        kbatch_free(b, msgs);
        return rc;
    }
    out->msgs = msgs;
    out->n = b->n;
    out->impl = b;
    return (int)b->n;
}

static int kafka_commit(struct lh_bus_consumer *base, const struct lh_bus_batch *bt,
                        struct lh_err *err)
{
    struct kconsumer *c = (struct kconsumer *)base;
    const struct kbatch *b = bt->impl;
    if (!b || b->nsnap == 0)
        return 0;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &assigned);
    if (e)
        return lh_err_set(err, LH_EUNAVAIL, "kafka: assignment: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new((int)b->nsnap);
    for (size_t i = 0; i < b->nsnap; i++) {
        /* A revoked partition's messages go to its new owner again. */
        if (!rd_kafka_topic_partition_list_find(assigned, c->topic, b->snap[i].partition))
            continue;
        rd_kafka_topic_partition_list_add(parts, c->topic, b->snap[i].partition)->offset =
            b->snap[i].next;
    }
    rd_kafka_topic_partition_list_destroy(assigned);
    int rc = 0;
    if (parts->cnt > 0) {
        e = rd_kafka_commit(c->rk, parts, 0);
        if (e == RD_KAFKA_RESP_ERR__NO_OFFSET)
            e = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (e)
            rc = lh_err_set(err, LH_EUNAVAIL, "kafka: commit of group offsets for %s: %s",
                            c->topic, rd_kafka_err2str(e));
        for (int i = 0; rc == 0 && i < parts->cnt; i++)
            if (parts->elems[i].err)
                rc = lh_err_set(err, LH_EUNAVAIL, "kafka: commit of %s[%d]: %s", c->topic,
                                parts->elems[i].partition,
                                rd_kafka_err2str(parts->elems[i].err));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static void kafka_batch_release(struct lh_bus_consumer *c, struct lh_bus_batch *b)
{
    (void)c;
    kbatch_free(b->impl, b->msgs);
}

static void kafka_consumer_close(struct lh_bus_consumer *base)
{
    struct kconsumer *c = (struct kconsumer *)base;
    if (c->rk) {
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
        if (e)
            lh_warn("kafka: consumer close: %s", rd_kafka_err2str(e));
        rd_kafka_destroy(c->rk);
    }
    free(c->pos);
    free(c->topic);
    free(c);
}

static const struct lh_bus_ops kafka_ops;

static int kafka_consumer_open(struct lh_bus *bus, const char *group, const char *topic,
                               struct lh_bus_consumer **out, struct lh_err *err)
{
    struct kbus *kb = bus->ctx;
    struct kconsumer *c = calloc(1, sizeof(*c));
    if (!c || !(c->topic = strdup(topic))) {
        free(c);
        return lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
    }
    c->base.ops = &kafka_ops;
    c->base.bus = bus;
    c->kb = kb;
    int rc = 0;
    rd_kafka_conf_t *conf = base_conf(kb, err);
    if (!conf) {
        kafka_consumer_close(&c->base);
        return err ? err->code : LH_EINVAL;
    }
    if (kset(conf, "group.id", group, err) < 0 ||
        kset(conf, "auto.offset.reset", "earliest", err) < 0 ||
        kset_int(conf, "session.timeout.ms", kb->cfg.session_timeout_ms, err) < 0 ||
        kset_int(conf, "max.poll.interval.ms", kb->cfg.max_poll_interval_ms, err) < 0 ||
        kset(conf, "enable.auto.commit", "false", err) < 0 ||
        kset(conf, "enable.auto.offset.store", "false", err) < 0) {
        rd_kafka_conf_destroy(conf);
        kafka_consumer_close(&c->base);
        return err ? err->code : LH_EINVAL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, c);   /* for the rebalance callback */
    char es[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es));
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        kafka_consumer_close(&c->base);
        return lh_err_set(err, LH_EINVAL, "kafka: consumer: %s", es);
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        rc = lh_err_set(err, LH_EUNAVAIL, "kafka: subscribe to %s: %s", topic,
                        rd_kafka_err2str(e));
        kafka_consumer_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static int kafka_consumer_lag(struct lh_bus_consumer *base, int64_t *lag, struct lh_err *err)
{
    struct kconsumer *c = (struct kconsumer *)base;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &parts);
    if (e)
        return lh_err_set(err, LH_EUNAVAIL, "kafka: assignment: %s", rd_kafka_err2str(e));
    rd_kafka_position(c->rk, parts);
    int64_t sum = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(c->rk, parts->elems[i].topic,
                                           parts->elems[i].partition, &lo, &hi) != 0 || hi < 0)
            continue;
        int64_t at = parts->elems[i].offset >= 0 ? parts->elems[i].offset : lo;
        if (hi > at)
            sum += hi - at;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    *lag = sum;
    return 0;
}

/* ---- bus ---- */

/* Non-blocking: the health thread's last answer. */
static int kafka_ready(struct lh_bus *bus, struct lh_err *err)
{
    struct kbus *kb = bus->ctx;
    if (__atomic_load_n(&kb->fatal, __ATOMIC_ACQUIRE))
        return lh_err_set(err, LH_EUNAVAIL, "kafka: the producer failed fatally (%s); the next "
                          "produce replaces it", kb->fatal_msg);
    int rc = 0;
    pthread_mutex_lock(&kb->hmu);
    if (kb->reachable == 0)
        rc = lh_err_set(err, LH_EUNAVAIL, "kafka: brokers %s: connecting", kb->cfg.brokers);
    else if (kb->reachable < 0)
        rc = lh_err_set(err, LH_EUNAVAIL, "kafka: brokers %s: %s", kb->cfg.brokers,
                        kb->reach_msg);
    pthread_mutex_unlock(&kb->hmu);
    return rc;
}

static int kafka_stats(struct lh_bus *bus, const char *topic, struct lh_bus_stats *out,
                       struct lh_err *err)
{
    (void)topic;
    (void)err;
    struct kbus *kb = bus->ctx;
    out->produced_msgs = __atomic_load_n(&kb->produced_msgs, __ATOMIC_RELAXED);
    out->produced_bytes = __atomic_load_n(&kb->produced_bytes, __ATOMIC_RELAXED);
    out->produce_errors = __atomic_load_n(&kb->produce_errors, __ATOMIC_RELAXED);
    return 0;
}

/* Stops the poll thread, drops the topic handles and the producer. */
static void producer_stop(struct kbus *kb)
{
    __atomic_store_n(&kb->stop, 1, __ATOMIC_RELEASE);
    if (kb->health_started) {
        pthread_mutex_lock(&kb->hmu);
        pthread_cond_broadcast(&kb->hcv);
        pthread_mutex_unlock(&kb->hmu);
        pthread_join(kb->health, NULL);
        kb->health_started = 0;
    }
    if (kb->poller_started) {
        pthread_join(kb->poller, NULL);
        kb->poller_started = 0;
    }
    __atomic_store_n(&kb->stop, 0, __ATOMIC_RELEASE);
    while (kb->topics) {
        struct ktopic *t = kb->topics;
        kb->topics = t->next;
        rd_kafka_topic_destroy(t->rkt);
        free(t->name);
        free(t);
    }
    if (kb->producer) {
        /* Every produce call waited for its reports; this only drains
         * what a failed call left queued. */
        rd_kafka_flush(kb->producer, 5000);
        rd_kafka_destroy(kb->producer);
        kb->producer = NULL;
    }
}

static int producer_start(struct kbus *kb, struct lh_err *err)
{
    rd_kafka_conf_t *conf = base_conf(kb, err);
    if (!conf)
        return err ? err->code : LH_EINVAL;
    if (kset(conf, "compression.type", kb->cfg.compression, err) < 0 ||
        kset_int(conf, "linger.ms", kb->cfg.linger_ms, err) < 0 ||
        (kb->cfg.batch_bytes && kset_int(conf, "batch.size", (int64_t)kb->cfg.batch_bytes,
                                         err) < 0) ||
        kset_int(conf, "message.timeout.ms", kb->cfg.delivery_timeout_ms, err) < 0 ||
        kset(conf, "partitioner", "murmur2_random", err) < 0 ||
        kset(conf, "enable.idempotence", "true", err) < 0 ||
        kset(conf, "acks", "all", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return err ? err->code : LH_EINVAL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char es[512];
    kb->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
    if (!kb->producer) {
        rd_kafka_conf_destroy(conf);
        return lh_err_set(err, LH_EINVAL, "kafka: producer: %s", es);
    }
    if (pthread_create(&kb->poller, NULL, poller_main, kb) != 0) {
        rd_kafka_destroy(kb->producer);
        kb->producer = NULL;
        return lh_err_set(err, LH_ERR, "kafka: cannot start the poll thread");
    }
    kb->poller_started = 1;
    if (pthread_create(&kb->health, NULL, health_main, kb) != 0) {
        producer_stop(kb);
        return lh_err_set(err, LH_ERR, "kafka: cannot start the health thread");
    }
    kb->health_started = 1;
    return 0;
}

/* An idempotent producer that failed fatally stays failed: replace it once
 * the calls still using it have had their (failed) delivery reports. */
static int producer_restart(struct kbus *kb, struct lh_err *err)
{
    int rc = 0;
    pthread_rwlock_wrlock(&kb->rw);
    if (__atomic_load_n(&kb->fatal, __ATOMIC_ACQUIRE)) {
        lh_warn("kafka: replacing the producer after a fatal error: %s", kb->fatal_msg);
        producer_stop(kb);
        rc = producer_start(kb, err);
        if (rc == 0)
            __atomic_store_n(&kb->fatal, 0, __ATOMIC_RELEASE);
        else
            lh_error("kafka: cannot replace the producer: %s", err ? err->msg : "");
    }
    pthread_rwlock_unlock(&kb->rw);
    return rc;
}

static void kbus_free(struct kbus *kb)
{
    producer_stop(kb);
    pthread_rwlock_destroy(&kb->rw);
    pthread_mutex_destroy(&kb->mu);
    pthread_mutex_destroy(&kb->hmu);
    pthread_cond_destroy(&kb->hcv);
    free(kb->cfg.brokers);
    free(kb->cfg.client_id);
    free(kb->cfg.compression);
    for (size_t i = 0; i < kb->cfg.properties.n; i++) {
        free(kb->cfg.properties.keys[i]);
        free(kb->cfg.properties.values[i]);
    }
    free(kb->cfg.properties.keys);
    free(kb->cfg.properties.values);
    free(kb);
}

/* For tests: makes the producer fail as if the broker had fenced it. */
int lh_bus_kafka_test_fatal(struct lh_bus *bus)
{
    struct kbus *kb = bus->ctx;
    pthread_rwlock_rdlock(&kb->rw);
    rd_kafka_resp_err_t e = rd_kafka_test_fatal_error(
        kb->producer, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "test-induced");
    pthread_rwlock_unlock(&kb->rw);
    return e ? LH_ERR : 0;
}

static void kafka_destroy(struct lh_bus *bus)
{
    kbus_free(bus->ctx);
}

static const struct lh_bus_ops kafka_ops = {
    .name = "kafka",
    .produce = kafka_produce,
    .consumer_open = kafka_consumer_open,
    .poll = kafka_poll,
    .commit = kafka_commit,
    .batch_release = kafka_batch_release,
    .consumer_close = kafka_consumer_close,
    .ready = kafka_ready,
    .destroy = kafka_destroy,
    .stats = kafka_stats,
    .consumer_lag = kafka_consumer_lag,
};

static int copy_config(struct kbus *kb, const struct lh_bus_kafka_config *c)
{
    kb->cfg = *c;
    kb->cfg.brokers = strdup(c->brokers);
    kb->cfg.client_id = c->client_id ? strdup(c->client_id) : NULL;
    kb->cfg.compression = strdup(c->compression && c->compression[0] ? c->compression : "zstd");
    kb->cfg.properties.n = 0;
    kb->cfg.properties.keys = calloc(c->properties.n + 1, sizeof(char *));
    kb->cfg.properties.values = calloc(c->properties.n + 1, sizeof(char *));
    if (!kb->cfg.brokers || (c->client_id && !kb->cfg.client_id) || !kb->cfg.compression ||
        !kb->cfg.properties.keys || !kb->cfg.properties.values)
        return -1;
    for (size_t i = 0; i < c->properties.n; i++) {
        char *k = strdup(c->properties.keys[i]), *v = strdup(c->properties.values[i]);
        if (!k || !v) {
            free(k);
            free(v);
            return -1;
        }
        kb->cfg.properties.keys[i] = k;
        kb->cfg.properties.values[i] = v;
        kb->cfg.properties.n++;
    }
    return 0;
}

int lh_bus_kafka_open(const struct lh_bus_config *cfg, struct lh_bus *bus, struct lh_err *err)
{
    const struct lh_bus_kafka_config *c = &cfg->kafka;
    if (!c->brokers || !c->brokers[0])
        return lh_err_set(err, LH_EINVAL, "bus.kafka.brokers: not set");
    struct kbus *kb = calloc(1, sizeof(*kb));
    if (!kb)
        return lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
    pthread_mutex_init(&kb->mu, NULL);
    pthread_rwlock_init(&kb->rw, NULL);
    pthread_mutex_init(&kb->hmu, NULL);
    pthread_cond_init(&kb->hcv, NULL);
    kb->bus = bus;
    if (copy_config(kb, c) < 0) {
        kbus_free(kb);
        return lh_err_set(err, LH_ENOMEM, "kafka: out of memory");
    }
    if (kb->cfg.delivery_timeout_ms <= 0)
        kb->cfg.delivery_timeout_ms = 30000;
    /* Not librdkafka's 45 s: when the coordinator comes back from an
     * outage it waits for the members it remembers for this long before it
     * assigns partitions again, and heartbeats run on librdkafka's own
     * thread, so a slow batch never counts against it (max_poll_interval
     * does). 10 s is within the brokers' default 6-1800 s range. */
    if (kb->cfg.session_timeout_ms <= 0)
        kb->cfg.session_timeout_ms = 10000;
    if (kb->cfg.max_poll_interval_ms <= 0)
        kb->cfg.max_poll_interval_ms = 300000;
    int rc = producer_start(kb, err);
    if (rc < 0) {
        kbus_free(kb);
        return rc;
    }
    bus->ops = &kafka_ops;
    bus->ctx = kb;
    return 0;
}
