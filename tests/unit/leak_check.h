/* leak_check.h - asks LeakSanitizer for a leak report on the spot.
 *
 * The runner ends each test with _exit(), which skips LeakSanitizer's exit
 * check, so tests that must prove their error paths free everything call
 * lh_test_leaks() at the end: nonzero when leaks were found (and printed).
 * Always 0 in builds without AddressSanitizer. */
#ifndef LH_TEST_LEAK_CHECK_H
#define LH_TEST_LEAK_CHECK_H

#if defined(__SANITIZE_ADDRESS__)
#define LH_TEST_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LH_TEST_HAVE_LSAN 1
#endif
#endif

#ifdef LH_TEST_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
static inline int lh_test_leaks(void) { return __lsan_do_recoverable_leak_check(); }
#else
static inline int lh_test_leaks(void) { return 0; }
#endif

#endif
