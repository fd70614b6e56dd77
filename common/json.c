/* json.c - strict, allocation-free JSON pull scanner and string decoder (see lh/json.h).
 *
 * The hot loop is the scan over string contents: runs of bytes that need no
 * look (printable ASCII other than '"' and '\\') are skipped 32 bytes at a
 * time with SSE2 (baseline on x86_64) or 8 at a time with a portable SWAR
 * test; only escapes, non-ASCII bytes and the closing quote are looked at
 * one by one. Define LH_JSON_NO_SIMD to build the portable path only. */
#include "lh/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && !defined(LH_JSON_NO_SIMD)
#include <emmintrin.h>
#define JSON_SSE2 1
#endif

/* Errors are rare: keep them out of line so the hot paths stay small. */
#define COLD __attribute__((cold, noinline))
#define HOT_INLINE inline __attribute__((always_inline))

/* What the grammar expects next. */
enum {
    ST_VALUE,           /* a value: top level, after ':' or after ',' in an array */
    ST_VALUE_OR_AEND,   /* right after '[' */
    ST_KEY,             /* after ',' in an object */
    ST_KEY_OR_OEND,     /* right after '{' */
    ST_AFTER,           /* a value is complete: ',', a closing bracket or the end */
    ST_DONE,
    ST_ERROR,
};

/* ---- string content scanning ------------------------------------------ */

static inline int is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero iff one of the 8 bytes of w is not plain. Each term is an exact
 * "some byte matches" test (the positions may be off, the verdict is not). */
static inline uint64_t swar_special(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), s = w ^ (ONES * '\\');
    uint64_t zq = (q - ONES) & ~q;             /* a byte == '"' */
    uint64_t zs = (s - ONES) & ~s;             /* a byte == '\\' */
    uint64_t lo = (w - ONES * 0x20) | w;       /* a byte < 0x20 or >= 0x80 */
    return (zq | zs | lo) & HIGHS;
}

static inline const unsigned char *skip_plain_swar(const unsigned char *p,
                                                   const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (swar_special(w))
            break;
        p += 8;
    }
    while (p < end && is_plain(*p))
        p++;
    return p;
}

/* The first byte in [p, end) that is not plain, or end. */
static HOT_INLINE const unsigned char *skip_plain(const unsigned char *p,
                                                 const unsigned char *end)
{
#ifdef JSON_SSE2
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 32) {
        __m128i a = _mm_loadu_si128((const void *)p);
        __m128i b = _mm_loadu_si128((const void *)(p + 16));
        /* Signed compare: bytes < 0x20 and bytes >= 0x80 (negative) both hit. */
        __m128i ma = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(a, quote),
                                               _mm_cmpeq_epi8(a, bslash)),
                                  _mm_cmplt_epi8(a, space));
        __m128i mb = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, quote),
                                               _mm_cmpeq_epi8(b, bslash)),
                                  _mm_cmplt_epi8(b, space));
        unsigned m = (unsigned)_mm_movemask_epi8(ma) | ((unsigned)_mm_movemask_epi8(mb) << 16);
        if (m)
            return p + __builtin_ctz(m);
        p += 32;
    }
    if (end - p >= 16) {
        __m128i a = _mm_loadu_si128((const void *)p);
        __m128i ma = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(a, quote),
                                               _mm_cmpeq_epi8(a, bslash)),
                                  _mm_cmplt_epi8(a, space));
        unsigned m = (unsigned)_mm_movemask_epi8(ma);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    return skip_plain_swar(p, end);
}

/* Length (2..4) of the valid UTF-8 sequence starting with the non-ASCII
 * byte at p, or 0 when it is invalid or cut off by end. */
static inline size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[2] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- errors ------------------------------------------------------------ */

static int fail(struct lh_json *js, struct lh_err *err, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5))) COLD;

static int fail(struct lh_json *js, struct lh_err *err, size_t at, const char *fmt, ...)
{
    js->state = ST_ERROR;
    js->err_off = at;
    if (err) {
        char msg[sizeof(err->msg)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        lh_err_set(err, LH_EINVAL, "%s", msg);
    }
    return LH_EINVAL;
}

/* "unexpected 'x' at byte K, expected <expected>" */
static COLD int fail_expect(struct lh_json *js, struct lh_err *err, size_t at,
                            const char *expected)
{
    if (at >= js->len)
        return fail(js, err, at, "unexpected end of input at byte %zu, expected %s", at,
                    expected);
    unsigned char c = (unsigned char)js->buf[at];
    if (c > 0x20 && c < 0x7f)
        return fail(js, err, at, "unexpected '%c' at byte %zu, expected %s", c, at, expected);
    return fail(js, err, at, "unexpected byte 0x%02x at byte %zu, expected %s", c, at, expected);
}

/* ---- scalar tokens ----------------------------------------------------- */

/* The string whose opening quote is at pos; on success js->pos is past the
 * closing quote. */
static HOT_INLINE int scan_string(struct lh_json *js, size_t pos, struct lh_json_token *tok,
                                  struct lh_err *err)
{
    const unsigned char *base = (const unsigned char *)js->buf;
    const unsigned char *start = base + pos + 1, *end = base + js->len;
    const unsigned char *p = start;
    unsigned flags = 0;

    for (;;) {
        p = skip_plain(p, end);
        if (p >= end)
            return fail(js, err, js->len, "unexpected end of input at byte %zu in the string "
                        "starting at byte %zu, expected '\"'", js->len, pos);
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c == '\\') {
            flags |= LH_JSON_ESCAPED;
            if (end - p < 2)
                return fail_expect(js, err, js->len, "an escape character");
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u':
                for (int i = 2; i < 6; i++) {
                    if (p + i >= end || hexval(p[i]) < 0)
                        return fail_expect(js, err, (size_t)(p + i - base),
                                           "4 hex digits after \\u");
                }
                p += 6;
                continue;
            default:
                return fail_expect(js, err, (size_t)(p + 1 - base),
                                   "an escape character (one of \"\\/bfnrtu)");
            }
        }
        if (c < 0x20)
            return fail(js, err, (size_t)(p - base), "control character 0x%02x in a string "
                        "at byte %zu, expected it escaped", c, (size_t)(p - base));
        size_t l = utf8_seq(p, end);
        if (l) {
            p += l;
            continue;
        }
        if (js->utf8 == LH_JSON_UTF8_REJECT)
            return fail(js, err, (size_t)(p - base), "invalid UTF-8 byte 0x%02x in a string "
                        "at byte %zu", c, (size_t)(p - base));
        flags |= LH_JSON_BADUTF8;
        p++;
    }
    tok->flags = flags;
    tok->off = pos + 1;
    tok->p = (const char *)start;
    tok->len = (size_t)(p - start);
    js->pos = (size_t)(p - base) + 1;
    return 0;
}

static inline int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

static int scan_number(struct lh_json *js, size_t pos, struct lh_json_token *tok,
                       struct lh_err *err)
{
    const char *b = js->buf;
    size_t n = js->len, i = pos;
    unsigned flags = 0;

    if (b[i] == '-')
        i++;
    if (i < n && b[i] == '0') {
        i++;
        if (i < n && is_digit(b[i]))
            return fail(js, err, i - 1, "leading zero in a number at byte %zu", i - 1);
    } else if (i < n && is_digit(b[i])) {
        while (++i < n && is_digit(b[i]))
            ;
    } else {
        return fail_expect(js, err, i, "a digit");
    }
    if (i < n && b[i] == '.') {
        flags |= LH_JSON_FLOAT;
        if (++i >= n || !is_digit(b[i]))
            return fail_expect(js, err, i, "a digit after '.'");
        while (++i < n && is_digit(b[i]))
            ;
    }
    if (i < n && (b[i] | 0x20) == 'e') {
        flags |= LH_JSON_FLOAT;
        if (++i < n && (b[i] == '+' || b[i] == '-'))
            i++;
        if (i >= n || !is_digit(b[i]))
            return fail_expect(js, err, i, "a digit in the exponent");
        while (++i < n && is_digit(b[i]))
            ;
    }
    tok->flags = flags;
    tok->off = pos;
    tok->p = b + pos;
    tok->len = i - pos;
    js->pos = i;
    return 0;
}

static int scan_literal(struct lh_json *js, size_t pos, const char *word, size_t wl,
                        struct lh_json_token *tok, struct lh_err *err)
{
    for (size_t k = 1; k < wl; k++) {
        if (pos + k >= js->len || js->buf[pos + k] != word[k]) {
            char what[16];
            snprintf(what, sizeof(what), "'%s'", word);
            return fail_expect(js, err, pos + k, what);
        }
    }
    tok->flags = 0;
    tok->off = pos;
    tok->p = js->buf + pos;
    tok->len = wl;
    js->pos = pos + wl;
    return 0;
}

/* ---- the grammar ------------------------------------------------------- */

static inline size_t skip_ws(const char *b, size_t pos, size_t n)
{
    while (pos < n) {
        char c = b[pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            break;
        pos++;
    }
    return pos;
}

static inline int in_object(const struct lh_json *js)
{
    unsigned d = js->depth - 1;
    return (int)((js->kind[d >> 6] >> (d & 63)) & 1);
}

static int close_container(struct lh_json *js, struct lh_json_token *tok, size_t pos, int obj)
{
    js->depth--;
    js->state = ST_AFTER;
    js->pos = pos + 1;
    tok->type = obj ? LH_JSON_OBJECT_END : LH_JSON_ARRAY_END;
    tok->flags = 0;
    tok->off = pos;
    tok->p = js->buf + pos;
    tok->len = 1;
    return (int)tok->type;
}

static int scan_value(struct lh_json *js, size_t pos, struct lh_json_token *tok,
                      struct lh_err *err)
{
    int rc;
    if (pos >= js->len)
        return fail_expect(js, err, pos, "a value");
    char c = js->buf[pos];
    switch (c) {
    case '{':
    case '[': {
        if (js->depth >= js->max_depth)
            return fail(js, err, pos, "nesting deeper than %u at byte %zu", js->max_depth, pos);
        unsigned d = js->depth++;
        uint64_t bit = 1ULL << (d & 63);
        if (c == '{') {
            js->kind[d >> 6] |= bit;
            js->state = ST_KEY_OR_OEND;
            tok->type = LH_JSON_OBJECT;
        } else {
            js->kind[d >> 6] &= ~bit;
            js->state = ST_VALUE_OR_AEND;
            tok->type = LH_JSON_ARRAY;
        }
        tok->flags = 0;
        tok->off = pos;
        tok->p = js->buf + pos;
        tok->len = 1;
        js->pos = pos + 1;
        return (int)tok->type;
    }
    case '"':
        rc = scan_string(js, pos, tok, err);
        tok->type = LH_JSON_STRING;
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        rc = scan_number(js, pos, tok, err);
        tok->type = LH_JSON_NUMBER;
        break;
    case 't':
        rc = scan_literal(js, pos, "true", 4, tok, err);
        tok->type = LH_JSON_TRUE;
        break;
    case 'f':
        rc = scan_literal(js, pos, "false", 5, tok, err);
        tok->type = LH_JSON_FALSE;
        break;
    case 'n':
        rc = scan_literal(js, pos, "null", 4, tok, err);
        tok->type = LH_JSON_NULL;
        break;
    default:
        return fail_expect(js, err, pos, "a value");
    }
    if (rc < 0)
        return rc;
    js->state = ST_AFTER;
    return (int)tok->type;
}

void lh_json_init(struct lh_json *js, const char *buf, size_t len, unsigned max_depth,
                  enum lh_json_utf8 utf8)
{
    js->buf = buf;
    js->len = buf ? len : 0;
    js->pos = 0;
    js->depth = 0;
    if (max_depth == 0)
        max_depth = LH_JSON_DEPTH_DEFAULT;
    js->max_depth = max_depth > LH_JSON_DEPTH_LIMIT ? LH_JSON_DEPTH_LIMIT : max_depth;
    js->utf8 = utf8;
    js->state = ST_VALUE;
    js->err_off = 0;
    /* kind[] is written before it is read: no need to clear it. */
}

int lh_json_next(struct lh_json *js, struct lh_json_token *tok, struct lh_err *err)
{
    const char *b = js->buf;
    size_t n = js->len;
    size_t pos = skip_ws(b, js->pos, n);

    for (;;) {
        switch (js->state) {
        case ST_AFTER:
            if (js->depth == 0) {
                if (pos < n)
                    return fail_expect(js, err, pos, "end of input after the top-level value");
                js->state = ST_DONE;
                js->pos = pos;
                goto done;
            } else {
                int obj = in_object(js);
                if (pos < n) {
                    if (b[pos] == ',') {
                        pos = skip_ws(b, pos + 1, n);
                        js->state = obj ? ST_KEY : ST_VALUE;
                        continue;
                    }
                    if (b[pos] == (obj ? '}' : ']'))
                        return close_container(js, tok, pos, obj);
                }
                return fail_expect(js, err, pos, obj ? "',' or '}'" : "',' or ']'");
            }
        case ST_KEY_OR_OEND:
            if (pos < n && b[pos] == '}')
                return close_container(js, tok, pos, 1);
            /* fall through */
        case ST_KEY: {
            if (pos >= n || b[pos] != '"')
                return fail_expect(js, err, pos, js->state == ST_KEY ? "a string key"
                                                                     : "a string key or '}'");
            int rc = scan_string(js, pos, tok, err);
            if (rc < 0)
                return rc;
            pos = skip_ws(b, js->pos, n);
            if (pos >= n || b[pos] != ':')
                return fail_expect(js, err, pos, "':' after the key");
            js->pos = pos + 1;
            js->state = ST_VALUE;
            tok->type = LH_JSON_KEY;
            return LH_JSON_KEY;
        }
        case ST_VALUE_OR_AEND:
            if (pos < n && b[pos] == ']')
                return close_container(js, tok, pos, 0);
            /* fall through */
        case ST_VALUE:
            return scan_value(js, pos, tok, err);
        case ST_DONE:
            goto done;
        default:
            return lh_err_set(err, LH_EINVAL, "JSON scanning stopped at an error at byte %zu",
                              js->err_off);
        }
    }
done:
    tok->type = LH_JSON_END;
    tok->flags = 0;
    tok->off = js->pos;
    tok->p = b + js->pos;
    tok->len = 0;
    return LH_JSON_END;
}

int lh_json_skip(struct lh_json *js, struct lh_err *err)
{
    struct lh_json_token t;
    int rc = lh_json_next(js, &t, err);
    if (rc < 0)
        return rc;
    switch (rc) {
    case LH_JSON_OBJECT:
    case LH_JSON_ARRAY: {
        unsigned base = js->depth - 1;
        while (js->depth > base) {
            rc = lh_json_next(js, &t, err);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case LH_JSON_STRING: case LH_JSON_NUMBER: case LH_JSON_TRUE: case LH_JSON_FALSE:
    case LH_JSON_NULL:
        return 0;
    default:
        return fail(js, err, t.off, "no value to skip at byte %zu (found %s)", t.off,
                    lh_json_type_name(rc));
    }
}

const char *lh_json_type_name(int type)
{
    switch (type) {
    case LH_JSON_END:        return "end";
    case LH_JSON_OBJECT:     return "object";
    case LH_JSON_OBJECT_END: return "'}'";
    case LH_JSON_ARRAY:      return "array";
    case LH_JSON_ARRAY_END:  return "']'";
    case LH_JSON_KEY:        return "key";
    case LH_JSON_STRING:     return "string";
    case LH_JSON_NUMBER:     return "number";
    case LH_JSON_TRUE:       return "true";
    case LH_JSON_FALSE:      return "false";
    case LH_JSON_NULL:       return "null";
    default:                 return "?";
    }
}

/* ---- string decoding --------------------------------------------------- */

static inline unsigned char *put_utf8(unsigned char *w, uint32_t cp)
{
    if (cp < 0x80) {
        *w++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *w++ = (unsigned char)(0xC0 | (cp >> 6));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (unsigned char)(0xE0 | (cp >> 12));
        *w++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (unsigned char)(0xF0 | (cp >> 18));
        *w++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    return w;
}

/* 4 hex digits at p (p + 4 <= end checked by the caller) or -1. */
static inline long hex4(const unsigned char *p)
{
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (long)((a << 12) | (b << 8) | (c << 4) | d);
}

#define DEC_NOSPACE (-1)
#define DEC_BAD     (-2)

/* Decodes s[0..n) into o (cap bytes). Returns the length written, DEC_NOSPACE
 * when cap is too small or DEC_BAD for a malformed escape. The output never
 * exceeds 3 * n bytes (an invalid byte becomes the 3 bytes of U+FFFD; every
 * escape shrinks). */
static ptrdiff_t decode(const unsigned char *s, size_t n, unsigned char *o, size_t cap)
{
    const unsigned char *p = s, *end = s + n;
    unsigned char *w = o, *wend = o + cap;

    while (p < end) {
        const unsigned char *q = skip_plain(p, end);
        size_t run = (size_t)(q - p);
        if (run > (size_t)(wend - w))
            return DEC_NOSPACE;
        memcpy(w, p, run);
        w += run;
        p = q;
        if (p >= end)
            break;
        unsigned char c = *p;
        if (c == '\\') {
            if (end - p < 2)
                return DEC_BAD;
            unsigned char e;
            switch (p[1]) {
            case '"':  e = '"'; break;
            case '\\': e = '\\'; break;
            case '/':  e = '/'; break;
            case 'b':  e = '\b'; break;
            case 'f':  e = '\f'; break;
            case 'n':  e = '\n'; break;
            case 'r':  e = '\r'; break;
            case 't':  e = '\t'; break;
            case 'u': {
                if (end - p < 6)
                    return DEC_BAD;
                long cp = hex4(p + 2);
                if (cp < 0)
                    return DEC_BAD;
                p += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    long lo;
                    if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                        (lo = hex4(p + 2)) >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    } else {
                        cp = 0xFFFD;    /* high surrogate without its low half */
                    }
                } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                    cp = 0xFFFD;        /* lone low surrogate; NUL cannot live in a C string */
                }
                if (wend - w < 4)
                    return DEC_NOSPACE;
                w = put_utf8(w, (uint32_t)cp);
                continue;
            }
            default:
                return DEC_BAD;
            }
            if (w >= wend)
                return DEC_NOSPACE;
            *w++ = e;
            p += 2;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_seq(p, end) : 0;
        if (l) {
            if ((size_t)(wend - w) < l)
                return DEC_NOSPACE;
            memcpy(w, p, l);
            w += l;
            p += l;
        } else if (c == 0 || c >= 0x80) {
            /* Invalid UTF-8 (or a raw NUL in a span the scanner never saw). */
            if (wend - w < 3)
                return DEC_NOSPACE;
            w = put_utf8(w, 0xFFFD);
            p++;
        } else {
            /* A raw '"' or control byte: only in spans the scanner never saw. */
            if (w >= wend)
                return DEC_NOSPACE;
            *w++ = c;
            p++;
        }
    }
    return w - o;
}

int lh_json_unescape(const char *s, size_t n, struct lh_buf *out, struct lh_err *err)
{
    if (n > (SIZE_MAX - 1) / 3 || lh_buf_reserve(out, n * 3) < 0)
        return lh_err_set(err, LH_ENOMEM, "JSON string of %zu bytes: out of memory", n);
    ptrdiff_t r = decode((const unsigned char *)s, n, (unsigned char *)out->data + out->len,
                         n * 3);
    if (r < 0) {
        out->data[out->len] = '\0';
        return lh_err_set(err, LH_EINVAL, "malformed escape in JSON string");
    }
    out->len += (size_t)r;
    out->data[out->len] = '\0';
    return 0;
}

int lh_json_unescape_arena(const char *s, size_t n, struct lh_arena *a, char **out,
                           size_t *outlen, struct lh_err *err)
{
    /* First try with n bytes, which suffices unless there is invalid UTF-8. */
    size_t cap = n;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (cap > SIZE_MAX - 1)
            break;
        unsigned char *o = lh_arena_alloc(a, cap + 1);
        if (!o)
            break;
        ptrdiff_t r = decode((const unsigned char *)s, n, o, cap);
        if (r == DEC_BAD)
            return lh_err_set(err, LH_EINVAL, "malformed escape in JSON string");
        if (r >= 0) {
            o[r] = '\0';
            *out = (char *)o;
            if (outlen)
                *outlen = (size_t)r;
            return 0;
        }
        if (n > (SIZE_MAX - 1) / 3)
            break;
        cap = n * 3;
    }
    return lh_err_set(err, LH_ENOMEM, "JSON string of %zu bytes: out of memory", n);
}

int lh_json_str_arena(const struct lh_json_token *tok, struct lh_arena *a, char **out,
                      size_t *outlen, struct lh_err *err)
{
    if (tok->type != LH_JSON_STRING && tok->type != LH_JSON_KEY)
        return lh_err_set(err, LH_EINVAL, "expected a string, found %s",
                          lh_json_type_name((int)tok->type));
    if (tok->flags & (LH_JSON_ESCAPED | LH_JSON_BADUTF8))
        return lh_json_unescape_arena(tok->p, tok->len, a, out, outlen, err);
    char *s = lh_arena_strndup(a, tok->p, tok->len);
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "JSON string of %zu bytes: out of memory", tok->len);
    *out = s;
    if (outlen)
        *outlen = tok->len;
    return 0;
}

/* ---- numbers ----------------------------------------------------------- */

int lh_json_int64(const struct lh_json_token *tok, int64_t *out, struct lh_err *err)
{
    if (tok->type != LH_JSON_NUMBER || (tok->flags & LH_JSON_FLOAT) || tok->len == 0)
        return lh_err_set(err, LH_EINVAL, "expected an integer, found %s",
                          tok->type == LH_JSON_NUMBER ? "a fraction or exponent"
                                                      : lh_json_type_name((int)tok->type));
    const char *p = tok->p, *end = tok->p + tok->len;
    int neg = *p == '-';
    if (neg)
        p++;
    /* Accumulate negatively: INT64_MIN has no positive counterpart. */
    int64_t v = 0;
    for (; p < end; p++) {
        if (!is_digit(*p))
            return lh_err_set(err, LH_EINVAL, "malformed integer");
        int d = *p - '0';
        if (v < (INT64_MIN + d) / 10)
            return lh_err_set(err, LH_EINVAL, "integer %.*s out of range", (int)tok->len,
                              tok->p);
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return lh_err_set(err, LH_EINVAL, "integer %.*s out of range", (int)tok->len,
                              tok->p);
        v = -v;
    }
    *out = v;
    return 0;
}

int lh_json_double(const struct lh_json_token *tok, double *out, struct lh_err *err)
{
    if (tok->type != LH_JSON_NUMBER)
        return lh_err_set(err, LH_EINVAL, "expected a number, found %s",
                          lh_json_type_name((int)tok->type));
    /* strtod needs a terminated copy: the span is followed by arbitrary bytes. */
    char small[128], *copy = small;
    if (tok->len >= sizeof(small)) {
        copy = malloc(tok->len + 1);
        if (!copy)
            return lh_err_set(err, LH_ENOMEM, "number of %zu bytes: out of memory", tok->len);
    }
    memcpy(copy, tok->p, tok->len);
    copy[tok->len] = '\0';
    *out = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return 0;
}
