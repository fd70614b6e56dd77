/* ledger.c - the indexer's store of delivery-ledger rows (see ledger.h). */
#include "ledger.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lh/buf.h"
#include "lh/http_client.h"
#include "lh/log.h"
#include "lh/time.h"

#define LEDGER_FILE_MAX (64ull << 20)

const struct lh_opt lh_iledger_opts[] = {
    { LH_OPT_ENUM, "type", "auto", offsetof(struct lh_iledger_config, type),
      "where ledger rows go: auto (the first store sink's dir, else the first opensearch "
      "sink's cluster), dir, opensearch or none", 0, NULL, 0, "auto|dir|opensearch|none" },
    { LH_OPT_STR, "dir", NULL, offsetof(struct lh_iledger_config, dir),
      "type dir: the directory (default <store dir>/.ledger)" },
    { LH_OPT_STR, "index", NULL, offsetof(struct lh_iledger_config, index),
      "type opensearch: the index (default <index_prefix>.ledger)" },
    { LH_OPT_DURATION, "retention", "8d", offsetof(struct lh_iledger_config, retention_ms),
      "type dir: ledger files not written for this long are removed (0: kept); keep it "
      "longer than the store's retention, or audits of old hours lose their rows" },
    { 0 }
};

struct lh_iledger {
    /* dir */
    char *dir;
    int fd;
    int64_t retention_ms;
    uint64_t good;               /* bytes of the current file known whole */
    /* opensearch */
    struct lh_http_client *hc;
    char **urls;
    size_t nurls, next_url;
    char *index;
    char *auth;                  /* Authorization header value or NULL */
    int index_ready;             /* the index exists with our mapping */
    char where[600];
    /* rows not committed: dir: lines; opensearch: bulk body */
    struct lh_buf rows;
    size_t n;
};

static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int lh_iledger_open_dir(const char *dir, struct lh_iledger **out, struct lh_err *err)
{
    if (mkdirs(dir) < 0)
        return lh_err_errno(err, LH_EIO, errno, "ledger: mkdir %s", dir);
    struct lh_iledger *l = calloc(1, sizeof(*l));
    if (!l || !(l->dir = strdup(dir))) {
        free(l);
        return lh_err_set(err, LH_ENOMEM, "ledger: out of memory");
    }
    l->fd = -1;
    snprintf(l->where, sizeof(l->where), "%s", dir);
    *out = l;
    return 0;
}

void lh_iledger_set_retention(struct lh_iledger *l, int64_t retention_ms)
{
    l->retention_ms = retention_ms;
}

/* Removes row files not written for retention_ms (never the open one). */
static void expire(struct lh_iledger *l)
{
    if (l->retention_ms <= 0)
        return;
    DIR *d = opendir(l->dir);
    if (!d)
        return;
    time_t cut = time(NULL) - (time_t)(l->retention_ms / 1000);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 7 || strcmp(de->d_name + n - 7, ".ndjson") != 0)
            continue;
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", l->dir, de->d_name);
        if (stat(p, &st) == 0 && st.st_mtime < cut && unlink(p) == 0)
            lh_info("ledger: %s expired (retention)", p);
    }
    closedir(d);
}

const char *lh_iledger_where(const struct lh_iledger *l)
{
    return l->where;
}

int lh_iledger_open_opensearch(const struct lh_sink_opensearch_config *os, const char *index,
                               struct lh_iledger **out, struct lh_err *err)
{
    if (!os->urls.n)
        return lh_err_set(err, LH_EINVAL, "ledger: opensearch: no urls");
    struct lh_iledger *l = calloc(1, sizeof(*l));
    if (!l)
        return lh_err_set(err, LH_ENOMEM, "ledger: out of memory");
    l->fd = -1;
    struct lh_http_client_config cc = {
        .connect_timeout_ms = os->connect_timeout_ms, .timeout_ms = os->timeout_ms,
        .ca_file = os->ca_file, .cert_file = os->cert_file, .key_file = os->key_file,
        .accept_gzip = 1 };
    int rc = lh_http_client_create(&cc, &l->hc, err);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->urls = calloc(os->urls.n, sizeof(*l->urls));
    l->index = strdup(index);
    int ok = l->urls && l->index;
    for (size_t i = 0; ok && i < os->urls.n; i++) {
        size_t n = strlen(os->urls.v[i]);
        while (n && os->urls.v[i][n - 1] == '/')
            n--;
        ok = (l->urls[i] = strndup(os->urls.v[i], n)) != NULL;
        l->nurls = i + 1;
    }
    if (ok && os->api_key) {
        struct lh_buf b = LH_BUF_INIT;
        ok = lh_buf_printf(&b, "ApiKey %s", os->api_key) == 0;
        l->auth = lh_buf_steal(&b);
    } else if (ok && os->username) {
        char raw[512], enc[700];
        int n = snprintf(raw, sizeof(raw), "%s:%s", os->username,
                         os->password ? os->password : "");
        if (n < 0 || (size_t)n >= sizeof(raw))
            n = (int)sizeof(raw) - 1;
        EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)raw, n);
        OPENSSL_cleanse(raw, sizeof(raw));
        struct lh_buf b = LH_BUF_INIT;
        ok = lh_buf_printf(&b, "Basic %s", enc) == 0;
        l->auth = lh_buf_steal(&b);
        ok = ok && l->auth;
    }
    if (!ok) {
        lh_iledger_close(l);
        return lh_err_set(err, LH_ENOMEM, "ledger: out of memory");
    }
    snprintf(l->where, sizeof(l->where), "opensearch index %s", index);
    *out = l;
    return 0;
}

void lh_iledger_close(struct lh_iledger *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    lh_http_client_destroy(l->hc);
    for (size_t i = 0; i < l->nurls; i++)
        free(l->urls[i]);
    free(l->urls);
    free(l->index);
    free(l->auth);
    free(l->dir);
    lh_buf_free(&l->rows);
    free(l);
}

int lh_iledger_add(struct lh_iledger *l, const char *id, const char *json, size_t len)
{
    size_t mark = l->rows.len;
    int rc = 0;
    if (l->hc) {
        rc |= lh_buf_puts(&l->rows, "{\"index\":{\"_id\":");
        rc |= lh_buf_json_str(&l->rows, id, strlen(id));
        rc |= lh_buf_puts(&l->rows, "}}\n");
    }
    rc |= lh_buf_append(&l->rows, json, len);
    rc |= lh_buf_putc(&l->rows, '\n');
    if (rc) {
        l->rows.len = mark;
        return LH_ENOMEM;
    }
    l->n++;
    return 0;
}

size_t lh_iledger_pending(const struct lh_iledger *l)
{
    return l->n;
}

void lh_iledger_discard(struct lh_iledger *l)
{
    lh_buf_reset(&l->rows);
    l->n = 0;
}

static int commit_dir(struct lh_iledger *l, struct lh_err *err)
{
    struct stat st;
    if (l->fd >= 0 && (l->good + l->rows.len > LEDGER_FILE_MAX ||
                       (fstat(l->fd, &st) == 0 && st.st_nlink == 0))) {
        /* full, or removed by another writer's retention while idle */
        close(l->fd);
        l->fd = -1;
    }
    if (l->fd < 0) {
        expire(l);
        char p[PATH_MAX];
        static unsigned seq;   /* several writers in one process (pipeline, archive sinks) */
        snprintf(p, sizeof(p), "%s/%lld-%d-%u.ndjson", l->dir, (long long)lh_time_now_ns(),
                 (int)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        l->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (l->fd < 0)
            return lh_err_errno(err, LH_EIO, errno, "ledger: open %s", p);
        l->good = 0;
        /* the new name must survive a crash */
        int dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    size_t off = 0;
    while (off < l->rows.len) {
        ssize_t w = write(l->fd, l->rows.data + off, l->rows.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            /* no torn line may stay for the next rows to be glued to */
            if (ftruncate(l->fd, (off_t)l->good) < 0) {
                close(l->fd);
                l->fd = -1;
            }
            return lh_err_errno(err, LH_EIO, e ? e : EIO, "ledger: write in %s", l->dir);
        }
        off += (size_t)w;
    }
    if (fdatasync(l->fd) < 0) {
        int e = errno;
        close(l->fd);   /* its state is unknown after a failed sync: start a new file */
        l->fd = -1;
        return lh_err_errno(err, LH_EIO, e, "ledger: fdatasync in %s", l->dir);
    }
    l->good += l->rows.len;
    return 0;
}

/* Creates the index (strings as keywords; idx kept, not indexed). */
static int create_index(struct lh_iledger *l, struct lh_err *err)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/%s", l->urls[l->next_url], l->index);
    static const char body[] =
        "{\"mappings\":{\"dynamic_templates\":[{\"strings\":{\"match_mapping_type\":"
        "\"string\",\"mapping\":{\"type\":\"keyword\",\"ignore_above\":4096}}}],"
        "\"properties\":{\"idx\":{\"type\":\"text\",\"index\":false},"
        "\"window\":{\"type\":\"long\"},\"at\":{\"type\":\"long\"}}}}";
    struct lh_http_header h[3] = { { "Content-Type", "application/json" },
                                   { l->auth ? "Authorization" : NULL, l->auth },
                                   { NULL, NULL } };
    struct lh_http_request req = { .method = "PUT", .url = url, .headers = h, .body = body,
                                   .body_len = sizeof(body) - 1 };
    struct lh_http_response resp = { 0 };
    int rc = lh_http_client_do(l->hc, &req, &resp, err);
    if (rc == 0 && resp.status != 200 &&
        !(resp.status == 400 && resp.body.data &&
          strstr(resp.body.data, "resource_already_exists_exception")))
        rc = lh_err_set(err, LH_EUNAVAIL, "ledger: PUT %s: HTTP %ld: %.200s", url, resp.status,
                        resp.body.data ? resp.body.data : "");
    else if (rc < 0)
        rc = LH_EUNAVAIL;
    lh_http_response_free(&resp);
    if (rc == 0)
        l->index_ready = 1;
    return rc;
}

static int commit_os(struct lh_iledger *l, struct lh_err *err)
{
    if (!l->index_ready) {
        int rc = create_index(l, err);
        if (rc < 0) {
            l->next_url = (l->next_url + 1) % l->nurls;
            return rc;
        }
    }
    char url[2048];
    snprintf(url, sizeof(url), "%s/%s/_bulk", l->urls[l->next_url], l->index);
    struct lh_http_header h[3] = { { "Content-Type", "application/x-ndjson" },
                                   { l->auth ? "Authorization" : NULL, l->auth },
                                   { NULL, NULL } };
    struct lh_http_request req = { .method = "POST", .url = url, .headers = h,
                                   .body = l->rows.data, .body_len = l->rows.len };
    struct lh_http_response resp = { 0 };
    int rc = lh_http_client_do(l->hc, &req, &resp, err);
    if (rc < 0) {
        l->next_url = (l->next_url + 1) % l->nurls;
        lh_http_response_free(&resp);
        return rc == LH_ETIMEDOUT ? LH_EUNAVAIL : rc;
    }
    const char *body = resp.body.data ? resp.body.data : "";
    if (resp.status != 200) {
        rc = lh_err_set(err, LH_EUNAVAIL, "ledger: POST %s: HTTP %ld: %.200s", url, resp.status,
                        body);
    } else if (strstr(body, "\"errors\":true")) {
        rc = lh_err_set(err, LH_EUNAVAIL, "ledger: bulk into %s refused items: %.300s",
                        l->index, body);
    }
    lh_http_response_free(&resp);
    return rc;
}

int lh_iledger_commit(struct lh_iledger *l, struct lh_err *err)
{
    if (l->n == 0)
        return 0;
    int rc = l->hc ? commit_os(l, err) : commit_dir(l, err);
    if (rc == 0)
        lh_iledger_discard(l);
    return rc;
}
