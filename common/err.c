/* err.c - error codes and messages (see lh/err.h). */
#include "lh/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lh_err_set(struct lh_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int lh_err_errno(struct lh_err *err, int code, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof(err->msg))
            snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(errnum));
        err->code = code;
    }
    return code;
}

int lh_err_wrap(struct lh_err *err, const char *fmt, ...)
{
    if (!err)
        return LH_ERR;
    char prefix[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    if (err->code == LH_OK)
        err->code = LH_ERR;
    return err->code;
}

void lh_err_clear(struct lh_err *err)
{
    if (err) {
        err->code = LH_OK;
        err->msg[0] = '\0';
    }
}

const char *lh_errcode_name(int code)
{
    switch (code) {
    case LH_OK:        return "OK";
    case LH_ERR:       return "ERR";
    case LH_ENOMEM:    return "ENOMEM";
    case LH_EINVAL:    return "EINVAL";
    case LH_EIO:       return "EIO";
    case LH_ETOOBIG:   return "ETOOBIG";
    case LH_EFULL:     return "EFULL";
    case LH_EUNAVAIL:  return "EUNAVAIL";
    case LH_ENOTFOUND: return "ENOTFOUND";
    case LH_ECORRUPT:  return "ECORRUPT";
    case LH_ETIMEDOUT: return "ETIMEDOUT";
    case LH_EAGAIN:    return "EAGAIN";
    case LH_ECLOSED:   return "ECLOSED";
    default:           return "E?";
    }
}
