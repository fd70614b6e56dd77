/* bus_roundtrip.c - end-to-end test of a bus (spool or real Kafka): many
 * producer threads, a consumer group, exactly-once checks, resume after commit.
 *
 * usage: bus_roundtrip --bus spool|kafka [--count N] [--threads N] [--batch N]
 *                      [--size BYTES] [--dir DIR] [--brokers HOST:PORT]
 *                      [--no-fsync] [--produce-only] [--keep]
 * Produces N events (JSON of about --size bytes, a unique sequence number,
 * key = host, header tenant) from the threads in batches, consumes half in a
 * consumer group and commits, reopens (a restart) and consumes the rest,
 * checking every sequence number arrives exactly once with its key and
 * tenant; then produces a few more and checks only those arrive. Prints one
 * summary line with MB/s and exits 0 on success. --produce-only measures
 * produce throughput alone. */
#include "lh/bus.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
    int type;
    long count, threads, batch, size;
    const char *dir, *brokers;
    int fsync, produce_only, keep;
    char topic[128], group[128];
    char dirbuf[256];
} opt = { LH_BUS_SPOOL, 100000, 4, 500, 500, NULL, NULL, 1, 0, 0, "", "", "" };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void host_of(long seq, char *out, size_t n)
{
    snprintf(out, n, "web-%02ld.dc1.example.com", seq % 16);
}

static const char *tenant_of(long seq)
{
    static const char *t[] = { "acme", "globex", "initech" };
    return t[seq % 3];
}

/* A realistic event of about opt.size bytes, fully determined by seq. */
static size_t make_event(long seq, char *buf, size_t cap)
{
    static const char *levels[] = { "INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG" };
    char host[64];
    host_of(seq, host, sizeof(host));
    int n = snprintf(buf, cap,
                     "{\"timestamp\":\"2026-11-22T02:%02ld:%02ld.%03ldZ\",\"id\":"
                     "\"9f1c2e4b7a6d4c0e8b3f5a2d1c0e9b8a-%ld\",\"tenant\":\"%s\","
                     "\"service\":\"checkout-api\",\"level\":\"%s\",\"host\":\"%s\","
                     "\"trace_id\":\"%016lx%016lx\",\"span_id\":\"%016lx\",\"seq\":%ld,"
                     "\"k8s\":{\"namespace\":\"shop\",\"pod\":\"checkout-api-7d9f8-%ld\","
                     "\"container\":\"app\"},\"message\":\"POST /api/v1/orders/%ld completed "
                     "status=200 duration_ms=%ld user=u%ld\",\"custom_metadata\":{"
                     "\"region\":\"eu-west-1\",\"build\":\"v2.14.%ld\"},\"raw\":\"",
                     (seq / 60) % 60, seq % 60, seq % 1000, seq, tenant_of(seq),
                     levels[seq % 6], host, (unsigned long)seq * 2654435761u,
                     (unsigned long)seq ^ 0x5bd1e995ul, (unsigned long)seq * 40503ul, seq,
                     seq % 7, seq, seq % 997, seq % 5000, seq % 40);
    size_t len = (size_t)n;
    size_t target = (size_t)opt.size > len + 3 ? (size_t)opt.size : len + 3;
    if (target > cap)
        target = cap;
    for (; len < target - 2; len++)
        buf[len] = (char)('a' + (seq + (long)len) % 26);
    buf[len++] = '"';
    buf[len++] = '}';
    return len;
}

static long seq_of(const char *v, size_t len)
{
    const char *p = memmem(v, len, "\"seq\":", 6);
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static struct lh_bus *open_bus(void)
{
    struct lh_bus_config cfg = {0};
    cfg.type = opt.type;
    cfg.spool.dir = (char *)opt.dir;
    cfg.spool.segment_bytes = 64u << 20;
    cfg.spool.group_commit_ms = 2;
    cfg.spool.max_bytes = 0;
    cfg.spool.retention_ms = 0;
    cfg.spool.fsync = opt.fsync;
    cfg.kafka.brokers = (char *)opt.brokers;
    cfg.kafka.client_id = "loghaul-bus-roundtrip";
    cfg.kafka.delivery_timeout_ms = 30000;
    cfg.kafka.linger_ms = 5;
    cfg.kafka.batch_bytes = 1u << 20;
    cfg.kafka.compression = "zstd";
    cfg.kafka.session_timeout_ms = 10000;
    cfg.kafka.max_poll_interval_ms = 300000;
    struct lh_bus *bus = NULL;
    struct lh_err err = {0};
    if (lh_bus_open(&cfg, NULL, &bus, &err) < 0) {
        fprintf(stderr, "bus_roundtrip: open: %s\n", err.msg);
        return NULL;
    }
    return bus;
}

struct prod {
    struct lh_bus *bus;
    pthread_barrier_t *start;
    long first, count;
    uint64_t bytes;
    int failed;
};

/* Encodes all its events first (not timed), then produces them in batches. */
static void *producer_main(void *arg)
{
    struct prod *p = arg;
    size_t cap = (size_t)opt.size + 1024;
    char *vals = malloc((size_t)p->count * cap);
    char (*hosts)[64] = malloc((size_t)p->count * sizeof(*hosts));
    struct lh_bus_msg *m = calloc((size_t)p->count, sizeof(*m));
    struct lh_bus_header *h = calloc((size_t)p->count, sizeof(*h));
    if (!vals || !hosts || !m || !h)
        p->failed = 1;
    for (long i = 0; !p->failed && i < p->count; i++) {
        long seq = p->first + i;
        size_t len = make_event(seq, vals + (size_t)i * cap, cap);
        host_of(seq, hosts[i], sizeof(hosts[i]));
        h[i] = (struct lh_bus_header){ "tenant", tenant_of(seq) };
        m[i] = (struct lh_bus_msg){ .key = hosts[i], .key_len = strlen(hosts[i]),
                                    .value = vals + (size_t)i * cap, .value_len = len,
                                    .headers = &h[i], .nheaders = 1 };
        p->bytes += len;
    }
    pthread_barrier_wait(p->start);
    for (long done = 0; !p->failed && done < p->count;) {
        long k = p->count - done < opt.batch ? p->count - done : opt.batch;
        struct lh_err err = {0};
        int rc;
        /* Backpressure and brief outages are retried, as a collector would. */
        for (int attempt = 0;; attempt++) {
            rc = lh_bus_produce(p->bus, opt.topic, m + done, (size_t)k, &err);
            if (rc == 0 || attempt >= 5 || (rc != LH_EFULL && rc != LH_EUNAVAIL))
                break;
            fprintf(stderr, "bus_roundtrip: produce retry: %s\n", err.msg);
            usleep(200000);
        }
        if (rc < 0) {
            fprintf(stderr, "bus_roundtrip: produce: %s\n", err.msg);
            p->failed = 1;
        }
        done += k;
    }
    free(vals);
    free(hosts);
    free(m);
    free(h);
    return NULL;
}

/* Produces [first, first+count) from opt.threads threads; times the produce
 * calls only. */
static int produce_all(struct lh_bus *bus, long first, long count, double *secs, uint64_t *bytes)
{
    long nt = opt.threads;
    pthread_t *t = calloc((size_t)nt, sizeof(*t));
    struct prod *p = calloc((size_t)nt, sizeof(*p));
    pthread_barrier_t start;
    if (!t || !p || pthread_barrier_init(&start, NULL, (unsigned)nt + 1) != 0)
        return -1;
    for (long i = 0; i < nt; i++) {
        long lo = first + count * i / nt, hi = first + count * (i + 1) / nt;
        p[i] = (struct prod){ .bus = bus, .start = &start, .first = lo, .count = hi - lo };
        pthread_create(&t[i], NULL, producer_main, &p[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    int failed = 0;
    *bytes = 0;
    for (long i = 0; i < nt; i++) {
        pthread_join(t[i], NULL);
        failed |= p[i].failed;
        *bytes += p[i].bytes;
    }
    *secs = now_s() - t0;
    pthread_barrier_destroy(&start);
    free(t);
    free(p);
    return failed ? -1 : 0;
}

struct tally {
    unsigned char *seen;
    long total, limit;     /* seqs [0, limit) are valid */
    long dups, bad;
    uint64_t bytes;
};

static int check_msg(struct tally *t, const struct lh_bus_msg *m)
{
    long seq = seq_of(m->value, m->value_len);
    if (seq < 0 || seq >= t->limit) {
        fprintf(stderr, "bus_roundtrip: unexpected record (seq %ld) at %s[%d]@%" PRId64 "\n",
                seq, m->topic, m->partition, m->offset);
        t->bad++;
        return -1;
    }
    char host[64], exp[8192];
    host_of(seq, host, sizeof(host));
    size_t len = make_event(seq, exp, sizeof(exp));
    const char *tenant = NULL;
    for (size_t i = 0; i < m->nheaders; i++)
        if (strcmp(m->headers[i].key, "tenant") == 0)
            tenant = m->headers[i].value;
    if (m->key_len != strlen(host) || memcmp(m->key, host, m->key_len) != 0 || !tenant ||
        strcmp(tenant, tenant_of(seq)) != 0 || m->value_len != len ||
        memcmp(m->value, exp, len) != 0) {
        fprintf(stderr, "bus_roundtrip: seq %ld: wrong key, tenant header or payload\n", seq);
        t->bad++;
        return -1;
    }
    if (t->seen[seq]) {
        fprintf(stderr, "bus_roundtrip: seq %ld delivered twice\n", seq);
        t->dups++;
        return -1;
    }
    t->seen[seq] = 1;
    t->total++;
    t->bytes += m->value_len;
    return 0;
}

/* Consumes in the group until `until` records were counted in t (or, when
 * quiet_ms > 0, until nothing arrives for that long). Commits every batch. */
static int consume(struct lh_bus *bus, struct tally *t, long until, int quiet_ms, double *secs)
{
    struct lh_bus_consumer *c;
    struct lh_err err = {0};
    if (lh_bus_consumer_open(bus, opt.group, opt.topic, &c, &err) < 0) {
        fprintf(stderr, "bus_roundtrip: consumer: %s\n", err.msg);
        return -1;
    }
    double t0 = now_s(), last = t0, first_at = 0;
    int rc = 0;
    while (t->total < until || quiet_ms > 0) {
        struct lh_bus_batch b;
        long want = until - t->total;
        size_t max = want > 0 && want < 1000 ? (size_t)want : 1000;
        int n = lh_bus_poll(c, max, 500, &b, &err);
        if (n < 0) {
            fprintf(stderr, "bus_roundtrip: poll: %s\n", err.msg);
            rc = -1;
            break;
        }
        double now = now_s();
        if (n == 0) {
            if (quiet_ms > 0 && now - last > quiet_ms / 1000.0)
                break;
            if (now - last > 60) {
                fprintf(stderr, "bus_roundtrip: nothing for 60 s at %ld of %ld\n", t->total,
                        until);
                rc = -1;
                break;
            }
            continue;
        }
        if (!first_at)
            first_at = now;
        last = now;
        for (int i = 0; i < n; i++)
            if (check_msg(t, &b.msgs[i]) < 0)
                rc = -1;
        if (lh_bus_commit(c, &b, &err) < 0) {
            fprintf(stderr, "bus_roundtrip: commit: %s\n", err.msg);
            rc = -1;
        }
        lh_bus_batch_release(c, &b);
        if (rc < 0)
            break;
    }
    if (secs)
        *secs = last - (first_at ? first_at : t0);
    lh_bus_consumer_close(c);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: bus_roundtrip --bus spool|kafka [--count N] [--threads N] "
                    "[--batch N] [--size BYTES] [--dir DIR] [--brokers HOST:PORT] "
                    "[--no-fsync] [--produce-only] [--keep]\n");
    return 2;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "bus_roundtrip: could not remove %s\n", path);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--bus") == 0 && v) {
            if (strcmp(v, "spool") == 0)
                opt.type = LH_BUS_SPOOL;
            else if (strcmp(v, "kafka") == 0)
                opt.type = LH_BUS_KAFKA;
            else
                return usage();
            i++;
        } else if (strcmp(a, "--count") == 0 && v) {
            opt.count = atol(v), i++;
        } else if (strcmp(a, "--threads") == 0 && v) {
            opt.threads = atol(v), i++;
        } else if (strcmp(a, "--batch") == 0 && v) {
            opt.batch = atol(v), i++;
        } else if (strcmp(a, "--size") == 0 && v) {
            opt.size = atol(v), i++;
        } else if (strcmp(a, "--dir") == 0 && v) {
            opt.dir = v, i++;
        } else if (strcmp(a, "--brokers") == 0 && v) {
            opt.brokers = v, i++;
        } else if (strcmp(a, "--no-fsync") == 0) {
            opt.fsync = 0;
        } else if (strcmp(a, "--produce-only") == 0) {
            opt.produce_only = 1;
        } else if (strcmp(a, "--keep") == 0) {
            opt.keep = 1;
        } else {
            return usage();
        }
    }
    if (opt.count < 2 || opt.threads < 1 || opt.batch < 1 || opt.size < 64 || opt.size > 7000)
        return usage();
    if (!opt.brokers)
        opt.brokers = getenv("LOGHAUL_KAFKA_BROKERS") ? getenv("LOGHAUL_KAFKA_BROKERS")
                                                      : "127.0.0.1:9092";
    int made_dir = 0;
    if (!opt.dir) {
        snprintf(opt.dirbuf, sizeof(opt.dirbuf), "%s/lh-bus-roundtrip-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(opt.dirbuf)) {
            perror("mkdtemp");
            return 1;
        }
        opt.dir = opt.dirbuf;
        made_dir = 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(opt.topic, sizeof(opt.topic), "lh-roundtrip-%ld-%ld", (long)getpid(),
             (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    snprintf(opt.group, sizeof(opt.group), "%s-g", opt.topic);
    const char *busname = opt.type == LH_BUS_KAFKA ? "kafka" : "spool";

    int rc = 1;
    struct tally t = { .limit = opt.count + 1000 };
    t.seen = calloc((size_t)t.limit, 1);
    struct lh_bus *bus = open_bus();
    if (!bus || !t.seen)
        goto out;
    struct lh_err err = {0};
    double t0 = now_s();
    while (lh_bus_ready(bus, &err) < 0) {
        if (now_s() - t0 > 30) {
            fprintf(stderr, "bus_roundtrip: bus not ready: %s\n", err.msg);
            goto out;
        }
        sleep(1);
    }

    double psecs;
    uint64_t pbytes;
    if (produce_all(bus, 0, opt.count, &psecs, &pbytes) < 0)
        goto out;
    double pmbs = (double)pbytes / psecs / 1e6;
    if (opt.produce_only) {
        printf("bus_roundtrip: bus=%s events=%ld threads=%ld batch=%ld size=%ld fsync=%d "
               "produce %.1f MB/s (%.0f events/s)\n", busname, opt.count, opt.threads,
               opt.batch, opt.size, opt.fsync, pmbs, (double)opt.count / psecs);
        rc = 0;
        goto out;
    }

    /* The first consumer takes about half and commits; then a restart. */
    double c1secs, c2secs;
    if (consume(bus, &t, opt.count / 2, 0, &c1secs) < 0)
        goto out;
    long first_half = t.total;
    lh_bus_close(bus);
    bus = open_bus();
    if (!bus)
        goto out;
    if (consume(bus, &t, opt.count, 0, &c2secs) < 0)
        goto out;
    /* Then new records only: nothing consumed before may come back. */
    uint64_t more_bytes;
    double msecs;
    if (produce_all(bus, opt.count, 1000, &msecs, &more_bytes) < 0)
        goto out;
    if (consume(bus, &t, opt.count + 1000, 0, NULL) < 0)
        goto out;
    if (consume(bus, &t, opt.count + 1000, opt.type == LH_BUS_KAFKA ? 3000 : 500, NULL) < 0)
        goto out;
    if (t.total != opt.count + 1000 || t.dups || t.bad) {
        fprintf(stderr, "bus_roundtrip: %ld of %ld records, %ld duplicates, %ld bad\n",
                t.total, opt.count + 1000, t.dups, t.bad);
        goto out;
    }
    double csecs = c1secs + c2secs;
    printf("bus_roundtrip: bus=%s events=%ld threads=%ld batch=%ld size=%ld: produce %.1f MB/s "
           "(%.0f events/s), consume %.1f MB/s, resumed after commit at %ld, %ld + 1000 "
           "delivered exactly once: ok\n", busname, opt.count, opt.threads, opt.batch,
           (long)(pbytes / (uint64_t)opt.count), pmbs, (double)opt.count / psecs,
           csecs > 0 ? (double)(t.bytes - more_bytes) / csecs / 1e6 : 0.0, first_half,
           opt.count);
    rc = 0;
out:
    if (bus)
        lh_bus_close(bus);
    free(t.seen);
    if (made_dir && !opt.keep)
        rm_rf(opt.dir);
    if (rc != 0)
        printf("bus_roundtrip: bus=%s: FAILED\n", busname);
    return rc;
}
