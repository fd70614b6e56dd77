/* Unit tests for buf.c: growth, printf, and JSON string escaping checked
 * against a byte-at-a-time reference on random input. */
#include "../lh_test.h"
#include "lh/buf.h"

/* Reference escaper: RFC 8259 escapes, invalid UTF-8 bytes as U+FFFD. */
static void ref_json_str(const unsigned char *s, size_t n, struct lh_buf *out)
{
    lh_buf_putc(out, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            lh_buf_putc(out, '\\');
            lh_buf_putc(out, (char)c);
            i++;
        } else if (c == '\n') {
            lh_buf_puts(out, "\\n");
            i++;
        } else if (c == '\r') {
            lh_buf_puts(out, "\\r");
            i++;
        } else if (c == '\t') {
            lh_buf_puts(out, "\\t");
            i++;
        } else if (c < 0x20) {
            lh_buf_printf(out, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            lh_buf_putc(out, (char)c);
            i++;
        } else {
            size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            unsigned cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
            int ok = len && i + len <= n;
            for (size_t k = 1; ok && k < len; k++) {
                ok = (s[i + k] & 0xC0) == 0x80;
                cp = (cp << 6) | (s[i + k] & 0x3F);
            }
            if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                       (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
                       (cp >= 0xD800 && cp <= 0xDFFF)))
                ok = 0;
            if (ok) {
                lh_buf_append(out, s + i, len);
                i += len;
            } else {
                lh_buf_puts(out, "\xEF\xBF\xBD");
                i++;
            }
        }
    }
    lh_buf_putc(out, '"');
}

TEST(buf_json_str_matches_reference_on_random_input)
{
    static const unsigned char alphabet[] = "abcXYZ019 .,:{}[]\"\\\n\t\r\x01\x1f\x7f"
                                            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xc0\xed\xa0\x80";
    unsigned char s[300];
    struct lh_buf a = LH_BUF_INIT, b = LH_BUF_INIT;
    unsigned seed = 99;
    for (int iter = 0; iter < 50000; iter++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof(s));
        /* Mostly plain text, so the 8-byte path runs, with rare specials. */
        int plain = rand_r(&seed) % 2;
        for (size_t i = 0; i < n; i++)
            s[i] = plain && rand_r(&seed) % 16 ? (unsigned char)('a' + rand_r(&seed) % 26)
                                              : alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        lh_buf_reset(&a);
        lh_buf_reset(&b);
        REQUIRE(lh_buf_json_str(&a, (const char *)s, n) == 0);
        ref_json_str(s, n, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            lh_test_fail(__FILE__, __LINE__, "escaping differs for input of %zu bytes:\n%s\n%s",
                         n, a.data, b.data);
            break;
        }
    }
    lh_buf_free(&a);
    lh_buf_free(&b);
}

TEST(buf_growth_printf_steal)
{
    struct lh_buf b = LH_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        REQUIRE(lh_buf_printf(&b, "%d,", i) == 0);
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    CHECK_INT(b.data[b.len], ==, 0);
    size_t len = b.len;
    char *p = lh_buf_steal(&b);
    CHECK_INT(strlen(p), ==, len);
    CHECK(b.data == NULL && b.len == 0);
    free(p);
    struct lh_buf e = LH_BUF_INIT;
    char *q = lh_buf_steal(&e);
    REQUIRE(q);
    CHECK_STR(q, "");
    free(q);
}
