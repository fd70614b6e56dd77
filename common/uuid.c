/* uuid.c - UUID v4/v7 generation and text forms (see lh/uuid.h). */
#include "lh/uuid.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int random_bytes(void *p, size_t n, struct lh_err *err)
{
    unsigned char *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return lh_err_errno(err, LH_EIO, errno, "getrandom");
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void set_version(struct lh_uuid *u, int version)
{
    u->b[6] = (uint8_t)((u->b[6] & 0x0F) | (version << 4));
    u->b[8] = (uint8_t)((u->b[8] & 0x3F) | 0x80);     /* variant 10xx: RFC 9562 */
}

int lh_uuid_v4(struct lh_uuid *out, struct lh_err *err)
{
    struct lh_uuid u;
    int rc = random_bytes(u.b, sizeof(u.b), err);
    if (rc < 0)
        return rc;
    set_version(&u, 4);
    *out = u;
    return 0;
}

/* v7 layout: unix_ts_ms (48) | ver (4) | rand_a (12) | var (2) | rand_b (62).
 * rand_a:rand_b form one 74-bit number, kept as hi (12 bits) and lo (62). */
#define LO_BITS 62
#define LO_MASK ((UINT64_C(1) << LO_BITS) - 1)
#define HI_MASK UINT64_C(0xFFF)

static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t v7_ms, v7_hi, v7_lo;   /* the last id issued; under v7_lock */

int lh_uuid_v7(struct lh_uuid *out, struct lh_err *err)
{
    uint64_t r[2];
    int rc = random_bytes(r, sizeof(r), err);
    if (rc < 0)
        return rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t ms, hi, lo;

    pthread_mutex_lock(&v7_lock);
    if (now > v7_ms) {
        ms = now;
        hi = r[0] & HI_MASK;
        lo = r[1] & LO_MASK;
    } else {
        /* Same millisecond, or the clock stepped back: keep the last
         * timestamp and add a random step of 1..2^32 to the random part. */
        ms = v7_ms;
        hi = v7_hi;
        lo = v7_lo + 1 + ((r[0] >> 32) & 0xFFFFFFFF);
        if (lo > LO_MASK) {
            lo &= LO_MASK;
            if (++hi > HI_MASK) {            /* 2^74 ids in one ms: borrow the next ms */
                ms++;
                hi = (r[0] & HI_MASK) >> 1;
                lo = r[1] & LO_MASK;
            }
        }
    }
    v7_ms = ms;
    v7_hi = hi;
    v7_lo = lo;
    pthread_mutex_unlock(&v7_lock);

    struct lh_uuid u;
    for (int i = 0; i < 6; i++)
        u.b[i] = (uint8_t)(ms >> (40 - 8 * i));
    u.b[6] = (uint8_t)(hi >> 8);
    u.b[7] = (uint8_t)hi;
    for (int i = 0; i < 8; i++)
        u.b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    set_version(&u, 7);   /* the variant takes lo's 2 spare top bits */
    *out = u;
    return 0;
}

int lh_uuid_version(const struct lh_uuid *u) { return u->b[6] >> 4; }

uint64_t lh_uuid_v7_ms(const struct lh_uuid *u)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | u->b[i];
    return ms;
}

static const char hexdig[] = "0123456789abcdef";

char *lh_uuid_format(const struct lh_uuid *u, char *out)
{
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hexdig[u->b[i] >> 4];
        *p++ = hexdig[u->b[i] & 15];
    }
    *p = '\0';
    return out;
}

char *lh_uuid_format_hex(const struct lh_uuid *u, char *out)
{
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hexdig[u->b[i] >> 4];
        out[2 * i + 1] = hexdig[u->b[i] & 15];
    }
    out[32] = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int lh_uuid_parse(const char *s, size_t n, struct lh_uuid *out, struct lh_err *err)
{
    if (n != 36 && n != 32)
        return lh_err_set(err, LH_EINVAL, "uuid \"%.*s\": expected 36 characters "
                          "(8-4-4-4-12) or 32 hex digits, got %zu", (int)(n > 48 ? 48 : n),
                          s, n);
    struct lh_uuid u;
    size_t i = 0;
    for (int k = 0; k < 16; k++) {
        if (n == 36 && (k == 4 || k == 6 || k == 8 || k == 10)) {
            if (s[i] != '-')
                return lh_err_set(err, LH_EINVAL, "uuid \"%.*s\": expected '-' at offset %zu",
                                  (int)n, s, i);
            i++;
        }
        int h = hexval(s[i]), l = hexval(s[i + 1]);
        if (h < 0 || l < 0)
            return lh_err_set(err, LH_EINVAL, "uuid \"%.*s\": not a hex digit at offset %zu",
                              (int)n, s, h < 0 ? i : i + 1);
        u.b[k] = (uint8_t)(h << 4 | l);
        i += 2;
    }
    *out = u;
    return 0;
}

int lh_uuid_cmp(const struct lh_uuid *a, const struct lh_uuid *b)
{
    return memcmp(a->b, b->b, sizeof(a->b));
}
