/* json_speed.c - speed of the lh_json scanner and lh_event_decode against jansson's
 * json_loadb on ~500-byte event JSON lines (one core, MB/s of JSON input).
 *
 * Build and run from the repository root, after `make`:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Icommon/include bench/json_speed.c \
 *       build/lib/libloghaul.a -ljansson -o build/json_speed && build/json_speed
 * Arguments (optional): number of lines (200000), a substring selecting passes.
 *
 * The lines are lh_event_encode output of synthetic events shaped like the
 * seed's (service, level, trace/user ids, a message of 6-14 words, k8s
 * fields, metadata on one line in four); one in ten messages carries escapes
 * (quotes, \n, \t) and one in twenty non-ASCII text. Each figure is the best
 * of 7 rounds; the passes take turns within a round. */
#include "lh/arena.h"
#include "lh/buf.h"
#include "lh/event.h"
#include "lh/json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rs = 88172645463325252ULL;
static uint64_t rng(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct corpus {
    char *data;         /* all lines, each followed by '\n' */
    size_t len;
    size_t *off;        /* start of line i */
    size_t *llen;       /* length of line i without '\n' */
    size_t n;
};

static void build(struct corpus *c, size_t nlines)
{
    static const char *svcs[] = { "payment-service", "auth-service", "cart", "search",
                                  "gateway", "inventory", "email", "billing" };
    static const char *words[] = {
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "database",
        "transaction", "timeout", "during", "capture", "request", "completed", "user",
        "session", "cache", "miss", "retry", "connection", "refused", "upstream", "latency",
    };
    struct lh_buf out = LH_BUF_INIT, msg = LH_BUF_INIT;
    c->off = malloc(nlines * sizeof(size_t));
    c->llen = malloc(nlines * sizeof(size_t));
    if (!c->off || !c->llen)
        abort();
    uint8_t uuid[16];
    for (int i = 0; i < 16; i++)
        uuid[i] = (uint8_t)rng();
    for (size_t i = 0; i < nlines; i++) {
        lh_buf_reset(&msg);
        unsigned nw = 6 + (unsigned)(rng() % 9);
        for (unsigned w = 0; w < nw; w++) {
            if (w)
                lh_buf_putc(&msg, ' ');
            lh_buf_puts(&msg, words[rng() % 24]);
        }
        if (i % 10 == 0)
            lh_buf_puts(&msg, " \"quoted\"\n\tat Foo.bar(Foo.java:42)");
        if (i % 20 == 0)
            lh_buf_puts(&msg, " caf\xc3\xa9 \xe2\x82\xac 12 \xf0\x9f\x98\x80");
        char id[LH_EVENT_ID_MAX], trace[40], user[24];
        lh_event_id(id, uuid, (uint32_t)i);
        snprintf(trace, sizeof(trace), "tr_%016llx", (unsigned long long)rng());
        snprintf(user, sizeof(user), "usr_%u", (unsigned)(rng() % 99999));
        struct lh_kv meta[] = { { "cluster", "kubernetes-prod-us-east-1" },
                                { "agent_version", "loghaul-0.1.0" } };
        struct lh_event ev = {
            .ts_ns = 1779523574123000000LL + (int64_t)i * 1000003,
            .received_ns = 1779523574200000000LL + (int64_t)i * 1000003,
            .id = id,
            .tenant = "acme",
            .service = svcs[rng() % 8],
            .level = (enum lh_level)(1 + rng() % 6),
            .host = "i-09ab7d6f5e",
            .trace_id = trace,
            .user_id = user,
            .message = msg.data,
            .stream = "stdout",
            .container_id = "c_pay_88f9",
            .k8s_namespace = "payments",
            .k8s_pod = "payment-service-7d9f8b6c4-x2x9k",
            .k8s_container = "app",
            .region = "us-east-1",
            .meta = i % 4 == 0 ? meta : NULL,
            .nmeta = i % 4 == 0 ? 2 : 0,
        };
        c->off[i] = out.len;
        if (lh_event_encode(&ev, &out) < 0 || lh_buf_putc(&out, '\n') < 0)
            abort();
        c->llen[i] = out.len - c->off[i] - 1;
    }
    c->n = nlines;
    c->len = out.len;
    c->data = lh_buf_steal(&out);
    lh_buf_free(&msg);
}

typedef size_t (*pass_fn)(const struct corpus *c, struct lh_arena *a);

static size_t pass_jansson(const struct corpus *c, struct lh_arena *a)
{
    (void)a;
    size_t sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        json_error_t e;
        json_t *j = json_loadb(c->data + c->off[i], c->llen[i], 0, &e);
        if (!j)
            abort();
        sum += json_string_length(json_object_get(j, "message"));
        json_decref(j);
    }
    return sum;
}

static size_t pass_scan(const struct corpus *c, struct lh_arena *a)
{
    (void)a;
    size_t sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct lh_json js;
        struct lh_json_token t;
        int rc;
        lh_json_init(&js, c->data + c->off[i], c->llen[i], 0, LH_JSON_UTF8_REJECT);
        while ((rc = lh_json_next(&js, &t, NULL)) > 0)
            sum += t.len;
        if (rc < 0)
            abort();
    }
    return sum;
}

static size_t pass_decode(const struct corpus *c, struct lh_arena *a)
{
    size_t sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (i % 1000 == 0)
            lh_arena_reset(a);
        struct lh_event ev;
        if (lh_event_decode(c->data + c->off[i], c->llen[i], a, &ev, NULL) < 0)
            abort();
        sum += strlen(ev.message) + ev.nmeta;
    }
    return sum;
}

static size_t pass_encode(const struct corpus *c, struct lh_arena *a)
{
    /* Re-encodes decoded events: the write side, for reference. */
    struct lh_buf out = LH_BUF_INIT;
    size_t sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (i % 1000 == 0)
            lh_arena_reset(a);
        struct lh_event ev;
        if (lh_event_decode(c->data + c->off[i], c->llen[i], a, &ev, NULL) < 0)
            abort();
        lh_buf_reset(&out);
        if (lh_event_encode(&ev, &out) < 0)
            abort();
        sum += out.len;
    }
    lh_buf_free(&out);
    return sum;
}

static const char *only;     /* run only passes whose name contains this */

static const struct {
    const char *name;
    pass_fn fn;
} passes[] = {
    { "jansson json_loadb", pass_jansson },
    { "lh_json_next (scan, UTF-8 check)", pass_scan },
    { "lh_event_decode (into arena)", pass_decode },
    { "lh_event_decode + lh_event_encode", pass_encode },
};
#define NPASSES (sizeof(passes) / sizeof(passes[0]))

/* Best of `rounds` for each pass; the passes take turns within a round so
 * that a noisy neighbour on the machine slows all of them alike. */
static void measure(const struct corpus *c, int rounds, double *mbs)
{
    struct lh_arena a = LH_ARENA_INIT;
    double best[NPASSES];
    size_t sum[NPASSES] = {0};
    for (size_t p = 0; p < NPASSES; p++)
        best[p] = 1e30;
    for (int r = 0; r < rounds; r++) {
        for (size_t p = 0; p < NPASSES; p++) {
            if (only && !strstr(passes[p].name, only))
                continue;
            double t = now();
            sum[p] += passes[p].fn(c, &a);
            t = now() - t;
            if (t < best[p])
                best[p] = t;
        }
    }
    lh_arena_free(&a);
    for (size_t p = 0; p < NPASSES; p++) {
        mbs[p] = (double)c->len / 1e6 / best[p];
        if (only && !strstr(passes[p].name, only))
            continue;
        printf("%-34s %8.0f MB/s  %6.0f ns/line  (check %zu)\n", passes[p].name, mbs[p],
               best[p] * 1e9 / (double)c->n, sum[p] % 1000);
    }
}

int main(int argc, char **argv)
{
    size_t nlines = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    only = argc > 2 ? argv[2] : NULL;
    struct corpus c;
    build(&c, nlines);
    printf("%zu lines, %.1f MB, %.0f bytes/line\n", c.n, (double)c.len / 1e6,
           (double)c.len / (double)c.n);
    double mbs[NPASSES];
    measure(&c, 7, mbs);
    if (!only)
        printf("scan / jansson: %.1fx   decode / jansson: %.1fx\n", mbs[1] / mbs[0],
               mbs[2] / mbs[0]);
    free(c.data);
    free(c.off);
    free(c.llen);
    return 0;
}
