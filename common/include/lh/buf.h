/* buf.h - a growable byte buffer, always NUL-terminated past len.
 * The buffer owns data; lh_buf_free releases it. A failed append leaves the
 * buffer as it was (valid, unchanged) and returns LH_ENOMEM. */
#ifndef LH_BUF_H
#define LH_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct lh_buf {
    char *data;   /* NULL until the first append */
    size_t len;
    size_t cap;
};

#define LH_BUF_INIT { NULL, 0, 0 }

int lh_buf_reserve(struct lh_buf *b, size_t extra);
int lh_buf_append(struct lh_buf *b, const void *p, size_t n);
int lh_buf_puts(struct lh_buf *b, const char *s);
int lh_buf_putc(struct lh_buf *b, char c);
int lh_buf_printf(struct lh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lh_buf_vprintf(struct lh_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. Invalid UTF-8 bytes
 * become U+FFFD so the output is always valid JSON. */
int lh_buf_json_str(struct lh_buf *b, const char *s, size_t n);
/* Detaches the data (caller frees it) and resets b. Never NULL on success. */
char *lh_buf_steal(struct lh_buf *b);
void lh_buf_reset(struct lh_buf *b);   /* len = 0, keeps memory */
void lh_buf_free(struct lh_buf *b);

#endif
