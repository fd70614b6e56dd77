/* query.c - parsing and checking search/aggregate request bodies (see query.h). */
#include "query.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lh/conf.h"
#include "lh/digest.h"
#include "lh/event.h"
#include "lh/json.h"
#include "lh/time.h"

#define NS_PER_HOUR (3600 * LH_NS_PER_SEC)

const char *const lh_query_fields[] = {
    "id", "timestamp", "level", "service", "host", "trace_id", "span_id", "user_id",
    "message", "raw", "stream", "container_id", "k8s.namespace", "k8s.pod", "k8s.container",
    "region", "file", NULL
};

static const enum lh_qkind field_kinds[] = {
    LH_QK_KEYWORD, LH_QK_TIME, LH_QK_LEVEL, LH_QK_KEYWORD, LH_QK_KEYWORD, LH_QK_KEYWORD,
    LH_QK_KEYWORD, LH_QK_KEYWORD, LH_QK_TEXT, LH_QK_TEXT, LH_QK_KEYWORD, LH_QK_KEYWORD,
    LH_QK_KEYWORD, LH_QK_KEYWORD, LH_QK_KEYWORD, LH_QK_KEYWORD, LH_QK_KEYWORD,
};

static const char *const op_names[LH_QOP_COUNT] = {
    "EQUALS", "NOT_EQUALS", "IN", "CONTAINS", "PREFIX", "EXISTS", "GT", "GTE", "LT", "LTE",
};

const char *lh_qop_name(enum lh_qop op)
{
    return (unsigned)op < LH_QOP_COUNT ? op_names[op] : "?";
}

int lh_qop_parse(const char *s, size_t n)
{
    for (int i = 0; i < LH_QOP_COUNT; i++)
        if (strlen(op_names[i]) == n && strncasecmp(op_names[i], s, n) == 0)
            return i;
    return -1;
}

void lh_query_limits_default(struct lh_query_limits *l)
{
    l->default_limit = 100;
    l->max_limit = 1000;
    l->max_terms = 64;
    l->max_filters = 64;
    l->max_values = 1000;
    l->max_text_bytes = 8192;
    l->default_range_ns = 24 * NS_PER_HOUR;
    l->max_buckets = 10000;
    l->max_top = 1000;
}

void lh_query_free(struct lh_query *q)
{
    if (!q)
        return;
    lh_arena_free(&q->arena);
    memset(q, 0, sizeof(*q));
}

/* ---- full text ---------------------------------------------------------- */

static int tokch(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c >= 0x80;
}

int lh_query_has_token(const char *s)
{
    for (; s && *s; s++)
        if (tokch((unsigned char)*s))
            return 1;
    return 0;
}

struct strvec {
    const char **v;
    size_t n, cap;
};

static int vec_push(struct strvec *v, struct lh_arena *a, const char *s)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 8;
        const char **nv = lh_arena_alloc(a, ncap * sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof(*nv));
        v->v = nv;
        v->cap = ncap;
    }
    v->v[v->n++] = s;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int lh_query_split_text(const char *text, size_t len, struct lh_arena *arena,
                        const char ***terms, size_t *nterms, const char ***phrases,
                        size_t *nphrases, const char **why)
{
    struct strvec tv = { 0 }, pv = { 0 };
    char *tmp = lh_arena_alloc(arena, len + 1);
    if (!tmp)
        return LH_ENOMEM;
    size_t i = 0;
    while (i < len) {
        if (is_space(text[i])) {
            i++;
            continue;
        }
        size_t o = 0;
        int phrase = text[i] == '"';
        if (phrase) {
            i++;
            for (;;) {
                if (i >= len) {
                    *why = "unterminated quote";
                    return LH_EINVAL;
                }
                char c = text[i++];
                if (c == '"')
                    break;
                if (c == '\\' && i < len && (text[i] == '"' || text[i] == '\\'))
                    c = text[i++];
                tmp[o++] = c;
            }
        } else {
            while (i < len && !is_space(text[i]) && text[i] != '"')
                tmp[o++] = text[i++];
        }
        tmp[o] = '\0';
        if (!lh_query_has_token(tmp))
            continue;   /* nothing searchable in it */
        char *s = lh_arena_strndup(arena, tmp, o);
        if (!s || vec_push(phrase ? &pv : &tv, arena, s) < 0)
            return LH_ENOMEM;
    }
    *terms = tv.v;
    *nterms = tv.n;
    *phrases = pv.v;
    *nphrases = pv.n;
    return 0;
}

/* ---- the JSON walk ------------------------------------------------------ */

struct jp {
    struct lh_json js;
    struct lh_query *q;
    const struct lh_query_limits *lim;
    struct lh_query_error *e;
    int64_t now;
    char path[160];
    size_t plen;
    int oom;
};

static int fail(struct jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the error at the current path. */
static int fail(struct jp *p, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->e->field, sizeof(p->e->field), "%s", p->path);
    if (p->path[0])
        snprintf(p->e->message, sizeof(p->e->message), "%s: %s", p->path, msg);
    else
        snprintf(p->e->message, sizeof(p->e->message), "%s", msg);
    return LH_EINVAL;
}

static int nomem(struct jp *p)
{
    p->oom = 1;
    snprintf(p->e->field, sizeof(p->e->field), "%s", "");
    snprintf(p->e->message, sizeof(p->e->message), "out of memory");
    return LH_ENOMEM;
}

static void path_push(struct jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends ".key" or "[i]" (given with its separator) to the path. */
static void path_push(struct jp *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (p->plen < sizeof(p->path))
        vsnprintf(p->path + p->plen, sizeof(p->path) - p->plen, fmt, ap);
    va_end(ap);
}

static void path_key(struct jp *p, const struct lh_json_token *k)
{
    size_t saved = p->plen;
    path_push(p, "%s%.*s", p->plen ? "." : "", (int)(k->len > 60 ? 60 : k->len), k->p);
    p->plen = saved;   /* the caller commits with path_enter */
}

/* Makes the pushed component part of the path; returns the old length. */
static size_t path_enter(struct jp *p)
{
    size_t saved = p->plen;
    p->plen = strlen(p->path);
    return saved;
}

static void path_leave(struct jp *p, size_t saved)
{
    p->plen = saved;
    p->path[saved] = '\0';
}

static int next(struct jp *p, struct lh_json_token *t)
{
    struct lh_err err = { 0 };
    int rc = lh_json_next(&p->js, t, &err);
    if (rc < 0) {
        p->path[0] = '\0';
        p->plen = 0;
        return fail(p, "malformed JSON: %s", err.msg);
    }
    return rc;
}

/* Skips the rest of an object or array whose opening token was read. */
static int skip_open(struct jp *p, int depth)
{
    struct lh_json_token t;
    while (depth > 0) {
        int rc = next(p, &t);
        if (rc < 0)
            return rc;
        if (t.type == LH_JSON_OBJECT || t.type == LH_JSON_ARRAY)
            depth++;
        else if (t.type == LH_JSON_OBJECT_END || t.type == LH_JSON_ARRAY_END)
            depth--;
    }
    return 0;
}

static int key_is(const struct lh_json_token *t, const char *name)
{
    return t->len == strlen(name) && memcmp(t->p, name, t->len) == 0;
}

/* A string or number token as a NUL-terminated string (numbers as
 * written). Checks max_text_bytes. */
static int tok_text(struct jp *p, const struct lh_json_token *t, const char **out)
{
    if (t->len > p->lim->max_text_bytes)
        return fail(p, "longer than %zu bytes", p->lim->max_text_bytes);
    char *s;
    if (t->type == LH_JSON_NUMBER) {
        s = lh_arena_strndup(&p->q->arena, t->p, t->len);
    } else {
        struct lh_err err = { 0 };
        if (lh_json_str_arena(t, &p->q->arena, &s, NULL, &err) < 0)
            return nomem(p);
    }
    if (!s)
        return nomem(p);
    *out = s;
    return 0;
}

static const char *type_name(int type) { return lh_json_type_name(type); }

/* Duplicate-key guard for objects with few known keys. */
static int seen_once(struct jp *p, unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return fail(p, "given twice");
    *seen |= bit;
    return 0;
}

/* ---- fields ------------------------------------------------------------- */

static int is_meta_key_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '-' || c == ':' || c == '/' || c == '@' ||
           c >= 0x80;
}

/* Resolves a field name: sets *name (canonical) and *kind, or fails. */
static int resolve_field(struct jp *p, const char *f, const char **name, enum lh_qkind *kind,
                         const char **meta_key)
{
    *meta_key = NULL;
    if (strcmp(f, "metadata.host") == 0)
        f = "host";
    else if (strcmp(f, "metadata.container_id") == 0)
        f = "container_id";
    for (size_t i = 0; lh_query_fields[i]; i++) {
        if (strcmp(f, lh_query_fields[i]) == 0) {
            *name = lh_query_fields[i];
            *kind = field_kinds[i];
            return 0;
        }
    }
    if (strcmp(f, "tenant") == 0)
        return fail(p, "filtering on tenant is not allowed: the tenant comes from the token");
    const char *key = NULL;
    if (strncmp(f, "metadata.", 9) == 0)
        key = f + 9;
    else if (strncmp(f, "custom_metadata.", 16) == 0)
        key = f + 16;
    if (!key)
        return fail(p, "unknown field \"%.80s\" (fields: id, timestamp, level, service, host, "
                       "trace_id, span_id, user_id, message, raw, stream, container_id, "
                       "k8s.namespace, k8s.pod, k8s.container, region, file, metadata.<key>)",
                    f);
    size_t kl = strlen(key);
    if (kl == 0 || kl > 256)
        return fail(p, "metadata key must be 1 to 256 bytes");
    for (size_t i = 0; i < kl; i++)
        if (!is_meta_key_char((unsigned char)key[i]))
            return fail(p, "metadata key may hold letters, digits and _ . - : / @");
    if (key[0] == '.' || key[kl - 1] == '.' || strstr(key, ".."))
        return fail(p, "metadata key must not start or end with '.' or hold \"..\"");
    char *canon = lh_arena_alloc(&p->q->arena, kl + 10);
    if (!canon)
        return nomem(p);
    memcpy(canon, "metadata.", 9);
    memcpy(canon + 9, key, kl + 1);
    *name = canon;
    *kind = LH_QK_META;
    *meta_key = canon + 9;
    return 0;
}

/* ---- values ------------------------------------------------------------- */

/* A time as RFC 3339 text or an epoch number (unit guessed) into ns. */
static int parse_time_value(const char *s, int64_t *ns)
{
    size_t n = strlen(s);
    if (n == 0)
        return LH_EINVAL;
    if (lh_time_parse_rfc3339(s, n, ns, NULL) == 0)
        return 0;
    return lh_time_epoch_str(s, n, ns, NULL);
}

/* [+-]digits[.digits] */
static int is_decimal(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* A level name: canonical name, or NULL when unknown. */
static const char *level_name(const char *s)
{
    enum lh_level l = lh_level_parse(s, strlen(s));
    if (l == LH_LEVEL_UNKNOWN && strcasecmp(s, "unknown") != 0)
        return NULL;
    return lh_level_name(l);
}

struct rawfilter {
    const char *field;
    const char *op;
    int has_value;
    int value_type;            /* JSON type of value */
    const char *value;         /* string or number text */
    struct strvec values;      /* array elements */
    int array_bad;             /* an element was not a string/number */
};

static int check_filter(struct jp *p, struct rawfilter *rf, struct lh_qfilter *f)
{
    size_t base = p->plen;
    if (!rf->field) {
        path_push(p, ".field");
        path_enter(p);
        return fail(p, "missing");
    }
    if (!rf->op) {
        path_push(p, ".operator");
        path_enter(p);
        return fail(p, "missing");
    }
    path_push(p, ".field");
    path_enter(p);
    int rc = resolve_field(p, rf->field, &f->field, &f->kind, &f->meta_key);
    if (rc < 0)
        return rc;
    path_leave(p, base);
    path_push(p, ".operator");
    path_enter(p);
    int op = lh_qop_parse(rf->op, strlen(rf->op));
    if (op < 0)
        return fail(p, "unknown operator \"%.40s\" (EQUALS, NOT_EQUALS, IN, CONTAINS, PREFIX, "
                       "EXISTS, GT, GTE, LT, LTE)", rf->op);
    f->op = (enum lh_qop)op;
    int range = op >= LH_QOP_GT;
    if (range && (f->kind == LH_QK_KEYWORD || f->kind == LH_QK_TEXT))
        return fail(p, "%s applies to timestamp, level and metadata values, not to %s",
                    op_names[op], f->field);
    if ((op == LH_QOP_CONTAINS || op == LH_QOP_PREFIX) &&
        (f->kind == LH_QK_TIME || f->kind == LH_QK_LEVEL))
        return fail(p, "%s does not apply to %s", op_names[op], f->field);
    path_leave(p, base);
    path_push(p, ".value");
    path_enter(p);

    if (op == LH_QOP_EXISTS) {
        if (!rf->has_value || rf->value_type == LH_JSON_TRUE)
            f->exists = 1;
        else if (rf->value_type == LH_JSON_FALSE)
            f->exists = 0;
        else
            return fail(p, "EXISTS takes true, false or no value");
        return 0;
    }
    if (!rf->has_value)
        return fail(p, "missing");
    if (op == LH_QOP_IN) {
        if (rf->value_type != LH_JSON_ARRAY)
            return fail(p, "IN takes an array of values");
        if (rf->array_bad)
            return fail(p, "IN values must be strings or numbers");
        if (rf->values.n == 0)
            return fail(p, "IN needs at least one value");
        if (rf->values.n > p->lim->max_values)
            return fail(p, "more than %zu values", p->lim->max_values);
        f->values = rf->values.v;
        f->nvalues = rf->values.n;
    } else {
        if (rf->value_type == LH_JSON_ARRAY)
            return fail(p, "%s takes one value (IN takes an array)", op_names[op]);
        if (rf->value_type != LH_JSON_STRING && rf->value_type != LH_JSON_NUMBER)
            return fail(p, "must be a string or a number");
        f->value = rf->value;
    }

    /* Normalise by kind. */
    if (f->kind == LH_QK_TIME) {
        size_t n = op == LH_QOP_IN ? f->nvalues : 1;
        const char **vs = lh_arena_alloc(&p->q->arena, n * sizeof(*vs));
        if (!vs)
            return nomem(p);
        for (size_t i = 0; i < n; i++) {
            const char *v = op == LH_QOP_IN ? f->values[i] : f->value;
            int64_t ns;
            if (parse_time_value(v, &ns) < 0)
                return fail(p, "\"%.60s\" is not a time (RFC 3339 or epoch seconds/ms/us/ns)",
                            v);
            char buf[24];
            snprintf(buf, sizeof(buf), "%lld", (long long)ns);
            if (!(vs[i] = lh_arena_strdup(&p->q->arena, buf)))
                return nomem(p);
        }
        if (op == LH_QOP_IN)
            f->values = vs;
        else
            f->value = vs[0];
    } else if (f->kind == LH_QK_LEVEL) {
        size_t n = op == LH_QOP_IN ? f->nvalues : 1;
        for (size_t i = 0; i < n; i++) {
            const char *v = op == LH_QOP_IN ? f->values[i] : f->value;
            const char *name = level_name(v);
            if (!name)
                return fail(p, "unknown level \"%.40s\" (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, "
                               "UNKNOWN)", v);
            if (op == LH_QOP_IN)
                f->values[i] = name;
            else
                f->value = name;
        }
        if (range) {
            /* By severity, as the set of levels it selects. */
            int lv = (int)lh_level_parse(f->value, strlen(f->value));
            const char **vs = lh_arena_alloc(&p->q->arena, LH_LEVEL_COUNT * sizeof(*vs));
            if (!vs)
                return nomem(p);
            size_t k = 0;
            for (int l = 0; l < LH_LEVEL_COUNT; l++) {
                int ok = op == LH_QOP_GT ? l > lv : op == LH_QOP_GTE ? l >= lv
                       : op == LH_QOP_LT ? l < lv : l <= lv;
                if (ok)
                    vs[k++] = lh_level_name((enum lh_level)l);
            }
            f->op = LH_QOP_IN;
            f->values = vs;
            f->nvalues = k;
            f->value = NULL;
        }
    } else if (f->kind == LH_QK_META && range) {
        if (!is_decimal(f->value))
            return fail(p, "%s on metadata needs a decimal number (like 250 or -1.5), got "
                           "\"%.40s\"", op_names[op], f->value);
    }
    return 0;
}

/* first: the token that starts the filter (already read). */
static int parse_filter(struct jp *p, const struct lh_json_token *first, struct lh_qfilter *f)
{
    struct rawfilter rf;
    memset(&rf, 0, sizeof(rf));
    struct lh_json_token t;
    int rc;
    if (first->type != LH_JSON_OBJECT) {
        if (first->type == LH_JSON_ARRAY)
            skip_open(p, 1);
        return fail(p, "must be an object, got %s", type_name((int)first->type));
    }
    size_t base = p->plen;
    unsigned seen = 0;
    for (;;) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_OBJECT_END)
            break;
        path_key(p, &t);
        path_enter(p);
        struct lh_json_token v;
        if (key_is(&t, "field") || key_is(&t, "operator")) {
            int is_field = key_is(&t, "field");
            if ((rc = seen_once(p, &seen, is_field ? 1 : 2)) < 0)
                return rc;
            if ((rc = next(p, &v)) < 0)
                return rc;
            if (v.type != LH_JSON_STRING)
                return fail(p, "must be a string, got %s", type_name((int)v.type));
            if ((rc = tok_text(p, &v, is_field ? &rf.field : &rf.op)) < 0)
                return rc;
        } else if (key_is(&t, "value") || key_is(&t, "values")) {
            if ((rc = seen_once(p, &seen, 4)) < 0)
                return rc;
            if ((rc = next(p, &v)) < 0)
                return rc;
            rf.has_value = 1;
            rf.value_type = (int)v.type;
            if (v.type == LH_JSON_STRING || v.type == LH_JSON_NUMBER) {
                if ((rc = tok_text(p, &v, &rf.value)) < 0)
                    return rc;
            } else if (v.type == LH_JSON_ARRAY) {
                for (size_t i = 0;; i++) {
                    struct lh_json_token el;
                    if ((rc = next(p, &el)) < 0)
                        return rc;
                    if (el.type == LH_JSON_ARRAY_END)
                        break;
                    if (el.type == LH_JSON_OBJECT || el.type == LH_JSON_ARRAY) {
                        rf.array_bad = 1;
                        if ((rc = skip_open(p, 1)) < 0)
                            return rc;
                        continue;
                    }
                    if (el.type != LH_JSON_STRING && el.type != LH_JSON_NUMBER) {
                        rf.array_bad = 1;
                        continue;
                    }
                    if (rf.values.n >= p->lim->max_values) {
                        rf.values.n++;   /* counted, not kept: reported as too many */
                        continue;
                    }
                    const char *s;
                    size_t saved = p->plen;
                    path_push(p, "[%zu]", i);
                    path_enter(p);
                    if ((rc = tok_text(p, &el, &s)) < 0)
                        return rc;
                    path_leave(p, saved);
                    if (vec_push(&rf.values, &p->q->arena, s) < 0)
                        return nomem(p);
                }
            } else if (v.type == LH_JSON_OBJECT) {
                return fail(p, "must be a string, a number, an array or a boolean");
            }
        } else {
            return fail(p, "unknown key (known: field, operator, value)");
        }
        path_leave(p, base);
    }
    return check_filter(p, &rf, f);
}

static int parse_filters(struct jp *p)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    if (t.type == LH_JSON_NULL)
        return 0;
    if (t.type != LH_JSON_ARRAY)
        return fail(p, "must be an array, got %s", type_name((int)t.type));
    size_t cap = 0;
    size_t base = p->plen;
    for (size_t i = 0;; i++) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_ARRAY_END)
            break;
        if (i >= p->lim->max_filters)
            return fail(p, "more than %zu filters", p->lim->max_filters);
        if (p->q->nfilters == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct lh_qfilter *nf = lh_arena_calloc(&p->q->arena, ncap * sizeof(*nf));
            if (!nf)
                return nomem(p);
            if (p->q->nfilters)
                memcpy(nf, p->q->filters, p->q->nfilters * sizeof(*nf));
            p->q->filters = nf;
            cap = ncap;
        }
        struct lh_qfilter *f = &p->q->filters[p->q->nfilters];
        memset(f, 0, sizeof(*f));
        f->index = (int)i;
        path_push(p, "[%zu]", i);
        path_enter(p);
        if ((rc = parse_filter(p, &t, f)) < 0)
            return rc;
        path_leave(p, base);
        p->q->nfilters++;
    }
    return 0;
}

/* start/end: RFC 3339 string or epoch number, or null. */
static int parse_time(struct jp *p, int64_t *out, int *given)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    if (t.type == LH_JSON_NULL)
        return 0;
    if (t.type != LH_JSON_STRING && t.type != LH_JSON_NUMBER)
        return fail(p, "must be an RFC 3339 time or an epoch number, got %s",
                    type_name((int)t.type));
    const char *s;
    if ((rc = tok_text(p, &t, &s)) < 0)
        return rc;
    if (parse_time_value(s, out) < 0)
        return fail(p, "\"%.60s\" is not a time (RFC 3339 like 2026-05-23T07:00:00Z, or epoch "
                       "seconds/ms/us/ns)", s);
    /* Ranges are shifted by the default range, widened to whole buckets and
     * measured (end - start): bounded instants keep all of that in int64. */
    if (*out < LH_QUERY_TIME_MIN_NS || *out >= LH_QUERY_TIME_MAX_NS)
        return fail(p, "\"%.60s\" is out of range (years 1900 to 2149)", s);
    *given = 1;
    return 0;
}

static int parse_time_range(struct jp *p)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    if (t.type == LH_JSON_NULL)
        return 0;
    if (t.type != LH_JSON_OBJECT)
        return fail(p, "must be an object with start and end, got %s", type_name((int)t.type));
    size_t base = p->plen;
    unsigned seen = 0;
    for (;;) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_OBJECT_END)
            break;
        path_key(p, &t);
        path_enter(p);
        if (key_is(&t, "start")) {
            if ((rc = seen_once(p, &seen, 1)) < 0 ||
                (rc = parse_time(p, &p->q->start_ns, &p->q->explicit_start)) < 0)
                return rc;
        } else if (key_is(&t, "end")) {
            if ((rc = seen_once(p, &seen, 2)) < 0 ||
                (rc = parse_time(p, &p->q->end_ns, &p->q->explicit_end)) < 0)
                return rc;
        } else {
            return fail(p, "unknown key (known: start, end)");
        }
        path_leave(p, base);
    }
    if (p->q->explicit_start && p->q->explicit_end && p->q->start_ns >= p->q->end_ns)
        return fail(p, "start must be before end");
    return 0;
}

static int set_full_text(struct jp *p, const char *text, size_t len)
{
    if (len > p->lim->max_text_bytes)
        return fail(p, "longer than %zu bytes", p->lim->max_text_bytes);
    struct lh_query *q = p->q;
    const char *why = "";
    int rc = lh_query_split_text(text, len, &q->arena, &q->terms, &q->nterms, &q->phrases,
                                 &q->nphrases, &why);
    if (rc == LH_ENOMEM)
        return nomem(p);
    if (rc < 0)
        return fail(p, "%s", why);
    if (q->nterms + q->nphrases > p->lim->max_terms)
        return fail(p, "more than %zu words and phrases", p->lim->max_terms);
    if (!(q->full_text = lh_arena_strndup(&q->arena, text, len)))
        return nomem(p);
    return 0;
}

static int parse_query_obj(struct jp *p)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    if (t.type != LH_JSON_OBJECT)
        return fail(p, "must be an object, got %s", type_name((int)t.type));
    size_t base = p->plen;
    unsigned seen = 0;
    for (;;) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_OBJECT_END)
            break;
        path_key(p, &t);
        path_enter(p);
        if (key_is(&t, "full_text")) {
            if ((rc = seen_once(p, &seen, 1)) < 0)
                return rc;
            struct lh_json_token v;
            if ((rc = next(p, &v)) < 0)
                return rc;
            if (v.type != LH_JSON_NULL) {
                if (v.type != LH_JSON_STRING)
                    return fail(p, "must be a string, got %s", type_name((int)v.type));
                if (v.len > p->lim->max_text_bytes)
                    return fail(p, "longer than %zu bytes", p->lim->max_text_bytes);
                const char *s;
                if ((rc = tok_text(p, &v, &s)) < 0 || (rc = set_full_text(p, s, strlen(s))) < 0)
                    return rc;
            }
        } else if (key_is(&t, "filters")) {
            if ((rc = seen_once(p, &seen, 2)) < 0 || (rc = parse_filters(p)) < 0)
                return rc;
        } else if (key_is(&t, "time_range")) {
            if ((rc = seen_once(p, &seen, 4)) < 0 || (rc = parse_time_range(p)) < 0)
                return rc;
        } else {
            return fail(p, "unknown key (known: full_text, filters, time_range)");
        }
        path_leave(p, base);
    }
    return 0;
}

static int parse_pagination(struct jp *p)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    if (t.type == LH_JSON_NULL)
        return 0;
    if (t.type != LH_JSON_OBJECT)
        return fail(p, "must be an object, got %s", type_name((int)t.type));
    size_t base = p->plen;
    unsigned seen = 0;
    for (;;) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_OBJECT_END)
            break;
        path_key(p, &t);
        path_enter(p);
        struct lh_json_token v;
        if (key_is(&t, "limit")) {
            if ((rc = seen_once(p, &seen, 1)) < 0 || (rc = next(p, &v)) < 0)
                return rc;
            int64_t n = 0;
            if (v.type != LH_JSON_NUMBER || lh_json_int64(&v, &n, NULL) < 0 || n < 1 ||
                (uint64_t)n > p->lim->max_limit)
                return fail(p, "must be an integer between 1 and %zu", p->lim->max_limit);
            p->q->limit = (size_t)n;
        } else if (key_is(&t, "cursor")) {
            if ((rc = seen_once(p, &seen, 2)) < 0 || (rc = next(p, &v)) < 0)
                return rc;
            if (v.type == LH_JSON_NULL)
                ;
            else if (v.type != LH_JSON_STRING)
                return fail(p, "must be a string (a next_cursor), got %s", type_name((int)v.type));
            else if (v.len > 2048)
                return fail(p, "is not a cursor of this server");
            else if ((rc = tok_text(p, &v, &p->q->cursor)) < 0)
                return rc;
        } else {
            return fail(p, "unknown key (known: limit, cursor)");
        }
        path_leave(p, base);
    }
    return 0;
}

static int parse_top_one(struct jp *p, const struct lh_json_token *first)
{
    struct lh_query *q = p->q;
    struct lh_json_token t;
    int rc;
    if (first->type != LH_JSON_OBJECT)
        return fail(p, "must be an object like {\"field\": \"level\", \"size\": 10}");
    if (q->ntop >= LH_QUERY_MAX_TOP)
        return fail(p, "at most %d top fields", LH_QUERY_MAX_TOP);
    struct lh_qtop *top = &q->top[q->ntop];
    top->size = 10;
    const char *field = NULL;
    size_t base = p->plen;
    unsigned seen = 0;
    for (;;) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_OBJECT_END)
            break;
        path_key(p, &t);
        path_enter(p);
        struct lh_json_token v;
        if (key_is(&t, "field")) {
            if ((rc = seen_once(p, &seen, 1)) < 0 || (rc = next(p, &v)) < 0)
                return rc;
            if (v.type != LH_JSON_STRING)
                return fail(p, "must be a string");
            if ((rc = tok_text(p, &v, &field)) < 0)
                return rc;
            const char *mk;
            if ((rc = resolve_field(p, field, &top->field, &top->kind, &mk)) < 0)
                return rc;
            if (top->kind == LH_QK_TIME || top->kind == LH_QK_TEXT || strcmp(field, "id") == 0)
                return fail(p, "top values of %s are not counted (use a keyword field)",
                            top->field);
        } else if (key_is(&t, "size")) {
            if ((rc = seen_once(p, &seen, 2)) < 0 || (rc = next(p, &v)) < 0)
                return rc;
            int64_t n;
            if (v.type != LH_JSON_NUMBER || lh_json_int64(&v, &n, NULL) < 0 || n < 1 ||
                (uint64_t)n > p->lim->max_top)
                return fail(p, "must be an integer between 1 and %zu", p->lim->max_top);
            top->size = (size_t)n;
        } else {
            return fail(p, "unknown key (known: field, size)");
        }
        path_leave(p, base);
    }
    if (!field) {
        path_push(p, ".field");
        path_enter(p);
        return fail(p, "missing");
    }
    q->ntop++;
    return 0;
}

static int parse_top(struct jp *p)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    if (t.type != LH_JSON_ARRAY)
        return parse_top_one(p, &t);
    size_t base = p->plen;
    for (size_t i = 0;; i++) {
        if ((rc = next(p, &t)) < 0)
            return rc;
        if (t.type == LH_JSON_ARRAY_END)
            return 0;
        path_push(p, "[%zu]", i);
        path_enter(p);
        if ((rc = parse_top_one(p, &t)) < 0)
            return rc;
        path_leave(p, base);
    }
}

static int parse_interval(struct jp *p)
{
    struct lh_json_token t;
    int rc = next(p, &t);
    if (rc < 0)
        return rc;
    int64_t ms = 0;
    if (t.type == LH_JSON_STRING) {
        const char *s;
        if ((rc = tok_text(p, &t, &s)) < 0)
            return rc;
        if (lh_conf_parse_duration_ms(s, &ms) < 0)
            return fail(p, "\"%.40s\" is not a duration (like 30s, 5m, 1h)", s);
    } else if (t.type != LH_JSON_NUMBER || lh_json_int64(&t, &ms, NULL) < 0) {
        return fail(p, "must be a duration like \"5m\" or a number of milliseconds");
    }
    if (ms < 1 || ms > 366LL * 86400 * 1000)
        return fail(p, "must be between 1ms and 366d");
    p->q->interval_ns = ms * LH_NS_PER_MS;
    return 0;
}

/* An interval that gives at most ~100 buckets over span. */
static int64_t auto_interval(int64_t span)
{
    static const int64_t steps_s[] = { 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600,
                                       6 * 3600, 12 * 3600, 86400, 7 * 86400 };
    for (size_t i = 0; i < sizeof(steps_s) / sizeof(steps_s[0]); i++)
        if (span / (steps_s[i] * LH_NS_PER_SEC) <= 100)
            return steps_s[i] * LH_NS_PER_SEC;
    return 30LL * 86400 * LH_NS_PER_SEC;
}

static int resolve_range(struct jp *p, int aggregate)
{
    struct lh_query *q = p->q;
    if (!q->explicit_start)
        q->start_ns = (q->explicit_end ? q->end_ns : p->now) - p->lim->default_range_ns;
    if (!q->explicit_end)
        q->end_ns = 0;
    if (q->end_ns && q->start_ns >= q->end_ns)
        return fail(p, "start must be before end");
    if (!aggregate)
        return 0;
    int64_t end = q->end_ns ? q->end_ns : p->now;
    if (end <= q->start_ns)
        end = q->start_ns + 1;
    if (!q->interval_ns)
        q->interval_ns = auto_interval(end - q->start_ns);
    if (!q->end_ns) {   /* open: up to the end of the bucket holding now */
        int64_t i = q->interval_ns;
        int64_t e = (end / i + 1) * i;
        q->end_ns = e > end ? e : end + 1;
    }
    uint64_t first = (uint64_t)(q->start_ns - (((q->start_ns % q->interval_ns) +
                                                 q->interval_ns) % q->interval_ns));
    uint64_t nb = ((uint64_t)q->end_ns - first + (uint64_t)q->interval_ns - 1) /
                  (uint64_t)q->interval_ns;
    if (nb > p->lim->max_buckets) {
        snprintf(p->path, sizeof(p->path), "interval");
        p->plen = strlen(p->path);
        return fail(p, "%llu buckets over the time range; at most %zu",
                    (unsigned long long)nb, p->lim->max_buckets);
    }
    return 0;
}

static void jp_init(struct jp *p, const char *json, size_t len, const struct lh_query_limits *lim,
                    int64_t now, struct lh_query *q, struct lh_query_error *e)
{
    memset(p, 0, sizeof(*p));
    lh_json_init(&p->js, json, len, 16, LH_JSON_UTF8_REJECT);
    p->q = q;
    p->lim = lim;
    p->e = e;
    p->now = now;
    memset(q, 0, sizeof(*q));
    q->limit = lim->default_limit;
    memset(e, 0, sizeof(*e));
}

static int finish(struct jp *p, int rc)
{
    if (rc < 0) {
        lh_query_free(p->q);
        return p->oom ? LH_ENOMEM : LH_EINVAL;
    }
    return 0;
}

int lh_query_parse(const char *json, size_t len, int aggregate, const struct lh_query_limits *lim,
                   int64_t now_ns, struct lh_query *q, struct lh_query_error *e)
{
    struct jp p;
    jp_init(&p, json, len, lim, now_ns, q, e);
    struct lh_json_token t;
    int rc = next(&p, &t);
    if (rc >= 0 && t.type != LH_JSON_OBJECT)
        rc = fail(&p, "the body must be a JSON object, got %s", type_name((int)t.type));
    unsigned seen = 0;
    while (rc >= 0) {
        if ((rc = next(&p, &t)) < 0)
            break;
        if (t.type == LH_JSON_OBJECT_END)
            break;
        path_key(&p, &t);
        path_enter(&p);
        if (key_is(&t, "query")) {
            if ((rc = seen_once(&p, &seen, 1)) == 0)
                rc = parse_query_obj(&p);
        } else if (!aggregate && key_is(&t, "pagination")) {
            if ((rc = seen_once(&p, &seen, 2)) == 0)
                rc = parse_pagination(&p);
        } else if (aggregate && key_is(&t, "interval")) {
            if ((rc = seen_once(&p, &seen, 4)) == 0)
                rc = parse_interval(&p);
        } else if (aggregate && key_is(&t, "top")) {
            if ((rc = seen_once(&p, &seen, 8)) == 0)
                rc = parse_top(&p);
        } else {
            rc = fail(&p, aggregate ? "unknown key (known: query, interval, top)"
                                    : "unknown key (known: query, pagination)");
        }
        path_leave(&p, 0);
    }
    if (rc >= 0 && (rc = next(&p, &t)) >= 0 && t.type != LH_JSON_END)
        rc = fail(&p, "malformed JSON: data after the object");
    if (rc >= 0)
        rc = resolve_range(&p, aggregate);
    return finish(&p, rc);
}

int lh_query_parse_object(const char *text, size_t len, const char *path,
                          const struct lh_query_limits *lim, int64_t now_ns, struct lh_query *q,
                          struct lh_query_error *e)
{
    struct jp p;
    jp_init(&p, text, len, lim, now_ns, q, e);
    snprintf(p.path, sizeof(p.path), "%s", path ? path : "");
    p.plen = strlen(p.path);
    size_t i = 0;
    while (i < len && is_space(text[i]))
        i++;
    int rc;
    if (i < len && text[i] == '{') {
        rc = parse_query_obj(&p);
        struct lh_json_token t;
        if (rc >= 0 && (rc = next(&p, &t)) >= 0 && t.type != LH_JSON_END)
            rc = fail(&p, "malformed JSON: data after the object");
    } else {
        path_push(&p, "%sfull_text", p.plen ? "." : "");
        path_enter(&p);
        rc = set_full_text(&p, text, len);
        path_leave(&p, 0);
        snprintf(p.path, sizeof(p.path), "%s", path ? path : "");
        p.plen = strlen(p.path);
    }
    if (rc >= 0)
        rc = resolve_range(&p, 0);
    return finish(&p, rc);
}

/* ---- fingerprint -------------------------------------------------------- */

static void fp_str(struct lh_buf *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0xffffffffu;
    lh_buf_append(b, &n, sizeof(n));
    if (s)
        lh_buf_append(b, s, n);
}

static void fp_i64(struct lh_buf *b, int64_t v) { lh_buf_append(b, &v, sizeof(v)); }

void lh_query_fingerprint(const struct lh_query *q, uint8_t out[LH_QUERY_FP_BYTES])
{
    struct lh_buf b = LH_BUF_INIT;
    lh_buf_puts(&b, "lhq1");
    fp_i64(&b, (int64_t)q->nterms);
    for (size_t i = 0; i < q->nterms; i++)
        fp_str(&b, q->terms[i]);
    fp_i64(&b, (int64_t)q->nphrases);
    for (size_t i = 0; i < q->nphrases; i++)
        fp_str(&b, q->phrases[i]);
    fp_i64(&b, (int64_t)q->nfilters);
    for (size_t i = 0; i < q->nfilters; i++) {
        const struct lh_qfilter *f = &q->filters[i];
        fp_str(&b, f->field);
        fp_i64(&b, f->op);
        fp_i64(&b, f->exists);
        fp_str(&b, f->value);
        fp_i64(&b, (int64_t)f->nvalues);
        for (size_t k = 0; k < f->nvalues; k++)
            fp_str(&b, f->values[k]);
    }
    fp_i64(&b, q->explicit_start ? q->start_ns : INT64_MIN);
    fp_i64(&b, q->explicit_end ? q->end_ns : INT64_MIN);
    uint8_t md[LH_SHA256_BYTES];
    /* Out of memory leaves a partial serialisation: a different digest,
     * so a cursor is refused rather than misapplied. */
    lh_sha256(b.data ? b.data : "", b.len, md);
    lh_buf_free(&b);
    memcpy(out, md, LH_QUERY_FP_BYTES);
}
