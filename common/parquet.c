/* parquet.c - our own Parquet writer and reader for archive objects
 * (see lh/archive_format.h for the schema and the choices made).
 *
 * Writer: per row group and leaf column, an optional dictionary (PLAIN,
 * one dictionary page) and data pages v1 holding [repetition levels]
 * [definition levels] (each a 4-byte length + RLE/bit-packed hybrid) and
 * the values (PLAIN, or a bit width byte + hybrid-coded dictionary
 * indices); each page body compressed with zstd; then the FileMetaData
 * footer in Thrift Compact Protocol, its length and "PAR1".
 * Reader: the footer, then for each column chunk its pages in order. It
 * reads what this writer produces and the common variants of other writers
 * (PLAIN_DICTIONARY, uncompressed chunks, data pages v2); every length and
 * offset is checked against the file. */
#include "lh/archive_format.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "archive_impl.h"
#include "lh/thrift.h"

/* ---- Parquet constants (parquet.thrift) ---- */

enum { PT_INT64 = 2, PT_BYTE_ARRAY = 6 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };
enum { CT_UTF8 = 0, CT_MAP = 1, CT_TIMESTAMP_MILLIS = 9, CT_TIMESTAMP_MICROS = 10 };
enum {
    ENC_PLAIN = 0,
    ENC_PLAIN_DICTIONARY = 2,
    ENC_RLE = 3,
    ENC_RLE_DICTIONARY = 8,
};
enum { CODEC_UNCOMPRESSED = 0, CODEC_ZSTD = 6 };
enum { PAGE_DATA = 0, PAGE_DICT = 2, PAGE_DATA_V2 = 3 };

#define SCHEMA_VERSION "2"          /* 2: raw_prefix/raw_suffix */
#define CREATED_BY "loghaul version 0.1.0"
#define MAX_PAGE_BYTES (256u << 20)   /* reader: larger pages are refused */
#define MAX_ROWS (1 << 26)            /* reader: larger row groups are refused */
#define STAT_MAX_LEN 64               /* string min/max longer than this are not written */
#define SPLIT_MIN_MSG 16              /* shorter messages are not cut out of raw */

/* ---- the schema ---- */

/* K_RAW, K_RAW_PRE, K_RAW_SUF: the raw line, stored whole in `raw` or, when
 * the message (K_MSG) is a part of it, as `raw_prefix` + message +
 * `raw_suffix` with `raw` absent (see lh/archive_format.h). */
enum colkind {
    K_TS, K_STR, K_LEVEL, K_MSG, K_RAW, K_RAW_PRE, K_RAW_SUF, K_MAP_KEY, K_MAP_VALUE
};

struct coldef {
    const char *name;
    enum colkind kind;
    size_t off;                /* K_STR, K_MSG, K_RAW: offsetof the string in struct lh_event */
};

#define EVF(f) offsetof(struct lh_event, f)

static const struct coldef cols[] = {
    { "timestamp", K_TS, 0 },
    { "id", K_STR, EVF(id) },
    { "tenant", K_STR, EVF(tenant) },
    { "service", K_STR, EVF(service) },
    { "level", K_LEVEL, 0 },
    { "host", K_STR, EVF(host) },
    { "trace_id", K_STR, EVF(trace_id) },
    { "span_id", K_STR, EVF(span_id) },
    { "user_id", K_STR, EVF(user_id) },
    { "message", K_MSG, EVF(message) },
    { "raw", K_RAW, EVF(raw) },
    { "raw_prefix", K_RAW_PRE, 0 },
    { "raw_suffix", K_RAW_SUF, 0 },
    { "stream", K_STR, EVF(stream) },
    { "container_id", K_STR, EVF(container_id) },
    { "k8s_namespace", K_STR, EVF(k8s_namespace) },
    { "k8s_pod", K_STR, EVF(k8s_pod) },
    { "k8s_container", K_STR, EVF(k8s_container) },
    { "region", K_STR, EVF(region) },
    { "file", K_STR, EVF(file) },
    { "custom_metadata", K_MAP_KEY, 0 },
    { "custom_metadata", K_MAP_VALUE, 0 },
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))
#define MAP_GROUP "custom_metadata"
#define MAP_ENTRY "key_value"

static const char *ev_str(const struct lh_event *ev, size_t c)
{
    if (cols[c].kind == K_LEVEL)
        return lh_level_name(ev->level);
    return *(const char *const *)((const char *)ev + cols[c].off);
}

/* Columns whose values split_raw prepares once per row group. */
static int is_text(enum colkind k)
{
    return k == K_MSG || k == K_RAW || k == K_RAW_PRE || k == K_RAW_SUF;
}

static int max_def_of(enum colkind k)
{
    return k == K_TS ? 0 : k == K_MAP_KEY ? 2 : k == K_MAP_VALUE ? 3 : 1;
}

static int bit_width(uint32_t max)
{
    int w = 0;
    while (max) {
        w++;
        max >>= 1;
    }
    return w;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int put_u32le(struct lh_buf *b, uint32_t v)
{
    uint8_t t[4];
    put_le32(t, v);
    return lh_buf_append(b, t, 4);
}

static int put_i64le(struct lh_buf *b, int64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)((uint64_t)v >> (8 * i));
    return lh_buf_append(b, t, 8);
}

static int64_t get_i64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

static int put_uvarint(struct lh_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = v & 0x7f;
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    return lh_buf_append(b, t, n);
}

/* ---- RLE / bit-packed hybrid ---- */

/* Appends v[0..n) in the hybrid encoding with bit width bw (0..32): runs
 * of 8 or more equal values as RLE runs, the rest in bit-packed groups of
 * 8 (the last group zero-padded: only at the very end, as the format
 * allows, since readers know the value count). */
static int hybrid_encode(struct lh_buf *b, const uint32_t *v, size_t n, int bw)
{
    size_t vbytes = (size_t)(bw + 7) / 8;
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i >= 8) {
            uint8_t val[4];
            put_le32(val, v[i]);
            if (put_uvarint(b, (uint64_t)(j - i) << 1) < 0 || lh_buf_append(b, val, vbytes) < 0)
                return LH_ENOMEM;
            i = j;
            continue;
        }
        /* literal groups until a run of >= 8 starts at a group boundary */
        size_t start = i, groups = 0;
        while (i < n) {
            i = i + 8 < n ? i + 8 : n;
            groups++;
            if (i >= n)
                break;
            size_t k = i + 1;
            while (k < n && k - i < 8 && v[k] == v[i])
                k++;
            if (k - i >= 8)
                break;
        }
        if (put_uvarint(b, (uint64_t)groups << 1 | 1) < 0 ||
            lh_buf_reserve(b, groups * (size_t)bw) < 0)
            return LH_ENOMEM;
        uint8_t *p = (uint8_t *)b->data + b->len;
        memset(p, 0, groups * (size_t)bw);
        size_t bit = 0;
        for (size_t k = start; k < start + groups * 8; k++) {
            uint32_t x = k < n ? v[k] : 0;
            for (int t = 0; t < bw; t++, bit++)
                if (x >> t & 1)
                    p[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
        b->len += groups * (size_t)bw;
        b->data[b->len] = '\0';
    }
    return 0;
}

/* Decodes n values from p[0..len): the number of bytes consumed, or -1. */
static long hybrid_decode(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n)
{
    size_t pos = 0, got = 0, vbytes = (size_t)(bw + 7) / 8;
    if (bw < 0 || bw > 32)
        return -1;
    while (got < n) {
        uint64_t h = 0;
        int shift = 0;
        for (;;) {
            if (pos >= len || shift > 63)
                return -1;
            uint8_t c = p[pos++];
            h |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
            if (!(c & 0x80))
                break;
        }
        uint64_t cnt;            /* values in this run */
        if (h & 1) {
            uint64_t groups = h >> 1;
            if (groups == 0 || (bw && groups > (len - pos) / (size_t)bw))
                return -1;
            cnt = groups * 8;
            size_t take = cnt < n - got ? (size_t)cnt : n - got;
            size_t bit = pos * 8;
            for (size_t k = 0; k < take; k++) {
                uint32_t x = 0;
                for (int t = 0; t < bw; t++, bit++)
                    x |= (uint32_t)(p[bit >> 3] >> (bit & 7) & 1) << t;
                out[got++] = x;
            }
            pos += (size_t)groups * (size_t)bw;
        } else {
            cnt = h >> 1;
            if (cnt == 0 || vbytes > len - pos)
                return -1;
            uint32_t x = 0;
            for (size_t t = 0; t < vbytes; t++)
                x |= (uint32_t)p[pos + t] << (8 * t);
            pos += vbytes;
            if (cnt > n - got)
                cnt = n - got;   /* a final run may be longer than needed */
            for (uint64_t k = 0; k < cnt; k++)
                out[got++] = x;
        }
    }
    return (long)pos;
}

/* ---- writer ---- */

struct sv {                   /* a string value */
    const char *p;
    uint32_t n;
};

struct dict {
    struct sv *vals;          /* distinct values in first-seen order */
    size_t n, cap;
    uint32_t *slots;          /* open addressing: index+1, 0 = empty */
    size_t nslots;
    size_t bytes;             /* PLAIN size of the dictionary */
};

/* 8 bytes at a time: multiply and fold (the table is a power of two). */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t x = 0;
        memcpy(&x, p, n);
        h = (h ^ x) * 0xff51afd7ed558ccdull;
    }
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

static void dict_free(struct dict *d)
{
    free(d->vals);
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

/* The index of v in d, adding it: >= 0, or LH_ENOMEM. */
static long dict_add(struct dict *d, struct sv v)
{
    if ((d->n + 1) * 2 > d->nslots) {
        size_t ns = d->nslots ? d->nslots * 2 : 1024;
        uint32_t *s = calloc(ns, sizeof(*s));
        if (!s)
            return LH_ENOMEM;
        for (size_t i = 0; i < d->n; i++) {
            size_t h = (size_t)hash_bytes(d->vals[i].p, d->vals[i].n) & (ns - 1);
            while (s[h])
                h = (h + 1) & (ns - 1);
            s[h] = (uint32_t)(i + 1);
        }
        free(d->slots);
        d->slots = s;
        d->nslots = ns;
    }
    size_t h = (size_t)hash_bytes(v.p, v.n) & (d->nslots - 1);
    while (d->slots[h]) {
        struct sv *e = &d->vals[d->slots[h] - 1];
        if (e->n == v.n && memcmp(e->p, v.p, v.n) == 0)
            return (long)(d->slots[h] - 1);
        h = (h + 1) & (d->nslots - 1);
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 256;
        struct sv *nv = realloc(d->vals, nc * sizeof(*nv));
        if (!nv)
            return LH_ENOMEM;
        d->vals = nv;
        d->cap = nc;
    }
    d->vals[d->n] = v;
    d->slots[h] = (uint32_t)(d->n + 1);
    d->bytes += 4 + (size_t)v.n;
    return (long)d->n++;
}

struct chunkmeta {
    int64_t num_values;
    int64_t total_uncompressed;
    int64_t total_compressed;
    int64_t data_page_offset;
    int64_t dict_page_offset;    /* -1: no dictionary */
    int64_t null_count;          /* -1: not written */
    struct lh_buf min, max;      /* statistics values (PLAIN, no length prefix) */
    int has_minmax;
};

struct rgmeta {
    int64_t num_rows;
    int64_t file_offset;
    int64_t total_uncompressed;
    int64_t total_compressed;
    struct chunkmeta c[NCOLS];
};

/* One page being filled. */
struct page {
    uint32_t *def, *rep, *idx;   /* levels; dictionary indices */
    size_t nlev, nidx, caplev, capidx;
    struct lh_buf plain;         /* PLAIN values */
};

/* How a row's raw line is stored (computed once per row group). */
struct rawsplit {
    struct sv msg;                  /* valid UTF-8; p NULL when the event has none */
    struct sv raw;                  /* valid UTF-8; p NULL when the event has none */
    int64_t pre;                    /* -1: raw whole; else raw[0..pre) is raw_prefix */
    uint32_t suf;                   /* raw[suf..] is raw_suffix */
};

struct ent;

struct writer {
    const struct lh_parquet_opts *o;
    struct ent *ents;               /* scratch: the entries of one column chunk */
    size_t ecap;
    struct rawsplit *rs;            /* rows [rs_r0, ...) of the row group being written */
    size_t rs_r0;
    struct lh_buf *out;
    size_t file_start;
    struct lh_buf raw, comp, hdr;   /* scratch: page body, compressed body, page header */
    ZSTD_CCtx *zc;
    struct lh_arena fix;            /* UTF-8 repaired copies of strings */
    struct lh_err *err;
};

static int grow_u32(uint32_t **a, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 1024;
    while (nc < need)
        nc *= 2;
    uint32_t *p = realloc(*a, nc * sizeof(*p));
    if (!p)
        return LH_ENOMEM;
    *a = p;
    *cap = nc;
    return 0;
}

static int page_level(struct page *pg, uint32_t def, uint32_t rep)
{
    if (pg->nlev == pg->caplev) {
        size_t nc = pg->caplev ? pg->caplev * 2 : 1024;
        uint32_t *d = realloc(pg->def, nc * sizeof(*d));
        if (!d)
            return LH_ENOMEM;
        pg->def = d;
        uint32_t *r = realloc(pg->rep, nc * sizeof(*r));
        if (!r)
            return LH_ENOMEM;
        pg->rep = r;
        pg->caplev = nc;
    }
    pg->def[pg->nlev] = def;
    pg->rep[pg->nlev] = rep;
    pg->nlev++;
    return 0;
}

static void page_reset(struct page *pg)
{
    pg->nlev = pg->nidx = 0;
    lh_buf_reset(&pg->plain);
}

static void page_free(struct page *pg)
{
    free(pg->def);
    free(pg->rep);
    free(pg->idx);
    lh_buf_free(&pg->plain);
}

static int w_nomem(struct writer *w)
{
    return lh_err_set(w->err, LH_ENOMEM, "parquet: out of memory");
}

static int64_t w_off(const struct writer *w) { return (int64_t)(w->out->len - w->file_start); }

/* Compresses w->raw and writes header + body; counts sizes into cm. */
static int emit_page(struct writer *w, struct chunkmeta *cm, int type, int32_t num_values,
                     int encoding, int max_def, int max_rep)
{
    size_t bound = ZSTD_compressBound(w->raw.len);
    lh_buf_reset(&w->comp);
    if (lh_buf_reserve(&w->comp, bound) < 0)
        return w_nomem(w);
    size_t clen = ZSTD_compress2(w->zc, w->comp.data, bound, w->raw.data ? w->raw.data : "",
                                 w->raw.len);
    if (ZSTD_isError(clen))
        return lh_err_set(w->err, LH_ERR, "parquet: zstd: %s", ZSTD_getErrorName(clen));
    if (w->raw.len > INT32_MAX || clen > INT32_MAX)
        return lh_err_set(w->err, LH_ETOOBIG, "parquet: page larger than 2 GiB");
    w->comp.len = clen;

    struct lh_thrift_writer t;
    lh_buf_reset(&w->hdr);
    lh_thrift_writer_init(&t, &w->hdr);
    lh_thrift_write_struct_begin(&t);
    lh_thrift_write_field_i32(&t, 1, type);
    lh_thrift_write_field_i32(&t, 2, (int32_t)w->raw.len);
    lh_thrift_write_field_i32(&t, 3, (int32_t)clen);
    if (type == PAGE_DICT) {
        lh_thrift_write_field_struct(&t, 7);
        lh_thrift_write_field_i32(&t, 1, num_values);
        lh_thrift_write_field_i32(&t, 2, ENC_PLAIN);
        lh_thrift_write_struct_end(&t);
    } else {
        lh_thrift_write_field_struct(&t, 5);
        lh_thrift_write_field_i32(&t, 1, num_values);
        lh_thrift_write_field_i32(&t, 2, encoding);
        lh_thrift_write_field_i32(&t, 3, ENC_RLE);
        lh_thrift_write_field_i32(&t, 4, ENC_RLE);
        lh_thrift_write_struct_end(&t);
    }
    lh_thrift_write_struct_end(&t);
    (void)max_def;
    (void)max_rep;
    if (lh_thrift_writer_error(&t) < 0)
        return w_nomem(w);

    if (type == PAGE_DICT)
        cm->dict_page_offset = w_off(w);
    else if (cm->data_page_offset < 0)
        cm->data_page_offset = w_off(w);
    if (lh_buf_append(w->out, w->hdr.data, w->hdr.len) < 0 ||
        lh_buf_append(w->out, w->comp.data, clen) < 0)
        return w_nomem(w);
    cm->total_uncompressed += (int64_t)(w->hdr.len + w->raw.len);
    cm->total_compressed += (int64_t)(w->hdr.len + clen);
    return 0;
}

static int flush_page(struct writer *w, struct chunkmeta *cm, struct page *pg, int max_def,
                      int max_rep, const struct dict *d)
{
    if (pg->nlev == 0)
        return 0;
    lh_buf_reset(&w->raw);
    if (max_rep > 0) {
        size_t at = w->raw.len;
        if (put_u32le(&w->raw, 0) < 0 ||
            hybrid_encode(&w->raw, pg->rep, pg->nlev, bit_width((uint32_t)max_rep)) < 0)
            return w_nomem(w);
        put_le32((uint8_t *)w->raw.data + at, (uint32_t)(w->raw.len - at - 4));
    }
    if (max_def > 0) {
        size_t at = w->raw.len;
        if (put_u32le(&w->raw, 0) < 0 ||
            hybrid_encode(&w->raw, pg->def, pg->nlev, bit_width((uint32_t)max_def)) < 0)
            return w_nomem(w);
        put_le32((uint8_t *)w->raw.data + at, (uint32_t)(w->raw.len - at - 4));
    }
    int enc = ENC_PLAIN;
    if (d) {
        int bw = bit_width(d->n > 1 ? (uint32_t)(d->n - 1) : 1);
        enc = ENC_RLE_DICTIONARY;
        if (lh_buf_putc(&w->raw, (char)bw) < 0 || hybrid_encode(&w->raw, pg->idx, pg->nidx, bw) < 0)
            return w_nomem(w);
    } else if (lh_buf_append(&w->raw, pg->plain.data, pg->plain.len) < 0) {
        return w_nomem(w);
    }
    if (pg->nlev > INT32_MAX)
        return lh_err_set(w->err, LH_ETOOBIG, "parquet: too many values in a page");
    int rc = emit_page(w, cm, PAGE_DATA, (int32_t)pg->nlev, enc, max_def, max_rep);
    cm->num_values += (int64_t)pg->nlev;
    page_reset(pg);
    return rc;
}

static int cmp_sv(struct sv a, struct sv b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = memcmp(a.p, b.p, n);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

/* Collects the string values of column c over rows [r0, r1): calls fn for
 * each level entry with its value (NULL for undefined). */
struct sentry {
    uint32_t def, rep;
    struct sv v;
    int has;
};

static size_t row_entries(const struct writer *w, const struct lh_event *evs, size_t r,
                          size_t c, struct sentry *e, size_t cap, size_t j0)
{
    /* returns the number of entries of this row for column c; fills e with
     * those from index j0 on, at most cap of them (maps can be long) */
    const struct lh_event *ev = &evs[r];
    enum colkind k = cols[c].kind;
    if (is_text(k)) {
        const struct rawsplit *rs = &w->rs[r - w->rs_r0];
        struct sv v = { NULL, 0 };
        if (k == K_MSG) {
            v = rs->msg;
        } else if (k == K_RAW && rs->pre < 0) {
            v = rs->raw;
        } else if (k == K_RAW_PRE && rs->pre >= 0) {
            v.p = rs->raw.p;
            v.n = (uint32_t)rs->pre;
        } else if (k == K_RAW_SUF && rs->pre >= 0) {
            v.p = rs->raw.p + rs->suf;
            v.n = rs->raw.n - rs->suf;
        }
        if (j0 == 0 && cap) {
            e[0].rep = 0;
            e[0].has = v.p != NULL;
            e[0].def = v.p ? 1 : 0;
            e[0].v = v;
        }
        return 1;
    }
    if (k == K_STR || k == K_LEVEL) {
        const char *s = ev_str(ev, c);
        if (j0 == 0 && cap) {
            e[0].rep = 0;
            e[0].has = s != NULL;
            e[0].def = s ? 1 : 0;
            e[0].v.p = s;
            e[0].v.n = s ? (uint32_t)strlen(s) : 0;
        }
        return 1;
    }
    /* map leaves */
    if (ev->nmeta == 0 || !ev->meta) {
        if (j0 == 0 && cap) {
            e[0].rep = 0;
            e[0].def = 0;
            e[0].has = 0;
            e[0].v.p = NULL;
            e[0].v.n = 0;
        }
        return 1;
    }
    for (size_t j = j0, m = 0; j < ev->nmeta && m < cap; j++, m++) {
        const char *s = k == K_MAP_KEY ? (ev->meta[j].key ? ev->meta[j].key : "")
                                       : ev->meta[j].value;
        e[m].rep = j ? 1 : 0;
        e[m].has = s != NULL;
        e[m].def = s ? (k == K_MAP_KEY ? 2 : 3) : 2;
        e[m].v.p = s;
        e[m].v.n = s ? (uint32_t)strlen(s) : 0;
    }
    return ev->nmeta;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* STRING columns must hold valid UTF-8 (Athena and Arrow refuse anything
 * else): invalid bytes become U+FFFD, in a copy from the writer's arena. */
static int fix_utf8(struct writer *w, struct sv *v)
{
    const uint8_t *p = (const uint8_t *)v->p;
    size_t i = 0, n = v->n;
    while (i + 8 <= n) {         /* ASCII fast path, 8 bytes at a time */
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (x & 0x8080808080808080ull)
            break;
        i += 8;
    }
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (!l)
            break;
        i += l;
    }
    if (i == n)
        return 0;
    char *c = lh_arena_alloc(&w->fix, n * 3 + 1);
    if (!c)
        return w_nomem(w);
    size_t o = 0;
    for (i = 0; i < n;) {
        size_t l = utf8_seq(p + i, n - i);
        if (l) {
            memcpy(c + o, p + i, l);
            o += l;
            i += l;
        } else {
            memcpy(c + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    c[o] = '\0';
    v->p = c;
    v->n = (uint32_t)o;
    return 0;
}

static int check_len(struct writer *w, const char *s)
{
    if (s && strlen(s) > UINT32_MAX / 4)
        return lh_err_set(w->err, LH_ETOOBIG, "parquet: a string of more than 1 GiB");
    return 0;
}

/* An occurrence of needle[0..nn) in hay[0..hn), or NULL: at the end when it
 * is there (where parsers most often take the message from), else the
 * first. Candidates are found by the needle's head (glibc's memmem is much
 * faster on short needles than on long ones) and compared in full. */
static const char *find_text(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn > hn)
        return NULL;
    if (memcmp(hay + hn - nn, needle, nn) == 0)
        return hay + hn - nn;
    size_t head = nn < 32 ? nn : 32;
    const char *p = hay, *end = hay + hn;
    while ((size_t)(end - p) >= nn) {
        const char *at = memmem(p, (size_t)(end - p) - (nn - head), needle, head);
        if (!at)
            return NULL;
        if (memcmp(at + head, needle + head, nn - head) == 0)
            return at;
        p = at + 1;
    }
    return NULL;
}

/* Fills w->rs for rows [r0, r1): raw and message repaired to valid UTF-8;
 * unless opts keep_raw, a raw line that holds the message (see find_text)
 * is cut into raw_prefix and raw_suffix around it. Both parts
 * are valid UTF-8 too: a valid message starts with a lead byte, so its
 * place in a valid raw line starts and ends on character boundaries. */
static int split_raw(struct writer *w, const struct lh_event *evs, size_t r0, size_t r1)
{
    struct rawsplit *rs = realloc(w->rs, (r1 - r0 ? r1 - r0 : 1) * sizeof(*rs));
    if (!rs)
        return w_nomem(w);
    w->rs = rs;
    w->rs_r0 = r0;
    for (size_t r = r0; r < r1; r++, rs++) {
        const char *raw = evs[r].raw, *msg = evs[r].message;
        int rc;
        rs->pre = -1;
        rs->suf = 0;
        rs->raw.p = raw;
        rs->raw.n = 0;
        rs->msg.p = msg;
        rs->msg.n = 0;
        if (msg && ((rc = check_len(w, msg)) < 0 ||
                    (rs->msg.n = (uint32_t)strlen(msg), rc = fix_utf8(w, &rs->msg)) < 0))
            return rc;
        if (!raw)
            continue;
        if ((rc = check_len(w, raw)) < 0)
            return rc;
        rs->raw.n = (uint32_t)strlen(raw);
        if ((rc = fix_utf8(w, &rs->raw)) < 0)
            return rc;
        if (w->o->keep_raw || !msg || rs->msg.n < SPLIT_MIN_MSG)
            continue;
        const char *at = find_text(rs->raw.p, rs->raw.n, rs->msg.p, rs->msg.n);
        if (at) {
            rs->pre = at - rs->raw.p;
            rs->suf = (uint32_t)(rs->pre + rs->msg.n);
        }
    }
    return 0;
}

/* The entries of one column chunk, gathered once (pass 1) and written from
 * there (pass 2): values repaired, dictionary indices assigned. */
struct ent {
    struct sv v;
    uint32_t def, rep;
    uint32_t idx;
};

static int write_str_chunk(struct writer *w, const struct lh_event *evs, size_t r0, size_t r1,
                           size_t c, struct chunkmeta *cm)
{
    int max_def = max_def_of(cols[c].kind);
    int max_rep = cols[c].kind == K_MAP_KEY || cols[c].kind == K_MAP_VALUE ? 1 : 0;
    struct dict d = { 0 };
    struct page pg = { 0 };
    struct sentry e[64];
    int use_dict = !w->o->no_dictionary;
    /* message, raw and its parts were checked and repaired by split_raw */
    int presplit = is_text(cols[c].kind);
    size_t nvals = 0, nnull = 0, nent = 0;
    struct sv mn = { 0 }, mx = { 0 };
    int rc = 0;

    /* pass 1: the entries, statistics and the dictionary decision */
    for (size_t r = r0; r < r1; r++) {
        size_t total = 1;
        for (size_t j0 = 0; j0 < total; j0 += 64) {
            total = row_entries(w, evs, r, c, e, 64, j0);
            size_t m = total - j0 < 64 ? total - j0 : 64;
            if (nent + m > w->ecap) {
                size_t nc = w->ecap ? w->ecap * 2 : 4096;
                while (nc < nent + m)
                    nc *= 2;
                struct ent *ne = realloc(w->ents, nc * sizeof(*ne));
                if (!ne) {
                    rc = w_nomem(w);
                    goto out;
                }
                w->ents = ne;
                w->ecap = nc;
            }
            for (size_t k = 0; k < m; k++) {
                struct ent *en = &w->ents[nent++];
                en->def = e[k].def;
                en->rep = e[k].rep;
                en->v.p = NULL;
                en->v.n = 0;
                en->idx = 0;
                if (!e[k].has) {
                    nnull++;
                    continue;
                }
                if (!presplit && ((rc = check_len(w, e[k].v.p)) < 0 ||
                                  (rc = fix_utf8(w, &e[k].v)) < 0))
                    goto out;
                en->v = e[k].v;
                if (nvals == 0 || cmp_sv(e[k].v, mn) < 0)
                    mn = e[k].v;
                if (nvals == 0 || cmp_sv(e[k].v, mx) > 0)
                    mx = e[k].v;
                nvals++;
                if (use_dict) {
                    long ix = dict_add(&d, e[k].v);
                    if (ix < 0) {
                        rc = w_nomem(w);
                        goto out;
                    }
                    en->idx = (uint32_t)ix;
                    /* too big or too many distinct values: PLAIN pays more;
                     * nearly all distinct early on (ids, free text): so it
                     * stays, by far most likely */
                    if (d.bytes > (1u << 20) || d.n > 65536 ||
                        (nvals == 1024 && d.n > 1000))
                        use_dict = 0;
                }
            }
        }
    }
    if (use_dict && (nvals == 0 || d.n * 2 > nvals))
        use_dict = 0;
    if (!use_dict)
        dict_free(&d);

    cm->null_count = max_rep ? -1 : (int64_t)nnull;
    if (nvals && mn.n <= STAT_MAX_LEN && mx.n <= STAT_MAX_LEN) {
        if (lh_buf_append(&cm->min, mn.p, mn.n) < 0 || lh_buf_append(&cm->max, mx.p, mx.n) < 0) {
            rc = w_nomem(w);
            goto out;
        }
        cm->has_minmax = 1;
    }

    if (use_dict) {
        lh_buf_reset(&w->raw);
        for (size_t i = 0; i < d.n; i++)
            if (put_u32le(&w->raw, d.vals[i].n) < 0 ||
                lh_buf_append(&w->raw, d.vals[i].p, d.vals[i].n) < 0) {
                rc = w_nomem(w);
                goto out;
            }
        if ((rc = emit_page(w, cm, PAGE_DICT, (int32_t)d.n, ENC_PLAIN, 0, 0)) < 0)
            goto out;
    }

    /* pass 2: pages, cut at row boundaries */
    for (size_t i = 0; i < nent; i++) {
        const struct ent *en = &w->ents[i];
        if (en->rep == 0 && i > 0) {
            size_t approx = use_dict ? pg.nidx * 2 : pg.plain.len;
            if (approx + pg.nlev / 4 >= w->o->page_bytes &&
                (rc = flush_page(w, cm, &pg, max_def, max_rep, use_dict ? &d : NULL)) < 0)
                goto out;
        }
        if (page_level(&pg, en->def, en->rep) < 0) {
            rc = w_nomem(w);
            goto out;
        }
        if (!en->v.p)
            continue;
        if (use_dict) {
            if (grow_u32(&pg.idx, &pg.capidx, pg.nidx + 1) < 0) {
                rc = w_nomem(w);
                goto out;
            }
            pg.idx[pg.nidx++] = en->idx;
        } else if (put_u32le(&pg.plain, en->v.n) < 0 ||
                   lh_buf_append(&pg.plain, en->v.p, en->v.n) < 0) {
            rc = w_nomem(w);
            goto out;
        }
    }
    rc = flush_page(w, cm, &pg, max_def, max_rep, use_dict ? &d : NULL);
out:
    dict_free(&d);
    page_free(&pg);
    return rc;
}

static int64_t ts_value(const struct writer *w, int64_t ns)
{
    if (!w->o->ts_micros)
        return ns;
    return ns >= 0 ? ns / 1000 : -((-(ns + 1)) / 1000) - 1;   /* floor division */
}

static int write_ts_chunk(struct writer *w, const struct lh_event *evs, size_t r0, size_t r1,
                          struct chunkmeta *cm)
{
    struct page pg = { 0 };
    int64_t mn = 0, mx = 0;
    int rc = 0;
    for (size_t r = r0; r < r1; r++) {
        int64_t v = ts_value(w, evs[r].ts_ns);
        if (r == r0 || v < mn)
            mn = v;
        if (r == r0 || v > mx)
            mx = v;
        if (page_level(&pg, 0, 0) < 0 || put_i64le(&pg.plain, v) < 0) {
            rc = w_nomem(w);
            goto out;
        }
        if (pg.plain.len >= w->o->page_bytes && (rc = flush_page(w, cm, &pg, 0, 0, NULL)) < 0)
            goto out;
    }
    if ((rc = flush_page(w, cm, &pg, 0, 0, NULL)) < 0)
        goto out;
    cm->null_count = 0;
    if (r1 > r0) {
        if (put_i64le(&cm->min, mn) < 0 || put_i64le(&cm->max, mx) < 0) {
            rc = w_nomem(w);
            goto out;
        }
        cm->has_minmax = 1;
    }
out:
    page_free(&pg);
    return rc;
}

static void write_schema_string(struct lh_thrift_writer *t, const char *name, int rep)
{
    lh_thrift_write_struct_begin(t);
    lh_thrift_write_field_i32(t, 1, PT_BYTE_ARRAY);
    lh_thrift_write_field_i32(t, 3, rep);
    lh_thrift_write_field_string(t, 4, name);
    lh_thrift_write_field_i32(t, 6, CT_UTF8);
    lh_thrift_write_field_struct(t, 10);      /* LogicalType */
    lh_thrift_write_field_struct(t, 1);       /* STRING */
    lh_thrift_write_struct_end(t);
    lh_thrift_write_struct_end(t);
    lh_thrift_write_struct_end(t);
}

static void write_schema(struct lh_thrift_writer *t, const struct lh_parquet_opts *o)
{
    lh_thrift_write_field_list(t, 2, LH_THRIFT_STRUCT, (uint32_t)(1 + (NCOLS - 2) + 4));
    lh_thrift_write_struct_begin(t);
    lh_thrift_write_field_string(t, 4, "schema");
    lh_thrift_write_field_i32(t, 5, (int32_t)(NCOLS - 2 + 1));
    lh_thrift_write_struct_end(t);
    for (size_t c = 0; c < NCOLS; c++) {
        switch (cols[c].kind) {
        case K_TS:
            lh_thrift_write_struct_begin(t);
            lh_thrift_write_field_i32(t, 1, PT_INT64);
            lh_thrift_write_field_i32(t, 3, REP_REQUIRED);
            lh_thrift_write_field_string(t, 4, cols[c].name);
            if (o->ts_micros)
                lh_thrift_write_field_i32(t, 6, CT_TIMESTAMP_MICROS);
            lh_thrift_write_field_struct(t, 10);     /* LogicalType */
            lh_thrift_write_field_struct(t, 8);      /* TIMESTAMP */
            lh_thrift_write_field_bool(t, 1, 1);     /* isAdjustedToUTC */
            lh_thrift_write_field_struct(t, 2);      /* unit */
            lh_thrift_write_field_struct(t, o->ts_micros ? 2 : 3);   /* MICROS / NANOS */
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_end(t);
            break;
        case K_STR:
        case K_LEVEL:
        case K_MSG:
        case K_RAW:
        case K_RAW_PRE:
        case K_RAW_SUF:
            write_schema_string(t, cols[c].name, REP_OPTIONAL);
            break;
        case K_MAP_KEY:
            lh_thrift_write_struct_begin(t);
            lh_thrift_write_field_i32(t, 3, REP_OPTIONAL);
            lh_thrift_write_field_string(t, 4, MAP_GROUP);
            lh_thrift_write_field_i32(t, 5, 1);
            lh_thrift_write_field_i32(t, 6, CT_MAP);
            lh_thrift_write_field_struct(t, 10);
            lh_thrift_write_field_struct(t, 2);       /* MAP */
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_end(t);
            lh_thrift_write_struct_begin(t);
            lh_thrift_write_field_i32(t, 3, REP_REPEATED);
            lh_thrift_write_field_string(t, 4, MAP_ENTRY);
            lh_thrift_write_field_i32(t, 5, 2);
            lh_thrift_write_struct_end(t);
            write_schema_string(t, "key", REP_REQUIRED);
            break;
        case K_MAP_VALUE:
            write_schema_string(t, "value", REP_OPTIONAL);
            break;
        }
    }
}

static void write_path(struct lh_thrift_writer *t, size_t c)
{
    if (cols[c].kind == K_MAP_KEY || cols[c].kind == K_MAP_VALUE) {
        lh_thrift_write_field_list(t, 3, LH_THRIFT_BINARY, 3);
        lh_thrift_write_string(t, MAP_GROUP);
        lh_thrift_write_string(t, MAP_ENTRY);
        lh_thrift_write_string(t, cols[c].kind == K_MAP_KEY ? "key" : "value");
    } else {
        lh_thrift_write_field_list(t, 3, LH_THRIFT_BINARY, 1);
        lh_thrift_write_string(t, cols[c].name);
    }
}

static int write_footer(struct writer *w, const struct rgmeta *rgs, size_t nrg, int64_t nrows)
{
    struct lh_buf f = LH_BUF_INIT;
    struct lh_thrift_writer t;
    lh_thrift_writer_init(&t, &f);
    lh_thrift_write_struct_begin(&t);
    lh_thrift_write_field_i32(&t, 1, 2);
    write_schema(&t, w->o);
    lh_thrift_write_field_i64(&t, 3, nrows);
    lh_thrift_write_field_list(&t, 4, LH_THRIFT_STRUCT, (uint32_t)nrg);
    for (size_t g = 0; g < nrg; g++) {
        const struct rgmeta *rg = &rgs[g];
        lh_thrift_write_struct_begin(&t);
        lh_thrift_write_field_list(&t, 1, LH_THRIFT_STRUCT, (uint32_t)NCOLS);
        for (size_t c = 0; c < NCOLS; c++) {
            const struct chunkmeta *cm = &rg->c[c];
            int ts = cols[c].kind == K_TS;
            int dict = cm->dict_page_offset >= 0;
            int64_t start = dict ? cm->dict_page_offset : cm->data_page_offset;
            lh_thrift_write_struct_begin(&t);                 /* ColumnChunk */
            lh_thrift_write_field_i64(&t, 2, start);
            lh_thrift_write_field_struct(&t, 3);              /* ColumnMetaData */
            lh_thrift_write_field_i32(&t, 1, ts ? PT_INT64 : PT_BYTE_ARRAY);
            lh_thrift_write_field_list(&t, 2, LH_THRIFT_I32, ts ? 1 : dict ? 3 : 2);
            lh_thrift_write_i32(&t, ENC_PLAIN);
            if (!ts)
                lh_thrift_write_i32(&t, ENC_RLE);
            if (dict)
                lh_thrift_write_i32(&t, ENC_RLE_DICTIONARY);
            write_path(&t, c);
            lh_thrift_write_field_i32(&t, 4, CODEC_ZSTD);
            lh_thrift_write_field_i64(&t, 5, cm->num_values);
            lh_thrift_write_field_i64(&t, 6, cm->total_uncompressed);
            lh_thrift_write_field_i64(&t, 7, cm->total_compressed);
            lh_thrift_write_field_i64(&t, 9, cm->data_page_offset);
            if (dict)
                lh_thrift_write_field_i64(&t, 11, cm->dict_page_offset);
            if (cm->null_count >= 0 || cm->has_minmax) {
                lh_thrift_write_field_struct(&t, 12);         /* Statistics */
                if (cm->null_count >= 0)
                    lh_thrift_write_field_i64(&t, 3, cm->null_count);
                if (cm->has_minmax) {
                    lh_thrift_write_field_binary(&t, 5, cm->max.data, cm->max.len);
                    lh_thrift_write_field_binary(&t, 6, cm->min.data, cm->min.len);
                }
                lh_thrift_write_struct_end(&t);
            }
            lh_thrift_write_struct_end(&t);                   /* ColumnMetaData */
            lh_thrift_write_struct_end(&t);                   /* ColumnChunk */
        }
        lh_thrift_write_field_i64(&t, 2, rg->total_uncompressed);
        lh_thrift_write_field_i64(&t, 3, rg->num_rows);
        lh_thrift_write_field_i64(&t, 5, rg->file_offset);
        lh_thrift_write_field_i64(&t, 6, rg->total_compressed);
        lh_thrift_write_field_i16(&t, 7, (int16_t)g);          /* ordinal */
        lh_thrift_write_struct_end(&t);
    }
    lh_thrift_write_field_list(&t, 5, LH_THRIFT_STRUCT, 1);   /* key_value_metadata */
    lh_thrift_write_struct_begin(&t);
    lh_thrift_write_field_string(&t, 1, "loghaul.schema");
    lh_thrift_write_field_string(&t, 2, SCHEMA_VERSION);
    lh_thrift_write_struct_end(&t);
    lh_thrift_write_field_string(&t, 6, CREATED_BY);
    lh_thrift_write_field_list(&t, 7, LH_THRIFT_STRUCT, (uint32_t)NCOLS);   /* column_orders */
    for (size_t c = 0; c < NCOLS; c++) {
        lh_thrift_write_struct_begin(&t);
        lh_thrift_write_field_struct(&t, 1);                  /* TYPE_ORDER */
        lh_thrift_write_struct_end(&t);
        lh_thrift_write_struct_end(&t);
    }
    lh_thrift_write_struct_end(&t);
    int rc = 0;
    if (lh_thrift_writer_error(&t) < 0 || f.len > UINT32_MAX ||
        lh_buf_append(w->out, f.data, f.len) < 0 || put_u32le(w->out, (uint32_t)f.len) < 0 ||
        lh_buf_append(w->out, "PAR1", 4) < 0)
        rc = w_nomem(w);
    lh_buf_free(&f);
    return rc;
}

int lh_parquet_write(const struct lh_event *evs, size_t n, const struct lh_parquet_opts *opts,
                     struct lh_buf *out, struct lh_err *err)
{
    struct lh_parquet_opts o = { 0 };
    struct writer w = { 0 };
    struct rgmeta *rgs = NULL;
    size_t nrg = 0, orig_len = out->len;
    int rc;

    if (opts)
        o = *opts;
    if (!o.row_group_rows)
        o.row_group_rows = 1048576;
    if (!o.page_bytes)
        o.page_bytes = 4u << 20;
    if (!o.zstd_level)
        o.zstd_level = 3;
    w.o = &o;
    w.out = out;
    w.err = err;
    w.file_start = out->len;
    w.zc = ZSTD_createCCtx();
    if (!w.zc) {
        rc = w_nomem(&w);
        goto out;
    }
    ZSTD_CCtx_setParameter(w.zc, ZSTD_c_compressionLevel, o.zstd_level);
    nrg = (n + o.row_group_rows - 1) / o.row_group_rows;
    rgs = calloc(nrg ? nrg : 1, sizeof(*rgs));
    if (!rgs || lh_buf_append(out, "PAR1", 4) < 0) {
        rc = w_nomem(&w);
        goto out;
    }
    for (size_t g = 0; g < nrg; g++) {
        size_t r0 = g * o.row_group_rows, r1 = r0 + o.row_group_rows < n ? r0 + o.row_group_rows : n;
        struct rgmeta *rg = &rgs[g];
        rg->num_rows = (int64_t)(r1 - r0);
        rg->file_offset = w_off(&w);
        if ((rc = split_raw(&w, evs, r0, r1)) < 0)
            goto out;
        for (size_t c = 0; c < NCOLS; c++) {
            struct chunkmeta *cm = &rg->c[c];
            cm->data_page_offset = cm->dict_page_offset = -1;
            rc = cols[c].kind == K_TS ? write_ts_chunk(&w, evs, r0, r1, cm)
                                      : write_str_chunk(&w, evs, r0, r1, c, cm);
            if (rc < 0)
                goto out;
            rg->total_uncompressed += cm->total_uncompressed;
            rg->total_compressed += cm->total_compressed;
        }
    }
    rc = write_footer(&w, rgs, nrg, (int64_t)n);
out:
    if (rc < 0)
        out->len = orig_len;   /* leave out as it was */
    if (out->data)
        out->data[out->len] = '\0';
    for (size_t g = 0; rgs && g < nrg; g++)
        for (size_t c = 0; c < NCOLS; c++) {
            lh_buf_free(&rgs[g].c[c].min);
            lh_buf_free(&rgs[g].c[c].max);
        }
    free(rgs);
    free(w.rs);
    free(w.ents);
    lh_buf_free(&w.raw);
    lh_buf_free(&w.comp);
    lh_buf_free(&w.hdr);
    ZSTD_freeCCtx(w.zc);
    lh_arena_free(&w.fix);
    return rc;
}

/* ---- reader ---- */

struct pq_leaf {               /* a leaf column of the file's schema */
    int col;                   /* index in cols[], -1 when not ours */
    int type;                  /* physical type */
    int max_def, max_rep;
    int map_def;               /* map leaves: def level at which the map is present */
    int64_t ts_div;            /* timestamp: multiply to get ns */
};

struct pq_chunk {
    int64_t data_off, dict_off;    /* dict_off -1: none */
    int64_t num_values;
    int64_t total_compressed;
    int codec;
    int has_minmax;
    int64_t min, max;              /* timestamp statistics */
};

struct pq_rg {
    int64_t num_rows;
    struct pq_chunk *chunks;       /* one per leaf */
    size_t nchunks;
};

struct lh_parquet_file {
    uint64_t file_len;
    const uint8_t *data;       /* the bytes [data_off, data_off + data_len) of the file */
    uint64_t data_off;
    size_t data_len;
    int64_t num_rows;
    struct pq_leaf *leaves;
    size_t nleaves;
    struct pq_rg *rgs;
    size_t nrg;
};

void lh_parquet_close(struct lh_parquet_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nrg; i++)
        free(f->rgs[i].chunks);
    free(f->rgs);
    free(f->leaves);
    free(f);
}

int64_t lh_parquet_num_rows(const struct lh_parquet_file *f) { return f->num_rows; }

size_t lh_parquet_num_row_groups(const struct lh_parquet_file *f) { return f->nrg; }

struct sch_el {
    char name[64];
    int type, rep, num_children, converted;
    int ts_unit;               /* 0 none, 1 ms, 2 us, 3 ns (logical type) */
};

static void read_schema_el(struct lh_thrift_reader *r, struct sch_el *e)
{
    int16_t id;
    int t;
    size_t n;
    memset(e, 0, sizeof(*e));
    e->type = -1;
    e->converted = -1;
    lh_thrift_read_struct_begin(r);
    while (lh_thrift_read_field(r, &id, &t)) {
        if (id == 1 && t == LH_THRIFT_I32) {
            e->type = lh_thrift_read_i32(r);
        } else if (id == 3 && t == LH_THRIFT_I32) {
            e->rep = lh_thrift_read_i32(r);
        } else if (id == 4 && t == LH_THRIFT_BINARY) {
            const uint8_t *p = lh_thrift_read_binary(r, &n);
            if (n >= sizeof(e->name))
                n = sizeof(e->name) - 1;   /* long names are not ours anyway */
            if (p)
                memcpy(e->name, p, n);
            e->name[n] = '\0';
        } else if (id == 5 && t == LH_THRIFT_I32) {
            e->num_children = lh_thrift_read_i32(r);
        } else if (id == 6 && t == LH_THRIFT_I32) {
            e->converted = lh_thrift_read_i32(r);
        } else if (id == 10 && t == LH_THRIFT_STRUCT) {
            /* LogicalType union: look for TIMESTAMP (8) { 2: unit { 1|2|3 } } */
            int16_t lid, uid, tid;
            int lt, ut, tt;
            lh_thrift_read_struct_begin(r);
            while (lh_thrift_read_field(r, &lid, &lt)) {
                if (lid == 8 && lt == LH_THRIFT_STRUCT) {
                    lh_thrift_read_struct_begin(r);
                    while (lh_thrift_read_field(r, &tid, &tt)) {
                        if (tid == 2 && tt == LH_THRIFT_STRUCT) {
                            lh_thrift_read_struct_begin(r);
                            while (lh_thrift_read_field(r, &uid, &ut)) {
                                if (uid >= 1 && uid <= 3)
                                    e->ts_unit = uid;
                                lh_thrift_skip(r, ut);
                            }
                        } else {
                            lh_thrift_skip(r, tt);
                        }
                    }
                } else {
                    lh_thrift_skip(r, lt);
                }
            }
        } else {
            lh_thrift_skip(r, t);
        }
    }
}

static int find_flat_col(const char *name)
{
    for (size_t c = 0; c < NCOLS; c++)
        if (cols[c].kind != K_MAP_KEY && cols[c].kind != K_MAP_VALUE &&
            strcmp(cols[c].name, name) == 0)
            return (int)c;
    return -1;
}

static int find_map_col(const char *leaf)
{
    enum colkind k = strcmp(leaf, "key") == 0 ? K_MAP_KEY : K_MAP_VALUE;
    if (k == K_MAP_VALUE && strcmp(leaf, "value") != 0)
        return -1;
    for (size_t c = 0; c < NCOLS; c++)
        if (cols[c].kind == k)
            return (int)c;
    return -1;
}

/* Walks the schema tree (depth-first list) and fills the leaves. */
static int read_schema(struct lh_thrift_reader *r, struct lh_parquet_file *f)
{
    int elem;
    uint32_t n = lh_thrift_read_list(r, &elem);
    struct sch_el *els = NULL;
    int rc = LH_ECORRUPT;
    if (r->err || elem != LH_THRIFT_STRUCT || n == 0)
        return LH_ECORRUPT;
    els = calloc(n, sizeof(*els));
    f->leaves = calloc(n, sizeof(*f->leaves));
    if (!els || !f->leaves) {
        free(els);
        return LH_ENOMEM;
    }
    for (uint32_t i = 0; i < n && !r->err; i++)
        read_schema_el(r, &els[i]);
    if (r->err)
        goto out;
    /* a stack of open groups: index, children left, def, rep */
    struct {
        uint32_t idx;
        int left, def, rep;
    } st[16];
    int sp = 0;
    st[0].idx = 0;
    st[0].left = els[0].num_children;
    st[0].def = st[0].rep = 0;
    for (uint32_t i = 1; i < n; i++) {
        while (sp >= 0 && st[sp].left == 0)
            sp--;
        if (sp < 0)
            goto out;   /* more elements than the tree holds */
        st[sp].left--;
        struct sch_el *e = &els[i];
        int def = st[sp].def + (e->rep != REP_REQUIRED);
        int rep = st[sp].rep + (e->rep == REP_REPEATED);
        if (e->num_children > 0) {
            if (sp + 1 >= 16 || e->num_children > (int)n)
                goto out;
            sp++;
            st[sp].idx = i;
            st[sp].left = e->num_children;
            st[sp].def = def;
            st[sp].rep = rep;
            continue;
        }
        struct pq_leaf *lf = &f->leaves[f->nleaves++];
        lf->type = e->type;
        lf->max_def = def;
        lf->max_rep = rep;
        lf->col = -1;
        lf->ts_div = 1;
        if (sp == 0) {
            lf->col = find_flat_col(e->name);
            if (lf->col >= 0) {
                int want = cols[lf->col].kind == K_TS ? PT_INT64 : PT_BYTE_ARRAY;
                if (e->type != want || rep != 0)
                    lf->col = -1;
            }
            if (lf->col >= 0 && cols[lf->col].kind == K_TS) {
                int unit = e->ts_unit;
                if (!unit)
                    unit = e->converted == CT_TIMESTAMP_MICROS ? 2
                         : e->converted == CT_TIMESTAMP_MILLIS ? 1 : 3;
                lf->ts_div = unit == 1 ? 1000000 : unit == 2 ? 1000 : 1;
            }
        } else if (sp == 2 && strcmp(els[st[1].idx].name, MAP_GROUP) == 0 &&
                   e->type == PT_BYTE_ARRAY && rep == 1) {
            lf->col = find_map_col(e->name);
            lf->map_def = st[1].def;
        }
    }
    rc = 0;
out:
    free(els);
    return rc;
}

static void read_stats(struct lh_thrift_reader *r, struct pq_chunk *ck)
{
    int16_t id;
    int t;
    size_t n;
    int64_t mn = 0, mx = 0;
    int have = 0;
    lh_thrift_read_struct_begin(r);
    while (lh_thrift_read_field(r, &id, &t)) {
        if ((id == 5 || id == 6) && t == LH_THRIFT_BINARY) {
            const uint8_t *p = lh_thrift_read_binary(r, &n);
            if (p && n == 8) {
                if (id == 5)
                    mx = get_i64le(p);
                else
                    mn = get_i64le(p);
                have |= id == 5 ? 1 : 2;
            }
        } else {
            lh_thrift_skip(r, t);
        }
    }
    if (have == 3) {
        ck->has_minmax = 1;
        ck->min = mn;
        ck->max = mx;
    }
}

static void read_column_chunk(struct lh_thrift_reader *r, struct pq_chunk *ck)
{
    int16_t id, mid;
    int t, mt;
    ck->dict_off = -1;
    ck->data_off = -1;
    ck->codec = -1;
    lh_thrift_read_struct_begin(r);
    while (lh_thrift_read_field(r, &id, &t)) {
        if (id != 3 || t != LH_THRIFT_STRUCT) {
            lh_thrift_skip(r, t);
            continue;
        }
        lh_thrift_read_struct_begin(r);
        while (lh_thrift_read_field(r, &mid, &mt)) {
            if (mid == 4 && mt == LH_THRIFT_I32)
                ck->codec = lh_thrift_read_i32(r);
            else if (mid == 5 && mt == LH_THRIFT_I64)
                ck->num_values = lh_thrift_read_i64(r);
            else if (mid == 7 && mt == LH_THRIFT_I64)
                ck->total_compressed = lh_thrift_read_i64(r);
            else if (mid == 9 && mt == LH_THRIFT_I64)
                ck->data_off = lh_thrift_read_i64(r);
            else if (mid == 11 && mt == LH_THRIFT_I64)
                ck->dict_off = lh_thrift_read_i64(r);
            else if (mid == 12 && mt == LH_THRIFT_STRUCT)
                read_stats(r, ck);
            else
                lh_thrift_skip(r, mt);
        }
    }
}

static int read_row_groups(struct lh_thrift_reader *r, struct lh_parquet_file *f)
{
    int elem;
    uint32_t n = lh_thrift_read_list(r, &elem);
    if (r->err || (n && elem != LH_THRIFT_STRUCT))
        return LH_ECORRUPT;
    f->rgs = calloc(n ? n : 1, sizeof(*f->rgs));
    if (!f->rgs)
        return LH_ENOMEM;
    for (uint32_t g = 0; g < n && !r->err; g++) {
        struct pq_rg *rg = &f->rgs[f->nrg++];
        int16_t id;
        int t;
        lh_thrift_read_struct_begin(r);
        while (lh_thrift_read_field(r, &id, &t)) {
            if (id == 1 && t == LH_THRIFT_LIST) {
                int ce;
                uint32_t nc = lh_thrift_read_list(r, &ce);
                if (r->err || ce != LH_THRIFT_STRUCT || rg->chunks)
                    return LH_ECORRUPT;
                rg->chunks = calloc(nc ? nc : 1, sizeof(*rg->chunks));
                if (!rg->chunks)
                    return LH_ENOMEM;
                for (uint32_t c = 0; c < nc && !r->err; c++)
                    read_column_chunk(r, &rg->chunks[c]);
                rg->nchunks = nc;
            } else if (id == 3 && t == LH_THRIFT_I64) {
                rg->num_rows = lh_thrift_read_i64(r);
            } else {
                lh_thrift_skip(r, t);
            }
        }
    }
    return r->err ? LH_ECORRUPT : 0;
}

/* Parses the footer bytes into f. */
static int parse_footer(struct lh_parquet_file *f, const uint8_t *footer, size_t flen)
{
    struct lh_thrift_reader r;
    int16_t id;
    int t, have_schema = 0, have_rows = 0, rc = 0;
    lh_thrift_reader_init(&r, footer, flen);
    lh_thrift_read_struct_begin(&r);
    while (rc == 0 && lh_thrift_read_field(&r, &id, &t)) {
        if (id == 2 && t == LH_THRIFT_LIST && !have_schema) {
            rc = read_schema(&r, f);
            have_schema = 1;
        } else if (id == 3 && t == LH_THRIFT_I64) {
            f->num_rows = lh_thrift_read_i64(&r);
            have_rows = 1;
        } else if (id == 4 && t == LH_THRIFT_LIST && !f->rgs) {
            rc = read_row_groups(&r, f);
        } else {
            lh_thrift_skip(&r, t);
        }
    }
    if (rc == 0 && (lh_thrift_reader_error(&r) || !have_schema || !have_rows))
        rc = LH_ECORRUPT;
    if (rc == 0) {
        int64_t total = 0;
        for (size_t g = 0; g < f->nrg; g++) {
            if (f->rgs[g].nchunks != f->nleaves || f->rgs[g].num_rows < 0 ||
                f->rgs[g].num_rows > MAX_ROWS)
                rc = LH_ECORRUPT;
            total += f->rgs[g].num_rows;
        }
        if (total != f->num_rows)
            rc = LH_ECORRUPT;
    }
    return rc;
}

int lh_parquet_open_tail(struct lh_parquet_file **out, const void *tail, size_t tail_len,
                         uint64_t file_len, size_t *need, struct lh_err *err)
{
    const uint8_t *d = tail;
    struct lh_parquet_file *f;
    *out = NULL;
    if (need)
        *need = 0;
    if (file_len < 12 || tail_len < 8 || tail_len > file_len ||
        memcmp(d + tail_len - 4, "PAR1", 4) != 0)
        return lh_err_set(err, LH_ECORRUPT, "parquet: not a Parquet file (no PAR1 magic)");
    uint32_t flen = get_le32(d + tail_len - 8);
    if (flen > file_len - 12)
        return lh_err_set(err, LH_ECORRUPT, "parquet: footer length %u past the file", flen);
    if ((size_t)flen + 8 > tail_len) {
        if (need)
            *need = (size_t)flen + 8;
        return lh_err_set(err, LH_EAGAIN, "parquet: the footer needs the last %u bytes",
                          flen + 8);
    }
    f = calloc(1, sizeof(*f));
    if (!f)
        return lh_err_set(err, LH_ENOMEM, "parquet: out of memory");
    f->file_len = file_len;
    f->data = d;
    f->data_off = file_len - tail_len;
    f->data_len = tail_len;
    int rc = parse_footer(f, d + tail_len - 8 - flen, flen);
    if (rc < 0) {
        lh_parquet_close(f);
        return lh_err_set(err, rc, rc == LH_ENOMEM ? "parquet: out of memory"
                                                   : "parquet: malformed footer");
    }
    *out = f;
    return 0;
}

int lh_parquet_open(struct lh_parquet_file **out, const void *data, size_t len,
                    struct lh_err *err)
{
    const uint8_t *d = data;
    *out = NULL;
    if (len < 12 || memcmp(d, "PAR1", 4) != 0)
        return lh_err_set(err, LH_ECORRUPT, "parquet: not a Parquet file (no PAR1 magic)");
    return lh_parquet_open_tail(out, data, len, len, NULL, err);
}

int lh_parquet_row_group_range(const struct lh_parquet_file *f, size_t g, uint64_t *off,
                               uint64_t *len)
{
    if (g >= f->nrg)
        return LH_ENOTFOUND;
    uint64_t lo = UINT64_MAX, hi = 0;
    const struct pq_rg *rg = &f->rgs[g];
    for (size_t c = 0; c < rg->nchunks; c++) {
        const struct pq_chunk *ck = &rg->chunks[c];
        if (f->leaves[c].col < 0)
            continue;   /* columns we do not read need not be fetched */
        int64_t start = ck->dict_off >= 4 && ck->dict_off < ck->data_off ? ck->dict_off
                                                                         : ck->data_off;
        if (start < 4 || ck->total_compressed < 0 ||
            (uint64_t)start + (uint64_t)ck->total_compressed > f->file_len - 8)
            return LH_ECORRUPT;
        if ((uint64_t)start < lo)
            lo = (uint64_t)start;
        if ((uint64_t)start + (uint64_t)ck->total_compressed > hi)
            hi = (uint64_t)start + (uint64_t)ck->total_compressed;
    }
    if (lo == UINT64_MAX)
        lo = hi = 4;
    *off = lo;
    *len = hi - lo;
    return 0;
}

int lh_parquet_read_row_group_at(struct lh_parquet_file *f, size_t g, const void *data,
                                 uint64_t off, size_t len, struct lh_arena *arena,
                                 struct lh_event **evs, size_t *n, struct lh_err *err)
{
    const uint8_t *saved = f->data;
    uint64_t saved_off = f->data_off;
    size_t saved_len = f->data_len;
    f->data = data;
    f->data_off = off;
    f->data_len = len;
    int rc = lh_parquet_read_row_group(f, g, arena, evs, n, err);
    f->data = saved;
    f->data_off = saved_off;
    f->data_len = saved_len;
    return rc;
}

int lh_parquet_row_group_ts(const struct lh_parquet_file *f, size_t i, int64_t *rows,
                            int64_t *ts_min, int64_t *ts_max)
{
    if (i >= f->nrg)
        return LH_ENOTFOUND;
    *rows = f->rgs[i].num_rows;
    for (size_t l = 0; l < f->nleaves; l++) {
        const struct pq_chunk *ck = &f->rgs[i].chunks[l];
        if (f->leaves[l].col >= 0 && cols[f->leaves[l].col].kind == K_TS && ck->has_minmax) {
            *ts_min = ck->min * f->leaves[l].ts_div;
            *ts_max = ck->max * f->leaves[l].ts_div;
            return 0;
        }
    }
    return LH_ENOTFOUND;
}

/* A decoded column chunk. */
struct coldata {
    uint32_t *def, *rep;
    size_t nlev, caplev;
    const char **sv;           /* strings in the arena, one per defined value */
    int64_t *iv;               /* timestamps */
    size_t nval, capval;
};

static void coldata_free(struct coldata *cd)
{
    free(cd->def);
    free(cd->rep);
    free(cd->sv);
    free(cd->iv);
    memset(cd, 0, sizeof(*cd));
}

struct page_hdr {
    int type;
    int32_t usize, csize;
    int32_t num_values;
    int encoding;
    int def_enc, rep_enc;
    int32_t v2_def_len, v2_rep_len;
    int v2_compressed;
};

static int read_page_header(const uint8_t *p, size_t len, struct page_hdr *h, size_t *hlen)
{
    struct lh_thrift_reader r;
    int16_t id, sid;
    int t, st;
    memset(h, 0, sizeof(*h));
    h->type = -1;
    h->v2_compressed = 1;
    h->def_enc = h->rep_enc = ENC_RLE;
    lh_thrift_reader_init(&r, p, len);
    lh_thrift_read_struct_begin(&r);
    while (lh_thrift_read_field(&r, &id, &t)) {
        if (id == 1 && t == LH_THRIFT_I32) {
            h->type = lh_thrift_read_i32(&r);
        } else if (id == 2 && t == LH_THRIFT_I32) {
            h->usize = lh_thrift_read_i32(&r);
        } else if (id == 3 && t == LH_THRIFT_I32) {
            h->csize = lh_thrift_read_i32(&r);
        } else if ((id == 5 || id == 7 || id == 8) && t == LH_THRIFT_STRUCT) {
            lh_thrift_read_struct_begin(&r);
            while (lh_thrift_read_field(&r, &sid, &st)) {
                if (sid == 1 && st == LH_THRIFT_I32)
                    h->num_values = lh_thrift_read_i32(&r);
                else if (id == 5 && sid == 2 && st == LH_THRIFT_I32)
                    h->encoding = lh_thrift_read_i32(&r);
                else if (id == 5 && sid == 3 && st == LH_THRIFT_I32)
                    h->def_enc = lh_thrift_read_i32(&r);
                else if (id == 5 && sid == 4 && st == LH_THRIFT_I32)
                    h->rep_enc = lh_thrift_read_i32(&r);
                else if (id == 7 && sid == 2 && st == LH_THRIFT_I32)
                    h->encoding = lh_thrift_read_i32(&r);
                else if (id == 8 && sid == 4 && st == LH_THRIFT_I32)
                    h->encoding = lh_thrift_read_i32(&r);
                else if (id == 8 && sid == 5 && st == LH_THRIFT_I32)
                    h->v2_def_len = lh_thrift_read_i32(&r);
                else if (id == 8 && sid == 6 && st == LH_THRIFT_I32)
                    h->v2_rep_len = lh_thrift_read_i32(&r);
                else if (id == 8 && sid == 7 && (st == LH_THRIFT_TRUE || st == LH_THRIFT_FALSE))
                    h->v2_compressed = st == LH_THRIFT_TRUE;
                else
                    lh_thrift_skip(&r, st);
            }
        } else {
            lh_thrift_skip(&r, t);
        }
    }
    if (lh_thrift_reader_error(&r) || h->usize < 0 || h->csize < 0 || h->num_values < 0 ||
        h->v2_def_len < 0 || h->v2_rep_len < 0)
        return LH_ECORRUPT;
    *hlen = lh_thrift_reader_pos(&r, p);
    return 0;
}

struct reader {
    struct lh_parquet_file *f;
    struct lh_arena *arena;
    struct lh_err *err;
    ZSTD_DCtx *zd;
    uint8_t *ubuf;             /* decompressed page */
    size_t ubufcap;
    uint32_t *tmp;             /* decoded indices */
    size_t tmpcap;
};

static int bad(struct reader *rd, const char *what)
{
    return lh_err_set(rd->err, LH_ECORRUPT, "parquet: %s", what);
}

/* Decompresses (or copies) src into rd->ubuf + off (exactly usize bytes),
 * keeping rd->ubuf[0..off). */
static int page_body(struct reader *rd, int codec, const uint8_t *src, size_t clen,
                     size_t usize, size_t off)
{
    if (usize > MAX_PAGE_BYTES || off > MAX_PAGE_BYTES)
        return bad(rd, "page too large");
    if (off + usize + 1 > rd->ubufcap) {
        uint8_t *p = realloc(rd->ubuf, off + usize + 1);
        if (!p)
            return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
        rd->ubuf = p;
        rd->ubufcap = off + usize + 1;
    }
    if (codec == CODEC_UNCOMPRESSED) {
        if (clen != usize)
            return bad(rd, "uncompressed page size mismatch");
        memcpy(rd->ubuf + off, src, usize);
        return 0;
    }
    if (codec != CODEC_ZSTD)
        return lh_err_set(rd->err, LH_ECORRUPT, "parquet: unsupported codec %d", codec);
    size_t got = ZSTD_decompressDCtx(rd->zd, rd->ubuf + off, usize, src, clen);
    if (ZSTD_isError(got) || got != usize)
        return bad(rd, "zstd page does not decompress to its size");
    return 0;
}

static int ensure_tmp(struct reader *rd, size_t n)
{
    if (n <= rd->tmpcap)
        return 0;
    uint32_t *p = realloc(rd->tmp, n * sizeof(*p));
    if (!p)
        return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
    rd->tmp = p;
    rd->tmpcap = n;
    return 0;
}

static int cd_reserve(struct reader *rd, struct coldata *cd, size_t nlev, size_t nval, int ts)
{
    if (cd->nlev + nlev > cd->caplev) {
        size_t nc = cd->caplev ? cd->caplev : 1024;
        while (nc < cd->nlev + nlev)
            nc *= 2;
        uint32_t *d = realloc(cd->def, nc * sizeof(*d));
        if (!d)
            goto nomem;
        cd->def = d;
        uint32_t *r = realloc(cd->rep, nc * sizeof(*r));
        if (!r)
            goto nomem;
        cd->rep = r;
        cd->caplev = nc;
    }
    if (cd->nval + nval > cd->capval) {
        size_t nc = cd->capval ? cd->capval : 1024;
        while (nc < cd->nval + nval)
            nc *= 2;
        if (ts) {
            int64_t *v = realloc(cd->iv, nc * sizeof(*v));
            if (!v)
                goto nomem;
            cd->iv = v;
        } else {
            const char **v = realloc(cd->sv, nc * sizeof(*v));
            if (!v)
                goto nomem;
            cd->sv = v;
        }
        cd->capval = nc;
    }
    return 0;
nomem:
    return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
}

/* Levels: 4-byte length + hybrid (v1), or the given length (v2). */
static int read_levels(struct reader *rd, const uint8_t **p, size_t *left, int maxlev,
                       uint32_t *out, size_t n, int v1, size_t v2len)
{
    size_t len;
    if (v1) {
        if (*left < 4)
            return bad(rd, "truncated levels");
        len = get_le32(*p);
        *p += 4;
        *left -= 4;
    } else {
        len = v2len;
    }
    if (len > *left)
        return bad(rd, "levels past the page");
    long used = hybrid_decode(*p, len, bit_width((uint32_t)maxlev), out, n);
    if (used < 0)
        return bad(rd, "bad level encoding");
    for (size_t i = 0; i < n; i++)
        if (out[i] > (uint32_t)maxlev)
            return bad(rd, "level above the maximum");
    *p += len;
    *left -= len;
    return 0;
}

static int read_plain_strings(struct reader *rd, const uint8_t *p, size_t left, size_t n,
                              const char **out)
{
    for (size_t i = 0; i < n; i++) {
        if (left < 4)
            return bad(rd, "truncated string value");
        uint32_t l = get_le32(p);
        if (l > left - 4)
            return bad(rd, "string value past the page");
        char *s = lh_arena_strndup(rd->arena, (const char *)p + 4, l);
        if (!s)
            return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
        out[i] = s;
        p += 4 + l;
        left -= 4 + (size_t)l;
    }
    return 0;
}

static int read_chunk(struct reader *rd, const struct pq_leaf *lf, const struct pq_chunk *ck,
                      struct coldata *cd)
{
    struct lh_parquet_file *f = rd->f;
    int ts = cols[lf->col].kind == K_TS;
    const char **dict = NULL;
    int64_t *idict = NULL;
    size_t ndict = 0;
    int64_t pos = ck->dict_off >= 4 && ck->dict_off < ck->data_off ? ck->dict_off : ck->data_off;
    /* offsets are file offsets; f->data holds [data_off, data_off + data_len) */
    int64_t limit = (int64_t)f->file_len - 8;
    int64_t base = (int64_t)f->data_off;
    if (base + (int64_t)f->data_len < limit)
        limit = base + (int64_t)f->data_len;
    int64_t seen = 0;
    int rc = 0;

    if (pos < 4 || pos < base || pos >= limit || ck->num_values < 0)
        return bad(rd, "column chunk outside the bytes read");
    while (seen < ck->num_values) {
        struct page_hdr h;
        size_t hlen;
        if (pos >= limit)
            return bad(rd, "column chunk runs past the data");
        if (read_page_header(f->data + (pos - base), (size_t)(limit - pos), &h, &hlen) < 0)
            return bad(rd, "malformed page header");
        pos += (int64_t)hlen;
        if (h.csize > limit - pos)
            return bad(rd, "page past the data");
        const uint8_t *body = f->data + (pos - base);
        pos += h.csize;

        if (h.type == PAGE_DICT) {
            if (dict || idict)
                return bad(rd, "second dictionary page");
            if ((rc = page_body(rd, ck->codec, body, (size_t)h.csize, (size_t)h.usize, 0)) < 0)
                return rc;
            if ((size_t)h.num_values > (size_t)h.usize / 4 + 1)
                return bad(rd, "dictionary count larger than its page");
            ndict = (size_t)h.num_values;
            if (ts) {
                /* other writers dictionary-encode INT64 columns too */
                if (ndict > (size_t)h.usize / 8)
                    return bad(rd, "truncated timestamp dictionary");
                idict = lh_arena_alloc(rd->arena, (ndict ? ndict : 1) * sizeof(*idict));
                if (!idict)
                    return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
                for (size_t i = 0; i < ndict; i++)
                    idict[i] = get_i64le(rd->ubuf + 8 * i) * lf->ts_div;
                continue;
            }
            dict = lh_arena_alloc(rd->arena, (ndict ? ndict : 1) * sizeof(*dict));
            if (!dict)
                return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
            if ((rc = read_plain_strings(rd, rd->ubuf, (size_t)h.usize, ndict, dict)) < 0)
                return rc;
            continue;
        }
        if (h.type != PAGE_DATA && h.type != PAGE_DATA_V2)
            continue;   /* index pages and unknown kinds: skip */

        size_t nv = (size_t)h.num_values;
        if (nv > MAX_ROWS * 4)
            return bad(rd, "too many values in a page");
        if (nv == 0)
            continue;
        if ((int64_t)nv > ck->num_values - seen)
            return bad(rd, "page holds more values than its chunk");
        const uint8_t *p;
        size_t left;
        if (h.type == PAGE_DATA) {
            if ((rc = page_body(rd, ck->codec, body, (size_t)h.csize, (size_t)h.usize, 0)) < 0)
                return rc;
            left = (size_t)h.usize;
        } else {
            /* v2: levels uncompressed in front, then the (maybe compressed) values */
            size_t lv = (size_t)h.v2_def_len + (size_t)h.v2_rep_len;
            if (lv > (size_t)h.csize || lv > (size_t)h.usize)
                return bad(rd, "v2 levels larger than the page");
            size_t usz = (size_t)h.usize - lv, csz = (size_t)h.csize - lv;
            /* the levels go first into the buffer, the values behind them */
            if ((rc = page_body(rd, CODEC_UNCOMPRESSED, body, lv, lv, 0)) < 0 ||
                (rc = page_body(rd, h.v2_compressed ? ck->codec : CODEC_UNCOMPRESSED,
                                body + lv, csz, usz, lv)) < 0)
                return rc;
            left = lv + usz;
        }
        p = rd->ubuf;
        if ((rc = cd_reserve(rd, cd, nv, nv, ts)) < 0)
            return rc;
        uint32_t *def = cd->def + cd->nlev, *rep = cd->rep + cd->nlev;
        int v1 = h.type == PAGE_DATA;
        if (lf->max_rep > 0) {
            if ((v1 && h.rep_enc != ENC_RLE) ||
                (rc = read_levels(rd, &p, &left, lf->max_rep, rep, nv, v1,
                                  (size_t)h.v2_rep_len)) < 0)
                return rc < 0 ? rc : bad(rd, "unsupported repetition level encoding");
        } else {
            memset(rep, 0, nv * sizeof(*rep));
        }
        if (lf->max_def > 0) {
            if ((v1 && h.def_enc != ENC_RLE) ||
                (rc = read_levels(rd, &p, &left, lf->max_def, def, nv, v1,
                                  (size_t)h.v2_def_len)) < 0)
                return rc < 0 ? rc : bad(rd, "unsupported definition level encoding");
        } else {
            for (size_t i = 0; i < nv; i++)
                def[i] = 0;
        }
        size_t ndefined = 0;
        for (size_t i = 0; i < nv; i++)
            ndefined += def[i] == (uint32_t)lf->max_def;

        int dict_enc = h.encoding == ENC_RLE_DICTIONARY || h.encoding == ENC_PLAIN_DICTIONARY;
        if (dict_enc && ndefined) {
            if (!dict && !idict)
                return bad(rd, "dictionary-encoded page without a dictionary");
            if (left < 1)
                return bad(rd, "truncated dictionary indices");
            if ((rc = ensure_tmp(rd, ndefined)) < 0)
                return rc;
            if (hybrid_decode(p + 1, left - 1, p[0], rd->tmp, ndefined) < 0)
                return bad(rd, "bad dictionary index encoding");
            for (size_t i = 0; i < ndefined; i++)
                if (rd->tmp[i] >= ndict)
                    return bad(rd, "dictionary index out of range");
        }
        if (ts && dict_enc) {
            if (!idict && ndefined)
                return bad(rd, "timestamp page without its dictionary");
            for (size_t i = 0; i < ndefined; i++)
                cd->iv[cd->nval + i] = idict[rd->tmp[i]];
        } else if (ts) {
            if (h.encoding != ENC_PLAIN)
                return bad(rd, "unsupported timestamp encoding");
            if (left / 8 < ndefined)
                return bad(rd, "truncated timestamps");
            for (size_t i = 0; i < ndefined; i++)
                cd->iv[cd->nval + i] = get_i64le(p + 8 * i) * lf->ts_div;
        } else if (h.encoding == ENC_PLAIN) {
            if ((rc = read_plain_strings(rd, p, left, ndefined, cd->sv + cd->nval)) < 0)
                return rc;
        } else if (dict_enc) {
            if (!dict && ndefined)
                return bad(rd, "string page without its dictionary");
            for (size_t i = 0; i < ndefined; i++)
                cd->sv[cd->nval + i] = dict[rd->tmp[i]];
        } else {
            return lh_err_set(rd->err, LH_ECORRUPT, "parquet: unsupported encoding %d",
                              h.encoding);
        }
        cd->nlev += nv;
        cd->nval += ndefined;
        seen += (int64_t)nv;
    }
    return 0;
}

/* Rows without raw but with raw_prefix get raw = raw_prefix + message +
 * raw_suffix (an absent message or suffix counts as empty). */
static int join_raw(struct reader *rd, const struct coldata *pd, const struct pq_leaf *pl,
                    const struct coldata *sd, const struct pq_leaf *sl, struct lh_event *evs,
                    size_t nrows)
{
    size_t pi = 0, si = 0;
    for (size_t r = 0; r < nrows; r++) {
        const char *pre = NULL, *suf = NULL;
        if (pd->def[r] == (uint32_t)pl->max_def)
            pre = pd->sv[pi++];
        if (sd && sd->def[r] == (uint32_t)sl->max_def)
            suf = sd->sv[si++];
        if (!pre || evs[r].raw)
            continue;
        const char *msg = evs[r].message ? evs[r].message : "";
        size_t lp = strlen(pre), lm = strlen(msg), ls = suf ? strlen(suf) : 0;
        char *raw = lh_arena_alloc(rd->arena, lp + lm + ls + 1);
        if (!raw)
            return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
        memcpy(raw, pre, lp);
        memcpy(raw + lp, msg, lm);
        if (ls)
            memcpy(raw + lp + lm, suf, ls);
        raw[lp + lm + ls] = '\0';
        evs[r].raw = raw;
    }
    return 0;
}

static int assemble(struct reader *rd, const struct pq_rg *rg, struct coldata *cds,
                    const struct pq_leaf **lfs, struct lh_event *evs, size_t nrows)
{
    int rc;
    size_t pc = 0, sc = 0;     /* the raw_prefix and raw_suffix columns */
    for (size_t c = 0; c < NCOLS; c++) {
        struct coldata *cd = &cds[c];
        const struct pq_leaf *lf = lfs[c];
        if (cols[c].kind == K_RAW_PRE)
            pc = c;
        if (cols[c].kind == K_RAW_SUF)
            sc = c;
        if (!lf || cols[c].kind == K_MAP_KEY || cols[c].kind == K_MAP_VALUE)
            continue;
        if (cd->nlev != nrows)
            return bad(rd, "flat column with a value count other than the row count");
        if (cols[c].kind == K_RAW_PRE || cols[c].kind == K_RAW_SUF)
            continue;   /* joined below */
        size_t vi = 0;
        for (size_t r = 0; r < nrows; r++) {
            int defined = cd->def[r] == (uint32_t)lf->max_def;
            if (cols[c].kind == K_TS) {
                evs[r].ts_ns = defined ? cd->iv[vi] : 0;
            } else if (cols[c].kind == K_LEVEL) {
                const char *s = defined ? cd->sv[vi] : NULL;
                evs[r].level = s ? lh_level_parse(s, strlen(s)) : LH_LEVEL_UNKNOWN;
            } else {
                *(const char **)((char *)&evs[r] + cols[c].off) = defined ? cd->sv[vi] : NULL;
            }
            vi += defined;
        }
    }
    if (lfs[pc] && (rc = join_raw(rd, &cds[pc], lfs[pc], lfs[sc] ? &cds[sc] : NULL, lfs[sc],
                                  evs, nrows)) < 0)
        return rc;
    /* the map: key column drives the structure, value column aligns */
    size_t kc = NCOLS - 2, vc = NCOLS - 1;
    if (!lfs[kc])
        return 0;
    struct coldata *kd = &cds[kc], *vd = lfs[vc] ? &cds[vc] : NULL;
    const struct pq_leaf *kl = lfs[kc], *vl = lfs[vc];
    if (vd && vd->nlev != kd->nlev)
        return bad(rd, "map key and value columns disagree");
    size_t row = (size_t)-1, ki = 0, vi = 0;
    /* count entries per row first */
    for (size_t i = 0; i < kd->nlev; i++) {
        if (kd->rep[i] == 0)
            row++;
        if (row >= nrows)
            return bad(rd, "map column holds more rows than its row group");
        if (vd && vd->rep[i] != kd->rep[i])
            return bad(rd, "map key and value columns disagree");
        if (kd->def[i] >= (uint32_t)kl->max_def)
            evs[row].nmeta++;
    }
    if (row + 1 != nrows)
        return bad(rd, "map column holds fewer rows than its row group");
    for (size_t r = 0; r < nrows; r++) {
        if (!evs[r].nmeta)
            continue;
        evs[r].meta = lh_arena_alloc(rd->arena, evs[r].nmeta * sizeof(struct lh_kv));
        if (!evs[r].meta)
            return lh_err_set(rd->err, LH_ENOMEM, "parquet: out of memory");
        evs[r].nmeta = 0;
    }
    row = (size_t)-1;
    for (size_t i = 0; i < kd->nlev; i++) {
        if (kd->rep[i] == 0)
            row++;
        int vdef = vd && vd->def[i] == (uint32_t)vl->max_def;
        if (kd->def[i] >= (uint32_t)kl->max_def) {
            struct lh_kv *kv = &evs[row].meta[evs[row].nmeta++];
            kv->key = kd->sv[ki++];
            kv->value = vdef ? vd->sv[vi] : NULL;
        }
        vi += vdef;
    }
    (void)rg;
    return 0;
}

int lh_parquet_read_row_group(struct lh_parquet_file *f, size_t g, struct lh_arena *arena,
                              struct lh_event **evs_out, size_t *n_out, struct lh_err *err)
{
    struct reader rd = { f, arena, err, NULL, NULL, 0, NULL, 0 };
    struct coldata cds[NCOLS];
    const struct pq_leaf *lfs[NCOLS] = { 0 };
    int rc = 0;

    if (g >= f->nrg)
        return lh_err_set(err, LH_EINVAL, "parquet: no row group %zu", g);
    const struct pq_rg *rg = &f->rgs[g];
    size_t nrows = (size_t)rg->num_rows;
    memset(cds, 0, sizeof(cds));
    struct lh_event *evs = lh_arena_calloc(arena, (nrows ? nrows : 1) * sizeof(*evs));
    rd.zd = ZSTD_createDCtx();
    if (!evs || !rd.zd) {
        rc = lh_err_set(err, LH_ENOMEM, "parquet: out of memory");
        goto out;
    }
    for (size_t l = 0; l < f->nleaves; l++) {
        const struct pq_leaf *lf = &f->leaves[l];
        if (lf->col < 0 || lfs[lf->col])
            continue;
        lfs[lf->col] = lf;
        if ((rc = read_chunk(&rd, lf, &rg->chunks[l], &cds[lf->col])) < 0)
            goto out;
    }
    if ((rc = assemble(&rd, rg, cds, lfs, evs, nrows)) < 0)
        goto out;
    *evs_out = evs;
    *n_out = nrows;
out:
    for (size_t c = 0; c < NCOLS; c++)
        coldata_free(&cds[c]);
    free(rd.ubuf);
    free(rd.tmp);
    ZSTD_freeDCtx(rd.zd);
    return rc;
}

int lh_parquet_read(const void *data, size_t len, struct lh_arena *arena, struct lh_event **evs,
                    size_t *n, struct lh_err *err)
{
    struct lh_parquet_file *f;
    int rc = lh_parquet_open(&f, data, len, err);
    if (rc < 0)
        return rc;
    size_t total = (size_t)f->num_rows, at = 0;
    struct lh_event *all = lh_arena_alloc(arena, (total ? total : 1) * sizeof(*all));
    if (!all) {
        lh_parquet_close(f);
        return lh_err_set(err, LH_ENOMEM, "parquet: out of memory");
    }
    for (size_t g = 0; g < f->nrg; g++) {
        struct lh_event *part;
        size_t np;
        if ((rc = lh_parquet_read_row_group(f, g, arena, &part, &np, err)) < 0) {
            lh_parquet_close(f);
            return rc;
        }
        memcpy(all + at, part, np * sizeof(*part));
        at += np;
    }
    lh_parquet_close(f);
    *evs = all;
    *n = at;
    return 0;
}
