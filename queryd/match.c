/* match.c - queries evaluated on events in memory (see match.h). */
#include "match.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tokch(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c >= 0x80;
}

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* The next token of s at or after *p: its start and length; 0 at the end. */
static int next_token(const char **p, const char **tok, size_t *len)
{
    const unsigned char *s = (const unsigned char *)*p;
    while (*s && !tokch(*s))
        s++;
    if (!*s)
        return 0;
    const unsigned char *st = s;
    while (*s && tokch(*s))
        s++;
    *tok = (const char *)st;
    *len = (size_t)(s - st);
    *p = (const char *)s;
    return 1;
}

static int tok_eq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Does the token sequence of term occur in text? */
static int text_has(const char *text, const char *term)
{
    if (!text)
        return 0;
    const char *tp = term, *t0;
    size_t l0;
    if (!next_token(&tp, &t0, &l0))
        return 1;   /* no token: nothing to look for */
    const char *p = text, *tok;
    size_t len;
    while (next_token(&p, &tok, &len)) {
        if (!tok_eq(tok, len, t0, l0))
            continue;
        /* the rest of the term must follow token by token */
        const char *q = p, *rt = tp, *a, *b;
        size_t al, bl;
        int ok = 1;
        while (next_token(&rt, &b, &bl)) {
            if (!next_token(&q, &a, &al) || !tok_eq(a, al, b, bl)) {
                ok = 0;
                break;
            }
        }
        if (ok)
            return 1;
    }
    return 0;
}

static int event_has(const struct lh_event *ev, const char *term)
{
    if (text_has(ev->message, term) || text_has(ev->raw, term) ||
        text_has(ev->trace_id, term) || text_has(ev->user_id, term) || text_has(ev->host, term))
        return 1;
    for (size_t i = 0; i < ev->nmeta; i++)
        if (text_has(ev->meta[i].value, term))
            return 1;
    return 0;
}

const char *lh_qmatch_field(const struct lh_event *ev, const char *f, char *buf)
{
    if (strncmp(f, "metadata.", 9) == 0) {
        for (size_t i = 0; i < ev->nmeta; i++)
            if (ev->meta[i].key && strcmp(ev->meta[i].key, f + 9) == 0)
                return ev->meta[i].value;
        return NULL;
    }
    switch (f[0]) {
    case 'c': return strcmp(f, "container_id") == 0 ? ev->container_id : NULL;
    case 'f': return strcmp(f, "file") == 0 ? ev->file : NULL;
    case 'h': return strcmp(f, "host") == 0 ? ev->host : NULL;
    case 'i': return strcmp(f, "id") == 0 ? ev->id : NULL;
    case 'k':
        if (strcmp(f, "k8s.namespace") == 0)
            return ev->k8s_namespace;
        if (strcmp(f, "k8s.pod") == 0)
            return ev->k8s_pod;
        return strcmp(f, "k8s.container") == 0 ? ev->k8s_container : NULL;
    case 'l': return strcmp(f, "level") == 0 ? lh_level_name(ev->level) : NULL;
    case 'm': return strcmp(f, "message") == 0 ? ev->message : NULL;
    case 'r':
        if (strcmp(f, "raw") == 0)
            return ev->raw;
        return strcmp(f, "region") == 0 ? ev->region : NULL;
    case 's':
        if (strcmp(f, "service") == 0)
            return ev->service;
        if (strcmp(f, "span_id") == 0)
            return ev->span_id;
        return strcmp(f, "stream") == 0 ? ev->stream : NULL;
    case 't':
        if (strcmp(f, "trace_id") == 0)
            return ev->trace_id;
        if (strcmp(f, "timestamp") == 0) {
            snprintf(buf, 24, "%lld", (long long)ev->ts_ns);
            return buf;
        }
        return NULL;
    case 'u': return strcmp(f, "user_id") == 0 ? ev->user_id : NULL;
    default: return NULL;
    }
}

/* strtod of the whole string; -1 when it is not a number. */
static int number(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end || isnan(v))
        return -1;
    *out = v;
    return 0;
}

static int cmp_op(enum lh_qop op, int c)
{
    switch (op) {
    case LH_QOP_GT: return c > 0;
    case LH_QOP_GTE: return c >= 0;
    case LH_QOP_LT: return c < 0;
    default: return c <= 0;
    }
}

static int equals(const struct lh_qfilter *f, const char *v, const char *want, int64_t ts)
{
    if (f->kind == LH_QK_TIME)
        return ts == strtoll(want, NULL, 10);
    return v && strcmp(v, want) == 0;
}

static int filter_ok(const struct lh_qfilter *f, const struct lh_event *ev)
{
    char buf[24];
    const char *v = lh_qmatch_field(ev, f->field, buf);
    switch (f->op) {
    case LH_QOP_EQUALS: return equals(f, v, f->value, ev->ts_ns);
    case LH_QOP_NOT_EQUALS: return !equals(f, v, f->value, ev->ts_ns);
    case LH_QOP_IN:
        for (size_t i = 0; i < f->nvalues; i++)
            if (equals(f, v, f->values[i], ev->ts_ns))
                return 1;
        return 0;
    case LH_QOP_CONTAINS: return v && strstr(v, f->value) != NULL;
    case LH_QOP_PREFIX: return v && strncmp(v, f->value, strlen(f->value)) == 0;
    case LH_QOP_EXISTS: return (v != NULL) == (f->exists != 0);
    default: {
        if (!v)
            return 0;
        if (f->kind == LH_QK_TIME) {
            int64_t w = strtoll(f->value, NULL, 10);
            return cmp_op(f->op, ev->ts_ns < w ? -1 : ev->ts_ns > w);
        }
        double x, w;
        if (number(f->value, &w) == 0) {
            if (number(v, &x) < 0)
                return 0;
            return cmp_op(f->op, x < w ? -1 : x > w);
        }
        return cmp_op(f->op, strcmp(v, f->value));
    }
    }
}

int lh_qmatch(const struct lh_query *q, const struct lh_event *ev)
{
    for (size_t i = 0; i < q->nfilters; i++)
        if (!filter_ok(&q->filters[i], ev))
            return 0;
    for (size_t i = 0; i < q->nterms; i++)
        if (!event_has(ev, q->terms[i]))
            return 0;
    for (size_t i = 0; i < q->nphrases; i++)
        if (!event_has(ev, q->phrases[i]))
            return 0;
    return 1;
}
