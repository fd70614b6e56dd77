/* ledger.c - GET /v1/ledger's report (see ledger.h). */
#include "ledger.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lh/audit.h"
#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/store.h"
#include "lh/time.h"
#include "queryd.h"

#define LOFF(f) offsetof(struct lh_qledger_config, f)
const struct lh_opt lh_qledger_opts[] = {
    { LH_OPT_STR, "dir", NULL, LOFF(dir),
      "directory of the indexer's ledger files (default <first store tier dir>/.ledger)" },
    { LH_OPT_STR, "index", NULL, LOFF(index),
      "OpenSearch index of ledger rows (default <index_prefix>.ledger of the first "
      "opensearch tier)" },
    { LH_OPT_DURATION, "settle", "10s", LOFF(settle_ms),
      "a host/file/hour with ledger rows newer than this reports its difference as pending" },
    { LH_OPT_DURATION, "archive_settle", "5m", LOFF(archive_settle_ms),
      "the same for the archive figure (objects are uploaded after the archive's rollover)" },
    { LH_OPT_ENUM, "archive", "auto", LOFF(archive),
      "report the archive figure: auto (when archived rows exist), yes or no", 0, NULL, 0,
      "auto|yes|no" },
    { 0 }
};

struct lh_qledger {
    struct lh_qledger_config cfg;
    char *dir;                   /* rows: directory, or */
    char *index;                 /* rows: OpenSearch index */
    struct lh_store *store;      /* hot: the store, or */
    char *os_url, *os_prefix;    /* hot: OpenSearch */
    char os_auth[600];
    struct lh_http_client_config ccfg;
};

void lh_qledger_close(struct lh_qledger *l)
{
    if (!l)
        return;
    lh_store_close(l->store);
    free(l->dir);
    free(l->index);
    free(l->os_url);
    free(l->os_prefix);
    free(l);
}

static void basic_auth(const char *user, const char *pass, char *out, size_t size)
{
    char raw[400], enc[540];
    int n = snprintf(raw, sizeof(raw), "%s:%s", user, pass ? pass : "");
    if (n < 0 || (size_t)n >= sizeof(raw))
        n = (int)sizeof(raw) - 1;
    EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)raw, n);
    OPENSSL_cleanse(raw, sizeof(raw));
    snprintf(out, size, "Basic %s", enc);
}

int lh_qledger_open(const struct lh_qledger_config *cfg, const struct lh_queryd_tier *tiers,
                    size_t ntiers, struct lh_qledger **out, struct lh_err *err)
{
    const struct lh_queryd_tier *hot = NULL;
    for (size_t i = 0; i < ntiers && !hot; i++)
        if (tiers[i].type == LH_TIER_STORE || tiers[i].type == LH_TIER_OPENSEARCH)
            hot = &tiers[i];
    if (!hot)
        return lh_err_set(err, LH_EINVAL, "ledger: no store or opensearch tier");
    struct lh_qledger *l = calloc(1, sizeof(*l));
    if (!l)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    l->cfg = *cfg;
    int rc = 0;
    if (hot->type == LH_TIER_STORE) {
        struct lh_store_config sc = hot->store;
        sc.retention_ms = 0;
        sc.merge_interval_ms = 0;
        rc = lh_store_open(&l->store, &sc, LH_STORE_READ, err);
        if (rc == 0) {
            struct lh_buf b = LH_BUF_INIT;
            if (cfg->dir && cfg->dir[0])
                lh_buf_puts(&b, cfg->dir);
            else
                lh_buf_printf(&b, "%s/.ledger", hot->store.dir);
            if (!(l->dir = lh_buf_steal(&b)))
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
        }
    } else {
        const struct lh_backend_os_config *o = &hot->opensearch;
        const char *u = o->urls.n ? o->urls.v[0] : "http://127.0.0.1:9200";
        size_t n = strlen(u);
        while (n && u[n - 1] == '/')
            n--;
        l->os_url = strndup(u, n);
        l->os_prefix = strdup(o->index_prefix ? o->index_prefix : "logs");
        struct lh_buf b = LH_BUF_INIT;
        if (cfg->index && cfg->index[0])
            lh_buf_puts(&b, cfg->index);
        else
            lh_buf_printf(&b, "%s.ledger", o->index_prefix ? o->index_prefix : "logs");
        l->index = lh_buf_steal(&b);
        if (o->api_key)
            snprintf(l->os_auth, sizeof(l->os_auth), "ApiKey %s", o->api_key);
        else if (o->username)
            basic_auth(o->username, o->password, l->os_auth, sizeof(l->os_auth));
        l->ccfg.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
        l->ccfg.connect_timeout_ms = o->connect_timeout_ms;
        l->ccfg.ca_file = o->ca_file;
        l->ccfg.cert_file = o->cert_file;
        l->ccfg.key_file = o->key_file;
        l->ccfg.accept_gzip = 1;
        if (!l->os_url || !l->os_prefix || !l->index)
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    }
    if (rc < 0) {
        lh_qledger_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* ---- rows from the directory ---------------------------------------------- */

static int fold_dir(struct lh_qledger *l, struct lh_audit_fold *f, struct lh_err *err)
{
    DIR *d = opendir(l->dir);
    if (!d)
        return errno == ENOENT ? 0 : lh_err_errno(err, LH_EIO, errno, "ledger: %s", l->dir);
    struct dirent *de;
    int rc = 0;
    size_t bad = 0;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && (de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 7 || strcmp(de->d_name + nl - 7, ".ndjson") != 0)
            continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", l->dir, de->d_name);
        FILE *fp = fopen(p, "re");
        if (!fp) {
            if (errno != ENOENT)
                rc = lh_err_errno(err, LH_EIO, errno, "ledger: %s", p);
            continue;
        }
        ssize_t n;
        while (rc == 0 && (n = getline(&line, &cap, fp)) > 0) {
            if (line[n - 1] != '\n')
                break;   /* a torn last line: its commit never returned */
            struct lh_err e = { 0 };
            int r = lh_audit_fold_add(f, line, (size_t)n - 1, &e);
            if (r == LH_EINVAL)
                bad++;
            else if (r < 0)
                rc = lh_err_set(err, r, "%s", e.msg);
        }
        fclose(fp);
    }
    free(line);
    closedir(d);
    if (bad)
        lh_warn("ledger: %zu unreadable row(s) in %s skipped", bad, l->dir);
    return rc;
}

/* ---- OpenSearch ------------------------------------------------------------ */

static int os_call(struct lh_qledger *l, struct lh_http_client *c, const char *method,
                   const char *path, const char *body, json_t **root, struct lh_err *err)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/%s", l->os_url, path);
    struct lh_http_header h[3] = { { "Content-Type", "application/json" },
                                   { l->os_auth[0] ? "Authorization" : NULL, l->os_auth },
                                   { NULL, NULL } };
    struct lh_http_request req = { .method = method, .url = url, .headers = h, .body = body,
                                   .body_len = body ? strlen(body) : 0 };
    struct lh_http_response resp = { 0 };
    int rc = lh_http_client_do(c, &req, &resp, err);
    if (rc < 0) {
        lh_http_response_free(&resp);
        return lh_err_set(err, LH_EUNAVAIL, "opensearch: %s", err->msg);
    }
    if (resp.status != 200) {
        rc = lh_err_set(err, LH_EUNAVAIL, "opensearch: %s %s: HTTP %ld: %.300s", method, path,
                        resp.status, resp.body.data ? resp.body.data : "");
    } else if (root) {
        json_error_t je;
        *root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
        if (!*root)
            rc = lh_err_set(err, LH_EUNAVAIL, "opensearch: answer is not JSON: %s", je.text);
    }
    lh_http_response_free(&resp);
    return rc;
}

/* The tenant's indices as the indexer names them: lower case, other bytes '_'. */
static void os_pattern(const char *prefix, const char *tenant, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "%s-", prefix), start = o;
    for (const char *t = tenant; *t && o + 4 < size && o - start < 64; t++) {
        char c = *t;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            c = '_';
        out[o++] = c;
    }
    if (o == start)
        o += (size_t)snprintf(out + o, size - o, "default");
    snprintf(out + o, size - o, "-*");
}

static int fold_os(struct lh_qledger *l, struct lh_http_client *c, const struct lh_qledger_req *r,
                   struct lh_audit_fold *f, struct lh_err *err)
{
    json_t *q = json_pack("{s:i,s:{s:{s:[{s:{s:s}},{s:{s:{s:I}}}]}}}", "size", 5000, "query",
                          "bool", "filter", "term", "tenant", r->tenant, "range", "window",
                          "gte", (json_int_t)r->from);
    if (!q)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    char *body = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    if (!body)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    char path[600];
    snprintf(path, sizeof(path), "%s/_search?scroll=1m&ignore_unavailable=true", l->index);
    json_t *root = NULL;
    int rc = os_call(l, c, "POST", path, body, &root, err);
    free(body);
    char *scroll = NULL;
    while (rc == 0) {
        const char *sid = json_string_value(json_object_get(root, "_scroll_id"));
        free(scroll);
        scroll = sid ? strdup(sid) : NULL;
        json_t *hits = json_object_get(json_object_get(root, "hits"), "hits"), *h;
        size_t i;
        json_array_foreach(hits, i, h) {
            char *s = json_dumps(json_object_get(h, "_source"), JSON_COMPACT);
            if (!s) {
                rc = lh_err_set(err, LH_ENOMEM, "out of memory");
                break;
            }
            struct lh_err e = { 0 };
            int a = lh_audit_fold_add(f, s, strlen(s), &e);
            free(s);
            if (a < 0 && a != LH_EINVAL)
                rc = lh_err_set(err, a, "%s", e.msg);
        }
        size_t got = json_array_size(hits);
        json_decref(root);
        root = NULL;
        if (rc < 0 || got == 0 || !scroll)
            break;
        json_t *sb = json_pack("{s:s,s:s}", "scroll", "1m", "scroll_id", scroll);
        char *b = sb ? json_dumps(sb, JSON_COMPACT) : NULL;
        json_decref(sb);
        if (!b) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            break;
        }
        rc = os_call(l, c, "POST", "_search/scroll", b, &root, err);
        free(b);
    }
    json_decref(root);
    if (scroll) {
        json_t *sb = json_pack("{s:s}", "scroll_id", scroll);
        char *b = sb ? json_dumps(sb, JSON_COMPACT) : NULL;
        json_decref(sb);
        struct lh_err e = { 0 };
        if (b)
            os_call(l, c, "DELETE", "_search/scroll", b, NULL, &e);
        free(b);
        free(scroll);
    }
    if (rc == LH_EUNAVAIL && strstr(err->msg, "index_not_found"))
        rc = 0;   /* no row yet */
    return rc;
}

static struct lh_audit_cell *cell_find(struct lh_audit_cell *cells, size_t n, const char *host,
                                       const char *file, int64_t window)
{
    for (size_t i = 0; i < n; i++)
        if (cells[i].window == window && strcmp(cells[i].host, host) == 0 &&
            strcmp(cells[i].file, file) == 0)
            return &cells[i];
    return NULL;
}

/* indexed per (host, file, hour of received) from a composite aggregation. */
static int count_os(struct lh_qledger *l, struct lh_http_client *c, const char *tenant,
                    struct lh_audit_cell *cells, size_t n, struct lh_err *err)
{
    if (n == 0)
        return 0;
    int64_t lo = cells[0].window, hi = cells[0].window;
    for (size_t i = 1; i < n; i++) {
        if (cells[i].window < lo)
            lo = cells[i].window;
        if (cells[i].window > hi)
            hi = cells[i].window;
    }
    char pattern[600], path[700];
    os_pattern(l->os_prefix, tenant, pattern, sizeof(pattern));
    snprintf(path, sizeof(path), "%s/_search?ignore_unavailable=true&allow_no_indices=true",
             pattern);
    json_t *after = NULL;
    int rc = 0;
    for (;;) {
        json_t *comp = json_pack(
            "{s:i,s:[{s:{s:{s:s,s:b}}},{s:{s:{s:s,s:b}}},{s:{s:{s:s,s:s}}}]}", "size", 1000,
            "sources", "h", "terms", "field", "host", "missing_bucket", 1, "f", "terms", "field",
            "file", "missing_bucket", 1, "w", "date_histogram", "field", "received",
            "fixed_interval", "1h");
        if (comp && after)
            json_object_set(comp, "after", after);
        json_t *q = comp ? json_pack("{s:i,s:b,s:{s:{s:{s:I,s:I,s:s}}},s:{s:{s:o}}}", "size", 0,
                                     "track_total_hits", 0, "query", "range", "received", "gte",
                                     (json_int_t)lo * 1000,
                                     "lt", (json_int_t)(hi + LH_AUDIT_WINDOW_SEC) * 1000,
                                     "format", "epoch_millis", "aggs", "c", "composite", comp)
                         : NULL;
        char *body = q ? json_dumps(q, JSON_COMPACT) : NULL;
        json_decref(q);
        if (!body) {
            rc = lh_err_set(err, LH_ENOMEM, "out of memory");
            break;
        }
        json_t *root = NULL;
        rc = os_call(l, c, "POST", path, body, &root, err);
        free(body);
        if (rc < 0)
            break;
        json_t *agg = json_object_get(json_object_get(root, "aggregations"), "c");
        json_t *buckets = json_object_get(agg, "buckets"), *b;
        size_t i;
        json_array_foreach(buckets, i, b) {
            json_t *key = json_object_get(b, "key");
            const char *h = json_string_value(json_object_get(key, "h"));
            const char *fl = json_string_value(json_object_get(key, "f"));
            int64_t w = (int64_t)json_integer_value(json_object_get(key, "w")) / 1000;
            struct lh_audit_cell *cell = cell_find(cells, n, h ? h : "", fl ? fl : "", w);
            if (cell)
                cell->indexed += (uint64_t)json_integer_value(json_object_get(b, "doc_count"));
        }
        json_decref(after);
        after = json_object_get(agg, "after_key");
        json_incref(after);
        size_t nb = json_array_size(buckets);
        json_decref(root);
        if (!after || nb == 0)
            break;
    }
    json_decref(after);
    return rc;
}

/* ---- the store --------------------------------------------------------------- */

static int count_store(struct lh_qledger *l, const char *tenant, struct lh_audit_cell *cells,
                       size_t n, int64_t deadline_ns, struct lh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int done = 0;   /* counted with the first cell of its host and window */
        for (size_t k = 0; k < i && !done; k++)
            done = cells[k].window == cells[i].window && strcmp(cells[k].host, cells[i].host) == 0;
        if (done)
            continue;
        char ge[32], lt[32];
        snprintf(ge, sizeof(ge), "%lld", (long long)cells[i].window * 1000000000LL);
        snprintf(lt, sizeof(lt), "%lld",
                 (long long)(cells[i].window + LH_AUDIT_WINDOW_SEC) * 1000000000LL);
        struct lh_store_pred preds[3] = {
            { .field = "host", .op = cells[i].host[0] ? LH_STORE_EQ : LH_STORE_NOT_EXISTS,
              .value = cells[i].host },
            { .field = "received", .op = LH_STORE_GE, .value = ge },
            { .field = "received", .op = LH_STORE_LT, .value = lt },
        };
        struct lh_store_query q = { .tenant = tenant, .preds = preds, .npreds = 3,
                                    .deadline_ns = deadline_ns };
        struct lh_store_top *top = NULL;
        int rc = lh_store_top(l->store, &q, "file", 0, &top, err);
        if (rc < 0)
            return rc;
        for (size_t k = i; k < n; k++) {
            struct lh_audit_cell *c = &cells[k];
            if (c->window != cells[i].window || strcmp(c->host, cells[i].host) != 0)
                continue;
            if (!c->file[0])
                c->indexed += top->missing;
            for (size_t e = 0; e < top->n; e++)
                if (strcmp(top->entries[e].value, c->file) == 0)
                    c->indexed += top->entries[e].count;
        }
        lh_store_top_free(top);
    }
    return 0;
}

/* ---- the report --------------------------------------------------------------- */

int lh_qledger_report(struct lh_qledger *l, const struct lh_qledger_req *r, struct lh_buf *out,
                      struct lh_err *err)
{
    struct lh_audit_filter flt = { .tenant = r->tenant, .from = r->from, .to = r->to,
                                   .host = r->host, .file = r->file };
    struct lh_audit_fold *f = NULL;
    int rc = lh_audit_fold_create(&flt, &f, err);
    if (rc < 0)
        return rc;
    int64_t settle = r->settle_ms >= 0 ? r->settle_ms : l->cfg.settle_ms;
    struct lh_http_client *c = NULL;
    if (l->os_url) {
        rc = lh_http_client_create(&l->ccfg, &c, err);
        if (rc == 0 && settle == 0) {
            /* what the indexer wrote becomes searchable now */
            char path[1300], pattern[600];
            os_pattern(l->os_prefix, r->tenant, pattern, sizeof(pattern));
            snprintf(path, sizeof(path), "%s,%s/_refresh?ignore_unavailable=true&"
                     "allow_no_indices=true", pattern, l->index);
            rc = os_call(l, c, "POST", path, NULL, NULL, err);
        }
    }
    if (rc == 0)
        rc = l->dir ? fold_dir(l, f, err) : fold_os(l, c, r, f, err);
    size_t n = 0;
    struct lh_audit_cell *cells = NULL;
    if (rc == 0 && !(cells = lh_audit_fold_cells(f, &n)))
        rc = lh_err_set(err, LH_ENOMEM, "out of memory");
    if (rc == 0)
        rc = l->store ? count_store(l, r->tenant, cells, n, r->deadline_ns, err)
                      : count_os(l, c, r->tenant, cells, n, err);
    if (rc == 0) {
        int archive = l->cfg.archive == LH_QLEDGER_ARCHIVE_YES;
        for (size_t i = 0; !archive && l->cfg.archive == LH_QLEDGER_ARCHIVE_AUTO && i < n; i++)
            archive = cells[i].archived > 0;
        struct lh_audit_opts o = {
            .now_ns = lh_time_now_ns(), .settle_ns = settle * LH_NS_PER_MS, .archive = archive,
            .archive_settle_ns = (r->archive_settle_ms >= 0 ? r->archive_settle_ms
                                                            : l->cfg.archive_settle_ms) *
                                 LH_NS_PER_MS };
        int ok = lh_audit_report_json(f, &o, out);
        if (ok < 0)
            rc = lh_err_set(err, ok, "out of memory");
    }
    lh_http_client_destroy(c);
    lh_audit_fold_destroy(f);
    return rc;
}
