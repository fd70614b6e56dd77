/* sink.c - the parts of the sink interface shared by every sink. */
#include "sink.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int lh_sink_report_reject(struct lh_sink_report *rep, size_t index, const char *fmt, ...)
{
    if (rep->nrejects == rep->cap) {
        size_t cap = rep->cap ? rep->cap * 2 : 16;
        struct lh_sink_reject *v = realloc(rep->rejects, cap * sizeof(*v));
        if (!v)
            return LH_ENOMEM;
        rep->rejects = v;
        rep->cap = cap;
    }
    struct lh_sink_reject *r = &rep->rejects[rep->nrejects++];
    r->index = index;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
    return 0;
}

void lh_sink_report_reset(struct lh_sink_report *rep)
{
    rep->nrejects = 0;
    rep->written = 0;
    rep->duplicates = 0;
}

void lh_sink_report_free(struct lh_sink_report *rep)
{
    free(rep->rejects);
    rep->rejects = NULL;
    rep->nrejects = rep->cap = 0;
}
