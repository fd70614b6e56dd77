/* store_index.c - the store's indexes: the per-block token bloom filter and
 * the writer's per-partition index of stored event ids (dedupe).
 *
 * Ids shaped like lh_event_id (<32 hex batch uuid>-<index>) are kept as
 * sorted ranges of indexes per batch uuid, so a partition of 10^8 events
 * from 10^5 batches costs a few MB; other ids as a set of 128-bit hashes. */
#include "store_int.h"

#include <stdlib.h>

/* ---- hash set of 64-bit values ---------------------------------------- */

static int hset_grow(struct lhs_hset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    uint64_t *nv = calloc(ncap, sizeof(*nv));
    if (!nv)
        return LH_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t h = s->v[i];
        if (!h)
            continue;
        size_t j = (size_t)h & (ncap - 1);
        while (nv[j])
            j = (j + 1) & (ncap - 1);
        nv[j] = h;
    }
    free(s->v);
    s->v = nv;
    s->cap = ncap;
    return 0;
}

int lhs_hset_add(struct lhs_hset *s, uint64_t h)
{
    if (h == 0) {
        if (!s->has_zero) {
            s->has_zero = 1;
            s->n++;
        }
        return 0;
    }
    if ((s->n + 1) * 2 > s->cap && hset_grow(s) < 0)
        return LH_ENOMEM;
    size_t j = (size_t)h & (s->cap - 1);   /* h is a hash already */
    while (s->v[j]) {
        if (s->v[j] == h)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->v[j] = h;
    s->n++;
    return 0;
}

int lhs_hset_add_many(struct lhs_hset *s, const uint64_t *hs, size_t n)
{
    while ((s->n + n + 1) * 2 > s->cap) {   /* room for all of them, checked once */
        if (hset_grow(s) < 0)
            return LH_ENOMEM;
    }
    uint64_t *v = s->v;
    size_t mask = s->cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hs[i];
        if (h == 0) {
            if (!s->has_zero) {
                s->has_zero = 1;
                s->n++;
            }
            continue;
        }
        size_t j = (size_t)h & mask;
        while (v[j] && v[j] != h)
            j = (j + 1) & mask;
        if (!v[j]) {
            v[j] = h;
            s->n++;
        }
    }
    return 0;
}

void lhs_hset_clear(struct lhs_hset *s)
{
    if (s->cap > (1u << 22)) {   /* an outsized block: give the memory back */
        lhs_hset_free(s);
        return;
    }
    if (s->v)
        memset(s->v, 0, s->cap * sizeof(*s->v));
    s->n = 0;
    s->has_zero = 0;
}

void lhs_hset_free(struct lhs_hset *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ---- blocked bloom filter --------------------------------------------- */

/* 16 bits per key, 7 probes inside one 512-bit group: ~0.13% false
 * positives, one cache line per probe. Every false positive costs a block
 * decompression, and a query tests every block of its time range: at 1%
 * (10 bits per key) a lookup over 1,000 blocks decompressed ~10 blocks for
 * nothing, at 0.13% about one. The probe count is part of the format (blocks
 * written with 10 bits per key are read the same way). */
size_t lhs_bloom_words(size_t nkeys)
{
    size_t bits = nkeys * 16;
    size_t groups = (bits + 511) / 512;
    if (groups == 0)
        groups = 1;
    return groups * 8;
}

static inline size_t bloom_group(uint64_t h, size_t ngroups)
{
    return (size_t)(((h >> 32) * (uint64_t)ngroups) >> 32);
}

void lhs_bloom_add(uint64_t *words, size_t nwords, uint64_t h)
{
    uint64_t *g = words + bloom_group(h, nwords / 8) * 8;
    uint64_t x = lhs_mix(h ^ 0x5bd1e9955bd1e995ull);
    for (int i = 0; i < 7; i++) {
        unsigned bit = (unsigned)(x >> (9 * i)) & 511;
        g[bit >> 6] |= 1ull << (bit & 63);
    }
}

int lhs_bloom_test(const uint8_t *words, size_t nwords, uint64_t h)
{
    if (nwords < 8)
        return 1;
    const uint8_t *g = words + bloom_group(h, nwords / 8) * 64;
    uint64_t x = lhs_mix(h ^ 0x5bd1e9955bd1e995ull);
    for (int i = 0; i < 7; i++) {
        unsigned bit = (unsigned)(x >> (9 * i)) & 511;
        if (!(lhs_get64(g + (bit >> 6) * 8) & (1ull << (bit & 63))))
            return 0;
    }
    return 1;
}

/* ---- id index --------------------------------------------------------- */

struct range {
    uint32_t lo, hi;    /* [lo, hi) */
};

struct uuid_ent {
    uint8_t uuid[16];
    int used;
    struct range *r;
    uint32_t n, cap;
};

struct lhs_idx {
    struct uuid_ent *tab;
    size_t cap, n;
    uint64_t (*gen)[2];     /* open addressing, {0,0} = empty */
    size_t gcap, gn;
    uint64_t count;
};

struct lhs_idx *lhs_idx_new(void)
{
    return calloc(1, sizeof(struct lhs_idx));
}

void lhs_idx_free(struct lhs_idx *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->cap; i++)
        free(x->tab[i].r);
    free(x->tab);
    free(x->gen);
    free(x);
}

static size_t uuid_slot(const uint8_t uuid[16], size_t cap)
{
    return (size_t)lhs_hash(uuid, 16) & (cap - 1);
}

static struct uuid_ent *uuid_find(const struct lhs_idx *x, const uint8_t uuid[16])
{
    if (!x->cap)
        return NULL;
    size_t j = uuid_slot(uuid, x->cap);
    while (x->tab[j].used) {
        if (memcmp(x->tab[j].uuid, uuid, 16) == 0)
            return &x->tab[j];
        j = (j + 1) & (x->cap - 1);
    }
    return NULL;
}

static struct uuid_ent *uuid_insert(struct lhs_idx *x, const uint8_t uuid[16])
{
    struct uuid_ent *e = uuid_find(x, uuid);
    if (e)
        return e;
    if ((x->n + 1) * 2 > x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 64;
        struct uuid_ent *nt = calloc(ncap, sizeof(*nt));
        if (!nt)
            return NULL;
        for (size_t i = 0; i < x->cap; i++) {
            if (!x->tab[i].used)
                continue;
            size_t j = uuid_slot(x->tab[i].uuid, ncap);
            while (nt[j].used)
                j = (j + 1) & (ncap - 1);
            nt[j] = x->tab[i];
        }
        free(x->tab);
        x->tab = nt;
        x->cap = ncap;
    }
    size_t j = uuid_slot(uuid, x->cap);
    while (x->tab[j].used)
        j = (j + 1) & (x->cap - 1);
    e = &x->tab[j];
    memcpy(e->uuid, uuid, 16);
    e->used = 1;
    x->n++;
    return e;
}

/* First range with hi > v. */
static uint32_t range_lb(const struct uuid_ent *e, uint32_t v)
{
    uint32_t lo = 0, hi = e->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (e->r[mid].hi > v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int range_has(const struct uuid_ent *e, uint32_t v)
{
    uint32_t i = range_lb(e, v);
    return i < e->n && e->r[i].lo <= v;
}

/* Adds [lo, hi), merging with overlapping or adjacent ranges; returns how
 * many new values it added, or LH_ENOMEM. */
static int64_t range_add(struct uuid_ent *e, uint32_t lo, uint32_t hi)
{
    uint32_t i = lo > 0 ? range_lb(e, lo - 1) : 0;  /* first with hi >= lo */
    uint32_t j = i;
    uint64_t nlo = lo, nhi = hi, covered = 0;
    while (j < e->n && e->r[j].lo <= hi) {
        uint32_t olo = e->r[j].lo > lo ? e->r[j].lo : lo;
        uint32_t ohi = e->r[j].hi < hi ? e->r[j].hi : hi;
        if (ohi > olo)
            covered += ohi - olo;
        if (e->r[j].lo < nlo)
            nlo = e->r[j].lo;
        if (e->r[j].hi > nhi)
            nhi = e->r[j].hi;
        j++;
    }
    if (j == i) {   /* insert a new range at i */
        if (e->n == e->cap) {
            uint32_t ncap = e->cap ? e->cap * 2 : 4;
            struct range *nr = realloc(e->r, ncap * sizeof(*nr));
            if (!nr)
                return LH_ENOMEM;
            e->r = nr;
            e->cap = ncap;
        }
        memmove(e->r + i + 1, e->r + i, (e->n - i) * sizeof(*e->r));
        e->n++;
    } else if (j > i + 1) {
        memmove(e->r + i + 1, e->r + j, (e->n - j) * sizeof(*e->r));
        e->n -= j - i - 1;
    }
    e->r[i].lo = (uint32_t)nlo;
    e->r[i].hi = (uint32_t)nhi;
    return (int64_t)(hi - lo) - (int64_t)covered;
}

static void gen_hash(const char *id, uint64_t out[2])
{
    size_t n = strlen(id);
    out[0] = lhs_hash_seed(id, n, 0x243f6a8885a308d3ull);
    out[1] = lhs_hash_seed(id, n, 0x13198a2e03707344ull);
    if (!out[0] && !out[1])
        out[1] = 1;
}

static int gen_has(const struct lhs_idx *x, const uint64_t h[2])
{
    if (!x->gcap)
        return 0;
    size_t j = (size_t)h[0] & (x->gcap - 1);
    while (x->gen[j][0] || x->gen[j][1]) {
        if (x->gen[j][0] == h[0] && x->gen[j][1] == h[1])
            return 1;
        j = (j + 1) & (x->gcap - 1);
    }
    return 0;
}

static int gen_add(struct lhs_idx *x, const uint64_t h[2])
{
    if (gen_has(x, h))
        return 0;
    if ((x->gn + 1) * 2 > x->gcap) {
        size_t ncap = x->gcap ? x->gcap * 2 : 256;
        uint64_t (*ng)[2] = calloc(ncap, sizeof(*ng));
        if (!ng)
            return LH_ENOMEM;
        for (size_t i = 0; i < x->gcap; i++) {
            if (!x->gen[i][0] && !x->gen[i][1])
                continue;
            size_t j = (size_t)x->gen[i][0] & (ncap - 1);
            while (ng[j][0] || ng[j][1])
                j = (j + 1) & (ncap - 1);
            ng[j][0] = x->gen[i][0];
            ng[j][1] = x->gen[i][1];
        }
        free(x->gen);
        x->gen = ng;
        x->gcap = ncap;
    }
    size_t j = (size_t)h[0] & (x->gcap - 1);
    while (x->gen[j][0] || x->gen[j][1])
        j = (j + 1) & (x->gcap - 1);
    x->gen[j][0] = h[0];
    x->gen[j][1] = h[1];
    x->gn++;
    x->count++;
    return 0;
}

int lhs_idx_has(const struct lhs_idx *x, const char *id)
{
    uint8_t uuid[16];
    uint32_t index;
    if (lhs_id_parse(id, uuid, &index) == 0) {
        const struct uuid_ent *e = uuid_find(x, uuid);
        return e && range_has(e, index);
    }
    uint64_t h[2];
    gen_hash(id, h);
    return gen_has(x, h);
}

static int idx_add_range(struct lhs_idx *x, const uint8_t uuid[16], uint32_t lo, uint32_t hi)
{
    struct uuid_ent *e = uuid_insert(x, uuid);
    if (!e)
        return LH_ENOMEM;
    int64_t added = range_add(e, lo, hi);
    if (added < 0)
        return (int)added;
    x->count += (uint64_t)added;
    return 0;
}

int lhs_idx_add(struct lhs_idx *x, const char *id)
{
    uint8_t uuid[16];
    uint32_t index;
    uint64_t before = x->count;
    int rc;
    if (lhs_id_parse(id, uuid, &index) == 0 && index != UINT32_MAX) {
        rc = idx_add_range(x, uuid, index, index + 1);
    } else {   /* other shapes (and an index without room for index + 1): hashed */
        uint64_t h[2];
        gen_hash(id, h);
        rc = gen_add(x, h);
    }
    if (rc < 0)
        return rc;
    return x->count > before;
}

/* Summary: u32 nuuid, {uuid[16], u32 nranges, {u32 lo, u32 hi}...}...,
 *          u32 ngen, {u64, u64}... */
int lhs_idx_add_summary(struct lhs_idx *x, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    if (end - p < 4)
        return LH_ECORRUPT;
    uint32_t nu = lhs_get32(p);
    p += 4;
    for (uint32_t i = 0; i < nu; i++) {
        if (end - p < 20)
            return LH_ECORRUPT;
        const uint8_t *uuid = p;
        uint32_t nr = lhs_get32(p + 16);
        p += 20;
        if ((uint64_t)(end - p) < (uint64_t)nr * 8)
            return LH_ECORRUPT;
        for (uint32_t k = 0; k < nr; k++, p += 8) {
            uint32_t lo = lhs_get32(p), hi = lhs_get32(p + 4);
            if (hi <= lo)
                return LH_ECORRUPT;
            int rc = idx_add_range(x, uuid, lo, hi);
            if (rc < 0)
                return rc;
        }
    }
    if (end - p < 4)
        return LH_ECORRUPT;
    uint32_t ng = lhs_get32(p);
    p += 4;
    if ((uint64_t)(end - p) < (uint64_t)ng * 16)
        return LH_ECORRUPT;
    for (uint32_t i = 0; i < ng; i++, p += 16) {
        uint64_t h[2] = { lhs_get64(p), lhs_get64(p + 8) };
        int rc = gen_add(x, h);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct uid {
    uint8_t uuid[16];
    uint32_t index;
};

static int uid_cmp(const void *a, const void *b)
{
    const struct uid *x = a, *y = b;
    int c = memcmp(x->uuid, y->uuid, 16);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

int lhs_idx_summary(const char *const *ids, size_t n, struct lh_buf *b)
{
    struct uid *u = malloc((n ? n : 1) * sizeof(*u));
    uint64_t (*g)[2] = malloc((n ? n : 1) * sizeof(*g));
    size_t nu = 0, ng = 0;
    int rc = LH_ENOMEM;
    if (!u || !g)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (lhs_id_parse(ids[i], u[nu].uuid, &u[nu].index) == 0 && u[nu].index != UINT32_MAX)
            nu++;
        else
            gen_hash(ids[i], g[ng++]);
    }
    qsort(u, nu, sizeof(*u), uid_cmp);
    size_t ndistinct = 0;
    for (size_t i = 0; i < nu; i++)
        if (i == 0 || memcmp(u[i].uuid, u[i - 1].uuid, 16) != 0)
            ndistinct++;
    if ((rc = lhs_buf_u32(b, (uint32_t)ndistinct)) < 0)
        goto out;
    for (size_t i = 0; i < nu;) {
        size_t j = i;
        while (j < nu && memcmp(u[j].uuid, u[i].uuid, 16) == 0)
            j++;
        /* ranges of u[i..j) */
        uint32_t nr = 0;
        for (size_t k = i; k < j; k++)
            if (k == i || u[k].index > u[k - 1].index + 1)
                nr++;
        if ((rc = lh_buf_append(b, u[i].uuid, 16)) < 0 || (rc = lhs_buf_u32(b, nr)) < 0)
            goto out;
        for (size_t k = i; k < j;) {
            size_t m = k + 1;
            while (m < j && u[m].index <= u[m - 1].index + 1)
                m++;
            if ((rc = lhs_buf_u32(b, u[k].index)) < 0 ||
                (rc = lhs_buf_u32(b, u[m - 1].index + 1)) < 0)
                goto out;
            k = m;
        }
        i = j;
    }
    if ((rc = lhs_buf_u32(b, (uint32_t)ng)) < 0)
        goto out;
    for (size_t i = 0; i < ng; i++)
        if ((rc = lhs_buf_u64(b, g[i][0])) < 0 || (rc = lhs_buf_u64(b, g[i][1])) < 0)
            goto out;
    rc = 0;
out:
    free(u);
    free(g);
    return rc;
}
