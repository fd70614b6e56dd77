/* arena.c - bump allocator (see lh/arena.h). */
#include "lh/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct lh_arena_chunk {
    struct lh_arena_chunk *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char mem[];
};

void *lh_arena_alloc(struct lh_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct lh_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = a->chunk_size ? a->chunk_size : 64 * 1024;
        if (size < n)
            size = n;
        if (size > SIZE_MAX - sizeof(*c))
            return NULL;
        c = malloc(sizeof(*c) + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->total += n;
    return p;
}

void *lh_arena_calloc(struct lh_arena *a, size_t n)
{
    void *p = lh_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *lh_arena_strndup(struct lh_arena *a, const char *s, size_t n)
{
    char *p = lh_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *lh_arena_strdup(struct lh_arena *a, const char *s)
{
    return lh_arena_strndup(a, s, strlen(s));
}

void lh_arena_reset(struct lh_arena *a)
{
    struct lh_arena_chunk *c = a->head;
    if (!c)
        return;
    /* Keep the oldest chunk (usually the default size); free the rest. */
    while (c->next) {
        struct lh_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
    a->total = 0;
}

void lh_arena_free(struct lh_arena *a)
{
    struct lh_arena_chunk *c = a->head;
    while (c) {
        struct lh_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
