/* store_testlib.h - helpers of the store's unit tests: a seeded generator of
 * varied events and an independent brute-force evaluator of store queries
 * (tokens compared as lists, not searched with memmem as the store does). */
#ifndef STORE_TESTLIB_H
#define STORE_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lh/arena.h"
#include "lh/event.h"
#include "lh/store.h"

#define TDAY 86400000000000ll
#define TBASE (20000 * TDAY)   /* 2024-10-04 */

struct tgen {
    uint64_t s;
    struct lh_arena *a;
    int nbatch;
    uint8_t batch[16];
    uint32_t index;
};

static inline uint64_t tg_next(struct tgen *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return g->s;
}

static inline uint64_t tg_below(struct tgen *g, uint64_t n)
{
    return n ? tg_next(g) % n : 0;
}

static const char *const tg_words[] = {
    "alpha", "beta", "Gamma", "delta", "timeout", "error", "connect", "refused", "user",
    "login", "payment", "failed", "retry", "cache", "miss", "db", "query", "slow", "ok",
    "done", "TIMEOUT", "Payment", "naïve", "x",
};
#define TG_NWORDS (sizeof(tg_words) / sizeof(tg_words[0]))
static const char *const tg_seps[] = { " ", ", ", ": ", "-", "_", "/", "  ", "=" };
static const char *const tg_services[] = { "api", "db", "web", "auth", "payment-service" };
static const char *const tg_hosts[] = { "host-1", "host-2", "web01.dc1", "db02.dc1", "i-09ab" };
static const char *const tg_keys[] = { "k1", "k2", "region_hint", "duration_ms" };

static inline char *tg_text(struct tgen *g, int minw, int maxw)
{
    char buf[512];
    size_t o = 0;
    int n = minw + (int)tg_below(g, (uint64_t)(maxw - minw + 1));
    for (int i = 0; i < n; i++) {
        if (i)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", tg_seps[tg_below(g, 8)]);
        if (tg_below(g, 6) == 0)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%u", (unsigned)tg_below(g, 50));
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", tg_words[tg_below(g, TG_NWORDS)]);
        if (o > 400)
            break;
    }
    return lh_arena_strdup(g->a, buf);
}

static inline char *tg_hex(struct tgen *g, int n)
{
    char buf[65];
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < n; i++)
        buf[i] = hx[tg_below(g, 16)];
    buf[n] = 0;
    return lh_arena_strdup(g->a, buf);
}

/* A new batch uuid for the following ids. */
static inline void tg_new_batch(struct tgen *g)
{
    for (int i = 0; i < 16; i++)
        g->batch[i] = (uint8_t)tg_below(g, 256);
    g->index = 0;
}

static inline char *tg_id(struct tgen *g)
{
    char buf[64];
    if (tg_below(g, 10) == 0) {
        snprintf(buf, sizeof(buf), "custom-%llx", (unsigned long long)tg_next(g));
    } else {
        static const char hx[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            buf[2 * i] = hx[g->batch[i] >> 4];
            buf[2 * i + 1] = hx[g->batch[i] & 15];
        }
        snprintf(buf + 32, sizeof(buf) - 32, "-%u", g->index++);
    }
    return lh_arena_strdup(g->a, buf);
}

/* Fills ev with a random event in [base, base + span). */
static inline void tg_event(struct tgen *g, struct lh_event *ev, const char *tenant, int64_t base,
                            int64_t span)
{
    memset(ev, 0, sizeof(*ev));
    /* coarse timestamps so that ties happen */
    ev->ts_ns = base + (int64_t)tg_below(g, (uint64_t)(span / 1000000)) * 1000000;
    ev->received_ns = tg_below(g, 4) ? ev->ts_ns + (int64_t)tg_below(g, 5000000) : 0;
    ev->id = tg_id(g);
    ev->tenant = tenant;
    ev->service = tg_below(g, 10) ? tg_services[tg_below(g, 5)] : NULL;
    ev->level = (enum lh_level)tg_below(g, LH_LEVEL_COUNT);
    ev->host = tg_below(g, 8) ? tg_hosts[tg_below(g, 5)] : NULL;
    ev->trace_id = tg_below(g, 3) ? tg_hex(g, tg_below(g, 2) ? 32 : 2) : NULL;
    ev->span_id = tg_below(g, 2) ? tg_hex(g, 16) : NULL;
    char ub[32];
    snprintf(ub, sizeof(ub), "usr_%u", (unsigned)tg_below(g, 30));
    ev->user_id = tg_below(g, 2) ? lh_arena_strdup(g->a, ub) : NULL;
    ev->message = tg_below(g, 20) ? tg_text(g, 1, 10) : NULL;
    ev->stream = tg_below(g, 2) ? "stdout" : "stderr";
    ev->container_id = tg_below(g, 3) ? tg_hex(g, 8) : NULL;
    ev->k8s_namespace = tg_below(g, 2) ? "prod" : NULL;
    ev->k8s_pod = tg_below(g, 2) ? tg_hex(g, 5) : NULL;
    ev->k8s_container = tg_below(g, 4) ? "app" : NULL;
    ev->region = tg_below(g, 2) ? "eu-west-1" : NULL;
    ev->file = tg_below(g, 5) ? NULL : "/var/log/app.log";
    if (tg_below(g, 6)) {
        char buf[1200];
        const char *lvl = tg_below(g, 2) ? "ERROR" : "info";
        switch (tg_below(g, 4)) {
        case 0:
            snprintf(buf, sizeof(buf), "2024-10-04 12:00:00 [%s] %s %s %s - %s",
                     ev->service ? ev->service : "-", lvl, ev->trace_id ? ev->trace_id : "-",
                     ev->user_id ? ev->user_id : "-", ev->message ? ev->message : "");
            break;
        case 1:
            snprintf(buf, sizeof(buf), "{\"msg\":\"%s\",\"host\":\"%s\"}",
                     ev->message ? ev->message : "", ev->host ? ev->host : "");
            break;
        case 2:
            snprintf(buf, sizeof(buf), "pre\x01%sfix%s\x01", ev->message ? ev->message : "x",
                     ev->span_id ? ev->span_id : "");
            break;
        default: {
            char *t = tg_text(g, 1, 6);
            snprintf(buf, sizeof(buf), "%s", t);
            break;
        }
        }
        ev->raw = lh_arena_strdup(g->a, buf);
    }
    size_t nm = tg_below(g, 4);
    if (nm) {
        ev->meta = lh_arena_alloc(g->a, nm * sizeof(*ev->meta));
        size_t k = 0;
        for (size_t i = 0; i < nm; i++) {
            const char *key = tg_keys[tg_below(g, 4)];
            int dup = 0;
            for (size_t j = 0; j < k; j++)
                dup |= strcmp(ev->meta[j].key, key) == 0;
            if (dup)
                continue;
            ev->meta[k].key = key;
            if (strcmp(key, "duration_ms") == 0) {
                char b[32];
                snprintf(b, sizeof(b), "%u", (unsigned)tg_below(g, 1000));
                ev->meta[k].value = lh_arena_strdup(g->a, b);
            } else {
                ev->meta[k].value = tg_text(g, 1, 2);
            }
            k++;
        }
        ev->nmeta = k;
    }
}

/* ---- brute-force reference ---------------------------------------------- */

static inline int ref_tokch(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Splits s into lower-cased tokens (malloc'd array of malloc'd strings). */
static inline size_t ref_tokens(const char *s, char ***out)
{
    size_t n = 0, cap = 8;
    char **v = malloc(cap * sizeof(*v));
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        while (*p && !ref_tokch(*p))
            p++;
        if (!*p)
            break;
        const unsigned char *st = p;
        while (*p && ref_tokch(*p))
            p++;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        char *t = malloc((size_t)(p - st) + 1);
        for (size_t i = 0; i < (size_t)(p - st); i++)
            t[i] = (char)((st[i] >= 'A' && st[i] <= 'Z') ? st[i] + 32 : st[i]);
        t[p - st] = 0;
        v[n++] = t;
    }
    *out = v;
    return n;
}

static inline void ref_free_tokens(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static inline int ref_field_has(const char *field, const char *term)
{
    if (!field)
        return 0;
    char **ft, **tt;
    size_t nf = ref_tokens(field, &ft), nt = ref_tokens(term, &tt);
    int found = 0;
    if (nt == 0)
        found = 1;
    for (size_t i = 0; !found && i + nt <= nf; i++) {
        size_t k = 0;
        while (k < nt && strcmp(ft[i + k], tt[k]) == 0)
            k++;
        found = k == nt;
    }
    ref_free_tokens(ft, nf);
    ref_free_tokens(tt, nt);
    return found;
}

/* Optional cache of the reference's field tokens (the property test sets
 * it up, as tokenizing every field for every query is slow under ASan). */
struct ref_toks {
    const struct lh_event *ev;
    size_t nf;
    char **t[16];
    size_t n[16];
};
static struct ref_toks *ref_cache;
static size_t ref_ncache;

static inline int ref_toks_have(char **ft, size_t nf, char **tt, size_t nt)
{
    if (nt == 0)
        return 1;
    for (size_t i = 0; i + nt <= nf; i++) {
        size_t k = 0;
        while (k < nt && strcmp(ft[i + k], tt[k]) == 0)
            k++;
        if (k == nt)
            return 1;
    }
    return 0;
}

static inline void ref_cache_build(const struct lh_event *evs, size_t n)
{
    ref_cache = calloc(n, sizeof(*ref_cache));
    ref_ncache = n;
    for (size_t i = 0; i < n; i++) {
        const struct lh_event *ev = &evs[i];
        struct ref_toks *c = &ref_cache[i];
        const char *f[16] = { ev->message, ev->raw, ev->trace_id, ev->user_id, ev->host };
        size_t nf = 5;
        for (size_t k = 0; k < ev->nmeta && nf < 16; k++)
            f[nf++] = ev->meta[k].value;
        c->ev = ev;
        c->nf = nf;
        for (size_t k = 0; k < nf; k++)
            c->n[k] = f[k] ? ref_tokens(f[k], &c->t[k]) : 0;
    }
}

static inline void ref_cache_free(void)
{
    for (size_t i = 0; i < ref_ncache; i++)
        for (size_t k = 0; k < ref_cache[i].nf; k++)
            if (ref_cache[i].t[k])
                ref_free_tokens(ref_cache[i].t[k], ref_cache[i].n[k]);
    free(ref_cache);
    ref_cache = NULL;
    ref_ncache = 0;
}

static inline int ref_event_has(const struct lh_event *ev, const char *term)
{
    if (ref_cache && ev >= ref_cache[0].ev && ev < ref_cache[0].ev + ref_ncache) {
        const struct ref_toks *c = &ref_cache[ev - ref_cache[0].ev];
        char **tt;
        size_t nt = ref_tokens(term, &tt);
        int found = 0;
        for (size_t k = 0; k < c->nf && !found; k++)
            found = c->t[k] && ref_toks_have(c->t[k], c->n[k], tt, nt);
        if (nt == 0)
            found = 1;
        ref_free_tokens(tt, nt);
        return found;
    }
    if (ref_field_has(ev->message, term) || ref_field_has(ev->raw, term) ||
        ref_field_has(ev->trace_id, term) || ref_field_has(ev->user_id, term) ||
        ref_field_has(ev->host, term))
        return 1;
    for (size_t i = 0; i < ev->nmeta; i++)
        if (ref_field_has(ev->meta[i].value, term))
            return 1;
    return 0;
}

static inline int ref_level(const char *s)
{
    static const char *const n[] = { "UNKNOWN", "TRACE", "DEBUG", "INFO", "WARN", "ERROR",
                                     "FATAL" };
    for (int i = 0; i < 7; i++)
        if (strcasecmp(s, n[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return 4;
    return -1;
}

static inline const char *ref_field(const struct lh_event *ev, const char *f, char *buf)
{
    if (strncmp(f, "metadata.", 9) == 0) {
        for (size_t i = 0; i < ev->nmeta; i++)
            if (strcmp(ev->meta[i].key, f + 9) == 0)
                return ev->meta[i].value;
        return NULL;
    }
    if (!strcmp(f, "id")) return ev->id;
    if (!strcmp(f, "service")) return ev->service;
    if (!strcmp(f, "host")) return ev->host;
    if (!strcmp(f, "trace_id")) return ev->trace_id;
    if (!strcmp(f, "span_id")) return ev->span_id;
    if (!strcmp(f, "user_id")) return ev->user_id;
    if (!strcmp(f, "message")) return ev->message;
    if (!strcmp(f, "stream")) return ev->stream;
    if (!strcmp(f, "container_id")) return ev->container_id;
    if (!strcmp(f, "k8s.namespace")) return ev->k8s_namespace;
    if (!strcmp(f, "k8s.pod")) return ev->k8s_pod;
    if (!strcmp(f, "k8s.container")) return ev->k8s_container;
    if (!strcmp(f, "region")) return ev->region;
    if (!strcmp(f, "file")) return ev->file;
    if (!strcmp(f, "raw")) return ev->raw;
    if (!strcmp(f, "timestamp")) {
        snprintf(buf, 32, "%lld", (long long)ev->ts_ns);
        return buf;
    }
    if (!strcmp(f, "received")) {
        if (!ev->received_ns)
            return NULL;
        snprintf(buf, 32, "%lld", (long long)ev->received_ns);
        return buf;
    }
    if (!strcmp(f, "level")) {
        static const char *const n[] = { "UNKNOWN", "TRACE", "DEBUG", "INFO", "WARN", "ERROR",
                                         "FATAL" };
        return n[ev->level];
    }
    return NULL;
}

static inline int ref_num(const char *s, double *v)
{
    char *end;
    if (!s || !*s)
        return -1;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

static inline int ref_pred(const struct lh_event *ev, const struct lh_store_pred *p)
{
    char buf[32];
    const char *v = ref_field(ev, p->field, buf);
    int lvl = !strcmp(p->field, "level");
    int isint = !strcmp(p->field, "timestamp") || !strcmp(p->field, "received");
    switch (p->op) {
    case LH_STORE_EQ:
        if (lvl) return ref_level(p->value) == (int)ev->level;
        return v && strcmp(v, p->value) == 0;
    case LH_STORE_NE:
        if (lvl) return ref_level(p->value) != (int)ev->level;
        return !v || strcmp(v, p->value) != 0;
    case LH_STORE_IN:
        for (size_t i = 0; i < p->nvalues; i++) {
            if (lvl ? ref_level(p->values[i]) == (int)ev->level : (v && !strcmp(v, p->values[i])))
                return 1;
        }
        return 0;
    case LH_STORE_PREFIX:
        if (lvl) return strncasecmp(v, p->value, strlen(p->value)) == 0;
        return v && strncmp(v, p->value, strlen(p->value)) == 0;
    case LH_STORE_CONTAINS:
        if (lvl) return strcasestr(v, p->value) != NULL;
        return v && strstr(v, p->value) != NULL;
    case LH_STORE_EXISTS:
        return v != NULL;
    case LH_STORE_NOT_EXISTS:
        return v == NULL;
    default: {
        int c;
        if (!v)
            return 0;
        if (lvl) {
            int q = ref_level(p->value);
            if (q < 0)
                return 0;
            c = (int)ev->level < q ? -1 : (int)ev->level > q;
        } else if (isint) {
            long long a = atoll(v), b = atoll(p->value);
            c = a < b ? -1 : a > b;
        } else {
            double a, b;
            if (ref_num(p->value, &b) == 0) {
                if (ref_num(v, &a) < 0)
                    return 0;
                c = a < b ? -1 : a > b;
            } else {
                c = strcmp(v, p->value);
            }
        }
        switch (p->op) {
        case LH_STORE_LT: return c < 0;
        case LH_STORE_LE: return c <= 0;
        case LH_STORE_GT: return c > 0;
        default: return c >= 0;
        }
    }
    }
}

static inline int ref_match(const struct lh_event *ev, const struct lh_store_query *q)
{
    if (strcmp(ev->tenant, q->tenant) != 0)
        return 0;
    if (ev->ts_ns < q->start_ns || (q->end_ns && ev->ts_ns >= q->end_ns))
        return 0;
    for (size_t i = 0; i < q->nterms; i++)
        if (!ref_event_has(ev, q->terms[i]))
            return 0;
    for (size_t i = 0; i < q->nphrases; i++)
        if (!ref_event_has(ev, q->phrases[i]))
            return 0;
    for (size_t i = 0; i < q->npreds; i++)
        if (!ref_pred(ev, &q->preds[i]))
            return 0;
    return 1;
}

/* newest first */
static inline int ref_order(const void *a, const void *b)
{
    const struct lh_event *x = *(const struct lh_event *const *)a;
    const struct lh_event *y = *(const struct lh_event *const *)b;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns > y->ts_ns ? -1 : 1;
    return -strcmp(x->id, y->id);
}

static inline int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Field-by-field equality (tenant included). */
static inline int ref_event_eq(const struct lh_event *a, const struct lh_event *b)
{
    if (a->ts_ns != b->ts_ns || a->received_ns != b->received_ns || a->level != b->level)
        return 0;
    const char *fa[] = { a->id, a->tenant, a->service, a->host, a->trace_id, a->span_id,
                         a->user_id, a->message, a->stream, a->container_id, a->k8s_namespace,
                         a->k8s_pod, a->k8s_container, a->region, a->file, a->raw };
    const char *fb[] = { b->id, b->tenant, b->service, b->host, b->trace_id, b->span_id,
                         b->user_id, b->message, b->stream, b->container_id, b->k8s_namespace,
                         b->k8s_pod, b->k8s_container, b->region, b->file, b->raw };
    for (size_t i = 0; i < sizeof(fa) / sizeof(fa[0]); i++)
        if (!str_eq(fa[i], fb[i]))
            return 0;
    if (a->nmeta != b->nmeta)
        return 0;
    for (size_t i = 0; i < a->nmeta; i++)
        if (!str_eq(a->meta[i].key, b->meta[i].key) || !str_eq(a->meta[i].value, b->meta[i].value))
            return 0;
    return 1;
}

/* Copies the strings of *e (and its metadata) into a, in place. */
static inline void tg_event_own(struct lh_arena *a, struct lh_event *e)
{
    const char **f[] = { &e->id, &e->tenant, &e->service, &e->host, &e->trace_id,
                         &e->span_id, &e->user_id, &e->message, &e->stream,
                         &e->container_id, &e->k8s_namespace, &e->k8s_pod,
                         &e->k8s_container, &e->region, &e->file, &e->raw };
    for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
        if (*f[k])
            *f[k] = lh_arena_strdup(a, *f[k]);
    if (e->nmeta) {
        struct lh_kv *m = lh_arena_alloc(a, e->nmeta * sizeof(*m));
        for (size_t k = 0; k < e->nmeta; k++) {
            m[k].key = lh_arena_strdup(a, e->meta[k].key);
            m[k].value = lh_arena_strdup(a, e->meta[k].value);
        }
        e->meta = m;
    }
}

static inline int tg_id_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lh_event *)a)->id, ((const struct lh_event *)b)->id);
}

/* Every event of a tenant (up to 100000, one page), owned by a, sorted by
 * id; returns the count (0 on error). */
static inline size_t tq_all_by_id(struct lh_store *s, const char *tenant, struct lh_arena *a,
                                  struct lh_event **out)
{
    struct lh_store_query q = { .tenant = tenant, .limit = 100000 };
    struct lh_store_result *r = NULL;
    struct lh_err err = { 0 };
    if (lh_store_search(s, &q, &r, &err) < 0) {
        fprintf(stderr, "search: %s\n", err.msg);
        return 0;
    }
    struct lh_event *v = lh_arena_alloc(a, (r->n ? r->n : 1) * sizeof(*v));
    for (size_t i = 0; i < r->n; i++) {
        v[i] = r->events[i];
        tg_event_own(a, &v[i]);
    }
    size_t n = r->n;
    lh_store_result_free(r);
    qsort(v, n, sizeof(*v), tg_id_cmp);
    *out = v;
    return n;
}

/* lh_store_count of a one-term full-text query (UINT64_MAX on error). */
static inline uint64_t tq_count_term(struct lh_store *s, const char *tenant, const char *term)
{
    const char *terms[] = { term };
    struct lh_store_query q = { .tenant = tenant, .terms = terms, .nterms = 1 };
    uint64_t n = 0;
    struct lh_err err = { 0 };
    if (lh_store_count(s, &q, &n, &err) < 0)
        return UINT64_MAX;
    if (n == UINT64_MAX)
        n--;
    return n;
}

#endif
