/* err.h - the one error convention of loghaul.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success
 * and a negative LH_E* code on failure, and may describe the failure in a
 * caller-supplied struct lh_err. The message names what failed and why
 * ("open(/var/lib/loghaul/spool/0001.seg): No space left on device").
 * Allocators and low-level helpers do not log: the caller decides. */
#ifndef LH_ERR_H
#define LH_ERR_H

#include <stddef.h>

enum lh_errcode {
    LH_OK = 0,
    LH_ERR = -1,        /* generic failure: see the message */
    LH_ENOMEM = -2,     /* allocation failed */
    LH_EINVAL = -3,     /* bad input from a caller, a config or a client */
    LH_EIO = -4,        /* a system call on a file or socket failed */
    LH_ETOOBIG = -5,    /* a configured size limit was hit */
    LH_EFULL = -6,      /* backpressure: queue or disk full, retry later */
    LH_EUNAVAIL = -7,   /* a dependency is down, retry later */
    LH_ENOTFOUND = -8,  /* no such thing */
    LH_ECORRUPT = -9,   /* stored data failed a checksum or framing check */
    LH_ETIMEDOUT = -10, /* a deadline passed */
    LH_EAGAIN = -11,    /* nothing available now (non-blocking calls) */
    LH_ECLOSED = -12,   /* the object was shut down */
};

struct lh_err {
    int code;           /* an enum lh_errcode, LH_OK when no error was set */
    char msg[512];
};

/* Records code and a printf-style message in err (err may be NULL) and
 * returns code, so that `return lh_err_set(err, LH_EINVAL, "...")` works. */
int lh_err_set(struct lh_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like lh_err_set, with ": strerror(errnum)" appended. */
int lh_err_errno(struct lh_err *err, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes the message already in err with "prefix: " (adds context while an
 * error travels up). Returns err->code (LH_ERR if err is NULL). */
int lh_err_wrap(struct lh_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void lh_err_clear(struct lh_err *err);

/* A short constant name for a code ("EFULL"). */
const char *lh_errcode_name(int code);

#endif
