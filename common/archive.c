/* archive.c - the archive interface: option table, dispatch to the dir and
 * s3 backends, object keys, client-side AES-256-GCM, events in and out
 * (see lh/archive.h). */
#include "lh/archive.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "archive_impl.h"
#include "lh/uuid.h"

static const struct lh_opt dir_opts[] = {
    { LH_OPT_STR, "path", "./var/archive", offsetof(struct lh_archive_dir_config, path),
      "root directory, laid out exactly like the bucket (<path>/<key>)" },
    { LH_OPT_BOOL, "fsync", "true", offsetof(struct lh_archive_dir_config, fsync),
      "fsync each object and its directory before put returns (off only for tests)" },
    { 0 }
};

static const struct lh_opt s3_opts[] = {
    { LH_OPT_STR, "endpoint", NULL, offsetof(struct lh_archive_s3_config, endpoint),
      "http(s)://host[:port] of an S3-compatible server; empty: AWS (https://s3.<region>.amazonaws.com)" },
    { LH_OPT_STR, "bucket", NULL, offsetof(struct lh_archive_s3_config, bucket), "bucket name" },
    { LH_OPT_STR, "region", "us-east-1", offsetof(struct lh_archive_s3_config, region),
      "region used for signing (SigV4) and the AWS endpoint" },
    { LH_OPT_STR, "access_key", NULL, offsetof(struct lh_archive_s3_config, access_key),
      "access key id; empty: $AWS_ACCESS_KEY_ID", LH_OPT_SECRET },
    { LH_OPT_STR, "secret_key", NULL, offsetof(struct lh_archive_s3_config, secret_key),
      "secret access key; empty: $AWS_SECRET_ACCESS_KEY", LH_OPT_SECRET },
    { LH_OPT_STR, "session_token", NULL, offsetof(struct lh_archive_s3_config, session_token),
      "session token of temporary credentials; empty: $AWS_SESSION_TOKEN", LH_OPT_SECRET },
    { LH_OPT_ENUM, "addressing", "auto", offsetof(struct lh_archive_s3_config, addressing),
      "path: <endpoint>/<bucket>/<key>; virtual: <bucket>.<host>/<key>; auto: virtual on "
      "AWS, path for a custom endpoint", 0, NULL, 0, "auto|path|virtual" },
    { LH_OPT_ENUM, "sse", "none", offsetof(struct lh_archive_s3_config, sse),
      "server-side encryption: AES256 sends x-amz-server-side-encryption", 0, NULL, 0,
      "none|AES256" },
    { LH_OPT_SIZE, "multipart_threshold", "64MiB",
      offsetof(struct lh_archive_s3_config, multipart_threshold),
      "objects larger than this are uploaded in parts" },
    { LH_OPT_SIZE, "part_size", "16MiB", offsetof(struct lh_archive_s3_config, part_size),
      "bytes per multipart part (at least 5MiB)" },
    { LH_OPT_DURATION, "connect_timeout", "5s",
      offsetof(struct lh_archive_s3_config, connect_timeout_ms), "TCP + TLS connect timeout" },
    { LH_OPT_DURATION, "timeout", "2m", offsetof(struct lh_archive_s3_config, timeout_ms),
      "timeout of one request (one part of a multipart upload)" },
    { LH_OPT_INT, "retries", "5", offsetof(struct lh_archive_s3_config, retries),
      "retries of a request after 5xx, 429, timeouts and connection errors" },
    { LH_OPT_DURATION, "retry_base", "200ms", offsetof(struct lh_archive_s3_config, retry_base_ms),
      "first backoff ceiling; doubles each retry (full jitter)" },
    { LH_OPT_DURATION, "retry_max", "10s", offsetof(struct lh_archive_s3_config, retry_max_ms),
      "largest backoff" },
    { LH_OPT_STR, "ca_file", NULL, offsetof(struct lh_archive_s3_config, ca_file),
      "CA bundle for a private endpoint's certificate" },
    { LH_OPT_BOOL, "tls_verify", "true", offsetof(struct lh_archive_s3_config, tls_verify),
      "verify the server certificate (off only for tests)" },
    { 0 }
};

const struct lh_opt lh_archive_opts[] = {
    { LH_OPT_ENUM, "type", "dir", offsetof(struct lh_archive_config, type),
      "dir: a local directory laid out like the bucket; s3: an S3-compatible bucket", 0, NULL,
      0, "dir|s3" },
    { LH_OPT_ENUM, "format", "parquet", offsetof(struct lh_archive_config, format),
      "object format: parquet (zstd) or ndjson (NDJSON, zstd-compressed)", 0, NULL, 0,
      "parquet|ndjson" },
    { LH_OPT_INT, "zstd_level", "6", offsetof(struct lh_archive_config, zstd_level),
      "zstd level of new objects (1..19; 6 is ~10% smaller than 3 at ~15% more CPU)" },
    { LH_OPT_STR, "encryption_key", NULL, offsetof(struct lh_archive_config, encryption_key),
      "client-side AES-256-GCM key, 32 bytes as 64 hex digits or base64; objects get .enc",
      LH_OPT_SECRET },
    { LH_OPT_SECTION, "dir", NULL, offsetof(struct lh_archive_config, dir),
      "the dir backend", 0, dir_opts },
    { LH_OPT_SECTION, "s3", NULL, offsetof(struct lh_archive_config, s3), "the s3 backend", 0,
      s3_opts },
    { 0 }
};

struct lh_archive {
    const struct lh_archive_ops *ops;
    void *ctx;
    enum lh_archive_format format;
    int zstd_level;
    int encrypt;
    uint8_t key[32];
};

/* ---- lists and keys ---- */

int lh_archive_list_add(struct lh_archive_list *l, const char *key, size_t keylen,
                        uint64_t size)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct lh_archive_item *p = realloc(l->items, nc * sizeof(*p));
        if (!p)
            return LH_ENOMEM;
        l->items = p;
        l->cap = nc;
    }
    char *k = strndup(key, keylen);
    if (!k)
        return LH_ENOMEM;
    l->items[l->n].key = k;
    l->items[l->n].size = size;
    l->n++;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const struct lh_archive_item *)a)->key,
                  ((const struct lh_archive_item *)b)->key);
}

void lh_archive_list_sort(struct lh_archive_list *l)
{
    if (l->n > 1)
        qsort(l->items, l->n, sizeof(*l->items), cmp_item);
}

void lh_archive_list_free(struct lh_archive_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].key);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int lh_archive_key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > LH_ARCHIVE_KEY_MAX || key[0] == '/')
        return 0;
    const char *seg = key;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (unsigned char)key[i] < 0x20)
            return 0;
        if (i == n || key[i] == '/') {
            size_t sl = (size_t)(key + i - seg);
            if (sl == 0 || seg[0] == '.')   /* empty, ".", "..", hidden/temporary */
                return 0;
            seg = key + i + 1;
        }
    }
    return 1;
}

static int prefix_ok(const char *p)
{
    if (!p)
        return 1;
    if (p[0] == '/' || strlen(p) > LH_ARCHIVE_KEY_MAX)
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p < 0x20)
            return 0;
    return 1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

static void clean_name(char *out, size_t size, const char *in, int no_underscore)
{
    size_t o = 0;
    if (!in || !*in)
        in = "unknown";
    for (; *in && o + 1 < size; in++) {
        unsigned char c = (unsigned char)*in;
        int ok = isalnum(c) || c == '.' || c == '-' || (c == '_' && !no_underscore);
        out[o++] = ok ? (char)c : '-';
    }
    out[o] = '\0';
    if (out[0] == '.')
        out[0] = '-';   /* no hidden path segments */
}

static void hour_of(int64_t ts_ns, struct tm *tm)
{
    int64_t s = ts_ns / 1000000000;
    if (ts_ns % 1000000000 < 0)
        s--;
    time_t t = (time_t)s;
    gmtime_r(&t, tm);
}

int lh_archive_hour_prefix(char *out, size_t out_size, const char *tenant, int64_t ts_ns)
{
    char t[128];
    struct tm tm;
    clean_name(t, sizeof(t), tenant, 0);
    hour_of(ts_ns, &tm);
    int n = snprintf(out, out_size, "%s/year=%04d/month=%02d/day=%02d/hour=%02d/", t,
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
    return n < 0 || (size_t)n >= out_size ? LH_EINVAL : 0;
}

int lh_archive_key(char *out, size_t out_size, const char *tenant, int64_t ts_ns,
                   const char *region, const char *host, const uint8_t *uuid,
                   enum lh_archive_format fmt, int encrypted)
{
    char r[64], h[128], u[LH_UUID_STR_SIZE];
    struct lh_uuid id;
    int rc = lh_archive_hour_prefix(out, out_size, tenant, ts_ns);
    if (rc < 0)
        return rc;
    if (uuid)
        memcpy(id.b, uuid, 16);
    else if (lh_uuid_v7(&id, NULL) < 0)
        return LH_EIO;
    lh_uuid_format(&id, u);
    clean_name(r, sizeof(r), region, 1);
    clean_name(h, sizeof(h), host, 0);
    size_t used = strlen(out);
    int n = snprintf(out + used, out_size - used, "%s_%s_%s.%s%s", r, h, u,
                     lh_archive_format_ext(fmt), encrypted ? ".enc" : "");
    return n < 0 || (size_t)n >= out_size - used ? LH_EINVAL : 0;
}

/* ---- client-side encryption ---- */

static const uint8_t enc_magic[4] = { 'L', 'H', 'A', 'E' };
#define ENC_VERSION 1
#define ENC_ALG_AES256GCM 1

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int lh_archive_parse_key(const char *text, uint8_t key[32], struct lh_err *err)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 64) {
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                goto bad;
            key[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
    if (n == 43 || n == 44) {
        unsigned char in[45], out[48];
        memcpy(in, text, n);
        if (n == 43)
            in[n++] = '=';
        in[n] = '\0';
        if (in[42] == '=' || in[43] != '=')
            goto bad;
        for (size_t i = 0; i < 43; i++)
            if (!isalnum(in[i]) && in[i] != '+' && in[i] != '/')
                goto bad;
        if (EVP_DecodeBlock(out, in, 44) != 33)   /* 33 counts the padding byte */
            goto bad;
        memcpy(key, out, 32);
        OPENSSL_cleanse(out, sizeof(out));
        return 0;
    }
bad:
    return lh_err_set(err, LH_EINVAL,
                      "archive: encryption_key must be 32 bytes as 64 hex digits or base64");
}

#define GCM_CHUNK (1 << 30)   /* EVP takes int lengths */

int lh_archive_seal(const uint8_t key[32], const void *plain, size_t len, struct lh_buf *out,
                    struct lh_err *err)
{
    uint8_t hdr[LH_ARCHIVE_ENC_HEADER] = { 0 };
    size_t orig = out->len;
    int outl = 0, rc = LH_ERR;
    EVP_CIPHER_CTX *c = NULL;

    memcpy(hdr, enc_magic, 4);
    hdr[4] = ENC_VERSION;
    hdr[5] = ENC_ALG_AES256GCM;
    if (RAND_bytes(hdr + 8, 12) != 1)
        return lh_err_set(err, LH_EIO, "archive: no random bytes for the nonce");
    if (lh_buf_reserve(out, len + LH_ARCHIVE_ENC_OVERHEAD) < 0)
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    memcpy(out->data + out->len, hdr, sizeof(hdr));
    uint8_t *dst = (uint8_t *)out->data + out->len + sizeof(hdr);
    c = EVP_CIPHER_CTX_new();
    if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
        EVP_EncryptInit_ex(c, NULL, NULL, key, hdr + 8) != 1 ||
        EVP_EncryptUpdate(c, NULL, &outl, hdr, sizeof(hdr)) != 1)
        goto fail;
    for (size_t done = 0; done < len;) {
        int chunk = len - done > GCM_CHUNK ? GCM_CHUNK : (int)(len - done);
        if (EVP_EncryptUpdate(c, dst + done, &outl, (const uint8_t *)plain + done, chunk) != 1 ||
            outl != chunk)
            goto fail;
        done += (size_t)chunk;
    }
    if (EVP_EncryptFinal_ex(c, dst + len, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, dst + len) != 1)
        goto fail;
    out->len += len + LH_ARCHIVE_ENC_OVERHEAD;
    out->data[out->len] = '\0';
    rc = 0;
    goto done;
fail:
    rc = lh_err_set(err, LH_ERR, "archive: AES-256-GCM encryption failed");
    out->len = orig;
    out->data[orig] = '\0';
done:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int lh_archive_unseal(const uint8_t key[32], const void *sealed, size_t len, struct lh_buf *out,
                      struct lh_err *err)
{
    const uint8_t *s = sealed;
    size_t orig = out->len;
    int outl = 0, rc;
    EVP_CIPHER_CTX *c = NULL;

    if (len < LH_ARCHIVE_ENC_OVERHEAD || memcmp(s, enc_magic, 4) != 0)
        return lh_err_set(err, LH_ECORRUPT, "archive: not an encrypted archive object");
    if (s[4] != ENC_VERSION || s[5] != ENC_ALG_AES256GCM)
        return lh_err_set(err, LH_ECORRUPT, "archive: unknown encryption version %u/%u", s[4],
                          s[5]);
    size_t clen = len - LH_ARCHIVE_ENC_OVERHEAD;
    const uint8_t *ct = s + LH_ARCHIVE_ENC_HEADER, *tag = ct + clen;
    if (lh_buf_reserve(out, clen) < 0)
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    uint8_t *dst = (uint8_t *)out->data + out->len;
    c = EVP_CIPHER_CTX_new();
    if (!c || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
        EVP_DecryptInit_ex(c, NULL, NULL, key, s + 8) != 1 ||
        EVP_DecryptUpdate(c, NULL, &outl, s, LH_ARCHIVE_ENC_HEADER) != 1)
        goto fail;
    for (size_t done = 0; done < clen;) {
        int chunk = clen - done > GCM_CHUNK ? GCM_CHUNK : (int)(clen - done);
        if (EVP_DecryptUpdate(c, dst + done, &outl, ct + done, chunk) != 1 || outl != chunk)
            goto fail;
        done += (size_t)chunk;
    }
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(c, dst + clen, &outl) != 1)
        goto fail;
    out->len += clen;
    out->data[out->len] = '\0';
    EVP_CIPHER_CTX_free(c);
    return 0;
fail:
    /* never leave unauthenticated plaintext behind */
    OPENSSL_cleanse(dst, clen);
    out->len = orig;
    out->data[orig] = '\0';
    rc = lh_err_set(err, LH_ECORRUPT,
                    "archive: encrypted object failed authentication (wrong key or tampered)");
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* ---- the handle ---- */

int lh_archive_open(struct lh_archive **out, const struct lh_archive_config *cfg,
                    struct lh_err *err)
{
    struct lh_archive *a;
    int rc;
    *out = NULL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    a->format = cfg->format == LH_ARCHIVE_NDJSON ? LH_ARCHIVE_NDJSON : LH_ARCHIVE_PARQUET;
    a->zstd_level = cfg->zstd_level >= 1 && cfg->zstd_level <= 22 ? (int)cfg->zstd_level : 6;
    if (cfg->encryption_key && *cfg->encryption_key) {
        if ((rc = lh_archive_parse_key(cfg->encryption_key, a->key, err)) < 0)
            goto fail;
        a->encrypt = 1;
    }
    if (cfg->type == LH_ARCHIVE_S3) {
        a->ops = &lh_archive_s3_ops;
        rc = lh_archive_s3_create(&a->ctx, &cfg->s3, err);
    } else if (cfg->type == LH_ARCHIVE_DIR) {
        a->ops = &lh_archive_dir_ops;
        rc = lh_archive_dir_create(&a->ctx, &cfg->dir, err);
    } else {
        rc = lh_err_set(err, LH_EINVAL, "archive: unknown type %d", cfg->type);
    }
    if (rc < 0)
        goto fail;
    *out = a;
    return 0;
fail:
    OPENSSL_cleanse(a->key, sizeof(a->key));
    free(a);
    return rc;
}

void lh_archive_close(struct lh_archive *a)
{
    if (!a)
        return;
    if (a->ops)
        a->ops->destroy(a->ctx);
    OPENSSL_cleanse(a->key, sizeof(a->key));
    free(a);
}

const char *lh_archive_backend(const struct lh_archive *a) { return a->ops->name; }

enum lh_archive_format lh_archive_object_format(const struct lh_archive *a) { return a->format; }

int lh_archive_encrypts(const struct lh_archive *a) { return a->encrypt; }

static int bad_key(const char *key, struct lh_err *err)
{
    return lh_err_set(err, LH_EINVAL, "archive: invalid object key \"%.200s\"", key ? key : "");
}

static int need_key(const struct lh_archive *a, const char *key, struct lh_err *err)
{
    if (!a->encrypt)
        return lh_err_set(err, LH_EINVAL,
                          "archive: %.200s is encrypted but no encryption_key is configured", key);
    return 0;
}

int lh_archive_put(struct lh_archive *a, const char *key, const void *data, size_t len,
                   struct lh_err *err)
{
    if (!lh_archive_key_ok(key))
        return bad_key(key, err);
    if (!ends_with(key, ".enc"))
        return a->ops->put(a->ctx, key, data, len, err);
    struct lh_buf sealed = LH_BUF_INIT;
    int rc = need_key(a, key, err);
    if (rc == 0)
        rc = lh_archive_seal(a->key, data, len, &sealed, err);
    if (rc == 0)
        rc = a->ops->put(a->ctx, key, sealed.data, sealed.len, err);
    lh_buf_free(&sealed);
    return rc;
}

int lh_archive_get(struct lh_archive *a, const char *key, uint64_t offset, uint64_t len,
                   struct lh_buf *out, struct lh_err *err)
{
    if (!lh_archive_key_ok(key))
        return bad_key(key, err);
    if (!ends_with(key, ".enc"))
        return a->ops->get(a->ctx, key, offset, len, out, err);
    /* GCM authenticates the whole object: fetch it all, then slice */
    struct lh_buf sealed = LH_BUF_INIT, plain = LH_BUF_INIT;
    int rc = need_key(a, key, err);
    if (rc == 0)
        rc = a->ops->get(a->ctx, key, 0, 0, &sealed, err);
    if (rc == 0)
        rc = lh_archive_unseal(a->key, sealed.data, sealed.len, &plain, err);
    if (rc == 0) {
        if (offset > plain.len || (offset == plain.len && plain.len != 0)) {
            rc = lh_err_set(err, LH_EINVAL, "archive: %.200s: offset %llu past the end (%zu)",
                            key, (unsigned long long)offset, plain.len);
        } else {
            uint64_t n = plain.len - offset;
            if (len && len < n)
                n = len;
            if (lh_buf_append(out, plain.data + offset, (size_t)n) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        }
    }
    if (plain.data)
        OPENSSL_cleanse(plain.data, plain.len);
    lh_buf_free(&sealed);
    lh_buf_free(&plain);
    return rc;
}

int lh_archive_head(struct lh_archive *a, const char *key, uint64_t *size, struct lh_err *err)
{
    uint64_t s;
    if (!lh_archive_key_ok(key))
        return bad_key(key, err);
    int rc = a->ops->head(a->ctx, key, &s, err);
    if (rc < 0)
        return rc;
    if (ends_with(key, ".enc")) {
        if (s < LH_ARCHIVE_ENC_OVERHEAD)
            return lh_err_set(err, LH_ECORRUPT, "archive: %.200s: too short to be encrypted",
                              key);
        s -= LH_ARCHIVE_ENC_OVERHEAD;
    }
    *size = s;
    return 0;
}

int lh_archive_list(struct lh_archive *a, const char *prefix, struct lh_archive_list *out,
                    struct lh_err *err)
{
    if (!prefix_ok(prefix))
        return lh_err_set(err, LH_EINVAL, "archive: invalid list prefix");
    size_t first = out->n;
    int rc = a->ops->list(a->ctx, prefix ? prefix : "", out, err);
    if (rc < 0)
        return rc;
    for (size_t i = first; i < out->n; i++)
        if (ends_with(out->items[i].key, ".enc") && out->items[i].size >= LH_ARCHIVE_ENC_OVERHEAD)
            out->items[i].size -= LH_ARCHIVE_ENC_OVERHEAD;
    return 0;
}

int lh_archive_delete(struct lh_archive *a, const char *key, struct lh_err *err)
{
    if (!lh_archive_key_ok(key))
        return bad_key(key, err);
    return a->ops->del(a->ctx, key, err);
}

int lh_archive_write_events(struct lh_archive *a, const char *tenant, int64_t ts_ns,
                            const char *region, const char *host, const struct lh_event *evs,
                            size_t n, char *key_out, struct lh_err *err)
{
    char key[LH_ARCHIVE_KEY_MAX];
    struct lh_buf body = LH_BUF_INIT;
    int rc = lh_archive_key(key, sizeof(key), tenant, ts_ns, region, host, NULL, a->format,
                            a->encrypt);
    if (rc < 0)
        return lh_err_set(err, rc, "archive: cannot make an object key");
    rc = lh_archive_format_write(a->format, evs, n, a->zstd_level, &body, err);
    if (rc == 0)
        rc = lh_archive_put(a, key, body.data ? body.data : "", body.len, err);
    if (rc == 0 && key_out)
        memcpy(key_out, key, strlen(key) + 1);
    lh_buf_free(&body);
    return rc;
}

int lh_archive_read_events(struct lh_archive *a, const char *key, struct lh_arena *arena,
                           struct lh_event **evs, size_t *n, struct lh_err *err)
{
    enum lh_archive_format fmt;
    struct lh_buf body = LH_BUF_INIT;
    if (!key || lh_archive_format_of_key(key, &fmt) < 0)
        return lh_err_set(err, LH_EINVAL, "archive: %.200s: not an archive object key",
                          key ? key : "");
    int rc = lh_archive_get(a, key, 0, 0, &body, err);
    if (rc == 0)
        rc = lh_archive_format_read(fmt, body.data, body.len, arena, evs, n, err);
    if (rc < 0)
        lh_err_wrap(err, "%.200s", key);
    lh_buf_free(&body);
    return rc;
}

/* Appends the events of src[0..n) with ts in [from, to] to the growing
 * array *all (arena memory; the old array is simply abandoned). */
static int keep_in_range(struct lh_arena *arena, struct lh_event **all, size_t *nall,
                         size_t *cap, const struct lh_event *src, size_t n, int64_t from,
                         int64_t to)
{
    for (size_t i = 0; i < n; i++) {
        if (src[i].ts_ns < from || src[i].ts_ns > to)
            continue;
        if (*nall == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            struct lh_event *p = lh_arena_alloc(arena, nc * sizeof(*p));
            if (!p)
                return LH_ENOMEM;
            if (*nall)
                memcpy(p, *all, *nall * sizeof(*p));
            *all = p;
            *cap = nc;
        }
        (*all)[(*nall)++] = src[i];
    }
    return 0;
}

int lh_archive_read_events_range(struct lh_archive *a, const char *key, int64_t from,
                                 int64_t to, struct lh_arena *arena, struct lh_event **evs,
                                 size_t *n, struct lh_err *err)
{
    enum lh_archive_format fmt;
    struct lh_event *all = NULL, *part;
    size_t nall = 0, cap = 0, np;
    int rc;

    if (!key || lh_archive_format_of_key(key, &fmt) < 0)
        return lh_err_set(err, LH_EINVAL, "archive: %.200s: not an archive object key",
                          key ? key : "");
    if (fmt != LH_ARCHIVE_PARQUET || ends_with(key, ".enc")) {
        /* NDJSON has no index, GCM needs the whole object: read it all */
        rc = lh_archive_read_events(a, key, arena, &part, &np, err);
        if (rc == 0 && keep_in_range(arena, &all, &nall, &cap, part, np, from, to) < 0)
            rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        goto done;
    }

    /* Parquet: the footer from the tail, then only the row groups whose
     * timestamp statistics overlap [from, to] */
    struct lh_buf tail = LH_BUF_INIT, body = LH_BUF_INIT;
    struct lh_parquet_file *f = NULL;
    uint64_t size;
    size_t need = 0;
    if ((rc = lh_archive_head(a, key, &size, err)) < 0)
        goto done;
    uint64_t want = size < 65536 ? size : 65536;
    for (int round = 0; round < 2; round++) {
        lh_buf_reset(&tail);
        if ((rc = lh_archive_get(a, key, size - want, want, &tail, err)) < 0)
            break;
        rc = lh_parquet_open_tail(&f, tail.data, tail.len, size, &need, err);
        if (rc != LH_EAGAIN || need <= want || need > size)
            break;
        want = need;
    }
    for (size_t g = 0; rc == 0 && g < lh_parquet_num_row_groups(f); g++) {
        int64_t rows, mn, mx;
        uint64_t off, len;
        if (lh_parquet_row_group_ts(f, g, &rows, &mn, &mx) == 0 && (mx < from || mn > to))
            continue;
        if (lh_parquet_row_group_range(f, g, &off, &len) < 0) {
            rc = lh_err_set(err, LH_ECORRUPT, "parquet: bad row group offsets");
            break;
        }
        lh_buf_reset(&body);
        if ((rc = lh_archive_get(a, key, off, len, &body, err)) < 0)
            break;
        if (body.len != len) {
            rc = lh_err_set(err, LH_ECORRUPT, "archive: short read of a row group");
            break;
        }
        rc = lh_parquet_read_row_group_at(f, g, body.data, off, body.len, arena, &part, &np,
                                          err);
        if (rc == 0 && keep_in_range(arena, &all, &nall, &cap, part, np, from, to) < 0)
            rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    }
    lh_parquet_close(f);
    lh_buf_free(&tail);
    lh_buf_free(&body);
    if (rc < 0)
        lh_err_wrap(err, "%.200s", key);
done:
    if (rc == 0) {
        *evs = all;
        *n = nall;
    }
    return rc;
}
