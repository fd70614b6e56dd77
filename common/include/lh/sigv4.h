/* sigv4.h - AWS Signature Version 4 (HMAC-SHA256) for S3 and other AWS APIs.
 *
 * The caller describes a request (method, unencoded path and query, the
 * headers to sign, the payload's SHA-256) and gets the Authorization header
 * value. Canonicalisation follows the AWS documentation:
 *   - the path is URI-encoded once, per segment ('/' kept), as S3 expects
 *     (no "." / ".." normalisation, no double encoding);
 *   - query keys and values are URI-encoded, then sorted by key, then value;
 *   - header names are lower-cased and sorted; values are trimmed and inner
 *     runs of spaces collapsed; repeated names are joined with ',' in the
 *     order given.
 * The HTTP client must send exactly the encoded path and query that
 * lh_sigv4_encode_path / lh_sigv4_canonical_query produce, and the same
 * header values. Pure functions: any thread may call them. */
#ifndef LH_SIGV4_H
#define LH_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lh/buf.h"
#include "lh/err.h"

/* Hex SHA-256 of the empty string, the payload hash of bodiless requests. */
#define LH_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct lh_sigv4_pair {
    const char *name;    /* header name (any case) or query key (unencoded) */
    const char *value;   /* header value or query value (unencoded); NULL = "" */
};

struct lh_sigv4_request {
    const char *method;                   /* "GET", "PUT", ... */
    const char *path;                     /* unencoded, starting with '/' */
    const struct lh_sigv4_pair *query;    /* may be NULL when nquery is 0 */
    size_t nquery;
    const struct lh_sigv4_pair *headers;  /* every header to sign: must include
                                             host and x-amz-date */
    size_t nheaders;
    const char *payload_sha256;           /* lower-case hex, or "UNSIGNED-PAYLOAD" */
};

struct lh_sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *region;                   /* "us-east-1" */
    const char *service;                  /* "s3" */
};

#define LH_SIGV4_DATE_SIZE 17             /* "20150830T123600Z" + NUL */

/* Formats t (UTC) as the x-amz-date value into out[LH_SIGV4_DATE_SIZE]. */
void lh_sigv4_amz_date(time_t t, char *out);

/* out[65] = lower-case hex SHA-256 of data[0..len). */
void lh_sigv4_sha256_hex(const void *data, size_t len, char *out);

/* Appends s[0..n) URI-encoded as SigV4 wants: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) kept, everything else %XX upper-case; '/' kept when
 * keep_slash is set. */
int lh_sigv4_uri_encode(struct lh_buf *out, const char *s, size_t n, int keep_slash);

/* Appends the encoded path (keep_slash) of req->path. */
int lh_sigv4_encode_path(struct lh_buf *out, const char *path);

/* Appends the canonical query string "k1=v1&k2=v2" (encoded and sorted):
 * also the query to send on the wire. */
int lh_sigv4_canonical_query(struct lh_buf *out, const struct lh_sigv4_pair *q, size_t n);

/* Appends the canonical request (the first step of signing; exposed for
 * tests and debugging of SignatureDoesNotMatch errors). */
int lh_sigv4_canonical_request(struct lh_buf *out, const struct lh_sigv4_request *req);

/* Signs req at amz_date ("YYYYMMDDTHHMMSSZ"): appends the Authorization
 * header value "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=..." to out. If sts is not NULL the string to sign is appended
 * to it. Returns 0, LH_EINVAL (bad date or missing field) or LH_ENOMEM. */
int lh_sigv4_sign(const struct lh_sigv4_request *req, const struct lh_sigv4_creds *creds,
                  const char *amz_date, struct lh_buf *out, struct lh_buf *sts,
                  struct lh_err *err);

#endif
