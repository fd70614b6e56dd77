/* archive_impl.h - what archive.c shares with the archive backends
 * (archive_dir.c, archive_s3.c) and the object formats (parquet.c,
 * archive_ndjson.c). Private to common/ and the unit tests. */
#ifndef LH_ARCHIVE_IMPL_H
#define LH_ARCHIVE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "lh/archive.h"
#include "lh/event.h"

/* One backend: every slot is required. Each works on raw stored bytes
 * (encryption is done above, in archive.c). ctx is the backend's. */
struct lh_archive_ops {
    const char *name;
    int (*put)(void *ctx, const char *key, const void *data, size_t len, struct lh_err *err);
    int (*get)(void *ctx, const char *key, uint64_t offset, uint64_t len, struct lh_buf *out,
               struct lh_err *err);
    int (*head)(void *ctx, const char *key, uint64_t *size, struct lh_err *err);
    int (*list)(void *ctx, const char *prefix, struct lh_archive_list *out, struct lh_err *err);
    int (*del)(void *ctx, const char *key, struct lh_err *err);
    void (*destroy)(void *ctx);
};

extern const struct lh_archive_ops lh_archive_dir_ops;
extern const struct lh_archive_ops lh_archive_s3_ops;

/* Constructors: *ctx set only on success. cfg is borrowed (copied). */
int lh_archive_dir_create(void **ctx, const struct lh_archive_dir_config *cfg,
                          struct lh_err *err);
int lh_archive_s3_create(void **ctx, const struct lh_archive_s3_config *cfg,
                         struct lh_err *err);

/* Appends an item (copies key) to a list. */
int lh_archive_list_add(struct lh_archive_list *l, const char *key, size_t keylen,
                        uint64_t size);
/* Sorts a list by key (byte order, as S3 lists). */
void lh_archive_list_sort(struct lh_archive_list *l);

/* A key as both backends accept it: 1..1024 bytes, no leading '/', no empty,
 * "." or ".." segment, no segment starting with '.' (temporary files of the
 * directory backend), no control characters. */
int lh_archive_key_ok(const char *key);

/* ---- S3 helpers, exposed for the unit tests ---- */

/* Parses a ListObjectsV2 response: appends the Contents (Key, Size) to out,
 * sets *truncated and *next_token (malloc'd, or NULL). */
int lh_archive_s3_parse_list(const char *xml, size_t len, struct lh_archive_list *out,
                             int *truncated, char **next_token, struct lh_err *err);
/* The text of the first <tag>...</tag> in xml, entities decoded, malloc'd;
 * NULL when absent (or out of memory). */
char *lh_archive_xml_text(const char *xml, size_t len, const char *tag);

#endif
