/* multiline.c - start-pattern, Java and Python multiline rules (see multiline.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "multiline.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

struct lh_ml_rules {
    enum lh_ml_mode mode;
    pcre2_code *start;        /* LH_ML_START */
    pcre2_code *java_frame;   /* LH_ML_JAVA: frames, Caused by, Suppressed */
    pcre2_code *java_header;  /* LH_ML_JAVA: an exception class line */
    pcre2_match_data *md;
};

static const char java_frame_re[] =
    "^(?:\\s+at\\s|\\s+\\.\\.\\.\\s*\\d+\\s+(?:more|common frames omitted)"
    "|\\s*Caused by:|\\s*Suppressed:|\\s+\\.\\.\\.\\s*$)";
static const char java_header_re[] =
    "^(?:[a-zA-Z_$][\\w$]*\\.)+[A-Za-z_$][\\w$]*(?:Exception|Error|Throwable)(?::.*)?$";

static int compile(const char *pat, pcre2_code **out, struct lh_err *err)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF |
                                   PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        return lh_err_set(err, LH_EINVAL, "multiline pattern /%s/ at offset %zu: %s", pat,
                          (size_t)off, (const char *)msg);
    }
    /* JIT is an optimisation: an error just leaves the interpreter in use. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return 0;
}

int lh_ml_rules_create(enum lh_ml_mode mode, const char *start_pattern,
                       struct lh_ml_rules **out, struct lh_err *err)
{
    struct lh_ml_rules *r = calloc(1, sizeof(*r));
    int rc = LH_ENOMEM;
    if (!r)
        return lh_err_set(err, LH_ENOMEM, "multiline: out of memory");
    r->mode = mode;
    switch (mode) {
    case LH_ML_START:
        if (!start_pattern || !start_pattern[0]) {
            rc = lh_err_set(err, LH_EINVAL, "multiline mode start needs a start pattern");
            goto fail;
        }
        if ((rc = compile(start_pattern, &r->start, err)) < 0)
            goto fail;
        break;
    case LH_ML_JAVA:
        if ((rc = compile(java_frame_re, &r->java_frame, err)) < 0 ||
            (rc = compile(java_header_re, &r->java_header, err)) < 0)
            goto fail;
        break;
    case LH_ML_PYTHON:
    case LH_ML_OFF:
        break;
    default:
        rc = lh_err_set(err, LH_EINVAL, "multiline: unknown mode %d", (int)mode);
        goto fail;
    }
    r->md = pcre2_match_data_create(4, NULL);
    if (!r->md) {
        rc = lh_err_set(err, LH_ENOMEM, "multiline: out of memory");
        goto fail;
    }
    *out = r;
    return 0;
fail:
    lh_ml_rules_destroy(r);
    return rc;
}

void lh_ml_rules_destroy(struct lh_ml_rules *r)
{
    if (!r)
        return;
    pcre2_code_free(r->start);
    pcre2_code_free(r->java_frame);
    pcre2_code_free(r->java_header);
    pcre2_match_data_free(r->md);
    free(r);
}

static int match(struct lh_ml_rules *r, pcre2_code *re, const char *s, size_t n)
{
    return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, r->md, NULL) >= 0;
}

static int starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static int python_continues(struct lh_ml_state *st, const char *s, size_t n)
{
    static const char tb[] = "Traceback (most recent call last):";
    int indented = n > 0 && (s[0] == ' ' || s[0] == '\t');
    switch (st->py) {
    case 1:                             /* inside a traceback */
        if (!indented && !is_blank(s, n))
            st->py = 2;                 /* the exception line ends it */
        return 1;
    case 2:                             /* right after the exception line */
    case 3:                             /* in the text between chained tracebacks */
        if (starts_with(s, n, tb)) {
            st->py = 1;
            return 1;
        }
        if (is_blank(s, n) ||
            starts_with(s, n, "During handling of the above exception") ||
            starts_with(s, n, "The above exception was the direct cause")) {
            st->py = 3;
            return 1;
        }
        if (st->py == 2 && indented)    /* a multi-line exception message */
            return 1;
        st->py = 0;
        return 0;
    default:
        if (starts_with(s, n, tb)) {
            st->py = 1;
            return 1;
        }
        return 0;
    }
}

int lh_ml_continues(struct lh_ml_rules *r, struct lh_ml_state *st, const char *line, size_t len,
                    int have_pending)
{
    int cont = 0;
    switch (r->mode) {
    case LH_ML_START:
        cont = !match(r, r->start, line, len);
        break;
    case LH_ML_JAVA:
        cont = match(r, r->java_frame, line, len) || match(r, r->java_header, line, len);
        break;
    case LH_ML_PYTHON:
        cont = python_continues(st, line, len);
        break;
    default:
        break;
    }
    return cont && have_pending;
}
