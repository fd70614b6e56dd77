/* audit.c - the delivery ledger's rows and their arithmetic (see lh/audit.h). */
#include "lh/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lh/event.h"
#include "lh/time.h"

static const char *const kind_names[LH_AUDIT_NKINDS] = { "acked", "sampled", "dlq", "dropped",
                                                          "archived", "replayed" };

const char *lh_audit_kind_name(enum lh_audit_kind k)
{
    return (unsigned)k < LH_AUDIT_NKINDS ? kind_names[k] : "unknown";
}

int64_t lh_audit_window(int64_t received_ns)
{
    int64_t s = received_ns / 1000000000;
    if (received_ns < 0 && s * 1000000000 != received_ns)
        s--;
    int64_t w = s / LH_AUDIT_WINDOW_SEC * LH_AUDIT_WINDOW_SEC;
    if (s < 0 && w != s)
        w -= LH_AUDIT_WINDOW_SEC;
    return w;
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int lh_audit_split_id(const char *id, char batch[33], uint32_t *index)
{
    if (!id)
        return LH_EINVAL;
    for (int i = 0; i < 32; i++)
        if (!is_hex(id[i]))
            return LH_EINVAL;
    if (id[32] != '-' || !id[33])
        return LH_EINVAL;
    uint64_t v = 0;
    for (const char *p = id + 33; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT32_MAX / 10)
            return LH_EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > UINT32_MAX)
        return LH_EINVAL;
    memcpy(batch, id, 32);
    batch[32] = '\0';
    *index = (uint32_t)v;
    return 0;
}

static int put_str(struct lh_buf *o, const char *key, const char *v)
{
    int rc = lh_buf_printf(o, ",\"%s\":", key);
    return rc ? rc : lh_buf_json_str(o, v ? v : "", v ? strlen(v) : 0);
}

int lh_audit_acked_json(const struct lh_audit_acked *a, struct lh_buf *out)
{
    int rc = lh_buf_puts(out, "{\"kind\":\"acked\"");
    rc |= put_str(out, "batch", a->batch);
    rc |= put_str(out, "tenant", a->tenant);
    rc |= put_str(out, "host", a->host);
    rc |= put_str(out, "file", a->file);
    rc |= lh_buf_printf(out, ",\"window\":%lld,\"records\":%lld", (long long)a->window,
                        (long long)a->records);
    if (a->boot)
        rc |= put_str(out, "boot", a->boot);
    if (a->agent_records >= 0)
        rc |= lh_buf_printf(out, ",\"agent_records\":%lld", (long long)a->agent_records);
    if (a->read >= 0)
        rc |= lh_buf_printf(out, ",\"read\":%lld,\"acked\":%lld,\"dropped\":%lld,"
                            "\"sampled\":%lld", (long long)a->read, (long long)a->acked,
                            (long long)(a->dropped >= 0 ? a->dropped : 0),
                            (long long)(a->sampled >= 0 ? a->sampled : 0));
    rc |= lh_buf_putc(out, '}');
    return rc ? LH_ENOMEM : 0;
}

static int put_ranges(struct lh_buf *o, const uint32_t *idx, size_t n)
{
    int rc = lh_buf_puts(o, ",\"idx\":\"");
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t j = i;
        while (j + 1 < n && idx[j + 1] == idx[j] + 1)
            j++;
        if (j == i)
            rc = lh_buf_printf(o, "%s%u", i ? "," : "", idx[i]);
        else
            rc = lh_buf_printf(o, "%s%u-%u", i ? "," : "", idx[i], idx[j]);
        i = j + 1;
    }
    return rc ? rc : lh_buf_putc(o, '"');
}

int lh_audit_row_json(const struct lh_audit_row *r, struct lh_buf *out)
{
    int rc = lh_buf_printf(out, "{\"kind\":\"%s\"", lh_audit_kind_name(r->kind));
    rc |= put_str(out, "batch", r->batch);
    rc |= put_str(out, "tenant", r->tenant);
    rc |= put_str(out, "host", r->host);
    rc |= put_str(out, "file", r->file);
    rc |= lh_buf_printf(out, ",\"window\":%lld", (long long)r->window);
    rc |= put_str(out, "sink", r->sink);
    rc |= put_str(out, "sink_type", r->sink_type);
    if (r->object)
        rc |= put_str(out, "object", r->object);
    rc |= lh_buf_printf(out, ",\"n\":%zu,\"at\":%lld", r->n, (long long)r->at_ns);
    rc |= put_ranges(out, r->idx, r->n);
    rc |= lh_buf_putc(out, '}');
    return rc ? LH_ENOMEM : 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    s = s ? s : "";
    return fnv(h, s, strlen(s) + 1);
}

void lh_audit_row_id(const struct lh_audit_row *r, char out[96])
{
    uint64_t h = 1469598103934665603ull;
    h = fnv_str(h, r->host);
    h = fnv_str(h, r->file);
    h = fnv_str(h, r->sink);
    h = fnv_str(h, r->object);
    h = fnv(h, r->idx, r->n * sizeof(*r->idx));
    snprintf(out, 96, "%s-%.32s-%016llx", lh_audit_kind_name(r->kind), r->batch ? r->batch : "",
             (unsigned long long)h);
}

int lh_audit_acked_stamp(const char *json, size_t len, int64_t at_ns, char out[96],
                         struct lh_buf *row)
{
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *batch = json_string_value(json_object_get(o, "batch"));
    int rc = 0;
    if (!o || !json_is_object(o) || !kind || strcmp(kind, "acked") != 0 || !batch) {
        rc = LH_EINVAL;
        goto out;
    }
    uint64_t h = 1469598103934665603ull;
    h = fnv_str(h, json_string_value(json_object_get(o, "host")));
    h = fnv_str(h, json_string_value(json_object_get(o, "file")));
    snprintf(out, 96, "acked-%.40s-%016llx", batch, (unsigned long long)h);
    while (len > 0 && json[len - 1] != '}')
        len--;
    if (len == 0) {
        rc = LH_EINVAL;
        goto out;
    }
    lh_buf_reset(row);
    if (lh_buf_append(row, json, len - 1) < 0 ||
        lh_buf_printf(row, ",\"at\":%lld}", (long long)at_ns) < 0)
        rc = LH_ENOMEM;
out:
    json_decref(o);
    return rc;
}

/* ---- building rows ------------------------------------------------------------ */

struct brow {
    int kind;
    const char *sink, *sink_type, *tenant, *host, *file;
    char batch[33];
    int64_t window;
    uint32_t *idx;
    size_t n, cap;
};

struct lh_audit_rows {
    struct brow *v;
    size_t n, cap;               /* rows in use; allocated (their idx kept for reuse) */
    struct lh_buf json;
};

struct lh_audit_rows *lh_audit_rows_create(void)
{
    return calloc(1, sizeof(struct lh_audit_rows));
}

void lh_audit_rows_destroy(struct lh_audit_rows *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->cap; i++)
        free(r->v[i].idx);
    free(r->v);
    lh_buf_free(&r->json);
    free(r);
}

void lh_audit_rows_reset(struct lh_audit_rows *r)
{
    r->n = 0;
}

size_t lh_audit_rows_count(const struct lh_audit_rows *r)
{
    return r->n;
}

static int same_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

int lh_audit_rows_add(struct lh_audit_rows *r, enum lh_audit_kind kind, const char *sink,
                      const char *sink_type, const struct lh_event *ev)
{
    char batch[33];
    uint32_t idx;
    if (lh_audit_split_id(ev->id, batch, &idx) < 0)
        return 0;
    struct brow *w = NULL;
    for (size_t i = r->n; i-- > 0;) {   /* the newest first: events come in runs */
        struct brow *x = &r->v[i];
        if (x->kind == (int)kind && x->sink == sink && strcmp(x->batch, batch) == 0 &&
            same_str(x->host, ev->host) && same_str(x->file, ev->file) &&
            same_str(x->tenant, ev->tenant)) {
            w = x;
            break;
        }
    }
    if (!w) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            struct brow *v = realloc(r->v, cap * sizeof(*v));
            if (!v)
                return LH_ENOMEM;
            memset(v + r->cap, 0, (cap - r->cap) * sizeof(*v));
            r->v = v;
            r->cap = cap;
        }
        w = &r->v[r->n++];
        w->kind = (int)kind;
        w->sink = sink;
        w->sink_type = sink_type;
        w->tenant = ev->tenant;
        w->host = ev->host;
        w->file = ev->file;
        memcpy(w->batch, batch, sizeof(batch));
        w->window = lh_audit_window(ev->received_ns);
        w->n = 0;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        uint32_t *v = realloc(w->idx, cap * sizeof(*v));
        if (!v)
            return LH_ENOMEM;
        w->idx = v;
        w->cap = cap;
    }
    w->idx[w->n++] = idx;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int lh_audit_rows_emit(struct lh_audit_rows *r, const char *object, int64_t at_ns,
                       int (*emit)(void *arg, const char *id, const char *json, size_t len),
                       void *arg)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < r->n; k++) {
        struct brow *w = &r->v[k];
        qsort(w->idx, w->n, sizeof(*w->idx), cmp_u32);
        size_t u = 0;
        for (size_t j = 0; j < w->n; j++)
            if (u == 0 || w->idx[u - 1] != w->idx[j])
                w->idx[u++] = w->idx[j];
        struct lh_audit_row row = { .kind = (enum lh_audit_kind)w->kind, .tenant = w->tenant,
                                    .host = w->host, .file = w->file, .batch = w->batch,
                                    .sink = w->sink, .sink_type = w->sink_type,
                                    .object = object, .window = w->window, .at_ns = at_ns,
                                    .idx = w->idx, .n = u };
        char id[96];
        lh_audit_row_id(&row, id);
        lh_buf_reset(&r->json);
        rc = lh_audit_row_json(&row, &r->json);
        if (rc == 0)
            rc = emit(arg, id, r->json.data, r->json.len);
    }
    return rc;
}

/* ---- a small string-keyed table ------------------------------------------ */

struct entry {
    char *key;
    size_t klen;
    uint64_t hash;
    void *val;
};

struct table {
    struct entry *e;
    size_t cap, n;
};

static void *table_get(struct table *t, const char *key, size_t klen, size_t valsize, int *isnew)
{
    uint64_t h = fnv(1469598103934665603ull, key, klen);
    if (t->n * 2 >= t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct entry *ne = calloc(cap, sizeof(*ne));
        if (!ne)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->e[i].key)
                continue;
            size_t k = t->e[i].hash & (cap - 1);
            while (ne[k].key)
                k = (k + 1) & (cap - 1);
            ne[k] = t->e[i];
        }
        free(t->e);
        t->e = ne;
        t->cap = cap;
    }
    size_t k = h & (t->cap - 1);
    while (t->e[k].key) {
        if (t->e[k].hash == h && t->e[k].klen == klen && memcmp(t->e[k].key, key, klen) == 0) {
            *isnew = 0;
            return t->e[k].val;
        }
        k = (k + 1) & (t->cap - 1);
    }
    char *kc = malloc(klen ? klen : 1);
    void *v = calloc(1, valsize);
    if (!kc || !v) {
        free(kc);
        free(v);
        return NULL;
    }
    memcpy(kc, key, klen);
    t->e[k] = (struct entry){ kc, klen, h, v };
    t->n++;
    *isnew = 1;
    return v;
}

static void *table_find(const struct table *t, const char *key, size_t klen)
{
    if (!t->cap)
        return NULL;
    uint64_t h = fnv(1469598103934665603ull, key, klen);
    for (size_t k = h & (t->cap - 1); t->e[k].key; k = (k + 1) & (t->cap - 1))
        if (t->e[k].hash == h && t->e[k].klen == klen && memcmp(t->e[k].key, key, klen) == 0)
            return t->e[k].val;
    return NULL;
}

typedef void (*val_free_fn)(void *);

static void table_free(struct table *t, val_free_fn vf)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].key) {
            if (vf)
                vf(t->e[i].val);
            free(t->e[i].val);
            free(t->e[i].key);
        }
    free(t->e);
    memset(t, 0, sizeof(*t));
}

/* Key of NUL-separated parts (each part ends with its NUL). */
static int key_build(struct lh_buf *k, const char *const *parts, size_t n)
{
    lh_buf_reset(k);
    for (size_t i = 0; i < n; i++)
        if (lh_buf_append(k, parts[i] ? parts[i] : "", strlen(parts[i] ? parts[i] : "") + 1) < 0)
            return LH_ENOMEM;
    return 0;
}

/* ---- folding ------------------------------------------------------------- */

struct acked_val {
    char *host, *file, *boot;
    int64_t window, records, agent_records, read, acked, dropped, sampled, at_ns;
};

struct set_val {
    char *host, *file;
    int kind;                    /* lh_audit_kind */
    int archive;                 /* sink class: 1 archive, 0 hot */
    int64_t window, at_ns;
    uint64_t *bits;
    size_t nwords;
};

struct boot_val {
    char *host, *file, *boot;
    int64_t window;
    int64_t read, acked, dropped, sampled;
};

struct lh_audit_fold {
    char *tenant, *host, *file;
    int64_t from, to;
    struct table acked, sets, boots, cells;
    struct lh_buf key;
    struct lh_audit_cell *out;   /* built by lh_audit_fold_cells */
    size_t nout;
};

static void acked_free(void *p)
{
    struct acked_val *a = p;
    free(a->host);
    free(a->file);
    free(a->boot);
}

static void set_free(void *p)
{
    struct set_val *s = p;
    free(s->host);
    free(s->file);
    free(s->bits);
}

static void boot_free(void *p)
{
    struct boot_val *b = p;
    free(b->host);
    free(b->file);
    free(b->boot);
}

static void cell_free(void *p)
{
    struct lh_audit_cell *c = p;
    free((char *)c->host);
    free((char *)c->file);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int lh_audit_fold_create(const struct lh_audit_filter *flt, struct lh_audit_fold **out,
                         struct lh_err *err)
{
    struct lh_audit_fold *f = calloc(1, sizeof(*f));
    if (!f)
        return lh_err_set(err, LH_ENOMEM, "ledger: out of memory");
    f->tenant = strdup(flt->tenant ? flt->tenant : "default");
    f->host = dup_or_null(flt->host);
    f->file = dup_or_null(flt->file);
    f->from = flt->from;
    f->to = flt->to;
    if (!f->tenant || (flt->host && !f->host) || (flt->file && !f->file)) {
        lh_audit_fold_destroy(f);
        return lh_err_set(err, LH_ENOMEM, "ledger: out of memory");
    }
    *out = f;
    return 0;
}

void lh_audit_fold_destroy(struct lh_audit_fold *f)
{
    if (!f)
        return;
    table_free(&f->acked, acked_free);
    table_free(&f->sets, set_free);
    table_free(&f->boots, boot_free);
    table_free(&f->cells, cell_free);
    lh_buf_free(&f->key);
    free(f->out);
    free(f->tenant);
    free(f->host);
    free(f->file);
    free(f);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t jint(json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Sets the bits of "a-b,c,..." in s. 0, LH_EINVAL, LH_ENOMEM. */
static int set_ranges(struct set_val *s, const char *r)
{
    while (*r) {
        char *end;
        unsigned long a = strtoul(r, &end, 10), b = a;
        if (end == r)
            return LH_EINVAL;
        r = end;
        if (*r == '-') {
            b = strtoul(r + 1, &end, 10);
            if (end == r + 1 || b < a)
                return LH_EINVAL;
            r = end;
        }
        if (*r == ',')
            r++;
        else if (*r)
            return LH_EINVAL;
        if (b >= (1ul << 24))   /* more records than a batch can hold */
            return LH_EINVAL;
        size_t need = b / 64 + 1;
        if (need > s->nwords) {
            uint64_t *nb = realloc(s->bits, need * sizeof(*nb));
            if (!nb)
                return LH_ENOMEM;
            memset(nb + s->nwords, 0, (need - s->nwords) * sizeof(*nb));
            s->bits = nb;
            s->nwords = need;
        }
        for (unsigned long i = a; i <= b; i++)
            s->bits[i / 64] |= 1ull << (i % 64);
    }
    return 0;
}

static uint64_t set_count(const struct set_val *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nwords; i++)
        n += (uint64_t)__builtin_popcountll(s->bits[i]);
    return n;
}

static int kind_of(const char *k)
{
    for (int i = 0; i < LH_AUDIT_NKINDS; i++)
        if (strcmp(k, kind_names[i]) == 0)
            return i;
    return -1;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static int add_acked(struct lh_audit_fold *f, json_t *o, const char *host, const char *file,
                     int64_t window)
{
    const char *parts[] = { jstr(o, "batch"), host, file };
    if (key_build(&f->key, parts, 3) < 0)
        return LH_ENOMEM;
    int isnew;
    struct acked_val *a = table_get(&f->acked, f->key.data, f->key.len, sizeof(*a), &isnew);
    if (!a)
        return LH_ENOMEM;
    if (isnew) {
        a->host = strdup(host);
        a->file = strdup(file);
        const char *boot = json_string_value(json_object_get(o, "boot"));
        a->boot = boot ? strdup(boot) : NULL;
        if (!a->host || !a->file || (boot && !a->boot))
            return LH_ENOMEM;
    }
    a->window = window;
    a->records = jint(o, "records", 0);
    a->agent_records = jint(o, "agent_records", -1);
    a->read = jint(o, "read", -1);
    a->acked = jint(o, "acked", 0);
    a->dropped = jint(o, "dropped", 0);
    a->sampled = jint(o, "sampled", 0);
    a->at_ns = max64(a->at_ns, jint(o, "at", 0));
    return 0;
}

static int add_set(struct lh_audit_fold *f, json_t *o, int kind, const char *host,
                   const char *file, int64_t window)
{
    const char *type = jstr(o, "sink_type");
    int archive;
    if (strcmp(type, "archive") == 0)
        archive = 1;
    else if (strcmp(type, "store") == 0 || strcmp(type, "opensearch") == 0)
        archive = 0;
    else
        return 0;   /* a sink of another kind: not part of either figure */
    struct set_val add = { 0 };   /* the row's own indexes, checked before anything */
    int rc = set_ranges(&add, jstr(o, "idx"));
    const char *parts[] = { kind_names[kind], archive ? "a" : "h", jstr(o, "batch"), host,
                            file };
    if (rc == 0 && key_build(&f->key, parts, 5) < 0)
        rc = LH_ENOMEM;
    int isnew;
    struct set_val *s = rc < 0 ? NULL
                               : table_get(&f->sets, f->key.data, f->key.len, sizeof(*s), &isnew);
    if (!s) {
        free(add.bits);
        return rc < 0 ? rc : LH_ENOMEM;
    }
    if (isnew) {
        s->host = strdup(host);
        s->file = strdup(file);
        s->kind = kind;
        s->archive = archive;
        s->window = window;
        if (!s->host || !s->file) {
            free(add.bits);
            return LH_ENOMEM;
        }
    }
    int64_t at = jint(o, "at", 0);
    if (at > s->at_ns)
        s->at_ns = at;
    if (add.nwords > s->nwords) {
        uint64_t *nb = realloc(s->bits, add.nwords * sizeof(*nb));
        if (!nb) {
            free(add.bits);
            return LH_ENOMEM;
        }
        memset(nb + s->nwords, 0, (add.nwords - s->nwords) * sizeof(*nb));
        s->bits = nb;
        s->nwords = add.nwords;
    }
    for (size_t i = 0; i < add.nwords; i++)
        s->bits[i] |= add.bits[i];
    free(add.bits);
    return 0;
}

int lh_audit_fold_add(struct lh_audit_fold *f, const char *text, size_t len, struct lh_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return lh_err_set(err, LH_EINVAL, "ledger row: not a JSON object");
    }
    int rc = 0;
    int kind = kind_of(jstr(o, "kind"));
    const char *host = jstr(o, "host"), *file = jstr(o, "file");
    int64_t window = jint(o, "window", INT64_MIN);
    if (kind < 0 || window == INT64_MIN || !json_string_value(json_object_get(o, "batch"))) {
        rc = lh_err_set(err, LH_EINVAL, "ledger row: no kind, batch or window");
        goto out;
    }
    if (strcmp(jstr(o, "tenant"), f->tenant) != 0 || window < f->from ||
        (f->to && window >= f->to) || (f->host && strcmp(host, f->host) != 0) ||
        (f->file && strcmp(file, f->file) != 0))
        goto out;
    rc = kind == LH_AUDIT_ACKED ? add_acked(f, o, host, file, window)
                                : add_set(f, o, kind, host, file, window);
    if (rc == LH_ENOMEM)
        lh_err_set(err, rc, "ledger: out of memory");
    else if (rc < 0)
        lh_err_set(err, rc, "ledger row: bad idx");
out:
    json_decref(o);
    return rc;
}

static struct lh_audit_cell *cell_get(struct lh_audit_fold *f, const char *host,
                                      const char *file, int64_t window)
{
    char w[32];
    snprintf(w, sizeof(w), "%lld", (long long)window);
    const char *parts[] = { host, file, w };
    if (key_build(&f->key, parts, 3) < 0)
        return NULL;
    int isnew;
    struct lh_audit_cell *c = table_get(&f->cells, f->key.data, f->key.len, sizeof(*c), &isnew);
    if (!c)
        return NULL;
    if (isnew) {
        c->host = strdup(host);
        c->file = strdup(file);
        c->window = window;
        c->agent_records = -1;
        if (!c->host || !c->file)
            return NULL;   /* freed with the table */
    }
    return c;
}

static int cmp_cell(const void *a, const void *b)
{
    const struct lh_audit_cell *x = a, *y = b;
    int r = strcmp(x->host, y->host);
    if (!r)
        r = strcmp(x->file, y->file);
    if (!r)
        r = x->window < y->window ? -1 : x->window > y->window;
    return r;
}

static int cmp_boot(const void *a, const void *b)
{
    const struct boot_val *x = *(struct boot_val *const *)a, *y = *(struct boot_val *const *)b;
    int r = strcmp(x->host, y->host);
    if (!r)
        r = strcmp(x->file, y->file);
    if (!r)
        r = strcmp(x->boot, y->boot);
    if (!r)
        r = x->window < y->window ? -1 : x->window > y->window;
    return r;
}

/* The agent's counters: per (host, file, boot, window) the maxima; each
 * window is charged with what the counters grew since the boot's earlier
 * windows. */
static int agent_counts(struct lh_audit_fold *f)
{
    for (size_t i = 0; i < f->acked.cap; i++) {
        struct acked_val *a = f->acked.e[i].val;
        if (!f->acked.e[i].key || !a->boot || a->read < 0)
            continue;
        char w[32];
        snprintf(w, sizeof(w), "%lld", (long long)a->window);
        const char *parts[] = { a->host, a->file, a->boot, w };
        if (key_build(&f->key, parts, 4) < 0)
            return LH_ENOMEM;
        int isnew;
        struct boot_val *b = table_get(&f->boots, f->key.data, f->key.len, sizeof(*b), &isnew);
        if (!b)
            return LH_ENOMEM;
        if (isnew) {
            b->host = strdup(a->host);
            b->file = strdup(a->file);
            b->boot = strdup(a->boot);
            b->window = a->window;
            if (!b->host || !b->file || !b->boot)
                return LH_ENOMEM;
        }
        b->read = max64(b->read, a->read);
        b->acked = max64(b->acked, a->acked);
        b->dropped = max64(b->dropped, a->dropped);
        b->sampled = max64(b->sampled, a->sampled);
    }
    struct boot_val **v = calloc(f->boots.n ? f->boots.n : 1, sizeof(*v));
    if (!v)
        return LH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < f->boots.cap; i++)
        if (f->boots.e[i].key)
            v[n++] = f->boots.e[i].val;
    qsort(v, n, sizeof(*v), cmp_boot);
    int64_t pr = 0, pa = 0, pd = 0, ps = 0;
    for (size_t i = 0; i < n; i++) {
        struct boot_val *b = v[i];
        if (i == 0 || strcmp(b->host, v[i - 1]->host) || strcmp(b->file, v[i - 1]->file) ||
            strcmp(b->boot, v[i - 1]->boot))
            pr = pa = pd = ps = 0;
        struct lh_audit_cell *c = cell_get(f, b->host, b->file, b->window);
        if (!c) {
            free(v);
            return LH_ENOMEM;
        }
        c->read += (uint64_t)(max64(b->read, pr) - pr);
        c->agent_acked += (uint64_t)(max64(b->acked, pa) - pa);
        c->agent_dropped += (uint64_t)(max64(b->dropped, pd) - pd);
        c->agent_sampled += (uint64_t)(max64(b->sampled, ps) - ps);
        pr = max64(pr, b->read);
        pa = max64(pa, b->acked);
        pd = max64(pd, b->dropped);
        ps = max64(ps, b->sampled);
    }
    free(v);
    return 0;
}

struct lh_audit_cell *lh_audit_fold_cells(struct lh_audit_fold *f, size_t *nout)
{
    *nout = 0;
    if (f->out) {
        *nout = f->nout;
        return f->out;
    }
    for (size_t i = 0; i < f->acked.cap; i++) {
        struct acked_val *a = f->acked.e[i].val;
        if (!f->acked.e[i].key)
            continue;
        struct lh_audit_cell *c = cell_get(f, a->host, a->file, a->window);
        if (!c)
            return NULL;
        c->acknowledged += (uint64_t)(a->records > 0 ? a->records : 0);
        if (a->at_ns > c->last_at_ns)
            c->last_at_ns = a->at_ns;
        if (a->agent_records >= 0)
            c->agent_records = (c->agent_records < 0 ? 0 : c->agent_records) + a->agent_records;
    }
    for (size_t i = 0; i < f->sets.cap; i++) {
        struct set_val *s = f->sets.e[i].val;
        if (!f->sets.e[i].key)
            continue;
        struct lh_audit_cell *c = cell_get(f, s->host, s->file, s->window);
        if (!c)
            return NULL;
        uint64_t n = set_count(s);
        if (s->kind == LH_AUDIT_DLQ) {
            /* less the ones replayed from the DLQ and written since */
            const struct entry *e = &f->sets.e[i];
            size_t skip = strlen(e->key) + 1;   /* "dlq\0" */
            lh_buf_reset(&f->key);
            if (lh_buf_append(&f->key, "replayed", 9) < 0 ||
                lh_buf_append(&f->key, e->key + skip, e->klen - skip) < 0)
                return NULL;
            const struct set_val *r = table_find(&f->sets, f->key.data, f->key.len);
            for (size_t w = 0; r && w < s->nwords && w < r->nwords; w++)
                n -= (uint64_t)__builtin_popcountll(s->bits[w] & r->bits[w]);
        }
        if (s->at_ns > c->last_at_ns)
            c->last_at_ns = s->at_ns;
        if (s->archive)
            c->archive_seen = 1;
        switch (s->kind) {
        case LH_AUDIT_SAMPLED: *(s->archive ? &c->arch_sampled : &c->hot_sampled) += n; break;
        case LH_AUDIT_DLQ: *(s->archive ? &c->arch_dlq : &c->hot_dlq) += n; break;
        case LH_AUDIT_DROPPED: *(s->archive ? &c->arch_dropped : &c->hot_dropped) += n; break;
        case LH_AUDIT_ARCHIVED: c->archived += n; break;
        default: break;
        }
    }
    if (agent_counts(f) < 0)
        return NULL;
    struct lh_audit_cell *out = calloc(f->cells.n ? f->cells.n : 1, sizeof(*out));
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < f->cells.cap; i++)
        if (f->cells.e[i].key)
            out[n++] = *(struct lh_audit_cell *)f->cells.e[i].val;
    qsort(out, n, sizeof(*out), cmp_cell);
    f->out = out;
    f->nout = n;
    *nout = n;
    return out;
}

int64_t lh_audit_unexplained(const struct lh_audit_cell *c)
{
    return (int64_t)c->acknowledged - (int64_t)c->indexed - (int64_t)c->hot_dlq -
           (int64_t)c->hot_sampled - (int64_t)c->hot_dropped;
}

int64_t lh_audit_archive_unexplained(const struct lh_audit_cell *c)
{
    return (int64_t)c->acknowledged - (int64_t)c->archived - (int64_t)c->arch_dlq -
           (int64_t)c->arch_sampled - (int64_t)c->arch_dropped;
}

struct totals {
    uint64_t read, acknowledged, indexed, archived, dlq, sampled, dropped;
    int64_t agent_pending, unexplained, pending, arch_unexplained, arch_pending;
};

int lh_audit_report_json(struct lh_audit_fold *f, const struct lh_audit_opts *o,
                         struct lh_buf *out)
{
    size_t n;
    struct lh_audit_cell *cells = lh_audit_fold_cells(f, &n);
    if (!cells)
        return LH_ENOMEM;
    struct totals t = { 0 };
    int rc = lh_buf_puts(out, "{\"tenant\":");
    rc |= lh_buf_json_str(out, f->tenant, strlen(f->tenant));
    rc |= lh_buf_printf(out, ",\"window_seconds\":%d,\"windows\":[", LH_AUDIT_WINDOW_SEC);
    for (size_t i = 0; i < n; i++) {
        const struct lh_audit_cell *c = &cells[i];
        int settled = c->last_at_ns == 0 || o->now_ns - c->last_at_ns >= o->settle_ns;
        int64_t u = lh_audit_unexplained(c);
        int64_t pend = 0;
        if (u != 0 && !settled) {
            pend = u;
            u = 0;
        }
        /* lines read that are neither dropped, sampled nor acknowledged yet
         * (the agent's own acked counter lags by the batches in flight) */
        int64_t agent_pending = c->read ? (int64_t)c->read - (int64_t)c->agent_dropped -
                                              (int64_t)c->agent_sampled - (int64_t)c->acknowledged
                                        : 0;
        char ws[40];
        lh_time_format_rfc3339(c->window * 1000000000, 0, ws, sizeof(ws));
        rc |= lh_buf_puts(out, i ? ",{\"host\":" : "{\"host\":");
        rc |= lh_buf_json_str(out, c->host, strlen(c->host));
        rc |= lh_buf_puts(out, ",\"file\":");
        rc |= lh_buf_json_str(out, c->file, strlen(c->file));
        rc |= lh_buf_printf(out, ",\"window\":\"%s\",\"window_start\":%lld,\"read\":%llu,"
                            "\"acknowledged\":%llu,\"indexed\":%llu,\"archived\":%llu,"
                            "\"dead_lettered\":%llu,\"sampled\":%llu,\"dropped\":%llu,"
                            "\"unexplained\":%lld,\"pending\":%lld,\"agent\":{\"acked\":%llu,"
                            "\"dropped\":%llu,\"sampled\":%llu,\"pending\":%lld",
                            ws, (long long)c->window, (unsigned long long)c->read,
                            (unsigned long long)c->acknowledged, (unsigned long long)c->indexed,
                            (unsigned long long)c->archived, (unsigned long long)c->hot_dlq,
                            (unsigned long long)c->hot_sampled,
                            (unsigned long long)c->hot_dropped, (long long)u, (long long)pend,
                            (unsigned long long)c->agent_acked,
                            (unsigned long long)c->agent_dropped,
                            (unsigned long long)c->agent_sampled,
                            (long long)(agent_pending > 0 ? agent_pending : 0));
        if (c->agent_records >= 0)
            rc |= lh_buf_printf(out, ",\"records\":%lld", (long long)c->agent_records);
        rc |= lh_buf_putc(out, '}');
        t.read += c->read;
        t.acknowledged += c->acknowledged;
        t.indexed += c->indexed;
        t.archived += c->archived;
        t.dlq += c->hot_dlq;
        t.sampled += c->hot_sampled;
        t.dropped += c->hot_dropped;
        t.agent_pending += agent_pending;
        t.unexplained += u < 0 ? -u : u;
        t.pending += pend < 0 ? -pend : pend;
        if (o->archive) {
            int64_t au = lh_audit_archive_unexplained(c);
            int asettled = c->last_at_ns == 0 || o->now_ns - c->last_at_ns >= o->archive_settle_ns;
            int64_t ap = 0;
            if (au != 0 && !asettled) {
                ap = au;
                au = 0;
            }
            rc |= lh_buf_printf(out, ",\"archive\":{\"archived\":%llu,\"dead_lettered\":%llu,"
                                "\"sampled\":%llu,\"dropped\":%llu,\"unexplained\":%lld,"
                                "\"pending\":%lld}",
                                (unsigned long long)c->archived, (unsigned long long)c->arch_dlq,
                                (unsigned long long)c->arch_sampled,
                                (unsigned long long)c->arch_dropped, (long long)au, (long long)ap);
            t.arch_unexplained += au < 0 ? -au : au;
            t.arch_pending += ap < 0 ? -ap : ap;
        }
        rc |= lh_buf_putc(out, '}');
    }
    int ok = t.unexplained == 0 && t.arch_unexplained == 0;
    rc |= lh_buf_printf(out, "],\"totals\":{\"read\":%llu,\"acknowledged\":%llu,\"indexed\":%llu,"
                        "\"archived\":%llu,\"dead_lettered\":%llu,\"sampled\":%llu,"
                        "\"dropped\":%llu,\"unexplained\":%lld,\"pending\":%lld,"
                        "\"agent_pending\":%lld",
                        (unsigned long long)t.read, (unsigned long long)t.acknowledged,
                        (unsigned long long)t.indexed, (unsigned long long)t.archived,
                        (unsigned long long)t.dlq, (unsigned long long)t.sampled,
                        (unsigned long long)t.dropped, (long long)t.unexplained,
                        (long long)t.pending,
                        (long long)(t.agent_pending > 0 ? t.agent_pending : 0));
    if (o->archive)
        rc |= lh_buf_printf(out, ",\"archive_unexplained\":%lld,\"archive_pending\":%lld",
                            (long long)t.arch_unexplained, (long long)t.arch_pending);
    rc |= lh_buf_printf(out, "},\"ok\":%s}", ok ? "true" : "false");
    return rc ? LH_ENOMEM : ok;
}
