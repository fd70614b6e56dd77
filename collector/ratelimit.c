/* ratelimit.c - token buckets per key (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
    char *key;
    double bytes, records;   /* tokens available */
    int64_t last_ns;
    struct bucket *next;
};

struct lh_ratelimit {
    pthread_mutex_t mu;
    double bps, rps, burst;
    size_t max_keys, nkeys;
    struct bucket **table;
    size_t nbuckets;
};

struct lh_ratelimit *lh_ratelimit_create(double bytes_per_sec, double records_per_sec,
                                         double burst_sec, size_t max_keys)
{
    if (bytes_per_sec <= 0 && records_per_sec <= 0)
        return NULL;
    struct lh_ratelimit *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->nbuckets = 1024;
    r->table = calloc(r->nbuckets, sizeof(*r->table));
    if (!r->table) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->bps = bytes_per_sec;
    r->rps = records_per_sec;
    r->burst = burst_sec > 0 ? burst_sec : 1;
    r->max_keys = max_keys ? max_keys : 100000;
    return r;
}

void lh_ratelimit_destroy(struct lh_ratelimit *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (struct bucket *b = r->table[i]; b;) {
            struct bucket *next = b->next;
            free(b->key);
            free(b);
            b = next;
        }
    }
    free(r->table);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static size_t hash(const char *s)
{
    size_t h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

static double cap_of(double rate, double burst) { return rate * burst; }

static void refill(struct lh_ratelimit *r, struct bucket *b, int64_t now_ns)
{
    double dt = (double)(now_ns - b->last_ns) / 1e9;
    if (dt <= 0)
        return;
    b->last_ns = now_ns;
    if (r->bps > 0) {
        b->bytes += dt * r->bps;
        if (b->bytes > cap_of(r->bps, r->burst))
            b->bytes = cap_of(r->bps, r->burst);
    }
    if (r->rps > 0) {
        b->records += dt * r->rps;
        if (b->records > cap_of(r->rps, r->burst))
            b->records = cap_of(r->rps, r->burst);
    }
}

/* Forgets buckets that are full again (idle long enough): they would
 * behave exactly like new ones. */
static void sweep(struct lh_ratelimit *r, int64_t now_ns)
{
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct bucket **pp = &r->table[i];
        while (*pp) {
            struct bucket *b = *pp;
            refill(r, b, now_ns);
            int full = (r->bps <= 0 || b->bytes >= cap_of(r->bps, r->burst)) &&
                       (r->rps <= 0 || b->records >= cap_of(r->rps, r->burst));
            if (full) {
                *pp = b->next;
                free(b->key);
                free(b);
                r->nkeys--;
            } else {
                pp = &b->next;
            }
        }
    }
}

/* Milliseconds until `want` tokens are there at `rate`, given `have`. */
static int64_t wait_ms(double have, double want, double rate, double cap)
{
    if (rate <= 0)
        return 0;
    if (want > cap)
        want = cap;   /* oversized: wait for a full bucket */
    if (have >= want)
        return 0;
    int64_t ms = (int64_t)((want - have) / rate * 1000.0) + 1;
    return ms;
}

int64_t lh_ratelimit_take(struct lh_ratelimit *r, const char *key, uint64_t bytes,
                          uint64_t records, int64_t now_ns)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->mu);
    size_t i = hash(key) % r->nbuckets;
    struct bucket *b = r->table[i];
    while (b && strcmp(b->key, key) != 0)
        b = b->next;
    if (!b) {
        if (r->nkeys >= r->max_keys)
            sweep(r, now_ns);
        b = calloc(1, sizeof(*b));
        if (!b || !(b->key = strdup(key))) {
            free(b);
            pthread_mutex_unlock(&r->mu);
            return 0;   /* out of memory: do not refuse traffic for it */
        }
        b->bytes = cap_of(r->bps, r->burst);
        b->records = cap_of(r->rps, r->burst);
        b->last_ns = now_ns;
        b->next = r->table[i];
        r->table[i] = b;
        r->nkeys++;
    }
    refill(r, b, now_ns);
    int64_t wb = wait_ms(b->bytes, (double)bytes, r->bps, cap_of(r->bps, r->burst));
    int64_t wr = wait_ms(b->records, (double)records, r->rps, cap_of(r->rps, r->burst));
    int64_t w = wb > wr ? wb : wr;
    if (w == 0) {
        if (r->bps > 0)
            b->bytes -= (double)bytes;
        if (r->rps > 0)
            b->records -= (double)records;
    }
    pthread_mutex_unlock(&r->mu);
    return w;
}
