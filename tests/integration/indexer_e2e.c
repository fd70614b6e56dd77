/* indexer_e2e.c - the indexer with the real daemon binaries, end to end:
 * loghaul-collector -> bus -> loghaul-indexer -> sink, checked from the far
 * end by event id.
 *
 *   --mode embedded   spool bus and the embedded store (read back with the
 *                     store API, read-only, while the indexer writes)
 *   --mode scaled     Kafka (127.0.0.1:9092) and OpenSearch (127.0.0.1:9200,
 *                     reached through a TCP proxy of this program so that an
 *                     outage can be made without stopping the shared server),
 *                     and the archive in the real S3 server (MinIO,
 *                     $LOGHAUL_S3_ENDPOINT), Parquet objects read back by
 *                     DuckDB and pyarrow (archive_check.py)
 *
 * N mixed-format events (the seed's app format, JSON app logs, access logs,
 * syslog, Java stack traces, logfmt, lines nobody parses) are sent through
 * the ingest API in batches with Idempotency-Keys. Meanwhile:
 *   - at 40% the indexer is killed with SIGKILL and started again,
 *   - at 70% it is stopped with SIGTERM (it must exit 0) and started again,
 *   - scaled: at 55% OpenSearch becomes unreachable for --outage seconds
 *     while events keep coming: /readyz must say the sink is down,
 *     consumption must pause (consumed_total still), the indexer's memory
 *     must stay bounded (VmRSS, reported), and everything arrives after.
 * At the end the sink must hold exactly the N expected ids: the store's
 * count and the sorted list of its ids (embedded), OpenSearch's _count and
 * every _id by search_after (scaled). Embedded then changes a tag in the
 * config and sends SIGHUP: the next events carry the new tag. Scaled also
 * sends events OpenSearch
 * refuses for good and checks them in the DLQ with `loghaul dlq list`, then
 * `loghaul dlq replay` (refused again, they come back); after the indexer's
 * SIGTERM its archive objects in S3 (their keys carry this run's name as
 * host) must hold every id exactly once, crash or not. Runs use names
 * private to them (spool
 * and store dirs, topic, consumer group, index prefix, template).
 *
 * usage: indexer_e2e --mode embedded|scaled [--count N] [--outage SECONDS, 60]
 *        [--keep]   (count: 100000, or 500000 with LOGHAUL_LONG=1)
 * Exits 0 when every check passed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lh/archive.h"
#include "lh/buf.h"
#include "lh/event.h"
#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/store.h"
#include "lh/time.h"
#include "lh/uuid.h"

static int g_failed;
static char g_dir[256];
static const char *g_build = "build";
static struct lh_http_client *g_http;
static int g_scaled;
static char g_tag[32];                  /* private names of this run */

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            g_failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

#define DIE(...)                                                                 \
    do {                                                                         \
        fprintf(stderr, "FATAL: " __VA_ARGS__);                                  \
        fputc('\n', stderr);                                                     \
        exit(1);                                                                 \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%7.1f] ", lh_time_mono_ns() / 1e9);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- HTTP ---- */

/* One client per thread: the main thread's, and the sender's. */
static __thread struct lh_http_client *t_http;

static long http(const char *method, const char *url, const struct lh_http_header *h,
                 const char *body, size_t len, struct lh_buf *out)
{
    struct lh_http_client *client = t_http ? t_http : g_http;
    struct lh_http_request req = { .method = method, .url = url, .headers = h, .body = body,
                                   .body_len = len, .timeout_ms = 30000 };
    struct lh_http_response resp = { 0 };
    struct lh_err err = { 0 };
    long st = -1;
    if (lh_http_client_do(client, &req, &resp, &err) == 0) {
        st = resp.status;
        if (out) {
            lh_buf_reset(out);
            if (resp.body.len)
                lh_buf_append(out, resp.body.data, resp.body.len);
            lh_buf_putc(out, '\0');
        }
    }
    lh_http_response_free(&resp);
    return st;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        DIE("free_port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- daemons ---- */

struct daemon {
    const char *name;
    char bin[512], cfg[512], log[512];
    int port;
    pid_t pid;
};

static void d_init(struct daemon *d, const char *name, int port)
{
    d->name = name;
    d->port = port;
    d->pid = 0;
    snprintf(d->bin, sizeof(d->bin), "%s/loghaul-%s", g_build, name);
    snprintf(d->cfg, sizeof(d->cfg), "%s/%s.yaml", g_dir, name);
    snprintf(d->log, sizeof(d->log), "%s/%s.log", g_dir, name);
}

static void d_start(struct daemon *d)
{
    pid_t pid = fork();
    if (pid < 0)
        DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a test that died */
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(d->bin, d->bin, "-c", d->cfg, (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
}

static int d_ready(struct daemon *d, double timeout, struct lh_buf *why)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", d->port);
    double end = now_s() + timeout;
    do {
        if (http("GET", url, NULL, NULL, 0, why) == 200)
            return 1;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            DIE("%s exited during start; see %s", d->name, d->log);
        }
        usleep(100000);
    } while (now_s() < end);
    return 0;
}

/* Sends sig and waits; returns the exit status (or 128+signal). */
static int d_stop(struct daemon *d, int sig, double timeout)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    double end = now_s() + timeout;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid)
            break;
        if (now_s() > end) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &st, 0);
            fprintf(stderr, "%s did not stop within %.0f s\n", d->name, timeout);
            break;
        }
        usleep(20000);
    }
    d->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static double metric(struct daemon *d, const char *series)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", d->port);
    struct lh_buf b = LH_BUF_INIT;
    double v = -1;
    if (http("GET", url, NULL, NULL, 0, &b) == 200) {
        size_t n = strlen(series);
        for (const char *p = b.data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    }
    lh_buf_free(&b);
    return v;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ---- a TCP proxy in front of OpenSearch, to make outages ---- */

struct proxy {
    int port, target;
    int lfd;
    int down;
    pthread_mutex_t mu;
    int conns[512];
    size_t nconns;
    pthread_t thread;
};

static struct proxy g_px;

static void px_track(int fd, int add)
{
    pthread_mutex_lock(&g_px.mu);
    if (add && g_px.nconns < 512)
        g_px.conns[g_px.nconns++] = fd;
    for (size_t i = 0; !add && i < g_px.nconns; i++)
        if (g_px.conns[i] == fd) {
            g_px.conns[i] = g_px.conns[--g_px.nconns];
            break;
        }
    pthread_mutex_unlock(&g_px.mu);
}

static void *px_pump(void *arg)
{
    int a = (int)(intptr_t)arg;
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in t = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_px.target),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (b < 0 || connect(b, (struct sockaddr *)&t, sizeof(t)) < 0) {
        close(a);
        if (b >= 0)
            close(b);
        return NULL;
    }
    px_track(a, 1);
    px_track(b, 1);
    char buf[65536];
    struct pollfd p[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
    for (;;) {
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (__atomic_load_n(&g_px.down, __ATOMIC_ACQUIRE))
            break;
        int done = 0;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                done = 1;
                break;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(p[1 - i].fd, buf + off, (size_t)(n - off));
                if (w <= 0) {
                    done = 1;
                    break;
                }
                off += w;
            }
        }
        if (done)
            break;
    }
    px_track(a, 0);
    px_track(b, 0);
    close(a);
    close(b);
    return NULL;
}

static int px_listen(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_px.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0)
        DIE("proxy listen on %d: %s", g_px.port, strerror(errno));
    return fd;
}

static void *px_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(g_px.lfd, NULL, NULL);
        if (c < 0)
            continue;
        if (__atomic_load_n(&g_px.down, __ATOMIC_ACQUIRE)) {
            /* Down: reset at once, like a host whose server is gone. */
            struct linger lg = { 1, 0 };
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(c);
            continue;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, px_pump, (void *)(intptr_t)c) == 0)
            pthread_detach(t);
        else
            close(c);
    }
    return NULL;
}

static void px_start(int target)
{
    g_px.target = target;
    g_px.port = free_port();
    pthread_mutex_init(&g_px.mu, NULL);
    g_px.lfd = px_listen();
    pthread_create(&g_px.thread, NULL, px_main, NULL);
    pthread_detach(g_px.thread);
}

/* Down: new connections are reset, open ones cut. */
static void px_set_down(int down)
{
    __atomic_store_n(&g_px.down, down, __ATOMIC_RELEASE);
    if (!down)
        return;
    pthread_mutex_lock(&g_px.mu);
    for (size_t i = 0; i < g_px.nconns; i++)
        shutdown(g_px.conns[i], SHUT_RDWR);
    pthread_mutex_unlock(&g_px.mu);
}

/* ---- events ---- */

static const char *const svcs[] = { "payment-service", "checkout", "auth", "inventory" };

static void raw_line(struct lh_buf *b, size_t i)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[40], logts[40], clf[40], sys[40];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(logts, sizeof(logts), "%Y-%m-%d %H:%M:%S", &tm);
    strftime(clf, sizeof(clf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    strftime(sys, sizeof(sys), "%b %e %H:%M:%S", &tm);
    const char *svc = svcs[i % 4];
    char line[1024];
    switch (i % 7) {
    case 0:
        snprintf(line, sizeof(line), "%s [%s] ERROR tr_%zx usr_%zu - Database transaction "
                 "timeout during capture of order %zu.", logts, svc, i, i % 997, i);
        break;
    case 1:
        snprintf(line, sizeof(line), "{\"timestamp\":\"%s.%03zuZ\",\"level\":\"info\","
                 "\"msg\":\"Garbage collection cycle %zu completed in 12ms\",\"service\":\"%s\","
                 "\"metadata\":{\"gc\":\"g1\",\"heap_mb\":\"%zu\"}}", ts, i % 1000, i, svc,
                 i % 4096);
        break;
    case 2:
        snprintf(line, sizeof(line), "10.0.%zu.%zu - - [%s] \"GET /api/v1/orders/%zu HTTP/1.1\" "
                 "%d %zu \"-\" \"curl/8.5\"", (i >> 8) % 256, i % 256, clf, i,
                 i % 5 ? 200 : 503, 100 + i % 9000);
        break;
    case 3:
        snprintf(line, sizeof(line), "<34>%s web-%zu sshd[%zu]: Failed password for user%zu "
                 "from 10.9.8.7", sys, i % 50, 1000 + i % 30000, i);
        break;
    case 4:
        snprintf(line, sizeof(line), "%s,%03zu WARN [main] com.example.pay.Checkout - Retrying "
                 "capture %zu\njava.lang.IllegalStateException: gateway busy\n\tat "
                 "com.example.pay.Gateway.call(Gateway.java:42)\n\tat "
                 "java.base/java.lang.Thread.run(Thread.java:840)", logts, i % 1000, i);
        break;
    case 5:
        snprintf(line, sizeof(line), "ts=%sZ level=debug msg=\"cache miss %zu\" key=user:%zu "
                 "email=user%zu@example.com", ts, i, i % 100, i);
        break;
    default:
        snprintf(line, sizeof(line), "~~ unparseable line %zu card 4111 1111 1111 1111 ~~", i);
        break;
    }
    lh_buf_json_str(b, line, strlen(line));
}

struct sender {
    struct daemon *collector;
    size_t count, batch;
    struct lh_uuid *uuids;           /* one per batch */
    size_t nbatches;
    size_t sent;                     /* atomic */
    double rate;                     /* events/s ceiling, 0: as fast as accepted */
};

static void send_batch(struct sender *s, size_t bi)
{
    size_t first = bi * s->batch;
    size_t n = s->count - first < s->batch ? s->count - first : s->batch;
    struct lh_buf body = LH_BUF_INIT;
    lh_buf_printf(&body, "{\"shipper_metadata\":{\"host_id\":\"itest-%zu\",\"cluster_name\":"
                  "\"itest\",\"agent_version\":\"indexer_e2e\"},\"log_records\":[", bi % 8);
    for (size_t k = 0; k < n; k++) {
        lh_buf_puts(&body, k ? ",{\"stream\":\"stdout\",\"raw_message\":"
                             : "{\"stream\":\"stdout\",\"raw_message\":");
        raw_line(&body, first + k);
        lh_buf_puts(&body, ",\"container_id\":\"c_pay_88f9\"}");
    }
    lh_buf_puts(&body, "]}");
    char key[40], url[128];
    lh_uuid_format(&s->uuids[bi], key);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/logs/ingest", s->collector->port);
    struct lh_http_header h[] = { { "Content-Type", "application/json" },
                                  { "X-Log-Shipper-Token", "dev-token" },
                                  { "Idempotency-Key", key }, { NULL, NULL } };
    struct lh_buf resp = LH_BUF_INIT;
    for (int attempt = 0;; attempt++) {
        long st = http("POST", url, h, body.data, body.len, &resp);
        if (st == 200)
            break;
        if (attempt > 600)
            DIE("ingest of batch %zu: status %ld: %s", bi, st, resp.data ? resp.data : "");
        usleep(200000);   /* 429/503/connection: the agent would back off too */
    }
    lh_buf_free(&resp);
    lh_buf_free(&body);
}

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    struct lh_http_client_config hc = { .timeout_ms = 60000, .connect_timeout_ms = 2000 };
    struct lh_err err = { 0 };
    if (lh_http_client_create(&hc, &t_http, &err) < 0)
        DIE("http client: %s", err.msg);
    double t0 = now_s();
    for (size_t bi = 0; bi < s->nbatches; bi++) {
        send_batch(s, bi);
        size_t sent = (bi + 1) * s->batch < s->count ? (bi + 1) * s->batch : s->count;
        __atomic_store_n(&s->sent, sent, __ATOMIC_RELEASE);
        if (s->rate > 0) {
            double due = t0 + (double)sent / s->rate;
            double wait = due - now_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
    }
    lh_http_client_destroy(t_http);
    t_http = NULL;
    return NULL;
}

static size_t sent_of(struct sender *s) { return __atomic_load_n(&s->sent, __ATOMIC_ACQUIRE); }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids the events get: batch UUID and index (lh_event_id), sorted. */
static char **expected_ids(struct sender *s)
{
    char **ids = calloc(s->count, sizeof(*ids));
    for (size_t i = 0; i < s->count; i++) {
        char id[LH_EVENT_ID_MAX];
        lh_event_id(id, s->uuids[i / s->batch].b, (uint32_t)(i % s->batch));
        ids[i] = strdup(id);
    }
    qsort(ids, s->count, sizeof(*ids), cmp_str);
    return ids;
}

static void compare_ids(char **got, size_t ngot, char **want, size_t nwant)
{
    qsort(got, ngot, sizeof(*got), cmp_str);
    size_t dups = 0, missing = 0, extra = 0, i = 0, k = 0;
    for (size_t x = 1; x < ngot; x++)
        dups += strcmp(got[x], got[x - 1]) == 0;
    while (i < ngot || k < nwant) {
        int c = i == ngot ? 1 : k == nwant ? -1 : strcmp(got[i], want[k]);
        if (c == 0) {
            size_t j = i;
            while (i < ngot && strcmp(got[i], got[j]) == 0)
                i++;
            k++;
        } else if (c < 0) {
            extra++;
            i++;
        } else {
            missing++;
            k++;
        }
    }
    CHECK(dups == 0 && missing == 0 && extra == 0,
          "ids: %zu held, %zu expected: %zu duplicated, %zu missing, %zu unexpected", ngot,
          nwant, dups, missing, extra);
    if (dups == 0 && missing == 0 && extra == 0)
        say("every one of the %zu expected ids is held exactly once", nwant);
}

/* ---- the far end ---- */

static struct lh_store *g_store;

static long far_count(void)
{
    if (!g_scaled) {
        struct lh_store_query q = { .tenant = "demo" };
        uint64_t n = 0;
        struct lh_err err = { 0 };
        return lh_store_count(g_store, &q, &n, &err) < 0 ? -1 : (long)n;
    }
    char url[256];
    struct lh_buf b = LH_BUF_INIT;
    snprintf(url, sizeof(url), "http://127.0.0.1:9200/%s-*/_refresh", g_tag);
    http("POST", url, NULL, NULL, 0, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:9200/%s-*/_count", g_tag);
    long n = -1;
    if (http("GET", url, NULL, NULL, 0, &b) == 200) {
        json_t *j = json_loads(b.data, 0, NULL);
        n = j ? (long)json_integer_value(json_object_get(j, "count")) : -1;
        json_decref(j);
    }
    lh_buf_free(&b);
    return n;
}

static size_t far_ids(char ***out)
{
    size_t n = 0, cap = 1024;
    char **ids = malloc(cap * sizeof(*ids));
    if (!g_scaled) {
        struct lh_store_pos after;
        int have = 0;
        for (;;) {
            struct lh_store_query q = { .tenant = "demo", .limit = 5000,
                                        .after = have ? &after : NULL };
            struct lh_store_result *r = NULL;
            struct lh_err err = { 0 };
            if (lh_store_search(g_store, &q, &r, &err) < 0)
                DIE("store search: %s", err.msg);
            for (size_t i = 0; i < r->n; i++) {
                if (n == cap)
                    ids = realloc(ids, (cap *= 2) * sizeof(*ids));
                ids[n++] = strdup(r->events[i].id);
            }
            int more = r->more && r->n;
            if (more) {
                after = r->next;
                have = 1;
            }
            lh_store_result_free(r);
            if (!more)
                break;
        }
    } else {
        char url[256], last[256] = "";
        snprintf(url, sizeof(url), "http://127.0.0.1:9200/%s-*/_search", g_tag);
        struct lh_http_header h[] = { { "Content-Type", "application/json" }, { NULL, NULL } };
        struct lh_buf q = LH_BUF_INIT, b = LH_BUF_INIT;
        for (;;) {
            lh_buf_reset(&q);
            lh_buf_puts(&q, "{\"size\":10000,\"_source\":false,\"track_total_hits\":false,"
                            "\"sort\":[{\"id\":\"asc\"}]");
            if (last[0]) {
                lh_buf_puts(&q, ",\"search_after\":[");
                lh_buf_json_str(&q, last, strlen(last));
                lh_buf_puts(&q, "]");
            }
            lh_buf_puts(&q, "}");
            if (http("POST", url, h, q.data, q.len, &b) != 200)
                DIE("search: %s", b.data ? b.data : "");
            json_t *j = json_loads(b.data, 0, NULL);
            json_t *hits = json_object_get(json_object_get(j, "hits"), "hits");
            size_t k = json_array_size(hits);
            for (size_t i = 0; i < k; i++) {
                const char *id = json_string_value(json_object_get(json_array_get(hits, i),
                                                                   "_id"));
                if (n == cap)
                    ids = realloc(ids, (cap *= 2) * sizeof(*ids));
                ids[n++] = strdup(id ? id : "");
                if (i == k - 1)
                    snprintf(last, sizeof(last), "%s", id ? id : "");
            }
            json_decref(j);
            if (k < 10000)
                break;
        }
        lh_buf_free(&q);
        lh_buf_free(&b);
    }
    *out = ids;
    return n;
}

static int wait_count(long want, double timeout)
{
    double end = now_s() + timeout;
    long n = -1, last = -2;
    double last_change = now_s();
    while (now_s() < end) {
        n = far_count();
        if (n == want)
            return 1;
        if (n != last) {
            last = n;
            last_change = now_s();
        }
        if (n > want || now_s() - last_change > 90)
            break;
        usleep(500000);
    }
    CHECK(n == want, "the sink holds %ld events, want %ld", n, want);
    return 0;
}

/* ---- configs ---- */

static void write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_file(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    if (!f)
        DIE("%s: %s", path, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

static const char *s3_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void write_configs(struct daemon *col, struct daemon *idx, const char *patterns)
{
    char bus[1024];
    if (g_scaled)
        snprintf(bus, sizeof(bus), "bus:\n  type: kafka\n  topic: %s\n  dlq_topic: %s.dlq\n"
                 "  kafka:\n    brokers: 127.0.0.1:9092\n    session_timeout: 10s\n", g_tag,
                 g_tag);
    else
        snprintf(bus, sizeof(bus), "bus:\n  type: spool\n  topic: logs\n  spool:\n"
                 "    dir: %s/spool\n", g_dir);
    write_file(col->cfg, "listen:\n  address: 127.0.0.1:%d\n  max_body: 64MiB\n"
               "drain_timeout: 5s\ntenants:\n  - name: demo\n    tokens: [dev-token]\n%s",
               col->port, bus);
    char sink[1024];
    if (g_scaled)
        snprintf(sink, sizeof(sink), "sinks:\n  - name: opensearch\n    type: opensearch\n"
                 "    opensearch:\n      urls: [http://127.0.0.1:%d]\n      index_prefix: %s\n"
                 "      retry_timeout: 5s\n      timeout: 20s\n      template:\n"
                 "        name: %s-template\n        shards: 1\n        replicas: 0\n"
                 "        refresh_interval: 1s\n", g_px.port, g_tag, g_tag);
    else
        snprintf(sink, sizeof(sink), "sinks:\n  - name: store\n    type: store\n    store:\n"
                 "      dir: %s/store\n      retention: 0\n", g_dir);
    char archive[1024] = "";
    if (g_scaled)
        snprintf(archive, sizeof(archive), "  - name: archive\n    type: archive\n"
                 "    archive:\n      staging_dir: %s/staging\n      rollover: 5s\n"
                 "      host: %s\n      shutdown_upload: 60s\n      backend:\n"
                 "        type: s3\n        format: parquet\n        s3:\n"
                 "          endpoint: %s\n          bucket: %s\n          region: us-east-1\n"
                 "          addressing: path\n          access_key: %s\n"
                 "          secret_key: %s\n", g_dir, g_tag, s3_env("LOGHAUL_S3_ENDPOINT",
                 "http://127.0.0.1:9000"), s3_env("LOGHAUL_S3_BUCKET", "loghaul"),
                 s3_env("AWS_ACCESS_KEY_ID", "loghaul"),
                 s3_env("AWS_SECRET_ACCESS_KEY", "loghaul-secret"));
    write_file(idx->cfg, "listen:\n  address: 127.0.0.1:%d\ndrain_timeout: 20s\n%s"
               "pipeline:\n  group: %s\n  max_batch: 5000\n  linger: 200ms\n  workers: 2\n"
               "  backoff_base: 100ms\n  backoff_cap: 2s\n"
               "parse:\n  patterns_dir: %s\nenrich:\n  tags: {region: itest, env: test}\n%s%s",
               idx->port, bus, g_tag, patterns, sink, archive);
}

/* ---- embedded: SIGHUP reloads the stages ---- */

static void reload_phase(struct sender *base, struct daemon *idx, long count)
{
    /* New enrich tags in the file, then SIGHUP. */
    struct lh_buf cfg = LH_BUF_INIT;
    struct lh_err err = { 0 };
    FILE *f = fopen(idx->cfg, "r");
    char buf[4096];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        lh_buf_append(&cfg, buf, n);
    if (f)
        fclose(f);
    lh_buf_putc(&cfg, '\0');
    char *at = strstr(cfg.data, "env: test");
    if (!at)
        DIE("no env tag in %s", idx->cfg);
    f = fopen(idx->cfg, "w");
    fprintf(f, "%.*senv: reloaded%s", (int)(at - cfg.data), cfg.data, at + strlen("env: test"));
    fclose(f);
    lh_buf_free(&cfg);
    kill(idx->pid, SIGHUP);
    double end = now_s() + 20, v = 0;
    while (now_s() < end &&
           (v = metric(idx, "loghaul_config_reloads_total{result=\"ok\"}")) < 1)
        usleep(100000);
    CHECK(v == 1, "the reload was not counted: %.0f", v);
    usleep(1000000);   /* the pipeline swaps its stages before its next batch */
    struct sender s = { .collector = base->collector, .count = 10, .batch = 10, .nbatches = 1 };
    struct lh_uuid u;
    lh_uuid_v4(&u, NULL);
    s.uuids = &u;
    send_batch(&s, 0);
    wait_count(count + 10, 60);
    struct lh_store_pred pred = { .field = "metadata.env", .op = LH_STORE_EQ,
                                  .value = "reloaded" };
    struct lh_store_query q = { .tenant = "demo", .preds = &pred, .npreds = 1 };
    uint64_t got = 0;
    if (lh_store_count(g_store, &q, &got, &err) < 0)
        DIE("store count: %s", err.msg);
    CHECK(got == 10, "%llu events carry the reloaded tag, want 10", (unsigned long long)got);
    pred.value = "test";
    lh_store_count(g_store, &q, &got, &err);
    CHECK((long)got == count, "%llu events carry the first tag, want %ld",
          (unsigned long long)got, count);
    say("SIGHUP: the next events carry the new enrich tag (10 of 10), the earlier ones the old");
}

/* ---- scaled: the dead-letter queue and `loghaul dlq` ---- */

/* Runs the CLI; returns its output (caller frees) and exit status. */
static char *run_cli(const char *args, int *status)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/loghaul dlq %s -c %s/indexer.yaml --wait 15s 2>&1", g_build,
             args, g_dir);
    FILE *f = popen(cmd, "r");
    struct lh_buf b = LH_BUF_INIT;
    char buf[4096];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        lh_buf_append(&b, buf, n);
    int st = f ? pclose(f) : -1;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    lh_buf_putc(&b, '\0');
    return lh_buf_steal(&b);
}

static size_t count_lines_with(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (memmem(p, len, needle, strlen(needle)))
            n++;
        p = e ? e + 1 : NULL;
    }
    return n;
}

/* Events OpenSearch refuses for good (date_nanos cannot hold 1969) land in
 * the DLQ with its reason; `loghaul dlq list` shows them, `replay` sends
 * them through again (and, still refused, they come back). */
static void dlq_phase(struct daemon *col, struct daemon *idx)
{
    const char *body = "{\"shipper_metadata\":{\"host_id\":\"dlq-probe\"},\"log_records\":["
                       "{\"timestamp\":\"1969-12-31T23:59:59Z\",\"raw_message\":\"probe 1\"},"
                       "{\"timestamp\":\"1969-12-31T23:59:59Z\",\"raw_message\":\"probe 2\"},"
                       "{\"timestamp\":\"1969-12-31T23:59:59Z\",\"raw_message\":\"probe 3\"}]}";
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/logs/ingest", col->port);
    struct lh_http_header h[] = { { "Content-Type", "application/json" },
                                  { "X-Log-Shipper-Token", "dev-token" }, { NULL, NULL } };
    long st = http("POST", url, h, body, strlen(body), NULL);
    CHECK(st == 200, "ingest of the DLQ probes: %ld", st);
    double end = now_s() + 60;
    const char *series = "loghaul_indexer_dlq_total{reason=\"mapper_parsing_exception\","
                         "sink=\"opensearch\"}";
    double v = 0;
    while (now_s() < end && (v = metric(idx, series)) < 3)
        usleep(250000);
    CHECK(v == 3, "dlq_total for opensearch rejects: %.0f", v);
    int status;
    char *out = run_cli("list --json", &status);
    size_t n = count_lines_with(out, "\"sink\":\"opensearch\"");
    CHECK(status == 0 && n == 3, "dlq list: status %d, %zu entries:\n%s", status, n, out);
    CHECK(count_lines_with(out, "\"raw\":\"probe ") == 3, "dlq list shows the events:\n%s",
          out);
    say("dlq list: %zu dead letters, e.g. %.*s", n, (int)strcspn(out, "\n"), out);
    free(out);
    out = run_cli("replay", &status);
    CHECK(status == 0 && strstr(out, "3 dead letter(s) read, 3 replayed"), "dlq replay: %s",
          out);
    free(out);
    /* Still refused: the three come back as new dead letters. */
    end = now_s() + 60;
    while (now_s() < end && (v = metric(idx, series)) < 6)
        usleep(250000);
    CHECK(v == 6, "after the replay dlq_total is %.0f, want 6", v);
    out = run_cli("list", &status);
    CHECK(count_lines_with(out, "sink=opensearch mapper_parsing_exception") == 3,
          "dlq list after the replay:\n%s", out);
    free(out);
}

/* ---- scaled: the archive in S3, read back by DuckDB and pyarrow ---- */

static int open_s3(struct lh_archive **ar)
{
    struct lh_archive_config c;
    memset(&c, 0, sizeof(c));
    c.type = LH_ARCHIVE_S3;
    c.format = LH_ARCHIVE_PARQUET;
    c.zstd_level = 3;
    c.s3.endpoint = (char *)s3_env("LOGHAUL_S3_ENDPOINT", "http://127.0.0.1:9000");
    c.s3.bucket = (char *)s3_env("LOGHAUL_S3_BUCKET", "loghaul");
    c.s3.region = "us-east-1";
    c.s3.access_key = (char *)s3_env("AWS_ACCESS_KEY_ID", "loghaul");
    c.s3.secret_key = (char *)s3_env("AWS_SECRET_ACCESS_KEY", "loghaul-secret");
    c.s3.addressing = LH_S3_PATH;
    c.s3.connect_timeout_ms = 2000;
    c.s3.timeout_ms = 60000;
    c.s3.retries = 3;
    c.s3.retry_base_ms = 100;
    c.s3.retry_max_ms = 1000;
    c.s3.part_size = 16u << 20;
    c.s3.multipart_threshold = 64u << 20;
    c.s3.tls_verify = 1;
    struct lh_err err = { 0 };
    if (lh_archive_open(ar, &c, &err) < 0) {
        CHECK(0, "s3: %s", err.msg);
        return -1;
    }
    return 0;
}

/* Downloads this run's objects (their keys carry g_tag as host) into
 * <g_dir>/archive and checks them with archive_check.py; deletes them
 * unless keep. */
static void archive_phase(char **want, size_t nwant, int keep)
{
    struct lh_archive *ar = NULL;
    if (open_s3(&ar) < 0)
        return;
    struct lh_err err = { 0 };
    struct lh_archive_list l = { 0 };
    if (lh_archive_list(ar, "demo/", &l, &err) < 0) {
        CHECK(0, "s3 list: %s", err.msg);
        lh_archive_close(ar);
        return;
    }
    char dir[300], marker[64];
    snprintf(dir, sizeof(dir), "%s/archive", g_dir);
    snprintf(marker, sizeof(marker), "_%s_", g_tag);
    mkdir(dir, 0755);
    size_t nobj = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!strstr(l.items[i].key, marker))
            continue;
        struct lh_buf b = LH_BUF_INIT;
        if (lh_archive_get(ar, l.items[i].key, 0, 0, &b, &err) < 0) {
            CHECK(0, "s3 get %s: %s", l.items[i].key, err.msg);
            lh_buf_free(&b);
            continue;
        }
        char path[400];
        snprintf(path, sizeof(path), "%s/%05zu.parquet", dir, nobj++);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(b.data, 1, b.len, f) == b.len, "writing %s", path);
        if (f)
            fclose(f);
        bytes += b.len;
        lh_buf_free(&b);
        if (!keep)
            lh_archive_delete(ar, l.items[i].key, NULL);
    }
    lh_archive_list_free(&l);
    lh_archive_close(ar);
    say("archive: %zu Parquet objects of this run in S3, %.1f MB", nobj, bytes / 1e6);
    char exp[300];
    snprintf(exp, sizeof(exp), "%s/expected-ids.txt", g_dir);
    FILE *f = fopen(exp, "w");
    for (size_t i = 0; f && i < nwant; i++)
        fprintf(f, "%s\n", want[i]);
    if (f)
        fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "PY=$(bash tests/integration/venv.sh) && \"$PY\" "
             "tests/integration/archive_check.py %s %s 2>&1", dir, exp);
    FILE *p = popen(cmd, "r");
    char line[1024];
    while (p && fgets(line, sizeof(line), p))
        fputs(line, stdout);
    int st = p ? pclose(p) : -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "archive_check.py failed (%d)", st);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    const char *mode = "embedded";
    long count = getenv("LOGHAUL_LONG") ? 500000 : 100000;
    int outage = -1, keep = 0;
    static const struct option lo[] = {
        { "mode", required_argument, NULL, 'm' }, { "count", required_argument, NULL, 'n' },
        { "outage", required_argument, NULL, 'o' }, { "keep", no_argument, NULL, 'k' },
        { 0, 0, 0, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "m:n:o:k", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': mode = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'o': outage = atoi(optarg); break;
        case 'k': keep = 1; break;
        default: DIE("usage: indexer_e2e --mode embedded|scaled [--count N] [--outage S]");
        }
    }
    g_scaled = strcmp(mode, "scaled") == 0;
    if (outage < 0)
        outage = 60;
    if (getenv("BUILD"))
        g_build = getenv("BUILD");
    lh_log_set_level(LH_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    struct lh_err err = { 0 };
    struct lh_http_client_config hc = { .timeout_ms = 60000, .connect_timeout_ms = 2000 };
    if (lh_http_client_global_init(&err) < 0 || lh_http_client_create(&hc, &g_http, &err) < 0)
        DIE("http client: %s", err.msg);
    snprintf(g_dir, sizeof(g_dir), "%s/lh-itest-indexer-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir))
        DIE("mkdtemp: %s", strerror(errno));
    struct lh_uuid u;
    lh_uuid_v4(&u, NULL);
    snprintf(g_tag, sizeof(g_tag), "lhit%02x%02x%02x%02x", u.b[0], u.b[1], u.b[2], u.b[3]);
    char patterns[4096];
    if (!realpath("config/patterns", patterns))
        DIE("config/patterns: run from the repository root");
    say("%s mode, %ld events, work dir %s, names %s", mode, count, g_dir, g_tag);

    struct daemon col, idx;
    d_init(&col, "collector", free_port());
    d_init(&idx, "indexer", free_port());
    if (g_scaled)
        px_start(9200);
    write_configs(&col, &idx, patterns);
    struct lh_buf why = LH_BUF_INIT;
    d_start(&col);
    if (!d_ready(&col, 60, &why))
        DIE("collector not ready: %s", why.data ? why.data : "");
    d_start(&idx);
    if (!d_ready(&idx, 60, &why))
        DIE("indexer not ready: %s", why.data ? why.data : "");
    if (!g_scaled) {
        struct lh_store_config sc;
        memset(&sc, 0, sizeof(sc));
        lh_store_config_defaults(&sc);
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/store", g_dir);
        sc.dir = dir;
        if (lh_store_open(&g_store, &sc, LH_STORE_READ, &err) < 0)
            DIE("store: %s", err.msg);
    }

    struct sender s = { .collector = &col, .count = (size_t)count, .batch = 1000 };
    s.nbatches = (s.count + s.batch - 1) / s.batch;
    s.uuids = calloc(s.nbatches, sizeof(*s.uuids));
    for (size_t i = 0; i < s.nbatches; i++)
        lh_uuid_v4(&s.uuids[i], NULL);
    /* Scaled: paced so that the outage happens while events still come. */
    if (g_scaled)
        s.rate = (double)count / (outage * 2.5 + 20);
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, sender_main, &s);

    /* 40%: crash. */
    while (sent_of(&s) < s.count * 4 / 10)
        usleep(20000);
    say("sent %zu: SIGKILL to the indexer", sent_of(&s));
    d_stop(&idx, SIGKILL, 10);
    usleep(500000);
    d_start(&idx);
    if (!d_ready(&idx, 60, &why))
        DIE("indexer not ready after the crash: %s", why.data ? why.data : "");
    say("indexer running again");

    long max_rss = 0;
    if (g_scaled) {
        while (sent_of(&s) < s.count * 55 / 100)
            usleep(20000);
        say("sent %zu: OpenSearch unreachable for %d s", sent_of(&s), outage);
        px_set_down(1);
        double down_at = now_s(), mid_consumed = -1;
        int saw_down = 0, paused_ok = 1;
        while (now_s() - down_at < outage) {
            long kb = rss_kb(idx.pid);
            if (kb > max_rss)
                max_rss = kb;
            char url[128];
            snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", idx.port);
            long st = http("GET", url, NULL, NULL, 0, &why);
            double c = metric(&idx, "loghaul_indexer_consumed_total");
            if (st == 503 && why.data && strstr(why.data, "sink opensearch down")) {
                /* Paused from here on: the failed batch is in hand, nothing more
                 * may be polled until OpenSearch is back. */
                if (!saw_down)
                    mid_consumed = c;
                else if (c != mid_consumed)
                    paused_ok = 0;
                saw_down = 1;
            }
            usleep(500000);
        }
        double end_consumed = metric(&idx, "loghaul_indexer_consumed_total");
        CHECK(saw_down, "/readyz never reported the OpenSearch sink down (last: %s)",
              why.data ? why.data : "");
        CHECK(mid_consumed >= 0 && paused_ok, "consumption went on while paused: %.0f then "
              "%.0f", mid_consumed, end_consumed);
        CHECK(max_rss > 0 && max_rss < 512 * 1024, "indexer RSS %ld KiB during the outage",
              max_rss);
        say("outage: readyz said down: %s; consumed stayed at %.0f; max RSS %ld KiB; lag "
            "%.0f", saw_down ? "yes" : "no", end_consumed, max_rss,
            metric(&idx, "loghaul_indexer_bus_lag_messages"));
        px_set_down(0);
        say("OpenSearch reachable again");
    }

    /* 70%: graceful restart. */
    while (sent_of(&s) < s.count * 7 / 10)
        usleep(20000);
    say("sent %zu: SIGTERM to the indexer", sent_of(&s));
    int st = d_stop(&idx, SIGTERM, 60);
    CHECK(st == 0, "the indexer exited with %d on SIGTERM", st);
    d_start(&idx);
    if (!d_ready(&idx, 60, &why))
        DIE("indexer not ready after the restart: %s", why.data ? why.data : "");
    pthread_join(th, NULL);
    double t_sent = now_s() - t0;
    say("all %zu events accepted by the collector in %.1f s", s.count, t_sent);

    wait_count(count, g_scaled ? 300 + outage : 300);
    double t_all = now_s() - t0;
    say("the sink holds %ld events, %.1f s after the first was sent", far_count(), t_all);
    char **got = NULL;
    size_t ngot = far_ids(&got);
    char **want = expected_ids(&s);
    compare_ids(got, ngot, want, s.count);
    if (!g_scaled)
        reload_phase(&s, &idx, count);
    if (g_scaled) {
        dlq_phase(&col, &idx);
        CHECK(far_count() == count, "the DLQ probes changed the count: %ld", far_count());
    }
    double indexed = metric(&idx, g_scaled ? "logs_indexed_total{sink=\"opensearch\","
                                             "tenant=\"demo\"}"
                                           : "logs_indexed_total{sink=\"store\",tenant=\"demo\"}");
    say("logs_indexed_total of the last indexer run: %.0f; parse failures %.0f; masked %.0f",
        indexed, metric(&idx, "loghaul_indexer_parse_failures_total"),
        metric(&idx, "loghaul_indexer_masked_events_total"));
    /* Embedded: the 10 events of the reload phase at least (a fast run may
     * have left nothing else to the last restart). */
    CHECK(indexed > 0, "logs_indexed_total not reported");
    CHECK(metric(&idx, "loghaul_indexer_undecodable_total") == 0, "undecodable messages");

    st = d_stop(&idx, SIGTERM, 90);
    CHECK(st == 0, "the indexer exited with %d on SIGTERM", st);
    if (g_scaled)
        archive_phase(want, s.count, keep);
    d_stop(&col, SIGTERM, 30);
    for (size_t i = 0; i < ngot; i++)
        free(got[i]);
    for (size_t i = 0; i < s.count; i++)
        free(want[i]);
    free(got);
    free(want);
    free(s.uuids);
    lh_store_close(g_store);
    if (g_scaled && !keep) {
        char url[256];
        snprintf(url, sizeof(url), "http://127.0.0.1:9200/%s-*", g_tag);
        http("DELETE", url, NULL, NULL, 0, NULL);
        snprintf(url, sizeof(url), "http://127.0.0.1:9200/_index_template/%s-template", g_tag);
        http("DELETE", url, NULL, NULL, 0, NULL);
    }
    lh_buf_free(&why);
    lh_http_client_destroy(g_http);
    if (g_failed) {
        printf("%d check(s) failed; logs in %s\n", g_failed, g_dir);
        return 1;
    }
    if (!keep) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_dir);
    }
    printf("ok: %ld events exactly once through collector, %s and indexer (crash, restart%s)\n",
           count, g_scaled ? "kafka -> opensearch + s3 archive" : "spool -> store",
           g_scaled ? ", OpenSearch outage" : "");
    return 0;
}
