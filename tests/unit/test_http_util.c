/* test_http_util.c - helpers shared by the HTTP unit tests (see http_test_util.h). */
#include "http_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#undef lh_error
#include "lh/log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

double ht_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ht_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int ht_leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* server thread */

static void *loop_main(void *arg)
{
    struct ht_server *ts = arg;
    uv_run(&ts->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    struct ht_server *ts = a->data;
    lh_http_server_shutdown(ts->srv, ts->drain_ms, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

int ht_start(struct ht_server *ts, struct lh_http_server_config *cfg,
             void (*setup)(struct lh_http_server *srv, void *arg), void *arg)
{
    memset(ts, 0, sizeof(*ts));
    ts->drain_ms = 5000;
    lh_log_set_level(LH_LOG_ERROR);  /* expected warnings stay out of the test output */
    struct lh_err err = { 0 };
    if (uv_loop_init(&ts->loop) != 0)
        return LH_ERR;
    char *saved = cfg->listen;
    if (!cfg->listen)
        cfg->listen = "127.0.0.1:0";
    int rc = lh_http_server_create(&ts->loop, cfg, &ts->srv, &err);
    cfg->listen = saved;
    if (rc) {
        fprintf(stderr, "    ht_start: %s\n", err.msg);
        uv_run(&ts->loop, UV_RUN_DEFAULT);
        uv_loop_close(&ts->loop);
        return rc;
    }
    ts->port = lh_http_server_port(ts->srv);
    if (setup)
        setup(ts->srv, arg);
    uv_async_init(&ts->loop, &ts->stop, on_stop);
    ts->stop.data = ts;
    if (pthread_create(&ts->thread, NULL, loop_main, ts) != 0)
        return LH_ERR;
    ts->started = 1;
    return 0;
}

void ht_begin_stop(struct ht_server *ts)
{
    if (ts->started && !ts->stopping) {
        ts->stopping = 1;
        uv_async_send(&ts->stop);
    }
}

int ht_stop(struct ht_server *ts)
{
    if (!ts->started)
        return -1;
    ht_begin_stop(ts);
    pthread_join(ts->thread, NULL);
    ts->started = 0;
    lh_http_server_destroy(ts->srv);
    uv_run(&ts->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&ts->loop);
    if (rc != 0)
        fprintf(stderr, "    ht_stop: uv_loop_close: %s\n", uv_strerror(rc));
    return rc;
}

/* ------------------------------------------------------------------ */
/* clients */

int ht_connect(struct ht_conn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 5, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

int ht_connect_tls(struct ht_conn *c, int port, const char *ca, const char *cert,
                   const char *key, int max_version)
{
    if (ht_connect(c, port) != 0)
        return -1;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return -1;
    if (max_version)
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
    if (ca) {
        if (SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
            return -1;
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (cert && (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1 ||
                 SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1))
        return -1;
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl)
        return -1;
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (ca)
        SSL_set1_host(c->ssl, "localhost");
    int r = SSL_connect(c->ssl);
    ERR_clear_error();
    return r == 1 ? 0 : -1;
}

int ht_send(struct ht_conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n;
        if (c->ssl)
            n = SSL_write(c->ssl, data + off, (int)(len - off));
        else
            n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (!c->ssl && n < 0 && errno == EINTR)
                continue;
            ERR_clear_error();
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

int ht_sends(struct ht_conn *c, const char *s) { return ht_send(c, s, strlen(s)); }

void ht_close(struct ht_conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    lh_buf_free(&c->in);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}

/* Reads more bytes into c->in: >0 read, 0 EOF, -1 error/timeout. */
static int fill(struct ht_conn *c)
{
    char buf[16384];
    ssize_t n;
    for (;;) {
        if (c->ssl) {
            n = SSL_read(c->ssl, buf, sizeof(buf));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, (int)n);
                ERR_clear_error();
                return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
            }
        } else {
            n = recv(c->fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -1;
            if (n == 0)
                return 0;
        }
        break;
    }
    if (lh_buf_append(&c->in, buf, (size_t)n) != 0)
        return -1;
    return (int)n;
}

static void consume(struct lh_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void ht_resp_free(struct ht_resp *r)
{
    lh_buf_free(&r->head);
    lh_buf_free(&r->body);
}

const char *ht_header(const struct ht_resp *r, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->head.data;
    while (p && (p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= n)
                len = n - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
    }
    return NULL;
}

int ht_read(struct ht_conn *c, struct ht_resp *r, int head_only)
{
    memset(r, 0, sizeof(*r));
    for (;;) {
        char *end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
        if (!end) {
            if (fill(c) <= 0)
                return -1;
            continue;
        }
        size_t hlen = (size_t)(end - c->in.data) + 4;
        int status = 0;
        if (sscanf(c->in.data, "HTTP/1.%*d %d", &status) != 1)
            return -1;
        if (status == 100) {   /* interim: skip */
            consume(&c->in, hlen);
            continue;
        }
        lh_buf_append(&r->head, c->in.data, hlen);
        consume(&c->in, hlen);
        r->status = status;
        break;
    }
    char v[64];
    size_t clen = 0;
    if (ht_header(r, "Content-Length", v, sizeof(v)))
        clen = (size_t)strtoull(v, NULL, 10);
    if (head_only)
        clen = 0;
    while (c->in.len < clen)
        if (fill(c) <= 0)
            return -1;
    lh_buf_append(&r->body, c->in.data ? c->in.data : "", clen);
    if (clen)
        consume(&c->in, clen);
    return r->status;
}

int ht_wait_closed(struct ht_conn *c, int timeout_ms)
{
    double deadline = ht_now() + timeout_ms / 1000.0;
    for (;;) {
        int left = (int)((deadline - ht_now()) * 1000);
        if (left <= 0)
            return 0;
        if (!c->ssl || SSL_pending(c->ssl) == 0) {
            struct pollfd p = { .fd = c->fd, .events = POLLIN };
            int n = poll(&p, 1, left);
            if (n == 0)
                return 0;
            if (n < 0 && errno != EINTR)
                return 1;
        }
        int f = fill(c);
        if (f <= 0)
            return 1;
    }
}

unsigned long long ht_open_connections_settled(struct ht_server *ts)
{
    struct lh_http_stats s;
    for (int i = 0; i < 100; i++) {   /* the server sees the last close soon */
        lh_http_server_stats(ts->srv, &s);
        if (s.connections_open == 0)
            break;
        ht_sleep_ms(10);
    }
    return (unsigned long long)s.connections_open;
}

int ht_request(int port, const char *raw, struct ht_resp *r)
{
    struct ht_conn c;
    if (ht_connect(&c, port) != 0)
        return -1;
    int st = -1;
    if (ht_sends(&c, raw) == 0)
        st = ht_read(&c, r, strncmp(raw, "HEAD ", 5) == 0);
    ht_close(&c);
    return st;
}

/* ------------------------------------------------------------------ */
/* certificates, made with the OpenSSL API (P-256 keys: fast) */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = PEM_write_X509(f, cert);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    f = fopen(path, "w");
    if (!f)
        return -1;
    ok = ok && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return ok ? 0 : -1;
}

static X509 *read_cert(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

int ht_issue_cert(const char *dir, const char *name, const char *org, const char *cn,
                  const char *ca, int kind)
{
    static long serial = 1000;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new(), *issuer = NULL;
    EVP_PKEY *ikey = NULL;
    int rc = -1;
    if (!key || !x)
        goto out;
    if (ca) {
        issuer = read_cert(dir, ca);
        ikey = read_key(dir, ca);
        if (!issuer || !ikey)
            goto out;
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++ + (long)getpid() * 100);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 2 * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    if (org)
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer ? issuer : x;
    if (add_ext(x, iss, NID_subject_key_identifier, "hash") != 0)
        goto out;
    if (kind == HT_CERT_CA) {
        if (add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
            add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign") != 0)
            goto out;
    } else {
        if (add_ext(x, iss, NID_authority_key_identifier, "keyid") != 0 ||
            add_ext(x, iss, NID_basic_constraints, "CA:FALSE") != 0)
            goto out;
        if (kind == HT_CERT_SERVER &&
            (add_ext(x, iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") != 0 ||
             add_ext(x, iss, NID_ext_key_usage, "serverAuth") != 0))
            goto out;
        if (kind == HT_CERT_CLIENT && add_ext(x, iss, NID_ext_key_usage, "clientAuth") != 0)
            goto out;
    }
    if (!X509_sign(x, ikey ? ikey : key, EVP_sha256()))
        goto out;
    rc = write_pem(dir, name, x, key);
out:
    if (rc != 0)
        fprintf(stderr, "    ht_issue_cert(%s) failed\n", name);
    ERR_clear_error();
    X509_free(x);
    X509_free(issuer);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
    return rc;
}

int ht_make_certs(const char *dir)
{
    if (ht_issue_cert(dir, "ca", NULL, "lh-test-ca", NULL, HT_CERT_CA) ||
        ht_issue_cert(dir, "other-ca", NULL, "lh-other-ca", NULL, HT_CERT_CA) ||
        ht_issue_cert(dir, "server", NULL, "localhost", "ca", HT_CERT_SERVER) ||
        ht_issue_cert(dir, "client", "loghaul", "agent-7", "ca", HT_CERT_CLIENT) ||
        ht_issue_cert(dir, "rogue", NULL, "agent-7", "other-ca", HT_CERT_CLIENT))
        return -1;
    return 0;
}
