/* event.c - the event model: level names, ids, and the compact JSON form on the bus
 * (see lh/event.h).
 *
 * Encoding: one compact object, fields in a fixed order, absent ones omitted
 * (NULL strings, ts_ns/received_ns of 0, level UNKNOWN, no metadata):
 *   {"id":"...","timestamp":"2026-05-23T08:06:14.123000000Z","received":"...",
 *    "tenant":"...","service":"...","level":"ERROR","host":"...","trace_id":"...",
 *    "span_id":"...","user_id":"...","message":"...","stream":"...","container_id":"...",
 *    "k8s":{"namespace":"...","pod":"...","container":"..."},"region":"...",
 *    "file":"...","raw":"...","custom_metadata":{"k":"v",...}}
 * Times are RFC 3339 UTC with 9 fractional digits. Decoding (with the lh_json
 * scanner, invalid UTF-8 repaired to U+FFFD) accepts any RFC 3339 time, null
 * for an absent field, level names and their aliases, and ignores unknown
 * keys; a known field of the wrong type is an error naming the field.
 *
 * The RFC 3339 helpers below are private to this file until common/time.c
 * provides them. */
#include "lh/event.h"
#include "lh/json.h"
#include "lh/time.h"

#include <ctype.h>
#include <string.h>

/* ---- levels ------------------------------------------------------------ */

static const char *const level_names[LH_LEVEL_COUNT] = {
    [LH_LEVEL_UNKNOWN] = "UNKNOWN", [LH_LEVEL_TRACE] = "TRACE", [LH_LEVEL_DEBUG] = "DEBUG",
    [LH_LEVEL_INFO] = "INFO",       [LH_LEVEL_WARN] = "WARN",   [LH_LEVEL_ERROR] = "ERROR",
    [LH_LEVEL_FATAL] = "FATAL",
};

const char *lh_level_name(enum lh_level l)
{
    if ((unsigned)l >= LH_LEVEL_COUNT)
        return "UNKNOWN";
    return level_names[l];
}

/* Names and aliases, lower case. Syslog's crit/alert/emerg and panic rank
 * above err, so they count as FATAL; java.util.logging's SEVERE is ERROR,
 * FINE is DEBUG, FINER/FINEST are TRACE. Single letters are glog/logcat's. */
static const struct {
    const char *name;
    enum lh_level level;
} level_aliases[] = {
    { "trace", LH_LEVEL_TRACE },    { "trc", LH_LEVEL_TRACE },
    { "finest", LH_LEVEL_TRACE },   { "finer", LH_LEVEL_TRACE },
    { "verbose", LH_LEVEL_TRACE },  { "t", LH_LEVEL_TRACE },
    { "v", LH_LEVEL_TRACE },
    { "debug", LH_LEVEL_DEBUG },    { "dbg", LH_LEVEL_DEBUG },
    { "fine", LH_LEVEL_DEBUG },     { "d", LH_LEVEL_DEBUG },
    { "info", LH_LEVEL_INFO },      { "inf", LH_LEVEL_INFO },
    { "information", LH_LEVEL_INFO }, { "informational", LH_LEVEL_INFO },
    { "notice", LH_LEVEL_INFO },    { "i", LH_LEVEL_INFO },
    { "warn", LH_LEVEL_WARN },      { "warning", LH_LEVEL_WARN },
    { "wrn", LH_LEVEL_WARN },       { "w", LH_LEVEL_WARN },
    { "error", LH_LEVEL_ERROR },    { "err", LH_LEVEL_ERROR },
    { "eror", LH_LEVEL_ERROR },     { "severe", LH_LEVEL_ERROR },
    { "e", LH_LEVEL_ERROR },
    { "fatal", LH_LEVEL_FATAL },    { "ftl", LH_LEVEL_FATAL },
    { "crit", LH_LEVEL_FATAL },     { "critical", LH_LEVEL_FATAL },
    { "alert", LH_LEVEL_FATAL },    { "emerg", LH_LEVEL_FATAL },
    { "emergency", LH_LEVEL_FATAL }, { "panic", LH_LEVEL_FATAL },
    { "f", LH_LEVEL_FATAL },
};

enum lh_level lh_level_parse(const char *s, size_t n)
{
    char low[16];
    if (!s || n == 0 || n >= sizeof(low))
        return LH_LEVEL_UNKNOWN;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)s[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(level_aliases) / sizeof(level_aliases[0]); i++) {
        if (strcmp(low, level_aliases[i].name) == 0)
            return level_aliases[i].level;
    }
    return LH_LEVEL_UNKNOWN;
}

/* ---- ids --------------------------------------------------------------- */

void lh_event_id(char *out, const uint8_t batch[16], uint32_t index)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        *o++ = hex[batch[i] >> 4];
        *o++ = hex[batch[i] & 15];
    }
    *o++ = '-';
    char digits[10];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + index % 10);
        index /= 10;
    } while (index);
    while (nd)
        *o++ = digits[--nd];
    *o = '\0';
}

/* ---- encoding ---------------------------------------------------------- */

/* Appends ,"key": (no comma before the first member). */
static int put_key(struct lh_buf *out, int *first, const char *key)
{
    int rc = 0;
    if (!*first)
        rc |= lh_buf_putc(out, ',');
    *first = 0;
    rc |= lh_buf_putc(out, '"');
    rc |= lh_buf_puts(out, key);
    rc |= lh_buf_append(out, "\":", 2);
    return rc;
}

static int put_str(struct lh_buf *out, int *first, const char *key, const char *val)
{
    if (!val)
        return 0;
    return put_key(out, first, key) | lh_buf_json_str(out, val, strlen(val));
}

static int put_time(struct lh_buf *out, int *first, const char *key, int64_t ns)
{
    if (ns == 0)
        return 0;
    char t[LH_TIME_RFC3339_SIZE + 2];
    t[0] = '"';
    int n = lh_time_format_rfc3339(ns, 9, t + 1, sizeof(t) - 1);
    if (n < 0)
        return n;
    t[n + 1] = '"';
    return put_key(out, first, key) | lh_buf_append(out, t, (size_t)n + 2);
}

int lh_event_encode(const struct lh_event *ev, struct lh_buf *out)
{
    size_t start = out->len;
    int first = 1, rc = 0;

    rc |= lh_buf_putc(out, '{');
    rc |= put_str(out, &first, "id", ev->id);
    rc |= put_time(out, &first, "timestamp", ev->ts_ns);
    rc |= put_time(out, &first, "received", ev->received_ns);
    rc |= put_str(out, &first, "tenant", ev->tenant);
    rc |= put_str(out, &first, "service", ev->service);
    if (ev->level != LH_LEVEL_UNKNOWN) {
        rc |= put_key(out, &first, "level");
        rc |= lh_buf_putc(out, '"');
        rc |= lh_buf_puts(out, lh_level_name(ev->level));
        rc |= lh_buf_putc(out, '"');
    }
    rc |= put_str(out, &first, "host", ev->host);
    rc |= put_str(out, &first, "trace_id", ev->trace_id);
    rc |= put_str(out, &first, "span_id", ev->span_id);
    rc |= put_str(out, &first, "user_id", ev->user_id);
    rc |= put_str(out, &first, "message", ev->message);
    rc |= put_str(out, &first, "stream", ev->stream);
    rc |= put_str(out, &first, "container_id", ev->container_id);
    if (ev->k8s_namespace || ev->k8s_pod || ev->k8s_container) {
        int kfirst = 1;
        rc |= put_key(out, &first, "k8s");
        rc |= lh_buf_putc(out, '{');
        rc |= put_str(out, &kfirst, "namespace", ev->k8s_namespace);
        rc |= put_str(out, &kfirst, "pod", ev->k8s_pod);
        rc |= put_str(out, &kfirst, "container", ev->k8s_container);
        rc |= lh_buf_putc(out, '}');
    }
    rc |= put_str(out, &first, "region", ev->region);
    rc |= put_str(out, &first, "file", ev->file);
    rc |= put_str(out, &first, "raw", ev->raw);
    if (ev->nmeta && ev->meta) {
        rc |= put_key(out, &first, "custom_metadata");
        rc |= lh_event_meta_json(ev->meta, ev->nmeta, 0, out);
    }
    rc |= lh_buf_putc(out, '}');
    if (rc) {
        /* The only failure is LH_ENOMEM: leave out as it was. */
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return LH_ENOMEM;
    }
    return 0;
}

static int meta_seen_before(const struct lh_kv *kv, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (kv[j].key && kv[j].value && strcmp(kv[j].key, kv[i].key) == 0)
            return 1;
    return 0;
}

int lh_event_meta_json(const struct lh_kv *kv, size_t n, int skip_repeated, struct lh_buf *out)
{
    int rc = lh_buf_putc(out, '{'), first = 1;
    for (size_t i = 0; i < n; i++) {
        if (!kv[i].key || !kv[i].value || (skip_repeated && meta_seen_before(kv, i)))
            continue;
        if (!first)
            rc |= lh_buf_putc(out, ',');
        first = 0;
        rc |= lh_buf_json_str(out, kv[i].key, strlen(kv[i].key));
        rc |= lh_buf_putc(out, ':');
        rc |= lh_buf_json_str(out, kv[i].value, strlen(kv[i].value));
    }
    rc |= lh_buf_putc(out, '}');
    return rc ? LH_ENOMEM : 0;
}

/* ---- decoding ---------------------------------------------------------- */

enum field {
    F_NONE, F_ID, F_TIMESTAMP, F_RECEIVED, F_TENANT, F_SERVICE, F_LEVEL, F_HOST, F_TRACE_ID,
    F_SPAN_ID, F_USER_ID, F_MESSAGE, F_STREAM, F_CONTAINER_ID, F_K8S, F_REGION, F_FILE, F_RAW,
    F_META,
};

static const struct {
    const char *name;
    size_t len;
    enum field f;
} fields[] = {
#define FIELD(n, f) { n, sizeof(n) - 1, f }
    FIELD("id", F_ID), FIELD("timestamp", F_TIMESTAMP), FIELD("received", F_RECEIVED),
    FIELD("tenant", F_TENANT), FIELD("service", F_SERVICE), FIELD("level", F_LEVEL),
    FIELD("host", F_HOST), FIELD("trace_id", F_TRACE_ID), FIELD("span_id", F_SPAN_ID),
    FIELD("user_id", F_USER_ID), FIELD("message", F_MESSAGE), FIELD("stream", F_STREAM),
    FIELD("container_id", F_CONTAINER_ID), FIELD("k8s", F_K8S), FIELD("region", F_REGION),
    FIELD("file", F_FILE), FIELD("raw", F_RAW), FIELD("custom_metadata", F_META),
#undef FIELD
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* The field a key names. Keys with escapes are decoded first (rare). *hint
 * is where the search starts: our encoder writes the fields in table order,
 * so the key after a match is nearly always the next entry. */
static enum field lookup_field(const struct lh_json_token *key, size_t *hint)
{
    const char *k = key->p;
    size_t n = key->len;
    char tmp[32];
    if (key->flags & (LH_JSON_ESCAPED | LH_JSON_BADUTF8)) {
        struct lh_buf b = LH_BUF_INIT;
        if (n > 64 || lh_json_unescape(key->p, key->len, &b, NULL) < 0 || b.len >= sizeof(tmp)) {
            lh_buf_free(&b);
            return F_NONE;
        }
        memcpy(tmp, b.data, b.len);
        n = b.len;
        k = tmp;
        lh_buf_free(&b);
    }
    for (size_t j = 0; j < NFIELDS; j++) {
        size_t i = (*hint + j) % NFIELDS;
        if (fields[i].len == n && memcmp(fields[i].name, k, n) == 0) {
            *hint = i + 1;
            return fields[i].f;
        }
    }
    return F_NONE;
}

struct decoder {
    struct lh_json js;
    struct lh_arena *arena;
    struct lh_err *err;
    struct lh_kv *meta;
    size_t nmeta, capmeta;
};

static int wrong_type(struct decoder *d, const char *field, const struct lh_json_token *t,
                      const char *expected)
{
    return lh_err_set(d->err, LH_EINVAL, "event field '%s': expected %s, found %s at byte %zu",
                      field, expected, lh_json_type_name((int)t->type), t->off);
}

static int wrap(struct decoder *d, int rc)
{
    if (rc != LH_ENOMEM)
        lh_err_wrap(d->err, "event JSON");
    return rc;
}

/* Reads a string value (or null) of the field into *out. */
static int read_str(struct decoder *d, const char *field, const char **out)
{
    struct lh_json_token t;
    int rc = lh_json_next(&d->js, &t, d->err);
    if (rc < 0)
        return wrap(d, rc);
    if (rc == LH_JSON_NULL) {
        *out = NULL;
        return 0;
    }
    if (rc != LH_JSON_STRING)
        return wrong_type(d, field, &t, "a string");
    char *s;
    rc = lh_json_str_arena(&t, d->arena, &s, NULL, d->err);
    if (rc < 0)
        return rc;
    *out = s;
    return 0;
}

static int read_time(struct decoder *d, const char *field, int64_t *out)
{
    struct lh_json_token t;
    int rc = lh_json_next(&d->js, &t, d->err);
    if (rc < 0)
        return wrap(d, rc);
    if (rc == LH_JSON_NULL) {
        *out = 0;
        return 0;
    }
    if (rc != LH_JSON_STRING)
        return wrong_type(d, field, &t, "an RFC 3339 time string");
    if (t.flags & (LH_JSON_ESCAPED | LH_JSON_BADUTF8) || lh_time_parse_rfc3339(t.p, t.len, out, NULL) < 0)
        return lh_err_set(d->err, LH_EINVAL, "event field '%s': \"%.*s\" is not an RFC 3339 "
                          "time (or is out of range)", field, t.len > 64 ? 64 : (int)t.len, t.p);
    return 0;
}

static int read_level(struct decoder *d, enum lh_level *out)
{
    struct lh_json_token t;
    int rc = lh_json_next(&d->js, &t, d->err);
    if (rc < 0)
        return wrap(d, rc);
    if (rc == LH_JSON_NULL) {
        *out = LH_LEVEL_UNKNOWN;
        return 0;
    }
    if (rc != LH_JSON_STRING)
        return wrong_type(d, "level", &t, "a string");
    if (!(t.flags & (LH_JSON_ESCAPED | LH_JSON_BADUTF8))) {
        *out = lh_level_parse(t.p, t.len);
        return 0;
    }
    char *s;
    size_t n;
    if ((rc = lh_json_str_arena(&t, d->arena, &s, &n, d->err)) < 0)
        return rc;
    *out = lh_level_parse(s, n);
    return 0;
}

static int read_k8s(struct decoder *d, struct lh_event *ev)
{
    struct lh_json_token t;
    int rc = lh_json_next(&d->js, &t, d->err);
    if (rc < 0)
        return wrap(d, rc);
    if (rc == LH_JSON_NULL)
        return 0;
    if (rc != LH_JSON_OBJECT)
        return wrong_type(d, "k8s", &t, "an object");
    while ((rc = lh_json_next(&d->js, &t, d->err)) == LH_JSON_KEY) {
        if (t.len == 9 && !t.flags && memcmp(t.p, "namespace", 9) == 0)
            rc = read_str(d, "k8s.namespace", &ev->k8s_namespace);
        else if (t.len == 3 && !t.flags && memcmp(t.p, "pod", 3) == 0)
            rc = read_str(d, "k8s.pod", &ev->k8s_pod);
        else if (t.len == 9 && !t.flags && memcmp(t.p, "container", 9) == 0)
            rc = read_str(d, "k8s.container", &ev->k8s_container);
        else
            rc = lh_json_skip(&d->js, d->err) < 0 ? wrap(d, LH_EINVAL) : 0;
        if (rc < 0)
            return rc;
    }
    return rc < 0 ? wrap(d, rc) : 0;    /* otherwise rc is LH_JSON_OBJECT_END */
}

static int add_meta(struct decoder *d, const char *key, const char *value)
{
    if (d->nmeta == d->capmeta) {
        size_t cap = d->capmeta ? d->capmeta * 2 : 8;
        struct lh_kv *m = lh_arena_alloc(d->arena, cap * sizeof(*m));
        if (!m)
            return lh_err_set(d->err, LH_ENOMEM, "event custom_metadata: out of memory");
        if (d->nmeta)
            memcpy(m, d->meta, d->nmeta * sizeof(*m));
        d->meta = m;    /* the old array stays in the arena until it is reset */
        d->capmeta = cap;
    }
    d->meta[d->nmeta].key = key;
    d->meta[d->nmeta].value = value;
    d->nmeta++;
    return 0;
}

static int read_meta(struct decoder *d)
{
    struct lh_json_token t;
    int rc = lh_json_next(&d->js, &t, d->err);
    if (rc < 0)
        return wrap(d, rc);
    if (rc == LH_JSON_NULL)
        return 0;
    if (rc != LH_JSON_OBJECT)
        return wrong_type(d, "custom_metadata", &t, "an object");
    while ((rc = lh_json_next(&d->js, &t, d->err)) == LH_JSON_KEY) {
        char *key;
        size_t klen;
        struct lh_json_token v;
        if ((rc = lh_json_str_arena(&t, d->arena, &key, &klen, d->err)) < 0)
            return rc;
        if ((rc = lh_json_next(&d->js, &v, d->err)) < 0)
            return wrap(d, rc);
        if (rc == LH_JSON_NULL)
            continue;
        if (rc != LH_JSON_STRING)
            return lh_err_set(d->err, LH_EINVAL, "event field 'custom_metadata.%.*s': expected "
                              "a string, found %s at byte %zu", klen > 64 ? 64 : (int)klen, key,
                              lh_json_type_name(rc), v.off);
        char *val;
        if ((rc = lh_json_str_arena(&v, d->arena, &val, NULL, d->err)) < 0 ||
            (rc = add_meta(d, key, val)) < 0)
            return rc;
    }
    return rc < 0 ? wrap(d, rc) : 0;
}

static int decode_event(struct decoder *d, struct lh_event *ev)
{
    struct lh_json_token t;
    int rc = lh_json_next(&d->js, &t, d->err);
    if (rc < 0)
        return wrap(d, rc);
    if (rc != LH_JSON_OBJECT)
        return lh_err_set(d->err, LH_EINVAL, "event JSON: expected an object, found %s",
                          lh_json_type_name(rc));
    size_t hint = 0;
    while ((rc = lh_json_next(&d->js, &t, d->err)) == LH_JSON_KEY) {
        switch (lookup_field(&t, &hint)) {
        case F_ID:           rc = read_str(d, "id", &ev->id); break;
        case F_TIMESTAMP:    rc = read_time(d, "timestamp", &ev->ts_ns); break;
        case F_RECEIVED:     rc = read_time(d, "received", &ev->received_ns); break;
        case F_TENANT:       rc = read_str(d, "tenant", &ev->tenant); break;
        case F_SERVICE:      rc = read_str(d, "service", &ev->service); break;
        case F_LEVEL:        rc = read_level(d, &ev->level); break;
        case F_HOST:         rc = read_str(d, "host", &ev->host); break;
        case F_TRACE_ID:     rc = read_str(d, "trace_id", &ev->trace_id); break;
        case F_SPAN_ID:      rc = read_str(d, "span_id", &ev->span_id); break;
        case F_USER_ID:      rc = read_str(d, "user_id", &ev->user_id); break;
        case F_MESSAGE:      rc = read_str(d, "message", &ev->message); break;
        case F_STREAM:       rc = read_str(d, "stream", &ev->stream); break;
        case F_CONTAINER_ID: rc = read_str(d, "container_id", &ev->container_id); break;
        case F_K8S:          rc = read_k8s(d, ev); break;
        case F_REGION:       rc = read_str(d, "region", &ev->region); break;
        case F_FILE:         rc = read_str(d, "file", &ev->file); break;
        case F_RAW:          rc = read_str(d, "raw", &ev->raw); break;
        case F_META:         rc = read_meta(d); break;
        case F_NONE:
            rc = lh_json_skip(&d->js, d->err);
            if (rc < 0)
                return wrap(d, rc);
            break;
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return wrap(d, rc);
    /* rc is LH_JSON_OBJECT_END: only whitespace may follow. */
    if ((rc = lh_json_next(&d->js, &t, d->err)) < 0)
        return wrap(d, rc);
    ev->meta = d->meta;
    ev->nmeta = d->nmeta;
    return 0;
}

int lh_event_decode(const char *json, size_t len, struct lh_arena *arena, struct lh_event *ev,
                    struct lh_err *err)
{
    struct decoder d;
    d.arena = arena;
    d.err = err;
    d.meta = NULL;
    d.nmeta = d.capmeta = 0;
    /* Depth 32: events are 2 deep; unknown keys may carry a little more. */
    lh_json_init(&d.js, json, len, 32, LH_JSON_UTF8_REPAIR);
    memset(ev, 0, sizeof(*ev));
    int rc = decode_event(&d, ev);
    if (rc < 0)
        memset(ev, 0, sizeof(*ev));
    return rc;
}

const char *lh_event_meta(const struct lh_event *ev, const char *key)
{
    if (!ev->meta || !key)
        return NULL;
    for (size_t i = 0; i < ev->nmeta; i++) {
        if (ev->meta[i].key && strcmp(ev->meta[i].key, key) == 0)
            return ev->meta[i].value;
    }
    return NULL;
}
