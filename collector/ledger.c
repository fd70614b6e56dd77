/* ledger.c - the collector's rows of the delivery ledger (see ledger.h). */
#include "ledger.h"

#include <stdlib.h>
#include <string.h>

#include "lh/audit.h"

struct group {
    const char *host, *file;
    int64_t records;
};

static int same(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

int lh_cledger_build(const struct lh_ingest_batch *b, const char *tenant, const char *batch_hex,
                     int64_t received_ns, struct lh_buf *out, struct lh_cledger_entry **entries,
                     size_t *n)
{
    *entries = NULL;
    *n = 0;
    if (b->n == 0)
        return 0;
    struct group *g = NULL;
    size_t ng = 0, cap = 0, last = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct lh_event *ev = &b->events[i];
        if (ng && same(g[last].host, ev->host) && same(g[last].file, ev->file)) {
            g[last].records++;
            continue;
        }
        size_t k = 0;
        while (k < ng && !(same(g[k].host, ev->host) && same(g[k].file, ev->file)))
            k++;
        if (k == ng) {
            if (ng == cap) {
                cap = cap ? cap * 2 : 8;
                struct group *ngp = realloc(g, cap * sizeof(*g));
                if (!ngp) {
                    free(g);
                    return LH_ENOMEM;
                }
                g = ngp;
            }
            g[ng++] = (struct group){ ev->host ? ev->host : "", ev->file ? ev->file : "", 0 };
        }
        g[k].records++;
        last = k;
    }
    struct lh_cledger_entry *e = calloc(ng, sizeof(*e));
    if (!e) {
        free(g);
        return LH_ENOMEM;
    }
    int64_t window = lh_audit_window(received_ns);
    for (size_t k = 0; k < ng; k++) {
        struct lh_audit_acked a = { .batch = batch_hex, .tenant = tenant, .host = g[k].host,
                                    .file = g[k].file, .boot = b->agent_boot, .window = window,
                                    .records = g[k].records, .agent_records = -1, .read = -1,
                                    .acked = -1, .dropped = -1, .sampled = -1 };
        for (size_t f = 0; g[k].file[0] && f < b->nfiles; f++)
            if (b->files[f].path && strcmp(b->files[f].path, g[k].file) == 0) {
                a.agent_records = b->files[f].records;
                a.read = b->files[f].read;
                a.acked = b->files[f].acked;
                a.dropped = b->files[f].dropped;
                a.sampled = b->files[f].sampled;
                break;
            }
        e[k].host = g[k].host;
        e[k].off = out->len;
        if (lh_audit_acked_json(&a, out) < 0) {
            free(g);
            free(e);
            return LH_ENOMEM;
        }
        e[k].len = out->len - e[k].off;
    }
    free(g);
    *entries = e;
    *n = ng;
    return 0;
}
