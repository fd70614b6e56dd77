/* sink_store.c - the sink into the embedded store (see sink_store.h). */
#include "sink_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/log.h"

struct store_sink {
    struct lh_sink base;
    struct lh_store *store;
    char *dir;
    struct lh_event *ok;            /* scratch: the events with usable ids */
    size_t capok;
};

static int id_usable(const struct lh_event *ev)
{
    return ev->id && ev->id[0] && strlen(ev->id) <= LH_STORE_ID_MAX;
}

static int store_write(struct lh_sink *base, const struct lh_event *evs, size_t n,
                       struct lh_sink_report *rep, struct lh_err *err)
{
    struct store_sink *s = base->ctx;
    const struct lh_event *use = evs;
    size_t m = n;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!id_usable(&evs[i]))
            bad++;
    if (bad) {
        /* Rare: copy the good ones aside, report the others. */
        if (s->capok < n) {
            struct lh_event *v = realloc(s->ok, n * sizeof(*v));
            if (!v)
                return lh_err_set(err, LH_EUNAVAIL, "store sink: out of memory");
            s->ok = v;
            s->capok = n;
        }
        m = 0;
        for (size_t i = 0; i < n; i++) {
            if (id_usable(&evs[i])) {
                s->ok[m++] = evs[i];
                continue;
            }
            int rc = evs[i].id && evs[i].id[0]
                         ? lh_sink_report_reject(rep, i, "id_too_long: the event id has %zu "
                                                 "bytes (at most %d)", strlen(evs[i].id),
                                                 LH_STORE_ID_MAX)
                         : lh_sink_report_reject(rep, i, "missing_id: the event has no id");
            if (rc < 0)
                return lh_err_set(err, LH_EUNAVAIL, "store sink: out of memory");
        }
        use = s->ok;
    }
    struct lh_store_append_stats st = { 0 };
    int rc = m ? lh_store_append(s->store, use, m, &st, err) : 0;
    if (rc < 0) {
        /* Partitions may be partly written: the retry skips what is there. */
        if (rc != LH_EUNAVAIL && rc != LH_EFULL) {
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%s", err && err->msg[0] ? err->msg : "append failed");
            lh_err_set(err, LH_EUNAVAIL, "store %s: %s: %s", s->dir, lh_errcode_name(rc), msg);
        }
        return LH_EUNAVAIL;
    }
    rep->written += st.stored;
    rep->duplicates += st.duplicates;
    if (st.rejected)   /* cannot happen: ids were checked above */
        lh_warn("store sink: the store skipped %llu events without usable ids",
                (unsigned long long)st.rejected);
    return 0;
}

static int store_ready(struct lh_sink *base, struct lh_err *err)
{
    struct store_sink *s = base->ctx;
    return s->store ? 0 : lh_err_set(err, LH_EUNAVAIL, "store %s is not open", s->dir);
}

static void store_destroy(struct lh_sink *base)
{
    struct store_sink *s = base->ctx;
    lh_store_close(s->store);
    free(s->ok);
    free(s->dir);
    free(s);
}

static const struct lh_sink_ops store_ops = {
    .name = "store",
    .write = store_write,
    .flush = NULL,
    .ready = store_ready,
    .destroy = store_destroy,
};

int lh_sink_store_create(const struct lh_store_config *cfg, const char *name,
                         struct lh_metrics *metrics, struct lh_sink **out, struct lh_err *err)
{
    *out = NULL;
    if (!cfg->dir || !cfg->dir[0])
        return lh_err_set(err, LH_EINVAL, "store sink: dir is required");
    struct store_sink *s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(cfg->dir))) {
        free(s);
        return lh_err_set(err, LH_ENOMEM, "store sink: out of memory");
    }
    int rc = lh_store_open(&s->store, cfg, LH_STORE_WRITE, err);
    if (rc < 0) {
        free(s->dir);
        free(s);
        return rc;
    }
    s->base.ops = &store_ops;
    s->base.ctx = s;
    snprintf(s->base.name, sizeof(s->base.name), "%s", name && name[0] ? name : "store");
    (void)metrics;   /* written/duplicates/rejects are counted by the pipeline */
    *out = &s->base;
    return 0;
}

struct lh_store *lh_sink_store_handle(struct lh_sink *s)
{
    return s && s->ops == &store_ops ? ((struct store_sink *)s->ctx)->store : NULL;
}
