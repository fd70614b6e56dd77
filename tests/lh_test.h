/* lh_test.h - loghaul's small unit-test harness.
 *
 * A test is `TEST(name) { ... }` in any file linked into the runner; it
 * registers itself at load time. The runner forks each test, so a crash or
 * an abort from a sanitizer fails that test only, and gives it a fresh
 * temporary directory (lh_test_tmpdir()) that is removed afterwards.
 * CHECK* record a failure and go on; REQUIRE* record it and end the test. */
#ifndef LH_TEST_H
#define LH_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lh_test_case {
    const char *name;
    const char *file;
    void (*fn)(void);
    struct lh_test_case *next;
};

void lh_test_register(struct lh_test_case *tc);
void lh_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lh_test_end(void) __attribute__((noreturn));
/* A directory private to the running test; removed when it ends. */
const char *lh_test_tmpdir(void);
/* Directory holding the built binaries (the runner's own directory's parent). */
const char *lh_test_build_dir(void);

#define TEST(name)                                                              \
    static void name(void);                                                     \
    static struct lh_test_case name##_case_ = { #name, __FILE__, name, NULL };  \
    __attribute__((constructor)) static void name##_register_(void)             \
    {                                                                           \
        lh_test_register(&name##_case_);                                        \
    }                                                                           \
    static void name(void)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond))                                                            \
            lh_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);               \
    } while (0)

#define REQUIRE(cond)                                                           \
    do {                                                                        \
        if (!(cond)) {                                                          \
            lh_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);             \
            lh_test_end();                                                      \
        }                                                                       \
    } while (0)

#define CHECK_INT(a, op, b)                                                     \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (!(a_ op b_))                                                        \
            lh_test_fail(__FILE__, __LINE__, "CHECK_INT(%s %s %s): %lld vs %lld", \
                         #a, #op, #b, a_, b_);                                  \
    } while (0)

#define REQUIRE_INT(a, op, b)                                                   \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (!(a_ op b_)) {                                                      \
            lh_test_fail(__FILE__, __LINE__, "REQUIRE_INT(%s %s %s): %lld vs %lld", \
                         #a, #op, #b, a_, b_);                                  \
            lh_test_end();                                                      \
        }                                                                       \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *a_ = (a), *b_ = (b);                                        \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                  \
            lh_test_fail(__FILE__, __LINE__, "CHECK_STR(%s, %s): \"%s\" vs \"%s\"", \
                         #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");       \
    } while (0)

/* Checks that a string contains a substring (error messages). */
#define CHECK_CONTAINS(hay, needle)                                             \
    do {                                                                        \
        const char *h_ = (hay), *n_ = (needle);                                 \
        if (!h_ || !strstr(h_, n_))                                             \
            lh_test_fail(__FILE__, __LINE__, "CHECK_CONTAINS(%s, \"%s\"): got \"%s\"", \
                         #hay, n_, h_ ? h_ : "(null)");                         \
    } while (0)

#endif
