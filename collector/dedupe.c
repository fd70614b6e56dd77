/* dedupe.c - idempotency cache: open-addressing hash table of batch keys
 * plus a FIFO ring for eviction by age and count (see dedupe.h). */
#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "lh/crc32c.h"

struct entry {
    uint64_t h;             /* 0: empty slot */
    uint8_t uuid[16];
    uint64_t tenant_h;
    int64_t expires_ns;
    struct lh_dedupe_seen seen;
    int state;
};

struct lh_dedupe {
    struct entry *slots;    /* power of two, at most half full */
    size_t mask;
    size_t count;
    size_t max_entries;
    int64_t window_ns;
    uint64_t *ring;         /* hashes in insertion order, for eviction */
    size_t ring_head, ring_len;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t lh_dedupe_digest(const void *p, size_t n, uint32_t tag)
{
    uint32_t crc = lh_crc32c(lh_crc32c(0, &tag, sizeof(tag)), p, n);
    return (uint64_t)crc << 32 | (uint32_t)n;
}

static uint64_t key_hash(const char *tenant, const uint8_t uuid[16], uint64_t *tenant_h)
{
    *tenant_h = fnv(tenant, strlen(tenant), 0xcbf29ce484222325ULL);
    uint64_t h = fnv(uuid, 16, *tenant_h);
    return h ? h : 1;
}

struct lh_dedupe *lh_dedupe_create(size_t max_entries, int64_t window_ns)
{
    if (max_entries == 0)
        return NULL;
    struct lh_dedupe *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    size_t cap = 16;
    while (cap < max_entries * 2)
        cap *= 2;
    d->slots = calloc(cap, sizeof(*d->slots));
    d->ring = calloc(max_entries, sizeof(*d->ring));
    if (!d->slots || !d->ring) {
        lh_dedupe_destroy(d);
        return NULL;
    }
    d->mask = cap - 1;
    d->max_entries = max_entries;
    d->window_ns = window_ns;
    return d;
}

void lh_dedupe_destroy(struct lh_dedupe *d)
{
    if (!d)
        return;
    free(d->slots);
    free(d->ring);
    free(d);
}

size_t lh_dedupe_size(const struct lh_dedupe *d) { return d ? d->count : 0; }

static struct entry *find(struct lh_dedupe *d, uint64_t h, uint64_t th, const uint8_t uuid[16])
{
    for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
        struct entry *e = &d->slots[i];
        if (e->h == 0)
            return NULL;
        if (e->h == h && e->tenant_h == th && memcmp(e->uuid, uuid, 16) == 0)
            return e;
    }
}

/* Deletes e and re-inserts the rest of its probe run (no tombstones). */
static void erase(struct lh_dedupe *d, struct entry *e)
{
    size_t i = (size_t)(e - d->slots);
    e->h = 0;
    d->count--;
    for (size_t j = (i + 1) & d->mask; d->slots[j].h; j = (j + 1) & d->mask) {
        struct entry moved = d->slots[j];
        d->slots[j].h = 0;
        size_t k = moved.h & d->mask;
        while (d->slots[k].h)
            k = (k + 1) & d->mask;
        d->slots[k] = moved;
    }
}

static struct entry *find_hash(struct lh_dedupe *d, uint64_t h)
{
    for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
        if (d->slots[i].h == 0)
            return NULL;
        if (d->slots[i].h == h)
            return &d->slots[i];
    }
}

/* Drops entries past their window and, when full, the oldest ones. The
 * ring may name entries already erased (failed batches): skipped. */
static void evict(struct lh_dedupe *d, int64_t now_ns)
{
    while (d->ring_len) {
        uint64_t h = d->ring[d->ring_head];
        struct entry *e = find_hash(d, h);
        int full = d->ring_len >= d->max_entries;
        if (e && !full && e->expires_ns > now_ns)
            break;
        if (e && (full || e->state == LH_DEDUPE_DONE || e->expires_ns <= now_ns))
            erase(d, e);
        d->ring_head = (d->ring_head + 1) % d->max_entries;
        d->ring_len--;
    }
}

enum lh_dedupe_state lh_dedupe_begin(struct lh_dedupe *d, const char *tenant,
                                     const uint8_t uuid[16], int64_t now_ns,
                                     struct lh_dedupe_seen *seen)
{
    if (!d)
        return LH_DEDUPE_NEW;
    uint64_t th, h = key_hash(tenant, uuid, &th);
    evict(d, now_ns);
    struct entry *e = find(d, h, th, uuid);
    if (e && e->expires_ns > now_ns) {
        if (e->state == LH_DEDUPE_DONE)
            *seen = e->seen;
        return e->state == LH_DEDUPE_DONE ? LH_DEDUPE_DONE : LH_DEDUPE_IN_FLIGHT;
    }
    if (e)
        erase(d, e);
    size_t i = h & d->mask;
    while (d->slots[i].h)
        i = (i + 1) & d->mask;
    e = &d->slots[i];
    e->h = h;
    e->tenant_h = th;
    memcpy(e->uuid, uuid, 16);
    e->state = LH_DEDUPE_IN_FLIGHT;
    memset(&e->seen, 0, sizeof(e->seen));
    /* An in-flight batch keeps its slot for the window too: a client that
     * times out and retries meanwhile is told to wait. */
    e->expires_ns = now_ns + d->window_ns;
    d->count++;
    d->ring[(d->ring_head + d->ring_len) % d->max_entries] = h;
    d->ring_len++;
    return LH_DEDUPE_NEW;
}

void lh_dedupe_end(struct lh_dedupe *d, const char *tenant, const uint8_t uuid[16], int ok,
                   const struct lh_dedupe_seen *seen, int64_t now_ns)
{
    if (!d)
        return;
    uint64_t th, h = key_hash(tenant, uuid, &th);
    struct entry *e = find(d, h, th, uuid);
    if (!e)
        return;
    if (!ok || !seen) {
        erase(d, e);
        return;
    }
    e->state = LH_DEDUPE_DONE;
    e->seen = *seen;
    e->expires_ns = now_ns + d->window_ns;
}
