/* level.c - severity guessing for sampling (see level.h). */
#include "level.h"

#include <string.h>

static int is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

#define SUSPICIOUS (-1)

/* Words of interest, lower case; SUSPICIOUS marks failure hints. */
static const struct {
    const char *w;
    unsigned char len;
    int level;
} words[] = {
    { "trace", 5, LH_LEVEL_TRACE },     { "debug", 5, LH_LEVEL_DEBUG },
    { "info", 4, LH_LEVEL_INFO },       { "notice", 6, LH_LEVEL_INFO },
    { "warn", 4, LH_LEVEL_WARN },       { "warning", 7, LH_LEVEL_WARN },
    { "error", 5, LH_LEVEL_ERROR },     { "err", 3, LH_LEVEL_ERROR },
    { "severe", 6, LH_LEVEL_ERROR },    { "fatal", 5, LH_LEVEL_FATAL },
    { "crit", 4, LH_LEVEL_FATAL },      { "critical", 8, LH_LEVEL_FATAL },
    { "panic", 5, LH_LEVEL_FATAL },     { "emerg", 5, LH_LEVEL_FATAL },
    { "alert", 5, LH_LEVEL_FATAL },     { "exception", 9, SUSPICIOUS },
    { "traceback", 9, SUSPICIOUS },     { "fail", 4, SUSPICIOUS },
    { "failed", 6, SUSPICIOUS },        { "failure", 7, SUSPICIOUS },
    { "errors", 6, SUSPICIOUS },
};

static int word_level(const char *w, size_t n)
{
    if (n < 3 || n > 9)
        return LH_LEVEL_UNKNOWN;
    char low[10];
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(w[i] | 0x20);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (words[i].len == n && memcmp(low, words[i].w, n) == 0)
            return words[i].level;
    return LH_LEVEL_UNKNOWN;
}

/* "level":NN (pino, bunyan); 0 when absent. */
static int numeric_level(const char *s, size_t n)
{
    static const char key[] = "\"level\":";
    const size_t kl = sizeof(key) - 1;
    for (const char *p = s; (size_t)(p - s) + kl < n;) {
        const char *q = memmem(p, n - (size_t)(p - s), key, kl);
        if (!q)
            return 0;
        q += kl;
        while ((size_t)(q - s) < n && *q == ' ')
            q++;
        if ((size_t)(q - s) + 2 <= n && is_digit((unsigned char)q[0]) &&
            is_digit((unsigned char)q[1]) &&
            ((size_t)(q - s) + 2 == n || !is_digit((unsigned char)q[2]))) {
            int v = (q[0] - '0') * 10 + (q[1] - '0');
            if (v <= 10)
                return LH_LEVEL_TRACE;
            if (v <= 20)
                return LH_LEVEL_DEBUG;
            if (v <= 30)
                return LH_LEVEL_INFO;
            if (v <= 40)
                return LH_LEVEL_WARN;
            if (v <= 50)
                return LH_LEVEL_ERROR;
            return LH_LEVEL_FATAL;
        }
        p = q;
    }
    return 0;
}

enum lh_level lh_level_sniff(const char *s, size_t n)
{
    if (n > LH_LEVEL_SNIFF_BYTES)
        n = LH_LEVEL_SNIFF_BYTES;
    if (n >= 6 && strchr("IWEF", s[0]) && is_digit((unsigned char)s[1]) &&
        is_digit((unsigned char)s[2]) && is_digit((unsigned char)s[3]) &&
        is_digit((unsigned char)s[4]) && s[5] == ' ') {
        switch (s[0]) {
        case 'I': return LH_LEVEL_INFO;
        case 'W': return LH_LEVEL_WARN;
        case 'E': return LH_LEVEL_ERROR;
        default: return LH_LEVEL_FATAL;
        }
    }
    int best = LH_LEVEL_UNKNOWN, suspicious = 0;
    if (n && s[0] == '{')
        best = numeric_level(s, n);
    size_t i = 0;
    while (i < n) {
        while (i < n && !is_alpha((unsigned char)s[i]))
            i++;
        size_t st = i;
        while (i < n && is_alpha((unsigned char)s[i]))
            i++;
        if (i == n && n == LH_LEVEL_SNIFF_BYTES)
            break;   /* a word cut at the scan limit is not a word */
        int l = word_level(s + st, i - st);
        if (l == SUSPICIOUS)
            suspicious = 1;
        else if (l > best)
            best = l;
    }
    if (suspicious && best <= LH_LEVEL_INFO)
        return LH_LEVEL_UNKNOWN;
    return (enum lh_level)best;
}

int lh_level_sampleable(enum lh_level l)
{
    return l == LH_LEVEL_TRACE || l == LH_LEVEL_DEBUG || l == LH_LEVEL_INFO;
}
