/* json.h - a fast, strict, allocation-free JSON pull scanner for the hot path.
 *
 * The scanner walks a byte buffer (not necessarily NUL-terminated; nothing
 * outside buf[0..len) is ever read) and yields one token per call with its
 * byte span. It validates the whole document against RFC 8259 as it goes:
 * number grammar, no leading zeros, no trailing commas, escapes, raw control
 * characters in strings, UTF-8 (reject or repair), nesting depth, and
 * trailing data after the single top-level value (which may be any value).
 * It never allocates and never decodes: string spans are raw bytes between
 * the quotes; lh_json_unescape() and friends decode them when wanted.
 *
 *   struct lh_json js;
 *   struct lh_json_token t;
 *   lh_json_init(&js, buf, len, 0, LH_JSON_UTF8_REJECT);
 *   while ((rc = lh_json_next(&js, &t, err)) > 0) { ... }
 *   if (rc < 0) ... err->msg says what was expected at which byte ...
 *
 * A scanner is a plain struct owned by the caller (usually on the stack);
 * one thread uses it at a time. It borrows buf, which must outlive it and
 * every token taken from it. jansson remains the choice for configuration
 * and other cold paths that want a DOM. */
#ifndef LH_JSON_H
#define LH_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/buf.h"
#include "lh/err.h"

enum lh_json_type {
    LH_JSON_END = 0,        /* the document is complete (returned again on later calls) */
    LH_JSON_OBJECT,         /* '{' */
    LH_JSON_OBJECT_END,     /* '}' */
    LH_JSON_ARRAY,          /* '[' */
    LH_JSON_ARRAY_END,      /* ']' */
    LH_JSON_KEY,            /* an object member name; the ':' after it is consumed */
    LH_JSON_STRING,
    LH_JSON_NUMBER,
    LH_JSON_TRUE,
    LH_JSON_FALSE,
    LH_JSON_NULL,
};

/* What to do with bytes in strings that are not valid UTF-8 (overlong
 * forms, surrogates, truncated sequences, bytes above U+10FFFF). */
enum lh_json_utf8 {
    LH_JSON_UTF8_REJECT = 0,    /* error naming the byte offset */
    LH_JSON_UTF8_REPAIR,        /* accept; flag the token; unescape yields U+FFFD */
};

/* Token flags (struct lh_json_token.flags). */
#define LH_JSON_ESCAPED  (1u << 0)  /* string/key contains backslash escapes */
#define LH_JSON_BADUTF8  (1u << 1)  /* string/key contains invalid UTF-8 (REPAIR mode) */
#define LH_JSON_FLOAT    (1u << 2)  /* number has a fraction or an exponent */

#define LH_JSON_DEPTH_DEFAULT 64    /* max_depth 0 means this */
#define LH_JSON_DEPTH_LIMIT   1024  /* larger max_depth values are clamped to this */

struct lh_json_token {
    enum lh_json_type type;
    unsigned flags;         /* LH_JSON_ESCAPED | LH_JSON_BADUTF8 | LH_JSON_FLOAT */
    const char *p;          /* buf + off */
    size_t off;             /* offset of the span in buf */
    size_t len;             /* strings and keys: the bytes between the quotes;
                             * numbers and literals: the token; brackets: 1 */
};

struct lh_json {
    const char *buf;
    size_t len;
    size_t pos;             /* next byte to look at */
    unsigned depth;         /* open objects and arrays */
    unsigned max_depth;
    enum lh_json_utf8 utf8;
    int state;              /* what the grammar expects next (private) */
    size_t err_off;         /* byte offset of the first error, once there was one */
    uint64_t kind[LH_JSON_DEPTH_LIMIT / 64];  /* per level: 1 object, 0 array */
};

/* Prepares js to scan buf[0..len). max_depth: how many objects/arrays may
 * be open at once (0: LH_JSON_DEPTH_DEFAULT; clamped to LH_JSON_DEPTH_LIMIT). */
void lh_json_init(struct lh_json *js, const char *buf, size_t len, unsigned max_depth,
                  enum lh_json_utf8 utf8);

/* Reads the next token into *tok. Returns its type (> 0), LH_JSON_END (0)
 * once the top-level value is complete and only whitespace follows, or
 * LH_EINVAL with err set to "<what> at byte K, expected <what>" (or
 * "nesting deeper than N at byte K"); js->err_off holds K. After an error
 * every further call fails again. */
int lh_json_next(struct lh_json *js, struct lh_json_token *tok, struct lh_err *err);

/* Skips the next value whole (call it where a value is expected, e.g. right
 * after a KEY token), validating it like lh_json_next does. Returns 0, or
 * LH_EINVAL on a syntax error or when the next token does not start a value
 * (the scanner is then in the error state). */
int lh_json_skip(struct lh_json *js, struct lh_err *err);

/* A short name for a token type ("object", "string", "end"...). */
const char *lh_json_type_name(int type);

/* Decodes the JSON string content s[0..n) (a STRING or KEY span) and
 * appends it to out (NUL-terminated as lh_buf always is). Escapes are
 * resolved, \uXXXX surrogate pairs combined; a lone surrogate, \u0000 and
 * each invalid UTF-8 byte become U+FFFD, so the result is valid UTF-8
 * without NUL bytes. Returns 0, LH_ENOMEM (out unchanged), or LH_EINVAL for
 * a malformed escape (impossible for spans the scanner accepted). */
int lh_json_unescape(const char *s, size_t n, struct lh_buf *out, struct lh_err *err);

/* The same into memory from arena: *out gets a NUL-terminated string,
 * *outlen (may be NULL) its length. The arena owns the result. */
int lh_json_unescape_arena(const char *s, size_t n, struct lh_arena *a, char **out,
                           size_t *outlen, struct lh_err *err);

/* Copies a STRING or KEY token into arena: a plain copy when it has
 * neither escapes nor invalid UTF-8, else lh_json_unescape_arena. */
int lh_json_str_arena(const struct lh_json_token *tok, struct lh_arena *a, char **out,
                      size_t *outlen, struct lh_err *err);

/* The value of a NUMBER token without fraction or exponent, if it fits in
 * an int64_t; LH_EINVAL otherwise. */
int lh_json_int64(const struct lh_json_token *tok, int64_t *out, struct lh_err *err);

/* The value of a NUMBER token as a double (strtod rounding; +-HUGE_VAL when
 * out of range). LH_EINVAL when tok is not a number, LH_ENOMEM when a very
 * long number cannot be copied. */
int lh_json_double(const struct lh_json_token *tok, double *out, struct lh_err *err);

#endif
