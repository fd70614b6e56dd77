/* ingest.c - ingest bodies to events with the lh_json scanner (see ingest.h).
 * This is the collector's hot path: one pass over the body, strings copied
 * once into the batch arena, no DOM. */
#include "ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/json.h"
#include "lh/time.h"

struct vec {
    void *v;
    size_t n, cap, size;
};

static void *vec_push(struct vec *x)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        void *nv = realloc(x->v, cap * x->size);
        if (!nv)
            return NULL;
        x->v = nv;
        x->cap = cap;
    }
    void *slot = (char *)x->v + x->n++ * x->size;
    memset(slot, 0, x->size);
    return slot;
}

struct decoder {
    struct lh_json js;
    const struct lh_ingest_limits *lim;
    const struct lh_ingest_context *ctx;
    struct lh_arena *arena;
    struct lh_ingest_error *error;
    struct lh_ingest_batch *out;
    struct vec events;          /* struct lh_event */
    struct vec meta;            /* struct lh_kv, of the record being read */
    struct vec files;           /* struct lh_ingest_file_stats */
    struct lh_buf key;          /* metadata key path */
    long index;                 /* record being read, -1 outside records */
    const char *prefix;         /* "log_records" or "line" */
};

static int fail(struct decoder *d, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct decoder *d, int code, const char *field, const char *fmt, ...)
{
    struct lh_ingest_error *e = d->error;
    e->index = d->index;
    if (d->index >= 0)
        snprintf(e->field, sizeof(e->field), "%s[%ld]%s%s", d->prefix, d->index,
                 field && *field ? "." : "", field ? field : "");
    else
        snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return code;
}

static int syntax(struct decoder *d, struct lh_err *err)
{
    long idx = d->index;
    d->index = -1;   /* syntax errors are about the body, with a byte offset */
    int rc = fail(d, LH_EINVAL, "", "malformed JSON: %s", err->msg);
    d->error->index = idx;
    return rc;
}

static int next(struct decoder *d, struct lh_json_token *t)
{
    struct lh_err err = { 0 };
    int rc = lh_json_next(&d->js, t, &err);
    return rc < 0 ? syntax(d, &err) : rc;
}

static int skip(struct decoder *d)
{
    struct lh_err err = { 0 };
    return lh_json_skip(&d->js, &err) < 0 ? syntax(d, &err) : 0;
}

static int key_is(const struct lh_json_token *t, const char *name)
{
    size_t n = strlen(name);
    return t->len == n && !(t->flags & LH_JSON_ESCAPED) && memcmp(t->p, name, n) == 0;
}

/* Reads a string value (the token already taken) into the arena. */
static int take_string(struct decoder *d, const struct lh_json_token *t, const char *field,
                       const char **out)
{
    if (t->type != LH_JSON_STRING)
        return fail(d, LH_EINVAL, field, "expected a string, got %s", lh_json_type_name(t->type));
    if (t->len > d->lim->max_field_bytes)
        return fail(d, LH_ETOOBIG, field, "longer than %zu bytes", d->lim->max_field_bytes);
    if ((t->flags & LH_JSON_BADUTF8) && !d->lim->utf8_repair)
        return fail(d, LH_EINVAL, field, "invalid UTF-8");
    char *s;
    struct lh_err err = { 0 };
    if (lh_json_str_arena(t, d->arena, &s, NULL, &err) < 0)
        return fail(d, LH_ENOMEM, field, "out of memory");
    *out = s;
    return 0;
}

static int read_string(struct decoder *d, const char *field, const char **out)
{
    struct lh_json_token t;
    int rc = next(d, &t);
    if (rc < 0)
        return rc;
    if (t.type == LH_JSON_NULL) {
        *out = NULL;
        return 0;
    }
    return take_string(d, &t, field, out);
}

/* Metadata values: strings as they are, numbers and booleans as text. */
static int read_meta(struct decoder *d, size_t prefix_len)
{
    struct lh_json_token t;
    int rc;
    while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_KEY) {
        d->key.len = prefix_len;
        if ((prefix_len && lh_buf_putc(&d->key, '.') < 0) ||
            ((t.flags & (LH_JSON_ESCAPED | LH_JSON_BADUTF8))
                 ? lh_json_unescape(t.p, t.len, &d->key, NULL) < 0
                 : lh_buf_append(&d->key, t.p, t.len) < 0))
            return fail(d, LH_ENOMEM, "metadata", "out of memory");
        size_t klen = d->key.len;
        struct lh_json_token v;
        if ((rc = next(d, &v)) < 0)
            return rc;
        if (v.type == LH_JSON_OBJECT) {
            if ((rc = read_meta(d, klen)) < 0)
                return rc;
            continue;
        }
        if (v.type == LH_JSON_NULL)
            continue;
        char path[160];
        snprintf(path, sizeof(path), "metadata.%.*s", (int)(klen > 140 ? 140 : klen),
                 d->key.data);
        const char *value;
        if (v.type == LH_JSON_STRING) {
            if ((rc = take_string(d, &v, path, &value)) < 0)
                return rc;
        } else if (v.type == LH_JSON_NUMBER || v.type == LH_JSON_TRUE ||
                   v.type == LH_JSON_FALSE) {
            if (!(value = lh_arena_strndup(d->arena, v.p, v.len)))
                return fail(d, LH_ENOMEM, path, "out of memory");
        } else {
            return fail(d, LH_EINVAL, path, "expected a string, number or boolean, got %s",
                        lh_json_type_name(v.type));
        }
        if (d->meta.n >= d->lim->max_meta_keys)
            return fail(d, LH_ETOOBIG, "metadata", "more than %zu keys", d->lim->max_meta_keys);
        struct lh_kv *kv = vec_push(&d->meta);
        char *k = lh_arena_strndup(d->arena, d->key.data, klen);
        if (!kv || !k)
            return fail(d, LH_ENOMEM, path, "out of memory");
        kv->key = k;
        kv->value = value;
    }
    if (rc < 0)
        return rc;
    if (t.type != LH_JSON_OBJECT_END)
        return fail(d, LH_EINVAL, "metadata", "malformed object");
    return 0;
}

static int read_timestamp(struct decoder *d, struct lh_event *ev)
{
    struct lh_json_token t;
    int rc = next(d, &t);
    if (rc < 0)
        return rc;
    int64_t ns;
    if (t.type == LH_JSON_NULL)
        return 0;
    if (t.type == LH_JSON_STRING && !(t.flags & LH_JSON_ESCAPED) &&
        lh_time_parse_rfc3339(t.p, t.len, &ns, NULL) == 0) {
        ev->ts_ns = ns;
        return 0;
    }
    if (t.type == LH_JSON_NUMBER && lh_time_epoch_str(t.p, t.len, &ns, NULL) == 0) {
        ev->ts_ns = ns;
        return 0;
    }
    return fail(d, LH_EINVAL, "timestamp", "expected an RFC 3339 timestamp or an epoch number");
}

static int read_k8s(struct decoder *d, struct lh_event *ev)
{
    struct lh_json_token t;
    int rc;
    if ((rc = next(d, &t)) < 0)
        return rc;
    if (t.type == LH_JSON_NULL)
        return 0;
    if (t.type != LH_JSON_OBJECT)
        return fail(d, LH_EINVAL, "k8s", "expected an object, got %s", lh_json_type_name(t.type));
    while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_KEY) {
        if (key_is(&t, "namespace"))
            rc = read_string(d, "k8s.namespace", &ev->k8s_namespace);
        else if (key_is(&t, "pod"))
            rc = read_string(d, "k8s.pod", &ev->k8s_pod);
        else if (key_is(&t, "container"))
            rc = read_string(d, "k8s.container", &ev->k8s_container);
        else {
            d->out->unknown_keys++;
            rc = skip(d);
        }
        if (rc < 0)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

/* Reads one record object (its '{' already taken) into a new event. */
static int read_record(struct decoder *d)
{
    if (d->events.n >= d->lim->max_records)
        return fail(d, LH_ETOOBIG, "", "more than %zu records in one batch", d->lim->max_records);
    struct lh_event *ev = vec_push(&d->events);
    if (!ev)
        return fail(d, LH_ENOMEM, "", "out of memory");
    d->meta.n = 0;
    ev->ts_ns = d->ctx->received_ns;
    ev->received_ns = d->ctx->received_ns;
    ev->tenant = d->ctx->tenant;
    ev->host = d->out->host ? d->out->host : d->ctx->default_host;
    ev->region = d->out->region;
    struct lh_json_token t;
    int rc;
    while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_KEY) {
        const char *lvl = NULL;
        if (key_is(&t, "raw_message"))
            rc = read_string(d, "raw_message", &ev->raw);
        else if (key_is(&t, "message"))
            rc = read_string(d, "message", &ev->message);
        else if (key_is(&t, "timestamp"))
            rc = read_timestamp(d, ev);
        else if (key_is(&t, "stream"))
            rc = read_string(d, "stream", &ev->stream);
        else if (key_is(&t, "container_id"))
            rc = read_string(d, "container_id", &ev->container_id);
        else if (key_is(&t, "service"))
            rc = read_string(d, "service", &ev->service);
        else if (key_is(&t, "host"))
            rc = read_string(d, "host", &ev->host);
        else if (key_is(&t, "trace_id"))
            rc = read_string(d, "trace_id", &ev->trace_id);
        else if (key_is(&t, "span_id"))
            rc = read_string(d, "span_id", &ev->span_id);
        else if (key_is(&t, "user_id"))
            rc = read_string(d, "user_id", &ev->user_id);
        else if (key_is(&t, "file"))
            rc = read_string(d, "file", &ev->file);
        else if (key_is(&t, "k8s"))
            rc = read_k8s(d, ev);
        else if (key_is(&t, "level")) {
            if ((rc = read_string(d, "level", &lvl)) == 0 && lvl)
                ev->level = lh_level_parse(lvl, strlen(lvl));
        } else if (key_is(&t, "metadata")) {
            struct lh_json_token o;
            if ((rc = next(d, &o)) < 0)
                return rc;
            if (o.type == LH_JSON_OBJECT)
                rc = read_meta(d, 0);
            else if (o.type != LH_JSON_NULL)
                rc = fail(d, LH_EINVAL, "metadata", "expected an object, got %s",
                          lh_json_type_name(o.type));
        } else {
            d->out->unknown_keys++;
            rc = skip(d);
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (!ev->raw && !ev->message)
        return fail(d, LH_EINVAL, "raw_message", "a record needs raw_message or message");
    if (d->meta.n) {
        size_t bytes = d->meta.n * sizeof(struct lh_kv);
        if (!(ev->meta = lh_arena_alloc(d->arena, bytes)))
            return fail(d, LH_ENOMEM, "metadata", "out of memory");
        memcpy(ev->meta, d->meta.v, bytes);
        ev->nmeta = d->meta.n;
    }
    return 0;
}

static int read_int(struct decoder *d, const char *field, int64_t *out)
{
    struct lh_json_token t;
    int rc = next(d, &t);
    if (rc < 0)
        return rc;
    if (t.type != LH_JSON_NUMBER || lh_json_int64(&t, out, NULL) < 0 || *out < 0)
        return fail(d, LH_EINVAL, field, "expected a non-negative integer");
    return 0;
}

/* shipper_metadata.files: [{"path", "read", "acked", "dropped", "sampled",
 * "records"}] */
static int read_files(struct decoder *d)
{
    struct lh_json_token t;
    int rc;
    if ((rc = next(d, &t)) < 0)
        return rc;
    if (t.type != LH_JSON_ARRAY)
        return fail(d, LH_EINVAL, "shipper_metadata.files", "expected an array");
    while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_OBJECT) {
        struct lh_ingest_file_stats *f = vec_push(&d->files);
        if (!f)
            return fail(d, LH_ENOMEM, "", "out of memory");
        f->records = -1;
        while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_KEY) {
            if (key_is(&t, "path"))
                rc = read_string(d, "shipper_metadata.files.path", &f->path);
            else if (key_is(&t, "read"))
                rc = read_int(d, "shipper_metadata.files.read", &f->read);
            else if (key_is(&t, "acked"))
                rc = read_int(d, "shipper_metadata.files.acked", &f->acked);
            else if (key_is(&t, "dropped"))
                rc = read_int(d, "shipper_metadata.files.dropped", &f->dropped);
            else if (key_is(&t, "sampled"))
                rc = read_int(d, "shipper_metadata.files.sampled", &f->sampled);
            else if (key_is(&t, "records"))
                rc = read_int(d, "shipper_metadata.files.records", &f->records);
            else
                rc = skip(d);
            if (rc < 0)
                return rc;
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (t.type != LH_JSON_ARRAY_END)
        return fail(d, LH_EINVAL, "shipper_metadata.files", "expected objects");
    return 0;
}

static int read_shipper(struct decoder *d)
{
    struct lh_json_token t;
    int rc;
    if ((rc = next(d, &t)) < 0)
        return rc;
    if (t.type != LH_JSON_OBJECT)
        return fail(d, LH_EINVAL, "shipper_metadata", "expected an object, got %s",
                    lh_json_type_name(t.type));
    while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_KEY) {
        if (key_is(&t, "host_id"))
            rc = read_string(d, "shipper_metadata.host_id", &d->out->host);
        else if (key_is(&t, "cluster_name"))
            rc = read_string(d, "shipper_metadata.cluster_name", &d->out->cluster);
        else if (key_is(&t, "agent_version"))
            rc = read_string(d, "shipper_metadata.agent_version", &d->out->agent_version);
        else if (key_is(&t, "region"))
            rc = read_string(d, "shipper_metadata.region", &d->out->region);
        else if (key_is(&t, "files"))
            rc = read_files(d);
        else if (key_is(&t, "agent_boot"))
            rc = read_string(d, "shipper_metadata.agent_boot", &d->out->agent_boot);
        else {
            d->out->unknown_keys++;
            rc = skip(d);
        }
        if (rc < 0)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

/* Shipper metadata may follow the records in the body; events read before
 * it get host and region filled in afterwards. */
static void apply_shipper(struct decoder *d)
{
    struct lh_event *ev = d->events.v;
    for (size_t i = 0; i < d->events.n; i++) {
        if (!ev[i].host || ev[i].host == d->ctx->default_host)
            ev[i].host = d->out->host ? d->out->host : d->ctx->default_host;
        if (!ev[i].region)
            ev[i].region = d->out->region;
    }
}

/* Gives every event its id and moves the vectors into the arena. */
static int finish(struct decoder *d)
{
    apply_shipper(d);
    struct lh_event *ev = d->events.v;
    size_t n = d->events.n;
    if (n) {
        struct lh_event *dst = lh_arena_alloc(d->arena, n * sizeof(*dst));
        char *ids = lh_arena_alloc(d->arena, n * LH_EVENT_ID_MAX);
        if (!dst || !ids)
            return fail(d, LH_ENOMEM, "", "out of memory");
        for (size_t i = 0; i < n; i++) {
            dst[i] = ev[i];
            char *id = ids + i * LH_EVENT_ID_MAX;
            lh_event_id(id, d->ctx->batch_uuid, (uint32_t)i);
            dst[i].id = id;
        }
        d->out->events = dst;
    }
    d->out->n = n;
    if (d->files.n) {
        size_t bytes = d->files.n * sizeof(struct lh_ingest_file_stats);
        if (!(d->out->files = lh_arena_alloc(d->arena, bytes)))
            return fail(d, LH_ENOMEM, "", "out of memory");
        memcpy(d->out->files, d->files.v, bytes);
        d->out->nfiles = d->files.n;
    }
    return 0;
}

static void decoder_init(struct decoder *d, const struct lh_ingest_limits *lim,
                         const struct lh_ingest_context *ctx, struct lh_arena *arena,
                         struct lh_ingest_batch *out, struct lh_ingest_error *error,
                         const char *prefix)
{
    memset(d, 0, sizeof(*d));
    memset(out, 0, sizeof(*out));
    memset(error, 0, sizeof(*error));
    error->index = -1;
    d->lim = lim;
    d->ctx = ctx;
    d->arena = arena;
    d->out = out;
    d->error = error;
    d->index = -1;
    d->prefix = prefix;
    d->events.size = sizeof(struct lh_event);
    d->meta.size = sizeof(struct lh_kv);
    d->files.size = sizeof(struct lh_ingest_file_stats);
}

static void decoder_free(struct decoder *d)
{
    free(d->events.v);
    free(d->meta.v);
    free(d->files.v);
    lh_buf_free(&d->key);
}

static enum lh_json_utf8 utf8_mode(const struct lh_ingest_limits *lim)
{
    return lim->utf8_repair ? LH_JSON_UTF8_REPAIR : LH_JSON_UTF8_REJECT;
}

static int decode_json(struct decoder *d, const char *body, size_t len)
{
    lh_json_init(&d->js, body, len, d->lim->max_depth, utf8_mode(d->lim));
    struct lh_json_token t;
    int rc, have_records = 0;
    if ((rc = next(d, &t)) < 0)
        return rc;
    if (t.type != LH_JSON_OBJECT)
        return fail(d, LH_EINVAL, "", "the body must be a JSON object with log_records");
    while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_KEY) {
        if (key_is(&t, "shipper_metadata")) {
            rc = read_shipper(d);
        } else if (key_is(&t, "log_records")) {
            have_records = 1;
            if ((rc = next(d, &t)) < 0)
                return rc;
            if (t.type != LH_JSON_ARRAY)
                return fail(d, LH_EINVAL, "log_records", "expected an array, got %s",
                            lh_json_type_name(t.type));
            while ((rc = next(d, &t)) > 0 && t.type == LH_JSON_OBJECT) {
                d->index = (long)d->events.n;
                if ((rc = read_record(d)) < 0)
                    return rc;
                d->index = -1;
            }
            if (rc < 0)
                return rc;
            if (t.type != LH_JSON_ARRAY_END) {
                d->index = (long)d->events.n;
                return fail(d, LH_EINVAL, "", "expected a record object, got %s",
                            lh_json_type_name(t.type));
            }
        } else {
            d->out->unknown_keys++;
            rc = skip(d);
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if ((rc = next(d, &t)) < 0)
        return rc;
    if (!have_records)
        return fail(d, LH_EINVAL, "log_records", "missing");
    if (d->events.n == 0)
        return fail(d, LH_EINVAL, "log_records", "empty batch");
    return finish(d);
}

int lh_ingest_decode_json(const char *body, size_t len, const struct lh_ingest_limits *lim,
                          const struct lh_ingest_context *ctx, struct lh_arena *arena,
                          struct lh_ingest_batch *out, struct lh_ingest_error *error)
{
    struct decoder d;
    decoder_init(&d, lim, ctx, arena, out, error, "log_records");
    int rc = decode_json(&d, body, len);
    decoder_free(&d);
    return rc;
}

int lh_ingest_decode_ndjson(const char *body, size_t len, const struct lh_ingest_limits *lim,
                            const struct lh_ingest_context *ctx, struct lh_arena *arena,
                            struct lh_ingest_batch *out, struct lh_ingest_error *error)
{
    struct decoder d;
    decoder_init(&d, lim, ctx, arena, out, error, "line");
    int rc = 0;
    size_t pos = 0;
    long line = 0;
    while (pos < len && rc == 0) {
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - body) : len;
        size_t s = pos, e = end;
        pos = end + 1;
        while (s < e && (body[s] == ' ' || body[s] == '\t' || body[s] == '\r'))
            s++;
        while (e > s && (body[e - 1] == ' ' || body[e - 1] == '\t' || body[e - 1] == '\r'))
            e--;
        line++;
        if (s == e)
            continue;
        d.index = line - 1;
        lh_json_init(&d.js, body + s, e - s, lim->max_depth, utf8_mode(lim));
        struct lh_json_token t;
        if ((rc = next(&d, &t)) < 0)
            break;
        if (t.type != LH_JSON_OBJECT) {
            rc = fail(&d, LH_EINVAL, "", "each line must be a JSON object");
            break;
        }
        if ((rc = read_record(&d)) < 0)
            break;
        rc = next(&d, &t) < 0 ? LH_EINVAL : 0;
    }
    if (rc == 0 && d.events.n == 0) {
        d.index = -1;
        rc = fail(&d, LH_EINVAL, "", "empty batch");
    }
    if (rc == 0)
        rc = finish(&d);
    decoder_free(&d);
    return rc;
}
