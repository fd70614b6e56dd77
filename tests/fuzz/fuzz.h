/* fuzz.h - helpers shared by the libFuzzer targets in tests/fuzz/. Each
 * target defines LLVMFuzzerTestOneInput; a broken contract of the code under
 * test is reported with FUZZ_CHECK, which prints what failed and aborts, so
 * libFuzzer keeps the input as a crash. */
#ifndef LH_FUZZ_H
#define LH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                  \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: contract broken: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* Reads every byte of p[0..n) so that AddressSanitizer sees a bad range. */
static inline unsigned fuzz_touch(const void *p, size_t n)
{
    const volatile unsigned char *s = p;
    unsigned h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + s[i];
    return h;
}

/* The same for a NUL-terminated string (NULL allowed). */
static inline unsigned fuzz_touch_str(const char *s)
{
    return s ? fuzz_touch(s, strlen(s) + 1) : 0;
}

/* A NUL-terminated copy of data[0..n) (the parsers under test take C
 * strings or need the bytes past the end to be fenced by ASan). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
