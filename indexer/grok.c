/* grok.c - grok pattern library and matcher on PCRE2 JIT (see grok.h).
 *
 * Each top-level pattern is expanded once at start-up: `%{NAME}` becomes a
 * non-capturing group of NAME's expansion, `%{NAME:field}` and the inline
 * form `(?<field>...)` become named groups `g<N>` whose field names are kept
 * in a side table. Field names may therefore contain dots (`http.status`)
 * or repeat, which PCRE2 group names could not. Matching is in byte mode:
 * log lines are not guaranteed to be valid UTF-8. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "grok.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/buf.h"

struct def {
    char *name;
    char *regex;
    char *origin;      /* "file:line" for messages */
    int visiting;      /* cycle detection during expansion */
};

struct field_map {
    uint32_t group;    /* PCRE2 group number */
    char *field;
};

struct top {
    char *name;
    char *expansion;
    pcre2_code *re;
    struct field_map *fields;
    size_t nfields;
};

struct lh_grok {
    struct def *defs;
    size_t ndefs, capdefs;
    struct top *tops;
    size_t ntops;
    size_t max_fields;
};

struct lh_grok_matcher {
    const struct lh_grok *g;
    pcre2_match_data **md;          /* one per top-level pattern */
    struct lh_grok_capture *caps;
    size_t ncaps;
};

static struct def *find_def(const struct lh_grok *g, const char *name, size_t n)
{
    for (size_t i = g->ndefs; i-- > 0;)   /* later definitions override earlier ones */
        if (strlen(g->defs[i].name) == n && memcmp(g->defs[i].name, name, n) == 0)
            return &g->defs[i];
    return NULL;
}

static int add_def(struct lh_grok *g, const char *name, size_t nlen, const char *regex,
                   size_t rlen, const char *origin)
{
    if (g->ndefs == g->capdefs) {
        size_t cap = g->capdefs ? g->capdefs * 2 : 64;
        struct def *v = realloc(g->defs, cap * sizeof(*v));
        if (!v)
            return LH_ENOMEM;
        g->defs = v;
        g->capdefs = cap;
    }
    struct def *d = &g->defs[g->ndefs];
    memset(d, 0, sizeof(*d));
    d->name = strndup(name, nlen);
    d->regex = strndup(regex, rlen);
    d->origin = strdup(origin);
    g->ndefs++;
    if (!d->name || !d->regex || !d->origin)
        return LH_ENOMEM;
    return 0;
}

/* Parses definition lines `NAME REGEX`. */
static int load_text(struct lh_grok *g, const char *file, const char *text, struct lh_err *err)
{
    const char *p = text;
    int lineno = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        lineno++;
        const char *s = p, *e = p + len;
        p = eol ? eol + 1 : p + len;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        const char *name = s;
        while (s < e && (isalnum((unsigned char)*s) || *s == '_'))
            s++;
        size_t nlen = (size_t)(s - name);
        if (nlen == 0 || s == e || !isspace((unsigned char)*s))
            return lh_err_set(err, LH_EINVAL, "%s:%d: expected `NAME REGEX`", file, lineno);
        while (s < e && isspace((unsigned char)*s))
            s++;
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%d", file, lineno);
        if (add_def(g, name, nlen, s, (size_t)(e - s), origin) < 0)
            return lh_err_set(err, LH_ENOMEM, "grok: out of memory");
    }
    return 0;
}

static int name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }
static int field_char(char c) { return name_char(c) || c == '.' || c == '-' || c == '@'; }

struct expand_ctx {
    struct lh_grok *g;
    struct lh_buf out;
    char **fields;      /* field name of group g<i> */
    size_t nfields, capfields;
    const char *top;
    struct lh_err *err;
};

static int add_field(struct expand_ctx *x, const char *f, size_t n)
{
    if (x->nfields == x->capfields) {
        size_t cap = x->capfields ? x->capfields * 2 : 16;
        char **v = realloc(x->fields, cap * sizeof(*v));
        if (!v)
            return LH_ENOMEM;
        x->fields = v;
        x->capfields = cap;
    }
    if (!(x->fields[x->nfields] = strndup(f, n)))
        return LH_ENOMEM;
    return lh_buf_printf(&x->out, "(?<g%zu>", x->nfields++);
}

/* References may repeat at every level (A = %{B}%{B}, B = %{C}%{C}, ...):
 * the expansion is cut off at this size, which PCRE2 could not compile
 * anyway, before it takes memory and time exponential in the depth. */
#define MAX_EXPANSION (64 * 1024)

static int expand(struct expand_ctx *x, const char *re, const char *origin, int depth)
{
    if (depth > 64)
        return lh_err_set(x->err, LH_EINVAL, "grok %s: nesting too deep at %s", x->top, origin);
    for (const char *p = re; *p;) {
        if (x->out.len > MAX_EXPANSION)
            return lh_err_set(x->err, LH_EINVAL, "grok %s: expands to more than %d bytes at %s",
                              x->top, MAX_EXPANSION, origin);
        if (p[0] == '\\' && p[1]) {
            if (lh_buf_append(&x->out, p, 2) < 0)
                return LH_ENOMEM;
            p += 2;
        } else if (p[0] == '%' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (!close)
                return lh_err_set(x->err, LH_EINVAL, "%s: unterminated %%{ in pattern", origin);
            const char *name = p + 2, *q = name;
            while (q < close && name_char(*q))
                q++;
            size_t nlen = (size_t)(q - name);
            const char *field = NULL;
            size_t flen = 0;
            if (q < close && *q == ':') {
                field = ++q;
                while (q < close && field_char(*q))
                    q++;
                flen = (size_t)(q - field);
                if (q < close && *q == ':')   /* a type suffix (:int) is accepted and ignored */
                    q = close;
            }
            if (nlen == 0 || q != close || (field && flen == 0))
                return lh_err_set(x->err, LH_EINVAL, "%s: bad reference %%{%.*s}", origin,
                                  (int)(close - name), name);
            struct def *d = find_def(x->g, name, nlen);
            if (!d)
                return lh_err_set(x->err, LH_EINVAL, "%s: unknown pattern %%{%.*s}", origin,
                                  (int)nlen, name);
            if (d->visiting)
                return lh_err_set(x->err, LH_EINVAL, "%s: %s refers to itself", origin, d->name);
            int rc = field ? add_field(x, field, flen) : lh_buf_puts(&x->out, "(?:");
            if (rc < 0)
                return rc;
            d->visiting = 1;
            rc = expand(x, d->regex, d->origin, depth + 1);
            d->visiting = 0;
            if (rc < 0)
                return rc;
            if (lh_buf_putc(&x->out, ')') < 0)
                return LH_ENOMEM;
            p = close + 1;
        } else if (p[0] == '(' && p[1] == '?' && p[2] == '<' && p[3] != '=' && p[3] != '!') {
            const char *f = p + 3, *q = f;
            while (*q && field_char(*q))
                q++;
            if (*q != '>' || q == f)
                return lh_err_set(x->err, LH_EINVAL, "%s: bad named group", origin);
            int rc = add_field(x, f, (size_t)(q - f));
            if (rc < 0)
                return rc;
            p = q + 1;
        } else {
            if (lh_buf_putc(&x->out, *p) < 0)
                return LH_ENOMEM;
            p++;
        }
    }
    return 0;
}

static int compile_top(struct lh_grok *g, struct top *t, const char *name, struct lh_err *err)
{
    struct expand_ctx x = { .g = g, .top = name, .err = err };
    int rc = LH_ENOMEM;
    t->name = strdup(name);
    struct def *d = find_def(g, name, strlen(name));
    if (!t->name)
        goto out;
    if (!d) {
        rc = lh_err_set(err, LH_EINVAL, "grok: unknown pattern %s", name);
        goto out;
    }
    d->visiting = 1;
    rc = expand(&x, d->regex, d->origin, 0);
    d->visiting = 0;
    if (rc < 0)
        goto out;
    int ecode;
    PCRE2_SIZE eoff;
    t->re = pcre2_compile((PCRE2_SPTR)x.out.data, x.out.len, 0, &ecode, &eoff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof(msg));
        rc = lh_err_set(err, LH_EINVAL, "grok %s (%s): %s at offset %zu of its expansion",
                        name, d->origin, (char *)msg, (size_t)eoff);
        goto out;
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);   /* falls back to the interpreter */
    t->fields = calloc(x.nfields ? x.nfields : 1, sizeof(*t->fields));
    if (!t->fields)
        goto out;
    for (size_t i = 0; i < x.nfields; i++) {
        char gname[32];
        snprintf(gname, sizeof(gname), "g%zu", i);
        int num = pcre2_substring_number_from_name(t->re, (PCRE2_SPTR)gname);
        t->fields[i].group = (uint32_t)(num > 0 ? num : 0);
        t->fields[i].field = x.fields[i];
        x.fields[i] = NULL;
    }
    t->nfields = x.nfields;
    if (t->nfields > g->max_fields)
        g->max_fields = t->nfields;
    t->expansion = lh_buf_steal(&x.out);
    rc = t->expansion ? 0 : LH_ENOMEM;
out:
    for (size_t i = 0; i < x.nfields; i++)
        free(x.fields[i]);
    free(x.fields);
    lh_buf_free(&x.out);
    if (rc == LH_ENOMEM)
        lh_err_set(err, LH_ENOMEM, "grok: out of memory");
    return rc;
}

void lh_grok_destroy(struct lh_grok *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->ndefs; i++) {
        free(g->defs[i].name);
        free(g->defs[i].regex);
        free(g->defs[i].origin);
    }
    free(g->defs);
    for (size_t i = 0; i < g->ntops; i++) {
        struct top *t = &g->tops[i];
        free(t->name);
        free(t->expansion);
        pcre2_code_free(t->re);
        for (size_t k = 0; k < t->nfields; k++)
            free(t->fields[k].field);
        free(t->fields);
    }
    free(g->tops);
    free(g);
}

static int finish(struct lh_grok *g, const char *const *match, size_t nmatch,
                  struct lh_grok **out, struct lh_err *err)
{
    int rc = 0;
    g->tops = calloc(nmatch ? nmatch : 1, sizeof(*g->tops));
    if (!g->tops)
        rc = lh_err_set(err, LH_ENOMEM, "grok: out of memory");
    for (size_t i = 0; rc == 0 && i < nmatch; i++) {
        g->ntops = i + 1;
        rc = compile_top(g, &g->tops[i], match[i], err);
    }
    if (rc < 0) {
        lh_grok_destroy(g);
        return rc;
    }
    *out = g;
    return 0;
}

int lh_grok_create_from_text(const char *name, const char *defs, const char *const *match,
                             size_t nmatch, struct lh_grok **out, struct lh_err *err)
{
    *out = NULL;
    struct lh_grok *g = calloc(1, sizeof(*g));
    if (!g)
        return lh_err_set(err, LH_ENOMEM, "grok: out of memory");
    int rc = load_text(g, name, defs, err);
    if (rc < 0) {
        lh_grok_destroy(g);
        return rc;
    }
    return finish(g, match, nmatch, out, err);
}

static int read_file(const char *path, char **out, struct lh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lh_err_errno(err, LH_EIO, errno, "open(%s)", path);
    struct lh_buf b = LH_BUF_INIT;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = lh_buf_append(&b, chunk, n);
    if (rc == 0 && ferror(f))
        rc = lh_err_errno(err, LH_EIO, errno, "read(%s)", path);
    fclose(f);
    if (rc == 0 && !(*out = lh_buf_steal(&b)))
        rc = LH_ENOMEM;
    if (rc == LH_ENOMEM)
        lh_err_set(err, LH_ENOMEM, "grok: out of memory");
    lh_buf_free(&b);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int lh_grok_create(const char *dir, const char *const *match, size_t nmatch,
                   struct lh_grok **out, struct lh_err *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return lh_err_errno(err, LH_EIO, errno, "grok patterns: opendir(%s)", dir);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".grok") != 0)
            continue;
        char **v = realloc(names, (n + 1) * sizeof(*v));
        if (!v || !(v[n] = strdup(de->d_name))) {
            if (v)
                names = v;
            rc = lh_err_set(err, LH_ENOMEM, "grok: out of memory");
            break;
        }
        names = v;
        n++;
    }
    closedir(d);
    struct lh_grok *g = rc == 0 ? calloc(1, sizeof(*g)) : NULL;
    if (rc == 0 && !g)
        rc = lh_err_set(err, LH_ENOMEM, "grok: out of memory");
    if (rc == 0 && n == 0)
        rc = lh_err_set(err, LH_EINVAL, "grok patterns: no *.grok file in %s", dir);
    if (names)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096], *text = NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        rc = read_file(path, &text, err);
        if (rc == 0)
            rc = load_text(g, path, text, err);
        free(text);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc < 0) {
        lh_grok_destroy(g);
        return rc;
    }
    return finish(g, match, nmatch, out, err);
}

size_t lh_grok_pattern_count(const struct lh_grok *g) { return g->ntops; }

const char *lh_grok_pattern_name(const struct lh_grok *g, size_t i)
{
    return i < g->ntops ? g->tops[i].name : NULL;
}

const char *lh_grok_expansion(const struct lh_grok *g, const char *name)
{
    for (size_t i = 0; i < g->ntops; i++)
        if (strcmp(g->tops[i].name, name) == 0)
            return g->tops[i].expansion;
    return NULL;
}

int lh_grok_matcher_create(const struct lh_grok *g, struct lh_grok_matcher **out)
{
    *out = NULL;
    struct lh_grok_matcher *m = calloc(1, sizeof(*m));
    if (!m)
        return LH_ENOMEM;
    m->g = g;
    m->md = calloc(g->ntops ? g->ntops : 1, sizeof(*m->md));
    m->caps = calloc(g->max_fields ? g->max_fields : 1, sizeof(*m->caps));
    if (!m->md || !m->caps) {
        lh_grok_matcher_destroy(m);
        return LH_ENOMEM;
    }
    for (size_t i = 0; i < g->ntops; i++) {
        if (!(m->md[i] = pcre2_match_data_create_from_pattern(g->tops[i].re, NULL))) {
            lh_grok_matcher_destroy(m);
            return LH_ENOMEM;
        }
    }
    *out = m;
    return 0;
}

void lh_grok_matcher_destroy(struct lh_grok_matcher *m)
{
    if (!m)
        return;
    if (m->md)
        for (size_t i = 0; i < m->g->ntops; i++)
            pcre2_match_data_free(m->md[i]);
    free(m->md);
    free(m->caps);
    free(m);
}

int lh_grok_match(struct lh_grok_matcher *m, const char *line, size_t n)
{
    const struct lh_grok *g = m->g;
    m->ncaps = 0;
    for (size_t i = 0; i < g->ntops; i++) {
        const struct top *t = &g->tops[i];
        if (pcre2_match(t->re, (PCRE2_SPTR)line, n, 0, 0, m->md[i], NULL) < 0)
            continue;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md[i]);
        uint32_t nov = pcre2_get_ovector_count(m->md[i]);
        for (size_t k = 0; k < t->nfields; k++) {
            uint32_t grp = t->fields[k].group;
            if (grp == 0 || grp >= nov || ov[2 * grp] == PCRE2_UNSET)
                continue;
            struct lh_grok_capture *c = &m->caps[m->ncaps++];
            c->field = t->fields[k].field;
            c->value = line + ov[2 * grp];
            c->len = ov[2 * grp + 1] - ov[2 * grp];
        }
        return (int)i;
    }
    return -1;
}

const struct lh_grok_capture *lh_grok_captures(const struct lh_grok_matcher *m, size_t *n)
{
    *n = m->ncaps;
    return m->caps;
}
