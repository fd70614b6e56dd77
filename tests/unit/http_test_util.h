/* http_test_util.h - helpers of the HTTP server/client/daemon unit tests:
 * a server running on its own loop thread, blocking raw-socket and TLS
 * clients that read one response at a time, test certificates, and an
 * explicit LeakSanitizer check (tests end with _exit, which skips it). */
#ifndef LH_HTTP_TEST_UTIL_H
#define LH_HTTP_TEST_UTIL_H

#include <pthread.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "lh/buf.h"
#include "lh/http.h"

struct ht_server {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct lh_http_server *srv;
    int port;
    int64_t drain_ms;        /* used by ht_begin_stop (default 5 s) */
    int started, stopping;
};

/* Creates a server on cfg->listen (127.0.0.1:0 when NULL), lets setup add
 * routes, and runs its loop on a new thread. Returns 0 or an LH_E code
 * (message on stderr). */
int ht_start(struct ht_server *ts, struct lh_http_server_config *cfg,
             void (*setup)(struct lh_http_server *srv, void *arg), void *arg);
/* Asks the loop thread to drain (lh_http_server_shutdown); returns at once. */
void ht_begin_stop(struct ht_server *ts);
/* Stops (if not yet), joins, destroys and closes the loop. Returns 0 when
 * the loop closed cleanly (no handle left behind). */
int ht_stop(struct ht_server *ts);

/* A blocking client connection (plain or TLS) with a read buffer. */
struct ht_conn {
    int fd;
    SSL *ssl;
    SSL_CTX *ctx;
    struct lh_buf in;
};

int ht_connect(struct ht_conn *c, int port);      /* 0 or -1; 5 s receive timeout */
/* TLS over a fresh connection. ca: CA to verify the server (NULL: no
 * check); cert/key: client certificate (NULL: none); max_version 0 or
 * TLS1_2_VERSION to cap the client. Returns 0 when the handshake completed. */
int ht_connect_tls(struct ht_conn *c, int port, const char *ca, const char *cert,
                   const char *key, int max_version);
int ht_send(struct ht_conn *c, const char *data, size_t len);
int ht_sends(struct ht_conn *c, const char *s);
void ht_close(struct ht_conn *c);

struct ht_resp {
    int status;
    struct lh_buf head;     /* status line + headers */
    struct lh_buf body;
};
/* Reads one response (no body for HEAD when head_only). Returns its status,
 * or -1 on EOF/timeout/error before a full response. */
int ht_read(struct ht_conn *c, struct ht_resp *r, int head_only);
void ht_resp_free(struct ht_resp *r);
/* The value of header name in r (case-insensitive), copied into buf. */
const char *ht_header(const struct ht_resp *r, const char *name, char *buf, size_t n);
/* 1 when the peer closes (EOF or reset) within timeout_ms, reading and
 * dropping whatever comes before; 0 when it stays open. */
int ht_wait_closed(struct ht_conn *c, int timeout_ms);

/* Open connections once the server saw them all close, or after 1 s. */
unsigned long long ht_open_connections_settled(struct ht_server *ts);

/* One request, one response on a new plain connection. */
int ht_request(int port, const char *raw, struct ht_resp *r);

/* Writes ca.pem/ca.key, server.pem/server.key (CN localhost, SAN
 * 127.0.0.1), client.pem/client.key (O loghaul, CN agent-7), other-ca.pem
 * and rogue.pem/rogue.key (CN agent-7, signed by other-ca) into dir, with
 * the OpenSSL API. 0 or -1. */
int ht_make_certs(const char *dir);
/* One certificate + P-256 key as dir/name.pem and dir/name.key, signed by
 * dir/ca.pem + dir/ca.key (ca NULL: self-signed). org may be NULL. */
enum { HT_CERT_CA, HT_CERT_SERVER, HT_CERT_CLIENT };
int ht_issue_cert(const char *dir, const char *name, const char *org, const char *cn,
                  const char *ca, int kind);

/* 0 when LeakSanitizer finds no leak now (always 0 without ASan). */
int ht_leak_check(void);

double ht_now(void);   /* monotonic seconds */
void ht_sleep_ms(int ms);

#endif
