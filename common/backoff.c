/* backoff.c - exponential backoff with full jitter (see lh/backoff.h). */
#include "lh/backoff.h"
#include "lh/time.h"

#include <sys/random.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void lh_backoff_init(struct lh_backoff *b, uint32_t base_ms, uint32_t cap_ms)
{
    b->base_ms = base_ms;
    b->cap_ms = cap_ms;
    b->attempt = 0;
    if (getrandom(&b->rng, sizeof(b->rng), GRND_NONBLOCK) != (ssize_t)sizeof(b->rng)) {
        uint64_t s = (uint64_t)lh_time_mono_ns() ^ (uint64_t)(uintptr_t)b;
        b->rng = splitmix64(&s);
    }
}

uint32_t lh_backoff_ceiling_ms(const struct lh_backoff *b)
{
    /* base < 2^32, so base * 2^32 already exceeds any cap. */
    if (b->attempt >= 32)
        return b->base_ms ? b->cap_ms : 0;
    uint64_t c = (uint64_t)b->base_ms << b->attempt;
    return c < b->cap_ms ? (uint32_t)c : b->cap_ms;
}

uint32_t lh_backoff_next_ms(struct lh_backoff *b)
{
    uint64_t range = (uint64_t)lh_backoff_ceiling_ms(b) + 1;
    if (b->attempt < UINT32_MAX)
        b->attempt++;
    /* Multiply-shift maps 64 random bits onto [0, range) (bias < 2^-31). */
    return (uint32_t)(((unsigned __int128)splitmix64(&b->rng) * range) >> 64);
}

void lh_backoff_reset(struct lh_backoff *b) { b->attempt = 0; }

int lh_backoff_parse_retry_after(const char *s, size_t n, int64_t now_ns, uint64_t *out_ms,
                                 struct lh_err *err)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0)
        return lh_err_set(err, LH_EINVAL, "Retry-After: empty");
    if (s[0] >= '0' && s[0] <= '9') {
        const uint64_t max_s = UINT64_MAX / 1000;
        uint64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return lh_err_set(err, LH_EINVAL, "Retry-After \"%.*s\": not a number of "
                                  "seconds", (int)(n > 48 ? 48 : n), s);
            secs = secs > max_s / 10 ? max_s : secs * 10 + (uint64_t)(s[i] - '0');
        }
        *out_ms = (secs > max_s ? max_s : secs) * 1000;
        return 0;
    }
    int64_t at;
    int rc = lh_time_parse_http_date(s, n, &at, err);
    if (rc < 0)
        return lh_err_wrap(err, "Retry-After");
    *out_ms = at > now_ns ? (uint64_t)(at - now_ns + LH_NS_PER_MS - 1) / LH_NS_PER_MS : 0;
    return 0;
}

uint64_t lh_backoff_next_retry_ms(struct lh_backoff *b, const char *s, size_t n,
                                  int64_t now_ns)
{
    uint64_t jittered = lh_backoff_next_ms(b), server;
    if (s && lh_backoff_parse_retry_after(s, n, now_ns, &server, NULL) == 0 &&
        server > jittered)
        return server;
    return jittered;
}
