/* tls.h - OpenSSL helpers of the HTTP server: building a TLS 1.3 server
 * context from PEM files (with optional client-certificate verification)
 * and reading the verified peer identity of a connection.
 *
 * Threads: the functions are reentrant; an SSL_CTX may be shared by
 * threads, an SSL belongs to one thread at a time. OpenSSL reports
 * failures in a per-thread error queue, which these helpers empty.
 *
 * Note: openssl/lhash.h (pulled in by openssl/ssl.h) defines a macro named
 * lh_error, as lh/log.h does. A file that needs both includes this header
 * first, then `#undef lh_error`, then lh/log.h. */
#ifndef LH_TLS_H
#define LH_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "lh/err.h"
#include "lh/http.h"

/* A server context: TLS 1.3 minimum, cert chain + key (checked to match),
 * and with tls->client_ca_file, peer verification as tls->client_auth says.
 * ALPN selects "http/1.1". *out owned by the caller (SSL_CTX_free). */
int lh_tls_server_ctx_create(const struct lh_http_tls_config *tls, SSL_CTX **out,
                             struct lh_err *err);

/* After a completed handshake: when the peer sent a certificate that
 * verified, *cn gets its subject CN (NULL if it has none, or one with an
 * embedded NUL) and *subject its subject in RFC 2253 form; both malloc'd,
 * owned by the caller. Without a verified certificate both are NULL.
 * Returns 0 or LH_ENOMEM. */
int lh_tls_peer_identity(SSL *ssl, char **cn, char **subject);

/* Appends the OpenSSL error queue of this thread to buf ("; "-separated,
 * "unknown error" when empty) and clears the queue. Returns buf. */
char *lh_tls_errors(char *buf, size_t n);

#endif
