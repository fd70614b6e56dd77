/* store_block.c - encoding and decoding of the store's blocks: columns,
 * dictionaries, the raw-line template, the meta section and checksums.
 *
 * Block header (64 bytes, little-endian):
 *   0 u32 magic  4 u16 version  6 u16 flags  8 u32 nrows  12 u32 meta_len
 *   16 u32 body_len  20 u32 meta_crc  24 u32 body_crc  28 u32 zero
 *   32 i64 min_ts  40 i64 max_ts  48 u64 raw_bytes  56 u32 zero  60 u32 hdr_crc
 * Meta: u32 version (LHS_META_VERSION; 1 and 2 are read, a newer one is
 *   reported as such), u32 ncols, ncols x {u8 enc, u8 width, u16 0, u32 off,
 *   u32 clen, u32 ulen, u32 dict_off, u32 dict_n}, u32 level_counts[7],
 *   u32 keys_off, u32 keys_n, u32 bloom_off, u32 bloom_words, u32 ids_off,
 *   u32 ids_len, then the areas those offsets point at. Dictionary and key
 *   strings are stored as varint length, bytes, NUL, so readers use them in
 *   place.
 *
 * The raw line is stored as a template: an occurrence of message,
 * trace_id, span_id, user_id or host inside raw (at token boundaries, at
 * least 4 bytes) becomes \x01 plus a byte \x02..\x06 (in that order); a
 * literal \x01 is \x01 \x07. Most raw lines then cost a few bytes beyond
 * their fields, and as the markers are not token bytes, the template's
 * tokens are exactly those of raw's literal parts. */
#include "store_int.h"

#include <stdlib.h>
#include <zstd.h>

#define META_COL_BYTES 24
#define META_FIXED (8 + LHS_NCOLS * META_COL_BYTES + 4 * LH_LEVEL_COUNT + 24)

/* ---- encoder ---------------------------------------------------------- */

struct sdict {
    const char **keys;
    uint32_t *codes;
    size_t cap, n;
};

#define EVID_MAX_UUIDS 256

struct lhs_enc_ctx {
    int level;
    ZSTD_CCtx *cctx;
    struct lh_buf col, lens, meta, body, areas, tmp;
    struct lhs_hset toks;
    struct sdict dict;
    struct sdict keys;
    const char **keylist;
    size_t keylist_cap;
    const char **ids;
    size_t ids_cap;
    const char **dvals;
    size_t dvals_cap;
    struct lhs_ev_lens *lens_buf;   /* lengths computed here when the caller has none */
    size_t lens_cap;
    uint8_t uuids[EVID_MAX_UUIDS][16];   /* EVID: batch uuids of the block */
};

struct lhs_enc_ctx *lhs_enc_new(int zstd_level)
{
    struct lhs_enc_ctx *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->level = zstd_level;
    e->cctx = ZSTD_createCCtx();
    if (!e->cctx) {
        free(e);
        return NULL;
    }
    return e;
}

void lhs_enc_free(struct lhs_enc_ctx *e)
{
    if (!e)
        return;
    ZSTD_freeCCtx(e->cctx);
    lh_buf_free(&e->col);
    lh_buf_free(&e->lens);
    lh_buf_free(&e->meta);
    lh_buf_free(&e->body);
    lh_buf_free(&e->areas);
    lh_buf_free(&e->tmp);
    lhs_hset_free(&e->toks);
    free(e->dict.keys);
    free(e->dict.codes);
    free(e->keys.keys);
    free(e->keys.codes);
    free(e->keylist);
    free(e->ids);
    free(e->dvals);
    free(e->lens_buf);
    free(e);
}

static void sdict_reset(struct sdict *d)
{
    if (d->keys)
        memset(d->keys, 0, d->cap * sizeof(*d->keys));
    d->n = 0;
}

/* Returns the code (1-based) of s, adding it if new; 0 on ENOMEM. */
static uint32_t sdict_code(struct sdict *d, const char *s, size_t len, int *added)
{
    *added = 0;
    if ((d->n + 1) * 2 > d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 256;
        const char **nk = calloc(ncap, sizeof(*nk));
        uint32_t *nc = malloc(ncap * sizeof(*nc));
        if (!nk || !nc) {
            free(nk);
            free(nc);
            return 0;
        }
        for (size_t i = 0; i < d->cap; i++) {
            if (!d->keys[i])
                continue;
            size_t j = (size_t)lhs_hash(d->keys[i], strlen(d->keys[i])) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = d->keys[i];
            nc[j] = d->codes[i];
        }
        free(d->keys);
        free(d->codes);
        d->keys = nk;
        d->codes = nc;
        d->cap = ncap;
    }
    size_t j = (size_t)lhs_hash(s, len) & (d->cap - 1);
    while (d->keys[j]) {
        if (strcmp(d->keys[j], s) == 0)
            return d->codes[j];
        j = (j + 1) & (d->cap - 1);
    }
    d->keys[j] = s;
    d->codes[j] = (uint32_t)++d->n;
    *added = 1;
    return d->codes[j];
}

static const char *ev_str(const struct lh_event *ev, int c);

uint64_t lhs_event_lens(const struct lh_event *ev, struct lhs_ev_lens *l)
{
    uint64_t n = 16 + 1;
    for (int c = LHS_C_ID; c <= LHS_C_RAW; c++) {
        const char *v = ev_str(ev, c);
        l->len[c] = v ? strlen(v) : 0;
        n += l->len[c];
    }
    for (size_t i = 0; i < ev->nmeta; i++)
        n += strlen(ev->meta[i].key) + (ev->meta[i].value ? strlen(ev->meta[i].value) : 0);
    l->raw_bytes = n;
    return n;
}

uint64_t lhs_event_raw_bytes(const struct lh_event *ev)
{
    const char *f[] = { ev->id, ev->service, ev->host, ev->trace_id, ev->span_id, ev->user_id,
                        ev->message, ev->stream, ev->container_id, ev->k8s_namespace,
                        ev->k8s_pod, ev->k8s_container, ev->region, ev->file, ev->raw };
    uint64_t n = 16 + 1;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i])
            n += strlen(f[i]);
    for (size_t i = 0; i < ev->nmeta; i++)
        n += strlen(ev->meta[i].key) + (ev->meta[i].value ? strlen(ev->meta[i].value) : 0);
    return n;
}

static const char *ev_str(const struct lh_event *ev, int c)
{
    switch (c) {
    case LHS_C_ID: return ev->id;
    case LHS_C_SERVICE: return ev->service;
    case LHS_C_HOST: return ev->host;
    case LHS_C_TRACE: return ev->trace_id;
    case LHS_C_SPAN: return ev->span_id;
    case LHS_C_USER: return ev->user_id;
    case LHS_C_MESSAGE: return ev->message;
    case LHS_C_STREAM: return ev->stream;
    case LHS_C_CONTAINER: return ev->container_id;
    case LHS_C_K8S_NS: return ev->k8s_namespace;
    case LHS_C_K8S_POD: return ev->k8s_pod;
    case LHS_C_K8S_CONT: return ev->k8s_container;
    case LHS_C_REGION: return ev->region;
    case LHS_C_FILE: return ev->file;
    case LHS_C_RAW: return ev->raw;
    default: return NULL;
    }
}

static int is_dict_candidate(int c)
{
    switch (c) {
    case LHS_C_SERVICE: case LHS_C_HOST: case LHS_C_STREAM: case LHS_C_CONTAINER:
    case LHS_C_K8S_NS: case LHS_C_K8S_POD: case LHS_C_K8S_CONT: case LHS_C_REGION:
    case LHS_C_FILE: case LHS_C_USER:
        return 1;
    default:
        return 0;
    }
}

static int index_text(struct lhs_enc_ctx *e, const char *s, size_t n)
{
    return lhs_tokenize_hash(s, n, &e->toks);
}

/* Raw template substitutions. */
struct subst {
    size_t pos, len;
    char code;
};

static int subst_cmp(const void *a, const void *b)
{
    const struct subst *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* 1 if v (vl >= 1 bytes) occurs at raw + at on token boundaries. */
static int value_at(const char *raw, size_t rlen, size_t at, const char *v, size_t vl)
{
    const unsigned char *u = (const unsigned char *)raw, *w = (const unsigned char *)v;
    size_t end = at + vl;
    if (memcmp(raw + at, v, vl) != 0)
        return 0;
    if (at > 0 && lhs_tokch[u[at - 1]] && lhs_tokch[w[0]])
        return 0;
    if (end < rlen && lhs_tokch[u[end]] && lhs_tokch[w[vl - 1]])
        return 0;
    return 1;
}

/* Finds an occurrence of v in raw on token boundaries. Raw lines mostly
 * are the message, or end with it, so those are tried first; then the
 * first byte is looked for with memchr, and after many false starts the
 * rest goes to memmem (no quadratic worst case). */
static int find_value(const char *raw, size_t rlen, const char *v, size_t vl, size_t *pos)
{
    if (vl > rlen)
        return 0;
    if (value_at(raw, rlen, rlen - vl, v, vl)) {
        *pos = rlen - vl;
        return 1;
    }
    size_t at = 0, last = rlen - vl;
    int budget = 64;
    while (at <= last) {
        const char *hit;
        if (budget-- > 0) {
            hit = memchr(raw + at, v[0], last - at + 1);
        } else {
            hit = memmem(raw + at, rlen - at, v, vl);
        }
        if (!hit)
            return 0;
        at = (size_t)(hit - raw);
        if (value_at(raw, rlen, at, v, vl)) {
            *pos = at;
            return 1;
        }
        at++;
    }
    return 0;
}

/* Appends the template of ev->raw to out (without NUL); indexes its
 * literal parts. */
static int raw_template(struct lhs_enc_ctx *e, const struct lh_event *ev,
                        const struct lhs_ev_lens *lens, struct lh_buf *out)
{
    const char *raw = ev->raw;
    size_t rlen = lens->len[LHS_C_RAW];
    static const char codes[] = "\x02\x03\x04\x05\x06";   /* non-token bytes */
    const char *vals[] = { ev->message, ev->trace_id, ev->span_id, ev->user_id, ev->host };
    static const int cols[] = { LHS_C_MESSAGE, LHS_C_TRACE, LHS_C_SPAN, LHS_C_USER, LHS_C_HOST };
    struct subst s[5];
    size_t ns = 0;
    for (int i = 0; i < 5; i++) {
        const char *v = vals[i];
        if (!v)
            continue;
        size_t vl = lens->len[cols[i]];
        if (vl < 4 || vl > rlen)
            continue;
        size_t pos;
        if (!find_value(raw, rlen, v, vl, &pos))
            continue;
        s[ns].pos = pos;
        s[ns].len = vl;
        s[ns].code = codes[i];
        ns++;
    }
    qsort(s, ns, sizeof(s[0]), subst_cmp);
    size_t at = 0;
    int rc;
    for (size_t i = 0; i <= ns; i++) {
        size_t lit_end = i < ns ? s[i].pos : rlen;
        if (i < ns && s[i].pos < at)
            continue;   /* overlaps the previous one: keep it literal */
        if (lit_end > at) {
            if ((rc = index_text(e, raw + at, lit_end - at)) < 0)
                return rc;
            const char *p = raw + at, *pe = raw + lit_end;
            while (p < pe) {
                const char *x = memchr(p, '\x01', (size_t)(pe - p));
                size_t chunk = x ? (size_t)(x - p) : (size_t)(pe - p);
                if ((rc = lh_buf_append(out, p, chunk)) < 0)
                    return rc;
                p += chunk;
                if (x) {
                    if ((rc = lh_buf_append(out, "\x01\x07", 2)) < 0)
                        return rc;
                    p++;
                }
            }
        }
        if (i < ns) {
            char ref[2] = { '\x01', s[i].code };
            if ((rc = lh_buf_append(out, ref, 2)) < 0)
                return rc;
            at = s[i].pos + s[i].len;
        }
    }
    return 0;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Compresses e->col into the body and fills the directory entry. */
static int put_col(struct lhs_enc_ctx *e, uint8_t *dir, int enc, int width, uint32_t dict_off,
                   uint32_t dict_n, struct lh_err *err)
{
    size_t bound = ZSTD_compressBound(e->col.len);
    int rc = lh_buf_reserve(&e->body, bound);
    if (rc < 0)
        return lh_err_set(err, rc, "block: out of memory");
    size_t off = e->body.len;
    size_t cl = ZSTD_compressCCtx(e->cctx, e->body.data + off, bound,
                                  e->col.data ? e->col.data : "", e->col.len, e->level);
    if (ZSTD_isError(cl))
        return lh_err_set(err, LH_ERR, "block: zstd: %s", ZSTD_getErrorName(cl));
    e->body.len += cl;
    dir[0] = (uint8_t)enc;
    dir[1] = (uint8_t)width;
    lhs_put32(dir + 4, (uint32_t)off);
    lhs_put32(dir + 8, (uint32_t)cl);
    lhs_put32(dir + 12, (uint32_t)e->col.len);
    lhs_put32(dir + 16, dict_off);
    lhs_put32(dir + 20, dict_n);
    return 0;
}

static int grow_ptrs(const char ***v, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    const char **nv = realloc(*v, n * sizeof(*nv));
    if (!nv)
        return LH_ENOMEM;
    *v = nv;
    *cap = n;
    return 0;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* What a receive time is stored against: the row's timestamp (ZIGZAG) or
 * the previous row's receive time (RDELTA; the first row its timestamp). */
static uint64_t recv_base(const struct lh_event *const *evs, size_t i, int rdelta)
{
    return rdelta && i > 0 ? (uint64_t)evs[i - 1]->received_ns : (uint64_t)evs[i]->ts_ns;
}

static int64_t recv_delta(const struct lh_event *const *evs, size_t i, int rdelta)
{
    return (int64_t)((uint64_t)evs[i]->received_ns - recv_base(evs, i, rdelta));
}

/* Divisor of the deltas of one encoding and the varint bytes they take. */
static uint64_t recv_plan(const struct lh_event *const *evs, size_t n, int rdelta, uint64_t *div)
{
    uint64_t g = 0;
    int wide = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d;
        wide |= __builtin_sub_overflow(evs[i]->received_ns, (int64_t)recv_base(evs, i, rdelta),
                                       &d);
        g = gcd64(g, d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d);
    }
    /* A difference beyond int64 (year 1700 received today) is stored
     * modulo 2^64 with divisor 1, which the reader's unsigned base +
     * delta * div gives back exactly. */
    if (g == 0 || wide)
        g = 1;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d = recv_delta(evs, i, rdelta) / (int64_t)g;
        bytes += varint_size(((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
    }
    *div = g;
    return bytes;
}

/* The receive-time column, in whichever encoding takes fewer bytes. */
static int encode_recv(struct lhs_enc_ctx *e, const struct lh_event *const *evs, size_t n,
                       uint8_t *dir, struct lh_err *err)
{
    uint64_t div_ts, div_prev;
    uint64_t by_ts = recv_plan(evs, n, 0, &div_ts), by_prev = recv_plan(evs, n, 1, &div_prev);
    int rdelta = by_prev < by_ts;
    uint64_t div = rdelta ? div_prev : div_ts;
    lh_buf_reset(&e->col);
    if (lhs_buf_varint(&e->col, div) < 0)
        return lh_err_set(err, LH_ENOMEM, "block: out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t d = recv_delta(evs, i, rdelta) / (int64_t)div;
        if (lhs_buf_varint(&e->col, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63)) < 0)
            return lh_err_set(err, LH_ENOMEM, "block: out of memory");
    }
    return put_col(e, dir, rdelta ? LHS_ENC_RDELTA : LHS_ENC_ZIGZAG, 0, 0, 0, err);
}

/* The id column as batch uuids and indexes when every id has the shape
 * lh_event_id gives (and the block holds few batches): 1 if written, 0 if
 * the ids do not fit (the caller stores them plain). */
static int encode_evid(struct lhs_enc_ctx *e, const struct lh_event *const *evs, size_t n,
                       uint8_t *dir, struct lh_err *err)
{
    uint8_t (*uu)[16] = e->uuids;
    size_t nu = 0, last = 0;
    uint32_t prev = 0;
    lh_buf_reset(&e->lens);
    for (size_t i = 0; i < n; i++) {
        uint8_t u[16];
        uint32_t idx;
        if (lhs_id_parse(evs[i]->id, u, &idx) < 0)
            return 0;
        size_t k = last;
        if (k >= nu || memcmp(uu[k], u, 16) != 0) {
            for (k = 0; k < nu && memcmp(uu[k], u, 16) != 0; k++)
                ;
            if (k == nu) {
                if (nu == EVID_MAX_UUIDS)
                    return 0;
                memcpy(uu[nu++], u, 16);
            }
            last = k;
        }
        int64_t d = (int64_t)idx - (int64_t)prev;
        prev = idx;
        if (lhs_buf_varint(&e->lens, k) < 0 ||
            lhs_buf_varint(&e->lens, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63)) < 0)
            return lh_err_set(err, LH_ENOMEM, "block: out of memory");
    }
    lh_buf_reset(&e->col);
    if (lhs_buf_varint(&e->col, nu) < 0 || lh_buf_append(&e->col, uu, nu * 16) < 0 ||
        lh_buf_append(&e->col, e->lens.data, e->lens.len) < 0)
        return lh_err_set(err, LH_ENOMEM, "block: out of memory");
    int rc = put_col(e, dir, LHS_ENC_EVID, 0, 0, 0, err);
    return rc < 0 ? rc : 1;
}

#define AREA_OFF(e) ((uint32_t)(META_FIXED + (e)->areas.len))

int lhs_block_encode(struct lhs_enc_ctx *e, const struct lh_event *const *evs,
                     const struct lhs_ev_lens *lens, size_t n, struct lh_buf *out,
                     struct lh_err *err)
{
    uint8_t fixed[META_FIXED];
    int rc = LH_ENOMEM;
    memset(fixed, 0, sizeof(fixed));
    lhs_put32(fixed, LHS_META_VERSION);
    lhs_put32(fixed + 4, LHS_NCOLS);
    lh_buf_reset(&e->body);
    lh_buf_reset(&e->areas);
    lhs_hset_clear(&e->toks);
    uint32_t levels[LH_LEVEL_COUNT] = { 0 };
    uint64_t raw_bytes = 0;
    if (n == 0 || n > UINT32_MAX)
        return lh_err_set(err, LH_EINVAL, "block: bad event count %zu", n);
    if (!lens) {
        if (n > e->lens_cap) {
            struct lhs_ev_lens *nl = realloc(e->lens_buf, n * sizeof(*nl));
            if (!nl)
                goto nomem;
            e->lens_buf = nl;
            e->lens_cap = n;
        }
        for (size_t i = 0; i < n; i++)
            lhs_event_lens(evs[i], &e->lens_buf[i]);
        lens = e->lens_buf;
    }

    /* timestamps: deltas divided by their common factor (ms or us clocks) */
    lh_buf_reset(&e->col);
    uint64_t div = 0;
    /* sorted, so each delta is >= 0 and < 2^64: unsigned, it never overflows */
    for (size_t i = 1; i < n; i++)
        div = gcd64(div, (uint64_t)evs[i]->ts_ns - (uint64_t)evs[i - 1]->ts_ns);
    if (div == 0)
        div = 1;
    if (lhs_buf_u64(&e->col, (uint64_t)evs[0]->ts_ns) < 0 || lhs_buf_varint(&e->col, div) < 0)
        goto nomem;
    int any_recv = 0;
    for (size_t i = 1; i < n; i++)
        if (lhs_buf_varint(&e->col, ((uint64_t)evs[i]->ts_ns - (uint64_t)evs[i - 1]->ts_ns) /
                                        div) < 0)
            goto nomem;
    if ((rc = put_col(e, fixed + 8 + LHS_C_TS * META_COL_BYTES, LHS_ENC_TS, 0, 0, 0, err)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        any_recv |= evs[i]->received_ns != 0;
    if (any_recv && (rc = encode_recv(e, evs, n, fixed + 8 + LHS_C_RECV * META_COL_BYTES,
                                      err)) < 0)
        return rc;
    /* level */
    lh_buf_reset(&e->col);
    if (lh_buf_reserve(&e->col, n) < 0)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        int l = (int)evs[i]->level;
        if (l < 0 || l >= LH_LEVEL_COUNT)
            l = 0;
        levels[l]++;
        e->col.data[e->col.len++] = (char)l;
        raw_bytes += lens[i].raw_bytes;
    }
    if ((rc = put_col(e, fixed + 8 + LHS_C_LEVEL * META_COL_BYTES, LHS_ENC_U8, 0, 0, 0, err)) < 0)
        return rc;

    /* string columns */
    for (int c = LHS_C_ID; c <= LHS_C_RAW; c++) {
        if (c == LHS_C_LEVEL)
            continue;
        uint8_t *dir = fixed + 8 + (size_t)c * META_COL_BYTES;
        if (c == LHS_C_ID) {
            if ((rc = encode_evid(e, evs, n, dir, err)) < 0)
                return rc;
            if (rc == 1)
                continue;
        }
        size_t nonnull = 0;
        for (size_t i = 0; i < n; i++)
            nonnull += ev_str(evs[i], c) != NULL;
        if (nonnull == 0)
            continue;
        int tokenize = c == LHS_C_MESSAGE || c == LHS_C_TRACE || c == LHS_C_USER ||
                       c == LHS_C_HOST || c == LHS_C_SPAN;
        size_t limit = n / 4 > 16 ? n / 4 : 16;
        if (limit > 65000)
            limit = 65000;
        int use_dict = is_dict_candidate(c);
        if (use_dict) {
            sdict_reset(&e->dict);
            if (grow_ptrs(&e->dvals, &e->dvals_cap, n + 1) < 0)
                goto nomem;
            lh_buf_reset(&e->col);
            if (lh_buf_reserve(&e->col, 2 * n) < 0)
                goto nomem;
            for (size_t i = 0; i < n && use_dict; i++) {
                const char *v = ev_str(evs[i], c);
                uint32_t code = 0;
                if (v) {
                    int added;
                    code = sdict_code(&e->dict, v, lens[i].len[c], &added);
                    if (!code)
                        goto nomem;
                    if (added) {
                        if (e->dict.n > limit) {
                            use_dict = 0;
                            break;
                        }
                        e->dvals[code] = v;
                        if (tokenize && (rc = index_text(e, v, lens[i].len[c])) < 0)
                            return lh_err_set(err, rc, "block: out of memory");
                    }
                }
                e->col.data[e->col.len++] = (char)(code & 0xff);
                e->col.data[e->col.len++] = (char)(code >> 8);
            }
            if (use_dict) {
                uint32_t width = e->dict.n < 256 ? 1 : 2;
                if (width == 1)   /* squeeze to one byte per code */
                    for (size_t i = 0; i < n; i++)
                        e->col.data[i] = e->col.data[2 * i];
                e->col.len = n * width;
                uint32_t doff = AREA_OFF(e);
                for (uint32_t k = 1; k <= e->dict.n; k++) {
                    size_t l = strlen(e->dvals[k]);
                    if (lhs_buf_varint(&e->areas, l) < 0 ||
                        lh_buf_append(&e->areas, e->dvals[k], l + 1) < 0)
                        goto nomem;
                }
                if ((rc = put_col(e, dir, LHS_ENC_DICT, (int)width, doff, (uint32_t)e->dict.n,
                                  err)) < 0)
                    return rc;
                continue;
            }
        }
        /* plain */
        lh_buf_reset(&e->col);
        lh_buf_reset(&e->lens);
        if (c != LHS_C_RAW) {   /* lengths known: lens and bytes go straight in place */
            size_t vbytes = 0, dbytes = 0;
            for (size_t i = 0; i < n; i++) {
                const char *v = ev_str(evs[i], c);
                vbytes += v ? varint_size(lens[i].len[c] + 1) : 1;
                dbytes += v ? lens[i].len[c] + 1 : 0;
            }
            if (lh_buf_reserve(&e->col, vbytes + dbytes) < 0)
                goto nomem;
            uint8_t *vp = (uint8_t *)e->col.data, *dp = vp + vbytes;
            for (size_t i = 0; i < n; i++) {
                const char *v = ev_str(evs[i], c);
                if (!v) {
                    *vp++ = 0;
                    continue;
                }
                size_t l = lens[i].len[c];
                vp = put_varint(vp, l + 1);
                memcpy(dp, v, l + 1);
                dp += l + 1;
                if (tokenize && (rc = index_text(e, v, l)) < 0)
                    return lh_err_set(err, rc, "block: out of memory");
            }
            e->col.len = vbytes + dbytes;
            e->col.data[e->col.len] = 0;
            if ((rc = put_col(e, dir, LHS_ENC_PLAIN, 0, 0, 0, err)) < 0)
                return rc;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const char *v = ev_str(evs[i], c);
            if (!v) {
                if (lhs_buf_varint(&e->lens, 0) < 0)
                    goto nomem;
                continue;
            }
            size_t before = e->col.len;
            if ((rc = raw_template(e, evs[i], &lens[i], &e->col)) < 0)
                return lh_err_set(err, rc, "block: out of memory");
            if (lhs_buf_varint(&e->lens, e->col.len - before + 1) < 0 ||
                lh_buf_putc(&e->col, '\0') < 0)
                goto nomem;
        }
        /* col = lens + data */
        if (lh_buf_reserve(&e->lens, e->col.len) < 0)
            goto nomem;
        lh_buf_append(&e->lens, e->col.data, e->col.len);
        struct lh_buf t = e->col;
        e->col = e->lens;
        e->lens = t;
        if ((rc = put_col(e, dir, LHS_ENC_PLAIN, 0, 0, 0, err)) < 0)
            return rc;
    }

    /* metadata */
    size_t nmeta = 0;
    for (size_t i = 0; i < n; i++)
        nmeta += evs[i]->nmeta;
    uint32_t keys_off = 0, keys_n = 0;
    if (nmeta) {
        sdict_reset(&e->keys);
        lh_buf_reset(&e->col);
        for (size_t i = 0; i < n; i++) {
            const struct lh_event *ev = evs[i];
            size_t cnt = 0;
            for (size_t k = 0; k < ev->nmeta; k++)
                cnt += ev->meta[k].key && ev->meta[k].value;
            if (lhs_buf_varint(&e->col, cnt) < 0)
                goto nomem;
            for (size_t k = 0; k < ev->nmeta; k++) {
                const struct lh_kv *kv = &ev->meta[k];
                if (!kv->key || !kv->value)
                    continue;
                int added;
                uint32_t code = sdict_code(&e->keys, kv->key, strlen(kv->key), &added);
                if (!code)
                    goto nomem;
                if (added) {
                    if (grow_ptrs(&e->keylist, &e->keylist_cap, e->keys.n + 1) < 0)
                        goto nomem;
                    e->keylist[code] = kv->key;
                }
                size_t l = strlen(kv->value);
                if (lhs_buf_varint(&e->col, code - 1) < 0 || lhs_buf_varint(&e->col, l) < 0 ||
                    lh_buf_append(&e->col, kv->value, l + 1) < 0)
                    goto nomem;
                if ((rc = index_text(e, kv->value, l)) < 0)
                    return lh_err_set(err, rc, "block: out of memory");
            }
        }
        keys_off = AREA_OFF(e);
        keys_n = (uint32_t)e->keys.n;
        for (uint32_t k = 1; k <= keys_n; k++) {
            size_t l = strlen(e->keylist[k]);
            if (lhs_buf_varint(&e->areas, l) < 0 ||
                lh_buf_append(&e->areas, e->keylist[k], l + 1) < 0)
                goto nomem;
        }
        if ((rc = put_col(e, fixed + 8 + LHS_C_META * META_COL_BYTES, LHS_ENC_META, 0, 0, 0,
                          err)) < 0)
            return rc;
    }

    /* bloom */
    size_t nwords = lhs_bloom_words(e->toks.n);
    while (AREA_OFF(e) % 8)
        if (lh_buf_putc(&e->areas, 0) < 0)
            goto nomem;
    uint32_t bloom_off = AREA_OFF(e);
    if (lh_buf_reserve(&e->areas, nwords * 8) < 0)
        goto nomem;
    uint64_t *words = calloc(nwords, 8);
    if (!words)
        goto nomem;
    for (size_t i = 0; i < e->toks.cap; i++)
        if (e->toks.v[i])
            lhs_bloom_add(words, nwords, e->toks.v[i]);
    if (e->toks.has_zero)
        lhs_bloom_add(words, nwords, 0);
    lh_buf_append(&e->areas, words, nwords * 8);
    free(words);

    /* id summary */
    if (grow_ptrs(&e->ids, &e->ids_cap, n) < 0)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        e->ids[i] = evs[i]->id;
    uint32_t ids_off = AREA_OFF(e);
    size_t before = e->areas.len;
    if ((rc = lhs_idx_summary(e->ids, n, &e->areas)) < 0)
        goto nomem;
    uint32_t ids_len = (uint32_t)(e->areas.len - before);

    uint8_t *tail = fixed + 8 + LHS_NCOLS * META_COL_BYTES;
    for (int l = 0; l < LH_LEVEL_COUNT; l++)
        lhs_put32(tail + 4 * l, levels[l]);
    tail += 4 * LH_LEVEL_COUNT;
    lhs_put32(tail, keys_off);
    lhs_put32(tail + 4, keys_n);
    lhs_put32(tail + 8, bloom_off);
    lhs_put32(tail + 12, (uint32_t)nwords);
    lhs_put32(tail + 16, ids_off);
    lhs_put32(tail + 20, ids_len);

    size_t meta_len = META_FIXED + e->areas.len;
    size_t total = LHS_BLK_HDR + meta_len + e->body.len;
    size_t padded = (total + 7) & ~(size_t)7;
    if (meta_len + e->body.len > LHS_BLOCK_MAX)
        return lh_err_set(err, LH_ETOOBIG, "block: %zu bytes encoded, too big", total);
    if (lh_buf_reserve(out, padded) < 0)
        goto nomem;
    uint8_t *h = (uint8_t *)out->data + out->len;
    memset(h, 0, padded);
    uint8_t *m = h + LHS_BLK_HDR;
    memcpy(m, fixed, META_FIXED);
    memcpy(m + META_FIXED, e->areas.data, e->areas.len);
    memcpy(m + meta_len, e->body.data, e->body.len);
    lhs_put32(h, LHS_BLK_MAGIC);
    h[4] = LHS_BLK_VERSION;
    lhs_put32(h + 8, (uint32_t)n);
    lhs_put32(h + 12, (uint32_t)meta_len);
    lhs_put32(h + 16, (uint32_t)e->body.len);
    lhs_put32(h + 20, lhs_crc(m, meta_len));
    lhs_put32(h + 24, lhs_crc(m + meta_len, e->body.len));
    int64_t mn = evs[0]->ts_ns, mx = evs[n - 1]->ts_ns;
    lhs_put64(h + 32, (uint64_t)mn);
    lhs_put64(h + 40, (uint64_t)mx);
    lhs_put64(h + 48, raw_bytes);
    lhs_put32(h + 60, lhs_crc(h, 60));
    out->len += padded;
    return 0;
nomem:
    return lh_err_set(err, LH_ENOMEM, "block: out of memory");
}

int lhs_block_seal(struct lh_buf *out)
{
    uint8_t h[LHS_BLK_HDR];
    memset(h, 0, sizeof(h));
    lhs_put32(h, LHS_BLK_MAGIC);
    h[4] = LHS_BLK_VERSION;
    h[6] = LHS_BLK_SEAL;
    lhs_put32(h + 20, lhs_crc("", 0));
    lhs_put32(h + 24, lhs_crc("", 0));
    lhs_put32(h + 60, lhs_crc(h, 60));
    return lh_buf_append(out, h, sizeof(h));
}

/* ---- reading ---------------------------------------------------------- */

int lhs_block_header(const uint8_t *p, uint64_t avail, struct lhs_block *b)
{
    if (avail < LHS_BLK_HDR)
        return -1;
    if (lhs_get32(p) != LHS_BLK_MAGIC || lhs_get32(p + 60) != lhs_crc(p, 60) ||
        p[4] != LHS_BLK_VERSION)
        return 0;
    memset(b, 0, sizeof(*b));
    b->flags = p[6];
    b->nrows = lhs_get32(p + 8);
    b->meta_len = lhs_get32(p + 12);
    b->body_len = lhs_get32(p + 16);
    b->body_crc = lhs_get32(p + 24);
    b->min_ts = (int64_t)lhs_get64(p + 32);
    b->max_ts = (int64_t)lhs_get64(p + 40);
    b->raw_bytes = lhs_get64(p + 48);
    if ((uint64_t)b->meta_len + b->body_len > LHS_BLOCK_MAX || b->min_ts > b->max_ts)
        return 0;
    if (!(b->flags & LHS_BLK_SEAL) && (b->nrows == 0 || b->meta_len < META_FIXED))
        return 0;
    uint64_t total = (LHS_BLK_HDR + (uint64_t)b->meta_len + b->body_len + 7) & ~7ull;
    if ((b->flags & LHS_BLK_SEAL))
        total = LHS_BLK_HDR;
    b->len = (uint32_t)total;
    b->meta = p + LHS_BLK_HDR;
    b->body = b->meta + b->meta_len;
    if (total > avail)
        return -1;
    return 1;
}

/* Reads a string list (varint len, bytes, NUL) of n entries at meta+off. */
static int read_strs(const struct lhs_block *b, uint32_t off, uint32_t n, const char ***out,
                     int one_based)
{
    const uint8_t *p = b->meta + off, *end = b->meta + b->meta_len;
    if (off > b->meta_len || n > b->meta_len)
        return LH_ECORRUPT;
    const char **v = calloc((size_t)n + 1, sizeof(*v));
    if (!v)
        return LH_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l;
        if (lhs_varint(&p, end, &l) < 0 || (uint64_t)(end - p) < l + 1 || p[l] != 0) {
            free(v);
            return LH_ECORRUPT;
        }
        v[i + (one_based ? 1 : 0)] = (const char *)p;
        p += l + 1;
    }
    *out = v;
    return 0;
}

int lhs_block_parse_meta(struct lhs_block *b, struct lh_err *err)
{
    const uint8_t *m = b->meta;
    memset(&b->m, 0, sizeof(b->m));
    if (lhs_get32(b->meta - LHS_BLK_HDR + 20) != lhs_crc(m, b->meta_len))
        return lh_err_set(err, LH_ECORRUPT, "meta checksum mismatch");
    uint32_t mver = lhs_get32(m);
    if (mver < 1 || mver > LHS_META_VERSION)
        return lh_err_set(err, LH_ECORRUPT,
                          "block meta version %u is newer than this loghaul reads (up to %u)",
                          mver, LHS_META_VERSION);
    if (lhs_get32(m + 4) != LHS_NCOLS)
        return lh_err_set(err, LH_ECORRUPT, "bad column count");
    int max_enc = mver >= 2 ? LHS_ENC_EVID : LHS_ENC_META;
    for (int c = 0; c < LHS_NCOLS; c++) {
        const uint8_t *d = m + 8 + c * META_COL_BYTES;
        struct lhs_coldir *cd = &b->m.col[c];
        cd->enc = d[0];
        cd->width = d[1];
        cd->off = lhs_get32(d + 4);
        cd->clen = lhs_get32(d + 8);
        cd->ulen = lhs_get32(d + 12);
        cd->dict_n = lhs_get32(d + 20);
        if (cd->enc > max_enc || (uint64_t)cd->off + cd->clen > b->body_len ||
            cd->ulen > LHS_BLOCK_MAX)
            goto corrupt;
        if (cd->enc == LHS_ENC_DICT) {
            if (cd->width != 1 && cd->width != 2)
                goto corrupt;
            int rc = read_strs(b, lhs_get32(d + 16), cd->dict_n, &cd->dict, 1);
            if (rc < 0) {
                lhs_block_free_meta(b);
                return lh_err_set(err, rc, "bad dictionary");
            }
        }
    }
    const uint8_t *t = m + 8 + LHS_NCOLS * META_COL_BYTES;
    for (int l = 0; l < LH_LEVEL_COUNT; l++)
        b->m.level_counts[l] = lhs_get32(t + 4 * l);
    t += 4 * LH_LEVEL_COUNT;
    uint32_t keys_off = lhs_get32(t), bloom_off = lhs_get32(t + 8), ids_off = lhs_get32(t + 16);
    b->m.nkeys = lhs_get32(t + 4);
    b->m.bloom_words = lhs_get32(t + 12);
    b->m.ids_len = lhs_get32(t + 20);
    if ((uint64_t)bloom_off + (uint64_t)b->m.bloom_words * 8 > b->meta_len ||
        (uint64_t)ids_off + b->m.ids_len > b->meta_len)
        goto corrupt;
    b->m.bloom = m + bloom_off;
    b->m.ids = m + ids_off;
    if (b->m.nkeys) {
        int rc = read_strs(b, keys_off, b->m.nkeys, &b->m.keys, 0);
        if (rc < 0) {
            lhs_block_free_meta(b);
            return lh_err_set(err, rc, "bad metadata keys");
        }
    }
    return 0;
corrupt:
    lhs_block_free_meta(b);
    return lh_err_set(err, LH_ECORRUPT, "bad column directory");
}

int lhs_block_check_body(const struct lhs_block *b)
{
    return lhs_crc(b->body, b->body_len) == b->body_crc ? 0 : LH_ECORRUPT;
}

int lhs_block_body_ok(struct lhs_block *b)
{
    int st = __atomic_load_n(&b->body_state, __ATOMIC_ACQUIRE);
    if (st == 0) {
        st = lhs_block_check_body(b) == 0 ? 1 : 2;
        __atomic_store_n(&b->body_state, st, __ATOMIC_RELEASE);
    }
    return st == 1;
}

void lhs_block_free_meta(struct lhs_block *b)
{
    for (int c = 0; c < LHS_NCOLS; c++) {
        free(b->m.col[c].dict);
        b->m.col[c].dict = NULL;
    }
    free(b->m.keys);
    b->m.keys = NULL;
}

/* ---- decoding --------------------------------------------------------- */

void lhs_bdec_init(struct lhs_bdec *d, const struct lhs_block *b)
{
    memset(d, 0, sizeof(*d));
    d->b = b;
    d->n = b->nrows;
}

void lhs_bdec_free(struct lhs_bdec *d)
{
    for (size_t i = 0; i < sizeof(d->bufs) / sizeof(d->bufs[0]); i++)
        free(d->bufs[i]);
    lh_arena_free(&d->arena);
    ZSTD_freeDCtx(d->dctx);
    memset(d, 0, sizeof(*d));
}

#define BODY_CHECKED (1u << 31)

/* Decompresses column c into a new buffer (ulen + 1 bytes, NUL-ended). */
static int decompress(struct lhs_bdec *d, int c, uint8_t **out)
{
    const struct lhs_coldir *cd = &d->b->m.col[c];
    if (!(d->loaded & BODY_CHECKED)) {
        if (!lhs_block_body_ok((struct lhs_block *)d->b))
            return LH_ECORRUPT;
        d->loaded |= BODY_CHECKED;
    }
    if (!d->dctx && !(d->dctx = ZSTD_createDCtx()))
        return LH_ENOMEM;
    uint8_t *buf = malloc((size_t)cd->ulen + 1);
    if (!buf)
        return LH_ENOMEM;
    size_t r = ZSTD_decompressDCtx(d->dctx, buf, cd->ulen, d->b->body + cd->off, cd->clen);
    if (ZSTD_isError(r) || r != cd->ulen) {
        free(buf);
        return LH_ECORRUPT;
    }
    buf[cd->ulen] = 0;
    d->bufs[c] = buf;
    *out = buf;
    return 0;
}

static int load_plain(struct lhs_bdec *d, int c, const uint8_t *buf, size_t len)
{
    const char **v = lh_arena_alloc(&d->arena, (size_t)d->n * sizeof(*v));
    if (!v)
        return LH_ENOMEM;
    const uint8_t *p = buf, *end = buf + len;
    uint64_t *lens = malloc((size_t)d->n * sizeof(*lens));
    if (!lens)
        return LH_ENOMEM;
    for (uint32_t i = 0; i < d->n; i++) {
        if (lhs_varint(&p, end, &lens[i]) < 0) {
            free(lens);
            return LH_ECORRUPT;
        }
    }
    for (uint32_t i = 0; i < d->n; i++) {
        if (lens[i] == 0) {
            v[i] = NULL;
            continue;
        }
        uint64_t l = lens[i] - 1;
        if ((uint64_t)(end - p) < l + 1 || p[l] != 0) {
            free(lens);
            return LH_ECORRUPT;
        }
        v[i] = (const char *)p;
        p += l + 1;
    }
    free(lens);
    d->str[c] = v;
    return 0;
}

/* Rebuilds the ids of an EVID column as <32 hex>-<decimal> strings. */
static int load_evid(struct lhs_bdec *d, const uint8_t *buf, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    const uint8_t *p = buf, *end = buf + len;
    uint64_t nu;
    if (lhs_varint(&p, end, &nu) < 0 || nu > (uint64_t)(end - p) / 16)
        return LH_ECORRUPT;
    const uint8_t *uu = p;
    p += nu * 16;
    const char **v = lh_arena_alloc(&d->arena, (size_t)(d->n ? d->n : 1) * sizeof(*v));
    char *txt = lh_arena_alloc(&d->arena, (size_t)(d->n ? d->n : 1) * 45);
    if (!v || !txt)
        return LH_ENOMEM;
    int64_t idx = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        uint64_t k, z;
        if (lhs_varint(&p, end, &k) < 0 || k >= nu || lhs_varint(&p, end, &z) < 0)
            return LH_ECORRUPT;
        idx += (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        if (idx < 0 || idx > (int64_t)UINT32_MAX)
            return LH_ECORRUPT;
        char *t = txt + (size_t)i * 45;
        for (int b = 0; b < 16; b++) {
            t[2 * b] = hx[uu[k * 16 + (uint64_t)b] >> 4];
            t[2 * b + 1] = hx[uu[k * 16 + (uint64_t)b] & 15];
        }
        char dig[10];
        int nd = 0;
        uint32_t x = (uint32_t)idx;
        do {
            dig[nd++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        t[32] = '-';
        for (int q = 0; q < nd; q++)
            t[33 + q] = dig[nd - 1 - q];
        t[33 + nd] = '\0';
        v[i] = t;
    }
    if (p != end)
        return LH_ECORRUPT;
    d->str[LHS_C_ID] = v;
    return 0;
}

static int raw_deps_load(struct lhs_bdec *d)
{
    static const int deps[] = { LHS_C_RAW, LHS_C_MESSAGE, LHS_C_TRACE, LHS_C_SPAN, LHS_C_USER,
                                LHS_C_HOST };
    for (size_t k = 0; k < sizeof(deps) / sizeof(deps[0]); k++) {
        int rc = lhs_bdec_load(d, deps[k]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Appends row i's raw line and its NUL to b (the row has a template). */
static int raw_row(const struct lhs_bdec *d, uint32_t i, struct lh_buf *b)
{
    const char *t = d->str[LHS_C_RAW][i];
    int rc = 0;
    while (*t && rc == 0) {
        const char *x = strchr(t, '\x01');
        size_t chunk = x ? (size_t)(x - t) : strlen(t);
        rc = lh_buf_append(b, t, chunk);
        if (!x || rc)
            break;
        const char *v = NULL;
        switch (x[1]) {
        case '\x07': v = "\x01"; break;
        case '\x02': v = d->str[LHS_C_MESSAGE][i]; break;
        case '\x03': v = d->str[LHS_C_TRACE][i]; break;
        case '\x04': v = d->str[LHS_C_SPAN][i]; break;
        case '\x05': v = d->str[LHS_C_USER][i]; break;
        case '\x06': v = d->str[LHS_C_HOST][i]; break;
        default: return LH_ECORRUPT;
        }
        if (!v)
            return LH_ECORRUPT;
        rc = lh_buf_puts(b, v);
        t = x + 2;
    }
    return rc ? rc : lh_buf_putc(b, '\0');
}

int lhs_bdec_raw(struct lhs_bdec *d)
{
    if (d->raw)
        return 0;
    int rc = raw_deps_load(d);
    if (rc < 0)
        return rc;
    const char **tpl = d->str[LHS_C_RAW];
    const char **out = lh_arena_alloc(&d->arena, (size_t)d->n * sizeof(*out));
    if (!out)
        return LH_ENOMEM;
    struct lh_buf b = LH_BUF_INIT;
    size_t *offs = malloc((size_t)d->n * sizeof(*offs));
    if (!offs)
        return LH_ENOMEM;
    for (uint32_t i = 0; i < d->n && rc == 0; i++) {
        offs[i] = SIZE_MAX;
        if (!tpl[i])
            continue;
        offs[i] = b.len;
        rc = raw_row(d, i, &b);
    }
    if (rc == 0) {
        for (uint32_t i = 0; i < d->n; i++)
            out[i] = offs[i] == SIZE_MAX ? NULL : b.data + offs[i];
        d->bufs[LHS_NCOLS + 1] = b.data;
        d->raw = (char **)out;
    } else {
        lh_buf_free(&b);
    }
    free(offs);
    return rc;
}

int lhs_bdec_load(struct lhs_bdec *d, int c)
{
    if (d->corrupt)
        return LH_ECORRUPT;
    if (d->loaded & (1u << c))
        return 0;
    const struct lhs_coldir *cd = &d->b->m.col[c];
    uint8_t *buf = NULL;
    int rc = 0;
    uint32_t n = d->n;
    if (cd->enc != LHS_ENC_NULL && (rc = decompress(d, c, &buf)) < 0)
        goto fail;
    switch (c) {
    case LHS_C_TS: {
        if (cd->enc != LHS_ENC_TS || cd->ulen < 8)
            goto corrupt;
        d->ts = lh_arena_alloc(&d->arena, (size_t)n * 8);
        if (!d->ts)
            return LH_ENOMEM;
        const uint8_t *p = buf + 8, *end = buf + cd->ulen;
        uint64_t div;
        d->ts[0] = (int64_t)lhs_get64(buf);
        if (lhs_varint(&p, end, &div) < 0)
            goto corrupt;
        for (uint32_t i = 1; i < n; i++) {
            uint64_t v;
            if (lhs_varint(&p, end, &v) < 0)
                goto corrupt;
            d->ts[i] = (int64_t)((uint64_t)d->ts[i - 1] + v * div);
        }
        break;
    }
    case LHS_C_RECV: {
        d->recv = lh_arena_calloc(&d->arena, (size_t)n * 8);
        if (!d->recv)
            return LH_ENOMEM;
        if (cd->enc == LHS_ENC_NULL)
            break;
        if (cd->enc != LHS_ENC_ZIGZAG && cd->enc != LHS_ENC_RDELTA)
            goto corrupt;
        if ((rc = lhs_bdec_load(d, LHS_C_TS)) < 0)
            goto fail;
        const uint8_t *p = buf, *end = buf + cd->ulen;
        uint64_t div;
        if (lhs_varint(&p, end, &div) < 0)
            goto corrupt;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t z;
            if (lhs_varint(&p, end, &z) < 0)
                goto corrupt;
            int64_t delta = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            uint64_t base = cd->enc == LHS_ENC_RDELTA && i > 0 ? (uint64_t)d->recv[i - 1]
                                                               : (uint64_t)d->ts[i];
            d->recv[i] = (int64_t)(base + (uint64_t)delta * div);
        }
        break;
    }
    case LHS_C_LEVEL:
        if (cd->enc != LHS_ENC_U8 || cd->ulen != n)
            goto corrupt;
        for (uint32_t i = 0; i < n; i++)
            if (buf[i] >= LH_LEVEL_COUNT)
                goto corrupt;
        d->level = buf;
        break;
    case LHS_C_META: {
        d->meta_row = lh_arena_alloc(&d->arena, (size_t)(n ? n : 1) * sizeof(*d->meta_row));
        if (!d->meta_row)
            return LH_ENOMEM;
        if (cd->enc == LHS_ENC_NULL) {
            for (uint32_t i = 0; i < n; i++)
                d->meta_row[i] = NULL;
            break;
        }
        const uint8_t *p = buf, *end = buf + cd->ulen;
        for (uint32_t i = 0; i < n; i++) {
            d->meta_row[i] = p;
            uint64_t cnt;
            if (lhs_varint(&p, end, &cnt) < 0)
                goto corrupt;
            for (uint64_t k = 0; k < cnt; k++) {
                uint64_t key, l;
                if (lhs_varint(&p, end, &key) < 0 || key >= d->b->m.nkeys ||
                    lhs_varint(&p, end, &l) < 0 || (uint64_t)(end - p) < l + 1 || p[l] != 0)
                    goto corrupt;
                p += l + 1;
            }
        }
        d->meta_end = end;
        break;
    }
    default:
        if (cd->enc == LHS_ENC_NULL) {
            d->str[c] = lh_arena_calloc(&d->arena, (size_t)(n ? n : 1) * sizeof(char *));
            if (!d->str[c])
                return LH_ENOMEM;
        } else if (cd->enc == LHS_ENC_PLAIN) {
            if ((rc = load_plain(d, c, buf, cd->ulen)) < 0)
                goto fail;
        } else if (cd->enc == LHS_ENC_EVID && c == LHS_C_ID) {
            if ((rc = load_evid(d, buf, cd->ulen)) < 0)
                goto fail;
        } else if (cd->enc == LHS_ENC_DICT) {
            if (cd->ulen != (uint64_t)n * cd->width)
                goto corrupt;
            const char **v = lh_arena_alloc(&d->arena, (size_t)n * sizeof(*v));
            uint16_t *codes = lh_arena_alloc(&d->arena, (size_t)n * sizeof(*codes));
            if (!v || !codes)
                return LH_ENOMEM;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t code = cd->width == 1 ? buf[i]
                                               : (uint32_t)(buf[2 * i] | (buf[2 * i + 1] << 8));
                if (code > cd->dict_n)
                    goto corrupt;
                codes[i] = (uint16_t)code;
                v[i] = cd->dict[code];
            }
            d->str[c] = v;
            d->codes[c] = codes;
        } else {
            goto corrupt;
        }
        break;
    }
    d->loaded |= 1u << c;
    return 0;
corrupt:
    rc = LH_ECORRUPT;
fail:
    if (rc == LH_ECORRUPT)
        d->corrupt = 1;
    return rc;
}

const char *lhs_bdec_meta_get(const struct lhs_bdec *d, uint32_t i, const char *key)
{
    const uint8_t *p = d->meta_row[i], *end = d->meta_end;
    if (!p)
        return NULL;
    uint64_t cnt = 0, code = 0, l = 0;
    lhs_varint(&p, end, &cnt);
    for (uint64_t k = 0; k < cnt; k++) {
        lhs_varint(&p, end, &code);
        lhs_varint(&p, end, &l);
        if (strcmp(d->b->m.keys[code], key) == 0)
            return (const char *)p;
        p += l + 1;
    }
    return NULL;
}

static char *dup_or_null(struct lh_arena *a, const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *r = lh_arena_strdup(a, s);
    if (!r)
        *fail = 1;
    return r;
}

int lhs_bdec_event(struct lhs_bdec *d, uint32_t i, const char *tenant, struct lh_arena *a,
                   struct lh_event *ev)
{
    for (int c = 0; c < LHS_NCOLS; c++) {
        int rc = lhs_bdec_load(d, c);
        if (rc < 0)
            return rc;
    }
    int fail = 0;
    memset(ev, 0, sizeof(*ev));
    /* one row's raw line, unless the whole column is rebuilt already */
    if (d->raw) {
        ev->raw = dup_or_null(a, d->raw[i], &fail);
    } else if (d->str[LHS_C_RAW][i]) {
        struct lh_buf b = LH_BUF_INIT;
        int rc = raw_row(d, i, &b);
        if (rc == 0 && !(ev->raw = lh_arena_strdup(a, b.data)))
            rc = LH_ENOMEM;
        lh_buf_free(&b);
        if (rc < 0)
            return rc;
    }
    ev->ts_ns = d->ts[i];
    ev->received_ns = d->recv[i];
    ev->level = (enum lh_level)d->level[i];
    ev->tenant = dup_or_null(a, tenant, &fail);
    ev->id = dup_or_null(a, d->str[LHS_C_ID][i], &fail);
    ev->service = dup_or_null(a, d->str[LHS_C_SERVICE][i], &fail);
    ev->host = dup_or_null(a, d->str[LHS_C_HOST][i], &fail);
    ev->trace_id = dup_or_null(a, d->str[LHS_C_TRACE][i], &fail);
    ev->span_id = dup_or_null(a, d->str[LHS_C_SPAN][i], &fail);
    ev->user_id = dup_or_null(a, d->str[LHS_C_USER][i], &fail);
    ev->message = dup_or_null(a, d->str[LHS_C_MESSAGE][i], &fail);
    ev->stream = dup_or_null(a, d->str[LHS_C_STREAM][i], &fail);
    ev->container_id = dup_or_null(a, d->str[LHS_C_CONTAINER][i], &fail);
    ev->k8s_namespace = dup_or_null(a, d->str[LHS_C_K8S_NS][i], &fail);
    ev->k8s_pod = dup_or_null(a, d->str[LHS_C_K8S_POD][i], &fail);
    ev->k8s_container = dup_or_null(a, d->str[LHS_C_K8S_CONT][i], &fail);
    ev->region = dup_or_null(a, d->str[LHS_C_REGION][i], &fail);
    ev->file = dup_or_null(a, d->str[LHS_C_FILE][i], &fail);
    const uint8_t *p = d->meta_row[i];
    if (p) {
        uint64_t cnt = 0, code = 0, l = 0;
        lhs_varint(&p, d->meta_end, &cnt);
        if (cnt) {
            ev->meta = lh_arena_alloc(a, (size_t)cnt * sizeof(*ev->meta));
            if (!ev->meta)
                return LH_ENOMEM;
            for (uint64_t k = 0; k < cnt; k++) {
                lhs_varint(&p, d->meta_end, &code);
                lhs_varint(&p, d->meta_end, &l);
                ev->meta[k].key = dup_or_null(a, d->b->m.keys[code], &fail);
                ev->meta[k].value = dup_or_null(a, (const char *)p, &fail);
                p += l + 1;
            }
            ev->nmeta = (size_t)cnt;
        }
    }
    return fail ? LH_ENOMEM : 0;
}
