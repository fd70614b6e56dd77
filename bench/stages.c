/* stages.c - loghaul's pipeline stages measured alone, in one process, on
 * the generator's data (bench/gen):
 *
 *   stages parse --data FILE --patterns DIR [--start-ns NS]
 *       the indexer's parse stage (JSON, the grok chain, logfmt, timestamps)
 *       plus PII masking of message and raw, over every record of FILE; and
 *       as the baseline, one grok pattern (the seed's app format, PCRE2 JIT)
 *       tried on every record: events per CPU-second of each.
 *   stages store --data FILE --dir DIR --patterns DIR [--batch 5000]
 *       parses every record (not timed), then appends the events to a fresh
 *       embedded store (lh_store_append, fdatasync'd per batch): raw MB per
 *       CPU-second of the appends, wall MB/s, and bytes on disk per raw byte.
 *   stages query --dir DIR --manifest FILE --data FILE [--n 20] [--nbase 5] [--lat FILE]
 *                [--answers FILE]
 *       the store's queries: (a) --n trace ids and (b) --n rare words listed
 *       in the generator's manifest, full text, first page of 100 plus the
 *       exact hit count (as the search API answers), each count checked
 *       against the manifest; the first --nbase of each also with `grep -c`
 *       over the raw file and `zstdgrep -c` over FILE.zst when present
 *       (LC_ALL=C); (c) --n searches for common words, newest 100 hits and
 *       the total up to 10,001, vs `grep -m 100`; (d) the data's first hour
 *       counted by level (histogram + top, as queryd's aggregate asks) --n
 *       times, vs one awk pass. p50/p99 in ms; --answers FILE gets the
 *       answers for `osquery` to compare. With --end-ns NS every query
 *       asks only for events before NS (a sample; counts not checked
 *       against the manifest, which counts the whole file).
 *   stages osquery --url URL --index PREFIX --manifest FILE [--n 20] [--answers FILE]
 *       the same (a)-(d) through queryd's OpenSearch backend on indices
 *       PREFIX-bench-YYYY.MM.DD loaded from `bulk`'s bodies, answers checked
 *       against the manifest and the store's answers file.
 *   stages bulk --data FILE --out DIR --index NAME [--max-mb 50] [--body-mb 5]
 *       parses the first --max-mb MB of records and writes OpenSearch _bulk
 *       bodies of about --body-mb MB (create actions with the ids `store`
 *       gives the same events, --batch 5000) into DIR; with --end-ns NS only
 *       the events before NS; prints {"events", "raw_bytes", "bodies"}.
 *   stages archive --data FILE --patterns DIR [--batch 50000] [--max-mb M]
 *       (built when lh/archive_format.h is there) the archive writer: the
 *       first M MB of records in objects of --batch events, as Parquet and as
 *       NDJSON+zstd: MB per CPU-second of each, object bytes per raw byte.
 *   stages watch --dir DIR --tenant T --out FILE
 *       the visibility probe: see cmd_watch.
 *   stages count --dir DIR --tenant T [--start-ns NS] [--end-ns NS]
 *       the number of stored events of T in that time range.
 *
 * A record is a line, or a Java stack trace (continuation lines joined the
 * way the agent's `multiline: java` does). Figures go to stdout as JSON
 * lines {"name", "value", "unit"}; --lat FILE gets one "<kind> <ms>" line
 * per query (for the latency plots). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lh/arena.h"
#include "lh/conf.h"
#include "lh/event.h"
#include "lh/mask.h"
#include "lh/store.h"
#ifdef LH_BENCH_ARCHIVE
#include "lh/archive_format.h"
#endif
#include "lh/time.h"
#include "../indexer/grok.h"
#include "../indexer/parse.h"
#include "../queryd/backend.h"
#include "../queryd/query.h"

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emit(const char *name, double value, const char *unit)
{
    printf("{\"name\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n", name, value, unit);
    fflush(stdout);
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "stages: %s: %s\n", what, why);
    exit(1);
}

/* ---- records ----------------------------------------------------------- */

struct data {
    const char *p;
    size_t len;
};

static struct data map_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        die(path, strerror(errno));
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        die(path, strerror(errno));
    close(fd);
    madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    return (struct data){ p, (size_t)st.st_size };
}

static int starts(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !memcmp(s, prefix, k);
}

/* A Java exception header: "java.lang.Foo: msg", "com.x.BarError". */
static int exception_header(const char *s, size_t n)
{
    size_t i = 0;
    int dot = 0;
    while (i < n && s[i] != ':' && s[i] != ' ') {
        if (s[i] == '.')
            dot = 1;
        i++;
    }
    if (!dot || (i < n && s[i] == ' '))
        return 0;
    return (i >= 9 && !memcmp(s + i - 9, "Exception", 9)) ||
           (i >= 5 && !memcmp(s + i - 5, "Error", 5)) ||
           (i >= 9 && !memcmp(s + i - 9, "Throwable", 9));
}

static int continuation(const char *s, size_t n)
{
    return n && (s[0] == '\t' || s[0] == ' ' || starts(s, n, "Caused by:") ||
                 starts(s, n, "Suppressed:") || exception_header(s, n));
}

/* Next record at *off: sets *rec and *rn (without the final newline). */
static int next_record(const struct data *d, size_t *off, const char **rec, size_t *rn)
{
    if (*off >= d->len)
        return 0;
    const char *s = d->p + *off, *end = d->p + d->len;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    while (nl && nl + 1 < end) {
        const char *n2 = memchr(nl + 1, '\n', (size_t)(end - nl - 1));
        const char *e2 = n2 ? n2 : end;
        if (!continuation(nl + 1, (size_t)(e2 - nl - 1)))
            break;
        e = e2;
        nl = n2;
    }
    *rec = s;
    *rn = (size_t)(e - s);
    *off = (size_t)(e - d->p) + 1;
    return 1;
}

/* ---- the parse stage ----------------------------------------------------- */

struct parse_ctx {
    struct lh_parse_config cfg;
    struct lh_parser *parser;
    struct lh_parse_worker *worker;
    struct lh_masker *masker;
    struct lh_buf masked;
    unsigned long kinds[8];
    uint64_t masked_fields;
};

static void parse_init(struct parse_ctx *c, const char *patterns)
{
    struct lh_err err = {0};
    char yaml[4200];
    snprintf(yaml, sizeof(yaml), "patterns_dir: \"%s\"\n", patterns);
    memset(c, 0, sizeof(*c));
    if (lh_conf_load_string("parse", yaml, strlen(yaml), lh_parse_opts, &c->cfg, &err) < 0 ||
        lh_parser_create(&c->cfg, &c->parser, &err) < 0)
        die("parser", err.msg);
    if (lh_parse_worker_create(c->parser, &c->worker) < 0)
        die("parser", "worker");
    struct lh_mask_config mc = {0};
    if (lh_conf_load_string("mask", "{}", 2, lh_mask_opts, &mc, &err) < 0 ||
        lh_masker_create(&mc, &c->masker, &err) < 0)
        die("masker", err.msg);
    lh_conf_free(lh_mask_opts, &mc);
}

static void parse_free(struct parse_ctx *c)
{
    lh_parse_worker_destroy(c->worker);
    lh_parser_destroy(c->parser);
    lh_masker_destroy(c->masker);
    lh_conf_free(lh_parse_opts, &c->cfg);
    lh_buf_free(&c->masked);
}

/* Parses and masks one record into ev (strings from arena). */
static void parse_one(struct parse_ctx *c, const char *rec, size_t rn, int64_t received,
                      struct lh_event *ev, struct lh_arena *arena)
{
    memset(ev, 0, sizeof(*ev));
    ev->raw = lh_arena_strndup(arena, rec, rn);
    ev->received_ns = received;
    int k = lh_parse_event(c->worker, ev, arena);
    if (k < 0)
        die("parse", "out of memory");
    c->kinds[k & 7]++;
    const char **fields[2] = { &ev->message, &ev->raw };
    for (int i = 0; i < 2; i++) {
        const char *s = *fields[i];
        if (!s)
            continue;
        int m = lh_mask_apply(c->masker, s, strlen(s), &c->masked, NULL);
        if (m < 0)
            die("mask", "failed");
        if (m > 0) {
            *fields[i] = lh_arena_strndup(arena, c->masked.data, c->masked.len);
            c->masked_fields++;
        }
    }
}

static int64_t arg_start_ns = 1779494400000000000LL;   /* 2026-05-23T00:00:00Z */
/* query, bulk, osquery --end-ns: only the events before it (a sample of the
 * data set: the records are in time order); 0 = all. */
static int64_t sample_end_ns;

static int cmd_parse(const char *data_path, const char *patterns)
{
    struct data d = map_file(data_path);
    struct parse_ctx c;
    parse_init(&c, patterns);
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event ev;
    size_t off = 0, rn;
    const char *rec;
    uint64_t n = 0, bytes = 0;
    /* Warm the page cache and JIT code on the first 2000 records. */
    for (int i = 0; i < 2000 && next_record(&d, &off, &rec, &rn); i++)
        parse_one(&c, rec, rn, arg_start_ns, &ev, &arena);
    lh_arena_reset(&arena);
    memset(c.kinds, 0, sizeof(c.kinds));
    c.masked_fields = 0;
    off = 0;
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    while (next_record(&d, &off, &rec, &rn)) {
        parse_one(&c, rec, rn, arg_start_ns, &ev, &arena);
        n++;
        bytes += rn + 1;
        if ((n & 1023) == 0)
            lh_arena_reset(&arena);
    }
    double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - t0, wall = now_s(CLOCK_MONOTONIC) - w0;
    emit("indexer.parse.events_s_per_core", (double)n / cpu, "events/s per core");
    emit("indexer.parse.mb_s_per_core", (double)bytes / cpu / 1e6, "MB/s per core");
    emit("indexer.parse.wall_s", wall, "s");
    emit("indexer.parse.failed_fraction", (double)c.kinds[LH_PARSE_FAILED] / (double)n,
         "fraction");
    emit("indexer.parse.masked_fraction", (double)c.masked_fields / (double)n, "fraction");

    /* Baseline: one grok pattern tried per record. */
    struct lh_grok *g;
    struct lh_grok_matcher *m;
    struct lh_err err = {0};
    const char *one[] = { "LOGHAUL_APP" };
    if (lh_grok_create(patterns, one, 1, &g, &err) < 0 || lh_grok_matcher_create(g, &m) < 0)
        die("grok", err.msg);
    off = 0;
    uint64_t matched = 0, nb = 0;
    t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    while (next_record(&d, &off, &rec, &rn)) {
        matched += lh_grok_match(m, rec, rn) >= 0;
        nb++;
    }
    cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
    emit("baseline.grok_one_pattern.events_s_per_core", (double)nb / cpu, "events/s per core");
    fprintf(stderr, "stages: parse: %llu records, kinds json=%lu grok=%lu logfmt=%lu failed=%lu; "
                    "one-pattern baseline matched %llu\n",
            (unsigned long long)n, c.kinds[LH_PARSE_JSON], c.kinds[LH_PARSE_GROK],
            c.kinds[LH_PARSE_LOGFMT], c.kinds[LH_PARSE_FAILED], (unsigned long long)matched);
    lh_grok_matcher_destroy(m);
    lh_grok_destroy(g);
    lh_arena_free(&arena);
    parse_free(&c);
    munmap((void *)d.p, d.len);
    return 0;
}

/* ---- event ids ---------------------------------------------------------- */

/* The id of the n-th event of the data set: lh_event_id of a batch UUID per
 * `batch` events. cmd_store and cmd_bulk give every event the same id, so
 * the store and an OpenSearch index loaded from cmd_bulk's bodies hold the
 * same events under the same ids (answers are compared hit by hit). */
static void bench_event_id(char id[LH_EVENT_ID_MAX], uint64_t n, int batch)
{
    uint64_t b = n / (uint64_t)batch;
    uint8_t uuid[16];
    for (int i = 0; i < 16; i++)
        uuid[i] = (uint8_t)((b * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t)i;
    lh_event_id(id, uuid, (uint32_t)(n % (uint64_t)batch));
}

/* ---- store ingest ------------------------------------------------------ */

static uint64_t dir_bytes(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "find '%s' -type f -printf '%%s\\n' | awk '{s+=$1} END {print s+0}'",
             dir);
    FILE *p = popen(cmd, "r");
    unsigned long long v = 0;
    if (!p || fscanf(p, "%llu", &v) != 1)
        die("du", dir);
    pclose(p);
    return v;
}

static int cmd_store(const char *data_path, const char *dir, const char *patterns, int batch)
{
    struct data d = map_file(data_path);
    struct parse_ctx c;
    parse_init(&c, patterns);
    struct lh_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    lh_store_config_defaults(&cfg);
    cfg.dir = (char *)dir;
    struct lh_store *s;
    struct lh_err err = {0};
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0)
        die("store open", err.msg);
    struct lh_event *evs = calloc((size_t)batch, sizeof(*evs));
    char (*ids)[LH_EVENT_ID_MAX] = calloc((size_t)batch, LH_EVENT_ID_MAX);
    if (!evs || !ids)
        die("calloc", "out of memory");
    struct lh_arena arena = LH_ARENA_INIT;
    size_t off = 0, rn;
    const char *rec;
    uint64_t n = 0, bytes = 0, stored = 0, batches = 0;
    double cpu = 0, wall = 0;
    for (;;) {
        int k = 0;
        while (k < batch && next_record(&d, &off, &rec, &rn)) {
            parse_one(&c, rec, rn, arg_start_ns, &evs[k], &arena);
            bench_event_id(ids[k], batches * (uint64_t)batch + (uint64_t)k, batch);
            evs[k].id = ids[k];
            evs[k].tenant = "bench";
            bytes += rn + 1;
            k++;
        }
        if (!k)
            break;
        struct lh_store_append_stats st;
        double t0 = now_s(CLOCK_PROCESS_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
        if (lh_store_append(s, evs, (size_t)k, &st, &err) < 0)
            die("append", err.msg);
        cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
        wall += now_s(CLOCK_MONOTONIC) - w0;
        stored += st.stored;
        n += (uint64_t)k;
        batches++;
        lh_arena_reset(&arena);
    }
    /* What appends wrote, then the steady state: the daemons' background
     * merge (merge_interval, 30 s by default) recompresses appended
     * segments once; the queries below run on the merged store. */
    /* closing seals the segment appends were writing (the merge leaves a
     * writer's active segment alone; a daemon's is sealed at 64 MiB) */
    lh_store_close(s);
    uint64_t appended = dir_bytes(dir);
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0)
        die("store reopen", err.msg);
    struct lh_store_maint_stats ms;
    memset(&ms, 0, sizeof(ms));
    double m0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    if (lh_store_merge(s, &ms, &err) < 0)
        die("merge", err.msg);
    double mcpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - m0;
    lh_store_close(s);
    uint64_t disk = dir_bytes(dir);
    emit("store.ingest_mb_s_per_core", (double)bytes / cpu / 1e6, "MB/s per core");
    emit("store.ingest_mb_s", (double)bytes / wall / 1e6, "MB/s");
    emit("store.ingest_events_s_per_core", (double)n / cpu, "events/s per core");
    emit("store.size_ratio", (double)disk / (double)bytes, "x raw");
    emit("store.size_ratio_appended", (double)appended / (double)bytes, "x raw");
    emit("store.merge_mb_s_per_core", (double)bytes / (mcpu > 0 ? mcpu : 1e-9) / 1e6,
         "MB/s per core");
    if (stored != n)
        fprintf(stderr, "stages: store: %llu of %llu events stored\n",
                (unsigned long long)stored, (unsigned long long)n);
    fprintf(stderr, "stages: store: %llu events, %.1f MB raw, %.1f MB on disk as appended, "
            "%.1f MB after the merge (%llu segments into %llu), %llu batches\n",
            (unsigned long long)n, (double)bytes / 1e6, (double)appended / 1e6,
            (double)disk / 1e6, (unsigned long long)ms.segments_merged,
            (unsigned long long)ms.segments_written, (unsigned long long)batches);
    free(evs);
    free(ids);
    lh_arena_free(&arena);
    parse_free(&c);
    munmap((void *)d.p, d.len);
    return stored == n ? 0 : 1;
}

/* ---- queries ----------------------------------------------------------- */

/* Runs argv, stdout to a pipe; returns the wall seconds and the integer it
 * printed (grep -c's count) in *count. */
static double run_count(char *const argv[], long *count)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe", strerror(errno));
    double t0 = now_s(CLOCK_MONOTONIC);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    char buf[64] = {0};
    ssize_t r = read(pfd[0], buf, sizeof(buf) - 1);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    double t = now_s(CLOCK_MONOTONIC) - t0;
    *count = r > 0 ? atol(buf) : -1;
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(double), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

struct qitem {
    const char *term;
    long lines;
};

static size_t load_items(json_t *root, const char *key, const char *field, struct qitem *out,
                         size_t max)
{
    json_t *arr = json_object_get(root, key);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < max; i++) {
        json_t *o = json_array_get(arr, i);
        out[n].term = json_string_value(json_object_get(o, field));
        out[n].lines = (long)json_integer_value(json_object_get(o, "lines"));
        if (out[n].term)
            n++;
    }
    return n;
}

/* The manifest (owned by the caller: json_decref) and its first nq trace
 * ids and rare words (strings owned by the manifest). */
static json_t *load_manifest(const char *manifest, int nq, struct qitem *traces, size_t *nt,
                             struct qitem *rare, size_t *nr)
{
    json_error_t jerr;
    json_t *root = json_load_file(manifest, 0, &jerr);
    if (!root)
        die(manifest, jerr.text);
    *nt = load_items(root, "trace_ids", "id", traces, (size_t)nq);
    *nr = load_items(root, "rare_terms", "term", rare, (size_t)nq);
    return root;
}

/* (c): words of the generator's fixed vocabulary found in a good part of the
 * records (asked in turn, limit 100, total counted up to 10,001 as queryd
 * asks); none is part of a Java class or path name. */
static const char *const common_terms[] = { "timeout", "failed", "connection", "request",
                                            "session" };
#define NCOMMON_TERMS (sizeof(common_terms) / sizeof(common_terms[0]))
#define COMMON_TOTAL_CAP 10001
#define HOUR_NS (3600 * (int64_t)1000000000)

/* One answer line for the answers file (compared by `stages osquery`):
 * "search KIND TERM N TOTAL FIRST_ID LAST_ID". */
static void answer_search(FILE *f, const char *kind, const char *term, size_t n, uint64_t total,
                          const char *first, const char *last)
{
    if (f)
        fprintf(f, "search %s %s %zu %llu %s %s\n", kind, term, n, (unsigned long long)total,
                first && *first ? first : "-", last && *last ? last : "-");
}

/* The brute-force floor of (d): one pass of awk over the raw file counting
 * the level word of every line that has one (not checked: the formats spell
 * levels differently and access logs have none). */
static const char awk_levels[] =
    "{ if (match($0, /[\" \\[](TRACE|DEBUG|INFO|WARN|ERROR|FATAL|trace|debug|info|warn|error|fatal)[\" \\]]/))"
    " c[toupper(substr($0, RSTART + 1, RLENGTH - 2))]++ }"
    " END { for (k in c) print k, c[k] }";

/* p50 and p99 of ms[0..n) as NAME_p50_ms / NAME_p99_ms; with grep times
 * g[0..ng): BASE (their p50) and NAME_grep_ratio. */
static void emit_latency(const char *prefix, const char *kind, double *ms, size_t n,
                         const char *base, double *g, size_t ng)
{
    char name[128];
    double p50 = pct(ms, n, 0.5);
    snprintf(name, sizeof(name), "%s.query_%s_p50_ms", prefix, kind);
    emit(name, p50, "ms");
    snprintf(name, sizeof(name), "%s.query_%s_p99_ms", prefix, kind);
    emit(name, pct(ms, n, 0.99), "ms");
    if (base && ng) {
        double gp = pct(g, ng, 0.5);
        emit(base, gp, "ms");
        snprintf(name, sizeof(name), "%s.query_%s_grep_ratio", prefix, kind);
        emit(name, p50 / gp, "x grep");
    }
}

/* (c): a common word, the newest 100 hits and the total up to 10,001; the
 * first --nbase also with `grep -m 100` (the file's first 100 lines holding
 * it: grep reads from the oldest). Returns the wrong answers (a page not
 * full). */
static int query_common(struct lh_store *s, const char *data_path, int nq, int nbase, FILE *lat,
                        FILE *ans)
{
    struct lh_err err = {0};
    double *ms = calloc((size_t)nq, sizeof(double)), *g = calloc((size_t)nq, sizeof(double));
    size_t ng = 0;
    int wrong = 0;
    for (int i = 0; i < nq; i++) {
        const char *terms[1] = { common_terms[(size_t)i % NCOMMON_TERMS] };
        struct lh_store_query q = { .tenant = "bench", .terms = terms, .nterms = 1,
                                    .end_ns = sample_end_ns, .limit = 100, .want_total = 1,
                                    .total_cap = COMMON_TOTAL_CAP };
        struct lh_store_result *r;
        double t0 = now_s(CLOCK_MONOTONIC);
        if (lh_store_search(s, &q, &r, &err) < 0)
            die("search", err.msg);
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1e3;
        if (r->n != 100) {
            fprintf(stderr, "stages: query common_term %s: %zu hits, the data holds more than 100\n",
                    terms[0], r->n);
            wrong++;
        }
        if ((size_t)i < NCOMMON_TERMS)
            answer_search(ans, "common_term", terms[0], r->n,
                          r->total < COMMON_TOTAL_CAP ? r->total : COMMON_TOTAL_CAP,
                          r->n ? r->events[0].id : NULL, r->n ? r->events[r->n - 1].id : NULL);
        lh_store_result_free(r);
        if (lat)
            fprintf(lat, "store.common_term %.3f\n", ms[i]);
        if (i >= nbase)
            continue;
        long cnt;
        char *gargv[] = { "grep", "-m", "100", "-c", "-iwF", "--", (char *)terms[0],
                          (char *)data_path, NULL };
        g[ng] = run_count(gargv, &cnt) * 1e3;
        if (cnt != 100)
            fprintf(stderr, "stages: grep -m 100 %s: %ld lines\n", terms[0], cnt);
        if (lat)
            fprintf(lat, "grep.common_term %.3f\n", g[ng]);
        ng++;
    }
    emit_latency("store", "common_term", ms, (size_t)nq, "baseline.grep.common_term_p50_ms", g, ng);
    free(ms);
    free(g);
    return wrong;
}

/* (d): the first hour of the data counted by level, as queryd's aggregate
 * endpoint asks the store (a histogram of 1 h buckets for the total, then
 * the top levels); the first --nbase also with awk over the raw file.
 * Checked: the levels add up to the hour's count, which is every record
 * when the data ends within the hour. */
static int query_levels(struct lh_store *s, json_t *root, const char *data_path, int nq,
                        int nbase, FILE *lat, FILE *ans)
{
    struct lh_err err = {0};
    int64_t start = (int64_t)json_integer_value(json_object_get(root, "start_ns"));
    int64_t end = (int64_t)json_integer_value(json_object_get(root, "end_ns"));
    long records = (long)json_integer_value(json_object_get(root, "records"));
    int64_t h0 = start / HOUR_NS * HOUR_NS, h1 = h0 + HOUR_NS;
    if (sample_end_ns && sample_end_ns < h1)
        h1 = sample_end_ns, end = h1, records = -1;   /* a sample: no record count to check */
    double *ms = calloc((size_t)nq, sizeof(double)), *g = calloc((size_t)nq, sizeof(double));
    size_t ng = 0;
    int wrong = 0;
    for (int i = 0; i < nq; i++) {
        struct lh_store_query q = { .tenant = "bench", .start_ns = h0, .end_ns = h1 };
        struct lh_store_histogram *h;
        struct lh_store_top *t;
        double t0 = now_s(CLOCK_MONOTONIC);
        if (lh_store_histogram(s, &q, HOUR_NS, &h, &err) < 0 ||
            lh_store_top(s, &q, "level", 0, &t, &err) < 0)
            die("count by level", err.msg);
        ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1e3;
        uint64_t total = 0, sum = t->missing;
        for (size_t b = 0; b < h->n; b++)
            total += h->counts[b];
        for (size_t e = 0; e < t->n; e++)
            sum += t->entries[e].count;
        if (sum != total || (end < h1 && records >= 0 && (long)total != records)) {
            fprintf(stderr, "stages: count by level: levels add up to %llu, the hour holds %llu, "
                            "the data %ld records\n", (unsigned long long)sum,
                    (unsigned long long)total, records);
            wrong++;
        }
        if (i == 0 && ans) {
            fprintf(ans, "hour %lld %llu\n", (long long)h0, (unsigned long long)total);
            for (size_t e = 0; e < t->n; e++)
                fprintf(ans, "level %s %llu\n", t->entries[e].value,
                        (unsigned long long)t->entries[e].count);
        }
        lh_store_histogram_free(h);
        lh_store_top_free(t);
        if (lat)
            fprintf(lat, "store.count_by_level %.3f\n", ms[i]);
        if (i >= nbase)
            continue;
        long cnt;
        char *aargv[] = { "awk", (char *)awk_levels, (char *)data_path, NULL };
        g[ng] = run_count(aargv, &cnt) * 1e3;
        if (lat)
            fprintf(lat, "awk.count_by_level %.3f\n", g[ng]);
        ng++;
    }
    emit_latency("store", "count_by_level", ms, (size_t)nq, "baseline.awk.count_by_level_p50_ms",
                 g, ng);
    free(ms);
    free(g);
    return wrong;
}

static int cmd_query(const char *dir, const char *manifest, const char *data_path, int nq,
                     int nbase, const char *lat_path, const char *answers_path)
{
    setenv("LC_ALL", "C", 1);   /* grep's fastest mode (byte-wise, ASCII case folding) */
    struct qitem traces[200], rare[100];
    size_t nt, nr;
    json_t *root = load_manifest(manifest, nq, traces, &nt, rare, &nr);
    struct lh_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    lh_store_config_defaults(&cfg);
    cfg.dir = (char *)dir;
    struct lh_store *s;
    struct lh_err err = {0};
    if (lh_store_open(&s, &cfg, LH_STORE_READ, &err) < 0)
        die("store open", err.msg);
    FILE *lat = lat_path ? fopen(lat_path, "a") : NULL;
    char zpath[4200];
    snprintf(zpath, sizeof(zpath), "%s.zst", data_path);
    int have_zst = access(zpath, R_OK) == 0;
    int wrong = 0;
    FILE *ans = answers_path ? fopen(answers_path, "w") : NULL;
    if (answers_path && !ans)
        die(answers_path, strerror(errno));

    struct { const char *kind; struct qitem *items; size_t n; } sets[2] = {
        { "trace_id", traces, nt }, { "rare_term", rare, nr },
    };
    for (int k = 0; k < 2; k++) {
        size_t n = sets[k].n;
        if (!n)
            continue;
        double *ms = calloc(n, sizeof(double)), *g = calloc(n, sizeof(double)),
               *z = calloc(n, sizeof(double));
        size_t ng = 0;
        for (size_t i = 0; i < n; i++) {
            const char *term = sets[k].items[i].term;
            const char *terms[1] = { term };
            struct lh_store_query q = { .tenant = "bench", .terms = terms, .nterms = 1,
                                        .end_ns = sample_end_ns, .limit = 100,
                                        .want_total = 1 };
            struct lh_store_result *r;
            double t0 = now_s(CLOCK_MONOTONIC);
            if (lh_store_search(s, &q, &r, &err) < 0)
                die("search", err.msg);
            ms[i] = (now_s(CLOCK_MONOTONIC) - t0) * 1e3;
            /* the manifest counts the whole file, not a sample */
            if (!sample_end_ns && (long)r->total != sets[k].items[i].lines) {
                fprintf(stderr, "stages: query %s %s: %llu hits, the data holds %ld\n",
                        sets[k].kind, term, (unsigned long long)r->total,
                        sets[k].items[i].lines);
                wrong++;
            }
            answer_search(ans, sets[k].kind, term, r->n, r->total,
                          r->n ? r->events[0].id : NULL, r->n ? r->events[r->n - 1].id : NULL);
            lh_store_result_free(r);
            if (lat)
                fprintf(lat, "store.%s %.3f\n", sets[k].kind, ms[i]);
            if (i >= (size_t)nbase)
                continue;
            /* grep: trace ids are unique hex strings (a substring match is
             * exact; -w would miss "tr_<id>"); words are matched whole and
             * case-insensitively, as the store's full-text terms are. */
            long cnt;
            char *gargv[] = { "grep", "-c", k ? "-iwF" : "-F", "--", (char *)term,
                              (char *)data_path, NULL };
            g[ng] = run_count(gargv, &cnt) * 1e3;
            if (cnt != sets[k].items[i].lines)
                fprintf(stderr, "stages: grep %s: %ld lines, manifest says %ld\n", term, cnt,
                        sets[k].items[i].lines);
            if (have_zst) {
                char *zargv[] = { "zstdgrep", "-c", k ? "-iwF" : "-F", "--", (char *)term, zpath,
                                  NULL };
                z[ng] = run_count(zargv, &cnt) * 1e3;
            }
            if (lat) {
                fprintf(lat, "grep.%s %.3f\n", sets[k].kind, g[ng]);
                if (have_zst)
                    fprintf(lat, "zstdgrep.%s %.3f\n", sets[k].kind, z[ng]);
            }
            ng++;
        }
        char name[128];
        snprintf(name, sizeof(name), "store.query_%s_p50_ms", sets[k].kind);
        emit(name, pct(ms, n, 0.5), "ms");
        snprintf(name, sizeof(name), "store.query_%s_p99_ms", sets[k].kind);
        emit(name, pct(ms, n, 0.99), "ms");
        if (ng) {
            double gp = pct(g, ng, 0.5);
            snprintf(name, sizeof(name), "baseline.grep.%s_p50_ms", sets[k].kind);
            emit(name, gp, "ms");
            snprintf(name, sizeof(name), "store.query_%s_grep_ratio", sets[k].kind);
            emit(name, pct(ms, n, 0.5) / gp, "x grep");
        }
        if (ng && have_zst) {
            snprintf(name, sizeof(name), "baseline.zstdgrep.%s_p50_ms", sets[k].kind);
            emit(name, pct(z, ng, 0.5), "ms");
        }
        free(ms);
        free(g);
        free(z);
    }
    wrong += query_common(s, data_path, nq, nbase, lat, ans);
    wrong += query_levels(s, root, data_path, nq, nbase, lat, ans);
    emit("store.query_wrong_answers", wrong, "queries");
    if (lat)
        fclose(lat);
    if (ans && fclose(ans) != 0)
        die(answers_path, strerror(errno));
    lh_store_close(s);
    json_decref(root);
    return wrong ? 1 : 0;
}


/* ---- the archive writer ------------------------------------------------ */

#ifdef LH_BENCH_ARCHIVE
/* Parses the records in objects of `per_object` events and writes each as a
 * Parquet object and as an NDJSON+zstd object (lh/archive_format.h, level
 * 3): raw MB per CPU-second of each writer and object bytes per raw byte. */
static int cmd_archive(const char *data_path, const char *patterns, int per_object, double max_mb)
{
    struct data d = map_file(data_path);
    struct parse_ctx c;
    parse_init(&c, patterns);
    struct lh_event *evs = calloc((size_t)per_object, sizeof(*evs));
    char (*ids)[LH_EVENT_ID_MAX] = calloc((size_t)per_object, LH_EVENT_ID_MAX);
    if (!evs || !ids)
        die("calloc", "out of memory");
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_buf pq = LH_BUF_INIT, nd = LH_BUF_INIT;
    struct lh_err err = {0};
    size_t off = 0, rn;
    const char *rec;
    uint64_t bytes = 0, pq_bytes = 0, nd_bytes = 0, objects = 0;
    double pq_cpu = 0, nd_cpu = 0;
    for (;;) {
        int k = 0;
        uint64_t chunk = 0;
        uint8_t uuid[16] = { 0x61, 0x72, 0x63, 0x68, (uint8_t)objects, (uint8_t)(objects >> 8) };
        while (k < per_object && bytes + chunk < (uint64_t)(max_mb * 1e6) &&
               next_record(&d, &off, &rec, &rn)) {
            parse_one(&c, rec, rn, arg_start_ns, &evs[k], &arena);
            lh_event_id(ids[k], uuid, (uint32_t)k);
            evs[k].id = ids[k];
            evs[k].tenant = "bench";
            chunk += rn + 1;
            k++;
        }
        if (!k)
            break;
        struct lh_parquet_opts po = { .zstd_level = 3 };
        lh_buf_reset(&pq);
        lh_buf_reset(&nd);
        double t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
        if (lh_parquet_write(evs, (size_t)k, &po, &pq, &err) < 0)
            die("parquet", err.msg);
        double t1 = now_s(CLOCK_THREAD_CPUTIME_ID);
        if (lh_ndjson_write(evs, (size_t)k, 3, &nd, &err) < 0)
            die("ndjson", err.msg);
        double t2 = now_s(CLOCK_THREAD_CPUTIME_ID);
        pq_cpu += t1 - t0;
        nd_cpu += t2 - t1;
        pq_bytes += pq.len;
        nd_bytes += nd.len;
        bytes += chunk;
        objects++;
        lh_arena_reset(&arena);
    }
    emit("indexer.archive.mb_s_per_core", (double)bytes / pq_cpu / 1e6, "MB/s per core");
    emit("indexer.archive.ndjson_mb_s_per_core", (double)bytes / nd_cpu / 1e6, "MB/s per core");
    emit("archive.parquet.size_ratio", (double)pq_bytes / (double)bytes, "x raw");
    emit("archive.ndjson.size_ratio", (double)nd_bytes / (double)bytes, "x raw");
    fprintf(stderr, "stages: archive: %llu objects of up to %d events, %.1f MB raw -> Parquet %.1f MB, "
                    "NDJSON+zstd %.1f MB\n", (unsigned long long)objects, per_object,
            (double)bytes / 1e6, (double)pq_bytes / 1e6, (double)nd_bytes / 1e6);
    free(evs);
    free(ids);
    lh_buf_free(&pq);
    lh_buf_free(&nd);
    lh_arena_free(&arena);
    parse_free(&c);
    munmap((void *)d.p, d.len);
    return 0;
}
#endif

/* ---- OpenSearch bulk bodies -------------------------------------------- */

/* One field of an object, skipped when absent; *first: no comma before it. */
static void doc_field(struct lh_buf *b, int *first, const char *key, const char *val)
{
    if (!val)
        return;
    lh_buf_printf(b, "%s\"%s\":", *first ? "" : ",", key);
    lh_buf_json_str(b, val, strlen(val));
    *first = 0;
}

/* The sink's document shape (indexer/sink_opensearch.c on the ossink branch:
 * the same fields under the same names), written here until that sink is on
 * main. */
static void bulk_item(struct lh_buf *b, const char *index, const struct lh_event *ev)
{
    char ts[64];
    lh_time_format_rfc3339(ev->ts_ns, 3, ts, sizeof(ts));
    lh_buf_printf(b, "{\"create\":{\"_index\":\"%s\",\"_id\":", index);
    lh_buf_json_str(b, ev->id, strlen(ev->id));
    lh_buf_printf(b, "}}\n{\"timestamp\":\"%s\",\"level\":\"%s\"", ts, lh_level_name(ev->level));
    int top = 0, first = 1;
    doc_field(b, &top, "id", ev->id);
    doc_field(b, &top, "tenant", ev->tenant);
    doc_field(b, &top, "service", ev->service);
    doc_field(b, &top, "host", ev->host);
    doc_field(b, &top, "trace_id", ev->trace_id);
    doc_field(b, &top, "span_id", ev->span_id);
    doc_field(b, &top, "user_id", ev->user_id);
    doc_field(b, &top, "message", ev->message);
    doc_field(b, &top, "raw", ev->raw);
    doc_field(b, &top, "stream", ev->stream);
    doc_field(b, &top, "container_id", ev->container_id);
    if (ev->k8s_namespace || ev->k8s_pod || ev->k8s_container) {
        lh_buf_puts(b, ",\"k8s\":{");
        doc_field(b, &first, "namespace", ev->k8s_namespace);
        doc_field(b, &first, "pod", ev->k8s_pod);
        doc_field(b, &first, "container", ev->k8s_container);
        lh_buf_putc(b, '}');
    }
    doc_field(b, &top, "region", ev->region);
    if (ev->nmeta) {
        lh_buf_puts(b, ",\"custom_metadata\":{");
        for (size_t i = 0; i < ev->nmeta; i++) {
            if (i)
                lh_buf_putc(b, ',');
            lh_buf_json_str(b, ev->meta[i].key, strlen(ev->meta[i].key));
            lh_buf_putc(b, ':');
            lh_buf_json_str(b, ev->meta[i].value, strlen(ev->meta[i].value));
        }
        lh_buf_putc(b, '}');
    }
    lh_buf_puts(b, "}\n");
}

/* Writes DIR/body-NNNN.ndjson of up to body_mb MB each from the first max_mb
 * MB of records; prints the raw bytes and events they hold. */
static int cmd_bulk(const char *data_path, const char *dir, const char *patterns,
                    const char *index, double max_mb, double body_mb, int batch)
{
    struct data d = map_file(data_path);
    struct parse_ctx c;
    parse_init(&c, patterns);
    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_buf body = LH_BUF_INIT;
    struct lh_event ev;
    char id[LH_EVENT_ID_MAX], path[4200];
    size_t off = 0, rn;
    const char *rec;
    uint64_t n = 0, idx = 0, bytes = 0;
    int nbody = 0;
    mkdir(dir, 0755);
    for (;;) {
        int more = bytes < (uint64_t)(max_mb * 1e6) && next_record(&d, &off, &rec, &rn);
        if (more) {
            parse_one(&c, rec, rn, arg_start_ns, &ev, &arena);
            /* the id of the record's place in the file, as the store has it */
            bench_event_id(id, idx++, batch);
            if (sample_end_ns && ev.ts_ns >= sample_end_ns) {
                lh_arena_reset(&arena);
                continue;
            }
            ev.id = id;
            ev.tenant = "bench";
            bulk_item(&body, index, &ev);
            n++;
            bytes += rn + 1;
            lh_arena_reset(&arena);
        }
        if (body.len && (!more || body.len >= (size_t)(body_mb * 1e6))) {
            snprintf(path, sizeof(path), "%s/body-%04d.ndjson", dir, nbody++);
            FILE *f = fopen(path, "w");
            if (!f || fwrite(body.data, 1, body.len, f) != body.len || fclose(f) != 0)
                die(path, strerror(errno));
            lh_buf_reset(&body);
        }
        if (!more)
            break;
    }
    printf("{\"events\":%llu,\"raw_bytes\":%llu,\"bodies\":%d}\n", (unsigned long long)n,
           (unsigned long long)bytes, nbody);
    lh_buf_free(&body);
    lh_arena_free(&arena);
    parse_free(&c);
    munmap((void *)d.p, d.len);
    return 0;
}

/* ---- the same queries on OpenSearch, as queryd's backend asks them ------ */

struct answers {
    char **lines;
    size_t n;
};

static void answers_load(struct answers *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char **nl = realloc(a->lines, (a->n + 1) * sizeof(*nl));
        if (!nl || !(nl[a->n] = strdup(line)))
            die("answers", "out of memory");
        a->lines = nl;
        a->n++;
    }
    fclose(f);
}

/* The store's answer line that starts with prefix (e.g. "search rare_term
 * foo "), or NULL. */
static const char *answers_find(const struct answers *a, const char *prefix)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strncmp(a->lines[i], prefix, strlen(prefix)))
            return a->lines[i];
    return NULL;
}

static void answers_free(struct answers *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->lines[i]);
    free(a->lines);
}

/* A query as queryd parses a request's "query" object. */
static void os_parse(struct lh_query *q, const char *text, int64_t start, int64_t end)
{
    char body[600], s0[64], s1[64];
    lh_time_format_rfc3339(start, 9, s0, sizeof(s0));
    lh_time_format_rfc3339(end, 9, s1, sizeof(s1));
    snprintf(body, sizeof(body), "{%s%s%s\"time_range\":{\"start\":\"%s\",\"end\":\"%s\"}}",
             text ? "\"full_text\":\"" : "", text ? text : "", text ? "\"," : "", s0, s1);
    struct lh_query_limits lim;
    struct lh_query_error qe;
    lh_query_limits_default(&lim);
    memset(q, 0, sizeof(*q));
    if (lh_query_parse_object(body, strlen(body), "query", &lim, end, q, &qe) < 0)
        die("query", qe.message);
}

/* One full-text page through the backend: ms, and the answer checked
 * against the store's line (and the manifest count when lines >= 0).
 * Returns 1 for a wrong answer. */
static int os_search(struct lh_backend *b, const char *kind, const char *term, long lines,
                     uint64_t cap, int64_t start, int64_t end, const struct answers *ans,
                     double *ms)
{
    struct lh_query q;
    os_parse(&q, term, start, end);
    struct lh_bquery bq = { .tenant = "bench", .q = &q, .start_ns = q.start_ns,
                            .end_ns = q.end_ns, .limit = 100, .total_cap = cap };
    struct lh_bresult r;
    struct lh_err err = {0};
    memset(&r, 0, sizeof(r));
    double t0 = now_s(CLOCK_MONOTONIC);
    if (b->ops->search(b, &bq, &r, &err) < 0)
        die("opensearch search", err.msg);
    *ms = (now_s(CLOCK_MONOTONIC) - t0) * 1e3;
    int bad = 0;
    uint64_t total = r.total < cap ? r.total : cap;
    if (lines >= 0 && (long)total != lines) {
        fprintf(stderr, "stages: opensearch %s %s: %llu hits, the data holds %ld\n", kind, term,
                (unsigned long long)total, lines);
        bad = 1;
    }
    char prefix[300], mine[600];
    snprintf(prefix, sizeof(prefix), "search %s %s ", kind, term);
    snprintf(mine, sizeof(mine), "%s%zu %llu %s %s", prefix, r.n, (unsigned long long)total,
             r.n && r.events[0].id ? r.events[0].id : "-",
             r.n && r.events[r.n - 1].id ? r.events[r.n - 1].id : "-");
    const char *theirs = answers_find(ans, prefix);
    if (theirs && strcmp(theirs, mine)) {
        fprintf(stderr, "stages: opensearch answered '%s', the store '%s'\n", mine, theirs);
        bad = 1;
    }
    lh_bresult_free(&r);
    lh_query_free(&q);
    return bad;
}

/* (d) through the backend: the hour's histogram (1 bucket) and the top
 * levels, as queryd's aggregate endpoint asks; checked against the store. */
static int os_levels(struct lh_backend *b, int64_t h0, const struct answers *ans, double *ms)
{
    struct lh_query q;
    os_parse(&q, NULL, h0, h0 + HOUR_NS);
    struct lh_bquery bq = { .tenant = "bench", .q = &q, .start_ns = q.start_ns,
                            .end_ns = q.end_ns };
    struct lh_qtop top = { .field = "level", .kind = LH_QK_LEVEL, .size = 10 };
    struct lh_btop t;
    uint64_t count = 0;
    struct lh_err err = {0};
    memset(&t, 0, sizeof(t));
    double t0 = now_s(CLOCK_MONOTONIC);
    if (b->ops->histogram(b, &bq, h0, HOUR_NS, 1, &count, &err) < 0 ||
        b->ops->top(b, &bq, &top, &t, &err) < 0)
        die("opensearch count by level", err.msg);
    *ms = (now_s(CLOCK_MONOTONIC) - t0) * 1e3;
    int bad = 0;
    char line[300];
    snprintf(line, sizeof(line), "hour %lld %llu", (long long)h0, (unsigned long long)count);
    const char *theirs = answers_find(ans, "hour ");
    if (theirs && strcmp(theirs, line)) {
        fprintf(stderr, "stages: opensearch '%s', the store '%s'\n", line, theirs);
        bad = 1;
    }
    size_t nstore = 0;
    for (size_t i = 0; i < ans->n; i++)
        nstore += !strncmp(ans->lines[i], "level ", 6);
    if (ans->n && nstore != t.n) {
        fprintf(stderr, "stages: opensearch: %zu levels, the store %zu\n", t.n, nstore);
        bad = 1;
    }
    for (size_t e = 0; e < t.n && ans->n; e++) {
        snprintf(line, sizeof(line), "level %s ", t.entries[e].value);
        theirs = answers_find(ans, line);
        if (!theirs || strtoull(theirs + strlen(line), NULL, 10) != t.entries[e].count) {
            fprintf(stderr, "stages: opensearch level %s: %llu, the store: %s\n",
                    t.entries[e].value, (unsigned long long)t.entries[e].count,
                    theirs ? theirs : "none");
            bad = 1;
        }
    }
    lh_btop_free(&t);
    lh_query_free(&q);
    return bad;
}

/* (a)-(d) on an OpenSearch index loaded from cmd_bulk's bodies, through
 * queryd's OpenSearch backend (its DSL, its HTTP client, hits parsed into
 * events), the same terms and repetitions as cmd_query; answers checked
 * against the manifest and the store's answers file. */
static int cmd_osquery(const char *url, const char *prefix, const char *manifest,
                       const char *answers_path, int nq, const char *lat_path)
{
    struct qitem traces[200], rare[100];
    size_t nt, nr;
    json_t *root = load_manifest(manifest, nq, traces, &nt, rare, &nr);
    int64_t start = (int64_t)json_integer_value(json_object_get(root, "start_ns"));
    int64_t h0 = start / HOUR_NS * HOUR_NS;
    int64_t day0 = start / (24 * HOUR_NS) * (24 * HOUR_NS), day1 = day0 + 24 * HOUR_NS;
    struct answers ans;
    answers_load(&ans, answers_path);
    char yaml[1200];
    snprintf(yaml, sizeof(yaml), "urls: [\"%s\"]\nindex_prefix: \"%s\"\ntimeout: 120s\n", url,
             prefix);
    struct lh_backend_os_config cfg;
    struct lh_backend *b;
    struct lh_err err = {0};
    memset(&cfg, 0, sizeof(cfg));
    if (lh_conf_load_string("opensearch", yaml, strlen(yaml), lh_backend_os_opts, &cfg, &err) < 0 ||
        lh_backend_opensearch_open(&cfg, &b, &err) < 0)
        die("opensearch backend", err.msg);
    lh_conf_free(lh_backend_os_opts, &cfg);
    FILE *lat = lat_path ? fopen(lat_path, "a") : NULL;
    double *ms = calloc((size_t)nq + 200, sizeof(double));
    int wrong = 0;
    /* one untimed query of each kind: connections, caches of the first use */
    double warm;
    struct answers none = {0};
    if (nt)
        os_search(b, "trace_id", traces[0].term, -1, 1000000000, day0, day1, &none, &warm);
    struct { const char *kind; struct qitem *items; size_t n; } sets[2] = {
        { "trace_id", traces, nt }, { "rare_term", rare, nr },
    };
    /* all data is in day0 for the sizes bench/run generates (up to 10G at
     * 2000 records/s: 5.6 h); the store's queries have no time bound */
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sets[k].n; i++) {
            wrong += os_search(b, sets[k].kind, sets[k].items[i].term,
                               sample_end_ns ? -1 : sets[k].items[i].lines,
                               1000000000, day0, day1, &ans, &ms[i]);
            if (lat)
                fprintf(lat, "opensearch.%s %.3f\n", sets[k].kind, ms[i]);
        }
        if (sets[k].n)
            emit_latency("opensearch", sets[k].kind, ms, sets[k].n, NULL, NULL, 0);
    }
    for (int i = 0; i < nq; i++) {
        wrong += os_search(b, "common_term", common_terms[(size_t)i % NCOMMON_TERMS], -1,
                           COMMON_TOTAL_CAP, day0, day1, &ans, &ms[i]);
        if (lat)
            fprintf(lat, "opensearch.common_term %.3f\n", ms[i]);
    }
    emit_latency("opensearch", "common_term", ms, (size_t)nq, NULL, NULL, 0);
    os_levels(b, h0, &none, &warm);
    for (int i = 0; i < nq; i++) {
        wrong += os_levels(b, h0, &ans, &ms[i]);
        if (lat)
            fprintf(lat, "opensearch.count_by_level %.3f\n", ms[i]);
    }
    emit_latency("opensearch", "count_by_level", ms, (size_t)nq, NULL, NULL, 0);
    emit("opensearch.query_wrong_answers", wrong, "queries");
    fprintf(stderr, "stages: osquery: answers %s the store's (%zu lines)\n",
            ans.n ? "compared with" : "NOT compared with (no answers file)", ans.n);
    if (lat)
        fclose(lat);
    free(ms);
    answers_free(&ans);
    lh_backend_destroy(b);
    json_decref(root);
    return wrong ? 1 : 0;
}

/* ---- visibility: when probe lines become searchable -------------------- */

static volatile sig_atomic_t stop_flag;
static void on_term(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Polls the store every 100 ms for events holding the word "lhprobe" in the
 * last 10 minutes; a probe's message carries "seq=N". Appends "<seq> <ns>"
 * to FILE for every probe the first time a search returns it (ns: the wall
 * clock then, since the epoch), until SIGTERM. The writer of the probes
 * knows when each was written; the difference is the visibility latency. */
static int cmd_watch(const char *dir, const char *tenant, const char *out_path)
{
    struct lh_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    lh_store_config_defaults(&cfg);
    cfg.dir = (char *)dir;
    cfg.threads = 1;
    struct lh_store *s = NULL;
    struct lh_err err = {0};
    FILE *out = fopen(out_path, "w");
    if (!out)
        die(out_path, strerror(errno));
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    size_t cap = 1 << 16;
    uint8_t *seen = calloc(cap, 1);
    while (!stop_flag) {
        if (!s && lh_store_open(&s, &cfg, LH_STORE_READ, &err) < 0) {
            s = NULL;
            usleep(100000);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        const char *terms[1] = { "lhprobe" };
        struct lh_store_query q = { .tenant = tenant, .terms = terms, .nterms = 1,
                                    .start_ns = now_ns - 600 * (int64_t)1000000000,
                                    .limit = 1000 };
        struct lh_store_result *r;
        if (lh_store_search(s, &q, &r, &err) == 0) {
            clock_gettime(CLOCK_REALTIME, &now);
            now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
            for (size_t i = 0; i < r->n; i++) {
                const char *m = r->events[i].message ? r->events[i].message : r->events[i].raw;
                const char *a = m ? strstr(m, "seq=") : NULL;
                if (!a)
                    continue;
                size_t seq = (size_t)strtoull(a + 4, NULL, 10);
                if (seq >= cap || seen[seq])
                    continue;
                seen[seq] = 1;
                fprintf(out, "%zu %lld\n", seq, (long long)now_ns);
                fflush(out);
            }
            lh_store_result_free(r);
        }
        usleep(100000);
    }
    lh_store_close(s);
    free(seen);
    fclose(out);
    return 0;
}

/* Prints the number of events of tenant with start_ns <= ts < end_ns. */
static int cmd_count(const char *dir, const char *tenant, int64_t start_ns, int64_t end_ns)
{
    struct lh_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    lh_store_config_defaults(&cfg);
    cfg.dir = (char *)dir;
    struct lh_store *s;
    struct lh_err err = {0};
    if (lh_store_open(&s, &cfg, LH_STORE_READ, &err) < 0)
        die("store open", err.msg);
    struct lh_store_query q = { .tenant = tenant, .start_ns = start_ns, .end_ns = end_ns };
    uint64_t n = 0;
    if (lh_store_count(s, &q, &n, &err) < 0)
        die("count", err.msg);
    printf("%llu\n", (unsigned long long)n);
    lh_store_close(s);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: stages parse --data FILE --patterns DIR\n"
            "       stages store --data FILE --dir DIR --patterns DIR [--batch 5000]\n"
            "       stages query --dir DIR --manifest FILE --data FILE [--n 20] [--nbase 5] [--lat FILE]\n"
            "                    [--answers FILE]\n"
            "       stages osquery --url URL --index PREFIX --manifest FILE [--n 20] [--answers FILE]\n"
            "                    [--lat FILE]\n"
            "       stages bulk --data FILE --out DIR --index NAME [--max-mb 50] [--body-mb 5] [--batch 5000]\n"
            "       stages archive --data FILE [--batch 50000] [--max-mb M]\n"
            "       stages watch --dir DIR --tenant T --out FILE   (until SIGTERM)\n"
            "       stages count --dir DIR --tenant T [--start-ns NS] [--end-ns NS]\n"
            "       (all take --start-ns NS: reference time for timestamps without a year)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *data = NULL, *dir = NULL, *patterns = "config/patterns", *manifest = NULL,
               *lat = NULL, *out = NULL, *index = "lhbench", *answers = NULL,
               *url = NULL;
    double max_mb = 50, body_mb = 5;
    const char *tenant = "bench";
    int start_given = 0, max_mb_given = 0;
    long long end_ns = 0;
    int batch = 5000, nq = 20, nbase = 5;
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--patterns")) patterns = v;
        else if (!strcmp(a, "--manifest")) manifest = v;
        else if (!strcmp(a, "--lat")) lat = v;
        else if (!strcmp(a, "--answers")) answers = v;
        else if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--n")) nq = atoi(v);
        else if (!strcmp(a, "--nbase")) nbase = atoi(v);
        else if (!strcmp(a, "--start-ns")) arg_start_ns = atoll(v), start_given = 1;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--tenant")) tenant = v;
        else if (!strcmp(a, "--end-ns")) end_ns = atoll(v), sample_end_ns = end_ns;
        else if (!strcmp(a, "--index")) index = v;
        else if (!strcmp(a, "--max-mb")) max_mb = atof(v), max_mb_given = 1;
        else if (!strcmp(a, "--body-mb")) body_mb = atof(v);
        else usage();
    }
    if (nq < 1 || nq > 100 || batch < 1)
        usage();
    if (!strcmp(argv[1], "parse") && data)
        return cmd_parse(data, patterns);
    if (!strcmp(argv[1], "store") && data && dir)
        return cmd_store(data, dir, patterns, batch);
#ifdef LH_BENCH_ARCHIVE
    if (!strcmp(argv[1], "archive") && data)
        return cmd_archive(data, patterns, batch == 5000 ? 50000 : batch, max_mb_given ? max_mb : 1e12);
#else
    (void)max_mb_given;
#endif
    if (!strcmp(argv[1], "watch") && dir && out)
        return cmd_watch(dir, tenant, out);
    if (!strcmp(argv[1], "count") && dir)
        return cmd_count(dir, tenant, start_given ? arg_start_ns : 0, end_ns);
    if (!strcmp(argv[1], "bulk") && data && out)
        return cmd_bulk(data, out, patterns, index, max_mb, body_mb, batch);
    if (!strcmp(argv[1], "osquery") && url && manifest)
        return cmd_osquery(url, index, manifest, answers, nq, lat);
    if (!strcmp(argv[1], "query") && dir && manifest && data)
        return cmd_query(dir, manifest, data, nq, nbase, lat, answers);
    usage();
    return 2;
}
