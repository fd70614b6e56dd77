/* store_util.c - small helpers of the store: checksums, hashing, varints,
 * tokens, days, tenant directory names, level names, id shapes. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

uint32_t lhs_crc(const void *p, size_t n)
{
    uint32_t c = 0;
    const unsigned char *q = p;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        c = crc32_iscsi((unsigned char *)q, chunk, c);
        q += chunk;
        n -= (size_t)chunk;
    }
    return c;
}

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* A fast 64-bit hash; its values are stored in bloom filters, so it must
 * never change for format version 1. */
uint64_t lhs_hash_seed(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *q = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xc2b2ae3d27d4eb4full) ^ seed;
    while (n >= 8) {
        uint64_t v = lhs_get64(q);
        h = rotl64(h ^ (v * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
        q += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t v = 0;
        memcpy(&v, q, n);
        h = rotl64(h ^ (v * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

uint64_t lhs_hash(const void *p, size_t n)
{
    return lhs_hash_seed(p, n, 0);
}

#define R8(b) b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
const unsigned char lhs_lower[256] = {
    R8(0), R8(8), R8(16), R8(24), R8(32), R8(40), R8(48), R8(56),
    64, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 91, 92, 93, 94, 95,
    R8(96), R8(104), R8(112), R8(120), R8(128), R8(136), R8(144), R8(152), R8(160), R8(168),
    R8(176), R8(184), R8(192), R8(200), R8(208), R8(216), R8(224), R8(232), R8(240), R8(248),
};
#define O8 1, 1, 1, 1, 1, 1, 1, 1
#define Z8 0, 0, 0, 0, 0, 0, 0, 0
const unsigned char lhs_tokch[256] = {
    Z8, Z8, Z8, Z8, Z8, Z8,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,             /* 48..63: digits */
    0, 1, 1, 1, 1, 1, 1, 1, O8, O8, 1, 1, 1, 0, 0, 0, 0, 0,     /* 64..95: A-Z */
    0, 1, 1, 1, 1, 1, 1, 1, O8, O8, 1, 1, 1, 0, 0, 0, 0, 0,     /* 96..127: a-z */
    O8, O8, O8, O8, O8, O8, O8, O8, O8, O8, O8, O8, O8, O8, O8, O8,
};

int lhs_buf_varint(struct lh_buf *b, uint64_t v)
{
    if (b->cap - b->len < 11 && lh_buf_reserve(b, 10) < 0)   /* 10 bytes + the NUL */
        return LH_ENOMEM;
    uint8_t *p = (uint8_t *)b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    *p = 0;
    b->len = (size_t)(p - (uint8_t *)b->data);
    return 0;
}

int lhs_buf_u32(struct lh_buf *b, uint32_t v)
{
    uint8_t t[4];
    lhs_put32(t, v);
    return lh_buf_append(b, t, 4);
}

int lhs_buf_u64(struct lh_buf *b, uint64_t v)
{
    uint8_t t[8];
    lhs_put64(t, v);
    return lh_buf_append(b, t, 8);
}

#define NS_PER_DAY 86400000000000ll

int64_t lhs_day_of(int64_t ts_ns)
{
    int64_t d = ts_ns / NS_PER_DAY;
    if (ts_ns % NS_PER_DAY < 0)
        d--;
    return d;
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
void lhs_day_str(int64_t day, char out[11])
{
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    snprintf(out, 11, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
}

int lhs_day_parse(const char *s, int64_t *day)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int64_t y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *day = era * 146097 + doe - 719468;
    char back[11];
    lhs_day_str(*day, back);
    return strcmp(back, s) == 0 ? 0 : -1;
}

void lhs_tenant_enc(const char *tenant, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)tenant; *p && o + 4 < outsz; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int lhs_tenant_dec(const char *name, char *out, size_t outsz)
{
    size_t o = 0;
    if (name[0] == '.' || name[0] == '\0')
        return -1;
    for (const char *p = name; *p; p++) {
        if (o + 1 >= outsz)
            return -1;
        if (*p == '%') {
            int a = hexval(p[1]), b = a < 0 ? -1 : hexval(p[2]);
            if (a < 0 || b < 0)
                return -1;
            out[o++] = (char)(a * 16 + b);
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return 0;
}

static const char *const level_names[LH_LEVEL_COUNT] = {
    "UNKNOWN", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL",
};

const char *lhs_level_name(int level)
{
    return level >= 0 && level < LH_LEVEL_COUNT ? level_names[level] : "UNKNOWN";
}

int lhs_level_parse(const char *s)
{
    for (int i = 0; i < LH_LEVEL_COUNT; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LH_LEVEL_WARN;
    if (strcasecmp(s, "err") == 0)
        return LH_LEVEL_ERROR;
    if (strcasecmp(s, "critical") == 0 || strcasecmp(s, "crit") == 0 ||
        strcasecmp(s, "panic") == 0)
        return LH_LEVEL_FATAL;
    return -1;
}

/* Lower-case hex digit values plus one; 0 for every other byte. */
static const uint8_t hex1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16,
};

int lhs_id_parse(const char *id, uint8_t uuid[16], uint32_t *index)
{
    const unsigned char *u = (const unsigned char *)id;
    for (int i = 0; i < 16; i++) {   /* a NUL is not a digit: stops before the end */
        unsigned hi = hex1[u[2 * i]], lo = hi ? hex1[u[2 * i + 1]] : 0;
        if (!hi || !lo)
            return -1;
        uuid[i] = (uint8_t)(((hi - 1) << 4) | (lo - 1));
    }
    if (id[32] != '-')
        return -1;
    const char *p = id + 33;
    if (*p == '\0' || (p[0] == '0' && p[1] != '\0'))
        return -1;
    uint64_t v = 0;
    int nd = 0;
    for (; *p; p++, nd++) {
        if (*p < '0' || *p > '9' || nd >= 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *index = (uint32_t)v;
    return 0;
}

/* Lower-cases the ASCII capitals among 8 bytes at once (bytes >= 0x80 and
 * everything else unchanged), as lhs_lower does byte by byte. */
static inline uint64_t lower8(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = v & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A');       /* high bit: byte >= 'A' */
    uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);   /* high bit: byte > 'Z' */
    uint64_t upper = ge_a & ~gt_z & ~v & high;
    return v | (upper >> 2);
}

/* lhs_hash of the lower-cased copy of s[0..n), without making the copy:
 * the same arithmetic as lhs_hash_seed with seed 0. */
static inline uint64_t hash_lower(const uint8_t *q, size_t n, const uint8_t *lim)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xc2b2ae3d27d4eb4full);
    while (n >= 8) {
        uint64_t v = lower8(lhs_get64(q));
        h = rotl64(h ^ (v * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
        q += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t v = 0;
        if (lim - q >= 8)   /* whole word readable: load it and keep n bytes */
            v = lhs_get64(q) & (~0ull >> (64 - 8 * n));
        else
            memcpy(&v, q, n);
        v = lower8(v);
        h = rotl64(h ^ (v * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

/* Bit k set when p[k] is a token byte (k < len <= 64). */
static inline uint64_t tok_mask(const uint8_t *p, size_t len)
{
    uint64_t m = 0;
    size_t k = 0;
#ifdef __SSE2__
    const __m128i d0 = _mm_set1_epi8('0' - 1), d1 = _mm_set1_epi8('9' + 1);
    const __m128i a0 = _mm_set1_epi8('a' - 1), a1 = _mm_set1_epi8('z' + 1);
    const __m128i bit5 = _mm_set1_epi8(0x20);
    for (; k + 16 <= len; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + k));
        __m128i y = _mm_or_si128(x, bit5);   /* ASCII letters to lower case */
        /* signed compares: bytes >= 0x80 are negative, caught by movemask(x) */
        __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(x, d0), _mm_cmplt_epi8(x, d1));
        __m128i let = _mm_and_si128(_mm_cmpgt_epi8(y, a0), _mm_cmplt_epi8(y, a1));
        unsigned bits = (unsigned)_mm_movemask_epi8(_mm_or_si128(dig, let)) |
                        (unsigned)_mm_movemask_epi8(x);
        m |= (uint64_t)bits << k;
    }
#endif
    for (; k < len; k++)
        m |= (uint64_t)lhs_tokch[p[k]] << k;
    return m;
}

#define TOK_BATCH 32

/* Token boundaries come from a bitmask of token bytes built 64 bytes at a
 * time (no branch per byte); hashes are inserted in batches, their table
 * slots prefetched, so the set's cache misses overlap. */
int lhs_tokenize_hash(const char *s, size_t n, struct lhs_hset *set)
{
    const uint8_t *u = (const uint8_t *)s, *lim = u + n;
    uint64_t hs[TOK_BATCH];
    size_t nh = 0, tok = 0;
    int in_tok = 0, rc;
    for (size_t base = 0; base < n; base += 64) {
        size_t len = n - base < 64 ? n - base : 64;
        uint64_t m = tok_mask(u + base, len);
        unsigned pos = 0;
        while (pos < len) {
            if (in_tok) {
                uint64_t z = ~m >> pos;   /* bits past len are 0 in m: a token ends there */
                if (len == 64 && z == 0)
                    break;                /* goes on in the next chunk */
                pos += (unsigned)__builtin_ctzll(z);
                if (pos > len)
                    pos = (unsigned)len;
                size_t end = base + pos;
                uint64_t h = hash_lower(u + tok, end - tok, lim);
                hs[nh++] = h;
                if (set->cap)
                    __builtin_prefetch(&set->v[(size_t)h & (set->cap - 1)]);
                if (nh == TOK_BATCH) {
                    if ((rc = lhs_hset_add_many(set, hs, nh)) < 0)
                        return rc;
                    nh = 0;
                }
                in_tok = 0;
            } else {
                uint64_t o = m >> pos;
                if (!o)
                    break;
                pos += (unsigned)__builtin_ctzll(o);
                tok = base + pos;
                in_tok = 1;
            }
        }
    }
    if (in_tok) {
        uint64_t h = hash_lower(u + tok, n - tok, lim);
        hs[nh++] = h;
        if (nh == TOK_BATCH) {
            if ((rc = lhs_hset_add_many(set, hs, nh)) < 0)
                return rc;
            nh = 0;
        }
    }
    return lhs_hset_add_many(set, hs, nh);
}

/* 1 if s[0..len) lower-cased equals the lower-case tok[0..len). */
static inline int ci_eq(const uint8_t *s, const uint8_t *tok, size_t len)
{
    for (size_t k = 0; k < len; k++)
        if (lhs_lower[s[k]] != tok[k])
            return 0;
    return 1;
}

static inline uint8_t ascii_upper(uint8_t c)
{
    return c >= 'a' && c <= 'z' ? (uint8_t)(c - 32) : c;
}

/* Candidates are positions whose first and last bytes match the token's in
 * either case, found 16 at a time; each is then compared whole. No
 * lower-cased copy of the text is made. */
const char *lhs_ci_find(const char *h, size_t n, const char *tok, size_t len)
{
    const uint8_t *u = (const uint8_t *)h, *t = (const uint8_t *)tok;
    if (len == 0 || len > n)
        return len == 0 ? h : NULL;
    size_t i = 0, last = n - len;   /* candidate starts are 0..last */
#ifdef __SSE2__
    const __m128i f_lo = _mm_set1_epi8((char)t[0]), f_up = _mm_set1_epi8((char)ascii_upper(t[0]));
    const __m128i l_lo = _mm_set1_epi8((char)t[len - 1]);
    const __m128i l_up = _mm_set1_epi8((char)ascii_upper(t[len - 1]));
    for (; i + 16 <= last + 1; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(u + i + len - 1));
        __m128i fa = _mm_or_si128(_mm_cmpeq_epi8(a, f_lo), _mm_cmpeq_epi8(a, f_up));
        __m128i lb = _mm_or_si128(_mm_cmpeq_epi8(b, l_lo), _mm_cmpeq_epi8(b, l_up));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(fa, lb));
        while (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            if (ci_eq(u + i + k + 1, t + 1, len - 1))
                return h + i + k;
            m &= m - 1;
        }
    }
#endif
    for (; i <= last; i++)
        if (lhs_lower[u[i]] == t[0] && ci_eq(u + i + 1, t + 1, len - 1))
            return h + i;
    return NULL;
}

int lhs_tokenize(const char *s, size_t n, lhs_tok_fn fn, void *ctx)
{
    char small[256];
    char *big = NULL;
    size_t i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (i < n) {
        while (i < n && !lhs_tokch[u[i]])
            i++;
        size_t st = i;
        while (i < n && lhs_tokch[u[i]])
            i++;
        size_t len = i - st;
        if (len == 0)
            break;
        const char *t = s + st;
        size_t k = 0;
        while (k < len && !(u[st + k] >= 'A' && u[st + k] <= 'Z'))
            k++;
        if (k < len) {   /* has upper case: lower-case a copy */
            char *c = small;
            if (len > sizeof(small)) {
                char *nb = realloc(big, len);
                if (!nb) {
                    free(big);
                    return LH_ENOMEM;
                }
                big = c = nb;
            }
            memcpy(c, s + st, k);
            for (; k < len; k++)
                c[k] = (char)lhs_lower[u[st + k]];
            t = c;
        }
        int rc = fn(ctx, t, len);
        if (rc) {
            free(big);
            return rc;
        }
    }
    free(big);
    return 0;
}

int lhs_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int lhs_mkdirs(const char *path, struct lh_err *err)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(tmp))
        return lh_err_set(err, LH_EINVAL, "path too long: %s", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) == 0) {
                /* make the new entry durable in its parent */
                char parent[PATH_MAX];
                snprintf(parent, sizeof(parent), "%s", tmp);
                char *slash = strrchr(parent, '/');
                if (slash && slash != parent) {
                    *slash = '\0';
                    lhs_fsync_dir(parent);
                }
            } else if (errno != EEXIST) {
                return lh_err_errno(err, LH_EIO, errno, "mkdir(%s)", tmp);
            }
            tmp[i] = c;
        }
    }
    return 0;
}
