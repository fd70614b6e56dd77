/* tls.c - TLS 1.3 server contexts and peer identities (see lh/tls.h). */
#include "lh/tls.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

char *lh_tls_errors(char *buf, size_t n)
{
    size_t len = 0;
    unsigned long e;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        int w = snprintf(buf + len, n - len, "%s%s", len ? "; " : "", one);
        if (w < 0 || (size_t)w >= n - len) {
            len = n - 1;
            continue;   /* keep draining the queue */
        }
        len += (size_t)w;
    }
    if (len == 0)
        snprintf(buf, n, "unknown error");
    return buf;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;   /* no ALPN agreement: go on without */
}

int lh_tls_server_ctx_create(const struct lh_http_tls_config *tls, SSL_CTX **out,
                             struct lh_err *err)
{
    char why[512];
    if (!tls->cert_file || !tls->cert_file[0])
        return lh_err_set(err, LH_EINVAL, "tls: no certificate file");
    if (!tls->key_file || !tls->key_file[0])
        return lh_err_set(err, LH_EINVAL, "tls: certificate %s given without a key file",
                          tls->cert_file);
    if (tls->client_auth < LH_HTTP_CLIENT_AUTH_NONE ||
        tls->client_auth > LH_HTTP_CLIENT_AUTH_REQUIRE)
        return lh_err_set(err, LH_EINVAL, "tls: bad client_auth mode %d", tls->client_auth);
    if (tls->client_auth != LH_HTTP_CLIENT_AUTH_NONE &&
        (!tls->client_ca_file || !tls->client_ca_file[0]))
        return lh_err_set(err, LH_EINVAL, "tls: client_auth %s needs client_ca",
                          tls->client_auth == LH_HTTP_CLIENT_AUTH_REQUIRE ? "require"
                                                                          : "optional");
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return lh_err_set(err, LH_ENOMEM, "tls: SSL_CTX_new: %s",
                          lh_tls_errors(why, sizeof(why)));
    int rc = LH_EINVAL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        rc = lh_err_set(err, LH_ERR, "tls: cannot require TLS 1.3: %s",
                   lh_tls_errors(why, sizeof(why)));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1) {
        rc = lh_err_set(err, LH_EINVAL, "tls: certificate %s: %s", tls->cert_file,
                   lh_tls_errors(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1) {
        rc = lh_err_set(err, LH_EINVAL, "tls: private key %s: %s", tls->key_file,
                   lh_tls_errors(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        rc = lh_err_set(err, LH_EINVAL, "tls: key %s does not match certificate %s: %s",
                   tls->key_file, tls->cert_file, lh_tls_errors(why, sizeof(why)));
        goto fail;
    }
    if (tls->client_ca_file && tls->client_ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, tls->client_ca_file, NULL) != 1) {
            rc = lh_err_set(err, LH_EINVAL, "tls: client CA %s: %s", tls->client_ca_file,
                       lh_tls_errors(why, sizeof(why)));
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca_file);
        if (!names) {
            rc = lh_err_set(err, LH_EINVAL, "tls: client CA %s: no certificate names: %s",
                       tls->client_ca_file, lh_tls_errors(why, sizeof(why)));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);   /* takes ownership */
        int mode = SSL_VERIFY_NONE;
        if (tls->client_auth == LH_HTTP_CLIENT_AUTH_OPTIONAL)
            mode = SSL_VERIFY_PEER;
        else if (tls->client_auth == LH_HTTP_CLIENT_AUTH_REQUIRE)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
    }
    /* Needed for session resumption together with client verification. */
    static const unsigned char sid_ctx[] = "loghaul";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int lh_tls_peer_identity(SSL *ssl, char **cn, char **subject)
{
    *cn = NULL;
    *subject = NULL;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;
    X509_NAME *name = X509_get_subject_name(cert);
    if (!name)
        return 0;
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx >= 0) {
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        unsigned char *utf8 = NULL;
        int n = d ? ASN1_STRING_to_UTF8(&utf8, d) : -1;
        if (n >= 0 && !memchr(utf8, '\0', (size_t)n)) {
            *cn = strndup((const char *)utf8, (size_t)n);
            if (!*cn) {
                OPENSSL_free(utf8);
                return LH_ENOMEM;
            }
        }
        OPENSSL_free(utf8);
    }
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem) {
        if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) >= 0) {
            char *p = NULL;
            long n = BIO_get_mem_data(mem, &p);
            if (n >= 0 && p) {
                *subject = strndup(p, (size_t)n);
            }
        }
        BIO_free(mem);
    }
    ERR_clear_error();
    if (!*subject) {
        free(*cn);
        *cn = NULL;
        return LH_ENOMEM;
    }
    return 0;
}
