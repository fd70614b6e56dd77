/* digest.c - SHA-256 with the algorithm fetched once (see lh/digest.h). */
#include "lh/digest.h"

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* Fetched once and kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void lh_sha256(const void *data, size_t len, uint8_t out[LH_SHA256_BYTES])
{
    unsigned int n = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || !EVP_Digest(data, len, out, &n, sha256_md, NULL))
        SHA256(data, len, out);   /* the fetch failed: the slow path still answers */
}
