/* fallback.c - local spool + forwarder for an unreachable bus (see fallback.h). */
#include "fallback.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lh/log.h"

const struct lh_opt lh_fallback_opts[] = {
    { LH_OPT_STR, "dir", NULL, offsetof(struct lh_fallback_config, dir),
      "local spool used while Kafka is unreachable (unset: answer 503 instead)" },
    { LH_OPT_SIZE, "max_size", "1GiB", offsetof(struct lh_fallback_config, max_bytes),
      "bytes the local spool may hold; beyond it requests get 503" },
    { LH_OPT_DURATION, "probe_interval", "2s",
      offsetof(struct lh_fallback_config, probe_interval_ms),
      "how often an unreachable bus is probed" },
    { 0 }
};

#define MAX_TOPICS 64

struct topic_consumer {
    char *topic;
    struct lh_bus_consumer *c;
};

struct lh_fallback {
    struct lh_bus *primary;
    struct lh_bus *local;
    char *dir;
    int64_t probe_ms;
    atomic_int down;
    atomic_int stop;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct topic_consumer topics[MAX_TOPICS];
    size_t ntopics;
    struct lh_counter *forwarded, *spooled;
    struct lh_gauge *active;
};

static void set_down(struct lh_fallback *fb, int down, const char *why)
{
    int was = atomic_exchange(&fb->down, down);
    lh_gauge_set(fb->active, down);
    if (was != down) {
        if (down)
            lh_warn("bus unreachable (%s): accepting into the local spool %s", why, fb->dir);
        else
            lh_info("bus reachable again: forwarding the local spool");
    }
    pthread_mutex_lock(&fb->mu);
    pthread_cond_signal(&fb->cv);
    pthread_mutex_unlock(&fb->mu);
}

static struct lh_bus_consumer *consumer_for(struct lh_fallback *fb, const char *topic)
{
    for (size_t i = 0; i < fb->ntopics; i++)
        if (strcmp(fb->topics[i].topic, topic) == 0)
            return fb->topics[i].c;
    if (fb->ntopics == MAX_TOPICS)
        return NULL;
    struct lh_err err = { 0 };
    struct topic_consumer *t = &fb->topics[fb->ntopics];
    if (!(t->topic = strdup(topic)))
        return NULL;
    if (lh_bus_consumer_open(fb->local, "forwarder", topic, &t->c, &err) < 0) {
        lh_error("fallback: consumer for %s: %s", topic, err.msg);
        free(t->topic);
        return NULL;
    }
    fb->ntopics++;
    return t->c;
}

/* Moves one batch of one topic to the primary. Returns messages moved, 0
 * when that topic is empty, <0 when the primary failed. */
static int forward_topic(struct lh_fallback *fb, const char *topic)
{
    struct lh_bus_consumer *c = consumer_for(fb, topic);
    if (!c)
        return 0;
    struct lh_err err = { 0 };
    struct lh_bus_batch b;
    int n = lh_bus_poll(c, 5000, 0, &b, &err);
    if (n <= 0)
        return 0;
    int rc = lh_bus_produce(fb->primary, topic, b.msgs, b.n, &err);
    if (rc == 0)
        rc = lh_bus_commit(c, &b, &err);
    lh_bus_batch_release(c, &b);
    if (rc < 0) {
        /* Not committed: the same messages are polled again next time. */
        lh_bus_consumer_close(c);
        for (size_t i = 0; i < fb->ntopics; i++) {
            if (fb->topics[i].c == c) {
                free(fb->topics[i].topic);
                fb->topics[i] = fb->topics[--fb->ntopics];
                break;
            }
        }
        set_down(fb, 1, err.msg);
        return -1;
    }
    lh_counter_add(fb->forwarded, (uint64_t)n);
    return n;
}

static void *forwarder(void *arg)
{
    struct lh_fallback *fb = arg;
    while (!atomic_load(&fb->stop)) {
        int moved = 0;
        if (atomic_load(&fb->down)) {
            struct lh_err err = { 0 };
            if (lh_bus_ready(fb->primary, &err) == 0)
                set_down(fb, 0, NULL);
        }
        if (!atomic_load(&fb->down)) {
            DIR *d = opendir(fb->dir);
            struct dirent *de;
            while (d && (de = readdir(d)) && !atomic_load(&fb->stop)) {
                if (de->d_name[0] == '.')
                    continue;
                int n = forward_topic(fb, de->d_name);
                if (n < 0)
                    break;
                moved += n;
            }
            if (d)
                closedir(d);
        }
        if (moved)
            continue;
        /* Idle or down: wait for a signal or the probe interval. */
        pthread_mutex_lock(&fb->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ms = atomic_load(&fb->down) ? fb->probe_ms : 200;
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!atomic_load(&fb->stop))
            pthread_cond_timedwait(&fb->cv, &fb->mu, &ts);
        pthread_mutex_unlock(&fb->mu);
    }
    return NULL;
}

int lh_fallback_open(const struct lh_fallback_config *cfg, struct lh_bus *primary,
                     struct lh_metrics *metrics, struct lh_fallback **out, struct lh_err *err)
{
    *out = NULL;
    struct lh_fallback *fb = calloc(1, sizeof(*fb));
    if (!fb || !(fb->dir = strdup(cfg->dir))) {
        free(fb);
        return lh_err_set(err, LH_ENOMEM, "fallback: out of memory");
    }
    pthread_mutex_init(&fb->mu, NULL);
    pthread_cond_init(&fb->cv, NULL);
    fb->primary = primary;
    fb->probe_ms = cfg->probe_interval_ms > 0 ? cfg->probe_interval_ms : 2000;
    struct lh_bus_config local = { 0 };
    local.type = LH_BUS_SPOOL;
    local.topic = (char *)"logs";
    local.spool.dir = fb->dir;
    local.spool.segment_bytes = 64u << 20;
    local.spool.max_bytes = cfg->max_bytes;
    local.spool.group_commit_ms = 2;
    local.spool.retention_ms = 24LL * 3600 * 1000;
    local.spool.retention_bytes = cfg->max_bytes;
    local.spool.fsync = 1;
    int rc = lh_bus_open(&local, metrics, &fb->local, err);
    if (rc < 0) {
        lh_fallback_close(fb);
        return lh_err_wrap(err, "fallback spool %s", cfg->dir);
    }
    if (metrics) {
        fb->forwarded = lh_counter_get(metrics, "loghaul_collector_fallback_forwarded_total",
                                       "records moved from the local spool to the bus", NULL);
        fb->spooled = lh_counter_get(metrics, "loghaul_collector_fallback_spooled_total",
                                     "records accepted into the local spool", NULL);
        fb->active = lh_gauge_get(metrics, "loghaul_collector_fallback_active",
                                  "1 while the bus is unreachable and the local spool is used",
                                  NULL);
    }
    if (pthread_create(&fb->thread, NULL, forwarder, fb) != 0) {
        lh_fallback_close(fb);
        return lh_err_set(err, LH_ERR, "fallback: cannot start the forwarder thread");
    }
    fb->thread_started = 1;
    *out = fb;
    return 0;
}

void lh_fallback_close(struct lh_fallback *fb)
{
    if (!fb)
        return;
    atomic_store(&fb->stop, 1);
    pthread_mutex_lock(&fb->mu);
    pthread_cond_signal(&fb->cv);
    pthread_mutex_unlock(&fb->mu);
    if (fb->thread_started)
        pthread_join(fb->thread, NULL);
    for (size_t i = 0; i < fb->ntopics; i++) {
        lh_bus_consumer_close(fb->topics[i].c);
        free(fb->topics[i].topic);
    }
    lh_bus_close(fb->local);
    pthread_cond_destroy(&fb->cv);
    pthread_mutex_destroy(&fb->mu);
    free(fb->dir);
    free(fb);
}

int lh_fallback_active(const struct lh_fallback *fb)
{
    return fb && atomic_load(&((struct lh_fallback *)fb)->down);
}

int lh_fallback_produce(struct lh_fallback *fb, const char *topic, const struct lh_bus_msg *msgs,
                        size_t n, struct lh_err *err)
{
    if (!atomic_load(&fb->down)) {
        int rc = lh_bus_produce(fb->primary, topic, msgs, n, err);
        if (rc != LH_EUNAVAIL)
            return rc;
        set_down(fb, 1, err->msg);
    }
    int rc = lh_bus_produce(fb->local, topic, msgs, n, err);
    if (rc == 0)
        lh_counter_add(fb->spooled, n);
    return rc;
}
