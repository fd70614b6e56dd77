/* conf.c - YAML configuration bound to C structs by option tables (see lh/conf.h).
 *
 * Two stages: libyaml events are turned into a small node tree that keeps
 * 1-based line numbers, then the tree is bound into the caller's struct by
 * walking the option table, with a dotted key path kept for messages.
 * Defaults are YAML text parsed and bound by the same code as file values.
 * A plain null value (`key:`, `key: ~`, `key: null`) counts as absent.
 * Anchors and aliases are not supported (rejected with a message). */
#include "lh/conf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lh/buf.h"

#define MAX_DEPTH      64                 /* nesting of YAML collections */
#define MAX_FILE_BYTES (16u * 1024 * 1024)
#define MAX_ENV_DEPTH  8                  /* ${A:-${B:-...}} nesting */

/* ---- node tree ---------------------------------------------------------- */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    int line;            /* 1-based */
    int plain;           /* scalar written without quotes (so may be a null) */
    char *s;             /* scalar text, NUL-terminated */
    size_t len;
    struct node **kids;  /* SEQ: items; MAP: key, value, key, value, ... */
    size_t n;            /* entries used in kids */
    size_t cap;
};

static struct node *node_new(enum node_kind kind, int line)
{
    struct node *nd = calloc(1, sizeof(*nd));
    if (nd) {
        nd->kind = kind;
        nd->line = line;
    }
    return nd;
}

static void node_free(struct node *nd)
{
    if (!nd)
        return;
    for (size_t i = 0; i < nd->n; i++)
        node_free(nd->kids[i]);
    free(nd->kids);
    free(nd->s);
    free(nd);
}

static int node_push(struct node *nd, struct node *kid)
{
    if (nd->n == nd->cap) {
        size_t cap = nd->cap ? nd->cap * 2 : 8;
        struct node **k = realloc(nd->kids, cap * sizeof(*k));
        if (!k)
            return LH_ENOMEM;
        nd->kids = k;
        nd->cap = cap;
    }
    nd->kids[nd->n++] = kid;
    return 0;
}

static const char *node_kind_name(const struct node *nd)
{
    switch (nd->kind) {
    case NODE_MAP: return "a mapping";
    case NODE_SEQ: return "a sequence";
    default:       return "a scalar";
    }
}

/* A plain empty, ~ or null scalar: YAML's null, treated as an absent value. */
static int node_is_null(const struct node *nd)
{
    if (!nd)
        return 1;
    if (nd->kind != NODE_SCALAR || !nd->plain)
        return 0;
    return nd->len == 0 || strcmp(nd->s, "~") == 0 || strcmp(nd->s, "null") == 0 ||
           strcmp(nd->s, "Null") == 0 || strcmp(nd->s, "NULL") == 0;
}

/* The value of key in a mapping node, NULL when absent. */
static const struct node *map_get(const struct node *map, const char *key)
{
    if (!map)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (strcmp(map->kids[i]->s, key) == 0)
            return map->kids[i + 1];
    return NULL;
}

/* ---- YAML parsing --------------------------------------------------------- */

struct yctx {
    yaml_parser_t p;
    const char *name;
    const char *text;     /* the input, to turn byte offsets into lines */
    size_t len;
    struct lh_err *err;
};

static int yaml_failure(struct yctx *y)
{
    const yaml_parser_t *p = &y->p;
    if (p->error == YAML_MEMORY_ERROR)
        return lh_err_set(y->err, LH_ENOMEM, "%s: out of memory while parsing YAML", y->name);
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        size_t line = 1;
        for (size_t i = 0; i < p->problem_offset && i < y->len; i++)
            line += y->text[i] == '\n';
        return lh_err_set(y->err, LH_EINVAL, "%s:%zu: YAML syntax error: %s at byte %zu",
                          y->name, line, problem, p->problem_offset);
    }
    if (p->context)
        return lh_err_set(y->err, LH_EINVAL, "%s:%zu:%zu: YAML syntax error: %s (%s at line %zu)",
                          y->name, p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                          p->context, p->context_mark.line + 1);
    return lh_err_set(y->err, LH_EINVAL, "%s:%zu:%zu: YAML syntax error: %s", y->name,
                      p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

static int next_event(struct yctx *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev))
        return yaml_failure(y);
    return 0;
}

static int parse_node(struct yctx *y, const yaml_event_t *ev, int depth, struct node **out)
{
    int line = (int)ev->start_mark.line + 1;
    if (ev->type == YAML_SCALAR_EVENT) {
        size_t len = ev->data.scalar.length;
        if (memchr(ev->data.scalar.value, '\0', len))
            return lh_err_set(y->err, LH_EINVAL, "%s:%d: a value contains a NUL byte", y->name,
                              line);
        struct node *nd = node_new(NODE_SCALAR, line);
        if (!nd || !(nd->s = malloc(len + 1))) {
            node_free(nd);
            return lh_err_set(y->err, LH_ENOMEM, "%s: out of memory", y->name);
        }
        memcpy(nd->s, ev->data.scalar.value, len);
        nd->s[len] = '\0';
        nd->len = len;
        nd->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        *out = nd;
        return 0;
    }
    if (ev->type == YAML_ALIAS_EVENT)
        return lh_err_set(y->err, LH_EINVAL, "%s:%d: YAML aliases (*%s) are not supported",
                          y->name, line, (const char *)ev->data.alias.anchor);
    if (ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT)
        return lh_err_set(y->err, LH_EINVAL, "%s:%d: unexpected YAML event %d", y->name, line,
                          (int)ev->type);
    if (depth >= MAX_DEPTH)
        return lh_err_set(y->err, LH_EINVAL, "%s:%d: nested deeper than %d levels", y->name,
                          line, MAX_DEPTH);
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    struct node *nd = node_new(is_map ? NODE_MAP : NODE_SEQ, line);
    if (!nd)
        return lh_err_set(y->err, LH_ENOMEM, "%s: out of memory", y->name);
    for (;;) {
        yaml_event_t e;
        int rc = next_event(y, &e);
        if (rc < 0) {
            node_free(nd);
            return rc;
        }
        if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        struct node *kid = NULL;
        rc = parse_node(y, &e, depth + 1, &kid);
        yaml_event_delete(&e);
        if (rc == 0 && is_map && nd->n % 2 == 0 && kid->kind != NODE_SCALAR)
            rc = lh_err_set(y->err, LH_EINVAL, "%s:%d: mapping keys must be scalars, got %s",
                            y->name, kid->line, node_kind_name(kid));
        if (rc == 0 && node_push(nd, kid) < 0)
            rc = lh_err_set(y->err, LH_ENOMEM, "%s: out of memory", y->name);
        if (rc < 0) {
            node_free(kid);
            node_free(nd);
            return rc;
        }
    }
    *out = nd;
    return 0;
}

/* Parses one YAML document into *out (NULL for an empty stream). */
static int parse_tree(const char *name, const char *text, size_t len, struct node **out,
                      struct lh_err *err)
{
    struct yctx y = { .name = name, .text = text, .len = len, .err = err };
    if (!yaml_parser_initialize(&y.p))
        return lh_err_set(err, LH_ENOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    struct node *root = NULL;
    int ndocs = 0, rc = 0;
    for (;;) {
        yaml_event_t e;
        rc = next_event(&y, &e);
        if (rc < 0)
            break;
        yaml_event_type_t t = e.type;
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (ndocs++ > 0)
                rc = lh_err_set(err, LH_EINVAL, "%s:%zu: a second YAML document; only one "
                                "is allowed", name, e.start_mark.line + 1);
        } else if (t != YAML_STREAM_START_EVENT && t != YAML_DOCUMENT_END_EVENT &&
                   t != YAML_STREAM_END_EVENT) {
            rc = parse_node(&y, &e, 0, &root);
        }
        yaml_event_delete(&e);
        if (rc < 0 || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&y.p);
    if (rc < 0) {
        node_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ---- typed scalar parsers ------------------------------------------------- */

static int parse_u64_digits(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    if (!isdigit((unsigned char)*s))
        return LH_EINVAL;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return LH_ETOOBIG;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

int lh_conf_parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *suffix; unsigned shift; } units[] = {
        { "", 0 }, { "b", 0 },
        { "k", 10 }, { "kb", 10 }, { "kib", 10 },
        { "m", 20 }, { "mb", 20 }, { "mib", 20 },
        { "g", 30 }, { "gb", 30 }, { "gib", 30 },
        { "t", 40 }, { "tb", 40 }, { "tib", 40 },
    };
    if (!s)
        return LH_EINVAL;
    uint64_t v;
    const char *p = s;
    int rc = parse_u64_digits(&p, &v);
    if (rc < 0)
        return LH_EINVAL;
    if (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].suffix) != 0)
            continue;
        if (p > s && p[-1] == ' ' && !*p)
            return LH_EINVAL;                 /* "64 " */
        if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
            return LH_EINVAL;
        *out = v << units[i].shift;
        return 0;
    }
    return LH_EINVAL;
}

int lh_conf_parse_duration_ms(const char *s, int64_t *out)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    if (!s || !*s)
        return LH_EINVAL;
    uint64_t v;
    const char *p = s;
    if (parse_u64_digits(&p, &v) < 0)
        return LH_EINVAL;
    if (!*p) {                                /* a bare integer is seconds */
        if (v > (uint64_t)INT64_MAX / 1000)
            return LH_EINVAL;
        *out = (int64_t)v * 1000;
        return 0;
    }
    uint64_t total = 0;
    for (;;) {
        size_t best = 0;
        int which = -1;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, l) == 0 && l > best &&
                !isalpha((unsigned char)p[l])) {
                best = l;
                which = (int)i;
            }
        }
        if (which < 0)
            return LH_EINVAL;
        uint64_t ms = (uint64_t)units[which].ms;
        if (v > (uint64_t)INT64_MAX / ms || total > (uint64_t)INT64_MAX - v * ms)
            return LH_EINVAL;
        total += v * ms;
        p += best;
        if (!*p)
            break;
        if (parse_u64_digits(&p, &v) < 0 || !*p)
            return LH_EINVAL;                 /* "1m30" has no unit after 30 */
    }
    *out = (int64_t)total;
    return 0;
}

int lh_conf_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    if (!s)
        return LH_EINVAL;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return LH_EINVAL;
}

static int parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return LH_EINVAL;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return LH_EINVAL;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return LH_ETOOBIG;
    *out = (int64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s))
        return LH_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return LH_EINVAL;
    *out = v;
    return 0;
}

/* Index of s in "a|b|c", or -1. */
static int enum_index(const char *choices, const char *s)
{
    size_t sl = strlen(s);
    int i = 0;
    for (const char *p = choices; p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == sl && strncmp(p, s, l) == 0)
            return i;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* "a|b|c" -> "a, b, c" into buf. */
static void enum_list(const char *choices, char *buf, size_t n)
{
    size_t o = 0;
    for (const char *p = choices; *p && o + 3 < n; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
}

/* ---- binding -------------------------------------------------------------- */

struct bctx {
    const char *name;     /* file name for messages */
    struct lh_err *err;
    char path[512];       /* dotted key path of what is being bound */
    size_t plen;
    const char *def;      /* the default text being bound, NULL for file text */
    int def_line;         /* line of the mapping whose key took the default */
    int lax;              /* > 0: only checking defaults, required keys may be absent */
};

static int fail(struct bctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct bctx *c, int line, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->def)
        return lh_err_set(c->err, LH_EINVAL,
                          "%s:%d: %s: invalid default \"%s\" in the option table: %s",
                          c->name, c->def_line, c->path, c->def, msg);
    if (c->plen)
        return lh_err_set(c->err, LH_EINVAL, "%s:%d: %s: %s", c->name, line, c->path, msg);
    return lh_err_set(c->err, LH_EINVAL, "%s:%d: %s", c->name, line, msg);
}

static int nomem(struct bctx *c)
{
    return lh_err_set(c->err, LH_ENOMEM, "%s: out of memory", c->name);
}

static size_t path_push(struct bctx *c, const char *sep, const char *part)
{
    size_t old = c->plen;
    snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? sep : "", part);
    c->plen = strlen(c->path);
    return old;
}

static size_t path_push_index(struct bctx *c, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof(idx), "[%zu]", i);
    return path_push(c, "", idx);
}

static void path_pop(struct bctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* Appends s[0..len) to b with ${VAR}, ${VAR:-default} and $$ expanded. */
static int expand_into(struct bctx *c, int line, const char *s, size_t len, struct lh_buf *b,
                       int depth)
{
    const char *end = s + len;
    while (s < end) {
        const char *d = memchr(s, '$', (size_t)(end - s));
        if (!d)
            return lh_buf_append(b, s, (size_t)(end - s)) < 0 ? nomem(c) : 0;
        if (lh_buf_append(b, s, (size_t)(d - s)) < 0)
            return nomem(c);
        if (d + 1 < end && d[1] == '$') {
            if (lh_buf_putc(b, '$') < 0)
                return nomem(c);
            s = d + 2;
            continue;
        }
        if (d + 1 >= end || d[1] != '{') {
            if (lh_buf_putc(b, '$') < 0)
                return nomem(c);
            s = d + 1;
            continue;
        }
        /* ${...}: find the matching brace, allowing ${...} inside a default. */
        const char *name = d + 2, *close = NULL;
        int nest = 0;
        for (const char *q = name; q < end; q++) {
            if (q[0] == '$' && q + 1 < end && q[1] == '{') {
                nest++;
                q++;
            } else if (*q == '}' && nest-- == 0) {
                close = q;
                break;
            }
        }
        if (!close)
            return fail(c, line, "unterminated \"${\" (write $$ for a literal $)");
        const char *q = name;
        while (q < close && (isalnum((unsigned char)*q) || *q == '_'))
            q++;
        size_t nlen = (size_t)(q - name);
        char var[128];
        if (nlen == 0 || isdigit((unsigned char)*name) || nlen >= sizeof(var))
            return fail(c, line, "invalid variable name in \"%.*s\"", (int)(close + 1 - d), d);
        memcpy(var, name, nlen);
        var[nlen] = '\0';
        const char *defv = NULL;
        if (q < close) {
            if (close - q < 2 || q[0] != ':' || q[1] != '-')
                return fail(c, line, "invalid \"%.*s\": use ${%s} or ${%s:-default}",
                            (int)(close + 1 - d), d, var, var);
            defv = q + 2;
        }
        const char *val = getenv(var);
        if (defv && (!val || !*val)) {
            if (depth >= MAX_ENV_DEPTH)
                return fail(c, line, "defaults of ${%s} nested too deeply", var);
            int rc = expand_into(c, line, defv, (size_t)(close - defv), b, depth + 1);
            if (rc < 0)
                return rc;
        } else if (!val) {
            return fail(c, line, "environment variable %s is not set (use ${%s:-default} "
                        "for a default)", var, var);
        } else if (lh_buf_puts(b, val) < 0) {
            return nomem(c);
        }
        s = close + 1;
    }
    return 0;
}

/* The scalar text of nd with environment variables expanded (caller frees). */
static int scalar_text(struct bctx *c, const struct node *nd, const char *what, char **out)
{
    if (nd->kind != NODE_SCALAR)
        return fail(c, nd->line, "expected %s, got %s", what, node_kind_name(nd));
    struct lh_buf b = LH_BUF_INIT;
    int rc = expand_into(c, nd->line, nd->s, nd->len, &b, 0);
    if (rc < 0) {
        lh_buf_free(&b);
        return rc;
    }
    /* lh_buf_steal() of a never-appended buffer does not NUL-terminate it,
     * so make sure it holds the terminator first. */
    char *s = lh_buf_append(&b, "", 0) == 0 ? lh_buf_steal(&b) : NULL;
    if (!s) {
        lh_buf_free(&b);
        return nomem(c);
    }
    *out = s;
    return 0;
}

static const char *type_what(enum lh_opt_type t)
{
    switch (t) {
    case LH_OPT_STR:      return "a string";
    case LH_OPT_INT:      return "an integer";
    case LH_OPT_DOUBLE:   return "a number";
    case LH_OPT_BOOL:     return "a boolean";
    case LH_OPT_SIZE:     return "a size";
    case LH_OPT_DURATION: return "a duration";
    case LH_OPT_ENUM:     return "one of the choices";
    case LH_OPT_STRLIST:  return "a list of strings";
    case LH_OPT_STRMAP:   return "a mapping of strings";
    case LH_OPT_SECTION:  return "a mapping";
    case LH_OPT_LIST:     return "a sequence of mappings";
    default:              return "a value";
    }
}

static void strlist_free(struct lh_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void strmap_free(struct lh_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    m->keys = m->values = NULL;
    m->n = 0;
}

static int bind_map(struct bctx *c, const struct lh_opt *opts, char *base,
                    const struct node *map, int line);
static int bind_value(struct bctx *c, const struct lh_opt *o, void *dst,
                      const struct node *nd, int line);

static int bind_scalar(struct bctx *c, const struct lh_opt *o, void *dst, const struct node *nd)
{
    char *s;
    int rc = scalar_text(c, nd, type_what(o->type), &s);
    if (rc < 0)
        return rc;
    switch (o->type) {
    case LH_OPT_STR:
        free(*(char **)dst);
        *(char **)dst = s;
        return 0;
    case LH_OPT_INT: {
        int64_t v;
        rc = parse_int64(s, &v);
        if (rc == LH_ETOOBIG)
            rc = fail(c, nd->line, "integer \"%s\" out of range", s);
        else if (rc < 0)
            rc = fail(c, nd->line, "invalid integer \"%s\"", s);
        else
            *(int64_t *)dst = v;
        break;
    }
    case LH_OPT_DOUBLE: {
        double v;
        if (parse_double(s, &v) < 0)
            rc = fail(c, nd->line, "invalid number \"%s\"", s);
        else
            *(double *)dst = v;
        break;
    }
    case LH_OPT_BOOL: {
        int v;
        if (lh_conf_parse_bool(s, &v) < 0)
            rc = fail(c, nd->line, "invalid boolean \"%s\" (use true/false, yes/no, on/off, "
                      "1/0)", s);
        else
            *(int *)dst = v;
        break;
    }
    case LH_OPT_SIZE: {
        uint64_t v;
        if (lh_conf_parse_size(s, &v) < 0)
            rc = fail(c, nd->line, "invalid size \"%s\" (bytes, or a number with k, M, G, T "
                      "or KiB, MiB, GiB, TiB)", s);
        else
            *(uint64_t *)dst = v;
        break;
    }
    case LH_OPT_DURATION: {
        int64_t v;
        if (lh_conf_parse_duration_ms(s, &v) < 0)
            rc = fail(c, nd->line, "invalid duration \"%s\" (e.g. 250ms, 2s, 5m, 1h, 7d, "
                      "1m30s; a bare number is seconds)", s);
        else
            *(int64_t *)dst = v;
        break;
    }
    case LH_OPT_ENUM: {
        char list[256];
        int i = o->choices ? enum_index(o->choices, s) : -1;
        if (!o->choices) {
            rc = fail(c, nd->line, "option table error: ENUM without choices");
        } else if (i < 0) {
            enum_list(o->choices, list, sizeof(list));
            rc = fail(c, nd->line, "invalid value \"%s\" (choices: %s)", s, list);
        } else {
            *(int *)dst = i;
        }
        break;
    }
    default:
        rc = fail(c, nd->line, "option table error: type %d is not a scalar", (int)o->type);
        break;
    }
    free(s);
    return rc;
}

static int bind_strlist(struct bctx *c, struct lh_strlist *l, const struct node *nd)
{
    strlist_free(l);
    if (nd->kind == NODE_MAP)
        return fail(c, nd->line, "expected a list of strings, got a mapping");
    size_t n = nd->kind == NODE_SCALAR ? 1 : nd->n;
    if (n && !(l->v = calloc(n, sizeof(char *))))
        return nomem(c);
    if (nd->kind == NODE_SCALAR) {
        int rc = scalar_text(c, nd, "a string", &l->v[0]);
        if (rc == 0)
            l->n = 1;
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const struct node *it = nd->kids[i];
        size_t old = path_push_index(c, i);
        int rc = node_is_null(it) ? fail(c, it->line, "empty list item")
                                  : scalar_text(c, it, "a string", &l->v[i]);
        path_pop(c, old);
        if (rc < 0)
            return rc;
        l->n = i + 1;
    }
    return 0;
}

static int check_duplicates(struct bctx *c, const struct node *map)
{
    for (size_t i = 2; i < map->n; i += 2)
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(map->kids[i]->s, map->kids[j]->s) == 0) {
                size_t old = path_push(c, ".", map->kids[i]->s);
                int rc = fail(c, map->kids[i]->line, "duplicate key (first at line %d)",
                              map->kids[j]->line);
                path_pop(c, old);
                return rc;
            }
    return 0;
}

static int bind_strmap(struct bctx *c, struct lh_strmap *m, const struct node *nd)
{
    strmap_free(m);
    if (nd->kind != NODE_MAP)
        return fail(c, nd->line, "expected a mapping of strings, got %s", node_kind_name(nd));
    int rc = check_duplicates(c, nd);
    if (rc < 0)
        return rc;
    size_t n = nd->n / 2;
    if (n && (!(m->keys = calloc(n, sizeof(char *))) || !(m->values = calloc(n, sizeof(char *)))))
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        const struct node *k = nd->kids[2 * i], *v = nd->kids[2 * i + 1];
        size_t old = path_push(c, ".", k->s);
        char *val = NULL;
        if (node_is_null(v))
            rc = (val = strdup("")) ? 0 : nomem(c);
        else
            rc = scalar_text(c, v, "a string", &val);
        path_pop(c, old);
        if (rc < 0)
            return rc;
        if (!(m->keys[i] = strdup(k->s))) {
            free(val);
            return nomem(c);
        }
        m->values[i] = val;
        m->n = i + 1;
    }
    return 0;
}

/* Binds the defaults of a LIST's item table into a scratch item, so that a
 * bad default there is reported even when the list is empty. */
static int check_item_defaults(struct bctx *c, const struct lh_opt *o, int line)
{
    void *scratch = calloc(1, o->item_size);
    if (!scratch)
        return nomem(c);
    size_t old = path_push(c, "", "[]");
    c->lax++;
    int rc = bind_map(c, o->sub, scratch, NULL, line);
    c->lax--;
    path_pop(c, old);
    lh_conf_free(o->sub, scratch);
    free(scratch);
    return rc;
}

static int bind_list(struct bctx *c, const struct lh_opt *o, struct lh_conf_list *l,
                     const struct node *nd)
{
    if (nd->kind != NODE_SEQ)
        return fail(c, nd->line, "expected a sequence of mappings, got %s", node_kind_name(nd));
    if (nd->n) {
        if (nd->n > SIZE_MAX / o->item_size)
            return nomem(c);
        if (!(l->items = calloc(nd->n, o->item_size)))
            return nomem(c);
        l->n = nd->n;     /* zeroed items are safe to free */
    }
    for (size_t i = 0; i < nd->n; i++) {
        const struct node *it = nd->kids[i];
        size_t old = path_push_index(c, i);
        int rc = it->kind == NODE_MAP
                     ? bind_map(c, o->sub, (char *)l->items + i * o->item_size, it, it->line)
                     : fail(c, it->line, "expected a mapping, got %s",
                            node_is_null(it) ? "an empty item" : node_kind_name(it));
        path_pop(c, old);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int bind_value(struct bctx *c, const struct lh_opt *o, void *dst,
                      const struct node *nd, int line)
{
    switch (o->type) {
    case LH_OPT_STRLIST:
        return bind_strlist(c, dst, nd);
    case LH_OPT_STRMAP:
        return bind_strmap(c, dst, nd);
    case LH_OPT_SECTION:
        if (nd && nd->kind != NODE_MAP)
            return fail(c, nd->line, "expected a mapping (a section), got %s",
                        node_kind_name(nd));
        return bind_map(c, o->sub, dst, nd, nd ? nd->line : line);
    case LH_OPT_LIST: {
        int rc = nd ? bind_list(c, o, dst, nd) : 0;
        return rc < 0 ? rc : check_item_defaults(c, o, nd ? nd->line : line);
    }
    default:
        return bind_scalar(c, o, dst, nd);
    }
}

static int bind_default(struct bctx *c, const struct lh_opt *o, void *dst, int line)
{
    struct node *root = NULL;
    struct lh_err perr = {0};
    int rc = parse_tree("default", o->def, strlen(o->def), &root, &perr);
    if (rc == LH_ENOMEM)
        return nomem(c);
    const char *saved = c->def;
    int saved_line = c->def_line;
    c->def = o->def;
    c->def_line = line;
    if (rc < 0) {
        rc = fail(c, line, "%s", perr.msg);
    } else if (node_is_null(root)) {
        if (o->type == LH_OPT_STR)              /* def "" means the empty string */
            rc = (*(char **)dst = strdup("")) ? 0 : nomem(c);
        else if (o->type == LH_OPT_SECTION || o->type == LH_OPT_LIST)
            rc = bind_value(c, o, dst, NULL, line);
        else
            rc = 0;
    } else {
        rc = bind_value(c, o, dst, root, line);
    }
    c->def = saved;
    c->def_line = saved_line;
    node_free(root);
    return rc;
}

static int check_table(struct bctx *c, const struct lh_opt *o, int line)
{
    if (!o->key)
        return fail(c, line, "option table error: an entry without a key");
    if ((o->type == LH_OPT_SECTION || o->type == LH_OPT_LIST) && !o->sub)
        return fail(c, line, "option table error: %s without .sub", o->key);
    if (o->type == LH_OPT_LIST && !o->item_size)
        return fail(c, line, "option table error: %s without .item_size", o->key);
    if (o->type < LH_OPT_STR || o->type > LH_OPT_LIST)
        return fail(c, line, "option table error: %s has an unknown type", o->key);
    return 0;
}

static int bind_map(struct bctx *c, const struct lh_opt *opts, char *base,
                    const struct node *map, int line)
{
    int rc;
    for (const struct lh_opt *o = opts; o->type != LH_OPT_END; o++)
        if ((rc = check_table(c, o, line)) < 0)
            return rc;
    if (map) {
        for (size_t i = 0; i < map->n; i += 2) {
            const struct node *k = map->kids[i];
            const struct lh_opt *o = opts;
            while (o->type != LH_OPT_END && strcmp(o->key, k->s) != 0)
                o++;
            if (o->type != LH_OPT_END)
                continue;
            char known[400];
            size_t kl = 0;
            known[0] = '\0';
            for (o = opts; o->type != LH_OPT_END && kl < sizeof(known); o++)
                kl += (size_t)snprintf(known + kl, sizeof(known) - kl, "%s%s",
                                       o == opts ? "" : ", ", o->key);
            size_t old = path_push(c, ".", k->s);
            rc = fail(c, k->line, "unknown key (known: %s)", opts->type ? known : "none");
            path_pop(c, old);
            return rc;
        }
        if ((rc = check_duplicates(c, map)) < 0)
            return rc;
    }
    for (const struct lh_opt *o = opts; o->type != LH_OPT_END; o++) {
        const struct node *v = map_get(map, o->key);
        void *dst = base + o->offset;
        size_t old = path_push(c, ".", o->key);
        if (v && !node_is_null(v))
            rc = bind_value(c, o, dst, v, line);
        else if ((o->flags & LH_OPT_REQUIRED) && !c->lax)
            rc = v ? fail(c, v->line, "a value is required")
                   : fail(c, line, "missing required key");
        else if (o->def)
            rc = bind_default(c, o, dst, v ? v->line : line);
        else if (o->type == LH_OPT_SECTION || o->type == LH_OPT_LIST)
            rc = bind_value(c, o, dst, NULL, v ? v->line : line);
        else
            rc = 0;
        path_pop(c, old);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- public API ----------------------------------------------------------- */

int lh_conf_load_string(const char *name, const char *yaml, size_t len,
                        const struct lh_opt *opts, void *out, struct lh_err *err)
{
    if (!name)
        name = "(config)";
    struct node *root = NULL;
    int rc = parse_tree(name, yaml ? yaml : "", yaml ? len : 0, &root, err);
    if (rc == 0) {
        struct bctx c = { .name = name, .err = err };
        if (root && root->kind != NODE_MAP && !node_is_null(root))
            rc = lh_err_set(err, LH_EINVAL, "%s:%d: the top level must be a mapping of keys, "
                            "got %s", name, root->line, node_kind_name(root));
        else
            rc = bind_map(&c, opts, out, root && root->kind == NODE_MAP ? root : NULL,
                          root ? root->line : 1);
    }
    node_free(root);
    if (rc < 0)
        lh_conf_free(opts, out);
    return rc;
}

int lh_conf_load_file(const char *path, const struct lh_opt *opts, void *out,
                      struct lh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        lh_conf_free(opts, out);
        return lh_err_errno(err, LH_EIO, e, "open(%s)", path);
    }
    struct lh_buf b = LH_BUF_INIT;
    int rc = 0;
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > MAX_FILE_BYTES) {
            rc = lh_err_set(err, LH_ETOOBIG, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
            break;
        }
        if (lh_buf_append(&b, chunk, n) < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "%s: out of memory", path);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = lh_err_errno(err, LH_EIO, errno, "read(%s)", path);
    fclose(f);
    if (rc == 0)
        rc = lh_conf_load_string(path, b.data ? b.data : "", b.len, opts, out, err);
    else
        lh_conf_free(opts, out);
    lh_buf_free(&b);
    return rc;
}

void lh_conf_free(const struct lh_opt *opts, void *out)
{
    if (!opts || !out)
        return;
    for (const struct lh_opt *o = opts; o->type != LH_OPT_END; o++) {
        void *p = (char *)out + o->offset;
        switch (o->type) {
        case LH_OPT_STR:
            free(*(char **)p);
            *(char **)p = NULL;
            break;
        case LH_OPT_STRLIST:
            strlist_free(p);
            break;
        case LH_OPT_STRMAP:
            strmap_free(p);
            break;
        case LH_OPT_SECTION:
            lh_conf_free(o->sub, p);
            break;
        case LH_OPT_LIST: {
            struct lh_conf_list *l = p;
            for (size_t i = 0; o->sub && i < l->n; i++)
                lh_conf_free(o->sub, (char *)l->items + i * o->item_size);
            free(l->items);
            l->items = NULL;
            l->n = 0;
            break;
        }
        default:
            break;
        }
    }
}

const char *lh_strmap_get(const struct lh_strmap *m, const char *key)
{
    if (!m || !key)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
    return NULL;
}

/* ---- help ----------------------------------------------------------------- */

/* Writes the indentation of a line; the first line of a list item gets "- ". */
static void help_indent(FILE *f, int indent, int *dash)
{
    if (*dash) {
        fprintf(f, "%*s- ", indent - 2, "");
        *dash = 0;
    } else {
        fprintf(f, "%*s", indent, "");
    }
}

static void help_table(FILE *f, const struct lh_opt *opts, int indent, int dash)
{
    for (const struct lh_opt *o = opts; o->type != LH_OPT_END; o++) {
        char what[300];
        switch (o->type) {
        case LH_OPT_STR:      snprintf(what, sizeof(what), "string"); break;
        case LH_OPT_INT:      snprintf(what, sizeof(what), "integer"); break;
        case LH_OPT_DOUBLE:   snprintf(what, sizeof(what), "number"); break;
        case LH_OPT_BOOL:     snprintf(what, sizeof(what), "true/false"); break;
        case LH_OPT_SIZE:     snprintf(what, sizeof(what), "size: 4096, 64KiB, 1MiB, 2GiB"); break;
        case LH_OPT_DURATION: snprintf(what, sizeof(what), "duration: 250ms, 2s, 5m, 1h, 7d");
                              break;
        case LH_OPT_ENUM: {
            char list[256];
            enum_list(o->choices ? o->choices : "", list, sizeof(list));
            snprintf(what, sizeof(what), "one of: %s", list);
            break;
        }
        case LH_OPT_STRLIST:  snprintf(what, sizeof(what), "list of strings"); break;
        case LH_OPT_STRMAP:   snprintf(what, sizeof(what), "mapping of strings"); break;
        case LH_OPT_SECTION:  snprintf(what, sizeof(what), "section"); break;
        case LH_OPT_LIST:     snprintf(what, sizeof(what), "list of mappings"); break;
        default:              snprintf(what, sizeof(what), "?"); break;
        }
        /* The help text, one comment line per line. */
        const char *h = o->help ? o->help : "";
        do {
            const char *nl = strchr(h, '\n');
            int l = nl ? (int)(nl - h) : (int)strlen(h);
            help_indent(f, indent, &dash);
            fprintf(f, "#%s%.*s", l ? " " : "", l, h);
            if (!nl)
                fprintf(f, " (%s%s%s)", what,
                        o->flags & LH_OPT_REQUIRED ? ", required" : "",
                        o->flags & LH_OPT_SECRET ? ", secret" : "");
            fputc('\n', f);
            h = nl ? nl + 1 : NULL;
        } while (h);
        help_indent(f, indent, &dash);
        if (o->type == LH_OPT_SECTION) {
            fprintf(f, "%s:\n", o->key);
            if (o->sub)
                help_table(f, o->sub, indent + 2, 0);
        } else if (o->type == LH_OPT_LIST) {
            if (o->def && !(o->flags & LH_OPT_SECRET))
                fprintf(f, "%s:   # default: %s; an item:\n", o->key, o->def);
            else
                fprintf(f, "%s:   # an item:\n", o->key);
            if (o->sub)
                help_table(f, o->sub, indent + 4, 1);
        } else if (o->def && !(o->flags & LH_OPT_SECRET)) {
            fprintf(f, "%s: %s\n", o->key, o->def);
        } else {
            fprintf(f, "%s:\n", o->key);
        }
    }
}

void lh_conf_print_help(FILE *f, const struct lh_opt *opts)
{
    if (f && opts)
        help_table(f, opts, 0, 0);
}
