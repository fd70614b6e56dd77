/* stages.c - decode, parse, enrich, mask, route and sample (see stages.h). */
#include "stages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lh/buf.h"

/* ---- options ---- */

const struct lh_opt lh_enrich_opts[] = {
    { LH_OPT_STRMAP, "tags", NULL, offsetof(struct lh_enrich_config, tags),
      "static tags: region fills the event's region when it has none; others (dc, env...) "
      "go to custom_metadata" },
    { LH_OPT_BOOL, "tags_override", "false", offsetof(struct lh_enrich_config, tags_override),
      "tags replace the event's own values (default: the event's win)" },
    { LH_OPT_STRLIST, "service_from", "[k8s.container]",
      offsetof(struct lh_enrich_config, service_from),
      "where an event without service takes it from, first present wins: k8s.container, "
      "k8s.pod, k8s.namespace, container_id, stream, file, host, metadata.<key>" },
    { LH_OPT_BOOL, "ingest_delay", "false", offsetof(struct lh_enrich_config, ingest_delay),
      "add custom_metadata ingest_delay_ms (collector receipt minus event time)" },
    { 0 }
};

const struct lh_opt lh_route_opts[] = {
    { LH_OPT_STR, "name", NULL, offsetof(struct lh_route_config, name), "name for logs" },
    { LH_OPT_STRLIST, "sinks", NULL, offsetof(struct lh_route_config, sinks),
      "names of the sinks matching events go to", LH_OPT_REQUIRED },
    { LH_OPT_STR, "min_level", NULL, offsetof(struct lh_route_config, min_level),
      "match events at this level or above (TRACE < DEBUG < INFO < WARN < ERROR < FATAL)" },
    { LH_OPT_STRLIST, "levels", NULL, offsetof(struct lh_route_config, levels),
      "match events of these levels (UNKNOWN too); with min_level, either matches" },
    { LH_OPT_STRLIST, "services", NULL, offsetof(struct lh_route_config, services),
      "match these services (a trailing '*' matches a prefix)" },
    { LH_OPT_STRLIST, "tenants", NULL, offsetof(struct lh_route_config, tenants),
      "match these tenants (a trailing '*' matches a prefix)" },
    { LH_OPT_BOOL, "final", "false", offsetof(struct lh_route_config, final),
      "when this rule matches, later rules are not tried" },
    { 0 }
};

const struct lh_opt lh_sample_opts[] = {
    { LH_OPT_STR, "name", NULL, offsetof(struct lh_sample_config, name),
      "reason label of loghaul_indexer_sampled_total", LH_OPT_REQUIRED },
    { LH_OPT_DOUBLE, "rate", NULL, offsetof(struct lh_sample_config, rate),
      "fraction of matching events kept, 0..1", LH_OPT_REQUIRED },
    { LH_OPT_STR, "max_level", NULL, offsetof(struct lh_sample_config, max_level),
      "match events at this level or below" },
    { LH_OPT_STRLIST, "levels", NULL, offsetof(struct lh_sample_config, levels),
      "match events of these levels; with max_level, either matches" },
    { LH_OPT_STRLIST, "services", NULL, offsetof(struct lh_sample_config, services),
      "match these services (a trailing '*' matches a prefix)" },
    { LH_OPT_STRLIST, "tenants", NULL, offsetof(struct lh_sample_config, tenants),
      "match these tenants (a trailing '*' matches a prefix)" },
    { LH_OPT_STRLIST, "sinks", NULL, offsetof(struct lh_sample_config, sinks),
      "the sinks this rule thins (default: all)" },
    { 0 }
};

/* ---- compiled form ---- */

enum stage { ST_PARSE = 0, ST_ENRICH, ST_MASK, ST_COUNT };
static const char *const stage_names[ST_COUNT] = { "parse", "enrich", "mask" };

struct pat {
    char *s;
    size_t n;
    int prefix;
};

struct pats {
    struct pat *v;
    size_t n;
};

/* The conditions shared by routes and sample rules. */
struct matcher {
    int has_bound;
    enum lh_level bound;     /* routes: min; sample rules: max */
    uint32_t levels;         /* bit per enum lh_level; 0 with no bound: any level */
    struct pats services, tenants;
};

struct route {
    char *name;
    struct matcher m;
    uint32_t sinks;
    int final;
};

struct sample {
    char *name;
    struct matcher m;
    double rate;
    uint32_t sinks;
};

enum source {
    SRC_K8S_CONTAINER, SRC_K8S_POD, SRC_K8S_NAMESPACE, SRC_CONTAINER_ID, SRC_STREAM,
    SRC_FILE, SRC_HOST, SRC_META,
};

struct service_source {
    enum source src;
    char *key;               /* SRC_META */
};

struct lh_stages {
    enum stage order[ST_COUNT];
    size_t norder;
    struct lh_parser *parser;
    struct lh_masker *masker;
    int mask_active;
    char *region;                        /* the region tag, or NULL */
    struct lh_kv *tags;                  /* the other tags */
    size_t ntags;
    int tags_override, ingest_delay;
    struct service_source *svc;
    size_t nsvc;
    struct route *routes;
    size_t nroutes;
    struct sample *samples;
    size_t nsamples;
    size_t nsinks;
};

struct lh_stage_worker {
    const struct lh_stages *s;
    struct lh_parse_worker *pw;
    struct lh_buf buf;
    unsigned long *mask_counts;
    struct lh_stage_counts c;
};

/* ---- helpers ---- */

static int level_from_name(const char *s, enum lh_level *out)
{
    if (!s)
        return -1;
    if (strcasecmp(s, "UNKNOWN") == 0) {
        *out = LH_LEVEL_UNKNOWN;
        return 0;
    }
    enum lh_level l = lh_level_parse(s, strlen(s));
    if (l == LH_LEVEL_UNKNOWN)
        return -1;
    *out = l;
    return 0;
}

static int sink_index(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

static int parse_source(const char *s, struct service_source *out)
{
    static const struct { const char *name; enum source src; } map[] = {
        { "k8s.container", SRC_K8S_CONTAINER }, { "k8s.pod", SRC_K8S_POD },
        { "k8s.namespace", SRC_K8S_NAMESPACE }, { "container_id", SRC_CONTAINER_ID },
        { "stream", SRC_STREAM }, { "file", SRC_FILE }, { "host", SRC_HOST },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(s, map[i].name) == 0) {
            out->src = map[i].src;
            out->key = NULL;
            return 0;
        }
    if (strncmp(s, "metadata.", 9) == 0 && s[9]) {
        out->src = SRC_META;
        out->key = (char *)s + 9;
        return 0;
    }
    return -1;
}

static int check_levels(const char *what, size_t i, const char *bound, const char *bound_key,
                        const struct lh_strlist *levels, struct lh_err *err)
{
    enum lh_level l;
    if (bound && level_from_name(bound, &l) < 0)
        return lh_err_set(err, LH_EINVAL, "%s[%zu].%s: unknown level '%s'", what, i, bound_key,
                          bound);
    for (size_t k = 0; k < levels->n; k++)
        if (level_from_name(levels->v[k], &l) < 0)
            return lh_err_set(err, LH_EINVAL, "%s[%zu].levels: unknown level '%s'", what, i,
                              levels->v[k]);
    return 0;
}

int lh_stages_validate(const struct lh_stages_config *cfg, const char *const *sink_names,
                       size_t nsinks, struct lh_err *err)
{
    if (nsinks > LH_STAGES_MAX_SINKS)
        return lh_err_set(err, LH_EINVAL, "sinks: at most %d", LH_STAGES_MAX_SINKS);
    int seen[ST_COUNT] = { 0 };
    for (size_t i = 0; i < cfg->order.n; i++) {
        int k = -1;
        for (int s = 0; s < ST_COUNT; s++)
            if (strcmp(cfg->order.v[i], stage_names[s]) == 0)
                k = s;
        if (k < 0)
            return lh_err_set(err, LH_EINVAL, "stages: unknown stage '%s' (known: parse, "
                              "enrich, mask)", cfg->order.v[i]);
        if (seen[k]++)
            return lh_err_set(err, LH_EINVAL, "stages: '%s' listed twice", cfg->order.v[i]);
    }
    for (size_t i = 0; i < cfg->enrich.service_from.n; i++) {
        struct service_source ss;
        if (parse_source(cfg->enrich.service_from.v[i], &ss) < 0)
            return lh_err_set(err, LH_EINVAL, "enrich.service_from: unknown source '%s'",
                              cfg->enrich.service_from.v[i]);
    }
    for (size_t i = 0; i < cfg->enrich.tags.n; i++)
        if (!cfg->enrich.tags.keys[i][0])
            return lh_err_set(err, LH_EINVAL, "enrich.tags: empty tag name");
    const struct lh_route_config *r = cfg->routes.items;
    for (size_t i = 0; i < cfg->routes.n; i++) {
        if (r[i].sinks.n == 0)
            return lh_err_set(err, LH_EINVAL, "routes[%zu]: sinks is empty", i);
        for (size_t k = 0; k < r[i].sinks.n; k++)
            if (sink_index(r[i].sinks.v[k], sink_names, nsinks) < 0)
                return lh_err_set(err, LH_EINVAL, "routes[%zu].sinks: no sink named '%s'", i,
                                  r[i].sinks.v[k]);
        int rc = check_levels("routes", i, r[i].min_level, "min_level", &r[i].levels, err);
        if (rc < 0)
            return rc;
    }
    const struct lh_sample_config *sm = cfg->sample.items;
    for (size_t i = 0; i < cfg->sample.n; i++) {
        if (!(sm[i].rate >= 0.0 && sm[i].rate <= 1.0))
            return lh_err_set(err, LH_EINVAL, "sample[%zu].rate: %g is not within 0..1", i,
                              sm[i].rate);
        if (!sm[i].name || !sm[i].name[0])
            return lh_err_set(err, LH_EINVAL, "sample[%zu].name: empty", i);
        for (size_t k = 0; k < sm[i].sinks.n; k++)
            if (sink_index(sm[i].sinks.v[k], sink_names, nsinks) < 0)
                return lh_err_set(err, LH_EINVAL, "sample[%zu].sinks: no sink named '%s'", i,
                                  sm[i].sinks.v[k]);
        int rc = check_levels("sample", i, sm[i].max_level, "max_level", &sm[i].levels, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void pats_free(struct pats *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].s);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

static int pats_init(struct pats *p, const struct lh_strlist *l)
{
    p->n = 0;
    p->v = NULL;
    if (l->n == 0)
        return 0;
    if (!(p->v = calloc(l->n, sizeof(*p->v))))
        return LH_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->v[i]);
        struct pat *x = &p->v[p->n];
        x->prefix = n > 0 && l->v[i][n - 1] == '*';
        x->n = x->prefix ? n - 1 : n;
        if (!(x->s = strndup(l->v[i], x->n)))
            return LH_ENOMEM;
        p->n++;
    }
    return 0;
}

static int pats_match(const struct pats *p, const char *s)
{
    if (p->n == 0)
        return 1;
    if (!s)
        return 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct pat *x = &p->v[i];
        if (x->prefix ? strncmp(s, x->s, x->n) == 0 : strcmp(s, x->s) == 0)
            return 1;
    }
    return 0;
}

static int matcher_init(struct matcher *m, const char *bound, const struct lh_strlist *levels,
                        const struct lh_strlist *services, const struct lh_strlist *tenants)
{
    memset(m, 0, sizeof(*m));
    if (bound) {
        m->has_bound = 1;
        level_from_name(bound, &m->bound);   /* validated */
    }
    for (size_t i = 0; i < levels->n; i++) {
        enum lh_level l;
        if (level_from_name(levels->v[i], &l) == 0)
            m->levels |= 1u << l;
    }
    if (pats_init(&m->services, services) < 0 || pats_init(&m->tenants, tenants) < 0)
        return LH_ENOMEM;
    return 0;
}

static void matcher_free(struct matcher *m)
{
    pats_free(&m->services);
    pats_free(&m->tenants);
}

/* max: the bound is an upper one (sample rules). UNKNOWN is below and above
 * nothing: only a levels list names it. */
static int matcher_match(const struct matcher *m, const struct lh_event *ev, int max)
{
    if (m->has_bound || m->levels) {
        enum lh_level l = ev->level;
        int ok = (m->levels >> l) & 1u;
        if (!ok && m->has_bound && l != LH_LEVEL_UNKNOWN)
            ok = max ? l <= m->bound : l >= m->bound;
        if (!ok)
            return 0;
    }
    return pats_match(&m->services, ev->service) && pats_match(&m->tenants, ev->tenant);
}

static uint32_t sink_mask(const struct lh_strlist *names, const char *const *sink_names,
                          size_t nsinks)
{
    if (names->n == 0)
        return nsinks >= 32 ? 0xffffffffu : (1u << nsinks) - 1;
    uint32_t m = 0;
    for (size_t i = 0; i < names->n; i++) {
        int k = sink_index(names->v[i], sink_names, nsinks);
        if (k >= 0)
            m |= 1u << k;
    }
    return m;
}

/* ---- create / destroy ---- */

void lh_stages_destroy(struct lh_stages *s)
{
    if (!s)
        return;
    lh_parser_destroy(s->parser);
    lh_masker_destroy(s->masker);
    free(s->region);
    for (size_t i = 0; i < s->ntags; i++) {
        free((char *)s->tags[i].key);
        free((char *)s->tags[i].value);
    }
    free(s->tags);
    for (size_t i = 0; i < s->nsvc; i++)
        free(s->svc[i].key);
    free(s->svc);
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].name);
        matcher_free(&s->routes[i].m);
    }
    free(s->routes);
    for (size_t i = 0; i < s->nsamples; i++) {
        free(s->samples[i].name);
        matcher_free(&s->samples[i].m);
    }
    free(s->samples);
    free(s);
}

static int build(struct lh_stages *s, const struct lh_stages_config *cfg,
                 const char *const *sink_names, size_t nsinks, struct lh_err *err)
{
    for (size_t i = 0; i < cfg->order.n; i++)
        for (int k = 0; k < ST_COUNT; k++)
            if (strcmp(cfg->order.v[i], stage_names[k]) == 0)
                s->order[s->norder++] = (enum stage)k;
    s->nsinks = nsinks;
    int rc = lh_parser_create(&cfg->parse, &s->parser, err);
    if (rc < 0)
        return lh_err_wrap(err, "parse");
    if ((rc = lh_masker_create(&cfg->mask, &s->masker, err)) < 0)
        return lh_err_wrap(err, "mask");
    s->mask_active = cfg->mask.emails || cfg->mask.cards || cfg->mask.patterns.n > 0;

    const struct lh_enrich_config *e = &cfg->enrich;
    s->tags_override = e->tags_override;
    s->ingest_delay = e->ingest_delay;
    if (e->tags.n && !(s->tags = calloc(e->tags.n, sizeof(*s->tags))))
        return LH_ENOMEM;
    for (size_t i = 0; i < e->tags.n; i++) {
        const char *v = e->tags.values[i] ? e->tags.values[i] : "";
        if (strcmp(e->tags.keys[i], "region") == 0) {
            free(s->region);
            if (!(s->region = strdup(v)))
                return LH_ENOMEM;
            continue;
        }
        struct lh_kv *t = &s->tags[s->ntags];
        t->key = strdup(e->tags.keys[i]);
        t->value = strdup(v);
        if (t->key || t->value)
            s->ntags++;
        if (!t->key || !t->value)
            return LH_ENOMEM;
    }
    if (e->service_from.n && !(s->svc = calloc(e->service_from.n, sizeof(*s->svc))))
        return LH_ENOMEM;
    for (size_t i = 0; i < e->service_from.n; i++) {
        struct service_source ss;
        if (parse_source(e->service_from.v[i], &ss) < 0)
            return lh_err_set(err, LH_EINVAL, "enrich.service_from: unknown source '%s'",
                              e->service_from.v[i]);
        if (ss.key && !(ss.key = strdup(ss.key)))
            return LH_ENOMEM;
        s->svc[s->nsvc++] = ss;
    }

    const struct lh_route_config *r = cfg->routes.items;
    if (cfg->routes.n && !(s->routes = calloc(cfg->routes.n, sizeof(*s->routes))))
        return LH_ENOMEM;
    for (size_t i = 0; i < cfg->routes.n; i++) {
        struct route *x = &s->routes[s->nroutes++];
        char name[32];
        snprintf(name, sizeof(name), "route%zu", i);
        if (!(x->name = strdup(r[i].name ? r[i].name : name)) ||
            matcher_init(&x->m, r[i].min_level, &r[i].levels, &r[i].services,
                         &r[i].tenants) < 0)
            return LH_ENOMEM;
        x->sinks = sink_mask(&r[i].sinks, sink_names, nsinks);
        x->final = r[i].final;
    }
    const struct lh_sample_config *sm = cfg->sample.items;
    if (cfg->sample.n && !(s->samples = calloc(cfg->sample.n, sizeof(*s->samples))))
        return LH_ENOMEM;
    for (size_t i = 0; i < cfg->sample.n; i++) {
        struct sample *x = &s->samples[s->nsamples++];
        if (!(x->name = strdup(sm[i].name)) ||
            matcher_init(&x->m, sm[i].max_level, &sm[i].levels, &sm[i].services,
                         &sm[i].tenants) < 0)
            return LH_ENOMEM;
        x->rate = sm[i].rate;
        x->sinks = sink_mask(&sm[i].sinks, sink_names, nsinks);
    }
    return 0;
}

int lh_stages_create(const struct lh_stages_config *cfg, const char *const *sink_names,
                     size_t nsinks, struct lh_stages **out, struct lh_err *err)
{
    *out = NULL;
    int rc = lh_stages_validate(cfg, sink_names, nsinks, err);
    if (rc < 0)
        return rc;
    struct lh_stages *s = calloc(1, sizeof(*s));
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "stages: out of memory");
    if ((rc = build(s, cfg, sink_names, nsinks, err)) < 0) {
        if (rc == LH_ENOMEM && (!err || err->code != LH_ENOMEM))
            lh_err_set(err, LH_ENOMEM, "stages: out of memory");
        lh_stages_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

size_t lh_stages_sink_count(const struct lh_stages *s) { return s->nsinks; }
size_t lh_stages_grok_count(const struct lh_stages *s) { return lh_parser_grok_count(s->parser); }

const char *lh_stages_grok_name(const struct lh_stages *s, size_t i)
{
    return lh_parser_grok_name(s->parser, i);
}

size_t lh_stages_mask_rule_count(const struct lh_stages *s)
{
    return lh_masker_rule_count(s->masker);
}

const char *lh_stages_mask_rule_name(const struct lh_stages *s, size_t i)
{
    return lh_masker_rule_name(s->masker, i);
}

size_t lh_stages_sample_count(const struct lh_stages *s) { return s->nsamples; }
const char *lh_stages_sample_name(const struct lh_stages *s, size_t i)
{
    return s->samples[i].name;
}

/* ---- workers ---- */

int lh_stage_worker_create(const struct lh_stages *s, struct lh_stage_worker **out)
{
    *out = NULL;
    struct lh_stage_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return LH_ENOMEM;
    w->s = s;
    size_t ng = lh_stages_grok_count(s), nm = lh_stages_mask_rule_count(s);
    w->c.grok = calloc(ng + 1, sizeof(uint64_t));
    w->c.masked = calloc(nm + 1, sizeof(uint64_t));
    w->c.sampled = calloc(s->nsamples + 1, sizeof(uint64_t));
    w->c.routed = calloc(s->nsinks + 1, sizeof(uint64_t));
    w->mask_counts = calloc(nm + 1, sizeof(unsigned long));
    if (!w->c.grok || !w->c.masked || !w->c.sampled || !w->c.routed || !w->mask_counts ||
        lh_parse_worker_create(s->parser, &w->pw) < 0) {
        lh_stage_worker_destroy(w);
        return LH_ENOMEM;
    }
    *out = w;
    return 0;
}

void lh_stage_worker_destroy(struct lh_stage_worker *w)
{
    if (!w)
        return;
    lh_parse_worker_destroy(w->pw);
    lh_buf_free(&w->buf);
    free(w->mask_counts);
    free(w->c.grok);
    free(w->c.masked);
    free(w->c.sampled);
    free(w->c.routed);
    free(w);
}

const struct lh_stage_counts *lh_stage_worker_counts(struct lh_stage_worker *w)
{
    size_t nm = lh_stages_mask_rule_count(w->s);
    for (size_t i = 0; i < nm; i++) {
        w->c.masked[i] += w->mask_counts[i];
        w->mask_counts[i] = 0;
    }
    return &w->c;
}

void lh_stage_worker_reset_counts(struct lh_stage_worker *w)
{
    const struct lh_stages *s = w->s;
    uint64_t *g = w->c.grok, *m = w->c.masked, *sa = w->c.sampled, *r = w->c.routed;
    memset(g, 0, (lh_stages_grok_count(s) + 1) * sizeof(*g));
    memset(m, 0, (lh_stages_mask_rule_count(s) + 1) * sizeof(*m));
    memset(sa, 0, (s->nsamples + 1) * sizeof(*sa));
    memset(r, 0, (s->nsinks + 1) * sizeof(*r));
    memset(w->mask_counts, 0, (lh_stages_mask_rule_count(s) + 1) * sizeof(unsigned long));
    memset(&w->c, 0, sizeof(w->c));
    w->c.grok = g;
    w->c.masked = m;
    w->c.sampled = sa;
    w->c.routed = r;
}

/* ---- the stages ---- */

int lh_stages_decode(struct lh_stage_worker *w, const struct lh_bus_msg *msg,
                     struct lh_event *ev, struct lh_arena *arena, struct lh_err *err)
{
    int rc = lh_event_decode(msg->value ? msg->value : "", msg->value_len, arena, ev, err);
    if (rc < 0) {
        if (rc != LH_ENOMEM)
            w->c.undecodable++;
        return rc;
    }
    w->c.decoded++;
    if (!ev->tenant || !ev->tenant[0]) {
        const char *t = NULL;
        for (size_t i = 0; i < msg->nheaders && !t; i++)
            if (msg->headers[i].key && strcmp(msg->headers[i].key, "tenant") == 0 &&
                msg->headers[i].value && msg->headers[i].value[0])
                t = msg->headers[i].value;
        ev->tenant = t ? lh_arena_strdup(arena, t) : "default";
        if (!ev->tenant)
            return lh_err_set(err, LH_ENOMEM, "decode: out of memory");
    }
    return 0;
}

int lh_stages_parse(struct lh_stage_worker *w, struct lh_event *ev, struct lh_arena *arena)
{
    int kind = lh_parse_event(w->pw, ev, arena);
    if (kind < 0)
        return kind;
    w->c.kind[kind]++;
    if (kind == LH_PARSE_GROK) {
        int g = lh_parse_last_grok(w->pw);
        if (g >= 0 && (size_t)g < lh_stages_grok_count(w->s))
            w->c.grok[g]++;
    }
    return 0;
}

static const char *source_value(const struct lh_event *ev, const struct service_source *ss)
{
    switch (ss->src) {
    case SRC_K8S_CONTAINER: return ev->k8s_container;
    case SRC_K8S_POD: return ev->k8s_pod;
    case SRC_K8S_NAMESPACE: return ev->k8s_namespace;
    case SRC_CONTAINER_ID: return ev->container_id;
    case SRC_STREAM: return ev->stream;
    case SRC_FILE: return ev->file;
    case SRC_HOST: return ev->host;
    case SRC_META: return lh_event_meta(ev, ss->key);
    }
    return NULL;
}

int lh_stages_enrich(struct lh_stage_worker *w, struct lh_event *ev, struct lh_arena *arena)
{
    const struct lh_stages *s = w->s;
    if (s->region && (!ev->region || !ev->region[0] || s->tags_override))
        ev->region = s->region;
    if (!ev->service || !ev->service[0]) {
        for (size_t i = 0; i < s->nsvc; i++) {
            const char *v = source_value(ev, &s->svc[i]);
            if (v && v[0]) {
                ev->service = v;
                break;
            }
        }
    }
    size_t extra = s->ntags + (s->ingest_delay ? 1 : 0);
    if (extra == 0)
        return 0;
    struct lh_kv *m = lh_arena_alloc(arena, (ev->nmeta + extra) * sizeof(*m));
    if (!m)
        return LH_ENOMEM;
    if (ev->nmeta)
        memcpy(m, ev->meta, ev->nmeta * sizeof(*m));
    size_t n = ev->nmeta;
    for (size_t i = 0; i < s->ntags; i++) {
        size_t k = 0;
        while (k < n && strcmp(m[k].key, s->tags[i].key) != 0)
            k++;
        if (k < n) {
            if (s->tags_override)
                m[k].value = s->tags[i].value;
            continue;
        }
        m[n++] = s->tags[i];
    }
    if (s->ingest_delay && ev->received_ns && ev->ts_ns) {
        char num[32];
        snprintf(num, sizeof(num), "%lld",
                 (long long)((ev->received_ns - ev->ts_ns) / 1000000));
        char *v = lh_arena_strdup(arena, num);
        if (!v)
            return LH_ENOMEM;
        m[n++] = (struct lh_kv){ "ingest_delay_ms", v };
    }
    ev->meta = m;
    ev->nmeta = n;
    return 0;
}

/* Masks *field in place (the new text comes from the arena). */
static int mask_field(struct lh_stage_worker *w, const char **field, struct lh_arena *arena,
                      int *hits)
{
    if (!*field || !**field)
        return 0;
    int rc = lh_mask_apply(w->s->masker, *field, strlen(*field), &w->buf, w->mask_counts);
    if (rc <= 0)
        return rc;
    char *v = lh_arena_strndup(arena, w->buf.data, w->buf.len);
    if (!v)
        return LH_ENOMEM;
    *field = v;
    *hits += rc;
    return 0;
}

int lh_stages_mask(struct lh_stage_worker *w, struct lh_event *ev, struct lh_arena *arena)
{
    if (!w->s->mask_active)
        return 0;
    int hits = 0, rc;
    int same = ev->message && ev->message == ev->raw;
    if ((rc = mask_field(w, &ev->message, arena, &hits)) < 0)
        return rc;
    if (same)
        ev->raw = ev->message;
    else if ((rc = mask_field(w, &ev->raw, arena, &hits)) < 0)
        return rc;
    /* user ids are often e-mail addresses (the parser fills user_id from
     * JSON, logfmt and grok fields, the ingest API takes it as given) */
    if ((rc = mask_field(w, &ev->user_id, arena, &hits)) < 0)
        return rc;
    if (ev->nmeta) {
        /* The metadata array may be shared with what decode built: copy it
         * before the first change. */
        struct lh_kv *copy = NULL;
        for (size_t i = 0; i < ev->nmeta; i++) {
            const char *v = ev->meta[i].value;
            int before = hits;
            if ((rc = mask_field(w, &v, arena, &hits)) < 0)
                return rc;
            if (hits == before)
                continue;
            if (!copy) {
                if (!(copy = lh_arena_alloc(arena, ev->nmeta * sizeof(*copy))))
                    return LH_ENOMEM;
                memcpy(copy, ev->meta, ev->nmeta * sizeof(*copy));
                ev->meta = copy;
            }
            copy[i].value = v;
        }
    }
    if (hits)
        w->c.masked_events++;
    return 0;
}

int lh_stages_mask_text(const struct lh_stages *s, const char *text, size_t n,
                        struct lh_buf *out)
{
    if (!s->mask_active)
        return 0;
    for (size_t i = 0; i < s->norder; i++)
        if (s->order[i] == ST_MASK)
            return lh_mask_apply(s->masker, text, n, out, NULL);
    return 0;
}

uint64_t lh_stages_sample_hash(const struct lh_event *ev)
{
    const char *s = ev->id ? ev->id : ev->raw ? ev->raw : ev->message ? ev->message : "";
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a, then a murmur3 finaliser */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint32_t lh_stages_route(struct lh_stage_worker *w, const struct lh_event *ev)
{
    const struct lh_stages *s = w->s;
    uint32_t to = 0;
    if (s->nroutes == 0) {
        to = s->nsinks >= 32 ? 0xffffffffu : (1u << s->nsinks) - 1;
    } else {
        for (size_t i = 0; i < s->nroutes; i++) {
            if (!matcher_match(&s->routes[i].m, ev, 0))
                continue;
            to |= s->routes[i].sinks;
            if (s->routes[i].final)
                break;
        }
    }
    if (to == 0) {
        w->c.unrouted++;
        return 0;
    }
    for (size_t i = 0; i < s->nsamples; i++) {
        const struct sample *x = &s->samples[i];
        if (!matcher_match(&x->m, ev, 1))
            continue;
        double u = (double)(lh_stages_sample_hash(ev) >> 11) * (1.0 / 9007199254740992.0);
        if (!(u < x->rate) && (to & x->sinks)) {
            to &= ~x->sinks;
            w->c.sampled[i]++;
        }
        break;
    }
    for (size_t i = 0; i < s->nsinks; i++)
        if (to & (1u << i))
            w->c.routed[i]++;
    return to;
}

int64_t lh_stages_process(struct lh_stage_worker *w, struct lh_event *ev,
                          struct lh_arena *arena)
{
    const struct lh_stages *s = w->s;
    for (size_t i = 0; i < s->norder; i++) {
        int rc = 0;
        switch (s->order[i]) {
        case ST_PARSE: rc = lh_stages_parse(w, ev, arena); break;
        case ST_ENRICH: rc = lh_stages_enrich(w, ev, arena); break;
        case ST_MASK: rc = lh_stages_mask(w, ev, arena); break;
        case ST_COUNT: break;
        }
        if (rc < 0)
            return rc;
    }
    return (int64_t)lh_stages_route(w, ev);
}
