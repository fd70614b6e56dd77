/* parse.c - the parse stage: JSON lines, grok, logfmt (see parse.h). */
#include "parse.h"

#include <stdlib.h>
#include <string.h>

#include "grok.h"
#include "lh/buf.h"
#include "lh/json.h"
#include "lh/time.h"
#include "timestamp.h"

const struct lh_opt lh_parse_opts[] = {
    { LH_OPT_BOOL, "json", "true", offsetof(struct lh_parse_config, json),
      "parse lines that are JSON objects" },
    { LH_OPT_BOOL, "logfmt", "true", offsetof(struct lh_parse_config, logfmt),
      "parse key=value (logfmt) lines" },
    { LH_OPT_STR, "patterns_dir", "config/patterns",
      offsetof(struct lh_parse_config, patterns_dir), "directory of *.grok pattern files" },
    { LH_OPT_STRLIST, "grok",
      "[LOGHAUL_APP, JAVA_LOG4J, JAVA_LOGBACK, PYTHON_LOG, PYTHON_BASIC, KLOG, SYSLOG5424, "
      "SYSLOG3164, APACHE_ERROR, ACCESS_LOG]",
      offsetof(struct lh_parse_config, grok), "top-level grok patterns, tried in order" },
    { LH_OPT_INT, "max_meta_keys", "128", offsetof(struct lh_parse_config, max_meta_keys),
      "custom_metadata keys kept per event" },
    { LH_OPT_INT, "max_depth", "32", offsetof(struct lh_parse_config, max_depth),
      "JSON nesting limit for lines" },
    { 0 }
};

struct lh_parser {
    struct lh_parse_config cfg;   /* json, logfmt, limits (strings not kept) */
    struct lh_grok *grok;
};

struct meta_vec {
    struct lh_kv *v;
    size_t n, cap;
};

struct lh_parse_worker {
    const struct lh_parser *p;
    struct lh_grok_matcher *m;
    int last_grok;
    struct meta_vec meta;         /* parsed metadata, before it moves to the arena */
    struct lh_buf key;            /* flattened key being built */
};

/* Which event field a parsed key fills. */
enum field {
    F_NONE, F_TS, F_LEVEL, F_MESSAGE, F_SERVICE, F_TRACE, F_SPAN, F_USER,
};

static enum field field_of(const char *k, size_t n)
{
    static const struct { const char *name; enum field f; } map[] = {
        { "timestamp", F_TS }, { "ts", F_TS }, { "time", F_TS }, { "@timestamp", F_TS },
        { "level", F_LEVEL }, { "lvl", F_LEVEL }, { "severity", F_LEVEL },
        { "loglevel", F_LEVEL }, { "log.level", F_LEVEL },
        { "msg", F_MESSAGE }, { "message", F_MESSAGE },
        { "service", F_SERVICE }, { "service.name", F_SERVICE }, { "svc", F_SERVICE },
        { "trace_id", F_TRACE }, { "traceId", F_TRACE }, { "traceID", F_TRACE },
        { "trace.id", F_TRACE },
        { "span_id", F_SPAN }, { "spanId", F_SPAN }, { "spanID", F_SPAN }, { "span.id", F_SPAN },
        { "user_id", F_USER }, { "userId", F_USER }, { "user.id", F_USER },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].name) == n && memcmp(map[i].name, k, n) == 0)
            return map[i].f;
    return F_NONE;
}

int lh_parser_create(const struct lh_parse_config *cfg, struct lh_parser **out,
                     struct lh_err *err)
{
    *out = NULL;
    struct lh_parser *p = calloc(1, sizeof(*p));
    if (!p)
        return lh_err_set(err, LH_ENOMEM, "parser: out of memory");
    p->cfg.json = cfg->json;
    p->cfg.logfmt = cfg->logfmt;
    p->cfg.max_meta_keys = cfg->max_meta_keys > 0 ? cfg->max_meta_keys : 128;
    p->cfg.max_depth = cfg->max_depth > 0 ? cfg->max_depth : 32;
    if (cfg->grok.n) {
        int rc = lh_grok_create(cfg->patterns_dir ? cfg->patterns_dir : "config/patterns",
                                (const char *const *)cfg->grok.v, cfg->grok.n, &p->grok, err);
        if (rc < 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

void lh_parser_destroy(struct lh_parser *p)
{
    if (!p)
        return;
    lh_grok_destroy(p->grok);
    free(p);
}

size_t lh_parser_grok_count(const struct lh_parser *p)
{
    return p->grok ? lh_grok_pattern_count(p->grok) : 0;
}

const char *lh_parser_grok_name(const struct lh_parser *p, size_t i)
{
    return p->grok ? lh_grok_pattern_name(p->grok, i) : NULL;
}

int lh_parse_worker_create(const struct lh_parser *p, struct lh_parse_worker **out)
{
    *out = NULL;
    struct lh_parse_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return LH_ENOMEM;
    w->p = p;
    if (p->grok && lh_grok_matcher_create(p->grok, &w->m) < 0) {
        free(w);
        return LH_ENOMEM;
    }
    *out = w;
    return 0;
}

void lh_parse_worker_destroy(struct lh_parse_worker *w)
{
    if (!w)
        return;
    lh_grok_matcher_destroy(w->m);
    free(w->meta.v);
    lh_buf_free(&w->key);
    free(w);
}

int lh_parse_last_grok(const struct lh_parse_worker *w) { return w->last_grok; }

static int meta_push(struct lh_parse_worker *w, const char *k, const char *v)
{
    struct meta_vec *m = &w->meta;
    if ((int64_t)m->n >= w->p->cfg.max_meta_keys)
        return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct lh_kv *nv = realloc(m->v, cap * sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        m->v = nv;
        m->cap = cap;
    }
    m->v[m->n++] = (struct lh_kv){ k, v };
    return 0;
}

/* Level names as formats write them, plus klog's single letters. */
static enum lh_level level_of(const char *s, size_t n)
{
    if (n == 1) {
        switch (s[0] | 0x20) {
        case 'i': return LH_LEVEL_INFO;
        case 'w': return LH_LEVEL_WARN;
        case 'e': return LH_LEVEL_ERROR;
        case 'f': return LH_LEVEL_FATAL;
        case 'd': return LH_LEVEL_DEBUG;
        case 't': return LH_LEVEL_TRACE;
        }
    }
    if (n == 6 && strncasecmp(s, "trace", 5) == 0 && s[5] >= '1' && s[5] <= '8')
        return LH_LEVEL_TRACE;   /* Apache trace1..trace8 */
    return lh_level_parse(s, n);
}

/* Parsed values fill the fields the record did not carry. `parsed_message`
 * tells whether ev->message is still the unparsed line. */
static int set_field(struct lh_parse_worker *w, struct lh_event *ev, struct lh_arena *a,
                     enum field f, const char *key, const char *v, size_t n, int *msg_from_raw)
{
    switch (f) {
    case F_TS: {
        int64_t ns;
        if (lh_ts_parse_text(v, n, ev->received_ns ? ev->received_ns : ev->ts_ns, &ns) == 0)
            ev->ts_ns = ns;
        else if (key)   /* unreadable: keep it visible rather than lose it */
            return meta_push(w, key, lh_arena_strndup(a, v, n));
        return 0;
    }
    case F_LEVEL:
        if (ev->level == LH_LEVEL_UNKNOWN)
            ev->level = level_of(v, n);
        return 0;
    case F_MESSAGE:
        if (*msg_from_raw) {
            if (!(ev->message = lh_arena_strndup(a, v, n)))
                return LH_ENOMEM;
            *msg_from_raw = 0;
        }
        return 0;
    default:
        break;
    }
    const char **slot = f == F_SERVICE ? &ev->service : f == F_TRACE ? &ev->trace_id
                      : f == F_SPAN ? &ev->span_id : &ev->user_id;
    /* "-" is how formats write "absent". */
    if (*slot || n == 0 || (n == 1 && v[0] == '-'))
        return 0;
    return (*slot = lh_arena_strndup(a, v, n)) ? 0 : LH_ENOMEM;
}

/* ---- JSON lines ---- */

static int json_value_text(struct lh_json *js, const struct lh_json_token *t,
                           struct lh_arena *a, char **out)
{
    if (t->type == LH_JSON_STRING)
        return lh_json_str_arena(t, a, out, NULL, NULL);
    if (t->type == LH_JSON_ARRAY) {
        /* Arrays are kept as their JSON text. */
        size_t start = t->off;
        int depth = 1;
        struct lh_json_token x;
        while (depth > 0) {
            int rc = lh_json_next(js, &x, NULL);
            if (rc <= 0)
                return LH_EINVAL;
            if (x.type == LH_JSON_ARRAY || x.type == LH_JSON_OBJECT)
                depth++;
            else if (x.type == LH_JSON_ARRAY_END || x.type == LH_JSON_OBJECT_END)
                depth--;
        }
        *out = lh_arena_strndup(a, js->buf + start, js->pos - start);
        return *out ? 0 : LH_ENOMEM;
    }
    *out = lh_arena_strndup(a, t->p, t->len);   /* numbers, true, false */
    return *out ? 0 : LH_ENOMEM;
}

static int parse_json_object(struct lh_parse_worker *w, struct lh_json *js, struct lh_event *ev,
                             struct lh_arena *a, size_t prefix_len, int *msg_from_raw)
{
    struct lh_json_token t;
    for (;;) {
        int rc = lh_json_next(js, &t, NULL);
        if (rc < 0)
            return LH_EINVAL;
        if (t.type == LH_JSON_OBJECT_END)
            return 0;
        if (t.type != LH_JSON_KEY)
            return LH_EINVAL;
        /* key path = prefix + "." + key */
        w->key.len = prefix_len;
        if (prefix_len && lh_buf_putc(&w->key, '.') < 0)
            return LH_ENOMEM;
        if (t.flags & (LH_JSON_ESCAPED | LH_JSON_BADUTF8)) {
            if (lh_json_unescape(t.p, t.len, &w->key, NULL) < 0)
                return LH_ENOMEM;
        } else if (lh_buf_append(&w->key, t.p, t.len) < 0) {
            return LH_ENOMEM;
        }
        size_t klen = w->key.len;
        struct lh_json_token v;
        if (lh_json_next(js, &v, NULL) < 0)
            return LH_EINVAL;
        if (v.type == LH_JSON_OBJECT) {
            if ((rc = parse_json_object(w, js, ev, a, klen, msg_from_raw)) < 0)
                return rc;
            continue;
        }
        if (v.type == LH_JSON_NULL)
            continue;
        char *text;
        if ((rc = json_value_text(js, &v, a, &text)) < 0)
            return rc;
        enum field f = field_of(w->key.data, klen);
        if (f != F_NONE && v.type != LH_JSON_ARRAY) {
            if (f == F_TS && v.type == LH_JSON_NUMBER) {
                int64_t ns;
                if (lh_time_epoch_str(v.p, v.len, &ns, NULL) == 0) {
                    ev->ts_ns = ns;
                    continue;
                }
            }
            char *key = f == F_TS ? lh_arena_strndup(a, w->key.data, klen) : NULL;
            if ((rc = set_field(w, ev, a, f, key, text, strlen(text), msg_from_raw)) < 0)
                return rc;
            continue;
        }
        char *key = lh_arena_strndup(a, w->key.data, klen);
        if (!key || (rc = meta_push(w, key, text)) < 0)
            return LH_ENOMEM;
    }
}

static int try_json(struct lh_parse_worker *w, const char *s, size_t n, struct lh_event *ev,
                    struct lh_arena *a, int *msg_from_raw)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n || s[i] != '{')
        return 1;
    struct lh_json js;
    struct lh_json_token t;
    lh_json_init(&js, s, n, (unsigned)w->p->cfg.max_depth, LH_JSON_UTF8_REPAIR);
    if (lh_json_next(&js, &t, NULL) != LH_JSON_OBJECT)
        return 1;
    /* Parse into copies so a line that turns out invalid half-way leaves
     * the event untouched. */
    struct lh_event copy = *ev;
    int from_raw = *msg_from_raw;
    int rc = parse_json_object(w, &js, &copy, a, 0, &from_raw);
    if (rc == 0 && lh_json_next(&js, &t, NULL) != LH_JSON_END)
        rc = LH_EINVAL;
    if (rc == LH_ENOMEM)
        return rc;
    if (rc < 0) {
        w->meta.n = 0;
        return 1;
    }
    *ev = copy;
    *msg_from_raw = from_raw;
    return 0;
}

/* ---- logfmt ---- */

static int logfmt_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '@' || c == '/';
}

static int try_logfmt(struct lh_parse_worker *w, const char *s, size_t n, struct lh_event *ev,
                      struct lh_arena *a, int *msg_from_raw)
{
    /* Cheap check first: the line must start with key=. */
    size_t i = 0;
    while (i < n && logfmt_key_char(s[i]))
        i++;
    if (i == 0 || i >= n || s[i] != '=')
        return 1;
    struct lh_event copy = *ev;
    int from_raw = *msg_from_raw, pairs = 0;
    struct lh_buf val = LH_BUF_INIT;
    size_t p = 0;
    int rc = 0;
    while (p < n && rc == 0) {
        while (p < n && s[p] == ' ')
            p++;
        if (p == n)
            break;
        size_t ks = p;
        while (p < n && logfmt_key_char(s[p]))
            p++;
        size_t kl = p - ks;
        if (kl == 0 || (p < n && s[p] != '=' && s[p] != ' ')) {
            rc = 1;   /* not logfmt after all */
            break;
        }
        lh_buf_reset(&val);
        if (p < n && s[p] == '=') {
            p++;
            if (p < n && s[p] == '"') {
                p++;
                while (p < n && s[p] != '"') {
                    if (s[p] == '\\' && p + 1 < n)
                        p++;
                    if (lh_buf_putc(&val, s[p++]) < 0)
                        rc = LH_ENOMEM;
                }
                if (p == n) {
                    rc = 1;   /* unterminated quote */
                    break;
                }
                p++;
            } else {
                size_t vs = p;
                while (p < n && s[p] != ' ')
                    p++;
                if (lh_buf_append(&val, s + vs, p - vs) < 0)
                    rc = LH_ENOMEM;
            }
        } else if (lh_buf_puts(&val, "true") < 0) {   /* a bare key is a flag */
            rc = LH_ENOMEM;
        }
        if (rc)
            break;
        pairs++;
        enum field f = field_of(s + ks, kl);
        const char *v = val.data ? val.data : "";
        if (f != F_NONE) {
            char *key = lh_arena_strndup(a, s + ks, kl);
            rc = key ? set_field(w, &copy, a, f, key, v, val.len, &from_raw) : LH_ENOMEM;
        } else {
            char *key = lh_arena_strndup(a, s + ks, kl);
            char *value = lh_arena_strndup(a, v, val.len);
            rc = key && value ? meta_push(w, key, value) : LH_ENOMEM;
        }
    }
    lh_buf_free(&val);
    if (rc == 0 && pairs < 2)
        rc = 1;
    if (rc != 0) {
        w->meta.n = 0;
        return rc;
    }
    *ev = copy;
    *msg_from_raw = from_raw;
    return 0;
}

/* ---- grok ---- */

static int try_grok(struct lh_parse_worker *w, const char *s, size_t n, struct lh_event *ev,
                    struct lh_arena *a, int *msg_from_raw)
{
    if (!w->m)
        return 1;
    int idx = lh_grok_match(w->m, s, n);
    if (idx < 0)
        return 1;
    w->last_grok = idx;
    size_t nc;
    const struct lh_grok_capture *c = lh_grok_captures(w->m, &nc);
    for (size_t i = 0; i < nc; i++) {
        enum field f = field_of(c[i].field, strlen(c[i].field));
        int rc;
        if (f != F_NONE) {
            rc = set_field(w, ev, a, f, c[i].field, c[i].value, c[i].len, msg_from_raw);
        } else {
            char *v = lh_arena_strndup(a, c[i].value, c[i].len);
            rc = v ? meta_push(w, c[i].field, v) : LH_ENOMEM;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Levels the format implies when it has none: HTTP status, syslog severity. */
static void derive_level(struct lh_parse_worker *w, struct lh_event *ev)
{
    if (ev->level != LH_LEVEL_UNKNOWN)
        return;
    for (size_t i = 0; i < w->meta.n; i++) {
        const char *k = w->meta.v[i].key, *v = w->meta.v[i].value;
        if (strcmp(k, "http.status") == 0) {
            int st = atoi(v);
            ev->level = st >= 500 ? LH_LEVEL_ERROR : st >= 400 ? LH_LEVEL_WARN : LH_LEVEL_INFO;
            return;
        }
        if (strcmp(k, "syslog.pri") == 0) {
            static const enum lh_level sev[8] = {
                LH_LEVEL_FATAL, LH_LEVEL_FATAL, LH_LEVEL_FATAL, LH_LEVEL_ERROR,
                LH_LEVEL_WARN, LH_LEVEL_INFO, LH_LEVEL_INFO, LH_LEVEL_DEBUG,
            };
            ev->level = sev[atoi(v) % 8];
            return;
        }
    }
}

/* Moves the parsed metadata into the arena after the record's own keys,
 * which win on a clash. */
static int commit_meta(struct lh_parse_worker *w, struct lh_event *ev, struct lh_arena *a)
{
    if (w->meta.n == 0)
        return 0;
    size_t total = ev->nmeta + w->meta.n;
    struct lh_kv *v = lh_arena_alloc(a, total * sizeof(*v));
    if (!v)
        return LH_ENOMEM;
    if (ev->nmeta)
        memcpy(v, ev->meta, ev->nmeta * sizeof(*v));
    size_t n = ev->nmeta;
    for (size_t i = 0; i < w->meta.n; i++) {
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(v[k].key, w->meta.v[i].key) == 0;
        if (!dup)
            v[n++] = w->meta.v[i];
    }
    ev->meta = v;
    ev->nmeta = n;
    return 0;
}

int lh_parse_event(struct lh_parse_worker *w, struct lh_event *ev, struct lh_arena *a)
{
    const char *line = ev->raw ? ev->raw : ev->message;
    w->meta.n = 0;
    w->last_grok = -1;
    if (!line)
        return LH_PARSE_NONE;
    size_t n = strlen(line);
    /* The message is "still the raw line" unless the record set its own. */
    int msg_from_raw = !ev->message || ev->message == line || strcmp(ev->message, line) == 0;
    int kind = LH_PARSE_FAILED, rc = 1;
    if (w->p->cfg.json && (rc = try_json(w, line, n, ev, a, &msg_from_raw)) == 0)
        kind = LH_PARSE_JSON;
    if (rc == 1 && (rc = try_grok(w, line, n, ev, a, &msg_from_raw)) == 0)
        kind = LH_PARSE_GROK;
    if (rc == 1 && w->p->cfg.logfmt && (rc = try_logfmt(w, line, n, ev, a, &msg_from_raw)) == 0)
        kind = LH_PARSE_LOGFMT;
    if (rc < 0)
        return rc;
    if (msg_from_raw && !ev->message)
        ev->message = line;
    if (kind == LH_PARSE_FAILED) {
        if (meta_push(w, "parse_failed", "true") < 0)
            return LH_ENOMEM;
    } else {
        derive_level(w, ev);
    }
    if (commit_meta(w, ev, a) < 0)
        return LH_ENOMEM;
    w->meta.n = 0;
    return kind;
}
