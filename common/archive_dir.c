/* archive_dir.c - the archive in a local directory, laid out exactly like
 * the bucket: object <key> is the file <root>/<key>.
 *
 * put writes <dir>/.tmp-<random>, fsyncs it, renames it over <dir>/<name>
 * and fsyncs <dir> (and every directory it had to create, in its parent),
 * so after a crash an object is either wholly there or not at all; a
 * leftover temporary file starts with '.', which keys never do, so list()
 * never shows it. delete removes directories left empty, as a bucket has
 * none. Every call works on its own file descriptors: thread-safe. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_impl.h"

struct dirctx {
    char *root;                /* no trailing '/' */
    int fsync;
};

static int fsync_dir(const char *path, struct lh_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lh_err_errno(err, LH_EIO, errno, "archive: open(%s)", path);
    int rc = 0;
    if (fsync(fd) < 0)
        rc = lh_err_errno(err, LH_EIO, errno, "archive: fsync(%s)", path);
    close(fd);
    return rc;
}

/* mkdir -p of path (root exists); new directories are made durable by
 * fsyncing their parents when sync is set. */
static int make_dirs(struct dirctx *d, char *path, struct lh_err *err)
{
    size_t rootlen = strlen(d->root);
    for (char *p = path + rootlen + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int made = mkdir(path, 0755) == 0;
        int e = errno;
        *p = '/';
        if (!made && e != EEXIST) {
            *p = '\0';
            lh_err_errno(err, e == ENOSPC ? LH_EFULL : LH_EIO, e, "archive: mkdir(%s)", path);
            *p = '/';
            return err ? err->code : LH_EIO;
        }
        if (made && d->fsync) {
            /* the parent now names the new directory: make that durable */
            char *slash = p - 1;
            while (*slash != '/')
                slash--;
            *slash = '\0';
            int rc = fsync_dir(path, err);
            *slash = '/';
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int full_path(const struct dirctx *d, const char *key, struct lh_buf *b)
{
    lh_buf_reset(b);
    if (lh_buf_puts(b, d->root) < 0 || lh_buf_putc(b, '/') < 0 || lh_buf_puts(b, key) < 0)
        return LH_ENOMEM;
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int dir_put(void *ctx, const char *key, const void *data, size_t len,
                   struct lh_err *err)
{
    struct dirctx *d = ctx;
    struct lh_buf path = LH_BUF_INIT, tmp = LH_BUF_INIT;
    int fd = -1, rc, e;
    uint8_t rnd[8];

    if (full_path(d, key, &path) < 0)
        goto nomem;
    char *slash = strrchr(path.data, '/');
    size_t dirlen = (size_t)(slash - path.data);
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    if (lh_buf_append(&tmp, path.data, dirlen) < 0 ||
        lh_buf_printf(&tmp, "/.tmp-%d-%02x%02x%02x%02x%02x%02x%02x%02x", (int)getpid(), rnd[0],
                      rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) < 0)
        goto nomem;
    /* a concurrent delete may remove an emptied directory between our mkdir
     * and open: then make it again */
    for (int attempt = 0;; attempt++) {
        if ((rc = make_dirs(d, path.data, err)) < 0)
            goto out;
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != ENOENT || attempt >= 10)
            break;
    }
    if (fd < 0) {
        e = errno;
        rc = lh_err_errno(err, e == ENOSPC ? LH_EFULL : LH_EIO, e, "archive: open(%s)",
                          tmp.data);
        goto out;
    }
    if (write_all(fd, data, len) < 0 || (d->fsync && fsync(fd) < 0)) {
        e = errno;
        rc = lh_err_errno(err, e == ENOSPC || e == EDQUOT ? LH_EFULL : LH_EIO, e,
                          "archive: write(%s)", tmp.data);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = lh_err_errno(err, LH_EIO, errno, "archive: close(%s)", tmp.data);
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, path.data) < 0) {
        rc = lh_err_errno(err, LH_EIO, errno, "archive: rename(%s)", path.data);
        goto out;
    }
    lh_buf_reset(&tmp);   /* renamed: nothing to clean up */
    if (d->fsync) {
        path.data[dirlen] = '\0';
        rc = fsync_dir(path.data, err);
        path.data[dirlen] = '/';
        if (rc < 0)
            goto out;
    }
    rc = 0;
    goto out;
nomem:
    rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && tmp.len)
        unlink(tmp.data);
    lh_buf_free(&path);
    lh_buf_free(&tmp);
    return rc;
}

static int dir_get(void *ctx, const char *key, uint64_t offset, uint64_t len, struct lh_buf *out,
                   struct lh_err *err)
{
    struct dirctx *d = ctx;
    struct lh_buf path = LH_BUF_INIT;
    struct stat st;
    int rc = 0, fd = -1;

    if (full_path(d, key, &path) < 0) {
        rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        goto out;
    }
    fd = open(path.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EISDIR;
        if (e == ENOENT || e == ENOTDIR || e == EISDIR)
            rc = lh_err_set(err, LH_ENOTFOUND, "archive: no object %.200s", key);
        else
            rc = lh_err_errno(err, LH_EIO, e, "archive: open(%s)", path.data);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (offset > size || (offset == size && size != 0)) {
        rc = lh_err_set(err, LH_EINVAL, "archive: %.200s: offset %llu past the end (%llu)", key,
                        (unsigned long long)offset, (unsigned long long)size);
        goto out;
    }
    uint64_t n = size - offset;
    if (len && len < n)
        n = len;
    if (n > SIZE_MAX / 2 || lh_buf_reserve(out, (size_t)n) < 0) {
        rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, out->data + out->len + got, (size_t)(n - got),
                          (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = lh_err_errno(err, LH_EIO, errno, "archive: read(%s)", path.data);
            goto out;
        }
        if (r == 0)
            break;   /* shrank meanwhile: cannot happen with rename-only updates */
        got += (size_t)r;
    }
    out->len += got;
    out->data[out->len] = '\0';
out:
    if (fd >= 0)
        close(fd);
    lh_buf_free(&path);
    return rc;
}

static int dir_head(void *ctx, const char *key, uint64_t *size, struct lh_err *err)
{
    struct dirctx *d = ctx;
    struct lh_buf path = LH_BUF_INIT;
    struct stat st;
    int rc = 0;
    if (full_path(d, key, &path) < 0)
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    if (stat(path.data, &st) < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            rc = lh_err_set(err, LH_ENOTFOUND, "archive: no object %.200s", key);
        else
            rc = lh_err_errno(err, LH_EIO, e, "archive: stat(%s)", path.data);
    } else if (!S_ISREG(st.st_mode)) {
        rc = lh_err_set(err, LH_ENOTFOUND, "archive: no object %.200s", key);
    } else {
        *size = (uint64_t)st.st_size;
    }
    lh_buf_free(&path);
    return rc;
}

/* Adds the objects under directory key prefix `dir` ("" or ending in '/')
 * whose keys start with prefix. */
static int walk(struct dirctx *d, struct lh_buf *dir, const char *prefix,
                struct lh_archive_list *out, struct lh_err *err, int depth)
{
    struct lh_buf path = LH_BUF_INIT;
    int rc = 0;
    if (depth > 64)
        return 0;
    if (lh_buf_puts(&path, d->root) < 0 || lh_buf_putc(&path, '/') < 0 ||
        lh_buf_append(&path, dir->data ? dir->data : "", dir->len) < 0) {
        lh_buf_free(&path);
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    }
    DIR *dp = opendir(path.data);
    if (!dp) {
        int e = errno;
        lh_buf_free(&path);
        if (e == ENOENT || e == ENOTDIR)
            return 0;
        return lh_err_errno(err, LH_EIO, e, "archive: opendir(%s)", path.data);
    }
    size_t plen = strlen(prefix), dlen = dir->len;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;   /* ".", "..", temporary files */
        dir->len = dlen;
        if (lh_buf_puts(dir, de->d_name) < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
            break;
        }
        struct stat st;
        size_t fl = path.len;
        if (lh_buf_puts(&path, de->d_name) < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
            break;
        }
        int ok = stat(path.data, &st) == 0;
        path.len = fl;
        path.data[fl] = '\0';
        if (!ok)
            continue;   /* deleted meanwhile */
        size_t kl = dir->len;
        size_t cmp = kl < plen ? kl : plen;
        if (S_ISDIR(st.st_mode)) {
            /* descend when "<key>/" can still match the prefix */
            if (lh_buf_putc(dir, '/') < 0) {
                rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
                break;
            }
            cmp = dir->len < plen ? dir->len : plen;
            if (memcmp(dir->data, prefix, cmp) == 0)
                rc = walk(d, dir, prefix, out, err, depth + 1);
        } else if (S_ISREG(st.st_mode) && kl >= plen && memcmp(dir->data, prefix, cmp) == 0) {
            if (lh_archive_list_add(out, dir->data, kl, (uint64_t)st.st_size) < 0)
                rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
        }
    }
    closedir(dp);
    dir->len = dlen;
    if (dir->data)
        dir->data[dlen] = '\0';
    lh_buf_free(&path);
    return rc;
}

static int dir_list(void *ctx, const char *prefix, struct lh_archive_list *out,
                    struct lh_err *err)
{
    struct dirctx *d = ctx;
    struct lh_buf dir = LH_BUF_INIT;
    const char *slash = strrchr(prefix, '/');
    size_t first = out->n;
    int rc = 0;
    /* start at the deepest directory the prefix names */
    if (slash && lh_buf_append(&dir, prefix, (size_t)(slash - prefix) + 1) < 0)
        rc = lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    if (rc == 0)
        rc = walk(d, &dir, prefix, out, err, 0);
    lh_buf_free(&dir);
    if (rc == 0) {
        struct lh_archive_list tail = { out->items + first, out->n - first, 0 };
        lh_archive_list_sort(&tail);
    }
    return rc;
}

static int dir_del(void *ctx, const char *key, struct lh_err *err)
{
    struct dirctx *d = ctx;
    struct lh_buf path = LH_BUF_INIT;
    int rc = 0;
    if (full_path(d, key, &path) < 0)
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    struct stat st;
    if (lstat(path.data, &st) == 0 && S_ISDIR(st.st_mode))
        goto out;   /* a "directory" is no object: nothing to delete */
    if (unlink(path.data) < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            rc = lh_err_errno(err, LH_EIO, errno, "archive: unlink(%s)", path.data);
        goto out;
    }
    /* make the removal durable, then drop directories left empty */
    size_t rootlen = strlen(d->root);
    char *slash = strrchr(path.data, '/');
    *slash = '\0';
    if (d->fsync && (rc = fsync_dir(path.data, err)) < 0)
        goto out;
    while (strlen(path.data) > rootlen) {
        if (rmdir(path.data) < 0)
            break;   /* not empty (or in use): stop */
        slash = strrchr(path.data, '/');
        *slash = '\0';
        if (d->fsync)
            fsync_dir(path.data, NULL);
    }
out:
    lh_buf_free(&path);
    return rc;
}

static void dir_destroy(void *ctx)
{
    struct dirctx *d = ctx;
    if (!d)
        return;
    free(d->root);
    free(d);
}

int lh_archive_dir_create(void **ctx, const struct lh_archive_dir_config *cfg,
                          struct lh_err *err)
{
    struct dirctx *d;
    struct stat st;
    if (!cfg->path || !*cfg->path)
        return lh_err_set(err, LH_EINVAL, "archive: dir.path is empty");
    d = calloc(1, sizeof(*d));
    if (!d || !(d->root = strdup(cfg->path))) {
        free(d);
        return lh_err_set(err, LH_ENOMEM, "archive: out of memory");
    }
    d->fsync = cfg->fsync;
    size_t n = strlen(d->root);
    while (n > 1 && d->root[n - 1] == '/')
        d->root[--n] = '\0';
    /* mkdir -p the root */
    for (char *p = d->root + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        int r = mkdir(d->root, 0755);
        int e = errno;
        *p = c;
        if (r < 0 && e != EEXIST) {
            int rc = lh_err_errno(err, LH_EIO, e, "archive: mkdir(%s)", d->root);
            dir_destroy(d);
            return rc;
        }
        if (!c)
            break;
    }
    if (stat(d->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int rc = lh_err_set(err, LH_EINVAL, "archive: %s is not a directory", d->root);
        dir_destroy(d);
        return rc;
    }
    *ctx = d;
    return 0;
}

const struct lh_archive_ops lh_archive_dir_ops = {
    .name = "dir",
    .put = dir_put,
    .get = dir_get,
    .head = dir_head,
    .list = dir_list,
    .del = dir_del,
    .destroy = dir_destroy,
};
