/* arena.h - a bump allocator for short-lived objects of one batch (events,
 * their strings). Everything allocated from an arena is freed at once by
 * lh_arena_reset or lh_arena_free; nothing is freed one by one. */
#ifndef LH_ARENA_H
#define LH_ARENA_H

#include <stddef.h>

struct lh_arena_chunk;

struct lh_arena {
    struct lh_arena_chunk *head;  /* current chunk, older ones linked behind */
    size_t chunk_size;            /* default size of new chunks (0: 64 KiB) */
    size_t total;                 /* bytes handed out since the last reset */
};

#define LH_ARENA_INIT { NULL, 0, 0 }

/* 16-byte aligned memory, or NULL when out of memory. */
void *lh_arena_alloc(struct lh_arena *a, size_t n);
void *lh_arena_calloc(struct lh_arena *a, size_t n);
/* A NUL-terminated copy of s[0..n). */
char *lh_arena_strndup(struct lh_arena *a, const char *s, size_t n);
char *lh_arena_strdup(struct lh_arena *a, const char *s);
/* Forgets all allocations; keeps the first chunk for reuse. */
void lh_arena_reset(struct lh_arena *a);
void lh_arena_free(struct lh_arena *a);

#endif
