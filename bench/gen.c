/* gen.c - reproducible generator of realistic log data for loghaul's benchmarks.
 *
 * usage: gen --bytes SIZE [--seed N] [--format mix|app|json|access|syslog|java|W]
 *            [--out FILE|DIR|-] [--files N] [--record-size 500] [--start RFC3339]
 *            [--rate RECORDS_PER_S] [--manifest FILE]
 *   SIZE takes K/M/G suffixes (powers of 1000; KiB/MiB/GiB for powers of 1024).
 *   W is a weight list such as app=35,json=25,access=20,syslog=10,java=10 (the mix).
 *   With --files N > 1, --out is a directory and gets N files <format>-<i>.log,
 *   each holding one format (formats take files round-robin).
 *
 * Formats: the seeds' app format ("2026-05-23 08:06:14.123 [payment-service] ERROR
 * tr_<trace> usr_456 - message"), JSON app logs, Apache/Nginx combined access logs,
 * RFC 3164 syslog, and Java (Log4j layout) whose ERROR records carry a multi-line
 * stack trace. Services, hosts, users, URL paths and message words are drawn from
 * Zipf distributions (alias tables); every request has a unique 128-bit trace id
 * shared by the 1-16 records it produces. One record in 100 carries an e-mail
 * address, one in 500 a Luhn-valid card number (for the masking stage).
 *
 * Records average --record-size bytes (newline included); a Java stack trace is
 * one record of several lines (the agent's `multiline: java` joins them). The
 * mean is held by a feedback loop on the free-text length, so every format keeps
 * its own shape. Output is a pure function of the options: the same seed gives
 * the same bytes.
 *
 * The manifest (JSON) gives what the benchmarks need to check query answers:
 * record, line and byte counts per format, a sample of trace ids with the
 * number of lines holding each, and the rarest words of the vocabulary's tail
 * with the number of lines holding each (all counts exact). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- random numbers: splitmix64 seeding xoshiro256** ------------------- */

static uint64_t rng_s[4];

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(void)
{
    uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;
    rng_s[2] ^= rng_s[0];
    rng_s[3] ^= rng_s[1];
    rng_s[1] ^= rng_s[2];
    rng_s[0] ^= rng_s[3];
    rng_s[2] ^= t;
    rng_s[3] = rotl(rng_s[3], 45);
    return r;
}

static uint32_t below(uint32_t n)
{
    return (uint32_t)(((rnd() >> 32) * (uint64_t)n) >> 32);
}

static double unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* ---- Zipf sampling with Vose's alias method ---------------------------- */

struct zipf {
    uint32_t n;
    double *prob;
    uint32_t *alias;
};

static void zipf_init(struct zipf *z, uint32_t n, double s)
{
    double *p = malloc(n * sizeof(double)), sum = 0;
    uint32_t *small = malloc(n * sizeof(uint32_t)), *large = malloc(n * sizeof(uint32_t));
    z->n = n;
    z->prob = malloc(n * sizeof(double));
    z->alias = malloc(n * sizeof(uint32_t));
    if (!p || !small || !large || !z->prob || !z->alias) {
        fprintf(stderr, "gen: out of memory\n");
        exit(1);
    }
    for (uint32_t i = 0; i < n; i++)
        sum += p[i] = 1.0 / pow((double)(i + 1), s);
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        p[i] = p[i] * n / sum;
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t l = small[--ns], g = large[--nl];
        z->prob[l] = p[l];
        z->alias[l] = g;
        p[g] = (p[g] + p[l]) - 1.0;
        if (p[g] < 1.0)
            small[ns++] = g;
        else
            large[nl++] = g;
    }
    while (nl)
        z->prob[large[--nl]] = 1.0, z->alias[large[nl]] = large[nl];
    while (ns)
        z->prob[small[--ns]] = 1.0, z->alias[small[ns]] = small[ns];
    free(p);
    free(small);
    free(large);
}

static uint32_t zipf(const struct zipf *z)
{
    uint64_t r = rnd();
    uint32_t i = (uint32_t)(((r >> 32) * (uint64_t)z->n) >> 32);
    return (double)(r & 0xffffffffu) / 4294967296.0 < z->prob[i] ? i : z->alias[i];
}

/* ---- output buffer ----------------------------------------------------- */

struct out {
    char *p;
    size_t len, cap;
};

static void need(struct out *o, size_t n)
{
    if (o->len + n <= o->cap)
        return;
    while (o->len + n > o->cap)
        o->cap = o->cap ? o->cap * 2 : 1 << 16;
    o->p = realloc(o->p, o->cap);
    if (!o->p) {
        fprintf(stderr, "gen: out of memory\n");
        exit(1);
    }
}

static void put(struct out *o, const char *s, size_t n)
{
    need(o, n);
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putch(struct out *o, char c)
{
    need(o, 1);
    o->p[o->len++] = c;
}

static void putu(struct out *o, uint64_t v)
{
    char tmp[24];
    int i = 24;
    do
        tmp[--i] = (char)('0' + v % 10);
    while (v /= 10);
    put(o, tmp + i, (size_t)(24 - i));
}

static void putu_w(struct out *o, uint64_t v, int width)
{
    char tmp[24];
    int i = 24;
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) || 24 - i < width);
    put(o, tmp + i, (size_t)(24 - i));
}

static void puthex(struct out *o, uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";
    need(o, (size_t)digits);
    for (int i = digits - 1; i >= 0; i--) {
        o->p[o->len + (size_t)i] = hx[v & 15];
        v >>= 4;
    }
    o->len += (size_t)digits;
}

/* ---- vocabulary -------------------------------------------------------- */

static const char *const common_words[] = {
    "the", "request", "to", "for", "user", "completed", "failed", "error", "in", "of",
    "connection", "timeout", "retry", "cache", "miss", "hit", "session", "order", "payment",
    "service", "database", "query", "took", "ms", "from", "with", "upstream", "response",
    "status", "received", "sent", "processing", "started", "finished", "job", "queue",
    "message", "event", "handler", "client", "server", "token", "expired", "invalid",
    "refused", "reset", "closed", "opened", "pool", "exhausted", "waiting", "lock",
    "acquired", "released", "transaction", "commit", "rollback", "deadlock", "detected",
    "slow", "fast", "batch", "records", "written", "read", "bytes", "file", "not", "found",
    "permission", "denied", "config", "reloaded", "loaded", "version", "deploy", "healthy",
    "unhealthy", "check", "passed", "latency", "high", "low", "memory", "usage", "cpu",
    "disk", "full", "space", "available", "node", "cluster", "leader", "elected", "follower",
    "replica", "shard", "partition", "offset", "consumer", "producer", "topic", "lag",
    "rebalance", "assigned", "revoked", "heartbeat", "missed", "scheduler", "task", "worker",
    "thread", "blocked", "interrupted", "shutdown", "startup", "initialized", "ready",
    "listening", "port", "bound", "certificate", "handshake", "tls", "authenticated",
    "authorization", "header", "missing", "body", "parse", "json", "field", "value",
    "null", "empty", "too", "large", "limit", "exceeded", "rate", "throttled", "backoff",
    "circuit", "breaker", "open", "half", "cart", "checkout", "inventory", "reserved",
    "shipment", "created", "updated", "deleted", "account", "login", "logout", "password",
    "reset", "email", "notification", "delivered", "bounced", "webhook", "callback",
    "invoice", "refund", "captured", "authorized", "declined", "card", "fraud", "score",
    "risk", "rule", "matched", "feature", "flag", "enabled", "disabled", "experiment",
    "variant", "search", "index", "document", "mapping", "rejected", "accepted", "stored",
    "archived", "compressed", "uploaded", "downloaded", "object", "bucket", "key", "region",
    "zone", "instance", "container", "pod", "restarted", "killed", "oom", "evicted",
    "scaled", "replicas", "gc", "pause", "heap", "allocated", "freed", "stack", "frame",
};
#define NCOMMON (sizeof(common_words) / sizeof(common_words[0]))

#define VOCAB 65536              /* words in the Zipf vocabulary */
#define TRACKED 1024             /* the rarest ranks, counted for the manifest */

static char vocab_buf[VOCAB * 8];
static const char *vocab[VOCAB];
static uint8_t vocab_len[VOCAB];

/* Ranks past the common words are synthetic 7-letter words: three
 * consonant-vowel syllables and a closing consonant, unique per rank. */
static void vocab_init(void)
{
    static const char cons[] = "bdfgklmnprstvzhj", vow[] = "aeiou", fin[] = "xqwyc";
    char *p = vocab_buf;
    for (uint32_t r = 0; r < VOCAB; r++) {
        if (r < NCOMMON) {
            vocab[r] = common_words[r];
            vocab_len[r] = (uint8_t)strlen(common_words[r]);
            continue;
        }
        /* r -> x is a bijection on [0, 16^3 * 5^4); x in mixed radix spells
         * the word, so distinct ranks get distinct spellings. */
        uint32_t x = (uint32_t)((uint64_t)r * 1000003u % 2560000u);
        p[0] = cons[x % 16], x /= 16;
        p[1] = vow[x % 5], x /= 5;
        p[2] = cons[x % 16], x /= 16;
        p[3] = vow[x % 5], x /= 5;
        p[4] = cons[x % 16], x /= 16;
        p[5] = vow[x % 5], x /= 5;
        p[6] = fin[x % 5];
        vocab[r] = p;
        vocab_len[r] = 7;
        p[7] = 0;
        p += 8;
    }
}

/* ---- the world the logs describe -------------------------------------- */

static const char *const services[] = {
    "api-gateway", "payment-service", "order-service", "user-service", "auth-service",
    "inventory", "search", "cart", "checkout", "shipping", "billing", "notification",
    "recommendation", "catalog", "reviews", "fraud-detection", "email-worker", "session",
    "analytics-ingest", "scheduler", "pricing", "loyalty", "media-resizer", "geo-lookup",
    "ledger", "tax-service", "coupon", "wishlist", "returns", "audit-log", "feature-flags",
    "config-service", "rate-limiter", "webhooks", "export-worker", "import-worker",
    "report-builder", "identity", "kyc", "payout",
};
#define NSVC (sizeof(services) / sizeof(services[0]))
#define NHOSTS 2000
#define NUSERS 200000
#define NPATHS 400

static const char *const levels_app[] = { "INFO", "DEBUG", "WARN", "ERROR", "FATAL", "TRACE" };
static const char *const levels_json[] = { "info", "debug", "warn", "error", "fatal", "trace" };

static int pick_level(void)
{
    uint32_t r = below(1000);
    return r < 690 ? 0 : r < 850 ? 1 : r < 945 ? 2 : r < 995 ? 3 : r < 997 ? 4 : 5;
}

static const char *const methods[] = { "GET", "GET", "GET", "GET", "POST", "POST", "PUT",
                                       "DELETE", "PATCH", "HEAD" };
static const char *const path_roots[] = {
    "/api/v1/orders", "/api/v1/users", "/api/v1/cart", "/api/v1/products", "/api/v2/search",
    "/api/v1/payments", "/api/v1/sessions", "/static/js", "/static/css", "/images",
    "/api/v1/inventory", "/api/v1/shipments", "/healthz", "/metrics", "/api/v1/reviews",
    "/api/v1/coupons",
};
static const char *const agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "curl/8.5.0", "Go-http-client/1.1", "okhttp/4.12.0", "python-requests/2.31.0",
    "kube-probe/1.29", "Prometheus/2.51.2",
};
#define NAGENTS (sizeof(agents) / sizeof(agents[0]))
static const char *const statuses[] = { "200", "200", "200", "200", "200", "200", "200", "201",
                                        "204", "301", "304", "304", "400", "401", "403", "404",
                                        "404", "429", "500", "502", "503" };
static const char *const progs[] = { "sshd", "CRON", "systemd", "kernel", "dockerd",
                                     "containerd", "kubelet", "sudo", "rsyslogd", "chronyd" };
static const char *const jclasses[] = {
    "com.example.payment.PaymentService", "com.example.order.OrderController",
    "com.example.user.UserRepository", "com.example.cart.CartService",
    "org.springframework.web.servlet.DispatcherServlet", "com.zaxxer.hikari.pool.HikariPool",
    "org.hibernate.engine.jdbc.spi.SqlExceptionHelper", "com.example.auth.TokenFilter",
    "org.apache.kafka.clients.consumer.KafkaConsumer", "com.example.search.SearchClient",
};
static const char *const jexceptions[] = {
    "java.lang.IllegalStateException", "java.lang.NullPointerException",
    "java.sql.SQLTransientConnectionException", "java.net.SocketTimeoutException",
    "org.springframework.dao.DataIntegrityViolationException", "java.io.IOException",
    "com.example.payment.PaymentDeclinedException", "java.util.concurrent.TimeoutException",
};
static const char *const jframes[] = {
    "com.example.payment.PaymentService.capture(PaymentService.java:",
    "com.example.payment.PaymentService.lambda$process$3(PaymentService.java:",
    "com.example.order.OrderController.create(OrderController.java:",
    "com.example.order.OrderService.place(OrderService.java:",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:",
    "org.hibernate.internal.SessionImpl.flush(SessionImpl.java:",
    "org.springframework.transaction.support.TransactionTemplate.execute(TransactionTemplate.java:",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:",
    "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:",
    "java.base/java.lang.Thread.run(Thread.java:",
    "com.example.common.RetryTemplate.call(RetryTemplate.java:",
    "java.base/java.net.SocketInputStream.read(SocketInputStream.java:",
};
#define NJFRAMES (sizeof(jframes) / sizeof(jframes[0]))
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

enum fmt { F_APP, F_JSON, F_ACCESS, F_SYSLOG, F_JAVA, NFMT };
static const char *const fmt_names[NFMT] = { "app", "json", "access", "syslog", "java" };

static struct {
    uint64_t bytes, seed, rate, record_size;
    const char *out, *manifest;
    int files;
    double weight[NFMT];
    int64_t start_ns;
} opt = { 0, 1, 2000, 500, "-", NULL, 1, { 35, 25, 20, 10, 10 }, 0 };

static struct zipf z_svc, z_host, z_user, z_word, z_path, z_tlen;

/* ---- traces: unique ids, each shared by the records of one request ------ */

#define ACTIVE 48
static struct {
    uint64_t hi, lo;
    int left;
} active[ACTIVE];
static uint64_t trace_counter, trace_key_hi, trace_key_lo;

#define TSAMPLE_MAX 8192
static struct tsample {
    uint64_t hi, lo, lines, last_line;
} tsample[TSAMPLE_MAX];
static int ntsample;
static int slot_sample[ACTIVE]; /* index into tsample, or -1 */

/* The trace of the record being written: slot index. */
static int cur_slot;

static void pick_trace(void)
{
    int s = (int)below(ACTIVE);
    if (active[s].left <= 0) {
        uint64_t c = trace_counter++;
        /* splitmix64 is a bijection: distinct counters give distinct ids. */
        active[s].hi = splitmix64(c ^ trace_key_hi);
        active[s].lo = splitmix64(c ^ trace_key_lo);
        active[s].left = 1 + (int)zipf(&z_tlen);
        slot_sample[s] = -1;
        if (c % 61 == 0 && ntsample < TSAMPLE_MAX) {
            slot_sample[s] = ntsample;
            tsample[ntsample].hi = active[s].hi;
            tsample[ntsample].lo = active[s].lo;
            ntsample++;
        }
    }
    active[s].left--;
    cur_slot = s;
}

static uint64_t line_no;   /* physical lines written so far (1-based while writing one) */

static void put_trace(struct out *o)
{
    int si = slot_sample[cur_slot];
    if (si >= 0 && tsample[si].last_line != line_no) {
        tsample[si].last_line = line_no;
        tsample[si].lines++;
    }
    puthex(o, active[cur_slot].hi, 16);
    puthex(o, active[cur_slot].lo, 16);
}

/* ---- free text --------------------------------------------------------- */

static uint64_t tracked_lines[TRACKED], tracked_last[TRACKED];
static double fill = 1.0;   /* feedback factor on free-text length */

static void put_word(struct out *o, uint32_t w)
{
    if (w >= VOCAB - TRACKED) {
        uint32_t t = w - (VOCAB - TRACKED);
        if (tracked_last[t] != line_no) {
            tracked_last[t] = line_no;
            tracked_lines[t]++;
        }
    }
    put(o, vocab[w], vocab_len[w]);
}

/* Message templates: fixed common words with variable slots, the way
 * programs log (`"payment %s declined for order %d"`). */
#define NTPL 1000
#define SLOT_NUM (VOCAB + 0)     /* a number */
#define SLOT_KV (VOCAB + 1)      /* key=<number>, the key the next token */
#define SLOT_HEX (VOCAB + 2)     /* an 8-digit hex id */
#define SLOT_WORD (VOCAB + 3)    /* a word from the whole vocabulary */
static uint32_t *tpl_tok[NTPL];
static uint8_t tpl_len[NTPL];
static struct zipf z_tpl, z_common;

static void templates_init(void)
{
    for (uint32_t t = 0; t < NTPL; t++) {
        uint64_t h = splitmix64(t ^ 0x74706cull);
        int n = 6 + (int)(h % 30);
        tpl_tok[t] = malloc(sizeof(uint32_t) * (size_t)n * 2);
        int k = 0;
        for (int i = 0; i < n; i++) {
            uint32_t r = below(100);
            if (r < 6) {
                tpl_tok[t][k++] = SLOT_NUM;
            } else if (r < 12) {
                tpl_tok[t][k++] = SLOT_KV;
                tpl_tok[t][k++] = zipf(&z_common);
            } else if (r < 14) {
                tpl_tok[t][k++] = SLOT_HEX;
            } else if (r < 20) {
                tpl_tok[t][k++] = SLOT_WORD;
            } else {
                tpl_tok[t][k++] = zipf(&z_common);
            }
        }
        tpl_len[t] = (uint8_t)k;
    }
}

static void put_vocab_word(struct out *o, int rare_ok)
{
    uint32_t w = zipf(&z_word);
    if (!rare_ok && w >= VOCAB - TRACKED)
        w %= NCOMMON;
    put_word(o, w);
}

/* A templated message, then about `tail` words of free text (the part the
 * record-size feedback stretches or shrinks). */
static void put_text(struct out *o, int tail, int rare_ok)
{
    uint32_t t = zipf(&z_tpl);
    const uint32_t *tok = tpl_tok[t];
    for (int i = 0; i < tpl_len[t]; i++) {
        if (i)
            putch(o, ' ');
        switch (tok[i]) {
        case SLOT_NUM:
            putu(o, below(below(2) ? 100 : 100000));
            break;
        case SLOT_KV:
            i++;
            put_word(o, tok[i]);
            putch(o, '=');
            putu(o, below(1000));
            break;
        case SLOT_HEX:
            puthex(o, rnd(), 8);
            break;
        case SLOT_WORD:
            put_vocab_word(o, rare_ok);
            break;
        default:
            put_word(o, tok[i]);
        }
    }
    int n = (int)(tail * fill + unit());
    for (int i = 0; i < n; i++) {
        putch(o, ' ');
        uint32_t r = below(10);
        if (r == 0)
            putu(o, below(10000));
        else if (r < 8)
            put_word(o, zipf(&z_common));
        else
            put_vocab_word(o, rare_ok);
    }
}

/* One record in 100 mentions an e-mail address, one in 500 a card number. */
static void put_pii(struct out *o)
{
    uint32_t r = below(1000);
    if (r < 10) {
        uint32_t w = below(NCOMMON);
        puts_(o, " email=");
        put(o, vocab[w], vocab_len[w]);
        putch(o, '.');
        putu(o, below(NUSERS));
        puts_(o, "@example.com");
    } else if (r < 12) {
        /* A Visa-like 16-digit number with a valid Luhn check digit. */
        int d[16];
        d[0] = 4;
        for (int i = 1; i < 15; i++)
            d[i] = (int)below(10);
        int sum = 0;
        for (int i = 0; i < 15; i++) {
            int v = d[14 - i];
            if (i % 2 == 0)
                v = v * 2 > 9 ? v * 2 - 9 : v * 2;
            sum += v;
        }
        d[15] = (10 - sum % 10) % 10;
        puts_(o, " card=");
        for (int i = 0; i < 16; i++)
            putch(o, (char)('0' + d[i]));
    }
}

/* ---- timestamps -------------------------------------------------------- */

struct tparts {
    int year, mon, day, hour, min, sec, ms, wday;
};

static struct tparts split_ts(int64_t ns)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return (struct tparts){ tm.tm_year + 1900, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, (int)(ns / 1000000 % 1000), tm.tm_wday };
}

/* 2026-05-23<sep>08:06:14<frac>123 */
static void put_iso(struct out *o, const struct tparts *t, char sep, char frac)
{
    putu_w(o, (uint64_t)t->year, 4);
    putch(o, '-');
    putu_w(o, (uint64_t)t->mon + 1, 2);
    putch(o, '-');
    putu_w(o, (uint64_t)t->day, 2);
    putch(o, sep);
    putu_w(o, (uint64_t)t->hour, 2);
    putch(o, ':');
    putu_w(o, (uint64_t)t->min, 2);
    putch(o, ':');
    putu_w(o, (uint64_t)t->sec, 2);
    putch(o, frac);
    putu_w(o, (uint64_t)t->ms, 3);
}

/* ---- one record per format --------------------------------------------- */

static void host_name(struct out *o, uint32_t h)
{
    puts_(o, h % 3 ? "web-" : "ip-10-");
    if (h % 3) {
        putu_w(o, h, 4);
        puts_(o, ".dc");
        putu(o, 1 + h % 4);
        puts_(o, ".example.com");
    } else {
        putu(o, (h >> 8) & 255);
        putch(o, '-');
        putu(o, h & 255);
        puts_(o, "-7");
    }
}

static void gen_app(struct out *o, const struct tparts *t)
{
    int lv = pick_level();
    put_iso(o, t, ' ', '.');
    puts_(o, " [");
    puts_(o, services[zipf(&z_svc)]);
    puts_(o, "] ");
    puts_(o, levels_app[lv]);
    puts_(o, " tr_");
    pick_trace();
    put_trace(o);
    puts_(o, " usr_");
    putu(o, zipf(&z_user));
    puts_(o, " - ");
    put_text(o, 28, 1);
    put_pii(o);
    puts_(o, " duration_ms=");
    putu(o, below(2000));
    putch(o, '\n');
}

static void gen_json(struct out *o, const struct tparts *t)
{
    int lv = pick_level();
    uint32_t svc = zipf(&z_svc);
    puts_(o, "{\"timestamp\":\"");
    put_iso(o, t, 'T', '.');
    puts_(o, "Z\",\"level\":\"");
    puts_(o, levels_json[lv]);
    puts_(o, "\",\"service\":\"");
    puts_(o, services[svc]);
    puts_(o, "\",\"host\":\"");
    host_name(o, zipf(&z_host));
    if (below(10)) {
        puts_(o, "\",\"trace_id\":\"");
        pick_trace();
        put_trace(o);
        puts_(o, "\",\"span_id\":\"");
        puthex(o, rnd(), 16);
    }
    puts_(o, "\",\"user_id\":\"usr_");
    putu(o, zipf(&z_user));
    puts_(o, "\",\"msg\":\"");
    put_text(o, 20, 1);
    put_pii(o);
    puts_(o, "\",\"http\":{\"method\":\"");
    puts_(o, methods[below(10)]);
    puts_(o, "\",\"path\":\"");
    puts_(o, path_roots[zipf(&z_path) % 16]);
    puts_(o, "\",\"status\":");
    puts_(o, statuses[below(21)]);
    puts_(o, ",\"duration_ms\":");
    putu(o, below(3000));
    putch(o, '.');
    putu(o, below(10));
    puts_(o, "},\"k8s\":{\"namespace\":\"shop\",\"pod\":\"");
    puts_(o, services[svc]);
    putch(o, '-');
    puthex(o, rnd(), 5);
    puts_(o, "\"}}\n");
}

static void gen_access(struct out *o, const struct tparts *t)
{
    uint32_t ip = (uint32_t)splitmix64(zipf(&z_user));
    putu(o, 10 + (ip >> 24) % 200);
    putch(o, '.');
    putu(o, (ip >> 16) & 255);
    putch(o, '.');
    putu(o, (ip >> 8) & 255);
    putch(o, '.');
    putu(o, ip & 255);
    puts_(o, below(10) ? " - - [" : " - alice [");
    putu_w(o, (uint64_t)t->day, 2);
    putch(o, '/');
    puts_(o, months[t->mon]);
    putch(o, '/');
    putu_w(o, (uint64_t)t->year, 4);
    putch(o, ':');
    putu_w(o, (uint64_t)t->hour, 2);
    putch(o, ':');
    putu_w(o, (uint64_t)t->min, 2);
    putch(o, ':');
    putu_w(o, (uint64_t)t->sec, 2);
    puts_(o, " +0000] \"");
    puts_(o, methods[below(10)]);
    putch(o, ' ');
    uint32_t p = zipf(&z_path);
    puts_(o, path_roots[p % 16]);
    putch(o, '/');
    putu(o, p * 7919 % 100000);
    if (below(3) == 0) {
        puts_(o, "?q=");
        put_vocab_word(o, 0);
        putch(o, '+');
        put_vocab_word(o, 0);
        puts_(o, "&page=");
        putu(o, below(20));
    }
    puts_(o, " HTTP/1.1\" ");
    puts_(o, statuses[below(21)]);
    putch(o, ' ');
    putu(o, 200 + below(60000));
    puts_(o, " \"https://shop.example.com");
    puts_(o, path_roots[zipf(&z_path) % 16]);
    puts_(o, "\" \"");
    puts_(o, agents[below(NAGENTS)]);
    puts_(o, "\" rt=0.");
    putu_w(o, below(1000), 3);
    puts_(o, " uct=0.00");
    putu(o, below(10));
    if (below(5)) {
        puts_(o, " trace_id=");
        pick_trace();
        put_trace(o);
    }
    putch(o, '\n');
}

static void gen_syslog(struct out *o, const struct tparts *t)
{
    puts_(o, months[t->mon]);
    putch(o, ' ');
    if (t->day < 10)
        putch(o, ' ');
    putu(o, (uint64_t)t->day);
    putch(o, ' ');
    putu_w(o, (uint64_t)t->hour, 2);
    putch(o, ':');
    putu_w(o, (uint64_t)t->min, 2);
    putch(o, ':');
    putu_w(o, (uint64_t)t->sec, 2);
    putch(o, ' ');
    host_name(o, zipf(&z_host));
    putch(o, ' ');
    uint32_t pr = below(10);
    puts_(o, progs[pr]);
    if (pr != 3) {
        putch(o, '[');
        putu(o, 300 + below(60000));
        putch(o, ']');
    }
    puts_(o, ": ");
    switch (below(5)) {
    case 0:
        puts_(o, "Accepted publickey for deploy from 10.");
        putu(o, below(256));
        puts_(o, ".");
        putu(o, below(256));
        puts_(o, ".4 port ");
        putu(o, 30000 + below(30000));
        puts_(o, " ssh2: ED25519 SHA256:");
        puthex(o, rnd(), 16);
        puts_(o, " ");
        break;
    case 1:
        puts_(o, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0) ");
        break;
    case 2:
        puts_(o, "Started Session ");
        putu(o, below(100000));
        puts_(o, " of User deploy. ");
        break;
    default:
        break;
    }
    put_text(o, 4, 1);
    putch(o, '\n');
}

static void gen_java(struct out *o, const struct tparts *t)
{
    int lv = pick_level();
    int trace = lv == 3 || lv == 4 ? 1 : below(4) == 0;
    put_iso(o, t, ' ', ',');
    putch(o, ' ');
    puts_(o, levels_app[trace && lv < 3 ? 3 : lv]);
    puts_(o, " [http-nio-8080-exec-");
    putu(o, 1 + below(200));
    puts_(o, "] ");
    puts_(o, jclasses[below(10)]);
    puts_(o, " - ");
    put_text(o, trace ? 2 : 12, 1);
    puts_(o, " traceId=");
    pick_trace();
    put_trace(o);
    putch(o, '\n');
    if (!trace)
        return;
    /* The stack trace: an exception line, frames, maybe a cause. */
    int causes = below(3) == 0 ? 1 : 0;
    for (int c = 0; c <= causes; c++) {
        line_no++;
        if (c)
            puts_(o, "Caused by: ");
        puts_(o, jexceptions[below(8)]);
        puts_(o, ": ");
        put_text(o, 0, 0);
        putch(o, '\n');
        int frames = 4 + (int)below(14);
        uint32_t f0 = below(NJFRAMES);
        for (int i = 0; i < frames; i++) {
            line_no++;
            puts_(o, "\tat ");
            puts_(o, jframes[(f0 + (uint32_t)i) % NJFRAMES]);
            putu(o, 20 + below(600));
            puts_(o, ")\n");
        }
        if (c) {
            line_no++;
            puts_(o, "\t... ");
            putu(o, 5 + below(40));
            puts_(o, " more\n");
        }
    }
}

/* ---- main -------------------------------------------------------------- */

static uint64_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    uint64_t m = 1;
    if (!strcmp(end, "K") || !strcmp(end, "KB") || !strcmp(end, "k")) m = 1000;
    else if (!strcmp(end, "M") || !strcmp(end, "MB")) m = 1000000;
    else if (!strcmp(end, "G") || !strcmp(end, "GB")) m = 1000000000;
    else if (!strcmp(end, "KiB")) m = 1024;
    else if (!strcmp(end, "MiB")) m = 1024 * 1024;
    else if (!strcmp(end, "GiB")) m = 1024ull * 1024 * 1024;
    else if (*end) {
        fprintf(stderr, "gen: bad size %s\n", s);
        exit(2);
    }
    return (uint64_t)(v * (double)m);
}

static void parse_format(const char *s)
{
    if (!strcmp(s, "mix"))
        return;
    for (int f = 0; f < NFMT; f++)
        opt.weight[f] = 0;
    for (int f = 0; f < NFMT; f++)
        if (!strcmp(s, fmt_names[f])) {
            opt.weight[f] = 1;
            return;
        }
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int found = 0;
        if (eq) {
            *eq = 0;
            for (int f = 0; f < NFMT; f++)
                if (!strcmp(tok, fmt_names[f])) {
                    opt.weight[f] = atof(eq + 1);
                    found = 1;
                }
        }
        if (!found) {
            fprintf(stderr, "gen: bad --format item '%s' (mix, a format, or app=35,json=25,...)\n",
                    tok);
            exit(2);
        }
    }
    free(copy);
}

static int64_t parse_start(const char *s)
{
    struct tm tm = {0};
    if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) {
        fprintf(stderr, "gen: bad --start %s (YYYY-MM-DDTHH:MM:SSZ)\n", s);
        exit(2);
    }
    return (int64_t)timegm(&tm) * 1000000000;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gen --bytes SIZE [--seed N] [--format mix|app|json|access|syslog|java|"
            "app=35,json=25,...]\n"
            "           [--out FILE|DIR|-] [--files N] [--record-size 500] "
            "[--start 2026-05-23T00:00:00Z]\n"
            "           [--rate RECORDS_PER_S] [--manifest FILE]\n");
    exit(2);
}

static void write_all(FILE *f, const char *p, size_t n, const char *name)
{
    if (n && fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "gen: write %s: %s\n", name, strerror(errno));
        exit(1);
    }
}

static int cmp_u64_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

int main(int argc, char **argv)
{
    opt.start_ns = parse_start("2026-05-23T00:00:00Z");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            usage();
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--bytes")) opt.bytes = parse_size(v);
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--format")) parse_format(v);
        else if (!strcmp(a, "--out")) opt.out = v;
        else if (!strcmp(a, "--files")) opt.files = atoi(v);
        else if (!strcmp(a, "--record-size")) opt.record_size = parse_size(v);
        else if (!strcmp(a, "--start")) opt.start_ns = parse_start(v);
        else if (!strcmp(a, "--rate")) opt.rate = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--manifest")) opt.manifest = v;
        else usage();
    }
    double wsum = 0;
    for (int f = 0; f < NFMT; f++)
        wsum += opt.weight[f] > 0 ? opt.weight[f] : 0;
    if (!opt.bytes || opt.files < 1 || opt.files > 4096 || !opt.rate || wsum <= 0 ||
        opt.record_size < 100)
        usage();

    /* Everything random comes from the seed. */
    uint64_t sm = opt.seed;
    for (int i = 0; i < 4; i++)
        rng_s[i] = splitmix64(sm += 0x9e3779b97f4a7c15ull);
    trace_key_hi = splitmix64(opt.seed ^ 0x7472616365686921ull);
    trace_key_lo = splitmix64(opt.seed ^ 0x6c6f6768617a6c21ull);
    vocab_init();
    zipf_init(&z_svc, NSVC, 1.1);
    zipf_init(&z_host, NHOSTS, 1.0);
    zipf_init(&z_user, NUSERS, 1.0);
    zipf_init(&z_word, VOCAB, 1.1);
    zipf_init(&z_path, NPATHS, 1.2);
    zipf_init(&z_tlen, 16, 1.0);
    zipf_init(&z_tpl, NTPL, 1.1);
    zipf_init(&z_common, NCOMMON, 1.0);
    templates_init();

    /* Files: one format each, formats taking files round-robin. */
    int nf = opt.files;
    FILE **fp = calloc((size_t)nf, sizeof(FILE *));
    struct out *ob = calloc((size_t)nf, sizeof(struct out));
    int fmt_files[NFMT][4096];
    int nfmt_files[NFMT] = {0};
    int active_fmts[NFMT], nactive = 0;
    for (int f = 0; f < NFMT; f++)
        if (opt.weight[f] > 0)
            active_fmts[nactive++] = f;
    char path[4096];
    for (int i = 0; i < nf; i++) {
        int f = active_fmts[i % nactive];
        if (nf == 1) {
            for (int k = 0; k < NFMT; k++)
                fmt_files[k][nfmt_files[k]++] = 0;
            if (!strcmp(opt.out, "-"))
                fp[0] = stdout;
            else
                snprintf(path, sizeof(path), "%s", opt.out);
        } else {
            fmt_files[f][nfmt_files[f]++] = i;
            if (i == 0 && mkdir(opt.out, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "gen: mkdir %s: %s\n", opt.out, strerror(errno));
                return 1;
            }
            snprintf(path, sizeof(path), "%s/%s-%02d.log", opt.out, fmt_names[f], i);
        }
        if (!fp[i] && !(fp[i] = fopen(path, "w"))) {
            fprintf(stderr, "gen: open %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    if (nf > 1 && nf < nactive) {
        fprintf(stderr, "gen: --files must be 1 or at least the number of formats (%d)\n",
                nactive);
        return 2;
    }
    for (int i = 0; i < ACTIVE; i++)
        slot_sample[i] = -1;

    double cum[NFMT];
    double acc = 0;
    for (int f = 0; f < NFMT; f++)
        cum[f] = (acc += (opt.weight[f] > 0 ? opt.weight[f] : 0) / wsum);

    uint64_t total = 0, records = 0;
    uint64_t f_records[NFMT] = {0}, f_lines[NFMT] = {0}, f_bytes[NFMT] = {0};
    int64_t step = (int64_t)(1000000000 / opt.rate);
    int64_t ts = opt.start_ns;
    int64_t cached_sec = -1;
    struct tparts tp = {0};
    while (total < opt.bytes) {
        double u = unit();
        int f = 0;
        while (f < NFMT - 1 && u >= cum[f])
            f++;
        int fi = fmt_files[f][nfmt_files[f] == 1 ? 0 : below((uint32_t)nfmt_files[f])];
        struct out *o = &ob[fi];
        size_t before = o->len;
        uint64_t lines_before = line_no;
        ts += step / 2 + (int64_t)below((uint32_t)step + 1);
        if (ts / 1000000000 != cached_sec) {
            cached_sec = ts / 1000000000;
            tp = split_ts(ts);
        }
        tp.ms = (int)(ts / 1000000 % 1000);
        line_no++;
        switch (f) {
        case F_APP: gen_app(o, &tp); break;
        case F_JSON: gen_json(o, &tp); break;
        case F_ACCESS: gen_access(o, &tp); break;
        case F_SYSLOG: gen_syslog(o, &tp); break;
        default: gen_java(o, &tp); break;
        }
        size_t n = o->len - before;
        total += n;
        records++;
        f_records[f]++;
        f_bytes[f] += n;
        f_lines[f] += line_no - lines_before;
        if (o->len >= 1 << 20) {
            write_all(fp[fi], o->p, o->len, opt.out);
            o->len = 0;
        }
        /* Hold the mean record size: nudge the free-text length. */
        if ((records & 255) == 0) {
            double want = (double)opt.record_size * (double)records;
            fill *= 1.0 + 0.5 * (want - (double)total) / want;
            if (fill < 0.1)
                fill = 0.1;
            if (fill > 10)
                fill = 10;
        }
    }
    for (int i = 0; i < nf; i++) {
        write_all(fp[i], ob[i].p, ob[i].len, opt.out);
        if (fp[i] != stdout ? fclose(fp[i]) != 0 : fflush(fp[i]) != 0) {
            fprintf(stderr, "gen: close: %s\n", strerror(errno));
            return 1;
        }
        free(ob[i].p);
    }

    if (opt.manifest) {
        FILE *m = fopen(opt.manifest, "w");
        if (!m) {
            fprintf(stderr, "gen: open %s: %s\n", opt.manifest, strerror(errno));
            return 1;
        }
        fprintf(m, "{\"seed\":%llu,\"bytes\":%llu,\"records\":%llu,\"lines\":%llu,"
                   "\"record_size\":%llu,\"start_ns\":%lld,\"end_ns\":%lld,\"traces\":%llu,"
                   "\"formats\":{",
                (unsigned long long)opt.seed, (unsigned long long)total,
                (unsigned long long)records, (unsigned long long)line_no,
                (unsigned long long)opt.record_size, (long long)opt.start_ns, (long long)ts,
                (unsigned long long)trace_counter);
        int first = 1;
        for (int f = 0; f < NFMT; f++) {
            if (!f_records[f])
                continue;
            fprintf(m, "%s\"%s\":{\"records\":%llu,\"lines\":%llu,\"bytes\":%llu}",
                    first ? "" : ",", fmt_names[f], (unsigned long long)f_records[f],
                    (unsigned long long)f_lines[f], (unsigned long long)f_bytes[f]);
            first = 0;
        }
        /* Up to 200 sampled traces, spread over the run. */
        fprintf(m, "},\"trace_ids\":[");
        int step_s = ntsample > 200 ? ntsample / 200 : 1, k = 0;
        for (int i = 0; i < ntsample && k < 200; i += step_s, k++)
            fprintf(m, "%s{\"id\":\"%016llx%016llx\",\"lines\":%llu}", k ? "," : "",
                    (unsigned long long)tsample[i].hi, (unsigned long long)tsample[i].lo,
                    (unsigned long long)tsample[i].lines);
        /* The rarest tracked words that occur at all, rarest first. */
        uint64_t (*pairs)[2] = malloc(sizeof(uint64_t[2]) * TRACKED);
        int np = 0;
        for (int t = 0; t < TRACKED; t++)
            if (tracked_lines[t]) {
                pairs[np][0] = tracked_lines[t];
                pairs[np][1] = (uint64_t)t;
                np++;
            }
        qsort(pairs, (size_t)np, sizeof(pairs[0]), cmp_u64_pair);
        fprintf(m, "],\"rare_terms\":[");
        for (int i = 0; i < np && i < 100; i++)
            fprintf(m, "%s{\"term\":\"%s\",\"lines\":%llu}", i ? "," : "",
                    vocab[VOCAB - TRACKED + pairs[i][1]], (unsigned long long)pairs[i][0]);
        fprintf(m, "]}\n");
        free(pairs);
        if (fclose(m) != 0) {
            fprintf(stderr, "gen: close %s: %s\n", opt.manifest, strerror(errno));
            return 1;
        }
    }
    free(fp);
    free(ob);
    return 0;
}
