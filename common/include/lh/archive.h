/* archive.h - long-term storage of log objects: a bucket of keyed blobs.
 *
 * One interface, two implementations chosen by configuration (`type`):
 *   dir (archive_dir.c)  a local directory laid out exactly like the bucket,
 *                        <dir>/<key>: the embedded default
 *   s3  (archive_s3.c)   any S3-compatible server over libcurl + SigV4
 *                        (path-style or virtual-host style, any region,
 *                        multipart above a threshold, SSE-S3, retries)
 * Nothing outside archive*.c knows which one is in use. The indexer writes
 * whole objects (lh_archive_put); queryd lists a time range's prefixes and
 * reads objects back (lh_archive_get, lh_archive_read_events).
 *
 * Object keys (lh_archive_key):
 *   <tenant>/year=YYYY/month=MM/day=DD/hour=HH/<region>_<host>_<uuid>.<ext>
 * ext is "parquet" or "ndjson.zst", with ".enc" appended when the object is
 * client-side encrypted (so Athena-style readers can skip what they cannot
 * read, and our reader knows to decrypt before parsing).
 *
 * Client-side encryption (optional, `encryption_key`: 32 bytes as 64 hex
 * digits or base64): put() of a key ending in ".enc" stores
 *   "LHAE" | version 1 | alg 1 (AES-256-GCM) | 0 0 | nonce (12 random bytes)
 *   | ciphertext | tag (16 bytes)
 * with the 20-byte header as additional authenticated data; get() of such a
 * key fetches the whole object, checks the tag (LH_ECORRUPT on any change)
 * and returns the asked range of the plaintext. head() and list() report
 * plaintext sizes for ".enc" keys (stored size - LH_ARCHIVE_ENC_OVERHEAD).
 * Keys without ".enc" are stored as given, whatever the configuration.
 * Server-side encryption (S3 `sse: AES256`) is independent of this.
 *
 * Semantics common to both backends:
 *   put     replaces the whole object atomically: readers see the old or the
 *           new bytes, never a part (dir: temp file, fsync, rename, fsync dir;
 *           S3: single PUT or a completed multipart upload)
 *   get     bytes [offset, offset+len) clipped to the object; len 0 = to the
 *           end; LH_ENOTFOUND when absent; LH_EINVAL when offset is past the
 *           end (offset == size is allowed only for an empty object)
 *   head    the size, or LH_ENOTFOUND
 *   list    every key starting with prefix (not only one "directory" level),
 *           sorted by key, with sizes
 *   delete  idempotent: deleting an absent key succeeds
 * Errors: LH_EINVAL (bad key or request), LH_ENOTFOUND, LH_EIO (local
 * file system), LH_EUNAVAIL (server unreachable or 5xx after the retries),
 * LH_ECORRUPT (decryption), LH_ERR (other server refusals, e.g. 403: the
 * message carries the S3 error code).
 *
 * Threads: an lh_archive handle is thread-safe; any thread may call any
 * operation concurrently (S3: each call uses its own curl easy handle;
 * connections, DNS and TLS sessions are shared under a lock). open/close
 * are not concurrent with anything else on the handle. */
#ifndef LH_ARCHIVE_H
#define LH_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/archive_format.h"
#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/event.h"

enum lh_archive_type { LH_ARCHIVE_DIR = 0, LH_ARCHIVE_S3 = 1 };
enum lh_archive_addressing { LH_S3_AUTO = 0, LH_S3_PATH = 1, LH_S3_VIRTUAL = 2 };

struct lh_archive_dir_config {
    char *path;               /* root directory ("./var/archive") */
    int fsync;                /* 0 only for tests/benchmarks: skips fsync */
};

struct lh_archive_s3_config {
    char *endpoint;           /* "http://127.0.0.1:9000"; empty: https://s3.<region>.amazonaws.com */
    char *bucket;
    char *region;             /* "us-east-1" */
    char *access_key;         /* empty: $AWS_ACCESS_KEY_ID */
    char *secret_key;         /* empty: $AWS_SECRET_ACCESS_KEY */
    char *session_token;      /* empty: $AWS_SESSION_TOKEN (may stay empty) */
    int addressing;           /* "auto|path|virtual": path: <endpoint>/<bucket>/<key>,
                                 virtual: <bucket>.<host>/<key>; auto: virtual on AWS
                                 (no endpoint set), path for a custom endpoint */
    int sse;                  /* 0 none, 1 AES256 ("none|AES256") */
    uint64_t multipart_threshold; /* objects above this use multipart upload */
    uint64_t part_size;       /* bytes per part (>= 5 MiB) */
    int64_t connect_timeout_ms;
    int64_t timeout_ms;       /* a whole request (one part for multipart) */
    int64_t retries;          /* attempts after the first, on 5xx, 429, timeouts */
    int64_t retry_base_ms;    /* first backoff ceiling; doubles per attempt */
    int64_t retry_max_ms;     /* backoff ceiling cap */
    char *ca_file;            /* extra CA bundle for a private endpoint */
    int tls_verify;           /* 0 only for tests against self-signed servers */
};

struct lh_archive_config {
    int type;                 /* enum lh_archive_type ("dir|s3") */
    int format;               /* enum lh_archive_format ("parquet|ndjson") */
    int64_t zstd_level;       /* compression level of new objects */
    char *encryption_key;     /* client-side AES-256-GCM key (hex or base64), or NULL */
    struct lh_archive_dir_config dir;
    struct lh_archive_s3_config s3;
};

/* The option table for the `archive:` section of a daemon's config. */
extern const struct lh_opt lh_archive_opts[];

struct lh_archive;

struct lh_archive_item {
    char *key;                /* owned by the list */
    uint64_t size;
};

struct lh_archive_list {
    struct lh_archive_item *items;
    size_t n;
    size_t cap;
};

/* Opens the configured backend (cfg is copied: it may be freed after).
 * Checks the configuration (missing bucket, bad key...) but does not touch
 * the network; the directory is created when missing. */
int lh_archive_open(struct lh_archive **out, const struct lh_archive_config *cfg,
                    struct lh_err *err);
void lh_archive_close(struct lh_archive *a);

/* "dir" or "s3". */
const char *lh_archive_backend(const struct lh_archive *a);
/* The configured object format, and whether new objects are encrypted. */
enum lh_archive_format lh_archive_object_format(const struct lh_archive *a);
int lh_archive_encrypts(const struct lh_archive *a);

int lh_archive_put(struct lh_archive *a, const char *key, const void *data, size_t len,
                   struct lh_err *err);
/* Appends the bytes to out. */
int lh_archive_get(struct lh_archive *a, const char *key, uint64_t offset, uint64_t len,
                   struct lh_buf *out, struct lh_err *err);
int lh_archive_head(struct lh_archive *a, const char *key, uint64_t *size, struct lh_err *err);
/* Fills out (zeroed or reused after lh_archive_list_free); the caller frees
 * it with lh_archive_list_free, also after a failure. */
int lh_archive_list(struct lh_archive *a, const char *prefix, struct lh_archive_list *out,
                    struct lh_err *err);
void lh_archive_list_free(struct lh_archive_list *l);
int lh_archive_delete(struct lh_archive *a, const char *key, struct lh_err *err);

/* Encodes events in the configured format and puts them under a new key
 * (lh_archive_key with this handle's format and encryption); the key is
 * written to key_out (LH_ARCHIVE_KEY_MAX bytes) when not NULL. ts_ns picks
 * the hour partition (usually the first event's time). */
int lh_archive_write_events(struct lh_archive *a, const char *tenant, int64_t ts_ns,
                            const char *region, const char *host, const struct lh_event *evs,
                            size_t n, char *key_out, struct lh_err *err);

/* Gets a whole object and decodes it by its key's extension; events and
 * strings are allocated from arena. */
int lh_archive_read_events(struct lh_archive *a, const char *key, struct lh_arena *arena,
                           struct lh_event **evs, size_t *n, struct lh_err *err);

/* The events of one object with a timestamp in [from, to] (ns, inclusive),
 * for searches of a time range. For plain Parquet objects only the footer
 * (a ranged GET of the tail) and the row groups whose timestamp statistics
 * overlap the range are fetched; NDJSON and encrypted objects are read
 * whole. Events are allocated from arena; *evs may be NULL when *n is 0. */
int lh_archive_read_events_range(struct lh_archive *a, const char *key, int64_t from,
                                 int64_t to, struct lh_arena *arena, struct lh_event **evs,
                                 size_t *n, struct lh_err *err);

/* ---- keys ---- */

#define LH_ARCHIVE_KEY_MAX 1024

/* Writes the object key for an object of tenant whose events start at ts_ns
 * (UTC hour partition), written by host in region:
 *   acme/year=2026/month=05/day=23/hour=08/eu-west-1_web-1_<uuid>.parquet[.enc]
 * uuid: 16 bytes, or NULL for a fresh time-ordered one (version 7, lh_uuid_v7:
 * the objects of one writer list in creation order). Characters
 * outside [A-Za-z0-9._-] in tenant, region and host become '-' (region also
 * has '_' replaced, so the name splits at its first '_'); empty ones become
 * "unknown". Returns 0, or LH_EINVAL when out_size is too small. */
int lh_archive_key(char *out, size_t out_size, const char *tenant, int64_t ts_ns,
                   const char *region, const char *host, const uint8_t *uuid,
                   enum lh_archive_format fmt, int encrypted);

/* The prefix of all keys of tenant in the hour containing ts_ns
 * ("acme/year=2026/month=05/day=23/hour=08/"): what queryd lists. */
int lh_archive_hour_prefix(char *out, size_t out_size, const char *tenant, int64_t ts_ns);

/* ---- client-side encryption ---- */

#define LH_ARCHIVE_ENC_HEADER 20
#define LH_ARCHIVE_ENC_TAG 16
#define LH_ARCHIVE_ENC_OVERHEAD (LH_ARCHIVE_ENC_HEADER + LH_ARCHIVE_ENC_TAG)

/* Parses a 32-byte key given as 64 hex digits or base64 (44 characters with
 * padding, or 43 without). Returns 0 or LH_EINVAL. */
int lh_archive_parse_key(const char *text, uint8_t key[32], struct lh_err *err);

/* Appends the sealed form of plain[0..len) to out (random nonce). */
int lh_archive_seal(const uint8_t key[32], const void *plain, size_t len, struct lh_buf *out,
                    struct lh_err *err);
/* Appends the plaintext of sealed[0..len) to out; LH_ECORRUPT when the
 * header is unknown or the tag does not verify (nothing is appended then). */
int lh_archive_unseal(const uint8_t key[32], const void *sealed, size_t len, struct lh_buf *out,
                      struct lh_err *err);

#endif
