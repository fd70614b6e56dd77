/* buf.c - growable byte buffer (see lh/buf.h). */
#include "lh/buf.h"
#include "lh/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lh_buf_reserve(struct lh_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return LH_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return LH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int lh_buf_append(struct lh_buf *b, const void *p, size_t n)
{
    if (lh_buf_reserve(b, n) < 0)
        return LH_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int lh_buf_puts(struct lh_buf *b, const char *s) { return lh_buf_append(b, s, strlen(s)); }

int lh_buf_putc(struct lh_buf *b, char c) { return lh_buf_append(b, &c, 1); }

int lh_buf_vprintf(struct lh_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return LH_EINVAL;
    if ((size_t)n < sizeof(small))
        return lh_buf_append(b, small, (size_t)n);
    if (lh_buf_reserve(b, (size_t)n) < 0)
        return LH_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int lh_buf_printf(struct lh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = lh_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int lh_buf_json_str(struct lh_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    /* Worst case: every byte becomes \u00XX (6) or U+FFFD (3). */
    if (n > (SIZE_MAX - 2) / 6 || lh_buf_reserve(b, n * 6 + 2) < 0)
        return LH_ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        /* Fast path: copy 8 bytes at a time while none needs attention
         * (a control byte, '"', '\\' or a byte >= 0x80). */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
            uint64_t ctrl = (w - ones * 0x20) & ~w;               /* bytes < 0x20 */
            uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            uint64_t special = ctrl | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w;
            if (special & high)
                break;
            memcpy(o, u + i, 8);
            o += 8;
            i += 8;
        }
        if (i == n)
            break;
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"':  *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hex[c >> 4]; *o++ = hex[c & 15];
            }
            i++;
            continue;
        }
        size_t l = utf8_len(u + i, n - i);
        if (l == 0) {
            *o++ = (char)0xEF; *o++ = (char)0xBF; *o++ = (char)0xBD;
            i++;
        } else {
            memcpy(o, u + i, l);
            o += l;
            i += l;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

char *lh_buf_steal(struct lh_buf *b)
{
    if (!b->data) {
        if (lh_buf_reserve(b, 0) < 0)
            return NULL;
        b->data[0] = '\0';
    }
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void lh_buf_reset(struct lh_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void lh_buf_free(struct lh_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
