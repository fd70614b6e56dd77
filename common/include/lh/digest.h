/* digest.h - SHA-256 with the algorithm fetched once per process.
 *
 * OpenSSL 3's one-shot SHA256() and EVP_sha256() digests look the
 * algorithm up on every call, tens of microseconds on a cold cache: too
 * much on a query's path (query fingerprints, cursor tenant tags). Any
 * thread may call it. */
#ifndef LH_DIGEST_H
#define LH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define LH_SHA256_BYTES 32

void lh_sha256(const void *data, size_t len, uint8_t out[LH_SHA256_BYTES]);

#endif
