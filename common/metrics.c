/* metrics.c - counters, gauges and histograms in the Prometheus text format (see lh/metrics.h).
 *
 * The registry keeps families (one per name, in registration order) each with
 * its series in registration order, plus a hash of all series by name and
 * label text for lookups. A mutex guards registration, lookups and
 * rendering; values are C11 atomics (doubles as their bit patterns in a
 * uint64_t, updated by compare-and-swap). */
#include "lh/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/err.h"
#include "lh/log.h"

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

static const char *const mtype_names[] = { "counter", "gauge", "histogram" };

struct family;

struct series {
    struct family *fam;
    char *labels;              /* label text without braces, "" for none */
    uint64_t hash;
    struct series *next;       /* in the family, registration order */
    struct series *hnext;      /* hash chain */
};

struct lh_counter {
    struct series s;
    _Atomic uint64_t v;
};

struct lh_gauge {
    struct series s;
    _Atomic uint64_t bits;     /* the double's bit pattern */
    double (*fn)(void *arg);   /* non-NULL: computed at render time */
    void *arg;
};

struct lh_histogram {
    struct series s;
    double *bounds;
    size_t nbounds;
    _Atomic uint64_t *counts;  /* nbounds + 1 per-bucket (not cumulative) counts */
    _Atomic uint64_t sum_bits;
};

struct family {
    char *name;
    char *help;
    enum mtype type;
    struct series *first, *last;
    struct family *next;
};

struct lh_metrics {
    pthread_mutex_t mu;
    struct family *first, *last;
    struct series **table;     /* hash buckets */
    size_t nbuckets;           /* a power of two */
    size_t nseries;
};

const double lh_latency_buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
const size_t lh_latency_nbuckets = sizeof(lh_latency_buckets) / sizeof(lh_latency_buckets[0]);

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, d2u(u2d(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static uint64_t hash_series(const char *name, const char *labels)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static int valid_name(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (p > name && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

struct lh_metrics *lh_metrics_create(void)
{
    struct lh_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->nbuckets = 64;
    m->table = calloc(m->nbuckets, sizeof(*m->table));
    if (!m->table || pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m->table);
        free(m);
        return NULL;
    }
    return m;
}

static void series_free(enum mtype type, struct series *s)
{
    free(s->labels);
    if (type == M_HISTOGRAM) {
        struct lh_histogram *h = (struct lh_histogram *)s;
        free(h->bounds);
        free((void *)h->counts);
    }
    free(s);
}

void lh_metrics_destroy(struct lh_metrics *m)
{
    if (!m)
        return;
    struct family *f = m->first;
    while (f) {
        struct family *fn = f->next;
        struct series *s = f->first;
        while (s) {
            struct series *sn = s->next;
            series_free(f->type, s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fn;
    }
    free(m->table);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static struct family *find_family(struct lh_metrics *m, const char *name)
{
    for (struct family *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static struct series *find_series(struct lh_metrics *m, const char *name, const char *labels,
                                  uint64_t h)
{
    for (struct series *s = m->table[h & (m->nbuckets - 1)]; s; s = s->hnext)
        if (s->hash == h && strcmp(s->labels, labels) == 0 && strcmp(s->fam->name, name) == 0)
            return s;
    return NULL;
}

static void table_grow(struct lh_metrics *m)
{
    size_t nb = m->nbuckets * 2;
    struct series **t = calloc(nb, sizeof(*t));
    if (!t)
        return;                 /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct series *s = m->table[i];
        while (s) {
            struct series *next = s->hnext;
            s->hnext = t[s->hash & (nb - 1)];
            t[s->hash & (nb - 1)] = s;
            s = next;
        }
    }
    free(m->table);
    m->table = t;
    m->nbuckets = nb;
}

/* Finds the family for name, creating it if needed; NULL on a type clash or
 * out of memory. Called with the lock held. */
static struct family *get_family(struct lh_metrics *m, const char *name, const char *help,
                                 enum mtype type)
{
    struct family *f = find_family(m, name);
    if (f) {
        if (f->type != type) {
            lh_error("metrics: %s registered as a %s, requested as a %s", name,
                     mtype_names[f->type], mtype_names[type]);
            return NULL;
        }
        return f;
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help ? help : ""))) {
        if (f)
            free(f->name);
        free(f);
        return NULL;
    }
    f->type = type;
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

/* Links a new series (its labels already set) into its family and the hash. */
static void add_series(struct lh_metrics *m, struct family *f, struct series *s, uint64_t h)
{
    s->fam = f;
    s->hash = h;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    size_t b = h & (m->nbuckets - 1);
    s->hnext = m->table[b];
    m->table[b] = s;
    if (++m->nseries > m->nbuckets)
        table_grow(m);
}

/* The common part of the *_get functions. Returns the existing series in
 * *found, or a new zeroed one of size bytes (not yet linked) in *created. */
static struct family *lookup(struct lh_metrics *m, const char *name, const char *help,
                             const char **labels, enum mtype type, uint64_t *h,
                             struct series **found)
{
    if (!*labels)
        *labels = "";
    if (!valid_name(name)) {
        lh_error("metrics: invalid metric name \"%s\"", name ? name : "(null)");
        return NULL;
    }
    *h = hash_series(name, *labels);
    struct family *f = get_family(m, name, help, type);
    if (f)
        *found = find_series(m, name, *labels, *h);
    return f;
}

static struct series *new_series(size_t size, const char *labels)
{
    struct series *s = calloc(1, size);
    if (s && !(s->labels = strdup(labels))) {
        free(s);
        return NULL;
    }
    return s;
}

struct lh_counter *lh_counter_get(struct lh_metrics *m, const char *name, const char *help,
                                  const char *labels)
{
    if (!m)
        return NULL;
    uint64_t h;
    struct series *s = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f = lookup(m, name, help, &labels, M_COUNTER, &h, &s);
    if (f && !s && (s = new_series(sizeof(struct lh_counter), labels)))
        add_series(m, f, s, h);
    pthread_mutex_unlock(&m->mu);
    return f ? (struct lh_counter *)s : NULL;
}

void lh_counter_add(struct lh_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t lh_counter_value(const struct lh_counter *c)
{
    return c ? atomic_load_explicit(&((struct lh_counter *)c)->v, memory_order_relaxed) : 0;
}

struct lh_gauge *lh_gauge_get(struct lh_metrics *m, const char *name, const char *help,
                              const char *labels)
{
    if (!m)
        return NULL;
    uint64_t h;
    struct series *s = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f = lookup(m, name, help, &labels, M_GAUGE, &h, &s);
    if (f && s && ((struct lh_gauge *)s)->fn) {
        lh_error("metrics: %s{%s} is a computed gauge, it cannot be set", name, labels);
        s = NULL;
    } else if (f && !s && (s = new_series(sizeof(struct lh_gauge), labels))) {
        atomic_store_explicit(&((struct lh_gauge *)s)->bits, d2u(0.0), memory_order_relaxed);
        add_series(m, f, s, h);
    }
    pthread_mutex_unlock(&m->mu);
    return f ? (struct lh_gauge *)s : NULL;
}

void lh_gauge_set(struct lh_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void lh_gauge_add(struct lh_gauge *g, double delta)
{
    if (g)
        atomic_add_double(&g->bits, delta);
}

double lh_gauge_value(const struct lh_gauge *g)
{
    if (!g)
        return 0;
    if (g->fn)
        return g->fn(g->arg);
    return u2d(atomic_load_explicit(&((struct lh_gauge *)g)->bits, memory_order_relaxed));
}

int lh_gauge_fn(struct lh_metrics *m, const char *name, const char *help, const char *labels,
                double (*fn)(void *arg), void *arg)
{
    if (!m || !fn)
        return LH_EINVAL;
    uint64_t h;
    struct series *s = NULL;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    struct family *f = lookup(m, name, help, &labels, M_GAUGE, &h, &s);
    if (!f) {
        rc = LH_EINVAL;
    } else if (s) {
        lh_error("metrics: gauge %s{%s} registered twice", name, labels);
        rc = LH_EINVAL;
    } else if (!(s = new_series(sizeof(struct lh_gauge), labels))) {
        rc = LH_ENOMEM;
    } else {
        ((struct lh_gauge *)s)->fn = fn;
        ((struct lh_gauge *)s)->arg = arg;
        add_series(m, f, s, h);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

struct lh_histogram *lh_histogram_get(struct lh_metrics *m, const char *name, const char *help,
                                      const char *labels, const double *bounds, size_t nbounds)
{
    if (!m || (nbounds && !bounds))
        return NULL;
    for (size_t i = 0; i < nbounds; i++)
        if (isnan(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            lh_error("metrics: histogram %s: bucket bounds must ascend", name ? name : "");
            return NULL;
        }
    if (nbounds && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
        nbounds--;                              /* +Inf is implicit */
    uint64_t h;
    struct series *s = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f = lookup(m, name, help, &labels, M_HISTOGRAM, &h, &s);
    if (f && s) {
        struct lh_histogram *old = (struct lh_histogram *)s;
        if (old->nbounds != nbounds ||
            (nbounds && memcmp(old->bounds, bounds, nbounds * sizeof(double)) != 0)) {
            lh_error("metrics: histogram %s{%s} requested with other buckets", name, labels);
            s = NULL;
        }
    } else if (f && (s = new_series(sizeof(struct lh_histogram), labels))) {
        struct lh_histogram *hg = (struct lh_histogram *)s;
        hg->nbounds = nbounds;
        hg->bounds = malloc((nbounds ? nbounds : 1) * sizeof(double));
        hg->counts = calloc(nbounds + 1, sizeof(*hg->counts));
        if (!hg->bounds || !hg->counts) {
            series_free(M_HISTOGRAM, s);
            s = NULL;
        } else {
            if (nbounds)
                memcpy(hg->bounds, bounds, nbounds * sizeof(double));
            for (size_t i = 0; i <= nbounds; i++)
                atomic_init(&hg->counts[i], 0);
            atomic_init(&hg->sum_bits, d2u(0.0));
            add_series(m, f, s, h);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return f ? (struct lh_histogram *)s : NULL;
}

void lh_histogram_observe(struct lh_histogram *h, double v)
{
    if (!h || isnan(v))
        return;
    /* The first bucket whose upper bound is >= v (le is inclusive). */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* A double as Prometheus reads it: shortest of %.15g/%.17g that round-trips. */
static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else {
        snprintf(out, n, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, n, "%.17g", v);
    }
}

/* HELP text escaping: backslash and newline. */
static int put_help(struct lh_buf *b, const char *s)
{
    for (; *s; s++) {
        int rc = *s == '\\' ? lh_buf_puts(b, "\\\\")
                 : *s == '\n' ? lh_buf_puts(b, "\\n")
                              : lh_buf_putc(b, *s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int render_histogram(struct lh_buf *out, const char *name, struct lh_histogram *h)
{
    const char *lb = h->s.labels, *sep = *lb ? "," : "";
    uint64_t cum = 0;
    char num[64];
    int rc = 0;
    for (size_t i = 0; i <= h->nbounds && rc == 0; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->nbounds)
            fmt_double(num, sizeof(num), h->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        rc = lh_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, lb, sep, num,
                           cum);
    }
    fmt_double(num, sizeof(num), u2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    if (rc == 0)
        rc = lh_buf_printf(out, "%s_sum%s%s%s %s\n", name, *lb ? "{" : "", lb, *lb ? "}" : "",
                           num);
    if (rc == 0)   /* the +Inf bucket, so that _count always equals it */
        rc = lh_buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", name, *lb ? "{" : "", lb,
                           *lb ? "}" : "", cum);
    return rc;
}

int lh_metrics_render(struct lh_metrics *m, struct lh_buf *out)
{
    if (!m)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    for (struct family *f = m->first; f && rc == 0; f = f->next) {
        if (!f->first)
            continue;
        rc = lh_buf_printf(out, "# HELP %s ", f->name);
        if (rc == 0)
            rc = put_help(out, f->help);
        if (rc == 0)
            rc = lh_buf_printf(out, "\n# TYPE %s %s\n", f->name, mtype_names[f->type]);
        for (struct series *s = f->first; s && rc == 0; s = s->next) {
            const char *lb = s->labels;
            char num[64];
            switch (f->type) {
            case M_COUNTER:
                rc = lh_buf_printf(out, "%s%s%s%s %" PRIu64 "\n", f->name, *lb ? "{" : "", lb,
                                   *lb ? "}" : "", lh_counter_value((struct lh_counter *)s));
                break;
            case M_GAUGE:
                fmt_double(num, sizeof(num), lh_gauge_value((struct lh_gauge *)s));
                rc = lh_buf_printf(out, "%s%s%s%s %s\n", f->name, *lb ? "{" : "", lb,
                                   *lb ? "}" : "", num);
                break;
            case M_HISTOGRAM:
                rc = render_histogram(out, f->name, (struct lh_histogram *)s);
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

char *lh_metrics_label(char *buf, size_t n, const char *key, const char *value)
{
    if (!buf || n == 0)
        return buf;
    int k = snprintf(buf, n, "%s=\"", key ? key : "");
    if (k < 0 || (size_t)k + 2 > n) {   /* no room for the key, quotes and NUL */
        buf[0] = '\0';
        return buf;
    }
    size_t o = (size_t)k;
    for (const char *p = value ? value : ""; *p; p++) {
        char one[2] = { *p, '\0' };
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : one;
        size_t el = strlen(esc);
        if (o + el + 2 > n)             /* keep room for the closing quote and NUL */
            break;
        memcpy(buf + o, esc, el);
        o += el;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
