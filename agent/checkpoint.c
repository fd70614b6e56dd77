/* checkpoint.c - atomically written JSON offset store (see checkpoint.h). */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lh/buf.h"

uint64_t lh_ckpt_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

void lh_ckpt_free(struct lh_ckpt_entry *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].path);
        free(v[i].real);
    }
    free(v);
}

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int len = (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || (len == 2 && *p < 0xC2))
            return 0;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        p += len;
    }
    return 1;
}

/* Sets key (or key_hex, for names that are not UTF-8) to s. */
static int put_path(json_t *o, const char *key, const char *s)
{
    if (!s)
        s = "";
    if (valid_utf8(s))
        return json_object_set_new(o, key, json_string(s));
    char hk[32];
    snprintf(hk, sizeof(hk), "%s_hex", key);
    size_t n = strlen(s);
    char *hex = malloc(2 * n + 1);
    if (!hex)
        return -1;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
    int rc = json_object_set_new(o, hk, json_string(hex));
    free(hex);
    return rc;
}

static char *get_path(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s)
        return strdup(s);
    char hk[32];
    snprintf(hk, sizeof(hk), "%s_hex", key);
    const char *hex = json_string_value(json_object_get(o, hk));
    if (!hex)
        return strdup("");
    size_t n = strlen(hex) / 2;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            v = '?';
        out[i] = (char)v;
    }
    out[n] = '\0';
    return out;
}

static uint64_t get_u64(json_t *o, const char *key, int *ok)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        *ok = 0;
        return 0;
    }
    /* Stored as the two's-complement int64 of the value: round-trips all of uint64. */
    return (uint64_t)json_integer_value(v);
}

/* A 64-bit value stored as 16 hex digits under key; 0 when absent. -1 if malformed. */
static int get_hex(json_t *o, const char *key, uint64_t *out)
{
    *out = 0;
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    return s && sscanf(s, "%" SCNx64, out) == 1 ? 0 : -1;
}

int lh_ckpt_load(const char *file, struct lh_ckpt_entry **out, size_t *n, struct lh_err *err)
{
    return lh_ckpt_load_seq(file, out, n, NULL, err);
}

int lh_ckpt_load_seq(const char *file, struct lh_ckpt_entry **out, size_t *n,
                     uint64_t *batch_seq, struct lh_err *err)
{
    *out = NULL;
    *n = 0;
    if (batch_seq)
        *batch_seq = 0;
    json_error_t jerr;
    json_t *root = json_load_file(file, 0, &jerr);
    if (!root) {
        if (access(file, F_OK) != 0 && errno == ENOENT)
            return 0;
        return lh_err_set(err, LH_ECORRUPT, "checkpoint %s: line %d: %s", file, jerr.line,
                          jerr.text);
    }
    json_t *files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        json_decref(root);
        return lh_err_set(err, LH_ECORRUPT, "checkpoint %s: no \"files\" array", file);
    }
    json_t *bs = json_object_get(root, "batch_seq");
    if (bs && !json_is_integer(bs)) {
        json_decref(root);
        return lh_err_set(err, LH_ECORRUPT, "checkpoint %s: bad \"batch_seq\"", file);
    }
    if (batch_seq && bs)
        *batch_seq = (uint64_t)json_integer_value(bs);
    size_t cnt = json_array_size(files);
    struct lh_ckpt_entry *v = calloc(cnt ? cnt : 1, sizeof(*v));
    if (!v) {
        json_decref(root);
        return lh_err_set(err, LH_ENOMEM, "checkpoint %s: out of memory", file);
    }
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        json_t *o = json_array_get(files, i);
        int ok = json_is_object(o);
        struct lh_ckpt_entry *e = &v[k];
        if (ok) {
            e->dev = get_u64(o, "dev", &ok);
            e->ino = get_u64(o, "ino", &ok);
            e->offset = get_u64(o, "offset", &ok);
            e->size = get_u64(o, "size", &ok);
            e->fp_len = (uint32_t)get_u64(o, "fp_len", &ok);
            const char *fp = json_string_value(json_object_get(o, "fp"));
            if (!fp || sscanf(fp, "%" SCNx64, &e->fp) != 1 || get_hex(o, "key", &e->key) < 0)
                ok = 0;
        }
        if (!ok) {
            rc = lh_err_set(err, LH_ECORRUPT, "checkpoint %s: entry %zu is malformed", file, i);
            break;
        }
        e->path = get_path(o, "path");
        e->real = get_path(o, "real");
        k++;
        if (!e->path || !e->real) {
            rc = lh_err_set(err, LH_ENOMEM, "checkpoint %s: out of memory", file);
            break;
        }
    }
    json_decref(root);
    if (rc < 0) {
        lh_ckpt_free(v, k);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int lh_ckpt_save(const char *file, const struct lh_ckpt_entry *v, size_t n, struct lh_err *err)
{
    return lh_ckpt_save_seq(file, v, n, 0, err);
}

int lh_ckpt_save_seq(const char *file, const struct lh_ckpt_entry *v, size_t n,
                     uint64_t batch_seq, struct lh_err *err)
{
    json_t *root = json_object(), *files = json_array();
    int rc = LH_ENOMEM;
    char *text = NULL;
    struct lh_buf tmp = LH_BUF_INIT;
    int fd = -1;

    if (!root || !files)
        goto out;
    if (json_object_set_new(root, "version", json_integer(1)) < 0 ||
        (batch_seq && json_object_set_new(root, "batch_seq",
                                           json_integer((json_int_t)batch_seq)) < 0) ||
        json_object_set(root, "files", files) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct lh_ckpt_entry *e = &v[i];
        json_t *o = json_object();
        char fp[24], key[24];
        snprintf(fp, sizeof(fp), "%016" PRIx64, e->fp);
        snprintf(key, sizeof(key), "%016" PRIx64, e->key);
        if (!o || json_array_append_new(files, o) < 0 ||
            (e->key && json_object_set_new(o, "key", json_string(key)) < 0) ||
            json_object_set_new(o, "dev", json_integer((json_int_t)e->dev)) < 0 ||
            json_object_set_new(o, "ino", json_integer((json_int_t)e->ino)) < 0 ||
            json_object_set_new(o, "fp", json_string(fp)) < 0 ||
            json_object_set_new(o, "fp_len", json_integer(e->fp_len)) < 0 ||
            json_object_set_new(o, "offset", json_integer((json_int_t)e->offset)) < 0 ||
            json_object_set_new(o, "size", json_integer((json_int_t)e->size)) < 0 ||
            put_path(o, "path", e->path) < 0 || put_path(o, "real", e->real) < 0)
            goto out;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (!text)
        goto out;
    if (lh_buf_printf(&tmp, "%s.tmp", file) < 0)
        goto out;
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "checkpoint open(%s)", tmp.data);
        goto out;
    }
    if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "checkpoint write(%s)", tmp.data);
        goto out;
    }
    if (fsync(fd) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "checkpoint fsync(%s)", tmp.data);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = lh_err_errno(err, LH_EIO, errno, "checkpoint close(%s)", tmp.data);
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, file) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "checkpoint rename(%s, %s)", tmp.data, file);
        goto out;
    }
    /* Make the rename itself durable. */
    char *dcopy = strdup(file);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    }
    rc = 0;
out:
    if (rc == LH_ENOMEM)
        lh_err_set(err, LH_ENOMEM, "checkpoint %s: out of memory", file);
    if (fd >= 0) {
        close(fd);
        unlink(tmp.data);
    } else if (rc < 0 && tmp.data) {
        unlink(tmp.data);
    }
    lh_buf_free(&tmp);
    free(text);
    json_decref(files);
    json_decref(root);
    return rc;
}
