/* queryd.c - loghaul-queryd: configuration, authentication, the search and
 * aggregate handlers with their worker-thread half, life cycle (see
 * queryd.h). */
#include "queryd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cursor.h"
#include "lh/audit.h"
#include "lh/log.h"
#include "lh/time.h"
#include "plan.h"
#include "render.h"

#define MAX_KEYS 8
#define SEARCH_CHUNK 250   /* hits fetched from the backends at a time */

/* ---- configuration ------------------------------------------------------ */

static const struct lh_opt tenant_opts[] = {
    { LH_OPT_STR, "name", NULL, offsetof(struct lh_queryd_tenant, name),
      "tenant name (the store's tenant, the <tenant> of OpenSearch indices)", LH_OPT_REQUIRED },
    { LH_OPT_STRLIST, "tokens", NULL, offsetof(struct lh_queryd_tenant, tokens),
      "bearer tokens that read this tenant's logs", LH_OPT_SECRET },
    { 0 }
};

#define COFF(f) offsetof(struct lh_queryd_cursor_config, f)
static const struct lh_opt cursor_opts[] = {
    { LH_OPT_STR, "key", NULL, COFF(key),
      "HMAC-SHA256 key signing pagination cursors, at least 16 bytes (unset: a random key "
      "per start, so cursors die with a restart)", LH_OPT_SECRET },
    { LH_OPT_STRLIST, "previous_keys", NULL, COFF(previous_keys),
      "keys whose cursors are still accepted (rotation)", LH_OPT_SECRET },
    { LH_OPT_DURATION, "ttl", "24h", COFF(ttl_ms), "how long a cursor stays valid" },
    { 0 }
};

#define LOFF(f) offsetof(struct lh_queryd_limits, f)
static const struct lh_opt limits_opts[] = {
    { LH_OPT_INT, "default_limit", "100", LOFF(default_limit), "hits per page when not asked" },
    { LH_OPT_INT, "max_limit", "1000", LOFF(max_limit), "largest pagination.limit" },
    { LH_OPT_SIZE, "max_request_bytes", "256KiB", LOFF(max_request_bytes),
      "largest request body (400 beyond)" },
    { LH_OPT_SIZE, "max_text_bytes", "8KiB", LOFF(max_text_bytes),
      "longest full_text and filter value" },
    { LH_OPT_INT, "max_terms", "64", LOFF(max_terms), "words and phrases in full_text" },
    { LH_OPT_INT, "max_filters", "64", LOFF(max_filters), "filters in a query" },
    { LH_OPT_INT, "max_values", "1000", LOFF(max_values), "values of one IN filter" },
    { LH_OPT_DURATION, "default_range", "24h", LOFF(default_range_ms),
      "time range searched when the query has no start (at most 3650d)" },
    { LH_OPT_INT, "max_buckets", "10000", LOFF(max_buckets), "histogram buckets of an aggregate" },
    { LH_OPT_DURATION, "timeout", "10s", LOFF(timeout_ms),
      "time limit of one query (503 past it)" },
    { LH_OPT_SIZE, "max_response_bytes", "32MiB", LOFF(max_response_bytes),
      "a page stops early past this size; next_cursor continues after its last hit" },
    { LH_OPT_DURATION, "slow_query", "1s", LOFF(slow_query_ms),
      "queries taking longer are logged (warn)" },
    { LH_OPT_INT, "max_concurrent", "16", LOFF(max_concurrent),
      "queries running at once; more get 503 with Retry-After" },
    { LH_OPT_INT, "total_hits_cap", "10000", LOFF(total_hits_cap),
      "total_hits is exact up to this; beyond, a lower bound (\"gte\")" },
    { 0 }
};

#define TOFF(f) offsetof(struct lh_queryd_tier, f)
static const struct lh_opt tier_opts[] = {
    { LH_OPT_STR, "name", NULL, TOFF(name), "name in answers' \"tiers\" (default: the type)" },
    { LH_OPT_ENUM, "type", "store", TOFF(type), "store, opensearch or archive", 0, NULL, 0,
      "store|opensearch|archive" },
    { LH_OPT_DURATION, "max_age", "0", TOFF(max_age_ms),
      "this tier answers for events up to this old (0: all older ones; the last tier)" },
    { LH_OPT_SECTION, "store", NULL, TOFF(store), "type store: the store directory (read only)",
      0, lh_store_opts },
    { LH_OPT_SECTION, "opensearch", NULL, TOFF(opensearch), "type opensearch: the cluster", 0,
      lh_backend_os_opts },
    { LH_OPT_SECTION, "archive", NULL, TOFF(archive),
      "type archive: the bucket or directory the indexer archives to", 0, lh_archive_opts },
    { 0 }
};

#define QOFF(f) offsetof(struct lh_queryd_config, f)
const struct lh_opt lh_queryd_opts[] = {
    LH_DAEMON_COMMON_OPTS(struct lh_queryd_config, common),
    { .type = LH_OPT_LIST, .key = "tenants", .offset = QOFF(tenants),
      .help = "tenants and the tokens that read them", .sub = tenant_opts,
      .item_size = sizeof(struct lh_queryd_tenant) },
    { .type = LH_OPT_SECTION, .key = "cursor", .offset = QOFF(cursor),
      .help = "pagination cursors", .sub = cursor_opts },
    { .type = LH_OPT_SECTION, .key = "limits", .offset = QOFF(limits),
      .help = "request and query limits", .sub = limits_opts },
    { .type = LH_OPT_SECTION, .key = "tail", .offset = QOFF(tail),
      .help = "live tail (GET /v1/logs/tail)", .sub = lh_qtail_opts },
    { .type = LH_OPT_SECTION, .key = "jobs", .offset = QOFF(jobs),
      .help = "search jobs (POST /v1/logs/search/jobs): long archive scans", .sub = lh_qjobs_opts },
    { .type = LH_OPT_LIST, .key = "tiers", .offset = QOFF(tiers),
      .help = "backends, newest data first (default: one store tier on ./var/store)",
      .sub = tier_opts, .item_size = sizeof(struct lh_queryd_tier) },
    { .type = LH_OPT_SECTION, .key = "ledger", .offset = QOFF(ledger),
      .help = "the delivery ledger (GET /v1/ledger, docs/ledger.md)", .sub = lh_qledger_opts },
    { 0 }
};

int lh_queryd_validate(const struct lh_queryd_config *cfg, struct lh_err *err)
{
    const struct lh_queryd_tenant *t = cfg->tenants.items;
    if (cfg->tenants.n == 0)
        return lh_err_set(err, LH_EINVAL, "tenants: at least one tenant is needed");
    for (size_t i = 0; i < cfg->tenants.n; i++) {
        /* copied into fixed buffers of queries: a cut name would be another tenant's */
        if (!t[i].name[0] || strlen(t[i].name) > 200)
            return lh_err_set(err, LH_EINVAL, "tenants[%zu].name: 1 to 200 bytes", i);
        if (t[i].tokens.n == 0)
            return lh_err_set(err, LH_EINVAL, "tenants[%zu] (%s): no tokens", i, t[i].name);
        for (size_t a = 0; a < t[i].tokens.n; a++) {
            if (strlen(t[i].tokens.v[a]) < 8)
                return lh_err_set(err, LH_EINVAL, "tenants[%zu] (%s): tokens must have at "
                                  "least 8 characters", i, t[i].name);
            for (size_t k = 0; k <= i; k++)
                for (size_t b = 0; b < t[k].tokens.n; b++)
                    if ((k != i || b != a) && strcmp(t[i].tokens.v[a], t[k].tokens.v[b]) == 0)
                        return lh_err_set(err, LH_EINVAL, "tenants[%zu] (%s): a token is given "
                                          "twice", i, t[i].name);
        }
    }
    if (cfg->cursor.key && strlen(cfg->cursor.key) < 16)
        return lh_err_set(err, LH_EINVAL, "cursor.key: at least 16 bytes");
    if (cfg->cursor.previous_keys.n > MAX_KEYS - 1)
        return lh_err_set(err, LH_EINVAL, "cursor.previous_keys: at most %d", MAX_KEYS - 1);
    const struct lh_queryd_limits *l = &cfg->limits;
    if (l->max_limit < 1 || l->default_limit < 1 || l->default_limit > l->max_limit)
        return lh_err_set(err, LH_EINVAL, "limits: need 1 <= default_limit <= max_limit");
    if (l->max_terms < 1 || l->max_filters < 1 || l->max_values < 1 || l->max_buckets < 1 ||
        l->timeout_ms < 1 || l->max_concurrent < 1 || l->total_hits_cap < 1 ||
        l->default_range_ms < 1)
        return lh_err_set(err, LH_EINVAL, "limits: values must be positive");
    if (l->default_range_ms > LH_QUERY_MAX_DEFAULT_RANGE_NS / LH_NS_PER_MS)
        return lh_err_set(err, LH_EINVAL, "limits.default_range: at most 3650d");
    const struct lh_queryd_tier *tr = cfg->tiers.items;
    if (cfg->tiers.n > LH_PLAN_MAX_TIERS)
        return lh_err_set(err, LH_EINVAL, "tiers: at most %d", LH_PLAN_MAX_TIERS);
    for (size_t i = 0; i < cfg->tiers.n; i++) {
        if (tr[i].max_age_ms < 0)
            return lh_err_set(err, LH_EINVAL, "tiers[%zu].max_age: negative", i);
        if (i + 1 < cfg->tiers.n && tr[i].max_age_ms == 0)
            return lh_err_set(err, LH_EINVAL, "tiers[%zu]: max_age 0 (everything) must be the "
                              "last tier", i);
        if (i > 0 && tr[i].max_age_ms && tr[i].max_age_ms <= tr[i - 1].max_age_ms)
            return lh_err_set(err, LH_EINVAL, "tiers[%zu].max_age: tiers go from newest to "
                              "oldest (max_age increasing)", i);
        if (tr[i].type == LH_TIER_STORE && (!tr[i].store.dir || !*tr[i].store.dir))
            return lh_err_set(err, LH_EINVAL, "tiers[%zu].store.dir: missing", i);
        if (tr[i].type == LH_TIER_OPENSEARCH && tr[i].opensearch.urls.n == 0)
            return lh_err_set(err, LH_EINVAL, "tiers[%zu].opensearch.urls: missing", i);
    }
    if (cfg->tail.poll_ms < 10 || cfg->tail.heartbeat_ms < 100 || cfg->tail.lookback_ms < 0 ||
        cfg->tail.max_streams < 0 || cfg->tail.max_events < 1 || cfg->tail.timeout_ms < 1 ||
        cfg->tail.max_duration_ms < 0)
        return lh_err_set(err, LH_EINVAL, "tail: poll_interval >= 10ms, heartbeat >= 100ms, "
                          "other values positive");
    return 0;
}

static int d_validate(const void *cfg, struct lh_err *err)
{
    return lh_queryd_validate(cfg, err);
}

/* ---- state -------------------------------------------------------------- */

struct metrics {
    struct lh_metrics *m;
    struct lh_counter *slow, *timeouts, *hits;
    struct lh_histogram *dur[2];
};

struct lh_queryd {
    const struct lh_queryd_config *cfg;
    struct lh_http_server *srv;
    struct lh_tier tiers[LH_PLAN_MAX_TIERS];
    size_t ntiers;
    struct lh_qtail_hub *hub;
    struct lh_qledger *ledger;       /* NULL without a store or opensearch tier */
    struct lh_qjobs *jobs;
    struct metrics mx;
    uint8_t random_key[32];          /* when cursor.key is not set */
    int64_t inflight;                /* queries and ledger reports running (atomic) */
    int stopping;
};

static const char *const endpoint_names[2] = { "search", "aggregate" };

static void count_request(struct lh_queryd *qd, const char *endpoint, int status)
{
    if (!qd->mx.m)
        return;
    char labels[96];
    snprintf(labels, sizeof(labels), "endpoint=\"%s\",code=\"%d\"", endpoint, status);
    lh_counter_add(lh_counter_get(qd->mx.m, "loghaul_queryd_requests_total",
                                  "API requests answered, by endpoint and status", labels), 1);
}

static void metrics_init(struct lh_queryd *qd, struct lh_metrics *m)
{
    struct metrics *x = &qd->mx;
    x->m = m;
    if (!m)
        return;
    x->slow = lh_counter_get(m, "loghaul_queryd_slow_queries_total",
                             "queries slower than limits.slow_query", NULL);
    x->timeouts = lh_counter_get(m, "loghaul_queryd_query_timeouts_total",
                                 "queries stopped by limits.timeout", NULL);
    x->hits = lh_counter_get(m, "loghaul_queryd_hits_returned_total", "hits sent in answers",
                             NULL);
    for (int i = 0; i < 2; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "endpoint=\"%s\"", endpoint_names[i]);
        x->dur[i] = lh_histogram_get(m, "loghaul_queryd_query_seconds",
                                     "time to answer a query", labels, lh_latency_buckets,
                                     lh_latency_nbuckets);
    }
}

/* ---- auth --------------------------------------------------------------- */

/* The tenant of the request's bearer token, or NULL with *why. */
static const char *authenticate(struct lh_queryd *qd, struct lh_http_req *req, const char **why)
{
    const char *a = lh_http_req_header(req, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0) {
        *why = "a bearer token is required (Authorization: Bearer <token>)";
        return NULL;
    }
    a += 7;
    while (*a == ' ')
        a++;
    size_t n = strlen(a);
    const struct lh_queryd_tenant *t = qd->cfg->tenants.items;
    const char *found = NULL;
    for (size_t i = 0; i < qd->cfg->tenants.n; i++)
        for (size_t k = 0; k < t[i].tokens.n; k++)
            if (strlen(t[i].tokens.v[k]) == n && CRYPTO_memcmp(t[i].tokens.v[k], a, n) == 0)
                found = t[i].name;
    if (!found)
        *why = "unknown token";
    return found;
}

/* ---- the worker half ---------------------------------------------------- */

struct lh_qreq {
    struct lh_queryd *qd;
    int aggregate;
    char tenant[256];
    struct lh_buf body;
    /* copies of the config: a reload frees the old one while workers run */
    struct lh_query_limits lim;
    uint64_t max_request;
    uint64_t max_response;
    uint64_t total_cap;
    int64_t timeout_ms, slow_ms, ttl_s;
    struct lh_buf keybuf;
    size_t keylen[MAX_KEYS];
    size_t nkeys;
    /* results */
    int status;
    char code[32];
    int retry_after;
    struct lh_buf answer;            /* the answer; a search's goes on in more[] */
    struct lh_buf more[2];           /* a search's hits, then the rest of the answer */
    int responded;                   /* the worker answered (lh_http_work_respond) */
    int counted;                     /* in the metrics (count_answer) */
    uint64_t hits;
    int timed_out;
    struct lh_qprogress *progress;   /* search jobs (jobs.c); NULL for requests */
};

static void job_free(struct lh_qreq *j)
{
    lh_buf_free(&j->body);
    lh_buf_free(&j->answer);
    lh_buf_free(&j->more[0]);
    lh_buf_free(&j->more[1]);
    OPENSSL_cleanse(j->keybuf.data, j->keybuf.len);
    lh_buf_free(&j->keybuf);
    free(j);
}

static void job_error(struct lh_qreq *j, int status, const char *code, const char *field,
                      const char *message)
{
    j->status = status;
    snprintf(j->code, sizeof(j->code), "%s", code);
    lh_buf_reset(&j->answer);
    lh_buf_free(&j->more[0]);
    lh_buf_free(&j->more[1]);
    lh_buf_printf(&j->answer, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    lh_buf_json_str(&j->answer, message, strlen(message));
    if (field) {
        lh_buf_puts(&j->answer, ",\"field\":");
        lh_buf_json_str(&j->answer, field, strlen(field));
    }
    lh_buf_puts(&j->answer, "}}");
    if (status == 503 && !j->retry_after)
        j->retry_after = 1;
}

/* A backend or planner error into the answer. */
static void job_backend_error(struct lh_qreq *j, int rc, const struct lh_err *err)
{
    if (rc == LH_EINVAL) {
        /* "<path>: message": the path is the field at fault */
        char field[160] = "";
        const char *colon = strstr(err->msg, ": ");
        if (colon && (size_t)(colon - err->msg) < sizeof(field) &&
            strncmp(err->msg, "query", 5) == 0)
            snprintf(field, sizeof(field), "%.*s", (int)(colon - err->msg), err->msg);
        job_error(j, 400, "bad_request", field, err->msg);
    } else if (rc == LH_ETIMEDOUT) {
        j->timed_out = 1;
        job_error(j, 503, "timeout", NULL,
                  "the query did not finish within the time limit; narrow the time range or "
                  "add filters");
    } else if (rc == LH_ECLOSED) {
        job_error(j, 503, "cancelled", NULL, "the query was cancelled");
    } else if (rc == LH_EUNAVAIL || rc == LH_EFULL) {
        j->retry_after = 2;
        lh_warn("query for %s: backend unavailable: %s", j->tenant, err->msg);
        job_error(j, 503, "backend_unavailable", NULL, "the search backend is unavailable; "
                  "retry later");
    } else {
        lh_error("query for %s failed: %s", j->tenant, err->msg);
        job_error(j, 503, "internal", NULL, "the query failed; retry later");
    }
}

static int tier_list(struct lh_queryd *qd, unsigned used, struct lh_buf *out)
{
    int rc = lh_buf_puts(out, "\"tiers\":[");
    int first = 1;
    for (size_t i = 0; i < qd->ntiers; i++) {
        if (!(used & (1u << i)))
            continue;
        if (!first)
            rc |= lh_buf_putc(out, ',');
        first = 0;
        rc |= lh_buf_json_str(out, qd->tiers[i].name, strlen(qd->tiers[i].name));
    }
    rc |= lh_buf_putc(out, ']');
    return rc;
}

static void fp_hex(const uint8_t fp[LH_QUERY_FP_BYTES], char out[2 * LH_QUERY_FP_BYTES + 1])
{
    for (int i = 0; i < LH_QUERY_FP_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

static void log_slow(struct lh_qreq *j, const struct lh_query *q, double ms, uint64_t total)
{
    if ((int64_t)ms < j->slow_ms)
        return;
    uint8_t fp[LH_QUERY_FP_BYTES];
    char hex[2 * LH_QUERY_FP_BYTES + 1];
    lh_query_fingerprint(q, fp);
    fp_hex(fp, hex);
    char s[LH_TIME_RFC3339_SIZE], e[LH_TIME_RFC3339_SIZE] = "open";
    lh_render_time(q->start_ns, s);
    if (q->end_ns)
        lh_render_time(q->end_ns, e);
    lh_counter_add(j->qd->mx.slow, 1);
    lh_warn("slow %s: tenant=%s took=%.0fms status=%d query=%s words=%zu phrases=%zu "
            "filters=%zu range=%s..%s hits=%llu total=%llu",
            j->aggregate ? "aggregate" : "search", j->tenant, ms, j->status, hex, q->nterms,
            q->nphrases, q->nfilters, s, e, (unsigned long long)j->hits,
            (unsigned long long)total);
}

static void work_search(struct lh_qreq *j, struct lh_query *q, int64_t t0)
{
    struct lh_queryd *qd = j->qd;
    struct lh_err err = { 0 };
    int64_t now = lh_time_now_ns();
    struct lh_store_pos after = { 0 };
    int have_after = 0;
    uint8_t fp[LH_QUERY_FP_BYTES];
    int have_fp = 0;   /* computed when a cursor is read or written */
    if (q->cursor) {
        lh_query_fingerprint(q, fp);
        have_fp = 1;
        struct lh_cursor_key keys[MAX_KEYS];
        size_t off = 0;
        for (size_t i = 0; i < j->nkeys; i++) {
            keys[i].key = (const uint8_t *)j->keybuf.data + off;
            keys[i].len = j->keylen[i];
            off += j->keylen[i];
        }
        struct lh_cursor c;
        enum lh_cursor_verdict v = lh_cursor_decode(q->cursor, j->tenant, keys, j->nkeys, fp,
                                                    now / LH_NS_PER_SEC, j->ttl_s, &c);
        if (v != LH_CURSOR_OK) {
            char msg[256];
            snprintf(msg, sizeof(msg), "pagination.cursor: %s", lh_cursor_verdict_text(v));
            job_error(j, v == LH_CURSOR_TENANT ? 403 : 400,
                      v == LH_CURSOR_TENANT ? "forbidden" : "bad_request", "pagination.cursor",
                      msg);
            return;
        }
        q->start_ns = c.start_ns;   /* the walk's window, fixed on its first page */
        q->end_ns = c.end_ns;
        after = c.pos;
        have_after = 1;
    }
    struct lh_plan_part parts[LH_PLAN_MAX_TIERS];
    size_t nparts = lh_plan(qd->tiers, qd->ntiers, q->start_ns, q->end_ns, now, parts);
    /* The page is fetched in chunks, each rendered and freed before the
     * next: memory stays bounded by a chunk of events plus the answer, and
     * the answer stops at max_response_bytes (next_cursor goes on from its
     * last hit). Only the first chunk counts the total; counting one past
     * the cap tells "exactly cap" from "more than cap". */
    struct lh_buf hits = LH_BUF_INIT;
    struct lh_store_pos pos = after;
    const struct lh_store_pos *from = have_after ? &after : NULL;
    int64_t deadline = t0 + j->timeout_ms * LH_NS_PER_MS;
    uint64_t total = 0;
    unsigned tiers_used = 0;
    size_t shown = 0;
    int more = 0, full = 0, oom = lh_buf_putc(&hits, '[');
    for (int chunk = 0; !oom && !full && shown < q->limit; chunk++) {
        size_t ask = q->limit - shown < SEARCH_CHUNK ? q->limit - shown : SEARCH_CHUNK;
        struct lh_plan_page page;
        int rc = lh_plan_search(qd->tiers, parts, nparts, j->tenant, q, ask, from,
                                chunk == 0 ? j->total_cap + 1 : 0, deadline, &page, &err);
        if (rc < 0) {
            lh_buf_free(&hits);
            job_backend_error(j, rc, &err);
            return;
        }
        if (chunk == 0)
            total = page.total;
        tiers_used |= page.tiers_used;
        size_t took = 0;
        for (size_t i = 0; i < page.n && !oom; i++) {
            size_t before = hits.len;
            if (shown)
                oom |= lh_buf_putc(&hits, ',');
            oom |= lh_render_hit(&hits, page.hits[i]);
            if (hits.len > j->max_response && shown > 0) {
                hits.len = before;
                hits.data[before] = '\0';
                full = 1;
                break;
            }
            shown++;
            took++;
            pos.ts_ns = page.hits[i]->ts_ns;
            snprintf(pos.id, sizeof(pos.id), "%s", page.hits[i]->id ? page.hits[i]->id : "");
        }
        more = full || took < page.n || page.more;
        lh_plan_page_free(&page);
        if (!more || took == 0)
            break;
        from = &pos;
    }
    oom |= lh_buf_putc(&hits, ']');
    char cursor[LH_CURSOR_TEXT_MAX + 1] = "";
    if (more && shown > 0) {
        struct lh_cursor c = { .issued_s = now / LH_NS_PER_SEC, .start_ns = q->start_ns,
                               .end_ns = q->end_ns, .pos = pos };
        if (!have_fp)
            lh_query_fingerprint(q, fp);
        memcpy(c.fingerprint, fp, sizeof(fp));
        struct lh_cursor_key key = { (const uint8_t *)j->keybuf.data, j->keylen[0] };
        if (lh_cursor_encode(&c, j->tenant, &key, cursor, sizeof(cursor)) < 0)
            cursor[0] = '\0';
    }
    int gte = total > j->total_cap;
    if (gte)
        total = j->total_cap;
    /* The answer in three parts that are sent one after the other: the hits
     * as rendered, without a copy. */
    struct lh_buf *a = &j->answer, *rest = &j->more[1];
    lh_buf_reset(a);
    oom |= lh_buf_printf(a, "{\"total_hits\":%llu,\"total_hits_relation\":\"%s\",\"next_cursor\":",
                         (unsigned long long)total, gte ? "gte" : "eq");
    oom |= cursor[0] ? lh_buf_printf(a, "\"%s\"", cursor) : lh_buf_puts(a, "null");
    oom |= lh_buf_puts(a, ",\"logs\":");
    lh_buf_free(&j->more[0]);
    j->more[0] = hits;
    lh_buf_reset(rest);
    oom |= lh_buf_putc(rest, ',');
    oom |= tier_list(qd, tiers_used, rest);
    double ms = (double)(lh_time_mono_ns() - t0) / 1e6;
    oom |= lh_buf_printf(rest, ",\"took_ms\":%.0f}", ms);
    j->hits = shown;
    if (oom) {
        job_error(j, 503, "overloaded", NULL, "out of memory");
        return;
    }
    j->status = 200;
    log_slow(j, q, ms, total);
}

static void work_aggregate(struct lh_qreq *j, struct lh_query *q, int64_t t0)
{
    struct lh_queryd *qd = j->qd;
    struct lh_err err = { 0 };
    int64_t now = lh_time_now_ns();
    int64_t iv = q->interval_ns;
    int64_t first = q->start_ns - (((q->start_ns % iv) + iv) % iv);
    size_t nb = (size_t)((q->end_ns - first + iv - 1) / iv);
    uint64_t *counts = calloc(nb ? nb : 1, sizeof(*counts));
    struct lh_btop tops[LH_QUERY_MAX_TOP];
    size_t ntops = 0;
    int64_t deadline = t0 + j->timeout_ms * LH_NS_PER_MS;
    if (!counts) {
        job_error(j, 503, "overloaded", NULL, "out of memory");
        return;
    }
    struct lh_plan_part parts[LH_PLAN_MAX_TIERS];
    size_t nparts = lh_plan(qd->tiers, qd->ntiers, q->start_ns, q->end_ns, now, parts);
    unsigned used = 0;
    for (size_t i = 0; i < nparts; i++)
        used |= 1u << parts[i].tier;
    int rc = lh_plan_histogram(qd->tiers, parts, nparts, j->tenant, q, first, iv, nb, counts,
                               deadline, &err);
    for (size_t i = 0; rc == 0 && i < q->ntop; i++) {
        rc = lh_plan_top(qd->tiers, parts, nparts, j->tenant, q, &q->top[i], deadline,
                         &tops[i], &err);
        if (rc == 0)
            ntops++;
    }
    if (rc < 0) {
        job_backend_error(j, rc, &err);
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++)
        total += counts[i];
    struct lh_buf *a = &j->answer;
    lh_buf_reset(a);
    int oom = lh_buf_printf(a, "{\"total_hits\":%llu,\"histogram\":{\"interval_ms\":%lld,"
                               "\"buckets\":[", (unsigned long long)total,
                            (long long)(iv / LH_NS_PER_MS));
    for (size_t i = 0; i < nb && !oom; i++) {
        char ts[LH_TIME_RFC3339_SIZE];
        lh_render_time(first + (int64_t)i * iv, ts);
        oom |= lh_buf_printf(a, "%s{\"start\":\"%s\",\"count\":%llu}", i ? "," : "", ts,
                             (unsigned long long)counts[i]);
    }
    oom |= lh_buf_puts(a, "]},\"top\":[");
    for (size_t i = 0; i < ntops && !oom; i++) {
        oom |= lh_buf_printf(a, "%s{\"field\":", i ? "," : "");
        oom |= lh_buf_json_str(a, q->top[i].field, strlen(q->top[i].field));
        oom |= lh_buf_puts(a, ",\"values\":[");
        for (size_t k = 0; k < tops[i].n; k++) {
            oom |= lh_buf_puts(a, k ? ",{\"value\":" : "{\"value\":");
            oom |= lh_buf_json_str(a, tops[i].entries[k].value, strlen(tops[i].entries[k].value));
            oom |= lh_buf_printf(a, ",\"count\":%llu}", (unsigned long long)tops[i].entries[k].count);
        }
        oom |= lh_buf_printf(a, "],\"other\":%llu,\"missing\":%llu}",
                             (unsigned long long)tops[i].other,
                             (unsigned long long)tops[i].missing);
    }
    oom |= lh_buf_puts(a, "],");
    oom |= tier_list(qd, used, a);
    double ms = (double)(lh_time_mono_ns() - t0) / 1e6;
    oom |= lh_buf_printf(a, ",\"took_ms\":%.0f}", ms);
    if (oom) {
        job_error(j, 503, "overloaded", NULL, "out of memory");
        goto out;
    }
    j->status = 200;
    log_slow(j, q, ms, total);
out:
    for (size_t i = 0; i < ntops; i++)
        lh_btop_free(&tops[i]);
    free(counts);
}

static void run_query(struct lh_qreq *j)
{
    int64_t t0 = lh_time_mono_ns();
    if (j->body.len > j->max_request) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body of %zu bytes is over the limit of %llu bytes",
                 j->body.len, (unsigned long long)j->max_request);
        job_error(j, 400, "bad_request", "", msg);
        return;
    }
    struct lh_query q;
    struct lh_query_error qe;
    int rc = lh_query_parse(j->body.data ? j->body.data : "", j->body.len, j->aggregate,
                            &j->lim, lh_time_now_ns(), &q, &qe);
    if (rc == LH_ENOMEM) {
        job_error(j, 503, "overloaded", NULL, "out of memory");
        return;
    }
    if (rc < 0) {
        job_error(j, 400, "bad_request", qe.field, qe.message);
        return;
    }
    q.progress = j->progress;
    if (j->aggregate)
        work_aggregate(j, &q, t0);
    else
        work_search(j, &q, t0);
    lh_query_free(&q);
}

/* The answer in one piece (j->answer). */
static void answer_join(struct lh_qreq *j)
{
    int oom = 0;
    for (int i = 0; i < 2; i++) {
        if (j->more[i].len)
            oom |= lh_buf_append(&j->answer, j->more[i].data, j->more[i].len);
        lh_buf_free(&j->more[i]);
    }
    if (oom)
        job_error(j, 503, "overloaded", NULL, "out of memory");
}

static const struct lh_http_header *answer_headers(const struct lh_qreq *j,
                                                   struct lh_http_header hdrs[2],
                                                   char retry[16])
{
    hdrs[0] = hdrs[1] = (struct lh_http_header){ NULL, NULL };
    if (j->status == 503) {
        snprintf(retry, 16, "%d", j->retry_after ? j->retry_after : 1);
        hdrs[0].name = "Retry-After";
        hdrs[0].value = retry;
    }
    return hdrs;
}

/* The answer in the metrics, once (any thread: the metrics are atomic). */
static void count_answer(struct lh_qreq *j)
{
    if (j->counted)
        return;
    j->counted = 1;
    count_request(j->qd, endpoint_names[j->aggregate], j->status);
    lh_counter_add(j->qd->mx.hits, j->hits);
    if (j->timed_out)
        lh_counter_add(j->qd->mx.timeouts, 1);
}

/* Worker thread: runs the query; a request (req) is answered from here
 * (lh_http_work_respond), done_cb only when that could not be done. */
static void work_cb(struct lh_http_req *req, void *arg)
{
    struct lh_qreq *j = arg;
    run_query(j);
    if (!req || !j->answer.len) {
        answer_join(j);
        return;
    }
    char retry[16];
    struct lh_http_header hdrs[2];
    struct lh_buf parts[3] = { j->answer, j->more[0], j->more[1] };
    count_answer(j);   /* before the client can see the answer */
    if (lh_http_work_respond(req, j->status, answer_headers(j, hdrs, retry), "application/json",
                             parts, 3) == 0) {
        /* taken; the query's slot is free as the client has its answer */
        j->answer = j->more[0] = j->more[1] = (struct lh_buf)LH_BUF_INIT;
        j->responded = 1;
        __atomic_sub_fetch(&j->qd->inflight, 1, __ATOMIC_RELAXED);
        return;
    }
    answer_join(j);
}

static void done_cb(struct lh_http_req *req, int status, void *arg)
{
    (void)status;
    struct lh_qreq *j = arg;
    struct lh_queryd *qd = j->qd;
    if (!j->responded)
        __atomic_sub_fetch(&qd->inflight, 1, __ATOMIC_RELAXED);
    count_answer(j);
    if (!j->responded) {
        char retry[16];
        struct lh_http_header hdrs[2];
        answer_join(j);
        lh_http_respond_json(req, j->status, answer_headers(j, hdrs, retry),
                             j->answer.data ? j->answer.data : "{}", j->answer.len);
    }
    job_free(j);
}

/* ---- the loop-thread half ----------------------------------------------- */

static void reject(struct lh_queryd *qd, struct lh_http_req *req, const char *endpoint,
                   int status, const char *code, const char *msg)
{
    struct lh_http_header retry[] = { { "Retry-After", "1" }, { NULL, NULL } };
    struct lh_http_header auth[] = { { "WWW-Authenticate", "Bearer realm=\"loghaul\"" },
                                     { NULL, NULL } };
    count_request(qd, endpoint, status);
    lh_http_respond_error(req, status, status == 503 ? retry : status == 401 ? auth : NULL, code,
                          "%s", msg);
}

static void query_limits(const struct lh_queryd_config *cfg, struct lh_query_limits *l)
{
    lh_query_limits_default(l);
    l->default_limit = (size_t)cfg->limits.default_limit;
    l->max_limit = (size_t)cfg->limits.max_limit;
    l->max_terms = (size_t)cfg->limits.max_terms;
    l->max_filters = (size_t)cfg->limits.max_filters;
    l->max_values = (size_t)cfg->limits.max_values;
    l->max_text_bytes = (size_t)cfg->limits.max_text_bytes;
    l->default_range_ns = cfg->limits.default_range_ms * LH_NS_PER_MS;
    l->max_buckets = (size_t)cfg->limits.max_buckets;
}

static int job_keys(struct lh_queryd *qd, struct lh_qreq *j)
{
    const struct lh_queryd_cursor_config *c = &qd->cfg->cursor;
    int rc = 0;
    if (c->key) {
        rc |= lh_buf_append(&j->keybuf, c->key, strlen(c->key));
        j->keylen[j->nkeys++] = strlen(c->key);
    } else {
        rc |= lh_buf_append(&j->keybuf, qd->random_key, sizeof(qd->random_key));
        j->keylen[j->nkeys++] = sizeof(qd->random_key);
    }
    for (size_t i = 0; i < c->previous_keys.n && j->nkeys < MAX_KEYS; i++) {
        rc |= lh_buf_append(&j->keybuf, c->previous_keys.v[i], strlen(c->previous_keys.v[i]));
        j->keylen[j->nkeys++] = strlen(c->previous_keys.v[i]);
    }
    return rc;
}

/* A request with copies of the settings it needs (loop thread). */
static struct lh_qreq *qreq_new(struct lh_queryd *qd, const char *tenant, int aggregate)
{
    struct lh_qreq *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    const struct lh_queryd_config *cfg = qd->cfg;
    j->qd = qd;
    j->aggregate = aggregate;
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    query_limits(cfg, &j->lim);
    j->max_request = cfg->limits.max_request_bytes;
    j->max_response = cfg->limits.max_response_bytes;
    j->total_cap = (uint64_t)cfg->limits.total_hits_cap;
    j->timeout_ms = cfg->limits.timeout_ms;
    j->slow_ms = cfg->limits.slow_query_ms;
    j->ttl_s = cfg->cursor.ttl_ms / 1000;
    if (job_keys(qd, j) != 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void handle_query(struct lh_http_req *req, struct lh_queryd *qd, int aggregate)
{
    const char *endpoint = endpoint_names[aggregate];
    if (qd->stopping) {
        reject(qd, req, endpoint, 503, "shutting_down", "queryd is shutting down");
        return;
    }
    const char *why;
    const char *tenant = authenticate(qd, req, &why);
    if (!tenant) {
        reject(qd, req, endpoint, 401, "unauthorized", why);
        return;
    }
    if (__atomic_load_n(&qd->inflight, __ATOMIC_RELAXED) >= qd->cfg->limits.max_concurrent) {
        reject(qd, req, endpoint, 503, "overloaded", "too many queries running; retry shortly");
        return;
    }
    struct lh_qreq *j = qreq_new(qd, tenant, aggregate);
    if (!j) {
        reject(qd, req, endpoint, 503, "overloaded", "out of memory");
        return;
    }
    lh_http_req_take_body(req, &j->body);
    if (lh_http_defer(req, work_cb, done_cb, j) < 0) {
        job_free(j);
        reject(qd, req, endpoint, 503, "overloaded", "cannot schedule the query");
        return;
    }
    __atomic_add_fetch(&qd->inflight, 1, __ATOMIC_RELAXED);
}

/* ---- what search jobs (jobs.c) use ------------------------------------- */

const char *lh_queryd_authenticate(struct lh_queryd *qd, struct lh_http_req *req,
                                   const char **why)
{
    return authenticate(qd, req, why);
}

int lh_queryd_stopping(const struct lh_queryd *qd) { return qd->stopping; }

void lh_queryd_count(struct lh_queryd *qd, const char *endpoint, int status)
{
    count_request(qd, endpoint, status);
}

void lh_queryd_reject(struct lh_queryd *qd, struct lh_http_req *req, const char *endpoint,
                      int status, const char *code, const char *msg)
{
    reject(qd, req, endpoint, status, code, msg);
}

struct lh_qreq *lh_qreq_search(struct lh_queryd *qd, const char *tenant, struct lh_buf *body,
                               int64_t timeout_ms, struct lh_qprogress *progress)
{
    struct lh_qreq *j = qreq_new(qd, tenant, 0);
    if (!j)
        return NULL;
    j->body = *body;
    *body = (struct lh_buf)LH_BUF_INIT;
    j->timeout_ms = timeout_ms;
    j->progress = progress;
    return j;
}

int lh_qreq_check(struct lh_qreq *j)
{
    if (j->body.len > j->max_request) {
        run_query(j);   /* sets the 400 */
        return j->status;
    }
    struct lh_query q;
    struct lh_query_error qe;
    int rc = lh_query_parse(j->body.data ? j->body.data : "", j->body.len, 0, &j->lim,
                            lh_time_now_ns(), &q, &qe);
    if (rc == LH_ENOMEM) {
        job_error(j, 503, "overloaded", NULL, "out of memory");
        return 503;
    }
    if (rc < 0) {
        job_error(j, 400, "bad_request", qe.field, qe.message);
        return 400;
    }
    lh_query_free(&q);
    return 0;
}

void lh_qreq_run(struct lh_qreq *j) { work_cb(NULL, j); }

int lh_qreq_status(const struct lh_qreq *j, int *retry_after)
{
    if (retry_after)
        *retry_after = j->retry_after ? j->retry_after : 1;
    return j->status;
}

const struct lh_buf *lh_qreq_answer(const struct lh_qreq *j) { return &j->answer; }

uint64_t lh_qreq_hits(const struct lh_qreq *j) { return j->hits; }

void lh_qreq_free(struct lh_qreq *j)
{
    if (j)
        job_free(j);
}

static void on_search(struct lh_http_req *req, void *arg) { handle_query(req, arg, 0); }
static void on_aggregate(struct lh_http_req *req, void *arg) { handle_query(req, arg, 1); }

/* Last-Event-ID "<ts>/<id>" of a reconnecting EventSource. */
static int parse_resume(const char *s, int64_t *ts, const char **id)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '/')
        return -1;
    *ts = v;
    *id = end + 1;
    return 0;
}

static void on_tail(struct lh_http_req *req, void *arg)
{
    struct lh_queryd *qd = arg;
    if (qd->stopping) {
        reject(qd, req, "tail", 503, "shutting_down", "queryd is shutting down");
        return;
    }
    const char *why;
    const char *tenant = authenticate(qd, req, &why);
    if (!tenant) {
        reject(qd, req, "tail", 401, "unauthorized", why);
        return;
    }
    struct lh_buf text = LH_BUF_INIT;
    int rc = lh_http_query_get(lh_http_req_query(req), "query", &text);
    if (rc == LH_ENOMEM) {
        lh_buf_free(&text);
        reject(qd, req, "tail", 503, "overloaded", "out of memory");
        return;
    }
    struct lh_query_limits lim;
    query_limits(qd->cfg, &lim);
    struct lh_query q;
    struct lh_query_error qe;
    int64_t now = lh_time_now_ns();
    rc = lh_query_parse_object(text.data ? text.data : "", text.len, "query", &lim, now, &q, &qe);
    lh_buf_free(&text);
    if (rc < 0) {
        if (rc == LH_ENOMEM) {
            reject(qd, req, "tail", 503, "overloaded", "out of memory");
            return;
        }
        count_request(qd, "tail", 400);
        struct lh_buf b = LH_BUF_INIT;
        lh_buf_puts(&b, "{\"error\":{\"code\":\"bad_request\",\"message\":");
        lh_buf_json_str(&b, qe.message, strlen(qe.message));
        lh_buf_puts(&b, ",\"field\":");
        lh_buf_json_str(&b, qe.field, strlen(qe.field));
        lh_buf_puts(&b, "}}");
        lh_http_respond_json(req, 400, NULL, b.data ? b.data : "{}", b.len);
        lh_buf_free(&b);
        return;
    }
    /* A tail follows new events: those stored after it began (a first poll
     * over the lookback window only remembers what is there, so an event
     * indexed late with a slightly older timestamp still shows), or from
     * where a reconnecting client left off; an explicit start wins. */
    int prime = !q.explicit_start;
    int64_t since = q.explicit_start ? q.start_ns
                                     : now - qd->cfg->tail.lookback_ms * LH_NS_PER_MS;
    const char *resume_id = NULL;
    const char *last = lh_http_req_header(req, "Last-Event-ID");
    int64_t lts;
    if (!q.explicit_start && last && parse_resume(last, &lts, &resume_id) == 0 &&
        lts > now - 3600 * LH_NS_PER_SEC && lts <= now + 60 * LH_NS_PER_SEC) {
        since = lts;
        prime = 0;
    }
    count_request(qd, "tail", lh_qtail_start(qd->hub, req, tenant, &q, since, resume_id, prime));
    lh_query_free(&q);
}

/* ---- GET /v1/ledger ------------------------------------------------------ */

struct ledger_job {
    struct lh_queryd *qd;
    char tenant[256];
    struct lh_buf host, file;
    int has_host, has_file;
    int64_t from, to, settle_ms, archive_settle_ms, timeout_ms;
    int status;
    struct lh_buf answer;
};

static void ledger_job_free(struct ledger_job *j)
{
    lh_buf_free(&j->host);
    lh_buf_free(&j->file);
    lh_buf_free(&j->answer);
    free(j);
}

/* A time parameter: unix seconds or RFC 3339. */
static int ledger_time(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end != s && !*end) {
        *out = v;
        return 0;
    }
    int64_t ns;
    if (lh_time_parse_rfc3339(s, strlen(s), &ns, NULL) < 0)
        return -1;
    *out = ns / LH_NS_PER_SEC;
    return 0;
}

static void ledger_work(struct lh_http_req *req, void *arg)
{
    (void)req;
    struct ledger_job *j = arg;
    struct lh_qledger_req r = {
        .tenant = j->tenant, .from = j->from, .to = j->to,
        .host = j->has_host ? (j->host.data ? j->host.data : "") : NULL,
        .file = j->has_file ? (j->file.data ? j->file.data : "") : NULL,
        .settle_ms = j->settle_ms, .archive_settle_ms = j->archive_settle_ms,
        .deadline_ns = lh_time_mono_ns() + j->timeout_ms * LH_NS_PER_MS,
    };
    struct lh_err err = { 0 };
    int rc = lh_qledger_report(j->qd->ledger, &r, &j->answer, &err);
    if (rc < 0) {
        lh_warn("ledger for %s: %s", j->tenant, err.msg);
        j->status = 503;
        lh_buf_reset(&j->answer);
        lh_buf_puts(&j->answer, "{\"error\":{\"code\":\"backend_unavailable\",\"message\":");
        lh_buf_json_str(&j->answer, err.msg, strlen(err.msg));
        lh_buf_puts(&j->answer, "}}");
        return;
    }
    j->status = 200;
}

static void ledger_done(struct lh_http_req *req, int status, void *arg)
{
    (void)status;
    struct ledger_job *j = arg;
    __atomic_sub_fetch(&j->qd->inflight, 1, __ATOMIC_RELAXED);
    count_request(j->qd, "ledger", j->status);
    struct lh_http_header hdrs[2] = { { j->status == 503 ? "Retry-After" : NULL, "2" },
                                      { NULL, NULL } };
    lh_http_respond_json(req, j->status, hdrs, j->answer.data ? j->answer.data : "{}",
                         j->answer.len);
    ledger_job_free(j);
}

static void on_ledger(struct lh_http_req *req, void *arg)
{
    struct lh_queryd *qd = arg;
    if (qd->stopping) {
        reject(qd, req, "ledger", 503, "shutting_down", "queryd is shutting down");
        return;
    }
    const char *why;
    const char *tenant = authenticate(qd, req, &why);
    if (!tenant) {
        reject(qd, req, "ledger", 401, "unauthorized", why);
        return;
    }
    if (!qd->ledger) {
        reject(qd, req, "ledger", 404, "not_found", "no store or opensearch tier: no ledger");
        return;
    }
    if (__atomic_load_n(&qd->inflight, __ATOMIC_RELAXED) >= qd->cfg->limits.max_concurrent) {
        reject(qd, req, "ledger", 503, "overloaded", "too many queries running; retry shortly");
        return;
    }
    struct ledger_job *j = calloc(1, sizeof(*j));
    if (!j) {
        reject(qd, req, "ledger", 503, "overloaded", "out of memory");
        return;
    }
    j->qd = qd;
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    j->settle_ms = j->archive_settle_ms = -1;
    j->timeout_ms = qd->cfg->limits.timeout_ms;
    int64_t now_s = lh_time_now_ns() / LH_NS_PER_SEC;
    j->from = now_s - qd->cfg->limits.default_range_ms / 1000;
    j->from -= j->from % LH_AUDIT_WINDOW_SEC;
    const char *q = lh_http_req_query(req);
    struct lh_buf v = LH_BUF_INIT;
    const char *bad = NULL;
    static const char *const names[] = { "from", "to", "settle", "archive_settle" };
    for (size_t i = 0; i < 4 && !bad; i++) {
        lh_buf_reset(&v);
        if (lh_http_query_get(q, names[i], &v) < 0)
            continue;
        const char *s = v.data ? v.data : "";
        if (i == 0 && ledger_time(s, &j->from) < 0)
            bad = "from: unix seconds or RFC 3339";
        else if (i == 1 && ledger_time(s, &j->to) < 0)
            bad = "to: unix seconds or RFC 3339";
        else if (i == 2 && (lh_conf_parse_duration_ms(s, &j->settle_ms) < 0 || j->settle_ms < 0))
            bad = "settle: a duration such as 10s or 0";
        else if (i == 3 && (lh_conf_parse_duration_ms(s, &j->archive_settle_ms) < 0 ||
                            j->archive_settle_ms < 0))
            bad = "archive_settle: a duration such as 5m or 0";
    }
    lh_buf_free(&v);
    j->has_host = lh_http_query_get(q, "host", &j->host) == 0;
    j->has_file = lh_http_query_get(q, "file", &j->file) == 0;
    if (bad) {
        ledger_job_free(j);
        reject(qd, req, "ledger", 400, "bad_request", bad);
        return;
    }
    if (lh_http_defer(req, ledger_work, ledger_done, j) < 0) {
        ledger_job_free(j);
        reject(qd, req, "ledger", 503, "overloaded", "cannot schedule the query");
        return;
    }
    __atomic_add_fetch(&qd->inflight, 1, __ATOMIC_RELAXED);
}

/* ---- life cycle --------------------------------------------------------- */

static int open_tiers(struct lh_queryd *qd, const struct lh_queryd_config *cfg,
                      struct lh_err *err)
{
    static struct lh_queryd_tier implicit;
    const struct lh_queryd_tier *t = cfg->tiers.items;
    size_t n = cfg->tiers.n;
    if (n == 0) {
        memset(&implicit, 0, sizeof(implicit));
        implicit.store.dir = "./var/store";
        t = &implicit;
        n = 1;
    }
    struct lh_err lerr = { 0 };
    if (lh_qledger_open(&cfg->ledger, t, n, &qd->ledger, &lerr) < 0)
        lh_info("no ledger: %s", lerr.msg);
    for (size_t i = 0; i < n; i++) {
        struct lh_backend *b = NULL;
        int rc;
        if (t[i].type == LH_TIER_OPENSEARCH) {
            rc = lh_backend_opensearch_open(&t[i].opensearch, &b, err);
        } else if (t[i].type == LH_TIER_ARCHIVE) {
            rc = lh_backend_archive_open(&t[i].archive, &b, err);
        } else {
            struct lh_store_config sc = t[i].store;
            sc.retention_ms = 0;      /* readers never drop or merge */
            sc.merge_interval_ms = 0;
            rc = lh_backend_store_open(&sc, &b, err);
        }
        if (rc < 0)
            return lh_err_wrap(err, "tiers[%zu]", i);
        qd->tiers[i].backend = b;
        qd->tiers[i].name = t[i].name ? t[i].name : b->ops->name;
        qd->tiers[i].max_age_ns = t[i].max_age_ms * LH_NS_PER_MS;
        qd->ntiers++;
        if (t[i].type == LH_TIER_STORE)
            lh_info("tier %s: store %s (read only)%s", qd->tiers[i].name, t[i].store.dir,
                    t[i].max_age_ms ? "" : ", all ages");
        else if (t[i].type == LH_TIER_ARCHIVE)
            lh_info("tier %s: archive (%s)", qd->tiers[i].name,
                    t[i].archive.type == LH_ARCHIVE_S3 ? "s3" : "dir");
        else
            lh_info("tier %s: opensearch %s, indices %s-<tenant>-*", qd->tiers[i].name,
                    t[i].opensearch.urls.v[0], t[i].opensearch.index_prefix);
    }
    return 0;
}

int lh_queryd_create(const struct lh_queryd_config *cfg, struct lh_http_server *srv,
                     struct lh_metrics *metrics, struct lh_queryd **out, struct lh_err *err)
{
    struct lh_queryd *qd = calloc(1, sizeof(*qd));
    if (!qd)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    qd->cfg = cfg;
    qd->srv = srv;
    metrics_init(qd, metrics);
    if (RAND_bytes(qd->random_key, sizeof(qd->random_key)) != 1) {
        free(qd);
        return lh_err_set(err, LH_ERR, "no random bytes for the cursor key");
    }
    if (!cfg->cursor.key)
        lh_warn("cursor.key is not set: cursors are signed with a random key and become "
                "invalid when queryd restarts");
    int rc = open_tiers(qd, cfg, err);
    if (rc == 0)
        rc = lh_qtail_hub_create(lh_http_server_loop(srv), qd->tiers, qd->ntiers, metrics,
                                &qd->hub, err);
    if (rc == 0) {
        lh_qtail_hub_configure(qd->hub, &cfg->tail);
        if ((rc = lh_http_server_route(srv, "POST", "/v1/logs/search", on_search, qd, err)) == 0 &&
            (rc = lh_http_server_route(srv, "POST", "/v1/logs/aggregate", on_aggregate, qd,
                                       err)) == 0 &&
            (rc = lh_http_server_route(srv, "GET", "/v1/logs/tail", on_tail, qd, err)) == 0)
            rc = lh_http_server_route(srv, "GET", "/v1/ledger", on_ledger, qd, err);
    }
    if (rc == 0)
        rc = lh_qjobs_create(qd, srv, &cfg->jobs, metrics, &qd->jobs, err);
    if (rc < 0) {
        lh_queryd_destroy(qd);
        return rc;
    }
    *out = qd;
    return 0;
}

int lh_queryd_reload(struct lh_queryd *qd, const struct lh_queryd_config *cfg,
                     struct lh_err *err)
{
    const struct lh_queryd_config *old = qd->cfg;
    if (cfg->tiers.n != old->tiers.n)
        return lh_err_set(err, LH_EINVAL, "tiers change only with a restart");
    const struct lh_queryd_tier *a = cfg->tiers.items, *b = old->tiers.items;
    for (size_t i = 0; i < cfg->tiers.n; i++)
        if (a[i].type != b[i].type || a[i].max_age_ms != b[i].max_age_ms)
            return lh_err_set(err, LH_EINVAL, "tiers change only with a restart");
    qd->cfg = cfg;
    lh_qtail_hub_configure(qd->hub, &cfg->tail);
    lh_qjobs_configure(qd->jobs, &cfg->jobs);
    lh_info("reloaded: %zu tenant(s)", cfg->tenants.n);
    return 0;
}

void lh_queryd_shutdown(struct lh_queryd *qd)
{
    if (!qd || qd->stopping)
        return;
    qd->stopping = 1;
    lh_qtail_hub_shutdown(qd->hub);
    lh_qjobs_shutdown(qd->jobs);
}

void lh_queryd_destroy(struct lh_queryd *qd)
{
    if (!qd)
        return;
    lh_qtail_hub_destroy(qd->hub);
    lh_qledger_close(qd->ledger);
    lh_qjobs_destroy(qd->jobs);
    for (size_t i = 0; i < qd->ntiers; i++)
        lh_backend_destroy(qd->tiers[i].backend);
    OPENSSL_cleanse(qd->random_key, sizeof(qd->random_key));
    free(qd);
}

int lh_queryd_ready(struct lh_queryd *qd, struct lh_buf *reason)
{
    if (!qd)
        return lh_buf_puts(reason, "starting"), -1;
    if (qd->stopping)
        return lh_buf_puts(reason, "shutting down"), -1;
    for (size_t i = 0; i < qd->ntiers; i++) {
        struct lh_err err = { 0 };
        struct lh_backend *b = qd->tiers[i].backend;
        if (b->ops->ready(b, &err) < 0)
            return lh_buf_printf(reason, "tier %s: %s", qd->tiers[i].name, err.msg), -1;
    }
    return 0;
}

/* ---- the daemon --------------------------------------------------------- */

static int d_init(struct lh_daemon *d, const void *cfg, void **state, struct lh_err *err)
{
    /* Queries, ledger reports and tail polls share libuv's pool (4 threads
     * by default): size it for max_concurrent queries plus a few, so that
     * fast queries do not queue behind slow ones. Before the pool starts
     * (its first job); an explicit UV_THREADPOOL_SIZE wins. */
    int64_t pool = ((const struct lh_queryd_config *)cfg)->limits.max_concurrent + 4;
    char n[24];
    snprintf(n, sizeof(n), "%lld", (long long)(pool > 1024 ? 1024 : pool));
    setenv("UV_THREADPOOL_SIZE", n, 0);
    struct lh_queryd *qd = NULL;
    int rc = lh_queryd_create(cfg, lh_daemon_http(d), lh_daemon_metrics(d), &qd, err);
    *state = qd;
    if (rc == 0)
        lh_info("search API for %zu tenant(s) on %zu tier(s)",
                ((const struct lh_queryd_config *)cfg)->tenants.n, qd->ntiers);
    return rc;
}

static int d_reload(struct lh_daemon *d, void *state, const void *cfg, struct lh_err *err)
{
    (void)d;
    return lh_queryd_reload(state, cfg, err);
}

static void d_shutdown(struct lh_daemon *d, void *state)
{
    (void)d;
    lh_queryd_shutdown(state);
}

static void d_destroy(void *state) { lh_queryd_destroy(state); }

static int d_ready(void *state, struct lh_buf *reason) { return lh_queryd_ready(state, reason); }

const struct lh_daemon_ops lh_queryd_ops = {
    .name = "queryd",
    .description = "the search API: search, aggregate and live tail over the hot store",
    .default_listen = "127.0.0.1:7071",
    .opts = lh_queryd_opts,
    .config_size = sizeof(struct lh_queryd_config),
    .common_offset = offsetof(struct lh_queryd_config, common),
    .validate = d_validate,
    .init = d_init,
    .reload = d_reload,
    .shutdown = d_shutdown,
    .destroy = d_destroy,
    .ready = d_ready,
};
