/* batch.c - building, sealing and splitting ingest batches (see batch.h). */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lh/time.h"

#define DEF_MAX_BYTES (1u << 20)
#define DEF_MAX_RECORDS 10000
#define DEF_MAX_AGE_MS 1000
#define DEF_LEVEL 1

#define OFF(f) offsetof(struct lh_batch_config, f)
const struct lh_opt lh_batch_opts[] = {
    { LH_OPT_SIZE, "max_bytes", "1MiB", OFF(max_bytes),
      "uncompressed JSON bytes of one batch at most" },
    { LH_OPT_INT, "max_records", "10000", OFF(max_records), "records in one batch at most" },
    { LH_OPT_DURATION, "max_age", "1s", OFF(max_age_ms),
      "a batch is sent at the latest this long after its first record" },
    { LH_OPT_ENUM, "compression", "gzip", OFF(compression), "body encoding",
      .choices = "gzip|zstd|none" },
    { LH_OPT_INT, "level", "1", OFF(level),
      "compression level: gzip 1..12 (1 = ISA-L, fastest), zstd 1..19" },
    { 0 }
};
#undef OFF

int lh_batch_codec(int compression)
{
    switch (compression) {
    case LH_BATCH_ZSTD: return LH_CODEC_ZSTD;
    case LH_BATCH_NONE: return LH_CODEC_NONE;
    default: return LH_CODEC_GZIP;
    }
}

int lh_batch_config_check(const struct lh_batch_config *cfg, struct lh_err *err)
{
    if (cfg->max_bytes && cfg->max_bytes < 1024)
        return lh_err_set(err, LH_EINVAL, "batch.max_bytes: at least 1KiB");
    if (cfg->max_bytes > (256u << 20))
        return lh_err_set(err, LH_EINVAL, "batch.max_bytes: at most 256MiB");
    if (cfg->max_records < 0 || cfg->max_records > 1000000)
        return lh_err_set(err, LH_EINVAL, "batch.max_records: 1..1000000");
    if (cfg->max_age_ms < 0)
        return lh_err_set(err, LH_EINVAL, "batch.max_age: must not be negative");
    if (cfg->compression < LH_BATCH_GZIP || cfg->compression > LH_BATCH_NONE)
        return lh_err_set(err, LH_EINVAL, "batch.compression: gzip, zstd or none");
    if (cfg->level < 0 ||
        (cfg->compression == LH_BATCH_GZIP && cfg->level > LH_CODEC_GZIP_LEVEL_MAX) ||
        (cfg->compression == LH_BATCH_ZSTD && cfg->level > LH_CODEC_ZSTD_LEVEL_MAX))
        return lh_err_set(err, LH_EINVAL, "batch.level: %lld out of range for %s",
                          (long long)cfg->level,
                          cfg->compression == LH_BATCH_ZSTD ? "zstd (1..19)" : "gzip (1..12)");
    return 0;
}

void lh_batch_free(struct lh_batch *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->nfiles; i++) {
        free(b->files[i].path);
        free(b->files[i].real);
    }
    free(b->files);
    free(b->recs);
    lh_buf_free(&b->body);
    free(b);
}

static const char REC_PREFIX[] = "{\"log_records\":[";

int lh_batch_subset_json(const char *json, size_t json_len, const struct lh_batch_rec *recs,
                         uint32_t nrec, const uint32_t *idx, uint32_t n, struct lh_buf *out)
{
    lh_buf_reset(out);
    if (nrec == 0)
        return LH_EINVAL;
    size_t tail = (size_t)recs[nrec - 1].off + recs[nrec - 1].len;
    if (tail > json_len)
        return LH_EINVAL;
    if (lh_buf_puts(out, REC_PREFIX) < 0)
        return LH_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (idx[i] >= nrec || (i && idx[i] <= idx[i - 1]))
            return LH_EINVAL;
        const struct lh_batch_rec *r = &recs[idx[i]];
        if ((i && lh_buf_putc(out, ',') < 0) || lh_buf_append(out, json + r->off, r->len) < 0)
            return LH_ENOMEM;
    }
    return lh_buf_append(out, json + tail, json_len - tail) < 0 ? LH_ENOMEM : 0;
}

int lh_batch_filter(struct lh_batch *b, const char *json, size_t json_len, const uint8_t *keep,
                    struct lh_codec_ctx *cx, struct lh_err *err)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < b->nrec; i++)
        kept += keep[i] != 0;
    if (kept == b->nrec)
        return 0;
    struct lh_buf js = LH_BUF_INIT, body = LH_BUF_INIT;
    int rc = 0;
    if (kept) {
        size_t tail = (size_t)b->recs[b->nrec - 1].off + b->recs[b->nrec - 1].len;
        if (tail > json_len)
            return lh_err_set(err, LH_EINVAL, "batch: record index past the body");
        rc = lh_buf_puts(&js, REC_PREFIX);
        for (uint32_t i = 0, k = 0; rc == 0 && i < b->nrec; i++) {
            if (!keep[i])
                continue;
            if (k++)
                rc = lh_buf_putc(&js, ',');
            uint32_t off = (uint32_t)js.len;
            if (rc == 0)
                rc = lh_buf_append(&js, json + b->recs[i].off, b->recs[i].len);
            b->recs[i].off = off;
        }
        if (rc == 0)
            rc = lh_buf_append(&js, json + tail, json_len - tail);
        if (rc < 0) {
            lh_buf_free(&js);
            return lh_err_set(err, LH_ENOMEM, "batch: out of memory");
        }
        if ((rc = lh_codec_ctx_encode(cx, (enum lh_codec)b->codec, 1, js.data, js.len, &body,
                                      err)) < 0) {
            lh_buf_free(&js);
            lh_buf_free(&body);
            return rc;
        }
    }
    for (uint32_t f = 0; f < b->nfiles; f++)
        b->files[f].lines = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->nrec; i++)
        if (keep[i]) {
            b->recs[k++] = b->recs[i];
            b->files[b->recs[i].file].lines += b->recs[i].nlines;
        }
    b->nrec = k;
    b->raw_len = js.len;
    lh_buf_free(&b->body);
    b->body = body;
    lh_buf_free(&js);
    return 0;
}

void lh_batch_derive_uuid(const struct lh_uuid *parent, const char *label, struct lh_uuid *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char in[16 + 256];
    size_t ll = strlen(label);
    if (ll > 256)
        ll = 256;
    memcpy(in, parent->b, 16);
    memcpy(in + 16, label, ll);
    if (EVP_Digest(in, 16 + ll, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16) {
        /* Not expected; still deterministic and distinct from the parent. */
        memcpy(md, parent->b, 16);
        for (size_t i = 0; i < ll; i++)
            md[i % 16] ^= (unsigned char)(label[i] + i);
        md[15] ^= 0x5a;
    }
    memcpy(out->b, md, 16);
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x80);   /* version 8 */
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);   /* RFC 9562 variant */
}

/* ---- the builder ----------------------------------------------------------- */

struct lh_batcher {
    struct lh_batch_config cfg;      /* defaults resolved */
    const struct lh_shipper_meta *meta;
    struct lh_ledger *ledger;
    struct lh_codec_ctx *codec;
    struct lh_buf json;
    struct lh_batch_rec *recs;
    uint32_t nrec, rcap;
    struct lh_batch_file *files;
    uint32_t nfiles, fcap;
    uint32_t last_file;
    int pending;
    int64_t first_ms;
    struct lh_buf meta_json;         /* scratch for shipper_metadata */
};

static void resolve(struct lh_batch_config *c)
{
    if (!c->max_bytes)
        c->max_bytes = DEF_MAX_BYTES;
    if (!c->max_records)
        c->max_records = DEF_MAX_RECORDS;
    if (!c->max_age_ms)
        c->max_age_ms = DEF_MAX_AGE_MS;
    if (!c->level)
        c->level = DEF_LEVEL;
}

int lh_batcher_create(const struct lh_batch_config *cfg, const struct lh_shipper_meta *meta,
                      struct lh_ledger *ledger, struct lh_batcher **out, struct lh_err *err)
{
    int rc = lh_batch_config_check(cfg, err);
    if (rc < 0)
        return rc;
    struct lh_batcher *b = calloc(1, sizeof(*b));
    if (!b)
        return lh_err_set(err, LH_ENOMEM, "batch: out of memory");
    b->cfg = *cfg;
    resolve(&b->cfg);
    b->meta = meta;
    b->ledger = ledger;
    b->first_ms = INT64_MAX;
    if ((rc = lh_codec_ctx_create(&b->codec, err)) < 0) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

static void clear_files(struct lh_batcher *b)
{
    for (uint32_t i = 0; i < b->nfiles; i++)
        free(b->files[i].path);
    b->nfiles = 0;
    b->last_file = 0;
}

void lh_batcher_destroy(struct lh_batcher *b)
{
    if (!b)
        return;
    clear_files(b);
    free(b->files);
    free(b->recs);
    lh_buf_free(&b->json);
    lh_buf_free(&b->meta_json);
    lh_codec_ctx_destroy(b->codec);
    free(b);
}

void lh_batcher_set_config(struct lh_batcher *b, const struct lh_batch_config *cfg)
{
    b->cfg = *cfg;
    resolve(&b->cfg);
}

/* The files[] entry of rec's file, created on first use; NULL on ENOMEM. */
static struct lh_batch_file *file_of(struct lh_batcher *b, const struct lh_record *rec,
                                     uint32_t *index)
{
    if (b->last_file < b->nfiles && b->files[b->last_file].uid == rec->file_uid) {
        *index = b->last_file;
        return &b->files[b->last_file];
    }
    for (uint32_t i = 0; i < b->nfiles; i++)
        if (b->files[i].uid == rec->file_uid) {
            *index = b->last_file = i;
            return &b->files[i];
        }
    if (b->nfiles == b->fcap) {
        uint32_t cap = b->fcap ? b->fcap * 2 : 16;
        struct lh_batch_file *nf = realloc(b->files, cap * sizeof(*nf));
        if (!nf)
            return NULL;
        b->files = nf;
        b->fcap = cap;
    }
    struct lh_batch_file *f = &b->files[b->nfiles];
    memset(f, 0, sizeof(*f));
    if (!(f->path = strdup(rec->path ? rec->path : "")))
        return NULL;
    f->uid = rec->file_uid;
    *index = b->last_file = b->nfiles++;
    return f;
}

static int put_key_str(struct lh_buf *o, const char *key, const char *v, size_t n)
{
    if (lh_buf_puts(o, key) < 0)
        return LH_ENOMEM;
    return lh_buf_json_str(o, v, n);
}

static int encode_record(struct lh_buf *o, const struct lh_record *rec, const char *msg,
                         size_t len, int64_t read_ns)
{
    char ts[LH_TIME_RFC3339_SIZE];
    int tl = lh_time_format_rfc3339(rec->ts_ns ? rec->ts_ns : read_ns, 9, ts, sizeof(ts));
    if (tl < 0)
        return LH_EINVAL;
    if (lh_buf_puts(o, "{\"timestamp\":\"") < 0 || lh_buf_append(o, ts, (size_t)tl) < 0 ||
        put_key_str(o, "\",\"raw_message\":", msg, len) < 0)
        return LH_ENOMEM;
    if (rec->path && put_key_str(o, ",\"file\":", rec->path, strlen(rec->path)) < 0)
        return LH_ENOMEM;
    if (rec->stream && put_key_str(o, ",\"stream\":", rec->stream, strlen(rec->stream)) < 0)
        return LH_ENOMEM;
    const struct lh_k8s_meta *k = rec->k8s;
    if (k) {
        if (k->container_id[0] &&
            put_key_str(o, ",\"container_id\":", k->container_id, strlen(k->container_id)) < 0)
            return LH_ENOMEM;
        if (put_key_str(o, ",\"k8s\":{\"namespace\":", k->namespace_, strlen(k->namespace_)) < 0 ||
            put_key_str(o, ",\"pod\":", k->pod, strlen(k->pod)) < 0 ||
            put_key_str(o, ",\"container\":", k->container, strlen(k->container)) < 0 ||
            lh_buf_putc(o, '}') < 0)
            return LH_ENOMEM;
    }
    return lh_buf_putc(o, '}') < 0 ? LH_ENOMEM : 0;
}

static void start(struct lh_batcher *b, int64_t now_ms)
{
    if (!b->pending) {
        b->pending = 1;
        b->first_ms = now_ms;
    }
}

int lh_batcher_add(struct lh_batcher *b, const struct lh_record *rec, const char *msg,
                   size_t len, int64_t read_ns, int64_t now_ms)
{
    if (b->nrec >= (uint64_t)b->cfg.max_records)
        return LH_EFULL;
    if (b->nrec == b->rcap) {
        uint32_t cap = b->rcap ? b->rcap * 2 : 256;
        struct lh_batch_rec *nr = realloc(b->recs, cap * sizeof(*nr));
        if (!nr)
            return LH_ENOMEM;
        b->recs = nr;
        b->rcap = cap;
    }
    size_t mark = b->json.len;
    int rc = 0;
    if (b->nrec == 0)
        rc = lh_buf_puts(&b->json, REC_PREFIX);
    else
        rc = lh_buf_putc(&b->json, ',');
    size_t off = b->json.len;
    if (rc == 0)
        rc = encode_record(&b->json, rec, msg, len, read_ns);
    if (rc < 0 || off > UINT32_MAX || b->json.len - off > UINT32_MAX) {
        b->json.len = mark;
        return rc < 0 ? rc : LH_ETOOBIG;
    }
    /* Leave room for "]," + shipper_metadata: checked against max_bytes
     * without it; the metadata is small and bounded by the files listed. */
    if (b->nrec > 0 && b->json.len > b->cfg.max_bytes) {
        b->json.len = mark;
        b->json.data[mark] = '\0';
        return LH_EFULL;
    }
    uint32_t fi;
    struct lh_batch_file *f = file_of(b, rec, &fi);
    if (!f) {
        b->json.len = mark;
        return LH_ENOMEM;
    }
    if (rec->end > f->end)
        f->end = rec->end;
    f->lines += rec->nlines;
    b->recs[b->nrec++] = (struct lh_batch_rec){ (uint32_t)off, (uint32_t)(b->json.len - off),
                                                rec->nlines, fi };
    start(b, now_ms);
    return b->nrec >= (uint64_t)b->cfg.max_records || b->json.len >= b->cfg.max_bytes ? 1 : 0;
}

int lh_batcher_skip(struct lh_batcher *b, const struct lh_record *rec, int64_t now_ms)
{
    uint32_t fi;
    struct lh_batch_file *f = file_of(b, rec, &fi);
    if (!f)
        return LH_ENOMEM;
    if (rec->end > f->end)
        f->end = rec->end;
    start(b, now_ms);
    return 0;
}

int lh_batcher_empty(const struct lh_batcher *b)
{
    return !b->pending;
}

uint32_t lh_batcher_records(const struct lh_batcher *b)
{
    return b->nrec;
}

size_t lh_batcher_bytes(const struct lh_batcher *b)
{
    return b->json.len;
}

int64_t lh_batcher_due(const struct lh_batcher *b)
{
    if (!b->pending)
        return INT64_MAX;
    return b->first_ms > INT64_MAX - b->cfg.max_age_ms ? INT64_MAX
                                                       : b->first_ms + b->cfg.max_age_ms;
}

/* ,"files":[{...}] for the files that have records in this batch. */
static int files_json(struct lh_batcher *b, struct lh_buf *o)
{
    int rc = lh_buf_puts(o, ",\"files\":[");
    int first = 1;
    for (uint32_t i = 0; rc == 0 && i < b->nfiles; i++) {
        const struct lh_batch_file *f = &b->files[i];
        if (!f->lines)
            continue;
        struct lh_ledger_file row = { 0 };
        uint64_t sampled = 0;
        if (b->ledger) {
            lh_ledger_get(b->ledger, f->path, &row);
            sampled = lh_ledger_dropped(b->ledger, f->path, LH_DROP_SAMPLED);
        }
        uint64_t dropped = row.lines_dropped > sampled ? row.lines_dropped - sampled : 0;
        if (!first)
            rc = lh_buf_putc(o, ',');
        first = 0;
        if (rc == 0)
            rc = put_key_str(o, "{\"path\":", f->path, strlen(f->path));
        uint64_t records = 0;
        for (uint32_t r = 0; r < b->nrec; r++)
            records += b->recs[r].file == i;
        if (rc == 0)
            rc = lh_buf_printf(o, ",\"read\":%llu,\"acked\":%llu,\"dropped\":%llu,"
                               "\"sampled\":%llu,\"records\":%llu}",
                               (unsigned long long)row.lines_read,
                               (unsigned long long)row.lines_acked,
                               (unsigned long long)dropped, (unsigned long long)sampled,
                               (unsigned long long)records);
    }
    if (rc == 0)
        rc = lh_buf_putc(o, ']');
    if (rc == 0 && b->ledger)
        rc = lh_buf_printf(o, ",\"agent_boot\":\"%s\"", lh_ledger_boot(b->ledger));
    return rc;
}

static int metadata_json(struct lh_batcher *b, struct lh_buf *o)
{
    lh_buf_reset(&b->meta_json);
    struct lh_shipper_meta none = { 0 };
    int rc = lh_shipper_meta_json(b->meta ? b->meta : &none, &b->meta_json);
    if (rc < 0)
        return rc;
    /* Reopen the object to add files[]. */
    struct lh_buf *m = &b->meta_json;
    if (m->len < 2 || m->data[m->len - 1] != '}')
        return LH_EINVAL;
    m->len--;
    if (m->len == 1) {   /* "{": no field before files */
        if (lh_buf_puts(o, "{") < 0)
            return LH_ENOMEM;
    } else if (lh_buf_append(o, m->data, m->len) < 0) {
        return LH_ENOMEM;
    }
    size_t before = o->len;
    if ((rc = files_json(b, o)) < 0)
        return rc;
    if (m->len == 1) {   /* drop the leading ',' of ,"files" */
        memmove(o->data + before, o->data + before + 1, o->len - before - 1);
        o->len--;
        o->data[o->len] = '\0';
    }
    return lh_buf_putc(o, '}');
}

int lh_batcher_seal(struct lh_batcher *b, uint64_t seq, struct lh_batch **out,
                    struct lh_err *err)
{
    *out = NULL;
    if (!b->pending)
        return 0;
    struct lh_batch *bt = calloc(1, sizeof(*bt));
    if (!bt)
        return lh_err_set(err, LH_ENOMEM, "batch: out of memory");
    int rc;
    if ((rc = lh_uuid_v7(&bt->uuid, err)) < 0) {
        free(bt);
        return rc;
    }
    bt->codec = lh_batch_codec(b->cfg.compression);
    size_t mark = b->json.len;
    if (b->nrec > 0) {
        rc = lh_buf_puts(&b->json, "],\"shipper_metadata\":");
        if (rc == 0)
            rc = metadata_json(b, &b->json);
        if (rc == 0)
            rc = lh_buf_putc(&b->json, '}');
        if (rc < 0) {
            b->json.len = mark;
            free(bt);
            return lh_err_set(err, rc, "batch: out of memory");
        }
        int level = (int)b->cfg.level;
        if ((rc = lh_codec_ctx_encode(b->codec, (enum lh_codec)bt->codec, level, b->json.data,
                                      b->json.len, &bt->body, err)) < 0) {
            b->json.len = mark;
            lh_buf_free(&bt->body);
            free(bt);
            return rc;
        }
        bt->raw_len = b->json.len;
    }
    bt->seq = seq;
    bt->created_ms = b->first_ms;
    bt->recs = b->recs;
    bt->nrec = b->nrec;
    bt->files = b->files;
    bt->nfiles = b->nfiles;
    b->recs = NULL;
    b->nrec = b->rcap = 0;
    b->files = NULL;
    b->nfiles = b->fcap = b->last_file = 0;
    b->pending = 0;
    b->first_ms = INT64_MAX;
    lh_buf_reset(&b->json);
    *out = bt;
    return 0;
}
