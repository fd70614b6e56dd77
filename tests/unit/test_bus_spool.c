/* Unit tests for the spool bus (bus_spool.c) through the lh/bus.h interface. */
#include "../lh_test.h"
#include "lh/buf.h"
#include "lh/bus.h"
#include "lh/conf.h"
#include "lh/log.h"
#include "lh/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REC_HDR 40   /* the record header size of the on-disk format */

struct opts {
    uint64_t segment_bytes, max_bytes, retention_bytes;
    int64_t retention_ms;
};

static struct lh_bus *open_spool(const char *dir, const struct opts *o)
{
    struct lh_bus_config cfg = {0};
    cfg.type = LH_BUS_SPOOL;
    cfg.spool.dir = (char *)dir;
    cfg.spool.segment_bytes = o && o->segment_bytes ? o->segment_bytes : 1u << 20;
    cfg.spool.group_commit_ms = 2;
    cfg.spool.max_bytes = o ? o->max_bytes : 0;
    cfg.spool.retention_ms = o ? o->retention_ms : 0;
    cfg.spool.retention_bytes = o ? o->retention_bytes : 0;
    cfg.spool.fsync = 1;
    struct lh_bus *bus = NULL;
    struct lh_err err = {0};
    int rc = lh_bus_open(&cfg, NULL, &bus, &err);
    if (rc < 0)
        fprintf(stderr, "    lh_bus_open: %s\n", err.msg);
    return bus;
}

static char *spool_dir(void)
{
    static char d[512];
    snprintf(d, sizeof(d), "%s/spool", lh_test_tmpdir());
    return d;
}

/* Value of record seq: "seq=<n> " then filler derived from n, len bytes. */
static size_t make_value(char *buf, size_t len, uint64_t seq)
{
    int n = snprintf(buf, len, "seq=%llu ", (unsigned long long)seq);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (seq + i) % 26);
    return len;
}

static int check_value(const char *v, size_t len, uint64_t seq)
{
    char exp[4096];
    if (len > sizeof(exp))
        return 0;
    make_value(exp, len, seq);
    return memcmp(exp, v, len) == 0;
}

static uint64_t value_seq(const char *v, size_t len)
{
    char tmp[32];
    size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    unsigned long long s = ~0ull;
    sscanf(tmp, "seq=%llu", &s);
    return s;
}

static const struct lh_bus_header tenant_hdr[] = { { "tenant", "acme" } };

/* Produces count records with seqs from first, batch at a time. */
static int produce_seq(struct lh_bus *bus, const char *topic, uint64_t first, size_t count,
                       size_t batch, size_t vlen, struct lh_err *err)
{
    struct lh_bus_msg *m = calloc(batch, sizeof(*m));
    char *vals = malloc(batch * vlen);
    int rc = 0;
    for (size_t done = 0; done < count && rc == 0;) {
        size_t k = count - done < batch ? count - done : batch;
        for (size_t i = 0; i < k; i++) {
            make_value(vals + i * vlen, vlen, first + done + i);
            m[i] = (struct lh_bus_msg){ .key = "host-1", .key_len = 6, .value = vals + i * vlen,
                                        .value_len = vlen, .headers = tenant_hdr,
                                        .nheaders = 1 };
        }
        rc = lh_bus_produce(bus, topic, m, k, err);
        done += k;
    }
    free(m);
    free(vals);
    return rc;
}

/* Reads everything available (until a poll of timeout_ms returns nothing),
 * checking offsets are dense from *next and values match their seq == offset.
 * Returns the count read, or -1 on a mismatch. */
static long drain(struct lh_bus_consumer *c, uint64_t *next, int timeout_ms, int commit)
{
    long total = 0;
    for (;;) {
        struct lh_bus_batch b;
        struct lh_err err = {0};
        int n = lh_bus_poll(c, 500, timeout_ms, &b, &err);
        if (n < 0) {
            fprintf(stderr, "    poll: %s\n", err.msg);
            return -1;
        }
        if (n == 0)
            return total;
        for (int i = 0; i < n; i++) {
            const struct lh_bus_msg *m = &b.msgs[i];
            if ((uint64_t)m->offset != *next || value_seq(m->value, m->value_len) != *next ||
                !check_value(m->value, m->value_len, *next)) {
                fprintf(stderr, "    record at offset %lld: expected %llu, value seq %llu\n",
                        (long long)m->offset, (unsigned long long)*next,
                        (unsigned long long)value_seq(m->value, m->value_len));
                lh_bus_batch_release(c, &b);
                return -1;
            }
            (*next)++;
        }
        total += n;
        if (commit && lh_bus_commit(c, &b, &err) < 0) {
            fprintf(stderr, "    commit: %s\n", err.msg);
            lh_bus_batch_release(c, &b);
            return -1;
        }
        lh_bus_batch_release(c, &b);
    }
}

static size_t count_segments(const char *topic_dir)
{
    DIR *d = opendir(topic_dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".seg") != NULL;
    if (d)
        closedir(d);
    return n;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Copies this test's log lines to a file too, to check what was logged. */
static const char *log_to_file(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/test.log", lh_test_tmpdir());
    struct lh_log_config cfg = { .component = "test", .level = LH_LOG_INFO, .file = path,
                                 .burst = 1000 };
    lh_log_configure(&cfg);
    return path;
}

TEST(spool_framing_round_trip)
{
    struct lh_bus *bus = open_spool(spool_dir(), NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    struct lh_bus_header h3[] = { { "tenant", "acme" }, { "x", "" }, { "trace", "abc def" } };
    char bin[3000];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (char)(i * 7);
    const char binkey[] = { 'k', 0, 'y' };
    struct lh_bus_msg in[3] = {
        { .key = "host-a", .key_len = 6, .value = "hello", .value_len = 5, .headers = h3,
          .nheaders = 3 },
        { .key = NULL, .key_len = 0, .value = "", .value_len = 0 },
        { .key = binkey, .key_len = 3, .value = bin, .value_len = sizeof(bin),
          .headers = h3 + 1, .nheaders = 1 },
    };
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    REQUIRE_INT(lh_bus_produce(bus, "t1", in, 3, &err), ==, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "g", "t1", &c, &err), ==, 0);
    struct lh_bus_batch b;
    REQUIRE_INT(lh_bus_poll(c, 10, 1000, &b, &err), ==, 3);
    for (int i = 0; i < 3; i++) {
        const struct lh_bus_msg *m = &b.msgs[i];
        CHECK_INT(m->offset, ==, i);
        CHECK_INT(m->partition, ==, 0);
        CHECK_STR(m->topic, "t1");
        CHECK(m->timestamp_ms >= before && m->timestamp_ms <= after);
        CHECK_INT(m->key_len, ==, in[i].key_len);
        CHECK(m->key_len == 0 || memcmp(m->key, in[i].key, m->key_len) == 0);
        CHECK_INT(m->value_len, ==, in[i].value_len);
        CHECK(memcmp(m->value, in[i].value, m->value_len) == 0);
        REQUIRE_INT(m->nheaders, ==, in[i].nheaders);
        for (size_t k = 0; k < m->nheaders; k++) {
            CHECK_STR(m->headers[k].key, in[i].headers[k].key);
            CHECK_STR(m->headers[k].value, in[i].headers[k].value);
        }
    }
    CHECK(b.msgs[1].key == NULL);
    lh_bus_batch_release(c, &b);
    CHECK_INT(lh_bus_poll(c, 10, 30, &b, &err), ==, 0);
    CHECK_INT(b.n, ==, 0);

    /* Names that could leave the directory are refused. */
    CHECK_INT(lh_bus_produce(bus, "../etc", in, 1, &err), ==, LH_EINVAL);
    CHECK_INT(lh_bus_produce(bus, ".hidden", in, 1, &err), ==, LH_EINVAL);
    CHECK_INT(lh_bus_produce(bus, "", in, 1, &err), ==, LH_EINVAL);
    struct lh_bus_header bad[] = { { "k", NULL } };
    struct lh_bus_msg badm = { .value = "v", .value_len = 1, .headers = bad, .nheaders = 1 };
    CHECK_INT(lh_bus_produce(bus, "t1", &badm, 1, &err), ==, LH_EINVAL);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
}

struct prod_arg {
    struct lh_bus *bus;
    int id;
    int count, batch;
    int failed;
};

static void *producer_thread(void *p)
{
    struct prod_arg *a = p;
    struct lh_bus_msg m[64];
    char vals[64][64];
    for (int done = 0; done < a->count;) {
        int k = a->count - done < a->batch ? a->count - done : a->batch;
        for (int i = 0; i < k; i++) {
            int n = snprintf(vals[i], sizeof(vals[i]), "p%d-%d", a->id, done + i);
            m[i] = (struct lh_bus_msg){ .key = vals[i], .key_len = 2, .value = vals[i],
                                        .value_len = (size_t)n };
        }
        struct lh_err err = {0};
        if (lh_bus_produce(a->bus, "many", m, (size_t)k, &err) < 0) {
            fprintf(stderr, "    produce: %s\n", err.msg);
            a->failed = 1;
            return NULL;
        }
        done += k;
    }
    return NULL;
}

struct cons_arg {
    struct lh_bus *bus;
    int expect, nprod;
    int got, bad;
};

static void *consumer_thread(void *p)
{
    struct cons_arg *a = p;
    struct lh_bus_consumer *c;
    struct lh_err err = {0};
    if (lh_bus_consumer_open(a->bus, "readers", "many", &c, &err) < 0) {
        a->bad = 1;
        return NULL;
    }
    int next[16] = {0};
    int64_t off = 0;
    while (a->got < a->expect && !a->bad) {
        struct lh_bus_batch b;
        int n = lh_bus_poll(c, 300, 5000, &b, &err);
        if (n <= 0) {
            a->bad = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            int id, seq;
            char tmp[64];
            size_t l = b.msgs[i].value_len < 63 ? b.msgs[i].value_len : 63;
            memcpy(tmp, b.msgs[i].value, l);
            tmp[l] = '\0';
            if (sscanf(tmp, "p%d-%d", &id, &seq) != 2 || id < 0 || id >= a->nprod ||
                seq != next[id] || b.msgs[i].offset != off) {
                a->bad = 1;
                break;
            }
            next[id]++;
            off++;
            a->got++;
        }
        lh_bus_commit(c, &b, &err);
        lh_bus_batch_release(c, &b);
    }
    lh_bus_consumer_close(c);
    return NULL;
}

TEST(spool_many_producers_one_consumer_exactly_once_in_order)
{
    struct lh_bus *bus = open_spool(spool_dir(), &(struct opts){ .segment_bytes = 64 * 1024 });
    REQUIRE(bus);
    enum { NPROD = 8, COUNT = 1500, BATCH = 25 };
    pthread_t pt[NPROD], ct;
    struct prod_arg pa[NPROD];
    struct cons_arg ca = { .bus = bus, .expect = NPROD * COUNT, .nprod = NPROD };
    pthread_create(&ct, NULL, consumer_thread, &ca);
    for (int i = 0; i < NPROD; i++) {
        pa[i] = (struct prod_arg){ .bus = bus, .id = i, .count = COUNT, .batch = BATCH };
        pthread_create(&pt[i], NULL, producer_thread, &pa[i]);
    }
    for (int i = 0; i < NPROD; i++) {
        pthread_join(pt[i], NULL);
        CHECK(!pa[i].failed);
    }
    pthread_join(ct, NULL);
    CHECK(!ca.bad);
    CHECK_INT(ca.got, ==, NPROD * COUNT);
    struct lh_bus_stats st;
    struct lh_err err = {0};
    REQUIRE_INT(lh_bus_stats(bus, "many", &st, &err), ==, 0);
    CHECK_INT(st.produced_msgs, ==, NPROD * COUNT);
    CHECK_INT(st.next_offset, ==, NPROD * COUNT);
    /* Group commit: never more syncs than produce calls. */
    CHECK_INT(st.syncs, <=, NPROD * (COUNT / BATCH));
    CHECK_INT(st.syncs, >=, 1);
    CHECK_INT(st.segments, >, 1);
    lh_bus_close(bus);
}

TEST(spool_groups_are_independent_and_resume_after_commit)
{
    struct lh_bus *bus = open_spool(spool_dir(), NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", 0, 100, 10, 100, &err), ==, 0);

    struct lh_bus_consumer *a, *b;
    REQUIRE_INT(lh_bus_consumer_open(bus, "A", "t", &a, &err), ==, 0);
    REQUIRE_INT(lh_bus_consumer_open(bus, "B", "t", &b, &err), ==, 0);
    /* One consumer per group. */
    struct lh_bus_consumer *a2;
    CHECK_INT(lh_bus_consumer_open(bus, "A", "t", &a2, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "already has a consumer");

    uint64_t na = 0;
    CHECK_INT(drain(a, &na, 50, 1), ==, 100);
    /* B has its own position: it starts at 0; take 40, commit, then 20 more uncommitted. */
    struct lh_bus_batch bt;
    REQUIRE_INT(lh_bus_poll(b, 40, 1000, &bt, &err), ==, 40);
    CHECK_INT(bt.msgs[0].offset, ==, 0);
    REQUIRE_INT(lh_bus_commit(b, &bt, &err), ==, 0);
    lh_bus_batch_release(b, &bt);
    REQUIRE_INT(lh_bus_poll(b, 20, 1000, &bt, &err), ==, 20);
    CHECK_INT(bt.msgs[0].offset, ==, 40);
    lh_bus_batch_release(b, &bt);
    int64_t lag = -1;
    CHECK_INT(lh_bus_consumer_lag(b, &lag, &err), ==, 0);
    CHECK_INT(lag, ==, 40);
    lh_bus_consumer_close(a);
    lh_bus_consumer_close(b);
    lh_bus_close(bus);

    /* A restart: A has nothing left, B resumes at 40 (the 20 uncommitted come again). */
    bus = open_spool(spool_dir(), NULL);
    REQUIRE(bus);
    REQUIRE_INT(lh_bus_consumer_open(bus, "A", "t", &a, &err), ==, 0);
    REQUIRE_INT(lh_bus_consumer_open(bus, "B", "t", &b, &err), ==, 0);
    CHECK_INT(lh_bus_poll(a, 10, 50, &bt, &err), ==, 0);
    uint64_t nb = 40;
    CHECK_INT(drain(b, &nb, 50, 1), ==, 60);
    REQUIRE_INT(produce_seq(bus, "t", 100, 5, 5, 100, &err), ==, 0);
    CHECK_INT(drain(a, &na, 50, 1), ==, 5);
    CHECK_INT(drain(b, &nb, 50, 1), ==, 5);
    lh_bus_consumer_close(a);
    lh_bus_consumer_close(b);
    lh_bus_close(bus);
}

TEST(spool_segments_roll_and_retention_waits_for_every_group)
{
    const char *dir = spool_dir();
    char tdir[600];
    snprintf(tdir, sizeof(tdir), "%s/t", dir);
    struct opts o = { .segment_bytes = 4096, .retention_ms = 1 };
    struct lh_bus *bus = open_spool(dir, &o);
    REQUIRE(bus);
    struct lh_err err = {0};
    struct lh_bus_consumer *a, *b;
    REQUIRE_INT(lh_bus_consumer_open(bus, "A", "t", &a, &err), ==, 0);
    REQUIRE_INT(lh_bus_consumer_open(bus, "B", "t", &b, &err), ==, 0);
    REQUIRE_INT(produce_seq(bus, "t", 0, 200, 5, 150, &err), ==, 0);
    size_t segs = count_segments(tdir);
    CHECK_INT(segs, >=, 8);

    /* A consumed everything; B nothing: nothing may go. */
    uint64_t na = 0, nb = 0;
    CHECK_INT(drain(a, &na, 20, 1), ==, 200);
    usleep(5000);
    REQUIRE_INT(produce_seq(bus, "t", 200, 30, 30, 150, &err), ==, 0);   /* rolls */
    CHECK_INT(count_segments(tdir), ==, segs + 1);

    /* B catches up: the consumed segments older than 1 ms are deleted. */
    CHECK_INT(drain(b, &nb, 20, 1), ==, 230);
    CHECK_INT(drain(a, &na, 20, 1), ==, 30);
    usleep(5000);
    REQUIRE_INT(produce_seq(bus, "t", 230, 30, 30, 150, &err), ==, 0);   /* rolls */
    CHECK_INT(count_segments(tdir), <=, 2);

    /* A new group starts at the oldest record still there and reads on. */
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "C", "t", &c, &err), ==, 0);
    struct lh_bus_batch bt;
    REQUIRE_INT(lh_bus_poll(c, 1, 1000, &bt, &err), ==, 1);
    uint64_t nc = (uint64_t)bt.msgs[0].offset;
    CHECK_INT(nc, >=, 230);
    lh_bus_batch_release(c, &bt);
    nc++;
    CHECK_INT(drain(c, &nc, 20, 1), >, 0);
    CHECK_INT(nc, ==, 260);
    lh_bus_consumer_close(a);
    lh_bus_consumer_close(b);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
}

TEST(spool_retention_by_size)
{
    const char *dir = spool_dir();
    char tdir[600];
    snprintf(tdir, sizeof(tdir), "%s/t", dir);
    struct opts o = { .segment_bytes = 4096, .retention_bytes = 10000 };
    struct lh_bus *bus = open_spool(dir, &o);
    REQUIRE(bus);
    struct lh_err err = {0};
    struct lh_bus_consumer *a;
    REQUIRE_INT(lh_bus_consumer_open(bus, "A", "t", &a, &err), ==, 0);
    REQUIRE_INT(produce_seq(bus, "t", 0, 200, 5, 150, &err), ==, 0);
    CHECK_INT(count_segments(tdir), >=, 8);   /* unconsumed: kept beyond the size */
    uint64_t na = 0;
    CHECK_INT(drain(a, &na, 20, 1), ==, 200);
    REQUIRE_INT(produce_seq(bus, "t", 200, 30, 30, 150, &err), ==, 0);
    struct lh_bus_stats st;
    REQUIRE_INT(lh_bus_stats(bus, "t", &st, &err), ==, 0);
    CHECK_INT(st.disk_bytes, <=, 10000 + 4096 + 30 * 300);
    CHECK_INT(st.segments, <=, 4);
    lh_bus_consumer_close(a);
    lh_bus_close(bus);
}

TEST(spool_full_at_max_bytes_until_consumed)
{
    struct opts o = { .segment_bytes = 4096, .max_bytes = 20000 };
    struct lh_bus *bus = open_spool(spool_dir(), &o);
    REQUIRE(bus);
    struct lh_err err = {0};
    int rc = 0;
    uint64_t seq = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = produce_seq(bus, "t", seq, 10, 10, 150, &err);
        if (rc == 0)
            seq += 10;
    }
    REQUIRE_INT(rc, ==, LH_EFULL);
    CHECK_CONTAINS(err.msg, "full");
    CHECK_INT(seq, >=, 80);     /* about 20000 / (10 * 200) batches went in */
    CHECK_INT(seq, <, 110);
    struct lh_bus_stats st;
    REQUIRE_INT(lh_bus_stats(bus, "t", &st, &err), ==, 0);
    CHECK_INT(st.unconsumed_bytes, <=, 20000);
    CHECK_INT(st.next_offset, ==, seq);
    CHECK_INT(lh_bus_ready(bus, &err), ==, LH_EFULL);
    /* A batch larger than the whole bound can never fit. */
    CHECK_INT(produce_seq(bus, "t", seq, 200, 200, 150, &err), ==, LH_ETOOBIG);

    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "g", "t", &c, &err), ==, 0);
    CHECK_INT(produce_seq(bus, "t", seq, 10, 10, 150, &err), ==, LH_EFULL);
    uint64_t next = 0;
    CHECK_INT(drain(c, &next, 20, 1), ==, (long)seq);
    CHECK_INT(produce_seq(bus, "t", seq, 10, 10, 150, &err), ==, 0);
    CHECK_INT(lh_bus_ready(bus, &err), ==, 0);
    CHECK_INT(drain(c, &next, 20, 1), ==, 10);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

TEST(spool_torn_tail_is_truncated_on_open)
{
    const char *logf = log_to_file();
    const char *dir = spool_dir();
    char seg[700];
    snprintf(seg, sizeof(seg), "%s/t/00000000000000000000.seg", dir);
    struct lh_bus *bus = open_spool(dir, NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", 0, 10, 10, 200, &err), ==, 0);
    lh_bus_close(bus);
    uint64_t size = file_size(seg);
    uint64_t reclen = size / 10;
    REQUIRE_INT(reclen * 10, ==, size);
    /* A write cut short by a crash: the first bytes of one more record. */
    {
        int fd = open(seg, O_RDWR);
        REQUIRE(fd >= 0);
        char *rec = malloc(reclen);
        REQUIRE(pread(fd, rec, reclen, (off_t)(size - reclen)) == (ssize_t)reclen);
        REQUIRE(pwrite(fd, rec, reclen - 50, (off_t)size) == (ssize_t)(reclen - 50));
        free(rec);
        close(fd);
    }

    bus = open_spool(dir, NULL);
    REQUIRE(bus);
    REQUIRE_INT(produce_seq(bus, "t", 10, 1, 1, 200, &err), ==, 0);  /* takes offset 10 */
    CHECK_INT(file_size(seg), ==, size + reclen);
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "g", "t", &c, &err), ==, 0);
    uint64_t next = 0;
    CHECK_INT(drain(c, &next, 20, 1), ==, 11);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    size += reclen;

    /* Garbage after the last record: gone, and nothing of it is read. */
    FILE *f = fopen(seg, "a");
    REQUIRE(f);
    for (int i = 0; i < 300; i++)
        fputc((i * 37) & 0xff, f);
    fclose(f);
    bus = open_spool(dir, NULL);
    REQUIRE(bus);
    REQUIRE_INT(produce_seq(bus, "t", 11, 1, 1, 200, &err), ==, 0);
    CHECK_INT(file_size(seg), ==, size + reclen);
    REQUIRE_INT(lh_bus_consumer_open(bus, "g", "t", &c, &err), ==, 0);
    CHECK_INT(drain(c, &next, 20, 1), ==, 1);
    CHECK_INT(next, ==, 12);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    lh_log_shutdown();
    const char *log = read_file(logf);
    char want[64];
    snprintf(want, sizeof(want), "truncating %llu bytes", (unsigned long long)(reclen - 50));
    CHECK_CONTAINS(log, want);   /* what was left of the cut record */
    CHECK_CONTAINS(log, "truncating 300 bytes");
}

TEST(spool_acknowledged_records_lost_by_the_storage_never_reuse_their_offsets)
{
    const char *logf = log_to_file();
    const char *dir = spool_dir();
    struct opts o = { .segment_bytes = 600 };   /* one batch of two per segment */
    struct lh_bus *bus = open_spool(dir, &o);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", 0, 10, 2, 200, &err), ==, 0);
    struct lh_bus *rbus = open_spool(dir, &o);   /* the reader's own, as in an indexer */
    REQUIRE(rbus);
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(rbus, "early", "t", &c, &err), ==, 0);
    uint64_t early = 0;
    CHECK_INT(drain(c, &early, 20, 1), ==, 10);   /* this reader is past 8 and 9 */
    lh_bus_close(bus);
    /* The disk loses the last segment's fsync'd content (records 8 and 9). */
    char seg[700];
    snprintf(seg, sizeof(seg), "%s/t/00000000000000000008.seg", dir);
    REQUIRE(truncate(seg, 0) == 0);

    bus = open_spool(dir, &o);
    REQUIRE(bus);
    REQUIRE_INT(produce_seq(bus, "t", 10, 2, 2, 200, &err), ==, 0);
    /* The reader that was past the loss goes on with the new records. */
    CHECK_INT(drain(c, &early, 20, 1), ==, 2);
    CHECK_INT(early, ==, 12);
    lh_bus_consumer_close(c);
    lh_bus_close(rbus);
    /* A new reader gets everything but the lost two, and does not stall. */
    REQUIRE_INT(lh_bus_consumer_open(bus, "late", "t", &c, &err), ==, 0);
    int64_t got[16];
    int n = 0;
    for (;;) {
        struct lh_bus_batch b;
        int k = lh_bus_poll(c, 100, 50, &b, &err);
        REQUIRE(k >= 0);
        if (k == 0)
            break;
        for (int i = 0; i < k && n < 16; i++) {
            CHECK(check_value(b.msgs[i].value, b.msgs[i].value_len, (uint64_t)b.msgs[i].offset));
            got[n++] = b.msgs[i].offset;
        }
        lh_bus_batch_release(c, &b);
    }
    REQUIRE_INT(n, ==, 10);
    for (int i = 0; i < 10; i++)
        CHECK_INT(got[i], ==, i < 8 ? i : i + 2);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    lh_log_shutdown();
    const char *log = read_file(logf);
    CHECK_CONTAINS(log, "records 8..9 were acknowledged but are not on disk");
    CHECK_CONTAINS(log, "offsets 8..9 are missing");
}

TEST(spool_corrupt_record_in_the_middle_is_skipped_not_returned)
{
    const char *logf = log_to_file();
    const char *dir = spool_dir();
    char seg[700];
    snprintf(seg, sizeof(seg), "%s/t/00000000000000000000.seg", dir);
    struct lh_bus *bus = open_spool(dir, NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", 0, 20, 20, 200, &err), ==, 0);
    lh_bus_close(bus);
    uint64_t reclen = file_size(seg) / 20;
    /* Flip a value byte of record 5, and break the length field of record 12. */
    int fd = open(seg, O_RDWR);
    REQUIRE(fd >= 0);
    unsigned char ch;
    REQUIRE(pread(fd, &ch, 1, (off_t)(6 * reclen - 3)) == 1);
    ch ^= 0x10;
    REQUIRE(pwrite(fd, &ch, 1, (off_t)(6 * reclen - 3)) == 1);
    unsigned char junk[4] = { 0x11, 0x22, 0x33, 0x44 };
    REQUIRE(pwrite(fd, junk, 4, (off_t)(12 * reclen)) == 4);
    close(fd);

    /* The writer keeps the valid records after the damage... */
    bus = open_spool(dir, NULL);
    REQUIRE(bus);
    REQUIRE_INT(produce_seq(bus, "t", 20, 1, 1, 200, &err), ==, 0);
    struct lh_bus_stats st;
    REQUIRE_INT(lh_bus_stats(bus, "t", &st, &err), ==, 0);
    CHECK_INT(st.next_offset, ==, 21);
    /* ...and readers return every record but the two damaged ones. */
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "g", "t", &c, &err), ==, 0);
    int seen[21] = {0}, n = 0;
    for (;;) {
        struct lh_bus_batch b;
        int k = lh_bus_poll(c, 7, 50, &b, &err);
        REQUIRE(k >= 0);
        if (k == 0)
            break;
        for (int i = 0; i < k; i++) {
            int64_t off = b.msgs[i].offset;
            REQUIRE(off >= 0 && off < 21);
            CHECK(check_value(b.msgs[i].value, b.msgs[i].value_len, (uint64_t)off));
            seen[off]++;
            n++;
        }
        lh_bus_commit(c, &b, &err);
        lh_bus_batch_release(c, &b);
    }
    CHECK_INT(n, ==, 19);
    for (int i = 0; i < 21; i++)
        CHECK_INT(seen[i], ==, (i == 5 || i == 12) ? 0 : 1);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    lh_log_shutdown();
    const char *log = read_file(logf);
    CHECK_CONTAINS(log, "offsets 5..5");
    CHECK_CONTAINS(log, "offsets 12..12");
    CHECK(!strstr(log, "truncating"));
}

TEST(spool_reader_in_another_process_follows_rolls_and_deletions)
{
    const char *dir = spool_dir();
    struct opts o = { .segment_bytes = 16384, .retention_ms = 1 };
    enum { N = 3000 };
    /* The child is the indexer: its own bus on the same directory. */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct lh_bus *bus = open_spool(dir, &o);
        struct lh_bus_consumer *c;
        struct lh_err err = {0};
        if (!bus || lh_bus_consumer_open(bus, "idx", "t", &c, &err) < 0)
            _exit(2);
        uint64_t next = 0;
        while (next < N) {
            struct lh_bus_batch b;
            int n = lh_bus_poll(c, 100, 5000, &b, &err);
            if (n <= 0)
                _exit(3);
            for (int i = 0; i < n; i++, next++)
                if ((uint64_t)b.msgs[i].offset != next ||
                    !check_value(b.msgs[i].value, b.msgs[i].value_len, next))
                    _exit(5);
            if (lh_bus_commit(c, &b, &err) < 0)
                _exit(6);
            lh_bus_batch_release(c, &b);
        }
        struct lh_bus_batch b;
        int extra = lh_bus_poll(c, 10, 100, &b, &err);
        lh_bus_consumer_close(c);
        lh_bus_close(bus);
        _exit(extra == 0 ? 0 : 4);
    }
    struct lh_bus *bus = open_spool(dir, &o);
    REQUIRE(bus);
    struct lh_err err = {0};
    int rc = 0;
    for (uint64_t s = 0; s < N && rc == 0; s += 30) {
        rc = produce_seq(bus, "t", s, 30, 30, 150, &err);
        if (s % 300 == 0)
            usleep(2000);
    }
    CHECK_INT(rc, ==, 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The reader's commits let retention delete what it consumed. */
    REQUIRE_INT(produce_seq(bus, "t", N, 30, 30, 150, &err), ==, 0);
    char tdir[600];
    snprintf(tdir, sizeof(tdir), "%s/t", dir);
    CHECK_INT(count_segments(tdir), <=, 3);
    lh_bus_close(bus);
}

#define STARTING (1ull << 63)   /* kill -9 test: "a produce call starts now" */

TEST(spool_kill9_never_loses_acknowledged_records)
{
    const char *logf = log_to_file();
    const char *dir = spool_dir();
    uint64_t have = 0;   /* records verified so far: seqs 0..have-1 */
    srand(12345);
    /* LH_KILL9_ROUNDS=N runs a longer stress by hand. */
    int rounds = getenv("LH_KILL9_ROUNDS") ? atoi(getenv("LH_KILL9_ROUNDS")) : 10;
    for (int round = 0; round < rounds; round++) {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        int acks_first = 1 + rand() % 5;
        unsigned delay_us = (unsigned)(rand() % 2000);
        unsigned seed = (unsigned)rand();
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            srand(seed);
            struct lh_bus *bus = open_spool(dir, &(struct opts){ .segment_bytes = 2u << 20 });
            if (!bus)
                _exit(2);
            uint64_t seq = have;
            for (;;) {
                /* Up to ~800 KB per batch, so that kills land inside writes. */
                size_t k = 1 + (size_t)(rand() % 200), vlen = 100 + (size_t)(rand() % 3900);
                struct lh_err err = {0};
                uint64_t mark = STARTING | seq;
                if (write(fds[1], &mark, sizeof(mark)) != sizeof(mark))
                    _exit(4);
                if (produce_seq(bus, "t", seq, k, k, vlen, &err) < 0)
                    _exit(3);
                seq += k;
                uint64_t acked = seq;   /* records 0..seq-1 are acknowledged */
                if (write(fds[1], &acked, sizeof(acked)) != sizeof(acked))
                    _exit(4);
            }
        }
        close(fds[1]);
        /* After some acknowledged batches, kill shortly after a produce starts. */
        uint64_t acked = have, v;
        int acks = 0;
        while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
            if (!(v & STARTING)) {
                acked = v;
                acks++;
            } else if (acks >= acks_first) {
                usleep(delay_us);
                break;
            }
        }
        kill(pid, SIGKILL);
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFSIGNALED(status));
        while (read(fds[0], &v, sizeof(v)) == sizeof(v))
            if (!(v & STARTING))
                acked = v;
        close(fds[0]);

        /* Every acknowledged record is there once, in order, intact; maybe
         * some that were written but not yet acknowledged, nothing else. */
        struct lh_bus *bus = open_spool(dir, NULL);
        REQUIRE(bus);
        struct lh_bus_consumer *c;
        struct lh_err err = {0};
        char group[32];
        snprintf(group, sizeof(group), "check%d", round);
        REQUIRE_INT(lh_bus_consumer_open(bus, group, "t", &c, &err), ==, 0);
        uint64_t next = 0;
        long n = drain(c, &next, 100, 0);
        CHECK_INT(n, >=, 0);
        CHECK_INT(next, >=, acked);
        CHECK_INT(next, >=, have);
        if (n < 0 || next < acked)
            fprintf(stderr, "    round %d: read %llu, acknowledged %llu\n", round,
                    (unsigned long long)next, (unsigned long long)acked);
        have = next;
        lh_bus_consumer_close(c);
        lh_bus_close(bus);
    }
    CHECK_INT(have, >, 0);
    /* A writer opening after the last crash keeps exactly what was read. */
    struct lh_bus *bus = open_spool(dir, NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", have, 1, 1, 100, &err), ==, 0);
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "final", "t", &c, &err), ==, 0);
    uint64_t next = 0;
    CHECK_INT(drain(c, &next, 50, 0), ==, (long)have + 1);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    lh_log_shutdown();
    const char *log = read_file(logf);
    int torn = 0;
    for (const char *p = log; (p = strstr(p, "truncating")); p++)
        torn++;
    fprintf(stderr, "    kill -9: %llu records over %d crashes, %d torn tails truncated\n",
            (unsigned long long)have, rounds, torn);
}

TEST(spool_disk_full_fails_with_efull_and_leaves_nothing_partial)
{
    const char *dir = spool_dir();
    char seg[700];
    snprintf(seg, sizeof(seg), "%s/t/00000000000000000000.seg", dir);
    struct lh_bus *bus = open_spool(dir, NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", 0, 5, 5, 500, &err), ==, 0);
    uint64_t size = file_size(seg);
    /* The file size limit stands in for a full disk: the write stops short. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = size + 700;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = produce_seq(bus, "t", 5, 4, 4, 500, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_INT(rc, ==, LH_EFULL);
    CHECK_CONTAINS(err.msg, "disk full");
    CHECK_CONTAINS(err.msg, "partial record truncated");
    CHECK_INT(file_size(seg), ==, size);
    REQUIRE_INT(produce_seq(bus, "t", 5, 1, 1, 500, &err), ==, 0);
    lh_bus_close(bus);
    bus = open_spool(dir, NULL);
    REQUIRE(bus);
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "g", "t", &c, &err), ==, 0);
    uint64_t next = 0;
    CHECK_INT(drain(c, &next, 20, 0), ==, 6);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
}

TEST(spool_second_writer_process_is_refused)
{
    const char *dir = spool_dir();
    struct lh_bus *bus = open_spool(dir, NULL);
    REQUIRE(bus);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(bus, "t", 0, 1, 1, 50, &err), ==, 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct lh_bus *b2 = open_spool(dir, NULL);
        struct lh_err e2 = {0};
        int r = b2 ? produce_seq(b2, "t", 1, 1, 1, 50, &e2) : -100;
        int ok = r == LH_EUNAVAIL && strstr(e2.msg, "another process") &&
                 strstr(e2.msg, "pid");
        lh_bus_close(b2);
        _exit(ok ? 0 : 1);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    REQUIRE_INT(produce_seq(bus, "t", 1, 1, 1, 50, &err), ==, 0);
    lh_bus_close(bus);
}

static void poke_durable(const char *dir, uint64_t v)
{
    char head[700];
    snprintf(head, sizeof(head), "%s/t/head", dir);
    int fd = open(head, O_RDWR);
    if (fd >= 0) {
        if (pwrite(fd, &v, sizeof(v), 16) != sizeof(v))
            fprintf(stderr, "    pwrite(head) failed\n");
        close(fd);
    }
}

TEST(spool_reader_respects_the_durable_end_and_takes_over_from_a_dead_writer)
{
    log_to_file();
    const char *dir = spool_dir();
    struct lh_bus *w = open_spool(dir, NULL);
    REQUIRE(w);
    struct lh_err err = {0};
    REQUIRE_INT(produce_seq(w, "t", 0, 10, 10, 100, &err), ==, 0);
    /* As if records 4..9 were written but their fsync had not finished. */
    poke_durable(dir, 4);
    struct lh_bus *r = open_spool(dir, NULL);
    REQUIRE(r);
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(r, "g", "t", &c, &err), ==, 0);
    uint64_t next = 0;
    CHECK_INT(drain(c, &next, 300, 1), ==, 4);   /* the writer is alive: stop at 4 */
    /* The writer dies without publishing: the reader checks the tail itself. */
    lh_bus_close(w);
    poke_durable(dir, 4);
    CHECK_INT(drain(c, &next, 300, 1), ==, 6);
    CHECK_INT(next, ==, 10);
    lh_bus_consumer_close(c);
    lh_bus_close(r);
}

TEST(spool_bus_helpers)
{
    char out[64];
    struct lh_err err = {0};
    CHECK_INT(lh_bus_topic_expand("logs.{tenant}", "acme corp", out, sizeof(out), &err), ==, 0);
    CHECK_STR(out, "logs.acme_corp");
    CHECK_INT(lh_bus_topic_expand("logs", "x", out, sizeof(out), &err), ==, 0);
    CHECK_STR(out, "logs");
    CHECK_INT(lh_bus_topic_expand("{tenant}-{tenant}", "a/b", out, sizeof(out), &err), ==, 0);
    CHECK_STR(out, "a_b-a_b");
    CHECK_INT(lh_bus_topic_expand("logs.{tenant}", "abcdefghij", out, 8, &err), ==, LH_ETOOBIG);
    CHECK_INT(lh_bus_topic_expand("/{tenant}", "a", out, sizeof(out), &err), ==, LH_EINVAL);

    struct lh_bus_config cfg = {0};
    struct lh_bus *bus;
    cfg.type = LH_BUS_SPOOL;
    CHECK_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "bus.spool.dir");
    cfg.type = 7;
    CHECK_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, LH_EINVAL);
}

TEST(bus_config_binds_from_yaml_with_defaults)
{
    const char *yaml =
        "type: kafka\n"
        "topic: logs.{tenant}\n"
        "spool:\n"
        "  dir: /var/lib/loghaul/spool\n"
        "  segment_size: 16MiB\n"
        "  group_commit: 5ms\n"
        "kafka:\n"
        "  brokers: k1:9092,k2:9092\n"
        "  linger: 20ms\n"
        "  properties:\n"
        "    security.protocol: ssl\n"
        "    ssl.ca.location: /etc/ca.pem\n";
    struct lh_bus_config cfg = {0};
    struct lh_err err = {0};
    REQUIRE_INT(lh_conf_load_string("bus.yaml", yaml, strlen(yaml), lh_bus_opts, &cfg, &err),
                ==, 0);
    CHECK_INT(cfg.type, ==, LH_BUS_KAFKA);
    CHECK_STR(cfg.topic, "logs.{tenant}");
    CHECK_STR(cfg.dlq_topic, "logs.dlq");
    CHECK_STR(cfg.spool.dir, "/var/lib/loghaul/spool");
    CHECK_INT(cfg.spool.segment_bytes, ==, 16u << 20);
    CHECK_INT(cfg.spool.group_commit_ms, ==, 5);
    CHECK_INT(cfg.spool.max_bytes, ==, 4ull << 30);
    CHECK_INT(cfg.spool.retention_ms, ==, 24 * 3600 * 1000);
    CHECK_INT(cfg.spool.fsync, ==, 1);
    CHECK_STR(cfg.kafka.brokers, "k1:9092,k2:9092");
    CHECK_STR(cfg.kafka.compression, "zstd");
    CHECK_INT(cfg.kafka.linger_ms, ==, 20);
    CHECK_INT(cfg.kafka.delivery_timeout_ms, ==, 30000);
    REQUIRE_INT(cfg.kafka.properties.n, ==, 2);
    CHECK_STR(lh_strmap_get(&cfg.kafka.properties, "ssl.ca.location"), "/etc/ca.pem");
    lh_bus_config_free(&cfg);
    CHECK(cfg.topic == NULL && cfg.kafka.properties.n == 0);
    lh_bus_config_free(&cfg);   /* twice is fine */

    const char *bad = "type: rabbitmq\n";
    CHECK_INT(lh_conf_load_string("bus.yaml", bad, strlen(bad), lh_bus_opts, &cfg, &err), <, 0);
    CHECK_CONTAINS(err.msg, "type");
    const char *typo = "spool:\n  segment_bytes: 1MiB\n";
    CHECK_INT(lh_conf_load_string("bus.yaml", typo, strlen(typo), lh_bus_opts, &cfg, &err), <,
              0);
    CHECK_CONTAINS(err.msg, "spool.segment_bytes");
}

TEST(spool_metrics_are_exported)
{
    struct lh_metrics *m = lh_metrics_create();
    REQUIRE(m);
    struct lh_bus_config cfg = {0};
    cfg.type = LH_BUS_SPOOL;
    cfg.spool.dir = spool_dir();
    cfg.spool.segment_bytes = 1u << 20;
    cfg.spool.fsync = 1;
    struct lh_bus *bus;
    struct lh_err err = {0};
    REQUIRE_INT(lh_bus_open(&cfg, m, &bus, &err), ==, 0);
    struct lh_bus_consumer *c;
    REQUIRE_INT(lh_bus_consumer_open(bus, "idx", "t", &c, &err), ==, 0);
    REQUIRE_INT(produce_seq(bus, "t", 0, 30, 10, 100, &err), ==, 0);
    struct lh_bus_batch b;
    REQUIRE_INT(lh_bus_poll(c, 10, 1000, &b, &err), ==, 10);
    REQUIRE_INT(lh_bus_commit(c, &b, &err), ==, 0);
    lh_bus_batch_release(c, &b);
    CHECK_INT(lh_bus_produce(bus, "bad/name", NULL, 1, &err), ==, LH_EINVAL);
    struct lh_buf out = LH_BUF_INIT;
    REQUIRE_INT(lh_metrics_render(m, &out), ==, 0);
    CHECK_CONTAINS(out.data, "loghaul_bus_produced_messages_total{bus=\"spool\"} 30");
    CHECK_CONTAINS(out.data, "loghaul_bus_produced_bytes_total{bus=\"spool\"} 3000");
    CHECK_CONTAINS(out.data, "loghaul_bus_produce_seconds_count{bus=\"spool\"} 3");
    CHECK_CONTAINS(out.data,
                   "loghaul_bus_consumed_messages_total{bus=\"spool\",topic=\"t\","
                   "group=\"idx\"} 10");
    CHECK_CONTAINS(out.data, "loghaul_bus_consumer_lag_messages{bus=\"spool\",topic=\"t\","
                             "group=\"idx\"} 20");
    CHECK_CONTAINS(out.data, "loghaul_spool_segments{topic=\"t\"} 1");
    CHECK_CONTAINS(out.data, "loghaul_spool_sync_seconds_count{topic=\"t\"}");
    char want[128];
    struct lh_bus_stats st;
    REQUIRE_INT(lh_bus_stats(bus, "t", &st, &err), ==, 0);
    snprintf(want, sizeof(want), "loghaul_spool_disk_bytes{topic=\"t\"} %llu",
             (unsigned long long)st.disk_bytes);
    CHECK_CONTAINS(out.data, want);
    lh_buf_free(&out);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    lh_metrics_destroy(m);
}

TEST(kafka_bad_configuration_is_refused_at_open)
{
    struct lh_bus_config cfg = {0};
    cfg.type = LH_BUS_KAFKA;
    struct lh_bus *bus;
    struct lh_err err = {0};
    CHECK_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "bus.kafka.brokers");
    char *keys[] = { "no.such.property" }, *values[] = { "1" };
    cfg.kafka.brokers = "127.0.0.1:1";
    cfg.kafka.compression = "zstd";
    cfg.kafka.properties = (struct lh_strmap){ keys, values, 1 };
    CHECK_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "no.such.property");
    cfg.kafka.properties.n = 0;
    cfg.kafka.compression = "brotli";
    CHECK_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "compression.type");
}

TEST(kafka_produce_without_a_broker_fails_unavailable_after_the_delivery_timeout)
{
    struct lh_bus_config cfg = {0};
    cfg.type = LH_BUS_KAFKA;
    cfg.kafka.brokers = "127.0.0.1:1";   /* nothing listens there */
    cfg.kafka.compression = "zstd";
    cfg.kafka.delivery_timeout_ms = 800;
    cfg.kafka.linger_ms = 1;
    struct lh_bus *bus;
    struct lh_err err = {0};
    REQUIRE_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, 0);
    /* ready() answers at once (it serves /readyz), from the health thread's view. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(lh_bus_ready(bus, &err), ==, LH_EUNAVAIL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_INT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, <, 500);
    CHECK_CONTAINS(err.msg, "127.0.0.1:1");
    struct lh_bus_msg m[2] = {
        { .key = "h", .key_len = 1, .value = "a", .value_len = 1, .headers = tenant_hdr,
          .nheaders = 1 },
        { .key = "h", .key_len = 1, .value = "b", .value_len = 1 },
    };
    CHECK_INT(lh_bus_produce(bus, "logs", m, 2, &err), ==, LH_EUNAVAIL);
    CHECK_CONTAINS(err.msg, "delivery to logs failed");
    struct lh_bus_stats st;
    CHECK_INT(lh_bus_stats(bus, NULL, &st, &err), ==, 0);
    CHECK_INT(st.produce_errors, ==, 1);
    CHECK_INT(st.produced_msgs, ==, 0);
    lh_bus_close(bus);
}

int lh_bus_kafka_test_fatal(struct lh_bus *bus);   /* bus_kafka.c, for tests */

TEST(kafka_producer_is_replaced_after_a_fatal_error)
{
    const char *logf = log_to_file();
    struct lh_bus_config cfg = {0};
    cfg.type = LH_BUS_KAFKA;
    cfg.kafka.brokers = "127.0.0.1:1";
    cfg.kafka.compression = "zstd";
    cfg.kafka.delivery_timeout_ms = 300;
    struct lh_bus *bus;
    struct lh_err err = {0};
    REQUIRE_INT(lh_bus_open(&cfg, NULL, &bus, &err), ==, 0);
    REQUIRE_INT(lh_bus_kafka_test_fatal(bus), ==, 0);
    usleep(300000);   /* the error callback runs on the poll thread */
    struct lh_bus_msg m = { .key = "h", .key_len = 1, .value = "a", .value_len = 1 };
    /* A new producer takes the call: it fails for want of a broker, not fatally. */
    CHECK_INT(lh_bus_produce(bus, "logs", &m, 1, &err), ==, LH_EUNAVAIL);
    CHECK_CONTAINS(err.msg, "delivery to logs failed");
    lh_bus_close(bus);
    lh_log_shutdown();
    CHECK_CONTAINS(read_file(logf), "replacing the producer after a fatal error");
}
